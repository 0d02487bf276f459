//! `http` checks: status, body match, latency, and the TLS certificate's
//! days left.
//!
//! The certificate is read by our own rustls verifier, which records the
//! server's end-entity certificate before verifying it. So an expired
//! certificate still yields its (negative) days left and the message
//! `certificate expired 3 days ago`, instead of a bare handshake error. Each
//! run opens a fresh connection (no pooling): a check measures what a new
//! client would see.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, Url};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::Deserialize;
use vedette_protocol::Status;
use vedette_yaml::Diagnostics;
use x509_cert::der::Decode;

use super::Outcome;
use crate::transport::describe_transport;

/// Largest response body read for `body_contains`.
pub const MAX_BODY_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    /// Accepted statuses; empty means any 2xx.
    #[serde(default)]
    pub expect_status: Vec<u16>,
    pub body_contains: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub tls_verify: bool,
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub follow_redirects: bool,
    /// Warn when the certificate has fewer days left than this.
    #[serde(default = "default_warn_days")]
    pub tls_warn_days: f64,
}

fn default_method() -> String {
    "GET".into()
}
fn yes() -> bool {
    true
}
fn default_warn_days() -> f64 {
    14.0
}

impl HttpSpec {
    pub fn validate(&self, at: &str, diag: &mut Diagnostics) {
        match Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(_) => diag.push(
                &format!("{at}.url"),
                "must be an http:// or https:// URL with a host",
            ),
            Err(e) => diag.push(&format!("{at}.url"), format!("not a URL: {e}")),
        }
        if Method::from_bytes(self.method.as_bytes()).is_err() {
            diag.push(
                &format!("{at}.method"),
                format!("'{}' is not an HTTP method", self.method),
            );
        }
        for s in &self.expect_status {
            if !(100..=599).contains(s) {
                diag.push(
                    &format!("{at}.expect_status"),
                    format!("{s} is not an HTTP status"),
                );
            }
        }
        for (k, v) in &self.headers {
            if HeaderName::from_bytes(k.as_bytes()).is_err() || HeaderValue::from_str(v).is_err() {
                diag.push(&format!("{at}.headers.{k}"), "not a valid HTTP header");
            }
        }
        if let Some(f) = &self.ca_file {
            if let Err((_, message)) = crate::transport::read_certs(f, "ca_file") {
                diag.push(&format!("{at}.ca_file"), message);
            }
        }
        if !self.tls_warn_days.is_finite() || self.tls_warn_days < 0.0 {
            diag.push(
                &format!("{at}.tls_warn_days"),
                "must be a number of days, 0 or more",
            );
        }
    }
}

/// The server certificate's expiry, as seen in the last handshake.
type Seen = Arc<Mutex<Option<i64>>>;

/// Records the end-entity certificate's `notAfter`, then verifies (or not,
/// with `tls_verify: false`).
#[derive(Debug)]
struct RecordingVerifier {
    inner: Option<Arc<dyn ServerCertVerifier>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    seen: Seen,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let not_after = x509_cert::Certificate::from_der(end_entity.as_ref())
            .ok()
            .map(|c| {
                c.tbs_certificate
                    .validity
                    .not_after
                    .to_unix_duration()
                    .as_secs() as i64
            });
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = not_after;
        match &self.inner {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// An `http` check with its client.
pub struct HttpProbe {
    spec: HttpSpec,
    client: reqwest::Client,
    url: Url,
    method: Method,
    seen: Seen,
}

impl HttpProbe {
    pub fn new(spec: &HttpSpec) -> anyhow::Result<HttpProbe> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner: Option<Arc<dyn ServerCertVerifier>> = if spec.tls_verify {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            if let Some(f) = &spec.ca_file {
                let certs = crate::transport::read_certs(f, "ca_file")
                    .map_err(|(_, message)| anyhow::anyhow!(message))?;
                for cert in certs {
                    roots.add(cert)?;
                }
            }
            Some(
                rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(&provider),
                )
                .build()?,
            )
        } else {
            None
        };
        let seen: Seen = Arc::default();
        let verifier = RecordingVerifier {
            inner,
            provider: Arc::clone(&provider),
            seen: Arc::clone(&seen),
        };
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &spec.headers {
            headers.insert(
                HeaderName::from_bytes(k.as_bytes())?,
                HeaderValue::from_str(v)?,
            );
        }
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .pool_max_idle_per_host(0)
            .redirect(if spec.follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            })
            .default_headers(headers)
            .user_agent(concat!("vedette-agent/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(HttpProbe {
            spec: spec.clone(),
            client,
            url: Url::parse(&spec.url)?,
            method: Method::from_bytes(spec.method.as_bytes())?,
            seen,
        })
    }

    fn days_left(&self, now_s: i64) -> Option<f64> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .map(|not_after| (not_after - now_s) as f64 / 86_400.0)
    }

    pub async fn run(&self) -> Outcome {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).take();
        let sent = self
            .client
            .request(self.method.clone(), self.url.clone())
            .send()
            .await;
        let now_s = vedette_protocol::clock::now_ms() / 1000;
        let days = self.days_left(now_s);
        let mut outcome = match sent {
            Err(e) => Outcome::critical(match days {
                Some(d) if d < 0.0 => expired_message(d),
                _ => describe_transport(&e),
            }),
            Ok(resp) => self.judge(resp).await,
        };
        if let Some(d) = days {
            // In base units, so `promtool check metrics` is clean on the
            // collector that exports it.
            outcome.samples.push((
                "tls_certificate_expiry_seconds".into(),
                BTreeMap::new(),
                d * 86_400.0,
            ));
            // Deprecated: kept one release for rules that use it; the
            // collector no longer exports it on /metrics (a day is no base unit).
            outcome
                .samples
                .push(("tls_certificate_days_left".into(), BTreeMap::new(), d));
            if outcome.status == Status::Ok {
                if d < 0.0 {
                    // Only reachable with tls_verify: false.
                    outcome = Outcome {
                        status: Status::Critical,
                        message: expired_message(d),
                        samples: outcome.samples,
                    };
                } else if d < self.spec.tls_warn_days {
                    outcome.status = Status::Warning;
                    outcome.message = format!(
                        "{}, certificate expires in {} days",
                        outcome.message,
                        d.floor() as i64
                    );
                }
            }
        }
        outcome
    }

    async fn judge(&self, mut resp: reqwest::Response) -> Outcome {
        let status = resp.status().as_u16();
        let expected = if self.spec.expect_status.is_empty() {
            (200..300).contains(&status)
        } else {
            self.spec.expect_status.contains(&status)
        };
        if !expected {
            return Outcome::critical(format!("status {status}"));
        }
        if let Some(needle) = &self.spec.body_contains {
            let mut body = Vec::new();
            loop {
                match resp.chunk().await {
                    Ok(Some(c)) => {
                        body.extend_from_slice(&c);
                        if body.len() >= MAX_BODY_BYTES {
                            body.truncate(MAX_BODY_BYTES);
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        return Outcome::critical(format!(
                            "reading the body: {}",
                            describe_transport(&e)
                        ))
                    }
                }
            }
            if !super::contains_bytes(&body, needle.as_bytes()) {
                return Outcome::critical(format!("body lacks {needle:?}"));
            }
        }
        Outcome::ok(format!("HTTP {status}"))
    }
}

fn expired_message(days: f64) -> String {
    match (-days).floor() as i64 {
        0 => "certificate expired less than a day ago".to_string(),
        1 => "certificate expired 1 day ago".to_string(),
        n => format!("certificate expired {n} days ago"),
    }
}
