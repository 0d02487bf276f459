//! Planned work: maintenance windows and changes suppress breaches in their
//! scope (recorded, and opened when the window ends if still breaching);
//! a change whose scope breaches within `verify_for` after it ends fails.

use super::*;
use crate::windows::{ActiveWindow, WindowKind};

/// A breach a window suppressed: it opens an incident when the window ends
/// if it is still breaching then.
#[derive(Debug, Clone)]
pub(super) struct Suppressed {
    pub(super) until_ms: i64,
    pub(super) started_ms: i64,
    pub(super) value: f64,
    pub(super) detail: Detail,
}

/// What a new change needs (validated by the API).
#[derive(Debug, Clone)]
pub struct NewChange {
    pub title: String,
    pub scope: ScopeSpec,
    pub start_ms: i64,
    pub end_ms: i64,
    pub verify_for: Duration,
}

/// Changes as the engine tracks them (undecided, oldest first).
pub(super) fn engine_changes(changes: &mut Vec<Change>) -> Vec<Change> {
    changes.reverse();
    std::mem::take(changes)
}

impl Engine {
    /// The window covering `host` at `now_ms`, if any: `(kind, name, change id, end)`.
    pub(super) fn window_for(
        &self,
        host: &str,
        labels: &Labels,
        now_ms: i64,
    ) -> Option<ActiveWindow> {
        for c in &self.changes {
            if c.phase(now_ms) == Phase::InProgress && c.scope.covers(host, labels) {
                return Some(ActiveWindow {
                    kind: WindowKind::Change,
                    name: c.title.clone(),
                    change_id: Some(c.id),
                    until_ms: c.end_ms,
                });
            }
        }
        for m in &self.maintenance {
            if m.scope.covers(host, labels) {
                if let Some((_, end)) = m.active_at(now_ms) {
                    return Some(ActiveWindow {
                        kind: WindowKind::Maintenance,
                        name: m.name.clone(),
                        change_id: None,
                        until_ms: end,
                    });
                }
            }
        }
        None
    }

    /// Suppressed breaches whose window ended: still breaching opens the
    /// incident now (the planned work did not fix it); a covering window
    /// that follows extends the suppression. One that cannot be persisted is
    /// kept and tried again on the next tick.
    pub(super) fn end_suppressions(&mut self, now_ms: i64) {
        let ended: Vec<AlertKey> = self
            .suppressed
            .iter()
            .filter(|(_, s)| s.until_ms <= now_ms)
            .map(|(k, _)| k.clone())
            .collect();
        for key in ended {
            let Some(s) = self.suppressed.remove(&key) else {
                continue;
            };
            let still = self.alerts.get(&key).is_some_and(|a| {
                matches!(a.state, AlertState::Firing | AlertState::Clearing { .. })
            });
            if !still {
                continue;
            }
            let before = self.alerts.get(&key).copied();
            match self.fire(&key, s.started_ms, s.value, s.detail.clone(), 0.0, now_ms) {
                Ok(()) => self.succeeded(Subject::Alert(key)),
                Err(e) => {
                    self.put_back(key.clone(), before);
                    self.suppressed.insert(key.clone(), s);
                    self.failed(Stage::Suppression, Subject::Alert(key), &e);
                }
            }
        }
    }

    /// Changes past their verification period without a breach succeeded.
    pub(super) fn decide_changes(&mut self, now_ms: i64) {
        let done: Vec<Change> = self
            .changes
            .iter()
            .filter(|c| c.phase(now_ms) == Phase::Done)
            .cloned()
            .collect();
        for mut c in done {
            c.outcome = Some(ChangeOutcome::Successful);
            if let Err(e) = self.commit(|tx| tx.save_change(&mut c)) {
                self.failed(Stage::Change, Subject::Change(c.id), &e);
                continue;
            }
            self.succeeded(Subject::Change(c.id));
            tracing::info!(change = c.id, title = %c.title, "change successful");
            self.metrics
                .changes
                .with_label_values(&["successful"])
                .inc();
            self.changes.retain(|x| x.id != c.id);
        }
    }

    /// Records a breach a planned window suppressed; it opens an incident
    /// when the window ends if it still breaches then.
    pub(super) fn suppress(
        &mut self,
        key: &AlertKey,
        window: ActiveWindow,
        opening: &Opening,
        breach: Suppressed,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut s = Suppression {
            id: 0,
            at_ms: now_ms,
            fingerprint: crate::incidents::fingerprint(&opening.rule, &key.host, &key.labels),
            rule: opening.rule.clone(),
            host: key.host.clone(),
            labels: key.labels.clone(),
            summary: opening.summary.clone(),
            window_kind: window.kind,
            window_name: window.name,
            change_id: window.change_id,
        };
        self.commit(|tx| tx.insert_suppression(&mut s))?;
        tracing::info!(rule = %s.rule, host = %s.host, window = %s.window_name, "breach suppressed by a planned window");
        self.metrics.suppressed.with_label_values(&[&s.rule]).inc();
        self.suppressed.insert(key.clone(), breach);
        Ok(())
    }

    /// The changes in verification whose scope a breach on `host` fails.
    pub(super) fn changes_failed_by(
        &self,
        host: &str,
        labels: &Labels,
        now_ms: i64,
    ) -> Vec<Change> {
        self.changes
            .iter()
            .filter(|c| c.phase(now_ms) == Phase::Verifying && c.scope.covers(host, labels))
            .cloned()
            .collect()
    }

    /// Changes whose failure was just committed: decided, no longer watched.
    pub(super) fn changes_failed(&mut self, failed: Vec<Change>) {
        for c in failed {
            tracing::warn!(change = c.id, title = %c.title, "change failed verification");
            self.metrics.changes.with_label_values(&["failed"]).inc();
            self.changes.retain(|x| x.id != c.id);
        }
    }
}
