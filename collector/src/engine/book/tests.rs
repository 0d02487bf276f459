use super::*;
use crate::incidents::{Labels, Opening};

fn key(host: &str) -> AlertKey {
    AlertKey {
        rule: 0,
        host: host.into(),
        labels: Labels::new(),
    }
}

fn incident(id: i64, host: &str) -> Incident {
    let mut i = Incident::open(
        Opening {
            origin: Origin::Rule,
            rule: "cpu_high".into(),
            host: host.into(),
            labels: Labels::new(),
            impact: 2,
            urgency: 2,
            summary: String::new(),
            description: String::new(),
            value: None,
            threshold: None,
            started_ms: 1_000,
        },
        1_000,
    );
    i.id = id;
    i
}

#[test]
fn a_lifecycle_keeps_every_invariant_and_every_lookup() {
    let mut b = Book::default();
    b.open(key("a"), incident(1, "a"));
    b.open(key("b"), incident(2, "b"));
    assert_eq!(b.key_of(1), Some(&key("a")));
    assert_eq!(b.live(&key("b")).map(|i| i.id), Some(2));
    assert_eq!(b.count_live(Origin::Rule), 2);
    b.retire(&key("a"), incident(1, "a"));
    assert!(!b.is_live(&key("a")));
    assert_eq!(
        b.key_of(1),
        None,
        "a resolved incident is not found as live"
    );
    assert_eq!(b.last_resolved(&key("a")).map(|i| i.id), Some(1));
    // Reopening moves it back: live, not resolved, nothing to reopen.
    b.open(key("a"), incident(1, "a"));
    assert!(b.resolved(1).is_none());
    assert!(b.last_resolved(&key("a")).is_none());
    b.retire(&key("a"), incident(1, "a"));
    b.close(1);
    assert!(b.all_resolved().next().is_none());
    assert!(b.last_resolved(&key("a")).is_none());
    b.link_problem(&[2], 7);
    assert_eq!(b.live(&key("b")).unwrap().problem_id, Some(7));
    // A reload that drops the rule of `b` hands its live incident back.
    let orphans = b.rekey(|k| (k.host != "b").then_some(k));
    assert_eq!(orphans.iter().map(|i| i.id).collect::<Vec<_>>(), [2]);
    assert_eq!(b.key_of(2), None);
    assert_eq!(b.check(), Ok(()));
}

#[test]
fn check_names_each_broken_invariant() {
    let mut b = Book::default();
    b.open(key("a"), incident(1, "a"));
    b.ids.remove(&1);
    assert!(b.check().unwrap_err().contains("ids for 1 live"));

    let mut b = Book::default();
    b.open(key("a"), incident(1, "a"));
    b.ids.insert(1, key("elsewhere"));
    assert!(b.check().unwrap_err().contains("not found by its id"));

    let mut b = Book::default();
    b.open(key("a"), incident(1, "a"));
    // The same alert's fingerprint live twice, under two keys.
    let twin = AlertKey {
        rule: 1,
        ..key("a")
    };
    b.live.insert(twin.clone(), incident(2, "a"));
    b.ids.insert(2, twin);
    assert!(b.check().unwrap_err().contains("share"));

    let mut b = Book::default();
    b.open(key("a"), incident(1, "a"));
    b.resolved.insert(1, incident(1, "a"));
    assert!(b.check().unwrap_err().contains("live and resolved"));

    let mut b = Book::default();
    b.last_resolved.insert(key("a"), 9);
    assert!(b.check().unwrap_err().contains("not resolved"));
}
