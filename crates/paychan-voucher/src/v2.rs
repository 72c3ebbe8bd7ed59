//! The v2 batch voucher (PROTOCOL §2): one signature, many channels of one signer.

use alloc::vec::Vec;

use crate::error::VoucherError;

/// Magic of a v2 voucher: `'V'`, version 2.
pub const MAGIC_V2: [u8; 2] = [0x56, 0x02];
/// Length of the fixed v2 header: magic (2) + count (1) + `expires_at` (8) +
/// `channels_hash` (32).
pub const V2_HEADER_LEN: usize = 43;
/// Maximum number of channels in one v2 voucher.
pub const V2_MAX_CHANNELS: usize = 64;
/// Domain-separation prefix of [`channels_hash`].
pub const CHANNELS_HASH_DOMAIN: &[u8] = b"paychan-v2-channels";

/// Length of an encoded v2 voucher with `count` channels: `V2_HEADER_LEN + 8 * count`.
///
/// Saturates at `usize::MAX` for absurd counts (no valid voucher has more than
/// [`V2_MAX_CHANNELS`]).
#[must_use]
pub const fn v2_len(count: usize) -> usize {
    V2_HEADER_LEN.saturating_add(count.saturating_mul(8))
}

/// Borrowed view of a v2 batch voucher (zero-copy decode).
///
/// Layout: `magic 0x56 0x02 (2) || count u8 (1) || expires_at i64 LE (8) ||
/// channels_hash (32) || count × cumulative u64 LE`. The cumulative amounts are
/// *targets*: entry `i` belongs to the `i`-th channel id (strictly increasing by
/// raw bytes) that was hashed into `channels_hash`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoucherV2Ref<'a> {
    bytes: &'a [u8],
    expires_at: i64,
    channels_hash: &'a [u8; 32],
    /// `8 * count` bytes of little-endian u64s.
    cumulatives: &'a [u8],
}

impl<'a> VoucherV2Ref<'a> {
    /// Decodes a v2 voucher without copying. Requires the v2 magic, a count in
    /// `1..=V2_MAX_CHANNELS` and a length of exactly `v2_len(count)`.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, VoucherError> {
        let short = VoucherError::WrongLength {
            expected: V2_HEADER_LEN,
            actual: bytes.len(),
        };
        let (magic, rest) = bytes.split_first_chunk::<2>().ok_or(short)?;
        let (count, rest) = rest.split_first_chunk::<1>().ok_or(short)?;
        let (expires_at, rest) = rest.split_first_chunk::<8>().ok_or(short)?;
        let (channels_hash, tail) = rest.split_first_chunk::<32>().ok_or(short)?;
        if *magic != MAGIC_V2 {
            return Err(VoucherError::BadMagic);
        }
        let count = usize::from(count[0]);
        if count == 0 || count > V2_MAX_CHANNELS {
            return Err(VoucherError::BadCount);
        }
        let expected = v2_len(count);
        if bytes.len() != expected {
            return Err(VoucherError::WrongLength {
                expected,
                actual: bytes.len(),
            });
        }
        let Some(tail_len) = count.checked_mul(8) else {
            return Err(VoucherError::BadCount);
        };
        if tail.len() != tail_len {
            // Unreachable after the length check; kept as a typed error, not a panic.
            return Err(VoucherError::WrongLength {
                expected,
                actual: bytes.len(),
            });
        }
        Ok(Self {
            bytes,
            expires_at: i64::from_le_bytes(*expires_at),
            channels_hash,
            cumulatives: tail,
        })
    }

    /// The whole encoded voucher (the signed message).
    #[must_use]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Number of channels (1..=64).
    #[must_use]
    pub fn count(&self) -> usize {
        self.cumulatives.len() / 8
    }

    /// Unix seconds after which the voucher is void; 0 = never.
    #[must_use]
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// The [`channels_hash`] the voucher commits to.
    #[must_use]
    pub fn channels_hash(&self) -> &'a [u8; 32] {
        self.channels_hash
    }

    /// Cumulative target of the `i`-th channel, `None` when `i >= count()`.
    #[must_use]
    pub fn cumulative(&self, i: usize) -> Option<u64> {
        let start = i.checked_mul(8)?;
        self.cumulatives
            .get(start..)?
            .first_chunk::<8>()
            .map(|b| u64::from_le_bytes(*b))
    }

    /// All cumulative targets, in channel order.
    pub fn cumulatives(&self) -> impl Iterator<Item = u64> + 'a + use<'a> {
        let cumulatives: &'a [u8] = self.cumulatives;
        cumulatives
            .chunks_exact(8)
            .filter_map(<[u8]>::first_chunk::<8>)
            .map(|b| u64::from_le_bytes(*b))
    }

    /// `true` when the voucher has an expiry (`expires_at != 0`) and `now_unix` is
    /// past it.
    #[must_use]
    pub fn is_expired(&self, now_unix: i64) -> bool {
        self.expires_at != 0 && now_unix > self.expires_at
    }
}

/// Encodes a v2 voucher (the message to sign). `cumulatives` must hold
/// 1..=[`V2_MAX_CHANNELS`] entries ([`VoucherError::BadCount`] when empty,
/// [`VoucherError::TooManyChannels`] when longer).
pub fn encode_v2(
    expires_at: i64,
    channels_hash: &[u8; 32],
    cumulatives: &[u64],
) -> Result<Vec<u8>, VoucherError> {
    let count = check_count(cumulatives.len())?;
    let mut out = Vec::with_capacity(v2_len(cumulatives.len()));
    out.extend_from_slice(&MAGIC_V2);
    out.push(count);
    out.extend_from_slice(&expires_at.to_le_bytes());
    out.extend_from_slice(channels_hash);
    for c in cumulatives {
        out.extend_from_slice(&c.to_le_bytes());
    }
    Ok(out)
}

/// `SHA-256(CHANNELS_HASH_DOMAIN || program_id || count as u8 || id_0 || … || id_{count-1})`.
///
/// The ids must be strictly increasing by raw bytes (so no duplicates) and number
/// 1..=[`V2_MAX_CHANNELS`]. Uses the `sol_sha256` syscall on chain and allocates
/// nothing.
pub fn channels_hash(
    program_id: &[u8; 32],
    channel_ids: &[&[u8; 32]],
) -> Result<[u8; 32], VoucherError> {
    let count = check_count(channel_ids.len())?;
    if channel_ids.windows(2).any(|w| match w {
        [a, b] => a >= b,
        _ => false,
    }) {
        return Err(VoucherError::ChannelsNotIncreasing);
    }
    let count_bytes = [count];
    let mut parts: [&[u8]; 3 + V2_MAX_CHANNELS] = [&[]; 3 + V2_MAX_CHANNELS];
    parts[0] = CHANNELS_HASH_DOMAIN;
    parts[1] = program_id;
    parts[2] = &count_bytes;
    for (slot, id) in parts.iter_mut().skip(3).zip(channel_ids) {
        *slot = id.as_slice();
    }
    let used = parts
        .get(..channel_ids.len().saturating_add(3))
        .ok_or(VoucherError::TooManyChannels)?;
    Ok(solana_sha256_hasher::hashv(used).to_bytes())
}

fn check_count(len: usize) -> Result<u8, VoucherError> {
    if len == 0 {
        return Err(VoucherError::BadCount);
    }
    if len > V2_MAX_CHANNELS {
        return Err(VoucherError::TooManyChannels);
    }
    u8::try_from(len).map_err(|_| VoucherError::TooManyChannels)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    extern crate std;

    use super::*;
    use alloc::vec;
    use sha2::{Digest, Sha256};

    #[test]
    fn v2_len_values() {
        assert_eq!(v2_len(1), 51);
        assert_eq!(v2_len(64), 43 + 512);
        assert_eq!(v2_len(usize::MAX), usize::MAX);
    }

    #[test]
    fn encode_decode_golden() {
        let hash = [0x11u8; 32];
        let bytes = encode_v2(0x0102_0304_0506_0708, &hash, &[5, u64::MAX]).unwrap();
        let mut expected = vec![0x56, 0x02, 2, 8, 7, 6, 5, 4, 3, 2, 1];
        expected.extend_from_slice(&[0x11; 32]);
        expected.extend_from_slice(&[5, 0, 0, 0, 0, 0, 0, 0]);
        expected.extend_from_slice(&[0xFF; 8]);
        assert_eq!(bytes, expected);
        assert_eq!(bytes.len(), v2_len(2));

        let v = VoucherV2Ref::decode(&bytes).unwrap();
        assert_eq!(v.count(), 2);
        assert_eq!(v.expires_at(), 0x0102_0304_0506_0708);
        assert_eq!(v.channels_hash(), &[0x11; 32]);
        assert_eq!(v.cumulative(0), Some(5));
        assert_eq!(v.cumulative(1), Some(u64::MAX));
        assert_eq!(v.cumulative(2), None);
        assert_eq!(v.cumulatives().collect::<Vec<_>>(), vec![5, u64::MAX]);
        assert_eq!(v.as_bytes(), bytes.as_slice());
        assert!(!v.is_expired(0x0102_0304_0506_0708));
        assert!(v.is_expired(0x0102_0304_0506_0709));
    }

    #[test]
    fn encode_rejects_bad_counts() {
        assert_eq!(encode_v2(0, &[0; 32], &[]), Err(VoucherError::BadCount));
        assert_eq!(
            encode_v2(0, &[0; 32], &[1; 65]),
            Err(VoucherError::TooManyChannels)
        );
        assert_eq!(encode_v2(0, &[0; 32], &[1; 64]).map(|b| b.len()), Ok(555));
    }

    #[test]
    fn decode_rejects_count_zero_and_65() {
        let mut bytes = encode_v2(0, &[0; 32], &[1]).unwrap();
        bytes[2] = 0;
        bytes.truncate(V2_HEADER_LEN);
        assert_eq!(VoucherV2Ref::decode(&bytes), Err(VoucherError::BadCount));

        let mut bytes = encode_v2(0, &[0; 32], &[1; 64]).unwrap();
        bytes[2] = 65;
        bytes.extend_from_slice(&[0; 8]);
        assert_eq!(VoucherV2Ref::decode(&bytes), Err(VoucherError::BadCount));
    }

    #[test]
    fn decode_rejects_count_length_mismatch_and_magic() {
        let bytes = encode_v2(7, &[3; 32], &[1, 2, 3]).unwrap();
        assert!(VoucherV2Ref::decode(&bytes).is_ok());
        // Count says 2, length says 3.
        let mut b = bytes.clone();
        b[2] = 2;
        assert_eq!(
            VoucherV2Ref::decode(&b),
            Err(VoucherError::WrongLength {
                expected: 59,
                actual: 67
            })
        );
        // Truncated / extended.
        assert!(matches!(
            VoucherV2Ref::decode(&bytes[..bytes.len() - 1]),
            Err(VoucherError::WrongLength { .. })
        ));
        let mut b = bytes.clone();
        b.push(0);
        assert!(matches!(
            VoucherV2Ref::decode(&b),
            Err(VoucherError::WrongLength { .. })
        ));
        // Shorter than the header.
        assert_eq!(
            VoucherV2Ref::decode(&bytes[..10]),
            Err(VoucherError::WrongLength {
                expected: 43,
                actual: 10
            })
        );
        // v1 magic.
        let mut b = bytes.clone();
        b[1] = 0x01;
        assert_eq!(VoucherV2Ref::decode(&b), Err(VoucherError::BadMagic));
    }

    fn reference_hash(program_id: &[u8; 32], ids: &[[u8; 32]]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"paychan-v2-channels");
        h.update(program_id);
        h.update([u8::try_from(ids.len()).unwrap()]);
        for id in ids {
            h.update(id);
        }
        h.finalize().into()
    }

    #[test]
    fn channels_hash_matches_independent_sha256() {
        let program = [9u8; 32];
        let ids = [[1u8; 32], [2u8; 32], [0xFE; 32]];
        let refs: Vec<&[u8; 32]> = ids.iter().collect();
        assert_eq!(
            channels_hash(&program, &refs),
            Ok(reference_hash(&program, &ids))
        );
        // Fixed golden value of the single-channel case, to pin the domain string.
        let one = channels_hash(&[0; 32], &[&[0; 32]]);
        let mut manual = std::vec::Vec::new();
        manual.extend_from_slice(b"paychan-v2-channels");
        manual.extend_from_slice(&[0; 32]);
        manual.push(1);
        manual.extend_from_slice(&[0; 32]);
        let want: [u8; 32] = Sha256::digest(&manual).into();
        assert_eq!(one, Ok(want));

        let max: Vec<[u8; 32]> = (0..64u8)
            .map(|i| {
                let mut id = [0u8; 32];
                id[0] = i;
                id
            })
            .collect();
        let max_refs: Vec<&[u8; 32]> = max.iter().collect();
        assert_eq!(
            channels_hash(&program, &max_refs),
            Ok(reference_hash(&program, &max))
        );
    }

    #[test]
    fn channels_hash_rejects_non_increasing_and_equal() {
        let p = [0u8; 32];
        let a = [1u8; 32];
        let mut b = [1u8; 32];
        b[31] = 2; // a < b by the last byte only
        assert!(channels_hash(&p, &[&a, &b]).is_ok());
        assert_eq!(
            channels_hash(&p, &[&b, &a]),
            Err(VoucherError::ChannelsNotIncreasing)
        );
        assert_eq!(
            channels_hash(&p, &[&a, &a]),
            Err(VoucherError::ChannelsNotIncreasing)
        );
        assert_eq!(
            channels_hash(&p, &[&a, &b, &b]),
            Err(VoucherError::ChannelsNotIncreasing)
        );
        assert_eq!(channels_hash(&p, &[]), Err(VoucherError::BadCount));
        let many = [[0u8; 32]; 65];
        let refs: Vec<&[u8; 32]> = many.iter().collect();
        assert_eq!(channels_hash(&p, &refs), Err(VoucherError::TooManyChannels));
    }

    #[test]
    fn channels_hash_depends_on_program_and_set() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        let c = [3u8; 32];
        let h_ab = channels_hash(&[0; 32], &[&a, &b]);
        let h_ac = channels_hash(&[0; 32], &[&a, &c]);
        let h_ab_other = channels_hash(&[1; 32], &[&a, &b]);
        let h_a = channels_hash(&[0; 32], &[&a]);
        assert!(h_ab.is_ok());
        assert_ne!(h_ab, h_ac);
        assert_ne!(h_ab, h_ab_other);
        assert_ne!(h_ab, h_a);
    }

    #[test]
    fn decode_accepts_the_largest_count() {
        let cumulatives: Vec<u64> = (1..=64).collect();
        let bytes = encode_v2(9, &[7; 32], &cumulatives).unwrap();
        assert_eq!(bytes.len(), v2_len(64));
        let v = VoucherV2Ref::decode(&bytes).unwrap();
        assert_eq!(v.count(), V2_MAX_CHANNELS);
        assert_eq!((v.cumulative(63), v.cumulative(64)), (Some(64), None));
        assert_eq!(v.cumulatives().collect::<Vec<_>>(), cumulatives);
    }
}
