//! The agenda: every pending event (a timer or an in-flight message) keyed by
//! `(due time, sequence number)`. The simulator fires the first entry; the explorer may fire any
//! enabled one. A `std` B-tree map (issue 16: the persistent `imbl::OrdMap` it was cost 8 % of a
//! `cluster-15k` run in its copy-on-write checks and wide nodes; the explorer's agendas hold a
//! few dozen events, so its copies stay cheap).

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agenda<E: Clone> {
    entries: BTreeMap<EventKey, E>,
    next_seq: u64,
}

/// Hashed as before: each `(key, event)` in order (as `imbl::OrdMap` hashes, without a length),
/// then the next sequence number, so explorer states hash as they did.
impl<E: Clone + Hash> Hash for Agenda<E> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        for entry in &self.entries {
            entry.hash(h);
        }
        self.next_seq.hash(h);
    }
}

impl<E: Clone> Default for Agenda<E> {
    fn default() -> Self {
        Agenda {
            entries: BTreeMap::new(),
            next_seq: 0,
        }
    }
}

impl<E: Clone> Agenda<E> {
    /// An empty agenda.
    pub fn new() -> Self {
        Self::default()
    }

    /// Schedules `event` at `due_ns`; returns its key.
    pub fn schedule(&mut self, due_ns: Nanos, event: E) -> EventKey {
        let key = EventKey {
            due_ns,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        self.entries.insert(key, event);
        key
    }

    /// The sequence number the next scheduled event will get (read-only; the shrinker maps the
    /// events a step scheduled from one run to another through it).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The earliest pending event, if any.
    pub fn first(&self) -> Option<(EventKey, &E)> {
        self.entries.first_key_value().map(|(k, e)| (*k, e))
    }

    /// Removes and returns the event with this key.
    pub fn take(&mut self, key: EventKey) -> Option<E> {
        self.entries.remove(&key)
    }

    /// Looks up a pending event.
    pub fn get(&self, key: EventKey) -> Option<&E> {
        self.entries.get(&key)
    }

    /// All pending events in order.
    pub fn iter(&self) -> impl Iterator<Item = (EventKey, &E)> {
        self.entries.iter().map(|(k, e)| (*k, e))
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Rewrites every pending event in place (keys unchanged): the explorer's renamings.
    pub fn rewrite(&mut self, mut f: impl FnMut(&mut E)) {
        self.entries = std::mem::take(&mut self.entries)
            .into_iter()
            .map(|(k, mut e)| {
                f(&mut e);
                (k, e)
            })
            .collect();
    }

    /// Removes every event for which `drop` returns true (e.g. messages of a closed connection).
    pub fn remove_where(&mut self, mut drop: impl FnMut(&E) -> bool) -> usize {
        let doomed: Vec<EventKey> = self
            .entries
            .iter()
            .filter(|(_, e)| drop(e))
            .map(|(k, _)| *k)
            .collect();
        for k in &doomed {
            self.entries.remove(k);
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
}
