//! The server process: `/free` and, behind the paywall, `/paid`.
use std::sync::Arc;

use axum::{Router, routing::get};
use paychan_verifier::{
    MemoryChannels, MemoryStore, Verifier, VoucherStore,
    store::{Durability, RedbStore},
};

use paychan_x402::server::{Paywall, PaywallConfig};

use crate::workload;

async fn handler() -> &'static str {
    "{\"ok\":true}"
}

/// Serves until killed.
pub fn main(port: u16, channels: usize, store: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let source = MemoryChannels::default();
        for i in 0..channels {
            source
                .upsert(workload::snapshot(i))
                .map_err(|e| e.to_string())?;
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        match store {
            "memory" => serve(port, source, MemoryStore::default()).await,
            "redb-batched" | "redb-sync" => {
                let durability = if store == "redb-sync" {
                    Durability::Sync
                } else {
                    Durability::Batched {
                        interval: std::time::Duration::from_millis(5),
                    }
                };
                let redb = RedbStore::open(dir.path().join("vouchers.redb"), durability)
                    .map_err(|e| e.to_string())?;
                serve(port, source, redb).await
            }
            other => Err(format!("unknown store {other:?}")),
        }
    })
}

async fn serve<S: VoucherStore + 'static>(
    port: u16,
    source: MemoryChannels,
    store: S,
) -> Result<(), String> {
    let terms = workload::terms();
    let verifier = Arc::new(Verifier::new(source, store, terms));
    let config = PaywallConfig::new(workload::NETWORK, workload::extra());
    let paywall = Paywall::new(verifier, config);
    let app = Router::new()
        .route(
            "/paid",
            get(handler).layer(paywall.layer(workload::PRICE).resource_url("/paid")),
        )
        .route("/free", get(handler));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    println!("READY {port}");
    // The production stack: the same limits `paychan serve` runs with.
    paychan_x402::server::serve(
        listener,
        app,
        paychan_x402::server::Limits::default(),
        std::future::pending(),
    )
    .await
    .map_err(|e| e.to_string())
}
