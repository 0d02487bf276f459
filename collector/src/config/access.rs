//! Who may talk to the collector: agent tokens (and the hosts each may push
//! as), API tokens and their roles, the `/metrics` token; tokens are kept
//! as SHA-256 digests only.

use super::*;

/// The token `/metrics` asks for, kept only as its SHA-256.
#[derive(Debug, Clone)]
pub struct MetricsToken {
    pub(super) sha256: [u8; 32],
}

impl MetricsToken {
    /// True when `token_sha256` is this token's digest (constant time).
    pub fn matches(&self, token_sha256: &[u8; 32]) -> bool {
        self.sha256.ct_eq(token_sha256).into()
    }
}

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads.
    Viewer,
    /// Reads and writes (ack, resolve, changes).
    Operator,
}

/// One API token, kept only as its SHA-256.
#[derive(Debug, Clone)]
pub struct ApiToken {
    /// Recorded as the actor of what the token does.
    pub name: String,
    pub(super) sha256: [u8; 32],
    pub role: Role,
}

impl ApiToken {
    /// True when `token_sha256` is this token's digest (constant time).
    pub fn matches(&self, token_sha256: &[u8; 32]) -> bool {
        self.sha256.ct_eq(token_sha256).into()
    }
}

/// One agent token, kept only as its SHA-256.
#[derive(Debug, Clone)]
pub struct AgentToken {
    pub(super) sha256: [u8; 32],
    /// Host-name globs, as written.
    pub hosts: Vec<String>,
    pub(super) matcher: globset::GlobSet,
    /// Client-certificate DNS names (globs) the token is bound to, as
    /// written; empty: any certificate (or none) will do.
    pub cert_names: Vec<String>,
    pub(super) cert_matcher: Option<globset::GlobSet>,
}

impl AgentToken {
    /// True when `token` is this one (constant time in the token's content).
    pub fn matches(&self, token_sha256: &[u8; 32]) -> bool {
        self.sha256.ct_eq(token_sha256).into()
    }

    /// True when this token may push as `host`.
    pub fn allows(&self, host: &str) -> bool {
        self.matcher.is_match(host)
    }

    /// Whether a connection whose client certificate carries `dns_names` may
    /// use this token: always when the token is bound to no names, else when
    /// one of the certificate's names matches one of `cert_names`.
    pub fn allows_cert(&self, dns_names: &[String]) -> bool {
        match &self.cert_matcher {
            None => true,
            Some(m) => dns_names.iter().any(|n| m.is_match(n.to_ascii_lowercase())),
        }
    }

    /// A stable identity of the token (from its digest, not its position in
    /// the file), which `limits.hosts_per_token` counts hosts by.
    pub fn id(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.sha256[..8]);
        u64::from_be_bytes(b)
    }
}

/// SHA-256 of a bearer token.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSecretToken {
    pub(super) token: Option<String>,
    pub(super) token_file: Option<PathBuf>,
    pub(super) token_sha256: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApiToken {
    pub(super) name: String,
    pub(super) token: Option<String>,
    pub(super) token_file: Option<PathBuf>,
    pub(super) token_sha256: Option<String>,
    pub(super) role: Role,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAgent {
    pub(super) token: Option<String>,
    pub(super) token_file: Option<PathBuf>,
    pub(super) token_sha256: Option<String>,
    #[serde(default)]
    pub(super) hosts: Vec<String>,
    #[serde(default)]
    pub(super) cert_names: Vec<String>,
}

/// The SHA-256 of a token given as `token`, `token_file` or `token_sha256`
/// (exactly one).
pub(super) fn token_sha(
    token: Option<&str>,
    token_file: Option<&Path>,
    token_sha256: Option<&str>,
    path: &str,
    diag: &mut Diagnostics,
) -> Option<[u8; 32]> {
    let given = [
        token.is_some(),
        token_file.is_some(),
        token_sha256.is_some(),
    ]
    .iter()
    .filter(|&&b| b)
    .count();
    if given != 1 {
        diag.push(
            path,
            "give exactly one of `token`, `token_file` or `token_sha256`",
        );
        return None;
    }
    if let Some(t) = token {
        if t.is_empty() {
            diag.push(&format!("{path}.token"), "must not be empty");
            return None;
        }
        return Some(token_digest(t));
    }
    if let Some(f) = token_file {
        return match std::fs::read_to_string(f) {
            Ok(t) if !t.trim().is_empty() => Some(token_digest(t.trim())),
            Ok(_) => {
                diag.push(
                    &format!("{path}.token_file"),
                    format!("{} is empty", f.display()),
                );
                None
            }
            Err(e) => {
                diag.push(
                    &format!("{path}.token_file"),
                    format!("cannot read {}: {e}", f.display()),
                );
                None
            }
        };
    }
    let hex_str = token_sha256.unwrap_or_default();
    let digest = hex::decode(hex_str.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok());
    if digest.is_none() {
        diag.push(
            &format!("{path}.token_sha256"),
            "must be 64 hex digits (sha256sum of the token)",
        );
    }
    digest
}

pub(super) fn agent(
    raw: &RawAgent,
    path: &str,
    mutual_tls: bool,
    diag: &mut Diagnostics,
) -> Option<AgentToken> {
    let sha256 = token_sha(
        raw.token.as_deref(),
        raw.token_file.as_deref(),
        raw.token_sha256.as_deref(),
        path,
        diag,
    )?;
    if raw.hosts.is_empty() {
        diag.push(
            &format!("{path}.hosts"),
            "list the host-name globs this token may push as, e.g. [\"web-*\"]",
        );
        return None;
    }
    let matcher = globs(&raw.hosts, &format!("{path}.hosts"), diag)?;
    let cert_matcher = if raw.cert_names.is_empty() {
        None
    } else if !mutual_tls {
        diag.push(
            &format!("{path}.cert_names"),
            "binds the token to client certificates, which needs mutual TLS: \
             set `tls.client_auth: require` and `tls.client_ca_file`",
        );
        return None;
    } else {
        let lower: Vec<String> = raw
            .cert_names
            .iter()
            .map(|n| n.to_ascii_lowercase())
            .collect();
        Some(globs(&lower, &format!("{path}.cert_names"), diag)?)
    };
    Some(AgentToken {
        sha256,
        hosts: raw.hosts.clone(),
        matcher,
        cert_names: raw.cert_names.clone(),
        cert_matcher,
    })
}

/// `agents:`. Without any, the listener must be loopback.
pub(super) fn agents(raw: &RawConfig, mutual_tls: bool, diag: &mut Diagnostics) -> Vec<AgentToken> {
    let agents = raw
        .agents
        .iter()
        .enumerate()
        .filter_map(|(i, a)| agent(a, &format!("agents[{i}]"), mutual_tls, diag))
        .collect::<Vec<_>>();
    // Tokens written but refused above are reported there, not as missing.
    if raw.agents.is_empty() && !raw.listen.ip().is_loopback() {
        diag.push(
            "listen",
            format!(
                "{} is not a loopback address and no agent tokens are configured; \
                 add `agents:` with tokens, or listen on 127.0.0.1",
                raw.listen
            ),
        );
    }
    agents
}

/// `api_tokens:`, each name once (names identify who did what).
pub(super) fn api_tokens(raw: &[RawApiToken], diag: &mut Diagnostics) -> Vec<ApiToken> {
    let mut names = HashSet::new();
    raw.iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let path = format!("api_tokens[{i}]");
            unique_name(&t.name, &path, &mut names, diag, || {
                format!(
                    "token name '{}' is used twice; names identify who did what",
                    t.name
                )
            });
            let sha256 = token_sha(
                t.token.as_deref(),
                t.token_file.as_deref(),
                t.token_sha256.as_deref(),
                &path,
                diag,
            )?;
            Some(ApiToken {
                name: t.name.clone(),
                sha256,
                role: t.role,
            })
        })
        .collect()
}

/// `metrics_token:`, if given.
pub(super) fn metrics_token(
    raw: Option<&RawSecretToken>,
    diag: &mut Diagnostics,
) -> Option<MetricsToken> {
    let t = raw?;
    token_sha(
        t.token.as_deref(),
        t.token_file.as_deref(),
        t.token_sha256.as_deref(),
        "metrics_token",
        diag,
    )
    .map(|sha256| MetricsToken { sha256 })
}
