//! Instruction builders: the accounts in the program's order with the
//! program's signer and writable flags, and Anchor's instruction data (an
//! 8-byte discriminator, then the Borsh arguments).
use paychan_voucher::{Ed25519LayoutError, SignedVoucher, ed25519_instruction_data_v1};

use crate::{
    AccountMeta, ID, Instruction, Pubkey,
    ids::{ED25519_PROGRAM, INSTRUCTIONS_SYSVAR, SYSTEM_PROGRAM},
    pda,
};

/// Anchor's instruction discriminators, `sha256("global:<name>")[..8]`.
pub mod discriminator {
    /// `open`.
    pub const OPEN: [u8; 8] = [228, 220, 155, 71, 199, 189, 60, 45];
    /// `top_up`.
    pub const TOP_UP: [u8; 8] = [236, 225, 96, 9, 60, 106, 77, 208];
    /// `settle`.
    pub const SETTLE: [u8; 8] = [175, 42, 185, 87, 144, 131, 102, 212];
    /// `settle_signed`.
    pub const SETTLE_SIGNED: [u8; 8] = [63, 57, 208, 72, 206, 78, 1, 171];
    /// `settle_batch`.
    pub const SETTLE_BATCH: [u8; 8] = [22, 2, 21, 223, 225, 122, 163, 214];
    /// `close`.
    pub const CLOSE: [u8; 8] = [98, 165, 201, 177, 108, 65, 206, 96];
    /// `request_close`.
    pub const REQUEST_CLOSE: [u8; 8] = [82, 168, 167, 86, 14, 15, 199, 180];
    /// `finalize`.
    pub const FINALIZE: [u8; 8] = [171, 61, 218, 56, 127, 115, 12, 217];
    /// `reclaim`.
    pub const RECLAIM: [u8; 8] = [44, 177, 236, 249, 145, 109, 163, 186];
    /// `migrate_vault`.
    pub const MIGRATE_VAULT: [u8; 8] = [139, 151, 25, 211, 120, 164, 24, 215];
}

/// The name of the paychan instruction whose data this is (`"settle"`…),
/// from its discriminator.
pub fn instruction_name(data: &[u8]) -> Option<&'static str> {
    use discriminator::*;
    let table: [([u8; 8], &str); 10] = [
        (OPEN, "open"),
        (TOP_UP, "top_up"),
        (SETTLE, "settle"),
        (SETTLE_SIGNED, "settle_signed"),
        (SETTLE_BATCH, "settle_batch"),
        (CLOSE, "close"),
        (REQUEST_CLOSE, "request_close"),
        (FINALIZE, "finalize"),
        (RECLAIM, "reclaim"),
        (MIGRATE_VAULT, "migrate_vault"),
    ];
    let head = data.get(..8)?;
    table.iter().find(|(d, _)| d == head).map(|(_, name)| *name)
}

/// The arguments of `open`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenArgs {
    /// Payer-chosen salt; pick it at random so addresses never coincide.
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

impl OpenArgs {
    fn data(&self) -> Vec<u8> {
        let mut data = Vec::with_capacity(8 + 32 + 32);
        data.extend_from_slice(&discriminator::OPEN);
        data.extend_from_slice(&self.salt.to_le_bytes());
        data.extend_from_slice(&self.open_slot.to_le_bytes());
        data.extend_from_slice(&self.deposit.to_le_bytes());
        data.extend_from_slice(&self.grace_period.to_le_bytes());
        data.extend_from_slice(self.authorized_signer.as_ref());
        data
    }
}

fn instruction(accounts: Vec<AccountMeta>, data: Vec<u8>) -> Instruction {
    Instruction {
        program_id: ID,
        accounts,
        data,
    }
}

fn w(key: Pubkey) -> AccountMeta {
    AccountMeta::new(key, false)
}

fn r(key: Pubkey) -> AccountMeta {
    AccountMeta::new_readonly(key, false)
}

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
    let accounts = vec![
        AccountMeta::new_readonly(a.payer, true),
        AccountMeta::new(a.rent_payer, true),
        r(a.payee),
        r(a.mint),
        w(a.payer_tokens),
        w(channel),
        w(vault),
        w(pda::vault_tokens(&vault)),
        r(a.token_program),
        r(SYSTEM_PROGRAM),
    ];
    (instruction(accounts, args.data()), channel)
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
    let mut data = discriminator::TOP_UP.to_vec();
    data.extend_from_slice(&amount.to_le_bytes());
    instruction(
        vec![
            AccountMeta::new_readonly(*payer, true),
            w(*channel),
            w(vault),
            w(pda::vault_tokens(&vault)),
            w(*payer_tokens),
            r(*mint),
            r(*token_program),
        ],
        data,
    )
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
            instructions: INSTRUCTIONS_SYSVAR,
        }
    }

    /// The vault's accounts every settle instruction takes first.
    fn vault_metas(&self) -> Vec<AccountMeta> {
        vec![
            w(self.vault),
            w(self.vault_tokens),
            w(self.payee_tokens),
            r(self.mint),
            r(self.token_program),
        ]
    }

    fn metas(&self, channels: &[Pubkey]) -> Vec<AccountMeta> {
        let mut metas = self.vault_metas();
        metas.push(r(self.instructions));
        metas.extend(channels.iter().map(|c| w(*c)));
        metas
    }

    /// `settle` of `channels` (in the order of the preceding Ed25519 records).
    pub fn settle_ix(&self, channels: &[Pubkey]) -> Instruction {
        instruction(self.metas(channels), discriminator::SETTLE.to_vec())
    }

    /// `settle_signed` of `vouchers` (channels of this vault, each once):
    /// the vouchers' amounts, expiries and signatures in the data, their
    /// channels as writable remaining accounts in the same order. No
    /// Ed25519 precompile instruction; see [`settle_signed_with_vouchers`]
    /// for the transaction's instructions.
    pub fn settle_signed_ix(&self, vouchers: &[SignedVoucher]) -> Instruction {
        let mut metas = self.vault_metas();
        metas.extend(
            vouchers
                .iter()
                .map(|v| w(Pubkey::new_from_array(v.voucher.channel_id))),
        );
        // Borsh `Vec<SignedVoucherArgs>`: u32 length, then per voucher the
        // cumulative amount (u64 LE), `expires_at` (i64 LE), the signature.
        let mut data = Vec::with_capacity(12 + vouchers.len() * 80);
        data.extend_from_slice(&discriminator::SETTLE_SIGNED);
        let count = u32::try_from(vouchers.len()).unwrap_or(u32::MAX);
        data.extend_from_slice(&count.to_le_bytes());
        for v in vouchers {
            data.extend_from_slice(&v.voucher.cumulative_amount.to_le_bytes());
            data.extend_from_slice(&v.voucher.expires_at.to_le_bytes());
            data.extend_from_slice(&v.signature);
        }
        instruction(metas, data)
    }

    /// `settle_batch` of `channels` (strictly increasing addresses).
    pub fn settle_batch_ix(&self, channels: &[Pubkey]) -> Instruction {
        instruction(self.metas(channels), discriminator::SETTLE_BATCH.to_vec())
    }
}

/// An Ed25519 precompile instruction with the given data.
pub fn ed25519(data: Vec<u8>) -> Instruction {
    Instruction {
        program_id: ED25519_PROGRAM,
        accounts: vec![],
        data,
    }
}

/// The Ed25519 precompile instruction for signed v1 vouchers.
pub fn ed25519_for_vouchers(vouchers: &[SignedVoucher]) -> Result<Instruction, Ed25519LayoutError> {
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
/// build (`scripts/bench-cu.sh`): about 25,800 CU for one voucher and
/// 20,900 per voucher after the first (two SHA-512 blocks, the reduction
/// mod L, the two-point multiscalar multiplication, the channel); the limit
/// leaves about 4 % (Token-2022's transfer costs more than SPL Token's). A
/// priority fee is charged on this limit, not on what is used.
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

/// `close` by the payee (`with_final_voucher`: the preceding instruction is
/// the final voucher's one-record Ed25519 instruction); the final voucher
/// pays the payee's payout account.
pub fn close(a: &ChannelAccounts, with_final_voucher: bool) -> Instruction {
    let (vault, vault_tokens) = a.vault();
    let mut data = discriminator::CLOSE.to_vec();
    data.push(u8::from(with_final_voucher));
    instruction(
        vec![
            AccountMeta::new_readonly(a.payee, true),
            w(a.channel),
            w(vault),
            w(vault_tokens),
            w(pda::payout(&a.payee, &a.mint, &a.token_program)),
            w(a.payer_tokens),
            w(a.rent_payer),
            r(a.mint),
            r(a.token_program),
            r(INSTRUCTIONS_SYSVAR),
        ],
        data,
    )
}

/// Compute units for a `close` without a final voucher (about 8,800
/// measured with SPL Token, the refund transfer and the account's deletion
/// included), with a margin.
pub const CLOSE_CU: u32 = 12_000;

/// The payee's close with a final voucher, without the Ed25519 precompile:
/// `[set_compute_unit_limit, settle_signed (the voucher), close (no
/// voucher)]`, one transaction signature. `settle` is the vault's
/// [`SettleAccounts`]; the voucher must be ahead of the channel's `settled`
/// (else leave it out and close alone).
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
    instruction(
        vec![
            w(a.channel),
            w(vault),
            w(vault_tokens),
            w(a.payer_tokens),
            w(a.rent_payer),
            r(a.mint),
            r(a.token_program),
        ],
        discriminator::FINALIZE.to_vec(),
    )
}

/// `reclaim` (anyone) of a closed channel's rent.
pub fn reclaim(channel: &Pubkey, rent_payer: &Pubkey) -> Instruction {
    instruction(
        vec![w(*channel), w(*rent_payer)],
        discriminator::RECLAIM.to_vec(),
    )
}

/// `migrate_vault` of the vault of (`payee`, `mint`), `payer` paying the
/// added rent: needed once for a vault written in the version-1 layout.
pub fn migrate_vault(payer: &Pubkey, payee: &Pubkey, mint: &Pubkey) -> Instruction {
    instruction(
        vec![
            AccountMeta::new(*payer, true),
            w(pda::vault(payee, mint)),
            r(SYSTEM_PROGRAM),
        ],
        discriminator::MIGRATE_VAULT.to_vec(),
    )
}

/// `request_close` by the payer.
pub fn request_close(channel: &Pubkey, payer: &Pubkey) -> Instruction {
    instruction(
        vec![AccountMeta::new_readonly(*payer, true), w(*channel)],
        discriminator::REQUEST_CLOSE.to_vec(),
    )
}
