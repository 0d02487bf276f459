//! Memory and swap from `/proc/meminfo` and `/proc/vmstat`; under a cgroup
//! memory limit (below the host's memory), against that limit.

use super::cgroup::Cgroup;
use super::{Out, Reader, Source};

/// The `/proc/meminfo` fields the agent reports, in bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(super) struct MemInfo {
    pub(super) total: Option<f64>,
    pub(super) available: Option<f64>,
    pub(super) cached: Option<f64>,
    pub(super) buffers: Option<f64>,
    pub(super) swap_total: Option<f64>,
    pub(super) swap_free: Option<f64>,
}

/// Parses `/proc/meminfo` (`MemTotal:  24683656 kB`).
pub(super) fn parse_meminfo(text: &str) -> MemInfo {
    let mut m = MemInfo::default();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let slot = match key {
            "MemTotal" => &mut m.total,
            "MemAvailable" => &mut m.available,
            "Cached" => &mut m.cached,
            "Buffers" => &mut m.buffers,
            "SwapTotal" => &mut m.swap_total,
            "SwapFree" => &mut m.swap_free,
            _ => continue,
        };
        let mut words = rest.split_whitespace();
        let Some(Ok(v)) = words.next().map(str::parse::<f64>) else {
            continue;
        };
        *slot = Some(if words.next() == Some("kB") {
            v * 1024.0
        } else {
            v
        });
    }
    m
}

/// `/proc/vmstat` counters reported as `<name>_total`.
const VMSTAT: &[(&str, &str)] = &[
    ("oom_kill", "oom_kills_total"),
    ("pgmajfault", "page_faults_major_total"),
    ("pswpin", "swap_in_pages_total"),
    ("pswpout", "swap_out_pages_total"),
];

/// Parses `/proc/vmstat` (`name value` per line) into `out`.
pub(super) fn parse_vmstat(text: &str, out: &mut Out) {
    for line in text.lines() {
        let Some((key, value)) = line.split_once(' ') else {
            continue;
        };
        if let Some((_, name)) = VMSTAT.iter().find(|(k, _)| *k == key) {
            if let Ok(v) = value.trim().parse::<f64>() {
                out.push(name, &[], v);
            }
        }
    }
}

pub(super) struct Memory {
    cgroup: Option<Cgroup>,
    reader: Reader,
}

impl Memory {
    pub(super) fn new(cgroup: Option<Cgroup>) -> Memory {
        Memory {
            cgroup,
            reader: Reader::default(),
        }
    }
}

/// Pushes the memory samples: the host's, or the cgroup's when `limit` is
/// below the host's memory (a larger limit never binds).
pub(super) fn report(m: &MemInfo, limit: Option<super::cgroup::MemoryLimit>, out: &mut Out) {
    let (Some(mut total), Some(mut avail)) = (m.total, m.available) else {
        return;
    };
    if let Some(limit) = limit.filter(|l| l.limit < total) {
        out.push("cgroup_memory_limit_bytes", &[], limit.limit);
        total = limit.limit;
        avail = limit.available();
    }
    out.push("memory_total_bytes", &[], total);
    out.push("memory_available_bytes", &[], avail);
    if total > 0.0 {
        out.push(
            "memory_used_ratio",
            &[],
            (1.0 - avail / total).clamp(0.0, 1.0),
        );
    }
    for (name, v) in [
        ("memory_cached_bytes", m.cached),
        ("memory_buffers_bytes", m.buffers),
        ("swap_total_bytes", m.swap_total),
        ("swap_free_bytes", m.swap_free),
    ] {
        if let Some(v) = v {
            out.push(name, &[], v);
        }
    }
    if let (Some(st), Some(sf)) = (m.swap_total, m.swap_free) {
        let used = if st > 0.0 { (st - sf) / st } else { 0.0 };
        out.push("swap_used_ratio", &[], used);
    }
}

impl Source for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }
    fn sample(&mut self, out: &mut Out) {
        let limit = self
            .cgroup
            .as_ref()
            .and_then(|c| c.memory(&mut self.reader));
        if let Some(text) = self.reader.read("/proc/meminfo") {
            report(&parse_meminfo(text), limit, out);
        }
        if let Some(text) = self.reader.read("/proc/vmstat") {
            parse_vmstat(text, out);
        }
    }
}
