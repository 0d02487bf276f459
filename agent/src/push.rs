//! Delivery: one gzip JSON batch per interval to the collector, oldest first,
//! with retries.
//!
//! A batch is pushed as soon as it is made. What the collector does not
//! acknowledge waits in the [`Backlog`] (the on-disk spool, or memory with
//! `spool: {dir: off}`) and is replayed oldest first, before newer batches;
//! each keeps its `boot_id` and `seq`, so the collector applies it once even
//! when a crash makes us send it twice. A retryable failure (network,
//! 5xx, 429, 401/403 while an operator fixes tokens) backs off exponentially
//! with full jitter, capped at [`max_backoff`], honouring `Retry-After`; a
//! batch the collector calls invalid (400/413/415) is dropped and counted, not
//! retried forever. An outage is logged once when it starts and once when it
//! ends, not once per retry. When the backlog is full the oldest batches are
//! dropped and counted.

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
use vedette_protocol::clock::now_ms;
use vedette_protocol::{Batch, ErrorBody, PushAck};

use crate::spool::Backlog;
use crate::transport::describe_transport;

/// The memory backlog's bound when the spool is off.
pub(crate) const MEMORY_BACKLOG_BYTES: u64 = 16 << 20;
/// How long one push may take.
pub(crate) const PUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown may spend delivering what is queued.
pub(crate) const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest collector answer read.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Delivery counters, read by the local `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub ok: AtomicU64,
    pub retried: AtomicU64,
    pub rejected: AtomicU64,
    pub dropped: AtomicU64,
    pub queued: AtomicU64,
    pub spool_bytes: AtomicU64,
}

/// Why a push did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum PushError {
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
pub(crate) fn max_backoff(interval: Duration) -> Duration {
    (interval * 3).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Full-jitter exponential backoff: uniform in `[0, min(cap, 1s · 2^attempt)]`,
/// at least 100 ms.
pub(crate) fn backoff(attempt: u32, cap: Duration, rng: &mut impl Rng) -> Duration {
    let ceiling = Duration::from_secs(1)
        .saturating_mul(1u32 << attempt.min(16))
        .min(cap);
    let ms = rng.random_range(0..=ceiling.as_millis() as u64);
    Duration::from_millis(ms.max(100))
}

/// Maps a collector answer to the protocol's outcome.
pub(crate) fn classify(
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

/// What the sampling loop tells delivery.
#[derive(Debug)]
pub(crate) enum Msg {
    /// A new batch to deliver.
    Batch(Batch),
    /// A reloaded config points elsewhere (or carries a new token).
    Target { url: Url, token: Option<String> },
}

/// Encodes a batch as the gzip JSON body of a push.
pub(crate) fn encode(batch: &Batch) -> Result<Vec<u8>, String> {
    let json = serde_json::to_vec(batch).map_err(|e| format!("cannot encode batch: {e}"))?;
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(json.len() / 4),
        flate2::Compression::default(),
    );
    gz.write_all(&json)
        .and_then(|_| gz.finish())
        .map_err(|e| format!("gzip failed: {e}"))
}

/// Decodes a spooled body.
pub(crate) fn decode(body: &[u8]) -> Result<Batch, String> {
    let mut json = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(flate2::read::GzDecoder::new(body), 64 << 20),
        &mut json,
    )
    .map_err(|e| format!("spooled batch is not gzip: {e}"))?;
    serde_json::from_slice(&json).map_err(|e| format!("spooled batch is unreadable: {e}"))
}

/// Pushes batches to one collector, oldest first, keeping what it cannot
/// deliver in a [`Backlog`].
pub(crate) struct Delivery {
    client: reqwest::Client,
    url: Url,
    token: Option<String>,
    backlog: Backlog,
    stats: Arc<Stats>,
    cap: Duration,
    attempt: u32,
    next_attempt: Option<Instant>,
    outage_since: Option<Instant>,
    dropping_logged: bool,
    shutdown: CancellationToken,
}

impl Delivery {
    pub(crate) fn new(
        url: Url,
        token: Option<String>,
        interval: Duration,
        backlog: Backlog,
        stats: Arc<Stats>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Delivery> {
        let client = reqwest::Client::builder()
            .timeout(PUSH_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("vedette-agent/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let d = Delivery {
            client,
            url,
            token,
            backlog,
            stats,
            cap: max_backoff(interval),
            attempt: 0,
            next_attempt: None,
            outage_since: None,
            dropping_logged: false,
            shutdown,
        };
        d.publish();
        Ok(d)
    }

    /// Sends one batch, stamping `sent_at_ms` now.
    pub(crate) async fn send(&self, batch: &mut Batch) -> Result<PushAck, PushError> {
        batch.sent_at_ms = now_ms();
        let body = encode(batch).map_err(|reason| PushError::Rejected { status: 0, reason })?;
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

    /// Sends unless shutdown comes first (then the batch counts as unsent).
    async fn send_or_stop(&self, batch: &mut Batch) -> Option<Result<PushAck, PushError>> {
        tokio::select! {
            r = self.send(batch) => Some(r),
            _ = self.shutdown.cancelled() => None,
        }
    }

    fn publish(&self) {
        self.stats
            .queued
            .store(self.backlog.len(), Ordering::Relaxed);
        self.stats
            .spool_bytes
            .store(self.backlog.bytes(), Ordering::Relaxed);
        self.stats
            .dropped
            .store(self.backlog.dropped, Ordering::Relaxed);
    }

    /// Puts a batch at the back of the backlog.
    fn store(&mut self, batch: &Batch) {
        let body = match encode(batch) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(seq = batch.seq, error = %e, "cannot keep a batch; dropping it");
                return;
            }
        };
        match self.backlog.push(&body) {
            Ok(0) => {}
            Ok(_) => {
                if !self.dropping_logged {
                    tracing::warn!(
                        "backlog is full; dropping the oldest batches (logged once per outage)"
                    );
                    self.dropping_logged = true;
                }
            }
            Err(e) => {
                self.backlog.dropped += 1;
                tracing::error!(seq = batch.seq, error = %e, "cannot write a batch to the spool; dropping it");
            }
        }
        self.publish();
    }

    fn delivered(&mut self, seq: u64, ack: &PushAck) {
        self.stats.ok.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(seq, accepted = ack.accepted, "batch delivered");
        if let Some(since) = self.outage_since.take() {
            tracing::info!(
                down_for = %humantime::format_duration(Duration::from_secs(since.elapsed().as_secs())),
                backlog = self.backlog.len(),
                "collector reachable again; delivering the backlog"
            );
        }
        self.attempt = 0;
        self.dropping_logged = false;
    }

    fn rejected(&mut self, seq: u64, status: u16, reason: &str) {
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(seq, status, reason = %reason, "collector rejected a batch; dropping it");
    }

    fn retry_later(&mut self, reason: &str, after: Option<Duration>) {
        self.stats.retried.fetch_add(1, Ordering::Relaxed);
        if self.outage_since.is_none() {
            self.outage_since = Some(Instant::now());
            tracing::warn!(
                url = %self.url,
                error = %reason,
                durable = self.backlog.is_durable(),
                "cannot deliver to the collector; keeping batches and retrying (logged once per outage)"
            );
        } else {
            tracing::debug!(error = %reason, "push retry failed");
        }
        let delay = after.unwrap_or_else(|| backoff(self.attempt, self.cap, &mut rand::rng()));
        self.attempt = self.attempt.saturating_add(1);
        self.next_attempt = Some(Instant::now() + delay);
    }

    /// A new batch: sent now when nothing older waits, else queued behind.
    async fn accept(&mut self, mut batch: Batch) {
        if !self.backlog.is_empty() || self.next_attempt.is_some() {
            self.store(&batch);
            return;
        }
        match self.send_or_stop(&mut batch).await {
            Some(Ok(ack)) => self.delivered(batch.seq, &ack),
            Some(Err(PushError::Rejected { status, reason })) => {
                self.rejected(batch.seq, status, &reason)
            }
            Some(Err(PushError::Retry { reason, after })) => {
                self.store(&batch);
                self.retry_later(&reason, after);
            }
            None => self.store(&batch),
        }
    }

    fn take_messages(&mut self, rx: &mut mpsc::Receiver<Msg>) {
        while let Ok(m) = rx.try_recv() {
            self.handle(m);
        }
    }

    fn handle(&mut self, m: Msg) {
        match m {
            Msg::Batch(b) => self.store(&b),
            Msg::Target { url, token } => self.retarget(url, token),
        }
    }

    fn retarget(&mut self, url: Url, token: Option<String>) {
        if url != self.url || token != self.token {
            tracing::info!(url = %url, "collector target changed");
            self.url = url;
            self.token = token;
            self.attempt = 0;
            if !self.backlog.is_empty() {
                self.next_attempt = Some(Instant::now());
            }
        }
    }

    /// Delivers the backlog oldest first until it is empty or a push fails.
    async fn drain(&mut self, rx: &mut mpsc::Receiver<Msg>) {
        loop {
            self.take_messages(rx);
            if self.shutdown.is_cancelled() {
                break;
            }
            let body = match self.backlog.peek() {
                Ok(Some(b)) => b,
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the spool; retrying later");
                    self.next_attempt = Some(Instant::now() + self.cap);
                    break;
                }
            };
            let mut batch = match decode(&body) {
                Ok(b) => b,
                Err(e) => {
                    self.rejected(0, 0, &e);
                    self.pop();
                    continue;
                }
            };
            match self.send_or_stop(&mut batch).await {
                Some(Ok(ack)) => {
                    self.pop();
                    self.delivered(batch.seq, &ack);
                }
                Some(Err(PushError::Rejected { status, reason })) => {
                    self.pop();
                    self.rejected(batch.seq, status, &reason);
                }
                Some(Err(PushError::Retry { reason, after })) => {
                    self.retry_later(&reason, after);
                    break;
                }
                None => break,
            }
        }
        self.publish();
    }

    fn pop(&mut self) {
        if let Err(e) = self.backlog.pop() {
            tracing::error!(error = %e, "cannot advance the spool head; the batch may be sent again");
        }
    }

    /// Takes batches from `rx` and delivers them until shutdown. Then
    /// everything unsent is in the backlog: on disk it waits for the next
    /// start; in memory, delivery gets [`FLUSH_TIMEOUT`] to send it.
    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        if !self.backlog.is_empty() {
            tracing::info!(
                batches = self.backlog.len(),
                bytes = self.backlog.bytes(),
                "replaying spooled batches, oldest first"
            );
            self.next_attempt = Some(Instant::now());
        }
        let shutdown = self.shutdown.clone();
        loop {
            let wait = self.next_attempt;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                m = rx.recv() => match m {
                    Some(Msg::Batch(b)) => self.accept(b).await,
                    Some(m) => self.handle(m),
                    None => break,
                },
                _ = sleep_until(wait), if wait.is_some() => {
                    self.next_attempt = None;
                    self.drain(&mut rx).await;
                }
            }
        }
        self.take_messages(&mut rx);
        if self.backlog.is_empty() {
            return;
        }
        if self.backlog.is_durable() {
            tracing::info!(
                batches = self.backlog.len(),
                "unsent batches are spooled for the next start"
            );
            return;
        }
        let pending = self.backlog.len();
        // In memory only: one last, bounded try.
        self.shutdown = CancellationToken::new();
        let left = tokio::time::timeout(FLUSH_TIMEOUT, async {
            self.drain(&mut rx).await;
            self.backlog.len()
        })
        .await
        .unwrap_or(pending);
        if left > 0 {
            tracing::warn!(
                batches = left,
                "exiting with undelivered batches (set `spool.dir` to keep them across restarts)"
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

/// A short, operator-facing reason for a push's transport error.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("timeout after {}s", PUSH_TIMEOUT.as_secs());
    }
    describe_transport(e)
}

#[cfg(test)]
mod tests;
