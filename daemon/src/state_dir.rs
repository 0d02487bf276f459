//! Where a daemon keeps its state when its configuration does not say.

use std::path::{Path, PathBuf};

/// The state directory of daemon `name` (`vedette-collector`,
/// `vedette-agent`) when the configuration names none, in this order:
/// systemd's `$STATE_DIRECTORY` (its unit's `StateDirectory=`);
/// `/var/lib/<name>` when running as root; `$XDG_STATE_HOME/<name>`;
/// `~/.local/state/<name>`. Never the working directory, so a daemon run
/// from a source tree leaves the tree as it was.
pub fn state_dir(name: &str) -> PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| effective_uid(&s));
    choose(
        name,
        env("STATE_DIRECTORY").as_deref().map(Path::new),
        uid,
        env("XDG_STATE_HOME").as_deref().map(Path::new),
        env("HOME").as_deref().map(Path::new),
    )
}

fn choose(
    name: &str,
    systemd: Option<&Path>,
    uid: Option<u32>,
    xdg_state: Option<&Path>,
    home: Option<&Path>,
) -> PathBuf {
    if let Some(dirs) = systemd {
        // Several directories are separated by colons; the first is ours.
        let first = dirs.to_string_lossy();
        let first = first.split(':').next().unwrap_or_default();
        if !first.is_empty() {
            return PathBuf::from(first);
        }
    }
    if uid == Some(0) {
        return Path::new("/var/lib").join(name);
    }
    match (xdg_state.filter(|p| p.is_absolute()), home) {
        (Some(x), _) => x.join(name),
        (None, Some(h)) => h.join(".local/state").join(name),
        (None, None) => std::env::temp_dir().join(name),
    }
}

/// The effective user id in `/proc/self/status` (`Uid: real effective …`).
fn effective_uid(status: &str) -> Option<u32> {
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests;
