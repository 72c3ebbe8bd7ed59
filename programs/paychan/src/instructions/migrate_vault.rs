//! `migrate_vault`: rewrites a version-1 vault (the first layout, 139 bytes
//! of data) in the current layout, so its channels can be settled, topped
//! up and closed again. Anyone may call it; the caller pays the extra rent.
//!
//! Version 1 recorded no payout account: the migration records the payee's
//! associated token account, as `open` does for a new vault. Every other
//! field, the escrow owed (`outstanding`) included, is kept as it was.
use anchor_lang::{
    Discriminator,
    prelude::*,
    system_program::{Transfer, transfer},
};

use crate::{
    constants::VAULT_VERSION,
    error::PaychanError,
    events::VaultMigrated,
    state::{PayeeVault, PayeeVaultV1, VAULT_V1_LEN},
    token,
};

#[derive(Accounts)]
pub struct MigrateVault<'info> {
    /// Pays the rent of the added bytes.
    #[account(mut)]
    pub payer: Signer<'info>,
    /// CHECK: owned by this program with the `PayeeVault` discriminator and
    /// exactly the version-1 length (checked in the handler): only `open`
    /// ever wrote such an account, at the vault PDA of its payee and mint.
    #[account(mut, owner = crate::ID @ PaychanError::UnsupportedVersion)]
    pub vault: UncheckedAccount<'info>,
    pub system_program: Program<'info, System>,
}

pub(crate) fn handler(ctx: Context<MigrateVault>) -> Result<()> {
    let accounts = ctx.accounts;
    let info = accounts.vault.to_account_info();
    let old = {
        let data = info.try_borrow_data()?;
        let (disc, mut body) = data
            .split_at_checked(PayeeVault::DISCRIMINATOR.len())
            .ok_or(PaychanError::UnsupportedVersion)?;
        require!(
            disc == PayeeVault::DISCRIMINATOR && body.len() == VAULT_V1_LEN,
            PaychanError::UnsupportedVersion
        );
        PayeeVaultV1::deserialize(&mut body)?
    };

    let len = PayeeVault::DISCRIMINATOR
        .len()
        .checked_add(PayeeVault::INIT_SPACE)
        .ok_or(PaychanError::Overflow)?;
    let rent = Rent::get()?.minimum_balance(len);
    let missing = rent.saturating_sub(info.lamports());
    if missing > 0 {
        transfer(
            CpiContext::new(
                accounts.system_program.key(),
                Transfer {
                    from: accounts.payer.to_account_info(),
                    to: info.clone(),
                },
            ),
            missing,
        )?;
    }
    info.resize(len)?;

    let payout = token::payee_payout_account(&old.payee, &old.mint, &old.token_program);
    let vault = PayeeVault {
        payee: old.payee,
        mint: old.mint,
        token_program: old.token_program,
        tokens: old.tokens,
        outstanding: old.outstanding,
        decimals: old.decimals,
        bump: old.bump,
        tokens_bump: old.tokens_bump,
        payout,
        version: VAULT_VERSION,
    };
    {
        let mut data = info.try_borrow_mut_data()?;
        vault.try_serialize(&mut &mut data[..])?;
    }
    emit!(VaultMigrated {
        vault: info.key(),
        payout,
        from_version: 1,
        to_version: VAULT_VERSION,
    });
    Ok(())
}
