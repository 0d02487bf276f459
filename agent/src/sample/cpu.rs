//! CPU from `/proc/stat`: time per mode, usage over the last interval (of
//! the host, of each core, or of the cgroup's quota when it has one),
//! context switches, forks, runnable and blocked tasks, and the load average.

use std::time::Instant;

use super::cgroup::Cgroup;
use super::{Out, Reader, Source};

/// `/proc/stat`'s time unit: USER_HZ, 100 on every Linux architecture.
const USER_HZ: f64 = 100.0;

/// The modes of a `cpu` line, in the kernel's column order (guest time is
/// already inside user and nice, so it is not a mode of its own here).
const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

/// One `cpu` line's times, in ticks.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(super) struct Times([u64; 8]);

impl Times {
    fn total(&self) -> u64 {
        self.0.iter().sum()
    }
    fn idle(&self) -> u64 {
        self.0[3] + self.0[4]
    }
    /// Busy share between `before` and `self` (None when no time passed).
    pub(super) fn usage_since(&self, before: &Times) -> Option<f64> {
        let total = self.total().checked_sub(before.total())?;
        let idle = self.idle().saturating_sub(before.idle());
        (total > 0).then(|| (1.0 - idle as f64 / total as f64).clamp(0.0, 1.0))
    }
}

/// What `/proc/stat` says.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Stat {
    pub(super) all: Times,
    pub(super) cores: Vec<Times>,
    pub(super) context_switches: Option<f64>,
    pub(super) forks: Option<f64>,
    pub(super) running: Option<f64>,
    pub(super) blocked: Option<f64>,
}

/// Parses `/proc/stat` into `stat` (its core list is reused).
pub(super) fn parse_stat(text: &str, stat: &mut Stat) {
    let mut cores = std::mem::take(&mut stat.cores);
    cores.clear();
    *stat = Stat {
        cores,
        ..Stat::default()
    };
    for line in text.lines() {
        let mut words = line.split_ascii_whitespace();
        let Some(key) = words.next() else { continue };
        if let Some(core) = key.strip_prefix("cpu") {
            let mut t = Times::default();
            for (slot, w) in t.0.iter_mut().zip(words) {
                *slot = w.parse().unwrap_or(0);
            }
            if core.is_empty() {
                stat.all = t;
            } else {
                stat.cores.push(t);
            }
            continue;
        }
        let value = words.next().and_then(|w| w.parse::<f64>().ok());
        match key {
            "ctxt" => stat.context_switches = value,
            "processes" => stat.forks = value,
            "procs_running" => stat.running = value,
            "procs_blocked" => stat.blocked = value,
            _ => {}
        }
    }
}

pub(super) struct Cpu {
    cgroup: Option<Cgroup>,
    reader: Reader,
    /// The previous read, usage is measured from.
    last: Stat,
    /// The read being made.
    now: Stat,
    /// The cgroup's CPU time at the previous read.
    last_cgroup: Option<(Instant, f64)>,
}

impl Cpu {
    /// Reads the baseline the first sample's usage is measured from.
    pub(super) fn new(cgroup: Option<Cgroup>) -> Cpu {
        let mut cpu = Cpu {
            cgroup,
            reader: Reader::default(),
            last: Stat::default(),
            now: Stat::default(),
            last_cgroup: None,
        };
        if let Some(text) = cpu.reader.read("/proc/stat") {
            parse_stat(text, &mut cpu.last);
        }
        cpu.cgroup_usage();
        cpu
    }

    /// The cgroup quota in cores and its usage since the last call.
    fn cgroup_usage(&mut self) -> Option<(f64, Option<f64>)> {
        let limit = self.cgroup.as_ref()?.cpu(&mut self.reader)?;
        let Some(used) = limit.usage_s else {
            return Some((limit.cores, None));
        };
        let now = Instant::now();
        let usage = self
            .last_cgroup
            .replace((now, used))
            .and_then(|(then, before)| {
                let wall = now.duration_since(then).as_secs_f64();
                (wall > 0.0).then(|| ((used - before) / (wall * limit.cores)).clamp(0.0, 1.0))
            });
        Some((limit.cores, usage))
    }
}

/// Pushes what `now` says, with usage measured since `before`.
pub(super) fn report(now: &Stat, before: &Stat, out: &mut Out) {
    for (mode, ticks) in MODES.iter().zip(now.all.0) {
        out.push(
            "cpu_seconds_total",
            &[("mode", mode)],
            ticks as f64 / USER_HZ,
        );
    }
    for (i, (core, was)) in now.cores.iter().zip(&before.cores).enumerate() {
        if let Some(u) = core.usage_since(was) {
            out.push("cpu_core_usage_ratio", &[("core", &i.to_string())], u);
        }
    }
    for (name, v) in [
        ("context_switches_total", now.context_switches),
        ("forks_total", now.forks),
        ("processes_running", now.running),
        ("processes_blocked", now.blocked),
    ] {
        if let Some(v) = v {
            out.push(name, &[], v);
        }
    }
}

/// Parses `/proc/loadavg` into `out`.
pub(super) fn parse_loadavg(text: &str, out: &mut Out) {
    for (period, w) in ["1m", "5m", "15m"].iter().zip(text.split_whitespace()) {
        if let Ok(v) = w.parse::<f64>() {
            out.push("load_average", &[("period", period)], v);
        }
    }
}

impl Source for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }
    fn sample(&mut self, out: &mut Out) {
        let Some(text) = self.reader.read("/proc/stat") else {
            return;
        };
        parse_stat(text, &mut self.now);
        report(&self.now, &self.last, out);
        let mut usage = self.now.all.usage_since(&self.last.all);
        // Reads go into the older of the two, so steady sampling allocates nothing.
        std::mem::swap(&mut self.now, &mut self.last);
        if let Some((cores, cg_usage)) = self.cgroup_usage() {
            out.push("cgroup_cpu_limit_cores", &[], cores);
            usage = cg_usage.or(usage);
        }
        if let Some(u) = usage {
            out.push("cpu_usage_ratio", &[], u);
        }
        if let Some(text) = self.reader.read("/proc/loadavg") {
            parse_loadavg(text, out);
        }
    }
}
