//! The strict Ed25519 precompile parser: never panics; anything it accepts is
//! exactly what the canonical builder produces for the same entries.
//! Input: expected count (mod 10), message length, then the instruction data.
#![no_main]
use libfuzzer_sys::fuzz_target;
use paychan_fuzz::{decoders, stats};

fuzz_target!(|input: (u8, u8, &[u8])| {
    let (count, message_len, data) = input;
    stats::input(
        "ed25519_layout",
        decoders::ed25519_layout(count, message_len, data),
    );
});
