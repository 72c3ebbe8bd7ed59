//! v1 voucher decoding: never panics; whatever decodes re-encodes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use paychan_voucher::VoucherV1;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = VoucherV1::decode(data) {
        assert_eq!(&v.encode()[..], data);
    }
});
