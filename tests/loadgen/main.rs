//! `vedette-loadgen`: simulates a fleet of agents pushing to a collector, with
//! the real protocol (gzip JSON batches, `boot_id` + `seq`, bearer token),
//! and reports accepted samples per second and push latency.
//!
//! Each simulated agent is a distinct host (`<prefix>-00001`, …) with a
//! realistic set of series (CPU, memory, swap, load, uptime, then
//! filesystems and network interfaces until `--series` is reached) and
//! `--checks` check results. A share `--breach-ratio` of the agents breach:
//! every other batch of theirs carries `cpu_usage_ratio` 0.99 and critical
//! checks, the batches between them 0.10 and ok, so each breaching batch is a
//! transition the collector's rules act on.
//!
//! Paced (default): agent i first pushes at i × interval / agents, then once
//! per interval, like a fleet whose agents started at different moments.
//! `--max`: every agent pushes again as soon as its previous push is
//! answered, to find the collector's ceiling (use few agents and large
//! `--series` for that).
//!
//! Progress goes to stderr every 5 s; the summary goes to stdout, its LAST
//! line being
//! `samples_per_s=… p50_ms=… p99_ms=… errors=… incidents=…`.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vedette_protocol::clock::now_ms;

use clap::Parser;
use flate2::write::GzEncoder;
use flate2::Compression;
use vedette_protocol::{AgentInfo, Batch, CheckKind, CheckResult, PushAck, Sample, Status};

/// Simulates N vedette agents pushing to a collector and measures it.
///
/// Example (10,000 agents × 60 series every 10 s for a minute):
///
///   vedette-loadgen --url http://127.0.0.1:9100 --token "$TOKEN" \
///       --agents 10000 --interval 10s --duration 60s
///
/// The collector must accept the token for every simulated host
/// (`hosts: ["load-*"]`, or no agent tokens on a loopback collector).
/// The last line printed is machine-readable:
/// samples_per_s=… p50_ms=… p99_ms=… errors=… incidents=…
#[derive(Parser, Debug)]
#[command(name = "vedette-loadgen", version, verbatim_doc_comment)]
struct Args {
    /// The collector's base URL.
    #[arg(long, default_value = "http://127.0.0.1:9100")]
    url: String,
    /// Agent token to push with (also read from VEDETTE_TOKEN).
    #[arg(long, env = "VEDETTE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Simulated agents (distinct hosts).
    #[arg(long, default_value_t = 100)]
    agents: usize,
    /// Each agent's push interval (paced mode).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// How long to push for.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Metric series per agent (samples per batch).
    #[arg(long, default_value_t = 60)]
    series: usize,
    /// Check results per agent and batch.
    #[arg(long, default_value_t = 5)]
    checks: usize,
    /// Share of agents whose every other batch breaches (0 to 1).
    #[arg(long, default_value_t = 0.01)]
    breach_ratio: f64,
    /// Push as fast as the collector answers instead of once per interval.
    #[arg(long)]
    max: bool,
    /// Host name prefix of the simulated agents.
    #[arg(long, default_value = "load")]
    prefix: String,
    /// A cardinality attack: every batch gives the labelled series (all but
    /// the first eight) fresh label values, so each batch brings new series.
    #[arg(long)]
    churn: bool,
    /// Trust this CA (PEM) for an https:// collector with a private CA.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<std::path::PathBuf>,
    /// The name the collector's certificate is checked against (the URL
    /// then uses an address): resolved to the URL's address.
    #[arg(long, value_name = "NAME", requires = "ca_file")]
    server_name: Option<String>,
    /// Open a new connection for every push (no keep-alive): with https,
    /// every push pays a TLS handshake, which measures its cost.
    #[arg(long)]
    new_connections: bool,
}

/// What all agents record, shared.
#[derive(Default)]
struct Tally {
    pushes: AtomicU64,
    accepted: AtomicU64,
    errors: AtomicU64,
    /// Push latencies in microseconds, every push / breaching pushes only.
    latencies: Mutex<Vec<u32>>,
    breach_latencies: Mutex<Vec<u32>>,
    first_errors: Mutex<Vec<String>>,
}

impl Tally {
    fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_errors.lock().expect("tally lock");
        if first.len() < 5 {
            first.push(what);
        }
    }
}

struct Agent {
    info: AgentInfo,
    seq: u64,
    breaching: bool,
    churn: bool,
    series: Vec<(String, BTreeMap<String, String>)>,
    checks: Vec<(String, CheckKind)>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if !(0.0..=1.0).contains(&args.breach_ratio) || args.agents == 0 || args.series == 0 {
        eprintln!(
            "vedette-loadgen: --agents and --series must be at least 1, --breach-ratio within 0..1"
        );
        return std::process::ExitCode::from(64);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vedette-loadgen: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vedette-loadgen: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut base = args.url.trim_end_matches('/').to_string();
    let mut client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(if args.new_connections { 0 } else { usize::MAX });
    if let Some(f) = &args.ca_file {
        let pem = std::fs::read(f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        client = client
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
    }
    if let Some(name) = &args.server_name {
        let url = reqwest::Url::parse(&base)?;
        let addr = url
            .socket_addrs(|| None)?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("{base}: no address"))?;
        client = client.resolve(name, addr);
        base = format!("{}://{name}:{}", url.scheme(), addr.port());
    }
    let client = client.build()?;
    let opened_before = incidents_opened(&client, &base).await;
    let tally = Arc::new(Tally::default());
    let boot = format!("{:x}", now_ms());
    let breaching = (args.agents as f64 * args.breach_ratio).ceil() as usize;
    // Breaching agents are spread evenly: every `stride`-th one.
    let stride = args.agents.checked_div(breaching);

    eprintln!(
        "vedette-loadgen: {} agents × {} series + {} checks, {} to {}, {} breaching, for {}",
        args.agents,
        args.series,
        args.checks,
        if args.max {
            "as fast as answered".to_string()
        } else {
            format!("every {}", humantime::format_duration(args.interval))
        },
        base,
        breaching,
        humantime::format_duration(args.duration),
    );

    let start = Instant::now();
    let end = start + args.duration;
    let url = format!("{base}{}", vedette_protocol::PUSH_PATH);
    let mut tasks = Vec::with_capacity(args.agents);
    for i in 0..args.agents {
        let agent = Agent::new(
            &args,
            i,
            &boot,
            stride.is_some_and(|s| i % s == 0 && i / s < breaching),
        );
        let offset = if args.max {
            Duration::ZERO
        } else {
            args.interval.mul_f64(i as f64 / args.agents as f64)
        };
        tasks.push(tokio::spawn(drive(
            agent,
            client.clone(),
            url.clone(),
            args.token.clone(),
            tally.clone(),
            start + offset,
            end,
            (!args.max).then_some(args.interval),
        )));
    }

    let progress = {
        let tally = tally.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(
                tokio::time::Instant::now() + Duration::from_secs(5),
                Duration::from_secs(5),
            );
            let mut last = (0u64, Instant::now());
            loop {
                tick.tick().await;
                let accepted = tally.accepted.load(Ordering::Relaxed);
                let secs = last.1.elapsed().as_secs_f64();
                eprintln!(
                    "  t={:>4.0}s pushes={} samples_per_s={:.0} errors={}",
                    start.elapsed().as_secs_f64(),
                    tally.pushes.load(Ordering::Relaxed),
                    (accepted - last.0) as f64 / secs,
                    tally.errors.load(Ordering::Relaxed),
                );
                last = (accepted, Instant::now());
            }
        })
    };
    for t in tasks {
        t.await?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    progress.abort();

    for e in tally.first_errors.lock().expect("tally lock").iter() {
        eprintln!("  error: {e}");
    }
    let opened = match (opened_before, incidents_opened(&client, &base).await) {
        (Some(before), Some(after)) => format!("{}", after - before),
        _ => "unknown".to_string(),
    };
    let mut all = std::mem::take(&mut *tally.latencies.lock().expect("tally lock"));
    let mut breach = std::mem::take(&mut *tally.breach_latencies.lock().expect("tally lock"));
    let accepted = tally.accepted.load(Ordering::Relaxed);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "pushes={} accepted_samples={} seconds={:.1} breaching_pushes={} breach_p50_ms={:.2} breach_p99_ms={:.2} max_ms={:.2}",
        tally.pushes.load(Ordering::Relaxed),
        accepted,
        elapsed,
        breach.len(),
        quantile(&mut breach, 0.5),
        quantile(&mut breach, 0.99),
        quantile(&mut all, 1.0),
    )?;
    writeln!(
        out,
        "samples_per_s={:.0} p50_ms={:.2} p99_ms={:.2} errors={} incidents={}",
        accepted as f64 / elapsed,
        quantile(&mut all, 0.5),
        quantile(&mut all, 0.99),
        tally.errors.load(Ordering::Relaxed),
        opened,
    )?;
    Ok(())
}

/// One agent's loop: push at `first`, then every `every` (or at once when
/// `None`), until `end`.
#[allow(clippy::too_many_arguments)]
async fn drive(
    mut agent: Agent,
    client: reqwest::Client,
    url: String,
    token: Option<String>,
    tally: Arc<Tally>,
    first: Instant,
    end: Instant,
    every: Option<Duration>,
) {
    tokio::time::sleep_until(first.into()).await;
    let mut next = first;
    while Instant::now() < end {
        let (body, breach) = agent.next_body();
        let mut req = client
            .post(&url)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(body);
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        let sent = Instant::now();
        let result = req.send().await;
        let answer = match result {
            Ok(r) if r.status().is_success() => {
                r.json::<PushAck>().await.map_err(|e| e.to_string())
            }
            Ok(r) => {
                let status = r.status();
                Err(format!(
                    "HTTP {status}: {}",
                    r.text().await.unwrap_or_default()
                ))
            }
            Err(e) => Err(format!("{e}")),
        };
        let micros = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
        tally.pushes.fetch_add(1, Ordering::Relaxed);
        match answer {
            Ok(ack) => {
                tally
                    .accepted
                    .fetch_add(ack.accepted as u64, Ordering::Relaxed);
                tally.latencies.lock().expect("tally lock").push(micros);
                if breach {
                    tally
                        .breach_latencies
                        .lock()
                        .expect("tally lock")
                        .push(micros);
                }
            }
            Err(e) => tally.error(format!("{}: {e}", agent.info.host)),
        }
        if let Some(every) = every {
            next += every;
            if next >= end {
                break;
            }
            tokio::time::sleep_until(next.into()).await;
        }
    }
}

impl Agent {
    fn new(args: &Args, i: usize, boot: &str, breaching: bool) -> Agent {
        let mut series: Vec<(String, BTreeMap<String, String>)> = [
            "cpu_usage_ratio",
            "memory_used_ratio",
            "memory_available_bytes",
            "swap_used_ratio",
            "load1",
            "load5",
            "load15",
            "uptime_seconds",
        ]
        .iter()
        .map(|n| (n.to_string(), BTreeMap::new()))
        .collect();
        let mut k = 0;
        while series.len() < args.series {
            let (name, label, value) = match k % 4 {
                0 => (
                    "filesystem_used_ratio",
                    "mountpoint",
                    format!("/srv/{}", k / 4),
                ),
                1 => (
                    "filesystem_free_bytes",
                    "mountpoint",
                    format!("/srv/{}", k / 4),
                ),
                2 => (
                    "network_receive_bytes_total",
                    "interface",
                    format!("eth{}", k / 4),
                ),
                _ => (
                    "network_transmit_bytes_total",
                    "interface",
                    format!("eth{}", k / 4),
                ),
            };
            series.push((
                name.to_string(),
                BTreeMap::from([(label.to_string(), value)]),
            ));
            k += 1;
        }
        series.truncate(args.series);
        let kinds = [
            ("http", CheckKind::Http),
            ("tcp", CheckKind::Tcp),
            ("dns", CheckKind::Dns),
            ("process", CheckKind::Process),
            ("systemd", CheckKind::Systemd),
        ];
        let checks = (0..args.checks)
            .map(|c| {
                let (name, kind) = kinds[c % kinds.len()];
                (format!("{name}_{c}"), kind)
            })
            .collect();
        Agent {
            info: AgentInfo {
                host: format!("{}-{i:05}", args.prefix),
                version: concat!("loadgen-", env!("CARGO_PKG_VERSION")).to_string(),
                labels: BTreeMap::from([("env".to_string(), "load".to_string())]),
                boot_id: format!("{boot}-{i}"),
                interval_s: args.interval.as_secs_f64(),
            },
            seq: 0,
            breaching,
            churn: args.churn,
            series,
            checks,
        }
    }

    /// The next batch as a gzip body, and whether it breaches.
    fn next_body(&mut self) -> (Vec<u8>, bool) {
        self.seq += 1;
        let now = now_ms();
        let breach = self.breaching && self.seq % 2 == 1;
        let samples = self
            .series
            .iter()
            .enumerate()
            .map(|(j, (name, labels))| Sample {
                name: name.clone(),
                labels: if self.churn {
                    let seq = self.seq;
                    labels
                        .iter()
                        .map(|(k, v)| (k.clone(), format!("{v}-{seq}")))
                        .collect()
                } else {
                    labels.clone()
                },
                ts_ms: now,
                value: match (j, breach) {
                    (0, true) => 0.99,
                    (0, false) => 0.10,
                    _ => ((self.seq as usize * 7 + j) % 50) as f64 / 100.0,
                },
            })
            .collect();
        let checks = self
            .checks
            .iter()
            .map(|(name, kind)| CheckResult {
                name: name.clone(),
                kind: *kind,
                target: format!("{name}.example"),
                labels: BTreeMap::new(),
                ts_ms: now,
                status: if breach { Status::Critical } else { Status::Ok },
                latency_s: 0.002,
                message: if breach { "connect refused" } else { "ok" }.to_string(),
            })
            .collect();
        let batch = Batch {
            version: vedette_protocol::VERSION,
            agent: self.info.clone(),
            seq: self.seq,
            sent_at_ms: now,
            samples,
            checks,
        };
        let json = serde_json::to_vec(&batch).expect("a batch serializes");
        let mut gz = GzEncoder::new(Vec::with_capacity(json.len() / 4), Compression::fast());
        gz.write_all(&json).expect("gzip into memory");
        (gz.finish().expect("gzip into memory"), breach)
    }
}

/// The collector's `vedette_incidents_opened_total`, summed over its labels.
async fn incidents_opened(client: &reqwest::Client, base: &str) -> Option<u64> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .error_for_status()
        .ok()?
        .text()
        .await
        .ok()?;
    Some(
        text.lines()
            .filter(|l| l.starts_with("vedette_incidents_opened_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64,
    )
}

/// The `q` quantile of latencies in microseconds, in milliseconds (0 when empty).
fn quantile(v: &mut [u32], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    f64::from(v[i]) / 1000.0
}
