//! The paying client: channels per payee, leases, budget, and the plain API.
use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use ed25519_dalek::SigningKey;
use paychan_sdk::Pubkey;
use paychan_sdk::ix;
use paychan_sdk::ix::OpenArgs;
use paychan_sdk::state::ChannelStatus as OnChainStatus;
use paychan_voucher::SignedVoucher;
use paychan_x402::v2;
use rand::{RngCore, rngs::OsRng};
use solana_signer::Signer;
use tokio::sync::{Notify, OwnedMutexGuard};

use crate::{
    chain::{Chain, associated_token_address},
    config::ClientConfig,
    error::ClientError,
    offer::{self, MAX_GRACE_PERIOD_SECS, MIN_GRACE_PERIOD_SECS, Offer, OfferFilter},
    state::{Budget, ChannelState, Phase, STATE_VERSION, StateDir},
};

/// Most requests (method and URL) whose offer is remembered for pre-payment.
pub const MAX_CACHED_OFFERS: usize = 4096;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A channel with its session key.
pub(crate) struct Entry {
    pub(crate) state: ChannelState,
    pub(crate) key: SigningKey,
}

type Slot = Arc<tokio::sync::Mutex<Entry>>;

/// Channels to one (payee, mint, program).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct PoolKey {
    payee: Pubkey,
    mint: Pubkey,
    program: Pubkey,
}

#[derive(Default)]
struct Pool {
    inner: Mutex<PoolInner>,
    notify: Notify,
}

#[derive(Default)]
struct PoolInner {
    slots: Vec<Slot>,
    opening: usize,
}

/// Wakes waiters of a pool when dropped (after the lease's guard).
struct Notifier(Arc<Pool>);

impl Drop for Notifier {
    fn drop(&mut self) {
        self.0.notify.notify_waiters();
    }
}

/// Gives back an opening reservation of a pool when dropped.
struct OpeningTicket(Arc<Pool>);

impl Drop for OpeningTicket {
    fn drop(&mut self) {
        let mut inner = lock(&self.0.inner);
        inner.opening = inner.opening.saturating_sub(1);
        drop(inner);
        self.0.notify.notify_waiters();
    }
}

/// Exclusive use of one channel: one request at a time per channel.
pub struct Lease {
    // Field order matters: the guard is released before waiters are woken.
    guard: OwnedMutexGuard<Entry>,
    _notifier: Notifier,
    client: Arc<Inner>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("channel", &self.guard.state.address)
            .finish()
    }
}

impl Lease {
    /// The leased channel.
    #[must_use]
    pub fn channel(&self) -> Pubkey {
        self.guard.state.address
    }

    /// Its state (in memory).
    #[must_use]
    pub fn state(&self) -> &ChannelState {
        &self.guard.state
    }

    /// The voucher for the next request of `price` (see
    /// [`ChannelState::next_voucher`]), persisted before it is returned.
    pub async fn voucher(&mut self, price: u64) -> Result<SignedVoucher, ClientError> {
        let voucher = {
            let entry = &mut *self.guard;
            let mut budget = lock(&self.client.budget);
            entry.state.next_voucher(
                &entry.key,
                price,
                now_unix(),
                self.client.voucher_ttl,
                &mut budget,
            )?
        };
        self.persist().await?;
        Ok(voucher)
    }

    /// The request paid by `voucher` was served.
    pub fn paid(&mut self, voucher: &SignedVoucher) {
        self.guard.state.on_paid(voucher.voucher.cumulative_amount);
    }

    /// The request paid by the last voucher got a 5xx: keep it as a credit.
    pub async fn server_error(&mut self) -> Result<(), ClientError> {
        self.unconfirmed().await
    }

    /// The request paid by the last voucher was not confirmed as paid (a
    /// 5xx, an answer without a confirming `PAYMENT-RESPONSE`, an answer
    /// from another origin): keep the voucher as a credit, re-sent as is
    /// by the next request on this channel, and persist that.
    pub async fn unconfirmed(&mut self) -> Result<(), ClientError> {
        self.guard.state.on_server_error();
        self.persist().await
    }

    /// The last voucher was refused without a resync hint.
    pub fn rejected(&mut self) {
        self.guard.state.on_rejected();
    }

    /// Follows a `lastAccepted` hint (see [`ChannelState::resync`]).
    pub fn resync(&mut self, last_accepted: u64) -> Result<(), ClientError> {
        self.guard.state.resync(last_accepted)
    }

    /// Re-reads the channel from chain (deposit, settled, status).
    pub async fn refresh(&mut self) -> Result<(), ClientError> {
        let address = self.guard.state.address;
        let channel = self.client.chain.channel(&address).await?;
        apply_chain(&mut self.guard.state, channel.as_ref(), &self.client.budget);
        self.persist().await
    }

    /// Writes the state (atomically, durably).
    pub async fn persist(&self) -> Result<(), ClientError> {
        self.client.persist(self.guard.state.clone()).await
    }

    /// Tops the channel up when its headroom is under the threshold (or
    /// under `price`), within the budget. Fails only when `price` cannot be
    /// paid afterwards.
    async fn ensure_capacity(&mut self, price: u64) -> Result<(), ClientError> {
        let state = &self.guard.state;
        if state.phase != Phase::Open {
            return Err(ClientError::ChannelNotOpen(state.address));
        }
        let headroom = state.headroom();
        let credit = state.credit && state.last_voucher.is_some();
        if credit || headroom >= self.client.top_up_threshold.max(price) {
            return Ok(());
        }
        let need = price.saturating_sub(headroom);
        let amount = {
            let mut budget = lock(&self.client.budget);
            let amount = self
                .client
                .top_up_amount
                .max(need)
                .min(budget.remaining_to_commit());
            if amount == 0 || amount < need {
                drop(budget);
                return if state.can_pay(price) {
                    Ok(())
                } else {
                    Err(ClientError::BudgetExhausted {
                        needed: need,
                        remaining: amount,
                    })
                };
            }
            budget.commit(amount)?;
            amount
        };
        match self.client.send_top_up(&self.guard.state, amount).await {
            Ok(()) => {
                self.guard.state.deposit = self.guard.state.deposit.saturating_add(amount);
                self.persist().await
            }
            Err(e) => {
                lock(&self.client.budget).release(amount);
                if self.guard.state.can_pay(price) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

/// Copies on-chain facts into a state, keeping the budget book in step.
fn apply_chain(
    state: &mut ChannelState,
    channel: Option<&paychan_sdk::state::Channel>,
    budget: &Mutex<Budget>,
) {
    let before = state.exposure();
    match channel {
        None => {
            if state.phase != Phase::Opening {
                state.phase = Phase::Closed;
            }
        }
        Some(c) => {
            state.deposit = state.deposit.max(c.deposit);
            state.settled = state.settled.max(c.settled);
            state.signed = state.signed.max(c.settled);
            state.accepted = state.accepted.max(c.settled);
            state.phase = match c.status() {
                Ok(OnChainStatus::Open) => Phase::Open,
                Ok(OnChainStatus::Closing) => Phase::Closing,
                Ok(OnChainStatus::Closed) | Err(_) => Phase::Closed,
            };
        }
    }
    let after = state.exposure();
    let mut budget = lock(budget);
    if after >= before {
        budget.committed = budget.committed.saturating_add(after - before);
    } else {
        budget.release(before - after);
    }
}

/// Status of one channel (state directory + chain).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelInfo {
    /// The persisted state.
    pub state: ChannelState,
    /// Deposit on chain (`None`: no account).
    pub onchain_deposit: Option<u64>,
    /// Settled on chain.
    pub onchain_settled: Option<u64>,
    /// Status on chain.
    pub onchain_status: Option<String>,
}

pub(crate) struct Inner {
    pub(crate) network: String,
    pub(crate) mint: Pubkey,
    pub(crate) token_program: Pubkey,
    pub(crate) program_id: Pubkey,
    pub(crate) payer_tokens: Pubkey,
    pub(crate) max_price: u64,
    max_grace_period: i64,
    payee_must_sign: bool,
    deposit: u64,
    top_up_threshold: u64,
    top_up_amount: u64,
    max_channels: usize,
    voucher_ttl: Option<Duration>,
    pub(crate) chain: Chain,
    dir: StateDir,
    budget: Mutex<Budget>,
    pools: Mutex<HashMap<PoolKey, Arc<Pool>>>,
    all: Mutex<Vec<Slot>>,
    offers: Mutex<OfferCache>,
}

/// Offers remembered per request key (method and URL), at most
/// [`MAX_CACHED_OFFERS`]; the oldest key goes first.
#[derive(Default)]
struct OfferCache {
    offers: HashMap<Arc<str>, Offer>,
    order: VecDeque<Arc<str>>,
}

impl OfferCache {
    fn get(&self, key: &str) -> Option<&Offer> {
        self.offers.get(key)
    }

    fn insert(&mut self, key: String, offer: Offer) {
        if let Some(known) = self.offers.get_mut(key.as_str()) {
            *known = offer;
            return;
        }
        while self.offers.len() >= MAX_CACHED_OFFERS {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.offers.remove(&oldest);
                }
                None => break,
            }
        }
        let key: Arc<str> = key.into();
        self.order.push_back(key.clone());
        self.offers.insert(key, offer);
    }

    fn len(&self) -> usize {
        self.offers.len()
    }
}

impl Inner {
    async fn persist(&self, state: ChannelState) -> Result<(), ClientError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || dir.save(&state))
            .await
            .map_err(|e| ClientError::Task(e.to_string()))?
    }

    async fn send_top_up(&self, state: &ChannelState, amount: u64) -> Result<(), ClientError> {
        let ix = ix::top_up(
            &state.address,
            &self.chain.payer.pubkey(),
            &self.payer_tokens,
            &state.payee,
            &state.mint,
            &state.token_program,
            amount,
        );
        self.chain.send(&[ix]).await.map(|_| ())
    }

    fn pool(&self, key: PoolKey) -> Arc<Pool> {
        lock(&self.pools).entry(key).or_default().clone()
    }
}

/// The paying client. Cheap to clone (shared state).
#[derive(Clone)]
pub struct PaychanClient {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for PaychanClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaychanClient")
            .field("payer", &self.inner.chain.payer.pubkey())
            .field("network", &self.inner.network)
            .field("state_dir", &self.inner.dir.path())
            .finish()
    }
}

/// Whether an `open` error proves the transaction did not land.
fn open_definitely_failed(e: &ClientError) -> bool {
    match e {
        ClientError::TransactionFailed { .. } => true,
        ClientError::Rpc(e) => e.get_transaction_error().is_some(),
        _ => false,
    }
}

impl PaychanClient {
    /// A client from its configuration: opens the state directory, reads
    /// every channel back and reconciles them with the chain.
    pub async fn new(config: ClientConfig) -> Result<Self, ClientError> {
        if config.program_id != paychan_sdk::ID {
            return Err(ClientError::Config(format!(
                "program {} is not the paychan program {} this crate builds instructions for",
                config.program_id,
                paychan_sdk::ID
            )));
        }
        if config.max_channels_per_payee == 0 {
            return Err(ClientError::Config(
                "max_channels_per_payee must be at least 1".into(),
            ));
        }
        let payer = Arc::new(config.payer);
        let payer_tokens = config.payer_tokens.unwrap_or_else(|| {
            associated_token_address(&payer.pubkey(), &config.mint, &config.token_program)
        });
        let root = config.state_dir.clone();
        let dir = tokio::task::spawn_blocking(move || StateDir::open(root))
            .await
            .map_err(|e| ClientError::Task(e.to_string()))??;
        let chain = Chain::new(
            &config.rpc_url,
            config.commitment,
            payer,
            config.program_id,
            config.confirm_timeout,
        );
        let inner = Inner {
            network: config.network,
            mint: config.mint,
            token_program: config.token_program,
            program_id: config.program_id,
            payer_tokens,
            max_price: config.max_price,
            max_grace_period: config.max_grace_period,
            payee_must_sign: config.payee_must_sign,
            deposit: config.deposit,
            top_up_threshold: config.top_up_threshold,
            top_up_amount: config.top_up_amount,
            max_channels: config.max_channels_per_payee,
            voucher_ttl: config.voucher_ttl,
            chain,
            dir,
            budget: Mutex::new(Budget::new(config.budget)),
            pools: Mutex::new(HashMap::new()),
            all: Mutex::new(Vec::new()),
            offers: Mutex::new(OfferCache::default()),
        };
        let client = Self {
            inner: Arc::new(inner),
        };
        client.load().await?;
        Ok(client)
    }

    async fn load(&self) -> Result<(), ClientError> {
        let inner = &self.inner;
        let dir = inner.dir.clone();
        let entries = tokio::task::spawn_blocking(move || dir.load())
            .await
            .map_err(|e| ClientError::Task(e.to_string()))??;
        let addresses: Vec<Pubkey> = entries.iter().map(|(s, _)| s.address).collect();
        let onchain = if addresses.is_empty() {
            Vec::new()
        } else {
            inner.chain.channels(&addresses).await?
        };
        let slot = inner.chain.slot().await?;
        for ((mut state, key), channel) in entries.into_iter().zip(onchain) {
            lock(&inner.budget).add_existing(&state);
            if state.phase == Phase::Opening && channel.is_none() {
                let expired = slot
                    > state
                        .open_slot
                        .saturating_add(paychan_sdk::constants::OPEN_SLOT_WINDOW);
                if expired {
                    // The open can no longer land: forget it.
                    lock(&inner.budget).release(state.exposure());
                    let dir = inner.dir.clone();
                    let address = state.address;
                    tokio::task::spawn_blocking(move || dir.remove(&address))
                        .await
                        .map_err(|e| ClientError::Task(e.to_string()))??;
                    continue;
                }
                // It may still land: listed (and budgeted), not used.
                lock(&inner.all).push(Arc::new(tokio::sync::Mutex::new(Entry { state, key })));
                continue;
            }
            if state.phase != Phase::Closed {
                apply_chain(&mut state, channel.as_ref(), &inner.budget);
                inner.persist(state.clone()).await?;
            }
            let pool_key = PoolKey {
                payee: state.payee,
                mint: state.mint,
                program: state.program_id,
            };
            let open = state.phase == Phase::Open;
            let slot = Arc::new(tokio::sync::Mutex::new(Entry { state, key }));
            lock(&inner.all).push(slot.clone());
            if open {
                lock(&inner.pool(pool_key).inner).slots.push(slot);
            }
        }
        Ok(())
    }

    /// The payer's public key.
    #[must_use]
    pub fn payer(&self) -> Pubkey {
        self.inner.chain.payer.pubkey()
    }

    /// The payer's token account the deposits come from.
    #[must_use]
    pub fn payer_tokens(&self) -> Pubkey {
        self.inner.payer_tokens
    }

    /// The budget book.
    #[must_use]
    pub fn budget(&self) -> Budget {
        *lock(&self.inner.budget)
    }

    /// Chooses the offer of a 402 this client would pay (network, asset,
    /// program, price cap, remaining budget).
    pub fn select_offer(&self, required: &v2::PaymentRequired) -> Result<Offer, ClientError> {
        let remaining = lock(&self.inner.budget).remaining_to_spend();
        offer::select(
            required,
            &OfferFilter {
                network: &self.inner.network,
                mint: &self.inner.mint,
                program_id: &self.inner.program_id,
                max_price: self.inner.max_price,
                remaining_budget: remaining,
                max_grace_period: self.inner.max_grace_period,
                payee_must_sign: self.inner.payee_must_sign,
            },
        )
    }

    /// The offer remembered for a request key (method and URL).
    pub(crate) fn cached_offer(&self, key: &str) -> Option<Offer> {
        lock(&self.inner.offers).get(key).cloned()
    }

    /// Remembers the offer of a request key (method and URL).
    pub(crate) fn cache_offer(&self, key: String, offer: Offer) {
        lock(&self.inner.offers).insert(key, offer);
    }

    /// How many offers are remembered (at most [`MAX_CACHED_OFFERS`]).
    #[must_use]
    pub fn cached_offers(&self) -> usize {
        lock(&self.inner.offers).len()
    }

    /// A channel to the offer's payee that can pay its price: a free one
    /// (topped up if needed), else a new one (up to
    /// `max_channels_per_payee`), else the next one released.
    pub async fn lease(&self, offer: &Offer) -> Result<Lease, ClientError> {
        let key = PoolKey {
            payee: offer.payee,
            mint: self.inner.mint,
            program: self.inner.program_id,
        };
        let pool = self.inner.pool(key);
        loop {
            let notified = pool.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            enum Step {
                Got(OwnedMutexGuard<Entry>),
                Open(OpeningTicket),
                Wait,
            }
            let step = {
                let mut inner = lock(&pool.inner);
                inner.slots.retain(|s| {
                    s.try_lock()
                        .map(|e| e.state.phase == Phase::Open)
                        .unwrap_or(true)
                });
                let remaining = lock(&self.inner.budget).remaining_to_commit();
                let mut got = None;
                let mut busy = 0usize;
                for slot in &inner.slots {
                    match slot.clone().try_lock_owned() {
                        Ok(guard) => {
                            let s = &guard.state;
                            let need = offer.price.saturating_sub(s.headroom());
                            if s.can_pay(offer.price) || need <= remaining {
                                got = Some(guard);
                                break;
                            }
                        }
                        Err(_) => busy += 1,
                    }
                }
                match got {
                    Some(g) => Step::Got(g),
                    None if inner.slots.len().saturating_add(inner.opening)
                        < self.inner.max_channels =>
                    {
                        inner.opening += 1;
                        Step::Open(OpeningTicket(pool.clone()))
                    }
                    None if busy > 0 || inner.opening > 0 => Step::Wait,
                    None => {
                        return Err(ClientError::BudgetExhausted {
                            needed: offer.price,
                            remaining,
                        });
                    }
                }
            };
            match step {
                Step::Got(guard) => {
                    let mut lease = Lease {
                        guard,
                        _notifier: Notifier(pool.clone()),
                        client: self.inner.clone(),
                    };
                    match lease.ensure_capacity(offer.price).await {
                        Ok(()) => return Ok(lease),
                        Err(e) => return Err(e),
                    }
                }
                Step::Open(ticket) => {
                    let deposit = self.auto_deposit(offer)?;
                    let (slot, guard) = self
                        .open_slot(
                            &offer.payee,
                            &offer.token_program,
                            deposit,
                            offer.grace_period,
                        )
                        .await?;
                    lock(&pool.inner).slots.push(slot);
                    drop(ticket);
                    return Ok(Lease {
                        guard,
                        _notifier: Notifier(pool.clone()),
                        client: self.inner.clone(),
                    });
                }
                Step::Wait => notified.await,
            }
        }
    }

    /// Deposit for a channel opened for `offer`: the configured deposit,
    /// capped by the budget, at least the server's minimum and the price.
    fn auto_deposit(&self, offer: &Offer) -> Result<u64, ClientError> {
        let remaining = lock(&self.inner.budget).remaining_to_commit();
        let deposit = self.inner.deposit.min(remaining);
        let floor = offer.minimum_deposit.max(offer.price).max(1);
        if deposit < floor {
            return Err(ClientError::BudgetExhausted {
                needed: floor,
                remaining,
            });
        }
        Ok(deposit)
    }

    /// Opens a channel to `payee` over RPC (the plain API); returns its address.
    pub async fn open_channel(
        &self,
        payee: &Pubkey,
        deposit: u64,
        grace_period: i64,
    ) -> Result<Pubkey, ClientError> {
        let (slot, guard) = self
            .open_slot(payee, &self.inner.token_program, deposit, grace_period)
            .await?;
        let address = guard.state.address;
        let pool = self.inner.pool(PoolKey {
            payee: *payee,
            mint: self.inner.mint,
            program: self.inner.program_id,
        });
        lock(&pool.inner).slots.push(slot);
        drop(guard);
        pool.notify.notify_waiters();
        Ok(address)
    }

    async fn open_slot(
        &self,
        payee: &Pubkey,
        token_program: &Pubkey,
        deposit: u64,
        grace_period: i64,
    ) -> Result<(Slot, OwnedMutexGuard<Entry>), ClientError> {
        let inner = &self.inner;
        if deposit == 0 {
            return Err(ClientError::Config("a deposit must be positive".into()));
        }
        lock(&inner.budget).commit(deposit)?;
        // Committed: a failure that certainly opened nothing releases it.
        let release = |e: ClientError| {
            lock(&inner.budget).release(deposit);
            e
        };
        let key = SigningKey::generate(&mut OsRng);
        let signer = Pubkey::new_from_array(key.verifying_key().to_bytes());
        let salt = OsRng.next_u64();
        let open_slot = inner.chain.slot().await.map_err(release)?;
        let grace_period = grace_period.clamp(MIN_GRACE_PERIOD_SECS, MAX_GRACE_PERIOD_SECS);
        let payer = inner.chain.payer.pubkey();
        let (open_ix, address) = ix::open(
            &ix::OpenAccounts {
                payer,
                rent_payer: payer,
                payee: *payee,
                mint: inner.mint,
                payer_tokens: inner.payer_tokens,
                token_program: *token_program,
            },
            OpenArgs {
                salt,
                open_slot,
                deposit,
                grace_period,
                authorized_signer: signer,
            },
        );
        let mut state = ChannelState {
            version: STATE_VERSION,
            address,
            payee: *payee,
            mint: inner.mint,
            program_id: inner.program_id,
            token_program: *token_program,
            signer,
            network: inner.network.clone(),
            salt,
            open_slot,
            grace_period,
            deposit,
            settled: 0,
            accepted: 0,
            signed: 0,
            last_voucher: None,
            credit: false,
            phase: Phase::Opening,
        };
        // Key and state are durable before the transaction exists.
        let (dir, key_copy, saved) = (inner.dir.clone(), key.clone(), state.clone());
        tokio::task::spawn_blocking(move || {
            dir.save_key(&address, &key_copy)?;
            dir.save(&saved)
        })
        .await
        .map_err(|e| ClientError::Task(e.to_string()))
        .and_then(|r| r)
        .map_err(release)?;
        if let Err(e) = inner.chain.send(&[open_ix]).await {
            if open_definitely_failed(&e) {
                let dir = inner.dir.clone();
                let _ = tokio::task::spawn_blocking(move || dir.remove(&address)).await;
                return Err(release(e));
            }
            // It may still land: keep the state (phase `opening`, budget
            // reserved) for the next start to reconcile.
            return Err(e);
        }
        state.phase = Phase::Open;
        inner.persist(state.clone()).await?;
        let slot = Arc::new(tokio::sync::Mutex::new(Entry { state, key }));
        let guard = slot
            .clone()
            .try_lock_owned()
            .map_err(|e| ClientError::Task(e.to_string()))?;
        lock(&inner.all).push(slot.clone());
        Ok((slot, guard))
    }

    async fn slot_of(&self, channel: &Pubkey) -> Result<Slot, ClientError> {
        let all = lock(&self.inner.all).clone();
        for slot in all {
            if slot.lock().await.state.address == *channel {
                return Ok(slot);
            }
        }
        Err(ClientError::UnknownChannel(*channel))
    }

    /// Adds `amount` to a channel's deposit over RPC, within the budget.
    pub async fn top_up(&self, channel: &Pubkey, amount: u64) -> Result<(), ClientError> {
        let slot = self.slot_of(channel).await?;
        let mut entry = slot.lock().await;
        if entry.state.phase != Phase::Open {
            return Err(ClientError::ChannelNotOpen(*channel));
        }
        lock(&self.inner.budget).commit(amount)?;
        if let Err(e) = self.inner.send_top_up(&entry.state, amount).await {
            lock(&self.inner.budget).release(amount);
            return Err(e);
        }
        entry.state.deposit = entry.state.deposit.saturating_add(amount);
        self.inner.persist(entry.state.clone()).await
    }

    /// Starts the grace period of a channel (the payer's unilateral close).
    pub async fn request_close(&self, channel: &Pubkey) -> Result<(), ClientError> {
        let slot = self.slot_of(channel).await?;
        let mut entry = slot.lock().await;
        let ix = ix::request_close(channel, &self.payer());
        self.inner.chain.send(&[ix]).await?;
        let onchain = self.inner.chain.channel(channel).await?;
        apply_chain(&mut entry.state, onchain.as_ref(), &self.inner.budget);
        self.inner.persist(entry.state.clone()).await
    }

    /// Finalizes a closing channel once its grace period is over: the
    /// payer's token account gets the unsettled deposit back.
    pub async fn finalize(&self, channel: &Pubkey) -> Result<(), ClientError> {
        let slot = self.slot_of(channel).await?;
        let mut entry = slot.lock().await;
        let ix = ix::finalize(&ix::ChannelAccounts {
            channel: *channel,
            payee: entry.state.payee,
            mint: entry.state.mint,
            token_program: entry.state.token_program,
            payer_tokens: self.inner.payer_tokens,
            rent_payer: self.payer(),
        });
        self.inner.chain.send(&[ix]).await?;
        let onchain = self.inner.chain.channel(channel).await?;
        apply_chain(&mut entry.state, onchain.as_ref(), &self.inner.budget);
        self.inner.persist(entry.state.clone()).await
    }

    /// Every known channel: persisted state and what the chain says now.
    pub async fn channels(&self) -> Result<Vec<ChannelInfo>, ClientError> {
        let all = lock(&self.inner.all).clone();
        let mut states = Vec::with_capacity(all.len());
        for slot in &all {
            states.push(slot.lock().await.state.clone());
        }
        let addresses: Vec<Pubkey> = states.iter().map(|s| s.address).collect();
        let onchain = self.inner.chain.channels(&addresses).await?;
        Ok(states
            .into_iter()
            .zip(onchain)
            .map(|(state, c)| ChannelInfo {
                state,
                onchain_deposit: c.as_ref().map(|c| c.deposit),
                onchain_settled: c.as_ref().map(|c| c.settled),
                onchain_status: c.as_ref().map(|c| match c.status() {
                    Ok(OnChainStatus::Open) => "open".into(),
                    Ok(OnChainStatus::Closing) => "closing".into(),
                    Ok(OnChainStatus::Closed) => "closed".into(),
                    Err(_) => "unknown".into(),
                }),
            })
            .collect())
    }

    /// Persists every channel's in-memory state (e.g. before exiting, so
    /// the last accepted amounts are on disk).
    pub async fn flush(&self) -> Result<(), ClientError> {
        let all = lock(&self.inner.all).clone();
        for slot in all {
            let state = slot.lock().await.state.clone();
            self.inner.persist(state).await?;
        }
        Ok(())
    }

    /// The reqwest middleware paying with this client. Prefer
    /// [`Self::http_client`]: under a `reqwest::Client` with the default
    /// redirect policy, a paid request redirected to another host carries
    /// its voucher there (the middleware then does not count it as paid,
    /// but the other host has seen it).
    #[must_use]
    pub fn middleware(&self) -> crate::middleware::PaychanMiddleware {
        crate::middleware::PaychanMiddleware::new(self.clone())
    }

    /// An HTTP client paying with this client: reqwest with
    /// [`same_origin_redirects`](crate::middleware::same_origin_redirects)
    /// (a redirect to another origin is returned, not followed, so payment
    /// headers never leave the request's origin) under this client's
    /// middleware.
    pub fn http_client(&self) -> Result<reqwest_middleware::ClientWithMiddleware, ClientError> {
        Ok(self
            .http_client_builder(reqwest::Client::builder())?
            .build())
    }

    /// [`Self::http_client`] from the caller's reqwest settings (timeouts,
    /// proxy, TLS): their redirect policy is replaced by
    /// [`same_origin_redirects`](crate::middleware::same_origin_redirects).
    /// Middlewares added to the returned builder run inside this client's
    /// (they see the payment headers).
    pub fn http_client_builder(
        &self,
        reqwest: reqwest::ClientBuilder,
    ) -> Result<reqwest_middleware::ClientBuilder, ClientError> {
        let inner = reqwest
            .redirect(crate::middleware::same_origin_redirects())
            .build()
            .map_err(ClientError::HttpClient)?;
        Ok(reqwest_middleware::ClientBuilder::new(inner).with(self.middleware()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use paychan_x402::v2;

    use super::*;

    fn offer(price: u64) -> Offer {
        Offer {
            requirement: v2::PaymentRequirements {
                scheme: "paychan".into(),
                network: "solana:test".into(),
                amount: price.to_string(),
                asset: Pubkey::new_unique().to_string(),
                pay_to: Pubkey::new_unique().to_string(),
                max_timeout_seconds: 60,
                extra: None,
            },
            resource: None,
            payee: Pubkey::new_unique(),
            price,
            grace_period: 600,
            minimum_deposit: 0,
            token_program: Pubkey::new_unique(),
        }
    }

    #[test]
    fn the_offer_cache_is_bounded_and_forgets_the_oldest() {
        let mut cache = OfferCache::default();
        for i in 0..MAX_CACHED_OFFERS {
            cache.insert(format!("GET http://a:80/{i}"), offer(1));
        }
        assert_eq!(cache.len(), MAX_CACHED_OFFERS);
        // Updating a known key neither grows nor evicts.
        cache.insert("GET http://a:80/0".into(), offer(7));
        assert_eq!(cache.len(), MAX_CACHED_OFFERS);
        assert_eq!(cache.get("GET http://a:80/0").map(|o| o.price), Some(7));
        // A new key evicts the oldest one only.
        cache.insert("GET http://a:80/new".into(), offer(2));
        assert_eq!(cache.len(), MAX_CACHED_OFFERS);
        assert!(cache.get("GET http://a:80/0").is_none());
        assert!(cache.get("GET http://a:80/1").is_some());
        assert_eq!(cache.get("GET http://a:80/new").map(|o| o.price), Some(2));
        assert_eq!(cache.order.len(), cache.offers.len());
    }
}
