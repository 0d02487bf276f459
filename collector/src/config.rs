//! Collector configuration: YAML → raw serde structs → validated [`Config`].
//!
//! Every problem is collected with its path and position
//! (`collector.yaml:12:5: rules[1].above: must be a finite number`), so one
//! `check-config` run shows them all. A file without `rules` gets the embedded
//! default rules; `rules: []` means none.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use vedette_protocol::{is_valid_name, Status};
use vedette_yaml::{ConfigError, Diagnostics};

use crate::availability::Mode;
use crate::engine::{Bounds, IncidentPolicy, Setup};
use crate::kpi::{Reporting, Service, FORGET_AFTER, FORGET_SERIES_AFTER};
use crate::notify::{Kind, Receiver, Route, Router, Secret};
use crate::rules::{
    CheckRule, Direction, FlapThresholds, Matcher, Rule, RuleKind, Selector, Threshold, Trigger,
};
use crate::state::StateLimits;
use crate::texts::Texts;
use crate::windows::{Maintenance, Recurrence, Scope, ScopeSpec, Slot};

/// The embedded default configuration (`vedette-collector` with no `--config`).
pub const EMBEDDED: &str = include_str!("../default.yaml");

/// A validated collector configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The one HTTP listener (push, API, metrics).
    pub listen: SocketAddr,
    /// Where the SQLite store lives.
    pub data_dir: PathBuf,
    /// Agent tokens and the hosts each may push as. Empty: any host may push
    /// (allowed only on a loopback listener).
    pub agents: Vec<AgentToken>,
    pub rules: Vec<Rule>,
    /// The rules' `summary`/`description` templates.
    pub texts: Arc<Texts>,
    /// Incident lifecycle settings (`incidents:`).
    pub incidents: IncidentPolicy,
    /// API tokens. Empty: the API is open, and only a loopback listener is allowed to serve it.
    pub api_tokens: Vec<ApiToken>,
    /// Recurring maintenance windows.
    pub maintenance: Vec<Maintenance>,
    /// How long a client may take to send its request (`http:`).
    pub http: HttpLimits,
    /// Services, maintenance and host expiry, as the reports need them.
    pub reporting: Arc<Reporting>,
    /// Notification receivers (`notify:`).
    pub notify: Arc<Router>,
    /// What agents and Alertmanager can make the collector hold (`limits:`).
    pub limits: StateLimits,
    /// A series not reported this long is released (`forget_series_after`).
    pub forget_series_after: Duration,
    /// SHA-256 of the bearer token `/metrics` asks for (`metrics_token`);
    /// None: `/metrics` is open.
    pub metrics_token: Option<MetricsToken>,
}

/// The token `/metrics` asks for, kept only as its SHA-256.
#[derive(Debug, Clone)]
pub struct MetricsToken {
    sha256: [u8; 32],
}

impl MetricsToken {
    /// True when `token_sha256` is this token's digest (constant time).
    pub fn matches(&self, token_sha256: &[u8; 32]) -> bool {
        self.sha256.ct_eq(token_sha256).into()
    }
}

/// `http:` — how long a client may take; bounds slow and stalled requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HttpLimits {
    /// From connection (or the previous request) to the end of the request
    /// headers; a client slower than this is disconnected (slowloris).
    pub header_timeout: Duration,
    /// From the request's headers to its answer, body upload included;
    /// slower requests get 408.
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads.
    Viewer,
    /// Reads and writes (ack, resolve, changes).
    Operator,
}

/// One API token, kept only as its SHA-256.
#[derive(Debug, Clone)]
pub struct ApiToken {
    /// Recorded as the actor of what the token does.
    pub name: String,
    sha256: [u8; 32],
    pub role: Role,
}

impl ApiToken {
    /// True when `token_sha256` is this token's digest (constant time).
    pub fn matches(&self, token_sha256: &[u8; 32]) -> bool {
        self.sha256.ct_eq(token_sha256).into()
    }
}

/// One agent token, kept only as its SHA-256.
#[derive(Debug, Clone)]
pub struct AgentToken {
    sha256: [u8; 32],
    /// Host-name globs, as written.
    pub hosts: Vec<String>,
    matcher: globset::GlobSet,
}

impl AgentToken {
    /// True when `token` is this one (constant time in the token's content).
    pub fn matches(&self, token_sha256: &[u8; 32]) -> bool {
        self.sha256.ct_eq(token_sha256).into()
    }

    /// True when this token may push as `host`.
    pub fn allows(&self, host: &str) -> bool {
        self.matcher.is_match(host)
    }

    /// A stable identity of the token (from its digest, not its position in
    /// the file), which `limits.hosts_per_token` counts hosts by.
    pub fn id(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.sha256[..8]);
        u64::from_be_bytes(b)
    }
}

/// SHA-256 of a bearer token.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_listen")]
    listen: SocketAddr,
    #[serde(default = "default_data_dir")]
    data_dir: PathBuf,
    #[serde(default)]
    agents: Vec<RawAgent>,
    #[serde(default)]
    rules: Option<Vec<RawRule>>,
    #[serde(default)]
    incidents: RawIncidents,
    #[serde(default)]
    api_tokens: Vec<RawApiToken>,
    #[serde(default)]
    maintenance: Vec<RawMaintenance>,
    #[serde(default)]
    services: Vec<RawService>,
    #[serde(default, with = "humantime_serde")]
    forget_hosts_after: Option<Duration>,
    #[serde(default)]
    notify: Vec<RawReceiver>,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default, with = "humantime_serde")]
    forget_series_after: Option<Duration>,
    metrics_token: Option<RawSecretToken>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    series_per_host: Option<usize>,
    checks_per_host: Option<usize>,
    hosts_per_token: Option<usize>,
    series_total: Option<usize>,
    external_rules: Option<usize>,
    external_alerts: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecretToken {
    token: Option<String>,
    token_file: Option<PathBuf>,
    token_sha256: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default, with = "humantime_serde")]
    header_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    request_timeout: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawKind {
    Webhook,
    Alertmanager,
    PagerDuty,
    ServiceNow,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReceiver {
    name: String,
    kind: RawKind,
    url: Option<String>,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    routing_key: Option<String>,
    routing_key_file: Option<PathBuf>,
    instance_url: Option<String>,
    username: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    close_code: Option<String>,
    #[serde(rename = "match", default)]
    route: RawRoute,
    #[serde(default, with = "humantime_serde")]
    max_backoff: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    give_up_after: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    timeout: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    min_priority: Option<u8>,
    #[serde(default)]
    rules: Vec<String>,
    #[serde(default)]
    host_labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: String,
    target: f64,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    host_labels: BTreeMap<String, String>,
    #[serde(default)]
    checks: Vec<String>,
    #[serde(default = "default_mode")]
    mode: Mode,
}

fn default_mode() -> Mode {
    Mode::All
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIncidents {
    #[serde(default, with = "humantime_serde")]
    reopen_within: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    close_after: Option<Duration>,
    problem_after: Option<RawProblemAfter>,
    flapping: Option<RawFlapping>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProblemAfter {
    count: u32,
    #[serde(with = "humantime_serde")]
    within: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlapping {
    on: f64,
    off: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApiToken {
    name: String,
    token: Option<String>,
    token_file: Option<PathBuf>,
    token_sha256: Option<String>,
    role: Role,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMaintenance {
    name: String,
    scope: ScopeSpec,
    schedule: RawSchedule,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    timezone: String,
    #[serde(default)]
    weekly: Vec<RawWeekly>,
    #[serde(default)]
    monthly: Vec<RawMonthly>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeekly {
    day: String,
    start: String,
    #[serde(with = "humantime_serde")]
    duration: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMonthly {
    day: u32,
    start: String,
    #[serde(with = "humantime_serde")]
    duration: Duration,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9850))
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./vedette-data")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    token: Option<String>,
    token_file: Option<PathBuf>,
    token_sha256: Option<String>,
    #[serde(default)]
    hosts: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    metric: Option<String>,
    above: Option<f64>,
    below: Option<f64>,
    clear_below: Option<f64>,
    clear_above: Option<f64>,
    #[serde(default, rename = "for", with = "humantime_serde")]
    for_: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    absent_for: Option<Duration>,
    check: Option<String>,
    status: Option<Status>,
    failures: Option<RawFailures>,
    impact: Option<u8>,
    urgency: Option<u8>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    host_labels: BTreeMap<String, String>,
    #[serde(default, with = "humantime_serde")]
    resolve_after: Option<Duration>,
    summary: Option<String>,
    description: Option<String>,
}

/// `failures: 3` or `failures: {count: 3, of: 5}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawFailures {
    Consecutive(u8),
    Window { count: u8, of: u8 },
}

impl Config {
    /// The embedded default.
    pub fn embedded() -> Result<Config, ConfigError> {
        Config::from_yaml("<embedded>", EMBEDDED)
    }

    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let (file, text) = vedette_yaml::read(path)?;
        Config::from_yaml(&file, &text)
    }

    /// Parses and validates `text`; `file` names it in diagnostics.
    pub fn from_yaml(file: &str, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = vedette_yaml::parse(file, text)?;
        let mut diag = Diagnostics::new(text);
        let agents = raw
            .agents
            .iter()
            .enumerate()
            .filter_map(|(i, a)| agent(a, &format!("agents[{i}]"), &mut diag))
            .collect::<Vec<_>>();
        if agents.is_empty() && !raw.listen.ip().is_loopback() {
            diag.push(
                "listen",
                format!(
                    "{} is not a loopback address and no agent tokens are configured; \
                     add `agents:` with tokens, or listen on 127.0.0.1",
                    raw.listen
                ),
            );
        }
        let mut texts = Texts::default();
        let rules = match &raw.rules {
            Some(rules) => validate_rules(rules, &mut texts, &mut diag),
            None => default_rules(&mut texts),
        };
        let incidents = incident_policy(&raw.incidents, &mut diag);
        let mut names = HashSet::new();
        let api_tokens = raw
            .api_tokens
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let path = format!("api_tokens[{i}]");
                unique_name(&t.name, &path, &mut names, &mut diag, || {
                    format!(
                        "token name '{}' is used twice; names identify who did what",
                        t.name
                    )
                });
                let sha256 = token_sha(
                    t.token.as_deref(),
                    t.token_file.as_deref(),
                    t.token_sha256.as_deref(),
                    &path,
                    &mut diag,
                )?;
                Some(ApiToken {
                    name: t.name.clone(),
                    sha256,
                    role: t.role,
                })
            })
            .collect();
        let maintenance: Vec<Maintenance> = raw
            .maintenance
            .iter()
            .enumerate()
            .filter_map(|(i, m)| maintenance(m, &format!("maintenance[{i}]"), &mut diag))
            .collect();
        let mut names = HashSet::new();
        let services = raw
            .services
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let path = format!("services[{i}]");
                unique_name(&s.name, &path, &mut names, &mut diag, || {
                    format!("service '{}' is defined twice", s.name)
                });
                service(s, &path, &mut diag)
            })
            .collect();
        let forget_after = raw.forget_hosts_after.unwrap_or(FORGET_AFTER);
        if forget_after < Duration::from_secs(60) {
            diag.push(
                "forget_hosts_after",
                "must be at least 1m (hosts silent that long disappear from /metrics)",
            );
        }
        let http = http_limits(&raw.http, &mut diag);
        let limits = state_limits(&raw.limits, &mut diag);
        let forget_series_after = raw.forget_series_after.unwrap_or(FORGET_SERIES_AFTER);
        if forget_series_after < Duration::from_secs(60) {
            diag.push(
                "forget_series_after",
                "must be at least 1m (and above the longest interval any series is sent at)",
            );
        }
        let metrics_token = raw.metrics_token.as_ref().and_then(|t| {
            token_sha(
                t.token.as_deref(),
                t.token_file.as_deref(),
                t.token_sha256.as_deref(),
                "metrics_token",
                &mut diag,
            )
            .map(|sha256| MetricsToken { sha256 })
        });
        let mut names = HashSet::new();
        let receivers = raw
            .notify
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let path = format!("notify[{i}]");
                unique_name(&r.name, &path, &mut names, &mut diag, || {
                    format!("receiver '{}' is defined twice", r.name)
                });
                receiver(r, &path, &mut diag)
            })
            .collect();
        let reporting = Arc::new(Reporting {
            services,
            maintenance: maintenance.clone(),
            forget_after,
        });
        diag.finish(
            file,
            Config {
                listen: raw.listen,
                data_dir: raw.data_dir,
                agents,
                rules,
                texts: Arc::new(texts),
                incidents,
                api_tokens,
                maintenance,
                http,
                reporting,
                notify: Arc::new(Router { receivers }),
                limits,
                forget_series_after,
                metrics_token,
            },
        )
    }

    /// The SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("vedette.db")
    }
}

fn default_rules(texts: &mut Texts) -> Vec<Rule> {
    let raw: RawConfig = match vedette_yaml::parse("<embedded>", EMBEDDED) {
        Ok(raw) => raw,
        Err(_) => return Vec::new(), // covered by the embedded_default_is_valid test
    };
    let mut diag = Diagnostics::new(EMBEDDED);
    validate_rules(raw.rules.as_deref().unwrap_or_default(), texts, &mut diag)
}

fn state_limits(raw: &RawLimits, diag: &mut Diagnostics) -> StateLimits {
    let d = StateLimits::default();
    let mut limit = |value: Option<usize>, default: usize, key: &str| match value {
        Some(0) => {
            diag.push(&format!("limits.{key}"), "must be at least 1");
            default
        }
        Some(v) => v,
        None => default,
    };
    let l = StateLimits {
        series_per_host: limit(raw.series_per_host, d.series_per_host, "series_per_host"),
        checks_per_host: limit(raw.checks_per_host, d.checks_per_host, "checks_per_host"),
        hosts_per_token: limit(raw.hosts_per_token, d.hosts_per_token, "hosts_per_token"),
        series_total: limit(raw.series_total, d.series_total, "series_total"),
        external_rules: limit(raw.external_rules, d.external_rules, "external_rules"),
        external_alerts: limit(raw.external_alerts, d.external_alerts, "external_alerts"),
    };
    if l.series_per_host > l.series_total {
        diag.push(
            "limits.series_per_host",
            format!(
                "{} is more than limits.series_total ({}); one host could never reach it",
                l.series_per_host, l.series_total
            ),
        );
    }
    l
}

fn http_limits(raw: &RawHttp, diag: &mut Diagnostics) -> HttpLimits {
    let default = HttpLimits::default();
    let mut limit = |value: Option<Duration>, default: Duration, path: &str| {
        let value = value.unwrap_or(default);
        if !(Duration::from_secs(1)..=Duration::from_secs(600)).contains(&value) {
            diag.push(path, "must be between 1s and 10m");
        }
        value
    };
    HttpLimits {
        header_timeout: limit(
            raw.header_timeout,
            default.header_timeout,
            "http.header_timeout",
        ),
        request_timeout: limit(
            raw.request_timeout,
            default.request_timeout,
            "http.request_timeout",
        ),
    }
}

fn incident_policy(raw: &RawIncidents, diag: &mut Diagnostics) -> IncidentPolicy {
    let mut p = IncidentPolicy::default();
    if let Some(d) = raw.reopen_within {
        p.reopen_within = d;
    }
    if let Some(d) = raw.close_after {
        p.close_after = d;
    }
    if let Some(pa) = &raw.problem_after {
        p.problem_after = match (pa.count, pa.within.is_zero()) {
            (0, _) => None,
            (1, _) => {
                diag.push(
                    "incidents.problem_after.count",
                    "must be at least 2 (a problem is a recurrence), or 0 to turn problems off",
                );
                None
            }
            (_, true) => {
                diag.push("incidents.problem_after.within", "must be more than 0");
                None
            }
            (n, false) => Some((n, pa.within)),
        };
    }
    if let Some(f) = &raw.flapping {
        if !(f.on.is_finite() && f.off.is_finite() && 0.0 < f.off && f.off < f.on && f.on <= 100.0)
        {
            diag.push(
                "incidents.flapping",
                format!(
                    "need 0 < off < on <= 100 (percent state change), got on {} off {}",
                    f.on, f.off
                ),
            );
        } else {
            p.flapping = FlapThresholds {
                on: f.on,
                off: f.off,
            };
        }
    }
    p
}

fn maintenance(raw: &RawMaintenance, path: &str, diag: &mut Diagnostics) -> Option<Maintenance> {
    let scope = match Scope::new(raw.scope.clone()) {
        Ok(s) => Some(s),
        Err((field, msg)) => {
            diag.push(&format!("{path}.{field}"), msg);
            None
        }
    };
    let timezone = match raw.schedule.timezone.parse::<chrono_tz::Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            diag.push(
                &format!("{path}.schedule.timezone"),
                format!(
                    "'{}' is not an IANA time zone (like Europe/Berlin or UTC)",
                    raw.schedule.timezone
                ),
            );
            None
        }
    };
    let mut slots = Vec::new();
    let start_time = |s: &str, at: &str, diag: &mut Diagnostics| {
        let t = chrono::NaiveTime::parse_from_str(s, "%H:%M");
        if t.is_err() {
            diag.push(
                at,
                format!("'{s}' is not a time like 02:00 (24-hour HH:MM)"),
            );
        }
        t.ok()
    };
    let duration = |d: Duration, at: &str, diag: &mut Diagnostics| {
        let ok = !d.is_zero() && d <= Duration::from_secs(7 * 86_400);
        if !ok {
            diag.push(at, "must be more than 0 and at most 7 days");
        }
        ok
    };
    for (i, w) in raw.schedule.weekly.iter().enumerate() {
        let at = format!("{path}.schedule.weekly[{i}]");
        let day = match w.day.to_ascii_lowercase().parse::<chrono::Weekday>() {
            Ok(d) => Some(d),
            Err(_) => {
                diag.push(
                    &format!("{at}.day"),
                    format!("'{}' is not a weekday (mon, tue, … sun)", w.day),
                );
                None
            }
        };
        let start = start_time(&w.start, &format!("{at}.start"), diag);
        let ok = duration(w.duration, &format!("{at}.duration"), diag);
        if let (Some(day), Some(start), true) = (day, start, ok) {
            slots.push(Slot {
                when: Recurrence::Weekly(day),
                start,
                duration: w.duration,
            });
        }
    }
    for (i, m) in raw.schedule.monthly.iter().enumerate() {
        let at = format!("{path}.schedule.monthly[{i}]");
        if !(1..=28).contains(&m.day) {
            diag.push(&format!("{at}.day"), "must be 1–28 (a day every month has)");
        }
        let start = start_time(&m.start, &format!("{at}.start"), diag);
        let ok = duration(m.duration, &format!("{at}.duration"), diag);
        if let (Some(start), true, true) = (start, ok, (1..=28).contains(&m.day)) {
            slots.push(Slot {
                when: Recurrence::Monthly(m.day),
                start,
                duration: m.duration,
            });
        }
    }
    if raw.schedule.weekly.is_empty() && raw.schedule.monthly.is_empty() {
        diag.push(
            &format!("{path}.schedule"),
            "give `weekly` and/or `monthly` slots",
        );
    }
    Some(Maintenance {
        name: raw.name.clone(),
        scope: scope?,
        timezone: timezone?,
        slots,
    })
}

/// A secret given inline (`key`) or in a file (`key_file`), at most one;
/// `Err(())` after reporting a mistake.
fn secret(
    inline: Option<&str>,
    file: Option<&Path>,
    key: &str,
    path: &str,
    diag: &mut Diagnostics,
) -> Result<Option<Secret>, ()> {
    match (inline, file) {
        (Some(_), Some(_)) => {
            diag.push(
                &format!("{path}.{key}"),
                format!("give `{key}` or `{key}_file`, not both"),
            );
            Err(())
        }
        (Some(""), None) => {
            diag.push(&format!("{path}.{key}"), "must not be empty");
            Err(())
        }
        (Some(s), None) => Ok(Some(Secret(s.to_string()))),
        (None, Some(f)) => match std::fs::read_to_string(f) {
            Ok(t) if !t.trim().is_empty() => Ok(Some(Secret(t.trim().to_string()))),
            Ok(_) => {
                diag.push(
                    &format!("{path}.{key}_file"),
                    format!("{} is empty", f.display()),
                );
                Err(())
            }
            Err(e) => {
                diag.push(
                    &format!("{path}.{key}_file"),
                    format!("cannot read {}: {e}", f.display()),
                );
                Err(())
            }
        },
        (None, None) => Ok(None),
    }
}

/// An `http://` or `https://` URL with a host.
fn http_url(url: Option<&str>, field: &str, path: &str, diag: &mut Diagnostics) -> Option<String> {
    let at = format!("{path}.{field}");
    let Some(url) = url else {
        diag.push(&at, "is required for this kind of receiver");
        return None;
    };
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            Some(url.to_string())
        }
        Ok(u) => {
            diag.push(
                &at,
                format!(
                    "'{url}' must be an http:// or https:// URL (scheme is {})",
                    u.scheme()
                ),
            );
            None
        }
        Err(e) => {
            diag.push(&at, format!("'{url}' is not a URL: {e}"));
            None
        }
    }
}

fn receiver(raw: &RawReceiver, path: &str, diag: &mut Diagnostics) -> Option<Receiver> {
    let kind_name = match raw.kind {
        RawKind::Webhook => "webhook",
        RawKind::Alertmanager => "alertmanager",
        RawKind::PagerDuty => "pagerduty",
        RawKind::ServiceNow => "servicenow",
    };
    // Keys that belong to other kinds are mistakes worth naming.
    let allowed: &[&str] = match raw.kind {
        RawKind::Webhook => &["url", "secret"],
        RawKind::Alertmanager => &["url"],
        RawKind::PagerDuty => &["url", "routing_key"],
        RawKind::ServiceNow => &["instance_url", "username", "password", "close_code"],
    };
    let given = [
        ("url", raw.url.is_some()),
        ("secret", raw.secret.is_some() || raw.secret_file.is_some()),
        (
            "routing_key",
            raw.routing_key.is_some() || raw.routing_key_file.is_some(),
        ),
        ("instance_url", raw.instance_url.is_some()),
        ("username", raw.username.is_some()),
        (
            "password",
            raw.password.is_some() || raw.password_file.is_some(),
        ),
        ("close_code", raw.close_code.is_some()),
    ];
    let mut ok = true;
    for (key, set) in given {
        if set && !allowed.contains(&key) {
            diag.push(
                &format!("{path}.{key}"),
                format!("is not a setting of {kind_name} receivers"),
            );
            ok = false;
        }
    }
    let required = |s: Result<Option<Secret>, ()>, key: &str, diag: &mut Diagnostics| match s {
        Ok(Some(s)) => Some(s),
        Ok(None) => {
            diag.push(
                &format!("{path}.{key}"),
                format!("{kind_name} receivers need `{key}` or `{key}_file`"),
            );
            None
        }
        Err(()) => None,
    };
    let kind = match raw.kind {
        RawKind::Webhook => {
            let url = http_url(raw.url.as_deref(), "url", path, diag);
            let secret = secret(
                raw.secret.as_deref(),
                raw.secret_file.as_deref(),
                "secret",
                path,
                diag,
            );
            Kind::Webhook {
                url: url?,
                secret: secret.ok()?,
            }
        }
        RawKind::Alertmanager => Kind::Alertmanager {
            url: http_url(raw.url.as_deref(), "url", path, diag)?,
        },
        RawKind::PagerDuty => {
            let url = match &raw.url {
                Some(u) => http_url(Some(u), "url", path, diag),
                None => Some(crate::notify::PAGERDUTY_URL.to_string()),
            };
            let key = secret(
                raw.routing_key.as_deref(),
                raw.routing_key_file.as_deref(),
                "routing_key",
                path,
                diag,
            );
            let routing_key = required(key, "routing_key", diag);
            Kind::PagerDuty {
                url: url?,
                routing_key: routing_key?,
            }
        }
        RawKind::ServiceNow => {
            let instance_url = http_url(raw.instance_url.as_deref(), "instance_url", path, diag);
            let username = raw.username.clone().filter(|u| !u.is_empty());
            if username.is_none() {
                diag.push(
                    &format!("{path}.username"),
                    "servicenow receivers need a `username`",
                );
            }
            let pw = secret(
                raw.password.as_deref(),
                raw.password_file.as_deref(),
                "password",
                path,
                diag,
            );
            let password = required(pw, "password", diag);
            Kind::ServiceNow {
                instance_url: instance_url?,
                username: username?,
                password: password?,
                close_code: raw
                    .close_code
                    .clone()
                    .unwrap_or_else(|| crate::notify::DEFAULT_CLOSE_CODE.to_string()),
            }
        }
    };
    let min_priority = raw.route.min_priority.unwrap_or(5);
    if !(1..=5).contains(&min_priority) {
        diag.push(
            &format!("{path}.match.min_priority"),
            format!(
                "{min_priority} is not a priority; 1 (highest) … 5 (lowest): 2 sends P1 and P2"
            ),
        );
        ok = false;
    }
    let rules: Vec<String> = raw
        .route
        .rules
        .iter()
        .filter(|r| *r != "*")
        .cloned()
        .collect();
    let rule_set = globs(&rules, &format!("{path}.match.rules"), diag);
    let host_labels = matchers(
        &raw.route.host_labels,
        &format!("{path}.match.host_labels"),
        diag,
    );
    let max_backoff = raw
        .max_backoff
        .unwrap_or(crate::notify::DEFAULT_MAX_BACKOFF);
    let give_up_after = raw
        .give_up_after
        .unwrap_or(crate::notify::DEFAULT_GIVE_UP_AFTER);
    let timeout = raw.timeout.unwrap_or(crate::notify::DEFAULT_TIMEOUT);
    if max_backoff < Duration::from_secs(1) {
        diag.push(&format!("{path}.max_backoff"), "must be at least 1s");
        ok = false;
    }
    if give_up_after < Duration::from_secs(60) {
        diag.push(
            &format!("{path}.give_up_after"),
            "must be at least 1m (a receiver restarting should not lose notifications)",
        );
        ok = false;
    }
    if timeout.is_zero() || timeout > Duration::from_secs(300) {
        diag.push(&format!("{path}.timeout"), "must be between 1ms and 5m");
        ok = false;
    }
    if !ok {
        return None;
    }
    Some(Receiver {
        name: raw.name.clone(),
        kind,
        route: Route {
            min_priority,
            rules: rule_set?,
            host_labels,
        },
        max_backoff,
        give_up_after,
        timeout,
    })
}

/// Reports `<path>.name` when empty or already in `names`.
fn unique_name<'a>(
    name: &'a str,
    path: &str,
    names: &mut HashSet<&'a str>,
    diag: &mut Diagnostics,
    twice: impl FnOnce() -> String,
) {
    if name.trim().is_empty() {
        diag.push(&format!("{path}.name"), "must not be empty");
    } else if !names.insert(name) {
        diag.push(&format!("{path}.name"), twice());
    }
}

fn service(raw: &RawService, path: &str, diag: &mut Diagnostics) -> Option<Service> {
    if !(raw.target > 0.0 && raw.target < 1.0) {
        diag.push(
            &format!("{path}.target"),
            format!(
                "{} is not a ratio between 0 and 1 (exclusive); write 99.9 % as 0.999",
                raw.target
            ),
        );
    }
    if raw.checks.is_empty() {
        diag.push(
            &format!("{path}.checks"),
            "give the check names (or globs) the service is made of",
        );
    }
    let scope = match Scope::new(ScopeSpec {
        hosts: raw.hosts.clone(),
        host_labels: raw.host_labels.clone(),
    }) {
        Ok(s) => Some(s),
        Err((field, msg)) => {
            // Scope names its fields `scope.…`; a service has them at top level.
            let field = field.trim_start_matches("scope").trim_start_matches('.');
            let at = if field.is_empty() {
                path.to_string()
            } else {
                format!("{path}.{field}")
            };
            diag.push(&at, msg);
            None
        }
    };
    let check_set = globs(&raw.checks, &format!("{path}.checks"), diag)?;
    Some(Service {
        name: raw.name.clone(),
        target: raw.target,
        scope: scope?,
        checks: raw.checks.clone(),
        check_set,
        mode: raw.mode,
    })
}

fn globs(patterns: &[String], path: &str, diag: &mut Diagnostics) -> Option<globset::GlobSet> {
    let mut set = globset::GlobSetBuilder::new();
    for (i, h) in patterns.iter().enumerate() {
        match globset::Glob::new(h) {
            Ok(g) => {
                set.add(g);
            }
            Err(e) => {
                diag.push(&format!("{path}[{i}]"), format!("bad glob: {e}"));
                return None;
            }
        }
    }
    match set.build() {
        Ok(m) => Some(m),
        Err(e) => {
            diag.push(path, format!("bad globs: {e}"));
            None
        }
    }
}

fn matchers(
    raw: &BTreeMap<String, String>,
    path: &str,
    diag: &mut Diagnostics,
) -> Vec<(String, Matcher)> {
    raw.iter()
        .filter_map(|(k, v)| match Matcher::parse(v) {
            Ok(m) => Some((k.clone(), m)),
            Err(e) => {
                diag.push(&format!("{path}.{k}"), e);
                None
            }
        })
        .collect()
}

/// The SHA-256 of a token given as `token`, `token_file` or `token_sha256`
/// (exactly one).
fn token_sha(
    token: Option<&str>,
    token_file: Option<&Path>,
    token_sha256: Option<&str>,
    path: &str,
    diag: &mut Diagnostics,
) -> Option<[u8; 32]> {
    let given = [
        token.is_some(),
        token_file.is_some(),
        token_sha256.is_some(),
    ]
    .iter()
    .filter(|&&b| b)
    .count();
    if given != 1 {
        diag.push(
            path,
            "give exactly one of `token`, `token_file` or `token_sha256`",
        );
        return None;
    }
    if let Some(t) = token {
        if t.is_empty() {
            diag.push(&format!("{path}.token"), "must not be empty");
            return None;
        }
        return Some(token_digest(t));
    }
    if let Some(f) = token_file {
        return match std::fs::read_to_string(f) {
            Ok(t) if !t.trim().is_empty() => Some(token_digest(t.trim())),
            Ok(_) => {
                diag.push(
                    &format!("{path}.token_file"),
                    format!("{} is empty", f.display()),
                );
                None
            }
            Err(e) => {
                diag.push(
                    &format!("{path}.token_file"),
                    format!("cannot read {}: {e}", f.display()),
                );
                None
            }
        };
    }
    let hex_str = token_sha256.unwrap_or_default();
    let digest = hex::decode(hex_str.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok());
    if digest.is_none() {
        diag.push(
            &format!("{path}.token_sha256"),
            "must be 64 hex digits (sha256sum of the token)",
        );
    }
    digest
}

fn agent(raw: &RawAgent, path: &str, diag: &mut Diagnostics) -> Option<AgentToken> {
    let sha256 = token_sha(
        raw.token.as_deref(),
        raw.token_file.as_deref(),
        raw.token_sha256.as_deref(),
        path,
        diag,
    )?;
    if raw.hosts.is_empty() {
        diag.push(
            &format!("{path}.hosts"),
            "list the host-name globs this token may push as, e.g. [\"web-*\"]",
        );
        return None;
    }
    let matcher = globs(&raw.hosts, &format!("{path}.hosts"), diag)?;
    Some(AgentToken {
        sha256,
        hosts: raw.hosts.clone(),
        matcher,
    })
}

fn validate_rules(raw: &[RawRule], texts: &mut Texts, diag: &mut Diagnostics) -> Vec<Rule> {
    let mut seen = HashSet::new();
    let mut rules = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let path = format!("rules[{i}]");
        if !is_valid_name(&r.name) {
            diag.push(
                &format!("{path}.name"),
                format!("'{}' must match [A-Za-z_][A-Za-z0-9_]*", r.name),
            );
        } else if !seen.insert(r.name.clone()) {
            diag.push(
                &format!("{path}.name"),
                format!("rule '{}' is defined twice", r.name),
            );
        }
        let level = |v: Option<u8>, key: &str, diag: &mut Diagnostics| match v {
            None => 2,
            Some(l @ 1..=3) => l,
            Some(_) => {
                diag.push(
                    &format!("{path}.{key}"),
                    "must be 1 (high), 2 (medium) or 3 (low)",
                );
                2
            }
        };
        let impact = level(r.impact, "impact", diag);
        let urgency = level(r.urgency, "urgency", diag);
        let selector = Selector {
            hosts: if r.hosts.is_empty() {
                None
            } else {
                globs(&r.hosts, &format!("{path}.hosts"), diag)
            },
            host_labels: matchers(&r.host_labels, &format!("{path}.host_labels"), diag),
            labels: matchers(&r.labels, &format!("{path}.labels"), diag),
        };
        if r.absent_for.is_some() {
            if !r.labels.is_empty() {
                diag.push(
                    &format!("{path}.labels"),
                    "a heartbeat rule has no series; select hosts with `hosts` or `host_labels`",
                );
            }
            if r.resolve_after.is_some() {
                diag.push(
                    &format!("{path}.resolve_after"),
                    "a heartbeat resolves on the host's next batch",
                );
            }
        }
        for (key, source) in [("summary", &r.summary), ("description", &r.description)] {
            if let Some(src) = source {
                if let Err(e) = texts.add(format!("{}.{key}", r.name), src.clone()) {
                    diag.push(&format!("{path}.{key}"), e);
                }
            }
        }
        if let Some(kind) = rule_kind(r, &path, diag) {
            rules.push(Rule {
                name: Arc::from(r.name.as_str()),
                kind,
                impact,
                urgency,
                selector,
                resolve_after: r.resolve_after.unwrap_or_default(),
            });
        }
    }
    rules
}

fn rule_kind(r: &RawRule, path: &str, diag: &mut Diagnostics) -> Option<RuleKind> {
    let kinds = [
        r.metric.is_some(),
        r.absent_for.is_some(),
        r.check.is_some(),
    ]
    .iter()
    .filter(|&&b| b)
    .count();
    if kinds != 1 {
        diag.push(
            path,
            format!(
                "rule '{}' needs exactly one of `metric` (threshold), `absent_for` (heartbeat) or `check` (check status)",
                r.name
            ),
        );
        return None;
    }
    let at = |k: &str| format!("{path}.{k}");
    let only_for = |diag: &mut Diagnostics, present: bool, key: &str, kind: &str| {
        if present {
            diag.push(&at(key), format!("applies only to {kind} rules"));
        }
    };
    if let Some(metric) = &r.metric {
        if !is_valid_name(metric) {
            diag.push(
                &at("metric"),
                format!("'{metric}' must match [A-Za-z_][A-Za-z0-9_]*"),
            );
        }
        only_for(diag, r.status.is_some(), "status", "check");
        only_for(diag, r.failures.is_some(), "failures", "check");
        let (direction, threshold) = match (r.above, r.below) {
            (Some(a), None) => (Direction::Above, a),
            (None, Some(b)) => (Direction::Below, b),
            _ => {
                diag.push(
                    path,
                    "a metric rule needs exactly one of `above` or `below`",
                );
                return None;
            }
        };
        let key = match direction {
            Direction::Above => "above",
            Direction::Below => "below",
        };
        if !threshold.is_finite() {
            diag.push(&at(key), "must be a finite number");
            return None;
        }
        let clear = match (direction, r.clear_below, r.clear_above) {
            (Direction::Above, c, None) => {
                let c = c.unwrap_or(threshold);
                if !(c.is_finite() && c <= threshold) {
                    diag.push(
                        &at("clear_below"),
                        format!("must be a finite number at or below `above` ({threshold})"),
                    );
                }
                c
            }
            (Direction::Below, None, c) => {
                let c = c.unwrap_or(threshold);
                if !(c.is_finite() && c >= threshold) {
                    diag.push(
                        &at("clear_above"),
                        format!("must be a finite number at or above `below` ({threshold})"),
                    );
                }
                c
            }
            (Direction::Above, _, Some(_)) => {
                diag.push(
                    &at("clear_above"),
                    "goes with `below`; use `clear_below` with `above`",
                );
                return None;
            }
            (Direction::Below, Some(_), _) => {
                diag.push(
                    &at("clear_below"),
                    "goes with `above`; use `clear_above` with `below`",
                );
                return None;
            }
        };
        return Some(RuleKind::Threshold(Threshold {
            metric: metric.clone(),
            direction,
            threshold,
            clear,
            for_: r.for_.unwrap_or_default(),
        }));
    }
    for (present, key) in [
        (r.above.is_some(), "above"),
        (r.below.is_some(), "below"),
        (r.clear_below.is_some(), "clear_below"),
        (r.clear_above.is_some(), "clear_above"),
    ] {
        only_for(diag, present, key, "metric");
    }
    if let Some(after) = r.absent_for {
        only_for(diag, r.status.is_some(), "status", "check");
        only_for(diag, r.for_.is_some(), "for", "metric and check");
        only_for(diag, r.failures.is_some(), "failures", "check");
        if after.is_zero() {
            diag.push(&at("absent_for"), "must be more than 0");
        }
        return Some(RuleKind::Absent { after });
    }
    let pattern = r.check.clone().unwrap_or_default();
    let matcher = match globset::Glob::new(&pattern) {
        Ok(g) => g.compile_matcher(),
        Err(e) => {
            diag.push(&at("check"), format!("bad glob: {e}"));
            return None;
        }
    };
    let status = r.status.unwrap_or(Status::Critical);
    if status == Status::Ok {
        diag.push(&at("status"), "must be warning, critical or unknown");
    }
    let trigger = match (&r.failures, r.for_) {
        (Some(_), Some(_)) => {
            diag.push(
                &at("failures"),
                "give `for` (a duration) or `failures` (a count of results), not both",
            );
            return None;
        }
        (None, f) => Trigger::For(f.unwrap_or_default()),
        (Some(f), None) => {
            let (count, of) = match *f {
                RawFailures::Consecutive(n) => (n, n),
                RawFailures::Window { count, of } => (count, of),
            };
            if count == 0 || count > of || of > 64 {
                diag.push(
                    &at("failures"),
                    format!("need 1 <= count <= of <= 64, got count {count} of {of}"),
                );
                return None;
            }
            Trigger::Failures { count, of }
        }
    };
    let exact = (!pattern.contains(['*', '?', '[', '{', '\\'])).then(|| pattern.clone());
    Some(RuleKind::Check(CheckRule {
        pattern,
        matcher,
        exact,
        status,
        trigger,
    }))
}

impl Config {
    /// The engine's part of this configuration.
    pub fn engine_setup(&self) -> Setup {
        let c = self;
        Setup {
            rules: c.rules.clone(),
            texts: Arc::clone(&c.texts),
            policy: c.incidents.clone(),
            maintenance: c.maintenance.clone(),
            heartbeat: c.rules.iter().find_map(|r| match r.kind {
                RuleKind::Absent { after } => Some(after),
                _ => None,
            }),
            bounds: Bounds {
                limits: c.limits,
                forget_series_after: c.forget_series_after,
                forget_hosts_after: c.reporting.forget_after,
            },
        }
    }
}

#[cfg(test)]
mod tests;
