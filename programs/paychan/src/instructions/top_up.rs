//! `top_up`: add to an open channel's deposit.
use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

use crate::{
    error::PaychanError,
    events::ChannelToppedUp,
    state::{Channel, ChannelStatus, PayeeVault},
    token,
};

#[derive(Accounts)]
pub struct TopUp<'info> {
    pub payer: Signer<'info>,
    #[account(mut)]
    pub channel: AccountLoader<'info, Channel>,
    #[account(mut)]
    pub vault: Box<Account<'info, PayeeVault>>,
    #[account(mut, address = vault.tokens @ PaychanError::VaultMismatch)]
    pub vault_tokens: Box<InterfaceAccount<'info, TokenAccount>>,
    #[account(mut)]
    pub payer_tokens: Box<InterfaceAccount<'info, TokenAccount>>,
    #[account(address = vault.mint @ PaychanError::VaultMismatch)]
    pub mint: Box<InterfaceAccount<'info, Mint>>,
    #[account(address = vault.token_program @ PaychanError::VaultMismatch)]
    pub token_program: Interface<'info, TokenInterface>,
}

pub(crate) fn handler(ctx: Context<TopUp>, amount: u64) -> Result<()> {
    let accounts = ctx.accounts;
    require!(amount > 0, PaychanError::ZeroAmount);
    let deposit = {
        let mut channel = accounts.channel.load_mut()?;
        require_keys_eq!(channel.payer, accounts.payer.key(), PaychanError::NotPayer);
        accounts
            .vault
            .require_serves(&channel.payee, &channel.mint)?;
        require!(
            channel.status()? == ChannelStatus::Open,
            PaychanError::ChannelNotOpen
        );
        token::require_token_account(&accounts.payer_tokens, &channel.payer, &channel.mint)?;
        channel.deposit = channel
            .deposit
            .checked_add(amount)
            .ok_or(PaychanError::Overflow)?;
        channel.invariant()?;
        channel.deposit
    };

    token::deposit_into_vault(
        &accounts.payer,
        &accounts.payer_tokens,
        &accounts.vault_tokens,
        &accounts.mint,
        &accounts.token_program,
        amount,
    )?;
    accounts.vault.credit(amount)?;
    token::check_vault(&accounts.vault, &accounts.vault_tokens.to_account_info())?;

    emit!(ChannelToppedUp {
        channel: accounts.channel.key(),
        amount,
        deposit,
    });
    Ok(())
}
