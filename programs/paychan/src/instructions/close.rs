//! `close`: the payee closes cooperatively, optionally settling a final
//! voucher (then the preceding instruction is its one-record Ed25519
//! instruction), and the payer is refunded the rest at once.
use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};
use paychan_voucher::VOUCHER_V1_LEN;

use super::{
    close_out::{Refund, mark_closed, require_ending_accounts},
    settle::{settle_to, v1_voucher_for},
};
use crate::{
    ed25519,
    error::PaychanError,
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

    let (paid, ending) = {
        let mut channel = accounts.channel.load_mut()?;
        require_keys_eq!(channel.payee, accounts.payee.key(), PaychanError::NotPayee);
        require!(
            channel.status()? != ChannelStatus::Closed,
            PaychanError::ChannelClosed
        );
        require_ending_accounts(
            &channel,
            &accounts.vault,
            &accounts.rent_payer.key(),
            &accounts.payer_tokens,
        )?;

        let mut paid = 0;
        if with_final_voucher {
            let data = ed25519::preceding_ed25519_data(&accounts.instructions)?;
            let records = ed25519::parse_records(&data, 1, VOUCHER_V1_LEN)?;
            let record = records.get(0).ok_or(PaychanError::InvalidEd25519Layout)?;
            let voucher = v1_voucher_for(&record, &channel_key, clock.unix_timestamp)?;
            require!(
                channel.authorized_signer.to_bytes() == *record.pubkey,
                PaychanError::WrongSigner
            );
            // Strictly increasing, unlike `settle`: a final voucher that
            // pays nothing is a mistake, not a race.
            paid = settle_to(
                &mut channel,
                &channel_key,
                voucher.cumulative_amount,
                clock.unix_timestamp,
            )?;
        }
        (paid, mark_closed(&mut channel, clock.slot)?)
    };

    accounts.vault.debit(paid)?;
    let vault_tokens = accounts.vault_tokens.to_account_info();
    let mint = accounts.mint.to_account_info();
    token::pay_from_vault(
        &accounts.vault,
        &vault_tokens,
        &accounts.payee_tokens.to_account_info(),
        &mint,
        &accounts.vault.token_program,
        paid,
    )?;
    Refund {
        vault: &mut accounts.vault,
        vault_tokens,
        payer_tokens: accounts.payer_tokens.to_account_info(),
        mint,
        channel: &accounts.channel,
        rent_payer: &accounts.rent_payer,
    }
    .finish(ending, paid, false)
}
