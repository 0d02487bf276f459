use super::*;

fn ctx<'a>(labels: &'a BTreeMap<String, String>) -> Context<'a> {
    Context {
        rule: "disk_full",
        host: "web-01",
        value: Some(0.93),
        threshold: Some(0.9),
        labels,
        host_labels: labels,
        metric: "filesystem_used_ratio",
        check: "",
        message: "",
    }
}

#[test]
fn renders_with_labels_and_filters() {
    let mut t = Texts::default();
    t.add(
        "s".into(),
        "{{ host }}: {{ labels.mountpoint }} at {{ (value * 100) | round }}% (> {{ threshold }})"
            .into(),
    )
    .unwrap();
    let labels = BTreeMap::from([("mountpoint".to_string(), "/var".to_string())]);
    assert_eq!(
        t.render("s", &ctx(&labels)).as_deref(),
        Some("web-01: /var at 93.0% (> 0.9)")
    );
    assert!(t.has("s") && !t.has("other"));
    assert_eq!(t.render("other", &ctx(&labels)), None);
}

#[test]
fn agent_data_renders_as_data_never_as_template() {
    let mut t = Texts::default();
    t.add("s".into(), "{{ labels.mountpoint }} {{ message }}".into())
        .unwrap();
    let labels = BTreeMap::from([(
        "mountpoint".to_string(),
        "{{ rule }}{% for x in range(10000000) %}x{% endfor %}".to_string(),
    )]);
    let mut c = ctx(&labels);
    c.message = "{{ host }}";
    assert_eq!(
        t.render("s", &c).as_deref(),
        Some("{{ rule }}{% for x in range(10000000) %}x{% endfor %} {{ host }}")
    );
}

#[test]
fn unknown_variables_and_syntax_errors_are_config_errors() {
    let mut t = Texts::default();
    let e = t
        .add("a".into(), "{{ hostname }} {{ valeu }} {{ host }}".into())
        .unwrap_err();
    assert!(
        e.starts_with("unknown template variables hostname, valeu; available: rule, host"),
        "{e}"
    );
    assert!(!t.has("a"), "a refused template is not kept");
    let e = t.add("b".into(), "{{ host ".into()).unwrap_err();
    assert!(e.starts_with("template error: syntax error"), "{e}");
}

#[test]
fn a_missing_label_falls_back_instead_of_rendering_half() {
    let mut t = Texts::default();
    t.add("s".into(), "on {{ labels.device }}".into()).unwrap();
    assert_eq!(t.render("s", &ctx(&BTreeMap::new())), None);
}
