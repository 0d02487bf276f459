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
    /// The collector's base URL.
    pub collector_url: Url,
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
struct RawCollector {
    #[serde(default = "default_url")]
    url: String,
    token: Option<String>,
    token_file: Option<PathBuf>,
}

impl Default for RawCollector {
    fn default() -> Self {
        RawCollector {
            url: default_url(),
            token: None,
            token_file: None,
        }
    }
}

fn default_interval() -> Duration {
    Duration::from_secs(10)
}

fn default_listen() -> String {
    "127.0.0.1:9851".into()
}

fn default_url() -> String {
    "http://127.0.0.1:9850".into()
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
        let collector_url = collector_url(&raw, &mut diag);
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
            collector_url: collector_url
                .unwrap_or_else(|| Url::parse(&default_url()).expect("the default URL parses")),
            token,
            interval: raw.interval,
            listen,
            spool,
            host_metrics,
            checks,
        };
        diag.finish(file, config)
    }

    /// The push endpoint.
    /// A collector behind a path prefix (`https://mon/vedette/`) keeps it.
    pub fn push_url(&self) -> Url {
        let mut base = self.collector_url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        base.join(vedette_protocol::PUSH_PATH.trim_start_matches('/'))
            .unwrap_or(base)
    }
}

/// The machine's host name, as `hostname` prints it (short form).
pub fn local_host_name() -> String {
    sysinfo::System::host_name()
        .map(|h| h.split('.').next().unwrap_or_default().to_string())
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

/// `collector.url`: http or https with a host.
fn collector_url(raw: &RawConfig, diag: &mut Diagnostics) -> Option<Url> {
    match Url::parse(&raw.collector.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
        Ok(_) => {
            diag.push(
                "collector.url",
                "must be an http:// or https:// URL with a host",
            );
            None
        }
        Err(e) => {
            diag.push("collector.url", format!("not a URL: {e}"));
            None
        }
    }
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
