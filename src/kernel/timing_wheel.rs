//! The index of a large agenda: pending events' keys in `(due time, sequence)` order, laid out
//! as a timing wheel (issue 16). A simulation only ever takes the first key and schedules keys
//! due at or after the one it took, so most keys go in and out in constant time:
//!
//! - **near**: the keys due before `near_end`, in a binary min-heap (a key scheduled later than
//!   most, the common case, stays at the bottom);
//! - **bins**: the keys due in the window `[near_end, near_end + BINS x BIN_NS)`, one unsorted
//!   bin per `BIN_NS` of time; a bin is made a heap once, when it becomes the near run;
//! - **far**: the keys due after the window, in a `BTreeMap`; they move into the bins as the window
//!   reaches them, each once.
//!
//! Any key may still be looked up or taken (the explorer's and the shrinker's way), and the keys
//! can be walked in order (sorted on demand): the order of events never depends on the layout.
//! Small agendas (the explorer's) stay plain `BTreeMap`s ([`super::agenda`]); the two layouts
//! answer every question identically (`tests/agenda_properties.rs`).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use super::agenda::EventKey;

/// Width of one bin: 2^23 ns (8.4 ms of virtual time; `cluster-15k` fires ~45 events in one).
const BIN_SHIFT: u32 = 23;
/// Width of one bin in nanoseconds.
const BIN_NS: u128 = 1 << BIN_SHIFT;
/// Number of bins: the window spans 4,096 x 8.4 ms = 34 s (node-lease renewals fall inside).
const BINS: usize = 4096;

/// Largest buffer (in entries) a spent near run hands on to its bin for reuse.
const KEEP_BUFFER: usize = 64;

/// One index entry: the event's key and its slot in the agenda's slab.
type Entry = (EventKey, u32);

/// The timing-wheel index (see the module doc). Times are `u128` so that the window's end never
/// overflows, whatever the due times (a timer may be due at `u64::MAX`).
#[derive(Debug, Clone)]
pub(crate) struct Wheel {
    /// Keys due before `near_end`; the first on top.
    near: BinaryHeap<Reverse<Entry>>,
    /// Start of the window of bins; a multiple of `BIN_NS`.
    near_end: u128,
    /// Bin of absolute index `k` (times `[k x BIN_NS, (k+1) x BIN_NS)`) at `k % BINS`; unsorted
    /// (held as `Reverse` so that a bin turns into the near heap, and back, without copying).
    bins: Vec<Vec<Reverse<Entry>>>,
    /// Number of keys in all bins.
    in_bins: usize,
    /// Keys due at or after the window's end.
    far: BTreeMap<EventKey, u32>,
}

fn bin_of(due: u64) -> usize {
    ((u128::from(due) >> BIN_SHIFT) % BINS as u128) as usize
}

impl Wheel {
    /// A wheel holding these entries (in any order).
    pub fn from_entries(entries: impl IntoIterator<Item = Entry>) -> Self {
        let mut w = Wheel {
            near: BinaryHeap::new(),
            near_end: 0,
            bins: vec![Vec::new(); BINS],
            in_bins: 0,
            far: BTreeMap::new(),
        };
        let far: BTreeMap<EventKey, u32> = entries.into_iter().collect();
        if let Some((first, _)) = far.first_key_value() {
            w.near_end = (u128::from(first.due_ns) >> BIN_SHIFT) << BIN_SHIFT;
        }
        w.far = far;
        w.migrate();
        w.settle();
        w
    }

    fn window_end(&self) -> u128 {
        self.near_end + BIN_NS * BINS as u128
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.near.len() + self.in_bins + self.far.len()
    }

    /// The first key and its slot.
    pub fn first(&self) -> Option<Entry> {
        self.near.peek().map(|e| e.0)
    }

    /// The second key and its slot, when it is among the keys due soonest (the heap's top and
    /// its children: the keys in bins are all due later); `None` when it may be in a bin (or
    /// there is none).
    pub fn second(&self) -> Option<Entry> {
        match self.near.as_slice() {
            [_, a, b, ..] => Some(a.0.min(b.0)),
            [_, a] => Some(a.0),
            _ => None,
        }
    }

    /// Adds a key (never one already held).
    pub fn insert(&mut self, key: EventKey, slot: u32) {
        let due = u128::from(key.due_ns);
        if due < self.near_end {
            self.near.push(Reverse((key, slot)));
            return;
        }
        if due < self.window_end() {
            self.bins[bin_of(key.due_ns)].push(Reverse((key, slot)));
            self.in_bins += 1;
        } else {
            self.far.insert(key, slot);
        }
        self.settle();
    }

    /// Removes a key; returns its slot.
    pub fn remove(&mut self, key: EventKey) -> Option<u32> {
        let slot = match self.near.peek() {
            Some(&Reverse((k, slot))) if k == key => {
                self.near.pop();
                slot
            }
            _ => self.remove_anywhere(key)?,
        };
        self.settle();
        Some(slot)
    }

    fn remove_anywhere(&mut self, key: EventKey) -> Option<u32> {
        let due = u128::from(key.due_ns);
        if due < self.near_end {
            let slot = self.near.iter().find(|e| e.0.0 == key)?.0.1;
            self.near.retain(|e| e.0.0 != key);
            return Some(slot);
        }
        if due < self.window_end() {
            let bin = &mut self.bins[bin_of(key.due_ns)];
            let at = bin.iter().position(|e| e.0.0 == key)?;
            self.in_bins -= 1;
            return Some(bin.swap_remove(at).0.1);
        }
        self.far.remove(&key)
    }

    /// The slot of a key.
    pub fn get(&self, key: EventKey) -> Option<u32> {
        let due = u128::from(key.due_ns);
        if due < self.near_end {
            return self.near.iter().find(|e| e.0.0 == key).map(|e| e.0.1);
        }
        if due < self.window_end() {
            return self.bins[bin_of(key.due_ns)]
                .iter()
                .find(|e| e.0.0 == key)
                .map(|e| e.0.1);
        }
        self.far.get(&key).copied()
    }

    /// Every entry, in key order.
    pub fn sorted(&self) -> Vec<Entry> {
        let mut all: Vec<Entry> = Vec::with_capacity(self.len());
        all.extend(self.near.iter().map(|e| e.0));
        for bin in &self.bins {
            all.extend(bin.iter().map(|e| e.0));
        }
        all.sort_unstable_by_key(|e| e.0);
        all.extend(self.far.iter().map(|(k, s)| (*k, *s)));
        all
    }

    /// Keeps the invariant that the near run is empty only when the wheel is: when it runs out,
    /// the next non-empty bin (after moving the far keys the window reaches) becomes the near run.
    fn settle(&mut self) {
        while self.near.is_empty() && (self.in_bins > 0 || !self.far.is_empty()) {
            if self.in_bins == 0 {
                // Nothing in the window: jump it to the first far key.
                let first = self.far.first_key_value().map_or(0, |(k, _)| k.due_ns);
                self.near_end = (u128::from(first) >> BIN_SHIFT) << BIN_SHIFT;
                self.migrate();
                continue;
            }
            let mut k = self.near_end >> BIN_SHIFT;
            while self.bins[(k % BINS as u128) as usize].is_empty() {
                k += 1;
            }
            // The bin becomes the near run; the (empty) near run's buffer becomes the bin's, so
            // that a cycle of the wheel allocates nothing.
            let bin = &mut self.bins[(k % BINS as u128) as usize];
            let next = std::mem::take(bin);
            self.in_bins -= next.len();
            let spent = std::mem::replace(&mut self.near, BinaryHeap::from(next)).into_vec();
            // A small buffer is kept for the bin (a burst's large one is freed: 4,096 bins
            // each holding one would hold memory for nothing).
            if spent.capacity() <= KEEP_BUFFER {
                *bin = spent;
            }
            self.near_end = (k + 1) << BIN_SHIFT;
            self.migrate();
        }
    }

    /// Moves the far keys the window now reaches into their bins.
    fn migrate(&mut self) {
        let end = self.window_end();
        while let Some(entry) = self.far.first_entry() {
            if u128::from(entry.key().due_ns) >= end {
                break;
            }
            let (key, slot) = entry.remove_entry();
            self.bins[bin_of(key.due_ns)].push(Reverse((key, slot)));
            self.in_bins += 1;
        }
    }
}
