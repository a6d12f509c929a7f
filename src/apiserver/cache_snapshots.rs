//! The watch cache's snapshots (Kubernetes 1.34+, `ListFromCacheSnapshot`, beta and on):
//! `cacher/store/watch_cache_storage.go` keeps a snapshot of the store at the list RV of every
//! `Replace` and at the RV of every event (`UpdateStoreLocked` → `snapshots.Add`), drops those
//! older than the ring's oldest event whenever the ring is full (`CompactSnapshotsLocked`), and
//! clears them on `Replace`. A LIST continuation or an Exact / legacy-exact LIST at RV `n` is
//! served from the newest snapshot at or below `n` (`GetExactSnapshotLocked`,
//! `snapshots.GetLessOrEqual`), when one exists (`CanServeExactRV`).
//!
//! watchsim keeps no store copies, and no events of its own: it keeps the RV of the oldest
//! snapshot, and rebuilds the state at `n` by undoing, from the current store, the ring's events
//! newer than `n`. Every event after the oldest snapshot is still in the ring: the ring drops
//! events only while recording one into a full ring (a shrink, then the eviction), and the
//! snapshots below the ring's oldest event are compacted right after, before anything can read
//! them (`WatchCache::record`). The state is the same as upstream's; only the memory differs.
//! (Until issue 16's step 12 the log kept its own copy of every event after the oldest snapshot,
//! which wrote each event twice.)

use imbl::OrdMap;

use super::watch_cache::{CacheEvent, Obj};
use crate::proto::etcd::Key;

/// The snapshots of one watch cache, as the RV of the oldest one; the events after it are the
/// ring's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SnapshotLog {
    /// RV of the oldest snapshot; `None` before the first `Replace` (or after a compaction above
    /// every event, until the next one).
    oldest_rv: Option<i64>,
    /// `MarkConsistent(false)` by the consistency checker: no snapshots are kept or served.
    disabled: bool,
}

impl SnapshotLog {
    /// `ReplaceLocked`: every snapshot goes; the new state at `rv` is the only one.
    pub fn reset(&mut self, rv: i64) {
        self.oldest_rv = (!self.disabled).then_some(rv);
    }

    /// `MarkConsistent`: an inconsistent cache drops every snapshot and keeps none until a later
    /// check finds it consistent again.
    pub fn mark_consistent(&mut self, consistent: bool) {
        self.disabled = !consistent;
        if !consistent {
            self.oldest_rv = None;
        }
    }

    /// Whether some snapshot is older than `rv` (what `RemoveLess(rv)` would drop).
    pub fn has_below(&self, rv: i64) -> bool {
        self.oldest_rv.is_some_and(|o| o < rv)
    }

    /// `CompactSnapshotsLocked(oldest)` (`RemoveLess`): snapshots below `oldest` go. Snapshots
    /// sit at event RVs, so the oldest one kept is at the first event at or above `oldest`:
    /// `first_at_or_above(oldest)` gives that event's RV from the ring (the events recorded
    /// since the oldest snapshot, not counting one being recorded), `None` when there is none.
    pub fn remove_less(&mut self, oldest: i64, first_at_or_above: impl FnOnce(i64) -> Option<i64>) {
        if self.oldest_rv.is_some_and(|current| oldest > current) {
            self.oldest_rv = first_at_or_above(oldest);
        }
    }

    /// `snapshots.Add(rv)` after an event at `rv` was applied to the store and the ring.
    /// Once every snapshot was dropped (`RemoveLess` above them all), the event's snapshot is
    /// the new oldest one (events only come after the first `Replace`). Nothing while disabled.
    pub fn push(&mut self, rv: i64) {
        if !self.disabled && self.oldest_rv.is_none() {
            self.oldest_rv = Some(rv);
        }
    }

    /// `CanServeExactRV(rv)`: a snapshot at or below `rv` exists.
    pub fn can_serve(&self, rv: i64) -> bool {
        self.oldest_rv.is_some_and(|o| o <= rv)
    }

    /// The state at `rv` (the newest snapshot at or below it), rebuilt from `store` (the current
    /// state) by undoing the events newer than `rv`, given newest first (the ring's, backwards).
    /// The caller checks [`can_serve`](Self::can_serve).
    pub fn state_at<'a>(
        &self,
        mut store: OrdMap<Key, Obj>,
        rv: i64,
        newest_first: impl Iterator<Item = &'a CacheEvent>,
    ) -> OrdMap<Key, Obj> {
        debug_assert!(self.can_serve(rv));
        for e in newest_first.take_while(|e| e.rv > rv) {
            undo(&mut store, e);
        }
        store
    }
}

/// Undoes one event on `state`. A creation (no previous version) is removed; an update or a
/// deletion puts back the previous version.
// Simplification: an undone update restores the previous RV with the event's size (events carry
// the previous RV, not its size); see notes.md.
fn undo(state: &mut OrdMap<Key, Obj>, e: &CacheEvent) {
    if e.prev_rv == 0 {
        state.remove(&e.key);
    } else {
        state.insert(
            e.key.clone(),
            Obj {
                rv: e.prev_rv,
                bytes: e.bytes,
                labels: e.prev_labels,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::watch_cache::{EventType, WatchCache};
    use proptest::prelude::*;
    use std::collections::VecDeque;

    fn ev(kind: EventType, key: &str, rv: i64, prev_rv: i64) -> CacheEvent {
        CacheEvent {
            kind,
            key: Key::new(key),
            rv,
            bytes: 10,
            prev_rv,
            labels: 0,
            prev_labels: 0,
            time_ns: 0,
        }
    }

    fn obj(rv: i64) -> Obj {
        Obj {
            rv,
            bytes: 10,
            labels: 0,
        }
    }

    /// A log beside a ring that keeps every event (no eviction), as the unit tests need.
    #[derive(Default)]
    struct Logged {
        log: SnapshotLog,
        ring: Vec<CacheEvent>,
    }

    impl Logged {
        fn push(&mut self, e: CacheEvent) {
            let rv = e.rv;
            self.ring.push(e);
            self.log.push(rv);
        }
        fn remove_less(&mut self, oldest: i64) {
            let ring = &self.ring;
            self.log
                .remove_less(oldest, |t| ring.iter().find(|e| e.rv >= t).map(|e| e.rv));
        }
        fn reset(&mut self, rv: i64) {
            self.ring.clear();
            self.log.reset(rv);
        }
        fn state_at(&self, store: &OrdMap<Key, Obj>, rv: i64) -> OrdMap<Key, Obj> {
            self.log.state_at(store.clone(), rv, self.ring.iter().rev())
        }
    }

    /// `watch_cache_storage_test.go`: a snapshot per event from the list RV on; the state at an
    /// RV between two events is the older event's.
    #[test]
    fn state_at_an_rv_is_the_newest_snapshot_at_or_below_it() {
        let mut c = Logged::default();
        assert!(!c.log.can_serve(10), "no snapshot before the first Replace");
        c.reset(4);
        let mut store: OrdMap<Key, Obj> = OrdMap::new();
        store.insert(Key::new("/a"), obj(2));
        // 5: create /b; 6: update /a; 7: delete /b.
        store.insert(Key::new("/b"), obj(5));
        c.push(ev(EventType::Added, "/b", 5, 0));
        store.insert(Key::new("/a"), obj(6));
        c.push(ev(EventType::Modified, "/a", 6, 2));
        store.remove(&Key::new("/b"));
        c.push(ev(EventType::Deleted, "/b", 7, 5));
        assert!(!c.log.can_serve(3));
        let at4 = c.state_at(&store, 4);
        assert_eq!(at4.get(&Key::new("/a")), Some(&obj(2)));
        assert_eq!(at4.get(&Key::new("/b")), None);
        let at5 = c.state_at(&store, 5);
        assert_eq!(at5.get(&Key::new("/b")), Some(&obj(5)));
        let at6 = c.state_at(&store, 6);
        assert_eq!(at6.get(&Key::new("/a")), Some(&obj(6)));
        assert_eq!(c.state_at(&store, 100), store);
    }

    /// `store_btree.go RemoveLess` above every snapshot leaves none, and the next event's `Add`
    /// starts again; `watch_cache_storage.go MarkConsistent(false)` drops every snapshot and keeps
    /// none (not even on `Replace`) until `MarkConsistent(true)`.
    #[test]
    fn snapshots_restart_after_a_full_removal_and_stop_while_inconsistent() {
        let mut c = Logged::default();
        c.reset(4);
        c.push(ev(EventType::Added, "/a", 5, 0));
        c.remove_less(9);
        assert!(!c.log.can_serve(100));
        c.push(ev(EventType::Added, "/b", 10, 0));
        assert!(!c.log.can_serve(9));
        assert!(c.log.can_serve(10));
        c.log.mark_consistent(false);
        assert!(!c.log.can_serve(10));
        c.push(ev(EventType::Added, "/c", 11, 0));
        c.reset(12);
        assert!(!c.log.can_serve(12));
        c.log.mark_consistent(true);
        c.push(ev(EventType::Added, "/d", 13, 0));
        assert!(!c.log.can_serve(12));
        assert!(c.log.can_serve(13));
    }

    /// `RemoveLess(oldest)` keeps the snapshot at `oldest`; `Replace` drops all but its own.
    #[test]
    fn compaction_keeps_the_snapshot_at_the_oldest_ring_event() {
        let mut c = Logged::default();
        c.reset(4);
        let mut store: OrdMap<Key, Obj> = OrdMap::new();
        for rv in 5..=8 {
            store.insert(Key::new(&format!("/k{rv}")), obj(rv));
            c.push(ev(EventType::Added, &format!("/k{rv}"), rv, 0));
        }
        c.remove_less(6);
        assert!(!c.log.can_serve(5));
        assert!(c.log.can_serve(6));
        let at6 = c.state_at(&store, 6);
        let keys: Vec<&str> = at6.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["/k5", "/k6"], "events 7 and 8 undone");
        c.reset(20);
        assert!(!c.log.can_serve(19));
        assert!(c.log.can_serve(20));
    }

    /// The snapshot log as it was before step 12 (its own copy of every event after the oldest
    /// snapshot), as the reference the ring-backed log must agree with.
    #[derive(Default)]
    struct CopyingLog {
        oldest_rv: Option<i64>,
        events: VecDeque<CacheEvent>,
        disabled: bool,
    }

    impl CopyingLog {
        fn reset(&mut self, rv: i64) {
            self.oldest_rv = (!self.disabled).then_some(rv);
            self.events.clear();
        }
        fn mark_consistent(&mut self, consistent: bool) {
            self.disabled = !consistent;
            if !consistent {
                self.oldest_rv = None;
                self.events.clear();
            }
        }
        fn remove_less(&mut self, oldest: i64) {
            let Some(current) = self.oldest_rv else {
                return;
            };
            if oldest <= current {
                return;
            }
            while self.events.front().is_some_and(|e| e.rv < oldest) {
                self.events.pop_front();
            }
            self.oldest_rv = self.events.pop_front().map(|e| e.rv);
        }
        fn push(&mut self, event: CacheEvent) {
            if self.disabled {
                return;
            }
            if self.oldest_rv.is_some() {
                self.events.push_back(event);
            } else {
                self.oldest_rv = Some(event.rv);
            }
        }
        fn state_at(&self, mut store: OrdMap<Key, Obj>, rv: i64) -> Option<OrdMap<Key, Obj>> {
            if self.oldest_rv.is_none_or(|o| o > rv) {
                return None;
            }
            for e in self.events.iter().rev().take_while(|e| e.rv > rv) {
                undo(&mut store, e);
            }
            Some(store)
        }
    }

    /// One step of the property below.
    #[derive(Debug, Clone)]
    enum Op {
        /// Writes (or, if `delete` and it exists, deletes) key `key`, `dt` time units later.
        Write { key: u8, delete: bool, dt: u64 },
        /// A `Replace` with the current objects.
        Replace,
        /// etcd compaction `back` revisions below the newest.
        Compact { back: i64 },
        /// The consistency checker's verdict.
        Consistent(bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0u8..5, any::<bool>(), 0u64..25)
                .prop_map(|(key, delete, dt)| Op::Write { key, delete, dt }),
            1 => Just(Op::Replace),
            1 => (0i64..12).prop_map(|back| Op::Compact { back }),
            1 => any::<bool>().prop_map(Op::Consistent),
        ]
    }

    proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 500,
            ..crate::kernel::proptest_kept("tests/snapshot_log.proptest-regressions")
        })]

        /// A watch cache whose ring grows, shrinks and evicts serves every exact RV exactly as
        /// the copying log of before step 12 would, after every step: the ring still holds
        /// every event after the oldest snapshot.
        #[test]
        fn the_ring_backed_log_serves_what_the_copying_log_served(
            ops in proptest::collection::vec(op(), 1..120),
        ) {
            let mut cache = WatchCache::with_bounds(4, 2, 16, 10, true);
            cache.enable_snapshots();
            let mut reference = CopyingLog::default();
            cache.replace(OrdMap::new(), 1);
            reference.reset(1);
            let (mut rv, mut now) = (1i64, 0u64);
            for op in ops {
                match op {
                    Op::Write { key, delete, dt } => {
                        now += dt;
                        rv += 1;
                        let key = Key::new(&format!("/k{key}"));
                        let prev = cache.store().get(&key).copied();
                        let kind = match (prev, delete) {
                            (None, _) => EventType::Added,
                            (Some(_), true) => EventType::Deleted,
                            (Some(_), false) => EventType::Modified,
                        };
                        let event = CacheEvent {
                            kind,
                            key,
                            rv,
                            bytes: 10 + rv as u64 % 7,
                            prev_rv: prev.map_or(0, |p| p.rv),
                            labels: rv as u32 % 3,
                            prev_labels: prev.map_or(0, |p| p.labels),
                            time_ns: now,
                        };
                        cache.process_event(event.clone());
                        // The old `record`: compaction at the ring's oldest event when full,
                        // then the event's snapshot.
                        if cache.len() as u64 >= cache.capacity()
                            && let Some((oldest, _)) = cache.window()
                        {
                            reference.remove_less(oldest);
                        }
                        reference.push(event);
                    }
                    Op::Replace => {
                        let objects = cache.store().ordered();
                        cache.replace(objects, rv);
                        reference.reset(rv);
                    }
                    Op::Compact { back } => {
                        cache.compact_snapshots(rv - back);
                        reference.remove_less(rv - back);
                    }
                    Op::Consistent(ok) => {
                        cache.mark_consistent(ok);
                        reference.mark_consistent(ok);
                    }
                }
                for at in 0..=rv + 1 {
                    let want = reference.state_at(cache.store().ordered(), at);
                    prop_assert_eq!(cache.can_serve_exact(at), want.is_some(), "can serve {}", at);
                    prop_assert_eq!(cache.state_at(at), want, "state at {}", at);
                }
            }
        }
    }
}
