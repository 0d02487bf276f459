//! The spine, end to end: real agent and collector processes over real
//! loopback sockets and a real SQLite file.

use std::time::Duration;

use serde_json::Value;
use vedette_tests::{agent, bin, free_port, wait_for, Collector};

/// A rule every host breaches at once (uptime is always above zero), plus a
/// fast heartbeat so host-down tests take seconds.
const RULES: &str = "
agents:
  - token: e2e-token
    hosts: ['e2e-*']
rules:
  - name: always
    metric: uptime_seconds
    above: 0
    impact: 1
    urgency: 2
  - name: host_down
    absent_for: 2s
    impact: 1
    urgency: 1
";

fn token_agent(dir: &std::path::Path, name: &str, host: &str, url: &str) -> vedette_tests::Daemon {
    // The collector URL goes in `collector:`; merge the token into it.
    let config = format!(
        "host: {host}\ncollector:\n  url: {url}\n  token: e2e-token\ninterval: 1s\nlisten: off\nspool: {{dir: {name}-spool}}\n"
    );
    vedette_tests::Daemon::start("vedette-agent", dir, name, &config)
}

fn is(i: &Value, rule: &str, state: &str) -> bool {
    i["rule"] == rule && i["state"] == state
}

#[test]
fn a_breached_rule_opens_an_incident_visible_in_api_metrics_and_cli() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), free_port(), RULES);
    let _agent = token_agent(dir.path(), "agent", "e2e-breach", &c.url);

    let i = c.wait_incident("the `always` incident", Duration::from_secs(20), |i| {
        is(i, "always", "open")
    });
    assert_eq!(i["host"], "e2e-breach");
    assert_eq!(i["priority"], 2, "impact 1 × urgency 2 → P2");
    assert!(i["value"].as_f64().unwrap() > 0.0);
    assert_eq!(i["threshold"], 0.0);
    assert!(i["started_at"].as_str().unwrap() <= i["detected_at"].as_str().unwrap());

    let up = wait_for(
        "host up in /metrics",
        Duration::from_secs(10),
        &c.daemon.log,
        || {
            c.metric("vedette_host_up{host=\"e2e-breach\"}")
                .filter(|v| *v == 1.0)
        },
    );
    assert_eq!(up, 1.0);
    assert!(
        c.metric("vedette_uptime_seconds{host=\"e2e-breach\"}")
            .unwrap()
            > 0.0
    );
    assert_eq!(
        c.metric("vedette_incidents_open{priority=\"P2\",rule=\"always\"}"),
        Some(1.0)
    );

    // The CLI reads the same API.
    let out = std::process::Command::new(bin("vedette-collector"))
        .args(["incidents", "list", "--state", "open", "--url", &c.url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.lines().next().unwrap().starts_with("ID"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains("always") && l.contains("e2e-breach")),
        "{table}"
    );
}

#[test]
fn stopping_the_agent_opens_host_down_and_restarting_it_resolves_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), free_port(), RULES);
    let a = token_agent(dir.path(), "agent", "e2e-down", &c.url);
    wait_for(
        "the host to report",
        Duration::from_secs(10),
        &c.daemon.log,
        || {
            c.metric("vedette_host_up{host=\"e2e-down\"}")
                .filter(|v| *v == 1.0)
        },
    );
    let status = a.stop("TERM");
    assert!(status.success(), "agent exits 0 on SIGTERM: {status}");

    let down = c.wait_incident("host_down to open", Duration::from_secs(15), |i| {
        is(i, "host_down", "open")
    });
    assert_eq!(
        (down["host"].as_str(), down["priority"].as_i64()),
        (Some("e2e-down"), Some(1))
    );
    assert_eq!(c.metric("vedette_host_up{host=\"e2e-down\"}"), Some(0.0));

    let _a = token_agent(dir.path(), "agent2", "e2e-down", &c.url);
    let resolved = c.wait_incident("host_down to resolve", Duration::from_secs(15), |i| {
        is(i, "host_down", "resolved")
    });
    assert_eq!(resolved["id"], down["id"]);
    assert_eq!(resolved["resolution"], "auto");
    assert!(resolved["restored_at"].is_string());
    let host_downs = c
        .incidents()
        .into_iter()
        .filter(|i| i["rule"] == "host_down")
        .count();
    assert_eq!(host_downs, 1, "one outage, one incident");
}

#[test]
fn a_killed_and_restarted_collector_keeps_incident_ids_and_opens_no_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let c = Collector::start(dir.path(), port, RULES);
    let _agent = token_agent(dir.path(), "agent", "e2e-restart", &c.url);
    let before = c.wait_incident("the `always` incident", Duration::from_secs(20), |i| {
        is(i, "always", "open")
    });

    // SIGKILL: no graceful shutdown, nothing flushed but what was committed.
    let status = c.daemon.stop("KILL");
    assert!(!status.success());
    let c = Collector::start(dir.path(), port, RULES);

    // The agent retries and its batches are accepted by the new process …
    wait_for(
        "the agent's batches to arrive again",
        Duration::from_secs(20),
        &c.daemon.log,
        || {
            c.metric("vedette_ingest_batches_total{outcome=\"accepted\"}")
                .filter(|n| *n >= 3.0)
        },
    );
    // … and its still-breaching samples did not open a second incident.
    let all: Vec<Value> = c
        .incidents()
        .into_iter()
        .filter(|i| i["rule"] == "always")
        .collect();
    assert_eq!(all.len(), 1, "duplicate incident after restart: {all:#?}");
    assert_eq!(all[0]["id"], before["id"]);
    assert_eq!(all[0]["state"], "open");
    assert_eq!(all[0]["detected_at"], before["detected_at"]);
    assert_eq!(
        c.metric("vedette_incidents_opened_total{priority=\"P2\",rule=\"always\"}"),
        Some(1.0),
        "counters are restored from the store, not reset"
    );
}

#[test]
fn pushes_without_a_valid_token_or_host_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), free_port(), RULES);
    // Right token, host name outside its globs: 403 on every push.
    let _b = token_agent(dir.path(), "agent-b", "web-01", &c.url);
    // No token at all: 401.
    let _n = agent(dir.path(), "agent-n", "e2e-notoken", &c.url, "");
    // The two agents start together but race: wait for both outcomes.
    wait_for(
        "three forbidden and one unauthorized push",
        Duration::from_secs(20),
        &c.daemon.log,
        || {
            let forbidden = c.metric("vedette_ingest_batches_total{outcome=\"forbidden\"}")?;
            let unauthorized =
                c.metric("vedette_ingest_batches_total{outcome=\"unauthorized\"}")?;
            (forbidden >= 3.0 && unauthorized >= 1.0).then_some(())
        },
    );
    // Outcomes are published from 0, so "none accepted" is a 0, not a gap.
    assert_eq!(
        c.metric("vedette_ingest_batches_total{outcome=\"accepted\"}"),
        Some(0.0)
    );
    assert!(c.metric("vedette_host_up{host=\"web-01\"}").is_none());
    assert!(c.incidents().is_empty());
    let log = std::fs::read_to_string(dir.path().join("agent-b.log")).unwrap();
    assert!(
        log.contains("may not push as host 'web-01'"),
        "the agent logs the collector's reason:\n{log}"
    );
    let warnings = log.matches("cannot deliver to the collector").count();
    assert_eq!(warnings, 1, "logged once per outage, not per retry:\n{log}");
}
