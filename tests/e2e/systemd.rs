//! The systemd contract, without systemd (it cannot run here): both daemons
//! speak `sd_notify` to a `NOTIFY_SOCKET` the test listens on, as systemd
//! would (READY=1 once serving, WATCHDOG=1 while the main loop lives,
//! RELOADING=1 … READY=1 around a reload, STOPPING=1 on SIGTERM), and the
//! shipped units pass `systemd-analyze verify` and score within the
//! hardening goals of `systemd-analyze security --offline=true`.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use vedette_tests::{bin, free_port, push_sample, wait_for, Daemon};

/// A stand-in for systemd's notification socket.
struct Systemd {
    sock: UnixDatagram,
    heard: Vec<String>,
}

impl Systemd {
    fn listen(dir: &Path) -> (Systemd, String) {
        let path = dir.join("notify");
        let sock = UnixDatagram::bind(&path).expect("binding the notify socket");
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("setting a read timeout");
        (
            Systemd {
                sock,
                heard: Vec::new(),
            },
            path.to_string_lossy().into_owned(),
        )
    }

    /// Waits until `msg` has been heard `times` times in all.
    fn wait(&mut self, msg: &str, times: usize, log: &Path) {
        let end = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 512];
        while self.heard.iter().filter(|m| m.starts_with(msg)).count() < times {
            assert!(
                Instant::now() < end,
                "never heard {msg:?} x{times}; heard {:?}; log:\n{}",
                self.heard,
                std::fs::read_to_string(log).unwrap_or_default()
            );
            if let Ok(n) = self.sock.recv(&mut buf) {
                self.heard
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
    }

    fn position(&self, msg: &str) -> Option<usize> {
        self.heard.iter().position(|m| m.starts_with(msg))
    }
}

#[test]
fn the_collector_notifies_ready_pings_the_watchdog_and_says_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let (mut systemd, socket) = Systemd::listen(dir.path());
    let port = free_port();
    let c = Daemon::start_with_env(
        "vedette-collector",
        dir.path(),
        "collector",
        &format!(
            "listen: 127.0.0.1:{port}\ndata_dir: {}\n",
            dir.path().join("data").display()
        ),
        &[("NOTIFY_SOCKET", &socket), ("WATCHDOG_USEC", "2000000")],
    );
    systemd.wait("READY=1", 1, &c.log);
    // READY means serving: the listener answers now.
    let ready = reqwest::blocking::get(format!("http://127.0.0.1:{port}/readyz")).unwrap();
    assert!(ready.status().is_success());
    systemd.wait("WATCHDOG=1", 2, &c.log);
    let log = c.log.clone();
    assert!(c.stop("TERM").success());
    systemd.wait("STOPPING=1", 1, &log);
    assert!(systemd.position("READY=1") < systemd.position("STOPPING=1"));
}

#[test]
fn the_agent_notifies_ready_reloading_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let (mut systemd, socket) = Systemd::listen(dir.path());
    let a = Daemon::start_with_env(
        "vedette-agent",
        dir.path(),
        "agent",
        &format!(
            "host: t\ncollector: {{url: 'http://127.0.0.1:{}'}}\nlisten: off\n",
            free_port()
        ),
        &[("NOTIFY_SOCKET", &socket), ("WATCHDOG_USEC", "400000")],
    );
    systemd.wait("READY=1", 1, &a.log);
    systemd.wait("WATCHDOG=1", 3, &a.log);
    a.signal("HUP");
    systemd.wait("RELOADING=1", 1, &a.log);
    systemd.wait("READY=1", 2, &a.log);
    let log = a.log.clone();
    assert!(a.stop("TERM").success());
    systemd.wait("STOPPING=1", 1, &log);
}

/// `systemctl reload vedette-collector`: rules, tokens and receivers change
/// in place; live incidents of a kept rule stay the same incidents, those of
/// a removed rule are resolved; a broken file is refused and the running
/// config kept.
#[test]
fn the_collector_reloads_its_config_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let (mut systemd, socket) = Systemd::listen(dir.path());
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let head = format!(
        "listen: 127.0.0.1:{port}\ndata_dir: {}\n",
        dir.path().join("data").display()
    );
    let rule =
        |name: &str, metric: &str| format!("  - {{name: {name}, metric: {metric}, above: 0.9}}\n");
    let first = format!(
        "{head}rules:\n{}{}",
        rule("cpu", "cpu_usage_ratio"),
        rule("disk", "filesystem_used_ratio")
    );
    let c = Daemon::start_with_env(
        "vedette-collector",
        dir.path(),
        "collector",
        &first,
        &[("NOTIFY_SOCKET", &socket)],
    );
    systemd.wait("READY=1", 1, &c.log);
    let http = reqwest::blocking::Client::new();
    let incidents = |token: Option<&str>| -> Option<Vec<Value>> {
        let mut req = http.get(format!("{url}/api/v1/incidents"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().ok()?;
        r.status().is_success().then(|| r.json().ok())?
    };
    let find = |list: &[Value], rule: &str| list.iter().find(|i| i["rule"] == rule).cloned();
    assert_eq!(push_sample(&url, "h", "b", 1, "cpu_usage_ratio", 0.95), 200);
    assert_eq!(
        push_sample(&url, "h", "b", 2, "filesystem_used_ratio", 0.95),
        200
    );
    let cpu = wait_for("two incidents", Duration::from_secs(20), &c.log, || {
        let list = incidents(None)?;
        find(&list, "disk")?;
        find(&list, "cpu")
    });

    // cpu kept, disk removed, mem added; the API now wants a token.
    let second = format!(
        "{head}api_tokens: [{{name: ops, token: s3cret, role: operator}}]\nrules:\n{}{}",
        rule("cpu", "cpu_usage_ratio"),
        rule("mem", "memory_used_ratio")
    );
    std::fs::write(dir.path().join("collector.yaml"), second).unwrap();
    c.signal("HUP");
    systemd.wait("RELOADING=1", 1, &c.log);
    systemd.wait("READY=1", 2, &c.log);
    assert!(
        std::fs::read_to_string(&c.log)
            .unwrap()
            .contains("config reloaded"),
        "no reload in the log"
    );
    assert_eq!(
        incidents(None),
        None,
        "the API is closed to callers without a token"
    );
    let list = incidents(Some("s3cret")).expect("the new token is accepted");
    let disk = find(&list, "disk").unwrap();
    assert_eq!(disk["state"], "resolved", "{disk}");
    assert_eq!(find(&list, "cpu").unwrap()["state"], "open");
    assert_eq!(push_sample(&url, "h", "b", 3, "cpu_usage_ratio", 0.1), 200);
    assert_eq!(
        push_sample(&url, "h", "b", 4, "memory_used_ratio", 0.95),
        200
    );
    let list = wait_for(
        "cpu resolved, mem open",
        Duration::from_secs(20),
        &c.log,
        || {
            let list = incidents(Some("s3cret"))?;
            let done = find(&list, "cpu")?["state"] == "resolved" && find(&list, "mem").is_some();
            done.then_some(list)
        },
    );
    // The same cpu incident resolved: nothing was opened twice.
    assert_eq!(find(&list, "cpu").unwrap()["id"], cpu["id"]);
    assert_eq!(list.len(), 3, "{list:?}");

    // A broken file is refused and the running config kept.
    std::fs::write(
        dir.path().join("collector.yaml"),
        format!("{head}rules: [{{name: x}}]\n"),
    )
    .unwrap();
    c.signal("HUP");
    systemd.wait("READY=1", 3, &c.log);
    let log = std::fs::read_to_string(&c.log).unwrap();
    assert!(
        log.contains("config reload refused") && log.contains("collector.yaml:3"),
        "{log}"
    );
    assert!(incidents(Some("s3cret")).is_some());
    assert_eq!(incidents(None), None);
}

fn units_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd")
}

#[test]
fn units_verify_clean() {
    let dir = tempfile::tempdir().unwrap();
    for unit in ["vedette-agent", "vedette-collector"] {
        // verify wants ExecStart to exist: point it at the binary under test.
        let text = std::fs::read_to_string(units_dir().join(format!("{unit}.service"))).unwrap();
        let text = text.replace(&format!("/usr/bin/{unit}"), bin(unit).to_str().unwrap());
        let path = dir.path().join(format!("{unit}.service"));
        std::fs::write(&path, text).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .expect("systemd-analyze (Debian's systemd package; tests/run.sh installs it)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "{unit}: {stderr}"
        );
    }
}

#[test]
fn units_meet_the_hardening_goals() {
    for (unit, goal) in [("vedette-collector", 2.0), ("vedette-agent", 3.0)] {
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=true"])
            .arg(units_dir().join(format!("{unit}.service")))
            .output()
            .expect("systemd-analyze (Debian's systemd package; tests/run.sh installs it)");
        let text = String::from_utf8_lossy(&out.stdout);
        let score: f64 = text
            .lines()
            .find_map(|l| l.split("Overall exposure level for ").nth(1))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{unit}: no overall exposure in\n{text}"));
        assert!(score <= goal, "{unit}: exposure {score} > {goal}\n{text}");
    }
}
