use super::*;
use crate::incidents::Labels;
use crate::state::HostRecord;
use crate::state::{HostState, Point};

fn state() -> Arc<RwLock<State>> {
    let mut h = HostState::from_record(HostRecord {
        host: "web-01".into(),
        labels: Labels::new(),
        boot_id: "b".into(),
        last_seq: 1,
        last_seen_ms: 100_000,
        interval_ms: 10_000,
        retired_boots: Vec::new(),
    });
    h.set_point(
        "memory_used_ratio",
        &Labels::new(),
        Point {
            ts_ms: 1,
            value: 0.5,
        },
    );
    h.set_point(
        "network_receive_bytes_total",
        &Labels::from([("interface".into(), "eth0".into())]),
        Point {
            ts_ms: 1,
            value: 1234.0,
        },
    );
    // Would shadow the collector's own family: skipped.
    h.set_point(
        "incidents_open",
        &Labels::new(),
        Point {
            ts_ms: 1,
            value: 99.0,
        },
    );
    let mut s = State::default();
    s.hosts.insert("web-01".into(), Arc::new(h));
    Arc::new(RwLock::new(s))
}

const H: i64 = 3_600_000;

/// web-01 up for the last hour; its `api` check went critical at 45 min.
fn avail_state() -> Arc<RwLock<State>> {
    let st = state();
    {
        let mut s = st.write().unwrap();
        let h = Arc::make_mut(s.hosts.get_mut("web-01").unwrap());
        h.last_seen_ms = H;
        h.up.set(Avail::Up, 0);
        let api = h.check_up.entry("api".into()).or_default();
        api.set(Avail::Up, 0);
        api.set(Avail::Down, H * 3 / 4);
        h.check_up
            .entry("tls".into())
            .or_default()
            .set(Avail::Unknown, 0);
        s.runs.set(Avail::Up, 0);
    }
    st
}

fn reporting(yaml: &str) -> Arc<Reporting> {
    Arc::clone(
        &crate::config::Config::from_yaml("t.yaml", yaml)
            .unwrap()
            .reporting,
    )
}

/// The value of the series written exactly as `series`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[test]
fn renders_hosts_samples_and_own_families() {
    let m = Metrics::new(avail_state(), reporting("rules: []"));
    m.ingest(IngestOutcome::Accepted);
    m.incidents_open
        .with_label_values(&["P3", "cpu_high"])
        .set(1);
    let text = m.render(H);
    for line in [
        "vedette_host_up{host=\"web-01\"} 1",
        "vedette_check_up{host=\"web-01\",check=\"api\"} 0",
        "vedette_memory_used_ratio{host=\"web-01\"} 0.5",
        "# TYPE vedette_network_receive_bytes_total counter",
        "vedette_network_receive_bytes_total{host=\"web-01\",interface=\"eth0\"} 1234",
        "vedette_ingest_batches_total{outcome=\"accepted\"} 1",
        "vedette_incidents_open{priority=\"P3\",rule=\"cpu_high\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
    }
    assert!(
        !text.contains(" 99"),
        "agent sample shadowed an own family\n{text}"
    );
    assert_eq!(text.matches("# TYPE vedette_incidents_open ").count(), 1);
    // An unknown check has no _up series (neither 1 nor 0 would be true).
    assert!(
        !text.contains("vedette_check_up{host=\"web-01\",check=\"tls\""),
        "{text}"
    );
}

#[test]
fn availability_windows_are_exported_with_unknown_time_beside_them() {
    let m = Metrics::new(avail_state(), reporting("rules: []"));
    let text = m.render(H);
    let host = |w: &str| {
        value(
            &text,
            &format!("vedette_host_availability_ratio{{host=\"web-01\",window=\"{w}\"}}"),
        )
    };
    assert_eq!(host("1h"), Some(1.0));
    assert_eq!(host("1d"), Some(1.0));
    // The day before the first change is unknown, never hidden.
    assert_eq!(
        value(
            &text,
            "vedette_host_unknown_seconds{host=\"web-01\",window=\"1d\"}"
        ),
        Some(23.0 * 3600.0)
    );
    assert_eq!(
        value(
            &text,
            "vedette_check_availability_ratio{host=\"web-01\",check=\"api\",window=\"1h\"}"
        ),
        Some(0.75)
    );
    // Nothing observed in agreed time: no ratio at all, only unknown time.
    assert!(!text.contains("vedette_check_availability_ratio{host=\"web-01\",check=\"tls\""));
    assert_eq!(
        value(
            &text,
            "vedette_check_unknown_seconds{host=\"web-01\",check=\"tls\",window=\"1h\"}"
        ),
        Some(3600.0)
    );
    assert_eq!(
        value(&text, "vedette_collector_downtime_seconds{window=\"1h\"}"),
        Some(0.0)
    );
}

#[test]
fn services_report_target_budget_and_burn() {
    let yaml = "
rules: []
services:
  - name: checkout
    target: 0.99
    hosts: ['web-*']
    checks: ['api', 'tl?']
    mode: any
  - name: api-only
    target: 0.9
    hosts: ['web-*']
    checks: [api]
";
    let m = Metrics::new(avail_state(), reporting(yaml));
    let text = m.render(H);
    let v = |s: &str| value(&text, s).unwrap_or_else(|| panic!("no {s}\n{text}"));
    assert_eq!(
        v("vedette_service_sla_target_ratio{service=\"checkout\"}"),
        0.99
    );
    // any: api down from 45 min, tls unknown all along: down 15 min.
    assert_eq!(
        v("vedette_service_availability_ratio{service=\"checkout\",window=\"1h\"}"),
        0.75
    );
    // 1 − 0.25 / 0.1 = −1.5: overspent by one and a half budgets.
    let budget =
        v("vedette_service_error_budget_remaining_ratio{service=\"api-only\",window=\"1h\"}");
    assert!((budget + 1.5).abs() < 1e-9, "{budget}");
    // The last 5 minutes were all down: (1 − 0) / (1 − 0.9) = 10.
    let burn = v("vedette_service_error_budget_burn_rate{service=\"api-only\",window=\"5m\"}");
    assert!((burn - 10.0).abs() < 1e-9, "{burn}");
    let api = m.services(H);
    assert_eq!(api.len(), 2);
    assert_eq!(api[1].members, 1);
    assert_eq!(api[1].windows[0].availability, Some(0.75));
    assert_eq!(api[1].windows[0].down_seconds, 900.0);
}

#[test]
fn a_maintenance_window_is_planned_time_not_downtime() {
    // Daily 00:45–01:00 UTC covers exactly the api check's outage in the
    // first hour of 1970-01-01 (the test clock starts at 0).
    let yaml = "
rules: []
maintenance:
  - name: nightly
    scope: {hosts: ['web-*']}
    schedule: {timezone: UTC, weekly: [{day: thu, start: '00:45', duration: 15m}]}
services:
  - {name: api, target: 0.99, hosts: ['web-*'], checks: [api]}
";
    let m = Metrics::new(avail_state(), reporting(yaml));
    let w = &m.services(H)[0].windows[0];
    assert_eq!(
        (w.up_seconds, w.down_seconds, w.planned_seconds),
        (2700.0, 0.0, 900.0)
    );
    assert_eq!(w.availability, Some(1.0));
    let text = m.render(H);
    assert_eq!(
        value(
            &text,
            "vedette_check_availability_ratio{host=\"web-01\",check=\"api\",window=\"1h\"}"
        ),
        Some(1.0)
    );
}

#[test]
fn hosts_silent_past_forget_hosts_after_disappear() {
    let m = Metrics::new(
        avail_state(),
        reporting("rules: []\nforget_hosts_after: 2h"),
    );
    assert!(m
        .render(H + 2 * H - 1)
        .contains("vedette_host_up{host=\"web-01\"}"));
    let text = m.render(H + 2 * H);
    assert!(!text.contains("web-01"), "{text}");
}

#[test]
fn kpi_histograms_by_priority() {
    let m = Metrics::new(state(), reporting("rules: []"));
    for seconds in [20.0, 200.0] {
        m.observe(&Observation {
            kpi: Kpi::Restore,
            priority: 1,
            seconds,
        });
    }
    let text = m.render(0);
    assert_eq!(
        value(
            &text,
            "vedette_incident_restore_seconds_count{priority=\"P1\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &text,
            "vedette_incident_restore_seconds_sum{priority=\"P1\"}"
        ),
        Some(220.0)
    );
    assert_eq!(
        value(
            &text,
            "vedette_incident_restore_seconds_bucket{priority=\"P1\",le=\"30\"}"
        ),
        Some(1.0)
    );
}

#[test]
fn label_values_and_odd_floats_are_escaped_as_the_text_format_wants() {
    let mut f = Family::gauge("vedette_x", "Help with a \\ and\na newline.");
    f.add(&[("host", "a\"b\\c\nd")], [], f64::NAN);
    f.add(&[], [("k", "v")], f64::NEG_INFINITY);
    f.add(&[], [], 0.25);
    let mut out = String::new();
    f.write_to(&mut out);
    assert_eq!(
        out,
        "# HELP vedette_x Help with a \\\\ and\\na newline.\n# TYPE vedette_x gauge\n\
             vedette_x{host=\"a\\\"b\\\\c\\nd\"} NaN\nvedette_x{k=\"v\"} -Inf\nvedette_x 0.25\n"
    );
    let mut empty = String::new();
    Family::gauge("vedette_y", "h").write_to(&mut empty);
    assert!(empty.is_empty(), "a family without samples is left out");
}

mod export_tests {
    use super::*;
    use crate::incidents::Labels;
    use crate::state::HostRecord;
    use crate::state::{HostState, Point};

    #[test]
    fn agent_series_never_shadow_own_families_or_fail_the_linter() {
        let mut h = HostState::from_record(HostRecord {
            host: "web-01".into(),
            labels: Labels::new(),
            boot_id: "b".into(),
            last_seq: 1,
            last_seen_ms: 1_000,
            interval_ms: 10_000,
            retired_boots: Vec::new(),
        });
        let p = Point {
            ts_ms: 1,
            value: 7.0,
        };
        let shadows = [
            "incident_detection_seconds_bucket",
            "incident_detection_seconds_count",
            "incident_detection_seconds_sum",
            "incidents_opened_total",
            "incidents_opened",
            "incidents_opened_created",
            "ingest_batches_total",
            "host_up",
            "host_up_count",
            "metrics_withheld_series",
        ];
        let dirty = [
            "tls_certificate_days_left",
            "latency_ms",
            "fooBar",
            "queue_count",
            "disk_kilobytes",
            "temp_gauge",
            "wait_seconds_bucket",
        ];
        for name in shadows.iter().chain(&dirty) {
            h.set_point(name, &Labels::new(), p);
        }
        h.set_point(
            "good_bytes",
            &Labels::from([("deviceName".into(), "sda".into())]),
            p,
        );
        h.set_point(
            "good_bytes",
            &Labels::from([("device".into(), "sda".into())]),
            p,
        );
        h.set_point("tls_certificate_expiry_seconds", &Labels::new(), p);
        let mut s = State::default();
        s.hosts.insert("web-01".into(), Arc::new(h));
        let m = Metrics::new(Arc::new(RwLock::new(s)), Arc::new(Reporting::default()));
        let text = m.render(1_000);
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(
                !l.contains("host=\"web-01\"")
                    || l.starts_with("vedette_host_")
                    || l.starts_with("vedette_good_bytes{host=\"web-01\",device=")
                    || l.starts_with("vedette_tls_certificate_expiry_seconds{"),
                "an agent series got through: {l}"
            );
        }
        assert_eq!(
            text.matches("# TYPE vedette_incident_detection_seconds ")
                .count(),
            1
        );
        for (reason, n) in [
            ("shadows_own", shadows.len()),
            ("name_lint", dirty.len()),
            ("label_lint", 1),
        ] {
            let line = format!("vedette_metrics_withheld_series{{reason=\"{reason}\"}} {n}");
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }

    #[test]
    fn the_lint_matches_promlint_on_names_agents_send() {
        for clean in [
            "vedette_cpu_usage_ratio",
            "vedette_cpu_seconds_total",
            "vedette_network_receive_bytes_total",
            "vedette_load_average",
            "vedette_uptime_seconds",
            "vedette_pressure_some_seconds_total",
            "vedette_file_descriptors_used_ratio",
            "vedette_cgroup_cpu_limit_cores",
            "vedette_check_perfdata",
            "vedette_tls_certificate_expiry_seconds",
            "vedette_processes_total",
        ] {
            assert!(lint::name_is_clean(clean), "{clean}");
        }
        for dirty in [
            "vedette_tls_certificate_days_left",
            "vedette_x_milliseconds",
            "vedette_x_ms",
            "vedette_x_s_total",
            "vedette_xY",
            "vedette_x_count",
            "vedette_x_sum",
            "vedette_x_bucket",
            "vedette_x_counter",
            "vedette_x_gauge_value",
            "vedette_disk_kilobytes",
            "vedette_speed_bits",
        ] {
            assert!(!lint::name_is_clean(dirty), "{dirty}");
        }
        assert!(lint::label_is_clean("mountpoint"));
        assert!(!lint::label_is_clean("le"));
        assert!(!lint::label_is_clean("mountPoint"));
    }
}

#[test]
fn the_console_summary_is_refreshed_only_while_someone_reads_it() {
    let m = Metrics::new(avail_state(), reporting("rules: []"));
    let at = |m: &Metrics| m.summary.read().unwrap().map(|(t, _)| t);
    m.refresh_summary_if_watched(1_000_000);
    assert_eq!(at(&m), None, "nobody has looked: nothing computed");
    m.summary(1_000_000);
    assert_eq!(at(&m), Some(1_000_000), "the first read computes it");
    m.refresh_summary_if_watched(1_005_000);
    assert_eq!(at(&m), Some(1_005_000), "refreshed while watched");
    m.refresh_summary_if_watched(1_000_000 + SUMMARY_WATCHED_MS + 1);
    assert_eq!(
        at(&m),
        Some(1_005_000),
        "no one read it for a minute: left alone"
    );
    m.summary(1_010_000 + SUMMARY_MAX_AGE_MS);
    assert_eq!(
        at(&m),
        Some(1_010_000 + SUMMARY_MAX_AGE_MS),
        "a stale summary is recomputed on read"
    );
}
