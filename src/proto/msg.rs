//! Messages between components and the timers they arm: everything a component hands the world
//! to deliver (through [`super::Out`]) and everything the world hands a component back. The
//! world wraps them in its agenda entries; the components never see the agenda.

use super::api::{ApiRequest, ApiResponse, ApiWatchEvent};
use super::etcd::{EtcdError, KvRequest, KvResponse, WatchRequest, WatchResponse};
use super::{ConnId, ResourceId};

/// A KV request id that asks for no answer (fire-and-forget workload writes: the simulated
/// writer does not act on the result, so the reply step is skipped).
pub const NO_REPLY: u64 = u64::MAX;

/// A message on a connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Msg {
    /// A KV request (unary gRPC call).
    Kv {
        /// Caller's correlation id.
        req_id: u64,
        /// The request.
        req: KvRequest,
    },
    /// The answer to a KV request.
    KvReply {
        /// Correlation id of the request.
        req_id: u64,
        /// Response or error.
        resp: Result<KvResponse, EtcdError>,
    },
    /// A request on a watch stream.
    Watch(WatchRequest),
    /// A response on a watch stream.
    WatchReply(WatchResponse),
    /// A Kubernetes API request.
    Api {
        /// Caller's correlation id.
        req_id: u64,
        /// The request, boxed: API requests are rare next to the KV and watch traffic, and
        /// inline the largest variant made every agenda entry 160 bytes, moved by a `memcpy`
        /// call (issue 16).
        req: Box<ApiRequest>,
    },
    /// The answer to an API request (or to a WATCH call before streaming).
    ApiReply {
        /// Correlation id.
        req_id: u64,
        /// The response, boxed (as [`Msg::Api`]'s request).
        resp: Box<ApiResponse>,
    },
    /// An event on an API watch stream.
    ApiWatch(ApiWatchEvent),
    /// Several events of one API watch stream in one message: a cacher's initial state (the
    /// ADDED events of `processInterval`, two or more). Simplification (notes.md): the real
    /// server writes them one frame at a time; they arrive together here, at one latency draw,
    /// which is what per-event FIFO delivery already gave them (each no earlier than the one
    /// before), in one step instead of one per object.
    ApiWatchBatch(std::sync::Arc<super::api::EventBatch>),
    /// The sender closed the connection (in order after what it sent before).
    Hangup,
    /// HTTP/2 GOAWAY: the server accepts no new requests on this connection.
    Goaway,
}

impl Msg {
    /// A Kubernetes API request (boxed; see [`Msg::Api`]).
    pub fn api(req_id: u64, req: ApiRequest) -> Msg {
        Msg::Api {
            req_id,
            req: Box::new(req),
        }
    }

    /// The answer to an API request (boxed; see [`Msg::ApiReply`]).
    pub fn api_reply(req_id: u64, resp: ApiResponse) -> Msg {
        Msg::ApiReply {
            req_id,
            resp: Box::new(resp),
        }
    }

    /// A short name for traces.
    pub fn name(&self) -> &'static str {
        match self {
            Msg::Kv { req, .. } => req.name(),
            Msg::KvReply { .. } => "kv.reply",
            Msg::Watch(WatchRequest::Create { .. }) => "watch.create",
            Msg::Watch(WatchRequest::Cancel { .. }) => "watch.cancel",
            Msg::Watch(WatchRequest::Progress) => "watch.progress_request",
            Msg::WatchReply(_) => "watch.response",
            Msg::Api { req, .. } => match **req {
                ApiRequest::List { .. } => "api.list",
                ApiRequest::Get { .. } => "api.get",
                ApiRequest::Watch { .. } => "api.watch",
                ApiRequest::Create { .. } => "api.create",
                ApiRequest::Update { .. } => "api.update",
                ApiRequest::Delete { .. } => "api.delete",
            },
            Msg::ApiReply { .. } => "api.reply",
            Msg::ApiWatch(_) => "api.watch_event",
            Msg::ApiWatchBatch(_) => "api.watch_events",
            Msg::Hangup => "hangup",
            Msg::Goaway => "goaway",
        }
    }
}

/// A timer some component armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Issue scripted step N (file index).
    ScriptStep(u32),
    /// etcd's 100 ms unsynced-watcher loop.
    EtcdSync,
    /// etcd's progress-notify ticker of one watch stream.
    EtcdProgressTick(ConnId),
    /// The next write of workload N.
    Workload(u32),
    /// Scheduled fault N of `[[faults.at]]`.
    Fault(u32),
    /// A timer of apiserver N.
    Apiserver(u32, ApiTimer),
    /// A timer of apiserver N's cacher of resource R.
    Cacher(u32, ResourceId, CacherTimer),
    /// A timer of client N (with the client's epoch: stale after a restart).
    Client(u32, u32, ClientTimer),
    /// The next random watch disconnect of the client population.
    Disconnect,
    /// The per-minute metrics sample.
    Metrics,
}

impl Timer {
    /// A short name for traces.
    pub fn name(&self) -> &'static str {
        match self {
            Timer::ScriptStep(_) => "script.step",
            Timer::EtcdSync => "etcd.sync_watchers",
            Timer::EtcdProgressTick(_) => "etcd.progress_tick",
            Timer::Workload(_) => "workload.write",
            Timer::Fault(_) => "fault.scheduled",
            Timer::Apiserver(..) => "apiserver.timer",
            Timer::Cacher(..) => "cacher.timer",
            Timer::Client(..) => "client.timer",
            Timer::Disconnect => "fault.disconnect",
            Timer::Metrics => "metrics.minute",
        }
    }
}

/// Timers an apiserver arms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiTimer {
    /// A failed (or new) cacher lists again.
    CacherRestart(ResourceId),
    /// A read's 3 s freshness wait ends.
    ReadDeadline(u64),
    /// The progress requester's 100 ms tick.
    ProgressRequest,
    /// The compactor's tick.
    Compact,
    /// A LIST response finished encoding and leaves.
    ListSent(u64),
    /// A partition or stall ends.
    Heal,
    /// The restarted process is up again and starts its caches.
    Start,
    /// A direct watch (watch cache off) reached its `timeoutSeconds`: the handler ends it.
    DirectWatchDeadline(ConnId),
    /// A cache consistency check of a resource is due (1.34+).
    ConsistencyCheck(ResourceId),
    /// The cacher's snapshot compactor polls the known compaction revision (1.34+).
    SnapshotCompactor,
}

/// Timers a cacher arms (wrapped by the apiserver).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacherTimer {
    /// The dispatcher's bookmark tick (every 1-1.25 s).
    BookmarkTick,
    /// A slow watcher's interval needs its next chunk from the ring.
    IntervalRefill(ConnId),
    /// A watch's deadline (timeoutSeconds) passed.
    WatchDeadline(ConnId),
}

/// Timers a reflector arms; each carries the reflector's epoch so that timers from before a
/// restart are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientTimer {
    /// Run ListAndWatch (after the backoff).
    ListAndWatch,
    /// Open the watch again (after a backoff for 429 / connection errors).
    Watch,
    /// Resend the current LIST request (REST retry after Retry-After).
    RetryList,
    /// Send the streaming list again within the same ListAndWatch (`reflector.go watchList`'s
    /// loop: at once after a 410 / 504 or a stream that ended before its end bookmark; after the
    /// backoff on 429 or connection refused; after Retry-After for a REST retry).
    WatchList,
}
