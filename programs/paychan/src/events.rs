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
