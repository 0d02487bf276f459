//! The engine: the collector's single writer. It applies validated batches to
//! [`State`], evaluates the rules that can match each sample, turns verdicts
//! into incident transitions, and commits each transition (with the outbox
//! rows it makes) before the push that caused it is acknowledged.
//!
//! [`Engine`] is synchronous and takes the time as an argument, so tests drive
//! it exactly; [`spawn`] runs it on its own thread (`runner`). One concept
//! per file, each an `impl Engine` block over the state declared here:
//!
//! - `apply`: a push, applied; `limits`: what a push may make it hold;
//!   `index`: which rules look at which samples.
//! - `transitions`: verdicts → incidents (open, reopen, adopt, restore,
//!   flap, close); `book`: the live-incident book and its invariants.
//! - `problems`: recurrence → problems; `planned`: maintenance and
//!   changes, suppressions; `liveness`: heartbeats, availability, forgetting.
//! - `external`: Alertmanager's alerts; `operator`: what people do.
//! - `faults`: each subject's failure is its own (rolled back, counted,
//!   logged once, retried).
//!
//! Invariants: at most one live incident per alert (rule + host + labels);
//! a breach within `reopen_within` of resolution reopens the same incident;
//! an alert that is Firing after a restart is rebuilt from the live incidents
//! in the store; hosts known from the store get one full heartbeat period
//! after start before `absent_for` can fire, so the collector's own outage
//! does not open a storm of `host_down` incidents. Every transition and what
//! it implies (the problem it opens, the change it fails, the notifications)
//! commit in one transaction (`Engine::commit`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use vedette_protocol::clock::{duration_ms, now_ms};
use vedette_protocol::{Batch, PushAck, Status};

use crate::availability::{self, Avail, Timeline};
use crate::incidents::{
    Incident, InvalidTransition, Labels, Opening, Origin, Problem, ProblemState, SYSTEM_ACTOR,
};
use crate::metrics::{Metrics, Stage};
use crate::notify::{self, Outbox, Router, Wake};
use crate::rules::{
    self, Alert, AlertState, Condition, FlapThresholds, Outcome, Rule, RuleKind, Verdict,
};
use crate::state::{HostState, Limit, Limited, Point, State, StateLimits, Stored};
use crate::store::{AvailabilityRow, Store, StoreError, Suppression, Tx};
use crate::texts::{Context, Texts};
use crate::windows::{Change, ChangeOutcome, Maintenance, Phase, PlannedSpan, Scope, ScopeSpec};

mod apply;
mod book;
mod external;
mod faults;
mod index;
mod limits;
mod liveness;
mod operator;
mod planned;
mod problems;
mod runner;
mod transitions;

pub use self::external::{external_priority, ExternalAlert, ExternalOutcome, EXTERNAL_SOURCE};
pub use self::planned::NewChange;
pub use self::runner::{spawn, EngineHandle, SubmitError, QUEUE_CAPACITY};

use self::book::Book;
use self::external::external_identity;
use self::faults::{Subject, FAULTS_CAP};
use self::index::{rekey, HostRules, RuleIndex};
use self::liveness::{check_availability, restore_availability, status_value};
use self::planned::{engine_changes, Suppressed};
use self::transitions::{fmt_labels, observe};

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
    #[error("problem {0} not found")]
    ProblemNotFound(i64),
    #[error(transparent)]
    Conflict(#[from] InvalidTransition),
    #[error("{0}")]
    ProblemConflict(String),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ActionError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => ActionError::NotFound(id),
            StoreError::ProblemNotFound(id) => ActionError::ProblemNotFound(id),
            e => ActionError::Store(e),
        }
    }
}

/// Why a push or a webhook call was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The store failed as a whole (disk full, I/O): retry later.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// It would take what the collector holds past a limit; nothing of it
    /// was applied.
    #[error(transparent)]
    Limited(#[from] Limited),
}

/// What the summary and description of an incident are made from, captured
/// when the verdict is made (only for verdicts, so healthy samples allocate nothing).
#[derive(Debug, Clone, Default)]
struct Detail {
    host_labels: Labels,
    metric: String,
    check: String,
    message: String,
    /// The built-in description.
    description: String,
    /// Impact and urgency when the alert says (external alerts), else the rule's.
    impact_urgency: Option<(u8, u8)>,
}

/// One evaluation that needs the incident engine.
#[derive(Debug, Clone)]
struct Fired {
    key: AlertKey,
    /// The alert as it was before this evaluation (None: no entry), put
    /// back if the transition cannot be persisted, so the retried batch or
    /// the next tick makes it again.
    before: Option<Alert>,
    outcome: Outcome,
    /// Percent state change, for the flapping note.
    percent: f64,
    detail: Detail,
}

/// How incidents live and recur (`incidents:` in the configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentPolicy {
    /// A breach this soon after resolution reopens the same incident.
    pub reopen_within: Duration,
    /// A resolved incident is closed this long after resolution.
    pub close_after: Duration,
    /// The `count`-th incident of one fingerprint `within` opens a problem;
    /// None: problems are not opened automatically.
    pub problem_after: Option<(u32, Duration)>,
    pub flapping: FlapThresholds,
}

impl Default for IncidentPolicy {
    fn default() -> Self {
        IncidentPolicy {
            reopen_within: Duration::from_secs(3600),
            close_after: Duration::from_secs(24 * 3600),
            problem_after: Some((3, Duration::from_secs(24 * 3600))),
            flapping: FlapThresholds::default(),
        }
    }
}

/// Rules, alerts, live incidents, problems and windows, over a shared
/// [`State`] and a [`Store`].
pub struct Engine {
    rules: Vec<Rule>,
    texts: Arc<Texts>,
    policy: IncidentPolicy,
    maintenance: Vec<Maintenance>,
    /// Which rules look at which samples (rebuilt with `rules`).
    index: RuleIndex,
    host_rules: HashMap<String, HostRules>,
    alerts: HashMap<AlertKey, Alert>,
    /// Live and resolved incidents by alert and id.
    book: Book,
    /// Detections and reopenings per fingerprint within the problem window.
    recurrences: HashMap<String, VecDeque<(i64, i64)>>,
    /// Open problems by fingerprint.
    problems: HashMap<String, Problem>,
    /// Changes whose outcome is not decided yet.
    changes: Vec<Change>,
    suppressed: HashMap<AlertKey, Suppressed>,
    state: Arc<RwLock<State>>,
    store: Store,
    /// Routes each transition to the receivers (None: no receivers).
    outbox: Option<Outbox>,
    metrics: Arc<Metrics>,
    /// Heartbeats count from no earlier than this (collector start).
    grace_from_ms: i64,
    /// How long a host may be silent and still be up (`None`: 3 intervals).
    heartbeat: Option<Duration>,
    /// This collector run (its alive mark is refreshed every tick).
    run: i64,
    /// Availability changes not yet persisted (flushed every tick).
    availability: Vec<AvailabilityRow>,
    /// When timelines were last pruned to the horizon.
    pruned_at_ms: i64,
    /// Subjects whose last write failed, with how often in a row.
    faults: HashMap<Subject, u64>,
    bounds: Bounds,
    /// When silent hosts were last looked for.
    forgot_at_ms: i64,
    /// Hosts whose last push was refused over a limit (logged once).
    over_limit: HashMap<String, Limit>,
}

/// What a config reload changed in the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Rules now configured (external ones included).
    pub rules: usize,
    /// Live incidents resolved because their rule is gone.
    pub orphans_resolved: usize,
}

/// Everything from the configuration the engine runs on.
#[derive(Clone)]
pub struct Setup {
    pub rules: Vec<Rule>,
    pub texts: Arc<Texts>,
    pub policy: IncidentPolicy,
    pub maintenance: Vec<Maintenance>,
    /// The heartbeat limit: the first `absent_for` rule's.
    pub heartbeat: Option<Duration>,
    /// What agents can make the collector hold, and for how long.
    pub bounds: Bounds,
}

/// Limits on state and how long silent hosts and series are kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub limits: StateLimits,
    /// A series not reported this long is released.
    pub forget_series_after: Duration,
    /// A host silent this long is forgotten (its series, checks and slots).
    pub forget_hosts_after: Duration,
}

impl Engine {
    /// Loads hosts, live and resolved incidents, open problems and undecided
    /// changes from `store`, and rebuilds alert state.
    pub fn new(
        setup: Setup,
        store: Store,
        outbox: Option<Outbox>,
        state: Arc<RwLock<State>>,
        metrics: Arc<Metrics>,
        now_ms: i64,
    ) -> Result<Engine, StoreError> {
        let Setup {
            rules,
            texts,
            policy,
            maintenance,
            heartbeat,
            bounds,
        } = setup;
        let index = RuleIndex::of(&rules);
        let mut store = store;
        let (run, restored) = restore_availability(&mut store, &state, now_ms)?;
        restore_counters(&store, &metrics)?;
        let mut engine = Engine {
            rules,
            texts,
            policy,
            maintenance,
            index,
            host_rules: HashMap::new(),
            alerts: HashMap::new(),
            book: Book::default(),
            recurrences: HashMap::new(),
            problems: HashMap::new(),
            changes: engine_changes(&mut { store.changes(true, usize::MAX >> 1)? }),
            suppressed: HashMap::new(),
            state,
            store,
            outbox,
            metrics,
            grace_from_ms: now_ms,
            heartbeat,
            run,
            availability: restored,
            pruned_at_ms: now_ms,
            faults: HashMap::new(),
            bounds,
            forgot_at_ms: now_ms,
            over_limit: HashMap::new(),
        };
        engine.restore_incidents(now_ms)?;
        engine.restore_problems(now_ms)?;
        Ok(engine)
    }

    /// Live incidents from the store become their alerts' (firing); those
    /// of a rule no longer configured are resolved. Resolved ones are what
    /// new breaches reopen.
    fn restore_incidents(&mut self, now_ms: i64) -> Result<(), StoreError> {
        let live = self.store.live_incidents()?;
        let resolved = self.store.resolved_incidents()?;
        for i in live.iter().chain(&resolved) {
            if i.origin == Origin::Alertmanager {
                self.external_rule(&i.rule);
            }
        }
        for incident in live {
            // Live in the store: open, until resolved below if its rule is gone.
            self.metrics
                .incidents_open
                .with_label_values(&[incident.priority_label(), &incident.rule])
                .inc();
            let Some(key) = self.key_of(&incident) else {
                self.resolve_orphan(incident, now_ms)?;
                continue;
            };
            self.alerts.insert(
                key.clone(),
                Alert {
                    state: AlertState::Firing,
                    flapping: incident.flapping,
                    ..Alert::default()
                },
            );
            self.book.open(key, incident);
        }
        for incident in resolved {
            let key = self.key_of(&incident);
            self.book.restore_resolved(key, incident);
        }
        Ok(())
    }

    /// Recent occurrences (for the problem window) and open problems.
    fn restore_problems(&mut self, now_ms: i64) -> Result<(), StoreError> {
        if let Some((_, within)) = self.policy.problem_after {
            let since = now_ms.saturating_sub(duration_ms(within));
            for (fp, at, id) in self.store.occurrences_since(since)? {
                self.recurrences.entry(fp).or_default().push_back((at, id));
            }
        }
        for p in self
            .store
            .problems(Some(ProblemState::Open), usize::MAX >> 1)?
        {
            self.metrics.problems_open.inc();
            self.problems.insert(p.fingerprint.clone(), p);
        }
        Ok(())
    }

    /// A live incident whose rule was removed from the configuration: nothing
    /// can restore it any more, so it is resolved with a note saying why.
    fn resolve_orphan(&mut self, mut incident: Incident, now_ms: i64) -> Result<(), StoreError> {
        let n = incident.events.len();
        let note = format!("rule '{}' is no longer configured", incident.rule);
        // Live incidents can always be resolved.
        if incident.resolve(SYSTEM_ACTOR, Some(note), now_ms).is_ok() {
            self.commit(|tx| tx.save_incident(&mut incident, n))?;
            self.book.restore_resolved(None, incident);
        }
        Ok(())
    }

    /// Applies a reloaded configuration: rules (matched to the running ones
    /// by name, so pending `for` timers, flapping history and live incidents
    /// carry over), templates, incident policy, maintenance windows and
    /// receivers. Live incidents of a removed rule are resolved, as at start.
    pub fn reload(
        &mut self,
        setup: Setup,
        router: Arc<Router>,
        wake: Wake,
        now_ms: i64,
    ) -> Result<Reloaded, StoreError> {
        let Setup {
            mut rules,
            texts,
            policy,
            maintenance,
            heartbeat,
            bounds,
        } = setup;
        // First, so that a store error leaves the engine as it was.
        let hosts = || self.store.host_labels();
        self.outbox = Some(Outbox::new(router, wake, hosts)?);
        let external = |r: &Rule| matches!(r.kind, RuleKind::External);
        // Rules made for Alertmanager's alerts are not in the file: keep them.
        rules.extend(self.rules.iter().filter(|r| external(r)).cloned());
        let index = RuleIndex::of(&rules);
        let map: Vec<Option<usize>> = self
            .rules
            .iter()
            .map(|old| index.names.find(&old.name, external(old)))
            .collect();
        let remap = |k: AlertKey| map[k.rule].map(|rule| AlertKey { rule, ..k });
        rekey(&mut self.alerts, remap);
        rekey(&mut self.suppressed, remap);
        let orphans = self.book.rekey(remap);
        self.index = index;
        self.host_rules.clear();
        self.rules = rules;
        self.texts = texts;
        self.policy = policy;
        self.maintenance = maintenance;
        self.heartbeat = heartbeat;
        self.bounds = bounds;
        let orphans_resolved = orphans.len();
        for incident in orphans {
            self.resolve_orphan(incident, now_ms)?;
        }
        Ok(Reloaded {
            rules: self.rules.len(),
            orphans_resolved,
        })
    }

    /// The alert an incident belongs to, if its rule is still configured.
    fn key_of(&self, incident: &Incident) -> Option<AlertKey> {
        let external = incident.origin == Origin::Alertmanager;
        let rule = self.index.names.find(&incident.rule, external)?;
        Some(AlertKey {
            rule,
            host: incident.host.clone(),
            labels: incident.labels.clone(),
        })
    }

    /// The configured rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Time-only transitions: pending alerts whose `for` has elapsed, clearing
    /// ones whose `resolve_after` has, hosts whose heartbeat is missing,
    /// windows that ended, changes to decide, resolved incidents to close.
    /// Then persists changed hosts and marks this run alive.
    ///
    /// Every stage runs whatever the others met, and every subject within a
    /// stage is its own unit of work: a failure is counted in
    /// `vedette_engine_errors_total{stage}`, logged once per subject and
    /// retried on a later tick, never a reason to skip another subject.
    pub fn tick(&mut self, now_ms: i64) {
        let fired = self.due(now_ms);
        // Never aborts: each transition is tried.
        let _ = self.act_each(fired, Stage::Tick, now_ms, false);
        self.heartbeats(now_ms);
        self.forget_hosts(now_ms);
        self.end_suppressions(now_ms);
        self.decide_changes(now_ms);
        self.close_resolved(now_ms);
        // Failures are counted and logged inside.
        let _ = self.flush_hosts(now_ms);
    }

    /// Runs `f` in one store transaction with what it implies: the outbox
    /// rows its domain events make ([`notify::commit`]); once it commits,
    /// metrics observe them.
    fn commit<T>(
        &mut self,
        f: impl FnOnce(&Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let (out, recorded) = notify::commit(&mut self.store, self.outbox.as_ref(), f)?;
        for r in &recorded {
            self.metrics.recorded(r);
        }
        Ok(out)
    }
}

/// Counters continue across restarts: replayed from what the store holds.
fn restore_counters(store: &Store, metrics: &Metrics) -> Result<(), StoreError> {
    for o in store.kpi_observations()? {
        metrics.observe(&o);
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
    for (outcome, n) in store.change_counts()? {
        metrics.changes.with_label_values(&[&outcome]).inc_by(n);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
