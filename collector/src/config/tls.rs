//! `tls:` the listener's certificate and key, mutual TLS for agents, or
//! `off` behind a TLS-terminating proxy. The files are read here, so
//! `check-config` and a reload catch a broken pair before it serves.

use super::*;
use crate::tls::{ClientAuth, ServerTls, TlsFiles};

/// How the listener speaks.
#[derive(Debug, Clone)]
pub enum ListenerTls {
    /// `tls` not written: plain HTTP, allowed on a loopback listener only.
    Unset,
    /// `tls: off`: plain HTTP on purpose (a proxy in front terminates TLS).
    Off,
    /// TLS with these files, as loaded.
    On {
        files: TlsFiles,
        server: Arc<ServerTls>,
    },
}

impl ListenerTls {
    /// The loaded server identity, when TLS is on.
    pub fn server(&self) -> Option<&Arc<ServerTls>> {
        match self {
            ListenerTls::On { server, .. } => Some(server),
            _ => None,
        }
    }

    /// True when clients must present a certificate.
    pub fn requires_client_cert(&self) -> bool {
        matches!(self, ListenerTls::On { files, .. } if files.client_auth == ClientAuth::Require)
    }

    /// `https` or `http`, for messages.
    pub fn scheme(&self) -> &'static str {
        match self {
            ListenerTls::On { .. } => "https",
            _ => "http",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: Option<PathBuf>,
    #[serde(default)]
    client_auth: ClientAuth,
}

/// `tls:` a map of files, or `off`; absent only on a loopback listener.
pub(super) fn listener_tls(
    raw: Option<&serde_yaml::Value>,
    listen: SocketAddr,
    diag: &mut Diagnostics,
) -> ListenerTls {
    let tls = match raw {
        None | Some(serde_yaml::Value::Null) => ListenerTls::Unset,
        Some(serde_yaml::Value::String(s)) if s == "off" => ListenerTls::Off,
        Some(serde_yaml::Value::Bool(false)) => ListenerTls::Off,
        Some(v @ serde_yaml::Value::Mapping(_)) => {
            match serde_yaml::from_value::<RawTls>(v.clone()) {
                Ok(raw) => files(raw, diag),
                Err(e) => {
                    diag.push("tls", e.to_string());
                    ListenerTls::Unset
                }
            }
        }
        Some(_) => {
            diag.push(
                "tls",
                "must be `off` or a map with cert_file and key_file \
                 (and client_ca_file with client_auth: require)",
            );
            return ListenerTls::Unset;
        }
    };
    if matches!(tls, ListenerTls::Unset) && raw.is_none() && !listen.ip().is_loopback() {
        diag.push(
            "listen",
            format!(
                "{listen} is not a loopback address and `tls` is not set: agent and API \
                 tokens would cross the network in clear. Set `tls: {{cert_file, key_file}}` \
                 (`vedette-collector tls init` makes a private CA and certificates), or \
                 `tls: off` when a TLS-terminating proxy is in front"
            ),
        );
    }
    tls
}

fn files(raw: RawTls, diag: &mut Diagnostics) -> ListenerTls {
    if raw.client_auth == ClientAuth::None && raw.client_ca_file.is_some() {
        diag.push(
            "tls.client_ca_file",
            "is used only with `client_auth: require` (mutual TLS); set that, or remove this key",
        );
    }
    let files = TlsFiles {
        cert_file: raw.cert_file,
        key_file: raw.key_file,
        client_ca_file: raw.client_ca_file,
        client_auth: raw.client_auth,
    };
    match ServerTls::load(&files) {
        Ok(server) => ListenerTls::On {
            files,
            server: Arc::new(server),
        },
        Err(e) => {
            diag.push(&format!("tls.{}", e.field), e.message);
            ListenerTls::Unset
        }
    }
}

/// Whether `tls:` asks for mutual TLS, even when its files are broken (so a
/// broken pair is reported alone, not with every `cert_names` after it).
pub(super) fn declares_mutual(raw: Option<&serde_yaml::Value>) -> bool {
    raw.and_then(|v| v.get("client_auth"))
        .and_then(serde_yaml::Value::as_str)
        == Some("require")
}
