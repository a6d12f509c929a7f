//! The stream table's journals (issue 16, step 20; membership in `kernel/journal.rs`): informers
//! whose watch streams take every event of a fan-out in order, from the same position, are
//! members of one journal, which judges each event once for all of them.
//!
//! A lane ([`super::StreamTable::lane_event`]) passes an event when it is the next change of the
//! stream's range after the lane's position (its cursor and last revision); the receiver's
//! time-travel record then moves up to the event's RV. Receivers whose lanes stand at the same
//! position of the same range, with their records at that RV, judge the next event alike. A
//! journal holds that shared position; a member's lane keeps what it held when it joined and
//! gets the journal's position back when the member is *released* (before anything reads or
//! changes its lane, its stream or its record), so the stream's checks are the ones the lane
//! would have made, event by event. An event that is not the journal's next in order releases
//! every member first: each is then judged on its own, as without journals.

use super::StreamTable;
use crate::kernel::journal::{JournalId, Journals, Membership};
use crate::monitor::changelog::{ChangeLog, RangeId};
use crate::proto::ConnId;
use crate::proto::etcd::Key;

/// Where a journal's members stand: the lane position they all hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Position {
    range: RangeId,
    cursor: u32,
    last_rev: i64,
}

impl Position {
    fn of(lane: &super::StreamLane) -> Self {
        Position {
            range: lane.range,
            cursor: lane.cursor,
            last_rev: lane.last_rev,
        }
    }
}

/// The table's journals: by journal its members' position (None until the first joins); a
/// member keeps nothing of its own (its lane holds where it joined).
pub(super) type TableJournals = Journals<Option<Position>, ()>;

/// True when `rev`/`k` is the next change of the range after position `p`.
fn next_in_order(p: Option<&Option<Position>>, log: &ChangeLog, rev: i64, k: &Key) -> bool {
    let Some(&Some(p)) = p else {
        return false;
    };
    rev > p.last_rev
        && (p.cursor as usize) < log.len(p.range)
        && log.at(p.range, p.cursor as usize) == (rev, k)
}

impl StreamTable {
    /// Who is a member of which of the table's journals (None before the first).
    #[inline(always)]
    pub fn membership(&self) -> Option<&Membership> {
        self.journals.membership()
    }

    /// The journal of a fan-out of event `rev`/`k`, from what its receivers showed (`found`: the
    /// journal of its first member receiver, and how many receivers are its members): that
    /// journal, kept (true) if every member is a receiver and the event is the journal's next
    /// in order; otherwise its members are released first (each is judged on its own) and it
    /// goes on with none; a new journal when no receiver is a member. The event is then taken
    /// with [`StreamTable::journal_take`], after the receivers that are not members took it.
    pub fn journal_for(
        &mut self,
        found: Option<(JournalId, u32)>,
        log: &ChangeLog,
        rev: i64,
        k: &Key,
    ) -> (JournalId, bool) {
        match found {
            Some((j, hits))
                if self.journals.complete(j, hits)
                    && next_in_order(self.journals.journal(j), log, rev, k) =>
            {
                (j, true)
            }
            Some((j, _)) => {
                self.release_all(j);
                *self.journals.journal_mut(j) = None;
                (j, false)
            }
            None => (self.journals.open(), false),
        }
    }

    /// Journal `j` takes the event at `rev` for all its members (a journal left with no member
    /// forgets its position: its next members set it).
    pub fn journal_take(&mut self, j: JournalId, rev: i64) {
        let members = self.journals.members(j);
        let p = self.journals.journal_mut(j);
        match p {
            Some(p) if members > 0 => {
                p.cursor += 1;
                p.last_rev = rev;
            }
            _ => *p = None,
        }
    }

    /// True when client `client` can join journal `j` on `conn`: its lane took the event at
    /// `rev` on `conn`, its record stands at `rev` (no time travel) and its lane at the
    /// journal's position (any, if the journal has none yet), and it is not a member.
    pub fn can_join(&self, client: u32, conn: ConnId, j: JournalId, rev: i64) -> bool {
        let Some(row) = self.rows.get(client as usize) else {
            return false;
        };
        let here = Position::of(&row.lane);
        row.lane.conn == conn
            && row.lane.last_rev == rev
            && row.rv.max_rv == rev
            && row.rv.data_max_rv == rev
            && !row.rv.travelling
            && !self.journals.has_member(client)
            && self
                .journals
                .journal(j)
                .is_some_and(|p| p.is_none_or(|p| p == here))
    }

    /// Client `client` joins journal `j` on `conn` (see [`StreamTable::can_join`]).
    pub fn join(&mut self, client: u32, conn: ConnId, j: JournalId) {
        let here = Position::of(&self.rows[client as usize].lane);
        self.journals.journal_mut(j).get_or_insert(here);
        self.journals.join(client, conn, j, ());
    }

    /// Releases client `client` from its journal, if a member: its lane takes the journal's
    /// position, and its time-travel record the journal's last revision (as each event would
    /// have moved them).
    pub(super) fn release(&mut self, client: u32) {
        let Some((p, ())) = self.journals.leave(client) else {
            return;
        };
        let p = p.expect("a journal with members has a position");
        let row = &mut self.rows.make_mut()[client as usize];
        row.lane.cursor = p.cursor;
        row.lane.last_rev = p.last_rev;
        row.rv.max_rv = row.rv.max_rv.max(p.last_rev);
        row.rv.data_max_rv = row.rv.data_max_rv.max(p.last_rev);
    }

    /// Releases every member of journal `j`.
    fn release_all(&mut self, j: JournalId) {
        for client in self.journals.members_among(j, self.armed.ids()) {
            self.release(client);
        }
    }
}
