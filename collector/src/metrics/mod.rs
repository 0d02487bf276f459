//! The collector's `/metrics`: its own counters, gauges and KPI histograms
//! in a private [`Registry`], plus everything per host and per service, read
//! from [`State`] at scrape time by `HostsExport` (a custom collector, so a
//! hundred thousand series cost nothing between scrapes): liveness and
//! check state, availability over the rolling windows, service levels, and
//! every host's latest samples. Hosts silent for `forget_hosts_after`
//! disappear.
//!
//! Names are contracts (DESIGN.md → KPIs). Agent samples are exported as
//! `vedette_<name>{host, …labels}`, except what would make the exposition
//! lie or fail `promtool check metrics`, whatever agents send: a name that
//! shadows one of the collector's own families or a series Prometheus
//! derives from one (`_sum`, `_count`, `_bucket`, `_created`, `_total`), a
//! name promtool's linter refuses (camelCase, a unit that is not a base unit
//! or is abbreviated, a metric type in the name, a histogram's or summary's
//! suffix), and label names it refuses (camelCase, `le`, `quantile`). Those
//! series stay usable by rules; they are left out of `/metrics` and counted
//! in `vedette_metrics_withheld_series{reason}`.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};

use prometheus::core::Collector;
use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::availability::{Avail, WINDOWS};
use crate::incidents::{priority_label, EventKind, Kpi, Observation, Recorded, Resolution};
use crate::kpi::{self, Planned, Reporting, ServiceReport};
use crate::state::{Limit, State};

mod hosts;

#[cfg(test)]
use self::hosts::{lint, Family};
use self::hosts::{reserved_names, HostsExport, WITHHELD};

/// Outcomes of `POST /api/v1/push`, the values of `outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    Accepted,
    Duplicate,
    Invalid,
    TooLarge,
    Unsupported,
    Unauthorized,
    Forbidden,
    Throttled,
    Unavailable,
    /// Refused whole over a state limit (`vedette_ingest_limited_total`).
    Limited,
}

impl IngestOutcome {
    pub const ALL: [IngestOutcome; 10] = [
        IngestOutcome::Accepted,
        IngestOutcome::Duplicate,
        IngestOutcome::Invalid,
        IngestOutcome::TooLarge,
        IngestOutcome::Unsupported,
        IngestOutcome::Unauthorized,
        IngestOutcome::Forbidden,
        IngestOutcome::Throttled,
        IngestOutcome::Unavailable,
        IngestOutcome::Limited,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IngestOutcome::Accepted => "accepted",
            IngestOutcome::Duplicate => "duplicate",
            IngestOutcome::Invalid => "invalid",
            IngestOutcome::TooLarge => "too_large",
            IngestOutcome::Unsupported => "unsupported",
            IngestOutcome::Unauthorized => "unauthorized",
            IngestOutcome::Forbidden => "forbidden",
            IngestOutcome::Throttled => "throttled",
            IngestOutcome::Unavailable => "unavailable",
            IngestOutcome::Limited => "limited",
        }
    }
}

/// Where the engine met a failure it isolated: the values of `stage` in
/// `vedette_engine_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// A transition a push caused.
    Push,
    /// A time-driven transition (`for` or `resolve_after` elapsed, a heartbeat missing).
    Tick,
    /// An alert from Alertmanager's webhook.
    External,
    /// A breach whose planned window ended.
    Suppression,
    /// Deciding a change's outcome.
    Change,
    /// Closing a resolved incident.
    Close,
    /// Persisting hosts, availability changes and the alive mark.
    Flush,
    /// Pruning availability history past the horizon.
    Prune,
}

impl Stage {
    pub const ALL: [Stage; 8] = [
        Stage::Push,
        Stage::Tick,
        Stage::External,
        Stage::Suppression,
        Stage::Change,
        Stage::Close,
        Stage::Flush,
        Stage::Prune,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Push => "push",
            Stage::Tick => "tick",
            Stage::External => "external",
            Stage::Suppression => "suppression",
            Stage::Change => "change",
            Stage::Close => "close",
            Stage::Flush => "flush",
            Stage::Prune => "prune",
        }
    }
}

/// The collector's metrics.
pub struct Metrics {
    registry: Registry,
    /// The collector's own family names and every series name derived from
    /// them: agent samples are never exported under these.
    reserved: HashSet<String>,
    hosts: HostsExport,
    pub incidents_open: IntGaugeVec,
    pub incidents_opened: IntCounterVec,
    pub incidents_resolved: IntCounterVec,
    pub ingest_batches: IntCounterVec,
    pub ingest_samples: IntCounter,
    pub ingest_limited: IntCounterVec,
    pub engine_errors: IntCounterVec,
    pub problems_open: IntGauge,
    pub changes: IntCounterVec,
    pub suppressed: IntCounterVec,
    pub notifications: IntCounterVec,
    pub notification_queue: IntGaugeVec,
    pub notification_oldest: GaugeVec,
    /// Detection, acknowledge, restore, resolution (in [`Kpi`] order).
    kpi: [HistogramVec; 4],
    /// The console's fleet summary, refreshed in the background
    /// ([`Metrics::refresh_summary`]): `(computed at, summary)`.
    summary: std::sync::RwLock<Option<(i64, Summary)>>,
    /// When a page last asked for the summary: the refresh runs only while
    /// someone is looking.
    summary_read_ms: std::sync::atomic::AtomicI64,
    /// The status page's services, as last computed.
    status: std::sync::RwLock<Option<StatusCache>>,
}

/// The status page's services computed at `at` for `names`.
#[derive(Debug, Clone)]
struct StatusCache {
    at: i64,
    names: Vec<String>,
    statuses: Vec<kpi::ServiceStatus>,
}

/// What the console's Now page counts over the whole fleet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    pub hosts: kpi::HostCounts,
    /// Services burning their error budget over the last hour.
    pub burning: usize,
}

/// How old a summary may be before a page computes it itself (the
/// background refresh runs every [`SUMMARY_EVERY`]).
pub(crate) const SUMMARY_MAX_AGE_MS: i64 = 15_000;
/// How long after a page last read the summary the refresh keeps running.
pub(crate) const SUMMARY_WATCHED_MS: i64 = 60_000;
/// How often the collector refreshes the console's summary.
pub const SUMMARY_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a computed status page is served again (its `max-age` too).
pub(crate) const STATUS_MAX_AGE_MS: i64 = 30_000;

/// The outcomes of `vedette_notifications_total`.
pub const NOTIFY_OUTCOMES: [&str; 4] = ["delivered", "retried", "rejected", "expired"];

/// Histogram buckets for incident KPIs: 1 s to 7 d.
pub const KPI_BUCKETS: [f64; 16] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14_400.0, 43_200.0,
    86_400.0, 259_200.0, 604_800.0,
];

impl Metrics {
    /// Registers every family; per-host and per-service families are read
    /// from `state` at scrape time as `reporting` says.
    pub fn new(state: Arc<RwLock<State>>, reporting: Arc<Reporting>) -> Metrics {
        let mut f = Families::default();
        let pr = &["priority", "rule"][..];
        let m = Metrics {
            summary: std::sync::RwLock::new(None),
            summary_read_ms: std::sync::atomic::AtomicI64::new(i64::MIN),
            status: std::sync::RwLock::new(None),
            kpi: kpi_histograms(&mut f),
            incidents_open: f.gauge_vec(
                "vedette_incidents_open",
                "Live (open or acknowledged) incidents.",
                pr,
            ),
            incidents_opened: f.counter_vec("vedette_incidents_opened_total", "Incidents opened.", pr),
            incidents_resolved: f.counter_vec(
                "vedette_incidents_resolved_total",
                "Incidents resolved, automatically when the condition cleared or manually.",
                &["priority", "rule", "resolution"],
            ),
            ingest_batches: f.counter_vec(
                "vedette_ingest_batches_total",
                "Push requests by outcome.",
                &["outcome"],
            ),
            ingest_samples: f.add(
                IntCounter::new(
                    "vedette_ingest_samples_total",
                    "Samples and check results applied from accepted batches.",
                )
                .expect("static metric definition"),
            ),
            ingest_limited: f.counter_vec(
                "vedette_ingest_limited_total",
                "Pushes and webhook calls refused whole because they would take what the collector holds past a limit, by limit (the keys of `limits:`).",
                &["limit"],
            ),
            engine_errors: f.counter_vec(
                "vedette_engine_errors_total",
                "Failures the engine isolated, by stage: the failing subject was rolled back and is retried; every other subject went on.",
                &["stage"],
            ),
            problems_open: f.add(
                IntGauge::new(
                    "vedette_problems_open",
                    "Open problems (recurring incidents of one fingerprint).",
                )
                .expect("static metric definition"),
            ),
            changes: f.counter_vec(
                "vedette_changes_total",
                "Planned changes by outcome: failed when their scope breached within verify_for after the end.",
                &["outcome"],
            ),
            suppressed: f.counter_vec(
                "vedette_incidents_suppressed_total",
                "Breaches that opened no incident because a change or maintenance window covered them.",
                &["rule"],
            ),
            notifications: f.counter_vec(
                "vedette_notifications_total",
                "Delivery attempts by receiver and outcome: delivered, retried (failed, tried again later), rejected (refused for good by a 4xx), expired (undelivered after give_up_after).",
                &["receiver", "outcome"],
            ),
            notification_queue: f.gauge_vec(
                "vedette_notification_queue_depth",
                "Notifications waiting in the outbox, per receiver.",
                &["receiver"],
            ),
            notification_oldest: f.add(
                GaugeVec::new(
                    Opts::new(
                        "vedette_notification_oldest_pending_seconds",
                        "Age of the oldest notification waiting in the outbox (0 when none), per receiver.",
                    ),
                    &["receiver"],
                )
                .expect("static metric definition"),
            ),
            reserved: HashSet::new(),
            hosts: HostsExport {
                state,
                reporting: RwLock::new(reporting),
            },
            registry: Registry::new(),
        };
        let Families { registry, mut own } = f;
        own.extend(HostsExport::FAMILIES.iter().map(|f| f.0.to_string()));
        own.insert(WITHHELD.to_string());
        let m = Metrics {
            registry,
            reserved: reserved_names(&own),
            ..m
        };
        m.start_at_zero();
        m
    }

    /// Series with a known, closed set of labels exist from the start at 0,
    /// so rate() and increase() see their first event.
    fn start_at_zero(&self) {
        for outcome in ["successful", "failed"] {
            self.changes.with_label_values(&[outcome]);
        }
        for outcome in IngestOutcome::ALL {
            self.ingest_batches.with_label_values(&[outcome.as_str()]);
        }
        for stage in Stage::ALL {
            self.engine_errors.with_label_values(&[stage.as_str()]);
        }
        for limit in Limit::ALL {
            self.ingest_limited.with_label_values(&[limit.as_str()]);
        }
        for p in 1..=5 {
            for h in &self.kpi {
                h.with_label_values(&[priority_label(p)]);
            }
        }
    }

    /// Starts every receiver's series at 0 (outcomes are a closed set).
    /// Services, maintenance and host expiry from a reloaded config.
    pub fn set_reporting(&self, reporting: Arc<Reporting>) {
        *self
            .hosts
            .reporting
            .write()
            .unwrap_or_else(|e| e.into_inner()) = reporting;
    }

    pub fn receivers<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            for outcome in NOTIFY_OUTCOMES {
                self.notifications.with_label_values(&[name, outcome]);
            }
            self.notification_queue.with_label_values(&[name]);
            self.notification_oldest.with_label_values(&[name]);
        }
    }

    /// Sets the outbox gauges of `receivers` from `(receiver, pending,
    /// oldest created)` at `now_ms`; receivers not listed have nothing pending.
    pub fn outbox<'a>(
        &self,
        receivers: impl IntoIterator<Item = &'a str>,
        pending: &[(String, u64, i64)],
        now_ms: i64,
    ) {
        for name in receivers {
            self.notification_queue.with_label_values(&[name]).set(0);
            self.notification_oldest.with_label_values(&[name]).set(0.0);
        }
        for (receiver, n, oldest) in pending {
            self.notification_queue
                .with_label_values(&[receiver])
                .set(*n as i64);
            self.notification_oldest
                .with_label_values(&[receiver])
                .set((now_ms - oldest).max(0) as f64 / 1000.0);
        }
    }

    /// Records one incident KPI measurement.
    /// Counts what a committed transaction recorded (a domain event): the
    /// KPI measurements it makes and, from an incident's new timeline
    /// entries, `vedette_incidents_opened_total` (opened), the
    /// `vedette_incidents_open` gauge (opened or reopened: up; resolved:
    /// down) and `vedette_incidents_resolved_total`.
    pub fn recorded(&self, r: &Recorded) {
        for o in r.observations() {
            self.observe(&o);
        }
        let Recorded::Incident { incident: i, from } = r else {
            return;
        };
        let labels = [i.priority_label(), i.rule.as_str()];
        for e in i.events.iter().skip(*from) {
            match e.kind {
                EventKind::Opened => {
                    self.incidents_opened.with_label_values(&labels).inc();
                    self.incidents_open.with_label_values(&labels).inc();
                }
                EventKind::Reopened => self.incidents_open.with_label_values(&labels).inc(),
                EventKind::Resolved => {
                    self.incidents_open.with_label_values(&labels).dec();
                    let res = i.resolution.unwrap_or(Resolution::Auto).as_str();
                    self.incidents_resolved
                        .with_label_values(&[labels[0], labels[1], res])
                        .inc();
                }
                _ => {}
            }
        }
    }

    pub fn observe(&self, o: &Observation) {
        let h = match o.kpi {
            Kpi::Detection => &self.kpi[0],
            Kpi::Acknowledge => &self.kpi[1],
            Kpi::Restore => &self.kpi[2],
            Kpi::Resolution => &self.kpi[3],
        };
        h.with_label_values(&[priority_label(o.priority)])
            .observe(o.seconds);
    }

    /// Every configured service at `now_ms` (`GET /api/v1/services`).
    pub fn services(&self, now_ms: i64) -> Vec<ServiceReport> {
        let state = self.hosts.snapshot();
        kpi::services(&self.hosts.reporting(), &state, now_ms)
    }

    /// The hosts `q` selects at `now_ms` (`GET /api/v1/hosts`).
    pub(crate) fn hosts(&self, now_ms: i64, q: &kpi::HostQuery) -> Vec<kpi::HostReport> {
        let state = self.hosts.snapshot();
        kpi::hosts(&self.hosts.reporting(), &state, now_ms, q)
    }

    /// The fleet summary the console's Now shows: the one the background
    /// refresh computed, or computed now when that is older than
    /// [`SUMMARY_MAX_AGE_MS`] (at 10,000 hosts it takes tens of ms).
    pub(crate) fn summary(&self, now_ms: i64) -> Summary {
        self.summary_read_ms
            .store(now_ms, std::sync::atomic::Ordering::Relaxed);
        let cached = *self.summary.read().unwrap_or_else(|e| e.into_inner());
        match cached {
            Some((at, s)) if now_ms - at <= SUMMARY_MAX_AGE_MS => s,
            _ => self.refresh_summary(now_ms),
        }
    }

    /// The background refresh: recomputes the summary while a console page
    /// asked for it within [`SUMMARY_WATCHED_MS`], else does nothing (an
    /// unwatched collector spends nothing on it).
    pub(crate) fn refresh_summary_if_watched(&self, now_ms: i64) {
        let read = self
            .summary_read_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        if now_ms.saturating_sub(read) <= SUMMARY_WATCHED_MS {
            self.refresh_summary(now_ms);
        }
    }

    /// Computes the fleet summary at `now_ms` and keeps it.
    pub(crate) fn refresh_summary(&self, now_ms: i64) -> Summary {
        let state = self.hosts.snapshot();
        let reporting = self.hosts.reporting();
        let s = Summary {
            hosts: kpi::host_counts(&reporting, &state, now_ms),
            burning: kpi::services_burning(&reporting, &state, now_ms),
        };
        *self.summary.write().unwrap_or_else(|e| e.into_inner()) = Some((now_ms, s));
        s
    }

    /// Each service's availability per day (the console's Services), not
    /// cached and without incidents: what the status page shows, computed now.
    pub(crate) fn service_history(&self, names: &[String], now_ms: i64) -> Vec<kpi::ServiceStatus> {
        let state = self.hosts.snapshot();
        kpi::service_status(
            &self.hosts.reporting(),
            &state,
            names,
            &[],
            kpi::HISTORY_DAYS,
            &[],
            now_ms,
        )
    }

    /// What services, maintenance and forgetting are configured as now.
    pub(crate) fn reporting(&self) -> Arc<kpi::Reporting> {
        self.hosts.reporting()
    }

    /// The public status page's services over [`kpi::STATUS_DAYS`] days,
    /// the days before the in-memory horizon from `stored`.
    pub(crate) fn service_status(
        &self,
        names: &[String],
        live: &[(String, i64)],
        stored: &[kpi::ServiceDay],
        now_ms: i64,
    ) -> Vec<kpi::ServiceStatus> {
        if let Some(c) = &*self.status.read().unwrap_or_else(|e| e.into_inner()) {
            if now_ms - c.at <= STATUS_MAX_AGE_MS && c.names == names {
                return c.statuses.clone();
            }
        }
        let state = self.hosts.snapshot();
        let statuses = kpi::service_status(
            &self.hosts.reporting(),
            &state,
            names,
            live,
            kpi::STATUS_DAYS,
            stored,
            now_ms,
        );
        *self.status.write().unwrap_or_else(|e| e.into_inner()) = Some(StatusCache {
            at: now_ms,
            names: names.to_vec(),
            statuses: statuses.clone(),
        });
        statuses
    }

    /// `host`'s last 30 days of heartbeat and planned time.
    pub(crate) fn host_bar(
        &self,
        host: &str,
        now_ms: i64,
    ) -> Option<Vec<(i64, i64, &'static str)>> {
        let state = self.hosts.snapshot();
        kpi::host_bar(&self.hosts.reporting(), &state, host, now_ms)
    }

    /// Counts one refusal over a state limit.
    pub fn limited(&self, limit: Limit) {
        self.ingest_limited
            .with_label_values(&[limit.as_str()])
            .inc();
    }

    /// Counts one push outcome.
    pub fn ingest(&self, outcome: IngestOutcome) {
        self.ingest_batches
            .with_label_values(&[outcome.as_str()])
            .inc();
    }

    /// The Prometheus text exposition of everything, at `now_ms`.
    pub fn render(&self, now_ms: i64) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail on I/O; a malformed family is a bug.
        if let Err(e) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        self.hosts.write(now_ms, &self.reserved, &mut out);
        out
    }
}

/// The collector's own families, registered as they are made; their names
/// are reserved (agent samples are never exported under them).
#[derive(Default)]
struct Families {
    registry: Registry,
    own: HashSet<String>,
}

impl Families {
    fn add<C: Collector + Clone + 'static>(&mut self, c: C) -> C {
        for d in c.desc() {
            self.own.insert(d.fq_name.clone());
        }
        // Names are static and distinct, so registration cannot fail.
        let _ = self.registry.register(Box::new(c.clone()));
        c
    }

    fn counter_vec(&mut self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        let c = IntCounterVec::new(Opts::new(name, help), labels);
        self.add(c.expect("static metric definition"))
    }

    fn gauge_vec(&mut self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        let g = IntGaugeVec::new(Opts::new(name, help), labels);
        self.add(g.expect("static metric definition"))
    }
}

/// The incident KPI histograms, in [`Kpi`] order.
fn kpi_histograms(f: &mut Families) -> [HistogramVec; 4] {
    [
        (
            "vedette_incident_detection_seconds",
            "Time to detect (MTTD): detected − started (first breaching sample), per incident.",
        ),
        (
            "vedette_incident_acknowledge_seconds",
            "Time to acknowledge (MTTA): acknowledged − detected (opened or reopened).",
        ),
        (
            "vedette_incident_restore_seconds",
            "Time to restore service (MTRS): restored (condition cleared) − started.",
        ),
        (
            "vedette_incident_resolution_seconds",
            "Time to resolve (MTTR): resolved − detected (opened or reopened).",
        ),
    ]
    .map(|(name, help)| {
        let opts = HistogramOpts::new(name, help).buckets(KPI_BUCKETS.to_vec());
        f.add(HistogramVec::new(opts, &["priority"]).expect("static metric definition"))
    })
}

#[cfg(test)]
mod tests;
