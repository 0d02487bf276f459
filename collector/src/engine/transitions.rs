//! Verdicts → incident transitions: due timers, opening (or reopening,
//! or adopting a live one the store already holds), restoring, flapping,
//! closing; the incident's summary and the metrics each transition moves.

use super::*;

#[allow(clippy::too_many_arguments)] // one evaluation's inputs, named at the call site
pub(super) fn observe(
    alerts: &mut HashMap<AlertKey, Alert>,
    key: &AlertKey,
    cond: Condition,
    timing: rules::Timing,
    flap: rules::FlapThresholds,
    value: f64,
    ts_ms: i64,
    now_ms: i64,
) -> (Outcome, f64, Option<Alert>) {
    match alerts.get_mut(key) {
        Some(alert) => {
            let before = *alert;
            let o = rules::observe(cond, timing, flap, alert, value, ts_ms, now_ms);
            let pct = alert.percent_state_change();
            if alert.is_idle() {
                alerts.remove(key);
            }
            (o, pct, Some(before))
        }
        // The common case, a healthy series: no entry, nothing allocated.
        None if !cond.breaching => (
            Outcome {
                verdict: Verdict::Nothing,
                flapping: None,
            },
            0.0,
            None,
        ),
        None => {
            let mut alert = Alert::default();
            let o = rules::observe(cond, timing, flap, &mut alert, value, ts_ms, now_ms);
            let pct = alert.percent_state_change();
            alerts.insert(key.clone(), alert);
            (o, pct, None)
        }
    }
}

pub(super) fn summary(rule: &Rule, key: &AlertKey, value: f64) -> String {
    match &rule.kind {
        RuleKind::Threshold(t) => format!(
            "{} on {}: {}{} is {} ({} {})",
            rule.name,
            key.host,
            t.compare.describe(&t.metric),
            fmt_labels(&key.labels),
            fmt_value(value),
            match t.direction {
                rules::Direction::Above => "above",
                rules::Direction::Below => "below",
            },
            fmt_value(t.threshold)
        ),
        RuleKind::Absent { after } => format!(
            "{} on {}: no data for {}",
            rule.name,
            key.host,
            humantime::format_duration(*after)
        ),
        RuleKind::Check(c) => format!(
            "{} on {}: check {} is {} or worse",
            rule.name,
            key.host,
            key.labels.get("check").map(String::as_str).unwrap_or("?"),
            c.status.as_str()
        ),
        RuleKind::External => format!("{} on {} (from Alertmanager)", rule.name, key.host),
    }
}

pub(super) fn fmt_value(v: f64) -> String {
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub(super) fn fmt_labels(labels: &Labels) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{{{}}}", inner.join(","))
}

impl Engine {
    /// The time-driven transitions due at `now_ms`.
    pub(super) fn due(&mut self, now_ms: i64) -> Vec<Fired> {
        let state = Arc::clone(&self.state);
        let st = state.read().unwrap_or_else(|p| p.into_inner());
        let mut fired = self.timers_due(&st, now_ms);
        if !self.index.absent_rules.is_empty() {
            self.silences_due(&st, now_ms, &mut fired);
        }
        fired
    }

    /// Alerts whose `for` or `resolve_after` elapsed, on hosts still reporting.
    fn timers_due(&mut self, st: &State, now_ms: i64) -> Vec<Fired> {
        let mut fired = Vec::new();
        for (key, alert) in self.alerts.iter_mut() {
            if !matches!(
                alert.state,
                AlertState::Pending { .. } | AlertState::Clearing { .. }
            ) {
                continue;
            }
            // A host that stopped reporting says nothing about its series.
            let Some(h) = st.hosts.get(&key.host) else {
                continue;
            };
            if now_ms.saturating_sub(h.last_seen_ms) > 3 * h.interval_ms.max(1000) {
                continue;
            }
            let before = Some(*alert);
            let verdict = rules::elapse(self.rules[key.rule].timing(), alert, now_ms);
            if verdict != Verdict::Nothing {
                fired.push(Fired {
                    key: key.clone(),
                    before,
                    outcome: Outcome {
                        verdict,
                        flapping: None,
                    },
                    percent: alert.percent_state_change(),
                    detail: Detail {
                        host_labels: h.labels.clone(),
                        metric: match &self.rules[key.rule].kind {
                            RuleKind::Threshold(t) => t.metric.clone(),
                            _ => String::new(),
                        },
                        check: key.labels.get("check").cloned().unwrap_or_default(),
                        ..Detail::default()
                    },
                });
            }
        }
        fired
    }

    pub(super) fn act(&mut self, f: Fired, now_ms: i64) -> Result<(), StoreError> {
        if let Some(flapping) = f.outcome.flapping {
            self.flapping_changed(&f.key, flapping, f.percent, now_ms)?;
        }
        match f.outcome.verdict {
            Verdict::Nothing => Ok(()),
            Verdict::Fire { started_ms, value } => {
                self.fire(&f.key, started_ms, value, f.detail, f.percent, now_ms)
            }
            Verdict::Clear { restored_ms } => self.clear(&f.key, restored_ms, now_ms),
        }
    }

    pub(super) fn fire(
        &mut self,
        key: &AlertKey,
        started_ms: i64,
        value: f64,
        detail: Detail,
        percent: f64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if self.book.is_live(key) {
            return Ok(());
        }
        let opening = self.opening(key, started_ms, value, &detail);
        if let Some(window) = self.window_for(&key.host, &detail.host_labels, now_ms) {
            let breach = Suppressed {
                until_ms: window.until_ms,
                started_ms,
                value,
                detail,
            };
            return self.suppress(key, window, &opening, breach, now_ms);
        }
        // Reopen the newest resolved incident of this alert if it is recent enough.
        let reopen_ms = duration_ms(self.policy.reopen_within);
        let previous = self
            .book
            .last_resolved(key)
            .filter(|i| {
                i.resolved_at_ms
                    .is_some_and(|t| now_ms.saturating_sub(t) < reopen_ms)
            })
            .cloned();
        let reopened = previous.is_some();
        let (mut incident, persisted) = match previous {
            Some(mut i) => {
                let n = i.events.len();
                if let Err(e) = i.reopen(Some(value), now_ms) {
                    return Err(StoreError::Corrupt(e.to_string()));
                }
                (i, n)
            }
            None => (Incident::open(opening, now_ms), 0),
        };
        if self.alerts.get(key).is_some_and(|a| a.flapping) {
            incident.set_flapping(true, percent, now_ms);
        }
        let mut failed = self.changes_failed_by(&key.host, &detail.host_labels, now_ms);
        // Problem: the Nth occurrence of this fingerprint within the window.
        let fp = incident.fingerprint.clone();
        let mut problem = self.problem_for(&fp, now_ms, &incident);
        let summary = incident.summary.clone();
        let result = self.commit(|tx| {
            tx.save_incident(&mut incident, persisted)?;
            if let Some(p) = problem.as_mut() {
                if !p.incident_ids.contains(&incident.id) {
                    p.incident_ids.push(incident.id);
                }
                tx.save_problem(p)?;
                incident.problem_id = Some(p.id);
            }
            for c in failed.iter_mut() {
                c.outcome = Some(ChangeOutcome::Failed);
                c.outcome_note = Some(format!(
                    "{} within verify_for after the change ended: {summary}",
                    if reopened { "reopened" } else { "opened" }
                ));
                tx.save_change(c)?;
            }
            Ok(())
        });
        if let Err(e) = result {
            if persisted == 0 && e.is_constraint() && self.adopt(key, &fp) {
                return Ok(());
            }
            // Not persisted, so not opened: let the next evaluation retry.
            self.alerts.remove(key);
            return Err(e);
        }
        self.log_opened(&incident, reopened);
        self.changes_failed(failed);
        self.recurred(&incident, problem, now_ms);
        self.book.open(key.clone(), incident);
        Ok(())
    }

    /// Logs an incident just opened or reopened (its counters follow its
    /// timeline: [`Metrics::recorded`]).
    fn log_opened(&self, incident: &Incident, reopened: bool) {
        tracing::info!(
            id = incident.id,
            rule = %incident.rule,
            host = %incident.host,
            priority = incident.priority_label(),
            occurrences = incident.occurrences,
            "incident {}", if reopened { "reopened" } else { "opened" }
        );
    }

    /// The store already holds a live incident with this alert's fingerprint
    /// that the engine does not know (the insert hit the one-live-incident
    /// constraint): if it is this very alert's, it becomes the alert's live
    /// incident instead of a second one. True when adopted.
    pub(super) fn adopt(&mut self, key: &AlertKey, fingerprint: &str) -> bool {
        let found = match self.store.live_by_fingerprint(fingerprint) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "looking up the live incident of a fingerprint failed");
                return false;
            }
        };
        let Some(incident) = found else {
            return false;
        };
        let rule = &self.rules[key.rule];
        let origin = match rule.kind {
            RuleKind::External => Origin::Alertmanager,
            _ => Origin::Rule,
        };
        let same = *incident.rule == *rule.name
            && incident.host == key.host
            && incident.labels == key.labels
            && incident.origin == origin;
        if !same || self.book.key_of(incident.id).is_some() {
            return false;
        }
        tracing::warn!(id = incident.id, rule = %incident.rule, host = %incident.host, "the store held a live incident for this alert the engine did not know; it carries on with it instead of opening a second one");
        self.metrics
            .incidents_open
            .with_label_values(&[incident.priority_label(), &incident.rule])
            .inc();
        self.book.open(key.clone(), incident);
        true
    }

    /// The condition of `key` cleared at `restored_ms`: its live incident is
    /// restored then and resolved now, or a hand-resolved one gets its
    /// restore recorded.
    pub(super) fn clear(
        &mut self,
        key: &AlertKey,
        restored_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if self.suppressed.remove(key).is_some() {
            // Cleared inside its window: planned, nothing to open.
            return Ok(());
        }
        if let Some(incident) = self.book.live(key) {
            if self.alerts.get(key).is_some_and(|a| a.flapping) {
                // While flapping the incident stays open; it resolves when
                // flapping stops with the condition clear.
                return Ok(());
            }
            let (mut next, n) = (incident.clone(), incident.events.len());
            next.restore_at(restored_ms, now_ms);
            self.commit(|tx| tx.save_incident(&mut next, n))?;
            tracing::info!(id = next.id, rule = %next.rule, host = %next.host, "incident resolved");
            self.retire(key, next);
            return Ok(());
        }
        // Resolved by hand while still breaching: record when it cleared.
        let Some(incident) = self.book.last_resolved(key) else {
            return Ok(());
        };
        if incident.restored_at_ms.is_some() {
            return Ok(());
        }
        let (mut next, n) = (incident.clone(), incident.events.len());
        next.restore_at(restored_ms, now_ms);
        self.commit(|tx| tx.save_incident(&mut next, n))?;
        self.book.update_resolved(next);
        Ok(())
    }

    pub(super) fn flapping_changed(
        &mut self,
        key: &AlertKey,
        flapping: bool,
        percent: f64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let Some(incident) = self.book.live(key) else {
            return Ok(());
        };
        let mut next = incident.clone();
        if !next.set_flapping(flapping, percent, now_ms) {
            return Ok(());
        }
        tracing::info!(id = next.id, rule = %next.rule, host = %next.host, percent, "incident {}", if flapping { "is flapping" } else { "stopped flapping" });
        let settled_clear = !flapping
            && self
                .alerts
                .get(key)
                .is_none_or(|a| matches!(a.state, AlertState::Inactive));
        let n = incident.events.len();
        if settled_clear {
            next.restore(now_ms);
        }
        self.commit(|tx| tx.save_incident(&mut next, n))?;
        if settled_clear {
            self.retire(key, next);
        } else {
            self.book.update_live(key, next);
        }
        Ok(())
    }

    /// Resolved incidents `close_after` past resolution are closed.
    pub(super) fn close_resolved(&mut self, now_ms: i64) {
        let close_ms = duration_ms(self.policy.close_after);
        let due: Vec<i64> = self
            .book
            .all_resolved()
            .filter(|i| {
                i.resolved_at_ms
                    .is_some_and(|t| now_ms.saturating_sub(t) >= close_ms)
            })
            .map(|i| i.id)
            .collect();
        for id in due {
            let Some(incident) = self.book.resolved(id) else {
                continue;
            };
            let mut next = incident.clone();
            let n = next.events.len();
            if next.close(now_ms).is_ok() {
                if let Err(e) = self.commit(|tx| tx.save_incident(&mut next, n)) {
                    self.failed(Stage::Close, Subject::Incident(id), &e);
                    continue;
                }
                self.succeeded(Subject::Incident(id));
            }
            self.book.close(id);
        }
    }

    pub(super) fn opening(
        &self,
        key: &AlertKey,
        started_ms: i64,
        value: f64,
        d: &Detail,
    ) -> Opening {
        let rule = &self.rules[key.rule];
        let threshold = rule.threshold_value();
        let ctx = Context {
            rule: &rule.name,
            host: &key.host,
            value: Some(value),
            threshold,
            labels: &key.labels,
            host_labels: &d.host_labels,
            metric: &d.metric,
            check: &d.check,
            message: &d.message,
        };
        let external = matches!(rule.kind, RuleKind::External);
        let summary = if external {
            Some(d.message.clone()).filter(|m| !m.is_empty())
        } else {
            self.texts.render(&format!("{}.summary", rule.name), &ctx)
        }
        .unwrap_or_else(|| summary(rule, key, value));
        let description = if external {
            None
        } else {
            self.texts
                .render(&format!("{}.description", rule.name), &ctx)
        }
        .unwrap_or_else(|| d.description.clone());
        let (impact, urgency) = d.impact_urgency.unwrap_or((rule.impact, rule.urgency));
        Opening {
            origin: if external {
                Origin::Alertmanager
            } else {
                Origin::Rule
            },
            rule: rule.name.to_string(),
            host: key.host.clone(),
            labels: key.labels.clone(),
            impact,
            urgency,
            summary,
            description,
            value: Some(value),
            threshold,
            started_ms,
        }
    }

    /// A live incident was resolved (and saved): it leaves the live set and
    /// becomes what a new breach of its alert reopens.
    pub(super) fn retire(&mut self, key: &AlertKey, resolved: Incident) {
        self.book.retire(key, resolved);
    }
}
