//! Domain events (what a committed transaction did) and the incident KPIs
//! they measure.

use super::*;

/// The incident KPIs published as histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kpi {
    /// detected − started (MTTD).
    Detection,
    /// acknowledged − detected (MTTA).
    Acknowledge,
    /// restored − started (MTRS).
    Restore,
    /// resolved − detected (MTTR).
    Resolution,
}

/// One KPI measurement of one incident.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub kpi: Kpi,
    pub priority: u8,
    pub seconds: f64,
}

/// The KPI measurements that events `from..` of an incident make, walking the
/// whole timeline for context. A reopening starts a new cycle (its breach
/// began, as far as the collector knows, when it reopened): it is not a new
/// detection, but its acknowledgement, restore and resolution are measured
/// from it. The same function replays the store at start and observes live
/// transitions, so the histograms neither reset nor double on restart.
pub fn observations(
    started_at_ms: i64,
    priority: u8,
    events: impl IntoIterator<Item = (i64, EventKind)>,
    from: usize,
) -> Vec<Observation> {
    let mut out = Vec::new();
    let (mut started, mut detected) = (started_at_ms, started_at_ms);
    for (i, (at, kind)) in events.into_iter().enumerate() {
        let measured = match kind {
            EventKind::Opened => {
                detected = at;
                Some((Kpi::Detection, at.saturating_sub(started)))
            }
            EventKind::Reopened => {
                (started, detected) = (at, at);
                None
            }
            EventKind::Acknowledged => Some((Kpi::Acknowledge, at.saturating_sub(detected))),
            EventKind::Restored => Some((Kpi::Restore, at.saturating_sub(started))),
            EventKind::Resolved => Some((Kpi::Resolution, at.saturating_sub(detected))),
            _ => None,
        };
        if let (Some((kpi, ms)), true) = (measured, i >= from) {
            out.push(Observation {
                kpi,
                priority,
                seconds: ms.max(0) as f64 / 1000.0,
            });
        }
    }
    out
}

/// A domain event: what one committed transaction did that others act on.
/// The store records them as it writes; the engine hands them to routing
/// (outbox rows, in the same transaction) and, once committed, to metrics.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// An incident was written with its timeline entries `from..` new.
    Incident { incident: Incident, from: usize },
    /// A problem was opened.
    ProblemOpened(Problem),
}

impl Recorded {
    /// The KPI measurements it makes (see [`observations`]).
    pub fn observations(&self) -> Vec<Observation> {
        match self {
            Recorded::Incident { incident: i, from } => observations(
                i.started_at_ms,
                i.priority,
                i.events.iter().map(|e| (e.at_ms, e.kind)),
                *from,
            ),
            Recorded::ProblemOpened(_) => Vec::new(),
        }
    }
}
