//! etcd's watch server (etcd `server/storage/mvcc/watchable_store.go`, `watcher_group.go`,
//! `server/etcdserver/api/v3rpc/watch.go`): watchers grouped on gRPC watch streams, synced
//! watchers notified on every write, unsynced ones caught up by the 100 ms sync loop in batches of
//! at most 1000 revisions, cancellation with `compact_revision` when the next revision a watcher
//! needs was compacted, periodic progress notify and on-demand RequestProgress.

use imbl::OrdMap;
use std::sync::Arc;

use super::mvcc::Store;
use crate::kernel::Nanos;
use crate::kernel::sorted_map::SortedMap;
use crate::proto::etcd::{
    Event, KeyRange, Revision, StreamId, WatchId, WatchRequest, WatchResponse, WatchResponseKind,
};
use crate::proto::key_memo::KeyMemo;

/// `watchResyncPeriod`: how often the sync loop serves unsynced watchers.
pub const SYNC_PERIOD_NS: Nanos = 100_000_000;
/// `maxWatchersPerSync`.
pub const MAX_WATCHERS_PER_SYNC: usize = 512;
/// Watchers from which a write's matches are remembered by key ([`KeyMemo`]): below it, the
/// walk costs no more than the memo, whose answers an explorer state's copy loses anyway.
const MEMO_FROM_WATCHERS: usize = 8;
/// `watchBatchMaxRevs`: distinct revisions per catch-up response.
pub const WATCH_BATCH_MAX_REVS: usize = 1000;

/// What the watch server asks the world to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchOutput {
    /// Send a response on a stream.
    Send(StreamId, WatchResponse),
    /// Send the same response (events, header) to several streams, each under its own watch id
    /// (inline up to [`INLINE_STREAMS`]: one per apiserver, made and read in the same step, so
    /// no allocation per write; issue 16).
    Multicast(MulticastStreams, WatchResponse),
    /// Arm the sync loop timer.
    ArmSync(Nanos),
    /// Arm a stream's progress ticker.
    ArmProgressTick(StreamId, Nanos),
}

/// Streams a [`WatchOutput::Multicast`] holds without an allocation.
pub const INLINE_STREAMS: usize = 4;

/// The streams of a [`WatchOutput::Multicast`], each with its watch id.
pub type MulticastStreams = smallvec::SmallVec<[(StreamId, WatchId); INLINE_STREAMS]>;

/// The key range of one stream's watchers in the hub's map.
fn stream_span(stream: StreamId) -> std::ops::RangeInclusive<(StreamId, WatchId)> {
    (stream, WatchId::MIN)..=(stream, WatchId::MAX)
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Watcher {
    range: KeyRange,
    start_rev: Revision,
    min_rev: Revision,
    progress_notify: bool,
    synced: bool,
    /// Cancelled by compaction; the id stays on the stream until the client cancels it
    /// (v3rpc/watch.go `cancelWatcher`, `wa.compacted`).
    compacted: bool,
    /// etcd's `progress[id]`: no events sent since the last tick.
    quiet_since_tick: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Stream {
    opened_ns: Nanos,
    interval_ns: Nanos,
    tick_armed: bool,
}

/// All watchers of one etcd server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct WatchHub {
    /// A few per apiserver (one per resource it caches): walked on every write.
    watchers: SortedMap<(StreamId, WatchId), Watcher>,
    /// The positions of the watchers whose range contains a key, by the key's address (a
    /// lease key is written every 10 s); cleared whenever a watcher is added or removed.
    in_range: KeyMemo<smallvec::SmallVec<[u32; 8]>>,
    streams: OrdMap<StreamId, Stream>,
    unsynced: usize,
    sync_armed: bool,
    events_sent: u64,
    /// Mutant `etcd_skip_compacted_watcher` (etcd #17529 before 3.4.31), set by the world.
    pub mutant_skip_compacted: bool,
    /// Mutant `etcd_progress_before_catchup` (etcd #15220 before 3.4.25), set by the world.
    pub mutant_progress_before_catchup: bool,
    /// Mutant `etcd_watch_at_compact_refused` (kine PR #747), set by the world.
    pub mutant_refuse_at_compact: bool,
}

impl WatchHub {
    /// The explorer's time abstraction: forgets when each stream opened (only the order of
    /// pending events counts there).
    pub fn erase_times(&mut self) {
        if self.streams.values().all(|s| s.opened_ns == 0) {
            return;
        }
        self.streams = std::mem::take(&mut self.streams)
            .into_iter()
            .map(|(id, mut s)| {
                s.opened_ns = 0;
                (id, s)
            })
            .collect();
    }
}

impl WatchHub {
    /// No watchers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Watch events sent so far (report `watch_events_sent`).
    pub fn events_sent(&self) -> u64 {
        self.events_sent
    }

    /// Number of watchers.
    pub fn watcher_count(&self) -> usize {
        self.watchers.len()
    }

    /// Opens a stream whose progress ticker fires every `interval_ns` (etcd's progress-notify
    /// interval plus this stream's jitter; 0 = never).
    pub fn open_stream(&mut self, stream: StreamId, now: Nanos, interval_ns: Nanos) {
        self.streams.insert(
            stream,
            Stream {
                opened_ns: now,
                interval_ns,
                tick_armed: false,
            },
        );
    }

    /// Closes a stream and drops its watchers (the client went away).
    pub fn close_stream(&mut self, stream: StreamId) {
        for k in self.stream_keys(stream) {
            self.remove_watcher(k);
        }
        self.streams.remove(&stream);
    }

    fn arm_sync(&mut self, now: Nanos, out: &mut Vec<WatchOutput>) {
        if self.unsynced > 0 && !self.sync_armed {
            self.sync_armed = true;
            out.push(WatchOutput::ArmSync(now + SYNC_PERIOD_NS));
        }
    }

    /// Sends a response of `kind` for `watch_id` with the given header revision.
    fn reply(
        &mut self,
        stream: StreamId,
        watch_id: WatchId,
        header_revision: Revision,
        kind: WatchResponseKind,
        out: &mut Vec<WatchOutput>,
    ) {
        self.send(
            stream,
            WatchResponse {
                watch_id,
                header_revision,
                kind,
            },
            out,
        );
    }

    /// Removes a watcher, keeping the unsynced count right.
    fn remove_watcher(&mut self, key: (StreamId, WatchId)) -> bool {
        self.in_range.clear();
        match self.watchers.remove(&key) {
            Some(w) => {
                if !w.synced && !w.compacted {
                    self.unsynced -= 1;
                }
                true
            }
            None => false,
        }
    }

    /// The watcher keys of one stream.
    fn stream_keys(&self, stream: StreamId) -> Vec<(StreamId, WatchId)> {
        self.watchers
            .range(stream_span(stream))
            .map(|(k, _)| *k)
            .collect()
    }

    fn send(&mut self, stream: StreamId, resp: WatchResponse, out: &mut Vec<WatchOutput>) {
        if let WatchResponseKind::Events(evs) = &resp.kind {
            self.events_sent += evs.len() as u64;
        }
        out.push(WatchOutput::Send(stream, resp));
    }

    /// Handles a request arriving on `stream`.
    pub fn handle(
        &mut self,
        now: Nanos,
        stream: StreamId,
        req: &WatchRequest,
        store: &Store,
        out: &mut Vec<WatchOutput>,
    ) {
        let current = store.revision();
        match req {
            WatchRequest::Create {
                watch_id,
                range,
                start_revision,
                progress_notify,
            } => {
                let duplicate = self.watchers.contains_key(&(stream, *watch_id));
                if *start_revision < 0 || duplicate {
                    // etcd answers created + canceled at once (v3rpc/watch.go recvLoop).
                    self.reply(stream, *watch_id, current, WatchResponseKind::Created, out);
                    let canceled = WatchResponseKind::Canceled {
                        compact_revision: 0,
                    };
                    self.reply(stream, *watch_id, current, canceled, out);
                    return;
                }
                // 0 = next revision, synced; a future start is synced too (nothing below it is
                // ever sent); a start in the past is unsynced and replayed by the sync loop.
                let (min_rev, synced) = match *start_revision {
                    0 => (current + 1, true),
                    s if s > current => (s, true),
                    s => (s, false),
                };
                let w = Watcher {
                    range: range.clone(),
                    start_rev: *start_revision,
                    min_rev,
                    progress_notify: *progress_notify,
                    synced,
                    compacted: false,
                    quiet_since_tick: true,
                };
                self.watchers.insert((stream, *watch_id), w);
                self.in_range.clear();
                if !synced {
                    self.unsynced += 1;
                }
                self.reply(stream, *watch_id, current, WatchResponseKind::Created, out);
                self.arm_sync(now, out);
                if *progress_notify {
                    self.arm_progress_tick(now, stream, out);
                }
            }
            WatchRequest::Cancel { watch_id } => {
                if self.remove_watcher((stream, *watch_id)) {
                    let canceled = WatchResponseKind::Canceled {
                        compact_revision: 0,
                    };
                    self.reply(stream, *watch_id, current, canceled, out);
                }
            }
            WatchRequest::Progress => {
                // progressAll: answered (once, watch id -1) only if every watcher of the stream is
                // synced and none still waits for a future start revision (etcd #15220, #20221).
                let mut any = false;
                let mut all_ready = true;
                for (_, w) in self.watchers.range(stream_span(stream)) {
                    any = true;
                    // Mutant (etcd #15220, v3rpc/watch.go before PR #15237): the request is
                    // answered at once with the store revision, synced or not.
                    let unsynced = !w.synced && !self.mutant_progress_before_catchup;
                    if unsynced || current < w.start_rev {
                        all_ready = false;
                    }
                }
                if any && all_ready {
                    self.reply(stream, -1, current, WatchResponseKind::Progress, out);
                }
            }
        }
    }

    fn arm_progress_tick(&mut self, now: Nanos, stream: StreamId, out: &mut Vec<WatchOutput>) {
        if let Some(s) = self.streams.get_mut(&stream)
            && !s.tick_armed
            && s.interval_ns > 0
        {
            s.tick_armed = true;
            // The stream's ticker started when the stream opened: next multiple after now.
            let elapsed = now.saturating_sub(s.opened_ns);
            let next = s.opened_ns + (elapsed / s.interval_ns + 1) * s.interval_ns;
            out.push(WatchOutput::ArmProgressTick(stream, next));
        }
    }

    /// Asks for the lines of `key`'s remembered watchers at `stage`, which a write of it reads
    /// (a hint: no effect on the hub).
    #[inline]
    pub fn prefetch_for_write(
        &self,
        key: &crate::proto::etcd::Key,
        stage: crate::kernel::prefetch::Stage,
    ) {
        if self.watchers.len() >= MEMO_FROM_WATCHERS {
            self.in_range.prefetch(key, stage);
        }
    }

    /// Pushes the events of one write request (all at `rev`) to the synced watchers they match
    /// (watchable_store.go `notify`).
    pub fn notify(&mut self, rev: Revision, events: &[Event], out: &mut Vec<WatchOutput>) {
        if events.is_empty() || self.watchers.is_empty() {
            return;
        }
        if let [event] = events {
            return self.notify_one(rev, event, out);
        }
        let mut sends: Vec<(usize, StreamId, WatchId, Vec<Event>)> = Vec::new();
        for (i, ((stream, id), w)) in self.watchers.iter().enumerate() {
            if !w.synced || rev < w.min_rev {
                continue;
            }
            let matched: Vec<Event> = events
                .iter()
                .filter(|e| w.range.contains(&e.kv.key))
                .cloned()
                .collect();
            if !matched.is_empty() {
                sends.push((i, *stream, *id, matched));
            }
        }
        // Watchers that get exactly the same events (e.g. every apiserver's cacher of one
        // resource) are served by one multicast response.
        type Group = (Vec<(StreamId, WatchId)>, Vec<Event>);
        let mut groups: Vec<Group> = Vec::new();
        for (i, stream, id, evs) in sends {
            self.mark_sent(i, rev, evs.len());
            match groups.iter_mut().find(|(_, e)| *e == evs) {
                Some((targets, _)) => targets.push((stream, id)),
                None => groups.push((vec![(stream, id)], evs)),
            }
        }
        for (targets, evs) in groups {
            respond_to_group(rev, &targets, evs.into(), out);
        }
    }

    /// The watcher at position `i` was sent `events` events of revision `rev`: it waits for the
    /// next one.
    fn mark_sent(&mut self, i: usize, rev: Revision, events: usize) {
        let w = self.watchers.value_at_mut(i);
        w.min_rev = rev + 1;
        w.quiet_since_tick = false;
        self.events_sent += events as u64;
    }

    /// [`notify`](Self::notify) for a revision of one event (most writes): every watcher it
    /// matches gets the same response, so they form one group, in watcher order, without a
    /// per-watcher copy of the event. One walk finds them by position; only they are written.
    fn notify_one(&mut self, rev: Revision, event: &Event, out: &mut Vec<WatchOutput>) {
        let key = &event.kv.key;
        let memo = self.watchers.len() >= MEMO_FROM_WATCHERS;
        let remembered = if memo { self.in_range.get(key) } else { None };
        let in_range = match remembered {
            Some(p) => p.clone(),
            None => {
                let p: smallvec::SmallVec<[u32; 8]> = self
                    .watchers
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, w))| w.range.contains(key))
                    .map(|(i, _)| i as u32)
                    .collect();
                // Remembered from a key's second version on (most created keys are rarely
                // written again).
                if memo && event.kv.version > 1 {
                    self.in_range.insert(key, p.clone());
                }
                p
            }
        };
        let mut positions: smallvec::SmallVec<[usize; 8]> = smallvec::SmallVec::new();
        let mut targets: smallvec::SmallVec<[(StreamId, WatchId); 4]> = smallvec::SmallVec::new();
        for i in in_range {
            let (k, w) = self.watchers.entry_at(i as usize);
            if w.synced && rev >= w.min_rev {
                positions.push(i as usize);
                targets.push(*k);
            }
        }
        if targets.is_empty() {
            return;
        }
        for i in positions {
            self.mark_sent(i, rev, 1);
        }
        respond_to_group(rev, &targets, Arc::from([event.clone()]), out);
    }

    /// One round of the sync loop (watchable_store.go `syncWatchers`): cancels unsynced watchers
    /// whose next revision was compacted, sends the others at most 1000 revisions of history, and
    /// moves the caught-up ones to synced.
    pub fn sync(&mut self, now: Nanos, store: &Store, out: &mut Vec<WatchOutput>) {
        self.sync_armed = false;
        let current = store.revision();
        let compacted = store.compact_revision();
        let due: Vec<(StreamId, WatchId)> = self
            .watchers
            .iter()
            .filter(|(_, w)| !w.synced && !w.compacted)
            .take(MAX_WATCHERS_PER_SYNC)
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            let Some(w) = self.watchers.get(&key).cloned() else {
                continue;
            };
            if w.min_rev < compacted && self.mutant_skip_compacted {
                // Mutant (etcd #17529): the compaction notice is not sent; the watcher silently
                // jumps to the current revision + 1 and goes on as synced.
                if let Some(wm) = self.watchers.get_mut(&key) {
                    wm.min_rev = current + 1;
                    wm.synced = true;
                }
                self.unsynced -= 1;
                continue;
            }
            // Mutant (kine PR #747): a watcher still at its start revision is refused when that
            // revision is exactly the compact revision (`<=` where etcd's `chooseAll` has `<`).
            let refused_at_compact =
                self.mutant_refuse_at_compact && w.min_rev == compacted && w.min_rev == w.start_rev;
            if w.min_rev < compacted || refused_at_compact {
                // The watcher stops, but its id stays registered until the client cancels it.
                if let Some(wm) = self.watchers.get_mut(&key) {
                    wm.compacted = true;
                }
                self.unsynced -= 1;
                let canceled = WatchResponseKind::Canceled {
                    compact_revision: compacted,
                };
                self.reply(key.0, key.1, current, canceled, out);
                continue;
            }
            let (mut events, next) =
                store.events_between(&w.range, w.min_rev, current, WATCH_BATCH_MAX_REVS);
            // `v3rpc/watch.go sendLoop` reads each event's prev_kv at its revision - 1 when it
            // sends it; below the compact revision that read fails and prev_kv stays empty.
            for e in events.iter_mut() {
                if e.kv.mod_revision - 1 < compacted {
                    e.prev = None;
                }
            }
            let caught_up = next > current;
            if let Some(wm) = self.watchers.get_mut(&key) {
                wm.min_rev = next;
                if !events.is_empty() {
                    wm.quiet_since_tick = false;
                }
                if caught_up {
                    wm.synced = true;
                }
            }
            if caught_up {
                self.unsynced -= 1;
            }
            if !events.is_empty() {
                self.reply(
                    key.0,
                    key.1,
                    current,
                    WatchResponseKind::Events(events.into()),
                    out,
                );
            }
        }
        self.arm_sync(now, out);
    }

    /// A stream's progress ticker fired (v3rpc/watch.go `sendLoop`): each progress-enabled watcher
    /// that got no events since the previous tick gets a notification if it is synced (and its
    /// start revision has been reached); then every watcher is marked quiet again.
    pub fn progress_tick(
        &mut self,
        now: Nanos,
        stream: StreamId,
        store: &Store,
        out: &mut Vec<WatchOutput>,
    ) {
        let current = store.revision();
        let mut notify = Vec::new();
        let mut any_progress = false;
        for ((_, id), w) in self.watchers.range(stream_span(stream)) {
            if !w.progress_notify {
                continue;
            }
            any_progress = true;
            if w.quiet_since_tick && w.synced && current >= w.start_rev {
                notify.push(*id);
            }
        }
        for id in notify {
            self.reply(stream, id, current, WatchResponseKind::Progress, out);
        }
        for k in self.stream_keys(stream) {
            if let Some(w) = self.watchers.get_mut(&k) {
                w.quiet_since_tick = true;
            }
        }
        if let Some(s) = self.streams.get_mut(&stream) {
            s.tick_armed = false;
        }
        if any_progress {
            self.arm_progress_tick(now, stream, out);
        }
    }
}

impl WatchHub {
    /// True once a stream has been opened (its first request arrived).
    pub fn has_stream(&self, stream: StreamId) -> bool {
        self.streams.contains_key(&stream)
    }
}

/// One response carrying `events` of revision `rev` to every watcher of `targets` (non-empty):
/// a plain send to one, a multicast to several (each receiver gets its own watch id).
fn respond_to_group(
    rev: Revision,
    targets: &[(StreamId, WatchId)],
    events: Arc<[Event]>,
    out: &mut Vec<WatchOutput>,
) {
    let resp = WatchResponse {
        watch_id: targets[0].1,
        header_revision: rev,
        kind: WatchResponseKind::Events(events),
    };
    if let [(stream, _)] = targets {
        out.push(WatchOutput::Send(*stream, resp));
    } else {
        out.push(WatchOutput::Multicast(
            MulticastStreams::from_slice(targets),
            resp,
        ));
    }
}
