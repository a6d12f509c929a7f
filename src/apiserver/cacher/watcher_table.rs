//! The cacher's registered watchers (`cacher.go watchers`, `cache_watcher.go cacheWatcher`), kept
//! for event dispatch (issue 16). An event of `cluster-15k` is offered to thousands of watchers,
//! and for nearly all of them the offer reads four things: the watcher's client, the last RV it
//! was sent, whether it takes the event as it is (no selector) and whether it reads as fast as
//! events arrive (no rate, no interval still being replayed). Those sit in a 16-byte
//! [`DispatchLane`] per watcher, beside its connection id in one array (a `DenseIdMap` lane),
//! and the last RV sent lives only there (or, for a member of a run journal, in the journal:
//! `run_journal.rs`); the rest of a watcher ([`WatcherBody`], a few hundred bytes) is read only
//! by the slow paths.
//!
//! Slow paths work on a [`CacheWatcher`]: a copy of a body with its last RV sent, checked out of
//! the table and put back whole, so the lane is always derived from the body it stands beside.
//! The only other way to change a body, [`WatcherTable::get_mut`], re-derives the lane when its
//! guard is dropped. The table compares, hashes and prints as the map of whole watchers it
//! replaced (`DenseIdMap<CacheWatcher>`), so explorer states hash exactly as before.

use std::hash::{Hash, Hasher};

use imbl::Vector;

use super::super::api::ReadRate;
use super::super::selector::Selector;
use super::super::watch_cache::CacheEvent;
use crate::kernel::Nanos;
use crate::kernel::dense_map::DenseIdMap;
use crate::proto::etcd::KeyRange;
use crate::proto::{Actor, ConnId};

use super::run_journal::{JournalPass, JournalRef, Journals, NO_JOURNAL};

/// A watcher's interval still being replayed from the ring (`watch_cache_interval.go`): the
/// ring indexes of its next event and of its end.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Replay {
    pub next_index: u64,
    pub end_index: u64,
}

/// One watcher of the cache, but for the last RV it was sent (which its [`DispatchLane`] holds).
/// Laid out in declaration order: the fields a slow offer reads first come first.
#[derive(Debug, Clone, PartialEq, Eq)]
#[repr(C)]
pub(super) struct WatcherBody {
    /// The actor reading this watch (for one-step fan-out).
    pub client: Actor,
    /// The label and field selectors matched within `scope` (`filterWithAttrsAndPrefixFunction`).
    pub selector: Selector,
    pub read_rate: ReadRate,
    pub replay: Option<Replay>,
    pub bookmarks: bool,
    pub scope: KeyRange,
    /// The RV a periodic bookmark must exceed: the start RV raised to the cache RV of a snapshot
    /// start or to the newest event of the replayed interval, and never raised after
    /// (`cache_watcher.go processInterval`/`process`: the local `resourceVersion`). So a quiet
    /// watch gets a BOOKMARK at the same RV every minute.
    pub bookmark_floor: i64,
    pub deadline_ns: Nanos,
    pub next_bookmark_ns: Option<Nanos>,
    pub buffered: u64,
    pub drained_at_ns: Nanos,
    pub capacity: u64,
    pub chan: u64,
    /// The channel size each followed configuration would have given this watcher
    /// (`cache_shadow.rs`; empty in an unshared run).
    pub shadow_chans: Vec<u64>,
    pub held: Vector<CacheEvent>,
}

impl WatcherBody {
    /// Events the client has not read yet, after draining at its rate until `now`.
    pub fn drain(&mut self, now: Nanos) {
        if let ReadRate::PerSecond(r) = self.read_rate {
            let elapsed = now.saturating_sub(self.drained_at_ns) as u128;
            let read = (elapsed * r as u128 / 1_000_000_000) as u64;
            if read > 0 {
                self.buffered = self.buffered.saturating_sub(read);
                // Keep the fractional remainder: advance time only by what was read.
                self.drained_at_ns += (read as u128 * 1_000_000_000 / r.max(1) as u128) as Nanos;
            }
            if self.buffered == 0 {
                self.drained_at_ns = now;
            }
        } else {
            self.buffered = 0;
            self.drained_at_ns = now;
        }
    }

    /// Nanoseconds until the client has read enough to free `slots` slots.
    pub fn time_to_free(&self, slots: u64) -> Option<Nanos> {
        match self.read_rate {
            ReadRate::Instant => Some(0),
            ReadRate::PerSecond(0) => None,
            ReadRate::PerSecond(r) => Some((slots as u128 * 1_000_000_000 / r as u128) as Nanos),
        }
    }

    /// Hashes the whole watcher, field by field in the order a watcher's fields had before they
    /// were laid out for dispatch (what the derive gave then), so that explorer states hash,
    /// and the explorer's bounded searches visit, exactly as before.
    fn hash_with_rv_sent<H: Hasher>(&self, rv_sent: i64, h: &mut H) {
        let WatcherBody {
            client,
            selector,
            read_rate,
            replay,
            bookmarks,
            scope,
            bookmark_floor,
            deadline_ns,
            next_bookmark_ns,
            buffered,
            drained_at_ns,
            capacity,
            chan,
            shadow_chans,
            held,
        } = self;
        client.hash(h);
        scope.hash(h);
        selector.hash(h);
        rv_sent.hash(h);
        bookmark_floor.hash(h);
        bookmarks.hash(h);
        deadline_ns.hash(h);
        next_bookmark_ns.hash(h);
        read_rate.hash(h);
        buffered.hash(h);
        drained_at_ns.hash(h);
        capacity.hash(h);
        chan.hash(h);
        shadow_chans.hash(h);
        replay.hash(h);
        held.hash(h);
    }

    /// The lane this body stands beside, with `rv_sent` as its last RV sent.
    fn lane(&self, rv_sent: i64) -> DispatchLane {
        let client = match self.client {
            Actor::Client(n) => Some(n),
            _ => None,
        };
        let fast = client.is_some()
            && self.read_rate == ReadRate::Instant
            && self.replay.is_none()
            && self.selector.is_everything();
        DispatchLane {
            rv_sent,
            client: client.unwrap_or(0),
            fast,
            journal: NO_JOURNAL,
        }
    }
}

/// A whole watcher, checked out of the table for a slow path: its body and the last RV it was
/// sent (`cacheWatcher`'s `resourceVersion` as the dispatcher sees it: events at or below it are
/// not sent again). Reads and changes the body's fields through `Deref`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CacheWatcher {
    /// The RV of the last event or bookmark sent.
    pub rv_sent: i64,
    /// Everything else.
    pub body: WatcherBody,
}

impl std::ops::Deref for CacheWatcher {
    type Target = WatcherBody;
    fn deref(&self) -> &WatcherBody {
        &self.body
    }
}

impl std::ops::DerefMut for CacheWatcher {
    fn deref_mut(&mut self) -> &mut WatcherBody {
        &mut self.body
    }
}

impl Hash for CacheWatcher {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.body.hash_with_rv_sent(self.rv_sent, h);
    }
}

/// What dispatch reads of a watcher for each event (see the module doc): 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DispatchLane {
    /// The last RV sent: the watcher's only copy, unless it is a member of a run journal
    /// (`run_journal.rs`), whose RV is then its own.
    pub rv_sent: i64,
    /// `n` of the reading client, `Actor::Client(n)` (0 unless `fast`).
    pub client: u32,
    /// The watcher takes every event of its scope as it is, at once: a client reflector with no
    /// selector, an instant reader, no interval being replayed.
    pub fast: bool,
    /// The slot of the run journal this watcher is a member of, or [`NO_JOURNAL`]. Set only
    /// by a dispatch pass over its run ([`WatcherTable::join`]); any other access to the
    /// watcher through the table makes it leave first.
    journal: u16,
}

impl DispatchLane {
    /// The reading client (only meaningful when `fast`).
    pub fn client(&self) -> Actor {
        Actor::Client(self.client)
    }
}

/// The watchers by connection, each as a lane and a body (see the module doc), and the run
/// journals their lanes may belong to.
#[derive(Clone, Default)]
pub(super) struct WatcherTable {
    map: DenseIdMap<WatcherBody, DispatchLane>,
    journals: Journals,
}

/// The last RV sent of the watcher whose lane is `lane`: the lane's own, or its journal's if it
/// is a member (the one place membership is folded in).
fn folded_rv_sent(journals: &Journals, lane: &DispatchLane) -> i64 {
    if lane.journal == NO_JOURNAL {
        lane.rv_sent
    } else {
        journals.rv(lane.journal)
    }
}

/// A body to change in place; its lane is re-derived when this is dropped.
pub(super) struct WatcherMut<'a> {
    lane: &'a mut DispatchLane,
    body: &'a mut WatcherBody,
}

impl WatcherMut<'_> {
    /// The last RV sent, to read or change.
    pub fn rv_sent(&mut self) -> &mut i64 {
        &mut self.lane.rv_sent
    }
}

impl std::ops::Deref for WatcherMut<'_> {
    type Target = WatcherBody;
    fn deref(&self) -> &WatcherBody {
        self.body
    }
}

impl std::ops::DerefMut for WatcherMut<'_> {
    fn deref_mut(&mut self) -> &mut WatcherBody {
        self.body
    }
}

impl Drop for WatcherMut<'_> {
    fn drop(&mut self) {
        *self.lane = self.body.lane(self.lane.rv_sent);
    }
}

impl WatcherTable {
    /// Number of watchers.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True if `conn` is a watcher.
    pub fn contains_key(&self, conn: ConnId) -> bool {
        self.map.contains_key(conn)
    }

    /// The watchers' connections, in connection order.
    pub fn sorted_ids(&self) -> Vec<ConnId> {
        self.map.sorted_ids()
    }

    /// The body of `conn`'s watcher (everything but its last RV sent).
    pub fn get(&self, conn: ConnId) -> Option<&WatcherBody> {
        self.map.get(conn)
    }

    /// A copy of `conn`'s whole watcher, for a slow path to change and [`WatcherTable::insert`]
    /// back.
    pub fn checkout(&self, conn: ConnId) -> Option<CacheWatcher> {
        self.map
            .get_with_lane(conn)
            .map(|(lane, body)| CacheWatcher {
                rv_sent: self.rv_sent_of(lane),
                body: body.clone(),
            })
    }

    /// The last RV sent of the watcher whose lane is `lane` (its journal's, if it is a member).
    fn rv_sent_of(&self, lane: &DispatchLane) -> i64 {
        folded_rv_sent(&self.journals, lane)
    }

    /// `conn`, whose lane is `lane`, leaves its journal if it is a member: the lane takes the
    /// journal's RV.
    #[inline(always)]
    fn leave(journals: &mut Journals, conn: ConnId, lane: &mut DispatchLane) {
        if lane.journal != NO_JOURNAL {
            lane.rv_sent = journals.leave(lane.journal, conn);
            lane.journal = NO_JOURNAL;
        }
    }

    /// Sets `conn`'s watcher, its lane derived from it (a member it replaces leaves its
    /// journal).
    pub fn insert(&mut self, conn: ConnId, w: CacheWatcher) {
        let lane = w.body.lane(w.rv_sent);
        if let Some((_, mut old)) = self.map.insert_with_lane(conn, w.body, lane) {
            Self::leave(&mut self.journals, conn, &mut old);
        }
    }

    /// Removes `conn`'s watcher (it leaves its journal); returns its body.
    pub fn remove(&mut self, conn: ConnId) -> Option<WatcherBody> {
        self.map.remove_with_lane(conn).map(|(body, mut lane)| {
            Self::leave(&mut self.journals, conn, &mut lane);
            body
        })
    }

    /// `conn`'s watcher to change in place (it leaves its journal; its lane follows the body
    /// when the guard is dropped).
    pub fn get_mut(&mut self, conn: ConnId) -> Option<WatcherMut<'_>> {
        self.map.get_mut_with_lane(conn).map(|(lane, body)| {
            Self::leave(&mut self.journals, conn, lane);
            WatcherMut { lane, body }
        })
    }

    /// `conn`'s lane, to change its last RV sent, and its body to read (dispatch: the body is
    /// read only when the lane is not `fast`). A member leaves its journal first.
    #[inline(always)]
    pub fn dispatch_view(&mut self, conn: ConnId) -> Option<(&mut DispatchLane, &WatcherBody)> {
        self.map.lane_mut_and_value(conn).map(|(lane, body)| {
            Self::leave(&mut self.journals, conn, lane);
            (lane, body)
        })
    }

    /// The journal `held` names if its run still owns it, else a new one (see
    /// [`Journals::open`]).
    pub fn open_journal(&mut self, held: Option<JournalRef>) -> Option<JournalRef> {
        self.journals.open(held)
    }

    /// The journal `r`, taken for a dispatch pass over its run.
    pub fn take_journal(&mut self, r: JournalRef) -> JournalPass {
        self.journals.take(r)
    }

    /// Puts back the journal `r` after its pass, with `rv` the last RV sent to its members.
    pub fn put_back_journal(&mut self, r: JournalRef, pass: JournalPass, rv: i64) {
        self.journals.put_back(r, pass, rv);
    }

    /// Makes the watcher whose lane is `lane` (just given by [`WatcherTable::dispatch_view`]: a
    /// fast lane its run's pass sent an event to) a member of the journal `r`.
    #[inline(always)]
    pub fn join(lane: &mut DispatchLane, r: JournalRef) {
        debug_assert!(lane.fast && lane.journal == NO_JOURNAL);
        lane.journal = r.slot();
    }

    /// Hints that `conn`'s slot number will soon be read (a fan-out's first prefetch stage).
    #[inline(always)]
    pub fn prefetch_slot(&self, conn: ConnId) {
        self.map.prefetch_slot(conn);
    }

    /// Hints that `conn`'s lane will soon be read (the second stage).
    #[inline(always)]
    pub fn prefetch_lane(&self, conn: ConnId) {
        self.map.prefetch_lane(conn);
    }

    /// The bodies in no meaningful order (for order-free reads).
    pub fn iter_unordered(&self) -> impl Iterator<Item = (ConnId, &WatcherBody)> + '_ {
        self.map.iter_unordered()
    }

    /// Applies `change` to every body, in no meaningful order (a change made to each watcher
    /// alike); every lane is re-derived after.
    pub fn change_every_body(&mut self, mut change: impl FnMut(&mut WatcherBody)) {
        let journals = &self.journals;
        for (lane, body) in self.map.iter_mut_unordered_with_lanes() {
            change(body);
            *lane = body.lane(folded_rv_sent(journals, lane));
        }
        // Every member has left, with its journal's RV.
        self.journals.dissolve();
    }

    /// Every whole watcher, in connection order, taken out of the table.
    pub fn into_sorted(self) -> Vec<(ConnId, CacheWatcher)> {
        let journals = self.journals;
        self.map
            .into_sorted_with_lanes()
            .into_iter()
            .map(|(conn, lane, body)| {
                let rv_sent = folded_rv_sent(&journals, &lane);
                (conn, CacheWatcher { rv_sent, body })
            })
            .collect()
    }
}

impl FromIterator<(ConnId, CacheWatcher)> for WatcherTable {
    fn from_iter<I: IntoIterator<Item = (ConnId, CacheWatcher)>>(iter: I) -> Self {
        let mut t = WatcherTable::default();
        for (conn, w) in iter {
            t.insert(conn, w);
        }
        t
    }
}

/// Equal when the same connections have equal whole watchers (lanes are derived from bodies but
/// for the last RV sent, which is compared).
impl PartialEq for WatcherTable {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.map.iter_unordered().all(|(conn, body)| {
                match (self.map.get_with_lane(conn), other.map.get_with_lane(conn)) {
                    (Some((a, _)), Some((b, other_body))) => {
                        self.rv_sent_of(a) == other.rv_sent_of(b) && body == other_body
                    }
                    _ => false,
                }
            })
    }
}

impl Eq for WatcherTable {}

/// Hashed as the ordered map of whole watchers (each `(conn, watcher)` in connection order).
impl Hash for WatcherTable {
    fn hash<H: Hasher>(&self, h: &mut H) {
        for (conn, lane, body) in self.map.sorted_with_lanes() {
            conn.hash(h);
            body.hash_with_rv_sent(self.rv_sent_of(lane), h);
        }
    }
}

/// Printed as the map of whole watchers, in connection order.
impl std::fmt::Debug for WatcherTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.map
                    .sorted_with_lanes()
                    .into_iter()
                    .map(|(conn, lane, body)| {
                        (
                            conn,
                            CacheWatcher {
                                rv_sent: self.rv_sent_of(lane),
                                body: body.clone(),
                            },
                        )
                    }),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::std_hash_of as hash_of;
    use crate::proto::etcd::Key;
    use crate::proto::selector::LabelTable;
    use proptest::prelude::*;

    /// A watcher of `client` (an apiserver's own client when `client` is 9), with a label
    /// selector or none, reading at once or at a rate, replaying an interval or not.
    fn watcher(rv_sent: i64, client: u32, selector: bool, rate: u32, replay: bool) -> CacheWatcher {
        let selector = if selector {
            Selector::compile(Some("app=a"), None, &LabelTable::default()).expect("a selector")
        } else {
            Selector::everything()
        };
        CacheWatcher {
            rv_sent,
            body: WatcherBody {
                client: if client == 9 {
                    Actor::Script
                } else {
                    Actor::Client(client)
                },
                selector,
                read_rate: if rate == 0 {
                    ReadRate::Instant
                } else {
                    ReadRate::PerSecond(rate)
                },
                replay: replay.then_some(Replay {
                    next_index: 1,
                    end_index: 5,
                }),
                bookmarks: client.is_multiple_of(2),
                scope: KeyRange::Prefix(Key::new(&format!("/registry/pods/ns{client}/"))),
                bookmark_floor: rv_sent / 2,
                deadline_ns: 600,
                next_bookmark_ns: None,
                buffered: 0,
                drained_at_ns: 0,
                capacity: 3,
                chan: 1,
                shadow_chans: vec![],
                held: Vector::new(),
            },
        }
    }

    #[test]
    fn only_a_client_with_no_selector_reading_at_once_and_not_replaying_is_fast() {
        let mut t = WatcherTable::default();
        t.insert(1, watcher(5, 3, false, 0, false));
        t.insert(2, watcher(5, 3, true, 0, false));
        t.insert(3, watcher(5, 3, false, 10, false));
        t.insert(4, watcher(5, 3, false, 0, true));
        t.insert(5, watcher(5, 9, false, 0, false));
        let fast: Vec<bool> = (1..=5)
            .map(|c| t.dispatch_view(c).map(|(l, _)| l.fast).expect("present"))
            .collect();
        assert_eq!(fast, vec![true, false, false, false, false]);
        assert_eq!(
            t.dispatch_view(1).map(|(l, _)| l.client()),
            Some(Actor::Client(3))
        );
    }

    #[test]
    fn a_change_in_place_re_derives_the_lane_and_keeps_the_rv_sent() {
        let mut t = WatcherTable::default();
        t.insert(7, watcher(5, 2, false, 0, true));
        {
            let mut w = t.get_mut(7).expect("present");
            w.replay = None;
            *w.rv_sent() = 8;
        }
        let (lane, _) = t.dispatch_view(7).expect("present");
        assert!(lane.fast, "the interval ended: fast again");
        assert_eq!(lane.rv_sent, 8);
        assert_eq!(t.checkout(7).map(|w| w.rv_sent), Some(8));
    }

    #[test]
    fn hashed_and_compared_as_the_ordered_map_of_whole_watchers() {
        let mut t = WatcherTable::default();
        let mut reference: imbl::OrdMap<ConnId, CacheWatcher> = imbl::OrdMap::new();
        for (conn, rv) in [(9u64, 4i64), (3, 7), (12, 1)] {
            t.insert(conn, watcher(rv, conn as u32 % 4, false, 0, false));
            reference.insert(conn, watcher(rv, conn as u32 % 4, false, 0, false));
        }
        assert_eq!(hash_of(&t), hash_of(&reference));
        let other: WatcherTable = reference.clone().into_iter().collect();
        assert_eq!(t, other);
        if let Some((lane, _)) = t.dispatch_view(3) {
            lane.rv_sent = 8;
        }
        assert_ne!(t, other, "the RV sent is compared");
        assert_ne!(hash_of(&t), hash_of(&reference), "and hashed");
    }

    /// One change to the table.
    #[derive(Debug, Clone)]
    enum Op {
        Insert {
            conn: u64,
            client: u32,
            selector: bool,
            rate: u32,
            replay: bool,
            rv: i64,
        },
        Remove(u64),
        Send {
            conn: u64,
            rv: i64,
        },
        EndReplay(u64),
        Bookmark {
            conn: u64,
            rv: i64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u64..12, 0u32..10, any::<bool>(), prop_oneof![Just(0u32), Just(5u32)],
                  any::<bool>(), 0i64..50)
                .prop_map(|(conn, client, selector, rate, replay, rv)| Op::Insert {
                    conn, client, selector, rate, replay, rv,
                }),
            1 => (0u64..12).prop_map(Op::Remove),
            4 => (0u64..12, 0i64..50).prop_map(|(conn, rv)| Op::Send { conn, rv }),
            1 => (0u64..12).prop_map(Op::EndReplay),
            1 => (0u64..12, 0i64..50).prop_map(|(conn, rv)| Op::Bookmark { conn, rv }),
        ]
    }

    proptest! {
        #![proptest_config(crate::kernel::proptest_kept("tests/watcher_table.proptest-regressions"))]

        /// Through any sequence of inserts, removals, sends through lanes, check-outs and
        /// changes in place, the table holds exactly the watchers an ordered map of whole
        /// watchers does (compared, hashed and listed alike), and every lane is the one its
        /// body gives.
        #[test]
        fn the_table_is_the_map_of_whole_watchers_with_lanes_derived(
            ops in prop::collection::vec(op(), 0..120),
        ) {
            let mut t = WatcherTable::default();
            let mut reference: imbl::OrdMap<ConnId, CacheWatcher> = imbl::OrdMap::new();
            for op in ops {
                match op {
                    Op::Insert { conn, client, selector, rate, replay, rv } => {
                        let w = watcher(rv, client, selector, rate, replay);
                        t.insert(conn, w.clone());
                        reference.insert(conn, w);
                    }
                    Op::Remove(conn) => {
                        prop_assert_eq!(
                            t.remove(conn),
                            reference.remove(&conn).map(|w| w.body)
                        );
                    }
                    Op::Send { conn, rv } => {
                        // The dispatch loop: a fast lane takes the event without its body.
                        if let Some((lane, body)) = t.dispatch_view(conn) {
                            let w = reference.get_mut(&conn).expect("in both");
                            prop_assert_eq!(lane.rv_sent, w.rv_sent);
                            if lane.fast {
                                prop_assert_eq!(lane.client(), w.client);
                            }
                            if rv > lane.rv_sent {
                                lane.rv_sent = rv;
                                w.rv_sent = rv;
                            }
                            prop_assert_eq!(body, &w.body);
                        }
                    }
                    Op::EndReplay(conn) => {
                        // A slow path: check out, change, put back.
                        if let Some(mut w) = t.checkout(conn) {
                            w.replay = None;
                            w.rv_sent += 1;
                            t.insert(conn, w.clone());
                            reference.insert(conn, w);
                        }
                    }
                    Op::Bookmark { conn, rv } => {
                        if let Some(mut w) = t.get_mut(conn) {
                            let r = reference.get_mut(&conn).expect("in both");
                            *w.rv_sent() = (*w.rv_sent()).max(rv);
                            r.rv_sent = r.rv_sent.max(rv);
                            w.replay = Some(Replay { next_index: 0, end_index: 1 });
                            r.replay = Some(Replay { next_index: 0, end_index: 1 });
                        }
                    }
                }
                prop_assert_eq!(t.len(), reference.len());
                for (conn, w) in &reference {
                    let (lane, body) = t.dispatch_view(*conn).expect("present");
                    prop_assert_eq!(*lane, w.body.lane(w.rv_sent));
                    prop_assert_eq!(body, &w.body);
                }
            }
            prop_assert_eq!(hash_of(&t), hash_of(&reference));
            let listed: Vec<(ConnId, CacheWatcher)> = reference.clone().into_iter().collect();
            prop_assert_eq!(&t.clone().into_sorted(), &listed);
            prop_assert!(t == listed.into_iter().collect::<WatcherTable>());
        }
    }
}
