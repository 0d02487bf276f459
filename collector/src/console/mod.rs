//! The web console at `/`: server-rendered pages an on-call engineer reads
//! (Now, incidents, hosts, services, problems, changes) and the actions an
//! operator takes (acknowledge, resolve, in bulk too; record a change).
//!
//! - Pages are minijinja templates compiled into the binary (`templates/`),
//!   auto-escaped: every agent-controlled string is text, never markup.
//!   CSS and the one small script are served by the binary (`assets/`), so
//!   the Content-Security-Policy allows nothing else (no inline script or
//!   style, no other origin). Every page works without JavaScript; with it,
//!   times are local and Now's live part refreshes in place.
//! - Access: with `api_tokens`, a person logs in once with a token; the
//!   session is a signed cookie ([`crate::session`]) naming the token, whose
//!   role in the running config decides what they see and may post. A viewer
//!   gets no write controls and a post of theirs is refused. Without API
//!   tokens the console is open on a loopback listener only (actor
//!   `console`), like the API. Every form carries the session's CSRF token,
//!   and a cross-site post is refused before it is read.

use std::sync::OnceLock;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::Environment;
use serde::Serialize;
use vedette_protocol::clock::now_ms;

use crate::api::AppState;
use crate::config::{token_digest, Role};
use crate::session::{self, Session};

mod pages;

/// The Content-Security-Policy of every console response.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// The actor of what is done on a console without API tokens.
const ANONYMOUS: &str = "console";
/// The largest form body read.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The console's routes.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::now))
        .route("/incidents", get(pages::incidents))
        .route("/incidents/bulk", post(pages::bulk))
        .route("/incidents/{id}", get(pages::incident))
        .route("/incidents/{id}/ack", post(pages::ack))
        .route("/incidents/{id}/resolve", post(pages::resolve))
        .route("/incidents/{id}/note", post(pages::note_add))
        .route("/hosts", get(pages::hosts))
        .route("/hosts/{name}", get(pages::host))
        .route("/services", get(pages::services))
        .route("/problems", get(pages::problems))
        .route("/changes", get(pages::changes).post(pages::change_create))
        .route("/status", get(pages::status))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/static/console.css", get(css))
        .route("/static/console.js", get(js))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

async fn css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    )
}

async fn js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/console.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// The templates, compiled once.
fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in [
            ("base.html", include_str!("templates/base.html")),
            ("macros.html", include_str!("templates/macros.html")),
            ("login.html", include_str!("templates/login.html")),
            ("error.html", include_str!("templates/error.html")),
            ("now.html", include_str!("templates/now.html")),
            ("now_live.html", include_str!("templates/now_live.html")),
            ("incidents.html", include_str!("templates/incidents.html")),
            ("incident.html", include_str!("templates/incident.html")),
            ("hosts.html", include_str!("templates/hosts.html")),
            ("host.html", include_str!("templates/host.html")),
            ("services.html", include_str!("templates/services.html")),
            ("problems.html", include_str!("templates/problems.html")),
            ("changes.html", include_str!("templates/changes.html")),
            ("status.html", include_str!("templates/status.html")),
        ] {
            // The templates are part of the binary: a syntax error is a bug
            // the console tests catch, not a runtime condition.
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("console template {name}: {e}"));
        }
        env
    })
}

/// Who is looking, as the templates see them.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Viewer {
    pub name: String,
    pub role: &'static str,
    pub operator: bool,
    pub csrf: String,
    pub can_logout: bool,
    #[serde(skip)]
    session: Session,
    /// A fresh session cookie to set (an anonymous console's first visit).
    #[serde(skip)]
    new_cookie: Option<String>,
}

/// Why a request is not served as asked.
#[derive(Debug)]
pub(crate) enum Deny {
    /// No valid session: the login page (GET) or 401 (POST).
    Login,
    Forbidden(String),
    NotFound(String),
    BadRequest(String),
    Conflict(String),
    Unavailable(String),
}

/// The person behind `headers`, from their session (or, on a loopback
/// console without API tokens, an anonymous operator with a fresh session).
fn viewer(app: &AppState, headers: &HeaderMap) -> Result<Viewer, Deny> {
    let config = app.config();
    let now_s = now_ms() / 1000;
    let found = session::cookie_value(headers).and_then(|v| app.sessions.verify(v, now_s));
    let (session, name, role, new_cookie, can_logout) = if config.api_tokens.is_empty() {
        if !config.listen.ip().is_loopback() {
            return Err(Deny::Forbidden(
                "the console is open only on a loopback listener until `api_tokens` are configured"
                    .into(),
            ));
        }
        match found.filter(|s| s.name == ANONYMOUS) {
            Some(s) => (s, ANONYMOUS.to_string(), Role::Operator, None, false),
            None => {
                let value = app.sessions.issue(ANONYMOUS, now_s);
                let s = app
                    .sessions
                    .verify(&value, now_s)
                    .ok_or_else(|| Deny::Unavailable("cannot make a session".into()))?;
                (s, ANONYMOUS.to_string(), Role::Operator, Some(value), false)
            }
        }
    } else {
        let s = found.ok_or(Deny::Login)?;
        let token = config
            .api_tokens
            .iter()
            .find(|t| t.name == s.name)
            .ok_or(Deny::Login)?;
        let (name, role) = (token.name.clone(), token.role);
        (s, name, role, None, true)
    };
    Ok(Viewer {
        csrf: app.sessions.csrf(&session),
        name,
        role: match role {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        },
        operator: role == Role::Operator,
        can_logout,
        session,
        new_cookie,
    })
}

/// A post's form fields, once the viewer may post at all: an operator, the
/// session's CSRF token, not a cross-site request.
fn posted(app: &AppState, headers: &HeaderMap, body: &Bytes) -> Result<(Viewer, Form), Deny> {
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
    {
        return Err(Deny::Forbidden("a cross-site form post is refused".into()));
    }
    let viewer = viewer(app, headers)?;
    if viewer.new_cookie.is_some() {
        return Err(Deny::Forbidden(
            "this form has expired; reload the page and try again".into(),
        ));
    }
    let form = Form::parse(body);
    if !app
        .sessions
        .csrf_ok(&viewer.session, form.get("csrf").unwrap_or(""))
    {
        return Err(Deny::Forbidden(
            "this form has expired or did not come from this console; reload the page and try again"
                .into(),
        ));
    }
    if !viewer.operator {
        return Err(Deny::Forbidden(format!(
            "API token '{}' is a viewer; this needs an operator token",
            viewer.name
        )));
    }
    Ok((viewer, form))
}

/// URL-encoded form fields, in order.
#[derive(Debug, Default)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Form {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The navigation, with `current` marked.
fn nav(current: &str) -> Vec<minijinja::Value> {
    [
        ("/", "Now"),
        ("/incidents", "Incidents"),
        ("/hosts", "Hosts"),
        ("/services", "Services"),
        ("/problems", "Problems"),
        ("/changes", "Changes"),
    ]
    .into_iter()
    .map(|(href, label)| {
        minijinja::context! { href => href, label => label, current => href == current }
    })
    .collect()
}

/// Renders `template` for `viewer` with `ctx`.
fn page(
    template: &str,
    title: &str,
    current: &str,
    viewer: Option<&Viewer>,
    ctx: minijinja::Value,
) -> Response {
    let base = minijinja::context! {
        title => title,
        viewer => viewer,
        nav => nav(current),
    };
    let ctx = minijinja::context! { ..ctx, ..base };
    render(template, ctx, StatusCode::OK, viewer)
}

fn render(
    template: &str,
    ctx: minijinja::Value,
    status: StatusCode,
    viewer: Option<&Viewer>,
) -> Response {
    let html = env().get_template(template).and_then(|t| t.render(ctx));
    match html {
        Ok(html) => {
            let mut resp = (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response();
            if let Some(cookie) = viewer.and_then(|v| v.new_cookie.as_deref()) {
                if let Ok(v) = HeaderValue::from_str(&session::set_cookie(cookie, false)) {
                    resp.headers_mut().insert(header::SET_COOKIE, v);
                }
            }
            resp
        }
        Err(e) => {
            tracing::error!(template, error = %e, "console template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the console failed to render this page",
            )
                .into_response()
        }
    }
}

impl Deny {
    /// The answer to a refused request; `login_next` is where the login
    /// page returns to (a GET), None for a post.
    fn answer(self, login_next: Option<&str>) -> Response {
        let (status, message) = match self {
            Deny::Login => {
                return match login_next {
                    Some(next) => {
                        Redirect::to(&format!("/login?next={}", encode(next))).into_response()
                    }
                    None => error_page(StatusCode::UNAUTHORIZED, "log in first"),
                }
            }
            Deny::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            Deny::NotFound(m) => (StatusCode::NOT_FOUND, m),
            Deny::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            Deny::Conflict(m) => (StatusCode::CONFLICT, m),
            Deny::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
        };
        error_page(status, &message)
    }
}

fn error_page(status: StatusCode, message: &str) -> Response {
    render(
        "error.html",
        minijinja::context! {
            title => status.canonical_reason().unwrap_or("Error"),
            status => format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("")),
            message => message,
            viewer => (),
            nav => nav(""),
        },
        status,
        None,
    )
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Where a login may send the person back to: a path of this console only.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.len() < 2048 =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

#[derive(Debug, serde::Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

async fn login_form(State(app): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    if app.config().api_tokens.is_empty() {
        return Redirect::to("/").into_response();
    }
    login_page(&safe_next(q.next.as_deref()), None, StatusCode::OK)
}

fn login_page(next: &str, error: Option<&str>, status: StatusCode) -> Response {
    render(
        "login.html",
        minijinja::context! {
            title => "Log in", next => next, error => error, viewer => (), nav => nav(""),
        },
        status,
        None,
    )
}

async fn login(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
    {
        return Deny::Forbidden("a cross-site login is refused".into()).answer(None);
    }
    let form = Form::parse(&body);
    let next = safe_next(form.get("next"));
    let config = app.config();
    let digest = token_digest(form.get("token").unwrap_or("").trim());
    let Some(name) = config.api_token(&digest).map(|t| t.name.clone()) else {
        return login_page(
            &next,
            Some("That token is not one of this collector's API tokens."),
            StatusCode::UNAUTHORIZED,
        );
    };
    let value = app.sessions.issue(&name, now_ms() / 1000);
    let mut resp = Redirect::to(&next).into_response();
    if let Ok(v) =
        HeaderValue::from_str(&session::set_cookie(&value, config.tls.server().is_some()))
    {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    tracing::info!(token = %name, "console login");
    resp
}

async fn logout(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let viewer = match viewer(&app, &headers) {
        Ok(v) => v,
        Err(_) => return Redirect::to("/login").into_response(),
    };
    let form = Form::parse(&body);
    if !app
        .sessions
        .csrf_ok(&viewer.session, form.get("csrf").unwrap_or(""))
    {
        return Deny::Forbidden("reload the page and try again".into()).answer(None);
    }
    let mut resp = Redirect::to("/login").into_response();
    let secure = app.config().tls.server().is_some();
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(secure)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// Path parameters that name an incident.
fn incident_id(p: Result<Path<i64>, axum::extract::rejection::PathRejection>) -> Result<i64, Deny> {
    p.map(|Path(id)| id)
        .map_err(|_| Deny::NotFound("no such incident".into()))
}

#[cfg(test)]
mod tests;
