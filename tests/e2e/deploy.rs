//! Installing and operating: `deploy/install.sh` staged under `DESTDIR`
//! (idempotent, configs kept, uninstall keeps data unless --purge), the
//! example configs under `deploy/configs/` pass `check-config`, and an agent
//! admitted with `vedette-collector token new` pushes while another host
//! with the same token is refused.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use vedette_tests::{bin, bin_dir, free_port, wait_for, Collector, Daemon};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

/// Runs deploy/install.sh with `args`, staged under `destdir`.
fn install(destdir: &Path, args: &[&str]) -> Output {
    let out = Command::new(repo().join("deploy/install.sh"))
        .args(args)
        .env("DESTDIR", destdir)
        .output()
        .expect("running deploy/install.sh");
    assert!(
        out.status.success(),
        "install.sh {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every file under `dir` (relative path → mode).
fn tree(dir: &Path) -> BTreeMap<String, u32> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, u32>) {
        for e in std::fs::read_dir(dir).expect("reading a staged directory") {
            let e = e.expect("a directory entry");
            let path = e.path();
            let meta = e.metadata().expect("file metadata");
            let rel = path
                .strip_prefix(root)
                .expect("under the root")
                .display()
                .to_string();
            out.insert(rel, meta.permissions().mode() & 0o7777);
            if meta.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn check_config(binary: &str, file: &Path) -> Output {
    Command::new(bin(binary))
        .arg("check-config")
        .arg(file)
        .output()
        .expect("running check-config")
}

#[test]
fn install_sh_stages_everything_idempotently_and_uninstall_keeps_data_unless_purged() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("root");
    let from = bin_dir();
    let from = from.to_str().unwrap();
    install(&dest, &["--from", from]);
    let files = tree(&dest);
    for (path, mode) in [
        ("usr/bin/vedette-agent", 0o755),
        ("usr/bin/vedette-collector", 0o755),
        ("etc/systemd/system/vedette-agent.service", 0o644),
        ("etc/systemd/system/vedette-collector.service", 0o644),
        ("etc/vedette/agent.yaml", 0o640),
        ("etc/vedette/collector.yaml", 0o640),
        ("var/lib/vedette-agent", 0o700),
        ("var/lib/vedette-collector", 0o700),
    ] {
        assert_eq!(files.get(path), Some(&mode), "{path} in {files:?}");
    }
    // What was installed is what the repo ships, and it runs.
    assert_eq!(
        std::fs::read(dest.join("etc/vedette/collector.yaml")).unwrap(),
        std::fs::read(repo().join("deploy/configs/collector.yaml")).unwrap()
    );
    for name in ["agent", "collector"] {
        let conf = dest.join(format!("etc/vedette/{name}.yaml"));
        let out = Command::new(dest.join(format!("usr/bin/vedette-{name}")))
            .arg("check-config")
            .arg(&conf)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {out:?}");
    }

    // The operator edits a config and the collector stores something.
    let agent_conf = dest.join("etc/vedette/agent.yaml");
    let mut mine = std::fs::read_to_string(&agent_conf).unwrap();
    mine.push_str("# edited by the operator\n");
    std::fs::write(&agent_conf, &mine).unwrap();
    std::fs::write(dest.join("var/lib/vedette-collector/vedette.db"), "data").unwrap();

    // Run again (an upgrade): the same files, the edit kept, the shipped
    // config beside it.
    let again = install(&dest, &["--from", from]);
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(said.contains("collector.yaml (unchanged)"), "{said}");
    assert!(said.contains("agent.yaml (yours, kept"), "{said}");
    assert_eq!(std::fs::read_to_string(&agent_conf).unwrap(), mine);
    let mut expected = files.clone();
    expected.insert("etc/vedette/agent.yaml.dist".into(), 0o640);
    expected.insert("var/lib/vedette-collector/vedette.db".into(), 0o644);
    let mut got = tree(&dest);
    // The test wrote vedette.db with this process's umask.
    got.insert("var/lib/vedette-collector/vedette.db".into(), 0o644);
    assert_eq!(got, expected);

    // Uninstall: binaries and units go, configs and data stay.
    install(&dest, &["--uninstall"]);
    let left = tree(&dest);
    for gone in [
        "usr/bin/vedette-agent",
        "usr/bin/vedette-collector",
        "etc/systemd/system/vedette-collector.service",
    ] {
        assert!(!left.contains_key(gone), "{gone} is still there");
    }
    for kept in [
        "etc/vedette/agent.yaml",
        "etc/vedette/collector.yaml",
        "var/lib/vedette-collector/vedette.db",
    ] {
        assert!(left.contains_key(kept), "{kept} was removed: {left:?}");
    }
    // Twice is fine; --purge then removes configs and data.
    install(&dest, &["--uninstall"]);
    install(&dest, &["--uninstall", "--purge"]);
    let left = tree(&dest);
    assert!(
        left.keys().all(|k| !k.contains("vedette")),
        "left behind: {left:?}"
    );
}

#[test]
fn install_sh_takes_binaries_from_a_tarball_and_one_component() {
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("vedette-0.1.0/bin");
    std::fs::create_dir_all(&staging).unwrap();
    // The agent alone (debug binaries are large; the fastest gzip level).
    std::fs::copy(bin("vedette-agent"), staging.join("vedette-agent")).unwrap();
    let tarball = dir.path().join("vedette.tar.gz");
    let tar = Command::new("tar")
        .args(["-I", "gzip -1", "-cf"])
        .arg(&tarball)
        .arg("-C")
        .arg(dir.path())
        .arg("vedette-0.1.0")
        .status()
        .unwrap();
    assert!(tar.success());
    let dest = dir.path().join("root");
    install(
        &dest,
        &["--from", tarball.to_str().unwrap(), "--only", "agent"],
    );
    let files = tree(&dest);
    assert!(files.contains_key("usr/bin/vedette-agent"), "{files:?}");
    assert!(files.keys().all(|k| !k.contains("collector")), "{files:?}");

    // Mistakes are refused with a reason and exit 64, nothing staged.
    for (args, says) in [
        (
            vec!["--from", "/nonexistent"],
            "/nonexistent: no such directory",
        ),
        (vec!["--only", "db"], "expected agent or collector"),
        (vec!["--purge"], "--purge goes with --uninstall"),
    ] {
        let bad = dir.path().join("bad");
        let out = Command::new(repo().join("deploy/install.sh"))
            .args(&args)
            .env("DESTDIR", &bad)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!bad.exists(), "{args:?} staged files");
    }
}

/// Every YAML under deploy/configs passes check-config, with the secret
/// files it names (`*_file: /etc/vedette/…`) present: certificates and keys
/// (`tls/*.pem`) as `vedette-collector tls init` makes them.
#[test]
fn example_configs_pass_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("etc/tls");
    let pki = vedette_tests::pki::Pki::run(&tls, &["vedette.example.internal"], &["web-01"], 30);
    for f in ["web-01.pem", "web-01-key.pem"] {
        std::fs::copy(pki.dir.join("agents").join(f), tls.join(f)).unwrap();
    }
    let mut checked = Vec::new();
    let mut pending = vec![repo().join("deploy/configs")];
    while let Some(d) = pending.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Secret files live in /etc/vedette: stand-ins under the temp dir.
            let secrets = dir.path().join("etc");
            std::fs::create_dir_all(&secrets).unwrap();
            for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
                if let Some(f) = line.split("_file: /etc/vedette/").nth(1) {
                    let f = f.split_whitespace().next().unwrap();
                    if f.ends_with(".pem") {
                        assert!(secrets.join(f).exists(), "{f}: not made by tls init");
                        continue;
                    }
                    std::fs::write(secrets.join(f), "an-example-secret-of-32-characters").unwrap();
                }
            }
            let text = text.replace(
                "_file: /etc/vedette/",
                &format!("_file: {}/", secrets.display()),
            );
            let copy = dir.path().join(path.file_name().unwrap());
            std::fs::write(&copy, text).unwrap();
            let binary = if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .contains("agent")
            {
                "vedette-agent"
            } else {
                "vedette-collector"
            };
            let out = check_config(binary, &copy);
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            checked.push(path);
        }
    }
    assert!(checked.len() >= 4, "only {checked:?}");
}

/// The operator's flow: `token new` on the collector's config, the token in
/// the agent's token_file; the host it names pushes, another host is refused.
#[test]
fn an_agent_admitted_with_token_new_pushes_and_another_host_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = dir.path().join("collector.yaml");
    std::fs::write(
        &conf,
        format!(
            "# ours\nlisten: 127.0.0.1:{port}\ndata_dir: {}\nagents: []\nrules: []\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let out = Command::new(bin("vedette-collector"))
        .args(["token", "new", "--host", "web-*", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(token.len(), 64, "stdout is the token alone: {token:?}");
    let edited = std::fs::read_to_string(&conf).unwrap();
    assert!(edited.starts_with("# ours\n") && !edited.contains(&token));

    // Collector::start writes its own listen/data_dir lines: give it the rest.
    let rest: String = edited
        .lines()
        .filter(|l| !l.starts_with("listen:") && !l.starts_with("data_dir:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let c = Collector::start(dir.path(), port, &rest);
    std::fs::write(dir.path().join("agent.token"), format!("{token}\n")).unwrap();
    let agent = |host: &str| {
        Daemon::start(
            "vedette-agent",
            dir.path(),
            host,
            &format!(
                "host: {host}\ncollector: {{url: '{}', token_file: agent.token}}\n\
                 interval: 1s\nlisten: off\nspool: {{dir: {host}-spool}}\n",
                c.url
            ),
        )
    };
    let _web = agent("web-01");
    wait_for(
        "web-01 to be up at the collector",
        Duration::from_secs(20),
        &c.daemon.log,
        || (c.metric("vedette_host_up{host=\"web-01\"}") == Some(1.0)).then_some(()),
    );
    let db = agent("db-01");
    // "HTTP 403", not a bare "403": the port in the first log line may hold it.
    db.wait_log("HTTP 403", 1);
    assert!(
        db.log_text().contains("web-*"),
        "the refusal names the allowed hosts: {}",
        db.log_text()
    );
    assert_eq!(c.metric("vedette_host_up{host=\"db-01\"}"), None);
}
