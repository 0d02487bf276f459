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
//!
//! With several collectors (`collector.urls`) a push goes to the first one
//! not backing off: a connect error, timeout, TLS failure or 5xx/503 puts
//! that collector in its own backoff and the same batch goes to the next at
//! once. The preferred collector is tried again as soon as its backoff ends,
//! so delivery returns to it after it recovers. A batch a collector refuses
//! as invalid is not offered to another. Exactly-once is the collectors'
//! (one store, deduplicated by `(host, boot_id, seq)`).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vedette_protocol::clock::now_ms;
use vedette_protocol::{Batch, ErrorBody, PushAck};

use crate::config::{push_url, CollectorTls, Config};
use crate::spool::Backlog;
use crate::transport::{client_tls, describe_transport};

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
    /// Push attempts by (collector, outcome).
    pushes: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// The collectors in order, and whether each is the one in use.
    collectors: Mutex<Vec<(String, bool)>>,
    pub dropped: AtomicU64,
    pub queued: AtomicU64,
    pub spool_bytes: AtomicU64,
}

impl Stats {
    pub(crate) fn count(&self, collector: &str, outcome: &'static str) {
        let mut p = self.pushes.lock().unwrap_or_else(|e| e.into_inner());
        *p.entry((collector.to_string(), outcome)).or_default() += 1;
    }

    /// Push attempts by collector and outcome, sorted.
    pub(crate) fn pushes(&self) -> Vec<((String, &'static str), u64)> {
        let p = self.pushes.lock().unwrap_or_else(|e| e.into_inner());
        p.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Each collector and whether it is the one pushes go to now.
    pub(crate) fn collectors(&self) -> Vec<(String, bool)> {
        self.collectors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_collectors(&self, targets: &Targets) {
        *self.collectors.lock().unwrap_or_else(|e| e.into_inner()) = targets
            .list
            .iter()
            .enumerate()
            .map(|(i, t)| (t.label.clone(), targets.active == Some(i)))
            .collect();
    }
}

/// The label a collector is counted under: its base URL without the
/// trailing slash.
fn label(base: &Url) -> String {
    base.as_str().trim_end_matches('/').to_string()
}

/// One collector and its own backoff.
#[derive(Debug)]
struct Target {
    label: String,
    push: Url,
    attempt: u32,
    /// Not tried again before this.
    ready_at: Option<Instant>,
    /// Failing since its last success (logged once per outage).
    failing: bool,
}

/// The collectors, preferred first.
#[derive(Debug)]
pub(crate) struct Targets {
    list: Vec<Target>,
    /// The one the last push went to.
    active: Option<usize>,
}

impl Targets {
    pub(crate) fn new(bases: &[Url]) -> Targets {
        Targets {
            list: bases
                .iter()
                .map(|b| Target {
                    label: label(b),
                    push: push_url(b),
                    attempt: 0,
                    ready_at: None,
                    failing: false,
                })
                .collect(),
            active: None,
        }
    }

    /// The collectors to try now, preferred first.
    pub(crate) fn ready(&self, now: Instant) -> Vec<usize> {
        (0..self.list.len())
            .filter(|&i| self.list[i].ready_at.is_none_or(|t| t <= now))
            .collect()
    }

    /// When the first collector in backoff may be tried again.
    pub(crate) fn next_ready(&self) -> Option<Instant> {
        self.list.iter().filter_map(|t| t.ready_at).min()
    }

    /// `i` took a push. True when pushes moved to it from another.
    pub(crate) fn succeeded(&mut self, i: usize) -> bool {
        let t = &mut self.list[i];
        t.attempt = 0;
        t.ready_at = None;
        if t.failing {
            t.failing = false;
            tracing::info!(collector = %t.label, "collector reachable again");
        }
        let moved = self.active.is_some_and(|a| a != i);
        self.active = Some(i);
        moved
    }

    /// `i` failed: it backs off (`after`, else full jitter up to `cap`).
    pub(crate) fn failed(
        &mut self,
        i: usize,
        reason: &str,
        after: Option<Duration>,
        cap: Duration,
        now: Instant,
    ) {
        let several = self.list.len() > 1;
        let t = &mut self.list[i];
        let delay = after.unwrap_or_else(|| backoff(t.attempt, cap, &mut rand::rng()));
        t.attempt = t.attempt.saturating_add(1);
        t.ready_at = Some(now + delay);
        if !t.failing && several {
            tracing::warn!(collector = %t.label, error = %reason, "collector failed; pushing to the others while it backs off (logged once per outage)");
        }
        t.failing = true;
    }
}

/// Where pushes go and how: the collectors, the token, TLS.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Route {
    pub collectors: Vec<Url>,
    pub token: Option<String>,
    pub tls: CollectorTls,
}

impl Route {
    pub(crate) fn of(config: &Config) -> Route {
        Route {
            collectors: config.collectors.clone(),
            token: config.token.clone(),
            tls: config.collector_tls.clone(),
        }
    }
}

/// The HTTP client pushes use, with `tls` (reqwest's defaults without it).
pub(crate) fn client(tls: &CollectorTls) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .timeout(PUSH_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("vedette-agent/", env!("CARGO_PKG_VERSION")));
    if *tls != CollectorTls::default() {
        let config = client_tls(
            tls.ca_file.as_deref(),
            tls.client.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
            tls.server_name.as_deref(),
        )
        .map_err(|(field, msg)| anyhow::anyhow!("collector.{field}: {msg}"))?;
        b = b.use_preconfigured_tls(config);
    }
    Ok(b.build()?)
}

/// Why a push did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum PushError {
    /// Try again later (after `after`, if the collector said so);
    /// `outcome` is how the attempt is counted.
    #[error("{reason}")]
    Retry {
        reason: String,
        after: Option<Duration>,
        outcome: &'static str,
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
            outcome: "http_error",
        });
    }
    match status.as_u16() {
        400 | 413 | 415 => Err(PushError::Rejected {
            status: status.as_u16(),
            reason: reason(),
        }),
        429 | 503 => Err(PushError::Retry {
            reason: format!("HTTP {}: {}", status.as_u16(), reason()),
            outcome: http_outcome(status),
            after: headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s.min(3600))),
        }),
        _ => Err(PushError::Retry {
            reason: format!("HTTP {}: {}", status.as_u16(), reason()),
            after: None,
            outcome: http_outcome(status),
        }),
    }
}

fn http_outcome(status: StatusCode) -> &'static str {
    if status.is_server_error() {
        "http_5xx"
    } else {
        "http_4xx"
    }
}

/// How a transport error is counted.
fn transport_outcome(e: &reqwest::Error, described: &str) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if described.starts_with("TLS:") {
        "tls_error"
    } else if e.is_connect() {
        "connect_error"
    } else {
        "transport_error"
    }
}

/// What the sampling loop tells delivery.
#[derive(Debug)]
pub(crate) enum Msg {
    /// A new batch to deliver.
    Batch(Batch),
    /// A reloaded config points elsewhere (or carries a new token or TLS).
    Route(Route),
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
    route: Route,
    targets: Targets,
    backlog: Backlog,
    stats: Arc<Stats>,
    cap: Duration,
    next_attempt: Option<Instant>,
    outage_since: Option<Instant>,
    dropping_logged: bool,
    shutdown: CancellationToken,
}

impl Delivery {
    pub(crate) fn new(
        route: Route,
        interval: Duration,
        backlog: Backlog,
        stats: Arc<Stats>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Delivery> {
        let client = client(&route.tls)?;
        let targets = Targets::new(&route.collectors);
        stats.set_collectors(&targets);
        let d = Delivery {
            client,
            route,
            targets,
            backlog,
            stats,
            cap: max_backoff(interval),
            next_attempt: None,
            outage_since: None,
            dropping_logged: false,
            shutdown,
        };
        d.publish();
        Ok(d)
    }

    /// Sends one batch to the first collector that takes it, preferred
    /// first, skipping those backing off; counts each attempt.
    pub(crate) async fn send(&mut self, batch: &mut Batch) -> Result<PushAck, PushError> {
        let mut last = None;
        for i in self.targets.ready(Instant::now()) {
            let label = self.targets.list[i].label.clone();
            let r = self.send_to(i, batch).await;
            match &r {
                Ok(_) => {
                    self.stats.count(&label, "ok");
                    if self.targets.succeeded(i) {
                        tracing::info!(collector = %label, "pushing to this collector now");
                    }
                    self.stats.set_collectors(&self.targets);
                    return r;
                }
                Err(PushError::Rejected { .. }) => {
                    self.stats.count(&label, "rejected");
                    return r;
                }
                Err(PushError::Retry {
                    reason,
                    after,
                    outcome,
                }) => {
                    self.stats.count(&label, outcome);
                    let reason = format!("{label}: {reason}");
                    self.targets
                        .failed(i, &reason, *after, self.cap, Instant::now());
                    last = Some(reason);
                }
            }
        }
        let wait = self.targets.next_ready().map(|t| {
            t.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(100))
        });
        Err(PushError::Retry {
            reason: last.unwrap_or_else(|| "every collector is backing off".into()),
            after: wait,
            outcome: "none",
        })
    }

    /// Sends one batch to collector `i`, stamping `sent_at_ms` now.
    async fn send_to(&self, i: usize, batch: &mut Batch) -> Result<PushAck, PushError> {
        batch.sent_at_ms = now_ms();
        let body = encode(batch).map_err(|reason| PushError::Rejected { status: 0, reason })?;
        let mut req = self
            .client
            .post(self.targets.list[i].push.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(CONTENT_ENCODING, "gzip")
            .body(body);
        if let Some(t) = &self.route.token {
            req = req.header(AUTHORIZATION, format!("Bearer {t}"));
        }
        let failed = |e: reqwest::Error| {
            let reason = describe(&e);
            PushError::Retry {
                outcome: transport_outcome(&e, &reason),
                reason,
                after: None,
            }
        };
        let mut resp = req.send().await.map_err(failed)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(failed)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_RESPONSE_BYTES {
                break;
            }
        }
        classify(status, &headers, &body)
    }

    /// Sends unless shutdown comes first (then the batch counts as unsent).
    async fn send_or_stop(&mut self, batch: &mut Batch) -> Option<Result<PushAck, PushError>> {
        let shutdown = self.shutdown.clone();
        tokio::select! {
            r = self.send(batch) => Some(r),
            _ = shutdown.cancelled() => None,
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
        tracing::debug!(seq, accepted = ack.accepted, "batch delivered");
        if let Some(since) = self.outage_since.take() {
            tracing::info!(
                down_for = %humantime::format_duration(Duration::from_secs(since.elapsed().as_secs())),
                backlog = self.backlog.len(),
                "collector reachable again; delivering the backlog"
            );
        }
        self.dropping_logged = false;
    }

    fn rejected(&mut self, seq: u64, status: u16, reason: &str) {
        tracing::warn!(seq, status, reason = %reason, "collector rejected a batch; dropping it");
    }

    fn retry_later(&mut self, reason: &str, after: Option<Duration>) {
        if self.outage_since.is_none() {
            self.outage_since = Some(Instant::now());
            tracing::warn!(
                error = %reason,
                durable = self.backlog.is_durable(),
                "cannot deliver to the collector; keeping batches and retrying (logged once per outage)"
            );
        } else {
            tracing::debug!(error = %reason, "push retry failed");
        }
        let delay = after.unwrap_or(self.cap);
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
            Some(Err(PushError::Retry { reason, after, .. })) => {
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
            Msg::Route(route) => self.reroute(route),
        }
    }

    fn reroute(&mut self, route: Route) {
        if route == self.route {
            return;
        }
        if route.tls != self.route.tls {
            match client(&route.tls) {
                Ok(c) => self.client = c,
                Err(e) => {
                    tracing::error!(error = %e, "cannot apply the new TLS settings; keeping the old ones");
                    return;
                }
            }
        }
        let urls: Vec<String> = route.collectors.iter().map(label).collect();
        tracing::info!(collectors = ?urls, "collector route changed");
        self.targets = Targets::new(&route.collectors);
        self.stats.set_collectors(&self.targets);
        self.route = route;
        if !self.backlog.is_empty() {
            self.next_attempt = Some(Instant::now());
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
                Some(Err(PushError::Retry { reason, after, .. })) => {
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
