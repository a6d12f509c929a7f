//! The watchers filed by the time their next periodic bookmark is due
//! (`cacher.go watcherBookmarkTimeBuckets`: `addWatcher` files a watcher in the bucket of its
//! `nextBookmarkTime`, `popExpiredWatchers` takes the buckets that are due). The bookmark tick
//! (about once a second) then looks at the watchers that are due, not at every watcher: issue 16,
//! `cluster-15k`'s ticks read two cache lines of each of its ~10,000 watchers per apiserver,
//! 11 % of its steady state's cache misses.
//!
//! It is derived data, an index over the watchers' `next_bookmark_ns`, and may hold more than
//! it must: a filing whose watcher has gone or was filed again later stays until its time comes
//! and is then dropped. What the tick relies on is that it holds at least every watcher whose
//! `next_bookmark_ns` is set, under that time: [`BookmarkQueue::file`] is called wherever one is
//! set, and the queue is marked stale ([`BookmarkQueue::invalidate`]) wherever the watchers are
//! replaced at once; a stale queue is rebuilt from the watchers when the tick next needs it. The
//! tick checks each popped watcher's own fields, so it picks exactly the watchers a walk over all
//! of them would pick.
//!
//! A copy starts stale and empty: the explorer copies cachers for every state it reaches and
//! renames or time-abstracts most of them only to fingerprint them, so the queue is built only
//! in the states that reach a tick.

use std::collections::BTreeMap;

use crate::kernel::Nanos;
use crate::proto::ConnId;

/// Watchers by due time (see the module doc).
#[derive(Debug)]
pub(super) struct BookmarkQueue {
    by_time: BTreeMap<Nanos, Vec<ConnId>>,
    /// The filings may miss watchers: rebuild before popping.
    stale: bool,
}

impl Default for BookmarkQueue {
    /// An empty queue of a cacher with no watchers: up to date.
    fn default() -> Self {
        BookmarkQueue {
            by_time: BTreeMap::new(),
            stale: false,
        }
    }
}

impl Clone for BookmarkQueue {
    /// A copy starts stale (see the module doc).
    fn clone(&self) -> Self {
        BookmarkQueue {
            by_time: BTreeMap::new(),
            stale: true,
        }
    }
}

impl BookmarkQueue {
    /// Files `conn` under `at`, if it has a next bookmark time (nothing while stale: the
    /// rebuild will find it).
    pub(super) fn file(&mut self, conn: ConnId, at: Option<Nanos>) {
        if let (Some(t), false) = (at, self.stale) {
            self.by_time.entry(t).or_default().push(conn);
        }
    }

    /// Forgets every filing: the watchers were replaced at once (renamed, their times erased,
    /// all removed); rebuilt when next needed.
    pub(super) fn invalidate(&mut self) {
        self.by_time.clear();
        self.stale = true;
    }

    /// Takes every filing due at or before `now`, each with the time it was filed under; a
    /// stale queue is first rebuilt from `watchers` (conn, next bookmark time).
    pub(super) fn pop_due(
        &mut self,
        now: Nanos,
        watchers: impl FnOnce() -> Vec<(ConnId, Option<Nanos>)>,
    ) -> Vec<(Nanos, ConnId)> {
        if self.stale {
            self.stale = false;
            for (conn, at) in watchers() {
                self.file(conn, at);
            }
        }
        let later = match now.checked_add(1) {
            Some(after) => self.by_time.split_off(&after),
            None => BTreeMap::new(),
        };
        let due = std::mem::replace(&mut self.by_time, later);
        // Sized up front: grown by `realloc`, a large list bypasses the allocator's per-thread
        // cache and makes it sort its free chunks (issue 16).
        let mut popped = Vec::with_capacity(due.values().map(Vec::len).sum());
        popped.extend(
            due.into_iter()
                .flat_map(|(t, conns)| conns.into_iter().map(move |c| (t, c))),
        );
        popped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Due filings come out (in time order), later ones stay; a stale queue (a copy, or one
    /// invalidated) is rebuilt from the watchers before it answers.
    #[test]
    fn pops_what_is_due_and_keeps_the_rest() {
        let none = Vec::new;
        let mut q = BookmarkQueue::default();
        q.file(7, Some(30));
        q.file(3, Some(10));
        q.file(5, None);
        q.file(9, Some(10));
        let copy = q.clone();
        assert_eq!(q.pop_due(9, none), vec![]);
        assert_eq!(q.pop_due(10, none), vec![(10, 3), (10, 9)]);
        assert_eq!(q.pop_due(29, none), vec![]);
        q.file(1, Some(Nanos::MAX));
        assert_eq!(q.pop_due(Nanos::MAX, none), vec![(30, 7), (Nanos::MAX, 1)]);
        q.file(2, Some(5));
        q.invalidate();
        q.file(6, Some(1));
        let watchers = || vec![(4, Some(6)), (8, None)];
        assert_eq!(q.pop_due(100, watchers), vec![(6, 4)]);
        let mut copy = copy;
        assert_eq!(copy.pop_due(100, || vec![(7, Some(30))]), vec![(30, 7)]);
    }
}
