use super::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    listen: Option<String>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // only deserialized, to exercise unknown-field errors
struct RawRule {
    name: String,
    #[serde(default)]
    above: Option<f64>,
}

const DOC: &str = "\
listen: 127.0.0.1:9850
rules:
  - name: a
    above: 1
  - name: b
    above: 2
agents:
  - {token: x, hosts: [\"web-*\", db]}
";

#[test]
fn positions_of_keys_and_elements() {
    let p = Positions::index(DOC);
    assert_eq!(p.locate("listen"), (1, 1));
    assert_eq!(p.locate("rules"), (2, 1));
    assert_eq!(p.locate("rules[0]"), (3, 5));
    assert_eq!(p.locate("rules[1].above"), (6, 5));
    assert_eq!(p.locate("agents[0].hosts[1]"), (8, 33));
    // Unknown paths fall back to the nearest ancestor.
    assert_eq!(p.locate("rules[1].above.deep"), (6, 5));
    assert_eq!(p.locate("nowhere"), (1, 1));
}

#[test]
fn unknown_key_names_key_line_and_column() {
    let e = parse::<Raw>("c.yaml", "rules:\n  - name: a\n    abve: 1\n").unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("c.yaml:3:5: "), "{text}");
    assert!(text.contains("unknown field `abve`"), "{text}");
    assert!(!text.contains(" at line "), "{text}");
}

#[test]
fn syntax_error_is_located() {
    let e = parse::<Raw>("c.yaml", "listen: [unclosed\n").unwrap_err();
    assert_eq!(e.diagnostics.len(), 1);
    assert!(e.to_string().starts_with("c.yaml:"), "{e}");
}

#[test]
fn blank_document_is_an_empty_mapping() {
    let raw = parse::<Raw>("c.yaml", "# nothing here\n\n").unwrap();
    assert!(raw.listen.is_none() && raw.rules.is_empty());
}

#[test]
fn diagnostics_collect_every_problem_in_file_order() {
    let mut d = Diagnostics::new(DOC);
    d.push("rules[1].above", "must be finite");
    d.push("listen", "not loopback");
    let e = d.finish("c.yaml", ()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "c.yaml:1:1: listen: not loopback\nc.yaml:6:5: rules[1].above: must be finite"
    );
}
