//! Channel account data from an RPC node (`ChannelSnapshot::from_account`):
//! never panics; whatever it accepts has a valid status and a signer that
//! is not a weak key.
#![no_main]
use libfuzzer_sys::fuzz_target;
use paychan_fuzz::{decoders, stats};

fuzz_target!(|data: &[u8]| stats::input("channel_account", decoders::channel_account(data)));
