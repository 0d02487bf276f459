//! The agent's numbers beside Debian's `prometheus-node-exporter` on the
//! same host at the same moment: node_exporter is scraped, `vedette-agent
//! once` samples, node_exporter is scraped again, and every quantity both
//! report must fall between the two scrapes (counters) or within a small
//! tolerance of them (gauges that move on their own: free memory, free
//! space while the build writes, load). Run inside cgroups the test makes:
//! one without a memory limit (the host's numbers) and one with a limit
//! and a warm page cache (limit − working set, cache not counted as used).
//!
//! Mounts are tested in a private mount namespace (`unshare -m`): a bind
//! mount under `/sysdata-…`, an included tmpfs, and a FUSE mount (bindfs)
//! whose daemon is stopped so `statvfs` on it hangs, beside the others.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use vedette_tests::{bin, free_port, wait_for};

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";
const MIB: f64 = 1024.0 * 1024.0;

type Labels = BTreeMap<String, String>;

/// One series of an exposition or of the agent's batch.
#[derive(Debug, Clone)]
struct Series {
    name: String,
    labels: Labels,
    value: f64,
}

/// Parses Prometheus' text format (what node_exporter serves).
fn parse_exposition(text: &str) -> Vec<Series> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (head, value) = match line.rsplit_once(' ') {
            Some(x) => x,
            None => continue,
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match head.split_once('{') {
            None => (head.to_string(), Labels::new()),
            Some((name, rest)) => {
                let mut labels = Labels::new();
                let mut rest = rest.trim_end_matches('}');
                while let Some((k, v)) = rest.split_once("=\"") {
                    let mut end = 0;
                    let b = v.as_bytes();
                    while end < b.len() && !(b[end] == b'"' && (end == 0 || b[end - 1] != b'\\')) {
                        end += 1;
                    }
                    labels.insert(
                        k.trim_start_matches(',').to_string(),
                        v[..end].replace("\\\"", "\"").replace("\\\\", "\\"),
                    );
                    rest = v.get(end + 1..).unwrap_or_default();
                }
                (name.to_string(), labels)
            }
        };
        out.push(Series {
            name,
            labels,
            value,
        });
    }
    out
}

/// A node_exporter on its Debian defaults, killed when dropped.
struct NodeExporter {
    child: Child,
    port: u16,
}

impl NodeExporter {
    fn start(dir: &Path) -> NodeExporter {
        assert!(
            Path::new(NODE_EXPORTER).exists(),
            "{NODE_EXPORTER} is missing: tests/run.sh installs prometheus-node-exporter"
        );
        let port = free_port();
        let log = std::fs::File::create(dir.join("node_exporter.log")).expect("a log file");
        let child = Command::new(NODE_EXPORTER)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting node_exporter");
        let ne = NodeExporter { child, port };
        wait_for(
            "node_exporter to answer",
            Duration::from_secs(20),
            &dir.join("node_exporter.log"),
            || ne.try_scrape(),
        );
        ne
    }

    fn try_scrape(&self) -> Option<Vec<Series>> {
        let text = reqwest::blocking::get(format!("http://127.0.0.1:{}/metrics", self.port))
            .ok()?
            .text()
            .ok()?;
        Some(parse_exposition(&text))
    }

    fn scrape(&self) -> Vec<Series> {
        self.try_scrape().expect("scraping node_exporter")
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A memory cgroup the test made (v2 where the memory controller is on
/// the unified hierarchy, else v1's), removed when dropped.
struct TestCgroup {
    dir: PathBuf,
    v2: bool,
}

impl TestCgroup {
    fn create(name: &str, limit: Option<u64>) -> TestCgroup {
        let v2_root = Path::new("/sys/fs/cgroup");
        let v2 = std::fs::read_to_string(v2_root.join("cgroup.controllers"))
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "memory"));
        let root = if v2 {
            v2_root.to_path_buf()
        } else {
            v2_root.join("memory")
        };
        let dir = root.join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| {
            panic!(
                "making cgroup {} (the test runs as root): {e}",
                dir.display()
            )
        });
        if let Some(limit) = limit {
            let file = if v2 {
                "memory.max"
            } else {
                "memory.limit_in_bytes"
            };
            std::fs::write(dir.join(file), limit.to_string()).expect("setting the memory limit");
        }
        TestCgroup { dir, v2 }
    }

    /// Runs `script` (sh) inside the cgroup and returns its stdout.
    fn run(&self, script: &str) -> String {
        let procs = self.dir.join("cgroup.procs");
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("echo $$ > '{}' && {script}", procs.display()))
            .stderr(Stdio::inherit())
            .output()
            .expect("running sh");
        assert!(out.status.success(), "{script} failed: {:?}", out.status);
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file))
            .unwrap_or_else(|e| panic!("reading {file} of the test cgroup: {e}"))
    }

    /// usage − inactive file cache, in bytes.
    fn working_set(&self) -> f64 {
        let (usage, key) = if self.v2 {
            ("memory.current", "inactive_file")
        } else {
            ("memory.usage_in_bytes", "total_inactive_file")
        };
        let usage: f64 = self.read(usage).trim().parse().expect("a usage number");
        let inactive: f64 = self
            .read("memory.stat")
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
            .expect("inactive file in memory.stat");
        usage - inactive
    }

    fn usage(&self) -> f64 {
        let file = if self.v2 {
            "memory.current"
        } else {
            "memory.usage_in_bytes"
        };
        self.read(file).trim().parse().expect("a usage number")
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Its processes have exited; charged page cache moves to the parent.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// `vedette-agent once` inside `cgroup`, as the samples of its batch.
fn agent_once(dir: &Path, cgroup: &TestCgroup, extra: &str) -> Vec<Series> {
    let cfg = dir.join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "host: differential\nlisten: off\nspool: {{dir: {}/spool}}\n{extra}",
            dir.display()
        ),
    )
    .expect("writing the agent config");
    let out = cgroup.run(&format!(
        "exec '{}' once --config '{}'",
        bin("vedette-agent").display(),
        cfg.display()
    ));
    let batch: serde_json::Value = serde_json::from_str(&out).expect("once prints a batch");
    batch["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| Series {
            name: s["name"].as_str().expect("a name").to_string(),
            labels: serde_json::from_value(s["labels"].clone()).unwrap_or_default(),
            value: s["value"].as_f64().expect("a value"),
        })
        .collect()
}

/// How two reads of one quantity may differ.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Never goes down: ours lies between the two scrapes.
    Counter,
    /// Moves on its own: ours lies within this of the two scrapes' range.
    Gauge(f64),
    /// Does not change (relative 1e-9).
    Same,
}

/// node_exporter's series name, the labels selecting it, how they may differ.
type Twin = (String, Vec<(&'static str, String)>, Kind);

/// node_exporter's twin of one of our samples: its name, the labels that
/// select it (several series are summed: `node_cpu_seconds_total` per
/// core), and how the two may differ.
fn twin(s: &Series) -> Option<Twin> {
    let l = |k: &str| s.labels.get(k).cloned().unwrap_or_default();
    let fs = || {
        vec![
            ("mountpoint", l("mountpoint")),
            ("fstype", l("fstype")),
            ("device", l("device")),
        ]
    };
    let dev = || vec![("device", l("device"))];
    let iface = || vec![("device", l("interface"))];
    let plain = |name: &str, kind| Some((name.to_string(), Vec::new(), kind));
    match s.name.as_str() {
        "cpu_seconds_total" => Some((
            "node_cpu_seconds_total".into(),
            vec![("mode", l("mode"))],
            Kind::Counter,
        )),
        "context_switches_total" => plain("node_context_switches_total", Kind::Counter),
        "forks_total" => plain("node_forks_total", Kind::Counter),
        "processes_running" => plain("node_procs_running", Kind::Gauge(8.0)),
        "processes_blocked" => plain("node_procs_blocked", Kind::Gauge(8.0)),
        "load_average" => {
            let n = match l("period").as_str() {
                "1m" => "node_load1",
                "5m" => "node_load5",
                _ => "node_load15",
            };
            plain(n, Kind::Gauge(0.05))
        }
        "memory_total_bytes" => plain("node_memory_MemTotal_bytes", Kind::Same),
        "memory_available_bytes" => {
            plain("node_memory_MemAvailable_bytes", Kind::Gauge(64.0 * MIB))
        }
        "memory_cached_bytes" => plain("node_memory_Cached_bytes", Kind::Gauge(64.0 * MIB)),
        "memory_buffers_bytes" => plain("node_memory_Buffers_bytes", Kind::Gauge(8.0 * MIB)),
        "swap_total_bytes" => plain("node_memory_SwapTotal_bytes", Kind::Same),
        "swap_free_bytes" => plain("node_memory_SwapFree_bytes", Kind::Gauge(16.0 * MIB)),
        "oom_kills_total" => plain("node_vmstat_oom_kill", Kind::Counter),
        "page_faults_major_total" => plain("node_vmstat_pgmajfault", Kind::Counter),
        "swap_in_pages_total" => plain("node_vmstat_pswpin", Kind::Counter),
        "swap_out_pages_total" => plain("node_vmstat_pswpout", Kind::Counter),
        "filesystem_size_bytes" => Some(("node_filesystem_size_bytes".into(), fs(), Kind::Same)),
        // The build beside this test writes to the same disk.
        "filesystem_avail_bytes" => Some((
            "node_filesystem_avail_bytes".into(),
            fs(),
            Kind::Gauge(256.0 * MIB),
        )),
        "filesystem_free_bytes" => Some((
            "node_filesystem_free_bytes".into(),
            fs(),
            Kind::Gauge(256.0 * MIB),
        )),
        "filesystem_files" => Some(("node_filesystem_files".into(), fs(), Kind::Same)),
        "filesystem_files_free" => Some((
            "node_filesystem_files_free".into(),
            fs(),
            Kind::Gauge(20_000.0),
        )),
        "filesystem_readonly" => Some(("node_filesystem_readonly".into(), fs(), Kind::Same)),
        "filesystem_device_error" => {
            Some(("node_filesystem_device_error".into(), fs(), Kind::Same))
        }
        "disk_read_bytes_total" => {
            Some(("node_disk_read_bytes_total".into(), dev(), Kind::Counter))
        }
        "disk_written_bytes_total" => {
            Some(("node_disk_written_bytes_total".into(), dev(), Kind::Counter))
        }
        "disk_reads_completed_total" => Some((
            "node_disk_reads_completed_total".into(),
            dev(),
            Kind::Counter,
        )),
        "disk_writes_completed_total" => Some((
            "node_disk_writes_completed_total".into(),
            dev(),
            Kind::Counter,
        )),
        "disk_io_time_seconds_total" => Some((
            "node_disk_io_time_seconds_total".into(),
            dev(),
            Kind::Counter,
        )),
        "network_receive_bytes_total"
        | "network_transmit_bytes_total"
        | "network_receive_packets_total"
        | "network_transmit_packets_total"
        | "network_receive_drop_total"
        | "network_transmit_drop_total" => {
            Some((format!("node_{}", s.name), iface(), Kind::Counter))
        }
        "network_errors_total" => Some((
            format!("node_network_{}_errs_total", l("direction")),
            iface(),
            Kind::Counter,
        )),
        "network_up" => Some(("node_network_up".into(), iface(), Kind::Same)),
        "network_speed_bytes" => Some(("node_network_speed_bytes".into(), iface(), Kind::Same)),
        "tcp_retransmitted_segments_total" => plain("node_netstat_Tcp_RetransSegs", Kind::Counter),
        "tcp_listen_drops_total" => plain("node_netstat_TcpExt_ListenDrops", Kind::Counter),
        "conntrack_entries" => plain("node_nf_conntrack_entries", Kind::Gauge(64.0)),
        "conntrack_limit" => plain("node_nf_conntrack_entries_limit", Kind::Same),
        "time_offset_seconds" => plain("node_timex_offset_seconds", Kind::Gauge(0.001)),
        "time_sync_status" => plain("node_timex_sync_status", Kind::Same),
        "pressure_some_seconds_total" | "pressure_full_seconds_total" => {
            let n = match (s.name.starts_with("pressure_some"), l("resource").as_str()) {
                (true, "cpu") => "node_pressure_cpu_waiting_seconds_total",
                (true, "memory") => "node_pressure_memory_waiting_seconds_total",
                (false, "memory") => "node_pressure_memory_stalled_seconds_total",
                (true, "io") => "node_pressure_io_waiting_seconds_total",
                (false, "io") => "node_pressure_io_stalled_seconds_total",
                _ => return None,
            };
            plain(n, Kind::Counter)
        }
        "file_descriptors_open" => plain("node_filefd_allocated", Kind::Gauge(500.0)),
        "file_descriptors_max" => plain("node_filefd_maximum", Kind::Same),
        _ => None,
    }
}

/// The sum of node_exporter's series `name` whose labels include `want`
/// (None when there is none).
fn ne_value(series: &[Series], name: &str, want: &[(&str, String)]) -> Option<f64> {
    let mut hit = false;
    let sum = series
        .iter()
        .filter(|s| s.name == name && want.iter().all(|(k, v)| s.labels.get(*k) == Some(v)))
        .inspect(|_| hit = true)
        .map(|s| s.value)
        .sum();
    hit.then_some(sum)
}

/// Compares every sample of ours that node_exporter also reports; returns
/// the table (one line per quantity) and the failures.
fn compare(ours: &[Series], before: &[Series], after: &[Series]) -> (Vec<String>, Vec<String>) {
    let (mut table, mut failures) = (Vec::new(), Vec::new());
    for s in ours {
        let Some((name, want, kind)) = twin(s) else {
            continue;
        };
        let (Some(a), Some(b)) = (
            ne_value(before, &name, &want),
            ne_value(after, &name, &want),
        ) else {
            continue;
        };
        let (lo, hi) = (a.min(b), a.max(b));
        let v = s.value;
        let ok = match kind {
            // Both print ticks / 100 and the like; allow float rounding.
            Kind::Counter => v >= lo - 1e-6 * lo.abs() - 0.011 && v <= hi + 1e-6 * hi.abs() + 0.011,
            Kind::Gauge(tol) => v >= lo - tol && v <= hi + tol,
            Kind::Same => (v - a).abs() <= 1e-9 * a.abs().max(1.0),
        };
        let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let line = format!(
            "{:<5} {}{{{}}} = {v} | {name} {a} .. {b} ({kind:?})",
            if ok { "ok" } else { "FAIL" },
            s.name,
            labels.join(",")
        );
        if !ok {
            failures.push(line.clone());
        }
        table.push(line);
    }
    (table, failures)
}

fn get(ours: &[Series], name: &str) -> f64 {
    ours.iter()
        .find(|s| s.name == name && s.labels.is_empty())
        .unwrap_or_else(|| panic!("the agent reports no {name}"))
        .value
}

#[test]
fn the_agent_agrees_with_node_exporter_at_the_same_moment() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ne = NodeExporter::start(dir.path());
    let cgroup = TestCgroup::create("vedette-nolimit", None);
    let before = ne.scrape();
    let ours = agent_once(dir.path(), &cgroup, "host_metrics: {cgroup: on}\n");
    let after = ne.scrape();
    let (table, failures) = compare(&ours, &before, &after);
    println!("{}", table.join("\n"));
    assert!(
        failures.is_empty(),
        "disagreements:\n{}",
        failures.join("\n")
    );
    // What the issue names, compared, not merely present.
    for must in [
        "memory_available_bytes",
        "memory_total_bytes",
        "cpu_seconds_total{mode=user}",
        "cpu_seconds_total{mode=steal}",
        "context_switches_total",
        "oom_kills_total",
        "filesystem_avail_bytes{device=",
        "filesystem_free_bytes{",
        "filesystem_files_free{",
        "filesystem_readonly{",
        "disk_read_bytes_total{device=",
        "network_receive_packets_total{interface=",
        "tcp_retransmitted_segments_total",
        "time_offset_seconds",
        "file_descriptors_max",
    ] {
        assert!(
            table.iter().any(|l| l.contains(&format!(" {must}"))),
            "{must} was not compared:\n{}",
            table.join("\n")
        );
    }
    assert!(
        table.len() >= 50,
        "only {} quantities compared",
        table.len()
    );
    // No limit: the host's memory, and no limit reported.
    assert!(!ours.iter().any(|s| s.name == "cgroup_memory_limit_bytes"));
    // Uptime: node_exporter reports the boot time.
    let boot = ne_value(&after, "node_boot_time_seconds", &[]).expect("node_boot_time_seconds");
    let now = ne_value(&after, "node_time_seconds", &[]).expect("node_time_seconds");
    let up = get(&ours, "uptime_seconds");
    assert!(
        (now - boot - up).abs() < 3.0,
        "uptime {up} vs {}",
        now - boot
    );
}

#[test]
fn under_a_memory_limit_the_page_cache_is_not_used_memory() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let limit: u64 = 512 << 20;
    let cgroup = TestCgroup::create("vedette-limit", Some(limit));
    // Warm the cgroup's page cache: 128 MiB written once, charged to it.
    let file = dir.path().join("cache.bin");
    cgroup.run(&format!(
        "dd if=/dev/zero of='{}' bs=1M count=128 conv=fsync status=none",
        file.display()
    ));
    let (ws_before, usage) = (cgroup.working_set(), cgroup.usage());
    assert!(
        usage - ws_before > 64.0 * MIB,
        "the cache was not charged to the test cgroup (usage {usage}, working set {ws_before})"
    );
    let ours = agent_once(dir.path(), &cgroup, "host_metrics: {cgroup: on}\n");
    let ws_after = cgroup.working_set();
    let limit = limit as f64;
    assert_eq!(get(&ours, "cgroup_memory_limit_bytes"), limit);
    assert_eq!(get(&ours, "memory_total_bytes"), limit);
    let avail = get(&ours, "memory_available_bytes");
    // limit − working set, read by the agent between the two reads here
    // (the agent's own few MiB are charged while it runs).
    let (lo, hi) = (
        limit - ws_before.max(ws_after) - 32.0 * MIB,
        limit - ws_before.min(ws_after) + 1.0 * MIB,
    );
    assert!(
        (lo..=hi).contains(&avail),
        "available {avail} not in {lo}..{hi}"
    );
    // The old "limit − usage" would count the cache as used.
    assert!(
        avail > limit - usage + 48.0 * MIB,
        "available {avail} counts the page cache as used (limit − usage = {})",
        limit - usage
    );
    let used = get(&ours, "memory_used_ratio");
    assert!(
        used < usage / limit - 0.1,
        "memory_used_ratio {used} vs usage/limit {}",
        usage / limit
    );
    drop(cgroup);
}

/// What the mount test leaves behind, cleaned up even when it fails.
struct Mounts {
    agent: Child,
    bindfs_pid: PathBuf,
    sysdata: PathBuf,
}

impl Mounts {
    fn bindfs(&self, signal: &str) {
        if let Ok(pid) = std::fs::read_to_string(&self.bindfs_pid) {
            let _ = Command::new("kill")
                .args([format!("-{signal}"), pid.trim().to_string()])
                .status();
        }
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        self.bindfs("CONT");
        let _ = self.agent.kill();
        let _ = self.agent.wait();
        self.bindfs("KILL");
        // The namespace's mounts went with its last process.
        let _ = std::fs::remove_dir(&self.sysdata);
    }
}

/// The agent's series `name` whose `mountpoint` is `mountpoint`.
fn at_mount(series: &[Series], name: &str, mountpoint: &Path) -> Option<Series> {
    let mp = mountpoint.to_string_lossy();
    series
        .iter()
        .find(|s| s.name == name && s.labels.get("mountpoint").map(String::as_str) == Some(&mp))
        .cloned()
}

#[test]
fn a_hung_mount_costs_only_itself_and_no_mount_is_hidden() {
    assert!(
        Command::new("bindfs").arg("--version").output().is_ok(),
        "bindfs is missing: tests/run.sh installs it"
    );
    let dir = tempfile::tempdir().expect("a temp dir");
    let d = dir.path();
    for sub in ["src", "tmpfs", "hang"] {
        std::fs::create_dir(d.join(sub)).expect("a mount point");
    }
    // sysinfo used to drop any mount point starting with /sys.
    let sysdata = PathBuf::from(format!("/sysdata-vedette-{}", std::process::id()));
    std::fs::create_dir_all(&sysdata).expect("making /sysdata-…");
    let port = free_port();
    let cfg = d.join("agent.yaml");
    // An exclude list replaces the default: tmpfs is reported.
    std::fs::write(
        &cfg,
        format!(
            "host: mounts\ninterval: 1s\nlisten: 127.0.0.1:{port}\n\
             collector: {{url: http://127.0.0.1:{}}}\nspool: {{dir: {}/spool}}\n\
             host_metrics:\n  timeout: 1s\n  filesystems:\n    exclude_fstypes: ['^(proc|sysfs|cgroup2?|devpts|mqueue|overlay|fusectl|devtmpfs)$']\n",
            free_port(),
            d.display()
        ),
    )
    .expect("writing the agent config");
    let script = format!(
        "set -e
mount -t tmpfs -o size=8m vedette-test '{d}/tmpfs'
mount --bind '{d}/src' '{sysdata}'
bindfs -f '{d}/src' '{d}/hang' &
echo $! > '{d}/bindfs.pid'
until grep -q ' {d}/hang ' /proc/self/mountinfo; do sleep 0.05; done
kill -STOP $(cat '{d}/bindfs.pid')
exec '{agent}' --config '{cfg}'",
        d = d.display(),
        sysdata = sysdata.display(),
        agent = bin("vedette-agent").display(),
        cfg = cfg.display()
    );
    let log = d.join("agent.log");
    let out = std::fs::File::create(&log).expect("a log file");
    let agent = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .env("RUST_LOG", "info")
        .stdout(out.try_clone().expect("a log handle"))
        .stderr(out)
        .spawn()
        .expect("starting unshare");
    let mounts = Mounts {
        agent,
        bindfs_pid: d.join("bindfs.pid"),
        sysdata: sysdata.clone(),
    };
    let scrape = || -> Option<Vec<Series>> {
        let text = reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics"))
            .ok()?
            .text()
            .ok()?;
        Some(parse_exposition(&text))
    };
    let hang = d.join("hang");
    // The hung mount is an error; the others are all there, in the same sample.
    let series = wait_for(
        "the hung mount reported as a device error",
        Duration::from_secs(30),
        &log,
        || {
            let s = scrape()?;
            let e = at_mount(&s, "vedette_filesystem_device_error", &hang)?;
            (e.value == 1.0).then_some(s)
        },
    );
    let size = |m: &Path| at_mount(&series, "vedette_filesystem_size_bytes", m).map(|s| s.value);
    assert_eq!(
        size(&hang),
        None,
        "no numbers for a mount that did not answer"
    );
    assert!(size(Path::new("/")).is_some_and(|v| v > 0.0), "/ is hidden");
    assert!(
        size(&sysdata).is_some_and(|v| v > 0.0),
        "{} is hidden",
        sysdata.display()
    );
    let tmpfs = at_mount(&series, "vedette_filesystem_size_bytes", &d.join("tmpfs"))
        .expect("the included tmpfs is reported");
    assert_eq!(tmpfs.labels["fstype"], "tmpfs");
    assert_eq!(tmpfs.value, 8.0 * MIB);
    let timeouts = |s: &[Series], source: &str| {
        s.iter()
            .find(|x| {
                x.name == "vedette_agent_source_timeouts_total"
                    && x.labels.get("source").map(String::as_str) == Some(source)
            })
            .map(|x| x.value)
    };
    assert!(timeouts(&series, "mount").is_some_and(|v| v >= 1.0));
    assert_eq!(
        timeouts(&series, "filesystems"),
        Some(0.0),
        "the source itself kept its deadline"
    );

    // Once it answers again, it is reported again.
    mounts.bindfs("CONT");
    wait_for(
        "the mount that answers again to be reported",
        Duration::from_secs(30),
        &log,
        || {
            let s = scrape()?;
            let e = at_mount(&s, "vedette_filesystem_device_error", &hang)?;
            let size = at_mount(&s, "vedette_filesystem_size_bytes", &hang)?;
            (e.value == 0.0 && size.value > 0.0).then_some(())
        },
    );
    drop(mounts);
}
