//! `DenseIdMap<T>`: values keyed by a growing integer id (connection ids are handed out in order
//! and never reused) when only a few of the ids ever handed out are present at once: the values
//! sit together in one `Vec` (removal moves the last one into the gap), and a slot per id
//! handed out so far (4 bytes) says where. A look-up is two indexes; a walk over every value
//! touches only present ones. For the cacher's watchers (issue 16: 5,000 watchers per cacher
//! among hundreds of thousands of connection ids over an hour of `cluster-15k`). The ids sit in
//! a `Vec` of their own beside the values, so the values keep their own size as stride (a
//! 256-byte watcher's first fields sit at the same offset in a cache line, whichever it is) and
//! a walk reads the ids in one block.
//!
//! The values' order in the `Vec` depends on the history of removals, so it is never exposed as
//! an order: [`DenseIdMap::iter_unordered`] says so in its name, and [`DenseIdMap::sorted_ids`]
//! gives id order. Equality and hashing see the entries in id order, exactly as an ordered map's
//! (`imbl::OrdMap<u64, T>` hashes each `(id, value)` in id order), so explorer states compare
//! and hash as before.
//!
//! Each value may have a *lane* beside it (`DenseIdMap<T, L>`): a few bytes a hot loop reads
//! instead of the value, kept beside the ids in the values' order and moved with them.

use std::hash::{Hash, Hasher};

const ABSENT: u32 = u32::MAX;

/// Values by integer id, stored densely (see the module doc), each with an optional *lane* `L`:
/// a small record kept beside the value's id, in the values' order, for a loop that reads a few
/// bytes of many entries (the cacher's dispatch: 24 bytes per watcher, id included, instead of
/// its first cache line). Lanes cost no allocation of their own (an explorer state's copy of the
/// map makes as many as without them).
#[derive(Clone)]
pub struct DenseIdMap<T, L = ()> {
    slot_of: Vec<u32>,
    /// The id and lane of each value, position for position (one array: a copy of the map
    /// makes no more allocations with lanes than without).
    heads: Vec<Head<L>>,
    values: Vec<T>,
}

/// A value's id and lane.
#[derive(Clone)]
struct Head<L> {
    id: u64,
    lane: L,
}

impl<T, L> Default for DenseIdMap<T, L> {
    fn default() -> Self {
        DenseIdMap {
            slot_of: Vec::new(),
            heads: Vec::new(),
            values: Vec::new(),
        }
    }
}

impl<T> DenseIdMap<T> {
    /// Sets the value of `id`; returns the one it replaces.
    pub fn insert(&mut self, id: u64, value: T) -> Option<T> {
        self.insert_with_lane(id, value, ()).map(|(v, ())| v)
    }
}

impl<T, L> DenseIdMap<T, L> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    fn slot(&self, id: u64) -> Option<usize> {
        let s = *self.slot_of.get(usize::try_from(id).ok()?)?;
        (s != ABSENT).then_some(s as usize)
    }

    /// Sets the value and lane of `id`; returns those they replace.
    pub fn insert_with_lane(&mut self, id: u64, value: T, lane: L) -> Option<(T, L)> {
        if let Some(s) = self.slot(id) {
            return Some((
                std::mem::replace(&mut self.values[s], value),
                std::mem::replace(&mut self.heads[s].lane, lane),
            ));
        }
        let i = usize::try_from(id).expect("an id that fits in memory");
        if i >= self.slot_of.len() {
            self.slot_of.resize(i + 1, ABSENT);
        }
        self.slot_of[i] = u32::try_from(self.values.len()).expect("fewer than 4 G entries");
        self.heads.push(Head { id, lane });
        self.values.push(value);
        None
    }

    /// Removes `id`'s value and lane.
    pub fn remove_with_lane(&mut self, id: u64) -> Option<(T, L)> {
        let s = self.slot(id)?;
        self.slot_of[id as usize] = ABSENT;
        let lane = self.heads.swap_remove(s).lane;
        let value = self.values.swap_remove(s);
        if let Some(moved) = self.heads.get(s) {
            self.slot_of[moved.id as usize] = s as u32;
        }
        Some((value, lane))
    }

    /// Removes `id`'s value (and its lane).
    pub fn remove(&mut self, id: u64) -> Option<T> {
        self.remove_with_lane(id).map(|(v, _)| v)
    }

    /// The value of `id`.
    pub fn get(&self, id: u64) -> Option<&T> {
        self.slot(id).map(|s| &self.values[s])
    }

    /// The lane and value of `id`.
    pub fn get_with_lane(&self, id: u64) -> Option<(&L, &T)> {
        self.slot(id)
            .map(|s| (&self.heads[s].lane, &self.values[s]))
    }

    /// The lane of `id` to change, and its value to read.
    pub fn lane_mut_and_value(&mut self, id: u64) -> Option<(&mut L, &T)> {
        self.slot(id)
            .map(|s| (&mut self.heads[s].lane, &self.values[s]))
    }

    /// The lane and value of `id`, both to change.
    pub fn get_mut_with_lane(&mut self, id: u64) -> Option<(&mut L, &mut T)> {
        self.slot(id)
            .map(|s| (&mut self.heads[s].lane, &mut self.values[s]))
    }

    /// Hints that `id`'s slot number will soon be read: the first of a fan-out's two prefetch
    /// stages (see [`crate::kernel::prefetch`]). Any id is accepted; nothing is read.
    #[inline(always)]
    pub fn prefetch_slot(&self, id: u64) {
        let i = usize::try_from(id)
            .unwrap_or(usize::MAX)
            .min(self.slot_of.len());
        crate::kernel::prefetch::prefetch_addr(self.slot_of.as_ptr().wrapping_add(i).cast());
    }

    /// Hints that `id`'s lane will soon be read (after [`DenseIdMap::prefetch_slot`]).
    #[inline(always)]
    pub fn prefetch_lane(&self, id: u64) {
        if let Some(s) = self.slot(id) {
            crate::kernel::prefetch::prefetch(&self.heads[s]);
        }
    }

    /// The value of `id`, to change.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        self.slot(id).map(|s| &mut self.values[s])
    }

    /// True if `id` is present.
    pub fn contains_key(&self, id: u64) -> bool {
        self.slot(id).is_some()
    }

    /// Number of present entries.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when no entry is present.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Present entries in no meaningful order (for look-ups, counts and filters whose result is
    /// sorted or order-free).
    pub fn iter_unordered(&self) -> impl Iterator<Item = (u64, &T)> + '_ {
        self.heads.iter().map(|h| h.id).zip(self.values.iter())
    }

    /// Every present lane and value, to change, in no meaningful order (for changes made to
    /// each entry alike).
    pub fn iter_mut_unordered_with_lanes(&mut self) -> impl Iterator<Item = (&mut L, &mut T)> + '_ {
        self.heads
            .iter_mut()
            .map(|h| &mut h.lane)
            .zip(self.values.iter_mut())
    }

    /// The present ids, in id order.
    pub fn sorted_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.heads.iter().map(|h| h.id).collect();
        ids.sort_unstable();
        ids
    }

    /// The present entries, in id order.
    pub fn sorted(&self) -> Vec<(u64, &T)> {
        let mut all: Vec<(u64, &T)> = self.iter_unordered().collect();
        all.sort_unstable_by_key(|(id, _)| *id);
        all
    }

    /// The present entries with their lanes, in id order.
    pub fn sorted_with_lanes(&self) -> Vec<(u64, &L, &T)> {
        let mut all: Vec<(u64, &L, &T)> = self
            .heads
            .iter()
            .zip(&self.values)
            .map(|(h, v)| (h.id, &h.lane, v))
            .collect();
        all.sort_unstable_by_key(|(id, _, _)| *id);
        all
    }

    /// The entries, in id order, taken out of the map (lanes dropped).
    pub fn into_sorted(self) -> Vec<(u64, T)> {
        let mut all: Vec<(u64, T)> = self
            .heads
            .into_iter()
            .map(|h| h.id)
            .zip(self.values)
            .collect();
        all.sort_unstable_by_key(|(id, _)| *id);
        all
    }

    /// The entries with their lanes, in id order, taken out of the map.
    pub fn into_sorted_with_lanes(self) -> Vec<(u64, L, T)> {
        let mut all: Vec<(u64, L, T)> = self
            .heads
            .into_iter()
            .zip(self.values)
            .map(|(h, v)| (h.id, h.lane, v))
            .collect();
        all.sort_unstable_by_key(|(id, _, _)| *id);
        all
    }
}

impl<T> FromIterator<(u64, T)> for DenseIdMap<T> {
    fn from_iter<I: IntoIterator<Item = (u64, T)>>(iter: I) -> Self {
        let mut m = DenseIdMap::new();
        for (id, v) in iter {
            m.insert(id, v);
        }
        m
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for DenseIdMap<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.sorted()).finish()
    }
}

impl<T: PartialEq> PartialEq for DenseIdMap<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter_unordered()
                .all(|(id, v)| other.get(id).is_some_and(|o| o == v))
    }
}

impl<T: Eq> Eq for DenseIdMap<T> {}

impl<T: Hash> Hash for DenseIdMap<T> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        for entry in self.sorted() {
            entry.hash(h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kernel::std_hash_of as hash_of;

    #[test]
    fn removal_moves_the_last_value_and_keeps_every_lookup_right() {
        let mut m: DenseIdMap<&str> = [(3, "c"), (7, "g"), (9, "i")].into_iter().collect();
        assert_eq!(m.remove(3), Some("c"));
        assert_eq!(m.get(9), Some(&"i"));
        assert_eq!(m.get(7), Some(&"g"));
        assert_eq!(m.get(3), None);
        assert_eq!(m.remove(3), None);
        assert_eq!(m.insert(7, "G"), Some("g"));
        assert_eq!(m.len(), 2);
        assert_eq!(m.sorted_ids(), vec![7, 9]);
        assert_eq!(m.get(1_000), None);
    }

    #[test]
    fn lanes_move_with_their_values() {
        let mut m: DenseIdMap<&str, u8> = DenseIdMap::new();
        for (id, v, l) in [(3, "c", 30), (7, "g", 70), (9, "i", 90)] {
            assert!(m.insert_with_lane(id, v, l).is_none());
        }
        assert_eq!(m.remove_with_lane(3), Some(("c", 30)));
        assert_eq!(m.get_with_lane(9), Some((&90, &"i")), "moved into the gap");
        if let Some((l, _)) = m.get_mut_with_lane(7) {
            *l = 71;
        }
        assert_eq!(m.insert_with_lane(7, "G", 72), Some(("g", 71)));
        assert_eq!(m.sorted_with_lanes(), vec![(7, &72, &"G"), (9, &90, &"i")]);
        assert_eq!(m.into_sorted_with_lanes(), vec![(7, 72, "G"), (9, 90, "i")]);
    }

    #[test]
    fn equal_and_hashed_in_id_order_whatever_the_history() {
        let a: DenseIdMap<u8> = [(1, 10), (2, 20), (5, 50)].into_iter().collect();
        let mut b: DenseIdMap<u8> = [(5, 50), (4, 40), (2, 20), (1, 10)].into_iter().collect();
        assert_ne!(a, b);
        b.remove(4);
        assert_eq!(a, b);
        assert_eq!(hash_of(&a), hash_of(&b));
        let ordered: imbl::OrdMap<u64, u8> = [(1u64, 10u8), (2, 20), (5, 50)].into_iter().collect();
        assert_eq!(
            hash_of(&a),
            hash_of(&ordered),
            "hashes as an ordered map does"
        );
        b.insert(5, 51);
        assert_ne!(a, b);
    }
}
