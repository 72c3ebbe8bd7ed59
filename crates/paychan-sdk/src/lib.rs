//! # paychan-sdk
//!
//! Addresses and instructions of the paychan program for Rust clients,
//! built from the program crate's own account structs and argument types
//! (the same definitions the program and its IDL use).
//!
//! ```
//! use paychan_sdk::{pda, Pubkey};
//! let (payee, mint) = (Pubkey::new_unique(), Pubkey::new_unique());
//! let vault = pda::vault(&payee, &mint);
//! assert_eq!(pda::vault_tokens(&vault), pda::vault_tokens(&pda::vault(&payee, &mint)));
//! ```
#![warn(missing_docs)]

pub use anchor_lang::{prelude::Pubkey, solana_program::instruction::Instruction};
/// The SPL Token program id.
pub use anchor_spl::token::ID as TOKEN_PROGRAM_ID;

/// Program-derived addresses.
pub mod pda {
    use paychan::constants::{SEED_CHANNEL, SEED_VAULT, SEED_VAULT_TOKENS};

    use super::Pubkey;

    /// A payee's pooled vault in a mint.
    pub fn vault(payee: &Pubkey, mint: &Pubkey) -> Pubkey {
        Pubkey::find_program_address(&[SEED_VAULT, payee.as_ref(), mint.as_ref()], &paychan::ID).0
    }

    /// The vault's token account.
    pub fn vault_tokens(vault: &Pubkey) -> Pubkey {
        Pubkey::find_program_address(&[SEED_VAULT_TOKENS, vault.as_ref()], &paychan::ID).0
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
            &paychan::ID,
        )
        .0
    }
}

/// Instruction builders.
pub mod ix {
    use anchor_lang::{InstructionData, ToAccountMetas};
    use paychan::instructions::OpenArgs;

    use super::{Instruction, Pubkey, pda};

    /// Everything `open` needs besides its arguments.
    #[derive(Clone, Copy, Debug)]
    pub struct OpenAccounts {
        /// Funds the deposit (signer).
        pub payer: Pubkey,
        /// Pays the rent (signer).
        pub rent_payer: Pubkey,
        /// Who gets paid.
        pub payee: Pubkey,
        /// Escrowed mint.
        pub mint: Pubkey,
        /// The payer's token account in `mint`.
        pub payer_tokens: Pubkey,
        /// The mint's token program.
        pub token_program: Pubkey,
    }

    /// `open`; returns the instruction and the channel address.
    pub fn open(a: &OpenAccounts, args: OpenArgs) -> (Instruction, Pubkey) {
        let channel = pda::channel(
            &a.payer,
            &a.payee,
            &a.mint,
            &args.authorized_signer,
            args.salt,
            args.open_slot,
        );
        let vault = pda::vault(&a.payee, &a.mint);
        let ix = Instruction {
            program_id: paychan::ID,
            accounts: paychan::accounts::Open {
                payer: a.payer,
                rent_payer: a.rent_payer,
                payee: a.payee,
                mint: a.mint,
                payer_tokens: a.payer_tokens,
                channel,
                vault,
                vault_tokens: pda::vault_tokens(&vault),
                token_program: a.token_program,
                system_program: anchor_lang::system_program::ID,
            }
            .to_account_metas(None),
            data: paychan::instruction::Open { args }.data(),
        };
        (ix, channel)
    }

    /// `top_up` of a channel of (`payee`, `mint`).
    pub fn top_up(
        channel: &Pubkey,
        payer: &Pubkey,
        payer_tokens: &Pubkey,
        payee: &Pubkey,
        mint: &Pubkey,
        token_program: &Pubkey,
        amount: u64,
    ) -> Instruction {
        let vault = pda::vault(payee, mint);
        Instruction {
            program_id: paychan::ID,
            accounts: paychan::accounts::TopUp {
                payer: *payer,
                channel: *channel,
                vault,
                vault_tokens: pda::vault_tokens(&vault),
                payer_tokens: *payer_tokens,
                mint: *mint,
                token_program: *token_program,
            }
            .to_account_metas(None),
            data: paychan::instruction::TopUp { amount }.data(),
        }
    }

    /// `request_close` by the payer.
    pub fn request_close(channel: &Pubkey, payer: &Pubkey) -> Instruction {
        Instruction {
            program_id: paychan::ID,
            accounts: paychan::accounts::RequestClose {
                payer: *payer,
                channel: *channel,
            }
            .to_account_metas(None),
            data: paychan::instruction::RequestClose {}.data(),
        }
    }
}
