use super::*;
use std::path::Path;

#[test]
fn embedded_default() {
    let c = Config::embedded().unwrap();
    assert_eq!(c.collectors[0].as_str(), "http://127.0.0.1:9850/");
    assert_eq!(
        c.push_urls()[0].as_str(),
        "http://127.0.0.1:9850/api/v1/push"
    );
    assert_eq!(c.collector_tls, CollectorTls::default());
    assert!(
        c.clear_text_collectors().is_empty(),
        "loopback is not the network"
    );
    assert_eq!(c.interval, Duration::from_secs(10));
    assert_eq!(c.listen, Some("127.0.0.1:9851".parse().unwrap()));
    assert_eq!(c.token, None);
    assert_eq!(c.host, local_host_name());
}

#[test]
fn issue_example() {
    let c = Config::from_yaml(
            "a.yaml",
            "host: web-01\nlabels: {env: prod}\ncollector:\n  url: http://127.0.0.1:9850\n  token: \"s3cret\"\ninterval: 10s\nlisten: off\n",
        )
        .unwrap();
    assert_eq!(c.host, "web-01");
    assert_eq!(c.labels["env"], "prod");
    assert_eq!(c.token.as_deref(), Some("s3cret"));
    assert_eq!(c.listen, None);
}

#[test]
fn collector_path_prefix_is_kept() {
    for url in [
        "https://mon.example/vedette/",
        "https://mon.example/vedette",
    ] {
        let c = Config::from_yaml("a", &format!("collector: {{url: '{url}'}}")).unwrap();
        assert_eq!(
            c.push_urls()[0].as_str(),
            "https://mon.example/vedette/api/v1/push"
        );
    }
}

#[test]
fn token_file_is_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("token");
    std::fs::write(&f, "abc\n").unwrap();
    let c = Config::from_yaml("a", &format!("collector: {{token_file: {}}}", f.display())).unwrap();
    assert_eq!(c.token.as_deref(), Some("abc"));
}

#[test]
fn check_labels_the_collector_reserves_are_refused_at_load() {
    for key in ["host", "check", "source", "alertname", "le", "quantile"] {
        let text = format!(
                "checks:\n  - name: api\n    labels: {{{key}: x}}\n    tcp: {{address: '127.0.0.1:1'}}\n"
            );
        let e = Config::from_yaml("a.yaml", &text).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "checks[0].labels.{key}: label '{key}' is reserved"
            )),
            "{key}: {e}"
        );
    }
}

#[test]
fn every_problem_is_located() {
    let text = "\
host: 'web 01'
labels: {'bad-name': x}
collector:
  url: ftp://x
  token: a
  token_file: /nonexistent
interval: 100ms
listen: everywhere
";
    let e = Config::from_yaml("a.yaml", text).unwrap_err().to_string();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 6, "{e}");
    assert!(
        lines[0].starts_with("a.yaml:1:1: host: host name 'web 01'"),
        "{e}"
    );
    assert!(lines[1].starts_with("a.yaml:2:10: labels.bad-name:"), "{e}");
    assert!(
        lines[2].starts_with("a.yaml:3:1: collector: give `token`"),
        "{e}"
    );
    assert!(
        lines[3].starts_with("a.yaml:4:3: collector.url: must be an http"),
        "{e}"
    );
    assert!(
        lines[4].starts_with("a.yaml:7:1: interval: must be between 1s and 1h"),
        "{e}"
    );
    assert!(
        lines[5].starts_with("a.yaml:8:1: listen: 'everywhere' is neither"),
        "{e}"
    );
}

#[test]
fn embedded_default_spells_out_the_code_defaults() {
    let embedded = Config::embedded().unwrap();
    let empty = Config::from_yaml("a", "{}").unwrap();
    assert_eq!(embedded, empty);
    assert_eq!(
        embedded.spool,
        Some(SpoolConfig {
            dir: vedette_daemon::state_dir("vedette-agent").join("spool"),
            max_bytes: 64 << 20
        })
    );
    assert_eq!(embedded.host_metrics.timeout, Duration::from_secs(2));
    let off = Config::from_yaml("a", "spool: {dir: off}").unwrap();
    assert_eq!(off.spool, None);
}

#[test]
fn spool_sizes_are_checked_in_words() {
    let e = Config::from_yaml("a.yaml", "spool: {max_bytes: lots}")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e.trim(),
        "a.yaml:1:9: spool.max_bytes: 'lots' is not a size like 64MiB, 500MB or 1GiB"
    );
    let c = Config::from_yaml("a.yaml", "spool: {max_bytes: 500 MB}").unwrap();
    assert_eq!(c.spool.unwrap().max_bytes, 500_000_000);
}

#[test]
fn check_problems_are_located() {
    let text = "\
interval: 10s
checks:
  - name: a
    tcp: {address: '127.0.0.1:22'}
    http: {url: 'http://x/'}
  - name: a
    tcp: {address: 'nohost'}
  - name: b-c
    command: {path: /nonexistent/check_x}
    timeout: 20s
  - name: d
    process: {cmdline: '(('}
  - name: e
    dns: {name: x.example, server: 'not an ip'}
host_metrics:
  interfaces: {exclude: ['[']}
";
    let e = Config::from_yaml("a.yaml", text).unwrap_err().to_string();
    for want in [
            "a.yaml:3:5: checks[0]: check 'a' needs exactly one of http, tcp, dns, process, systemd, command (found 2)",
            "a.yaml:6:5: checks[1].name: check 'a' is already defined at checks[0]",
            "a.yaml:7:11: checks[1].tcp.address: 'nohost' is not host:port",
            "a.yaml:8:5: checks[2].name: check name 'b-c' must match",
            "a.yaml:9:15: checks[2].command.path: cannot read /nonexistent/check_x",
            "a.yaml:10:5: checks[2].timeout: must be at least 10ms and at most the interval (10s)",
            "a.yaml:12:15: checks[3].process.cmdline: not a regular expression",
            "a.yaml:14:28: checks[4].dns.server: 'not an ip' is not an IP address",
            "a.yaml:16:26: host_metrics.interfaces.exclude[0]: not a regular expression",
        ] {
            assert!(e.lines().any(|l| l.starts_with(want)), "missing {want:?} in\n{e}");
        }
}

#[test]
fn unknown_key_names_its_line() {
    let e = Config::from_yaml("a.yaml", "collector:\n  uri: http://x\n")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("a.yaml:2:3: "), "{e}");
    assert!(e.contains("unknown field `uri`"), "{e}");
}

#[test]
fn several_collectors_are_tried_in_order_and_each_mistake_is_named() {
    let c = Config::from_yaml(
        "a.yaml",
        "collector:\n  urls: [https://c1.example:9850, 'http://10.0.0.2:9850/v/', 'http://[::1]:9850']\n",
    )
    .unwrap();
    let urls: Vec<String> = c.push_urls().iter().map(|u| u.to_string()).collect();
    assert_eq!(
        urls,
        [
            "https://c1.example:9850/api/v1/push",
            "http://10.0.0.2:9850/v/api/v1/push",
            "http://[::1]:9850/api/v1/push"
        ]
    );
    let clear: Vec<&str> = c
        .clear_text_collectors()
        .iter()
        .map(|u| u.as_str())
        .collect();
    assert_eq!(clear, ["http://10.0.0.2:9850/v/"]);

    for (text, want) in [
        (
            "collector:\n  url: https://a\n  urls: [https://b]\n",
            "a.yaml:3:3: collector.urls: give `url` (one collector) or `urls` (several, preferred first), not both",
        ),
        (
            "collector:\n  urls: [https://a, ftp://b, https://a]\n",
            "a.yaml:2:21: collector.urls[1]: must be an http:// or https:// URL with a host",
        ),
        (
            "collector:\n  cert_file: /x.pem\n",
            "a.yaml:2:3: collector.cert_file: needs `key_file` (its private key) beside it",
        ),
        (
            "collector:\n  server_name: 'not a name'\n",
            "a.yaml:2:3: collector.server_name: 'not a name' is not a DNS name or IP address",
        ),
        (
            "collector:\n  ca_file: /nonexistent/ca.pem\n",
            "a.yaml:2:3: collector.ca_file: cannot read /nonexistent/ca.pem: No such file or directory (os error 2)",
        ),
    ] {
        let e = Config::from_yaml("a.yaml", text).unwrap_err().to_string();
        assert_eq!(e.lines().next(), Some(want), "{text}\n{e}");
    }
    let e = Config::from_yaml("a.yaml", "collector:\n  urls: [https://a, https://a]\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("collector.urls[1]: https://a/ is listed twice"),
        "{e}"
    );
}

/// A CA, and a client pair it signed, in `dir`.
fn client_pair(dir: &Path) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    std::fs::write(dir.join("ca.pem"), ca.self_signed(&ca_key).unwrap().pem()).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["web-01".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    std::fs::write(dir.join("web-01.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("web-01-key.pem"), key.serialize_pem()).unwrap();
    let other = rcgen::KeyPair::generate().unwrap();
    std::fs::write(dir.join("other-key.pem"), other.serialize_pem()).unwrap();
}

#[test]
fn mutual_tls_files_are_read_at_load_and_a_wrong_key_is_named() {
    let d = tempfile::tempdir().unwrap();
    client_pair(d.path());
    let p = d.path().display();
    let good = format!(
        "collector:\n  url: https://c.example:9850\n  ca_file: {p}/ca.pem\n  cert_file: {p}/web-01.pem\n  key_file: {p}/web-01-key.pem\n  server_name: collector.example\n"
    );
    let c = Config::from_yaml("a.yaml", &good).unwrap();
    assert_eq!(c.collector_tls.ca_file, Some(d.path().join("ca.pem")));
    assert_eq!(
        c.collector_tls.server_name.as_deref(),
        Some("collector.example")
    );
    let e = Config::from_yaml("a.yaml", &good.replace("web-01-key", "other-key"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!("a.yaml:5:3: collector.key_file: {p}/other-key.pem is not the key of the certificate in {p}/web-01.pem")
    );
    let e = Config::from_yaml(
        "a.yaml",
        &good.replace("ca_file: {p}/ca.pem", "").replace(
            &format!("ca_file: {p}/ca.pem"),
            &format!("ca_file: {p}/web-01-key.pem"),
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("holds no certificate"), "{e}");
}
