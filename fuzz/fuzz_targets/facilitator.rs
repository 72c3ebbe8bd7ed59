//! The facilitator routes (`POST /verify`, `POST /settle`, `GET /supported`)
//! with fuzzed bodies and `Authorization`. See `paychan_fuzz::facilitator`
//! for what it checks.
#![no_main]
use libfuzzer_sys::fuzz_target;
use paychan_fuzz::{facilitator, stats};

fuzz_target!(|data: &[u8]| stats::input("facilitator", facilitator::run(data)));
