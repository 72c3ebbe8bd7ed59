//! v2 batch voucher decoding: never panics; a decoded voucher re-encodes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use paychan_fuzz::{decoders, stats};

fuzz_target!(|data: &[u8]| stats::input("voucher_v2", decoders::voucher_v2(data)));
