//! Tests of the real `paychan.so` (SBPF, built by scripts/build-sbf.sh) in
//! LiteSVM with the real SPL Token / Token-2022 programs and the Ed25519
//! precompile. One module per instruction (happy path with exact balances
//! and state, then a failing test per guard), plus attacks, a conservation
//! property test and the transaction-capacity figures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod attacks;
mod capacity;
mod conservation;
mod open;
mod settle;
mod top_up;
