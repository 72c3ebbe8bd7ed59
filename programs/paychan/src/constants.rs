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
///
/// **Never widen this in an upgrade.** Channels deleted under the old window
/// (closed and reclaimed once `open_slot + OPEN_SLOT_WINDOW` had passed) would
/// become openable again at the same address under a wider one, and every
/// voucher ever signed for the old channel would pay from the new one.
/// Narrowing is safe. `MAX_OPEN_SLOT_WINDOW` below fails the build, and the
/// unit test `open_slot_window_never_grows` the test run, if it grows.
#[constant]
pub const OPEN_SLOT_WINDOW: u64 = 1_500;
/// The window every deployed version of this program has used: the
/// largest `OPEN_SLOT_WINDOW` may ever be (see its docs).
pub const MAX_OPEN_SLOT_WINDOW: u64 = 1_500;
const _: () = assert!(OPEN_SLOT_WINDOW <= MAX_OPEN_SLOT_WINDOW);
/// Shortest grace period a payer may choose (clock drift makes seconds unsafe).
#[constant]
pub const MIN_GRACE_PERIOD_SECS: i64 = 600;
/// Longest grace period (30 days).
#[constant]
pub const MAX_GRACE_PERIOD_SECS: i64 = 30 * 24 * 60 * 60;
/// Most v1 vouchers per `settle`: the most `[ed25519 (N records), settle]`
/// fits in one 1,232-byte packet (4 in a legacy transaction, 5 in a v0
/// transaction with a lookup table). The capacity test
/// (`tests/program/capacity.rs`) measures it and fails if the two differ.
#[constant]
pub const MAX_SETTLE_VOUCHERS: u8 = 5;
/// Most v1 vouchers per `settle_signed`: the most `[compute budget,
/// settle_signed (N vouchers)]` fits in one 1,232-byte packet (7 in a
/// legacy transaction, 11 in a v0 transaction with a lookup table). The
/// capacity test (`tests/program/capacity.rs`) measures it and fails if the
/// two differ; N = 11 needs about 230,000 CU, within one transaction's
/// 1,400,000.
#[constant]
pub const MAX_SETTLE_SIGNED_VOUCHERS: u8 = 11;
/// Most channels per `settle_batch`: the most a v0 transaction with a lookup
/// table (and a compute-budget instruction) can lock, 64 account locks in
/// all. The capacity test measures it and fails if the two differ.
#[constant]
pub const MAX_SETTLE_BATCH_CHANNELS: u8 = 54;
/// Layout version written into every new channel.
pub const CHANNEL_VERSION: u8 = 1;
/// Oldest channel layout version the instructions still accept. Channels are
/// never migrated in place: a new version keeps the 224-byte layout (new
/// fields take `reserved` bytes), instructions accept every version from
/// `MIN_CHANNEL_VERSION` to `CHANNEL_VERSION` and keep the version an account
/// was written with (docs/001, "Upgrades").
pub const MIN_CHANNEL_VERSION: u8 = 1;
/// Layout version of every new [`crate::state::PayeeVault`]. Version 1 is the
/// first layout (139 bytes, no `version`, `payout` or `reserved` fields);
/// `migrate_vault` turns it into this one.
pub const VAULT_VERSION: u8 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    /// See [`OPEN_SLOT_WINDOW`]: a wider window would make deleted channel
    /// addresses openable again. (Checking constants is the point here.)
    #[test]
    #[allow(clippy::assertions_on_constants)]
    fn open_slot_window_never_grows() {
        assert!(
            OPEN_SLOT_WINDOW <= 1_500,
            "OPEN_SLOT_WINDOW must never exceed the 1,500 slots deployed programs used"
        );
        assert_eq!(
            MAX_OPEN_SLOT_WINDOW, 1_500,
            "the deployed window is history, not a setting"
        );
    }
}
