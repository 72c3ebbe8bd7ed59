//! # paychan-verifier
//!
//! Decides, in microseconds, whether an HTTP request is paid by a paychan
//! voucher, and records the accepted voucher durably so the settler can put
//! it on chain. It never accepts the same value twice and never loses an
//! accepted voucher (within the durability mode's documented bound).
//!
//! ```text
//! decoded voucher ─▶ channel snapshot (in memory; RPC on first sight)
//!        ─▶ cheap rules (program, payee, mint, status, terms, expiry, deposit, increment)
//!        ─▶ verify_strict (key from a bounded cache of decompressed keys)
//!        ─▶ compare-and-swap in the store ─▶ Receipt
//! ```
//!
//! Payment headers are decoded by `paychan_x402::payment` (the one decoder,
//! shared by the paywall, the facilitator and the fuzz targets); the
//! verifier takes the decoded [`SignedVoucher`].
//!
//! ```
//! use paychan_verifier::{MemoryChannels, MemoryStore, Terms, Verifier};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let channels = MemoryChannels::default();
//! let store = MemoryStore::default();
//! let terms = Terms::new(paychan_sdk::ID, Default::default(), Default::default(), 1_000);
//! let verifier = Verifier::new(channels, store, terms);
//! // verifier.check(&signed_voucher, now_unix) → Ok(Receipt) or Err(Rejection)
//! # let _ = verifier; Ok(()) }
//! ```
//!
//! ## Crate features
//! - `redb` (default): [`store::RedbStore`], the embedded durable store.
//! - `rpc` (default): [`rpc::RpcChannels`], snapshots from a Solana RPC node
//!   (websocket program subscription + polling).
//! - `redis` (default): [`store::RedisStore`], shared by several server replicas
//!   (atomic compare-and-swap in a Lua script); its tests start `redis-server`.
#![warn(missing_docs)]

pub mod error;
pub mod redact;
#[cfg(feature = "rpc")]
pub mod rpc;
pub mod snapshot;
pub mod store;
pub mod table;
pub mod verifier;

pub use error::{CheckError, Rejection, VerifierError};
pub use snapshot::{ChannelSnapshot, ChannelSource, LoadError, MemoryChannels, SnapshotError};
pub use store::{
    AcceptFuture, AcceptOutcome, Accepted, Latest, LatestFuture, MemoryStore, StoreError,
    VoucherId, VoucherStore,
};
pub use verifier::{DEFAULT_KEY_CACHE, Receipt, Terms, Verifier};

pub use paychan_sdk::Pubkey;
pub use paychan_voucher::{SignedVoucher, VoucherV1};
