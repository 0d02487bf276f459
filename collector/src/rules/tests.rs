use super::*;

fn cpu(for_s: u64) -> Threshold {
    Threshold {
        metric: "cpu_usage_ratio".into(),
        direction: Direction::Above,
        threshold: 0.9,
        clear: 0.8,
        for_: Duration::from_secs(for_s),
        compare: Compare::Value,
    }
}

fn cond(t: &Threshold, v: f64) -> Condition {
    Condition {
        breaching: t.breaches(v),
        cleared: t.clears(v),
    }
}

fn timing(for_s: u64, resolve_after_s: u64) -> Timing {
    Timing {
        trigger: Trigger::For(Duration::from_secs(for_s)),
        resolve_after: Duration::from_secs(resolve_after_s),
    }
}

/// Observes `v` from `t` at collector time `s` seconds (stamped 1 s earlier).
fn obs(t: &Threshold, tm: Timing, a: &mut Alert, s: i64, v: f64) -> Verdict {
    observe(
        cond(t, v),
        tm,
        FlapThresholds::default(),
        a,
        v,
        s * 1000 - 1000,
        s * 1000,
    )
    .verdict
}

/// (collector time s, value) steps and the verdict each must produce.
#[test]
fn threshold_with_for_and_hysteresis() {
    let t = cpu(300);
    let tm = timing(300, 0);
    let mut a = Alert::default();
    let steps: &[(i64, f64, Verdict)] = &[
        (0, 0.5, Verdict::Nothing),
        (10, 0.95, Verdict::Nothing), // pending from t=10
        (200, 0.97, Verdict::Nothing),
        (
            310,
            0.99,
            Verdict::Fire {
                started_ms: 9_000,
                value: 0.99,
            },
        ),
        (320, 0.85, Verdict::Nothing), // between clear and threshold: still firing
        (330, 0.95, Verdict::Nothing), // no second fire
        (
            340,
            0.80,
            Verdict::Clear {
                restored_ms: 339_000,
            },
        ), // at clear level: cleared
        (350, 0.85, Verdict::Nothing),
    ];
    for (i, &(s, v, want)) in steps.iter().enumerate() {
        assert_eq!(
            obs(&t, tm, &mut a, s, v),
            want,
            "step {i} at {s}s value {v}"
        );
    }
    assert_eq!(a.state, AlertState::Inactive);
}

#[test]
fn resolve_after_needs_the_condition_to_stay_clear() {
    let t = cpu(0);
    let tm = timing(0, 120);
    let mut a = Alert::default();
    assert!(matches!(obs(&t, tm, &mut a, 0, 0.95), Verdict::Fire { .. }));
    assert_eq!(obs(&t, tm, &mut a, 10, 0.5), Verdict::Nothing);
    assert_eq!(
        a.state,
        AlertState::Clearing {
            since_ms: 10_000,
            cleared_ms: 9_000
        }
    );
    // Into the hysteresis band: not clear any more, the wait starts over.
    assert_eq!(obs(&t, tm, &mut a, 100, 0.85), Verdict::Nothing);
    assert_eq!(a.state, AlertState::Firing);
    assert_eq!(obs(&t, tm, &mut a, 110, 0.5), Verdict::Nothing);
    assert_eq!(elapse(tm, &mut a, 229_999), Verdict::Nothing);
    // Restored when the first clear sample was taken, not when the wait ended.
    assert_eq!(
        elapse(tm, &mut a, 230_000),
        Verdict::Clear {
            restored_ms: 109_000
        }
    );
    assert_eq!(a.state, AlertState::Inactive);
    // A breach while clearing keeps the incident: no second Fire.
    let mut a = Alert::default();
    obs(&t, tm, &mut a, 0, 0.95);
    obs(&t, tm, &mut a, 10, 0.5);
    assert_eq!(obs(&t, tm, &mut a, 20, 0.97), Verdict::Nothing);
    assert_eq!(a.state, AlertState::Firing);
}

#[test]
fn a_dip_below_threshold_restarts_the_for_delay() {
    let t = cpu(60);
    let tm = timing(60, 0);
    let mut a = Alert::default();
    obs(&t, tm, &mut a, 1, 0.95);
    // Not breaching (0.85 < 0.9) though not cleared: pending resets.
    obs(&t, tm, &mut a, 30, 0.85);
    assert_eq!(a.state, AlertState::Inactive);
    obs(&t, tm, &mut a, 40, 0.95);
    assert_eq!(elapse(tm, &mut a, 70_000), Verdict::Nothing);
    assert_eq!(
        elapse(tm, &mut a, 100_000),
        Verdict::Fire {
            started_ms: 39_000,
            value: 0.95
        }
    );
}

#[test]
fn zero_for_fires_on_the_first_breaching_sample() {
    let t = cpu(0);
    let mut a = Alert::default();
    assert_eq!(
        obs(&t, timing(0, 0), &mut a, 7, 0.91),
        Verdict::Fire {
            started_ms: 6_000,
            value: 0.91
        }
    );
}

#[test]
fn tick_fires_pending_once_for_elapses() {
    let t = cpu(300);
    let tm = timing(300, 0);
    let mut a = Alert::default();
    obs(&t, tm, &mut a, 2, 0.95);
    assert_eq!(elapse(tm, &mut a, 301_999), Verdict::Nothing);
    assert!(matches!(
        elapse(tm, &mut a, 302_000),
        Verdict::Fire {
            started_ms: 1_000,
            ..
        }
    ));
    assert_eq!(elapse(tm, &mut a, 400_000), Verdict::Nothing);
}

/// A check-style condition: breaching or cleared, nothing between.
fn check(bad: bool) -> Condition {
    Condition {
        breaching: bad,
        cleared: !bad,
    }
}

#[test]
fn failures_count_results_not_time() {
    // `failures: 3`: three consecutive bad results.
    let tm = Timing {
        trigger: Trigger::Failures { count: 3, of: 3 },
        resolve_after: Duration::ZERO,
    };
    let fl = FlapThresholds {
        on: 101.0,
        off: 0.0,
    };
    let mut a = Alert::default();
    let run = |a: &mut Alert, seq: &[bool]| -> Vec<bool> {
        seq.iter()
            .enumerate()
            .map(|(i, &bad)| {
                let t = i as i64 * 1000;
                matches!(
                    observe(check(bad), tm, fl, a, 2.0, t, t).verdict,
                    Verdict::Fire { .. }
                )
            })
            .collect()
    };
    assert_eq!(
        run(&mut a, &[true, true, false, true, true, true, true]),
        [false, false, false, false, false, true, false]
    );
    // `failures: {count: 3, of: 5}`: an ok result in between does not reset.
    let tm = Timing {
        trigger: Trigger::Failures { count: 3, of: 5 },
        resolve_after: Duration::ZERO,
    };
    let mut a = Alert::default();
    let fired: Vec<bool> = [true, false, true, false, true]
        .iter()
        .enumerate()
        .map(|(i, &bad)| {
            let t = i as i64 * 1000;
            matches!(
                observe(check(bad), tm, fl, &mut a, 2.0, t, t).verdict,
                Verdict::Fire { started_ms: 0, .. }
            )
        })
        .collect();
    assert_eq!(fired, [false, false, false, false, true]);
    // Two bad in the last five never fires; the window slides out.
    let mut a = Alert::default();
    for (i, bad) in [true, false, false, true, false, false, false, false, false]
        .into_iter()
        .enumerate()
    {
        let t = i as i64;
        assert_eq!(
            observe(check(bad), tm, fl, &mut a, 2.0, t, t).verdict,
            Verdict::Nothing
        );
    }
    assert_eq!(a.state, AlertState::Inactive);
}

#[test]
fn flapping_turns_on_and_settles_nagios_style() {
    let tm = timing(0, 0);
    let fl = FlapThresholds::default();
    let mut a = Alert::default();
    let mut changes = Vec::new();
    // Alternating for a while, then steadily fine.
    let seq: Vec<bool> = (0..10).map(|i| i % 2 == 0).chain([false; 25]).collect();
    for (i, bad) in seq.into_iter().enumerate() {
        let t = i as i64 * 10_000;
        let o = observe(check(bad), tm, fl, &mut a, 2.0, t, t);
        if let Some(f) = o.flapping {
            changes.push((i, f, (a.percent_state_change() * 10.0).round() / 10.0));
        }
    }
    // 5 changes reach 20 %; it stops once fewer than ~1 weighted change
    // (5 %) is left in the 21-evaluation window.
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!((changes[0].0, changes[0].1), (5, true), "{changes:?}");
    assert!(changes[0].2 >= 20.0, "{changes:?}");
    assert_eq!((changes[1].0, changes[1].1), (28, false), "{changes:?}");
    assert!(changes[1].2 < 5.0, "{changes:?}");
    // Once settled and quiet for a whole window, the alert is idle.
    for i in 35..40 {
        observe(check(false), tm, fl, &mut a, 0.0, i, i);
    }
    assert!(a.is_idle(), "{a:?}");
}

#[test]
fn percent_state_change_weights() {
    let mut a = Alert {
        evaluations: 21,
        ..Alert::default()
    };
    assert_eq!(a.percent_state_change(), 0.0);
    // Alternating over the whole window: every transition, weights average 1.0.
    a.history = 0b1_0101_0101_0101_0101_0101;
    assert!((a.percent_state_change() - 100.0).abs() < 1e-9);
    // One change, newest: weight 1.2 → 6 %; oldest: 0.8 → 4 %.
    a.history = 1;
    assert!((a.percent_state_change() - 6.0).abs() < 1e-9);
    a.history = 1 << 20;
    assert!((a.percent_state_change() - 4.0).abs() < 1e-9);
}

#[test]
fn label_matchers_and_host_selectors() {
    let labels = |pairs: &[(&str, &str)]| -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let mut globs = globset::GlobSetBuilder::new();
    globs.add(globset::Glob::new("db-*").unwrap());
    let sel = Selector {
        hosts: Some(globs.build().unwrap()),
        host_labels: vec![("role".into(), Matcher::parse("db").unwrap())],
        labels: vec![
            ("mountpoint".into(), Matcher::parse("/").unwrap()),
            ("device".into(), Matcher::parse("~^/dev/sd").unwrap()),
        ],
    };
    let db = labels(&[("role", "db")]);
    assert!(sel.matches_host("db-01", &db));
    assert!(!sel.matches_host("web-01", &db));
    assert!(!sel.matches_host("db-01", &labels(&[("role", "web")])));
    assert!(!sel.matches_host("db-01", &Labels::new()));
    assert!(sel.matches_labels(&labels(&[("mountpoint", "/"), ("device", "/dev/sda1")])));
    assert!(!sel.matches_labels(&labels(&[("mountpoint", "/var"), ("device", "/dev/sda1")])));
    assert!(!sel.matches_labels(&labels(&[("mountpoint", "/"), ("device", "/dev/nvme0n1")])));
    assert!(
        !sel.matches_labels(&labels(&[("mountpoint", "/")])),
        "absent label vs regex"
    );
    // Exact "" matches an absent label, as in Prometheus.
    assert!(Matcher::parse("").unwrap().matches(None));
    assert!(Matcher::parse("~(").is_err());
    assert!(Selector::default().matches_host("any", &Labels::new()));
}

#[test]
fn below_direction() {
    let t = Threshold {
        metric: "filesystem_avail_bytes".into(),
        direction: Direction::Below,
        threshold: 100.0,
        clear: 200.0,
        for_: Duration::ZERO,
        compare: Compare::Value,
    };
    let cases = [
        (99.0, true, false),
        (100.0, false, false),
        (150.0, false, false),
        (200.0, false, true),
        (500.0, false, true),
    ];
    for (v, breach, clear) in cases {
        assert_eq!(t.breaches(v), breach, "{v}");
        assert_eq!(t.clears(v), clear, "{v}");
    }
}

#[test]
fn heartbeat() {
    let after = Duration::from_secs(60);
    let mut st = AlertState::Inactive;
    assert_eq!(
        absent(after, &mut st, 1_000, 10_000, 60_999),
        Verdict::Nothing
    );
    assert_eq!(
        absent(after, &mut st, 1_000, 10_000, 61_000),
        Verdict::Fire {
            started_ms: 11_000,
            value: 60.0
        }
    );
    assert_eq!(
        absent(after, &mut st, 1_000, 10_000, 99_000),
        Verdict::Nothing
    );
}

#[test]
fn check_status_matching() {
    let rule = |status| CheckRule {
        pattern: "*".into(),
        matcher: globset::Glob::new("*").unwrap().compile_matcher(),
        exact: None,
        status,
        trigger: Trigger::For(Duration::ZERO),
    };
    use Status::*;
    let table = [
        (Warning, [false, true, true, false]),
        (Critical, [false, false, true, false]),
        (Unknown, [false, false, false, true]),
    ];
    for (wanted, expect) in table {
        for (got, want) in [Ok, Warning, Critical, Unknown].into_iter().zip(expect) {
            assert_eq!(rule(wanted).breaches(got), want, "{wanted:?} vs {got:?}");
        }
    }
}
