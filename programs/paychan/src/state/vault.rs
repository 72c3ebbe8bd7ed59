//! The per-payee pooled vault.
use anchor_lang::prelude::*;

use crate::{
    constants::{SEED_VAULT, VAULT_VERSION},
    error::PaychanError,
};

/// Pooled escrow of every channel to one payee in one mint. PDA with seeds
/// `[SEED_VAULT, payee, mint]`; it is the authority of the token account
/// `tokens` (PDA `[SEED_VAULT_TOKENS, vault]`).
///
/// `outstanding` = Σ (deposit − settled − refunded) over the live channels.
/// Tokens sent to `tokens` by anyone else are never credited to a channel.
/// Every payout to the payee goes to `payout`, the payee's associated token
/// account, fixed when the vault is created.
///
/// Layout version 2 (see [`VAULT_VERSION`]); version 1 ended after
/// `tokens_bump` and is migrated by `migrate_vault`. There are no reserved
/// bytes: every instruction that touches the vault deserializes it, and 32
/// reserved bytes cost 60–150 CU each time (docs/001, "Upgrades"); a later
/// layout appends its fields and migrates the same way.
#[account]
#[derive(InitSpace, Debug, PartialEq, Eq)]
pub struct PayeeVault {
    /// The payee all channels of this vault pay.
    pub payee: Pubkey,
    /// The escrowed mint.
    pub mint: Pubkey,
    /// The mint's token program (SPL Token or Token-2022).
    pub token_program: Pubkey,
    /// The vault's token account.
    pub tokens: Pubkey,
    /// Escrow owed to live channels.
    pub outstanding: u64,
    /// The mint's decimals (for `transfer_checked`).
    pub decimals: u8,
    /// Canonical bump of this PDA.
    pub bump: u8,
    /// Canonical bump of the token account PDA.
    pub tokens_bump: u8,
    /// Where payouts go: the payee's associated token account in `mint`
    /// (under `token_program`). `settle` and `close` pay nowhere else.
    pub payout: Pubkey,
    /// Layout version; 0 only in an account `open` has just created.
    pub version: u8,
}

/// The version-1 vault layout, read only by `migrate_vault`.
#[derive(AnchorDeserialize, Debug, PartialEq, Eq)]
pub struct PayeeVaultV1 {
    /// See [`PayeeVault::payee`].
    pub payee: Pubkey,
    /// See [`PayeeVault::mint`].
    pub mint: Pubkey,
    /// See [`PayeeVault::token_program`].
    pub token_program: Pubkey,
    /// See [`PayeeVault::tokens`].
    pub tokens: Pubkey,
    /// See [`PayeeVault::outstanding`].
    pub outstanding: u64,
    /// See [`PayeeVault::decimals`].
    pub decimals: u8,
    /// See [`PayeeVault::bump`].
    pub bump: u8,
    /// See [`PayeeVault::tokens_bump`].
    pub tokens_bump: u8,
}

/// Bytes of a version-1 vault after the discriminator (the fields up to
/// `tokens_bump`): what `migrate_vault` accepts.
pub const VAULT_V1_LEN: usize = 4 * 32 + 8 + 3;
const _: () = assert!(PayeeVault::INIT_SPACE == VAULT_V1_LEN + 32 + 1);

impl PayeeVault {
    /// Holds after every instruction that moves tokens in or out of the vault:
    /// the token account covers what the vault owes.
    pub fn invariant(&self, token_balance: u64) -> Result<()> {
        require!(self.is_current(), PaychanError::UnsupportedVersion);
        require!(
            token_balance >= self.outstanding,
            PaychanError::VaultUnderfunded
        );
        Ok(())
    }

    /// Whether `open` has just created this account: every vault it
    /// initialises gets a non-zero version, so a live vault never reads as new
    /// whatever its payee.
    pub fn is_new(&self) -> bool {
        self.version == 0
    }

    /// Whether this vault is in the layout this program writes.
    pub fn is_current(&self) -> bool {
        self.version == VAULT_VERSION
    }

    /// Whether this vault serves a channel of `payee` in `mint`.
    pub fn serves(&self, payee: &Pubkey, mint: &Pubkey) -> bool {
        self.payee == *payee && self.mint == *mint
    }

    /// Fails with [`PaychanError::VaultMismatch`] unless the vault serves the channel.
    pub fn require_serves(&self, payee: &Pubkey, mint: &Pubkey) -> Result<()> {
        require!(self.serves(payee, mint), PaychanError::VaultMismatch);
        Ok(())
    }

    /// Adds escrow.
    pub fn credit(&mut self, amount: u64) -> Result<()> {
        self.outstanding = self
            .outstanding
            .checked_add(amount)
            .ok_or(PaychanError::Overflow)?;
        Ok(())
    }

    /// Releases escrow (paid out or refunded).
    pub fn debit(&mut self, amount: u64) -> Result<()> {
        self.outstanding = self
            .outstanding
            .checked_sub(amount)
            .ok_or(PaychanError::InvariantViolated)?;
        Ok(())
    }

    /// Signer seeds of the vault PDA (without the bump array, which the caller owns).
    pub fn seeds(&self) -> [&[u8]; 3] {
        [SEED_VAULT, self.payee.as_ref(), self.mint.as_ref()]
    }
}
