//! Property tests: round trips, strictness of the Ed25519 parser against every
//! single-field mutation, and "never panics" on arbitrary input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use paychan_voucher::{
    ED25519_HEADER_LEN, ED25519_OFFSETS_LEN, Ed25519Entry, Ed25519LayoutError, V2_MAX_CHANNELS,
    VOUCHER_V1_LEN, VoucherError, VoucherV1, VoucherV2Ref, channels_hash, ed25519_instruction_data,
    ed25519_instruction_len, encode_v2, parse_ed25519_instruction_data, v2_len,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// Owned material for `n` precompile entries sharing one message length.
#[derive(Clone, Debug)]
struct Material {
    pubkeys: Vec<[u8; 32]>,
    signatures: Vec<[u8; 64]>,
    messages: Vec<Vec<u8>>,
    message_len: usize,
}

impl Material {
    fn entries(&self) -> Vec<Ed25519Entry<'_>> {
        self.pubkeys
            .iter()
            .zip(&self.signatures)
            .zip(&self.messages)
            .map(|((pubkey, signature), message)| Ed25519Entry {
                pubkey,
                signature,
                message,
            })
            .collect()
    }

    fn count(&self) -> usize {
        self.pubkeys.len()
    }

    fn data(&self) -> Vec<u8> {
        ed25519_instruction_data(&self.entries()).unwrap()
    }
}

fn material() -> impl Strategy<Value = Material> {
    (1usize..=8, 0usize..=160).prop_flat_map(|(n, message_len)| {
        (
            vec(any::<[u8; 32]>(), n),
            vec(any::<[u8; 32]>(), n),
            vec(any::<[u8; 32]>(), n),
            vec(vec(any::<u8>(), message_len), n),
        )
            .prop_map(move |(pubkeys, sig_lo, sig_hi, messages)| Material {
                pubkeys,
                signatures: sig_lo
                    .iter()
                    .zip(&sig_hi)
                    .map(|(lo, hi)| {
                        let mut s = [0u8; 64];
                        s[..32].copy_from_slice(lo);
                        s[32..].copy_from_slice(hi);
                        s
                    })
                    .collect(),
                messages,
                message_len,
            })
    })
}

fn set_u16(data: &mut [u8], at: usize, v: u16) {
    data[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn get_u16(data: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([data[at], data[at + 1]])
}

proptest! {
    #[test]
    fn v1_round_trip(channel_id in any::<[u8; 32]>(), amount in any::<u64>(), expires in any::<i64>()) {
        let v = VoucherV1 { channel_id, cumulative_amount: amount, expires_at: expires };
        let bytes = v.encode();
        prop_assert_eq!(bytes.len(), VOUCHER_V1_LEN);
        prop_assert_eq!(&bytes[..2], &[0x56, 0x01]);
        prop_assert_eq!(VoucherV1::decode(&bytes), Ok(v));
        // A v1 voucher is never a valid v2 voucher.
        prop_assert!(VoucherV2Ref::decode(&bytes).is_err());
    }

    #[test]
    fn v2_round_trip(
        expires in any::<i64>(),
        hash in any::<[u8; 32]>(),
        cumulatives in vec(any::<u64>(), 1..=V2_MAX_CHANNELS),
    ) {
        let bytes = encode_v2(expires, &hash, &cumulatives).unwrap();
        prop_assert_eq!(bytes.len(), v2_len(cumulatives.len()));
        let v = VoucherV2Ref::decode(&bytes).unwrap();
        prop_assert_eq!(v.count(), cumulatives.len());
        prop_assert_eq!(v.expires_at(), expires);
        prop_assert_eq!(v.channels_hash(), &hash);
        prop_assert_eq!(v.cumulatives().collect::<Vec<_>>(), cumulatives.clone());
        for (i, c) in cumulatives.iter().enumerate() {
            prop_assert_eq!(v.cumulative(i), Some(*c));
        }
        prop_assert_eq!(v.cumulative(cumulatives.len()), None);
        // Any truncation or extension is refused.
        prop_assert!(VoucherV2Ref::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(VoucherV2Ref::decode(&longer).is_err());
        prop_assert!(VoucherV1::decode(&bytes).is_err());
    }

    #[test]
    fn channels_hash_accepts_exactly_strictly_increasing(
        program in any::<[u8; 32]>(),
        ids in vec(any::<[u8; 32]>(), 1..=V2_MAX_CHANNELS),
    ) {
        let refs: Vec<&[u8; 32]> = ids.iter().collect();
        let increasing = ids.windows(2).all(|w| w[0] < w[1]);
        let h = channels_hash(&program, &refs);
        if increasing {
            prop_assert!(h.is_ok());
        } else {
            prop_assert_eq!(h, Err(VoucherError::ChannelsNotIncreasing));
        }
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        let sorted_refs: Vec<&[u8; 32]> = sorted.iter().collect();
        prop_assert!(channels_hash(&program, &sorted_refs).is_ok());
    }

    #[test]
    fn ed25519_build_parse_round_trip(m in material()) {
        let data = m.data();
        prop_assert_eq!(Some(data.len()), ed25519_instruction_len(m.count(), m.message_len));
        let parsed = parse_ed25519_instruction_data(&data, m.count(), m.message_len).unwrap();
        prop_assert_eq!(parsed.len(), m.count());
        prop_assert_eq!(parsed.iter().collect::<Vec<_>>(), m.entries());
        for (i, e) in m.entries().into_iter().enumerate() {
            prop_assert_eq!(parsed.get(i), Some(e));
        }
        prop_assert_eq!(parsed.get(m.count()), None);
    }

    /// Every single-field mutation of a canonical instruction is rejected: both
    /// header bytes, each of the 7 u16 fields of each record (to a random
    /// different value), rider bytes, and truncation.
    #[test]
    fn ed25519_parser_rejects_every_single_field_mutation(
        m in material(),
        header_values in any::<[u8; 2]>(),
        field_values in vec(any::<u16>(), 8 * 7),
        rider in vec(any::<u8>(), 1..16),
    ) {
        let good = m.data();
        let n = m.count();
        let len = m.message_len;
        prop_assert!(parse_ed25519_instruction_data(&good, n, len).is_ok());

        for (at, v) in header_values.into_iter().enumerate() {
            let v = if v == good[at] { v.wrapping_add(1) } else { v };
            let mut d = good.clone();
            d[at] = v;
            prop_assert!(parse_ed25519_instruction_data(&d, n, len).is_err(), "header {} = {}", at, v);
        }

        for record in 0..n {
            for field in 0..7 {
                let at = ED25519_HEADER_LEN + record * ED25519_OFFSETS_LEN + 2 * field;
                let original = get_u16(&good, at);
                let v = field_values[record * 7 + field];
                let v = if v == original { v.wrapping_add(1) } else { v };
                let mut d = good.clone();
                set_u16(&mut d, at, v);
                let r = parse_ed25519_instruction_data(&d, n, len);
                prop_assert!(r.is_err(), "record {} field {} = {} accepted", record, field, v);
                // And the boundary values.
                for v in [0u16, 1, original.wrapping_sub(1), original.wrapping_add(1), u16::MAX - 1, u16::MAX] {
                    if v == original { continue; }
                    set_u16(&mut d, at, v);
                    prop_assert!(parse_ed25519_instruction_data(&d, n, len).is_err());
                }
            }
        }

        let mut longer = good.clone();
        longer.extend_from_slice(&rider);
        prop_assert_eq!(
            parse_ed25519_instruction_data(&longer, n, len).err(),
            Some(Ed25519LayoutError::WrongLength { expected: good.len(), actual: longer.len() })
        );
        for cut in 1..=good.len() {
            prop_assert!(parse_ed25519_instruction_data(&good[..good.len() - cut], n, len).is_err());
        }

        // The same bytes parsed against a different count or message length.
        for other in 1..=8 {
            if other != n {
                prop_assert!(parse_ed25519_instruction_data(&good, other, len).is_err());
            }
        }
        prop_assert!(parse_ed25519_instruction_data(&good, n, len + 1).is_err());
        if len > 0 {
            prop_assert!(parse_ed25519_instruction_data(&good, n, len - 1).is_err());
        }
    }

    #[test]
    fn decoders_never_panic_on_random_bytes(
        bytes in vec(any::<u8>(), 0..700),
        expected_count in 0usize..=10,
        message_len in prop_oneof![0usize..=200, any::<usize>()],
    ) {
        let _ = VoucherV1::decode(&bytes);
        let _ = VoucherV2Ref::decode(&bytes);
        if let Ok(v) = VoucherV2Ref::decode(&bytes) {
            prop_assert_eq!(v.cumulatives().count(), v.count());
        }
        let _ = parse_ed25519_instruction_data(&bytes, expected_count, message_len);
        if let Ok(r) = parse_ed25519_instruction_data(&bytes, expected_count, message_len) {
            prop_assert_eq!(r.iter().count(), r.len());
        }
    }

    /// Random bytes behind plausible headers, so the decoders get past the first checks.
    #[test]
    fn decoders_never_panic_on_plausible_headers(
        count in any::<u8>(),
        tail in vec(any::<u8>(), 0..700),
        expected_count in 1usize..=8,
        message_len in 0usize..=120,
    ) {
        let mut v2 = vec![0x56, 0x02, count];
        v2.extend_from_slice(&tail);
        let _ = VoucherV2Ref::decode(&v2);
        let mut v1 = vec![0x56, 0x01];
        v1.extend_from_slice(&tail);
        let _ = VoucherV1::decode(&v1);
        let mut ed = vec![count % 9, 0];
        ed.extend_from_slice(&tail);
        let r = parse_ed25519_instruction_data(&ed, expected_count, message_len);
        if let Ok(records) = r {
            // Anything accepted must be exactly the builder's output for those records.
            let entries: Vec<Ed25519Entry<'_>> = records.iter().collect();
            prop_assert_eq!(ed25519_instruction_data(&entries).unwrap(), ed);
        }
    }
}

#[cfg(feature = "std")]
mod signing {
    use super::*;
    use ed25519_dalek::SigningKey;
    use paychan_voucher::signing::{
        SignedVoucher, ed25519_instruction_data_v1, is_weak_signer, sign_v1, verify_strict_message,
    };

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn sign_verify_and_tamper(
            seed in any::<[u8; 32]>(),
            channel_id in any::<[u8; 32]>(),
            amount in any::<u64>(),
            expires in any::<i64>(),
            flip_byte in 0usize..VOUCHER_V1_LEN,
            flip_bit in 0u8..8,
            sig_byte in 0usize..64,
        ) {
            let key = SigningKey::from_bytes(&seed);
            let v = VoucherV1 { channel_id, cumulative_amount: amount, expires_at: expires };
            let s = sign_v1(&key, &v);
            prop_assert_eq!(s.verify_strict(), Ok(()));
            prop_assert!(!is_weak_signer(&s.signer));

            let mut msg = v.encode();
            msg[flip_byte] ^= 1 << flip_bit;
            prop_assert!(verify_strict_message(&s.signer, &msg, &s.signature).is_err());
            if let Ok(tampered) = VoucherV1::decode(&msg) {
                let t = SignedVoucher { voucher: tampered, ..s };
                prop_assert_eq!(t.verify_strict(), Err(VoucherError::BadSignature));
            }
            let mut t = s;
            t.signature[sig_byte] ^= 1 << flip_bit;
            prop_assert!(t.verify_strict().is_err());

            let data = ed25519_instruction_data_v1(&[s]).unwrap();
            let parsed = parse_ed25519_instruction_data(&data, 1, VOUCHER_V1_LEN).unwrap();
            let rec = parsed.get(0).unwrap();
            prop_assert_eq!(verify_strict_message(rec.pubkey, rec.message, rec.signature), Ok(()));
        }

        #[test]
        fn is_weak_signer_never_panics(bytes in any::<[u8; 32]>()) {
            let weak = is_weak_signer(&bytes);
            if !weak {
                prop_assert!(ed25519_dalek::VerifyingKey::from_bytes(&bytes).is_ok());
            }
        }
    }
}

#[cfg(feature = "serde")]
mod json {
    use super::*;
    use paychan_voucher::json::{SignedVoucherJson, VoucherJson};
    use paychan_voucher::signing::SignedVoucher;

    proptest! {
        #[test]
        fn json_round_trip(
            channel_id in any::<[u8; 32]>(),
            amount in any::<u64>(),
            // Years 0000..=9999 are representable in RFC 3339.
            expires in -62_167_219_200i64..=253_402_300_799,
            signer in any::<[u8; 32]>(),
            sig_lo in any::<[u8; 32]>(),
            sig_hi in any::<[u8; 32]>(),
        ) {
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(&sig_lo);
            signature[32..].copy_from_slice(&sig_hi);
            let s = SignedVoucher {
                voucher: VoucherV1 { channel_id, cumulative_amount: amount, expires_at: expires },
                signer,
                signature,
            };
            let text = serde_json::to_string(&s).unwrap();
            prop_assert_eq!(text.contains("expiresAt"), expires != 0);
            let back: SignedVoucher = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(back, s);
            let j = SignedVoucherJson::try_from(&s).unwrap();
            prop_assert_eq!(SignedVoucher::try_from(&j), Ok(s));
        }

        #[test]
        fn json_never_panics_on_random_text(text in ".{0,300}") {
            let _ = serde_json::from_str::<SignedVoucher>(&text);
            let _ = serde_json::from_str::<SignedVoucherJson>(&text);
        }

        #[test]
        fn json_never_panics_on_random_fields(
            channel_id in ".{0,60}",
            amount in prop_oneof!["[0-9+-.e]{0,25}", ".{0,25}"],
            expires in proptest::option::of(".{0,40}"),
            signer in "[1-9A-HJ-NP-Za-km-z]{0,50}",
            signature in prop_oneof!["[1-9A-HJ-NP-Za-km-z]{80,95}", ".{0,100}"],
            signature_type in prop_oneof![Just("ed25519".to_string()), ".{0,10}"],
        ) {
            let j = SignedVoucherJson {
                voucher: VoucherJson { channel_id, cumulative_amount: amount, expires_at: expires },
                signer,
                signature,
                signature_type,
            };
            if let Ok(s) = SignedVoucher::try_from(&j) {
                // Whatever is accepted converts back to an equivalent form.
                let again = SignedVoucherJson::try_from(&s).unwrap();
                prop_assert_eq!(SignedVoucher::try_from(&again), Ok(s));
            }
        }
    }
}
