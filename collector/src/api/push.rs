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
use axum::{Extension, Json};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use vedette_protocol::{Encoding, ErrorBody, Rejection, RejectionKind};

use super::AppState;
use crate::config::{token_digest, AgentToken};
use crate::engine::{ApplyError, SubmitError};
use crate::metrics::IngestOutcome;
use crate::tls::PeerCert;
use vedette_protocol::clock::now_ms;

/// The push handler.
pub(super) async fn push(
    State(app): State<AppState>,
    cert: Option<Extension<PeerCert>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let cert = cert.map(|Extension(c)| c);
    let (outcome, response) = handle(&app, cert.as_ref(), &headers, body).await;
    app.metrics.ingest(outcome);
    response
}

/// A refused request: how it is counted and what the caller is told.
struct Refused(Box<(IngestOutcome, Response)>);

impl Refused {
    fn new(outcome: IngestOutcome, response: Response) -> Refused {
        Refused(Box::new((outcome, response)))
    }
}

async fn handle(
    app: &AppState,
    cert: Option<&PeerCert>,
    headers: &HeaderMap,
    body: Body,
) -> (IngestOutcome, Response) {
    match accept(app, cert, headers, body).await {
        Ok(answer) => answer,
        Err(Refused(refused)) => *refused,
    }
}

/// Each step refuses with its own answer before the next one runs.
async fn accept(
    app: &AppState,
    cert: Option<&PeerCert>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(IngestOutcome, Response), Refused> {
    let config = app.config();
    let allowed = caller(&config.agents, headers)?;
    if let Some(token) = allowed {
        may_use_cert(token, cert)?;
    }
    let encoding = encoding(headers)?;
    let bytes = read_body(body, app.limits.max_body_bytes).await?;
    let batch = decode(app, bytes, encoding).await?;
    if let Some(token) = allowed {
        may_push_as(token, &batch.agent.host)?;
    }
    let host = batch.agent.host.clone();
    let applied = app.engine.push(batch, allowed.map(AgentToken::id)).await;
    Ok(answer(app, &host, applied))
}

/// Which agent token the caller holds. None: any host may push (no tokens
/// are configured, so the listener is loopback only).
fn caller<'c>(
    agents: &'c [AgentToken],
    headers: &HeaderMap,
) -> Result<Option<&'c AgentToken>, Refused> {
    if agents.is_empty() {
        return Ok(None);
    }
    let Some(token) = bearer(headers) else {
        return Err(Refused::new(
            IngestOutcome::Unauthorized,
            error(
                StatusCode::UNAUTHORIZED,
                "missing bearer token; send `Authorization: Bearer <agent token>`",
                None,
            ),
        ));
    };
    let digest = token_digest(token);
    // Check every token so the time taken does not reveal which matched.
    let mut found = None;
    for (i, t) in agents.iter().enumerate() {
        if t.matches(&digest) && found.is_none() {
            found = Some(i);
        }
    }
    match found {
        Some(i) => Ok(Some(&agents[i])),
        None => Err(Refused::new(
            IngestOutcome::Unauthorized,
            error(StatusCode::UNAUTHORIZED, "unknown agent token", None),
        )),
    }
}

/// The body's encoding, once its content type is JSON (or unsaid).
fn encoding(headers: &HeaderMap) -> Result<Encoding, Refused> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        if !ct
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("application/json")
        {
            return Err(Refused::new(
                IngestOutcome::Unsupported,
                error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "content-type must be application/json",
                    None,
                ),
            ));
        }
    }
    Encoding::from_header(
        headers
            .get(header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap_or("?")),
    )
    .map_err(|r| {
        let (outcome, response) = rejection(&r);
        Refused::new(outcome, response)
    })
}

/// The body, read up to `limit` bytes (413 past it).
async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, Refused> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(Refused::new(
            IngestOutcome::TooLarge,
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("body is over the limit of {limit} bytes; send smaller batches"),
                None,
            ),
        )),
        Err(e) => Err(Refused::new(
            IngestOutcome::Invalid,
            error(
                StatusCode::BAD_REQUEST,
                &format!("reading body failed: {e}"),
                None,
            ),
        )),
    }
}

/// Decodes and validates the batch (CPU work bounded by the limits, kept
/// off the reactor).
async fn decode(
    app: &AppState,
    bytes: axum::body::Bytes,
    encoding: Encoding,
) -> Result<vedette_protocol::Batch, Refused> {
    let limits = app.limits.clone();
    let decoded = tokio::task::spawn_blocking(move || {
        vedette_protocol::decode(&bytes, encoding, &limits, now_ms())
    })
    .await;
    match decoded {
        Ok(Ok(batch)) => Ok(batch),
        Ok(Err(r)) => {
            let (outcome, response) = rejection(&r);
            Err(Refused::new(outcome, response))
        }
        Err(e) => {
            tracing::error!(error = %e, "decode task failed");
            Err(Refused::new(
                IngestOutcome::Unavailable,
                error(StatusCode::INTERNAL_SERVER_ERROR, "internal error", None),
            ))
        }
    }
}

/// 403 unless `token` may push as `host`.
/// How many of a certificate's names a refusal repeats.
const NAMES_SHOWN: usize = 5;

/// A token bound to `cert_names` is good only on a connection whose client
/// certificate carries a matching DNS name (a stolen token alone is not enough).
fn may_use_cert(token: &AgentToken, cert: Option<&PeerCert>) -> Result<(), Refused> {
    let names = cert.map(|c| &c.dns_names[..]).unwrap_or_default();
    if token.allows_cert(names) {
        return Ok(());
    }
    let presented = if cert.is_none() {
        "the connection presented no client certificate".to_string()
    } else if names.is_empty() {
        "the client certificate carries no DNS name".to_string()
    } else {
        let mut shown: Vec<String> = names
            .iter()
            .take(NAMES_SHOWN)
            // A certificate's names are the client's words: shown only as
            // name characters, so nothing else reaches a log or terminal.
            .map(|n| {
                n.chars()
                    .take(253)
                    .map(|c| match c {
                        'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' | '*' => c,
                        _ => '?',
                    })
                    .collect()
            })
            .collect();
        if names.len() > NAMES_SHOWN {
            shown.push(format!("… {} more", names.len() - NAMES_SHOWN));
        }
        format!("the client certificate names {}", shown.join(", "))
    };
    Err(Refused::new(
        IngestOutcome::Forbidden,
        error(
            StatusCode::FORBIDDEN,
            &format!(
                "this token is bound to client certificates named {}; {presented}",
                token.cert_names.join(", ")
            ),
            None,
        ),
    ))
}

fn may_push_as(token: &AgentToken, host: &str) -> Result<(), Refused> {
    if token.allows(host) {
        return Ok(());
    }
    Err(Refused::new(
        IngestOutcome::Forbidden,
        error(
            StatusCode::FORBIDDEN,
            &format!(
                "this token may not push as host '{host}' (allowed: {})",
                token.hosts.join(", ")
            ),
            Some("agent.host"),
        ),
    ))
}

/// The answer to a batch the engine was given.
fn answer(
    app: &AppState,
    host: &str,
    applied: Result<Result<vedette_protocol::PushAck, ApplyError>, SubmitError>,
) -> (IngestOutcome, Response) {
    match applied {
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
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
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
