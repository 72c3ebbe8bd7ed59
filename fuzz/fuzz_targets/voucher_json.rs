//! The JSON form: never panics; an accepted voucher round-trips.
#![no_main]
use libfuzzer_sys::fuzz_target;
use paychan_voucher::{SignedVoucher, json::SignedVoucherJson};

fuzz_target!(|data: &[u8]| {
    if let Ok(json) = serde_json::from_slice::<SignedVoucherJson>(data) {
        if let Ok(v) = SignedVoucher::try_from(&json) {
            let back = SignedVoucherJson::try_from(&v).expect("encodes");
            assert_eq!(SignedVoucher::try_from(&back).expect("decodes"), v);
        }
    }
});
