//! The engine: the collector's single writer. It applies validated batches to
//! [`State`], evaluates the rules that can match each sample, turns verdicts
//! into incident transitions, and persists each transition before the push
//! that caused it is acknowledged.
//!
//! [`Engine`] is synchronous and takes the time as an argument, so tests drive
//! it exactly. [`spawn`] runs it on a dedicated thread (SQLite is blocking)
//! that reads commands from a bounded queue and ticks every second for
//! time-only transitions (`for` elapsed, heartbeats missing); [`EngineHandle`]
//! is the async side. A full queue is reported as busy so ingest can answer
//! 429 instead of buffering without bound.
//!
//! Invariants: at most one live incident per alert (rule + host + labels);
//! an alert that is Firing after a restart is rebuilt from the live incidents
//! in the store; hosts known from the store get one full heartbeat period
//! after start before `absent_for` can fire, so the collector's own outage
//! does not open a storm of `host_down` incidents.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use vedette_protocol::{Batch, PushAck};

use crate::incidents::{Incident, InvalidTransition, Labels, Opening, Resolution};
use crate::metrics::Metrics;
use crate::rules::{self, AlertState, Condition, Rule, RuleKind, Verdict};
use crate::state::{HostState, Point, State};
use crate::store::{Store, StoreError};

/// One alert: a rule applied to one host's series (or the host itself).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlertKey {
    /// Index into the engine's rules.
    pub rule: usize,
    pub host: String,
    /// The incident's distinguishing labels (series labels, or `check`).
    pub labels: Labels,
}

/// Why an operator action failed.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("incident {0} not found")]
    NotFound(i64),
    #[error(transparent)]
    Conflict(#[from] InvalidTransition),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ActionError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => ActionError::NotFound(id),
            e => ActionError::Store(e),
        }
    }
}

/// Context for an incident's summary, captured when the verdict is made.
#[derive(Debug, Clone)]
struct Fired {
    key: AlertKey,
    verdict: Verdict,
    detail: String,
}

/// Rules, alerts and live incidents, over a shared [`State`] and a [`Store`].
pub struct Engine {
    rules: Vec<Rule>,
    by_metric: HashMap<String, Vec<usize>>,
    check_rules: Vec<usize>,
    absent_rules: Vec<usize>,
    alerts: HashMap<AlertKey, AlertState>,
    live: HashMap<AlertKey, Incident>,
    live_ids: HashMap<i64, AlertKey>,
    /// Manually resolved while still breaching: restored when it clears.
    unrestored: HashMap<AlertKey, Incident>,
    state: Arc<RwLock<State>>,
    store: Store,
    metrics: Arc<Metrics>,
    /// Heartbeats count from no earlier than this (collector start).
    grace_from_ms: i64,
}

impl Engine {
    /// Loads hosts and live incidents from `store` and rebuilds alert state.
    pub fn new(
        rules: Vec<Rule>,
        store: Store,
        state: Arc<RwLock<State>>,
        metrics: Arc<Metrics>,
        now_ms: i64,
    ) -> Result<Engine, StoreError> {
        let mut by_metric: HashMap<String, Vec<usize>> = HashMap::new();
        let (mut check_rules, mut absent_rules) = (Vec::new(), Vec::new());
        for (i, r) in rules.iter().enumerate() {
            match &r.kind {
                RuleKind::Threshold(t) => by_metric.entry(t.metric.clone()).or_default().push(i),
                RuleKind::Check(_) => check_rules.push(i),
                RuleKind::Absent { .. } => absent_rules.push(i),
            }
        }
        {
            let mut st = state.write().unwrap_or_else(|p| p.into_inner());
            *st = State::from_records(store.hosts()?);
        }
        for c in store.incident_counts()? {
            let p = crate::incidents::priority_label(c.priority);
            match &c.resolution {
                None => metrics
                    .incidents_opened
                    .with_label_values(&[p, &c.rule])
                    .inc_by(c.count),
                Some(res) => metrics
                    .incidents_resolved
                    .with_label_values(&[p, &c.rule, res])
                    .inc_by(c.count),
            }
        }
        let mut engine = Engine {
            rules,
            by_metric,
            check_rules,
            absent_rules,
            alerts: HashMap::new(),
            live: HashMap::new(),
            live_ids: HashMap::new(),
            unrestored: HashMap::new(),
            state,
            store,
            metrics,
            grace_from_ms: now_ms,
        };
        for mut incident in engine.store.live_incidents()? {
            let Some(rule) = engine.rules.iter().position(|r| *r.name == incident.rule) else {
                // Its rule was removed from the configuration: nothing can
                // restore it any more, so it is resolved with a note saying why.
                let n = incident.events.len();
                let note = format!("rule '{}' is no longer configured", incident.rule);
                // Live incidents can always be resolved.
                if incident
                    .resolve(crate::incidents::SYSTEM_ACTOR, Some(note), now_ms)
                    .is_ok()
                {
                    engine.store.save_incident(&mut incident, n)?;
                    engine.count_resolved(&incident);
                }
                continue;
            };
            let key = AlertKey {
                rule,
                host: incident.host.clone(),
                labels: incident.labels.clone(),
            };
            engine.alerts.insert(key.clone(), AlertState::Firing);
            engine
                .metrics
                .incidents_open
                .with_label_values(&[incident.priority_label(), &incident.rule])
                .inc();
            engine.live_ids.insert(incident.id, key.clone());
            engine.live.insert(key, incident);
        }
        Ok(engine)
    }

    /// The configured rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Applies one validated batch received at `now_ms`: exactly once per
    /// `(host, boot_id, seq)`. Transitions are persisted before returning.
    pub fn apply(&mut self, batch: &Batch, now_ms: i64) -> Result<PushAck, StoreError> {
        let state = Arc::clone(&self.state);
        let mut st = state.write().unwrap_or_else(|p| p.into_inner());
        let host_name = batch.agent.host.as_str();
        let host = st
            .hosts
            .entry(host_name.to_string())
            .or_insert_with(|| HostState {
                labels: Labels::new(),
                boot_id: String::new(),
                last_seq: 0,
                last_seen_ms: now_ms,
                interval_ms: 0,
                series: HashMap::new(),
                checks: Default::default(),
                dirty: true,
            });
        if host.is_duplicate(&batch.agent.boot_id, batch.seq) {
            return Ok(PushAck {
                accepted: 0,
                ack_seq: batch.seq,
            });
        }
        host.labels = batch.agent.labels.clone();
        host.boot_id = batch.agent.boot_id.clone();
        host.last_seq = batch.seq;
        host.last_seen_ms = now_ms;
        host.interval_ms = (batch.agent.interval_s * 1000.0) as i64;
        host.dirty = true;

        let mut fired = Vec::new();
        for &r in &self.absent_rules {
            let key = AlertKey {
                rule: r,
                host: host_name.to_string(),
                labels: Labels::new(),
            };
            if self.alerts.remove(&key) == Some(AlertState::Firing) {
                fired.push(Fired {
                    key,
                    verdict: Verdict::Clear,
                    detail: String::new(),
                });
            }
        }
        for s in &batch.samples {
            let point = Point {
                ts_ms: s.ts_ms,
                value: s.value,
            };
            if !host.set_point(&s.name, &s.labels, point) {
                continue;
            }
            let Some(rule_ids) = self.by_metric.get(&s.name) else {
                continue;
            };
            for &r in rule_ids {
                let RuleKind::Threshold(t) = &self.rules[r].kind else {
                    continue;
                };
                let cond = Condition {
                    breaching: t.breaches(s.value),
                    cleared: t.clears(s.value),
                };
                let key = AlertKey {
                    rule: r,
                    host: host_name.to_string(),
                    labels: s.labels.clone(),
                };
                let verdict = observe(
                    &mut self.alerts,
                    &key,
                    cond,
                    t.for_,
                    s.value,
                    s.ts_ms,
                    now_ms,
                );
                if verdict != Verdict::Nothing {
                    fired.push(Fired {
                        detail: format!(
                            "{}{} on {host_name} is {}",
                            s.name,
                            fmt_labels(&s.labels),
                            s.value
                        ),
                        key,
                        verdict,
                    });
                }
            }
        }
        for c in &batch.checks {
            for &r in &self.check_rules {
                let RuleKind::Check(rule) = &self.rules[r].kind else {
                    continue;
                };
                if !rule.matcher.is_match(&c.name) {
                    continue;
                }
                let breaching = rule.breaches(c.status);
                let cond = Condition {
                    breaching,
                    cleared: !breaching,
                };
                let key = AlertKey {
                    rule: r,
                    host: host_name.to_string(),
                    labels: Labels::from([("check".to_string(), c.name.clone())]),
                };
                let value = match c.status {
                    vedette_protocol::Status::Ok => 0.0,
                    vedette_protocol::Status::Warning => 1.0,
                    vedette_protocol::Status::Critical => 2.0,
                    vedette_protocol::Status::Unknown => 3.0,
                };
                let verdict = observe(
                    &mut self.alerts,
                    &key,
                    cond,
                    rule.for_,
                    value,
                    c.ts_ms,
                    now_ms,
                );
                if verdict != Verdict::Nothing {
                    fired.push(Fired {
                        detail: format!(
                            "check {} on {host_name} is {}: {}",
                            c.name,
                            c.status.as_str(),
                            c.message
                        ),
                        key,
                        verdict,
                    });
                }
            }
            let newer = host
                .checks
                .get(&c.name)
                .is_none_or(|old| old.ts_ms <= c.ts_ms);
            if newer {
                host.checks.insert(c.name.clone(), c.clone());
            }
        }
        drop(st);
        let accepted = batch.samples.len() + batch.checks.len();
        self.metrics.ingest_samples.inc_by(accepted as u64);
        for f in fired {
            self.act(f, now_ms)?;
        }
        Ok(PushAck {
            accepted,
            ack_seq: batch.seq,
        })
    }

    /// Time-only transitions: pending alerts whose `for` has elapsed, hosts
    /// whose heartbeat is missing. Then persists changed hosts.
    pub fn tick(&mut self, now_ms: i64) -> Result<(), StoreError> {
        let state = Arc::clone(&self.state);
        let mut fired = Vec::new();
        {
            let st = state.read().unwrap_or_else(|p| p.into_inner());
            for (key, alert) in self.alerts.iter_mut() {
                if !matches!(alert, AlertState::Pending { .. }) {
                    continue;
                }
                // A host that stopped reporting says nothing about its series.
                let Some(h) = st.hosts.get(&key.host) else {
                    continue;
                };
                if now_ms.saturating_sub(h.last_seen_ms) > 3 * h.interval_ms.max(1000) {
                    continue;
                }
                let verdict = rules::elapse(self.rules[key.rule].for_(), alert, now_ms);
                if verdict != Verdict::Nothing {
                    fired.push(Fired {
                        key: key.clone(),
                        verdict,
                        detail: String::new(),
                    });
                }
            }
            for &r in &self.absent_rules {
                let RuleKind::Absent { after } = self.rules[r].kind else {
                    continue;
                };
                for (name, h) in &st.hosts {
                    let key = AlertKey {
                        rule: r,
                        host: name.clone(),
                        labels: Labels::new(),
                    };
                    let alert = self
                        .alerts
                        .entry(key.clone())
                        .or_insert(AlertState::Inactive);
                    let last_seen = h.last_seen_ms.max(self.grace_from_ms);
                    let verdict = rules::absent(after, alert, last_seen, h.interval_ms, now_ms);
                    if *alert == AlertState::Inactive {
                        self.alerts.remove(&key);
                    }
                    if verdict != Verdict::Nothing {
                        fired.push(Fired {
                            detail: format!(
                                "{name} has sent nothing for {}",
                                humantime::format_duration(Duration::from_secs(
                                    (now_ms.saturating_sub(h.last_seen_ms) / 1000).max(0) as u64
                                ))
                            ),
                            key,
                            verdict,
                        });
                    }
                }
            }
        }
        for f in fired {
            self.act(f, now_ms)?;
        }
        self.flush_hosts()
    }

    /// Persists hosts changed since the last flush.
    pub fn flush_hosts(&mut self) -> Result<(), StoreError> {
        let state = Arc::clone(&self.state);
        let mut st = state.write().unwrap_or_else(|p| p.into_inner());
        let dirty: Vec<_> = st
            .hosts
            .iter()
            .filter(|(_, h)| h.dirty)
            .map(|(n, h)| h.record(n))
            .collect();
        if dirty.is_empty() {
            return Ok(());
        }
        self.store.save_hosts(&dirty)?;
        for h in st.hosts.values_mut() {
            h.dirty = false;
        }
        Ok(())
    }

    /// Acknowledges a live incident.
    pub fn acknowledge(
        &mut self,
        id: i64,
        actor: &str,
        note: Option<String>,
        now_ms: i64,
    ) -> Result<Incident, ActionError> {
        let Some(key) = self.live_ids.get(&id).cloned() else {
            return Err(self.not_live(id, |i| i.acknowledge(actor, None, now_ms)));
        };
        let incident = self.live.get_mut(&key).ok_or(ActionError::NotFound(id))?;
        let mut next = incident.clone();
        next.acknowledge(actor, note, now_ms)?;
        self.store.save_incident(&mut next, incident.events.len())?;
        *incident = next.clone();
        Ok(next)
    }

    /// Resolves a live incident by hand. The alert stays firing, so the same
    /// breach does not open a new incident; its restore is recorded when it clears.
    pub fn resolve(
        &mut self,
        id: i64,
        actor: &str,
        note: Option<String>,
        now_ms: i64,
    ) -> Result<Incident, ActionError> {
        let Some(key) = self.live_ids.get(&id).cloned() else {
            return Err(self.not_live(id, |i| i.resolve(actor, None, now_ms)));
        };
        let incident = self.live.get(&key).ok_or(ActionError::NotFound(id))?;
        let mut next = incident.clone();
        next.resolve(actor, note, now_ms)?;
        self.store.save_incident(&mut next, incident.events.len())?;
        self.live.remove(&key);
        self.live_ids.remove(&id);
        self.count_closed_live(&next);
        self.unrestored.insert(key, next.clone());
        Ok(next)
    }

    /// The error for an action on an incident the engine does not hold live:
    /// not found, or the transition's refusal for the state it is in.
    fn not_live(
        &self,
        id: i64,
        transition: impl FnOnce(&mut Incident) -> Result<(), InvalidTransition>,
    ) -> ActionError {
        let mut incident = match self.store.incident(id) {
            Ok(i) => i,
            Err(e) => return e.into(),
        };
        match transition(&mut incident) {
            Err(refused) => refused.into(),
            // Live in the store but not in the engine would be a bug.
            Ok(()) => {
                tracing::error!(id, "live incident missing from the engine's live set");
                ActionError::Store(StoreError::Corrupt(format!(
                    "incident {id} is live in the store but unknown to the engine"
                )))
            }
        }
    }

    fn act(&mut self, f: Fired, now_ms: i64) -> Result<(), StoreError> {
        match f.verdict {
            Verdict::Nothing => Ok(()),
            Verdict::Fire { started_ms, value } => {
                if self.live.contains_key(&f.key) {
                    return Ok(());
                }
                let rule = &self.rules[f.key.rule];
                let mut incident = Incident::open(
                    Opening {
                        rule: rule.name.to_string(),
                        host: f.key.host.clone(),
                        labels: f.key.labels.clone(),
                        impact: rule.impact,
                        urgency: rule.urgency,
                        summary: summary(rule, &f.key, value),
                        description: f.detail,
                        value: Some(value),
                        threshold: rule.threshold_value(),
                        started_ms,
                    },
                    now_ms,
                );
                if let Err(e) = self.store.save_incident(&mut incident, 0) {
                    // Not persisted, so not opened: let the next evaluation retry.
                    self.alerts.remove(&f.key);
                    return Err(e);
                }
                tracing::info!(
                    id = incident.id,
                    rule = %incident.rule,
                    host = %incident.host,
                    priority = incident.priority_label(),
                    "incident opened"
                );
                self.metrics
                    .incidents_opened
                    .with_label_values(&[incident.priority_label(), &incident.rule])
                    .inc();
                self.metrics
                    .incidents_open
                    .with_label_values(&[incident.priority_label(), &incident.rule])
                    .inc();
                self.unrestored.remove(&f.key);
                self.live_ids.insert(incident.id, f.key.clone());
                self.live.insert(f.key, incident);
                Ok(())
            }
            Verdict::Clear => {
                if let Some(mut incident) = self.unrestored.remove(&f.key) {
                    let n = incident.events.len();
                    incident.restore(now_ms);
                    return self.store.save_incident(&mut incident, n);
                }
                let Some(incident) = self.live.get(&f.key) else {
                    return Ok(());
                };
                let mut next = incident.clone();
                next.restore(now_ms);
                self.store.save_incident(&mut next, incident.events.len())?;
                tracing::info!(id = next.id, rule = %next.rule, host = %next.host, "incident resolved");
                self.live.remove(&f.key);
                self.live_ids.remove(&next.id);
                self.count_closed_live(&next);
                Ok(())
            }
        }
    }

    /// A live incident stopped being live.
    fn count_closed_live(&self, i: &Incident) {
        self.metrics
            .incidents_open
            .with_label_values(&[i.priority_label(), &i.rule])
            .dec();
        self.count_resolved(i);
    }

    fn count_resolved(&self, i: &Incident) {
        let res = i.resolution.unwrap_or(Resolution::Auto).as_str();
        self.metrics
            .incidents_resolved
            .with_label_values(&[i.priority_label(), &i.rule, res])
            .inc();
    }
}

fn observe(
    alerts: &mut HashMap<AlertKey, AlertState>,
    key: &AlertKey,
    cond: Condition,
    for_: Duration,
    value: f64,
    ts_ms: i64,
    now_ms: i64,
) -> Verdict {
    match alerts.get_mut(key) {
        Some(alert) => {
            let v = rules::observe(cond, for_, alert, value, ts_ms, now_ms);
            if *alert == AlertState::Inactive {
                alerts.remove(key);
            }
            v
        }
        // The common case, a healthy series: no entry, nothing allocated.
        None if !cond.breaching => Verdict::Nothing,
        None => {
            let mut alert = AlertState::Inactive;
            let v = rules::observe(cond, for_, &mut alert, value, ts_ms, now_ms);
            alerts.insert(key.clone(), alert);
            v
        }
    }
}

fn summary(rule: &Rule, key: &AlertKey, value: f64) -> String {
    match &rule.kind {
        RuleKind::Threshold(t) => format!(
            "{} on {}: {}{} is {} ({} {})",
            rule.name,
            key.host,
            t.metric,
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
    }
}

fn fmt_value(v: f64) -> String {
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn fmt_labels(labels: &Labels) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{{{}}}", inner.join(","))
}

/// Milliseconds since the Unix epoch on the system clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

enum Command {
    Push {
        batch: Box<Batch>,
        reply: oneshot::Sender<Result<PushAck, StoreError>>,
    },
    Acknowledge {
        id: i64,
        actor: String,
        note: Option<String>,
        reply: oneshot::Sender<Result<Incident, ActionError>>,
    },
    Resolve {
        id: i64,
        actor: String,
        note: Option<String>,
        reply: oneshot::Sender<Result<Incident, ActionError>>,
    },
}

/// Why a command could not be handed to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The queue is full: slow down.
    #[error("the collector is busy; retry shortly")]
    Busy,
    /// The engine has stopped (shutting down).
    #[error("the collector is shutting down")]
    Stopped,
}

/// The async face of the engine thread. Cloneable; dropping every clone
/// (or calling [`EngineHandle::shutdown`]) stops the thread after it drains.
#[derive(Clone)]
pub struct EngineHandle {
    tx: SyncSender<Command>,
    stopped: Arc<AtomicBool>,
}

/// How many commands may wait for the engine.
pub const QUEUE_CAPACITY: usize = 1024;

/// Runs `engine` on its own thread. The thread flushes hosts and exits once
/// every handle is dropped. `on_tick` runs after every tick (the systemd
/// watchdog ping: a wedged engine stops pinging).
pub fn spawn(
    mut engine: Engine,
    on_tick: Box<dyn Fn() + Send>,
) -> (EngineHandle, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::sync_channel::<Command>(QUEUE_CAPACITY);
    let stopped = Arc::new(AtomicBool::new(false));
    let stopped_flag = Arc::clone(&stopped);
    let thread = std::thread::Builder::new()
        .name("vedette-engine".into())
        .spawn(move || {
            let tick = Duration::from_secs(1);
            let mut next_tick = Instant::now() + tick;
            loop {
                let wait = next_tick.saturating_duration_since(Instant::now());
                match rx.recv_timeout(wait) {
                    Ok(cmd) => engine.handle(cmd),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                if Instant::now() >= next_tick {
                    if let Err(e) = engine.tick(now_ms()) {
                        tracing::warn!(error = %e, "engine tick failed");
                    }
                    on_tick();
                    next_tick = Instant::now() + tick;
                }
            }
            if let Err(e) = engine.flush_hosts() {
                tracing::warn!(error = %e, "persisting hosts at shutdown failed");
            }
            stopped_flag.store(true, Ordering::Release);
        })
        .expect("spawning the engine thread");
    (EngineHandle { tx, stopped }, thread)
}

impl Engine {
    fn handle(&mut self, cmd: Command) {
        let now = now_ms();
        match cmd {
            Command::Push { batch, reply } => {
                let _ = reply.send(self.apply(&batch, now));
            }
            Command::Acknowledge {
                id,
                actor,
                note,
                reply,
            } => {
                let _ = reply.send(self.acknowledge(id, &actor, note, now));
            }
            Command::Resolve {
                id,
                actor,
                note,
                reply,
            } => {
                let _ = reply.send(self.resolve(id, &actor, note, now));
            }
        }
    }
}

impl EngineHandle {
    /// True once the engine thread has exited.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    fn submit<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<oneshot::Receiver<T>, SubmitError> {
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(make(reply)) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(SubmitError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(SubmitError::Stopped),
        }
    }

    /// Applies a validated batch; resolves once its transitions are persisted.
    pub async fn push(&self, batch: Batch) -> Result<Result<PushAck, StoreError>, SubmitError> {
        let rx = self.submit(|reply| Command::Push {
            batch: Box::new(batch),
            reply,
        })?;
        rx.await.map_err(|_| SubmitError::Stopped)
    }

    /// Acknowledges incident `id`.
    pub async fn acknowledge(
        &self,
        id: i64,
        actor: String,
        note: Option<String>,
    ) -> Result<Result<Incident, ActionError>, SubmitError> {
        let rx = self.submit(|reply| Command::Acknowledge {
            id,
            actor,
            note,
            reply,
        })?;
        rx.await.map_err(|_| SubmitError::Stopped)
    }

    /// Resolves incident `id` by hand.
    pub async fn resolve(
        &self,
        id: i64,
        actor: String,
        note: Option<String>,
    ) -> Result<Result<Incident, ActionError>, SubmitError> {
        let rx = self.submit(|reply| Command::Resolve {
            id,
            actor,
            note,
            reply,
        })?;
        rx.await.map_err(|_| SubmitError::Stopped)
    }
}

#[cfg(test)]
mod tests;
