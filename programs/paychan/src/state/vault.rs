//! The per-payee pooled vault.
use anchor_lang::prelude::*;

use crate::{constants::SEED_VAULT, error::PaychanError};

/// Pooled escrow of every channel to one payee in one mint. PDA with seeds
/// `[SEED_VAULT, payee, mint]`; it is the authority of the token account
/// `tokens` (PDA `[SEED_VAULT_TOKENS, vault]`).
///
/// `outstanding` = Σ (deposit − settled − refunded) over the live channels.
/// Tokens sent to `tokens` by anyone else are never credited to a channel.
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
}

impl PayeeVault {
    /// Holds after every instruction that moves tokens in or out of the vault:
    /// the token account covers what the vault owes.
    pub fn invariant(&self, token_balance: u64) -> Result<()> {
        require!(
            token_balance >= self.outstanding,
            PaychanError::VaultUnderfunded
        );
        Ok(())
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
