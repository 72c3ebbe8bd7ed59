//! v1 voucher decoding: never panics; whatever decodes re-encodes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use paychan_fuzz::{decoders, stats};

fuzz_target!(|data: &[u8]| stats::input("voucher_v1", decoders::voucher_v1(data)));
