//! Block devices from `/proc/diskstats`: bytes, operations and busy time of
//! whole disks and md/dm devices (partitions, loop and ram devices are left
//! out by the default `host_metrics.disks.exclude`, node_exporter's).

use super::settings::Filter;
use super::{Out, Reader, Source};

/// `/proc/diskstats` counts sectors of 512 bytes whatever the device's own.
const SECTOR: f64 = 512.0;

/// Parses `/proc/diskstats` into `out`, for devices `filter` lets through.
/// Columns (Documentation/admin-guide/iostats.rst): major minor name,
/// reads completed, merged, sectors read, ms reading, writes completed,
/// merged, sectors written, ms writing, in flight, ms doing I/O, ….
pub(super) fn parse_diskstats(text: &str, filter: &Filter, out: &mut Out) {
    for line in text.lines() {
        let mut w = line.split_ascii_whitespace().skip(2);
        let Some(name) = w.next() else { continue };
        if !filter.allows(name) {
            continue;
        }
        let v: Vec<f64> = w.take(10).filter_map(|x| x.parse().ok()).collect();
        let [reads, _, sectors_read, _, writes, _, sectors_written, _, _, io_ms] = v[..] else {
            continue;
        };
        let l = [("device", name)];
        out.push("disk_reads_completed_total", &l, reads);
        out.push("disk_writes_completed_total", &l, writes);
        out.push("disk_read_bytes_total", &l, sectors_read * SECTOR);
        out.push("disk_written_bytes_total", &l, sectors_written * SECTOR);
        out.push("disk_io_time_seconds_total", &l, io_ms / 1000.0);
    }
}

pub(super) struct Disks {
    reader: Reader,
    filter: Filter,
}

impl Disks {
    pub(super) fn new(filter: Filter) -> Disks {
        Disks {
            reader: Reader::default(),
            filter,
        }
    }
}

impl Source for Disks {
    fn name(&self) -> &'static str {
        "disks"
    }
    fn sample(&mut self, out: &mut Out) {
        if let Some(text) = self.reader.read("/proc/diskstats") {
            parse_diskstats(text, &self.filter, out);
        }
    }
}
