//! `settle`: up to `MAX_SETTLE_VOUCHERS` v1 vouchers of possibly different
//! payers to one payee.
//!
//! Transaction shape: `[ed25519 (N records), settle]`, channels passed as
//! remaining accounts (writable) in record order. Anyone may submit it; the
//! payout account is the one the vault records (the payee's associated token
//! account).
//!
//! A voucher at or below what its channel has settled is a no-op once its
//! signer, vault and expiry pass, so a payer in a multi-payer settle cannot
//! make it fail by settling its own channel's voucher first.
use anchor_lang::prelude::*;
use paychan_voucher::{Ed25519Entry, VOUCHER_V1_LEN, VoucherV1};

use crate::{
    constants::MAX_SETTLE_VOUCHERS,
    ed25519,
    error::PaychanError,
    events::ChannelSettled,
    math,
    state::{Channel, PayeeVault},
    token,
};

// A settle's records are all verified by one precompile instruction.
const _: () = assert!(MAX_SETTLE_VOUCHERS as usize <= paychan_voucher::MAX_PRECOMPILE_SIGNATURES);

/// Accounts of `settle` and `settle_batch`; the channels follow as remaining accounts.
#[derive(Accounts)]
pub struct Settle<'info> {
    #[account(mut)]
    pub vault: Box<Account<'info, PayeeVault>>,
    /// CHECK: the vault's own token account (address fixed by the vault);
    /// read in place after the transfer.
    #[account(mut, address = vault.tokens @ PaychanError::VaultMismatch)]
    pub vault_tokens: UncheckedAccount<'info>,
    /// CHECK: the vault's payout account (address fixed by the vault: the
    /// payee's associated token account); the token program checks its mint.
    #[account(mut, address = vault.payout @ PaychanError::WrongTokenAccount)]
    pub payee_tokens: UncheckedAccount<'info>,
    /// CHECK: the vault's mint (address fixed by the vault); the token program
    /// checks it and the decimals in `transfer_checked`.
    #[account(address = vault.mint @ PaychanError::VaultMismatch)]
    pub mint: UncheckedAccount<'info>,
    /// CHECK: the vault's token program (address fixed by the vault, which
    /// only ever stores SPL Token or Token-2022).
    #[account(address = vault.token_program @ PaychanError::VaultMismatch)]
    pub token_program: UncheckedAccount<'info>,
    /// CHECK: checked against the Instructions sysvar id in `ed25519::preceding_ed25519_data`.
    pub instructions: UncheckedAccount<'info>,
}

impl<'info> Settle<'info> {
    /// Checks shared by both settle instructions.
    pub fn validate(&self, channels: &[AccountInfo<'info>], max: u8) -> Result<()> {
        require!(
            !channels.is_empty() && channels.len() <= usize::from(max),
            PaychanError::InvalidChannelCount
        );
        Ok(())
    }

    /// Advances one channel's watermark to `cumulative` (signed by `signer`;
    /// the caller has checked the voucher's expiry) and returns the amount it
    /// releases. A target at or below `settled` releases nothing, whatever
    /// the channel's state: it was paid already.
    pub fn advance(
        &self,
        info: &'info AccountInfo<'info>,
        signer: &[u8; 32],
        cumulative: u64,
        now: i64,
    ) -> Result<u64> {
        advance(&self.vault, info, cumulative, now, |channel| {
            require!(
                channel.authorized_signer.to_bytes() == *signer,
                PaychanError::WrongSigner
            );
            Ok(())
        })
    }

    /// Pays `total` to the payee in one transfer and re-checks the vault.
    pub fn pay_out(&mut self, total: u64) -> Result<()> {
        pay_out(
            &mut self.vault,
            &self.vault_tokens,
            &self.payee_tokens,
            &self.mint,
            total,
        )
    }
}

/// Advances one channel's watermark to `cumulative` and returns the amount
/// it releases (shared by every settle instruction). In order: the account
/// is writable and a channel of this program, `check_signer` accepts the
/// voucher's signer for it (a key compare, or a signature verification),
/// `vault` serves it; then a target at or below `settled` releases nothing,
/// whatever the channel's state (it was paid already), and otherwise the
/// channel must be settleable and the target within the deposit. The caller
/// has checked the voucher's expiry.
pub fn advance<'info>(
    vault: &PayeeVault,
    info: &'info AccountInfo<'info>,
    cumulative: u64,
    now: i64,
    check_signer: impl FnOnce(&Channel) -> Result<()>,
) -> Result<u64> {
    require!(info.is_writable, PaychanError::ChannelNotWritable);
    // Owner check here; `load_mut` checks writability, discriminator and size.
    let loader = AccountLoader::<Channel>::try_from_unchecked(&crate::ID, info)?;
    let mut channel = loader.load_mut()?;
    check_signer(&channel)?;
    vault.require_serves(&channel.payee, &channel.mint)?;
    if cumulative <= channel.settled {
        return Ok(0);
    }
    settle_to(&mut channel, info.key, cumulative, now)
}

/// The v1 voucher an Ed25519 record signs for the channel at `channel`: the
/// record's message decodes, names that channel and has not expired. The
/// caller checks the record's signer against the loaded channel. Shared by
/// `settle` and `close`'s final voucher.
#[inline(always)]
pub fn v1_voucher_for(record: &Ed25519Entry<'_>, channel: &Pubkey, now: i64) -> Result<VoucherV1> {
    let voucher = VoucherV1::decode(record.message).map_err(|_| PaychanError::InvalidVoucher)?;
    require!(
        voucher.channel_id == channel.to_bytes(),
        PaychanError::VoucherChannelMismatch
    );
    require!(!voucher.is_expired(now), PaychanError::VoucherExpired);
    Ok(voucher)
}

/// Moves a settleable channel's watermark up to `cumulative` (strictly above
/// `settled`, within the deposit), logs `ChannelSettled` and returns the
/// increment: the one place a watermark moves, for every settle instruction
/// (through [`advance`]) and for `close`'s final voucher.
#[inline(always)]
pub fn settle_to(channel: &mut Channel, key: &Pubkey, cumulative: u64, now: i64) -> Result<u64> {
    channel.require_settleable(now)?;
    let delta = math::settle_delta(channel.settled, cumulative, channel.deposit)?;
    channel.settled = cumulative;
    channel.invariant()?;
    ChannelSettled::log(key, cumulative, delta);
    Ok(delta)
}

/// Pays `total` from the vault to its payout account in one transfer and
/// re-checks the vault (shared by every settle instruction).
pub fn pay_out<'info>(
    vault: &mut Account<'info, PayeeVault>,
    vault_tokens: &AccountInfo<'info>,
    payee_tokens: &AccountInfo<'info>,
    mint: &AccountInfo<'info>,
    total: u64,
) -> Result<()> {
    vault.debit(total)?;
    token::pay_from_vault(
        vault,
        vault_tokens,
        payee_tokens,
        mint,
        &vault.token_program,
        total,
    )?;
    token::check_vault(vault, vault_tokens)
}

pub(crate) fn handler<'info>(ctx: Context<'info, Settle<'info>>) -> Result<()> {
    let channels = ctx.remaining_accounts;
    ctx.accounts.validate(channels, MAX_SETTLE_VOUCHERS)?;
    let data = ed25519::preceding_ed25519_data(&ctx.accounts.instructions)?;
    let records = ed25519::parse_records(&data, channels.len(), VOUCHER_V1_LEN)?;
    let now = Clock::get()?.unix_timestamp;

    let mut total: u64 = 0;
    for (i, (record, info)) in records.iter().zip(channels).enumerate() {
        // A transaction lists each address once; an account passed twice to
        // an instruction is deserialised as a copy of the same `AccountInfo`,
        // key reference included, so comparing the references finds every
        // duplicate without comparing 32-byte keys (attack test: same channel twice).
        require!(
            channels
                .iter()
                .take(i)
                .all(|prev| !core::ptr::eq(prev.key, info.key)),
            PaychanError::DuplicateChannel
        );
        let voucher = v1_voucher_for(&record, info.key, now)?;
        let delta = ctx
            .accounts
            .advance(info, record.pubkey, voucher.cumulative_amount, now)?;
        total = total.checked_add(delta).ok_or(PaychanError::Overflow)?;
    }
    ctx.accounts.pay_out(total)
}
