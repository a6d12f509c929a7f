//! An append-only log of entries under strictly increasing keys, trimmed from the front: etcd's
//! watch history (changes in `(main, sub)` revision order, dropped below the compact revision).
//! A ring buffer with binary search instead of an ordered tree (issue 16: appends at the end are
//! the common case, one per write, and a persistent B-tree paid a path copy for each). Equality
//! and hashing walk the entries in key order, as `imbl::OrdMap`'s did (no length prefix), so
//! explorer states hash as before.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

/// Entries in strictly increasing key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderedLog<K, V> {
    entries: VecDeque<(K, V)>,
}

impl<K, V> Default for OrderedLog<K, V> {
    fn default() -> Self {
        OrderedLog {
            entries: VecDeque::new(),
        }
    }
}

impl<K: Ord + Copy, V> OrderedLog<K, V> {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an entry whose key is above every key in the log.
    ///
    /// # Panics
    /// If `key` is not above the last key (a caller bug: the log would lose its order).
    pub fn push(&mut self, key: K, value: V) {
        assert!(
            self.entries.back().is_none_or(|(last, _)| *last < key),
            "ordered log keys must increase"
        );
        self.entries.push_back((key, value));
    }

    /// Asks for the lines the next [`push`](Self::push) writes (a hint).
    #[inline]
    pub fn prefetch_next_slot(&self) {
        super::prefetch::prefetch_after_newest(&self.entries);
    }

    /// The smallest key, if any.
    pub fn first_key(&self) -> Option<K> {
        self.entries.front().map(|(k, _)| *k)
    }

    /// Drops the entries with keys below `key`.
    pub fn drop_below(&mut self, key: K) {
        let keep_from = self.entries.partition_point(|(k, _)| *k < key);
        self.entries.drain(..keep_from);
    }

    /// The entries with keys at or above `key`, in order. Readers mostly ask for the newest few
    /// entries (what the last write appended), so the tail is scanned before a binary search.
    pub fn range_from(&self, key: K) -> impl Iterator<Item = (&K, &V)> + '_ {
        const TAIL_SCAN: usize = 8;
        let len = self.entries.len();
        let in_tail = self
            .entries
            .iter()
            .rev()
            .take(TAIL_SCAN)
            .position(|(k, _)| *k < key);
        let from = match in_tail {
            Some(newer) => len - newer,
            None if len <= TAIL_SCAN => 0,
            None => self.entries.partition_point(|(k, _)| *k < key),
        };
        self.entries.range(from..).map(|(k, v)| (k, v))
    }

    /// Keeps only the entries for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        self.entries.retain(|(k, v)| keep(k, v));
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the log is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<K: Hash, V: Hash> Hash for OrderedLog<K, V> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        for (k, v) in &self.entries {
            (k, v).hash(h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::std_hash_of;

    #[test]
    fn ranges_and_trims_by_key() {
        let mut log = OrderedLog::new();
        for (k, v) in [((1, 0), "a"), ((2, 0), "b"), ((2, 1), "c"), ((5, 0), "d")] {
            log.push(k, v);
        }
        let from_2: Vec<&str> = log.range_from((2, 0)).map(|(_, v)| *v).collect();
        assert_eq!(from_2, ["b", "c", "d"]);
        let from_3: Vec<&str> = log.range_from((3, 0)).map(|(_, v)| *v).collect();
        assert_eq!(from_3, ["d"]);
        assert_eq!(log.range_from((6, 0)).count(), 0);
        assert_eq!(log.range_from((0, 0)).count(), 4);
        let mut long = OrderedLog::new();
        for k in 0..100u32 {
            long.push(2 * k, k);
        }
        for from in [0, 1, 2, 99, 100, 101, 180, 185, 198, 199, 250] {
            let got: Vec<u32> = long.range_from(from).map(|(k, _)| *k).collect();
            let want: Vec<u32> = (0..100).map(|k| 2 * k).filter(|k| *k >= from).collect();
            assert_eq!(got, want, "from {from}");
        }
        log.drop_below((2, 1));
        assert_eq!(log.first_key(), Some((2, 1)));
        assert_eq!(log.len(), 2);
        log.retain(|_, v| *v != "d");
        assert_eq!(log.len(), 1);
    }

    #[test]
    #[should_panic(expected = "ordered log keys must increase")]
    fn refuses_an_out_of_order_key() {
        let mut log = OrderedLog::new();
        log.push(3, ());
        log.push(3, ());
    }

    #[test]
    fn hashes_like_an_ordered_map_without_length() {
        let mut log = OrderedLog::new();
        let mut map = imbl::OrdMap::new();
        for (k, v) in [(1u32, 10u64), (4, 40), (9, 90)] {
            log.push(k, v);
            map.insert(k, v);
        }
        assert_eq!(std_hash_of(&log), std_hash_of(&map));
    }
}
