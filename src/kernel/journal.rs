//! Journal membership (issue 16, step 20): which receivers of a fan-out are *members* of a
//! journal, a running record that takes each event once for all of them.
//!
//! A fan-out gives one event to thousands of receivers (every kube-proxy watches every
//! EndpointSlice), and most of them are in the same state: each adds the same thing to its lane
//! (one event, its digest change, its revision). A lane owner ([`crate::client::Fleet`],
//! [`crate::monitor::stream_table::StreamTable`]) keeps, per journal, what its members have
//! taken together since each joined, and a member's own value is the journal's difference since
//! it joined. This module holds who is a member of which journal, on which connection
//! ([`Membership`]: one word per receiver in one array, so a fan-out asks "is this receiver a
//! member?" of a few bytes, not of the receiver's scattered state; and the same by connection, two
//! bytes a connection id, which a fan-out in connection order reads front to back), and an
//! owner's journals as a
//! whole ([`Journals`]: the membership with a value per journal and per member, which each owner
//! gives its meaning).
//!
//! The rule that keeps a journal exact: it takes an event only when every one of its members is
//! among the event's receivers, on the connection it joined on ([`Membership::complete`]); a
//! member that is to take an event any other way leaves first (its owner materialises its
//! value), and a receiver joins only after taking the event itself, in the journal's state.
//! The owners decide the state; this module counts.

/// A journal's number (small: a lane owner has a few, one per fan-out source).
pub type JournalId = u32;

/// A connection id fits below this many bits of a member word.
const CONN_BITS: u32 = 48;
const CONN_MASK: u64 = (1 << CONN_BITS) - 1;

/// Journals a member word can name (the bits above the connection's, less the empty word).
const MAX_JOURNALS: usize = (1 << (64 - CONN_BITS)) - 1;

/// Who is a member of which journal (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct Membership {
    /// By receiver: 0 (none), or `(journal + 1) << CONN_BITS | connection`.
    words: Vec<u64>,
    /// By connection id: 0, or `journal + 1` of the receiver that joined on it. A fan-out's
    /// targets come in connection order, so a survey reads this front to back (the receivers'
    /// words are scattered as their ids are: step 25 of issue 16). A connection has one
    /// receiver (its client end), so the connection names the member.
    by_conn: Vec<u16>,
    /// By journal: its members.
    members: Vec<u32>,
    /// Members in all journals.
    total: u64,
}

impl Membership {
    #[inline(always)]
    fn word(j: JournalId, conn: u64) -> u64 {
        (u64::from(j) + 1) << CONN_BITS | conn
    }

    /// True when receiver `id` is a member of journal `j` on connection `conn` (the tests' form
    /// of [`Membership::is_member_on`], by receiver).
    #[cfg(test)]
    pub fn is_member(&self, id: u32, conn: u64, j: JournalId) -> bool {
        self.words.get(id as usize) == Some(&Self::word(j, conn))
    }

    /// True when the receiver on connection `conn` is a member of journal `j` on it (the answer
    /// its word gives for that connection, read by connection).
    #[inline(always)]
    pub fn is_member_on(&self, conn: u64, j: JournalId) -> bool {
        usize::try_from(conn)
            .ok()
            .and_then(|c| self.by_conn.get(c))
            .is_some_and(|&m| u32::from(m) == j + 1)
    }

    /// The journal the receiver on connection `conn` is a member of on it, if any.
    #[inline(always)]
    pub fn journal_on_conn(&self, conn: u64) -> Option<JournalId> {
        let c = usize::try_from(conn).ok()?;
        match self.by_conn.get(c) {
            Some(&m) if m != 0 => Some(JournalId::from(m) - 1),
            _ => None,
        }
    }

    /// The journal receiver `id` is a member of, if any.
    #[inline(always)]
    pub fn journal_of(&self, id: u32) -> Option<JournalId> {
        match self.words.get(id as usize) {
            Some(&w) if w != 0 => Some((w >> CONN_BITS) as JournalId - 1),
            _ => None,
        }
    }

    /// The journal receiver `id` is a member of on connection `conn`, if any (the tests' form
    /// of [`Membership::journal_on_conn`], by receiver).
    #[cfg(test)]
    pub fn journal_on(&self, id: u32, conn: u64) -> Option<JournalId> {
        match self.words.get(id as usize) {
            Some(&w) if w != 0 && w & CONN_MASK == conn => Some((w >> CONN_BITS) as JournalId - 1),
            _ => None,
        }
    }

    /// What a fan-out to `receivers` (each `(id, connection)`) finds: the journal of the first
    /// receiver that is a member on its connection, and how many receivers are its members on
    /// theirs; None when no receiver is a member. (The world counts for two memberships in one
    /// pass, `world/apply.rs`; this one-membership form states the rule for the tests.)
    #[cfg(test)]
    pub fn survey(
        &self,
        receivers: impl Iterator<Item = (u32, u64)> + Clone,
    ) -> Option<(JournalId, u32)> {
        let j = receivers
            .clone()
            .find_map(|(id, conn)| self.journal_on(id, conn))?;
        let hits = receivers
            .filter(|&(id, conn)| self.is_member(id, conn, j))
            .count();
        Some((j, hits as u32))
    }

    /// True when a survey's count `hits` for journal `j` covers every member: each is among
    /// the receivers, on the connection it joined on.
    pub fn complete(&self, j: JournalId, hits: u32) -> bool {
        self.members(j) == hits
    }

    /// Members of journal `j`.
    pub fn members(&self, j: JournalId) -> u32 {
        self.members.get(j as usize).copied().unwrap_or(0)
    }

    /// Receivers that are members of a journal.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// True when no receiver is a member of any journal.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// A journal with no members, to start one (the lowest such number: journals are reused).
    pub fn open(&mut self) -> JournalId {
        match self.members.iter().position(|&m| m == 0) {
            Some(j) => j as JournalId,
            None => {
                assert!(
                    self.members.len() < MAX_JOURNALS,
                    "more than {MAX_JOURNALS} journals with members at once"
                );
                self.members.push(0);
                (self.members.len() - 1) as JournalId
            }
        }
    }

    /// Receiver `id` joins journal `j` on connection `conn`. Panics if it is a member already
    /// (a bug: it must leave first) or if `j` was never opened.
    pub fn join(&mut self, id: u32, conn: u64, j: JournalId) {
        let i = id as usize;
        if i >= self.words.len() {
            self.words.resize(i + 1, 0);
        }
        assert_eq!(self.words[i], 0, "receiver {id} joins while a member");
        assert!(conn <= CONN_MASK, "connection id {conn} above 2^48");
        self.words[i] = Self::word(j, conn);
        let c = conn as usize;
        if c >= self.by_conn.len() {
            self.by_conn.resize(c + 1, 0);
        }
        assert_eq!(self.by_conn[c], 0, "two members on connection {conn}");
        self.by_conn[c] = (j + 1) as u16;
        self.members[j as usize] += 1;
        self.total += 1;
    }

    /// Receiver `id` leaves its journal; returns the journal and the connection it had joined
    /// on (None if it was not a member).
    pub fn leave(&mut self, id: u32) -> Option<(JournalId, u64)> {
        let w = self.words.get_mut(id as usize)?;
        if *w == 0 {
            return None;
        }
        let j = (*w >> CONN_BITS) as JournalId - 1;
        let conn = *w & CONN_MASK;
        *w = 0;
        self.by_conn[conn as usize] = 0;
        self.members[j as usize] -= 1;
        self.total -= 1;
        Some((j, conn))
    }

    /// Forgets every journal (call once no receiver is a member).
    pub fn reset(&mut self) {
        assert!(
            self.is_empty(),
            "journals forgotten while they have members"
        );
        self.members.clear();
    }
}

/// A lane owner's journals ([`crate::client::Fleet`]'s, the stream table's): who is a member of
/// which ([`Membership`]), with `J` per journal (what it took, or where its members stand) and
/// `M` per member (what its journal held when it joined). Made on the first journal and boxed:
/// an owner that never has one (the explorer's) stays a pointer wide, and copies nothing.
#[derive(Debug, Clone)]
pub struct Journals<J, M> {
    book: Option<Box<Book<J, M>>>,
}

#[derive(Debug, Clone)]
struct Book<J, M> {
    members: Membership,
    /// By journal.
    per_journal: Vec<J>,
    /// By receiver (meaningful while it is a member).
    per_member: Vec<M>,
}

impl<J, M> Default for Journals<J, M> {
    fn default() -> Self {
        Journals { book: None }
    }
}

impl<J: Copy + Default, M: Copy + Default> Journals<J, M> {
    fn book_mut(&mut self) -> &mut Book<J, M> {
        self.book.get_or_insert_with(|| {
            Box::new(Book {
                members: Membership::default(),
                per_journal: Vec::new(),
                per_member: Vec::new(),
            })
        })
    }

    /// Who is a member of which journal (None before the first journal).
    #[inline(always)]
    pub fn membership(&self) -> Option<&Membership> {
        self.book.as_deref().map(|b| &b.members)
    }

    /// True when receiver `id` is a member of a journal.
    #[inline(always)]
    pub fn has_member(&self, id: u32) -> bool {
        self.book
            .as_ref()
            .is_some_and(|b| b.members.journal_of(id).is_some())
    }

    /// True when no receiver is a member.
    pub fn is_empty(&self) -> bool {
        self.membership().is_none_or(Membership::is_empty)
    }

    /// Receivers that are members of a journal.
    pub fn total(&self) -> u64 {
        self.membership().map_or(0, Membership::total)
    }

    /// Opens a journal with no members (see [`Membership::open`]), its `J` the default.
    pub fn open(&mut self) -> JournalId {
        let b = self.book_mut();
        let j = b.members.open();
        let n = j as usize;
        if n >= b.per_journal.len() {
            b.per_journal.resize(n + 1, J::default());
        }
        b.per_journal[n] = J::default();
        j
    }

    /// See [`Membership::complete`].
    pub fn complete(&self, j: JournalId, hits: u32) -> bool {
        self.membership().is_some_and(|m| m.complete(j, hits))
    }

    /// Members of journal `j`.
    pub fn members(&self, j: JournalId) -> u32 {
        self.membership().map_or(0, |m| m.members(j))
    }

    /// Journal `j`'s `J` (None if it was never opened).
    pub fn journal(&self, j: JournalId) -> Option<&J> {
        self.book.as_ref()?.per_journal.get(j as usize)
    }

    /// Journal `j`'s `J`, to change. Panics if it was never opened.
    pub fn journal_mut(&mut self, j: JournalId) -> &mut J {
        &mut self.book_mut().per_journal[j as usize]
    }

    /// Receiver `id` joins journal `j` on `conn`, keeping `member` (see [`Membership::join`]).
    pub fn join(&mut self, id: u32, conn: u64, j: JournalId, member: M) {
        let b = self.book_mut();
        let i = id as usize;
        if i >= b.per_member.len() {
            b.per_member.resize(i + 1, M::default());
        }
        b.per_member[i] = member;
        b.members.join(id, conn, j);
    }

    /// Receiver `id` leaves its journal: its journal's `J` now and the `M` it joined with
    /// (None if it was not a member).
    pub fn leave(&mut self, id: u32) -> Option<(J, M)> {
        let b = self.book.as_mut()?;
        let (j, _) = b.members.leave(id)?;
        Some((b.per_journal[j as usize], b.per_member[id as usize]))
    }

    /// Those of `ids` that are members of journal `j`, in order (to release them all).
    pub fn members_among(&self, j: JournalId, ids: &[u32]) -> Vec<u32> {
        let Some(m) = self.membership() else {
            return Vec::new();
        };
        ids.iter()
            .copied()
            .filter(|&id| m.journal_of(id) == Some(j))
            .collect()
    }

    /// Forgets every journal (see [`Membership::reset`]).
    pub fn reset(&mut self) {
        if let Some(b) = &mut self.book {
            b.members.reset();
            b.per_journal.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_survey_finds_the_journal_and_counts_its_members_on_their_connections() {
        let mut m = Membership::default();
        let a = m.open();
        m.join(3, 30, a);
        m.join(5, 50, a);
        let b = m.open();
        assert_ne!(a, b, "a journal with members is not reused");
        m.join(7, 70, b);
        // Receiver 3 on another connection is not a member on it; 9 never joined.
        let fan_out = [(9, 90), (3, 31), (5, 50), (7, 70)];
        assert_eq!(m.survey(fan_out.iter().copied()), Some((a, 1)));
        assert_eq!(m.members(a), 2);
        let all = [(3, 30), (5, 50)];
        assert_eq!(m.survey(all.iter().copied()), Some((a, 2)));
        assert_eq!(m.survey([(9u32, 90u64)].iter().copied()), None);
    }

    #[test]
    fn leaving_frees_the_word_and_an_empty_journal_is_reused() {
        let mut m = Membership::default();
        let a = m.open();
        m.join(2, 20, a);
        assert!(m.is_member(2, 20, a));
        assert!(!m.is_member(2, 21, a));
        assert_eq!(m.journal_of(2), Some(a));
        assert!(m.is_member_on(20, a) && !m.is_member_on(21, a) && !m.is_member_on(99, a));
        assert_eq!(m.journal_on_conn(20), Some(a));
        assert_eq!(m.leave(2), Some((a, 20)));
        assert!(
            !m.is_member_on(20, a),
            "leaving clears the connection's mark"
        );
        assert_eq!(m.journal_on_conn(20), None);
        assert_eq!(m.leave(2), None);
        assert_eq!(m.journal_of(2), None);
        assert!(m.is_empty());
        assert_eq!(m.open(), a);
        m.reset();
        assert_eq!(m.members(a), 0);
    }

    #[test]
    fn marks_by_connection_agree_with_the_receivers_words() {
        let mut m = Membership::default();
        let a = m.open();
        m.join(4, 41, a);
        let b = m.open();
        assert_ne!(a, b);
        m.join(1, 12, b);
        m.join(9, 7, a);
        // A connection's receiver is the one that joined on it: read by connection or by the
        // receiver's word, the answer is the same; a connection nobody joined on is no member.
        for (id, conn) in [(4u32, 41u64), (1, 12), (9, 7)] {
            for j in [a, b] {
                assert_eq!(
                    m.is_member_on(conn, j),
                    m.is_member(id, conn, j),
                    "{id} on {conn}"
                );
            }
            assert_eq!(m.journal_on_conn(conn), m.journal_on(id, conn));
        }
        assert!(!m.is_member_on(3, a) && m.journal_on_conn(3).is_none());
        m.leave(1);
        m.join(1, 13, a);
        assert!(!m.is_member_on(12, b) && m.is_member_on(13, a));
    }

    #[test]
    #[should_panic(expected = "two members on connection")]
    fn two_members_on_one_connection_are_refused() {
        let mut m = Membership::default();
        let a = m.open();
        m.join(1, 10, a);
        m.join(2, 10, a);
    }

    #[test]
    #[should_panic(expected = "joins while a member")]
    fn joining_twice_is_refused() {
        let mut m = Membership::default();
        let a = m.open();
        m.join(1, 10, a);
        m.join(1, 11, a);
    }

    #[test]
    fn journals_keep_a_value_per_journal_and_per_member_and_reopen_at_the_default() {
        let mut js: Journals<u64, u64> = Journals::default();
        assert!(js.membership().is_none() && js.is_empty() && !js.has_member(4));
        let a = js.open();
        *js.journal_mut(a) = 10;
        js.join(4, 40, a, 7);
        js.join(6, 60, a, 8);
        *js.journal_mut(a) += 5;
        assert!(js.has_member(4) && js.complete(a, 2) && !js.complete(a, 1));
        assert_eq!(js.members_among(a, &[9, 6, 4, 5]), vec![6, 4]);
        assert_eq!(js.leave(6), Some((15, 8)));
        assert_eq!(js.leave(6), None);
        assert_eq!((js.total(), js.members(a)), (1, 1));
        assert_eq!(js.leave(4), Some((15, 7)));
        assert_eq!(js.open(), a, "an empty journal is reused");
        assert_eq!(js.journal(a), Some(&0), "and starts from the default");
        js.reset();
        assert_eq!(js.journal(a), None);
    }
}
