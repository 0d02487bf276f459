//! Notifications: receivers, routing, and the outbox they are delivered from.
//!
//! # Delivery model
//! Every incident transition (and every problem opened) is written to the
//! store's `outbox` table, one row per receiver that wants it, in the same
//! transaction as the transition itself ([`commit`]: the store records the
//! transaction's domain events, [`Outbox`] turns them into rows).
//! A row holds a snapshot of what to send (the incident as the API shows it
//! plus `event`), so a receiver gets the incident as it was at the transition
//! even when it is delivered hours later.
//!
//! One [`worker`] per receiver delivers its rows: in order per incident (the
//! oldest pending row of an incident blocks the later ones) and concurrently
//! across incidents, with exponential backoff and jitter up to
//! `max_backoff`, until delivered, refused for good (a 4xx other than 408 and
//! 429), or `give_up_after` has passed. A row is marked delivered only after
//! the receiver answered, so a collector killed at any instant sends again at
//! most what was in flight, with the same idempotency key.
//!
//! - [`send`]: the requests each kind makes (pure, checked against the
//!   documented shapes in tests) and how answers are classified.
//! - [`worker`]: the async delivery loop.

pub(crate) mod send;
pub(crate) mod worker;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::incidents::{Incident, Labels, Origin, Problem, Recorded};
use crate::outbox::{Enqueue, Event};
use crate::rules::Matcher;
use crate::store::{Store, StoreError, Tx};

/// A secret read from the configuration (or its `*_file`). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where and how a receiver delivers.
#[derive(Debug, Clone)]
pub enum Kind {
    /// JSON body signed with HMAC-SHA256 when `secret` is set.
    Webhook { url: String, secret: Option<Secret> },
    /// Alertmanager API v2.
    Alertmanager { url: String },
    /// PagerDuty Events API v2.
    PagerDuty { url: String, routing_key: Secret },
    /// ServiceNow Table API on `incident`.
    ServiceNow {
        instance_url: String,
        username: String,
        password: Secret,
        close_code: String,
    },
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Webhook { .. } => "webhook",
            Kind::Alertmanager { .. } => "alertmanager",
            Kind::PagerDuty { .. } => "pagerduty",
            Kind::ServiceNow { .. } => "servicenow",
        }
    }

    /// Whether this kind has anything to say about `event`: Alertmanager
    /// knows firing and resolved only; PagerDuty and ServiceNow have no
    /// closed step (they close resolved records themselves) and no problems.
    pub fn wants(&self, event: Event) -> bool {
        match self {
            Kind::Webhook { .. } => true,
            Kind::Alertmanager { .. } => {
                matches!(event, Event::Opened | Event::Reopened | Event::Resolved)
            }
            Kind::PagerDuty { .. } | Kind::ServiceNow { .. } => {
                !matches!(event, Event::Closed | Event::ProblemOpened)
            }
        }
    }
}

/// Which incidents a receiver gets.
#[derive(Debug, Clone)]
pub struct Route {
    /// Priorities 1 ..= this (1 is the highest).
    pub min_priority: u8,
    /// Rule name globs; empty or `*` means every rule.
    pub rules: globset::GlobSet,
    pub host_labels: Vec<(String, Matcher)>,
}

impl Default for Route {
    fn default() -> Self {
        Route {
            min_priority: 5,
            rules: globset::GlobSet::empty(),
            host_labels: Vec::new(),
        }
    }
}

impl Route {
    pub fn matches(&self, priority: u8, rule: &str, host_labels: &Labels) -> bool {
        priority <= self.min_priority
            && (self.rules.is_empty() || self.rules.is_match(rule))
            && self
                .host_labels
                .iter()
                .all(|(k, m)| m.matches(host_labels.get(k).map(String::as_str)))
    }
}

/// One configured receiver (`notify:`).
#[derive(Debug, Clone)]
pub struct Receiver {
    pub name: String,
    pub kind: Kind,
    pub route: Route,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
    /// A row still undelivered this long after its transition is dropped.
    pub give_up_after: Duration,
    /// Per request.
    pub timeout: Duration,
    /// Extra trust anchors for a private CA (`ca_file`), beside the public roots.
    pub ca_certs: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// False: the server's certificate is not checked (`tls_verify: false`).
    pub tls_verify: bool,
}

pub(crate) const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(300);
pub(crate) const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub(crate) const DEFAULT_CLOSE_CODE: &str = "Solved (Permanently)";
pub(crate) const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// The configured receivers, as the store needs them to fill the outbox.
#[derive(Debug, Clone, Default)]
pub struct Router {
    pub receivers: Vec<Receiver>,
}

impl Router {
    /// Whether routing looks at host labels (the store then keeps them at hand).
    pub fn needs_host_labels(&self) -> bool {
        self.receivers
            .iter()
            .any(|r| !r.route.host_labels.is_empty())
    }

    /// Rows for the timeline entries `incident.events[from..]`.
    pub fn incident_rows(
        &self,
        incident: &Incident,
        from: usize,
        host_labels: &Labels,
    ) -> Vec<Enqueue> {
        let mut out = Vec::new();
        let targets: Vec<&Receiver> = self
            .receivers
            .iter()
            .filter(|r| {
                r.route
                    .matches(incident.priority, &incident.rule, host_labels)
                    // What came from Alertmanager does not go back to it (a loop).
                    && !(matches!(r.kind, Kind::Alertmanager { .. })
                        && incident.origin == Origin::Alertmanager)
            })
            .collect();
        if targets.is_empty() {
            return out;
        }
        let mut view = None;
        for (seq, e) in incident.events.iter().enumerate().skip(from) {
            let Some(event) = Event::of(e.kind) else {
                continue;
            };
            let wanted: Vec<&&Receiver> = targets.iter().filter(|r| r.kind.wants(event)).collect();
            if wanted.is_empty() {
                continue;
            }
            let view =
                view.get_or_insert_with(|| crate::views::IncidentView::from(incident.clone()));
            let payload = body(event, &*view);
            for r in wanted {
                out.push(Enqueue {
                    receiver: r.name.clone(),
                    subject: format!("incident:{}", incident.id),
                    event,
                    key: format!("vedette-{}-{}-{seq}", incident.fingerprint, incident.id),
                    payload: payload.clone(),
                });
            }
        }
        out
    }

    /// Rows for a problem just opened.
    pub fn problem_rows(
        &self,
        problem: &Problem,
        priority: u8,
        host_labels: &Labels,
    ) -> Vec<Enqueue> {
        let targets = self.receivers.iter().filter(|r| {
            r.kind.wants(Event::ProblemOpened)
                && r.route.matches(priority, &problem.rule, host_labels)
        });
        let mut payload = None;
        targets
            .map(|r| Enqueue {
                receiver: r.name.clone(),
                subject: format!("problem:{}", problem.id),
                event: Event::ProblemOpened,
                key: format!("vedette-problem-{}", problem.id),
                payload: payload
                    .get_or_insert_with(|| {
                        body(
                            Event::ProblemOpened,
                            crate::views::ProblemView::from(problem.clone()),
                        )
                    })
                    .clone(),
            })
            .collect()
    }
}

/// Runs `f` in one transaction of `store` and writes the outbox rows its
/// domain events make (when there are receivers) in that same transaction,
/// so a transition and what it tells receivers commit together or not at
/// all; once committed, wakes the workers if rows were added. Returns `f`'s
/// value and the transaction's domain events.
pub(crate) fn commit<T>(
    store: &mut Store,
    outbox: Option<&Outbox>,
    f: impl FnOnce(&Tx<'_>) -> Result<T, StoreError>,
) -> Result<(T, Vec<Recorded>), StoreError> {
    let (out, recorded, enqueued) = store.write(|tx| {
        let out = f(tx)?;
        let recorded = tx.take_recorded();
        let enqueued = match outbox {
            Some(o) => o.enqueue(tx, &recorded)?,
            None => 0,
        };
        Ok((out, recorded, enqueued))
    })?;
    if let (Some(o), true) = (outbox, enqueued > 0) {
        o.wake();
    }
    Ok((out, recorded))
}

/// Wakes the delivery workers.
pub(crate) type Wake = Arc<dyn Fn() + Send + Sync>;

/// Turns a transaction's domain events into outbox rows, in that same
/// transaction, so a transition and what it tells receivers commit
/// together. Keeps hosts' labels when a route looks at them.
pub struct Outbox {
    router: Arc<Router>,
    host_labels: HashMap<String, Labels>,
    wake: Wake,
}

impl Outbox {
    /// Routes to `router`'s receivers; `hosts` are the known hosts' labels
    /// (read only when a route needs them), `wake` is called after a commit
    /// that enqueued rows.
    pub fn new(
        router: Arc<Router>,
        wake: Wake,
        hosts: impl FnOnce() -> Result<Vec<(String, Labels)>, StoreError>,
    ) -> Result<Outbox, StoreError> {
        let host_labels = if router.needs_host_labels() {
            hosts()?.into_iter().collect()
        } else {
            HashMap::new()
        };
        Ok(Outbox {
            router,
            host_labels,
            wake,
        })
    }

    /// Tells routing a host's current labels (a no-op unless a receiver
    /// routes by host labels).
    pub fn note_host_labels(&mut self, host: &str, labels: &Labels) {
        if self.router.needs_host_labels() && self.host_labels.get(host) != Some(labels) {
            self.host_labels.insert(host.to_string(), labels.clone());
        }
    }

    /// Writes the rows `recorded` makes in `tx`; returns how many were new.
    pub fn enqueue(&self, tx: &Tx<'_>, recorded: &[Recorded]) -> Result<usize, StoreError> {
        let mut added = 0;
        for r in recorded {
            added += match r {
                Recorded::Incident { incident, from } => {
                    let labels = self.labels_of(&incident.host);
                    let rows = self.router.incident_rows(incident, *from, labels);
                    let at = incident.events.last().map_or(0, |e| e.at_ms);
                    tx.enqueue(&rows, at)?
                }
                Recorded::ProblemOpened(p) => {
                    // A problem is as urgent as the latest incident it links.
                    let priority = match p.incident_ids.last() {
                        Some(&id) => tx.incident_priority(id)?.unwrap_or(1),
                        None => 1,
                    };
                    let rows = self
                        .router
                        .problem_rows(p, priority, self.labels_of(&p.host));
                    tx.enqueue(&rows, p.opened_at_ms)?
                }
            };
        }
        Ok(added)
    }

    fn wake(&self) {
        (self.wake)()
    }

    fn labels_of(&self, host: &str) -> &Labels {
        static NONE: Labels = Labels::new();
        self.host_labels.get(host).unwrap_or(&NONE)
    }
}

/// `{"event": …, <view's fields>}`.
fn body(event: Event, view: impl Serialize) -> String {
    #[derive(Serialize)]
    struct Body<V> {
        event: Event,
        #[serde(flatten)]
        view: V,
    }
    // Views are plain data (strings, numbers, maps with string keys).
    serde_json::to_string(&Body { event, view }).expect("views serialize")
}

/// The wait before attempt `attempts + 1`: 1 s doubled per failed attempt,
/// capped at `max`, then jittered down to half at random (so receivers
/// coming back are not hit by every collector at once).
pub(crate) fn backoff(attempts: u32, max: Duration, jitter: f64) -> Duration {
    let base = Duration::from_secs(1)
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(30))
        .min(max);
    base.mul_f64(1.0 - 0.5 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests;
