//! `vedette-collector incidents|problems|changes …`: a client of the
//! collector's REST API, with a table for people and `--json` for scripts.
//!
//! What the API returns carries text agents and Alertmanager sent (hosts,
//! labels, check messages, summaries): hostile until shown otherwise. No
//! character a terminal acts on instead of printing (controls, bidi
//! overrides) reaches the terminal raw: tables and details escape them
//! visibly (`\x1b`), `--json` as `\u001b` (still the same JSON).

use std::fmt::Write as _;

use anyhow::{bail, Context};
use serde_json::Value;

/// TLS for the API client.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    pub ca_file: Option<std::path::PathBuf>,
    pub cert_file: Option<std::path::PathBuf>,
    pub key_file: Option<std::path::PathBuf>,
}

/// Where and how to reach the API.
pub struct Client {
    pub url: String,
    pub token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// `tls`: a private CA the collector's certificate is signed by, and a
    /// client pair for a collector that requires client certificates.
    pub fn new(url: &str, token: Option<String>, tls: &ClientTls) -> anyhow::Result<Client> {
        let mut http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30));
        if let Some(f) = &tls.ca_file {
            for der in crate::tls::read_certs(f, "ca_file")? {
                http = http.add_root_certificate(reqwest::Certificate::from_der(&der)?);
            }
        }
        if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
            let mut pem =
                std::fs::read(cert).with_context(|| format!("cannot read {}", cert.display()))?;
            pem.extend(
                std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?,
            );
            http = http.identity(reqwest::Identity::from_pem(&pem).with_context(|| {
                format!(
                    "{} and {}: not a PEM certificate and key",
                    cert.display(),
                    key.display()
                )
            })?);
        }
        let http = http.build()?;
        Ok(Client {
            url: url.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the collector at {}", self.url))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let msg = visible(body["error"].as_str().unwrap_or("no error message")).into_owned();
            match body["field"].as_str() {
                Some(field) => bail!("{status}: {}: {msg}", visible(field)),
                None => bail!("{status}: {msg}"),
            }
        }
        Ok(body)
    }

    /// `GET {path}` with optional query pairs.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.url)).query(query))
            .await
    }

    /// `POST {path}` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.http.post(format!("{}{path}", self.url)).json(body))
            .await
    }

    /// `GET /api/v1/incidents[?state=]`.
    pub async fn list(&self, state: Option<&str>) -> anyhow::Result<Value> {
        let q: Vec<(&str, &str)> = state.map(|s| ("state", s)).into_iter().collect();
        self.get("/api/v1/incidents", &q).await
    }

    /// `GET /api/v1/incidents/{id}`.
    pub async fn show(&self, id: i64) -> anyhow::Result<Value> {
        self.get(&format!("/api/v1/incidents/{id}"), &[]).await
    }

    /// `POST /api/v1/incidents/{id}/{action}` with an optional note.
    pub async fn act(&self, id: i64, action: &str, note: Option<&str>) -> anyhow::Result<Value> {
        self.post(
            &format!("/api/v1/incidents/{id}/{action}"),
            &serde_json::json!({ "note": note }),
        )
        .await
    }
}

use vedette_daemon::{is_hazard, visible};

/// `v` as pretty JSON with the hazards JSON may carry raw (DEL, C1
/// controls, bidi marks) written as `\uXXXX`: the same JSON, safe to print.
/// (They can only stand inside strings, so the text is replaced as is.)
pub fn json_text(v: &Value) -> serde_json::Result<String> {
    let text = serde_json::to_string_pretty(v)?;
    if !text.chars().any(is_hazard_in_json) {
        return Ok(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_hazard_in_json(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Hazards serde_json leaves raw (it escapes C0 controls itself; the
/// newlines of pretty printing are structure).
fn is_hazard_in_json(c: char) -> bool {
    is_hazard(c) && c as u32 >= 0x7f
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => visible(s).into_owned(),
        other => visible(&other.to_string()).into_owned(),
    }
}

/// One column of a table: its heading and how to get a cell from a row.
pub type Column = (&'static str, fn(&Value) -> String);

/// Rows of a JSON array as an aligned table; the last column is not padded.
pub fn render(rows: &Value, columns: &[Column], empty: &str) -> String {
    let rows: Vec<Vec<String>> = rows
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| columns.iter().map(|(_, cell)| cell(r)).collect())
                .collect()
        })
        .unwrap_or_default();
    let head: Vec<String> = columns.iter().map(|(h, _)| h.to_string()).collect();
    let mut widths: Vec<usize> = head.iter().map(String::len).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&head).chain(&rows) {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(&widths).enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                let _ = write!(line, "{c:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if rows.is_empty() {
        let _ = writeln!(out, "({empty})");
    }
    out
}

/// A table of incidents, one per line.
pub fn table(incidents: &Value) -> String {
    render(
        incidents,
        &[
            ("ID", |i| text(&i["id"])),
            ("STATE", |i| {
                let s = text(&i["state"]);
                if i["flapping"] == Value::Bool(true) {
                    format!("{s}~")
                } else {
                    s
                }
            }),
            ("PRIO", |i| format!("P{}", text(&i["priority"]))),
            ("RULE", |i| text(&i["rule"])),
            ("HOST", |i| text(&i["host"])),
            ("DETECTED", |i| text(&i["detected_at"])),
            ("SUMMARY", |i| text(&i["summary"])),
        ],
        "no incidents",
    )
}

/// A table of problems.
pub fn problems_table(problems: &Value) -> String {
    render(
        problems,
        &[
            ("ID", |p| text(&p["id"])),
            ("STATE", |p| text(&p["state"])),
            ("RULE", |p| text(&p["rule"])),
            ("HOST", |p| text(&p["host"])),
            ("OPENED", |p| text(&p["opened_at"])),
            ("INCIDENTS", |p| {
                p["incident_ids"]
                    .as_array()
                    .map(|a| a.iter().map(text).collect::<Vec<_>>().join(","))
                    .unwrap_or_default()
            }),
        ],
        "no problems",
    )
}

/// A table of changes.
pub fn changes_table(changes: &Value) -> String {
    render(
        changes,
        &[
            ("ID", |c| text(&c["id"])),
            ("STATE", |c| text(&c["state"])),
            ("START", |c| text(&c["start"])),
            ("END", |c| text(&c["end"])),
            ("SCOPE", |c| scope(&c["scope"])),
            ("TITLE", |c| text(&c["title"])),
        ],
        "no changes",
    )
}

/// A table of services: availability per window (percent), budget left
/// over 30 days, burn rate over the last hour.
pub fn services_table(services: &Value) -> String {
    fn window(s: &Value, name: &str, field: &str) -> String {
        let w = s["windows"]
            .as_array()
            .and_then(|ws| ws.iter().find(|w| w["window"] == name));
        match w.and_then(|w| w[field].as_f64()) {
            Some(v) => format!("{:.3}%", v * 100.0),
            None => "-".into(),
        }
    }
    render(
        services,
        &[
            ("SERVICE", |s| text(&s["name"])),
            ("TARGET", |s| {
                s["target"]
                    .as_f64()
                    .map_or("-".into(), |t| format!("{:.3}%", t * 100.0))
            }),
            ("1H", |s| window(s, "1h", "availability")),
            ("1D", |s| window(s, "1d", "availability")),
            ("7D", |s| window(s, "7d", "availability")),
            ("30D", |s| window(s, "30d", "availability")),
            ("BUDGET_30D", |s| window(s, "30d", "error_budget_remaining")),
            ("BURN_1H", |s| {
                s["burn_rates"]["1h"]
                    .as_f64()
                    .map_or("-".into(), |b| format!("{b:.2}x"))
            }),
            ("CHECKS", |s| text(&s["members"])),
        ],
        "no services configured",
    )
}

fn scope(s: &Value) -> String {
    let mut parts: Vec<String> = s["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    if let Some(m) = s["host_labels"].as_object() {
        parts.extend(m.iter().map(|(k, v)| format!("{}={}", visible(k), text(v))));
    }
    parts.join(",")
}

/// Any single object as `key  value` lines (problems, changes).
pub fn fields(v: &Value) -> String {
    let mut out = String::new();
    for (k, val) in v.as_object().into_iter().flatten() {
        let shown = match val {
            Value::Object(_) => scope(val),
            Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(", "),
            other => text(other),
        };
        let _ = writeln!(out, "{:<16}{shown}", visible(k));
    }
    out
}

/// One incident with its timeline, for people.
pub fn detail(i: &Value) -> String {
    let mut out = String::new();
    for key in [
        "id",
        "state",
        "priority",
        "rule",
        "host",
        "labels",
        "summary",
        "description",
        "value",
        "threshold",
        "started_at",
        "detected_at",
        "acknowledged_at",
        "restored_at",
        "resolved_at",
        "closed_at",
        "resolution",
        "occurrences",
        "problem_id",
        "flapping",
        "fingerprint",
    ] {
        let _ = writeln!(out, "{key:<16}{}", text(&i[key]));
    }
    out.push_str("events:\n");
    for e in i["events"].as_array().into_iter().flatten() {
        let _ = write!(
            out,
            "  {}  {:<13} by {}",
            text(&e["at"]),
            text(&e["kind"]),
            text(&e["actor"])
        );
        if let Some(n) = e["note"].as_str() {
            let _ = write!(out, ": {}", visible(n));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests;
