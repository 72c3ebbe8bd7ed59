//! `finalize`: anyone, once the grace period is over, refunds the payer the
//! unsettled rest and closes the channel.
use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

use super::close_out::{Refund, mark_closed, require_ending_accounts};
use crate::{
    error::PaychanError,
    state::{Channel, ChannelStatus, PayeeVault},
};

#[derive(Accounts)]
pub struct Finalize<'info> {
    #[account(mut)]
    pub channel: AccountLoader<'info, Channel>,
    #[account(mut)]
    pub vault: Box<Account<'info, PayeeVault>>,
    #[account(mut, address = vault.tokens @ PaychanError::VaultMismatch)]
    pub vault_tokens: Box<InterfaceAccount<'info, TokenAccount>>,
    /// Receives the refund.
    #[account(mut)]
    pub payer_tokens: Box<InterfaceAccount<'info, TokenAccount>>,
    /// CHECK: must equal the channel's `rent_payer` (checked in the handler).
    #[account(mut)]
    pub rent_payer: UncheckedAccount<'info>,
    #[account(address = vault.mint @ PaychanError::VaultMismatch)]
    pub mint: Box<InterfaceAccount<'info, Mint>>,
    #[account(address = vault.token_program @ PaychanError::VaultMismatch)]
    pub token_program: Interface<'info, TokenInterface>,
}

pub(crate) fn handler(ctx: Context<Finalize>) -> Result<()> {
    let accounts = ctx.accounts;
    let clock = Clock::get()?;
    let ending = {
        let mut channel = accounts.channel.load_mut()?;
        require!(
            channel.status()? == ChannelStatus::Closing,
            PaychanError::ChannelNotClosing
        );
        require!(
            clock.unix_timestamp >= channel.grace_ends_at()?,
            PaychanError::GracePeriodActive
        );
        require_ending_accounts(
            &channel,
            &accounts.vault,
            &accounts.rent_payer.key(),
            &accounts.payer_tokens,
        )?;
        mark_closed(&mut channel, clock.slot)?
    };
    Refund {
        vault: &mut accounts.vault,
        vault_tokens: accounts.vault_tokens.to_account_info(),
        payer_tokens: accounts.payer_tokens.to_account_info(),
        mint: accounts.mint.to_account_info(),
        channel: &accounts.channel,
        rent_payer: &accounts.rent_payer,
    }
    .finish(ending, 0, true)
}
