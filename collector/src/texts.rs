//! Incident `summary` and `description` templates (minijinja, Jinja syntax).
//!
//! Every template is compiled and checked when the configuration loads: a
//! syntax error or a variable outside [`VARIABLES`] is a config error, so a
//! typo never turns into an empty summary at 3 a.m. Rendering is strict
//! (an undefined attribute is an error) and falls back to the built-in text
//! with the error logged, never to a half-rendered string.

use std::collections::BTreeMap;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

/// The variables a template may use.
pub(crate) const VARIABLES: &[&str] = &[
    "rule",
    "host",
    "value",
    "threshold",
    "labels",
    "host_labels",
    "metric",
    "check",
    "message",
];

/// What a template sees.
#[derive(Debug, Clone, Serialize)]
pub struct Context<'a> {
    pub rule: &'a str,
    pub host: &'a str,
    /// The breaching value (seconds silent for heartbeats, 0–3 for check status).
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    /// The series' (or check's) labels.
    pub labels: &'a BTreeMap<String, String>,
    pub host_labels: &'a BTreeMap<String, String>,
    /// The metric of a threshold rule (else empty).
    pub metric: &'a str,
    /// The check of a check rule (else empty).
    pub check: &'a str,
    /// The check's message (else empty).
    pub message: &'a str,
}

/// Compiled templates, keyed by name (`<rule>.summary`, `<rule>.description`).
#[derive(Debug)]
pub struct Texts {
    env: Environment<'static>,
}

impl Default for Texts {
    fn default() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Plain text, not HTML: no escaping.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        Texts { env }
    }
}

impl Texts {
    /// Compiles `source` under `name`. Errors are sentences for a config diagnostic.
    pub fn add(&mut self, name: String, source: String) -> Result<(), String> {
        self.env
            .add_template_owned(name.clone(), source)
            .map_err(|e| format!("template error: {}", describe(&e)))?;
        let tpl = self
            .env
            .get_template(&name)
            .map_err(|e| format!("template error: {}", describe(&e)))?;
        let mut unknown: Vec<String> = tpl
            .undeclared_variables(false)
            .into_iter()
            .filter(|v| !VARIABLES.contains(&v.as_str()))
            .collect();
        if !unknown.is_empty() {
            unknown.sort();
            self.env.remove_template(&name);
            return Err(format!(
                "unknown template variable{} {}; available: {}",
                if unknown.len() > 1 { "s" } else { "" },
                unknown.join(", "),
                VARIABLES.join(", ")
            ));
        }
        Ok(())
    }

    /// True when a template named `name` was configured.
    pub fn has(&self, name: &str) -> bool {
        self.env.get_template(name).is_ok()
    }

    /// Renders `name`, or None when it is not configured. A render error
    /// (e.g. `labels.nope` on a series without that label) is logged and
    /// yields None, so the caller uses its built-in text.
    pub fn render(&self, name: &str, ctx: &Context<'_>) -> Option<String> {
        let tpl = self.env.get_template(name).ok()?;
        match tpl.render(ctx) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(template = name, error = %describe(&e), "template failed to render; using the built-in text");
                None
            }
        }
    }
}

fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(d) => format!("{} ({d})", e.kind()),
        None => e.kind().to_string(),
    }
}

#[cfg(test)]
mod tests;
