//! Field names, shapes and the header codec.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use paychan_x402::{
    codec::{self, CodecError},
    network::Network,
    scheme::{PaychanExtra, SCHEME},
    v1, v2,
};
use serde_json::{Value, json};

fn requirements() -> v2::PaymentRequirements {
    v2::PaymentRequirements {
        scheme: SCHEME.into(),
        network: Network::Devnet.caip2().into(),
        amount: "1000".into(),
        asset: Network::Devnet.usdc_mint().unwrap().into(),
        pay_to: "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin".into(),
        max_timeout_seconds: 60,
        extra: Some(
            serde_json::to_value(PaychanExtra {
                program_id: "5AtZWbugM3nhSLAXqJtAX2aLMHb6LCNbCjdEHXzhRi5Y".into(),
                token_program: "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA".into(),
                decimals: 6,
                grace_period_seconds: 3_600,
                minimum_deposit: "1000000".into(),
                fee_payer: None,
            })
            .unwrap(),
        ),
    }
}

#[test]
fn v2_payment_required_uses_the_spec_field_names() {
    let required = v2::PaymentRequired {
        x402_version: 2,
        error: Some("payment required".into()),
        resource: v2::Resource {
            url: "https://api.example/paid".into(),
            description: Some("a paid route".into()),
            mime_type: Some("application/json".into()),
        },
        accepts: vec![requirements()],
        extensions: None,
    };
    let v = serde_json::to_value(&required).unwrap();
    assert_eq!(v["x402Version"], 2);
    assert_eq!(v["resource"]["mimeType"], "application/json");
    let a = &v["accepts"][0];
    for key in [
        "scheme",
        "network",
        "amount",
        "asset",
        "payTo",
        "maxTimeoutSeconds",
        "extra",
    ] {
        assert!(a.get(key).is_some(), "missing {key}");
    }
    assert_eq!(
        a["extra"]["programId"],
        "5AtZWbugM3nhSLAXqJtAX2aLMHb6LCNbCjdEHXzhRi5Y"
    );
    assert_eq!(a["extra"]["gracePeriodSeconds"], 3_600);
    assert!(
        a["extra"].get("feePayer").is_none(),
        "absent options are omitted"
    );
    assert!(v.get("extensions").is_none());
}

#[test]
fn headers_are_standard_padded_base64_and_round_trip() {
    let payload = v2::PaymentPayload {
        x402_version: 2,
        resource: None,
        accepted: requirements(),
        payload: json!({ "voucher": { "channelId": "x", "cumulativeAmount": "1" }, "signer": "y", "signature": "z", "signatureType": "ed25519" }),
        extensions: Some(json!({ "payment-identifier": { "id": "0123456789abcdef" } })),
    };
    let header = codec::encode(&payload).unwrap();
    assert!(
        header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
    );
    assert_eq!(header.len() % 4, 0, "padded");
    let back: v2::PaymentPayload = codec::decode(header.as_bytes()).unwrap();
    assert_eq!(back, payload);
    assert_eq!(codec::version(header.as_bytes()).unwrap(), 2);
}

#[test]
fn settle_and_verify_responses_match_the_spec() {
    let settle = v2::SettleResponse {
        success: true,
        error_reason: None,
        error_message: None,
        payer: Some("payer".into()),
        transaction: String::new(),
        network: Network::Mainnet.caip2().into(),
        amount: Some("1000".into()),
        extensions: None,
    };
    assert_eq!(
        serde_json::to_value(&settle).unwrap(),
        json!({ "success": true, "payer": "payer", "transaction": "", "network": "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "amount": "1000" })
    );
    let verify = v2::VerifyResponse {
        is_valid: false,
        invalid_reason: Some("invalid_signature".into()),
        invalid_message: Some("bad signature".into()),
        payer: None,
        extensions: Some(json!({"paychan": {"field": "signature"}})),
    };
    assert_eq!(
        serde_json::to_value(&verify).unwrap(),
        json!({ "isValid": false, "invalidReason": "invalid_signature", "invalidMessage": "bad signature", "extensions": {"paychan": {"field": "signature"}} })
    );
    let supported = v2::SupportedResponse {
        kinds: vec![v2::SupportedKind {
            x402_version: 2,
            scheme: SCHEME.into(),
            network: Network::Devnet.caip2().into(),
            extra: None,
        }],
        extensions: vec![],
        signers: [("solana:*".to_string(), vec!["fee-payer".to_string()])]
            .into_iter()
            .collect(),
    };
    let v = serde_json::to_value(&supported).unwrap();
    assert_eq!(v["kinds"][0]["x402Version"], 2);
    assert_eq!(v["signers"]["solana:*"][0], "fee-payer");
}

#[test]
fn v1_body_and_payload_use_the_v1_names() {
    let body = v1::PaymentRequired {
        x402_version: 1,
        error: "X-PAYMENT header is required".into(),
        accepts: vec![v1::PaymentRequirements {
            scheme: SCHEME.into(),
            network: Network::Devnet.v1_name().into(),
            max_amount_required: "1000".into(),
            asset: "mint".into(),
            pay_to: "payee".into(),
            resource: "https://api.example/paid".into(),
            description: String::new(),
            mime_type: "application/json".into(),
            output_schema: None,
            max_timeout_seconds: 60,
            extra: None,
        }],
    };
    let v = serde_json::to_value(&body).unwrap();
    assert_eq!(v["accepts"][0]["maxAmountRequired"], "1000");
    assert_eq!(v["accepts"][0]["network"], "solana-devnet");
    let p = v1::PaymentPayload {
        x402_version: 1,
        scheme: SCHEME.into(),
        network: "solana".into(),
        payload: Value::Null,
    };
    let header = codec::encode(&p).unwrap();
    assert_eq!(codec::version(header.as_bytes()).unwrap(), 1);
    assert_eq!(
        codec::decode::<v1::PaymentPayload>(header.as_bytes()).unwrap(),
        p
    );
}

#[test]
fn shapes_other_x402_implementations_send_are_accepted() {
    // @x402/core 2.27 schemas: optional fields may be `null` or absent, unknown
    // fields (`serviceName`, `errorMessage`, `extra`, ...) are allowed.
    let required: v2::PaymentRequired = serde_json::from_value(json!({
        "x402Version": 2,
        "error": null,
        "resource": { "url": "https://api.example/paid", "description": null, "mimeType": null, "serviceName": "api", "tags": ["data"] },
        "accepts": [{ "scheme": SCHEME, "network": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", "amount": "1000", "asset": "mint", "payTo": "payee", "maxTimeoutSeconds": 60, "extra": null }],
        "extensions": null,
    }))
    .unwrap();
    assert_eq!(required.error, None);
    assert_eq!(required.resource.description, None);
    assert_eq!(required.accepts[0].extra, None);
    assert_eq!(required.extensions, None);
    let settle: v2::SettleResponse = serde_json::from_value(json!({
        "success": false, "errorReason": "invalid_payment_amount", "errorMessage": "too small",
        "payer": null, "transaction": "", "network": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
        "amount": null, "extensions": {}, "extra": {},
    }))
    .unwrap();
    assert_eq!(
        settle.error_reason.as_deref(),
        Some("invalid_payment_amount")
    );
    assert_eq!((settle.payer, settle.amount), (None, None));
    let verify: v2::VerifyResponse = serde_json::from_value(
        json!({ "isValid": false, "invalidReason": "invalid_signature", "invalidMessage": "bad", "payer": null }),
    )
    .unwrap();
    assert!(!verify.is_valid);
    let supported: v2::SupportedResponse = serde_json::from_value(
        json!({ "kinds": [{ "x402Version": 1, "scheme": SCHEME, "network": "solana-devnet" }] }),
    )
    .unwrap();
    assert!(supported.extensions.is_empty() && supported.signers.is_empty());
    // v1: `error` and `mimeType` are optional in @x402/core.
    let v1_body: v1::PaymentRequired = serde_json::from_value(json!({
        "x402Version": 1,
        "accepts": [{ "scheme": SCHEME, "network": "solana-devnet", "maxAmountRequired": "1000", "resource": "https://api.example/paid", "description": "", "payTo": "payee", "maxTimeoutSeconds": 60, "asset": "mint" }],
    }))
    .unwrap();
    assert_eq!(v1_body.error, "");
    assert_eq!(v1_body.accepts[0].mime_type, "");
    // Required fields stay required.
    assert!(
        serde_json::from_value::<v2::SettleResponse>(
            json!({ "success": true, "network": "solana:x" })
        )
        .is_err(),
        "transaction is required"
    );
}

#[test]
fn networks_map_between_caip2_and_v1_names() {
    for n in [Network::Mainnet, Network::Devnet, Network::Testnet] {
        assert_eq!(Network::parse(n.caip2()), Some(n));
        assert_eq!(Network::parse(n.v1_name()), Some(n));
    }
    assert_eq!(Network::parse("solana:unknown"), None);
    assert_eq!(
        paychan_x402::network::caip2_for_genesis("5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d"),
        Network::Mainnet.caip2()
    );
}

#[test]
fn hostile_headers_are_refused_with_typed_errors() {
    let big = vec![b'A'; codec::MAX_HEADER_LEN + 4];
    assert!(matches!(
        codec::decode::<v2::PaymentPayload>(&big),
        Err(CodecError::TooLarge(_))
    ));
    assert!(matches!(
        codec::decode::<v2::PaymentPayload>(b"%%%"),
        Err(CodecError::Base64)
    ));
    let not_payload = codec::encode(&json!({ "x402Version": 2 })).unwrap();
    assert!(matches!(
        codec::decode::<v2::PaymentPayload>(not_payload.as_bytes()),
        Err(CodecError::Json(_))
    ));
}

proptest::proptest! {
    #[test]
    fn random_header_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2_000)) {
        let _ = codec::decode::<v2::PaymentPayload>(&bytes);
        let _ = codec::decode::<v2::PaymentRequired>(&bytes);
        let _ = codec::decode::<v1::PaymentPayload>(&bytes);
        let _ = codec::version(&bytes);
    }

    /// The decoder the paywall runs, on random bytes, on their base64 (so
    /// the JSON stage sees them too) and on random edits of a valid payment:
    /// never a panic; a decoded voucher always re-encodes to what decodes
    /// to itself; an error always names a field or is a size/base64 error.
    #[test]
    fn the_payment_decoder_never_panics(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..6_000),
        at in proptest::prelude::any::<usize>(),
        byte in proptest::prelude::any::<u8>(),
    ) {
        use paychan_x402::payment::{HeaderVersion, decode_payment, decode_payment_json};
        use base64::Engine;
        for version in [HeaderVersion::V2, HeaderVersion::V1] {
            let _ = decode_payment(&bytes, version);
            let _ = decode_payment_json(&bytes, version);
            let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let _ = decode_payment(b64.as_bytes(), version);
        }
        let mut json = valid_payment_json();
        if !json.is_empty() {
            let i = at % json.len();
            json[i] = byte;
        }
        match decode_payment_json(&json, HeaderVersion::V2) {
            Ok(p) => {
                let again = serde_json::to_vec(&serde_json::json!({
                    "x402Version": 2,
                    "accepted": {"scheme": p.scheme, "network": p.network},
                    "payload": p.voucher,
                })).unwrap();
                proptest::prop_assert_eq!(decode_payment_json(&again, HeaderVersion::V2).unwrap().voucher, p.voucher);
            }
            Err(e) => proptest::prop_assert!(e.field().is_some(), "{}", e),
        }
    }
}

/// A valid v2 payment's JSON (the mutation base of the proptest).
fn valid_payment_json() -> Vec<u8> {
    let voucher = paychan_voucher::SignedVoucher {
        voucher: paychan_voucher::VoucherV1 {
            channel_id: [9; 32],
            cumulative_amount: 1_000,
            expires_at: 1_900_000_000,
        },
        signer: [8; 32],
        signature: [7; 64],
    };
    serde_json::to_vec(&serde_json::json!({
        "x402Version": 2,
        "accepted": {"scheme": "paychan", "network": "solana:local"},
        "payload": voucher,
    }))
    .unwrap()
}
