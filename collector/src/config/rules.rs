//! `rules:` and `incidents:` — the rules (built-in defaults when none are
//! given) and how incidents live, recur and flap.

use super::*;
use crate::rules::Compare;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIncidents {
    #[serde(default, with = "humantime_serde")]
    pub(super) reopen_within: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub(super) close_after: Option<Duration>,
    pub(super) problem_after: Option<RawProblemAfter>,
    pub(super) flapping: Option<RawFlapping>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProblemAfter {
    pub(super) count: u32,
    #[serde(with = "humantime_serde")]
    pub(super) within: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFlapping {
    pub(super) on: f64,
    pub(super) off: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub(super) name: String,
    pub(super) metric: Option<String>,
    pub(super) above: Option<f64>,
    pub(super) below: Option<f64>,
    pub(super) clear_below: Option<f64>,
    pub(super) clear_above: Option<f64>,
    #[serde(default, rename = "for", with = "humantime_serde")]
    pub(super) for_: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub(super) absent_for: Option<Duration>,
    pub(super) check: Option<String>,
    pub(super) status: Option<Status>,
    pub(super) failures: Option<RawFailures>,
    pub(super) compare: Option<Compare>,
    pub(super) impact: Option<u8>,
    pub(super) urgency: Option<u8>,
    #[serde(default)]
    pub(super) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) hosts: Vec<String>,
    #[serde(default)]
    pub(super) host_labels: BTreeMap<String, String>,
    #[serde(default, with = "humantime_serde")]
    pub(super) resolve_after: Option<Duration>,
    pub(super) summary: Option<String>,
    pub(super) description: Option<String>,
}

/// `failures: 3` or `failures: {count: 3, of: 5}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawFailures {
    Consecutive(u8),
    Window { count: u8, of: u8 },
}

pub(super) fn default_rules(texts: &mut Texts) -> Vec<Rule> {
    let raw: RawConfig = match vedette_yaml::parse("<embedded>", EMBEDDED) {
        Ok(raw) => raw,
        Err(_) => return Vec::new(), // covered by the embedded_default_is_valid test
    };
    let mut diag = Diagnostics::new(EMBEDDED);
    validate_rules(raw.rules.as_deref().unwrap_or_default(), texts, &mut diag)
}

pub(super) fn incident_policy(raw: &RawIncidents, diag: &mut Diagnostics) -> IncidentPolicy {
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

pub(super) fn validate_rules(
    raw: &[RawRule],
    texts: &mut Texts,
    diag: &mut Diagnostics,
) -> Vec<Rule> {
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

pub(super) fn rule_kind(r: &RawRule, path: &str, diag: &mut Diagnostics) -> Option<RuleKind> {
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
    if let Some(metric) = &r.metric {
        return threshold(r, metric, path, diag);
    }
    for (present, key) in [
        (r.above.is_some(), "above"),
        (r.below.is_some(), "below"),
        (r.clear_below.is_some(), "clear_below"),
        (r.clear_above.is_some(), "clear_above"),
        (r.compare.is_some(), "compare"),
    ] {
        only_for(diag, path, present, key, "metric");
    }
    if let Some(after) = r.absent_for {
        only_for(diag, path, r.status.is_some(), "status", "check");
        only_for(diag, path, r.for_.is_some(), "for", "metric and check");
        only_for(diag, path, r.failures.is_some(), "failures", "check");
        if after.is_zero() {
            diag.push(&at("absent_for"), "must be more than 0");
        }
        return Some(RuleKind::Absent { after });
    }
    check_rule(r, path, diag)
}

/// A threshold rule on `metric`: `above` or `below`, with its clear level.
fn threshold(r: &RawRule, metric: &str, path: &str, diag: &mut Diagnostics) -> Option<RuleKind> {
    let at = |k: &str| format!("{path}.{k}");
    if !is_valid_name(metric) {
        diag.push(
            &at("metric"),
            format!("'{metric}' must match [A-Za-z_][A-Za-z0-9_]*"),
        );
    }
    only_for(diag, path, r.status.is_some(), "status", "check");
    only_for(diag, path, r.failures.is_some(), "failures", "check");
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
    Some(RuleKind::Threshold(Threshold {
        metric: metric.to_string(),
        direction,
        threshold,
        clear,
        for_: r.for_.unwrap_or_default(),
        compare: r.compare.unwrap_or_default(),
    }))
}

/// A check rule: a name glob, the status that breaches, `for` or `failures`.
fn check_rule(r: &RawRule, path: &str, diag: &mut Diagnostics) -> Option<RuleKind> {
    let at = |k: &str| format!("{path}.{k}");
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

/// Pushes "applies only to `kind` rules" for `key` when it is given.
fn only_for(diag: &mut Diagnostics, path: &str, present: bool, key: &str, kind: &str) {
    if present {
        diag.push(
            &format!("{path}.{key}"),
            format!("applies only to {kind} rules"),
        );
    }
}
