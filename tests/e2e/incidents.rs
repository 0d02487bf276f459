//! The incident lifecycle across real processes: an agent's failing check
//! opens a templated incident on the collector, operators act on it through
//! the CLI with named API tokens (and a viewer cannot), and a planned change
//! created from the CLI suppresses the next breach.

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use vedette_tests::{bin, free_port, wait_for};

/// Runs `vedette-collector ARGS` against `url` with `token`; (exit ok, stdout, stderr).
fn cli(url: &str, token: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin("vedette-collector"))
        .args(args)
        .env("VEDETTE_URL", url)
        .env("VEDETTE_TOKEN", token)
        .output()
        .expect("running vedette-collector");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_to_incident_to_operator_and_a_change_that_silences_the_next_breach() {
    let dir = tempfile::tempdir().unwrap();
    let config = r#"
api_tokens:
  - {name: wallboard, token: viewer-secret, role: viewer}
  - {name: alice, token: operator-secret, role: operator}
incidents: {reopen_within: 1h}
rules:
  - name: db_down
    check: db
    status: critical
    failures: 2
    impact: 1
    urgency: 2
    summary: "{{ check }} unreachable on {{ host }}: {{ message }}"
"#;
    let mut c = vedette_tests::Collector::start(dir.path(), free_port(), config);
    assert!(
        c.get_json("/api/v1/incidents").is_none(),
        "the API needs a token once api_tokens are configured"
    );
    c.token = Some("viewer-secret".into());
    let db_port = free_port();
    let db = TcpListener::bind(("127.0.0.1", db_port)).unwrap();
    let _agent = vedette_tests::agent(
        dir.path(),
        "agent",
        "e2e-db-01",
        &c.url,
        &format!(
            "checks:\n  - name: db\n    tcp: {{address: '127.0.0.1:{db_port}'}}\n    interval: 1s\n    timeout: 500ms\n"
        ),
    );
    // Healthy first: the host reports, nothing opens.
    wait_for(
        "the agent to report",
        Duration::from_secs(20),
        &c.daemon.log,
        || {
            c.metric("vedette_host_up{host=\"e2e-db-01\"}")
                .filter(|&v| v == 1.0)
        },
    );
    drop(db);
    let i = c.wait_incident("db_down to open", Duration::from_secs(20), |i| {
        i["rule"] == "db_down" && i["state"] == "open"
    });
    let summary = i["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("db unreachable on e2e-db-01: "),
        "templated summary: {summary}"
    );
    assert_eq!(i["priority"], 2);
    let id_value = i["id"].clone();
    let id = id_value.to_string();

    // A viewer may read but not acknowledge.
    let (ok, out, _) = cli(&c.url, "viewer-secret", &["incidents", "list"]);
    assert!(ok && out.contains("db_down"), "{out}");
    let (ok, _, err) = cli(&c.url, "viewer-secret", &["incidents", "ack", &id]);
    assert!(!ok, "a viewer cannot acknowledge");
    assert!(
        err.contains("403") && err.contains("'wallboard' is a viewer"),
        "{err}"
    );
    // The operator can, and the timeline names them.
    let (ok, _, err) = cli(
        &c.url,
        "operator-secret",
        &["incidents", "ack", &id, "--note", "restarting postgres"],
    );
    assert!(ok, "{err}");
    let (ok, out, err) = cli(
        &c.url,
        "viewer-secret",
        &["incidents", "show", &id, "--json"],
    );
    assert!(ok, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["state"], "acknowledged");
    let ack = &shown["events"][1];
    assert_eq!(
        (
            ack["kind"].as_str(),
            ack["actor"].as_str(),
            ack["note"].as_str()
        ),
        (
            Some("acknowledged"),
            Some("alice"),
            Some("restarting postgres")
        )
    );

    // The database comes back: the incident resolves by itself.
    let db = TcpListener::bind(("127.0.0.1", db_port)).unwrap();
    c.wait_incident("db_down to resolve", Duration::from_secs(20), |i| {
        i["id"] == id_value && i["state"] == "resolved"
    });

    // Planned maintenance of the host: the next outage opens nothing.
    let (ok, out, err) = cli(
        &c.url,
        "operator-secret",
        &[
            "changes",
            "create",
            "--title",
            "postgres upgrade",
            "--host",
            "e2e-db-*",
            "--duration",
            "1h",
            "--verify-for",
            "10m",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("in_progress") && out.contains("alice"),
        "{out}"
    );
    drop(db);
    let s = wait_for(
        "the breach to be suppressed",
        Duration::from_secs(20),
        &c.daemon.log,
        || {
            c.get_json("/api/v1/suppressions")
                .and_then(|v| v.as_array().and_then(|a| a.first().cloned()))
        },
    );
    assert_eq!(
        (
            s["host"].as_str(),
            s["window_kind"].as_str(),
            s["window"].as_str()
        ),
        (Some("e2e-db-01"), Some("change"), Some("postgres upgrade"))
    );
    let incidents = c.incidents();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(
        incidents[0]["state"], "resolved",
        "not reopened during the change"
    );
    let (ok, out, _) = cli(&c.url, "viewer-secret", &["changes", "list"]);
    assert!(
        ok && out.contains("postgres upgrade") && out.contains("e2e-db-*"),
        "{out}"
    );
    assert_eq!(
        c.metric("vedette_incidents_suppressed_total{rule=\"db_down\"}"),
        Some(1.0)
    );
}
