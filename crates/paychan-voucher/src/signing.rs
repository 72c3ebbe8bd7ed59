//! Off-chain signing and strict verification (feature `std`).
//!
//! Verification always uses ed25519-dalek's `verify_strict`, which is what the
//! runtime's precompile uses: plain `verify` and batch verification accept
//! signatures the precompile rejects, i.e. vouchers that could never settle.

use alloc::vec::Vec;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::ed25519::{Ed25519Entry, ed25519_instruction_data};
use crate::error::{Ed25519LayoutError, VoucherError};
use crate::v1::{VOUCHER_V1_LEN, VoucherV1};
use crate::v2::encode_v2;

/// A v1 voucher with its signer and Ed25519 signature over `voucher.encode()`.
///
/// Constructing one does not verify anything: call [`SignedVoucher::verify_strict`]
/// (or [`SignedVoucher::verify_strict_with`]) before trusting it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedVoucher {
    /// The voucher.
    pub voucher: VoucherV1,
    /// The signer's Ed25519 public key.
    pub signer: [u8; 32],
    /// Signature over the 50-byte encoding of `voucher`.
    pub signature: [u8; 64],
}

/// Signs a v1 voucher.
#[must_use]
pub fn sign_v1(key: &SigningKey, voucher: &VoucherV1) -> SignedVoucher {
    SignedVoucher {
        voucher: *voucher,
        signer: key.verifying_key().to_bytes(),
        signature: key.sign(&voucher.encode()).to_bytes(),
    }
}

impl SignedVoucher {
    /// Decompresses `signer` and checks the signature with `verify_strict`.
    ///
    /// Errors: [`VoucherError::InvalidSigner`] when `signer` is not a point,
    /// [`VoucherError::BadSignature`] otherwise (including small-order signers,
    /// which `verify_strict` refuses).
    pub fn verify_strict(&self) -> Result<(), VoucherError> {
        let key =
            VerifyingKey::from_bytes(&self.signer).map_err(|_| VoucherError::InvalidSigner)?;
        self.verify_strict_with(&key)
    }

    /// Like [`verify_strict`](Self::verify_strict) with a key the caller decoded
    /// (and cached) already. Fails with [`VoucherError::SignerMismatch`] when the
    /// key is not `signer`.
    pub fn verify_strict_with(&self, key: &VerifyingKey) -> Result<(), VoucherError> {
        if key.as_bytes() != &self.signer {
            return Err(VoucherError::SignerMismatch);
        }
        key.verify_strict(
            &self.voucher.encode(),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| VoucherError::BadSignature)
    }

    /// The precompile record for this voucher; `message` must be
    /// `self.voucher.encode()` (kept by the caller so the entry can borrow it).
    #[must_use]
    pub fn ed25519_entry<'a>(&'a self, message: &'a [u8; VOUCHER_V1_LEN]) -> Ed25519Entry<'a> {
        Ed25519Entry {
            pubkey: &self.signer,
            signature: &self.signature,
            message,
        }
    }
}

/// Precompile instruction data (canonical layout) verifying every voucher, in
/// order. 1..=8 vouchers.
pub fn ed25519_instruction_data_v1(
    vouchers: &[SignedVoucher],
) -> Result<Vec<u8>, Ed25519LayoutError> {
    let messages: Vec<[u8; VOUCHER_V1_LEN]> = vouchers.iter().map(|v| v.voucher.encode()).collect();
    let entries: Vec<Ed25519Entry<'_>> = vouchers
        .iter()
        .zip(&messages)
        .map(|(v, m)| v.ed25519_entry(m))
        .collect();
    ed25519_instruction_data(&entries)
}

/// Encodes a v2 voucher (see [`encode_v2`]) and signs it. Returns the message
/// (the encoded voucher) and the signature.
pub fn sign_v2(
    key: &SigningKey,
    expires_at: i64,
    channels_hash: &[u8; 32],
    cumulatives: &[u64],
) -> Result<(Vec<u8>, [u8; 64]), VoucherError> {
    let message = encode_v2(expires_at, channels_hash, cumulatives)?;
    let signature = key.sign(&message).to_bytes();
    Ok((message, signature))
}

/// Strictly verifies `signature` over an arbitrary `message` (e.g. a v2 voucher)
/// by `signer`. Same errors as [`SignedVoucher::verify_strict`].
pub fn verify_strict_message(
    signer: &[u8; 32],
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), VoucherError> {
    let key = VerifyingKey::from_bytes(signer).map_err(|_| VoucherError::InvalidSigner)?;
    key.verify_strict(message, &Signature::from_bytes(signature))
        .map_err(|_| VoucherError::BadSignature)
}

/// `true` when the key is a weak (small-order) point, not a valid point, or a
/// non-canonical encoding of a point. Servers must refuse such voucher signers
/// (a channel opened with one can never settle under `verify_strict`, or its
/// signatures are not bound to a unique key).
#[must_use]
pub fn is_weak_signer(key_bytes: &[u8; 32]) -> bool {
    match VerifyingKey::from_bytes(key_bytes) {
        Err(_) => true,
        Ok(key) => key.is_weak() || key.to_edwards().compress().as_bytes() != key_bytes,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::ed25519::parse_ed25519_instruction_data;
    use crate::v2::{VoucherV2Ref, channels_hash};

    fn voucher() -> VoucherV1 {
        VoucherV1 {
            channel_id: [0x42; 32],
            cumulative_amount: 1_000_000,
            expires_at: 1_700_000_000,
        }
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn sign_then_verify_strict() {
        let k = key(1);
        let s = sign_v1(&k, &voucher());
        assert_eq!(s.signer, k.verifying_key().to_bytes());
        assert_eq!(s.voucher, voucher());
        assert_eq!(s.verify_strict(), Ok(()));
        assert_eq!(s.verify_strict_with(&k.verifying_key()), Ok(()));
        // Random key from the OS RNG too.
        let r = SigningKey::generate(&mut rand::rngs::OsRng);
        assert_eq!(sign_v1(&r, &voucher()).verify_strict(), Ok(()));
    }

    #[test]
    fn tampered_voucher_or_signature_fails() {
        let s = sign_v1(&key(1), &voucher());
        let mut t = s;
        t.voucher.cumulative_amount += 1;
        assert_eq!(t.verify_strict(), Err(VoucherError::BadSignature));
        let mut t = s;
        t.voucher.expires_at = 0;
        assert_eq!(t.verify_strict(), Err(VoucherError::BadSignature));
        let mut t = s;
        t.voucher.channel_id[31] ^= 1;
        assert_eq!(t.verify_strict(), Err(VoucherError::BadSignature));
        let mut t = s;
        t.signature[0] ^= 1;
        assert_eq!(t.verify_strict(), Err(VoucherError::BadSignature));
        let mut t = s;
        t.signature[63] ^= 0x10;
        assert_eq!(t.verify_strict(), Err(VoucherError::BadSignature));
    }

    #[test]
    fn other_signer_fails() {
        let s = sign_v1(&key(1), &voucher());
        let other = key(2).verifying_key();
        // Claiming another signer: bad signature.
        let mut t = s;
        t.signer = other.to_bytes();
        assert_eq!(t.verify_strict(), Err(VoucherError::BadSignature));
        // Cached key that is not the signer: refused before verifying.
        assert_eq!(
            s.verify_strict_with(&other),
            Err(VoucherError::SignerMismatch)
        );
        // Invalid point as signer.
        let mut t = s;
        t.signer = [0xFF; 32];
        t.signer[31] = 0x7F;
        if VerifyingKey::from_bytes(&t.signer).is_err() {
            assert_eq!(t.verify_strict(), Err(VoucherError::InvalidSigner));
        }
    }

    #[test]
    fn identity_signer_is_refused() {
        // Identity point as signer with the trivially "valid" signature R = identity, S = 0
        // that non-strict verification accepts for any message.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut sig = [0u8; 64];
        sig[0] = 1;
        let s = SignedVoucher {
            voucher: voucher(),
            signer: identity,
            signature: sig,
        };
        assert_eq!(s.verify_strict(), Err(VoucherError::BadSignature));
    }

    #[test]
    fn weak_signers() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(is_weak_signer(&identity));
        assert!(is_weak_signer(&[0u8; 32]));
        // Non-canonical encoding of the identity (y = p + 1).
        let mut non_canonical = [0xFFu8; 32];
        non_canonical[0] = 0xEE;
        non_canonical[31] = 0x7F;
        assert!(is_weak_signer(&non_canonical));
        // Non-canonical encodings (y = p + k) of points that are not small-order:
        // decompressible, not `is_weak()`, but refused.
        let mut found = 0;
        for k in 2u8..19 {
            let mut bytes = [0xFFu8; 32];
            bytes[0] = 0xED + k;
            bytes[31] = 0x7F;
            if let Ok(vk) = VerifyingKey::from_bytes(&bytes)
                && !vk.is_weak()
            {
                found += 1;
                assert!(is_weak_signer(&bytes));
            }
        }
        assert!(found > 0);
        assert!(!is_weak_signer(&key(1).verifying_key().to_bytes()));
        assert!(!is_weak_signer(
            &SigningKey::generate(&mut rand::rngs::OsRng)
                .verifying_key()
                .to_bytes()
        ));
    }

    #[test]
    fn instruction_data_for_signed_vouchers_verifies() {
        let signed: Vec<SignedVoucher> = (1..=8u8)
            .map(|i| {
                let mut v = voucher();
                v.channel_id = [i; 32];
                v.cumulative_amount = u64::from(i) * 10;
                sign_v1(&key(i), &v)
            })
            .collect();
        let data = ed25519_instruction_data_v1(&signed).unwrap();
        let parsed = parse_ed25519_instruction_data(&data, 8, VOUCHER_V1_LEN).unwrap();
        for (rec, s) in parsed.iter().zip(&signed) {
            assert_eq!(rec.pubkey, &s.signer);
            assert_eq!(VoucherV1::decode(rec.message), Ok(s.voucher));
            verify_strict_message(rec.pubkey, rec.message, rec.signature).unwrap();
        }
        assert_eq!(
            ed25519_instruction_data_v1(&[]),
            Err(Ed25519LayoutError::NoSignatures)
        );
        let nine = [signed[0]; 9];
        assert_eq!(
            ed25519_instruction_data_v1(&nine),
            Err(Ed25519LayoutError::TooManySignatures { count: 9 })
        );
        let msg = signed[0].voucher.encode();
        let entry = signed[0].ed25519_entry(&msg);
        assert_eq!(entry.message, &msg[..]);
        assert_eq!(entry.signature, &signed[0].signature);
    }

    #[test]
    fn sign_v2_verifies() {
        let k = key(3);
        let a = [1u8; 32];
        let b = [2u8; 32];
        let h = channels_hash(&[5; 32], &[&a, &b]).unwrap();
        let (msg, sig) = sign_v2(&k, 0, &h, &[10, 20]).unwrap();
        let v = VoucherV2Ref::decode(&msg).unwrap();
        assert_eq!(v.channels_hash(), &h);
        assert_eq!(v.cumulatives().collect::<Vec<_>>(), [10, 20]);
        let pk = k.verifying_key().to_bytes();
        assert_eq!(verify_strict_message(&pk, &msg, &sig), Ok(()));
        let mut bad = msg.clone();
        bad[43] ^= 1;
        assert_eq!(
            verify_strict_message(&pk, &bad, &sig),
            Err(VoucherError::BadSignature)
        );
        assert_eq!(sign_v2(&k, 0, &h, &[]), Err(VoucherError::BadCount));
    }
}
