//! The layer's per-channel memory of the last voucher it accepted and how
//! that request ended (docs/004, "Not charged on failure; retries").
//!
//! Two generations of at most `half` channels each: inserting into a full
//! young generation turns it into the old one (dropping the previous old
//! one), so memory stays below `2 · half` entries with O(1) work per request.
use std::{collections::HashMap, hash::BuildHasher};

use parking_lot::Mutex;
use paychan_verifier::{Pubkey, SignedVoucher};

/// How the request paid by a voucher ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// The handler is running (or its future was dropped): treated as spent.
    InFlight,
    /// The handler answered 5xx: the same voucher pays one more request.
    Credit,
    /// The handler answered < 500.
    Spent,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    cumulative: u64,
    signature: [u8; 64],
    charged: u64,
    /// Hash of the `Idempotency-Key` of the request the voucher last paid.
    key: Option<u64>,
    state: State,
    /// Idempotent replays served so far.
    replays: u8,
}

impl Entry {
    fn is(&self, voucher: &SignedVoucher) -> bool {
        self.cumulative == voucher.voucher.cumulative_amount && self.signature == voucher.signature
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

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Memo {
    generations: Mutex<Generations>,
    half: usize,
    max_replays: u8,
    hasher: std::hash::RandomState,
}

impl Memo {
    /// Remembers at most `capacity` channels (at least 2).
    pub(crate) fn new(capacity: usize, max_replays: u8) -> Self {
        Self {
            generations: Mutex::default(),
            half: (capacity / 2).max(1),
            max_replays,
            hasher: std::hash::RandomState::new(),
        }
    }

    /// A per-process hash of an `Idempotency-Key` (only ever compared with
    /// keys the same channel's payer sent).
    pub(crate) fn key_hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// A fresh voucher was accepted for a request about to run.
    pub(crate) fn record(
        &self,
        channel: Pubkey,
        voucher: &SignedVoucher,
        charged: u64,
        key: Option<u64>,
    ) {
        let entry = Entry {
            cumulative: voucher.voucher.cumulative_amount,
            signature: voucher.signature,
            charged,
            key,
            state: State::InFlight,
            replays: 0,
        };
        self.generations.lock().insert(self.half, channel, entry);
    }

    /// The store says `voucher` was accepted before: whether it may pay for
    /// this request (a credit, or an idempotent retry with the same key).
    /// Returns what it was charged.
    pub(crate) fn claim(
        &self,
        channel: &Pubkey,
        voucher: &SignedVoucher,
        key: Option<u64>,
        price: u64,
    ) -> Option<u64> {
        let mut generations = self.generations.lock();
        let entry = generations.get_mut(self.half, channel)?;
        if !entry.is(voucher) || entry.charged < price {
            return None;
        }
        match entry.state {
            State::Credit => {
                entry.state = State::InFlight;
                entry.key = key;
                entry.replays = 0;
                Some(entry.charged)
            }
            State::InFlight | State::Spent => {
                if key.is_some() && key == entry.key && entry.replays < self.max_replays {
                    entry.replays += 1;
                    entry.state = State::InFlight;
                    Some(entry.charged)
                } else {
                    None
                }
            }
        }
    }

    /// The request paid by `voucher` ended; `failed` when the handler answered 5xx.
    pub(crate) fn finish(&self, channel: &Pubkey, voucher: &SignedVoucher, failed: bool) {
        let mut generations = self.generations.lock();
        if let Some(entry) = generations.get_mut(self.half, channel)
            && entry.is(voucher)
        {
            entry.state = if failed { State::Credit } else { State::Spent };
        }
    }

    /// Channels remembered (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        let g = self.generations.lock();
        g.young.len() + g.old.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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

    #[test]
    fn a_credit_pays_once_and_a_spent_voucher_only_replays_with_its_key() {
        let memo = Memo::new(16, 2);
        let c = Pubkey::new_unique();
        let v = voucher(&c, 10);
        let k = Some(memo.key_hash(b"k"));
        memo.record(c, &v, 10, None);
        assert_eq!(memo.claim(&c, &v, None, 10), None, "in flight, no key");
        memo.finish(&c, &v, true);
        assert_eq!(memo.claim(&c, &v, None, 11), None, "credit below the price");
        assert_eq!(memo.claim(&c, &v, k, 10), Some(10), "credit");
        memo.finish(&c, &v, false);
        assert_eq!(memo.claim(&c, &v, None, 10), None, "spent");
        assert_eq!(memo.claim(&c, &v, Some(memo.key_hash(b"x")), 10), None);
        assert_eq!(memo.claim(&c, &v, k, 10), Some(10), "replay 1");
        assert_eq!(memo.claim(&c, &v, k, 10), Some(10), "replay 2");
        assert_eq!(memo.claim(&c, &v, k, 10), None, "replays are bounded");
        assert_eq!(
            memo.claim(&c, &voucher(&c, 11), k, 1),
            None,
            "another voucher"
        );
    }

    #[test]
    fn memory_is_bounded_and_recent_channels_survive() {
        let memo = Memo::new(8, 1);
        let first = Pubkey::new_unique();
        let v = voucher(&first, 1);
        memo.record(first, &v, 1, None);
        memo.finish(&first, &v, true);
        for i in 0..100u64 {
            let c = Pubkey::new_unique();
            memo.record(c, &voucher(&c, i), 1, None);
            assert!(memo.len() <= 8);
        }
        assert_eq!(memo.claim(&first, &v, None, 1), None, "evicted");
        let last = Pubkey::new_unique();
        let v = voucher(&last, 5);
        memo.record(last, &v, 5, None);
        memo.finish(&last, &v, true);
        assert_eq!(memo.claim(&last, &v, None, 5), Some(5));
    }
}
