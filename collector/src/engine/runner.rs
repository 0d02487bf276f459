//! The engine's thread and its async handle: a bounded command queue (a
//! full queue is busy, so ingest answers 429 instead of buffering without
//! bound), a tick every second, and a flush of host records on the way out.

use super::*;

pub(super) enum Command {
    Push {
        batch: Box<Batch>,
        token: Option<u64>,
        reply: oneshot::Sender<Result<PushAck, ApplyError>>,
    },
    Acknowledge {
        id: i64,
        actor: String,
        note: Option<String>,
        reply: oneshot::Sender<Result<Incident, ActionError>>,
    },
    Resolve {
        id: i64,
        actor: String,
        note: Option<String>,
        reply: oneshot::Sender<Result<Incident, ActionError>>,
    },
    Note {
        id: i64,
        actor: String,
        note: String,
        reply: oneshot::Sender<Result<Incident, ActionError>>,
    },
    ResolveProblem {
        id: i64,
        actor: String,
        note: Option<String>,
        reply: oneshot::Sender<Result<Problem, ActionError>>,
    },
    CreateChange {
        change: NewChange,
        actor: String,
        reply: oneshot::Sender<Result<Change, ActionError>>,
    },
    External {
        alerts: Vec<ExternalAlert>,
        reply: oneshot::Sender<Result<ExternalOutcome, ApplyError>>,
    },
    Reload {
        setup: Box<Setup>,
        router: Arc<Router>,
        wake: Wake,
        reply: oneshot::Sender<Result<Reloaded, StoreError>>,
    },
}

/// Why a command could not be handed to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The queue is full: slow down.
    #[error("the collector is busy; retry shortly")]
    Busy,
    /// The engine has stopped (shutting down).
    #[error("the collector is shutting down")]
    Stopped,
}

/// The async face of the engine thread. Cloneable; dropping every clone
/// stops the thread after it drains its queue.
#[derive(Clone)]
pub struct EngineHandle {
    pub(super) tx: SyncSender<Command>,
    pub(super) stopped: Arc<AtomicBool>,
}

/// How many commands may wait for the engine.
pub const QUEUE_CAPACITY: usize = 1024;

/// Runs `engine` on its own thread. The thread flushes hosts and exits once
/// every handle is dropped. `on_tick` runs after every tick (the systemd
/// watchdog ping: a wedged engine stops pinging).
pub fn spawn(
    mut engine: Engine,
    on_tick: Box<dyn Fn() + Send>,
) -> (EngineHandle, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::sync_channel::<Command>(QUEUE_CAPACITY);
    let stopped = Arc::new(AtomicBool::new(false));
    let stopped_flag = Arc::clone(&stopped);
    let thread = std::thread::Builder::new()
        .name("vedette-engine".into())
        .spawn(move || {
            let tick = Duration::from_secs(1);
            let mut next_tick = Instant::now() + tick;
            loop {
                let wait = next_tick.saturating_duration_since(Instant::now());
                match rx.recv_timeout(wait) {
                    Ok(cmd) => engine.handle(cmd),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                if Instant::now() >= next_tick {
                    engine.tick(now_ms());
                    on_tick();
                    next_tick = Instant::now() + tick;
                }
            }
            if let Err(e) = engine.flush_hosts(now_ms()) {
                tracing::warn!(error = %e, "persisting hosts at shutdown failed");
            }
            stopped_flag.store(true, Ordering::Release);
        })
        .expect("spawning the engine thread");
    (EngineHandle { tx, stopped }, thread)
}

impl EngineHandle {
    /// True once the engine thread has exited.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    fn submit<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<oneshot::Receiver<T>, SubmitError> {
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(make(reply)) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(SubmitError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(SubmitError::Stopped),
        }
    }

    /// Submits a command and waits for the engine's reply.
    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, SubmitError> {
        let rx = self.submit(make)?;
        rx.await.map_err(|_| SubmitError::Stopped)
    }

    /// Applies a validated batch pushed with agent token `token` (its
    /// [`crate::config::AgentToken::id`]); resolves once its transitions
    /// are persisted.
    pub async fn push(
        &self,
        batch: Batch,
        token: Option<u64>,
    ) -> Result<Result<PushAck, ApplyError>, SubmitError> {
        self.call(|reply| Command::Push {
            batch: Box::new(batch),
            token,
            reply,
        })
        .await
    }

    /// Acknowledges incident `id`.
    pub async fn acknowledge(
        &self,
        id: i64,
        actor: String,
        note: Option<String>,
    ) -> Result<Result<Incident, ActionError>, SubmitError> {
        self.call(|reply| Command::Acknowledge {
            id,
            actor,
            note,
            reply,
        })
        .await
    }

    /// Resolves incident `id` by hand.
    pub async fn resolve(
        &self,
        id: i64,
        actor: String,
        note: Option<String>,
    ) -> Result<Result<Incident, ActionError>, SubmitError> {
        self.call(|reply| Command::Resolve {
            id,
            actor,
            note,
            reply,
        })
        .await
    }

    /// Adds a note to incident `id`'s timeline.
    pub async fn note(
        &self,
        id: i64,
        actor: String,
        note: String,
    ) -> Result<Result<Incident, ActionError>, SubmitError> {
        self.call(|reply| Command::Note {
            id,
            actor,
            note,
            reply,
        })
        .await
    }

    /// Resolves problem `id`.
    pub async fn resolve_problem(
        &self,
        id: i64,
        actor: String,
        note: Option<String>,
    ) -> Result<Result<Problem, ActionError>, SubmitError> {
        self.call(|reply| Command::ResolveProblem {
            id,
            actor,
            note,
            reply,
        })
        .await
    }

    /// Records a planned change.
    pub async fn create_change(
        &self,
        change: NewChange,
        actor: String,
    ) -> Result<Result<Change, ActionError>, SubmitError> {
        self.call(|reply| Command::CreateChange {
            change,
            actor,
            reply,
        })
        .await
    }

    /// Applies alerts from Alertmanager's webhook.
    pub async fn external(
        &self,
        alerts: Vec<ExternalAlert>,
    ) -> Result<Result<ExternalOutcome, ApplyError>, SubmitError> {
        self.call(|reply| Command::External { alerts, reply }).await
    }

    /// Applies a reloaded configuration (see [`Engine::reload`]).
    pub async fn reload(
        &self,
        setup: Setup,
        router: Arc<Router>,
        wake: Wake,
    ) -> Result<Result<Reloaded, StoreError>, SubmitError> {
        self.call(|reply| Command::Reload {
            setup: Box::new(setup),
            router,
            wake,
            reply,
        })
        .await
    }
}

impl Engine {
    pub(super) fn handle(&mut self, cmd: Command) {
        let now = now_ms();
        match cmd {
            Command::Push {
                batch,
                token,
                reply,
            } => {
                let _ = reply.send(self.apply_as(&batch, token, now));
            }
            Command::Acknowledge {
                id,
                actor,
                note,
                reply,
            } => {
                let _ = reply.send(self.acknowledge(id, &actor, note, now));
            }
            Command::Resolve {
                id,
                actor,
                note,
                reply,
            } => {
                let _ = reply.send(self.resolve(id, &actor, note, now));
            }
            Command::Note {
                id,
                actor,
                note,
                reply,
            } => {
                let _ = reply.send(self.note(id, &actor, &note, now));
            }
            Command::ResolveProblem {
                id,
                actor,
                note,
                reply,
            } => {
                let _ = reply.send(self.resolve_problem(id, &actor, note, now));
            }
            Command::CreateChange {
                change,
                actor,
                reply,
            } => {
                let _ = reply.send(self.create_change(change, &actor, now));
            }
            Command::External { alerts, reply } => {
                let _ = reply.send(self.external(&alerts, now));
            }
            Command::Reload {
                setup,
                router,
                wake,
                reply,
            } => {
                let _ = reply.send(self.reload(*setup, router, wake, now));
            }
        }
    }
}
