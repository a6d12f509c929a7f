//! Other watch-cache configurations followed along one run, for `watchsim sweep`
//! (docs/performance.md "Sweep speed", "verify or rerun"). A sweep over the watch cache's size
//! runs, per seed, one
//! representative configuration for real and carries for each other grid point a shadow of its
//! cache window: the same events go into a [`Window`] sized by that point's configuration. At
//! every place where the cacher's behaviour depends on its window (a watch's start RV inside it
//! or 410, a replay's events still buffered, a slow watcher's channel size), the shadow's answer
//! is compared with the cacher's; the first difference drops the shadow. A shadow that lasts the
//! whole run made every decision as the real cache did, so that grid point's run is this run,
//! step for step, and only its cache figures (capacity and memory maxima) differ: those come
//! from the shadow. Dropped points are run again as representatives of their own.

use std::collections::VecDeque;

use super::cache_window::check_watchable;
use super::status::Status;
use crate::kernel::Nanos;
use crate::scenario::{WatchCacheConfig, WatchCacheMode};

/// One followed configuration's window: the same rules as `cache_window.rs` `Window` (resize,
/// eviction, oldest RV, `index_after`), kept as a start index into the log all followers share,
/// so following costs a few integer operations per event and configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Follower {
    dynamic: bool,
    capacity: u64,
    lower: u64,
    upper: u64,
    fresh_ns: Nanos,
    start: u64,
    ring_bytes: u64,
    removed_event_since_relist: bool,
    capacity_max: u64,
    bytes_max: u64,
}

impl Follower {
    fn new(c: &WatchCacheConfig, end: u64) -> Self {
        let (capacity, lower, upper, dynamic) = match c.mode {
            WatchCacheMode::Fixed => (c.capacity, c.capacity, c.capacity, false),
            _ => (c.lower, c.lower, c.upper_bound(), true),
        };
        Follower {
            dynamic,
            capacity,
            lower,
            upper,
            fresh_ns: c.fresh.as_ns(),
            start: end,
            ring_bytes: 0,
            removed_event_since_relist: false,
            capacity_max: capacity,
            bytes_max: 0,
        }
    }
}

/// A followed configuration's window as the cacher's checks read it.
#[derive(Clone, Copy)]
pub struct FollowerView<'a> {
    f: &'a Follower,
    log: &'a VecDeque<(i64, Nanos, u64)>,
    base: u64,
}

impl FollowerView<'_> {
    fn event(&self, i: u64) -> Option<&(i64, Nanos, u64)> {
        i.checked_sub(self.base)
            .and_then(|r| self.log.get(r as usize))
    }
    fn end(&self) -> u64 {
        self.base + self.log.len() as u64
    }
    /// Current capacity in events.
    pub fn capacity(&self) -> u64 {
        self.f.capacity
    }
    /// The history window (`eventFreshDuration`).
    pub fn fresh_ns(&self) -> Nanos {
        self.f.fresh_ns
    }
    /// Largest capacity reached.
    pub fn capacity_max(&self) -> u64 {
        self.f.capacity_max
    }
    /// Largest memory reached (store + ring).
    pub fn bytes_max(&self) -> u64 {
        self.f.bytes_max
    }
    /// Absolute index of the oldest buffered event.
    pub fn start_index(&self) -> u64 {
        self.f.start
    }
    /// As `Window::oldest_rv`.
    fn oldest_rv(&self, list_rv: i64) -> Option<i64> {
        if list_rv > 0 && !self.f.removed_event_since_relist {
            Some(list_rv + 1)
        } else if self.f.start < self.end() {
            self.event(self.f.start).map(|e| e.0)
        } else {
            None
        }
    }
    /// As `Window::index_after`.
    pub fn index_after(&self, rv: i64, list_rv: i64) -> Result<u64, Status> {
        check_watchable(rv, self.oldest_rv(list_rv))?;
        let (mut lo, mut hi) = (self.f.start, self.end());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.event(mid).is_some_and(|e| e.0 <= rv) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }
}

/// The followed configurations of one cacher, indexed by member (grid point) number; `None`
/// once a member's decisions differed from the cacher's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Shadows {
    /// Events from the oldest start of any live follower to the newest: `(rv, time, bytes)`.
    log: VecDeque<(i64, Nanos, u64)>,
    /// Absolute index of `log[0]`.
    base: u64,
    members: Vec<Option<Follower>>,
    /// Members still followed (so a cacher whose followers all diverged costs nothing per event).
    live: usize,
}

impl Shadows {
    /// Fresh windows for `configs`, except the members already dropped (`dropped(m)`).
    pub fn new(configs: &[WatchCacheConfig], dropped: impl Fn(usize) -> bool) -> Self {
        let members: Vec<Option<Follower>> = configs
            .iter()
            .enumerate()
            .map(|(m, c)| (!dropped(m)).then(|| Follower::new(c, 0)))
            .collect();
        let live = members.iter().flatten().count();
        Shadows {
            log: VecDeque::new(),
            base: 0,
            members,
            live,
        }
    }

    /// True when no member is followed (the normal, unshared run).
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Every member slot (for per-watcher data sized alike).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    fn end(&self) -> u64 {
        self.base + self.log.len() as u64
    }

    fn time_at(&self, i: u64) -> Option<Nanos> {
        i.checked_sub(self.base)
            .and_then(|r| self.log.get(r as usize))
            .map(|e| e.1)
    }

    /// `Replace`: every window restarts; `store_bytes` is the new state's size.
    pub fn restart(&mut self, store_bytes: u64) {
        if self.is_empty() {
            return;
        }
        let end = self.end();
        for f in self.members.iter_mut().flatten() {
            f.start = end;
            f.ring_bytes = 0;
            f.removed_event_since_relist = false;
            f.bytes_max = f.bytes_max.max(store_bytes);
        }
        self.trim();
    }

    /// `processEvent` on every window; `store_bytes` is the store's size after the event.
    pub fn record(&mut self, rv: i64, time_ns: Nanos, bytes: u64, store_bytes: u64) {
        if self.is_empty() {
            return;
        }
        let end = self.end();
        for m in 0..self.members.len() {
            let Some(mut f) = self.members[m].take() else {
                continue;
            };
            self.make_room(&mut f, end, time_ns);
            f.ring_bytes += bytes;
            f.bytes_max = f.bytes_max.max(store_bytes + f.ring_bytes);
            self.members[m] = Some(f);
        }
        self.log.push_back((rv, time_ns, bytes));
        self.trim();
    }

    /// As `Window::make_room` (the resize check, then the eviction of a full ring), before the
    /// event at index `end` goes in.
    fn make_room(&self, f: &mut Follower, end: u64, now: Nanos) {
        let len = |f: &Follower| end - f.start;
        let pop = |f: &mut Follower| {
            if f.start < end {
                f.ring_bytes -= self.log[(f.start - self.base) as usize].2;
                f.start += 1;
            }
        };
        if f.dynamic && len(f) >= f.capacity {
            let oldest = self.time_at(f.start).unwrap_or(now);
            if now.saturating_sub(oldest) < f.fresh_ns {
                f.capacity = (f.capacity * 2).min(f.upper);
                f.capacity_max = f.capacity_max.max(f.capacity);
            } else {
                let quarter = len(f) - f.capacity / 4;
                let quarter_time = if quarter < len(f) {
                    self.time_at(f.start + quarter).unwrap_or(now)
                } else {
                    now
                };
                if now.saturating_sub(quarter_time) > f.fresh_ns {
                    let shrunk = (f.capacity / 2).max(f.lower);
                    while len(f) > shrunk {
                        pop(f);
                    }
                    f.capacity = shrunk;
                }
            }
        }
        if len(f) >= f.capacity {
            pop(f);
            f.removed_event_since_relist = true;
        }
    }

    /// Drops the log's events no live follower still holds.
    fn trim(&mut self) {
        let keep_from = self
            .members
            .iter()
            .flatten()
            .map(|f| f.start)
            .min()
            .unwrap_or_else(|| self.end());
        while self.base < keep_from && self.log.pop_front().is_some() {
            self.base += 1;
        }
    }

    /// Compares each live member's answer (`answer(member, window)`) with the cacher's
    /// (`actual`) and drops the members that differ.
    pub fn check<R: PartialEq>(
        &mut self,
        actual: &R,
        answer: impl Fn(usize, FollowerView<'_>) -> R,
    ) {
        if self.is_empty() {
            return;
        }
        let mut dropped = false;
        for m in 0..self.members.len() {
            let differs = self.get(m).is_some_and(|v| answer(m, v) != *actual);
            if differs {
                self.members[m] = None;
                self.live -= 1;
                dropped = true;
            }
        }
        if dropped {
            self.trim();
        }
    }

    /// Member `m`'s window, if it is still followed.
    pub fn get(&self, m: usize) -> Option<FollowerView<'_>> {
        let f = self.members.get(m)?.as_ref()?;
        Some(FollowerView {
            f,
            log: &self.log,
            base: self.base,
        })
    }
}
