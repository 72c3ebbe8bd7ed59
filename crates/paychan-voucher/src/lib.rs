//! Wire formats shared by the paychan Solana program and its off-chain clients.
//!
//! * [`VoucherV1`]: the 50-byte single-channel voucher (PROTOCOL §2), signed as-is
//!   with Ed25519.
//! * [`VoucherV2Ref`] / [`encode_v2`] / [`channels_hash`]: the batch voucher that
//!   carries one cumulative target per channel of one signer, bound to the channel
//!   list through a domain-separated SHA-256.
//! * [`ed25519_instruction_data`] / [`parse_ed25519_instruction_data`]: the
//!   Ed25519 precompile instruction (PROTOCOL §3) in one canonical layout. The parser
//!   is strict: it accepts exactly what the builder produces and nothing else, so a
//!   program reading the precompile instruction through the Instructions sysvar
//!   can trust that every record it returns was verified by the runtime *in that
//!   same instruction*.
//! * [`strict::verify_strict`]: Ed25519 verification with exactly the rules of
//!   ed25519-dalek 2.x's `verify_strict`, computed with the curve25519 syscalls
//!   and SHA-512 on chain (no precompile, no per-signature fee) and with
//!   curve25519-dalek off chain — the same code.
//!
//! Everything in the default (featureless) build is `no_std` + `alloc`, never
//! panics, and reports failures through heap-free error enums
//! ([`VoucherError`], [`Ed25519LayoutError`]), so it can run inside an SBF program.
//! SHA-256 goes through `solana-sha256-hasher`, i.e. the `sol_sha256` syscall on
//! chain and the `sha2` crate elsewhere.
//!
//! # Crate features
//!
//! No feature is enabled by default.
//!
//! * `std`: off-chain signing and strict verification with `ed25519-dalek`
//!   (module `signing`: `sign_v1`, `sign_v2`, `SignedVoucher::verify_strict`,
//!   `is_weak_signer`, `ed25519_instruction_data_v1`, …), and `std::error::Error`
//!   for the error types.
//! * `serde` (implies `std`): the MPP/x402 JSON form of a signed v1 voucher
//!   (module `json`: `SignedVoucherJson`), plus `Serialize` / `Deserialize` for
//!   `SignedVoucher` through that form.
//!
//! The error enums always contain every variant (they are `#[non_exhaustive]`);
//! variants documented as "std only" / "serde only" are only ever produced by the
//! code behind those features.

#![no_std]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod ed25519;
mod error;
pub mod strict;
mod v1;
mod v2;

#[cfg(feature = "serde")]
pub mod json;
#[cfg(feature = "std")]
pub mod signing;

pub use ed25519::{
    ED25519_HEADER_LEN, ED25519_OFFSETS_LEN, ED25519_PROGRAM_ID, Ed25519Entry, Ed25519Records,
    MAX_PRECOMPILE_SIGNATURES, PUBKEY_LEN, SIGNATURE_LEN, ed25519_instruction_data,
    ed25519_instruction_len, parse_ed25519_instruction_data,
};
pub use error::{Ed25519LayoutError, VoucherError};
pub use strict::StrictError;
pub use v1::{MAGIC_V1, VOUCHER_V1_LEN, VoucherV1};
pub use v2::{
    CHANNELS_HASH_DOMAIN, MAGIC_V2, V2_HEADER_LEN, V2_MAX_CHANNELS, VoucherV2Ref, channels_hash,
    encode_v2, v2_len,
};

#[cfg(feature = "serde")]
pub use json::{FieldError, SignedVoucherJson, VoucherJson};
#[cfg(feature = "std")]
pub use signing::{
    SignedVoucher, ed25519_instruction_data_v1, is_weak_signer, sign_v1, sign_v2,
    verify_strict_message,
};
