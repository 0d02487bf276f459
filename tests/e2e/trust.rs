//! "Trust the core": an attacker holding one valid agent token (and, for
//! the webhook, an operator API token) tries every class of input against a
//! real collector process over its real HTTP interface, while a real agent
//! reports another host. Each test shows the answer the attack gets (the
//! right 4xx, or a repeat's answer), that the other host's detection is not
//! delayed, that memory and the store stay bounded, that `/metrics` stays
//! `promtool check metrics`-clean and that the CLI prints no control bytes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use vedette_tests::{free_port, now_ms, promtool_check, rss_kib, wait_for, Collector, Daemon};

const ATTACKER: &str = "attacker-token-0123456789abcdef";
const VICTIM: &str = "victim-token-0123456789abcdef";
const OPERATOR: &str = "operator-token-0123456789abcdef";

fn config(extra: &str) -> String {
    format!(
        "agents:
  - {{token: {ATTACKER}, hosts: ['evil-*']}}
  - {{token: {VICTIM}, hosts: ['victim']}}
api_tokens:
  - {{name: ops, token: {OPERATOR}, role: operator}}
rules:
  - {{name: host_down, absent_for: 5s, impact: 1, urgency: 1}}
  - {{name: disk_full, metric: filesystem_used_ratio, above: 0.9}}
  - {{name: check_critical, check: '*', status: critical}}
limits: {{series_per_host: 1000, series_total: 3000, checks_per_host: 20, hosts_per_token: 3, external_rules: 3, external_alerts: 5}}
{extra}"
    )
}

fn start(dir: &std::path::Path, port: u16) -> Collector {
    let mut c = Collector::start(dir, port, &config(""));
    c.token = Some(OPERATOR.to_string());
    c
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}

/// POSTs raw `body` to `path` with `token`; returns status and JSON body.
fn post(
    http: &reqwest::blocking::Client,
    url: &str,
    path: &str,
    token: &str,
    body: String,
) -> (u16, Value) {
    match http
        .post(format!("{url}{path}"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
    {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().unwrap_or(Value::Null))
        }
        Err(e) => (0, json!(e.to_string())),
    }
}

/// A batch from `host`, run `boot`, number `seq`, with `samples`.
fn batch(host: &str, boot: &str, seq: u64, samples: Vec<Value>) -> Value {
    let now = now_ms();
    json!({
        "version": 1,
        "agent": {"host": host, "version": "x", "boot_id": boot, "interval_s": 1},
        "seq": seq,
        "sent_at_ms": now,
        "samples": samples,
    })
}

fn sample(name: &str, labels: Value, value: f64) -> Value {
    json!({"name": name, "labels": labels, "ts_ms": now_ms(), "value": value})
}

/// The real agent reporting as `victim` every second.
fn victim_agent(dir: &std::path::Path, url: &str) -> Daemon {
    let config = format!(
        "host: victim\ncollector:\n  url: {url}\n  token: {VICTIM}\ninterval: 1s\nlisten: off\nspool: {{dir: victim-spool}}\n"
    );
    Daemon::start("vedette-agent", dir, "victim", &config)
}

#[test]
fn a_flood_of_new_series_hosts_and_scrapes_delays_no_other_hosts_detection() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path(), free_port());
    let victim = victim_agent(dir.path(), &c.url);
    wait_for(
        "the victim to be up",
        Duration::from_secs(20),
        &c.daemon.log,
        || (c.metric("vedette_host_up{host=\"victim\"}") == Some(1.0)).then_some(()),
    );
    let pid = c.daemon.child.id();
    let rss_before = rss_kib(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let mut attackers = Vec::new();
    // Two clients scrape /metrics back to back.
    for _ in 0..2 {
        let (url, stop) = (c.url.clone(), Arc::clone(&stop));
        attackers.push(std::thread::spawn(move || {
            let http = client();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if http.get(format!("{url}/metrics")).send().is_ok() {
                    n += 1;
                }
            }
            vec![(0u16, n.to_string())]
        }));
    }
    // Four hosts of the one token push 250 new series each, as fast as answered.
    for h in 0..4 {
        let (url, stop) = (c.url.clone(), Arc::clone(&stop));
        attackers.push(std::thread::spawn(move || {
            let http = client();
            let mut answers = Vec::new();
            let mut seq = 0;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let samples = (0..250)
                    .map(|i| {
                        sample(
                            "filesystem_used_ratio",
                            json!({"mountpoint": format!("/{seq}/{i}")}),
                            0.1,
                        )
                    })
                    .collect();
                let b = batch(&format!("evil-{h}"), "boot", seq, samples);
                let (status, body) = post(&http, &url, "/api/v1/push", ATTACKER, b.to_string());
                answers.push((
                    status,
                    body["limit"].as_str().unwrap_or_default().to_string(),
                ));
            }
            answers
        }));
    }
    // The flood has built up once the collector refuses it over a limit.
    wait_for(
        "a flooding push refused over a limit",
        Duration::from_secs(30),
        &c.daemon.log,
        || {
            c.metric("vedette_ingest_batches_total{outcome=\"limited\"}")
                .filter(|n| *n >= 1.0)
        },
    );
    let killed_at = now_ms();
    victim.stop("KILL");
    let down = c.wait_incident("host_down for the victim", Duration::from_secs(30), |i| {
        i["rule"] == "host_down" && i["host"] == "victim"
    });
    let detected = chrono_ms(&down["detected_at"]);
    stop.store(true, Ordering::Relaxed);
    let answers: Vec<(u16, String)> = attackers
        .into_iter()
        .flat_map(|t| t.join().expect("attacker thread"))
        .collect();
    // absent_for is 5 s and the tick 1 s: on time means within 5 s + 2 s
    // of the victim's last push, flood and scrapes notwithstanding.
    let late = detected - killed_at;
    assert!(
        late <= 7_000,
        "host_down took {late} ms after the victim went silent"
    );
    let scrapes: u64 = answers
        .iter()
        .filter(|(s, _)| *s == 0)
        .filter_map(|(_, n)| n.parse::<u64>().ok())
        .sum();
    assert!(scrapes >= 2, "the scrapers ran ({scrapes} scrapes)");
    let pushes: Vec<&(u16, String)> = answers.iter().filter(|(s, _)| *s != 0).collect();
    let count = |status: u16, limit: &str| {
        pushes
            .iter()
            .filter(|(s, l)| *s == status && l == limit)
            .count()
    };
    assert!(
        count(200, "") >= 3,
        "the flood got in until the limits: {pushes:?}"
    );
    assert!(
        count(413, "series_per_host") + count(429, "series_total") >= 1,
        "{pushes:?}"
    );
    assert!(
        count(429, "hosts_per_token") >= 1,
        "the fourth host: {pushes:?}"
    );
    assert!(
        pushes.iter().all(|(s, _)| [200, 413, 429].contains(s)),
        "nothing else (no 5xx, no timeouts): {:?}",
        pushes
            .iter()
            .filter(|(s, _)| ![200, 413, 429].contains(s))
            .collect::<Vec<_>>()
    );
    let limited: f64 = ["series_per_host", "series_total"]
        .iter()
        .filter_map(|l| c.metric(&format!("vedette_ingest_limited_total{{limit=\"{l}\"}}")))
        .sum();
    assert!(limited >= 1.0, "{limited}");
    // Each refusal is counted, but logged once per host and limit.
    let logged = c
        .daemon
        .log_text()
        .matches("push refused over a limit")
        .count();
    assert!(
        (1..=8).contains(&logged),
        "{logged} log lines for {} refusals",
        pushes.iter().filter(|(s, _)| *s != 200).count()
    );
    // Bounded: at most the limits' worth of series is held.
    let held: f64 = ["evil-0", "evil-1", "evil-2"]
        .iter()
        .map(|h| series_of(&c, h))
        .sum();
    assert!(
        held <= 3000.0,
        "{held} series held over limits.series_total"
    );
    let grown = rss_kib(pid).saturating_sub(rss_before);
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB under the flood");
    let db = std::fs::metadata(dir.path().join("data/vedette.db"))
        .unwrap()
        .len();
    assert!(db < 16 << 20, "the store grew to {db} bytes");
    let text = c.get_text("/metrics").unwrap();
    assert_eq!(promtool_check(&text), "");
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("vedette_engine_errors_total"))
            .filter(|l| !l.ends_with(" 0"))
            .collect::<Vec<_>>(),
        Vec::<&str>::new()
    );
}

/// Series of `host` served on /metrics.
fn series_of(c: &Collector, host: &str) -> f64 {
    let needle = format!("host=\"{host}\"");
    c.get_text("/metrics")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("vedette_filesystem_used_ratio{") && l.contains(&needle))
        .count() as f64
}

/// Milliseconds since the epoch of an RFC 3339 time as the API writes it.
fn chrono_ms(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().expect("an RFC 3339 time"))
        .expect("RFC 3339")
        .timestamp_millis()
}

#[test]
fn forged_labels_names_and_numbers_are_refused_or_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let c = start(dir.path(), port);
    let http = client();
    let push = |b: String| post(&http, &c.url, "/api/v1/push", ATTACKER, b);

    // Two label sets that encoded alike under the old fingerprint: two incidents.
    let colliding = batch(
        "evil-a",
        "b1",
        1,
        vec![
            sample("filesystem_used_ratio", json!({"a": "b\u{0}c=d"}), 0.99),
            sample("filesystem_used_ratio", json!({"a": "b", "c": "d"}), 0.99),
        ],
    );
    assert_eq!(push(colliding.to_string()).0, 200);
    let fps: Vec<String> = c
        .incidents()
        .iter()
        .filter(|i| i["host"] == "evil-a")
        .map(|i| i["fingerprint"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fps.len(), 2, "both series opened their incident");
    assert_ne!(fps[0], fps[1]);

    // Labels the collector gives meaning: 400 naming the field.
    let reserved = [
        (
            json!({"source": "alertmanager"}),
            "samples[0].labels.source",
        ),
        (json!({"le": "1"}), "samples[0].labels.le"),
        (json!({"alertname": "Pwned"}), "samples[0].labels.alertname"),
    ];
    for (labels, field) in reserved {
        let b = batch("evil-a", "b1", 2, vec![sample("m", labels, 1.0)]);
        let (status, body) = push(b.to_string());
        assert_eq!(
            (status, body["field"].as_str()),
            (400, Some(field)),
            "{body}"
        );
    }
    let mut b = batch("evil-a", "b1", 2, vec![]);
    b["checks"] = json!([{"name": "c", "kind": "tcp", "ts_ms": now_ms(), "status": "ok",
        "latency_s": 0, "labels": {"check": "other"}}]);
    assert_eq!(push(b.to_string()).1["field"], "checks[0].labels.check");

    // Numbers at their extremes: 400 naming the field, nothing wraps.
    let valid = batch("evil-a", "b1", 2, vec![sample("m", json!({}), 1.0)]);
    let now = valid["sent_at_ms"].to_string();
    let valid = valid.to_string();
    let cases = [
        ("seq", "\"seq\":2", "\"seq\":0"),
        ("seq", "\"seq\":2", "\"seq\":9223372036854775808"),
        ("seq", "\"seq\":2", "\"seq\":18446744073709551616"),
        ("seq", "\"seq\":2", "\"seq\":-1"),
        (
            "sent_at_ms",
            &format!("\"sent_at_ms\":{now}"),
            "\"sent_at_ms\":-9223372036854775808",
        ),
        (
            "sent_at_ms",
            &format!("\"sent_at_ms\":{now}"),
            "\"sent_at_ms\":9223372036854775807",
        ),
        (
            "agent.interval_s",
            "\"interval_s\":1",
            "\"interval_s\":1e308",
        ),
        ("agent.interval_s", "\"interval_s\":1", "\"interval_s\":0"),
    ];
    for (field, from, to) in cases {
        assert!(valid.contains(from), "{from} in {valid}");
        let (status, body) = push(valid.replace(from, to));
        assert_eq!(
            (status, body["field"].as_str()),
            (400, Some(field)),
            "{to}: {body}"
        );
    }
    let mut far = batch("evil-a", "b1", 2, vec![sample("m", json!({}), 1.0)]);
    far["samples"][0]["ts_ms"] = json!(i64::MAX);
    assert_eq!(push(far.to_string()).1["field"], "samples[0].ts_ms");

    // The largest seq there is: applied, and a repeat even after a restart.
    let last = batch(
        "evil-a",
        "b1",
        9_223_372_036_854_775_807,
        vec![sample("m", json!({}), 1.0)],
    );
    assert_eq!(push(last.to_string()).1["accepted"], 1);
    // A newer boot retires b1: its stale retry is a repeat, not re-applied.
    assert_eq!(push(batch("evil-a", "b2", 1, vec![]).to_string()).0, 200);
    let stale = batch(
        "evil-a",
        "b1",
        3,
        vec![sample("filesystem_used_ratio", json!({"x": "y"}), 0.99)],
    );
    let (status, body) = push(stale.to_string());
    assert_eq!(
        (status, body["accepted"].clone()),
        (200, json!(0)),
        "{body}"
    );
    assert!(
        c.incidents().iter().all(|i| i["labels"]["x"].is_null()),
        "not applied"
    );

    // Names shadowing the collector's own series, or promtool-dirty ones:
    // accepted (rules may use them) but never exported.
    let names = [
        "incident_detection_seconds_bucket",
        "incidents_opened_total",
        "ingest_batches_total",
        "host_up",
        "fooBar",
        "latency_ms",
        "queue_count",
        "tls_certificate_days_left",
    ];
    let b = batch(
        "evil-a",
        "b2",
        2,
        names.iter().map(|n| sample(n, json!({}), 42.0)).collect(),
    );
    assert_eq!(push(b.to_string()).0, 200);
    let text = c.get_text("/metrics").unwrap();
    assert_eq!(promtool_check(&text), "");
    assert!(
        !text
            .lines()
            .any(|l| l.contains("host=\"evil-a\"") && l.ends_with(" 42")),
        "an agent series got through:\n{text}"
    );
    assert_eq!(
        c.metric("vedette_metrics_withheld_series{reason=\"shadows_own\"}"),
        Some(4.0)
    );

    // What was stored survives a restart exactly.
    let status = c.daemon.stop("TERM");
    assert!(status.success(), "{status}");
    let c = start(dir.path(), port);
    let (status, body) = post(&http, &c.url, "/api/v1/push", ATTACKER, last.to_string());
    assert_eq!(
        (status, body["accepted"].clone()),
        (200, json!(0)),
        "replay of seq 2^63-1 after a restart: {body}"
    );
    let (_, body) = post(&http, &c.url, "/api/v1/push", ATTACKER, stale.to_string());
    assert_eq!(body["accepted"], 0, "b1 still retired after a restart");
}

#[test]
fn flapping_results_in_one_batch_write_one_availability_row() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path(), free_port());
    let http = client();
    let mut b = batch("evil-a", "b1", 1, vec![]);
    b["checks"] = (0..999)
        .map(|i| {
            json!({"name": "db", "kind": "tcp", "ts_ms": now_ms(),
                   "status": if i % 2 == 0 { "ok" } else { "critical" }, "latency_s": 0})
        })
        .collect();
    assert_eq!(
        post(&http, &c.url, "/api/v1/push", ATTACKER, b.to_string()).0,
        200
    );
    // The engine flushes availability every second.
    let db = dir.path().join("data/vedette.db");
    let rows = || -> i64 {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row(
            "SELECT COUNT(*) FROM availability WHERE host = 'evil-a' AND check_name = 'db'",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0)
    };
    wait_for(
        "the availability flush",
        Duration::from_secs(10),
        &c.daemon.log,
        || (rows() > 0).then_some(()),
    );
    assert_eq!(
        rows(),
        1,
        "one row for the check's one change, not one per result"
    );
}

#[test]
fn the_alertmanager_webhook_is_bounded_and_the_cli_prints_no_control_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path(), free_port());
    let http = client();
    let hostile = "x\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}1m\u{202e}gnp.exe\nforged";
    let alert = |name: &str, instance: &str| {
        json!({"status": "firing", "labels": {"alertname": name, "instance": instance, "job": hostile},
               "annotations": {"summary": hostile, "description": hostile},
               "startsAt": "2026-01-01T00:00:00Z"})
    };
    let call = |alerts: Vec<Value>| {
        let body = json!({"version": "4", "status": "firing", "alerts": alerts});
        post(
            &http,
            &c.url,
            "/api/v1/alertmanager",
            OPERATOR,
            body.to_string(),
        )
    };
    let (status, body) = call(vec![alert("A", hostile), alert("B", "h2")]);
    assert_eq!(status, 200, "{body}");
    // Four names would pass limits.external_rules (3): the call is refused whole.
    let (status, body) = call(vec![alert("C", "h"), alert("D", "h"), alert("A", "h3")]);
    assert_eq!(
        (status, body["limit"].as_str()),
        (429, Some("external_rules")),
        "{body}"
    );
    assert_eq!(
        c.incidents().len(),
        2,
        "nothing of the refused call was applied"
    );
    assert_eq!(
        c.metric("vedette_ingest_limited_total{limit=\"external_rules\"}"),
        Some(1.0)
    );
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(vedette_tests::bin("vedette-collector"))
            .args(args)
            .args(["--url", &c.url])
            .env("VEDETTE_TOKEN", OPERATOR)
            .output()
            .expect("running the CLI");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    let id = c
        .incidents()
        .iter()
        .find(|i| i["rule"] == "A")
        .map(|i| i["id"].as_i64().unwrap())
        .unwrap()
        .to_string();
    let list = cli(&["incidents", "list"]);
    let show = cli(&["incidents", "show", &id]);
    let json = cli(&["incidents", "show", &id, "--json"]);
    for (what, out) in [("list", &list), ("show", &show), ("--json", &json)] {
        let bad: Vec<char> = out
            .chars()
            .filter(|&c| c != '\n' && (c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)))
            .collect();
        assert!(bad.is_empty(), "{what} printed {bad:?}:\n{out}");
    }
    assert_eq!(
        list.lines().count(),
        3,
        "the newline forged no row:\n{list}"
    );
    assert!(
        show.contains("\\x1b]0;owned\\x07"),
        "escaped visibly:\n{show}"
    );
    let parsed: Value = serde_json::from_str(&json).expect("--json is JSON");
    assert_eq!(parsed["summary"], hostile, "and the same data");
    // The collector's own log carries no raw escape either.
    let log = c.daemon.log_text();
    let raw: Vec<&str> = log.lines().filter(|l| l.contains('\u{1b}')).collect();
    assert!(raw.is_empty(), "raw ESC in the collector's log: {raw:?}");
}
