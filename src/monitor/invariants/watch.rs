//! `watch-order`, `watch-unique` and `watch-no-gap` on every watch stream the model has: etcd
//! watches (the script's, each apiserver cacher's, direct watches with the cache off) and API
//! watches (the script's and every reflector's). These are etcd's own guarantees (ordered,
//! unique, reliable, resumable, bookmarkable: etcd-semantics.md A7, as `tests/robustness/
//! validate/watch.go` checks them) applied to both kinds of stream.
//!
//! Each stream walks the change log of its key range with a cursor. An event moves the cursor to
//! itself; changes it passes over become *missing*. A missing change that arrives late is an
//! ordering fault (counted under `watch-order` only); one that a bookmark or progress
//! notification (which claims "everything up to here was delivered") passes, or that is still
//! missing when the stream ends (or the run ends), is a gap. A stream that ends with an ERROR is
//! not judged (SPEC §6: cacher streams, unless the stream ended with an error). Cost: O(1)
//! amortised per event; O(log n) per stream start.
//!
//! Synthetic initial events (RV=0 / unset watches, sendInitialEvents) carry object RVs in key
//! order; the cacher tells the checker how many there are ([`Notice::WatchStarted`]), and they
//! are exempt from ordering (they must be unique and not above the snapshot RV).
//!
//! [`Notice::WatchStarted`]: crate::proto::Notice::WatchStarted

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::apiserver::ApiWatchEvent;
use crate::etcd::{Key, KeyRange, WatchRequest, WatchResponse, WatchResponseKind};
use crate::kernel::Fnv64;
use crate::monitor::Checker;
use crate::monitor::changelog::{ChangeLog, RangeId};
use crate::monitor::invariants::Inv;
use crate::proto::api::EventBatch;
use crate::proto::{Actor, ConnId};

/// `(connection, etcd watch id)`; API streams use [`API_STREAM`] as the id.
pub type StreamKey = (ConnId, i64);
/// The watch id under which an API watch stream is kept.
pub const API_STREAM: i64 = i64::MIN;

/// Most missing changes a stream keeps before judging them at once.
const MISSING_CAP: usize = 1024;

fn event_hash(rev: i64, key: &Key) -> u64 {
    let mut h = Fnv64::new();
    h.update(&rev.to_le_bytes());
    h.update(key.as_str().as_bytes());
    h.finish()
}

/// One watch stream as the checker follows it. Laid out in declaration order (issue 16): the
/// fields the fast path reads and writes ([`Stream::next_in_order`], once per receiver of a
/// fan-out) come first, within 64 bytes of the `Arc`'s counts.
#[derive(Debug, Clone)]
#[repr(C)]
pub struct Stream {
    /// First revision that must be delivered (None until the server says where it starts).
    start: Option<i64>,
    initial_left: u64,
    last_rev: i64,
    last_bookmark: i64,
    cursor: usize,
    watch_id: i64,
    range: RangeId,
    snapshot: bool,
    /// A watch with a label or field selector: it legitimately skips the changes its selector
    /// does not match, so passed-over changes are not missing (no `watch-no-gap` judgement);
    /// ordering and uniqueness are still checked.
    filtered: bool,
    owner: Actor,
    conn: ConnId,
    snapshot_rv: i64,
    initial: BTreeSet<u64>,
    /// Initial events taken as one batch ([`Checker::api_watch_batch`]): key-sorted, so looked
    /// up by binary search instead of hashed into `initial` one by one.
    initial_batch: Option<Arc<EventBatch>>,
    keys_at_last: Vec<Key>,
    missing: Vec<(i64, Key)>,
}

impl Stream {
    fn new(owner: Actor, conn: ConnId, watch_id: i64, range: RangeId) -> Self {
        Stream {
            owner,
            conn,
            watch_id,
            range,
            start: None,
            snapshot: false,
            snapshot_rv: 0,
            initial_left: 0,
            initial: BTreeSet::new(),
            initial_batch: None,
            last_rev: 0,
            keys_at_last: Vec::new(),
            last_bookmark: 0,
            cursor: 0,
            missing: Vec::new(),
            filtered: false,
        }
    }

    fn etcd(&self) -> bool {
        self.watch_id != API_STREAM
    }

    /// "etcd watch 1 of script (conn 7)" / "API watch of client-3 (conn 12)".
    pub fn describe(&self) -> String {
        if self.etcd() {
            format!(
                "etcd watch {} of {} (conn {})",
                self.watch_id, self.owner, self.conn
            )
        } else {
            format!("API watch of {} (conn {})", self.owner, self.conn)
        }
    }

    /// Highest event RV delivered so far.
    pub fn last_rev(&self) -> i64 {
        self.last_rev
    }

    /// Missing changes not judged yet (gaps if the run ends now).
    pub fn missing(&self) -> &[(i64, Key)] {
        &self.missing
    }

    /// The client whose API watch this is (None for etcd watches and the script's).
    pub(crate) fn client(&self) -> Option<u32> {
        match (self.etcd(), self.owner) {
            (false, Actor::Client(i)) => Some(i),
            _ => None,
        }
    }

    /// What a [`crate::monitor::stream_table::StreamTable`] lane needs to take this stream's
    /// in-order events ([`Stream::next_in_order`]) on its own: `(range, cursor, last_rev,
    /// floor)`, where an event passes only above both `last_rev` and `floor` (the last bookmark,
    /// and the revision before the start). None while the fast path cannot apply at all (an
    /// etcd watch, initial events still expected, no start yet).
    pub(crate) fn lane_view(&self) -> Option<(RangeId, usize, i64, i64)> {
        let start = self.start?;
        if self.etcd() || self.initial_left != 0 {
            return None;
        }
        let floor = self.last_bookmark.max(start - 1);
        Some((self.range, self.cursor, self.last_rev, floor))
    }

    /// Takes back what a lane moved: the cursor and the last event's revision, exactly as
    /// [`Stream::next_in_order`] would have moved them event by event.
    pub(crate) fn take_lane(&mut self, cursor: usize, last_rev: i64) {
        self.cursor = cursor;
        self.last_rev = last_rev;
    }
}

type Found = Vec<(Inv, String)>;

/// How one event of a stream is judged against the change log of its range.
impl Stream {
    /// The fast path: `rev`/`k` is the next change of the range, in order, after the start,
    /// the initial events and the last bookmark. Moves the cursor past it.
    fn next_in_order(&mut self, log: &ChangeLog, rev: i64, k: &Key) -> bool {
        if self.initial_left != 0
            || rev <= self.last_rev
            || rev <= self.last_bookmark
            || self.start.is_none_or(|st| rev < st)
            || self.cursor >= log.len(self.range)
        {
            return false;
        }
        let (r, x) = log.at(self.range, self.cursor);
        if r != rev || x != k {
            return false;
        }
        self.cursor += 1;
        self.last_rev = rev;
        if self.etcd() {
            self.keys_at_last.clear();
            self.keys_at_last.push(k.clone());
        }
        true
    }

    /// Every rule an event off the fast path can break, in the order they are tried.
    fn judge_event(&mut self, log: &ChangeLog, rev: i64, k: &Key) -> Found {
        if self.initial_left > 0 {
            return self.initial_event(rev, k);
        }
        if let Some(start) = self.start
            && rev < start
        {
            return vec![self.before_start(start, rev, k)];
        }
        if let Some(f) = self.repeated_or_late(log, rev, k) {
            return vec![f];
        }
        let mut found = Found::new();
        if rev <= self.last_bookmark {
            found.push((
                Inv::WatchOrder,
                format!(
                    "{}: event for {k} at RV {rev} after a bookmark / progress notification at RV {}",
                    self.describe(),
                    self.last_bookmark
                ),
            ));
        }
        if let Some(start) = self.start {
            found.extend(self.walk_log_to(log, start, rev, k));
        }
        self.delivered(rev, k, &mut found);
        found
    }

    /// True when `k` at `rev` was one of the initial events taken as a batch.
    fn in_initial_batch(&self, rev: i64, k: &Key) -> bool {
        let Some(batch) = &self.initial_batch else {
            return false;
        };
        let events = batch.events();
        events
            .binary_search_by(|e| object_key(e).cmp(&Some(k)))
            .is_ok_and(|i| matches!(&events[i], ApiWatchEvent::Object { rv, .. } if *rv == rev))
    }

    /// Takes a batch of initial events whole when that judges them as [`Stream::initial_event`]
    /// would one by one: the stream expects that many initial events and has had none yet,
    /// every event is an object no newer than the snapshot, and the keys strictly increase (so
    /// none is sent twice). False (nothing taken) otherwise.
    fn take_initial_batch(&mut self, batch: &Arc<EventBatch>) -> bool {
        let n = batch.events().len() as u64;
        if self.initial_left < n
            || !self.initial.is_empty()
            || self.initial_batch.is_some()
            || !batch.objects_in_key_order()
            || batch.max_rv() > self.snapshot_rv
        {
            return false;
        }
        self.initial_left -= n;
        self.initial_batch = Some(batch.clone());
        true
    }

    /// A synthetic initial event: unique, and not newer than the snapshot.
    fn initial_event(&mut self, rev: i64, k: &Key) -> Found {
        let mut found = Found::new();
        self.initial_left -= 1;
        if rev > self.snapshot_rv {
            found.push((
                Inv::WatchOrder,
                format!(
                    "{}: initial event for {k} at RV {rev} is newer than the snapshot RV {}",
                    self.describe(),
                    self.snapshot_rv
                ),
            ));
        }
        if self.in_initial_batch(rev, k) || !self.initial.insert(event_hash(rev, k)) {
            found.push((
                Inv::WatchUnique,
                format!(
                    "{}: initial event for {k} at RV {rev} was sent twice",
                    self.describe()
                ),
            ));
        }
        found
    }

    /// A live event older than the stream's first revision: a repeat of an initial event, older
    /// than the snapshot, or a change the watch started after.
    fn before_start(&self, start: i64, rev: i64, k: &Key) -> (Inv, String) {
        if self.initial.contains(&event_hash(rev, k)) || self.in_initial_batch(rev, k) {
            (
                Inv::WatchUnique,
                format!(
                    "{}: {k} at RV {rev} was delivered twice: in the initial events (snapshot at RV {}) and again as a live event",
                    self.describe(),
                    self.snapshot_rv
                ),
            )
        } else if self.snapshot {
            (
                Inv::WatchOrder,
                format!(
                    "{}: live event for {k} at RV {rev} is older than the snapshot at RV {}",
                    self.describe(),
                    self.snapshot_rv
                ),
            )
        } else {
            (
                Inv::WatchUnique,
                format!(
                    "{}: event for {k} at RV {rev} delivered again although the watch started after RV {}",
                    self.describe(),
                    start - 1
                ),
            )
        }
    }

    /// An event at or below the last delivered revision: the same key twice in a row (etcd
    /// streams, where a txn's keys share a revision), a missing change arriving late, a
    /// delivered change repeated, or one out of order.
    fn repeated_or_late(&mut self, log: &ChangeLog, rev: i64, k: &Key) -> Option<(Inv, String)> {
        let strict = !self.etcd();
        // Several keys may share a revision on etcd streams only (a txn); API streams find a
        // repeated event through the log below.
        if !strict && rev == self.last_rev && self.keys_at_last.iter().any(|x| x == k) {
            return Some((
                Inv::WatchUnique,
                format!(
                    "{}: event for {k} at RV {rev} delivered twice in a row",
                    self.describe()
                ),
            ));
        }
        if !(rev < self.last_rev || (strict && rev == self.last_rev)) {
            return None;
        }
        if let Some(p) = self.missing.iter().position(|(r, x)| *r == rev && x == k) {
            self.missing.remove(p);
            return Some((
                Inv::WatchOrder,
                format!(
                    "{}: event for {k} at RV {rev} arrived after an event at RV {}",
                    self.describe(),
                    self.last_rev
                ),
            ));
        }
        let repeated = self.start.is_some() && log.has(self.range, rev, k);
        Some(if repeated {
            (
                Inv::WatchUnique,
                format!(
                    "{}: event for {k} at RV {rev} delivered twice (the stream was already at RV {})",
                    self.describe(),
                    self.last_rev
                ),
            )
        } else {
            (
                Inv::WatchOrder,
                format!(
                    "{}: event for {k} at RV {rev} after an event at RV {}",
                    self.describe(),
                    self.last_rev
                ),
            )
        })
    }

    /// Moves the cursor to the event, marking the changes it passes over as missing; an event
    /// that is neither in the log nor missing is not a change etcd made to the watched keys.
    fn walk_log_to(
        &mut self,
        log: &ChangeLog,
        start: i64,
        rev: i64,
        k: &Key,
    ) -> Option<(Inv, String)> {
        let n = log.len(self.range);
        while self.cursor < n && log.at(self.range, self.cursor).0 < rev {
            // A start in the future: changes before it were logged after the cursor was set.
            self.pass_over(log, start, self.cursor);
            self.cursor += 1;
        }
        let hit = (self.cursor..n)
            .take_while(|&i| log.at(self.range, i).0 == rev)
            .find(|&i| log.at(self.range, i).1 == k);
        if let Some(p) = hit {
            for j in self.cursor..p {
                self.pass_over(log, start, j);
            }
            self.cursor = p + 1;
            return None;
        }
        if let Some(p) = self.missing.iter().position(|(r, x)| *r == rev && x == k) {
            self.missing.remove(p);
            return None;
        }
        Some((
            Inv::WatchNoGap,
            format!(
                "{}: event for {k} at RV {rev} is not a change etcd made to the watched keys",
                self.describe()
            ),
        ))
    }

    /// The log's change at `i` was passed over: missing, unless it is before the start or the
    /// stream's selector may skip it.
    fn pass_over(&mut self, log: &ChangeLog, start: i64, i: usize) {
        let (r, x) = log.at(self.range, i);
        if r >= start && !self.filtered {
            self.missing.push((r, x.clone()));
        }
    }

    /// Records the event as the stream's latest, and judges the missing changes at once when
    /// there are too many to keep.
    fn delivered(&mut self, rev: i64, k: &Key, found: &mut Found) {
        if rev > self.last_rev {
            self.last_rev = rev;
            self.keys_at_last.clear();
        }
        if self.etcd() {
            self.keys_at_last.push(k.clone());
        }
        if self.missing.len() > MISSING_CAP {
            let desc = self.describe();
            for (r, x) in std::mem::take(&mut self.missing) {
                found.push((Inv::WatchNoGap, gap_message(&desc, r, &x, rev)));
            }
        }
    }
}

impl Checker {
    fn record(&mut self, found: Found) {
        for (inv, msg) in found {
            self.violate(inv, || msg);
        }
    }

    fn open_stream(&mut self, key: StreamKey, owner: Actor, range: &KeyRange) {
        let rid = triomphe::Arc::make_mut(&mut self.log).intern(range);
        self.streams
            .insert(key, Stream::new(owner, key.0, key.1, rid));
    }

    fn set_start(&mut self, key: StreamKey, first_rev: i64) {
        let Some(s) = self.streams.get_mut(&key) else {
            return;
        };
        s.start = Some(first_rev);
        s.cursor = self.log.lower_bound(s.range, first_rev);
    }

    pub(crate) fn etcd_watch_request(
        &mut self,
        conn: ConnId,
        opener: Actor,
        req: &WatchRequest,
        current: i64,
    ) {
        if let WatchRequest::Create {
            watch_id,
            range,
            start_revision,
            ..
        } = req
        {
            let key = (conn, *watch_id);
            if *start_revision < 0 || self.streams.contains_key(&key) {
                return; // etcd answers created + canceled at once
            }
            self.open_stream(key, opener, range);
            let first = if *start_revision == 0 {
                current + 1
            } else {
                *start_revision
            };
            self.set_start(key, first);
        }
    }

    pub(crate) fn etcd_watch_response(
        &mut self,
        conn: ConnId,
        watch_id: i64,
        resp: &WatchResponse,
    ) {
        match &resp.kind {
            WatchResponseKind::Created => {}
            WatchResponseKind::Events(evs) => {
                let key = (conn, watch_id);
                for e in evs.iter() {
                    self.stream_event(key, e.kv.mod_revision, &e.kv.key);
                }
            }
            WatchResponseKind::Progress => {
                let keys: Vec<StreamKey> = if watch_id == -1 {
                    let mut keys = self.streams.keys_of(conn);
                    keys.retain(|k| k.1 != API_STREAM);
                    keys
                } else {
                    vec![(conn, watch_id)]
                };
                for k in keys {
                    self.stream_bookmark(k, resp.header_revision);
                }
            }
            WatchResponseKind::Canceled { .. } => self.end_stream((conn, watch_id), true),
        }
    }

    pub(crate) fn api_watch_request(
        &mut self,
        conn: ConnId,
        opener: Actor,
        scope: &KeyRange,
        filtered: bool,
    ) {
        if let Actor::Client(i) = opener
            && let Some(slot) = self.client_stream.get_mut(i as usize)
        {
            // The reflector moved on: its previous stream is over.
            if let Some(old) = slot.replace(conn) {
                self.end_stream((old, API_STREAM), true);
            }
        }
        self.open_stream((conn, API_STREAM), opener, scope);
        if let Some(s) = self.streams.get_mut(&(conn, API_STREAM)) {
            s.filtered = filtered;
        }
    }

    pub(crate) fn api_watch_started(&mut self, conn: ConnId, start_rv: i64, initial: u64) {
        let key = (conn, API_STREAM);
        self.set_start(key, start_rv + 1);
        if let Some(s) = self.streams.get_mut(&key) {
            s.snapshot = initial > 0;
            s.snapshot_rv = start_rv;
            s.initial_left = initial;
        }
    }

    pub(crate) fn api_watch_event(&mut self, conn: ConnId, ev: &ApiWatchEvent) {
        let key = (conn, API_STREAM);
        match ev {
            ApiWatchEvent::Object { key: k, rv, .. } => self.stream_event(key, *rv, k),
            ApiWatchEvent::Bookmark { rv, .. } => {
                self.cur.bookmark_rv = Some(*rv);
                self.stream_bookmark(key, *rv);
            }
            ApiWatchEvent::Error(_) => self.end_stream(key, false),
            ApiWatchEvent::Closed => self.end_stream(key, true),
        }
    }

    /// Several events of an API watch stream in one message (a cacher's initial state): taken
    /// whole when they are well-formed initial events ([`Stream::take_initial_batch`]), each
    /// judged on its own otherwise.
    pub(crate) fn api_watch_batch(&mut self, conn: ConnId, batch: &Arc<EventBatch>) {
        if let Some(s) = self.streams.get_mut(&(conn, API_STREAM))
            && s.take_initial_batch(batch)
        {
            return;
        }
        for ev in batch.events() {
            self.api_watch_event(conn, ev);
        }
    }

    /// A connection of a watching actor broke: its streams on it are over.
    pub(crate) fn conn_lost(&mut self, conn: ConnId) {
        let keys: Vec<StreamKey> = self.streams.keys_of(conn);
        for k in keys {
            self.end_stream(k, true);
        }
    }

    fn stream_event(&mut self, key: StreamKey, rev: i64, k: &Key) {
        let log = &self.log;
        let Some(s) = self.streams.get_mut(&key) else {
            return;
        };
        // Fast path (almost every event): the next change of the range, in order.
        if s.next_in_order(log, rev, k) {
            return;
        }
        let found = s.judge_event(log, rev, k);
        self.record(found);
    }

    fn stream_bookmark(&mut self, key: StreamKey, rv: i64) {
        let mut found: Found = Vec::new();
        let log = &self.log;
        let Some(s) = self.streams.get_mut(&key) else {
            return;
        };
        if s.initial_left > 0 {
            return;
        }
        if rv < s.last_bookmark || rv < s.last_rev {
            found.push((
                Inv::WatchOrder,
                format!(
                    "{}: bookmark / progress at RV {rv} after RV {}",
                    s.describe(),
                    s.last_bookmark.max(s.last_rev)
                ),
            ));
        }
        if let Some(start) = s.start {
            let n = log.len(s.range);
            while s.cursor < n && log.at(s.range, s.cursor).0 <= rv {
                let (r, x) = log.at(s.range, s.cursor);
                if r >= start && !s.filtered {
                    s.missing.push((r, x.clone()));
                }
                s.cursor += 1;
            }
            // Only a missing change costs a partition and a description (text).
            if s.missing.iter().any(|(r, _)| *r <= rv) {
                let (gone, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut s.missing)
                    .into_iter()
                    .partition(|(r, _)| *r <= rv);
                s.missing = keep;
                let desc = s.describe();
                for (r, x) in gone {
                    found.push((
                        Inv::WatchNoGap,
                        format!(
                            "{desc}: the change to {x} at revision {r} was never delivered, yet a bookmark / progress notification at RV {rv} claims everything up to it was"
                        ),
                    ));
                }
            }
        }
        s.last_bookmark = s.last_bookmark.max(rv);
        self.record(found);
    }

    fn end_stream(&mut self, key: StreamKey, judge: bool) {
        let Some(s) = self.streams.remove(&key) else {
            return;
        };
        if judge && !s.missing.is_empty() {
            let desc = s.describe();
            let found = s
                .missing
                .iter()
                .map(|(r, x)| (Inv::WatchNoGap, gap_message(&desc, *r, x, s.last_rev)))
                .collect();
            self.record(found);
        }
    }

    /// Streams still open (judged at the end of a complete run).
    pub fn open_streams(&self) -> impl Iterator<Item = &Stream> {
        self.streams.values()
    }
}

/// The key of an object event (None for the others, which sort first).
fn object_key(e: &ApiWatchEvent) -> Option<&Key> {
    match e {
        ApiWatchEvent::Object { key, .. } => Some(key),
        _ => None,
    }
}

/// The message of a gap.
pub fn gap_message(desc: &str, rev: i64, key: &Key, later: i64) -> String {
    format!(
        "{desc}: the change to {key} at revision {rev} was never delivered, though the stream delivered RV {later}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn added(key: &str, rv: i64) -> ApiWatchEvent {
        ApiWatchEvent::Object {
            kind: crate::proto::api::EventType::Added,
            key: Key::new(key),
            rv,
            bytes: 1,
            prev_rv: 0,
        }
    }

    /// A checker following one API watch (conn 7) that starts with `initial` initial events
    /// at snapshot RV 10.
    fn snapshot_watch(initial: u64) -> Checker {
        let mut c = Checker::default();
        c.api_watch_request(7, Actor::Script, &KeyRange::Prefix(Key::new("/p/")), false);
        c.api_watch_started(7, 10, initial);
        c
    }

    fn count(c: &Checker, inv: Inv) -> u64 {
        c.tallies[inv as usize].count
    }

    fn batch(events: Vec<ApiWatchEvent>) -> Arc<EventBatch> {
        Arc::new(EventBatch::new(events))
    }

    #[test]
    fn a_key_sorted_batch_is_taken_whole_and_remembered_for_later_duplicates() {
        let mut c = snapshot_watch(3);
        c.api_watch_batch(
            7,
            &batch(vec![added("/p/a", 4), added("/p/b", 9), added("/p/c", 2)]),
        );
        assert_eq!(count(&c, Inv::WatchUnique) + count(&c, Inv::WatchOrder), 0);
        assert!(c.streams[&(7, API_STREAM)].initial_batch.is_some());
        // The same object again, live: delivered twice.
        c.api_watch_event(7, &added("/p/b", 9));
        assert_eq!(count(&c, Inv::WatchUnique), 1);
    }

    #[test]
    fn a_malformed_batch_is_judged_event_by_event() {
        // A key twice: the second is a duplicate initial event.
        let mut c = snapshot_watch(3);
        c.api_watch_batch(
            7,
            &batch(vec![added("/p/a", 4), added("/p/b", 5), added("/p/b", 5)]),
        );
        assert!(c.streams[&(7, API_STREAM)].initial_batch.is_none());
        assert_eq!(count(&c, Inv::WatchUnique), 1);
        // An object newer than the snapshot.
        let mut c = snapshot_watch(2);
        c.api_watch_batch(7, &batch(vec![added("/p/a", 4), added("/p/b", 11)]));
        assert_eq!(count(&c, Inv::WatchOrder), 1);
        // More events than the server announced: the rest are live events older than the start.
        let mut c = snapshot_watch(1);
        c.api_watch_batch(7, &batch(vec![added("/p/a", 4), added("/p/b", 5)]));
        assert_eq!(count(&c, Inv::WatchOrder) + count(&c, Inv::WatchUnique), 1);
    }

    /// One step of a fan-out sequence for the lanes' property test.
    #[derive(Debug, Clone)]
    enum FanOut {
        /// An object event at the change `ahead` positions after the client's next one (0: in
        /// order; past the end: a made-up revision), to `clients` (a bit per client).
        Event { ahead: usize, clients: u8 },
        /// A bookmark at the newest revision to one client (judged off the lane).
        Bookmark(u8),
        /// The lanes give their positions back.
        Settle,
    }

    fn fan_out_step() -> impl proptest::strategy::Strategy<Value = FanOut> {
        use proptest::prelude::*;
        prop_oneof![
            10 => (prop_oneof![6 => Just(0usize), 1 => 1usize..4, 1 => 30usize..40], 1u8..8)
                .prop_map(|(ahead, clients)| FanOut::Event { ahead, clients }),
            1 => (0u8..3).prop_map(FanOut::Bookmark),
            1 => Just(FanOut::Settle),
        ]
    }

    /// Three clients' API watches of `/p/` (conns 20-22) from RV 3, over 24 writes to three keys.
    fn fanned_out_checker() -> (Checker, Vec<(i64, Key)>) {
        let mut store = crate::etcd::mvcc::Store::new();
        let keys: Vec<Key> = ["/p/a", "/p/b", "/p/c"]
            .iter()
            .map(|k| Key::new(k))
            .collect();
        let mut changes = Vec::new();
        for n in 0..24 {
            let key = &keys[(n * 7 + n / 3) % 3];
            let (rev, _) = store.put(key, 10);
            changes.push((rev, key.clone()));
        }
        let mut c = Checker::default();
        for i in 0..3u32 {
            let conn = 20 + u64::from(i);
            c.api_watch_request(
                conn,
                Actor::Client(i),
                &KeyRange::Prefix(Key::new("/p/")),
                false,
            );
            c.api_watch_started(conn, 3, 0);
        }
        triomphe::Arc::make_mut(&mut c.log).sync(&store);
        (c, changes)
    }

    proptest::proptest! {
        #![proptest_config(crate::kernel::proptest_kept("tests/stream_lanes.proptest-regressions"))]

        /// A fan-out's events taken through the clients' lanes, settled at any points, judge
        /// every stream exactly as the checker's own walk event by event does (the reference):
        /// the same violations and the same streams.
        #[test]
        fn lanes_judge_as_the_walk_event_by_event(
            steps in proptest::collection::vec(fan_out_step(), 0..120),
        ) {
            let (mut lanes, changes) = fanned_out_checker();
            let (mut reference, _) = fanned_out_checker();
            let newest = changes.last().map_or(0, |c| c.0);
            // The next change each client is due (as the reference saw it).
            let mut next = [0usize; 3];
            for step in steps {
                match step {
                    FanOut::Event { ahead, clients } => {
                        let to: Vec<u32> = (0..3).filter(|i| clients & (1 << i) != 0).collect();
                        let first = to[0] as usize;
                        let (rev, key) = match changes.get(next[first] + ahead) {
                            Some((r, k)) => (*r, k.clone()),
                            None => (newest + 5, Key::new("/p/z")),
                        };
                        let ev = ApiWatchEvent::Object {
                            kind: crate::proto::api::EventType::Modified,
                            key,
                            rv: rev,
                            bytes: 1,
                            prev_rv: 0,
                        };
                        let targets: Vec<crate::proto::MulticastTarget> = to
                            .iter()
                            .map(|&i| (20 + u64::from(i), Actor::Client(i), 0))
                            .collect();
                        lanes.multicast(&targets, &crate::proto::Msg::ApiWatch(ev.clone()), &|_| true, true);
                        for &i in &to {
                            reference.api_watch_event(20 + u64::from(i), &ev);
                            let at = changes.iter().position(|(r, _)| *r == rev);
                            if let Some(p) = at {
                                next[i as usize] = next[i as usize].max(p + 1);
                            }
                        }
                    }
                    FanOut::Bookmark(i) => {
                        let b = ApiWatchEvent::Bookmark { rv: newest, initial_events_end: false };
                        let conn = 20 + u64::from(i);
                        lanes.api_watch_event(conn, &b);
                        reference.api_watch_event(conn, &b);
                    }
                    FanOut::Settle => lanes.settle(),
                }
            }
            lanes.settle();
            for inv in 0..lanes.tallies.len() {
                proptest::prop_assert_eq!(lanes.tallies[inv].count, reference.tallies[inv].count);
                proptest::prop_assert_eq!(&lanes.tallies[inv].first, &reference.tallies[inv].first);
            }
            let a: Vec<String> = lanes.open_streams().map(|s| format!("{s:?}")).collect();
            let b: Vec<String> = reference.open_streams().map(|s| format!("{s:?}")).collect();
            proptest::prop_assert_eq!(a, b);
        }
    }
}
