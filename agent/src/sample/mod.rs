//! Host health sampling. Each *source* (cpu, memory, filesystems, network,
//! pressure, file descriptors, processes, uptime) runs on a blocking thread
//! under its own deadline ([`settings::HostMetrics::timeout`]): a hung
//! NFS mount or a slow `/proc` read costs that source's samples for the
//! cycle, counted in `vedette_agent_source_timeouts_total{source}`, and never
//! the rest of the sample. A source still stuck from an earlier cycle is
//! skipped (and counted) until its thread returns.
//!
//! Every number comes straight from the kernel's files (`/proc`, `/sys`,
//! the agent's cgroup) read into one reused buffer per source, and
//! `statvfs`, so each means what node_exporter's namesake means; the README
//! defines every sample. There is no process scan: processes are counted
//! from `/proc`'s directory names. Inside a container whose cgroup has a
//! memory or CPU limit, memory and CPU are reported against the limit
//! (`cgroup: auto`, see [`cgroup`]).
//!
//! Metric names follow DESIGN.md (base units, `_ratio`, `_bytes`, `_total`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use vedette_protocol::Sample;

mod cgroup;
mod cpu;
mod disks;
mod filesystems;
mod kernel;
mod memory;
mod network;
mod pressure;
pub(crate) mod settings;
mod systemd;

use self::cgroup::Cgroup;
use self::cpu::Cpu;
use self::disks::Disks;
use self::filesystems::Filesystems;
use self::kernel::Kernel;
use self::memory::Memory;
use self::network::Network;
use self::pressure::Pressure;
use self::settings::{CgroupMode, HostMetrics};

/// Collects one source's samples.
pub(crate) struct Out {
    ts_ms: i64,
    samples: Vec<Sample>,
}

impl Out {
    fn new(ts_ms: i64) -> Out {
        Out {
            ts_ms,
            samples: Vec::new(),
        }
    }

    /// Adds a sample. Non-finite values are dropped (the protocol refuses
    /// them), and so is a sample whose label value is longer than the
    /// protocol allows (a user's FUSE mount at a deep path): the collector
    /// would refuse the whole batch for it.
    pub(crate) fn push(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let max = vedette_protocol::Limits::default().max_label_value_len;
        if labels.iter().any(|(_, v)| v.len() > max) {
            tracing::debug!(
                sample = name,
                "a label value is too long for the protocol; sample left out"
            );
            return;
        }
        if value.is_finite() {
            self.samples.push(Sample {
                name: name.to_string(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
                ts_ms: self.ts_ms,
                value,
            });
        }
    }
}

/// One independent part of the host sample.
pub(crate) trait Source: Send {
    fn name(&self) -> &'static str;
    fn sample(&mut self, out: &mut Out);
}

/// Whether the agent runs inside a container.
pub(crate) fn in_container() -> bool {
    Path::new("/.dockerenv").exists()
        || Path::new("/run/.containerenv").exists()
        || std::env::var_os("container").is_some()
}

/// The shortest wait between two CPU samples for a usage ratio to mean
/// something (the first sample's usage is measured from the baseline the
/// sampler takes when it is made).
pub(crate) const MINIMUM_CPU_INTERVAL: Duration = Duration::from_millis(200);

/// Reads small kernel files (`/proc`, `/sys`) into one buffer kept for the
/// source's lifetime, so a steady agent allocates nothing to read them.
#[derive(Default)]
pub(crate) struct Reader {
    buf: String,
}

impl Reader {
    /// The file's text, or None when it is missing or unreadable.
    pub(crate) fn read(&mut self, path: impl AsRef<Path>) -> Option<&str> {
        use std::io::Read;
        self.buf.clear();
        let mut f = std::fs::File::open(path).ok()?;
        f.read_to_string(&mut self.buf).ok()?;
        Some(&self.buf)
    }
}

enum Slot {
    Idle(Box<dyn Source>),
    /// Still running from an earlier cycle (past its deadline).
    Busy(&'static str, JoinHandle<(Box<dyn Source>, Out)>),
    /// Panicked; not run again.
    Gone,
}

/// Deadline misses by source name, for `/metrics`. Made once per agent
/// and handed to every sampler, so a reload does not reset the counters.
pub(crate) type Timeouts = Arc<Mutex<BTreeMap<&'static str, u64>>>;

/// Samples the host. Keep one for the agent's lifetime (CPU usage is
/// measured between samples).
pub(crate) struct Sampler {
    slots: Vec<Slot>,
    timeout: Duration,
    timeouts: Timeouts,
}

impl Sampler {
    /// Takes the CPU baseline the first sample's usage is measured from.
    /// Deadline misses are counted in `timeouts`.
    pub(crate) fn new(config: &HostMetrics, timeouts: Timeouts) -> Sampler {
        let cgroup = match config.cgroup {
            CgroupMode::On => Some(Cgroup::of_self()),
            CgroupMode::Off => None,
            CgroupMode::Auto => in_container().then(Cgroup::of_self),
        };
        let mut sources: Vec<Box<dyn Source>> = vec![
            Box::new(Cpu::new(cgroup.clone())),
            Box::new(Memory::new(cgroup)),
            Box::new(Filesystems::new(config, Arc::clone(&timeouts))),
            Box::new(Disks::new(config.disks.clone())),
            Box::new(Network::new(config.interfaces.clone())),
            Box::new(Pressure::default()),
            Box::new(Kernel::default()),
        ];
        if systemd::booted() {
            sources.push(Box::new(systemd::Systemd::new(
                "systemctl",
                config.systemd_units.clone(),
                config.systemd_every,
            )));
        }
        {
            let mut t = timeouts.lock().unwrap_or_else(|p| p.into_inner());
            for s in &sources {
                t.entry(s.name()).or_insert(0);
            }
        }
        Sampler {
            slots: sources.into_iter().map(Slot::Idle).collect(),
            timeout: config.timeout,
            timeouts,
        }
    }

    fn timed_out(&self, name: &'static str, first: bool) {
        *self
            .timeouts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name)
            .or_insert(0) += 1;
        if first {
            tracing::warn!(source = name, timeout = ?self.timeout, "host metrics source missed its deadline; skipping it until it returns");
        }
    }

    /// One sample of every source that answers within its deadline.
    pub(crate) async fn sample(&mut self, ts_ms: i64) -> Vec<Sample> {
        let mut samples = Vec::with_capacity(64);
        for i in 0..self.slots.len() {
            let slot = std::mem::replace(&mut self.slots[i], Slot::Gone);
            let source = match slot {
                Slot::Idle(s) => s,
                Slot::Busy(name, handle) if handle.is_finished() => match handle.await {
                    Ok((s, _stale)) => {
                        tracing::info!(source = name, "host metrics source answered again");
                        s
                    }
                    Err(_) => continue,
                },
                Slot::Busy(name, handle) => {
                    self.timed_out(name, false);
                    self.slots[i] = Slot::Busy(name, handle);
                    continue;
                }
                Slot::Gone => continue,
            };
            let name = source.name();
            let mut handle = tokio::task::spawn_blocking(move || {
                let mut source = source;
                let mut out = Out::new(ts_ms);
                source.sample(&mut out);
                (source, out)
            });
            match tokio::time::timeout(self.timeout, &mut handle).await {
                Ok(Ok((source, out))) => {
                    samples.extend(out.samples);
                    self.slots[i] = Slot::Idle(source);
                }
                Ok(Err(e)) => {
                    tracing::error!(source = name, error = %e, "host metrics source failed; disabled until restart");
                }
                Err(_) => {
                    self.timed_out(name, true);
                    self.slots[i] = Slot::Busy(name, handle);
                }
            }
        }
        samples
    }
}

#[cfg(test)]
mod tests;
