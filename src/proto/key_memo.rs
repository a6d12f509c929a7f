//! `KeyMemo<V>`: answers about keys remembered by the key's allocation, for questions asked again
//! and again about the same few thousand keys (issue 16: which watched ranges a written key
//! falls in; a node's lease key is written every 10 s and a range check per range and write was
//! a few hundred instructions). The memo holds a clone of each key it answers for, so the
//! allocation cannot be freed and its address reused by another key while the answer is kept:
//! a look-up by address is exact.
//!
//! A memo is a cache, not state: it is empty in a clone, equal to every other memo and hashes
//! to nothing, so explorer states compare and hash as before. Its owner clears it whenever an
//! answer could change (a range interned, a watcher added or removed).

use rustc_hash::FxHashMap;

use super::etcd::Key;
use crate::kernel::Unhashed;

/// At most this many keys are remembered; past it the memo starts over (bounds its memory
/// in runs that create keys all the time).
const MAX_KEYS: usize = 1 << 20;

/// Answers by key allocation (see the module doc). Equal to every other memo and hashed as
/// nothing, through [`Unhashed`].
#[derive(PartialEq, Eq, Hash)]
pub struct KeyMemo<V> {
    by_addr: Unhashed<FxHashMap<usize, (Key, V)>>,
}

impl<V> Default for KeyMemo<V> {
    fn default() -> Self {
        KeyMemo {
            by_addr: Unhashed(FxHashMap::default()),
        }
    }
}

/// A clone starts empty: the memo is a cache.
impl<V> Clone for KeyMemo<V> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl<V> std::fmt::Debug for KeyMemo<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyMemo({} keys)", self.by_addr.len())
    }
}

impl<V> KeyMemo<V> {
    /// The answer remembered for `key`, if any.
    pub fn get(&self, key: &Key) -> Option<&V> {
        self.by_addr.get(&key.addr()).map(|(_, v)| v)
    }

    /// Remembers `value` for `key`.
    pub fn insert(&mut self, key: &Key, value: V) {
        if self.by_addr.len() >= MAX_KEYS {
            self.by_addr.clear();
        }
        self.by_addr.insert(key.addr(), (key.clone(), value));
    }

    /// Forgets every answer.
    pub fn clear(&mut self) {
        self.by_addr.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_by_allocation_and_never_for_another_key() {
        let mut m: KeyMemo<u32> = KeyMemo::default();
        let a = Key::new("/registry/leases/default/n00001");
        m.insert(&a, 7);
        assert_eq!(m.get(&a.clone()), Some(&7), "a clone shares the allocation");
        let same_text = Key::new("/registry/leases/default/n00001");
        assert_eq!(
            m.get(&same_text),
            None,
            "another allocation is another question"
        );
        // The memo keeps `a` alive: freeing every other handle cannot let a new key take its
        // address.
        let addr = a.addr();
        drop(a);
        let b = Key::new("/registry/leases/default/n00002");
        assert_ne!(b.addr(), addr);
        assert_eq!(m.get(&b), None);
        assert_eq!(m.clone().get(&same_text), None, "a clone starts empty");
        assert!(
            m.by_addr.len() == 1 && m == KeyMemo::default(),
            "not state: equal to any memo"
        );
        assert_eq!(
            crate::kernel::std_hash_of(&m),
            crate::kernel::std_hash_of(&KeyMemo::<u32>::default())
        );
        m.clear();
        assert_eq!(m.by_addr.len(), 0);
    }
}
