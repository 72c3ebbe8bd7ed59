//! Channel snapshots from a Solana RPC node.
//!
//! A channel is fetched over RPC on first sight and cached. The cache is kept
//! fresh by one websocket `programSubscribe` over this payee's channels
//! (filtered by size and payee), and by polling every tracked channel with
//! `getMultipleAccounts` as a fallback for missed or late notifications. The
//! hot path ([`ChannelSource::get`]) only reads the in-memory cache; a server
//! never trusts channel data sent by a client.
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anchor_lang::{Discriminator, prelude::Pubkey};
use futures_util::StreamExt;
use paychan::state::Channel;
use solana_account_decoder_client_types::UiAccountEncoding;
use solana_commitment_config::CommitmentConfig;
use solana_pubsub_client::nonblocking::pubsub_client::PubsubClient;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_rpc_client_types::{
    config::{RpcAccountInfoConfig, RpcProgramAccountsConfig},
    filter::{Memcmp, RpcFilterType},
};

use crate::snapshot::{ChannelSnapshot, ChannelSource, MemoryChannels};

/// Offset of `payee` in a channel account (discriminator 8 + payer 32).
const PAYEE_OFFSET: usize = 8 + 32;
/// Most accounts per `getMultipleAccounts` call.
const MULTIPLE_ACCOUNTS_CHUNK: usize = 100;

/// Snapshots of one payee's channels, loaded and refreshed over RPC.
pub struct RpcChannels {
    rpc: RpcClient,
    program_id: Pubkey,
    payee: Pubkey,
    cache: MemoryChannels,
    /// When each cached channel was last re-read on demand ([`ChannelSource::load`]).
    reloaded: parking_lot::Mutex<HashMap<Pubkey, Instant>>,
}

/// A cached channel is re-read on demand at most this often (a payer sending
/// vouchers above its deposit cannot turn each request into an RPC call).
pub const RELOAD_INTERVAL: Duration = Duration::from_millis(100);
/// Bound of the on-demand re-read bookkeeping (cleared when reached).
const RELOADED_MAX: usize = 100_000;

impl std::fmt::Debug for RpcChannels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcChannels")
            .field("rpc", &self.rpc.url())
            .field("program_id", &self.program_id)
            .field("payee", &self.payee)
            .field("channels", &self.cache.len())
            .finish()
    }
}

impl RpcChannels {
    /// A source reading `rpc_url` with `confirmed` commitment.
    pub fn new(rpc_url: &str, program_id: Pubkey, payee: Pubkey) -> Self {
        Self {
            rpc: RpcClient::new_with_commitment(rpc_url.to_string(), CommitmentConfig::confirmed()),
            program_id,
            payee,
            cache: MemoryChannels::default(),
            reloaded: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// The cached snapshots.
    pub fn cache(&self) -> &MemoryChannels {
        &self.cache
    }

    /// Decodes account data into the cache; accounts that are not a channel
    /// of this program and payee are dropped from it.
    fn apply(&self, address: Pubkey, owner: &Pubkey, data: &[u8]) -> Option<ChannelSnapshot> {
        match ChannelSnapshot::from_account(address, owner, &self.program_id, data) {
            Ok(s) if s.payee == self.payee => {
                // Past `u32::MAX` channels the snapshot is served uncached.
                let _ = self.cache.upsert(s.clone());
                Some(s)
            }
            _ => {
                self.cache.remove(&address);
                None
            }
        }
    }

    /// Fetches one channel now and caches it; `Ok(None)` when it does not
    /// exist or is not a channel of this payee.
    pub async fn refresh(&self, channel: &Pubkey) -> Result<Option<ChannelSnapshot>, String> {
        let response = self
            .rpc
            .get_account_with_commitment(channel, self.rpc.commitment())
            .await
            .map_err(|e| e.to_string())?;
        Ok(match response.value {
            Some(account) => self.apply(*channel, &account.owner, &account.data),
            None => {
                self.cache.remove(channel);
                None
            }
        })
    }

    /// Re-reads every cached channel (`getMultipleAccounts`, 100 at a time).
    pub async fn poll_once(&self) -> Result<usize, String> {
        let keys = self.cache.keys();
        let mut updated = 0;
        for chunk in keys.chunks(MULTIPLE_ACCOUNTS_CHUNK) {
            let accounts = self
                .rpc
                .get_multiple_accounts(chunk)
                .await
                .map_err(|e| e.to_string())?;
            for (key, account) in chunk.iter().zip(accounts) {
                match account {
                    Some(a) => {
                        if self.apply(*key, &a.owner, &a.data).is_some() {
                            updated += 1;
                        }
                    }
                    None => self.cache.remove(key),
                }
            }
        }
        Ok(updated)
    }

    /// Keeps the cache fresh until the returned task is aborted: a websocket
    /// program subscription at `ws_url` (reconnecting with backoff) plus a
    /// poll of every cached channel every `poll_interval`.
    pub fn spawn_updater(
        self: &Arc<Self>,
        ws_url: Option<String>,
        poll_interval: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let poller = {
                let this = this.clone();
                async move {
                    let mut tick = tokio::time::interval(poll_interval);
                    loop {
                        tick.tick().await;
                        // Errors are transient (node unreachable); the next tick retries.
                        let _ = this.poll_once().await;
                    }
                }
            };
            match ws_url {
                Some(url) => {
                    tokio::join!(poller, this.subscribe_forever(url));
                }
                None => poller.await,
            }
        })
    }

    async fn subscribe_forever(&self, ws_url: String) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if self.subscribe_once(&ws_url).await.is_ok() {
                backoff = Duration::from_millis(100);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }

    async fn subscribe_once(&self, ws_url: &str) -> Result<(), String> {
        let client = PubsubClient::new(ws_url).await.map_err(|e| e.to_string())?;
        let config = RpcProgramAccountsConfig {
            filters: Some(vec![
                RpcFilterType::DataSize((Channel::DISCRIMINATOR.len() + Channel::LEN) as u64),
                RpcFilterType::Memcmp(Memcmp::new_raw_bytes(
                    PAYEE_OFFSET,
                    self.payee.to_bytes().to_vec(),
                )),
            ]),
            account_config: RpcAccountInfoConfig {
                encoding: Some(UiAccountEncoding::Base64),
                commitment: Some(self.rpc.commitment()),
                ..RpcAccountInfoConfig::default()
            },
            ..RpcProgramAccountsConfig::default()
        };
        let (mut stream, unsubscribe) = client
            .program_subscribe(&self.program_id, Some(config))
            .await
            .map_err(|e| e.to_string())?;
        // Catch up on anything that changed before the subscription existed.
        let _ = self.poll_once().await;
        while let Some(update) = stream.next().await {
            let keyed = update.value;
            let (Ok(address), Some(account)) =
                (keyed.pubkey.parse::<Pubkey>(), keyed.account.to_account())
            else {
                continue;
            };
            // Only channels the verifier has seen are tracked; others load on first sight.
            if self.cache.get(&address).is_some() {
                self.apply(address, &account.owner, &account.data);
            }
        }
        unsubscribe().await;
        Err("subscription ended".into())
    }
}

impl ChannelSource for RpcChannels {
    fn get(&self, channel: &Pubkey) -> Option<ChannelSnapshot> {
        self.cache.get(channel)
    }

    /// First sight, or a re-read asked for by the verifier (a voucher above
    /// the cached deposit): fetched now, but a cached channel at most once
    /// per [`RELOAD_INTERVAL`].
    fn load(
        &self,
        channel: &Pubkey,
    ) -> impl std::future::Future<Output = Result<Option<ChannelSnapshot>, String>> + Send {
        let cached = self.cache.get(channel);
        let throttled = cached.is_some() && {
            let mut reloaded = self.reloaded.lock();
            let now = Instant::now();
            match reloaded.get(channel) {
                Some(at) if now.duration_since(*at) < RELOAD_INTERVAL => true,
                _ => {
                    if reloaded.len() >= RELOADED_MAX {
                        reloaded.clear();
                    }
                    reloaded.insert(*channel, now);
                    false
                }
            }
        };
        async move {
            if throttled {
                Ok(cached)
            } else {
                self.refresh(channel).await
            }
        }
    }
}
