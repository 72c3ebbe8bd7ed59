//! The `paychan` scheme: its `extra` in payment requirements and its payload.
use paychan_voucher::json::SignedVoucherJson;
use serde::{Deserialize, Serialize};

/// The scheme name (our program, our open flow; not the canonical
/// payment-channels program's `batch-settlement`).
pub const SCHEME: &str = "paychan";

/// `extra` of a `paychan` offer: what a client needs to open a channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaychanExtra {
    /// The paychan program id (base58).
    pub program_id: String,
    /// The mint's token program (base58).
    pub token_program: String,
    /// The mint's decimals.
    pub decimals: u8,
    /// Grace period the server requires, seconds.
    pub grace_period_seconds: i64,
    /// Smallest deposit the server accepts, base units (decimal string).
    pub minimum_deposit: String,
    /// Who pays settlement fees (the payee), base58.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_payer: Option<String>,
}

/// The payload of a `paychan` payment: the signed v1 voucher in the MPP/x402
/// JSON form.
pub type PaychanPayload = SignedVoucherJson;

/// The x402 `exact` scheme on Solana (`scheme_exact_svm`): one partially
/// signed `TransferChecked` transaction per request, co-signed by the fee
/// payer named in [`ExactExtra::fee_payer`] and sent before the answer.
pub const EXACT: &str = "exact";

/// Longest `extra.memo` of an `exact` offer, bytes (the reference client's
/// `MAX_MEMO_BYTES`).
pub const MAX_EXACT_MEMO_BYTES: usize = 256;

/// `extra` of an `exact` offer, as `@x402/svm` reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExactExtra {
    /// Who signs as fee payer and pays the transaction's fee (base58).
    pub fee_payer: String,
    /// When set, the transaction must carry exactly one Memo instruction
    /// with exactly this UTF-8 text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

/// The payload of an `exact` payment: the base64 wire bytes of a partially
/// signed `VersionedTransaction` (legacy or v0).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExactPayload {
    /// Standard base64 (with padding) of the serialized transaction.
    pub transaction: String,
}
