//! A compact map from 32-byte keys (channel addresses) to small records, for
//! the per-channel state a verifier keeps in memory.
//!
//! A `HashMap<Pubkey, V>` at one million entries sits in 2²¹ buckets (load
//! factor ≤ 7/8, power-of-two sizes): every key and value is paid for about
//! 2.1 times. Here the records live once, densely, in a `Vec`, and the hash
//! table holds only a `u32` position per bucket (5 bytes with its control
//! byte), so a million channels cost ~10 bytes of index each plus the
//! records themselves. Removal swaps the last record into the hole.
//! (`indexmap` has the same layout but keeps a `usize` position and the
//! 8-byte hash per entry: about 16 more bytes a channel, which would take
//! the verifier past its 256-byte budget.)
//!
//! Keys are hashed with a per-process random SipHash key (`RandomState`):
//! channel addresses are chosen by whoever opens a channel, so an unkeyed
//! hash would let them aim collisions at one bucket.
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

/// A channel address.
pub type Key = [u8; 32];

/// The map is full: positions are `u32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("more than {} tracked channels", u32::MAX)]
pub struct TableFull;

/// Dense records indexed by a hash table of positions.
pub struct DenseMap<V> {
    hasher: RandomState,
    index: HashTable<u32>,
    entries: Vec<(Key, V)>,
}

impl<V> Default for DenseMap<V> {
    fn default() -> Self {
        Self {
            hasher: RandomState::new(),
            index: HashTable::new(),
            entries: Vec::new(),
        }
    }
}

impl<V> std::fmt::Debug for DenseMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DenseMap")
            .field("len", &self.entries.len())
            .finish()
    }
}

impl<V> DenseMap<V> {
    fn hash(&self, key: &Key) -> u64 {
        self.hasher.hash_one(key)
    }

    fn position(&self, key: &Key) -> Option<usize> {
        let entries = &self.entries;
        self.index
            .find(self.hash(key), |&i| {
                entries.get(i as usize).is_some_and(|(k, _)| k == key)
            })
            .map(|&i| i as usize)
    }

    /// The record of `key`.
    pub fn get(&self, key: &Key) -> Option<&V> {
        let i = self.position(key)?;
        self.entries.get(i).map(|(_, v)| v)
    }

    /// The record of `key`, mutably.
    pub fn get_mut(&mut self, key: &Key) -> Option<&mut V> {
        let i = self.position(key)?;
        self.entries.get_mut(i).map(|(_, v)| v)
    }

    /// Inserts or replaces; returns the replaced record.
    pub fn insert(&mut self, key: Key, value: V) -> Result<Option<V>, TableFull> {
        if let Some(slot) = self.get_mut(&key) {
            return Ok(Some(std::mem::replace(slot, value)));
        }
        let position = u32::try_from(self.entries.len()).map_err(|_| TableFull)?;
        let hash = self.hash(&key);
        let (hasher, entries) = (&self.hasher, &self.entries);
        self.index.insert_unique(hash, position, |&i| {
            entries
                .get(i as usize)
                .map_or(0, |(k, _)| hasher.hash_one(k))
        });
        self.entries.push((key, value));
        Ok(None)
    }

    /// Removes `key`; the last record moves into its place.
    pub fn remove(&mut self, key: &Key) -> Option<V> {
        let hash = self.hash(key);
        let entries = &self.entries;
        let slot = self.index.find_entry(hash, |&i| {
            entries.get(i as usize).is_some_and(|(k, _)| k == key)
        });
        let position = match slot {
            Ok(entry) => entry.remove().0 as usize,
            Err(_) => return None,
        };
        // `position` came from the index, so `entries` is not empty.
        let last = self.entries.len().saturating_sub(1);
        if position != last
            && let Some((moved, _)) = self.entries.get(last)
        {
            // Re-point the moved record's bucket from `last` to `position`
            // (`position < last ≤ u32::MAX`).
            let moved_hash = self.hash(moved);
            if let Some(p) = self.index.find_mut(moved_hash, |&i| i as usize == last) {
                *p = position as u32;
            }
        }
        Some(self.entries.swap_remove(position).1)
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every key and record, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u8, u32),
        Remove(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<u8>(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            any::<u8>().prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// Any sequence of inserts and removes leaves the map equal to a
        /// `HashMap` given the same sequence (swap-remove bookkeeping).
        #[test]
        fn behaves_like_a_hashmap(ops in proptest::collection::vec(op(), 0..400)) {
            let mut dense = DenseMap::default();
            let mut model = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        prop_assert_eq!(dense.insert([k; 32], v).unwrap(), model.insert([k; 32], v));
                    }
                    Op::Remove(k) => {
                        prop_assert_eq!(dense.remove(&[k; 32]), model.remove(&[k; 32]));
                    }
                }
                prop_assert_eq!(dense.len(), model.len());
            }
            for k in 0..=u8::MAX {
                prop_assert_eq!(dense.get(&[k; 32]), model.get(&[k; 32]));
            }
            let mut all: Vec<_> = dense.iter().map(|(k, v)| (*k, *v)).collect();
            let mut expected: Vec<_> = model.into_iter().collect();
            all.sort_unstable();
            expected.sort_unstable();
            prop_assert_eq!(all, expected);
        }
    }
}
