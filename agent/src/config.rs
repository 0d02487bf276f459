//! Agent configuration: YAML → raw serde structs → validated [`Config`].
//!
//! Every key has a default, so an empty file (or none: the embedded default)
//! runs: host metrics every 10 s, pushed to `http://127.0.0.1:9850`, local
//! `/metrics` on `127.0.0.1:9851`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use vedette_protocol::{is_valid_name, Limits};
use vedette_yaml::{ConfigError, Diagnostics};

use crate::checks::{CheckSpec, RawCheck};
use crate::sample::settings::{self, HostMetrics, RawHostMetrics};

/// The embedded default configuration (`vedette-agent` with no `--config`).
pub const EMBEDDED: &str = include_str!("../default.yaml");

/// A validated agent configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The host name to report as.
    pub host: String,
    /// Host labels sent with every batch.
    pub labels: BTreeMap<String, String>,
    /// The collectors' base URLs, preferred first (`collector.url` or
    /// `collector.urls`).
    pub collectors: Vec<Url>,
    /// How the agent speaks TLS to them.
    pub collector_tls: CollectorTls,
    /// The agent token, if the collector requires one.
    pub token: Option<String>,
    /// How often to sample and push.
    pub interval: Duration,
    /// The local `/metrics` listener, if enabled.
    pub listen: Option<SocketAddr>,
    /// The on-disk spool; `None` keeps unsent batches in memory only.
    pub spool: Option<SpoolConfig>,
    /// What host health to sample and how.
    pub host_metrics: HostMetrics,
    /// Availability checks.
    pub checks: Vec<CheckSpec>,
}

/// `collector.ca_file`, `cert_file`, `key_file`, `server_name`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectorTls {
    /// Trust only this CA (PEM) instead of the public roots.
    pub ca_file: Option<PathBuf>,
    /// A client certificate and its key (PEM), for mutual TLS.
    pub client: Option<(PathBuf, PathBuf)>,
    /// The name the collector's certificate is checked against, instead of
    /// the URL's host.
    pub server_name: Option<String>,
}

/// Where unsent batches wait.
#[derive(Debug, Clone, PartialEq)]
pub struct SpoolConfig {
    pub dir: PathBuf,
    pub max_bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    host: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    collector: RawCollector,
    #[serde(default = "default_interval", with = "humantime_serde")]
    interval: Duration,
    #[serde(default = "default_listen")]
    listen: String,
    #[serde(default)]
    spool: RawSpool,
    #[serde(default)]
    host_metrics: RawHostMetrics,
    #[serde(default)]
    checks: Vec<RawCheck>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpool {
    #[serde(default = "default_spool_dir")]
    dir: PathBuf,
    #[serde(default = "default_spool_bytes")]
    /// A size like `64MiB` or `500MB` (parsed with `bytesize` after serde,
    /// so a bad value is reported in our words).
    max_bytes: String,
}

impl Default for RawSpool {
    fn default() -> Self {
        RawSpool {
            dir: default_spool_dir(),
            max_bytes: default_spool_bytes(),
        }
    }
}

/// `spool/` in the agent's state directory ([`vedette_daemon::state_dir`]).
fn default_spool_dir() -> PathBuf {
    vedette_daemon::state_dir("vedette-agent").join("spool")
}

fn default_spool_bytes() -> String {
    "64MiB".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(Default)]
struct RawCollector {
    url: Option<String>,
    #[serde(default)]
    urls: Vec<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    server_name: Option<String>,
}

fn default_interval() -> Duration {
    Duration::from_secs(10)
}

fn default_listen() -> String {
    "127.0.0.1:9851".into()
}

fn default_url() -> Url {
    Url::parse("http://127.0.0.1:9850").expect("the default URL parses")
}

/// The shortest push interval accepted.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The longest push interval accepted.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);

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
        let limits = Limits::default();
        let host = host(&raw, &limits, &mut diag);
        check_labels(&raw, &limits, &mut diag);
        let collectors = collectors(&raw, &mut diag);
        let collector_tls = collector_tls(&raw.collector, &mut diag);
        let token = token(&raw, &mut diag);
        if raw.interval < MIN_INTERVAL || raw.interval > MAX_INTERVAL {
            diag.push(
                "interval",
                format!(
                    "must be between {} and {}",
                    humantime::format_duration(MIN_INTERVAL),
                    humantime::format_duration(MAX_INTERVAL)
                ),
            );
        }
        let listen = listen(&raw, &mut diag);
        let spool = spool(&raw, &mut diag);
        let host_metrics = settings::validate(&raw.host_metrics, raw.interval, &mut diag);
        let checks = crate::checks::validate(&raw.checks, raw.interval, &mut diag);
        let config = Config {
            host,
            labels: raw.labels,
            collectors,
            collector_tls,
            token,
            interval: raw.interval,
            listen,
            spool,
            host_metrics,
            checks,
        };
        diag.finish(file, config)
    }

    /// The push endpoint of each collector, preferred first.
    pub fn push_urls(&self) -> Vec<Url> {
        self.collectors.iter().map(push_url).collect()
    }

    /// Collectors reached over plain HTTP on another host: their token and
    /// batches cross the network in clear.
    pub fn clear_text_collectors(&self) -> Vec<&Url> {
        self.collectors
            .iter()
            .filter(|u| {
                u.scheme() == "http"
                    && match u.host_str() {
                        Some("localhost") | None => false,
                        Some(h) => h
                            .trim_matches(['[', ']'])
                            .parse::<std::net::IpAddr>()
                            .map_or(true, |ip| !ip.is_loopback()),
                    }
            })
            .collect()
    }
}

/// The push endpoint under a collector's base URL; a collector behind a
/// path prefix (`https://mon/vedette/`) keeps it.
pub fn push_url(base: &Url) -> Url {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    base.join(vedette_protocol::PUSH_PATH.trim_start_matches('/'))
        .unwrap_or(base)
}

/// The machine's host name, as `hostname` prints it (short form).
pub fn local_host_name() -> String {
    nix::unistd::gethostname()
        .map(|h| {
            let h = h.to_string_lossy();
            h.split('.').next().unwrap_or_default().to_string()
        })
        .unwrap_or_default()
}

/// `host:`, else this machine's short name; either must be a valid host name.
fn host(raw: &RawConfig, limits: &Limits, diag: &mut Diagnostics) -> String {
    let host = raw.host.clone().unwrap_or_else(local_host_name);
    let host_ok = !host.is_empty()
        && host.len() <= limits.max_host_len
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !host_ok {
        let path = if raw.host.is_some() { "host" } else { "" };
        diag.push(
            path,
            format!(
                "host name '{host}' must be 1-{} letters, digits, '.', '-' or '_'{}",
                limits.max_host_len,
                if raw.host.is_none() {
                    "; set `host:` in the config"
                } else {
                    ""
                }
            ),
        );
    }
    host
}

/// `labels:` within the protocol's limits.
fn check_labels(raw: &RawConfig, limits: &Limits, diag: &mut Diagnostics) {
    if raw.labels.len() > limits.max_labels {
        diag.push(
            "labels",
            format!("at most {} labels are allowed", limits.max_labels),
        );
    }
    for (k, v) in &raw.labels {
        if !is_valid_name(k) || k.starts_with("__") {
            diag.push(
                &format!("labels.{k}"),
                "label name must match [A-Za-z_][A-Za-z0-9_]* and not start with '__'",
            );
        }
        if v.len() > limits.max_label_value_len {
            diag.push(
                &format!("labels.{k}"),
                format!(
                    "label value is longer than {} bytes",
                    limits.max_label_value_len
                ),
            );
        }
    }
}

/// The most collectors one agent fails over between.
pub const MAX_COLLECTORS: usize = 16;

/// `collector.url` or `collector.urls` (not both): http or https with a host,
/// each once. Neither: the local collector.
fn collectors(raw: &RawConfig, diag: &mut Diagnostics) -> Vec<Url> {
    let c = &raw.collector;
    let (given, at): (Vec<(String, &str)>, &str) = match (&c.url, c.urls.is_empty()) {
        (Some(_), false) => {
            diag.push(
                "collector.urls",
                "give `url` (one collector) or `urls` (several, preferred first), not both",
            );
            return vec![default_url()];
        }
        (Some(u), true) => (vec![(u.clone(), "collector.url")], "collector.url"),
        (None, true) => return vec![default_url()],
        (None, false) => (
            c.urls
                .iter()
                .map(|u| (u.clone(), "collector.urls"))
                .collect(),
            "collector.urls",
        ),
    };
    if given.len() > MAX_COLLECTORS {
        diag.push(at, format!("at most {MAX_COLLECTORS} collectors"));
    }
    let mut out: Vec<Url> = Vec::new();
    for (i, (text, field)) in given.iter().enumerate() {
        let path = if *field == "collector.urls" {
            format!("collector.urls[{i}]")
        } else {
            field.to_string()
        };
        match Url::parse(text) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                if out.contains(&u) {
                    diag.push(&path, format!("{u} is listed twice"));
                } else {
                    out.push(u);
                }
            }
            Ok(_) => diag.push(&path, "must be an http:// or https:// URL with a host"),
            Err(e) => diag.push(&path, format!("not a URL: {e}")),
        }
    }
    if out.is_empty() {
        out.push(default_url());
    }
    out
}

/// `collector.ca_file`, `cert_file` + `key_file`, `server_name`: the files
/// are read now, so a mistake is reported with its file.
fn collector_tls(c: &RawCollector, diag: &mut Diagnostics) -> CollectorTls {
    let client = match (&c.cert_file, &c.key_file) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        (None, None) => None,
        (Some(_), None) => {
            diag.push(
                "collector.cert_file",
                "needs `key_file` (its private key) beside it",
            );
            None
        }
        (None, Some(_)) => {
            diag.push(
                "collector.key_file",
                "needs `cert_file` (its certificate) beside it",
            );
            None
        }
    };
    if let Some(n) = &c.server_name {
        if rustls::pki_types::ServerName::try_from(n.as_str()).is_err() {
            diag.push(
                "collector.server_name",
                format!("'{n}' is not a DNS name or IP address"),
            );
        }
    }
    let tls = CollectorTls {
        ca_file: c.ca_file.clone(),
        client,
        server_name: c.server_name.clone(),
    };
    if let Err((field, message)) = crate::transport::client_tls(
        tls.ca_file.as_deref(),
        tls.client.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
        None,
    ) {
        diag.push(&format!("collector.{field}"), message);
    }
    tls
}

/// `collector.token` or the first line of `collector.token_file`.
fn token(raw: &RawConfig, diag: &mut Diagnostics) -> Option<String> {
    match (&raw.collector.token, &raw.collector.token_file) {
        (Some(_), Some(_)) => {
            diag.push("collector", "give `token` or `token_file`, not both");
            None
        }
        (Some(t), None) if t.is_empty() => {
            diag.push("collector.token", "must not be empty");
            None
        }
        (Some(t), None) => Some(t.clone()),
        (None, Some(f)) => match std::fs::read_to_string(f) {
            Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
            Ok(_) => {
                diag.push("collector.token_file", format!("{} is empty", f.display()));
                None
            }
            Err(e) => {
                diag.push(
                    "collector.token_file",
                    format!("cannot read {}: {e}", f.display()),
                );
                None
            }
        },
        (None, None) => None,
    }
}

/// `listen:` an address, or `off`.
fn listen(raw: &RawConfig, diag: &mut Diagnostics) -> Option<SocketAddr> {
    match raw.listen.trim() {
        "off" => None,
        addr => match addr.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                diag.push(
                    "listen",
                    format!("'{addr}' is neither `off` nor an address like 127.0.0.1:9851"),
                );
                None
            }
        },
    }
}

/// `spool:` a directory and its size bound, or `off` (memory only).
fn spool(raw: &RawConfig, diag: &mut Diagnostics) -> Option<SpoolConfig> {
    match raw.spool.dir.to_str() {
        Some("off") => None,
        _ => {
            let max_bytes = match raw.spool.max_bytes.trim().parse::<bytesize::ByteSize>() {
                Ok(b) if b.as_u64() >= 64 * 1024 => b.as_u64(),
                Ok(_) => {
                    diag.push("spool.max_bytes", "must be at least 64KiB");
                    0
                }
                Err(_) => {
                    diag.push(
                        "spool.max_bytes",
                        format!(
                            "'{}' is not a size like 64MiB, 500MB or 1GiB",
                            raw.spool.max_bytes
                        ),
                    );
                    0
                }
            };
            Some(SpoolConfig {
                dir: raw.spool.dir.clone(),
                max_bytes,
            })
        }
    }
}

#[cfg(test)]
mod tests;
