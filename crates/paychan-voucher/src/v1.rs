//! The v1 single-channel voucher (PROTOCOL §2).

use crate::error::VoucherError;

/// Length of an encoded v1 voucher.
pub const VOUCHER_V1_LEN: usize = 50;
/// Magic of a v1 voucher: `'V'`, version 1.
pub const MAGIC_V1: [u8; 2] = [0x56, 0x01];

const CHANNEL_ID_OFFSET: usize = 2;
const AMOUNT_OFFSET: usize = 34;
const EXPIRES_OFFSET: usize = 42;

/// A v1 voucher: "the payer owes `cumulative_amount` in total on `channel_id`".
///
/// Layout (50 bytes, little-endian): magic `0x56 0x01` at 0, channel id (32) at 2,
/// cumulative amount `u64` at 34, `expires_at` `i64` Unix seconds at 42
/// (0 = no expiry). The encoded bytes are the message that is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VoucherV1 {
    /// The channel PDA address.
    pub channel_id: [u8; 32],
    /// Total amount owed on the channel so far (base units).
    pub cumulative_amount: u64,
    /// Unix seconds after which the voucher is void; 0 = never.
    pub expires_at: i64,
}

impl VoucherV1 {
    /// Encodes the voucher into its 50-byte signed form.
    #[must_use]
    pub fn encode(&self) -> [u8; VOUCHER_V1_LEN] {
        let mut out = [0u8; VOUCHER_V1_LEN];
        let (magic, rest) = out.split_at_mut(CHANNEL_ID_OFFSET);
        magic.copy_from_slice(&MAGIC_V1);
        let (id, rest) = rest.split_at_mut(AMOUNT_OFFSET - CHANNEL_ID_OFFSET);
        id.copy_from_slice(&self.channel_id);
        let (amount, expires) = rest.split_at_mut(EXPIRES_OFFSET - AMOUNT_OFFSET);
        amount.copy_from_slice(&self.cumulative_amount.to_le_bytes());
        expires.copy_from_slice(&self.expires_at.to_le_bytes());
        out
    }

    /// Decodes a v1 voucher. The input must be exactly [`VOUCHER_V1_LEN`] bytes and
    /// start with [`MAGIC_V1`].
    pub fn decode(bytes: &[u8]) -> Result<Self, VoucherError> {
        let arr: &[u8; VOUCHER_V1_LEN] =
            bytes.try_into().map_err(|_| VoucherError::WrongLength {
                expected: VOUCHER_V1_LEN,
                actual: bytes.len(),
            })?;
        let (magic, rest) = arr.split_first_chunk::<2>().ok_or(VoucherError::BadMagic)?;
        if *magic != MAGIC_V1 {
            return Err(VoucherError::BadMagic);
        }
        let short = || VoucherError::WrongLength {
            expected: VOUCHER_V1_LEN,
            actual: bytes.len(),
        };
        let (channel_id, rest) = rest.split_first_chunk::<32>().ok_or_else(short)?;
        let (amount, rest) = rest.split_first_chunk::<8>().ok_or_else(short)?;
        let expires: &[u8; 8] = rest.try_into().map_err(|_| short())?;
        Ok(Self {
            channel_id: *channel_id,
            cumulative_amount: u64::from_le_bytes(*amount),
            expires_at: i64::from_le_bytes(*expires),
        })
    }

    /// `true` when the voucher has an expiry (`expires_at != 0`) and `now_unix` is
    /// past it. A voucher is still valid *at* its `expires_at` second.
    #[must_use]
    pub fn is_expired(&self, now_unix: i64) -> bool {
        self.expires_at != 0 && now_unix > self.expires_at
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::v2::MAGIC_V2;

    fn sample() -> VoucherV1 {
        let mut channel_id = [0u8; 32];
        for (i, b) in channel_id.iter_mut().enumerate() {
            *b = u8::try_from(i).unwrap().wrapping_add(0xA0);
        }
        VoucherV1 {
            channel_id,
            cumulative_amount: 0x0102_0304_0506_0708,
            expires_at: -2, // 0xffff_ffff_ffff_fffe
        }
    }

    #[test]
    fn encode_matches_golden_bytes() {
        let expected: [u8; 50] = [
            0x56, 0x01, // magic at 0
            0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD,
            0xAE, 0xAF, 0xB0, 0xB1, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xBB,
            0xBC, 0xBD, 0xBE, 0xBF, // channel id at 2
            0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // amount at 34, LE
            0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, // expires_at at 42, LE
        ];
        assert_eq!(sample().encode(), expected);
        assert_eq!(VoucherV1::decode(&expected), Ok(sample()));
    }

    #[test]
    fn decode_rejects_wrong_lengths() {
        let bytes = sample().encode();
        assert_eq!(
            VoucherV1::decode(&bytes[..49]),
            Err(VoucherError::WrongLength {
                expected: 50,
                actual: 49
            })
        );
        let mut long = [0u8; 51];
        long[..50].copy_from_slice(&bytes);
        assert_eq!(
            VoucherV1::decode(&long),
            Err(VoucherError::WrongLength {
                expected: 50,
                actual: 51
            })
        );
        assert_eq!(
            VoucherV1::decode(&[]),
            Err(VoucherError::WrongLength {
                expected: 50,
                actual: 0
            })
        );
    }

    #[test]
    fn decode_rejects_wrong_magic_and_v2_magic() {
        let mut bytes = sample().encode();
        bytes[0] = 0x57;
        assert_eq!(VoucherV1::decode(&bytes), Err(VoucherError::BadMagic));
        let mut bytes = sample().encode();
        bytes[..2].copy_from_slice(&MAGIC_V2);
        assert_eq!(VoucherV1::decode(&bytes), Err(VoucherError::BadMagic));
    }

    #[test]
    fn expiry_semantics() {
        let mut v = sample();
        v.expires_at = 0;
        assert!(!v.is_expired(i64::MAX));
        v.expires_at = 1_000;
        assert!(!v.is_expired(999));
        assert!(!v.is_expired(1_000));
        assert!(v.is_expired(1_001));
    }
}
