use std::collections::BTreeMap;
use std::path::Path;

use vedette_protocol::{AgentInfo, CheckKind, CheckResult, Sample, Status};

use super::*;
use crate::config::Config;
use crate::incidents::IncidentState;

const T0: i64 = 1_763_700_000_000;
const S: i64 = 1000;

const RULES: &str = "
rules:
  - name: host_down
    absent_for: 60s
    impact: 1
    urgency: 1
  - name: cpu_high
    metric: cpu_usage_ratio
    above: 0.9
    clear_below: 0.8
    for: 30s
  - name: disk_full
    metric: filesystem_used_ratio
    above: 0.9
  - name: api_down
    check: 'api*'
    status: critical
";

/// (name, labels, value) of one sample in a test batch.
type SampleSpec<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

struct Harness {
    engine: Engine,
    seq: u64,
    state: Arc<RwLock<State>>,
    metrics: Arc<Metrics>,
}

fn harness(db: &Path, now: i64) -> Harness {
    let config = Config::from_yaml("t.yaml", RULES).unwrap();
    let state = Arc::new(RwLock::new(State::default()));
    let metrics = Arc::new(Metrics::new(state.clone(), Some(Duration::from_secs(60))));
    let store = Store::open(db).unwrap();
    let engine = Engine::new(
        Setup::from_config(&config),
        store,
        state.clone(),
        metrics.clone(),
        now,
    )
    .unwrap();
    Harness {
        engine,
        seq: 0,
        state,
        metrics,
    }
}

impl Harness {
    fn batch(&mut self, host: &str, now: i64, samples: &[SampleSpec<'_>]) -> Batch {
        self.seq += 1;
        Batch {
            version: 1,
            agent: AgentInfo {
                host: host.into(),
                version: "test".into(),
                labels: BTreeMap::new(),
                boot_id: "boot-1".into(),
                interval_s: 10.0,
            },
            seq: self.seq,
            sent_at_ms: now,
            samples: samples
                .iter()
                .map(|(name, labels, value)| Sample {
                    name: name.to_string(),
                    labels: labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    ts_ms: now - 500,
                    value: *value,
                })
                .collect(),
            checks: Vec::new(),
        }
    }

    fn push(&mut self, host: &str, now: i64, samples: &[SampleSpec<'_>]) -> PushAck {
        let b = self.batch(host, now, samples);
        self.engine.apply(&b, now).unwrap()
    }

    fn incidents(&self) -> Vec<Incident> {
        let mut v = self.engine.store.incidents(None, 100).unwrap();
        v.reverse();
        v
    }
}

fn db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vedette.db");
    (dir, path)
}

#[test]
fn threshold_opens_after_for_and_resolves_on_clear() {
    let (_d, path) = db();
    let mut h = harness(&path, T0);
    h.push("web-01", T0, &[("cpu_usage_ratio", &[], 0.95)]);
    h.engine.tick(T0 + 29 * S).unwrap();
    assert!(h.incidents().is_empty(), "opened before `for` elapsed");
    h.engine.tick(T0 + 30 * S).unwrap();
    let open = h.incidents();
    assert_eq!(open.len(), 1);
    let i = &open[0];
    assert_eq!(
        (i.rule.as_str(), i.host.as_str(), i.state, i.priority),
        ("cpu_high", "web-01", IncidentState::Open, 3)
    );
    assert_eq!(
        i.started_at_ms,
        T0 - 500,
        "first breaching sample's own time"
    );
    assert_eq!(i.detected_at_ms, T0 + 30 * S);
    assert_eq!(i.value, Some(0.95));
    assert_eq!(i.threshold, Some(0.9));
    assert!(
        i.summary.contains("cpu_usage_ratio is 0.95 (above 0.9)"),
        "{}",
        i.summary
    );

    // Still breaching, then between clear and threshold: nothing new.
    h.push("web-01", T0 + 40 * S, &[("cpu_usage_ratio", &[], 0.99)]);
    h.push("web-01", T0 + 50 * S, &[("cpu_usage_ratio", &[], 0.85)]);
    h.engine.tick(T0 + 51 * S).unwrap();
    assert_eq!(h.incidents().len(), 1);
    assert_eq!(h.incidents()[0].state, IncidentState::Open);

    h.push("web-01", T0 + 60 * S, &[("cpu_usage_ratio", &[], 0.5)]);
    let i = &h.incidents()[0];
    assert_eq!(i.state, IncidentState::Resolved);
    assert_eq!(i.resolution, Some(Resolution::Auto));
    assert_eq!(i.restored_at_ms, Some(T0 + 60 * S));
    assert_eq!(i.resolved_at_ms, Some(T0 + 60 * S));

    let text = h.metrics.render(T0 + 61 * S);
    assert!(
        text.contains("vedette_incidents_opened_total{priority=\"P3\",rule=\"cpu_high\"} 1"),
        "{text}"
    );
    assert!(text.contains(
        "vedette_incidents_resolved_total{priority=\"P3\",resolution=\"auto\",rule=\"cpu_high\"} 1"
    ), "{text}");
    assert!(
        text.contains("vedette_incidents_open{priority=\"P3\",rule=\"cpu_high\"} 0"),
        "{text}"
    );
}

#[test]
fn each_series_is_its_own_incident_and_a_new_breach_a_new_incident() {
    let (_d, path) = db();
    let mut h = harness(&path, T0);
    let root: &[(&str, &str)] = &[("mountpoint", "/")];
    let var: &[(&str, &str)] = &[("mountpoint", "/var")];
    h.push(
        "web-01",
        T0,
        &[
            ("filesystem_used_ratio", root, 0.95),
            ("filesystem_used_ratio", var, 0.95),
        ],
    );
    h.push(
        "web-01",
        T0 + 10 * S,
        &[("filesystem_used_ratio", root, 0.96)],
    );
    let v = h.incidents();
    assert_eq!(v.len(), 2);
    assert_ne!(v[0].fingerprint, v[1].fingerprint);
    assert_eq!(v[0].labels["mountpoint"], "/");
    h.push(
        "web-01",
        T0 + 20 * S,
        &[("filesystem_used_ratio", root, 0.5)],
    );
    h.push(
        "web-01",
        T0 + 30 * S,
        &[("filesystem_used_ratio", root, 0.97)],
    );
    // Back within `reopen_within` (1h): the same incident reopens.
    let v = h.incidents();
    assert_eq!(v.len(), 2);
    assert_eq!((v[0].state, v[0].occurrences), (IncidentState::Open, 2));
    let kinds: Vec<&str> = v[0].events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["opened", "restored", "resolved", "reopened"]);
    // Resolved, then breaching again more than an hour later: a new incident.
    h.push(
        "web-01",
        T0 + 40 * S,
        &[("filesystem_used_ratio", root, 0.5)],
    );
    h.push(
        "web-01",
        T0 + 40 * S + 3_600 * S + 1,
        &[("filesystem_used_ratio", root, 0.97)],
    );
    let v = h.incidents();
    assert_eq!(v.len(), 3);
    assert_eq!(v[0].state, IncidentState::Resolved);
    assert_eq!(v[2].state, IncidentState::Open);
    assert_eq!(v[2].fingerprint, v[0].fingerprint);
}

#[test]
fn a_repeated_batch_is_applied_once() {
    let (_d, path) = db();
    let mut h = harness(&path, T0);
    let b = h.batch("web-01", T0, &[("filesystem_used_ratio", &[], 0.5)]);
    assert_eq!(
        h.engine.apply(&b, T0).unwrap(),
        PushAck {
            accepted: 1,
            ack_seq: 1
        }
    );
    let mut replay = b.clone();
    replay.samples[0].value = 0.99;
    assert_eq!(
        h.engine.apply(&replay, T0 + S).unwrap(),
        PushAck {
            accepted: 0,
            ack_seq: 1
        }
    );
    assert!(h.incidents().is_empty());
    let st = h.state.read().unwrap();
    let p = st.hosts["web-01"].series[&("filesystem_used_ratio".to_string(), Labels::new())];
    assert_eq!(p.value, 0.5);
}

#[test]
fn a_new_boot_id_starts_a_new_sequence() {
    let (_d, path) = db();
    let mut h = harness(&path, T0);
    h.push("web-01", T0, &[]);
    let mut b = h.batch("web-01", T0 + S, &[("filesystem_used_ratio", &[], 0.99)]);
    b.agent.boot_id = "boot-2".into();
    b.seq = 1;
    assert_eq!(h.engine.apply(&b, T0 + S).unwrap().accepted, 1);
    assert_eq!(h.incidents().len(), 1);
}

#[test]
fn heartbeat_missing_opens_host_down_and_a_batch_resolves_it() {
    let (_d, path) = db();
    let mut h = harness(&path, T0);
    h.push("web-01", T0, &[]);
    h.engine.tick(T0 + 59 * S).unwrap();
    assert!(h.incidents().is_empty());
    h.engine.tick(T0 + 60 * S).unwrap();
    let v = h.incidents();
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].rule.as_str(), v[0].priority), ("host_down", 1));
    assert_eq!(
        v[0].started_at_ms,
        T0 + 10 * S,
        "outage starts when the next batch was due"
    );
    h.engine.tick(T0 + 70 * S).unwrap();
    assert_eq!(h.incidents().len(), 1, "one incident per outage");
    h.push("web-01", T0 + 80 * S, &[]);
    let v = h.incidents();
    assert_eq!(v[0].state, IncidentState::Resolved);
    assert_eq!(v[0].restored_at_ms, Some(T0 + 80 * S));
}

#[test]
fn check_rule_opens_and_clears() {
    let (_d, path) = db();
    let mut h = harness(&path, T0);
    let mut b = h.batch("web-01", T0, &[]);
    let check = |status, ts| CheckResult {
        name: "api".into(),
        kind: CheckKind::Http,
        target: "http://127.0.0.1/".into(),
        labels: Default::default(),
        ts_ms: ts,
        status,
        latency_s: 0.1,
        message: "HTTP 503".into(),
    };
    b.checks = vec![check(Status::Warning, T0)];
    h.engine.apply(&b, T0).unwrap();
    assert!(
        h.incidents().is_empty(),
        "warning does not match a critical rule"
    );
    let mut b = h.batch("web-01", T0 + S, &[]);
    b.checks = vec![check(Status::Critical, T0 + S)];
    h.engine.apply(&b, T0 + S).unwrap();
    let v = h.incidents();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].labels["check"], "api");
    assert!(
        v[0].description.contains("HTTP 503"),
        "{}",
        v[0].description
    );
    let mut b = h.batch("web-01", T0 + 2 * S, &[]);
    b.checks = vec![check(Status::Ok, T0 + 2 * S)];
    h.engine.apply(&b, T0 + 2 * S).unwrap();
    assert_eq!(h.incidents()[0].state, IncidentState::Resolved);
}

#[test]
fn restart_keeps_incidents_and_opens_no_duplicate() {
    let (_d, path) = db();
    let id = {
        let mut h = harness(&path, T0);
        h.push("web-01", T0, &[("filesystem_used_ratio", &[], 0.99)]);
        h.engine.flush_hosts().unwrap();
        h.incidents()[0].id
    };
    let mut h = harness(&path, T0 + 100 * S);
    h.seq = 1;
    let text = h.metrics.render(T0 + 100 * S);
    assert!(
        text.contains("vedette_incidents_open{priority=\"P3\",rule=\"disk_full\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("vedette_incidents_opened_total{priority=\"P3\",rule=\"disk_full\"} 1"),
        "{text}"
    );
    h.push(
        "web-01",
        T0 + 101 * S,
        &[("filesystem_used_ratio", &[], 0.99)],
    );
    let v = h.incidents();
    assert_eq!(v.len(), 1, "no duplicate after restart");
    assert_eq!(v[0].id, id);
    h.push(
        "web-01",
        T0 + 102 * S,
        &[("filesystem_used_ratio", &[], 0.1)],
    );
    assert_eq!(h.incidents()[0].state, IncidentState::Resolved);
}

#[test]
fn restart_gives_hosts_one_heartbeat_period_before_host_down() {
    let (_d, path) = db();
    {
        let mut h = harness(&path, T0);
        h.push("web-01", T0, &[]);
        h.engine.flush_hosts().unwrap();
    }
    // The collector was down for ten minutes; the host is known but silent.
    let start = T0 + 600 * S;
    let mut h = harness(&path, start);
    h.engine.tick(start + S).unwrap();
    assert!(
        h.incidents().is_empty(),
        "no host_down storm right after restart"
    );
    h.engine.tick(start + 60 * S).unwrap();
    assert_eq!(h.incidents().len(), 1);
}

#[test]
fn replayed_seq_after_restart_is_still_a_duplicate() {
    let (_d, path) = db();
    let b = {
        let mut h = harness(&path, T0);
        let b = h.batch("web-01", T0, &[("filesystem_used_ratio", &[], 0.5)]);
        h.engine.apply(&b, T0).unwrap();
        h.engine.flush_hosts().unwrap();
        b
    };
    let mut h = harness(&path, T0 + S);
    assert_eq!(h.engine.apply(&b, T0 + S).unwrap().accepted, 0);
}

#[test]
fn operator_ack_and_resolve() {
    let (_d, path) = db();
    let mut h = harness(&path, T0);
    h.push("web-01", T0, &[("filesystem_used_ratio", &[], 0.99)]);
    let id = h.incidents()[0].id;
    let i = h
        .engine
        .acknowledge(id, "alice", Some("looking".into()), T0 + S)
        .unwrap();
    assert_eq!(
        (i.state, i.acknowledged_at_ms),
        (IncidentState::Acknowledged, Some(T0 + S))
    );
    assert!(matches!(
        h.engine.acknowledge(id, "alice", None, T0 + 2 * S),
        Err(ActionError::Conflict(_))
    ));
    let i = h.engine.resolve(id, "bob", None, T0 + 3 * S).unwrap();
    assert_eq!(i.resolution, Some(Resolution::Manual));
    assert!(matches!(
        h.engine.resolve(id, "bob", None, T0 + 4 * S),
        Err(ActionError::Conflict(_))
    ));
    assert!(matches!(
        h.engine.acknowledge(999, "a", None, T0),
        Err(ActionError::NotFound(999))
    ));
    // Still breaching: no new incident; when it clears the restore is recorded.
    h.push(
        "web-01",
        T0 + 5 * S,
        &[("filesystem_used_ratio", &[], 0.99)],
    );
    assert_eq!(h.incidents().len(), 1);
    h.push("web-01", T0 + 6 * S, &[("filesystem_used_ratio", &[], 0.1)]);
    let i = h.engine.store.incident(id).unwrap();
    assert_eq!(
        (i.resolved_at_ms, i.restored_at_ms),
        (Some(T0 + 3 * S), Some(T0 + 6 * S))
    );
    let kinds: Vec<_> = i.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["opened", "acknowledged", "resolved", "restored"]);
    let text = h.metrics.render(T0 + 7 * S);
    assert!(
        text.contains("resolution=\"manual\",rule=\"disk_full\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn thread_handle_round_trip() {
    let (_d, path) = db();
    let mut h = harness(&path, super::now_ms());
    let b = h.batch(
        "web-01",
        super::now_ms(),
        &[("filesystem_used_ratio", &[], 0.99)],
    );
    let (handle, thread) = spawn(h.engine, Box::new(|| {}));
    let ack = handle.push(b).await.unwrap().unwrap();
    assert_eq!(ack.accepted, 1);
    let err = handle
        .acknowledge(42, "a".into(), None)
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, ActionError::NotFound(42)));
    drop(handle);
    thread.join().unwrap();
    // The thread flushed hosts on its way out.
    let store = Store::open(&path).unwrap();
    assert_eq!(store.hosts().unwrap()[0].last_seq, 1);
}
