//! Shared by the server tests and `benches/paywall.rs`: an open channel as
//! the verifier sees it, decoded from real account bytes; its vouchers, the
//! offer's `extra` and the `PAYMENT-SIGNATURE` paying a voucher.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Request, StatusCode},
};
use ed25519_dalek::SigningKey;
use paychan_sdk::state::{Channel, ChannelStatus};
use paychan_verifier::{ChannelSnapshot, Pubkey, SignedVoucher};
use paychan_voucher::{VoucherV1, sign_v1};
use paychan_x402::{codec, scheme::PaychanExtra, v2};
use tower::ServiceExt;

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
    let state = Channel {
        payer,
        payee,
        mint,
        authorized_signer: Pubkey::new_from_array(key.verifying_key().to_bytes()),
        rent_payer: payer,
        deposit,
        settled: 0,
        refunded: 0,
        salt: 1,
        open_slot: 10,
        closure_started_at: 0,
        grace_period: 3_600,
        version: 1,
        bump: 255,
        status: ChannelStatus::Open as u8,
        reserved: [0; 5],
    };
    let data = state.encode();
    ChannelSnapshot::from_account(address, &paychan_sdk::ID, &paychan_sdk::ID, &data).unwrap()
}

/// `key`'s voucher for `channel`.
pub fn voucher(
    key: &SigningKey,
    channel: Pubkey,
    cumulative: u64,
    expires_at: i64,
) -> SignedVoucher {
    sign_v1(
        key,
        &VoucherV1 {
            channel_id: channel.to_bytes(),
            cumulative_amount: cumulative,
            expires_at,
        },
    )
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
