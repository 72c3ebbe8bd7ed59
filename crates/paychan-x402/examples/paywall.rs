//! A paywalled API in a few lines: `/joke` costs 0.001 USDC per request,
//! paid with paychan vouchers; channels are read from the chain, accepted
//! vouchers are fsync'd into a redb file before each 200.
//!
//! `cargo run -p paychan-x402 --features server --example paywall -- <rpc-url> <payee> <usdc-mint>`
//! (devnet: `https://api.devnet.solana.com`, your payee address, `4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU`).
//! Run `paychan settle` next to it to put the vouchers on chain.
use std::{sync::Arc, time::Duration};

use axum::{Extension, Router, routing::get};
use paychan_verifier::{
    Receipt, Terms, Verifier,
    rpc::RpcChannels,
    store::{Durability, RedbStore},
};
use paychan_x402::{
    network::Network,
    scheme::PaychanExtra,
    server::{Limits, Paywall, PaywallConfig},
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, rpc, payee, mint] = args.as_slice() else {
        return Err("usage: paywall <rpc-url> <payee> <mint>".into());
    };
    let (payee, mint) = (payee.parse()?, mint.parse()?);
    let channels = Arc::new(RpcChannels::new(rpc, paychan_sdk::ID, payee));
    let _updates = channels.spawn_updater(None, Duration::from_secs(2));
    let store = RedbStore::open("vouchers.redb", Durability::Sync)?;
    // What channels must offer: a grace period of an hour, 0.1 USDC escrowed.
    let mut terms = Terms::new(paychan_sdk::ID, payee, mint, 1_000);
    (terms.min_grace_period, terms.min_deposit) = (3_600, 100_000);
    let verifier = Arc::new(Verifier::new(channels, store, terms));
    let extra = PaychanExtra {
        program_id: paychan_sdk::ID.to_string(),
        token_program: paychan_sdk::TOKEN_PROGRAM_ID.to_string(),
        decimals: 6,
        grace_period_seconds: 3_600,
        minimum_deposit: "100000".into(),
        fee_payer: Some(payee.to_string()),
    };
    let paywall = Paywall::new(verifier, PaywallConfig::new(Network::Devnet.caip2(), extra));
    let app = Router::new()
        .route(
            "/joke",
            get(|Extension(r): Extension<Receipt>| async move {
                format!("paid {}: why did the vault close? grace ended\n", r.charged)
            }),
        )
        .route_layer(paywall.layer(1_000)) // 0.001 USDC
        .route("/health", get(|| async { "ok" }));
    // Header, request and body limits, connection and in-flight caps.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8402").await?;
    paychan_x402::server::serve(listener, app, Limits::default(), std::future::pending()).await?;
    Ok(())
}
