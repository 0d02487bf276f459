//! Alerts from Alertmanager's webhook: their identity (`host`, else
//! `instance`), priority (from `impact`/`urgency` or `severity`) and the
//! rules made for their alert names, apart from the configured ones.

use super::*;

/// The `source` label of incidents opened from Alertmanager's webhook (for
/// people and receivers; the engine goes by [`Origin`]).
pub const EXTERNAL_SOURCE: &str = "alertmanager";

/// One alert from Alertmanager's webhook (validated by the API).
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalAlert {
    pub firing: bool,
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at_ms: Option<i64>,
}

/// What a webhook call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExternalOutcome {
    pub opened: usize,
    pub resolved: usize,
    /// Repeats of what is already known, or suppressed by a window.
    pub unchanged: usize,
    /// Refused by the store (counted in `vedette_engine_errors_total`); the
    /// others went on.
    pub failed: usize,
}

/// Impact and urgency of an external alert: its `impact`/`urgency` labels
/// (1–3) when both are given, else from `severity` (critical P1, error or
/// major P2, warning P3, info P5, anything else P3).
pub fn external_priority(labels: &Labels) -> (u8, u8) {
    let level = |k: &str| {
        labels
            .get(k)
            .and_then(|v| v.parse::<u8>().ok())
            .filter(|v| (1..=3).contains(v))
    };
    if let (Some(i), Some(u)) = (level("impact"), level("urgency")) {
        return (i, u);
    }
    match labels
        .get("severity")
        .map(|s| s.to_ascii_lowercase())
        .as_deref()
    {
        Some("critical" | "page") => (1, 1),
        Some("error" | "major" | "high") => (1, 2),
        Some("info" | "informational" | "low" | "none") => (3, 3),
        _ => (2, 2),
    }
}

/// The alert name, host and labels of the incident an Alertmanager alert
/// opens: the host is its `host` label, else `instance`, else `alertmanager`;
/// the labels are the alert's others plus `source: alertmanager`.
pub(super) fn external_identity(a: &ExternalAlert) -> Option<(&str, String, Labels)> {
    let name = a.labels.get("alertname")?;
    let host = a
        .labels
        .get("host")
        .or_else(|| a.labels.get("instance"))
        .cloned()
        .unwrap_or_else(|| "alertmanager".into());
    let mut labels: Labels = a
        .labels
        .iter()
        .filter(|(k, v)| k.as_str() != "alertname" && !(k.as_str() == "host" && **v == host))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert("source".into(), EXTERNAL_SOURCE.into());
    Some((name, host, labels))
}

impl Engine {
    /// Acknowledges a live incident.
    /// The rule standing for alerts named `name` from another system, made
    /// on first sight.
    pub(super) fn external_rule(&mut self, name: &str) -> usize {
        if let Some(i) = self.index.names.find(name, true) {
            return i;
        }
        let rule = Rule {
            name: name.into(),
            kind: RuleKind::External,
            impact: 2,
            urgency: 2,
            selector: Default::default(),
            resolve_after: Duration::ZERO,
        };
        let i = self.rules.len();
        self.index.names.insert(i, &rule);
        // Host rule caches stay valid: no sample or heartbeat looks at an
        // external rule's index.
        self.rules.push(rule);
        i
    }

    /// Applies alerts from Alertmanager's webhook: a firing alert opens (or
    /// reopens) its incident unless one is live; a resolved one resolves it.
    /// The fingerprint is the alert's labels, so Alertmanager's repeats and
    /// an HA pair's duplicates land on the same incident.
    pub fn external(
        &mut self,
        alerts: &[ExternalAlert],
        now_ms: i64,
    ) -> Result<ExternalOutcome, ApplyError> {
        self.check_external_limits(alerts)?;
        let mut out = ExternalOutcome::default();
        for a in alerts {
            let Some((name, host, labels)) = external_identity(a) else {
                continue;
            };
            let key = AlertKey {
                rule: self.external_rule(name),
                host,
                labels,
            };
            let counted = if a.firing {
                if self.book.is_live(&key) {
                    out.unchanged += 1;
                    continue;
                }
                let started = a
                    .starts_at_ms
                    .filter(|&t| t > 0 && t <= now_ms)
                    .unwrap_or(now_ms);
                let detail = Detail {
                    message: a.annotations.get("summary").cloned().unwrap_or_default(),
                    description: a
                        .annotations
                        .get("description")
                        .cloned()
                        .unwrap_or_default(),
                    impact_urgency: Some(external_priority(&a.labels)),
                    ..Detail::default()
                };
                self.fire(&key, started, 1.0, detail, 0.0, now_ms)
                    .map(|()| match self.book.is_live(&key) {
                        true => &mut out.opened,
                        // Suppressed by a window.
                        false => &mut out.unchanged,
                    })
            } else if self.book.is_live(&key) || self.suppressed.contains_key(&key) {
                self.clear(&key, now_ms, now_ms).map(|()| &mut out.resolved)
            } else {
                out.unchanged += 1;
                continue;
            };
            match counted {
                Ok(n) => {
                    *n += 1;
                    self.succeeded(Subject::Alert(key));
                }
                Err(e) => {
                    self.failed(Stage::External, Subject::Alert(key), &e);
                    if !e.is_refusal() {
                        return Err(e.into());
                    }
                    out.failed += 1;
                }
            }
        }
        Ok(out)
    }
}
