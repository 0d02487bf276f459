//! The collector binary's command line: exit codes and messages a user sees.

use std::process::Command;

fn collector() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vedette-collector"))
}

#[test]
fn check_config_accepts_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let out = collector().arg("default-config").output().unwrap();
    assert!(out.status.success());
    let file = dir.path().join("collector.yaml");
    std::fs::write(&file, &out.stdout).unwrap();
    let out = collector().arg("check-config").arg(&file).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (9 rules"));
}

#[test]
fn check_config_reports_file_line_col_and_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, "rules:\n  - name: x\n    metric: m\n    abvoe: 1\n").unwrap();
    let out = collector().arg("check-config").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("{}:4:5: ", file.display())),
        "{err}"
    );
    assert!(err.contains("unknown field `abvoe`"), "{err}");
}

#[test]
fn running_with_a_broken_config_exits_64_without_starting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, "listen: 0.0.0.0:9850\n").unwrap();
    let out = collector().arg("--config").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loopback address"));
}

#[test]
fn missing_config_file_is_named() {
    let out = collector()
        .args(["check-config", "/nonexistent/collector.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("/nonexistent/collector.yaml:1:1: cannot read config"),
        "{err}"
    );
}

#[test]
fn incidents_cli_says_when_the_collector_is_unreachable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = collector()
        .args([
            "incidents",
            "list",
            "--url",
            &format!("http://127.0.0.1:{port}"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the collector"));
}
