//! Ed25519 verification under exactly the rules of ed25519-dalek 2.x's
//! `VerifyingKey::verify_strict`, computed with the Solana curve25519
//! syscalls (on chain) or curve25519-dalek (off chain) — the same code.
//!
//! `verify_strict(A, M, R ‖ s)` accepts if and only if:
//!
//! 1. `s` is canonical: `s < L` ([`is_canonical_scalar`]);
//! 2. `R` does not encode a small-order point ([`is_small_order_encoding`]);
//! 3. `A` does not encode a small-order point;
//! 4. `A` decompresses (non-canonical encodings `y ≥ p` and "negative zero"
//!    included, as curve25519-dalek accepts them);
//! 5. `[s]B − [k]A`, compressed, is exactly the 32 bytes `R`, where
//!    `k = SHA-512(R ‖ A ‖ M) mod L` over the bytes *as given*
//!    ([`challenge`], [`reduce_wide`]).
//!
//! That `R` decompresses (dalek's first check) is implied by 5: the
//! left-hand side is always the canonical encoding of a point, so it never
//! equals bytes that do not decompress, nor a non-canonical encoding.
//!
//! Step 5 is one two-point multiscalar multiplication `[s]B + [k](−A)`
//! ([`solana_curve25519::edwards::multiscalar_multiply_edwards`]), where
//! `−A` is `A`'s encoding with the sign bit flipped (`(x, y) ↦ (−x, y)`;
//! the decompression negates `x` by that bit, non-canonical `y` or not).
//! Negating the scalar instead would be wrong: for a key with a torsion
//! component `T`, `[L − k]A = −[k]A + [L]T` and `[L]T = [5]T ≠ 0`
//! (`L ≡ 5 mod 8`) — the mixed-order differential vectors catch exactly
//! that. On
//! `target_os = "solana"` it is the `sol_curve_multiscalar_mul` syscall,
//! whose runtime implementation (agave's `SyscallCurveMultiscalarMultiplication`)
//! calls that same function's off-chain body: `Scalar::from_canonical_bytes`
//! on each scalar (both canonical here by construction) and
//! `CompressedEdwardsY::decompress` on each point, then
//! `EdwardsPoint::optional_multiscalar_mul` and `compress`. Off chain the
//! function runs that body directly. So the program and every server run one
//! algorithm over one curve implementation, and the differential tests
//! (`tests/strict.rs`) compare it with ed25519-dalek itself.
//!
//! Small order is decided from the encoding, without a curve operation: a
//! 32-byte string decompresses to a small-order point exactly when its low
//! 255 bits (the `y` coordinate, which curve25519-dalek reduces mod `p`) are
//! one of the seven values in [`SMALL_ORDER_Y`] — for each of those `y` both
//! sign bits give a small-order point (`(±x, y)`, or `x = 0`). The unit test
//! `small_order_table_is_exact` derives the set from curve25519-dalek's
//! 8-torsion and checks it against `EdwardsPoint::is_small_order`.

use sha2::{Digest, Sha512};
use solana_curve25519::{
    edwards::{PodEdwardsPoint, multiscalar_multiply_edwards},
    scalar::PodScalar,
};

/// Why [`verify_strict`] refused a signature. ed25519-dalek reports all of
/// these as a failed verification; the variants only say which rule failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum StrictError {
    /// `s ≥ L` (a malleable, non-canonical scalar).
    #[error("signature scalar s is not canonical (s >= L)")]
    NonCanonicalScalar,
    /// `R` encodes a point of small order (including non-canonical encodings).
    #[error("signature R is a small-order point")]
    SmallOrderR,
    /// The public key encodes a point of small order (a weak key).
    #[error("public key is a small-order point")]
    SmallOrderKey,
    /// The public key does not decompress to a curve point.
    #[error("public key is not a curve point")]
    InvalidKey,
    /// `[s]B − [k]A` does not compress to `R` (a wrong signature, or an `R`
    /// that is not a canonical point encoding).
    #[error("signature does not verify")]
    Mismatch,
}

/// The order `L = 2^252 + 27742317777372353535851937790883648493` of the
/// prime-order subgroup, little-endian.
pub const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

/// The Ed25519 base point `B`, compressed (`y = 4/5`).
pub const BASEPOINT: [u8; 32] = [
    0x58, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
    0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
];

/// The `y` coordinates (255-bit little-endian values, sign bit clear) whose
/// encodings decompress to the eight small-order points: `0` (order 4),
/// `1` (the identity), the two order-8 values `y₈` and `p − y₈`, `p − 1`
/// (order 2), and the non-canonical `p` (≡ 0) and `p + 1` (≡ 1). With both
/// sign bits: the 14 encodings of small-order points.
pub const SMALL_ORDER_Y: [[u8; 32]; 7] = [
    [0; 32],
    [
        0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0,
    ],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
];

/// Verifies an Ed25519 `signature` (`R ‖ s`) by `pubkey` over `message`,
/// accepting exactly what ed25519-dalek 2.x's
/// `VerifyingKey::from_bytes(pubkey)?.verify_strict(message, signature)`
/// accepts (see the module documentation for the rules).
///
/// Cost on chain: two SHA-512 blocks for a 50-byte voucher (`R ‖ A ‖ M` is
/// 114 bytes), one 512-bit reduction, and one two-point
/// `sol_curve_multiscalar_mul` (3,031 CU).
pub fn verify_strict(
    pubkey: &[u8; 32],
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), StrictError> {
    let (Some(r), Some(s)) = (signature.first_chunk::<32>(), signature.last_chunk::<32>()) else {
        return Err(StrictError::Mismatch); // unreachable: 64 = 32 + 32
    };
    if !is_canonical_scalar(s) {
        return Err(StrictError::NonCanonicalScalar);
    }
    if is_small_order_encoding(r) {
        return Err(StrictError::SmallOrderR);
    }
    if is_small_order_encoding(pubkey) {
        return Err(StrictError::SmallOrderKey);
    }
    let k = challenge(r, pubkey, message);
    // [s]B + [k](−A) = [s]B − [k]A. Both scalars are canonical, so the only
    // way this fails is a public key that does not decompress.
    let lhs = multiscalar_multiply_edwards(
        &[PodScalar(*s), PodScalar(k)],
        &[
            PodEdwardsPoint(BASEPOINT),
            PodEdwardsPoint(negate_encoding(pubkey)),
        ],
    )
    .ok_or(StrictError::InvalidKey)?;
    if lhs.0 == *r {
        Ok(())
    } else {
        Err(StrictError::Mismatch)
    }
}

/// The encoding of `−P` for an encoding of `P = (x, y)`: the sign bit of
/// `x` flipped. (For `x = 0`, i.e. `y = ±1`, both encodings are the same
/// small-order point, refused before this is used.)
#[must_use]
pub fn negate_encoding(point: &[u8; 32]) -> [u8; 32] {
    let mut out = *point;
    if let Some(top) = out.last_mut() {
        *top ^= 0x80;
    }
    out
}

/// `k = SHA-512(R ‖ A ‖ M) mod L`, the Ed25519 challenge, over the bytes of
/// `r` and `pubkey` exactly as given.
#[must_use]
pub fn challenge(r: &[u8; 32], pubkey: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let digest = Sha512::new()
        .chain_update(r)
        .chain_update(pubkey)
        .chain_update(message)
        .finalize();
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&digest);
    reduce_wide(&wide)
}

/// Whether the 32-byte little-endian integer `s` is below `L`.
#[must_use]
pub fn is_canonical_scalar(s: &[u8; 32]) -> bool {
    // Compare from the most significant byte down.
    for (a, l) in s.iter().rev().zip(L.iter().rev()) {
        if a != l {
            return a < l;
        }
    }
    false // s == L
}

/// Whether `bytes` decompresses to a point of small order (order 1, 2, 4 or
/// 8), canonical encoding or not. Equivalent to curve25519-dalek's
/// `CompressedEdwardsY(bytes).decompress().is_some_and(|p| p.is_small_order())`.
#[must_use]
pub fn is_small_order_encoding(bytes: &[u8; 32]) -> bool {
    let mut y = *bytes;
    if let Some(top) = y.last_mut() {
        *top &= 0x7f;
    }
    SMALL_ORDER_Y.contains(&y)
}

// ---- Arithmetic mod L on 32-bit limbs ------------------------------------
//
// Barrett reduction (Menezes, van Oorschot, Vanstone, Handbook of Applied
// Cryptography, Algorithm 14.42) with base b = 2^32 and k = 8 limbs: L has
// 253 bits, so its top limb L[7] = 0x10000000 is non-zero, and every input
// x < 2^512 = b^(2k). With µ = ⌊b^(2k) / L⌋:
//   q1 = ⌊x / b^(k−1)⌋, q2 = q1·µ, q3 = ⌊q2 / b^(k+1)⌋,
//   r1 = x mod b^(k+1), r2 = q3·L mod b^(k+1), r = r1 − r2 (mod b^(k+1)),
//   then while r ≥ L: r −= L.
// Fact 14.43: q3 ≤ ⌊x/L⌋ ≤ q3 + 2, so 0 ≤ x − q3·L < 3L < b^(k+1): the
// subtraction mod b^(k+1) yields x − q3·L exactly and at most two
// subtractions of L follow.
//
// Every limb product is at most (2^32 − 1)^2 and adding a limb and a carry
// (each ≤ 2^32 − 1) gives at most 2^64 − 1: the u64 steps below never wrap.

const LIMBS: usize = 8;
const WIDE: usize = 2 * LIMBS;
const Q: usize = LIMBS + 1;

/// `L` in little-endian 32-bit limbs (plus a zero limb for the 9-limb steps).
const L_LIMBS: [u32; Q] = [
    0x5cf5_d3ed,
    0x5812_631a,
    0xa2f7_9cd6,
    0x14de_f9de,
    0,
    0,
    0,
    0x1000_0000,
    0,
];

/// `µ = ⌊2^512 / L⌋` (260 bits) in little-endian 32-bit limbs.
const MU: [u32; Q] = [
    0x0a2c_131b,
    0xed9c_e5a3,
    0x0863_29a7,
    0x2106_215d,
    0xffff_ffeb,
    0xffff_ffff,
    0xffff_ffff,
    0xffff_ffff,
    0x0000_000f,
];

fn limbs_from_le<const N: usize>(bytes: &[u8]) -> [u32; N] {
    let mut out = [0u32; N];
    for (limb, chunk) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        let mut word = [0u8; 4];
        word.copy_from_slice(chunk);
        *limb = u32::from_le_bytes(word);
    }
    out
}

/// One schoolbook step: `acc + a·b + carry` as (low limb, carry).
#[inline(always)]
fn mac(acc: u32, a: u32, b: u32, carry: u32) -> (u32, u32) {
    // ≤ (2^32 − 1)^2 + 2·(2^32 − 1) = 2^64 − 1: never wraps.
    let t = u64::from(a)
        .wrapping_mul(u64::from(b))
        .wrapping_add(u64::from(acc))
        .wrapping_add(u64::from(carry));
    (t as u32, (t >> 32) as u32)
}

/// `a − b` over `Q` limbs, modulo `b^Q` (the borrow out is dropped).
fn sub_q(a: &[u32; Q], b: &[u32; Q]) -> [u32; Q] {
    let mut out = [0u32; Q];
    let mut borrow = 0u32;
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        let (d, b1) = x.overflowing_sub(*y);
        let (d, b2) = d.overflowing_sub(borrow);
        *o = d;
        borrow = u32::from(b1 | b2);
    }
    out
}

/// `a ≥ b` over `Q` limbs.
fn ge_q(a: &[u32; Q], b: &[u32; Q]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x > y;
        }
    }
    true
}

/// The 512-bit little-endian integer `wide` modulo `L`, as 32 canonical
/// little-endian bytes: the same value as curve25519-dalek's
/// `Scalar::from_bytes_mod_order_wide`.
#[must_use]
pub fn reduce_wide(wide: &[u8; 64]) -> [u8; 32] {
    let x: [u32; WIDE] = limbs_from_le(wide);

    // q1 = ⌊x / b^7⌋: limbs 7..16 (9 limbs).
    let mut q1 = [0u32; Q];
    for (q, limb) in q1.iter_mut().zip(x.iter().skip(LIMBS - 1)) {
        *q = *limb;
    }

    // q3 = ⌊q1·µ / b^9⌋: the top 9 limbs of the 18-limb product.
    let mut q2 = [0u32; 2 * Q];
    for (i, a) in q1.iter().enumerate() {
        let mut carry = 0u32;
        for (j, m) in MU.iter().enumerate() {
            let slot = &mut q2[i + j];
            let (lo, hi) = mac(*slot, *a, *m, carry);
            *slot = lo;
            carry = hi;
        }
        q2[i + Q] = carry;
    }
    let mut q3 = [0u32; Q];
    for (q, limb) in q3.iter_mut().zip(q2.iter().skip(Q)) {
        *q = *limb;
    }

    // r2 = q3·L mod b^9: only the low 9 limbs of the product.
    let mut r2 = [0u32; Q];
    for (i, a) in q3.iter().enumerate() {
        let mut carry = 0u32;
        for (j, l) in L_LIMBS.iter().enumerate().take(Q - i) {
            let slot = &mut r2[i + j];
            let (lo, hi) = mac(*slot, *a, *l, carry);
            *slot = lo;
            carry = hi;
        }
        // The carry out of limb 8 is a multiple of b^9: dropped.
    }

    // r1 = x mod b^9.
    let mut r1 = [0u32; Q];
    for (r, limb) in r1.iter_mut().zip(x.iter()) {
        *r = *limb;
    }
    let mut r = sub_q(&r1, &r2);
    for _ in 0..2 {
        if ge_q(&r, &L_LIMBS) {
            r = sub_q(&r, &L_LIMBS);
        }
    }

    // r < L < 2^253: limb 8 is zero.
    let mut out = [0u8; 32];
    for (chunk, limb) in out.chunks_exact_mut(4).zip(r.iter()) {
        chunk.copy_from_slice(&limb.to_le_bytes());
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    extern crate std;

    use curve25519_dalek::{
        constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION},
        edwards::CompressedEdwardsY,
        scalar::Scalar,
    };
    use rand::{RngCore, rngs::OsRng};
    use std::{vec, vec::Vec};

    use super::*;

    const P_BYTES: [u8; 32] = {
        let mut p = [0xff; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        p
    };

    fn add_p(y: &[u8; 32]) -> Option<[u8; 32]> {
        // y + p as a 256-bit little-endian integer; None when ≥ 2^255.
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let t = u16::from(y[i]) + u16::from(P_BYTES[i]) + carry;
            out[i] = t as u8;
            carry = t >> 8;
        }
        (carry == 0 && out[31] & 0x80 == 0).then_some(out)
    }

    #[test]
    fn constants_are_what_they_claim() {
        // L is the basepoint's order; B is the basepoint.
        assert_eq!(Scalar::from_bytes_mod_order(L), Scalar::ZERO, "L ≡ 0 mod L");
        assert!(bool::from(Scalar::from_canonical_bytes(L).is_none()));
        assert_eq!(BASEPOINT, ED25519_BASEPOINT_POINT.compress().to_bytes());
        // µ·L ≤ 2^512 < (µ + 1)·L: check through the reduction of 2^512 − 1.
        assert_eq!(
            reduce_wide(&[0xff; 64]),
            Scalar::from_bytes_mod_order_wide(&[0xff; 64]).to_bytes()
        );
        let mut l_bytes = [0u8; 36];
        l_bytes[..32].copy_from_slice(&L);
        assert_eq!(limbs_from_le::<Q>(&l_bytes), L_LIMBS);
    }

    #[test]
    fn small_order_table_is_exact() {
        // Every encoding of every 8-torsion point: y and (when y + p < 2^255)
        // y + p, with both sign bits. Each decompresses (or not) to a point;
        // `is_small_order_encoding` must be true exactly for those that
        // decompress to a small-order point.
        let mut small = std::collections::BTreeSet::new();
        for t in EIGHT_TORSION {
            let canonical = t.compress().to_bytes();
            let mut y = canonical;
            y[31] &= 0x7f;
            let mut ys = vec![y];
            ys.extend(add_p(&y));
            for y in ys {
                for sign in [0u8, 0x80] {
                    let mut enc = y;
                    enc[31] |= sign;
                    let point = CompressedEdwardsY(enc).decompress();
                    let is_small = point.is_some_and(|p| p.is_small_order());
                    assert!(
                        is_small,
                        "{enc:02x?} must decompress to a small-order point"
                    );
                    assert!(is_small_order_encoding(&enc), "{enc:02x?}");
                    small.insert(enc);
                }
            }
        }
        assert_eq!(small.len(), 14, "7 y values × 2 sign bits");
        // The table is those 7 y values and nothing else.
        let ys: std::collections::BTreeSet<[u8; 32]> = small
            .iter()
            .map(|e| {
                let mut y = *e;
                y[31] &= 0x7f;
                y
            })
            .collect();
        let table: std::collections::BTreeSet<[u8; 32]> = SMALL_ORDER_Y.iter().copied().collect();
        assert_eq!(ys, table);
        // Random points and random bytes are not small order.
        for _ in 0..2_000 {
            let mut bytes = [0u8; 32];
            OsRng.fill_bytes(&mut bytes);
            let expected = CompressedEdwardsY(bytes)
                .decompress()
                .is_some_and(|p| p.is_small_order());
            assert_eq!(is_small_order_encoding(&bytes), expected, "{bytes:02x?}");
            let point = ED25519_BASEPOINT_POINT * Scalar::from_bytes_mod_order(bytes);
            let enc = point.compress().to_bytes();
            assert_eq!(
                is_small_order_encoding(&enc),
                point.is_small_order(),
                "{enc:02x?}"
            );
        }
    }

    #[test]
    fn reduce_wide_matches_dalek_on_random_and_extreme_inputs() {
        let mut inputs: Vec<[u8; 64]> = vec![[0; 64], [0xff; 64]];
        // L, L − 1, L + 1, 2L, L², b^k boundaries, single bits.
        let mut l = [0u8; 64];
        l[..32].copy_from_slice(&L);
        inputs.push(l);
        let mut l_minus_1 = l;
        l_minus_1[0] -= 1;
        inputs.push(l_minus_1);
        let mut l_plus_1 = l;
        l_plus_1[0] += 1;
        inputs.push(l_plus_1);
        for bit in 0..512 {
            let mut x = [0u8; 64];
            x[bit / 8] = 1 << (bit % 8);
            inputs.push(x);
            let mut y = [0xff; 64];
            y[bit / 8] &= !(1 << (bit % 8));
            inputs.push(y);
        }
        for limb in 0..16 {
            let mut x = [0u8; 64];
            x[limb * 4..limb * 4 + 4].fill(0xff);
            inputs.push(x);
        }
        // Multiples of L near the top: q·L for q = 2^259 ± small.
        for q in [1u64, 2, 3, 7, 8, 255, u64::MAX] {
            let mut x = [0u8; 64];
            // x = q·L computed by schoolbook on bytes.
            let mut carry = 0u128;
            for (i, byte) in x.iter_mut().enumerate() {
                let li = if i < 32 { u128::from(L[i]) } else { 0 };
                let t = li * u128::from(q) + carry;
                *byte = t as u8;
                carry = t >> 8;
            }
            inputs.push(x);
        }
        for _ in 0..20_000 {
            let mut x = [0u8; 64];
            OsRng.fill_bytes(&mut x);
            inputs.push(x);
            // Sparse and dense variants.
            let mut y = x;
            y[32..].fill(0xff);
            inputs.push(y);
            let mut z = x;
            z[..32].fill(0);
            inputs.push(z);
        }
        for x in &inputs {
            assert_eq!(
                reduce_wide(x),
                Scalar::from_bytes_mod_order_wide(x).to_bytes(),
                "{x:02x?}"
            );
        }
    }

    #[test]
    fn canonical_scalar_is_below_l() {
        assert!(is_canonical_scalar(&[0; 32]));
        let mut l_minus_1 = L;
        l_minus_1[0] -= 1;
        assert!(is_canonical_scalar(&l_minus_1));
        assert!(!is_canonical_scalar(&L));
        let mut l_plus_1 = L;
        l_plus_1[0] += 1;
        assert!(!is_canonical_scalar(&l_plus_1));
        assert!(!is_canonical_scalar(&[0xff; 32]));
        for _ in 0..10_000 {
            let mut s = [0u8; 32];
            OsRng.fill_bytes(&mut s);
            s[31] &= 0x1f; // around L: 2^253 > L > 2^252
            assert_eq!(
                is_canonical_scalar(&s),
                bool::from(Scalar::from_canonical_bytes(s).is_some()),
                "{s:02x?}"
            );
        }
    }

    #[test]
    fn negated_encoding_decompresses_to_the_negated_point() {
        for _ in 0..2_000 {
            let mut wide = [0u8; 64];
            OsRng.fill_bytes(&mut wide);
            let p = ED25519_BASEPOINT_POINT * Scalar::from_bytes_mod_order_wide(&wide)
                + EIGHT_TORSION[usize::from(wide[0] % 8)];
            let enc = p.compress().to_bytes();
            let neg = CompressedEdwardsY(negate_encoding(&enc))
                .decompress()
                .unwrap();
            assert_eq!(neg, -p);
        }
        // Non-canonical y (≥ p) keeps its value; only x changes sign.
        let mut found = 0;
        for y in 2u8..=18 {
            let mut nc = P_BYTES;
            nc[0] = 0xed + y; // y + p
            if let Some(p) = CompressedEdwardsY(nc).decompress() {
                let neg = CompressedEdwardsY(negate_encoding(&nc))
                    .decompress()
                    .unwrap();
                assert_eq!(neg, -p);
                found += 1;
            }
        }
        assert!(found > 0);
    }

    #[test]
    fn challenge_is_sha512_mod_l() {
        use sha2::Digest;
        let r = [7u8; 32];
        let a = [9u8; 32];
        let m = b"paychan";
        let mut h = sha2::Sha512::new();
        h.update(r);
        h.update(a);
        h.update(m);
        let expected = Scalar::from_hash(h).to_bytes();
        assert_eq!(challenge(&r, &a, m), expected);
    }
}
