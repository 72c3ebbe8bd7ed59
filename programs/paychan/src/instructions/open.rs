//! `open`: create a channel and escrow its deposit.
use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

use crate::{
    constants::*,
    error::PaychanError,
    events::ChannelOpened,
    math,
    state::{Channel, ChannelStatus, PayeeVault},
    token,
};

/// Arguments of `open`.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct OpenArgs {
    /// Payer-chosen salt; pick it at random so addresses never coincide across clusters.
    pub salt: u64,
    /// A recent slot (≤ current, at most `OPEN_SLOT_WINDOW` old).
    pub open_slot: u64,
    /// Initial escrow, in token base units (> 0).
    pub deposit: u64,
    /// Seconds between `request_close` and `finalize`.
    pub grace_period: i64,
    /// The Ed25519 key that signs this channel's vouchers.
    pub authorized_signer: Pubkey,
}

#[derive(Accounts)]
#[instruction(args: OpenArgs)]
pub struct Open<'info> {
    /// Funds the deposit.
    pub payer: Signer<'info>,
    /// Pays rent for the new accounts; receives the channel rent on reclaim.
    #[account(mut)]
    pub rent_payer: Signer<'info>,
    /// CHECK: any key that can sign may be a payee (the all-zero default key
    /// is refused in `validate`); it is only stored and used as a seed.
    pub payee: UncheckedAccount<'info>,
    #[account(mint::token_program = token_program)]
    pub mint: Box<InterfaceAccount<'info, Mint>>,
    #[account(
        mut,
        token::mint = mint,
        token::authority = payer,
        token::token_program = token_program,
    )]
    pub payer_tokens: Box<InterfaceAccount<'info, TokenAccount>>,
    #[account(
        init,
        payer = rent_payer,
        space = 8 + Channel::LEN,
        seeds = [
            SEED_CHANNEL,
            payer.key().as_ref(),
            payee.key().as_ref(),
            mint.key().as_ref(),
            args.authorized_signer.as_ref(),
            &args.salt.to_le_bytes(),
            &args.open_slot.to_le_bytes(),
        ],
        bump,
    )]
    pub channel: AccountLoader<'info, Channel>,
    #[account(
        init_if_needed,
        payer = rent_payer,
        space = 8 + PayeeVault::INIT_SPACE,
        seeds = [SEED_VAULT, payee.key().as_ref(), mint.key().as_ref()],
        bump,
    )]
    pub vault: Box<Account<'info, PayeeVault>>,
    #[account(
        init_if_needed,
        payer = rent_payer,
        seeds = [SEED_VAULT_TOKENS, vault.key().as_ref()],
        bump,
        token::mint = mint,
        token::authority = vault,
        token::token_program = token_program,
    )]
    pub vault_tokens: Box<InterfaceAccount<'info, TokenAccount>>,
    pub token_program: Interface<'info, TokenInterface>,
    pub system_program: Program<'info, System>,
}

impl Open<'_> {
    fn validate(&self, args: &OpenArgs) -> Result<()> {
        require!(args.deposit > 0, PaychanError::ZeroAmount);
        require!(
            (MIN_GRACE_PERIOD_SECS..=MAX_GRACE_PERIOD_SECS).contains(&args.grace_period),
            PaychanError::InvalidGracePeriod
        );
        require!(
            args.authorized_signer != Pubkey::default(),
            PaychanError::InvalidAuthorizedSigner
        );
        // Nobody can sign for the all-zero key (the System Program's id):
        // such a payee could never close, and its vault would be shared with
        // every other careless or hostile opener.
        require!(
            self.payee.key() != Pubkey::default(),
            PaychanError::InvalidPayee
        );
        math::check_open_slot(args.open_slot, Clock::get()?.slot)?;
        token::check_mint_extensions(&self.mint.to_account_info())
    }
}

pub(crate) fn handler(ctx: Context<Open>, args: OpenArgs) -> Result<()> {
    ctx.accounts.validate(&args)?;
    let accounts = ctx.accounts;
    let payee = accounts.payee.key();
    let mint = accounts.mint.key();

    let vault = &mut accounts.vault;
    if vault.is_new() {
        // First channel to this payee in this mint: the vault was just created.
        let token_program = accounts.token_program.key();
        vault.set_inner(PayeeVault {
            payee,
            mint,
            token_program,
            tokens: accounts.vault_tokens.key(),
            outstanding: 0,
            decimals: accounts.mint.decimals,
            bump: ctx.bumps.vault,
            tokens_bump: ctx.bumps.vault_tokens,
            payout: token::payee_payout_account(&payee, &mint, &token_program),
            version: VAULT_VERSION,
        });
    } else {
        require!(
            vault.serves(&payee, &mint)
                && vault.token_program == accounts.token_program.key()
                && vault.tokens == accounts.vault_tokens.key(),
            PaychanError::VaultMismatch
        );
    }

    token::deposit_into_vault(
        &accounts.payer,
        &accounts.payer_tokens,
        &accounts.vault_tokens,
        &accounts.mint,
        &accounts.token_program,
        args.deposit,
    )?;
    accounts.vault.credit(args.deposit)?;

    let mut channel = accounts.channel.load_init()?;
    *channel = Channel {
        payer: accounts.payer.key(),
        payee,
        mint,
        authorized_signer: args.authorized_signer,
        rent_payer: accounts.rent_payer.key(),
        deposit: args.deposit,
        settled: 0,
        refunded: 0,
        salt: args.salt,
        open_slot: args.open_slot,
        closure_started_at: 0,
        grace_period: args.grace_period,
        version: CHANNEL_VERSION,
        bump: ctx.bumps.channel,
        status: ChannelStatus::Open as u8,
        reserved: [0; 5],
    };
    channel.invariant()?;
    drop(channel);
    token::check_vault(&accounts.vault, &accounts.vault_tokens.to_account_info())?;

    emit!(ChannelOpened {
        channel: accounts.channel.key(),
        payer: accounts.payer.key(),
        payee,
        mint,
        authorized_signer: args.authorized_signer,
        deposit: args.deposit,
        grace_period: args.grace_period,
        salt: args.salt,
        open_slot: args.open_slot,
    });
    Ok(())
}
