//! The delivery loop: one task per receiver over its own store connection.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::send::{self, Delivered, Failure, Outgoing};
use super::Wake;
use super::{backoff, Kind, Receiver, Router};
use crate::metrics::Metrics;
use crate::outbox::{Attempt, OutboxRow};
use crate::store::{Store, StoreError};
use vedette_protocol::clock::now_ms;

/// Deliveries in flight per receiver (each for a different incident).
pub(crate) const CONCURRENCY: usize = 8;

/// How often live incidents are re-sent to Alertmanager, which resolves
/// alerts it stops hearing about after its `resolve_timeout` (5m).
pub(crate) const ALERTMANAGER_REFRESH: Duration = Duration::from_secs(60);

/// How long in-flight deliveries get to finish at shutdown.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What an attempt at `row` ended as, at `now_ms`. `jitter` in 0..1.
pub(crate) fn decide(
    r: &Receiver,
    row: &OutboxRow,
    result: Result<Delivered, Failure>,
    now_ms: i64,
    jitter: f64,
) -> Attempt {
    match result {
        Ok(d) => Attempt::Delivered {
            external_id: d.external_id,
        },
        Err(Failure::Reject(e)) => Attempt::Rejected(e),
        Err(Failure::Retry { error, after }) => {
            let attempts = row.attempts + 1;
            let wait = after.unwrap_or_else(|| backoff(attempts, r.max_backoff, jitter));
            let next_at_ms = now_ms.saturating_add(wait.as_millis() as i64);
            let give_up_ms = row
                .created_at_ms
                .saturating_add(r.give_up_after.as_millis() as i64);
            if next_at_ms > give_up_ms {
                Attempt::Expired(format!(
                    "gave up after {attempts} attempts over {}: {error}",
                    humantime::format_duration(Duration::from_secs(
                        ((now_ms - row.created_at_ms).max(0) / 1000) as u64
                    ))
                ))
            } else {
                Attempt::Retry { error, next_at_ms }
            }
        }
    }
}

fn outcome_label(a: &Attempt) -> &'static str {
    match a {
        Attempt::Delivered { .. } => "delivered",
        Attempt::Retry { .. } => "retried",
        Attempt::Rejected(_) => "rejected",
        Attempt::Expired(_) => "expired",
    }
}

type Db = Arc<Mutex<Store>>;

async fn db<T: Send + 'static>(
    store: &Db,
    f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || f(&mut store.lock().unwrap_or_else(|p| p.into_inner())))
        .await
        .unwrap_or_else(|e| Err(StoreError::Corrupt(format!("store task failed: {e}"))))
}

/// Starts one delivery task per receiver on a store connection of its own
/// (opened from `db_path`); returns the wake-up to hand the engine's store
/// and the tasks' handles. Tasks stop when `shutdown` is cancelled, giving
/// in-flight deliveries [`SHUTDOWN_GRACE`] to finish.
pub(crate) fn spawn(
    router: &Router,
    db_path: &Path,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<(Wake, JoinSet<()>), StoreError> {
    let (tx, rx) = watch::channel(0u64);
    let wake: Wake = Arc::new(move || {
        tx.send_modify(|n| *n = n.wrapping_add(1));
    });
    let mut tasks = JoinSet::new();
    for r in &router.receivers {
        let store = Arc::new(Mutex::new(Store::open(db_path)?));
        tasks.spawn(run(
            r.clone(),
            store,
            Arc::clone(&metrics),
            rx.clone(),
            shutdown.clone(),
        ));
    }
    Ok((wake, tasks))
}

async fn run(
    r: Receiver,
    store: Db,
    metrics: Arc<Metrics>,
    mut wake: watch::Receiver<u64>,
    shutdown: CancellationToken,
) {
    let Some(client) = http_client(&r) else {
        return;
    };
    let client = Arc::new(client);
    let kind = Arc::new(r.kind.clone());
    let refresh_alerts = matches!(r.kind, Kind::Alertmanager { .. });
    let mut refresh = tokio::time::interval(ALERTMANAGER_REFRESH);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut inflight: HashSet<String> = HashSet::new();
    let mut tasks: JoinSet<(OutboxRow, Result<Delivered, Failure>)> = JoinSet::new();
    let mut failing_since: Option<i64> = None;
    loop {
        let now = now_ms();
        let next_due = dispatch(&r, &store, &client, &kind, &mut inflight, &mut tasks, now).await;
        let wait =
            Duration::from_millis(next_due.map_or(60_000, |t| (t - now).clamp(0, 60_000)) as u64);
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
                    while let Some(done) = tasks.join_next().await {
                        if let Ok((row, result)) = done {
                            record(&r, &store, &metrics, row, result, &mut failing_since).await;
                        }
                    }
                }).await;
                return;
            }
            Some(done) = tasks.join_next() => {
                match done {
                    Ok((row, result)) => {
                        inflight.remove(&row.subject);
                        record(&r, &store, &metrics, row, result, &mut failing_since).await;
                    }
                    Err(e) => {
                        // A delivery task cannot panic short of a bug; its row
                        // stays pending and is tried again.
                        tracing::error!(receiver = %r.name, error = %e, "delivery task failed");
                        inflight.clear();
                    }
                }
            }
            _ = wake.changed() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = refresh.tick(), if refresh_alerts => {
                refresh_firing(&r, &client, &store, &inflight).await;
            }
        }
    }
}

/// The receiver's HTTP client (its timeout, our user agent, its CA).
fn http_client(r: &Receiver) -> Option<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(r.timeout)
        .user_agent(concat!("vedette-collector/", env!("CARGO_PKG_VERSION")))
        .danger_accept_invalid_certs(!r.tls_verify);
    for der in &r.ca_certs {
        match reqwest::Certificate::from_der(der) {
            Ok(c) => builder = builder.add_root_certificate(c),
            Err(e) => {
                tracing::error!(receiver = %r.name, error = %e, "a ca_file certificate is unusable")
            }
        }
    }
    match builder.build() {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(receiver = %r.name, error = %e, "cannot build an HTTP client; notifications for this receiver stay queued");
            None
        }
    }
}

/// Starts a delivery for each due head row whose subject has none in
/// flight, up to [`CONCURRENCY`]; returns when the next row not yet due is.
async fn dispatch(
    r: &Receiver,
    store: &Db,
    client: &Arc<reqwest::Client>,
    kind: &Arc<Kind>,
    inflight: &mut HashSet<String>,
    tasks: &mut JoinSet<(OutboxRow, Result<Delivered, Failure>)>,
    now: i64,
) -> Option<i64> {
    let mut next_due: Option<i64> = None;
    let name = r.name.clone();
    let limit = CONCURRENCY * 4 + inflight.len();
    let heads = match db(store, move |s| s.outbox_heads(&name, limit)).await {
        Ok(heads) => heads,
        Err(e) => {
            tracing::warn!(receiver = %r.name, error = %e, "reading the outbox failed; trying again in 1s");
            return Some(now + 1000);
        }
    };
    for row in heads {
        if inflight.contains(&row.subject) {
            continue;
        }
        if row.next_at_ms > now {
            next_due = Some(next_due.map_or(row.next_at_ms, |t| t.min(row.next_at_ms)));
            continue;
        }
        if tasks.len() >= CONCURRENCY {
            continue;
        }
        inflight.insert(row.subject.clone());
        let (client, kind) = (Arc::clone(client), Arc::clone(kind));
        tasks.spawn(async move {
            let result = send::deliver(
                &client,
                &kind,
                Outgoing {
                    event: row.event,
                    key: &row.key,
                    payload: &row.payload,
                    external_id: row.external_id.as_deref(),
                },
            )
            .await;
            (row, result)
        });
    }
    next_due
}

async fn record(
    r: &Receiver,
    store: &Db,
    metrics: &Metrics,
    row: OutboxRow,
    result: Result<Delivered, Failure>,
    failing_since: &mut Option<i64>,
) {
    let now = now_ms();
    let attempt = decide(r, &row, result, now, rand::random::<f64>());
    metrics
        .notifications
        .with_label_values(&[&r.name, outcome_label(&attempt)])
        .inc();
    match &attempt {
        Attempt::Delivered { .. } => {
            if failing_since.take().is_some() {
                tracing::info!(receiver = %r.name, "receiver reachable again");
            }
            tracing::debug!(receiver = %r.name, event = row.event.as_str(), subject = %row.subject, "delivered");
        }
        Attempt::Retry { error, next_at_ms } => {
            // One warning per outage, not one per row and attempt.
            if failing_since.is_none() {
                *failing_since = Some(now);
                tracing::warn!(receiver = %r.name, error = %error, retry_in_ms = next_at_ms - now, "delivery failed; retrying with backoff");
            }
        }
        Attempt::Rejected(e) => {
            tracing::warn!(receiver = %r.name, event = row.event.as_str(), subject = %row.subject, error = %e, "receiver refused the notification; not retrying")
        }
        Attempt::Expired(e) => {
            tracing::warn!(receiver = %r.name, event = row.event.as_str(), subject = %row.subject, error = %e, "notification dropped")
        }
    }
    let id = row.id;
    if let Err(e) = db(store, move |s| s.record_attempt(id, now, &attempt)).await {
        // The row stays as it was: it is sent again, with the same key.
        tracing::warn!(receiver = %r.name, error = %e, "recording a delivery failed");
    }
}

/// Re-sends every live incident Alertmanager was told about, in one request.
async fn refresh_firing(
    r: &Receiver,
    client: &reqwest::Client,
    store: &Db,
    inflight: &HashSet<String>,
) {
    let Kind::Alertmanager { url } = &r.kind else {
        return;
    };
    let name = r.name.clone();
    let firing = match db(store, move |s| s.firing(&name)).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(receiver = %r.name, error = %e, "reading firing alerts failed");
            return;
        }
    };
    // A subject in flight may be resolving right now: leave it out.
    let alerts: Vec<serde_json::Value> = firing
        .into_iter()
        .filter(|(subject, _)| !inflight.contains(subject))
        .collect::<HashMap<_, _>>()
        .into_values()
        .filter_map(|payload| serde_json::from_str::<send::Snapshot>(&payload).ok())
        .map(|s| send::alertmanager_alert(&s))
        .collect();
    if alerts.is_empty() {
        return;
    }
    let n = alerts.len();
    match client
        .post(send::alerts_url(url))
        .json(&alerts)
        .send()
        .await
    {
        Ok(resp) if resp.status().is_success() => {
            tracing::debug!(receiver = %r.name, alerts = n, "re-sent firing alerts")
        }
        Ok(resp) => {
            tracing::warn!(receiver = %r.name, status = %resp.status(), "re-sending firing alerts refused")
        }
        Err(e) => tracing::warn!(receiver = %r.name, error = %e, "re-sending firing alerts failed"),
    }
}

#[cfg(test)]
mod tests;
