//! Memory and swap, against the cgroup's limit when it has one.

use sysinfo::System;

use super::{Out, Source};

pub(super) struct Memory {
    pub(super) sys: System,
    pub(super) cgroup: bool,
}

impl Source for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }
    fn sample(&mut self, out: &mut Out) {
        self.sys.refresh_memory();
        let mut total = self.sys.total_memory() as f64;
        let mut avail = self.sys.available_memory() as f64;
        if self.cgroup {
            if let Some(cg) = self.sys.cgroup_limits() {
                out.push("cgroup_memory_limit_bytes", &[], cg.total_memory as f64);
                total = cg.total_memory as f64;
                avail = cg.free_memory as f64;
            }
        }
        out.push("memory_total_bytes", &[], total);
        out.push("memory_available_bytes", &[], avail);
        if total > 0.0 {
            out.push("memory_used_ratio", &[], 1.0 - avail / total);
        }
        let swap_total = self.sys.total_swap() as f64;
        out.push(
            "swap_used_ratio",
            &[],
            if swap_total > 0.0 {
                self.sys.used_swap() as f64 / swap_total
            } else {
                0.0
            },
        );
    }
}
