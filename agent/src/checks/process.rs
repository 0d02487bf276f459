//! `process` checks: how many processes match a name (the kernel's `comm`,
//! or the file name of `argv[0]` when `comm` is truncated) and/or a regular
//! expression over the command line. The scan reads `/proc` only when such
//! a check runs; the agent never keeps a process table.

use std::path::Path;

use serde::Deserialize;
use vedette_protocol::Status;
use vedette_yaml::Diagnostics;

use super::Outcome;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSpec {
    pub name: Option<String>,
    /// A regular expression matched against the command line (arguments
    /// joined by spaces).
    pub cmdline: Option<String>,
    #[serde(default = "one")]
    pub min: usize,
    pub max: Option<usize>,
}

fn one() -> usize {
    1
}

impl ProcessSpec {
    pub fn validate(&self, at: &str, diag: &mut Diagnostics) {
        if self.name.is_none() && self.cmdline.is_none() {
            diag.push(at, "give `name`, `cmdline` or both");
        }
        if let Some(re) = &self.cmdline {
            if let Err(e) = regex_lite::Regex::new(re) {
                diag.push(
                    &format!("{at}.cmdline"),
                    format!("not a regular expression: {e}"),
                );
            }
        }
        if self.max.is_some_and(|m| m < self.min) {
            diag.push(&format!("{at}.max"), "must not be below `min`");
        }
    }

    /// `nginx`, `/gunicorn .*app/`, or both.
    pub fn describe(&self) -> String {
        match (&self.name, &self.cmdline) {
            (Some(n), Some(c)) => format!("{n} /{c}/"),
            (Some(n), None) => n.clone(),
            (None, Some(c)) => format!("/{c}/"),
            (None, None) => String::new(),
        }
    }
}

/// Counts matching processes under `proc` (normally `/proc`).
pub fn count(spec: &ProcessSpec, proc: &Path) -> std::io::Result<usize> {
    let re = spec
        .cmdline
        .as_deref()
        .map(regex_lite::Regex::new)
        .transpose()
        .map_err(std::io::Error::other)?;
    let own = std::process::id().to_string();
    let mut n = 0;
    for entry in std::fs::read_dir(proc)? {
        let Ok(entry) = entry else { continue };
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str() else {
            continue;
        };
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == own {
            continue;
        }
        let dir = entry.path();
        // A process may exit while we look: skip it, it is not running.
        let Ok(raw_cmd) = std::fs::read(dir.join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw_cmd
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if let Some(name) = &spec.name {
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            let argv0 = args
                .first()
                .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
                .unwrap_or_default();
            if comm.trim_end() != name && argv0 != *name {
                continue;
            }
        }
        if let Some(re) = &re {
            if args.is_empty() || !re.is_match(&args.join(" ")) {
                continue;
            }
        }
        n += 1;
    }
    Ok(n)
}

pub fn run(spec: &ProcessSpec, proc: &Path) -> Outcome {
    let n = match count(spec, proc) {
        Ok(n) => n,
        Err(e) => {
            return Outcome::new(
                Status::Unknown,
                format!("cannot read {}: {e}", proc.display()),
            )
        }
    };
    let what = spec.describe();
    let plural = if n == 1 { "process" } else { "processes" };
    if n < spec.min {
        Outcome::critical(format!(
            "{n} {plural} matching {what} (want at least {})",
            spec.min
        ))
    } else if spec.max.is_some_and(|m| n > m) {
        Outcome::critical(format!(
            "{n} {plural} matching {what} (want at most {})",
            spec.max.unwrap_or_default()
        ))
    } else {
        Outcome::ok(format!("{n} {plural} matching {what}"))
    }
}
