//! The live paywall (`paychan_x402::server::Paywall` on an axum router, a
//! real verifier, one open channel): a script of requests with fuzzed
//! payment headers, `Idempotency-Key`, method, path and body. See
//! `paychan_fuzz::paywall` for what it checks.
#![no_main]
use libfuzzer_sys::fuzz_target;
use paychan_fuzz::{paywall, stats};

fuzz_target!(|data: &[u8]| stats::input("paywall", paywall::run(data)));
