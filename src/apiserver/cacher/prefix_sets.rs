//! `PrefixSets<S>`: the cacher's watcher sets by watched key prefix, looked up by the text of an
//! event key's prefixes (issue 16: every event of every cache looked its key's prefixes up in an
//! ordered map, a dozen string comparisons each; a hash of the prefix text finds the set in one
//! probe). The hash table is keyed by the prefix's text hash (`Key` hashes as `str`), so a slice
//! of an event's key finds it without being interned; an ordered set of the prefixes gives the
//! order equality and hashing need.
//!
//! Equality and hashing see the entries in key order, exactly as the ordered map this replaces
//! (`imbl::OrdMap` hashes each `(key, value)` in key order), so explorer states compare and hash
//! as before. The table is never iterated where its order could reach a result.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use imbl::OrdSet;
use rustc_hash::FxBuildHasher;

use crate::proto::etcd::Key;

/// Sets by prefix, hashed by text for look-ups and ordered for equality, hashing and walks.
#[derive(Debug, Clone)]
pub(super) struct PrefixSets<S> {
    sets: HashMap<Key, S, FxBuildHasher>,
    order: OrdSet<Key>,
}

impl<S> Default for PrefixSets<S> {
    fn default() -> Self {
        PrefixSets {
            sets: HashMap::default(),
            order: OrdSet::new(),
        }
    }
}

impl<S: Default> PrefixSets<S> {
    /// The set of `prefix`, made empty first if absent.
    pub(super) fn get_or_default(&mut self, prefix: &Key) -> &mut S {
        if !self.sets.contains_key(prefix) {
            self.order.insert(prefix.clone());
        }
        self.sets.entry(prefix.clone()).or_default()
    }
}

impl<S> PrefixSets<S> {
    /// The set of the prefix whose text is `prefix`.
    pub(super) fn get(&self, prefix: &str) -> Option<&S> {
        self.sets.get(prefix)
    }

    /// The set of `prefix`, to change.
    pub(super) fn get_mut(&mut self, prefix: &Key) -> Option<&mut S> {
        self.sets.get_mut(prefix)
    }

    /// Removes `prefix`'s set.
    pub(super) fn remove(&mut self, prefix: &Key) -> Option<S> {
        let set = self.sets.remove(prefix)?;
        self.order.remove(prefix);
        Some(set)
    }

    /// True when no prefix has a set.
    pub(super) fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// Every `(prefix, set)`, in prefix order, emptying the map.
    pub(super) fn drain_ordered(&mut self) -> Vec<(Key, S)> {
        let order = std::mem::take(&mut self.order);
        let mut sets = std::mem::take(&mut self.sets);
        order
            .into_iter()
            .map(|k| {
                let set = sets.remove(&k).expect("every ordered prefix has a set");
                (k, set)
            })
            .collect()
    }

    fn iter(&self) -> impl Iterator<Item = (&Key, &S)> + '_ {
        self.order.iter().map(|k| (k, &self.sets[k]))
    }
}

impl<S> FromIterator<(Key, S)> for PrefixSets<S> {
    fn from_iter<I: IntoIterator<Item = (Key, S)>>(iter: I) -> Self {
        let mut m = PrefixSets::default();
        for (k, s) in iter {
            if m.sets.insert(k.clone(), s).is_none() {
                m.order.insert(k);
            }
        }
        m
    }
}

impl<S: PartialEq> PartialEq for PrefixSets<S> {
    fn eq(&self, other: &Self) -> bool {
        self.sets == other.sets
    }
}

impl<S: Eq> Eq for PrefixSets<S> {}

impl<S: Hash> Hash for PrefixSets<S> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        for entry in self.iter() {
            entry.hash(h);
        }
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
    /// removals, and compared and hashed as that map.
    #[test]
    fn found_by_text_and_hashed_as_an_ordered_map() {
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
        let drained: Vec<(Key, Vec<u32>)> = sets.drain_ordered();
        assert_eq!(drained, model.into_iter().collect::<Vec<_>>());
        assert!(sets.is_empty());
    }
}
