//! `vedette-collector token new`: a fresh agent token, and the config edit
//! that admits it.
//!
//! The config keeps only the token's SHA-256 (`token_sha256`), so the file
//! holds no secret; the token itself is printed once. The edit is textual so
//! the operator's comments and layout survive: one list item is inserted at
//! the top of `agents:` (or the key is added), and the result must load as a
//! valid config with exactly this one agent more, or nothing is written.

use std::path::Path;

use crate::config::{token_digest, Config};

/// A fresh token: 32 random bytes as 64 hex digits.
pub fn generate() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// The `agents:` list item for a token digest and its host globs.
pub fn agent_entry(token: &str, hosts: &[String], indent: usize, note: &str) -> String {
    let pad = " ".repeat(indent);
    let hosts = hosts
        .iter()
        .map(|h| serde_json::Value::from(h.as_str()).to_string())
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{pad}- token_sha256: \"{}\"  # {note}\n{pad}  hosts: [{hosts}]\n",
        hex::encode(token_digest(token))
    )
}

/// Why the file could not be edited.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("{0}")]
    Invalid(String),
    #[error(
        "`agents:` is written in flow style ([...]) with entries; \
         add this item to it by hand:\n{0}"
    )]
    FlowList(String),
}

/// `text` with an `agents:` item admitting `token` for `hosts`; checked by
/// loading the result as a config (`file` names it in errors).
pub fn add_agent(
    file: &str,
    text: &str,
    token: &str,
    hosts: &[String],
    note: &str,
) -> Result<String, EditError> {
    let before = Config::from_yaml(file, text)
        .map_err(|e| EditError::Invalid(format!("{e}\nfix the config first; nothing written")))?;
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("agents:") && value_of(l).is_some());
    let mut out = String::with_capacity(text.len() + 160);
    match at {
        None => {
            out.push_str(text);
            if !text.is_empty() && !text.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(
                "\n# Agent tokens (SHA-256 only) and the hosts each may push as.\nagents:\n",
            );
            out.push_str(&agent_entry(token, hosts, 2, note));
        }
        Some(i) => {
            let value = value_of(lines[i]).unwrap_or_default();
            let indent = match value {
                // Block list (or null): indent like its first item.
                "" => lines[i + 1..]
                    .iter()
                    .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                    .filter(|l| l.trim_start().starts_with('-'))
                    .map_or(2, |l| l.len() - l.trim_start().len()),
                "[]" => 2,
                _ => return Err(EditError::FlowList(agent_entry(token, hosts, 2, note))),
            };
            for l in &lines[..i] {
                out.push_str(l);
                out.push('\n');
            }
            out.push_str("agents:\n");
            out.push_str(&agent_entry(token, hosts, indent, note));
            for l in &lines[i + 1..] {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    let after = Config::from_yaml(file, &out).map_err(|e| {
        EditError::Invalid(format!(
            "the edited config would not load ({e}); nothing written"
        ))
    })?;
    let digest = token_digest(token);
    let added = after.agents.len() == before.agents.len() + 1
        && after.agents.iter().any(|a| a.matches(&digest));
    if !added {
        return Err(EditError::Invalid(
            "the edit did not add exactly one agent token; nothing written".into(),
        ));
    }
    Ok(out)
}

/// What follows `key:` on a line, without a trailing comment; None when
/// the line is not a plain `key:` line.
fn value_of(line: &str) -> Option<&str> {
    let rest = line.split_once(':')?.1;
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let rest = match rest.find(" #") {
        Some(c) => &rest[..c],
        None => rest,
    };
    Some(rest.trim())
}

/// Replaces `path` with `text` atomically, keeping its mode and owner (the
/// config is usually root:vedette 0640).
pub fn replace_file(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(path)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.vedette-new"));
    let result = (|| {
        std::fs::write(&tmp, text)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        // Only root can give a file away; anyone else keeps their own.
        if let Err(e) = std::os::unix::fs::chown(&tmp, Some(meta.uid()), Some(meta.gid())) {
            if e.kind() != std::io::ErrorKind::PermissionDenied {
                return Err(e);
            }
        }
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests;
