//! Latest-value state: per host, its identity, liveness, the latest point of
//! every series and the latest result of every check. No history: long-term
//! metrics belong to Prometheus.
//!
//! Written only by the engine (under a write lock held for one batch). Each
//! host sits behind an `Arc`, so a reader takes a [`State`] snapshot by
//! cloning the map under the lock (pointer copies) and renders outside it:
//! `/metrics` never holds the lock while it formats, and the engine copies
//! a host only when it changes one a snapshot still holds.
//!
//! Counts kept here bound what agents can make the collector hold: live
//! series per host and in total, distinct checks per host, hosts per agent
//! token (see `limits` in the configuration).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use vedette_protocol::CheckResult;
pub use vedette_protocol::MAX_SEQ;

use crate::availability::Timeline;
use crate::incidents::Labels;
use crate::windows::PlannedSpan;

/// How many earlier boots of a host are remembered (their batches are repeats).
pub const RETIRED_BOOTS: usize = 16;

/// What is kept of a host across restarts (the store's `hosts` row).
#[derive(Debug, Clone, PartialEq)]
pub struct HostRecord {
    pub host: String,
    pub labels: Labels,
    pub boot_id: String,
    pub last_seq: u64,
    pub last_seen_ms: i64,
    pub interval_ms: i64,
    /// Digests of the host's earlier boot ids, newest last.
    pub retired_boots: Vec<u128>,
}

/// A host's series: by metric name, then labels, so a sample is looked up
/// without building an owned key.
pub type Series = HashMap<String, HashMap<Labels, Point>>;

/// What [`HostState::set_point`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stored {
    /// A new series.
    Created,
    /// The series' latest point was replaced; this was its value.
    Updated(f64),
    /// The series already had a newer point.
    Kept,
}

/// One latest value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub ts_ms: i64,
    pub value: f64,
}

/// Everything known about one host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostState {
    pub labels: Labels,
    /// The agent run whose `seq` is tracked.
    pub boot_id: String,
    /// Highest `seq` applied for `boot_id`.
    pub last_seq: u64,
    /// Digests of the host's earlier boot ids, newest last (at most
    /// [`RETIRED_BOOTS`]): their batches are repeats.
    pub retired_boots: Vec<u128>,
    /// When the collector last received a batch (collector clock).
    pub last_seen_ms: i64,
    /// The agent's push interval.
    pub interval_ms: i64,
    series: Series,
    series_len: usize,
    pub checks: BTreeMap<String, CheckResult>,
    /// Heartbeat availability: up while pushing within the heartbeat limit.
    pub up: Timeline,
    /// Per check: ok and warning are up, critical down, unknown unknown.
    pub check_up: HashMap<String, Timeline>,
    /// Changed since last persisted.
    pub dirty: bool,
    /// The agent token that admitted the host (a digest of it), which
    /// `limits.hosts_per_token` charges it to; None without agent tokens.
    pub token: Option<u64>,
    /// When stale series were last swept (collector clock).
    pub swept_ms: i64,
}

impl HostState {
    /// A host heard from for the first time at `now_ms`.
    pub fn new(now_ms: i64) -> HostState {
        HostState {
            labels: Labels::new(),
            boot_id: String::new(),
            last_seq: 0,
            retired_boots: Vec::new(),
            last_seen_ms: now_ms,
            interval_ms: 0,
            series: HashMap::new(),
            series_len: 0,
            checks: BTreeMap::new(),
            up: Timeline::default(),
            check_up: HashMap::new(),
            dirty: true,
            token: None,
            swept_ms: now_ms,
        }
    }

    /// A host restored from the store, with no series yet.
    pub fn from_record(r: HostRecord) -> HostState {
        HostState {
            labels: r.labels,
            boot_id: r.boot_id,
            last_seq: r.last_seq,
            retired_boots: r.retired_boots,
            last_seen_ms: r.last_seen_ms,
            interval_ms: r.interval_ms,
            series: HashMap::new(),
            series_len: 0,
            checks: BTreeMap::new(),
            up: Timeline::default(),
            check_up: HashMap::new(),
            dirty: false,
            token: None,
            swept_ms: r.last_seen_ms,
        }
    }

    /// The record to persist.
    pub fn record(&self, host: &str) -> HostRecord {
        HostRecord {
            host: host.to_string(),
            labels: self.labels.clone(),
            boot_id: self.boot_id.clone(),
            last_seq: self.last_seq,
            retired_boots: self.retired_boots.clone(),
            last_seen_ms: self.last_seen_ms,
            interval_ms: self.interval_ms,
        }
    }

    /// True when `(boot_id, seq)` has already been applied: an earlier seq
    /// of the current boot, or anything of a boot the host has moved past
    /// (a retry that outlived its agent's restart). A boot never seen starts
    /// a new sequence.
    pub fn is_duplicate(&self, boot_id: &str, seq: u64) -> bool {
        if self.boot_id == boot_id {
            return seq <= self.last_seq;
        }
        !self.retired_boots.is_empty() && self.retired_boots.contains(&boot_digest(boot_id))
    }

    /// Makes `boot_id` the current boot (the previous one retires) and
    /// `seq` its last applied batch.
    pub fn advance(&mut self, boot_id: &str, seq: u64) {
        if self.boot_id != boot_id {
            if !self.boot_id.is_empty() {
                self.retired_boots.push(boot_digest(&self.boot_id));
                let over = self.retired_boots.len().saturating_sub(RETIRED_BOOTS);
                self.retired_boots.drain(..over);
            }
            self.boot_id = boot_id.to_string();
        }
        self.last_seq = seq;
    }

    /// The availability timeline of the heartbeat (`check` empty) or of a check.
    pub fn set_timeline(&mut self, check: String, timeline: Timeline) {
        if check.is_empty() {
            self.up = timeline;
        } else {
            self.check_up.insert(check, timeline);
        }
    }

    /// Stores a point unless the series already has a newer one (a late
    /// replay must not roll the latest value back).
    pub fn set_point(&mut self, name: &str, labels: &Labels, point: Point) -> Stored {
        let by_labels = match self.series.get_mut(name) {
            Some(m) => m,
            None => self.series.entry(name.to_string()).or_default(),
        };
        match by_labels.get_mut(labels) {
            Some(p) if p.ts_ms > point.ts_ms => Stored::Kept,
            Some(p) => {
                let previous = p.value;
                *p = point;
                Stored::Updated(previous)
            }
            None => {
                by_labels.insert(labels.clone(), point);
                self.series_len += 1;
                Stored::Created
            }
        }
    }

    /// The latest point of one series.
    pub fn point(&self, name: &str, labels: &Labels) -> Option<Point> {
        self.series.get(name)?.get(labels).copied()
    }

    /// True when the host has this series.
    pub fn has_series(&self, name: &str, labels: &Labels) -> bool {
        self.series
            .get(name)
            .is_some_and(|m| m.contains_key(labels))
    }

    /// How many series the host has.
    pub fn series_len(&self) -> usize {
        self.series_len
    }

    /// Every series: name, labels and latest point.
    pub fn series(&self) -> impl Iterator<Item = (&str, &Labels, &Point)> {
        self.series
            .iter()
            .flat_map(|(n, m)| m.iter().map(move |(l, p)| (n.as_str(), l, p)))
    }

    /// Releases the series whose latest point is older than `before_ms`
    /// and returns them.
    pub fn sweep(&mut self, before_ms: i64) -> Vec<(String, Labels)> {
        let mut gone = Vec::new();
        self.series.retain(|name, by_labels| {
            by_labels.retain(|labels, p| {
                let keep = p.ts_ms >= before_ms;
                if !keep {
                    gone.push((name.clone(), labels.clone()));
                }
                keep
            });
            !by_labels.is_empty()
        });
        self.series_len -= gone.len();
        gone
    }
}

/// Bounds on what agents and Alertmanager can make the collector hold
/// (`limits:` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateLimits {
    /// Live series of one host.
    pub series_per_host: usize,
    /// Distinct checks one host has reported.
    pub checks_per_host: usize,
    /// Hosts one agent token has brought in.
    pub hosts_per_token: usize,
    /// Live series over all hosts.
    pub series_total: usize,
    /// Rules made for Alertmanager's alert names.
    pub external_rules: usize,
    /// Live incidents from Alertmanager's alerts.
    pub external_alerts: usize,
}

impl Default for StateLimits {
    fn default() -> Self {
        StateLimits {
            series_per_host: 10_000,
            checks_per_host: 1_000,
            hosts_per_token: 25_000,
            series_total: 2_000_000,
            external_rules: 1_000,
            external_alerts: 10_000,
        }
    }
}

/// One of [`StateLimits`], as named in `limits:` and in
/// `vedette_ingest_limited_total{limit}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    SeriesPerHost,
    ChecksPerHost,
    HostsPerToken,
    SeriesTotal,
    ExternalRules,
    ExternalAlerts,
}

impl Limit {
    pub const ALL: [Limit; 6] = [
        Limit::SeriesPerHost,
        Limit::ChecksPerHost,
        Limit::HostsPerToken,
        Limit::SeriesTotal,
        Limit::ExternalRules,
        Limit::ExternalAlerts,
    ];

    /// The key under `limits:`.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::SeriesPerHost => "series_per_host",
            Limit::ChecksPerHost => "checks_per_host",
            Limit::HostsPerToken => "hosts_per_token",
            Limit::SeriesTotal => "series_total",
            Limit::ExternalRules => "external_rules",
            Limit::ExternalAlerts => "external_alerts",
        }
    }

    /// The HTTP status a refusal answers with: 413 when the sender's own
    /// batch is too much for its host (sending it again cannot help), 429
    /// when the collector as a whole is full (slots free up as hosts are
    /// forgotten and alerts resolve).
    pub fn status(self) -> u16 {
        match self {
            Limit::SeriesPerHost | Limit::ChecksPerHost => 413,
            _ => 429,
        }
    }
}

/// A push or webhook call refused whole because it would take what the
/// collector holds past a limit; nothing of it was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Limited {
    pub limit: Limit,
    /// The batch field the excess came in (`samples`, `checks`, `agent.host`).
    pub field: Option<&'static str>,
    /// What, how much, and the fix.
    pub message: String,
}

/// A boot id as remembered once retired: 128 bits of its SHA-256.
pub fn boot_digest(boot_id: &str) -> u128 {
    let d = Sha256::digest(boot_id.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    u128::from_be_bytes(b)
}

/// All hosts, the collector's own runs and the planned changes availability
/// leaves out. Cloning it is the snapshot a reader takes (see the module).
#[derive(Debug, Default, Clone)]
pub struct State {
    pub hosts: HashMap<String, Arc<HostState>>,
    /// Live series over all hosts.
    pub series_total: usize,
    /// Hosts charged to each agent token (by [`HostState::token`]).
    pub hosts_per_token: HashMap<u64, usize>,
    /// The collector itself: up while running, down between runs.
    pub runs: Timeline,
    /// Changes within the availability horizon: `(scope, start, end)`.
    pub changes: Vec<PlannedSpan>,
}

impl State {
    /// State restored from the store's host records.
    pub fn from_records(records: Vec<HostRecord>) -> State {
        State {
            hosts: records
                .into_iter()
                .map(|r| (r.host.clone(), Arc::new(HostState::from_record(r))))
                .collect(),
            ..State::default()
        }
    }
}

#[cfg(test)]
mod tests;
