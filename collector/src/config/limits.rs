//! `limits:` and `http:` — what agents can make the collector hold, and the
//! listener's timeouts.

use super::*;

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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub(super) series_per_host: Option<usize>,
    pub(super) checks_per_host: Option<usize>,
    pub(super) hosts_per_token: Option<usize>,
    pub(super) series_total: Option<usize>,
    pub(super) external_rules: Option<usize>,
    pub(super) external_alerts: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    #[serde(default, with = "humantime_serde")]
    pub(super) header_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub(super) request_timeout: Option<Duration>,
}

pub(super) fn state_limits(raw: &RawLimits, diag: &mut Diagnostics) -> StateLimits {
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

pub(super) fn http_limits(raw: &RawHttp, diag: &mut Diagnostics) -> HttpLimits {
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

/// `forget_hosts_after` and `forget_series_after`, at least a minute each.
pub(super) fn forgetting(raw: &RawConfig, diag: &mut Diagnostics) -> (Duration, Duration) {
    let forget_after = raw.forget_hosts_after.unwrap_or(FORGET_AFTER);
    if forget_after < Duration::from_secs(60) {
        diag.push(
            "forget_hosts_after",
            "must be at least 1m (hosts silent that long disappear from /metrics)",
        );
    }
    let forget_series_after = raw.forget_series_after.unwrap_or(FORGET_SERIES_AFTER);
    if forget_series_after < Duration::from_secs(60) {
        diag.push(
            "forget_series_after",
            "must be at least 1m (and above the longest interval any series is sent at)",
        );
    }
    (forget_after, forget_series_after)
}
