//! `reporting:` services — availability targets over groups of hosts and checks.

use super::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub(super) name: String,
    pub(super) target: f64,
    #[serde(default)]
    pub(super) hosts: Vec<String>,
    #[serde(default)]
    pub(super) host_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) checks: Vec<String>,
    #[serde(default = "default_mode")]
    pub(super) mode: Mode,
}

pub(super) fn default_mode() -> Mode {
    Mode::All
}

pub(super) fn service(raw: &RawService, path: &str, diag: &mut Diagnostics) -> Option<Service> {
    if !(raw.target > 0.0 && raw.target < 1.0) {
        diag.push(
            &format!("{path}.target"),
            format!(
                "{} is not a ratio between 0 and 1 (exclusive); write 99.9 % as 0.999",
                raw.target
            ),
        );
    }
    if raw.checks.is_empty() {
        diag.push(
            &format!("{path}.checks"),
            "give the check names (or globs) the service is made of",
        );
    }
    let scope = match Scope::new(ScopeSpec {
        hosts: raw.hosts.clone(),
        host_labels: raw.host_labels.clone(),
    }) {
        Ok(s) => Some(s),
        Err((field, msg)) => {
            // Scope names its fields `scope.…`; a service has them at top level.
            let field = field.trim_start_matches("scope").trim_start_matches('.');
            let at = if field.is_empty() {
                path.to_string()
            } else {
                format!("{path}.{field}")
            };
            diag.push(&at, msg);
            None
        }
    };
    let check_set = globs(&raw.checks, &format!("{path}.checks"), diag)?;
    Some(Service {
        name: raw.name.clone(),
        target: raw.target,
        scope: scope?,
        checks: raw.checks.clone(),
        check_set,
        mode: raw.mode,
    })
}

/// `services:`, each name once.
pub(super) fn services(raw: &[RawService], diag: &mut Diagnostics) -> Vec<Service> {
    let mut names = HashSet::new();
    raw.iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let path = format!("services[{i}]");
            unique_name(&s.name, &path, &mut names, diag, || {
                format!("service '{}' is defined twice", s.name)
            });
            service(s, &path, diag)
        })
        .collect()
}

/// `status_page:` the public status page, off unless written.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusPage {
    pub title: String,
    /// The services shown, in this order (names from `services:`).
    pub services: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStatusPage {
    #[serde(default = "default_status_title")]
    title: String,
    services: Vec<String>,
}

fn default_status_title() -> String {
    "Service status".into()
}

/// `status_page:`, each listed service defined under `services:`.
pub(super) fn status_page(
    raw: Option<&RawStatusPage>,
    services: &[Service],
    diag: &mut Diagnostics,
) -> Option<StatusPage> {
    let raw = raw?;
    if raw.title.trim().is_empty() || raw.title.chars().count() > 200 {
        diag.push("status_page.title", "must be 1 to 200 characters");
    }
    if raw.services.is_empty() {
        diag.push("status_page.services", "list the services the page shows");
    }
    for (i, s) in raw.services.iter().enumerate() {
        if !services.iter().any(|d| &d.name == s) {
            diag.push(
                &format!("status_page.services[{i}]"),
                format!("'{s}' is not one of the services under `services:`"),
            );
        }
    }
    Some(StatusPage {
        title: raw.title.trim().to_string(),
        services: raw.services.clone(),
    })
}
