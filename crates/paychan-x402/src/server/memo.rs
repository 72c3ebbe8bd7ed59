//! The layer's per-channel memory of the last voucher it accepted and how
//! the requests it paid ended (docs/004, "Paid once, served once").
//!
//! - A voucher pays **one** successful handler run. A retry carrying the
//!   same voucher, the same `Idempotency-Key` and the same request (method,
//!   path and query, body digest) gets the stored response of that run, or
//!   waits for it while it is in flight; the handler never runs again.
//! - A run that did not end with an answer below 500 — the handler failed,
//!   or the request was dropped (the client went away) — leaves the voucher a
//!   *credit*: the same voucher pays another run, up to [`MAX_RUNS`] runs in
//!   all. A request dropped while the store was accepting the voucher leaves
//!   a credit too ([`Pending`]), so the client's retry is served, not refused.
//!
//! Two generations of at most `half` channels each: inserting into a full
//! young generation turns it into the old one (dropping the previous old
//! one), so memory stays below `2 · half` entries with O(1) work per request;
//! stored response bodies together stay below [`Memo::new`]'s byte budget.
use std::{
    collections::HashMap,
    hash::BuildHasher,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use axum::body::Bytes;
use http::{HeaderMap, StatusCode};
use parking_lot::Mutex;
use paychan_verifier::{Pubkey, SignedVoucher};

/// What identifies a payment in this memory: a voucher's cumulative amount
/// and signature, or an `exact` transfer's amount and the client's signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Paid {
    pub(crate) cumulative: u64,
    pub(crate) signature: [u8; 64],
}

impl From<&SignedVoucher> for Paid {
    fn from(v: &SignedVoucher) -> Self {
        Self {
            cumulative: v.voucher.cumulative_amount,
            signature: v.signature,
        }
    }
}
use tokio::sync::watch;

/// Handler runs one voucher pays for at most: the first, and two more after
/// failures (5xx, or a request dropped before its answer).
pub const MAX_RUNS: u8 = 3;

/// What a replay must match: the `Idempotency-Key` (hashed) and the request
/// it came with (SHA-256 of method, path and query, and body).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RequestKey {
    pub(crate) key: u64,
    pub(crate) request: [u8; 32],
}

/// A response kept for replays. Its body counts against the memo's budget
/// until it is dropped.
#[derive(Debug)]
pub(crate) struct StoredResponse {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    budget: Arc<AtomicUsize>,
}

impl Drop for StoredResponse {
    fn drop(&mut self) {
        self.budget.fetch_sub(self.body.len(), Ordering::Relaxed);
    }
}

/// How the runs paid by a voucher stand.
#[derive(Clone, Debug)]
enum State {
    /// A run is under way; `done` turns true when it ends.
    InFlight(watch::Receiver<bool>),
    /// No run ended with an answer: the voucher pays another run.
    Credit,
    /// A run answered (< 500); its response, when it could be kept.
    Spent(Option<Arc<StoredResponse>>),
}

#[derive(Debug)]
struct Entry {
    cumulative: u64,
    signature: [u8; 64],
    charged: u64,
    /// The request of the run in flight or done, for replays.
    key: Option<RequestKey>,
    state: State,
    /// Tells waiters the run in flight ended.
    done: Option<watch::Sender<bool>>,
    /// Handler runs started with this voucher.
    runs: u8,
    /// Stored responses replayed so far.
    replays: u8,
}

impl Entry {
    fn is(&self, paid: &Paid) -> bool {
        self.cumulative == paid.cumulative && self.signature == paid.signature
    }

    fn start_run(&mut self, key: Option<RequestKey>) {
        let (tx, rx) = watch::channel(false);
        self.key = key;
        self.state = State::InFlight(rx);
        self.done = Some(tx);
        self.runs = self.runs.saturating_add(1);
    }

    fn end_run(&mut self, state: State) {
        self.state = state;
        if let Some(done) = self.done.take() {
            let _ = done.send(true);
        }
    }
}

#[derive(Debug, Default)]
struct Generations {
    young: HashMap<Pubkey, Entry>,
    old: HashMap<Pubkey, Entry>,
}

impl Generations {
    fn insert(&mut self, half: usize, channel: Pubkey, entry: Entry) {
        if self.young.len() >= half && !self.young.contains_key(&channel) {
            std::mem::swap(&mut self.young, &mut self.old);
            self.young.clear();
        }
        self.young.insert(channel, entry);
    }

    fn get_mut(&mut self, half: usize, channel: &Pubkey) -> Option<&mut Entry> {
        if !self.young.contains_key(channel) {
            let entry = self.old.remove(channel)?;
            self.insert(half, *channel, entry);
        }
        self.young.get_mut(channel)
    }
}

/// What a retry of an accepted voucher gets.
#[derive(Debug)]
pub(crate) enum Claim<'a> {
    /// Run the handler (a credit); the run ends through the ticket.
    Run(Ticket<'a>),
    /// The response of the run it paid, again.
    Replay(Arc<StoredResponse>),
    /// Its run is in flight: wait for `done`, then claim again.
    Wait(watch::Receiver<bool>),
    /// Nothing: it paid a request already.
    Refused,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Memo {
    generations: Mutex<Generations>,
    half: usize,
    max_replays: u8,
    hasher: std::hash::RandomState,
    /// Bytes of stored response bodies, and the most they may take.
    stored: Arc<AtomicUsize>,
    budget: usize,
    /// Largest response body kept for replays.
    max_body: usize,
}

impl Memo {
    /// Remembers at most `capacity` channels (at least 2) and keeps response
    /// bodies of at most `max_body` bytes, `budget` bytes in all.
    pub(crate) fn new(capacity: usize, max_replays: u8, max_body: usize, budget: usize) -> Self {
        Self {
            generations: Mutex::default(),
            half: (capacity / 2).max(1),
            max_replays,
            hasher: std::hash::RandomState::new(),
            stored: Arc::new(AtomicUsize::new(0)),
            budget,
            max_body,
        }
    }

    /// A per-process hash of an `Idempotency-Key` (only ever compared with
    /// keys the same channel's payer sent).
    pub(crate) fn key_hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The largest response body kept for replays.
    pub(crate) fn max_body(&self) -> usize {
        self.max_body
    }

    /// Before the store is asked to accept `voucher` for a request costing
    /// `price`: if the request is dropped before [`Pending::accepted`] or
    /// [`Pending::disarm`], the voucher is remembered as a credit (the
    /// store may have accepted it; if it did not, the credit is never
    /// claimed, since only a voucher the store holds is claimed).
    pub(crate) fn pending(
        &self,
        channel: Pubkey,
        paid: impl Into<Paid>,
        price: u64,
    ) -> Pending<'_> {
        Pending {
            memo: self,
            channel,
            paid: paid.into(),
            price,
            armed: true,
        }
    }

    /// The entry of `voucher` (charged `charged`) before any run: a credit.
    fn new_entry(paid: &Paid, charged: u64) -> Entry {
        Entry {
            cumulative: paid.cumulative,
            signature: paid.signature,
            charged,
            key: None,
            state: State::Credit,
            done: None,
            runs: 0,
            replays: 0,
        }
    }

    /// A payment accepted for the first time (charged `charged`): its
    /// first run starts.
    pub(crate) fn start(
        &self,
        channel: Pubkey,
        paid: impl Into<Paid>,
        charged: u64,
        key: Option<RequestKey>,
    ) -> Ticket<'_> {
        let paid = paid.into();
        let mut entry = Self::new_entry(&paid, charged);
        entry.start_run(key);
        self.generations.lock().insert(self.half, channel, entry);
        Ticket {
            memo: self,
            channel,
            paid,
            ended: false,
        }
    }

    /// The store says `voucher` was accepted before: what this request gets.
    pub(crate) fn claim(
        &self,
        channel: &Pubkey,
        paid: impl Into<Paid>,
        key: Option<RequestKey>,
        price: u64,
    ) -> Claim<'_> {
        let paid = paid.into();
        let mut generations = self.generations.lock();
        let Some(entry) = generations.get_mut(self.half, channel) else {
            return Claim::Refused;
        };
        if !entry.is(&paid) {
            return Claim::Refused;
        }
        let same_request = key.is_some() && key == entry.key;
        match &entry.state {
            State::Credit if entry.charged >= price && entry.runs < MAX_RUNS => {
                entry.start_run(key);
                Claim::Run(Ticket {
                    memo: self,
                    channel: *channel,
                    paid,
                    ended: false,
                })
            }
            State::InFlight(done) if same_request => Claim::Wait(done.clone()),
            State::Spent(Some(response)) if same_request && entry.replays < self.max_replays => {
                entry.replays += 1;
                Claim::Replay(response.clone())
            }
            _ => Claim::Refused,
        }
    }

    /// Keeps `response` for replays when it fits the budget.
    pub(crate) fn store_response(
        &self,
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    ) -> Option<Arc<StoredResponse>> {
        let len = body.len();
        if len > self.max_body {
            return None;
        }
        let reserved = self
            .stored
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(len).filter(|total| *total <= self.budget)
            });
        reserved.ok()?;
        Some(Arc::new(StoredResponse {
            status,
            headers,
            body,
            budget: self.stored.clone(),
        }))
    }

    fn end(&self, channel: &Pubkey, paid: &Paid, state: State) {
        let mut generations = self.generations.lock();
        if let Some(entry) = generations.get_mut(self.half, channel)
            && entry.is(paid)
        {
            entry.end_run(state);
        }
    }

    /// Channels remembered (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        let g = self.generations.lock();
        g.young.len() + g.old.len()
    }
}

/// A voucher on its way into the store; see [`Memo::pending`].
#[derive(Debug)]
pub(crate) struct Pending<'a> {
    memo: &'a Memo,
    channel: Pubkey,
    paid: Paid,
    price: u64,
    armed: bool,
}

impl<'a> Pending<'a> {
    /// The store accepted the voucher, charging `charged`: a run starts.
    pub(crate) fn accepted(mut self, charged: u64, key: Option<RequestKey>) -> Ticket<'a> {
        self.armed = false;
        self.memo.start(self.channel, self.paid, charged, key)
    }

    /// The store answered otherwise.
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if self.armed {
            // The request went away while the store was deciding: if the
            // voucher was accepted, it paid for nothing yet.
            let entry = Memo::new_entry(&self.paid, self.price);
            self.memo
                .generations
                .lock()
                .insert(self.memo.half, self.channel, entry);
        }
    }
}

/// A handler run paid by a voucher. Dropped without [`Ticket::served`] or
/// [`Ticket::failed`] (the request went away), the run counts as failed.
#[derive(Debug)]
pub(crate) struct Ticket<'a> {
    memo: &'a Memo,
    channel: Pubkey,
    paid: Paid,
    ended: bool,
}

impl Ticket<'_> {
    fn end(&mut self, state: State) {
        self.ended = true;
        self.memo.end(&self.channel, &self.paid, state);
    }

    /// The handler answered below 500: the voucher is spent; `response` is
    /// what replays get (when it could be kept).
    pub(crate) fn served(mut self, response: Option<Arc<StoredResponse>>) {
        self.end(State::Spent(response));
    }

    /// The handler answered 5xx: the voucher pays another run while it has
    /// runs left, else it is spent.
    pub(crate) fn failed(mut self) {
        self.end(State::Credit);
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.end(State::Credit);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use paychan_voucher::VoucherV1;

    use super::*;

    fn voucher(channel: &Pubkey, cumulative: u64) -> SignedVoucher {
        SignedVoucher {
            voucher: VoucherV1 {
                channel_id: channel.to_bytes(),
                cumulative_amount: cumulative,
                expires_at: 0,
            },
            signer: [1; 32],
            signature: [cumulative as u8; 64],
        }
    }

    fn memo() -> Memo {
        Memo::new(16, 2, 1_024, 4_096)
    }

    /// A memo holding the credit a request dropped while the store decided
    /// left: its channel and voucher (cumulative 10, price 10).
    fn credited() -> (Memo, Pubkey, SignedVoucher) {
        let memo = memo();
        let c = Pubkey::new_unique();
        let v = voucher(&c, 10);
        drop(memo.pending(c, &v, 10));
        (memo, c, v)
    }

    fn key(memo: &Memo, k: &[u8], request: u8) -> Option<RequestKey> {
        Some(RequestKey {
            key: memo.key_hash(k),
            request: [request; 32],
        })
    }

    fn response(memo: &Memo, body: &'static [u8]) -> Option<Arc<StoredResponse>> {
        memo.store_response(StatusCode::OK, HeaderMap::new(), Bytes::from_static(body))
    }

    #[test]
    fn a_replay_gets_the_stored_response_only_for_the_same_key_and_request() {
        let memo = memo();
        let c = Pubkey::new_unique();
        let v = voucher(&c, 10);
        let k = key(&memo, b"k", 1);
        let ticket = memo.pending(c, &v, 10).accepted(10, k);
        assert!(
            matches!(memo.claim(&c, &v, k, 10), Claim::Wait(_)),
            "in flight"
        );
        assert!(matches!(memo.claim(&c, &v, None, 10), Claim::Refused));
        ticket.served(response(&memo, b"body"));
        match memo.claim(&c, &v, k, 10) {
            Claim::Replay(r) => assert_eq!(&r.body[..], b"body"),
            other => panic!("{other:?}"),
        }
        // Another key, another request under the same key, no key: refused.
        assert!(matches!(
            memo.claim(&c, &v, key(&memo, b"x", 1), 10),
            Claim::Refused
        ));
        assert!(matches!(
            memo.claim(&c, &v, key(&memo, b"k", 2), 10),
            Claim::Refused
        ));
        assert!(matches!(memo.claim(&c, &v, None, 10), Claim::Refused));
        assert!(
            matches!(memo.claim(&c, &v, k, 10), Claim::Replay(_)),
            "replay 2"
        );
        assert!(
            matches!(memo.claim(&c, &v, k, 10), Claim::Refused),
            "replays are bounded"
        );
        assert!(matches!(
            memo.claim(&c, &voucher(&c, 11), k, 1),
            Claim::Refused
        ));
    }

    #[test]
    fn failed_or_abandoned_runs_leave_a_bounded_credit() {
        let memo = memo();
        let c = Pubkey::new_unique();
        let v = voucher(&c, 10);
        memo.pending(c, &v, 10).accepted(10, None).failed();
        assert!(
            matches!(memo.claim(&c, &v, None, 11), Claim::Refused),
            "below the price"
        );
        let Claim::Run(ticket) = memo.claim(&c, &v, None, 10) else {
            panic!("a credit pays a second run")
        };
        drop(ticket); // the client went away mid-run
        let Claim::Run(ticket) = memo.claim(&c, &v, None, 10) else {
            panic!("an abandoned run leaves a credit")
        };
        ticket.failed();
        assert!(
            matches!(memo.claim(&c, &v, None, 10), Claim::Refused),
            "{MAX_RUNS} runs at most"
        );
    }

    #[test]
    fn a_request_dropped_while_the_store_decides_leaves_a_credit() {
        let (memo, c, v) = credited();
        assert!(matches!(memo.claim(&c, &v, None, 10), Claim::Run(_)));
        // A refused voucher leaves nothing.
        let w = voucher(&c, 20);
        memo.pending(c, &w, 10).disarm();
        assert!(matches!(memo.claim(&c, &w, None, 10), Claim::Refused));
    }

    #[test]
    fn stored_bodies_stay_within_their_budget() {
        let memo = Memo::new(16, 2, 8, 16);
        assert!(
            memo.store_response(StatusCode::OK, HeaderMap::new(), Bytes::from(vec![0; 9]))
                .is_none()
        );
        let a = memo.store_response(StatusCode::OK, HeaderMap::new(), Bytes::from(vec![0; 8]));
        let b = memo.store_response(StatusCode::OK, HeaderMap::new(), Bytes::from(vec![0; 8]));
        assert!(a.is_some() && b.is_some());
        assert!(
            memo.store_response(StatusCode::OK, HeaderMap::new(), Bytes::from(vec![0; 1]))
                .is_none()
        );
        drop(a);
        assert!(
            memo.store_response(StatusCode::OK, HeaderMap::new(), Bytes::from(vec![0; 8]))
                .is_some()
        );
    }

    #[test]
    fn memory_is_bounded_and_recent_channels_survive() {
        let memo = Memo::new(8, 1, 16, 64);
        let first = Pubkey::new_unique();
        let v = voucher(&first, 1);
        memo.pending(first, &v, 1).accepted(1, None).failed();
        for i in 0..100u64 {
            let c = Pubkey::new_unique();
            memo.pending(c, &voucher(&c, i), 1)
                .accepted(1, None)
                .served(None);
            assert!(memo.len() <= 8);
        }
        assert!(
            matches!(memo.claim(&first, &v, None, 1), Claim::Refused),
            "evicted"
        );
        let last = Pubkey::new_unique();
        let v = voucher(&last, 5);
        memo.pending(last, &v, 5).accepted(5, None).failed();
        assert!(matches!(memo.claim(&last, &v, None, 5), Claim::Run(_)));
    }

    /// A channel's credit pays only the voucher that left it: not another
    /// amount, nor the same amount with another signature, nor another
    /// amount that happens to carry the same signature bytes.
    #[test]
    fn a_credit_pays_only_the_voucher_that_left_it() {
        let (memo, c, v) = credited();
        let mut resigned = v;
        resigned.signature[0] ^= 1;
        let mut same_signature = voucher(&c, 20);
        same_signature.signature = v.signature;
        for other in [voucher(&c, 20), resigned, same_signature] {
            assert!(matches!(memo.claim(&c, &other, None, 10), Claim::Refused));
        }
        assert!(matches!(memo.claim(&c, &v, None, 10), Claim::Run(_)));
    }

    /// Up to `capacity / 2` channels are all remembered at once (the young
    /// generation fills before it ages).
    #[test]
    fn channels_up_to_half_the_capacity_are_all_remembered() {
        let memo = Memo::new(8, 1, 16, 64);
        let channels: Vec<Pubkey> = (0..4).map(|_| Pubkey::new_unique()).collect();
        for (i, c) in channels.iter().enumerate() {
            let v = voucher(c, 10 + i as u64);
            memo.pending(*c, &v, 1).accepted(1, None).failed();
        }
        assert_eq!(memo.len(), 4);
        for (i, c) in channels.iter().enumerate() {
            let v = voucher(c, 10 + i as u64);
            assert!(matches!(memo.claim(c, &v, None, 1), Claim::Run(_)), "{i}");
        }
    }

    /// Only a retry with the run's own Idempotency-Key waits for it: a
    /// retry without one, of a run without one, is refused at once.
    #[test]
    fn a_keyless_retry_does_not_wait_for_a_keyless_run() {
        let memo = memo();
        let c = Pubkey::new_unique();
        let v = voucher(&c, 10);
        let ticket = memo.pending(c, &v, 10).accepted(10, None);
        assert!(matches!(memo.claim(&c, &v, None, 10), Claim::Refused));
        ticket.served(None);
        assert!(matches!(memo.claim(&c, &v, None, 10), Claim::Refused));
    }
}
