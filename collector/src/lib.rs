//! vedette-collector: receives agent pushes, evaluates rules, and opens and
//! resolves incidents on its own.
//!
//! # Layout
//! - [`config`]: YAML → validated [`config::Config`] (listener, store, agent tokens, rules).
//! - [`ingest`]: `POST /api/v1/push` — token, limits, decode, validate, then the engine.
//! - [`engine`]: the single writer thread: applies batches to [`state`], evaluates
//!   [`rules`], drives [`incidents`], persists through [`store`]; ticks every second.
//!   Each subject's transition is its own unit of work: one the store refuses is
//!   rolled back for that subject alone and retried; the rest go on.
//! - [`state`]: latest value per series and each host's liveness, bounded by
//!   `limits` and snapshotted (hosts behind `Arc`) for readers.
//! - [`rules`]: pure threshold / heartbeat / check evaluation.
//! - [`incidents`]: the pure ITIL incident lifecycle and priority.
//! - [`store`]: SQLite (the only SQL), versioned migrations.
//! - [`metrics`]: `/metrics` — own counters plus hosts' latest samples at scrape time.
//! - [`api`]: the router: push, incidents, metrics, health.
//! - [`http`]: the HTTP/1.1 server under it: header and request timeouts, graceful drain.
//! - [`client`]: the `incidents` subcommand, a client of the REST API.
//! - [`notify`]: receivers, routing, and the outbox delivery workers.
//! - [`tokens`]: `token new`: fresh agent tokens and the config edit that admits them.
//!
//! Data flow: agent → ingest → engine → (state, rules → incidents → store) →
//! push acknowledged; api reads the store; Prometheus scrapes metrics.

pub mod api;
pub mod app;
pub mod availability;
pub mod client;
pub mod config;
pub mod engine;
pub mod http;
pub mod incidents;
pub mod kpi;
pub mod metrics;
pub mod notify;
pub mod outbox;
pub mod rules;
pub mod state;
pub mod store;
pub mod texts;
pub mod tokens;
pub mod views;
pub mod windows;
