//! The etcd model: the MVCC store ([`mvcc`]), the watch server ([`watch`]) and the server that
//! ties them to messages ([`server`]). Behaviour follows `reference/etcd-semantics.md` Part A,
//! in its fixed form (etcd main / 3.4.39), not Debian 3.4.23's known bugs; see `notes.md`.

mod count_memo;
mod key_index;
pub mod mvcc;
pub mod server;
pub mod watch;

/// The request, response and key types etcd shares with its clients live in the protocol layer.
pub use crate::proto::etcd as types;
pub use crate::proto::etcd::{
    Compare, CompareOp, CompareTarget, EtcdError, Event, EventKind, Key, KeyRange, KeyValue,
    KvRequest, KvResponse, PrevVersion, RangeResult, Revision, StreamId, Txn, TxnOp, TxnOpResult,
    TxnResult, WatchId, WatchRequest, WatchResponse, WatchResponseKind,
};
pub use mvcc::Store;
pub use server::{EtcdConfig, EtcdServer};
pub use watch::{WatchHub, WatchOutput};
