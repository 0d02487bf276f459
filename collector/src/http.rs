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
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower_http::timeout::TimeoutLayer;

use crate::config::HttpLimits;

/// The read buffer for a request's head (request line and headers).
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Serves `app` on `listener` until `shutdown`, then waits for requests in
/// flight to finish.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
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
        let app = app.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let app = app.clone();
            async move {
                Ok::<_, Infallible>(
                    app.oneshot(req.map(Body::new))
                        .await
                        .unwrap_or_else(|e| match e {}),
                )
            }
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_header_size(MAX_HEADER_BYTES)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection closed with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
