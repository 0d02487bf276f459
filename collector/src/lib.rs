//! vedette-collector: receives agent pushes, evaluates rules, and opens and
//! resolves incidents on its own.
//!
//! # Layout
//! - [`config`]: YAML → validated [`config::Config`] (listener, store, agent tokens, rules).
//! - [`ingest`]: `POST /api/v1/push` — token, limits, decode, validate, then the engine.
//! - [`engine`]: the single writer thread: applies batches to [`state`], evaluates
//!   [`rules`], drives [`incidents`], persists through [`store`]; ticks every second.
//! - [`state`]: latest value per series and each host's liveness.
//! - [`rules`]: pure threshold / heartbeat / check evaluation.
//! - [`incidents`]: the pure ITIL incident lifecycle and priority.
//! - [`store`]: SQLite (the only SQL), versioned migrations.
//! - [`metrics`]: `/metrics` — own counters plus hosts' latest samples at scrape time.
//! - [`api`]: the router: push, incidents, metrics, health.
//! - [`client`]: the `incidents` subcommand, a client of the REST API.
//! - [`notify`]: receivers, routing, and the outbox delivery workers.
//! - [`tokens`]: `token new`: fresh agent tokens and the config edit that admits them.
//!
//! Data flow: agent → ingest → engine → (state, rules → incidents → store) →
//! push acknowledged; api reads the store; Prometheus scrapes metrics.

pub mod api;
pub mod availability;
pub mod client;
pub mod config;
pub mod engine;
pub mod incidents;
pub mod ingest;
pub mod kpi;
pub mod metrics;
pub mod notify;
pub mod rules;
pub mod state;
pub mod store;
pub mod texts;
pub mod tokens;
pub mod windows;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vedette_daemon::Notifier;
use vedette_protocol::Limits;

use crate::api::AppState;
use crate::config::Config;
use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::state::State;
use crate::store::Store;

/// How long in-flight requests get to finish after shutdown is requested.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything `run` needs that is built before the listener serves.
pub struct Collector {
    state: AppState,
    engine_thread: std::thread::JoinHandle<()>,
    /// systemd: READY=1 once serving, watchdog pings from the engine's tick.
    notifier: Arc<Notifier>,
    /// One notification delivery task per receiver.
    deliveries: tokio::task::JoinSet<()>,
    /// Stops the delivery tasks (after the engine's last transition).
    notify_stop: CancellationToken,
}

impl Collector {
    /// Opens the store, restores state and starts the engine thread.
    pub async fn start(config: Config) -> anyhow::Result<Collector> {
        let config = Arc::new(config);
        let db = config.database_path();
        let setup = engine::Setup::from_config(&config);
        let state = Arc::new(RwLock::new(State::default()));
        let metrics = Arc::new(Metrics::new(
            Arc::clone(&state),
            Arc::clone(&config.reporting),
        ));
        metrics.receivers(config.notify.receivers.iter().map(|r| r.name.as_str()));
        let notify_stop = CancellationToken::new();
        let (engine, reader, deliveries) = {
            let (state, metrics) = (Arc::clone(&state), Arc::clone(&metrics));
            let (router, stop) = (Arc::clone(&config.notify), notify_stop.clone());
            let runtime = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let mut writer = Store::open(&db)
                    .with_context(|| format!("opening the store {}", db.display()))?;
                let reader = Store::open(&db)
                    .with_context(|| format!("opening the store {}", db.display()))?;
                for (receiver, outcome, n) in reader.notification_counts()? {
                    metrics
                        .notifications
                        .with_label_values(&[&receiver, &outcome])
                        .inc_by(n);
                }
                // Workers first: transitions the engine makes while restoring
                // are enqueued and delivered like any other.
                let (wake, deliveries) = {
                    let _guard = runtime.enter();
                    notify::worker::spawn(&router, &db, Arc::clone(&metrics), stop)
                        .with_context(|| format!("opening the store {}", db.display()))?
                };
                writer.set_router(router, wake)?;
                let engine = Engine::new(setup, writer, state, metrics, engine::now_ms())
                    .context("restoring state from the store")?;
                Ok((engine, reader, deliveries))
            })
            .await??
        };
        let notifier = Arc::new(Notifier::from_env());
        let pinger = Arc::clone(&notifier);
        let ping = pinger.watchdog_interval().is_some();
        let (handle, engine_thread) = engine::spawn(
            engine,
            Box::new(move || {
                if ping {
                    pinger.watchdog();
                }
            }),
        );
        Ok(Collector {
            notifier,
            state: AppState {
                config,
                limits: Limits::default(),
                engine: handle,
                reader: Arc::new(Mutex::new(reader)),
                metrics,
            },
            engine_thread,
            deliveries,
            notify_stop,
        })
    }

    /// The router's shared state (for tests that drive the router directly).
    pub fn app_state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves `listener` until `shutdown` is cancelled, drains requests for at
    /// most [`DRAIN_TIMEOUT`], then stops the engine, which persists what it holds.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let Collector {
            state,
            engine_thread,
            notifier,
            deliveries,
            notify_stop,
        } = self;
        let addr = listener.local_addr()?;
        tracing::info!(
            listen = %addr,
            store = %state.config.database_path().display(),
            rules = state.config.rules.len(),
            agent_tokens = state.config.agents.len(),
            "collector ready"
        );
        notifier.ready();
        let stopping = {
            let (notifier, shutdown) = (Arc::clone(&notifier), shutdown.clone());
            tokio::spawn(async move {
                shutdown.cancelled().await;
                notifier.stopping();
            })
        };
        let app = api::router(state);
        let stop = shutdown.clone();
        let server = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await });
        tokio::select! {
            r = server => r.context("serving http")?,
            _ = async { shutdown.cancelled().await; tokio::time::sleep(DRAIN_TIMEOUT).await } => {
                tracing::warn!("requests still running after the drain timeout; stopping anyway");
            }
        }
        // Every engine handle lived in the router, now dropped: the thread drains and exits.
        tokio::task::spawn_blocking(move || engine_thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the engine thread panicked"))?;
        // Deliveries in flight get a moment to finish; what is still pending
        // stays in the outbox for the next start.
        notify_stop.cancel();
        deliveries.join_all().await;
        stopping.abort();
        tracing::info!("collector stopped");
        Ok(())
    }
}

/// Binds `config.listen` and runs the collector until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listen = config.listen;
    let collector = Collector::start(config).await?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    collector.serve(listener, shutdown).await
}
