//! `settle_signed`: up to `MAX_SETTLE_SIGNED_VOUCHERS` v1 vouchers whose
//! signatures the program verifies itself, without the Ed25519 precompile
//! (whose every signature is billed like a transaction signature).
//!
//! Transaction shape: `[compute budget, settle_signed]`, the vouchers in the
//! instruction data (per voucher: cumulative amount, `expires_at`, the
//! 64-byte signature) and their channels as writable remaining accounts in
//! the same order. The signed message is rebuilt from the channel's address
//! (`VoucherV1::encode`) and verified against the channel's
//! `authorized_signer` by `paychan_voucher::strict::verify_strict`: exactly
//! the rules of ed25519-dalek's `verify_strict`, which the servers and the
//! precompile apply, computed with SHA-512 and the curve25519 syscalls
//! (about 20,000 CU per voucher; the default 200,000 CU per instruction
//! covers fewer vouchers than fit one packet, hence the compute-budget
//! instruction).
//!
//! The rules are `settle`'s: anyone may submit it; the payout account is the
//! one the vault records; every channel is served by the vault; an expired
//! voucher fails; a voucher at or below what its channel has settled is a
//! no-op once its signature, vault and expiry pass; the same channel twice
//! fails; one transfer pays the sum.
use anchor_lang::prelude::*;
use paychan_voucher::{VoucherV1, strict};

use crate::{
    constants::MAX_SETTLE_SIGNED_VOUCHERS,
    error::PaychanError,
    instructions::settle::{advance, pay_out},
    state::PayeeVault,
};

/// One voucher of `settle_signed`: its channel is the remaining account at
/// the same position.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedVoucherArgs {
    /// The voucher's cumulative amount.
    pub cumulative_amount: u64,
    /// The voucher's `expires_at` (0 = never).
    pub expires_at: i64,
    /// Ed25519 signature of the channel's authorized signer over the 50-byte
    /// v1 voucher (channel address, `cumulative_amount`, `expires_at`).
    pub signature: [u8; 64],
}

/// Accounts of `settle_signed`; the channels follow as remaining accounts.
#[derive(Accounts)]
pub struct SettleSigned<'info> {
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
}

pub(crate) fn handler<'info>(
    ctx: Context<'info, SettleSigned<'info>>,
    vouchers: Vec<SignedVoucherArgs>,
) -> Result<()> {
    let channels = ctx.remaining_accounts;
    require!(
        !channels.is_empty() && channels.len() <= usize::from(MAX_SETTLE_SIGNED_VOUCHERS),
        PaychanError::InvalidChannelCount
    );
    require!(
        vouchers.len() == channels.len(),
        PaychanError::SignatureCountMismatch
    );
    let now = Clock::get()?.unix_timestamp;

    let accounts = ctx.accounts;
    let mut total: u64 = 0;
    for (i, (args, info)) in vouchers.iter().zip(channels).enumerate() {
        // Same duplicate rule as `settle`: an account passed twice is
        // deserialised as a copy of the same `AccountInfo`, key reference
        // included (attack test: the same channel twice).
        require!(
            channels
                .iter()
                .take(i)
                .all(|prev| !core::ptr::eq(prev.key, info.key)),
            PaychanError::DuplicateChannel
        );
        let voucher = VoucherV1 {
            channel_id: info.key.to_bytes(),
            cumulative_amount: args.cumulative_amount,
            expires_at: args.expires_at,
        };
        require!(!voucher.is_expired(now), PaychanError::VoucherExpired);
        let delta = advance(
            &accounts.vault,
            info,
            args.cumulative_amount,
            now,
            |channel| {
                strict::verify_strict(
                    channel.authorized_signer.as_array(),
                    &voucher.encode(),
                    &args.signature,
                )
                .map_err(|_| error!(PaychanError::InvalidSignature))
            },
        )?;
        total = total.checked_add(delta).ok_or(PaychanError::Overflow)?;
    }
    pay_out(
        &mut accounts.vault,
        &accounts.vault_tokens,
        &accounts.payee_tokens,
        &accounts.mint,
        total,
    )
}
