//! Ed25519 edge-case vectors for `verify_strict`, constructed here (nothing
//! downloaded): every key kind × every signature construction, each with the
//! outcome ed25519-dalek 2.x's `verify_strict` must give by its rules.
//!
//! Shared by `crates/paychan-voucher/tests/strict.rs` (the shared verifier
//! against ed25519-dalek) and `tests/program/strict_vectors.rs` (the same
//! vectors through the program's `settle_signed` on LiteSVM), which include
//! this file with `#[path]`.
//!
//! # Keys ([`keys`])
//!
//! | kind | bytes | decomposition `A = aB + T` |
//! |---|---|---|
//! | `valid` | canonical encoding of `aB` | `a` random, `T = 0` |
//! | `negated` | `valid` with the sign bit flipped: `−aB`, another valid key | `−a`, `T = 0` |
//! | `small_order[i]` | the 14 encodings of the 8 small-order points (canonical, `y ≥ p`, sign-bit variants of `x = 0`) | `a = 0`, `T` = the point |
//! | `mixed[j]` | canonical encoding of `aB + T_j`, `T_j` of order 2, 4 or 8 (the 7 non-zero 8-torsion points) | `a` random, `T = T_j` |
//! | `non_canonical` | `y + p` (`y` in 2..=18, decompressing, not small order), both sign bits | unknown: nobody can sign |
//! | `not_a_point` | bytes that do not decompress | — |
//!
//! # Signatures ([`Case`])
//!
//! Every construction picks `R = rB + T_R` and `s = r + k·a`,
//! `k = SHA-512(R ‖ A ‖ M) mod L`, so that `[s]B − [k]A = rB − kT`: the
//! cofactorless equation holds exactly when `T_R = −kT`, and the nonce `r`
//! is ground until it does (or does not), as the case requires. Cases that
//! need a decomposition return `None` for keys without one.
//!
//! | case | construction | "Taming the many EdDSAs" analogue | strict outcome |
//! |---|---|---|---|
//! | `holds` | `T_R = 0`, cofactorless equation holds (ground when `T ≠ 0`) | 3 (mixed `A`) | accept iff `A` acceptable |
//! | `cofactored_only` | `T_R = 0`, equation fails (`kT ≠ 0`, mixed keys only) | 4 | refuse |
//! | `mixed_r_holds` | `T_R` of order 8, equation holds (mixed `A`) | 3 | accept iff `A` acceptable |
//! | `mixed_r_cofactored_only` | `T_R` of order 8, equation fails | 4, 5 | refuse |
//! | `small_order_r[i]` | `r = 0`: `R` = one of the 14 small-order encodings, `s = k·a` (`s = 0` for small `A`) | 0, 1, 2, 8, 9 | refuse (small `R`) |
//! | `s_plus_l` … `s_plus_max_l` | `holds` with `s + mL` (every `m` keeping `s < 2^256`) | 6, 7 | refuse (`s ≥ L`) |
//! | `s_high_bits` | `holds` with bits 253..=255 of `s` set | 7 | refuse |
//! | `tampered_message` | `holds` over `M` with its last byte flipped | — | refuse |
//! | `tampered_r` / `tampered_s` | `holds` with one bit of `R` / `s` flipped (the `s` flip keeps `s < L`) | — | refuse |
//! | `wrong_key` | an honest signature by another key | — | refuse |
//! | `r_not_a_point` | `R` bytes that do not decompress, `s` random | — | refuse |
//! | `r_non_canonical` | `R` = a `y + p` encoding of a non-small-order point | 8, 9 (non-small variant) | refuse |
//! | `identity_r_zero_s` | `R` = identity, `s = 0` | 0 | refuse |
//!
//! A key is acceptable when it decompresses and is not small order (any
//! encoding of a small-order point is refused, canonical or not).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use curve25519_dalek::{
    constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION},
    edwards::{CompressedEdwardsY, EdwardsPoint},
    scalar::Scalar,
    traits::Identity,
};
use rand::{RngCore, SeedableRng, rngs::StdRng};
use sha2::{Digest, Sha512};

/// The group order L, little-endian.
pub const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];
const P: [u8; 32] = {
    let mut p = [0xff; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    p
};

/// A public key under test.
#[derive(Clone, Debug)]
pub struct Key {
    pub name: String,
    pub bytes: [u8; 32],
    /// `(a, T)` with `A = aB + T`, when known.
    pub decomposition: Option<(Scalar, EdwardsPoint)>,
    /// Decompresses and is not small order.
    pub acceptable: bool,
}

/// A signature construction (see the module table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    Holds,
    CofactoredOnly,
    MixedRHolds,
    MixedRCofactoredOnly,
    SmallOrderR(usize),
    SPlusL(u8),
    SHighBits,
    TamperedMessage,
    TamperedR,
    TamperedS,
    WrongKey,
    RNotAPoint,
    RNonCanonical,
    IdentityRZeroS,
}

impl Case {
    /// Every case.
    pub fn all() -> Vec<Case> {
        let mut v = vec![
            Case::Holds,
            Case::CofactoredOnly,
            Case::MixedRHolds,
            Case::MixedRCofactoredOnly,
        ];
        v.extend((0..14).map(Case::SmallOrderR));
        v.extend((1..=max_l_multiple()).map(Case::SPlusL));
        v.extend([
            Case::SHighBits,
            Case::TamperedMessage,
            Case::TamperedR,
            Case::TamperedS,
            Case::WrongKey,
            Case::RNotAPoint,
            Case::RNonCanonical,
            Case::IdentityRZeroS,
        ]);
        v
    }

    pub fn name(&self) -> String {
        match self {
            Case::Holds => "holds".into(),
            Case::CofactoredOnly => "cofactored_only".into(),
            Case::MixedRHolds => "mixed_r_holds".into(),
            Case::MixedRCofactoredOnly => "mixed_r_cofactored_only".into(),
            Case::SmallOrderR(i) => format!("small_order_r[{i}]"),
            Case::SPlusL(m) => format!("s_plus_{m}l"),
            Case::SHighBits => "s_high_bits".into(),
            Case::TamperedMessage => "tampered_message".into(),
            Case::TamperedR => "tampered_r".into(),
            Case::TamperedS => "tampered_s".into(),
            Case::WrongKey => "wrong_key".into(),
            Case::RNotAPoint => "r_not_a_point".into(),
            Case::RNonCanonical => "r_non_canonical".into(),
            Case::IdentityRZeroS => "identity_r_zero_s".into(),
        }
    }

    /// Whether a signature of this case, by an acceptable key, is valid
    /// under the strict rules (only the constructions that make the
    /// cofactorless equation hold with a canonical `s` and a `R` that is
    /// neither small order nor non-canonical).
    pub fn valid_for_acceptable_key(&self) -> bool {
        matches!(self, Case::Holds | Case::MixedRHolds)
    }
}

/// One vector: verify `signature` by `pubkey` over `message`.
#[derive(Clone, Debug)]
pub struct Vector {
    pub name: String,
    pub pubkey: [u8; 32],
    pub message: Vec<u8>,
    pub signature: [u8; 64],
    /// ed25519-dalek 2.x `verify_strict`'s outcome by its rules.
    pub expected: bool,
}

/// `SHA-512(R ‖ A ‖ M) mod L` with dalek's own reduction.
pub fn challenge(r: &[u8; 32], a: &[u8; 32], m: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(m);
    Scalar::from_hash(h)
}

fn add_p(y: &[u8; 32]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let t = u16::from(y[i]) + u16::from(P[i]) + carry;
        out[i] = t as u8;
        carry = t >> 8;
    }
    (carry == 0 && out[31] & 0x80 == 0).then_some(out)
}

/// The 14 encodings of the 8 small-order points, in a fixed order.
pub fn small_order_encodings() -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    for t in EIGHT_TORSION {
        let mut y = t.compress().to_bytes();
        y[31] &= 0x7f;
        let mut ys = vec![y];
        ys.extend(add_p(&y));
        for y in ys {
            for sign in [0u8, 0x80] {
                let mut e = y;
                e[31] |= sign;
                if !out.contains(&e) {
                    out.push(e);
                }
            }
        }
    }
    assert_eq!(out.len(), 14);
    out
}

/// `y + p` encodings (both signs) of points with `y` in 2..=18 that
/// decompress and are not small order.
pub fn non_canonical_points() -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    for y in 2u8..=18 {
        let mut canonical = [0u8; 32];
        canonical[0] = y;
        let Some(nc) = add_p(&canonical) else {
            continue;
        };
        for sign in [0u8, 0x80] {
            let mut e = nc;
            e[31] |= sign;
            if let Some(p) = CompressedEdwardsY(e).decompress() {
                assert!(!p.is_small_order());
                out.push(e);
            }
        }
    }
    assert!(!out.is_empty());
    out
}

/// Bytes that do not decompress (found deterministically).
pub fn not_points(n: usize) -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    let mut y = 2u8;
    while out.len() < n {
        let mut e = [0x11u8; 32];
        e[0] = y;
        if CompressedEdwardsY(e).decompress().is_none() {
            out.push(e);
        }
        y = y.wrapping_add(1);
    }
    out
}

/// The largest `m` with `(L − 1) + m·L < 2^256`.
pub fn max_l_multiple() -> u8 {
    // L ≈ 2^252.0000…: 15·L < 2^256 ≤ 16·L.
    15
}

fn random_scalar(rng: &mut StdRng) -> Scalar {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// Every key kind (deterministic for a seed).
pub fn keys(seed: u64) -> Vec<Key> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut keys = Vec::new();
    let a = random_scalar(&mut rng);
    keys.push(Key {
        name: "valid".into(),
        bytes: (a * B).compress().to_bytes(),
        decomposition: Some((a, EdwardsPoint::identity())),
        acceptable: true,
    });
    let a = random_scalar(&mut rng);
    let mut bytes = (a * B).compress().to_bytes();
    bytes[31] ^= 0x80;
    keys.push(Key {
        name: "negated".into(),
        bytes,
        decomposition: Some((-a, EdwardsPoint::identity())),
        acceptable: true,
    });
    for (i, e) in small_order_encodings().into_iter().enumerate() {
        let point = CompressedEdwardsY(e)
            .decompress()
            .expect("small-order encodings decompress");
        keys.push(Key {
            name: format!("small_order[{i}]"),
            bytes: e,
            decomposition: Some((Scalar::ZERO, point)),
            acceptable: false,
        });
    }
    for (j, t) in EIGHT_TORSION.iter().enumerate().skip(1) {
        let a = random_scalar(&mut rng);
        let point = a * B + t;
        keys.push(Key {
            name: format!("mixed[T{j}]"),
            bytes: point.compress().to_bytes(),
            decomposition: Some((a, *t)),
            acceptable: true,
        });
    }
    for (i, e) in non_canonical_points().into_iter().enumerate() {
        keys.push(Key {
            name: format!("non_canonical[{i}]"),
            bytes: e,
            decomposition: None,
            acceptable: true,
        });
    }
    for (i, e) in not_points(2).into_iter().enumerate() {
        keys.push(Key {
            name: format!("not_a_point[{i}]"),
            bytes: e,
            decomposition: None,
            acceptable: false,
        });
    }
    keys
}

/// `R = rB + t_r`, `s = r + k·a`, ground (at most 4,096 nonces) until the
/// cofactorless equation holds (`want`) or fails (`!want`). `None` when the
/// key has no decomposition or no nonce gives the wanted outcome (e.g. an
/// equation that can never hold).
fn sign_ground(
    key: &Key,
    message: &[u8],
    t_r: EdwardsPoint,
    want: bool,
    rng: &mut StdRng,
) -> Option<[u8; 64]> {
    let (a, t) = key.decomposition?;
    // −kT ranges over the multiples of T: an equation that can never hold
    // (T_R not among them) or never fail (T = T_R = 0) gives no signature.
    let multiples: Vec<EdwardsPoint> = (0u8..8).map(|j| Scalar::from(j) * t).collect();
    if want && !multiples.contains(&t_r) {
        return None;
    }
    if !want && multiples.iter().all(|m| *m == t_r) {
        return None;
    }
    for _ in 0..4_096 {
        let r = random_scalar(rng);
        let big_r = r * B + t_r;
        let r_bytes = big_r.compress().to_bytes();
        let k = challenge(&r_bytes, &key.bytes, message);
        let holds = -(k * t) == t_r;
        if holds == want {
            let s = r + k * a;
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&r_bytes);
            sig[32..].copy_from_slice(&s.to_bytes());
            return Some(sig);
        }
    }
    None
}

fn add_l_times(s: &[u8; 32], m: u8) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u32;
    for i in 0..32 {
        let t = u32::from(s[i]) + u32::from(L[i]) * u32::from(m) + carry;
        out[i] = t as u8;
        carry = t >> 8;
    }
    assert_eq!(carry, 0, "s + {m}·L overflows 256 bits");
    out
}

/// The signature of `case` by `key` over `message`; `None` when the case
/// does not apply to the key. Deterministic for a seed.
pub fn sign(key: &Key, case: Case, message: &[u8], seed: u64) -> Option<[u8; 64]> {
    let mut rng = StdRng::seed_from_u64(seed);
    let t8 = EIGHT_TORSION[1];
    let holds = |rng: &mut StdRng| {
        sign_ground(key, message, EdwardsPoint::identity(), true, rng)
            .or_else(|| sign_ground(key, message, t8, true, rng))
    };
    match case {
        Case::Holds => sign_ground(key, message, EdwardsPoint::identity(), true, &mut rng),
        Case::CofactoredOnly => {
            sign_ground(key, message, EdwardsPoint::identity(), false, &mut rng)
        }
        Case::MixedRHolds => sign_ground(key, message, t8, true, &mut rng),
        Case::MixedRCofactoredOnly => sign_ground(key, message, t8, false, &mut rng),
        Case::SmallOrderR(i) => {
            let (a, _) = key.decomposition?;
            let r_bytes = small_order_encodings()[i];
            let k = challenge(&r_bytes, &key.bytes, message);
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&r_bytes);
            sig[32..].copy_from_slice(&(k * a).to_bytes());
            Some(sig)
        }
        Case::SPlusL(m) => {
            let mut sig = holds(&mut rng)?;
            let s: [u8; 32] = sig[32..].try_into().unwrap();
            sig[32..].copy_from_slice(&add_l_times(&s, m));
            Some(sig)
        }
        Case::SHighBits => {
            let mut sig = holds(&mut rng)?;
            sig[63] |= 0xe0;
            Some(sig)
        }
        Case::TamperedMessage => {
            let mut other = message.to_vec();
            if let Some(last) = other.last_mut() {
                *last ^= 0x01;
            } else {
                other.push(0);
            }
            let mut rng2 = rng.clone();
            sign_ground(key, &other, EdwardsPoint::identity(), true, &mut rng2)
                .or_else(|| sign_ground(key, &other, t8, true, &mut rng))
        }
        Case::TamperedR => {
            let mut sig = holds(&mut rng)?;
            sig[5] ^= 0x04;
            Some(sig)
        }
        Case::TamperedS => {
            let mut sig = holds(&mut rng)?;
            sig[32] ^= 0x01; // low bit: s stays below L
            Some(sig)
        }
        Case::WrongKey => {
            let other = keys(0x5eed).into_iter().next().expect("a valid key");
            let (a, _) = other.decomposition?;
            let r = random_scalar(&mut rng);
            let r_bytes = (r * B).compress().to_bytes();
            // Signed as `other` (its bytes in the hash), presented as `key`.
            let k = challenge(&r_bytes, &other.bytes, message);
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&r_bytes);
            sig[32..].copy_from_slice(&(r + k * a).to_bytes());
            (other.bytes != key.bytes).then_some(sig)
        }
        Case::RNotAPoint => {
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&not_points(1)[0]);
            sig[32..].copy_from_slice(&random_scalar(&mut rng).to_bytes());
            Some(sig)
        }
        Case::RNonCanonical => {
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&non_canonical_points()[0]);
            sig[32..].copy_from_slice(&random_scalar(&mut rng).to_bytes());
            Some(sig)
        }
        Case::IdentityRZeroS => {
            let mut sig = [0u8; 64];
            sig[0] = 1;
            Some(sig)
        }
    }
}

/// The outcome `verify_strict` must give, by its rules and the construction.
pub fn expected(key: &Key, case: Case) -> bool {
    key.acceptable && key.decomposition.is_some() && case.valid_for_acceptable_key()
}

/// Every vector for one message: each key × each case that applies.
pub fn vectors(message: &[u8], seed: u64) -> Vec<Vector> {
    let mut out = Vec::new();
    for key in keys(seed) {
        for (i, case) in Case::all().into_iter().enumerate() {
            let Some(signature) = sign(&key, case, message, seed ^ (i as u64) << 32) else {
                continue;
            };
            out.push(Vector {
                name: format!("{} / {}", key.name, case.name()),
                pubkey: key.bytes,
                message: message.to_vec(),
                signature,
                expected: expected(&key, case),
            });
        }
    }
    out
}
