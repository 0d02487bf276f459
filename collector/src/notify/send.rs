//! What each receiver kind sends, and how its answers are read.
//!
//! The body builders are pure so tests can hold them against the documented
//! shapes (`shared/reference/itsm-apis.md`); [`deliver`] does the HTTP.

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;

use super::{Kind, Secret};
use crate::incidents::Labels;
use crate::outbox::Event;

/// The fields of an outbox payload the non-webhook kinds need (the payload
/// is the incident as the API shows it, plus `event`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Snapshot {
    pub event: Event,
    pub id: i64,
    pub fingerprint: String,
    pub rule: String,
    pub host: String,
    #[serde(default)]
    pub labels: Labels,
    #[serde(default)]
    pub priority: u8,
    #[serde(default)]
    pub impact: u8,
    #[serde(default)]
    pub urgency: u8,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub description: String,
    pub started_at: Option<String>,
    pub resolved_at: Option<String>,
    pub resolution: Option<String>,
    #[serde(default)]
    pub events: Vec<SnapshotEvent>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SnapshotEvent {
    pub kind: String,
    pub actor: String,
    pub note: Option<String>,
}

impl Snapshot {
    /// Who did the last step, and what they said.
    fn last_note(&self) -> String {
        match self.events.last() {
            Some(e) => match &e.note {
                Some(n) => format!("{} by {}: {n}", e.kind, e.actor),
                None => format!("{} by {}", e.kind, e.actor),
            },
            None => String::new(),
        }
    }
}

/// Why a delivery did not happen.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failure {
    /// Worth another attempt (network, timeout, 408, 429, 5xx), after
    /// `after` when the receiver said so (`Retry-After`).
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// Refused for good (any other 4xx): sending it again cannot help.
    Reject(String),
}

/// A delivery that went through; `external_id` is the record the receiver
/// made (ServiceNow's `sys_id`), kept for the next events of the incident.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Delivered {
    pub external_id: Option<String>,
}

/// `X-Vedette-Signature` for `body` sent at `timestamp` (unix seconds).
pub(crate) fn signature(secret: &Secret, timestamp: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.0.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Alertmanager's and PagerDuty's word for a priority.
pub(crate) fn severity(priority: u8) -> &'static str {
    match priority {
        1 => "critical",
        2 => "error",
        3 => "warning",
        _ => "info",
    }
}

/// One postable alert (API v2). A resolved incident carries `endsAt`;
/// a firing one none, so Alertmanager holds it for its `resolve_timeout`
/// and the worker re-sends it every minute while it is live.
pub(crate) fn alertmanager_alert(s: &Snapshot) -> Value {
    let mut labels = serde_json::Map::new();
    for (k, v) in &s.labels {
        labels.insert(k.clone(), json!(v));
    }
    labels.insert("alertname".into(), json!(s.rule));
    labels.insert("host".into(), json!(s.host));
    labels.insert("severity".into(), json!(severity(s.priority)));
    let mut alert = json!({
        "labels": labels,
        "annotations": {
            "summary": s.summary,
            "description": s.description,
            "incident_id": s.id.to_string(),
            "priority": format!("P{}", s.priority),
        },
    });
    if let Some(start) = &s.started_at {
        alert["startsAt"] = json!(start);
    }
    if s.event == Event::Resolved {
        alert["endsAt"] = json!(s
            .resolved_at
            .clone()
            .unwrap_or_else(|| chrono::Utc::now().to_rfc3339()));
    }
    alert
}

/// The PagerDuty Events API v2 event for a transition (`None`: nothing to send).
pub(crate) fn pagerduty_event(routing_key: &Secret, s: &Snapshot) -> Option<Value> {
    let action = match s.event {
        Event::Opened | Event::Reopened => "trigger",
        Event::Acknowledged => "acknowledge",
        Event::Resolved => "resolve",
        Event::Closed | Event::ProblemOpened => return None,
    };
    let mut event = json!({
        "routing_key": routing_key.0,
        "event_action": action,
        "dedup_key": s.fingerprint,
    });
    if action == "trigger" {
        let summary: String = s.summary.chars().take(1024).collect();
        event["payload"] = json!({
            "summary": if summary.is_empty() { s.rule.clone() } else { summary },
            "source": s.host,
            "severity": severity(s.priority),
            "timestamp": s.started_at,
            "component": s.labels.get("check").unwrap_or(&s.rule),
            "class": s.rule,
            "custom_details": {
                "incident_id": s.id,
                "priority": format!("P{}", s.priority),
                "impact": s.impact,
                "urgency": s.urgency,
                "description": s.description,
                "labels": s.labels,
            },
        });
        event["client"] = json!("vedette");
    }
    Some(event)
}

/// ServiceNow's key for the incident: fingerprint and incident id, so a
/// reopened vedette incident updates its record and a new one gets a new one.
pub(crate) fn correlation_id(s: &Snapshot) -> String {
    format!("{}/{}", s.fingerprint, s.id)
}

/// The fields of a new ServiceNow incident record.
pub(crate) fn servicenow_create(s: &Snapshot) -> Value {
    json!({
        "short_description": s.summary.chars().take(160).collect::<String>(),
        "description": format!("{}\n\nvedette incident {} (rule {}, host {}, P{})",
            s.description, s.id, s.rule, s.host, s.priority),
        "impact": s.impact.clamp(1, 3).to_string(),
        "urgency": s.urgency.clamp(1, 3).to_string(),
        "cmdb_ci": s.host,
        "correlation_id": correlation_id(s),
        "correlation_display": "vedette",
    })
}

/// The update a transition makes to the record (`None`: creating it is all).
pub(crate) fn servicenow_update(s: &Snapshot, close_code: &str) -> Option<Value> {
    match s.event {
        Event::Opened => None,
        Event::Acknowledged => Some(json!({"state": "2", "work_notes": s.last_note()})),
        Event::Reopened => Some(json!({"state": "1", "work_notes": s.last_note()})),
        Event::Resolved => Some(json!({
            "state": "6",
            "close_code": close_code,
            "close_notes": format!("{} ({})", s.last_note(),
                s.resolution.as_deref().unwrap_or("resolved")),
        })),
        Event::Closed | Event::ProblemOpened => None,
    }
}

/// Reads an answer: 2xx is done, 408/429/5xx are retried (honouring
/// `Retry-After` in seconds), any other 4xx is refused for good.
pub(crate) fn classify(
    status: StatusCode,
    retry_after: Option<&str>,
    body: &str,
) -> Result<(), Failure> {
    if status.is_success() {
        return Ok(());
    }
    let snippet: String = body.chars().take(200).collect();
    let error = format!("HTTP {status}: {}", snippet.trim());
    if status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        let after = retry_after
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Err(Failure::Retry { error, after })
    } else {
        Err(Failure::Reject(error))
    }
}

/// Answers are read up to this size; receivers answer small.
const MAX_ANSWER: usize = 64 * 1024;

async fn call(
    rb: reqwest::RequestBuilder,
) -> Result<(StatusCode, Option<String>, String), Failure> {
    let resp = rb.send().await.map_err(|e| Failure::Retry {
        error: error_chain(&e),
        after: None,
    })?;
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut body = Vec::new();
    let mut resp = resp;
    while let Ok(Some(chunk)) = resp.chunk().await {
        body.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER - body.len())]);
        if body.len() >= MAX_ANSWER {
            break;
        }
    }
    Ok((
        status,
        retry_after,
        String::from_utf8_lossy(&body).into_owned(),
    ))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

async fn checked(rb: reqwest::RequestBuilder) -> Result<String, Failure> {
    let (status, retry_after, body) = call(rb).await?;
    classify(status, retry_after.as_deref(), &body)?;
    Ok(body)
}

/// One row to deliver.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing<'a> {
    pub event: Event,
    pub key: &'a str,
    pub payload: &'a str,
    /// What an earlier delivery for the same subject recorded (ServiceNow's `sys_id`).
    pub external_id: Option<&'a str>,
}

/// Sends one row to a receiver.
pub(crate) async fn deliver(
    client: &reqwest::Client,
    kind: &Kind,
    row: Outgoing<'_>,
) -> Result<Delivered, Failure> {
    let snapshot = || {
        serde_json::from_str::<Snapshot>(row.payload)
            .map_err(|e| Failure::Reject(format!("outbox payload unreadable: {e}")))
    };
    match kind {
        Kind::Webhook { url, secret } => {
            let ts = chrono::Utc::now().timestamp();
            let mut rb = client
                .post(url)
                .header("content-type", "application/json")
                .header("idempotency-key", row.key)
                .header("x-vedette-event", row.event.as_str())
                .header("x-vedette-timestamp", ts.to_string());
            if let Some(secret) = secret {
                rb = rb.header("x-vedette-signature", signature(secret, ts, row.payload));
            }
            checked(rb.body(row.payload.to_string())).await?;
            Ok(Delivered::default())
        }
        Kind::Alertmanager { url } => {
            let alerts = json!([alertmanager_alert(&snapshot()?)]);
            checked(client.post(alerts_url(url)).json(&alerts)).await?;
            Ok(Delivered::default())
        }
        Kind::PagerDuty { url, routing_key } => {
            let Some(event) = pagerduty_event(routing_key, &snapshot()?) else {
                return Ok(Delivered::default());
            };
            checked(client.post(url).json(&event)).await?;
            Ok(Delivered::default())
        }
        Kind::ServiceNow {
            instance_url,
            username,
            password,
            close_code,
        } => {
            let s = snapshot()?;
            let table = format!(
                "{}/api/now/table/incident",
                instance_url.trim_end_matches('/')
            );
            let auth = |rb: reqwest::RequestBuilder| {
                rb.basic_auth(username, Some(&password.0))
                    .header("accept", "application/json")
            };
            let sys_id = match row.external_id {
                Some(id) => id.to_string(),
                None => match servicenow_lookup(client, &table, &s, &auth).await? {
                    Some(id) => id,
                    None => {
                        let body =
                            checked(auth(client.post(&table)).json(&servicenow_create(&s))).await?;
                        sys_id_of(&body)?
                    }
                },
            };
            if let Some(update) = servicenow_update(&s, close_code) {
                checked(auth(client.patch(format!("{table}/{sys_id}"))).json(&update)).await?;
            }
            Ok(Delivered {
                external_id: Some(sys_id),
            })
        }
    }
}

/// Alertmanager's alerts endpoint under its base URL.
pub(crate) fn alerts_url(base: &str) -> String {
    format!("{}/api/v2/alerts", base.trim_end_matches('/'))
}

/// Looks the record up by `correlation_id` first, so a retry after a lost
/// answer never creates a second one (the Table API has no upsert).
async fn servicenow_lookup(
    client: &reqwest::Client,
    table: &str,
    s: &Snapshot,
    auth: &impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> Result<Option<String>, Failure> {
    let query = format!("correlation_id={}", correlation_id(s));
    let body = checked(auth(client.get(table)).query(&[
        ("sysparm_query", query.as_str()),
        ("sysparm_fields", "sys_id"),
        ("sysparm_limit", "1"),
    ]))
    .await?;
    let v: Value = serde_json::from_str(&body).map_err(|e| Failure::Retry {
        error: format!("ServiceNow answered with unreadable JSON: {e}"),
        after: None,
    })?;
    Ok(v["result"]
        .as_array()
        .and_then(|r| r.first())
        .and_then(|r| r["sys_id"].as_str())
        .map(str::to_string))
}

fn sys_id_of(body: &str) -> Result<String, Failure> {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    v["result"]["sys_id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Failure::Retry {
            error: "ServiceNow created a record but returned no result.sys_id".into(),
            after: None,
        })
}

#[cfg(test)]
mod tests;
