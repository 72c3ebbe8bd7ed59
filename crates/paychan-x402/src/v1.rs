//! x402 v1 wire types (`X-PAYMENT`, the 402 body).
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A v1 payment requirement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirements {
    /// Scheme.
    pub scheme: String,
    /// v1 network name (`solana`, `solana-devnet`).
    pub network: String,
    /// Atomic units, decimal string.
    pub max_amount_required: String,
    /// The mint.
    pub asset: String,
    /// The payee.
    pub pay_to: String,
    /// The resource URL.
    pub resource: String,
    /// Human description.
    pub description: String,
    /// Response MIME type (optional on the wire, as in `@x402/core`; `""` when absent).
    #[serde(default)]
    pub mime_type: String,
    /// Output schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// How long the offer stands.
    pub max_timeout_seconds: u64,
    /// Scheme data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

/// The v1 402 body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    /// 1.
    pub x402_version: u32,
    /// Why the request was not served (optional on the wire, as in
    /// `@x402/core`; `""` when absent).
    #[serde(default)]
    pub error: String,
    /// Acceptable payments.
    pub accepts: Vec<PaymentRequirements>,
}

/// `X-PAYMENT`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayload {
    /// 1.
    pub x402_version: u32,
    /// Scheme.
    pub scheme: String,
    /// v1 network name.
    pub network: String,
    /// Scheme payload.
    pub payload: Value,
}
