//! The payment decoder the paywall runs (`paychan_x402::payment`): bounded,
//! never panics, and a decoded voucher re-encodes to itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use paychan_fuzz::{decoders, stats};

fuzz_target!(|data: &[u8]| stats::input("payment_header", decoders::payment_header(data)));
