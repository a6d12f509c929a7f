//! The watch streams the checker follows, by `(connection, etcd watch id)`: a table indexed by
//! connection id ([`IdTable`]), each connection's few streams in watch-id order, each stream
//! behind an `Arc` so that an explorer state's copy shares the streams it does not change.
//! Issue 16: a look-up per event and receiver is an index, not a walk down a search tree keyed
//! by tuples. Iteration order is `(connection, watch id)`, as an ordered map's.
//!
//! Each client also has a *lane* (32 bytes, in one array by client), which takes the in-order
//! events of the client's API watch during a fan-out without reaching the stream itself (two or
//! three cache lines per receiver, scattered over the heap). A lane is armed for a stream the first
//! time the fast path applies to it ([`Stream::lane_view`]) and holds the stream's cursor and
//! last revision from then on; they go back to the stream ([`Stream::take_lane`]) before anything
//! else reads or changes it ([`StreamTable::get_mut`], [`StreamTable::remove`],
//! [`StreamTable::settle`]). Reading a stream while a lane holds its position is a bug, caught
//! by an assertion.
//!
//! A client's lane shares its cache line with the client's time-travel record ([`ClientRv`]):
//! the fan-out reads both for every receiver, and one line a receiver instead of two halves what
//! the loop waits on (issue 16, step 18).

mod journal;

use triomphe::Arc;

use smallvec::{SmallVec, smallvec};

use super::changelog::{ChangeLog, RangeId};
use super::invariants::time_travel::ClientRv;
use super::invariants::watch::{API_STREAM, Stream, StreamKey};
use crate::kernel::armed_set::ArmedSet;
use crate::kernel::cow::CowSeq;
use crate::kernel::id_table::IdTable;
use crate::kernel::prefetch::Stage;
use crate::proto::ConnId;
use crate::proto::etcd::Key;

/// A connection's streams in watch-id order: the first one stored in the table's slot itself
/// (an API watch has one stream per connection), so a look-up follows one pointer, not two.
type ConnStreams = SmallVec<[(i64, Arc<Stream>); 1]>;

/// A lane not armed for any stream.
const UNARMED: ConnId = ConnId::MAX;

/// One client's lane (see the module doc): while armed for the API watch on `conn`, the stream's
/// cursor and last revision live here.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct StreamLane {
    /// The connection of the API watch the lane is armed for ([`UNARMED`]: none).
    conn: ConnId,
    /// The stream's last event revision.
    last_rev: i64,
    /// An event passes only above this too (the last bookmark; the revision before the start).
    floor: i64,
    /// The stream's cursor in its range's changes.
    cursor: u32,
    /// The stream's range.
    range: RangeId,
}

impl StreamLane {
    const IDLE: StreamLane = StreamLane {
        conn: UNARMED,
        last_rev: 0,
        floor: 0,
        cursor: 0,
        range: 0,
    };
}

/// One client's row (see the module doc): its lane, and its time-travel record in the same
/// cache line.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct ClientRow {
    lane: StreamLane,
    rv: ClientRv,
}

impl ClientRow {
    const IDLE: ClientRow = ClientRow {
        lane: StreamLane::IDLE,
        rv: ClientRv::NEW,
    };
}

const _: () = assert!(std::mem::size_of::<ClientRow>() == 64);

/// The open streams (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct StreamTable {
    by_conn: IdTable<ConnStreams>,
    /// By client; shared between explorer states until one changes (a row is 64-byte aligned,
    /// an allocation the explorer's copies would otherwise make for every state).
    rows: CowSeq<ClientRow>,
    /// The clients whose lane was armed since the last settle (every armed lane is listed).
    armed: ArmedSet,
    /// Informers whose lanes take a fan-out's events from the same position, as journal members
    /// (`stream_table/journal.rs`); every member's lane is armed. Made on the first journal:
    /// the explorer's tables have none, and their copies copy none.
    journals: journal::TableJournals,
}

impl StreamTable {
    /// The fan-out's fast path for client `client`'s API watch on `conn`: true if event
    /// `rev`/`k` is the next change of the stream's range, in order (then the lane moved past
    /// it, as [`Stream::next_in_order`] would have); false if the checker must judge the event
    /// on the stream itself.
    #[inline]
    pub fn lane_event(
        &mut self,
        client: u32,
        conn: ConnId,
        log: &ChangeLog,
        rev: i64,
        k: &Key,
    ) -> bool {
        let c = client as usize;
        if self.journals.has_member(client) {
            self.release(client);
        }
        if c >= self.rows.len() {
            self.rows.make_mut().resize(c + 1, ClientRow::IDLE);
        }
        if self.rows[c].lane.conn != conn {
            self.fold(client);
            let Some(view) = self
                .get(&(conn, API_STREAM))
                .filter(|s| s.client() == Some(client))
                .and_then(Stream::lane_view)
            else {
                return false;
            };
            let (range, cursor, last_rev, floor) = view;
            let Ok(cursor) = u32::try_from(cursor) else {
                return false;
            };
            self.rows.make_mut()[c].lane = StreamLane {
                conn,
                last_rev,
                floor,
                cursor,
                range,
            };
            self.armed.mark(client);
        }
        let lane = &mut self.rows.make_mut()[c].lane;
        if rev <= lane.last_rev || rev <= lane.floor {
            return false;
        }
        let at = lane.cursor as usize;
        if at >= log.len(lane.range) || lane.cursor == u32::MAX {
            return false;
        }
        let (r, x) = log.at(lane.range, at);
        if r != rev || x != k {
            return false;
        }
        lane.cursor += 1;
        lane.last_rev = rev;
        true
    }

    /// Hints (issue 16, `world/read_ahead.rs`) that informer `client`'s stream on `conn` will
    /// soon take an event: at [`Stage::Table`] the connection's slot and the client's lane, at
    /// [`Stage::Entry`] (the slot come in) the first lines of the stream the slot points to.
    #[inline]
    pub fn prefetch_stream(&self, conn: ConnId, client: u32, stage: Stage) {
        match stage {
            Stage::Table => {
                self.by_conn.prefetch_slot(conn);
                self.prefetch_lane(client);
            }
            Stage::Entry => {
                if let Some((_, stream)) = self.by_conn.get(conn).and_then(|l| l.first()) {
                    crate::kernel::prefetch::prefetch_whole(&**stream);
                }
            }
        }
    }

    /// Hints that client `client`'s row (its lane and its time-travel record) will soon be read
    /// (a fan-out's next receivers).
    #[inline(always)]
    pub fn prefetch_lane(&self, client: u32) {
        if let Some(row) = self.rows.get(client as usize) {
            crate::kernel::prefetch::prefetch(row);
        }
    }

    /// Sizes the rows for `clients` clients (each record new; lanes idle).
    pub fn set_clients(&mut self, clients: usize) {
        self.rows = std::iter::repeat_n(ClientRow::IDLE, clients).collect();
    }

    /// Client `client`'s time-travel record, to change.
    pub fn client_rv_mut(&mut self, client: u32) -> Option<&mut ClientRv> {
        if self.journals.has_member(client) {
            self.release(client);
        }
        self.rows.get_mut(client as usize).map(|r| &mut r.rv)
    }

    /// Gives client `client`'s lane's position back to its stream and disarms the lane.
    fn fold(&mut self, client: u32) {
        if self.journals.has_member(client) {
            self.release(client);
        }
        let Some(lane) = self.rows.get_mut(client as usize).map(|r| &mut r.lane) else {
            return;
        };
        let conn = std::mem::replace(&mut lane.conn, UNARMED);
        if conn == UNARMED {
            return;
        }
        let (cursor, last_rev) = (lane.cursor as usize, lane.last_rev);
        if let Some(list) = self.by_conn.get_mut(conn)
            && let Ok(i) = Self::position(list, API_STREAM)
        {
            Arc::make_mut(&mut list[i].1).take_lane(cursor, last_rev);
        }
    }

    /// Folds the lane of the stream `key` belongs to, if it is armed for it.
    fn fold_for(&mut self, key: &StreamKey) {
        if key.1 != API_STREAM {
            return;
        }
        if let Some(client) = self.get_unchecked(key).and_then(Stream::client)
            && self
                .rows
                .get(client as usize)
                .is_some_and(|r| r.lane.conn == key.0)
        {
            self.fold(client);
        }
    }

    /// Gives every armed lane's position back to its stream and disarms it.
    pub fn settle(&mut self) {
        if self.armed.is_empty() {
            return;
        }
        let armed = self.armed.take();
        for &client in &armed {
            self.fold(client);
        }
        self.armed.give_back(armed);
        assert!(
            self.journals.is_empty(),
            "a journal member outside the armed lanes"
        );
        self.journals.reset();
    }

    /// Every open stream and every client's time-travel record, as text (tests comparing two
    /// runs). Panics if a lane is armed.
    #[cfg(test)]
    pub(crate) fn records_for_tests(&self) -> String {
        let streams: Vec<String> = self.values().map(|s| format!("{s:?}")).collect();
        let records: Vec<String> = self.rows.iter().map(|r| format!("{:?}", r.rv)).collect();
        format!("{streams:?}\n{records:?}")
    }

    /// True when no lane is armed.
    pub fn settled(&self) -> bool {
        self.armed.is_empty()
    }

    fn get_unchecked(&self, key: &StreamKey) -> Option<&Stream> {
        let list = self.by_conn.get(key.0)?;
        let i = Self::position(list, key.1).ok()?;
        Some(&list[i].1)
    }

    fn position(list: &[(i64, Arc<Stream>)], watch_id: i64) -> Result<usize, usize> {
        list.binary_search_by_key(&watch_id, |(w, _)| *w)
    }

    /// The stream `key`. Panics if a lane holds its position (a bug: settle first).
    pub fn get(&self, key: &StreamKey) -> Option<&Stream> {
        let stream = self.get_unchecked(key)?;
        if let Some(client) = stream.client() {
            let c = client as usize;
            assert!(
                self.rows.get(c).is_none_or(|r| r.lane.conn != key.0),
                "stream {key:?} read while a lane holds its position (settle first)"
            );
        }
        Some(stream)
    }

    /// The stream `key`, to change (copied first if an explorer state shares it; its lane's
    /// position given back first).
    pub fn get_mut(&mut self, key: &StreamKey) -> Option<&mut Stream> {
        self.fold_for(key);
        let list = self.by_conn.get_mut(key.0)?;
        let i = Self::position(list, key.1).ok()?;
        Some(Arc::make_mut(&mut list[i].1))
    }

    /// True when `key` is open.
    pub fn contains_key(&self, key: &StreamKey) -> bool {
        self.get_unchecked(key).is_some()
    }

    /// Opens (or replaces) stream `key`.
    pub fn insert(&mut self, key: StreamKey, stream: Stream) {
        self.fold_for(&key);
        let stream = Arc::new(stream);
        match self.by_conn.get_mut(key.0) {
            Some(list) => match Self::position(list, key.1) {
                Ok(i) => list[i].1 = stream,
                Err(i) => list.insert(i, (key.1, stream)),
            },
            None => {
                self.by_conn.insert(key.0, smallvec![(key.1, stream)]);
            }
        }
    }

    /// Closes stream `key`; returns it (its lane's position given back first).
    pub fn remove(&mut self, key: &StreamKey) -> Option<Stream> {
        self.fold_for(key);
        let list = self.by_conn.get_mut(key.0)?;
        let i = Self::position(list, key.1).ok()?;
        let (_, stream) = list.remove(i);
        if list.is_empty() {
            self.by_conn.remove(key.0);
        }
        Some(Arc::unwrap_or_clone(stream))
    }

    /// The keys of the streams open on `conn`, in watch-id order.
    pub fn keys_of(&self, conn: ConnId) -> Vec<StreamKey> {
        self.by_conn
            .get(conn)
            .map(|list| list.iter().map(|(w, _)| (conn, *w)).collect())
            .unwrap_or_default()
    }

    /// Every open stream, in `(connection, watch id)` order. Panics if a lane is armed (a bug:
    /// settle first).
    pub fn values(&self) -> impl Iterator<Item = &Stream> + '_ {
        assert!(
            self.armed.is_empty(),
            "streams read while lanes hold their positions (settle first)"
        );
        self.by_conn
            .values()
            .flat_map(|list| list.iter().map(|(_, s)| s.as_ref()))
    }
}

impl std::ops::Index<&StreamKey> for StreamTable {
    type Output = Stream;
    fn index(&self, key: &StreamKey) -> &Stream {
        self.get(key).expect("an open stream")
    }
}
