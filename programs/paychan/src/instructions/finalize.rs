//! `finalize`: anyone, once the grace period is over, refunds the payer the
//! unsettled rest and closes the channel.
use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

use crate::{
    error::PaychanError,
    events::ChannelClosed,
    state::{Channel, ChannelStatus, PayeeVault},
    token,
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
    let (refunded, settled, reclaimable) = {
        let mut channel = accounts.channel.load_mut()?;
        accounts
            .vault
            .require_serves(&channel.payee, &channel.mint)?;
        require!(
            channel.status()? == ChannelStatus::Closing,
            PaychanError::ChannelNotClosing
        );
        require!(
            clock.unix_timestamp >= channel.grace_ends_at()?,
            PaychanError::GracePeriodActive
        );
        require_keys_eq!(
            channel.rent_payer,
            accounts.rent_payer.key(),
            PaychanError::WrongRentPayer
        );
        token::require_token_account(&accounts.payer_tokens, &channel.payer, &channel.mint)?;
        let refund = channel.remaining()?;
        channel.refunded = channel
            .refunded
            .checked_add(refund)
            .ok_or(PaychanError::Overflow)?;
        channel.status = ChannelStatus::Closed as u8;
        channel.invariant()?;
        (refund, channel.settled, channel.reclaimable_at(clock.slot))
    };

    accounts.vault.debit(refunded)?;
    token::pay_from_vault(
        &accounts.vault,
        &accounts.vault_tokens.to_account_info(),
        &accounts.payer_tokens.to_account_info(),
        &accounts.mint.to_account_info(),
        &accounts.vault.token_program,
        refunded,
    )?;
    token::check_vault(&accounts.vault, &accounts.vault_tokens.to_account_info())?;

    emit!(ChannelClosed {
        channel: accounts.channel.key(),
        settled,
        paid: 0,
        refunded,
        finalized: true,
    });
    if reclaimable {
        super::reclaim::delete_channel(&accounts.channel, &accounts.rent_payer)?;
    }
    Ok(())
}
