//! Seeds and protocol limits.
use anchor_lang::prelude::*;

/// Seed prefix of a [`crate::state::Channel`] PDA:
/// `[SEED_CHANNEL, payer, payee, mint, authorized_signer, salt u64 LE, open_slot u64 LE]`.
#[constant]
pub const SEED_CHANNEL: &[u8] = b"channel";
/// Seed prefix of a [`crate::state::PayeeVault`] PDA: `[SEED_VAULT, payee, mint]`.
#[constant]
pub const SEED_VAULT: &[u8] = b"vault";
/// Seed prefix of the vault's token account PDA: `[SEED_VAULT_TOKENS, vault]`.
#[constant]
pub const SEED_VAULT_TOKENS: &[u8] = b"vault_tokens";

/// `open_slot` must be at most this many slots old when a channel opens; a
/// closed channel's account may be reclaimed only after this window, so a
/// closed address can never be opened again (no revival, no voucher replay).
#[constant]
pub const OPEN_SLOT_WINDOW: u64 = 1_500;
/// Shortest grace period a payer may choose (clock drift makes seconds unsafe).
#[constant]
pub const MIN_GRACE_PERIOD_SECS: i64 = 600;
/// Longest grace period (30 days).
#[constant]
pub const MAX_GRACE_PERIOD_SECS: i64 = 30 * 24 * 60 * 60;
/// Most v1 vouchers per `settle` (agave leaders drop transactions with more
/// than 8 precompile signatures).
#[constant]
pub const MAX_SETTLE_VOUCHERS: u8 = 8;
/// Layout version written into every new channel.
pub const CHANNEL_VERSION: u8 = 1;
