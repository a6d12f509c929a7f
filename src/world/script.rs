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
use super::{Ctx, fault_request};
use crate::apiserver::selector::{Field, LabelSetId, Selector};
use crate::apiserver::{
    ApiRequest, ApiResponse, ApiWatchEvent, ContinueToken, ReadRate, ResourceId, Rv, RvMatch,
};
use crate::etcd::{
    EtcdError, Key, KeyRange, KvRequest, KvResponse, WatchRequest, WatchResponse, WatchResponseKind,
};
use crate::proto::Host;
use crate::proto::api::resource_prefix;
use crate::scenario::{FaultKind, ResourceVersionMatch, Scenario, Step, format_ns};

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

fn resource_id(scenario: &Scenario, name: &str) -> ResourceId {
    scenario
        .resources
        .iter()
        .position(|r| r.name == name)
        .unwrap_or(0) as ResourceId
}

fn scope_of(resource: &str, namespace: Option<&str>) -> KeyRange {
    match namespace {
        None => KeyRange::Prefix(resource_prefix(resource)),
        Some(ns) => KeyRange::Prefix(Key::new(&format!("/registry/{resource}/{ns}/"))),
    }
}

/// The keys a LIST or WATCH reads, as the registry narrows them (`registry/store.go`
/// `ListPredicate`/`WatchPredicate`): a request without a namespace takes the namespace of an
/// exact `metadata.namespace` field term (`MatchesSingleNamespace`, when it is a valid
/// namespace name), and an exact `metadata.name` term with a namespace makes it a single-key,
/// non-recursive request (`MatchesSingle`); neither applies to a continuation.
fn request_scope(
    resource: &str,
    namespace: Option<&str>,
    selector: &Selector,
    continuing: bool,
) -> KeyRange {
    let exact = |f| selector.requires_exact(f).filter(|_| !continuing);
    let namespace = namespace.or_else(|| exact(Field::Namespace).filter(|ns| is_dns_label(ns)));
    match (namespace, exact(Field::Name)) {
        (Some(ns), Some(name)) => KeyRange::Single(object_key(resource, ns, name)),
        (ns, _) => scope_of(resource, ns),
    }
}

/// `validation.ValidateNamespaceName`: a DNS-1123 label.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The compiled selectors of a step (already validated at load).
fn step_selector(scenario: &Scenario, label: &Option<String>, field: &Option<String>) -> Selector {
    Selector::compile(label.as_deref(), field.as_deref(), &scenario.label_table())
        .unwrap_or_default()
}

fn object_key(resource: &str, namespace: &str, name: &str) -> Key {
    Key::new(&format!("/registry/{resource}/{namespace}/{name}"))
}

fn key_range(key: &str, prefix: bool) -> KeyRange {
    if prefix {
        KeyRange::Prefix(Key::new(key))
    } else {
        KeyRange::Single(Key::new(key))
    }
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
        match step {
            Step::EtcdPut {
                key, value_bytes, ..
            } => self.send_kv(
                ctx,
                idx,
                KvRequest::Put {
                    key: Key::new(key),
                    value_bytes: value_bytes.0,
                },
            ),
            Step::EtcdDelete { key, prefix, .. } => {
                self.send_kv(ctx, idx, KvRequest::Delete(key_range(key, *prefix)))
            }
            Step::EtcdRange {
                key,
                prefix,
                revision,
                limit,
                ..
            } => self.send_kv(
                ctx,
                idx,
                KvRequest::Range {
                    range: key_range(key, *prefix),
                    revision: *revision,
                    limit: *limit,
                },
            ),
            Step::EtcdCompact { revision, .. } => self.send_kv(
                ctx,
                idx,
                KvRequest::Compact {
                    revision: *revision,
                },
            ),
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
            Step::EtcdCancel { id, .. } => {
                if let Some(&conn) = self.watch_streams.get(id) {
                    ctx.send(
                        conn,
                        Dir::ToServer,
                        Msg::Watch(WatchRequest::Cancel {
                            watch_id: SCRIPT_WATCH_ID,
                        }),
                    );
                }
                obs.script_results[idx] = Some(json!({}));
            }
            Step::EtcdProgress { id, .. } => {
                if let Some(&conn) = self.watch_streams.get(id) {
                    ctx.send(conn, Dir::ToServer, Msg::Watch(WatchRequest::Progress));
                }
                obs.script_results[idx] = Some(json!({}));
            }
            // Other kinds are issued by the other `issue_*` methods.
            _ => {}
        }
    }

    /// An `api.*` step: a request to an apiserver (selectors compiled, labels resolved), or a watch
    /// opened or closed.
    fn issue_api(
        &mut self,
        idx: usize,
        scenario: &Scenario,
        ctx: &mut Ctx<'_>,
        obs: &mut Observations,
    ) {
        let step = &scenario.steps[idx];
        match step {
            Step::ApiCreate {
                resource,
                name,
                namespace,
                object_bytes,
                labels,
                ..
            } => {
                let r = resource_id(scenario, resource);
                let bytes = object_bytes
                    .map(|b| b.0)
                    .unwrap_or(scenario.resources[r as usize].object_bytes.0);
                let req = ApiRequest::Create {
                    resource: r,
                    key: object_key(resource, namespace, name),
                    bytes,
                    labels: labels.as_ref().map_or(0, |l| scenario.label_table().id(l)),
                };
                self.send_api(ctx, idx, 0, req);
            }
            Step::ApiUpdate {
                resource,
                name,
                namespace,
                object_bytes,
                labels,
                ..
            } => {
                let r = resource_id(scenario, resource);
                let bytes = object_bytes
                    .map(|b| b.0)
                    .unwrap_or(scenario.resources[r as usize].object_bytes.0);
                let key = object_key(resource, namespace, name);
                let labels = match labels {
                    Some(l) => scenario.label_table().id(l),
                    None => self.labels_written.get(&key).copied().unwrap_or(0),
                };
                let req = ApiRequest::Update {
                    resource: r,
                    key,
                    bytes,
                    labels,
                    precondition_rv: None,
                };
                self.send_api(ctx, idx, 0, req);
            }
            Step::ApiDelete {
                resource,
                name,
                namespace,
                ..
            } => {
                let r = resource_id(scenario, resource);
                let req = ApiRequest::Delete {
                    resource: r,
                    key: object_key(resource, namespace, name),
                    precondition_rv: None,
                };
                self.send_api(ctx, idx, 0, req);
            }
            Step::ApiGet {
                server,
                resource,
                name,
                namespace,
                resource_version,
                ..
            } => match Rv::parse(resource_version.as_deref()) {
                Ok(rv) => {
                    let req = ApiRequest::Get {
                        resource: resource_id(scenario, resource),
                        key: object_key(resource, namespace, name),
                        rv,
                    };
                    self.send_api(ctx, idx, *server, req);
                }
                Err(message) => {
                    obs.script_results[idx] = Some(
                        json!({"error": {"code": 400, "reason": "BadRequest", "message": message}}),
                    );
                }
            },
            Step::ApiList {
                server,
                resource,
                resource_version,
                match_,
                limit,
                continue_,
                namespace,
                label_selector,
                field_selector,
                ..
            } => {
                let r = resource_id(scenario, resource);
                let continue_token = if *continue_ {
                    self.continue_tokens.get(&(*server, r)).cloned()
                } else {
                    None
                };
                let selector = step_selector(scenario, label_selector, field_selector);
                let scope = request_scope(
                    resource,
                    namespace.as_deref(),
                    &selector,
                    continue_token.is_some(),
                );
                match Rv::parse(resource_version.as_deref()) {
                    Ok(rv) => {
                        let req = ApiRequest::List {
                            resource: r,
                            scope,
                            selector,
                            rv,
                            rv_match: match_.map(|m| match m {
                                ResourceVersionMatch::NotOlderThan => RvMatch::NotOlderThan,
                                ResourceVersionMatch::Exact => RvMatch::Exact,
                            }),
                            limit: limit.unwrap_or(0),
                            continue_token,
                        };
                        self.send_api(ctx, idx, *server, req);
                    }
                    Err(message) => {
                        obs.script_results[idx] = Some(
                            json!({"error": {"code": 400, "reason": "BadRequest", "message": message}}),
                        );
                    }
                }
            }
            Step::ApiWatch {
                id,
                server,
                resource,
                resource_version,
                bookmarks,
                send_initial_events,
                timeout,
                read_rate,
                namespace,
                label_selector,
                field_selector,
                ..
            } => {
                let r = resource_id(scenario, resource);
                let selector = step_selector(scenario, label_selector, field_selector);
                let scope = request_scope(resource, namespace.as_deref(), &selector, false);
                match Rv::parse(resource_version.as_deref()) {
                    Ok(rv) => {
                        let conn = ctx.connect(Actor::Script, Actor::Apiserver(*server));
                        self.api_watches.insert(id.clone(), conn);
                        self.api_watch_owner.insert(conn, (id.clone(), idx));
                        obs.watches.entry(id.clone()).or_default();
                        let req = ApiRequest::Watch {
                            resource: r,
                            scope,
                            selector,
                            rv,
                            bookmarks: *bookmarks,
                            send_initial_events: *send_initial_events,
                            timeout_ns: timeout.map(|t| t.as_ns()).unwrap_or(0),
                            read_rate: match read_rate {
                                None => ReadRate::Instant,
                                Some(n) => ReadRate::PerSecond(*n),
                            },
                        };
                        self.pending_api.insert((conn, 0), idx);
                        ctx.send(conn, Dir::ToServer, Msg::Api { req_id: 0, req });
                    }
                    Err(message) => {
                        obs.script_results[idx] = Some(
                            json!({"error": {"code": 400, "reason": "BadRequest", "message": message}}),
                        );
                    }
                }
            }
            Step::ApiUnwatch { id, .. } => {
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
        ctx.send(conn, Dir::ToServer, Msg::Api { req_id, req });
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
            Msg::ApiReply { req_id, resp } => {
                if let Some(step) = self.pending_api.remove(&(conn, req_id)) {
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
            }
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
            Msg::Hangup => {
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
            Msg::Kv { .. } | Msg::Watch(_) | Msg::Api { .. } | Msg::Goaway => {}
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
