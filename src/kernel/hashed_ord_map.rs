//! `HashedOrdMap<K, V>`: a map whose point look-ups go through a hash table (a fixed hasher, so
//! the same on every machine; never iterated for order) and whose walks in key order go through
//! a separate ordered set of its keys. For maps with many long string keys, read and written one
//! key at a time on the hot path and walked in order rarely (issue 16: etcd's MVCC index of
//! `cluster-15k`, 170,000 keys sharing long prefixes: a search-tree look-up compares a dozen of
//! them, each behind a pointer, where a hash look-up compares one). The ordered set changes only
//! when a key joins or leaves the map.
//!
//! The hash table hashes each key by its [`LookupKey`] hash (an interned key's address: no text
//! read), and is only ever searched, or walked to compare; walks in order go through the set.
//!
//! Equality and hashing see the entries in key order, exactly as an ordered map's
//! (`imbl::OrdMap` hashes each `(key, value)` in key order), so explorer states compare and hash
//! as before.

use std::hash::{Hash, Hasher};
use std::ops::Bound;

use imbl::OrdSet;

use super::lookup_key::LookupKey;
use super::lookup_table::LookupTable;

/// How many keys [`HashedOrdMap::range_from_ahead`] walks before it asks ahead.
pub const RANGE_START: usize = 32;
/// How many keys ahead [`HashedOrdMap::range_from_ahead`] asks for a key's table group and text.
pub const RANGE_FAR: usize = 16;
/// How many keys ahead [`HashedOrdMap::range_from_ahead`] asks for a key's entry.
pub const RANGE_NEAR: usize = 8;

/// Entries by key, hashed for look-ups and ordered for walks (see the module doc).
#[derive(Clone)]
pub struct HashedOrdMap<K: Ord + Hash + LookupKey, V> {
    entries: LookupTable<K, V>,
    order: OrdSet<K>,
}

impl<K: Ord + Hash + LookupKey, V> Default for HashedOrdMap<K, V> {
    fn default() -> Self {
        HashedOrdMap {
            entries: LookupTable::new(),
            order: OrdSet::new(),
        }
    }
}

impl<K: Ord + Hash + LookupKey, V> HashedOrdMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key)
    }

    /// Asks for the lines a look-up of `key` reads at `stage` (a hint;
    /// [`LookupTable::prefetch`]).
    #[inline]
    pub fn prefetch(&self, key: &K, stage: super::prefetch::Stage) {
        self.entries.prefetch(key, stage);
    }

    /// The value of `key`, to change.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.entries.get_mut(key)
    }

    /// Sets the value of `key`; returns the one it replaces.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let old = self.entries.insert(key.clone(), value);
        if old.is_none() {
            self.order.insert(key);
        }
        old
    }

    /// The value of `key`, inserted as the default first if absent.
    pub fn get_or_default(&mut self, key: &K) -> &mut V
    where
        V: Default,
    {
        let (value, fresh) = self.entries.get_or_insert_with(key, V::default);
        if fresh {
            self.order.insert(key.clone());
        }
        value
    }

    /// Removes `key`'s value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let old = self.entries.remove(key)?;
        self.order.remove(key);
        Some(old)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.order.iter().map(|k| (k, self.present(k)))
    }

    /// The value of `key`, which the ordered set lists (so the table holds it).
    fn present(&self, key: &K) -> &V {
        self.entries
            .get(key)
            .expect("every key of the ordered set is in the table")
    }

    /// The entries from `start` on (inclusive or not), in key order.
    pub fn range_from(&self, start: &K, inclusive: bool) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.order
            .range((Self::lower(start, inclusive), Bound::Unbounded))
            .map(|k| (k, self.present(k)))
    }

    /// [`Self::range_from`] for walks that may be long: each key's value is a random read of
    /// the table, so once the walk has gone [`RANGE_START`] keys it asks for the lines of the
    /// keys ahead of it, in two stages (see [`LookupTable::prefetch`]): [`RANGE_FAR`] keys
    /// ahead the table's control bytes and the key's text (which the caller compares),
    /// [`RANGE_NEAR`] ahead the entry (issue 16: the apiservers' first lists from etcd, 30,000
    /// pages at `cluster-15k`'s start, waited on three misses a key). A short walk (a node's
    /// pods) asks for nothing. Hints only: the entries are [`Self::range_from`]'s.
    pub fn range_from_ahead(
        &self,
        start: &K,
        inclusive: bool,
    ) -> impl Iterator<Item = (&K, &V)> + '_ {
        use super::prefetch::Stage;
        let mut walked = 0usize;
        let mut ahead = None;
        self.order
            .range((Self::lower(start, inclusive), Bound::Unbounded))
            .map(move |k| {
                walked += 1;
                if walked == RANGE_START {
                    let after = || {
                        self.order
                            .range((Bound::Excluded(k.clone()), Bound::Unbounded))
                    };
                    ahead = Some((after().skip(RANGE_FAR - 1), after().skip(RANGE_NEAR - 1)));
                }
                if let Some((far, near)) = ahead.as_mut() {
                    if let Some(f) = far.next() {
                        self.entries.prefetch(f, Stage::Table);
                        f.prefetch_text();
                    }
                    if let Some(n) = near.next() {
                        self.entries.prefetch(n, Stage::Entry);
                    }
                }
                (k, self.present(k))
            })
    }

    fn lower(start: &K, inclusive: bool) -> Bound<K> {
        if inclusive {
            Bound::Included(start.clone())
        } else {
            Bound::Excluded(start.clone())
        }
    }
}

impl<K: Ord + Hash + LookupKey, V> FromIterator<(K, V)> for HashedOrdMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = HashedOrdMap::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

impl<K: Ord + Hash + LookupKey + std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug
    for HashedOrdMap<K, V>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Ord + Hash + LookupKey, V: PartialEq> PartialEq for HashedOrdMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .entries
                .iter()
                .all(|(k, v)| other.entries.get(k).is_some_and(|o| o == v))
    }
}

impl<K: Ord + Hash + LookupKey, V: Eq> Eq for HashedOrdMap<K, V> {}

impl<K: Ord + Hash + LookupKey, V: Hash> Hash for HashedOrdMap<K, V> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        for entry in self.iter() {
            entry.hash(h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kernel::std_hash_of as hash_of;

    #[test]
    fn walks_in_key_order_from_any_start() {
        let m: HashedOrdMap<String, u8> = [("b", 2), ("d", 4), ("a", 1), ("c", 3)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let keys =
            |it: Vec<(&String, &u8)>| it.into_iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        assert_eq!(keys(m.iter().collect()), ["a", "b", "c", "d"]);
        assert_eq!(
            keys(m.range_from(&"b".to_string(), true).collect()),
            ["b", "c", "d"]
        );
        assert_eq!(
            keys(m.range_from(&"b".to_string(), false).collect()),
            ["c", "d"]
        );
        assert_eq!(
            keys(m.range_from(&"bb".to_string(), true).collect()),
            ["c", "d"]
        );
    }

    /// The walk that asks ahead yields exactly the plain walk's entries, from every start,
    /// inclusive or not, over maps shorter and longer than how far it asks ahead (interned keys, whose text it asks
    /// for too, in `etcd::key_index`'s tests).
    #[test]
    fn the_walk_asking_ahead_is_the_plain_walk() {
        let start_at = RANGE_START as u32;
        for n in [
            0u32,
            1,
            RANGE_NEAR as u32,
            RANGE_FAR as u32 + 3,
            start_at,
            start_at + 9,
            200,
        ] {
            let m: HashedOrdMap<u32, u32> = (0..n).map(|i| (i * 2, i)).collect();
            for start in 0..2 * n + 2 {
                for inclusive in [true, false] {
                    let plain: Vec<_> = m.range_from(&start, inclusive).collect();
                    let ahead: Vec<_> = m.range_from_ahead(&start, inclusive).collect();
                    assert_eq!(plain, ahead, "n {n}, from {start}, inclusive {inclusive}");
                }
            }
        }
    }

    #[test]
    fn insert_remove_and_default_keep_the_order_in_step() {
        let mut m: HashedOrdMap<u32, Vec<u8>> = HashedOrdMap::new();
        m.get_or_default(&5).push(1);
        m.get_or_default(&5).push(2);
        assert_eq!(m.insert(3, vec![9]), None);
        assert_eq!(m.insert(3, vec![8]), Some(vec![9]));
        assert_eq!(m.get(&5), Some(&vec![1, 2]));
        assert_eq!(m.remove(&5), Some(vec![1, 2]));
        assert_eq!(m.remove(&5), None);
        assert_eq!(m.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [3]);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn equal_and_hashed_as_an_ordered_map() {
        let a: HashedOrdMap<u32, u8> = [(1, 10), (2, 20)].into_iter().collect();
        let mut b: HashedOrdMap<u32, u8> = [(2, 20), (3, 30), (1, 10)].into_iter().collect();
        assert_ne!(a, b);
        b.remove(&3);
        assert_eq!(a, b);
        let ordered: imbl::OrdMap<u32, u8> = [(1u32, 10u8), (2, 20)].into_iter().collect();
        assert_eq!(hash_of(&a), hash_of(&ordered));
        assert_eq!(hash_of(&a), hash_of(&b));
    }
}
