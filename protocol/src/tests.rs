use std::io::Write;

use super::*;

const NOW: i64 = 1_763_700_000_000;

fn batch() -> Batch {
    Batch {
        version: VERSION,
        agent: AgentInfo {
            host: "web-01".into(),
            version: "0.1.0".into(),
            labels: BTreeMap::from([("env".into(), "prod".into())]),
            boot_id: "5d1c9a2e-0000-4000-8000-000000000001".into(),
            interval_s: 10.0,
        },
        seq: 1842,
        sent_at_ms: NOW,
        samples: vec![Sample {
            name: "cpu_usage_ratio".into(),
            labels: BTreeMap::new(),
            ts_ms: NOW - 1000,
            value: 0.42,
        }],
        checks: vec![CheckResult {
            name: "api".into(),
            kind: CheckKind::Http,
            target: "https://127.0.0.1/health".into(),
            labels: BTreeMap::new(),
            ts_ms: NOW - 1000,
            status: Status::Ok,
            latency_s: 0.012,
            message: "HTTP 200".into(),
        }],
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn reject(b: &Batch) -> Rejection {
    b.validate(&Limits::default(), NOW)
        .expect_err("batch should be rejected")
}

#[test]
fn design_example_decodes_plain_and_gzip() {
    let json = r#"{
      "version": 1,
      "agent": {"host": "web-01", "version": "0.1.0", "labels": {"env": "prod", "role": "web"},
                "boot_id": "abc-1", "interval_s": 10},
      "seq": 1842,
      "sent_at_ms": 1763700000000,
      "samples": [{"name": "cpu_usage_ratio", "labels": {}, "ts_ms": 1763699999000, "value": 0.42}],
      "checks":  [{"name": "api", "kind": "http", "target": "https://127.0.0.1/health",
                   "ts_ms": 1763699999000, "status": "ok", "latency_s": 0.012, "message": "HTTP 200"}]
    }"#;
    let plain = decode(json.as_bytes(), Encoding::Identity, &Limits::default(), NOW).unwrap();
    let zipped = decode(
        &gzip(json.as_bytes()),
        Encoding::Gzip,
        &Limits::default(),
        NOW,
    )
    .unwrap();
    assert_eq!(plain, zipped);
    assert_eq!(plain.seq, 1842);
    assert_eq!(plain.agent.labels["role"], "web");
    assert_eq!(plain.samples[0].value, 0.42);
    assert_eq!(plain.checks[0].status, Status::Ok);
}

#[test]
fn round_trip_through_json() {
    let b = batch();
    let json = serde_json::to_vec(&b).unwrap();
    assert_eq!(
        decode(&json, Encoding::Identity, &Limits::default(), NOW).unwrap(),
        b
    );
}

#[test]
fn valid_batch_passes() {
    batch().validate(&Limits::default(), NOW).unwrap();
}

/// Every validation rule, with the field it must name and the status it maps to.
#[test]
fn every_rejection_names_its_field() {
    type Mutate = fn(&mut Batch);
    let cases: &[(&str, Mutate, &str, u16)] = &[
        ("version", |b| b.version = 2, "version", 400),
        ("empty host", |b| b.agent.host.clear(), "agent.host", 400),
        (
            "host charset",
            |b| b.agent.host = "web 01".into(),
            "agent.host",
            400,
        ),
        (
            "host length",
            |b| b.agent.host = "a".repeat(254),
            "agent.host",
            400,
        ),
        (
            "agent version length",
            |b| b.agent.version = "v".repeat(513),
            "agent.version",
            400,
        ),
        (
            "empty boot_id",
            |b| b.agent.boot_id.clear(),
            "agent.boot_id",
            400,
        ),
        (
            "boot_id charset",
            |b| b.agent.boot_id = "a/b".into(),
            "agent.boot_id",
            400,
        ),
        (
            "zero interval",
            |b| b.agent.interval_s = 0.0,
            "agent.interval_s",
            400,
        ),
        (
            "nan interval",
            |b| b.agent.interval_s = f64::NAN,
            "agent.interval_s",
            400,
        ),
        (
            "huge interval",
            |b| b.agent.interval_s = 86_401.0,
            "agent.interval_s",
            400,
        ),
        (
            "agent label name",
            |b| {
                b.agent.labels.insert("1bad".into(), "x".into());
            },
            "agent.labels.1bad",
            400,
        ),
        (
            "clock ahead",
            |b| b.sent_at_ms = NOW + 5 * 60 * 1000 + 1,
            "sent_at_ms",
            400,
        ),
        (
            "clock behind",
            |b| b.sent_at_ms = NOW - 5 * 60 * 1000 - 1,
            "sent_at_ms",
            400,
        ),
        (
            "sample name charset",
            |b| b.samples[0].name = "cpu-usage".into(),
            "samples[0].name",
            400,
        ),
        (
            "sample name empty",
            |b| b.samples[0].name.clear(),
            "samples[0].name",
            400,
        ),
        (
            "sample name leading digit",
            |b| b.samples[0].name = "1cpu".into(),
            "samples[0].name",
            400,
        ),
        (
            "sample name length",
            |b| b.samples[0].name = "a".repeat(129),
            "samples[0].name",
            400,
        ),
        (
            "label name charset",
            |b| {
                b.samples[0].labels.insert("a.b".into(), "x".into());
            },
            "samples[0].labels.a.b",
            400,
        ),
        (
            "check label name charset",
            |b| {
                b.checks[0].labels.insert("a-b".into(), "x".into());
            },
            "checks[0].labels.a-b",
            400,
        ),
        (
            "label name reserved prefix",
            |b| {
                b.samples[0].labels.insert("__name__".into(), "x".into());
            },
            "samples[0].labels.__name__",
            400,
        ),
        (
            "label host reserved",
            |b| {
                b.samples[0].labels.insert("host".into(), "x".into());
            },
            "samples[0].labels.host",
            400,
        ),
        (
            "label value length",
            |b| {
                b.samples[0].labels.insert("a".into(), "x".repeat(257));
            },
            "samples[0].labels.a",
            400,
        ),
        (
            "too many labels",
            |b| {
                for i in 0..17 {
                    b.samples[0].labels.insert(format!("l{i}"), "x".into());
                }
            },
            "samples[0].labels",
            413,
        ),
        (
            "nan value",
            |b| b.samples[0].value = f64::NAN,
            "samples[0].value",
            400,
        ),
        (
            "infinite value",
            |b| b.samples[0].value = f64::INFINITY,
            "samples[0].value",
            400,
        ),
        (
            "sample too old",
            |b| b.samples[0].ts_ms = NOW - 7 * 24 * 3600 * 1000 - 1,
            "samples[0].ts_ms",
            400,
        ),
        (
            "sample in future",
            |b| b.samples[0].ts_ms = NOW + 60_001,
            "samples[0].ts_ms",
            400,
        ),
        (
            "too many samples",
            |b| {
                let s = b.samples[0].clone();
                b.samples = vec![s; 10_001];
            },
            "samples",
            413,
        ),
        (
            "too many checks",
            |b| {
                let c = b.checks[0].clone();
                b.checks = vec![c; 1_001];
            },
            "checks",
            413,
        ),
        (
            "check name",
            |b| b.checks[0].name = "api check".into(),
            "checks[0].name",
            400,
        ),
        (
            "check target length",
            |b| b.checks[0].target = "t".repeat(513),
            "checks[0].target",
            400,
        ),
        (
            "check message length",
            |b| b.checks[0].message = "m".repeat(1025),
            "checks[0].message",
            400,
        ),
        (
            "check ts",
            |b| b.checks[0].ts_ms = NOW + 120_000,
            "checks[0].ts_ms",
            400,
        ),
        (
            "negative latency",
            |b| b.checks[0].latency_s = -1.0,
            "checks[0].latency_s",
            400,
        ),
        (
            "nan latency",
            |b| b.checks[0].latency_s = f64::NAN,
            "checks[0].latency_s",
            400,
        ),
    ];
    for (what, mutate, field, status) in cases {
        let mut b = batch();
        mutate(&mut b);
        let r = reject(&b);
        assert_eq!(r.field.as_deref(), Some(*field), "{what}: {r}");
        assert_eq!(r.kind.status(), *status, "{what}: {r}");
    }
}

#[test]
fn limits_are_inclusive_at_the_boundary() {
    let mut b = batch();
    b.agent.host = "a".repeat(253);
    b.samples[0].name = "a".repeat(128);
    b.samples[0].labels = (0..16)
        .map(|i| (format!("l{i}"), "x".repeat(256)))
        .collect();
    b.samples[0].ts_ms = NOW - 7 * 24 * 3600 * 1000;
    b.checks[0].ts_ms = NOW + 60_000;
    b.checks[0].message = "m".repeat(1024);
    b.sent_at_ms = NOW;
    let s = b.samples[0].clone();
    b.samples = vec![s; 10_000];
    b.validate(&Limits::default(), NOW).unwrap();
    b.sent_at_ms = NOW + 5 * 60 * 1000;
    b.samples.truncate(1);
    b.samples[0].ts_ms = NOW;
    b.checks[0].ts_ms = NOW;
    b.validate(&Limits::default(), NOW).unwrap();
}

#[test]
fn body_over_limit_is_413_before_parsing() {
    let limits = Limits {
        max_body_bytes: 10,
        ..Limits::default()
    };
    let r = decode(b"not even json at all", Encoding::Identity, &limits, NOW).unwrap_err();
    assert_eq!(r.kind, RejectionKind::TooLarge);
}

#[test]
fn gzip_bomb_is_413_and_bounded() {
    // 64 MiB of zeros compresses to ~64 KiB; the decoder must stop at the limit.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < Limits::default().max_body_bytes);
    let r = decode(&bomb, Encoding::Gzip, &Limits::default(), NOW).unwrap_err();
    assert_eq!(r.kind, RejectionKind::TooLarge, "{r}");
}

#[test]
fn gzip_exactly_at_decoded_limit_is_accepted() {
    let json = serde_json::to_vec(&batch()).unwrap();
    let limits = Limits {
        max_decoded_bytes: json.len(),
        ..Limits::default()
    };
    decode(&gzip(&json), Encoding::Gzip, &limits, NOW).unwrap();
    let limits = Limits {
        max_decoded_bytes: json.len() - 1,
        ..Limits::default()
    };
    let r = decode(&gzip(&json), Encoding::Gzip, &limits, NOW).unwrap_err();
    assert_eq!(r.kind, RejectionKind::TooLarge);
    let r = decode(&json, Encoding::Identity, &limits, NOW).unwrap_err();
    assert_eq!(r.kind, RejectionKind::TooLarge);
}

#[test]
fn broken_gzip_is_400() {
    let r = decode(b"\x1f\x8b garbage", Encoding::Gzip, &Limits::default(), NOW).unwrap_err();
    assert_eq!(r.kind, RejectionKind::Invalid);
    assert!(r.message.contains("gzip"), "{r}");
}

#[test]
fn malformed_json_names_the_field() {
    let mut v = serde_json::to_value(batch()).unwrap();
    v["samples"][0]["value"] = serde_json::json!("high");
    let r = decode(
        &serde_json::to_vec(&v).unwrap(),
        Encoding::Identity,
        &Limits::default(),
        NOW,
    )
    .unwrap_err();
    assert_eq!(r.kind, RejectionKind::Invalid);
    assert_eq!(r.field.as_deref(), Some("samples[0].value"));

    v["samples"][0]["value"] = serde_json::json!(null);
    let r = decode(
        &serde_json::to_vec(&v).unwrap(),
        Encoding::Identity,
        &Limits::default(),
        NOW,
    )
    .unwrap_err();
    assert_eq!(r.field.as_deref(), Some("samples[0].value"));

    let mut v = serde_json::to_value(batch()).unwrap();
    v["checks"][0]["status"] = serde_json::json!("fine");
    let r = decode(
        &serde_json::to_vec(&v).unwrap(),
        Encoding::Identity,
        &Limits::default(),
        NOW,
    )
    .unwrap_err();
    assert_eq!(r.field.as_deref(), Some("checks[0].status"));
}

#[test]
fn malformed_documents_are_400() {
    for body in [
        &b""[..],
        b"{",
        b"[]",
        b"null",
        b"{\"version\": 1}",
        b"{\"version\": 1e400}",
    ] {
        let r = decode(body, Encoding::Identity, &Limits::default(), NOW).unwrap_err();
        assert_eq!(
            r.kind,
            RejectionKind::Invalid,
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
    let mut json = serde_json::to_vec(&batch()).unwrap();
    json.extend_from_slice(b" trailing");
    let r = decode(&json, Encoding::Identity, &Limits::default(), NOW).unwrap_err();
    assert_eq!(r.kind, RejectionKind::Invalid);
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let mut v = serde_json::to_value(batch()).unwrap();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    v["agent"]["version"] = serde_json::json!("placeholder");
    let json = serde_json::to_string(&v)
        .unwrap()
        .replace("\"placeholder\"", &deep);
    let r = decode(json.as_bytes(), Encoding::Identity, &Limits::default(), NOW).unwrap_err();
    assert_eq!(r.kind, RejectionKind::Invalid);
}

#[test]
fn encodings() {
    assert_eq!(Encoding::from_header(None).unwrap(), Encoding::Identity);
    assert_eq!(
        Encoding::from_header(Some("identity")).unwrap(),
        Encoding::Identity
    );
    assert_eq!(Encoding::from_header(Some("GZIP")).unwrap(), Encoding::Gzip);
    let r = Encoding::from_header(Some("br")).unwrap_err();
    assert_eq!(r.kind.status(), 415);
    assert!(r.message.contains("'br'"));
}

#[test]
fn status_from_exit_code() {
    assert_eq!(Status::from_exit_code(0), Status::Ok);
    assert_eq!(Status::from_exit_code(1), Status::Warning);
    assert_eq!(Status::from_exit_code(2), Status::Critical);
    assert_eq!(Status::from_exit_code(3), Status::Unknown);
    assert_eq!(Status::from_exit_code(127), Status::Unknown);
    assert_eq!(Status::from_exit_code(-1), Status::Unknown);
}

#[test]
fn names() {
    for ok in ["a", "_", "cpu_usage_ratio", "A9_z"] {
        assert!(is_valid_name(ok), "{ok}");
    }
    for bad in ["", "9a", "a-b", "a:b", "a b", "é"] {
        assert!(!is_valid_name(bad), "{bad}");
    }
}

#[test]
fn long_untrusted_names_are_truncated_in_messages() {
    let mut b = batch();
    b.samples[0].name = format!("{}-", "x".repeat(100));
    let limits = Limits {
        max_name_len: 1000,
        ..Limits::default()
    };
    let r = b.validate(&limits, NOW).unwrap_err();
    assert!(r.message.len() < 120, "{}", r.message);
}

#[test]
fn error_body_serializes_field() {
    let r = reject(&{
        let mut b = batch();
        b.samples[0].value = f64::NAN;
        b
    });
    let json = serde_json::to_value(r.body()).unwrap();
    assert_eq!(json["field"], "samples[0].value");
    assert_eq!(json["error"], "value must be finite");
}

/// A valid batch as JSON text with one number replaced by `raw` (the wire
/// can carry integers no Rust integer type holds).
fn with_number(field: &str, raw: &str) -> String {
    let at = |f: &str| {
        if f == field {
            raw.to_string()
        } else {
            String::new()
        }
    };
    let or = |f: &str, v: String| {
        let r = at(f);
        if r.is_empty() {
            v
        } else {
            r
        }
    };
    format!(
        r#"{{"version": 1,
            "agent": {{"host": "web-01", "version": "t", "boot_id": "b1", "interval_s": {}}},
            "seq": {}, "sent_at_ms": {},
            "samples": [{{"name": "m", "ts_ms": {}, "value": 1.0}}],
            "checks": [{{"name": "c", "kind": "tcp", "ts_ms": {}, "status": "ok", "latency_s": 0.1}}]}}"#,
        or("agent.interval_s", "10".into()),
        or("seq", "7".into()),
        or("sent_at_ms", NOW.to_string()),
        or("samples[0].ts_ms", NOW.to_string()),
        or("checks[0].ts_ms", NOW.to_string()),
    )
}

#[test]
fn every_integer_is_checked_at_its_extremes() {
    let extremes = [
        "0",
        "-1",
        "-9223372036854775808",
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551615",
        "18446744073709551616",
        "-18446744073709551617",
        "1e30",
        "1.5",
    ];
    // (field, values that must be accepted)
    let fields: &[(&str, &[&str])] = &[
        ("seq", &["9223372036854775807"]),
        ("sent_at_ms", &[]),
        ("samples[0].ts_ms", &[]),
        ("checks[0].ts_ms", &[]),
        ("agent.interval_s", &["1.5"]),
    ];
    for (field, accepted) in fields {
        for raw in extremes {
            let json = with_number(field, raw);
            let got = decode(json.as_bytes(), Encoding::Identity, &Limits::default(), NOW);
            match got {
                Ok(b) => {
                    assert!(accepted.contains(&raw), "{field} = {raw} was accepted");
                    assert!(b.seq <= MAX_SEQ);
                    // What is accepted round-trips exactly.
                    let again = decode(
                        &serde_json::to_vec(&b).unwrap(),
                        Encoding::Identity,
                        &Limits::default(),
                        NOW,
                    )
                    .unwrap();
                    assert_eq!(again, b);
                }
                Err(r) => {
                    assert!(!accepted.contains(&raw), "{field} = {raw} refused: {r}");
                    assert_eq!(r.kind.status(), 400, "{field} = {raw}: {r}");
                    assert_eq!(r.field.as_deref(), Some(*field), "{field} = {raw}: {r}");
                }
            }
        }
    }
}

#[test]
fn a_clock_at_the_end_of_time_is_refused_not_wrapped() {
    // i64::MIN - now saturates; its absolute value once wrapped back to
    // i64::MIN and slipped under the skew limit.
    for sent in [i64::MIN, i64::MIN + 1, i64::MAX] {
        let mut b = batch();
        b.sent_at_ms = sent;
        b.samples[0].ts_ms = sent;
        b.checks[0].ts_ms = sent;
        assert_eq!(reject(&b).field.as_deref(), Some("sent_at_ms"));
    }
    let mut b = batch();
    b.samples[0].ts_ms = i64::MIN;
    assert_eq!(reject(&b).field.as_deref(), Some("samples[0].ts_ms"));
    b.samples[0].ts_ms = i64::MAX;
    assert_eq!(reject(&b).field.as_deref(), Some("samples[0].ts_ms"));
}

#[test]
fn labels_the_collector_gives_meaning_are_reserved() {
    for key in RESERVED_SAMPLE_LABELS {
        let mut b = batch();
        b.samples[0].labels.insert(key.to_string(), "x".into());
        let r = reject(&b);
        assert_eq!(r.field, Some(format!("samples[0].labels.{key}")));
        assert!(r.message.contains("reserved"), "{r}");
    }
    for key in RESERVED_CHECK_LABELS {
        let mut b = batch();
        b.checks[0].labels.insert(key.to_string(), "x".into());
        assert_eq!(reject(&b).field, Some(format!("checks[0].labels.{key}")));
    }
    // Samples may say which check they come from (check_perfdata{check}).
    let mut b = batch();
    b.samples[0].labels.insert("check".into(), "api".into());
    b.validate(&Limits::default(), NOW).unwrap();
    // Host labels describe the host; none is reserved there.
    b.agent.labels.insert("source".into(), "cmdb".into());
    b.validate(&Limits::default(), NOW).unwrap();
}

#[test]
fn floats_parse_exactly_and_tiny_intervals_are_refused() {
    // The fuzzer found a subnormal that read back one ULP off.
    let json = with_number("agent.interval_s", "10")
        .replace(r#""value": 1.0"#, r#""value": 5.562680530379055e-308"#);
    let b = decode(json.as_bytes(), Encoding::Identity, &Limits::default(), NOW).unwrap();
    assert_eq!(b.samples[0].value, 5.562680530379055e-308);
    let again = serde_json::to_vec(&b).unwrap();
    assert_eq!(
        decode(&again, Encoding::Identity, &Limits::default(), NOW).unwrap(),
        b
    );
    for tiny in ["5.562680530379055e-308", "0.05", "0"] {
        let json = with_number("agent.interval_s", tiny);
        let r = decode(json.as_bytes(), Encoding::Identity, &Limits::default(), NOW).unwrap_err();
        assert_eq!(r.field.as_deref(), Some("agent.interval_s"), "{tiny}");
    }
}
