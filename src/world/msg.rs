//! Messages between components and the timers they arm: everything that can sit on the agenda.

use super::network::{ConnId, Dir};
use crate::apiserver::cacher::CacherTimer;
use crate::apiserver::{ApiRequest, ApiResponse, ApiTimer, ApiWatchEvent, ResourceId};
use crate::client::ClientTimer;
use crate::etcd::{EtcdError, KvRequest, KvResponse, WatchRequest, WatchResponse};

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
        /// The request.
        req: ApiRequest,
    },
    /// The answer to an API request (or to a WATCH call before streaming).
    ApiReply {
        /// Correlation id.
        req_id: u64,
        /// The response.
        resp: ApiResponse,
    },
    /// An event on an API watch stream.
    ApiWatch(ApiWatchEvent),
    /// The sender closed the connection (in order after what it sent before).
    Hangup,
    /// HTTP/2 GOAWAY: the server accepts no new requests on this connection.
    Goaway,
}

impl Msg {
    /// A short name for traces.
    pub fn name(&self) -> &'static str {
        match self {
            Msg::Kv { req, .. } => req.name(),
            Msg::KvReply { .. } => "kv.reply",
            Msg::Watch(WatchRequest::Create { .. }) => "watch.create",
            Msg::Watch(WatchRequest::Cancel { .. }) => "watch.cancel",
            Msg::Watch(WatchRequest::Progress) => "watch.progress_request",
            Msg::WatchReply(_) => "watch.response",
            Msg::Api { req, .. } => match req {
                ApiRequest::List { .. } => "api.list",
                ApiRequest::Get { .. } => "api.get",
                ApiRequest::Watch { .. } => "api.watch",
                ApiRequest::Create { .. } => "api.create",
                ApiRequest::Update { .. } => "api.update",
                ApiRequest::Delete { .. } => "api.delete",
            },
            Msg::ApiReply { .. } => "api.reply",
            Msg::ApiWatch(_) => "api.watch_event",
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

/// Something pending on the agenda.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pending {
    /// A message in flight.
    Deliver {
        /// Connection.
        conn: ConnId,
        /// Direction.
        dir: Dir,
        /// Payload.
        msg: Msg,
    },
    /// A timer.
    Timer(Timer),
    /// One message to many connections (a watch cache's fan-out), delivered in one step.
    Multicast {
        /// Receivers: connection, the actor at its receiving end, and a per-receiver tag (the
        /// etcd watch id for etcd watch responses; 0 otherwise).
        targets: Vec<(ConnId, super::network::Actor, i64)>,
        /// Direction.
        dir: Dir,
        /// Payload.
        msg: Msg,
    },
    /// A connection was reset by the other end (process killed): `to` learns it.
    Reset {
        /// The connection (already closed in the network).
        conn: ConnId,
        /// Who is told.
        to: super::network::Actor,
    },
}
