//! Secure transport with real processes and real certificates (made by
//! `vedette-collector tls init` in each test): agents push over TLS and
//! mutual TLS; every mistake an operator can make (wrong CA, expired or
//! misnamed server certificate, plain HTTP to the TLS port, no client
//! certificate, a token used with another host's certificate) is refused with
//! its reason in the agent's log and on its `/metrics`; a certificate rotated
//! by SIGHUP during a stream of pushes loses none; an agent with two
//! collectors fails over when the first is killed and its backlog arrives
//! once; the real Prometheus scrapes over HTTPS and the real Alertmanager
//! receives over TLS from a private CA.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use vedette_tests::pki::{Pki, SERVER_NAME};
use vedette_tests::{free_port, metric_at, wait_for, Collector, Daemon};

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "tls-agent-token-0123456789";
const BOUND: &str = "tls-bound-token-0123456789";

/// The agent token, for any host, on a collector without mutual TLS.
fn agents_plain() -> String {
    format!("agents:\n  - {{token: {TOKEN}, hosts: ['*']}}\nrules: []\n")
}

/// Agent tokens: one for any host, one bound to `web-*` certificates.
fn agents() -> String {
    format!(
        "agents:\n  - {{token: {TOKEN}, hosts: ['*']}}\n  - {{token: {BOUND}, hosts: ['*'], cert_names: ['web-*']}}\nrules: []\n"
    )
}

/// An agent `name` reporting as `host` with `collector` keys, its `/metrics`
/// on a free port (returned).
fn agent(dir: &Path, name: &str, host: &str, collector: &str) -> (Daemon, u16) {
    let port = free_port();
    let config = format!(
        "host: {host}\ncollector:\n{collector}interval: 1s\nlisten: 127.0.0.1:{port}\nspool: {{dir: {name}-spool}}\n"
    );
    (Daemon::start("vedette-agent", dir, name, &config), port)
}

/// The agent's push attempts with `outcome` to `collector`.
fn pushes(port: u16, collector: &str, outcome: &str) -> f64 {
    metric_at(
        port,
        &format!("vedette_agent_push_total{{collector=\"{collector}\",outcome=\"{outcome}\"}}"),
    )
    .unwrap_or(0.0)
}

#[test]
fn agents_push_over_mutual_tls_and_each_mistake_is_refused_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::init(&d.join("pki"), &["web-01", "db-01"]);
    let other = Pki::init(&d.join("other-pki"), &[]);
    let port = free_port();
    let c = Collector::start_tls(d, port, &agents(), &pki, Some("web-01"));
    let https = format!("https://127.0.0.1:{port}");
    let url = |u: &str| format!("  url: {u}\n");

    // The good agent: private CA, its own certificate, the server's name.
    let (_good, good_port) = agent(
        d,
        "good",
        "web-01",
        &format!(
            "{}  token: {TOKEN}\n{}",
            url(&https),
            pki.agent_tls(Some("web-01"))
        ),
    );
    wait_for("web-01 up over mutual TLS", WAIT, &c.daemon.log, || {
        (c.metric("vedette_host_up{host=\"web-01\"}") == Some(1.0)).then_some(())
    });
    assert!(pushes(good_port, &https, "ok") >= 1.0);
    assert_eq!(
        metric_at(
            good_port,
            &format!("vedette_agent_collector_active{{collector=\"{https}\"}}")
        ),
        Some(1.0)
    );

    // Each mistake: (agent name, its collector keys, the log's reason, the counted outcome).
    let no_cert = pki.agent_tls(None);
    // Another CA to verify the server with; the agent's own pair is fine.
    let wrong_ca = other.agent_tls(Some("web-01")).replace(
        &format!("{}/agents/web-01", other.dir.display()),
        &format!("{}/agents/web-01", pki.dir.display()),
    );
    let wrong_name = pki
        .agent_tls(Some("web-01"))
        .replace(SERVER_NAME, "elsewhere.test");
    let plain = format!("http://127.0.0.1:{port}");
    let cases = [
        (
            "wrong-ca",
            url(&https) + &wrong_ca,
            "UnknownIssuer",
            "tls_error",
            &https,
        ),
        (
            "wrong-name",
            url(&https) + &wrong_name,
            "certificate not valid for name \"elsewhere.test\"",
            "tls_error",
            &https,
        ),
        (
            "no-cert",
            url(&https) + &no_cert,
            "TLS: ",
            "tls_error",
            &https,
        ),
        (
            "plain",
            url(&plain),
            "HTTP 426: this port speaks TLS",
            "http_4xx",
            &plain,
        ),
    ];
    let mut running = Vec::new();
    for (name, keys, _, _, _) in &cases {
        running.push(agent(
            d,
            name,
            &format!("e2e-{name}"),
            &format!("{keys}  token: {TOKEN}\n"),
        ));
    }
    for ((name, _, reason, outcome, target), (daemon, mport)) in cases.iter().zip(&running) {
        daemon.wait_log(reason, 1);
        wait_for(
            &format!("{name}: {outcome} counted"),
            WAIT,
            &daemon.log,
            || (pushes(*mport, target, outcome) >= 1.0).then_some(()),
        );
        assert_eq!(pushes(*mport, target, "ok"), 0.0, "{name} got through");
        assert_eq!(
            c.metric(&format!("vedette_host_up{{host=\"e2e-{name}\"}}")),
            None
        );
    }

    // A token bound to web-* certificates, presented with db-01's: 403 naming both.
    let (db, db_port) = agent(
        d,
        "stolen",
        "web-02",
        &format!(
            "{}  token: {BOUND}\n{}",
            url(&https),
            pki.agent_tls(Some("db-01"))
        ),
    );
    db.wait_log("HTTP 403", 1);
    let log = db.log_text();
    assert!(
        log.contains(
            "bound to client certificates named web-*; the client certificate names db-01"
        ),
        "{log}"
    );
    assert!(pushes(db_port, &https, "http_4xx") >= 1.0);
    // The same bound token with a web certificate is fine.
    let (_web, _) = agent(
        d,
        "bound",
        "web-03",
        &format!(
            "{}  token: {BOUND}\n{}",
            url(&https),
            pki.agent_tls(Some("web-01"))
        ),
    );
    wait_for(
        "web-03 up with its bound token",
        WAIT,
        &c.daemon.log,
        || (c.metric("vedette_host_up{host=\"web-03\"}") == Some(1.0)).then_some(()),
    );
}

#[test]
fn an_expired_server_certificate_is_warned_at_start_and_refused_by_agents() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::init(&d.join("pki"), &[]);
    pki.expire_server();
    std::fs::write(
        d.join("check.yaml"),
        format!(
            "listen: 0.0.0.0:9850\n{}{}",
            pki.collector_tls(false),
            agents_plain()
        ),
    )
    .unwrap();
    let out = Command::new(vedette_tests::bin("vedette-collector"))
        .arg("check-config")
        .arg(d.join("check.yaml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "an expired certificate is a warning: {err}"
    );
    assert!(err.contains("EXPIRED 1 day ago"), "{err}");

    let port = free_port();
    let config = format!(
        "listen: 127.0.0.1:{port}\ndata_dir: {}\n{}{}",
        d.join("data").display(),
        pki.collector_tls(false),
        agents_plain()
    );
    let collector = Daemon::start("vedette-collector", d, "collector", &config);
    collector.wait_log("EXPIRED 1 day ago", 1);
    let https = format!("https://127.0.0.1:{port}");
    let (a, mport) = agent(
        d,
        "agent",
        "web-01",
        &format!("  url: {https}\n  token: {TOKEN}\n{}", pki.agent_tls(None)),
    );
    a.wait_log("TLS: invalid peer certificate: certificate expired", 1);
    wait_for("the expired certificate counted", WAIT, &a.log, || {
        (pushes(mport, &https, "tls_error") >= 1.0).then_some(())
    });
}

#[test]
fn a_certificate_rotated_by_sighup_during_pushes_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::init(&d.join("pki"), &["web-01"]);
    let port = free_port();
    let c = Collector::start_tls(d, port, &agents(), &pki, Some("web-01"));
    let https = format!("https://127.0.0.1:{port}");
    let (a, mport) = agent(
        d,
        "agent",
        "web-01",
        &format!(
            "  url: {https}\n  token: {TOKEN}\n{}",
            pki.agent_tls(Some("web-01"))
        ),
    );
    let accepted = || {
        c.metric("vedette_ingest_batches_total{outcome=\"accepted\"}")
            .unwrap_or(0.0)
    };
    wait_for("a stream of pushes", WAIT, &a.log, || {
        (accepted() >= 3.0).then_some(())
    });
    let old = c.served_certificate().expect("a served certificate");

    // A broken pair is refused and the old one kept.
    let good_key = std::fs::read(pki.server_key()).unwrap();
    std::fs::write(pki.server_key(), "not a key\n").unwrap();
    c.daemon.signal("HUP");
    c.daemon.wait_log("config reload refused", 1);
    assert!(
        c.daemon.log_text().contains("tls.key_file"),
        "the refusal names the key"
    );
    assert_eq!(
        c.served_certificate().as_ref(),
        Some(&old),
        "the old pair still serves"
    );
    std::fs::write(pki.server_key(), good_key).unwrap();

    // Renewed from the same CA, then SIGHUP: new connections get the new one.
    Pki::run(&pki.dir, &[SERVER_NAME], &[], 60);
    c.daemon.signal("HUP");
    c.daemon.wait_log("TLS certificate re-read (", 1);
    let said = c.daemon.log_text();
    assert!(
        said.contains("(59 days left)") || said.contains("(60 days left)"),
        "the reload reports the renewed certificate's days: {said}"
    );
    let new = c.served_certificate().expect("a served certificate");
    assert_ne!(new, old, "the renewed certificate is served");
    let renewed = std::fs::read_to_string(pki.server()).unwrap();
    assert!(renewed.contains("BEGIN CERTIFICATE"));

    let at_rotation = accepted();
    wait_for("pushes after the rotation", WAIT, &a.log, || {
        (accepted() >= at_rotation + 3.0).then_some(())
    });
    // Nothing failed, nothing was dropped or left waiting: none lost.
    let metrics = reqwest::blocking::get(format!("http://127.0.0.1:{mport}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    let failures: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("vedette_agent_push_total{") && !l.contains("outcome=\"ok\""))
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(
        metric_at(mport, "vedette_agent_dropped_batches_total"),
        Some(0.0)
    );
    let sent = pushes(mport, &https, "ok");
    wait_for("the collector to have every batch", WAIT, &a.log, || {
        (accepted() >= sent).then_some(())
    });
}

#[test]
fn two_collectors_the_first_killed_pushes_continue_and_the_backlog_arrives_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::init(&d.join("pki"), &[]);
    let (d1, d2) = (d.join("c1"), d.join("c2"));
    std::fs::create_dir_all(&d1).unwrap();
    std::fs::create_dir_all(&d2).unwrap();
    let (p1, p2) = (free_port(), free_port());
    let c1 = Collector::start_tls(&d1, p1, &agents_plain(), &pki, None);
    let c2 = Collector::start_tls(&d2, p2, &agents_plain(), &pki, None);
    let (u1, u2) = (
        format!("https://127.0.0.1:{p1}"),
        format!("https://127.0.0.1:{p2}"),
    );
    let (a, mport) = agent(
        d,
        "agent",
        "web-01",
        &format!(
            "  urls: ['{u1}', '{u2}']\n  token: {TOKEN}\n{}",
            pki.agent_tls(None)
        ),
    );
    let active = |u: &str| {
        metric_at(
            mport,
            &format!("vedette_agent_collector_active{{collector=\"{u}\"}}"),
        )
    };
    wait_for("pushes to the preferred collector", WAIT, &a.log, || {
        (c1.metric("vedette_host_up{host=\"web-01\"}") == Some(1.0) && active(&u1) == Some(1.0))
            .then_some(())
    });
    assert_eq!(active(&u2), Some(0.0));
    assert_eq!(
        c2.metric("vedette_host_up{host=\"web-01\"}"),
        None,
        "c2 has seen nothing yet"
    );

    // SIGKILL the first: pushes continue to the second within one interval (1 s),
    // allowing for the push in flight and process scheduling.
    let c1_log = c1.daemon.log.clone();
    let Collector { daemon, .. } = c1;
    let killed_at = std::time::Instant::now();
    daemon.stop("KILL");
    wait_for("c2 to receive pushes", WAIT, &c1_log, || {
        (c2.metric("vedette_host_up{host=\"web-01\"}") == Some(1.0)).then_some(())
    });
    let took = killed_at.elapsed();
    eprintln!("failover: c2 had the host up {took:?} after c1 was killed");
    assert!(took < Duration::from_secs(4), "failover took {took:?}");
    wait_for("the agent to say c2 is active", WAIT, &a.log, || {
        (active(&u2) == Some(1.0) && active(&u1) == Some(0.0)).then_some(())
    });
    assert!(pushes(mport, &u1, "connect_error") >= 1.0);

    // Both down: a backlog builds up; the second returns and takes it once.
    let c2_dir = d2.clone();
    let c2_log = c2.daemon.log.clone();
    let Collector { daemon, .. } = c2;
    daemon.stop("KILL");
    wait_for("a backlog of 3 batches", WAIT, &a.log, || {
        (metric_at(mport, "vedette_agent_queue_batches")? >= 3.0).then_some(())
    });
    drop(c2_log);
    let c2 = Collector::start_tls(&c2_dir, p2, &agents_plain(), &pki, None);
    wait_for("the backlog delivered", WAIT, &a.log, || {
        (metric_at(mport, "vedette_agent_queue_batches") == Some(0.0)).then_some(())
    });
    let dup = c2
        .metric("vedette_ingest_batches_total{outcome=\"duplicate\"}")
        .unwrap_or(0.0);
    assert_eq!(dup, 0.0, "every spooled batch arrives once");
    assert_eq!(
        metric_at(mport, "vedette_agent_dropped_batches_total"),
        Some(0.0)
    );
}

/// Runs Debian's Prometheus scraping `target` over HTTPS with this CA and
/// the metrics token; returns it and its URL.
fn prometheus_https(dir: &Path, target: &str, pki: &Pki, token_file: &Path) -> (Daemon, String) {
    vedette_tests::prometheus(
        dir,
        &format!(
            "  - job_name: vedette\n    scheme: https\n    \
             tls_config:\n      ca_file: {}\n      server_name: {SERVER_NAME}\n    \
             authorization:\n      credentials_file: {}\n    \
             static_configs:\n      - targets: ['{target}']\n",
            pki.ca().display(),
            token_file.display()
        ),
    )
}

#[test]
fn the_real_prometheus_scrapes_metrics_over_https_with_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::init(&d.join("pki"), &[]);
    let token_file = d.join("metrics.token");
    std::fs::write(&token_file, "metrics-token-0123456789\n").unwrap();
    let port = free_port();
    let c = Collector::start_tls(
        d,
        port,
        &format!(
            "{}metrics_token: {{token_file: {}}}\n",
            agents_plain(),
            token_file.display()
        ),
        &pki,
        None,
    );
    assert_eq!(c.get_text("/metrics"), None, "the token is needed");
    let (prom, base) = prometheus_https(d, &format!("127.0.0.1:{port}"), &pki, &token_file);
    let http = reqwest::blocking::Client::new();
    let up = wait_for(
        "Prometheus to scrape over HTTPS",
        Duration::from_secs(60),
        &prom.log,
        || {
            let v: Value = http
                .get(format!("{base}/api/v1/query"))
                .query(&[("query", "up{job=\"vedette\"} == 1")])
                .send()
                .ok()?
                .json()
                .ok()?;
            v["data"]["result"]
                .as_array()
                .filter(|r| !r.is_empty())
                .cloned()
        },
    );
    assert_eq!(up[0]["metric"]["instance"], format!("127.0.0.1:{port}"));
    let targets: Value = http
        .get(format!("{base}/api/v1/targets"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let t = &targets["data"]["activeTargets"][0];
    assert_eq!(t["health"], "up", "{t}");
    assert_eq!(t["scrapeUrl"], format!("https://127.0.0.1:{port}/metrics"));
}

#[test]
fn the_real_alertmanager_receives_over_tls_from_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Alertmanager's own certificate, from its own private CA.
    let am_pki = Pki::run(&d.join("am-pki"), &["127.0.0.1"], &[], 30);
    let am_port = free_port();
    std::fs::write(
        d.join("web.yml"),
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
            am_pki.server().display(),
            am_pki.server_key().display()
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("am.yml"),
        "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
    )
    .unwrap();
    let log = d.join("alertmanager.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", d.join("am.yml").display()))
        .arg(format!("--web.config.file={}", d.join("web.yml").display()))
        .arg(format!("--storage.path={}", d.join("am").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
        .arg("--cluster.listen-address=")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .expect("prometheus-alertmanager (tests/run.sh installs it)");
    let am_daemon = Daemon { child, log };
    let am = format!("https://127.0.0.1:{am_port}");
    let am_http = reqwest::blocking::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(am_pki.ca()).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    wait_for("Alertmanager ready over TLS", WAIT, &am_daemon.log, || {
        am_http
            .get(format!("{am}/-/ready"))
            .send()
            .ok()
            .filter(|r| r.status().is_success())
    });

    let port = free_port();
    let c = Collector::start(
        d,
        port,
        &format!(
            "rules:\n  - {{name: load_high, metric: load_test, above: 0.5, impact: 2, urgency: 2}}\n\
             notify:\n  - {{name: am, kind: alertmanager, url: '{am}', ca_file: {}, max_backoff: 1s}}\n\
             \x20 - {{name: am-no-ca, kind: alertmanager, url: '{am}', max_backoff: 1s}}\n",
            am_pki.ca().display()
        ),
    );
    assert_eq!(
        vedette_tests::push_sample(&c.url, "db-1", "boot-1", 1, "load_test", 0.9),
        200
    );
    let active = wait_for(
        "the alert in Alertmanager over TLS",
        WAIT,
        &am_daemon.log,
        || {
            let v: Value = am_http
                .get(format!(
                    "{am}/api/v2/alerts?filter=alertname%3D%22load_high%22"
                ))
                .send()
                .ok()?
                .json()
                .ok()?;
            v.as_array()?
                .iter()
                .find(|a| a["status"]["state"] == "active")
                .cloned()
        },
    );
    assert_eq!(active["labels"]["host"], "db-1");
    // Without the CA the same Alertmanager is not trusted: retried, never delivered.
    wait_for(
        "the receiver without the CA to fail",
        WAIT,
        &c.daemon.log,
        || {
            (c.metric("vedette_notifications_total{outcome=\"retried\",receiver=\"am-no-ca\"}")?
                >= 1.0)
                .then_some(())
        },
    );
    assert_eq!(
        c.metric("vedette_notifications_total{outcome=\"delivered\",receiver=\"am-no-ca\"}"),
        Some(0.0)
    );
    assert!(
        c.metric("vedette_notifications_total{outcome=\"delivered\",receiver=\"am\"}") >= Some(1.0)
    );
}

#[test]
fn a_handshake_that_never_finishes_is_cut_off_and_blocks_no_one() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::init(&d.join("pki"), &[]);
    let port = free_port();
    let c = Collector::start_tls(
        d,
        port,
        &format!("{}http: {{header_timeout: 1s}}\n", agents_plain()),
        &pki,
        None,
    );
    // Fifty connections that start a TLS record and stall, and one that says nothing.
    let mut stalled: Vec<std::net::TcpStream> = (0..50)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(&[0x16, 0x03, 0x01]).unwrap();
            s
        })
        .collect();
    stalled.push(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
    // Meanwhile a real agent is served.
    let https = format!("https://127.0.0.1:{port}");
    let (_a, _) = agent(
        d,
        "agent",
        "web-01",
        &format!("  url: {https}\n  token: {TOKEN}\n{}", pki.agent_tls(None)),
    );
    wait_for(
        "web-01 up beside the stalled handshakes",
        WAIT,
        &c.daemon.log,
        || (c.metric("vedette_host_up{host=\"web-01\"}") == Some(1.0)).then_some(()),
    );
    // Each stalled connection is closed by the collector after the header timeout.
    let start = std::time::Instant::now();
    for s in &mut stalled {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 64];
        let n = s
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("not closed: {e}"));
        assert_eq!(n, 0, "the collector closes, it does not answer");
    }
    assert!(start.elapsed() < Duration::from_secs(10));
}
