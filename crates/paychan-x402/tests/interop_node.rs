//! Interop with the x402 ecosystem's own library: the header values paychan
//! produces are decoded and validated by `@x402/core` (pinned in
//! `tests/interop/package-lock.json`) through `tests/interop/validate.mjs`, and
//! what that library produces from them (its PAYMENT-SIGNATURE for our offer,
//! the `/verify` body its facilitator client sends) is decoded with our types.
//!
//! The values checked are the real server's: the PAYMENT-REQUIRED of an unpaid
//! request, the PAYMENT-RESPONSE of a paid one and the PAYMENT-REQUIRED of a
//! refused one are taken from the `server::Paywall` layer, the `/verify` and
//! `/supported` answers from `server::facilitator::router` (feature `server`,
//! `required-features` in Cargo.toml). Only the PAYMENT-SIGNATURE, which a
//! client builds, is built here.
//!
//! Needs Node.js and `npm ci --prefix tests/interop` (scripts/test.sh does it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{PRICE, send};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Request, StatusCode},
    routing::get,
};
use ed25519_dalek::SigningKey;
use paychan_verifier::{
    ChannelSnapshot, MemoryChannels, MemoryStore, Pubkey, Terms, Verifier, VoucherStore,
};
use paychan_voucher::{SignedVoucher, SignedVoucherJson, VoucherV1, sign_v1};
use paychan_x402::{
    codec,
    network::{self, Network},
    scheme::PaychanExtra,
    server::{Paywall, PaywallConfig, facilitator},
    v2,
};
use serde_json::{Value, json};

const DEPOSIT: u64 = 1_000_000;
const TOKEN_PROGRAM: &str = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";
const PAY_TO: &str = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin";
const RESOURCE_URL: &str = "http://127.0.0.1:8402/paid/report";
/// The voucher's expiry: 2030-01-01T00:00:00Z.
const EXPIRES_AT: i64 = 1_893_456_000;

/// The channel's payer (PAYMENT-RESPONSE and /verify name it).
fn payer() -> Pubkey {
    Pubkey::new_from_array([9; 32])
}

fn interop_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/interop")).to_path_buf()
}

/// What paychan puts on the wire, plus the typed values the round trip is compared with.
struct Produced {
    /// The input file of `validate.mjs`.
    file: Value,
    /// The PAYMENT-SIGNATURE payload we sent.
    payload: v2::PaymentPayload,
    /// The requirement we offered.
    requirements: v2::PaymentRequirements,
}

/// An open channel of [`payer`] to `PAY_TO` whose vouchers `key` signs.
fn snapshot(channel: Pubkey, key: &SigningKey, mint: Pubkey) -> ChannelSnapshot {
    let payee = Pubkey::from_str(PAY_TO).unwrap();
    common::open_channel(channel, payer(), payee, mint, key, DEPOSIT)
}

/// An answer of the server: status, headers, body.
fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .to_str()
        .unwrap()
        .to_owned()
}

/// A GET of the paid resource, with `PAYMENT-SIGNATURE` when `payment` is given.
fn get_report(payment: Option<&v2::PaymentPayload>) -> Request<Body> {
    let mut req = Request::get("/paid/report");
    if let Some(p) = payment {
        req = req.header("PAYMENT-SIGNATURE", codec::encode(p).unwrap());
    }
    req.body(Body::empty()).unwrap()
}

/// Builds every header and body the validator checks, taking each value the
/// server produces from the real paywall layer and facilitator routes.
async fn produce() -> Produced {
    // A local chain's CAIP-2 id, as the paywall derives it from the genesis hash.
    let network = network::caip2_for_genesis("8s1cSMvQ5E6bXyh5jdHTkLwTPBU1hpGUvcaPV6N2tWxQ");
    let asset = Network::Devnet.usdc_mint().unwrap().to_owned();
    let mint = Pubkey::from_str(&asset).unwrap();
    let extra = PaychanExtra {
        program_id: paychan_sdk::ID.to_string(),
        token_program: TOKEN_PROGRAM.into(),
        decimals: 6,
        grace_period_seconds: 3_600,
        minimum_deposit: "1000000".into(),
        fee_payer: Some(PAY_TO.into()),
    };
    let key = SigningKey::from_bytes(&[7; 32]);
    let channel = Pubkey::new_from_array([42; 32]);
    let channels = MemoryChannels::default();
    channels.upsert(snapshot(channel, &key, mint)).unwrap();
    let verifier = Arc::new(Verifier::new(channels, MemoryStore::default(), {
        let mut terms = Terms::new(
            paychan_sdk::ID,
            Pubkey::from_str(PAY_TO).unwrap(),
            mint,
            PRICE,
        );
        (terms.min_grace_period, terms.min_deposit) = (3_600, 1_000_000);
        terms
    }));
    let paywall = Paywall::new(
        verifier.clone(),
        PaywallConfig::new(network.clone(), extra.clone()),
    );
    let app = Router::new()
        .route("/paid/report", get(|| async { "{\"report\":1}" }))
        .route_layer(
            paywall
                .layer(PRICE)
                .resource_url(RESOURCE_URL)
                .description("a paid report")
                .mime_type("application/json"),
        );
    let facilitator = facilitator::router(
        verifier.clone(),
        facilitator::FacilitatorConfig::new(network.clone(), extra, PRICE),
        (),
    );

    // The offer: an unpaid request's PAYMENT-REQUIRED.
    let (status, headers, _) = send(&app, get_report(None)).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    let payment_required = header(&headers, "PAYMENT-REQUIRED");
    let offer: v2::PaymentRequired = codec::decode(payment_required.as_bytes()).unwrap();
    let requirements = offer.accepts[0].clone();

    // What a client pays with for cumulative `amount`.
    let pay = |amount: u64| {
        let voucher = VoucherV1 {
            channel_id: channel.to_bytes(),
            cumulative_amount: amount,
            expires_at: EXPIRES_AT,
        };
        let signed = SignedVoucherJson::try_from(&sign_v1(&key, &voucher)).unwrap();
        v2::PaymentPayload {
            x402_version: 2,
            resource: Some(offer.resource.clone()),
            accepted: requirements.clone(),
            payload: serde_json::to_value(&signed).unwrap(),
            extensions: None,
        }
    };
    // Two requests paid before the one whose values are checked.
    for n in 1..=2 {
        let (status, ..) = send(&app, get_report(Some(&pay(n * PRICE)))).await;
        assert_eq!(status, StatusCode::OK);
    }

    // The third request on the channel: cumulative 3 × price. The
    // facilitator's /verify of it first (it accepts nothing), then the paid
    // request's PAYMENT-RESPONSE.
    let payload = pay(3 * PRICE);
    let verify_request = serde_json::to_vec(&v2::FacilitatorRequest {
        x402_version: 2,
        payment_payload: payload.clone(),
        payment_requirements: requirements.clone(),
    })
    .unwrap();
    let (status, _, body) = send(
        &facilitator,
        Request::post("/verify")
            .header("content-type", "application/json")
            .body(Body::from(verify_request))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let verify_response: Value = serde_json::from_slice(&body).unwrap();
    let (status, headers, _) = send(&app, get_report(Some(&payload))).await;
    assert_eq!(status, StatusCode::OK);
    let payment_response = header(&headers, "PAYMENT-RESPONSE");
    let latest = verifier.store().latest(&channel).unwrap().unwrap();
    assert_eq!(latest.voucher.voucher.cumulative_amount, 3 * PRICE);

    // Too small an increment (half a price): 402 with the resync data.
    let (status, headers, _) = send(&app, get_report(Some(&pay(3 * PRICE + PRICE / 2)))).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    let payment_required_rejected = header(&headers, "PAYMENT-REQUIRED");

    let (status, _, body) = send(
        &facilitator,
        Request::get("/supported").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let supported: Value = serde_json::from_slice(&body).unwrap();

    let file = json!({
        "expected": {
            "price": PRICE.to_string(),
            "network": network,
            "payer": payer().to_string(),
            "resourceUrl": RESOURCE_URL,
            "asset": asset,
            "lastAccepted": (3 * PRICE).to_string(),
        },
        "paymentRequired": payment_required,
        "paymentRequiredRejected": payment_required_rejected,
        "paymentSignature": codec::encode(&payload).unwrap(),
        "paymentResponse": payment_response,
        "verifyResponse": verify_response,
        "supported": supported,
    });
    Produced {
        file,
        payload,
        requirements,
    }
}

#[tokio::test]
async fn x402_core_accepts_our_headers_and_we_accept_its_output() {
    let dir = interop_dir();
    assert!(
        dir.join("node_modules/@x402/core/package.json").is_file(),
        "tests/interop/node_modules is missing: run `npm ci --prefix tests/interop` \
         (scripts/test.sh does) before this test"
    );
    let produced = produce().await;
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let input = tmp.join(format!("x402-interop-in-{}.json", std::process::id()));
    let output = tmp.join(format!("x402-interop-out-{}.json", std::process::id()));
    std::fs::write(&input, serde_json::to_vec_pretty(&produced.file).unwrap()).unwrap();
    let _ = std::fs::remove_file(&output);

    let run = Command::new("node")
        .arg("validate.mjs")
        .arg(&input)
        .arg(&output)
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `node` (install Node.js ≥ 20): {e}"));
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "validate.mjs failed ({}):\n{stdout}\n{stderr}",
        run.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        "ok: paymentRequired, paymentRequiredRejected, paymentSignature, paymentResponse, \
         verifyResponse, supported",
        "every header was checked:\n{stdout}"
    );

    // The other direction: what @x402/core built from our values, read with our types.
    let out: Value = serde_json::from_slice(&std::fs::read(&output).unwrap()).unwrap();
    let header = out["paymentSignature"]
        .as_str()
        .expect("package PAYMENT-SIGNATURE");
    assert_eq!(codec::version(header.as_bytes()).unwrap(), 2);
    let theirs: v2::PaymentPayload = codec::decode(header.as_bytes()).unwrap();
    assert_eq!(theirs, produced.payload);
    let voucher: SignedVoucherJson = serde_json::from_value(theirs.payload).unwrap();
    let voucher = SignedVoucher::try_from(&voucher).unwrap();
    voucher.verify_strict().unwrap();
    assert_eq!(voucher.voucher.cumulative_amount, 3 * PRICE);

    let body = out["facilitatorRequest"]
        .as_str()
        .expect("package /verify body");
    let request: v2::FacilitatorRequest = serde_json::from_str(body).unwrap();
    assert_eq!(request.x402_version, 2);
    assert_eq!(request.payment_payload, produced.payload);
    assert_eq!(request.payment_requirements, produced.requirements);

    let _ = std::fs::remove_file(&input);
    let _ = std::fs::remove_file(&output);
}
