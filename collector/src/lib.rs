//! vedette-collector: receives agent pushes, evaluates rules, and opens and
//! resolves incidents on its own. ARCHITECTURE.md at the repository root is
//! the tour; this is the map.
//!
//! # Layers
//!
//! Modules form layers, bottom first. A module uses only modules listed
//! before it (earlier ones of its own layer included), never one after it:
//! the domain knows nothing of storage or HTTP, the store nothing of routing
//! or metrics, the engine nothing of configuration files or the API. The
//! `architecture` test reads this list and fails on an upward `crate::` path.
//!
//! 1. base: `tls`, `session`
//! 2. domain: `incidents`, `rules`, `windows`, `availability`, `texts`, `outbox`, `views`
//! 3. state: `state`, `kpi`
//! 4. store: `store`
//! 5. effects: `metrics`, `notify`
//! 6. engine: `engine`
//! 7. config: `config`, `tokens`
//! 8. edge: `http`, `client`, `api`, `console`
//! 9. app: `app`
//!
//! # Modules
//! - [`tls`]: certificates and keys from PEM files, the listener's rustls
//!   configuration (reloadable), client certificate names, `tls init`.
//! - `session`: console sessions: the signed cookie, its key in the data
//!   directory, CSRF tokens.
//! - [`incidents`]: the ITIL incident lifecycle, priority, fingerprints,
//!   problems and the domain events a transaction records (pure).
//! - `rules`: threshold, check and heartbeat rules and their evaluation (pure).
//! - `windows`: planned work: maintenance windows and changes, their scopes (pure).
//! - [`availability`]: up/down/unknown timelines and how they are tallied (pure).
//! - `texts`: incident summary and description templates (pure).
//! - `outbox`: the outbox's records: what a receiver is told, rows, attempts (pure).
//! - `views`: the JSON shapes of domain records for the API and receivers (pure).
//! - [`state`]: the latest value per series and each host's liveness, bounded
//!   by `limits`, snapshotted (hosts behind `Arc`) for readers.
//! - `kpi`: availability and error budgets of hosts and services, from state.
//! - [`store`]: SQLite (the only SQL), versioned migrations; maps rows to
//!   domain types and records a transaction's domain events.
//! - [`metrics`]: `/metrics`: own counters and KPIs plus hosts' latest samples at scrape time.
//! - `notify`: routing (domain events → outbox rows, in the transaction),
//!   the requests each receiver kind makes, the delivery workers.
//! - [`engine`]: the single writer: applies batches, ticks, commits
//!   transitions (composition of everything above).
//! - [`config`]: YAML → validated [`config::Config`]; builds the engine's
//!   setup and the receivers.
//! - [`tokens`]: `token new`: fresh agent tokens and the config edit that admits them.
//! - `http`: the HTTP/1.1 server: header and request timeouts, graceful drain.
//! - [`client`]: the `incidents` subcommand, a client of the REST API.
//! - `api`: the router: push (`api::push`), incidents, problems,
//!   changes, metrics, health.
//! - `console`: the web console (server-rendered pages, login, actions).
//! - [`app`]: start, serve, reload on SIGHUP, drain on shutdown.
//!
//! A push travels api → engine (state, rules → incidents) → store + outbox
//! in one transaction → metrics, and is acknowledged after the commit.

mod api;
pub mod app;
pub mod availability;
pub mod client;
pub mod config;
mod console;
pub mod engine;
mod http;
pub mod incidents;
mod kpi;
pub mod metrics;
mod notify;
mod outbox;
mod rules;
mod session;
pub mod state;
pub mod store;
mod texts;
pub mod tls;
pub mod tokens;
mod views;
mod windows;
