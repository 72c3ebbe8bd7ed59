//! The wire contract in docs/004-x402-http.md ("The `paychan` payment, byte
//! by byte") checked against the code, so the document cannot drift: every
//! example it gives is parsed out of the Markdown here and must decode,
//! verify and re-encode exactly as the paywall and the voucher crate do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use ed25519_dalek::SigningKey;
use paychan_voucher::{SignedVoucher, VOUCHER_V1_LEN, VoucherV1, sign_v1};
use paychan_x402::{
    payment::{HeaderVersion, decode_payment, decode_payment_json},
    scheme::{PaychanExtra, SCHEME},
    v2,
};

const DOC: &str = include_str!("../../../docs/004-x402-http.md");

/// The contents of the fenced block whose info string is `tag`.
fn block(tag: &str) -> String {
    let fence = format!("```{tag}\n");
    let start = DOC
        .find(&fence)
        .unwrap_or_else(|| panic!("docs/004 has no ```{tag} block"))
        + fence.len();
    let len = DOC[start..].find("```").expect("the block ends");
    DOC[start..start + len].to_owned()
}

/// The example's inputs, as the document states them in prose.
fn example() -> (SigningKey, SignedVoucher) {
    // "the session key whose 32-byte secret is 0x07 repeated"
    let key = SigningKey::from_bytes(&[7; 32]);
    let voucher = VoucherV1 {
        channel_id: bs58::decode(CHANNEL)
            .into_vec()
            .unwrap()
            .try_into()
            .unwrap(),
        cumulative_amount: 25_000,
        expires_at: 1_893_456_000,
    };
    let signed = sign_v1(&key, &voucher);
    (key, signed)
}

const CHANNEL: &str = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU";

#[test]
fn the_documented_voucher_bytes_and_signature_are_the_code_s() {
    let (key, signed) = example();
    let hex: String = block("text voucher-bytes")
        .split_whitespace()
        .collect::<Vec<_>>()
        .concat();
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect::<Vec<u8>>();
    assert_eq!(bytes.len(), VOUCHER_V1_LEN);
    assert_eq!(bytes, signed.voucher.encode(), "the documented bytes");
    assert_eq!(VoucherV1::decode(&bytes).unwrap(), signed.voucher);
    let fields = block("text voucher-fields");
    assert!(fields.contains(&format!(
        "signer    {}",
        bs58::encode(key.verifying_key().to_bytes()).into_string()
    )));
    assert!(fields.contains(&format!(
        "signature {}",
        bs58::encode(signed.signature).into_string()
    )));
    signed.verify_strict().unwrap();
}

#[test]
fn the_documented_payment_decodes_to_the_documented_voucher() {
    let (_, signed) = example();
    let json = block("json payment-signature");
    let payment = decode_payment_json(json.as_bytes(), HeaderVersion::V2).unwrap();
    assert_eq!(payment.voucher, signed);
    assert_eq!(payment.scheme, SCHEME);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let accepted: v2::PaymentRequirements =
        serde_json::from_value(doc["accepted"].clone()).unwrap();
    let extra: PaychanExtra = serde_json::from_value(accepted.extra.unwrap()).unwrap();
    assert_eq!(extra.program_id, paychan_sdk::ID.to_string());
    // The payload is exactly the voucher crate's JSON form of the voucher.
    assert_eq!(doc["payload"], serde_json::to_value(signed).unwrap());
    // And the header is standard base64 of that JSON.
    let header = base64::engine::general_purpose::STANDARD.encode(json.trim_end());
    assert_eq!(
        decode_payment(header.as_bytes(), HeaderVersion::V2)
            .unwrap()
            .voucher,
        signed
    );
}

#[test]
fn the_documented_channel_status_values_are_the_program_s() {
    use paychan_sdk::state::ChannelStatus;
    let table = block("text channel-status");
    for (name, status) in [
        ("Open", ChannelStatus::Open),
        ("Closing", ChannelStatus::Closing),
        ("Closed", ChannelStatus::Closed),
    ] {
        assert!(
            table.contains(&format!("{} {name}", status as u8)),
            "{name} = {} in docs/004",
            status as u8
        );
    }
}

#[test]
fn the_documented_settle_margin_is_the_verifier_s() {
    let terms =
        paychan_verifier::Terms::new(paychan_sdk::ID, Default::default(), Default::default(), 1);
    assert!(DOC.contains(&format!(
        "`settle_margin_secs` = {}",
        terms.settle_margin_secs
    )));
}
