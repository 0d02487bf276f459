//! A push, applied: limits first (nothing of a refused batch is applied),
//! then each sample and check result into state, the rules that can match
//! each evaluated, availability changes noted, and the transitions they
//! make committed before the push is acknowledged.

use super::*;
use vedette_protocol::CheckResult;

impl Engine {
    /// Applies one validated batch received at `now_ms`: exactly once per
    /// `(host, boot_id, seq)`. Transitions are persisted before returning.
    pub fn apply(&mut self, batch: &Batch, now_ms: i64) -> Result<PushAck, ApplyError> {
        self.apply_as(batch, None, now_ms)
    }

    /// [`Engine::apply`] for a batch pushed with agent token `token` (the
    /// digest [`crate::config::AgentToken::id`]), which a new host is charged
    /// to. A batch that would take the host or the collector past a limit
    /// is refused whole, before anything changes.
    pub fn apply_as(
        &mut self,
        batch: &Batch,
        token: Option<u64>,
        now_ms: i64,
    ) -> Result<PushAck, ApplyError> {
        let state = Arc::clone(&self.state);
        let mut guard = state.write().unwrap_or_else(|p| p.into_inner());
        let st = &mut *guard;
        let host_name = batch.agent.host.as_str();
        let recalled = match self.admit(st, batch, token, now_ms)? {
            Admission::Duplicate => {
                return Ok(PushAck {
                    accepted: 0,
                    ack_seq: batch.seq,
                })
            }
            Admission::Admitted(recalled) => recalled,
        };
        let host =
            Arc::make_mut(st.hosts.entry(host_name.to_string()).or_insert_with(|| {
                Arc::new(recalled.map_or_else(|| HostState::new(now_ms), |h| *h))
            }));
        let rollback = self.identify(host, &mut st.hosts_per_token, batch, token, now_ms);
        self.note_availability(host, batch, now_ms);
        let applies = self.host_rules(host_name, &batch.agent.labels);
        let mut fired = self.heartbeats_back(host_name, now_ms);
        self.evaluate_samples(
            host,
            &mut st.series_total,
            batch,
            &applies,
            now_ms,
            &mut fired,
        );
        self.evaluate_checks(host, batch, &applies, now_ms, &mut fired);
        drop(guard);
        if let Err(e) = self.act_each(fired, Stage::Push, now_ms, true) {
            // Not acknowledged, so the agent sends this batch again: it must
            // not look like a repeat then.
            rollback.undo(&self.state, host_name);
            return Err(e.into());
        }
        let accepted = batch.samples.len() + batch.checks.len();
        self.metrics.ingest_samples.inc_by(accepted as u64);
        Ok(PushAck {
            accepted,
            ack_seq: batch.seq,
        })
    }

    /// Whether the batch is taken: a repeat of one applied, refused over a
    /// limit (nothing changes), or admitted, with the host as the store
    /// remembers it when the collector had forgotten it.
    fn admit(
        &mut self,
        st: &mut State,
        batch: &Batch,
        token: Option<u64>,
        now_ms: i64,
    ) -> Result<Admission, Limited> {
        let host_name = batch.agent.host.as_str();
        // A host not in memory may be one the collector forgot: it comes
        // back as the store remembers it, once this batch is taken.
        let recalled = match st.hosts.contains_key(host_name) {
            true => None,
            false => self.recall(host_name, now_ms),
        };
        let known = st.hosts.get(host_name).map(|h| &**h).or(recalled.as_ref());
        if known.is_some_and(|h| h.is_duplicate(&batch.agent.boot_id, batch.seq)) {
            return Ok(Admission::Duplicate);
        }
        self.sweep_host(st, host_name, now_ms);
        let known = st.hosts.get(host_name).map(|h| &**h).or(recalled.as_ref());
        if let Err(l) = self.check_limits(st, known, batch, token) {
            self.refused(host_name, &l);
            return Err(l);
        }
        if !self.over_limit.is_empty() && self.over_limit.remove(host_name).is_some() {
            tracing::info!(host = host_name, "pushes within the limits again");
        }
        Ok(Admission::Admitted(recalled.map(Box::new)))
    }

    /// Takes the batch's identity into the host: its token (charged once),
    /// labels, `(boot_id, seq)`, interval, last seen. Returns how to undo
    /// the sequence if the batch's transitions cannot be committed.
    fn identify(
        &mut self,
        host: &mut HostState,
        hosts_per_token: &mut HashMap<u64, usize>,
        batch: &Batch,
        token: Option<u64>,
        now_ms: i64,
    ) -> Rollback {
        if let (Some(t), None) = (token, host.token) {
            host.token = Some(t);
            *hosts_per_token.entry(t).or_default() += 1;
        }
        if host.labels != batch.agent.labels {
            if let Some(outbox) = self.outbox.as_mut() {
                outbox.note_host_labels(&batch.agent.host, &batch.agent.labels);
            }
            host.labels = batch.agent.labels.clone();
        }
        let rollback = Rollback {
            seq: host.last_seq,
            boot: (host.boot_id != batch.agent.boot_id)
                .then(|| (host.boot_id.clone(), host.retired_boots.clone())),
        };
        host.advance(&batch.agent.boot_id, batch.seq);
        host.last_seen_ms = now_ms;
        host.interval_ms = (batch.agent.interval_s * 1000.0) as i64;
        host.dirty = true;
        rollback
    }

    /// Notes the host up and each check's availability. In the collector's
    /// clock: one clock for every subject, and an agent's skew shifts both
    /// edges of an outage alike.
    fn note_availability(&mut self, host: &mut HostState, batch: &Batch, now_ms: i64) {
        let mut changed = Vec::new();
        if let Some(at) = host.up.set(Avail::Up, now_ms) {
            changed.push((String::new(), at, Avail::Up));
        }
        // Several results of one check in a batch are applied in order, but
        // they all land on one instant: only the state the batch leaves there
        // is written, one row per check whose state changed, not one per result.
        let mut touched: HashMap<&str, (Avail, Option<i64>)> = HashMap::new();
        for c in &batch.checks {
            let tl = match host.check_up.get_mut(&c.name) {
                Some(tl) => tl,
                None => host.check_up.entry(c.name.clone()).or_default(),
            };
            let t = touched
                .entry(c.name.as_str())
                .or_insert((tl.current(), None));
            if let Some(at) = tl.set(check_availability(c.status), now_ms) {
                t.1 = Some(at);
            }
        }
        for (name, (before, at)) in touched {
            let now = host.check_up.get(name).map_or(before, Timeline::current);
            if let (Some(at), true) = (at, now != before) {
                changed.push((name.to_string(), at, now));
            }
        }
        let host_name = &batch.agent.host;
        self.availability
            .extend(
                changed
                    .into_iter()
                    .map(|(check, at_ms, state)| AvailabilityRow {
                        host: host_name.clone(),
                        check,
                        at_ms,
                        state,
                    }),
            );
    }

    /// A push from a host whose heartbeat rule is firing clears it.
    fn heartbeats_back(&mut self, host_name: &str, now_ms: i64) -> Vec<Fired> {
        let mut fired = Vec::new();
        for &r in &self.index.absent_rules {
            let key = AlertKey {
                rule: r,
                host: host_name.to_string(),
                labels: Labels::new(),
            };
            if self.alerts.get(&key).map(|a| a.state) == Some(AlertState::Firing) {
                let before = self.alerts.remove(&key);
                fired.push(Fired {
                    key,
                    before,
                    outcome: Outcome {
                        verdict: Verdict::Clear {
                            restored_ms: now_ms,
                        },
                        flapping: None,
                    },
                    percent: 0.0,
                    detail: Detail::default(),
                });
            }
        }
        fired
    }

    /// Stores each sample's point and evaluates the threshold rules that
    /// look at its metric and apply to the host.
    fn evaluate_samples(
        &mut self,
        host: &mut HostState,
        series_total: &mut usize,
        batch: &Batch,
        applies: &[bool],
        now_ms: i64,
        fired: &mut Vec<Fired>,
    ) {
        let host_name = batch.agent.host.as_str();
        for s in &batch.samples {
            let point = Point {
                ts_ms: s.ts_ms,
                value: s.value,
            };
            let previous = match host.set_point(&s.name, &s.labels, point) {
                Stored::Kept => continue,
                Stored::Created => {
                    *series_total += 1;
                    None
                }
                Stored::Updated(v) => Some(v),
            };
            let Some(rule_ids) = self.index.by_metric.get(&s.name) else {
                continue;
            };
            for &r in rule_ids {
                let rule = &self.rules[r];
                let RuleKind::Threshold(t) = &rule.kind else {
                    continue;
                };
                if !applies[r] || !rule.selector.matches_labels(&s.labels) {
                    continue;
                }
                let value = t.compare.of(s.value, previous);
                let cond = Condition {
                    breaching: t.breaches(value),
                    cleared: t.clears(value),
                };
                let key = AlertKey {
                    rule: r,
                    host: host_name.to_string(),
                    labels: s.labels.clone(),
                };
                let seen = Seen {
                    key,
                    cond,
                    timing: rule.timing(),
                    value,
                    ts_ms: s.ts_ms,
                };
                let describe = || {
                    let labels = fmt_labels(&s.labels);
                    let what = t.compare.describe(&s.name);
                    let description = format!("{what}{labels} on {host_name} is {value}");
                    detail(batch, description, &s.name, "", "")
                };
                see(
                    &mut self.alerts,
                    self.policy.flapping,
                    seen,
                    now_ms,
                    describe,
                    fired,
                );
            }
        }
    }

    /// Evaluates the check rules that match each result and apply to the
    /// host, and keeps each check's newest result.
    fn evaluate_checks(
        &mut self,
        host: &mut HostState,
        batch: &Batch,
        applies: &[bool],
        now_ms: i64,
        fired: &mut Vec<Fired>,
    ) {
        for c in &batch.checks {
            self.evaluate_check(c, batch, applies, now_ms, fired);
            let newer = host
                .checks
                .get(&c.name)
                .is_none_or(|old| old.ts_ms <= c.ts_ms);
            if newer {
                host.checks.insert(c.name.clone(), c.clone());
            }
        }
    }

    fn evaluate_check(
        &mut self,
        c: &CheckResult,
        batch: &Batch,
        applies: &[bool],
        now_ms: i64,
        fired: &mut Vec<Fired>,
    ) {
        let host_name = batch.agent.host.as_str();
        let exact = self.index.check_exact.get(&c.name).map(Vec::as_slice);
        let candidates = exact
            .unwrap_or_default()
            .iter()
            .chain(&self.index.check_globs);
        let mut check_labels: Option<Labels> = None;
        for &r in candidates {
            let rule = &self.rules[r];
            let RuleKind::Check(check) = &rule.kind else {
                continue;
            };
            if !applies[r] || (check.exact.is_none() && !check.matcher.is_match(&c.name)) {
                continue;
            }
            if !rule.selector.labels.is_empty() {
                let labels = check_labels.get_or_insert_with(|| {
                    let mut l = c.labels.clone();
                    l.insert("check".into(), c.name.clone());
                    l
                });
                if !rule.selector.matches_labels(labels) {
                    continue;
                }
            }
            let breaching = check.breaches(c.status);
            let cond = Condition {
                breaching,
                cleared: !breaching,
            };
            let key = AlertKey {
                rule: r,
                host: host_name.to_string(),
                labels: Labels::from([("check".to_string(), c.name.clone())]),
            };
            let seen = Seen {
                key,
                cond,
                timing: rule.timing(),
                value: status_value(c.status),
                ts_ms: c.ts_ms,
            };
            let describe = || {
                let status = c.status.as_str();
                let description =
                    format!("check {} on {host_name} is {status}: {}", c.name, c.message);
                detail(batch, description, "", &c.name, &c.message)
            };
            see(
                &mut self.alerts,
                self.policy.flapping,
                seen,
                now_ms,
                describe,
                fired,
            );
        }
    }
}

/// What [`Engine::admit`] decided.
enum Admission {
    /// Already applied: acknowledged again, nothing changes.
    Duplicate,
    /// Taken, with the host as the store remembers it if it was forgotten.
    Admitted(Option<Box<HostState>>),
}

/// How to put a host's sequence back when its batch was not committed, so
/// the agent's retry is not taken for a repeat.
struct Rollback {
    seq: u64,
    /// The boot id and retired boots before a new boot id, if it changed.
    boot: Option<(String, Vec<u128>)>,
}

impl Rollback {
    fn undo(self, state: &RwLock<State>, host_name: &str) {
        let mut st = state.write().unwrap_or_else(|p| p.into_inner());
        if let Some(host) = st.hosts.get_mut(host_name) {
            let host = Arc::make_mut(host);
            host.last_seq = self.seq;
            if let Some((boot_id, retired)) = self.boot {
                host.boot_id = boot_id;
                host.retired_boots = retired;
            }
        }
    }
}

/// An alert's condition, seen on a value at `ts_ms`.
struct Seen {
    key: AlertKey,
    cond: Condition,
    timing: rules::Timing,
    value: f64,
    ts_ms: i64,
}

/// Feeds `seen` to its alert; a verdict (or a change of flapping) is
/// [`Fired`] with the detail `describe` makes, built only then.
fn see(
    alerts: &mut HashMap<AlertKey, Alert>,
    flap: FlapThresholds,
    seen: Seen,
    now_ms: i64,
    describe: impl FnOnce() -> Detail,
    fired: &mut Vec<Fired>,
) {
    let Seen {
        key,
        cond,
        timing,
        value,
        ts_ms,
    } = seen;
    let (outcome, percent, before) =
        observe(alerts, &key, cond, timing, flap, value, ts_ms, now_ms);
    if outcome.verdict != Verdict::Nothing || outcome.flapping.is_some() {
        fired.push(Fired {
            detail: describe(),
            key,
            before,
            outcome,
            percent,
        });
    }
}

/// What an incident's texts are made from, for a verdict on this batch.
fn detail(batch: &Batch, description: String, metric: &str, check: &str, message: &str) -> Detail {
    Detail {
        host_labels: batch.agent.labels.clone(),
        metric: metric.to_string(),
        check: check.to_string(),
        message: message.to_string(),
        description,
        impact_urgency: None,
    }
}
