use super::*;

fn ms(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

fn sunday_patching(start: &str) -> Maintenance {
    Maintenance {
        name: "sunday-patching".into(),
        scope: Scope::new(ScopeSpec {
            hosts: vec![],
            host_labels: BTreeMap::from([("role".into(), "db".into())]),
        })
        .unwrap(),
        timezone: "Europe/Berlin".parse().unwrap(),
        slots: vec![Slot {
            when: Recurrence::Weekly(Weekday::Sun),
            start: NaiveTime::parse_from_str(start, "%H:%M").unwrap(),
            duration: Duration::from_secs(2 * 3600),
        }],
    }
}

#[test]
fn an_ordinary_week_in_local_time() {
    let m = sunday_patching("02:00");
    // Sunday 2026-11-22, CET (+01:00): 02:00–04:00 local = 01:00–03:00 UTC.
    assert_eq!(m.active_at(ms("2026-11-22T00:59:59Z")), None);
    assert_eq!(
        m.active_at(ms("2026-11-22T01:00:00Z")),
        Some((ms("2026-11-22T01:00:00Z"), ms("2026-11-22T03:00:00Z")))
    );
    assert!(m.active_at(ms("2026-11-22T02:59:59Z")).is_some());
    assert_eq!(m.active_at(ms("2026-11-22T03:00:00Z")), None);
    // Not on Saturday, nor Monday.
    assert_eq!(m.active_at(ms("2026-11-21T01:30:00Z")), None);
    assert_eq!(m.active_at(ms("2026-11-23T01:30:00Z")), None);
}

#[test]
fn spring_forward_day_keeps_the_window_and_its_length() {
    // 2026-03-29: Berlin jumps 02:00 CET → 03:00 CEST; 02:00 does not exist.
    let m = sunday_patching("02:00");
    let (start, end) = m.active_at(ms("2026-03-29T01:30:00Z")).unwrap();
    // Starts at the transition (01:00 UTC = 03:00 CEST) and lasts 2 h.
    assert_eq!(start, ms("2026-03-29T01:00:00Z"));
    assert_eq!(end, ms("2026-03-29T03:00:00Z"));
    assert_eq!(m.active_at(ms("2026-03-29T00:59:00Z")), None);
    // 02:30 (inside the gap) also starts at 03:00 CEST.
    let m = sunday_patching("02:30");
    assert_eq!(
        m.active_at(ms("2026-03-29T01:00:00Z")).map(|w| w.0),
        Some(ms("2026-03-29T01:00:00Z"))
    );
    // A week later, summer time: 02:00 CEST = 00:00 UTC.
    let m = sunday_patching("02:00");
    assert_eq!(
        m.active_at(ms("2026-04-05T00:00:00Z")).map(|w| w.0),
        Some(ms("2026-04-05T00:00:00Z"))
    );
}

#[test]
fn fall_back_day_opens_once_at_the_first_occurrence() {
    // 2026-10-25: Berlin goes 03:00 CEST → 02:00 CET; 02:00–03:00 happens twice.
    let m = sunday_patching("02:00");
    // First 02:00 is CEST = 00:00 UTC; the window lasts 2 h of real time.
    assert_eq!(
        m.active_at(ms("2026-10-25T00:00:00Z")),
        Some((ms("2026-10-25T00:00:00Z"), ms("2026-10-25T02:00:00Z")))
    );
    assert_eq!(m.active_at(ms("2026-10-24T23:59:59Z")), None);
    assert_eq!(m.active_at(ms("2026-10-25T02:00:00Z")), None);
}

#[test]
fn a_window_past_midnight_and_monthly_slots() {
    let mut m = sunday_patching("23:00");
    // Sunday 23:00 CET for 2 h runs into Monday 01:00.
    assert!(m.active_at(ms("2026-11-22T23:30:00Z")).is_some());
    assert!(m.active_at(ms("2026-11-23T00:30:00Z")).is_none()); // 01:30 local
    m.slots = vec![Slot {
        when: Recurrence::Monthly(1),
        start: NaiveTime::from_hms_opt(0, 0, 0).unwrap(),
        duration: Duration::from_secs(3600),
    }];
    assert!(m.active_at(ms("2026-12-01T00:30:00+01:00")).is_some());
    assert!(m.active_at(ms("2026-12-02T00:30:00+01:00")).is_none());
}

#[test]
fn scope_and_change_phases() {
    let s = Scope::new(ScopeSpec {
        hosts: vec!["web-*".into()],
        host_labels: BTreeMap::new(),
    })
    .unwrap();
    assert!(s.covers("web-1", &Labels::new()) && !s.covers("db-1", &Labels::new()));
    let e = Scope::new(ScopeSpec::default()).unwrap_err();
    assert_eq!(e.0, "scope");
    let mut c = Change {
        id: 1,
        title: "t".into(),
        scope: s,
        start_ms: 100,
        end_ms: 200,
        verify_for: Duration::from_millis(50),
        outcome: None,
        outcome_note: None,
        created_by: "ops".into(),
        created_at_ms: 0,
    };
    let phases: Vec<_> = [99, 100, 199, 200, 249, 250]
        .iter()
        .map(|&t| c.phase(t))
        .collect();
    assert_eq!(
        phases,
        [
            Phase::Scheduled,
            Phase::InProgress,
            Phase::InProgress,
            Phase::Verifying,
            Phase::Verifying,
            Phase::Done
        ]
    );
    c.outcome = Some(ChangeOutcome::Failed);
    assert_eq!(c.phase(150), Phase::Done);
}

#[test]
fn occurrences_over_a_range_agree_with_active_at() {
    let m = sunday_patching("02:30");
    let (from, to) = (ms("2026-03-01T00:00:00Z"), ms("2026-04-01T00:00:00Z"));
    let occ = m.occurrences(from, to);
    // Five Sundays in March 2026, the DST one (29th) included.
    assert_eq!(occ.len(), 5);
    for &(s, e) in &occ {
        assert_eq!(m.active_at(s), Some((s, e)));
        assert_eq!(m.active_at(e), None);
    }
    assert!(occ.windows(2).all(|w| w[0].1 <= w[1].0));
}
