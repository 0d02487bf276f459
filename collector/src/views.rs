//! The JSON shapes of domain records, as the REST API serves them and
//! webhook receivers get them (a contract: DESIGN.md → endpoints). Pure
//! conversions: timestamps become RFC 3339 UTC strings, nothing is looked up.

use chrono::{DateTime, SecondsFormat};
use serde::Serialize;

use crate::incidents::{Incident, IncidentState, Labels, Problem, ProblemState};
use crate::outbox::DeliveryRow;
use crate::windows::{Change, ChangeOutcome, Phase, ScopeSpec, WindowKind};

/// An incident as the API serves it (a contract: DESIGN.md → endpoints).
#[derive(Debug, Serialize)]
pub(crate) struct IncidentView {
    pub id: i64,
    pub fingerprint: String,
    /// `rule` (the collector's rules) or `alertmanager` (its webhook).
    pub origin: crate::incidents::Origin,
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
    /// Notifications of this incident (`GET /api/v1/incidents/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<Vec<DeliveryView>>,
}

/// One timeline entry.
#[derive(Debug, Serialize)]
pub(crate) struct EventView {
    pub at: Option<String>,
    pub kind: crate::incidents::EventKind,
    pub actor: String,
    pub note: Option<String>,
}

/// RFC 3339 with milliseconds, UTC.
pub(crate) fn rfc3339(ms: i64) -> Option<String> {
    DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

impl From<Incident> for IncidentView {
    fn from(i: Incident) -> Self {
        IncidentView {
            id: i.id,
            fingerprint: i.fingerprint,
            origin: i.origin,
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
            deliveries: None,
        }
    }
}

/// One notification of an incident to one receiver.
#[derive(Debug, Serialize)]
pub(crate) struct DeliveryView {
    pub receiver: String,
    pub event: String,
    /// `pending`, `delivered`, `rejected` (refused for good) or `expired`.
    pub state: String,
    pub attempts: u32,
    pub created_at: Option<String>,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub done_at: Option<String>,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(d: DeliveryRow) -> Self {
        let pending = d.state == "pending";
        DeliveryView {
            receiver: d.receiver,
            event: d.event,
            state: d.state,
            attempts: d.attempts,
            created_at: rfc3339(d.created_at_ms),
            next_attempt_at: if pending { rfc3339(d.next_at_ms) } else { None },
            last_error: d.last_error,
            done_at: d.done_at_ms.and_then(rfc3339),
        }
    }
}

/// A problem as the API serves it.
#[derive(Debug, Serialize)]
pub(crate) struct ProblemView {
    pub id: i64,
    pub fingerprint: String,
    pub rule: String,
    pub host: String,
    pub state: ProblemState,
    pub incident_ids: Vec<i64>,
    pub opened_at: Option<String>,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    pub note: Option<String>,
}

impl From<Problem> for ProblemView {
    fn from(p: Problem) -> Self {
        ProblemView {
            id: p.id,
            fingerprint: p.fingerprint,
            rule: p.rule,
            host: p.host,
            state: p.state,
            incident_ids: p.incident_ids,
            opened_at: rfc3339(p.opened_at_ms),
            resolved_at: p.resolved_at_ms.and_then(rfc3339),
            resolved_by: p.resolved_by,
            note: p.note,
        }
    }
}

/// A change as the API serves it.
#[derive(Debug, Serialize)]
pub(crate) struct ChangeView {
    pub id: i64,
    pub title: String,
    pub scope: ScopeSpec,
    pub start: Option<String>,
    pub end: Option<String>,
    /// As a humantime duration (`30m`).
    pub verify_for: String,
    /// `scheduled`, `in_progress`, `verifying`, `successful` or `failed`.
    pub state: &'static str,
    pub outcome: Option<ChangeOutcome>,
    pub outcome_note: Option<String>,
    pub created_by: String,
    pub created_at: Option<String>,
}

impl ChangeView {
    pub(crate) fn new(c: Change, now_ms: i64) -> ChangeView {
        let state = match (c.outcome, c.phase(now_ms)) {
            (Some(o), _) => o.as_str(),
            (None, Phase::Scheduled) => "scheduled",
            (None, Phase::InProgress) => "in_progress",
            // Done without an outcome: decided at the engine's next tick.
            (None, Phase::Verifying | Phase::Done) => "verifying",
        };
        ChangeView {
            id: c.id,
            title: c.title,
            scope: c.scope.spec,
            start: rfc3339(c.start_ms),
            end: rfc3339(c.end_ms),
            verify_for: humantime::format_duration(c.verify_for).to_string(),
            state,
            outcome: c.outcome,
            outcome_note: c.outcome_note,
            created_by: c.created_by,
            created_at: rfc3339(c.created_at_ms),
        }
    }
}

/// A suppressed breach as the API serves it.
#[derive(Debug, Serialize)]
pub(crate) struct SuppressionView {
    pub id: i64,
    pub at: Option<String>,
    pub fingerprint: String,
    pub rule: String,
    pub host: String,
    pub labels: Labels,
    pub summary: String,
    pub window_kind: WindowKind,
    pub window: String,
    pub change_id: Option<i64>,
}
