//! Channel account data from an RPC node (`ChannelSnapshot::from_account`):
//! never panics; whatever it accepts has a valid status and a signer that
//! is not a weak key.
#![no_main]
use libfuzzer_sys::fuzz_target;
use paychan_verifier::{ChannelSnapshot, Pubkey};

fuzz_target!(|data: &[u8]| {
    let program = Pubkey::new_from_array([7; 32]);
    if let Ok(s) = ChannelSnapshot::from_account(Pubkey::default(), &program, &program, data) {
        assert!(!paychan_voucher::is_weak_signer(&s.signer.to_bytes()));
        if s.grace_ends_at.is_some() {
            assert!(matches!(s.status, paychan_sdk::state::ChannelStatus::Closing));
        }
    }
});
