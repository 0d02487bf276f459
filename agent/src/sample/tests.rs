use super::cpu::parse_cpu_max;
use super::kernel::parse_file_nr;
use super::pressure::parse_pressure;
use super::settings::*;
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
