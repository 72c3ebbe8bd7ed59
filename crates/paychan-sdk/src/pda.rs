//! Program-derived addresses and the associated token account.
use crate::{
    ID, Pubkey,
    constants::{SEED_CHANNEL, SEED_VAULT, SEED_VAULT_TOKENS},
    ids::ASSOCIATED_TOKEN_PROGRAM,
};

/// A payee's pooled vault in a mint.
pub fn vault(payee: &Pubkey, mint: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(&[SEED_VAULT, payee.as_ref(), mint.as_ref()], &ID).0
}

/// The vault's token account.
pub fn vault_tokens(vault: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(&[SEED_VAULT_TOKENS, vault.as_ref()], &ID).0
}

/// The associated token account of `owner` in `mint` under `token_program`.
pub fn associated_token_account(owner: &Pubkey, mint: &Pubkey, token_program: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(
        &[owner.as_ref(), token_program.as_ref(), mint.as_ref()],
        &ASSOCIATED_TOKEN_PROGRAM,
    )
    .0
}

/// Where the vault of (`payee`, `mint`) pays out: the payee's associated
/// token account under `token_program` (the program records it when the
/// vault is created and pays nowhere else).
pub fn payout(payee: &Pubkey, mint: &Pubkey, token_program: &Pubkey) -> Pubkey {
    associated_token_account(payee, mint, token_program)
}

/// A channel.
pub fn channel(
    payer: &Pubkey,
    payee: &Pubkey,
    mint: &Pubkey,
    signer: &Pubkey,
    salt: u64,
    open_slot: u64,
) -> Pubkey {
    Pubkey::find_program_address(
        &[
            SEED_CHANNEL,
            payer.as_ref(),
            payee.as_ref(),
            mint.as_ref(),
            signer.as_ref(),
            &salt.to_le_bytes(),
            &open_slot.to_le_bytes(),
        ],
        &ID,
    )
    .0
}
