//! The live-incident book: which incident is live for each alert, found by
//! alert or by id, and the resolved incidents not yet closed (what a breach
//! within `reopen_within` reopens).
//!
//! Invariants, kept by every method here and checked by [`Book::check`]
//! (after each change in debug builds and tests):
//! - at most one live incident per alert, and per fingerprint;
//! - `ids` and `live` are inverse: `ids[i.id] == k` exactly when `live[k] == i`;
//! - an incident is live or resolved, never both;
//! - `last_resolved[k]` names a resolved incident of the book.
//!
//! Nothing else touches these maps, so the invariants hold wherever the
//! engine reads them.

use std::collections::{HashMap, HashSet};

use super::AlertKey;
use crate::incidents::{Incident, Origin};

#[derive(Debug, Default)]
pub(super) struct Book {
    live: HashMap<AlertKey, Incident>,
    ids: HashMap<i64, AlertKey>,
    /// Resolved, not yet closed, by id.
    resolved: HashMap<i64, Incident>,
    /// The newest resolved incident of each alert: what a breach reopens.
    last_resolved: HashMap<AlertKey, i64>,
}

impl Book {
    /// The live incident of `key`.
    pub(super) fn live(&self, key: &AlertKey) -> Option<&Incident> {
        self.live.get(key)
    }

    pub(super) fn is_live(&self, key: &AlertKey) -> bool {
        self.live.contains_key(key)
    }

    /// How many live incidents came from `origin`.
    pub(super) fn count_live(&self, origin: Origin) -> usize {
        self.live.values().filter(|i| i.origin == origin).count()
    }

    /// The alert whose live incident is `id`.
    pub(super) fn key_of(&self, id: i64) -> Option<&AlertKey> {
        self.ids.get(&id)
    }

    /// The resolved (not closed) incident `id`.
    pub(super) fn resolved(&self, id: i64) -> Option<&Incident> {
        self.resolved.get(&id)
    }

    /// The resolved incidents not yet closed.
    pub(super) fn all_resolved(&self) -> impl Iterator<Item = &Incident> {
        self.resolved.values()
    }

    /// The newest resolved incident of `key`, if not closed.
    pub(super) fn last_resolved(&self, key: &AlertKey) -> Option<&Incident> {
        self.last_resolved
            .get(key)
            .and_then(|id| self.resolved.get(id))
    }

    /// `incident` is now `key`'s live one (opened, reopened or adopted); it
    /// is no longer resolved, and `key` has nothing left to reopen.
    pub(super) fn open(&mut self, key: AlertKey, incident: Incident) {
        self.resolved.remove(&incident.id);
        self.last_resolved.remove(&key);
        if let Some(old) = self.live.remove(&key) {
            self.ids.remove(&old.id);
        }
        self.ids.insert(incident.id, key.clone());
        self.live.insert(key, incident);
        self.debug_check();
    }

    /// Replaces the live incident of `key` (same id) after a transition
    /// that keeps it live (acknowledged, flapping).
    pub(super) fn update_live(&mut self, key: &AlertKey, incident: Incident) {
        debug_assert_eq!(self.live.get(key).map(|i| i.id), Some(incident.id));
        if let Some(slot) = self.live.get_mut(key) {
            *slot = incident;
        }
    }

    /// Replaces resolved incident `incident.id` (restored after the fact).
    pub(super) fn update_resolved(&mut self, incident: Incident) {
        if let Some(slot) = self.resolved.get_mut(&incident.id) {
            *slot = incident;
        }
    }

    /// Links the incidents `ids` (live or resolved) to problem `problem`.
    pub(super) fn link_problem(&mut self, ids: &[i64], problem: i64) {
        for id in ids {
            if let Some(i) = self.resolved.get_mut(id) {
                i.problem_id = Some(problem);
            }
            if let Some(i) = self.ids.get(id).and_then(|k| self.live.get_mut(k)) {
                i.problem_id = Some(problem);
            }
        }
    }

    /// `key`'s live incident was resolved: it becomes the one `key` reopens.
    pub(super) fn retire(&mut self, key: &AlertKey, resolved: Incident) {
        if let Some(old) = self.live.remove(key) {
            self.ids.remove(&old.id);
        }
        self.last_resolved.insert(key.clone(), resolved.id);
        self.resolved.insert(resolved.id, resolved);
        self.debug_check();
    }

    /// A resolved incident known from the store at start; the newest of
    /// each alert comes last.
    pub(super) fn restore_resolved(&mut self, key: Option<AlertKey>, incident: Incident) {
        if let Some(key) = key {
            self.last_resolved.insert(key, incident.id);
        }
        self.resolved.insert(incident.id, incident);
    }

    /// A resolved incident was closed: it leaves the book.
    pub(super) fn close(&mut self, id: i64) {
        self.resolved.remove(&id);
        self.last_resolved.retain(|_, v| *v != id);
    }

    /// Moves every entry to the key `remap` gives it (a reload renumbered
    /// the rules); returns the live incidents whose rule is gone.
    pub(super) fn rekey(&mut self, remap: impl Fn(AlertKey) -> Option<AlertKey>) -> Vec<Incident> {
        super::rekey(&mut self.last_resolved, &remap);
        let orphans = super::rekey(&mut self.live, &remap);
        for o in &orphans {
            self.ids.remove(&o.id);
        }
        self.ids = self.live.iter().map(|(k, i)| (i.id, k.clone())).collect();
        self.debug_check();
        orphans
    }

    fn debug_check(&self) {
        if cfg!(debug_assertions) {
            if let Err(e) = self.check() {
                panic!("live-incident book: {e}");
            }
        }
    }

    /// The invariants (see the module's documentation), or the first broken one.
    pub(super) fn check(&self) -> Result<(), String> {
        if self.ids.len() != self.live.len() {
            return Err(format!(
                "{} ids for {} live incidents",
                self.ids.len(),
                self.live.len()
            ));
        }
        let mut fingerprints = HashSet::new();
        for (k, i) in &self.live {
            if self.ids.get(&i.id) != Some(k) {
                return Err(format!("live incident {} is not found by its id", i.id));
            }
            if !fingerprints.insert(i.fingerprint.as_str()) {
                return Err(format!("two live incidents share {}", i.fingerprint));
            }
            if self.resolved.contains_key(&i.id) {
                return Err(format!("incident {} is live and resolved", i.id));
            }
        }
        for (k, id) in &self.last_resolved {
            if !self.resolved.contains_key(id) {
                return Err(format!("{k:?} reopens {id}, which is not resolved"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
