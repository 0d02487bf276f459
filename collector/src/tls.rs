//! TLS for the listener (rustls, TLS 1.2 and 1.3): the server certificate
//! and key from PEM files, optional mutual TLS against a client CA, the
//! identity a client certificate carries, and a certificate that can be
//! replaced while the listener serves (SIGHUP) without touching established
//! connections. `tls init` makes a small private CA ([`init`]).
//!
//! Every error names the file and the config key it came from, so
//! `check-config` and a refused reload say which file to fix.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use x509_cert::der::Decode;

pub mod init;

/// Whether a client must present a certificate (`tls.client_auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// Any client may connect (it authenticates with its bearer token).
    #[default]
    None,
    /// Mutual TLS: a client certificate signed by `client_ca_file`.
    Require,
}

/// The files of `tls:`, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca_file: Option<PathBuf>,
    pub client_auth: ClientAuth,
}

/// A problem with one of the files, for the config key `field`
/// (`cert_file`, `key_file`, `client_ca_file`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TlsError {
    pub field: &'static str,
    pub message: String,
}

impl TlsError {
    fn new(field: &'static str, message: impl Into<String>) -> TlsError {
        TlsError {
            field,
            message: message.into(),
        }
    }
}

/// A loaded server identity, ready to accept connections.
#[derive(Debug)]
pub struct ServerTls {
    pub config: Arc<ServerConfig>,
    /// When the server certificate ends (Unix seconds).
    pub not_after: Option<i64>,
    /// The names the server certificate is valid for (DNS and IP SANs).
    pub names: Vec<String>,
}

/// The rustls provider everything here uses.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file: at least one, or an error naming it.
pub fn read_certs(
    path: &Path,
    field: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path)
        .map_err(|e| TlsError::new(field, format!("cannot read {}: {e}", path.display())))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            TlsError::new(
                field,
                format!("{} is not a PEM certificate file: {e}", path.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(TlsError::new(
            field,
            format!(
                "{} holds no certificate (expected -----BEGIN CERTIFICATE-----)",
                path.display()
            ),
        ));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let field = "key_file";
    let pem = std::fs::read(path)
        .map_err(|e| TlsError::new(field, format!("cannot read {}: {e}", path.display())))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        TlsError::new(
            field,
            match e {
                rustls::pki_types::pem::Error::NoItemsFound => format!(
                    "{} holds no private key (expected -----BEGIN PRIVATE KEY-----)",
                    path.display()
                ),
                e => format!("{} is not a PEM private key: {e}", path.display()),
            },
        )
    })
}

impl ServerTls {
    /// Reads and checks the files: the key must belong to the certificate,
    /// the client CA file must hold a certificate.
    pub fn load(files: &TlsFiles) -> Result<ServerTls, TlsError> {
        let chain = read_certs(&files.cert_file, "cert_file")?;
        let key = read_key(&files.key_file)?;
        let leaf = x509_cert::Certificate::from_der(chain[0].as_ref()).ok();
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::new("cert_file", e.to_string()))?;
        let builder = match (files.client_auth, &files.client_ca_file) {
            (ClientAuth::Require, Some(ca)) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in read_certs(ca, "client_ca_file")? {
                    roots.add(cert).map_err(|e| {
                        TlsError::new(
                            "client_ca_file",
                            format!("{}: not a usable CA certificate: {e}", ca.display()),
                        )
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(|e| {
                            TlsError::new("client_ca_file", format!("{}: {e}", ca.display()))
                        })?;
                builder.with_client_cert_verifier(verifier)
            }
            (ClientAuth::Require, None) => {
                return Err(TlsError::new(
                    "client_ca_file",
                    "client_auth: require needs the CA that signs the agents' certificates",
                ))
            }
            (ClientAuth::None, _) => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|e| {
            TlsError::new(
                "key_file",
                match e {
                    rustls::Error::InconsistentKeys(_) => format!(
                        "{} is not the key of the certificate in {}",
                        files.key_file.display(),
                        files.cert_file.display()
                    ),
                    e => format!("{}: {e}", files.key_file.display()),
                },
            )
        })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls {
            config: Arc::new(config),
            not_after: leaf.as_ref().map(not_after),
            names: leaf.as_ref().map(subject_names).unwrap_or_default(),
        })
    }

    /// Whole days until the certificate ends (negative: whole days since it
    /// ended), at `now_s`.
    pub fn days_left(&self, now_s: i64) -> Option<i64> {
        self.not_after.map(|t| (t - now_s) / 86_400)
    }
}

fn not_after(cert: &x509_cert::Certificate) -> i64 {
    cert.tbs_certificate
        .validity
        .not_after
        .to_unix_duration()
        .as_secs() as i64
}

/// The DNS names (and IP addresses, as text) of a certificate's subject
/// alternative names.
fn subject_names(cert: &x509_cert::Certificate) -> Vec<String> {
    use x509_cert::der::oid::AssociatedOid;
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::SubjectAltName;
    let Some(exts) = &cert.tbs_certificate.extensions else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for ext in exts {
        if ext.extn_id != SubjectAltName::OID {
            continue;
        }
        let Ok(san) = SubjectAltName::from_der(ext.extn_value.as_bytes()) else {
            continue;
        };
        for n in san.0 {
            match n {
                GeneralName::DnsName(d) => names.push(d.as_str().to_ascii_lowercase()),
                GeneralName::IpAddress(ip) => {
                    let b = ip.as_bytes();
                    if let Ok(v4) = <[u8; 4]>::try_from(b) {
                        names.push(std::net::Ipv4Addr::from(v4).to_string());
                    } else if let Ok(v6) = <[u8; 16]>::try_from(b) {
                        names.push(std::net::Ipv6Addr::from(v6).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    names
}

/// The DNS names a client certificate carries (lower case): what
/// `agents[].cert_names` is matched against.
pub fn dns_names(cert: &CertificateDer<'_>) -> Vec<String> {
    match x509_cert::Certificate::from_der(cert.as_ref()) {
        Ok(c) => subject_names(&c)
            .into_iter()
            .filter(|n| n.parse::<std::net::IpAddr>().is_err())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// What the connection's client certificate says about it, attached to each
/// request on a mutual-TLS connection.
#[derive(Debug, Clone, Default)]
pub struct PeerCert {
    /// The certificate's DNS names; empty when the client sent none.
    pub dns_names: Arc<[String]>,
}

/// The listener's current server configuration; a reload replaces it for
/// new connections while established ones keep theirs.
#[derive(Debug, Clone)]
pub struct Reloadable(Arc<RwLock<Arc<ServerConfig>>>);

impl Reloadable {
    pub fn new(config: Arc<ServerConfig>) -> Reloadable {
        Reloadable(Arc::new(RwLock::new(config)))
    }

    /// The configuration a new connection is accepted with.
    pub fn current(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.0.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn replace(&self, config: Arc<ServerConfig>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = config;
    }
}

#[cfg(test)]
mod tests;
