//! Kernel counters: file descriptors, processes, uptime, and the clock's
//! synchronisation (`adjtimex`, as node_exporter's timex collector).

use super::{Out, Reader, Source};

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

#[derive(Default)]
pub(super) struct Kernel {
    reader: Reader,
}

impl Source for Kernel {
    fn name(&self) -> &'static str {
        "kernel"
    }
    fn sample(&mut self, out: &mut Out) {
        if let Some(t) = self.reader.read("/proc/sys/fs/file-nr") {
            parse_file_nr(t, out);
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
            out.push("processes", &[], n as f64);
            // Deprecated name of `processes` (a gauge must not end in
            // `_total`), kept one release for rules that use it.
            out.push("processes_total", &[], n as f64);
        }
        if let Some(up) = self
            .reader
            .read("/proc/uptime")
            .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
        {
            out.push("uptime_seconds", &[], up);
        }
        if let Some(clock) = vedette_sys::clock_state() {
            out.push("time_offset_seconds", &[], clock.offset_s);
            out.push(
                "time_sync_status",
                &[],
                f64::from(u8::from(clock.synchronised)),
            );
        }
    }
}
