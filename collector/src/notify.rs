//! Notifications: receivers, routing, and the outbox they are delivered from.
//!
//! # Delivery model
//! Every incident transition (and every problem opened) is written to the
//! store's `outbox` table, one row per receiver that wants it, in the same
//! transaction as the transition itself ([`crate::store::Tx::save_incident`]).
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

pub mod send;
pub mod worker;

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::incidents::{Incident, Labels, Origin, Problem};
use crate::outbox::{Enqueue, Event};
use crate::rules::Matcher;

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
}

pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(300);
pub const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_CLOSE_CODE: &str = "Solved (Permanently)";
pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

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
pub fn backoff(attempts: u32, max: Duration, jitter: f64) -> Duration {
    let base = Duration::from_secs(1)
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(30))
        .min(max);
    base.mul_f64(1.0 - 0.5 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incidents::{EventKind, IncidentEvent};

    fn glob(p: &str) -> globset::GlobSet {
        let mut b = globset::GlobSetBuilder::new();
        b.add(globset::Glob::new(p).expect("glob"));
        b.build().expect("globset")
    }

    fn receiver(name: &str, kind: Kind, route: Route) -> Receiver {
        Receiver {
            name: name.into(),
            kind,
            route,
            max_backoff: DEFAULT_MAX_BACKOFF,
            give_up_after: DEFAULT_GIVE_UP_AFTER,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Incident 7 (P2) with the timeline `kinds`.
    pub(crate) fn incident(kinds: &[EventKind]) -> Incident {
        let mut i = Incident::open(
            crate::incidents::Opening {
                origin: crate::incidents::Origin::Rule,
                rule: "disk_full".into(),
                host: "web-1".into(),
                labels: Labels::from([("mountpoint".into(), "/".into())]),
                impact: 1,
                urgency: 2,
                summary: "disk full".into(),
                description: "d".into(),
                value: Some(0.97),
                threshold: Some(0.9),
                started_ms: 1_000,
            },
            2_000,
        );
        i.id = 7;
        i.fingerprint = "abcd".into();
        i.events = kinds
            .iter()
            .map(|&kind| IncidentEvent {
                at_ms: 2_000,
                kind,
                actor: "vedette".into(),
                note: None,
            })
            .collect();
        i
    }

    #[test]
    fn routes_by_priority_rule_and_host_labels() {
        let prod = Labels::from([("env".into(), "prod".into())]);
        let dev = Labels::from([("env".into(), "dev".into())]);
        let route = Route {
            min_priority: 2,
            rules: glob("disk_*"),
            host_labels: vec![("env".into(), Matcher::parse("prod").expect("matcher"))],
        };
        assert!(route.matches(2, "disk_full", &prod));
        assert!(route.matches(1, "disk_full", &prod));
        assert!(!route.matches(3, "disk_full", &prod), "P3 is below P2");
        assert!(!route.matches(1, "cpu_high", &prod), "rule glob");
        assert!(!route.matches(1, "disk_full", &dev), "host label");
        assert!(Route::default().matches(5, "anything", &Labels::new()));
    }

    #[test]
    fn rows_per_new_event_and_receiver_with_stable_keys() {
        let router = Router {
            receivers: vec![
                receiver(
                    "hook",
                    Kind::Webhook {
                        url: "http://h".into(),
                        secret: None,
                    },
                    Route::default(),
                ),
                receiver(
                    "am",
                    Kind::Alertmanager {
                        url: "http://am".into(),
                    },
                    Route::default(),
                ),
                receiver(
                    "p1-only",
                    Kind::Webhook {
                        url: "http://h".into(),
                        secret: None,
                    },
                    Route {
                        min_priority: 1,
                        ..Route::default()
                    },
                ),
            ],
        };
        let i = incident(&[
            EventKind::Opened,
            EventKind::Acknowledged,
            EventKind::Restored,
            EventKind::Resolved,
        ]);
        let rows = router.incident_rows(&i, 1, &Labels::new());
        let got: Vec<(&str, Event, &str)> = rows
            .iter()
            .map(|r| (r.receiver.as_str(), r.event, r.key.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("hook", Event::Acknowledged, "vedette-abcd-7-1"),
                ("hook", Event::Resolved, "vedette-abcd-7-3"),
                ("am", Event::Resolved, "vedette-abcd-7-3"),
            ],
            "restored makes no row, Alertmanager has no acknowledge, P2 skips p1-only"
        );
        let body: serde_json::Value = serde_json::from_str(&rows[0].payload).expect("json");
        assert_eq!(body["event"], "acknowledged");
        assert_eq!(body["id"], 7);
        assert_eq!(body["labels"]["mountpoint"], "/");
        assert_eq!(rows[0].subject, "incident:7");
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_jitters_down_to_half() {
        let max = Duration::from_secs(300);
        assert_eq!(backoff(1, max, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(2, max, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(5, max, 0.0), Duration::from_secs(16));
        assert_eq!(backoff(20, max, 0.0), max);
        assert_eq!(backoff(u32::MAX, max, 0.0), max);
        assert_eq!(backoff(5, max, 1.0), Duration::from_secs(8));
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
