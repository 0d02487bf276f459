//! The collector's HTTP face, one router on one listener:
//!
//! - `POST /api/v1/push` — agent batches (`push`).
//! - `GET /api/v1/incidents[?state=open|acknowledged|resolved|closed][&limit=N]`
//! - `GET /api/v1/incidents/{id}`
//! - `POST /api/v1/incidents/{id}/ack`, `POST /api/v1/incidents/{id}/resolve`
//!   (body `{"note": "..."}` optional), `POST /api/v1/incidents/{id}/notes`
//!   (body `{"note": "..."}` required; any state, no notification)
//! - `GET /api/v1/problems[?state=open|resolved][&limit=N]`, `GET /api/v1/problems/{id}`,
//!   `POST /api/v1/problems/{id}/resolve` (body `{"note": "..."}` optional)
//! - `GET /api/v1/changes[?limit=N]`, `POST /api/v1/changes`
//! - `GET /api/v1/suppressions[?limit=N]` — breaches planned windows kept quiet
//! - `GET /api/v1/services` — availability, error budgets and burn rates
//! - `GET /api/v1/hosts[?state=up|down|unknown][&after=NAME][&limit=N]` — hosts
//!   by name with their state, checks, key metrics and live incidents
//! - `GET /metrics`, `GET /healthz`, `GET /readyz`
//!
//! Reads come from the store's reader connection; writes go through the
//! engine, which owns live incidents, problems and changes.
//!
//! Access: with `api_tokens` configured, reads need a `viewer` or `operator`
//! bearer token and writes an `operator` one (401 without a valid token, 403
//! with a viewer token on a write); the token's name is recorded as the actor.
//! Without API tokens the API is open only on a loopback listener (actor `api`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::DateTime;
use serde::Deserialize;
use vedette_protocol::clock::{duration_ms, now_ms};
use vedette_protocol::{ErrorBody, Limits};

use crate::config::{token_digest, Config, Role};
use crate::engine::{
    ActionError, ApplyError, EngineHandle, ExternalAlert, ExternalOutcome, NewChange, SubmitError,
};
use crate::incidents::Labels;
use crate::metrics::Metrics;
use crate::state::Limited;
use crate::store::{Store, StoreError};
use crate::views::{rfc3339, ChangeView, DeliveryView, IncidentView, ProblemView, SuppressionView};
use crate::windows::ScopeSpec;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The running configuration; a reload swaps it (see [`AppState::config`]).
    pub config: Arc<std::sync::RwLock<Arc<Config>>>,
    pub limits: Limits,
    pub engine: EngineHandle,
    pub reader: Arc<Mutex<Store>>,
    pub metrics: Arc<Metrics>,
    /// Signs console sessions.
    pub sessions: Arc<crate::session::SessionKey>,
}

impl AppState {
    /// The configuration as of now (a reload may swap it at any time).
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config.read().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The whole HTTP API.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/push", post(push::push))
        .merge(api_router())
        .route(
            "/api/v1/alertmanager",
            post(alertmanager_in).layer(DefaultBodyLimit::max(MAX_ALERTS_BODY)),
        )
        .route("/api/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

fn api_router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/incidents", get(incidents_list))
        .route("/api/v1/incidents/{id}", get(incidents_show))
        .route("/api/v1/incidents/{id}/ack", post(incidents_ack))
        .route("/api/v1/incidents/{id}/resolve", post(incidents_resolve))
        .route(
            "/api/v1/incidents/{id}/notes",
            post(incidents::incidents_note),
        )
        .route("/api/v1/problems", get(problems_list))
        .route("/api/v1/problems/{id}", get(problems_show))
        .route("/api/v1/problems/{id}/resolve", post(problems_resolve))
        .route("/api/v1/changes", get(changes_list).post(changes_create))
        .route("/api/v1/suppressions", get(suppressions_list))
        .route("/api/v1/services", get(services_list))
        .route("/api/v1/hosts", get(hosts_list))
        .layer(DefaultBodyLimit::max(MAX_NOTE_BODY))
        .layer(axum::middleware::map_response(json_errors))
}

/// The API's OpenAPI 3 document (`openapi.yaml`, embedded).
const OPENAPI: &str = include_str!("openapi.yaml");

/// `GET /api/v1/openapi.json`: the document as JSON, converted once.
async fn openapi() -> Response {
    static JSON: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    let json = JSON.get_or_init(|| {
        serde_yaml::from_str::<serde_json::Value>(OPENAPI)
            .map_err(|e| e.to_string())
            .and_then(|v| serde_json::to_string(&v).map_err(|e| e.to_string()))
    });
    match json {
        Ok(j) => ([(header::CONTENT_TYPE, "application/json")], j.clone()).into_response(),
        Err(e) => ApiError::Internal(format!("the embedded OpenAPI document is broken: {e}"))
            .into_response(),
    }
}

/// The longest non-JSON error body repeated in a JSON error.
const MAX_ERROR_TEXT: usize = 4096;

/// Errors the framework answers itself (a query, path or body it cannot
/// parse: plain text) become the API's JSON error, so every answer of
/// `/api/v1` is JSON.
async fn json_errors(resp: Response) -> Response {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json || !(resp.status().is_client_error() || resp.status().is_server_error()) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, MAX_ERROR_TEXT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let error = if text.is_empty() {
        parts
            .status
            .canonical_reason()
            .unwrap_or("error")
            .to_string()
    } else {
        text
    };
    let mut out = (
        parts.status,
        Json(ErrorBody {
            error,
            field: None,
            limit: None,
        }),
    )
        .into_response();
    for (k, v) in &parts.headers {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

const MAX_NOTE_BODY: usize = 64 * 1024;
/// Alertmanager's webhook: at most this many bytes and alerts per call.
const MAX_ALERTS_BODY: usize = 1024 * 1024;
const MAX_ALERTS: usize = 1000;
const MAX_ALERT_LABELS: usize = 64;
const MAX_NOTE_CHARS: usize = 4096;
const DEFAULT_LIST_LIMIT: usize = 500;
const MAX_LIST_LIMIT: usize = 10_000;

/// Every API failure, mapped to one status and a JSON body.
#[derive(Debug)]
pub(crate) enum ApiError {
    BadRequest(String, Option<String>),
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    Conflict(String),
    Unavailable(String),
    /// Over a state limit (`limits:`): 413 or 429 with the limit named.
    Limited(Limited),
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error, field) = match self {
            ApiError::BadRequest(m, f) => (StatusCode::BAD_REQUEST, m, f),
            ApiError::Unauthorized(m) => {
                let body = Json(ErrorBody {
                    error: m,
                    field: None,
                    limit: None,
                });
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer")],
                    body,
                )
                    .into_response();
            }
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m, None),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m, None),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m, None),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m, None),
            ApiError::Limited(l) => {
                let status =
                    StatusCode::from_u16(l.limit.status()).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
                let body = Json(ErrorBody {
                    error: l.message,
                    field: l.field.map(String::from),
                    limit: Some(l.limit.as_str().to_string()),
                });
                return (status, [(header::RETRY_AFTER, "60")], body).into_response();
            }
            ApiError::Internal(source) => {
                tracing::error!(error = %source, "api request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the collector's log".to_string(),
                    None,
                )
            }
        };
        (
            status,
            Json(ErrorBody {
                error,
                field,
                limit: None,
            }),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => ApiError::NotFound(format!("incident {id} not found")),
            StoreError::ProblemNotFound(id) => {
                ApiError::NotFound(format!("problem {id} not found"))
            }
            e => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::NotFound(id) => ApiError::NotFound(format!("incident {id} not found")),
            ActionError::ProblemNotFound(id) => {
                ApiError::NotFound(format!("problem {id} not found"))
            }
            ActionError::Conflict(c) => ApiError::Conflict(c.to_string()),
            ActionError::ProblemConflict(m) => ApiError::Conflict(m),
            ActionError::Invalid { field, message } => ApiError::BadRequest(message, Some(field)),
            ActionError::Store(e) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<ApplyError> for ApiError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Store(e) => ApiError::from(e),
            ApplyError::Limited(l) => ApiError::Limited(l),
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

/// Who is calling, as recorded on what they do.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub name: String,
}

/// The actor recorded for API actions when no API tokens are configured.
const ANONYMOUS: &str = "api";

/// Checks the bearer token against `api_tokens` and the role `need`s.
fn authorize(app: &AppState, headers: &HeaderMap, need: Role) -> Result<Caller, ApiError> {
    let config = app.config();
    let tokens = &config.api_tokens;
    if tokens.is_empty() {
        return if config.listen.ip().is_loopback() {
            Ok(Caller {
                name: ANONYMOUS.into(),
            })
        } else {
            Err(ApiError::Forbidden(
                "the API is open only on a loopback listener until `api_tokens` are configured"
                    .into(),
            ))
        };
    }
    let Some(token) = push::bearer(headers) else {
        return Err(ApiError::Unauthorized(
            "missing bearer token; send `Authorization: Bearer <api token>`".into(),
        ));
    };
    let digest = token_digest(token);
    let Some(t) = config.api_token(&digest) else {
        return Err(ApiError::Unauthorized("unknown API token".into()));
    };
    if t.role < need {
        return Err(ApiError::Forbidden(format!(
            "API token '{}' is a viewer; this needs an operator token",
            t.name
        )));
    }
    Ok(Caller {
        name: t.name.clone(),
    })
}

pub(crate) async fn read<T: Send + 'static>(
    app: &AppState,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let reader = Arc::clone(&app.reader);
    tokio::task::spawn_blocking(move || {
        let store = reader.lock().unwrap_or_else(|p| p.into_inner());
        f(&store)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(ApiError::from)
}

/// Every configured service over every window: the numbers `/metrics`
/// publishes, as JSON.
async fn services_list(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<crate::kpi::ServiceReport>>, ApiError> {
    authorize(&app, &headers, Role::Viewer)?;
    let metrics = Arc::clone(&app.metrics);
    let reports = tokio::task::spawn_blocking(move || metrics.services(now_ms()))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(reports))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostsQuery {
    state: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

async fn hosts_list(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HostsQuery>,
) -> Result<Json<Vec<crate::kpi::HostReport>>, ApiError> {
    authorize(&app, &headers, Role::Viewer)?;
    let state = match q.state.as_deref() {
        None => None,
        Some("up") => Some(crate::availability::Avail::Up),
        Some("down") => Some(crate::availability::Avail::Down),
        Some("unknown") => Some(crate::availability::Avail::Unknown),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "state must be up, down or unknown".into(),
                Some("state".into()),
            ))
        }
    };
    let query = crate::kpi::HostQuery {
        state,
        after: q.after,
        only: None,
        limit: list_limit(q.limit),
    };
    let metrics = Arc::clone(&app.metrics);
    let mut hosts = tokio::task::spawn_blocking(move || metrics.hosts(now_ms(), &query))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
    let live = read(&app, move |s| s.live_ids(Some(&names))).await?;
    let mut by_host: std::collections::HashMap<&str, Vec<i64>> = Default::default();
    for (id, host, _) in &live {
        by_host.entry(host.as_str()).or_default().push(*id);
    }
    for h in &mut hosts {
        h.live_incidents = by_host.remove(h.name.as_str()).unwrap_or_default();
    }
    Ok(Json(hosts))
}

async fn metrics(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(want) = &app.config().metrics_token {
        let given = push::bearer(&headers).map(token_digest);
        if !given.is_some_and(|d| want.matches(&d)) {
            return ApiError::Unauthorized(
                "/metrics needs `Authorization: Bearer <metrics_token>` (Prometheus: `authorization: {credentials_file: …}`)"
                    .into(),
            )
            .into_response();
        }
    }
    match read(&app, |s| s.outbox_pending()).await {
        Ok(pending) => app.metrics.outbox(
            app.config()
                .notify
                .receivers
                .iter()
                .map(|r| r.name.as_str()),
            &pending,
            now_ms(),
        ),
        Err(e) => tracing::warn!(error = ?e, "reading the outbox for /metrics failed"),
    }
    let metrics = Arc::clone(&app.metrics);
    match tokio::task::spawn_blocking(move || metrics.render(now_ms())).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => ApiError::Internal(e.to_string()).into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(app): State<AppState>) -> Result<&'static str, ApiError> {
    read(&app, |s| s.ping())
        .await
        .map_err(|_| ApiError::Unavailable("store is not readable".into()))?;
    if app.engine.is_stopped() {
        return Err(ApiError::Unavailable("engine has stopped".into()));
    }
    Ok("ready\n")
}

mod alertmanager;
mod changes;
pub(crate) use self::changes::{new_change, suppression_view};
mod incidents;
mod push;

use self::alertmanager::alertmanager_in;
use self::changes::{changes_create, changes_list, suppressions_list};
use self::incidents::{
    incidents_ack, incidents_list, incidents_resolve, incidents_show, problems_list,
    problems_resolve, problems_show,
};

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into(), Some(field.to_string()))
}

fn parse_time(field: &str, s: &str) -> Result<i64, ApiError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            bad(
                field,
                format!("'{s}' is not an RFC 3339 time like 2026-11-22T02:00:00+01:00: {e}"),
            )
        })
}

/// `?limit=`, defaulted and capped.
fn list_limit(limit: Option<usize>) -> usize {
    limit.unwrap_or(DEFAULT_LIST_LIMIT).min(MAX_LIST_LIMIT)
}

#[cfg(test)]
mod tests;
