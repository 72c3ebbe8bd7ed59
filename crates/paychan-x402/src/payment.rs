//! The one decoder of `paychan` payments: the `PAYMENT-SIGNATURE` (x402 v2)
//! and `X-PAYMENT` (v1) header values the paywall receives, and the
//! `paymentPayload.payload` a facilitator receives. Every decode error names
//! the field at fault as a JSON path (`payload.voucher.cumulativeAmount`).
//!
//! ```
//! use paychan_x402::payment::{HeaderVersion, MAX_PAYMENT_HEADER_LEN, PaymentError, decode_payment};
//! let err = decode_payment(b"not base64!", HeaderVersion::V2).unwrap_err();
//! assert_eq!(err, PaymentError::NotBase64);
//! let big = vec![b'A'; MAX_PAYMENT_HEADER_LEN + 1];
//! assert_eq!(decode_payment(&big, HeaderVersion::V2).unwrap_err().field(), None);
//! ```
//!
//! Decoding is bounded ([`MAX_PAYMENT_HEADER_LEN`] bytes of header, base64
//! into a stack buffer) and builds no `serde_json::Value`. It does not check
//! the scheme, the network or the signature: the caller compares the
//! returned scheme and network with what it offers, and the verifier checks
//! the voucher.
//!
//! `exact` payments (the x402 SVM `exact` scheme, v2 only) have their own
//! decoder, [`decode_exact_payment`]: the paywall tries it first on routes
//! that offer `exact` (headers of up to [`MAX_EXACT_HEADER_LEN`]) and falls
//! back to [`decode_payment`] for anything that is not an `exact` payment.
use std::borrow::Cow;

use base64::Engine;
use paychan_voucher::{SignedVoucher, json::SignedVoucherJson};
use serde::Deserialize;

/// Longest payment header accepted; longer ones are refused before decoding.
pub const MAX_PAYMENT_HEADER_LEN: usize = 4 * 1024;

/// Which header carried the payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderVersion {
    /// `PAYMENT-SIGNATURE`: an x402 v2 `PaymentPayload`.
    V2,
    /// `X-PAYMENT`: an x402 v1 payment payload.
    V1,
}

/// A decoded payment: what it claims to pay with, and the signed voucher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    /// The header it came in.
    pub version: HeaderVersion,
    /// The scheme it names (`accepted.scheme` in v2, `scheme` in v1).
    pub scheme: String,
    /// The network it names (`accepted.network` in v2, `network` in v1).
    pub network: String,
    /// The voucher (its fields validated, its signature not checked).
    pub voucher: SignedVoucher,
}

/// Why a payment does not decode (HTTP 400).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentError {
    /// The header is longer than [`MAX_PAYMENT_HEADER_LEN`].
    #[error("payment header of {len} bytes exceeds {MAX_PAYMENT_HEADER_LEN} bytes")]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// Not standard base64 with padding.
    #[error("payment header is not standard base64 (with padding)")]
    NotBase64,
    /// A field is missing or wrong.
    #[error("{field}: {problem}")]
    Field {
        /// Its JSON path (`.` when the document itself is not an object).
        field: String,
        /// What is wrong.
        problem: String,
    },
}

impl PaymentError {
    /// The JSON path of the field at fault, if one is.
    #[must_use]
    pub fn field(&self) -> Option<&str> {
        match self {
            PaymentError::Field { field, .. } => Some(field),
            _ => None,
        }
    }

    fn field_error(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Field {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AcceptedRef<'a> {
    #[serde(borrow)]
    scheme: Cow<'a, str>,
    #[serde(borrow)]
    network: Cow<'a, str>,
}

/// `v2::PaymentPayload` with the `paychan` payload typed and the fields the
/// decoder does not need skipped.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V2Envelope<'a> {
    x402_version: u32,
    #[serde(borrow)]
    accepted: AcceptedRef<'a>,
    payload: SignedVoucherJson,
}

/// `v1::PaymentPayload`, typed likewise.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V1Envelope<'a> {
    x402_version: u32,
    #[serde(borrow)]
    scheme: Cow<'a, str>,
    #[serde(borrow)]
    network: Cow<'a, str>,
    payload: SignedVoucherJson,
}

/// A serde error at `path` as a [`PaymentError::Field`]; a missing field is
/// named itself (`payload.signature`, not `payload`).
fn path_error(prefix: &str, path: &serde_path_to_error::Path, problem: String) -> PaymentError {
    let mut field = match path.to_string() {
        root if root == "." => String::new(),
        path => path,
    };
    if let Some(name) = problem
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        if !field.is_empty() {
            field.push('.');
        }
        field.push_str(name);
    }
    let field = match (prefix.is_empty(), field.is_empty()) {
        (true, true) => ".".to_owned(),
        (true, false) => field,
        (false, _) => format!("{prefix}{field}").trim_end_matches('.').to_owned(),
    };
    PaymentError::field_error(field, problem)
}

/// Deserializes `json` as `T`, naming the path of the first bad field.
fn from_json<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Result<T, PaymentError> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().clone();
        path_error("", &path, e.into_inner().to_string())
    })?;
    de.end()
        .map_err(|e| PaymentError::field_error(".", e.to_string()))?;
    Ok(value)
}

/// The voucher of a payload, naming the bad field under `prefix`.
fn voucher_of(payload: &SignedVoucherJson, prefix: &str) -> Result<SignedVoucher, PaymentError> {
    payload
        .to_signed()
        .map_err(|e| PaymentError::field_error(format!("{prefix}{}", e.field), e.error.to_string()))
}

/// Longest `PAYMENT-SIGNATURE` carrying an `exact` payment: its transaction
/// alone is up to 1,644 base64 characters (1,232 bytes), and the envelope
/// echoes the offer and the resource. Other schemes keep
/// [`MAX_PAYMENT_HEADER_LEN`].
pub const MAX_EXACT_HEADER_LEN: usize = 8 * 1024;

/// An `exact` payment (x402 v2 only): the network it names and its
/// transaction, still base64 (the server decodes and checks it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExactPayment {
    /// `accepted.network`.
    pub network: String,
    /// `payload.transaction`: base64 of a serialized `VersionedTransaction`.
    pub transaction: String,
}

/// Just enough of a payment to read its scheme.
#[derive(Deserialize)]
struct SchemeProbe<'a> {
    #[serde(borrow)]
    accepted: SchemeOnly<'a>,
}

#[derive(Deserialize)]
struct SchemeOnly<'a> {
    #[serde(borrow)]
    scheme: Cow<'a, str>,
}

/// `v2::PaymentPayload` of an `exact` payment, typed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExactEnvelope<'a> {
    x402_version: u32,
    #[serde(borrow)]
    accepted: AcceptedRef<'a>,
    payload: crate::scheme::ExactPayload,
}

/// Decodes a `PAYMENT-SIGNATURE` value when it carries an `exact` payment
/// (`accepted.scheme` is `"exact"`): `Ok(None)` for anything else (including
/// a value that is not base64 JSON at all or longer than
/// [`MAX_EXACT_HEADER_LEN`]), which [`decode_payment`] then decodes or
/// refuses as before; an error names the field of an `exact` payment at fault.
pub fn decode_exact_payment(value: &[u8]) -> Result<Option<ExactPayment>, PaymentError> {
    if value.len() > MAX_EXACT_HEADER_LEN {
        return Ok(None);
    }
    let mut buf = [0u8; MAX_EXACT_HEADER_LEN / 4 * 3];
    let Ok(len) = base64::engine::general_purpose::STANDARD.decode_slice(value, &mut buf) else {
        return Ok(None);
    };
    let json = buf.get(..len).unwrap_or_default();
    match serde_json::from_slice::<SchemeProbe<'_>>(json) {
        Ok(probe) if probe.accepted.scheme == crate::scheme::EXACT => {}
        _ => return Ok(None),
    }
    let e: ExactEnvelope<'_> = from_json(json)?;
    if e.x402_version != 2 {
        return Err(PaymentError::field_error(
            "x402Version",
            format!("{} in a header that carries version 2", e.x402_version),
        ));
    }
    Ok(Some(ExactPayment {
        network: e.accepted.network.into_owned(),
        transaction: e.payload.transaction,
    }))
}

/// The transaction of a facilitator request's `exact` payload (already
/// parsed as JSON), naming the bad field under `paymentPayload.payload.`.
pub fn decode_exact_payload_value(payload: &serde_json::Value) -> Result<String, PaymentError> {
    const PREFIX: &str = "paymentPayload.payload.";
    let p: crate::scheme::ExactPayload =
        serde_path_to_error::deserialize(payload).map_err(|e| {
            let path = e.path().clone();
            path_error(PREFIX, &path, e.into_inner().to_string())
        })?;
    Ok(p.transaction)
}

/// Decodes a payment header value (see the module docs).
pub fn decode_payment(value: &[u8], version: HeaderVersion) -> Result<Payment, PaymentError> {
    if value.len() > MAX_PAYMENT_HEADER_LEN {
        return Err(PaymentError::TooLarge { len: value.len() });
    }
    let mut buf = [0u8; MAX_PAYMENT_HEADER_LEN / 4 * 3];
    let len = base64::engine::general_purpose::STANDARD
        .decode_slice(value, &mut buf)
        .map_err(|_| PaymentError::NotBase64)?;
    let json = buf.get(..len).unwrap_or_default();
    decode_payment_json(json, version)
}

/// Decodes the JSON inside a payment header (see [`decode_payment`]).
pub fn decode_payment_json(json: &[u8], version: HeaderVersion) -> Result<Payment, PaymentError> {
    let (found, wanted, payload, scheme, network) = match version {
        HeaderVersion::V2 => {
            let e: V2Envelope<'_> = from_json(json)?;
            let AcceptedRef { scheme, network } = e.accepted;
            (e.x402_version, 2, e.payload, scheme, network)
        }
        HeaderVersion::V1 => {
            let e: V1Envelope<'_> = from_json(json)?;
            (e.x402_version, 1, e.payload, e.scheme, e.network)
        }
    };
    if found != wanted {
        return Err(PaymentError::field_error(
            "x402Version",
            format!("{found} in a header that carries version {wanted}"),
        ));
    }
    Ok(Payment {
        version,
        voucher: voucher_of(&payload, "payload.")?,
        scheme: scheme.into_owned(),
        network: network.into_owned(),
    })
}

/// The voucher of a facilitator request's `paymentPayload.payload` (already
/// parsed as JSON), naming the bad field under `paymentPayload.payload.`.
pub fn decode_payload_value(payload: &serde_json::Value) -> Result<SignedVoucher, PaymentError> {
    const PREFIX: &str = "paymentPayload.payload.";
    let json: SignedVoucherJson = serde_path_to_error::deserialize(payload).map_err(|e| {
        let path = e.path().clone();
        path_error(PREFIX, &path, e.into_inner().to_string())
    })?;
    voucher_of(&json, PREFIX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use paychan_voucher::VoucherV1;
    use serde_json::json;

    use super::*;

    fn voucher() -> SignedVoucher {
        SignedVoucher {
            voucher: VoucherV1 {
                channel_id: [3; 32],
                cumulative_amount: 42,
                expires_at: 0,
            },
            signer: [4; 32],
            signature: [5; 64],
        }
    }

    fn header(doc: &serde_json::Value) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .encode(serde_json::to_vec(doc).unwrap())
            .into_bytes()
    }

    fn v2(payload: serde_json::Value) -> serde_json::Value {
        json!({
            "x402Version": 2,
            "accepted": {"scheme": "paychan", "network": "solana:x", "amount": "1"},
            "payload": payload,
        })
    }

    #[test]
    fn a_payment_round_trips_and_every_bad_field_is_named() {
        let payload = serde_json::to_value(voucher()).unwrap();
        let p = decode_payment(&header(&v2(payload.clone())), HeaderVersion::V2).unwrap();
        assert_eq!(
            (p.voucher, p.scheme.as_str(), p.network.as_str()),
            (voucher(), "paychan", "solana:x")
        );
        let v1 =
            json!({"x402Version": 1, "scheme": "paychan", "network": "solana", "payload": payload});
        assert_eq!(
            decode_payment(&header(&v1), HeaderVersion::V1)
                .unwrap()
                .voucher,
            voucher()
        );
        // The wrong header version for the document.
        let err = decode_payment(&header(&v1), HeaderVersion::V2).unwrap_err();
        assert_eq!(err.field(), Some("accepted"), "{err}");

        for (edit, field) in [
            (
                json!({"voucher": {"cumulativeAmount": "-1"}}),
                "payload.voucher.cumulativeAmount",
            ),
            (
                json!({"voucher": {"cumulativeAmount": 5}}),
                "payload.voucher.cumulativeAmount",
            ),
            (
                json!({"voucher": {"channelId": "0OIl"}}),
                "payload.voucher.channelId",
            ),
            (
                json!({"voucher": {"expiresAt": "tomorrow"}}),
                "payload.voucher.expiresAt",
            ),
            (json!({"signature": "abc"}), "payload.signature"),
            (json!({"signer": 7}), "payload.signer"),
            (
                json!({"signatureType": "secp256k1"}),
                "payload.signatureType",
            ),
        ] {
            let mut bad = payload.clone();
            for (k, v) in edit.as_object().unwrap() {
                match v.as_object() {
                    Some(inner) => {
                        for (ik, iv) in inner {
                            bad[k][ik] = iv.clone();
                        }
                    }
                    None => bad[k] = v.clone(),
                }
            }
            let err = decode_payment(&header(&v2(bad)), HeaderVersion::V2).unwrap_err();
            assert_eq!(err.field(), Some(field), "{err}");
        }
        let mut missing = payload;
        missing.as_object_mut().unwrap().remove("signature");
        let err = decode_payment(&header(&v2(missing)), HeaderVersion::V2).unwrap_err();
        assert_eq!(err.field(), Some("payload.signature"), "{err}");
        let err =
            decode_payment(&header(&json!({"x402Version": 3})), HeaderVersion::V2).unwrap_err();
        assert!(err.field().is_some(), "{err}");
    }

    #[test]
    fn the_size_bound_is_exact() {
        let at_limit = vec![b'A'; MAX_PAYMENT_HEADER_LEN];
        assert_ne!(
            decode_payment(&at_limit, HeaderVersion::V2).unwrap_err(),
            PaymentError::TooLarge {
                len: MAX_PAYMENT_HEADER_LEN
            },
            "a header of exactly the limit is decoded"
        );
        let over = vec![b'A'; MAX_PAYMENT_HEADER_LEN + 1];
        assert_eq!(
            decode_payment(&over, HeaderVersion::V2).unwrap_err(),
            PaymentError::TooLarge {
                len: MAX_PAYMENT_HEADER_LEN + 1
            }
        );
    }

    #[test]
    fn exact_payments_are_told_apart_and_their_bad_fields_named() {
        let exact = json!({
            "x402Version": 2,
            "resource": {"url": "https://api.example/paid"},
            "accepted": {"scheme": "exact", "network": "solana:x", "amount": "1",
                         "extra": {"feePayer": "abc"}},
            "payload": {"transaction": "AQID"},
        });
        assert_eq!(
            decode_exact_payment(&header(&exact)).unwrap(),
            Some(ExactPayment {
                network: "solana:x".into(),
                transaction: "AQID".into()
            })
        );
        // Not exact, not base64, not JSON: left to `decode_payment`.
        let paychan = v2(serde_json::to_value(voucher()).unwrap());
        assert_eq!(decode_exact_payment(&header(&paychan)).unwrap(), None);
        assert_eq!(decode_exact_payment(b"not base64!").unwrap(), None);
        assert_eq!(decode_exact_payment(&header(&json!([1, 2]))).unwrap(), None);
        let big = vec![b'A'; MAX_EXACT_HEADER_LEN + 1];
        assert_eq!(decode_exact_payment(&big).unwrap(), None);
        // An exact payment with a bad field names it.
        let mut bad = exact.clone();
        bad["payload"] = json!({"tx": "AQID"});
        let err = decode_exact_payment(&header(&bad)).unwrap_err();
        assert_eq!(err.field(), Some("payload.transaction"), "{err}");
        let mut bad = exact.clone();
        bad["x402Version"] = json!(1);
        let err = decode_exact_payment(&header(&bad)).unwrap_err();
        assert_eq!(err.field(), Some("x402Version"), "{err}");
        let mut bad = exact;
        bad["accepted"]["network"] = json!(5);
        let err = decode_exact_payment(&header(&bad)).unwrap_err();
        assert_eq!(err.field(), Some("accepted.network"), "{err}");
        assert_eq!(
            decode_exact_payload_value(&json!({"transaction": "AQID"})).unwrap(),
            "AQID"
        );
        let err = decode_exact_payload_value(&json!({"transaction": 7})).unwrap_err();
        assert_eq!(err.field(), Some("paymentPayload.payload.transaction"));
    }

    #[test]
    fn a_facilitator_payload_names_its_bad_field() {
        let mut payload = serde_json::to_value(voucher()).unwrap();
        assert_eq!(decode_payload_value(&payload).unwrap(), voucher());
        payload["voucher"]["cumulativeAmount"] = json!("01");
        let err = decode_payload_value(&payload).unwrap_err();
        assert_eq!(
            err.field(),
            Some("paymentPayload.payload.voucher.cumulativeAmount")
        );
    }
}
