//! `PAYMENT-SIGNATURE` / `X-PAYMENT` header decoding: bounded, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use paychan_verifier::{MAX_HEADER_LEN, decode_header, header::decode_json};

fuzz_target!(|data: &[u8]| {
    let r = decode_header(data);
    if data.len() > MAX_HEADER_LEN {
        assert!(r.is_err());
    }
    let _ = decode_json(data);
});
