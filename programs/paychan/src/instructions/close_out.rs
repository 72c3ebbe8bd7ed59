//! The end of a channel, shared by `close` (the payee, at once) and
//! `finalize` (anyone, once the grace period is over): the same account
//! checks, the payer's unspent rest refunded from the vault, the channel
//! marked Closed, `ChannelClosed` logged, and the account deleted at once
//! when its address can never be opened again.
use anchor_lang::prelude::*;
use anchor_spl::token_interface::TokenAccount;

use crate::{
    error::PaychanError,
    events::ChannelClosed,
    state::{Channel, ChannelStatus, PayeeVault},
    token,
};

/// What closing a channel left to pay and report.
#[derive(Clone, Copy, Debug)]
pub struct Ending {
    /// The payer's refund (the channel's unspent rest).
    pub refunded: u64,
    /// The channel's final watermark.
    pub settled: u64,
    /// Whether the account can be deleted now (its open window has passed).
    pub reclaimable: bool,
}

/// The accounts both ends check against the channel: `vault` serves it,
/// `rent_payer` is the one it records, `payer_tokens` is a token account of
/// its payer in its mint.
pub fn require_ending_accounts(
    channel: &Channel,
    vault: &PayeeVault,
    rent_payer: &Pubkey,
    payer_tokens: &InterfaceAccount<'_, TokenAccount>,
) -> Result<()> {
    vault.require_serves(&channel.payee, &channel.mint)?;
    require_keys_eq!(
        channel.rent_payer,
        *rent_payer,
        PaychanError::WrongRentPayer
    );
    token::require_token_account(payer_tokens, &channel.payer, &channel.mint)
}

/// Marks `channel` Closed with its unspent rest moved to `refunded`.
pub fn mark_closed(channel: &mut Channel, slot: u64) -> Result<Ending> {
    let refunded = channel.remaining()?;
    channel.refunded = channel
        .refunded
        .checked_add(refunded)
        .ok_or(PaychanError::Overflow)?;
    channel.status = ChannelStatus::Closed as u8;
    channel.invariant()?;
    Ok(Ending {
        refunded,
        settled: channel.settled,
        reclaimable: channel.reclaimable_at(slot),
    })
}

/// The accounts the refund moves through.
pub struct Refund<'a, 'info> {
    /// The payee's vault (debited).
    pub vault: &'a mut Account<'info, PayeeVault>,
    /// The vault's token account.
    pub vault_tokens: AccountInfo<'info>,
    /// The payer's token account (credited).
    pub payer_tokens: AccountInfo<'info>,
    /// The vault's mint.
    pub mint: AccountInfo<'info>,
    /// The channel (deleted when reclaimable).
    pub channel: &'a AccountLoader<'info, Channel>,
    /// Receives the channel's rent when it is deleted.
    pub rent_payer: &'a UncheckedAccount<'info>,
}

impl Refund<'_, '_> {
    /// Pays the refund from the vault, re-checks the vault against its token
    /// balance, logs `ChannelClosed` (`paid`: what this instruction paid
    /// the payee) and deletes the channel if it can be.
    pub fn finish(self, ending: Ending, paid: u64, finalized: bool) -> Result<()> {
        self.vault.debit(ending.refunded)?;
        token::pay_from_vault(
            self.vault,
            &self.vault_tokens,
            &self.payer_tokens,
            &self.mint,
            &self.vault.token_program,
            ending.refunded,
        )?;
        token::check_vault(self.vault, &self.vault_tokens)?;
        emit!(ChannelClosed {
            channel: self.channel.key(),
            settled: ending.settled,
            paid,
            refunded: ending.refunded,
            finalized,
        });
        if ending.reclaimable {
            super::reclaim::delete_channel(self.channel, self.rent_payer)?;
        }
        Ok(())
    }
}
