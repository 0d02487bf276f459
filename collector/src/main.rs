//! `vedette-collector`: parses the command line, sets up logging, turns
//! signals into a cancellation token and calls the library. Exit codes: 0 ok,
//! 64 bad usage or config, 1 runtime failure.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use vedette_collector::client::{self, Client};
use vedette_collector::config::{Config, EMBEDDED};

const EX_USAGE: u8 = 64;

/// Receives agent pushes, evaluates threshold rules, and opens and resolves
/// incidents on its own.
///
/// With no --config it runs the embedded default: listen on 127.0.0.1:9850,
/// SQLite under ./vedette-data/, the default rules (host_down, cpu_high,
/// memory_high, disk_full, check_critical). Print it with `default-config`.
///
/// Endpoints: POST /api/v1/push, GET /api/v1/incidents, GET /metrics,
/// GET /healthz, GET /readyz. Logs go to stderr; set RUST_LOG (default info).
#[derive(Debug, Parser)]
#[command(name = "vedette-collector", version, about, long_about)]
struct Cli {
    /// Configuration file (YAML). Without it, the embedded default is used.
    #[arg(long, short, value_name = "FILE")]
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
    /// Print the embedded default configuration, a starting point for your own.
    DefaultConfig,
    /// List, show, acknowledge and resolve incidents through the REST API.
    Incidents {
        #[command(subcommand)]
        action: IncidentsAction,
        /// The collector's base URL.
        #[arg(
            long,
            global = true,
            env = "VEDETTE_URL",
            default_value = "http://127.0.0.1:9850"
        )]
        url: String,
        /// API token (prefer the VEDETTE_TOKEN environment variable: command
        /// lines are visible to other users).
        #[arg(long, global = true, env = "VEDETTE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Print the API's JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum IncidentsAction {
    /// List incidents, newest first.
    List {
        /// Only incidents in this state: open, acknowledged, resolved, closed.
        #[arg(long)]
        state: Option<String>,
    },
    /// Show one incident with its timeline.
    Show { id: i64 },
    /// Acknowledge an open incident.
    Ack {
        id: i64,
        /// A note for the timeline.
        #[arg(long)]
        note: Option<String>,
    },
    /// Resolve a live incident by hand.
    Resolve {
        id: i64,
        /// A note for the timeline (what was done).
        #[arg(long)]
        note: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    vedette_daemon::init_tracing("vedette-collector");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vedette-collector: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async_main(cli))
}

async fn async_main(cli: Cli) -> ExitCode {
    match cli.command {
        Some(Command::CheckConfig { file }) => match Config::load(&file) {
            Ok(c) => {
                println!(
                    "{}: ok ({} rules, {} agent tokens, listen {})",
                    file.display(),
                    c.rules.len(),
                    c.agents.len(),
                    c.listen
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
        Some(Command::Incidents {
            action,
            url,
            token,
            json,
        }) => match incidents(action, &url, token, json).await {
            Ok(out) => {
                print!("{out}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vedette-collector: {e:#}");
                ExitCode::FAILURE
            }
        },
        None => {
            let config = match &cli.config {
                Some(path) => Config::load(path),
                None => Config::embedded(),
            };
            let config = match config {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(EX_USAGE);
                }
            };
            let token = CancellationToken::new();
            tokio::spawn(vedette_daemon::signals(token.clone(), None));
            match vedette_collector::run(config, token).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("vedette-collector: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn incidents(
    action: IncidentsAction,
    url: &str,
    token: Option<String>,
    json: bool,
) -> anyhow::Result<String> {
    let c = Client::new(url, token)?;
    let (value, many) = match action {
        IncidentsAction::List { state } => (c.list(state.as_deref()).await?, true),
        IncidentsAction::Show { id } => (c.show(id).await?, false),
        IncidentsAction::Ack { id, note } => (c.act(id, "ack", note.as_deref()).await?, false),
        IncidentsAction::Resolve { id, note } => {
            (c.act(id, "resolve", note.as_deref()).await?, false)
        }
    };
    Ok(if json {
        format!("{}\n", serde_json::to_string_pretty(&value)?)
    } else if many {
        client::table(&value)
    } else {
        client::detail(&value)
    })
}
