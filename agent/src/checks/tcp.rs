//! `tcp` checks: connect, optionally send a string, optionally expect one
//! in the answer (a banner like `SSH-`).

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vedette_yaml::Diagnostics;

use super::Outcome;

/// Largest answer read while looking for `expect`.
pub const MAX_READ_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpSpec {
    /// `host:port`.
    pub address: String,
    #[serde(default)]
    pub send: String,
    #[serde(default)]
    pub expect: String,
}

impl TcpSpec {
    pub fn validate(&self, at: &str, diag: &mut Diagnostics) {
        let ok = self
            .address
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            diag.push(
                &format!("{at}.address"),
                format!("'{}' is not host:port (like 127.0.0.1:22)", self.address),
            );
        }
    }
}

pub async fn run(spec: &TcpSpec) -> Outcome {
    let mut stream = match tokio::net::TcpStream::connect(&spec.address).await {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Outcome::critical("connect refused")
        }
        Err(e) => return Outcome::critical(format!("connect failed: {e}")),
    };
    if !spec.send.is_empty() {
        if let Err(e) = stream.write_all(spec.send.as_bytes()).await {
            return Outcome::critical(format!("send failed: {e}"));
        }
    }
    if spec.expect.is_empty() {
        return Outcome::ok("connected");
    }
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if super::contains_bytes(&buf, spec.expect.as_bytes()) {
                    return Outcome::ok(format!("connected, answer has {:?}", spec.expect));
                }
                if buf.len() >= MAX_READ_BYTES {
                    break;
                }
            }
            Err(e) => return Outcome::critical(format!("read failed: {e}")),
        }
    }
    let mut got = String::from_utf8_lossy(&buf).trim().to_string();
    super::truncate(&mut got, 64);
    Outcome::critical(format!("answer lacks {:?} (got {got:?})", spec.expect))
}
