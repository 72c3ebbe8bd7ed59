//! The JSON form: never panics; an accepted voucher round-trips.
#![no_main]
use libfuzzer_sys::fuzz_target;
use paychan_fuzz::{decoders, stats};

fuzz_target!(|data: &[u8]| stats::input("voucher_json", decoders::voucher_json(data)));
