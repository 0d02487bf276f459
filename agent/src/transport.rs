//! What went wrong with an HTTP request, in an operator's words (shared by
//! pushes and `http` checks), and the TLS client configuration of pushes.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The innermost cause of a transport error, in an operator's words:
/// `connect refused`, `TLS: …`, `redirect: …`, else the cause itself.
/// Shared by pushes and `http` checks.
pub(crate) fn describe_transport(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg = s.to_string();
        source = s.source();
    }
    if e.is_connect() && msg.to_ascii_lowercase().contains("refused") {
        return "connect refused".into();
    }
    if e.is_redirect() {
        return format!("redirect: {msg}");
    }
    let lower = msg.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        return format!("TLS: {msg}");
    }
    msg
}

/// The TLS client configuration for pushes: trust `ca_file` alone when
/// given (else the public roots), present `client` (certificate and key
/// files) for mutual TLS, and check the collector's certificate against
/// `server_name` instead of the URL's host when given. Errors name the
/// config key (`ca_file`, `cert_file`, `key_file`) and the file.
pub(crate) fn client_tls(
    ca_file: Option<&Path>,
    client: Option<(&Path, &Path)>,
    server_name: Option<&str>,
) -> Result<rustls::ClientConfig, (&'static str, String)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(f) => {
            for cert in read_certs(f, "ca_file")? {
                roots.add(cert).map_err(|e| {
                    (
                        "ca_file",
                        format!("{}: not a usable CA certificate: {e}", f.display()),
                    )
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let verifier =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .map_err(|e| ("ca_file", e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = match server_name {
        Some(n) => Arc::new(NameOverride {
            inner: verifier,
            name: ServerName::try_from(n.to_string()).map_err(|_| {
                (
                    "server_name",
                    format!("'{n}' is not a DNS name or IP address"),
                )
            })?,
        }),
        None => verifier,
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ("ca_file", e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = read_certs(cert, "cert_file")?;
            let pem = std::fs::read(key)
                .map_err(|e| ("key_file", format!("cannot read {}: {e}", key.display())))?;
            let der = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
                (
                    "key_file",
                    format!("{} holds no usable PEM private key: {e}", key.display()),
                )
            })?;
            builder.with_client_auth_cert(chain, der).map_err(|e| {
                (
                    "key_file",
                    match e {
                        rustls::Error::InconsistentKeys(_) => format!(
                            "{} is not the key of the certificate in {}",
                            key.display(),
                            cert.display()
                        ),
                        e => format!("{}: {e}", key.display()),
                    },
                )
            })?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The certificates of a PEM file: at least one; the error names the
/// config key and the file.
pub(crate) fn read_certs(
    path: &Path,
    field: &'static str,
) -> Result<Vec<CertificateDer<'static>>, (&'static str, String)> {
    let pem =
        std::fs::read(path).map_err(|e| (field, format!("cannot read {}: {e}", path.display())))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            (
                field,
                format!("{} is not a PEM certificate file: {e}", path.display()),
            )
        })?;
    if certs.is_empty() {
        return Err((
            field,
            format!(
                "{} holds no certificate (expected -----BEGIN CERTIFICATE-----)",
                path.display()
            ),
        ));
    }
    Ok(certs)
}

/// Verifies the collector's certificate against a configured name rather
/// than the URL's host (`collector.server_name`).
#[derive(Debug)]
struct NameOverride {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for NameOverride {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _url_host: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
