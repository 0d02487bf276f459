//! `vedette-agent`: parses the command line, sets up logging, turns signals
//! into a cancellation token and calls the library. Exit codes: 0 ok, 64 bad
//! usage or config, 1 runtime failure.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use vedette_agent::app::ConfigSource;
use vedette_agent::config::{Config, EMBEDDED};

const EX_USAGE: u8 = 64;

/// Samples this host's health (CPU, memory, swap, load, filesystems, disks,
/// network, pressure, file descriptors, clock, uptime), runs availability checks (http, tcp,
/// dns, process, systemd, any Nagios plugin) and pushes both to a vedette
/// collector.
///
/// With no --config it runs the embedded default: host metrics every 10 s,
/// pushed to http://127.0.0.1:9850, unsent batches spooled in the agent's
/// state directory ($STATE_DIRECTORY, /var/lib/vedette-agent as root, else
/// ~/.local/state/vedette-agent), local /metrics on 127.0.0.1:9851. Print it
/// (every key, commented) with `default-config`.
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
    vedette_daemon::init_tracing("vedette-agent");
    match cli.command {
        Some(Command::CheckConfig { file }) => match Config::load(&file) {
            Ok(c) => {
                println!(
                    "{}: ok (host {}, collector {}, every {}, {} checks, spool {})",
                    file.display(),
                    c.host,
                    c.collectors
                        .iter()
                        .map(|u| u.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    humantime::format_duration(c.interval),
                    c.checks.len(),
                    c.spool
                        .as_ref()
                        .map(|s| s.dir.display().to_string())
                        .unwrap_or_else(|| "off".into())
                );
                for u in c.clear_text_collectors() {
                    eprintln!(
                        "{}: warning: {u} is plain http:// to another host: the token and \
                         batches cross the network in clear; use https://",
                        file.display()
                    );
                }
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
            let batch = runtime.block_on(vedette_agent::app::once(&config));
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
                tokio::spawn(vedette_daemon::signals(token.clone(), Some(reload_tx)));
                match vedette_agent::app::run(config, source, token, reload_rx).await {
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
