//! The etcd model: the MVCC store ([`mvcc`]), the watch server ([`watch`]) and the server that
//! ties them to messages ([`server`]). Behaviour follows `reference/etcd-semantics.md` Part A,
//! in its fixed form (etcd main / 3.4.39), not Debian 3.4.23's known bugs; see `notes.md`.

pub mod mvcc;
pub mod server;
pub mod types;
pub mod watch;

pub use mvcc::{
    Compare, CompareOp, CompareTarget, RangeResult, Store, Txn, TxnOp, TxnOpResult, TxnResult,
};
pub use server::{EtcdConfig, EtcdServer, KvRequest, KvResponse};
pub use types::{EtcdError, Event, EventKind, Key, KeyRange, KeyValue, PrevVersion, Revision};
pub use watch::{
    StreamId, WatchHub, WatchId, WatchOutput, WatchRequest, WatchResponse, WatchResponseKind,
};
