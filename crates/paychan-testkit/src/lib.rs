//! Test fixtures shared by the workspace's test suites. A dev-dependency
//! only (never in a production build), so it fails loudly: its helpers
//! panic on any set-up error, as the tests using them would.
//!
//! - [`redis::RedisServer`]: a `redis-server` child process per test.
//! - `channels` (feature `channels`): a `Channel` account as the program
//!   stores it and vouchers signed for it.
//! - `chain` (feature `chain`): funded parties and RPC clients on the
//!   embedded chain (`paychan-localnet`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(feature = "chain")]
pub mod chain;
#[cfg(feature = "channels")]
pub mod channels;
pub mod redis;
