//! Whole push batches built from structure, not bytes: every integer and
//! float is drawn from its extremes (0, -1, i64 and u64 limits, one past
//! them, the collector's own clock) as often as from the middle, labels
//! from a small alphabet with the names the collector reserves and the
//! bytes that once forged fingerprints. Each batch is decoded and validated
//! as `POST /api/v1/push` would, then applied to a real engine over an
//! in-memory store, and its clock ticked.
//!
//! Checked: nothing panics (the fuzz build traps integer overflow); a
//! refusal is a 400, 413 or 415 naming a field that exists; what is accepted
//! holds every rule of the protocol (seq within 1..=2^63-1, clock within the
//! skew, timestamps within their window, finite values, no reserved label)
//! and survives a round trip; the engine either applies it or refuses it
//! over a limit, and its state stays within the limits.
#![no_main]

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vedette_collector::config::Config;
use vedette_collector::engine::{ApplyError, Engine};
use vedette_collector::metrics::Metrics;
use vedette_collector::state::State;
use vedette_collector::store::Store;
use vedette_protocol::{
    decode, Encoding, Limits, RejectionKind, MAX_SEQ, RESERVED_CHECK_LABELS, RESERVED_SAMPLE_LABELS,
};

const NOW: i64 = 1_763_700_000_000;

/// An integer as the wire may carry it (any JSON number text).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Int {
    Zero,
    MinusOne,
    One,
    I64Min,
    I64Max,
    /// 2^63: one past i64.
    PastI64,
    U64Max,
    /// 2^64: one past u64.
    PastU64,
    MinusPastI64,
    /// The collector's clock plus an offset.
    Now(i32),
    /// The clock plus days.
    NowDays(i16),
    Small(u16),
    Any(i64),
    AnyU(u64),
    Fraction(i32),
}

impl Int {
    fn text(self) -> String {
        match self {
            Int::Zero => "0".into(),
            Int::MinusOne => "-1".into(),
            Int::One => "1".into(),
            Int::I64Min => i64::MIN.to_string(),
            Int::I64Max => i64::MAX.to_string(),
            Int::PastI64 => "9223372036854775808".into(),
            Int::U64Max => u64::MAX.to_string(),
            Int::PastU64 => "18446744073709551616".into(),
            Int::MinusPastI64 => "-9223372036854775809".into(),
            Int::Now(off) => (i128::from(NOW) + i128::from(off)).to_string(),
            Int::NowDays(d) => (i128::from(NOW) + i128::from(d) * 86_400_000).to_string(),
            Int::Small(n) => n.to_string(),
            Int::Any(n) => n.to_string(),
            Int::AnyU(n) => n.to_string(),
            Int::Fraction(n) => format!("{n}.5"),
        }
    }
}

/// A float as the wire may carry it.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Num {
    Zero,
    NegZero,
    Tiny,
    Huge,
    NegHuge,
    /// Overflows f64: serde refuses it.
    Overflow,
    Int(Int),
    Any(f64),
}

impl Num {
    fn text(self) -> String {
        match self {
            Num::Zero => "0.0".into(),
            Num::NegZero => "-0.0".into(),
            Num::Tiny => "5e-324".into(),
            Num::Huge => "1.7976931348623157e308".into(),
            Num::NegHuge => "-1.7976931348623157e308".into(),
            Num::Overflow => "1e999".into(),
            Num::Int(i) => i.text(),
            // Non-finite floats have no JSON text: send a string instead.
            Num::Any(f) if f.is_finite() => format!("{f:e}"),
            Num::Any(_) => "\"NaN\"".into(),
        }
    }
}

/// Names and values from a small alphabet, so collisions and reserved
/// names are common.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Word {
    Host,
    Source,
    Check,
    Le,
    Alertname,
    A,
    B,
    Eq,
    Nul,
    Esc,
    Empty,
    Long,
    Dunder,
}

impl Word {
    fn text(self) -> String {
        match self {
            Word::Host => "host".into(),
            Word::Source => "source".into(),
            Word::Check => "check".into(),
            Word::Le => "le".into(),
            Word::Alertname => "alertname".into(),
            Word::A => "a".into(),
            Word::B => "b".into(),
            Word::Eq => "a=b".into(),
            Word::Nul => "b\u{0}c=d".into(),
            Word::Esc => "\u{1b}[2J".into(),
            Word::Empty => String::new(),
            Word::Long => "x".repeat(300),
            Word::Dunder => "__a".into(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Sample {
    name: Word,
    metric: u8,
    labels: Vec<(Word, Word)>,
    ts: Int,
    value: Num,
}

#[derive(Arbitrary, Debug)]
struct Check {
    name: u8,
    status: u8,
    labels: Vec<(Word, Word)>,
    ts: Int,
    latency: Num,
}

#[derive(Arbitrary, Debug)]
struct Input {
    host: u8,
    boot: u8,
    seq: Int,
    sent: Int,
    interval: Num,
    samples: Vec<Sample>,
    checks: Vec<Check>,
    gzip: bool,
    tick_minutes: u8,
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

fn labels(l: &[(Word, Word)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in l.iter().take(20).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}:{}", json_str(&k.text()), json_str(&v.text()));
    }
    out.push('}');
    out
}

fn body(input: &Input) -> String {
    const METRICS: [&str; 4] = [
        "filesystem_used_ratio",
        "cpu_usage_ratio",
        "incident_detection_seconds_bucket",
        "fooBar",
    ];
    const STATUS: [&str; 5] = ["ok", "warning", "critical", "unknown", "bogus"];
    let samples: Vec<String> = input
        .samples
        .iter()
        .take(64)
        .map(|s| {
            let name = match s.name {
                Word::A => METRICS[usize::from(s.metric) % METRICS.len()].to_string(),
                w => w.text(),
            };
            format!(
                r#"{{"name":{},"labels":{},"ts_ms":{},"value":{}}}"#,
                json_str(&name),
                labels(&s.labels),
                s.ts.text(),
                s.value.text()
            )
        })
        .collect();
    let checks: Vec<String> = input
        .checks
        .iter()
        .take(16)
        .map(|c| {
            format!(
                r#"{{"name":"c{}","kind":"tcp","labels":{},"ts_ms":{},"status":"{}","latency_s":{}}}"#,
                c.name % 4,
                labels(&c.labels),
                c.ts.text(),
                STATUS[usize::from(c.status) % STATUS.len()],
                c.latency.text()
            )
        })
        .collect();
    format!(
        r#"{{"version":1,"agent":{{"host":"h{}","version":"f","boot_id":"b{}","interval_s":{}}},"seq":{},"sent_at_ms":{},"samples":[{}],"checks":[{}]}}"#,
        input.host % 4,
        input.boot % 3,
        input.interval.text(),
        input.seq.text(),
        input.sent.text(),
        samples.join(","),
        checks.join(",")
    )
}

/// The accepted batch holds every rule of the protocol.
fn check_accepted(b: &vedette_protocol::Batch, limits: &Limits) {
    assert!((1..=MAX_SEQ).contains(&b.seq), "seq {}", b.seq);
    assert!(
        (i128::from(b.sent_at_ms) - i128::from(NOW)).abs() <= i128::from(limits.max_clock_skew_ms)
    );
    let window = |ts: i64| {
        let age = i128::from(b.sent_at_ms) - i128::from(ts);
        age <= i128::from(limits.max_sample_age_ms)
            && -age <= i128::from(limits.max_sample_future_ms)
    };
    for s in &b.samples {
        assert!(s.value.is_finite() && window(s.ts_ms));
        assert!(s
            .labels
            .keys()
            .all(|k| !RESERVED_SAMPLE_LABELS.contains(&k.as_str())));
    }
    for c in &b.checks {
        assert!(c.latency_s.is_finite() && c.latency_s >= 0.0 && window(c.ts_ms));
        assert!(c
            .labels
            .keys()
            .all(|k| !RESERVED_CHECK_LABELS.contains(&k.as_str())));
    }
    assert!(b.agent.interval_s.is_finite() && b.agent.interval_s > 0.0);
}

struct Harness {
    engine: Engine,
    state: Arc<RwLock<State>>,
    now: i64,
    runs: u32,
}

/// A fresh engine (rebuilt every few thousand inputs, so the in-memory
/// store's incident history does not grow without end across a campaign).
fn harness() -> Harness {
    let yaml = "rules:
  - {name: host_down, absent_for: 60s}
  - {name: disk_full, metric: filesystem_used_ratio, above: 0.9, for: 1m, resolve_after: 1m}
  - {name: cpu, metric: cpu_usage_ratio, above: 0.9, clear_below: 0.5}
  - {name: checks, check: '*', status: warning, failures: {count: 2, of: 3}}
limits: {series_per_host: 200, series_total: 600, checks_per_host: 8, hosts_per_token: 3}
forget_series_after: 1m
forget_hosts_after: 1m
";
    let config = Config::from_yaml("fuzz.yaml", yaml).expect("the fuzz config is valid");
    let state = Arc::new(RwLock::new(State::default()));
    let metrics = Arc::new(Metrics::new(
        Arc::clone(&state),
        Arc::clone(&config.reporting),
    ));
    let store = Store::in_memory().expect("an in-memory store");
    let engine = Engine::new(
        config.engine_setup(),
        store,
        None,
        Arc::clone(&state),
        metrics,
        NOW,
    )
    .expect("an engine over an empty store");
    Harness {
        engine,
        state,
        now: NOW,
        runs: 0,
    }
}

thread_local! {
    static ENGINE: RefCell<Harness> = RefCell::new(harness());
}

fuzz_target!(|input: Input| {
    let text = body(&input);
    let limits = Limits::default();
    let (bytes, encoding) = if input.gzip {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).expect("gzip into memory");
        (gz.finish().expect("gzip into memory"), Encoding::Gzip)
    } else {
        (text.into_bytes(), Encoding::Identity)
    };
    let batch = match decode(&bytes, encoding, &limits, NOW) {
        Ok(b) => b,
        Err(r) => {
            assert!(matches!(
                r.kind,
                RejectionKind::Invalid
                    | RejectionKind::TooLarge
                    | RejectionKind::UnsupportedEncoding
            ));
            if let Some(f) = &r.field {
                assert!(!f.is_empty());
            }
            return;
        }
    };
    check_accepted(&batch, &limits);
    let again = serde_json::to_vec(&batch).expect("an accepted batch serializes");
    let back = decode(&again, Encoding::Identity, &limits, NOW).expect("re-encoded, accepted");
    assert_eq!(batch, back);

    ENGINE.with(|h| {
        let mut h = h.borrow_mut();
        h.runs += 1;
        if h.runs > 5_000 {
            *h = harness();
        }
        // The engine's clock moves forward with each input, within a day.
        h.now = h.now.max(batch.sent_at_ms);
        let now = h.now;
        match h
            .engine
            .apply_as(&batch, Some(u64::from(input.host % 2)), now)
        {
            Ok(ack) => assert_eq!(ack.ack_seq, batch.seq),
            Err(ApplyError::Limited(l)) => assert!([413, 429].contains(&l.limit.status())),
            Err(ApplyError::Store(e)) => panic!("an in-memory store failed: {e}"),
        }
        let later = now + i64::from(input.tick_minutes) * 60_000;
        h.engine.tick(later);
        h.now = later;
        let st = h.state.read().expect("state lock");
        let held: usize = st.hosts.values().map(|h| h.series_len()).sum();
        assert_eq!(
            held, st.series_total,
            "the series count agrees with the hosts"
        );
        assert!(st.series_total <= 600, "limits.series_total holds");
        assert!(st
            .hosts
            .values()
            .all(|h| h.series_len() <= 200 && h.check_up.len() <= 8));
    });
});
