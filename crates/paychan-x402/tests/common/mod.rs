//! Shared by the server tests and `benches/paywall.rs`: an open channel as
//! the verifier sees it, decoded from real account bytes, and its vouchers
//! (`paychan-testkit`'s, as in the verifier tests); the offer's `extra` and the
//! `PAYMENT-SIGNATURE` paying a voucher.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Request, StatusCode},
};
use ed25519_dalek::SigningKey;
use paychan_sdk::state::ChannelStatus;
use paychan_verifier::{ChannelSnapshot, Pubkey, SignedVoucher};
use paychan_x402::{codec, scheme::PaychanExtra, v2};
use tower::ServiceExt;

#[allow(unused_imports)] // not every test binary signs vouchers
pub use paychan_testkit::channels::voucher;

/// What one request costs.
pub const PRICE: u64 = 1_000;
/// A local chain's CAIP-2 id (its v1 name is the same string).
pub const NETWORK: &str = "solana:4ZCjcTwgVpjByh1ZCVHHnXv7J4BvcaWW";

/// An open channel of `payer` to `payee` in `mint` holding `deposit`, whose
/// vouchers `key` signs.
pub fn open_channel(
    address: Pubkey,
    payer: Pubkey,
    payee: Pubkey,
    mint: Pubkey,
    key: &SigningKey,
    deposit: u64,
) -> ChannelSnapshot {
    let state = paychan_testkit::channels::channel_state(
        key,
        (payer, payee, mint),
        deposit,
        ChannelStatus::Open,
        0,
    );
    let data = state.encode();
    ChannelSnapshot::from_account(address, &paychan_sdk::ID, &paychan_sdk::ID, &data).unwrap()
}

/// The offer's `extra` for this program (token program `[6; 32]`, 6 decimals).
pub fn extra(
    grace_period_seconds: i64,
    minimum_deposit: &str,
    fee_payer: Option<String>,
) -> PaychanExtra {
    PaychanExtra {
        program_id: paychan_sdk::ID.to_string(),
        token_program: Pubkey::new_from_array([6; 32]).to_string(),
        decimals: 6,
        grace_period_seconds,
        minimum_deposit: minimum_deposit.into(),
        fee_payer,
    }
}

/// The v2 payload paying `voucher` for the offer's `accepted` requirement.
pub fn payload_v2(
    voucher: &SignedVoucher,
    accepted: &v2::PaymentRequirements,
) -> v2::PaymentPayload {
    v2::PaymentPayload {
        x402_version: 2,
        resource: None,
        accepted: accepted.clone(),
        payload: serde_json::to_value(voucher).unwrap(),
        extensions: None,
    }
}

/// `PAYMENT-SIGNATURE` paying `voucher` for the offer's `accepted` requirement.
pub fn pay_v2(voucher: &SignedVoucher, accepted: &v2::PaymentRequirements) -> String {
    codec::encode(&payload_v2(voucher, accepted)).unwrap()
}

/// `req` through `app`: the answer's status, headers and body.
pub async fn send(app: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let res = app.clone().oneshot(req).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}
