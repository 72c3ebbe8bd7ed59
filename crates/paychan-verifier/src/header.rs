//! Payment header decoding: bounded, then standard base64, then JSON.
use base64::Engine;
use paychan_voucher::{SignedVoucher, json::SignedVoucherJson};
use serde::Deserialize;

use crate::error::Rejection;

/// Longest header value accepted; longer ones are refused before decoding.
pub const MAX_HEADER_LEN: usize = 4 * 1024;

/// Either an x402 payment payload (the voucher is its `payload`) or the bare
/// signed-voucher JSON.
#[derive(Deserialize)]
#[serde(untagged)]
enum Body {
    Envelope { payload: SignedVoucherJson },
    Bare(SignedVoucherJson),
}

/// Decodes a `PAYMENT-SIGNATURE` / `X-PAYMENT` header value: standard base64
/// (with padding) of JSON that is either an x402 `PaymentPayload` whose
/// `payload` is the signed voucher, or the signed voucher itself.
pub fn decode_header(value: &[u8]) -> Result<SignedVoucher, Rejection> {
    if value.len() > MAX_HEADER_LEN {
        return Err(Rejection::TooLarge { len: value.len() });
    }
    let json = base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|_| Rejection::Malformed("header is not standard base64"))?;
    decode_json(&json)
}

/// Decodes the JSON body (see [`decode_header`]).
pub fn decode_json(json: &[u8]) -> Result<SignedVoucher, Rejection> {
    if json.len() > MAX_HEADER_LEN {
        return Err(Rejection::TooLarge { len: json.len() });
    }
    let body: Body = serde_json::from_slice(json)
        .map_err(|_| Rejection::Malformed("payload is not a signed voucher"))?;
    let signed = match body {
        Body::Envelope { payload } => payload,
        Body::Bare(v) => v,
    };
    SignedVoucher::try_from(&signed).map_err(|_| Rejection::Malformed("invalid voucher fields"))
}

/// Encodes a signed voucher as a bare header value (tests and clients).
pub fn encode_header(voucher: &SignedVoucher) -> Result<String, Rejection> {
    let json = SignedVoucherJson::try_from(voucher)
        .map_err(|_| Rejection::Malformed("voucher cannot be encoded"))?;
    let bytes =
        serde_json::to_vec(&json).map_err(|_| Rejection::Malformed("voucher cannot be encoded"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}
