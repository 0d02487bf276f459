use super::*;
use crate::incidents::Opening;

/// One incident write in its own transaction.
fn save(s: &mut Store, i: &mut Incident, persisted: usize) -> Result<(), StoreError> {
    s.write(|tx| tx.save_incident(i, persisted))
}

#[test]
fn incident_round_trip_with_timeline() {
    let mut s = Store::in_memory().unwrap();
    let mut i = Incident::open(Opening::for_test("web-01"), 2_000);
    save(&mut s, &mut i, 0).unwrap();
    assert_eq!(i.id, 1);
    let n = i.events.len();
    i.acknowledge("alice", Some("on it".into()), 3_000).unwrap();
    save(&mut s, &mut i, n).unwrap();
    let n = i.events.len();
    i.restore(4_000);
    save(&mut s, &mut i, n).unwrap();
    assert_eq!(s.incident(1).unwrap(), i);
    assert_eq!(s.incidents(Some(IncidentState::Resolved), 10).unwrap(), [i]);
    assert!(s.live_incidents().unwrap().is_empty());
    assert!(matches!(s.incident(9), Err(StoreError::NotFound(9))));
}

#[test]
fn at_most_one_live_incident_per_fingerprint() {
    let mut s = Store::in_memory().unwrap();
    let mut a = Incident::open(Opening::for_test("web-01"), 2_000);
    save(&mut s, &mut a, 0).unwrap();
    let mut dup = Incident::open(Opening::for_test("web-01"), 3_000);
    assert!(matches!(
        save(&mut s, &mut dup, 0),
        Err(StoreError::Sqlite(_))
    ));
    // Once resolved, a new incident for the same fingerprint may open.
    a.restore(4_000);
    save(&mut s, &mut a, 1).unwrap();
    let mut b = Incident::open(Opening::for_test("web-01"), 5_000);
    b.id = 0;
    save(&mut s, &mut b, 0).unwrap();
    assert_eq!(s.live_incidents().unwrap().len(), 1);
}

#[test]
fn reopening_the_file_keeps_everything_and_does_not_remigrate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/vedette.db");
    {
        let mut s = Store::open(&path).unwrap();
        let mut i = Incident::open(Opening::for_test("web-01"), 2_000);
        save(&mut s, &mut i, 0).unwrap();
        s.save_hosts(&[HostRecord {
            host: "web-01".into(),
            labels: Labels::from([("env".into(), "prod".into())]),
            boot_id: "b1".into(),
            last_seq: crate::state::MAX_SEQ,
            last_seen_ms: 9_000,
            interval_ms: 10_000,
            retired_boots: vec![u128::MAX, 1],
        }])
        .unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
    assert_eq!(s.live_incidents().unwrap().len(), 1);
    let hosts = s.hosts().unwrap();
    assert_eq!(
        (hosts[0].last_seq, hosts[0].labels["env"].as_str()),
        (crate::state::MAX_SEQ, "prod"),
        "the largest seq the protocol allows survives exactly"
    );
    assert_eq!(hosts[0].retired_boots, vec![u128::MAX, 1]);
}

#[test]
fn version_5_marks_alertmanager_incidents_by_origin_not_by_label() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vedette.db");
    {
        // A version 4 store, as the previous release left it.
        let mut c = Connection::open(&path).unwrap();
        let tx = c.transaction().unwrap();
        for sql in &MIGRATIONS[..4] {
            tx.execute_batch(sql).unwrap();
        }
        tx.pragma_update(None, "user_version", 4).unwrap();
        for (fp, labels) in [
            ("a", r#"{"source":"alertmanager","job":"x"}"#),
            ("b", r#"{"mountpoint":"/"}"#),
        ] {
            tx.execute(
                "INSERT INTO incidents (fingerprint, rule, host, labels, state, priority, impact,
                   urgency, summary, description, started_at, detected_at, occurrences)
                 VALUES (?1, 'r', 'h', ?2, 'open', 3, 2, 2, 's', 'd', 1, 2, 1)",
                params![fp, labels],
            )
            .unwrap();
        }
        tx.execute(
            "INSERT INTO hosts (host, labels, boot_id, last_seq, last_seen, interval_ms)
             VALUES ('h', '{}', 'b', 3, 1, 10000)",
            [],
        )
        .unwrap();
        tx.commit().unwrap();
    }
    let s = Store::open(&path).unwrap();
    let origins: Vec<Origin> = s
        .live_incidents()
        .unwrap()
        .iter()
        .map(|i| i.origin)
        .collect();
    assert_eq!(origins, vec![Origin::Alertmanager, Origin::Rule]);
    assert_eq!(s.hosts().unwrap()[0].retired_boots, Vec::<u128>::new());
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vedette.db");
    Store::open(&path).unwrap();
    let c = Connection::open(&path).unwrap();
    c.pragma_update(None, "user_version", 99).unwrap();
    drop(c);
    let e = Store::open(&path).err().unwrap();
    assert!(matches!(e, StoreError::TooNew { found: 99, .. }), "{e}");
    assert!(e.to_string().contains("upgrade vedette-collector"));
}

#[test]
fn counts_for_counter_restore() {
    let mut s = Store::in_memory().unwrap();
    for host in ["a", "b", "c"] {
        let mut i = Incident::open(Opening::for_test(host), 2_000);
        save(&mut s, &mut i, 0).unwrap();
        if host != "c" {
            i.restore(3_000);
            save(&mut s, &mut i, 1).unwrap();
        }
    }
    let counts = s.incident_counts().unwrap();
    let get = |res: Option<&str>| {
        counts
            .iter()
            .find(|c| c.resolution.as_deref() == res)
            .map(|c| c.count)
    };
    assert_eq!(get(None), Some(3));
    assert_eq!(get(Some("auto")), Some(2));
    assert_eq!(get(Some("manual")), None);
}

#[test]
fn long_forgotten_hosts_leave_with_their_history() {
    let mut s = Store::in_memory().unwrap();
    let host = |name: &str, last_seen_ms| HostRecord {
        host: name.into(),
        labels: Labels::new(),
        boot_id: "b".into(),
        last_seq: 1,
        last_seen_ms,
        interval_ms: 10_000,
        retired_boots: Vec::new(),
    };
    s.save_hosts(&[host("old", 1_000), host("new", 9_000)])
        .unwrap();
    let row = |h: &str| AvailabilityRow {
        host: h.into(),
        check: String::new(),
        at_ms: 1_000,
        state: Avail::Up,
    };
    s.write(|tx| tx.insert_availability(&[row("old"), row("new")]))
        .unwrap();
    assert_eq!(s.prune_hosts(5_000).unwrap(), 1);
    assert!(s.host("old").unwrap().is_none());
    assert_eq!(s.host("new").unwrap().unwrap().last_seen_ms, 9_000);
    assert!(s.availability_of("old", 0).unwrap().is_empty());
    assert_eq!(s.availability_of("new", 0).unwrap().len(), 1);
}

#[test]
fn availability_keeps_the_state_at_the_horizon_and_prunes_the_rest() {
    let mut s = Store::in_memory().unwrap();
    let row = |check: &str, at_ms, state| AvailabilityRow {
        host: "h".into(),
        check: check.into(),
        at_ms,
        state,
    };
    let rows = [
        row("", 10, Avail::Up),
        row("", 20, Avail::Down),
        row("", 40, Avail::Up),
        row("api", 5, Avail::Down),
    ];
    s.write(|tx| tx.insert_availability(&rows)).unwrap();
    let at = |s: &Store| {
        s.availability(30)
            .unwrap()
            .iter()
            .map(|r| (r.check.clone(), r.at_ms))
            .collect::<Vec<_>>()
    };
    let seen = vec![
        ("".to_string(), 20),
        ("".to_string(), 40),
        ("api".to_string(), 5),
    ];
    assert_eq!(at(&s), seen);
    // Only the change before the horizon's own state goes.
    assert_eq!(s.prune_availability(30).unwrap(), 1);
    assert_eq!(at(&s), seen);
}
