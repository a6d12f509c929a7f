//! The watch cache of one resource (kube-apiserver `storage/cacher/watch_cache.go`): the current
//! state (a store) plus a cyclic ring of recent events with fixed or dynamic capacity, the oldest
//! resource version a watch may start from, and Replace (re-initialisation).
//!
//! The window's rules (resize, eviction, the oldest watchable RV) are in `cache_window.rs`; this
//! module keeps the store beside it and the event type.

use imbl::OrdMap;

use super::cache_snapshots::SnapshotLog;
use super::cache_store::CacheStore;
use super::selector::LabelSetId;
use crate::kernel::prefetch::Stage;
pub use crate::proto::api::{EventType, Obj};

use super::cache_window::{Window, WindowEvent};
use super::status::Status;
use crate::kernel::Nanos;
use crate::proto::etcd::{Key, KeyRange};
use crate::scenario::WatchCacheConfig;

/// One buffered event (`watchCacheEvent`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheEvent {
    /// Type.
    pub kind: EventType,
    /// Object key.
    pub key: Key,
    /// RV of the event (for DELETED, the deletion's revision).
    pub rv: i64,
    /// Object size (for DELETED, the last state's size).
    pub bytes: u64,
    /// RV of the object version this event replaces (`PrevObject`; 0 for a creation).
    pub prev_rv: i64,
    /// Labels of the object (`ObjLabels`; for DELETED, the last state's).
    pub labels: LabelSetId,
    /// Labels of the version this event replaces (`PrevObjLabels`; 0 for a creation).
    pub prev_labels: LabelSetId,
    /// When the cache recorded it (`RecordTime`), for dynamic sizing.
    pub time_ns: Nanos,
}

/// The objects of `store` inside `scope`, found by an ordered range scan (not a full scan).
pub fn scan_scope<'a>(
    store: &'a OrdMap<Key, Obj>,
    scope: &'a KeyRange,
) -> Box<dyn Iterator<Item = (&'a Key, &'a Obj)> + 'a> {
    use std::ops::Bound::{Excluded, Unbounded};
    match scope {
        KeyRange::Single(k) => Box::new(store.get_key_value(k).into_iter()),
        KeyRange::Prefix(p) => Box::new(
            store
                .range(p.clone()..)
                .take_while(move |(k, _)| k.as_str().starts_with(p.as_str())),
        ),
        KeyRange::PrefixAfter { prefix, after } => Box::new(
            store
                .range((Excluded(after.clone()), Unbounded))
                .take_while(move |(k, _)| k.as_str().starts_with(prefix.as_str())),
        ),
    }
}

/// `defaultLowerBoundCapacity`.
pub const DEFAULT_LOWER_CAPACITY: u64 = 100;
/// `defaultUpperBoundCapacity`.
pub const DEFAULT_UPPER_CAPACITY: u64 = 100 * 1024;

/// What a watcher's filter can use, which decides its channel size (`suggestedWatchChannelSize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchIndexKind {
    /// The resource has an indexed trigger and the watch's selector uses it (kubelet pods by node).
    IndexAndTrigger,
    /// The resource has an index the watch does not use.
    IndexOnly,
    /// The resource has no index.
    NoIndex,
}

/// Per-watcher input and result channel size: `ceil(capacity / window)`, the window being the
/// history window `fresh` in seconds (about one second of history), clamped to `[10, max]`,
/// max 10 / 1000 / 100 by index kind (`watch_cache_history.go suggestedWatchChannelSize`; before
/// 1.33 the window was the constant 75 s).
pub fn suggested_watch_channel_size(capacity: u64, fresh_ns: Nanos, kind: WatchIndexKind) -> u64 {
    let max = match kind {
        WatchIndexKind::IndexAndTrigger => 10,
        WatchIndexKind::IndexOnly => 1000,
        WatchIndexKind::NoIndex => 100,
    };
    let per_second = (capacity as u128 * 1_000_000_000).div_ceil(fresh_ns.max(1) as u128);
    (per_second.min(u64::MAX as u128) as u64).clamp(10, max)
}

/// The watch cache of one resource: the store of current objects and the event window beside
/// it (`cache_window.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WatchCache {
    window: Window<CacheEvent>,
    store: CacheStore,
    store_bytes: u64,
    store_digest: crate::kernel::digest::Digest,
    resource_version: i64,
    list_resource_version: i64,
    /// The snapshots for LISTs at an exact RV (1.34+ profiles; `None` before that).
    snapshots: Option<SnapshotLog>,
}

impl WindowEvent for CacheEvent {
    fn rv(&self) -> i64 {
        self.rv
    }
    fn time_ns(&self) -> Nanos {
        self.time_ns
    }
    fn bytes(&self) -> u64 {
        self.bytes
    }
    fn erase_time(&mut self) {
        self.time_ns = 0;
    }
}

impl WatchCache {
    /// An empty cache sized per `[apiserver.watch_cache]` (mode `off` is handled by the cacher).
    pub fn new(config: &WatchCacheConfig) -> Self {
        Self::around(Window::new(config))
    }

    /// An empty cache with explicit bounds (tests use small ones, as the upstream tests do).
    pub fn with_bounds(
        capacity: u64,
        lower: u64,
        upper: u64,
        fresh_ns: Nanos,
        dynamic: bool,
    ) -> Self {
        Self::around(Window::with_bounds(
            capacity, lower, upper, fresh_ns, dynamic,
        ))
    }

    fn around(window: Window<CacheEvent>) -> Self {
        WatchCache {
            window,
            store: CacheStore::default(),
            store_bytes: 0,
            store_digest: Default::default(),
            resource_version: 0,
            list_resource_version: 0,
            snapshots: None,
        }
    }

    /// Keeps snapshots from now on (`ListFromCacheSnapshot`, Kubernetes 1.34+).
    pub fn enable_snapshots(&mut self) {
        self.snapshots.get_or_insert_with(SnapshotLog::default);
    }

    /// `CanServeExactRV`: a snapshot at or below `rv` exists.
    pub fn can_serve_exact(&self, rv: i64) -> bool {
        self.snapshots.as_ref().is_some_and(|s| s.can_serve(rv))
    }

    /// `MarkConsistent` (the 1.34+ consistency checker's verdict); no effect without snapshots.
    pub fn mark_consistent(&mut self, consistent: bool) {
        if let Some(s) = self.snapshots.as_mut() {
            s.mark_consistent(consistent);
        }
    }

    /// Whether `compact_snapshots(rev)` would drop a snapshot.
    pub fn snapshots_below(&self, rev: i64) -> bool {
        self.snapshots.as_ref().is_some_and(|s| s.has_below(rev))
    }

    /// `WatchCacheStorage.Compact`: the snapshot compactor drops the snapshots below etcd's
    /// compaction revision.
    pub fn compact_snapshots(&mut self, rev: i64) {
        if let Some(s) = self.snapshots.as_mut() {
            let window = &self.window;
            s.remove_less(rev, |t| window.first_at_or_above(t).map(|e| e.rv));
        }
    }

    /// The state at `rv` from the snapshots (`GetExactSnapshotLocked`), if one is old enough.
    pub fn state_at(&self, rv: i64) -> Option<OrdMap<Key, Obj>> {
        let snapshots = self.snapshots.as_ref()?;
        snapshots
            .can_serve(rv)
            .then(|| snapshots.state_at(self.store.ordered(), rv, self.window.newest_first()))
    }

    /// Current capacity in events.
    pub fn capacity(&self) -> u64 {
        self.window.capacity()
    }
    /// The history window (`eventFreshDuration`).
    pub fn fresh_ns(&self) -> Nanos {
        self.window.fresh_ns()
    }
    /// Largest capacity reached.
    pub fn capacity_max(&self) -> u64 {
        self.window.capacity_max()
    }
    /// Largest memory (store + ring) reached, in bytes.
    pub fn bytes_max(&self) -> u64 {
        self.window.bytes_max()
    }
    /// Absolute index of the oldest buffered event.
    pub fn start_index(&self) -> u64 {
        self.window.start_index()
    }
    /// Absolute index after the newest buffered event.
    pub fn end_index(&self) -> u64 {
        self.window.end_index()
    }
    /// Events buffered.
    pub fn len(&self) -> usize {
        self.window.len()
    }
    /// True when no event is buffered.
    pub fn is_empty(&self) -> bool {
        self.window.is_empty()
    }
    /// The cache's RV (`watchCache.resourceVersion`): last event or progress bookmark.
    pub fn resource_version(&self) -> i64 {
        self.resource_version
    }
    /// RV of the last Replace.
    pub fn list_resource_version(&self) -> i64 {
        self.list_resource_version
    }
    /// Digest of the current state.
    pub fn store_digest(&self) -> crate::kernel::digest::Digest {
        self.store_digest
    }

    /// Total object bytes of the current state.
    pub fn store_bytes(&self) -> u64 {
        self.store_bytes
    }

    /// Asks for the lines an event on `key` will first reach, at `stage`: the key's store
    /// entry, and the ring's oldest events (hints, no effect on the cache).
    #[inline]
    pub fn prefetch_for_event(&self, key: &Key, stage: Stage) {
        self.store.prefetch(key, stage);
        if stage == Stage::Table {
            self.window.prefetch_oldest();
            self.window.prefetch_next_slot();
        }
    }

    /// The current state (point reads; [`CacheStore::ordered`] for walks in key order).
    pub fn store(&self) -> &CacheStore {
        &self.store
    }
    /// RVs of the oldest and newest buffered events.
    pub fn window(&self) -> Option<(i64, i64)> {
        self.window.ends().map(|(a, b)| (a.rv, b.rv))
    }
    /// The buffered event at absolute index `i`, if still buffered.
    pub fn event_at(&self, i: u64) -> Option<&CacheEvent> {
        self.window.event_at(i)
    }

    /// `Replace`: the state from a fresh LIST at `rv`; the ring restarts empty at the same index so
    /// open intervals are invalidated, and nothing counts as evicted.
    pub fn replace(&mut self, objects: OrdMap<Key, Obj>, rv: i64) {
        self.store_bytes = objects.values().map(|o| o.bytes).sum();
        let mut d = crate::kernel::digest::Digest::default();
        for (k, o) in objects.iter() {
            d.add(k, o.rv);
        }
        self.store_digest = d;
        self.store.replace(objects);
        self.list_resource_version = rv;
        self.resource_version = rv;
        self.window.restart(self.store_bytes);
        if let Some(s) = self.snapshots.as_mut() {
            s.reset(rv);
        }
    }

    /// `UpdateResourceVersion`: an etcd progress notification moves the cache RV without events.
    pub fn update_resource_version(&mut self, rv: i64) {
        if rv > self.resource_version {
            self.resource_version = rv;
        }
    }

    /// The resize check of `resizeCacheLocked`, run before inserting an event recorded at `now`.
    /// Tests only: outside [`process_event`](Self::process_event) a shrink would drop events
    /// the snapshots still need (`cache_snapshots.rs`).
    #[cfg(test)]
    pub fn resize_at(&mut self, now: Nanos) {
        self.window.resize_at(now);
    }

    /// `processEvent` + `updateCache`: records an event (after the resize check), evicting the
    /// oldest one when the ring is full, and applies it to the store.
    pub fn process_event(&mut self, event: CacheEvent) {
        let new = (event.kind != EventType::Deleted).then_some(Obj {
            rv: event.rv,
            bytes: event.bytes,
            labels: event.labels,
        });
        let prev = self.write_store(&event.key, new);
        self.record(event, prev);
    }

    /// [`process_event`](Self::process_event) for a change whose cache event depends on the
    /// key's previous version in the store (`new` is the new version, `None` for a deletion):
    /// the store is walked once, and `build` makes the event from the previous version.
    pub fn process_change(
        &mut self,
        key: &Key,
        new: Option<Obj>,
        build: impl FnOnce(Option<Obj>) -> CacheEvent,
    ) -> CacheEvent {
        let prev = self.write_store(key, new);
        let event = build(prev);
        self.record(event.clone(), prev);
        event
    }

    /// Puts `new` under `key` (removes the key for `None`); returns the version it replaced.
    fn write_store(&mut self, key: &Key, new: Option<Obj>) -> Option<Obj> {
        match new {
            None => self.store.remove(key),
            Some(obj) => self.store.put(key, obj),
        }
    }

    /// The rest of `processEvent` once the store holds `event`'s state and `prev` is what it
    /// replaced: the store's size and digest, the RV, the ring (evicting when full) and the
    /// snapshots.
    fn record(&mut self, event: CacheEvent, prev: Option<Obj>) {
        self.window.make_room(event.time_ns);
        let key_hash = event.key.digest_hash();
        if let Some(old) = prev {
            self.store_bytes -= old.bytes;
            self.store_digest.remove_hashed(key_hash, old.rv);
        }
        if event.kind != EventType::Deleted {
            self.store_digest.add_hashed(key_hash, event.rv);
            self.store_bytes += event.bytes;
        }
        self.resource_version = self.resource_version.max(event.rv);
        let rv = event.rv;
        self.window.push(event, self.store_bytes);
        if let Some(snapshots) = self.snapshots.as_mut() {
            // `CompactSnapshotsLocked` when the ring is full, then the event's snapshot. The
            // oldest snapshot kept is at the first event at or above the ring's oldest, among
            // those before this one: the ring's oldest itself, unless it is this one.
            let window = &self.window;
            if window.len() as u64 >= window.capacity()
                && let Some((oldest, _)) = window.ends()
            {
                let kept = (window.len() > 1).then_some(oldest.rv);
                snapshots.remove_less(oldest.rv, |_| kept);
            }
            snapshots.push(rv);
        }
    }

    /// The oldest RV a watch may start after, i.e. a watch from `oldest - 1` is served.
    pub fn oldest_rv(&self) -> Option<i64> {
        self.window.oldest_rv(self.list_resource_version)
    }

    /// The absolute index of the first buffered event with RV > `rv`, or the 410 for a watch from
    /// `rv` (`getAllEventsSinceLocked`).
    pub fn index_after(&self, rv: i64) -> Result<u64, Status> {
        self.window.index_after(rv, self.list_resource_version)
    }

    /// Events with RV > `rv`, or the 410.
    pub fn events_since(&self, rv: i64) -> Result<Vec<CacheEvent>, Status> {
        let from = self.index_after(rv)?;
        Ok((from..self.end_index())
            .filter_map(|i| self.event_at(i).cloned())
            .collect())
    }

    /// The explorer's time abstraction: forgets when each event was recorded.
    pub fn erase_times(&mut self) {
        self.window.erase_times();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;

    fn key(n: &str) -> Key {
        Key::new(&format!("/pods/ns/{n}"))
    }
    fn ev(kind: EventType, name: &str, rv: i64, t: Nanos) -> CacheEvent {
        CacheEvent {
            kind,
            key: key(name),
            rv,
            bytes: 1,
            prev_rv: 0,
            labels: 0,
            prev_labels: 0,
            time_ns: t,
        }
    }
    fn rvs(evs: &[CacheEvent]) -> Vec<i64> {
        evs.iter().map(|e| e.rv).collect()
    }

    /// k8s-unit-test-expectations.md case 1 (`TestEvents`).
    #[test]
    fn boundary_without_a_completed_list() {
        let mut c = WatchCache::with_bounds(5, 5, 5, 75 * S, true);
        c.process_event(ev(EventType::Added, "pod", 3, 0));
        assert_eq!(
            c.events_since(1).unwrap_err().message,
            "too old resource version: 1 (2)"
        );
        assert_eq!(rvs(&c.events_since(2).unwrap()), [3]);
        c.process_event(ev(EventType::Modified, "pod", 4, 0));
        c.process_event(ev(EventType::Modified, "pod", 5, 0));
        assert_eq!(c.events_since(1).unwrap_err().code, 410);
        assert_eq!(rvs(&c.events_since(3).unwrap()), [4, 5]);
        for rv in 6..=9 {
            c.process_event(ev(EventType::Modified, "pod", rv, 0));
        }
        assert_eq!(
            c.events_since(3).unwrap_err().message,
            "too old resource version: 3 (4)"
        );
        assert_eq!(rvs(&c.events_since(4).unwrap()), [5, 6, 7, 8, 9]);
        c.process_event(ev(EventType::Deleted, "pod", 10, 0));
        let d = c.events_since(9).unwrap();
        assert_eq!((d.len(), d[0].kind, d[0].rv), (1, EventType::Deleted, 10));
    }

    /// Case 2 (`TestMarker`).
    #[test]
    fn boundary_right_after_replace_is_the_list_rv() {
        let mut c = WatchCache::with_bounds(3, 3, 3, 75 * S, true);
        let objs: OrdMap<Key, Obj> = [
            (
                key("pod1"),
                Obj {
                    rv: 5,
                    bytes: 1,
                    labels: 0,
                },
            ),
            (
                key("pod2"),
                Obj {
                    rv: 9,
                    bytes: 1,
                    labels: 0,
                },
            ),
        ]
        .into_iter()
        .collect();
        c.replace(objs, 9);
        assert_eq!(
            c.events_since(8).unwrap_err().message,
            "too old resource version: 8 (9)"
        );
        assert!(c.events_since(9).unwrap().is_empty());
        c.process_event(ev(EventType::Added, "pods", 12, 0));
        assert_eq!(rvs(&c.events_since(9).unwrap()), [12]);
    }

    /// Case 3 (`TestCacheIncreaseDoesNotBreakWatch`).
    #[test]
    fn eviction_moves_the_boundary_and_growing_does_not_restore_it() {
        let mut c = WatchCache::with_bounds(2, 2, 102_400, 75 * S, true);
        c.replace(OrdMap::new(), 10);
        c.process_event(ev(EventType::Added, "key1", 20, 0));
        c.process_event(ev(EventType::Added, "key2", 30, 150 * S));
        c.process_event(ev(EventType::Added, "key3", 40, 150 * S));
        c.process_event(ev(EventType::Added, "key4", 50, 151 * S));
        assert_eq!(c.capacity(), 4);
        assert_eq!(
            c.events_since(15).unwrap_err().message,
            "too old resource version: 15 (29)"
        );
    }

    fn filled(cap: u64, lower: u64, upper: u64, n: u64, delta_ns: Nanos, start: u64) -> WatchCache {
        let mut c = WatchCache::with_bounds(cap, lower, upper, 75 * S, true);
        c.window.test_fill(
            start,
            (0..n).map(|i| ev(EventType::Added, "p", i as i64 + 1, i * delta_ns)),
        );
        c
    }

    /// Case 4 (`TestDynamicCache`): every row of the table.
    #[test]
    fn dynamic_resize_rows() {
        // (cap, lower, upper, n, delta, start) -> (capacity, start) after resize at n*delta.
        let ms = |x: f64| (x * 1e9) as Nanos;
        // (cap, lower, upper, n, delta, start, want capacity, want start)
        type Row = (u64, u64, u64, u64, Nanos, u64, u64, u64);
        let rows: &[Row] = &[
            (5, 1, 102_400, 5, ms(12.5), 0, 10, 0),
            (5, 1, 8, 5, ms(12.5), 0, 8, 0),
            (5, 1, 102_400, 5, ms(18.75), 0, 5, 0),
            (5, 1, 102_400, 5, 76 * S, 0, 2, 3),
            (5, 3, 102_400, 5, 76 * S, 0, 3, 2),
            (5, 1, 102_400, 5, 76 * S, 3, 2, 6),
            (5, 3, 102_400, 5, 76 * S, 3, 3, 5),
            (8, 1, 102_400, 8, 75 * S / 9, 0, 16, 0),
            (8, 1, 10, 8, 75 * S / 9, 0, 10, 0),
            (8, 1, 102_400, 8, ms(9.375), 0, 8, 0),
            (8, 1, 102_400, 8, ms(38.5), 0, 4, 4),
            (8, 7, 102_400, 8, ms(38.5), 0, 7, 1),
            (8, 1, 102_400, 8, ms(38.5), 3, 4, 7),
            (8, 7, 102_400, 8, ms(38.5), 3, 7, 4),
        ];
        for &(cap, lower, upper, n, delta, start, want_cap, want_start) in rows {
            let mut c = filled(cap, lower, upper, n, delta, start);
            c.resize_at(n * delta);
            assert_eq!(
                (c.capacity(), c.start_index()),
                (want_cap, want_start),
                "row cap={cap} lower={lower} upper={upper} delta={delta}"
            );
        }
    }

    #[test]
    fn running_digest_equals_the_digest_of_the_store() {
        let mut c = WatchCache::with_bounds(3, 3, 3, 75 * S, true);
        c.process_event(ev(EventType::Added, "a", 2, 0));
        c.process_event(ev(EventType::Added, "b", 3, 0));
        c.process_event(ev(EventType::Modified, "a", 4, 0));
        c.process_event(ev(EventType::Deleted, "b", 5, 0));
        c.process_event(ev(EventType::Added, "c", 6, 0));
        let mut want = crate::kernel::digest::Digest::default();
        for (k, o) in c.store().ordered().iter() {
            want.add(k, o.rv);
        }
        assert_eq!(c.store_digest(), want);
        assert_eq!(want.count, 2);
    }

    /// Row 12 of the 1.31-1.37 reference: `watch_cache_history.go suggestedWatchChannelSize`
    /// divides by the history window, not a constant 75 (`TestSuggestedWatchChannelSize`: 7500
    /// events over 2m30s -> 50; with no index the cap of 100 still holds for 75000 over 150 s).
    #[test]
    fn watch_channel_size_follows_the_history_window() {
        use WatchIndexKind::*;
        assert_eq!(suggested_watch_channel_size(7500, 150 * S, IndexOnly), 50);
        assert_eq!(suggested_watch_channel_size(7500, 75 * S, IndexOnly), 100);
        assert_eq!(suggested_watch_channel_size(75000, 150 * S, NoIndex), 100);
        assert_eq!(suggested_watch_channel_size(75000, 150 * S, IndexOnly), 500);
        assert_eq!(suggested_watch_channel_size(1000, 300 * S, IndexOnly), 10);
    }

    /// Case 5 (`TestSuggestedWatchChannelSize`).
    #[test]
    fn channel_sizes() {
        use WatchIndexKind::*;
        let rows = [
            (100, [10, 10, 10]),
            (750, [10, 10, 10]),
            (7500, [10, 100, 100]),
            (75000, [10, 1000, 100]),
            (750000, [10, 1000, 100]),
        ];
        for (cap, want) in rows {
            let got = [
                suggested_watch_channel_size(cap, 75 * S, IndexAndTrigger),
                suggested_watch_channel_size(cap, 75 * S, IndexOnly),
                suggested_watch_channel_size(cap, 75 * S, NoIndex),
            ];
            assert_eq!(got, want, "capacity {cap}");
        }
    }
}
