//! Rule-evaluation cost per sample: 200 rules over 100,000 live series, next
//! to a baseline with no rules in the same run, and the cost of the breach
//! path (a sample that opens an incident, committed to a SQLite file).
//!
//! `cargo run --release -p vedette-collector --example rule_eval [HOSTS] [ROUNDS]`
//! (default 1000 hosts × 100 series = 100,000 series, 5 rounds).
//! Prints one `key=value` line per measurement.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use vedette_collector::config::Config;
use vedette_collector::engine::Engine;
use vedette_collector::metrics::Metrics;
use vedette_collector::state::State;
use vedette_collector::store::Store;
use vedette_protocol::{AgentInfo, Batch, Sample};

const SERIES_PER_HOST: usize = 100;
const RULE_METRICS: usize = 50;
const T0: i64 = 1_763_700_000_000;

/// 200 rules: four per metric on 50 metrics, with host selectors and label
/// matchers like real fleets write them.
fn rules_yaml(n: usize) -> String {
    let mut y = String::from("rules:\n");
    for i in 0..n {
        let m = i % RULE_METRICS;
        let sel = match i / RULE_METRICS {
            0 => String::new(),
            1 => ", hosts: ['host-1*']".into(),
            2 => ", host_labels: {role: db}".into(),
            _ => ", labels: {device: '~^/dev/sd'}".into(),
        };
        let _ = writeln!(
            y,
            "  - {{name: r{i}, metric: m{m}, above: 0.9, clear_below: 0.8, for: 1m{sel}}}"
        );
    }
    y
}

fn batch(host: usize, seq: u64, now: i64, breach: bool) -> Batch {
    let samples = (0..SERIES_PER_HOST)
        .map(|s| Sample {
            // Half the series are watched by rules, half are not.
            name: format!("m{}", s % (2 * RULE_METRICS)),
            labels: BTreeMap::from([
                (
                    "device".to_string(),
                    format!("/dev/sd{}", (b'a' + (s / 100) as u8) as char),
                ),
                ("instance".to_string(), (s / (2 * RULE_METRICS)).to_string()),
            ]),
            ts_ms: now,
            value: if breach && s == 0 { 0.95 } else { 0.5 },
        })
        .collect();
    Batch {
        version: 1,
        agent: AgentInfo {
            host: format!("host-{host}"),
            version: "bench".into(),
            labels: BTreeMap::from([(
                "role".to_string(),
                if host.is_multiple_of(2) { "db" } else { "web" }.to_string(),
            )]),
            boot_id: "b".into(),
            interval_s: 10.0,
        },
        seq,
        sent_at_ms: now,
        samples,
        checks: Vec::new(),
    }
}

fn engine(rules: usize, store: Store) -> Engine {
    let config = Config::from_yaml("bench.yaml", &rules_yaml(rules)).expect("bench config");
    let state = Arc::new(RwLock::new(State::default()));
    let metrics = Arc::new(Metrics::new(Arc::clone(&state), Default::default()));
    Engine::new(config.engine_setup(), store, None, state, metrics, T0).expect("engine")
}

/// Nanoseconds per sample over `rounds` full passes (after one warm-up pass
/// that creates every series), median of the rounds.
fn per_sample(rules: usize, hosts: usize, rounds: usize) -> f64 {
    let mut e = engine(rules, Store::in_memory().expect("store"));
    let batches: Vec<Vec<Batch>> = (0..=rounds)
        .map(|r| {
            (0..hosts)
                .map(|h| batch(h, r as u64 + 1, T0 + r as i64 * 10_000, false))
                .collect()
        })
        .collect();
    let mut times = Vec::new();
    for (r, round) in batches.iter().enumerate() {
        let now = T0 + r as i64 * 10_000;
        let start = Instant::now();
        for b in round {
            e.apply(b, now).expect("apply");
        }
        if r > 0 {
            times.push(start.elapsed().as_nanos() as f64 / (hosts * SERIES_PER_HOST) as f64);
        }
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let hosts = args.first().copied().unwrap_or(1000);
    let rounds = args.get(1).copied().unwrap_or(5);
    println!(
        "machine: {} cores; series={} rules=200 rounds={rounds}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        hosts * SERIES_PER_HOST
    );
    let base = per_sample(0, hosts, rounds);
    let with = per_sample(200, hosts, rounds);
    println!("baseline_ns_per_sample={base:.0} (no rules: decode-free apply, state update)");
    println!(
        "rules_ns_per_sample={with:.0} rule_cost_ns_per_sample={:.0} ratio={:.2}",
        with - base,
        with / base
    );
    println!("samples_per_s_one_core={:.0}", 1e9 / with);

    // The breach path: a batch whose first sample breaches a `for: 0` rule,
    // so apply() opens and commits an incident to a SQLite file (WAL, FULL).
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("vedette.db")).expect("store");
    let config = Config::from_yaml(
        "b.yaml",
        "rules:\n  - {name: hot, metric: m0, above: 0.9}\n",
    )
    .expect("config");
    let state = Arc::new(RwLock::new(State::default()));
    let metrics = Arc::new(Metrics::new(Arc::clone(&state), Default::default()));
    let mut e =
        Engine::new(config.engine_setup(), store, None, state, metrics, T0).expect("engine");
    let mut lat: Vec<Duration> = (0..200)
        .map(|h| {
            let b = batch(h, 1, T0, true);
            let start = Instant::now();
            e.apply(&b, T0).expect("apply");
            start.elapsed()
        })
        .collect();
    lat.sort();
    let pct = |p: usize| lat[(lat.len() * p / 100).min(lat.len() - 1)].as_secs_f64() * 1e3;
    println!(
        "breach_to_incident_committed_ms p50={:.3} p99={:.3} (200 incidents, 100-sample batches)",
        pct(50),
        pct(99)
    );
}
