//! vedette push protocol v1: what an agent sends, what the collector answers,
//! and the limits both sides enforce. The protocol document is this crate's
//! `README.md`.
//!
//! - [`Batch`] and its parts are the wire types (JSON, optionally gzip).
//! - [`Limits`] bounds every dimension of a batch; [`decode`] applies them in
//!   order — compressed size, decompressed size, JSON shape, then
//!   [`Batch::validate`] — so nothing unbounded reaches the caller.
//! - [`Rejection`] says which limit or rule a batch broke, the field it broke
//!   it in, and the HTTP status that goes with it.
//!
//! No I/O and no clock reads: the current time is an argument.

pub mod clock;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks.
pub const VERSION: u32 = 1;

/// The path the collector accepts batches on.
pub const PUSH_PATH: &str = "/api/v1/push";

/// The largest `seq` a batch may carry: what a signed 64-bit column stores
/// exactly, so an acknowledged `seq` survives a collector restart unchanged.
pub const MAX_SEQ: u64 = i64::MAX as u64;

/// Label names a sample may not carry: the collector gives them meaning
/// (`host` it adds from `agent.host`, `source` marks where an incident came
/// from, `alertname` is the alert's name in Alertmanager) or the exposition
/// format does (`le` belongs to histograms, `quantile` to summaries).
pub const RESERVED_SAMPLE_LABELS: &[&str] = &["host", "source", "alertname", "le", "quantile"];

/// Label names a check result may not carry: as for samples, plus `check`,
/// which the collector adds from the check's name.
pub const RESERVED_CHECK_LABELS: &[&str] = &["host", "source", "alertname", "check"];

/// One push: an agent's samples and check results since its previous batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Always [`VERSION`].
    pub version: u32,
    /// Who sends.
    pub agent: AgentInfo,
    /// Increases by one per batch for a given `agent.boot_id`, from 1 to [`MAX_SEQ`].
    pub seq: u64,
    /// When this request was sent, by the agent's clock (milliseconds since the Unix epoch).
    pub sent_at_ms: i64,
    /// Metric samples.
    #[serde(default)]
    pub samples: Vec<Sample>,
    /// Availability check results.
    #[serde(default)]
    pub checks: Vec<CheckResult>,
}

/// The sending agent's identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Host name the agent reports as; the collector's token must allow it.
    pub host: String,
    /// The agent's version string.
    pub version: String,
    /// Host labels (`env`, `role`, …) used by host selectors.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The agent's run identity; `seq` counts within it.
    pub boot_id: String,
    /// The agent's push interval in seconds, so the collector knows when a
    /// heartbeat is late.
    pub interval_s: f64,
}

/// One metric sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Metric name in Prometheus style and base units (`memory_used_ratio`).
    pub name: String,
    /// Distinguishing labels (`mountpoint`, `interface`, …). `host` is reserved.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// When it was measured (milliseconds since the Unix epoch).
    pub ts_ms: i64,
    /// Finite value.
    pub value: f64,
}

/// The result of one availability check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check's configured name.
    pub name: String,
    /// What kind of check produced it.
    pub kind: CheckKind,
    /// What was checked (URL, address, unit, command); for people.
    #[serde(default)]
    pub target: String,
    /// The check's configured labels (`team`, `service`, …); optional on the
    /// wire, same rules as sample labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// When it ran (milliseconds since the Unix epoch).
    pub ts_ms: i64,
    /// Nagios-style outcome.
    pub status: Status,
    /// How long the check took, in seconds.
    pub latency_s: f64,
    /// Why: `HTTP 200`, `connect refused`, `timeout after 5s`.
    #[serde(default)]
    pub message: String,
}

/// Kinds of availability check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    Http,
    Tcp,
    Dns,
    Process,
    Systemd,
    Command,
}

/// Check outcome, in Nagios exit-code order (0–3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl Status {
    /// The status for a Nagios plugin exit code; anything outside 0–3 is `unknown`.
    pub fn from_exit_code(code: i32) -> Status {
        match code {
            0 => Status::Ok,
            1 => Status::Warning,
            2 => Status::Critical,
            _ => Status::Unknown,
        }
    }

    /// The wire name (`ok`, `warning`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Critical => "critical",
            Status::Unknown => "unknown",
        }
    }
}

/// The collector's answer to an accepted (or already applied) batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushAck {
    /// Samples and check results applied from this request (0 for a repeat).
    pub accepted: usize,
    /// The `seq` acknowledged; the agent may forget every batch up to it.
    pub ack_seq: u64,
}

/// The JSON body of every 4xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What is wrong, for a person.
    pub error: String,
    /// The offending field (`samples[3].value`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The collector's limit the request would have passed
    /// (`series_per_host`, …), on a 413 or 429 for state limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

/// Every bound the collector enforces on a push, before any state changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Request body as sent (compressed or not).
    pub max_body_bytes: usize,
    /// Body after gzip decoding; bounds a decompression bomb.
    pub max_decoded_bytes: usize,
    /// Samples in one batch.
    pub max_samples: usize,
    /// Check results in one batch.
    pub max_checks: usize,
    /// Labels on one sample, or on the agent.
    pub max_labels: usize,
    /// Length of a metric, check or label name.
    pub max_name_len: usize,
    /// Length of a label value.
    pub max_label_value_len: usize,
    /// Length of a host name (DNS limit).
    pub max_host_len: usize,
    /// Length of `boot_id`, `agent.version`, a check's `target`.
    pub max_id_len: usize,
    /// Length of a check's `message`.
    pub max_message_len: usize,
    /// How far `sent_at_ms` may be from the collector's clock, either way.
    pub max_clock_skew_ms: i64,
    /// How old a sample may be relative to `sent_at_ms` (spooled batches are old).
    pub max_sample_age_ms: i64,
    /// How far past `sent_at_ms` a sample may be stamped.
    pub max_sample_future_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1 << 20,
            max_decoded_bytes: 8 << 20,
            max_samples: 10_000,
            max_checks: 1_000,
            max_labels: 16,
            max_name_len: 128,
            max_label_value_len: 256,
            max_host_len: 253,
            max_id_len: 512,
            max_message_len: 1024,
            max_clock_skew_ms: 5 * 60 * 1000,
            max_sample_age_ms: 7 * 24 * 3600 * 1000,
            max_sample_future_ms: 60 * 1000,
        }
    }
}

/// How a request body is encoded (`Content-Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

impl Encoding {
    /// Parses a `Content-Encoding` header value; `None` means no header.
    pub fn from_header(value: Option<&str>) -> Result<Encoding, Rejection> {
        match value.map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(Encoding::Identity),
            Some(v) if v.is_empty() || v == "identity" => Ok(Encoding::Identity),
            Some(v) if v == "gzip" || v == "x-gzip" => Ok(Encoding::Gzip),
            Some(v) => Err(Rejection::new(
                RejectionKind::UnsupportedEncoding,
                None,
                format!("content-encoding '{v}' is not supported; send gzip or identity"),
            )),
        }
    }
}

/// Why a batch was refused. Each kind maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionKind {
    /// 400: malformed JSON or a value outside the rules.
    Invalid,
    /// 413: the body, the decoded body, or a count is over its limit.
    TooLarge,
    /// 415: a `Content-Encoding` other than gzip or identity.
    UnsupportedEncoding,
}

impl RejectionKind {
    /// The HTTP status code for this kind.
    pub fn status(self) -> u16 {
        match self {
            RejectionKind::Invalid => 400,
            RejectionKind::TooLarge => 413,
            RejectionKind::UnsupportedEncoding => 415,
        }
    }
}

/// A refused batch: kind, offending field, and a message that names the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Rejection {
    pub kind: RejectionKind,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl Rejection {
    fn new(kind: RejectionKind, field: Option<String>, message: impl Into<String>) -> Self {
        Rejection {
            kind,
            field,
            message: message.into(),
        }
    }

    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Rejection::new(RejectionKind::Invalid, Some(field.into()), message)
    }

    fn too_large(field: impl Into<String>, message: impl Into<String>) -> Self {
        Rejection::new(RejectionKind::TooLarge, Some(field.into()), message)
    }

    /// The JSON body to answer with.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.message.clone(),
            field: self.field.clone(),
            limit: None,
        }
    }
}

/// Decodes and validates one request body: size, decompression (bounded),
/// JSON, then [`Batch::validate`] against `now_ms`.
pub fn decode(
    body: &[u8],
    encoding: Encoding,
    limits: &Limits,
    now_ms: i64,
) -> Result<Batch, Rejection> {
    if body.len() > limits.max_body_bytes {
        return Err(Rejection::new(
            RejectionKind::TooLarge,
            None,
            format!(
                "body is {} bytes, over the limit of {}; send smaller batches",
                body.len(),
                limits.max_body_bytes
            ),
        ));
    }
    let decoded;
    let json: &[u8] = match encoding {
        Encoding::Identity => {
            if body.len() > limits.max_decoded_bytes {
                return Err(decoded_too_large(limits));
            }
            body
        }
        Encoding::Gzip => {
            decoded = gunzip_bounded(body, limits.max_decoded_bytes)?;
            &decoded
        }
    };
    let batch = parse_json(json)?;
    batch.validate(limits, now_ms)?;
    Ok(batch)
}

fn decoded_too_large(limits: &Limits) -> Rejection {
    Rejection::new(
        RejectionKind::TooLarge,
        None,
        format!(
            "decoded body is over the limit of {} bytes; send smaller batches",
            limits.max_decoded_bytes
        ),
    )
}

/// Inflates gzip, refusing to produce more than `max` bytes.
fn gunzip_bounded(body: &[u8], max: usize) -> Result<Vec<u8>, Rejection> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(max));
    // Read one byte past the limit so "exactly max" and "over max" differ.
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let mut reader = flate2::read::GzDecoder::new(body).take(limit);
    reader.read_to_end(&mut out).map_err(|e| {
        Rejection::new(
            RejectionKind::Invalid,
            None,
            format!("body is not valid gzip: {e}"),
        )
    })?;
    if out.len() > max {
        return Err(Rejection::new(
            RejectionKind::TooLarge,
            None,
            format!("gzip body inflates past the limit of {max} bytes; send smaller batches"),
        ));
    }
    Ok(out)
}

fn parse_json(json: &[u8]) -> Result<Batch, Rejection> {
    // Fast path: a plain parse. The parse with path tracking was 35 % of
    // the collector's instructions under load (tests/bench/profile.sh), so
    // only a batch that fails is parsed again, to name the field.
    if let Ok(batch) = serde_json::from_slice(json) {
        return Ok(batch);
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    let batch: Batch = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = (path != ".").then_some(path);
        Rejection::new(
            RejectionKind::Invalid,
            field,
            format!("malformed batch: {}", e.into_inner()),
        )
    })?;
    de.end().map_err(|e| {
        Rejection::new(
            RejectionKind::Invalid,
            None,
            format!("malformed batch: {e}"),
        )
    })?;
    Ok(batch)
}

impl Batch {
    /// Checks every rule of protocol v1 against `limits`, with the collector's
    /// clock at `now_ms`. The first broken rule is reported.
    pub fn validate(&self, limits: &Limits, now_ms: i64) -> Result<(), Rejection> {
        if self.version != VERSION {
            return Err(Rejection::invalid(
                "version",
                format!(
                    "protocol version {} is not supported; this collector speaks {VERSION}",
                    self.version
                ),
            ));
        }
        self.agent.validate(limits)?;
        if self.seq == 0 || self.seq > MAX_SEQ {
            return Err(Rejection::invalid(
                "seq",
                format!("seq must be between 1 and {MAX_SEQ}; start each boot_id at 1"),
            ));
        }
        // Wire integers are compared in i128: no difference of two i64 can
        // overflow there, whatever the agent sent.
        let skew = i128::from(self.sent_at_ms) - i128::from(now_ms);
        if skew.unsigned_abs() > u128::from(limits.max_clock_skew_ms.unsigned_abs()) {
            return Err(Rejection::invalid(
                "sent_at_ms",
                format!(
                    "agent clock is {} s {} the collector's (limit {} s); fix the agent's time sync",
                    skew.unsigned_abs() / 1000,
                    if skew > 0 { "ahead of" } else { "behind" },
                    limits.max_clock_skew_ms / 1000
                ),
            ));
        }
        if self.samples.len() > limits.max_samples {
            return Err(Rejection::too_large(
                "samples",
                format!(
                    "{} samples, over the limit of {} per batch",
                    self.samples.len(),
                    limits.max_samples
                ),
            ));
        }
        if self.checks.len() > limits.max_checks {
            return Err(Rejection::too_large(
                "checks",
                format!(
                    "{} check results, over the limit of {} per batch",
                    self.checks.len(),
                    limits.max_checks
                ),
            ));
        }
        for (i, sample) in self.samples.iter().enumerate() {
            let at = |f: &str| format!("samples[{i}].{f}");
            check_name(&sample.name, limits, || at("name"))?;
            check_labels(
                &sample.labels,
                limits,
                || at("labels"),
                RESERVED_SAMPLE_LABELS,
            )?;
            self.check_ts(sample.ts_ms, limits, || at("ts_ms"))?;
            if !sample.value.is_finite() {
                return Err(Rejection::invalid(at("value"), "value must be finite"));
            }
        }
        for (i, check) in self.checks.iter().enumerate() {
            let at = |f: &str| format!("checks[{i}].{f}");
            check_name(&check.name, limits, || at("name"))?;
            check_labels(
                &check.labels,
                limits,
                || at("labels"),
                RESERVED_CHECK_LABELS,
            )?;
            check_len(&check.target, limits.max_id_len, || at("target"))?;
            check_len(&check.message, limits.max_message_len, || at("message"))?;
            self.check_ts(check.ts_ms, limits, || at("ts_ms"))?;
            if !(check.latency_s.is_finite() && check.latency_s >= 0.0) {
                return Err(Rejection::invalid(
                    at("latency_s"),
                    "latency must be a finite number of seconds, 0 or more",
                ));
            }
        }
        Ok(())
    }

    fn check_ts(
        &self,
        ts_ms: i64,
        limits: &Limits,
        field: impl Fn() -> String,
    ) -> Result<(), Rejection> {
        let age = i128::from(self.sent_at_ms) - i128::from(ts_ms);
        if age > i128::from(limits.max_sample_age_ms) {
            return Err(Rejection::invalid(
                field(),
                format!(
                    "timestamp is {} s older than sent_at_ms (limit {} s)",
                    age / 1000,
                    limits.max_sample_age_ms / 1000
                ),
            ));
        }
        if -age > i128::from(limits.max_sample_future_ms) {
            return Err(Rejection::invalid(
                field(),
                format!(
                    "timestamp is {} s after sent_at_ms (limit {} s)",
                    -age / 1000,
                    limits.max_sample_future_ms / 1000
                ),
            ));
        }
        Ok(())
    }
}

impl AgentInfo {
    fn validate(&self, limits: &Limits) -> Result<(), Rejection> {
        if !is_host_name(&self.host) || self.host.len() > limits.max_host_len {
            return Err(Rejection::invalid(
                "agent.host",
                format!(
                    "host name must be 1-{} characters of letters, digits, '.', '-' and '_'",
                    limits.max_host_len
                ),
            ));
        }
        check_len(&self.version, limits.max_id_len, || "agent.version".into())?;
        if self.boot_id.is_empty()
            || self.boot_id.len() > limits.max_id_len
            || !self
                .boot_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(Rejection::invalid(
                "agent.boot_id",
                "boot_id must be 1 or more letters, digits and '-'",
            ));
        }
        if !(self.interval_s.is_finite() && (0.1..=86_400.0).contains(&self.interval_s)) {
            return Err(Rejection::invalid(
                "agent.interval_s",
                "interval must be between 0.1 and 86400 seconds",
            ));
        }
        check_labels(&self.labels, limits, || "agent.labels".into(), &[])
    }
}

/// Host names: what DNS and `hostname` allow, plus `_`.
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// Metric, label and check names: `[A-Za-z_][A-Za-z0-9_]*`, the Prometheus charset
/// without `:` (reserved for recording rules).
pub fn is_valid_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn check_name(name: &str, limits: &Limits, field: impl Fn() -> String) -> Result<(), Rejection> {
    if name.len() > limits.max_name_len {
        return Err(Rejection::invalid(
            field(),
            format!("name is longer than {} characters", limits.max_name_len),
        ));
    }
    if !is_valid_name(name) {
        return Err(Rejection::invalid(
            field(),
            format!(
                "name '{}' must match [A-Za-z_][A-Za-z0-9_]*",
                truncate(name)
            ),
        ));
    }
    Ok(())
}

fn check_len(value: &str, max: usize, field: impl Fn() -> String) -> Result<(), Rejection> {
    if value.len() > max {
        return Err(Rejection::invalid(
            field(),
            format!("longer than {max} bytes"),
        ));
    }
    Ok(())
}

fn check_labels(
    labels: &BTreeMap<String, String>,
    limits: &Limits,
    field: impl Fn() -> String,
    reserved: &[&str],
) -> Result<(), Rejection> {
    if labels.len() > limits.max_labels {
        return Err(Rejection::too_large(
            field(),
            format!(
                "{} labels, over the limit of {}",
                labels.len(),
                limits.max_labels
            ),
        ));
    }
    for (key, value) in labels {
        let at = || format!("{}.{}", field(), truncate(key));
        if key.len() > limits.max_name_len || !is_valid_name(key) || key.starts_with("__") {
            return Err(Rejection::invalid(
                at(),
                format!(
                    "label name must match [A-Za-z_][A-Za-z0-9_]*, not start with '__', and be at most {} characters",
                    limits.max_name_len
                ),
            ));
        }
        if reserved.contains(&key.as_str()) {
            return Err(Rejection::invalid(at(), reserved_because(key)));
        }
        if value.len() > limits.max_label_value_len {
            return Err(Rejection::invalid(
                at(),
                format!(
                    "label value is longer than {} bytes",
                    limits.max_label_value_len
                ),
            ));
        }
    }
    Ok(())
}

/// Why a reserved label name may not be sent.
pub fn reserved_because(label: &str) -> String {
    let why = match label {
        "host" => "the collector adds it from agent.host",
        "check" => "the collector adds it from the check's name",
        "source" => "the collector marks where an incident came from with it",
        "alertname" => "it names the alert in Alertmanager",
        "le" => "it belongs to histogram buckets in Prometheus' exposition format",
        "quantile" => "it belongs to summaries in Prometheus' exposition format",
        _ => "the collector gives it a meaning",
    };
    format!("label '{label}' is reserved: {why}; rename it")
}

/// Shortens untrusted text before it goes into an error message.
fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests;
