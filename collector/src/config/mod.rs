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

mod access;
mod limits;
mod planned;
mod receivers;
mod rules;
mod services;
mod tls;

use self::access::{agents, api_tokens, metrics_token, RawAgent, RawApiToken, RawSecretToken};
pub use self::access::{token_digest, AgentToken, ApiToken, MetricsToken, Role};
pub use self::limits::HttpLimits;
use self::limits::{forgetting, http_limits, state_limits, RawHttp, RawLimits};
use self::planned::{maintenance, RawMaintenance};
use self::receivers::{receivers, RawReceiver};
use self::rules::{default_rules, incident_policy, validate_rules, RawIncidents, RawRule};
pub use self::services::StatusPage;
use self::services::{services, status_page, RawService, RawStatusPage};
pub use self::tls::ListenerTls;

/// The embedded default configuration (`vedette-collector` with no `--config`).
pub const EMBEDDED: &str = include_str!("../../default.yaml");

/// A validated collector configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The one HTTP listener (push, API, metrics).
    pub listen: SocketAddr,
    /// Whether the listener speaks TLS (`tls:`).
    pub tls: ListenerTls,
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
    /// The public status page (`status_page:`); None: off.
    pub status_page: Option<StatusPage>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_listen")]
    listen: SocketAddr,
    #[serde(default)]
    tls: Option<serde_yaml::Value>,
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
    status_page: Option<RawStatusPage>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9850))
}

/// The collector's state directory ([`vedette_daemon::state_dir`]).
fn default_data_dir() -> PathBuf {
    vedette_daemon::state_dir("vedette-collector")
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
        let tls = self::tls::listener_tls(raw.tls.as_ref(), raw.listen, &mut diag);
        let mutual = tls.requires_client_cert() || self::tls::declares_mutual(raw.tls.as_ref());
        let agents = agents(&raw, mutual, &mut diag);
        let mut texts = Texts::default();
        let rules = match &raw.rules {
            Some(rules) => validate_rules(rules, &mut texts, &mut diag),
            None => default_rules(&mut texts),
        };
        let incidents = incident_policy(&raw.incidents, &mut diag);
        let api_tokens = api_tokens(&raw.api_tokens, &mut diag);
        let maintenance: Vec<Maintenance> = raw
            .maintenance
            .iter()
            .enumerate()
            .filter_map(|(i, m)| maintenance(m, &format!("maintenance[{i}]"), &mut diag))
            .collect();
        let services = services(&raw.services, &mut diag);
        let status_page = status_page(raw.status_page.as_ref(), &services, &mut diag);
        let (forget_after, forget_series_after) = forgetting(&raw, &mut diag);
        let http = http_limits(&raw.http, &mut diag);
        let limits = state_limits(&raw.limits, &mut diag);
        let metrics_token = metrics_token(raw.metrics_token.as_ref(), &mut diag);
        let receivers = receivers(&raw.notify, &mut diag);
        let reporting = Arc::new(Reporting {
            services,
            maintenance: maintenance.clone(),
            forget_after,
        });
        diag.finish(
            file,
            Config {
                listen: raw.listen,
                tls,
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
                status_page,
            },
        )
    }

    /// What deserves a warning but does not stop the collector: a server
    /// certificate that has ended or ends within 14 days (at `now_s`), TLS
    /// verification turned off for a receiver.
    pub fn warnings(&self, now_s: i64) -> Vec<String> {
        let mut out = Vec::new();
        if let (ListenerTls::On { files, server }, Some(days)) = (
            &self.tls,
            self.tls.server().and_then(|s| s.days_left(now_s)),
        ) {
            let cert = files.cert_file.display();
            let plural = |n: i64| if n == 1 { "day" } else { "days" };
            let ended = server.not_after.is_some_and(|t| t <= now_s);
            if ended {
                out.push(format!(
                    "tls.cert_file: the certificate in {cert} EXPIRED {} {} ago: agents will refuse it; \
                     renew it (vedette-collector tls init --dir … --host …) and reload",
                    -days,
                    plural(-days)
                ));
            } else if days <= 14 {
                out.push(format!(
                    "tls.cert_file: the certificate in {cert} expires in {days} {}; renew it and reload",
                    plural(days)
                ));
            }
        }
        for r in &self.notify.receivers {
            if !r.tls_verify {
                out.push(format!(
                    "notify receiver '{}': tls_verify is false: its server's certificate is NOT \
                     checked, anyone on the path can read and change what is sent; use ca_file instead",
                    r.name
                ));
            }
        }
        out
    }

    /// The API token whose digest is `token_sha256`, if any. Every token is
    /// compared (in constant time), so the time taken does not say which one
    /// matched.
    pub fn api_token(&self, token_sha256: &[u8; 32]) -> Option<&ApiToken> {
        let mut found = None;
        for t in &self.api_tokens {
            if t.matches(token_sha256) && found.is_none() {
                found = Some(t);
            }
        }
        found
    }

    /// The SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("vedette.db")
    }
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
