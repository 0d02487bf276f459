//! Host health sampling. Each *source* (cpu, memory, filesystems, network,
//! pressure, file descriptors, processes, uptime) runs on a blocking thread
//! under its own deadline ([`crate::config::HostMetrics::timeout`]): a hung
//! NFS mount or a slow `/proc` read costs that source's samples for the
//! cycle, counted in `vedette_agent_source_timeouts_total{source}`, and never
//! the rest of the sample. A source still stuck from an earlier cycle is
//! skipped (and counted) until its thread returns.
//!
//! `sysinfo` is used as its docs advise: one long-lived `System`, `Disks` and
//! `Networks`, CPU usage without frequency, and no process scan (processes
//! are counted from `/proc` directory names). Linux extras come from `/proc`.
//! Inside a container with cgroup limits, memory and CPU are reported against
//! the limits (`cgroup: auto`).
//!
//! Metric names follow DESIGN.md (base units, `_ratio`, `_bytes`, `_total`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sysinfo::{
    CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, Networks, RefreshKind, System,
};
use tokio::task::JoinHandle;
use vedette_protocol::Sample;

use crate::config::{CgroupMode, Filter, HostMetrics};

/// Filesystem types that are not real storage: excluded by default.
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

/// Collects one source's samples.
pub struct Out {
    ts_ms: i64,
    samples: Vec<Sample>,
}

impl Out {
    fn new(ts_ms: i64) -> Out {
        Out {
            ts_ms,
            samples: Vec::new(),
        }
    }

    /// Adds a sample; non-finite values are dropped (the protocol refuses them).
    pub fn push(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        if value.is_finite() {
            self.samples.push(Sample {
                name: name.to_string(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
                ts_ms: self.ts_ms,
                value,
            });
        }
    }
}

/// One independent part of the host sample.
pub trait Source: Send {
    fn name(&self) -> &'static str;
    fn sample(&mut self, out: &mut Out);
}

/// Whether the agent runs inside a container.
pub fn in_container() -> bool {
    Path::new("/.dockerenv").exists()
        || Path::new("/run/.containerenv").exists()
        || std::env::var_os("container").is_some()
}

/// The cgroup's CPU limit in cores, and the cgroup's CPU time used so far.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct CgroupCpu {
    limit_cores: Option<f64>,
    usage_s: Option<f64>,
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Parses cgroup v2 `cpu.max` (`max 100000` or `50000 100000`).
pub fn parse_cpu_max(text: &str) -> Option<f64> {
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

struct Cpu {
    sys: System,
    cgroup: bool,
    last: Option<(Instant, f64)>,
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

struct Memory {
    sys: System,
    cgroup: bool,
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

struct Filesystems {
    disks: Disks,
    mountpoints: Filter,
    fstypes: Filter,
    devices: Filter,
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

struct Network {
    networks: Networks,
    interfaces: Filter,
}

impl Source for Network {
    fn name(&self) -> &'static str {
        "network"
    }
    fn sample(&mut self, out: &mut Out) {
        self.networks.refresh(true);
        let mut ifaces: Vec<_> = self.networks.list().iter().collect();
        ifaces.sort_by(|a, b| a.0.cmp(b.0));
        for (name, data) in ifaces {
            if !self.interfaces.allows(name) {
                continue;
            }
            let l = [("interface", name.as_str())];
            out.push(
                "network_receive_bytes_total",
                &l,
                data.total_received() as f64,
            );
            out.push(
                "network_transmit_bytes_total",
                &l,
                data.total_transmitted() as f64,
            );
            out.push(
                "network_errors_total",
                &[("interface", name), ("direction", "receive")],
                data.total_errors_on_received() as f64,
            );
            out.push(
                "network_errors_total",
                &[("interface", name), ("direction", "transmit")],
                data.total_errors_on_transmitted() as f64,
            );
        }
    }
}

/// Parses one `/proc/pressure/<resource>` file into `out`.
pub fn parse_pressure(resource: &str, text: &str, out: &mut Out) {
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let kind = match words.next() {
            Some(k @ ("some" | "full")) => k,
            _ => continue,
        };
        for w in words {
            let Some((key, value)) = w.split_once('=') else {
                continue;
            };
            let Ok(v) = value.parse::<f64>() else {
                continue;
            };
            match key {
                "avg10" | "avg60" | "avg300" => out.push(
                    &format!("pressure_{kind}_ratio"),
                    &[
                        ("resource", resource),
                        ("window", &format!("{}s", &key[3..])),
                    ],
                    v / 100.0,
                ),
                "total" => out.push(
                    &format!("pressure_{kind}_seconds_total"),
                    &[("resource", resource)],
                    v / 1e6,
                ),
                _ => {}
            }
        }
    }
}

struct Pressure;

impl Source for Pressure {
    fn name(&self) -> &'static str {
        "pressure"
    }
    fn sample(&mut self, out: &mut Out) {
        for resource in ["cpu", "memory", "io"] {
            if let Some(text) = read(&format!("/proc/pressure/{resource}")) {
                parse_pressure(resource, &text, out);
            }
        }
    }
}

/// Parses `/proc/sys/fs/file-nr` (`allocated unused max`).
pub fn parse_file_nr(text: &str, out: &mut Out) {
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

struct Kernel;

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

enum Slot {
    Idle(Box<dyn Source>),
    /// Still running from an earlier cycle (past its deadline).
    Busy(&'static str, JoinHandle<(Box<dyn Source>, Out)>),
    /// Panicked; not run again.
    Gone,
}

/// Deadline misses by source name, for `/metrics`. Made once per agent
/// and handed to every sampler, so a reload does not reset the counters.
pub type Timeouts = Arc<Mutex<BTreeMap<&'static str, u64>>>;

/// Samples the host. Keep one for the agent's lifetime (CPU usage is
/// measured between samples).
pub struct Sampler {
    slots: Vec<Slot>,
    timeout: Duration,
    timeouts: Timeouts,
}

impl Sampler {
    /// Takes the CPU baseline the first sample's usage is measured from.
    /// Deadline misses are counted in `timeouts`.
    pub fn new(config: &HostMetrics, timeouts: Timeouts) -> Sampler {
        let cgroup = match config.cgroup {
            CgroupMode::On => true,
            CgroupMode::Off => false,
            CgroupMode::Auto => in_container(),
        };
        let sources: Vec<Box<dyn Source>> = vec![
            Box::new(Cpu {
                sys: System::new_with_specifics(
                    RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing().with_cpu_usage()),
                ),
                cgroup,
                last: None,
            }),
            Box::new(Memory {
                sys: System::new_with_specifics(
                    RefreshKind::nothing().with_memory(MemoryRefreshKind::everything()),
                ),
                cgroup,
            }),
            Box::new(Filesystems {
                disks: Disks::new_with_refreshed_list_specifics(
                    DiskRefreshKind::nothing().with_storage(),
                ),
                mountpoints: config.mountpoints.clone(),
                fstypes: config.fstypes.clone(),
                devices: config.devices.clone(),
            }),
            Box::new(Network {
                networks: Networks::new_with_refreshed_list(),
                interfaces: config.interfaces.clone(),
            }),
            Box::new(Pressure),
            Box::new(Kernel),
        ];
        {
            let mut t = timeouts.lock().unwrap_or_else(|p| p.into_inner());
            for s in &sources {
                t.entry(s.name()).or_insert(0);
            }
        }
        Sampler {
            slots: sources.into_iter().map(Slot::Idle).collect(),
            timeout: config.timeout,
            timeouts,
        }
    }

    fn timed_out(&self, name: &'static str, first: bool) {
        *self
            .timeouts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name)
            .or_insert(0) += 1;
        if first {
            tracing::warn!(source = name, timeout = ?self.timeout, "host metrics source missed its deadline; skipping it until it returns");
        }
    }

    /// One sample of every source that answers within its deadline.
    pub async fn sample(&mut self, ts_ms: i64) -> Vec<Sample> {
        let mut samples = Vec::with_capacity(64);
        for i in 0..self.slots.len() {
            let slot = std::mem::replace(&mut self.slots[i], Slot::Gone);
            let source = match slot {
                Slot::Idle(s) => s,
                Slot::Busy(name, handle) if handle.is_finished() => match handle.await {
                    Ok((s, _stale)) => {
                        tracing::info!(source = name, "host metrics source answered again");
                        s
                    }
                    Err(_) => continue,
                },
                Slot::Busy(name, handle) => {
                    self.timed_out(name, false);
                    self.slots[i] = Slot::Busy(name, handle);
                    continue;
                }
                Slot::Gone => continue,
            };
            let name = source.name();
            let mut handle = tokio::task::spawn_blocking(move || {
                let mut source = source;
                let mut out = Out::new(ts_ms);
                source.sample(&mut out);
                (source, out)
            });
            match tokio::time::timeout(self.timeout, &mut handle).await {
                Ok(Ok((source, out))) => {
                    samples.extend(out.samples);
                    self.slots[i] = Slot::Idle(source);
                }
                Ok(Err(e)) => {
                    tracing::error!(source = name, error = %e, "host metrics source failed; disabled until restart");
                }
                Err(_) => {
                    self.timed_out(name, true);
                    self.slots[i] = Slot::Busy(name, handle);
                }
            }
        }
        samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vedette_protocol::{AgentInfo, Batch, Limits};

    #[tokio::test]
    async fn samples_this_host_within_protocol_limits() {
        let config = crate::config::Config::embedded().unwrap();
        let mut s = Sampler::new(&config.host_metrics, Timeouts::default());
        tokio::time::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL).await;
        let now = 1_763_700_000_000;
        let samples = s.sample(now).await;
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
    fn pressure_and_file_descriptors() {
        let mut out = Out::new(1);
        parse_pressure(
            "memory",
            "some avg10=1.50 avg60=0.20 avg300=0.00 total=2500000\nfull avg10=0.50 avg60=0.00 avg300=0.00 total=1000\n",
            &mut out,
        );
        parse_file_nr("3000\t0\t100000\n", &mut out);
        let get = |name: &str, labels: &[(&str, &str)]| {
            out.samples
                .iter()
                .find(|s| {
                    s.name == name
                        && labels
                            .iter()
                            .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
                })
                .map(|s| s.value)
        };
        assert_eq!(
            get(
                "pressure_some_ratio",
                &[("resource", "memory"), ("window", "10s")]
            ),
            Some(0.015)
        );
        assert_eq!(get("pressure_some_ratio", &[("window", "300s")]), Some(0.0));
        assert_eq!(
            get("pressure_full_ratio", &[("window", "10s")]),
            Some(0.005)
        );
        assert_eq!(get("pressure_some_seconds_total", &[]), Some(2.5));
        assert_eq!(get("pressure_full_seconds_total", &[]), Some(0.001));
        assert_eq!(get("file_descriptors_open", &[]), Some(3000.0));
        assert_eq!(get("file_descriptors_max", &[]), Some(100000.0));
        assert_eq!(get("file_descriptors_used_ratio", &[]), Some(0.03));
        assert_eq!(out.samples.len(), 8 + 3);
        // Garbage is ignored, not guessed.
        let mut out = Out::new(1);
        parse_pressure("io", "bogus\nsome avg10=x total=\n", &mut out);
        parse_file_nr("1 2", &mut out);
        assert!(out.samples.is_empty());
    }

    #[test]
    fn cgroup_cpu_max() {
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(1.5));
        assert_eq!(parse_cpu_max(""), None);
    }

    /// Hangs on its first call until released.
    struct Hang(Arc<std::sync::Barrier>, bool);
    impl Source for Hang {
        fn name(&self) -> &'static str {
            "hang"
        }
        fn sample(&mut self, out: &mut Out) {
            if !self.1 {
                self.1 = true;
                self.0.wait();
            }
            out.push("late", &[], 1.0);
        }
    }
    struct Quick;
    impl Source for Quick {
        fn name(&self) -> &'static str {
            "quick"
        }
        fn sample(&mut self, out: &mut Out) {
            out.push("quick", &[], 1.0);
        }
    }

    #[tokio::test]
    async fn a_hung_source_costs_only_its_own_samples() {
        let release = Arc::new(std::sync::Barrier::new(2));
        let timeouts: Timeouts = Arc::default();
        let mut s = Sampler {
            slots: vec![
                Slot::Idle(Box::new(Hang(Arc::clone(&release), false))),
                Slot::Idle(Box::new(Quick)),
            ],
            timeout: Duration::from_millis(50),
            timeouts: Arc::clone(&timeouts),
        };
        let count = |n: &str| timeouts.lock().unwrap().get(n).copied().unwrap_or(0);
        let names = |v: Vec<Sample>| v.into_iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(names(s.sample(1).await), ["quick"]);
        assert_eq!(count("hang"), 1);
        // Still stuck: skipped at once (no second wait), counted again.
        assert_eq!(names(s.sample(2).await), ["quick"]);
        assert_eq!(count("hang"), 2);
        assert_eq!(count("quick"), 0);
        // Released: once its thread returns, it is sampled again.
        release.wait();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let got = names(s.sample(3).await);
            if got == ["late", "quick"] {
                break;
            }
            assert_eq!(got, ["quick"]);
            assert!(
                tokio::time::Instant::now() < deadline,
                "the source never came back"
            );
            tokio::task::yield_now().await;
        }
    }

    #[test]
    fn default_filters() {
        let c = crate::config::Config::embedded().unwrap().host_metrics;
        assert!(!c.interfaces.allows("lo"));
        assert!(!c.interfaces.allows("veth1234"));
        assert!(c.interfaces.allows("eth0"));
        for fs in PSEUDO_FILESYSTEMS {
            assert!(!c.fstypes.allows(fs), "{fs}");
        }
        assert!(c.fstypes.allows("ext4"));
        assert!(c.fstypes.allows("nfs4"));
        assert!(c.fstypes.allows("fuse-lxcfs"), "the dot is literal");
        assert!(!c.mountpoints.allows("/etc/hosts"));
        assert!(!c.mountpoints.allows("/proc/sys"));
        assert!(c.mountpoints.allows("/"));
        assert!(c.mountpoints.allows("/devices"));
    }
}
