//! Differential tests: `paychan_voucher::strict::verify_strict` (the verifier
//! the program runs with the curve25519 syscalls) against ed25519-dalek 2.x's
//! `VerifyingKey::from_bytes(..)?.verify_strict(..)` (what the off-chain
//! verifier and the Ed25519 precompile use). They must agree, accept or
//! refuse, on every input; on the constructed edge cases (`vectors/mod.rs`,
//! documented there) both must also give the outcome the rules prescribe.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod vectors;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use paychan_voucher::{
    VoucherV1,
    strict::{self, StrictError},
};
use proptest::prelude::*;

/// ed25519-dalek's verdict (a key that does not decompress is refused).
fn dalek(pubkey: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    VerifyingKey::from_bytes(pubkey)
        .map(|k| {
            k.verify_strict(message, &Signature::from_bytes(signature))
                .is_ok()
        })
        .unwrap_or(false)
}

fn ours(pubkey: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    strict::verify_strict(pubkey, message, signature).is_ok()
}

fn voucher_message() -> Vec<u8> {
    VoucherV1 {
        channel_id: [0x42; 32],
        cumulative_amount: 1_000_000,
        expires_at: 1_800_000_000,
    }
    .encode()
    .to_vec()
}

#[test]
fn edge_case_vectors_agree_with_dalek_and_the_rules() {
    let messages: Vec<Vec<u8>> = vec![voucher_message(), vec![], b"x".to_vec(), vec![0xa5; 200]];
    let (mut accepted, mut refused) = (0usize, 0usize);
    for (m, message) in messages.iter().enumerate() {
        let vectors = vectors::vectors(message, 1 + m as u64);
        assert!(vectors.len() > 300, "{} vectors", vectors.len());
        for v in &vectors {
            let d = dalek(&v.pubkey, &v.message, &v.signature);
            let o = ours(&v.pubkey, &v.message, &v.signature);
            assert_eq!(d, v.expected, "ed25519-dalek on {} (message {m})", v.name);
            assert_eq!(
                o, v.expected,
                "strict::verify_strict on {} (message {m})",
                v.name
            );
            if v.expected {
                accepted += 1;
            } else {
                refused += 1;
            }
        }
    }
    println!(
        "strict vectors: {accepted} accepted, {refused} refused, all agree with ed25519-dalek"
    );
    // Valid, negated and the mixed keys that can sign (order 2, 4 and 8
    // torsion: `holds`; order 8 also `mixed_r_holds`) per message.
    assert!(accepted >= 4 * (2 + 7), "{accepted}");
}

#[test]
fn each_rule_gives_its_own_error() {
    let message = voucher_message();
    let keys = vectors::keys(9);
    let valid = &keys[0];
    let sig = vectors::sign(valid, vectors::Case::Holds, &message, 1).unwrap();
    assert_eq!(strict::verify_strict(&valid.bytes, &message, &sig), Ok(()));

    let bad_s = vectors::sign(valid, vectors::Case::SPlusL(1), &message, 1).unwrap();
    assert_eq!(
        strict::verify_strict(&valid.bytes, &message, &bad_s),
        Err(StrictError::NonCanonicalScalar)
    );
    let small_r = vectors::sign(valid, vectors::Case::SmallOrderR(0), &message, 1).unwrap();
    assert_eq!(
        strict::verify_strict(&valid.bytes, &message, &small_r),
        Err(StrictError::SmallOrderR)
    );
    let small_key = keys.iter().find(|k| k.name == "small_order[0]").unwrap();
    let sig_small = vectors::sign(small_key, vectors::Case::Holds, &message, 1).unwrap();
    assert_eq!(
        strict::verify_strict(&small_key.bytes, &message, &sig_small),
        Err(StrictError::SmallOrderKey)
    );
    let not_a_point = keys.iter().find(|k| k.name == "not_a_point[0]").unwrap();
    assert_eq!(
        strict::verify_strict(&not_a_point.bytes, &message, &sig),
        Err(StrictError::InvalidKey)
    );
    let mut tampered = message.clone();
    tampered[40] ^= 1;
    assert_eq!(
        strict::verify_strict(&valid.bytes, &tampered, &sig),
        Err(StrictError::Mismatch)
    );
}

#[test]
fn mixed_order_keys_sign_only_when_the_torsion_cancels() {
    // A = aB + T with T of order 8: an honest signature verifies (cofactorless)
    // exactly when k·T = 0, i.e. for one nonce in eight. Both verifiers accept
    // those and refuse the others.
    let message = voucher_message();
    let key = vectors::keys(3)
        .into_iter()
        .find(|k| k.name == "mixed[T1]")
        .unwrap();
    let (a, t) = key.decomposition.unwrap();
    let mut rng = rand::rngs::OsRng;
    let (mut yes, mut no) = (0, 0);
    for _ in 0..400 {
        let r = curve25519_dalek::Scalar::random(&mut rng);
        let big_r = (r * curve25519_dalek::constants::ED25519_BASEPOINT_POINT)
            .compress()
            .to_bytes();
        let k = vectors::challenge(&big_r, &key.bytes, &message);
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&big_r);
        sig[32..].copy_from_slice(&(r + k * a).to_bytes());
        let cancels = (k * t) == curve25519_dalek::traits::Identity::identity();
        assert_eq!(dalek(&key.bytes, &message, &sig), cancels);
        assert_eq!(ours(&key.bytes, &message, &sig), cancels);
        if cancels {
            yes += 1;
        } else {
            no += 1;
        }
    }
    assert!(yes > 10 && no > 250, "{yes} accepted, {no} refused");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Honest signatures of random keys over random messages: both accept.
    #[test]
    fn random_valid_signatures_verify(seed in any::<[u8; 32]>(), message in prop::collection::vec(any::<u8>(), 0..300)) {
        let key = SigningKey::from_bytes(&seed);
        let pubkey = key.verifying_key().to_bytes();
        let sig = key.sign(&message).to_bytes();
        prop_assert!(dalek(&pubkey, &message, &sig));
        prop_assert_eq!(strict::verify_strict(&pubkey, &message, &sig), Ok(()));
    }

    /// One flipped bit anywhere (message, R, s, key): both refuse.
    #[test]
    fn any_flipped_bit_is_refused_by_both(
        seed in any::<[u8; 32]>(),
        message in prop::collection::vec(any::<u8>(), 1..120),
        bit in any::<prop::sample::Index>(),
        target in 0u8..4,
    ) {
        let key = SigningKey::from_bytes(&seed);
        let mut pubkey = key.verifying_key().to_bytes();
        let mut message = message;
        let mut sig = key.sign(&message).to_bytes();
        match target {
            0 => { let i = bit.index(message.len() * 8); message[i / 8] ^= 1 << (i % 8); }
            1 => { let i = bit.index(256); sig[i / 8] ^= 1 << (i % 8); }
            2 => { let i = bit.index(256); sig[32 + i / 8] ^= 1 << (i % 8); }
            _ => { let i = bit.index(256); pubkey[i / 8] ^= 1 << (i % 8); }
        }
        let d = dalek(&pubkey, &message, &sig);
        prop_assert_eq!(ours(&pubkey, &message, &sig), d);
        prop_assert!(!d);
    }

    /// Arbitrary bytes as key and signature (and a canonical-s variant with
    /// a real point as R): the verdicts agree.
    #[test]
    fn arbitrary_inputs_agree(
        pubkey in any::<[u8; 32]>(),
        r in any::<[u8; 32]>(),
        s in any::<[u8; 32]>(),
        message in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r);
        sig[32..].copy_from_slice(&s);
        prop_assert_eq!(ours(&pubkey, &message, &sig), dalek(&pubkey, &message, &sig));
        let mut canonical = sig;
        canonical[63] &= 0x0f;
        prop_assert_eq!(ours(&pubkey, &message, &canonical), dalek(&pubkey, &message, &canonical));
    }

    /// `reduce_wide` is `Scalar::from_bytes_mod_order_wide`.
    #[test]
    fn reduction_matches_dalek(wide in prop::array::uniform32(any::<u8>()), wide2 in prop::array::uniform32(any::<u8>())) {
        let mut x = [0u8; 64];
        x[..32].copy_from_slice(&wide);
        x[32..].copy_from_slice(&wide2);
        prop_assert_eq!(
            strict::reduce_wide(&x),
            curve25519_dalek::Scalar::from_bytes_mod_order_wide(&x).to_bytes()
        );
    }
}
