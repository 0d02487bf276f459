//! Host health sampling through `sysinfo`: one long-lived [`Sampler`] that
//! refreshes only what it reports (CPU usage without frequency, memory, disks,
//! networks; never a process scan), so CPU usage is measured over the time
//! since the previous sample.
//!
//! Metric names follow DESIGN.md (base units, `_ratio`, `_bytes`, `_total`).

use std::collections::BTreeMap;

use sysinfo::{CpuRefreshKind, Disks, MemoryRefreshKind, Networks, RefreshKind, System};
use vedette_protocol::Sample;

/// Filesystem types that are not real storage: never reported.
pub const PSEUDO_FILESYSTEMS: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fuse.lxcfs",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
];

/// Interfaces never reported: loopback and container veth pairs.
fn skip_interface(name: &str) -> bool {
    name == "lo" || name.starts_with("veth")
}

/// Samples the host. Keep one for the agent's lifetime.
pub struct Sampler {
    sys: System,
    disks: Disks,
    networks: Networks,
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler::new()
    }
}

impl Sampler {
    /// Takes the CPU baseline the first sample's usage is measured from.
    pub fn new() -> Sampler {
        let sys = System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing().with_cpu_usage())
                .with_memory(MemoryRefreshKind::everything()),
        );
        Sampler {
            sys,
            disks: Disks::new_with_refreshed_list(),
            networks: Networks::new_with_refreshed_list(),
        }
    }

    /// One sample of every host metric, stamped `ts_ms`. Non-finite values
    /// are dropped (the protocol refuses them).
    pub fn sample(&mut self, ts_ms: i64) -> Vec<Sample> {
        let mut out = Vec::with_capacity(64);
        let mut push = |name: &str, labels: &[(&str, &str)], value: f64| {
            if value.is_finite() {
                out.push(Sample {
                    name: name.to_string(),
                    labels: labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect::<BTreeMap<_, _>>(),
                    ts_ms,
                    value,
                });
            }
        };

        self.sys.refresh_cpu_usage();
        push(
            "cpu_usage_ratio",
            &[],
            f64::from(self.sys.global_cpu_usage()) / 100.0,
        );
        for (i, cpu) in self.sys.cpus().iter().enumerate() {
            push(
                "cpu_core_usage_ratio",
                &[("core", &i.to_string())],
                f64::from(cpu.cpu_usage()) / 100.0,
            );
        }

        let load = System::load_average();
        for (period, v) in [("1m", load.one), ("5m", load.five), ("15m", load.fifteen)] {
            push("load_average", &[("period", period)], v);
        }

        self.sys.refresh_memory();
        let total = self.sys.total_memory() as f64;
        let avail = self.sys.available_memory() as f64;
        push("memory_total_bytes", &[], total);
        push("memory_available_bytes", &[], avail);
        if total > 0.0 {
            push("memory_used_ratio", &[], 1.0 - avail / total);
        }
        let swap_total = self.sys.total_swap() as f64;
        push(
            "swap_used_ratio",
            &[],
            if swap_total > 0.0 {
                self.sys.used_swap() as f64 / swap_total
            } else {
                0.0
            },
        );

        self.disks.refresh(true);
        let mut seen_mounts = std::collections::HashSet::new();
        for d in self.disks.list() {
            let fstype = d.file_system().to_string_lossy();
            if PSEUDO_FILESYSTEMS.contains(&fstype.as_ref()) || d.total_space() == 0 {
                continue;
            }
            let mountpoint = d.mount_point().to_string_lossy();
            // A mount stacked twice (bind mounts) is reported once.
            if !seen_mounts.insert(mountpoint.to_string()) {
                continue;
            }
            let device = d.name().to_string_lossy();
            let labels = [
                ("mountpoint", mountpoint.as_ref()),
                ("fstype", fstype.as_ref()),
                ("device", device.as_ref()),
            ];
            let size = d.total_space() as f64;
            let avail = d.available_space() as f64;
            push("filesystem_size_bytes", &labels, size);
            push("filesystem_avail_bytes", &labels, avail);
            push("filesystem_used_ratio", &labels, 1.0 - avail / size);
        }

        self.networks.refresh(true);
        let mut ifaces: Vec<_> = self.networks.list().iter().collect();
        ifaces.sort_by(|a, b| a.0.cmp(b.0));
        for (name, data) in ifaces {
            if skip_interface(name) {
                continue;
            }
            let l = [("interface", name.as_str())];
            push(
                "network_receive_bytes_total",
                &l,
                data.total_received() as f64,
            );
            push(
                "network_transmit_bytes_total",
                &l,
                data.total_transmitted() as f64,
            );
            push(
                "network_errors_total",
                &[("interface", name), ("direction", "receive")],
                data.total_errors_on_received() as f64,
            );
            push(
                "network_errors_total",
                &[("interface", name), ("direction", "transmit")],
                data.total_errors_on_transmitted() as f64,
            );
        }

        push("uptime_seconds", &[], System::uptime() as f64);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vedette_protocol::{AgentInfo, Batch, Limits};

    #[test]
    fn samples_this_host_within_protocol_limits() {
        let mut s = Sampler::new();
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let now = 1_763_700_000_000;
        let samples = s.sample(now);
        let get = |name: &str| {
            samples
                .iter()
                .find(|x| x.name == name)
                .map(|x| x.value)
                .unwrap_or_else(|| panic!("no {name} sample"))
        };
        let cpu = get("cpu_usage_ratio");
        assert!((0.0..=1.0).contains(&cpu), "cpu {cpu}");
        let mem = get("memory_used_ratio");
        assert!(mem > 0.0 && mem < 1.0, "memory {mem}");
        assert!(get("memory_total_bytes") > get("memory_available_bytes"));
        assert!(get("uptime_seconds") > 0.0);
        assert!((0.0..=1.0).contains(&get("swap_used_ratio")));
        assert_eq!(
            samples.iter().filter(|x| x.name == "load_average").count(),
            3
        );
        let cores = samples
            .iter()
            .filter(|x| x.name == "cpu_core_usage_ratio")
            .count();
        assert_eq!(cores, std::thread::available_parallelism().unwrap().get());
        // Every reported filesystem is real and has a sane ratio.
        for f in samples.iter().filter(|x| x.name == "filesystem_used_ratio") {
            assert!(!PSEUDO_FILESYSTEMS.contains(&f.labels["fstype"].as_str()));
            assert!((0.0..=1.0).contains(&f.value), "{f:?}");
        }
        assert!(samples
            .iter()
            .all(|x| x.labels.get("interface").map(String::as_str) != Some("lo")));

        // What the sampler produces is a valid batch.
        let batch = Batch {
            version: 1,
            agent: AgentInfo {
                host: "h".into(),
                version: "t".into(),
                labels: Default::default(),
                boot_id: "b".into(),
                interval_s: 10.0,
            },
            seq: 1,
            sent_at_ms: now,
            samples,
            checks: vec![],
        };
        batch.validate(&Limits::default(), now).unwrap();
    }

    #[test]
    fn interface_filter() {
        assert!(skip_interface("lo"));
        assert!(skip_interface("veth1234"));
        assert!(!skip_interface("eth0"));
    }
}
