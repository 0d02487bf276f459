//! Problems (ITIL problem management): recurring incidents of one
//! fingerprint, open until someone resolves the root cause.

use super::*;

/// Problem state (ITIL problem management): open until someone resolves the
/// root cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProblemState {
    Open,
    Resolved,
}

impl ProblemState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemState::Open => "open",
            ProblemState::Resolved => "resolved",
        }
    }
}

impl FromStr for ProblemState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(ProblemState::Open),
            "resolved" => Ok(ProblemState::Resolved),
            other => Err(format!(
                "unknown problem state '{other}'; expected open or resolved"
            )),
        }
    }
}

/// Recurring incidents of one fingerprint, linked.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Store-assigned; 0 until first saved.
    pub id: i64,
    pub fingerprint: String,
    pub rule: String,
    pub host: String,
    pub state: ProblemState,
    /// Linked incidents, oldest first.
    pub incident_ids: Vec<i64>,
    pub opened_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
    pub resolved_by: Option<String>,
    pub note: Option<String>,
}

impl Problem {
    /// Resolves an open problem.
    pub fn resolve(
        &mut self,
        actor: &str,
        note: Option<String>,
        now_ms: i64,
    ) -> Result<(), String> {
        if self.state != ProblemState::Open {
            return Err(format!("problem {} is already resolved", self.id));
        }
        self.state = ProblemState::Resolved;
        self.resolved_at_ms = Some(now_ms);
        self.resolved_by = Some(actor.to_string());
        self.note = note;
        Ok(())
    }
}
