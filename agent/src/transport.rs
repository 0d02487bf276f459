//! What went wrong with an HTTP request, in an operator's words (shared by
//! pushes and `http` checks).

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
