//! The agent binary's command line: exit codes and messages a user sees.

use std::process::Command;

use vedette_tests::free_port;

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
fn sighup_reloads_checks_and_sigterm_spools_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());
    let mut a = vedette_tests::agent(dir.path(), "agent", "t", &url, "");
    a.wait_log("cannot deliver to the collector", 1);
    assert!(a.log_text().contains("connect refused"), "{}", a.log_text());

    // Add a check and reload: it starts without a restart.
    let cfg = dir.path().join("agent.yaml");
    let base = std::fs::read_to_string(&cfg).unwrap();
    let with_check =
        format!("{base}checks:\n  - name: self_proc\n    process: {{name: vedette-agent}}\n");
    std::fs::write(&cfg, &with_check).unwrap();
    a.signal("HUP");
    a.wait_log("check started check=self_proc", 1);
    a.wait_log("config reloaded", 1);

    // A broken config is refused with its location; the agent keeps running.
    std::fs::write(&cfg, format!("{with_check}    interval: soon\n")).unwrap();
    a.signal("HUP");
    a.wait_log("config reload failed", 1);
    assert!(a.log_text().contains("agent.yaml:"), "{}", a.log_text());
    assert!(a.running(), "a bad reload killed the agent");

    // Remove the check again.
    std::fs::write(&cfg, &base).unwrap();
    a.signal("HUP");
    a.wait_log("check stopped check=self_proc", 1);

    let status = a.stop("TERM");
    assert!(status.success(), "{status}");
    // What was never delivered waits in the spool for the next start.
    let spooled: u64 = std::fs::read_dir(dir.path().join("agent-spool"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(spooled > 0, "nothing spooled");
    let log = std::fs::read_to_string(dir.path().join("agent.log")).unwrap();
    assert!(log.contains("unsent batches are spooled"), "{log}");
}
