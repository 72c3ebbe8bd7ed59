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

/// The Instructions sysvar id.
pub use anchor_lang::compat::solana_instructions_sysvar::ID as INSTRUCTIONS_SYSVAR_ID;
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

    /// Where the vault of (`payee`, `mint`) pays out: the payee's associated
    /// token account under `token_program` (the program records it when the
    /// vault is created and pays nowhere else).
    pub fn payout(payee: &Pubkey, mint: &Pubkey, token_program: &Pubkey) -> Pubkey {
        paychan::token::payee_payout_account(payee, mint, token_program)
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
    use anchor_lang::{InstructionData, ToAccountMetas, prelude::AccountMeta};
    use paychan::instructions::{OpenArgs, SignedVoucherArgs};
    use paychan_voucher::{
        ED25519_PROGRAM_ID, Ed25519LayoutError, SignedVoucher, ed25519_instruction_data_v1,
    };

    use super::{INSTRUCTIONS_SYSVAR_ID, Instruction, Pubkey, pda};

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

    /// The accounts of `settle` / `settle_batch` before the channels. Fields
    /// are public so callers (and attack tests) can substitute any of them.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct SettleAccounts {
        /// The payee's vault.
        pub vault: Pubkey,
        /// The vault's token account.
        pub vault_tokens: Pubkey,
        /// The vault's payout account ([`pda::payout`]).
        pub payee_tokens: Pubkey,
        /// The vault's mint.
        pub mint: Pubkey,
        /// The mint's token program.
        pub token_program: Pubkey,
        /// The Instructions sysvar.
        pub instructions: Pubkey,
    }

    impl SettleAccounts {
        /// The accounts for settling channels of `payee` in `mint` (owned by
        /// `token_program`), paying the payee's payout account.
        pub fn new(payee: &Pubkey, mint: &Pubkey, token_program: Pubkey) -> Self {
            let vault = pda::vault(payee, mint);
            Self {
                vault,
                vault_tokens: pda::vault_tokens(&vault),
                payee_tokens: pda::payout(payee, mint, &token_program),
                mint: *mint,
                token_program,
                instructions: INSTRUCTIONS_SYSVAR_ID,
            }
        }

        fn metas(&self, channels: &[Pubkey]) -> Vec<AccountMeta> {
            let mut metas = paychan::accounts::Settle {
                vault: self.vault,
                vault_tokens: self.vault_tokens,
                payee_tokens: self.payee_tokens,
                mint: self.mint,
                token_program: self.token_program,
                instructions: self.instructions,
            }
            .to_account_metas(None);
            metas.extend(channels.iter().map(|c| AccountMeta::new(*c, false)));
            metas
        }

        /// `settle` of `channels` (in the order of the preceding Ed25519 records).
        pub fn settle_ix(&self, channels: &[Pubkey]) -> Instruction {
            Instruction {
                program_id: paychan::ID,
                accounts: self.metas(channels),
                data: paychan::instruction::Settle {}.data(),
            }
        }

        /// `settle_signed` of `vouchers` (channels of this vault, each once):
        /// the vouchers' amounts, expiries and signatures in the data, their
        /// channels as writable remaining accounts in the same order. No
        /// Ed25519 precompile instruction; see [`settle_signed_with_vouchers`]
        /// for the transaction's instructions.
        pub fn settle_signed_ix(&self, vouchers: &[SignedVoucher]) -> Instruction {
            let mut accounts = paychan::accounts::SettleSigned {
                vault: self.vault,
                vault_tokens: self.vault_tokens,
                payee_tokens: self.payee_tokens,
                mint: self.mint,
                token_program: self.token_program,
            }
            .to_account_metas(None);
            accounts.extend(
                vouchers
                    .iter()
                    .map(|v| AccountMeta::new(Pubkey::new_from_array(v.voucher.channel_id), false)),
            );
            let vouchers = vouchers
                .iter()
                .map(|v| SignedVoucherArgs {
                    cumulative_amount: v.voucher.cumulative_amount,
                    expires_at: v.voucher.expires_at,
                    signature: v.signature,
                })
                .collect();
            Instruction {
                program_id: paychan::ID,
                accounts,
                data: paychan::instruction::SettleSigned { vouchers }.data(),
            }
        }

        /// `settle_batch` of `channels` (strictly increasing addresses).
        pub fn settle_batch_ix(&self, channels: &[Pubkey]) -> Instruction {
            Instruction {
                program_id: paychan::ID,
                accounts: self.metas(channels),
                data: paychan::instruction::SettleBatch {}.data(),
            }
        }
    }

    /// An Ed25519 precompile instruction with the given data.
    pub fn ed25519(data: Vec<u8>) -> Instruction {
        Instruction {
            program_id: Pubkey::new_from_array(ED25519_PROGRAM_ID),
            accounts: vec![],
            data,
        }
    }

    /// The Ed25519 precompile instruction for 1..=8 signed v1 vouchers.
    pub fn ed25519_for_vouchers(
        vouchers: &[SignedVoucher],
    ) -> Result<Instruction, Ed25519LayoutError> {
        ed25519_instruction_data_v1(vouchers).map(ed25519)
    }

    /// `[ed25519, settle]` for vouchers of channels of one vault.
    pub fn settle_with_vouchers(
        accounts: &SettleAccounts,
        vouchers: &[SignedVoucher],
    ) -> Result<Vec<Instruction>, Ed25519LayoutError> {
        let channels: Vec<Pubkey> = vouchers
            .iter()
            .map(|v| Pubkey::new_from_array(v.voucher.channel_id))
            .collect();
        Ok(vec![
            ed25519_for_vouchers(vouchers)?,
            accounts.settle_ix(&channels),
        ])
    }

    /// The compute-unit limit for `settle_signed` with `vouchers` vouchers,
    /// the token transfer included: [`SETTLE_SIGNED_BASE_CU`] plus
    /// [`SETTLE_SIGNED_CU_PER_VOUCHER`] per voucher. Measured on the SBPF v3
    /// build (`scripts/bench-cu.sh`): 25,847 CU for one voucher, 234,978 for
    /// eleven, 20,913 per voucher after the first (two SHA-512 blocks
    /// ≈ 15,700, the reduction mod L ≈ 1,200, the two-point multiscalar
    /// multiplication 3,031, the channel ≈ 1,000); the limit leaves about
    /// 4 % (Token-2022's transfer costs more than SPL Token's). A priority
    /// fee is charged on this limit, not on what is used.
    pub fn settle_signed_compute_units(vouchers: usize) -> u32 {
        let n = u32::try_from(vouchers).unwrap_or(u32::MAX);
        SETTLE_SIGNED_CU_PER_VOUCHER
            .saturating_mul(n)
            .saturating_add(SETTLE_SIGNED_BASE_CU)
    }

    /// The fixed part of [`settle_signed_compute_units`].
    pub const SETTLE_SIGNED_BASE_CU: u32 = 8_000;
    /// The per-voucher part of [`settle_signed_compute_units`].
    pub const SETTLE_SIGNED_CU_PER_VOUCHER: u32 = 21_500;

    /// The compute-budget instruction that sets a transaction's compute-unit
    /// limit.
    pub fn compute_unit_limit(units: u32) -> Instruction {
        solana_compute_budget_interface::ComputeBudgetInstruction::set_compute_unit_limit(units)
    }

    /// The compute-budget instruction that sets a transaction's compute-unit
    /// price (micro-lamports per compute unit).
    pub fn compute_unit_price(micro_lamports: u64) -> Instruction {
        solana_compute_budget_interface::ComputeBudgetInstruction::set_compute_unit_price(
            micro_lamports,
        )
    }

    /// `[set_compute_unit_limit, settle_signed]` for vouchers of channels of
    /// one vault: one transaction signature in all, whatever the number of
    /// vouchers (the limit is [`settle_signed_compute_units`]; `settle_signed`
    /// needs more than the default 200,000 CU from 10 vouchers on).
    pub fn settle_signed_with_vouchers(
        accounts: &SettleAccounts,
        vouchers: &[SignedVoucher],
    ) -> Vec<Instruction> {
        vec![
            compute_unit_limit(settle_signed_compute_units(vouchers.len())),
            accounts.settle_signed_ix(vouchers),
        ]
    }

    /// Everything `close`, `finalize` and `reclaim` touch.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ChannelAccounts {
        /// The channel.
        pub channel: Pubkey,
        /// Its payee.
        pub payee: Pubkey,
        /// Its mint.
        pub mint: Pubkey,
        /// The mint's token program.
        pub token_program: Pubkey,
        /// Receives the refund (a token account of the payer).
        pub payer_tokens: Pubkey,
        /// Receives the channel's rent (the channel's `rent_payer`).
        pub rent_payer: Pubkey,
    }

    impl ChannelAccounts {
        fn vault(&self) -> (Pubkey, Pubkey) {
            let vault = pda::vault(&self.payee, &self.mint);
            (vault, pda::vault_tokens(&vault))
        }
    }

    /// `close` by the payee (`with_final_voucher`: the preceding instruction
    /// is the final voucher's one-record Ed25519 instruction); the final
    /// voucher pays the payee's payout account.
    pub fn close(a: &ChannelAccounts, with_final_voucher: bool) -> Instruction {
        let (vault, vault_tokens) = a.vault();
        Instruction {
            program_id: paychan::ID,
            accounts: paychan::accounts::Close {
                payee: a.payee,
                channel: a.channel,
                vault,
                vault_tokens,
                payee_tokens: pda::payout(&a.payee, &a.mint, &a.token_program),
                payer_tokens: a.payer_tokens,
                rent_payer: a.rent_payer,
                mint: a.mint,
                token_program: a.token_program,
                instructions: INSTRUCTIONS_SYSVAR_ID,
            }
            .to_account_metas(None),
            data: paychan::instruction::Close { with_final_voucher }.data(),
        }
    }

    /// Compute units for a `close` without a final voucher (8,832 measured,
    /// SPL Token; the refund transfer and the account's deletion included),
    /// with a margin.
    pub const CLOSE_CU: u32 = 12_000;

    /// The payee's close with a final voucher, without the Ed25519
    /// precompile: `[set_compute_unit_limit, settle_signed (the voucher),
    /// close (no voucher)]` — one transaction signature. `settle` is the
    /// vault's [`SettleAccounts`]; the voucher must be ahead of the
    /// channel's `settled` (else leave it out and close alone).
    pub fn settle_signed_and_close(
        settle: &SettleAccounts,
        voucher: &SignedVoucher,
        close_accounts: &ChannelAccounts,
    ) -> Vec<Instruction> {
        let units = settle_signed_compute_units(1).saturating_add(CLOSE_CU);
        vec![
            compute_unit_limit(units),
            settle.settle_signed_ix(std::slice::from_ref(voucher)),
            close(close_accounts, false),
        ]
    }

    /// `finalize` (anyone) once the grace period is over.
    pub fn finalize(a: &ChannelAccounts) -> Instruction {
        let (vault, vault_tokens) = a.vault();
        Instruction {
            program_id: paychan::ID,
            accounts: paychan::accounts::Finalize {
                channel: a.channel,
                vault,
                vault_tokens,
                payer_tokens: a.payer_tokens,
                rent_payer: a.rent_payer,
                mint: a.mint,
                token_program: a.token_program,
            }
            .to_account_metas(None),
            data: paychan::instruction::Finalize {}.data(),
        }
    }

    /// `reclaim` (anyone) of a closed channel's rent.
    pub fn reclaim(channel: &Pubkey, rent_payer: &Pubkey) -> Instruction {
        Instruction {
            program_id: paychan::ID,
            accounts: paychan::accounts::Reclaim {
                channel: *channel,
                rent_payer: *rent_payer,
            }
            .to_account_metas(None),
            data: paychan::instruction::Reclaim {}.data(),
        }
    }

    /// `migrate_vault` of the vault of (`payee`, `mint`), `payer` paying the
    /// added rent: needed once for a vault written in the version-1 layout.
    pub fn migrate_vault(payer: &Pubkey, payee: &Pubkey, mint: &Pubkey) -> Instruction {
        Instruction {
            program_id: paychan::ID,
            accounts: paychan::accounts::MigrateVault {
                payer: *payer,
                vault: pda::vault(payee, mint),
                system_program: anchor_lang::system_program::ID,
            }
            .to_account_metas(None),
            data: paychan::instruction::MigrateVault {}.data(),
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
