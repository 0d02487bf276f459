//! The outbox's records: what a receiver is told about ([`Event`]), a row to
//! write ([`Enqueue`]), a pending row as the delivery worker reads it
//! ([`OutboxRow`]), how an attempt ended ([`Attempt`]) and one delivery as the
//! API shows it ([`DeliveryRow`]). Pure data: routing decides the rows
//! ([`crate::notify`]), the store keeps them, the worker delivers them.

use serde::{Deserialize, Serialize};

use crate::incidents::EventKind;

/// What a receiver is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Opened,
    Acknowledged,
    Resolved,
    Reopened,
    Closed,
    ProblemOpened,
}

impl Event {
    pub const ALL: [Event; 6] = [
        Event::Opened,
        Event::Acknowledged,
        Event::Resolved,
        Event::Reopened,
        Event::Closed,
        Event::ProblemOpened,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::Opened => "opened",
            Event::Acknowledged => "acknowledged",
            Event::Resolved => "resolved",
            Event::Reopened => "reopened",
            Event::Closed => "closed",
            Event::ProblemOpened => "problem_opened",
        }
    }

    pub fn parse(s: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// The notification an incident timeline entry makes, if any (restore
    /// is followed by resolve, flapping keeps one incident open).
    pub fn of(kind: EventKind) -> Option<Event> {
        match kind {
            EventKind::Opened => Some(Event::Opened),
            EventKind::Acknowledged => Some(Event::Acknowledged),
            EventKind::Resolved => Some(Event::Resolved),
            EventKind::Reopened => Some(Event::Reopened),
            EventKind::Closed => Some(Event::Closed),
            EventKind::Restored
            | EventKind::FlappingStarted
            | EventKind::FlappingStopped
            | EventKind::Noted => None,
        }
    }
}

/// One outbox row to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Enqueue {
    pub receiver: String,
    /// `incident:<id>` or `problem:<id>`: rows of one subject go in order.
    pub subject: String,
    pub event: Event,
    /// Stable per transition and receiver: what the receiver deduplicates on.
    pub key: String,
    /// What to send: the incident (or problem) as the API shows it, plus `event`.
    pub payload: String,
}

/// A pending outbox row, as the delivery worker needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub subject: String,
    pub event: Event,
    pub key: String,
    pub payload: String,
    pub created_at_ms: i64,
    pub attempts: u32,
    pub next_at_ms: i64,
    /// What an earlier delivery of the subject to this receiver recorded.
    pub external_id: Option<String>,
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Delivered { external_id: Option<String> },
    Retry { error: String, next_at_ms: i64 },
    Rejected(String),
    Expired(String),
}

/// One delivery, as `GET /api/v1/incidents/{id}` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRow {
    pub receiver: String,
    pub event: String,
    /// `pending`, `delivered`, `rejected` or `expired`.
    pub state: String,
    pub attempts: u32,
    pub created_at_ms: i64,
    pub next_at_ms: i64,
    pub last_error: Option<String>,
    pub done_at_ms: Option<i64>,
}
