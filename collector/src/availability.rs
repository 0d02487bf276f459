//! Availability from state intervals, not from counting samples. Pure: every
//! question takes the time.
//!
//! A [`Timeline`] is a subject's state changes (a host's heartbeat, one check
//! on one host): each state holds from its instant until the next change, and
//! before the first change the state is unknown. The collector's own
//! downtime is written into every timeline as `unknown` at start (from the
//! last instant the previous run is known to have been alive), so it is
//! never counted as `down`.
//!
//! [`tally`] splits a window into up, down, unknown and planned time: planned
//! (a change or maintenance window covering the subject) is taken out first,
//! whatever the state was. Availability = up / (up + down); unknown and
//! planned time are outside the agreed time and reported beside the ratio.
//! [`service_tally`] combines several timelines (`all` or `any`) by sweeping
//! over every instant where one of them changes.

use std::time::Duration;

use serde::Serialize;

/// A subject's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Avail {
    Up,
    Down,
    Unknown,
}

impl Avail {
    pub fn as_str(self) -> &'static str {
        match self {
            Avail::Up => "up",
            Avail::Down => "down",
            Avail::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Avail> {
        match s {
            "up" => Some(Avail::Up),
            "down" => Some(Avail::Down),
            "unknown" => Some(Avail::Unknown),
            _ => None,
        }
    }
}

/// A subject's state changes, oldest first, at strictly increasing instants.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    points: Vec<(i64, Avail)>,
}

impl Timeline {
    /// The state now (unknown before anything was recorded).
    pub fn current(&self) -> Avail {
        self.points.last().map_or(Avail::Unknown, |p| p.1)
    }

    /// The states over `[from, to)`: `(start, end, state)` in order, unknown
    /// where nothing was recorded.
    pub fn segments(&self, from: i64, to: i64) -> Vec<(i64, i64, Avail)> {
        let mut out = Vec::new();
        let mut at = from;
        let mut state = Avail::Unknown;
        for &(t, s) in &self.points {
            if t <= from {
                state = s;
                continue;
            }
            if t >= to {
                break;
            }
            out.push((at, t, state));
            at = t;
            state = s;
        }
        if at < to {
            out.push((at, to, state));
        }
        out.retain(|(a, b, _)| b > a);
        out
    }

    /// When the current state began.
    pub fn since(&self) -> Option<i64> {
        self.points.last().map(|p| p.0)
    }

    /// Records that the state is `state` from `at_ms`. Returns the instant
    /// recorded, or `None` when nothing changed. History is not rewritten: an
    /// instant before the current state's start is moved up to it (and a
    /// change at the very same instant replaces that state).
    pub fn set(&mut self, state: Avail, at_ms: i64) -> Option<i64> {
        if self.current() == state && !self.points.is_empty() {
            return None;
        }
        match self.points.last_mut() {
            Some(last) if at_ms <= last.0 => {
                let at = last.0;
                last.1 = state;
                // Replacing may make it equal to the state before it.
                let n = self.points.len();
                if n >= 2 && self.points[n - 2].1 == state {
                    self.points.pop();
                }
                Some(at)
            }
            _ => {
                self.points.push((at_ms, state));
                Some(at_ms)
            }
        }
    }

    /// Forgets changes that no window starting at or after `before_ms` can
    /// see (the state at `before_ms` is kept).
    pub fn prune(&mut self, before_ms: i64) {
        let keep_from = self.points.partition_point(|p| p.0 <= before_ms);
        if keep_from > 1 {
            self.points.drain(..keep_from - 1);
        }
    }

    /// The state at `at_ms`.
    pub fn at(&self, at_ms: i64) -> Avail {
        let i = self.points.partition_point(|p| p.0 <= at_ms);
        if i == 0 {
            Avail::Unknown
        } else {
            self.points[i - 1].1
        }
    }

    /// The changes, oldest first.
    pub fn points(&self) -> &[(i64, Avail)] {
        &self.points
    }

    /// Builds a timeline from stored changes (any order; repeats collapse).
    pub fn from_points(mut points: Vec<(i64, Avail)>) -> Timeline {
        points.sort_by_key(|p| p.0);
        let mut t = Timeline::default();
        for (at, s) in points {
            t.set(s, at);
        }
        t
    }
}

/// Time in a window, in milliseconds, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub up_ms: i64,
    pub down_ms: i64,
    pub unknown_ms: i64,
    /// Covered by a change or maintenance window: outside the agreed time.
    pub planned_ms: i64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.up_ms += o.up_ms;
        self.down_ms += o.down_ms;
        self.unknown_ms += o.unknown_ms;
        self.planned_ms += o.planned_ms;
    }
}

impl Tally {
    /// up / (up + down); `None` when nothing was observed in agreed time.
    pub fn ratio(&self) -> Option<f64> {
        let agreed = self.up_ms + self.down_ms;
        (agreed > 0).then(|| self.up_ms as f64 / agreed as f64)
    }

    fn add(&mut self, state: Slice, ms: i64) {
        match state {
            Slice::State(Avail::Up) => self.up_ms += ms,
            Slice::State(Avail::Down) => self.down_ms += ms,
            Slice::State(Avail::Unknown) => self.unknown_ms += ms,
            Slice::Planned => self.planned_ms += ms,
        }
    }
}

/// What one instant counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slice {
    State(Avail),
    Planned,
}

/// Sorts and merges overlapping or touching intervals `[start, end)`.
pub fn merge(mut spans: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    spans.retain(|s| s.1 > s.0);
    spans.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
    for (s, e) in spans {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Splits `[from, to)` of `timeline` into up, down, unknown and planned time.
/// `planned` must be merged ([`merge`]).
pub fn tally(timeline: &Timeline, planned: &[(i64, i64)], from: i64, to: i64) -> Tally {
    let mut cursor = Cursor::new(timeline, planned);
    let mut t = Tally::default();
    let mut at = from;
    while at < to {
        let (slice, until) = cursor.slice(at);
        let end = until.min(to);
        t.add(slice, end - at);
        at = end;
    }
    t
}

/// How a service combines its members' states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Up only when every member is up; down when any is down.
    All,
    /// Up when at least one member is up; down when none is up and one is down.
    Any,
}

/// Combines members (their timelines and planned spans) over `[from, to)`.
/// A member in planned time is left out of the combination; the service is
/// planned when every member is; unknown when it has no members.
pub fn service_tally(
    members: &[(&Timeline, &[(i64, i64)])],
    mode: Mode,
    from: i64,
    to: i64,
) -> Tally {
    let mut t = Tally::default();
    if members.is_empty() {
        t.unknown_ms = (to - from).max(0);
        return t;
    }
    let mut cursors: Vec<Cursor> = members.iter().map(|(tl, p)| Cursor::new(tl, p)).collect();
    let mut at = from;
    while at < to {
        let mut until = to;
        let (mut up, mut down, mut unknown) = (0, 0, 0);
        for c in &mut cursors {
            let (slice, u) = c.slice(at);
            until = until.min(u);
            match slice {
                Slice::State(Avail::Up) => up += 1,
                Slice::State(Avail::Down) => down += 1,
                Slice::State(Avail::Unknown) => unknown += 1,
                Slice::Planned => {}
            }
        }
        let slice = match mode {
            _ if up + down + unknown == 0 => Slice::Planned,
            Mode::All if down > 0 => Slice::State(Avail::Down),
            Mode::All if unknown > 0 => Slice::State(Avail::Unknown),
            Mode::All => Slice::State(Avail::Up),
            Mode::Any if up > 0 => Slice::State(Avail::Up),
            Mode::Any if down > 0 => Slice::State(Avail::Down),
            Mode::Any => Slice::State(Avail::Unknown),
        };
        t.add(slice, until - at);
        at = until;
    }
    t
}

/// Walks a timeline and its planned spans forward in time.
struct Cursor<'a> {
    points: &'a [(i64, Avail)],
    planned: &'a [(i64, i64)],
    /// Index of the first point after the current instant.
    next: usize,
    /// Index of the first planned span not ended at the current instant.
    span: usize,
}

impl<'a> Cursor<'a> {
    fn new(t: &'a Timeline, planned: &'a [(i64, i64)]) -> Cursor<'a> {
        Cursor {
            points: &t.points,
            planned,
            next: 0,
            span: 0,
        }
    }

    /// What `at` counts as and until when it stays so (`at` never goes back).
    fn slice(&mut self, at: i64) -> (Slice, i64) {
        while self.next < self.points.len() && self.points[self.next].0 <= at {
            self.next += 1;
        }
        while self.span < self.planned.len() && self.planned[self.span].1 <= at {
            self.span += 1;
        }
        let next_change = self.points.get(self.next).map_or(i64::MAX, |p| p.0);
        match self.planned.get(self.span) {
            Some(&(s, e)) if s <= at => (Slice::Planned, e),
            other => {
                let state = match self.next {
                    0 => Avail::Unknown,
                    i => self.points[i - 1].1,
                };
                let next_plan = other.map_or(i64::MAX, |p| p.0);
                (Slice::State(state), next_change.min(next_plan))
            }
        }
    }
}

/// The rolling windows availability is published for.
pub const WINDOWS: [(&str, Duration); 4] = [
    ("1h", Duration::from_secs(3600)),
    ("1d", Duration::from_secs(86_400)),
    ("7d", Duration::from_secs(7 * 86_400)),
    ("30d", Duration::from_secs(30 * 86_400)),
];

/// The windows of the multi-window, multi-burn-rate alerts (SRE workbook).
pub const BURN_WINDOWS: [(&str, Duration); 6] = [
    ("5m", Duration::from_secs(300)),
    ("30m", Duration::from_secs(1800)),
    ("1h", Duration::from_secs(3600)),
    ("6h", Duration::from_secs(6 * 3600)),
    ("1d", Duration::from_secs(86_400)),
    ("3d", Duration::from_secs(3 * 86_400)),
];

/// How far back any window looks.
pub const HORIZON: Duration = Duration::from_secs(30 * 86_400);

/// 1 − (1 − availability) / (1 − target): 1 with no errors, 0 when the budget
/// is spent, negative past it.
pub fn budget_remaining(availability: f64, target: f64) -> f64 {
    1.0 - (1.0 - availability) / (1.0 - target)
}

/// (1 − availability) / (1 − target): 1 spends the budget exactly over the
/// SLA period, 14.4 spends a 30-day budget in about two days.
pub fn burn_rate(availability: f64, target: f64) -> f64 {
    (1.0 - availability) / (1.0 - target)
}

#[cfg(test)]
mod tests;
