use super::*;

const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn hosts(h: &[&str]) -> Vec<String> {
    h.iter().map(|s| s.to_string()).collect()
}

fn agents(text: &str) -> Vec<crate::config::AgentToken> {
    Config::from_yaml("c.yaml", text).unwrap().agents
}

#[test]
fn tokens_are_fresh_64_hex_digits() {
    let (a, b) = (generate(), generate());
    assert_eq!(a.len(), 64);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
}

#[test]
fn an_empty_flow_list_becomes_a_block_list_and_comments_survive() {
    let text = "# my collector\nlisten: 127.0.0.1:9850\nagents: []  # none yet\nrules: []\n";
    let out = add_agent("c.yaml", text, TOKEN, &hosts(&["web-*"]), "added").unwrap();
    assert!(out.starts_with("# my collector\n"), "{out}");
    assert!(out.ends_with("rules: []\n"), "{out}");
    let a = agents(&out);
    assert_eq!(a.len(), 1);
    assert!(a[0].matches(&token_digest(TOKEN)));
    assert!(a[0].allows("web-01") && !a[0].allows("db-01"));
    assert!(!out.contains(TOKEN), "the file holds only the digest");
}

#[test]
fn an_item_joins_a_block_list_at_its_indentation() {
    for indent in ["", "  ", "    "] {
        let text = format!(
                "listen: 0.0.0.0:9850\ntls: off\nagents:\n  # the web tier\n{indent}- token: old\n{indent}  hosts: [\"web-01\"]\nrules: []\n"
            );
        let out = add_agent("c.yaml", &text, TOKEN, &hosts(&["db-*", "x\"y"]), "n").unwrap();
        let a = agents(&out);
        assert_eq!(a.len(), 2, "{out}");
        assert!(a.iter().any(|a| a.matches(&token_digest("old"))));
        let new = a.iter().find(|a| a.matches(&token_digest(TOKEN))).unwrap();
        assert!(new.allows("db-7") && new.allows("x\"y"));
        assert!(out.contains("# the web tier"));
    }
}

#[test]
fn a_missing_key_is_added_and_a_null_one_filled() {
    for text in [
        "listen: 127.0.0.1:9850\nrules: []",
        "agents:\nrules: []\n",
        "",
    ] {
        let out = add_agent("c.yaml", text, TOKEN, &hosts(&["*"]), "n").unwrap();
        assert_eq!(agents(&out).len(), 1, "{out}");
    }
}

#[test]
fn nothing_is_written_for_a_broken_config_or_a_flow_list() {
    let e = add_agent("c.yaml", "rules: [{name: x}]\n", TOKEN, &hosts(&["*"]), "n");
    assert!(
        matches!(&e, Err(EditError::Invalid(m)) if m.contains("c.yaml:1") && m.contains("fix the config first")),
        "{e:?}"
    );
    let e = add_agent(
        "c.yaml",
        "agents: [{token: a, hosts: [x]}]\n",
        TOKEN,
        &hosts(&["*"]),
        "n",
    );
    assert!(
        matches!(&e, Err(EditError::FlowList(item)) if item.contains("token_sha256")),
        "{e:?}"
    );
}

#[test]
fn replacing_keeps_the_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, "a").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    replace_file(&path, "b").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "b");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
