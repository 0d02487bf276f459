//! Every check kind against real parts over real sockets: HTTP(S) servers
//! with generated certificates, TCP servers, dnsmasq, processes, and the
//! Nagios plugins of Debian's `monitoring-plugins-basic` (`tests/run.sh`
//! installs them). Each success and each failure reason is asserted on the
//! message an operator would read.

// Helpers outside #[test] fns set up fixtures: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use vedette_agent::checks::Runner;
use vedette_agent::config::Config;
use vedette_protocol::{CheckResult, Sample, Status};

/// Runs the one check described by `yaml` (a list item under `checks:`).
async fn check(yaml: &str) -> (CheckResult, Vec<Sample>) {
    let text = format!("host: t\nchecks:\n{yaml}");
    let config = Config::from_yaml("test.yaml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(config.checks.len(), 1);
    Runner::new(config.checks[0].clone()).unwrap().run().await
}

fn expect(r: &CheckResult, status: Status, message: &str) {
    assert_eq!(
        (r.status, r.message.as_str()),
        (status, message),
        "check {}",
        r.name
    );
    assert!(r.latency_s >= 0.0 && r.latency_s < 10.0);
}

fn need(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install Debian's {package} (tests/run.sh does)"
    );
}

// ---------------------------------------------------------------- HTTP(S)

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&req);
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (status, body) = match path.as_str() {
        "/ok" => ("200 OK", "all ok"),
        "/fail" => ("503 Service Unavailable", "down"),
        "/redirect" => ("302 Found", ""),
        // Never answers; the check's timeout ends it.
        "/hang" => std::future::pending().await,
        _ => ("404 Not Found", "nope"),
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nLocation: /ok\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes()).await;
    let _ = s.shutdown().await;
}

async fn http_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(answer(s));
        }
    });
    addr
}

/// A CA (written to `dir/ca.pem`) and an HTTPS server whose certificate for
/// 127.0.0.1 ends at `not_after`.
async fn https_server(dir: &Path, not_after: time::OffsetDateTime) -> SocketAddr {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(400);
    params.not_after = not_after;
    let cert = params.signed_by(&key, &issuer).unwrap();
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(s).await {
                    answer(tls).await;
                }
            });
        }
    });
    addr
}

fn days_left(samples: &[Sample]) -> f64 {
    let s = samples
        .iter()
        .find(|s| s.name == "tls_certificate_days_left")
        .expect("a tls_certificate_days_left sample");
    assert_eq!(s.labels["check"], "web");
    let secs = samples
        .iter()
        .find(|s| s.name == "tls_certificate_expiry_seconds")
        .expect("a tls_certificate_expiry_seconds sample");
    assert_eq!(secs.labels["check"], "web");
    assert!((secs.value - s.value * 86_400.0).abs() < 1e-6);
    s.value
}

#[tokio::test]
async fn http_success_and_every_failure_reason() {
    let addr = http_server().await;
    let (r, samples) = check(&format!(
        "  - name: web\n    http: {{url: 'http://{addr}/ok', body_contains: ok}}\n    labels: {{team: web}}\n"
    ))
    .await;
    expect(&r, Status::Ok, "HTTP 200");
    assert_eq!(r.labels["team"], "web");
    assert_eq!(r.target, format!("http://{addr}/ok"));
    assert!(samples.is_empty(), "no TLS, no days-left sample");

    let (r, _) = check(&format!(
        "  - name: web\n    http: {{url: 'http://{addr}/fail'}}\n"
    ))
    .await;
    expect(&r, Status::Critical, "status 503");

    let (r, _) = check(&format!(
        "  - name: web\n    http: {{url: 'http://{addr}/fail', expect_status: [503]}}\n"
    ))
    .await;
    expect(&r, Status::Ok, "HTTP 503");

    let (r, _) = check(&format!(
        "  - name: web\n    http: {{url: 'http://{addr}/ok', body_contains: healthy}}\n"
    ))
    .await;
    expect(&r, Status::Critical, "body lacks \"healthy\"");

    // Redirects are a failure unless followed.
    let (r, _) = check(&format!(
        "  - name: web\n    http: {{url: 'http://{addr}/redirect'}}\n"
    ))
    .await;
    expect(&r, Status::Critical, "status 302");
    let (r, _) = check(&format!(
        "  - name: web\n    http: {{url: 'http://{addr}/redirect', follow_redirects: true}}\n"
    ))
    .await;
    expect(&r, Status::Ok, "HTTP 200");

    let closed = vedette_tests::free_port();
    let (r, _) = check(&format!(
        "  - name: web\n    http: {{url: 'http://127.0.0.1:{closed}/'}}\n"
    ))
    .await;
    expect(&r, Status::Critical, "connect refused");

    let (r, _) = check(&format!(
        "  - name: web\n    http: {{url: 'http://{addr}/hang'}}\n    timeout: 300ms\n"
    ))
    .await;
    expect(&r, Status::Critical, "timeout after 300ms");
}

#[tokio::test]
async fn https_reports_days_left_and_warns_or_fails_on_expiry() {
    let now = time::OffsetDateTime::now_utc();
    let web = |addr: SocketAddr, dir: &Path, extra: &str| {
        format!(
            "  - name: web\n    http: {{url: 'https://{addr}/ok', ca_file: '{}'{extra}}}\n",
            dir.join("ca.pem").display()
        )
    };

    // Valid for 60 days: ok, with the days left as a sample.
    let dir = tempfile::tempdir().unwrap();
    let addr = https_server(dir.path(), now + time::Duration::days(60)).await;
    let (r, samples) = check(&web(addr, dir.path(), "")).await;
    expect(&r, Status::Ok, "HTTP 200");
    let d = days_left(&samples);
    assert!(d > 59.9 && d <= 60.0, "{d}");

    let valid = addr;
    // An issuer we do not trust: the TLS error, named.
    let (r, samples) = check(&format!(
        "  - name: web\n    http: {{url: 'https://{valid}/ok'}}\n"
    ))
    .await;
    assert_eq!(r.status, Status::Critical);
    assert!(r.message.starts_with("TLS: "), "{}", r.message);
    assert!(r.message.contains("UnknownIssuer"), "{}", r.message);
    assert!(days_left(&samples) > 59.0);

    // Five days left, under the default 14: a warning that says when.
    let dir = tempfile::tempdir().unwrap();
    let addr = https_server(
        dir.path(),
        now + time::Duration::days(5) - time::Duration::hours(1),
    )
    .await;
    let (r, samples) = check(&web(addr, dir.path(), "")).await;
    expect(
        &r,
        Status::Warning,
        "HTTP 200, certificate expires in 4 days",
    );
    assert!((4.9..5.0).contains(&days_left(&samples)));
    // … unless the threshold is lower.
    let (r, _) = check(&web(addr, dir.path(), ", tls_warn_days: 3")).await;
    expect(&r, Status::Ok, "HTTP 200");

    // Expired three days ago: the handshake fails, and we still say how
    // long ago, with a negative days-left sample.
    let dir = tempfile::tempdir().unwrap();
    let addr = https_server(
        dir.path(),
        now - time::Duration::days(3) - time::Duration::hours(1),
    )
    .await;
    let (r, samples) = check(&web(addr, dir.path(), "")).await;
    expect(&r, Status::Critical, "certificate expired 3 days ago");
    let d = days_left(&samples);
    assert!((-3.1..-3.0).contains(&d), "{d}");
    // Without verification it is still critical: expired is expired.
    let (r, _) = check(&web(addr, dir.path(), ", tls_verify: false")).await;
    expect(&r, Status::Critical, "certificate expired 3 days ago");
}

// ---------------------------------------------------------------- TCP

#[tokio::test]
async fn tcp_banner_send_expect_and_refusal() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(b"SSH-2.0-vedette-test\r\n").await;
                // Echo one line back, for send/expect.
                let mut buf = [0u8; 64];
                if let Ok(n) = s.read(&mut buf).await {
                    let _ = s.write_all(&buf[..n]).await;
                }
            });
        }
    });
    let (r, _) = check(&format!(
        "  - name: ssh\n    tcp: {{address: '{addr}', expect: 'SSH-'}}\n"
    ))
    .await;
    expect(&r, Status::Ok, "connected, answer has \"SSH-\"");
    let (r, _) = check(&format!("  - name: ssh\n    tcp: {{address: '{addr}'}}\n")).await;
    expect(&r, Status::Ok, "connected");
    let (r, _) = check(&format!(
        "  - name: ssh\n    tcp: {{address: '{addr}', send: \"PING\\n\", expect: PING}}\n"
    ))
    .await;
    expect(&r, Status::Ok, "connected, answer has \"PING\"");
    let (r, _) = check(&format!(
        "  - name: ssh\n    tcp: {{address: '{addr}', send: \"x\\n\", expect: 'SMTP'}}\n"
    ))
    .await;
    expect(
        &r,
        Status::Critical,
        "answer lacks \"SMTP\" (got \"SSH-2.0-vedette-test\\r\\nx\")",
    );
    let closed = vedette_tests::free_port();
    let (r, _) = check(&format!(
        "  - name: ssh\n    tcp: {{address: '127.0.0.1:{closed}'}}\n"
    ))
    .await;
    expect(&r, Status::Critical, "connect refused");
}

// ---------------------------------------------------------------- DNS

struct Dnsmasq(std::process::Child);
impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dnsmasq(port: u16) -> Dnsmasq {
    need("/usr/sbin/dnsmasq", "dnsmasq-base");
    let child = std::process::Command::new("/usr/sbin/dnsmasq")
        .args([
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--user=root",
            "--pid-file=",
            &format!("--port={port}"),
            "--local=/internal/",
            "--address=/example.internal/10.0.0.5",
            "--log-facility=-",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting dnsmasq");
    Dnsmasq(child)
}

#[tokio::test]
async fn dns_against_a_real_dnsmasq() {
    let port = vedette_tests::free_port();
    let _server = dnsmasq(port);
    let q = |name: &str, expect: &str, timeout: &str| {
        format!(
            "  - name: resolver\n    dns: {{name: {name}, server: '127.0.0.1:{port}'{expect}}}\n    timeout: {timeout}\n"
        )
    };
    // dnsmasq needs a moment to bind: retry the first query until it answers.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (r, _) = check(&q("example.internal", ", expect: ['10.0.0.5']", "500ms")).await;
        if r.status == Status::Ok || std::time::Instant::now() > deadline {
            expect(&r, Status::Ok, "resolved 10.0.0.5");
            break;
        }
    }
    let (r, _) = check(&q("example.internal", ", expect: ['10.0.0.9']", "2s")).await;
    expect(&r, Status::Critical, "resolved 10.0.0.5");
    let (r, _) = check(&q("missing.internal", "", "2s")).await;
    expect(
        &r,
        Status::Critical,
        "missing.internal does not exist (NXDOMAIN)",
    );

    // A server that never answers.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (r, _) = check(&format!(
        "  - name: resolver\n    dns: {{name: example.internal, server: '{}'}}\n    timeout: 300ms\n",
        silent.local_addr().unwrap()
    ))
    .await;
    expect(&r, Status::Critical, "timeout after 300ms");
}

// ---------------------------------------------------------------- process

/// Child processes, killed when dropped (also when an assertion fails).
struct Kids(Vec<std::process::Child>);
impl Kids {
    fn kill(&mut self) {
        for k in &mut self.0 {
            let _ = k.kill();
            let _ = k.wait();
        }
    }
}
impl Drop for Kids {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn process_counts_by_name_and_command_line() {
    let token = format!(
        "{}.{}",
        1000 + std::process::id() % 1000,
        std::process::id()
    );
    let mut kids = Kids(
        (0..2)
            .map(|_| {
                std::process::Command::new("sleep")
                    .arg(&token)
                    .spawn()
                    .unwrap()
            })
            .collect(),
    );
    let re = format!("^sleep {}$", token.replace('.', "\\."));
    let (r, _) = check(&format!(
        "  - name: sleepers\n    process: {{cmdline: '{re}', min: 2}}\n"
    ))
    .await;
    expect(&r, Status::Ok, &format!("2 processes matching /{re}/"));
    let (r, _) = check(&format!(
        "  - name: sleepers\n    process: {{name: sleep, cmdline: '{re}', max: 1}}\n"
    ))
    .await;
    assert_eq!(r.status, Status::Critical);
    assert!(r.message.ends_with("(want at most 1)"), "{}", r.message);
    kids.kill();
    let (r, _) = check(&format!(
        "  - name: sleepers\n    process: {{cmdline: '{re}'}}\n"
    ))
    .await;
    assert_eq!(r.status, Status::Critical);
    assert!(
        r.message.starts_with("0 processes matching"),
        "{}",
        r.message
    );
    assert!(r.message.ends_with("(want at least 1)"), "{}", r.message);
    // By name: this test binary's own process is never counted (the agent
    // skips itself), but its parent cargo/test harness is not named so.
    let (r, _) = check("  - name: none\n    process: {name: no-such-daemon-xyz}\n").await;
    expect(
        &r,
        Status::Critical,
        "0 processes matching no-such-daemon-xyz (want at least 1)",
    );
}

// ---------------------------------------------------------------- systemd

#[tokio::test]
async fn systemd_without_systemd_is_unknown_with_the_reason() {
    // No systemd runs here (as in most containers): systemctl's own words.
    let (r, _) = check("  - name: docker\n    systemd: {unit: docker.service}\n").await;
    assert_eq!(r.status, Status::Unknown, "{}", r.message);
    assert!(
        r.message.starts_with("systemctl failed") || r.message.starts_with("cannot run systemctl"),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn systemd_states_through_a_systemctl_that_answers() {
    // systemd cannot run here, so a stand-in prints what `systemctl show`
    // prints (same properties, same format) for each unit.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("systemctl");
    std::fs::write(
        &fake,
        "#!/bin/sh\n[ \"$1\" = show ] && [ \"$2\" = --property=LoadState,ActiveState,SubState ] && [ \"$3\" = -- ] || exit 9\ncase \"$4\" in\n  up.service) printf 'LoadState=loaded\\nActiveState=active\\nSubState=running\\n';;\n  down.service) printf 'LoadState=loaded\\nActiveState=failed\\nSubState=failed\\n';;\n  *) printf 'LoadState=not-found\\nActiveState=inactive\\nSubState=dead\\n';;\nesac\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&fake)
        .status()
        .unwrap();
    let fake = fake.to_str().unwrap().to_string();
    let run = |unit: &str| {
        let spec = vedette_agent::checks::systemd::SystemdSpec { unit: unit.into() };
        let fake = fake.clone();
        async move { vedette_agent::checks::systemd::run(&spec, &fake).await }
    };
    let o = run("up.service").await;
    assert_eq!(
        (o.status, o.message.as_str()),
        (Status::Ok, "up.service active (running)")
    );
    let o = run("down.service").await;
    assert_eq!(
        (o.status, o.message.as_str()),
        (Status::Critical, "down.service failed (failed)")
    );
    let o = run("nope.service").await;
    assert_eq!(
        (o.status, o.message.as_str()),
        (Status::Critical, "nope.service not found")
    );
}

// ---------------------------------------------------------------- command

const PLUGINS: &str = "/usr/lib/nagios/plugins";

#[tokio::test]
async fn real_plugins_exit_codes_messages_and_perfdata() {
    need(
        &format!("{PLUGINS}/check_dummy"),
        "monitoring-plugins-basic",
    );
    for (code, status, msg) in [
        ("0", Status::Ok, "OK: fine"),
        ("1", Status::Warning, "WARNING: fine"),
        ("2", Status::Critical, "CRITICAL: fine"),
        ("3", Status::Unknown, "UNKNOWN: fine"),
    ] {
        let (r, _) = check(&format!(
            "  - name: dummy\n    command: {{path: {PLUGINS}/check_dummy, args: ['{code}', fine]}}\n"
        ))
        .await;
        expect(&r, status, msg);
    }

    // check_load with thresholds no machine reaches: ok, and its perfdata
    // become check_perfdata samples.
    let (r, samples) = check(&format!(
        "  - name: load\n    command: {{path: {PLUGINS}/check_load, args: ['-w', '900,900,900', '-c', '999,999,999']}}\n"
    ))
    .await;
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    assert!(r.message.starts_with("LOAD OK"), "{}", r.message);
    let labels: Vec<&str> = samples.iter().map(|s| s.labels["label"].as_str()).collect();
    assert!(
        labels.contains(&"load1") && labels.contains(&"load15"),
        "{labels:?}"
    );
    for s in &samples {
        assert_eq!(s.name, "check_perfdata");
        assert_eq!(s.labels["check"], "load");
        assert!(s.value >= 0.0);
    }

    // check_disk's perfdata is in MB (MiB): converted to bytes.
    let (r, samples) = check(&format!(
        "  - name: disk\n    command: {{path: {PLUGINS}/check_disk, args: ['-w', '1%', '-c', '0%', '-p', '/']}}\n"
    ))
    .await;
    assert_ne!(r.status, Status::Unknown, "{}", r.message);
    let root = samples
        .iter()
        .find(|s| s.labels["label"] == "/")
        .expect("perfdata for /");
    assert!(root.value > 1024.0 * 1024.0, "{} bytes", root.value);

    // A plugin that does not exist is unknown, with the reason.
    let (r, _) =
        check("  - name: gone\n    command: {path: /bin/sh, args: ['-c', 'exit 127']}\n").await;
    expect(
        &r,
        Status::Unknown,
        "plugin exited with code 127: (no output)",
    );
}

#[tokio::test]
async fn a_plugin_past_its_timeout_dies_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    let script = format!("sleep 1000 & echo $! > {}; wait", pidfile.display());
    let (r, _) = check(&format!(
        "  - name: slow\n    command: {{path: /bin/sh, args: ['-c', '{script}']}}\n    timeout: 500ms\n"
    ))
    .await;
    expect(&r, Status::Critical, "timeout after 500ms");
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    // The grandchild was in the plugin's process group: killed too.
    vedette_tests::wait_for(
        "the plugin's child to die",
        Duration::from_secs(10),
        &pidfile,
        || {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Gone, or a zombie waiting for its (dead) parent's reaper.
            (stat.is_empty() || stat.split_whitespace().nth(2) == Some("Z")).then_some(())
        },
    );
}

#[tokio::test]
async fn plugin_output_is_capped() {
    let (r, _) = check(
        "  - name: chatty\n    command: {path: /bin/sh, args: ['-c', 'echo \"OK - first | a=1\"; head -c 5000000 /dev/zero | tr \"\\\\0\" x; echo; echo \"| b=2\"']}\n",
    )
    .await;
    expect(&r, Status::Ok, "OK - first");
}
