//! Interop with the x402 ecosystem's own library: the header values paychan
//! produces are decoded and validated by `@x402/core` (pinned in
//! `tests/interop/package-lock.json`) through `tests/interop/validate.mjs`, and
//! what that library produces from them (its PAYMENT-SIGNATURE for our offer,
//! the `/verify` body its facilitator client sends) is decoded with our types.
//!
//! Needs Node.js and `npm ci --prefix tests/interop` (scripts/test.sh does it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ed25519_dalek::SigningKey;
use paychan_voucher::{SignedVoucher, SignedVoucherJson, VoucherV1, sign_v1};
use paychan_x402::{
    codec,
    network::{self, Network},
    scheme::{PaychanExtra, SCHEME},
    v2,
};
use serde_json::{Value, json};

const PRICE: u64 = 1_000;
const PROGRAM_ID: &str = "5AtZWbugM3nhSLAXqJtAX2aLMHb6LCNbCjdEHXzhRi5Y";
const TOKEN_PROGRAM: &str = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";
const PAY_TO: &str = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin";
const RESOURCE_URL: &str = "http://127.0.0.1:8402/paid/report";

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

/// Builds every header and body the validator checks. This is the one place to
/// switch to the real paywall layer's output.
fn produce() -> Produced {
    // A local chain's CAIP-2 id, as the paywall derives it from the genesis hash.
    let network = network::caip2_for_genesis("8s1cSMvQ5E6bXyh5jdHTkLwTPBU1hpGUvcaPV6N2tWxQ");
    let asset = Network::Devnet.usdc_mint().unwrap().to_owned();
    let extra = PaychanExtra {
        program_id: PROGRAM_ID.into(),
        token_program: TOKEN_PROGRAM.into(),
        decimals: 6,
        grace_period_seconds: 3_600,
        minimum_deposit: "1000000".into(),
        fee_payer: Some(PAY_TO.into()),
    };
    let requirements = v2::PaymentRequirements {
        scheme: SCHEME.into(),
        network: network.clone(),
        amount: PRICE.to_string(),
        asset: asset.clone(),
        pay_to: PAY_TO.into(),
        max_timeout_seconds: 60,
        extra: Some(serde_json::to_value(&extra).unwrap()),
    };
    let resource = v2::Resource {
        url: RESOURCE_URL.into(),
        description: Some("a paid report".into()),
        mime_type: Some("application/json".into()),
    };
    let offer = v2::PaymentRequired {
        x402_version: 2,
        error: None,
        resource: resource.clone(),
        accepts: vec![requirements.clone()],
        extensions: None,
    };

    // The third request on the channel: cumulative 3 × price.
    let key = SigningKey::from_bytes(&[7; 32]);
    let voucher = VoucherV1 {
        channel_id: [42; 32],
        cumulative_amount: 3 * PRICE,
        expires_at: 1_893_456_000, // 2030-01-01T00:00:00Z
    };
    let signed = SignedVoucherJson::try_from(&sign_v1(&key, &voucher)).unwrap();
    let payer = signed.signer.clone();
    let payload = v2::PaymentPayload {
        x402_version: 2,
        resource: Some(resource.clone()),
        accepted: requirements.clone(),
        payload: serde_json::to_value(&signed).unwrap(),
        extensions: None,
    };

    // The same voucher presented again after it was spent: 402 with the resync data.
    let rejected = v2::PaymentRequired {
        error: Some("invalid_payment_amount".into()),
        extensions: Some(json!({ "paychan": {
            "reason": "invalid_payment_amount",
            "message": "the voucher pays 0, the price is 1000",
            "channel": signed.voucher.channel_id,
            "lastAccepted": (3 * PRICE).to_string(),
            "required": PRICE.to_string(),
        }})),
        ..offer.clone()
    };
    let settle = v2::SettleResponse {
        success: true,
        error_reason: None,
        payer: Some(payer.clone()),
        transaction: String::new(),
        network: network.clone(),
        amount: Some(PRICE.to_string()),
    };
    let verify = v2::VerifyResponse {
        is_valid: true,
        invalid_reason: None,
        payer: Some(payer.clone()),
    };
    let supported = v2::SupportedResponse {
        kinds: vec![
            v2::SupportedKind {
                x402_version: 2,
                scheme: SCHEME.into(),
                network: network.clone(),
                extra: requirements.extra.clone(),
            },
            v2::SupportedKind {
                x402_version: 1,
                scheme: SCHEME.into(),
                network: network.clone(),
                extra: requirements.extra.clone(),
            },
        ],
        extensions: vec![],
        signers: BTreeMap::from([("solana:*".to_owned(), vec![PAY_TO.to_owned()])]),
    };

    let file = json!({
        "expected": {
            "price": PRICE.to_string(),
            "network": network,
            "payer": payer,
            "resourceUrl": RESOURCE_URL,
            "asset": asset,
        },
        "paymentRequired": codec::encode(&offer).unwrap(),
        "paymentRequiredRejected": codec::encode(&rejected).unwrap(),
        "paymentSignature": codec::encode(&payload).unwrap(),
        "paymentResponse": codec::encode(&settle).unwrap(),
        "verifyResponse": serde_json::to_value(&verify).unwrap(),
        "supported": serde_json::to_value(&supported).unwrap(),
    });
    Produced {
        file,
        payload,
        requirements,
    }
}

#[test]
fn x402_core_accepts_our_headers_and_we_accept_its_output() {
    let dir = interop_dir();
    assert!(
        dir.join("node_modules/@x402/core/package.json").is_file(),
        "tests/interop/node_modules is missing: run `npm ci --prefix tests/interop` \
         (scripts/test.sh does) before this test"
    );
    let produced = produce();
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
