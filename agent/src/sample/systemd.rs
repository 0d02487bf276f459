//! systemd's units, where systemd runs (`/run/systemd/system` exists): the
//! number of failed units, and whether each unit the operator listed
//! (`host_metrics.systemd.units`) is active. One `systemctl list-units`
//! per `host_metrics.systemd.every` (default 1 m), never a process per
//! unit; between two reads the last one is reported again.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::settings::Filter;
use super::{Out, Source};

/// Whether systemd is the init system (what `sd_booted(3)` checks).
pub(super) fn booted() -> bool {
    std::path::Path::new("/run/systemd/system").is_dir()
}

/// What one `systemctl list-units` said.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Units {
    pub(super) failed: usize,
    /// Listed units and whether each is active.
    pub(super) listed: Vec<(String, bool)>,
}

/// Parses `systemctl list-units --all --plain --no-legend --full` output
/// (`UNIT LOAD ACTIVE SUB DESCRIPTION…` per line; a leading `●` marks a
/// failed unit in some versions).
pub(super) fn parse_units(text: &str, units: Option<&Filter>) -> Units {
    let mut out = Units::default();
    for line in text.lines() {
        let mut w = line.split_whitespace().skip_while(|w| *w == "●");
        let (Some(unit), Some(_load), Some(active)) = (w.next(), w.next(), w.next()) else {
            continue;
        };
        if active == "failed" {
            out.failed += 1;
        }
        if units.is_some_and(|f| f.allows(unit)) {
            out.listed.push((unit.to_string(), active == "active"));
        }
    }
    out
}

pub(super) struct Systemd {
    program: String,
    units: Option<Filter>,
    every: Duration,
    last: Option<(Instant, Units)>,
}

impl Systemd {
    /// `units` None: the failed count only.
    pub(super) fn new(program: &str, units: Option<Filter>, every: Duration) -> Systemd {
        Systemd {
            program: program.to_string(),
            units,
            every,
            last: None,
        }
    }

    fn list(&self) -> Option<Units> {
        let out = Command::new(&self.program)
            .args([
                "list-units",
                "--all",
                "--plain",
                "--no-legend",
                "--no-pager",
                "--full",
            ])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        Some(parse_units(
            &String::from_utf8_lossy(&out.stdout),
            self.units.as_ref(),
        ))
    }
}

impl Source for Systemd {
    fn name(&self) -> &'static str {
        "systemd"
    }
    fn sample(&mut self, out: &mut Out) {
        let stale = self
            .last
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= self.every);
        if stale {
            match self.list() {
                Some(units) => self.last = Some((Instant::now(), units)),
                None => {
                    tracing::debug!(program = %self.program, "systemctl list-units failed");
                    self.last = None;
                }
            }
        }
        let Some((_, units)) = &self.last else {
            return;
        };
        out.push("systemd_units_failed", &[], units.failed as f64);
        for (unit, active) in &units.listed {
            out.push(
                "systemd_unit_active",
                &[("unit", unit)],
                f64::from(u8::from(*active)),
            );
        }
    }
}
