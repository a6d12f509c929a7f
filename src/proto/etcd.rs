//! etcd's API as clients see it: keys, key ranges, key-value metadata, watch events, the errors
//! whose texts clients match on (etcd `api/v3rpc/rpctypes/error.go`), and the KV and watch
//! requests and responses (`etcdserverpb` `RangeRequest`..`TxnRequest`, `WatchRequest`,
//! `WatchResponse`). The etcd model serves them; the apiserver model sends them.

use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// An etcd revision (`int64` in etcd's API).
pub type Revision = i64;

/// A key. Ordered by bytes, as etcd orders keys; cheap to copy.
///
/// Keys are interned ([`crate::proto::key_interner`]): one text has one allocation for the life
/// of the process, so equality is a pointer comparison, and a copy or a drop touches nothing
/// (issue 16: a reference count on the key's own allocation made every clone and drop of a cold
/// key a cache miss: trimming a watch cache's snapshot log was 2.5-4.5 % of the cluster
/// scenarios). Order compares the text (etcd's byte order); hashing hashes the text, as `str`'s
/// does (so a map keyed by `Key` can be searched with a `&str`).
#[derive(Eq)]
pub struct Key(&'static str);

impl Clone for Key {
    #[inline]
    fn clone(&self) -> Self {
        Key(self.0)
    }
}

/// The text's hash (what `str` gives): equal keys have equal text.
impl std::hash::Hash for Key {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialEq for Key {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0.as_ptr(), other.0.as_ptr())
    }
}

/// Look-up tables hash a key by its address: one text, one address, for the process's life
/// (never for order or output: see [`crate::kernel::lookup_key`]).
impl crate::kernel::lookup_key::LookupKey for Key {
    #[inline]
    fn lookup_hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_usize(self.addr());
    }

    #[inline(always)]
    fn prefetch_text(&self) {
        self.prefetch_text_hash();
    }
}

impl PartialOrd for Key {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if self == other {
            std::cmp::Ordering::Equal
        } else {
            self.0.cmp(other.0)
        }
    }
}

impl Key {
    /// The key of `s` (interned: every key of one text is the same allocation).
    pub fn new(s: &str) -> Self {
        Key(super::key_interner::intern(s))
    }
    /// The key's text.
    pub fn as_str(&self) -> &str {
        self.0
    }
    /// The address of the key's text: the same for every key of one text, for the life of the
    /// process (what [`crate::proto::key_memo::KeyMemo`] remembers answers by).
    pub fn addr(&self) -> usize {
        self.0.as_ptr() as usize
    }
    /// The FNV-1a hash of the key's text ([`crate::kernel::fnv64`]), stored beside the text when
    /// it was interned: what a digest of `(key, resourceVersion)` starts from.
    #[inline]
    pub fn text_hash(&self) -> u64 {
        // SAFETY: every `Key` holds a text `intern` returned (`Key::new` is its one maker).
        unsafe { super::key_interner::text_hash(self.0) }
    }
    /// Asks for the cache line of the key's stored text hash, read soon (a hint).
    #[inline(always)]
    pub fn prefetch_text_hash(&self) {
        super::key_interner::prefetch_text_hash(self.0);
    }
    /// [`KeyHash::of`](crate::kernel::digest::KeyHash::of) the key's text, from the stored hash.
    #[inline]
    pub fn digest_hash(&self) -> crate::kernel::digest::KeyHash {
        crate::kernel::digest::KeyHash::from_text_hash(self.text_hash())
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
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        self.0
    }
}

impl std::borrow::Borrow<str> for Key {
    fn borrow(&self) -> &str {
        self.0
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Self {
        Key::new(s)
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
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

/// The result of a range read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RangeResult {
    /// Header revision: always the current store revision, not the one read at.
    pub revision: Revision,
    /// Keys in the range at the read revision, ignoring `limit`.
    pub count: u64,
    /// True when `limit` cut the result.
    pub more: bool,
    /// The returned key versions, in key order.
    pub kvs: Vec<KeyValue>,
}

/// A compare of a txn (`etcdserverpb.Compare`); an absent key compares as zeros.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Compare {
    /// Key compared.
    pub key: Key,
    /// What is compared.
    pub target: CompareTarget,
    /// How.
    pub op: CompareOp,
    /// Against what.
    pub value: i64,
}

/// Compare target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareTarget {
    /// `version`.
    Version,
    /// `create_revision`.
    Create,
    /// `mod_revision`.
    Mod,
}

/// Compare operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `==`.
    Equal,
    /// `!=`.
    NotEqual,
    /// `>`.
    Greater,
    /// `<`.
    Less,
}

/// One operation of a txn branch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TxnOp {
    /// Put a value of the given size.
    Put {
        /// Key written.
        key: Key,
        /// Value size.
        value_bytes: u64,
        /// The value's opaque tag (`KeyValue::value_tag`; 0 for none).
        value_tag: u32,
    },
    /// Delete a key or range.
    Delete(KeyRange),
    /// Read a key or range at the current revision.
    Range(KeyRange),
}

/// A txn's compares or one of its branches: the txns kube-apiserver's etcd3 store and the
/// workload send have one compare and one op a branch, kept inline so that a txn is one
/// allocation (its box in [`KvRequest::Txn`]) instead of one a list (issue 16). Compares and
/// hashes as the slice it holds, as a `Vec` did.
pub type TxnList<T> = smallvec::SmallVec<[T; 1]>;

/// A txn: if every compare holds, run `success`, else `failure` (the default: no compare and
/// no op, what a pooled box holds between uses).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Txn {
    /// Conjunction of compares.
    pub compares: TxnList<Compare>,
    /// Ops when all compares hold.
    pub success: TxnList<TxnOp>,
    /// Ops otherwise.
    pub failure: TxnList<TxnOp>,
}

/// The response to one txn op.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TxnOpResult {
    /// A put.
    Put,
    /// A delete and how many keys it removed.
    Delete {
        /// Keys deleted.
        deleted: u64,
    },
    /// A read.
    Range(RangeResult),
}

/// The outcome of a txn.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxnResult {
    /// Store revision after the txn.
    pub revision: Revision,
    /// Whether the compares held.
    pub succeeded: bool,
    /// One result per op of the branch that ran.
    pub responses: Vec<TxnOpResult>,
}

/// A KV request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KvRequest {
    /// `Put`.
    Put {
        /// Key.
        key: Key,
        /// Value size.
        value_bytes: u64,
    },
    /// `DeleteRange`.
    Delete(KeyRange),
    /// `Range` at a revision (0 = latest) with a limit (0 = none).
    Range {
        /// Keys.
        range: KeyRange,
        /// Revision to read at.
        revision: Revision,
        /// Maximum keys returned.
        limit: i64,
    },
    /// `Txn`, boxed: its compares and branches inline make it larger than the other requests.
    Txn(Box<Txn>),
    /// `Compact`.
    Compact {
        /// Compact revision requested.
        revision: Revision,
    },
}

impl KvRequest {
    /// The one key a request writes or compares first, if it names one (a put, a one-key
    /// delete, a txn's first compare or else its first branch op): the key whose index slot
    /// handling it reads first.
    pub fn first_key(&self) -> Option<&Key> {
        fn op_key(op: &TxnOp) -> Option<&Key> {
            match op {
                TxnOp::Put { key, .. } => Some(key),
                TxnOp::Delete(KeyRange::Single(key)) => Some(key),
                _ => None,
            }
        }
        match self {
            KvRequest::Put { key, .. } => Some(key),
            KvRequest::Delete(KeyRange::Single(key)) => Some(key),
            KvRequest::Txn(t) => match t.compares.first() {
                Some(c) => Some(&c.key),
                None => t.success.first().and_then(op_key),
            },
            _ => None,
        }
    }

    /// A short name for traces.
    pub fn name(&self) -> &'static str {
        match self {
            KvRequest::Put { .. } => "kv.put",
            KvRequest::Delete(_) => "kv.delete",
            KvRequest::Range { .. } => "kv.range",
            KvRequest::Txn(_) => "kv.txn",
            KvRequest::Compact { .. } => "kv.compact",
        }
    }
}

/// A successful KV response.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KvResponse {
    /// Header revision after the put.
    Put {
        /// Header revision.
        revision: Revision,
    },
    /// Header revision and keys deleted.
    Delete {
        /// Header revision.
        revision: Revision,
        /// Keys deleted.
        deleted: u64,
    },
    /// A range result.
    Range(RangeResult),
    /// A txn result.
    Txn(TxnResult),
    /// Header revision after the compaction.
    Compact {
        /// Header revision.
        revision: Revision,
    },
}

impl KvResponse {
    /// The response header's revision.
    pub fn revision(&self) -> Revision {
        match self {
            KvResponse::Put { revision }
            | KvResponse::Delete { revision, .. }
            | KvResponse::Compact { revision } => *revision,
            KvResponse::Range(r) => r.revision,
            KvResponse::Txn(t) => t.revision,
        }
    }
}

/// A watch stream (one gRPC `Watch` call); the world uses the connection id.
pub type StreamId = u64;

/// A watch id, unique within its stream (client-chosen here; etcd 3.4+ accepts `watch_id`).
pub type WatchId = i64;

/// A request on a watch stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WatchRequest {
    /// `WatchCreateRequest`.
    Create {
        /// Id the client assigns.
        watch_id: WatchId,
        /// Keys watched.
        range: KeyRange,
        /// First revision wanted; 0 = next.
        start_revision: Revision,
        /// Periodic progress notifications.
        progress_notify: bool,
    },
    /// `WatchCancelRequest`.
    Cancel {
        /// Watch to cancel.
        watch_id: WatchId,
    },
    /// `WatchProgressRequest` (answered with watch id -1, only when every watcher is synced).
    Progress,
}

/// What a watch response carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WatchResponseKind {
    /// `created = true`.
    Created,
    /// Events (all of complete revisions). Shared, not copied, by the copies of a response
    /// multicast to several watchers (every apiserver's cacher of a resource gets each write's
    /// event; issue 16: a copy of the events per receiver was an allocation and a free each).
    /// Hashed and compared as the slice of events, as the `Vec` it replaces was.
    Events(Arc<[Event]>),
    /// A progress notification: no events; header revision = store revision.
    Progress,
    /// `canceled = true`, with the compact revision when the watch fell below it (else 0).
    Canceled {
        /// Compact revision, or 0 for a client cancel or an invalid request.
        compact_revision: Revision,
    },
}

/// One `WatchResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WatchResponse {
    /// The watch (or -1 for an on-demand progress response, broadcast by the client).
    pub watch_id: WatchId,
    /// Header revision.
    pub header_revision: Revision,
    /// Content.
    pub kind: WatchResponseKind,
}

#[cfg(test)]
mod key_tests {
    use super::Key;
    use std::cmp::Ordering;

    #[test]
    fn keys_compare_by_text_whether_or_not_they_share_an_allocation() {
        let a = Key::new("/registry/pods/default/a");
        let same = a.clone();
        let copy = Key::new("/registry/pods/default/a");
        let b = Key::new("/registry/pods/default/b");
        assert!(a == same && a == copy && a != b);
        assert_eq!(a.cmp(&same), Ordering::Equal);
        assert_eq!(a.cmp(&copy), Ordering::Equal);
        assert_eq!(a.cmp(&b), Ordering::Less);
        assert_eq!(b.cmp(&a), Ordering::Greater);
        assert_eq!(Key::new("/a").cmp(&Key::new("/a/")), Ordering::Less);
    }
}
