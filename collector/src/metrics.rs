//! The collector's `/metrics`: its own counters and gauges in a private
//! [`Registry`], plus every host's liveness and latest samples, read from
//! [`State`] at scrape time by [`HostsExport`] (a custom collector, so a
//! hundred thousand series cost nothing between scrapes).
//!
//! Names are contracts (DESIGN.md → KPIs). Agent samples are exported as
//! `vedette_<name>{host, …labels}`; a sample whose exported name would collide
//! with one of the collector's own families is skipped.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus::core::Collector;
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::state::State;

/// Outcomes of `POST /api/v1/push`, the values of `outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    Accepted,
    Duplicate,
    Invalid,
    TooLarge,
    Unsupported,
    Unauthorized,
    Forbidden,
    Throttled,
    Unavailable,
}

impl IngestOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            IngestOutcome::Accepted => "accepted",
            IngestOutcome::Duplicate => "duplicate",
            IngestOutcome::Invalid => "invalid",
            IngestOutcome::TooLarge => "too_large",
            IngestOutcome::Unsupported => "unsupported",
            IngestOutcome::Unauthorized => "unauthorized",
            IngestOutcome::Forbidden => "forbidden",
            IngestOutcome::Throttled => "throttled",
            IngestOutcome::Unavailable => "unavailable",
        }
    }
}

/// The collector's metrics.
pub struct Metrics {
    registry: Registry,
    /// Names of the families the collector owns; agent samples may not shadow them.
    own: HashSet<String>,
    hosts: HostsExport,
    pub incidents_open: IntGaugeVec,
    pub incidents_opened: IntCounterVec,
    pub incidents_resolved: IntCounterVec,
    pub ingest_batches: IntCounterVec,
    pub ingest_samples: IntCounter,
    pub problems_open: IntGauge,
    pub changes: IntCounterVec,
    pub suppressed: IntCounterVec,
}

impl Metrics {
    /// Registers every family. `heartbeat` is how long a host may be silent
    /// and still count as up (the `absent_for` of the heartbeat rule).
    pub fn new(state: Arc<RwLock<State>>, heartbeat: Option<Duration>) -> Metrics {
        let registry = Registry::new();
        let mut own = HashSet::new();
        let mut reg = |c: Box<dyn Collector>| {
            for d in c.desc() {
                own.insert(d.fq_name.clone());
            }
            // Names are static and distinct, so registration cannot fail.
            let _ = registry.register(c);
        };
        let incidents_open = IntGaugeVec::new(
            Opts::new(
                "vedette_incidents_open",
                "Live (open or acknowledged) incidents.",
            ),
            &["priority", "rule"],
        )
        .expect("static metric definition");
        let incidents_opened = IntCounterVec::new(
            Opts::new("vedette_incidents_opened_total", "Incidents opened."),
            &["priority", "rule"],
        )
        .expect("static metric definition");
        let incidents_resolved = IntCounterVec::new(
            Opts::new(
                "vedette_incidents_resolved_total",
                "Incidents resolved, automatically when the condition cleared or manually.",
            ),
            &["priority", "rule", "resolution"],
        )
        .expect("static metric definition");
        let ingest_batches = IntCounterVec::new(
            Opts::new("vedette_ingest_batches_total", "Push requests by outcome."),
            &["outcome"],
        )
        .expect("static metric definition");
        let ingest_samples = IntCounter::new(
            "vedette_ingest_samples_total",
            "Samples and check results applied from accepted batches.",
        )
        .expect("static metric definition");
        let problems_open = IntGauge::new(
            "vedette_problems_open",
            "Open problems (recurring incidents of one fingerprint).",
        )
        .expect("static metric definition");
        let changes = IntCounterVec::new(
            Opts::new(
                "vedette_changes_total",
                "Planned changes by outcome: failed when their scope breached within verify_for after the end.",
            ),
            &["outcome"],
        )
        .expect("static metric definition");
        let suppressed = IntCounterVec::new(
            Opts::new(
                "vedette_incidents_suppressed_total",
                "Breaches that opened no incident because a change or maintenance window covered them.",
            ),
            &["rule"],
        )
        .expect("static metric definition");
        reg(Box::new(problems_open.clone()));
        reg(Box::new(changes.clone()));
        reg(Box::new(suppressed.clone()));
        reg(Box::new(incidents_open.clone()));
        reg(Box::new(incidents_opened.clone()));
        reg(Box::new(incidents_resolved.clone()));
        reg(Box::new(ingest_batches.clone()));
        reg(Box::new(ingest_samples.clone()));
        own.insert(HOST_UP.to_string());
        Metrics {
            registry,
            own,
            hosts: HostsExport { state, heartbeat },
            incidents_open,
            incidents_opened,
            incidents_resolved,
            ingest_batches,
            ingest_samples,
            problems_open,
            changes,
            suppressed,
        }
    }

    /// Counts one push outcome.
    pub fn ingest(&self, outcome: IngestOutcome) {
        self.ingest_batches
            .with_label_values(&[outcome.as_str()])
            .inc();
    }

    /// The Prometheus text exposition of everything, at `now_ms`.
    pub fn render(&self, now_ms: i64) -> String {
        let mut families = self.registry.gather();
        families.extend(self.hosts.families(now_ms, &self.own));
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail on I/O; a malformed family is a bug.
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

const HOST_UP: &str = "vedette_host_up";

/// Reads host state at scrape time.
struct HostsExport {
    state: Arc<RwLock<State>>,
    heartbeat: Option<Duration>,
}

impl HostsExport {
    fn families(&self, now_ms: i64, own: &HashSet<String>) -> Vec<MetricFamily> {
        let Ok(state) = self.state.read() else {
            return Vec::new();
        };
        let mut up = family(
            HOST_UP,
            "1 when the host's agent has pushed within its heartbeat limit, else 0.",
            MetricType::GAUGE,
        );
        let mut samples: BTreeMap<String, MetricFamily> = BTreeMap::new();
        let mut hosts: Vec<_> = state.hosts.iter().collect();
        hosts.sort_by(|a, b| a.0.cmp(b.0));
        for (host, h) in hosts {
            let limit = self
                .heartbeat
                .map(|d| d.as_millis() as i64)
                .unwrap_or(3 * h.interval_ms);
            let is_up = now_ms.saturating_sub(h.last_seen_ms) < limit;
            up.mut_metric().push(gauge(
                vec![pair("host", host)],
                if is_up { 1.0 } else { 0.0 },
            ));
            for ((name, labels), point) in &h.series {
                let fq = format!("vedette_{name}");
                if own.contains(&fq) {
                    continue;
                }
                let counter = name.ends_with("_total");
                let fam = samples.entry(fq).or_insert_with_key(|fq| {
                    family(
                        fq,
                        &format!("Latest {name} sample reported by each host's agent."),
                        if counter {
                            MetricType::COUNTER
                        } else {
                            MetricType::GAUGE
                        },
                    )
                });
                let mut pairs = vec![pair("host", host)];
                pairs.extend(labels.iter().map(|(k, v)| pair(k, v)));
                let mut m = Metric::default();
                m.set_label(pairs);
                if counter {
                    let mut c = Counter::default();
                    c.set_value(point.value);
                    m.set_counter(c);
                } else {
                    let mut g = Gauge::default();
                    g.set_value(point.value);
                    m.set_gauge(g);
                }
                fam.mut_metric().push(m);
            }
        }
        let mut out = Vec::with_capacity(samples.len() + 1);
        if !up.get_metric().is_empty() {
            out.push(up);
        }
        out.extend(samples.into_values());
        out
    }
}

fn family(name: &str, help: &str, t: MetricType) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(help.to_string());
    f.set_field_type(t);
    f
}

fn pair(name: &str, value: &str) -> LabelPair {
    let mut p = LabelPair::default();
    p.set_name(name.to_string());
    p.set_value(value.to_string());
    p
}

fn gauge(labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut m = Metric::default();
    m.set_label(labels);
    let mut g = Gauge::default();
    g.set_value(value);
    m.set_gauge(g);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incidents::Labels;
    use crate::state::{HostState, Point};
    use crate::store::HostRecord;

    fn state() -> Arc<RwLock<State>> {
        let mut h = HostState::from_record(HostRecord {
            host: "web-01".into(),
            labels: Labels::new(),
            boot_id: "b".into(),
            last_seq: 1,
            last_seen_ms: 100_000,
            interval_ms: 10_000,
        });
        h.set_point(
            "memory_used_ratio",
            &Labels::new(),
            Point {
                ts_ms: 1,
                value: 0.5,
            },
        );
        h.set_point(
            "network_receive_bytes_total",
            &Labels::from([("interface".into(), "eth0".into())]),
            Point {
                ts_ms: 1,
                value: 1234.0,
            },
        );
        // Would shadow the collector's own family: skipped.
        h.set_point(
            "incidents_open",
            &Labels::new(),
            Point {
                ts_ms: 1,
                value: 99.0,
            },
        );
        let mut s = State::default();
        s.hosts.insert("web-01".into(), h);
        Arc::new(RwLock::new(s))
    }

    #[test]
    fn renders_hosts_samples_and_own_families() {
        let m = Metrics::new(state(), Some(Duration::from_secs(60)));
        m.ingest(IngestOutcome::Accepted);
        m.incidents_open
            .with_label_values(&["P3", "cpu_high"])
            .set(1);
        let text = m.render(150_000);
        for line in [
            "vedette_host_up{host=\"web-01\"} 1",
            "vedette_memory_used_ratio{host=\"web-01\"} 0.5",
            "# TYPE vedette_network_receive_bytes_total counter",
            "vedette_network_receive_bytes_total{host=\"web-01\",interface=\"eth0\"} 1234",
            "vedette_ingest_batches_total{outcome=\"accepted\"} 1",
            "vedette_incidents_open{priority=\"P3\",rule=\"cpu_high\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        assert!(
            !text.contains(" 99"),
            "agent sample shadowed an own family\n{text}"
        );
        assert_eq!(text.matches("# TYPE vedette_incidents_open ").count(), 1);
    }

    #[test]
    fn host_goes_down_after_its_heartbeat_limit() {
        let m = Metrics::new(state(), Some(Duration::from_secs(60)));
        assert!(m
            .render(159_999)
            .contains("vedette_host_up{host=\"web-01\"} 1"));
        assert!(m
            .render(160_000)
            .contains("vedette_host_up{host=\"web-01\"} 0"));
        // Without a heartbeat rule: three intervals.
        let m = Metrics::new(state(), None);
        assert!(m
            .render(130_000)
            .contains("vedette_host_up{host=\"web-01\"} 0"));
    }
}
