//! Delivery: one gzip JSON batch per interval to the collector, oldest first,
//! with retries.
//!
//! Batches wait in a bounded in-memory queue until the collector acknowledges
//! them (the on-disk spool is a later piece). A retryable failure (network,
//! 5xx, 429, 401/403 while an operator fixes tokens) backs off exponentially
//! with full jitter, capped at [`max_backoff`], honouring `Retry-After`; a
//! batch the collector calls invalid (400/413/415) is dropped and counted, not
//! retried forever. An outage is logged once when it starts and once when it
//! ends, not once per retry. When the queue is full the oldest batch is
//! dropped and counted.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vedette_protocol::{Batch, ErrorBody, PushAck};

/// Batches held in memory while the collector is unreachable.
pub const MAX_QUEUED: usize = 360;
/// How long one push may take.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown may spend delivering what is queued.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest collector answer read.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Delivery counters, read by the local `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    pub ok: AtomicU64,
    pub retried: AtomicU64,
    pub rejected: AtomicU64,
    pub dropped: AtomicU64,
    pub queued: AtomicU64,
}

/// Why a push did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PushError {
    /// Try again later (after `after`, if the collector said so).
    #[error("{reason}")]
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// The collector refused this batch itself; retrying cannot help.
    #[error("collector rejected the batch ({status}): {reason}")]
    Rejected { status: u16, reason: String },
}

/// The retry cap for an agent pushing every `interval`: three intervals, at
/// most a minute, so delivery resumes soon after the collector returns.
pub fn max_backoff(interval: Duration) -> Duration {
    (interval * 3).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Full-jitter exponential backoff: uniform in `[0, min(cap, 1s · 2^attempt)]`,
/// at least 100 ms.
pub fn backoff(attempt: u32, cap: Duration, rng: &mut impl Rng) -> Duration {
    let ceiling = Duration::from_secs(1)
        .saturating_mul(1u32 << attempt.min(16))
        .min(cap);
    let ms = rng.random_range(0..=ceiling.as_millis() as u64);
    Duration::from_millis(ms.max(100))
}

/// Maps a collector answer to the protocol's outcome.
pub fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<PushAck, PushError> {
    let reason = || match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => match e.field {
            Some(f) => format!("{} (field {f})", e.error),
            None => e.error,
        },
        Err(_) => format!("HTTP {status}"),
    };
    if status.is_success() {
        return serde_json::from_slice(body).map_err(|e| PushError::Retry {
            reason: format!("unreadable acknowledgement: {e}"),
            after: None,
        });
    }
    match status.as_u16() {
        400 | 413 | 415 => Err(PushError::Rejected {
            status: status.as_u16(),
            reason: reason(),
        }),
        429 | 503 => Err(PushError::Retry {
            reason: format!("HTTP {}: {}", status.as_u16(), reason()),
            after: headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s.min(3600))),
        }),
        _ => Err(PushError::Retry {
            reason: format!("HTTP {}: {}", status.as_u16(), reason()),
            after: None,
        }),
    }
}

/// Pushes batches to one collector.
pub struct Delivery {
    client: reqwest::Client,
    url: Url,
    token: Option<String>,
    queue: VecDeque<Batch>,
    stats: Arc<Stats>,
    cap: Duration,
    attempt: u32,
    next_attempt: Option<Instant>,
    outage_since: Option<Instant>,
    dropping_logged: bool,
}

impl Delivery {
    pub fn new(
        url: Url,
        token: Option<String>,
        interval: Duration,
        stats: Arc<Stats>,
    ) -> anyhow::Result<Delivery> {
        let client = reqwest::Client::builder()
            .timeout(PUSH_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("vedette-agent/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Delivery {
            client,
            url,
            token,
            queue: VecDeque::new(),
            stats,
            cap: max_backoff(interval),
            attempt: 0,
            next_attempt: None,
            outage_since: None,
            dropping_logged: false,
        })
    }

    /// Sends one batch, stamping `sent_at_ms` now.
    pub async fn send(&self, batch: &mut Batch) -> Result<PushAck, PushError> {
        batch.sent_at_ms = now_ms();
        let json = serde_json::to_vec(&*batch).map_err(|e| PushError::Rejected {
            status: 0,
            reason: format!("cannot encode batch: {e}"),
        })?;
        let mut gz = flate2::write::GzEncoder::new(
            Vec::with_capacity(json.len() / 4),
            flate2::Compression::default(),
        );
        let body = gz
            .write_all(&json)
            .and_then(|_| gz.finish())
            .map_err(|e| PushError::Retry {
                reason: format!("gzip failed: {e}"),
                after: None,
            })?;
        let mut req = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(CONTENT_ENCODING, "gzip")
            .body(body);
        if let Some(t) = &self.token {
            req = req.header(AUTHORIZATION, format!("Bearer {t}"));
        }
        let mut resp = req.send().await.map_err(|e| PushError::Retry {
            reason: describe(&e),
            after: None,
        })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| PushError::Retry {
            reason: describe(&e),
            after: None,
        })? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_RESPONSE_BYTES {
                break;
            }
        }
        classify(status, &headers, &body)
    }

    fn enqueue(&mut self, batch: Batch) {
        if self.queue.len() >= MAX_QUEUED {
            self.queue.pop_front();
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            if !self.dropping_logged {
                tracing::warn!(
                    max = MAX_QUEUED,
                    "delivery queue is full; dropping the oldest batches (logged once per outage)"
                );
                self.dropping_logged = true;
            }
        }
        self.queue.push_back(batch);
        self.stats
            .queued
            .store(self.queue.len() as u64, Ordering::Relaxed);
    }

    /// Delivers queued batches oldest first until one fails.
    async fn deliver(&mut self) {
        while let Some(mut batch) = self.queue.pop_front() {
            let seq = batch.seq;
            match self.send(&mut batch).await {
                Ok(ack) => {
                    self.stats.ok.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(seq, accepted = ack.accepted, "batch delivered");
                    if let Some(since) = self.outage_since.take() {
                        tracing::info!(
                            down_for = %humantime::format_duration(Duration::from_secs(since.elapsed().as_secs())),
                            backlog = self.queue.len(),
                            "collector reachable again; delivering the backlog"
                        );
                    }
                    self.attempt = 0;
                    self.next_attempt = None;
                    self.dropping_logged = false;
                }
                Err(PushError::Rejected { status, reason }) => {
                    self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(seq, status, reason = %reason, "collector rejected a batch; dropping it");
                }
                Err(PushError::Retry { reason, after }) => {
                    // Back at the head: order is kept.
                    self.queue.push_front(batch);
                    self.stats.retried.fetch_add(1, Ordering::Relaxed);
                    if self.outage_since.is_none() {
                        self.outage_since = Some(Instant::now());
                        tracing::warn!(
                            url = %self.url,
                            error = %reason,
                            "cannot deliver to the collector; keeping batches and retrying (logged once per outage)"
                        );
                    } else {
                        tracing::debug!(error = %reason, "push retry failed");
                    }
                    let delay =
                        after.unwrap_or_else(|| backoff(self.attempt, self.cap, &mut rand::rng()));
                    self.attempt = self.attempt.saturating_add(1);
                    self.next_attempt = Some(Instant::now() + delay);
                    break;
                }
            }
        }
        self.stats
            .queued
            .store(self.queue.len() as u64, Ordering::Relaxed);
    }

    /// Takes batches from `rx` and delivers them until `shutdown`, then tries
    /// for at most [`FLUSH_TIMEOUT`] to deliver what is left.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Batch>, shutdown: CancellationToken) {
        loop {
            let wait = self.next_attempt;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                b = rx.recv() => match b {
                    Some(b) => {
                        self.enqueue(b);
                        if self.next_attempt.is_none() {
                            self.deliver().await;
                        }
                    }
                    None => break,
                },
                _ = sleep_until(wait), if wait.is_some() => {
                    self.next_attempt = None;
                    self.deliver().await;
                }
            }
        }
        while let Ok(b) = rx.try_recv() {
            self.enqueue(b);
        }
        if self.queue.is_empty() {
            return;
        }
        let pending = self.queue.len();
        self.next_attempt = None;
        let flushed = tokio::time::timeout(FLUSH_TIMEOUT, async {
            self.deliver().await;
            self.queue.len()
        })
        .await;
        let left = flushed.unwrap_or(pending);
        if left > 0 {
            tracing::warn!(
                batches = left,
                "exiting with undelivered batches (the disk spool is not implemented yet)"
            );
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A short, operator-facing reason for a transport error.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("timeout after {}s", PUSH_TIMEOUT.as_secs());
    }
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg = s.to_string();
        source = s.source();
    }
    if e.is_connect() && msg.contains("refused") {
        return "connect refused".into();
    }
    msg
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_is_full_jitter_under_the_cap() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let cap = Duration::from_secs(30);
        for attempt in 0..40 {
            let ceiling = Duration::from_secs(1u64 << attempt.min(16)).min(cap);
            for _ in 0..50 {
                let d = backoff(attempt, cap, &mut rng);
                assert!(
                    d >= Duration::from_millis(100) && d <= ceiling.max(Duration::from_millis(100)),
                    "{attempt}: {d:?}"
                );
            }
        }
        // Jitter actually spreads retries.
        let spread: std::collections::HashSet<_> =
            (0..20).map(|_| backoff(5, cap, &mut rng)).collect();
        assert!(spread.len() > 10);
    }

    #[test]
    fn cap_follows_the_interval() {
        assert_eq!(max_backoff(Duration::from_secs(1)), Duration::from_secs(3));
        assert_eq!(
            max_backoff(Duration::from_secs(10)),
            Duration::from_secs(30)
        );
        assert_eq!(
            max_backoff(Duration::from_secs(300)),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn classify_answers() {
        let h = HeaderMap::new();
        assert_eq!(
            classify(StatusCode::OK, &h, br#"{"accepted": 3, "ack_seq": 9}"#),
            Ok(PushAck {
                accepted: 3,
                ack_seq: 9
            })
        );
        let bad = br#"{"error": "value must be finite", "field": "samples[3].value"}"#;
        assert_eq!(
            classify(StatusCode::BAD_REQUEST, &h, bad),
            Err(PushError::Rejected {
                status: 400,
                reason: "value must be finite (field samples[3].value)".into()
            })
        );
        assert!(matches!(
            classify(StatusCode::PAYLOAD_TOO_LARGE, &h, b""),
            Err(PushError::Rejected { status: 413, .. })
        ));
        let mut retry = HeaderMap::new();
        retry.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(
            classify(
                StatusCode::TOO_MANY_REQUESTS,
                &retry,
                b"{\"error\": \"busy\"}"
            ),
            Err(PushError::Retry {
                reason: "HTTP 429: busy".into(),
                after: Some(Duration::from_secs(7))
            })
        );
        for s in [401, 403, 500, 502, 503] {
            assert!(
                matches!(
                    classify(StatusCode::from_u16(s).unwrap(), &h, b"<html>"),
                    Err(PushError::Retry { .. })
                ),
                "{s} must be retried"
            );
        }
        assert!(matches!(
            classify(StatusCode::OK, &h, b"not json"),
            Err(PushError::Retry { .. })
        ));
    }
}
