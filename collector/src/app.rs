//! The running collector: start (store, engine thread, delivery workers),
//! serve (the listener, systemd readiness), reload on SIGHUP and drain on
//! shutdown. Composes the layers below; nothing imports it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vedette_daemon::Notifier;
use vedette_protocol::Limits;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::engine::{self, Engine};
use crate::metrics::Metrics;
use crate::state::State;
use crate::store::Store;
use crate::tls::Reloadable;
use crate::{http, notify};

/// How long in-flight requests get to finish after shutdown is requested.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything `run` needs that is built before the listener serves.
pub struct Collector {
    state: AppState,
    engine_thread: std::thread::JoinHandle<()>,
    /// systemd: READY=1 once serving, watchdog pings from the engine's tick.
    notifier: Arc<Notifier>,
    /// One notification delivery task per receiver.
    deliveries: Deliveries,
}

/// The delivery workers of the running receivers.
struct Deliveries {
    tasks: tokio::task::JoinSet<()>,
    /// Stops them (after the engine's last transition, or for a reload).
    stop: CancellationToken,
}

impl Deliveries {
    /// Deliveries in flight get a moment to finish; what is still pending
    /// stays in the outbox for the next workers.
    async fn stop(self) {
        self.stop.cancel();
        self.tasks.join_all().await;
    }
}

/// Where a reload reads the config from, and when.
pub struct Reload {
    /// The file given with `--config`.
    pub path: PathBuf,
    /// One message per SIGHUP.
    pub requests: tokio::sync::mpsc::Receiver<()>,
}

impl Collector {
    /// Opens the store, restores state and starts the engine thread.
    pub async fn start(config: Config) -> anyhow::Result<Collector> {
        let config = Arc::new(config);
        let db = config.database_path();
        let setup = config.engine_setup();
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
                let writer = Store::open(&db)
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
                let outbox = notify::Outbox::new(router, wake, || writer.host_labels())?;
                let engine = Engine::new(
                    setup,
                    writer,
                    Some(outbox),
                    state,
                    metrics,
                    vedette_protocol::clock::now_ms(),
                )
                .context("restoring state from the store")?;
                Ok((engine, reader, deliveries))
            })
            .await??
        };
        let sessions =
            crate::session::SessionKey::load_or_create(&config.data_dir).with_context(|| {
                format!("the console's session key in {}", config.data_dir.display())
            })?;
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
                config: Arc::new(RwLock::new(config)),
                limits: Limits::default(),
                engine: handle,
                reader: Arc::new(Mutex::new(reader)),
                metrics,
                sessions: Arc::new(sessions),
            },
            engine_thread,
            deliveries: Deliveries {
                tasks: deliveries,
                stop: notify_stop,
            },
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
        reload: Option<Reload>,
    ) -> anyhow::Result<()> {
        let Collector {
            state,
            engine_thread,
            notifier,
            deliveries,
        } = self;
        let addr = listener.local_addr()?;
        let config = state.config();
        for w in config.warnings(vedette_protocol::clock::now_ms() / 1000) {
            tracing::warn!("{w}");
        }
        let tls = config
            .tls
            .server()
            .map(|s| Reloadable::new(Arc::clone(&s.config)));
        tracing::info!(
            listen = %format!("{}://{addr}", config.tls.scheme()),
            console = %format!("{}://{addr}/", config.tls.scheme()),
            store = %config.database_path().display(),
            rules = config.rules.len(),
            agent_tokens = config.agents.len(),
            "collector ready"
        );
        let deliveries = Arc::new(tokio::sync::Mutex::new(Some(deliveries)));
        let reloader = reload.map(|reload| {
            tokio::spawn(reloads(
                reload,
                state.clone(),
                tls.clone(),
                Arc::clone(&deliveries),
                Arc::clone(&notifier),
                shutdown.clone(),
            ))
        });
        let summaries = {
            // The console's fleet summary, kept fresh off the request path
            // while someone looks at it.
            let (metrics, shutdown) = (Arc::clone(&state.metrics), shutdown.clone());
            tokio::spawn(async move {
                let mut every = tokio::time::interval(crate::metrics::SUMMARY_EVERY);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = every.tick() => {}
                    }
                    let metrics = Arc::clone(&metrics);
                    let now = vedette_protocol::clock::now_ms();
                    let _ = tokio::task::spawn_blocking(move || {
                        metrics.refresh_summary_if_watched(now)
                    })
                    .await;
                }
            })
        };
        notifier.ready();
        let stopping = {
            let (notifier, shutdown) = (Arc::clone(&notifier), shutdown.clone());
            tokio::spawn(async move {
                shutdown.cancelled().await;
                notifier.stopping();
            })
        };
        let app = api::router(state.clone()).merge(crate::console::router(state));
        let server = http::serve(listener, app, config.http, tls, shutdown.clone());
        tokio::select! {
            () = server => {}
            _ = async { shutdown.cancelled().await; tokio::time::sleep(DRAIN_TIMEOUT).await } => {
                tracing::warn!("requests still running after the drain timeout; stopping anyway");
            }
        }
        // The reloader holds an engine handle: it ends with `shutdown`.
        if let Some(r) = reloader {
            let _ = r.await;
        }
        // Every engine handle lived in the router, now dropped: the thread drains and exits.
        tokio::task::spawn_blocking(move || engine_thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the engine thread panicked"))?;
        if let Some(d) = deliveries.lock().await.take() {
            d.stop().await;
        }
        stopping.abort();
        summaries.abort();
        tracing::info!("collector stopped");
        Ok(())
    }
}

/// Binds `config.listen` and runs the collector until `shutdown` is
/// cancelled, reloading the config on each request of `reload`.
pub async fn run(
    config: Config,
    shutdown: CancellationToken,
    reload: Option<Reload>,
) -> anyhow::Result<()> {
    let listen = config.listen;
    let collector = Collector::start(config).await?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    collector.serve(listener, shutdown, reload).await
}

/// Serves reload requests until `shutdown`: RELOADING=1, the file loaded
/// and applied (or refused with its errors, the running config kept), READY=1.
async fn reloads(
    mut reload: Reload,
    state: AppState,
    tls: Option<Reloadable>,
    deliveries: Arc<tokio::sync::Mutex<Option<Deliveries>>>,
    notifier: Arc<Notifier>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = reload.requests.recv() => if r.is_none() { return },
        }
        notifier.reloading();
        let path = reload.path.clone();
        match tokio::task::spawn_blocking(move || Config::load(&path)).await {
            Ok(Ok(new)) => match apply(&state, new, tls.as_ref(), &deliveries).await {
                Ok(said) => tracing::info!("config reloaded from {}{said}", reload.path.display()),
                Err(e) => tracing::error!(
                    "config reload failed: {e:#}; restart the collector to apply {}",
                    reload.path.display()
                ),
            },
            Ok(Err(e)) => {
                tracing::error!("config reload refused; the running config is kept:\n{e}")
            }
            Err(e) => tracing::error!("config reload failed: {e}"),
        }
        notifier.ready();
    }
}

/// Applies `new`: agent and API tokens, rules, templates, incident policy,
/// maintenance, services and receivers. `listen`, `data_dir` and `http` need a
/// restart (the returned text says so when they changed).
async fn apply(
    state: &AppState,
    mut new: Config,
    tls: Option<&Reloadable>,
    deliveries: &tokio::sync::Mutex<Option<Deliveries>>,
) -> anyhow::Result<String> {
    let old = state.config();
    let mut said = String::new();
    if new.listen != old.listen {
        said += &format!("; listen stays {} until a restart", old.listen);
        new.listen = old.listen;
    }
    if new.data_dir != old.data_dir {
        said += &format!(
            "; data_dir stays {} until a restart",
            old.data_dir.display()
        );
        new.data_dir = old.data_dir.clone();
    }
    match (tls, new.tls.server()) {
        (Some(listener), Some(server)) => {
            listener.replace(Arc::clone(&server.config));
            let days = server.days_left(vedette_protocol::clock::now_ms() / 1000);
            said += &format!(
                "; TLS certificate re-read ({})",
                days.map_or("expiry unknown".into(), |d| format!("{d} days left"))
            );
        }
        (None, None) => {}
        (Some(_), None) | (None, Some(_)) => {
            said += &format!("; the listener stays {} until a restart", old.tls.scheme());
            new.tls = old.tls.clone();
        }
    }
    for w in new.warnings(vedette_protocol::clock::now_ms() / 1000) {
        tracing::warn!("{w}");
    }
    if new.http != old.http {
        said += "; http timeouts stay as they were until a restart";
        new.http = old.http;
    }
    let new = Arc::new(new);
    // Receivers: the old workers finish what they hold in flight, then the
    // new ones start from the outbox (rows of a kept receiver carry over).
    let mut slot = deliveries.lock().await;
    if let Some(d) = slot.take() {
        d.stop().await;
    }
    let stop = CancellationToken::new();
    let (wake, tasks) = notify::worker::spawn(
        &new.notify,
        &new.database_path(),
        Arc::clone(&state.metrics),
        stop.clone(),
    )
    .context("starting the receivers")?;
    *slot = Some(Deliveries { tasks, stop });
    state
        .metrics
        .receivers(new.notify.receivers.iter().map(|r| r.name.as_str()));
    let reloaded = state
        .engine
        .reload(
            new.engine_setup(),
            Arc::clone(&new.notify),
            Arc::clone(&wake),
        )
        .await??;
    // Rows enqueued while the workers started were signalled to the old ones.
    wake();
    state.metrics.set_reporting(Arc::clone(&new.reporting));
    *state.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&new);
    Ok(format!(
        " ({} rules, {} agent tokens, {} API tokens, {} receivers{}){said}",
        reloaded.rules,
        new.agents.len(),
        new.api_tokens.len(),
        new.notify.receivers.len(),
        match reloaded.orphans_resolved {
            0 => String::new(),
            n => format!(", {n} incidents of removed rules resolved"),
        }
    ))
}
