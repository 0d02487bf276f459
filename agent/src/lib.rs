//! vedette-agent: samples host health and pushes it to the collector.
//!
//! # Layout
//! - [`config`]: YAML → validated [`config::Config`] (host, labels, collector, interval, listen).
//! - [`sample`]: host health through one long-lived `sysinfo` sampler.
//! - [`push`]: delivery — gzip batches, bounded queue, backoff with jitter, outage logging.
//! - [`exporter`]: the local `/metrics` and `/healthz`.
//!
//! Data flow: every `interval` the sampling loop takes a sample (on a blocking
//! thread), wraps it in a [`vedette_protocol::Batch`] with the next `seq`, and
//! hands it to the delivery task over a channel; delivery pushes oldest first.
//! The sampling loop never waits on the network, so a collector outage cannot
//! stop sampling.

pub mod checks;
pub mod config;
pub mod exporter;
pub mod push;
pub mod sample;
pub mod spool;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vedette_protocol::{AgentInfo, Batch, Sample, VERSION};

use crate::config::Config;
use crate::exporter::Exported;
use crate::push::{now_ms, Delivery, Stats};
use crate::sample::Sampler;

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

/// Samples once (waiting the minimum CPU measurement interval) and returns
/// the batch that would be pushed, for `vedette-agent once`.
pub fn once(config: &Config) -> Batch {
    let mut sampler = Sampler::new();
    std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
    let samples = sampler.sample(now_ms());
    batch(config, &new_boot_id(), 1, samples)
}

/// A fresh run identity.
pub fn new_boot_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Runs the agent until `shutdown` is cancelled, then flushes what it can.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let boot_id = new_boot_id();
    let stats = Arc::new(Stats::default());
    let exported = Arc::new(Exported {
        latest: Default::default(),
        stats: Arc::clone(&stats),
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
        config.push_url(),
        config.token.clone(),
        config.interval,
        stats,
    )?;
    let delivery = tokio::spawn(delivery.run(rx, shutdown.clone()));
    tracing::info!(
        host = %config.host,
        collector = %config.collector_url,
        interval = %humantime::format_duration(config.interval),
        listen = ?config.listen,
        boot_id = %boot_id,
        "agent started"
    );

    let mut sampler = Some(Sampler::new());
    // Spread agents that start together, and give CPU usage its minimum window.
    let jitter_ms = rand::rng().random_range(0..=config.interval.as_millis().min(1000) as u64);
    let first = tokio::time::Instant::now()
        + sysinfo::MINIMUM_CPU_UPDATE_INTERVAL.max(Duration::from_millis(jitter_ms));
    let mut ticker = tokio::time::interval_at(first, config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u64;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let Some(mut s) = sampler.take() else { break };
        let (s, samples) = tokio::task::spawn_blocking(move || {
            let samples = s.sample(now_ms());
            (s, samples)
        })
        .await
        .context("the sampling thread panicked")?;
        sampler = Some(s);
        seq += 1;
        *exported.latest.lock().unwrap_or_else(|p| p.into_inner()) = samples.clone();
        if tx
            .send(batch(&config, &boot_id, seq, samples))
            .await
            .is_err()
        {
            break;
        }
    }
    drop(tx);
    delivery.await.context("the delivery task panicked")?;
    for t in tasks {
        t.abort();
    }
    tracing::info!("agent stopped");
    Ok(())
}
