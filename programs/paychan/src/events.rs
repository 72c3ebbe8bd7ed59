//! One event per state transition.
use anchor_lang::prelude::*;

/// A channel was opened and its deposit escrowed.
#[event]
pub struct ChannelOpened {
    pub channel: Pubkey,
    pub payer: Pubkey,
    pub payee: Pubkey,
    pub mint: Pubkey,
    pub authorized_signer: Pubkey,
    pub deposit: u64,
    pub grace_period: i64,
    pub salt: u64,
    pub open_slot: u64,
}

/// The payer added to the deposit.
#[event]
pub struct ChannelToppedUp {
    pub channel: Pubkey,
    pub amount: u64,
    pub deposit: u64,
}

/// A voucher advanced the settled watermark and paid the payee `amount`.
#[event]
pub struct ChannelSettled {
    pub channel: Pubkey,
    pub settled: u64,
    pub amount: u64,
}

impl ChannelSettled {
    /// Logs this event exactly as `emit!` would (discriminator, then the
    /// Borsh fields, which for these fixed-size fields are their raw bytes),
    /// without allocating: `settle` logs one per channel.
    pub fn log(channel: &Pubkey, settled: u64, amount: u64) {
        let mut buf = [0u8; 56];
        let (disc, rest) = buf.split_at_mut(8);
        disc.copy_from_slice(Self::DISCRIMINATOR);
        let (key, rest) = rest.split_at_mut(32);
        key.copy_from_slice(channel.as_ref());
        let (s, a) = rest.split_at_mut(8);
        s.copy_from_slice(&settled.to_le_bytes());
        a.copy_from_slice(&amount.to_le_bytes());
        anchor_lang::solana_program::log::sol_log_data(&[&buf]);
    }
}

/// The payer requested a close; anyone may finalize at `grace_ends_at`.
#[event]
pub struct CloseRequested {
    pub channel: Pubkey,
    pub closure_started_at: i64,
    pub grace_ends_at: i64,
}

/// The channel closed: the payee was paid `paid` by a final voucher (0 if
/// none) and the payer refunded `refunded`.
#[event]
pub struct ChannelClosed {
    pub channel: Pubkey,
    pub settled: u64,
    pub paid: u64,
    pub refunded: u64,
    pub finalized: bool,
}

/// A closed channel's account was deleted and its rent returned.
#[event]
pub struct ChannelReclaimed {
    pub channel: Pubkey,
    pub rent_payer: Pubkey,
    pub lamports: u64,
}

/// A vault written in an older layout was rewritten in the current one.
#[event]
pub struct VaultMigrated {
    pub vault: Pubkey,
    pub payout: Pubkey,
    pub from_version: u8,
    pub to_version: u8,
}
