//! Fault isolation: each subject's transition (an alert, an incident, a
//! change, a host record, availability, the run) is its own unit of work.
//! One the store refuses is rolled back for that subject alone, counted in
//! `vedette_engine_errors_total{stage}`, logged once until it succeeds
//! again, and retried; the others go on.

use std::collections::HashMap;

use super::{fmt_labels, AlertKey, Engine, Fired};
use crate::metrics::Stage;
use crate::rules::Alert;
use crate::store::StoreError;

/// What an isolated failure was about, so it is logged once until it recovers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Subject {
    Alert(AlertKey),
    Incident(i64),
    Change(i64),
    Host(String),
    Availability,
    Run,
}

/// How many failing subjects are remembered; past that, failures are still
/// counted but may be logged more than once.
pub(super) const FAULTS_CAP: usize = 10_000;

/// Records a failure of `subject`; true the first time (until it succeeds).
pub(super) fn first_failure(faults: &mut HashMap<Subject, u64>, subject: Subject) -> bool {
    if let Some(n) = faults.get_mut(&subject) {
        *n += 1;
        return false;
    }
    if faults.len() < FAULTS_CAP {
        faults.insert(subject, 1);
    }
    true
}

impl Engine {
    /// Acts on each transition in order, each its own unit of work. One the
    /// store refuses is rolled back for its subject alone (its alert as it
    /// was before, so the next evaluation makes it again), counted under
    /// `stage` and logged once; the others go on. When the store as a whole
    /// fails (disk full, I/O) and `abort_on_outage` (a push, which is then
    /// refused and retried whole), that transition and those after it get
    /// their alerts back and the failure is returned; otherwise every
    /// transition is tried and `Ok` returned.
    pub(super) fn act_each(
        &mut self,
        fired: Vec<Fired>,
        stage: Stage,
        now_ms: i64,
        abort_on_outage: bool,
    ) -> Result<(), StoreError> {
        let mut fired = fired.into_iter();
        while let Some(f) = fired.next() {
            let (key, before) = (f.key.clone(), f.before);
            match self.act(f, now_ms) {
                Ok(()) => self.succeeded(Subject::Alert(key)),
                Err(e) => {
                    self.put_back(key.clone(), before);
                    self.failed(stage, Subject::Alert(key), &e);
                    if abort_on_outage && !e.is_refusal() {
                        for f in fired {
                            self.put_back(f.key, f.before);
                        }
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    /// Puts an alert back as it was before an evaluation whose transition
    /// was not persisted.
    pub(super) fn put_back(&mut self, key: AlertKey, before: Option<Alert>) {
        match before {
            Some(alert) => self.alerts.insert(key, alert),
            None => self.alerts.remove(&key),
        };
    }

    /// Counts a failure the engine isolated and logs it the first time for
    /// its subject.
    pub(super) fn failed(&mut self, stage: Stage, subject: Subject, e: &StoreError) {
        self.metrics
            .engine_errors
            .with_label_values(&[stage.as_str()])
            .inc();
        if first_failure(&mut self.faults, subject.clone()) {
            let what = self.describe(&subject);
            if e.is_refusal() {
                tracing::warn!(stage = stage.as_str(), subject = %what, error = %e, "the store refused a transition; it is rolled back for this subject alone and retried, every other subject goes on (logged once until it succeeds)");
            } else {
                tracing::warn!(stage = stage.as_str(), subject = %what, error = %e, "the store failed; retried (logged once per subject until it succeeds)");
            }
        }
    }

    /// A write for `subject` went through: if it had been failing, say so.
    pub(super) fn succeeded(&mut self, subject: Subject) {
        if self.faults.is_empty() {
            return;
        }
        if let Some(n) = self.faults.remove(&subject) {
            tracing::info!(subject = %self.describe(&subject), failures = n, "the store took the transition it had refused");
        }
    }

    /// A subject for people: `rule 'cpu_high' on web-01 {core="0"}`.
    pub(super) fn describe(&self, subject: &Subject) -> String {
        match subject {
            Subject::Alert(k) => format!(
                "rule '{}' on {}{}",
                self.rules.get(k.rule).map_or("?", |r| &*r.name),
                k.host,
                fmt_labels(&k.labels)
            ),
            Subject::Incident(id) => format!("incident {id}"),
            Subject::Change(id) => format!("change {id}"),
            Subject::Host(h) => format!("host {h}"),
            Subject::Availability => "availability changes".into(),
            Subject::Run => "the collector's alive mark".into(),
        }
    }
}
