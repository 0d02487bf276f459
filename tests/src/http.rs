//! A small HTTP/1.1 server on a real loopback socket, for the receivers the
//! collector notifies (webhook, fake PagerDuty and ServiceNow): every request
//! is recorded, and a handler decides the answer (or holds it back).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Header names lowercased.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What the handler answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Status, extra headers, body (sent as JSON).
    Answer(u16, Vec<(String, String)>, String),
    /// Never answer until [`Server::release`] (the connection then closes).
    Hold,
}

impl Reply {
    pub fn status(code: u16, body: &str) -> Reply {
        Reply::Answer(code, Vec::new(), body.to_string())
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

struct Shared {
    requests: Mutex<Vec<Request>>,
    released: Mutex<bool>,
    wake: Condvar,
    handler: Mutex<Arc<Handler>>,
}

/// A running server; its threads end with the test process.
pub struct Server {
    pub url: String,
    pub port: u16,
    shared: Arc<Shared>,
}

impl Server {
    /// Serves on 127.0.0.1:`port` (0: any free port).
    pub fn start(port: u16, handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("binding the test server");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            released: Mutex::new(false),
            wake: Condvar::new(),
            handler: Mutex::new(Arc::new(handler)),
        });
        let s = Arc::clone(&shared);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let s = Arc::clone(&s);
                std::thread::spawn(move || serve(conn, &s));
            }
        });
        Server {
            url: format!("http://127.0.0.1:{port}"),
            port,
            shared,
        }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().expect("lock").clone()
    }

    /// Replaces the handler.
    pub fn handle(&self, handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) {
        *self.shared.handler.lock().expect("lock") = Arc::new(handler);
    }

    /// Lets every held request go (its connection closes unanswered).
    pub fn release(&self) {
        *self.shared.released.lock().expect("lock") = true;
        self.shared.wake.notify_all();
    }
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len.min(16 << 20)];
    r.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

fn serve(conn: TcpStream, s: &Shared) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
    let mut w = match conn.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut r = BufReader::new(conn);
    while let Some(req) = read_request(&mut r) {
        let handler = Arc::clone(&s.handler.lock().expect("lock"));
        let reply = handler(&req);
        s.requests.lock().expect("lock").push(req);
        match reply {
            Reply::Hold => {
                let mut released = s.released.lock().expect("lock");
                while !*released {
                    released = s.wake.wait(released).expect("lock");
                }
                return;
            }
            Reply::Answer(code, headers, body) => {
                let mut out = format!(
                    "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&body);
                if w.write_all(out.as_bytes()).is_err() {
                    return;
                }
            }
        }
    }
}
