use super::*;

#[test]
fn embedded_default() {
    let c = Config::embedded().unwrap();
    assert_eq!(c.collector_url.as_str(), "http://127.0.0.1:9850/");
    assert_eq!(c.push_url().as_str(), "http://127.0.0.1:9850/api/v1/push");
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
            c.push_url().as_str(),
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
