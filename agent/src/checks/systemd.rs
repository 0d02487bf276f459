//! `systemd` checks: a unit's state from `systemctl show`.
//!
//! `active` is ok; `activating`/`reloading`/`deactivating` a warning;
//! `inactive`/`failed` or a unit that does not exist is critical. When
//! systemctl cannot answer (no systemd, as in most containers) the result is
//! `unknown` with systemctl's own words.

use serde::Deserialize;
use vedette_protocol::Status;
use vedette_yaml::Diagnostics;

use super::Outcome;

/// The program asked.
pub const SYSTEMCTL: &str = "systemctl";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemdSpec {
    pub unit: String,
}

impl SystemdSpec {
    pub fn validate(&self, at: &str, diag: &mut Diagnostics) {
        let ok = !self.unit.is_empty()
            && !self.unit.starts_with('-')
            && self
                .unit
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b));
        if !ok {
            diag.push(
                &format!("{at}.unit"),
                format!("'{}' is not a unit name", self.unit),
            );
        }
    }
}

/// Judges `systemctl show --property=LoadState,ActiveState,SubState` output.
pub fn judge(unit: &str, show: &str) -> Outcome {
    let get = |key: &str| {
        show.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .unwrap_or("")
            .trim()
    };
    let (load, active, sub) = (get("LoadState"), get("ActiveState"), get("SubState"));
    if load == "not-found" {
        return Outcome::critical(format!("{unit} not found"));
    }
    let msg = format!("{unit} {active} ({sub})");
    match active {
        "active" => Outcome::ok(msg),
        "activating" | "reloading" | "deactivating" => Outcome::new(Status::Warning, msg),
        "inactive" | "failed" => Outcome::critical(msg),
        "" => Outcome::new(
            Status::Unknown,
            format!("systemctl said nothing about {unit}"),
        ),
        _ => Outcome::new(Status::Unknown, msg),
    }
}

pub async fn run(spec: &SystemdSpec, systemctl: &str) -> Outcome {
    let out = tokio::process::Command::new(systemctl)
        .args([
            "show",
            "--property=LoadState,ActiveState,SubState",
            "--",
            &spec.unit,
        ])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await;
    match out {
        Err(e) => Outcome::new(Status::Unknown, format!("cannot run {systemctl}: {e}")),
        Ok(o) if !o.status.success() => {
            let err = String::from_utf8_lossy(&o.stderr);
            let first = err.lines().next().unwrap_or("").trim();
            Outcome::new(
                Status::Unknown,
                format!("systemctl failed ({}): {first}", o.status),
            )
        }
        Ok(o) => judge(&spec.unit, &String::from_utf8_lossy(&o.stdout)),
    }
}

#[cfg(test)]
mod tests;
