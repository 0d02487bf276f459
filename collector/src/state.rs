//! Latest-value state: per host, its identity, liveness, the latest point of
//! every series and the latest result of every check. No history: long-term
//! metrics belong to Prometheus.
//!
//! Written only by the engine (under a write lock held for one batch), read
//! by `/metrics` at scrape time.

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};
use vedette_protocol::CheckResult;
pub use vedette_protocol::MAX_SEQ;

use crate::availability::Timeline;
use crate::incidents::Labels;
use crate::store::{HostRecord, RETIRED_BOOTS};
use crate::windows::Scope;

/// A series within a host: metric name and labels.
pub type SeriesKey = (String, Labels);

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
    pub series: HashMap<SeriesKey, Point>,
    pub checks: BTreeMap<String, CheckResult>,
    /// Heartbeat availability: up while pushing within the heartbeat limit.
    pub up: Timeline,
    /// Per check: ok and warning are up, critical down, unknown unknown.
    pub check_up: HashMap<String, Timeline>,
    /// Changed since last persisted.
    pub dirty: bool,
}

impl HostState {
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
            checks: BTreeMap::new(),
            up: Timeline::default(),
            check_up: HashMap::new(),
            dirty: false,
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

    /// Stores a point unless the series already has a newer one (a late
    /// replay must not roll the latest value back). Returns true if stored.
    pub fn set_point(&mut self, name: &str, labels: &Labels, point: Point) -> bool {
        match self.series.get_mut(&(name.to_string(), labels.clone())) {
            Some(p) if p.ts_ms > point.ts_ms => false,
            Some(p) => {
                *p = point;
                true
            }
            None => {
                self.series
                    .insert((name.to_string(), labels.clone()), point);
                true
            }
        }
    }
}

/// A boot id as remembered once retired: 128 bits of its SHA-256.
pub fn boot_digest(boot_id: &str) -> u128 {
    let d = Sha256::digest(boot_id.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    u128::from_be_bytes(b)
}

/// All hosts, the collector's own runs and the planned changes availability
/// leaves out.
#[derive(Debug, Default)]
pub struct State {
    pub hosts: HashMap<String, HostState>,
    /// The collector itself: up while running, down between runs.
    pub runs: Timeline,
    /// Changes within the availability horizon: `(scope, start, end)`.
    pub changes: Vec<(Scope, i64, i64)>,
}

impl State {
    /// State restored from the store's host records.
    pub fn from_records(records: Vec<HostRecord>) -> State {
        State {
            hosts: records
                .into_iter()
                .map(|r| (r.host.clone(), HostState::from_record(r)))
                .collect(),
            ..State::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostState {
        HostState::from_record(HostRecord {
            host: "h".into(),
            labels: Labels::new(),
            boot_id: "b1".into(),
            last_seq: 5,
            last_seen_ms: 0,
            interval_ms: 10_000,
            retired_boots: Vec::new(),
        })
    }

    #[test]
    fn dedup_is_per_boot_id() {
        let h = host();
        assert!(h.is_duplicate("b1", 5));
        assert!(h.is_duplicate("b1", 1));
        assert!(!h.is_duplicate("b1", 6));
        assert!(!h.is_duplicate("b2", 1));
    }

    #[test]
    fn a_boot_the_host_moved_past_is_a_repeat() {
        let mut h = host();
        h.advance("b2", 1);
        assert!(h.is_duplicate("b1", 6), "b1 retired when b2 was applied");
        assert!(h.is_duplicate("b1", u64::MAX >> 1));
        assert!(!h.is_duplicate("b2", 2));
        assert!(!h.is_duplicate("b3", 1));
        // Only the newest RETIRED_BOOTS are remembered.
        for i in 3..3 + RETIRED_BOOTS {
            h.advance(&format!("b{i}"), 1);
        }
        assert!(h.is_duplicate(&format!("b{}", 1 + RETIRED_BOOTS), 9));
        assert!(
            !h.is_duplicate("b1", 9),
            "forgotten after {RETIRED_BOOTS} newer boots"
        );
        assert_eq!(h.retired_boots.len(), RETIRED_BOOTS);
        // Round trip through the record.
        let again = HostState::from_record(h.record("h"));
        assert_eq!(again.retired_boots, h.retired_boots);
    }

    proptest::proptest! {
        /// Whatever order an agent's batches and stale retries arrive in,
        /// each `(boot, seq)` is applied at most once, and a boot is never
        /// applied after a later one was.
        #[test]
        fn each_batch_applies_at_most_once(arrivals in proptest::collection::vec((0u8..4, 1u64..6), 0..60)) {
            let mut h = host();
            h.boot_id.clear();
            h.last_seq = 0;
            let mut applied = std::collections::HashSet::new();
            let mut order: Vec<u8> = Vec::new();
            for (boot, seq) in arrivals {
                let id = format!("boot-{boot}");
                if h.is_duplicate(&id, seq) {
                    continue;
                }
                proptest::prop_assert!(applied.insert((boot, seq)), "({boot}, {seq}) applied twice");
                if order.last() != Some(&boot) {
                    proptest::prop_assert!(!order.contains(&boot), "boot {boot} applied again after a newer one");
                    order.push(boot);
                }
                h.advance(&id, seq);
            }
        }
    }

    #[test]
    fn older_points_do_not_roll_back() {
        let mut h = host();
        let l = Labels::new();
        assert!(h.set_point(
            "m",
            &l,
            Point {
                ts_ms: 10,
                value: 1.0
            }
        ));
        assert!(!h.set_point(
            "m",
            &l,
            Point {
                ts_ms: 9,
                value: 2.0
            }
        ));
        assert!(h.set_point(
            "m",
            &l,
            Point {
                ts_ms: 10,
                value: 3.0
            }
        ));
        assert_eq!(h.series[&("m".to_string(), l)].value, 3.0);
    }
}
