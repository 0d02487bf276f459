use super::*;
use rand::SeedableRng;

#[test]
fn backoff_is_full_jitter_under_the_cap() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let cap = Duration::from_secs(30);
    for attempt in 0..40 {
        let ceiling = Duration::from_secs(1u64 << attempt.min(16)).min(cap);
        for _ in 0..50 {
            let d = backoff(attempt, cap, &mut rng);
            assert!(
                d >= Duration::from_millis(100) && d <= ceiling.max(Duration::from_millis(100)),
                "{attempt}: {d:?}"
            );
        }
    }
    // Jitter actually spreads retries.
    let spread: std::collections::HashSet<_> = (0..20).map(|_| backoff(5, cap, &mut rng)).collect();
    assert!(spread.len() > 10);
}

#[test]
fn cap_follows_the_interval() {
    assert_eq!(max_backoff(Duration::from_secs(1)), Duration::from_secs(3));
    assert_eq!(
        max_backoff(Duration::from_secs(10)),
        Duration::from_secs(30)
    );
    assert_eq!(
        max_backoff(Duration::from_secs(300)),
        Duration::from_secs(60)
    );
}

#[test]
fn classify_answers() {
    let h = HeaderMap::new();
    assert_eq!(
        classify(StatusCode::OK, &h, br#"{"accepted": 3, "ack_seq": 9}"#),
        Ok(PushAck {
            accepted: 3,
            ack_seq: 9
        })
    );
    let bad = br#"{"error": "value must be finite", "field": "samples[3].value"}"#;
    assert_eq!(
        classify(StatusCode::BAD_REQUEST, &h, bad),
        Err(PushError::Rejected {
            status: 400,
            reason: "value must be finite (field samples[3].value)".into()
        })
    );
    assert!(matches!(
        classify(StatusCode::PAYLOAD_TOO_LARGE, &h, b""),
        Err(PushError::Rejected { status: 413, .. })
    ));
    let mut retry = HeaderMap::new();
    retry.insert(RETRY_AFTER, "7".parse().unwrap());
    assert_eq!(
        classify(
            StatusCode::TOO_MANY_REQUESTS,
            &retry,
            b"{\"error\": \"busy\"}"
        ),
        Err(PushError::Retry {
            reason: "HTTP 429: busy".into(),
            after: Some(Duration::from_secs(7)),
            outcome: "http_4xx",
        })
    );
    for s in [401, 403, 500, 502, 503] {
        assert!(
            matches!(
                classify(StatusCode::from_u16(s).unwrap(), &h, b"<html>"),
                Err(PushError::Retry { .. })
            ),
            "{s} must be retried"
        );
    }
    assert!(matches!(
        classify(StatusCode::OK, &h, b"not json"),
        Err(PushError::Retry { .. })
    ));
}

fn urls(n: usize) -> Vec<Url> {
    (1..=n)
        .map(|i| Url::parse(&format!("https://c{i}:9850")).unwrap())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_failed_collector_backs_off_alone_and_the_preferred_returns_first() {
    let cap = Duration::from_secs(30);
    let mut t = Targets::new(&urls(3));
    let now = Instant::now();
    assert_eq!(t.ready(now), [0, 1, 2]);
    assert_eq!(t.list[1].push.as_str(), "https://c2:9850/api/v1/push");
    assert_eq!(t.list[1].label, "https://c2:9850");

    t.failed(0, "connect refused", None, cap, now);
    assert_eq!(
        t.ready(now),
        [1, 2],
        "c1 backs off; the batch goes to c2 at once"
    );
    assert!(!t.succeeded(1), "the first success is not a move");
    let back = t.next_ready().unwrap();
    assert!(
        back > now && back <= now + Duration::from_secs(1),
        "first backoff ≤ 1 s"
    );

    // Once c1's backoff ends it is tried first again.
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(t.ready(Instant::now()), [0, 1, 2]);
    assert!(
        t.succeeded(0),
        "pushes moved back to the preferred collector"
    );
    assert_eq!(t.next_ready(), None);

    // A Retry-After is honoured for that collector only.
    let now = Instant::now();
    t.failed(2, "HTTP 503", Some(Duration::from_secs(20)), cap, now);
    assert_eq!(t.next_ready(), Some(now + Duration::from_secs(20)));
    assert_eq!(t.ready(now), [0, 1]);

    // Repeated failures grow the backoff up to the cap, never past it.
    for _ in 0..20 {
        t.failed(1, "timeout", None, cap, now);
        assert!(t.list[1].ready_at.unwrap() <= now + cap);
    }
    assert_eq!(t.list[1].attempt, 20);
    assert!(!t.succeeded(0) && t.list[1].failing);
}
