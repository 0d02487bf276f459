//! `vedette-collector tls init`: a small private CA, a server certificate
//! for the collector's names and client certificates for agents, for fleets
//! without a PKI of their own.
//!
//! Layout under `--dir`: `ca.pem` and `ca-key.pem` (made once, then reused to
//! sign more), `server.pem` and `server-key.pem`, `agents/NAME.pem` and
//! `agents/NAME-key.pem`. Keys are written mode 0600, certificates 0644,
//! each file replaced whole (a reader never sees half a key).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// What to make.
#[derive(Debug, Clone)]
pub struct Request {
    pub dir: PathBuf,
    /// Names (DNS or IP) of the server certificate; none: no server certificate.
    pub hosts: Vec<String>,
    /// One client certificate per name (its DNS SAN and common name).
    pub agents: Vec<String>,
    /// How long the server and agent certificates are valid.
    pub days: u32,
}

/// How long the CA is valid.
const CA_DAYS: i64 = 3650;

/// One file written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub path: PathBuf,
    pub what: String,
}

/// A name a certificate can carry and a file can be called.
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'*'))
        && !n.starts_with('.')
}

/// Makes what `req` asks for; returns the files written.
pub fn run(req: &Request) -> Result<Vec<Written>, String> {
    for n in req.hosts.iter().chain(&req.agents) {
        if !valid_name(n) {
            return Err(format!(
                "'{n}' is not a host name or address (letters, digits, '.', '-', '_')"
            ));
        }
    }
    for a in &req.agents {
        if a.contains('*') || a.contains(':') {
            return Err(format!("agent name '{a}' cannot hold '*' or ':'"));
        }
    }
    if req.days == 0 {
        return Err("--days must be at least 1".into());
    }
    std::fs::create_dir_all(&req.dir)
        .map_err(|e| format!("cannot create {}: {e}", req.dir.display()))?;
    let mut written = Vec::new();
    let (issuer, made_ca) = ca(&req.dir, &mut written)?;
    if !made_ca {
        tracing::debug!("reusing the CA in {}", req.dir.display());
    }
    let now = time::OffsetDateTime::now_utc();
    let until = now + time::Duration::days(i64::from(req.days));
    if !req.hosts.is_empty() {
        let (cert, key) = leaf(
            &req.hosts,
            ExtendedKeyUsagePurpose::ServerAuth,
            &issuer,
            now,
            until,
        )?;
        let what = format!("server certificate for {}", req.hosts.join(", "));
        write(
            &req.dir.join("server.pem"),
            &cert.pem(),
            0o644,
            &what,
            &mut written,
        )?;
        let k = "server key".to_string();
        write(
            &req.dir.join("server-key.pem"),
            &key.serialize_pem(),
            0o600,
            &k,
            &mut written,
        )?;
    }
    if !req.agents.is_empty() {
        let dir = req.dir.join("agents");
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    for a in &req.agents {
        let (cert, key) = leaf(
            std::slice::from_ref(a),
            ExtendedKeyUsagePurpose::ClientAuth,
            &issuer,
            now,
            until,
        )?;
        let base = req.dir.join("agents");
        let what = format!("client certificate for agent {a}");
        write(
            &base.join(format!("{a}.pem")),
            &cert.pem(),
            0o644,
            &what,
            &mut written,
        )?;
        let k = format!("client key for agent {a}");
        write(
            &base.join(format!("{a}-key.pem")),
            &key.serialize_pem(),
            0o600,
            &k,
            &mut written,
        )?;
    }
    Ok(written)
}

/// A certificate for `names` (the first is its common name) with `usage`,
/// signed by `issuer`, valid until `until`; and its new key.
fn leaf(
    names: &[String],
    usage: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'static, KeyPair>,
    now: time::OffsetDateTime,
    until: time::OffsetDateTime,
) -> Result<(rcgen::Certificate, KeyPair), String> {
    let mut params = CertificateParams::new(names.to_vec()).map_err(|e| e.to_string())?;
    params.distinguished_name = name(&names[0]);
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_before = now - time::Duration::hours(1);
    params.not_after = until;
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.signed_by(&key, issuer).map_err(|e| e.to_string())?;
    Ok((cert, key))
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "vedette");
    dn
}

/// The CA in `dir`, made when absent (then `true`).
fn ca(dir: &Path, written: &mut Vec<Written>) -> Result<(Issuer<'static, KeyPair>, bool), String> {
    let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
    match (cert_path.exists(), key_path.exists()) {
        (true, true) => {
            let read = |p: &Path| {
                std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
            };
            let key = KeyPair::from_pem(&read(&key_path)?)
                .map_err(|e| format!("{}: not a private key: {e}", key_path.display()))?;
            let issuer = Issuer::from_ca_cert_pem(&read(&cert_path)?, key)
                .map_err(|e| format!("{}: not a CA certificate: {e}", cert_path.display()))?;
            Ok((issuer, false))
        }
        (false, false) => {
            let mut params =
                CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
            // A name of its own: two fleets' CAs never pass for each other.
            let id: u32 = rand::random();
            params.distinguished_name = name(&format!("vedette private CA {id:08x}"));
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let now = time::OffsetDateTime::now_utc();
            params.not_before = now - time::Duration::hours(1);
            params.not_after = now + time::Duration::days(CA_DAYS);
            let key = KeyPair::generate().map_err(|e| e.to_string())?;
            let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
            let what = "private CA key (keep it off the network; it signs every certificate)";
            write(&key_path, &key.serialize_pem(), 0o600, what, written)?;
            let what = "private CA certificate (give it to agents and Prometheus as ca_file)";
            write(&cert_path, &cert.pem(), 0o644, what, written)?;
            Ok((Issuer::new(params, key), true))
        }
        _ => Err(format!(
            "{} and {} must both exist (to reuse the CA) or both be absent (to make one)",
            cert_path.display(),
            key_path.display()
        )),
    }
}

/// Writes `text` to `path` with `mode`, replacing it whole.
fn write(
    path: &Path,
    text: &str,
    mode: u32,
    what: &str,
    written: &mut Vec<Written>,
) -> Result<(), String> {
    let tmp = path.with_extension("pem.tmp");
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(fail)?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(fail)?;
    // The umask may have narrowed the mode; a certificate must stay readable.
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)?;
    written.push(Written {
        path: path.to_path_buf(),
        what: what.to_string(),
    });
    Ok(())
}
