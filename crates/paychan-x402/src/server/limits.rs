//! Serving a router with the limits a network-facing payment server needs:
//! a deadline for the request head (a client that never finishes its
//! headers is cut off), one for the whole request, a body size limit, a cap
//! on connections and one on requests in flight (past it: 503 with
//! `Retry-After`, at once, instead of a queue).
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use paychan_x402::server::{Limits, serve};
//!
//! # async fn run() -> std::io::Result<()> {
//! let app = Router::new().route("/health", get(|| async { "ok" }));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8402").await?;
//! serve(listener, app, Limits::default(), std::future::pending::<()>()).await
//! # }
//! ```
//!
//! A request cut off by the deadline drops the paid handler's future: the
//! paywall then keeps the voucher as a credit (the client is not charged).
use std::{future::Future, sync::Arc, time::Duration};

use axum::{Router, response::Response};
use http::{HeaderValue, StatusCode};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use serde_json::json;
use tower::ServiceBuilder;

/// How much a client may take of the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Time a client has to send a request's head (HTTP/1), from the first
    /// byte or, on a kept-alive connection, from the previous response
    /// (default 5 s).
    pub header_read_timeout: Duration,
    /// Time a request has from its head to its answer (default 30 s); then
    /// 408, and a paid handler's run counts as failed (not charged).
    pub request_timeout: Duration,
    /// Largest request body (default 1 MiB); larger is 413.
    pub max_body: usize,
    /// Connections open at once (default 1,024); more wait in the kernel's
    /// accept queue.
    pub max_connections: usize,
    /// Requests in flight at once (default 256); more are answered 503 with
    /// `Retry-After` at once.
    pub max_in_flight: usize,
    /// How long a shutdown waits for requests in flight (default 10 s).
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_body: 1 << 20,
            max_connections: 1_024,
            max_in_flight: 256,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// `app` with the in-flight cap, the request deadline and the body limit.
pub fn limited(app: Router, limits: &Limits) -> Router {
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_in_flight.max(1)));
    // Innermost first.
    app.layer(
        ServiceBuilder::new()
            .layer(tower_http::limit::RequestBodyLimitLayer::new(
                limits.max_body,
            ))
            .map_request(|req: http::Request<_>| req.map(axum::body::Body::new)),
    )
    .layer(tower_http::timeout::TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout,
    ))
    .layer(axum::middleware::from_fn_with_state(permits, in_flight))
}

/// Runs the request while a permit is free; 503 with `Retry-After` at once
/// otherwise (a queue would only hold the excess longer).
async fn in_flight(
    axum::extract::State(permits): axum::extract::State<Arc<tokio::sync::Semaphore>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Ok(_permit) = permits.try_acquire() else {
        let mut res = super::json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": "overloaded", "message": "too many requests in flight; retry shortly"}),
        );
        res.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        return res;
    };
    next.run(req).await
}

/// Serves `app` (wrapped by [`limited`]) on `listener` until `shutdown`
/// resolves, then lets requests in flight finish for
/// [`Limits::shutdown_grace`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let app = limited(app, &limits);
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = connections.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: pause instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone());
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        let first_byte = limits.header_read_timeout;
        tokio::spawn(async move {
            // hyper's header timer starts with the first byte: a connection
            // that sends nothing is closed here.
            let mut probe = [0u8; 1];
            if !matches!(
                tokio::time::timeout(first_byte, stream.peek(&mut probe)).await,
                Ok(Ok(1..))
            ) {
                drop(permit);
                return;
            }
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!("connection ended: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the shutdown grace period");
    }
    Ok(())
}
