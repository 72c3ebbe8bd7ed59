//! Seeds, limits and layout versions of the program (`programs/paychan/src/constants.rs`).

/// Seed prefix of a channel PDA:
/// `[SEED_CHANNEL, payer, payee, mint, authorized_signer, salt u64 LE, open_slot u64 LE]`.
pub const SEED_CHANNEL: &[u8] = b"channel";
/// Seed prefix of a payee vault PDA: `[SEED_VAULT, payee, mint]`.
pub const SEED_VAULT: &[u8] = b"vault";
/// Seed prefix of the vault's token account PDA: `[SEED_VAULT_TOKENS, vault]`.
pub const SEED_VAULT_TOKENS: &[u8] = b"vault_tokens";
/// `open_slot` must be at most this many slots old when a channel opens.
pub const OPEN_SLOT_WINDOW: u64 = 1_500;
/// Shortest grace period a payer may choose, in seconds.
pub const MIN_GRACE_PERIOD_SECS: i64 = 600;
/// Longest grace period (30 days), in seconds.
pub const MAX_GRACE_PERIOD_SECS: i64 = 30 * 24 * 60 * 60;
/// Most v1 vouchers one `settle` takes (what fits in one packet).
pub const MAX_SETTLE_VOUCHERS: u8 = 5;
/// Most v1 vouchers one `settle_signed` takes (what fits in one packet with
/// a lookup table).
pub const MAX_SETTLE_SIGNED_VOUCHERS: u8 = 11;
/// Most channels one `settle_batch` takes (64 account locks in all).
pub const MAX_SETTLE_BATCH_CHANNELS: u8 = 54;
/// Layout version of every new channel.
pub const CHANNEL_VERSION: u8 = 1;
/// Oldest channel layout version the program accepts.
pub const MIN_CHANNEL_VERSION: u8 = 1;
/// Layout version of every new payee vault.
pub const VAULT_VERSION: u8 = 2;
