//! What the verifier knows about a channel: a snapshot of its on-chain
//! account, decoded with `paychan-sdk` (checked against the program).
//!
//! Snapshots are held compactly ([`MemoryChannels`]: 136 bytes of record per
//! channel plus ~10 of index, program/payee/mint interned); the voucher
//! signer's decompressed key lives in the verifier's bounded key cache, not
//! here, so a million tracked channels do not cost a million 192-byte keys.
use std::{collections::HashMap, future::Future, sync::Arc};

use ed25519_dalek::VerifyingKey;
use parking_lot::RwLock;
use paychan_sdk::Pubkey;
use paychan_sdk::state::{Channel, ChannelStatus};
use paychan_voucher::is_weak_signer;

use crate::table::{DenseMap, TableFull};

/// A channel as the verifier sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSnapshot {
    /// The channel PDA.
    pub address: Pubkey,
    /// Program that owns the account.
    pub program_id: Pubkey,
    /// Who pays.
    pub payer: Pubkey,
    /// Who is paid.
    pub payee: Pubkey,
    /// Escrowed mint.
    pub mint: Pubkey,
    /// The voucher signer (a valid, non-weak Ed25519 key).
    pub signer: Pubkey,
    /// Escrowed amount.
    pub deposit: u64,
    /// Settled on chain.
    pub settled: u64,
    /// Lifecycle state.
    pub status: ChannelStatus,
    /// Seconds between a close request and the earliest finalize.
    pub grace_period: i64,
    /// When a requested close can be finalized (closing channels only).
    pub grace_ends_at: Option<i64>,
}

/// Why account data is not a usable channel.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Owned by another program.
    #[error("account is owned by another program")]
    WrongOwner,
    /// Not a `Channel` account (size or discriminator).
    #[error("account is not a channel")]
    NotAChannel,
    /// The status byte is invalid.
    #[error("invalid channel status")]
    BadStatus,
    /// The voucher signer is a weak (small-order) or invalid key: vouchers
    /// it signs could never settle.
    #[error("weak voucher signer key")]
    WeakSigner,
}

impl ChannelSnapshot {
    /// Decodes a channel account owned by `program_id`.
    pub fn from_account(
        address: Pubkey,
        owner: &Pubkey,
        program_id: &Pubkey,
        data: &[u8],
    ) -> Result<Self, SnapshotError> {
        if owner != program_id {
            return Err(SnapshotError::WrongOwner);
        }
        let channel = Channel::decode(data).map_err(|_| SnapshotError::NotAChannel)?;
        let status = ChannelStatus::from_u8(channel.status).ok_or(SnapshotError::BadStatus)?;
        let key_bytes = channel.authorized_signer.to_bytes();
        if is_weak_signer(&key_bytes) {
            return Err(SnapshotError::WeakSigner);
        }
        VerifyingKey::from_bytes(&key_bytes).map_err(|_| SnapshotError::WeakSigner)?;
        let grace_ends_at = match status {
            ChannelStatus::Closing => channel.closure_started_at.checked_add(channel.grace_period),
            _ => None,
        };
        Ok(Self {
            address,
            program_id: *program_id,
            payer: channel.payer,
            payee: channel.payee,
            mint: channel.mint,
            signer: channel.authorized_signer,
            deposit: channel.deposit,
            settled: channel.settled,
            status,
            grace_period: channel.grace_period,
            grace_ends_at,
        })
    }
}

/// Why a channel could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The chain could not be read.
    #[error("{0}")]
    Unavailable(String),
    /// Too many loads are in flight; the caller should retry shortly.
    #[error("too many channel loads in flight")]
    Overloaded,
}

/// Where snapshots come from. `get` is the hot path (memory only); `load`
/// is called on a miss (first sight) and may go to the chain.
pub trait ChannelSource: Send + Sync {
    /// The cached snapshot, if any.
    fn get(&self, channel: &Pubkey) -> Option<ChannelSnapshot>;

    /// Loads a snapshot that is not cached yet (or re-reads a cached one);
    /// `Ok(None)` when the channel does not exist.
    fn load(
        &self,
        channel: &Pubkey,
    ) -> impl Future<Output = Result<Option<ChannelSnapshot>, LoadError>> + Send {
        let cached = self.get(channel);
        async move { Ok(cached) }
    }

    /// Whether [`Self::load`] would read a cached channel again now rather
    /// than answer from its cache (sources throttle re-reads). The verifier
    /// checks a voucher's signature to justify a re-read only when one would
    /// happen.
    fn may_reload(&self, _channel: &Pubkey) -> bool {
        true
    }
}

/// One channel's record in [`MemoryChannels`] (104 bytes; with its key, 136).
#[derive(Clone, Copy, Debug)]
struct Compact {
    signer: [u8; 32],
    payer: [u8; 32],
    deposit: u64,
    settled: u64,
    grace_period: i64,
    grace_ends_at: i64,
    /// Index of (program, payee, mint) in [`Tables::terms`].
    terms: u32,
    status: u8,
    has_grace_end: bool,
}

#[derive(Debug, Default)]
struct Tables {
    channels: DenseMap<Compact>,
    /// Interned (program, payee, mint) triples: a server has a handful.
    terms: Vec<[Pubkey; 3]>,
    terms_index: HashMap<[Pubkey; 3], u32>,
}

impl Tables {
    fn intern(&mut self, triple: [Pubkey; 3]) -> Result<u32, TableFull> {
        if let Some(&i) = self.terms_index.get(&triple) {
            return Ok(i);
        }
        let i = u32::try_from(self.terms.len()).map_err(|_| TableFull)?;
        self.terms.push(triple);
        self.terms_index.insert(triple, i);
        Ok(i)
    }

    fn snapshot(&self, address: &Pubkey, c: &Compact) -> Option<ChannelSnapshot> {
        let [program_id, payee, mint] = *self.terms.get(c.terms as usize)?;
        Some(ChannelSnapshot {
            address: *address,
            program_id,
            payer: Pubkey::new_from_array(c.payer),
            payee,
            mint,
            signer: Pubkey::new_from_array(c.signer),
            deposit: c.deposit,
            settled: c.settled,
            status: ChannelStatus::from_u8(c.status)?,
            grace_period: c.grace_period,
            grace_ends_at: c.has_grace_end.then_some(c.grace_ends_at),
        })
    }
}

/// Snapshots held in memory, compactly, fed by the caller (tests) or by
/// [`crate::rpc::RpcChannels`].
#[derive(Debug, Default)]
pub struct MemoryChannels {
    tables: RwLock<Tables>,
}

impl MemoryChannels {
    /// Inserts or replaces a snapshot. Fails only past `u32::MAX` channels
    /// or distinct (program, payee, mint) triples.
    pub fn upsert(&self, snapshot: ChannelSnapshot) -> Result<(), TableFull> {
        let mut tables = self.tables.write();
        let terms = tables.intern([snapshot.program_id, snapshot.payee, snapshot.mint])?;
        let record = Compact {
            signer: snapshot.signer.to_bytes(),
            payer: snapshot.payer.to_bytes(),
            deposit: snapshot.deposit,
            settled: snapshot.settled,
            grace_period: snapshot.grace_period,
            grace_ends_at: snapshot.grace_ends_at.unwrap_or_default(),
            terms,
            status: snapshot.status as u8,
            has_grace_end: snapshot.grace_ends_at.is_some(),
        };
        tables
            .channels
            .insert(snapshot.address.to_bytes(), record)?;
        Ok(())
    }

    /// Forgets a channel.
    pub fn remove(&self, channel: &Pubkey) {
        self.tables.write().channels.remove(&channel.to_bytes());
    }

    /// The channels held.
    pub fn keys(&self) -> Vec<Pubkey> {
        self.tables
            .read()
            .channels
            .iter()
            .map(|(k, _)| Pubkey::new_from_array(*k))
            .collect()
    }

    /// Number of channels held.
    pub fn len(&self) -> usize {
        self.tables.read().channels.len()
    }

    /// Whether no channel is held.
    pub fn is_empty(&self) -> bool {
        self.tables.read().channels.is_empty()
    }
}

impl ChannelSource for MemoryChannels {
    fn get(&self, channel: &Pubkey) -> Option<ChannelSnapshot> {
        let tables = self.tables.read();
        let record = tables.channels.get(&channel.to_bytes())?;
        tables.snapshot(channel, record)
    }
}

impl<T: ChannelSource> ChannelSource for Arc<T> {
    fn get(&self, channel: &Pubkey) -> Option<ChannelSnapshot> {
        (**self).get(channel)
    }

    fn load(
        &self,
        channel: &Pubkey,
    ) -> impl Future<Output = Result<Option<ChannelSnapshot>, LoadError>> + Send {
        (**self).load(channel)
    }

    fn may_reload(&self, channel: &Pubkey) -> bool {
        (**self).may_reload(channel)
    }
}
