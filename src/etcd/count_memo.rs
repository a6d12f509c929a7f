//! The count of a paged range read, carried from one page to the next (issue 16). etcd answers a
//! range with a limit with the number of keys in the whole range (`treeIndex.Revisions` visits
//! every key of it to count them), so a LIST paged through 150,000 pods visits the rest of the
//! prefix on every page: ~1.2 M key visits for the 15 pages of one consistency check
//! (`cacher` `checkConsistency`, every 5 minutes per resource and apiserver), 5-7 % of
//! `cluster-15k`'s hour. The count itself is etcd's; only the walk that finds it is saved.
//!
//! The state at a fixed revision never changes (writes only add later revisions, and reading
//! below the compact revision fails), so when a page at revision `at` returned `limit` keys ending
//! at key `k` out of `count`, the range after `k` at `at` holds exactly `count - limit` keys: the
//! next page's count, known without walking. The memo keeps that one answer (the last paged read
//! of the store); it is cleared by compaction. It is not state: empty in a clone, equal to any
//! other memo, hashed as nothing.

use std::sync::Mutex;

use crate::proto::etcd::{Key, Revision};

/// The count of the rest of one paged range (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NextPage {
    /// The range's prefix.
    pub prefix: Key,
    /// The revision read at.
    pub at: Revision,
    /// The last key the previous page returned: the next page starts after it.
    pub after: Key,
    /// Keys in the range after `after` at `at`.
    pub count: u64,
}

/// The memo (see the module doc).
#[derive(Debug, Default)]
pub(super) struct CountMemo(Mutex<Option<NextPage>>);

impl CountMemo {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<NextPage>> {
        // A panic while the lock is held leaves a whole answer or none: still usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The count of the keys after `after` in `prefix` at `at`, if the last paged read
    /// recorded it.
    pub(super) fn count_after(&self, prefix: &Key, at: Revision, after: &Key) -> Option<u64> {
        let memo = self.lock();
        let m = memo.as_ref()?;
        (m.at == at && m.prefix == *prefix && m.after == *after).then_some(m.count)
    }

    /// Records the count of the rest of a paged range.
    pub(super) fn record(&self, next: NextPage) {
        *self.lock() = Some(next);
    }

    /// Forgets the recorded count (compaction).
    pub(super) fn clear(&self) {
        *self.lock() = None;
    }
}

impl Clone for CountMemo {
    fn clone(&self) -> Self {
        CountMemo::default()
    }
}

impl PartialEq for CountMemo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for CountMemo {}

impl std::hash::Hash for CountMemo {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer is given only for the same prefix, revision and start key, until cleared; a
    /// clone starts empty and every memo compares equal.
    #[test]
    fn answers_only_the_recorded_page() {
        let memo = CountMemo::default();
        let (p, a) = (Key::new("/registry/pods/"), Key::new("/registry/pods/a"));
        assert_eq!(memo.count_after(&p, 7, &a), None);
        memo.record(NextPage {
            prefix: p.clone(),
            at: 7,
            after: a.clone(),
            count: 42,
        });
        assert_eq!(memo.count_after(&p, 7, &a), Some(42));
        assert_eq!(memo.count_after(&p, 8, &a), None);
        assert_eq!(memo.count_after(&p, 7, &Key::new("/registry/pods/b")), None);
        assert_eq!(
            memo.count_after(&Key::new("/registry/leases/"), 7, &a),
            None
        );
        assert_eq!(memo.clone().count_after(&p, 7, &a), None);
        assert!(memo == CountMemo::default());
        memo.clear();
        assert_eq!(memo.count_after(&p, 7, &a), None);
    }
}
