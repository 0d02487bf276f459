//! `vedette-agent`: parses the command line, sets up logging, turns signals
//! into a cancellation token and calls the library. Exit codes: 0 ok, 64 bad
//! usage or config, 1 runtime failure.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use vedette_agent::config::{Config, EMBEDDED};
use vedette_agent::ConfigSource;

const EX_USAGE: u8 = 64;

/// Samples this host's health (CPU, memory, swap, load, filesystems, network,
/// pressure, file descriptors, uptime), runs availability checks (http, tcp,
/// dns, process, systemd, any Nagios plugin) and pushes both to a vedette
/// collector.
///
/// With no --config it runs the embedded default: host metrics every 10 s,
/// pushed to http://127.0.0.1:9850, unsent batches spooled in ./vedette-spool,
/// local /metrics on 127.0.0.1:9851. Print it (every key, commented) with
/// `default-config`.
///
/// Signals: SIGHUP re-reads the config file (checks start and stop without a
/// restart; a broken file is refused and the running config kept); SIGTERM
/// leaves unsent batches in the spool and exits 0. Logs go to stderr; set
/// RUST_LOG (default info).
#[derive(Debug, Parser)]
#[command(name = "vedette-agent", version, about, long_about)]
struct Cli {
    /// Configuration file (YAML). Without it, the embedded default is used.
    #[arg(long, short, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a configuration file: exit 0, or print FILE:LINE:COL: message
    /// for every problem and exit 64.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Sample and run every check once; print the batch as JSON on stdout
    /// (nothing is pushed).
    Once,
    /// Print the embedded default configuration, a starting point for your own.
    DefaultConfig,
}

fn load(path: Option<&PathBuf>) -> Result<Config, ExitCode> {
    match path {
        Some(p) => Config::load(p),
        None => Config::embedded(),
    }
    .map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(EX_USAGE)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Some(Command::CheckConfig { file }) => match Config::load(&file) {
            Ok(c) => {
                println!(
                    "{}: ok (host {}, collector {}, every {}, {} checks, spool {})",
                    file.display(),
                    c.host,
                    c.collector_url,
                    humantime::format_duration(c.interval),
                    c.checks.len(),
                    c.spool
                        .as_ref()
                        .map(|s| s.dir.display().to_string())
                        .unwrap_or_else(|| "off".into())
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(EX_USAGE)
            }
        },
        Some(Command::DefaultConfig) => {
            print!("{EMBEDDED}");
            ExitCode::SUCCESS
        }
        Some(Command::Once) => {
            let config = match load(cli.config.as_ref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let runtime = match runtime() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            let batch = runtime.block_on(vedette_agent::once(&config));
            match serde_json::to_string_pretty(&batch) {
                Ok(json) => {
                    println!("{json}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("vedette-agent: cannot encode the batch: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        None => {
            let config = match load(cli.config.as_ref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let source = match cli.config {
                Some(p) => ConfigSource::File(p),
                None => ConfigSource::Embedded,
            };
            let runtime = match runtime() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            runtime.block_on(async {
                let token = CancellationToken::new();
                let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(1);
                tokio::spawn(signals(token.clone(), reload_tx));
                match vedette_agent::run(config, source, token, reload_rx).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("vedette-agent: {e:#}");
                        ExitCode::FAILURE
                    }
                }
            })
        }
    }
}

/// One thread is plenty for one host; sampling and process scans run on
/// blocking threads.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Keep the sampling thread between samples instead of creating one
        // per interval (the default keep-alive is 10 s, our default interval).
        .thread_keep_alive(std::time::Duration::from_secs(600))
        .build()
        .map_err(|e| {
            eprintln!("vedette-agent: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })
}

/// Logs to stderr; without our own timestamps under systemd (journald adds
/// them). `RUST_LOG` takes `level` or `target=level,…` directives; the
/// agent parses them with `Targets` rather than `EnvFilter`, which would
/// link a full regex engine into every host's agent for span-field filters
/// nobody uses here.
fn init_tracing() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let default = Targets::new().with_default(LevelFilter::INFO);
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => v.parse::<Targets>().unwrap_or_else(|e| {
            eprintln!("vedette-agent: ignoring RUST_LOG={v:?} ({e}); logging at info");
            default
        }),
        _ => default,
    };
    let fmt = tracing_subscriber::fmt::layer()
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

/// Cancels `token` on Ctrl-C or SIGTERM; asks for a config reload on SIGHUP.
async fn signals(token: CancellationToken, reload: tokio::sync::mpsc::Sender<()>) {
    use tokio::signal::unix::{signal, SignalKind};
    let ctrl_c = tokio::signal::ctrl_c();
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
                    tracing::info!("SIGHUP received; reloading the config");
                    // A reload already waiting covers this one too.
                    let _ = reload.try_send(());
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for SIGHUP"),
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        _ = ctrl_c => tracing::info!("interrupt received; shutting down"),
        _ = term => tracing::info!("SIGTERM received; shutting down"),
        _ = hup => {}
    }
    token.cancel();
}
