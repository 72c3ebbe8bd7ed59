//! What an `exact` transaction must be, checked without the network: its
//! decoding, its signatures, and (once its lookup tables are resolved) its
//! instructions. Every refusal carries the reason `@x402/svm` 2.27's
//! facilitator gives for the same transaction ([`super::reason`]).
use std::collections::HashMap;

use base64::Engine;
use paychan_verifier::Pubkey;
use sha2::Digest;
use solana_message::{VersionedMessage, compiled_instruction::CompiledInstruction};
use solana_transaction::versioned::VersionedTransaction;

use super::{ExactRefusal, reason};

/// The largest transaction Solana carries (`PACKET_DATA_SIZE`).
pub const MAX_TRANSACTION_BYTES: usize = 1_232;
/// Its base64: `4 · ⌈1,232 / 3⌉` characters.
pub const MAX_TRANSACTION_BASE64: usize = 1_644;
/// Signatures a transaction may require: the client's and the fee payer's.
pub const MAX_REQUIRED_SIGNATURES: u8 = 2;
/// Instructions of the layout the reference accepts: compute-unit limit,
/// compute-unit price, `TransferChecked`, then up to four Memo or
/// Lighthouse instructions.
pub const MIN_INSTRUCTIONS: usize = 3;
/// See [`MIN_INSTRUCTIONS`].
pub const MAX_INSTRUCTIONS: usize = 7;
/// Lamports per signature (each required signature is billed to the fee payer).
pub const LAMPORTS_PER_SIGNATURE: u64 = 5_000;

/// The Compute Budget program.
pub const COMPUTE_BUDGET_PROGRAM: Pubkey =
    Pubkey::from_str_const("ComputeBudget111111111111111111111111111111");
pub use paychan_sdk::ids::{TOKEN_2022_PROGRAM, TOKEN_PROGRAM};
/// SPL Memo (v2), the only memo program the reference allows.
pub const MEMO_PROGRAM: Pubkey =
    Pubkey::from_str_const("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr");
/// Lighthouse (wallet-injected assertions), allowed after the transfer.
pub const LIGHTHOUSE_PROGRAM: Pubkey =
    Pubkey::from_str_const("L2TExMFKdjpN9kozasaurPirfHy9P8sbXoAN1qA3S95");
/// The Address Lookup Table program (owner of every table account).
pub const LOOKUP_TABLE_PROGRAM: Pubkey =
    Pubkey::from_str_const("AddressLookupTab1e1111111111111111111111111");

const SET_COMPUTE_UNIT_LIMIT: u8 = 2;
const SET_COMPUTE_UNIT_PRICE: u8 = 3;
const TRANSFER_CHECKED: u8 = 12;

/// A decoded transaction: canonical wire bytes of a legacy or v0 message,
/// sanitized.
#[derive(Clone, Debug)]
pub(crate) struct Decoded {
    pub(crate) tx: VersionedTransaction,
    /// The serialized message: what every signature signs.
    pub(crate) message: Vec<u8>,
    /// SHA-256 of [`Self::message`]: the key of the duplicate check (the
    /// reference's `transactionMessageHash`).
    pub(crate) hash: [u8; 32],
}

impl Decoded {
    /// The lookup tables a v0 message names (none for legacy).
    pub(crate) fn lookup_tables(&self) -> Vec<Pubkey> {
        let mut tables: Vec<Pubkey> = Vec::new();
        for lookup in self.tx.message.address_table_lookups().unwrap_or_default() {
            if !tables.contains(&lookup.account_key) {
                tables.push(lookup.account_key);
            }
        }
        tables
    }

    /// Every account the message references, in the order its instructions
    /// index them: the static keys, then each table's writable then readonly
    /// look-ups (as the runtime loads them). `tables` maps each table to its
    /// addresses; a missing table or an index past a table's end refuses.
    pub(crate) fn account_keys(
        &self,
        tables: &HashMap<Pubkey, Vec<Pubkey>>,
    ) -> Result<Vec<Pubkey>, ExactRefusal> {
        let mut keys = self.tx.message.static_account_keys().to_vec();
        let lookups = self.tx.message.address_table_lookups().unwrap_or_default();
        let mut readonly = Vec::new();
        for lookup in lookups {
            let table = tables.get(&lookup.account_key).ok_or_else(|| {
                ExactRefusal::new(
                    reason::ALT_RESOLUTION_FAILED,
                    format!("lookup table {} was not resolved", lookup.account_key),
                )
            })?;
            let load = |index: &u8| {
                table.get(usize::from(*index)).copied().ok_or_else(|| {
                    ExactRefusal::new(
                        reason::TRANSACTION_COULD_NOT_BE_DECODED,
                        format!(
                            "index {index} is beyond the {} addresses of lookup table {}",
                            table.len(),
                            lookup.account_key
                        ),
                    )
                })
            };
            for index in &lookup.writable_indexes {
                keys.push(load(index)?);
            }
            for index in &lookup.readonly_indexes {
                readonly.push(load(index)?);
            }
        }
        keys.extend(readonly);
        Ok(keys)
    }
}

/// Decodes `payload.transaction`: standard base64 of at most
/// [`MAX_TRANSACTION_BYTES`], a legacy or v0 `VersionedTransaction` in its
/// canonical encoding (no trailing bytes), that sanitizes (indices in
/// range, one signature per required signer).
pub(crate) fn decode(transaction: &str) -> Result<Decoded, ExactRefusal> {
    let bad = |why: &str| ExactRefusal::new(reason::TRANSACTION_COULD_NOT_BE_DECODED, why);
    if transaction.len() > MAX_TRANSACTION_BASE64 {
        return Err(bad(&format!(
            "{} base64 characters; a transaction is at most {MAX_TRANSACTION_BYTES} bytes",
            transaction.len()
        )));
    }
    let mut buf = [0u8; MAX_TRANSACTION_BASE64 / 4 * 3];
    let len = base64::engine::general_purpose::STANDARD
        .decode_slice(transaction, &mut buf)
        .map_err(|_| bad("not standard base64"))?;
    let bytes = buf.get(..len).unwrap_or_default();
    if bytes.len() > MAX_TRANSACTION_BYTES {
        return Err(bad(&format!(
            "{} bytes; a transaction is at most {MAX_TRANSACTION_BYTES}",
            bytes.len()
        )));
    }
    let tx: VersionedTransaction =
        wincode::deserialize_exact(bytes).map_err(|e| bad(&format!("not a transaction: {e}")))?;
    if matches!(tx.message, VersionedMessage::V1(_)) {
        return Err(bad("only legacy and v0 transactions are accepted"));
    }
    tx.sanitize()
        .map_err(|e| bad(&format!("the transaction does not sanitize: {e}")))?;
    // Canonical bytes: the message hashed and signed is the one received.
    match wincode::serialize(&tx) {
        Ok(again) if again == bytes => {}
        _ => return Err(bad("not in its canonical encoding")),
    }
    let message = tx.message.serialize();
    let hash = sha2::Sha256::digest(&message).into();
    Ok(Decoded { tx, message, hash })
}

/// The signer rules, before anything is looked up: at most
/// [`MAX_REQUIRED_SIGNATURES`] required signatures; the fee payer
/// (`feePayer`) is the first account; every other required signer's
/// signature verifies (ed25519, strict) over the message. The fee payer's
/// own slot is not read: it is overwritten when co-signing.
pub(crate) fn signatures(decoded: &Decoded, fee_payer: &Pubkey) -> Result<(), ExactRefusal> {
    let message = &decoded.tx.message;
    let required = message.header().num_required_signatures;
    if required > MAX_REQUIRED_SIGNATURES {
        return Err(ExactRefusal::new(
            reason::EXCESSIVE_SIGNERS,
            format!("{required} signatures required; only the client's and the fee payer's may be"),
        ));
    }
    let keys = message.static_account_keys();
    if keys.first() != Some(fee_payer) {
        return Err(ExactRefusal::new(
            reason::FEE_PAYER_MISMATCH,
            format!("the transaction's fee payer must be {fee_payer}"),
        ));
    }
    for i in 1..usize::from(required) {
        let (Some(key), Some(signature)) = (keys.get(i), decoded.tx.signatures.get(i)) else {
            return Err(ExactRefusal::new(
                reason::SIGNATURE_INVALID,
                format!("signer {i} has no signature"),
            ));
        };
        if !signature.verify(key.as_ref(), &decoded.message) {
            return Err(ExactRefusal::new(
                reason::SIGNATURE_INVALID,
                format!("the signature of {key} does not verify"),
            ));
        }
    }
    Ok(())
}

/// What a transaction must pay, and what the fee payer accepts to pay for it.
#[derive(Clone, Debug)]
pub(crate) struct Policy {
    pub(crate) fee_payer: Pubkey,
    pub(crate) mint: Pubkey,
    pub(crate) token_program: Pubkey,
    pub(crate) decimals: u8,
    /// The payee's associated token account (under `token_program`).
    pub(crate) destination: Pubkey,
    /// The least the transfer must move.
    pub(crate) amount: u64,
    /// When set: exactly one Memo instruction, with exactly this text.
    pub(crate) memo: Option<String>,
    pub(crate) max_compute_units: u32,
    /// Micro-lamports per compute unit.
    pub(crate) max_compute_unit_price: u64,
}

/// A transaction that passed [`instructions`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Checked {
    /// The transfer's authority (the client).
    pub(crate) payer: Pubkey,
    /// What the transfer moves.
    pub(crate) amount: u64,
    pub(crate) compute_units: u32,
    pub(crate) compute_unit_price: u64,
    /// The fee the fee payer pays if it lands: every required signature
    /// plus the priority fee, lamports.
    pub(crate) fee: u64,
}

/// `⌈price · units / 10⁶⌉` plus 5,000 lamports per required signature.
pub(crate) fn fee(signatures: u8, compute_units: u32, compute_unit_price: u64) -> u64 {
    let priority = u128::from(compute_unit_price)
        .saturating_mul(u128::from(compute_units))
        .div_ceil(1_000_000);
    u64::try_from(priority)
        .unwrap_or(u64::MAX)
        .saturating_add(LAMPORTS_PER_SIGNATURE.saturating_mul(u64::from(signatures)))
}

/// The little-endian argument of the compute budget instruction `tag`, if
/// `ix` (calling `program`) is one.
fn budget_arg<const N: usize>(
    program: Pubkey,
    ix: &CompiledInstruction,
    tag: u8,
) -> Option<[u8; N]> {
    match ix.data.as_slice() {
        [t, le @ ..] if *t == tag && program == COMPUTE_BUDGET_PROGRAM => {
            <[u8; N]>::try_from(le).ok()
        }
        _ => None,
    }
}

/// Refuses `value` above `cap` with `reason`: "{value} {what}; at most {cap}".
fn at_most(value: u64, cap: u64, reason: &'static str, what: &str) -> Result<(), ExactRefusal> {
    if value > cap {
        return Err(ExactRefusal::new(
            reason,
            format!("{value} {what}; at most {cap}"),
        ));
    }
    Ok(())
}

/// The instruction rules, on the message's accounts with its lookup tables
/// resolved (`keys`, from [`Decoded::account_keys`]), in the reference's
/// order: the layout (3 to 7 instructions), the compute budget (limit then
/// price, each within the policy's cap), one `TransferChecked` (SPL Token
/// or Token-2022) whose authority and source are not the fee payer, of the
/// mint, to the payee's associated token account, for at least the amount;
/// then only Memo or Lighthouse instructions, the memo rule; then what the
/// reference leaves to its smart-wallet path or to simulation: the fee
/// payer in no instruction at all (nor as a program), the mint's decimals,
/// and the authority being the transaction's other signer.
pub(crate) fn instructions(
    decoded: &Decoded,
    keys: &[Pubkey],
    policy: &Policy,
) -> Result<Checked, ExactRefusal> {
    let refuse = |reason: &'static str, message: String| Err(ExactRefusal::new(reason, message));
    let message = &decoded.tx.message;
    let ixs = message.instructions();
    if !(MIN_INSTRUCTIONS..=MAX_INSTRUCTIONS).contains(&ixs.len()) {
        return refuse(
            reason::INSTRUCTIONS_LENGTH,
            format!(
                "{} instructions; {MIN_INSTRUCTIONS} to {MAX_INSTRUCTIONS} are accepted",
                ixs.len()
            ),
        );
    }
    let key = |index: u8| {
        keys.get(usize::from(index)).copied().ok_or_else(|| {
            ExactRefusal::new(
                reason::TRANSACTION_COULD_NOT_BE_DECODED,
                format!("account index {index} out of range"),
            )
        })
    };
    let program = |ix: &CompiledInstruction| key(ix.program_id_index);
    let (Some(limit), Some(price), Some(transfer)) = (ixs.first(), ixs.get(1), ixs.get(2)) else {
        return refuse(
            reason::INSTRUCTIONS_LENGTH,
            "fewer than 3 instructions".into(),
        );
    };

    // 1. SetComputeUnitLimit.
    let units = budget_arg(program(limit)?, limit, SET_COMPUTE_UNIT_LIMIT)
        .map(u32::from_le_bytes)
        .ok_or_else(|| {
            ExactRefusal::new(
                reason::COMPUTE_LIMIT_INSTRUCTION,
                "the first instruction must be SetComputeUnitLimit",
            )
        })?;
    at_most(
        units.into(),
        policy.max_compute_units.into(),
        reason::COMPUTE_LIMIT_INSTRUCTION_TOO_HIGH,
        "compute units requested",
    )?;
    // 2. SetComputeUnitPrice.
    let micro_lamports = budget_arg(program(price)?, price, SET_COMPUTE_UNIT_PRICE)
        .map(u64::from_le_bytes)
        .ok_or_else(|| {
            ExactRefusal::new(
                reason::COMPUTE_PRICE_INSTRUCTION,
                "the second instruction must be SetComputeUnitPrice",
            )
        })?;
    at_most(
        micro_lamports,
        policy.max_compute_unit_price,
        reason::COMPUTE_PRICE_INSTRUCTION_TOO_HIGH,
        "micro-lamports per compute unit",
    )?;

    // 3. TransferChecked.
    let token_program = program(transfer)?;
    let amount_and_decimals = match transfer.data.as_slice() {
        [TRANSFER_CHECKED, amount @ .., decimals] => <[u8; 8]>::try_from(amount)
            .ok()
            .map(|a| (u64::from_le_bytes(a), *decimals)),
        _ => None,
    };
    let (Some((amount, decimals)), [source, mint, destination, authority, ..], true) = (
        amount_and_decimals,
        transfer.accounts.as_slice(),
        token_program == TOKEN_PROGRAM || token_program == TOKEN_2022_PROGRAM,
    ) else {
        return refuse(
            reason::NO_TRANSFER_INSTRUCTION,
            "the third instruction must be an SPL Token or Token-2022 TransferChecked".into(),
        );
    };
    let (source, mint, destination, authority) = (
        key(*source)?,
        key(*mint)?,
        key(*destination)?,
        key(*authority)?,
    );
    let payer = authority;
    let with_payer = |reason: &'static str, message: String| {
        Err(ExactRefusal {
            payer: Some(payer),
            ..ExactRefusal::new(reason, message)
        })
    };
    if authority == policy.fee_payer || source == policy.fee_payer {
        return with_payer(
            reason::FEE_PAYER_TRANSFERRING_FUNDS,
            "the fee payer must not be the transfer's authority or source".into(),
        );
    }
    if mint != policy.mint {
        return with_payer(
            reason::MINT_MISMATCH,
            format!("the transfer moves {mint}; the asset is {}", policy.mint),
        );
    }
    if token_program != policy.token_program || destination != policy.destination {
        return with_payer(
            reason::RECIPIENT_MISMATCH,
            format!(
                "the transfer must go to {} (the payee's associated token account under {})",
                policy.destination, policy.token_program
            ),
        );
    }
    if amount < policy.amount {
        return with_payer(
            reason::AMOUNT_MISMATCH,
            format!(
                "the transfer moves {amount}; the price is {}",
                policy.amount
            ),
        );
    }

    // 4.–7. Memo or Lighthouse only.
    let optional = ixs.get(3..).unwrap_or_default();
    let mut memos = Vec::new();
    for (i, ix) in optional.iter().enumerate() {
        let p = program(ix)?;
        if p == MEMO_PROGRAM {
            memos.push(ix);
        } else if p != LIGHTHOUSE_PROGRAM {
            let reason = match i {
                0 => reason::UNKNOWN_FOURTH_INSTRUCTION,
                1 => reason::UNKNOWN_FIFTH_INSTRUCTION,
                2 => reason::UNKNOWN_SIXTH_INSTRUCTION,
                3 => reason::UNKNOWN_SEVENTH_INSTRUCTION,
                _ => reason::UNKNOWN_OPTIONAL_INSTRUCTION,
            };
            return with_payer(
                reason,
                format!(
                    "instruction {} invokes {p}; only Memo and Lighthouse may follow the transfer",
                    i.saturating_add(4)
                ),
            );
        }
    }
    if let Some(expected) = policy.memo.as_deref().filter(|m| !m.is_empty()) {
        let [memo] = memos.as_slice() else {
            return with_payer(
                reason::MEMO_COUNT,
                format!(
                    "{} Memo instructions; exactly one carrying extra.memo is required",
                    memos.len()
                ),
            );
        };
        if memo.data != expected.as_bytes() {
            return with_payer(
                reason::MEMO_MISMATCH,
                "the Memo instruction's text is not extra.memo".into(),
            );
        }
    }

    // Fee payer isolation, on every account any instruction names (lookup
    // tables included): its signature pays the fee and authorizes nothing.
    for (i, ix) in ixs.iter().enumerate() {
        if program(ix)? == policy.fee_payer {
            return with_payer(
                reason::FEE_PAYER_NOT_ISOLATED,
                format!("instruction {} invokes the fee payer as a program", i + 1),
            );
        }
        for index in &ix.accounts {
            if key(*index)? == policy.fee_payer {
                return with_payer(
                    reason::FEE_PAYER_NOT_ISOLATED,
                    format!(
                        "the fee payer appears in the accounts of instruction {}",
                        i + 1
                    ),
                );
            }
        }
    }

    // Settled by simulation in the reference; refused here without a call.
    if decimals != policy.decimals {
        return with_payer(
            reason::TRANSACTION_SIMULATION_FAILED,
            format!(
                "the transfer names {decimals} decimals; the mint has {}",
                policy.decimals
            ),
        );
    }
    let required = message.header().num_required_signatures;
    if required != MAX_REQUIRED_SIGNATURES || message.static_account_keys().get(1) != Some(&payer) {
        return with_payer(
            reason::TRANSACTION_SIMULATION_FAILED,
            format!("the transfer's authority {payer} is not the transaction's other signer"),
        );
    }
    Ok(Checked {
        payer,
        amount,
        compute_units: units,
        compute_unit_price: micro_lamports,
        fee: fee(required, units, micro_lamports),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use solana_keypair::Keypair;
    use solana_message::{Message, MessageHeader, compiled_instruction::CompiledInstruction};
    use solana_signature::Signature;
    use solana_signer::Signer;

    use super::*;

    struct Fixture {
        fee_payer: Keypair,
        client: Keypair,
        mint: Pubkey,
        destination: Pubkey,
        source: Pubkey,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                fee_payer: Keypair::new(),
                client: Keypair::new(),
                mint: Pubkey::new_unique(),
                destination: Pubkey::new_unique(),
                source: Pubkey::new_unique(),
            }
        }

        fn policy(&self) -> Policy {
            Policy {
                fee_payer: self.fee_payer.pubkey(),
                mint: self.mint,
                token_program: TOKEN_PROGRAM,
                decimals: 6,
                destination: self.destination,
                amount: 1_000,
                memo: None,
                max_compute_units: 50_000,
                max_compute_unit_price: 50_000,
            }
        }

        /// A legacy transaction: keys [fee payer, client, source, destination,
        /// mint, compute budget, token, memo] and the given instructions.
        fn tx(&self, ixs: Vec<CompiledInstruction>) -> VersionedTransaction {
            let keys = vec![
                self.fee_payer.pubkey(),
                self.client.pubkey(),
                self.source,
                self.destination,
                self.mint,
                COMPUTE_BUDGET_PROGRAM,
                TOKEN_PROGRAM,
                MEMO_PROGRAM,
            ];
            let message = Message {
                header: MessageHeader {
                    num_required_signatures: 2,
                    num_readonly_signed_accounts: 1,
                    num_readonly_unsigned_accounts: 4,
                },
                account_keys: keys,
                recent_blockhash: solana_message::Hash::new_from_array([7; 32]),
                instructions: ixs,
            };
            let message = VersionedMessage::Legacy(message);
            let bytes = message.serialize();
            VersionedTransaction {
                signatures: vec![Signature::default(), self.client.sign_message(&bytes)],
                message,
            }
        }

        fn standard(&self, amount: u64) -> Vec<CompiledInstruction> {
            let mut data = vec![TRANSFER_CHECKED];
            data.extend_from_slice(&amount.to_le_bytes());
            data.push(6);
            vec![
                CompiledInstruction::new_from_raw_parts(5, [2, 0x20, 0x4e, 0, 0].to_vec(), vec![]),
                CompiledInstruction::new_from_raw_parts(
                    5,
                    {
                        let mut d = vec![3];
                        d.extend_from_slice(&1u64.to_le_bytes());
                        d
                    },
                    vec![],
                ),
                CompiledInstruction::new_from_raw_parts(6, data, vec![2, 4, 3, 1]),
                CompiledInstruction::new_from_raw_parts(
                    7,
                    b"00112233445566778899aabbccddeeff".to_vec(),
                    vec![],
                ),
            ]
        }
    }

    fn encode(tx: &VersionedTransaction) -> String {
        base64::engine::general_purpose::STANDARD.encode(wincode::serialize(tx).unwrap())
    }

    fn check(
        f: &Fixture,
        tx: &VersionedTransaction,
        policy: &Policy,
    ) -> Result<Checked, &'static str> {
        let d = decode(&encode(tx)).map_err(|r| r.reason)?;
        signatures(&d, &f.fee_payer.pubkey()).map_err(|r| r.reason)?;
        let keys = d.account_keys(&HashMap::new()).map_err(|r| r.reason)?;
        instructions(&d, &keys, policy).map_err(|r| r.reason)
    }

    #[test]
    fn the_stock_layout_passes_and_reports_its_fee() {
        let f = Fixture::new();
        let checked = check(&f, &f.tx(f.standard(1_000)), &f.policy()).unwrap();
        assert_eq!(checked.payer, f.client.pubkey());
        assert_eq!((checked.amount, checked.compute_units), (1_000, 20_000));
        // 2 signatures and ⌈1 µL · 20,000 / 10⁶⌉ = 1 lamport.
        assert_eq!(checked.fee, 10_001);
        // Overpaying is an outcome the spec tolerates.
        assert_eq!(
            check(&f, &f.tx(f.standard(5_000)), &f.policy())
                .unwrap()
                .amount,
            5_000
        );
    }

    #[test]
    fn bad_encodings_are_not_decoded() {
        let f = Fixture::new();
        let good = wincode::serialize(&f.tx(f.standard(1_000))).unwrap();
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let mut trailing = good.clone();
        trailing.push(0);
        for bad in [
            "not base64!".to_string(),
            b64(&good[..good.len() - 1]),
            b64(&trailing),
            b64(&vec![0; MAX_TRANSACTION_BYTES + 1]),
            "A".repeat(MAX_TRANSACTION_BASE64 + 4),
        ] {
            assert_eq!(
                decode(&bad).unwrap_err().reason,
                reason::TRANSACTION_COULD_NOT_BE_DECODED
            );
        }
        assert!(decode(&b64(&good)).is_ok());
    }

    #[test]
    fn each_rule_refuses_with_the_reference_reason() {
        let f = Fixture::new();
        let p = f.policy();
        let with = |edit: &dyn Fn(&mut Vec<CompiledInstruction>)| {
            let mut ixs = f.standard(1_000);
            edit(&mut ixs);
            check(&f, &f.tx(ixs), &p).unwrap_err()
        };
        assert_eq!(
            with(&|i| {
                i.truncate(2);
            }),
            reason::INSTRUCTIONS_LENGTH
        );
        assert_eq!(with(&|i| i.swap(0, 1)), reason::COMPUTE_LIMIT_INSTRUCTION);
        assert_eq!(
            with(&|i| i[0].data = [2, 0x51, 0xc3, 0, 0].to_vec()),
            reason::COMPUTE_LIMIT_INSTRUCTION_TOO_HIGH
        );
        assert_eq!(
            with(&|i| i[1].data.push(0)),
            reason::COMPUTE_PRICE_INSTRUCTION
        );
        assert_eq!(
            with(&|i| i[1].data[1..].copy_from_slice(&50_001u64.to_le_bytes())),
            reason::COMPUTE_PRICE_INSTRUCTION_TOO_HIGH
        );
        assert_eq!(with(&|i| i[2].data[0] = 3), reason::NO_TRANSFER_INSTRUCTION);
        assert_eq!(
            with(&|i| i[2].accounts[3] = 0),
            reason::FEE_PAYER_TRANSFERRING_FUNDS
        );
        assert_eq!(
            with(&|i| i[2].accounts[0] = 0),
            reason::FEE_PAYER_TRANSFERRING_FUNDS
        );
        assert_eq!(with(&|i| i[2].accounts[1] = 2), reason::MINT_MISMATCH);
        assert_eq!(with(&|i| i[2].accounts[2] = 2), reason::RECIPIENT_MISMATCH);
        assert_eq!(
            with(&|i| i[2].data[1..9].copy_from_slice(&999u64.to_le_bytes())),
            reason::AMOUNT_MISMATCH
        );
        assert_eq!(
            with(&|i| i[3].program_id_index = 6),
            reason::UNKNOWN_FOURTH_INSTRUCTION
        );
        assert_eq!(
            with(&|i| {
                i.push(i[3].clone());
                i[4].program_id_index = 5;
            }),
            reason::UNKNOWN_FIFTH_INSTRUCTION
        );
        assert_eq!(
            with(&|i| i[3].accounts = vec![0]),
            reason::FEE_PAYER_NOT_ISOLATED
        );
        assert_eq!(
            with(&|i| i[0].accounts = vec![0]),
            reason::FEE_PAYER_NOT_ISOLATED
        );
        assert_eq!(
            with(&|i| i[2].data[9] = 9),
            reason::TRANSACTION_SIMULATION_FAILED
        );
        assert_eq!(
            with(&|i| i[2].accounts[3] = 2),
            reason::TRANSACTION_SIMULATION_FAILED
        );

        // The memo rule applies only with extra.memo.
        let memo = Policy {
            memo: Some("00112233445566778899aabbccddeeff".into()),
            ..f.policy()
        };
        assert!(check(&f, &f.tx(f.standard(1_000)), &memo).is_ok());
        let mut other = f.standard(1_000);
        other[3].data = b"something else".to_vec();
        assert!(check(&f, &f.tx(other.clone()), &p).is_ok());
        assert_eq!(
            check(&f, &f.tx(other), &memo).unwrap_err(),
            reason::MEMO_MISMATCH
        );
        let mut none = f.standard(1_000);
        none.pop();
        assert_eq!(
            check(&f, &f.tx(none), &memo).unwrap_err(),
            reason::MEMO_COUNT
        );
        let mut two = f.standard(1_000);
        two.push(two[3].clone());
        assert_eq!(
            check(&f, &f.tx(two), &memo).unwrap_err(),
            reason::MEMO_COUNT
        );
    }

    #[test]
    fn signatures_are_checked_before_anything_else() {
        let f = Fixture::new();
        let mut tx = f.tx(f.standard(1_000));
        tx.signatures[1] = Signature::default();
        assert_eq!(
            check(&f, &tx, &f.policy()).unwrap_err(),
            reason::SIGNATURE_INVALID
        );
        let mut tx = f.tx(f.standard(1_000));
        tx.signatures[1] = Keypair::new().sign_message(&tx.message.serialize());
        assert_eq!(
            check(&f, &tx, &f.policy()).unwrap_err(),
            reason::SIGNATURE_INVALID
        );
        let other = Fixture {
            fee_payer: Keypair::new(),
            ..Fixture::new()
        };
        let tx = f.tx(f.standard(1_000));
        assert_eq!(
            check(&other, &tx, &f.policy()).unwrap_err(),
            reason::FEE_PAYER_MISMATCH
        );
    }

    #[test]
    fn fees_round_up_and_saturate() {
        assert_eq!(fee(2, 20_000, 1), 10_001);
        assert_eq!(fee(2, 50_000, 50_000), 12_500);
        assert_eq!(fee(1, 0, 0), 5_000);
        assert_eq!(fee(2, u32::MAX, u64::MAX), u64::MAX);
    }
}
