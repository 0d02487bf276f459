//! `vedette-collector`: parses the command line, sets up logging, turns
//! signals into a cancellation token and calls the library. Exit codes: 0 ok,
//! 64 bad usage or config, 1 runtime failure.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use vedette_collector::client::{self, Client};
use vedette_collector::config::{Config, EMBEDDED};
use vedette_collector::{tls, tokens};

const EX_USAGE: u8 = 64;

/// Receives agent pushes, evaluates threshold rules, and opens and resolves
/// incidents on its own.
///
/// With no --config it runs the embedded default: listen on 127.0.0.1:9850,
/// SQLite in the collector's state directory ($STATE_DIRECTORY,
/// /var/lib/vedette-collector as root, else ~/.local/state/vedette-collector),
/// the default rules (host_down, cpu_high, memory_high, disk_full,
/// check_critical). Print it with `default-config`.
///
/// Endpoints: POST /api/v1/push, /api/v1/incidents, /api/v1/problems,
/// /api/v1/changes, /api/v1/suppressions, GET /metrics, GET /healthz,
/// GET /readyz. Logs go to stderr; set RUST_LOG (default info).
///
/// A listener that is not loopback needs `tls:` (cert_file, key_file;
/// `tls init` makes a private CA and certificates) or `tls: off` behind a
/// TLS-terminating proxy.
///
/// SIGHUP (systemctl reload) re-reads --config: tokens, rules, receivers,
/// services, maintenance and the TLS certificate change without a restart.
///
/// `token new --host GLOB --config FILE` admits agents; the incidents,
/// problems, changes and services subcommands talk to a running collector
/// (--url, default http://127.0.0.1:9850; VEDETTE_TOKEN for the API token).
#[derive(Debug, Parser)]
#[command(name = "vedette-collector", version, about, long_about)]
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
    /// Print the embedded default configuration, a starting point for your own.
    DefaultConfig,
    /// Agent tokens: `token new --host 'web-*' --config FILE`.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// List, show, acknowledge and resolve incidents through the REST API.
    Incidents {
        #[command(subcommand)]
        action: IncidentsAction,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List, show and resolve problems (recurring incidents).
    Problems {
        #[command(subcommand)]
        action: ProblemsAction,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// TLS for fleets without a PKI: `tls init --dir /etc/vedette/tls --host NAME`.
    Tls {
        #[command(subcommand)]
        action: TlsAction,
    },
    /// Service levels: availability per window against the SLA target,
    /// error budget left and burn rate (GET /api/v1/services).
    Services {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List and record planned changes: breaches in their scope are
    /// suppressed while they run and fail them if they follow.
    Changes {
        #[command(subcommand)]
        action: ChangesAction,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// How to reach the API.
#[derive(Debug, Args)]
struct ApiArgs {
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
    /// The private CA that signed the collector's certificate (an https URL
    /// whose certificate no public CA signed).
    #[arg(long, global = true, env = "VEDETTE_CA_FILE", value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// A client certificate (PEM), for a collector with `client_auth: require`.
    #[arg(
        long,
        global = true,
        env = "VEDETTE_CERT_FILE",
        value_name = "FILE",
        requires = "key_file"
    )]
    cert_file: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(
        long,
        global = true,
        env = "VEDETTE_KEY_FILE",
        value_name = "FILE",
        requires = "cert_file"
    )]
    key_file: Option<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

impl ApiArgs {
    fn tls(&self) -> client::ClientTls {
        client::ClientTls {
            ca_file: self.ca_file.clone(),
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// Make a fresh random agent token and admit it for the given hosts.
    ///
    /// The token goes to stdout, once; it is not stored anywhere. With
    /// --config, its SHA-256 is added to that file's `agents:` list (comments
    /// and layout kept; the result must load, or nothing is written; mode and
    /// owner kept); `systemctl reload vedette-collector` then applies it.
    /// Without --config, the YAML item to add is printed on stderr.
    ///
    /// On the collector:
    ///   TOKEN=$(vedette-collector token new --host 'web-*' --config /etc/vedette/collector.yaml)
    ///   systemctl reload vedette-collector
    /// On each web host, the token in the agent's token_file:
    ///   install -m 0640 -g vedette-agent /dev/null /etc/vedette/agent.token
    ///   echo "$TOKEN" > /etc/vedette/agent.token
    #[command(verbatim_doc_comment)]
    New {
        /// Host-name glob the token may push as (repeat for more; '*' for any).
        #[arg(long = "host", value_name = "GLOB", required = true)]
        hosts: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum TlsAction {
    /// Make a private CA (once; later runs reuse it), a server certificate
    /// for the collector's names and client certificates for agents.
    ///
    /// Writes DIR/ca.pem, DIR/ca-key.pem, DIR/server.pem, DIR/server-key.pem
    /// and DIR/agents/NAME.pem, NAME-key.pem (keys mode 0600). Run again with
    /// --host to renew the server certificate, with --agent to add agents;
    /// then `systemctl reload vedette-collector` serves the new files.
    ///
    /// On the collector (names agents will use in their URL):
    ///   vedette-collector tls init --dir /etc/vedette/tls --host mon.example.com --agent web-01
    ///   chown -R vedette-collector: /etc/vedette/tls
    /// In collector.yaml:
    ///   tls: {cert_file: /etc/vedette/tls/server.pem, key_file: /etc/vedette/tls/server-key.pem}
    /// On each agent: collector.ca_file: /etc/vedette/ca.pem (a copy of DIR/ca.pem),
    /// and for mutual TLS cert_file/key_file from DIR/agents/.
    #[command(verbatim_doc_comment)]
    Init {
        /// Where the files go (created if missing).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// A name (DNS or IP) agents reach the collector by (repeat for more).
        #[arg(long = "host", value_name = "NAME")]
        hosts: Vec<String>,
        /// A client certificate for this agent host name (repeat for more).
        #[arg(long = "agent", value_name = "NAME")]
        agents: Vec<String>,
        /// N client certificates named agent-001 … (beside any --agent).
        #[arg(long = "agents", value_name = "N", default_value_t = 0)]
        count: u32,
        /// How long the server and agent certificates are valid.
        #[arg(long, default_value_t = 825)]
        days: u32,
    },
}

#[derive(Debug, Subcommand)]
enum ProblemsAction {
    /// List problems, newest first.
    List {
        /// Only problems in this state: open, resolved.
        #[arg(long)]
        state: Option<String>,
    },
    /// Show one problem and the incidents it links.
    Show { id: i64 },
    /// Resolve a problem once its root cause is fixed.
    Resolve {
        id: i64,
        /// What was done about the root cause.
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ChangesAction {
    /// List changes, newest first.
    List,
    /// Record a planned change.
    ///
    /// Example: vedette-collector changes create --title "kernel update"
    /// --host 'web-*' --duration 1h --verify-for 30m
    Create {
        /// What the change is.
        #[arg(long)]
        title: String,
        /// Host-name glob in scope (repeat for more).
        #[arg(long = "host", value_name = "GLOB")]
        hosts: Vec<String>,
        /// Host label in scope, KEY=VALUE (repeat for more; VALUE may be ~regex).
        #[arg(long = "host-label", value_name = "KEY=VALUE")]
        host_labels: Vec<String>,
        /// When it starts (RFC 3339); default now.
        #[arg(long)]
        start: Option<String>,
        /// When it ends (RFC 3339).
        #[arg(long, conflicts_with = "duration")]
        end: Option<String>,
        /// How long it lasts from the start (e.g. 2h); instead of --end.
        #[arg(long)]
        duration: Option<humantime::Duration>,
        /// How long after the end a breach in scope fails the change.
        #[arg(long, default_value = "30m")]
        verify_for: humantime::Duration,
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
    /// Add a note to an incident's timeline, in any state (no notification).
    Note {
        id: i64,
        /// The note.
        #[arg(long)]
        note: String,
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
                    "{}: ok ({} rules, {} agent tokens, {} API tokens, {} maintenance windows, {} services, receivers [{}], listen {})",
                    file.display(),
                    c.rules.len(),
                    c.agents.len(),
                    c.api_tokens.len(),
                    c.maintenance.len(),
                    c.reporting.services.len(),
                    c.notify
                        .receivers
                        .iter()
                        .map(|r| format!("{} ({})", r.name, r.kind.name()))
                        .collect::<Vec<_>>()
                        .join(", "),
                    c.listen
                );
                if let Some(server) = c.tls.server() {
                    println!(
                        "tls: certificate for {} ({}), {}",
                        server.names.join(", "),
                        server
                            .days_left(chrono::Utc::now().timestamp())
                            .map_or("expiry unknown".into(), |d| format!("{d} days left")),
                        if c.tls.requires_client_cert() {
                            "client certificates required"
                        } else {
                            "no client certificates"
                        }
                    );
                }
                for w in c.warnings(chrono::Utc::now().timestamp()) {
                    eprintln!("{}: warning: {w}", file.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(EX_USAGE)
            }
        },
        Some(Command::Tls {
            action:
                TlsAction::Init {
                    dir,
                    hosts,
                    mut agents,
                    count,
                    days,
                },
        }) => {
            agents.extend((1..=count).map(|i| format!("agent-{i:03}")));
            tls_init(&tls::init::Request {
                dir,
                hosts,
                agents,
                days,
            })
        }
        Some(Command::DefaultConfig) => {
            print!("{EMBEDDED}");
            ExitCode::SUCCESS
        }
        Some(Command::Token {
            action: TokenAction::New { hosts },
        }) => token_new(cli.config.as_deref(), &hosts),
        Some(Command::Incidents { action, api }) => client_output(incidents(action, api).await),
        Some(Command::Problems { action, api }) => client_output(problems(action, api).await),
        Some(Command::Changes { action, api }) => client_output(changes(action, api).await),
        Some(Command::Services { api }) => client_output(services(api).await),
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
            // SIGHUP re-reads --config; the embedded default has nothing to re-read.
            let (reload_tx, reload) = match &cli.config {
                Some(path) => {
                    let (tx, requests) = tokio::sync::mpsc::channel(1);
                    let path = path.clone();
                    (
                        Some(tx),
                        Some(vedette_collector::app::Reload { path, requests }),
                    )
                }
                None => (None, None),
            };
            tokio::spawn(vedette_daemon::signals(token.clone(), reload_tx));
            match vedette_collector::app::run(config, token, reload).await {
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

/// `token new`: the token on stdout, what was done (or is to do) on stderr.
fn token_new(config: Option<&std::path::Path>, hosts: &[String]) -> ExitCode {
    let token = tokens::generate();
    let note = format!(
        "added {} by `vedette-collector token new`",
        chrono::Utc::now().format("%Y-%m-%d")
    );
    let Some(path) = config else {
        println!("{token}");
        eprint!(
            "Add this item to `agents:` in the collector's config, then reload it \
             (systemctl reload vedette-collector):\n{}",
            tokens::agent_entry(&token, hosts, 2, &note)
        );
        return ExitCode::SUCCESS;
    };
    let edited = vedette_yaml::read(path)
        .map_err(|e| e.to_string())
        .and_then(|(file, text)| {
            tokens::add_agent(&file, &text, &token, hosts, &note).map_err(|e| e.to_string())
        })
        .and_then(|text| {
            tokens::replace_file(path, &text)
                .map_err(|e| format!("{}: cannot write: {e}; nothing written", path.display()))
        });
    match edited {
        Ok(()) => {
            println!("{token}");
            eprintln!(
                "{}: admitted a new agent token for hosts {}. The token above is shown once: \
                 put it in each agent's token_file (e.g. /etc/vedette/agent.token, mode 0640), \
                 then apply the config: systemctl reload vedette-collector",
                path.display(),
                hosts.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vedette-collector: {e}");
            ExitCode::from(EX_USAGE)
        }
    }
}

/// `tls init`: the files written and what to do with them.
fn tls_init(req: &tls::init::Request) -> ExitCode {
    if req.hosts.is_empty() && req.agents.is_empty() {
        eprintln!("vedette-collector: give --host NAME (the server certificate) and/or --agent NAME or --agents N");
        return ExitCode::from(EX_USAGE);
    }
    match tls::init::run(req) {
        Ok(written) => {
            for w in &written {
                println!("{}  {}", w.path.display(), w.what);
            }
            let dir = req.dir.display();
            if !req.hosts.is_empty() {
                println!(
                    "\nIn collector.yaml:\n  tls:\n    cert_file: {dir}/server.pem\n    key_file: {dir}/server-key.pem"
                );
                if !req.agents.is_empty() {
                    println!("    client_ca_file: {dir}/ca.pem\n    client_auth: require");
                }
                println!(
                    "The collector must be able to read the key: chown vedette-collector: {dir}/server-key.pem"
                );
            }
            println!("Agents trust the collector with collector.ca_file (a copy of {dir}/ca.pem).");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vedette-collector: tls init: {e}");
            ExitCode::from(EX_USAGE)
        }
    }
}

fn client_output(r: anyhow::Result<String>) -> ExitCode {
    match r {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vedette-collector: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// JSON for scripts, else the table (lists) or the fields (one object).
fn show(value: &Value, json: bool, table: fn(&Value) -> String) -> anyhow::Result<String> {
    Ok(if json {
        format!("{}\n", client::json_text(value)?)
    } else if value.is_array() {
        table(value)
    } else {
        client::fields(value)
    })
}

async fn incidents(action: IncidentsAction, api: ApiArgs) -> anyhow::Result<String> {
    let c = Client::new(&api.url, api.token.clone(), &api.tls())?;
    let value = match action {
        IncidentsAction::List { state } => c.list(state.as_deref()).await?,
        IncidentsAction::Show { id } => c.show(id).await?,
        IncidentsAction::Ack { id, note } => c.act(id, "ack", note.as_deref()).await?,
        IncidentsAction::Resolve { id, note } => c.act(id, "resolve", note.as_deref()).await?,
        IncidentsAction::Note { id, note } => c.act(id, "notes", Some(&note)).await?,
    };
    if api.json || value.is_array() {
        return show(&value, api.json, client::table);
    }
    Ok(client::detail(&value))
}

async fn problems(action: ProblemsAction, api: ApiArgs) -> anyhow::Result<String> {
    let c = Client::new(&api.url, api.token.clone(), &api.tls())?;
    let value = match action {
        ProblemsAction::List { state } => {
            let q: Vec<(&str, &str)> = state.as_deref().map(|s| ("state", s)).into_iter().collect();
            c.get("/api/v1/problems", &q).await?
        }
        ProblemsAction::Show { id } => c.get(&format!("/api/v1/problems/{id}"), &[]).await?,
        ProblemsAction::Resolve { id, note } => {
            c.post(
                &format!("/api/v1/problems/{id}/resolve"),
                &json!({ "note": note }),
            )
            .await?
        }
    };
    show(&value, api.json, client::problems_table)
}

async fn services(api: ApiArgs) -> anyhow::Result<String> {
    let c = Client::new(&api.url, api.token.clone(), &api.tls())?;
    let value = c.get("/api/v1/services", &[]).await?;
    show(&value, api.json, client::services_table)
}

async fn changes(action: ChangesAction, api: ApiArgs) -> anyhow::Result<String> {
    let c = Client::new(&api.url, api.token.clone(), &api.tls())?;
    let value = match action {
        ChangesAction::List => c.get("/api/v1/changes", &[]).await?,
        ChangesAction::Create {
            title,
            hosts,
            host_labels,
            start,
            end,
            duration,
            verify_for,
        } => {
            let mut labels = serde_json::Map::new();
            for kv in &host_labels {
                let Some((k, v)) = kv.split_once('=') else {
                    anyhow::bail!("--host-label {kv}: expected KEY=VALUE");
                };
                labels.insert(k.to_string(), Value::String(v.to_string()));
            }
            let start = match start {
                Some(s) => chrono::DateTime::parse_from_rfc3339(&s)
                    .map_err(|e| anyhow::anyhow!("--start {s}: not RFC 3339: {e}"))?
                    .with_timezone(&chrono::Utc),
                None => chrono::Utc::now(),
            };
            let end = match (end, duration) {
                (Some(e), _) => e,
                (None, Some(d)) => {
                    let d = chrono::Duration::from_std(*d)
                        .map_err(|e| anyhow::anyhow!("--duration: {e}"))?;
                    (start + d).to_rfc3339()
                }
                (None, None) => anyhow::bail!("give --end TIME or --duration (e.g. 2h)"),
            };
            let body = json!({
                "title": title,
                "scope": {"hosts": hosts, "host_labels": labels},
                "start": start.to_rfc3339(),
                "end": end,
                "verify_for": verify_for.to_string(),
            });
            c.post("/api/v1/changes", &body).await?
        }
    };
    show(&value, api.json, client::changes_table)
}
