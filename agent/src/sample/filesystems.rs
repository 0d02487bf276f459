//! Filesystems: every mount in `/proc/self/mountinfo` the filters let
//! through, each `statvfs`ed on its own thread under its own deadline, so a
//! hung mount (a dead NFS server, a stuck FUSE daemon) costs that mount
//! alone: it is reported as `filesystem_device_error 1`, its miss is counted
//! in `vedette_agent_source_timeouts_total{source="mount"}`, and it is not
//! asked again until its thread returns.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use nix::sys::statvfs::{statvfs, FsFlags};

use super::settings::{Filter, HostMetrics};
use super::{Out, Reader, Source, Timeouts};

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mount {
    pub(crate) root: String,
    pub(crate) mountpoint: String,
    pub(crate) fstype: String,
    pub(crate) source: String,
    pub(crate) super_options: String,
}

/// Undoes the kernel's octal escapes of space, tab, newline and backslash.
fn unescape(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_string();
    }
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if let Some(d) = octal {
            let v = d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mounts of `/proc/self/mountinfo` text, in order; malformed lines
/// are skipped. Format (proc(5)): `id parent major:minor root mountpoint
/// options [optional…] - fstype source super_options`.
pub(crate) fn mounts(text: &str) -> impl Iterator<Item = Mount> + '_ {
    text.lines().filter_map(|line| {
        let (head, tail) = line.split_once(" - ")?;
        let mut h = head.split(' ');
        let root = h.nth(3)?;
        let mountpoint = h.next()?;
        let mut t = tail.split(' ');
        let fstype = t.next()?;
        let source = t.next()?;
        let super_options = t.next().unwrap_or_default();
        Some(Mount {
            root: unescape(root),
            mountpoint: unescape(mountpoint),
            fstype: unescape(fstype),
            source: unescape(source),
            super_options: super_options.to_string(),
        })
    })
}

/// What `statvfs` says of one mount, in bytes and inodes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Usage {
    pub(super) size: f64,
    pub(super) avail: f64,
    pub(super) free: f64,
    pub(super) files: f64,
    pub(super) files_free: f64,
    pub(super) readonly: bool,
}

fn stat(path: &str) -> Option<Usage> {
    let s = statvfs(path).ok()?;
    let unit = s.fragment_size() as f64;
    Some(Usage {
        size: s.blocks() as f64 * unit,
        avail: s.blocks_available() as f64 * unit,
        free: s.blocks_free() as f64 * unit,
        files: s.files() as f64,
        files_free: s.files_free() as f64,
        readonly: s.flags().contains(FsFlags::ST_RDONLY),
    })
}

/// Pushes one mount's samples; `usage` None is a device error.
pub(super) fn report(m: &Mount, usage: Option<Usage>, out: &mut Out) {
    let labels = [
        ("mountpoint", m.mountpoint.as_str()),
        ("fstype", m.fstype.as_str()),
        ("device", m.source.as_str()),
    ];
    let Some(u) = usage else {
        out.push("filesystem_device_error", &labels, 1.0);
        return;
    };
    out.push("filesystem_device_error", &labels, 0.0);
    out.push("filesystem_size_bytes", &labels, u.size);
    out.push("filesystem_avail_bytes", &labels, u.avail);
    out.push("filesystem_free_bytes", &labels, u.free);
    if u.size > 0.0 {
        out.push("filesystem_used_ratio", &labels, 1.0 - u.avail / u.size);
    }
    out.push("filesystem_files", &labels, u.files);
    out.push("filesystem_files_free", &labels, u.files_free);
    // Filesystems without an inode table (btrfs, vfat) say 0 files.
    if u.files > 0.0 {
        out.push(
            "filesystem_files_used_ratio",
            &labels,
            1.0 - u.files_free / u.files,
        );
    }
    out.push(
        "filesystem_readonly",
        &labels,
        f64::from(u8::from(u.readonly)),
    );
}

pub(super) struct Filesystems {
    reader: Reader,
    mountpoints: Filter,
    fstypes: Filter,
    devices: Filter,
    /// How long one mount's `statvfs` may take.
    deadline: Duration,
    /// Each asked mount, and whether its thread has returned.
    asked: HashMap<String, Arc<AtomicBool>>,
    timeouts: Timeouts,
    /// Whether the cap on mounts was logged.
    capped: bool,
}

impl Filesystems {
    /// A mount's deadline is half the source's, so the source itself
    /// always answers in time with the mounts that did.
    pub(super) fn new(config: &HostMetrics, timeouts: Timeouts) -> Filesystems {
        timeouts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry("mount")
            .or_insert(0);
        Filesystems {
            reader: Reader::default(),
            mountpoints: config.mountpoints.clone(),
            fstypes: config.fstypes.clone(),
            devices: config.devices.clone(),
            deadline: config.timeout / 2,
            asked: HashMap::new(),
            timeouts,
            capped: false,
        }
    }

    /// The mounts to report: filtered, each mount point once (the last
    /// mount on a path hides those under it), at most [`MAX_MOUNTS`].
    fn wanted(&mut self) -> Vec<Mount> {
        let Some(text) = self.reader.read("/proc/self/mountinfo") else {
            return Vec::new();
        };
        let (list, total) = select(text, &self.fstypes, &self.mountpoints, &self.devices);
        if total > list.len() && !self.capped {
            self.capped = true;
            tracing::warn!(
                mounts = total,
                max = MAX_MOUNTS,
                "more filesystems than the agent reports; the first ones mounted are kept (narrow host_metrics.filesystems to choose)"
            );
        }
        list
    }
}

/// The most filesystems reported: a user able to make FUSE mounts (up to
/// fuse.conf's `mount_max`, 1000) must not grow the batch past what the
/// collector accepts. Mounts are in mount order, so the system's come first.
pub(super) const MAX_MOUNTS: usize = 256;

/// The mounts of `text` the filters let through, each mount point once,
/// the first [`MAX_MOUNTS`] of them; and how many there were.
pub(super) fn select(
    text: &str,
    fstypes: &Filter,
    mountpoints: &Filter,
    devices: &Filter,
) -> (Vec<Mount>, usize) {
    let mut list: Vec<Mount> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for m in mounts(text) {
        if !(fstypes.allows(&m.fstype)
            && mountpoints.allows(&m.mountpoint)
            && devices.allows(&m.source))
        {
            continue;
        }
        match at.get(&m.mountpoint) {
            Some(&i) => list[i] = m,
            None => {
                at.insert(m.mountpoint.clone(), list.len());
                list.push(m);
            }
        }
    }
    let total = list.len();
    list.truncate(MAX_MOUNTS);
    (list, total)
}

impl Source for Filesystems {
    fn name(&self) -> &'static str {
        "filesystems"
    }
    fn sample(&mut self, out: &mut Out) {
        let list = self.wanted();
        // Forget mounts whose thread returned; the rest are still stuck.
        self.asked.retain(|_, done| !done.load(Ordering::Acquire));
        let (tx, rx) = mpsc::channel();
        let mut waiting = 0;
        for (i, m) in list.iter().enumerate() {
            if self.asked.contains_key(&m.mountpoint) {
                continue;
            }
            let done = Arc::new(AtomicBool::new(false));
            let (tx, path, flag) = (tx.clone(), m.mountpoint.clone(), Arc::clone(&done));
            let spawned = std::thread::Builder::new()
                .name("statvfs".into())
                .stack_size(64 * 1024)
                .spawn(move || {
                    let _ = tx.send((i, stat(&path)));
                    flag.store(true, Ordering::Release);
                });
            if spawned.is_ok() {
                self.asked.insert(m.mountpoint.clone(), done);
                waiting += 1;
            }
        }
        drop(tx);
        let mut got: Vec<Option<Option<Usage>>> = vec![None; list.len()];
        let end = Instant::now() + self.deadline;
        while waiting > 0 {
            let Ok((i, usage)) = rx.recv_timeout(end.saturating_duration_since(Instant::now()))
            else {
                break;
            };
            got[i] = Some(usage);
            waiting -= 1;
        }
        let mut missed = 0;
        for (m, usage) in list.iter().zip(got) {
            if usage.is_none() {
                missed += 1;
            }
            match usage {
                // statvfs failed (ENOENT, EACCES, EIO…): an error, not a timeout.
                Some(u) => report(m, u, out),
                None => {
                    tracing::debug!(mountpoint = %m.mountpoint, "statvfs missed its deadline");
                    report(m, None, out);
                }
            }
        }
        if missed > 0 {
            *self
                .timeouts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry("mount")
                .or_insert(0) += missed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mountinfo_with_escapes_and_optional_fields() {
        let text = "\
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
28 27 0:25 /sub /mnt/with\\040space ro,nosuid master:2 shared:3 - nfs4 srv:/export rw,vers=4.2
bogus line
29 27 0:26 / /sysroot rw - xfs /dev/sda2 rw
";
        let m: Vec<Mount> = mounts(text).collect();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].mountpoint, "/");
        assert_eq!(m[0].fstype, "ext4");
        assert_eq!(m[0].source, "/dev/vda");
        assert_eq!(m[1].mountpoint, "/mnt/with space");
        assert_eq!(m[1].root, "/sub");
        assert_eq!(m[1].fstype, "nfs4");
        assert_eq!(m[1].source, "srv:/export");
        assert_eq!(m[2].mountpoint, "/sysroot");
        assert_eq!(unescape("a\\134b\\011c\\012"), "a\\b\tc\n");
        assert_eq!(unescape("trailing\\"), "trailing\\");
        assert_eq!(unescape("\\777"), "?");
    }

    #[test]
    fn a_path_mounted_twice_is_the_top_mount_and_filters_apply() {
        let text = "\
27 1 254:0 / / rw - ext4 /dev/vda rw
30 27 0:30 / /data rw - ext4 /dev/sdb rw
31 30 0:31 / /data rw - xfs /dev/sdc rw
32 27 0:32 / /run rw - tmpfs tmpfs rw
";
        let none = Filter::default();
        let mut diag = vedette_yaml::Diagnostics::new("");
        let no_tmpfs = Filter::build(&[], &["^tmpfs$".into()], ["a", "b"], &mut diag);
        let (got, _) = select(text, &no_tmpfs, &none, &none);
        let got: Vec<_> = got
            .iter()
            .map(|m| (m.mountpoint.as_str(), m.fstype.as_str()))
            .collect();
        assert_eq!(got, [("/", "ext4"), ("/data", "xfs")]);
        assert_eq!(select(text, &none, &none, &none).1, 3);
    }

    #[test]
    fn reports_both_conventions_and_inodes() {
        let m = Mount {
            root: "/".into(),
            mountpoint: "/data".into(),
            fstype: "ext4".into(),
            source: "/dev/sdb1".into(),
            super_options: String::new(),
        };
        let mut out = Out::new(1);
        report(
            &m,
            Some(Usage {
                size: 1000.0,
                avail: 300.0,
                free: 350.0,
                files: 100.0,
                files_free: 5.0,
                readonly: true,
            }),
            &mut out,
        );
        let get = |n: &str| out.samples.iter().find(|s| s.name == n).map(|s| s.value);
        assert_eq!(get("filesystem_used_ratio"), Some(0.7));
        assert_eq!(get("filesystem_free_bytes"), Some(350.0));
        assert_eq!(get("filesystem_files_free"), Some(5.0));
        assert_eq!(get("filesystem_files_used_ratio"), Some(0.95));
        assert_eq!(get("filesystem_readonly"), Some(1.0));
        assert_eq!(get("filesystem_device_error"), Some(0.0));
        let mut out = Out::new(1);
        report(&m, None, &mut out);
        assert_eq!(out.samples.len(), 1);
        assert_eq!(out.samples[0].name, "filesystem_device_error");
        assert_eq!(out.samples[0].value, 1.0);
        assert_eq!(out.samples[0].labels["mountpoint"], "/data");
    }
}
