//! `request_close`: the payer starts the grace period.
use anchor_lang::prelude::*;

use crate::{
    error::PaychanError,
    events::CloseRequested,
    state::{Channel, ChannelStatus},
};

#[derive(Accounts)]
pub struct RequestClose<'info> {
    pub payer: Signer<'info>,
    #[account(mut)]
    pub channel: AccountLoader<'info, Channel>,
}

pub(crate) fn handler(ctx: Context<RequestClose>) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let mut channel = ctx.accounts.channel.load_mut()?;
    require_keys_eq!(
        channel.payer,
        ctx.accounts.payer.key(),
        PaychanError::NotPayer
    );
    require!(
        channel.status()? == ChannelStatus::Open,
        PaychanError::ChannelNotOpen
    );
    // A clock at or before the epoch would read as "no close requested".
    require!(now > 0, PaychanError::InvariantViolated);
    channel.status = ChannelStatus::Closing as u8;
    channel.closure_started_at = now;
    channel.invariant()?;
    let grace_ends_at = channel.grace_ends_at()?;
    drop(channel);

    emit!(CloseRequested {
        channel: ctx.accounts.channel.key(),
        closure_started_at: now,
        grace_ends_at,
    });
    Ok(())
}
