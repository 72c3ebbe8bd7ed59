//! The Ed25519 precompile instruction (PROTOCOL §3): a canonical builder and a
//! strict parser.
//!
//! Canonical layout for `n` entries (1..=8):
//!
//! ```text
//! [n, 0]                                   header (2 bytes)
//! n × 14-byte offset records               7 × u16 LE each:
//!     signature_offset, signature_instruction_index,
//!     public_key_offset, public_key_instruction_index,
//!     message_data_offset, message_data_size, message_instruction_index
//! for each entry in order: pubkey (32) || signature (64) || message
//! ```
//!
//! Every `*_instruction_index` is `u16::MAX` ("this instruction"). For one 50-byte
//! message: records at 2, pubkey at 16, signature at 48, message at 112, 162 bytes.

use alloc::vec::Vec;

use crate::error::Ed25519LayoutError;

/// Program id of the Ed25519 precompile, `Ed25519SigVerify111111111111111111111111111`.
pub const ED25519_PROGRAM_ID: [u8; 32] = [
    0x03, 0x7d, 0x46, 0xd6, 0x7c, 0x93, 0xfb, 0xbe, 0x12, 0xf9, 0x42, 0x8f, 0x83, 0x8d, 0x40, 0xff,
    0x05, 0x70, 0x74, 0x49, 0x27, 0xf4, 0x8a, 0x64, 0xfc, 0xca, 0x70, 0x44, 0x80, 0x00, 0x00, 0x00,
];
/// Most precompile signatures a leader accepts in one transaction.
pub const MAX_PRECOMPILE_SIGNATURES: usize = 8;
/// Length of the precompile header (`num_signatures`, padding).
pub const ED25519_HEADER_LEN: usize = 2;
/// Length of one offsets record (7 × u16).
pub const ED25519_OFFSETS_LEN: usize = 14;
/// Length of an Ed25519 public key.
pub const PUBKEY_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

const THIS_INSTRUCTION: u16 = u16::MAX;
const ENTRY_FIXED_LEN: usize = PUBKEY_LEN + SIGNATURE_LEN;

/// One signature record of the Ed25519 precompile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ed25519Entry<'a> {
    /// The signer's public key.
    pub pubkey: &'a [u8; 32],
    /// The signature over `message`.
    pub signature: &'a [u8; 64],
    /// The signed message.
    pub message: &'a [u8],
}

/// The records of a precompile instruction accepted by
/// [`parse_ed25519_instruction_data`], in record order. Holds at most
/// [`MAX_PRECOMPILE_SIGNATURES`] borrowed entries; allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ed25519Records<'a> {
    entries: [Option<Ed25519Entry<'a>>; MAX_PRECOMPILE_SIGNATURES],
    len: usize,
}

impl<'a> Ed25519Records<'a> {
    /// Number of records (equal to the `expected_count` that was parsed against).
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false` for a parsed instruction (zero signatures are rejected).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `i`-th record, `None` when `i >= len()`.
    #[must_use]
    pub fn get(&self, i: usize) -> Option<Ed25519Entry<'a>> {
        if i >= self.len {
            return None;
        }
        self.entries.get(i).copied().flatten()
    }

    /// The records in order.
    pub fn iter(&self) -> impl Iterator<Item = Ed25519Entry<'a>> + 'a + use<'a> {
        let entries = self.entries;
        entries.into_iter().take(self.len).flatten()
    }
}

/// Exact length of the canonical instruction data for `count` messages of
/// `message_len` bytes each: `2 + 14·count + count·(96 + message_len)`.
/// `None` when `count` is outside `1..=MAX_PRECOMPILE_SIGNATURES` or on overflow.
#[must_use]
pub const fn ed25519_instruction_len(count: usize, message_len: usize) -> Option<usize> {
    if count == 0 || count > MAX_PRECOMPILE_SIGNATURES {
        return None;
    }
    let Some(per_entry) = ENTRY_FIXED_LEN.checked_add(message_len) else {
        return None;
    };
    let Some(per_entry) = per_entry.checked_add(ED25519_OFFSETS_LEN) else {
        return None;
    };
    let Some(body) = per_entry.checked_mul(count) else {
        return None;
    };
    ED25519_HEADER_LEN.checked_add(body)
}

/// Canonical (pubkey, signature, message) offsets of an entry whose data starts
/// at `start`.
fn entry_offsets(start: usize) -> Option<(u16, u16, u16)> {
    let pubkey = u16::try_from(start).ok()?;
    let signature = u16::try_from(start.checked_add(PUBKEY_LEN)?).ok()?;
    let message = u16::try_from(start.checked_add(ENTRY_FIXED_LEN)?).ok()?;
    Some((pubkey, signature, message))
}

fn records_end(count: usize) -> Option<usize> {
    ED25519_OFFSETS_LEN
        .checked_mul(count)?
        .checked_add(ED25519_HEADER_LEN)
}

/// Builds precompile instruction data in the canonical layout: header `[n, 0]`,
/// then `n` × 14-byte offset records, then for each entry in order
/// `pubkey (32) || signature (64) || message`. Every `*_instruction_index` is
/// `u16::MAX`.
///
/// Entries may have messages of different lengths. Requires 1..=8 entries
/// ([`Ed25519LayoutError::NoSignatures`], [`Ed25519LayoutError::TooManySignatures`])
/// and every offset and message size to fit in a `u16`
/// ([`Ed25519LayoutError::OffsetOverflow`]).
pub fn ed25519_instruction_data(
    entries: &[Ed25519Entry<'_>],
) -> Result<Vec<u8>, Ed25519LayoutError> {
    let n = entries.len();
    if n == 0 {
        return Err(Ed25519LayoutError::NoSignatures);
    }
    if n > MAX_PRECOMPILE_SIGNATURES {
        return Err(Ed25519LayoutError::TooManySignatures { count: n });
    }
    let num = u8::try_from(n).map_err(|_| Ed25519LayoutError::TooManySignatures { count: n })?;
    let data_start = records_end(n).ok_or(Ed25519LayoutError::OffsetOverflow)?;
    let mut total = data_start;
    for e in entries {
        total = total
            .checked_add(ENTRY_FIXED_LEN)
            .and_then(|t| t.checked_add(e.message.len()))
            .ok_or(Ed25519LayoutError::OffsetOverflow)?;
    }

    let mut out = Vec::with_capacity(total);
    out.push(num);
    out.push(0);
    let mut cursor = data_start;
    for e in entries {
        let (pubkey, signature, message) =
            entry_offsets(cursor).ok_or(Ed25519LayoutError::OffsetOverflow)?;
        let size =
            u16::try_from(e.message.len()).map_err(|_| Ed25519LayoutError::OffsetOverflow)?;
        for field in [
            signature,
            THIS_INSTRUCTION,
            pubkey,
            THIS_INSTRUCTION,
            message,
            size,
            THIS_INSTRUCTION,
        ] {
            out.extend_from_slice(&field.to_le_bytes());
        }
        cursor = cursor
            .checked_add(ENTRY_FIXED_LEN)
            .and_then(|c| c.checked_add(e.message.len()))
            .ok_or(Ed25519LayoutError::OffsetOverflow)?;
    }
    for e in entries {
        out.extend_from_slice(e.pubkey);
        out.extend_from_slice(e.signature);
        out.extend_from_slice(e.message);
    }
    Ok(out)
}

/// Strict parser of precompile instruction data: accepts exactly the canonical
/// layout produced by [`ed25519_instruction_data`] with `expected_count` entries
/// whose messages are all `message_len` bytes long, and nothing else.
///
/// Rejects (each with its own [`Ed25519LayoutError`] variant): `expected_count`
/// outside 1..=8 or a `message_len` whose layout does not fit `u16` offsets;
/// `num_signatures` of 0, above 8, or different from `expected_count`; a non-zero
/// padding byte; any length other than exactly `2 + 14n + n·(96 + message_len)`;
/// any instruction index other than `u16::MAX`; a `message_data_size` other than
/// `message_len`; any offset other than the canonical one. Public key, signature
/// and message are then read through the record's own offsets.
pub fn parse_ed25519_instruction_data(
    data: &[u8],
    expected_count: usize,
    message_len: usize,
) -> Result<Ed25519Records<'_>, Ed25519LayoutError> {
    if expected_count == 0 || expected_count > MAX_PRECOMPILE_SIGNATURES {
        return Err(Ed25519LayoutError::InvalidExpectedCount { expected_count });
    }
    let bad_len = Ed25519LayoutError::InvalidMessageLen { message_len };
    let expected_size = u16::try_from(message_len).map_err(|_| bad_len)?;
    let total = ed25519_instruction_len(expected_count, message_len).ok_or(bad_len)?;
    let data_start = records_end(expected_count).ok_or(bad_len)?;
    let stride = ENTRY_FIXED_LEN.checked_add(message_len).ok_or(bad_len)?;
    // The last entry's message offset is the largest offset; it must fit a u16.
    let last_start = stride
        .checked_mul(expected_count.saturating_sub(1))
        .and_then(|s| s.checked_add(data_start))
        .ok_or(bad_len)?;
    entry_offsets(last_start).ok_or(bad_len)?;

    let wrong_len = Ed25519LayoutError::WrongLength {
        expected: total,
        actual: data.len(),
    };
    let ([num, padding], rest) = data.split_first_chunk::<2>().ok_or(wrong_len)?;
    let num = usize::from(*num);
    if num == 0 {
        return Err(Ed25519LayoutError::NoSignatures);
    }
    if num > MAX_PRECOMPILE_SIGNATURES {
        return Err(Ed25519LayoutError::TooManySignatures { count: num });
    }
    if num != expected_count {
        return Err(Ed25519LayoutError::CountMismatch {
            expected: expected_count,
            actual: num,
        });
    }
    if *padding != 0 {
        return Err(Ed25519LayoutError::NonZeroPadding);
    }
    if data.len() != total {
        return Err(wrong_len);
    }

    let mut entries = [None; MAX_PRECOMPILE_SIGNATURES];
    let mut start = data_start;
    let mut parsed = 0usize;
    let records = rest.chunks_exact(ED25519_OFFSETS_LEN).take(num);
    for (record, (raw, slot)) in records.zip(entries.iter_mut()).enumerate() {
        let [
            s0,
            s1,
            si0,
            si1,
            p0,
            p1,
            pi0,
            pi1,
            m0,
            m1,
            ms0,
            ms1,
            mi0,
            mi1,
        ] = *raw.first_chunk::<ED25519_OFFSETS_LEN>().ok_or(wrong_len)?;
        let sig_offset = u16::from_le_bytes([s0, s1]);
        let sig_index = u16::from_le_bytes([si0, si1]);
        let pk_offset = u16::from_le_bytes([p0, p1]);
        let pk_index = u16::from_le_bytes([pi0, pi1]);
        let msg_offset = u16::from_le_bytes([m0, m1]);
        let msg_size = u16::from_le_bytes([ms0, ms1]);
        let msg_index = u16::from_le_bytes([mi0, mi1]);

        if sig_index != THIS_INSTRUCTION
            || pk_index != THIS_INSTRUCTION
            || msg_index != THIS_INSTRUCTION
        {
            return Err(Ed25519LayoutError::ForeignInstructionIndex { record });
        }
        if msg_size != expected_size {
            return Err(Ed25519LayoutError::MessageSizeMismatch {
                record,
                expected: message_len,
                actual: usize::from(msg_size),
            });
        }
        let canonical = entry_offsets(start).ok_or(bad_len)?;
        if (pk_offset, sig_offset, msg_offset) != canonical {
            return Err(Ed25519LayoutError::NonCanonicalOffset { record });
        }

        // Read through the record's own (now known canonical) offsets.
        let out_of_range = Ed25519LayoutError::OffsetOutOfRange { record };
        let pubkey = data
            .get(usize::from(pk_offset)..)
            .and_then(<[u8]>::first_chunk::<PUBKEY_LEN>)
            .ok_or(out_of_range)?;
        let signature = data
            .get(usize::from(sig_offset)..)
            .and_then(<[u8]>::first_chunk::<SIGNATURE_LEN>)
            .ok_or(out_of_range)?;
        let msg_start = usize::from(msg_offset);
        let message = msg_start
            .checked_add(usize::from(msg_size))
            .and_then(|end| data.get(msg_start..end))
            .ok_or(out_of_range)?;
        *slot = Some(Ed25519Entry {
            pubkey,
            signature,
            message,
        });
        start = start.checked_add(stride).ok_or(bad_len)?;
        parsed = parsed.saturating_add(1);
    }
    if parsed != num {
        // Unreachable after the exact length check; a typed error, not a panic.
        return Err(wrong_len);
    }
    Ok(Ed25519Records { entries, len: num })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    extern crate std;

    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

    fn u16_at(data: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([data[at], data[at + 1]])
    }

    #[test]
    fn program_id_matches_base58() {
        let decoded = bs58::decode("Ed25519SigVerify111111111111111111111111111")
            .into_vec()
            .unwrap();
        assert_eq!(decoded.as_slice(), ED25519_PROGRAM_ID.as_slice());
        assert_eq!(
            bs58::encode(ED25519_PROGRAM_ID).into_string(),
            "Ed25519SigVerify111111111111111111111111111"
        );
    }

    #[test]
    fn single_entry_canonical_offsets() {
        let pk = [1u8; 32];
        let sig = [2u8; 64];
        let msg = [3u8; 50];
        let data = ed25519_instruction_data(&[Ed25519Entry {
            pubkey: &pk,
            signature: &sig,
            message: &msg,
        }])
        .unwrap();
        assert_eq!(data.len(), 162);
        assert_eq!(ed25519_instruction_len(1, 50), Some(162));
        assert_eq!(&data[..2], &[1, 0]);
        assert_eq!(u16_at(&data, 2), 48); // signature_offset
        assert_eq!(u16_at(&data, 4), u16::MAX);
        assert_eq!(u16_at(&data, 6), 16); // public_key_offset
        assert_eq!(u16_at(&data, 8), u16::MAX);
        assert_eq!(u16_at(&data, 10), 112); // message_data_offset
        assert_eq!(u16_at(&data, 12), 50); // message_data_size
        assert_eq!(u16_at(&data, 14), u16::MAX);
        assert_eq!(&data[16..48], &pk);
        assert_eq!(&data[48..112], &sig);
        assert_eq!(&data[112..162], &msg);

        let parsed = parse_ed25519_instruction_data(&data, 1, 50).unwrap();
        assert_eq!(parsed.len(), 1);
        assert!(!parsed.is_empty());
        let e = parsed.get(0).unwrap();
        assert_eq!((e.pubkey, e.signature, e.message), (&pk, &sig, &msg[..]));
        assert_eq!(parsed.get(1), None);
    }

    #[test]
    fn two_entry_offsets() {
        let pk = [1u8; 32];
        let sig = [2u8; 64];
        let msg = [3u8; 50];
        let e = Ed25519Entry {
            pubkey: &pk,
            signature: &sig,
            message: &msg,
        };
        let data = ed25519_instruction_data(&[e, e]).unwrap();
        // data starts at 2 + 28 = 30; entry stride 146.
        assert_eq!(data.len(), 30 + 2 * 146);
        assert_eq!(u16_at(&data, 2), 30 + 32);
        assert_eq!(u16_at(&data, 2 + 4), 30);
        assert_eq!(u16_at(&data, 2 + 8), 30 + 96);
        assert_eq!(u16_at(&data, 2 + 14), 30 + 146 + 32);
        assert_eq!(u16_at(&data, 2 + 14 + 4), 30 + 146);
        assert_eq!(u16_at(&data, 2 + 14 + 8), 30 + 146 + 96);
        assert_eq!(u16_at(&data, 2 + 14 + 10), 50);
    }

    #[test]
    fn builder_rejects_zero_and_nine_entries() {
        assert_eq!(
            ed25519_instruction_data(&[]),
            Err(Ed25519LayoutError::NoSignatures)
        );
        let pk = [0u8; 32];
        let sig = [0u8; 64];
        let e = Ed25519Entry {
            pubkey: &pk,
            signature: &sig,
            message: &[],
        };
        assert_eq!(
            ed25519_instruction_data(&[e; 9]),
            Err(Ed25519LayoutError::TooManySignatures { count: 9 })
        );
        assert!(ed25519_instruction_data(&[e; 8]).is_ok());
    }

    #[test]
    fn builder_rejects_offsets_beyond_u16() {
        let pk = [0u8; 32];
        let sig = [0u8; 64];
        let big = vec![0u8; 65_500];
        let e = Ed25519Entry {
            pubkey: &pk,
            signature: &sig,
            message: &big,
        };
        // One entry: message offset 112, size 65 500: fits.
        assert!(ed25519_instruction_data(&[e]).is_ok());
        // Second entry's offsets are past 65 535.
        assert_eq!(
            ed25519_instruction_data(&[e, e]),
            Err(Ed25519LayoutError::OffsetOverflow)
        );
        let huge = vec![0u8; 70_000];
        let e = Ed25519Entry {
            pubkey: &pk,
            signature: &sig,
            message: &huge,
        };
        assert_eq!(
            ed25519_instruction_data(&[e]),
            Err(Ed25519LayoutError::OffsetOverflow)
        );
    }

    #[test]
    fn parser_rejects_bad_arguments() {
        let data = [0u8; 162];
        assert_eq!(
            parse_ed25519_instruction_data(&data, 0, 50),
            Err(Ed25519LayoutError::InvalidExpectedCount { expected_count: 0 })
        );
        assert_eq!(
            parse_ed25519_instruction_data(&data, 9, 50),
            Err(Ed25519LayoutError::InvalidExpectedCount { expected_count: 9 })
        );
        assert_eq!(
            parse_ed25519_instruction_data(&data, 1, 65_536),
            Err(Ed25519LayoutError::InvalidMessageLen {
                message_len: 65_536
            })
        );
        assert_eq!(
            parse_ed25519_instruction_data(&data, 2, 65_500),
            Err(Ed25519LayoutError::InvalidMessageLen {
                message_len: 65_500
            })
        );
        assert_eq!(
            parse_ed25519_instruction_data(&data, 1, usize::MAX),
            Err(Ed25519LayoutError::InvalidMessageLen {
                message_len: usize::MAX
            })
        );
    }

    fn canonical_one() -> Vec<u8> {
        let e = Ed25519Entry {
            pubkey: &[7; 32],
            signature: &[8; 64],
            message: &[9; 50],
        };
        ed25519_instruction_data(&[e]).unwrap()
    }

    #[test]
    fn parser_rejects_each_header_problem() {
        let good = canonical_one();
        assert!(parse_ed25519_instruction_data(&good, 1, 50).is_ok());

        let mut d = good.clone();
        d[0] = 0;
        assert_eq!(
            parse_ed25519_instruction_data(&d, 1, 50),
            Err(Ed25519LayoutError::NoSignatures)
        );
        d[0] = 9;
        assert_eq!(
            parse_ed25519_instruction_data(&d, 1, 50),
            Err(Ed25519LayoutError::TooManySignatures { count: 9 })
        );
        d[0] = 2;
        assert_eq!(
            parse_ed25519_instruction_data(&d, 1, 50),
            Err(Ed25519LayoutError::CountMismatch {
                expected: 1,
                actual: 2
            })
        );
        let mut d = good.clone();
        d[1] = 1;
        assert_eq!(
            parse_ed25519_instruction_data(&d, 1, 50),
            Err(Ed25519LayoutError::NonZeroPadding)
        );
        // Zero-signature instruction the runtime would accept.
        assert_eq!(
            parse_ed25519_instruction_data(&[0, 0], 1, 50),
            Err(Ed25519LayoutError::NoSignatures)
        );
        assert_eq!(
            parse_ed25519_instruction_data(&[1], 1, 50),
            Err(Ed25519LayoutError::WrongLength {
                expected: 162,
                actual: 1
            })
        );
        // Rider byte / truncation.
        let mut d = good.clone();
        d.push(0);
        assert_eq!(
            parse_ed25519_instruction_data(&d, 1, 50),
            Err(Ed25519LayoutError::WrongLength {
                expected: 162,
                actual: 163
            })
        );
        assert_eq!(
            parse_ed25519_instruction_data(&good[..161], 1, 50),
            Err(Ed25519LayoutError::WrongLength {
                expected: 162,
                actual: 161
            })
        );
        // Right data, wrong expected message length.
        assert!(matches!(
            parse_ed25519_instruction_data(&good, 1, 49),
            Err(Ed25519LayoutError::WrongLength { .. })
        ));
    }

    #[test]
    fn parser_rejects_each_record_problem() {
        let good = canonical_one();
        let set = |field: usize, value: u16| {
            let mut d = good.clone();
            let at = 2 + 2 * field;
            d[at..at + 2].copy_from_slice(&value.to_le_bytes());
            parse_ed25519_instruction_data(&d, 1, 50).map(|r| r.len())
        };
        for index_field in [1, 3, 6] {
            assert_eq!(
                set(index_field, 0),
                Err(Ed25519LayoutError::ForeignInstructionIndex { record: 0 })
            );
        }
        assert_eq!(
            set(5, 49),
            Err(Ed25519LayoutError::MessageSizeMismatch {
                record: 0,
                expected: 50,
                actual: 49
            })
        );
        // Pointing the message at the signature bytes (a classic bypass).
        assert_eq!(
            set(4, 48),
            Err(Ed25519LayoutError::NonCanonicalOffset { record: 0 })
        );
        assert_eq!(
            set(2, 112),
            Err(Ed25519LayoutError::NonCanonicalOffset { record: 0 })
        );
        assert_eq!(
            set(0, u16::MAX),
            Err(Ed25519LayoutError::NonCanonicalOffset { record: 0 })
        );
    }

    /// Exhaustive: every other value of every u16 field of a one-record
    /// instruction, and of both header bytes, is rejected.
    #[test]
    fn parser_rejects_every_value_of_every_field_single_record() {
        let good = canonical_one();
        let mut d = good.clone();
        for field in 0..7 {
            let at = 2 + 2 * field;
            let original = u16_at(&good, at);
            for v in 0..=u16::MAX {
                if v == original {
                    continue;
                }
                d[at..at + 2].copy_from_slice(&v.to_le_bytes());
                assert!(
                    parse_ed25519_instruction_data(&d, 1, 50).is_err(),
                    "field {field} value {v} accepted"
                );
            }
            d[at..at + 2].copy_from_slice(&original.to_le_bytes());
        }
        assert_eq!(d, good);
        for at in 0..2 {
            for v in 0..=u8::MAX {
                if v == good[at] {
                    continue;
                }
                d[at] = v;
                assert!(parse_ed25519_instruction_data(&d, 1, 50).is_err());
            }
            d[at] = good[at];
        }
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    /// Emulates the precompile over the builder's output: every parsed record
    /// verifies with `verify_strict`, for 1..=8 real signatures with messages of
    /// mixed lengths.
    #[test]
    fn built_instruction_verifies_like_the_precompile() {
        for n in 1..=8usize {
            let keys: Vec<SigningKey> = (0..n).map(|i| key(u8::try_from(i).unwrap() + 1)).collect();
            let pubkeys: Vec<[u8; 32]> =
                keys.iter().map(|k| k.verifying_key().to_bytes()).collect();
            let messages: Vec<Vec<u8>> =
                (0..n).map(|i| vec![u8::try_from(i).unwrap(); 50]).collect();
            let sigs: Vec<[u8; 64]> = keys
                .iter()
                .zip(&messages)
                .map(|(k, m)| k.sign(m).to_bytes())
                .collect();
            let entries: Vec<Ed25519Entry<'_>> = (0..n)
                .map(|i| Ed25519Entry {
                    pubkey: &pubkeys[i],
                    signature: &sigs[i],
                    message: &messages[i],
                })
                .collect();
            let data = ed25519_instruction_data(&entries).unwrap();
            assert_eq!(Some(data.len()), ed25519_instruction_len(n, 50));
            let parsed = parse_ed25519_instruction_data(&data, n, 50).unwrap();
            assert_eq!(parsed.len(), n);
            for (i, rec) in parsed.iter().enumerate() {
                assert_eq!(rec, entries[i]);
                let vk = VerifyingKey::from_bytes(rec.pubkey).unwrap();
                vk.verify_strict(rec.message, &Signature::from_bytes(rec.signature))
                    .unwrap();
                // And a flipped message byte does not verify.
                let mut bad = rec.message.to_vec();
                bad[0] ^= 1;
                assert!(
                    vk.verify_strict(&bad, &Signature::from_bytes(rec.signature))
                        .is_err()
                );
            }
            // The wrong expected count is refused.
            if n < 8 {
                assert!(parse_ed25519_instruction_data(&data, n + 1, 50).is_err());
            }
            if n > 1 {
                assert!(parse_ed25519_instruction_data(&data, n - 1, 50).is_err());
            }
        }
    }

    #[test]
    fn records_iter_outlives_records_value() {
        let data = canonical_one();
        let entries: Vec<Ed25519Entry<'_>> = {
            let parsed = parse_ed25519_instruction_data(&data, 1, 50).unwrap();
            parsed.iter()
        }
        .collect();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].message, &[9u8; 50][..]);
    }

    /// The length is defined for 1..=8 signatures only: 0 and 9 have none
    /// (not the 2-byte header of an empty instruction).
    #[test]
    fn instruction_len_is_none_outside_one_to_eight_signatures() {
        assert_eq!(ed25519_instruction_len(0, 50), None);
        assert_eq!(ed25519_instruction_len(0, 0), None);
        assert_eq!(ed25519_instruction_len(9, 50), None);
        assert_eq!(ed25519_instruction_len(1, 0), Some(2 + 14 + 96));
        assert_eq!(ed25519_instruction_len(8, 50), Some(2 + 8 * (14 + 96 + 50)));
        assert_eq!(ed25519_instruction_len(2, usize::MAX), None);
    }
}
