//! The urgent queue's throttle: at most one urgent settlement per channel
//! per interval, in bounded memory.
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use paychan_sdk::Pubkey;

/// When each channel was last settled urgently, forgotten once `interval`
/// has passed. Holds at most `capacity` channels: while it is full of
/// channels settled within the interval, other channels are refused (they
/// wait for the normal schedule) rather than remembered.
#[derive(Debug)]
pub(crate) struct UrgentThrottle {
    interval: Duration,
    capacity: usize,
    last: HashMap<Pubkey, Instant>,
}

impl UrgentThrottle {
    pub(crate) fn new(interval: Duration, capacity: usize) -> Self {
        Self {
            interval,
            capacity,
            last: HashMap::new(),
        }
    }

    /// Whether `channel` may be settled urgently at `now`.
    pub(crate) fn allows(&mut self, channel: &Pubkey, now: Instant) -> bool {
        if let Some(last) = self.last.get(channel) {
            return now.saturating_duration_since(*last) >= self.interval;
        }
        if self.last.len() >= self.capacity {
            self.prune(now);
        }
        self.last.len() < self.capacity
    }

    /// Records an urgent settlement of `channel` at `now` (only after
    /// [`Self::allows`] said yes, so there is room).
    pub(crate) fn record(&mut self, channel: Pubkey, now: Instant) {
        if self.last.len() >= self.capacity && !self.last.contains_key(&channel) {
            self.prune(now);
            if self.last.len() >= self.capacity {
                return;
            }
        }
        self.last.insert(channel, now);
    }

    /// Forgets the channels whose interval has passed.
    fn prune(&mut self, now: Instant) {
        let interval = self.interval;
        self.last
            .retain(|_, last| now.saturating_duration_since(*last) < interval);
    }

    /// Channels remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.last.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> Pubkey {
        Pubkey::new_from_array([i; 32])
    }

    #[test]
    fn one_urgent_settlement_per_channel_per_interval() {
        let start = Instant::now();
        let mut t = UrgentThrottle::new(Duration::from_secs(60), 8);
        assert!(t.allows(&key(1), start));
        t.record(key(1), start);
        assert!(!t.allows(&key(1), start));
        assert!(!t.allows(&key(1), start + Duration::from_secs(59)));
        assert!(t.allows(&key(2), start), "other channels are not throttled");
        assert!(t.allows(&key(1), start + Duration::from_secs(60)));
        t.record(key(1), start + Duration::from_secs(60));
        assert!(!t.allows(&key(1), start + Duration::from_secs(61)));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn memory_is_bounded_and_expired_entries_make_room() {
        let start = Instant::now();
        let mut t = UrgentThrottle::new(Duration::from_secs(60), 4);
        for i in 0..4 {
            assert!(t.allows(&key(i), start));
            t.record(key(i), start);
        }
        // Full of recent settlements: a fifth channel is refused, not added.
        assert!(!t.allows(&key(9), start + Duration::from_secs(1)));
        t.record(key(9), start + Duration::from_secs(1));
        assert_eq!(t.len(), 4);
        assert!(!t.allows(&key(9), start + Duration::from_secs(2)));
        // Once their interval has passed they are forgotten.
        let later = start + Duration::from_secs(60);
        assert!(t.allows(&key(9), later));
        assert_eq!(t.len(), 0);
        t.record(key(9), later);
        assert_eq!(t.len(), 1);
        assert!(!t.allows(&key(9), later));
    }
}
