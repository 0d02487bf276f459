use std::io::Write;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::*;
use crate::app::Collector;

const CONFIG: &str = "
agents:
  - token: web-token
    hosts: ['web-*']
rules:
  - name: disk_full
    metric: filesystem_used_ratio
    above: 0.9
  - name: host_down
    absent_for: 60s
";

struct Fixture {
    _dir: tempfile::TempDir,
    app: Router,
    _collector: Collector,
}

async fn fixture(config: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{config}\ndata_dir: {}\n", dir.path().display());
    let cfg = Config::from_yaml("test.yaml", &text).unwrap();
    let collector = Collector::start(cfg).await.unwrap();
    let app = router(collector.app_state());
    Fixture {
        _dir: dir,
        app,
        _collector: collector,
    }
}

fn batch(host: &str, seq: u64, used: f64) -> Value {
    let now = now_ms();
    json!({
        "version": 1,
        "agent": {"host": host, "version": "t", "labels": {"env": "test"}, "boot_id": "b1", "interval_s": 10},
        "seq": seq,
        "sent_at_ms": now,
        "samples": [{"name": "filesystem_used_ratio", "labels": {"mountpoint": "/"}, "ts_ms": now - 10, "value": used}],
    })
}

fn push_req(token: Option<&str>, body: Vec<u8>, gzip: bool) -> Request<Body> {
    let mut r = Request::post("/api/v1/push").header("content-type", "application/json");
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    if gzip {
        r = r.header("content-encoding", "gzip");
    }
    r.body(Body::from(body)).unwrap()
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, Value, axum::http::HeaderMap) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, v, headers)
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    let (s, v, _) = call(app, Request::get(uri).body(Body::empty()).unwrap()).await;
    (s, v)
}

async fn post(app: &Router, uri: &str, body: &str) -> (StatusCode, Value) {
    let (s, v, _) = call(
        app,
        Request::post(uri)
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await;
    (s, v)
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn push_opens_an_incident_and_the_api_serves_it() {
    let f = fixture(CONFIG).await;
    let body = serde_json::to_vec(&batch("web-01", 1, 0.95)).unwrap();
    let (s, v, _) = call(&f.app, push_req(Some("web-token"), gz(&body), true)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"accepted": 1, "ack_seq": 1}));

    let (s, list) = get(&f.app, "/api/v1/incidents").await;
    assert_eq!(s, StatusCode::OK);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    let i = &list[0];
    for key in [
        "id",
        "fingerprint",
        "origin",
        "rule",
        "host",
        "labels",
        "state",
        "priority",
        "impact",
        "urgency",
        "summary",
        "description",
        "value",
        "threshold",
        "started_at",
        "detected_at",
        "acknowledged_at",
        "restored_at",
        "resolved_at",
        "closed_at",
        "resolution",
        "occurrences",
        "problem_id",
        "flapping",
        "events",
    ] {
        assert!(i.get(key).is_some(), "incident JSON lacks {key}: {i}");
    }
    assert_eq!(i["state"], "open");
    assert_eq!(i["labels"], json!({"mountpoint": "/"}));
    assert_eq!(i["acknowledged_at"], Value::Null);
    assert!(i["detected_at"].as_str().unwrap().ends_with('Z'));
    let id = i["id"].as_i64().unwrap();

    let (s, one) = get(&f.app, &format!("/api/v1/incidents/{id}")).await;
    assert_eq!((s, &one["id"]), (StatusCode::OK, &json!(id)));

    let (s, acked) = post(
        &f.app,
        &format!("/api/v1/incidents/{id}/ack"),
        r#"{"note": "on it"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{acked}");
    assert_eq!(acked["state"], "acknowledged");
    assert_eq!(acked["events"][1]["note"], "on it");
    let (s, again) = post(&f.app, &format!("/api/v1/incidents/{id}/ack"), "").await;
    assert_eq!(s, StatusCode::CONFLICT, "{again}");
    assert!(again["error"].as_str().unwrap().contains("acknowledged"));

    let (s, open) = get(&f.app, "/api/v1/incidents?state=open").await;
    assert_eq!((s, open), (StatusCode::OK, json!([])));

    let (s, resolved) = post(&f.app, &format!("/api/v1/incidents/{id}/resolve"), "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (resolved["state"].as_str(), resolved["resolution"].as_str()),
        (Some("resolved"), Some("manual"))
    );

    let (s, _) = get(&f.app, "/api/v1/incidents/999").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = get(&f.app, "/api/v1/incidents?state=bogus").await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("state"))
    );
    let (s, v) = post(&f.app, &format!("/api/v1/incidents/{id}/ack"), "{not json").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test]
async fn push_rejections_change_no_state() {
    let f = fixture(CONFIG).await;
    let ok = serde_json::to_vec(&batch("web-01", 1, 0.95)).unwrap();

    let (s, v, _) = call(&f.app, push_req(None, ok.clone(), false)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (s, _, _) = call(&f.app, push_req(Some("wrong"), ok.clone(), false)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let db = serde_json::to_vec(&batch("db-01", 1, 0.95)).unwrap();
    let (s, v, _) = call(&f.app, push_req(Some("web-token"), db, false)).await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::FORBIDDEN, Some("agent.host"))
    );

    let mut bad = batch("web-01", 1, 0.95);
    bad["samples"][0]["labels"] = json!({"bad-label": "x"});
    let (s, v, _) = call(
        &f.app,
        push_req(Some("web-token"), serde_json::to_vec(&bad).unwrap(), false),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["field"], "samples[0].labels.bad-label");

    let big = vec![b' '; Limits::default().max_body_bytes + 1];
    let (s, v, _) = call(&f.app, push_req(Some("web-token"), big, false)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");

    let bomb = gz(&vec![b' '; 64 << 20]);
    let (s, _, _) = call(&f.app, push_req(Some("web-token"), bomb, true)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);

    let req = Request::post("/api/v1/push")
        .header("authorization", "Bearer web-token")
        .header("content-encoding", "br")
        .body(Body::from(ok.clone()))
        .unwrap();
    let (s, _, _) = call(&f.app, req).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let req = Request::post("/api/v1/push")
        .header("authorization", "Bearer web-token")
        .header("content-type", "text/plain")
        .body(Body::from(ok.clone()))
        .unwrap();
    let (s, _, _) = call(&f.app, req).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let (_, list) = get(&f.app, "/api/v1/incidents").await;
    assert_eq!(list, json!([]), "a rejected push changed state");
    let (_, metrics) = get(&f.app, "/metrics").await;
    let text = metrics.as_str().unwrap();
    assert!(!text.contains("vedette_host_up"), "{text}");
    for line in [
        "vedette_ingest_batches_total{outcome=\"unauthorized\"} 2",
        "vedette_ingest_batches_total{outcome=\"forbidden\"} 1",
        "vedette_ingest_batches_total{outcome=\"invalid\"} 1",
        "vedette_ingest_batches_total{outcome=\"too_large\"} 2",
        "vedette_ingest_batches_total{outcome=\"unsupported\"} 2",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
    }

    // The same batch twice: applied once.
    let (s, v, _) = call(&f.app, push_req(Some("web-token"), ok.clone(), false)).await;
    assert_eq!(
        (s, v),
        (StatusCode::OK, json!({"accepted": 1, "ack_seq": 1}))
    );
    let (s, v, _) = call(&f.app, push_req(Some("web-token"), ok, false)).await;
    assert_eq!(
        (s, v),
        (StatusCode::OK, json!({"accepted": 0, "ack_seq": 1}))
    );
    let (_, metrics) = get(&f.app, "/metrics").await;
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains("vedette_ingest_batches_total{outcome=\"duplicate\"} 1"),
        "{text}"
    );
    assert!(text.contains("vedette_ingest_samples_total 1\n"), "{text}");
    assert!(
        text.contains("vedette_host_up{host=\"web-01\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("vedette_filesystem_used_ratio{host=\"web-01\",mountpoint=\"/\"} 0.95"),
        "{text}"
    );
}

#[tokio::test]
async fn health_and_readiness() {
    let f = fixture(CONFIG).await;
    assert_eq!(get(&f.app, "/healthz").await.0, StatusCode::OK);
    assert_eq!(get(&f.app, "/readyz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn without_tokens_any_host_may_push_on_loopback() {
    let f = fixture("rules: []").await;
    let body = serde_json::to_vec(&batch("anything", 1, 0.1)).unwrap();
    let (s, _, _) = call(&f.app, push_req(None, body, false)).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn incident_api_is_closed_on_a_public_listener_without_api_tokens() {
    let f = fixture(&format!("listen: 0.0.0.0:0\ntls: off\n{CONFIG}")).await;
    let (s, v) = get(&f.app, "/api/v1/incidents").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(get(&f.app, "/metrics").await.0, StatusCode::OK);
}

const TOKENS: &str = "
api_tokens:
  - {name: grafana, token: view-secret, role: viewer}
  - {name: alice, token: op-secret, role: operator}
";

async fn call_as(
    app: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut r = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    let (s, v, _) = call(app, r.body(Body::from(body.to_string())).unwrap()).await;
    (s, v)
}

fn rfc(ms: i64) -> String {
    rfc3339(ms).unwrap()
}

#[tokio::test]
async fn every_endpoint_checks_token_and_role() {
    let f = fixture(&format!("{CONFIG}{TOKENS}")).await;
    let body = serde_json::to_vec(&batch("web-01", 1, 0.95)).unwrap();
    assert_eq!(
        call(&f.app, push_req(Some("web-token"), body, false))
            .await
            .0,
        StatusCode::OK
    );
    let now = now_ms();
    let change = json!({"title": "t", "scope": {"hosts": ["db-*"]},
        "start": rfc(now + 3_600_000), "end": rfc(now + 7_200_000)})
    .to_string();
    // (method, uri, body, needs operator)
    let endpoints: &[(&str, &str, &str, bool)] = &[
        ("GET", "/api/v1/incidents", "", false),
        ("GET", "/api/v1/incidents/1", "", false),
        ("GET", "/api/v1/problems", "", false),
        ("GET", "/api/v1/problems/1", "", false),
        ("GET", "/api/v1/changes", "", false),
        ("GET", "/api/v1/suppressions", "", false),
        ("POST", "/api/v1/incidents/1/ack", "", true),
        ("POST", "/api/v1/incidents/1/resolve", "", true),
        ("POST", "/api/v1/problems/1/resolve", "", true),
        ("POST", "/api/v1/changes", &change, true),
    ];
    for &(method, uri, body, write) in endpoints {
        let (s, v) = call_as(&f.app, method, uri, None, body).await;
        assert_eq!(
            s,
            StatusCode::UNAUTHORIZED,
            "{method} {uri} without token: {v}"
        );
        let (s, _) = call_as(&f.app, method, uri, Some("nope"), body).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {uri} unknown token");
        // An agent token is not an API token.
        let (s, _) = call_as(&f.app, method, uri, Some("web-token"), body).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {uri} agent token");
        let (s, v) = call_as(&f.app, method, uri, Some("view-secret"), body).await;
        if write {
            assert_eq!(s, StatusCode::FORBIDDEN, "{method} {uri} as viewer: {v}");
            assert!(
                v["error"]
                    .as_str()
                    .unwrap()
                    .contains("'grafana' is a viewer"),
                "{v}"
            );
        } else {
            assert_ne!(s, StatusCode::FORBIDDEN, "{method} {uri} as viewer: {v}");
            assert_ne!(s, StatusCode::UNAUTHORIZED, "{method} {uri} as viewer: {v}");
        }
        let (s, v) = call_as(&f.app, method, uri, Some("op-secret"), body).await;
        assert!(
            s != StatusCode::FORBIDDEN && s != StatusCode::UNAUTHORIZED,
            "{method} {uri} as operator: {s} {v}"
        );
    }
    // The operator's ack above is recorded under the token's name.
    let (s, v) = call_as(
        &f.app,
        "GET",
        "/api/v1/incidents/1",
        Some("view-secret"),
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let actors: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors, ["vedette", "alice", "alice"], "{v}");
    assert_eq!(v["state"], "resolved");
    assert_eq!(v["resolution"], "manual");
    // /metrics and health stay open for Prometheus and probes.
    assert_eq!(get(&f.app, "/metrics").await.0, StatusCode::OK);
    assert_eq!(get(&f.app, "/healthz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn changes_are_validated_created_and_listed() {
    let f = fixture(CONFIG).await;
    let now = now_ms();
    let h = 3_600_000;
    // (body, status, field)
    let bad: Vec<(Value, &str)> = vec![
        (
            json!({"title": "", "scope": {"hosts": ["*"]}, "start": rfc(now), "end": rfc(now + h)}),
            "title",
        ),
        (
            json!({"title": "t", "scope": {}, "start": rfc(now), "end": rfc(now + h)}),
            "scope",
        ),
        (
            json!({"title": "t", "scope": {"hosts": ["a[" ]}, "start": rfc(now), "end": rfc(now + h)}),
            "scope.hosts[0]",
        ),
        (
            json!({"title": "t", "scope": {"hosts": ["*"]}, "start": "tomorrow", "end": rfc(now + h)}),
            "start",
        ),
        (
            json!({"title": "t", "scope": {"hosts": ["*"]}, "start": rfc(now + h), "end": rfc(now)}),
            "end",
        ),
        (
            json!({"title": "t", "scope": {"hosts": ["*"]}, "start": rfc(now - 2 * h), "end": rfc(now - h)}),
            "end",
        ),
        (
            json!({"title": "t", "scope": {"hosts": ["*"]}, "start": rfc(now), "end": rfc(now + h), "verify_for": "soon"}),
            "verify_for",
        ),
        (
            json!({"title": "t", "scope": {"hosts": ["*"]}, "start": rfc(now), "end": rfc(now + 40 * 24 * h)}),
            "end",
        ),
    ];
    for (body, field) in bad {
        let (s, v) = post(&f.app, "/api/v1/changes", &body.to_string()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["field"], field, "{body}: {v}");
    }
    let (s, v) = post(&f.app, "/api/v1/changes", "{\"title\": 1}").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let body = json!({"title": "kernel update", "scope": {"hosts": ["web-*"], "host_labels": {"env": "test"}},
        "start": rfc(now - 1000), "end": rfc(now + h), "verify_for": "15m"});
    let (s, v) = post(&f.app, "/api/v1/changes", &body.to_string()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["state"], "in_progress");
    assert_eq!(v["verify_for"], "15m");
    assert_eq!(v["created_by"], "api");
    assert_eq!(v["scope"]["host_labels"]["env"], "test");
    // A breach in scope is now suppressed and listed.
    let push = serde_json::to_vec(&batch("web-01", 1, 0.95)).unwrap();
    assert_eq!(
        call(&f.app, push_req(Some("web-token"), push, false))
            .await
            .0,
        StatusCode::OK
    );
    let (_, incidents) = get(&f.app, "/api/v1/incidents").await;
    assert_eq!(incidents.as_array().unwrap().len(), 0, "{incidents}");
    let (s, sup) = get(&f.app, "/api/v1/suppressions").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(sup[0]["host"], "web-01");
    assert_eq!(sup[0]["window_kind"], "change");
    assert_eq!(sup[0]["window"], "kernel update");
    assert_eq!(sup[0]["change_id"], v["id"]);
    let (s, list) = get(&f.app, "/api/v1/changes").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list[0]["title"], "kernel update");
}

#[tokio::test]
async fn problems_are_listed_shown_and_resolved() {
    let f = fixture(&format!(
        "{CONFIG}incidents: {{reopen_within: 0s, problem_after: {{count: 2, within: 1h}}}}\n"
    ))
    .await;
    let mut seq = 0;
    let mut push = |used: f64| {
        seq += 1;
        serde_json::to_vec(&batch("web-01", seq, used)).unwrap()
    };
    for used in [0.95, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.95] {
        let (s, _, _) = call(&f.app, push_req(Some("web-token"), push(used), false)).await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, v) = get(&f.app, "/api/v1/problems?state=open").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    let p = &v[0];
    assert_eq!(p["incident_ids"], json!([1, 2]));
    assert_eq!(p["rule"], "disk_full");
    assert!(p["resolved_at"].is_null());
    let (_, i) = get(&f.app, "/api/v1/incidents/2").await;
    assert_eq!(i["problem_id"], p["id"]);
    assert_eq!(
        get(&f.app, "/api/v1/problems/1").await.1["fingerprint"],
        i["fingerprint"]
    );
    assert_eq!(
        get(&f.app, "/api/v1/problems/9").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&f.app, "/api/v1/problems?state=nope").await.0,
        StatusCode::BAD_REQUEST
    );
    let (s, r) = post(
        &f.app,
        "/api/v1/problems/1/resolve",
        r#"{"note": "bigger disk"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (r["state"].as_str(), r["note"].as_str()),
        (Some("resolved"), Some("bigger disk"))
    );
    assert_eq!(
        post(&f.app, "/api/v1/problems/1/resolve", "").await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        post(&f.app, "/api/v1/problems/9/resolve", "").await.0,
        StatusCode::NOT_FOUND
    );
    let (_, m) = get(&f.app, "/metrics").await;
    assert!(
        m.as_str().unwrap().contains("vedette_problems_open 0"),
        "{m}"
    );
}

#[tokio::test]
async fn the_alertmanager_webhook_needs_an_operator_and_a_well_formed_body() {
    let f = fixture(&format!("{CONFIG}{TOKENS}")).await;
    let body = |status: &str, alertname: &str| {
        json!({
            "version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0, "status": status,
            "receiver": "vedette", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://am:9093",
            "alerts": [{
                "status": status,
                "labels": {"alertname": alertname, "instance": "db-1:9100", "severity": "critical"},
                "annotations": {"summary": "db-1 is down"},
                "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prom/graph", "fingerprint": "abc"
            }]
        })
        .to_string()
    };
    let uri = "/api/v1/alertmanager";
    let (s, _) = call_as(
        &f.app,
        "POST",
        uri,
        Some("view-secret"),
        &body("firing", "NodeDown"),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "viewers cannot open incidents");
    let (s, _) = call_as(&f.app, "POST", uri, None, &body("firing", "NodeDown")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    for (bad, field) in [
        (
            body("firing", "NodeDown").replace("\"4\"", "\"3\""),
            "version",
        ),
        (body("firing", ""), "alerts[0].labels.alertname"),
        (body("pending", "NodeDown"), "alerts[0].status"),
        (
            body("firing", "NodeDown").replace("2026-01-01T00:00:00Z", "yesterday"),
            "alerts[0].startsAt",
        ),
    ] {
        let (s, v) = call_as(&f.app, "POST", uri, Some("op-secret"), &bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(v["field"], field, "{v}");
    }
    let (s, v) = call_as(&f.app, "POST", uri, Some("op-secret"), "{not json").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("webhook JSON"), "{v}");
    let (_, list) = call_as(&f.app, "GET", "/api/v1/incidents", Some("view-secret"), "").await;
    assert_eq!(
        list.as_array().unwrap().len(),
        0,
        "refused calls change nothing"
    );
    let (s, v) = call_as(
        &f.app,
        "POST",
        uri,
        Some("op-secret"),
        &body("firing", "NodeDown"),
    )
    .await;
    assert_eq!((s, v["opened"].as_u64()), (StatusCode::OK, Some(1)), "{v}");
    let (_, list) = call_as(&f.app, "GET", "/api/v1/incidents", Some("view-secret"), "").await;
    assert_eq!(list[0]["rule"], "NodeDown");
    assert_eq!(list[0]["priority"], 1);
    assert_eq!(list[0]["labels"]["source"], "alertmanager");
    assert_eq!(list[0]["origin"], "alertmanager");
    let (s, v) = call_as(
        &f.app,
        "POST",
        uri,
        Some("op-secret"),
        &body("resolved", "NodeDown"),
    )
    .await;
    assert_eq!(
        (s, v["resolved"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{v}"
    );
}

#[tokio::test]
async fn a_push_over_a_limit_is_refused_naming_the_limit_and_counted() {
    let f = fixture(&format!(
        "{CONFIG}\nlimits: {{series_per_host: 1, hosts_per_token: 1}}\n"
    ))
    .await;
    let body = serde_json::to_vec(&batch("web-01", 1, 0.5)).unwrap();
    let (s, v, _) = call(&f.app, push_req(Some("web-token"), body, false)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut two = batch("web-01", 2, 0.5);
    let mut var = two["samples"][0].clone();
    var["labels"]["mountpoint"] = json!("/var");
    two["samples"].as_array_mut().unwrap().push(var);
    let (s, v, _) = call(
        &f.app,
        push_req(Some("web-token"), serde_json::to_vec(&two).unwrap(), false),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["limit"], "series_per_host");
    assert_eq!(v["field"], "samples");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("limits.series_per_host (1)"),
        "names the limit and the fix: {v}"
    );
    // A second host for the same token: 429 with Retry-After.
    let body = serde_json::to_vec(&batch("web-02", 1, 0.5)).unwrap();
    let (s, v, headers) = call(&f.app, push_req(Some("web-token"), body, false)).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["limit"], "hosts_per_token");
    assert!(headers.contains_key("retry-after"));
    let (_, text) = get(&f.app, "/metrics").await;
    let text = text.as_str().unwrap().to_string();
    for line in [
        "vedette_ingest_limited_total{limit=\"series_per_host\"} 1",
        "vedette_ingest_limited_total{limit=\"hosts_per_token\"} 1",
        "vedette_ingest_limited_total{limit=\"series_total\"} 0",
        "vedette_ingest_batches_total{outcome=\"limited\"} 2",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}");
    }
}

#[tokio::test]
async fn metrics_token_guards_metrics_but_not_health() {
    let f = fixture(&format!("{CONFIG}\nmetrics_token: {{token: scrape-me}}\n")).await;
    let (s, _) = get(&f.app, "/metrics").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = call(
        &f.app,
        Request::get("/metrics")
            .header("authorization", "Bearer web-token")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "an agent token is not the metrics token"
    );
    let (s, v, _) = call(
        &f.app,
        Request::get("/metrics")
            .header("authorization", "Bearer scrape-me")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(v.as_str().unwrap().contains("vedette_ingest_batches_total"));
    assert_eq!(get(&f.app, "/healthz").await.0, StatusCode::OK);
    assert_eq!(get(&f.app, "/readyz").await.0, StatusCode::OK);
}

/// A collector with mutual TLS whose token `bound` works only with `web-*`
/// certificates (the router is driven directly: the certificate's names
/// arrive as the listener would attach them).
async fn bound_fixture() -> (Fixture, tempfile::TempDir) {
    let pki = tempfile::tempdir().unwrap();
    crate::tls::init::run(&crate::tls::init::Request {
        dir: pki.path().to_path_buf(),
        hosts: vec!["collector.test".into()],
        agents: vec![],
        days: 30,
    })
    .unwrap();
    let p = pki.path().display();
    let f = fixture(&format!(
        "tls: {{cert_file: {p}/server.pem, key_file: {p}/server-key.pem, client_ca_file: {p}/ca.pem, client_auth: require}}\n\
         agents:\n  - {{token: bound, hosts: ['*'], cert_names: ['web-*']}}\nrules: []\n"
    ))
    .await;
    (f, pki)
}

fn push_with_cert(names: Option<&[&str]>) -> Request<Body> {
    let body = serde_json::to_vec(&batch("web-01", 1, 0.5)).unwrap();
    let mut r = push_req(Some("bound"), body, false);
    if let Some(n) = names {
        r.extensions_mut().insert(crate::tls::PeerCert {
            dns_names: n.iter().map(|s| s.to_string()).collect::<Vec<_>>().into(),
        });
    }
    r
}

#[tokio::test]
async fn a_token_bound_to_certificate_names_needs_a_matching_certificate() {
    let (f, _pki) = bound_fixture().await;
    let (s, v, _) = call(&f.app, push_with_cert(Some(&["web-01"]))).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let (s, v, _) = call(&f.app, push_with_cert(None)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        v["error"],
        "this token is bound to client certificates named web-*; the connection presented no client certificate"
    );
    let (s, v, _) = call(&f.app, push_with_cert(Some(&[]))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .ends_with("carries no DNS name"),
        "{v}"
    );

    // Hostile names: control bytes never come back, and the list is bounded.
    let long = "x".repeat(1000);
    let names = ["db\u{1b}[31m-01", "a\nb", &long, "c", "d", "e", "f"];
    let (s, v, _) = call(&f.app, push_with_cert(Some(&names))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let e = v["error"].as_str().unwrap();
    assert!(
        e.starts_with("this token is bound to client certificates named web-*; the client certificate names db??31m-01, a?b, xxx"),
        "{e}"
    );
    assert!(e.ends_with(", c, d, … 2 more"), "{e}");
    assert!(!e.chars().any(char::is_control), "{e:?}");
    assert!(e.len() < 500, "{}", e.len());
}

#[tokio::test]
async fn hosts_are_listed_by_name_with_state_checks_metrics_and_live_incidents() {
    let f = fixture(CONFIG).await;
    let now = now_ms();
    for (host, used) in [("web-02", 0.5), ("web-01", 0.95), ("web-03", 0.2)] {
        let mut b = batch(host, 1, used);
        b["samples"].as_array_mut().unwrap().extend([
            json!({"name": "filesystem_used_ratio", "labels": {"mountpoint": "/var"}, "ts_ms": now - 10, "value": used / 2.0}),
            json!({"name": "cpu_usage_ratio", "ts_ms": now - 10, "value": 0.25}),
        ]);
        b["agent"]["labels"]["note"] = json!("<script>alert(1)</script>");
        b["checks"] = json!([{"name": "api", "kind": "http", "ts_ms": now - 10, "status": "critical", "message": "HTTP 500", "latency_s": 0.1}]);
        let (s, v, _) = call(
            &f.app,
            push_req(Some("web-token"), serde_json::to_vec(&b).unwrap(), false),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (s, v) = get(&f.app, "/api/v1/hosts").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web-01", "web-02", "web-03"]);
    let h = &v[0];
    assert_eq!(h["state"], "up");
    assert_eq!(
        h["labels"]["note"], "<script>alert(1)</script>",
        "data, not markup"
    );
    assert_eq!(h["cpu_usage_ratio"], 0.25);
    assert_eq!(
        h["fullest_filesystem"],
        json!({"mountpoint": "/", "used_ratio": 0.95})
    );
    assert_eq!(h["checks"][0]["name"], "api");
    assert_eq!(h["checks"][0]["status"], "critical");
    assert_eq!(
        h["live_incidents"].as_array().unwrap().len(),
        1,
        "disk_full on web-01: {h}"
    );
    assert_eq!(v[1]["live_incidents"], json!([]));
    assert!(h["last_seen"].as_str().unwrap().ends_with('Z'));

    // Paging by name, and the state filter.
    let (_, page) = get(&f.app, "/api/v1/hosts?limit=1&after=web-01").await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["name"], "web-02");
    let (_, up) = get(&f.app, "/api/v1/hosts?state=up").await;
    assert_eq!(up.as_array().unwrap().len(), 3);
    let (_, down) = get(&f.app, "/api/v1/hosts?state=down").await;
    assert_eq!(down, json!([]));
    for bad in [
        "/api/v1/hosts?state=sideways",
        "/api/v1/hosts?limit=-1",
        "/api/v1/hosts?limit=99999999999999999999999",
    ] {
        let (s, v) = get(&f.app, bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_and_every_path_is_routed() {
    let doc: serde_yaml::Value = serde_yaml::from_str(OPENAPI).unwrap();
    let paths = doc["paths"].as_mapping().unwrap();
    // Every route the router declares (read from its source) is described.
    let source = include_str!("mod.rs");
    let routed: Vec<&str> = source
        .split(".route(")
        .skip(1)
        .filter_map(|r| r.trim_start().strip_prefix('"')?.split('"').next())
        .collect();
    assert!(routed.len() >= 15, "{routed:?}");
    for r in &routed {
        assert!(
            paths.contains_key(*r),
            "{r} is routed but not in openapi.yaml"
        );
    }
    // Every described path and method reaches a handler (no 404 of an
    // unknown route, no 405), and the served document is that one.
    let f = fixture(CONFIG).await;
    let mut operations = 0;
    for (path, item) in paths {
        let path = path.as_str().unwrap();
        assert!(routed.contains(&path), "{path} is described but not routed");
        for method in item.as_mapping().unwrap().keys() {
            let method = method.as_str().unwrap().to_ascii_uppercase();
            let uri = path.replace("{id}", "1");
            let req = Request::builder()
                .method(method.as_str())
                .uri(&uri)
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap();
            let resp = f.app.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let json = resp
                .headers()
                .get("content-type")
                .is_some_and(|v| v.to_str().unwrap().starts_with("application/json"));
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
            assert!(
                status != StatusCode::NOT_FOUND || json,
                "{method} {uri}: no route"
            );
            operations += 1;
        }
    }
    assert!(operations >= 18, "{operations}");
    let (s, served) = get(&f.app, "/api/v1/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(served, serde_json::to_value(&doc).unwrap());
}

#[tokio::test]
async fn errors_the_framework_answers_are_json_too() {
    let f = fixture(CONFIG).await;
    for uri in [
        "/api/v1/incidents/abc",
        "/api/v1/incidents?limit=-1",
        "/api/v1/hosts?bogus=1",
        "/api/v1/problems/99999999999999999999999",
    ] {
        let resp = f
            .app
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(resp.headers()["content-type"], "application/json", "{uri}");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert!(!v["error"].as_str().unwrap().is_empty(), "{uri}: {v}");
    }
}

#[tokio::test]
async fn a_note_goes_on_the_timeline_in_any_state_and_tells_no_receiver() {
    let f = fixture(&format!(
        "{CONFIG}{TOKENS}notify:\n  - {{name: hook, kind: webhook, url: 'http://127.0.0.1:9/x'}}\n"
    ))
    .await;
    let body = serde_json::to_vec(&batch("web-01", 1, 0.95)).unwrap();
    assert_eq!(
        call(&f.app, push_req(Some("web-token"), body, false))
            .await
            .0,
        StatusCode::OK
    );
    let deliveries = |v: &Value| v["deliveries"].as_array().map_or(0, Vec::len);
    let (_, before) = call_as(
        &f.app,
        "GET",
        "/api/v1/incidents/1",
        Some("view-secret"),
        "",
    )
    .await;
    let (s, v) = call_as(
        &f.app,
        "POST",
        "/api/v1/incidents/1/notes",
        Some("op-secret"),
        r#"{"note": "  disk grows 2 GB/h  "}"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "open", "a note changes no state");
    let last = v["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        last,
        json!({"at": last["at"], "kind": "noted", "actor": "alice", "note": "disk grows 2 GB/h"})
    );
    let (_, after) = call_as(
        &f.app,
        "GET",
        "/api/v1/incidents/1",
        Some("view-secret"),
        "",
    )
    .await;
    assert_eq!(
        deliveries(&after),
        deliveries(&before),
        "no receiver is told of a note"
    );
    // On a resolved incident too; the engine keeps it resolved.
    let (s, _) = call_as(
        &f.app,
        "POST",
        "/api/v1/incidents/1/resolve",
        Some("op-secret"),
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = call_as(
        &f.app,
        "POST",
        "/api/v1/incidents/1/notes",
        Some("op-secret"),
        r#"{"note": "root cause: log rotation"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "resolved");
    assert_eq!(
        v["events"].as_array().unwrap().last().unwrap()["kind"],
        "noted"
    );
    // Refused: no note, a viewer, an unknown incident.
    for (token, body, uri, want) in [
        (
            "op-secret",
            r#"{"note": "   "}"#,
            "/api/v1/incidents/1/notes",
            StatusCode::BAD_REQUEST,
        ),
        (
            "op-secret",
            "",
            "/api/v1/incidents/1/notes",
            StatusCode::BAD_REQUEST,
        ),
        (
            "view-secret",
            r#"{"note": "x"}"#,
            "/api/v1/incidents/1/notes",
            StatusCode::FORBIDDEN,
        ),
        (
            "op-secret",
            r#"{"note": "x"}"#,
            "/api/v1/incidents/99/notes",
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (s, v) = call_as(&f.app, "POST", uri, Some(token), body).await;
        assert_eq!(s, want, "{token} {body} {uri}: {v}");
    }
}
