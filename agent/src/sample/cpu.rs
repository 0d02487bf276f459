//! CPU: usage over the last interval, load, and the cgroup's quota when it has one.

use std::time::Instant;

use sysinfo::System;

use super::{read, Out, Source};

/// The cgroup's CPU limit in cores, and the cgroup's CPU time used so far.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct CgroupCpu {
    limit_cores: Option<f64>,
    usage_s: Option<f64>,
}

/// Parses cgroup v2 `cpu.max` (`max 100000` or `50000 100000`).
pub(super) fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut w = text.split_whitespace();
    let quota = w.next()?.parse::<f64>().ok()?;
    let period = w.next()?.parse::<f64>().ok()?;
    (period > 0.0).then(|| quota / period)
}

fn cgroup_cpu() -> CgroupCpu {
    // cgroup v2
    if let Some(max) = read("/sys/fs/cgroup/cpu.max") {
        let usage_s = read("/sys/fs/cgroup/cpu.stat").and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .map(|us| us / 1e6)
        });
        return CgroupCpu {
            limit_cores: parse_cpu_max(&max),
            usage_s,
        };
    }
    // cgroup v1
    let quota =
        read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").and_then(|t| t.trim().parse::<f64>().ok());
    let period =
        read("/sys/fs/cgroup/cpu/cpu.cfs_period_us").and_then(|t| t.trim().parse::<f64>().ok());
    let limit_cores = match (quota, period) {
        (Some(q), Some(p)) if q > 0.0 && p > 0.0 => Some(q / p),
        _ => None,
    };
    let usage_s = read("/sys/fs/cgroup/cpuacct/cpuacct.usage")
        .and_then(|t| t.trim().parse::<f64>().ok())
        .map(|ns| ns / 1e9);
    CgroupCpu {
        limit_cores,
        usage_s,
    }
}

pub(super) struct Cpu {
    pub(super) sys: System,
    pub(super) cgroup: bool,
    pub(super) last: Option<(Instant, f64)>,
}

impl Source for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }
    fn sample(&mut self, out: &mut Out) {
        self.sys.refresh_cpu_usage();
        let mut usage = f64::from(self.sys.global_cpu_usage()) / 100.0;
        if self.cgroup {
            let cg = cgroup_cpu();
            if let (Some(limit), Some(used)) = (cg.limit_cores, cg.usage_s) {
                out.push("cgroup_cpu_limit_cores", &[], limit);
                let now = Instant::now();
                if let Some((then, before)) = self.last.replace((now, used)) {
                    let wall = now.duration_since(then).as_secs_f64();
                    if wall > 0.0 {
                        usage = ((used - before) / (wall * limit)).clamp(0.0, 1.0);
                    }
                }
            }
        }
        out.push("cpu_usage_ratio", &[], usage);
        for (i, cpu) in self.sys.cpus().iter().enumerate() {
            out.push(
                "cpu_core_usage_ratio",
                &[("core", &i.to_string())],
                f64::from(cpu.cpu_usage()) / 100.0,
            );
        }
        let load = System::load_average();
        for (period, v) in [("1m", load.one), ("5m", load.five), ("15m", load.fifteen)] {
            out.push("load_average", &[("period", period)], v);
        }
    }
}
