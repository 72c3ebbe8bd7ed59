//! The duplicate check of `exact` settlements: every transaction message
//! (its SHA-256) this process is settling, has settled, or has sent without
//! a confirmation, remembered for at least the window (120 s by default,
//! the reference's `SETTLEMENT_TTL_MS`) after it was last decided, in a
//! bounded map. A transaction that failed (refused, failed on chain,
//! expired) is forgotten at once: it can be presented again.
//!
//! A settled transaction carries a `claimed` flag: the first request (or
//! `/settle` call) to see it settled serves it; later ones are retries.
use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, atomic::AtomicBool},
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use paychan_verifier::Pubkey;
use solana_signature::Signature;
use tokio::sync::watch;

/// A transaction on chain, paid to the payee.
#[derive(Debug)]
pub struct Settlement {
    /// Its signature (the fee payer's).
    pub signature: Signature,
    /// The transfer's authority.
    pub payer: Pubkey,
    /// What the transfer moved.
    pub amount: u64,
    /// What the fee payer paid for it, lamports (from the transaction's
    /// signatures and compute budget).
    pub fee: u64,
    /// The client's signature: with `amount`, the identity of the payment
    /// in the paywall's memory of runs.
    pub(crate) client_signature: [u8; 64],
    /// SHA-256 of the transaction's message: its key in that memory.
    pub(crate) message_hash: [u8; 32],
    /// Whether a request (or `/settle` call) has been answered for it.
    pub(crate) claimed: AtomicBool,
}

#[derive(Debug)]
enum State {
    /// Being settled; `true` is sent when decided.
    Settling(watch::Receiver<bool>),
    /// On chain.
    Settled(Arc<Settlement>),
    /// Sent, not confirmed before the deadline: what it settles if it lands.
    Pending(Arc<Settlement>),
}

#[derive(Debug)]
struct Entry {
    /// When it was inserted or last decided: it is kept `window` after that.
    at: Instant,
    state: State,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<[u8; 32], Entry>,
    /// Keys by time, oldest first; an item is stale when its time is not
    /// its entry's `at` (the entry was decided again or removed).
    order: VecDeque<([u8; 32], Instant)>,
}

/// What [`Ledger::begin`] found.
#[derive(Debug)]
pub(crate) enum Begin {
    /// Unknown: the caller settles it and ends the slot.
    Fresh(Slot),
    /// Being settled by another request: wait for `true`, then begin again.
    Wait(watch::Receiver<bool>),
    /// On chain.
    Settled(Arc<Settlement>),
    /// Sent without a confirmation: ask the chain again.
    Pending(Arc<Settlement>),
    /// The map is full of live entries.
    Full,
}

/// How a settlement attempt ended, for [`Slot::end`].
#[derive(Debug)]
pub(crate) enum End {
    /// On chain.
    Settled(Arc<Settlement>),
    /// Sent, not confirmed.
    Pending(Arc<Settlement>),
    /// Refused, failed or not sent: forgotten.
    Forget,
}

/// The right to settle one transaction. Dropped without [`Slot::end`], the
/// transaction is forgotten (and waiters wake up).
#[derive(Debug)]
pub(crate) struct Slot {
    ledger: Arc<Ledger>,
    key: [u8; 32],
    done: Option<watch::Sender<bool>>,
}

impl Slot {
    /// Records how the attempt ended and wakes the waiters.
    pub(crate) fn end(mut self, end: End) {
        self.finish(end);
    }

    fn finish(&mut self, end: End) {
        let Some(done) = self.done.take() else {
            return;
        };
        self.ledger.decide(&self.key, end);
        let _ = done.send(true);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.finish(End::Forget);
    }
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Ledger {
    inner: Mutex<Inner>,
    window: Duration,
    capacity: usize,
}

impl Ledger {
    /// Remembers each decided transaction for `window`, at most `capacity`
    /// transactions (at least 1) at a time.
    pub(crate) fn new(window: Duration, capacity: usize) -> Self {
        Self {
            inner: Mutex::default(),
            window,
            capacity: capacity.max(1),
        }
    }

    /// What is known of the transaction whose message hashes to `key`;
    /// unknown, it is inserted as being settled by the caller.
    pub(crate) fn begin(self: &Arc<Self>, key: [u8; 32]) -> Begin {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        self.prune(&mut inner, now);
        if let Some(entry) = inner.entries.get(&key) {
            return match &entry.state {
                State::Settling(rx) => Begin::Wait(rx.clone()),
                State::Settled(s) => Begin::Settled(s.clone()),
                State::Pending(s) => Begin::Pending(s.clone()),
            };
        }
        if inner.entries.len() >= self.capacity {
            return Begin::Full;
        }
        let (tx, rx) = watch::channel(false);
        inner.entries.insert(
            key,
            Entry {
                at: now,
                state: State::Settling(rx),
            },
        );
        inner.order.push_back((key, now));
        Begin::Fresh(Slot {
            ledger: self.clone(),
            key,
            done: Some(tx),
        })
    }

    /// A pending transaction found on chain (or failed) on a later look.
    pub(crate) fn resolve_pending(&self, key: &[u8; 32], end: End) {
        let inner = self.inner.lock();
        if matches!(
            inner.entries.get(key).map(|e| &e.state),
            Some(State::Pending(_))
        ) {
            drop(inner);
            self.decide(key, end);
        } else {
            drop(inner);
        }
    }

    fn decide(&self, key: &[u8; 32], end: End) {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        let state = match end {
            End::Settled(s) => State::Settled(s),
            End::Pending(s) => State::Pending(s),
            End::Forget => {
                inner.entries.remove(key);
                return;
            }
        };
        inner.entries.insert(*key, Entry { at: now, state });
        inner.order.push_back((*key, now));
    }

    /// Drops entries older than the window (never one being settled), and
    /// compacts the order queue when stale items pile up.
    fn prune(&self, inner: &mut Inner, now: Instant) {
        while let Some((key, at)) = inner.order.front().copied() {
            if now.saturating_duration_since(at) < self.window {
                break;
            }
            inner.order.pop_front();
            let current = inner
                .entries
                .get(&key)
                .is_some_and(|e| e.at == at && !matches!(e.state, State::Settling(_)));
            if current {
                inner.entries.remove(&key);
            }
        }
        // Items of removed or re-decided entries pile up under failures:
        // keep the queue within twice the capacity. (An entry being settled
        // whose item was popped gets a new one when it is decided.)
        if inner.order.len() > self.capacity.saturating_mul(2) {
            let Inner { entries, order } = inner;
            order.retain(|(key, at)| entries.get(key).is_some_and(|e| e.at == *at));
        }
    }

    /// Transactions remembered (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    fn settlement() -> Arc<Settlement> {
        Arc::new(Settlement {
            signature: Signature::default(),
            payer: Pubkey::new_unique(),
            amount: 1,
            fee: 5_000,
            client_signature: [1; 64],
            message_hash: [2; 32],
            claimed: AtomicBool::new(false),
        })
    }

    #[test]
    fn a_transaction_is_settled_once_and_remembered_for_the_window() {
        let ledger = Arc::new(Ledger::new(Duration::from_millis(50), 8));
        let Begin::Fresh(slot) = ledger.begin([1; 32]) else {
            panic!("fresh")
        };
        let Begin::Wait(mut rx) = ledger.begin([1; 32]) else {
            panic!("in progress")
        };
        slot.end(End::Settled(settlement()));
        assert!(*rx.borrow_and_update());
        let Begin::Settled(s) = ledger.begin([1; 32]) else {
            panic!("settled")
        };
        assert!(!s.claimed.swap(true, Ordering::AcqRel), "first claim");
        let Begin::Settled(s) = ledger.begin([1; 32]) else {
            panic!("settled")
        };
        assert!(s.claimed.load(Ordering::Acquire), "a retry");
        std::thread::sleep(Duration::from_millis(60));
        assert!(
            matches!(ledger.begin([1; 32]), Begin::Fresh(_)),
            "forgotten after the window"
        );
    }

    #[test]
    fn failures_are_forgotten_and_pending_ones_kept() {
        let ledger = Arc::new(Ledger::new(Duration::from_secs(120), 8));
        let Begin::Fresh(slot) = ledger.begin([2; 32]) else {
            panic!()
        };
        drop(slot);
        let Begin::Fresh(slot) = ledger.begin([2; 32]) else {
            panic!("a dropped attempt is forgotten")
        };
        slot.end(End::Forget);
        assert_eq!(ledger.len(), 0);
        let Begin::Fresh(slot) = ledger.begin([2; 32]) else {
            panic!()
        };
        slot.end(End::Pending(settlement()));
        assert!(matches!(ledger.begin([2; 32]), Begin::Pending(_)));
        ledger.resolve_pending(&[2; 32], End::Settled(settlement()));
        assert!(matches!(ledger.begin([2; 32]), Begin::Settled(_)));
        // Only a pending entry is resolved.
        ledger.resolve_pending(&[2; 32], End::Forget);
        assert!(matches!(ledger.begin([2; 32]), Begin::Settled(_)));
    }

    #[test]
    fn memory_is_bounded_and_live_entries_are_never_evicted() {
        let ledger = Arc::new(Ledger::new(Duration::from_secs(120), 4));
        let mut slots = Vec::new();
        for i in 0..4u8 {
            let Begin::Fresh(slot) = ledger.begin([i; 32]) else {
                panic!()
            };
            slots.push(slot);
        }
        assert!(matches!(ledger.begin([9; 32]), Begin::Full));
        for slot in slots.drain(..2) {
            slot.end(End::Forget);
        }
        assert!(matches!(ledger.begin([9; 32]), Begin::Fresh(_)));
        // Many failures leave nothing behind.
        for i in 0..1_000u32 {
            let mut key = [0xee; 32];
            key[..4].copy_from_slice(&i.to_le_bytes());
            if let Begin::Fresh(slot) = ledger.begin(key) {
                slot.end(End::Forget);
            }
        }
        assert!(ledger.inner.lock().order.len() <= 8 + 1);
        assert_eq!(ledger.len(), 2);
    }
}
