//! A voucher record read back from redb or a shared Redis
//! (`Accepted::decode`): never panics, and what it accepts re-encodes to
//! the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use paychan_fuzz::{decoders, stats};

fuzz_target!(|data: &[u8]| stats::input("stored_voucher", decoders::stored_voucher(data)));
