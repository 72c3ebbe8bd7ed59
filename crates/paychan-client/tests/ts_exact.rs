//! Stock x402 clients pay the paywall's `exact` offers: `@x402/fetch` with
//! `@x402/svm` 2.27's `ExactSvmScheme` (nothing of paychan's), run by Node
//! (`clients/ts/test/integration/exact.mjs`), pays 20 requests to a route
//! that offers `paychan` and `exact`; the server checks, co-signs as fee
//! payer and confirms each transaction before the 200.
//!
//! Asserted: every answer is a 200 whose `PAYMENT-RESPONSE` names a distinct
//! transaction that is confirmed on chain and charges the price to this
//! payer; the offer listed `paychan` then `exact` and every payment was
//! `exact`; the payee's token account rose by exactly 20 × price and the
//! client's fell by as much; the fee payer paid 20 transaction fees, no more
//! than the settler's worst case each.
//!
//! Built only with the feature `x402-exact` (see Cargo.toml): it needs the
//! `exact` settlement of `paychan_x402::server::exact` (`ExactSettler`,
//! `ExactConfig`, `ExactLimits`, `ExactReceipt`, `Paywall::with_exact`,
//! `PaywallLayer::exact`), which branch h-exact adds.
//!
//! `@x402/svm` 2.27 refuses every network but mainnet, devnet and testnet
//! ("Unsupported SVM network"), so the paywall here names devnet's CAIP-2
//! id while it runs on the embedded chain, and the client is given the
//! chain's RPC URL. The test mint is not one of @x402/svm's default assets:
//! the client allows it in its spend controls.
//!
//! Needs Node.js and `npm ci --prefix clients/ts` (scripts/test.sh does it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{collections::BTreeSet, str::FromStr, sync::Arc, time::Instant};

use axum::{Extension, Router, routing::get};
use paychan_localnet::{LocalChain, LocalChainConfig};
use paychan_verifier::{MemoryChannels, MemoryStore, Verifier};
use paychan_x402::server::{
    Paywall, PaywallConfig,
    exact::{ExactConfig, ExactLimits, ExactReceipt, ExactSettler},
};
use serde_json::json;
use solana_keypair::Keypair;
use solana_signature::Signature;
use solana_signer::Signer;

use common::{PRICE, SOL, Tokens, assert_installed, extra, party, run_integration, serve};

const REQUESTS: u64 = 20;
const CLIENT_TOKENS: u64 = 1_000_000;
/// Devnet's CAIP-2 id: a network the stock client accepts.
const NETWORK: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_x402_fetch_and_svm_exact_pay_20_requests() {
    assert_installed(&[
        "node_modules/@x402/fetch/package.json",
        "node_modules/@x402/svm/package.json",
    ]);
    let chain = LocalChain::start(LocalChainConfig::default())
        .await
        .unwrap();
    let payee = party(&chain, SOL, Tokens::Associated(0)).await;
    let (payee, payee_tokens) = (payee.key, payee.tokens);
    let fee_payer = Keypair::new();
    chain.fund_sol(&fee_payer.pubkey(), SOL).await.unwrap();
    let client = party(&chain, 0, Tokens::Associated(CLIENT_TOKENS)).await;
    let (client, client_tokens) = (client.key, client.tokens);

    let settler = Arc::new(
        ExactSettler::connect(
            chain.rpc_url(),
            ExactConfig {
                network: NETWORK.into(),
                pay_to: payee.pubkey(),
                mint: chain.mint(),
                fee_payer: fee_payer.insecure_clone(),
                memo: None,
                limits: ExactLimits::default(),
            },
        )
        .await
        .unwrap(),
    );
    let max_fee = settler.max_fee();
    // The paywall's `paychan` side is there (the offer lists it first) but unused.
    let verifier = Arc::new(Verifier::new(
        MemoryChannels::default(),
        MemoryStore::default(),
        common::terms(payee.pubkey(), chain.mint(), PRICE),
    ));
    let paywall = Paywall::new(
        verifier,
        PaywallConfig::new(NETWORK.to_owned(), extra(&payee.pubkey())),
    )
    .with_exact(settler);
    let app = Router::new().route(
        "/paid",
        get(|Extension(r): Extension<ExactReceipt>| async move {
            format!("paid {} in {}", r.amount, r.signature)
        })
        .layer(paywall.layer(PRICE).exact(true)),
    );
    let url = format!("{}/paid", serve(app).await);
    let fee_payer_before = chain.lamports(&fee_payer.pubkey()).await.unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in.json"), tmp.path().join("out.json"));
    std::fs::write(
        &input,
        serde_json::to_vec(&json!({
            "rpcUrl": chain.rpc_url(),
            "network": NETWORK,
            "mint": chain.mint().to_string(),
            "payerSecretKey": client.to_bytes().to_vec(),
            "url": url,
            "requests": REQUESTS,
        }))
        .unwrap(),
    )
    .unwrap();
    let started = Instant::now();
    let report = run_integration("exact.mjs", &input, &output).await;
    let elapsed = report["elapsedMs"].as_f64().unwrap();
    eprintln!(
        "stock @x402/svm exact: {REQUESTS} paid requests in {elapsed:.0} ms \
         ({:.1} paid requests/s; node run {:?})",
        REQUESTS as f64 * 1000.0 / elapsed,
        started.elapsed()
    );

    let wire = &report["wire"];
    assert_eq!(wire["offeredSchemes"], json!(["paychan", "exact"]));
    assert_eq!(wire["paidSchemes"], json!(vec!["exact"; REQUESTS as usize]));
    assert_eq!(wire["unpaid402"], REQUESTS);
    assert_eq!(wire["refused"], json!([]));
    assert_eq!(wire["paidAnswers"], REQUESTS);

    let outcomes = report["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len() as u64, REQUESTS);
    let mut transactions = BTreeSet::new();
    for (n, o) in outcomes.iter().enumerate() {
        assert_eq!(o["status"], 200, "request {n}: {o}");
        let receipt = &o["receipt"];
        assert_eq!(receipt["success"], true, "request {n}: {o}");
        assert_eq!(receipt["network"], NETWORK, "request {n}");
        assert_eq!(receipt["payer"], client.pubkey().to_string(), "request {n}");
        assert_eq!(receipt["amount"], PRICE.to_string(), "request {n}");
        let tx = receipt["transaction"].as_str().unwrap();
        assert_eq!(o["body"], format!("paid {PRICE} in {tx}"), "request {n}");
        let signature = Signature::from_str(tx).unwrap();
        // Confirmed before the answer was sent.
        let status = chain
            .rpc_client()
            .get_signature_statuses(&[signature])
            .await
            .unwrap()
            .value;
        assert!(
            matches!(status.first(), Some(Some(s)) if s.err.is_none()),
            "request {n}: {tx} is not on chain: {status:?}"
        );
        transactions.insert(tx.to_owned());
    }
    assert_eq!(
        transactions.len() as u64,
        REQUESTS,
        "one transaction per request"
    );

    assert_eq!(
        chain.token_balance(&payee_tokens).await.unwrap(),
        REQUESTS * PRICE
    );
    assert_eq!(
        chain.token_balance(&client_tokens).await.unwrap(),
        CLIENT_TOKENS - REQUESTS * PRICE
    );
    let fees = fee_payer_before - chain.lamports(&fee_payer.pubkey()).await.unwrap();
    eprintln!(
        "fee payer: {fees} lamports for {REQUESTS} requests ({} per request)",
        fees / REQUESTS
    );
    assert!(
        fees >= REQUESTS * 10_000 && fees <= REQUESTS * max_fee,
        "{fees} lamports: two signatures per transaction, at most {max_fee} each"
    );
}
