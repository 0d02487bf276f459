//! What both daemons share as processes: logging to stderr (journald-aware),
//! signal handling, and the systemd notification protocol (`sd_notify`:
//! `READY=1`, `RELOADING=1`, `STOPPING=1`, `WATCHDOG=1`).
//!
//! Everything logged goes through [`visible`]: a field value (a host name
//! from Alertmanager, a label) cannot drive the reader's terminal.
//!
//! The notification protocol is a datagram per message on the unix socket
//! named by `$NOTIFY_SOCKET` (a path, or `@name` for the abstract
//! namespace), as `sd_notify(3)` documents. Without the variable (not under
//! systemd, or `Type=simple`) every call is a no-op.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod state_dir;
mod visible;

pub use state_dir::state_dir;
pub use visible::{is_hazard, visible, Visible};

/// Sends service state to systemd.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID`.
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET");
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        Notifier::new(
            socket.as_deref().and_then(|s| s.to_str()),
            usec.as_deref(),
            pid.as_deref(),
        )
    }

    /// From the values of those variables (for tests).
    pub fn new(
        socket: Option<&str>,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
    ) -> Notifier {
        let target = socket.and_then(|s| match connect(s) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(socket = s, error = %e, "cannot use NOTIFY_SOCKET; systemd will not hear from us");
                None
            }
        });
        let for_us =
            watchdog_pid.is_none_or(|p| p.trim().parse::<u32>().ok() == Some(std::process::id()));
        let watchdog = watchdog_usec
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|u| *u > 0 && for_us)
            .map(Duration::from_micros);
        Notifier { target, watchdog }
    }

    /// True when systemd listens.
    pub fn is_active(&self) -> bool {
        self.target.is_some()
    }

    /// How often to call [`Notifier::watchdog`]: half the watchdog timeout,
    /// as `sd_watchdog_enabled(3)` advises; `None` without a watchdog.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
            .map(|w| w / 2)
            .filter(|_| self.target.is_some())
    }

    fn send(&self, state: &str) {
        if let Some((sock, addr)) = &self.target {
            if let Err(e) = sock.send_to_addr(state.as_bytes(), addr) {
                tracing::debug!(error = %e, state, "sd_notify failed");
            }
        }
    }

    /// The service is up: listeners bound, state loaded.
    pub fn ready(&self) {
        self.send("READY=1");
    }

    /// A config reload starts (call [`Notifier::ready`] when it is done).
    pub fn reloading(&self) {
        let now = monotonic_usec();
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={now}"));
    }

    /// Shutdown has begun.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// The main loop is alive.
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    /// A one-line status for `systemctl status`.
    pub fn status(&self, text: &str) {
        self.send(&format!("STATUS={}", text.replace('\n', " ")));
    }
}

fn connect(socket: &str) -> io::Result<(UnixDatagram, SocketAddr)> {
    let addr = if let Some(name) = socket.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        SocketAddr::from_abstract_name(name.as_bytes())?
    } else if socket.starts_with('/') {
        SocketAddr::from_pathname(socket)?
    } else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "NOTIFY_SOCKET must be a path or @abstract",
        ));
    };
    Ok((UnixDatagram::unbound()?, addr))
}

fn monotonic_usec() -> u128 {
    // CLOCK_MONOTONIC is what systemd compares against; /proc/uptime is
    // CLOCK_BOOTTIME, which only differs across suspend, and needs no FFI.
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
        .map(|s| (s * 1e6) as u128)
        .unwrap_or(0)
}

/// Logs to stderr at `RUST_LOG`'s level (`level` or `target=level,…`,
/// default `info`); without our own timestamps when `$JOURNAL_STREAM` says
/// journald is listening (it adds its own).
pub fn init_tracing(program: &str) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let default = Targets::new().with_default(LevelFilter::INFO);
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => v.parse::<Targets>().unwrap_or_else(|e| {
            eprintln!("{program}: ignoring RUST_LOG={v:?} ({e}); logging at info");
            default
        }),
        _ => default,
    };
    use std::fmt::Write as _;
    use tracing_subscriber::field::MakeExt;
    // Field values are escaped (the fields' own text, not the colours the
    // formatter adds around them).
    let fields = tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let mut w = Visible(w);
        if field.name() == "message" {
            write!(w, "{value:?}")
        } else {
            write!(w, "{field}={value:?}")
        }
    })
    .delimited(" ");
    let fmt = tracing_subscriber::fmt::layer()
        .fmt_fields(fields)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        tracing_subscriber::registry()
            .with(fmt.without_time().with_filter(filter))
            .init();
    } else {
        tracing_subscriber::registry()
            .with(fmt.with_filter(filter))
            .init();
    }
}

/// Cancels `shutdown` on Ctrl-C or SIGTERM. On SIGHUP, asks `reload` for a
/// config reload; a daemon without reload (`None`) logs that it has none.
pub async fn signals(shutdown: CancellationToken, reload: Option<mpsc::Sender<()>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    let hup = async {
        match signal(SignalKind::hangup()) {
            Ok(mut s) => {
                while s.recv().await.is_some() {
                    match &reload {
                        Some(tx) => {
                            tracing::info!("SIGHUP received; reloading the config");
                            // A reload already waiting covers this one too.
                            let _ = tx.try_send(());
                        }
                        None => tracing::warn!(
                            "SIGHUP received: running on the embedded default config (no --config), nothing to reload"
                        ),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for SIGHUP"),
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received; shutting down"),
        _ = term => tracing::info!("SIGTERM received; shutting down"),
        _ = hup => {}
    }
    shutdown.cancel();
}

#[cfg(test)]
mod tests;
