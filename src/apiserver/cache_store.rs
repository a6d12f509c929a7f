//! The watch cache's store (`cacher/store`'s `threadSafeMap` / `btreeStore`): the current object
//! of every key. Issue 16: the events etcd streams to every apiserver (1,500 lease renewals a
//! second in `cluster-15k`) each update one key, so point reads and writes go through a hash
//! table (hashed by each key's address, [`crate::kernel::lookup_key`]; never iterated for order). LISTs, initial watch states and snapshots
//! need the objects in key order, shared without copying; that ordered copy is brought up to date
//! only when one of them asks, from the keys changed since (or rebuilt once more keys changed
//! than the store holds). A store that nobody lists never pays for the order.
//!
//! Equality compares the objects; hashing walks them in key order, each `(key, object)`, as the
//! ordered map it replaces hashed, so explorer states compare and hash as before.

use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use imbl::OrdMap;

use super::watch_cache::Obj;
use crate::kernel::Unhashed;
use crate::kernel::lookup_table::LookupTable;
use crate::kernel::prefetch::Stage;
use crate::proto::etcd::Key;

/// The objects by key (see the module doc).
#[derive(Default)]
pub struct CacheStore {
    objects: LookupTable<Key, Obj>,
    /// Bumped by every change: identifies a state for memos built from it (a cacher's shared
    /// initial watch state).
    generation: Unhashed<u64>,
    ordered: Unhashed<Mutex<OrderedCopy>>,
}

/// The objects in key order as of some earlier change, with the keys changed since.
#[derive(Debug, Clone, Default)]
struct OrderedCopy {
    map: OrdMap<Key, Obj>,
    changed: Vec<Key>,
    /// Too many changes to replay: `map` is rebuilt from the objects when next asked for.
    rebuild: bool,
}

/// Below this many changes since the last ordered copy, replaying them is always allowed.
const MIN_REPLAY: usize = 64;

impl Clone for CacheStore {
    fn clone(&self) -> Self {
        CacheStore {
            objects: self.objects.clone(),
            generation: self.generation.clone(),
            ordered: Unhashed(Mutex::new(self.lock().clone())),
        }
    }
}

/// Printed in key order (the hash table's order follows the keys' addresses, which differ from
/// run to run).
impl std::fmt::Debug for CacheStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.ordered().iter()).finish()
    }
}

impl PartialEq for CacheStore {
    fn eq(&self, other: &Self) -> bool {
        self.objects == other.objects
    }
}

impl Eq for CacheStore {}

impl Hash for CacheStore {
    fn hash<H: Hasher>(&self, h: &mut H) {
        for entry in self.ordered().iter() {
            entry.hash(h);
        }
    }
}

impl CacheStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, OrderedCopy> {
        // A panic while the lock is held leaves the copy as it was; it is still usable.
        self.ordered.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A store holding `objects` (a fresh LIST's result, already in key order).
    pub fn from_ordered(objects: OrdMap<Key, Obj>) -> Self {
        CacheStore {
            objects: objects.iter().map(|(k, o)| (k.clone(), *o)).collect(),
            generation: Unhashed(0),
            ordered: Unhashed(Mutex::new(OrderedCopy {
                map: objects,
                changed: Vec::new(),
                rebuild: false,
            })),
        }
    }

    /// Replaces every object with `objects` (a fresh LIST's result, already in key order), at a
    /// later generation than any before.
    pub fn replace(&mut self, objects: OrdMap<Key, Obj>) {
        let generation = *self.generation + 1;
        *self = CacheStore::from_ordered(objects);
        *self.generation = generation;
    }

    /// The object of `key`.
    pub fn get(&self, key: &Key) -> Option<&Obj> {
        self.objects.get(key)
    }

    /// Asks for the lines a look-up of `key` reads at `stage`, so that a write to it soon
    /// after finds them cached (a hint: no effect on the store; [`LookupTable::prefetch`]).
    #[inline]
    pub fn prefetch(&self, key: &Key, stage: Stage) {
        self.objects.prefetch(key, stage);
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// True when the store is empty.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Changes with every write: equal generations of one store (and its copies' lineage) mean
    /// the same objects.
    pub fn generation(&self) -> u64 {
        *self.generation
    }

    /// Puts `obj` under `key`; returns the object it replaces.
    pub fn put(&mut self, key: &Key, obj: Obj) -> Option<Obj> {
        let prev = self.objects.insert(key.clone(), obj);
        self.changed(key);
        prev
    }

    /// Removes `key`; returns its object.
    pub fn remove(&mut self, key: &Key) -> Option<Obj> {
        let prev = self.objects.remove(key)?;
        self.changed(key);
        Some(prev)
    }

    fn changed(&mut self, key: &Key) {
        *self.generation += 1;
        let objects = self.objects.len();
        let copy = self.ordered.get_mut().unwrap_or_else(|e| e.into_inner());
        if copy.rebuild {
            return;
        }
        if copy.changed.len() >= objects.max(MIN_REPLAY) {
            // Replaying would cost more than rebuilding: drop the copy until someone asks.
            *copy = OrderedCopy {
                rebuild: true,
                ..OrderedCopy::default()
            };
            return;
        }
        copy.changed.push(key.clone());
    }

    /// The objects in key order: a shared copy (O(1) to clone), brought up to date first.
    pub fn ordered(&self) -> OrdMap<Key, Obj> {
        let mut copy = self.lock();
        if copy.rebuild {
            let mut entries: Vec<(&Key, &Obj)> = self.objects.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            copy.map = entries.into_iter().map(|(k, o)| (k.clone(), *o)).collect();
            copy.rebuild = false;
        } else {
            let changed = std::mem::take(&mut copy.changed);
            for key in changed {
                match self.objects.get(&key) {
                    Some(obj) => {
                        copy.map.insert(key, *obj);
                    }
                    None => {
                        copy.map.remove(&key);
                    }
                }
            }
        }
        copy.map.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::std_hash_of;

    fn obj(rv: i64) -> Obj {
        Obj {
            rv,
            bytes: 10,
            labels: 0,
        }
    }

    fn key(i: usize) -> Key {
        Key::new(&format!("/registry/leases/l{i:03}"))
    }

    /// The ordered copy follows every write, through replays and through rebuilds, and the
    /// store hashes as the ordered map of its objects.
    #[test]
    fn ordered_copy_follows_writes_through_replays_and_rebuilds() {
        let mut store = CacheStore::default();
        let mut model: OrdMap<Key, Obj> = OrdMap::new();
        for round in 0..3usize {
            // Round 0: few changes (replayed); rounds 1-2: many more than the store holds.
            let writes = if round == 0 { 10 } else { 500 };
            for w in 0..writes {
                let i = (w * 7 + round) % 150;
                if w % 5 == 4 {
                    assert_eq!(store.remove(&key(i)), model.remove(&key(i)));
                } else {
                    let o = obj((round * 1000 + w) as i64);
                    assert_eq!(store.put(&key(i), o), model.insert(key(i), o));
                }
            }
            assert_eq!(store.ordered(), model, "round {round}");
            assert_eq!(store.len(), model.len());
            assert_eq!(std_hash_of(&store), std_hash_of(&model));
            assert_eq!(
                format!("{store:?}"),
                format!("{model:?}"),
                "printed in key order"
            );
        }
        let copy = store.clone();
        assert_eq!(copy, store);
        let g = store.generation();
        store.put(&key(1), obj(99_999));
        assert!(store.generation() > g);
        assert_ne!(copy, store);
        assert_eq!(
            CacheStore::from_ordered(model.clone()).ordered(),
            model,
            "a store made from a LIST holds it"
        );
        let g = store.generation();
        store.replace(OrdMap::new());
        assert!(store.generation() > g, "a Replace is a new generation too");
        assert!(store.is_empty() && store.ordered().is_empty());
    }
}
