//! The collector's Prometheus face against the real thing: `promtool check
//! metrics` (Debian's `prometheus` package) accepts the full `/metrics` of a
//! collector fed by a real agent, and a real Prometheus scrapes it and
//! answers PromQL about service availability and open incidents.

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use vedette_tests::{free_port, wait_for, Collector, Daemon};

/// A collector with a service and an open incident, fed by one agent whose
/// `web` check passes and `db` check fails. Returns the collector, the agent,
/// the listener the `web` check connects to and the port `db` checks.
fn fed_collector(dir: &Path) -> (Collector, Daemon, TcpListener, u16) {
    let config = r#"
rules:
  - name: db_down
    check: db
    status: critical
    impact: 2
    urgency: 2
services:
  - name: checkout
    target: 0.999
    hosts: ["e2e-*"]
    checks: [web]
"#;
    let c = Collector::start(dir, free_port(), config);
    let web = TcpListener::bind("127.0.0.1:0").expect("binding the web check's listener");
    let web_addr = web.local_addr().expect("a bound listener has an address");
    let closed = free_port();
    let agent = vedette_tests::agent(
        dir,
        "agent",
        "e2e-web-01",
        &c.url,
        &format!(
            "checks:\n  - name: web\n    tcp: {{address: '{web_addr}'}}\n    interval: 1s\n  - name: db\n    tcp: {{address: '127.0.0.1:{closed}'}}\n    interval: 1s\n    timeout: 500ms\n"
        ),
    );
    c.wait_incident("db_down to open", Duration::from_secs(20), |i| {
        i["rule"] == "db_down" && i["state"] == "open"
    });
    wait_for(
        "the service to be measured",
        Duration::from_secs(20),
        &c.daemon.log,
        || c.metric("vedette_service_availability_ratio{service=\"checkout\",window=\"1h\"}"),
    );
    (c, agent, web, closed)
}

#[test]
fn promtool_finds_nothing_to_say_about_the_full_metrics_output() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _agent, _web, db_port) = fed_collector(dir.path());
    // A whole incident cycle, so that every KPI histogram has a series:
    // acknowledged, then the database comes back and it resolves.
    let id = c.incidents()[0]["id"].as_i64().unwrap();
    let acked = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/incidents/{id}/ack", c.url))
        .json(&serde_json::json!({"note": "looking"}))
        .send()
        .unwrap();
    assert!(acked.status().is_success(), "{acked:?}");
    let _db = TcpListener::bind(("127.0.0.1", db_port)).unwrap();
    c.wait_incident("db_down to resolve", Duration::from_secs(20), |i| {
        i["state"] == "resolved"
    });
    // The agent's host samples are in too.
    let text = wait_for(
        "host samples in /metrics",
        Duration::from_secs(20),
        &c.daemon.log,
        || {
            c.get_text("/metrics")
                .filter(|t| t.contains("vedette_memory_used_ratio{host=\"e2e-web-01\"}"))
        },
    );
    for family in [
        "vedette_host_up",
        "vedette_check_up",
        "vedette_host_availability_ratio",
        "vedette_check_availability_ratio",
        "vedette_check_unknown_seconds",
        "vedette_service_availability_ratio",
        "vedette_service_error_budget_remaining_ratio",
        "vedette_service_error_budget_burn_rate",
        "vedette_service_sla_target_ratio",
        "vedette_incident_detection_seconds",
        "vedette_incident_acknowledge_seconds",
        "vedette_incident_restore_seconds",
        "vedette_incident_resolution_seconds",
        "vedette_incidents_resolved_total",
        "vedette_incidents_open",
        "vedette_collector_downtime_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing from /metrics"
        );
    }
    let said = vedette_tests::promtool_check(&text);
    assert!(
        said.is_empty(),
        "promtool check metrics complained:\n{said}"
    );

    // Every vedette name the Grafana dashboard and the rules use is one this
    // output publishes (or a rule records): a renamed metric breaks here,
    // not on a user's wall screen.
    let deploy = deploy_dir();
    let rules = std::fs::read_to_string(deploy.join("prometheus/vedette-rules.yml")).unwrap();
    let mut known: HashSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .map(str::to_string)
        .collect();
    known.extend(
        rules
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- record: "))
            .map(str::to_string),
    );
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy.join("grafana/vedette.json")).unwrap(),
    )
    .expect("the dashboard is valid JSON");
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    exprs.extend(rules.lines().map(str::to_string));
    assert!(exprs.len() > 10, "the dashboard has panels: {exprs:?}");
    for expr in &exprs {
        for name in names(expr) {
            assert!(
                known.contains(&name) || name == "vedette",
                "{name} (in `{expr}`) is neither published by the collector nor recorded"
            );
        }
    }
}

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every `expr` string in a Grafana dashboard.
fn collect_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// The vedette metric names an expression mentions (identifiers starting
/// with `vedette` or a recording rule's `level:vedette…`).
fn names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("vedette") || w.contains(":vedette"))
        .map(|w| {
            // Histograms are published as _bucket/_sum/_count series.
            ["_sum", "_count", "_bucket"]
                .iter()
                .find_map(|s| w.strip_suffix(s).filter(|_| !w.contains(':')))
                .map_or(w, |base| base)
                .to_string()
        })
        .collect()
}

#[test]
fn the_deploy_rules_and_config_pass_promtool() {
    let dir = deploy_dir().join("prometheus");
    for args in [
        vec!["check", "config", "prometheus.yml"],
        vec!["check", "rules", "vedette-rules.yml"],
        vec!["test", "rules", "vedette-rules.test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(&args)
            .current_dir(&dir)
            .output()
            .expect("promtool (Debian package prometheus) must be installed");
        assert!(
            out.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs Debian's Prometheus scraping `target` every second.
fn prometheus(dir: &Path, target: &str) -> (Daemon, String) {
    vedette_tests::prometheus(
        dir,
        &format!("  - job_name: vedette\n    static_configs:\n      - targets: ['{target}']\n"),
    )
}

/// The result vector of an instant PromQL query, `None` until Prometheus answers.
fn query(http: &reqwest::blocking::Client, base: &str, promql: &str) -> Option<Vec<Value>> {
    let v: Value = http
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", promql)])
        .send()
        .ok()?
        .json()
        .ok()?;
    (v["status"] == "success").then(|| v["data"]["result"].as_array().cloned())?
}

#[test]
fn real_prometheus_scrapes_the_collector_and_answers_promql() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _agent, _web, _) = fed_collector(dir.path());
    let (prom, base) = prometheus(dir.path(), c.url.trim_start_matches("http://"));
    let http = reqwest::blocking::Client::new();
    let availability = wait_for(
        "Prometheus to scrape service availability",
        Duration::from_secs(60),
        &prom.log,
        || {
            query(
                &http,
                &base,
                r#"vedette_service_availability_ratio{service="checkout",window="1h"}"#,
            )
            .filter(|r| !r.is_empty())
        },
    );
    assert_eq!(availability.len(), 1);
    assert_eq!(availability[0]["metric"]["job"], "vedette");
    assert_eq!(
        availability[0]["value"][1], "1",
        "the web check has passed all along: {availability:?}"
    );
    let open = wait_for(
        "vedette_incidents_open in Prometheus",
        Duration::from_secs(30),
        &prom.log,
        || query(&http, &base, "sum by (rule) (vedette_incidents_open)").filter(|r| !r.is_empty()),
    );
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["metric"]["rule"], "db_down");
    assert_eq!(open[0]["value"][1], "1");
    // The scrape itself was healthy.
    let up = query(&http, &base, r#"up{job="vedette"}"#).unwrap();
    assert_eq!(up[0]["value"][1], "1");
}
