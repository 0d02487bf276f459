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
    let c = serde_json::json!([{"id": 3, "state": "verifying", "start": "a", "end": "b",
            "scope": {"hosts": ["web-*"], "host_labels": {"role": "db"}}, "title": "kernel"}]);
    let t = changes_table(&c);
    assert!(
        t.lines().nth(1).unwrap().ends_with("web-*,role=db  kernel"),
        "{t}"
    );
    let p = serde_json::json!([{"id": 1, "state": "open", "rule": "r", "host": "h",
            "opened_at": "t", "incident_ids": [4, 9]}]);
    assert!(problems_table(&p).lines().nth(1).unwrap().ends_with("4,9"));
}

/// Text an agent or Alertmanager could have sent: a colour escape, a
/// bell, a title-setting OSC, a C1 CSI, DEL, a newline and a
/// right-to-left override.
const HOSTILE: &str = "a\u{1b}[31mred\u{7}\u{1b}]0;pwned\u{7}\u{9b}2J\u{7f}\nforged\u{202e}txt";

fn no_hazard(out: &str) {
    for c in out.chars().filter(|&c| c != '\n') {
        assert!(!is_hazard(c), "{:?} reached the terminal in {out:?}", c);
    }
}

#[test]
fn data_never_reaches_the_terminal_raw() {
    let incident = serde_json::json!({
        "id": 1, "state": "open", "priority": 2, "rule": "r", "host": HOSTILE,
        "labels": {"k": HOSTILE}, "summary": HOSTILE, "description": HOSTILE,
        "detected_at": "t",
        "events": [{"at": "t", "kind": "opened", "actor": HOSTILE, "note": HOSTILE}]
    });
    let t = table(&serde_json::json!([incident.clone()]));
    no_hazard(&t);
    assert_eq!(t.lines().count(), 2, "the newline did not forge a row: {t}");
    assert!(t.contains("a\\x1b[31mred\\x07"), "{t}");
    assert!(t.contains("\\u{202e}"), "{t}");
    let d = detail(&incident);
    no_hazard(&d);
    assert!(!d.contains("\nforged"), "{d}");
    no_hazard(&fields(&incident));
    let c = serde_json::json!([{"id": 3, "state": "s", "start": "a", "end": "b",
            "scope": {"hosts": [HOSTILE], "host_labels": {HOSTILE: HOSTILE}}, "title": HOSTILE}]);
    no_hazard(&changes_table(&c));
    // JSON stays the same JSON.
    let j = json_text(&incident).unwrap();
    no_hazard(&j.replace('\n', ""));
    assert_eq!(serde_json::from_str::<Value>(&j).unwrap(), incident);
    assert_eq!(visible("plain /var/log"), "plain /var/log");
}

#[test]
fn services_table_shows_percentages_budget_and_burn() {
    let v = serde_json::json!([{
        "name": "checkout", "target": 0.999, "members": 4,
        "windows": [
            {"window": "1h", "availability": 0.75, "error_budget_remaining": -249.0},
            {"window": "30d", "availability": null, "error_budget_remaining": null}
        ],
        "burn_rates": {"1h": 250.0, "5m": null}
    }]);
    let t = services_table(&v);
    let row = t.lines().nth(1).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells,
        ["checkout", "99.900%", "75.000%", "-", "-", "-", "-", "250.00x", "4"],
        "{t}"
    );
    assert!(services_table(&serde_json::json!([])).contains("(no services configured)"));
}
