//! `reclaim`: delete a closed channel and return its rent, once its open-slot
//! window has passed (so the same address can never be opened again).
use anchor_lang::prelude::*;

use crate::{
    error::PaychanError,
    events::ChannelReclaimed,
    state::{Channel, ChannelStatus},
};

#[derive(Accounts)]
pub struct Reclaim<'info> {
    #[account(mut)]
    pub channel: AccountLoader<'info, Channel>,
    /// CHECK: must equal the channel's `rent_payer` (checked in the handler).
    #[account(mut)]
    pub rent_payer: UncheckedAccount<'info>,
}

pub(crate) fn handler(ctx: Context<Reclaim>) -> Result<()> {
    let slot = Clock::get()?.slot;
    {
        let channel = ctx.accounts.channel.load()?;
        require!(
            channel.status()? == ChannelStatus::Closed,
            PaychanError::ChannelNotClosed
        );
        require_keys_eq!(
            channel.rent_payer,
            ctx.accounts.rent_payer.key(),
            PaychanError::WrongRentPayer
        );
        require!(channel.reclaimable_at(slot), PaychanError::ReclaimTooEarly);
    }
    delete_channel(&ctx.accounts.channel, &ctx.accounts.rent_payer)
}

/// Deletes the channel account, sending its lamports to the rent payer.
pub fn delete_channel<'info>(
    channel: &AccountLoader<'info, Channel>,
    rent_payer: &UncheckedAccount<'info>,
) -> Result<()> {
    let lamports = channel.to_account_info().lamports();
    channel.close(rent_payer.to_account_info())?;
    emit!(ChannelReclaimed {
        channel: channel.key(),
        rent_payer: rent_payer.key(),
        lamports,
    });
    Ok(())
}
