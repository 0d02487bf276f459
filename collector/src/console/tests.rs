use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::*;
use crate::app::Collector;

const TOKENS: &str = "
agents: [{token: agent-token, hosts: ['*']}]
api_tokens:
  - {name: alice, token: op-token, role: operator}
  - {name: bob, token: view-token, role: viewer}
rules:
  - {name: disk_full, metric: filesystem_used_ratio, above: 0.9}
";

struct Fixture {
    _dir: tempfile::TempDir,
    app: Router,
    _collector: Collector,
}

async fn fixture(config: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{config}\ndata_dir: {}\n", dir.path().display());
    let cfg = crate::config::Config::from_yaml("test.yaml", &text).unwrap();
    let collector = Collector::start(cfg).await.unwrap();
    let state = collector.app_state();
    let app = crate::api::router(state.clone()).merge(router(state));
    Fixture {
        _dir: dir,
        app,
        _collector: collector,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn send(app: &Router, req: Request<Body>) -> Answer {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn get(app: &Router, uri: &str, cookie: Option<&str>) -> Answer {
    let mut r = Request::get(uri);
    if let Some(c) = cookie {
        r = r.header("cookie", format!("{}={c}", session::COOKIE));
    }
    send(app, r.body(Body::empty()).unwrap()).await
}

async fn post(app: &Router, uri: &str, cookie: Option<&str>, form: &str) -> Answer {
    let mut r = Request::post(uri).header("content-type", "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        r = r.header("cookie", format!("{}={c}", session::COOKIE));
    }
    send(app, r.body(Body::from(form.to_string())).unwrap()).await
}

/// The session cookie a successful login sets.
async fn login(app: &Router, token: &str) -> String {
    let a = post(app, "/login", None, &format!("token={token}&next=%2F")).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let set = a.headers["set-cookie"].to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    set.split(';')
        .next()
        .and_then(|c| c.strip_prefix("vedette_session="))
        .unwrap()
        .to_string()
}

/// The CSRF token in a page's forms.
fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[at..at + 64].to_string()
}

/// Opens an incident on `host` whose labels and summary carry markup.
async fn breach(app: &Router, host: &str, seq: u64) {
    let now = now_ms();
    let b = json!({
        "version": 1,
        "agent": {"host": host, "version": "t", "labels": {"role": "<script>alert(1)</script>"}, "boot_id": "b", "interval_s": 10},
        "seq": seq, "sent_at_ms": now,
        "samples": [{"name": "filesystem_used_ratio", "labels": {"mountpoint": "/<img src=x onerror=alert(1)>"}, "ts_ms": now, "value": 0.95}],
    });
    let r = Request::post("/api/v1/push")
        .header("authorization", "Bearer agent-token")
        .header("content-type", "application/json")
        .body(Body::from(b.to_string()))
        .unwrap();
    assert_eq!(send(app, r).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_person_logs_in_once_and_the_session_carries_every_page() {
    let f = fixture(TOKENS).await;
    let a = get(&f.app, "/incidents?state=open", None).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.headers["location"], "/login?next=%2Fincidents");
    let a = get(&f.app, "/login", None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("type=\"password\""));
    let a = post(&f.app, "/login", None, "token=wrong&next=%2F").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.headers.get("set-cookie").is_none());
    // A login never sends anyone to another site.
    for next in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let a = post(
            &f.app,
            "/login",
            None,
            &format!("token=op-token&next={}", encode(next)),
        )
        .await;
        assert_eq!(a.headers["location"], "/", "{next}");
    }
    let cookie = login(&f.app, "op-token").await;
    breach(&f.app, "web-01", 1).await;
    for uri in [
        "/",
        "/?fragment=live",
        "/incidents",
        "/incidents/1",
        "/hosts",
        "/hosts/web-01",
        "/services",
        "/problems",
        "/changes",
    ] {
        let a = get(&f.app, uri, Some(&cookie)).await;
        assert_eq!(a.status, StatusCode::OK, "{uri}: {}", a.body);
        assert_eq!(a.headers["content-security-policy"], CSP, "{uri}");
        assert_eq!(a.headers["content-type"], "text/html; charset=utf-8");
        assert!(a.body.len() < 100 * 1024, "{uri}: {} bytes", a.body.len());
    }
    // A forged or stale cookie is a login again.
    let a = get(&f.app, "/", Some(&format!("{cookie}0"))).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    // Logging out needs the form's token, then the cookie is cleared.
    let page = get(&f.app, "/", Some(&cookie)).await.body;
    let a = post(
        &f.app,
        "/logout",
        Some(&cookie),
        &format!("csrf={}", csrf(&page)),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert!(a.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
}

#[tokio::test]
async fn agent_controlled_strings_are_text_never_markup() {
    let f = fixture(TOKENS).await;
    let cookie = login(&f.app, "view-token").await;
    breach(&f.app, "web-01", 1).await;
    for uri in ["/", "/incidents", "/incidents/1", "/hosts", "/hosts/web-01"] {
        let body = get(&f.app, uri, Some(&cookie)).await.body;
        assert!(!body.contains("<script>alert"), "{uri}");
        assert!(!body.contains("<img src=x"), "{uri}");
        assert_eq!(
            body.matches("<script").count(),
            1,
            "{uri}: only our own script tag"
        );
    }
    let host = get(&f.app, "/hosts/web-01", Some(&cookie)).await.body;
    assert!(
        host.contains("role=&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{host}"
    );
}

#[tokio::test]
async fn a_viewer_sees_no_write_controls_and_cannot_post() {
    let f = fixture(TOKENS).await;
    breach(&f.app, "web-01", 1).await;
    let viewer = login(&f.app, "view-token").await;
    for uri in ["/incidents", "/incidents/1", "/changes"] {
        let body = get(&f.app, uri, Some(&viewer)).await.body;
        assert!(!body.contains("Acknowledge"), "{uri}");
        assert!(!body.contains("Resolve"), "{uri}");
        assert!(!body.contains("type=\"checkbox\""), "{uri}");
        assert!(!body.contains("Record a change"), "{uri}");
        assert!(!body.contains("Add note"), "{uri}");
    }
    // Even with the session's own CSRF token, a viewer's post is refused.
    let token = csrf(&get(&f.app, "/", Some(&viewer)).await.body);
    let a = post(
        &f.app,
        "/incidents/1/ack",
        Some(&viewer),
        &format!("csrf={token}&note=x"),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("is a viewer"), "{}", a.body);
    let operator = login(&f.app, "op-token").await;
    // The operator's post needs the operator's own form token…
    for (form, why) in [
        ("note=x", "none"),
        (format!("csrf={token}&note=x").as_str(), "another session's"),
    ] {
        let a = post(&f.app, "/incidents/1/ack", Some(&operator), form).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{why}");
    }
    // …and not from another site.
    let own = csrf(&get(&f.app, "/incidents/1", Some(&operator)).await.body);
    let r = Request::post("/incidents/1/ack")
        .header("cookie", format!("{}={operator}", session::COOKIE))
        .header("sec-fetch-site", "cross-site")
        .body(Body::from(format!("csrf={own}&note=x")))
        .unwrap();
    assert_eq!(send(&f.app, r).await.status, StatusCode::FORBIDDEN);
    // Nothing above changed the incident.
    let i = get(&f.app, "/incidents/1", Some(&operator)).await.body;
    assert!(i.contains("s-open"), "{i}");
    let a = post(
        &f.app,
        "/incidents/1/ack",
        Some(&operator),
        &format!("csrf={own}&note=on+it"),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let api = Request::get("/api/v1/incidents/1")
        .header("authorization", "Bearer view-token")
        .body(Body::empty())
        .unwrap();
    let v: Value = serde_json::from_str(&send(&f.app, api).await.body).unwrap();
    assert_eq!(v["state"], "acknowledged");
    let ev = v["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(ev["actor"], "alice");
    assert_eq!(ev["note"], "on it");
}

#[tokio::test]
async fn a_bulk_action_needs_a_note_and_acts_on_each_selected_incident() {
    let f = fixture(TOKENS).await;
    breach(&f.app, "web-01", 1).await;
    breach(&f.app, "web-02", 1).await;
    let operator = login(&f.app, "op-token").await;
    let page = get(&f.app, "/incidents", Some(&operator)).await.body;
    assert_eq!(page.matches("type=\"checkbox\"").count(), 2);
    let token = csrf(&page);
    let a = post(
        &f.app,
        "/incidents/bulk",
        Some(&operator),
        &format!("csrf={token}&id=1&id=2&action=resolve&note="),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("needs a note"));
    let a = post(
        &f.app,
        "/incidents/bulk",
        Some(&operator),
        &format!("csrf={token}&id=1&id=2&id=99&action=resolve&note=disk+cleaned"),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let done = a.headers["location"].to_str().unwrap().to_string();
    let shown = get(&f.app, &done, Some(&operator)).await.body;
    assert!(shown.contains("2 resolved; 1 not: #99"), "{shown}");
    let resolved = get(&f.app, "/incidents?state=resolved", Some(&operator))
        .await
        .body;
    assert!(resolved.contains("2 incidents"), "{resolved}");
}

#[tokio::test]
async fn without_api_tokens_the_console_is_open_on_loopback_only() {
    let f = fixture("agents: [{token: agent-token, hosts: ['*']}]\nrules: [{name: disk_full, metric: filesystem_used_ratio, above: 0.9}]\n").await;
    breach(&f.app, "web-01", 1).await;
    let a = get(&f.app, "/incidents/1", None).await;
    assert_eq!(a.status, StatusCode::OK);
    // The first visit gets a session, so its forms carry a CSRF token.
    let set = a.headers["set-cookie"].to_str().unwrap();
    let cookie = set
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("vedette_session=")
        .unwrap();
    let token = csrf(&a.body);
    assert!(!a.body.contains("Log out"));
    let forged = post(&f.app, "/incidents/1/ack", None, &format!("csrf={token}")).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "no session, no post");
    let ok = post(
        &f.app,
        "/incidents/1/ack",
        Some(cookie),
        &format!("csrf={token}&note=x"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);

    let public = fixture("listen: 0.0.0.0:0\ntls: off\nagents: [{token: a, hosts: ['*']}]\n").await;
    let a = get(&public.app, "/", None).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("open only on a loopback listener"));
}

#[tokio::test]
async fn filters_and_paging_bound_what_is_read() {
    let f = fixture(TOKENS).await;
    for i in 0..60 {
        breach(&f.app, &format!("web-{i:02}"), 1).await;
    }
    let cookie = login(&f.app, "op-token").await;
    let page = get(&f.app, "/incidents", Some(&cookie)).await.body;
    assert!(page.contains("60 incidents, page 1 of 2"), "{page}");
    assert_eq!(page.matches("type=\"checkbox\"").count(), 50);
    assert!(page.contains("rel=\"next\""));
    let two = get(&f.app, "/incidents?page=2", Some(&cookie)).await.body;
    assert_eq!(two.matches("type=\"checkbox\"").count(), 10);
    let glob = get(&f.app, "/incidents?host=web-1*&sort=host", Some(&cookie))
        .await
        .body;
    assert!(glob.contains("10 incidents"), "{glob}");
    let text = get(&f.app, "/incidents?q=WEB-05", Some(&cookie)).await.body;
    assert!(text.contains("1 incident."), "{text}");
    for bad in [
        "/incidents?priority=9",
        "/incidents?sort=evil",
        "/incidents?from=yesterday",
        "/incidents?state=x",
        "/incidents?page=abc",
    ] {
        assert_eq!(
            get(&f.app, bad, Some(&cookie)).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    // A SQL-looking filter is a value, not SQL.
    let sql = get(
        &f.app,
        "/incidents?host=%27%20OR%201%3D1%20--",
        Some(&cookie),
    )
    .await
    .body;
    assert!(sql.contains("0 incidents"), "{sql}");
}

#[tokio::test]
async fn the_status_page_is_public_cacheable_and_names_no_host() {
    let f = fixture(&format!(
        "{TOKENS}services:\n  - {{name: shop, target: 0.999, hosts: ['web-*'], checks: [api]}}\n\
         status_page: {{title: Example shop status, services: [shop]}}\n"
    ))
    .await;
    let now = now_ms();
    for (host, status) in [("web-01", "ok"), ("web-02", "critical")] {
        let b = json!({
            "version": 1,
            "agent": {"host": host, "version": "t", "boot_id": "b", "interval_s": 10},
            "seq": 1, "sent_at_ms": now,
            "samples": [{"name": "filesystem_used_ratio", "ts_ms": now, "value": 0.99}],
            "checks": [{"name": "api", "kind": "http", "ts_ms": now, "status": status, "message": "secret-internal-detail on web-02", "latency_s": 0.1}],
        });
        let r = Request::post("/api/v1/push")
            .header("authorization", "Bearer agent-token")
            .header("content-type", "application/json")
            .body(Body::from(b.to_string()))
            .unwrap();
        assert_eq!(send(&f.app, r).await.status, StatusCode::OK);
    }
    // Days past the 30 of availability changes come from the daily totals.
    let day = 86_400_000;
    let midnight = now - now.rem_euclid(day);
    let db = rusqlite::Connection::open(f._dir.path().join("vedette.db")).unwrap();
    for (ago, up, down) in [(60, day / 2, day / 2), (80, day, 0)] {
        db.execute(
            "INSERT INTO service_days VALUES ('shop', ?1, ?2, ?3, 0, 0)",
            rusqlite::params![midnight - ago * day, up, down],
        )
        .unwrap();
    }
    let a = get(&f.app, "/status", None).await;
    assert_eq!(a.status, StatusCode::OK, "no login needed");
    let classes: Vec<&str> = a
        .body
        .split("<rect class=\"")
        .skip(1)
        .filter_map(|r| r.split('"').next())
        .collect();
    assert_eq!(classes.len(), 90);
    assert_eq!(classes[89 - 60], "down", "{classes:?}");
    assert_eq!(classes[89 - 80], "up", "{classes:?}");
    assert_eq!(classes[89 - 70], "unknown", "{classes:?}");
    assert!(a.body.contains("90 days ago"), "{}", a.body);
    assert_eq!(a.headers["cache-control"], "public, max-age=30");
    assert!(a.body.contains("Example shop status"));
    assert!(
        a.body.contains("shop") && a.body.contains("Down"),
        "{}",
        a.body
    );
    assert!(a.body.contains("1 of 1 services are down"), "{}", a.body);
    assert!(a.body.contains("2 open incidents since"), "{}", a.body);
    for hidden in ["web-0", "secret-internal-detail", "disk_full", "filesystem"] {
        assert!(!a.body.contains(hidden), "{hidden} is on the public page");
    }
    assert_eq!(a.body.matches("<rect").count(), crate::kpi::STATUS_DAYS);

    let off = fixture(TOKENS).await;
    assert_eq!(
        get(&off.app, "/status", None).await.status,
        StatusCode::NOT_FOUND
    );
    let e = crate::config::Config::from_yaml("c.yaml", "status_page: {services: [nope]}\n")
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("status_page.services[0]: 'nope' is not one of the services"),
        "{e}"
    );
}

#[tokio::test]
async fn services_draw_their_days_and_changes_list_maintenance() {
    let f = fixture(&format!(
        "{TOKENS}services:\n  - {{name: shop, target: 0.999, hosts: ['web-*'], checks: [api]}}\n\
         maintenance:\n  - name: sunday-patching\n    scope: {{hosts: ['web-*']}}\n    schedule: {{timezone: Europe/Berlin, weekly: [{{day: sun, start: '02:00', duration: 2h}}]}}\n"
    ))
    .await;
    let cookie = login(&f.app, "view-token").await;
    let services = get(&f.app, "/services", Some(&cookie)).await.body;
    assert!(services.contains("<svg class=\"days\""), "{services}");
    assert_eq!(services.matches("<rect").count(), crate::kpi::HISTORY_DAYS);
    let changes = get(&f.app, "/changes", Some(&cookie)).await.body;
    assert!(
        changes.contains("sunday-patching") && changes.contains("Europe&#x2f;Berlin"),
        "{changes}"
    );
    assert_eq!(
        changes.matches("<time").count(),
        2,
        "one Sunday in the coming week: start and end"
    );
}

#[tokio::test]
async fn an_operator_notes_a_resolved_incident_and_enter_adds_a_note_not_an_ack() {
    let f = fixture(TOKENS).await;
    breach(&f.app, "web-01", 1).await;
    let operator = login(&f.app, "op-token").await;
    let page = get(&f.app, "/incidents/1", Some(&operator)).await.body;
    // The form's own action (what Enter submits) is the note, the safe one.
    assert!(
        page.contains("<form method=\"post\" action=\"/incidents/1/note\""),
        "{page}"
    );
    let first = page.find("Add note").unwrap();
    assert!(
        first < page.find(">Acknowledge<").unwrap(),
        "Add note is the first button"
    );
    let token = csrf(&page);
    let a = post(
        &f.app,
        "/incidents/1/resolve",
        Some(&operator),
        &format!("csrf={token}&note="),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let page = get(&f.app, "/incidents/1", Some(&operator)).await.body;
    assert!(
        page.contains("Add note") && !page.contains(">Resolve<"),
        "a resolved incident takes notes only"
    );
    let a = post(
        &f.app,
        "/incidents/1/note",
        Some(&operator),
        &format!("csrf={token}&note="),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "an empty note");
    let a = post(
        &f.app,
        "/incidents/1/note",
        Some(&operator),
        &format!("csrf={token}&note=%3Cb%3Elog+rotation%3C%2Fb%3E"),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let page = get(&f.app, "/incidents/1", Some(&operator)).await.body;
    assert!(
        page.contains("<strong>noted</strong> by <span class=\"actor\">alice</span>"),
        "{page}"
    );
    assert!(
        page.contains("&lt;b&gt;log rotation&lt;&#x2f;b&gt;"),
        "the note is text: {page}"
    );
    assert!(page.contains("s-resolved"), "still resolved");
}

#[tokio::test]
async fn an_incident_names_the_changes_and_windows_that_covered_its_alert() {
    let f = fixture(TOKENS).await;
    breach(&f.app, "web-01", 1).await;
    let operator = login(&f.app, "op-token").await;
    let page = get(&f.app, "/incidents/1", Some(&operator)).await.body;
    assert!(!page.contains("Covered by"), "nothing covered it yet");
    // A breach of the same alert that change #1 kept quiet, as the engine
    // records it (the engine's own suppression is tested in engine/).
    let start = chrono::Utc::now() - chrono::Duration::minutes(5);
    let change = Request::post("/api/v1/changes")
        .header("authorization", "Bearer op-token")
        .body(Body::from(
            json!({"title": "kernel <update>", "scope": {"hosts": ["web-*"]},
                   "start": start.to_rfc3339(), "end": (start + chrono::Duration::hours(1)).to_rfc3339()})
            .to_string(),
        ))
        .unwrap();
    assert_eq!(send(&f.app, change).await.status, StatusCode::CREATED);
    let api = Request::get("/api/v1/incidents/1")
        .header("authorization", "Bearer view-token")
        .body(Body::empty())
        .unwrap();
    let fp = serde_json::from_str::<Value>(&send(&f.app, api).await.body).unwrap()["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let db = rusqlite::Connection::open(f._dir.path().join("vedette.db")).unwrap();
    db.execute(
        "INSERT INTO suppressions (at, fingerprint, rule, host, labels, summary, window_kind, window_name, change_id)
         VALUES (?1, ?2, 'disk_full', 'web-01', '{}', 's', 'change', 'kernel <update>', 1)",
        rusqlite::params![now_ms() - 60_000, fp],
    )
    .unwrap();
    let page = get(&f.app, "/incidents/1", Some(&operator)).await.body;
    assert!(
        page.contains("Covered by changes and maintenance"),
        "{page}"
    );
    assert!(
        page.contains("change <a href=\"/changes\">#1</a> <q>kernel &lt;update&gt;</q>"),
        "{page}"
    );
}

#[tokio::test]
async fn a_change_recorded_in_the_browsers_time_zone_arrives_in_utc() {
    let f = fixture(TOKENS).await;
    let operator = login(&f.app, "op-token").await;
    let token = csrf(&get(&f.app, "/changes", Some(&operator)).await.body);
    let start = chrono::Utc::now() + chrono::Duration::hours(1);
    let end = start + chrono::Duration::hours(2);
    // What the page's script sends: the typed local time plus its UTC form.
    let form = format!(
        "csrf={token}&title=kernel+update&hosts=web-*%2C+db-01&start=2026-01-01T00%3A00&end=2026-01-01T01%3A00\
         &start_utc={}&end_utc={}&verify_for=15m",
        encode(&start.with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap()).to_rfc3339()),
        encode(&end.to_rfc3339())
    );
    let a = post(&f.app, "/changes", Some(&operator), &form).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let api = Request::get("/api/v1/changes")
        .header("authorization", "Bearer view-token")
        .body(Body::empty())
        .unwrap();
    let v: Value = serde_json::from_str(&send(&f.app, api).await.body).unwrap();
    let c = &v[0];
    assert_eq!(c["title"], "kernel update");
    assert_eq!(c["scope"]["hosts"], json!(["web-*", "db-01"]));
    let got = chrono::DateTime::parse_from_rfc3339(c["start"].as_str().unwrap()).unwrap();
    assert_eq!(got.timestamp(), start.timestamp(), "the offset was applied");
    assert_eq!(c["verify_for"], "15m");
    // Without the script, the typed time is UTC; a bad one is named.
    let a = post(
        &f.app,
        "/changes",
        Some(&operator),
        &format!("csrf={token}&title=x&start=soon&end=later"),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.body.contains("start: &#x27;soon&#x27; is not a time"),
        "{}",
        a.body
    );
}
