//! `PrefixSets<S>`: the cacher's watcher sets by watched key prefix, looked up by the text of an
//! event key's prefixes (issue 16: every event of every cache looked its key's prefixes up in an
//! ordered map, a dozen string comparisons each among `cluster-15k`'s 15,000 kubelet prefixes).
//! A small index stays an ordered map (cheap for the explorer to copy: its states share it); from
//! [`HASHED_FROM`] prefixes on, a hash table keyed by the prefix's text hash (`Key` hashes as
//! `str`, so a slice of an event's key finds it without being interned) finds a set in one
//! probe. The prefixes' order is made when asked for (sorting the table's keys): only equality,
//! hashing and a cache's re-initialisation walk the sets, and an ordered set kept beside the
//! table cost a dozen string comparisons at each watcher's arrival and departure (a kubelet's
//! reconnect, issue 16).
//!
//! Equality and hashing see the entries in key order, exactly as the ordered map this replaces
//! (`imbl::OrdMap` hashes each `(key, value)` in key order), whichever form holds them, so
//! explorer states compare and hash as before. The table is never iterated where its order could
//! reach a result.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use imbl::OrdMap;
use rustc_hash::FxBuildHasher;

use crate::proto::etcd::Key;

/// From this many prefixes on, sets are found through a hash table.
const HASHED_FROM: usize = 8;

/// Sets by prefix (see the module doc).
#[derive(Debug, Clone)]
pub(super) enum PrefixSets<S: Clone> {
    /// Few prefixes: one ordered map.
    Ordered(OrdMap<Key, S>),
    /// Many: hashed by text (walks sort the keys first).
    Hashed(HashMap<Key, S, FxBuildHasher>),
}

impl<S: Clone> Default for PrefixSets<S> {
    fn default() -> Self {
        PrefixSets::Ordered(OrdMap::new())
    }
}

impl<S: Clone + Default> PrefixSets<S> {
    /// The set of `prefix`, made empty first if absent.
    pub(super) fn get_or_default(&mut self, prefix: &Key) -> &mut S {
        if let PrefixSets::Ordered(map) = self
            && map.len() >= HASHED_FROM
        {
            let map = std::mem::take(map);
            *self = PrefixSets::Hashed(map.into_iter().collect());
        }
        match self {
            PrefixSets::Ordered(map) => map.entry(prefix.clone()).or_default(),
            PrefixSets::Hashed(sets) => sets.entry(prefix.clone()).or_default(),
        }
    }
}

impl<S: Clone> PrefixSets<S> {
    /// The set of the prefix whose text is `prefix`.
    pub(super) fn get(&self, prefix: &str) -> Option<&S> {
        match self {
            PrefixSets::Ordered(map) => map.get(prefix),
            PrefixSets::Hashed(sets) => sets.get(prefix),
        }
    }

    /// The set of `prefix`, to change.
    pub(super) fn get_mut(&mut self, prefix: &Key) -> Option<&mut S> {
        match self {
            PrefixSets::Ordered(map) => map.get_mut(prefix),
            PrefixSets::Hashed(sets) => sets.get_mut(prefix),
        }
    }

    /// Removes `prefix`'s set.
    pub(super) fn remove(&mut self, prefix: &Key) -> Option<S> {
        match self {
            PrefixSets::Ordered(map) => map.remove(prefix),
            PrefixSets::Hashed(sets) => sets.remove(prefix),
        }
    }

    /// Number of prefixes.
    pub(super) fn len(&self) -> usize {
        match self {
            PrefixSets::Ordered(map) => map.len(),
            PrefixSets::Hashed(sets) => sets.len(),
        }
    }

    /// True when no prefix has a set.
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every `(prefix, set)`, in prefix order, emptying the map.
    pub(super) fn drain_ordered(&mut self) -> Vec<(Key, S)> {
        match std::mem::take(self) {
            PrefixSets::Ordered(map) => map.into_iter().collect(),
            PrefixSets::Hashed(sets) => {
                let mut all: Vec<(Key, S)> = sets.into_iter().collect();
                all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                all
            }
        }
    }

    /// Calls `f` with every `(prefix, set)`, in prefix order, while it returns true; true if
    /// it always did.
    fn all_in_order(&self, mut f: impl FnMut(&Key, &S) -> bool) -> bool {
        match self {
            PrefixSets::Ordered(map) => map.iter().all(|(k, s)| f(k, s)),
            PrefixSets::Hashed(sets) => {
                let mut all: Vec<(&Key, &S)> = sets.iter().collect();
                all.sort_unstable_by(|a, b| a.0.cmp(b.0));
                all.into_iter().all(|(k, s)| f(k, s))
            }
        }
    }
}

impl<S: Clone + Default> FromIterator<(Key, S)> for PrefixSets<S> {
    fn from_iter<I: IntoIterator<Item = (Key, S)>>(iter: I) -> Self {
        let mut m = PrefixSets::default();
        for (k, s) in iter {
            *m.get_or_default(&k) = s;
        }
        m
    }
}

impl<S: Clone + PartialEq> PartialEq for PrefixSets<S> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.all_in_order(|k, s| other.get(k.as_str()).is_some_and(|o| o == s))
    }
}

impl<S: Clone + Eq> Eq for PrefixSets<S> {}

impl<S: Clone + Hash> Hash for PrefixSets<S> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.all_in_order(|k, s| {
            (k, s).hash(h);
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::std_hash_of;

    fn key(s: &str) -> Key {
        Key::new(s)
    }

    /// Found by a slice of any text, kept in step with an ordered map through inserts and
    /// removals, and compared and hashed as that map, below and above the hashed threshold.
    #[test]
    fn found_by_text_and_hashed_as_an_ordered_map() {
        for extra in [0, HASHED_FROM + 5] {
            found_by_text_with(extra);
        }
    }

    fn found_by_text_with(extra: usize) {
        let mut sets: PrefixSets<Vec<u32>> = PrefixSets::default();
        let mut model: imbl::OrdMap<Key, Vec<u32>> = imbl::OrdMap::new();
        for (i, p) in [
            "/registry/pods/b/",
            "/registry/pods/a/",
            "/registry/leases/",
        ]
        .into_iter()
        .enumerate()
        {
            sets.get_or_default(&key(p)).push(i as u32);
            model.entry(key(p)).or_default().push(i as u32);
        }
        for i in 0..extra {
            let p = key(&format!("/registry/pods/node-{i}/"));
            sets.get_or_default(&p).push(100 + i as u32);
            model.entry(p).or_default().push(100 + i as u32);
        }
        assert_eq!(matches!(sets, PrefixSets::Hashed(_)), extra > 0);
        sets.get_or_default(&key("/registry/pods/a/")).push(9);
        model.entry(key("/registry/pods/a/")).or_default().push(9);
        let event_key = String::from("/registry/pods/a/web-1");
        assert_eq!(sets.get(&event_key[..17]), Some(&vec![1, 9]));
        assert_eq!(sets.get(&event_key[..16]), None);
        assert_eq!(std_hash_of(&sets), std_hash_of(&model));
        assert_eq!(sets.remove(&key("/registry/pods/b/")), Some(vec![0]));
        model.remove(&key("/registry/pods/b/"));
        assert_eq!(sets.remove(&key("/registry/pods/b/")), None);
        assert_eq!(std_hash_of(&sets), std_hash_of(&model));
        let copy: PrefixSets<Vec<u32>> = model.clone().into_iter().collect();
        assert_eq!(copy, sets);
        let small: PrefixSets<Vec<u32>> = PrefixSets::Ordered(model.clone());
        assert_eq!(small, sets, "equal whichever form holds them");
        assert_eq!(std_hash_of(&small), std_hash_of(&sets));
        let drained: Vec<(Key, Vec<u32>)> = sets.drain_ordered();
        assert_eq!(drained, model.into_iter().collect::<Vec<_>>());
        assert!(sets.is_empty());
    }
}
