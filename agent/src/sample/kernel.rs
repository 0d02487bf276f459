//! Kernel counters: file descriptors, processes, uptime.

use sysinfo::System;

use super::{read, Out, Source};

/// Parses `/proc/sys/fs/file-nr` (`allocated unused max`).
pub(super) fn parse_file_nr(text: &str, out: &mut Out) {
    let v: Vec<f64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    if let [allocated, unused, max] = v[..] {
        let open = allocated - unused;
        out.push("file_descriptors_open", &[], open);
        out.push("file_descriptors_max", &[], max);
        if max > 0.0 {
            out.push("file_descriptors_used_ratio", &[], open / max);
        }
    }
}

pub(super) struct Kernel;

impl Source for Kernel {
    fn name(&self) -> &'static str {
        "kernel"
    }
    fn sample(&mut self, out: &mut Out) {
        if let Some(t) = read("/proc/sys/fs/file-nr") {
            parse_file_nr(&t, out);
        }
        // Counting /proc's numeric entries is a readdir, not a process scan.
        if let Ok(dir) = std::fs::read_dir("/proc") {
            let n = dir
                .filter_map(|e| e.ok())
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
                })
                .count();
            out.push("processes_total", &[], n as f64);
        }
        out.push("uptime_seconds", &[], System::uptime() as f64);
    }
}
