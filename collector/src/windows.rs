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
pub(crate) fn local_start(tz: &Tz, day: NaiveDate, time: NaiveTime) -> i64 {
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

/// What kind of planned window suppressed a breach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowKind {
    Change,
    Maintenance,
}

impl WindowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WindowKind::Change => "change",
            WindowKind::Maintenance => "maintenance",
        }
    }

    pub fn parse(s: &str) -> Option<WindowKind> {
        [WindowKind::Change, WindowKind::Maintenance]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// The planned window covering a host now, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ActiveWindow {
    pub kind: WindowKind,
    /// The change's title or the maintenance window's name.
    pub name: String,
    pub change_id: Option<i64>,
    /// When it ends.
    pub until_ms: i64,
}

/// When a change's scope was (or will be) under planned work: what
/// availability counts as planned time.
#[derive(Debug, Clone)]
pub struct PlannedSpan {
    pub scope: Scope,
    pub start_ms: i64,
    pub end_ms: i64,
}

impl From<&Change> for PlannedSpan {
    fn from(c: &Change) -> PlannedSpan {
        PlannedSpan {
            scope: c.scope.clone(),
            start_ms: c.start_ms,
            end_ms: c.end_ms,
        }
    }
}

#[cfg(test)]
mod tests;
