//! Token movements and the mint policy.
use anchor_lang::prelude::*;
use anchor_spl::{
    token_2022::spl_token_2022::{
        self,
        extension::{BaseStateWithExtensions, ExtensionType, StateWithExtensions},
        generic_token_account::GenericTokenAccount,
    },
    token_interface::{self, Mint, TokenAccount, TokenInterface, TransferChecked},
};

use crate::{error::PaychanError, state::PayeeVault};

/// Token-2022 mint extensions that cannot break escrow accounting. Everything
/// else is rejected: transfer fees and hooks change what arrives, permanent
/// delegates and pausing can take or trap escrow, default-frozen and
/// non-transferable mints cannot pay out, confidential balances are invisible,
/// interest-bearing and scaled-UI amounts change what an amount means, and a
/// mint close authority can pull the mint from under live channels.
pub const ALLOWED_MINT_EXTENSIONS: &[ExtensionType] = &[
    ExtensionType::MetadataPointer,
    ExtensionType::TokenMetadata,
    ExtensionType::GroupPointer,
    ExtensionType::TokenGroup,
    ExtensionType::GroupMemberPointer,
    ExtensionType::TokenGroupMember,
];

/// Fails with [`PaychanError::MintExtensionNotAllowed`] when a Token-2022
/// mint carries an extension outside [`ALLOWED_MINT_EXTENSIONS`].
pub fn check_mint_extensions(mint: &AccountInfo) -> Result<()> {
    if *mint.owner != spl_token_2022::ID {
        return Ok(());
    }
    let data = mint.try_borrow_data()?;
    let state = StateWithExtensions::<spl_token_2022::state::Mint>::unpack(&data)
        .map_err(|_| PaychanError::MintExtensionNotAllowed)?;
    let types = state
        .get_extension_types()
        .map_err(|_| PaychanError::MintExtensionNotAllowed)?;
    for ty in types {
        require!(
            ALLOWED_MINT_EXTENSIONS.contains(&ty),
            PaychanError::MintExtensionNotAllowed
        );
    }
    Ok(())
}

/// The one account payouts to `payee` in `mint` go to: the payee's
/// associated token account under `token_program` (recorded in the vault
/// when it is created; one program-address search, `open` of a new vault only).
pub fn payee_payout_account(payee: &Pubkey, mint: &Pubkey, token_program: &Pubkey) -> Pubkey {
    anchor_spl::associated_token::get_associated_token_address_with_program_id(
        payee,
        mint,
        token_program,
    )
}

/// Fails with [`PaychanError::WrongTokenAccount`] unless `account` holds `mint`
/// for `owner`.
pub fn require_token_account(
    account: &InterfaceAccount<'_, TokenAccount>,
    owner: &Pubkey,
    mint: &Pubkey,
) -> Result<()> {
    require!(
        account.owner == *owner && account.mint == *mint,
        PaychanError::WrongTokenAccount
    );
    Ok(())
}

/// Offset of `amount` in the base layout shared by SPL Token and Token-2022
/// accounts (mint 32, owner 32, amount 8, …).
const AMOUNT_OFFSET: usize = 64;

/// Owner, mint and balance of a token account, read in place (no
/// deserialisation). The account must be owned by `token_program` and hold
/// valid token-account data (the token library's own check, which also
/// tells accounts from mints and multisigs).
pub fn read_token_account(
    info: &AccountInfo,
    token_program: &Pubkey,
) -> Result<(Pubkey, Pubkey, u64)> {
    require_keys_eq!(*info.owner, *token_program, PaychanError::WrongTokenAccount);
    let data = info.try_borrow_data()?;
    require!(
        spl_token_2022::state::Account::valid_account_data(&data),
        PaychanError::WrongTokenAccount
    );
    let mint = *spl_token_2022::state::Account::unpack_account_mint_unchecked(&data);
    let owner = *spl_token_2022::state::Account::unpack_account_owner_unchecked(&data);
    let amount = data
        .get(AMOUNT_OFFSET..AMOUNT_OFFSET + 8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
        .ok_or(PaychanError::WrongTokenAccount)?;
    Ok((mint, owner, amount))
}

/// Pays `amount` out of the vault's token account, signed by the vault PDA.
/// A zero amount is a no-op.
pub fn pay_from_vault<'info>(
    vault: &Account<'info, PayeeVault>,
    vault_tokens: &AccountInfo<'info>,
    to: &AccountInfo<'info>,
    mint: &AccountInfo<'info>,
    token_program: &Pubkey,
    amount: u64,
) -> Result<()> {
    if amount == 0 {
        return Ok(());
    }
    let [a, b, c] = vault.seeds();
    let bump = [vault.bump];
    let seeds: &[&[u8]] = &[a, b, c, &bump];
    token_interface::transfer_checked(
        CpiContext::new_with_signer(
            *token_program,
            TransferChecked {
                from: vault_tokens.clone(),
                mint: mint.clone(),
                to: to.clone(),
                authority: vault.to_account_info(),
            },
            &[seeds],
        ),
        amount,
        vault.decimals,
    )
}

/// Moves `amount` from the payer's token account into the vault.
pub fn deposit_into_vault<'info>(
    payer: &Signer<'info>,
    from: &InterfaceAccount<'info, TokenAccount>,
    vault_tokens: &InterfaceAccount<'info, TokenAccount>,
    mint: &InterfaceAccount<'info, Mint>,
    token_program: &Interface<'info, TokenInterface>,
    amount: u64,
) -> Result<()> {
    token_interface::transfer_checked(
        CpiContext::new(
            token_program.key(),
            TransferChecked {
                from: from.to_account_info(),
                mint: mint.to_account_info(),
                to: vault_tokens.to_account_info(),
                authority: payer.to_account_info(),
            },
        ),
        amount,
        mint.decimals,
    )
}

/// Reads the vault's token balance after transfers (in place) and checks the
/// vault invariant.
pub fn check_vault(vault: &Account<'_, PayeeVault>, vault_tokens: &AccountInfo) -> Result<()> {
    let (_, _, amount) = read_token_account(vault_tokens, &vault.token_program)?;
    vault.invariant(amount)
}
