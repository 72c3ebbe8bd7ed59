//! # paychan
//!
//! Prepaid escrow payment channels for x402 micropayments.
//!
//! A payer escrows SPL tokens (USDC) into a [`state::Channel`] for a payee and
//! an authorized voucher signer (a session key). Off chain the signer signs
//! *cumulative* vouchers (the 50-byte format of `paychan-voucher`); the payee
//! settles the latest one on chain, several channels per transaction. The
//! escrow of every channel to one payee and mint is pooled in one
//! [`state::PayeeVault`] whose `outstanding` counter is the sum of the
//! unspent deposits of its live channels.
//!
//! State machine (see `docs/001-state-machine.md`):
//!
//! ```text
//! open ─▶ Open ──request_close──▶ Closing ──finalize (grace over)──▶ Closed ──reclaim──▶ (gone)
//!          │  ▲ top_up / settle     │ settle (before grace end)        ▲
//!          └──┴─────────── close (payee, optional final voucher) ──────┘
//! ```
#![allow(unexpected_cfgs)]
// Anchor's macros expand to code that trips these lints; they stay on elsewhere.
#![allow(clippy::too_many_arguments, clippy::result_large_err)]
#![deny(clippy::arithmetic_side_effects)]

#[cfg(target_os = "solana")]
use solana_compiler_builtins as _;

use anchor_lang::prelude::*;

pub mod constants;
pub mod ed25519;
pub mod error;
pub mod events;
pub mod instructions;
pub mod math;
pub mod state;
pub mod token;

use instructions::*;

declare_id!("5AtZWbugM3nhSLAXqJtAX2aLMHb6LCNbCjdEHXzhRi5Y");

/// The dispatch table. Every instruction lives in `instructions/<name>.rs`
/// with its accounts, arguments, validation and handler.
#[program]
pub mod paychan {
    use super::*;

    /// Payer opens a channel to `payee` with `args.deposit` tokens escrowed in
    /// the payee's pooled vault (created on first use); `rent_payer` funds the
    /// new accounts and gets the channel's rent back on reclaim.
    pub fn open(ctx: Context<Open>, args: OpenArgs) -> Result<()> {
        open::handler(ctx, args)
    }

    /// Payer adds `amount` to the deposit of an open channel.
    pub fn top_up(ctx: Context<TopUp>, amount: u64) -> Result<()> {
        top_up::handler(ctx, amount)
    }

    /// Settles up to `MAX_SETTLE_VOUCHERS` v1 vouchers (one per channel, channels in remaining
    /// accounts in record order) verified by the preceding Ed25519 precompile
    /// instruction; pays the payee the sum of the increments in one transfer.
    pub fn settle<'info>(ctx: Context<'info, Settle<'info>>) -> Result<()> {
        settle::handler(ctx)
    }

    /// Settles up to `MAX_SETTLE_SIGNED_VOUCHERS` v1 vouchers carried in the
    /// instruction data (channels in remaining accounts, same order), each
    /// signature verified by the program itself with ed25519-dalek's
    /// `verify_strict` rules (no Ed25519 precompile, no per-signature fee);
    /// pays the payee the sum of the increments in one transfer.
    pub fn settle_signed<'info>(
        ctx: Context<'info, SettleSigned<'info>>,
        vouchers: Vec<SignedVoucherArgs>,
    ) -> Result<()> {
        settle_signed::handler(ctx, vouchers)
    }

    /// Settles one v2 batch voucher: one signature over up to
    /// `MAX_SETTLE_BATCH_CHANNELS` channels of one signer (channels in
    /// remaining accounts, strictly increasing addresses).
    pub fn settle_batch<'info>(ctx: Context<'info, Settle<'info>>) -> Result<()> {
        settle_batch::handler(ctx)
    }

    /// Payee closes the channel, optionally settling a final voucher first
    /// (then the preceding instruction is its Ed25519 record); the payer is
    /// refunded the rest at once.
    pub fn close(ctx: Context<Close>, with_final_voucher: bool) -> Result<()> {
        close::handler(ctx, with_final_voucher)
    }

    /// Payer starts the grace period after which anyone may finalize.
    pub fn request_close(ctx: Context<RequestClose>) -> Result<()> {
        request_close::handler(ctx)
    }

    /// Anyone, once the grace period is over: refunds the payer the unsettled rest.
    pub fn finalize(ctx: Context<Finalize>) -> Result<()> {
        finalize::handler(ctx)
    }

    /// Anyone (paying the added rent): rewrites a vault written in the
    /// version-1 layout in the current one, recording its payout account.
    pub fn migrate_vault(ctx: Context<MigrateVault>) -> Result<()> {
        migrate_vault::handler(ctx)
    }

    /// Anyone: returns a closed channel's rent to its rent payer once its
    /// open-slot window has passed (so its address can never be opened again).
    pub fn reclaim(ctx: Context<Reclaim>) -> Result<()> {
        reclaim::handler(ctx)
    }
}
