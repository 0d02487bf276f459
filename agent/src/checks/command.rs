//! `command` checks: run any Nagios plugin.
//!
//! Exit code 0/1/2/3 → ok/warning/critical/unknown; the first line of output
//! is the message; performance data becomes `check_perfdata{check,label}`
//! samples in base units. The plugin runs in its own process group with
//! `LC_ALL=C` (a stable decimal point) and no stdin; at the timeout the whole
//! group is killed, so a plugin's children do not outlive it. At most
//! [`MAX_OUTPUT_BYTES`] of its output is kept (the rest is read and dropped,
//! so a chatty plugin cannot block on a full pipe).

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};
use vedette_protocol::Status;
use vedette_yaml::Diagnostics;

use super::{perfdata, Outcome};

/// Output kept per stream.
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    pub path: PathBuf,
    #[serde(default)]
    pub args: Vec<String>,
}

impl CommandSpec {
    pub fn validate(&self, at: &str, diag: &mut Diagnostics) {
        if !self.path.is_absolute() {
            diag.push(
                &format!("{at}.path"),
                format!("'{}' must be an absolute path", self.path.display()),
            );
            return;
        }
        super::validate_file(&self.path, &format!("{at}.path"), diag);
    }
}

/// Kills the plugin's process group unless disarmed: runs when the check's
/// timeout drops the future.
struct GroupGuard(Option<nix::unistd::Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

async fn read_capped(mut r: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = MAX_OUTPUT_BYTES.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

pub async fn run(spec: &CommandSpec) -> Outcome {
    let mut child = match tokio::process::Command::new(&spec.path)
        .args(&spec.args)
        .env("LC_ALL", "C")
        // systemd's channel is the agent's, not its plugins'.
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return Outcome::new(
                Status::Unknown,
                format!("cannot run {}: {e}", spec.path.display()),
            )
        }
    };
    let mut guard = GroupGuard(
        child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(nix::unistd::Pid::from_raw),
    );
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (out, err, status) = tokio::join!(
        async {
            match stdout {
                Some(s) => read_capped(s).await,
                None => Vec::new(),
            }
        },
        async {
            match stderr {
                Some(s) => read_capped(s).await,
                None => Vec::new(),
            }
        },
        child.wait()
    );
    // Both pipes closed and the plugin exited: nothing of its group holds
    // our output any more. (A child that kept the pipes open would have kept
    // us here until the timeout, and the guard kills the group then.)
    guard.0 = None;
    let status = match status {
        Ok(s) => s,
        Err(e) => return Outcome::new(Status::Unknown, format!("waiting for the plugin: {e}")),
    };
    outcome(status, &out, &err)
}

/// What a plugin's exit and output say: the Nagios status from the exit
/// code (anything else is unknown), the first line as the message (stderr's
/// when stdout has none), perfdata as samples.
fn outcome(status: std::process::ExitStatus, out: &[u8], err: &[u8]) -> Outcome {
    let stdout = String::from_utf8_lossy(out);
    let (mut message, perf) = perfdata::parse_output(&stdout);
    if message.is_empty() {
        message = String::from_utf8_lossy(err)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
    }
    if message.is_empty() {
        message = "(no output)".into();
    }
    let status = match (status.code(), status.signal()) {
        (Some(code @ 0..=3), _) => Status::from_exit_code(code),
        (Some(code), _) => {
            message = format!("plugin exited with code {code}: {message}");
            Status::Unknown
        }
        (None, Some(sig)) => {
            message = format!("plugin killed by signal {sig}: {message}");
            Status::Unknown
        }
        (None, None) => Status::Unknown,
    };
    let mut outcome = Outcome::new(status, message);
    for p in perf {
        let mut label = p.label;
        super::truncate(
            &mut label,
            vedette_protocol::Limits::default().max_label_value_len,
        );
        outcome.samples.push((
            "check_perfdata".into(),
            BTreeMap::from([("label".to_string(), label)]),
            p.value,
        ));
    }
    outcome
}
