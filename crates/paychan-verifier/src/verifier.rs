//! The check: cheap rules first, then `verify_strict`, then the store's
//! compare-and-swap.
//!
//! A voucher that cheap rules refuse costs no signature check, with two
//! exceptions that need one: a voucher above the cached deposit (its
//! signature justifies re-reading the channel, in case a top-up raced the
//! snapshot) and a voucher below what the store accepted (its signature
//! justifies telling the client the last accepted amount, its resync hint).
//! A channel whose vouchers just failed their signature check gets neither
//! for [`FORGERY_BACKOFF`]: repeated forgeries are refused from cached state.
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use ed25519_dalek::VerifyingKey;
use paychan_sdk::Pubkey;
use paychan_sdk::state::ChannelStatus;
use paychan_voucher::SignedVoucher;

use crate::{
    error::{CheckError, Rejection, VerifierError},
    snapshot::{ChannelSnapshot, ChannelSource, LoadError},
    store::{AcceptOutcome, VoucherStore},
};

/// How long after a forged voucher (one failing `verify_strict`) a channel's
/// stale or over-deposit vouchers are refused without a signature check
/// (default of [`Verifier::with_forgery_backoff`]). Honest vouchers that
/// pay are always checked; only the resync hint and the deposit re-read
/// wait this long while someone forges vouchers for the channel.
pub const FORGERY_BACKOFF: Duration = Duration::from_millis(250);
/// Channels remembered for [`FORGERY_BACKOFF`] (the map is cleared when full).
const FORGERIES_MAX: usize = 100_000;

/// What a route charges and whom it pays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terms {
    /// The paychan program the channel must belong to.
    pub program_id: Pubkey,
    /// The payee the channel must pay.
    pub payee: Pubkey,
    /// The mint the channel must escrow.
    pub mint: Pubkey,
    /// Default price per request, in base units (a route may compute its own).
    pub price: u64,
    /// A voucher must stay valid at least this long after acceptance, so the
    /// settler can still put it on chain.
    pub settle_margin_secs: i64,
    /// Shortest grace period a channel may have, seconds (the offer's
    /// `gracePeriodSeconds`): the time the settler has to settle after the
    /// payer asks for its money back.
    pub min_grace_period: i64,
    /// Smallest deposit a channel may have (the offer's `minimumDeposit`).
    pub min_deposit: u64,
}

impl Terms {
    /// Terms with a 10-minute settlement margin, channels with any grace
    /// period the program allows and any deposit.
    #[must_use]
    pub fn new(program_id: Pubkey, payee: Pubkey, mint: Pubkey, price: u64) -> Self {
        Self {
            program_id,
            payee,
            mint,
            price,
            settle_margin_secs: 600,
            min_grace_period: paychan_sdk::constants::MIN_GRACE_PERIOD_SECS,
            min_deposit: 0,
        }
    }
}

/// Proof that a request is paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The channel.
    pub channel: Pubkey,
    /// Who paid.
    pub payer: Pubkey,
    /// The accepted cumulative amount.
    pub cumulative: u64,
    /// What this voucher added: `cumulative − previous`.
    pub charged: u64,
    /// The cumulative amount accepted before it.
    pub previous: u64,
    /// This exact voucher had been accepted before (a retry, charged once).
    pub duplicate: bool,
}

/// Decompressed signer keys kept by [`Verifier::new`]: 16,384 keys take
/// about 4 MiB; a channel whose key fell out pays one decompression.
pub const DEFAULT_KEY_CACHE: usize = 16_384;

/// The verifier: channel snapshots + a voucher store + the default terms,
/// and a bounded cache of decompressed voucher-signer keys.
pub struct Verifier<C, S> {
    channels: C,
    store: S,
    terms: Terms,
    keys: quick_cache::sync::Cache<[u8; 32], VerifyingKey>,
    /// When each channel last received a forged voucher.
    forgeries: parking_lot::Mutex<HashMap<Pubkey, Instant>>,
    forgery_backoff: Duration,
}

impl<C: std::fmt::Debug, S: std::fmt::Debug> std::fmt::Debug for Verifier<C, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("channels", &self.channels)
            .field("store", &self.store)
            .field("terms", &self.terms)
            .field("cached_keys", &self.keys.len())
            .finish()
    }
}

impl<C: ChannelSource, S: VoucherStore> Verifier<C, S> {
    /// A verifier caching up to [`DEFAULT_KEY_CACHE`] decompressed keys.
    pub fn new(channels: C, store: S, terms: Terms) -> Self {
        Self::with_key_cache(channels, store, terms, DEFAULT_KEY_CACHE)
    }

    /// A verifier caching up to `keys` decompressed signer keys (at least 1).
    pub fn with_key_cache(channels: C, store: S, terms: Terms, keys: usize) -> Self {
        Self {
            channels,
            store,
            terms,
            keys: quick_cache::sync::Cache::new(keys.max(1)),
            forgeries: parking_lot::Mutex::new(HashMap::new()),
            forgery_backoff: FORGERY_BACKOFF,
        }
    }

    /// How long a channel's stale or over-deposit vouchers are refused from
    /// cached state after a forged one ([`FORGERY_BACKOFF`] by default;
    /// `Duration::ZERO` checks every such voucher's signature).
    #[must_use]
    pub fn with_forgery_backoff(mut self, backoff: Duration) -> Self {
        self.forgery_backoff = backoff;
        self
    }

    /// The default terms.
    pub fn terms(&self) -> &Terms {
        &self.terms
    }

    /// The channel source.
    pub fn channels(&self) -> &C {
        &self.channels
    }

    /// The voucher store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Checks a voucher at the default price.
    pub async fn check(&self, voucher: &SignedVoucher, now: i64) -> Result<Receipt, CheckError> {
        self.check_priced(voucher, self.terms.price, now).await
    }

    /// Checks a voucher for a request costing `price`, and accepts it atomically.
    pub async fn check_priced(
        &self,
        voucher: &SignedVoucher,
        price: u64,
        now: i64,
    ) -> Result<Receipt, CheckError> {
        let v = &voucher.voucher;
        let channel = Pubkey::new_from_array(v.channel_id);
        let (snapshot, verified) = self.channel_rules(voucher, now).await?;
        // What this process knows of the store's latest voucher decides
        // retries and stale vouchers without a round trip (shared stores
        // know a floor of it: the highest they answered here).
        let verified = match self.store.cached(&channel) {
            Some(latest) => {
                match crate::store::decide(Some(&latest), voucher, snapshot.settled, price) {
                    AcceptOutcome::Accepted(_) => verified,
                    refused => {
                        return self.refuse(voucher, &snapshot, price, verified, refused);
                    }
                }
            }
            None => verified,
        };
        if !verified {
            self.check_signature(voucher, &snapshot)?;
        }
        let outcome = self
            .store
            .accept(voucher, snapshot.settled, price)
            .await
            .map_err(VerifierError::from)?;
        outcome_to_result(&snapshot.payer, v.cumulative_amount, price, outcome)
    }

    /// Runs every rule of [`Self::check_priced`] against the store's latest
    /// voucher **without accepting anything** (a facilitator's `/verify`).
    ///
    /// The receipt says what accepting the voucher now would charge; a later
    /// [`Self::check_priced`] may still refuse it if another voucher got in
    /// first.
    pub async fn verify_only(
        &self,
        voucher: &SignedVoucher,
        price: u64,
        now: i64,
    ) -> Result<Receipt, CheckError> {
        let v = &voucher.voucher;
        let channel = Pubkey::new_from_array(v.channel_id);
        let (snapshot, verified) = self.channel_rules(voucher, now).await?;
        let latest = match self.store.cached(&channel) {
            Some(l) => Some(l),
            None => self
                .store
                .fetch_latest(&channel)
                .await
                .map_err(VerifierError::from)?
                .map(|a| a.latest()),
        };
        match crate::store::decide(latest.as_ref(), voucher, snapshot.settled, price) {
            AcceptOutcome::Accepted(a) => {
                if !verified {
                    self.check_signature(voucher, &snapshot)?;
                }
                outcome_to_result(&snapshot.payer, v.cumulative_amount, price, {
                    AcceptOutcome::Accepted(a)
                })
            }
            refused => self.refuse(voucher, &snapshot, price, verified, refused),
        }
    }

    /// A voucher the store's cached state refuses: a retry of the accepted
    /// voucher is answered as such (it was verified when accepted); a stale
    /// or conflicting one discloses the last accepted amount only once its
    /// own signature verifies, and is refused without a signature check
    /// while the channel is backing off from forgeries.
    fn refuse(
        &self,
        voucher: &SignedVoucher,
        snapshot: &ChannelSnapshot,
        price: u64,
        verified: bool,
        outcome: AcceptOutcome,
    ) -> Result<Receipt, CheckError> {
        let cumulative = voucher.voucher.cumulative_amount;
        if matches!(outcome, AcceptOutcome::Duplicate(_)) {
            return outcome_to_result(&snapshot.payer, cumulative, price, outcome);
        }
        if !verified {
            if self.backing_off(&snapshot.address) {
                return Err(Rejection::Stale { cumulative }.into());
            }
            self.check_signature(voucher, snapshot)?;
        }
        outcome_to_result(&snapshot.payer, cumulative, price, outcome)
    }

    /// The snapshot of the voucher's channel, once the cheap channel rules
    /// (program, payee, mint, status, terms, expiry, deposit) pass, and
    /// whether the voucher's signature was already verified against its
    /// signer.
    ///
    /// A voucher above the cached deposit may follow a top-up the snapshot
    /// has not seen yet: when the source would re-read the channel now and
    /// the voucher is validly signed by the channel's signer, the channel is
    /// re-read once before it is refused, so a payer's top-up never races
    /// the websocket update.
    async fn channel_rules(
        &self,
        voucher: &SignedVoucher,
        now: i64,
    ) -> Result<(ChannelSnapshot, bool), CheckError> {
        let channel = Pubkey::new_from_array(voucher.voucher.channel_id);
        let (snapshot, fresh) = match self.channels.get(&channel) {
            Some(s) => (s, false),
            None => (self.load(&channel).await?, true),
        };
        match self.rules(&snapshot, voucher, now) {
            Err(Rejection::ExceedsDeposit { .. })
                if !fresh
                    && self.channels.may_reload(&channel)
                    && !self.backing_off(&channel)
                    && self.check_signature(voucher, &snapshot).is_ok() =>
            {
                let newer = self.load(&channel).await?;
                self.rules(&newer, voucher, now)?;
                let verified = newer.signer == snapshot.signer;
                Ok((newer, verified))
            }
            Err(rejection) => Err(rejection.into()),
            Ok(()) => Ok((snapshot, false)),
        }
    }

    async fn load(&self, channel: &Pubkey) -> Result<ChannelSnapshot, CheckError> {
        let loaded = self.channels.load(channel).await.map_err(|e| match e {
            LoadError::Overloaded => VerifierError::Overloaded,
            LoadError::Unavailable(e) => VerifierError::Source(e),
        })?;
        Ok(loaded.ok_or(Rejection::UnknownChannel(*channel))?)
    }

    /// `verify_strict` under the channel's signer, decompressed through the
    /// bounded key cache. A failure starts the channel's forgery backoff.
    fn check_signature(
        &self,
        voucher: &SignedVoucher,
        snapshot: &ChannelSnapshot,
    ) -> Result<(), Rejection> {
        let result = self.verify_signature(voucher, snapshot);
        if result.is_err() {
            let mut forgeries = self.forgeries.lock();
            if forgeries.len() >= FORGERIES_MAX {
                forgeries.clear();
            }
            forgeries.insert(snapshot.address, Instant::now());
        }
        result
    }

    fn verify_signature(
        &self,
        voucher: &SignedVoucher,
        snapshot: &ChannelSnapshot,
    ) -> Result<(), Rejection> {
        if voucher.signer != snapshot.signer.to_bytes() {
            return Err(Rejection::WrongSigner);
        }
        let key = self
            .keys
            .get_or_insert_with(&voucher.signer, || {
                VerifyingKey::from_bytes(&voucher.signer)
            })
            .map_err(|_| Rejection::BadSignature)?;
        voucher
            .verify_strict_with(&key)
            .map_err(|_| Rejection::BadSignature)
    }

    /// Whether the channel received a forged voucher within the backoff.
    fn backing_off(&self, channel: &Pubkey) -> bool {
        let forgeries = self.forgeries.lock();
        forgeries
            .get(channel)
            .is_some_and(|at| at.elapsed() < self.forgery_backoff)
    }

    fn rules(
        &self,
        snapshot: &ChannelSnapshot,
        voucher: &SignedVoucher,
        now: i64,
    ) -> Result<(), Rejection> {
        let v = &voucher.voucher;
        let t = &self.terms;
        if snapshot.program_id != t.program_id {
            return Err(Rejection::WrongProgram);
        }
        if snapshot.payee != t.payee {
            return Err(Rejection::WrongPayee);
        }
        if snapshot.mint != t.mint {
            return Err(Rejection::WrongMint);
        }
        match snapshot.status {
            ChannelStatus::Open => {}
            ChannelStatus::Closing => return Err(Rejection::ChannelClosing),
            ChannelStatus::Closed => return Err(Rejection::ChannelClosed),
        }
        if snapshot.grace_period < t.min_grace_period {
            return Err(Rejection::GracePeriodTooShort {
                grace_period: snapshot.grace_period,
                required: t.min_grace_period,
            });
        }
        let needed_until = now.saturating_add(t.settle_margin_secs);
        if v.expires_at != 0 && v.expires_at < needed_until {
            return Err(Rejection::Expired {
                expires_at: v.expires_at,
                needed_until,
            });
        }
        if v.cumulative_amount > snapshot.deposit {
            return Err(Rejection::ExceedsDeposit {
                cumulative: v.cumulative_amount,
                deposit: snapshot.deposit,
            });
        }
        if snapshot.deposit < t.min_deposit {
            return Err(Rejection::DepositTooSmall {
                deposit: snapshot.deposit,
                required: t.min_deposit,
            });
        }
        Ok(())
    }
}

fn outcome_to_result(
    payer: &Pubkey,
    cumulative: u64,
    price: u64,
    outcome: AcceptOutcome,
) -> Result<Receipt, CheckError> {
    match outcome {
        AcceptOutcome::Accepted(a) => Ok(receipt(payer, a, false)),
        AcceptOutcome::Duplicate(a) => Ok(receipt(payer, a, true)),
        AcceptOutcome::Stale { last_accepted } => {
            Err(insufficient(cumulative, last_accepted, price))
        }
        AcceptOutcome::Conflict => Err(Rejection::Conflict { cumulative }.into()),
    }
}

fn insufficient(cumulative: u64, last_accepted: u64, price: u64) -> CheckError {
    Rejection::InsufficientIncrement {
        cumulative,
        required: last_accepted.saturating_add(price.max(1)),
        last_accepted,
    }
    .into()
}

fn receipt(payer: &Pubkey, a: crate::store::Accepted, duplicate: bool) -> Receipt {
    let cumulative = a.voucher.voucher.cumulative_amount;
    Receipt {
        channel: a.channel(),
        payer: *payer,
        cumulative,
        charged: cumulative.saturating_sub(a.previous),
        previous: a.previous,
        duplicate,
    }
}
