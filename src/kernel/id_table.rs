//! `IdTable<T>`: values keyed by a small integer id that only grows (connection ids are handed
//! out in order and never reused), stored in a `Vec` indexed by the id: a look-up is an index,
//! not a walk down a search tree. For the simulator's hot path (issue 16: the network's FIFO
//! horizon per multicast target). Equality and hashing see only the present entries in id order,
//! as an ordered map's would, so explorer states compare exactly as before; a removed id leaves
//! an empty slot behind.

use std::hash::{Hash, Hasher};

/// Values by integer id (see the module doc).
#[derive(Debug, Clone)]
pub struct IdTable<T> {
    slots: Vec<Option<T>>,
    len: usize,
}

impl<T> Default for IdTable<T> {
    fn default() -> Self {
        IdTable {
            slots: Vec::new(),
            len: 0,
        }
    }
}

impl<T> IdTable<T> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn index(id: u64) -> usize {
        usize::try_from(id).expect("an id that fits in memory")
    }

    /// Sets the value of `id`; returns the one it replaces.
    pub fn insert(&mut self, id: u64, value: T) -> Option<T> {
        let i = Self::index(id);
        if i >= self.slots.len() {
            self.slots.resize_with(i + 1, || None);
        }
        let old = self.slots[i].replace(value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes `id`'s value.
    pub fn remove(&mut self, id: u64) -> Option<T> {
        let old = self.slots.get_mut(Self::index(id)).and_then(Option::take);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// The value of `id`.
    pub fn get(&self, id: u64) -> Option<&T> {
        self.slots.get(Self::index(id)).and_then(Option::as_ref)
    }

    /// Asks for the cache line of `id`'s slot (a hint, issue 16: nothing is read).
    #[inline(always)]
    pub fn prefetch_slot(&self, id: u64) {
        if let Some(slot) = self.slots.get(Self::index(id)) {
            super::prefetch::prefetch(slot);
        }
    }

    /// The value of `id`, to change.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        self.slots.get_mut(Self::index(id)).and_then(Option::as_mut)
    }

    /// Present entries in id order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_ref().map(|v| (i as u64, v)))
    }

    /// Present values in id order, to change.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        self.slots.iter_mut().filter_map(Option::as_mut)
    }

    /// Present values in id order.
    pub fn values(&self) -> impl Iterator<Item = &T> + '_ {
        self.slots.iter().filter_map(Option::as_ref)
    }

    /// Number of present entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no entry is present.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<T> FromIterator<(u64, T)> for IdTable<T> {
    fn from_iter<I: IntoIterator<Item = (u64, T)>>(iter: I) -> Self {
        let mut t = IdTable::new();
        for (id, v) in iter {
            t.insert(id, v);
        }
        t
    }
}

/// The present entries of a table, in id order.
type Entries<T> = std::iter::FilterMap<
    std::iter::Enumerate<std::vec::IntoIter<Option<T>>>,
    fn((usize, Option<T>)) -> Option<(u64, T)>,
>;

impl<T> IntoIterator for IdTable<T> {
    type Item = (u64, T);
    type IntoIter = Entries<T>;
    fn into_iter(self) -> Self::IntoIter {
        fn present<T>((i, v): (usize, Option<T>)) -> Option<(u64, T)> {
            v.map(|v| (i as u64, v))
        }
        self.slots
            .into_iter()
            .enumerate()
            .filter_map(present as fn((usize, Option<T>)) -> Option<(u64, T)>)
    }
}

impl<T: PartialEq> PartialEq for IdTable<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<T: Eq> Eq for IdTable<T> {}

impl<T: Hash> Hash for IdTable<T> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.len.hash(h);
        for (id, v) in self.iter() {
            id.hash(h);
            v.hash(h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kernel::std_hash_of as hash_of;

    #[test]
    fn equal_entries_are_equal_tables_whatever_was_removed_before() {
        let mut a = IdTable::new();
        a.insert(1, "x");
        a.insert(5, "y");
        a.insert(9, "z");
        assert_eq!(a.remove(9), Some("z"));
        assert_eq!(a.remove(9), None);
        let b: IdTable<&str> = [(1, "x"), (5, "y")].into_iter().collect();
        assert_eq!(a, b);
        assert_eq!(hash_of(&a), hash_of(&b));
        assert_eq!(a.len(), 2);
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![(1, &"x"), (5, &"y")]);
        assert_ne!(a, [(1, "x"), (6, "y")].into_iter().collect());
        *a.get_mut(5).unwrap() = "w";
        assert_eq!(a.get(5), Some(&"w"));
        assert_eq!(a.get(100), None);
    }
}
