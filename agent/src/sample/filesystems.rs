//! Filesystems: size, use and inodes of each mount the filters let through.

use sysinfo::{DiskRefreshKind, Disks};

use super::{Out, Source};
use crate::sample::settings::Filter;

pub(super) struct Filesystems {
    pub(super) disks: Disks,
    pub(super) mountpoints: Filter,
    pub(super) fstypes: Filter,
    pub(super) devices: Filter,
}

impl Source for Filesystems {
    fn name(&self) -> &'static str {
        "filesystems"
    }
    fn sample(&mut self, out: &mut Out) {
        // Space only: no I/O counters, no disk-kind probing in /sys.
        self.disks
            .refresh_specifics(true, DiskRefreshKind::nothing().with_storage());
        let mut seen_mounts = std::collections::HashSet::new();
        for d in self.disks.list() {
            let fstype = d.file_system().to_string_lossy();
            let mountpoint = d.mount_point().to_string_lossy();
            let device = d.name().to_string_lossy();
            if d.total_space() == 0
                || !self.fstypes.allows(&fstype)
                || !self.mountpoints.allows(&mountpoint)
                || !self.devices.allows(&device)
            {
                continue;
            }
            // A mount stacked twice (bind mounts) is reported once.
            if !seen_mounts.insert(mountpoint.to_string()) {
                continue;
            }
            let labels = [
                ("mountpoint", mountpoint.as_ref()),
                ("fstype", fstype.as_ref()),
                ("device", device.as_ref()),
            ];
            let size = d.total_space() as f64;
            let avail = d.available_space() as f64;
            out.push("filesystem_size_bytes", &labels, size);
            out.push("filesystem_avail_bytes", &labels, avail);
            out.push("filesystem_used_ratio", &labels, 1.0 - avail / size);
        }
    }
}
