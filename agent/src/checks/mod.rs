//! Availability checks: configuration, scheduling and the six kinds.
//!
//! Each configured check runs in its own task on its own `interval`, under its
//! own `timeout`, so a slow check never delays another or the host sample.
//! Results (and the samples some checks produce: TLS days left, plugin
//! performance data) wait in [`Pending`] until the next batch takes them.
//!
//! Every result says why it failed, in words an operator can act on:
//! `connect refused`, `timeout after 5s`, `status 503`, `body lacks "ok"`,
//! `certificate expired 3 days ago`, `resolved 10.0.0.9`.

pub mod command;
pub mod dns;
pub mod http;
pub mod perfdata;
pub mod process;
pub mod systemd;
pub mod tcp;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde::Deserialize;
use tokio::task::JoinHandle;
use vedette_protocol::{is_valid_name, CheckKind, CheckResult, Limits, Sample, Status};
use vedette_yaml::Diagnostics;

use vedette_protocol::clock::now_ms;

/// One check as written in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    pub name: String,
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub http: Option<http::HttpSpec>,
    pub tcp: Option<tcp::TcpSpec>,
    pub dns: Option<dns::DnsSpec>,
    pub process: Option<process::ProcessSpec>,
    pub systemd: Option<systemd::SystemdSpec>,
    pub command: Option<command::CommandSpec>,
}

/// What a check does.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    Http(http::HttpSpec),
    Tcp(tcp::TcpSpec),
    Dns(dns::DnsSpec),
    Process(process::ProcessSpec),
    Systemd(systemd::SystemdSpec),
    Command(command::CommandSpec),
}

impl Probe {
    pub fn kind(&self) -> CheckKind {
        match self {
            Probe::Http(_) => CheckKind::Http,
            Probe::Tcp(_) => CheckKind::Tcp,
            Probe::Dns(_) => CheckKind::Dns,
            Probe::Process(_) => CheckKind::Process,
            Probe::Systemd(_) => CheckKind::Systemd,
            Probe::Command(_) => CheckKind::Command,
        }
    }

    /// What is checked, for people (`target` on the wire).
    pub fn target(&self) -> String {
        match self {
            Probe::Http(s) => s.url.clone(),
            Probe::Tcp(s) => s.address.clone(),
            Probe::Dns(s) => s.name.clone(),
            Probe::Process(s) => s.describe(),
            Probe::Systemd(s) => s.unit.clone(),
            Probe::Command(s) => s.path.display().to_string(),
        }
    }
}

/// A validated check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    pub name: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub labels: BTreeMap<String, String>,
    pub probe: Probe,
}

/// The default timeout: 10 s, and never longer than the interval.
pub fn default_timeout(interval: Duration) -> Duration {
    Duration::from_secs(10).min(interval)
}

/// Validates `raw` (at `checks[i]`), reporting every problem to `diag`.
/// `interval` is the agent's, the default for each check.
pub fn validate(raw: &[RawCheck], interval: Duration, diag: &mut Diagnostics) -> Vec<CheckSpec> {
    let limits = Limits::default();
    let mut seen = HashMap::new();
    let mut out = Vec::new();
    for (i, c) in raw.iter().enumerate() {
        let at = |f: &str| {
            if f.is_empty() {
                format!("checks[{i}]")
            } else {
                format!("checks[{i}].{f}")
            }
        };
        if !is_valid_name(&c.name) || c.name.len() > limits.max_name_len {
            diag.push(
                &at("name"),
                format!(
                    "check name '{}' must match [A-Za-z_][A-Za-z0-9_]* (at most {} characters)",
                    c.name, limits.max_name_len
                ),
            );
        }
        if let Some(first) = seen.insert(c.name.clone(), i) {
            diag.push(
                &at("name"),
                format!("check '{}' is already defined at checks[{first}]", c.name),
            );
        }
        let interval = c.interval.unwrap_or(interval);
        if !(Duration::from_secs(1)..=Duration::from_secs(86_400)).contains(&interval) {
            diag.push(&at("interval"), "must be between 1s and 1day");
        }
        let timeout = c.timeout.unwrap_or_else(|| default_timeout(interval));
        if timeout < Duration::from_millis(10) || timeout > interval {
            diag.push(
                &at("timeout"),
                format!(
                    "must be at least 10ms and at most the interval ({})",
                    humantime::format_duration(interval)
                ),
            );
        }
        check_labels(c, &limits, &at, diag);
        let mut probes = probes(c, &at, diag);
        if probes.len() != 1 {
            diag.push(
                &at(""),
                format!(
                    "check '{}' needs exactly one of http, tcp, dns, process, systemd, command (found {})",
                    c.name,
                    probes.len()
                ),
            );
            continue;
        }
        out.push(CheckSpec {
            name: c.name.clone(),
            interval,
            timeout,
            labels: c.labels.clone(),
            probe: probes.remove(0),
        });
    }
    out
}

/// A check's labels: not one the collector reserves, valid, within limits.
fn check_labels(
    c: &RawCheck,
    limits: &Limits,
    at: &dyn Fn(&str) -> String,
    diag: &mut Diagnostics,
) {
    if c.labels.len() > limits.max_labels {
        diag.push(
            &at("labels"),
            format!("at most {} labels are allowed", limits.max_labels),
        );
    }
    for (k, v) in &c.labels {
        // A check's labels go on its result and on its samples.
        let reserved = vedette_protocol::RESERVED_CHECK_LABELS
            .iter()
            .chain(vedette_protocol::RESERVED_SAMPLE_LABELS)
            .find(|r| **r == k.as_str());
        if let Some(r) = reserved {
            diag.push(
                &at(&format!("labels.{k}")),
                vedette_protocol::reserved_because(r),
            );
        } else if !is_valid_name(k) || k.starts_with("__") {
            diag.push(
                &at(&format!("labels.{k}")),
                "label name must match [A-Za-z_][A-Za-z0-9_]* and not start with '__'",
            );
        }
        if v.len() > limits.max_label_value_len {
            diag.push(
                &at(&format!("labels.{k}")),
                format!(
                    "label value is longer than {} bytes",
                    limits.max_label_value_len
                ),
            );
        }
    }
}

/// The probes a check names (it must name exactly one), each validated.
fn probes(c: &RawCheck, at: &dyn Fn(&str) -> String, diag: &mut Diagnostics) -> Vec<Probe> {
    let mut probes = Vec::new();
    if let Some(s) = &c.http {
        s.validate(&at("http"), diag);
        probes.push(Probe::Http(s.clone()));
    }
    if let Some(s) = &c.tcp {
        s.validate(&at("tcp"), diag);
        probes.push(Probe::Tcp(s.clone()));
    }
    if let Some(s) = &c.dns {
        s.validate(&at("dns"), diag);
        probes.push(Probe::Dns(s.clone()));
    }
    if let Some(s) = &c.process {
        s.validate(&at("process"), diag);
        probes.push(Probe::Process(s.clone()));
    }
    if let Some(s) = &c.systemd {
        s.validate(&at("systemd"), diag);
        probes.push(Probe::Systemd(s.clone()));
    }
    if let Some(s) = &c.command {
        s.validate(&at("command"), diag);
        probes.push(Probe::Command(s.clone()));
    }
    probes
}

/// What one run of a check found.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: Status,
    pub message: String,
    /// Extra samples: `(name, labels beyond check and host, value)`.
    pub samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Outcome {
    pub fn new(status: Status, message: impl Into<String>) -> Outcome {
        Outcome {
            status,
            message: message.into(),
            samples: Vec::new(),
        }
    }
    pub fn ok(message: impl Into<String>) -> Outcome {
        Outcome::new(Status::Ok, message)
    }
    pub fn critical(message: impl Into<String>) -> Outcome {
        Outcome::new(Status::Critical, message)
    }
}

/// A check ready to run: its spec plus what it keeps between runs.
pub struct Runner {
    spec: CheckSpec,
    http: Option<http::HttpProbe>,
}

impl Runner {
    pub fn new(spec: CheckSpec) -> anyhow::Result<Runner> {
        let http = match &spec.probe {
            Probe::Http(h) => Some(http::HttpProbe::new(h)?),
            _ => None,
        };
        Ok(Runner { spec, http })
    }

    /// Runs the check once under its timeout.
    pub async fn run(&self) -> (CheckResult, Vec<Sample>) {
        let ts_ms = now_ms();
        let started = std::time::Instant::now();
        let timeout = self.spec.timeout;
        let work = async {
            match (&self.spec.probe, &self.http) {
                (Probe::Http(_), Some(p)) => p.run().await,
                (Probe::Tcp(s), _) => tcp::run(s).await,
                (Probe::Dns(s), _) => dns::run(s).await,
                (Probe::Process(s), _) => {
                    let s = s.clone();
                    tokio::task::spawn_blocking(move || {
                        process::run(&s, std::path::Path::new("/proc"))
                    })
                    .await
                    .unwrap_or_else(|e| {
                        Outcome::new(Status::Unknown, format!("process scan failed: {e}"))
                    })
                }
                (Probe::Systemd(s), _) => systemd::run(s, systemd::SYSTEMCTL).await,
                (Probe::Command(s), _) => command::run(s).await,
                (Probe::Http(_), None) => Outcome::new(Status::Unknown, "http check not set up"),
            }
        };
        let outcome = tokio::time::timeout(timeout, work)
            .await
            .unwrap_or_else(|_| {
                Outcome::critical(format!(
                    "timeout after {}",
                    humantime::format_duration(timeout)
                ))
            });
        let latency_s = started.elapsed().as_secs_f64();
        let mut message = outcome.message;
        truncate(&mut message, Limits::default().max_message_len);
        let result = CheckResult {
            name: self.spec.name.clone(),
            kind: self.spec.probe.kind(),
            target: {
                let mut t = self.spec.probe.target();
                truncate(&mut t, Limits::default().max_id_len);
                t
            },
            labels: self.spec.labels.clone(),
            ts_ms,
            status: outcome.status,
            latency_s,
            message,
        };
        let samples = outcome
            .samples
            .into_iter()
            .filter(|(_, _, v)| v.is_finite())
            .map(|(name, extra, value)| {
                let mut labels = self.spec.labels.clone();
                labels.insert("check".into(), self.spec.name.clone());
                labels.extend(extra);
                Sample {
                    name,
                    labels,
                    ts_ms,
                    value,
                }
            })
            .collect();
        (result, samples)
    }
}

/// True when `needle` occurs in `haystack` (an empty needle always does).
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// Results waiting for the next batch.
#[derive(Debug, Default)]
pub struct Pending {
    pub results: Vec<CheckResult>,
    pub samples: Vec<Sample>,
    /// The latest result of every check, for the local `/metrics`.
    pub latest: BTreeMap<String, CheckResult>,
}

impl Pending {
    /// Queues a result; true when its status differs from the check's
    /// previous one (or a first result is not ok): worth pushing at once.
    fn add(&mut self, result: CheckResult, samples: Vec<Sample>) -> bool {
        let changed = match self.latest.get(&result.name) {
            Some(previous) => previous.status != result.status,
            None => result.status != Status::Ok,
        };
        let limits = Limits::default();
        // A stalled sampler must not grow this without bound: keep the newest.
        if self.results.len() >= limits.max_checks {
            self.results.remove(0);
        }
        if self.samples.len() + samples.len() > limits.max_samples / 2 {
            self.samples.clear();
        }
        self.latest.insert(result.name.clone(), result.clone());
        self.results.push(result);
        self.samples.extend(samples);
        changed
    }

    /// Takes what the next batch carries.
    pub fn take(&mut self) -> (Vec<CheckResult>, Vec<Sample>) {
        (
            std::mem::take(&mut self.results),
            std::mem::take(&mut self.samples),
        )
    }
}

/// The running checks: one task each.
#[derive(Default)]
pub struct Scheduler {
    pub pending: Arc<Mutex<Pending>>,
    /// Woken when a check's status changes (see [`Pending::add`]).
    pub changed: Arc<tokio::sync::Notify>,
    running: HashMap<String, (CheckSpec, JoinHandle<()>)>,
}

impl Scheduler {
    pub fn new() -> Scheduler {
        Scheduler::default()
    }

    /// Makes the running set match `specs`: new checks start, removed ones
    /// stop, changed ones restart. Unchanged checks keep their schedule.
    pub fn sync(&mut self, specs: &[CheckSpec]) {
        let wanted: HashMap<&str, &CheckSpec> =
            specs.iter().map(|s| (s.name.as_str(), s)).collect();
        self.running.retain(|name, (spec, task)| {
            let keep = wanted.get(name.as_str()) == Some(&&*spec);
            if !keep {
                task.abort();
                tracing::info!(check = %name, "check stopped");
            }
            keep
        });
        {
            let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            p.latest
                .retain(|name, _| wanted.contains_key(name.as_str()));
        }
        for spec in specs {
            if self.running.contains_key(&spec.name) {
                continue;
            }
            let runner = match Runner::new(spec.clone()) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(check = %spec.name, error = %e, "cannot set up the check; it will not run");
                    continue;
                }
            };
            let pending = Arc::clone(&self.pending);
            let changed = Arc::clone(&self.changed);
            let task = tokio::spawn(async move {
                // Spread checks that start together over the first second.
                let jitter =
                    rand::rng().random_range(0..=runner.spec.interval.as_millis().min(1000) as u64);
                let first = tokio::time::Instant::now() + Duration::from_millis(jitter);
                let mut ticker = tokio::time::interval_at(first, runner.spec.interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticker.tick().await;
                    let (result, samples) = runner.run().await;
                    if result.status != Status::Ok {
                        tracing::debug!(check = %result.name, status = result.status.as_str(), message = %result.message, "check not ok");
                    }
                    let news = pending
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .add(result, samples);
                    if news {
                        changed.notify_one();
                    }
                }
            });
            tracing::info!(check = %spec.name, kind = ?spec.probe.kind(), every = %humantime::format_duration(spec.interval), "check started");
            self.running.insert(spec.name.clone(), (spec.clone(), task));
        }
    }

    /// Stops every check.
    pub fn stop(&mut self) {
        for (_, (_, task)) in self.running.drain() {
            task.abort();
        }
    }

    /// Names of the running checks, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<_> = self.running.keys().cloned().collect();
        v.sort();
        v
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs every check once, concurrently (for `vedette-agent once`).
pub async fn run_all_once(specs: &[CheckSpec]) -> (Vec<CheckResult>, Vec<Sample>) {
    let mut tasks = Vec::new();
    for spec in specs {
        let spec = spec.clone();
        tasks.push(tokio::spawn(async move {
            match Runner::new(spec.clone()) {
                Ok(r) => r.run().await,
                Err(e) => (
                    CheckResult {
                        name: spec.name.clone(),
                        kind: spec.probe.kind(),
                        target: spec.probe.target(),
                        labels: spec.labels.clone(),
                        ts_ms: now_ms(),
                        status: Status::Unknown,
                        latency_s: 0.0,
                        message: format!("cannot set up the check: {e}"),
                    },
                    Vec::new(),
                ),
            }
        }));
    }
    let mut results = Vec::new();
    let mut samples = Vec::new();
    for t in tasks {
        if let Ok((r, s)) = t.await {
            results.push(r);
            samples.extend(s);
        }
    }
    (results, samples)
}

/// A path that must name an existing file, for config validation.
pub fn validate_file(path: &std::path::Path, at: &str, diag: &mut Diagnostics) {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => diag.push(at, format!("{} is not a file", path.display())),
        Err(e) => diag.push(at, format!("cannot read {}: {e}", path.display())),
    }
}
