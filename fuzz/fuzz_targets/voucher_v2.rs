//! v2 batch voucher decoding: never panics; a decoded voucher re-encodes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use paychan_voucher::{VoucherV2Ref, encode_v2};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = VoucherV2Ref::decode(data) {
        let cumulatives: Vec<u64> = v.cumulatives().collect();
        let again = encode_v2(v.expires_at(), v.channels_hash(), &cumulatives).expect("re-encodes");
        assert_eq!(again, data);
    }
});
