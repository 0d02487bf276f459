//! vedette-agent: samples host health and pushes it to the collector.
//! ARCHITECTURE.md at the repository root is the tour; this is the map.
//!
//! # Layers
//!
//! Bottom first; a module uses only modules listed before it (the
//! `architecture` test fails on an upward `crate::` path):
//!
//! 1. parts: `transport`, `spool`, `checks`, `sample`
//! 2. config: `config`
//! 3. delivery: `push`, `exporter`
//! 4. app: `app`
//!
//! # Modules
//! - `transport`: an HTTP error in an operator's words.
//! - `spool`: the crash-safe on-disk backlog of unacknowledged batches.
//! - [`checks`]: availability checks (http, tcp, dns, process, systemd,
//!   command), each owning its configuration, each on its own schedule.
//! - `sample`: host health, one file per source (cpu, memory, filesystems,
//!   disks, network, pressure, kernel), each under its own deadline, read
//!   from `/proc`, `/sys`, the agent's cgroup and `statvfs`; owns
//!   `host_metrics:` (`sample::settings`).
//! - [`config`]: YAML → validated [`config::Config`] (host, labels,
//!   collector, interval, listen), delegating `checks:` and `host_metrics:`.
//! - `push`: delivery — gzip batches, backoff with jitter, outage logging.
//! - `exporter`: the local `/metrics` and `/healthz`.
//! - [`app`]: the sampling loop and the delivery task, reload, drain.
//!
//! Data flow: every `interval` the sampling loop takes a sample (each source
//! on a blocking thread under its deadline), adds the check results that
//! arrived since the last batch, wraps them in a [`vedette_protocol::Batch`]
//! with the next `seq`, and hands it to the delivery task over a channel;
//! delivery pushes it, or spools it behind older ones. A check whose status
//! changes does not wait for the interval: its result (and whatever else
//! waits) goes out at once in a batch without a host sample, at most once a
//! second.
//! The sampling loop never waits on the network, so a collector outage cannot
//! stop sampling.

pub mod app;
pub mod checks;
pub mod config;
mod exporter;
mod push;
mod sample;
mod spool;
mod transport;
