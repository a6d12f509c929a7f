//! The reflectors of a run ([`Fleet`]), each beside a small *lane* that takes its watch events
//! during a fan-out.
//!
//! Why (issue 16): one cache event goes to thousands of informers (every kube-proxy watches every
//! EndpointSlice), and for most of them it changes four numbers: the watch's event count, the
//! informer's digest, the last synced RV and the events counter. Reaching them in the reflector
//! itself costs two or three cache lines per receiver, scattered over the heap; a lane is 32 bytes
//! in one contiguous array. A lane is *armed* for a watch connection once its reflector is seen
//! watching on it with a digest store; from then on the fan-out's events on that connection are
//! summed in the lane and folded into the reflector, in one go, before anything else reads or
//! changes it ([`Fleet::get_mut`], [`Fleet::settle`]). Every change a fold makes is a sum or the
//! last RV, so folding n events at once leaves the reflector exactly as taking them one by one
//! would have (this module's property test compares the two).
//!
//! A lane is a cache, not state: settling folds and disarms every lane, so a settled fleet
//! compares and hashes as its reflectors do (the explorer settles after every step; the
//! simulator's loop once, at its end). Reading a reflector whose lane is armed is a bug, caught
//! by an assertion ([`Fleet::get`]).

mod journal;

use super::Reflector;
use super::reflector::FastEvent;
use crate::kernel::armed_set::ArmedSet;
use crate::kernel::cow::{CowBox, CowSeq, CowVec};
use crate::kernel::prefetch::Stage;
use crate::proto::ConnId;

/// A lane not armed for any connection.
const UNARMED: ConnId = ConnId::MAX;

/// Cache lines of a reflector's box asked for ahead of a message to it
/// ([`Fleet::prefetch_reflector`]).
const REFLECTOR_LINES: usize = 4;

/// A lane folds itself once it took this many events (its count change then fits an `i16`).
const MAX_LANE_EVENTS: u32 = 1 << 14;

/// The events one reflector took through its lane since the last fold (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
struct Lane {
    /// The watch connection the lane takes events for ([`UNARMED`]: none).
    conn: ConnId,
    /// RV of the last event taken.
    last_rv: i64,
    /// Change of the digest's sum (wrapping).
    sum: u64,
    /// Events taken.
    events: u32,
    /// Change of the digest's object count.
    count: i16,
}

impl Lane {
    const IDLE: Lane = Lane {
        conn: UNARMED,
        last_rv: 0,
        sum: 0,
        events: 0,
        count: 0,
    };

    /// Folds the events taken into `r` and disarms the lane.
    fn fold_into(&mut self, r: &mut Reflector) {
        if self.events > 0 {
            r.take_lane_events(
                u64::from(self.events),
                i64::from(self.count) as u64,
                self.sum,
                self.last_rv,
            );
        }
        *self = Lane::IDLE;
    }
}

/// The reflectors of a run, in client order, with their lanes (see the module doc).
#[derive(Clone)]
pub struct Fleet {
    reflectors: CowVec<Reflector>,
    lanes: CowSeq<Lane>,
    /// The lanes armed since the last settle (every armed lane is listed).
    armed: ArmedSet,
    /// Reflectors whose lanes take a fan-out's events alike, as journal members
    /// (`fleet/journal.rs`); every member's lane is armed. Made on the first journal: the
    /// explorer's fleets have none, and their copies copy none.
    journals: journal::FleetJournals,
}

impl Fleet {
    /// A fleet of `reflectors`, every lane unarmed.
    pub fn new(reflectors: CowVec<Reflector>) -> Self {
        let lanes = (0..reflectors.len()).map(|_| Lane::IDLE).collect();
        Fleet {
            reflectors,
            lanes,
            armed: ArmedSet::default(),
            journals: journal::FleetJournals::default(),
        }
    }

    /// Number of reflectors.
    pub fn len(&self) -> usize {
        self.reflectors.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.reflectors.is_empty()
    }

    /// Reflector `i`. Panics if its lane is armed (a bug: call [`Fleet::settle`] or go through
    /// [`Fleet::get_mut`]).
    pub fn get(&self, i: usize) -> Option<&Reflector> {
        let r = self.reflectors.get(i)?;
        assert!(
            self.lanes[i].conn == UNARMED,
            "client {i} read while its lane is armed (settle the fleet first)"
        );
        Some(r)
    }

    /// Reflector `i`, to change: its lane's events are folded into it first, and the lane is
    /// disarmed (the change may end its watch).
    pub fn get_mut(&mut self, i: usize) -> Option<&mut Reflector> {
        if self.journals.has_member(i as u32) {
            self.release(i as u32);
        }
        let r = self.reflectors.get_mut(i)?;
        if self.lanes[i].conn != UNARMED {
            self.lanes.make_mut()[i].fold_into(r);
        }
        Some(r)
    }

    /// The reflectors in client order. Panics if a lane is armed (see [`Fleet::get`]).
    pub fn iter(&self) -> impl Iterator<Item = &Reflector> + '_ {
        assert!(
            self.armed.is_empty(),
            "reflectors read while lanes are armed (settle the fleet first)"
        );
        self.reflectors.iter().map(|b| &**b)
    }

    /// The reflectors in client order, to change (every lane folded and disarmed first).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Reflector> + '_ {
        self.settle();
        self.reflectors.iter_mut().map(|b| &mut **b)
    }

    /// The reflectors' boxes in client order (the explorer's symmetry reduction renames them).
    /// Panics if a lane is armed (see [`Fleet::get`]).
    pub fn boxes(&self) -> &CowVec<Reflector> {
        assert!(
            self.armed.is_empty(),
            "reflectors read while lanes are armed (settle the fleet first)"
        );
        &self.reflectors
    }

    /// Folds every lane's events into its reflector and disarms every lane.
    pub fn settle(&mut self) {
        if self.armed.is_empty() {
            return;
        }
        let armed = self.armed.take();
        for &i in &armed {
            if self.journals.has_member(i) {
                self.release(i);
                continue;
            }
            let lane = &mut self.lanes.make_mut()[i as usize];
            if lane.conn != UNARMED
                && let Some(r) = self.reflectors.get_mut(i as usize)
            {
                lane.fold_into(r);
            }
        }
        self.armed.give_back(armed);
        assert!(
            self.journals.is_empty(),
            "a journal member outside the armed lanes"
        );
        self.journals.reset();
    }

    /// The fan-out's fast path: reflector `i` takes event `ev` arriving on `conn` if it is
    /// watching on `conn` (through its lane when its store is a digest); false if the slow path
    /// must handle the event. The same outcome as [`Reflector::apply_fast`].
    #[inline]
    pub fn apply_fast(&mut self, i: u32, conn: ConnId, ev: &FastEvent) -> bool {
        if self.journals.has_member(i) {
            self.release(i);
        }
        let i = i as usize;
        let lanes = self.lanes.make_mut();
        let Some(lane) = lanes.get_mut(i) else {
            return false;
        };
        if lane.conn != conn || lane.events >= MAX_LANE_EVENTS {
            let Some(r) = self.reflectors.get_mut(i) else {
                return false;
            };
            lane.fold_into(r);
            if !r.takes_lane_events_on(conn) {
                return r.apply_fast(conn, ev);
            }
            lane.conn = conn;
            self.armed.mark(i as u32);
        }
        let (count, sum) = ev.digest_change();
        lane.events += 1;
        lane.count += count;
        lane.sum = lane.sum.wrapping_add(sum);
        lane.last_rv = ev.rv();
        true
    }

    /// Hints that reflector `i`'s lane will soon take an event (a fan-out's next receivers; see
    /// [`crate::kernel::prefetch`]).
    #[inline(always)]
    pub fn prefetch_lane(&self, i: u32) {
        if let Some(lane) = self.lanes.get(i as usize) {
            crate::kernel::prefetch::prefetch(lane);
        }
    }

    /// Hints (issue 16, `world/read_ahead.rs`) that reflector `i` will soon take a message: at
    /// [`Stage::Table`] its lane and its box's slot, at [`Stage::Entry`] (the slot come in) the
    /// box's first lines, where the reference count a write checks and the fields a message
    /// reads first sit.
    #[inline]
    pub fn prefetch_reflector(&self, i: u32, stage: Stage) {
        let i = i as usize;
        let Some(b) = self.reflectors.get(i) else {
            return;
        };
        match stage {
            Stage::Table => {
                crate::kernel::prefetch::prefetch(b);
                if let Some(lane) = self.lanes.get(i) {
                    crate::kernel::prefetch::prefetch(lane);
                }
            }
            Stage::Entry => b.prefetch_block(REFLECTOR_LINES),
        }
    }

    /// The apiserver reflector `i` talks to (a field no lane holds: readable at any time).
    pub fn server_of(&self, i: u32) -> Option<u32> {
        self.reflectors.get(i as usize).and_then(|r| r.server())
    }

    /// Relists of every reflector so far (counters no lane holds: readable at any time).
    pub fn relists(&self) -> u64 {
        self.reflectors.iter().map(|r| r.counters.relists()).sum()
    }

    /// The latest end of a client's disconnection (a field no lane holds: readable at any time).
    pub fn max_disconnected_until(&self) -> crate::kernel::Nanos {
        self.reflectors
            .iter()
            .map(|r| r.disconnected_until())
            .max()
            .unwrap_or(0)
    }
}

impl FromIterator<CowBox<Reflector>> for Fleet {
    fn from_iter<I: IntoIterator<Item = CowBox<Reflector>>>(iter: I) -> Self {
        Fleet::new(iter.into_iter().collect())
    }
}

impl std::ops::Index<usize> for Fleet {
    type Output = Reflector;
    /// See [`Fleet::get`].
    fn index(&self, i: usize) -> &Reflector {
        self.get(i).expect("a client index in range")
    }
}

impl std::ops::IndexMut<usize> for Fleet {
    /// See [`Fleet::get_mut`].
    fn index_mut(&mut self, i: usize) -> &mut Reflector {
        self.get_mut(i).expect("a client index in range")
    }
}

/// Equal when the reflectors are (lanes are a cache; both fleets must be settled).
impl PartialEq for Fleet {
    fn eq(&self, other: &Self) -> bool {
        self.boxes() == other.boxes()
    }
}

impl Eq for Fleet {}

/// Hashed as the reflectors are (the fleet must be settled).
impl std::hash::Hash for Fleet {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.boxes().hash(state);
    }
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.reflectors.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::api::{ApiWatchEvent, EventType};
    use crate::proto::etcd::Key;
    use proptest::prelude::*;

    /// Four clients: two with digest stores (lanes), one with a map store (never a lane), one
    /// more digest store.
    fn reflectors() -> CowVec<Reflector> {
        let text = r#"
name = "fleet"
[[resources]]
name = "pods"
count = 3
[[clients]]
name = "d"
resource = "pods"
count = 2
store = "digest"
[[clients]]
name = "m"
resource = "pods"
store = "map"
[[clients]]
name = "e"
resource = "pods"
store = "digest"
"#;
        let s = crate::scenario::load_str("fleet.toml", text, &[]).expect("a valid scenario");
        let mut all = crate::client::build(&s, 1);
        for (i, r) in all.iter_mut().enumerate() {
            r.watching_for_test(10 + i as u64);
        }
        all
    }

    /// One step of a sequence: an event to a client on a connection, a slow-path touch, a fold
    /// of every lane, or the client's next watch on a new connection.
    #[derive(Debug, Clone)]
    enum Op {
        Event {
            client: u32,
            /// 0: the client's watch; 1: its previous one; 2: one it never had.
            which_conn: u8,
            kind: u8,
            key: u8,
            prev_rv: i64,
        },
        Touch(u32),
        Settle,
        Rewatch(u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0u32..4, prop_oneof![8 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)], 0u8..3,
                  0u8..5, 0i64..40)
                .prop_map(|(client, which_conn, kind, key, prev_rv)| Op::Event {
                    client, which_conn, kind, key, prev_rv,
                }),
            1 => (0u32..4).prop_map(Op::Touch),
            1 => Just(Op::Settle),
            1 => (0u32..4).prop_map(Op::Rewatch),
        ]
    }

    proptest! {
        #![proptest_config(crate::kernel::proptest_kept("tests/fleet_lanes.proptest-regressions"))]

        /// Events taken through lanes, folded at any points, leave every reflector exactly as
        /// taking each event on the reflector itself ([`Reflector::apply_fast`], the reference)
        /// does, and each event is taken or refused alike.
        #[test]
        fn lanes_fold_to_what_the_reflectors_take_one_by_one(
            ops in prop::collection::vec(op(), 0..300),
        ) {
            let mut reference = reflectors();
            let mut fleet = Fleet::new(reflectors());
            // Each client's current and previous watch connections.
            let mut conns: Vec<(ConnId, ConnId)> = (0..4).map(|i| (10 + i, 0)).collect();
            let mut next_conn = 100;
            for (rv, op) in (1i64..).zip(ops) {
                match op {
                    Op::Event { client, which_conn, kind, key, prev_rv } => {
                        let i = client as usize;
                        let conn = [conns[i].0, conns[i].1, 1_000][which_conn as usize];
                        let kind = [EventType::Added, EventType::Modified, EventType::Deleted]
                            [kind as usize];
                        let ev = ApiWatchEvent::Object {
                            kind,
                            key: Key::new(&format!("/registry/pods/default/p{key}")),
                            rv,
                            bytes: 100,
                            prev_rv: prev_rv.min(rv - 1),
                        };
                        let fast = FastEvent::of(&ev).expect("an object event");
                        let want = reference[i].apply_fast(conn, &fast);
                        prop_assert_eq!(fleet.apply_fast(client, conn, &fast), want);
                    }
                    Op::Touch(client) => {
                        let i = client as usize;
                        let r = fleet.get_mut(i).expect("a client");
                        prop_assert!(*r == *reference[i]);
                    }
                    Op::Settle => fleet.settle(),
                    Op::Rewatch(client) => {
                        let i = client as usize;
                        next_conn += 1;
                        conns[i] = (next_conn, conns[i].0);
                        fleet.get_mut(i).expect("a client").watching_for_test(next_conn);
                        reference[i].watching_for_test(next_conn);
                    }
                }
            }
            fleet.settle();
            prop_assert!(*fleet.boxes() == reference);
        }
    }

    #[test]
    fn reading_a_client_whose_lane_holds_events_is_refused() {
        let mut fleet = Fleet::new(reflectors());
        let ev = ApiWatchEvent::Object {
            kind: EventType::Added,
            key: Key::new("/registry/pods/default/p0"),
            rv: 5,
            bytes: 100,
            prev_rv: 0,
        };
        let fast = FastEvent::of(&ev).expect("an object event");
        assert!(fleet.apply_fast(0, 10, &fast), "client 0 watches on 10");
        let read =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fleet.get(0).is_some()));
        assert!(read.is_err(), "an unsettled read must not pass");
        assert!(fleet.get(1).is_some(), "client 1's lane is empty");
        fleet.settle();
        assert_eq!(fleet.get(0).map(|r| r.last_sync_rv), Some(5));
        assert_eq!(fleet.get(0).map(|r| r.counters.events), Some(1));
    }
}
