//! `LookupTable<K, V>`: a hash table of `(key, value)` entries hashed by each key's
//! [`LookupKey`] hash (an interned key's address), searched and walked to compare, never walked
//! for order (see [`crate::kernel::lookup_key`]). Under it, [`HintedTable`]: `hashbrown`'s
//! `HashTable` (the table under `std`'s `HashMap`) with what the map cannot do, asking for the
//! lines a look-up of a key will read before the look-up runs.
//!
//! Issue 16: an etcd event reaches each apiserver's watch cache, and each cache writes the
//! event's key into its store, one random entry of a large table per cache; a request to etcd
//! reads its key's slot in etcd's index. A look-up done early to warm those lines still waits
//! for them (the processor holds everything after a load until it arrives), and so does the
//! step that needs them. Hints do not wait. A look-up reads the key's group of control bytes,
//! then the entry they name, so the hints come in two [`Stage`]s: the group first (its address
//! follows from the key's hash alone), then, once the group is cached, the entry (named by the
//! group, without reading the entry).

use std::hash::Hasher;
use std::sync::atomic::{AtomicUsize, Ordering};

use hashbrown::HashTable;
use hashbrown::hash_table::{Entry, OccupiedEntry};
use rustc_hash::FxHasher;

use super::lookup_key::LookupKey;
use super::prefetch::{Stage, prefetch_addr, prefetch_whole};

/// Bytes of control a probe reads at once (`hashbrown`'s group width, at most 16).
const GROUP_BYTES: usize = 16;

/// A `hashbrown::HashTable<T>` that can ask for a look-up's lines ahead (see the module doc).
pub struct HintedTable<T> {
    table: HashTable<T>,
    /// Where the table's control bytes start (0: not known), learnt from one full bucket's
    /// address and index (the entries sit right below the control bytes, the last first) ...
    ctrl: AtomicUsize,
    /// ... for the allocation of this many buckets (a table only moves when it grows).
    ctrl_buckets: AtomicUsize,
}

impl<T> Default for HintedTable<T> {
    fn default() -> Self {
        HintedTable {
            table: HashTable::new(),
            ctrl: AtomicUsize::new(0),
            ctrl_buckets: AtomicUsize::new(0),
        }
    }
}

/// A copy has its own allocation: it learns its control bytes' address afresh.
impl<T: Clone> Clone for HintedTable<T> {
    fn clone(&self) -> Self {
        HintedTable {
            table: self.table.clone(),
            ..HintedTable::default()
        }
    }
}

impl<T> HintedTable<T> {
    /// The first entry whose hash is `hash` and for which `eq` holds.
    #[inline]
    pub fn find(&self, hash: u64, eq: impl FnMut(&T) -> bool) -> Option<&T> {
        self.table.find(hash, eq)
    }

    /// [`find`](Self::find), to change.
    #[inline]
    pub fn find_mut(&mut self, hash: u64, eq: impl FnMut(&T) -> bool) -> Option<&mut T> {
        self.table.find_mut(hash, eq)
    }

    /// The entry found, or the place for it (`hasher` rehashes entries if the table grows).
    #[inline]
    pub fn entry(
        &mut self,
        hash: u64,
        eq: impl FnMut(&T) -> bool,
        hasher: impl Fn(&T) -> u64,
    ) -> Entry<'_, T> {
        self.table.entry(hash, eq, hasher)
    }

    /// The entry found, to remove it.
    #[inline]
    pub fn find_entry(
        &mut self,
        hash: u64,
        eq: impl FnMut(&T) -> bool,
    ) -> Option<OccupiedEntry<'_, T>> {
        self.table.find_entry(hash, eq).ok()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Removes every entry (the allocation stays).
    pub fn clear(&mut self) {
        self.table.clear();
    }

    /// Every entry, in the table's order.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.table.iter()
    }

    /// Asks for the lines a look-up of `hash` reads at `stage` (see the module doc): hints,
    /// which change nothing. [`Stage::Table`] reads no memory of the table but a full bucket,
    /// once per allocation; [`Stage::Entry`] reads the control bytes (ask for them first) and
    /// names the first entry whose control byte matches: when that is another key's (rarely),
    /// the hint is merely wasted.
    #[inline]
    pub fn prefetch(&self, hash: u64, stage: Stage) {
        match stage {
            Stage::Table => {
                if let Some(ctrl) = self.ctrl_addr() {
                    let group = ctrl.wrapping_add((hash as usize) & (self.table.num_buckets() - 1));
                    prefetch_addr(group as *const u8);
                    prefetch_addr(group.wrapping_add(GROUP_BYTES - 1) as *const u8);
                }
            }
            Stage::Entry => {
                if let Some(entry) = self.table.find(hash, |_| true) {
                    prefetch_whole(entry);
                }
            }
        }
    }

    /// Where the control bytes start, learnt once per allocation (`None` for an empty table).
    #[inline]
    fn ctrl_addr(&self) -> Option<usize> {
        let buckets = self.table.num_buckets();
        let ctrl = self.ctrl.load(Ordering::Relaxed);
        if ctrl != 0 && self.ctrl_buckets.load(Ordering::Relaxed) == buckets {
            return Some(ctrl);
        }
        let index = self.table.iter_buckets().next()?;
        let entry: *const T = self.table.get_bucket(index)?;
        let ctrl = (entry as usize).wrapping_add((index + 1) * std::mem::size_of::<T>());
        self.ctrl.store(ctrl, Ordering::Relaxed);
        self.ctrl_buckets.store(buckets, Ordering::Relaxed);
        Some(ctrl)
    }
}

/// Entries by key (see the module doc).
#[derive(Clone)]
pub struct LookupTable<K, V> {
    table: HintedTable<(K, V)>,
}

impl<K, V> Default for LookupTable<K, V> {
    fn default() -> Self {
        LookupTable {
            table: HintedTable::default(),
        }
    }
}

/// The hash a key is stored under: `rustc_hash`'s Fx hash of its lookup hash's input (what the
/// `std` maps with `FxBuildHasher` of before step 14 computed).
#[inline]
fn hash_of<K: LookupKey>(key: &K) -> u64 {
    let mut h = FxHasher::default();
    key.lookup_hash(&mut h);
    h.finish()
}

impl<K: LookupKey, V> LookupTable<K, V> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `key`.
    #[inline]
    pub fn get(&self, key: &K) -> Option<&V> {
        self.table
            .find(hash_of(key), |(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The value of `key`, to change.
    #[inline]
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.table
            .find_mut(hash_of(key), |(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Sets the value of `key`; returns the one it replaces.
    #[inline]
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let hash = hash_of(&key);
        match self
            .table
            .entry(hash, |(k, _)| *k == key, |(k, _)| hash_of(k))
        {
            Entry::Occupied(mut o) => Some(std::mem::replace(&mut o.get_mut().1, value)),
            Entry::Vacant(v) => {
                v.insert((key, value));
                None
            }
        }
    }

    /// The value of `key`, made by `make` first if absent; `true` with it if it was absent.
    #[inline]
    pub fn get_or_insert_with(&mut self, key: &K, make: impl FnOnce() -> V) -> (&mut V, bool) {
        let hash = hash_of(key);
        match self
            .table
            .entry(hash, |(k, _)| k == key, |(k, _)| hash_of(k))
        {
            Entry::Occupied(o) => (&mut o.into_mut().1, false),
            Entry::Vacant(v) => (&mut v.insert((key.clone(), make())).into_mut().1, true),
        }
    }

    /// Removes `key`'s value.
    #[inline]
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let o = self.table.find_entry(hash_of(key), |(k, _)| k == key)?;
        Some(o.remove().0.1)
    }

    /// Asks for the lines a look-up of `key` reads at `stage` ([`HintedTable::prefetch`]).
    #[inline]
    pub fn prefetch(&self, key: &K, stage: Stage) {
        self.table.prefetch(hash_of(key), stage);
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Every entry, in the table's order (which follows the keys' addresses: never for order or
    /// output; see the module doc).
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.table.iter().map(|(k, v)| (k, v))
    }
}

impl<K: LookupKey, V> FromIterator<(K, V)> for LookupTable<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut t = LookupTable::new();
        for (k, v) in iter {
            t.insert(k, v);
        }
        t
    }
}

/// Equal when both hold the same keys with equal values (as `HashMap`'s equality).
impl<K: LookupKey, V: PartialEq> PartialEq for LookupTable<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl<K: LookupKey, V: Eq> Eq for LookupTable<K, V> {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32, u8),
        GetOrInsert(u32, u8),
        Remove(u32),
        GetMut(u32, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few keys, so that most operations meet a key already there.
        let key = 0u32..48;
        prop_oneof![
            (key.clone(), any::<u8>()).prop_map(|(k, v)| Op::Insert(k, v)),
            (key.clone(), any::<u8>()).prop_map(|(k, v)| Op::GetOrInsert(k, v)),
            key.clone().prop_map(Op::Remove),
            (key, any::<u8>()).prop_map(|(k, v)| Op::GetMut(k, v)),
        ]
    }

    proptest! {
        #![proptest_config(crate::kernel::proptest_kept("tests/lookup_table.proptest-regressions"))]

        /// Every operation answers as an ordered map does, and the table holds what the map
        /// holds after each (look-ups of every key, length, walk, equality with a table built
        /// in another order, and prefetching any key changes nothing).
        #[test]
        fn answers_as_an_ordered_map(ops in proptest::collection::vec(op(), 0..200)) {
            let mut table: LookupTable<u32, u8> = LookupTable::new();
            let mut model: BTreeMap<u32, u8> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => prop_assert_eq!(table.insert(k, v), model.insert(k, v)),
                    Op::GetOrInsert(k, v) => {
                        let (got, fresh) = table.get_or_insert_with(&k, || v);
                        let absent = !model.contains_key(&k);
                        let want = *model.entry(k).or_insert(v);
                        prop_assert_eq!((*got, fresh), (want, absent));
                    }
                    Op::Remove(k) => prop_assert_eq!(table.remove(&k), model.remove(&k)),
                    Op::GetMut(k, v) => {
                        let got = table.get_mut(&k).map(|x| std::mem::replace(x, v));
                        let want = model.get_mut(&k).map(|x| std::mem::replace(x, v));
                        prop_assert_eq!(got, want);
                    }
                }
                for k in 0..48 {
                    table.prefetch(&k, Stage::Table);
                    table.prefetch(&k, Stage::Entry);
                    prop_assert_eq!(table.get(&k), model.get(&k));
                }
                prop_assert_eq!(table.len(), model.len());
                let mut walked: Vec<(u32, u8)> = table.iter().map(|(k, v)| (*k, *v)).collect();
                walked.sort_unstable();
                let want: Vec<(u32, u8)> = model.iter().map(|(k, v)| (*k, *v)).collect();
                prop_assert_eq!(&walked, &want);
                let rebuilt: LookupTable<u32, u8> = want.iter().rev().copied().collect();
                prop_assert!(rebuilt == table);
            }
        }
    }

    /// The control bytes' address, as learnt, names every full bucket's entry the way
    /// `hashbrown` lays them out (the entries right below the control bytes, the last first),
    /// for a fresh table, after it grows, and in a copy.
    #[test]
    fn the_learnt_control_address_names_every_entry() {
        fn check(t: &HintedTable<(u32, u8)>) {
            let ctrl = t.ctrl_addr().expect("a table with entries");
            for i in t.table.iter_buckets() {
                let entry: *const (u32, u8) = t.table.get_bucket(i).unwrap();
                assert_eq!(
                    entry as usize + (i + 1) * std::mem::size_of::<(u32, u8)>(),
                    ctrl
                );
            }
        }
        let mut t: LookupTable<u32, u8> = LookupTable::new();
        assert_eq!(
            t.table.ctrl_addr(),
            None,
            "an empty table has nothing to learn from"
        );
        for k in 0..3 {
            t.insert(k, 0);
        }
        check(&t.table);
        for k in 3..1000 {
            t.insert(k, 0);
        }
        check(&t.table);
        let copy = t.clone();
        check(&copy.table);
        assert_ne!(copy.table.ctrl_addr(), t.table.ctrl_addr());
    }

    /// Tables holding the same keys differ when one value differs.
    #[test]
    fn a_changed_value_makes_tables_differ() {
        let a: LookupTable<u32, u8> = [(1, 10), (2, 20)].into_iter().collect();
        let mut b: LookupTable<u32, u8> = [(2, 20), (1, 10)].into_iter().collect();
        assert!(a == b);
        b.insert(2, 21);
        assert!(a != b);
    }
}
