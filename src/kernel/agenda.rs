//! The agenda: every pending event (a timer or an in-flight message) keyed by
//! `(due time, sequence number)`. The simulator fires the first entry; the explorer may fire any
//! enabled one. A `std` B-tree map of keys over a slab of events (issue 16: the persistent
//! `imbl::OrdMap` it was cost 8 % of a `cluster-15k` run in its copy-on-write checks and wide
//! nodes; the explorer's agendas hold a few dozen events, so its copies stay cheap).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use super::time::Nanos;

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
/// The ordered map holds only keys and slot numbers; the events themselves (160 bytes each in the
/// world) sit in a slab whose free slots are reused last-freed first. Shifting a B-tree node then
/// moves 24-byte entries instead of whole events (issue 16: the node shifts of a map of events were
/// 7 % of a `sweep-1k` run, in `memmove`). Slot numbers never show: equality and hashing walk the
/// events in key order.
#[derive(Debug, Clone)]
pub struct Agenda<E: Clone> {
    order: BTreeMap<EventKey, u32>,
    slots: Vec<Option<E>>,
    free: Vec<u32>,
    next_seq: u64,
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
            order: BTreeMap::new(),
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
        self.order
            .first_key_value()
            .map(|(k, slot)| (*k, self.event(*slot)))
    }

    /// Removes and returns the event with this key.
    pub fn take(&mut self, key: EventKey) -> Option<E> {
        let slot = self.order.remove(&key)?;
        Some(self.vacate(slot))
    }

    /// Looks up a pending event.
    pub fn get(&self, key: EventKey) -> Option<&E> {
        self.order.get(&key).map(|slot| self.event(*slot))
    }

    /// All pending events in order.
    pub fn iter(&self) -> impl Iterator<Item = (EventKey, &E)> {
        self.order.iter().map(|(k, slot)| (*k, self.event(*slot)))
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Rewrites every pending event in place (keys unchanged): the explorer's renamings.
    pub fn rewrite(&mut self, mut f: impl FnMut(&mut E)) {
        for slot in self.order.values() {
            if let Some(e) = self.slots[*slot as usize].as_mut() {
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
