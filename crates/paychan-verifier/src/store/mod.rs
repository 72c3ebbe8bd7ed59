//! Voucher stores: the latest accepted voucher per channel, accepted by an
//! atomic compare-and-swap. The settler reads them back.
//!
//! | store | durability | shared by replicas |
//! |---|---|---|
//! | [`MemoryStore`] | none (tests) | no |
//! | [`RedbStore`] | `sync`: the answer waits for the fsync'd commit; `batched`: group commit every `interval`, an acknowledged voucher may be lost for at most `interval` + one commit | no |
//! | [`RedisStore`] (feature `redis`) | the answer waits for Redis's acknowledgement; what survives a crash is the server's AOF setting (`appendfsync always`: everything acknowledged; `everysec`: all but about the last two seconds on a host crash); replication is asynchronous | yes: the compare-and-swap is one Lua script |
use std::{collections::HashMap, future::Future};

use parking_lot::Mutex;
use paychan_sdk::Pubkey;
use paychan_voucher::{SignedVoucher, VOUCHER_V1_LEN, VoucherV1};

#[cfg(feature = "redb")]
mod redb_store;
#[cfg(feature = "redb")]
pub use redb_store::{Durability, RedbStore};
#[cfg(feature = "redis")]
mod redis_store;
#[cfg(feature = "redis")]
pub use redis_store::RedisStore;

/// An accepted voucher and the cumulative amount it replaced, so a retry of
/// the same voucher gets the same receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The voucher.
    pub voucher: SignedVoucher,
    /// The cumulative amount accepted before it (or the on-chain floor).
    pub previous: u64,
}

/// Bytes of an encoded [`Accepted`]: voucher 50 + signer 32 + signature 64 + previous 8.
pub const ACCEPTED_LEN: usize = VOUCHER_V1_LEN + 32 + 64 + 8;

impl Accepted {
    /// Fixed-size encoding used by the durable stores.
    #[must_use]
    pub fn encode(&self) -> [u8; ACCEPTED_LEN] {
        let mut out = [0u8; ACCEPTED_LEN];
        out[..50].copy_from_slice(&self.voucher.voucher.encode());
        out[50..82].copy_from_slice(&self.voucher.signer);
        out[82..146].copy_from_slice(&self.voucher.signature);
        out[146..].copy_from_slice(&self.previous.to_le_bytes());
        out
    }

    /// Decodes [`Accepted::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let bad = || StoreError::Corrupt("accepted voucher record");
        if bytes.len() != ACCEPTED_LEN {
            return Err(bad());
        }
        let voucher = VoucherV1::decode(&bytes[..50]).map_err(|_| bad())?;
        let signer: [u8; 32] = bytes[50..82].try_into().map_err(|_| bad())?;
        let signature: [u8; 64] = bytes[82..146].try_into().map_err(|_| bad())?;
        let previous = u64::from_le_bytes(bytes[146..].try_into().map_err(|_| bad())?);
        Ok(Self {
            voucher: SignedVoucher {
                voucher,
                signer,
                signature,
            },
            previous,
        })
    }

    /// The channel.
    #[must_use]
    pub fn channel(&self) -> Pubkey {
        Pubkey::new_from_array(self.voucher.voucher.channel_id)
    }

    /// What a store must remember of it to decide the next voucher.
    #[must_use]
    pub fn latest(&self) -> Latest {
        Latest {
            cumulative: self.voucher.voucher.cumulative_amount,
            previous: self.previous,
            id: VoucherId::of(&self.voucher),
        }
    }
}

/// A 128-bit digest (SHA-256, truncated) of a signed voucher's bytes
/// (voucher, signer, signature): two vouchers are the same exactly when
/// their ids are, short of a SHA-256 collision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VoucherId(pub [u8; 16]);

impl VoucherId {
    /// The id of `voucher`.
    #[must_use]
    pub fn of(voucher: &SignedVoucher) -> Self {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(voucher.voucher.encode());
        h.update(voucher.signer);
        h.update(voucher.signature);
        let digest = h.finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        Self(id)
    }
}

/// The latest accepted voucher of a channel as the compare-and-swap needs
/// it (32 bytes): what a store keeps in memory per channel. The full voucher
/// stays in the store's durable records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Latest {
    /// Its cumulative amount.
    pub cumulative: u64,
    /// The cumulative amount accepted before it.
    pub previous: u64,
    /// Which voucher it is.
    pub id: VoucherId,
}

/// What a compare-and-swap did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// Stored; it pays `voucher.cumulative − previous`.
    Accepted(Accepted),
    /// This exact voucher was accepted before: an idempotent retry, charged once.
    Duplicate(Accepted),
    /// It does not add `min_increment` to the last accepted cumulative.
    Stale {
        /// The last accepted cumulative (or the on-chain floor).
        last_accepted: u64,
    },
    /// A different voucher with the same cumulative amount is already accepted.
    Conflict,
}

/// The store failed; the request must not be served as paid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed.
    #[error("backend: {0}")]
    Backend(String),
    /// Stored data does not decode.
    #[error("corrupt {0}")]
    Corrupt(&'static str),
    /// The store was shut down.
    #[error("store is shut down")]
    Closed,
}

/// The compare-and-swap rule every store applies atomically.
///
/// `floor` is the channel's on-chain settled amount: nothing at or below it
/// can be accepted again. Resending the accepted voucher itself is a
/// [`AcceptOutcome::Duplicate`]; any other voucher with its cumulative
/// amount is a [`AcceptOutcome::Conflict`].
#[must_use]
pub fn decide(
    current: Option<&Latest>,
    voucher: &SignedVoucher,
    floor: u64,
    min_increment: u64,
) -> AcceptOutcome {
    let cumulative = voucher.voucher.cumulative_amount;
    let last = current.map_or(floor, |c| c.cumulative.max(floor));
    if let Some(c) = current
        && c.cumulative == cumulative
    {
        return if c.id == VoucherId::of(voucher) {
            AcceptOutcome::Duplicate(Accepted {
                voucher: *voucher,
                previous: c.previous,
            })
        } else {
            AcceptOutcome::Conflict
        };
    }
    match last.checked_add(min_increment.max(1)) {
        Some(required) if cumulative >= required => AcceptOutcome::Accepted(Accepted {
            voucher: *voucher,
            previous: last,
        }),
        _ => AcceptOutcome::Stale {
            last_accepted: last,
        },
    }
}

/// What [`VoucherStore::accept`] returns: any `Send` future of the outcome.
pub trait AcceptFuture: Future<Output = Result<AcceptOutcome, StoreError>> + Send {}

impl<F: Future<Output = Result<AcceptOutcome, StoreError>> + Send> AcceptFuture for F {}

/// What [`VoucherStore::fetch_latest`] returns: any `Send` future of the
/// latest accepted voucher.
pub trait LatestFuture: Future<Output = Result<Option<Accepted>, StoreError>> + Send {}

impl<F: Future<Output = Result<Option<Accepted>, StoreError>> + Send> LatestFuture for F {}

/// A voucher store.
pub trait VoucherStore: Send + Sync {
    /// Atomically applies [`decide`] and stores the voucher when accepted.
    /// Returns only once the store's durability mode is satisfied.
    fn accept(&self, voucher: &SignedVoucher, floor: u64, min_increment: u64) -> impl AcceptFuture;

    /// The latest accepted voucher of a channel. May block on I/O: request
    /// paths call [`Self::fetch_latest`].
    fn latest(&self, channel: &Pubkey) -> Result<Option<Accepted>, StoreError>;

    /// [`Self::latest`] for async callers on a request path (a facilitator's
    /// `/verify`): stores that read over the network answer without
    /// blocking the caller's thread.
    fn fetch_latest(&self, channel: &Pubkey) -> impl LatestFuture {
        std::future::ready(self.latest(channel))
    }

    /// What this process holds in memory of the latest accepted voucher,
    /// without I/O (the verifier's cheap pre-check). A store shared with
    /// other processes returns the latest voucher *it* accepted or saw as a
    /// duplicate (cumulative amounts only grow, so this is a floor of the
    /// shared state and refuses only what the shared store would refuse),
    /// or `None`.
    fn cached(&self, _channel: &Pubkey) -> Option<Latest> {
        None
    }

    /// The latest accepted voucher of every channel (for the settler).
    fn all_latest(&self) -> Result<Vec<Accepted>, StoreError>;
}

/// In-memory store (tests, single-process demos without durability).
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: Mutex<HashMap<Pubkey, (Accepted, Latest)>>,
}

impl MemoryStore {
    /// The synchronous compare-and-swap.
    pub fn accept_now(
        &self,
        voucher: &SignedVoucher,
        floor: u64,
        min_increment: u64,
    ) -> AcceptOutcome {
        let channel = Pubkey::new_from_array(voucher.voucher.channel_id);
        let mut map = self.map.lock();
        let outcome = decide(
            map.get(&channel).map(|(_, l)| l),
            voucher,
            floor,
            min_increment,
        );
        if let AcceptOutcome::Accepted(a) = outcome {
            map.insert(channel, (a, a.latest()));
        }
        outcome
    }
}

impl VoucherStore for MemoryStore {
    fn accept(&self, voucher: &SignedVoucher, floor: u64, min_increment: u64) -> impl AcceptFuture {
        let outcome = self.accept_now(voucher, floor, min_increment);
        std::future::ready(Ok(outcome))
    }

    fn latest(&self, channel: &Pubkey) -> Result<Option<Accepted>, StoreError> {
        Ok(self.map.lock().get(channel).map(|(a, _)| *a))
    }

    fn cached(&self, channel: &Pubkey) -> Option<Latest> {
        self.map.lock().get(channel).map(|(_, l)| *l)
    }

    fn all_latest(&self) -> Result<Vec<Accepted>, StoreError> {
        Ok(self.map.lock().values().map(|(a, _)| *a).collect())
    }
}

impl<T: VoucherStore> VoucherStore for std::sync::Arc<T> {
    fn accept(&self, voucher: &SignedVoucher, floor: u64, min_increment: u64) -> impl AcceptFuture {
        (**self).accept(voucher, floor, min_increment)
    }

    fn latest(&self, channel: &Pubkey) -> Result<Option<Accepted>, StoreError> {
        (**self).latest(channel)
    }

    fn fetch_latest(&self, channel: &Pubkey) -> impl LatestFuture {
        (**self).fetch_latest(channel)
    }

    fn cached(&self, channel: &Pubkey) -> Option<Latest> {
        (**self).cached(channel)
    }

    fn all_latest(&self) -> Result<Vec<Accepted>, StoreError> {
        (**self).all_latest()
    }
}
