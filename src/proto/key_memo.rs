//! `KeyMemo<V>`: answers about keys remembered by the key's address, for questions asked again
//! and again about the same few thousand keys (issue 16: which watched ranges a written key
//! falls in; a node's lease key is written every 10 s and a range check per range and write was
//! a few hundred instructions). Keys are interned ([`crate::proto::key_interner`]): one text has
//! one address for the life of the process, never reused, so a look-up by address is exact.
//!
//! A memo is a cache, not state: it is empty in a clone, equal to every other memo and hashes
//! to nothing, so explorer states compare and hash as before. Its owner clears it whenever an
//! answer could change (a range interned, a watcher added or removed).

use std::hash::{Hash, Hasher};

use hashbrown::hash_table::Entry;
use rustc_hash::{FxHashMap, FxHasher};

use super::etcd::Key;
use crate::kernel::Unhashed;
use crate::kernel::lookup_table::HintedTable;
use crate::kernel::prefetch::Stage;

/// At most this many keys are remembered; past it the memo starts over (bounds its memory
/// in runs that create keys all the time).
const MAX_KEYS: usize = 1 << 20;

/// Bits of a [`Packed`] entry that hold the key's address (user-space addresses of x86-64 and
/// AArch64 fit in 48 bits; a key above is not remembered, only answered again).
const ADDR_BITS: u32 = 48;
const ADDR_MASK: u64 = (1 << ADDR_BITS) - 1;

// A class number (a `u16`: past 65,536 distinct answers, keys with a new one are not
// remembered) fills the bits above the address.
const _: () = assert!(u16::BITS == 64 - ADDR_BITS);

/// One remembered key in 8 bytes: its address in the low bits, its answer's class number in
/// the top 16. Hashed and compared by the address alone, so a look-up by address finds it.
#[derive(Clone, Copy)]
struct Packed(u64);

impl Packed {
    fn class(self) -> usize {
        (self.0 >> ADDR_BITS) as usize
    }
}

impl Packed {
    fn addr(self) -> u64 {
        self.0 & ADDR_MASK
    }
}

/// The table hash of a key address.
#[inline]
fn hash_of(addr: u64) -> u64 {
    let mut h = FxHasher::default();
    h.write_u64(addr);
    h.finish()
}

/// The remembered answers: each distinct answer once (a class), and each key as 8 bytes
/// naming its class. Most keys share a few answers (every key of a resource falls in the same
/// watched ranges), so the per-key table stays small enough to stay in the caches (issue 16
/// step 13: at 48 bytes a key, the memo of etcd's watch ranges cost a cache miss per write).
struct Answers<V> {
    /// Hashed and searched by address alone.
    keys: HintedTable<Packed>,
    classes: Vec<V>,
    class_of: FxHashMap<V, u16>,
}

impl<V> Default for Answers<V> {
    fn default() -> Self {
        Answers {
            keys: HintedTable::default(),
            classes: Vec::new(),
            class_of: FxHashMap::default(),
        }
    }
}

/// Answers by key address (see the module doc). Equal to every other memo and hashed as
/// nothing, through [`Unhashed`]; one word until its first answer (the explorer's never get
/// one), so the parts that hold one stay small to copy.
#[derive(PartialEq, Eq, Hash)]
pub struct KeyMemo<V> {
    answers: Unhashed<Option<Box<Answers<V>>>>,
}

impl<V> Default for KeyMemo<V> {
    fn default() -> Self {
        KeyMemo {
            answers: Unhashed(None),
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

impl<V: Clone + Eq + Hash> KeyMemo<V> {
    /// The answer remembered for `key`, if any.
    pub fn get(&self, key: &Key) -> Option<&V> {
        let answers = self.answers.as_ref()?;
        let addr = key.addr() as u64 & ADDR_MASK;
        let found = answers.keys.find(hash_of(addr), |p| p.addr() == addr)?;
        answers.classes.get(found.class())
    }

    /// Asks for the lines a look-up of `key` reads at `stage` (a hint;
    /// [`HintedTable::prefetch`]).
    #[inline]
    pub fn prefetch(&self, key: &Key, stage: Stage) {
        if let Some(answers) = self.answers.as_ref() {
            answers
                .keys
                .prefetch(hash_of(key.addr() as u64 & ADDR_MASK), stage);
        }
    }

    /// Remembers `value` for `key` (unless the key's address or the number of distinct answers
    /// is out of range: then it is answered again next time).
    pub fn insert(&mut self, key: &Key, value: V) {
        let addr = key.addr() as u64;
        if addr > ADDR_MASK {
            return;
        }
        let answers = self.answers.get_or_insert_with(Box::default);
        if answers.keys.len() >= MAX_KEYS {
            answers.keys.clear();
        }
        let class = match answers.class_of.get(&value) {
            Some(&c) => c,
            None => {
                let Ok(c) = u16::try_from(answers.classes.len()) else {
                    return;
                };
                answers.classes.push(value.clone());
                answers.class_of.insert(value, c);
                c
            }
        };
        let packed = Packed(addr | (u64::from(class) << ADDR_BITS));
        match answers
            .keys
            .entry(hash_of(addr), |p| p.addr() == addr, |p| hash_of(p.addr()))
        {
            Entry::Occupied(o) => *o.into_mut() = packed,
            Entry::Vacant(v) => {
                v.insert(packed);
            }
        }
    }

    /// Forgets every answer.
    pub fn clear(&mut self) {
        if let Some(answers) = self.answers.as_mut() {
            answers.keys.clear();
            answers.classes.clear();
            answers.class_of.clear();
        }
    }
}

impl<V> KeyMemo<V> {
    /// Number of keys remembered.
    pub fn len(&self) -> usize {
        self.answers.as_ref().map_or(0, |a| a.keys.len())
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

    #[test]
    fn keys_sharing_an_answer_share_its_class_and_a_changed_answer_replaces_the_old() {
        let mut m: KeyMemo<Vec<u32>> = KeyMemo::default();
        let keys: Vec<Key> = (0..1000)
            .map(|i| Key::new(&format!("/registry/pods/ns/memo-{i:04}")))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            m.insert(k, vec![(i % 3) as u32, 9]);
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(m.get(k), Some(&vec![(i % 3) as u32, 9]));
        }
        let classes = m.answers.as_ref().map_or(0, |a| a.classes.len());
        assert_eq!(
            (m.len(), classes),
            (1000, 3),
            "one class per distinct answer"
        );
        m.insert(&keys[4], vec![7]);
        assert_eq!(
            m.get(&keys[4]),
            Some(&vec![7]),
            "the new answer replaces the old"
        );
        assert_eq!(m.get(&keys[5]), Some(&vec![2, 9]), "other keys keep theirs");
        assert_eq!(m.len(), 1000);
        m.clear();
        assert_eq!(m.get(&keys[0]), None);
        m.insert(&keys[0], vec![1]);
        assert_eq!(
            m.get(&keys[0]),
            Some(&vec![1]),
            "classes start over after a clear"
        );
    }
}
