//! `close`: the payee closes cooperatively, optionally settling a final
//! voucher (then the preceding instruction is its one-record Ed25519
//! instruction), and the payer is refunded the rest at once.
use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};
use paychan_voucher::{VOUCHER_V1_LEN, VoucherV1};

use crate::{
    ed25519,
    error::PaychanError,
    events::{ChannelClosed, ChannelSettled},
    math,
    state::{Channel, ChannelStatus, PayeeVault},
    token,
};

#[derive(Accounts)]
pub struct Close<'info> {
    pub payee: Signer<'info>,
    #[account(mut)]
    pub channel: AccountLoader<'info, Channel>,
    #[account(mut)]
    pub vault: Box<Account<'info, PayeeVault>>,
    #[account(mut, address = vault.tokens @ PaychanError::VaultMismatch)]
    pub vault_tokens: Box<InterfaceAccount<'info, TokenAccount>>,
    /// CHECK: the vault's payout account (address fixed by the vault: the
    /// payee's associated token account); receives the final voucher's
    /// increment, the token program checks its mint.
    #[account(mut, address = vault.payout @ PaychanError::WrongTokenAccount)]
    pub payee_tokens: UncheckedAccount<'info>,
    /// Receives the refund.
    #[account(mut)]
    pub payer_tokens: Box<InterfaceAccount<'info, TokenAccount>>,
    /// CHECK: must equal the channel's `rent_payer` (checked in the handler);
    /// receives the channel's rent when the account can be deleted at once.
    #[account(mut)]
    pub rent_payer: UncheckedAccount<'info>,
    #[account(address = vault.mint @ PaychanError::VaultMismatch)]
    pub mint: Box<InterfaceAccount<'info, Mint>>,
    #[account(address = vault.token_program @ PaychanError::VaultMismatch)]
    pub token_program: Interface<'info, TokenInterface>,
    /// CHECK: checked against the Instructions sysvar id when a final voucher is given.
    pub instructions: UncheckedAccount<'info>,
}

pub(crate) fn handler(ctx: Context<Close>, with_final_voucher: bool) -> Result<()> {
    let accounts = ctx.accounts;
    let clock = Clock::get()?;
    let channel_key = accounts.channel.key();

    let (paid, refunded, settled, reclaimable) = {
        let mut channel = accounts.channel.load_mut()?;
        require_keys_eq!(channel.payee, accounts.payee.key(), PaychanError::NotPayee);
        accounts
            .vault
            .require_serves(&channel.payee, &channel.mint)?;
        require!(
            channel.status()? != ChannelStatus::Closed,
            PaychanError::ChannelClosed
        );
        require_keys_eq!(
            channel.rent_payer,
            accounts.rent_payer.key(),
            PaychanError::WrongRentPayer
        );
        token::require_token_account(&accounts.payer_tokens, &channel.payer, &channel.mint)?;

        let mut paid = 0;
        if with_final_voucher {
            channel.require_settleable(clock.unix_timestamp)?;
            let data = ed25519::preceding_ed25519_data(&accounts.instructions)?;
            let records = ed25519::parse_records(&data, 1, VOUCHER_V1_LEN)?;
            let record = records.get(0).ok_or(PaychanError::InvalidEd25519Layout)?;
            let voucher =
                VoucherV1::decode(record.message).map_err(|_| PaychanError::InvalidVoucher)?;
            require!(
                voucher.channel_id == channel_key.to_bytes(),
                PaychanError::VoucherChannelMismatch
            );
            require!(
                channel.authorized_signer.to_bytes() == *record.pubkey,
                PaychanError::WrongSigner
            );
            require!(
                !voucher.is_expired(clock.unix_timestamp),
                PaychanError::VoucherExpired
            );
            paid = math::settle_delta(channel.settled, voucher.cumulative_amount, channel.deposit)?;
            channel.settled = voucher.cumulative_amount;
        }
        let refund = channel.remaining()?;
        channel.refunded = channel
            .refunded
            .checked_add(refund)
            .ok_or(PaychanError::Overflow)?;
        channel.status = ChannelStatus::Closed as u8;
        channel.invariant()?;
        (
            paid,
            refund,
            channel.settled,
            channel.reclaimable_at(clock.slot),
        )
    };

    let released = paid.checked_add(refunded).ok_or(PaychanError::Overflow)?;
    accounts.vault.debit(released)?;
    token::pay_from_vault(
        &accounts.vault,
        &accounts.vault_tokens.to_account_info(),
        &accounts.payee_tokens.to_account_info(),
        &accounts.mint.to_account_info(),
        &accounts.vault.token_program,
        paid,
    )?;
    token::pay_from_vault(
        &accounts.vault,
        &accounts.vault_tokens.to_account_info(),
        &accounts.payer_tokens.to_account_info(),
        &accounts.mint.to_account_info(),
        &accounts.vault.token_program,
        refunded,
    )?;
    token::check_vault(&accounts.vault, &accounts.vault_tokens.to_account_info())?;

    if paid > 0 {
        emit!(ChannelSettled {
            channel: channel_key,
            settled,
            amount: paid,
        });
    }
    emit!(ChannelClosed {
        channel: channel_key,
        settled,
        paid,
        refunded,
        finalized: false,
    });
    if reclaimable {
        super::reclaim::delete_channel(&accounts.channel, &accounts.rent_payer)?;
    }
    Ok(())
}
