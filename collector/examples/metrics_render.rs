//! `/metrics` rendering cost at fleet size: HOSTS hosts × 60 series, each
//! host with 5 checks whose availability is computed over the four windows,
//! and one service over all of them; next to a baseline in the same run that
//! only formats the same number of sample lines into a string (the floor of
//! any text exposition).
//!
//! `cargo run --release -p vedette-collector --example metrics_render [HOSTS] [ROUNDS]`
//! (default 10,000 hosts, 5 rounds). Prints one `key=value` line per measurement.

use std::fmt::Write as _;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use vedette_collector::availability::Avail;
use vedette_collector::config::Config;
use vedette_collector::incidents::Labels;
use vedette_collector::metrics::Metrics;
use vedette_collector::state::HostRecord;
use vedette_collector::state::{HostState, Point, State};

const SERIES: usize = 60;
const CHECKS: usize = 5;
const NOW: i64 = 1_763_700_000_000;
const DAY: i64 = 86_400_000;

fn state(hosts: usize) -> State {
    let mut st = State::default();
    st.runs.set(Avail::Up, NOW - 40 * DAY);
    for h in 0..hosts {
        let name = format!("host-{h:05}");
        let mut hs = HostState::from_record(HostRecord {
            host: name.clone(),
            labels: Labels::from([("role".to_string(), "web".to_string())]),
            boot_id: "b".into(),
            last_seq: 1,
            last_seen_ms: NOW - 1000,
            interval_ms: 10_000,
            retired_boots: Vec::new(),
        });
        for s in 0..SERIES {
            let labels = Labels::from([("device".to_string(), format!("sd{}", s % 4))]);
            hs.set_point(
                &format!("metric_{}", s / 4),
                &labels,
                Point {
                    ts_ms: NOW - 1000,
                    value: s as f64 * 0.01,
                },
            );
        }
        hs.up.set(Avail::Up, NOW - 35 * DAY);
        for c in 0..CHECKS {
            let tl = hs.check_up.entry(format!("check{c}")).or_default();
            tl.set(Avail::Up, NOW - 35 * DAY);
            // One short outage a week, as a real fleet might have.
            for w in 0..4 {
                let at = NOW - (w * 7 + c as i64) * DAY;
                tl.set(Avail::Down, at - 600_000);
                tl.set(Avail::Up, at);
            }
        }
        st.hosts.insert(name, std::sync::Arc::new(hs));
    }
    st
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let hosts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let config = Config::from_yaml(
        "bench.yaml",
        "rules: []\nservices:\n  - {name: web, target: 0.999, hosts: ['host-*'], checks: ['check*'], mode: all}\n",
    )
    .expect("bench config");
    let state = Arc::new(RwLock::new(state(hosts)));
    let metrics = Metrics::new(Arc::clone(&state), Arc::clone(&config.reporting));
    let mut render = Vec::new();
    let mut text = String::new();
    for _ in 0..rounds {
        let t = Instant::now();
        text = metrics.render(NOW);
        render.push(t.elapsed().as_secs_f64());
    }
    let lines = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    // Baseline: the same number of sample lines, formatted and nothing else.
    let mut base = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let mut out = String::with_capacity(text.len());
        for i in 0..lines {
            let _ = writeln!(
                out,
                "vedette_metric_{}{{host=\"host-{:05}\",device=\"sd{}\"}} {}",
                i % 15,
                i / SERIES,
                i % 4,
                (i % 60) as f64 * 0.01
            );
        }
        std::hint::black_box(&out);
        base.push(t.elapsed().as_secs_f64());
    }
    let (r, b) = (median(render), median(base));
    println!("hosts={hosts} series_per_host={SERIES} checks_per_host={CHECKS} rounds={rounds}");
    println!("exposed_series={lines} bytes={}", text.len());
    println!(
        "render_ms={:.1} series_per_s={:.0}",
        r * 1000.0,
        lines as f64 / r
    );
    println!("baseline_format_ms={:.1} ratio={:.2}", b * 1000.0, r / b);
}
