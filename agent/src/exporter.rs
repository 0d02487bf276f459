//! The agent's local HTTP endpoint (loopback by default, `listen: off`
//! disables it): `GET /metrics` — its latest host sample as
//! `vedette_<name>{…labels}` plus its delivery health — and `GET /healthz`.
//! Plain hyper, no framework: the agent's footprint matters more here.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vedette_protocol::Sample;

use crate::checks::Pending;
use crate::push::Stats;
use crate::sample::Timeouts;

/// What the endpoint shows: shared with the sampling loop and delivery.
#[derive(Default)]
pub(crate) struct Exported {
    pub latest: Mutex<Vec<Sample>>,
    pub stats: Arc<Stats>,
    /// Per-source deadline misses.
    pub timeouts: Timeouts,
    /// Check results, for each check's latest status and duration.
    pub checks: Arc<Mutex<Pending>>,
}

/// Serves `listener` until `shutdown`.
pub(crate) async fn serve(
    listener: TcpListener,
    exported: Arc<Exported>,
    shutdown: CancellationToken,
) {
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let exported = Arc::clone(&exported);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let exported = Arc::clone(&exported);
                async move { Ok::<_, Infallible>(handle(&req, &exported)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "metrics connection ended with an error");
            }
        });
    }
}

fn handle<B>(req: &Request<B>, exported: &Exported) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            render(exported),
        ),
        (&Method::GET, "/healthz") => (StatusCode::OK, "text/plain", "ok\n".to_string()),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics or /healthz\n".to_string(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(v) = ctype.parse() {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// The Prometheus text exposition of the latest sample and delivery counters.
pub(crate) fn render(exported: &Exported) -> String {
    let mut out = String::new();
    render_delivery(&exported.stats, &mut out);
    render_timeouts(exported, &mut out);
    render_checks(exported, &mut out);
    render_samples(exported, &mut out);
    out
}

/// Pushes by outcome, dropped batches, the queue and the spool.
fn render_delivery(s: &Stats, out: &mut String) {
    out.push_str(
        "# HELP vedette_agent_push_total Push attempts by collector and outcome \
         (ok, rejected, http_4xx, http_5xx, tls_error, connect_error, timeout, transport_error).\n",
    );
    out.push_str("# TYPE vedette_agent_push_total counter\n");
    for ((collector, outcome), n) in s.pushes() {
        let _ = writeln!(
            out,
            "vedette_agent_push_total{{collector=\"{}\",outcome=\"{outcome}\"}} {n}",
            escape(&collector)
        );
    }
    out.push_str(
        "# HELP vedette_agent_collector_active 1 for the collector pushes go to now, 0 for the others.\n",
    );
    out.push_str("# TYPE vedette_agent_collector_active gauge\n");
    for (collector, active) in s.collectors() {
        let _ = writeln!(
            out,
            "vedette_agent_collector_active{{collector=\"{}\"}} {}",
            escape(&collector),
            u8::from(active)
        );
    }
    for (name, kind, help, value) in [
        (
            "vedette_agent_dropped_batches_total",
            "counter",
            "Batches dropped because the backlog was full or a spooled record was unreadable.",
            &s.dropped,
        ),
        (
            "vedette_agent_queue_batches",
            "gauge",
            "Batches waiting for the collector.",
            &s.queued,
        ),
        (
            "vedette_agent_spool_bytes",
            "gauge",
            "Bytes of unsent batches held in the spool (or memory).",
            &s.spool_bytes,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
            value.load(Ordering::Relaxed)
        );
    }
}

/// Host-metrics sources that missed their deadline.
fn render_timeouts(exported: &Exported, out: &mut String) {
    out.push_str("# HELP vedette_agent_source_timeouts_total Host metric sources skipped because they missed their deadline.\n");
    out.push_str("# TYPE vedette_agent_source_timeouts_total counter\n");
    {
        let timeouts = exported.timeouts.lock().unwrap_or_else(|p| p.into_inner());
        for (name, n) in timeouts.iter() {
            let _ = writeln!(
                out,
                "vedette_agent_source_timeouts_total{{source=\"{name}\"}} {n}"
            );
        }
    }
}

/// Each check's latest status and duration.
fn render_checks(exported: &Exported, out: &mut String) {
    let pending = exported.checks.lock().unwrap_or_else(|p| p.into_inner());
    if !pending.latest.is_empty() {
        out.push_str("# HELP vedette_agent_check_status Latest status of each check: 0 ok, 1 warning, 2 critical, 3 unknown.\n");
        out.push_str("# TYPE vedette_agent_check_status gauge\n");
        for (name, r) in &pending.latest {
            let _ = writeln!(
                out,
                "vedette_agent_check_status{{check=\"{name}\"}} {}",
                r.status as u8
            );
        }
        out.push_str(
            "# HELP vedette_agent_check_duration_seconds How long each check's latest run took.\n",
        );
        out.push_str("# TYPE vedette_agent_check_duration_seconds gauge\n");
        for (name, r) in &pending.latest {
            let _ = writeln!(
                out,
                "vedette_agent_check_duration_seconds{{check=\"{name}\"}} {}",
                r.latency_s
            );
        }
    }
}

/// This host's latest sample, one family per name.
fn render_samples(exported: &Exported, out: &mut String) {
    let latest = exported.latest.lock().unwrap_or_else(|p| p.into_inner());
    let mut by_name: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for sample in latest.iter() {
        by_name.entry(&sample.name).or_default().push(sample);
    }
    for (name, samples) in by_name {
        // `processes_total` is DESIGN's name for a gauge (a count, not a counter).
        let kind = if name.ends_with("_total") && name != "processes_total" {
            "counter"
        } else {
            "gauge"
        };
        let _ = writeln!(
            out,
            "# HELP vedette_{name} Latest {name} sample of this host."
        );
        let _ = writeln!(out, "# TYPE vedette_{name} {kind}");
        for sample in samples {
            let _ = write!(out, "vedette_{name}");
            if !sample.labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in sample.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", escape(v));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", sample.value);
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests;
