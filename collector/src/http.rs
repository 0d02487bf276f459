//! The HTTP/1.1 server under the router: hyper connections with the bounds a
//! listener facing the network needs and `axum::serve` leaves open.
//!
//! - Request headers must arrive within `http.header_timeout` of the
//!   connection (or of the previous request on it), else the connection is
//!   closed: a client trickling headers (slowloris) cannot hold a task and a
//!   socket forever.
//! - Headers are read into at most [`MAX_HEADER_BYTES`]; more is answered 431.
//! - A whole request, body upload included, must be answered within
//!   `http.request_timeout`, else 408 (a trickled body on push).
//! - With TLS, the handshake must also finish within `http.header_timeout`.
//!   A client speaking plain HTTP to the TLS port is answered `426 Upgrade
//!   Required` in plain text naming the fix (use https://), not a silent
//!   reset. On mutual TLS each request carries the client certificate's
//!   names ([`PeerCert`]).
//! - On shutdown the listener stops accepting, idle connections close, and
//!   requests in flight finish (the caller bounds that wait).

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower_http::timeout::TimeoutLayer;

use crate::config::HttpLimits;
use crate::tls::{self, PeerCert, Reloadable};

/// The read buffer for a request's head (request line and headers).
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Serves `app` on `listener` (over TLS when `tls` is given) until
/// `shutdown`, then waits for requests in flight to finish.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    tls: Option<Reloadable>,
    shutdown: CancellationToken,
) {
    let app = app.layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout,
    ));
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: say so, back off, go on.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        // A TLS handshake is several small writes: without this, Nagle's
        // algorithm holds the second behind the client's delayed ACK (40 ms
        // per new connection, measured by tests/bench/tls.sh).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        let (app, watcher, tls) = (app.clone(), graceful.watcher(), tls.clone());
        tokio::spawn(async move {
            let Some(tls) = tls else {
                return connection(stream, app, None, limits, watcher, peer).await;
            };
            match tokio::time::timeout(limits.header_timeout, handshake(stream, &tls)).await {
                Ok(Ok((stream, cert))) => {
                    connection(stream, app, cert, limits, watcher, peer).await
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The first byte of a TLS connection: a handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Accepts TLS on `stream` with the current certificate; answers plain HTTP
/// with 426 (RFC 2817) and gives up.
async fn handshake(
    stream: TcpStream,
    tls: &Reloadable,
) -> Result<(tokio_rustls::server::TlsStream<TcpStream>, Option<PeerCert>), String> {
    let mut first = [0u8; 1];
    let n = stream.peek(&mut first).await.map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("closed before the handshake".into());
    }
    if first[0] != TLS_HANDSHAKE {
        let mut stream = stream;
        let body = r#"{"error":"this port speaks TLS: use https:// in the URL"}"#;
        let answer = format!(
            "HTTP/1.1 426 Upgrade Required\r\nUpgrade: TLS/1.2, HTTP/1.1\r\n\
             Connection: close\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
        return Err("plain HTTP on the TLS port (answered 426)".into());
    }
    let stream = tokio_rustls::TlsAcceptor::from(tls.current())
        .accept(stream)
        .await
        .map_err(|e| e.to_string())?;
    let cert = stream
        .get_ref()
        .1
        .peer_certificates()
        .map(|chain| PeerCert {
            dns_names: chain.first().map(tls::dns_names).unwrap_or_default().into(),
        });
    Ok((stream, cert))
}

/// Serves HTTP/1.1 on one connection, plain or TLS.
async fn connection<I>(
    io: I,
    app: Router,
    cert: Option<PeerCert>,
    limits: HttpLimits,
    watcher: Watcher,
    peer: std::net::SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let app = app.clone();
        let cert = cert.clone();
        async move {
            let mut req = req.map(Body::new);
            if let Some(c) = cert {
                req.extensions_mut().insert(c);
            }
            Ok::<_, Infallible>(app.oneshot(req).await.unwrap_or_else(|e| match e {}))
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(MAX_HEADER_BYTES)
        .serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, error = %e, "connection closed with an error");
    }
}
