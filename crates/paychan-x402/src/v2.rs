//! x402 v2 wire types.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a route costs, in one scheme on one network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirements {
    /// Scheme name (`paychan`).
    pub scheme: String,
    /// CAIP-2 network id.
    pub network: String,
    /// Atomic units, decimal string.
    pub amount: String,
    /// The mint (base58).
    pub asset: String,
    /// The payee (base58).
    pub pay_to: String,
    /// How long the offer stands.
    pub max_timeout_seconds: u64,
    /// Scheme-specific data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

/// The resource a 402 is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// Its URL.
    pub url: String,
    /// Human description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Response MIME type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// `PAYMENT-REQUIRED` (with status 402).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    /// Always 2.
    pub x402_version: u32,
    /// Why the request was not served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The resource.
    pub resource: Resource,
    /// Acceptable payments.
    pub accepts: Vec<PaymentRequirements>,
    /// Extensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
}

/// `PAYMENT-SIGNATURE`: the client's payment, echoing the requirements it chose.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayload {
    /// 2.
    pub x402_version: u32,
    /// The resource paid for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource>,
    /// The requirements the client chose.
    pub accepted: PaymentRequirements,
    /// Scheme-specific payload (for `paychan`: the signed voucher JSON).
    pub payload: Value,
    /// Extensions (e.g. `payment-identifier`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
}

/// `PAYMENT-RESPONSE`, and the facilitator's `/settle` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleResponse {
    /// Whether the payment went through.
    pub success: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    /// A human-readable account of the failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Who paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// On-chain signature; "" when nothing went on chain yet.
    pub transaction: String,
    /// CAIP-2 network id.
    pub network: String,
    /// Amount charged, atomic units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// Scheme-specific details (`paychan`: what exactly is wrong, the resync hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
}

/// The facilitator's `/verify` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    /// Whether the payment is valid.
    pub is_valid: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    /// A human-readable account of the failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_message: Option<String>,
    /// Who pays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// Scheme-specific details (`paychan`: what exactly is wrong).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
}

impl SettleResponse {
    /// A payment that went through: `payer` paid `amount` on `network`
    /// (`transaction` is "" when nothing went on chain yet).
    pub fn settled(payer: String, transaction: String, network: String, amount: String) -> Self {
        Self {
            success: true,
            error_reason: None,
            error_message: None,
            payer: Some(payer),
            transaction,
            network,
            amount: Some(amount),
            extensions: None,
        }
    }
}

impl VerifyResponse {
    /// A valid payment by `payer`.
    pub fn valid(payer: String) -> Self {
        Self {
            is_valid: true,
            invalid_reason: None,
            invalid_message: None,
            payer: Some(payer),
            extensions: None,
        }
    }
}

/// Body of `POST /verify` and `POST /settle`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FacilitatorRequest {
    /// 2 (or 1).
    pub x402_version: u32,
    /// The client's payment.
    pub payment_payload: PaymentPayload,
    /// The requirements it must meet.
    pub payment_requirements: PaymentRequirements,
}

/// One supported (version, scheme, network).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedKind {
    /// Protocol version.
    pub x402_version: u32,
    /// Scheme.
    pub scheme: String,
    /// Network (CAIP-2 for v2, name for v1).
    pub network: String,
    /// Scheme data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

/// `GET /supported`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedResponse {
    /// Supported kinds.
    pub kinds: Vec<SupportedKind>,
    /// Supported extensions.
    #[serde(default)]
    pub extensions: Vec<String>,
    /// Signer addresses by CAIP family (e.g. `solana:*`).
    #[serde(default)]
    pub signers: BTreeMap<String, Vec<String>>,
}
