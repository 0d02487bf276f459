//! Notifications across real processes and sockets: a webhook receiver that
//! is down when the incident opens gets every event once, signed, in order;
//! a collector killed with SIGKILL mid-delivery resends only what was in
//! flight, with the same idempotency key; the real Alertmanager from
//! Debian's packages shows the alert active, then not; PagerDuty and
//! ServiceNow fakes refuse any request that departs from their documented
//! shape and answer like the real services (202/201, 400, 429 with
//! Retry-After, 500).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use vedette_tests::http::{Reply, Request, Server};
use vedette_tests::{free_port, push_sample, wait_for, Collector, Daemon};

const WAIT: Duration = Duration::from_secs(30);

/// A rule that opens on the first sample above 0.5 and resolves on the
/// first below, and an operator token.
const RULES: &str = r#"
api_tokens:
  - {name: alice, token: op-secret, role: operator}
rules:
  - name: load_high
    metric: load_test
    above: 0.5
    impact: 1
    urgency: 2
    summary: "load on {{ host }} is {{ value }}"
"#;

fn start(dir: &Path, port: u16, notify: &str) -> Collector {
    let mut c = Collector::start(dir, port, &format!("{RULES}notify:\n{notify}"));
    c.token = Some("op-secret".into());
    c
}

fn ack(c: &Collector, id: i64) {
    let status = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/incidents/{id}/ack", c.url))
        .bearer_auth("op-secret")
        .json(&json!({"note": "on it"}))
        .send()
        .expect("ack request")
        .status();
    assert!(status.is_success(), "ack answered {status}");
}

/// The incident's deliveries once every one of them is in `state`.
fn wait_deliveries(c: &Collector, id: i64, n: usize, state: &str) -> Vec<Value> {
    wait_for(
        &format!("{n} deliveries of incident {id} {state}"),
        WAIT,
        &c.daemon.log,
        || {
            let d = c.get_json(&format!("/api/v1/incidents/{id}"))?["deliveries"]
                .as_array()?
                .clone();
            (d.len() == n && d.iter().all(|d| d["state"] == state)).then_some(d)
        },
    )
}

fn open_incident(c: &Collector, host: &str) -> i64 {
    assert_eq!(
        push_sample(&c.url, host, "boot-1", 1, "load_test", 0.9),
        200
    );
    let i = c.wait_incident("the incident to open", WAIT, |i| {
        i["host"] == host && i["state"] == "open"
    });
    i["id"].as_i64().expect("incident id")
}

fn verify_signature(secret: &str, r: &Request) {
    let ts = r.header("x-vedette-timestamp").expect("timestamp header");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(format!("{ts}.").as_bytes());
    mac.update(&r.body);
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(
        r.header("x-vedette-signature"),
        Some(want.as_str()),
        "signature over <timestamp>.<body>"
    );
}

#[test]
fn a_receiver_down_at_the_open_gets_every_event_once_signed_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let hook_port = free_port();
    let c = start(
        dir.path(),
        free_port(),
        &format!(
            "  - {{name: hook, kind: webhook, url: 'http://127.0.0.1:{hook_port}/hook', secret: s3cret, max_backoff: 1s}}\n"
        ),
    );
    let id = open_incident(&c, "web-1");
    ack(&c, id);
    assert_eq!(
        push_sample(&c.url, "web-1", "boot-1", 2, "load_test", 0.1),
        200
    );
    // The receiver is down: everything waits in the outbox, retried.
    let pending = wait_for("three failed attempts", WAIT, &c.daemon.log, || {
        let d = c.get_json(&format!("/api/v1/incidents/{id}"))?["deliveries"]
            .as_array()?
            .clone();
        (d.len() == 3 && d[0]["attempts"].as_u64()? >= 2).then_some(d)
    });
    assert!(pending.iter().all(|d| d["state"] == "pending"));
    assert!(
        pending[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("127.0.0.1")),
        "the error names what failed: {}",
        pending[0]
    );
    assert_eq!(
        c.metric("vedette_notification_queue_depth{receiver=\"hook\"}"),
        Some(3.0)
    );
    assert_eq!(pending[1]["attempts"], 0, "later events wait for the first");
    // It comes back.
    let hook = Server::start(hook_port, |_| Reply::status(200, "{}"));
    wait_deliveries(&c, id, 3, "delivered");
    let got = hook.requests();
    let events: Vec<String> = got
        .iter()
        .map(|r| {
            r.json().expect("json body")["event"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(
        events,
        ["opened", "acknowledged", "resolved"],
        "once each, in order"
    );
    let mut keys: Vec<&str> = got
        .iter()
        .map(|r| r.header("idempotency-key").expect("idempotency key"))
        .collect();
    keys.dedup();
    assert_eq!(keys.len(), 3, "one key per transition: {keys:?}");
    for r in &got {
        assert_eq!(r.method, "POST");
        assert_eq!(r.target, "/hook");
        verify_signature("s3cret", r);
        let body = r.json().expect("json body");
        assert_eq!(body["id"], id);
        assert_eq!(body["rule"], "load_high");
        assert_eq!(r.header("x-vedette-event"), body["event"].as_str());
    }
    assert_eq!(
        got[1].json().unwrap()["state"],
        "acknowledged",
        "a snapshot at the transition"
    );
    assert_eq!(
        c.metric("vedette_notifications_total{outcome=\"delivered\",receiver=\"hook\"}"),
        Some(3.0)
    );
    assert!(c
        .metric("vedette_notifications_total{outcome=\"retried\",receiver=\"hook\"}")
        .is_some_and(|n| n >= 2.0));
    assert_eq!(
        c.metric("vedette_notification_queue_depth{receiver=\"hook\"}"),
        Some(0.0)
    );
    let log = c.daemon.log_text();
    assert_eq!(
        log.matches("delivery failed; retrying with backoff")
            .count(),
        1,
        "one warning per outage:\n{log}"
    );
    assert!(!log.contains("s3cret"), "secrets are never logged");
}

#[test]
fn a_collector_killed_mid_delivery_resends_only_the_in_flight_one_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let held = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&held);
    // The first acknowledge is received but never answered.
    let hook = Server::start(0, move |r| {
        let event = r
            .json()
            .and_then(|b| b["event"].as_str().map(str::to_string));
        if event.as_deref() == Some("acknowledged") && h.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::Hold
        } else {
            Reply::status(200, "{}")
        }
    });
    let port = free_port();
    let notify = format!(
        "  - {{name: hook, kind: webhook, url: '{}/hook', max_backoff: 1s}}\n",
        hook.url
    );
    let c = start(dir.path(), port, &notify);
    let id = open_incident(&c, "web-1");
    wait_deliveries(&c, id, 1, "delivered");
    ack(&c, id);
    wait_for("the acknowledge in flight", WAIT, &c.daemon.log, || {
        (held.load(Ordering::SeqCst) == 1).then_some(())
    });
    c.daemon.stop("KILL");
    hook.release();
    let c = start(dir.path(), port, &notify);
    assert_eq!(
        push_sample(&c.url, "web-1", "boot-1", 5, "load_test", 0.1),
        200
    );
    wait_deliveries(&c, id, 3, "delivered");
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in hook.requests() {
        let event = r.json().expect("json")["event"]
            .as_str()
            .unwrap_or("")
            .to_string();
        by_key
            .entry(r.header("idempotency-key").expect("key").to_string())
            .or_default()
            .push(event);
    }
    let sent: Vec<Vec<String>> = by_key.into_values().collect();
    let mut sent_sorted = sent.clone();
    sent_sorted.sort();
    assert_eq!(
        sent_sorted,
        vec![
            vec!["acknowledged".to_string(), "acknowledged".to_string()],
            vec!["opened".to_string()],
            vec!["resolved".to_string()],
        ],
        "only the in-flight acknowledge went twice, with the same key"
    );
}

/// Runs Debian's `prometheus-alertmanager` with `config` on a free port;
/// returns it (killed on drop) with its URL once ready.
fn alertmanager(dir: &Path, config: &str) -> (Daemon, String) {
    let am_port = free_port();
    let am_cfg = dir.join("am.yml");
    std::fs::write(&am_cfg, config).expect("writing am.yml");
    let log = dir.join("alertmanager.log");
    let out = std::fs::File::create(&log).expect("creating the Alertmanager log");
    let child = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", am_cfg.display()))
        .arg(format!("--storage.path={}", dir.join("am").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
        .arg("--cluster.listen-address=")
        .stdout(out.try_clone().expect("cloning a file handle"))
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .expect("prometheus-alertmanager (Debian package prometheus-alertmanager; tests/run.sh installs it)");
    let am = format!("http://127.0.0.1:{am_port}");
    wait_for("Alertmanager to be ready", WAIT, &log, || {
        reqwest::blocking::get(format!("{am}/-/ready"))
            .ok()
            .filter(|r| r.status().is_success())
    });
    (Daemon { child, log }, am)
}

#[test]
fn the_real_alertmanager_shows_the_alert_active_then_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let (am_daemon, am) = alertmanager(
        dir.path(),
        "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
    );
    let log = am_daemon.log.clone();
    let http = reqwest::blocking::Client::new();
    let c = start(
        dir.path(),
        free_port(),
        &format!("  - {{name: am, kind: alertmanager, url: '{am}', max_backoff: 1s}}\n"),
    );
    let alerts = || -> Option<Vec<Value>> {
        let v: Value = http
            .get(format!(
                "{am}/api/v2/alerts?filter=alertname%3D%22load_high%22"
            ))
            .send()
            .ok()?
            .json()
            .ok()?;
        v.as_array().cloned()
    };
    let id = open_incident(&c, "db-1");
    let active = wait_for("the alert active in Alertmanager", WAIT, &log, || {
        alerts()?
            .into_iter()
            .find(|a| a["status"]["state"] == "active")
    });
    assert_eq!(active["labels"]["host"], "db-1");
    assert_eq!(active["labels"]["severity"], "error", "P2");
    assert_eq!(active["annotations"]["incident_id"], id.to_string());
    assert_eq!(active["annotations"]["summary"], "load on db-1 is 0.9");
    assert_eq!(
        push_sample(&c.url, "db-1", "boot-1", 2, "load_test", 0.1),
        200
    );
    wait_for("the alert to leave Alertmanager", WAIT, &log, || {
        alerts().filter(|a| a.is_empty())
    });
    let d = wait_deliveries(&c, id, 2, "delivered");
    assert_eq!(d[0]["event"], "opened");
    assert_eq!(d[1]["event"], "resolved");
}

#[test]
fn alerts_from_the_real_alertmanager_open_and_resolve_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_am, am) = alertmanager(
        dir.path(),
        &format!(
            "route:
  receiver: vedette
  group_by: [alertname, instance]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: vedette
    webhook_configs:
      - url: http://127.0.0.1:{port}/api/v1/alertmanager
        http_config:
          authorization: {{credentials: op-secret}}
"
        ),
    );
    let c = start(dir.path(), port, "  []\n");
    let http = reqwest::blocking::Client::new();
    let post = |ends_at: Option<&str>| {
        let mut alert = json!({
            "labels": {"alertname": "NodeFilesystemAlmostFull", "instance": "db-1:9100", "severity": "warning", "mountpoint": "/var"},
            "annotations": {"summary": "/var on db-1 is 92% full", "description": "from node_exporter"},
        });
        if let Some(e) = ends_at {
            alert["endsAt"] = json!(e);
        }
        let r = http
            .post(format!("{am}/api/v2/alerts"))
            .json(&json!([alert]))
            .send()
            .expect("posting to Alertmanager");
        assert!(
            r.status().is_success(),
            "Alertmanager answered {}",
            r.status()
        );
    };
    post(None);
    let i = c.wait_incident("Alertmanager's alert to open an incident", WAIT, |i| {
        i["rule"] == "NodeFilesystemAlmostFull"
    });
    assert_eq!(i["host"], "db-1:9100");
    assert_eq!(i["priority"], 3, "severity warning");
    assert_eq!(i["summary"], "/var on db-1 is 92% full");
    assert_eq!(i["labels"]["mountpoint"], "/var");
    assert_eq!(i["labels"]["source"], "alertmanager");
    // Any end in the past resolves the alert in Alertmanager.
    post(Some("2000-01-01T00:00:00Z"));
    c.wait_incident("the resolved alert to resolve it", WAIT, |i| {
        i["rule"] == "NodeFilesystemAlmostFull" && i["state"] == "resolved"
    });
    assert_eq!(
        c.incidents().len(),
        1,
        "repeats from Alertmanager opened nothing more"
    );
}

/// PagerDuty's Events API v2, strictly: anything off the documented shape
/// gets the 400 PagerDuty answers.
fn pagerduty_problems(r: &Request) -> Vec<String> {
    let mut errs = Vec::new();
    if r.method != "POST" || r.target != "/v2/enqueue" {
        errs.push(format!(
            "{} {} is not the events endpoint",
            r.method, r.target
        ));
    }
    if !r
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/json"))
    {
        errs.push("content-type must be application/json".into());
    }
    let Some(b) = r.json() else {
        errs.push("body is not JSON".into());
        return errs;
    };
    let allowed = [
        "routing_key",
        "event_action",
        "dedup_key",
        "payload",
        "client",
        "client_url",
        "links",
        "images",
    ];
    for k in b
        .as_object()
        .map(|o| o.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        if !allowed.contains(&k.as_str()) {
            errs.push(format!("unknown field {k}"));
        }
    }
    if b["routing_key"].as_str().map(str::len) != Some(32) {
        errs.push("routing_key must be a 32-character integration key".into());
    }
    let action = b["event_action"].as_str().unwrap_or("");
    if !["trigger", "acknowledge", "resolve"].contains(&action) {
        errs.push(format!("event_action '{action}' is invalid"));
    }
    let dedup = b["dedup_key"].as_str().unwrap_or("");
    if action != "trigger" && dedup.is_empty() {
        errs.push("dedup_key is required for acknowledge and resolve".into());
    }
    if dedup.len() > 255 {
        errs.push("dedup_key is longer than 255".into());
    }
    if action == "trigger" {
        let p = &b["payload"];
        for f in ["summary", "source", "severity"] {
            if !p[f].is_string() {
                errs.push(format!("payload.{f} is required"));
            }
        }
        if p["summary"]
            .as_str()
            .is_some_and(|s| s.chars().count() > 1024)
        {
            errs.push("payload.summary is longer than 1024".into());
        }
        if !["critical", "error", "warning", "info"].contains(&p["severity"].as_str().unwrap_or(""))
        {
            errs.push("payload.severity is invalid".into());
        }
    }
    errs
}

#[test]
fn pagerduty_gets_trigger_acknowledge_resolve_once_through_429_and_500() {
    let dir = tempfile::tempdir().unwrap();
    let accepted: Arc<Mutex<Vec<Value>>> = Arc::default();
    let seen = Arc::new(AtomicUsize::new(0));
    let (acc, n) = (Arc::clone(&accepted), Arc::clone(&seen));
    let pd = Server::start(0, move |r| {
        let errs = pagerduty_problems(r);
        if !errs.is_empty() {
            return Reply::status(
                400,
                &json!({"status": "invalid event", "message": "Event object is invalid", "errors": errs}).to_string(),
            );
        }
        // Valid requests meet a rate limit, then an outage, then success.
        match n.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::Answer(
                429,
                vec![("retry-after".into(), "1".into())],
                json!({"status": "throttle exceeded", "message": "Requests for this service are arriving too quickly"}).to_string(),
            ),
            1 => Reply::status(500, "{}"),
            _ => {
                let b = r.json().unwrap_or_default();
                let dedup = b["dedup_key"].clone();
                acc.lock().unwrap().push(b);
                Reply::status(202, &json!({"status": "success", "message": "Event processed", "dedup_key": dedup}).to_string())
            }
        }
    });
    let key_file = dir.path().join("pd.key");
    std::fs::write(&key_file, "0123456789abcdef0123456789abcdef\n").unwrap();
    let c = start(
        dir.path(),
        free_port(),
        &format!(
            "  - {{name: pd, kind: pagerduty, url: '{0}/v2/enqueue', routing_key_file: '{1}', max_backoff: 1s}}\n  \
             - {{name: pd-typo, kind: pagerduty, url: '{0}/v2/enqueue', routing_key: short, max_backoff: 1s}}\n",
            pd.url,
            key_file.display()
        ),
    );
    let id = open_incident(&c, "web-1");
    ack(&c, id);
    assert_eq!(
        push_sample(&c.url, "web-1", "boot-1", 2, "load_test", 0.1),
        200
    );
    let d = wait_for("every delivery settled", WAIT, &c.daemon.log, || {
        let d = c.get_json(&format!("/api/v1/incidents/{id}"))?["deliveries"]
            .as_array()?
            .clone();
        (d.len() == 6 && d.iter().all(|d| d["state"] != "pending")).then_some(d)
    });
    let fp = c.get_json(&format!("/api/v1/incidents/{id}")).unwrap()["fingerprint"].clone();
    let accepted = accepted.lock().unwrap().clone();
    let actions: Vec<&str> = accepted
        .iter()
        .map(|b| b["event_action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        actions,
        ["trigger", "acknowledge", "resolve"],
        "each accepted once"
    );
    assert!(
        accepted.iter().all(|b| b["dedup_key"] == fp),
        "dedup_key is the fingerprint"
    );
    assert_eq!(accepted[0]["payload"]["source"], "web-1");
    assert_eq!(accepted[0]["payload"]["severity"], "error");
    for x in d.iter().filter(|x| x["receiver"] == "pd") {
        assert_eq!(x["state"], "delivered", "{x}");
    }
    let typo: Vec<&Value> = d.iter().filter(|x| x["receiver"] == "pd-typo").collect();
    assert_eq!(typo.len(), 3);
    for x in typo {
        assert_eq!(x["state"], "rejected", "a 400 is not retried: {x}");
        assert_eq!(x["attempts"], 1);
        assert!(
            x["last_error"]
                .as_str()
                .unwrap_or("")
                .contains("32-character"),
            "{x}"
        );
    }
    assert_eq!(
        c.metric("vedette_notifications_total{outcome=\"retried\",receiver=\"pd\"}"),
        Some(2.0),
        "the 429 and the 500"
    );
    assert_eq!(
        c.metric("vedette_notifications_total{outcome=\"rejected\",receiver=\"pd-typo\"}"),
        Some(3.0)
    );
    assert!(
        !c.daemon.log_text().contains("0123456789abcdef"),
        "routing keys are never logged"
    );
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A ServiceNow instance's Table API on `incident`, in memory.
#[derive(Default)]
struct Snow {
    /// sys_id → record.
    records: BTreeMap<String, Value>,
    /// Every state a record was set to, in order.
    history: Vec<(String, String)>,
    posts: usize,
}

fn snow_error(code: u16, message: &str, detail: &str) -> Reply {
    Reply::status(
        code,
        &json!({"error": {"message": message, "detail": detail}, "status": "failure"}).to_string(),
    )
}

fn servicenow(snow: &Mutex<Snow>, r: &Request) -> Reply {
    if r.header("authorization") != Some("Basic dmVkZXR0ZTpzM2NyZXQ=") {
        return snow_error(
            401,
            "User Not Authenticated",
            "Required to provide Auth information",
        );
    }
    let (path, query) = r.target.split_once('?').unwrap_or((&r.target, ""));
    let mut s = snow.lock().expect("fake state");
    let fields = [
        "short_description",
        "description",
        "impact",
        "urgency",
        "cmdb_ci",
        "correlation_id",
        "correlation_display",
        "state",
        "close_code",
        "close_notes",
        "work_notes",
    ];
    let bad_fields = |b: &Value| -> Option<String> {
        let o = b.as_object()?;
        o.iter()
            .find(|(k, v)| !fields.contains(&k.as_str()) || !v.is_string())
            .map(|(k, _)| format!("field {k} is unknown or not a string"))
    };
    match (r.method.as_str(), path) {
        ("GET", "/api/now/table/incident") => {
            let q: BTreeMap<String, String> = query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), percent_decode(v)))
                .collect();
            let Some(corr) = q
                .get("sysparm_query")
                .and_then(|q| q.strip_prefix("correlation_id="))
            else {
                return snow_error(
                    400,
                    "Invalid query",
                    "expected sysparm_query=correlation_id=…",
                );
            };
            let found: Vec<Value> = s
                .records
                .iter()
                .filter(|(_, rec)| rec["correlation_id"] == corr)
                .map(|(id, _)| json!({"sys_id": id}))
                .collect();
            Reply::status(200, &json!({"result": found}).to_string())
        }
        ("POST", "/api/now/table/incident") => {
            let Some(b) = r.json() else {
                return snow_error(400, "Exception while reading request", "body is not JSON");
            };
            if let Some(e) = bad_fields(&b) {
                return snow_error(400, "Invalid field", &e);
            }
            for f in ["short_description", "correlation_id"] {
                if b[f].as_str().is_none_or(str::is_empty) {
                    return snow_error(400, "Missing field", f);
                }
            }
            for f in ["impact", "urgency"] {
                if !["1", "2", "3"].contains(&b[f].as_str().unwrap_or("")) {
                    return snow_error(400, "Invalid value", f);
                }
            }
            s.posts += 1;
            let sys_id = format!("{:032x}", s.posts);
            let mut rec = b.clone();
            rec["sys_id"] = json!(sys_id);
            rec["number"] = json!(format!("INC{:07}", 10000 + s.posts));
            rec["state"] = json!("1");
            s.records.insert(sys_id.clone(), rec.clone());
            s.history.push((sys_id.clone(), "1".into()));
            if s.posts == 1 {
                // Created, but the answer is lost: the caller must not create twice.
                return Reply::status(500, "{}");
            }
            Reply::Answer(
                201,
                vec![(
                    "location".into(),
                    format!("/api/now/table/incident/{sys_id}"),
                )],
                json!({"result": rec}).to_string(),
            )
        }
        ("PATCH" | "PUT", p) if p.starts_with("/api/now/table/incident/") => {
            let sys_id = p.rsplit('/').next().unwrap_or("").to_string();
            let Some(b) = r.json() else {
                return snow_error(400, "Exception while reading request", "body is not JSON");
            };
            if let Some(e) = bad_fields(&b) {
                return snow_error(400, "Invalid field", &e);
            }
            let state = b["state"].as_str().unwrap_or("").to_string();
            if !["1", "2", "3", "6", "7", "8"].contains(&state.as_str()) {
                return snow_error(400, "Invalid value", "state");
            }
            if state == "6"
                && (b["close_code"].as_str().is_none_or(str::is_empty)
                    || b["close_notes"].as_str().is_none_or(str::is_empty))
            {
                return snow_error(
                    400,
                    "Data Policy Exception",
                    "Resolution code and notes are mandatory",
                );
            }
            let Some(rec) = s.records.get_mut(&sys_id) else {
                return snow_error(
                    404,
                    "No Record found",
                    "Record doesn't exist or ACL restricts the record retrieval",
                );
            };
            for (k, v) in b.as_object().into_iter().flatten() {
                rec[k] = v.clone();
            }
            let rec = rec.clone();
            s.history.push((sys_id, state));
            Reply::status(200, &json!({"result": rec}).to_string())
        }
        _ => snow_error(
            400,
            "Invalid resource",
            &format!("{} {}", r.method, r.target),
        ),
    }
}

#[test]
fn servicenow_gets_one_record_even_when_the_create_answer_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let snow: Arc<Mutex<Snow>> = Arc::default();
    let s = Arc::clone(&snow);
    let server = Server::start(0, move |r| servicenow(&s, r));
    let pw = dir.path().join("snow.pass");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let c = start(
        dir.path(),
        free_port(),
        &format!(
            "  - {{name: snow, kind: servicenow, instance_url: '{}', username: vedette, password_file: '{}', max_backoff: 1s}}\n",
            server.url,
            pw.display()
        ),
    );
    let id = open_incident(&c, "db-1");
    wait_deliveries(&c, id, 1, "delivered");
    ack(&c, id);
    assert_eq!(
        push_sample(&c.url, "db-1", "boot-1", 2, "load_test", 0.1),
        200
    );
    wait_deliveries(&c, id, 3, "delivered");
    let s = snow.lock().unwrap();
    assert_eq!(
        s.records.len(),
        1,
        "one record, though the first create's answer was lost"
    );
    let (sys_id, rec) = s.records.iter().next().unwrap();
    let fp = c.get_json(&format!("/api/v1/incidents/{id}")).unwrap()["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(rec["correlation_id"], format!("{fp}/{id}"));
    assert_eq!(rec["cmdb_ci"], "db-1");
    assert_eq!(
        (rec["impact"].as_str(), rec["urgency"].as_str()),
        (Some("1"), Some("2"))
    );
    assert_eq!(rec["state"], "6");
    assert_eq!(rec["close_code"], "Solved (Permanently)");
    let states: Vec<&str> = s
        .history
        .iter()
        .map(|(id, st)| {
            assert_eq!(id, sys_id);
            st.as_str()
        })
        .collect();
    assert_eq!(
        states,
        ["1", "2", "6"],
        "created, in progress on acknowledge, resolved"
    );
    assert!(!c.daemon.log_text().contains("s3cret"));
}
