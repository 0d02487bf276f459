//! The collector's HTTP face, one router on one listener:
//!
//! - `POST /api/v1/push` — agent batches ([`crate::ingest`]).
//! - `GET /api/v1/incidents[?state=open|acknowledged|resolved|closed][&limit=N]`
//! - `GET /api/v1/incidents/{id}`
//! - `POST /api/v1/incidents/{id}/ack`, `POST /api/v1/incidents/{id}/resolve`
//!   (body `{"note": "..."}` optional)
//! - `GET /metrics`, `GET /healthz`, `GET /readyz`
//!
//! Reads come from the store's reader connection; writes go through the
//! engine, which owns live incidents. Until API tokens exist (a later issue),
//! the incident API is open only when the listener is loopback.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat};
use serde::{Deserialize, Serialize};
use vedette_protocol::{ErrorBody, Limits};

use crate::config::Config;
use crate::engine::{now_ms, ActionError, EngineHandle, SubmitError};
use crate::incidents::{Incident, IncidentState, Labels};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub limits: Limits,
    pub engine: EngineHandle,
    pub reader: Arc<Mutex<Store>>,
    pub metrics: Arc<Metrics>,
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/push", post(crate::ingest::push))
        .merge(incidents_router())
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

fn incidents_router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/incidents", get(incidents_list))
        .route("/api/v1/incidents/{id}", get(incidents_show))
        .route("/api/v1/incidents/{id}/ack", post(incidents_ack))
        .route("/api/v1/incidents/{id}/resolve", post(incidents_resolve))
        .layer(DefaultBodyLimit::max(MAX_NOTE_BODY))
}

const MAX_NOTE_BODY: usize = 64 * 1024;
const MAX_NOTE_CHARS: usize = 4096;
const DEFAULT_LIST_LIMIT: usize = 500;
const MAX_LIST_LIMIT: usize = 10_000;

/// Every API failure, mapped to one status and a JSON body.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String, Option<&'static str>),
    Forbidden(String),
    NotFound(String),
    Conflict(String),
    Unavailable(String),
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error, field) = match self {
            ApiError::BadRequest(m, f) => (StatusCode::BAD_REQUEST, m, f),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m, None),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m, None),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m, None),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m, None),
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
                field: field.map(String::from),
            }),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => ApiError::NotFound(format!("incident {id} not found")),
            e => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::NotFound(id) => ApiError::NotFound(format!("incident {id} not found")),
            ActionError::Conflict(c) => ApiError::Conflict(c.to_string()),
            ActionError::Store(e) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

/// An incident as the API serves it (a contract: DESIGN.md → endpoints).
#[derive(Debug, Serialize)]
pub struct IncidentView {
    pub id: i64,
    pub fingerprint: String,
    pub rule: String,
    pub host: String,
    pub labels: Labels,
    pub state: IncidentState,
    pub priority: u8,
    pub impact: u8,
    pub urgency: u8,
    pub summary: String,
    pub description: String,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub started_at: Option<String>,
    pub detected_at: Option<String>,
    pub acknowledged_at: Option<String>,
    pub restored_at: Option<String>,
    pub resolved_at: Option<String>,
    pub closed_at: Option<String>,
    pub resolution: Option<crate::incidents::Resolution>,
    pub occurrences: u32,
    pub problem_id: Option<i64>,
    pub flapping: bool,
    pub events: Vec<EventView>,
}

/// One timeline entry.
#[derive(Debug, Serialize)]
pub struct EventView {
    pub at: Option<String>,
    pub kind: crate::incidents::EventKind,
    pub actor: String,
    pub note: Option<String>,
}

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339(ms: i64) -> Option<String> {
    DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

impl From<Incident> for IncidentView {
    fn from(i: Incident) -> Self {
        IncidentView {
            id: i.id,
            fingerprint: i.fingerprint,
            rule: i.rule,
            host: i.host,
            labels: i.labels,
            state: i.state,
            priority: i.priority,
            impact: i.impact,
            urgency: i.urgency,
            summary: i.summary,
            description: i.description,
            value: i.value,
            threshold: i.threshold,
            started_at: rfc3339(i.started_at_ms),
            detected_at: rfc3339(i.detected_at_ms),
            acknowledged_at: i.acknowledged_at_ms.and_then(rfc3339),
            restored_at: i.restored_at_ms.and_then(rfc3339),
            resolved_at: i.resolved_at_ms.and_then(rfc3339),
            closed_at: i.closed_at_ms.and_then(rfc3339),
            resolution: i.resolution,
            occurrences: i.occurrences,
            problem_id: i.problem_id,
            flapping: i.flapping,
            events: i
                .events
                .into_iter()
                .map(|e| EventView {
                    at: rfc3339(e.at_ms),
                    kind: e.kind,
                    actor: e.actor,
                    note: e.note,
                })
                .collect(),
        }
    }
}

/// Until API tokens exist, only a loopback listener serves the incident API.
fn authorize(app: &AppState) -> Result<(), ApiError> {
    if app.config.listen.ip().is_loopback() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "the incident API is open only on a loopback listener until API tokens are configured"
                .into(),
        ))
    }
}

async fn read<T: Send + 'static>(
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<String>,
    limit: Option<usize>,
}

async fn incidents_list(
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<IncidentView>>, ApiError> {
    authorize(&app)?;
    let state = q
        .state
        .map(|s| s.parse::<IncidentState>())
        .transpose()
        .map_err(|e| ApiError::BadRequest(e, Some("state")))?;
    let limit = q.limit.unwrap_or(DEFAULT_LIST_LIMIT).min(MAX_LIST_LIMIT);
    let incidents = read(&app, move |s| s.incidents(state, limit)).await?;
    Ok(Json(
        incidents.into_iter().map(IncidentView::from).collect(),
    ))
}

async fn incidents_show(
    State(app): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<IncidentView>, ApiError> {
    authorize(&app)?;
    let incident = read(&app, move |s| s.incident(id)).await?;
    Ok(Json(incident.into()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    note: Option<String>,
}

fn note(body: &Bytes) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let parsed: NoteBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(
            format!("body must be JSON like {{\"note\": \"...\"}}: {e}"),
            None,
        )
    })?;
    match parsed.note {
        Some(n) if n.chars().count() > MAX_NOTE_CHARS => Err(ApiError::BadRequest(
            format!("note is longer than {MAX_NOTE_CHARS} characters"),
            Some("note"),
        )),
        n => Ok(n),
    }
}

/// The actor recorded for API actions until API tokens carry names.
const ANONYMOUS: &str = "api";

async fn incidents_ack(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<IncidentView>, ApiError> {
    authorize(&app)?;
    let note = note(&body)?;
    let incident = app.engine.acknowledge(id, ANONYMOUS.into(), note).await??;
    Ok(Json(incident.into()))
}

async fn incidents_resolve(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<IncidentView>, ApiError> {
    authorize(&app)?;
    let note = note(&body)?;
    let incident = app.engine.resolve(id, ANONYMOUS.into(), note).await??;
    Ok(Json(incident.into()))
}

async fn metrics(State(app): State<AppState>) -> Response {
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

#[cfg(test)]
mod tests;
