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
//! set, and [`BookmarkQueue::rebuild`] wherever the watchers are replaced at once. The tick
//! checks each popped watcher's own fields, so it picks exactly the watchers a walk over all of
//! them would pick.

use std::collections::BTreeMap;

use crate::kernel::Nanos;
use crate::proto::ConnId;

/// Watchers by due time (see the module doc).
#[derive(Debug, Clone, Default)]
pub(super) struct BookmarkQueue {
    by_time: BTreeMap<Nanos, Vec<ConnId>>,
}

impl BookmarkQueue {
    /// Files `conn` under `at`, if it has a next bookmark time.
    pub(super) fn file(&mut self, conn: ConnId, at: Option<Nanos>) {
        if let Some(t) = at {
            self.by_time.entry(t).or_default().push(conn);
        }
    }

    /// Takes every filing due at or before `now`, each with the time it was filed under.
    pub(super) fn pop_due(&mut self, now: Nanos) -> Vec<(Nanos, ConnId)> {
        let later = match now.checked_add(1) {
            Some(after) => self.by_time.split_off(&after),
            None => BTreeMap::new(),
        };
        let due = std::mem::replace(&mut self.by_time, later);
        due.into_iter()
            .flat_map(|(t, conns)| conns.into_iter().map(move |c| (t, c)))
            .collect()
    }

    /// Files every watcher of `watchers` (conn, next bookmark time) afresh.
    pub(super) fn rebuild(&mut self, watchers: impl Iterator<Item = (ConnId, Option<Nanos>)>) {
        self.by_time.clear();
        for (conn, at) in watchers {
            self.file(conn, at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Due filings come out (in time order), later ones stay, and a rebuild forgets the old.
    #[test]
    fn pops_what_is_due_and_keeps_the_rest() {
        let mut q = BookmarkQueue::default();
        q.file(7, Some(30));
        q.file(3, Some(10));
        q.file(5, None);
        q.file(9, Some(10));
        assert_eq!(q.pop_due(9), vec![]);
        assert_eq!(q.pop_due(10), vec![(10, 3), (10, 9)]);
        assert_eq!(q.pop_due(29), vec![]);
        q.file(1, Some(Nanos::MAX));
        assert_eq!(q.pop_due(Nanos::MAX), vec![(30, 7), (Nanos::MAX, 1)]);
        q.file(2, Some(5));
        q.rebuild([(4, Some(6)), (8, None)].into_iter());
        assert_eq!(q.pop_due(100), vec![(6, 4)]);
    }
}
