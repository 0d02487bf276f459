//! The named states an incident and its timeline take, with their stored
//! spellings.

use super::*;

/// Lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentState {
    Open,
    Acknowledged,
    Resolved,
    Closed,
}

impl IncidentState {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Open => "open",
            IncidentState::Acknowledged => "acknowledged",
            IncidentState::Resolved => "resolved",
            IncidentState::Closed => "closed",
        }
    }

    /// Open or acknowledged: the condition is (or was last known) active.
    pub fn is_live(self) -> bool {
        matches!(self, IncidentState::Open | IncidentState::Acknowledged)
    }
}

impl FromStr for IncidentState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(IncidentState::Open),
            "acknowledged" => Ok(IncidentState::Acknowledged),
            "resolved" => Ok(IncidentState::Resolved),
            "closed" => Ok(IncidentState::Closed),
            other => Err(format!(
                "unknown incident state '{other}'; expected open, acknowledged, resolved or closed"
            )),
        }
    }
}

impl fmt::Display for IncidentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an incident came from. Recorded with the incident, never read off
/// its labels, so nothing an agent sends can make its series pass for an
/// alert of another system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// One of the collector's rules, evaluated on agent data.
    Rule,
    /// An alert from Alertmanager's webhook.
    Alertmanager,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Rule => "rule",
            Origin::Alertmanager => "alertmanager",
        }
    }
}

impl FromStr for Origin {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rule" => Ok(Origin::Rule),
            "alertmanager" => Ok(Origin::Alertmanager),
            other => Err(format!("unknown incident origin '{other}'")),
        }
    }
}

/// How an incident was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    /// The condition cleared.
    Auto,
    /// An operator resolved it.
    Manual,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Auto => "auto",
            Resolution::Manual => "manual",
        }
    }
}

impl FromStr for Resolution {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Resolution::Auto),
            "manual" => Ok(Resolution::Manual),
            other => Err(format!("unknown resolution '{other}'")),
        }
    }
}

/// What happened to an incident, for its timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Opened,
    Acknowledged,
    Restored,
    Resolved,
    /// The same breach came back within `reopen_within` of resolution.
    Reopened,
    Closed,
    /// Notifications pause while the condition flaps.
    FlappingStarted,
    FlappingStopped,
    /// Someone wrote a note on the timeline; the state is unchanged.
    Noted,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Opened => "opened",
            EventKind::Acknowledged => "acknowledged",
            EventKind::Restored => "restored",
            EventKind::Resolved => "resolved",
            EventKind::Reopened => "reopened",
            EventKind::Closed => "closed",
            EventKind::FlappingStarted => "flapping_started",
            EventKind::FlappingStopped => "flapping_stopped",
            EventKind::Noted => "noted",
        }
    }
}

impl FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "opened" => Ok(EventKind::Opened),
            "acknowledged" => Ok(EventKind::Acknowledged),
            "restored" => Ok(EventKind::Restored),
            "resolved" => Ok(EventKind::Resolved),
            "reopened" => Ok(EventKind::Reopened),
            "closed" => Ok(EventKind::Closed),
            "flapping_started" => Ok(EventKind::FlappingStarted),
            "flapping_stopped" => Ok(EventKind::FlappingStopped),
            "noted" => Ok(EventKind::Noted),
            other => Err(format!("unknown incident event '{other}'")),
        }
    }
}
