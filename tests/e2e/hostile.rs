//! Hostile input against a real collector process on a real socket: every
//! kind of bad request is refused with the right status (or a closed
//! connection), changes no state, and leaves memory bounded.
//!
//! "No state change" is checked by comparing, before and after, what the
//! collector holds: its incidents, the samples it has accepted, the latest
//! value it serves for the one legitimate host, and its changes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};
use vedette_tests::{free_port, now_ms, rss_kib, Collector};

const AGENT_TOKEN: &str = "web-agents-token-0123456789abcdef";
const OPERATOR: &str = "operator-token-0123456789abcdef";
const VIEWER: &str = "viewer-token-0123456789abcdef";

fn start(dir: &std::path::Path) -> Collector {
    let mut c = Collector::start(
        dir,
        free_port(),
        &format!(
            "agents:\n  - {{token: {AGENT_TOKEN}, hosts: ['web-*']}}\n\
             api_tokens:\n  - {{name: ops, token: {OPERATOR}, role: operator}}\n  - {{name: grafana, token: {VIEWER}, role: viewer}}\n\
             rules:\n  - {{name: cpu, metric: cpu_usage_ratio, above: 0.9}}\n\
             http: {{header_timeout: 1s, request_timeout: 2s}}\n"
        ),
    );
    c.token = Some(OPERATOR.to_string());
    c
}

/// A valid batch for `host`, sequence `seq`, one cpu sample.
fn batch(host: &str, seq: u64, cpu: f64) -> Value {
    let now = now_ms();
    json!({
        "version": 1,
        "agent": {"host": host, "version": "t", "boot_id": "b1", "interval_s": 10.0},
        "seq": seq,
        "sent_at_ms": now,
        "samples": [{"name": "cpu_usage_ratio", "ts_ms": now, "value": cpu}],
    })
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(bytes).expect("gzip into memory");
    gz.finish().expect("gzip into memory")
}

/// `n` bytes of JSON whitespace, gzip-compressed (about 1000:1).
fn gzip_bomb(n: usize) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..n / chunk.len() {
        gz.write_all(&chunk).expect("gzip into memory");
    }
    gz.finish().expect("gzip into memory")
}

/// POSTs `body` to `path` with `headers`; returns status and body.
fn post(
    c: &Collector,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, String) {
    let mut req = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
        .post(format!("{}{path}", c.url))
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    match req.send() {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.text().unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

/// What, token, headers, body, expected status, text the answer must contain.
type PushCase<'a> = (
    &'a str,
    Option<&'a str>,
    Vec<(&'a str, &'a str)>,
    Vec<u8>,
    u16,
    &'a str,
);
/// What, path, token, body, expected status.
type ApiCase<'a> = (&'a str, &'a str, Option<&'a str>, Vec<u8>, u16);

const JSON: (&str, &str) = ("content-type", "application/json");
const GZIP: (&str, &str) = ("content-encoding", "gzip");

/// What the collector holds, for before/after comparison.
fn state(c: &Collector) -> (Vec<Value>, Option<f64>, Option<f64>, Value) {
    (
        c.incidents(),
        c.metric("vedette_ingest_samples_total"),
        c.metric("vedette_cpu_usage_ratio{host=\"web-01\"}"),
        c.get_json("/api/v1/changes").expect("changes list"),
    )
}

#[test]
fn hostile_pushes_are_refused_with_the_right_status_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path());
    let ok = serde_json::to_vec(&batch("web-01", 1, 0.5)).unwrap();
    let (status, body) = post(&c, "/api/v1/push", Some(AGENT_TOKEN), &[JSON], ok.clone());
    assert_eq!(status, 200, "{body}");
    let before = state(&c);
    assert_eq!(before.2, Some(0.5), "the legitimate sample is served");

    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = batch("web-01", 2, 0.99);
        f(&mut b);
        serde_json::to_vec(&b).unwrap()
    };
    let many: Vec<Value> = (0..10_001)
        .map(|i| json!({"name": format!("m{i}"), "ts_ms": now_ms(), "value": 1.0}))
        .collect();
    let deep = format!("{{\"version\":1,\"agent\":{}", "[".repeat(100_000));
    let non_finite = String::from_utf8(with(&|_| ()))
        .unwrap()
        .replace("0.99", "1e999");
    let cases: Vec<PushCase> = vec![
        (
            "no token",
            None,
            vec![JSON],
            ok.clone(),
            401,
            "missing bearer token",
        ),
        (
            "unknown token",
            Some("guess"),
            vec![JSON],
            ok.clone(),
            401,
            "unknown agent token",
        ),
        (
            "impersonating another host",
            Some(AGENT_TOKEN),
            vec![JSON],
            serde_json::to_vec(&batch("db-01", 1, 0.99)).unwrap(),
            403,
            "may not push as host 'db-01'",
        ),
        (
            "malformed JSON",
            Some(AGENT_TOKEN),
            vec![JSON],
            b"{\"version\":1,".to_vec(),
            400,
            "\"error\"",
        ),
        (
            "not JSON at all",
            Some(AGENT_TOKEN),
            vec![JSON],
            vec![0xff, 0xfe, 0x00, 0x01],
            400,
            "\"error\"",
        ),
        (
            "text/plain",
            Some(AGENT_TOKEN),
            vec![("content-type", "text/plain")],
            ok.clone(),
            415,
            "application/json",
        ),
        (
            "unknown encoding",
            Some(AGENT_TOKEN),
            vec![JSON, ("content-encoding", "br")],
            ok.clone(),
            415,
            "'br'",
        ),
        (
            "gzip label on a plain body",
            Some(AGENT_TOKEN),
            vec![JSON, GZIP],
            ok.clone(),
            400,
            "\"error\"",
        ),
        (
            "oversized body",
            Some(AGENT_TOKEN),
            vec![JSON],
            vec![b' '; 2 << 20],
            413,
            "over the limit",
        ),
        (
            "gzip bomb (100 MiB of spaces)",
            Some(AGENT_TOKEN),
            vec![JSON, GZIP],
            gzip_bomb(100 << 20),
            413,
            "\"error\"",
        ),
        (
            "10,001 samples",
            Some(AGENT_TOKEN),
            vec![JSON, GZIP],
            gzip(&with(&|b| b["samples"] = json!(many))),
            413,
            "\"error\"",
        ),
        (
            "deep nesting",
            Some(AGENT_TOKEN),
            vec![JSON],
            deep.into_bytes(),
            400,
            "\"error\"",
        ),
        (
            "non-finite value",
            Some(AGENT_TOKEN),
            vec![JSON],
            non_finite.into_bytes(),
            400,
            "\"error\"",
        ),
        (
            "value as a string",
            Some(AGENT_TOKEN),
            vec![JSON],
            with(&|b| b["samples"][0]["value"] = json!("NaN")),
            400,
            "samples",
        ),
        (
            "reserved host label",
            Some(AGENT_TOKEN),
            vec![JSON],
            with(&|b| b["samples"][0]["labels"] = json!({"host": "db-01"})),
            400,
            "samples[0].labels",
        ),
        (
            "bad metric name",
            Some(AGENT_TOKEN),
            vec![JSON],
            with(&|b| b["samples"][0]["name"] = json!("cpu usage")),
            400,
            "samples[0].name",
        ),
        (
            "future protocol version",
            Some(AGENT_TOKEN),
            vec![JSON],
            with(&|b| b["version"] = json!(2)),
            400,
            "version",
        ),
        (
            "clock far ahead",
            Some(AGENT_TOKEN),
            vec![JSON],
            with(&|b| b["sent_at_ms"] = json!(now_ms() + 3_600_000)),
            400,
            "sent_at_ms",
        ),
    ];
    for (what, token, headers, body, want, needle) in cases {
        let (status, text) = post(&c, "/api/v1/push", token, &headers, body);
        assert_eq!(status, want, "{what}: {text}");
        assert!(text.contains(needle), "{what}: {needle:?} not in {text}");
    }

    // Replayed: the already acknowledged seq 1 again, now breaching.
    let replay = serde_json::to_vec(&batch("web-01", 1, 0.99)).unwrap();
    let (status, text) = post(&c, "/api/v1/push", Some(AGENT_TOKEN), &[JSON], replay);
    assert_eq!(
        status, 200,
        "a replay is acknowledged (the agent may forget it): {text}"
    );
    let ack: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        ack,
        json!({"accepted": 0, "ack_seq": 1}),
        "and applies nothing"
    );

    assert_eq!(
        state(&c),
        before,
        "no refused or replayed request changed state"
    );
    assert!(
        c.incidents().is_empty(),
        "the breaching values opened nothing"
    );
}

#[test]
fn hostile_api_calls_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path());
    let before = state(&c);
    let change = json!({"title": "t", "start": "2030-01-01T00:00:00Z", "end": "2030-01-01T01:00:00Z", "scope": {"hosts": ["web-*"]}});
    let change = serde_json::to_vec(&change).unwrap();
    let alert = |status: &str| {
        serde_json::to_vec(&json!({"version": "4", "status": status, "alerts": [
            {"status": status, "labels": {"alertname": "X", "instance": "web-01"}, "startsAt": "2030-01-01T00:00:00Z"}]}))
        .unwrap()
    };
    let cases: Vec<ApiCase> = vec![
        (
            "change without a token",
            "/api/v1/changes",
            None,
            change.clone(),
            401,
        ),
        (
            "change with an unknown token",
            "/api/v1/changes",
            Some("guess"),
            change.clone(),
            401,
        ),
        (
            "change by a viewer",
            "/api/v1/changes",
            Some(VIEWER),
            change.clone(),
            403,
        ),
        (
            "malformed change",
            "/api/v1/changes",
            Some(OPERATOR),
            b"{\"title\":".to_vec(),
            400,
        ),
        (
            "oversized change",
            "/api/v1/changes",
            Some(OPERATOR),
            vec![b' '; 128 * 1024],
            413,
        ),
        (
            "deeply nested change",
            "/api/v1/changes",
            Some(OPERATOR),
            "[".repeat(10_000).into_bytes(),
            400,
        ),
        (
            "ack of a missing incident",
            "/api/v1/incidents/999999/ack",
            Some(OPERATOR),
            b"{}".to_vec(),
            404,
        ),
        (
            "alert from a viewer",
            "/api/v1/alertmanager",
            Some(VIEWER),
            alert("firing"),
            403,
        ),
        (
            "alert with a bad status",
            "/api/v1/alertmanager",
            Some(OPERATOR),
            alert("burning"),
            400,
        ),
        (
            "oversized alert batch",
            "/api/v1/alertmanager",
            Some(OPERATOR),
            vec![b' '; 2 << 20],
            413,
        ),
    ];
    for (what, path, token, body, want) in cases {
        let (status, text) = post(&c, path, token, &[JSON], body);
        assert_eq!(status, want, "{what}: {text}");
    }
    assert_eq!(state(&c), before, "no refused API call changed state");
}

#[test]
fn slow_and_oversized_requests_are_cut_off_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path());
    let addr = c.url.trim_start_matches("http://").to_string();

    // Slowloris: headers trickled, never finished. The collector closes
    // the connection after http.header_timeout (1 s here).
    let mut slow: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"POST /api/v1/push HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
        })
        .collect();
    // Meanwhile a legitimate push is served at once.
    let ok = serde_json::to_vec(&batch("web-01", 1, 0.5)).unwrap();
    assert_eq!(
        post(&c, "/api/v1/push", Some(AGENT_TOKEN), &[JSON], ok).0,
        200
    );
    let t = Instant::now();
    for s in &mut slow {
        let _ = s.write_all(b"X-Slow: 1\r\n");
        let mut buf = [0u8; 512];
        // EOF (or a reset) is the connection being closed; a timeout is not.
        match s.read(&mut buf) {
            Ok(n) => assert!(
                n == 0 || String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
                "a slow client got an answer: {}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(e) => assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "a slow client was still connected after {:?}",
                t.elapsed()
            ),
        }
    }

    // A trickled body: the request is answered 408 after http.request_timeout.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /api/v1/push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {AGENT_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"version\":"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "trickled body: {answer:?}"
    );

    // A 1 MiB header, far over the 64 KiB head limit: 431, or the connection closed.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "oversized headers: {answer:?}"
    );

    // The collector still serves, and holds only the one legitimate sample.
    assert_eq!(
        c.metric("vedette_cpu_usage_ratio{host=\"web-01\"}"),
        Some(0.5)
    );
    assert_eq!(c.metric("vedette_ingest_samples_total"), Some(1.0));
}

#[test]
fn bombs_and_oversized_bodies_leave_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path());
    let pid = c.daemon.child.id();
    let bomb = gzip_bomb(100 << 20);
    let big = vec![b' '; 2 << 20];
    // Warm up: one of each, so the allocator has its working set.
    post(
        &c,
        "/api/v1/push",
        Some(AGENT_TOKEN),
        &[JSON, GZIP],
        bomb.clone(),
    );
    post(&c, "/api/v1/push", Some(AGENT_TOKEN), &[JSON], big.clone());
    let base = rss_kib(pid);
    // 4 clients at a time, 50 bombs and 50 oversized bodies in all.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..13 {
                    assert_eq!(
                        post(
                            &c,
                            "/api/v1/push",
                            Some(AGENT_TOKEN),
                            &[JSON, GZIP],
                            bomb.clone()
                        )
                        .0,
                        413
                    );
                    assert_eq!(
                        post(&c, "/api/v1/push", Some(AGENT_TOKEN), &[JSON], big.clone()).0,
                        413
                    );
                }
            });
        }
    });
    let after = rss_kib(pid);
    // Each bomb is decoded to at most max_decoded_bytes (8 MiB) before it is
    // refused; four at a time bound the growth whatever the bomb's size.
    assert!(
        after < base + 64 * 1024,
        "RSS grew from {base} KiB to {after} KiB over 104 hostile bodies"
    );
    assert_eq!(c.metric("vedette_ingest_samples_total"), Some(0.0));
}
