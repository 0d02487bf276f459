//! `notify:` — receivers (webhook, Alertmanager, PagerDuty, ServiceNow),
//! their routes and secrets.

use super::*;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawKind {
    Webhook,
    Alertmanager,
    PagerDuty,
    ServiceNow,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReceiver {
    pub(super) name: String,
    pub(super) kind: RawKind,
    pub(super) url: Option<String>,
    pub(super) secret: Option<String>,
    pub(super) secret_file: Option<PathBuf>,
    pub(super) routing_key: Option<String>,
    pub(super) routing_key_file: Option<PathBuf>,
    pub(super) instance_url: Option<String>,
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    pub(super) password_file: Option<PathBuf>,
    pub(super) close_code: Option<String>,
    #[serde(rename = "match", default)]
    pub(super) route: RawRoute,
    #[serde(default, with = "humantime_serde")]
    pub(super) max_backoff: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub(super) give_up_after: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub(super) timeout: Option<Duration>,
    pub(super) ca_file: Option<PathBuf>,
    #[serde(default = "yes")]
    pub(super) tls_verify: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub(super) min_priority: Option<u8>,
    #[serde(default)]
    pub(super) rules: Vec<String>,
    #[serde(default)]
    pub(super) host_labels: BTreeMap<String, String>,
}

/// A secret given inline (`key`) or in a file (`key_file`), at most one;
/// `Err(())` after reporting a mistake.
pub(super) fn secret(
    inline: Option<&str>,
    file: Option<&Path>,
    key: &str,
    path: &str,
    diag: &mut Diagnostics,
) -> Result<Option<Secret>, ()> {
    match (inline, file) {
        (Some(_), Some(_)) => {
            diag.push(
                &format!("{path}.{key}"),
                format!("give `{key}` or `{key}_file`, not both"),
            );
            Err(())
        }
        (Some(""), None) => {
            diag.push(&format!("{path}.{key}"), "must not be empty");
            Err(())
        }
        (Some(s), None) => Ok(Some(Secret(s.to_string()))),
        (None, Some(f)) => match std::fs::read_to_string(f) {
            Ok(t) if !t.trim().is_empty() => Ok(Some(Secret(t.trim().to_string()))),
            Ok(_) => {
                diag.push(
                    &format!("{path}.{key}_file"),
                    format!("{} is empty", f.display()),
                );
                Err(())
            }
            Err(e) => {
                diag.push(
                    &format!("{path}.{key}_file"),
                    format!("cannot read {}: {e}", f.display()),
                );
                Err(())
            }
        },
        (None, None) => Ok(None),
    }
}

/// An `http://` or `https://` URL with a host.
pub(super) fn http_url(
    url: Option<&str>,
    field: &str,
    path: &str,
    diag: &mut Diagnostics,
) -> Option<String> {
    let at = format!("{path}.{field}");
    let Some(url) = url else {
        diag.push(&at, "is required for this kind of receiver");
        return None;
    };
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            Some(url.to_string())
        }
        Ok(u) => {
            diag.push(
                &at,
                format!(
                    "'{url}' must be an http:// or https:// URL (scheme is {})",
                    u.scheme()
                ),
            );
            None
        }
        Err(e) => {
            diag.push(&at, format!("'{url}' is not a URL: {e}"));
            None
        }
    }
}

pub(super) fn receiver(raw: &RawReceiver, path: &str, diag: &mut Diagnostics) -> Option<Receiver> {
    let mut ok = no_foreign_keys(raw, path, diag);
    let kind = kind(raw, path, diag);
    let route = route(raw, path, diag, &mut ok);
    let (max_backoff, give_up_after, timeout) = timing(raw, path, diag, &mut ok);
    let ca_certs = match &raw.ca_file {
        None => Vec::new(),
        Some(f) => match crate::tls::read_certs(f, "ca_file") {
            Ok(c) => c,
            Err(e) => {
                diag.push(&format!("{path}.ca_file"), e.message);
                ok = false;
                Vec::new()
            }
        },
    };
    let (kind, route) = (kind?, route?);
    if !ok {
        return None;
    }
    Some(Receiver {
        name: raw.name.clone(),
        kind,
        route,
        max_backoff,
        give_up_after,
        timeout,
        ca_certs,
        tls_verify: raw.tls_verify,
    })
}

fn kind_name(kind: &RawKind) -> &'static str {
    match kind {
        RawKind::Webhook => "webhook",
        RawKind::Alertmanager => "alertmanager",
        RawKind::PagerDuty => "pagerduty",
        RawKind::ServiceNow => "servicenow",
    }
}

/// Keys that belong to other kinds are mistakes worth naming; false if any.
fn no_foreign_keys(raw: &RawReceiver, path: &str, diag: &mut Diagnostics) -> bool {
    let allowed: &[&str] = match raw.kind {
        RawKind::Webhook => &["url", "secret"],
        RawKind::Alertmanager => &["url"],
        RawKind::PagerDuty => &["url", "routing_key"],
        RawKind::ServiceNow => &["instance_url", "username", "password", "close_code"],
    };
    let given = [
        ("url", raw.url.is_some()),
        ("secret", raw.secret.is_some() || raw.secret_file.is_some()),
        (
            "routing_key",
            raw.routing_key.is_some() || raw.routing_key_file.is_some(),
        ),
        ("instance_url", raw.instance_url.is_some()),
        ("username", raw.username.is_some()),
        (
            "password",
            raw.password.is_some() || raw.password_file.is_some(),
        ),
        ("close_code", raw.close_code.is_some()),
    ];
    let mut ok = true;
    for (key, set) in given {
        if set && !allowed.contains(&key) {
            diag.push(
                &format!("{path}.{key}"),
                format!("is not a setting of {} receivers", kind_name(&raw.kind)),
            );
            ok = false;
        }
    }
    ok
}

/// A secret the kind needs (`key` or `key_file`), named when missing.
fn required(
    s: Result<Option<Secret>, ()>,
    raw: &RawReceiver,
    key: &str,
    path: &str,
    diag: &mut Diagnostics,
) -> Option<Secret> {
    match s {
        Ok(Some(s)) => Some(s),
        Ok(None) => {
            diag.push(
                &format!("{path}.{key}"),
                format!(
                    "{} receivers need `{key}` or `{key}_file`",
                    kind_name(&raw.kind)
                ),
            );
            None
        }
        Err(()) => None,
    }
}

/// Where and how the receiver delivers, with its kind's own settings.
fn kind(raw: &RawReceiver, path: &str, diag: &mut Diagnostics) -> Option<Kind> {
    Some(match raw.kind {
        RawKind::Webhook => {
            let url = http_url(raw.url.as_deref(), "url", path, diag);
            let secret = secret(
                raw.secret.as_deref(),
                raw.secret_file.as_deref(),
                "secret",
                path,
                diag,
            );
            Kind::Webhook {
                url: url?,
                secret: secret.ok()?,
            }
        }
        RawKind::Alertmanager => Kind::Alertmanager {
            url: http_url(raw.url.as_deref(), "url", path, diag)?,
        },
        RawKind::PagerDuty => {
            let url = match &raw.url {
                Some(u) => http_url(Some(u), "url", path, diag),
                None => Some(crate::notify::PAGERDUTY_URL.to_string()),
            };
            let key = secret(
                raw.routing_key.as_deref(),
                raw.routing_key_file.as_deref(),
                "routing_key",
                path,
                diag,
            );
            let routing_key = required(key, raw, "routing_key", path, diag);
            Kind::PagerDuty {
                url: url?,
                routing_key: routing_key?,
            }
        }
        RawKind::ServiceNow => {
            let instance_url = http_url(raw.instance_url.as_deref(), "instance_url", path, diag);
            let username = raw.username.clone().filter(|u| !u.is_empty());
            if username.is_none() {
                diag.push(
                    &format!("{path}.username"),
                    "servicenow receivers need a `username`",
                );
            }
            let pw = secret(
                raw.password.as_deref(),
                raw.password_file.as_deref(),
                "password",
                path,
                diag,
            );
            let password = required(pw, raw, "password", path, diag);
            Kind::ServiceNow {
                instance_url: instance_url?,
                username: username?,
                password: password?,
                close_code: raw
                    .close_code
                    .clone()
                    .unwrap_or_else(|| crate::notify::DEFAULT_CLOSE_CODE.to_string()),
            }
        }
    })
}

/// `match:`: the lowest priority sent, the rules and host labels routed.
fn route(raw: &RawReceiver, path: &str, diag: &mut Diagnostics, ok: &mut bool) -> Option<Route> {
    let min_priority = raw.route.min_priority.unwrap_or(5);
    if !(1..=5).contains(&min_priority) {
        diag.push(
            &format!("{path}.match.min_priority"),
            format!(
                "{min_priority} is not a priority; 1 (highest) … 5 (lowest): 2 sends P1 and P2"
            ),
        );
        *ok = false;
    }
    let rules: Vec<String> = raw
        .route
        .rules
        .iter()
        .filter(|r| *r != "*")
        .cloned()
        .collect();
    let rule_set = globs(&rules, &format!("{path}.match.rules"), diag);
    let host_labels = matchers(
        &raw.route.host_labels,
        &format!("{path}.match.host_labels"),
        diag,
    );
    Some(Route {
        min_priority,
        rules: rule_set?,
        host_labels,
    })
}

/// `max_backoff`, `give_up_after` and `timeout`, within their bounds.
fn timing(
    raw: &RawReceiver,
    path: &str,
    diag: &mut Diagnostics,
    ok: &mut bool,
) -> (Duration, Duration, Duration) {
    let max_backoff = raw
        .max_backoff
        .unwrap_or(crate::notify::DEFAULT_MAX_BACKOFF);
    let give_up_after = raw
        .give_up_after
        .unwrap_or(crate::notify::DEFAULT_GIVE_UP_AFTER);
    let timeout = raw.timeout.unwrap_or(crate::notify::DEFAULT_TIMEOUT);
    if max_backoff < Duration::from_secs(1) {
        diag.push(&format!("{path}.max_backoff"), "must be at least 1s");
        *ok = false;
    }
    if give_up_after < Duration::from_secs(60) {
        diag.push(
            &format!("{path}.give_up_after"),
            "must be at least 1m (a receiver restarting should not lose notifications)",
        );
        *ok = false;
    }
    if timeout.is_zero() || timeout > Duration::from_secs(300) {
        diag.push(&format!("{path}.timeout"), "must be between 1ms and 5m");
        *ok = false;
    }
    (max_backoff, give_up_after, timeout)
}

/// `notify:`, each receiver name once.
pub(super) fn receivers(raw: &[RawReceiver], diag: &mut Diagnostics) -> Vec<Receiver> {
    let mut names = HashSet::new();
    raw.iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let path = format!("notify[{i}]");
            unique_name(&r.name, &path, &mut names, diag, || {
                format!("receiver '{}' is defined twice", r.name)
            });
            receiver(r, &path, diag)
        })
        .collect()
}
