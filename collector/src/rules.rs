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
pub enum AlertState {
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
pub const FLAP_WINDOW: u32 = 21;

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
pub struct Alert {
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
    pub fn is_idle(&self) -> bool {
        self.state == AlertState::Inactive
            && self.recent == 0
            && self.history == 0
            && !self.flapping
    }

    /// The weighted percent state change over the flap window.
    pub fn percent_state_change(&self) -> f64 {
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
pub enum Verdict {
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
pub struct Outcome {
    pub verdict: Verdict,
    /// `Some(true)`: flapping started; `Some(false)`: it stopped.
    pub flapping: Option<bool>,
}

/// Whether a newly arrived value breaches and/or clears the rule. For rules
/// without hysteresis `cleared == !breaching`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Condition {
    pub breaching: bool,
    pub cleared: bool,
}

/// Applies a value that arrived at collector time `now_ms`, stamped `ts_ms`.
pub fn observe(
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
pub fn elapse(timing: Timing, alert: &mut Alert, now_ms: i64) -> Verdict {
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
pub fn absent(
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
mod tests {
    use super::*;

    fn cpu(for_s: u64) -> Threshold {
        Threshold {
            metric: "cpu_usage_ratio".into(),
            direction: Direction::Above,
            threshold: 0.9,
            clear: 0.8,
            for_: Duration::from_secs(for_s),
        }
    }

    fn cond(t: &Threshold, v: f64) -> Condition {
        Condition {
            breaching: t.breaches(v),
            cleared: t.clears(v),
        }
    }

    fn timing(for_s: u64, resolve_after_s: u64) -> Timing {
        Timing {
            trigger: Trigger::For(Duration::from_secs(for_s)),
            resolve_after: Duration::from_secs(resolve_after_s),
        }
    }

    /// Observes `v` from `t` at collector time `s` seconds (stamped 1 s earlier).
    fn obs(t: &Threshold, tm: Timing, a: &mut Alert, s: i64, v: f64) -> Verdict {
        observe(
            cond(t, v),
            tm,
            FlapThresholds::default(),
            a,
            v,
            s * 1000 - 1000,
            s * 1000,
        )
        .verdict
    }

    /// (collector time s, value) steps and the verdict each must produce.
    #[test]
    fn threshold_with_for_and_hysteresis() {
        let t = cpu(300);
        let tm = timing(300, 0);
        let mut a = Alert::default();
        let steps: &[(i64, f64, Verdict)] = &[
            (0, 0.5, Verdict::Nothing),
            (10, 0.95, Verdict::Nothing), // pending from t=10
            (200, 0.97, Verdict::Nothing),
            (
                310,
                0.99,
                Verdict::Fire {
                    started_ms: 9_000,
                    value: 0.99,
                },
            ),
            (320, 0.85, Verdict::Nothing), // between clear and threshold: still firing
            (330, 0.95, Verdict::Nothing), // no second fire
            (
                340,
                0.80,
                Verdict::Clear {
                    restored_ms: 339_000,
                },
            ), // at clear level: cleared
            (350, 0.85, Verdict::Nothing),
        ];
        for (i, &(s, v, want)) in steps.iter().enumerate() {
            assert_eq!(
                obs(&t, tm, &mut a, s, v),
                want,
                "step {i} at {s}s value {v}"
            );
        }
        assert_eq!(a.state, AlertState::Inactive);
    }

    #[test]
    fn resolve_after_needs_the_condition_to_stay_clear() {
        let t = cpu(0);
        let tm = timing(0, 120);
        let mut a = Alert::default();
        assert!(matches!(obs(&t, tm, &mut a, 0, 0.95), Verdict::Fire { .. }));
        assert_eq!(obs(&t, tm, &mut a, 10, 0.5), Verdict::Nothing);
        assert_eq!(
            a.state,
            AlertState::Clearing {
                since_ms: 10_000,
                cleared_ms: 9_000
            }
        );
        // Into the hysteresis band: not clear any more, the wait starts over.
        assert_eq!(obs(&t, tm, &mut a, 100, 0.85), Verdict::Nothing);
        assert_eq!(a.state, AlertState::Firing);
        assert_eq!(obs(&t, tm, &mut a, 110, 0.5), Verdict::Nothing);
        assert_eq!(elapse(tm, &mut a, 229_999), Verdict::Nothing);
        // Restored when the first clear sample was taken, not when the wait ended.
        assert_eq!(
            elapse(tm, &mut a, 230_000),
            Verdict::Clear {
                restored_ms: 109_000
            }
        );
        assert_eq!(a.state, AlertState::Inactive);
        // A breach while clearing keeps the incident: no second Fire.
        let mut a = Alert::default();
        obs(&t, tm, &mut a, 0, 0.95);
        obs(&t, tm, &mut a, 10, 0.5);
        assert_eq!(obs(&t, tm, &mut a, 20, 0.97), Verdict::Nothing);
        assert_eq!(a.state, AlertState::Firing);
    }

    #[test]
    fn a_dip_below_threshold_restarts_the_for_delay() {
        let t = cpu(60);
        let tm = timing(60, 0);
        let mut a = Alert::default();
        obs(&t, tm, &mut a, 1, 0.95);
        // Not breaching (0.85 < 0.9) though not cleared: pending resets.
        obs(&t, tm, &mut a, 30, 0.85);
        assert_eq!(a.state, AlertState::Inactive);
        obs(&t, tm, &mut a, 40, 0.95);
        assert_eq!(elapse(tm, &mut a, 70_000), Verdict::Nothing);
        assert_eq!(
            elapse(tm, &mut a, 100_000),
            Verdict::Fire {
                started_ms: 39_000,
                value: 0.95
            }
        );
    }

    #[test]
    fn zero_for_fires_on_the_first_breaching_sample() {
        let t = cpu(0);
        let mut a = Alert::default();
        assert_eq!(
            obs(&t, timing(0, 0), &mut a, 7, 0.91),
            Verdict::Fire {
                started_ms: 6_000,
                value: 0.91
            }
        );
    }

    #[test]
    fn tick_fires_pending_once_for_elapses() {
        let t = cpu(300);
        let tm = timing(300, 0);
        let mut a = Alert::default();
        obs(&t, tm, &mut a, 2, 0.95);
        assert_eq!(elapse(tm, &mut a, 301_999), Verdict::Nothing);
        assert!(matches!(
            elapse(tm, &mut a, 302_000),
            Verdict::Fire {
                started_ms: 1_000,
                ..
            }
        ));
        assert_eq!(elapse(tm, &mut a, 400_000), Verdict::Nothing);
    }

    /// A check-style condition: breaching or cleared, nothing between.
    fn check(bad: bool) -> Condition {
        Condition {
            breaching: bad,
            cleared: !bad,
        }
    }

    #[test]
    fn failures_count_results_not_time() {
        // `failures: 3`: three consecutive bad results.
        let tm = Timing {
            trigger: Trigger::Failures { count: 3, of: 3 },
            resolve_after: Duration::ZERO,
        };
        let fl = FlapThresholds {
            on: 101.0,
            off: 0.0,
        };
        let mut a = Alert::default();
        let run = |a: &mut Alert, seq: &[bool]| -> Vec<bool> {
            seq.iter()
                .enumerate()
                .map(|(i, &bad)| {
                    let t = i as i64 * 1000;
                    matches!(
                        observe(check(bad), tm, fl, a, 2.0, t, t).verdict,
                        Verdict::Fire { .. }
                    )
                })
                .collect()
        };
        assert_eq!(
            run(&mut a, &[true, true, false, true, true, true, true]),
            [false, false, false, false, false, true, false]
        );
        // `failures: {count: 3, of: 5}`: an ok result in between does not reset.
        let tm = Timing {
            trigger: Trigger::Failures { count: 3, of: 5 },
            resolve_after: Duration::ZERO,
        };
        let mut a = Alert::default();
        let fired: Vec<bool> = [true, false, true, false, true]
            .iter()
            .enumerate()
            .map(|(i, &bad)| {
                let t = i as i64 * 1000;
                matches!(
                    observe(check(bad), tm, fl, &mut a, 2.0, t, t).verdict,
                    Verdict::Fire { started_ms: 0, .. }
                )
            })
            .collect();
        assert_eq!(fired, [false, false, false, false, true]);
        // Two bad in the last five never fires; the window slides out.
        let mut a = Alert::default();
        for (i, bad) in [true, false, false, true, false, false, false, false, false]
            .into_iter()
            .enumerate()
        {
            let t = i as i64;
            assert_eq!(
                observe(check(bad), tm, fl, &mut a, 2.0, t, t).verdict,
                Verdict::Nothing
            );
        }
        assert_eq!(a.state, AlertState::Inactive);
    }

    #[test]
    fn flapping_turns_on_and_settles_nagios_style() {
        let tm = timing(0, 0);
        let fl = FlapThresholds::default();
        let mut a = Alert::default();
        let mut changes = Vec::new();
        // Alternating for a while, then steadily fine.
        let seq: Vec<bool> = (0..10).map(|i| i % 2 == 0).chain([false; 25]).collect();
        for (i, bad) in seq.into_iter().enumerate() {
            let t = i as i64 * 10_000;
            let o = observe(check(bad), tm, fl, &mut a, 2.0, t, t);
            if let Some(f) = o.flapping {
                changes.push((i, f, (a.percent_state_change() * 10.0).round() / 10.0));
            }
        }
        // 5 changes reach 20 %; it stops once fewer than ~1 weighted change
        // (5 %) is left in the 21-evaluation window.
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!((changes[0].0, changes[0].1), (5, true), "{changes:?}");
        assert!(changes[0].2 >= 20.0, "{changes:?}");
        assert_eq!((changes[1].0, changes[1].1), (28, false), "{changes:?}");
        assert!(changes[1].2 < 5.0, "{changes:?}");
        // Once settled and quiet for a whole window, the alert is idle.
        for i in 35..40 {
            observe(check(false), tm, fl, &mut a, 0.0, i, i);
        }
        assert!(a.is_idle(), "{a:?}");
    }

    #[test]
    fn percent_state_change_weights() {
        let mut a = Alert {
            evaluations: 21,
            ..Alert::default()
        };
        assert_eq!(a.percent_state_change(), 0.0);
        // Alternating over the whole window: every transition, weights average 1.0.
        a.history = 0b1_0101_0101_0101_0101_0101;
        assert!((a.percent_state_change() - 100.0).abs() < 1e-9);
        // One change, newest: weight 1.2 → 6 %; oldest: 0.8 → 4 %.
        a.history = 1;
        assert!((a.percent_state_change() - 6.0).abs() < 1e-9);
        a.history = 1 << 20;
        assert!((a.percent_state_change() - 4.0).abs() < 1e-9);
    }

    #[test]
    fn label_matchers_and_host_selectors() {
        let labels = |pairs: &[(&str, &str)]| -> Labels {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let mut globs = globset::GlobSetBuilder::new();
        globs.add(globset::Glob::new("db-*").unwrap());
        let sel = Selector {
            hosts: Some(globs.build().unwrap()),
            host_labels: vec![("role".into(), Matcher::parse("db").unwrap())],
            labels: vec![
                ("mountpoint".into(), Matcher::parse("/").unwrap()),
                ("device".into(), Matcher::parse("~^/dev/sd").unwrap()),
            ],
        };
        let db = labels(&[("role", "db")]);
        assert!(sel.matches_host("db-01", &db));
        assert!(!sel.matches_host("web-01", &db));
        assert!(!sel.matches_host("db-01", &labels(&[("role", "web")])));
        assert!(!sel.matches_host("db-01", &Labels::new()));
        assert!(sel.matches_labels(&labels(&[("mountpoint", "/"), ("device", "/dev/sda1")])));
        assert!(!sel.matches_labels(&labels(&[("mountpoint", "/var"), ("device", "/dev/sda1")])));
        assert!(!sel.matches_labels(&labels(&[("mountpoint", "/"), ("device", "/dev/nvme0n1")])));
        assert!(
            !sel.matches_labels(&labels(&[("mountpoint", "/")])),
            "absent label vs regex"
        );
        // Exact "" matches an absent label, as in Prometheus.
        assert!(Matcher::parse("").unwrap().matches(None));
        assert!(Matcher::parse("~(").is_err());
        assert!(Selector::default().matches_host("any", &Labels::new()));
    }

    #[test]
    fn below_direction() {
        let t = Threshold {
            metric: "filesystem_avail_bytes".into(),
            direction: Direction::Below,
            threshold: 100.0,
            clear: 200.0,
            for_: Duration::ZERO,
        };
        let cases = [
            (99.0, true, false),
            (100.0, false, false),
            (150.0, false, false),
            (200.0, false, true),
            (500.0, false, true),
        ];
        for (v, breach, clear) in cases {
            assert_eq!(t.breaches(v), breach, "{v}");
            assert_eq!(t.clears(v), clear, "{v}");
        }
    }

    #[test]
    fn heartbeat() {
        let after = Duration::from_secs(60);
        let mut st = AlertState::Inactive;
        assert_eq!(
            absent(after, &mut st, 1_000, 10_000, 60_999),
            Verdict::Nothing
        );
        assert_eq!(
            absent(after, &mut st, 1_000, 10_000, 61_000),
            Verdict::Fire {
                started_ms: 11_000,
                value: 60.0
            }
        );
        assert_eq!(
            absent(after, &mut st, 1_000, 10_000, 99_000),
            Verdict::Nothing
        );
    }

    #[test]
    fn check_status_matching() {
        let rule = |status| CheckRule {
            pattern: "*".into(),
            matcher: globset::Glob::new("*").unwrap().compile_matcher(),
            exact: None,
            status,
            trigger: Trigger::For(Duration::ZERO),
        };
        use Status::*;
        let table = [
            (Warning, [false, true, true, false]),
            (Critical, [false, false, true, false]),
            (Unknown, [false, false, false, true]),
        ];
        for (wanted, expect) in table {
            for (got, want) in [Ok, Warning, Critical, Unknown].into_iter().zip(expect) {
                assert_eq!(rule(wanted).breaches(got), want, "{wanted:?} vs {got:?}");
            }
        }
    }
}
