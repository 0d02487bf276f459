use super::kernel::parse_file_nr;
use super::pressure::parse_pressure;
use super::settings::*;
use super::*;
use vedette_protocol::{AgentInfo, Batch, Limits};

#[tokio::test]
async fn samples_this_host_within_protocol_limits() {
    let config = crate::config::Config::embedded().unwrap();
    let mut s = Sampler::new(&config.host_metrics, Timeouts::default());
    let now = 1_763_700_000_000;
    // CPU usage needs a clock tick since the previous read: sample until
    // the total's and every core's counters moved (one tick is 10 ms; the
    // kernel rounds the total and each core on their own), within a deadline.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let samples = loop {
        let samples = s.sample(now).await;
        let cores = samples
            .iter()
            .filter(|x| x.name == "cpu_core_usage_ratio")
            .count();
        let all = samples.iter().any(|x| x.name == "cpu_usage_ratio");
        if all && cores == std::thread::available_parallelism().unwrap().get() {
            break samples;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not every core ticked in 10 s"
        );
    };
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

fn value(out: &Out, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<f64> = out
        .samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?} matches {found:?}");
    found.first().copied()
}

#[test]
fn cpu_times_modes_and_usage_between_reads() {
    let first = "cpu  100 10 50 800 40 0 5 0 7 0\ncpu0 50 5 25 400 20 0 2 0 0 0\ncpu1 50 5 25 400 20 0 3 0 0 0\nintr 1 2\nctxt 12345\nbtime 1\nprocesses 678\nprocs_running 3\nprocs_blocked 1\n";
    // Core 0 busy for 100 ticks, core 1 idle for 100.
    let second = "cpu  200 10 50 900 40 0 5 0 7 0\ncpu0 150 5 25 400 20 0 2 0 0 0\ncpu1 50 5 25 500 20 0 3 0 0 0\nctxt 20000\nprocesses 700\nprocs_running 1\nprocs_blocked 0\n";
    let (mut before, mut now) = (cpu::Stat::default(), cpu::Stat::default());
    cpu::parse_stat(first, &mut before);
    cpu::parse_stat(second, &mut now);
    let mut out = Out::new(1);
    cpu::report(&now, &before, &mut out);
    assert_eq!(
        value(&out, "cpu_seconds_total", &[("mode", "user")]),
        Some(2.0)
    );
    assert_eq!(
        value(&out, "cpu_seconds_total", &[("mode", "idle")]),
        Some(9.0)
    );
    assert_eq!(
        value(&out, "cpu_seconds_total", &[("mode", "iowait")]),
        Some(0.4)
    );
    assert_eq!(
        value(&out, "cpu_seconds_total", &[("mode", "steal")]),
        Some(0.0)
    );
    assert_eq!(
        out.samples
            .iter()
            .filter(|s| s.name == "cpu_seconds_total")
            .count(),
        8
    );
    assert_eq!(
        value(&out, "cpu_core_usage_ratio", &[("core", "0")]),
        Some(1.0)
    );
    assert_eq!(
        value(&out, "cpu_core_usage_ratio", &[("core", "1")]),
        Some(0.0)
    );
    assert_eq!(now.all.usage_since(&before.all), Some(0.5));
    assert_eq!(value(&out, "context_switches_total", &[]), Some(20000.0));
    assert_eq!(value(&out, "forks_total", &[]), Some(700.0));
    assert_eq!(value(&out, "processes_running", &[]), Some(1.0));
    assert_eq!(value(&out, "processes_blocked", &[]), Some(0.0));
    // No time passed, or counters that went back (a new boot): no ratio.
    assert_eq!(now.all.usage_since(&now.all), None);
    assert_eq!(before.all.usage_since(&now.all), None);
    // A re-used Stat forgets what the new text does not say.
    cpu::parse_stat("cpu  1 1 1 1 1 1 1 1\n", &mut now);
    assert_eq!((now.cores.len(), now.forks), (0, None));
}

const MEMINFO: &str = "MemTotal:        1000 kB\nMemFree:          100 kB\nMemAvailable:     600 kB\nBuffers:           20 kB\nCached:           300 kB\nSwapCached:         0 kB\nSwapTotal:        400 kB\nSwapFree:         100 kB\n";

#[test]
fn memory_is_the_hosts_unless_a_smaller_limit_binds() {
    let m = memory::parse_meminfo(MEMINFO);
    assert_eq!(m.total, Some(1024000.0));
    let mut out = Out::new(1);
    memory::report(&m, None, &mut out);
    assert_eq!(value(&out, "memory_available_bytes", &[]), Some(614400.0));
    assert_eq!(value(&out, "memory_used_ratio", &[]), Some(0.4));
    assert_eq!(value(&out, "memory_cached_bytes", &[]), Some(307200.0));
    assert_eq!(value(&out, "memory_buffers_bytes", &[]), Some(20480.0));
    assert_eq!(value(&out, "swap_used_ratio", &[]), Some(0.75));
    assert_eq!(value(&out, "swap_free_bytes", &[]), Some(102400.0));
    assert_eq!(value(&out, "cgroup_memory_limit_bytes", &[]), None);
    // A limit above the host's memory binds nothing.
    let mut out = Out::new(1);
    let loose = cgroup::MemoryLimit {
        limit: 2e6,
        usage: 1e6,
        inactive_file: 0.0,
    };
    memory::report(&m, Some(loose), &mut out);
    assert_eq!(value(&out, "memory_total_bytes", &[]), Some(1024000.0));
    assert_eq!(value(&out, "cgroup_memory_limit_bytes", &[]), None);
    // A real limit: the page cache that can be reclaimed is not used.
    let mut out = Out::new(1);
    let tight = cgroup::MemoryLimit {
        limit: 500_000.0,
        usage: 450_000.0,
        inactive_file: 200_000.0,
    };
    memory::report(&m, Some(tight), &mut out);
    assert_eq!(
        value(&out, "cgroup_memory_limit_bytes", &[]),
        Some(500_000.0)
    );
    assert_eq!(value(&out, "memory_total_bytes", &[]), Some(500_000.0));
    assert_eq!(value(&out, "memory_available_bytes", &[]), Some(250_000.0));
    assert_eq!(value(&out, "memory_used_ratio", &[]), Some(0.5));
    // No MemAvailable (a kernel before 3.14, or garbage): nothing guessed.
    let mut out = Out::new(1);
    memory::report(
        &memory::parse_meminfo("MemTotal: x kB\nMemAvailable:\n"),
        None,
        &mut out,
    );
    assert!(out.samples.is_empty());
    let mut out = Out::new(1);
    memory::parse_vmstat(
        "nr_free_pages 5\npgmajfault 42\noom_kill 3\npswpin 1\npswpout 2\npgfault 9\n",
        &mut out,
    );
    assert_eq!(value(&out, "oom_kills_total", &[]), Some(3.0));
    assert_eq!(value(&out, "page_faults_major_total", &[]), Some(42.0));
    assert_eq!(value(&out, "swap_out_pages_total", &[]), Some(2.0));
    assert_eq!(out.samples.len(), 4);
}

#[test]
fn disks_are_whole_devices_in_bytes() {
    let c = crate::config::Config::embedded().unwrap().host_metrics;
    let text = "   8       0 sda 100 0 2048 0 50 0 4096 0 0 1500 0 0 0 0 0\n   8       1 sda1 1 0 8 0 1 0 8 0 0 1 0\n 253 0 dm-0 7 0 8 0 9 0 16 0 0 20 0\n 259 0 nvme0n1 1 0 1 0 1 0 1 0 0 1 0\n 259 1 nvme0n1p1 1 0 1 0 1 0 1 0 0 1 0\n   7 0 loop0 1 0 1 0 1 0 1 0 0 1 0\n   9 0 md0 1 0 1 0 1 0 1 0 0 1 0\n 8 16 sdb 1 2\n";
    let mut out = Out::new(1);
    disks::parse_diskstats(text, &c.disks, &mut out);
    let devices: std::collections::BTreeSet<_> = out
        .samples
        .iter()
        .map(|s| s.labels["device"].as_str())
        .collect();
    assert_eq!(
        devices.into_iter().collect::<Vec<_>>(),
        ["dm-0", "md0", "nvme0n1", "sda"]
    );
    let sda = [("device", "sda")];
    assert_eq!(
        value(&out, "disk_read_bytes_total", &sda),
        Some(2048.0 * 512.0)
    );
    assert_eq!(
        value(&out, "disk_written_bytes_total", &sda),
        Some(4096.0 * 512.0)
    );
    assert_eq!(value(&out, "disk_reads_completed_total", &sda), Some(100.0));
    assert_eq!(value(&out, "disk_writes_completed_total", &sda), Some(50.0));
    assert_eq!(value(&out, "disk_io_time_seconds_total", &sda), Some(1.5));
}

#[test]
fn network_counters_and_tcp_tables() {
    let c = crate::config::Config::embedded().unwrap().host_metrics;
    let dev = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo: 500 5 0 0 0 0 0 0 500 5 0 0 0 0 0 0\n  eth0: 1000 10 1 2 0 0 0 0 3000 30 3 4 0 0 0 0\n  bad: 1 2 3\n";
    let mut out = Out::new(1);
    let names = network::parse_net_dev(dev, &c.interfaces, &mut out);
    assert_eq!(names, ["eth0"]);
    let e = [("interface", "eth0")];
    assert_eq!(value(&out, "network_receive_bytes_total", &e), Some(1000.0));
    assert_eq!(value(&out, "network_receive_packets_total", &e), Some(10.0));
    assert_eq!(value(&out, "network_receive_drop_total", &e), Some(2.0));
    assert_eq!(
        value(&out, "network_transmit_bytes_total", &e),
        Some(3000.0)
    );
    assert_eq!(
        value(&out, "network_transmit_packets_total", &e),
        Some(30.0)
    );
    assert_eq!(value(&out, "network_transmit_drop_total", &e), Some(4.0));
    assert_eq!(
        value(&out, "network_errors_total", &[("direction", "transmit")]),
        Some(3.0)
    );
    let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\nTcp: RtoAlgorithm RtoMin ActiveOpens RetransSegs InErrs\nTcp: 1 200 5 77 0\n";
    assert_eq!(network::snmp_value(snmp, "Tcp:", "RetransSegs"), Some(77.0));
    assert_eq!(network::snmp_value(snmp, "Tcp:", "Missing"), None);
    assert_eq!(
        network::snmp_value("Tcp: RetransSegs\n", "Tcp:", "RetransSegs"),
        None
    );
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

#[test]
fn systemd_units_failed_and_listed() {
    let text = "\
dev-vda.device loaded active plugged /dev/vda
● nginx.service loaded failed failed A high performance web server
postgresql@15-main.service loaded active running PostgreSQL Cluster 15-main
ssh.service loaded inactive dead OpenBSD Secure Shell server
broken.mount not-found failed failed broken.mount
garbage
";
    let none = systemd::parse_units(text, None);
    assert_eq!((none.failed, none.listed.len()), (2, 0));
    let mut diag = vedette_yaml::Diagnostics::new("");
    let units = Filter::build(
        &["^(nginx|postgresql@.*|ssh)\\.service$".into()],
        &[],
        ["u", "u"],
        &mut diag,
    );
    let listed = systemd::parse_units(text, Some(&units));
    assert_eq!(
        listed.listed,
        [
            ("nginx.service".to_string(), false),
            ("postgresql@15-main.service".to_string(), true),
            ("ssh.service".to_string(), false)
        ]
    );
}

#[test]
fn systemd_is_asked_once_per_period_and_its_answer_kept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // systemd cannot run here: a stand-in that counts its calls.
    let fake = dir.path().join("systemctl");
    let calls = dir.path().join("calls");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho x >> '{}'\necho 'a.service loaded failed failed A'\necho 'b.service loaded active running B'\n",
            calls.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut diag = vedette_yaml::Diagnostics::new("");
    let units = Filter::build(&["^b\\.".into()], &[], ["u", "u"], &mut diag);
    let mut s = systemd::Systemd::new(
        fake.to_str().unwrap(),
        Some(units),
        Duration::from_secs(3600),
    );
    for _ in 0..3 {
        let mut out = Out::new(1);
        s.sample(&mut out);
        assert_eq!(value(&out, "systemd_units_failed", &[]), Some(1.0));
        assert_eq!(
            value(&out, "systemd_unit_active", &[("unit", "b.service")]),
            Some(1.0)
        );
        assert_eq!(out.samples.len(), 2);
    }
    let n = std::fs::read_to_string(&calls).unwrap().lines().count();
    assert_eq!(n, 1, "one systemctl per period, not per sample");
    // A systemctl that fails reports nothing rather than stale or zero.
    let mut s = systemd::Systemd::new("/nonexistent/systemctl", None, Duration::ZERO);
    let mut out = Out::new(1);
    s.sample(&mut out);
    assert!(out.samples.is_empty());
}

#[test]
fn a_sample_the_collector_would_refuse_is_left_out_not_the_batch() {
    let mut out = Out::new(1);
    let deep = format!("/home/mallory/{}", "d/".repeat(200));
    out.push("filesystem_size_bytes", &[("mountpoint", &deep)], 1.0);
    out.push("filesystem_size_bytes", &[("mountpoint", "/")], 1.0);
    out.push("cpu_usage_ratio", &[], f64::NAN);
    assert_eq!(out.samples.len(), 1);
    assert_eq!(out.samples[0].labels["mountpoint"], "/");
}

#[test]
fn a_thousand_user_mounts_do_not_grow_the_batch_past_the_cap() {
    let mut text = String::from("27 1 254:0 / / rw - ext4 /dev/vda rw\n");
    for i in 0..1000 {
        text.push_str(&format!(
            "{} 27 0:99 / /home/u/m{i} rw - fuse.sshfs u@h: rw\n",
            100 + i
        ));
    }
    let none = Filter::default();
    let (kept, total) = filesystems::select(&text, &none, &none, &none);
    assert_eq!((kept.len(), total), (filesystems::MAX_MOUNTS, 1001));
    assert_eq!(kept[0].mountpoint, "/", "mount order: the system's first");
    // Every mount's samples fit in what the collector accepts, beside the rest.
    let mut out = Out::new(1);
    for m in &kept {
        filesystems::report(
            m,
            Some(filesystems::Usage {
                size: 1.0,
                avail: 1.0,
                free: 1.0,
                files: 1.0,
                files_free: 1.0,
                readonly: false,
            }),
            &mut out,
        );
    }
    assert!(out.samples.len() < vedette_protocol::Limits::default().max_samples / 2);
}
