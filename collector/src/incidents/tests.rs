use super::*;

fn opening() -> Opening {
    Opening {
        origin: Origin::Rule,
        rule: "cpu_high".into(),
        host: "web-01".into(),
        labels: Labels::new(),
        impact: 2,
        urgency: 2,
        summary: "cpu high".into(),
        description: String::new(),
        value: Some(0.95),
        threshold: Some(0.9),
        started_ms: 1_000,
    }
}

#[test]
fn itil_priority_matrix() {
    let table = [
        (1, 1, 1),
        (1, 2, 2),
        (2, 1, 2),
        (2, 2, 3),
        (1, 3, 3),
        (2, 3, 4),
        (3, 2, 4),
        (3, 3, 5),
        (0, 0, 1),
        (9, 9, 5),
    ];
    for (impact, urgency, p) in table {
        assert_eq!(priority(impact, urgency), p, "{impact}/{urgency}");
    }
}

#[test]
fn fingerprint_distinguishes_rule_host_and_labels() {
    let l = |m: &str| Labels::from([("mountpoint".to_string(), m.to_string())]);
    let a = fingerprint("disk_full", "web-01", &l("/"));
    assert_eq!(a, fingerprint("disk_full", "web-01", &l("/")));
    assert_eq!(a.len(), 32, "128 bits");
    assert_ne!(a, fingerprint("disk_full", "web-01", &l("/var")));
    assert_ne!(a, fingerprint("disk_full", "web-02", &l("/")));
    assert_ne!(a, fingerprint("cpu_high", "web-01", &l("/")));
    // No ambiguity from concatenation.
    assert_ne!(
        fingerprint("a", "bc", &Labels::new()),
        fingerprint("ab", "c", &Labels::new())
    );
}

#[test]
fn separators_inside_values_cannot_forge_another_label_set() {
    // Both encoded to `a=b\0c=d` before, so two series shared one
    // fingerprint and the second incident's insert failed.
    let one = Labels::from([("a".to_string(), "b\0c=d".to_string())]);
    let two = Labels::from([
        ("a".to_string(), "b".to_string()),
        ("c".to_string(), "d".to_string()),
    ]);
    assert_ne!(fingerprint("r", "h", &one), fingerprint("r", "h", &two));
    let eq = Labels::from([("a=b".to_string(), String::new())]);
    let split = Labels::from([("a".to_string(), "=b".to_string())]);
    assert_ne!(fingerprint("r", "h", &eq), fingerprint("r", "h", &split));
    // A label cannot pose as the host either.
    assert_ne!(
        fingerprint("r", "h\0x=y", &Labels::new()),
        fingerprint(
            "r",
            "h",
            &Labels::from([("x".to_string(), "y".to_string())])
        )
    );
}

fn alert() -> impl proptest::strategy::Strategy<Value = (String, String, Labels)> {
    // Small alphabets with the separators that once mattered, so
    // near-collisions are common.
    let text = || proptest::string::string_regex("[ab=\\x00\\x01{},\"]{0,4}").expect("regex");
    (
        text(),
        text(),
        proptest::collection::btree_map(text(), text(), 0..4),
    )
}

proptest::proptest! {
    #[test]
    fn identity_encoding_is_injective(a in alert(), b in alert()) {
        let (ea, eb) = (identity_bytes(&a.0, &a.1, &a.2), identity_bytes(&b.0, &b.1, &b.2));
        proptest::prop_assert_eq!(a == b, ea == eb);
    }
}

#[test]
fn auto_lifecycle_keeps_every_timestamp() {
    let mut i = Incident::open(opening(), 5_000);
    assert_eq!(
        (i.state, i.priority, i.started_at_ms, i.detected_at_ms),
        (IncidentState::Open, 3, 1_000, 5_000)
    );
    i.acknowledge("alice", Some("looking".into()), 7_000)
        .unwrap();
    assert!(i.restore(9_000));
    assert_eq!(i.state, IncidentState::Resolved);
    assert_eq!(i.acknowledged_at_ms, Some(7_000));
    assert_eq!(i.restored_at_ms, Some(9_000));
    assert_eq!(i.resolved_at_ms, Some(9_000));
    assert_eq!(i.resolution, Some(Resolution::Auto));
    let kinds: Vec<_> = i.events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Opened,
            EventKind::Acknowledged,
            EventKind::Restored,
            EventKind::Resolved
        ]
    );
    assert_eq!(i.events[1].actor, "alice");
    assert_eq!(i.events[1].note.as_deref(), Some("looking"));
}

#[test]
fn manual_resolve_then_restore_records_restore_only() {
    let mut i = Incident::open(opening(), 5_000);
    i.resolve("bob", None, 6_000).unwrap();
    assert_eq!(i.resolution, Some(Resolution::Manual));
    assert!(!i.restore(8_000));
    assert_eq!(i.resolved_at_ms, Some(6_000));
    assert_eq!(i.restored_at_ms, Some(8_000));
    assert_eq!(i.resolution, Some(Resolution::Manual));
}

#[test]
fn invalid_transitions_are_refused() {
    let mut i = Incident::open(opening(), 5_000);
    i.acknowledge("a", None, 6_000).unwrap();
    let e = i.acknowledge("a", None, 6_500).unwrap_err();
    assert_eq!(e.state, IncidentState::Acknowledged);
    i.resolve("a", None, 7_000).unwrap();
    assert!(i.resolve("a", None, 8_000).is_err());
    assert!(i.acknowledge("a", None, 8_000).is_err());
    assert_eq!(i.events.len(), 3);
}

#[test]
fn reopen_close_and_flapping() {
    let mut i = Incident::open(opening(), 5_000);
    assert!(
        i.reopen(None, 5_500).is_err(),
        "an open incident cannot reopen"
    );
    i.acknowledge("a", None, 6_000).unwrap();
    i.restore(7_000);
    i.reopen(Some(0.97), 8_000).unwrap();
    assert_eq!(
        (
            i.state,
            i.occurrences,
            i.value,
            i.acknowledged_at_ms,
            i.resolved_at_ms
        ),
        (IncidentState::Open, 2, Some(0.97), None, None)
    );
    assert_eq!(
        i.detected_at_ms, 5_000,
        "detection is the first occurrence's"
    );
    assert!(i.close(8_500).is_err(), "only a resolved incident closes");
    i.restore(9_000);
    i.close(10_000).unwrap();
    assert_eq!(
        (i.state, i.closed_at_ms),
        (IncidentState::Closed, Some(10_000))
    );
    assert!(
        i.reopen(None, 11_000).is_err(),
        "a closed incident stays closed"
    );
    assert!(i.set_flapping(true, 25.0, 12_000));
    assert!(!i.set_flapping(true, 30.0, 12_500));
    let kinds: Vec<&str> = i.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "opened",
            "acknowledged",
            "restored",
            "resolved",
            "reopened",
            "restored",
            "resolved",
            "closed",
            "flapping_started"
        ]
    );
    assert_eq!(
        i.events.last().unwrap().note.as_deref(),
        Some("25.0% state change over the last 21 evaluations")
    );
}

#[test]
fn started_after_detection_is_clamped() {
    let mut o = opening();
    o.started_ms = 10_000;
    let i = Incident::open(o, 5_000);
    assert_eq!(i.started_at_ms, 5_000);
}

#[test]
fn kpi_observations_per_cycle_and_only_for_new_events() {
    use EventKind::*;
    let events = [
        (70_000, Opened),
        (100_000, Acknowledged),
        (160_000, Restored),
        (160_000, Resolved),
        (1_000_000, Reopened),
        (1_030_000, Restored),
        (1_030_000, Resolved),
    ];
    let all = observations(10_000, 2, events, 0);
    let got: Vec<_> = all.iter().map(|o| (o.kpi, o.seconds)).collect();
    assert_eq!(
        got,
        vec![
            (Kpi::Detection, 60.0),
            (Kpi::Acknowledge, 30.0),
            (Kpi::Restore, 150.0),
            (Kpi::Resolution, 90.0),
            (Kpi::Restore, 30.0),
            (Kpi::Resolution, 30.0),
        ]
    );
    // Replaying only the newly saved events measures them in context.
    let tail = observations(10_000, 2, events, 5);
    assert_eq!(tail, all[4..].to_vec());
    assert!(all.iter().all(|o| o.priority == 2));
}
