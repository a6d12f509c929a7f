//! `SortedMap<K, V>`: a small ordered map kept as one sorted `Vec` of entries behind an `Arc`
//! (copied on the first write after a clone, so an explorer state's copy shares it until then).
//! For maps of a few dozen entries walked on the hot path, where a persistent B-tree's cursor and
//! copy-on-write checks cost more than the walk itself (issue 16: etcd's watchers, walked on
//! every write, cost ~2,000 instructions a write in `imbl::OrdMap`). A walk may stop at an entry
//! by its position and come back to it by that position ([`SortedMap::value_at_mut`]) without a
//! second search.
//!
//! Equality and hashing see the entries in key order, each `(key, value)` hashed in turn, exactly
//! as `imbl::OrdMap` hashes, so explorer states compare and hash as before.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::ops::RangeInclusive;
use triomphe::Arc;

/// An ordered map in one sorted vector (see the module doc).
#[derive(Clone, PartialEq, Eq)]
pub struct SortedMap<K, V>(Arc<Vec<(K, V)>>);

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        SortedMap(Arc::new(Vec::new()))
    }
}

impl<K: Hash, V: Hash> Hash for SortedMap<K, V> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for (k, v) in self.0.iter() {
            (k, v).hash(state);
        }
    }
}

impl<K: std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for SortedMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

impl<K: Ord + Clone, V: Clone> SortedMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    fn position<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.0.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    fn entries_mut(&mut self) -> &mut Vec<(K, V)> {
        Arc::make_mut(&mut self.0)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of `key`.
    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.position(key).ok().map(|i| &self.0[i].1)
    }

    /// The value of `key`, to change.
    pub fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let i = self.position(key).ok()?;
        Some(&mut self.entries_mut()[i].1)
    }

    /// True when `key` is present.
    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.position(key).is_ok()
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.position(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries_mut()[i].1, value)),
            Err(i) => {
                self.entries_mut().insert(i, (key, value));
                None
            }
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let i = self.position(key).ok()?;
        Some(self.entries_mut().remove(i).1)
    }

    /// Every entry in key order (the n-th is at position n).
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// The entries whose keys fall in `range`, in key order.
    pub fn range(&self, range: RangeInclusive<K>) -> impl Iterator<Item = (&K, &V)> + '_ {
        let from = self.0.partition_point(|(k, _)| k < range.start());
        let to = self.0.partition_point(|(k, _)| k <= range.end());
        self.0[from..to.max(from)].iter().map(|(k, v)| (k, v))
    }

    /// The entry at position `i` (as counted by [`SortedMap::iter`]).
    pub fn entry_at(&self, i: usize) -> (&K, &V) {
        let (k, v) = &self.0[i];
        (k, v)
    }

    /// The value at position `i` (as counted by [`SortedMap::iter`]), to change.
    pub fn value_at_mut(&mut self, i: usize) -> &mut V {
        &mut self.entries_mut()[i].1
    }

    /// Every value in key order.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.0.iter().map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imbl::OrdMap;

    #[test]
    fn answers_hashes_and_compares_as_an_ordered_map() {
        let mut m: SortedMap<(u64, i64), &str> = SortedMap::new();
        let mut o: OrdMap<(u64, i64), &str> = OrdMap::new();
        for (k, v) in [
            ((2, 1), "a"),
            ((1, 5), "b"),
            ((2, 0), "c"),
            ((1, 5), "d"),
            ((3, 9), "e"),
        ] {
            assert_eq!(m.insert(k, v), o.insert(k, v));
        }
        assert_eq!(m.remove(&(3, 9)), o.remove(&(3, 9)));
        assert_eq!(m.remove(&(7, 7)), None);
        let mine: Vec<_> = m.iter().map(|(k, v)| (*k, *v)).collect();
        let theirs: Vec<_> = o.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(mine, theirs);
        let span: Vec<_> = m
            .range((2, i64::MIN)..=(2, i64::MAX))
            .map(|(k, _)| *k)
            .collect();
        assert_eq!(span, [(2, 0), (2, 1)]);
        assert_eq!(m.range((5, 0)..=(6, 0)).count(), 0);
        assert_eq!(
            crate::kernel::std_hash_of(&m),
            crate::kernel::std_hash_of(&o)
        );
        let copy = m.clone();
        *m.value_at_mut(0) = "z";
        assert_eq!(
            copy.get(&(1, 5)),
            Some(&"d"),
            "a clone keeps its own entries"
        );
        assert_eq!(m.get(&(1, 5)), Some(&"z"));
        assert_ne!(copy, m);
        assert!(m.contains_key(&(2, 1)) && !m.contains_key(&(3, 9)));
        assert_eq!(m.len(), 3);
    }
}
