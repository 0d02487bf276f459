//! Faults, with real processes: the collector SIGKILLed under load from
//! `vedette-loadgen`, its store on a full disk, a receiver that hangs. (The
//! agent SIGKILLed while spooling is in `agent.rs`.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use vedette_tests::http::{Reply, Server};
use vedette_tests::{bin, free_port, metric_at, push_sample, wait_for, Collector, Daemon};

const RULES: &str =
    "rules:\n  - {name: cpu, metric: cpu_usage_ratio, above: 0.9, clear_below: 0.5}\n";

/// Pushes `values` for `host` in order (seq 1, 2, …), each retried like an
/// agent retries a batch until it is acknowledged; `done` counts finished
/// steps. `log` is the collector's, for the timeout message.
fn push_until_acked(url: &str, log: &Path, host: &str, values: &[f64], done: &AtomicUsize) {
    for (i, v) in values.iter().enumerate() {
        let seq = i as u64 + 1;
        wait_for(
            &format!("{host} seq {seq} to be acknowledged"),
            Duration::from_secs(30),
            log,
            || (push_sample(url, host, "b1", seq, "cpu_usage_ratio", *v) == 200).then_some(()),
        );
        done.fetch_add(1, Ordering::SeqCst);
        // Transitions spread over time, so the SIGKILL lands amid them.
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// The webhook requests for incident `id` (not its problem's), by idempotency key.
fn received(hook: &Server, id: i64) -> BTreeMap<String, Vec<String>> {
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in hook.requests() {
        let body = r.json().unwrap_or_default();
        let problem = body["event"].as_str().unwrap_or("").starts_with("problem");
        if body["id"].as_i64() == Some(id) && !problem {
            by_key
                .entry(r.header("idempotency-key").unwrap_or("").to_string())
                .or_default()
                .push(body["event"].as_str().unwrap_or("").to_string());
        }
    }
    by_key
}

#[test]
fn collector_sigkill_under_load_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let hook = Server::start(0, |_| Reply::status(200, "{}"));
    let config = format!(
        "{RULES}notify:\n  - {{name: hook, kind: webhook, url: '{}/hook', max_backoff: 1s}}\n",
        hook.url
    );
    let c = Collector::start(dir.path(), port, &config);
    let url = c.url.clone();

    // Background load: 200 simulated agents every second, 5 % breaching.
    let loadgen = Command::new(bin("vedette-loadgen"))
        .args([
            "--url",
            &url,
            "--agents",
            "200",
            "--interval",
            "1s",
            "--duration",
            "8s",
        ])
        .args(["--breach-ratio", "0.05", "--prefix", "load"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting vedette-loadgen");
    // A real agent with a spool, and its local /metrics to watch the spool.
    let agent_port = free_port();
    let agent = Daemon::start(
        "vedette-agent",
        dir.path(),
        "agent",
        &format!(
            "host: real-01\ncollector: {{url: '{url}'}}\ninterval: 1s\nlisten: 127.0.0.1:{agent_port}\n"
        ),
    );
    // Six hosts each go through open, resolve, reopen, resolve.
    let done = Arc::new(AtomicUsize::new(0));
    let subjects: Vec<_> = (0..6)
        .map(|h| {
            let (url, done, log) = (url.clone(), Arc::clone(&done), c.daemon.log.clone());
            std::thread::spawn(move || {
                push_until_acked(
                    &url,
                    &log,
                    &format!("subject-{h}"),
                    &[0.99, 0.1, 0.99, 0.1],
                    &done,
                )
            })
        })
        .collect();

    // Kill in the middle of the subjects' transitions and the load.
    wait_for(
        "some transitions",
        Duration::from_secs(20),
        &c.daemon.log,
        || (done.load(Ordering::SeqCst) >= 8).then_some(()),
    );
    let log = c.daemon.log.clone();
    assert!(!c.daemon.stop("KILL").success());
    wait_for(
        "the agent to spool",
        Duration::from_secs(20),
        &agent.log,
        || metric_at(agent_port, "vedette_agent_queue_batches").filter(|n| *n >= 2.0),
    );
    let c = Collector::start(dir.path(), port, &config);

    for s in subjects {
        s.join().expect("a subject's pushes were all acknowledged");
    }
    wait_for(
        "the agent's spool to drain",
        Duration::from_secs(30),
        &agent.log,
        || metric_at(agent_port, "vedette_agent_queue_batches").filter(|n| *n == 0.0),
    );
    let out = loadgen.wait_with_output().expect("vedette-loadgen runs");
    let out = String::from_utf8_lossy(&out.stdout);
    let last = out.lines().last().unwrap_or_default().to_string();
    assert!(
        last.starts_with("samples_per_s="),
        "loadgen's last line: {last}"
    );
    let fields: BTreeMap<&str, f64> = last
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
        .collect();
    assert!(fields["samples_per_s"] > 0.0, "{last}");
    assert!(
        fields["errors"] > 0.0,
        "the outage was felt by the load: {last}"
    );

    // No duplicate incident: one per rule and host, whatever the kill cut.
    let incidents = c.incidents();
    let mut seen = BTreeSet::new();
    for i in &incidents {
        let key = (i["rule"].to_string(), i["host"].to_string());
        assert!(seen.insert(key.clone()), "two incidents for {key:?}");
    }
    // No lost transition: each subject's incident was opened, restored and
    // resolved, then reopened, restored and resolved, in that order.
    for h in 0..6 {
        let host = format!("subject-{h}");
        let i = incidents
            .iter()
            .find(|i| i["host"] == host.as_str())
            .unwrap_or_else(|| panic!("no incident for {host}"));
        assert_eq!(i["state"], "resolved", "{host}: {i}");
        let id = i["id"].as_i64().unwrap();
        let full = c.get_json(&format!("/api/v1/incidents/{id}")).unwrap();
        let kinds: Vec<&str> = full["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["kind"].as_str())
            .collect();
        assert_eq!(
            kinds,
            ["opened", "restored", "resolved", "reopened", "restored", "resolved"],
            "{host}: {full}"
        );
    }

    // Every outbox row delivered, each at least once; only requests in
    // flight at the kill may arrive twice (at-least-once, same key).
    let mut twice = 0;
    for i in &incidents {
        let id = i["id"].as_i64().unwrap();
        let deliveries = wait_for(
            "deliveries to finish",
            Duration::from_secs(30),
            &log,
            || {
                let full = c.get_json(&format!("/api/v1/incidents/{id}"))?;
                let d = full["deliveries"].as_array()?.clone();
                d.iter().all(|d| d["state"] == "delivered").then_some(d)
            },
        );
        let got = received(&hook, id);
        for d in &deliveries {
            let event = d["event"].as_str().unwrap();
            let n = got
                .values()
                .filter(|events| events.iter().any(|e| e == event))
                .count();
            assert!(n >= 1, "incident {id}: {event} never reached the webhook");
        }
        assert_eq!(got.len(), deliveries.len(), "incident {id}: keys {got:?}");
        assert!(
            got.values().all(|v| v.len() <= 2),
            "incident {id}: a key arrived more than twice: {got:?}"
        );
        twice += got.values().filter(|v| v.len() > 1).count();
    }
    // A receiver has at most CONCURRENCY (8) requests in flight; only those,
    // cut off by the kill, may be sent again.
    assert!(twice <= 8, "{twice} deliveries arrived twice");
    drop(agent);
}

/// A 4 MiB tmpfs, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &Path) -> Tmpfs {
        std::fs::create_dir_all(at).expect("creating the mount point");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(at)
            .status()
            .expect("running mount");
        assert!(
            ok.success(),
            "mounting a tmpfs at {} (the test runs as root, as CI does)",
            at.display()
        );
        Tmpfs(at.to_path_buf())
    }

    /// Fills the file system with `filler` until it is full.
    fn fill(&self) {
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=64k"])
            .arg(format!("of={}", self.0.join("filler").display()))
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn full_disk_refuses_pushes_with_503_and_recovers_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&dir.path().join("data"));
    let port = free_port();
    // Collector::start puts data_dir at dir/data: the tmpfs.
    let c = Collector::start(dir.path(), port, RULES);
    assert_eq!(
        push_sample(&c.url, "full-01", "b1", 1, "cpu_usage_ratio", 0.1),
        200
    );

    disk.fill();
    // A breach the store cannot persist is refused, not acknowledged.
    let status = push_sample(&c.url, "full-01", "b1", 2, "cpu_usage_ratio", 0.99);
    assert_eq!(status, 503, "a push on a full disk");
    assert!(c
        .daemon
        .log_text()
        .contains("store failed; refusing the batch"));
    assert!(
        c.incidents().is_empty(),
        "nothing persisted, nothing opened"
    );
    assert!(c.get_text("/healthz").is_some(), "the collector stays up");

    // Space returns: the same batch, retried as an agent does, is applied.
    std::fs::remove_file(dir.path().join("data/filler")).unwrap();
    let status = push_sample(&c.url, "full-01", "b1", 2, "cpu_usage_ratio", 0.99);
    assert_eq!(status, 200, "the retried batch after space returns");
    let i = c.wait_incident("the breach's incident", Duration::from_secs(10), |i| {
        i["host"] == "full-01"
    });
    assert_eq!(i["state"], "open");
    assert_eq!(
        push_sample(&c.url, "full-01", "b1", 3, "cpu_usage_ratio", 0.1),
        200
    );
    drop(c);
    drop(disk);
}

#[test]
fn a_hanging_receiver_delays_neither_other_receivers_nor_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let hanging = Server::start(0, |_| Reply::Hold);
    let fast = Server::start(0, |_| Reply::status(200, "{}"));
    let c = Collector::start(
        dir.path(),
        free_port(),
        &format!(
            "{RULES}notify:\n  - {{name: hanging, kind: webhook, url: '{}/hook'}}\n  - {{name: fast, kind: webhook, url: '{}/hook'}}\n",
            hanging.url, fast.url
        ),
    );
    let events = |s: &Server| -> Vec<String> {
        s.requests()
            .iter()
            .filter_map(|r| Some(r.json()?["event"].as_str()?.to_string()))
            .collect()
    };
    let wait_events = |what: &str, s: &Server, want: &[&str]| {
        wait_for(what, Duration::from_secs(10), &c.daemon.log, || {
            (events(s) == want).then_some(())
        })
    };
    assert_eq!(
        push_sample(&c.url, "web-01", "b1", 1, "cpu_usage_ratio", 0.99),
        200
    );
    wait_events(
        "the hanging receiver to hold the opened event",
        &hanging,
        &["opened"],
    );
    wait_events("the fast receiver's opened event", &fast, &["opened"]);
    // Ingest goes on at full speed while the request hangs.
    let t = Instant::now();
    for seq in 2..=50 {
        assert_eq!(
            push_sample(&c.url, "web-02", "b1", seq, "cpu_usage_ratio", 0.1),
            200
        );
    }
    let fifty = t.elapsed();
    assert_eq!(
        push_sample(&c.url, "web-01", "b1", 2, "cpu_usage_ratio", 0.1),
        200
    );
    wait_events(
        "the fast receiver's resolved event",
        &fast,
        &["opened", "resolved"],
    );
    assert_eq!(
        events(&hanging),
        ["opened"],
        "the hanging one still holds its first"
    );
    assert!(
        fifty < Duration::from_secs(5),
        "49 pushes took {fifty:?} while a receiver hung"
    );
    let resolved: Value = c.incidents().pop().unwrap();
    assert_eq!(resolved["state"], "resolved");
    hanging.release();
}
