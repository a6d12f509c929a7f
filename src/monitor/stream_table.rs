//! The watch streams the checker follows, by `(connection, etcd watch id)`: a table indexed by
//! connection id ([`IdTable`]), each connection's few streams in watch-id order, each stream
//! behind an `Arc` so that an explorer state's copy shares the streams it does not change.
//! Issue 16: a look-up per event and receiver is an index, not a walk down a search tree keyed
//! by tuples. Iteration order is `(connection, watch id)`, as an ordered map's.

use std::sync::Arc;

use smallvec::{SmallVec, smallvec};

use super::invariants::watch::{Stream, StreamKey};
use crate::kernel::id_table::IdTable;
use crate::proto::ConnId;

/// A connection's streams in watch-id order: the first one stored in the table's slot itself
/// (an API watch has one stream per connection), so a look-up follows one pointer, not two.
type ConnStreams = SmallVec<[(i64, Arc<Stream>); 1]>;

/// The open streams (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct StreamTable {
    by_conn: IdTable<ConnStreams>,
}

impl StreamTable {
    fn position(list: &[(i64, Arc<Stream>)], watch_id: i64) -> Result<usize, usize> {
        list.binary_search_by_key(&watch_id, |(w, _)| *w)
    }

    /// The stream `key`.
    pub fn get(&self, key: &StreamKey) -> Option<&Stream> {
        let list = self.by_conn.get(key.0)?;
        let i = Self::position(list, key.1).ok()?;
        Some(&list[i].1)
    }

    /// Hints that stream `key`'s table slot will soon be read: the first of a fan-out's two
    /// prefetch stages (the slot holds the pointer that [`StreamTable::prefetch`] follows).
    #[inline(always)]
    pub fn prefetch_slot(&self, conn: ConnId) {
        self.by_conn.prefetch(conn);
    }

    /// Hints that stream `key` will soon be read and changed: its reference count and the
    /// fields the fast path uses, the first of the stream (a fan-out's next receivers; see
    /// [`crate::kernel::prefetch`]). Its slot should have been asked for first
    /// ([`StreamTable::prefetch_slot`]): finding the stream reads it.
    #[inline(always)]
    pub fn prefetch(&self, key: &StreamKey) {
        use crate::kernel::prefetch::prefetch_addr;
        if let Some(stream) = self.get(key) {
            let at = (stream as *const Stream).cast::<u8>();
            // The reference counts sit just before the stream in the `Arc`'s allocation; the
            // hot fields end within its first 64 bytes.
            prefetch_addr(at.wrapping_sub(16));
            prefetch_addr(at.wrapping_add(56));
        }
    }

    /// The stream `key`, to change (copied first if an explorer state shares it).
    pub fn get_mut(&mut self, key: &StreamKey) -> Option<&mut Stream> {
        let list = self.by_conn.get_mut(key.0)?;
        let i = Self::position(list, key.1).ok()?;
        Some(Arc::make_mut(&mut list[i].1))
    }

    /// True when `key` is open.
    pub fn contains_key(&self, key: &StreamKey) -> bool {
        self.get(key).is_some()
    }

    /// Opens (or replaces) stream `key`.
    pub fn insert(&mut self, key: StreamKey, stream: Stream) {
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

    /// Closes stream `key`; returns it.
    pub fn remove(&mut self, key: &StreamKey) -> Option<Stream> {
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

    /// Every open stream, in `(connection, watch id)` order.
    pub fn values(&self) -> impl Iterator<Item = &Stream> + '_ {
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
