use super::*;

fn host() -> HostState {
    HostState::from_record(HostRecord {
        host: "h".into(),
        labels: Labels::new(),
        boot_id: "b1".into(),
        last_seq: 5,
        last_seen_ms: 0,
        interval_ms: 10_000,
        retired_boots: Vec::new(),
    })
}

#[test]
fn dedup_is_per_boot_id() {
    let h = host();
    assert!(h.is_duplicate("b1", 5));
    assert!(h.is_duplicate("b1", 1));
    assert!(!h.is_duplicate("b1", 6));
    assert!(!h.is_duplicate("b2", 1));
}

#[test]
fn a_boot_the_host_moved_past_is_a_repeat() {
    let mut h = host();
    h.advance("b2", 1);
    assert!(h.is_duplicate("b1", 6), "b1 retired when b2 was applied");
    assert!(h.is_duplicate("b1", u64::MAX >> 1));
    assert!(!h.is_duplicate("b2", 2));
    assert!(!h.is_duplicate("b3", 1));
    // Only the newest RETIRED_BOOTS are remembered.
    for i in 3..3 + RETIRED_BOOTS {
        h.advance(&format!("b{i}"), 1);
    }
    assert!(h.is_duplicate(&format!("b{}", 1 + RETIRED_BOOTS), 9));
    assert!(
        !h.is_duplicate("b1", 9),
        "forgotten after {RETIRED_BOOTS} newer boots"
    );
    assert_eq!(h.retired_boots.len(), RETIRED_BOOTS);
    // Round trip through the record.
    let again = HostState::from_record(h.record("h"));
    assert_eq!(again.retired_boots, h.retired_boots);
}

proptest::proptest! {
    /// Whatever order an agent's batches and stale retries arrive in,
    /// each `(boot, seq)` is applied at most once, and a boot is never
    /// applied after a later one was.
    #[test]
    fn each_batch_applies_at_most_once(arrivals in proptest::collection::vec((0u8..4, 1u64..6), 0..60)) {
        let mut h = host();
        h.boot_id.clear();
        h.last_seq = 0;
        let mut applied = std::collections::HashSet::new();
        let mut order: Vec<u8> = Vec::new();
        for (boot, seq) in arrivals {
            let id = format!("boot-{boot}");
            if h.is_duplicate(&id, seq) {
                continue;
            }
            proptest::prop_assert!(applied.insert((boot, seq)), "({boot}, {seq}) applied twice");
            if order.last() != Some(&boot) {
                proptest::prop_assert!(!order.contains(&boot), "boot {boot} applied again after a newer one");
                order.push(boot);
            }
            h.advance(&id, seq);
        }
    }
}

#[test]
fn older_points_do_not_roll_back() {
    let mut h = host();
    let l = Labels::new();
    let p = |ts_ms, value| Point { ts_ms, value };
    assert_eq!(h.set_point("m", &l, p(10, 1.0)), Stored::Created);
    assert_eq!(h.set_point("m", &l, p(9, 2.0)), Stored::Kept);
    assert_eq!(h.set_point("m", &l, p(10, 3.0)), Stored::Updated(1.0));
    assert_eq!(h.point("m", &l).map(|p| p.value), Some(3.0));
    assert_eq!(h.series_len(), 1);
}

#[test]
fn stale_series_are_swept_and_counted_out() {
    let mut h = host();
    let l = |v: &str| Labels::from([("mountpoint".to_string(), v.to_string())]);
    let p = |ts_ms| Point { ts_ms, value: 1.0 };
    h.set_point("fs", &l("/"), p(100));
    h.set_point("fs", &l("/old"), p(10));
    h.set_point("gone", &Labels::new(), p(5));
    assert_eq!(h.series_len(), 3);
    let mut gone = h.sweep(50);
    gone.sort();
    assert_eq!(
        gone,
        vec![
            ("fs".to_string(), l("/old")),
            ("gone".to_string(), Labels::new())
        ]
    );
    assert_eq!(h.series_len(), 1);
    assert!(h.has_series("fs", &l("/")));
    assert!(!h.has_series("gone", &Labels::new()));
    assert_eq!(h.series().count(), 1);
}
