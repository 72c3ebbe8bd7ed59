//! What the verifier knows about a channel: a snapshot of its on-chain
//! account, decoded with the program's own types, with the voucher signer's
//! key decompressed once.
use std::{collections::HashMap, future::Future, sync::Arc};

use anchor_lang::{Discriminator, prelude::Pubkey};
use ed25519_dalek::VerifyingKey;
use parking_lot::RwLock;
use paychan::state::{Channel, ChannelStatus};
use paychan_voucher::is_weak_signer;

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
    /// The voucher signer, decompressed once.
    pub signer: VerifyingKey,
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
        let (disc, body) = data
            .split_at_checked(Channel::DISCRIMINATOR.len())
            .ok_or(SnapshotError::NotAChannel)?;
        if disc != Channel::DISCRIMINATOR || body.len() != Channel::LEN {
            return Err(SnapshotError::NotAChannel);
        }
        let channel: Channel =
            bytemuck::try_pod_read_unaligned(body).map_err(|_| SnapshotError::NotAChannel)?;
        let status =
            ChannelStatus::from_u8(channel.status).map_err(|_| SnapshotError::BadStatus)?;
        let key_bytes = channel.authorized_signer.to_bytes();
        if is_weak_signer(&key_bytes) {
            return Err(SnapshotError::WeakSigner);
        }
        let signer = VerifyingKey::from_bytes(&key_bytes).map_err(|_| SnapshotError::WeakSigner)?;
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
            signer,
            deposit: channel.deposit,
            settled: channel.settled,
            status,
            grace_period: channel.grace_period,
            grace_ends_at,
        })
    }
}

/// Where snapshots come from. `get` is the hot path (memory only); `load`
/// is called on a miss (first sight) and may go to the chain.
pub trait ChannelSource: Send + Sync {
    /// The cached snapshot, if any.
    fn get(&self, channel: &Pubkey) -> Option<Arc<ChannelSnapshot>>;

    /// Loads a snapshot that is not cached yet; `Ok(None)` when the channel
    /// does not exist.
    fn load(
        &self,
        channel: &Pubkey,
    ) -> impl Future<Output = Result<Option<Arc<ChannelSnapshot>>, String>> + Send {
        let cached = self.get(channel);
        async move { Ok(cached) }
    }
}

/// Snapshots held in memory, fed by the caller (tests, or an updater task).
#[derive(Debug, Default)]
pub struct MemoryChannels {
    map: RwLock<HashMap<Pubkey, Arc<ChannelSnapshot>>>,
}

impl MemoryChannels {
    /// Inserts or replaces a snapshot.
    pub fn upsert(&self, snapshot: ChannelSnapshot) {
        self.map
            .write()
            .insert(snapshot.address, Arc::new(snapshot));
    }

    /// Forgets a channel.
    pub fn remove(&self, channel: &Pubkey) {
        self.map.write().remove(channel);
    }

    /// The channels held.
    pub fn keys(&self) -> Vec<Pubkey> {
        self.map.read().keys().copied().collect()
    }

    /// Number of channels held.
    pub fn len(&self) -> usize {
        self.map.read().len()
    }

    /// Whether no channel is held.
    pub fn is_empty(&self) -> bool {
        self.map.read().is_empty()
    }
}

impl ChannelSource for MemoryChannels {
    fn get(&self, channel: &Pubkey) -> Option<Arc<ChannelSnapshot>> {
        self.map.read().get(channel).cloned()
    }
}

impl<T: ChannelSource> ChannelSource for Arc<T> {
    fn get(&self, channel: &Pubkey) -> Option<Arc<ChannelSnapshot>> {
        (**self).get(channel)
    }

    fn load(
        &self,
        channel: &Pubkey,
    ) -> impl Future<Output = Result<Option<Arc<ChannelSnapshot>>, String>> + Send {
        (**self).load(channel)
    }
}
