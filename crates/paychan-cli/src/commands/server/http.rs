//! The HTTP side of the server commands: binding, the shutdown signal, the
//! settler's `/metrics` endpoint, and the example API ([`PricedRoute`]s
//! answered with static bodies behind the paywall, plus `GET /health`).
use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    http::{HeaderValue, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
    routing::get,
};
use paychan_settler::Settler;
use paychan_verifier::VoucherStore;
use paychan_x402::server::Paywall;

use super::config::RouteConfig;
use crate::{amount::AmountInput, error::CliError};

/// Largest static response body of a route, bytes.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// OpenMetrics text, as `prometheus-client` encodes it.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `GET /metrics` (the settler's Prometheus / OpenMetrics text) on
/// `addr` until `stop` fires. Returns the bound address and the task.
pub async fn serve_metrics<S: VoucherStore + 'static>(
    addr: &str,
    settler: Arc<Settler<S>>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), CliError> {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let text = settler.metrics_text();
            async move { ([(CONTENT_TYPE, OPENMETRICS)], text) }
        }),
    );
    let (listener, bound) = bind(addr).await?;
    let task = tokio::spawn(async move {
        let mut stop = stop;
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
    });
    Ok((bound, task))
}

/// Binds a TCP listener on `host:port`.
pub async fn bind(addr: &str) -> Result<(tokio::net::TcpListener, SocketAddr), CliError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| CliError::Io {
            what: format!("binding {addr}"),
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| CliError::Io {
        what: format!("reading the address bound for {addr}"),
        source,
    })?;
    Ok((listener, bound))
}

/// Resolves on Ctrl-C or (Unix) SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// A route with its price resolved to base units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PricedRoute {
    /// The path.
    pub path: String,
    /// Base units (0 = free).
    pub price: u64,
    /// The offer's description.
    pub description: Option<String>,
    /// The response's content type (and the offer's MIME type).
    pub mime_type: String,
    /// The response body.
    pub body: String,
    /// Offers `exact` too (its own `exact` key, else `false`; `serve`
    /// applies `[exact] enabled` to routes without one).
    pub exact: bool,
}

impl PricedRoute {
    /// Checks and prices a configured route for a mint with `decimals`.
    pub fn from_config(route: &RouteConfig, decimals: u8) -> Result<Self, CliError> {
        let bad = |reason: String| CliError::Usage(format!("route {:?}: {reason}", route.path));
        if !route.path.starts_with('/') || route.path.contains(['{', '}', '*']) {
            return Err(bad(
                "the path must start with / and have no {captures} or *".into(),
            ));
        }
        let price = route
            .price
            .parse::<AmountInput>()
            .and_then(|a| a.to_base_units(decimals))
            .map_err(|e| bad(format!("price {:?}: {e}", route.price)))?;
        let (body, default_type) = match &route.response {
            serde_json::Value::String(text) => (text.clone(), "text/plain; charset=utf-8"),
            other => (other.to_string(), "application/json"),
        };
        if body.len() > MAX_RESPONSE_BYTES {
            return Err(bad(format!("response exceeds {MAX_RESPONSE_BYTES} bytes")));
        }
        let mime_type = route
            .mime_type
            .clone()
            .unwrap_or_else(|| default_type.to_string());
        HeaderValue::from_str(&mime_type).map_err(|_| bad("invalid mime_type".into()))?;
        Ok(Self {
            path: route.path.clone(),
            price,
            description: route.description.clone(),
            mime_type,
            body,
            exact: route.exact.unwrap_or(false),
        })
    }
}

/// The example API: each route answers GET with its static body, behind
/// the paywall when it has a price; plus `GET /health`.
pub fn paywall_router<C, S>(paywall: &Paywall<C, S>, routes: &[PricedRoute]) -> Router
where
    C: paychan_verifier::ChannelSource + 'static,
    S: VoucherStore + 'static,
{
    let mut app = Router::new();
    for route in routes {
        let content_type = route.mime_type.clone();
        let body = route.body.clone();
        let handler = get(move || {
            let (content_type, body) = (content_type.clone(), body.clone());
            async move { static_response(&content_type, body) }
        });
        let handler = if route.price > 0 {
            let mut layer = paywall
                .layer(route.price)
                .mime_type(route.mime_type.clone())
                .exact(route.exact);
            if let Some(d) = &route.description {
                layer = layer.description(d.clone());
            }
            handler.route_layer(layer)
        } else {
            handler
        };
        app = app.route(&route.path, handler);
    }
    app.route("/health", get(|| async { "ok" }))
}

fn static_response(content_type: &str, body: String) -> Response {
    match HeaderValue::from_str(content_type) {
        Ok(v) => ([(CONTENT_TYPE, v)], body).into_response(),
        Err(_) => body.into_response(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_validated() {
        let route = |path: &str, price: &str| RouteConfig {
            path: path.into(),
            price: price.into(),
            description: None,
            mime_type: None,
            response: serde_json::json!("x"),
            exact: None,
        };
        assert!(PricedRoute::from_config(&route("joke", "1"), 6).is_err());
        assert!(PricedRoute::from_config(&route("/{id}", "1"), 6).is_err());
        assert!(PricedRoute::from_config(&route("/a", "0.0000001"), 6).is_err());
        assert!(PricedRoute::from_config(&route("/a", "-1"), 6).is_err());
        assert_eq!(
            PricedRoute::from_config(&route("/a", "0.25"), 2)
                .unwrap()
                .price,
            25
        );
    }
}
