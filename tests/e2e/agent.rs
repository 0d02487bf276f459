//! The agent's delivery, end to end: the real agent process pushing over a
//! real socket to a receiver that speaks the push protocol (decoded and
//! validated with `vedette-protocol`, as the collector does) and records
//! every batch it acknowledges, so order and exactly-once can be checked
//! batch by batch. The receiver goes away for several intervals (an
//! outage), and the agent is SIGKILLed while spooling.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vedette_protocol::{decode, Encoding, Limits};
use vedette_tests::{free_port, metric_at, wait_for, Daemon};

/// `(boot_id, seq)` of every acknowledged batch, in arrival order.
type Log = Arc<Mutex<Vec<(String, u64)>>>;

/// A protocol-speaking receiver on `port`, until `stop` is set.
struct Receiver {
    stop: Arc<std::sync::atomic::AtomicBool>,
    port: u16,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start(port: u16, log: Log) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("binding the receiver");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for s in listener.incoming() {
                if flag.load(std::sync::atomic::Ordering::Acquire) {
                    break;
                }
                if let Ok(s) = s {
                    serve(s, &log);
                }
            }
        });
        Receiver {
            stop,
            port,
            thread: Some(thread),
        }
    }

    /// Closes the listening socket (connections are refused from now on).
    fn stop(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        // Wake the blocking accept; the thread sees the flag and exits,
        // dropping the listener.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            t.join().expect("receiver thread");
        }
    }
}

fn serve(s: TcpStream, log: &Log) {
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    let mut w = s;
    // One request per connection, so stopping the receiver is immediate.
    {
        let mut len = 0usize;
        let mut gzip = false;
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end().to_ascii_lowercase();
            if h.is_empty() {
                break;
            }
            if let Some(v) = h.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            if h == "content-encoding: gzip" {
                gzip = true;
            }
        }
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let enc = if gzip {
            Encoding::Gzip
        } else {
            Encoding::Identity
        };
        let (status, answer) = match decode(&body, enc, &Limits::default(), now) {
            Ok(b) => {
                log.lock()
                    .expect("log")
                    .push((b.agent.boot_id.clone(), b.seq));
                (
                    "200 OK",
                    format!(
                        "{{\"accepted\": {}, \"ack_seq\": {}}}",
                        b.samples.len(),
                        b.seq
                    ),
                )
            }
            Err(e) => (
                "400 Bad Request",
                serde_json::json!({"error": e.to_string()}).to_string(),
            ),
        };
        let resp = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        let _ = w.write_all(resp.as_bytes());
    }
}

#[test]
fn an_outage_and_a_sigkill_lose_nothing_and_repeat_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let metrics_port = free_port();
    let log: Log = Arc::default();
    let receiver = Receiver::start(port, Arc::clone(&log));
    let config = format!(
        "host: e2e-spool\ncollector: {{url: 'http://127.0.0.1:{port}'}}\ninterval: 1s\nlisten: 127.0.0.1:{metrics_port}\n"
    );
    let agent = Daemon::start("vedette-agent", dir.path(), "agent", &config);
    let count = |log: &Log| log.lock().unwrap().len();
    wait_for(
        "two live batches",
        Duration::from_secs(20),
        &agent.log,
        || (count(&log) >= 2).then_some(()),
    );

    // Outage: the receiver goes away for several intervals; batches spool.
    receiver.stop();
    agent.wait_log("cannot deliver to the collector", 1);
    wait_for(
        "three spooled batches",
        Duration::from_secs(20),
        &agent.log,
        || metric_at(metrics_port, "vedette_agent_queue_batches").filter(|n| *n >= 3.0),
    );
    // SIGKILL mid-outage: nothing flushed, nothing said. The spool must be
    // readable on the next start, which is a new run (new boot_id).
    let status = agent.stop("KILL");
    assert!(!status.success());
    let agent = Daemon::start("vedette-agent", dir.path(), "agent", &config);
    agent.wait_log("replaying spooled batches", 1);
    wait_for(
        "two more spooled batches",
        Duration::from_secs(20),
        &agent.log,
        || metric_at(metrics_port, "vedette_agent_queue_batches").filter(|n| *n >= 5.0),
    );

    // The receiver is back: the backlog drains, then live batches follow.
    let receiver = Receiver::start(port, Arc::clone(&log));
    wait_for(
        "the backlog to drain",
        Duration::from_secs(60),
        &agent.log,
        || metric_at(metrics_port, "vedette_agent_queue_batches").filter(|n| *n == 0.0),
    );
    let before = count(&log);
    wait_for(
        "live batches again",
        Duration::from_secs(20),
        &agent.log,
        || (count(&log) >= before + 2).then_some(()),
    );
    let status = agent.stop("TERM");
    assert!(status.success(), "{status}");
    receiver.stop();

    let log = log.lock().unwrap().clone();
    // Two runs, each a gapless 1..=n sequence, the first entirely before the
    // second, and no batch twice.
    let mut runs: Vec<(String, Vec<u64>)> = Vec::new();
    for (boot, seq) in &log {
        match runs.last_mut() {
            Some((b, seqs)) if b == boot => seqs.push(*seq),
            _ => runs.push((boot.clone(), vec![*seq])),
        }
    }
    assert_eq!(runs.len(), 2, "runs interleaved or missing: {log:?}");
    for (boot, seqs) in &runs {
        let want: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(
            seqs, &want,
            "run {boot}: a batch lost, repeated or out of order"
        );
    }
    assert!(runs[0].1.len() >= 5, "{log:?}");
    let text = std::fs::read_to_string(dir.path().join("agent.log")).unwrap();
    assert!(
        !text.contains("dropping"),
        "nothing may be dropped here:\n{text}"
    );
}

/// A check that fails on the agent opens an incident on the real collector,
/// with the agent's reason; when the service comes back, it resolves.
#[test]
fn a_failing_check_opens_an_incident_and_recovery_resolves_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = vedette_tests::Collector::start(
        dir.path(),
        free_port(),
        "rules:\n  - {name: svc_down, check: 'svc', status: critical, impact: 2, urgency: 2}\n",
    );
    let svc_port = free_port();
    let _agent = vedette_tests::agent(
        dir.path(),
        "agent",
        "e2e-check",
        &c.url,
        &format!(
            "checks:\n  - name: svc\n    tcp: {{address: '127.0.0.1:{svc_port}'}}\n    interval: 1s\n    timeout: 500ms\n"
        ),
    );
    let i = c.wait_incident("svc_down to open", Duration::from_secs(20), |i| {
        i["rule"] == "svc_down" && i["state"] == "open"
    });
    assert_eq!(i["host"], "e2e-check");
    assert_eq!(i["priority"], 3);
    // The service comes up: the next ok result resolves the incident.
    let svc = TcpListener::bind(("127.0.0.1", svc_port)).unwrap();
    let i = c.wait_incident("svc_down to resolve", Duration::from_secs(20), |i| {
        i["rule"] == "svc_down" && i["state"] == "resolved"
    });
    assert_eq!(i["resolution"], "auto");
    drop(svc);
}

/// Pushes counted by the agent's own `/metrics` (every collector, `ok`).
fn pushes_ok(port: u16) -> f64 {
    let text = reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics"))
        .and_then(|r| r.text())
        .unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("vedette_agent_push_total{") && l.contains("outcome=\"ok\""))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[test]
fn a_check_status_change_is_pushed_at_once_and_flapping_costs_one_push_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let c = vedette_tests::Collector::start(
        dir.path(),
        free_port(),
        "rules:\n  - name: svc_down\n    check: 'svc*'\n    status: critical\n    failures: 1\n",
    );
    let svc_port = free_port();
    let svc = TcpListener::bind(("127.0.0.1", svc_port)).unwrap();
    let metrics_port = free_port();
    let checks: String = (0..4)
        .map(|i| {
            format!(
                "  - name: svc{i}\n    tcp: {{address: '127.0.0.1:{svc_port}'}}\n    interval: 1s\n    timeout: 200ms\n"
            )
        })
        .collect();
    // A long interval: without the immediate push, a result waits up to 60 s.
    let config = format!(
        "host: fast\ncollector: {{url: '{}'}}\ninterval: 60s\nlisten: 127.0.0.1:{metrics_port}\nspool: {{dir: spool}}\nchecks:\n{checks}",
        c.url
    );
    let agent = Daemon::start("vedette-agent", dir.path(), "agent", &config);
    wait_for(
        "the first batch",
        Duration::from_secs(20),
        &agent.log,
        || (pushes_ok(metrics_port) >= 1.0).then_some(()),
    );
    let dropped_at = std::time::Instant::now();
    drop(svc);
    c.wait_incident("svc_down to open", Duration::from_secs(15), |i| {
        i["rule"] == "svc_down" && i["state"] == "open"
    });
    let took = dropped_at.elapsed();
    assert!(took < Duration::from_secs(15), "{took:?}");

    // Flapping: the service comes and goes each time the agent has seen
    // its last state, for 5 s; four checks change status several times a
    // second between them.
    let status = |want: f64| {
        metric_at(metrics_port, "vedette_agent_check_status{check=\"svc0\"}").filter(|&v| v == want)
    };
    let before = pushes_ok(metrics_port);
    let start = std::time::Instant::now();
    let mut up: Option<TcpListener> = None;
    while start.elapsed() < Duration::from_secs(5) {
        up = match up {
            Some(_) => None,
            None => Some(TcpListener::bind(("127.0.0.1", svc_port)).unwrap()),
        };
        let want = if up.is_some() { 0.0 } else { 2.0 };
        wait_for(
            "svc0 to see the change",
            Duration::from_secs(10),
            &agent.log,
            || status(want),
        );
    }
    let window = start.elapsed().as_secs_f64();
    let extra = pushes_ok(metrics_port) - before;
    assert!(
        extra <= window.ceil() + 1.0,
        "{extra} pushes in {window:.1} s: more than one a second"
    );
    assert!(extra >= 2.0, "only {extra} pushes while checks flapped");
}
