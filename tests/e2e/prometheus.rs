//! The collector's Prometheus face against the real thing: `promtool check
//! metrics` (Debian's `prometheus` package) accepts the full `/metrics` of a
//! collector fed by a real agent, and a real Prometheus scrapes it and
//! answers PromQL about service availability and open incidents.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use vedette_tests::{free_port, wait_for, Collector, Daemon};

/// A collector with a service and an open incident, fed by one agent whose
/// `web` check passes and `db` check fails. Returns the collector, the agent
/// and the listener the `web` check connects to.
fn fed_collector(dir: &Path) -> (Collector, Daemon, TcpListener) {
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
    (c, agent, web)
}

#[test]
fn promtool_finds_nothing_to_say_about_the_full_metrics_output() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _agent, _web) = fed_collector(dir.path());
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
        "vedette_incidents_open",
        "vedette_collector_downtime_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing from /metrics"
        );
    }
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) must be installed: tests/run.sh installs it");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics complained:\n{said}"
    );
}

/// Runs Debian's Prometheus scraping `target` every second.
fn prometheus(dir: &Path, target: &str) -> (Daemon, String) {
    let port = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n  - job_name: vedette\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .expect("writing prometheus.yml");
    let log = dir.join("prometheus.log");
    let out = std::fs::File::create(&log).expect("creating prometheus.log");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("cloning a file handle"))
        .stderr(out)
        .spawn()
        .expect(
            "prometheus (Debian package prometheus) must be installed: tests/run.sh installs it",
        );
    (Daemon { child, log }, format!("http://127.0.0.1:{port}"))
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
    let (c, _agent, _web) = fed_collector(dir.path());
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
