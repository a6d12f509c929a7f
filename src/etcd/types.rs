//! etcd's data types as clients see them: keys, key ranges, key-value metadata, watch events and
//! the errors whose texts clients match on (etcd `api/v3rpc/rpctypes/error.go`).

use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// An etcd revision (`int64` in etcd's API).
pub type Revision = i64;

/// A key. Ordered by bytes, as etcd orders keys; cheap to clone.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(Arc<str>);

impl Key {
    /// A key from text.
    pub fn new(s: &str) -> Self {
        Key(Arc::from(s))
    }
    /// The key's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Length in bytes (counts toward the request size limit).
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// True for the empty key.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Key {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Self {
        Key::new(s)
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// The keys a request or watch covers: etcd's `key` + `range_end`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyRange {
    /// Exactly one key (`range_end` empty).
    Single(Key),
    /// Every key starting with this prefix (`range_end` = prefix + 1, `etcdctl --prefix`).
    Prefix(Key),
    /// Keys with `prefix` strictly after `after` (a continuation: key = after + "\0").
    PrefixAfter {
        /// The prefix.
        prefix: Key,
        /// The last key already returned.
        after: Key,
    },
}

impl KeyRange {
    /// True if `key` is in the range.
    pub fn contains(&self, key: &Key) -> bool {
        match self {
            KeyRange::Single(k) => k == key,
            KeyRange::Prefix(p) => key.as_str().starts_with(p.as_str()),
            KeyRange::PrefixAfter { prefix, after } => {
                key > after && key.as_str().starts_with(prefix.as_str())
            }
        }
    }
    /// The first key of the range (where an ordered scan starts).
    pub fn start(&self) -> &Key {
        match self {
            KeyRange::Single(k) | KeyRange::Prefix(k) => k,
            KeyRange::PrefixAfter { after, .. } => after,
        }
    }
}

/// Metadata of one key version (`mvccpb.KeyValue` without the value bytes, which are never
/// materialised; only their size is kept).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct KeyValue {
    /// The key.
    pub key: Key,
    /// Revision at which this generation of the key was created (0 in a DELETE event).
    pub create_revision: Revision,
    /// Revision of the last write of the key.
    pub mod_revision: Revision,
    /// Writes since creation, 1 on create (0 in a DELETE event).
    pub version: i64,
    /// Size of the value in bytes.
    #[serde(skip)]
    pub value_bytes: u64,
    /// An opaque tag of the value's contents, which etcd stores and returns but never reads
    /// (watchsim's own: the apiserver keeps the object's label set there, see
    /// `apiserver/selector.rs`; 0 for a value written without one and in a DELETE event).
    #[serde(skip)]
    pub value_tag: u32,
}

/// PUT or DELETE (`mvccpb.Event_EventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EventKind {
    /// A put (create if `create_revision == mod_revision`).
    #[serde(rename = "PUT")]
    Put,
    /// A delete; the kv holds only the key and the delete's revision.
    #[serde(rename = "DELETE")]
    Delete,
}

/// One watch event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Event {
    /// PUT or DELETE.
    pub kind: EventKind,
    /// The key's state after the event (etcd zeroes everything but key and mod_revision on DELETE).
    pub kv: KeyValue,
    /// The version this event replaced (`prev_kv`, which kube-apiserver's etcd3 watcher always
    /// asks for with `WithPrevKV`); `None` for a creation. Not part of any script output: the
    /// script's `etcd.watch` does not ask for it.
    pub prev: Option<PrevVersion>,
}

impl Event {
    /// A PUT that created its key (`clientv3.Event.IsCreate`: create revision = mod revision).
    pub fn is_create(&self) -> bool {
        self.kind == EventKind::Put && self.kv.create_revision == self.kv.mod_revision
    }

    /// An update or delete whose `prev_kv` etcd could not read (it reads it at revision - 1 when
    /// sending, and that revision was compacted): kube-apiserver's etcd3 watcher refuses such an
    /// event (`etcd3/event.go parseEvent`) and ends the watch.
    pub fn lacks_prev_kv(&self) -> bool {
        !self.is_create() && self.prev.is_none()
    }
}

/// What an event's `prev_kv` tells of the replaced version (its key is the event's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrevVersion {
    /// Revision of the replaced version.
    pub mod_revision: Revision,
    /// Its value's size.
    pub value_bytes: u64,
    /// Its value's tag (`KeyValue::value_tag`).
    pub value_tag: u32,
}

/// Errors etcd returns, with the exact texts clients see.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum EtcdError {
    /// A read, watch or compaction at a revision below the compact revision (gRPC OutOfRange).
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted {
        /// The store's compact revision when the request was refused.
        compact_revision: Revision,
    },
    /// A read or compaction above the current revision (gRPC OutOfRange).
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    /// The marshalled request exceeds `--max-request-bytes` (gRPC InvalidArgument).
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    /// A txn writes one key twice, or puts a key inside one of its delete ranges.
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    /// A txn has more than `--max-txn-ops` (128) operations.
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
}

impl EtcdError {
    /// The short kind used in SPEC §3 results (`"compacted"`, `"future_revision"`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            EtcdError::Compacted { .. } => "compacted",
            EtcdError::FutureRevision => "future_revision",
            EtcdError::RequestTooLarge => "request_too_large",
            EtcdError::DuplicateKey => "duplicate_key",
            EtcdError::TooManyOps => "too_many_ops",
        }
    }
}
