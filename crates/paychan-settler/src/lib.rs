//! # paychan-settler
//!
//! Puts the latest accepted vouchers of a payee on chain.
//!
//! A due-check or a sweep reads [`VoucherStore::all_latest`], reads the
//! channels over JSON-RPC (decoded with the program's own [`Channel`] type)
//! and the chain's clock, and decides per channel ([`policy::decide`]):
//! settle when the unsettled value reaches the mint's threshold, when the
//! payer's close request's grace period ends within a margin, when the
//! voucher expires within a margin, or — on a sweep — whenever the voucher
//! is ahead of the chain. Closed, missing, expired or already-settled
//! channels are skipped.
//!
//! An urgent run ([`RunMode::Urgent`], fed by [`Settler::handle`]: the
//! facilitator's `/settle` and the paywall, which anyone who pays once can
//! call at will) reads only the channels asked for ([`VoucherStore::latest`]
//! each, then their accounts), never the whole store, and applies the same
//! policy to them — plus settling regardless of the threshold, but only
//! when at least the mint's [`MintAccounts::urgent_min_value`] is ahead
//! (default a tenth of the threshold) and at most once per channel per
//! [`SettlerConfig::urgent_interval`] (default 60 s, bounded memory). A
//! channel asked for too soon is not read at all; below the floor it waits
//! for the normal schedule; deadlines (closing, expiring) are settled by
//! the due-check whatever the queue did.
//!
//! Due vouchers are packed per (mint, token program) into transactions on
//! one of two paths ([`VoucherPath`]), whichever
//! [`SettlerConfig::estimated_fee`] finds cheaper per voucher (from the
//! configured lamports per signature and compute-unit price), or the one
//! [`SettlerConfig::path`] forces:
//! `[compute budget, settle_signed]` (the program verifies the signatures:
//! one transaction signature for up to [`MAX_SIGNED_VOUCHERS_PER_TX`]
//! vouchers, plus the compute-unit price times ≈ 21,500 CU per voucher)
//! or `[ed25519 (N records), settle]` (the precompile verifies them, each
//! record billed like a signature; at most [`MAX_VOUCHERS_PER_TX`]).
//! Without a compute-unit price the first is always cheaper: 5,000
//! lamports per transaction against 5,000 × (1 + N). Transactions are
//! signed by the payee (also the fee
//! payer) with a fresh blockhash per attempt, sent with preflight and
//! confirmed by polling `getSignatureStatuses`. With
//! [`SettlerConfig::lookup_table`] on ([`LookupTableMode`]), settle
//! transactions are v0 and load the accounts every settle of a (payee,
//! mint) shares — vault, vault token account, payee token account, mint,
//! token program, Instructions sysvar — from an address lookup table the
//! settler creates (the payee pays its rent) or is given, which fits
//! [`MAX_VOUCHERS_PER_TX_WITH_TABLE`] vouchers (1,228 bytes for five).
//! On-chain `settled` is
//! re-read before every attempt and after confirmation, so a run is
//! idempotent: a voucher someone else settled (the program's
//! `CumulativeNotIncreasing`, 6026) is re-read and skipped, not failed.
//! A transaction one of whose vouchers the program refuses is split into
//! one transaction per voucher so the others still settle.
//!
//! When the payer asks for its money back (`request_close`) and
//! [`SettlerConfig::close_on_request`] is on (the default), the settler
//! closes the channel at once with the payee's `close`: the latest voucher
//! (when it is ahead of `settled`) is settled by the same instruction and
//! the rest refunded to the payer's associated token account, instead of
//! waiting for the grace period (the voucher by `settle_signed` in the same
//! transaction when that is the cheaper path, else through the precompile). One channel per close transaction. The
//! account must exist and be an initialized, unfrozen token account of the
//! channel's mint owned by the payer; the settler never creates it (the
//! payee would pay ~2.04M lamports of rent that the payer could reclaim by
//! closing it). Without it, the latest voucher (when ahead) is settled by a
//! plain `settle` before the grace period ends, the channel is reported as
//! [`SkipReason::NoRefundAccount`], and the payer's own `finalize` refunds
//! it after the grace period.
//!
//! Several server replicas sharing a Redis store each run a settler: with
//! a [`SettleLease`] ([`Settler::with_lease`], [`RedisLease`] with the
//! `redis` feature, on by default) only the holder of
//! `paychan:v1:settler-lease:<payee>` runs; the others skip their runs
//! ([`SweepReport::standby`]) and take over when it releases the lease (on
//! shutdown) or lets it expire.
//!
//! `settle_batch` (up to 8 channels per instruction) is not used: it needs
//! v2 vouchers signed over the set of channels, which the x402 HTTP flow
//! does not produce.
//!
//! [`Settler::run`] is the daemon: a due-check every `interval`, a sweep
//! every `sweep_interval`, the urgent queue ([`Settler::handle`], an
//! `UnboundedSender<Pubkey>`; at most [`MAX_URGENT_PER_RUN`] requests per
//! run) for channels that should be settled soon, and the lease renewed
//! every third of its time to live.
//! [`Settler::metrics_text`] renders Prometheus metrics.
#![warn(missing_docs)]

mod close;
mod config;
mod error;
mod lease;
mod lookup;
mod metrics;
pub mod policy;
mod submit;
mod urgent;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    future::Future,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use paychan_sdk::{Pubkey, state::Channel};
use paychan_verifier::store::{Accepted, VoucherStore};
use paychan_voucher::SignedVoucher;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_signature::Signature;
use solana_signer::Signer;
use tokio::sync::{Mutex, mpsc};

pub use config::{
    CLOSE_WITH_VOUCHER_CU, LookupTableMode, MAX_SIGNED_VOUCHERS_PER_TX,
    MAX_SIGNED_VOUCHERS_PER_TX_WITH_TABLE, MAX_VOUCHERS_PER_TX, MAX_VOUCHERS_PER_TX_PRICED,
    MAX_VOUCHERS_PER_TX_PRICED_WITH_TABLE, MAX_VOUCHERS_PER_TX_WITH_TABLE, MintAccounts,
    SETTLE_BASE_CU, SETTLE_CU_PER_VOUCHER, SettlerConfig, URGENT_THROTTLE_CAPACITY, VoucherPath,
};
pub use error::{SettleError, custom_code};
#[cfg(feature = "redis")]
pub use lease::RedisLease;
pub use lease::{LeaseError, SettleLease};
pub use metrics::FailureKind;
use policy::{OnChain, Policy};
pub use policy::{SettleReason, SkipReason};

/// A handle to ask the settler to settle a channel soon (the urgent queue).
/// `paychan-x402`'s `SettleQueue` is implemented for this type.
pub type SettleHandle = mpsc::UnboundedSender<Pubkey>;

/// Most accounts per `getMultipleAccounts` call.
const MULTIPLE_ACCOUNTS_CHUNK: usize = 100;
/// Most channels one urgent run reads: [`Settler::run`] takes at most this
/// many requests from the queue per run (the rest wait for the next run);
/// a [`RunMode::Urgent`] with more defers the rest to the normal schedule.
pub const MAX_URGENT_PER_RUN: usize = 256;
/// The Clock sysvar.
const CLOCK_SYSVAR: Pubkey = Pubkey::from_str_const("SysvarC1ock11111111111111111111111111111111");

/// Which channels a run settles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunMode {
    /// Only channels the policy finds due (threshold, closing, expiring).
    Due,
    /// Everything ahead of the chain.
    Sweep,
    /// Only these channels (their latest vouchers and accounts are read, no
    /// others): settled when the normal due logic says so, or regardless of
    /// the threshold when at least the mint's
    /// [`MintAccounts::urgent_min_value`] is ahead of the chain and the
    /// channel was not settled urgently within
    /// [`SettlerConfig::urgent_interval`].
    Urgent(Vec<Pubkey>),
}

/// A confirmed settle transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettleTx {
    /// Its signature.
    pub signature: Signature,
    /// The channels it settled and the value each released.
    pub channels: Vec<(Pubkey, u64)>,
    /// How its vouchers' signatures were verified: `[ed25519, settle]` or
    /// `[compute budget, settle_signed]`.
    pub path: VoucherPath,
    /// The fee it paid: `getTransaction`'s `meta.fee`, else
    /// [`SettlerConfig::estimated_fee`] (the Ed25519 precompile's
    /// signatures are charged like transaction signatures).
    pub fee_lamports: u64,
    /// Compute units it consumed, when `getTransaction` reports them.
    pub compute_units: Option<u64>,
    /// Its serialized size in bytes.
    pub size: usize,
    /// The address lookup table of this v0 transaction; `None` for a
    /// legacy transaction.
    pub lookup_table: Option<Pubkey>,
}

/// A confirmed cooperative close (the payer had requested it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseTx {
    /// Its signature.
    pub signature: Signature,
    /// The channel.
    pub channel: Pubkey,
    /// Whether the final voucher was settled by the close.
    pub with_voucher: bool,
    /// How the final voucher's signature was verified (`None` without one):
    /// `[ed25519, close]`, or `[compute budget, settle_signed, close]`.
    pub path: Option<VoucherPath>,
    /// Value the final voucher paid the payee (0 without a voucher).
    pub paid: u64,
    /// Value refunded to the payer.
    pub refunded: u64,
    /// The payer's token account that received the refund.
    pub payer_tokens: Pubkey,
    /// The fee it paid (`getTransaction`'s `meta.fee`, else an estimate).
    pub fee_lamports: u64,
    /// Compute units it consumed, when `getTransaction` reports them.
    pub compute_units: Option<u64>,
}

/// A channel not settled in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The channel.
    pub channel: Pubkey,
    /// Why.
    pub reason: SkipReason,
}

/// A channel whose settlement failed in a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failed {
    /// The channel.
    pub channel: Pubkey,
    /// What went wrong.
    pub error: String,
}

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Confirmed settle transactions.
    pub transactions: Vec<SettleTx>,
    /// Channels not settled, and why.
    pub skipped: Vec<Skipped>,
    /// Channels whose settlement failed.
    pub failed: Vec<Failed>,
    /// Confirmed cooperative closes of channels whose payer requested it.
    pub closes: Vec<CloseTx>,
    /// Transactions that landed with an error (fees paid, nothing settled).
    pub failed_transactions: Vec<Signature>,
    /// Value still ahead of the chain in settleable channels after the run
    /// (base units, summed over mints), among the channels the run read
    /// (every stored one, except in an urgent run).
    pub unsettled_value: u64,
    /// Urgent requests not honoured as such: the channel was settled
    /// urgently within [`SettlerConfig::urgent_interval`] (it was not
    /// read), the run had read [`MAX_URGENT_PER_RUN`] channels already, or
    /// less than [`MintAccounts::urgent_min_value`] was ahead of the chain
    /// (or nothing could settle: [`Self::skipped`] says why). Such a
    /// channel is still settled when the normal due logic says so.
    pub urgent_deferred: Vec<Pubkey>,
    /// Another settler holds the lease ([`SettleLease`]): this run read and
    /// sent nothing.
    pub standby: bool,
}

impl SweepReport {
    /// Signatures of the confirmed settle transactions.
    pub fn signatures(&self) -> Vec<Signature> {
        self.transactions.iter().map(|t| t.signature).collect()
    }

    /// Number of channels settled.
    pub fn channels_settled(&self) -> usize {
        self.transactions.iter().map(|t| t.channels.len()).sum()
    }

    /// Value moved to the payee (base units, summed over mints; saturating).
    pub fn value_settled(&self) -> u64 {
        self.transactions
            .iter()
            .flat_map(|t| t.channels.iter().map(|(_, v)| *v))
            .fold(0u64, u64::saturating_add)
    }

    /// Value the closes' final vouchers paid the payee (saturating).
    pub fn value_closed(&self) -> u64 {
        self.closes
            .iter()
            .map(|c| c.paid)
            .fold(0u64, u64::saturating_add)
    }

    /// Value the closes refunded to payers (saturating).
    pub fn value_refunded(&self) -> u64 {
        self.closes
            .iter()
            .map(|c| c.refunded)
            .fold(0u64, u64::saturating_add)
    }

    /// Fees paid by confirmed settle and close transactions (saturating).
    pub fn fee_lamports(&self) -> u64 {
        self.transactions
            .iter()
            .map(|t| t.fee_lamports)
            .chain(self.closes.iter().map(|c| c.fee_lamports))
            .fold(0u64, u64::saturating_add)
    }

    /// Channels skipped for `reason`.
    pub fn skipped_for(&self, reason: SkipReason) -> usize {
        self.skipped.iter().filter(|s| s.reason == reason).count()
    }
}

/// What the chain holds at a channel's address.
// 224 bytes copied per channel read is cheaper than a heap allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug)]
pub(crate) enum ChainChannel {
    Missing,
    NotAChannel,
    Channel(Channel),
}

impl ChainChannel {
    pub(crate) fn as_on_chain(&self) -> OnChain<'_> {
        match self {
            Self::Missing => OnChain::Missing,
            Self::NotAChannel => OnChain::NotAChannel,
            Self::Channel(c) => OnChain::Channel(c),
        }
    }
}

/// A voucher chosen for settlement.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Item {
    pub(crate) channel: Pubkey,
    pub(crate) voucher: SignedVoucher,
    pub(crate) reason: SettleReason,
    /// On-chain `settled` when last read.
    pub(crate) settled: u64,
}

impl Item {
    fn ahead(&self) -> u64 {
        self.voucher
            .voucher
            .cumulative_amount
            .saturating_sub(self.settled)
    }
}

/// The settler of one payee.
pub struct Settler<S> {
    config: SettlerConfig,
    store: S,
    rpc: Arc<RpcClient>,
    metrics: metrics::Metrics,
    urgent_tx: SettleHandle,
    urgent_rx: Mutex<mpsc::UnboundedReceiver<Pubkey>>,
    run_lock: Mutex<()>,
    /// Lookup tables in use, per mint.
    tables: Mutex<HashMap<Pubkey, solana_message::AddressLookupTableAccount>>,
    /// Last urgent settlement per channel.
    throttle: std::sync::Mutex<urgent::UrgentThrottle>,
    /// Who may run among the settlers of this store.
    lease: SettleLease,
    /// Whether the last look at the lease found it held (for logging changes).
    lease_held: std::sync::atomic::AtomicBool,
}

impl<S> std::fmt::Debug for Settler<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settler")
            .field("config", &self.config)
            .field("rpc", &self.rpc.url())
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

impl<S: VoucherStore> Settler<S> {
    /// A settler of `config.payee`'s channels in `store`, talking to `rpc`.
    pub fn new(config: SettlerConfig, store: S, rpc: Arc<RpcClient>) -> Result<Self, SettleError> {
        config.validate().map_err(SettleError::Config)?;
        let (urgent_tx, urgent_rx) = mpsc::unbounded_channel();
        Ok(Self {
            store,
            rpc,
            metrics: metrics::Metrics::new(),
            urgent_tx,
            urgent_rx: Mutex::new(urgent_rx),
            run_lock: Mutex::new(()),
            tables: Mutex::new(HashMap::new()),
            throttle: std::sync::Mutex::new(urgent::UrgentThrottle::new(
                config.urgent_interval,
                URGENT_THROTTLE_CAPACITY,
            )),
            config,
            lease: SettleLease::None,
            lease_held: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// This settler runs only while it holds `lease` (several server
    /// replicas sharing a Redis store: one settler per payee). The default
    /// is [`SettleLease::None`].
    #[must_use]
    pub fn with_lease(mut self, lease: SettleLease) -> Self {
        self.lease = lease;
        self
    }

    /// The lease this settler must hold to run.
    pub fn lease(&self) -> &SettleLease {
        &self.lease
    }

    /// Releases the lease, if this settler holds it, so another settler
    /// takes over at once. [`Self::run`] does it on shutdown; call it after
    /// a last [`Self::run_once`].
    pub async fn release_lease(&self) {
        if !self.lease.is_some() {
            return;
        }
        match self.lease.release().await {
            Ok(()) => {
                if self
                    .lease_held
                    .swap(false, std::sync::atomic::Ordering::Relaxed)
                {
                    tracing::info!(payee = %self.config.payee.pubkey(), "settler lease released");
                }
            }
            Err(e) => {
                self.metrics.fail(FailureKind::Lease);
                tracing::warn!(error = %e, "cannot release the settler lease; it expires by itself");
            }
        }
    }

    /// Takes or renews the lease: whether this settler may run now.
    async fn hold_lease(&self) -> bool {
        if !self.lease.is_some() {
            return true;
        }
        let held = match self.lease.hold().await {
            Ok(held) => held,
            Err(e) => {
                self.metrics.fail(FailureKind::Lease);
                tracing::warn!(error = %e, "cannot reach the settler lease; not running");
                false
            }
        };
        let was = self
            .lease_held
            .swap(held, std::sync::atomic::Ordering::Relaxed);
        if held && !was {
            tracing::info!(payee = %self.config.payee.pubkey(), "settler lease acquired: this settler runs");
        } else if !held && was {
            tracing::warn!(payee = %self.config.payee.pubkey(), "settler lease lost: another settler runs");
        }
        held
    }

    /// Runs `work`, renewing the lease meanwhile (a run can outlast the
    /// lease's time to live while it waits for confirmations).
    async fn renewing<T>(&self, work: impl Future<Output = T>) -> T {
        let Some(every) = self.lease.renew_every() else {
            return work.await;
        };
        tokio::pin!(work);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = tick.tick() => {
                    // A run in progress finishes: what it sends is idempotent.
                    let _ = self.hold_lease().await;
                }
            }
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SettlerConfig {
        &self.config
    }

    /// The urgent queue: channels sent here are looked at by [`Self::run`]
    /// right away ([`RunMode::Urgent`]): settled regardless of the
    /// threshold when at least [`MintAccounts::urgent_min_value`] is ahead,
    /// at most once per channel per [`SettlerConfig::urgent_interval`].
    pub fn handle(&self) -> SettleHandle {
        self.urgent_tx.clone()
    }

    /// The metrics in the Prometheus (OpenMetrics) text format.
    pub fn metrics_text(&self) -> String {
        self.metrics.text()
    }

    /// One run: decide, pack, send, confirm. Runs never overlap (a second
    /// caller waits). With a lease, a settler that cannot hold it reads and
    /// sends nothing (the report says [`SweepReport::standby`]). Fails only
    /// when the store or the initial chain reads fail; per-channel failures
    /// are in the report.
    pub async fn run_once(&self, mode: RunMode) -> Result<SweepReport, SettleError> {
        let _guard = self.run_lock.lock().await;
        if !self.hold_lease().await {
            self.metrics.lease_skipped.inc();
            tracing::debug!(mode = ?mode_name(&mode), "another settler holds the lease; run skipped");
            return Ok(SweepReport {
                standby: true,
                ..SweepReport::default()
            });
        }
        let started = Instant::now();
        let result = self.renewing(self.run_inner(&mode)).await;
        match &result {
            Ok(report) => {
                self.metrics.runs.inc();
                // An urgent run reads only its channels: the gauge keeps the
                // last full run's figure.
                if !matches!(mode, RunMode::Urgent(_)) {
                    self.metrics
                        .unsettled
                        .set(i64::try_from(report.unsettled_value).unwrap_or(i64::MAX));
                }
                tracing::info!(
                    mode = ?mode_name(&mode),
                    transactions = report.transactions.len(),
                    channels = report.channels_settled(),
                    value = report.value_settled(),
                    closes = report.closes.len(),
                    fee_lamports = report.fee_lamports(),
                    skipped = report.skipped.len(),
                    urgent_deferred = report.urgent_deferred.len(),
                    failed = report.failed.len(),
                    unsettled = report.unsettled_value,
                    elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    "settlement run"
                );
            }
            Err(e) => {
                self.metrics.fail(FailureKind::Run);
                tracing::warn!(mode = ?mode_name(&mode), error = %e, "settlement run failed");
            }
        }
        result
    }

    async fn run_inner(&self, mode: &RunMode) -> Result<SweepReport, SettleError> {
        let mut report = SweepReport::default();
        let (vouchers, urgent): (Vec<Accepted>, HashSet<Pubkey>) = match mode {
            RunMode::Urgent(list) => {
                // Only the channels asked for, and only those not settled
                // urgently within the interval (the others wait for the
                // normal schedule, whose deadlines a due-check honours).
                let wanted = self.not_throttled(list, &mut report);
                (self.latest_of(&wanted)?, wanted.into_iter().collect())
            }
            RunMode::Due | RunMode::Sweep => (self.all_latest()?, HashSet::new()),
        };
        let addresses: Vec<Pubkey> = vouchers.iter().map(Accepted::channel).collect();
        let chain = self.read_channels(&addresses).await?;
        let now = self.chain_now().await;

        let mut groups: BTreeMap<Pubkey, Vec<Item>> = BTreeMap::new();
        let mut closes: Vec<Item> = Vec::new();
        let mut unsettled: u64 = 0;
        for accepted in &vouchers {
            let channel = accepted.channel();
            let on_chain = chain
                .get(&channel)
                .copied()
                .unwrap_or(ChainChannel::Missing);
            let mint = match on_chain {
                ChainChannel::Channel(c) => Some(c.mint),
                _ => None,
            };
            let urgent = urgent.contains(&channel) && self.urgent_worth_it(accepted, &on_chain);
            if !urgent && matches!(mode, RunMode::Urgent(_)) {
                self.metrics.urgent_deferred.inc();
                report.urgent_deferred.push(channel);
            }
            let policy = self.policy(mint.as_ref(), matches!(mode, RunMode::Sweep), urgent);
            match policy::decide(&policy, accepted, on_chain.as_on_chain(), now) {
                Ok(reason) => {
                    if reason == SettleReason::Urgent {
                        self.throttle_lock().record(channel, Instant::now());
                    }
                    let ChainChannel::Channel(c) = on_chain else {
                        continue;
                    };
                    let item = Item {
                        channel,
                        voucher: accepted.voucher,
                        reason,
                        settled: c.settled,
                    };
                    unsettled = unsettled.saturating_add(item.ahead());
                    if reason == SettleReason::CloseRequested {
                        closes.push(item);
                    } else {
                        groups.entry(c.mint).or_default().push(item);
                    }
                }
                Err(reason) => {
                    if reason == SkipReason::NotDue
                        && let ChainChannel::Channel(c) = on_chain
                    {
                        unsettled = unsettled.saturating_add(
                            accepted
                                .voucher
                                .voucher
                                .cumulative_amount
                                .saturating_sub(c.settled),
                        );
                    }
                    if matches!(
                        reason,
                        SkipReason::Expired | SkipReason::GraceEnded | SkipReason::WrongSigner
                    ) {
                        tracing::warn!(%channel, reason = reason.as_str(), "voucher can no longer settle");
                    } else {
                        tracing::debug!(%channel, reason = reason.as_str(), "skipped");
                    }
                    report.skipped.push(Skipped { channel, reason });
                }
            }
        }

        // Kept current as items settle or turn out settled by someone else.
        report.unsettled_value = unsettled;
        let mut stopped = false;
        // The payers asked for their money back: close first, one channel
        // per transaction.
        for item in closes {
            let accounts = chain.get(&item.channel).and_then(|c| match c {
                ChainChannel::Channel(c) => self.config.mint(&c.mint).copied(),
                _ => None,
            });
            let Some(accounts) = accounts else {
                continue;
            };
            if stopped {
                report.skipped.push(Skipped {
                    channel: item.channel,
                    reason: SkipReason::Deferred,
                });
                continue;
            }
            if let submit::ChunkEnd::Unavailable =
                self.close_channel(item, &accounts, &mut report).await
            {
                stopped = true;
            }
        }
        for (mint, mut items) in groups {
            let Some(accounts) = self.config.mint(&mint).copied() else {
                continue;
            };
            // Closing and expiring channels first, then the largest amounts.
            items.sort_by(|a, b| a.reason.cmp(&b.reason).then(b.ahead().cmp(&a.ahead())));
            // Each transaction on the path with the lower estimated fee per
            // voucher (or the configured one), as many vouchers as it takes.
            let with_table = self.config.lookup_table != LookupTableMode::Off;
            let mut queue: std::collections::VecDeque<(VoucherPath, Vec<Item>)> =
                std::collections::VecDeque::new();
            let mut rest = items.as_slice();
            while !rest.is_empty() {
                let (path, n) = self.config.choose_path(rest.len(), with_table);
                let (chunk, tail) = rest.split_at(n.min(rest.len()));
                queue.push_back((path, chunk.to_vec()));
                rest = tail;
            }
            while let Some((path, chunk)) = queue.pop_front() {
                if stopped {
                    report.skipped.extend(chunk.iter().map(|i| Skipped {
                        channel: i.channel,
                        reason: SkipReason::Deferred,
                    }));
                    continue;
                }
                match self.settle_chunk(chunk, path, &accounts, &mut report).await {
                    submit::ChunkEnd::Done => {}
                    submit::ChunkEnd::Split(items) => {
                        let (path, _) = self.config.choose_path(1, with_table);
                        for item in items.into_iter().rev() {
                            queue.push_front((path, vec![item]));
                        }
                    }
                    submit::ChunkEnd::Unavailable => stopped = true,
                }
            }
        }
        Ok(report)
    }

    /// Runs `read`, which may block on I/O (the Redis store reads
    /// synchronously): on a multi-thread runtime the worker hands its other
    /// tasks off first.
    fn blocking<T>(read: impl FnOnce() -> T) -> T {
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_thread {
            tokio::task::block_in_place(read)
        } else {
            read()
        }
    }

    /// Every stored channel's latest voucher.
    fn all_latest(&self) -> Result<Vec<Accepted>, SettleError> {
        Ok(Self::blocking(|| self.store.all_latest())?)
    }

    /// The latest vouchers of `channels` (those with one).
    fn latest_of(&self, channels: &[Pubkey]) -> Result<Vec<Accepted>, SettleError> {
        Self::blocking(|| {
            let mut out = Vec::with_capacity(channels.len());
            for channel in channels {
                if let Some(accepted) = self.store.latest(channel)? {
                    out.push(accepted);
                }
            }
            Ok(out)
        })
    }

    fn throttle_lock(&self) -> std::sync::MutexGuard<'_, urgent::UrgentThrottle> {
        // The throttle holds no invariant a panic could break.
        self.throttle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The urgent channels not settled urgently within the interval (at
    /// most [`MAX_URGENT_PER_RUN`], deduplicated); the others are recorded
    /// as deferred.
    fn not_throttled(&self, list: &[Pubkey], report: &mut SweepReport) -> Vec<Pubkey> {
        let now = Instant::now();
        let mut throttle = self.throttle_lock();
        let mut seen = HashSet::new();
        let mut wanted = Vec::new();
        for channel in list {
            if !seen.insert(*channel) {
                continue;
            }
            if wanted.len() < MAX_URGENT_PER_RUN && throttle.allows(channel, now) {
                wanted.push(*channel);
            } else {
                tracing::debug!(%channel, "urgent request deferred (throttled)");
                self.metrics.urgent_deferred.inc();
                report.urgent_deferred.push(*channel);
            }
        }
        wanted
    }

    /// Whether an urgent request for this channel is worth a transaction:
    /// at least the mint's `urgent_min_value` is ahead of the chain.
    fn urgent_worth_it(&self, accepted: &Accepted, on_chain: &ChainChannel) -> bool {
        let ChainChannel::Channel(c) = on_chain else {
            return false;
        };
        let Some(mint) = self.config.mint(&c.mint) else {
            return false;
        };
        let ahead = accepted
            .voucher
            .voucher
            .cumulative_amount
            .saturating_sub(c.settled);
        ahead > 0 && ahead >= mint.urgent_min_value
    }

    fn policy(&self, mint: Option<&Pubkey>, sweep: bool, urgent: bool) -> Policy {
        Policy {
            payee: self.config.payee.pubkey(),
            threshold: mint.and_then(|m| self.config.mint(m)).map(|m| m.threshold),
            grace_margin_secs: config::secs_i64(self.config.grace_margin),
            expiry_margin_secs: config::secs_i64(self.config.expiry_margin),
            sweep,
            urgent,
            close_on_request: self.config.close_on_request,
        }
    }

    /// The daemon: a due-check every `interval`, a sweep every
    /// `sweep_interval` (the first at start-up when `sweep_on_start`),
    /// urgent channels as they come (at most [`MAX_URGENT_PER_RUN`] per
    /// run; the rest stay queued for the next). With a lease, the lease is
    /// renewed (or, by a standby settler, tried) every third of its time to
    /// live, a standby settler's runs are skipped, its first run after
    /// taking over is a sweep, and the lease is released on shutdown.
    /// A run in progress finishes before `shutdown` is honoured.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let mut urgent = self.urgent_rx.lock().await;
        let start = tokio::time::Instant::now();
        let first_tick = if self.config.sweep_on_start {
            start
        } else {
            start + self.config.interval
        };
        let mut tick = tokio::time::interval_at(first_tick, self.config.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_sweep: Option<Instant> = if self.config.sweep_on_start {
            None
        } else {
            Some(Instant::now())
        };
        // Without a lease this timer never fires (an hour apart, disabled).
        let lease_every = self.lease.renew_every();
        let mut lease_tick =
            tokio::time::interval(lease_every.unwrap_or(Duration::from_secs(3600)));
        lease_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        tracing::info!(payee = %self.config.payee.pubkey(), lease = self.lease.is_some(), "settler started");
        loop {
            let mode = tokio::select! {
                biased;
                () = &mut shutdown => break,
                _ = lease_tick.tick(), if lease_every.is_some() => {
                    let _ = self.hold_lease().await;
                    continue;
                }
                Some(first) = urgent.recv() => {
                    let mut channels = vec![first];
                    while channels.len() < MAX_URGENT_PER_RUN
                        && let Ok(more) = urgent.try_recv()
                    {
                        channels.push(more);
                    }
                    channels.sort_unstable();
                    channels.dedup();
                    RunMode::Urgent(channels)
                }
                _ = tick.tick() => {
                    if last_sweep.is_none_or(|t| t.elapsed() >= self.config.sweep_interval) {
                        last_sweep = Some(Instant::now());
                        RunMode::Sweep
                    } else {
                        RunMode::Due
                    }
                }
            };
            // Errors are logged and counted by run_once; the next tick retries.
            if let Ok(report) = self.run_once(mode).await
                && report.standby
            {
                // Another settler runs; once this one takes over, it sweeps first.
                last_sweep = None;
            }
        }
        self.release_lease().await;
        tracing::info!("settler stopped");
    }

    /// Reads channel accounts (chunks of 100) and decodes them.
    pub(crate) async fn read_channels(
        &self,
        addresses: &[Pubkey],
    ) -> Result<HashMap<Pubkey, ChainChannel>, SettleError> {
        let mut out = HashMap::with_capacity(addresses.len());
        for chunk in addresses.chunks(MULTIPLE_ACCOUNTS_CHUNK) {
            let accounts = self
                .rpc
                .get_multiple_accounts_with_commitment(chunk, self.config.commitment)
                .await
                .inspect_err(|_| self.metrics.fail(FailureKind::Rpc))?
                .value;
            for (address, account) in chunk.iter().zip(accounts) {
                let decoded = match account {
                    None => ChainChannel::Missing,
                    Some(a) => decode_channel(&a.owner, &self.config.program_id, &a.data),
                };
                out.insert(*address, decoded);
            }
        }
        Ok(out)
    }

    /// The chain's Unix time (the Clock sysvar, which the program checks
    /// grace periods and expiries against); the local clock if unavailable.
    pub(crate) async fn chain_now(&self) -> i64 {
        match self
            .rpc
            .get_account_with_commitment(&CLOCK_SYSVAR, self.config.commitment)
            .await
        {
            Ok(response) => {
                if let Some(now) = response
                    .value
                    .and_then(|a| a.data.get(32..40).and_then(|b| b.try_into().ok()))
                    .map(i64::from_le_bytes)
                {
                    return now;
                }
                tracing::warn!("the Clock sysvar does not decode; using the local clock");
            }
            Err(e) => {
                self.metrics.fail(FailureKind::Rpc);
                tracing::warn!(error = %e, "cannot read the Clock sysvar; using the local clock");
            }
        }
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, config::secs_i64)
    }
}

fn mode_name(mode: &RunMode) -> &'static str {
    match mode {
        RunMode::Due => "due",
        RunMode::Sweep => "sweep",
        RunMode::Urgent(_) => "urgent",
    }
}

/// Decodes a channel account (owner, discriminator and size checked).
pub(crate) fn decode_channel(owner: &Pubkey, program_id: &Pubkey, data: &[u8]) -> ChainChannel {
    if owner != program_id {
        return ChainChannel::NotAChannel;
    }
    Channel::decode(data).map_or(ChainChannel::NotAChannel, ChainChannel::Channel)
}
