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
