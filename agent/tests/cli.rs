//! The agent binary's command line: exit codes and messages a user sees.

use std::process::Command;
use std::time::Duration;

use vedette_tests::{free_port, wait_for};

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vedette-agent"))
}

#[test]
fn once_prints_a_valid_batch() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.yaml");
    std::fs::write(&file, "host: once-test\nlabels: {env: test}\n").unwrap();
    let out = agent()
        .arg("once")
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let batch: vedette_protocol::Batch = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(batch.agent.host, "once-test");
    assert_eq!(batch.agent.labels["env"], "test");
    assert!(batch.samples.iter().any(|s| s.name == "memory_used_ratio"));
    batch
        .validate(&vedette_protocol::Limits::default(), batch.sent_at_ms)
        .unwrap();
}

#[test]
fn check_config_reports_file_line_col_and_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, "host: ok\ninterval: 10 parsecs\n").unwrap();
    let out = agent().arg("check-config").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with(&format!("{}:2:", file.display())), "{err}");

    let good = dir.path().join("good.yaml");
    let out = agent().arg("default-config").output().unwrap();
    std::fs::write(&good, out.stdout).unwrap();
    let out = agent().arg("check-config").arg(&good).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sighup_is_survived_and_sigterm_exits_zero_with_the_collector_down() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = dir.path().join("agent.yaml");
    std::fs::write(
        &file,
        format!(
            "host: t\ncollector: {{url: 'http://127.0.0.1:{port}'}}\ninterval: 1s\nlisten: off\n"
        ),
    )
    .unwrap();
    let log = dir.path().join("agent.log");
    let mut child = agent()
        .arg("--config")
        .arg(&file)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let logged = |line: &'static str| {
        let log = log.clone();
        move || {
            std::fs::read_to_string(&log)
                .unwrap()
                .contains(line)
                .then_some(())
        }
    };
    wait_for(
        "a failed delivery",
        Duration::from_secs(15),
        &log,
        logged("cannot deliver to the collector"),
    );
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("connect refused"), "{log_text}");
    // SIGHUP must not kill it (reload is not built yet; it says so).
    Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    wait_for(
        "the SIGHUP warning",
        Duration::from_secs(15),
        &log,
        logged("config reload is not supported yet"),
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP killed the agent"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}
