//! Alertmanager's webhook in: bounded, validated alerts for the engine.

use super::*;

/// Alertmanager's webhook payload (version 4); fields we do not use are ignored.
#[derive(Debug, Deserialize)]
pub(super) struct AlertmanagerWebhook {
    pub(super) version: String,
    pub(super) alerts: Vec<AlertmanagerAlert>,
}

#[derive(Debug, Deserialize)]
pub(super) struct AlertmanagerAlert {
    pub(super) status: String,
    #[serde(default)]
    pub(super) labels: Labels,
    #[serde(default)]
    pub(super) annotations: Labels,
    #[serde(rename = "startsAt")]
    pub(super) starts_at: Option<String>,
}

/// Checks one webhook body and turns it into the engine's alerts.
pub(super) fn external_alerts(body: &[u8]) -> Result<Vec<ExternalAlert>, ApiError> {
    let w: AlertmanagerWebhook = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(
            format!("body must be Alertmanager's webhook JSON (version 4): {e}"),
            None,
        )
    })?;
    if w.version != "4" {
        return Err(bad(
            "version",
            format!(
                "'{}' is not supported; Alertmanager sends version 4",
                w.version
            ),
        ));
    }
    if w.alerts.len() > MAX_ALERTS {
        return Err(bad(
            "alerts",
            format!("{} alerts in one call; at most {MAX_ALERTS} (set max_alerts in Alertmanager's webhook_config)", w.alerts.len()),
        ));
    }
    w.alerts
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let firing = match a.status.as_str() {
                "firing" => true,
                "resolved" => false,
                other => {
                    return Err(bad(
                        &format!("alerts[{i}].status"),
                        format!("'{other}' is neither firing nor resolved"),
                    ))
                }
            };
            if a.labels.get("alertname").is_none_or(|n| n.is_empty()) {
                return Err(bad(&format!("alerts[{i}].labels.alertname"), "is required"));
            }
            if a.labels.len() > MAX_ALERT_LABELS {
                return Err(bad(
                    &format!("alerts[{i}].labels"),
                    format!("more than {MAX_ALERT_LABELS} labels"),
                ));
            }
            for (k, v) in a.labels.iter().chain(&a.annotations) {
                if k.len() > 256 || v.chars().count() > MAX_NOTE_CHARS {
                    return Err(bad(
                        &format!("alerts[{i}]"),
                        format!(
                            "label or annotation '{}' is too long",
                            k.chars().take(64).collect::<String>()
                        ),
                    ));
                }
            }
            let starts_at_ms = match a.starts_at.as_deref() {
                None | Some("") | Some("0001-01-01T00:00:00Z") => None,
                Some(t) => Some(parse_time(&format!("alerts[{i}].startsAt"), t)?),
            };
            Ok(ExternalAlert {
                firing,
                labels: a.labels,
                annotations: a.annotations,
                starts_at_ms,
            })
        })
        .collect()
}

/// `POST /api/v1/alertmanager`: Alertmanager's webhook in. Each alert opens
/// or resolves an incident (operator token).
pub(super) async fn alertmanager_in(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ExternalOutcome>, ApiError> {
    authorize(&app, &headers, Role::Operator)?;
    let alerts = external_alerts(&body)?;
    let outcome = match app.engine.external(alerts).await? {
        Ok(outcome) => outcome,
        Err(ApplyError::Limited(l)) => {
            app.metrics.limited(l.limit);
            return Err(ApiError::Limited(l));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Json(outcome))
}
