//! Tests of the real `paychan.so` (SBPF, built by scripts/build-sbf.sh) in
//! LiteSVM with the real SPL Token / Token-2022 programs and the Ed25519
//! precompile. One module per instruction (happy path with exact balances
//! and state, then a failing test per guard), plus attacks, a conservation
//! property test and the transaction-capacity figures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// `TxResult` is LiteSVM's result type; its error carries the full transaction metadata.
#![allow(clippy::result_large_err)]

mod common;

mod attacks;
mod capacity;
mod close;
mod conservation;
mod finalize;
mod open;
mod reclaim;
mod request_close;
mod security_review;
mod settle;
mod settle_batch;
mod settle_signed;
mod strict_vectors;
mod token2022;
mod top_up;
