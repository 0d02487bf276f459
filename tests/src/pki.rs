//! Certificates for TLS tests, made by the real `vedette-collector tls init`
//! (and, for what it refuses to make, an expired certificate, by rcgen).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bin;

/// The server's name in every TLS test; clients resolve it to 127.0.0.1.
pub const SERVER_NAME: &str = "collector.test";

/// A private CA with a server certificate and agent certificates, in `dir`.
#[derive(Debug, Clone)]
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    /// `vedette-collector tls init --dir DIR --host collector.test --agent …`.
    pub fn init(dir: &Path, agents: &[&str]) -> Pki {
        Pki::run(dir, &[SERVER_NAME], agents, 30)
    }

    /// Runs `tls init` (again) in `dir`: new certificates from the same CA.
    pub fn run(dir: &Path, hosts: &[&str], agents: &[&str], days: u32) -> Pki {
        let mut cmd = Command::new(bin("vedette-collector"));
        cmd.args(["tls", "init", "--dir"]).arg(dir);
        for h in hosts {
            cmd.args(["--host", h]);
        }
        for a in agents {
            cmd.args(["--agent", a]);
        }
        cmd.args(["--days", &days.to_string()]);
        let out = cmd.output().expect("running vedette-collector tls init");
        assert!(
            out.status.success(),
            "tls init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    pub fn server(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server-key.pem")
    }

    pub fn agent(&self, name: &str) -> PathBuf {
        self.dir.join(format!("agents/{name}.pem"))
    }

    pub fn agent_key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("agents/{name}-key.pem"))
    }

    /// The collector's `tls:` block: mutual TLS when `mutual`.
    pub fn collector_tls(&self, mutual: bool) -> String {
        let mut s = format!(
            "tls:\n  cert_file: {}\n  key_file: {}\n",
            self.server().display(),
            self.server_key().display()
        );
        if mutual {
            s += &format!(
                "  client_ca_file: {}\n  client_auth: require\n",
                self.ca().display()
            );
        }
        s
    }

    /// An agent's `collector:` TLS keys: this CA, `agent`'s client pair
    /// (if any), the server name.
    pub fn agent_tls(&self, agent: Option<&str>) -> String {
        let mut s = format!(
            "  ca_file: {}\n  server_name: {SERVER_NAME}\n",
            self.ca().display()
        );
        if let Some(a) = agent {
            s += &format!(
                "  cert_file: {}\n  key_file: {}\n",
                self.agent(a).display(),
                self.agent_key(a).display()
            );
        }
        s
    }

    /// The PEM of the client pair of `agent`, for reqwest's `Identity`.
    pub fn identity_pem(&self, agent: &str) -> Vec<u8> {
        let mut pem = std::fs::read(self.agent(agent)).expect("an agent certificate");
        pem.extend(std::fs::read(self.agent_key(agent)).expect("an agent key"));
        pem
    }

    /// Replaces the server pair with one signed by this CA that ended a day ago.
    pub fn expire_server(&self) {
        let ca_key = rcgen::KeyPair::from_pem(
            &std::fs::read_to_string(self.dir.join("ca-key.pem")).expect("the CA key"),
        )
        .expect("a CA key");
        let issuer = rcgen::Issuer::from_ca_cert_pem(
            &std::fs::read_to_string(self.ca()).expect("the CA"),
            ca_key,
        )
        .expect("a CA certificate");
        let key = rcgen::KeyPair::generate().expect("a key");
        let mut params =
            rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()]).expect("params");
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(30);
        params.not_after = now - time::Duration::days(1);
        let cert = params.signed_by(&key, &issuer).expect("signing");
        std::fs::write(self.server(), cert.pem()).expect("writing server.pem");
        std::fs::write(self.server_key(), key.serialize_pem()).expect("writing server-key.pem");
    }
}
