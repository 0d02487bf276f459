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
            after: Some(Duration::from_secs(7))
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
