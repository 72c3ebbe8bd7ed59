//! Setup shared by the tests that run the paying agent against the real
//! paywall on the embedded chain (`chain.rs`, `e2e.rs`).
#![allow(dead_code, clippy::unwrap_used)]

use axum::Router;
use paychan_client::PaychanClient;
use paychan_localnet::{LocalChain, MINT_DECIMALS};
use paychan_sdk::Pubkey;
use paychan_x402::{network::caip2_for_genesis, scheme::PaychanExtra};
use reqwest_middleware::ClientWithMiddleware;

pub const SOL: u64 = 1_000_000_000;

/// Serves `app` on 127.0.0.1 (a free port); returns its base URL.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// The chain's CAIP-2 id, as the paywall derives it from the genesis hash.
pub async fn network(chain: &LocalChain) -> String {
    caip2_for_genesis(
        &chain
            .rpc_client()
            .get_genesis_hash()
            .await
            .unwrap()
            .to_string(),
    )
}

/// The terms of a paywall paid to `payee` in `mint`, with the grace period
/// and minimum deposit its offers advertise (`extra`).
pub fn terms(payee: Pubkey, mint: Pubkey, price: u64) -> paychan_verifier::Terms {
    let mut terms = paychan_verifier::Terms::new(paychan_sdk::ID, payee, mint, price);
    terms.min_grace_period = 900;
    terms.min_deposit = 5_000;
    terms
}

/// The offer's `extra` of a paywall paid to `payee`.
pub fn extra(payee: &Pubkey) -> PaychanExtra {
    PaychanExtra {
        program_id: paychan_sdk::ID.to_string(),
        token_program: paychan_sdk::TOKEN_PROGRAM_ID.to_string(),
        decimals: MINT_DECIMALS,
        grace_period_seconds: 900,
        minimum_deposit: "5000".into(),
        fee_payer: Some(payee.to_string()),
    }
}

/// A reqwest client paying with `client` (the documented one: no redirect
/// leaves a request's origin).
pub fn http(client: &PaychanClient) -> ClientWithMiddleware {
    client.http_client().unwrap()
}
