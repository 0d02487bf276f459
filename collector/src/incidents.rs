//! Incidents: the ITIL record a breach becomes, and its lifecycle. Pure: every
//! transition takes the time as an argument and appends to the timeline.
//!
//! States: `open → acknowledged → resolved → closed`. An incident is *live*
//! while open or acknowledged; at most one live incident exists per
//! fingerprint (rule + host + the series' distinguishing labels).
//!
//! Timestamps (all kept, milliseconds since the epoch): `started_at` (first
//! breaching sample's own time), `detected_at` (opened), `acknowledged_at`,
//! `restored_at` (the condition cleared), `resolved_at` (automatically on
//! restore, or by hand), `closed_at`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use sha2::{Digest, Sha256};

mod problems;
mod recorded;
mod states;

pub use self::problems::{Problem, ProblemState};
pub use self::recorded::{observations, Kpi, Observation, Recorded};
pub use self::states::{EventKind, IncidentState, Origin, Resolution};

/// Series labels, sorted.
pub type Labels = BTreeMap<String, String>;

/// One entry of an incident's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentEvent {
    pub at_ms: i64,
    pub kind: EventKind,
    /// Who did it (`vedette` for automatic transitions).
    pub actor: String,
    pub note: Option<String>,
}

/// The actor recorded for transitions the collector makes by itself.
pub const SYSTEM_ACTOR: &str = "vedette";

/// ITIL priority from impact and urgency (each 1 high … 3 low):
/// `P = impact + urgency − 1`, clamped to 1…5.
pub fn priority(impact: u8, urgency: u8) -> u8 {
    (impact as i16 + urgency as i16 - 1).clamp(1, 5) as u8
}

/// The stable identity of an alert: rule, host and distinguishing labels,
/// as 32 hex digits (128 bits of SHA-256 over [`identity_bytes`]).
///
/// An incident keeps the fingerprint it was opened with: incidents stored
/// by earlier versions keep their 16-digit ones (receivers such as
/// PagerDuty deduplicate on it), new incidents get this one.
pub fn fingerprint(rule: &str, host: &str, labels: &Labels) -> String {
    let digest = Sha256::digest(identity_bytes(rule, host, labels));
    hex::encode(&digest[..16])
}

/// The unambiguous encoding a fingerprint hashes: a version tag, then rule,
/// host, the label count and every label name and value, each prefixed by
/// its length. No two different alerts encode alike, whatever bytes their
/// names and values hold (a separator inside a value cannot fake a field).
pub fn identity_bytes(rule: &str, host: &str, labels: &Labels) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        16 + rule.len()
            + host.len()
            + labels
                .iter()
                .map(|(k, v)| 16 + k.len() + v.len())
                .sum::<usize>(),
    );
    let mut field = |b: &[u8]| {
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
    };
    field(b"vedette-alert-v2");
    field(rule.as_bytes());
    field(host.as_bytes());
    field(&(labels.len() as u64).to_le_bytes());
    for (k, v) in labels {
        field(k.as_bytes());
        field(v.as_bytes());
    }
    out
}

/// What opened an incident.
#[derive(Debug, Clone)]
pub struct Opening {
    pub origin: Origin,
    pub rule: String,
    pub host: String,
    pub labels: Labels,
    pub impact: u8,
    pub urgency: u8,
    pub summary: String,
    pub description: String,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub started_ms: i64,
}

/// An incident as stored and served.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Store-assigned; 0 until first saved.
    pub id: i64,
    pub fingerprint: String,
    pub origin: Origin,
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
    pub started_at_ms: i64,
    pub detected_at_ms: i64,
    pub acknowledged_at_ms: Option<i64>,
    pub restored_at_ms: Option<i64>,
    pub resolved_at_ms: Option<i64>,
    pub closed_at_ms: Option<i64>,
    pub resolution: Option<Resolution>,
    pub occurrences: u32,
    pub problem_id: Option<i64>,
    pub flapping: bool,
    pub events: Vec<IncidentEvent>,
}

/// A transition that does not apply to the incident's current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("incident {id} is {state}; it cannot be {action}")]
pub struct InvalidTransition {
    pub id: i64,
    pub state: IncidentState,
    pub action: &'static str,
}

impl Incident {
    /// A new open incident, detected at `now_ms`.
    pub fn open(o: Opening, now_ms: i64) -> Incident {
        Incident {
            id: 0,
            fingerprint: fingerprint(&o.rule, &o.host, &o.labels),
            origin: o.origin,
            priority: priority(o.impact, o.urgency),
            rule: o.rule,
            host: o.host,
            labels: o.labels,
            state: IncidentState::Open,
            impact: o.impact,
            urgency: o.urgency,
            summary: o.summary,
            description: o.description,
            value: o.value,
            threshold: o.threshold,
            // A sample stamped after its own detection (agent clock ahead) is
            // clamped so MTTD is never negative.
            started_at_ms: o.started_ms.min(now_ms),
            detected_at_ms: now_ms,
            acknowledged_at_ms: None,
            restored_at_ms: None,
            resolved_at_ms: None,
            closed_at_ms: None,
            resolution: None,
            occurrences: 1,
            problem_id: None,
            flapping: false,
            events: vec![IncidentEvent {
                at_ms: now_ms,
                kind: EventKind::Opened,
                actor: SYSTEM_ACTOR.into(),
                note: None,
            }],
        }
    }

    /// An operator acknowledges: only an open incident can be.
    pub fn acknowledge(
        &mut self,
        actor: &str,
        note: Option<String>,
        now_ms: i64,
    ) -> Result<(), InvalidTransition> {
        if self.state != IncidentState::Open {
            return Err(self.invalid("acknowledged"));
        }
        self.state = IncidentState::Acknowledged;
        self.acknowledged_at_ms = Some(now_ms);
        self.push(EventKind::Acknowledged, actor, note, now_ms);
        Ok(())
    }

    /// Someone adds a note to the timeline, in any state (a post-mortem
    /// finding on a closed incident too); an empty note is refused.
    pub fn note(&mut self, actor: &str, note: &str, now_ms: i64) -> Result<(), InvalidTransition> {
        if note.trim().is_empty() {
            return Err(self.invalid("noted without a note"));
        }
        self.push(
            EventKind::Noted,
            actor,
            Some(note.trim().to_string()),
            now_ms,
        );
        Ok(())
    }

    /// An operator resolves a live incident by hand.
    pub fn resolve(
        &mut self,
        actor: &str,
        note: Option<String>,
        now_ms: i64,
    ) -> Result<(), InvalidTransition> {
        if !self.state.is_live() {
            return Err(self.invalid("resolved"));
        }
        self.state = IncidentState::Resolved;
        self.resolved_at_ms = Some(now_ms);
        self.resolution = Some(Resolution::Manual);
        self.push(EventKind::Resolved, actor, note, now_ms);
        Ok(())
    }

    /// The condition cleared now: [`Incident::restore_at`] `now_ms`.
    pub fn restore(&mut self, now_ms: i64) -> bool {
        self.restore_at(now_ms, now_ms)
    }

    /// The condition cleared at `restored_ms` (the first clear sample's
    /// time, kept within this cycle's start and `now_ms`): record the
    /// restore then and, if still live, resolve automatically now. Returns
    /// true when the incident was resolved by this call.
    pub fn restore_at(&mut self, restored_ms: i64, now_ms: i64) -> bool {
        if self.restored_at_ms.is_none() {
            let cycle_start = self
                .events
                .iter()
                .rev()
                .find(|e| e.kind == EventKind::Reopened)
                .map_or(self.started_at_ms, |e| e.at_ms);
            let at = restored_ms.max(cycle_start).min(now_ms);
            self.restored_at_ms = Some(at);
            self.push(EventKind::Restored, SYSTEM_ACTOR, None, at);
        }
        if !self.state.is_live() {
            return false;
        }
        self.state = IncidentState::Resolved;
        self.resolved_at_ms = Some(now_ms);
        self.resolution = Some(Resolution::Auto);
        self.push(EventKind::Resolved, SYSTEM_ACTOR, None, now_ms);
        true
    }

    /// The breach came back soon after resolution: the same incident opens
    /// again for this occurrence (acknowledge, restore and resolve start over;
    /// the timeline keeps the earlier ones). Only a resolved incident can.
    pub fn reopen(&mut self, value: Option<f64>, now_ms: i64) -> Result<(), InvalidTransition> {
        if self.state != IncidentState::Resolved {
            return Err(self.invalid("reopened"));
        }
        self.state = IncidentState::Open;
        self.occurrences += 1;
        self.value = value;
        self.acknowledged_at_ms = None;
        self.restored_at_ms = None;
        self.resolved_at_ms = None;
        self.resolution = None;
        self.push(EventKind::Reopened, SYSTEM_ACTOR, None, now_ms);
        Ok(())
    }

    /// A resolved incident is closed (`close_after` passed): it can no longer reopen.
    pub fn close(&mut self, now_ms: i64) -> Result<(), InvalidTransition> {
        if self.state != IncidentState::Resolved {
            return Err(self.invalid("closed"));
        }
        self.state = IncidentState::Closed;
        self.closed_at_ms = Some(now_ms);
        self.push(EventKind::Closed, SYSTEM_ACTOR, None, now_ms);
        Ok(())
    }

    /// Marks the incident flapping or settled; returns false if nothing changed.
    pub fn set_flapping(&mut self, flapping: bool, percent: f64, now_ms: i64) -> bool {
        if self.flapping == flapping {
            return false;
        }
        self.flapping = flapping;
        let kind = if flapping {
            EventKind::FlappingStarted
        } else {
            EventKind::FlappingStopped
        };
        let note = format!("{percent:.1}% state change over the last 21 evaluations");
        self.push(kind, SYSTEM_ACTOR, Some(note), now_ms);
        true
    }

    fn push(&mut self, kind: EventKind, actor: &str, note: Option<String>, at_ms: i64) {
        self.events.push(IncidentEvent {
            at_ms,
            kind,
            actor: actor.to_string(),
            note,
        });
    }

    fn invalid(&self, action: &'static str) -> InvalidTransition {
        InvalidTransition {
            id: self.id,
            state: self.state,
            action,
        }
    }

    /// `P1` … `P5`, the label value used in metrics.
    pub fn priority_label(&self) -> &'static str {
        priority_label(self.priority)
    }
}

/// `P1` … `P5`.
pub fn priority_label(p: u8) -> &'static str {
    match p {
        1 => "P1",
        2 => "P2",
        3 => "P3",
        4 => "P4",
        _ => "P5",
    }
}

#[cfg(test)]
impl Opening {
    /// A P2 `cpu_high` breach on `host` (core 0 at 0.95 over 0.9), for
    /// tests of the modules that keep and route incidents.
    pub(crate) fn for_test(host: &str) -> Opening {
        Opening {
            origin: Origin::Rule,
            rule: "cpu_high".into(),
            host: host.into(),
            labels: Labels::from([("core".into(), "0".into())]),
            impact: 1,
            urgency: 2,
            summary: "cpu".into(),
            description: "d".into(),
            value: Some(0.95),
            threshold: Some(0.9),
            started_ms: 1_000,
        }
    }
}

#[cfg(test)]
mod tests;
