//! The watch cache's snapshots (Kubernetes 1.34+, `ListFromCacheSnapshot`, beta and on):
//! `cacher/store/watch_cache_storage.go` keeps a snapshot of the store at the list RV of every
//! `Replace` and at the RV of every event (`UpdateStoreLocked` → `snapshots.Add`), drops those
//! older than the ring's oldest event whenever the ring is full (`CompactSnapshotsLocked`), and
//! clears them on `Replace`. A LIST continuation or an Exact / legacy-exact LIST at RV `n` is
//! served from the newest snapshot at or below `n` (`GetExactSnapshotLocked`,
//! `snapshots.GetLessOrEqual`), when one exists (`CanServeExactRV`).
//!
//! watchsim keeps no store copies: it keeps the events since the oldest snapshot and rebuilds the
//! state at `n` by undoing, from the current store, the events newer than `n`. The state is the
//! same; only the memory differs.

use std::collections::VecDeque;

use imbl::OrdMap;

use super::watch_cache::{CacheEvent, Obj};
use crate::proto::etcd::Key;

/// The snapshots of one watch cache, as the RV of the oldest one plus the events after it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SnapshotLog {
    /// RV of the oldest snapshot; `None` before the first `Replace`.
    oldest_rv: Option<i64>,
    /// Every event after `oldest_rv`, oldest first (each is also a snapshot's RV).
    events: VecDeque<CacheEvent>,
    /// `MarkConsistent(false)` by the consistency checker: no snapshots are kept or served.
    disabled: bool,
}

impl SnapshotLog {
    /// `ReplaceLocked`: every snapshot goes; the new state at `rv` is the only one.
    pub fn reset(&mut self, rv: i64) {
        self.oldest_rv = (!self.disabled).then_some(rv);
        self.events.clear();
    }

    /// `MarkConsistent`: an inconsistent cache drops every snapshot and keeps none until a later
    /// check finds it consistent again.
    pub fn mark_consistent(&mut self, consistent: bool) {
        self.disabled = !consistent;
        if !consistent {
            self.oldest_rv = None;
            self.events.clear();
        }
    }

    /// Whether some snapshot is older than `rv` (what `RemoveLess(rv)` would drop).
    pub fn has_below(&self, rv: i64) -> bool {
        self.oldest_rv.is_some_and(|o| o < rv)
    }

    /// `CompactSnapshotsLocked(oldest)` (`RemoveLess`): snapshots below `oldest` go. Called with
    /// the ring's oldest event RV when the ring is full.
    pub fn remove_less(&mut self, oldest: i64) {
        let Some(current) = self.oldest_rv else {
            return;
        };
        if oldest <= current {
            return;
        }
        // Snapshots sit at event RVs: the oldest kept is the first event at or above `oldest`.
        while let Some(e) = self.events.front() {
            if e.rv < oldest {
                self.events.pop_front();
            } else {
                break;
            }
        }
        // The first remaining event's RV is the oldest snapshot; it needs no undoing any more.
        match self.events.pop_front() {
            Some(e) => self.oldest_rv = Some(e.rv),
            None => self.oldest_rv = None,
        }
    }

    /// `snapshots.Add(rv)` after an event was applied to the store.
    /// Once every snapshot was dropped (`RemoveLess` above them all), the event's snapshot is
    /// the new oldest one (events only come after the first `Replace`). Nothing while disabled.
    pub fn push(&mut self, event: CacheEvent) {
        if self.disabled {
            return;
        }
        if self.oldest_rv.is_some() {
            self.events.push_back(event);
        } else {
            self.oldest_rv = Some(event.rv);
        }
    }

    /// `CanServeExactRV(rv)`: a snapshot at or below `rv` exists.
    pub fn can_serve(&self, rv: i64) -> bool {
        self.oldest_rv.is_some_and(|o| o <= rv)
    }

    /// The state at `rv` (the newest snapshot at or below it), rebuilt from `store` (the current
    /// state) by undoing the newer events. The caller checks [`can_serve`](Self::can_serve).
    pub fn state_at(&self, mut store: OrdMap<Key, Obj>, rv: i64) -> OrdMap<Key, Obj> {
        for e in self.events.iter().rev().take_while(|e| e.rv > rv) {
            undo(&mut store, e);
        }
        store
    }

    /// Number of events kept (for tests and memory figures).
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True when no event is kept.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
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
    use crate::apiserver::watch_cache::EventType;

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

    /// `watch_cache_storage_test.go`: a snapshot per event from the list RV on; the state at an
    /// RV between two events is the older event's.
    #[test]
    fn state_at_an_rv_is_the_newest_snapshot_at_or_below_it() {
        let mut log = SnapshotLog::default();
        assert!(!log.can_serve(10), "no snapshot before the first Replace");
        log.reset(4);
        let mut store: OrdMap<Key, Obj> = OrdMap::new();
        store.insert(Key::new("/a"), obj(2));
        // 5: create /b; 6: update /a; 7: delete /b.
        store.insert(Key::new("/b"), obj(5));
        log.push(ev(EventType::Added, "/b", 5, 0));
        store.insert(Key::new("/a"), obj(6));
        log.push(ev(EventType::Modified, "/a", 6, 2));
        store.remove(&Key::new("/b"));
        log.push(ev(EventType::Deleted, "/b", 7, 5));
        assert!(!log.can_serve(3));
        let at4 = log.state_at(store.clone(), 4);
        assert_eq!(at4.get(&Key::new("/a")), Some(&obj(2)));
        assert_eq!(at4.get(&Key::new("/b")), None);
        let at5 = log.state_at(store.clone(), 5);
        assert_eq!(at5.get(&Key::new("/b")), Some(&obj(5)));
        let at6 = log.state_at(store.clone(), 6);
        assert_eq!(at6.get(&Key::new("/a")), Some(&obj(6)));
        assert_eq!(log.state_at(store.clone(), 100), store);
    }

    /// `store_btree.go RemoveLess` above every snapshot leaves none, and the next event's `Add`
    /// starts again; `watch_cache_storage.go MarkConsistent(false)` drops every snapshot and keeps
    /// none (not even on `Replace`) until `MarkConsistent(true)`.
    #[test]
    fn snapshots_restart_after_a_full_removal_and_stop_while_inconsistent() {
        let mut log = SnapshotLog::default();
        log.reset(4);
        log.push(ev(EventType::Added, "/a", 5, 0));
        log.remove_less(9);
        assert!(!log.can_serve(100));
        log.push(ev(EventType::Added, "/b", 10, 0));
        assert!(!log.can_serve(9));
        assert!(log.can_serve(10));
        log.mark_consistent(false);
        assert!(!log.can_serve(10));
        log.push(ev(EventType::Added, "/c", 11, 0));
        log.reset(12);
        assert!(!log.can_serve(12));
        log.mark_consistent(true);
        log.push(ev(EventType::Added, "/d", 13, 0));
        assert!(!log.can_serve(12));
        assert!(log.can_serve(13));
    }

    /// `RemoveLess(oldest)` keeps the snapshot at `oldest`; `Replace` drops all but its own.
    #[test]
    fn compaction_keeps_the_snapshot_at_the_oldest_ring_event() {
        let mut log = SnapshotLog::default();
        log.reset(4);
        for rv in 5..=8 {
            log.push(ev(EventType::Added, &format!("/k{rv}"), rv, 0));
        }
        log.remove_less(6);
        assert!(!log.can_serve(5));
        assert!(log.can_serve(6));
        assert_eq!(log.len(), 2, "events 7 and 8 remain to undo");
        log.reset(20);
        assert!(!log.can_serve(19));
        assert!(log.can_serve(20));
        assert!(log.is_empty());
    }
}
