//! The `invalidReason` / `errorReason` strings of the `exact` scheme, as
//! `@x402/svm` 2.27's facilitator (`exact/facilitator/errors.ts`) names them.
//! A transaction the reference refuses is refused here with the same string;
//! where this server refuses more (fee payer isolation on every instruction,
//! bounded lookup tables), it uses the reference's string for that rule.

/// `accepted.scheme` or the requirements' scheme is not `exact`.
pub const UNSUPPORTED_SCHEME: &str = "invalid_exact_svm_unsupported_scheme";
/// `accepted.network` differs from the requirements' network.
pub const NETWORK_MISMATCH: &str = "invalid_exact_svm_network_mismatch";
/// The requirements carry no `extra.feePayer`.
pub const MISSING_FEE_PAYER: &str = "invalid_exact_svm_payload_missing_fee_payer";
/// `extra.feePayer` is not this server's key.
pub const FEE_PAYER_NOT_MANAGED: &str = "invalid_exact_svm_fee_payer_not_managed_by_facilitator";
/// The transaction is not base64 of a legacy or v0 transaction.
pub const TRANSACTION_COULD_NOT_BE_DECODED: &str =
    "invalid_exact_svm_payload_transaction_could_not_be_decoded";
/// A required signer's signature is missing or does not verify.
pub const SIGNATURE_INVALID: &str = "invalid_exact_svm_payload_signature_invalid";
/// More signatures are required than the client's and the fee payer's.
pub const EXCESSIVE_SIGNERS: &str = "invalid_exact_svm_payload_excessive_signers";
/// The transaction's first account is not `extra.feePayer`.
pub const FEE_PAYER_MISMATCH: &str = "invalid_exact_svm_fee_payer_mismatch";
/// Not 3 to 7 instructions.
pub const INSTRUCTIONS_LENGTH: &str = "invalid_exact_svm_payload_transaction_instructions_length";
/// The first instruction is not `SetComputeUnitLimit`.
pub const COMPUTE_LIMIT_INSTRUCTION: &str =
    "invalid_exact_svm_payload_transaction_instructions_compute_limit_instruction";
/// The compute-unit limit is above the cap.
pub const COMPUTE_LIMIT_INSTRUCTION_TOO_HIGH: &str =
    "invalid_exact_svm_payload_transaction_instructions_compute_limit_instruction_too_high";
/// The second instruction is not `SetComputeUnitPrice`.
pub const COMPUTE_PRICE_INSTRUCTION: &str =
    "invalid_exact_svm_payload_transaction_instructions_compute_price_instruction";
/// The compute-unit price is above the cap.
pub const COMPUTE_PRICE_INSTRUCTION_TOO_HIGH: &str =
    "invalid_exact_svm_payload_transaction_instructions_compute_price_instruction_too_high";
/// The third instruction is not a `TransferChecked`.
pub const NO_TRANSFER_INSTRUCTION: &str = "invalid_exact_svm_payload_no_transfer_instruction";
/// The fee payer is the transfer's authority (or source).
pub const FEE_PAYER_TRANSFERRING_FUNDS: &str =
    "invalid_exact_svm_payload_transaction_fee_payer_transferring_funds";
/// The transfer's mint is not the asset.
pub const MINT_MISMATCH: &str = "invalid_exact_svm_payload_mint_mismatch";
/// The transfer does not go to the payee's associated token account.
pub const RECIPIENT_MISMATCH: &str = "invalid_exact_svm_payload_recipient_mismatch";
/// The transfer moves less than the price.
pub const AMOUNT_MISMATCH: &str = "invalid_exact_svm_payload_amount_mismatch";
/// The fourth instruction is neither Memo nor Lighthouse.
pub const UNKNOWN_FOURTH_INSTRUCTION: &str = "invalid_exact_svm_payload_unknown_fourth_instruction";
/// The fifth instruction is neither Memo nor Lighthouse.
pub const UNKNOWN_FIFTH_INSTRUCTION: &str = "invalid_exact_svm_payload_unknown_fifth_instruction";
/// The sixth instruction is neither Memo nor Lighthouse.
pub const UNKNOWN_SIXTH_INSTRUCTION: &str = "invalid_exact_svm_payload_unknown_sixth_instruction";
/// The seventh instruction is neither Memo nor Lighthouse.
pub const UNKNOWN_SEVENTH_INSTRUCTION: &str =
    "invalid_exact_svm_payload_unknown_seventh_instruction";
/// An optional instruction past the seventh (unreachable with 7 at most).
pub const UNKNOWN_OPTIONAL_INSTRUCTION: &str =
    "invalid_exact_svm_payload_unknown_optional_instruction";
/// `extra.memo` is set and the transaction has not exactly one Memo.
pub const MEMO_COUNT: &str = "invalid_exact_svm_payload_memo_count";
/// `extra.memo` is set and the Memo's text differs.
pub const MEMO_MISMATCH: &str = "invalid_exact_svm_payload_memo_mismatch";
/// Simulation failed (or a local check showed it would).
pub const TRANSACTION_SIMULATION_FAILED: &str = "invalid_exact_svm_transaction_simulation_failed";
/// Sent, and failed on chain, expired, or was refused by the node.
pub const TRANSACTION_FAILED: &str = "invalid_exact_svm_transaction_failed";
/// The same transaction (message) was settled or is being settled.
pub const DUPLICATE_SETTLEMENT: &str = "duplicate_settlement";
/// Sent, not confirmed in time: a retry with the same payment asks again.
pub const SETTLEMENT_PENDING: &str = "settlement_pending";
/// The fee payer appears in an instruction's accounts or as a program (the
/// reference's smart-wallet rule, applied here to every transaction).
pub const FEE_PAYER_NOT_ISOLATED: &str = "invalid_exact_svm_smart_wallet_fee_payer_not_isolated";
/// A lookup table could not be resolved (missing, not a table, too many).
pub const ALT_RESOLUTION_FAILED: &str = "invalid_exact_svm_smart_wallet_alt_resolution_failed";
