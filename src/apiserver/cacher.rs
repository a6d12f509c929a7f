//! One resource's Cacher in one kube-apiserver (`storage/cacher/cacher.go`,
//! `cache_watcher.go`, `watch_cache_interval.go`): the watch cache fed by one etcd watch, the
//! registered client watchers, event dispatch with per-watcher buffers and the shared time
//! budget, periodic bookmarks, and termination on re-initialisation.

use imbl::{OrdMap, Vector};

use super::api::{ApiWatchEvent, ReadRate, ResourceId};
use super::budget::TimeBudget;
use super::cache_shadow::Shadows;
use super::selector::{Field, Selector};
use super::status::Status;
use super::watch_cache::{
    CacheEvent, EventType, WatchCache, WatchIndexKind, suggested_watch_channel_size,
};
use crate::kernel::sorted_map::SortedMap;
use crate::kernel::{Nanos, RngStream};
use crate::proto::Out;
use crate::proto::etcd::{Key, KeyRange};
use crate::proto::{CacherTimer, Msg};
use crate::proto::{ConnId, Dir};
use crate::scenario::Mutants;

mod bookmark_queue;
mod dispatch;
mod initial_state;
mod prefix_sets;
mod run_journal;
mod watcher_table;
pub use dispatch::{bookmark_bucket_start, next_bookmark_time};
use watcher_table::{CacheWatcher, Replay, WatcherBody, WatcherTable};

/// `defaultBookmarkFrequency`.
pub const BOOKMARK_FREQUENCY_NS: Nanos = 60_000_000_000;
/// Bookmarks are due this long before a watch's deadline.
pub const BOOKMARK_BEFORE_DEADLINE_NS: Nanos = 2_000_000_000;
/// The watch-cache interval's buffer (`bufferSize`): events copied from the ring at a time.
pub const INTERVAL_BUFFER: u64 = 100;

/// What a new watcher is sent before live events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Initial {
    /// The whole current state as ADDED (RV=0 / unset, or sendInitialEvents=true), then, if
    /// `end_bookmark`, a BOOKMARK annotated `k8s.io/initial-events-end`.
    Snapshot {
        /// Send the annotated end bookmark.
        end_bookmark: bool,
    },
    /// The ring's events after this RV (410 if it is too old).
    Since(i64),
    /// Nothing: start at the cache's current RV.
    Now,
}

/// Watchers indexed by the key prefix they watch, so an event is matched against the few
/// prefixes of its own key instead of every watcher (the cacher's trigger index: kubelets by
/// node, watchers by namespace).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct WatcherIndex {
    by_prefix: prefix_sets::PrefixSets<SortedConns>,
    /// How many prefixes of `by_prefix` have each length: an event's key is looked up only at
    /// the lengths some watcher's prefix has (two or three in practice). A sorted vector: an
    /// `imbl::OrdMap`'s walk set up a cursor for every event (3 % of `cluster-15k`, issue 16).
    prefix_lens: SortedMap<usize, u32>,
    other: SortedConns,
}

/// A set of connections as a sorted `Vec` (ids only grow, so an insert is usually a push): a
/// walk over it reads one contiguous block. A removal only marks its entry with [`GONE`]
/// (shifting a set of thousands of watchers, the kube-proxies' endpointslices, on every watch
/// that ends was a copy of up to a hundred kilobytes); the set is compacted once half of it is
/// marked. Compared, hashed and printed as the ordered set of the connections present
/// (`imbl::OrdSet` hashes each element in order; marks are where the set happens to keep things,
/// not state), so explorer states compare and hash as before.
#[derive(Clone, Default)]
struct SortedConns {
    entries: Vec<ConnId>,
    /// Entries marked [`GONE`].
    gone: usize,
    /// The run journal of this set's fast watchers (`cacher/run_journal.rs`), once a dispatch
    /// pass opened one: derived data, like the marks.
    journal: run_journal::JournalHold,
}

/// The mark of a removed entry of a [`SortedConns`]: its connection with the top bit set, so
/// the entries stay sorted by connection (no connection id is this large).
const GONE: ConnId = 1 << 63;

impl SortedConns {
    /// The index of `conn`'s entry, marked or not.
    fn find(&self, conn: ConnId) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&conn, |&e| e & !GONE)
    }

    fn insert(&mut self, conn: ConnId) {
        debug_assert!(
            conn < GONE,
            "connection id {conn} collides with the removal mark"
        );
        match self.entries.last() {
            Some(&last) if last & !GONE >= conn => match self.find(conn) {
                Ok(i) => {
                    if self.entries[i] & GONE != 0 {
                        self.entries[i] = conn;
                        self.gone -= 1;
                    }
                }
                Err(i) => self.entries.insert(i, conn),
            },
            _ => self.entries.push(conn),
        }
    }

    fn remove(&mut self, conn: ConnId) {
        if let Ok(i) = self.find(conn)
            && self.entries[i] & GONE == 0
        {
            self.entries[i] |= GONE;
            self.gone += 1;
            if 2 * self.gone > self.entries.len() {
                self.entries.retain(|&e| e & GONE == 0);
                self.gone = 0;
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.entries.len() == self.gone
    }

    /// The connections present, in order.
    fn conns(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.entries.iter().copied().filter(|&e| e & GONE == 0)
    }
}

impl PartialEq for SortedConns {
    fn eq(&self, other: &Self) -> bool {
        self.entries.len() - self.gone == other.entries.len() - other.gone
            && self.conns().eq(other.conns())
    }
}

impl Eq for SortedConns {}

impl std::hash::Hash for SortedConns {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        for c in self.conns() {
            c.hash(h);
        }
    }
}

impl std::fmt::Debug for SortedConns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SortedConns")
            .field(&self.conns().collect::<Vec<_>>())
            .finish()
    }
}

impl FromIterator<ConnId> for SortedConns {
    fn from_iter<I: IntoIterator<Item = ConnId>>(iter: I) -> Self {
        let mut v: Vec<ConnId> = iter.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        SortedConns {
            entries: v,
            gone: 0,
            journal: Default::default(),
        }
    }
}

/// A watcher an event may reach: its connection, and whether its scope is already known to
/// contain the event's key (a prefix scope found by the key's own prefix).
type Candidate = (ConnId, bool);

/// The watchers an event may reach, in connection order: one place of the index read where it
/// is (its entries, marked ones included, all with the same knowledge of scope), or a merged
/// list. A prefix's set (`Prefix`: every scope contains the key) can keep a run journal; the
/// others' scopes (`Others`) must be checked.
#[derive(Clone, Copy)]
enum CandidateRun<'a> {
    Others(&'a [ConnId]),
    Prefix(&'a SortedConns),
    Merged(&'a [Candidate]),
}

impl CandidateRun<'_> {
    fn len(&self) -> usize {
        match self {
            CandidateRun::Others(entries) => entries.len(),
            CandidateRun::Prefix(set) => set.entries.len(),
            CandidateRun::Merged(list) => list.len(),
        }
    }

    /// Candidate `n`: its connection (with the [`GONE`] mark if it was removed) and whether its
    /// scope is known to contain the key (the dispatch pass reads runs by kind, `dispatch.rs`).
    #[cfg(test)]
    fn get(&self, n: usize) -> Option<(ConnId, bool)> {
        match self {
            CandidateRun::Others(entries) => entries.get(n).map(|&c| (c, false)),
            CandidateRun::Prefix(set) => set.entries.get(n).map(|&c| (c, true)),
            CandidateRun::Merged(list) => list.get(n).copied(),
        }
    }
}

impl WatcherIndex {
    fn add(&mut self, conn: ConnId, scope: &KeyRange) {
        match scope {
            KeyRange::Prefix(p) => {
                let set = self.by_prefix.get_or_default(p);
                if set.is_empty() {
                    match self.prefix_lens.get_mut(&p.len()) {
                        Some(n) => *n += 1,
                        None => {
                            self.prefix_lens.insert(p.len(), 1);
                        }
                    }
                }
                set.insert(conn);
            }
            _ => {
                self.other.insert(conn);
            }
        }
    }

    fn remove(&mut self, conn: ConnId, scope: &KeyRange) {
        match scope {
            KeyRange::Prefix(p) => {
                let empty = match self.by_prefix.get_mut(p) {
                    Some(set) => {
                        set.remove(conn);
                        set.is_empty()
                    }
                    None => false,
                };
                if empty {
                    self.by_prefix.remove(p);
                    if let Some(n) = self.prefix_lens.get_mut(&p.len()) {
                        *n -= 1;
                        if *n == 0 {
                            self.prefix_lens.remove(&p.len());
                        }
                    }
                }
            }
            _ => {
                self.other.remove(conn);
            }
        }
    }

    /// The watchers whose scope may contain `key` when they all come from one place of the
    /// index (the common case: every kube-proxy in the one cluster-wide set): that place's
    /// entries in connection order, read where they are (marked ones included, to be skipped:
    /// see [`GONE`]), as a prefix's set (every scope contains `key`) or the set of the others
    /// (whose scopes must be checked). `None` when they come
    /// from several places ([`WatcherIndex::candidates`] merges them). Issue 16: copying a
    /// set of thousands into a list for every event wrote that many entries again.
    fn single_source(&self, key: &Key) -> Option<CandidateRun<'_>> {
        let mut found =
            (!self.other.is_empty()).then_some(CandidateRun::Others(&self.other.entries));
        let text = key.as_str();
        for (&len, _) in self.prefix_lens.iter() {
            if len > text.len() {
                break;
            }
            if let Some(set) = text.get(..len).and_then(|p| self.by_prefix.get(p)) {
                if found.is_some() {
                    return None;
                }
                found = Some(CandidateRun::Prefix(set));
            }
        }
        Some(found.unwrap_or(CandidateRun::Others(&[])))
    }

    /// Fills `into` with the watchers whose scope may contain `key`, in connection order (each
    /// connection is in one place of the index, so none twice).
    fn candidates(&self, key: &Key, into: &mut Vec<Candidate>) {
        into.clear();
        if self.by_prefix.is_empty() && self.other.is_empty() {
            return;
        }
        into.extend(self.other.conns().map(|c| (c, false)));
        let mut sources = usize::from(!self.other.is_empty());
        let text = key.as_str();
        // Every watched prefix of the key, whatever its last byte (etcd prefix semantics).
        for (&len, _) in self.prefix_lens.iter() {
            if len > text.len() {
                break;
            }
            if let Some(set) = text.get(..len).and_then(|p| self.by_prefix.get(p)) {
                into.extend(set.conns().map(|c| (c, true)));
                sources += 1;
            }
        }
        if sources > 1 {
            into.sort_unstable_by_key(|&(c, _)| c);
        }
    }
}

/// Counters a cacher contributes to its apiserver's report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CacherCounters {
    /// Bookmarks sent to clients.
    pub bookmarks_sent: u64,
    /// Watchers closed because they were too slow.
    pub watchers_closed_slow: u64,
    /// Watches refused with 410.
    pub too_old_errors: u64,
    /// Watch intervals invalidated under a slow watcher.
    pub intervals_invalidated: u64,
    /// Events sent to clients.
    pub events_sent: u64,
    /// Largest cache capacity reached.
    pub capacity_max: u64,
    /// Largest cache size in bytes.
    pub bytes_max: u64,
}

impl CacherCounters {
    /// Adds another cacher's counters (totals) and maxima.
    pub fn absorb(&mut self, o: &CacherCounters) {
        self.bookmarks_sent += o.bookmarks_sent;
        self.watchers_closed_slow += o.watchers_closed_slow;
        self.too_old_errors += o.too_old_errors;
        self.intervals_invalidated += o.intervals_invalidated;
        self.events_sent += o.events_sent;
        self.capacity_max = self.capacity_max.max(o.capacity_max);
        self.bytes_max = self.bytes_max.max(o.bytes_max);
    }
}

/// One resource's cacher.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cacher {
    /// The apiserver this cacher belongs to.
    pub server: u32,
    /// The scenario's `[mutants]` (deliberate model bugs for the broken-model tests; all off).
    /// Configuration, the same in every state: left out of the state's hash.
    pub mutants: crate::kernel::Unhashed<Mutants>,
    /// Resource.
    pub resource: ResourceId,
    /// `/registry/<resource>/`.
    pub prefix: Key,
    /// The watch cache.
    pub cache: WatchCache,
    /// Ready to serve (after its first Replace).
    pub ready: bool,
    /// Ready generation (bumped on every not-ready -> ready transition).
    pub generation: u64,
    /// RV of the last event or storage bookmark the dispatcher processed.
    pub last_processed_rv: i64,
    /// A re-initialisation is scheduled.
    pub restart_armed: bool,
    /// When the cacher last became ready or not ready (creation counts): `ready.go
    /// lastStateChangeTime`, whose age sets the Retry-After of the 429 while not ready.
    pub state_changed_ns: Nanos,
    /// When this cacher was created: its bookmark buckets count whole seconds from here
    /// (`watcherBookmarkTimeBuckets.createTime`).
    created_ns: Nanos,
    /// A watcher sent the current state starts its bookmark floor at the state's RV
    /// (`cache_watcher.go processInterval`, `cacheInterval.resourceVersion`, 1.32+); before, at
    /// the RV its initial events carry (the state's RV, `newCacheIntervalFromStore`), or at the
    /// requested RV (0) when the state is empty, so its first periodic bookmark repeats the
    /// state's RV.
    pub floor_at_snapshot_rv: bool,
    /// 1.27 (`cacher.go dispatchEvents` before v0.31): the dispatcher's last processed RV starts
    /// at 0 and the cacher's LIST does not set it; a bookmark tick while it is 0 pops the due
    /// watchers and never files them again, so they get no bookmark ever.
    pub bookmarks_lost_before_first_event: bool,
    /// 1.31 (`watch_cache.go` v0.31 computes `matchesSingle` without `Recursive`): a
    /// whole-resource watch with an exact `metadata.name` field selector looks its prefix up as
    /// an object key and gets no initial state.
    pub exact_name_watch_gets_no_state: bool,
    watchers: WatcherTable,
    index: WatcherIndex,
    /// The watchers by next bookmark time, for the bookmark tick (derived data: left out of the
    /// state's hash).
    bookmark_queue: crate::kernel::Unhashed<bookmark_queue::BookmarkQueue>,
    budget: TimeBudget,
    bookmark_tick_armed: bool,
    bookmark_interval_ns: Nanos,
    index_kind: WatchIndexKind,
    /// Counters.
    pub counters: CacherCounters,
    /// Other cache configurations followed along this run by a sweep (`cache_shadow.rs`).
    pub shadows: Shadows,
    /// The last initial state sent, for the next watcher that starts on the same state
    /// (derived data: left out of the state's hash).
    initial_memo: crate::kernel::Unhashed<Option<initial_state::InitialStateMemo>>,
    /// Scratch space for an event's candidate watchers, reused from event to event (derived
    /// data: left out of the state's hash).
    candidates: crate::kernel::Unhashed<Vec<Candidate>>,
    /// A prefix's set of at least this many watchers keeps a run journal
    /// (`cacher/run_journal.rs`; [`JOURNAL_MIN_WATCHERS`]). Configuration of the simulator,
    /// not of the model: left out of the state's hash.
    journal_min_watchers: crate::kernel::Unhashed<usize>,
}

/// The smallest prefix set that keeps a run journal: below it, reading every watcher's lane
/// costs about what the journal's bookkeeping would.
pub const JOURNAL_MIN_WATCHERS: usize = 64;

fn send(out: &mut Out<'_>, conn: ConnId, ev: ApiWatchEvent) {
    out.send(conn, Dir::ToClient, Msg::ApiWatch(ev));
}

/// What a watcher with `selector` sees of a buffered event (`Selector::convert`).
fn selected_kind(selector: &Selector, e: &CacheEvent) -> Option<EventType> {
    let prev = (e.prev_rv > 0).then_some(e.prev_labels);
    selector.convert(&e.key, e.kind, e.labels, prev)
}

fn object_event(e: &CacheEvent) -> ApiWatchEvent {
    object_event_as(e, e.kind)
}

/// The watch event of `e` with the type a watcher's selector turned it into.
fn object_event_as(e: &CacheEvent, kind: EventType) -> ApiWatchEvent {
    ApiWatchEvent::Object {
        kind,
        key: e.key.clone(),
        rv: e.rv,
        bytes: e.bytes,
        prev_rv: e.prev_rv,
    }
}

impl Cacher {
    /// A cacher that has not listed yet.
    pub fn new(
        server: u32,
        resource: ResourceId,
        prefix: Key,
        cache: WatchCache,
        now: Nanos,
        bookmark_interval_ns: Nanos,
    ) -> Self {
        Cacher {
            server,
            mutants: crate::kernel::Unhashed(Mutants::default()),
            resource,
            prefix,
            cache,
            ready: false,
            generation: 0,
            last_processed_rv: 0,
            restart_armed: false,
            state_changed_ns: now,
            created_ns: now,
            floor_at_snapshot_rv: true,
            bookmarks_lost_before_first_event: false,
            exact_name_watch_gets_no_state: false,
            watchers: WatcherTable::default(),
            index: WatcherIndex::default(),
            bookmark_queue: Default::default(),
            budget: TimeBudget::new(now),
            bookmark_tick_armed: false,
            bookmark_interval_ns,
            index_kind: WatchIndexKind::IndexOnly,
            counters: CacherCounters::default(),
            shadows: Shadows::default(),
            initial_memo: Default::default(),
            candidates: Default::default(),
            journal_min_watchers: crate::kernel::Unhashed(JOURNAL_MIN_WATCHERS),
        }
    }

    /// This cacher's counters including its cache's capacity and size maxima.
    pub fn totals(&self) -> CacherCounters {
        CacherCounters {
            capacity_max: self.cache.capacity_max(),
            bytes_max: self.cache.bytes_max(),
            ..self.counters.clone()
        }
    }

    /// Sets the smallest prefix set that keeps a run journal (`usize::MAX`: none does). The
    /// model's behaviour is the same whatever it is; the equivalence tests set it.
    pub fn set_journal_min_watchers(&mut self, min: usize) {
        *self.journal_min_watchers = min;
    }

    /// Number of registered watchers.
    pub fn watcher_count(&self) -> usize {
        self.watchers.len()
    }

    /// True if `conn` is one of this cacher's watchers.
    pub fn has_watcher(&self, conn: ConnId) -> bool {
        self.watchers.contains_key(conn)
    }

    /// `Replace` after the cacher's LIST from etcd: the cache restarts at `rv`; ready again.
    pub fn replace(&mut self, objects: OrdMap<Key, super::watch_cache::Obj>, rv: i64, now: Nanos) {
        self.cache.replace(objects, rv);
        self.shadows.restart(self.cache.store_bytes());
        if !self.bookmarks_lost_before_first_event {
            self.last_processed_rv = rv;
        }
        if !self.ready {
            self.ready = true;
            self.generation += 1;
            self.state_changed_ns = now;
        }
    }

    /// The cacher's etcd watch failed: not ready until the next successful list.
    pub fn set_not_ready(&mut self, now: Nanos) {
        if self.ready {
            self.ready = false;
            self.state_changed_ns = now;
        }
    }

    /// `terminateAllWatchers`: every client watch ends with a clean close (no error event).
    pub fn terminate_all(&mut self, out: &mut Out<'_>) -> Vec<ConnId> {
        let conns: Vec<ConnId> = self.watchers.sorted_ids();
        for &c in &conns {
            send(out, c, ApiWatchEvent::Closed);
        }
        self.watchers = WatcherTable::default();
        self.index = WatcherIndex::default();
        self.invalidate_bookmark_queue();
        conns
    }

    fn remove_watcher(&mut self, conn: ConnId) -> bool {
        match self.watchers.remove(conn) {
            Some(w) => {
                self.index.remove(conn, &w.scope);
                true
            }
            None => false,
        }
    }

    /// Removes a watcher whose client went away.
    pub fn forget(&mut self, conn: ConnId) -> bool {
        self.remove_watcher(conn)
    }

    /// Registers a watcher on `conn` and sends its initial events. Returns false if the watch
    /// ended at once (410 sent as an ERROR event).
    #[allow(clippy::too_many_arguments)]
    pub fn add_watcher(
        &mut self,
        now: Nanos,
        conn: ConnId,
        scope: KeyRange,
        selector: Selector,
        bookmarks: bool,
        deadline_ns: Nanos,
        read_rate: ReadRate,
        initial: Initial,
        out: &mut Out<'_>,
        rng: &mut RngStream,
    ) -> bool {
        let chan = suggested_watch_channel_size(
            self.cache.capacity(),
            self.cache.fresh_ns(),
            self.index_kind,
        );
        let shadow_chans = (0..self.shadows.len())
            .map(|m| {
                self.shadows.get(m).map_or(0, |s| {
                    suggested_watch_channel_size(s.capacity(), s.fresh_ns(), self.index_kind)
                })
            })
            .collect();
        let client = out.client_of(conn).unwrap_or(crate::proto::Actor::Faults);
        let mut w = CacheWatcher {
            rv_sent: 0,
            body: WatcherBody {
                client,
                scope,
                selector,
                bookmark_floor: 0,
                bookmarks,
                deadline_ns,
                next_bookmark_ns: None,
                read_rate,
                buffered: 0,
                drained_at_ns: now,
                capacity: 2 * chan + 1,
                chan,
                shadow_chans,
                replay: None,
                held: Vector::new(),
            },
        };
        match initial {
            Initial::Snapshot { end_bookmark } => {
                self.send_initial_state(conn, &mut w, end_bookmark, out);
            }
            Initial::Since(rv) => {
                if !self.replay_since(now, conn, &mut w, rv, read_rate, out) {
                    return false;
                }
            }
            Initial::Now => {
                w.rv_sent = self.cache.resource_version();
                w.bookmark_floor = w.rv_sent;
                out.notice(crate::proto::Notice::WatchStarted {
                    conn,
                    start_rv: w.rv_sent,
                    initial_events: 0,
                });
            }
        }
        if bookmarks {
            w.next_bookmark_ns = next_bookmark_time(now, deadline_ns, self.bookmark_interval_ns)
                .map(|t| bookmark_bucket_start(self.created_ns, t));
        }
        if deadline_ns > now && deadline_ns < Nanos::MAX {
            out.timer(deadline_ns, self.timer(CacherTimer::WatchDeadline(conn)));
        }
        self.index.add(conn, &w.scope);
        self.bookmark_queue.file(conn, w.next_bookmark_ns);
        self.watchers.insert(conn, w);
        self.arm_bookmark_tick(now, out, rng);
        true
    }

    /// A snapshot start (RV "0" / unset, or `sendInitialEvents=true`): the state in scope as
    /// ADDED events at the cache's RV, then the `initial-events-end` bookmark if asked
    /// (`newCacheIntervalFromStore`, `cacheWatcher.processInterval`).
    fn send_initial_state(
        &mut self,
        conn: ConnId,
        w: &mut CacheWatcher,
        end_bookmark: bool,
        out: &mut Out<'_>,
    ) {
        let rv = self.cache.resource_version();
        let mut n = 0;
        // The state the interval is built from: the whole store (one object for a
        // single-key watch), before the watcher's filter.
        let state_empty = match &w.scope {
            KeyRange::Single(k) => self.cache.store().get(k).is_none(),
            _ => self.cache.store().is_empty(),
        };
        let no_state = self.exact_name_watch_gets_no_state
            && !matches!(w.scope, KeyRange::Single(_))
            && w.selector.requires_exact(Field::Name).is_some();
        if !no_state {
            n = self.send_state(conn, w, out);
        }
        self.counters.events_sent += n;
        w.buffered = n;
        w.rv_sent = rv;
        // Initial events carry the interval's RV (`newCacheIntervalFromStore`), so before
        // 1.32 only an empty state leaves the floor at the requested RV (0 here): the
        // state before the watcher's filter (`processInterval` sees every event of the
        // interval), so a namespace or selector that matches nothing still raises it.
        let state_seen = !state_empty && !no_state;
        w.bookmark_floor = if self.floor_at_snapshot_rv || state_seen {
            rv
        } else {
            0
        };
        if self.mutants.cacher_duplicate_after_snapshot {
            self.duplicate_after_snapshot(conn, w, out);
        }
        // check: the invariant checker learns where the initial events end.
        out.notice(crate::proto::Notice::WatchStarted {
            conn,
            start_rv: rv,
            initial_events: n,
        });
        if end_bookmark {
            send(
                out,
                conn,
                ApiWatchEvent::Bookmark {
                    rv,
                    initial_events_end: true,
                },
            );
            self.counters.bookmarks_sent += 1;
        }
    }

    /// The objects in the watcher's scope that its selector matches, as ADDED events at their
    /// own RVs, in one message when there are several ([`Msg::ApiWatchBatch`]); returns how
    /// many were sent.
    fn send_state(&mut self, conn: ConnId, w: &CacheWatcher, out: &mut Out<'_>) -> u64 {
        let events = initial_state::initial_events(
            &mut self.initial_memo,
            self.cache.store(),
            &w.scope,
            &w.selector,
        );
        if let Some(msg) = initial_state::initial_message(&events) {
            out.send(conn, Dir::ToClient, msg);
        }
        events.events().len() as u64
    }

    /// Mutant (Kubernetes PR #73845): the start RV stays at the requested one, and the event
    /// still queued for dispatch (the newest in the ring) goes out again.
    fn duplicate_after_snapshot(&self, conn: ConnId, w: &mut CacheWatcher, out: &mut Out<'_>) {
        w.rv_sent = 0;
        if let Some(e) = self.cache.window().and_then(|_| {
            self.cache
                .event_at(self.cache.end_index().saturating_sub(1))
        }) && w.scope.contains(&e.key)
        {
            send(out, conn, object_event(e));
            w.rv_sent = e.rv;
            w.buffered += 1;
        }
    }

    /// A start from `rv`: the ring's events after it (a slow reader gets them
    /// `INTERVAL_BUFFER` at a time), or the 410 when `rv` is older than the window; false when
    /// refused (`getAllEventsSinceLocked`, `watch_cache_interval.go`).
    fn replay_since(
        &mut self,
        now: Nanos,
        conn: ConnId,
        w: &mut CacheWatcher,
        rv: i64,
        read_rate: ReadRate,
        out: &mut Out<'_>,
    ) -> bool {
        match self.start_index_after(rv) {
            Err(status) => {
                // check: a refused watch is judged against the window it was refused from.
                out.notice(crate::proto::Notice::WatchRefused {
                    server: self.server,
                    resource: self.resource,
                    rv,
                    oldest: self.cache.oldest_rv(),
                });
                self.counters.too_old_errors += 1;
                send(out, conn, ApiWatchEvent::Error(status));
                send(out, conn, ApiWatchEvent::Closed);
                return false;
            }
            Ok(from) => {
                out.notice(crate::proto::Notice::WatchStarted {
                    conn,
                    start_rv: rv,
                    initial_events: 0,
                });
                w.rv_sent = rv;
                let end = self.cache.end_index();
                // The interval's events all count, whatever the watcher's scope.
                w.bookmark_floor = match end.checked_sub(1).filter(|last| *last >= from) {
                    Some(last) => self.cache.event_at(last).map_or(rv, |e| e.rv.max(rv)),
                    None => rv,
                };
                let slow = !matches!(read_rate, ReadRate::Instant);
                let first_end = if slow {
                    end.min(from + INTERVAL_BUFFER)
                } else {
                    end
                };
                self.send_range(conn, w, from, first_end, out);
                if first_end < end {
                    w.replay = Some(Replay {
                        next_index: first_end,
                        end_index: end,
                    });
                    let wait = w.time_to_free(w.buffered).unwrap_or(Nanos::MAX / 4);
                    out.timer(now + wait, self.timer(CacherTimer::IntervalRefill(conn)));
                }
            }
        }
        true
    }

    /// Where a watch from `rv` starts in the ring, or its 410; followed configurations must
    /// answer the same (the status names the oldest RV).
    fn start_index_after(&mut self, rv: i64) -> Result<u64, Status> {
        let answer = self.cache.index_after(rv).and_then(|from| {
            // Mutant `cacher_window_off_by_one` (Kubernetes PR #68065): compared with the
            // oldest buffered RV itself, so a watch from exactly oldest - 1 is refused.
            match self.cache.oldest_rv() {
                Some(oldest) if self.mutants.cacher_window_off_by_one && rv < oldest => {
                    Err(Status::too_old(rv, oldest))
                }
                _ => Ok(from),
            }
        });
        let list_rv = self.cache.list_resource_version();
        self.shadows
            .check(&answer, |_, s| s.index_after(rv, list_rv));
        answer
    }

    fn send_range(
        &mut self,
        conn: ConnId,
        w: &mut CacheWatcher,
        from: u64,
        to: u64,
        out: &mut Out<'_>,
    ) {
        // The ring is contiguous and every configuration has seen the same events, so the
        // events of [from, to) still buffered are those from the first one still buffered.
        let first_buffered = self.cache.start_index().clamp(from, to.max(from));
        self.shadows.check(&first_buffered, |_, s| {
            s.start_index().clamp(from, to.max(from))
        });
        for i in from..to {
            if let Some(e) = self.cache.event_at(i)
                && w.scope.contains(&e.key)
                && e.rv > w.rv_sent
                && let Some(kind) = selected_kind(&w.selector, e)
            {
                send(out, conn, object_event_as(e, kind));
                w.rv_sent = e.rv;
                w.buffered += 1;
                self.counters.events_sent += 1;
            }
        }
    }

    fn timer(&self, t: CacherTimer) -> crate::proto::Timer {
        crate::proto::Timer::Cacher(self.server, self.resource, t)
    }

    /// A watch request that can only fail (used for errors decided before registration).
    pub fn refuse(out: &mut Out<'_>, conn: ConnId, status: Status) {
        send(out, conn, ApiWatchEvent::Error(status));
        send(out, conn, ApiWatchEvent::Closed);
    }
}

impl Cacher {
    /// The explorer's time abstraction: forgets absolute deadlines, bookmark times, drain times,
    /// the budget's refill time and the ring's record times.
    pub fn erase_times(&mut self) {
        self.state_changed_ns = 0;
        self.created_ns = 0;
        self.cache.erase_times();
        self.budget.erase_times();
        self.watchers.change_every_body(|w| {
            w.deadline_ns = 0;
            w.next_bookmark_ns = w.next_bookmark_ns.map(|_| 0);
            w.drained_at_ns = 0;
        });
        self.invalidate_bookmark_queue();
    }

    /// The bookmark queue must be rebuilt from the watchers (they were replaced at once).
    fn invalidate_bookmark_queue(&mut self) {
        self.bookmark_queue.invalidate();
    }
}

impl WatcherIndex {
    fn relabel(&mut self, r: &crate::proto::Relabel) {
        self.by_prefix = self
            .by_prefix
            .drain_ordered()
            .into_iter()
            .map(|(k, set)| (k, set.conns().map(|c| r.conn(c)).collect::<SortedConns>()))
            .collect();
        self.other = self.other.conns().map(|c| r.conn(c)).collect();
    }
}

impl Cacher {
    /// Applies the explorer's symmetry renaming to the watchers (keyed by client connection).
    pub fn relabel(&mut self, r: &crate::proto::Relabel) {
        self.watchers = std::mem::take(&mut self.watchers)
            .into_sorted()
            .into_iter()
            .map(|(conn, mut w)| {
                w.client = r.actor(w.client);
                (r.conn(conn), w)
            })
            .collect();
        self.index.relabel(r);
        self.invalidate_bookmark_queue();
    }
}

#[cfg(test)]
mod journal_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::std_hash_of as hash_of;

    fn set(conns: &[ConnId]) -> SortedConns {
        let mut s = SortedConns::default();
        for &c in conns {
            s.insert(c);
        }
        s
    }

    /// The connections of one candidate run, marked ones skipped, with their scope knowledge.
    fn present(run: CandidateRun<'_>) -> Vec<Candidate> {
        (0..run.len())
            .filter_map(|n| run.get(n))
            .filter(|&(c, _)| c & GONE == 0)
            .collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            ..crate::kernel::proptest_kept("tests/watcher_index.proptest-regressions")
        })]

        /// Whatever watchers come and go (prefix scopes of several lengths, other scopes), an
        /// event's candidates read in place from one place of the index are the merged list's,
        /// and the index reads in place exactly when they come from at most one place.
        #[test]
        fn a_single_source_run_is_the_merged_candidates(
            ops in proptest::collection::vec((0u64..40, 0usize..5, proptest::bool::ANY), 0..120),
            key in 0usize..4,
        ) {
            const SCOPES: [&str; 5] = ["/pods/", "/pods/ns1/", "/pods/ns1/a", "/leases/", ""];
            const KEYS: [&str; 4] = ["/pods/ns1/a", "/pods/ns2/b", "/leases/x", "/other"];
            let scope_of = |i: usize| match SCOPES[i] {
                "" => KeyRange::Single(Key::new("/other")),
                p => KeyRange::Prefix(Key::new(p)),
            };
            let mut index = WatcherIndex::default();
            let mut live: std::collections::BTreeMap<ConnId, usize> = Default::default();
            for (conn, scope, add) in ops {
                if let Some(old) = live.remove(&conn) {
                    index.remove(conn, &scope_of(old));
                }
                if add {
                    index.add(conn, &scope_of(scope));
                    live.insert(conn, scope);
                }
            }
            let key = Key::new(KEYS[key]);
            let mut merged = Vec::new();
            index.candidates(&key, &mut merged);
            let places = live
                .values()
                .map(|&i| SCOPES[i])
                .filter(|p| p.is_empty() || key.as_str().starts_with(p))
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            match index.single_source(&key) {
                Some(run) => {
                    proptest::prop_assert!(places <= 1, "read in place from {} places", places);
                    proptest::prop_assert_eq!(present(run), merged);
                }
                None => proptest::prop_assert!(places > 1),
            }
        }
    }

    /// A removed watcher is only marked until half the set is gone; the set compares, hashes
    /// and prints as the connections present, whatever is marked; a marked connection added
    /// again is present again, and an event's candidates never include a marked one.
    #[test]
    fn removals_mark_entries_and_the_set_is_its_present_connections() {
        let mut s = set(&[1, 2, 3, 4, 5]);
        s.remove(2);
        s.remove(2);
        assert_eq!(s.entries.len(), 5, "marked, not shifted");
        assert_eq!(s.conns().collect::<Vec<_>>(), vec![1, 3, 4, 5]);
        assert_eq!(s, set(&[1, 3, 4, 5]));
        assert_eq!(hash_of(&s), hash_of(&set(&[1, 3, 4, 5])));
        assert_eq!(format!("{s:?}"), "SortedConns([1, 3, 4, 5])");
        assert_ne!(s, set(&[1, 2, 3, 4, 5]));
        s.insert(2);
        assert_eq!(s.entries.len(), 5, "unmarked in place");
        assert_eq!(s, set(&[1, 2, 3, 4, 5]));
        s.remove(3);
        let mut index = WatcherIndex::default();
        index.add(9, &KeyRange::Prefix(Key::new("/pods/")));
        index
            .by_prefix
            .get_or_default(&Key::new("/pods/"))
            .clone_from(&s);
        let mut into = Vec::new();
        index.candidates(&Key::new("/pods/a"), &mut into);
        assert_eq!(into, vec![(1, true), (2, true), (4, true), (5, true)]);
        for c in [1, 5] {
            s.remove(c);
        }
        assert_eq!(s.entries, vec![2, 4], "compacted past half");
        s.remove(2);
        s.remove(4);
        assert!(s.is_empty());
        assert_eq!(hash_of(&s), hash_of(&SortedConns::default()));
    }
}
