//! The protocol's rules on a parsed batch: sizes, names, label sets,
//! timestamps and sequence numbers at their numeric extremes.

use super::*;

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
pub(super) fn is_host_name(s: &str) -> bool {
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

pub(super) fn check_name(
    name: &str,
    limits: &Limits,
    field: impl Fn() -> String,
) -> Result<(), Rejection> {
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

pub(super) fn check_len(
    value: &str,
    max: usize,
    field: impl Fn() -> String,
) -> Result<(), Rejection> {
    if value.len() > max {
        return Err(Rejection::invalid(
            field(),
            format!("longer than {max} bytes"),
        ));
    }
    Ok(())
}

pub(super) fn check_labels(
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
pub(super) fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
