//! `vedette-collector incidents …`: a client of the collector's REST API, with
//! a table for people and `--json` for scripts.

use std::fmt::Write as _;

use anyhow::{bail, Context};
use serde_json::Value;

/// Where and how to reach the API.
pub struct Client {
    pub url: String,
    pub token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub fn new(url: &str, token: Option<String>) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
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
            let msg = body["error"].as_str().unwrap_or("no error message");
            bail!("{status}: {msg}");
        }
        Ok(body)
    }

    /// `GET /api/v1/incidents[?state=]`.
    pub async fn list(&self, state: Option<&str>) -> anyhow::Result<Value> {
        let mut req = self.http.get(format!("{}/api/v1/incidents", self.url));
        if let Some(s) = state {
            req = req.query(&[("state", s)]);
        }
        self.send(req).await
    }

    /// `GET /api/v1/incidents/{id}`.
    pub async fn show(&self, id: i64) -> anyhow::Result<Value> {
        self.send(self.http.get(format!("{}/api/v1/incidents/{id}", self.url)))
            .await
    }

    /// `POST /api/v1/incidents/{id}/{action}` with an optional note.
    pub async fn act(&self, id: i64, action: &str, note: Option<&str>) -> anyhow::Result<Value> {
        let body = serde_json::json!({ "note": note });
        self.send(
            self.http
                .post(format!("{}/api/v1/incidents/{id}/{action}", self.url))
                .json(&body),
        )
        .await
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A table of incidents, one per line.
pub fn table(incidents: &Value) -> String {
    let rows: Vec<[String; 7]> = incidents
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| {
                    [
                        text(&i["id"]),
                        text(&i["state"]),
                        format!("P{}", text(&i["priority"])),
                        text(&i["rule"]),
                        text(&i["host"]),
                        text(&i["detected_at"]),
                        text(&i["summary"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    let head = ["ID", "STATE", "PRIO", "RULE", "HOST", "DETECTED", "SUMMARY"].map(String::from);
    let mut widths = head.clone().map(|h| h.len());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&head).chain(&rows) {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(widths).enumerate() {
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
        out.push_str("(no incidents)\n");
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
            let _ = write!(out, ": {n}");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_and_says_when_empty() {
        let v = serde_json::json!([
            {"id": 12, "state": "open", "priority": 1, "rule": "host_down", "host": "web-01",
             "detected_at": "2026-11-21T03:00:00.000Z", "summary": "host_down on web-01"},
        ]);
        let t = table(&v);
        let lines: Vec<_> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("ID  STATE  PRIO  RULE"), "{t}");
        assert!(lines[1].starts_with("12  open   P1    host_down"), "{t}");
        assert!(table(&serde_json::json!([])).contains("(no incidents)"));
    }
}
