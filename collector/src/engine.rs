//! The engine: the collector's single writer. It applies validated batches to
//! [`State`], evaluates the rules that can match each sample, turns verdicts
//! into incident transitions, and persists each transition before the push
//! that caused it is acknowledged.
//!
//! [`Engine`] is synchronous and takes the time as an argument, so tests drive
//! it exactly. [`spawn`] runs it on a dedicated thread (SQLite is blocking)
//! that reads commands from a bounded queue and ticks every second for
//! time-only transitions (`for` and `resolve_after` elapsed, heartbeats
//! missing, windows ending, resolved incidents closing); [`EngineHandle`] is
//! the async side. A full queue is reported as busy so ingest can answer 429
//! instead of buffering without bound.
//!
//! Invariants: at most one live incident per alert (rule + host + labels);
//! a breach within `reopen_within` of resolution reopens the same incident;
//! an alert that is Firing after a restart is rebuilt from the live incidents
//! in the store; hosts known from the store get one full heartbeat period
//! after start before `absent_for` can fire, so the collector's own outage
//! does not open a storm of `host_down` incidents. Every transition and what
//! it implies (the problem it opens, the change it fails) commit in one
//! transaction.

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
    Incident, InvalidTransition, Labels, Opening, Origin, Problem, ProblemState, Resolution,
    SYSTEM_ACTOR,
};
use crate::metrics::{Metrics, Stage};
use crate::notify::{self, Outbox, Router, Wake};
use crate::rules::{
    self, Alert, AlertState, Condition, FlapThresholds, Outcome, Rule, RuleKind, Verdict,
};
use crate::state::{HostState, Limit, Limited, Point, State, StateLimits, Stored};
use crate::store::{AvailabilityRow, Store, StoreError, Suppression, Tx};
use crate::texts::{Context, Texts};
use crate::windows::{Change, ChangeOutcome, Maintenance, Phase, Scope, ScopeSpec};

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

/// How often a host's series are looked at for staleness (on its own
/// pushes), and silent hosts for forgetting (on the tick).
const SWEEP_EVERY_MS: i64 = 60_000;

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

/// What an isolated failure was about, so it is logged once until it recovers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    Alert(AlertKey),
    Incident(i64),
    Change(i64),
    Host(String),
    Availability,
    Run,
}

/// How many failing subjects are remembered; past that, failures are still
/// counted but may be logged more than once.
const FAULTS_CAP: usize = 10_000;

/// Records a failure of `subject`; true the first time (until it succeeds).
fn first_failure(faults: &mut HashMap<Subject, u64>, subject: Subject) -> bool {
    if let Some(n) = faults.get_mut(&subject) {
        *n += 1;
        return false;
    }
    if faults.len() < FAULTS_CAP {
        faults.insert(subject, 1);
    }
    true
}

/// A breach a window suppressed: it opens an incident when the window ends
/// if it is still breaching then.
#[derive(Debug, Clone)]
struct Suppressed {
    until_ms: i64,
    started_ms: i64,
    value: f64,
    detail: Detail,
}

/// Which rules apply to one host, cached until its labels change.
#[derive(Debug, Clone)]
struct HostRules {
    labels: Labels,
    applies: Arc<[bool]>,
}

/// The `source` label of incidents opened from Alertmanager's webhook (for
/// people and receivers; the engine goes by [`Origin`]).
pub const EXTERNAL_SOURCE: &str = "alertmanager";

/// One alert from Alertmanager's webhook (validated by the API).
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalAlert {
    pub firing: bool,
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at_ms: Option<i64>,
}

/// What a webhook call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExternalOutcome {
    pub opened: usize,
    pub resolved: usize,
    /// Repeats of what is already known, or suppressed by a window.
    pub unchanged: usize,
    /// Refused by the store (counted in `vedette_engine_errors_total`); the
    /// others went on.
    pub failed: usize,
}

/// Impact and urgency of an external alert: its `impact`/`urgency` labels
/// (1–3) when both are given, else from `severity` (critical P1, error or
/// major P2, warning P3, info P5, anything else P3).
pub fn external_priority(labels: &Labels) -> (u8, u8) {
    let level = |k: &str| {
        labels
            .get(k)
            .and_then(|v| v.parse::<u8>().ok())
            .filter(|v| (1..=3).contains(v))
    };
    if let (Some(i), Some(u)) = (level("impact"), level("urgency")) {
        return (i, u);
    }
    match labels
        .get("severity")
        .map(|s| s.to_ascii_lowercase())
        .as_deref()
    {
        Some("critical" | "page") => (1, 1),
        Some("error" | "major" | "high") => (1, 2),
        Some("info" | "informational" | "low" | "none") => (3, 3),
        _ => (2, 2),
    }
}

/// The alert name, host and labels of the incident an Alertmanager alert
/// opens: the host is its `host` label, else `instance`, else `alertmanager`;
/// the labels are the alert's others plus `source: alertmanager`.
fn external_identity(a: &ExternalAlert) -> Option<(&str, String, Labels)> {
    let name = a.labels.get("alertname")?;
    let host = a
        .labels
        .get("host")
        .or_else(|| a.labels.get("instance"))
        .cloned()
        .unwrap_or_else(|| "alertmanager".into());
    let mut labels: Labels = a
        .labels
        .iter()
        .filter(|(k, v)| k.as_str() != "alertname" && !(k.as_str() == "host" && **v == host))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert("source".into(), EXTERNAL_SOURCE.into());
    Some((name, host, labels))
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
    live: HashMap<AlertKey, Incident>,
    live_ids: HashMap<i64, AlertKey>,
    /// Resolved, not yet closed, by id.
    resolved: HashMap<i64, Incident>,
    /// The newest resolved incident of each alert: what a breach reopens.
    last_resolved: HashMap<AlertKey, i64>,
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

/// Which rules look at which samples, and the rules by name.
struct RuleIndex {
    by_metric: HashMap<String, Vec<usize>>,
    check_exact: HashMap<String, Vec<usize>>,
    check_globs: Vec<usize>,
    absent_rules: Vec<usize>,
    names: RuleNames,
}

/// Rules by name, the configured ones and those made for Alertmanager's
/// alert names apart (the two may share a name): lookups stay constant
/// time however many rules there are, so start and reload stay linear.
#[derive(Default)]
struct RuleNames {
    configured: HashMap<Arc<str>, usize>,
    external: HashMap<Arc<str>, usize>,
}

impl RuleNames {
    fn insert(&mut self, i: usize, r: &Rule) {
        let map = match r.kind {
            RuleKind::External => &mut self.external,
            _ => &mut self.configured,
        };
        map.insert(Arc::clone(&r.name), i);
    }

    fn find(&self, name: &str, external: bool) -> Option<usize> {
        if external {
            self.external.get(name).copied()
        } else {
            self.configured.get(name).copied()
        }
    }
}

impl RuleIndex {
    fn of(rules: &[Rule]) -> RuleIndex {
        let mut ix = RuleIndex {
            by_metric: HashMap::new(),
            check_exact: HashMap::new(),
            check_globs: Vec::new(),
            absent_rules: Vec::new(),
            names: RuleNames::default(),
        };
        for (i, r) in rules.iter().enumerate() {
            ix.names.insert(i, r);
            match &r.kind {
                RuleKind::Threshold(t) => ix.by_metric.entry(t.metric.clone()).or_default().push(i),
                RuleKind::Check(c) => match &c.exact {
                    Some(name) => ix.check_exact.entry(name.clone()).or_default().push(i),
                    None => ix.check_globs.push(i),
                },
                RuleKind::Absent { .. } => ix.absent_rules.push(i),
                RuleKind::External => {}
            }
        }
        ix
    }
}

/// Moves `map`'s entries to the keys `remap` gives them; returns the values
/// whose key has none (their rule was removed).
fn rekey<V>(
    map: &mut HashMap<AlertKey, V>,
    remap: impl Fn(AlertKey) -> Option<AlertKey>,
) -> Vec<V> {
    let mut dropped = Vec::new();
    for (k, v) in std::mem::take(map) {
        match remap(k) {
            Some(k) => {
                map.insert(k, v);
            }
            None => dropped.push(v),
        }
    }
    dropped
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
        let mut engine = Engine {
            rules,
            texts,
            policy,
            maintenance,
            index,
            host_rules: HashMap::new(),
            alerts: HashMap::new(),
            live: HashMap::new(),
            live_ids: HashMap::new(),
            resolved: HashMap::new(),
            last_resolved: HashMap::new(),
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
        let live = engine.store.live_incidents()?;
        let resolved = engine.store.resolved_incidents()?;
        for i in live.iter().chain(&resolved) {
            if i.origin == Origin::Alertmanager {
                engine.external_rule(&i.rule);
            }
        }
        for incident in live {
            let Some(key) = engine.key_of(&incident) else {
                engine.resolve_orphan(incident, now_ms)?;
                continue;
            };
            engine.alerts.insert(
                key.clone(),
                Alert {
                    state: AlertState::Firing,
                    flapping: incident.flapping,
                    ..Alert::default()
                },
            );
            engine
                .metrics
                .incidents_open
                .with_label_values(&[incident.priority_label(), &incident.rule])
                .inc();
            engine.live_ids.insert(incident.id, key.clone());
            engine.live.insert(key, incident);
        }
        for incident in resolved {
            if let Some(key) = engine.key_of(&incident) {
                engine.last_resolved.insert(key, incident.id);
            }
            engine.resolved.insert(incident.id, incident);
        }
        if let Some((_, within)) = engine.policy.problem_after {
            let since = now_ms.saturating_sub(duration_ms(within));
            for (fp, at, id) in engine.store.occurrences_since(since)? {
                engine
                    .recurrences
                    .entry(fp)
                    .or_default()
                    .push_back((at, id));
            }
        }
        for p in engine
            .store
            .problems(Some(ProblemState::Open), usize::MAX >> 1)?
        {
            engine.metrics.problems_open.inc();
            engine.problems.insert(p.fingerprint.clone(), p);
        }
        Ok(engine)
    }

    /// A live incident whose rule was removed from the configuration: nothing
    /// can restore it any more, so it is resolved with a note saying why.
    fn resolve_orphan(&mut self, mut incident: Incident, now_ms: i64) -> Result<(), StoreError> {
        let n = incident.events.len();
        let note = format!("rule '{}' is no longer configured", incident.rule);
        // Live incidents can always be resolved.
        if incident.resolve(SYSTEM_ACTOR, Some(note), now_ms).is_ok() {
            self.commit(|tx| tx.save_incident(&mut incident, n))?;
            self.count_resolved(&incident);
            self.resolved.insert(incident.id, incident);
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
        rekey(&mut self.last_resolved, remap);
        rekey(&mut self.suppressed, remap);
        let orphans = rekey(&mut self.live, remap);
        self.live_ids = self.live.iter().map(|(k, i)| (i.id, k.clone())).collect();
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
            self.metrics
                .incidents_open
                .with_label_values(&[incident.priority_label(), &incident.rule])
                .dec();
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

    /// Releases the host's series not reported for `forget_series_after`,
    /// at most once a minute and on the host's own push, so a series it
    /// stopped sending frees its slot. Their alerts go too, unless an
    /// incident is live for them.
    fn sweep_host(&mut self, st: &mut State, host: &str, now_ms: i64) {
        let Some(h) = st.hosts.get_mut(host) else {
            return;
        };
        if now_ms.saturating_sub(h.swept_ms) < SWEEP_EVERY_MS {
            return;
        }
        let h = Arc::make_mut(h);
        h.swept_ms = now_ms;
        let stale_before = now_ms.saturating_sub(duration_ms(self.bounds.forget_series_after));
        let gone = h.sweep(stale_before);
        st.series_total = st.series_total.saturating_sub(gone.len());
        for (name, labels) in gone {
            for &r in self.index.by_metric.get(&name).into_iter().flatten() {
                let key = AlertKey {
                    rule: r,
                    host: host.to_string(),
                    labels: labels.clone(),
                };
                if !self.live.contains_key(&key) {
                    self.alerts.remove(&key);
                }
            }
        }
    }

    /// Refuses a batch that would take its host or the collector past a
    /// limit. Counting new series is skipped when even all-new could not.
    fn check_limits(
        &self,
        st: &State,
        host: Option<&HostState>,
        batch: &Batch,
        token: Option<u64>,
    ) -> Result<(), Limited> {
        let limits = &self.bounds.limits;
        let name = batch.agent.host.as_str();
        let in_memory = st.hosts.contains_key(name);
        if let Some(t) = token {
            let admitted = st.hosts_per_token.get(&t).copied().unwrap_or(0);
            if host.is_none_or(|h| h.token.is_none()) && admitted >= limits.hosts_per_token {
                return Err(Limited {
                    limit: Limit::HostsPerToken,
                    field: Some("agent.host"),
                    message: format!(
                        "this agent token has brought in {admitted} hosts, the most limits.hosts_per_token allows; \
                         host {name} is refused until some are forgotten (silent past forget_hosts_after) \
                         or the collector's limit is raised"
                    ),
                });
            }
        }
        let have = host.map_or(0, HostState::series_len);
        let n = batch.samples.len();
        if have + n > limits.series_per_host || st.series_total + n > limits.series_total {
            let new: HashSet<(&str, &Labels)> = batch
                .samples
                .iter()
                .filter(|s| !host.is_some_and(|h| h.has_series(&s.name, &s.labels)))
                .map(|s| (s.name.as_str(), &s.labels))
                .collect();
            if have + new.len() > limits.series_per_host {
                return Err(Limited {
                    limit: Limit::SeriesPerHost,
                    field: Some("samples"),
                    message: format!(
                        "host {name} would have {} live series, over limits.series_per_host ({}); \
                         send fewer distinct series (one not reported for forget_series_after is released) \
                         or raise the collector's limit",
                        have + new.len(),
                        limits.series_per_host
                    ),
                });
            }
            // Past the total, a known host may still add series up to its
            // fair share of it (the total over the hosts), so one host or
            // token filling the collector cannot stop the others from, say,
            // reporting a new filesystem; what the collector holds stays
            // under twice the total.
            let share = limits.series_total / st.hosts.len().max(1);
            let within_share = in_memory && have + new.len() <= share;
            if st.series_total + new.len() > limits.series_total && !within_share {
                return Err(Limited {
                    limit: Limit::SeriesTotal,
                    field: Some("samples"),
                    message: format!(
                        "the collector holds {} live series and {} more would pass limits.series_total ({}), \
                         and host {name} would hold more than its share of it ({share}); \
                         retry later (silent hosts are forgotten after forget_hosts_after) or raise the limit",
                        st.series_total,
                        new.len(),
                        limits.series_total
                    ),
                });
            }
        }
        let have = host.map_or(0, |h| h.check_up.len());
        if have + batch.checks.len() > limits.checks_per_host {
            let new: HashSet<&str> = batch
                .checks
                .iter()
                .filter(|c| !host.is_some_and(|h| h.check_up.contains_key(&c.name)))
                .map(|c| c.name.as_str())
                .collect();
            if have + new.len() > limits.checks_per_host {
                return Err(Limited {
                    limit: Limit::ChecksPerHost,
                    field: Some("checks"),
                    message: format!(
                        "host {name} would have reported {} distinct checks, over limits.checks_per_host ({}); \
                         use fewer check names or raise the collector's limit",
                        have + new.len(),
                        limits.checks_per_host
                    ),
                });
            }
        }
        Ok(())
    }

    /// Logs a push refused over a limit once per host and limit (a flood
    /// would otherwise write a line per push); every refusal is counted.
    fn refused(&mut self, host: &str, l: &Limited) {
        if self.over_limit.get(host) == Some(&l.limit) {
            return;
        }
        if self.over_limit.len() < FAULTS_CAP {
            self.over_limit.insert(host.to_string(), l.limit);
        }
        tracing::warn!(
            host,
            limit = l.limit.as_str(),
            "push refused over a limit (logged once until the host's pushes fit again): {l}"
        );
    }

    /// Forgets hosts silent past `forget_hosts_after`, once a minute: their
    /// series, checks, availability and rule caches leave memory, their
    /// record leaves the store, and their slots (series, hosts per token)
    /// are free again. A live incident of theirs (host_down) stays live and
    /// resolves if the host comes back.
    fn forget_hosts(&mut self, now_ms: i64) {
        if now_ms.saturating_sub(self.forgot_at_ms) < SWEEP_EVERY_MS {
            return;
        }
        self.forgot_at_ms = now_ms;
        let silent_ms = duration_ms(self.bounds.forget_hosts_after);
        let state = Arc::clone(&self.state);
        let mut guard = state.write().unwrap_or_else(|p| p.into_inner());
        let st = &mut *guard;
        let gone: Vec<String> = st
            .hosts
            .iter()
            .filter(|(_, h)| now_ms.saturating_sub(h.last_seen_ms) >= silent_ms)
            .map(|(n, _)| n.clone())
            .collect();
        if gone.is_empty() {
            return;
        }
        for name in &gone {
            let Some(h) = st.hosts.remove(name) else {
                continue;
            };
            st.series_total = st.series_total.saturating_sub(h.series_len());
            if let Some(t) = h.token {
                if let Some(n) = st.hosts_per_token.get_mut(&t) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        st.hosts_per_token.remove(&t);
                    }
                }
            }
            self.host_rules.remove(name);
        }
        drop(guard);
        let names: HashSet<&str> = gone.iter().map(String::as_str).collect();
        self.alerts
            .retain(|k, _| !names.contains(k.host.as_str()) || self.live.contains_key(k));
        self.suppressed
            .retain(|k, _| !names.contains(k.host.as_str()));
        tracing::info!(
            hosts = gone.len(),
            "forgot hosts silent past forget_hosts_after"
        );
    }

    /// A host that is not in memory (new, or forgotten) as the store
    /// remembers it: its run identity (so exactly-once holds across
    /// forgetting) and its availability within the horizon (so an outage
    /// longer than `forget_hosts_after` still counts when it comes back).
    fn recall(&self, host: &str, now_ms: i64) -> Option<HostState> {
        let recalled = self.store.host(host).and_then(|record| {
            let Some(record) = record else {
                return Ok(None);
            };
            let since = now_ms.saturating_sub(duration_ms(availability::HORIZON));
            let rows = self.store.availability_of(host, since)?;
            Ok(Some((record, rows)))
        });
        let (record, rows) = match recalled {
            Ok(found) => found?,
            Err(e) => {
                tracing::warn!(host, error = %e, "reading a returning host's record failed; it starts afresh");
                return None;
            }
        };
        let mut h = HostState::from_record(record);
        let mut points: HashMap<String, Vec<(i64, Avail)>> = HashMap::new();
        for r in rows {
            points.entry(r.check).or_default().push((r.at_ms, r.state));
        }
        for (check, pts) in points {
            h.set_timeline(check, Timeline::from_points(pts));
        }
        Some(h)
    }

    /// Which rules apply to `host` (cached; recomputed when its labels change).
    fn host_rules(&mut self, host: &str, labels: &Labels) -> Arc<[bool]> {
        if let Some(h) = self.host_rules.get(host) {
            if h.labels == *labels {
                return Arc::clone(&h.applies);
            }
        }
        let applies: Arc<[bool]> = self
            .rules
            .iter()
            .map(|r| r.selector.matches_host(host, labels))
            .collect();
        self.host_rules.insert(
            host.to_string(),
            HostRules {
                labels: labels.clone(),
                applies: Arc::clone(&applies),
            },
        );
        applies
    }

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
        // A host not in memory may be one the collector forgot: it comes
        // back as the store remembers it, once this batch is taken.
        let recalled = match st.hosts.contains_key(host_name) {
            true => None,
            false => self.recall(host_name, now_ms),
        };
        let known = st.hosts.get(host_name).map(|h| &**h).or(recalled.as_ref());
        if known.is_some_and(|h| h.is_duplicate(&batch.agent.boot_id, batch.seq)) {
            return Ok(PushAck {
                accepted: 0,
                ack_seq: batch.seq,
            });
        }
        self.sweep_host(st, host_name, now_ms);
        let known = st.hosts.get(host_name).map(|h| &**h).or(recalled.as_ref());
        if let Err(l) = self.check_limits(st, known, batch, token) {
            self.refused(host_name, &l);
            return Err(l.into());
        }
        if !self.over_limit.is_empty() && self.over_limit.remove(host_name).is_some() {
            tracing::info!(host = host_name, "pushes within the limits again");
        }
        let host = Arc::make_mut(
            st.hosts
                .entry(host_name.to_string())
                .or_insert_with(|| Arc::new(recalled.unwrap_or_else(|| HostState::new(now_ms)))),
        );
        if let (Some(t), None) = (token, host.token) {
            host.token = Some(t);
            *st.hosts_per_token.entry(t).or_default() += 1;
        }
        if host.labels != batch.agent.labels {
            if let Some(outbox) = self.outbox.as_mut() {
                outbox.note_host_labels(host_name, &batch.agent.labels);
            }
        }
        host.labels = batch.agent.labels.clone();
        let before_seq = host.last_seq;
        let before_boot = (host.boot_id != batch.agent.boot_id)
            .then(|| (host.boot_id.clone(), host.retired_boots.clone()));
        host.advance(&batch.agent.boot_id, batch.seq);
        host.last_seen_ms = now_ms;
        host.interval_ms = (batch.agent.interval_s * 1000.0) as i64;
        host.dirty = true;
        // Availability in the collector's clock: one clock for every
        // subject, and an agent's skew shifts both edges of an outage alike.
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
        self.availability
            .extend(
                changed
                    .into_iter()
                    .map(|(check, at_ms, state)| AvailabilityRow {
                        host: host_name.to_string(),
                        check,
                        at_ms,
                        state,
                    }),
            );
        let applies = self.host_rules(host_name, &batch.agent.labels);
        let detail = |description: String, metric: &str, check: &str, message: &str| Detail {
            host_labels: batch.agent.labels.clone(),
            metric: metric.to_string(),
            check: check.to_string(),
            message: message.to_string(),
            description,
            impact_urgency: None,
        };

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
        let flap = self.policy.flapping;
        for s in &batch.samples {
            let point = Point {
                ts_ms: s.ts_ms,
                value: s.value,
            };
            match host.set_point(&s.name, &s.labels, point) {
                Stored::Kept => continue,
                Stored::Created => st.series_total += 1,
                Stored::Updated => {}
            }
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
                let cond = Condition {
                    breaching: t.breaches(s.value),
                    cleared: t.clears(s.value),
                };
                let key = AlertKey {
                    rule: r,
                    host: host_name.to_string(),
                    labels: s.labels.clone(),
                };
                let (outcome, percent, before) = observe(
                    &mut self.alerts,
                    &key,
                    cond,
                    rule.timing(),
                    flap,
                    s.value,
                    s.ts_ms,
                    now_ms,
                );
                if outcome.verdict != Verdict::Nothing || outcome.flapping.is_some() {
                    let description = format!(
                        "{}{} on {host_name} is {}",
                        s.name,
                        fmt_labels(&s.labels),
                        s.value
                    );
                    fired.push(Fired {
                        detail: detail(description, &s.name, "", ""),
                        key,
                        before,
                        outcome,
                        percent,
                    });
                }
            }
        }
        for c in &batch.checks {
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
                let (outcome, percent, before) = observe(
                    &mut self.alerts,
                    &key,
                    cond,
                    rule.timing(),
                    flap,
                    status_value(c.status),
                    c.ts_ms,
                    now_ms,
                );
                if outcome.verdict != Verdict::Nothing || outcome.flapping.is_some() {
                    let description = format!(
                        "check {} on {host_name} is {}: {}",
                        c.name,
                        c.status.as_str(),
                        c.message
                    );
                    fired.push(Fired {
                        detail: detail(description, "", &c.name, &c.message),
                        key,
                        before,
                        outcome,
                        percent,
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
        drop(guard);
        if let Err(e) = self.act_each(fired, Stage::Push, now_ms, true) {
            // Not acknowledged, so the agent sends this batch again: it must
            // not look like a repeat then.
            let mut st = state.write().unwrap_or_else(|p| p.into_inner());
            if let Some(host) = st.hosts.get_mut(host_name) {
                let host = Arc::make_mut(host);
                host.last_seq = before_seq;
                if let Some((boot_id, retired)) = before_boot {
                    host.boot_id = boot_id;
                    host.retired_boots = retired;
                }
            }
            return Err(e.into());
        }
        let accepted = batch.samples.len() + batch.checks.len();
        self.metrics.ingest_samples.inc_by(accepted as u64);
        Ok(PushAck {
            accepted,
            ack_seq: batch.seq,
        })
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

    /// The time-driven transitions due at `now_ms`.
    fn due(&mut self, now_ms: i64) -> Vec<Fired> {
        let state = Arc::clone(&self.state);
        let mut fired = Vec::new();
        {
            let st = state.read().unwrap_or_else(|p| p.into_inner());
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
            for (name, h) in st
                .hosts
                .iter()
                .filter(|_| !self.index.absent_rules.is_empty())
            {
                let (labels, last_seen_ms, interval_ms) =
                    (&h.labels, h.last_seen_ms, h.interval_ms);
                // Every batch refreshes the host's cached rule set; a host
                // restored from the store but not heard from yet has none.
                let cached = self
                    .host_rules
                    .get(name)
                    .filter(|c| c.labels == *labels)
                    .map(|c| Arc::clone(&c.applies));
                for &r in &self.index.absent_rules {
                    let RuleKind::Absent { after } = self.rules[r].kind else {
                        continue;
                    };
                    let applies = match &cached {
                        Some(a) => a[r],
                        None => self.rules[r].selector.matches_host(name, labels),
                    };
                    if !applies {
                        continue;
                    }
                    let key = AlertKey {
                        rule: r,
                        host: name.clone(),
                        labels: Labels::new(),
                    };
                    let before = self.alerts.get(&key).copied();
                    let alert = self.alerts.entry(key.clone()).or_default();
                    let last_seen = last_seen_ms.max(self.grace_from_ms);
                    let verdict =
                        rules::absent(after, &mut alert.state, last_seen, interval_ms, now_ms);
                    if alert.state == AlertState::Inactive {
                        self.alerts.remove(&key);
                    }
                    if verdict != Verdict::Nothing {
                        let silent = (now_ms.saturating_sub(last_seen_ms) / 1000).max(0) as u64;
                        fired.push(Fired {
                            detail: Detail {
                                host_labels: labels.clone(),
                                description: format!(
                                    "{name} has sent nothing for {}",
                                    humantime::format_duration(Duration::from_secs(silent))
                                ),
                                ..Detail::default()
                            },
                            key,
                            before,
                            outcome: Outcome {
                                verdict,
                                flapping: None,
                            },
                            percent: 0.0,
                        });
                    }
                }
            }
        }
        fired
    }

    /// Hosts silent past the heartbeat limit go down, from the first push
    /// they missed (a late push within the limit is no outage); what their
    /// checks do then is unknown. A host restored from the store gets the
    /// limit counted from the collector's start, like `absent_for`.
    fn heartbeats(&mut self, now_ms: i64) {
        let state = Arc::clone(&self.state);
        let mut st = state.write().unwrap_or_else(|p| p.into_inner());
        for (name, h) in st.hosts.iter_mut() {
            if h.up.current() == Avail::Down {
                continue;
            }
            let limit = self
                .heartbeat
                .map_or(3 * h.interval_ms.max(1000), duration_ms);
            if now_ms.saturating_sub(h.last_seen_ms.max(self.grace_from_ms)) < limit {
                continue;
            }
            let at = h
                .last_seen_ms
                .saturating_add(h.interval_ms.max(1000))
                .max(self.grace_from_ms)
                .min(now_ms);
            // Copied only now, if a snapshot holds it: most hosts are skipped above.
            let h = Arc::make_mut(h);
            if let Some(at) = h.up.set(Avail::Down, at) {
                self.availability.push(AvailabilityRow {
                    host: name.clone(),
                    check: String::new(),
                    at_ms: at,
                    state: Avail::Down,
                });
            }
            for (check, tl) in h.check_up.iter_mut() {
                if let Some(at) = tl.set(Avail::Unknown, at) {
                    self.availability.push(AvailabilityRow {
                        host: name.clone(),
                        check: check.clone(),
                        at_ms: at,
                        state: Avail::Unknown,
                    });
                }
            }
        }
        // Changes no window can see any more are dropped hourly.
        let horizon = duration_ms(availability::HORIZON);
        if now_ms - self.pruned_at_ms >= 3_600_000 {
            self.pruned_at_ms = now_ms;
            for h in st.hosts.values_mut() {
                let h = Arc::make_mut(h);
                h.up.prune(now_ms - horizon);
                h.check_up
                    .values_mut()
                    .for_each(|t| t.prune(now_ms - horizon));
            }
            st.runs.prune(now_ms - horizon);
            st.changes.retain(|c| c.2 > now_ms - horizon);
            // Records of hosts forgotten and silent past the horizon: no
            // window shows them, and an attacker's made-up hosts go too.
            let forgotten_ms = horizon.max(duration_ms(self.bounds.forget_hosts_after));
            if let Err(e) = self.store.prune_hosts(now_ms.saturating_sub(forgotten_ms)) {
                self.metrics
                    .engine_errors
                    .with_label_values(&[Stage::Prune.as_str()])
                    .inc();
                tracing::warn!(error = %e, "pruning long-forgotten hosts failed; retried in an hour");
            }
            // The store too, or a collector that never restarts keeps every
            // change it ever saw on disk.
            if let Err(e) = self.store.prune_availability(now_ms - horizon) {
                self.metrics
                    .engine_errors
                    .with_label_values(&[Stage::Prune.as_str()])
                    .inc();
                tracing::warn!(error = %e, "pruning old availability changes failed; retried in an hour");
            }
        }
    }

    /// Persists hosts changed since the last flush and availability changes,
    /// and marks this run alive, in one transaction. If the store refuses
    /// it, each part is written on its own so that one bad row costs only
    /// itself: the alive mark, every other host and every other availability
    /// change still land. What fails stays pending for the next flush.
    pub fn flush_hosts(&mut self, now_ms: i64) -> Result<(), StoreError> {
        let state = Arc::clone(&self.state);
        let mut st = state.write().unwrap_or_else(|p| p.into_inner());
        let dirty: Vec<_> = st
            .hosts
            .iter()
            .filter(|(_, h)| h.dirty)
            .map(|(n, h)| h.record(n))
            .collect();
        let (run, now) = (self.run, now_ms);
        let rows = std::mem::take(&mut self.availability);
        let written = self.commit(|tx| {
            tx.save_hosts(&dirty)?;
            tx.insert_availability(&rows)?;
            tx.mark_alive(run, now)
        });
        let e = match written {
            Ok(()) => {
                for h in st.hosts.values_mut().filter(|h| h.dirty) {
                    Arc::make_mut(h).dirty = false;
                }
                drop(st);
                if !self.faults.is_empty() {
                    self.succeeded(Subject::Run);
                    self.succeeded(Subject::Availability);
                    for r in &dirty {
                        self.succeeded(Subject::Host(r.host.clone()));
                    }
                }
                return Ok(());
            }
            Err(e) => e,
        };
        if !e.is_refusal() {
            // The store is out (disk full, I/O): nothing would land one by one.
            drop(st);
            self.availability = rows;
            self.failed(Stage::Flush, Subject::Run, &e);
            return Err(e);
        }
        // One row spoiled the transaction: write each on its own.
        let mut first = None;
        let alive = self.commit(|tx| tx.mark_alive(run, now));
        for r in &dirty {
            match self.commit(|tx| tx.save_hosts(std::iter::once(r))) {
                Ok(()) => {
                    if let Some(h) = st.hosts.get_mut(&r.host) {
                        Arc::make_mut(h).dirty = false;
                    }
                }
                Err(e) => {
                    first.get_or_insert((Subject::Host(r.host.clone()), e));
                }
            }
        }
        drop(st);
        let mut kept = Vec::new();
        for r in rows {
            if let Err(e) = self.commit(|tx| tx.insert_availability(std::iter::once(&r))) {
                if !e.is_refusal() {
                    kept.push(r);
                }
                // A row the store refuses would be refused again: dropped
                // (counted and logged), so it cannot hold the others back.
                first.get_or_insert((Subject::Availability, e));
            }
        }
        self.availability = kept;
        if let Err(e) = alive {
            self.failed(Stage::Flush, Subject::Run, &e);
            return Err(e);
        }
        self.succeeded(Subject::Run);
        match first {
            Some((subject, e)) => {
                self.failed(Stage::Flush, subject, &e);
                Err(e)
            }
            None => Ok(()),
        }
    }

    /// Acknowledges a live incident.
    /// The rule standing for alerts named `name` from another system, made
    /// on first sight.
    fn external_rule(&mut self, name: &str) -> usize {
        if let Some(i) = self.index.names.find(name, true) {
            return i;
        }
        let rule = Rule {
            name: name.into(),
            kind: RuleKind::External,
            impact: 2,
            urgency: 2,
            selector: Default::default(),
            resolve_after: Duration::ZERO,
        };
        let i = self.rules.len();
        self.index.names.insert(i, &rule);
        // Host rule caches stay valid: no sample or heartbeat looks at an
        // external rule's index.
        self.rules.push(rule);
        i
    }

    /// Applies alerts from Alertmanager's webhook: a firing alert opens (or
    /// reopens) its incident unless one is live; a resolved one resolves it.
    /// The fingerprint is the alert's labels, so Alertmanager's repeats and
    /// an HA pair's duplicates land on the same incident.
    pub fn external(
        &mut self,
        alerts: &[ExternalAlert],
        now_ms: i64,
    ) -> Result<ExternalOutcome, ApplyError> {
        self.check_external_limits(alerts)?;
        let mut out = ExternalOutcome::default();
        for a in alerts {
            let Some((name, host, labels)) = external_identity(a) else {
                continue;
            };
            let key = AlertKey {
                rule: self.external_rule(name),
                host,
                labels,
            };
            let counted = if a.firing {
                if self.live.contains_key(&key) {
                    out.unchanged += 1;
                    continue;
                }
                let started = a
                    .starts_at_ms
                    .filter(|&t| t > 0 && t <= now_ms)
                    .unwrap_or(now_ms);
                let detail = Detail {
                    message: a.annotations.get("summary").cloned().unwrap_or_default(),
                    description: a
                        .annotations
                        .get("description")
                        .cloned()
                        .unwrap_or_default(),
                    impact_urgency: Some(external_priority(&a.labels)),
                    ..Detail::default()
                };
                self.fire(&key, started, 1.0, detail, 0.0, now_ms)
                    .map(|()| match self.live.contains_key(&key) {
                        true => &mut out.opened,
                        // Suppressed by a window.
                        false => &mut out.unchanged,
                    })
            } else if self.live.contains_key(&key) || self.suppressed.contains_key(&key) {
                self.clear(&key, now_ms, now_ms).map(|()| &mut out.resolved)
            } else {
                out.unchanged += 1;
                continue;
            };
            match counted {
                Ok(n) => {
                    *n += 1;
                    self.succeeded(Subject::Alert(key));
                }
                Err(e) => {
                    self.failed(Stage::External, Subject::Alert(key), &e);
                    if !e.is_refusal() {
                        return Err(e.into());
                    }
                    out.failed += 1;
                }
            }
        }
        Ok(out)
    }

    /// Refuses a webhook call that would make more rules for Alertmanager's
    /// alert names, or more live incidents from them, than the limits allow.
    fn check_external_limits(&self, alerts: &[ExternalAlert]) -> Result<(), Limited> {
        let limits = &self.bounds.limits;
        let mut new_names = HashSet::new();
        let mut new_live = HashSet::new();
        for a in alerts.iter().filter(|a| a.firing) {
            let Some((name, host, labels)) = external_identity(a) else {
                continue;
            };
            let rule = self.index.names.find(name, true);
            if rule.is_none() {
                new_names.insert(name);
            }
            let live = rule.is_some_and(|rule| {
                self.live.contains_key(&AlertKey {
                    rule,
                    host: host.clone(),
                    labels: labels.clone(),
                })
            });
            if !live {
                new_live.insert((name, host, labels));
            }
        }
        let rules = self.index.names.external.len();
        if rules + new_names.len() > limits.external_rules {
            return Err(Limited {
                limit: Limit::ExternalRules,
                field: Some("alerts"),
                message: format!(
                    "{} alert names are known and {} new ones would pass limits.external_rules ({}); \
                     raise the collector's limit or send fewer distinct alertnames",
                    rules,
                    new_names.len(),
                    limits.external_rules
                ),
            });
        }
        let live = self
            .live
            .values()
            .filter(|i| i.origin == Origin::Alertmanager)
            .count();
        if live + new_live.len() > limits.external_alerts {
            return Err(Limited {
                limit: Limit::ExternalAlerts,
                field: Some("alerts"),
                message: format!(
                    "{live} incidents from Alertmanager are live and {} more would pass limits.external_alerts ({}); \
                     retry later or raise the collector's limit",
                    new_live.len(),
                    limits.external_alerts
                ),
            });
        }
        Ok(())
    }

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
        let incident = self.live.get(&key).ok_or(ActionError::NotFound(id))?;
        let (mut next, n) = (incident.clone(), incident.events.len());
        next.acknowledge(actor, note, now_ms)?;
        self.commit(|tx| tx.save_incident(&mut next, n))?;
        self.live.insert(key, next.clone());
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
        let (mut next, n) = (incident.clone(), incident.events.len());
        next.resolve(actor, note, now_ms)?;
        self.commit(|tx| tx.save_incident(&mut next, n))?;
        self.retire(&key, next.clone());
        Ok(next)
    }

    /// Resolves an open problem.
    pub fn resolve_problem(
        &mut self,
        id: i64,
        actor: &str,
        note: Option<String>,
        now_ms: i64,
    ) -> Result<Problem, ActionError> {
        let Some(fp) = self
            .problems
            .iter()
            .find(|(_, p)| p.id == id)
            .map(|(fp, _)| fp.clone())
        else {
            let p = self.store.problem(id)?;
            return Err(ActionError::ProblemConflict(format!(
                "problem {} is already {}",
                p.id,
                p.state.as_str()
            )));
        };
        let mut next = self.problems[&fp].clone();
        next.resolve(actor, note, now_ms)
            .map_err(ActionError::ProblemConflict)?;
        self.commit(|tx| tx.save_problem(&mut next))?;
        self.problems.remove(&fp);
        // The root cause is fixed: recurrence counts start over.
        self.recurrences.remove(&fp);
        self.metrics.problems_open.dec();
        tracing::info!(id, actor, "problem resolved");
        Ok(next)
    }

    /// Records a planned change.
    pub fn create_change(
        &mut self,
        new: NewChange,
        actor: &str,
        now_ms: i64,
    ) -> Result<Change, ActionError> {
        let scope = Scope::new(new.scope)
            .map_err(|(field, message)| ActionError::Invalid { field, message })?;
        let mut change = Change {
            id: 0,
            title: new.title,
            scope,
            start_ms: new.start_ms,
            end_ms: new.end_ms,
            verify_for: new.verify_for,
            outcome: None,
            outcome_note: None,
            created_by: actor.to_string(),
            created_at_ms: now_ms,
        };
        self.commit(|tx| tx.save_change(&mut change))?;
        tracing::info!(id = change.id, title = %change.title, actor, "change recorded");
        self.state
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .changes
            .push((change.scope.clone(), change.start_ms, change.end_ms));
        self.changes.push(change.clone());
        Ok(change)
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

    /// Runs `f` in one store transaction with what it implies: the outbox
    /// rows its domain events make ([`notify::commit`]); once it commits,
    /// metrics observe them.
    fn commit<T>(
        &mut self,
        f: impl FnOnce(&Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let (out, recorded) = notify::commit(&mut self.store, self.outbox.as_ref(), f)?;
        for r in &recorded {
            r.observations()
                .iter()
                .for_each(|o| self.metrics.observe(o));
        }
        Ok(out)
    }

    /// Acts on each transition in order, each its own unit of work. One the
    /// store refuses is rolled back for its subject alone (its alert as it
    /// was before, so the next evaluation makes it again), counted under
    /// `stage` and logged once; the others go on. When the store as a whole
    /// fails (disk full, I/O) and `abort_on_outage` (a push, which is then
    /// refused and retried whole), that transition and those after it get
    /// their alerts back and the failure is returned; otherwise every
    /// transition is tried and `Ok` returned.
    fn act_each(
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
    fn put_back(&mut self, key: AlertKey, before: Option<Alert>) {
        match before {
            Some(alert) => self.alerts.insert(key, alert),
            None => self.alerts.remove(&key),
        };
    }

    /// Counts a failure the engine isolated and logs it the first time for
    /// its subject.
    fn failed(&mut self, stage: Stage, subject: Subject, e: &StoreError) {
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
    fn succeeded(&mut self, subject: Subject) {
        if self.faults.is_empty() {
            return;
        }
        if let Some(n) = self.faults.remove(&subject) {
            tracing::info!(subject = %self.describe(&subject), failures = n, "the store took the transition it had refused");
        }
    }

    /// A subject for people: `rule 'cpu_high' on web-01 {core="0"}`.
    fn describe(&self, subject: &Subject) -> String {
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

    fn act(&mut self, f: Fired, now_ms: i64) -> Result<(), StoreError> {
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

    /// The window covering `host` at `now_ms`, if any: `(kind, name, change id, end)`.
    fn window_for(
        &self,
        host: &str,
        labels: &Labels,
        now_ms: i64,
    ) -> Option<(&'static str, String, Option<i64>, i64)> {
        for c in &self.changes {
            if c.phase(now_ms) == Phase::InProgress && c.scope.covers(host, labels) {
                return Some(("change", c.title.clone(), Some(c.id), c.end_ms));
            }
        }
        for m in &self.maintenance {
            if m.scope.covers(host, labels) {
                if let Some((_, end)) = m.active_at(now_ms) {
                    return Some(("maintenance", m.name.clone(), None, end));
                }
            }
        }
        None
    }

    fn fire(
        &mut self,
        key: &AlertKey,
        started_ms: i64,
        value: f64,
        detail: Detail,
        percent: f64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if self.live.contains_key(key) {
            return Ok(());
        }
        let opening = self.opening(key, started_ms, value, &detail);
        if let Some((kind, name, change_id, until_ms)) =
            self.window_for(&key.host, &detail.host_labels, now_ms)
        {
            let mut s = Suppression {
                id: 0,
                at_ms: now_ms,
                fingerprint: crate::incidents::fingerprint(&opening.rule, &key.host, &key.labels),
                rule: opening.rule.clone(),
                host: key.host.clone(),
                labels: key.labels.clone(),
                summary: opening.summary.clone(),
                window_kind: kind,
                window_name: name,
                change_id,
            };
            self.commit(|tx| tx.insert_suppression(&mut s))?;
            tracing::info!(rule = %s.rule, host = %s.host, window = %s.window_name, "breach suppressed by a planned window");
            self.metrics.suppressed.with_label_values(&[&s.rule]).inc();
            self.suppressed.insert(
                key.clone(),
                Suppressed {
                    until_ms,
                    started_ms,
                    value,
                    detail,
                },
            );
            return Ok(());
        }
        // Reopen the newest resolved incident of this alert if it is recent enough.
        let reopen_ms = duration_ms(self.policy.reopen_within);
        let previous = self
            .last_resolved
            .get(key)
            .and_then(|id| self.resolved.get(id))
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
        // Changes in verification whose scope this breach fails.
        let failing: Vec<usize> = self
            .changes
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.phase(now_ms) == Phase::Verifying
                    && c.scope.covers(&key.host, &detail.host_labels)
            })
            .map(|(i, _)| i)
            .collect();
        let mut failed: Vec<Change> = failing.iter().map(|&i| self.changes[i].clone()).collect();
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
        tracing::info!(
            id = incident.id,
            rule = %incident.rule,
            host = %incident.host,
            priority = incident.priority_label(),
            occurrences = incident.occurrences,
            "incident {}", if reopened { "reopened" } else { "opened" }
        );
        if !reopened {
            self.metrics
                .incidents_opened
                .with_label_values(&[incident.priority_label(), &incident.rule])
                .inc();
        }
        self.metrics
            .incidents_open
            .with_label_values(&[incident.priority_label(), &incident.rule])
            .inc();
        for c in failed {
            tracing::warn!(change = c.id, title = %c.title, "change failed verification");
            self.metrics.changes.with_label_values(&["failed"]).inc();
            self.changes.retain(|x| x.id != c.id);
        }
        if let Some((_, within)) = self.policy.problem_after {
            let q = self.recurrences.entry(fp.clone()).or_default();
            q.push_back((now_ms, incident.id));
            let since = now_ms.saturating_sub(duration_ms(within));
            while q.front().is_some_and(|&(at, _)| at < since) {
                q.pop_front();
            }
        }
        if let Some(p) = problem {
            for id in &p.incident_ids {
                if let Some(i) = self.resolved.get_mut(id) {
                    i.problem_id = Some(p.id);
                }
                if let Some(k) = self.live_ids.get(id) {
                    if let Some(i) = self.live.get_mut(k) {
                        i.problem_id = Some(p.id);
                    }
                }
            }
            if !self.problems.contains_key(&fp) {
                tracing::warn!(id = p.id, fingerprint = %fp, incidents = p.incident_ids.len(), "problem opened: the incident keeps recurring");
                self.metrics.problems_open.inc();
            }
            self.problems.insert(fp, p);
        }
        self.resolved.remove(&incident.id);
        self.last_resolved.remove(key);
        self.live_ids.insert(incident.id, key.clone());
        self.live.insert(key.clone(), incident);
        Ok(())
    }

    /// The store already holds a live incident with this alert's fingerprint
    /// that the engine does not know (the insert hit the one-live-incident
    /// constraint): if it is this very alert's, it becomes the alert's live
    /// incident instead of a second one. True when adopted.
    fn adopt(&mut self, key: &AlertKey, fingerprint: &str) -> bool {
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
        if !same || self.live_ids.contains_key(&incident.id) {
            return false;
        }
        tracing::warn!(id = incident.id, rule = %incident.rule, host = %incident.host, "the store held a live incident for this alert the engine did not know; it carries on with it instead of opening a second one");
        self.metrics
            .incidents_open
            .with_label_values(&[incident.priority_label(), &incident.rule])
            .inc();
        self.live_ids.insert(incident.id, key.clone());
        self.live.insert(key.clone(), incident);
        true
    }

    /// The problem this occurrence belongs to (to save with it), if any: the
    /// open one of its fingerprint, or a new one once it recurred often enough.
    fn problem_for(&self, fp: &str, now_ms: i64, incident: &Incident) -> Option<Problem> {
        if let Some(p) = self.problems.get(fp) {
            return (!p.incident_ids.contains(&incident.id) || incident.problem_id.is_none())
                .then(|| p.clone());
        }
        let (count, within) = self.policy.problem_after?;
        let since = now_ms.saturating_sub(duration_ms(within));
        let recent: Vec<i64> = self
            .recurrences
            .get(fp)
            .map(|q| {
                q.iter()
                    .filter(|(at, _)| *at >= since)
                    .map(|&(_, id)| id)
                    .collect()
            })
            .unwrap_or_default();
        if recent.len() + 1 < count as usize {
            return None;
        }
        let mut incident_ids: Vec<i64> = Vec::new();
        for id in recent {
            if !incident_ids.contains(&id) {
                incident_ids.push(id);
            }
        }
        Some(Problem {
            id: 0,
            fingerprint: fp.to_string(),
            rule: incident.rule.clone(),
            host: incident.host.clone(),
            state: ProblemState::Open,
            incident_ids,
            opened_at_ms: now_ms,
            resolved_at_ms: None,
            resolved_by: None,
            note: None,
        })
    }

    /// The condition of `key` cleared at `restored_ms`: its live incident is
    /// restored then and resolved now, or a hand-resolved one gets its
    /// restore recorded.
    fn clear(&mut self, key: &AlertKey, restored_ms: i64, now_ms: i64) -> Result<(), StoreError> {
        if self.suppressed.remove(key).is_some() {
            // Cleared inside its window: planned, nothing to open.
            return Ok(());
        }
        if let Some(incident) = self.live.get(key) {
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
        let Some(id) = self.last_resolved.get(key).copied() else {
            return Ok(());
        };
        let Some(incident) = self.resolved.get(&id) else {
            return Ok(());
        };
        if incident.restored_at_ms.is_some() {
            return Ok(());
        }
        let (mut next, n) = (incident.clone(), incident.events.len());
        next.restore_at(restored_ms, now_ms);
        self.commit(|tx| tx.save_incident(&mut next, n))?;
        self.resolved.insert(id, next);
        Ok(())
    }

    fn flapping_changed(
        &mut self,
        key: &AlertKey,
        flapping: bool,
        percent: f64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let Some(incident) = self.live.get(key) else {
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
            self.live.insert(key.clone(), next);
        }
        Ok(())
    }

    /// Suppressed breaches whose window ended: still breaching opens the
    /// incident now (the planned work did not fix it); a covering window
    /// that follows extends the suppression. One that cannot be persisted is
    /// kept and tried again on the next tick.
    fn end_suppressions(&mut self, now_ms: i64) {
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
    fn decide_changes(&mut self, now_ms: i64) {
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

    /// Resolved incidents `close_after` past resolution are closed.
    fn close_resolved(&mut self, now_ms: i64) {
        let close_ms = duration_ms(self.policy.close_after);
        let due: Vec<i64> = self
            .resolved
            .values()
            .filter(|i| {
                i.resolved_at_ms
                    .is_some_and(|t| now_ms.saturating_sub(t) >= close_ms)
            })
            .map(|i| i.id)
            .collect();
        for id in due {
            let Some(incident) = self.resolved.get(&id) else {
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
            self.resolved.remove(&id);
            self.last_resolved.retain(|_, v| *v != id);
        }
    }

    fn opening(&self, key: &AlertKey, started_ms: i64, value: f64, d: &Detail) -> Opening {
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
    fn retire(&mut self, key: &AlertKey, resolved: Incident) {
        self.live.remove(key);
        self.live_ids.remove(&resolved.id);
        self.count_closed_live(&resolved);
        self.last_resolved.insert(key.clone(), resolved.id);
        self.resolved.insert(resolved.id, resolved);
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

/// Changes as the engine tracks them (undecided, oldest first).
fn engine_changes(changes: &mut Vec<Change>) -> Vec<Change> {
    changes.reverse();
    std::mem::take(changes)
}

/// A check status as a number: ok 0, warning 1, critical 2, unknown 3.
/// A check's availability: ok and warning are up (the service works),
/// critical is down, unknown says nothing.
fn check_availability(s: Status) -> Avail {
    match s {
        Status::Ok | Status::Warning => Avail::Up,
        Status::Critical => Avail::Down,
        Status::Unknown => Avail::Unknown,
    }
}

/// Loads hosts, timelines and changes within the horizon into `state`,
/// records this run, and marks every subject that was not already unknown
/// as unknown from the last instant the previous run was alive: the
/// collector's own downtime is never counted as down. Returns the run's id
/// and the changes to persist.
fn restore_availability(
    store: &mut Store,
    state: &RwLock<State>,
    now_ms: i64,
) -> Result<(i64, Vec<AvailabilityRow>), StoreError> {
    let since = now_ms - duration_ms(availability::HORIZON);
    store.prune_availability(since)?;
    let mut st = State::from_records(store.hosts()?);
    let mut points: HashMap<(String, String), Vec<(i64, Avail)>> = HashMap::new();
    for r in store.availability(since)? {
        points
            .entry((r.host, r.check))
            .or_default()
            .push((r.at_ms, r.state));
    }
    let (run, runs) = store.start_run(now_ms, since)?;
    let mut collector = Vec::new();
    for (i, &(started, alive)) in runs.iter().enumerate() {
        collector.push((started, Avail::Up));
        if i + 1 < runs.len() {
            collector.push((alive.max(started), Avail::Down));
        }
    }
    st.runs = Timeline::from_points(collector);
    let gap_from = runs
        .len()
        .checked_sub(2)
        .map(|i| runs[i].1.min(now_ms))
        .unwrap_or(now_ms);
    let mut unknown = Vec::new();
    for ((host, check), pts) in points {
        // Timelines of hosts the store no longer knows are dropped.
        let Some(h) = st.hosts.get_mut(&host) else {
            continue;
        };
        let h = Arc::make_mut(h);
        let mut tl = Timeline::from_points(pts);
        if let Some(at) = tl.set(Avail::Unknown, gap_from.max(tl.since().unwrap_or(gap_from))) {
            unknown.push(AvailabilityRow {
                host: host.clone(),
                check: check.clone(),
                at_ms: at,
                state: Avail::Unknown,
            });
        }
        h.set_timeline(check, tl);
    }
    st.changes = store
        .changes(false, usize::MAX >> 1)?
        .into_iter()
        .filter(|c| c.end_ms > since)
        .map(|c| (c.scope, c.start_ms, c.end_ms))
        .collect();
    *state.write().unwrap_or_else(|p| p.into_inner()) = st;
    Ok((run, unknown))
}

fn status_value(s: Status) -> f64 {
    match s {
        Status::Ok => 0.0,
        Status::Warning => 1.0,
        Status::Critical => 2.0,
        Status::Unknown => 3.0,
    }
}

#[allow(clippy::too_many_arguments)] // one evaluation's inputs, named at the call site
fn observe(
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
        RuleKind::External => format!("{} on {} (from Alertmanager)", rule.name, key.host),
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

enum Command {
    Push {
        batch: Box<Batch>,
        token: Option<u64>,
        reply: oneshot::Sender<Result<PushAck, ApplyError>>,
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
    ResolveProblem {
        id: i64,
        actor: String,
        note: Option<String>,
        reply: oneshot::Sender<Result<Problem, ActionError>>,
    },
    CreateChange {
        change: NewChange,
        actor: String,
        reply: oneshot::Sender<Result<Change, ActionError>>,
    },
    External {
        alerts: Vec<ExternalAlert>,
        reply: oneshot::Sender<Result<ExternalOutcome, ApplyError>>,
    },
    Reload {
        setup: Box<Setup>,
        router: Arc<Router>,
        wake: Wake,
        reply: oneshot::Sender<Result<Reloaded, StoreError>>,
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
                    engine.tick(now_ms());
                    on_tick();
                    next_tick = Instant::now() + tick;
                }
            }
            if let Err(e) = engine.flush_hosts(now_ms()) {
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
            Command::Push {
                batch,
                token,
                reply,
            } => {
                let _ = reply.send(self.apply_as(&batch, token, now));
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
            Command::ResolveProblem {
                id,
                actor,
                note,
                reply,
            } => {
                let _ = reply.send(self.resolve_problem(id, &actor, note, now));
            }
            Command::CreateChange {
                change,
                actor,
                reply,
            } => {
                let _ = reply.send(self.create_change(change, &actor, now));
            }
            Command::External { alerts, reply } => {
                let _ = reply.send(self.external(&alerts, now));
            }
            Command::Reload {
                setup,
                router,
                wake,
                reply,
            } => {
                let _ = reply.send(self.reload(*setup, router, wake, now));
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

    /// Submits a command and waits for the engine's reply.
    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, SubmitError> {
        let rx = self.submit(make)?;
        rx.await.map_err(|_| SubmitError::Stopped)
    }

    /// Applies a validated batch pushed with agent token `token` (its
    /// [`crate::config::AgentToken::id`]); resolves once its transitions
    /// are persisted.
    pub async fn push(
        &self,
        batch: Batch,
        token: Option<u64>,
    ) -> Result<Result<PushAck, ApplyError>, SubmitError> {
        self.call(|reply| Command::Push {
            batch: Box::new(batch),
            token,
            reply,
        })
        .await
    }

    /// Acknowledges incident `id`.
    pub async fn acknowledge(
        &self,
        id: i64,
        actor: String,
        note: Option<String>,
    ) -> Result<Result<Incident, ActionError>, SubmitError> {
        self.call(|reply| Command::Acknowledge {
            id,
            actor,
            note,
            reply,
        })
        .await
    }

    /// Resolves incident `id` by hand.
    pub async fn resolve(
        &self,
        id: i64,
        actor: String,
        note: Option<String>,
    ) -> Result<Result<Incident, ActionError>, SubmitError> {
        self.call(|reply| Command::Resolve {
            id,
            actor,
            note,
            reply,
        })
        .await
    }

    /// Resolves problem `id`.
    pub async fn resolve_problem(
        &self,
        id: i64,
        actor: String,
        note: Option<String>,
    ) -> Result<Result<Problem, ActionError>, SubmitError> {
        self.call(|reply| Command::ResolveProblem {
            id,
            actor,
            note,
            reply,
        })
        .await
    }

    /// Records a planned change.
    pub async fn create_change(
        &self,
        change: NewChange,
        actor: String,
    ) -> Result<Result<Change, ActionError>, SubmitError> {
        self.call(|reply| Command::CreateChange {
            change,
            actor,
            reply,
        })
        .await
    }

    /// Applies alerts from Alertmanager's webhook.
    pub async fn external(
        &self,
        alerts: Vec<ExternalAlert>,
    ) -> Result<Result<ExternalOutcome, ApplyError>, SubmitError> {
        self.call(|reply| Command::External { alerts, reply }).await
    }

    /// Applies a reloaded configuration (see [`Engine::reload`]).
    pub async fn reload(
        &self,
        setup: Setup,
        router: Arc<Router>,
        wake: Wake,
    ) -> Result<Result<Reloaded, StoreError>, SubmitError> {
        self.call(|reply| Command::Reload {
            setup: Box::new(setup),
            router,
            wake,
            reply,
        })
        .await
    }
}

#[cfg(test)]
mod tests;
