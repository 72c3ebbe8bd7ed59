//! The decoder targets. Each returns whether the input decoded (reached the
//! round-trip assertions); every assertion fails only on a real bug: a
//! decoder accepting something its encoder would not produce, or an
//! encoder refusing what its decoder accepted.
#![allow(clippy::expect_used)] // a harness's assertion is the point

use base64::Engine;
use paychan_verifier::{Accepted, ChannelSnapshot, Pubkey};
use paychan_voucher::{
    SignedVoucher, VoucherV1, VoucherV2Ref, ed25519_instruction_data, encode_v2,
    json::SignedVoucherJson, parse_ed25519_instruction_data,
};
use paychan_x402::payment::{
    HeaderVersion, MAX_PAYMENT_HEADER_LEN, Payment, decode_payment, decode_payment_json,
};

/// v1 voucher decoding: whatever decodes re-encodes to the same bytes.
pub fn voucher_v1(data: &[u8]) -> bool {
    let Ok(v) = VoucherV1::decode(data) else {
        return false;
    };
    assert_eq!(&v.encode()[..], data);
    true
}

/// v2 batch voucher decoding: a decoded voucher re-encodes to the same bytes.
pub fn voucher_v2(data: &[u8]) -> bool {
    let Ok(v) = VoucherV2Ref::decode(data) else {
        return false;
    };
    let cumulatives: Vec<u64> = v.cumulatives().collect();
    assert_eq!(cumulatives.len(), v.count());
    let again = encode_v2(v.expires_at(), v.channels_hash(), &cumulatives).expect("re-encodes");
    assert_eq!(again, data);
    true
}

/// The strict Ed25519 precompile parser: anything it accepts is exactly
/// what the canonical builder produces for the same entries.
/// `count % 10` and `message_len` are what the caller expects.
pub fn ed25519_layout(count: u8, message_len: u8, data: &[u8]) -> bool {
    let (count, message_len) = (usize::from(count % 10), usize::from(message_len));
    let Ok(records) = parse_ed25519_instruction_data(data, count, message_len) else {
        return false;
    };
    let entries: Vec<_> = records.iter().collect();
    assert_eq!(entries.len(), count);
    assert!(entries.iter().all(|e| e.message.len() == message_len));
    let built = ed25519_instruction_data(&entries).expect("accepted entries rebuild");
    assert_eq!(built, data);
    true
}

/// The JSON form of a signed voucher: an accepted voucher round-trips.
pub fn voucher_json(data: &[u8]) -> bool {
    let Ok(json) = serde_json::from_slice::<SignedVoucherJson>(data) else {
        return false;
    };
    let Ok(v) = SignedVoucher::try_from(&json) else {
        return false;
    };
    let back = SignedVoucherJson::try_from(&v).expect("encodes");
    assert_eq!(SignedVoucher::try_from(&back).expect("decodes"), v);
    true
}

/// The canonical JSON document of a decoded payment, valid for both versions.
fn payment_document(p: &Payment, version: HeaderVersion) -> Vec<u8> {
    let payload = serde_json::to_value(p.voucher).expect("a decoded voucher encodes");
    serde_json::to_vec(&serde_json::json!({
        "x402Version": if version == HeaderVersion::V2 { 2 } else { 1 },
        "accepted": {"scheme": p.scheme, "network": p.network},
        "scheme": p.scheme,
        "network": p.network,
        "payload": payload,
    }))
    .expect("a JSON value serializes")
}

/// The payment decoder the paywall and the facilitator run
/// (`paychan_x402::payment`): bounded, and a decoded payment (header or
/// bare JSON) encodes back to a header that decodes to the same payment.
pub fn payment_header(data: &[u8]) -> bool {
    let mut accepted = false;
    for version in [HeaderVersion::V2, HeaderVersion::V1] {
        let header = decode_payment(data, version);
        if data.len() > MAX_PAYMENT_HEADER_LEN {
            assert!(header.is_err());
        }
        if let Ok(p) = &header {
            assert_eq!(p.version, version);
            let json = base64::engine::general_purpose::STANDARD
                .decode(data)
                .expect("an accepted header is base64");
            assert_eq!(decode_payment_json(&json, version).as_ref(), Ok(p));
        }
        for p in header
            .iter()
            .chain(decode_payment_json(data, version).iter())
        {
            accepted = true;
            let doc = payment_document(p, version);
            let again = decode_payment_json(&doc, version).expect("a decoded payment re-encodes");
            assert_eq!(&again, p);
            let encoded = base64::engine::general_purpose::STANDARD.encode(&doc);
            if encoded.len() <= MAX_PAYMENT_HEADER_LEN {
                let again =
                    decode_payment(encoded.as_bytes(), version).expect("its header decodes");
                assert_eq!(&again, p);
            }
        }
    }
    accepted
}

/// Channel account data from an RPC node (`ChannelSnapshot::from_account`):
/// whatever it accepts has a valid status and a signer that is not a weak
/// key, and a grace end only when closing.
pub fn channel_account(data: &[u8]) -> bool {
    let program = Pubkey::new_from_array([7; 32]);
    let Ok(s) = ChannelSnapshot::from_account(Pubkey::default(), &program, &program, data) else {
        return false;
    };
    assert!(!paychan_voucher::is_weak_signer(&s.signer.to_bytes()));
    if s.grace_ends_at.is_some() {
        assert!(matches!(
            s.status,
            paychan_sdk::state::ChannelStatus::Closing
        ));
    }
    // Another owner is refused whatever the data.
    let other = Pubkey::new_from_array([8; 32]);
    assert!(ChannelSnapshot::from_account(Pubkey::default(), &other, &program, data).is_err());
    true
}

/// A voucher record read back from redb or a shared Redis
/// (`Accepted::decode`): what it accepts re-encodes to the same bytes.
pub fn stored_voucher(data: &[u8]) -> bool {
    let Ok(a) = Accepted::decode(data) else {
        return false;
    };
    assert_eq!(&a.encode()[..], data);
    assert_eq!(Accepted::decode(&a.encode()).ok(), Some(a));
    true
}
