//! The event window of a watch cache (kube-apiserver `storage/cacher/watch_cache.go`: the cyclic
//! buffer, `resizeCacheLocked`, `getAllEventsSinceLocked`'s oldest-RV rule), apart from the
//! store of current objects it sits beside. `WatchCache` keeps one over full events; the window
//! logic does not look at anything but an event's RV, record time and size. The sweep's followers
//! (`cache_shadow.rs`) apply these same rules to start indices into one shared log.
//!
//! Rules (k8s-cacher-protocol.md §2.2-2.4; k8s-unit-test-expectations.md cases 1-5):
//! - the resize check runs only when inserting into a full ring; grow to `min(2·cap, upper)` if
//!   the oldest buffered event is strictly younger than `fresh` (75 s); otherwise shrink to
//!   `max(cap/2, lower)` keeping the newest events if the event at `end - cap/4` is strictly older;
//! - then a full ring evicts its oldest event and remembers that an event was removed since the
//!   last relist;
//! - oldest watchable RV = list RV + 1 while nothing was evicted since the last Replace, else the
//!   first buffered event's RV; a watch from below `oldest - 1` is 410 `too old resource version`.

use crate::kernel::cow::CowDeque;

use super::status::Status;
use crate::kernel::Nanos;
use crate::scenario::{WatchCacheConfig, WatchCacheMode};

/// What a window reads of a buffered event.
pub trait WindowEvent: Clone {
    /// The event's resource version.
    fn rv(&self) -> i64;
    /// When the cache recorded it (`RecordTime`).
    fn time_ns(&self) -> Nanos;
    /// Its size in bytes (counted in the cache's memory).
    fn bytes(&self) -> u64;
    /// Forgets the record time (the explorer's time abstraction).
    fn erase_time(&mut self);
}

/// The start check of `getAllEventsSinceLocked`: a watch from `rv` needs `rv >= oldest - 1`
/// (`oldest` = the window's oldest watchable RV); else 410 `too old resource version`. No oldest
/// RV at all means the cache was never initialised.
pub fn check_watchable(rv: i64, oldest: Option<i64>) -> Result<(), Status> {
    let oldest =
        oldest.ok_or_else(|| Status::internal("watch cache isn't correctly initialized".into()))?;
    if rv < oldest - 1 {
        return Err(Status::too_old(rv, oldest - 1));
    }
    Ok(())
}

/// A cyclic event window of fixed or dynamic capacity, indexed by absolute event number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Window<E: Clone> {
    dynamic: bool,
    capacity: u64,
    lower: u64,
    upper: u64,
    fresh_ns: Nanos,
    ring: CowDeque<E>,
    start_index: u64,
    ring_bytes: u64,
    removed_event_since_relist: bool,
    capacity_max: u64,
    bytes_max: u64,
}

impl<E: WindowEvent> Window<E> {
    /// An empty window sized per `[apiserver.watch_cache]` (mode `off` is handled by the cacher).
    pub fn new(config: &WatchCacheConfig) -> Self {
        match config.mode {
            WatchCacheMode::Fixed => Self::with_bounds(
                config.capacity,
                config.capacity,
                config.capacity,
                config.fresh.as_ns(),
                false,
            ),
            _ => Self::with_bounds(
                config.lower,
                config.lower,
                config.upper_bound(),
                config.fresh.as_ns(),
                true,
            ),
        }
    }

    /// An empty window with explicit bounds.
    pub fn with_bounds(
        capacity: u64,
        lower: u64,
        upper: u64,
        fresh_ns: Nanos,
        dynamic: bool,
    ) -> Self {
        Window {
            dynamic,
            capacity,
            lower,
            upper,
            fresh_ns,
            ring: CowDeque::default(),
            start_index: 0,
            ring_bytes: 0,
            removed_event_since_relist: false,
            capacity_max: capacity,
            bytes_max: 0,
        }
    }

    /// Current capacity in events.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }
    /// The history window (`eventFreshDuration`).
    pub fn fresh_ns(&self) -> Nanos {
        self.fresh_ns
    }
    /// Largest capacity reached.
    pub fn capacity_max(&self) -> u64 {
        self.capacity_max
    }
    /// Largest memory reached (the store's bytes, as passed in, plus the ring's).
    pub fn bytes_max(&self) -> u64 {
        self.bytes_max
    }
    /// Absolute index of the oldest buffered event.
    pub fn start_index(&self) -> u64 {
        self.start_index
    }
    /// Absolute index after the newest buffered event.
    pub fn end_index(&self) -> u64 {
        self.start_index + self.ring.len() as u64
    }
    /// Events buffered.
    pub fn len(&self) -> usize {
        self.ring.len()
    }
    /// True when no event is buffered.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
    /// The oldest and newest buffered events.
    pub fn ends(&self) -> Option<(&E, &E)> {
        Some((self.ring.front()?, self.ring.back()?))
    }
    /// The buffered event at absolute index `i`, if still buffered.
    pub fn event_at(&self, i: u64) -> Option<&E> {
        i.checked_sub(self.start_index)
            .and_then(|rel| self.ring.get(rel as usize))
    }

    fn note_bytes(&mut self, store_bytes: u64) {
        self.bytes_max = self.bytes_max.max(store_bytes + self.ring_bytes);
    }

    /// `Replace`: the ring restarts empty at the same index, so open intervals are invalidated,
    /// and nothing counts as evicted. `store_bytes` is the new state's size.
    pub fn restart(&mut self, store_bytes: u64) {
        self.start_index = self.end_index();
        self.ring = CowDeque::default();
        self.ring_bytes = 0;
        self.removed_event_since_relist = false;
        self.note_bytes(store_bytes);
    }

    /// The resize check of `resizeCacheLocked`, run before inserting an event recorded at `now`.
    pub fn resize_at(&mut self, now: Nanos) {
        if !self.dynamic || (self.ring.len() as u64) < self.capacity {
            return;
        }
        let oldest = self.ring.front().map(|e| e.time_ns()).unwrap_or(now);
        if now.saturating_sub(oldest) < self.fresh_ns {
            let grown = (self.capacity * 2).min(self.upper);
            self.capacity = grown;
            self.capacity_max = self.capacity_max.max(grown);
            return;
        }
        let quarter = (self.ring.len() as u64 - self.capacity / 4) as usize;
        let quarter_time = self.ring.get(quarter).map(|e| e.time_ns()).unwrap_or(now);
        if now.saturating_sub(quarter_time) > self.fresh_ns {
            let shrunk = (self.capacity / 2).max(self.lower);
            while self.ring.len() as u64 > shrunk {
                self.pop_oldest();
            }
            self.capacity = shrunk;
        }
    }

    fn pop_oldest(&mut self) {
        if let Some(e) = self.ring.make_mut().pop_front() {
            self.ring_bytes -= e.bytes();
            self.start_index += 1;
        }
    }

    /// The first half of `processEvent`: the resize check, then, when the ring is full, the
    /// eviction of its oldest event (remembered until the next Replace).
    pub fn make_room(&mut self, now: Nanos) {
        self.resize_at(now);
        if self.ring.len() as u64 >= self.capacity {
            self.pop_oldest();
            self.removed_event_since_relist = true;
        }
    }

    /// The second half: buffers `event`; `store_bytes` is the store's size after it.
    pub fn push(&mut self, event: E, store_bytes: u64) {
        self.ring_bytes += event.bytes();
        self.ring.make_mut().push_back(event);
        self.note_bytes(store_bytes);
    }

    /// Asks for the cache lines of the two oldest buffered events, which the next event reads
    /// when the ring is full (the one it evicts, and the new oldest) (a hint).
    #[inline]
    pub fn prefetch_oldest(&self) {
        for e in self.ring.range(..self.ring.len().min(2)) {
            crate::kernel::prefetch::prefetch_whole(e);
        }
    }

    /// Asks for the cache lines of the slot the next buffered event is written to (a hint). The
    /// ring's buffer is usually larger than the window, so that slot is not the evicted
    /// oldest's but the one after the newest, last written a buffer's length of events ago
    /// (issue 16: the store that missed there was most of a lease event's wait in the cacher).
    /// Only for a ring of [`Self::BIG_RING`] events or more: a smaller one stays cached.
    #[inline]
    pub fn prefetch_next_slot(&self) {
        if self.ring.len() >= Self::BIG_RING {
            crate::kernel::prefetch::prefetch_after_newest(&self.ring);
        }
    }

    /// Events from which a ring is too big to stay cached (about a megabyte).
    const BIG_RING: usize = 16_384;

    /// The oldest RV a watch may start after, i.e. a watch from `oldest - 1` is served;
    /// `list_rv` is the RV of the last Replace.
    pub fn oldest_rv(&self, list_rv: i64) -> Option<i64> {
        if list_rv > 0 && !self.removed_event_since_relist {
            Some(list_rv + 1)
        } else {
            self.ring.front().map(|e| e.rv())
        }
    }

    /// The absolute index of the first buffered event with RV > `rv`, or the 410 for a watch from
    /// `rv` (`getAllEventsSinceLocked`).
    pub fn index_after(&self, rv: i64, list_rv: i64) -> Result<u64, Status> {
        check_watchable(rv, self.oldest_rv(list_rv))?;
        Ok(self.start_index + self.position_after(rv) as u64)
    }

    /// The ring position of the first buffered event with RV > `rv` (a binary search: RVs are
    /// increasing).
    fn position_after(&self, rv: i64) -> usize {
        let (mut lo, mut hi) = (0usize, self.ring.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.ring[mid].rv() <= rv {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The first buffered event with RV >= `rv`.
    pub fn first_at_or_above(&self, rv: i64) -> Option<&E> {
        self.ring.get(self.position_after(rv.saturating_sub(1)))
    }

    /// The buffered events, newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = &E> {
        self.ring.iter().rev()
    }

    /// Tests: a window already holding `events`, the first at absolute index `start` (no resize
    /// check, no eviction), as the upstream tests build their caches.
    #[cfg(test)]
    pub(super) fn test_fill(&mut self, start: u64, events: impl IntoIterator<Item = E>) {
        self.start_index = start;
        for e in events {
            self.ring_bytes += e.bytes();
            self.ring.make_mut().push_back(e);
        }
    }

    /// The explorer's time abstraction: forgets when each event was recorded.
    pub fn erase_times(&mut self) {
        if self.ring.iter().all(|e| e.time_ns() == 0) {
            return;
        }
        for e in self.ring.make_mut().iter_mut() {
            e.erase_time();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event reduced to what the window reads: `(rv, record time, bytes)`.
    impl WindowEvent for (i64, Nanos, u64) {
        fn rv(&self) -> i64 {
            self.0
        }
        fn time_ns(&self) -> Nanos {
            self.1
        }
        fn bytes(&self) -> u64 {
            self.2
        }
        fn erase_time(&mut self) {
            self.1 = 0;
        }
    }

    #[test]
    fn a_window_of_triples_follows_the_same_rules() {
        // Fixed capacity 2: the third event evicts the first; the oldest RV moves from list RV
        // + 1 to the first buffered event's RV once something was evicted.
        let mut w: Window<(i64, Nanos, u64)> = Window::with_bounds(2, 2, 2, 0, false);
        w.restart(0);
        assert_eq!(w.oldest_rv(10), Some(11));
        for (rv, bytes) in [(11, 5), (12, 6), (13, 7)] {
            w.make_room(0);
            w.push((rv, 0, bytes), 100);
        }
        assert_eq!((w.start_index(), w.end_index()), (1, 3));
        assert_eq!(w.oldest_rv(10), Some(12));
        assert_eq!(w.index_after(11, 10), Ok(1));
        assert!(w.index_after(10, 10).is_err());
        assert_eq!(w.bytes_max(), 100 + 6 + 7);
        assert_eq!(w.capacity_max(), 2);
    }
}
