//! The running agent: the sampling loop, the delivery task, the local
//! exporter, reload on SIGHUP and drain on shutdown; and `once` for
//! `vedette-agent once`. Composes the modules below; nothing imports it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vedette_protocol::{AgentInfo, Batch, Sample, VERSION};

use crate::config::Config;
use crate::exporter::Exported;
use crate::push::{Delivery, Msg, Route, Stats};
use crate::sample::Sampler;
use crate::spool::Backlog;
use crate::{checks, exporter, push, sample};
use vedette_protocol::clock::now_ms;

/// The agent's version, sent with every batch.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Wraps samples into a batch for this agent.
pub fn batch(config: &Config, boot_id: &str, seq: u64, samples: Vec<Sample>) -> Batch {
    Batch {
        version: VERSION,
        agent: AgentInfo {
            host: config.host.clone(),
            version: AGENT_VERSION.to_string(),
            labels: config.labels.clone(),
            boot_id: boot_id.to_string(),
            interval_s: config.interval.as_secs_f64(),
        },
        seq,
        sent_at_ms: now_ms(),
        samples,
        checks: Vec::new(),
    }
}

/// Samples once (waiting the minimum CPU measurement interval), runs every
/// check once, and returns the batch that would be pushed, for
/// `vedette-agent once`.
pub async fn once(config: &Config) -> Batch {
    let mut sampler = Sampler::new(&config.host_metrics, Default::default());
    let (checks, check_samples) = tokio::join!(
        checks::run_all_once(&config.checks),
        tokio::time::sleep(crate::sample::MINIMUM_CPU_INTERVAL)
    )
    .0;
    let mut samples = sampler.sample(now_ms()).await;
    samples.extend(check_samples);
    let mut b = batch(config, &new_boot_id(), 1, samples);
    b.checks = checks;
    b
}

/// A fresh run identity.
pub fn new_boot_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Where the running config came from, so `SIGHUP` can read it again.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    Embedded,
    File(PathBuf),
}

impl ConfigSource {
    pub fn load(&self) -> Result<Config, vedette_yaml::ConfigError> {
        match self {
            ConfigSource::Embedded => Config::embedded(),
            ConfigSource::File(p) => Config::load(p),
        }
    }
}

fn ticker(interval: Duration) -> tokio::time::Interval {
    // Spread agents that start together, and give CPU usage its minimum window.
    let jitter_ms = rand::rng().random_range(0..=interval.as_millis().min(1000) as u64);
    let first = tokio::time::Instant::now()
        + crate::sample::MINIMUM_CPU_INTERVAL.max(Duration::from_millis(jitter_ms));
    let mut t = tokio::time::interval_at(first, interval);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

/// Runs the agent until `shutdown` is cancelled, then spools what is
/// unsent. Each message on `reload` re-reads the config from `source`.
pub async fn run(
    mut config: Config,
    source: ConfigSource,
    shutdown: CancellationToken,
    mut reload: mpsc::Receiver<()>,
) -> anyhow::Result<()> {
    let boot_id = new_boot_id();
    let stats = Arc::new(Stats::default());
    let backlog = open_backlog(&config)?;
    let timeouts = sample::Timeouts::default();
    let mut sampler = Sampler::new(&config.host_metrics, Arc::clone(&timeouts));
    let mut scheduler = checks::Scheduler::new();
    let exported = Arc::new(Exported {
        latest: Default::default(),
        stats: Arc::clone(&stats),
        timeouts: Arc::clone(&timeouts),
        checks: Arc::clone(&scheduler.pending),
    });
    let mut tasks = Vec::new();
    if let Some(addr) = config.listen {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("binding the local metrics listener {addr} (set `listen: off` to disable it)")
        })?;
        tasks.push(tokio::spawn(exporter::serve(
            listener,
            Arc::clone(&exported),
            shutdown.clone(),
        )));
    }
    let (tx, rx) = mpsc::channel(16);
    let delivery = Delivery::new(
        Route::of(&config),
        config.interval,
        backlog,
        stats,
        shutdown.clone(),
    )?;
    let delivery = tokio::spawn(delivery.run(rx));
    scheduler.sync(&config.checks);
    let notifier = vedette_daemon::Notifier::from_env();
    let mut watchdog = notifier.watchdog_interval().map(tokio::time::interval);
    notifier.ready();
    log_started(&config, &boot_id);

    let mut ticks = ticker(config.interval);
    let mut seq = 0u64;
    // A check whose status changed is pushed at once, at most once a second.
    let mut urgent = false;
    let mut next_urgent = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = scheduler.changed.notified(), if !urgent => {
                urgent = true;
                continue;
            }
            _ = tokio::time::sleep_until(next_urgent), if urgent => {
                urgent = false;
                next_urgent = tokio::time::Instant::now() + URGENT_SPACING;
                if let Some(b) = check_batch(&scheduler, &config, &boot_id, seq + 1) {
                    seq += 1;
                    if tx.send(Msg::Batch(b)).await.is_err() {
                        break;
                    }
                }
                continue;
            }
            _ = async { match watchdog.as_mut() { Some(w) => { w.tick().await; } None => std::future::pending().await } } => {
                notifier.watchdog();
                continue;
            }
            Some(()) = reload.recv() => {
                notifier.reloading();
                match source.load() {
                    Err(e) => tracing::error!("config reload failed; keeping the running config:\n{e}"),
                    Ok(new) => {
                        config = reloaded(config, new, &mut sampler, &timeouts, &mut ticks, &tx, &mut scheduler).await;
                    }
                }
                notifier.ready();
                continue;
            }
            _ = ticks.tick() => {}
        }
        seq += 1;
        // This batch carries every result so far, the changed ones too.
        urgent = false;
        let b = next_batch(&mut sampler, &scheduler, &exported, &config, &boot_id, seq).await;
        if tx.send(Msg::Batch(b)).await.is_err() {
            break;
        }
    }
    notifier.stopping();
    scheduler.stop();
    drop(tx);
    delivery.await.context("the delivery task panicked")?;
    for t in tasks {
        t.abort();
    }
    tracing::info!("agent stopped");
    Ok(())
}

/// This interval's batch: a host sample and the check results (and their
/// samples) that arrived since the last one; the sample is also what the
/// local `/metrics` shows.
async fn next_batch(
    sampler: &mut Sampler,
    scheduler: &checks::Scheduler,
    exported: &Exported,
    config: &Config,
    boot_id: &str,
    seq: u64,
) -> Batch {
    let mut samples = sampler.sample(now_ms()).await;
    let (results, check_samples) = scheduler
        .pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    samples.extend(check_samples);
    *exported.latest.lock().unwrap_or_else(|p| p.into_inner()) = samples.clone();
    let mut b = batch(config, boot_id, seq, samples);
    b.checks = results;
    b
}

/// The shortest time between two pushes made for a check's status change,
/// so a flapping check costs at most one extra push a second.
const URGENT_SPACING: Duration = Duration::from_secs(1);

/// A batch of the check results (and their samples) waiting now, without
/// a host sample, for a status change that should not wait for the next
/// interval; None when the regular batch took them already.
fn check_batch(
    scheduler: &checks::Scheduler,
    config: &Config,
    boot_id: &str,
    seq: u64,
) -> Option<Batch> {
    let (results, samples) = {
        let mut pending = scheduler.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.results.is_empty() {
            return None;
        }
        pending.take()
    };
    let mut b = batch(config, boot_id, seq, samples);
    b.checks = results;
    Some(b)
}

/// The spool, or a memory backlog with `spool: {dir: off}`.
fn open_backlog(config: &Config) -> anyhow::Result<Backlog> {
    Ok(match &config.spool {
        Some(s) => {
            let (b, recovery) = Backlog::open(&s.dir, s.max_bytes)
                    .with_context(|| format!("opening the spool {} (set `spool: {{dir: off}}` to keep unsent batches in memory only)", s.dir.display()))?;
            if recovery.torn_bytes > 0 || recovery.damaged_segments > 0 {
                tracing::warn!(
                    dir = %s.dir.display(),
                    torn_bytes = recovery.torn_bytes,
                    damaged_segments = recovery.damaged_segments,
                    "spool recovered from an interrupted write"
                );
            }
            b
        }
        None => Backlog::memory(push::MEMORY_BACKLOG_BYTES),
    })
}

/// Applies a reloaded configuration to the running loop and returns it
/// (`listen` and `spool` keep their values until a restart).
async fn reloaded(
    config: Config,
    new: Config,
    sampler: &mut Sampler,
    timeouts: &sample::Timeouts,
    ticks: &mut tokio::time::Interval,
    tx: &mpsc::Sender<Msg>,
    scheduler: &mut checks::Scheduler,
) -> Config {
    if new.listen != config.listen || new.spool != config.spool {
        tracing::warn!("`listen` and `spool` changes take effect at the next restart");
    }
    if new.host_metrics != config.host_metrics {
        *sampler = Sampler::new(&new.host_metrics, Arc::clone(timeouts));
    }
    if new.interval != config.interval {
        *ticks = ticker(new.interval);
    }
    if Route::of(&new) != Route::of(&config) {
        warn_clear_text(&new);
        let _ = tx.send(Msg::Route(Route::of(&new))).await;
    }
    scheduler.sync(&new.checks);
    tracing::info!(checks = ?scheduler.names(), "config reloaded");
    Config {
        listen: config.listen,
        spool: config.spool,
        ..new
    }
}

/// What the agent runs with, once, at start.
fn log_started(config: &Config, boot_id: &str) {
    tracing::info!(
        host = %config.host,
        collectors = ?config.collectors.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
        interval = %humantime::format_duration(config.interval),
        listen = ?config.listen,
        spool = ?config.spool.as_ref().map(|s| &s.dir),
        checks = config.checks.len(),
        boot_id = %boot_id,
        "agent started"
    );
    warn_clear_text(config);
}

/// Says (once per start or reload) which collectors get the token in clear.
fn warn_clear_text(config: &Config) {
    for u in config.clear_text_collectors() {
        tracing::warn!(
            collector = %u,
            "pushing over plain http:// to another host: the agent token and every batch \
             cross the network in clear; use https:// (see `vedette-collector tls init`)"
        );
    }
}
