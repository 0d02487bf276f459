//! Rules and their evaluation: pure functions of a rule, an alert's state, a
//! value and the time — no I/O, no clock reads.
//!
//! An *alert* is one rule applied to one series (threshold), one host
//! (heartbeat) or one host's check (check status). Its [`AlertState`] moves
//! `Inactive → Pending → Firing → Clearing → Inactive`; [`observe`] is called
//! when a value arrives and [`elapse`] on the collector's tick, and each
//! returns the [`Verdict`] the incident engine acts on.
//!
//! Time: `started_ms` is the first breaching sample's own timestamp (agent
//! clock, it becomes the incident's `started_at`); the `for` and
//! `resolve_after` delays are measured on the collector's clock, so agent
//! clock skew cannot make a rule fire or resolve early.
//!
//! Flapping (Nagios style): every evaluation records whether the alert's
//! condition is bad; the weighted percentage of state changes over the last
//! [`FLAP_WINDOW`] evaluations (older changes weigh 0.8, the newest 1.2) turns
//! flapping on at or above `on` percent and off below `off` percent.

use std::sync::Arc;
use std::time::Duration;

use globset::{GlobMatcher, GlobSet};
use vedette_protocol::clock::duration_ms;
use vedette_protocol::Status;

use crate::incidents::Labels;

/// One configured rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique name; becomes the incident's `rule` and part of its fingerprint.
    pub name: Arc<str>,
    pub kind: RuleKind,
    /// ITIL impact, 1 (high) … 3 (low).
    pub impact: u8,
    /// ITIL urgency, 1 (high) … 3 (low).
    pub urgency: u8,
    /// Which hosts and series the rule applies to.
    pub selector: Selector,
    /// How long the condition must stay clear before the incident resolves.
    pub resolve_after: Duration,
}

/// What a rule watches.
#[derive(Debug, Clone)]
pub enum RuleKind {
    /// A metric crossing a threshold.
    Threshold(Threshold),
    /// A host whose batches stop arriving.
    Absent {
        /// How long without a batch before the host counts as down.
        after: Duration,
    },
    /// A check reporting a bad status.
    Check(CheckRule),
    /// Alerts another system evaluated (Alertmanager's webhook): opened and
    /// resolved by what it says, never by samples. Made on first sight of
    /// an `alertname`, not configured.
    External,
}

/// `metric` `above`/`below` a threshold, with hysteresis and a `for` delay.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub metric: String,
    pub direction: Direction,
    /// Breached strictly past this value.
    pub threshold: f64,
    /// Cleared at or back past this value (`clear_below`/`clear_above`; defaults
    /// to `threshold`). Between the two, a firing alert keeps firing.
    pub clear: f64,
    /// How long the breach must last before an incident opens.
    pub for_: Duration,
    /// What of the sample is compared (`compare:`).
    pub compare: Compare,
}

/// What a threshold rule compares with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compare {
    /// The sample's value.
    #[default]
    Value,
    /// Its absolute value (a clock offset is bad either way).
    Absolute,
    /// A counter's increase since the series' previous sample (a counter
    /// that went back, a restart, counts from zero); a series' first
    /// sample is an increase of 0.
    Increase,
}

/// Which side of the threshold is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Above,
    Below,
}

/// A check (by name glob) reporting `status` or worse.
#[derive(Debug, Clone)]
pub struct CheckRule {
    /// The glob as written, for messages.
    pub pattern: String,
    pub matcher: GlobMatcher,
    /// The exact check name when `pattern` has no glob characters (indexed).
    pub exact: Option<String>,
    /// `warning` also matches `critical`; `critical` and `unknown` match only themselves.
    pub status: Status,
    pub trigger: Trigger,
}

/// When a breaching check becomes an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// After the breach has lasted this long (collector clock).
    For(Duration),
    /// After `count` of the last `of` results breached (`count == of`: consecutive).
    Failures { count: u8, of: u8 },
}

/// Host and series selection. Empty parts match everything.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    /// Host-name globs (`hosts: ["db-*"]`).
    pub hosts: Option<GlobSet>,
    /// Host label matchers (`host_labels: {role: db}`).
    pub host_labels: Vec<(String, Matcher)>,
    /// Series (or check) label matchers (`labels: {mountpoint: "/"}`).
    pub labels: Vec<(String, Matcher)>,
}

/// One label matcher: an exact value, or `~regex` (unanchored; write `^…$`).
#[derive(Debug, Clone)]
pub enum Matcher {
    Exact(String),
    Regex(regex_lite::Regex),
}

impl Matcher {
    /// Parses a matcher as written in YAML.
    pub fn parse(s: &str) -> Result<Matcher, String> {
        match s.strip_prefix('~') {
            Some(re) => regex_lite::Regex::new(re)
                .map(Matcher::Regex)
                .map_err(|e| format!("bad regular expression: {e}")),
            None => Ok(Matcher::Exact(s.to_string())),
        }
    }

    /// True when `value` (None: the label is absent) matches. An absent label
    /// matches only an exact empty string, as in Prometheus.
    pub fn matches(&self, value: Option<&str>) -> bool {
        match self {
            Matcher::Exact(want) => value.unwrap_or("") == want,
            Matcher::Regex(re) => value.is_some_and(|v| re.is_match(v)),
        }
    }
}

fn labels_match(matchers: &[(String, Matcher)], labels: &Labels) -> bool {
    matchers
        .iter()
        .all(|(k, m)| m.matches(labels.get(k).map(String::as_str)))
}

impl Selector {
    /// True when the rule applies to `host` with `host_labels`.
    pub fn matches_host(&self, host: &str, host_labels: &Labels) -> bool {
        self.hosts.as_ref().is_none_or(|g| g.is_match(host))
            && labels_match(&self.host_labels, host_labels)
    }

    /// True when the rule applies to a series or check with `labels`.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        labels_match(&self.labels, labels)
    }
}

impl Compare {
    /// The number compared, from the sample's `value` and the series'
    /// previous value (None for its first sample).
    pub fn of(self, value: f64, previous: Option<f64>) -> f64 {
        match self {
            Compare::Value => value,
            Compare::Absolute => value.abs(),
            Compare::Increase => match previous {
                Some(p) if value >= p => value - p,
                Some(_) => value,
                None => 0.0,
            },
        }
    }

    /// How a summary names the compared number of `metric`.
    pub fn describe(self, metric: &str) -> String {
        match self {
            Compare::Value => metric.to_string(),
            Compare::Absolute => format!("|{metric}|"),
            Compare::Increase => format!("increase of {metric}"),
        }
    }
}

impl Threshold {
    /// True when `value` is past the threshold.
    pub fn breaches(&self, value: f64) -> bool {
        match self.direction {
            Direction::Above => value > self.threshold,
            Direction::Below => value < self.threshold,
        }
    }

    /// True when `value` is back on the good side of the clear level.
    pub fn clears(&self, value: f64) -> bool {
        match self.direction {
            Direction::Above => value <= self.clear,
            Direction::Below => value >= self.clear,
        }
    }
}

impl CheckRule {
    /// True when a result with `status` breaches this rule.
    pub fn breaches(&self, status: Status) -> bool {
        match self.status {
            Status::Warning => matches!(status, Status::Warning | Status::Critical),
            wanted => status == wanted,
        }
    }
}

impl Rule {
    /// When this rule's breach becomes an incident (heartbeats: at once).
    pub fn trigger(&self) -> Trigger {
        match &self.kind {
            RuleKind::Threshold(t) => Trigger::For(t.for_),
            RuleKind::Check(c) => c.trigger,
            RuleKind::Absent { .. } | RuleKind::External => Trigger::For(Duration::ZERO),
        }
    }

    /// The timing of this rule's alerts.
    pub fn timing(&self) -> Timing {
        Timing {
            trigger: self.trigger(),
            resolve_after: self.resolve_after,
        }
    }

    /// The threshold to show on an incident, when the rule has one.
    pub fn threshold_value(&self) -> Option<f64> {
        match &self.kind {
            RuleKind::Threshold(t) => Some(t.threshold),
            RuleKind::Absent { after } => Some(after.as_secs_f64()),
            RuleKind::Check(_) | RuleKind::External => None,
        }
    }
}

/// A rule's delays, as [`observe`] and [`elapse`] need them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub trigger: Trigger,
    pub resolve_after: Duration,
}

/// Where one alert stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum AlertState {
    Inactive,
    /// Breaching, waiting out `for` (or for enough `failures`).
    Pending {
        /// Timestamp of the first breaching sample (agent clock).
        started_ms: i64,
        /// When the collector first saw the breach (collector clock).
        seen_ms: i64,
        /// The latest breaching value.
        value: f64,
    },
    /// An incident is (or was) open for this breach.
    Firing,
    /// Firing, and the condition has been clear since `since_ms` (collector
    /// clock), waiting out `resolve_after`.
    Clearing {
        since_ms: i64,
        /// The first clear sample's own timestamp: when service was restored.
        cleared_ms: i64,
    },
}

/// How many evaluations the flapping detector looks back over (Nagios: 21).
pub(crate) const FLAP_WINDOW: u32 = 21;

/// Flapping thresholds, percent state change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlapThresholds {
    /// Flapping starts at or above this.
    pub on: f64,
    /// Flapping stops below this.
    pub off: f64,
}

impl Default for FlapThresholds {
    /// Nagios' service defaults.
    fn default() -> Self {
        FlapThresholds { on: 20.0, off: 5.0 }
    }
}

/// One alert: its state, the recent results for `failures`, and the flap history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Alert {
    pub state: AlertState,
    /// Bit i set: the i-th most recent result breached (bit 0 = newest).
    pub recent: u64,
    /// Bit i set: the condition was bad at the i-th most recent evaluation.
    pub history: u32,
    /// How many evaluations `history` holds (≤ [`FLAP_WINDOW`]).
    pub evaluations: u8,
    pub flapping: bool,
}

impl Default for Alert {
    fn default() -> Self {
        Alert {
            state: AlertState::Inactive,
            recent: 0,
            history: 0,
            evaluations: 0,
            flapping: false,
        }
    }
}

impl Alert {
    /// True when nothing about this alert needs remembering: inactive, no
    /// breach in the recent results or the flap window.
    pub(crate) fn is_idle(&self) -> bool {
        self.state == AlertState::Inactive
            && self.recent == 0
            && self.history == 0
            && !self.flapping
    }

    /// The weighted percent state change over the flap window.
    pub(crate) fn percent_state_change(&self) -> f64 {
        let n = u32::from(self.evaluations).min(FLAP_WINDOW);
        if n < 2 {
            return 0.0;
        }
        let mut total = 0.0;
        // Transition j (1 = oldest) sits between evaluations n-j and n-j-1
        // counted from the newest (bit 0).
        for j in 1..n {
            let older = (self.history >> (n - j)) & 1;
            let newer = (self.history >> (n - j - 1)) & 1;
            if older != newer {
                // Oldest transition weighs 0.8, the newest 1.2.
                total += 0.8 + 0.4 * f64::from(j - 1) / f64::from(FLAP_WINDOW - 2);
            }
        }
        total * 100.0 / f64::from(FLAP_WINDOW - 1)
    }

    /// Records one evaluation's condition and updates `flapping`. Returns
    /// `Some(new)` when flapping started or stopped.
    fn record(&mut self, bad: bool, flap: FlapThresholds) -> Option<bool> {
        let mask = (1u32 << FLAP_WINDOW) - 1;
        self.history = ((self.history << 1) | u32::from(bad)) & mask;
        self.evaluations = (self.evaluations + 1).min(FLAP_WINDOW as u8);
        let pct = self.percent_state_change();
        let was = self.flapping;
        if !was && pct >= flap.on {
            self.flapping = true;
        } else if was && pct < flap.off {
            self.flapping = false;
        }
        (was != self.flapping).then_some(self.flapping)
    }
}

/// What the incident engine should do after an evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Verdict {
    Nothing,
    /// Open an incident (or keep the live one).
    Fire {
        started_ms: i64,
        value: f64,
    },
    /// The condition cleared (for `resolve_after`): restore the live incident.
    Clear {
        /// When it cleared: the first clear sample's own time, not the end
        /// of the `resolve_after` wait.
        restored_ms: i64,
    },
}

/// What one evaluation produced: the verdict, and a flapping change if any.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Outcome {
    pub verdict: Verdict,
    /// `Some(true)`: flapping started; `Some(false)`: it stopped.
    pub flapping: Option<bool>,
}

/// Whether a newly arrived value breaches and/or clears the rule. For rules
/// without hysteresis `cleared == !breaching`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Condition {
    pub breaching: bool,
    pub cleared: bool,
}

/// Applies a value that arrived at collector time `now_ms`, stamped `ts_ms`.
pub(crate) fn observe(
    cond: Condition,
    timing: Timing,
    flap: FlapThresholds,
    alert: &mut Alert,
    value: f64,
    ts_ms: i64,
    now_ms: i64,
) -> Outcome {
    let keep = match timing.trigger {
        Trigger::Failures { of, .. } => window_mask(of),
        Trigger::For(_) => 1,
    };
    alert.recent = ((alert.recent << 1) | u64::from(cond.breaching)) & keep;
    let verdict = step(cond, timing, alert, value, ts_ms, now_ms);
    // Flapping looks at the condition itself (with hysteresis), not at the
    // delays: a breach that comes and goes under `for` still flaps.
    let bad = cond.breaching || (!cond.cleared && alert.state == AlertState::Firing);
    let flapping = alert.record(bad, flap);
    Outcome { verdict, flapping }
}

fn step(
    cond: Condition,
    timing: Timing,
    alert: &mut Alert,
    value: f64,
    ts_ms: i64,
    now_ms: i64,
) -> Verdict {
    match alert.state {
        AlertState::Firing if cond.cleared => {
            alert.state = AlertState::Clearing {
                since_ms: now_ms,
                cleared_ms: ts_ms,
            };
            elapse(timing, alert, now_ms)
        }
        AlertState::Firing => Verdict::Nothing,
        AlertState::Clearing { .. } if !cond.cleared => {
            // Back in (or into the hysteresis band): it must stay clear anew.
            alert.state = AlertState::Firing;
            Verdict::Nothing
        }
        AlertState::Clearing { .. } => elapse(timing, alert, now_ms),
        AlertState::Pending {
            started_ms,
            seen_ms,
            ..
        } => {
            if !cond.breaching {
                // `failures: N` (consecutive) starts over on a good result;
                // `{count, of}` keeps waiting while a breach is in the window.
                let keep = matches!(timing.trigger, Trigger::Failures { count, of }
                    if count < of && alert.recent & window_mask(of) != 0);
                if !keep {
                    alert.state = AlertState::Inactive;
                }
                return Verdict::Nothing;
            }
            alert.state = AlertState::Pending {
                started_ms,
                seen_ms,
                value,
            };
            fire_if_due(timing, alert, now_ms)
        }
        AlertState::Inactive => {
            if !cond.breaching {
                return Verdict::Nothing;
            }
            alert.state = AlertState::Pending {
                started_ms: ts_ms,
                seen_ms: now_ms,
                value,
            };
            fire_if_due(timing, alert, now_ms)
        }
    }
}

fn window_mask(of: u8) -> u64 {
    if of >= 64 {
        u64::MAX
    } else {
        (1u64 << of) - 1
    }
}

fn fire_if_due(timing: Timing, alert: &mut Alert, now_ms: i64) -> Verdict {
    match timing.trigger {
        Trigger::For(_) => elapse(timing, alert, now_ms),
        Trigger::Failures { count, of } => {
            let AlertState::Pending {
                started_ms, value, ..
            } = alert.state
            else {
                return Verdict::Nothing;
            };
            if (alert.recent & window_mask(of)).count_ones() >= u32::from(count) {
                alert.state = AlertState::Firing;
                Verdict::Fire { started_ms, value }
            } else {
                Verdict::Nothing
            }
        }
    }
}

/// Time-only transitions: a pending alert fires once `for` has passed, a
/// clearing one clears once `resolve_after` has, both on the collector's clock.
pub(crate) fn elapse(timing: Timing, alert: &mut Alert, now_ms: i64) -> Verdict {
    match alert.state {
        AlertState::Pending {
            started_ms,
            seen_ms,
            value,
        } => match timing.trigger {
            Trigger::For(for_) if now_ms.saturating_sub(seen_ms) >= duration_ms(for_) => {
                alert.state = AlertState::Firing;
                Verdict::Fire { started_ms, value }
            }
            _ => Verdict::Nothing,
        },
        AlertState::Clearing {
            since_ms,
            cleared_ms,
        } if now_ms.saturating_sub(since_ms) >= duration_ms(timing.resolve_after) => {
            alert.state = AlertState::Inactive;
            Verdict::Clear {
                restored_ms: cleared_ms,
            }
        }
        _ => Verdict::Nothing,
    }
}

/// The heartbeat verdict for a host last seen at `last_seen_ms` (collector clock)
/// that pushes every `interval_ms`. The outage starts when the next batch was due.
pub(crate) fn absent(
    after: Duration,
    state: &mut AlertState,
    last_seen_ms: i64,
    interval_ms: i64,
    now_ms: i64,
) -> Verdict {
    let silent_ms = now_ms.saturating_sub(last_seen_ms);
    match *state {
        AlertState::Firing => Verdict::Nothing,
        _ if silent_ms >= duration_ms(after) => {
            *state = AlertState::Firing;
            let silent_for = silent_ms as f64 / 1000.0;
            Verdict::Fire {
                started_ms: last_seen_ms.saturating_add(interval_ms),
                value: silent_for,
            }
        }
        _ => Verdict::Nothing,
    }
}

#[cfg(test)]
mod tests;
