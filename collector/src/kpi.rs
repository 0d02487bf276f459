//! Service levels as `/metrics` and `GET /api/v1/services` report them:
//! availability per host, per check and per configured service over the
//! rolling windows, error budget and burn rate, read from [`State`]'s
//! timelines at the time of the question (see [`crate::availability`] for
//! the arithmetic).

use std::collections::BTreeMap;
use std::time::Duration;

use globset::GlobSet;
use serde::Serialize;

use crate::availability::{
    self, merge, Avail, Mode, Tally, Timeline, BURN_WINDOWS, HORIZON, WINDOWS,
};
use crate::incidents::Labels;
use crate::state::{HostState, State};
use crate::windows::{Maintenance, PlannedSpan, Scope};
use vedette_protocol::clock::duration_ms;

/// A configured service: the checks it is made of and its SLA target.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    /// SLA target as a ratio, e.g. 0.999.
    pub target: f64,
    pub scope: Scope,
    /// Check names or globs, as written.
    pub checks: Vec<String>,
    pub check_set: GlobSet,
    pub mode: Mode,
}

impl Service {
    fn has_check(&self, name: &str) -> bool {
        self.check_set.is_match(name)
    }
}

/// What the reports need from the configuration.
#[derive(Debug, Clone)]
pub struct Reporting {
    pub services: Vec<Service>,
    pub maintenance: Vec<Maintenance>,
    /// Hosts silent for longer disappear from `/metrics` and the services.
    pub forget_after: Duration,
}

/// Default of `forget_hosts_after`.
pub(crate) const FORGET_AFTER: Duration = Duration::from_secs(7 * 86_400);

/// Default of `forget_series_after`.
pub(crate) const FORGET_SERIES_AFTER: Duration = Duration::from_secs(3_600);

impl Default for Reporting {
    fn default() -> Self {
        Reporting {
            services: Vec::new(),
            maintenance: Vec::new(),
            forget_after: FORGET_AFTER,
        }
    }
}

/// Planned time (changes and maintenance occurrences) within the horizon,
/// computed once per report and then asked per host.
pub(crate) struct Planned<'a> {
    maintenance: Vec<(&'a Scope, Vec<(i64, i64)>)>,
    changes: &'a [PlannedSpan],
}

impl<'a> Planned<'a> {
    pub(crate) fn new(reporting: &'a Reporting, state: &'a State, now_ms: i64) -> Planned<'a> {
        let from = now_ms - duration_ms(HORIZON);
        Planned {
            maintenance: reporting
                .maintenance
                .iter()
                .map(|m| (&m.scope, m.occurrences(from, now_ms)))
                .filter(|(_, o)| !o.is_empty())
                .collect(),
            changes: &state.changes,
        }
    }

    /// The planned spans covering `host`, merged.
    pub(crate) fn for_host(&self, host: &str, labels: &Labels) -> Vec<(i64, i64)> {
        let mut spans = Vec::new();
        for (scope, occ) in &self.maintenance {
            if scope.covers(host, labels) {
                spans.extend_from_slice(occ);
            }
        }
        for c in self.changes {
            if c.scope.covers(host, labels) {
                spans.push((c.start_ms, c.end_ms));
            }
        }
        merge(spans)
    }
}

/// One window of one subject.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowReport {
    pub window: &'static str,
    /// up / (up + down); absent when nothing was observed in agreed time.
    pub availability: Option<f64>,
    pub up_seconds: f64,
    pub down_seconds: f64,
    pub unknown_seconds: f64,
    pub planned_seconds: f64,
    /// Services only: 1 − (1 − availability) / (1 − target).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_budget_remaining: Option<f64>,
}

impl WindowReport {
    fn new(window: &'static str, t: Tally, target: Option<f64>) -> WindowReport {
        let availability = t.ratio();
        WindowReport {
            window,
            availability,
            up_seconds: t.up_ms as f64 / 1000.0,
            down_seconds: t.down_ms as f64 / 1000.0,
            unknown_seconds: t.unknown_ms as f64 / 1000.0,
            planned_seconds: t.planned_ms as f64 / 1000.0,
            error_budget_remaining: target
                .zip(availability)
                .map(|(target, a)| availability::budget_remaining(a, target)),
        }
    }
}

/// A service over every window, as `GET /api/v1/services` returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceReport {
    pub name: String,
    pub target: f64,
    pub mode: Mode,
    pub hosts: Vec<String>,
    pub host_labels: BTreeMap<String, String>,
    pub checks: Vec<String>,
    /// Check instances (host × check) counted now.
    pub members: usize,
    pub windows: Vec<WindowReport>,
    /// (1 − availability) / (1 − target) per burn-rate window; absent when
    /// nothing was observed.
    pub burn_rates: BTreeMap<&'static str, Option<f64>>,
}

/// True when `host` is still reported (heard from within `forget_after`).
pub(crate) fn visible(h: &HostState, reporting: &Reporting, now_ms: i64) -> bool {
    now_ms.saturating_sub(h.last_seen_ms) < duration_ms(reporting.forget_after)
}

/// `timeline` (with its planned spans) over every window.
pub(crate) fn windows(timeline: &Timeline, planned: &[(i64, i64)], now_ms: i64) -> [Tally; 4] {
    WINDOWS.map(|(_, w)| availability::tally(timeline, planned, now_ms - duration_ms(w), now_ms))
}

/// The hosts still reported (see [`visible`]), sorted by name.
pub(crate) fn visible_hosts<'a>(
    reporting: &Reporting,
    state: &'a State,
    now_ms: i64,
) -> Vec<(&'a String, &'a HostState)> {
    let mut hosts: Vec<_> = state
        .hosts
        .iter()
        .map(|(n, h)| (n, &**h))
        .filter(|(_, h)| visible(h, reporting, now_ms))
        .collect();
    hosts.sort_by(|a, b| a.0.cmp(b.0));
    hosts
}

/// Every configured service at `now_ms`.
pub(crate) fn services(reporting: &Reporting, state: &State, now_ms: i64) -> Vec<ServiceReport> {
    let planned = Planned::new(reporting, state, now_ms);
    let hosts = visible_hosts(reporting, state, now_ms);
    services_of(reporting, &hosts, &planned, now_ms)
}

/// [`services`] over hosts and planned time the caller already has.
pub(crate) fn services_of(
    reporting: &Reporting,
    hosts: &[(&String, &HostState)],
    planned: &Planned,
    now_ms: i64,
) -> Vec<ServiceReport> {
    reporting
        .services
        .iter()
        .map(|s| service(s, hosts, planned, now_ms))
        .collect()
}

fn service(
    s: &Service,
    hosts: &[(&String, &HostState)],
    planned: &Planned,
    now_ms: i64,
) -> ServiceReport {
    let of = Members::of(s, hosts, planned);
    let members = of.timelines();
    let tally = |w: Duration| {
        availability::service_tally(&members, s.mode, now_ms - duration_ms(w), now_ms)
    };
    ServiceReport {
        name: s.name.clone(),
        target: s.target,
        mode: s.mode,
        hosts: s.scope.spec.hosts.clone(),
        host_labels: s.scope.spec.host_labels.clone(),
        checks: s.checks.clone(),
        members: members.len(),
        windows: WINDOWS
            .iter()
            .map(|&(name, w)| WindowReport::new(name, tally(w), Some(s.target)))
            .collect(),
        burn_rates: BURN_WINDOWS
            .iter()
            .map(|&(name, w)| {
                let rate = tally(w)
                    .ratio()
                    .map(|a| availability::burn_rate(a, s.target));
                (name, rate)
            })
            .collect(),
    }
}

/// The collector's own downtime (between runs) per window, in seconds.
pub(crate) fn collector_downtime(state: &State, now_ms: i64) -> [f64; 4] {
    windows(&state.runs, &[], now_ms).map(|t| t.down_ms as f64 / 1000.0)
}

/// Which hosts `GET /api/v1/hosts` lists.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostQuery {
    /// Only hosts whose heartbeat is in this state.
    pub state: Option<Avail>,
    /// Only hosts sorting after this name (the previous page's last).
    pub after: Option<String>,
    /// Only this host.
    pub only: Option<String>,
    pub limit: usize,
}

/// How many hosts are in each state, and how many checks fail now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct HostCounts {
    pub up: u64,
    pub down: u64,
    pub unknown: u64,
    /// Checks whose latest result is critical.
    pub checks_failing: u64,
}

/// [`HostCounts`] over the hosts still reported.
pub(crate) fn host_counts(reporting: &Reporting, state: &State, now_ms: i64) -> HostCounts {
    let mut c = HostCounts::default();
    for h in state
        .hosts
        .values()
        .filter(|h| visible(h, reporting, now_ms))
    {
        match h.up.current() {
            Avail::Up => c.up += 1,
            Avail::Down => c.down += 1,
            Avail::Unknown => c.unknown += 1,
        }
        c.checks_failing += h
            .checks
            .values()
            .filter(|r| r.status == vedette_protocol::Status::Critical)
            .count() as u64;
    }
    c
}

/// A host's heartbeat over the last 30 days, `(start, end, kind)` with kind
/// `up`, `down`, `unknown` or `planned` (planned time drawn over the rest).
pub(crate) fn host_bar(
    reporting: &Reporting,
    state: &State,
    host: &str,
    now_ms: i64,
) -> Option<Vec<(i64, i64, &'static str)>> {
    let h = state.hosts.get(host)?;
    let from = now_ms - duration_ms(WINDOWS[3].1);
    let planned = Planned::new(reporting, state, now_ms).for_host(host, &h.labels);
    let mut out: Vec<(i64, i64, &'static str)> =
        h.up.segments(from, now_ms)
            .into_iter()
            .map(|(a, b, s)| (a, b, s.as_str()))
            .collect();
    out.extend(
        planned
            .into_iter()
            .map(|(a, b)| (a.max(from), b.min(now_ms), "planned"))
            .filter(|(a, b, _)| b > a),
    );
    Some(out)
}

/// One host as `GET /api/v1/hosts` returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct HostReport {
    pub name: String,
    /// `up`, `down` or `unknown` (just after a collector restart).
    pub state: &'static str,
    /// When the host entered that state (RFC 3339).
    pub since: Option<String>,
    pub last_seen: Option<String>,
    pub labels: Labels,
    /// Each check's latest result, by name.
    pub checks: Vec<HostCheck>,
    pub cpu_usage_ratio: Option<f64>,
    pub memory_used_ratio: Option<f64>,
    /// The filesystem with the highest `filesystem_used_ratio`.
    pub fullest_filesystem: Option<Fullest>,
    /// Heartbeat availability over 30 days (planned time excluded).
    pub availability_30d: Option<f64>,
    /// Ids of the host's live incidents (filled by the API from the store).
    pub live_incidents: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct HostCheck {
    pub name: String,
    pub status: vedette_protocol::Status,
    pub message: String,
    pub at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Fullest {
    pub mountpoint: String,
    pub used_ratio: f64,
}

/// The hosts still reported that `q` selects, by name, at most `q.limit`.
pub(crate) fn hosts(
    reporting: &Reporting,
    state: &State,
    now_ms: i64,
    q: &HostQuery,
) -> Vec<HostReport> {
    let planned = Planned::new(reporting, state, now_ms);
    visible_hosts(reporting, state, now_ms)
        .into_iter()
        .filter(|(n, _)| q.after.as_ref().is_none_or(|a| n.as_str() > a.as_str()))
        .filter(|(n, _)| q.only.as_ref().is_none_or(|o| n.as_str() == o.as_str()))
        .filter(|(_, h)| q.state.is_none_or(|s| h.up.current() == s))
        .take(q.limit)
        .map(|(n, h)| host_report(n, h, &planned.for_host(n, &h.labels), now_ms))
        .collect()
}

fn host_report(name: &str, h: &HostState, planned: &[(i64, i64)], now_ms: i64) -> HostReport {
    let latest = |metric: &str| {
        h.series()
            .find(|(n, l, _)| *n == metric && l.is_empty())
            .map(|(_, _, p)| p.value)
    };
    let fullest = h
        .series()
        .filter(|(n, _, p)| *n == "filesystem_used_ratio" && p.value.is_finite())
        .max_by(|a, b| a.2.value.total_cmp(&b.2.value))
        .map(|(_, l, p)| Fullest {
            mountpoint: l.get("mountpoint").cloned().unwrap_or_default(),
            used_ratio: p.value,
        });
    let month = availability::tally(&h.up, planned, now_ms - duration_ms(WINDOWS[3].1), now_ms);
    HostReport {
        name: name.to_string(),
        state: h.up.current().as_str(),
        since: h.up.since().and_then(crate::views::rfc3339),
        last_seen: crate::views::rfc3339(h.last_seen_ms),
        labels: h.labels.clone(),
        checks: h
            .checks
            .values()
            .map(|c| HostCheck {
                name: c.name.clone(),
                status: c.status,
                message: c.message.clone(),
                at: crate::views::rfc3339(c.ts_ms),
            })
            .collect(),
        cpu_usage_ratio: latest("cpu_usage_ratio"),
        memory_used_ratio: latest("memory_used_ratio"),
        fullest_filesystem: fullest,
        availability_30d: month.ratio(),
        live_incidents: Vec::new(),
    }
}

/// A service as the public status page shows it: no host names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ServiceStatus {
    pub name: String,
    /// Now: `up`, `down` or `unknown` (no member reported yet).
    pub state: &'static str,
    /// Availability per UTC day, oldest first (None: nothing observed
    /// that day, or a day before the store kept any).
    pub days: Vec<Option<f64>>,
    /// Availability over those days.
    pub availability: Option<f64>,
    /// When each live incident on a member host was detected (ms), oldest first.
    pub incidents_since_ms: Vec<i64>,
}

impl ServiceStatus {
    /// `statuses` by service name.
    pub(crate) fn by_name(statuses: Vec<ServiceStatus>) -> BTreeMap<String, ServiceStatus> {
        statuses.into_iter().map(|s| (s.name.clone(), s)).collect()
    }
}

/// Days of history on the public status page (the older ones from the
/// store's `service_days`, the availability changes being kept 30 days).
pub(crate) const STATUS_DAYS: usize = 90;

/// Days of history on the console's `/services` chart (all in memory).
pub(crate) const HISTORY_DAYS: usize = 30;

const DAY_MS: i64 = 86_400_000;

/// One service's tally of one finished UTC day (`day`: its midnight, ms).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDay {
    pub service: String,
    pub day: i64,
    pub tally: Tally,
}

/// The first UTC midnight whose whole day the in-memory timelines cover.
fn first_day_in_memory(now_ms: i64) -> i64 {
    let from = now_ms - duration_ms(HORIZON);
    from + (DAY_MS - from.rem_euclid(DAY_MS)) % DAY_MS
}

/// Every service's tally of each finished UTC day the in-memory timelines
/// wholly cover, for the store to keep past the horizon.
pub(crate) fn service_days(reporting: &Reporting, state: &State, now_ms: i64) -> Vec<ServiceDay> {
    let planned = Planned::new(reporting, state, now_ms);
    let hosts = visible_hosts(reporting, state, now_ms);
    let today = now_ms - now_ms.rem_euclid(DAY_MS);
    let mut out = Vec::new();
    for s in &reporting.services {
        let of = Members::of(s, &hosts, &planned);
        let members = of.timelines();
        let mut day = first_day_in_memory(now_ms);
        while day < today {
            out.push(ServiceDay {
                service: s.name.clone(),
                day,
                tally: availability::service_tally(&members, s.mode, day, day + DAY_MS),
            });
            day += DAY_MS;
        }
    }
    out
}

/// The status of each service in `names` (unknown names are skipped) over
/// the last `days` UTC days: days the in-memory timelines wholly cover are
/// computed, older ones come from `stored`. `live` holds `(host,
/// detected_at_ms)` of every live incident.
pub(crate) fn service_status(
    reporting: &Reporting,
    state: &State,
    names: &[String],
    live: &[(String, i64)],
    days: usize,
    stored: &[ServiceDay],
    now_ms: i64,
) -> Vec<ServiceStatus> {
    let planned = Planned::new(reporting, state, now_ms);
    let hosts = visible_hosts(reporting, state, now_ms);
    let today = now_ms - now_ms.rem_euclid(DAY_MS);
    let in_memory = first_day_in_memory(now_ms);
    names
        .iter()
        .filter_map(|n| reporting.services.iter().find(|s| &s.name == n))
        .map(|s| {
            let of = Members::of(s, &hosts, &planned);
            let members = of.timelines();
            let member_hosts = &of.hosts;
            let currents: Vec<Avail> = members.iter().map(|(tl, _)| tl.current()).collect();
            let known: Vec<Avail> = currents
                .iter()
                .copied()
                .filter(|a| *a != Avail::Unknown)
                .collect();
            let state = if known.is_empty() {
                Avail::Unknown
            } else if match s.mode {
                Mode::All => known.contains(&Avail::Down),
                Mode::Any => known.iter().all(|a| *a == Avail::Down),
            } {
                Avail::Down
            } else {
                Avail::Up
            };
            let mut whole = Tally::default();
            let days = (0..days as i64)
                .rev()
                .map(|d| {
                    let from = today - d * DAY_MS;
                    let tally = if from >= in_memory {
                        Some(availability::service_tally(
                            &members,
                            s.mode,
                            from,
                            (from + DAY_MS).min(now_ms),
                        ))
                    } else {
                        stored
                            .iter()
                            .find(|x| x.service == s.name && x.day == from)
                            .map(|x| x.tally)
                    };
                    let tally = tally?;
                    whole += tally;
                    tally.ratio()
                })
                .collect();
            let mut incidents_since_ms: Vec<i64> = live
                .iter()
                .filter(|(h, _)| member_hosts.contains(&h.as_str()))
                .map(|(_, at)| *at)
                .collect();
            incidents_since_ms.sort_unstable();
            ServiceStatus {
                name: s.name.clone(),
                state: state.as_str(),
                days,
                availability: whole.ratio(),
                incidents_since_ms,
            }
        })
        .collect()
}

/// The check timelines a service is made of, each with its host's
/// planned spans.
struct Members<'a> {
    /// Planned spans per member host.
    spans: Vec<Vec<(i64, i64)>>,
    /// Each member check's timeline and its host's index in `spans`.
    checks: Vec<(&'a Timeline, usize)>,
    /// The member hosts' names.
    hosts: Vec<&'a str>,
}

impl<'a> Members<'a> {
    fn of(s: &Service, hosts: &[(&'a String, &'a HostState)], planned: &Planned) -> Members<'a> {
        let mut m = Members {
            spans: Vec::new(),
            checks: Vec::new(),
            hosts: Vec::new(),
        };
        for (name, h) in hosts {
            if !s.scope.covers(name, &h.labels) {
                continue;
            }
            for (check, tl) in &h.check_up {
                if s.has_check(check) {
                    m.checks.push((tl, m.spans.len()));
                }
            }
            m.hosts.push(name.as_str());
            m.spans.push(planned.for_host(name, &h.labels));
        }
        m
    }

    /// What [`availability::service_tally`] takes.
    fn timelines(&self) -> Vec<(&'a Timeline, &[(i64, i64)])> {
        self.checks
            .iter()
            .map(|(tl, i)| (*tl, &self.spans[*i][..]))
            .collect()
    }
}

/// How many services burn their error budget faster than it accrues over
/// the last hour (burn rate above 1): one tally per service, not the full
/// report (the console's Now).
pub(crate) fn services_burning(reporting: &Reporting, state: &State, now_ms: i64) -> usize {
    let planned = Planned::new(reporting, state, now_ms);
    let hosts = visible_hosts(reporting, state, now_ms);
    let hour = duration_ms(Duration::from_secs(3600));
    reporting
        .services
        .iter()
        .filter(|s| {
            let of = Members::of(s, &hosts, &planned);
            let members = of.timelines();
            availability::service_tally(&members, s.mode, now_ms - hour, now_ms)
                .ratio()
                .is_some_and(|a| availability::burn_rate(a, s.target) > 1.0)
        })
        .count()
}
