use std::collections::BTreeMap;
use std::path::Path;

use vedette_protocol::{AgentInfo, CheckKind, CheckResult, Sample, Status};

use super::*;
use crate::config::Config;
use crate::incidents::{IncidentState, ProblemState, Resolution};
use crate::windows::{ChangeOutcome, ScopeSpec, WindowKind};

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
    harness_with(db, now, RULES)
}

fn harness_with(db: &Path, now: i64, yaml: &str) -> Harness {
    let config = Config::from_yaml("t.yaml", yaml).unwrap();
    let state = Arc::new(RwLock::new(State::default()));
    let metrics = Arc::new(Metrics::new(state.clone(), Arc::clone(&config.reporting)));
    let store = Store::open(db).unwrap();
    let engine = Engine::new(
        config.engine_setup(),
        store,
        None,
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

    /// One batch from `host` (with `labels`) carrying check `name`'s result.
    fn check(&mut self, host: &str, now: i64, name: &str, status: Status) {
        let mut b = self.batch(host, now, &[]);
        b.checks = vec![CheckResult {
            name: name.into(),
            kind: CheckKind::Tcp,
            target: "127.0.0.1:5432".into(),
            labels: Default::default(),
            ts_ms: now - 100,
            status,
            latency_s: 0.01,
            message: format!("{} for test", status.as_str()),
        }];
        self.engine.apply(&b, now).unwrap();
    }

    fn push_labelled(
        &mut self,
        host: &str,
        host_labels: &[(&str, &str)],
        now: i64,
        samples: &[SampleSpec<'_>],
    ) {
        let mut b = self.batch(host, now, samples);
        b.agent.labels = host_labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.engine.apply(&b, now).unwrap();
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
    h.engine.tick(T0 + 29 * S);
    assert!(h.incidents().is_empty(), "opened before `for` elapsed");
    h.engine.tick(T0 + 30 * S);
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
    h.engine.tick(T0 + 51 * S);
    assert_eq!(h.incidents().len(), 1);
    assert_eq!(h.incidents()[0].state, IncidentState::Open);

    h.push("web-01", T0 + 60 * S, &[("cpu_usage_ratio", &[], 0.5)]);
    let i = &h.incidents()[0];
    assert_eq!(i.state, IncidentState::Resolved);
    assert_eq!(i.resolution, Some(Resolution::Auto));
    // Restored when the clear sample was taken, resolved when it arrived.
    assert_eq!(i.restored_at_ms, Some(T0 + 60 * S - 500));
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
fn increase_and_absolute_rules_compare_what_they_say() {
    let (_d, path) = db();
    let yaml = "
rules:
  - name: oom_kill
    metric: oom_kills_total
    compare: increase
    above: 0
  - name: clock_skew
    metric: time_offset_seconds
    compare: absolute
    above: 0.5
";
    let mut h = harness_with(&path, T0, yaml);
    // A counter's first sample is no increase, however large; nor is a repeat.
    h.push("db-1", T0, &[("oom_kills_total", &[], 7.0)]);
    h.push("db-1", T0 + 10 * S, &[("oom_kills_total", &[], 7.0)]);
    assert!(h.incidents().is_empty());
    h.push("db-1", T0 + 20 * S, &[("oom_kills_total", &[], 8.0)]);
    let i = &h.incidents()[0];
    assert_eq!(
        (i.rule.as_str(), i.state),
        ("oom_kill", IncidentState::Open)
    );
    assert_eq!(i.value, Some(1.0));
    assert!(
        i.summary
            .contains("increase of oom_kills_total is 1 (above 0)"),
        "{}",
        i.summary
    );
    h.push("db-1", T0 + 30 * S, &[("oom_kills_total", &[], 8.0)]);
    assert_eq!(h.incidents()[0].state, IncidentState::Resolved);
    // A reboot resets the counter: it counts from zero (and a new kill
    // soon after reopens the same incident, `reopen_within`).
    h.push("db-1", T0 + 40 * S, &[("oom_kills_total", &[], 0.0)]);
    assert_eq!(h.incidents()[0].state, IncidentState::Resolved);
    h.push("db-1", T0 + 50 * S, &[("oom_kills_total", &[], 2.0)]);
    let i = &h.incidents()[0];
    assert_eq!((h.incidents().len(), i.state), (1, IncidentState::Open));
    assert_eq!(i.value, Some(2.0));

    // A clock behind is as wrong as one ahead.
    h.push("db-1", T0 + 60 * S, &[("time_offset_seconds", &[], -0.7)]);
    let skew: Vec<_> = h
        .incidents()
        .into_iter()
        .filter(|i| i.rule == "clock_skew")
        .collect();
    assert_eq!(skew.len(), 1);
    assert!(
        skew[0].summary.contains("|time_offset_seconds| is 0.7"),
        "{}",
        skew[0].summary
    );
    h.push("db-1", T0 + 70 * S, &[("time_offset_seconds", &[], 0.1)]);
    let skew = h
        .incidents()
        .into_iter()
        .find(|i| i.rule == "clock_skew")
        .unwrap();
    assert_eq!(skew.state, IncidentState::Resolved);
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
    let p = st.hosts["web-01"]
        .point("filesystem_used_ratio", &Labels::new())
        .unwrap();
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
    h.engine.tick(T0 + 59 * S);
    assert!(h.incidents().is_empty());
    h.engine.tick(T0 + 60 * S);
    let v = h.incidents();
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].rule.as_str(), v[0].priority), ("host_down", 1));
    assert_eq!(
        v[0].started_at_ms,
        T0 + 10 * S,
        "outage starts when the next batch was due"
    );
    h.engine.tick(T0 + 70 * S);
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
fn a_batch_of_an_earlier_boot_after_a_newer_one_is_a_repeat() {
    let (_d, path) = db();
    let stale = {
        let mut h = harness(&path, T0);
        h.push("web-01", T0, &[("filesystem_used_ratio", &[], 0.5)]);
        // A retry of boot-1 seq 2 that is still in flight when the agent
        // restarts as boot-2.
        let stale = h.batch("web-01", T0, &[("filesystem_used_ratio", &[], 0.99)]);
        let mut b = h.batch("web-01", T0 + S, &[("filesystem_used_ratio", &[], 0.5)]);
        b.agent.boot_id = "boot-2".into();
        b.seq = 1;
        assert_eq!(h.engine.apply(&b, T0 + S).unwrap().accepted, 1);
        assert_eq!(
            h.engine.apply(&stale, T0 + 2 * S).unwrap(),
            PushAck {
                accepted: 0,
                ack_seq: stale.seq
            },
            "answered like a replay"
        );
        assert!(h.incidents().is_empty(), "the stale breach was not applied");
        h.engine.flush_hosts(T0 + 2 * S).unwrap();
        stale
    };
    // Still a repeat after a restart.
    let mut h = harness(&path, T0 + 10 * S);
    assert_eq!(h.engine.apply(&stale, T0 + 10 * S).unwrap().accepted, 0);
    assert!(h.incidents().is_empty());
}

#[test]
fn a_series_labelled_like_an_alertmanager_alert_stays_a_rule_incident() {
    // The protocol refuses `source` now; the engine must not rely on that.
    let (_d, path) = db();
    let forged: &[(&str, &str)] = &[("mountpoint", "/"), ("source", "alertmanager")];
    {
        let mut h = harness(&path, T0);
        h.push("web-01", T0, &[("filesystem_used_ratio", forged, 0.99)]);
        assert_eq!(h.incidents()[0].origin, Origin::Rule);
        h.engine.flush_hosts(T0).unwrap();
    }
    let mut h = harness(&path, T0 + 10 * S);
    h.seq = 1;
    assert!(
        h.engine
            .rules()
            .iter()
            .all(|r| !matches!(r.kind, RuleKind::External)),
        "no Alertmanager rule was made up for it"
    );
    h.push(
        "web-01",
        T0 + 11 * S,
        &[("filesystem_used_ratio", forged, 0.1)],
    );
    let i = &h.incidents()[0];
    assert_eq!(
        i.state,
        IncidentState::Resolved,
        "its own rule still clears it"
    );
    assert_eq!(i.rule, "disk_full");
}

#[test]
fn restart_keeps_incidents_and_opens_no_duplicate() {
    let (_d, path) = db();
    let id = {
        let mut h = harness(&path, T0);
        h.push("web-01", T0, &[("filesystem_used_ratio", &[], 0.99)]);
        h.engine.flush_hosts(T0).unwrap();
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
        h.engine.flush_hosts(T0).unwrap();
    }
    // The collector was down for ten minutes; the host is known but silent.
    let start = T0 + 600 * S;
    let mut h = harness(&path, start);
    h.engine.tick(start + S);
    assert!(
        h.incidents().is_empty(),
        "no host_down storm right after restart"
    );
    h.engine.tick(start + 60 * S);
    assert_eq!(h.incidents().len(), 1);
}

#[test]
fn replayed_seq_after_restart_is_still_a_duplicate() {
    let (_d, path) = db();
    let b = {
        let mut h = harness(&path, T0);
        let b = h.batch("web-01", T0, &[("filesystem_used_ratio", &[], 0.5)]);
        h.engine.apply(&b, T0).unwrap();
        h.engine.flush_hosts(T0).unwrap();
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
        (Some(T0 + 3 * S), Some(T0 + 6 * S - 500))
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
    let ack = handle.push(b, None).await.unwrap().unwrap();
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

/// The kinds of an incident's timeline, in order.
fn kinds(i: &Incident) -> Vec<&'static str> {
    i.events.iter().map(|e| e.kind.as_str()).collect()
}

#[test]
fn failures_count_consecutive_results() {
    let (_d, path) = db();
    let yaml = "rules:\n  - {name: db_down, check: db, status: critical, failures: 3}\n";
    let mut h = harness_with(&path, T0, yaml);
    use Status::*;
    // (status, incidents open afterwards)
    let steps = [
        (Critical, 0),
        (Critical, 0),
        (Ok, 0), // resets the run
        (Critical, 0),
        (Critical, 0),
        (Critical, 1), // third in a row
        (Critical, 1),
    ];
    for (i, (status, open)) in steps.into_iter().enumerate() {
        h.check("db-01", T0 + i as i64 * 10 * S, "db", status);
        let live = h.incidents().iter().filter(|x| x.state.is_live()).count();
        assert_eq!(live, open, "after step {i} ({status:?})");
    }
    // started_at is the first result of the run that fired, not of the earlier one.
    assert_eq!(h.incidents()[0].started_at_ms, T0 + 30 * S - 100);
}

#[test]
fn resolve_after_waits_for_the_condition_to_stay_clear() {
    let (_d, path) = db();
    let yaml = "rules:\n  - {name: disk, metric: d, above: 0.9, resolve_after: 2m}\n";
    let mut h = harness_with(&path, T0, yaml);
    h.push("h", T0, &[("d", &[], 0.95)]);
    h.push("h", T0 + 10 * S, &[("d", &[], 0.5)]);
    h.engine.tick(T0 + 100 * S);
    assert_eq!(
        h.incidents()[0].state,
        IncidentState::Open,
        "clear for 90 s only"
    );
    h.push("h", T0 + 110 * S, &[("d", &[], 0.95)]); // back: the wait starts over
    h.push("h", T0 + 120 * S, &[("d", &[], 0.5)]);
    // Keep the host reporting (a silent host decides nothing).
    for t in (130..=230).step_by(10) {
        h.push("h", T0 + t * S, &[("d", &[], 0.5)]);
    }
    h.engine.tick(T0 + 239 * S);
    assert_eq!(h.incidents()[0].state, IncidentState::Open);
    h.engine.tick(T0 + 240 * S);
    let i = &h.incidents()[0];
    assert_eq!(i.state, IncidentState::Resolved);
    // Restored when the condition cleared (the first clear sample, stamped
    // 500 ms before it arrived), resolved when the wait ended.
    assert_eq!(i.restored_at_ms, Some(T0 + 120 * S - 500));
    assert_eq!(i.resolved_at_ms, Some(T0 + 240 * S));
    assert_eq!(
        h.incidents().len(),
        1,
        "the re-breach did not open a second incident"
    );
    // MTRS follows: restored − started, not resolved − started.
    let text = h.metrics.render(T0 + 240 * S);
    let want = ((T0 + 120 * S - 500) - (T0 - 500)) as f64 / 1000.0;
    let sum = text
        .lines()
        .find_map(|l| l.strip_prefix("vedette_incident_restore_seconds_sum{priority=\"P3\"} "))
        .map(|v| v.parse::<f64>().unwrap());
    assert_eq!(sum, Some(want));
}

#[test]
fn a_hand_resolved_incident_is_restored_when_its_condition_clears() {
    let (_d, path) = db();
    let yaml = "rules:\n  - {name: disk, metric: d, above: 0.9, resolve_after: 2m}\n";
    let mut h = harness_with(&path, T0, yaml);
    h.push("h", T0, &[("d", &[], 0.95)]);
    let id = h.incidents()[0].id;
    h.engine.resolve(id, "alice", None, T0 + 5 * S).unwrap();
    h.push("h", T0 + 10 * S, &[("d", &[], 0.5)]);
    for t in (20..=130).step_by(10) {
        h.push("h", T0 + t * S, &[("d", &[], 0.5)]);
    }
    h.engine.tick(T0 + 131 * S);
    let i = &h.incidents()[0];
    assert_eq!(i.resolved_at_ms, Some(T0 + 5 * S), "by hand");
    assert_eq!(i.restored_at_ms, Some(T0 + 10 * S - 500), "when it cleared");
}

#[test]
fn selectors_choose_hosts_and_series() {
    let (_d, path) = db();
    let yaml = r#"
rules:
  - name: db_root_full
    metric: filesystem_used_ratio
    above: 0.9
    hosts: ["db-*"]
    host_labels: {env: "~^prod"}
    labels: {mountpoint: "/", device: "~^/dev/sd"}
  - name: db_silent
    absent_for: 60s
    host_labels: {role: db}
"#;
    let mut h = harness_with(&path, T0, yaml);
    let root_sd: &[(&str, &str)] = &[("mountpoint", "/"), ("device", "/dev/sda1")];
    let root_nvme: &[(&str, &str)] = &[("mountpoint", "/"), ("device", "/dev/nvme0n1p1")];
    let var_sd: &[(&str, &str)] = &[("mountpoint", "/var"), ("device", "/dev/sdb1")];
    // (host, host labels, series labels, opens?)
    type Pairs<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(&str, Pairs<'_>, Pairs<'_>, bool)] = &[
        (
            "db-01",
            &[("env", "prod-eu"), ("role", "db")],
            root_sd,
            true,
        ),
        (
            "db-02",
            &[("env", "prod"), ("role", "db")],
            root_nvme,
            false,
        ),
        ("db-03", &[("env", "prod"), ("role", "db")], var_sd, false),
        (
            "db-04",
            &[("env", "staging"), ("role", "db")],
            root_sd,
            false,
        ),
        (
            "web-01",
            &[("env", "prod"), ("role", "web")],
            root_sd,
            false,
        ),
    ];
    for (host, hl, sl, _) in cases {
        h.push_labelled(host, hl, T0, &[("filesystem_used_ratio", sl, 0.95)]);
    }
    let opened: Vec<String> = h.incidents().iter().map(|i| i.host.clone()).collect();
    let want: Vec<String> = cases
        .iter()
        .filter(|c| c.3)
        .map(|c| c.0.to_string())
        .collect();
    assert_eq!(opened, want);
    // The heartbeat rule watches only role=db hosts.
    h.engine.tick(T0 + 61 * S);
    let mut down: Vec<String> = h
        .incidents()
        .iter()
        .filter(|i| i.rule == "db_silent")
        .map(|i| i.host.clone())
        .collect();
    down.sort();
    assert_eq!(down, ["db-01", "db-02", "db-03", "db-04"]);
}

#[test]
fn templates_render_summary_and_description() {
    let (_d, path) = db();
    let yaml = r#"
rules:
  - name: disk_full
    metric: filesystem_used_ratio
    above: 0.9
    summary: "{{ host }}: {{ labels.mountpoint }} is {{ (value * 100) | round | int }}% full"
    description: "{{ rule }} fired above {{ threshold }} ({{ host_labels.team }} team)"
  - name: broken
    metric: m
    above: 1
    summary: "{{ labels.nope }}"
"#;
    let mut h = harness_with(&path, T0, yaml);
    h.push_labelled(
        "web-01",
        &[("team", "storage")],
        T0,
        &[
            ("filesystem_used_ratio", &[("mountpoint", "/var")], 0.934),
            ("m", &[], 2.0),
        ],
    );
    let v = h.incidents();
    assert_eq!(v[0].summary, "web-01: /var is 93% full");
    assert_eq!(v[0].description, "disk_full fired above 0.9 (storage team)");
    // A template that fails at render time falls back to the built-in text.
    assert_eq!(v[1].summary, "broken on web-01: m is 2 (above 1)");
}

#[test]
fn resolved_incidents_close_after_and_then_cannot_reopen() {
    let (_d, path) = db();
    let yaml = "incidents: {reopen_within: 10m, close_after: 1h}\nrules:\n  - {name: d, metric: d, above: 0.9}\n";
    let mut h = harness_with(&path, T0, yaml);
    h.push("h", T0, &[("d", &[], 0.95)]);
    h.push("h", T0 + 10 * S, &[("d", &[], 0.5)]);
    h.engine.tick(T0 + 10 * S + 3_599 * S);
    assert_eq!(h.incidents()[0].state, IncidentState::Resolved);
    h.engine.tick(T0 + 10 * S + 3_600 * S);
    let i = &h.incidents()[0];
    assert_eq!(i.state, IncidentState::Closed);
    assert_eq!(i.closed_at_ms, Some(T0 + 3_610 * S));
    assert_eq!(kinds(i), ["opened", "restored", "resolved", "closed"]);
    h.push("h", T0 + 4_000 * S, &[("d", &[], 0.95)]);
    let v = h.incidents();
    assert_eq!(v.len(), 2, "a closed incident never reopens");
    assert_eq!(v[1].state, IncidentState::Open);
}

#[test]
fn flapping_keeps_one_incident_open_until_it_settles() {
    let (_d, path) = db();
    let yaml = "rules:\n  - {name: api_down, check: api, status: critical}\n";
    let mut h = harness_with(&path, T0, yaml);
    // Alternating for ten results, then steadily fine.
    let seq: Vec<bool> = (0..10).map(|i| i % 2 == 0).chain([false; 25]).collect();
    let mut seen_flapping_open = false;
    for (i, bad) in seq.into_iter().enumerate() {
        let status = if bad { Status::Critical } else { Status::Ok };
        h.check("web-01", T0 + i as i64 * 10 * S, "api", status);
        let v = h.incidents();
        assert_eq!(v.len(), 1, "one incident all along (step {i})");
        if (6..28).contains(&i) {
            assert!(
                v[0].flapping && v[0].state == IncidentState::Open,
                "step {i}: open and flapping, got {:?} flapping={}",
                v[0].state,
                v[0].flapping
            );
            seen_flapping_open = true;
        }
    }
    assert!(seen_flapping_open);
    let i = &h.incidents()[0];
    assert_eq!((i.state, i.flapping), (IncidentState::Resolved, false));
    assert_eq!(
        i.occurrences, 3,
        "opened, reopened twice, then flapping held it"
    );
    assert_eq!(
        kinds(i),
        [
            "opened",
            "restored",
            "resolved",
            "reopened",
            "restored",
            "resolved",
            "reopened",
            "flapping_started",
            "flapping_stopped",
            "restored",
            "resolved"
        ]
    );
}

#[test]
fn the_third_occurrence_opens_a_problem_linking_them() {
    let (_d, path) = db();
    let yaml = "incidents: {reopen_within: 1m, problem_after: {count: 3, within: 24h}}\nrules:\n  - {name: d, metric: d, above: 0.9}\n";
    // A breach, then healthy samples every 10 s (without them, back-to-back
    // breach/clear pairs would rightly count as flapping).
    let cycle = |h: &mut Harness, at: i64| {
        h.push("h", at, &[("d", &[], 0.95)]);
        for k in 1..=25 {
            h.push("h", at + k * 10 * S, &[("d", &[], 0.5)]);
        }
    };
    let mut h = harness_with(&path, T0, yaml);
    cycle(&mut h, T0);
    cycle(&mut h, T0 + 600 * S);
    assert!(h.engine.store.problems(None, 10).unwrap().is_empty());
    assert_eq!(h.metrics.problems_open.get(), 0);
    cycle(&mut h, T0 + 1_200 * S);
    let problems = h.engine.store.problems(None, 10).unwrap();
    assert_eq!(problems.len(), 1);
    let p = &problems[0];
    assert_eq!((p.rule.as_str(), p.host.as_str()), ("d", "h"));
    assert_eq!(p.incident_ids, [1, 2, 3]);
    assert_eq!(p.opened_at_ms, T0 + 1_200 * S);
    assert!(h.incidents().iter().all(|i| i.problem_id == Some(p.id)));
    assert_eq!(h.metrics.problems_open.get(), 1);
    // The problem survives a restart, and the next occurrence joins it.
    drop(h);
    let mut h = harness_with(&path, T0 + 1_300 * S, yaml);
    assert_eq!(h.metrics.problems_open.get(), 1);
    cycle(&mut h, T0 + 1_800 * S);
    let p = h.engine.store.problem(1).unwrap();
    assert_eq!(p.incident_ids, [1, 2, 3, 4]);
    // Resolved by someone; the count starts over.
    let r = h
        .engine
        .resolve_problem(1, "alice", Some("replaced the disk".into()), T0 + 2_000 * S)
        .unwrap();
    assert_eq!(
        (r.state, r.resolved_by.as_deref()),
        (ProblemState::Resolved, Some("alice"))
    );
    assert!(matches!(
        h.engine.resolve_problem(1, "alice", None, T0 + 2_001 * S),
        Err(ActionError::ProblemConflict(_))
    ));
    assert!(matches!(
        h.engine.resolve_problem(9, "alice", None, T0 + 2_001 * S),
        Err(ActionError::ProblemNotFound(9))
    ));
    cycle(&mut h, T0 + 2_400 * S);
    assert_eq!(h.engine.store.problems(None, 10).unwrap().len(), 1);
    assert_eq!(h.incidents()[4].problem_id, None);
    assert_eq!(h.metrics.problems_open.get(), 0);
    // Also after a restart: the occurrences before the resolution do not count.
    drop(h);
    let mut h = harness_with(&path, T0 + 2_700 * S, yaml);
    cycle(&mut h, T0 + 3_000 * S);
    assert_eq!(h.engine.store.problems(None, 10).unwrap().len(), 1);
    cycle(&mut h, T0 + 3_600 * S);
    let problems = h.engine.store.problems(None, 10).unwrap();
    assert_eq!(problems.len(), 2, "5th, 6th and 7th incidents recur again");
    assert_eq!(problems[0].incident_ids, [5, 6, 7]);
}

fn change(title: &str, hosts: &[&str], start: i64, end: i64, verify_s: u64) -> NewChange {
    NewChange {
        title: title.into(),
        scope: ScopeSpec {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            host_labels: Default::default(),
        },
        start_ms: start,
        end_ms: end,
        verify_for: Duration::from_secs(verify_s),
    }
}

#[test]
fn a_change_suppresses_breaches_in_scope_and_fails_if_it_breaks_things() {
    let (_d, path) = db();
    let yaml = "rules:\n  - {name: d, metric: d, above: 0.9}\n";
    let mut h = harness_with(&path, T0, yaml);
    let c = h
        .engine
        .create_change(
            change("upgrade web", &["web-*"], T0, T0 + 600 * S, 1_800),
            "bob",
            T0 - S,
        )
        .unwrap();
    let ok = h
        .engine
        .create_change(
            change("rotate db certs", &["db-*"], T0, T0 + 600 * S, 1_800),
            "bob",
            T0 - S,
        )
        .unwrap();
    // In the window: a breach on web (in scope) is suppressed, one on db-01 is not
    // in the first change's scope but is in the second's; app-01 is in none.
    h.push("web-01", T0 + 10 * S, &[("d", &[], 0.95)]);
    h.push("web-01", T0 + 20 * S, &[("d", &[], 0.5)]);
    h.push("app-01", T0 + 30 * S, &[("d", &[], 0.95)]);
    let v = h.incidents();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].host, "app-01");
    let sup = h.engine.store.suppressions(10).unwrap();
    assert_eq!(sup.len(), 1);
    assert_eq!(
        (sup[0].host.as_str(), sup[0].window_kind, sup[0].change_id),
        ("web-01", WindowKind::Change, Some(c.id))
    );
    assert_eq!(
        h.metrics.suppressed.with_label_values(&["d"]).get(),
        1,
        "counted"
    );
    // Breaching again late in the window and still breaching after it ends:
    // the incident opens at the end and the change has failed.
    h.push("web-01", T0 + 590 * S, &[("d", &[], 0.96)]);
    h.push("web-01", T0 + 600 * S, &[("d", &[], 0.97)]);
    h.engine.tick(T0 + 600 * S);
    let v = h.incidents();
    assert_eq!(v.len(), 2);
    assert_eq!(
        (v[1].host.as_str(), v[1].state),
        ("web-01", IncidentState::Open)
    );
    assert_eq!(
        v[1].started_at_ms,
        T0 + 590 * S - 500,
        "from the first breaching sample"
    );
    let changes = h.engine.store.changes(false, 10).unwrap();
    let failed = changes.iter().find(|x| x.id == c.id).unwrap();
    assert_eq!(failed.outcome, Some(ChangeOutcome::Failed));
    assert!(
        failed.outcome_note.as_deref().unwrap().contains("web-01"),
        "{:?}",
        failed.outcome_note
    );
    // The clean change succeeds once verify_for has passed.
    h.engine.tick(T0 + 2_399 * S);
    assert_eq!(h.engine.store.changes(true, 10).unwrap().len(), 1);
    h.engine.tick(T0 + 2_400 * S);
    let clean = h.engine.store.changes(false, 10).unwrap();
    let clean = clean.iter().find(|x| x.id == ok.id).unwrap();
    assert_eq!(clean.outcome, Some(ChangeOutcome::Successful));
    let count = |o: &str| h.metrics.changes.with_label_values(&[o]).get();
    assert_eq!((count("successful"), count("failed")), (1, 1));
}

#[test]
fn a_breach_within_verify_for_fails_the_change() {
    let (_d, path) = db();
    let yaml = "rules:\n  - {name: d, metric: d, above: 0.9}\n";
    let mut h = harness_with(&path, T0, yaml);
    let c = h
        .engine
        .create_change(change("deploy", &["*"], T0, T0 + 60 * S, 600), "ci", T0)
        .unwrap();
    h.push("web-01", T0 + 300 * S, &[("d", &[], 0.95)]);
    assert_eq!(
        h.incidents().len(),
        1,
        "after the window the breach opens an incident"
    );
    let got = h.engine.store.changes(false, 1).unwrap();
    assert_eq!(
        (got[0].id, got[0].outcome),
        (c.id, Some(ChangeOutcome::Failed))
    );
    // Decided: counted once even though the tick runs again.
    h.engine.tick(T0 + 3_600 * S);
    assert_eq!(h.metrics.changes.with_label_values(&["failed"]).get(), 1);
    assert_eq!(
        h.metrics.changes.with_label_values(&["successful"]).get(),
        0
    );
}

#[test]
fn maintenance_windows_suppress_only_their_scope_and_time() {
    use chrono::{Datelike, TimeZone, Timelike};
    let (_d, path) = db();
    // A weekly UTC window starting on T0's weekday at T0's hour, for one hour.
    let t0 = chrono::Utc.timestamp_millis_opt(T0).unwrap();
    let yaml = format!(
        "maintenance:\n  - name: patching\n    scope: {{host_labels: {{role: db}}}}\n    schedule: {{timezone: UTC, weekly: [{{day: {}, start: \"{:02}:00\", duration: 1h}}]}}\nrules:\n  - {{name: d, metric: d, above: 0.9}}\n",
        t0.weekday(),
        t0.hour()
    );
    let start = T0 - i64::from(t0.minute()) * 60 * S - i64::from(t0.second()) * S;
    let mut h = harness_with(&path, T0, &yaml);
    let db: &[(&str, &str)] = &[("role", "db")];
    let web: &[(&str, &str)] = &[("role", "web")];
    h.push_labelled("db-01", db, start + 10 * S, &[("d", &[], 0.95)]);
    h.push_labelled("web-01", web, start + 10 * S, &[("d", &[], 0.95)]);
    let hosts: Vec<String> = h.incidents().iter().map(|i| i.host.clone()).collect();
    assert_eq!(hosts, ["web-01"]);
    let sup = h.engine.store.suppressions(10).unwrap();
    assert_eq!(
        (sup[0].window_kind, sup[0].window_name.as_str()),
        (WindowKind::Maintenance, "patching")
    );
    // The breach clears inside the window: nothing ever opens for db-01.
    h.push_labelled("db-01", db, start + 20 * S, &[("d", &[], 0.5)]);
    h.engine.tick(start + 3_600 * S);
    assert_eq!(h.incidents().len(), 1);
    // After the window, db-01 breaching opens an incident as usual.
    h.push_labelled("db-01", db, start + 3_700 * S, &[("d", &[], 0.95)]);
    assert_eq!(h.incidents().len(), 2);
}

#[test]
fn resolved_incidents_reopen_after_a_restart() {
    let (_d, path) = db();
    let yaml = "rules:\n  - {name: d, metric: d, above: 0.9}\n";
    {
        let mut h = harness_with(&path, T0, yaml);
        h.push("h", T0, &[("d", &[], 0.95)]);
        h.push("h", T0 + 10 * S, &[("d", &[], 0.5)]);
    }
    let mut h = harness_with(&path, T0 + 60 * S, yaml);
    h.push("h", T0 + 70 * S, &[("d", &[], 0.95)]);
    let v = h.incidents();
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].state, v[0].occurrences), (IncidentState::Open, 2));
}

/// The count of a KPI histogram, summed over priorities.
fn kpi_count(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}_count{{")))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[test]
fn availability_is_exact_across_silence_and_restart() {
    use crate::availability::{tally, Tally};
    let (_d, path) = db();
    {
        let mut h = harness(&path, T0);
        h.check("web-01", T0, "api", Status::Ok);
        h.check("web-01", T0 + 10 * S, "api", Status::Critical);
        h.check("web-01", T0 + 20 * S, "api", Status::Ok);
        h.engine.tick(T0 + 21 * S);
        // Silent since T0+20 s: down from the first missed push (T0+30 s)
        // once the 60 s heartbeat has lapsed, not before.
        h.engine.tick(T0 + 79 * S);
        assert_eq!(
            h.state.read().unwrap().hosts["web-01"].up.current(),
            Avail::Up
        );
        h.engine.tick(T0 + 80 * S);
        {
            let st = h.state.read().unwrap();
            let host = &st.hosts["web-01"];
            assert_eq!(host.up.points().last(), Some(&(T0 + 30 * S, Avail::Down)));
            assert_eq!(host.check_up["api"].current(), Avail::Unknown);
        }
        // api_down (detected, restored) and host_down (detected).
        let text = h.metrics.render(T0 + 80 * S);
        assert_eq!(kpi_count(&text, "vedette_incident_detection_seconds"), 2.0);
        assert_eq!(kpi_count(&text, "vedette_incident_restore_seconds"), 1.0);
        // The collector dies right after its flush at T0+80 s.
    }
    // Back at T0+200 s; the host pushes again at T0+210 s.
    let mut h = harness(&path, T0 + 200 * S);
    h.seq = 100;
    let text = h.metrics.render(T0 + 200 * S);
    assert_eq!(
        kpi_count(&text, "vedette_incident_detection_seconds"),
        2.0,
        "histograms restored, not reset or doubled"
    );
    assert_eq!(kpi_count(&text, "vedette_incident_resolution_seconds"), 1.0);
    h.check("web-01", T0 + 210 * S, "api", Status::Ok);
    let st = h.state.read().unwrap();
    let host = &st.hosts["web-01"];
    assert_eq!(
        tally(&host.up, &[], T0, T0 + 300 * S),
        Tally {
            up_ms: 30 * S + 90 * S,
            down_ms: 50 * S,
            // Collector down 80→200, host not heard from until 210.
            unknown_ms: 130 * S,
            planned_ms: 0,
        }
    );
    let api = tally(&host.check_up["api"], &[], T0, T0 + 300 * S);
    assert_eq!(
        (api.up_ms, api.down_ms, api.unknown_ms),
        (20 * S + 90 * S, 10 * S, 180 * S)
    );
    drop(st);
    let text = h.metrics.render(T0 + 300 * S);
    assert!(
        text.contains("vedette_collector_downtime_seconds{window=\"1h\"} 120"),
        "{text}"
    );
}

#[test]
fn a_change_takes_its_time_out_of_availability() {
    let (_d, path) = db();
    let mut h = harness_with(
        &path,
        T0,
        "rules: []\nservices: [{name: db, target: 0.99, hosts: ['db-*'], checks: [pg]}]",
    );
    h.check("db-01", T0, "pg", Status::Ok);
    h.engine
        .create_change(
            NewChange {
                title: "upgrade".into(),
                scope: ScopeSpec {
                    hosts: vec!["db-*".into()],
                    host_labels: Default::default(),
                },
                start_ms: T0 + 10 * S,
                end_ms: T0 + 40 * S,
                verify_for: Duration::from_secs(1),
            },
            "ops",
            T0,
        )
        .unwrap();
    h.check("db-01", T0 + 15 * S, "pg", Status::Critical);
    h.check("db-01", T0 + 50 * S, "pg", Status::Ok);
    let s = &h.metrics.services(T0 + 60 * S)[0];
    let w = &s.windows[0];
    assert_eq!(
        (w.up_seconds, w.down_seconds, w.planned_seconds),
        (20.0, 10.0, 30.0)
    );
    assert_eq!(w.availability, Some(20.0 / 30.0));
}

#[test]
fn finished_days_are_kept_once_past_the_availability_horizon() {
    let (_d, path) = db();
    let day = 86_400_000;
    let mut h = harness_with(
        &path,
        T0,
        "rules: []\nservices: [{name: db, target: 0.99, hosts: ['db-*'], checks: [pg]}]",
    );
    let midnight = T0 - T0.rem_euclid(day);
    h.check("db-01", T0, "pg", Status::Ok);
    h.check("db-01", midnight + day + 3_600 * S, "pg", Status::Critical);
    // The hourly housekeeping after the next midnight writes the finished days.
    let now = midnight + 2 * day + 3_600 * S;
    h.check("db-01", now, "pg", Status::Ok);
    h.engine.tick(now);
    let days = h.engine.store.service_days(&["db".into()], 0).unwrap();
    let of = |d: i64| days.iter().find(|x| x.day == d).map(|x| x.tally);
    let first = of(midnight).expect("the day the check first reported");
    assert_eq!(
        (first.up_ms, first.down_ms),
        (midnight + day - T0, 0),
        "up from its first result to midnight"
    );
    let second = of(midnight + day).expect("the next day");
    assert_eq!((second.up_ms, second.down_ms), (3_600 * S, day - 3_600 * S));
    assert_eq!(of(midnight + 2 * day), None, "today is not finished");
    assert!(days.iter().all(|d| d.service == "db"));
    assert_eq!(days.last().map(|d| d.day), Some(midnight + day));
    // Written once: a later, different view of a stored day does not replace it.
    let again = vec![crate::kpi::ServiceDay {
        service: "db".into(),
        day: midnight,
        tally: Default::default(),
    }];
    assert_eq!(h.engine.store.record_service_days(&again, now).unwrap(), 0);
    assert_eq!(
        h.engine
            .store
            .service_days(&["db".into()], midnight)
            .unwrap()[0]
            .tally,
        first
    );
    // Kept 400 days, not forever.
    let later = now + 401 * day;
    h.engine.store.record_service_days(&[], later).unwrap();
    assert!(h
        .engine
        .store
        .service_days(&["db".into()], 0)
        .unwrap()
        .is_empty());
}

fn am_alert(firing: bool, name: &str, instance: &str, severity: &str) -> ExternalAlert {
    ExternalAlert {
        firing,
        labels: Labels::from([
            ("alertname".into(), name.into()),
            ("instance".into(), instance.into()),
            ("severity".into(), severity.into()),
            ("job".into(), "node".into()),
        ]),
        annotations: Labels::from([("summary".into(), format!("{name} on {instance}"))]),
        starts_at_ms: Some(T0 - 60 * S),
    }
}

#[test]
fn alertmanager_alerts_open_once_resolve_and_survive_a_restart() {
    let (_d, path) = db();
    {
        let mut h = harness(&path, T0);
        let firing = [
            am_alert(true, "NodeDown", "db-1:9100", "critical"),
            am_alert(true, "DiskWillFill", "db-1:9100", "warning"),
        ];
        let out = h.engine.external(&firing, T0).unwrap();
        assert_eq!((out.opened, out.resolved, out.unchanged), (2, 0, 0));
        // Alertmanager repeats every group_interval; an HA pair sends twice.
        let out = h.engine.external(&firing, T0 + S).unwrap();
        assert_eq!(
            (out.opened, out.unchanged),
            (0, 2),
            "the same alert is the same incident"
        );
        let v = h.incidents();
        assert_eq!(v.len(), 2);
        let down = v.iter().find(|i| i.rule == "NodeDown").unwrap();
        assert_eq!(down.host, "db-1:9100", "instance stands for the host");
        assert_eq!(down.priority, 1, "severity critical is P1");
        assert_eq!(down.summary, "NodeDown on db-1:9100");
        assert_eq!(down.started_at_ms, T0 - 60 * S, "startsAt is the onset");
        assert_eq!(
            down.labels.get("source").map(String::as_str),
            Some("alertmanager")
        );
        assert_eq!(down.labels.get("job").map(String::as_str), Some("node"));
        assert!(!down.labels.contains_key("alertname"));
        let fill = v.iter().find(|i| i.rule == "DiskWillFill").unwrap();
        assert_eq!(fill.priority, 3, "warning is P3");
    }
    // After a restart the live ones are still tied to their alerts.
    let mut h = harness(&path, T0 + 10 * S);
    assert_eq!(
        h.incidents()
            .iter()
            .filter(|i| i.state == IncidentState::Open)
            .count(),
        2,
        "an alertname is not a configured rule, yet restart keeps its incident"
    );
    let out = h
        .engine
        .external(
            &[am_alert(false, "NodeDown", "db-1:9100", "critical")],
            T0 + 11 * S,
        )
        .unwrap();
    assert_eq!(out.resolved, 1);
    let v = h.incidents();
    let down = v.iter().find(|i| i.rule == "NodeDown").unwrap();
    assert_eq!(down.state, IncidentState::Resolved);
    assert_eq!(v.len(), 2, "no duplicate after restart");
    // An alert named like a configured rule is still its own incident.
    let out = h
        .engine
        .external(
            &[am_alert(true, "disk_full", "db-1:9100", "info")],
            T0 + 12 * S,
        )
        .unwrap();
    assert_eq!(out.opened, 1);
    let i = h
        .incidents()
        .into_iter()
        .find(|i| i.rule == "disk_full")
        .unwrap();
    assert_eq!(i.priority, 5, "info is P5, not disk_full's own priority");
}

#[test]
fn external_priority_from_labels_or_severity() {
    let l = |pairs: &[(&str, &str)]| -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(external_priority(&l(&[("severity", "critical")])), (1, 1));
    assert_eq!(external_priority(&l(&[("severity", "Error")])), (1, 2));
    assert_eq!(external_priority(&l(&[("severity", "warning")])), (2, 2));
    assert_eq!(external_priority(&l(&[("severity", "info")])), (3, 3));
    assert_eq!(external_priority(&l(&[])), (2, 2));
    assert_eq!(
        external_priority(&l(&[
            ("severity", "info"),
            ("impact", "1"),
            ("urgency", "3")
        ])),
        (1, 3),
        "explicit impact and urgency win"
    );
    assert_eq!(
        external_priority(&l(&[("impact", "7"), ("urgency", "1")])),
        (2, 2)
    );
}

/// Makes the store refuse (a constraint, as a unique index would) every
/// write of `table` for `host`, through a second connection like another
/// process would have.
fn refuse(path: &Path, table: &str, host: &str) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(&format!(
        "CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} WHEN NEW.host = '{host}'
         BEGIN SELECT RAISE(ABORT, 'refused for the test'); END;"
    ))
    .unwrap();
}

fn accept(path: &Path, table: &str) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(&format!("DROP TRIGGER refuse_{table};"))
        .unwrap();
}

fn engine_errors(h: &Harness, stage: &str) -> f64 {
    let text = h.metrics.render(T0);
    let series = format!("vedette_engine_errors_total{{stage=\"{stage}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series)?.parse().ok())
        .unwrap_or_else(|| panic!("no {series}in\n{text}"))
}

#[test]
fn a_refused_transition_blinds_no_other_host() {
    let (_d, path) = db();
    let mut h = harness(&path, T0);
    h.push("victim", T0, &[]);
    h.push("evil", T0, &[("cpu_usage_ratio", &[], 0.99)]);
    refuse(&path, "incidents", "evil");
    // evil's cpu_high comes due on the tick and is refused; the victim goes
    // silent. Before, the tick returned at the first store error: the
    // heartbeat check after it never ran and host_down never opened.
    for t in 31..=40 {
        h.push("evil", T0 + t * S, &[("cpu_usage_ratio", &[], 0.99)]);
        h.engine.tick(T0 + t * S);
    }
    assert!(engine_errors(&h, "tick") >= 1.0);
    // A push whose transition is refused is still accepted: refusing it
    // would make the agent resend it forever and blind its host.
    let ack = h.push("evil", T0 + 41 * S, &[("filesystem_used_ratio", &[], 0.99)]);
    assert_eq!(ack.accepted, 1);
    assert!(engine_errors(&h, "push") >= 1.0);
    h.engine.tick(T0 + 61 * S);
    let v = h.incidents();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(
        (v[0].rule.as_str(), v[0].host.as_str()),
        ("host_down", "victim")
    );
    assert_eq!(v[0].detected_at_ms, T0 + 61 * S, "on time");
    // The rest of the tick ran too: hosts persisted, this run marked alive.
    let c = rusqlite::Connection::open(&path).unwrap();
    let alive: i64 = c
        .query_row("SELECT MAX(alive_at) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(alive, T0 + 61 * S);
    // One subject failing, remembered once however often it failed.
    assert_eq!(h.engine.faults.len(), 2, "{:?}", h.engine.faults);
    // Once the store takes it, the refused transition is made on a later tick.
    accept(&path, "incidents");
    h.push("evil", T0 + 62 * S, &[("cpu_usage_ratio", &[], 0.99)]);
    h.engine.tick(T0 + 62 * S);
    h.push("evil", T0 + 63 * S, &[("filesystem_used_ratio", &[], 0.99)]);
    let mut rules: Vec<String> = h
        .incidents()
        .iter()
        .filter(|i| i.host == "evil")
        .map(|i| i.rule.clone())
        .collect();
    rules.sort();
    assert_eq!(rules, vec!["cpu_high", "disk_full"]);
    assert!(h.engine.faults.is_empty(), "{:?}", h.engine.faults);
}

#[test]
fn a_host_record_the_store_refuses_costs_only_that_host() {
    let (_d, path) = db();
    let mut h = harness(&path, T0);
    refuse(&path, "hosts", "evil");
    h.push("evil", T0, &[]);
    h.push("web-01", T0, &[]);
    assert!(h.engine.flush_hosts(T0 + S).is_err());
    assert_eq!(engine_errors(&h, "flush"), 1.0);
    let hosts: Vec<String> = h
        .engine
        .store
        .hosts()
        .unwrap()
        .into_iter()
        .map(|r| r.host)
        .collect();
    assert_eq!(hosts, vec!["web-01"]);
    let c = rusqlite::Connection::open(&path).unwrap();
    let alive: i64 = c
        .query_row("SELECT MAX(alive_at) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(alive, T0 + S, "the alive mark landed");
    // evil stays pending and lands once the store takes it.
    accept(&path, "hosts");
    h.engine.flush_hosts(T0 + 2 * S).unwrap();
    assert_eq!(h.engine.store.hosts().unwrap().len(), 2);
}

#[test]
fn a_live_incident_the_engine_did_not_know_is_carried_on_not_duplicated() {
    let (_d, path) = db();
    let mut h = harness(&path, T0);
    // The store holds a live disk_full incident for web-01 / that the
    // engine does not (as a second writer could leave it).
    let labels = Labels::from([("mountpoint".to_string(), "/".to_string())]);
    let mut stray = Incident::open(
        Opening {
            origin: Origin::Rule,
            rule: "disk_full".into(),
            host: "web-01".into(),
            labels: labels.clone(),
            impact: 2,
            urgency: 2,
            summary: "s".into(),
            description: "d".into(),
            value: Some(0.95),
            threshold: Some(0.9),
            started_ms: T0,
        },
        T0,
    );
    h.engine
        .store
        .write(|tx| tx.save_incident(&mut stray, 0))
        .unwrap();
    h.push(
        "web-01",
        T0 + S,
        &[("filesystem_used_ratio", &[("mountpoint", "/")], 0.99)],
    );
    assert_eq!(h.incidents().len(), 1, "no second incident");
    assert_eq!(engine_errors(&h, "push"), 0.0);
    h.push(
        "web-01",
        T0 + 2 * S,
        &[("filesystem_used_ratio", &[("mountpoint", "/")], 0.5)],
    );
    let v = h.incidents();
    assert_eq!((v[0].id, v[0].state), (stray.id, IncidentState::Resolved));
}

#[test]
fn many_results_of_one_check_in_a_batch_write_one_availability_row() {
    let (_d, path) = db();
    let mut h = harness(&path, T0);
    let mut b = h.batch("web-01", T0, &[]);
    let result = |i: usize| CheckResult {
        name: "db".into(),
        kind: CheckKind::Tcp,
        target: "127.0.0.1:5432".into(),
        labels: Default::default(),
        ts_ms: T0 - 1000 + i as i64,
        status: if i.is_multiple_of(2) {
            Status::Ok
        } else {
            Status::Critical
        },
        latency_s: 0.01,
        message: String::new(),
    };
    // 999 results flapping ok/critical, ending ok.
    b.checks = (0..999).map(result).collect();
    h.engine.apply(&b, T0).unwrap();
    h.engine.flush_hosts(T0).unwrap();
    let rows = || -> Vec<(String, i64, String)> {
        let c = rusqlite::Connection::open(&path).unwrap();
        let mut stmt = c
            .prepare("SELECT check_name, at, state FROM availability WHERE check_name = 'db' ORDER BY rowid")
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows
    };
    assert_eq!(rows(), vec![("db".to_string(), T0, "up".to_string())]);
    // The next batch flaps and ends where it started: nothing to write.
    let mut b = h.batch("web-01", T0 + 10 * S, &[]);
    b.checks = (1..=4).map(result).collect();
    h.engine.apply(&b, T0 + 10 * S).unwrap();
    h.engine.flush_hosts(T0 + 10 * S).unwrap();
    assert_eq!(rows().len(), 1);
    // One that ends critical writes one row, and the timeline agrees.
    let mut b = h.batch("web-01", T0 + 20 * S, &[]);
    b.checks = (0..=3).map(result).collect();
    h.engine.apply(&b, T0 + 20 * S).unwrap();
    h.engine.flush_hosts(T0 + 20 * S).unwrap();
    assert_eq!(rows().len(), 2);
    assert_eq!(
        rows()[1],
        ("db".to_string(), T0 + 20 * S, "down".to_string())
    );
    let st = h.state.read().unwrap();
    assert_eq!(
        st.hosts["web-01"].check_up["db"].points(),
        &[(T0, Avail::Up), (T0 + 20 * S, Avail::Down)]
    );
}

fn limited(r: Result<PushAck, ApplyError>) -> Limit {
    match r {
        Err(ApplyError::Limited(l)) => l.limit,
        other => panic!("expected a limit, got {other:?}"),
    }
}

#[test]
fn a_batch_over_a_series_limit_is_refused_whole() {
    let (_d, path) = db();
    let yaml = "rules: []\nlimits: {series_per_host: 3, series_total: 5, checks_per_host: 2}\n";
    let mut h = harness_with(&path, T0, yaml);
    let m = |v: &'static str| -> SampleSpec<'static> {
        (
            "filesystem_used_ratio",
            Box::leak(Box::new([("mountpoint", v)])),
            0.5,
        )
    };
    h.push("a", T0, &[m("/"), m("/a"), m("/b")]);
    // Updating the three is fine, a fourth is not; nothing of it is applied.
    let b = h.batch("a", T0 + S, &[m("/"), m("/c")]);
    assert_eq!(limited(h.engine.apply(&b, T0 + S)), Limit::SeriesPerHost);
    {
        let st = h.state.read().unwrap();
        let a = &st.hosts["a"];
        assert_eq!(a.series_len(), 3);
        assert_eq!(a.last_seq, 1, "not taken for applied");
        assert_eq!(st.series_total, 3);
    }
    // The same new series twice in one batch counts once.
    let b = h.batch("b", T0 + S, &[m("/x"), m("/x")]);
    assert_eq!(h.engine.apply(&b, T0 + S).unwrap().accepted, 2);
    // The collector as a whole: 3 + 1 + 2 > 5.
    let b = h.batch("c", T0 + S, &[m("/1"), m("/2")]);
    assert_eq!(limited(h.engine.apply(&b, T0 + S)), Limit::SeriesTotal);
    assert!(!h.state.read().unwrap().hosts.contains_key("c"));
    // Checks: distinct names per host.
    let mut b = h.batch("b", T0 + 2 * S, &[]);
    let check = |name: &str| CheckResult {
        name: name.into(),
        kind: CheckKind::Tcp,
        target: String::new(),
        labels: Default::default(),
        ts_ms: T0,
        status: Status::Ok,
        latency_s: 0.0,
        message: String::new(),
    };
    b.checks = vec![check("one"), check("two"), check("one")];
    h.engine.apply(&b, T0 + 2 * S).unwrap();
    let mut b = h.batch("b", T0 + 3 * S, &[]);
    b.checks = vec![check("three")];
    assert_eq!(
        limited(h.engine.apply(&b, T0 + 3 * S)),
        Limit::ChecksPerHost
    );
}

#[test]
fn a_full_collector_still_lets_small_hosts_add_their_share() {
    let (_d, path) = db();
    let yaml = "rules: []\nlimits: {series_per_host: 100, series_total: 100}\n";
    let mut h = harness_with(&path, T0, yaml);
    let fs = |i: usize| -> SampleSpec<'static> {
        let v: &'static str = Box::leak(format!("/{i}").into_boxed_str());
        ("f", Box::leak(Box::new([("m", v)])), 0.5)
    };
    h.push("victim", T0, &[fs(0), fs(1)]);
    // The attacker fills the rest.
    let flood: Vec<SampleSpec<'static>> = (0..98).map(fs).collect();
    h.push("evil", T0, &flood);
    assert_eq!(h.state.read().unwrap().series_total, 100);
    // The victim mounts a filesystem: within its share (100 / 2 hosts).
    h.push("victim", T0 + S, &[fs(0), fs(1), fs(2)]);
    // The attacker, over its share, and a new host are refused.
    let b = h.batch("evil", T0 + S, &[fs(500)]);
    assert_eq!(limited(h.engine.apply(&b, T0 + S)), Limit::SeriesTotal);
    let b = h.batch("newcomer", T0 + S, &[fs(0)]);
    assert_eq!(limited(h.engine.apply(&b, T0 + S)), Limit::SeriesTotal);
    assert_eq!(h.state.read().unwrap().series_total, 101);
}

#[test]
fn series_not_reported_for_a_while_free_their_slots() {
    let (_d, path) = db();
    let yaml = "rules:\n  - {name: fs, metric: f, above: 0.9, for: 10m}\nlimits: {series_per_host: 2}\nforget_series_after: 1m\n";
    let mut h = harness_with(&path, T0, yaml);
    h.push(
        "a",
        T0,
        &[("f", &[("m", "/old")], 0.95), ("f", &[("m", "/")], 0.5)],
    );
    assert!(
        h.engine.alerts.keys().any(|k| k.labels["m"] == "/old"),
        "pending"
    );
    // /old is no longer sent; a new mount would be one too many ...
    let b = h.batch(
        "a",
        T0 + 30 * S,
        &[("f", &[("m", "/")], 0.5), ("f", &[("m", "/new")], 0.5)],
    );
    assert_eq!(
        limited(h.engine.apply(&b, T0 + 30 * S)),
        Limit::SeriesPerHost
    );
    h.push("a", T0 + 40 * S, &[("f", &[("m", "/")], 0.5)]);
    // ... until /old is a minute stale: released, with its pending alert.
    let b = h.batch(
        "a",
        T0 + 90 * S,
        &[("f", &[("m", "/")], 0.5), ("f", &[("m", "/new")], 0.5)],
    );
    assert_eq!(h.engine.apply(&b, T0 + 90 * S).unwrap().accepted, 2);
    let st = h.state.read().unwrap();
    assert_eq!(st.series_total, 2);
    assert!(st.hosts["a"]
        .point("f", &Labels::from([("m".to_string(), "/old".to_string())]))
        .is_none());
    assert!(h.engine.alerts.is_empty(), "{:?}", h.engine.alerts);
}

#[test]
fn a_token_brings_in_at_most_its_hosts_and_forgotten_hosts_free_their_slot() {
    let (_d, path) = db();
    let yaml = "rules:\n  - {name: host_down, absent_for: 60s}\nlimits: {hosts_per_token: 2}\nforget_hosts_after: 5m\n";
    let mut h = harness_with(&path, T0, yaml);
    let token = Some(7);
    for host in ["a", "b"] {
        let b = h.batch(host, T0, &[("m", &[], 1.0)]);
        h.engine.apply_as(&b, token, T0).unwrap();
    }
    let b = h.batch("c", T0, &[]);
    assert_eq!(
        limited(h.engine.apply_as(&b, token, T0)),
        Limit::HostsPerToken
    );
    // Another token has its own count.
    h.engine.apply_as(&b, Some(8), T0).unwrap();
    // "a" goes silent: host_down opens, and after forget_hosts_after it is
    // forgotten; its slot, its series and its record go.
    for t in (10..=300).step_by(10) {
        let b = h.batch("b", T0 + t * S, &[]);
        h.engine.apply_as(&b, token, T0 + t * S).unwrap();
        h.engine.tick(T0 + t * S);
    }
    let down: Vec<String> = h.incidents().into_iter().map(|i| i.host).collect();
    assert!(down.contains(&"a".to_string()), "host_down for a: {down:?}");
    h.engine.tick(T0 + 301 * S);
    {
        let st = h.state.read().unwrap();
        assert!(!st.hosts.contains_key("a"));
        assert_eq!(st.series_total, 1, "b's one series");
        assert_eq!(st.hosts_per_token.get(&7), Some(&1));
    }
    // Its record stays (for its history and exactly-once), out of memory.
    assert!(h
        .engine
        .store
        .hosts()
        .unwrap()
        .iter()
        .any(|r| r.host == "a"));
    let b = h.batch("d", T0 + 302 * S, &[]);
    h.engine.apply_as(&b, token, T0 + 302 * S).unwrap();
    // a comes back (its token's hosts are full again) ... with another token
    // allowed for it, and its host_down resolves.
    let b = h.batch("a", T0 + 303 * S, &[]);
    assert_eq!(
        limited(h.engine.apply_as(&b, token, T0 + 303 * S)),
        Limit::HostsPerToken
    );
    h.engine.apply_as(&b, Some(9), T0 + 303 * S).unwrap();
    let a = h.incidents().into_iter().find(|i| i.host == "a").unwrap();
    assert_eq!(a.state, IncidentState::Resolved);
    // It came back with its history: down from its first missed push.
    let st = h.state.read().unwrap();
    assert_eq!(
        st.hosts["a"].up.points(),
        &[
            (T0, Avail::Up),
            (T0 + 10 * S, Avail::Down),
            (T0 + 303 * S, Avail::Up)
        ]
    );
    drop(st);
    // A stale retry of its earlier run is still a repeat.
    let mut stale = h.batch("a", T0 + 304 * S, &[("m", &[], 1.0)]);
    stale.seq = 1;
    assert_eq!(
        h.engine
            .apply_as(&stale, Some(9), T0 + 304 * S)
            .unwrap()
            .accepted,
        0
    );
}

#[test]
fn alertmanager_names_and_alerts_are_bounded_whole_calls() {
    let (_d, path) = db();
    let yaml = "rules: []\nlimits: {external_rules: 2, external_alerts: 3}\n";
    let mut h = harness_with(&path, T0, yaml);
    let names = [
        am_alert(true, "A", "x", "critical"),
        am_alert(true, "B", "x", "critical"),
    ];
    h.engine.external(&names, T0).unwrap();
    let more = [
        am_alert(true, "A", "y", "critical"),
        am_alert(true, "C", "x", "critical"),
    ];
    match h.engine.external(&more, T0 + S) {
        Err(ApplyError::Limited(l)) => assert_eq!(l.limit, Limit::ExternalRules),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        h.incidents().len(),
        2,
        "nothing of the refused call applied"
    );
    // Repeats of live alerts are no new incidents.
    let again = [
        am_alert(true, "A", "x", "critical"),
        am_alert(true, "A", "y", "critical"),
    ];
    h.engine.external(&again, T0 + 2 * S).unwrap();
    let one_more = [am_alert(true, "B", "y", "critical")];
    match h.engine.external(&one_more, T0 + 3 * S) {
        Err(ApplyError::Limited(l)) => assert_eq!(l.limit, Limit::ExternalAlerts),
        other => panic!("{other:?}"),
    }
    // A resolve is always taken, and frees a slot.
    h.engine
        .external(&[am_alert(false, "A", "x", "critical")], T0 + 4 * S)
        .unwrap();
    h.engine.external(&one_more, T0 + 5 * S).unwrap();
}

#[test]
fn a_batch_flapping_one_series_a_thousand_times_writes_a_handful_of_transitions() {
    let (_d, path) = db();
    let mut h = harness(&path, T0);
    let samples: Vec<SampleSpec<'_>> = (0..1000u32)
        .map(|i| {
            (
                "filesystem_used_ratio",
                &[][..],
                if i.is_multiple_of(2) { 0.99 } else { 0.1 },
            )
        })
        .collect();
    h.push("web-01", T0, &samples);
    let v = h.incidents();
    assert_eq!(v.len(), 1, "one incident, reopened rather than duplicated");
    assert!(
        v[0].events.len() <= 12,
        "flapping stops the storm: {:?}",
        kinds(&v[0])
    );
    assert!(v[0].flapping);
}

#[test]
fn incidents_whose_rule_is_removed_leave_the_open_gauge_at_restart_and_at_reload() {
    let gauge = |h: &Harness, rule: &str| {
        let text = h.metrics.render(T0);
        let open = format!("vedette_incidents_open{{priority=\"P3\",rule=\"{rule}\"}} ");
        let resolved =
            format!("vedette_incidents_resolved_total{{priority=\"P3\",resolution=\"manual\",rule=\"{rule}\"}} ");
        let value = |prefix: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(prefix)?.parse::<f64>().ok())
        };
        (value(&open).unwrap_or(0.0), value(&resolved).unwrap_or(0.0))
    };
    let (_d, path) = db();
    {
        let mut h = harness(&path, T0);
        h.push("web-01", T0, &[("filesystem_used_ratio", &[], 0.99)]);
        assert_eq!(gauge(&h, "disk_full"), (1.0, 0.0));
    }
    // Restarted without `disk_full`: its live incident is resolved (by the
    // collector, with a note: a manual resolution).
    let without_disk = RULES.replace(
        "  - name: disk_full\n    metric: filesystem_used_ratio\n    above: 0.9\n",
        "",
    );
    assert_ne!(without_disk, RULES);
    let mut h = harness_with(&path, T0 + S, &without_disk);
    assert_eq!(
        gauge(&h, "disk_full"),
        (0.0, 1.0),
        "resolved, not open, and never below zero"
    );
    // Opened again under a reloaded configuration, then the rule goes again.
    let with = Config::from_yaml("t.yaml", RULES).unwrap().engine_setup();
    let wake: Wake = Arc::new(|| {});
    let router = Arc::new(Router::default());
    h.engine
        .reload(with, Arc::clone(&router), Arc::clone(&wake), T0 + 2 * S)
        .unwrap();
    h.seq = 1;
    h.push(
        "web-01",
        T0 + 3 * S,
        &[("filesystem_used_ratio", &[], 0.99)],
    );
    assert_eq!(gauge(&h, "disk_full").0, 1.0);
    let without = Config::from_yaml("t.yaml", &without_disk)
        .unwrap()
        .engine_setup();
    let r = h.engine.reload(without, router, wake, T0 + 4 * S).unwrap();
    assert_eq!(r.orphans_resolved, 1);
    assert_eq!(gauge(&h, "disk_full"), (0.0, 2.0));
}
