use super::*;

fn snapshot(event: Event) -> Snapshot {
    let i = super::super::tests::incident(&[crate::incidents::EventKind::Opened]);
    let body = super::super::body(event, crate::views::IncidentView::from(i));
    serde_json::from_str(&body).expect("snapshot")
}

#[test]
fn signature_is_hmac_sha256_over_timestamp_dot_body() {
    // Computed independently with OpenSSL:
    // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key
    let sig = signature(&Secret("key".into()), 1_700_000_000, r#"{"a":1}"#);
    assert_eq!(
        sig,
        "sha256=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03",
    );
}

#[test]
fn alertmanager_alert_has_the_v2_shape() {
    let firing = alertmanager_alert(&snapshot(Event::Opened));
    assert_eq!(firing["labels"]["alertname"], "disk_full");
    assert_eq!(firing["labels"]["host"], "web-1");
    assert_eq!(firing["labels"]["severity"], "error");
    assert_eq!(firing["labels"]["mountpoint"], "/");
    assert_eq!(firing["annotations"]["summary"], "disk full");
    assert_eq!(firing["startsAt"], "1970-01-01T00:00:01.000Z");
    assert!(firing.get("endsAt").is_none(), "firing alerts carry no end");
    let resolved = alertmanager_alert(&snapshot(Event::Resolved));
    assert!(resolved["endsAt"].is_string());
}

#[test]
fn pagerduty_events_follow_events_api_v2() {
    let key = Secret("R0UTINGKEY".into());
    let t = pagerduty_event(&key, &snapshot(Event::Opened)).expect("trigger");
    assert_eq!(t["event_action"], "trigger");
    assert_eq!(t["routing_key"], "R0UTINGKEY");
    assert_eq!(t["dedup_key"], "abcd");
    for f in ["summary", "source", "severity"] {
        assert!(t["payload"][f].is_string(), "required payload.{f}");
    }
    let a = pagerduty_event(&key, &snapshot(Event::Acknowledged)).expect("ack");
    assert_eq!(
        a,
        json!({"routing_key": "R0UTINGKEY", "event_action": "acknowledge", "dedup_key": "abcd"})
    );
    assert_eq!(
        pagerduty_event(&key, &snapshot(Event::Resolved)).expect("resolve")["event_action"],
        "resolve"
    );
    assert!(pagerduty_event(&key, &snapshot(Event::Closed)).is_none());
}

#[test]
fn servicenow_records_and_updates() {
    let c = servicenow_create(&snapshot(Event::Opened));
    assert_eq!(c["correlation_id"], "abcd/7");
    assert_eq!(c["impact"], "1");
    assert_eq!(c["urgency"], "2");
    assert_eq!(c["cmdb_ci"], "web-1");
    assert!(servicenow_update(&snapshot(Event::Opened), "x").is_none());
    assert_eq!(
        servicenow_update(&snapshot(Event::Acknowledged), "x").expect("ack")["state"],
        "2"
    );
    let r = servicenow_update(&snapshot(Event::Resolved), "Solved (Permanently)").expect("resolve");
    assert_eq!(r["state"], "6");
    assert_eq!(r["close_code"], "Solved (Permanently)");
    assert!(r["close_notes"].as_str().is_some_and(|n| !n.is_empty()));
}

#[test]
fn answers_are_retried_or_refused() {
    assert_eq!(classify(StatusCode::ACCEPTED, None, ""), Ok(()));
    assert_eq!(
        classify(StatusCode::TOO_MANY_REQUESTS, Some("30"), "slow down"),
        Err(Failure::Retry {
            error: "HTTP 429 Too Many Requests: slow down".into(),
            after: Some(Duration::from_secs(30))
        })
    );
    assert!(matches!(
        classify(StatusCode::BAD_GATEWAY, None, ""),
        Err(Failure::Retry { after: None, .. })
    ));
    assert!(matches!(
        classify(StatusCode::BAD_REQUEST, None, "{\"status\":\"invalid event\"}"),
        Err(Failure::Reject(e)) if e.contains("invalid event")
    ));
}
