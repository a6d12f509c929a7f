//! Facts a model component announces to the invariant checker while it handles a step, through
//! [`Ctx::notice`](crate::world::Ctx::notice): things the checker cannot see on the wire, such as
//! where a watch's synthetic initial events end. A notice never changes the model's behaviour.

use super::{ConnId, ResourceId};

/// One fact for the checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Notice {
    /// A client watch on `conn` was registered: it sends `initial_events` synthetic ADDED events
    /// (the state at `start_rv`; 0 for a watch from an RV), then every change after `start_rv`.
    WatchStarted {
        /// The client's watch connection.
        conn: ConnId,
        /// The RV the stream starts after (snapshot RV, or the RV the watch resumes from).
        start_rv: i64,
        /// Synthetic initial events that precede the live ones.
        initial_events: u64,
    },
    /// A watch from `rv` was refused with 410 by the watch cache of `resource` on `server`.
    WatchRefused {
        /// Apiserver index.
        server: u32,
        /// Resource.
        resource: ResourceId,
        /// The RV the watch asked to start after.
        rv: i64,
        /// The cache's oldest watchable RV at that moment (`oldest - 1` must be served).
        oldest: Option<i64>,
    },
}
