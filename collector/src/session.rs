//! Console sessions: a cookie signed with a key kept in the data directory,
//! naming the API token the person logged in with (never the token itself),
//! and the CSRF token of each form, derived from the session.
//!
//! Cookie: `vedette_session=<nonce>.<expires_s>.<name_hex>.<mac>`, HttpOnly,
//! SameSite=Strict, Secure under TLS, 12 hours. The MAC (HMAC-SHA256 over
//! the first three parts) makes it unforgeable; the token's name is looked
//! up in the running config on every request, so a token removed from the
//! config (and reloaded) ends its sessions, and its current role applies.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The cookie's name.
pub(crate) const COOKIE: &str = "vedette_session";
/// How long a session lasts.
pub(crate) const LIFETIME_S: i64 = 12 * 3600;
/// The key file in the data directory.
const KEY_FILE: &str = "console.key";

/// The key sessions are signed with.
#[derive(Clone)]
pub struct SessionKey([u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(…)")
    }
}

impl SessionKey {
    /// The key in `data_dir/console.key`, made (mode 0600) when missing, so
    /// sessions survive a restart.
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<SessionKey> {
        let path = data_dir.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(b) if b.len() == 32 => {
                let mut k = [0u8; 32];
                k.copy_from_slice(&b);
                return Ok(SessionKey(k));
            }
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                "{} is not a 32-byte key; remove it to make a new one (ends every console session)",
                path.display()
            )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::fs::create_dir_all(data_dir)?;
        let key: [u8; 32] = rand::random();
        let tmp = path.with_extension("key.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&key)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(SessionKey(key))
    }

    /// A key for tests.
    pub fn random() -> SessionKey {
        SessionKey(rand::random())
    }

    fn mac(&self, parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut m =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        for p in parts {
            m.update(p);
            m.update(b"|");
        }
        m
    }

    /// A fresh session cookie value for the token `name`, valid until
    /// `now_s + LIFETIME_S`.
    pub(crate) fn issue(&self, name: &str, now_s: i64) -> String {
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let expires = (now_s + LIFETIME_S).to_string();
        let name = hex::encode(name.as_bytes());
        let mac = self
            .mac(&[nonce.as_bytes(), expires.as_bytes(), name.as_bytes()])
            .finalize()
            .into_bytes();
        format!("{nonce}.{expires}.{name}.{}", hex::encode(mac))
    }

    /// The session in a cookie value: `(nonce, token name)` when the MAC
    /// holds and it has not expired at `now_s`.
    pub(crate) fn verify(&self, value: &str, now_s: i64) -> Option<Session> {
        if value.len() > 1024 {
            return None;
        }
        let mut it = value.split('.');
        let (nonce, expires, name, mac) = (it.next()?, it.next()?, it.next()?, it.next()?);
        if it.next().is_some() {
            return None;
        }
        let mac = hex::decode(mac).ok()?;
        self.mac(&[nonce.as_bytes(), expires.as_bytes(), name.as_bytes()])
            .verify_slice(&mac)
            .ok()?;
        if expires.parse::<i64>().ok()? <= now_s {
            return None;
        }
        let name = String::from_utf8(hex::decode(name).ok()?).ok()?;
        Some(Session {
            nonce: nonce.to_string(),
            name,
        })
    }

    /// The CSRF token of a session's forms.
    pub(crate) fn csrf(&self, session: &Session) -> String {
        hex::encode(
            self.mac(&[b"csrf", session.nonce.as_bytes()])
                .finalize()
                .into_bytes(),
        )
    }

    /// True when `given` is the session's CSRF token (constant time).
    pub(crate) fn csrf_ok(&self, session: &Session, given: &str) -> bool {
        hex::decode(given).is_ok_and(|g| {
            self.mac(&[b"csrf", session.nonce.as_bytes()])
                .verify_slice(&g)
                .is_ok()
        })
    }
}

/// A verified session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    pub nonce: String,
    /// The API token's name (or the console's own, when no tokens exist).
    pub name: String,
}

/// The `Set-Cookie` value for `value` (`secure` under TLS).
pub(crate) fn set_cookie(value: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={LIFETIME_S}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that ends the session.
pub(crate) fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The session cookie's value among `Cookie` headers.
pub(crate) fn cookie_value(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

#[cfg(test)]
mod tests;
