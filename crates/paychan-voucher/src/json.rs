//! The MPP/x402 JSON form of a signed v1 voucher (feature `serde`).
//!
//! ```json
//! {
//!   "voucher": {
//!     "channelId": "<base58, 32 bytes>",
//!     "cumulativeAmount": "<decimal u64>",
//!     "expiresAt": "<RFC 3339, omitted when expires_at == 0>"
//!   },
//!   "signer": "<base58, 32 bytes>",
//!   "signature": "<base58, 64 bytes>",
//!   "signatureType": "ed25519"
//! }
//! ```
//!
//! [`SignedVoucherJson`] mirrors that object field for field (strings are kept
//! as strings); converting it into a [`SignedVoucher`] validates every field:
//!
//! * base58 fields must decode to exactly 32 (`channelId`, `signer`) or 64
//!   (`signature`) bytes ([`VoucherError::BadBase58`], [`VoucherError::BadKeyLength`]);
//! * `cumulativeAmount` must be a canonical decimal `u64`: ASCII digits only, no
//!   sign, no `+`, no fraction or exponent, no leading zeros except `"0"` itself,
//!   no overflow ([`VoucherError::BadAmount`]);
//! * `expiresAt`, when present and not `null`, must be RFC 3339 with a UTC offset
//!   (`Z` or `±hh:mm`); it is converted to Unix seconds, fractional seconds are
//!   dropped (rounded down, so the voucher never lives longer than stated), and a
//!   value equal to the epoch itself is refused because 0 means "no expiry"
//!   ([`VoucherError::BadTimestamp`]). An absent `expiresAt` means 0;
//! * `signatureType` must be exactly `"ed25519"` ([`VoucherError::UnsupportedSignatureType`]).
//!
//! Unknown fields are accepted and ignored at every level. The conversion does
//! **not** verify the signature: call [`SignedVoucher::verify_strict`].
//!
//! Going the other way is fallible too ([`VoucherError::BadTimestamp`]) because an
//! `expires_at` outside years 0000..=9999 has no RFC 3339 form.
//! [`SignedVoucher`] itself implements `Serialize`/`Deserialize` through this form.

use alloc::string::{String, ToString};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::VoucherError;
use crate::signing::SignedVoucher;
use crate::v1::VoucherV1;

/// The only accepted `signatureType`.
pub const SIGNATURE_TYPE_ED25519: &str = "ed25519";

/// The `voucher` object of the JSON form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoucherJson {
    /// Channel PDA address, base58.
    pub channel_id: String,
    /// Cumulative amount, decimal string.
    pub cumulative_amount: String,
    /// Expiry as RFC 3339; absent when the voucher does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// A signed v1 voucher in the MPP/x402 JSON form (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedVoucherJson {
    /// The voucher fields.
    pub voucher: VoucherJson,
    /// Signer public key, base58.
    pub signer: String,
    /// Ed25519 signature over the 50-byte voucher, base58.
    pub signature: String,
    /// Always `"ed25519"`.
    pub signature_type: String,
}

/// Longest base58 text of `n` bytes: `ceil(n · log(256) / log(58))`.
const fn max_base58_len(n: usize) -> usize {
    // 138/100 > log(256)/log(58) ≈ 1.3658; plus one for rounding.
    n.saturating_mul(138).div_ceil(100).saturating_add(1)
}

fn decode_base58<const N: usize>(s: &str) -> Result<[u8; N], VoucherError> {
    // Longer text cannot decode to N bytes; refuse it before the quadratic decoder.
    if s.len() > max_base58_len(N) {
        return Err(VoucherError::BadKeyLength);
    }
    let mut buf = [0u8; N];
    match bs58::decode(s).onto(&mut buf[..]) {
        Ok(n) if n == N => Ok(buf),
        Ok(_) | Err(bs58::decode::Error::BufferTooSmall) => Err(VoucherError::BadKeyLength),
        Err(_) => Err(VoucherError::BadBase58),
    }
}

fn parse_amount(s: &str) -> Result<u64, VoucherError> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) {
        return Err(VoucherError::BadAmount);
    }
    s.chars().try_fold(0u64, |acc, c| {
        let digit = c.to_digit(10).ok_or(VoucherError::BadAmount)?;
        acc.checked_mul(10)
            .and_then(|a| a.checked_add(u64::from(digit)))
            .ok_or(VoucherError::BadAmount)
    })
}

fn parse_expires_at(s: &str) -> Result<i64, VoucherError> {
    let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| VoucherError::BadTimestamp)?;
    match t.unix_timestamp() {
        0 => Err(VoucherError::BadTimestamp),
        secs => Ok(secs),
    }
}

fn format_expires_at(secs: i64) -> Result<String, VoucherError> {
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|_| VoucherError::BadTimestamp)?
        .format(&Rfc3339)
        .map_err(|_| VoucherError::BadTimestamp)
}

/// A field of the JSON form that does not hold a valid value: its path
/// (`voucher.cumulativeAmount`, `signature`, …) and what is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field's path in the JSON form.
    pub field: &'static str,
    /// What is wrong with it.
    pub error: VoucherError,
}

impl core::fmt::Display for FieldError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.field, self.error)
    }
}

impl SignedVoucherJson {
    /// Validates every field (see the module docs), naming the first one
    /// that is wrong.
    pub fn to_signed(&self) -> Result<SignedVoucher, FieldError> {
        let at = |field: &'static str| move |error| FieldError { field, error };
        if self.signature_type != SIGNATURE_TYPE_ED25519 {
            return Err(at("signatureType")(VoucherError::UnsupportedSignatureType));
        }
        let expires_at = match &self.voucher.expires_at {
            None => 0,
            Some(s) => parse_expires_at(s).map_err(at("voucher.expiresAt"))?,
        };
        Ok(SignedVoucher {
            voucher: VoucherV1 {
                channel_id: decode_base58::<32>(&self.voucher.channel_id)
                    .map_err(at("voucher.channelId"))?,
                cumulative_amount: parse_amount(&self.voucher.cumulative_amount)
                    .map_err(at("voucher.cumulativeAmount"))?,
                expires_at,
            },
            signer: decode_base58::<32>(&self.signer).map_err(at("signer"))?,
            signature: decode_base58::<64>(&self.signature).map_err(at("signature"))?,
        })
    }
}

impl TryFrom<&SignedVoucherJson> for SignedVoucher {
    type Error = VoucherError;

    fn try_from(j: &SignedVoucherJson) -> Result<Self, Self::Error> {
        j.to_signed().map_err(|e| e.error)
    }
}

impl TryFrom<SignedVoucherJson> for SignedVoucher {
    type Error = VoucherError;

    fn try_from(j: SignedVoucherJson) -> Result<Self, Self::Error> {
        Self::try_from(&j)
    }
}

impl TryFrom<&SignedVoucher> for SignedVoucherJson {
    type Error = VoucherError;

    /// Fails only when `expires_at` has no RFC 3339 form (year outside 0000..=9999).
    fn try_from(s: &SignedVoucher) -> Result<Self, Self::Error> {
        let expires_at = match s.voucher.expires_at {
            0 => None,
            secs => Some(format_expires_at(secs)?),
        };
        Ok(Self {
            voucher: VoucherJson {
                channel_id: bs58::encode(s.voucher.channel_id).into_string(),
                cumulative_amount: s.voucher.cumulative_amount.to_string(),
                expires_at,
            },
            signer: bs58::encode(s.signer).into_string(),
            signature: bs58::encode(s.signature).into_string(),
            signature_type: String::from(SIGNATURE_TYPE_ED25519),
        })
    }
}

impl TryFrom<SignedVoucher> for SignedVoucherJson {
    type Error = VoucherError;

    fn try_from(s: SignedVoucher) -> Result<Self, Self::Error> {
        Self::try_from(&s)
    }
}

impl Serialize for SignedVoucher {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SignedVoucherJson::try_from(self)
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SignedVoucher {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let j = SignedVoucherJson::deserialize(deserializer)?;
        Self::try_from(&j).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::ed25519::ED25519_PROGRAM_ID;
    use crate::signing::sign_v1;
    use ed25519_dalek::SigningKey;

    const ONES_32: &str = "4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi";
    const TWOS_64: &str =
        "3L3RY5sT8K4kyEnqhizwaqxLEbcYvpGrGPNEYRwtbCSUtL6YL86jdrvCbohnP5q8VxQ3qzGmt3W3iQJW97rD7m3";

    fn fixed() -> SignedVoucher {
        SignedVoucher {
            voucher: VoucherV1 {
                channel_id: ED25519_PROGRAM_ID,
                cumulative_amount: 1_000_000,
                expires_at: 1_700_000_000,
            },
            signer: [1; 32],
            signature: [2; 64],
        }
    }

    fn fixed_json() -> SignedVoucherJson {
        SignedVoucherJson::try_from(&fixed()).unwrap()
    }

    fn reject(edit: impl FnOnce(&mut SignedVoucherJson)) -> VoucherError {
        let mut j = fixed_json();
        edit(&mut j);
        SignedVoucher::try_from(&j).unwrap_err()
    }

    #[test]
    fn golden_json() {
        let expected = concat!(
            r#"{"voucher":{"channelId":"Ed25519SigVerify111111111111111111111111111","#,
            r#""cumulativeAmount":"1000000","expiresAt":"2023-11-14T22:13:20Z"},"#,
            r#""signer":"4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi","#,
            r#""signature":"3L3RY5sT8K4kyEnqhizwaqxLEbcYvpGrGPNEYRwtbCSUtL6YL86jdrvCbohnP5q8VxQ3qzGmt3W3iQJW97rD7m3","#,
            r#""signatureType":"ed25519"}"#
        );
        assert_eq!(serde_json::to_string(&fixed_json()).unwrap(), expected);
        assert_eq!(serde_json::to_string(&fixed()).unwrap(), expected);
        let back: SignedVoucher = serde_json::from_str(expected).unwrap();
        assert_eq!(back, fixed());
        assert_eq!(fixed_json().signer, ONES_32);
        assert_eq!(fixed_json().signature, TWOS_64);
    }

    #[test]
    fn round_trip_real_signature_and_verify() {
        let s = sign_v1(
            &SigningKey::from_bytes(&[7; 32]),
            &VoucherV1 {
                channel_id: [0xAB; 32],
                cumulative_amount: u64::MAX,
                expires_at: -1,
            },
        );
        let text = serde_json::to_string(&s).unwrap();
        let back: SignedVoucher = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.verify_strict(), Ok(()));
        let j: SignedVoucherJson = serde_json::from_str(&text).unwrap();
        assert_eq!(j.voucher.cumulative_amount, "18446744073709551615");
        assert_eq!(
            j.voucher.expires_at.as_deref(),
            Some("1969-12-31T23:59:59Z")
        );
    }

    #[test]
    fn expires_at_absent_iff_zero() {
        let mut s = fixed();
        s.voucher.expires_at = 0;
        let text = serde_json::to_string(&s).unwrap();
        assert!(!text.contains("expiresAt"));
        let back: SignedVoucher = serde_json::from_str(&text).unwrap();
        assert_eq!(back.voucher.expires_at, 0);
        // Explicit null also means "no expiry".
        let with_null = text.replace(
            r#""cumulativeAmount":"1000000""#,
            r#""cumulativeAmount":"1000000","expiresAt":null"#,
        );
        let back: SignedVoucher = serde_json::from_str(&with_null).unwrap();
        assert_eq!(back.voucher.expires_at, 0);
        // The epoch itself would silently turn into "never expires": refused.
        assert_eq!(
            reject(|j| j.voucher.expires_at = Some("1970-01-01T00:00:00Z".into())),
            VoucherError::BadTimestamp
        );
    }

    #[test]
    fn timestamps() {
        let parse = |t: &str| {
            let mut j = fixed_json();
            j.voucher.expires_at = Some(t.into());
            SignedVoucher::try_from(&j).map(|s| s.voucher.expires_at)
        };
        assert_eq!(parse("2023-11-14T22:13:20Z"), Ok(1_700_000_000));
        assert_eq!(parse("2023-11-15T00:13:20+02:00"), Ok(1_700_000_000));
        assert_eq!(parse("2023-11-14T22:13:20.999Z"), Ok(1_700_000_000));
        assert_eq!(parse("1969-12-31T23:59:59.5Z"), Ok(-1));
        for bad in [
            "",
            "2023-11-14",
            "2023-11-14T22:13:20",
            "1700000000",
            "2023-13-01T00:00:00Z",
            "not a date",
        ] {
            assert_eq!(parse(bad), Err(VoucherError::BadTimestamp), "{bad}");
        }
        // Not representable in RFC 3339 on the way out.
        let mut s = fixed();
        s.voucher.expires_at = i64::MAX;
        assert_eq!(
            SignedVoucherJson::try_from(&s),
            Err(VoucherError::BadTimestamp)
        );
        assert!(serde_json::to_string(&s).is_err());
    }

    #[test]
    fn rejects_bad_amounts() {
        for bad in [
            "",
            "-1",
            "+1",
            "1.5",
            "1e3",
            " 1",
            "1 ",
            "01",
            "00",
            "0x10",
            "18446744073709551616",
            "99999999999999999999999",
        ] {
            assert_eq!(
                reject(|j| j.voucher.cumulative_amount = bad.into()),
                VoucherError::BadAmount,
                "{bad:?}"
            );
        }
        let ok = |a: &str| {
            let mut j = fixed_json();
            j.voucher.cumulative_amount = a.into();
            SignedVoucher::try_from(&j).map(|s| s.voucher.cumulative_amount)
        };
        assert_eq!(ok("0"), Ok(0));
        assert_eq!(ok("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn rejects_bad_base58_and_lengths() {
        // '0', 'O', 'I', 'l' are not base58.
        assert_eq!(
            reject(|j| j.signer = "0OIl".into()),
            VoucherError::BadBase58
        );
        assert_eq!(
            reject(|j| j.voucher.channel_id = "Ed25519SigVerify11111111111111111111111111l".into()),
            VoucherError::BadBase58
        );
        // 31 and 33 bytes.
        assert_eq!(
            reject(|j| j.signer = "1111111111111111111111111111111".into()),
            VoucherError::BadKeyLength
        );
        assert_eq!(
            reject(|j| j.signer = "111111111111111111111111111111111".into()),
            VoucherError::BadKeyLength
        );
        assert_eq!(
            reject(
                |j| j.voucher.channel_id = "2K3n5t4wSaF5mj27Tw9vStXWLWyRjjiH5Cp3CFLpKVCr1c".into()
            ),
            VoucherError::BadKeyLength
        );
        // A 32-byte value where 64 bytes are required, and vice versa.
        assert_eq!(
            reject(|j| j.signature = ONES_32.into()),
            VoucherError::BadKeyLength
        );
        assert_eq!(
            reject(|j| j.signer = TWOS_64.into()),
            VoucherError::BadKeyLength
        );
        assert_eq!(
            reject(|j| j.signer = String::new()),
            VoucherError::BadKeyLength
        );
        // Very long input is refused without decoding.
        assert_eq!(
            reject(|j| j.signature = "z".repeat(10_000)),
            VoucherError::BadKeyLength
        );
    }

    #[test]
    fn rejects_other_signature_types() {
        for t in ["", "Ed25519", "secp256k1", "ed25519 "] {
            assert_eq!(
                reject(|j| j.signature_type = t.into()),
                VoucherError::UnsupportedSignatureType
            );
        }
    }

    #[test]
    fn accepts_unknown_fields_and_rejects_missing_ones() {
        let text = serde_json::to_string(&fixed()).unwrap();
        let extra = text
            .replacen('{', r#"{"extra":1,"#, 1)
            .replace(r#""voucher":{"#, r#""voucher":{"nonce":"x","#);
        let back: SignedVoucher = serde_json::from_str(&extra).unwrap();
        assert_eq!(back, fixed());
        let missing = text.replace(r#","signatureType":"ed25519""#, "");
        assert!(serde_json::from_str::<SignedVoucher>(&missing).is_err());
        let wrong = text.replace(r#""ed25519""#, r#""ed448""#);
        let err = serde_json::from_str::<SignedVoucher>(&wrong).unwrap_err();
        assert!(err.to_string().contains("unsupported signature type"));
    }

    /// The length guard refuses only text too long to be a key: text of
    /// exactly the bound (46 characters for 32 bytes, 90 for 64) still
    /// reaches the decoder, which names a bad character; one more character
    /// is refused by its length alone.
    #[test]
    fn the_base58_length_bound_is_exact() {
        assert_eq!((max_base58_len(32), max_base58_len(64)), (46, 90));
        for (n, set) in [
            (
                46,
                (|j, s| j.signer = s) as fn(&mut SignedVoucherJson, String),
            ),
            (46, |j, s| j.voucher.channel_id = s),
            (90, |j, s| j.signature = s),
        ] {
            let at_bound = alloc::format!("0{}", "1".repeat(n - 1));
            assert_eq!(
                reject(|j| set(j, at_bound)),
                VoucherError::BadBase58,
                "{n} characters"
            );
            let over = alloc::format!("0{}", "1".repeat(n));
            assert_eq!(
                reject(|j| set(j, over)),
                VoucherError::BadKeyLength,
                "{} characters",
                n + 1
            );
        }
    }

    /// The error names the field at fault, then what is wrong with it.
    #[test]
    fn a_field_error_displays_its_path_and_problem() {
        let mut j = fixed_json();
        j.voucher.cumulative_amount = "01".into();
        let e = j.to_signed().unwrap_err();
        assert_eq!(
            e,
            FieldError {
                field: "voucher.cumulativeAmount",
                error: VoucherError::BadAmount
            }
        );
        assert_eq!(
            e.to_string(),
            alloc::format!("voucher.cumulativeAmount: {}", VoucherError::BadAmount)
        );
        assert!(e.to_string().len() > "voucher.cumulativeAmount: ".len());
    }
}
