//! `DenseIdMap<T>`: values keyed by a growing integer id (connection ids are handed out in order
//! and never reused) when only a few of the ids ever handed out are present at once: the values
//! sit together in one `Vec` of slots, and a slot number per id handed out so far (4 bytes) says
//! where. A look-up is two indexes; a walk over every value touches only the slots in use and
//! the few free ones. For the cacher's watchers (issue 16: 5,000 watchers per cacher among
//! hundreds of thousands of connection ids over an hour of `cluster-15k`).
//!
//! A value keeps its slot until it is removed (a removal frees the slot; the next new id takes
//! the slot freed last), so an index elsewhere may keep slots and reach values without the
//! id-to-slot table, whose entries are scattered over every id handed out
//! ([`DenseIdMap::lane_mut_and_value_at`]).
//!
//! The slots' order depends on the history of insertions and removals, so it is never exposed
//! as an order: [`DenseIdMap::iter_unordered`] says so in its name, and
//! [`DenseIdMap::sorted_ids`] gives id order. Equality and hashing see the entries in id order,
//! exactly as an ordered map's (`imbl::OrdMap<u64, T>` hashes each `(id, value)` in id order),
//! so explorer states compare and hash as before.
//!
//! Each value may have a *lane* beside it (`DenseIdMap<T, L>`): a few bytes a hot loop reads
//! instead of the value, kept beside the ids in slot order.

use std::hash::{Hash, Hasher};

const ABSENT: u32 = u32::MAX;

/// Values by integer id, stored densely (see the module doc), each with an optional *lane* `L`:
/// a small record kept beside the value's id, in the values' order, for a loop that reads a few
/// bytes of many entries (the cacher's dispatch: 24 bytes per watcher, id included, instead of
/// its first cache line). Lanes cost no allocation of their own (an explorer state's copy of the
/// map makes as many as without them).
#[derive(Clone)]
pub struct DenseIdMap<T, L = ()> {
    /// The slot of each id handed out so far ([`ABSENT`]: none).
    slot_of: Vec<u32>,
    /// The id and lane of each slot, position for position with `values` (one array: a copy of
    /// the map makes no more allocations with lanes than without). A free slot keeps the lane
    /// it last had.
    heads: Vec<Head<L>>,
    /// The value of each slot; `None` for a free one.
    values: Vec<Option<T>>,
    /// The free slots; the last freed is filled first.
    free: Vec<u32>,
    len: usize,
}

/// A slot's id and lane.
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
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> DenseIdMap<T> {
    /// Sets the value of `id`; returns the one it replaces.
    pub fn insert(&mut self, id: u64, value: T) -> Option<T> {
        self.insert_with_lane(id, value, ()).map(|(v, ())| v)
    }
}

impl<T, L: Copy> DenseIdMap<T, L> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The slot holding `id`'s value: it stays the same until `id` is removed.
    pub fn slot(&self, id: u64) -> Option<u32> {
        let s = *self.slot_of.get(usize::try_from(id).ok()?)?;
        (s != ABSENT).then_some(s)
    }

    fn index(&self, id: u64) -> Option<usize> {
        self.slot(id).map(|s| s as usize)
    }

    /// Sets the value and lane of `id`; returns those they replace. A new id takes the slot
    /// freed last, or a new one.
    pub fn insert_with_lane(&mut self, id: u64, value: T, lane: L) -> Option<(T, L)> {
        if let Some(s) = self.index(id) {
            let old_lane = std::mem::replace(&mut self.heads[s].lane, lane);
            return self.values[s].replace(value).map(|v| (v, old_lane));
        }
        let i = usize::try_from(id).expect("an id that fits in memory");
        if i >= self.slot_of.len() {
            self.slot_of.resize(i + 1, ABSENT);
        }
        let s = match self.free.pop() {
            Some(s) => {
                self.heads[s as usize] = Head { id, lane };
                self.values[s as usize] = Some(value);
                s
            }
            None => {
                let s = u32::try_from(self.values.len())
                    .ok()
                    .filter(|&s| s != ABSENT)
                    .expect("fewer than 4 G entries");
                self.heads.push(Head { id, lane });
                self.values.push(Some(value));
                s
            }
        };
        self.slot_of[i] = s;
        self.len += 1;
        None
    }

    /// Removes `id`'s value and lane; its slot is free for the next new id.
    pub fn remove_with_lane(&mut self, id: u64) -> Option<(T, L)> {
        let s = self.index(id)?;
        self.slot_of[id as usize] = ABSENT;
        let value = self.values[s].take()?;
        self.free.push(s as u32);
        self.len -= 1;
        Some((value, self.heads[s].lane))
    }

    /// Removes `id`'s value (and its lane).
    pub fn remove(&mut self, id: u64) -> Option<T> {
        self.remove_with_lane(id).map(|(v, _)| v)
    }

    /// The value of `id`.
    pub fn get(&self, id: u64) -> Option<&T> {
        self.index(id).and_then(|s| self.values[s].as_ref())
    }

    /// The lane and value of `id`.
    pub fn get_with_lane(&self, id: u64) -> Option<(&L, &T)> {
        let s = self.index(id)?;
        Some((&self.heads[s].lane, self.values[s].as_ref()?))
    }

    /// The lane of `id` to change, and its value to read.
    pub fn lane_mut_and_value(&mut self, id: u64) -> Option<(&mut L, &T)> {
        self.index(id)
            .and_then(|s| self.lane_mut_and_value_at(s as u32))
            .map(|(_, lane, value)| (lane, value))
    }

    /// The id in `slot`, its lane to change and its value to read (`None` for a free slot): a
    /// look-up by a slot an index kept, without the id's slot number.
    pub fn lane_mut_and_value_at(&mut self, slot: u32) -> Option<(u64, &mut L, &T)> {
        let s = slot as usize;
        let head = self.heads.get_mut(s)?;
        let value = self.values.get(s)?.as_ref()?;
        Some((head.id, &mut head.lane, value))
    }

    /// The lane and value of `id`, both to change.
    pub fn get_mut_with_lane(&mut self, id: u64) -> Option<(&mut L, &mut T)> {
        let s = self.index(id)?;
        Some((&mut self.heads[s].lane, self.values[s].as_mut()?))
    }

    /// Hints that `slot`'s id and lane will soon be read (see [`crate::kernel::prefetch`]). Any
    /// slot is accepted; nothing is read.
    #[inline(always)]
    pub fn prefetch_at(&self, slot: u32) {
        let i = (slot as usize).min(self.heads.len());
        crate::kernel::prefetch::prefetch_addr(self.heads.as_ptr().wrapping_add(i).cast());
    }

    /// The value of `id`, to change.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        self.index(id).and_then(|s| self.values[s].as_mut())
    }

    /// True if `id` is present.
    pub fn contains_key(&self, id: u64) -> bool {
        self.slot(id).is_some()
    }

    /// Number of present entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no entry is present.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Present entries in no meaningful order (for look-ups, counts and filters whose result is
    /// sorted or order-free).
    pub fn iter_unordered(&self) -> impl Iterator<Item = (u64, &T)> + '_ {
        self.heads
            .iter()
            .zip(&self.values)
            .filter_map(|(h, v)| v.as_ref().map(|v| (h.id, v)))
    }

    /// Every present lane and value, to change, in no meaningful order (for changes made to
    /// each entry alike).
    pub fn iter_mut_unordered_with_lanes(&mut self) -> impl Iterator<Item = (&mut L, &mut T)> + '_ {
        self.heads
            .iter_mut()
            .zip(self.values.iter_mut())
            .filter_map(|(h, v)| v.as_mut().map(|v| (&mut h.lane, v)))
    }

    /// The present ids, in id order.
    pub fn sorted_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.iter_unordered().map(|(id, _)| id).collect();
        ids.sort_unstable();
        ids
    }

    /// The present entries, in id order.
    pub fn sorted(&self) -> Vec<(u64, &T)> {
        let mut all: Vec<(u64, &T)> = self.iter_unordered().collect();
        all.sort_unstable_by_key(|(id, _)| *id);
        all
    }

    /// The present entries with their lanes and slots, in id order.
    pub fn sorted_with_lanes(&self) -> Vec<(u64, &L, &T)> {
        let mut all: Vec<(u64, &L, &T)> = self
            .heads
            .iter()
            .zip(&self.values)
            .filter_map(|(h, v)| v.as_ref().map(|v| (h.id, &h.lane, v)))
            .collect();
        all.sort_unstable_by_key(|(id, _, _)| *id);
        all
    }

    /// The entries, in id order, taken out of the map (lanes dropped).
    pub fn into_sorted(self) -> Vec<(u64, T)> {
        self.into_sorted_with_lanes()
            .into_iter()
            .map(|(id, _, v)| (id, v))
            .collect()
    }

    /// The entries with their lanes, in id order, taken out of the map.
    pub fn into_sorted_with_lanes(self) -> Vec<(u64, L, T)> {
        let mut all: Vec<(u64, L, T)> = self
            .heads
            .into_iter()
            .zip(self.values)
            .filter_map(|(h, v)| v.map(|v| (h.id, h.lane, v)))
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
    fn removal_frees_a_slot_and_keeps_every_lookup_right() {
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
    fn a_value_keeps_its_slot_until_removed_and_a_new_id_takes_the_slot_freed_last() {
        let mut m: DenseIdMap<&str, u8> = DenseIdMap::new();
        for (id, v, l) in [(3, "c", 30), (7, "g", 70), (9, "i", 90)] {
            assert!(m.insert_with_lane(id, v, l).is_none());
        }
        let (s7, s9) = (m.slot(7), m.slot(9));
        assert_eq!(m.remove_with_lane(3), Some(("c", 30)));
        assert_eq!(
            (m.slot(7), m.slot(9)),
            (s7, s9),
            "the others stay where they were"
        );
        assert_eq!(m.get_with_lane(9), Some((&90, &"i")));
        assert_eq!(m.slot(3), None);
        assert!(m.insert_with_lane(12, "l", 120).is_none());
        assert_eq!(m.slot(12), Some(0), "the freed slot");
        if let Some((id, l, v)) = m.lane_mut_and_value_at(0) {
            assert_eq!((id, *v), (12, "l"));
            *l = 121;
        }
        assert!(m.remove(9).is_some());
        assert!(
            m.lane_mut_and_value_at(s9.expect("was present")).is_none(),
            "a free slot"
        );
        assert_eq!(m.insert_with_lane(7, "G", 72), Some(("g", 70)));
        assert_eq!(
            m.sorted_with_lanes(),
            vec![(7, &72, &"G"), (12, &121, &"l")]
        );
        assert_eq!(m.len(), 2);
        assert_eq!(
            m.into_sorted_with_lanes(),
            vec![(7, 72, "G"), (12, 121, "l")]
        );
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
