//! Rules and their evaluation: pure functions of a rule, an alert's state, a
//! value and the time — no I/O, no clock reads.
//!
//! An *alert* is one rule applied to one series (threshold), one host
//! (heartbeat) or one host's check (check status). Its [`AlertState`] moves
//! `Inactive → Pending → Firing → Inactive`; [`observe`] is called when a value
//! arrives and [`elapse`] on the collector's tick, and each returns the
//! [`Verdict`] the incident engine acts on.
//!
//! Time: `started_ms` is the first breaching sample's own timestamp (agent
//! clock, it becomes the incident's `started_at`); the `for` delay is measured
//! on the collector's clock from when it first saw the breach, so agent clock
//! skew cannot make a rule fire early.

use std::sync::Arc;
use std::time::Duration;

use globset::GlobMatcher;
use vedette_protocol::Status;

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
    /// `warning` also matches `critical`; `critical` and `unknown` match only themselves.
    pub status: Status,
    pub for_: Duration,
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
    /// The `for` delay of this rule (zero for heartbeats, which have their own).
    pub fn for_(&self) -> Duration {
        match &self.kind {
            RuleKind::Threshold(t) => t.for_,
            RuleKind::Check(c) => c.for_,
            RuleKind::Absent { .. } => Duration::ZERO,
        }
    }

    /// The threshold to show on an incident, when the rule has one.
    pub fn threshold_value(&self) -> Option<f64> {
        match &self.kind {
            RuleKind::Threshold(t) => Some(t.threshold),
            RuleKind::Absent { after } => Some(after.as_secs_f64()),
            RuleKind::Check(_) => None,
        }
    }
}

/// Where one alert stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AlertState {
    Inactive,
    /// Breaching, waiting out `for`.
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
    /// The condition cleared: restore the live incident.
    Clear,
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
    for_: Duration,
    state: &mut AlertState,
    value: f64,
    ts_ms: i64,
    now_ms: i64,
) -> Verdict {
    match *state {
        AlertState::Firing => {
            if cond.cleared {
                *state = AlertState::Inactive;
                Verdict::Clear
            } else {
                Verdict::Nothing
            }
        }
        AlertState::Pending {
            started_ms,
            seen_ms,
            ..
        } => {
            if !cond.breaching {
                *state = AlertState::Inactive;
                return Verdict::Nothing;
            }
            *state = AlertState::Pending {
                started_ms,
                seen_ms,
                value,
            };
            elapse(for_, state, now_ms)
        }
        AlertState::Inactive => {
            if !cond.breaching {
                return Verdict::Nothing;
            }
            *state = AlertState::Pending {
                started_ms: ts_ms,
                seen_ms: now_ms,
                value,
            };
            elapse(for_, state, now_ms)
        }
    }
}

/// Moves a pending alert to firing once `for_` has passed on the collector's clock.
pub fn elapse(for_: Duration, state: &mut AlertState, now_ms: i64) -> Verdict {
    if let AlertState::Pending {
        started_ms,
        seen_ms,
        value,
    } = *state
    {
        if now_ms.saturating_sub(seen_ms) >= duration_ms(for_) {
            *state = AlertState::Firing;
            return Verdict::Fire { started_ms, value };
        }
    }
    Verdict::Nothing
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

/// A duration in whole milliseconds, saturating.
pub fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
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

    /// (collector time s, value) steps and the verdict each must produce.
    #[test]
    fn threshold_with_for_and_hysteresis() {
        let t = cpu(300);
        let mut st = AlertState::Inactive;
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
            (340, 0.80, Verdict::Clear),   // at clear level: cleared
            (350, 0.85, Verdict::Nothing),
        ];
        for (i, &(s, v, want)) in steps.iter().enumerate() {
            let got = observe(cond(&t, v), t.for_, &mut st, v, s * 1000 - 1000, s * 1000);
            assert_eq!(got, want, "step {i} at {s}s value {v}");
        }
        assert_eq!(st, AlertState::Inactive);
    }

    #[test]
    fn a_dip_below_threshold_restarts_the_for_delay() {
        let t = cpu(60);
        let mut st = AlertState::Inactive;
        observe(cond(&t, 0.95), t.for_, &mut st, 0.95, 0, 0);
        // Not breaching (0.85 < 0.9) though not cleared: pending resets.
        observe(cond(&t, 0.85), t.for_, &mut st, 0.85, 30_000, 30_000);
        assert_eq!(st, AlertState::Inactive);
        observe(cond(&t, 0.95), t.for_, &mut st, 0.95, 40_000, 40_000);
        assert_eq!(elapse(t.for_, &mut st, 70_000), Verdict::Nothing);
        assert_eq!(
            elapse(t.for_, &mut st, 100_000),
            Verdict::Fire {
                started_ms: 40_000,
                value: 0.95
            }
        );
    }

    #[test]
    fn zero_for_fires_on_the_first_breaching_sample() {
        let t = cpu(0);
        let mut st = AlertState::Inactive;
        assert_eq!(
            observe(cond(&t, 0.91), t.for_, &mut st, 0.91, 5, 7),
            Verdict::Fire {
                started_ms: 5,
                value: 0.91
            }
        );
    }

    #[test]
    fn tick_fires_pending_once_for_elapses() {
        let t = cpu(300);
        let mut st = AlertState::Inactive;
        observe(cond(&t, 0.95), t.for_, &mut st, 0.95, 1_000, 2_000);
        assert_eq!(elapse(t.for_, &mut st, 301_999), Verdict::Nothing);
        assert!(matches!(
            elapse(t.for_, &mut st, 302_000),
            Verdict::Fire {
                started_ms: 1_000,
                ..
            }
        ));
        assert_eq!(elapse(t.for_, &mut st, 400_000), Verdict::Nothing);
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
            status,
            for_: Duration::ZERO,
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
