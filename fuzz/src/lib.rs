//! The paychan fuzz harnesses, shared by the `fuzz_targets/*` binaries and
//! the `seeds` program that writes their committed corpora and
//! dictionaries. See README.md.
//!
//! Each target function returns whether the input reached the accepting
//! path (decoded, verified, served); the binaries count that
//! ([`stats`]) and print it when the run ends.

pub mod decoders;
pub mod facilitator;
pub mod fixture;
mod live;
pub mod paywall;
pub mod script;
pub mod seeds;
pub mod stats;
