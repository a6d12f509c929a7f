//! The fleet's journals (issue 16, step 20; membership in `kernel/journal.rs`): reflectors whose
//! lanes take every event of a fan-out alike are members of one journal, which takes each event
//! once for all of them.
//!
//! What a lane adds for an event is the same for every receiver: one event, the event's digest
//! change, its RV ([`FastEvent::digest_change`]). A journal keeps the running totals of what it
//! took; a member keeps the totals it joined at, and its share is the difference. A member's
//! lane stays armed (it holds what the lane took before the member joined), so everything that
//! folds lanes (reading or changing the reflector, settling) *releases* the member first: its
//! lane is folded, then its share, in the order it took them. Folding sums in another grouping
//! leaves the reflector as taking the events one by one does (every change is a wrapping sum or
//! the last RV), which the property test in `fleet.rs` checks with journals in play.

use super::Fleet;
use crate::client::reflector::FastEvent;
use crate::kernel::journal::{JournalId, Journals, Membership};
use crate::proto::ConnId;

/// What a journal took since it was opened (wrapping sums, as a lane's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Totals {
    events: u64,
    count: u64,
    sum: u64,
    last_rv: i64,
}

/// The fleet's journals: by journal its totals, by member the totals it joined at.
pub(super) type FleetJournals = Journals<Totals, Totals>;

impl Fleet {
    /// Who is a member of which of the fleet's journals (None before the first; the world's
    /// fan-out reads it, `world/apply.rs`).
    #[inline(always)]
    pub fn membership(&self) -> Option<&Membership> {
        self.journals.membership()
    }

    /// Reflectors that are journal members now (a figure for tests: 0 once settled).
    pub fn journal_members(&self) -> u64 {
        self.journals.total()
    }

    /// The journal of a fan-out, from what the fan-out's receivers showed (`found`: the journal
    /// of its first member receiver, and how many receivers are its members): that journal,
    /// kept (true) if every member is a receiver; otherwise its members are released first (they
    /// take this event one by one) and it goes on with none; a new journal when no receiver is a
    /// member. The event is then taken with [`Fleet::journal_take`], after the receivers that
    /// are not members took it.
    pub fn journal_for(&mut self, found: Option<(JournalId, u32)>) -> (JournalId, bool) {
        match found {
            Some((j, hits)) if self.journals.complete(j, hits) => (j, true),
            Some((j, _)) => {
                self.release_all(j);
                (j, false)
            }
            None => (self.journals.open(), false),
        }
    }

    /// Journal `j` takes event `ev` for all its members.
    pub fn journal_take(&mut self, j: JournalId, ev: &FastEvent) {
        let (count, sum) = ev.digest_change();
        let t = self.journals.journal_mut(j);
        t.events += 1;
        t.count = t.count.wrapping_add(i64::from(count) as u64);
        t.sum = t.sum.wrapping_add(sum);
        t.last_rv = ev.rv();
    }

    /// True when client `i` can join a journal on `conn`: its lane took the event at `rv` on
    /// `conn` (so it takes the next ones alike) and it is not a member.
    #[inline]
    pub fn can_join(&self, i: u32, conn: ConnId, rv: i64) -> bool {
        self.lanes
            .get(i as usize)
            .is_some_and(|l| l.conn == conn && l.last_rv == rv && l.events > 0)
            && !self.journals.has_member(i)
    }

    /// Client `i` joins journal `j` on `conn` (see [`Fleet::can_join`]).
    pub fn join(&mut self, i: u32, conn: ConnId, j: JournalId) {
        let now = self.journals.journal(j).copied().unwrap_or_default();
        self.journals.join(i, conn, j, now);
    }

    /// Releases client `i` from its journal, if a member: its lane, then its share of the
    /// journal, go into its reflector, and the lane is disarmed.
    pub(super) fn release(&mut self, i: u32) {
        let Some((now, then)) = self.journals.leave(i) else {
            return;
        };
        let idx = i as usize;
        let Some(r) = self.reflectors.get_mut(idx) else {
            return;
        };
        self.lanes.make_mut()[idx].fold_into(r);
        if now.events > then.events {
            r.take_lane_events(
                now.events - then.events,
                now.count.wrapping_sub(then.count),
                now.sum.wrapping_sub(then.sum),
                now.last_rv,
            );
        }
    }

    /// Releases every member of journal `j`.
    fn release_all(&mut self, j: JournalId) {
        for i in self.journals.members_among(j, self.armed.ids()) {
            self.release(i);
        }
    }
}
