//! The cacher's run journals (issue 16): the fast watchers of one place of the watcher index
//! (every kube-proxy watching endpointslices, say) that were all sent the same events share one
//! record of the last RV sent to them, so that an event offered to thousands of them reads two
//! contiguous lists (the run's connections and the journal's members) instead of every
//! watcher's lane.
//!
//! A watcher is a *member* of its run's journal while nothing but the run's dispatch has
//! touched it since it joined: its lane then says which journal, and its last RV sent is the
//! journal's (the lane's own copy is stale until it leaves). It joins when a dispatch pass over
//! its run sends it an event through the fast lane path (a client with no selector, reading at
//! once, no interval replayed), so that its last RV sent is the event's, as every member's is.
//! It leaves, its lane given the journal's RV, on any other access to it ([`WatcherTable`]'s
//! per-watcher methods: a bookmark, a buffered offer, a removal, a change of its body), and the
//! journal notes it in `left` for the next pass to drop. So a member's last RV sent is always
//! what the dispatch loop without journals would have left in its lane, and the table folds it
//! in wherever a watcher is read whole (compared, hashed, printed, checked out): explorer states
//! compare and hash exactly as without journals. This models no Kubernetes behaviour of its own:
//! it is how the simulator keeps `cacheWatcher.resourceVersion` for many watchers at once.
//!
//! [`WatcherTable`]: super::watcher_table::WatcherTable

use crate::proto::ConnId;

/// A lane's mark of no journal.
pub(super) const NO_JOURNAL: u16 = u16::MAX;

/// A run's hold on its journal: the slot, and the slot's generation when the journal was
/// opened (a slot freed and reused since no longer belongs to the run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct JournalRef {
    slot: u16,
    generation: u32,
}

impl JournalRef {
    /// The slot, as a member's lane records it.
    pub fn slot(self) -> u16 {
        self.slot
    }
}

/// Where a run keeps its hold on its journal: set by the dispatch pass through a shared
/// reference to the run (the index is borrowed for the pass). An atomic, not a `Cell`, so that
/// states stay `Sync` for the explorer's threads; a state is changed by one thread at a time,
/// so relaxed order is all it needs. Derived data: a copy holds the same journal.
#[derive(Debug, Default)]
pub(super) struct JournalHold(std::sync::atomic::AtomicU64);

impl JournalHold {
    /// The journal held, if any.
    pub fn get(&self) -> Option<JournalRef> {
        let v = self.0.load(std::sync::atomic::Ordering::Relaxed);
        (v != 0).then_some(JournalRef {
            slot: (v & 0xffff) as u16,
            generation: (v >> 16) as u32,
        })
    }

    /// Holds `r` (or nothing).
    pub fn set(&self, r: Option<JournalRef>) {
        let v = r.map_or(0, |r| {
            1 << 48 | u64::from(r.generation) << 16 | u64::from(r.slot)
        });
        self.0.store(v, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Clone for JournalHold {
    fn clone(&self) -> Self {
        let copy = JournalHold::default();
        copy.set(self.get());
        copy
    }
}

/// One run's journal.
#[derive(Debug, Clone, Default)]
struct RunJournal {
    generation: u32,
    in_use: bool,
    /// The last RV sent to every member.
    rv: i64,
    /// The members as of the last pass, in connection order, each with its client's number
    /// (`Actor::Client(n)`); those in `left` have left since.
    members: Vec<(ConnId, u32)>,
    /// Members that left since the last pass, in the order they left (those still in are the
    /// others of `members`).
    left: Vec<ConnId>,
    /// An empty list kept for the next pass to fill (no allocation per pass).
    spare: Vec<(ConnId, u32)>,
}

/// One dispatch pass's hold on a journal ([`Journals::take`]): the journal's RV and members,
/// the members that left since (sorted), and the members it will have after the pass.
#[derive(Debug)]
pub(super) struct JournalPass {
    /// The last RV sent to every member before this pass.
    pub rv: i64,
    /// The members as of the last pass, in connection order.
    pub members: Vec<(ConnId, u32)>,
    /// Those of `members` that have left since, in connection order.
    pub left: Vec<ConnId>,
    /// The members after this pass, filled by the pass in connection order.
    pub next: Vec<(ConnId, u32)>,
}

/// Every journal of a cacher, in slots reused once freed.
#[derive(Debug, Clone, Default)]
pub(super) struct Journals {
    slots: Vec<RunJournal>,
    free: Vec<u16>,
}

impl Journals {
    /// The journal `held` names if the run still owns it, else a new empty one (`None` if every
    /// slot a lane can name is taken: the run is then dispatched without a journal).
    pub fn open(&mut self, held: Option<JournalRef>) -> Option<JournalRef> {
        if let Some(r) = held
            && self
                .slots
                .get(r.slot as usize)
                .is_some_and(|j| j.in_use && j.generation == r.generation)
        {
            return Some(r);
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None if self.slots.len() < NO_JOURNAL as usize => {
                self.slots.push(RunJournal::default());
                (self.slots.len() - 1) as u16
            }
            None => return None,
        };
        let j = &mut self.slots[slot as usize];
        j.in_use = true;
        j.rv = i64::MIN;
        Some(JournalRef {
            slot,
            generation: j.generation,
        })
    }

    /// The last RV sent to the members of the journal in `slot`.
    pub fn rv(&self, slot: u16) -> i64 {
        self.slots[slot as usize].rv
    }

    /// A member, `conn`, leaves the journal in `slot` (its lane takes the journal's RV, which
    /// this returns); the slot is freed when its last member leaves.
    pub fn leave(&mut self, slot: u16, conn: ConnId) -> i64 {
        let j = &mut self.slots[slot as usize];
        let rv = j.rv;
        j.left.push(conn);
        if j.left.len() == j.members.len() {
            self.release(slot);
        }
        rv
    }

    /// Every journal ends (each member's lane has been given its journal's RV).
    pub fn dissolve(&mut self) {
        for slot in 0..self.slots.len() {
            if self.slots[slot].in_use {
                self.release(slot as u16);
            }
        }
    }

    /// The journal `r` names, for a dispatch pass (see [`JournalPass`]).
    pub fn take(&mut self, r: JournalRef) -> JournalPass {
        let j = &mut self.slots[r.slot as usize];
        let mut left = std::mem::take(&mut j.left);
        left.sort_unstable();
        JournalPass {
            rv: j.rv,
            members: std::mem::take(&mut j.members),
            left,
            next: std::mem::take(&mut j.spare),
        }
    }

    /// Puts back the journal after a pass: its RV is `rv` and its members the pass's `next`;
    /// it is freed if it has none.
    pub fn put_back(&mut self, r: JournalRef, mut pass: JournalPass, rv: i64) {
        let j = &mut self.slots[r.slot as usize];
        pass.members.clear();
        pass.left.clear();
        j.rv = rv;
        j.members = pass.next;
        j.left = pass.left;
        j.spare = pass.members;
        if j.members.is_empty() {
            self.release(r.slot);
        }
    }

    fn release(&mut self, slot: u16) {
        let j = &mut self.slots[slot as usize];
        j.in_use = false;
        j.generation = j.generation.wrapping_add(1);
        j.members.clear();
        j.left.clear();
        self.free.push(slot);
    }
}
