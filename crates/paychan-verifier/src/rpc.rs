//! Channel snapshots from a Solana RPC node.
//!
//! A channel is fetched over RPC on first sight and cached. The cache is kept
//! fresh by one websocket `programSubscribe` over this payee's channels
//! (filtered by size and payee; a channel opened to this payee is cached as
//! soon as it appears), and by polling every tracked channel with
//! `getMultipleAccounts` as a fallback for missed or late notifications. The
//! hot path ([`ChannelSource::get`]) only reads the in-memory cache; a server
//! never trusts channel data sent by a client.
//!
//! Requests naming channels that do not exist cannot turn into RPC traffic:
//! an address found missing is remembered for [`NEGATIVE_TTL`] (bounded,
//! [`NEGATIVE_MAX`] addresses), concurrent loads of one address share one
//! RPC call, and at most [`RpcLimits::max_loads_in_flight`] loads run at
//! once — past that a load fails at once with [`LoadError::Overloaded`]
//! (HTTP 503 with `Retry-After`).
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::{FutureExt, StreamExt, future::Shared};
use paychan_sdk::Pubkey;
use paychan_sdk::state::Channel;
use solana_account_decoder_client_types::UiAccountEncoding;
use solana_commitment_config::CommitmentConfig;
use solana_pubsub_client::nonblocking::pubsub_client::PubsubClient;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_rpc_client_types::{
    config::{RpcAccountInfoConfig, RpcProgramAccountsConfig},
    filter::{Memcmp, RpcFilterType},
};

use crate::snapshot::{ChannelSnapshot, ChannelSource, LoadError, MemoryChannels};

/// Offset of `payee` in a channel account (discriminator 8 + payer 32).
const PAYEE_OFFSET: usize = 8 + 32;
/// Most accounts per `getMultipleAccounts` call.
const MULTIPLE_ACCOUNTS_CHUNK: usize = 100;
/// A cached channel is re-read on demand at most this often (a payer sending
/// vouchers above its deposit cannot turn each request into an RPC call).
pub const RELOAD_INTERVAL: Duration = Duration::from_millis(100);
/// Bound of the on-demand re-read bookkeeping (cleared when reached).
const RELOADED_MAX: usize = 100_000;
/// How long an address found missing is answered "unknown" without RPC.
/// Short: a channel opened since is found by the subscription at once, and
/// by a load after this.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(2);
/// Addresses remembered as missing.
pub const NEGATIVE_MAX: usize = 100_000;

/// How much RPC work requests can cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RpcLimits {
    /// Channel loads running at once (distinct addresses); more fail at
    /// once with [`LoadError::Overloaded`]. Default 64.
    pub max_loads_in_flight: usize,
}

impl Default for RpcLimits {
    fn default() -> Self {
        Self {
            max_loads_in_flight: 64,
        }
    }
}

type LoadResult = Result<Option<ChannelSnapshot>, LoadError>;
type SharedLoad = Shared<futures_util::future::BoxFuture<'static, LoadResult>>;

/// The state loads share (owned by `'static` load futures).
struct Inner {
    rpc: RpcClient,
    program_id: Pubkey,
    payee: Pubkey,
    cache: MemoryChannels,
    /// Addresses found missing, and when.
    missing: quick_cache::sync::Cache<Pubkey, Instant>,
    /// Loads under way, one per address.
    inflight: parking_lot::Mutex<HashMap<Pubkey, SharedLoad>>,
    /// Permits for loads under way.
    permits: Arc<tokio::sync::Semaphore>,
    /// RPC account reads done for loads (tests and metrics).
    rpc_loads: std::sync::atomic::AtomicU64,
}

/// Snapshots of one payee's channels, loaded and refreshed over RPC.
pub struct RpcChannels {
    inner: Arc<Inner>,
    /// When each cached channel was last re-read on demand ([`ChannelSource::load`]).
    reloaded: parking_lot::Mutex<HashMap<Pubkey, Instant>>,
}

impl std::fmt::Debug for RpcChannels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcChannels")
            .field("rpc", &crate::redact::url(&self.inner.rpc.url()))
            .field("program_id", &self.inner.program_id)
            .field("payee", &self.inner.payee)
            .field("channels", &self.inner.cache.len())
            .finish()
    }
}

impl Inner {
    /// Decodes account data into the cache; accounts that are not a channel
    /// of this program and payee are dropped from it.
    fn apply(&self, address: Pubkey, owner: &Pubkey, data: &[u8]) -> Option<ChannelSnapshot> {
        match ChannelSnapshot::from_account(address, owner, &self.program_id, data) {
            Ok(s) if s.payee == self.payee => {
                self.missing.remove(&address);
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
    /// exist or is not a channel of this payee (then remembered as missing).
    async fn fetch(&self, channel: &Pubkey) -> Result<Option<ChannelSnapshot>, String> {
        self.rpc_loads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let response = self
            .rpc
            .get_account_with_commitment(channel, self.rpc.commitment())
            .await
            .map_err(|e| crate::redact::text(&e.to_string()))?;
        let found = match response.value {
            Some(account) => self.apply(*channel, &account.owner, &account.data),
            None => {
                self.cache.remove(channel);
                None
            }
        };
        if found.is_none() {
            self.missing.insert(*channel, Instant::now());
        }
        Ok(found)
    }

    fn known_missing(&self, channel: &Pubkey) -> bool {
        self.missing
            .get(channel)
            .is_some_and(|at| at.elapsed() < NEGATIVE_TTL)
    }
}

impl RpcChannels {
    /// A source reading `rpc_url` with `confirmed` commitment and the
    /// default [`RpcLimits`].
    pub fn new(rpc_url: &str, program_id: Pubkey, payee: Pubkey) -> Self {
        Self::with_limits(rpc_url, program_id, payee, RpcLimits::default())
    }

    /// A source reading `rpc_url` with `confirmed` commitment.
    pub fn with_limits(
        rpc_url: &str,
        program_id: Pubkey,
        payee: Pubkey,
        limits: RpcLimits,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                rpc: RpcClient::new_with_commitment(
                    rpc_url.to_string(),
                    CommitmentConfig::confirmed(),
                ),
                program_id,
                payee,
                cache: MemoryChannels::default(),
                missing: quick_cache::sync::Cache::new(NEGATIVE_MAX),
                inflight: parking_lot::Mutex::new(HashMap::new()),
                permits: Arc::new(tokio::sync::Semaphore::new(
                    limits.max_loads_in_flight.max(1),
                )),
                rpc_loads: std::sync::atomic::AtomicU64::new(0),
            }),
            reloaded: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// The cached snapshots.
    pub fn cache(&self) -> &MemoryChannels {
        &self.inner.cache
    }

    /// RPC account reads made to load channels on demand so far.
    pub fn rpc_loads(&self) -> u64 {
        self.inner
            .rpc_loads
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Fetches one channel now and caches it; `Ok(None)` when it does not
    /// exist or is not a channel of this payee.
    pub async fn refresh(&self, channel: &Pubkey) -> Result<Option<ChannelSnapshot>, String> {
        self.inner.fetch(channel).await
    }

    /// Re-reads every cached channel (`getMultipleAccounts`, 100 at a time).
    pub async fn poll_once(&self) -> Result<usize, String> {
        let keys = self.inner.cache.keys();
        let mut updated = 0;
        for chunk in keys.chunks(MULTIPLE_ACCOUNTS_CHUNK) {
            let accounts = self
                .inner
                .rpc
                .get_multiple_accounts(chunk)
                .await
                .map_err(|e| crate::redact::text(&e.to_string()))?;
            for (key, account) in chunk.iter().zip(accounts) {
                match account {
                    Some(a) => {
                        if self.inner.apply(*key, &a.owner, &a.data).is_some() {
                            updated += 1;
                        }
                    }
                    None => self.inner.cache.remove(key),
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
        let client = PubsubClient::new(ws_url)
            .await
            .map_err(|e| crate::redact::text(&e.to_string()))?;
        let config = RpcProgramAccountsConfig {
            filters: Some(vec![
                RpcFilterType::DataSize(Channel::SIZE as u64),
                RpcFilterType::Memcmp(Memcmp::new_raw_bytes(
                    PAYEE_OFFSET,
                    self.inner.payee.to_bytes().to_vec(),
                )),
            ]),
            account_config: RpcAccountInfoConfig {
                encoding: Some(UiAccountEncoding::Base64),
                commitment: Some(self.inner.rpc.commitment()),
                ..RpcAccountInfoConfig::default()
            },
            ..RpcProgramAccountsConfig::default()
        };
        let (mut stream, unsubscribe) = client
            .program_subscribe(&self.inner.program_id, Some(config))
            .await
            .map_err(|e| crate::redact::text(&e.to_string()))?;
        // Catch up on anything that changed before the subscription existed.
        let _ = self.poll_once().await;
        while let Some(update) = stream.next().await {
            let keyed = update.value;
            let (Ok(address), Some(account)) =
                (keyed.pubkey.parse::<Pubkey>(), keyed.account.to_account())
            else {
                continue;
            };
            // Every channel of this payee (the node filters by payee): a
            // channel just opened is known before its first voucher arrives.
            self.inner.apply(address, &account.owner, &account.data);
        }
        unsubscribe().await;
        Err("subscription ended".into())
    }

    /// One load of `channel` shared by every concurrent caller; fails at
    /// once when [`RpcLimits::max_loads_in_flight`] loads are under way.
    fn shared_load(&self, channel: &Pubkey) -> Result<SharedLoad, LoadError> {
        let mut inflight = self.inner.inflight.lock();
        if let Some(load) = inflight.get(channel) {
            return Ok(load.clone());
        }
        let permit = self
            .inner
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| LoadError::Overloaded)?;
        let inner = self.inner.clone();
        let address = *channel;
        // A task of its own: the load finishes (and frees its permit and its
        // place in `inflight`) even when every request waiting on it is dropped.
        let task = tokio::spawn(async move {
            let result = inner.fetch(&address).await.map_err(LoadError::Unavailable);
            inner.inflight.lock().remove(&address);
            drop(permit);
            result
        });
        let load = async move {
            task.await
                .unwrap_or_else(|e| Err(LoadError::Unavailable(format!("channel load task: {e}"))))
        }
        .boxed()
        .shared();
        inflight.insert(*channel, load.clone());
        Ok(load)
    }
}

impl ChannelSource for RpcChannels {
    fn get(&self, channel: &Pubkey) -> Option<ChannelSnapshot> {
        self.inner.cache.get(channel)
    }

    /// First sight, or a re-read asked for by the verifier (a voucher above
    /// the cached deposit): fetched now, but a cached channel at most once
    /// per [`RELOAD_INTERVAL`] and a missing one at most once per
    /// [`NEGATIVE_TTL`].
    fn load(
        &self,
        channel: &Pubkey,
    ) -> impl std::future::Future<Output = Result<Option<ChannelSnapshot>, LoadError>> + Send {
        let cached = self.inner.cache.get(channel);
        let answer_now = match &cached {
            Some(_) => !self.claim_reload(channel),
            None => self.inner.known_missing(channel),
        };
        let load = if answer_now {
            None
        } else {
            Some(self.shared_load(channel))
        };
        async move {
            match load {
                None => Ok(cached),
                Some(Err(e)) => Err(e),
                Some(Ok(shared)) => shared.await,
            }
        }
    }

    fn may_reload(&self, channel: &Pubkey) -> bool {
        self.reloaded
            .lock()
            .get(channel)
            .is_none_or(|at| at.elapsed() >= RELOAD_INTERVAL)
    }
}

impl RpcChannels {
    /// Whether a cached channel may be re-read now; if so, records the re-read.
    fn claim_reload(&self, channel: &Pubkey) -> bool {
        let mut reloaded = self.reloaded.lock();
        let now = Instant::now();
        match reloaded.get(channel) {
            Some(at) if now.duration_since(*at) < RELOAD_INTERVAL => false,
            _ => {
                if reloaded.len() >= RELOADED_MAX {
                    reloaded.clear();
                }
                reloaded.insert(*channel, now);
                true
            }
        }
    }
}
