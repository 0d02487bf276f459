//! Planned work: recurring maintenance windows (from the configuration) and
//! one-off changes (from the API). Pure: every question takes the time.
//!
//! A breach in scope while a window is active is *suppressed*: recorded, no
//! incident, nothing sent. A change whose scope breaches within `verify_for`
//! after its end has failed; one that stays clean that long succeeded.
//!
//! # Recurrence and DST
//! A weekly or monthly window is written in local wall-clock time of an IANA
//! time zone and lasts `duration` of elapsed time. A start that falls in the
//! spring-forward gap (02:30 on a day that jumps from 02:00 to 03:00) begins
//! at the first instant that exists (03:00); a start that happens twice on the
//! fall-back day begins at the first of the two. So DST never drops or
//! doubles a window, and never shortens it.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::incidents::Labels;
use crate::rules::Selector;
use vedette_protocol::clock::duration_ms;

/// Which hosts a window covers, as written (kept to echo it back in the API).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeSpec {
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub host_labels: BTreeMap<String, String>,
}

/// A compiled scope.
#[derive(Debug, Clone)]
pub struct Scope {
    pub spec: ScopeSpec,
    selector: Selector,
}

impl Scope {
    /// Compiles `spec`. An empty scope is refused: planned work that silences
    /// every host is almost always a mistake; write `hosts: ["*"]` to mean it.
    pub fn new(spec: ScopeSpec) -> Result<Scope, (String, String)> {
        if spec.hosts.is_empty() && spec.host_labels.is_empty() {
            return Err((
                "scope".into(),
                "give `hosts` (globs) and/or `host_labels`; use hosts: [\"*\"] for every host"
                    .into(),
            ));
        }
        let mut selector = Selector::default();
        if !spec.hosts.is_empty() {
            let mut set = globset::GlobSetBuilder::new();
            for (i, h) in spec.hosts.iter().enumerate() {
                let g = globset::Glob::new(h)
                    .map_err(|e| (format!("scope.hosts[{i}]"), format!("bad glob: {e}")))?;
                set.add(g);
            }
            selector.hosts = Some(
                set.build()
                    .map_err(|e| ("scope.hosts".to_string(), format!("bad globs: {e}")))?,
            );
        }
        for (k, v) in &spec.host_labels {
            let m = crate::rules::Matcher::parse(v)
                .map_err(|e| (format!("scope.host_labels.{k}"), e))?;
            selector.host_labels.push((k.clone(), m));
        }
        Ok(Scope { spec, selector })
    }

    /// True when `host` (with its labels) is in scope.
    pub fn covers(&self, host: &str, host_labels: &Labels) -> bool {
        self.selector.matches_host(host, host_labels)
    }
}

/// One recurring slot in local time.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub when: Recurrence,
    pub start: NaiveTime,
    pub duration: Duration,
}

/// Which days a slot recurs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recurrence {
    Weekly(Weekday),
    /// Day of month, 1–28 (every month has it).
    Monthly(u32),
}

/// A configured recurring maintenance window.
#[derive(Debug, Clone)]
pub struct Maintenance {
    pub name: String,
    pub scope: Scope,
    pub timezone: Tz,
    pub slots: Vec<Slot>,
}

impl Maintenance {
    /// The occurrence active at `now_ms`, as `(start_ms, end_ms)`.
    pub fn active_at(&self, now_ms: i64) -> Option<(i64, i64)> {
        let now = DateTime::<Utc>::from_timestamp_millis(now_ms)?;
        let today = now.with_timezone(&self.timezone).date_naive();
        let longest = self.slots.iter().map(|s| s.duration).max()?;
        // Occurrences that started up to `longest` (plus a day for the local
        // date boundary) ago may still be running.
        let back = longest.as_secs().div_ceil(86_400) + 1;
        let mut best: Option<(i64, i64)> = None;
        for d in 0..=back {
            let Some(day) = today.checked_sub_days(Days::new(d)) else {
                continue;
            };
            for slot in &self.slots {
                if !slot.when.falls_on(day) {
                    continue;
                }
                let start = local_start(&self.timezone, day, slot.start);
                let end = start.saturating_add(duration_ms(slot.duration));
                if start <= now_ms && now_ms < end && best.is_none_or(|(_, e)| end > e) {
                    best = Some((start, end));
                }
            }
        }
        best
    }
}

impl Maintenance {
    /// Every occurrence overlapping `[from_ms, to_ms)`, as `(start, end)`.
    pub fn occurrences(&self, from_ms: i64, to_ms: i64) -> Vec<(i64, i64)> {
        let (Some(from), Some(to), Some(longest)) = (
            DateTime::<Utc>::from_timestamp_millis(from_ms),
            DateTime::<Utc>::from_timestamp_millis(to_ms),
            self.slots.iter().map(|s| s.duration).max(),
        ) else {
            return Vec::new();
        };
        let back = longest.as_secs().div_ceil(86_400) + 1;
        let first = from.with_timezone(&self.timezone).date_naive();
        let last = to.with_timezone(&self.timezone).date_naive();
        let mut out = Vec::new();
        let mut day = first.checked_sub_days(Days::new(back)).unwrap_or(first);
        while day <= last {
            for slot in self.slots.iter().filter(|s| s.when.falls_on(day)) {
                let start = local_start(&self.timezone, day, slot.start);
                let end = start.saturating_add(duration_ms(slot.duration));
                if start < to_ms && end > from_ms {
                    out.push((start, end));
                }
            }
            let Some(next) = day.checked_add_days(Days::new(1)) else {
                break;
            };
            day = next;
        }
        out
    }
}

impl Recurrence {
    fn falls_on(self, day: NaiveDate) -> bool {
        match self {
            Recurrence::Weekly(w) => day.weekday() == w,
            Recurrence::Monthly(d) => day.day() == d,
        }
    }
}

/// The instant `time` on local `day` in `tz`: the first instant that exists
/// when the clock skips it, the earlier one when it happens twice.
pub fn local_start(tz: &Tz, day: NaiveDate, time: NaiveTime) -> i64 {
    let naive = day.and_time(time);
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => t.timestamp_millis(),
        LocalResult::Ambiguous(first, _) => first.timestamp_millis(),
        LocalResult::None => {
            // In a gap: walk forward minute by minute to the first local time
            // that exists (gaps are at most a few hours).
            for m in 1..=24 * 60 {
                let later = naive + chrono::Duration::minutes(m);
                if let Some(t) = tz.from_local_datetime(&later).earliest() {
                    // The first existing local minute is the transition
                    // instant itself when the gap ends on a whole minute.
                    return t.timestamp_millis();
                }
            }
            // Unreachable for real zones; fall back to reading it as UTC.
            naive.and_utc().timestamp_millis()
        }
    }
}

/// How a change ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOutcome {
    Successful,
    Failed,
}

impl ChangeOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOutcome::Successful => "successful",
            ChangeOutcome::Failed => "failed",
        }
    }
}

impl std::str::FromStr for ChangeOutcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "successful" => Ok(ChangeOutcome::Successful),
            "failed" => Ok(ChangeOutcome::Failed),
            o => Err(format!("unknown change outcome '{o}'")),
        }
    }
}

/// A planned change.
#[derive(Debug, Clone)]
pub struct Change {
    pub id: i64,
    pub title: String,
    pub scope: Scope,
    pub start_ms: i64,
    pub end_ms: i64,
    pub verify_for: Duration,
    /// None until decided.
    pub outcome: Option<ChangeOutcome>,
    /// Why it failed (the breach that failed it).
    pub outcome_note: Option<String>,
    pub created_by: String,
    pub created_at_ms: i64,
}

/// Where a change stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Scheduled,
    /// Breaches are suppressed.
    InProgress,
    /// Ended; a breach now fails it.
    Verifying,
    /// Ended and verified (outcome decided or due).
    Done,
}

impl Change {
    /// The phase at `now_ms`.
    pub fn phase(&self, now_ms: i64) -> Phase {
        if self.outcome.is_some() {
            return Phase::Done;
        }
        if now_ms < self.start_ms {
            Phase::Scheduled
        } else if now_ms < self.end_ms {
            Phase::InProgress
        } else if now_ms < self.end_ms.saturating_add(duration_ms(self.verify_for)) {
            Phase::Verifying
        } else {
            Phase::Done
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    fn sunday_patching(start: &str) -> Maintenance {
        Maintenance {
            name: "sunday-patching".into(),
            scope: Scope::new(ScopeSpec {
                hosts: vec![],
                host_labels: BTreeMap::from([("role".into(), "db".into())]),
            })
            .unwrap(),
            timezone: "Europe/Berlin".parse().unwrap(),
            slots: vec![Slot {
                when: Recurrence::Weekly(Weekday::Sun),
                start: NaiveTime::parse_from_str(start, "%H:%M").unwrap(),
                duration: Duration::from_secs(2 * 3600),
            }],
        }
    }

    #[test]
    fn an_ordinary_week_in_local_time() {
        let m = sunday_patching("02:00");
        // Sunday 2026-11-22, CET (+01:00): 02:00–04:00 local = 01:00–03:00 UTC.
        assert_eq!(m.active_at(ms("2026-11-22T00:59:59Z")), None);
        assert_eq!(
            m.active_at(ms("2026-11-22T01:00:00Z")),
            Some((ms("2026-11-22T01:00:00Z"), ms("2026-11-22T03:00:00Z")))
        );
        assert!(m.active_at(ms("2026-11-22T02:59:59Z")).is_some());
        assert_eq!(m.active_at(ms("2026-11-22T03:00:00Z")), None);
        // Not on Saturday, nor Monday.
        assert_eq!(m.active_at(ms("2026-11-21T01:30:00Z")), None);
        assert_eq!(m.active_at(ms("2026-11-23T01:30:00Z")), None);
    }

    #[test]
    fn spring_forward_day_keeps_the_window_and_its_length() {
        // 2026-03-29: Berlin jumps 02:00 CET → 03:00 CEST; 02:00 does not exist.
        let m = sunday_patching("02:00");
        let (start, end) = m.active_at(ms("2026-03-29T01:30:00Z")).unwrap();
        // Starts at the transition (01:00 UTC = 03:00 CEST) and lasts 2 h.
        assert_eq!(start, ms("2026-03-29T01:00:00Z"));
        assert_eq!(end, ms("2026-03-29T03:00:00Z"));
        assert_eq!(m.active_at(ms("2026-03-29T00:59:00Z")), None);
        // 02:30 (inside the gap) also starts at 03:00 CEST.
        let m = sunday_patching("02:30");
        assert_eq!(
            m.active_at(ms("2026-03-29T01:00:00Z")).map(|w| w.0),
            Some(ms("2026-03-29T01:00:00Z"))
        );
        // A week later, summer time: 02:00 CEST = 00:00 UTC.
        let m = sunday_patching("02:00");
        assert_eq!(
            m.active_at(ms("2026-04-05T00:00:00Z")).map(|w| w.0),
            Some(ms("2026-04-05T00:00:00Z"))
        );
    }

    #[test]
    fn fall_back_day_opens_once_at_the_first_occurrence() {
        // 2026-10-25: Berlin goes 03:00 CEST → 02:00 CET; 02:00–03:00 happens twice.
        let m = sunday_patching("02:00");
        // First 02:00 is CEST = 00:00 UTC; the window lasts 2 h of real time.
        assert_eq!(
            m.active_at(ms("2026-10-25T00:00:00Z")),
            Some((ms("2026-10-25T00:00:00Z"), ms("2026-10-25T02:00:00Z")))
        );
        assert_eq!(m.active_at(ms("2026-10-24T23:59:59Z")), None);
        assert_eq!(m.active_at(ms("2026-10-25T02:00:00Z")), None);
    }

    #[test]
    fn a_window_past_midnight_and_monthly_slots() {
        let mut m = sunday_patching("23:00");
        // Sunday 23:00 CET for 2 h runs into Monday 01:00.
        assert!(m.active_at(ms("2026-11-22T23:30:00Z")).is_some());
        assert!(m.active_at(ms("2026-11-23T00:30:00Z")).is_none()); // 01:30 local
        m.slots = vec![Slot {
            when: Recurrence::Monthly(1),
            start: NaiveTime::from_hms_opt(0, 0, 0).unwrap(),
            duration: Duration::from_secs(3600),
        }];
        assert!(m.active_at(ms("2026-12-01T00:30:00+01:00")).is_some());
        assert!(m.active_at(ms("2026-12-02T00:30:00+01:00")).is_none());
    }

    #[test]
    fn scope_and_change_phases() {
        let s = Scope::new(ScopeSpec {
            hosts: vec!["web-*".into()],
            host_labels: BTreeMap::new(),
        })
        .unwrap();
        assert!(s.covers("web-1", &Labels::new()) && !s.covers("db-1", &Labels::new()));
        let e = Scope::new(ScopeSpec::default()).unwrap_err();
        assert_eq!(e.0, "scope");
        let mut c = Change {
            id: 1,
            title: "t".into(),
            scope: s,
            start_ms: 100,
            end_ms: 200,
            verify_for: Duration::from_millis(50),
            outcome: None,
            outcome_note: None,
            created_by: "ops".into(),
            created_at_ms: 0,
        };
        let phases: Vec<_> = [99, 100, 199, 200, 249, 250]
            .iter()
            .map(|&t| c.phase(t))
            .collect();
        assert_eq!(
            phases,
            [
                Phase::Scheduled,
                Phase::InProgress,
                Phase::InProgress,
                Phase::Verifying,
                Phase::Verifying,
                Phase::Done
            ]
        );
        c.outcome = Some(ChangeOutcome::Failed);
        assert_eq!(c.phase(150), Phase::Done);
    }

    #[test]
    fn occurrences_over_a_range_agree_with_active_at() {
        let m = sunday_patching("02:30");
        let (from, to) = (ms("2026-03-01T00:00:00Z"), ms("2026-04-01T00:00:00Z"));
        let occ = m.occurrences(from, to);
        // Five Sundays in March 2026, the DST one (29th) included.
        assert_eq!(occ.len(), 5);
        for &(s, e) in &occ {
            assert_eq!(m.active_at(s), Some((s, e)));
            assert_eq!(m.active_at(e), None);
        }
        assert!(occ.windows(2).all(|w| w[0].1 <= w[1].0));
    }
}
