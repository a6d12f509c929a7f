//! The agenda: every pending event (a timer or an in-flight message) keyed by
//! `(due time, sequence number)`. The simulator fires the first entry; the explorer may fire any
//! enabled one. An index of keys over a slab of events: a `std` B-tree map while small, a timing
//! wheel when large (issue 16: the persistent `imbl::OrdMap` it was cost 8 % of a `cluster-15k`
//! run in its copy-on-write checks and wide nodes; the explorer's agendas hold a few dozen
//! events, so its copies stay cheap).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, btree_map};
use std::hash::{Hash, Hasher};

use super::time::Nanos;
use super::timing_wheel::Wheel;

/// Identity of a pending event: when it is due and the order it was scheduled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventKey {
    /// Virtual time at which the event is due.
    pub due_ns: Nanos,
    /// Scheduling order; breaks ties between events due at the same time.
    pub seq: u64,
}

/// Pending events in `(time, sequence)` order.
///
/// The ordered index holds only keys and slot numbers; the events themselves (160 bytes each in
/// the world) sit in a slab whose free slots are reused last-freed first. Shifting a B-tree node
/// then moves 24-byte entries instead of whole events (issue 16: the node shifts of a map of events
/// were 7 % of a `sweep-1k` run, in `memmove`). Slot numbers never show: equality and hashing walk
/// the events in key order.
///
/// The index is a `BTreeMap` while the agenda is small (the explorer's few dozen events, walked in
/// order for every state's hash) and a timing wheel ([`super::timing_wheel`]) once it holds
/// [`WHEEL_FROM`] events (a simulated cluster's tens of thousands, where the B-tree's insert and
/// remove were ~13 % of a `sweep-1k` run); it goes back below [`TREE_BELOW`]. Which layout holds
/// the keys never changes an answer: events fire in `(due, seq)` order either way.
#[derive(Debug, Clone)]
pub struct Agenda<E: Clone> {
    order: Order,
    slots: Vec<Option<E>>,
    free: Vec<u32>,
    next_seq: u64,
}

/// An agenda of this many events switches its index to the timing wheel.
pub const WHEEL_FROM: usize = 1024;
/// A timing-wheel agenda that falls below this many events goes back to a B-tree.
pub const TREE_BELOW: usize = 256;

/// The agenda's ordered index of keys to slots (see [`Agenda`]).
#[derive(Debug, Clone)]
enum Order {
    Tree(BTreeMap<EventKey, u32>),
    Wheel(Box<Wheel>),
}

/// The keys of an [`Order`] in order, with their slots.
enum OrderIter<'a> {
    Tree(btree_map::Iter<'a, EventKey, u32>),
    Sorted(std::vec::IntoIter<(EventKey, u32)>),
}

impl Iterator for OrderIter<'_> {
    type Item = (EventKey, u32);
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            OrderIter::Tree(it) => it.next().map(|(k, s)| (*k, *s)),
            OrderIter::Sorted(it) => it.next(),
        }
    }
}

impl Order {
    fn len(&self) -> usize {
        match self {
            Order::Tree(t) => t.len(),
            Order::Wheel(w) => w.len(),
        }
    }

    fn insert(&mut self, key: EventKey, slot: u32) {
        match self {
            Order::Tree(t) => {
                t.insert(key, slot);
                if t.len() >= WHEEL_FROM {
                    *self = Order::Wheel(Box::new(Wheel::from_entries(std::mem::take(t))));
                }
            }
            Order::Wheel(w) => w.insert(key, slot),
        }
    }

    fn remove(&mut self, key: EventKey) -> Option<u32> {
        match self {
            Order::Tree(t) => t.remove(&key),
            Order::Wheel(w) => {
                let slot = w.remove(key)?;
                if w.len() < TREE_BELOW {
                    *self = Order::Tree(w.sorted().into_iter().collect());
                }
                Some(slot)
            }
        }
    }

    fn first(&self) -> Option<(EventKey, u32)> {
        match self {
            Order::Tree(t) => t.first_key_value().map(|(k, s)| (*k, *s)),
            Order::Wheel(w) => w.first(),
        }
    }

    fn second(&self) -> Option<(EventKey, u32)> {
        match self {
            Order::Tree(t) => t.iter().nth(1).map(|(k, s)| (*k, *s)),
            Order::Wheel(w) => w.second(),
        }
    }

    fn get(&self, key: EventKey) -> Option<u32> {
        match self {
            Order::Tree(t) => t.get(&key).copied(),
            Order::Wheel(w) => w.get(key),
        }
    }

    fn iter(&self) -> OrderIter<'_> {
        match self {
            Order::Tree(t) => OrderIter::Tree(t.iter()),
            Order::Wheel(w) => OrderIter::Sorted(w.sorted().into_iter()),
        }
    }
}

impl<E: Clone + PartialEq> PartialEq for Agenda<E> {
    fn eq(&self, other: &Self) -> bool {
        self.next_seq == other.next_seq
            && self.order.len() == other.order.len()
            && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl<E: Clone + Eq> Eq for Agenda<E> {}

/// Hashed as before: each `(key, event)` in order (as `imbl::OrdMap` hashes, without a length),
/// then the next sequence number, so explorer states hash as they did.
impl<E: Clone + Hash> Hash for Agenda<E> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        for entry in self.iter() {
            entry.hash(h);
        }
        self.next_seq.hash(h);
    }
}

impl<E: Clone> Default for Agenda<E> {
    fn default() -> Self {
        Agenda {
            order: Order::Tree(BTreeMap::new()),
            slots: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
        }
    }
}

impl<E: Clone> Agenda<E> {
    /// An empty agenda.
    pub fn new() -> Self {
        Self::default()
    }

    fn event(&self, slot: u32) -> &E {
        self.slots[slot as usize]
            .as_ref()
            .expect("an ordered key names an occupied slot")
    }

    fn vacate(&mut self, slot: u32) -> E {
        self.free.push(slot);
        self.slots[slot as usize]
            .take()
            .expect("an ordered key names an occupied slot")
    }

    /// Schedules `event` at `due_ns`; returns its key.
    pub fn schedule(&mut self, due_ns: Nanos, event: E) -> EventKey {
        let key = EventKey {
            due_ns,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(event);
                slot
            }
            None => {
                self.slots.push(Some(event));
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 pending events")
            }
        };
        self.order.insert(key, slot);
        key
    }

    /// The sequence number the next scheduled event will get (read-only; the shrinker maps the
    /// events a step scheduled from one run to another through it).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The earliest pending event, if any.
    pub fn first(&self) -> Option<(EventKey, &E)> {
        self.order.first().map(|(k, slot)| (k, self.event(slot)))
    }

    /// The second earliest pending event, when it is cheap to find (for read-ahead hints: `None`
    /// may also mean that finding it would take a search).
    pub fn second(&self) -> Option<(EventKey, &E)> {
        self.order.second().map(|(k, slot)| (k, self.event(slot)))
    }

    /// Removes and returns the event with this key.
    pub fn take(&mut self, key: EventKey) -> Option<E> {
        let slot = self.order.remove(key)?;
        Some(self.vacate(slot))
    }

    /// Looks up a pending event.
    pub fn get(&self, key: EventKey) -> Option<&E> {
        self.order.get(key).map(|slot| self.event(slot))
    }

    /// All pending events in order.
    pub fn iter(&self) -> impl Iterator<Item = (EventKey, &E)> {
        self.order.iter().map(|(k, slot)| (k, self.event(slot)))
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.order.len() == 0
    }

    /// Rewrites every pending event in place (keys unchanged): the explorer's renamings.
    pub fn rewrite(&mut self, mut f: impl FnMut(&mut E)) {
        for (_, slot) in self.order.iter() {
            if let Some(e) = self.slots[slot as usize].as_mut() {
                f(e);
            }
        }
    }

    /// Removes every event for which `drop` returns true (e.g. messages of a closed connection).
    pub fn remove_where(&mut self, mut drop: impl FnMut(&E) -> bool) -> usize {
        let doomed: Vec<EventKey> = self
            .iter()
            .filter(|(_, e)| drop(e))
            .map(|(k, _)| k)
            .collect();
        for k in &doomed {
            self.take(*k);
        }
        doomed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_time_then_sequence_order() {
        let mut a = Agenda::new();
        a.schedule(20, "late");
        a.schedule(10, "first-at-10");
        a.schedule(10, "second-at-10");
        let order: Vec<&str> = std::iter::from_fn(|| {
            let (k, _) = a.first()?;
            a.take(k)
        })
        .collect();
        assert_eq!(order, ["first-at-10", "second-at-10", "late"]);
    }

    #[test]
    fn equality_and_hash_ignore_slot_layout() {
        // Same pending events and sequence counter, reached through different slot reuse.
        let mut a = Agenda::new();
        let ka = a.schedule(5, "x");
        a.schedule(7, "y");
        a.take(ka);
        a.schedule(9, "z");
        let mut b = Agenda::new();
        b.schedule(1, "gone");
        b.schedule(7, "y");
        b.schedule(9, "z");
        let first = b.first().unwrap().0;
        b.take(first);
        assert_eq!(a, b, "same keys and events in different slots");
        assert_eq!(
            crate::kernel::std_hash_of(&a),
            crate::kernel::std_hash_of(&b)
        );
        let mut c = Agenda::new();
        c.schedule(5, "x");
        let k7 = c.schedule(7, "y");
        c.take(EventKey { due_ns: 5, seq: 0 });
        c.schedule(9, "w");
        assert_ne!(a, c, "a different event at the same key");
        assert_eq!(c.get(k7), Some(&"y"));
        assert_eq!(c.remove_where(|e| *e == "w"), 1);
        assert_ne!(a, c);
        assert_eq!(c.len(), 1);
    }
}
