//! Hosts' latest samples and check results, rendered from a [`State`]
//! snapshot at scrape time (a custom collector: a series an agent stops
//! sending leaves `/metrics` with it), with the availability KPIs per host
//! and service; a name or label an agent sends that the exposition format or
//! our own families reserve is withheld and counted.

use super::*;
use crate::state::HostState;

/// Reads host state at scrape time.
pub(super) struct HostsExport {
    pub(super) state: Arc<RwLock<State>>,
    /// Swapped by a config reload.
    pub(super) reporting: RwLock<Arc<Reporting>>,
}

impl HostsExport {
    pub(super) fn reporting(&self) -> Arc<Reporting> {
        Arc::clone(&self.reporting.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The state as of now: the lock is held only to copy the host map's
    /// pointers, so pushes go on while a scrape formats.
    pub(super) fn snapshot(&self) -> State {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// One family written straight as text exposition: at 10,000 hosts,
/// building protobuf `Metric`s for the encoder cost five times the
/// formatting itself (`examples/metrics_render.rs`).
pub(super) struct Family {
    pub(super) name: String,
    pub(super) help: String,
    pub(super) kind: &'static str,
    pub(super) body: String,
}

impl Family {
    pub(super) fn new(name: &str, help: &str, kind: &'static str) -> Family {
        Family {
            name: name.to_string(),
            help: help.to_string(),
            kind,
            body: String::new(),
        }
    }

    pub(super) fn gauge(name: &str, help: &str) -> Family {
        Family::new(name, help, "gauge")
    }

    /// One sample line with `labels` then `more` labels.
    pub(super) fn add<'a>(
        &mut self,
        labels: &[(&'a str, &'a str)],
        more: impl IntoIterator<Item = (&'a str, &'a str)>,
        value: f64,
    ) {
        let b = &mut self.body;
        b.push_str(&self.name);
        let mut sep = '{';
        for (k, v) in labels.iter().copied().chain(more) {
            b.push(sep);
            sep = ',';
            b.push_str(k);
            b.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => b.push_str("\\\\"),
                    '"' => b.push_str("\\\""),
                    '\n' => b.push_str("\\n"),
                    c => b.push(c),
                }
            }
            b.push('"');
        }
        if sep == ',' {
            b.push('}');
        }
        b.push(' ');
        if value.is_nan() {
            b.push_str("NaN");
        } else if value.is_infinite() {
            b.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(b, "{value}");
        }
        b.push('\n');
    }

    /// `# HELP`, `# TYPE` and the samples; nothing for a family without samples.
    pub(super) fn write_to(&self, out: &mut String) {
        if self.body.is_empty() {
            return;
        }
        let help = self.help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(out, "# HELP {} {help}", self.name);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        out.push_str(&self.body);
    }
}

impl HostsExport {
    /// The families this export owns (agent samples may not shadow them),
    /// with their help texts.
    pub(super) const FAMILIES: [(&'static str, &'static str); 13] = [
        (
            "vedette_host_up",
            "1 when the host's agent has pushed within its heartbeat limit, 0 when it has not; absent while unknown (just after a collector restart).",
        ),
        (
            "vedette_check_up",
            "1 when the check's latest result is ok or warning, 0 when critical; absent while unknown.",
        ),
        (
            "vedette_host_availability_ratio",
            "Host heartbeat availability over the rolling window: up / (up + down) time; unknown and planned time excluded.",
        ),
        (
            "vedette_host_unknown_seconds",
            "Time in the window the host's state was unknown (collector down, not heard from yet), excluded from the ratio.",
        ),
        (
            "vedette_check_availability_ratio",
            "Check availability over the rolling window: up (ok, warning) / (up + down (critical)) time; unknown and planned time excluded.",
        ),
        (
            "vedette_check_unknown_seconds",
            "Time in the window the check's state was unknown (unknown status, host silent, collector down), excluded from the ratio.",
        ),
        (
            "vedette_service_availability_ratio",
            "Service availability over the rolling window (checks combined by mode all|any): up / (up + down) time; unknown and planned time excluded.",
        ),
        (
            "vedette_service_unknown_seconds",
            "Time in the window the service's state was unknown, excluded from the ratio.",
        ),
        (
            "vedette_service_planned_seconds",
            "Time in the window covered by changes or maintenance windows, excluded from the agreed time.",
        ),
        (
            "vedette_service_sla_target_ratio",
            "The service's SLA target as a ratio.",
        ),
        (
            "vedette_service_error_budget_remaining_ratio",
            "Error budget left over the window: 1 - (1 - availability) / (1 - target); negative once overspent.",
        ),
        (
            "vedette_service_error_budget_burn_rate",
            "Error budget burn rate over the window: (1 - availability) / (1 - target); 1 spends the budget exactly over the SLA period.",
        ),
        (
            "vedette_collector_downtime_seconds",
            "Time in the window the collector itself was not running (between a run's last alive mark and the next start).",
        ),
    ];

    /// Writes every per-host and per-service family to `out`.
    pub(super) fn write(&self, now_ms: i64, reserved: &HashSet<String>, out: &mut String) {
        let state = self.snapshot();
        let reporting = &*self.reporting();
        let mut x = Exposition::new(reserved);
        let planned = Planned::new(reporting, &state, now_ms);
        let hosts = kpi::visible_hosts(reporting, &state, now_ms);
        for &(host, h) in &hosts {
            let spans = planned.for_host(host, &h.labels);
            x.availability(host, h, &spans, now_ms);
            x.series(host, h);
        }
        for svc in kpi::services_of(reporting, &hosts, &planned, now_ms) {
            x.service(&svc);
        }
        for (&(window, _), secs) in WINDOWS.iter().zip(kpi::collector_downtime(&state, now_ms)) {
            x.downtime.add(&[("window", window)], [], secs);
        }
        x.write_to(out);
    }
}

/// One `/metrics` rendering of hosts and services, family by family.
struct Exposition<'r> {
    reserved: &'r HashSet<String>,
    host_up: Family,
    check_up: Family,
    host_ratio: Family,
    host_unknown: Family,
    check_ratio: Family,
    check_unknown: Family,
    svc_ratio: Family,
    svc_unknown: Family,
    svc_planned: Family,
    svc_target: Family,
    svc_budget: Family,
    svc_burn: Family,
    downtime: Family,
    /// Agent samples by family name; None: withheld.
    samples: BTreeMap<String, Option<Family>>,
    /// Series withheld: shadows_own, name_lint, label_lint.
    withheld: [u64; 3],
}

impl<'r> Exposition<'r> {
    fn new(reserved: &'r HashSet<String>) -> Exposition<'r> {
        let [host_up, check_up, host_ratio, host_unknown, check_ratio, check_unknown, svc_ratio, svc_unknown, svc_planned, svc_target, svc_budget, svc_burn, downtime] =
            HostsExport::FAMILIES.map(|(name, help)| Family::gauge(name, help));
        Exposition {
            reserved,
            host_up,
            check_up,
            host_ratio,
            host_unknown,
            check_ratio,
            check_unknown,
            svc_ratio,
            svc_unknown,
            svc_planned,
            svc_target,
            svc_budget,
            svc_burn,
            downtime,
            samples: BTreeMap::new(),
            withheld: [0; 3],
        }
    }

    /// The host's and its checks' up state and availability per window.
    fn availability(&mut self, host: &str, h: &HostState, spans: &[(i64, i64)], now_ms: i64) {
        if let Some(v) = up_value(h.up.current()) {
            self.host_up.add(&[("host", host)], [], v);
        }
        for ((window, _), t) in WINDOWS.iter().zip(kpi::windows(&h.up, spans, now_ms)) {
            let l = [("host", host), ("window", window)];
            if let Some(r) = t.ratio() {
                self.host_ratio.add(&l, [], r);
            }
            self.host_unknown.add(&l, [], t.unknown_ms as f64 / 1000.0);
        }
        let mut checks: Vec<_> = h.check_up.iter().collect();
        checks.sort_by(|a, b| a.0.cmp(b.0));
        for (check, tl) in checks {
            if let Some(v) = up_value(tl.current()) {
                self.check_up
                    .add(&[("host", host), ("check", check)], [], v);
            }
            for ((window, _), t) in WINDOWS.iter().zip(kpi::windows(tl, spans, now_ms)) {
                let l = [("host", host), ("check", check), ("window", window)];
                if let Some(r) = t.ratio() {
                    self.check_ratio.add(&l, [], r);
                }
                self.check_unknown.add(&l, [], t.unknown_ms as f64 / 1000.0);
            }
        }
    }

    /// The host's latest samples, each under `vedette_<name>` unless the
    /// name or a label is withheld.
    fn series(&mut self, host: &str, h: &HostState) {
        let reserved = self.reserved;
        for (name, labels, point) in h.series() {
            let fq = format!("vedette_{name}");
            let fam = self.samples.entry(fq).or_insert_with_key(|fq| {
                // `processes_total` is the agent's deprecated name of the
                // `processes` gauge: a gauge ending in `_total` is what
                // promlint refuses, and `vedette_processes` says it.
                if reserved.contains(fq) || !lint::name_is_clean(fq) || name == "processes_total" {
                    return None;
                }
                Some(Family::new(
                    fq,
                    &format!("Latest {name} sample reported by each host's agent."),
                    if name.ends_with("_total") {
                        "counter"
                    } else {
                        "gauge"
                    },
                ))
            });
            let Some(fam) = fam else {
                let why = if reserved.contains(&format!("vedette_{name}")) {
                    0
                } else {
                    1
                };
                self.withheld[why] += 1;
                continue;
            };
            if !labels.keys().all(|k| lint::label_is_clean(k)) {
                self.withheld[2] += 1;
                continue;
            }
            fam.add(
                &[("host", host)],
                labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                point.value,
            );
        }
    }

    /// A service's target, availability, budget and burn rates per window.
    fn service(&mut self, svc: &ServiceReport) {
        let name = svc.name.as_str();
        self.svc_target.add(&[("service", name)], [], svc.target);
        for w in &svc.windows {
            let l = [("service", name), ("window", w.window)];
            if let Some(a) = w.availability {
                self.svc_ratio.add(&l, [], a);
            }
            if let Some(b) = w.error_budget_remaining {
                self.svc_budget.add(&l, [], b);
            }
            self.svc_unknown.add(&l, [], w.unknown_seconds);
            self.svc_planned.add(&l, [], w.planned_seconds);
        }
        for (window, rate) in &svc.burn_rates {
            if let Some(r) = rate {
                self.svc_burn
                    .add(&[("service", name), ("window", window)], [], *r);
            }
        }
    }

    fn write_to(self, out: &mut String) {
        let mut held = Family::gauge(
            WITHHELD,
            "Agent series left out of this exposition (still evaluated by rules), by reason: shadows_own (the name of one of the collector's own series), name_lint or label_lint (promtool's linter would refuse the name or a label name).",
        );
        for (reason, n) in ["shadows_own", "name_lint", "label_lint"]
            .iter()
            .zip(self.withheld)
        {
            held.add(&[("reason", reason)], [], n as f64);
        }
        for f in [
            &self.host_up,
            &self.check_up,
            &self.host_ratio,
            &self.host_unknown,
            &self.check_ratio,
            &self.check_unknown,
            &self.svc_ratio,
            &self.svc_unknown,
            &self.svc_planned,
            &self.svc_target,
            &self.svc_budget,
            &self.svc_burn,
            &self.downtime,
            &held,
        ]
        .into_iter()
        .chain(self.samples.values().flatten())
        {
            f.write_to(out);
        }
    }
}

/// The family counting agent series left out of `/metrics`.
pub(super) const WITHHELD: &str = "vedette_metrics_withheld_series";

/// Every series name Prometheus' text formats derive from the families
/// `own` (classic and OpenMetrics: `_total`, `_created`, `_sum`, `_count`,
/// `_bucket`, `_info`), and the families themselves.
pub(super) fn reserved_names(own: &HashSet<String>) -> HashSet<String> {
    let mut out = HashSet::new();
    for f in own {
        let base = f.strip_suffix("_total").unwrap_or(f);
        for b in [f.as_str(), base] {
            out.insert(b.to_string());
            for suffix in ["_total", "_created", "_sum", "_count", "_bucket", "_info"] {
                out.insert(format!("{b}{suffix}"));
            }
        }
    }
    out
}

/// What `promtool check metrics` (client_golang's promlint) refuses in a
/// name, so agent samples that would trip it are withheld instead.
pub(super) mod lint {
    /// Base units, and the non-base units promlint maps to them.
    pub(super) const UNITS: &[(&str, &str)] = &[
        ("amperes", "amperes"),
        ("bytes", "bytes"),
        ("celsius", "celsius"),
        ("grams", "grams"),
        ("joules", "joules"),
        ("kelvin", "kelvin"),
        ("meters", "meters"),
        ("metres", "metres"),
        ("seconds", "seconds"),
        ("volts", "volts"),
        ("minutes", "seconds"),
        ("hours", "seconds"),
        ("days", "seconds"),
        ("weeks", "seconds"),
        ("kelvins", "kelvin"),
        ("fahrenheit", "celsius"),
        ("rankine", "celsius"),
        ("inches", "meters"),
        ("yards", "meters"),
        ("miles", "meters"),
        ("bits", "bytes"),
        ("calories", "joules"),
        ("pounds", "grams"),
        ("ounces", "grams"),
    ];
    pub(super) const PREFIXES: &[&str] = &[
        "pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo", "kibi", "mega",
        "mibi", "giga", "gibi", "tera", "tebi", "peta", "pebi",
    ];
    pub(super) const ABBREVIATIONS: &[&str] = &[
        "s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d",
    ];
    pub(super) const TYPES: &[&str] = &[
        "counter",
        "gauge",
        "histogram",
        "summary",
        "gauge_histogram",
    ];

    pub(super) fn camel(s: &str) -> bool {
        s.as_bytes()
            .windows(2)
            .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase())
    }

    pub(super) fn has_part(name: &str, part: &str) -> bool {
        name.ends_with(&format!("_{part}")) || name.contains(&format!("_{part}_"))
    }

    /// True when promlint would say nothing about a gauge or counter with
    /// this name (a counter ending in `_total`, a gauge not).
    pub(crate) fn name_is_clean(name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        let unit_ok = lower.split('_').all(|part| {
            let unit = UNITS.iter().find(|(u, _)| *u == part).or_else(|| {
                PREFIXES.iter().find_map(|p| {
                    let rest = part.strip_prefix(p)?;
                    UNITS.iter().find(|(u, _)| *u == rest)
                })
            });
            unit.is_none_or(|(u, base)| u == base && part == *u)
        });
        unit_ok
            && !camel(name)
            && !name.contains(':')
            && !ABBREVIATIONS.iter().any(|a| has_part(&lower, a))
            && !TYPES.iter().any(|t| has_part(&lower, t))
            && !["_bucket", "_count", "_sum"]
                .iter()
                .any(|s| name.ends_with(s))
    }

    /// True when promlint would say nothing about this label name on a
    /// gauge or counter.
    pub(crate) fn label_is_clean(label: &str) -> bool {
        !camel(label) && label != "le" && label != "quantile"
    }
}

/// A subject's state as a `_up` gauge value; unknown is left out.
pub(super) fn up_value(a: Avail) -> Option<f64> {
    match a {
        Avail::Up => Some(1.0),
        Avail::Down => Some(0.0),
        Avail::Unknown => None,
    }
}
