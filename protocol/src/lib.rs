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

mod decode;
mod validate;

pub use self::decode::{decode, Encoding, Rejection, RejectionKind};
pub use self::validate::{is_valid_name, reserved_because};

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

#[cfg(test)]
mod tests;
