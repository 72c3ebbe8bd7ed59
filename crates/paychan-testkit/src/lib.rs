//! Test fixtures shared by the workspace's test suites. A dev-dependency
//! only (never in a production build), so it fails loudly: its helpers
//! panic on any set-up error, as the tests using them would.
//!
//! - [`redis::RedisServer`]: a `redis-server` child process per test.
//! - `chain` (feature `chain`): funded parties and RPC clients on the
//!   embedded chain (`paychan-localnet`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(feature = "chain")]
pub mod chain;
pub mod redis;
