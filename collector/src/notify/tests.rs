use super::*;
use crate::incidents::{EventKind, IncidentEvent, Opening};
use crate::outbox::Attempt;

fn glob(p: &str) -> globset::GlobSet {
    let mut b = globset::GlobSetBuilder::new();
    b.add(globset::Glob::new(p).expect("glob"));
    b.build().expect("globset")
}

fn receiver(name: &str, kind: Kind, route: Route) -> Receiver {
    Receiver {
        name: name.into(),
        kind,
        route,
        max_backoff: DEFAULT_MAX_BACKOFF,
        give_up_after: DEFAULT_GIVE_UP_AFTER,
        timeout: DEFAULT_TIMEOUT,
        ca_certs: Vec::new(),
        tls_verify: true,
    }
}

/// Incident 7 (P2) with the timeline `kinds`.
pub(crate) fn incident(kinds: &[EventKind]) -> Incident {
    let mut i = Incident::open(
        crate::incidents::Opening {
            origin: crate::incidents::Origin::Rule,
            rule: "disk_full".into(),
            host: "web-1".into(),
            labels: Labels::from([("mountpoint".into(), "/".into())]),
            impact: 1,
            urgency: 2,
            summary: "disk full".into(),
            description: "d".into(),
            value: Some(0.97),
            threshold: Some(0.9),
            started_ms: 1_000,
        },
        2_000,
    );
    i.id = 7;
    i.fingerprint = "abcd".into();
    i.events = kinds
        .iter()
        .map(|&kind| IncidentEvent {
            at_ms: 2_000,
            kind,
            actor: "vedette".into(),
            note: None,
        })
        .collect();
    i
}

#[test]
fn routes_by_priority_rule_and_host_labels() {
    let prod = Labels::from([("env".into(), "prod".into())]);
    let dev = Labels::from([("env".into(), "dev".into())]);
    let route = Route {
        min_priority: 2,
        rules: glob("disk_*"),
        host_labels: vec![("env".into(), Matcher::parse("prod").expect("matcher"))],
    };
    assert!(route.matches(2, "disk_full", &prod));
    assert!(route.matches(1, "disk_full", &prod));
    assert!(!route.matches(3, "disk_full", &prod), "P3 is below P2");
    assert!(!route.matches(1, "cpu_high", &prod), "rule glob");
    assert!(!route.matches(1, "disk_full", &dev), "host label");
    assert!(Route::default().matches(5, "anything", &Labels::new()));
}

#[test]
fn rows_per_new_event_and_receiver_with_stable_keys() {
    let router = Router {
        receivers: vec![
            receiver(
                "hook",
                Kind::Webhook {
                    url: "http://h".into(),
                    secret: None,
                },
                Route::default(),
            ),
            receiver(
                "am",
                Kind::Alertmanager {
                    url: "http://am".into(),
                },
                Route::default(),
            ),
            receiver(
                "p1-only",
                Kind::Webhook {
                    url: "http://h".into(),
                    secret: None,
                },
                Route {
                    min_priority: 1,
                    ..Route::default()
                },
            ),
        ],
    };
    let i = incident(&[
        EventKind::Opened,
        EventKind::Acknowledged,
        EventKind::Restored,
        EventKind::Resolved,
    ]);
    let rows = router.incident_rows(&i, 1, &Labels::new());
    let got: Vec<(&str, Event, &str)> = rows
        .iter()
        .map(|r| (r.receiver.as_str(), r.event, r.key.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("hook", Event::Acknowledged, "vedette-abcd-7-1"),
            ("hook", Event::Resolved, "vedette-abcd-7-3"),
            ("am", Event::Resolved, "vedette-abcd-7-3"),
        ],
        "restored makes no row, Alertmanager has no acknowledge, P2 skips p1-only"
    );
    let body: serde_json::Value = serde_json::from_str(&rows[0].payload).expect("json");
    assert_eq!(body["event"], "acknowledged");
    assert_eq!(body["id"], 7);
    assert_eq!(body["labels"]["mountpoint"], "/");
    assert_eq!(rows[0].subject, "incident:7");
}

#[test]
fn backoff_doubles_to_the_cap_and_jitters_down_to_half() {
    let max = Duration::from_secs(300);
    assert_eq!(backoff(1, max, 0.0), Duration::from_secs(1));
    assert_eq!(backoff(2, max, 0.0), Duration::from_secs(2));
    assert_eq!(backoff(5, max, 0.0), Duration::from_secs(16));
    assert_eq!(backoff(20, max, 0.0), max);
    assert_eq!(backoff(u32::MAX, max, 0.0), max);
    assert_eq!(backoff(5, max, 1.0), Duration::from_secs(8));
}

#[test]
fn secrets_do_not_print() {
    let s = Secret("hunter2".into());
    assert!(!format!("{s:?}").contains("hunter2"));
}

/// A store whose writes are routed to receivers, as the engine commits.
struct Routed {
    store: Store,
    outbox: Outbox,
}

impl Routed {
    fn write<T>(
        &mut self,
        f: impl FnOnce(&Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        commit(&mut self.store, Some(&self.outbox), f).map(|(out, _)| out)
    }

    fn save_incident(&mut self, i: &mut Incident, persisted: usize) -> Result<(), StoreError> {
        self.write(|tx| tx.save_incident(i, persisted))
    }
}

impl std::ops::Deref for Routed {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

impl std::ops::DerefMut for Routed {
    fn deref_mut(&mut self) -> &mut Store {
        &mut self.store
    }
}

fn routed_store(hook_min_priority: u8) -> (Routed, Arc<std::sync::atomic::AtomicUsize>) {
    let store = Store::in_memory().unwrap();
    let receiver = |name: &str, kind: Kind, min_priority: u8| Receiver {
        name: name.into(),
        kind,
        route: Route {
            min_priority,
            ..Route::default()
        },
        max_backoff: std::time::Duration::from_secs(60),
        give_up_after: DEFAULT_GIVE_UP_AFTER,
        timeout: DEFAULT_TIMEOUT,
        ca_certs: Vec::new(),
        tls_verify: true,
    };
    let router = Router {
        receivers: vec![
            receiver(
                "hook",
                Kind::Webhook {
                    url: "http://127.0.0.1:9/".into(),
                    secret: None,
                },
                hook_min_priority,
            ),
            receiver(
                "am",
                Kind::Alertmanager {
                    url: "http://127.0.0.1:9/".into(),
                },
                5,
            ),
        ],
    };
    let woken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let w = Arc::clone(&woken);
    let outbox = Outbox::new(
        Arc::new(router),
        Arc::new(move || {
            w.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }),
        || store.host_labels(),
    )
    .unwrap();
    (Routed { store, outbox }, woken)
}

#[test]
fn transitions_fill_the_outbox_in_their_own_transaction() {
    let (mut s, woken) = routed_store(5);
    let mut i = Incident::open(Opening::for_test("web-1"), 2_000);
    s.save_incident(&mut i, 0).unwrap();
    assert_eq!(woken.load(std::sync::atomic::Ordering::SeqCst), 1);
    let heads = s.outbox_heads("hook", 10).unwrap();
    assert_eq!(heads.len(), 1);
    assert_eq!(heads[0].event, Event::Opened);
    assert_eq!(heads[0].next_at_ms, 2_000, "due at once");
    // A transaction that fails leaves no row behind.
    let n = i.events.len();
    i.acknowledge("alice", None, 3_000).unwrap();
    let failed: Result<(), StoreError> = s.write(|tx| {
        tx.save_incident(&mut i, n)?;
        Err(StoreError::Corrupt("boom".into()))
    });
    assert!(failed.is_err());
    assert_eq!(
        s.deliveries(&format!("incident:{}", i.id)).unwrap().len(),
        2,
        "opened ×2 receivers"
    );
    s.save_incident(&mut i, n).unwrap();
    let d = s.deliveries(&format!("incident:{}", i.id)).unwrap();
    let got: Vec<(&str, &str)> = d
        .iter()
        .map(|d| (d.receiver.as_str(), d.event.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("hook", "opened"),
            ("am", "opened"),
            ("hook", "acknowledged")
        ],
        "Alertmanager has no acknowledge"
    );
    // Saving the same events again enqueues nothing twice.
    s.write(|tx| tx.save_incident(&mut i, n)).unwrap();
    assert_eq!(
        s.deliveries(&format!("incident:{}", i.id)).unwrap().len(),
        3
    );
}

#[test]
fn one_subject_goes_in_order_and_attempts_are_recorded() {
    let (mut s, _) = routed_store(5);
    let mut a = Incident::open(Opening::for_test("web-1"), 2_000);
    s.save_incident(&mut a, 0).unwrap();
    let n = a.events.len();
    a.acknowledge("alice", None, 3_000).unwrap();
    s.save_incident(&mut a, n).unwrap();
    let mut b = Incident::open(Opening::for_test("web-2"), 4_000);
    s.save_incident(&mut b, 0).unwrap();
    let heads = s.outbox_heads("hook", 10).unwrap();
    let got: Vec<(&str, Event)> = heads
        .iter()
        .map(|r| (r.subject.as_str(), r.event))
        .collect();
    assert_eq!(
        got,
        vec![("incident:1", Event::Opened), ("incident:2", Event::Opened)],
        "the acknowledge waits for the open of its incident"
    );
    let first = heads[0].id;
    s.record_attempt(
        first,
        5_000,
        &Attempt::Retry {
            error: "HTTP 503".into(),
            next_at_ms: 9_000,
        },
    )
    .unwrap();
    let heads = s.outbox_heads("hook", 10).unwrap();
    assert_eq!(heads[0].subject, "incident:2", "soonest due first");
    assert_eq!((heads[1].attempts, heads[1].next_at_ms), (1, 9_000));
    s.record_attempt(
        first,
        9_000,
        &Attempt::Delivered {
            external_id: Some("sys-1".into()),
        },
    )
    .unwrap();
    let heads = s.outbox_heads("hook", 10).unwrap();
    let ack = heads.iter().find(|r| r.subject == "incident:1").unwrap();
    assert_eq!(ack.event, Event::Acknowledged);
    assert_eq!(
        ack.external_id.as_deref(),
        Some("sys-1"),
        "what the receiver made is kept"
    );
    assert_eq!(
        s.outbox_pending().unwrap(),
        vec![("am".into(), 2, 2_000), ("hook".into(), 2, 3_000)]
    );
    let mut counts = s.notification_counts().unwrap();
    counts.sort();
    assert_eq!(
        counts,
        vec![
            ("am".into(), "retried".into(), 0),
            ("hook".into(), "delivered".into(), 1),
            ("hook".into(), "retried".into(), 1),
        ]
    );
}

#[test]
fn firing_lists_what_alertmanager_must_keep_hearing() {
    let (mut s, _) = routed_store(5);
    let mut i = Incident::open(Opening::for_test("web-1"), 2_000);
    s.save_incident(&mut i, 0).unwrap();
    assert!(s.firing("am").unwrap().is_empty(), "not delivered yet");
    let open = s.outbox_heads("am", 1).unwrap()[0].id;
    s.record_attempt(open, 2_100, &Attempt::Delivered { external_id: None })
        .unwrap();
    assert_eq!(s.firing("am").unwrap().len(), 1);
    let n = i.events.len();
    i.resolve("alice", None, 3_000).unwrap();
    s.save_incident(&mut i, n).unwrap();
    assert!(
        s.firing("am").unwrap().is_empty(),
        "a resolve is on its way"
    );
}

#[test]
fn routing_by_priority_leaves_lower_priorities_out() {
    let (mut s, woken) = routed_store(1);
    let mut i = Incident::open(Opening::for_test("web-1"), 2_000); // impact 1, urgency 2: P2
    s.save_incident(&mut i, 0).unwrap();
    assert!(s.outbox_heads("hook", 10).unwrap().is_empty());
    assert_eq!(s.outbox_heads("am", 10).unwrap().len(), 1);
    assert_eq!(woken.load(std::sync::atomic::Ordering::SeqCst), 1);
}
