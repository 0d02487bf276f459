//! The web console in a real browser: Debian's headless Chromium driven over
//! WebDriver (chromedriver, fantoccini) against a real collector fed by a
//! real agent. An operator logs in with a token, sees a breaching host's
//! incident appear on Now without reloading, acknowledges it with a note and
//! finds themselves on the timeline and in the API; a viewer sees no action
//! buttons and a forged post from their page is refused; a host label
//! holding `<script>` is shown as text and never runs. Screenshots of every
//! page go to `target/console-screenshots/` (test artifacts, not committed).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use vedette_tests::{bin_dir, free_port, Collector};

const WAIT: Duration = Duration::from_secs(30);
const OPERATOR: &str = "console-operator-token-0123456789";
const VIEWER: &str = "console-viewer-token-0123456789";

/// chromedriver on a free port, killed on drop. Chromium's profile and
/// scratch directories go to `tmp`, removed with it (a killed browser
/// cleans nothing up, and CI's /tmp outlives the run).
struct Driver {
    child: Child,
    url: String,
    _tmp: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver(log: PathBuf) -> Driver {
    let port = free_port();
    let out = std::fs::File::create(&log).expect("creating the chromedriver log");
    let tmp = tempfile::tempdir().expect("a scratch directory for Chromium");
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("cloning a file handle"))
        .stderr(out)
        .spawn()
        .expect("chromedriver (Debian package chromium-driver) must be installed: tests/run.sh installs it");
    let url = format!("http://127.0.0.1:{port}");
    vedette_tests::wait_for("chromedriver to answer", WAIT, &log, || {
        reqwest::blocking::get(format!("{url}/status"))
            .ok()
            .filter(|r| r.status().is_success())
    });
    Driver {
        child,
        url,
        _tmp: tmp,
    }
}

/// A headless Chromium session (the system browser, never a download).
async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu",
                     "--disable-background-networking", "--window-size=1280,900"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session through chromedriver")
}

/// Polls `probe` every 100 ms until it is `Some`, or fails after `WAIT`.
async fn until<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + WAIT;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn screenshots() -> PathBuf {
    let dir = bin_dir().join("../console-screenshots");
    std::fs::create_dir_all(&dir).expect("creating target/console-screenshots");
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(screenshots().join(format!("{name}.png")), png).expect("writing a screenshot");
}

async fn log_in(c: &Client, base: &str, token: &str) {
    c.goto(&format!("{base}/"))
        .await
        .expect("a WebDriver command");
    let url = c.current_url().await.expect("a WebDriver command");
    assert!(
        url.path() == "/login",
        "not logged in goes to the login page: {url}"
    );
    c.find(Locator::Css("#token"))
        .await
        .expect("a WebDriver command")
        .send_keys(token)
        .await
        .expect("a WebDriver command");
    c.find(Locator::Css("form[action='/login'] button"))
        .await
        .expect("a WebDriver command")
        .click()
        .await
        .expect("a WebDriver command");
    until("the Now page after logging in", || async {
        (c.current_url().await.ok()?.path() == "/").then_some(())
    })
    .await;
}

/// Incident `id` as the API shows it to the viewer token.
async fn incident_json(base: &str, id: i64) -> Value {
    reqwest::Client::new()
        .get(format!("{base}/api/v1/incidents/{id}"))
        .bearer_auth(VIEWER)
        .send()
        .await
        .expect("the collector's API answers")
        .json()
        .await
        .expect("JSON from the API")
}

async fn body_text(c: &Client) -> String {
    c.find(Locator::Css("body"))
        .await
        .expect("a WebDriver command")
        .text()
        .await
        .expect("a WebDriver command")
}

#[test]
fn an_operator_acknowledges_in_the_browser_and_a_viewer_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let config = format!(
        "api_tokens:\n  - {{name: alice, token: {OPERATOR}, role: operator}}\n  - {{name: bob, token: {VIEWER}, role: viewer}}\n\
         rules:\n  - {{name: web_down, check: web, status: critical, impact: 1, urgency: 2}}\n\
         services:\n  - {{name: shop, target: 0.999, hosts: ['*'], checks: [web]}}\n"
    );
    let (collector, web, agent) = {
        let c = Collector::start(&d, free_port(), &config);
        let web = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = web.local_addr().unwrap();
        let agent = vedette_tests::agent(
            &d,
            "agent",
            "shop-web-01",
            &c.url,
            &format!(
                "labels: {{role: \"<script>window.__xss = 1</script>\"}}\n\
                 checks:\n  - name: web\n    tcp: {{address: '{addr}'}}\n    interval: 1s\n    timeout: 500ms\n"
            ),
        );
        (c, web, agent)
    };
    let base = collector.url.clone();
    let driver = chromedriver(dir.path().join("chromedriver.log"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(operate(&driver, &base, web));
    drop(agent);
    drop(collector);
}

/// The browser's part: operator, then viewer.
async fn operate(driver: &Driver, base: &str, web: TcpListener) {
    let c = browser(driver).await;

    log_in(&c, base, OPERATOR).await;
    assert!(body_text(&c).await.contains("alice (operator)"));
    until("the host on /hosts", || async {
        c.goto(&format!("{base}/hosts")).await.ok()?;
        body_text(&c).await.contains("shop-web-01").then_some(())
    })
    .await;
    // The hostile label is text on the page and never ran.
    assert!(body_text(&c)
        .await
        .contains("role=<script>window.__xss = 1</script>"));
    let xss = c
        .execute("return window.__xss === undefined;", vec![])
        .await
        .expect("a WebDriver command");
    assert_eq!(xss, Value::Bool(true), "a label's script ran");
    shot(&c, "hosts").await;

    // Now, left open: the incident appears without a reload.
    c.goto(&format!("{base}/"))
        .await
        .expect("a WebDriver command");
    c.execute("window.__stayed = true;", vec![])
        .await
        .expect("a WebDriver command");
    shot(&c, "now-calm").await;
    drop(web); // the check's endpoint goes down
    let summary = until("the incident on Now without reloading", || async {
        let live = c
            .find(Locator::Css("#live"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        live.contains("web_down").then_some(live)
    })
    .await;
    assert!(
        summary.contains("shop-web-01") && summary.contains("P2"),
        "{summary}"
    );
    let stayed = c
        .execute("return window.__stayed === true;", vec![])
        .await
        .expect("a WebDriver command");
    assert_eq!(stayed, Value::Bool(true), "the page was reloaded");
    shot(&c, "now").await;

    // Acknowledge it with a note.
    c.find(Locator::Css("#live a[href^='/incidents/']"))
        .await
        .expect("a WebDriver command")
        .click()
        .await
        .expect("a WebDriver command");
    until("the incident page", || async {
        c.current_url()
            .await
            .ok()?
            .path()
            .starts_with("/incidents/")
            .then_some(())
    })
    .await;
    let id: i64 = c
        .current_url()
        .await
        .expect("a WebDriver command")
        .path()
        .rsplit('/')
        .next()
        .and_then(|id| id.parse().ok())
        .expect("an incident id in the URL");
    c.find(Locator::Css("#note"))
        .await
        .expect("a WebDriver command")
        .send_keys("looking at the load balancer")
        .await
        .expect("a WebDriver command");
    c.find(Locator::XPath("//button[text()='Acknowledge']"))
        .await
        .expect("a WebDriver command")
        .click()
        .await
        .expect("a WebDriver command");
    let timeline = until("the acknowledgement on the timeline", || async {
        let t = c
            .find(Locator::Css(".timeline"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        t.contains("acknowledged by alice").then_some(t)
    })
    .await;
    assert!(
        timeline.contains("looking at the load balancer"),
        "{timeline}"
    );
    shot(&c, "incident").await;
    let api = incident_json(base, id).await;
    assert_eq!(api["state"], "acknowledged");
    let last = api["events"]
        .as_array()
        .and_then(|e| e.last())
        .expect("the incident's timeline");
    assert_eq!(last["actor"], "alice");
    assert_eq!(last["note"], "looking at the load balancer");

    for (page, name) in [
        ("/incidents", "incidents"),
        ("/hosts/shop-web-01", "host"),
        ("/services", "services"),
        ("/problems", "problems"),
        ("/changes", "changes"),
    ] {
        c.goto(&format!("{base}{page}"))
            .await
            .expect("a WebDriver command");
        assert!(!body_text(&c).await.is_empty());
        shot(&c, name).await;
    }

    // Log out; the viewer has no action buttons and cannot post.
    c.find(Locator::XPath("//button[text()='Log out']"))
        .await
        .expect("a WebDriver command")
        .click()
        .await
        .expect("a WebDriver command");
    until("the login page", || async {
        (c.current_url().await.ok()?.path() == "/login").then_some(())
    })
    .await;
    log_in(&c, base, VIEWER).await;
    c.goto(&format!("{base}/incidents/{id}"))
        .await
        .expect("a WebDriver command");
    let buttons = c
        .find_all(Locator::Css("main button"))
        .await
        .expect("a WebDriver command");
    assert!(
        buttons.is_empty(),
        "a viewer sees {} buttons",
        buttons.len()
    );
    c.goto(&format!("{base}/incidents"))
        .await
        .expect("a WebDriver command");
    assert!(c
        .find_all(Locator::Css("input[type=checkbox]"))
        .await
        .expect("a WebDriver command")
        .is_empty());
    // A post the page did not offer, with the viewer's own session cookie.
    let status = c
        .execute_async(
            &format!(
                "const done = arguments[arguments.length - 1];
                 const csrf = document.querySelector('input[name=csrf]').value;
                 fetch('/incidents/{id}/resolve', {{method: 'POST', headers: {{'Content-Type': 'application/x-www-form-urlencoded'}},
                       body: 'csrf=' + csrf + '&note=forged'}}).then(r => done(r.status));"
            ),
            vec![],
        )
        .await
        .expect("a WebDriver command");
    assert_eq!(status, json!(403), "a viewer's post is refused");
    shot(&c, "viewer-incidents").await;
    c.close().await.expect("a WebDriver command");

    let api = incident_json(base, id).await;
    assert_eq!(
        api["state"], "acknowledged",
        "the forged resolve changed nothing"
    );
}
