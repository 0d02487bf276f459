use super::*;
use crate::notify::{Route, DEFAULT_TIMEOUT};
use crate::outbox::Event;

fn receiver() -> Receiver {
    Receiver {
        name: "hook".into(),
        kind: Kind::Webhook {
            url: "http://127.0.0.1:1/".into(),
            secret: None,
        },
        route: Route::default(),
        max_backoff: Duration::from_secs(60),
        give_up_after: Duration::from_secs(3600),
        timeout: DEFAULT_TIMEOUT,
        ca_certs: Vec::new(),
        tls_verify: true,
    }
}

fn row(attempts: u32) -> OutboxRow {
    OutboxRow {
        id: 1,
        subject: "incident:1".into(),
        event: Event::Opened,
        key: "k".into(),
        payload: "{}".into(),
        created_at_ms: 0,
        attempts,
        next_at_ms: 0,
        external_id: None,
    }
}

fn retry(after: Option<Duration>) -> Result<Delivered, Failure> {
    Err(Failure::Retry {
        error: "HTTP 503".into(),
        after,
    })
}

#[test]
fn a_failed_attempt_backs_off_then_expires_past_give_up_after() {
    let r = receiver();
    assert_eq!(
        decide(&r, &row(0), retry(None), 10_000, 0.0),
        Attempt::Retry {
            error: "HTTP 503".into(),
            next_at_ms: 11_000
        }
    );
    assert_eq!(
        decide(&r, &row(3), retry(None), 10_000, 0.0),
        Attempt::Retry {
            error: "HTTP 503".into(),
            next_at_ms: 18_000
        },
        "fourth attempt waits 8s"
    );
    assert_eq!(
        decide(
            &r,
            &row(0),
            retry(Some(Duration::from_secs(30))),
            10_000,
            0.0
        ),
        Attempt::Retry {
            error: "HTTP 503".into(),
            next_at_ms: 40_000
        },
        "Retry-After wins"
    );
    let late = decide(&r, &row(40), retry(None), 3_590_000, 0.0);
    assert!(
        matches!(&late, Attempt::Expired(e) if e.contains("41 attempts") && e.contains("HTTP 503")),
        "{late:?}"
    );
    assert_eq!(
        decide(&r, &row(2), Err(Failure::Reject("HTTP 400".into())), 0, 0.0),
        Attempt::Rejected("HTTP 400".into())
    );
}
