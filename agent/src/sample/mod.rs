//! Host health sampling. Each *source* (cpu, memory, filesystems, network,
//! pressure, file descriptors, processes, uptime) runs on a blocking thread
//! under its own deadline ([`settings::HostMetrics::timeout`]): a hung
//! NFS mount or a slow `/proc` read costs that source's samples for the
//! cycle, counted in `vedette_agent_source_timeouts_total{source}`, and never
//! the rest of the sample. A source still stuck from an earlier cycle is
//! skipped (and counted) until its thread returns.
//!
//! `sysinfo` is used as its docs advise: one long-lived `System`, `Disks` and
//! `Networks`, CPU usage without frequency, and no process scan (processes
//! are counted from `/proc` directory names). Linux extras come from `/proc`.
//! Inside a container with cgroup limits, memory and CPU are reported against
//! the limits (`cgroup: auto`).
//!
//! Metric names follow DESIGN.md (base units, `_ratio`, `_bytes`, `_total`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sysinfo::{
    CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, Networks, RefreshKind, System,
};
use tokio::task::JoinHandle;
use vedette_protocol::Sample;

mod cpu;
mod filesystems;
mod kernel;
mod memory;
mod network;
mod pressure;
pub(crate) mod settings;

use self::cpu::Cpu;
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

    /// Adds a sample; non-finite values are dropped (the protocol refuses them).
    pub(crate) fn push(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
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

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
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
            CgroupMode::On => true,
            CgroupMode::Off => false,
            CgroupMode::Auto => in_container(),
        };
        let sources: Vec<Box<dyn Source>> = vec![
            Box::new(Cpu {
                sys: System::new_with_specifics(
                    RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing().with_cpu_usage()),
                ),
                cgroup,
                last: None,
            }),
            Box::new(Memory {
                sys: System::new_with_specifics(
                    RefreshKind::nothing().with_memory(MemoryRefreshKind::everything()),
                ),
                cgroup,
            }),
            Box::new(Filesystems {
                disks: Disks::new_with_refreshed_list_specifics(
                    DiskRefreshKind::nothing().with_storage(),
                ),
                mountpoints: config.mountpoints.clone(),
                fstypes: config.fstypes.clone(),
                devices: config.devices.clone(),
            }),
            Box::new(Network {
                networks: Networks::new_with_refreshed_list(),
                interfaces: config.interfaces.clone(),
            }),
            Box::new(Pressure),
            Box::new(Kernel),
        ];
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
