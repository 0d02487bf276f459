//! Harness for end-to-end tests: runs the real `vedette-collector` and
//! `vedette-agent` binaries as child processes on loopback ports, each with a
//! config file and log in a per-test temporary directory, and waits for
//! events with deadlines (never fixed sleeps).
//!
//! The binaries are the ones cargo built for this test run (`cargo test
//! --workspace` builds them, because their own crates have integration tests).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The directory holding this test run's binaries (`target/<profile>`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    // target/<profile>/deps/<test-binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps")
        .to_path_buf()
}

/// The path of one of the workspace's binaries, checked to exist.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --workspace` (or `cargo build --workspace`) first",
        path.display()
    );
    path
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral loopback port")
}

/// Polls `probe` every 50 ms until it returns `Some`, or panics after `deadline`
/// with `what` and the tail of `log`.
pub fn wait_for<T>(
    what: &str,
    deadline: Duration,
    log: &Path,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() > end {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "timed out after {deadline:?} waiting for {what}; log {}:\n{}",
                log.display(),
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running daemon, killed when dropped.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `binary --config <dir>/<name>.yaml` with `config` written there.
    pub fn start(binary: &str, dir: &Path, name: &str, config: &str) -> Daemon {
        Daemon::start_with_env(binary, dir, name, config, &[])
    }

    /// [`Daemon::start`] with extra environment variables.
    pub fn start_with_env(
        binary: &str,
        dir: &Path,
        name: &str,
        config: &str,
        env: &[(&str, &str)],
    ) -> Daemon {
        let cfg = dir.join(format!("{name}.yaml"));
        std::fs::write(&cfg, config).expect("writing a test config");
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("opening a test log");
        let child = Command::new(bin(binary))
            .arg("--config")
            .arg(&cfg)
            .current_dir(dir)
            .env("RUST_LOG", "info")
            // Defaults that keep state (the collector's data_dir, the
            // agent's spool) stay inside the test's own directory.
            .env("STATE_DIRECTORY", dir.join(format!("{name}-state")))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("cloning a file handle"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {binary}: {e}"));
        Daemon { child, log }
    }

    /// Sends `signal` (e.g. "HUP") and returns at once.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(sent.success(), "kill -{signal} failed");
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log holds `needle` `times` times in all.
    pub fn wait_log(&self, needle: &str, times: usize) {
        wait_for(
            &format!("{needle:?} in the log (x{times})"),
            Duration::from_secs(20),
            &self.log,
            || (self.log_text().matches(needle).count() >= times).then_some(()),
        )
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }

    /// Sends `signal` (e.g. "TERM", "KILL") and waits for the exit status.
    pub fn stop(mut self, signal: &str) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([format!("-{signal}"), pid])
            .status()
            .expect("running kill");
        assert!(sent.success(), "kill -{signal} failed");
        let log = self.log.clone();
        wait_for("the process to exit", Duration::from_secs(15), &log, || {
            self.child.try_wait().ok().flatten()
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A collector under test, reachable at `url`.
pub struct Collector {
    pub daemon: Daemon,
    pub url: String,
    /// Sent as a bearer token on every request when set (API tokens configured).
    pub token: Option<String>,
    http: reqwest::blocking::Client,
}

impl Collector {
    /// Starts a collector on `port` with `data_dir` in `dir` and the given
    /// extra config, and waits until `/readyz` answers.
    pub fn start(dir: &Path, port: u16, extra: &str) -> Collector {
        let config = format!(
            "listen: 127.0.0.1:{port}\ndata_dir: {}\n{extra}",
            dir.join("data").display()
        );
        let daemon = Daemon::start("vedette-collector", dir, "collector", &config);
        let c = Collector {
            daemon,
            url: format!("http://127.0.0.1:{port}"),
            token: None,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("building an http client"),
        };
        let log = c.daemon.log.clone();
        wait_for(
            "the collector to be ready",
            Duration::from_secs(20),
            &log,
            || c.get_text("/readyz").filter(|t| t.starts_with("ready")),
        );
        c
    }

    /// [`Collector::start`] serving TLS with `pki`'s server pair (mutual TLS
    /// when `client` names an agent pair, which the test's own client then
    /// presents). Its `url` is `https://collector.test:PORT`, resolved to
    /// 127.0.0.1 by the test's client.
    pub fn start_tls(
        dir: &Path,
        port: u16,
        extra: &str,
        pki: &pki::Pki,
        client: Option<&str>,
    ) -> Collector {
        let config = format!(
            "listen: 127.0.0.1:{port}\ndata_dir: {}\n{}{extra}",
            dir.join("data").display(),
            pki.collector_tls(client.is_some())
        );
        let daemon = Daemon::start("vedette-collector", dir, "collector", &config);
        let c = Collector {
            daemon,
            url: format!("https://{}:{port}", pki::SERVER_NAME),
            token: None,
            http: pki_client(pki, port, client),
        };
        let log = c.daemon.log.clone();
        wait_for(
            "the collector to be ready over TLS",
            Duration::from_secs(20),
            &log,
            || c.get_text("/readyz").filter(|t| t.starts_with("ready")),
        );
        c
    }

    /// The DER of the certificate a new TLS connection is served.
    pub fn served_certificate(&self) -> Option<Vec<u8>> {
        let r = self.http.get(format!("{}/healthz", self.url)).send().ok()?;
        r.extensions()
            .get::<reqwest::tls::TlsInfo>()?
            .peer_certificate()
            .map(<[u8]>::to_vec)
    }

    /// GET `path` as text, `None` on any failure.
    pub fn get_text(&self, path: &str) -> Option<String> {
        let mut req = self.http.get(format!("{}{path}", self.url));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let r = req.send().ok()?;
        r.status().is_success().then(|| r.text().ok())?
    }

    /// GET `path` as JSON, `None` on any failure.
    pub fn get_json(&self, path: &str) -> Option<Value> {
        serde_json::from_str(&self.get_text(path)?).ok()
    }

    /// Every incident, oldest first.
    pub fn incidents(&self) -> Vec<Value> {
        let mut v = self
            .get_json("/api/v1/incidents")
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default();
        v.reverse();
        v
    }

    /// Waits until an incident matching `pred` exists, and returns it.
    pub fn wait_incident(
        &self,
        what: &str,
        deadline: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        wait_for(what, deadline, &self.daemon.log, || {
            self.incidents().into_iter().find(|i| pred(i))
        })
    }

    /// The value of the metric line starting with `prefix` (e.g.
    /// `vedette_host_up{host="a"}`), if present.
    pub fn metric(&self, prefix: &str) -> Option<f64> {
        let text = self.get_text("/metrics")?;
        text.lines()
            .find(|l| l.starts_with(prefix) && l[prefix.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }
}

/// Runs Debian's Prometheus with `scrape_configs` (YAML items, indented two
/// spaces), scraping every second; returns it (killed on drop) and its URL.
pub fn prometheus(dir: &Path, scrape_configs: &str) -> (Daemon, String) {
    let port = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n{scrape_configs}"
        ),
    )
    .expect("writing prometheus.yml");
    let log = dir.join("prometheus.log");
    let out = std::fs::File::create(&log).expect("creating prometheus.log");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("cloning a file handle"))
        .stderr(out)
        .spawn()
        .expect(
            "prometheus (Debian package prometheus) must be installed: tests/run.sh installs it",
        );
    (Daemon { child, log }, format!("http://127.0.0.1:{port}"))
}

/// A client trusting `pki`'s CA, reaching `collector.test` at 127.0.0.1:`port`,
/// presenting `client`'s pair when given; each request on a new connection.
pub fn pki_client(pki: &pki::Pki, port: u16, client: Option<&str>) -> reqwest::blocking::Client {
    let ca = std::fs::read(pki.ca()).expect("reading the CA");
    let mut b = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("a PEM CA"))
        .resolve(
            pki::SERVER_NAME,
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        )
        .pool_max_idle_per_host(0)
        .tls_info(true);
    if let Some(a) = client {
        b = b.identity(reqwest::Identity::from_pem(&pki.identity_pem(a)).expect("a client pair"));
    }
    b.build().expect("building an https client")
}

/// Starts an agent reporting as `host` to the collector at `url` every second.
pub fn agent(dir: &Path, name: &str, host: &str, url: &str, extra: &str) -> Daemon {
    // Agents sharing a test directory each get their own spool (a spool is
    // locked by its agent).
    let spool = if extra.contains("spool:") {
        String::new()
    } else {
        format!("spool: {{dir: {name}-spool}}\n")
    };
    let config = format!(
        "host: {host}\ncollector:\n  url: {url}\ninterval: 1s\nlisten: off\n{spool}{extra}"
    );
    Daemon::start("vedette-agent", dir, name, &config)
}

pub use vedette_protocol::clock::now_ms;

/// The resident set of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("reading /proc/PID/status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Pushes one batch with a single sample `metric` = `value` as `host`
/// (sequence `seq` of run `boot_id`) straight to the collector's push
/// endpoint, as an agent would, and returns the HTTP status.
pub fn push_sample(
    url: &str,
    host: &str,
    boot_id: &str,
    seq: u64,
    metric: &str,
    value: f64,
) -> u16 {
    let now = now_ms();
    let batch = serde_json::json!({
        "version": vedette_protocol::VERSION,
        "agent": {"host": host, "version": "test", "boot_id": boot_id, "interval_s": 60.0},
        "seq": seq,
        "sent_at_ms": now,
        "samples": [{"name": metric, "ts_ms": now, "value": value}],
    });
    reqwest::blocking::Client::new()
        .post(format!("{url}/api/v1/push"))
        .json(&batch)
        .send()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// The value of metric line `name` (exact series, e.g.
/// `vedette_agent_queue_batches`) on `127.0.0.1:port/metrics`, if served.
pub fn metric_at(port: u16, name: &str) -> Option<f64> {
    let text = reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics"))
        .ok()?
        .text()
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// What `promtool check metrics` says about `text` (empty when nothing);
/// promtool comes from Debian's `prometheus` package (tests/run.sh installs it).
pub fn promtool_check(text: &str) -> String {
    use std::io::Write;
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) must be installed: tests/run.sh installs it");
    promtool
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(text.as_bytes())
        .expect("writing to promtool");
    let out = promtool.wait_with_output().expect("promtool ran");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        said.trim().to_string()
    } else {
        format!("exit {}: {said}", out.status)
    }
}

pub mod http;
pub mod layers;
pub mod pki;
