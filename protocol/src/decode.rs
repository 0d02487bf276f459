//! From bytes to a validated [`Batch`]: the encoding, bounded gunzip,
//! bounded JSON, then every rule of the protocol; or a [`Rejection`] that
//! names the field and the status to answer.

use super::*;

/// How a request body is encoded (`Content-Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

impl Encoding {
    /// Parses a `Content-Encoding` header value; `None` means no header.
    pub fn from_header(value: Option<&str>) -> Result<Encoding, Rejection> {
        match value.map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(Encoding::Identity),
            Some(v) if v.is_empty() || v == "identity" => Ok(Encoding::Identity),
            Some(v) if v == "gzip" || v == "x-gzip" => Ok(Encoding::Gzip),
            Some(v) => Err(Rejection::new(
                RejectionKind::UnsupportedEncoding,
                None,
                format!("content-encoding '{v}' is not supported; send gzip or identity"),
            )),
        }
    }
}

/// Why a batch was refused. Each kind maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionKind {
    /// 400: malformed JSON or a value outside the rules.
    Invalid,
    /// 413: the body, the decoded body, or a count is over its limit.
    TooLarge,
    /// 415: a `Content-Encoding` other than gzip or identity.
    UnsupportedEncoding,
}

impl RejectionKind {
    /// The HTTP status code for this kind.
    pub fn status(self) -> u16 {
        match self {
            RejectionKind::Invalid => 400,
            RejectionKind::TooLarge => 413,
            RejectionKind::UnsupportedEncoding => 415,
        }
    }
}

/// A refused batch: kind, offending field, and a message that names the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Rejection {
    pub kind: RejectionKind,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl Rejection {
    pub(crate) fn new(
        kind: RejectionKind,
        field: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        Rejection {
            kind,
            field,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Rejection::new(RejectionKind::Invalid, Some(field.into()), message)
    }

    pub(crate) fn too_large(field: impl Into<String>, message: impl Into<String>) -> Self {
        Rejection::new(RejectionKind::TooLarge, Some(field.into()), message)
    }

    /// The JSON body to answer with.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.message.clone(),
            field: self.field.clone(),
            limit: None,
        }
    }
}

/// Decodes and validates one request body: size, decompression (bounded),
/// JSON, then [`Batch::validate`] against `now_ms`.
pub fn decode(
    body: &[u8],
    encoding: Encoding,
    limits: &Limits,
    now_ms: i64,
) -> Result<Batch, Rejection> {
    if body.len() > limits.max_body_bytes {
        return Err(Rejection::new(
            RejectionKind::TooLarge,
            None,
            format!(
                "body is {} bytes, over the limit of {}; send smaller batches",
                body.len(),
                limits.max_body_bytes
            ),
        ));
    }
    let decoded;
    let json: &[u8] = match encoding {
        Encoding::Identity => {
            if body.len() > limits.max_decoded_bytes {
                return Err(decoded_too_large(limits));
            }
            body
        }
        Encoding::Gzip => {
            decoded = gunzip_bounded(body, limits.max_decoded_bytes)?;
            &decoded
        }
    };
    let batch = parse_json(json)?;
    batch.validate(limits, now_ms)?;
    Ok(batch)
}

pub(super) fn decoded_too_large(limits: &Limits) -> Rejection {
    Rejection::new(
        RejectionKind::TooLarge,
        None,
        format!(
            "decoded body is over the limit of {} bytes; send smaller batches",
            limits.max_decoded_bytes
        ),
    )
}

/// Inflates gzip, refusing to produce more than `max` bytes.
pub(super) fn gunzip_bounded(body: &[u8], max: usize) -> Result<Vec<u8>, Rejection> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(max));
    // Read one byte past the limit so "exactly max" and "over max" differ.
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let mut reader = flate2::read::GzDecoder::new(body).take(limit);
    reader.read_to_end(&mut out).map_err(|e| {
        Rejection::new(
            RejectionKind::Invalid,
            None,
            format!("body is not valid gzip: {e}"),
        )
    })?;
    if out.len() > max {
        return Err(Rejection::new(
            RejectionKind::TooLarge,
            None,
            format!("gzip body inflates past the limit of {max} bytes; send smaller batches"),
        ));
    }
    Ok(out)
}

pub(super) fn parse_json(json: &[u8]) -> Result<Batch, Rejection> {
    // Fast path: a plain parse. The parse with path tracking was 35 % of
    // the collector's instructions under load (tests/bench/profile.sh), so
    // only a batch that fails is parsed again, to name the field.
    if let Ok(batch) = serde_json::from_slice(json) {
        return Ok(batch);
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    let batch: Batch = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = (path != ".").then_some(path);
        Rejection::new(
            RejectionKind::Invalid,
            field,
            format!("malformed batch: {}", e.into_inner()),
        )
    })?;
    de.end().map_err(|e| {
        Rejection::new(
            RejectionKind::Invalid,
            None,
            format!("malformed batch: {e}"),
        )
    })?;
    Ok(batch)
}
