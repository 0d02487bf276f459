//! `POST /api/v1/push`: authenticate, bound, decode, validate, authorize the
//! host, then hand the batch to the engine and answer once it is applied.
//!
//! Order matters: the token is checked before the body is read, the body is
//! read under the size limit before it is decoded, and the whole protocol is
//! validated before the engine sees anything, so a bad request changes no
//! state. Answers follow the protocol: 200 `{accepted, ack_seq}`, or a JSON
//! error with 400/401/403/413/415/429 (with `Retry-After`)/503.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use vedette_protocol::{Encoding, ErrorBody, Rejection, RejectionKind};

use super::AppState;
use crate::config::{token_digest, AgentToken};
use crate::engine::{ApplyError, SubmitError};
use crate::metrics::IngestOutcome;
use vedette_protocol::clock::now_ms;

/// The push handler.
pub async fn push(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let (outcome, response) = handle(&app, &headers, body).await;
    app.metrics.ingest(outcome);
    response
}

async fn handle(app: &AppState, headers: &HeaderMap, body: Body) -> (IngestOutcome, Response) {
    // Which hosts may this caller push as? None: any (no tokens, loopback only).
    let config = app.config();
    let allowed = if config.agents.is_empty() {
        None
    } else {
        let Some(token) = bearer(headers) else {
            return (
                IngestOutcome::Unauthorized,
                error(
                    StatusCode::UNAUTHORIZED,
                    "missing bearer token; send `Authorization: Bearer <agent token>`",
                    None,
                ),
            );
        };
        let digest = token_digest(token);
        // Check every token so the time taken does not reveal which matched.
        let mut found = None;
        for (i, t) in config.agents.iter().enumerate() {
            if t.matches(&digest) && found.is_none() {
                found = Some(i);
            }
        }
        match found {
            Some(i) => Some(&config.agents[i]),
            None => {
                return (
                    IngestOutcome::Unauthorized,
                    error(StatusCode::UNAUTHORIZED, "unknown agent token", None),
                )
            }
        }
    };

    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        if !ct
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("application/json")
        {
            return (
                IngestOutcome::Unsupported,
                error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "content-type must be application/json",
                    None,
                ),
            );
        }
    }
    let encoding = match Encoding::from_header(
        headers
            .get(header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap_or("?")),
    ) {
        Ok(e) => e,
        Err(r) => return rejection(&r),
    };

    let limit = app.limits.max_body_bytes;
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return (
                IngestOutcome::TooLarge,
                error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("body is over the limit of {limit} bytes; send smaller batches"),
                    None,
                ),
            )
        }
        Err(e) => {
            return (
                IngestOutcome::Invalid,
                error(
                    StatusCode::BAD_REQUEST,
                    &format!("reading body failed: {e}"),
                    None,
                ),
            )
        }
    };

    // Decoding is CPU work bounded by the limits; keep it off the reactor.
    let limits = app.limits.clone();
    let decoded = tokio::task::spawn_blocking(move || {
        vedette_protocol::decode(&bytes, encoding, &limits, now_ms())
    })
    .await;
    let batch = match decoded {
        Ok(Ok(batch)) => batch,
        Ok(Err(r)) => return rejection(&r),
        Err(e) => {
            tracing::error!(error = %e, "decode task failed");
            return (
                IngestOutcome::Unavailable,
                error(StatusCode::INTERNAL_SERVER_ERROR, "internal error", None),
            );
        }
    };

    if let Some(token) = allowed {
        if !token.allows(&batch.agent.host) {
            return (
                IngestOutcome::Forbidden,
                error(
                    StatusCode::FORBIDDEN,
                    &format!(
                        "this token may not push as host '{}' (allowed: {})",
                        batch.agent.host,
                        token.hosts.join(", ")
                    ),
                    Some("agent.host"),
                ),
            );
        }
    }

    let host = batch.agent.host.clone();
    match app.engine.push(batch, allowed.map(AgentToken::id)).await {
        Ok(Ok(ack)) => {
            let outcome = if ack.accepted == 0 {
                IngestOutcome::Duplicate
            } else {
                IngestOutcome::Accepted
            };
            (outcome, (StatusCode::OK, Json(ack)).into_response())
        }
        Ok(Err(ApplyError::Limited(l))) => {
            // Logged by the engine, once per host and limit.
            app.metrics.limited(l.limit);
            let status =
                StatusCode::from_u16(l.limit.status()).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
            let mut r = (
                status,
                Json(ErrorBody {
                    error: l.message,
                    field: l.field.map(String::from),
                    limit: Some(l.limit.as_str().to_string()),
                }),
            )
                .into_response();
            if status == StatusCode::TOO_MANY_REQUESTS {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
            }
            (IngestOutcome::Limited, r)
        }
        Ok(Err(ApplyError::Store(e))) => {
            tracing::warn!(host = %host, error = %e, "store failed; refusing the batch so the agent retries");
            (
                IngestOutcome::Unavailable,
                unavailable("store unavailable; retry later"),
            )
        }
        Err(SubmitError::Busy) => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "collector is busy; retry after the given delay",
                None,
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            (IngestOutcome::Throttled, r)
        }
        Err(SubmitError::Stopped) => (
            IngestOutcome::Unavailable,
            unavailable("collector is shutting down; retry later"),
        ),
    }
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

fn rejection(r: &Rejection) -> (IngestOutcome, Response) {
    let outcome = match r.kind {
        RejectionKind::Invalid => IngestOutcome::Invalid,
        RejectionKind::TooLarge => IngestOutcome::TooLarge,
        RejectionKind::UnsupportedEncoding => IngestOutcome::Unsupported,
    };
    let status = StatusCode::from_u16(r.kind.status()).unwrap_or(StatusCode::BAD_REQUEST);
    (outcome, (status, Json(r.body())).into_response())
}

fn error(status: StatusCode, message: &str, field: Option<&str>) -> Response {
    (
        status,
        Json(ErrorBody {
            error: message.to_string(),
            field: field.map(String::from),
            limit: None,
        }),
    )
        .into_response()
}

fn unavailable(message: &str) -> Response {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, message, None);
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    r
}
