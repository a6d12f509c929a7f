//! The scripted-steps client (SPEC §3): issues each `[[steps]]` operation at its time, like an
//! `etcdctl` user would, and records the answers. Each `etcd.watch` opens its own watch stream
//! (one gRPC Watch call per watch, as one `etcdctl watch` process per watch), so an
//! `etcd.progress` on it is answered for that watch alone.

use imbl::OrdMap;
use serde_json::json;

use super::msg::{Msg, Timer};
use super::network::{Actor, ConnId, Dir};
use super::observe::Observations;
use super::script_json::{api_event_json, api_result_json, kv_json, kv_result_json};
use super::script_requests::{
    api_read_request, api_watch_request, api_write_request, etcd_kv_request, key_range, object_key,
    resource_id,
};
use super::{Ctx, fault_request};
use crate::apiserver::selector::LabelSetId;
use crate::apiserver::{ApiRequest, ApiResponse, ApiWatchEvent, ContinueToken, ResourceId};
use crate::etcd::{
    EtcdError, Key, KvRequest, KvResponse, WatchRequest, WatchResponse, WatchResponseKind,
};
use crate::proto::Host;
use crate::scenario::{FaultKind, Scenario, Step, format_ns};

/// The watch id the script gives every watch on its own stream.
const SCRIPT_WATCH_ID: i64 = 1;

/// State of the scripted client.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ScriptClient {
    /// Step indices (file positions) in execution order: by `at`, ties in file order.
    order: Vec<usize>,
    /// Position in `order` of the next step to issue.
    next: usize,
    kv_conn: Option<ConnId>,
    next_req_id: u64,
    /// KV requests awaiting an answer: request id -> step index.
    pending_kv: OrdMap<u64, usize>,
    /// Open scripted etcd watches: id -> stream.
    watch_streams: OrdMap<String, ConnId>,
    /// Stream -> (watch id, the `etcd.watch` step that opened it).
    stream_owner: OrdMap<ConnId, (String, usize)>,
    /// One request connection per apiserver.
    api_conns: OrdMap<u32, ConnId>,
    /// API requests awaiting an answer: (conn, request id) -> step index.
    pending_api: OrdMap<(ConnId, u64), usize>,
    /// The last continue token per (apiserver, resource), for `continue = true`.
    continue_tokens: OrdMap<(u32, ResourceId), ContinueToken>,
    /// Open API watches: id -> connection; connection -> (id, step).
    api_watches: OrdMap<String, ConnId>,
    api_watch_owner: OrdMap<ConnId, (String, usize)>,
    /// The labels of every object the script last wrote successfully (absent = none), which an
    /// `api.update` without `labels` keeps (a client's read-modify-write).
    labels_written: OrdMap<Key, LabelSetId>,
}

impl ScriptClient {
    /// Steps issued so far and requests still awaiting an answer: where the script stands as a
    /// writer, with no revision in it (the explorer's reduction measurement).
    pub fn position(&self) -> (usize, usize, usize) {
        (self.next, self.pending_kv.len(), self.pending_api.len())
    }

    /// A client for `scenario`'s steps; arms the first step's timer.
    pub fn new(scenario: &Scenario, ctx: &mut Ctx<'_>) -> Self {
        let mut order: Vec<usize> = (0..scenario.steps.len()).collect();
        order.sort_by_key(|&i| scenario.steps[i].at()); // stable: ties keep file order
        let mut c = ScriptClient {
            order,
            ..Default::default()
        };
        c.arm_next(scenario, ctx);
        c
    }

    fn arm_next(&mut self, scenario: &Scenario, ctx: &mut Ctx<'_>) {
        if let Some(&idx) = self.order.get(self.next) {
            ctx.timer(
                scenario.steps[idx].at().as_ns(),
                Timer::ScriptStep(idx as u32),
            );
        }
    }

    fn send_kv(&mut self, ctx: &mut Ctx<'_>, step: usize, req: KvRequest) {
        let conn = *self
            .kv_conn
            .get_or_insert_with(|| ctx.connect(Actor::Script, Actor::Etcd));
        let req_id = self.next_req_id;
        self.next_req_id += 1;
        self.pending_kv.insert(req_id, step);
        ctx.send(conn, Dir::ToServer, Msg::Kv { req_id, req });
    }

    /// The timer of step `idx` fired: issue it, then arm the next step.
    pub fn issue(
        &mut self,
        idx: usize,
        scenario: &Scenario,
        ctx: &mut Ctx<'_>,
        obs: &mut Observations,
    ) -> &'static str {
        let step = &scenario.steps[idx];
        match step.op_name().split('.').next() {
            Some("etcd") => self.issue_etcd(idx, scenario, ctx, obs),
            Some("api") => self.issue_api(idx, scenario, ctx, obs),
            _ => self.issue_fault(idx, scenario, ctx, obs),
        }
        self.next += 1;
        self.arm_next(scenario, ctx);
        step.op_name()
    }

    /// An `etcd.*` step: a KV request, or a watch opened, cancelled or asked for progress on its
    /// own stream.
    fn issue_etcd(
        &mut self,
        idx: usize,
        scenario: &Scenario,
        ctx: &mut Ctx<'_>,
        obs: &mut Observations,
    ) {
        let step = &scenario.steps[idx];
        if let Some(req) = etcd_kv_request(step) {
            return self.send_kv(ctx, idx, req);
        }
        match step {
            Step::EtcdWatch {
                id,
                key,
                prefix,
                start_revision,
                progress_notify,
                ..
            } => {
                let conn = ctx.connect(Actor::Script, Actor::Etcd);
                self.watch_streams.insert(id.clone(), conn);
                self.stream_owner.insert(conn, (id.clone(), idx));
                obs.watches.entry(id.clone()).or_default();
                ctx.send(
                    conn,
                    Dir::ToServer,
                    Msg::Watch(WatchRequest::Create {
                        watch_id: SCRIPT_WATCH_ID,
                        range: key_range(key, *prefix),
                        start_revision: *start_revision,
                        progress_notify: *progress_notify,
                    }),
                );
            }
            Step::EtcdCancel { id, .. } | Step::EtcdProgress { id, .. } => {
                let req = match step {
                    Step::EtcdCancel { .. } => WatchRequest::Cancel {
                        watch_id: SCRIPT_WATCH_ID,
                    },
                    _ => WatchRequest::Progress,
                };
                if let Some(&conn) = self.watch_streams.get(id) {
                    ctx.send(conn, Dir::ToServer, Msg::Watch(req));
                }
                obs.script_results[idx] = Some(json!({}));
            }
            // Other kinds are issued by the other `issue_*` methods.
            _ => {}
        }
    }

    /// An `api.*` step: a request to an apiserver (selectors compiled, labels resolved), or a watch
    /// opened or closed. A resourceVersion that does not parse is answered 400 at once.
    fn issue_api(
        &mut self,
        idx: usize,
        scenario: &Scenario,
        ctx: &mut Ctx<'_>,
        obs: &mut Observations,
    ) {
        let step = &scenario.steps[idx];
        let bad_request = |obs: &mut Observations, message: String| {
            obs.script_results[idx] =
                Some(json!({"error": {"code": 400, "reason": "BadRequest", "message": message}}));
        };
        if let Some(req) = api_write_request(scenario, step, &self.labels_written) {
            return self.send_api(ctx, idx, 0, req);
        }
        match api_read_request(scenario, step, &self.continue_tokens) {
            Some(Ok((server, req))) => return self.send_api(ctx, idx, server, req),
            Some(Err(message)) => return bad_request(obs, message),
            None => {}
        }
        match (step, api_watch_request(scenario, step)) {
            (Step::ApiWatch { id, server, .. }, Some(Ok(req))) => {
                let conn = ctx.connect(Actor::Script, Actor::Apiserver(*server));
                self.api_watches.insert(id.clone(), conn);
                self.api_watch_owner.insert(conn, (id.clone(), idx));
                obs.watches.entry(id.clone()).or_default();
                self.pending_api.insert((conn, 0), idx);
                ctx.send(conn, Dir::ToServer, Msg::api(0, req));
            }
            (_, Some(Err(message))) => bad_request(obs, message),
            (Step::ApiUnwatch { id, .. }, _) => {
                if let Some(conn) = self.api_watches.remove(id) {
                    self.api_watch_owner.remove(&conn);
                    ctx.send(conn, Dir::ToServer, Msg::Hangup);
                }
                obs.script_results[idx] = Some(json!({}));
            }
            // Other kinds are issued by the other `issue_*` methods.
            _ => {}
        }
    }

    /// A `fault.*` step: asks the world to inject the fault.
    fn issue_fault(
        &mut self,
        idx: usize,
        scenario: &Scenario,
        ctx: &mut Ctx<'_>,
        obs: &mut Observations,
    ) {
        let step = &scenario.steps[idx];
        match step {
            Step::FaultCompactNow { .. } => {
                self.fault(ctx, idx, obs, FaultKind::CompactNow, None, None)
            }
            Step::FaultHeal { .. } => self.fault(ctx, idx, obs, FaultKind::Heal, None, None),
            Step::FaultRestartApiserver { server, for_, .. }
            | Step::FaultPartitionApiserver { server, for_, .. }
            | Step::FaultStallApiserver { server, for_, .. } => {
                let kind = match step {
                    Step::FaultRestartApiserver { .. } => FaultKind::RestartApiserver,
                    Step::FaultPartitionApiserver { .. } => FaultKind::PartitionApiserver,
                    _ => FaultKind::StallApiserver,
                };
                self.fault(ctx, idx, obs, kind, *server, for_.map(|d| d.as_ns()))
            }
            Step::FaultRestartClient { client, .. } => {
                match crate::client::instance_id(scenario, client) {
                    Some(id) => {
                        ctx.inject(super::FaultRequest::RestartClient(id));
                        obs.script_results[idx] = Some(json!({}));
                    }
                    None => self.fault(ctx, idx, obs, FaultKind::RestartClient, None, None),
                }
            }
            // Other kinds are issued by the other `issue_*` methods.
            _ => {}
        }
    }

    fn fault(
        &mut self,
        ctx: &mut Ctx<'_>,
        idx: usize,
        obs: &mut Observations,
        kind: FaultKind,
        server: Option<u32>,
        for_: Option<u64>,
    ) {
        match fault_request(kind, server, for_, None) {
            Some(req) => {
                ctx.inject(req);
                obs.script_results[idx] = Some(json!({}));
            }
            None => {
                obs.script_results[idx] = Some(json!({"error": {
                    "code": 501,
                    "reason": "NotImplemented",
                    "message": format!("fault {kind:?} needs a component this version of watchsim does not model yet"),
                }}));
                obs.notes.push(format!(
                    "step {idx} ({kind:?}) was not executed: not modelled yet"
                ));
            }
        }
    }

    fn send_api(&mut self, ctx: &mut Ctx<'_>, step: usize, server: u32, req: ApiRequest) {
        let conn = match self.api_conns.get(&server) {
            Some(&c) if ctx.is_open(c) => c,
            _ => {
                let c = ctx.connect(Actor::Script, Actor::Apiserver(server));
                self.api_conns.insert(server, c);
                c
            }
        };
        let req_id = self.next_req_id;
        self.next_req_id += 1;
        self.pending_api.insert((conn, req_id), step);
        ctx.send(conn, Dir::ToServer, Msg::api(req_id, req));
    }

    /// Any message for the script arrived on `conn`.
    pub fn on_message(
        &mut self,
        conn: ConnId,
        msg: Msg,
        scenario: &Scenario,
        obs: &mut Observations,
    ) {
        match msg {
            Msg::KvReply { req_id, resp } => self.on_kv_reply(req_id, &resp, obs),
            Msg::WatchReply(resp) => self.on_watch_reply(conn, &resp, obs),
            Msg::ApiReply { req_id, resp } => self.on_api_reply(conn, req_id, *resp, scenario, obs),
            Msg::ApiWatch(ev) => {
                if let Some((id, _)) = self.api_watch_owner.get(&conn).cloned() {
                    obs.watches
                        .entry(id.clone())
                        .or_default()
                        .push(api_event_json(&ev));
                    if ev == ApiWatchEvent::Closed {
                        self.api_watch_owner.remove(&conn);
                        self.api_watches.remove(&id);
                    }
                }
            }
            Msg::ApiWatchBatch(events) => {
                for ev in events.events() {
                    self.on_message(conn, Msg::ApiWatch(ev.clone()), scenario, obs);
                }
            }
            Msg::Hangup => self.on_hangup(conn, obs),
            Msg::Kv { .. } | Msg::Watch(_) | Msg::Api { .. } | Msg::Goaway => {}
        }
    }

    /// An apiserver answered a scripted request: recorded as the step's result; a LIST's
    /// continue token kept for a later `continue = true`; a write's labels remembered; a
    /// refused watch forgotten.
    fn on_api_reply(
        &mut self,
        conn: ConnId,
        req_id: u64,
        resp: ApiResponse,
        scenario: &Scenario,
        obs: &mut Observations,
    ) {
        let Some(step) = self.pending_api.remove(&(conn, req_id)) else {
            return;
        };
        if let (
            ApiResponse::List(l),
            Step::ApiList {
                server, resource, ..
            },
        ) = (&resp, &scenario.steps[step])
        {
            let r = resource_id(scenario, resource);
            match &l.continue_token {
                Some(t) => {
                    self.continue_tokens.insert((*server, r), t.clone());
                }
                None => {
                    self.continue_tokens.remove(&(*server, r));
                }
            }
        }
        if let ApiResponse::Written { .. } = resp {
            self.remember_labels(scenario, step);
        }
        obs.script_results[step] = Some(api_result_json(&resp));
        if let ApiResponse::Error(_) = resp
            && let Some((id, _)) = self.api_watch_owner.remove(&conn)
        {
            self.api_watches.remove(&id);
        }
    }

    /// An apiserver closed a connection: its watch ends (CLOSED recorded), the requests still
    /// waiting on it are answered "connection reset", and the next request reconnects.
    fn on_hangup(&mut self, conn: ConnId, obs: &mut Observations) {
        if let Some((id, _)) = self.api_watch_owner.remove(&conn) {
            obs.watches
                .entry(id.clone())
                .or_default()
                .push(json!({"type": "CLOSED"}));
            self.api_watches.remove(&id);
        }
        let lost: Vec<(ConnId, u64)> = self
            .pending_api
            .keys()
            .filter(|(c, _)| *c == conn)
            .copied()
            .collect();
        for k in lost {
            if let Some(step) = self.pending_api.remove(&k) {
                obs.script_results[step] = Some(
                    json!({"error": {"code": 0, "reason": "ConnectionReset", "message": "connection closed by the apiserver"}}),
                );
            }
        }
        let stale: Vec<u32> = self
            .api_conns
            .iter()
            .filter(|(_, c)| **c == conn)
            .map(|(s, _)| *s)
            .collect();
        for server in stale {
            self.api_conns.remove(&server);
        }
    }

    /// A scripted write succeeded: remember the labels it left on its object.
    fn remember_labels(&mut self, scenario: &Scenario, step: usize) {
        match &scenario.steps[step] {
            Step::ApiCreate {
                resource,
                name,
                namespace,
                labels,
                ..
            }
            | Step::ApiUpdate {
                resource,
                name,
                namespace,
                labels,
                ..
            } => {
                let key = object_key(resource, namespace, name);
                match labels {
                    Some(l) => {
                        let id = scenario.label_table().id(l);
                        self.labels_written.insert(key, id);
                    }
                    // An update without labels keeps them; a create without labels has none.
                    None if matches!(scenario.steps[step], Step::ApiCreate { .. }) => {
                        self.labels_written.remove(&key);
                    }
                    None => {}
                }
            }
            Step::ApiDelete {
                resource,
                name,
                namespace,
                ..
            } => {
                self.labels_written
                    .remove(&object_key(resource, namespace, name));
            }
            _ => {}
        }
    }

    /// A KV answer arrived.
    pub fn on_kv_reply(
        &mut self,
        req_id: u64,
        resp: &Result<KvResponse, EtcdError>,
        obs: &mut Observations,
    ) {
        if let Some(step) = self.pending_kv.remove(&req_id) {
            obs.script_results[step] = Some(kv_result_json(resp));
        }
    }

    /// A watch response arrived on one of the script's streams.
    pub fn on_watch_reply(&mut self, conn: ConnId, resp: &WatchResponse, obs: &mut Observations) {
        let Some((id, step)) = self.stream_owner.get(&conn).cloned() else {
            return;
        };
        let events = obs.watches.entry(id).or_default();
        match &resp.kind {
            WatchResponseKind::Created => {
                obs.script_results[step] = Some(json!({"created": true}));
            }
            WatchResponseKind::Events(evs) => events.extend(evs.iter().map(kv_json)),
            WatchResponseKind::Progress => {
                events.push(json!({"type": "PROGRESS", "revision": resp.header_revision}))
            }
            WatchResponseKind::Canceled { compact_revision } => {
                events.push(json!({"type": "CANCELED", "compact_revision": compact_revision}));
            }
        }
    }

    /// The `at` of step `idx`, formatted as scenario files write it.
    pub fn at_text(scenario: &Scenario, idx: usize) -> String {
        format_ns(scenario.steps[idx].at().as_ns())
    }
}
