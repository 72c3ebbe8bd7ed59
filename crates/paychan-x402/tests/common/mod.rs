//! Shared by `tests/server.rs`, `tests/interop_node.rs` and `benches/paywall.rs`:
//! an open channel as the verifier sees it, decoded from real account bytes.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ed25519_dalek::SigningKey;
use paychan_sdk::state::{Channel, ChannelStatus};
use paychan_verifier::{ChannelSnapshot, Pubkey};

/// An open channel of `payer` to `payee` in `mint` holding `deposit`, whose
/// vouchers `key` signs.
pub fn open_channel(
    address: Pubkey,
    payer: Pubkey,
    payee: Pubkey,
    mint: Pubkey,
    key: &SigningKey,
    deposit: u64,
) -> ChannelSnapshot {
    let state = Channel {
        payer,
        payee,
        mint,
        authorized_signer: Pubkey::new_from_array(key.verifying_key().to_bytes()),
        rent_payer: payer,
        deposit,
        settled: 0,
        refunded: 0,
        salt: 1,
        open_slot: 10,
        closure_started_at: 0,
        grace_period: 3_600,
        version: 1,
        bump: 255,
        status: ChannelStatus::Open as u8,
        reserved: [0; 5],
    };
    let data = state.encode();
    ChannelSnapshot::from_account(address, &paychan_sdk::ID, &paychan_sdk::ID, &data).unwrap()
}
