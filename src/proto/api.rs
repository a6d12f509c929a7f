//! The Kubernetes API as the model speaks it: LIST / WATCH / write requests with their
//! resourceVersion parameters, responses, watch events and continue tokens.

use imbl::OrdMap;
use serde::Serialize;

use super::etcd::{Key, KeyRange};
use super::selector::{LabelSetId, Selector};
use super::status::Status;
use crate::kernel::Nanos;

pub use super::ResourceId;

/// A request's `resourceVersion` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rv {
    /// Absent: the most recent state (a consistent read).
    Unset,
    /// `"0"`: any state ("from the cache").
    Zero,
    /// `"N"`.
    At(i64),
}

impl Rv {
    /// Parses an API resourceVersion string: `None`/`""` = unset, `"0"`, or a positive integer.
    pub fn parse(text: Option<&str>) -> Result<Rv, String> {
        match text {
            None | Some("") => Ok(Rv::Unset),
            Some("0") => Ok(Rv::Zero),
            Some(t) => match t.parse::<i64>() {
                Ok(n) if n > 0 => Ok(Rv::At(n)),
                _ => Err(format!("invalid resource version \"{t}\"")),
            },
        }
    }

    /// The number, with unset and "0" as 0.
    pub fn number(self) -> i64 {
        match self {
            Rv::At(n) => n,
            _ => 0,
        }
    }
}

/// `resourceVersionMatch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RvMatch {
    /// At least the RV.
    NotOlderThan,
    /// Exactly the RV.
    Exact,
}

/// A continue token: the RV every page is read at and the last key returned
/// (`storage.PrepareContinueToken`: `{rv, start}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContinueToken {
    /// Revision all pages are read at.
    pub rv: i64,
    /// Last key of the previous page.
    pub start_after: Key,
    /// The key prefix of the LIST that issued the token: the real token holds `start_after`
    /// relative to it (`storage.EncodeContinue`), and a continuation resolves it against its
    /// own prefix (`storage.DecodeContinue`).
    pub base: Key,
}

impl ContinueToken {
    /// The token as a LIST whose key prefix is `base` reads it: the same key relative to the
    /// new prefix. The same prefix gives the same token; a different one (a LIST narrowed to a
    /// namespace only by a `metadata.namespace` field selector, which a continuation does not
    /// narrow) resumes at another place, as in Kubernetes.
    pub fn resolved_against(&self, base: &Key) -> ContinueToken {
        let relative = self
            .start_after
            .as_str()
            .strip_prefix(self.base.as_str())
            .unwrap_or(self.start_after.as_str());
        ContinueToken {
            rv: self.rv,
            start_after: Key::new(&format!("{}{relative}", base.as_str())),
            base: base.clone(),
        }
    }

    /// The token as text (watchsim's own encoding, not base64 JSON).
    pub fn encode(&self) -> String {
        format!("{}:{}", self.rv, self.start_after)
    }
}

/// How fast a watch client reads its stream (watchsim's own knob for slow watchers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadRate {
    /// Reads everything as soon as it arrives.
    Instant,
    /// Reads this many events per second.
    PerSecond(u32),
}

/// An API request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ApiRequest {
    /// LIST.
    List {
        /// Resource.
        resource: ResourceId,
        /// Objects selected (whole resource, a namespace, or one object).
        scope: KeyRange,
        /// `labelSelector` and `fieldSelector`, matched within `scope`.
        selector: Selector,
        /// `resourceVersion`.
        rv: Rv,
        /// `resourceVersionMatch`.
        rv_match: Option<RvMatch>,
        /// `limit` (0 = none).
        limit: u64,
        /// `continue`.
        continue_token: Option<ContinueToken>,
    },
    /// WATCH (on its own connection).
    Watch {
        /// Resource.
        resource: ResourceId,
        /// Objects selected.
        scope: KeyRange,
        /// `labelSelector` and `fieldSelector`, matched within `scope`.
        selector: Selector,
        /// `resourceVersion`.
        rv: Rv,
        /// `allowWatchBookmarks`.
        bookmarks: bool,
        /// `sendInitialEvents`.
        send_initial_events: Option<bool>,
        /// `timeoutSeconds` in ns (0 = the server's default).
        timeout_ns: Nanos,
        /// How fast the client reads.
        read_rate: ReadRate,
    },
    /// CREATE.
    Create {
        /// Resource.
        resource: ResourceId,
        /// Object key.
        key: Key,
        /// Object size.
        bytes: u64,
        /// `metadata.labels`.
        labels: LabelSetId,
    },
    /// UPDATE (with an optional resourceVersion precondition).
    Update {
        /// Resource.
        resource: ResourceId,
        /// Object key.
        key: Key,
        /// New size.
        bytes: u64,
        /// New `metadata.labels`.
        labels: LabelSetId,
        /// Required current RV.
        precondition_rv: Option<i64>,
    },
    /// GET of one object (`cacher/delegator.go CacheDelegator.Get`).
    Get {
        /// Resource.
        resource: ResourceId,
        /// Object key.
        key: Key,
        /// `resourceVersion`.
        rv: Rv,
    },
    /// DELETE.
    Delete {
        /// Resource.
        resource: ResourceId,
        /// Object key.
        key: Key,
        /// Required current RV.
        precondition_rv: Option<i64>,
    },
}

/// Where a LIST was served from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServedFrom {
    /// The watch cache.
    Cache,
    /// etcd.
    Etcd,
}

/// A successful LIST.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListResult {
    /// The list's resourceVersion.
    pub rv: i64,
    /// The items (key order).
    pub items: OrdMap<Key, Obj>,
    /// Token for the next page.
    pub continue_token: Option<ContinueToken>,
    /// Cache or etcd.
    pub served_from: ServedFrom,
    /// Response size.
    pub bytes: u64,
    /// Digest of `items` when the server already had it (a whole-resource LIST from cache).
    pub digest: Option<crate::kernel::digest::Digest>,
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ApiResponse {
    /// LIST result.
    List(ListResult),
    /// A GET found the object.
    Object {
        /// Object key.
        key: Key,
        /// The object's RV (its etcd mod revision).
        rv: i64,
        /// Where it was read.
        served_from: ServedFrom,
    },
    /// A write succeeded at this RV.
    Written {
        /// RV of the write.
        rv: i64,
    },
    /// A watch stream is established; events follow on the connection.
    WatchStarted,
    /// An HTTP error.
    Error(Status),
}

/// One event on a watch stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ApiWatchEvent {
    /// ADDED / MODIFIED / DELETED.
    Object {
        /// Type.
        kind: EventType,
        /// Object key.
        key: Key,
        /// RV.
        rv: i64,
        /// Size.
        bytes: u64,
        /// RV of the version this event replaces (0 if none or unknown).
        prev_rv: i64,
    },
    /// BOOKMARK.
    Bookmark {
        /// RV carried.
        rv: i64,
        /// Annotated `k8s.io/initial-events-end: "true"`.
        initial_events_end: bool,
    },
    /// ERROR (a Status on a 200 stream; the stream then ends).
    Error(Status),
    /// The server closed the stream cleanly.
    Closed,
}

/// Several events of one watch stream sent as one message (a cacher's initial state,
/// [`super::Msg::ApiWatchBatch`]), with facts about them computed once for every watcher that
/// shares the batch: the digest of the object versions, the highest RV, and whether the keys
/// strictly increase. Immutable once built, so the facts stay true.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventBatch {
    events: Vec<ApiWatchEvent>,
    digest: crate::kernel::digest::Digest,
    max_rv: i64,
    objects_in_key_order: bool,
}

impl EventBatch {
    /// A batch of `events`; its facts are computed here.
    pub fn new(events: Vec<ApiWatchEvent>) -> Self {
        let mut digest = crate::kernel::digest::Digest::default();
        let mut max_rv = 0;
        let mut objects_in_key_order = true;
        let mut prev: Option<&Key> = None;
        for e in &events {
            match e {
                ApiWatchEvent::Object { key, rv, .. } => {
                    digest.add(key.as_str(), *rv);
                    max_rv = max_rv.max(*rv);
                    objects_in_key_order &= prev.is_none_or(|p| p < key);
                    prev = Some(key);
                }
                _ => objects_in_key_order = false,
            }
        }
        EventBatch {
            events,
            digest,
            max_rv,
            objects_in_key_order,
        }
    }

    /// The events, in the order they were sent.
    pub fn events(&self) -> &[ApiWatchEvent] {
        &self.events
    }

    /// The digest of the object events' `(key, rv)`s.
    pub fn digest(&self) -> crate::kernel::digest::Digest {
        self.digest
    }

    /// The highest RV of an object event (0 if none).
    pub fn max_rv(&self) -> i64 {
        self.max_rv
    }

    /// True when every event is an object and the keys strictly increase (no key twice).
    pub fn objects_in_key_order(&self) -> bool {
        self.objects_in_key_order
    }
}

/// One object as the model keeps it: its resource version, size and label set (bodies are
/// never built).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Obj {
    /// `metadata.resourceVersion` (the etcd mod revision).
    pub rv: i64,
    /// Serialized size.
    pub bytes: u64,
    /// `metadata.labels`, interned (`selector.rs`; 0 = none).
    #[serde(skip)]
    pub labels: LabelSetId,
}

/// Watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EventType {
    /// ADDED.
    #[serde(rename = "ADDED")]
    Added,
    /// MODIFIED.
    #[serde(rename = "MODIFIED")]
    Modified,
    /// DELETED.
    #[serde(rename = "DELETED")]
    Deleted,
}

/// The etcd prefix of a resource (`/registry/<resource>/`, the apiserver's storage layout).
pub fn resource_prefix(name: &str) -> Key {
    Key::new(&format!("/registry/{name}/"))
}
