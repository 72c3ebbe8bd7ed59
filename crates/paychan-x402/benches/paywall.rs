//! In-process cost of the paywall layer: a free route, a paid route (a new
//! voucher per request, so every request verifies a signature and advances
//! the store) and the verifier's `check_priced` alone; the layer's own
//! overhead is `paid − check − free`.
//!
//! `cargo bench -p paychan-x402 --features server --bench paywall`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode},
    routing::get,
};
use ed25519_dalek::SigningKey;
use paychan_verifier::{MemoryChannels, MemoryStore, Pubkey, Terms, Verifier};
use paychan_voucher::SignedVoucher;
use paychan_x402::{
    scheme::PaychanExtra,
    server::{Paywall, PaywallConfig},
};
use tower::ServiceExt;

#[path = "../tests/common/mod.rs"]
mod common;

const N: u64 = 20_000;

fn verifier(
    key: &SigningKey,
    channel: Pubkey,
    payee: Pubkey,
    mint: Pubkey,
) -> Verifier<MemoryChannels, MemoryStore> {
    let channels = MemoryChannels::default();
    channels
        .upsert(common::open_channel(
            channel,
            payee,
            payee,
            mint,
            key,
            u64::MAX,
        ))
        .unwrap();
    Verifier::new(
        channels,
        MemoryStore::default(),
        Terms::new(paychan_sdk::ID, payee, mint, 1),
    )
}

fn vouchers(key: &SigningKey, channel: Pubkey) -> Vec<SignedVoucher> {
    (1..=N)
        .map(|i| common::voucher(key, channel, i, 0))
        .collect()
}

fn per_request(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6 / N as f64
}

/// µs per request of `N` GETs of `path` without a payment, `check`ing each
/// answer's status.
async fn unpaid_gets(app: &Router, path: &str, check: impl Fn(StatusCode)) -> f64 {
    let t = Instant::now();
    for _ in 0..N {
        let res = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        check(res.status());
    }
    per_request(t.elapsed())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let key = SigningKey::from_bytes(&[7; 32]);
    let (channel, payee, mint) = (
        Pubkey::new_unique(),
        Pubkey::new_unique(),
        Pubkey::new_unique(),
    );
    let extra = PaychanExtra {
        program_id: paychan_sdk::ID.to_string(),
        token_program: payee.to_string(),
        decimals: 6,
        grace_period_seconds: 3_600,
        minimum_deposit: "1".into(),
        fee_payer: None,
    };
    let vs = vouchers(&key, channel);

    // The verifier alone.
    let alone = verifier(&key, channel, payee, mint);
    let t = Instant::now();
    for v in &vs {
        alone.check_priced(v, 1, 1_800_000_000).await.unwrap();
    }
    let check = per_request(t.elapsed());

    let paywall = Paywall::new(
        Arc::new(verifier(&key, channel, payee, mint)),
        PaywallConfig::new(common::NETWORK, extra),
    );
    let accepted = paywall.payment_required(1, "/paid").accepts[0].clone();
    let headers: Vec<String> = vs.iter().map(|v| common::pay_v2(v, &accepted)).collect();
    let app = Router::new()
        .route("/paid", get(|| async { "ok" }))
        .route_layer(paywall.layer(1))
        .route("/free", get(|| async { "ok" }));

    let free = unpaid_gets(&app, "/free", |s| assert!(s.is_success())).await;
    let offer = unpaid_gets(&app, "/paid", |s| assert_eq!(s, 402)).await;

    let t = Instant::now();
    for h in &headers {
        let req = Request::get("/paid")
            .header("PAYMENT-SIGNATURE", h.as_str())
            .body(Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert!(res.status().is_success(), "{}", res.status());
    }
    let paid = per_request(t.elapsed());

    println!("free route        {free:8.2} µs/request");
    println!("402 offer         {offer:8.2} µs/request");
    println!("check_priced      {check:8.2} µs/request");
    println!("paid route        {paid:8.2} µs/request");
    println!(
        "layer overhead    {:8.2} µs/request (paid − check − free)",
        paid - check - free
    );
}
