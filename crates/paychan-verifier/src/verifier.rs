//! The check: cheap rules first, then `verify_strict`, then the store's
//! compare-and-swap.
use anchor_lang::prelude::Pubkey;
use ed25519_dalek::VerifyingKey;
use paychan::state::ChannelStatus;
use paychan_voucher::SignedVoucher;

use crate::{
    error::{CheckError, Rejection, VerifierError},
    header::decode_header,
    snapshot::{ChannelSnapshot, ChannelSource},
    store::{AcceptOutcome, VoucherStore},
};

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
}

impl Terms {
    /// Terms with a 10-minute settlement margin.
    #[must_use]
    pub fn new(program_id: Pubkey, payee: Pubkey, mint: Pubkey, price: u64) -> Self {
        Self {
            program_id,
            payee,
            mint,
            price,
            settle_margin_secs: 600,
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
        }
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

    /// Checks a raw `PAYMENT-SIGNATURE` / `X-PAYMENT` header value at the default price.
    pub async fn check_header(&self, header: &[u8], now: i64) -> Result<Receipt, CheckError> {
        let voucher = decode_header(header)?;
        self.check(&voucher, now).await
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
        // Where the store holds its state in memory, a retry of the accepted
        // voucher is answered without another signature check and a voucher
        // that cannot pay is refused before one; shared stores (Redis) decide
        // everything in their one atomic `accept`, with no extra round trip.
        if let Some(latest) = self.store.cached(&channel) {
            match crate::store::decide(Some(&latest), voucher, snapshot.settled, price) {
                AcceptOutcome::Accepted(_) => {}
                other => {
                    return outcome_to_result(&snapshot.payer, v.cumulative_amount, price, other);
                }
            }
        }
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
                .latest(&channel)
                .map_err(VerifierError::from)?
                .map(|a| a.latest()),
        };
        let outcome = crate::store::decide(latest.as_ref(), voucher, snapshot.settled, price);
        if !verified && matches!(outcome, AcceptOutcome::Accepted(_)) {
            self.check_signature(voucher, &snapshot)?;
        }
        outcome_to_result(&snapshot.payer, v.cumulative_amount, price, outcome)
    }

    /// The snapshot of the voucher's channel, once the cheap channel rules
    /// (program, payee, mint, status, expiry, deposit) pass, and whether the
    /// voucher's signature was already verified against its signer.
    ///
    /// A voucher above the cached deposit may follow a top-up the snapshot
    /// has not seen yet: when it is validly signed by the channel's signer,
    /// the channel is re-read once (sources throttle such re-reads) before it
    /// is refused, so a payer's top-up never races the websocket update.
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
                if !fresh && self.check_signature(voucher, &snapshot).is_ok() =>
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
        Ok(self
            .channels
            .load(channel)
            .await
            .map_err(VerifierError::Source)?
            .ok_or(Rejection::UnknownChannel(*channel))?)
    }

    /// `verify_strict` under the channel's signer, decompressed through the
    /// bounded key cache.
    fn check_signature(
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
