use super::*;

#[test]
fn embedded_default_is_valid_and_has_the_design_rules() {
    let c = Config::embedded().unwrap();
    assert_eq!(c.listen, default_listen());
    let names: Vec<_> = c.rules.iter().map(|r| r.name.to_string()).collect();
    assert_eq!(
        names,
        [
            "host_down",
            "cpu_high",
            "memory_high",
            "disk_full",
            "inodes_full",
            "filesystem_readonly",
            "oom_kill",
            "clock_skew",
            "check_critical"
        ]
    );
    let host_down = &c.rules[0];
    assert!(
        matches!(host_down.kind, RuleKind::Absent { after } if after == Duration::from_secs(60))
    );
    assert_eq!((host_down.impact, host_down.urgency), (1, 1));
    let RuleKind::Threshold(cpu) = &c.rules[1].kind else {
        panic!("cpu_high is a threshold")
    };
    assert_eq!(
        (cpu.threshold, cpu.clear, cpu.for_),
        (0.9, 0.8, Duration::from_secs(300))
    );
    let RuleKind::Threshold(disk) = &c.rules[3].kind else {
        panic!("disk_full is a threshold")
    };
    assert_eq!(
        (disk.metric.as_str(), disk.clear, disk.for_),
        ("filesystem_used_ratio", 0.85, Duration::from_secs(600))
    );
    let oom = c
        .rules
        .iter()
        .find(|r| r.name.as_ref() == "oom_kill")
        .unwrap();
    let RuleKind::Threshold(t) = &oom.kind else {
        panic!("oom_kill is a threshold")
    };
    assert_eq!(
        (t.compare, t.threshold),
        (crate::rules::Compare::Increase, 0.0)
    );
    assert_eq!(default_rules(&mut Texts::default()).len(), 9);
}

#[test]
fn issue_example_parses() {
    let text = r#"
listen: 127.0.0.1:9850
data_dir: ./vedette-data
agents:
  - token: "s3cret"
    hosts: ["web-*"]
rules:
  - name: memory_in_use
    metric: memory_used_ratio
    above: 0.9
    clear_below: 0.8
    for: 5m
    impact: 2
    urgency: 2
  - name: host_down
    absent_for: 60s
    impact: 1
    urgency: 1
"#;
    let c = Config::from_yaml("c.yaml", text).unwrap();
    assert_eq!(c.rules.len(), 2);
    let a = &c.agents[0];
    assert!(a.matches(&token_digest("s3cret")));
    assert!(!a.matches(&token_digest("s3cret2")));
    assert!(a.allows("web-01") && !a.allows("db-01"));
}

#[test]
fn missing_rules_means_defaults_and_empty_means_none() {
    assert_eq!(Config::from_yaml("c", "").unwrap().rules.len(), 9);
    assert!(Config::from_yaml("c", "rules: []")
        .unwrap()
        .rules
        .is_empty());
}

#[test]
fn every_problem_is_reported_with_its_position() {
    let text = "\
listen: 0.0.0.0:9850
rules:
  - name: a
    metric: cpu
    above: .nan
  - name: a
    metric: cpu
    above: 0.9
    clear_below: 0.95
  - name: b
    absent_for: 0s
    impact: 4
  - name: c
    metric: m
  - name: d
";
    let e = Config::from_yaml("c.yaml", text).unwrap_err();
    let lines: Vec<String> = e.to_string().lines().map(String::from).collect();
    assert_eq!(
            lines,
            [
                "c.yaml:1:1: listen: 0.0.0.0:9850 is not a loopback address and `tls` is not set: agent and API tokens would cross the network in clear. Set `tls: {cert_file, key_file}` (`vedette-collector tls init` makes a private CA and certificates), or `tls: off` when a TLS-terminating proxy is in front",
                "c.yaml:1:1: listen: 0.0.0.0:9850 is not a loopback address and no agent tokens are configured; add `agents:` with tokens, or listen on 127.0.0.1",
                "c.yaml:5:5: rules[0].above: must be a finite number",
                "c.yaml:6:5: rules[1].name: rule 'a' is defined twice",
                "c.yaml:9:5: rules[1].clear_below: must be a finite number at or below `above` (0.9)",
                "c.yaml:11:5: rules[2].absent_for: must be more than 0",
                "c.yaml:12:5: rules[2].impact: must be 1 (high), 2 (medium) or 3 (low)",
                "c.yaml:13:5: rules[3]: a metric rule needs exactly one of `above` or `below`",
                "c.yaml:15:5: rules[4]: rule 'd' needs exactly one of `metric` (threshold), `absent_for` (heartbeat) or `check` (check status)",
            ]
        );
}

#[test]
fn unknown_keys_and_bad_types_name_their_line() {
    let e = Config::from_yaml(
        "c.yaml",
        "rules:\n  - name: a\n    metric: m\n    abov: 1\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("c.yaml:4:5: "), "{e}");
    assert!(e.contains("unknown field `abov`"), "{e}");
    let e = Config::from_yaml(
        "c.yaml",
        "rules:\n  - name: a\n    metric: m\n    above: 1\n    for: soon\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("c.yaml:5:"), "{e}");
    let e = Config::from_yaml("c.yaml", "listen: nowhere\n")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("c.yaml:1:"), "{e}");
}

#[test]
fn agent_token_forms() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("t");
    std::fs::write(&f, "from-file\n").unwrap();
    let sha = hex::encode(token_digest("hashed"));
    let text = format!(
        "agents:\n  - token_file: {}\n    hosts: [a]\n  - token_sha256: {sha}\n    hosts: [b]\n",
        f.display()
    );
    let c = Config::from_yaml("c", &text).unwrap();
    assert!(c.agents[0].matches(&token_digest("from-file")));
    assert!(c.agents[1].matches(&token_digest("hashed")));

    let bad = "agents:\n  - token: x\n    token_sha256: ab\n    hosts: [a]\n  - token_file: /nonexistent/t\n    hosts: [a]\n  - token: y\n  - token_sha256: zz\n    hosts: [a]\n";
    let e = Config::from_yaml("c", bad).unwrap_err().to_string();
    assert!(e.contains("agents[0]: give exactly one of"), "{e}");
    assert!(
        e.contains("agents[1].token_file: cannot read /nonexistent/t"),
        "{e}"
    );
    assert!(
        e.contains("agents[2].hosts: list the host-name globs"),
        "{e}"
    );
    assert!(
        e.contains("agents[3].token_sha256: must be 64 hex digits"),
        "{e}"
    );
}

#[test]
fn tokens_allow_a_public_listener() {
    let c = Config::from_yaml(
        "c",
        "listen: 0.0.0.0:9850\ntls: off\nagents:\n  - token: t\n    hosts: ['*']\n",
    )
    .unwrap();
    assert!(!c.listen.ip().is_loopback());
    assert!(matches!(c.tls, ListenerTls::Off));
}

#[test]
fn check_and_below_rules() {
    let c = Config::from_yaml(
            "c",
            "rules:\n  - {name: api_down, check: 'api*', status: warning, for: 1m}\n  - {name: low, metric: m, below: 10, clear_above: 20}\n",
        )
        .unwrap();
    let RuleKind::Check(ck) = &c.rules[0].kind else {
        panic!()
    };
    assert!(ck.matcher.is_match("api-eu") && ck.status == Status::Warning);
    let RuleKind::Threshold(t) = &c.rules[1].kind else {
        panic!()
    };
    assert_eq!((t.direction, t.clear), (Direction::Below, 20.0));
    let e = Config::from_yaml(
            "c",
            "rules:\n  - {name: x, metric: m, above: 1, clear_above: 2}\n  - {name: y, absent_for: 1m, above: 3}\n  - {name: z, check: a, status: ok}\n",
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("rules[0].clear_above: goes with `below`"), "{e}");
    assert!(
        e.contains("rules[1].above: applies only to metric rules"),
        "{e}"
    );
    assert!(e.contains("rules[2].status: must be warning"), "{e}");
}

#[test]
fn itil_keys_parse_with_their_defaults() {
    let text = r#"
incidents:
  reopen_within: 30m
  close_after: 2d
  problem_after: {count: 4, within: 12h}
  flapping: {on: 30, off: 10}
api_tokens:
  - {name: grafana, token: v, role: viewer}
  - {name: ops, token_sha256: "0000000000000000000000000000000000000000000000000000000000000000", role: operator}
maintenance:
  - name: sunday-patching
    scope: {host_labels: {role: db}}
    schedule: {timezone: Europe/Berlin, weekly: [{day: sun, start: "02:00", duration: 2h}], monthly: [{day: 1, start: "23:30", duration: 30m}]}
rules:
  - name: api_down
    check: api
    status: critical
    failures: {count: 3, of: 5}
    resolve_after: 2m
    hosts: ["web-*"]
    labels: {team: "~^(web|edge)$"}
    summary: "{{ check }} on {{ host }}: {{ message }}"
"#;
    let c = Config::from_yaml("c.yaml", text).unwrap();
    assert_eq!(c.incidents.reopen_within, Duration::from_secs(1800));
    assert_eq!(c.incidents.close_after, Duration::from_secs(2 * 86_400));
    assert_eq!(
        c.incidents.problem_after,
        Some((4, Duration::from_secs(12 * 3600)))
    );
    assert_eq!(
        c.incidents.flapping,
        FlapThresholds {
            on: 30.0,
            off: 10.0
        }
    );
    assert_eq!(
        c.api_tokens
            .iter()
            .map(|t| (t.name.as_str(), t.role))
            .collect::<Vec<_>>(),
        [("grafana", Role::Viewer), ("ops", Role::Operator)]
    );
    assert!(c.api_tokens[0].matches(&token_digest("v")));
    assert_eq!(c.maintenance[0].slots.len(), 2);
    let r = &c.rules[0];
    let RuleKind::Check(ck) = &r.kind else {
        panic!()
    };
    assert_eq!(ck.trigger, Trigger::Failures { count: 3, of: 5 });
    assert_eq!(ck.exact.as_deref(), Some("api"));
    assert_eq!(r.resolve_after, Duration::from_secs(120));
    assert!(r.selector.matches_host("web-1", &BTreeMap::new()));
    assert!(!r.selector.matches_host("db-1", &BTreeMap::new()));
    assert!(c.texts.has("api_down.summary"));
    // Defaults.
    let d = Config::from_yaml("c", "").unwrap();
    assert_eq!(d.incidents, IncidentPolicy::default());
    assert!(d.api_tokens.is_empty() && d.maintenance.is_empty());
    let off = Config::from_yaml("c", "incidents: {problem_after: {count: 0, within: 1h}}").unwrap();
    assert_eq!(off.incidents.problem_after, None);
}

#[test]
fn itil_key_mistakes_name_their_line() {
    let text = r#"incidents:
  problem_after: {count: 1, within: 1h}
  flapping: {on: 5, off: 10}
api_tokens:
  - {name: a, token: x, role: viewer}
  - {name: a, token: y, role: operator}
maintenance:
  - name: m
    scope: {}
    schedule: {timezone: Mars/Olympus, weekly: [{day: someday, start: "25:00", duration: 0s}], monthly: [{day: 31, start: "01:00", duration: 1h}]}
rules:
  - {name: a, metric: m, above: 1, failures: 3}
  - {name: b, check: c, for: 1m, failures: 3}
  - {name: c, check: c, failures: {count: 4, of: 2}}
  - {name: d, metric: m, above: 1, labels: {x: "~("}, hosts: ["["]}
  - {name: e, metric: m, above: 1, summary: "{{ hostname }}"}
  - {name: f, absent_for: 1m, labels: {a: b}}
"#;
    let e = Config::from_yaml("c.yaml", text).unwrap_err().to_string();
    for want in [
        "c.yaml:2:19: incidents.problem_after.count: must be at least 2",
        "c.yaml:3:3: incidents.flapping: need 0 < off < on <= 100",
        "c.yaml:6:6: api_tokens[1].name: token name 'a' is used twice",
        "maintenance[0].scope: give `hosts` (globs) and/or `host_labels`",
        "maintenance[0].schedule.timezone: 'Mars/Olympus' is not an IANA time zone",
        "maintenance[0].schedule.weekly[0].day: 'someday' is not a weekday",
        "maintenance[0].schedule.weekly[0].start: '25:00' is not a time like 02:00",
        "maintenance[0].schedule.weekly[0].duration: must be more than 0",
        "maintenance[0].schedule.monthly[0].day: must be 1–28",
        "rules[0].failures: applies only to check rules",
        "rules[1].failures: give `for` (a duration) or `failures`",
        "rules[2].failures: need 1 <= count <= of <= 64, got count 4 of 2",
        "rules[3].hosts[0]: bad glob",
        "rules[3].labels.x: bad regular expression",
        "rules[4].summary: unknown template variable hostname; available: rule, host",
        "rules[5].labels: a heartbeat rule has no series",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
}

#[test]
fn services_parse_and_their_mistakes_name_their_line() {
    let ok = Config::from_yaml(
            "c.yaml",
            "services:\n  - {name: checkout, target: 0.999, hosts: ['web-*'], checks: [api, 'tls*'], mode: any}\nforget_hosts_after: 2d\n",
        )
        .unwrap();
    let s = &ok.reporting.services[0];
    assert_eq!(
        (s.name.as_str(), s.target, s.mode),
        ("checkout", 0.999, Mode::Any)
    );
    assert!(s.check_set.is_match("tls-expiry") && !s.check_set.is_match("db"));
    assert_eq!(ok.reporting.forget_after, Duration::from_secs(2 * 86_400));
    assert_eq!(
        Config::embedded().unwrap().reporting.forget_after,
        FORGET_AFTER
    );
    let text = r#"services:
  - {name: a, target: 99.9, hosts: ["*"], checks: [x]}
  - {name: a, target: 0.5, checks: [x]}
  - {name: c, target: 0.5, hosts: ["*"], checks: []}
  - {name: d, target: 0.5, hosts: ["["], checks: [x], mode: some}
forget_hosts_after: 1s
"#;
    let e = Config::from_yaml("c.yaml", text).unwrap_err().to_string();
    let want = "c.yaml:5:61: services[3].mode: unknown variant `some`, expected `all` or `any`";
    assert!(e.contains(want), "missing {want:?} in:\n{e}");
    let text = text.replace(", mode: some", "");
    let e = Config::from_yaml("c.yaml", &text).unwrap_err().to_string();
    for want in [
            "c.yaml:2:15: services[0].target: 99.9 is not a ratio between 0 and 1 (exclusive); write 99.9 % as 0.999",
            "c.yaml:3:6: services[1].name: service 'a' is defined twice",
            "services[1]: give `hosts` (globs) and/or `host_labels`",
            "services[2].checks: give the check names",
            "services[3].hosts[0]: bad glob",
            "forget_hosts_after: must be at least 1m",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
}

#[test]
fn limits_default_parse_and_are_checked() {
    let c = Config::from_yaml("c", "rules: []").unwrap();
    assert_eq!(c.limits, StateLimits::default());
    assert_eq!(c.forget_series_after, FORGET_SERIES_AFTER);
    assert!(c.metrics_token.is_none());
    let c = Config::from_yaml(
            "c",
            "limits: {series_per_host: 50, hosts_per_token: 3}\nforget_series_after: 2h\nmetrics_token: {token: scrape}\n",
        )
        .unwrap();
    assert_eq!(
        (
            c.limits.series_per_host,
            c.limits.hosts_per_token,
            c.limits.series_total
        ),
        (50, 3, StateLimits::default().series_total)
    );
    assert_eq!(c.forget_series_after, Duration::from_secs(7200));
    assert!(c.metrics_token.unwrap().matches(&token_digest("scrape")));
    let e = Config::from_yaml(
        "c.yaml",
        "limits:\n  checks_per_host: 0\n  series_per_host: 9\n  series_total: 8\n  hosts: 1\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("hosts"), "unknown key named: {e}");
    let e = Config::from_yaml(
            "c.yaml",
            "limits:\n  checks_per_host: 0\n  series_per_host: 9\n  series_total: 8\nforget_series_after: 10s\nmetrics_token: {}\n",
        )
        .unwrap_err()
        .to_string();
    for want in [
        "c.yaml:2:3: limits.checks_per_host: must be at least 1",
        "c.yaml:3:3: limits.series_per_host: 9 is more than limits.series_total (8)",
        "c.yaml:5:1: forget_series_after: must be at least 1m",
        "c.yaml:6:1: metrics_token: give exactly one of",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
}

#[test]
fn http_timeouts_default_parse_and_are_bounded() {
    let c = Config::from_yaml("c", "rules: []").unwrap();
    assert_eq!(c.http, HttpLimits::default());
    let c = Config::from_yaml("c", "http: {header_timeout: 2s}").unwrap();
    assert_eq!(c.http.header_timeout, Duration::from_secs(2));
    assert_eq!(c.http.request_timeout, Duration::from_secs(30));
    let e = Config::from_yaml(
        "c.yaml",
        "http:\n  header_timeout: 0s\n  request_timeout: 1h\n",
    )
    .unwrap_err()
    .to_string();
    for want in [
        "c.yaml:2:3: http.header_timeout: must be between 1s and 10m",
        "c.yaml:3:3: http.request_timeout: must be between 1s and 10m",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
    let e = Config::from_yaml("c.yaml", "http: {read_timeout: 1s}")
        .unwrap_err()
        .to_string();
    assert!(e.contains("read_timeout"), "{e}");
}

#[test]
fn receivers_parse_with_secrets_from_files_and_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("pd.key");
    std::fs::write(&key, "0123456789abcdef0123456789abcdef\n").unwrap();
    let text = format!(
        r#"notify:
  - name: hook
    kind: webhook
    url: https://example.test/hook
    secret: s3cret
    max_backoff: 30s
    match: {{min_priority: 2, rules: ["disk_*"], host_labels: {{env: prod}}}}
  - {{name: am, kind: alertmanager, url: "http://127.0.0.1:9093"}}
  - {{name: pd, kind: pagerduty, routing_key_file: "{}"}}
  - {{name: snow, kind: servicenow, instance_url: "https://x.service-now.com", username: vedette, password: pw}}
"#,
        key.display()
    );
    let c = Config::from_yaml("c.yaml", &text).unwrap();
    let r = &c.notify.receivers;
    assert_eq!(r.len(), 4);
    assert_eq!(r[0].max_backoff, Duration::from_secs(30));
    assert!(r[0].route.matches(
        2,
        "disk_full",
        &crate::incidents::Labels::from([("env".into(), "prod".into())])
    ));
    assert!(!r[0].route.matches(
        3,
        "disk_full",
        &crate::incidents::Labels::from([("env".into(), "prod".into())])
    ));
    assert_eq!(r[1].give_up_after, crate::notify::DEFAULT_GIVE_UP_AFTER);
    match &r[2].kind {
        Kind::PagerDuty { url, routing_key } => {
            assert_eq!(url, crate::notify::PAGERDUTY_URL);
            assert_eq!(
                routing_key.0, "0123456789abcdef0123456789abcdef",
                "file trimmed"
            );
        }
        other => panic!("{other:?}"),
    }
    match &r[3].kind {
        Kind::ServiceNow { close_code, .. } => {
            assert_eq!(close_code, crate::notify::DEFAULT_CLOSE_CODE)
        }
        other => panic!("{other:?}"),
    }
    assert!(Config::embedded().unwrap().notify.receivers.is_empty());
}

#[test]
fn receiver_mistakes_name_their_line() {
    let text = r#"notify:
  - {name: a, kind: webhook, url: "ftp://x/"}
  - {name: a, kind: alertmanager}
  - {name: p, kind: pagerduty, routing_key: k, routing_key_file: /x}
  - {name: s, kind: servicenow, instance_url: "https://x", url: "https://y"}
  - {name: m, kind: webhook, url: "http://x", match: {min_priority: 9}, give_up_after: 10s}
  - {name: f, kind: pagerduty, routing_key_file: /nonexistent/pd.key}
"#;
    let e = Config::from_yaml("c.yaml", text).unwrap_err().to_string();
    for want in [
        "c.yaml:2:30: notify[0].url: 'ftp://x/' must be an http:// or https:// URL",
        "c.yaml:3:6: notify[1].name: receiver 'a' is defined twice",
        "notify[1].url: is required for this kind of receiver",
        "notify[2].routing_key: give `routing_key` or `routing_key_file`, not both",
        "notify[3].url: is not a setting of servicenow receivers",
        "notify[3].username: servicenow receivers need a `username`",
        "notify[3].password: servicenow receivers need `password` or `password_file`",
        "notify[4].match.min_priority: 9 is not a priority",
        "notify[4].give_up_after: must be at least 1m",
        "notify[5].routing_key_file: cannot read /nonexistent/pd.key",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
    let e = Config::from_yaml("c.yaml", "notify:\n  - {name: x, kind: email}\n")
        .unwrap_err()
        .to_string();
    assert!(
            e.contains("unknown variant `email`, expected one of `webhook`, `alertmanager`, `pagerduty`, `servicenow`"),
            "{e}"
        );
}

/// A CA, a server pair for `collector.example` and agent `web-01` in `dir`.
fn tls_files(dir: &Path) {
    crate::tls::init::run(&crate::tls::init::Request {
        dir: dir.to_path_buf(),
        hosts: vec!["collector.example".into()],
        agents: vec!["web-01".into()],
        days: 30,
    })
    .unwrap();
}

#[test]
fn tls_serves_a_public_listener_and_each_mistake_names_its_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    tls_files(d.path());
    let p = d.path().display();
    let good = format!(
        "listen: 0.0.0.0:9850\ntls:\n  cert_file: {p}/server.pem\n  key_file: {p}/server-key.pem\n\
         agents:\n  - token: t\n    hosts: ['*']\n"
    );
    let c = Config::from_yaml("c.yaml", &good).unwrap();
    assert_eq!(c.tls.scheme(), "https");
    assert_eq!(c.tls.server().unwrap().names, ["collector.example"]);
    assert!(!c.tls.requires_client_cert());

    let cases = [
        // The key of another pair (the agent's).
        (
            good.replace("server-key.pem", "agents/web-01-key.pem"),
            format!("c.yaml:4:3: tls.key_file: {p}/agents/web-01-key.pem is not the key of the certificate in {p}/server.pem"),
        ),
        (
            good.replace("server.pem", "nope.pem"),
            format!("c.yaml:3:3: tls.cert_file: cannot read {p}/nope.pem: No such file or directory (os error 2)"),
        ),
        (
            good.replace("  key_file", "  client_auth: require\n  key_file"),
            "c.yaml:2:1: tls.client_ca_file: client_auth: require needs the CA that signs the agents' certificates".into(),
        ),
        (
            good.replace("  key_file", &format!("  client_ca_file: {p}/server-key.pem\n  client_auth: require\n  key_file")),
            format!("c.yaml:4:3: tls.client_ca_file: {p}/server-key.pem holds no certificate (expected -----BEGIN CERTIFICATE-----)"),
        ),
        (
            good.replace("  key_file", &format!("  client_ca_file: {p}/ca.pem\n  key_file")),
            "c.yaml:4:3: tls.client_ca_file: is used only with `client_auth: require` (mutual TLS); set that, or remove this key".into(),
        ),
        (
            good.replace("    hosts: ['*']", "    hosts: ['*']\n    cert_names: ['web-*']\n  - token: u\n    hosts: ['*']"),
            "c.yaml:8:5: agents[0].cert_names: binds the token to client certificates, which needs mutual TLS: set `tls.client_auth: require` and `tls.client_ca_file`".into(),
        ),
        (
            good.replace("  cert_file", "  cert_fle"),
            "c.yaml:2:1: tls: unknown field `cert_fle`, expected one of `cert_file`, `key_file`, `client_ca_file`, `client_auth`".into(),
        ),
        (
            "listen: 0.0.0.0:9850\ntls: on\nagents: [{token: t, hosts: ['*']}]\n".into(),
            "c.yaml:2:1: tls: must be `off` or a map with cert_file and key_file (and client_ca_file with client_auth: require)".into(),
        ),
    ];
    for (text, want) in cases {
        let e = Config::from_yaml("c.yaml", &text).unwrap_err().to_string();
        assert_eq!(e.lines().collect::<Vec<_>>(), [want.as_str()], "{text}");
    }
}

#[test]
fn cert_names_bind_a_token_to_matching_client_certificates() {
    let d = tempfile::tempdir().unwrap();
    tls_files(d.path());
    let p = d.path().display();
    let c = Config::from_yaml(
        "c.yaml",
        &format!(
            "listen: 0.0.0.0:9850\ntls: {{cert_file: {p}/server.pem, key_file: {p}/server-key.pem, \
             client_ca_file: {p}/ca.pem, client_auth: require}}\n\
             agents:\n  - token: t\n    hosts: ['*']\n    cert_names: ['Web-*.example.com']\n  - token: u\n    hosts: ['*']\n"
        ),
    )
    .unwrap();
    assert!(c.tls.requires_client_cert());
    let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let bound = &c.agents[0];
    assert!(bound.allows_cert(&names(&["db-01.example.com", "WEB-01.example.com"])));
    assert!(!bound.allows_cert(&names(&["db-01.example.com"])));
    assert!(!bound.allows_cert(&[]));
    assert!(
        c.agents[1].allows_cert(&[]),
        "an unbound token needs no names"
    );
}

#[test]
fn receivers_take_a_private_ca_and_turning_verification_off_is_warned() {
    let d = tempfile::tempdir().unwrap();
    tls_files(d.path());
    let p = d.path().display();
    let text = format!(
        "notify:\n  - name: am\n    kind: alertmanager\n    url: https://am.example:9093\n    ca_file: {p}/ca.pem\n\
         \x20 - name: hook\n    kind: webhook\n    url: https://hook.example\n    tls_verify: false\n"
    );
    let c = Config::from_yaml("c.yaml", &text).unwrap();
    assert_eq!(c.notify.receivers[0].ca_certs.len(), 1);
    assert!(c.notify.receivers[0].tls_verify);
    let w = c.warnings(0);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("notify receiver 'hook': tls_verify is false"),
        "{w:?}"
    );
    let e = Config::from_yaml("c.yaml", &text.replace("ca.pem", "gone.pem")).unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "c.yaml:5:5: notify[0].ca_file: cannot read {p}/gone.pem"
        )),
        "{e}"
    );
}

#[test]
fn an_ending_server_certificate_is_warned_with_its_days() {
    let d = tempfile::tempdir().unwrap();
    tls_files(d.path());
    let p = d.path().display();
    let c = Config::from_yaml(
        "c.yaml",
        &format!("tls: {{cert_file: {p}/server.pem, key_file: {p}/server-key.pem}}\n"),
    )
    .unwrap();
    let now = vedette_protocol::clock::now_ms() / 1000;
    assert!(c.warnings(now).is_empty(), "30 days left is fine");
    let w = c.warnings(now + 20 * 86_400);
    assert!(
        w[0].contains("expires in 9 days") || w[0].contains("expires in 10 days"),
        "{w:?}"
    );
    let w = c.warnings(now + 40 * 86_400);
    assert!(
        w[0].contains("EXPIRED 9 days ago") || w[0].contains("EXPIRED 10 days ago"),
        "{w:?}"
    );
}

#[test]
fn a_refused_token_is_reported_once_not_also_as_missing() {
    let e = Config::from_yaml(
        "c.yaml",
        "listen: 0.0.0.0:9850\ntls: off\nagents:\n  - {token: t, hosts: ['*'], cert_names: ['web-*']}\n",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("agents[0].cert_names"), "{e}");
}
