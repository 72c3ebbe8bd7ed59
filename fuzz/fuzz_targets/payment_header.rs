//! The payment decoder the paywall runs (`paychan_x402::payment`): bounded,
//! never panics, and a decoded voucher re-encodes to itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use paychan_x402::payment::{HeaderVersion, MAX_PAYMENT_HEADER_LEN, decode_payment, decode_payment_json};

fuzz_target!(|data: &[u8]| {
    for version in [HeaderVersion::V2, HeaderVersion::V1] {
        let r = decode_payment(data, version);
        if data.len() > MAX_PAYMENT_HEADER_LEN {
            assert!(r.is_err());
        }
        if let Ok(p) = decode_payment_json(data, version) {
            let json = serde_json::json!({
                "x402Version": if version == HeaderVersion::V2 { 2 } else { 1 },
                "accepted": {"scheme": p.scheme, "network": p.network},
                "scheme": p.scheme,
                "network": p.network,
                "payload": p.voucher,
            });
            let again = decode_payment_json(json.to_string().as_bytes(), version)
                .expect("a decoded payment re-encodes");
            assert_eq!(again.voucher, p.voucher);
        }
    }
});
