//! `KeyMemo<V>`: answers about keys remembered by the key's address, for questions asked again
//! and again about the same few thousand keys (issue 16: which watched ranges a written key
//! falls in; a node's lease key is written every 10 s and a range check per range and write was
//! a few hundred instructions). Keys are interned ([`crate::proto::key_interner`]): one text has
//! one address for the life of the process, never reused, so a look-up by address is exact.
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

/// The remembered answers, by each key's address.
type ByAddr<V> = FxHashMap<usize, V>;

/// Answers by key address (see the module doc). Equal to every other memo and hashed as
/// nothing, through [`Unhashed`]; one word until its first answer (the explorer's never get
/// one), so the parts that hold one stay small to copy.
#[derive(PartialEq, Eq, Hash)]
pub struct KeyMemo<V> {
    by_addr: Unhashed<Option<Box<ByAddr<V>>>>,
}

impl<V> Default for KeyMemo<V> {
    fn default() -> Self {
        KeyMemo {
            by_addr: Unhashed(None),
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
        write!(f, "KeyMemo({} keys)", self.len())
    }
}

impl<V> KeyMemo<V> {
    /// The answer remembered for `key`, if any.
    pub fn get(&self, key: &Key) -> Option<&V> {
        self.by_addr.as_ref()?.get(&key.addr())
    }

    /// Remembers `value` for `key`.
    pub fn insert(&mut self, key: &Key, value: V) {
        let map = self.by_addr.get_or_insert_with(Box::default);
        if map.len() >= MAX_KEYS {
            map.clear();
        }
        map.insert(key.addr(), value);
    }

    /// Forgets every answer.
    pub fn clear(&mut self) {
        if let Some(map) = self.by_addr.as_mut() {
            map.clear();
        }
    }

    /// Number of keys remembered.
    pub fn len(&self) -> usize {
        self.by_addr.as_ref().map_or(0, |m| m.len())
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_by_key_and_never_for_another_key() {
        let mut m: KeyMemo<u32> = KeyMemo::default();
        let a = Key::new("/registry/leases/default/n00001");
        m.insert(&a, 7);
        assert_eq!(m.get(&a.clone()), Some(&7), "a copy is the same key");
        let same_text = Key::new(&String::from("/registry/leases/default/n00001"));
        assert_eq!(m.get(&same_text), Some(&7), "one text, one key");
        let b = Key::new("/registry/leases/default/n00002");
        assert_ne!(b.addr(), a.addr());
        assert_eq!(m.get(&b), None);
        assert_eq!(m.clone().get(&same_text), None, "a clone starts empty");
        assert!(
            m.len() == 1 && m == KeyMemo::default(),
            "not state: equal to any memo"
        );
        assert_eq!(
            crate::kernel::std_hash_of(&m),
            crate::kernel::std_hash_of(&KeyMemo::<u32>::default())
        );
        m.clear();
        assert!(m.is_empty());
    }
}
