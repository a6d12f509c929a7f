//! The scripted-steps client (SPEC §3): issues each `[[steps]]` operation at its time, like an
//! `etcdctl` user would, and records the answers. Each `etcd.watch` opens its own watch stream
//! (one gRPC Watch call per watch, as one `etcdctl watch` process per watch), so an
//! `etcd.progress` on it is answered for that watch alone.

use imbl::OrdMap;
use serde_json::{Value, json};

use super::Ctx;
use super::msg::{Msg, Timer};
use super::network::{Actor, ConnId, Dir};
use super::observe::Observations;
use crate::etcd::{
    EtcdError, Event, EventKind, Key, KeyRange, KvRequest, KvResponse, TxnOpResult, WatchRequest,
    WatchResponse, WatchResponseKind,
};
use crate::scenario::{Scenario, Step, format_ns};

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
}

fn kv_json(ev: &Event) -> Value {
    json!({
        "type": match ev.kind { EventKind::Put => "PUT", EventKind::Delete => "DELETE" },
        "key": ev.kv.key.as_str(),
        "mod_revision": ev.kv.mod_revision,
        "create_revision": ev.kv.create_revision,
        "version": ev.kv.version,
    })
}

fn error_json(e: &EtcdError) -> Value {
    match e {
        EtcdError::Compacted { compact_revision } => {
            json!({"error": e.kind(), "compact_revision": compact_revision})
        }
        _ => json!({"error": e.kind(), "message": e.to_string()}),
    }
}

fn kv_result_json(resp: &Result<KvResponse, EtcdError>) -> Value {
    match resp {
        Err(e) => error_json(e),
        Ok(KvResponse::Put { revision }) | Ok(KvResponse::Compact { revision }) => {
            json!({"revision": revision})
        }
        Ok(KvResponse::Delete { revision, deleted }) => {
            json!({"revision": revision, "deleted": deleted})
        }
        Ok(KvResponse::Range(r)) => json!({
            "revision": r.revision,
            "count": r.count,
            "more": r.more,
            "kvs": r.kvs.iter().map(|kv| json!({
                "key": kv.key.as_str(),
                "create_revision": kv.create_revision,
                "mod_revision": kv.mod_revision,
                "version": kv.version,
            })).collect::<Vec<_>>(),
        }),
        Ok(KvResponse::Txn(t)) => json!({
            "revision": t.revision,
            "succeeded": t.succeeded,
            "responses": t.responses.iter().map(|r| match r {
                TxnOpResult::Put => json!({"put": {}}),
                TxnOpResult::Delete { deleted } => json!({"delete": {"deleted": deleted}}),
                TxnOpResult::Range(rr) => json!({"range": {"count": rr.count}}),
            }).collect::<Vec<_>>(),
        }),
    }
}

fn key_range(key: &str, prefix: bool) -> KeyRange {
    if prefix {
        KeyRange::Prefix(Key::new(key))
    } else {
        KeyRange::Single(Key::new(key))
    }
}

impl ScriptClient {
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
                let conn = ctx.open_watch_stream(Actor::Script);
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
            Step::FaultCompactNow { .. } => {
                ctx.compact_now();
                obs.script_results[idx] = Some(json!({}));
            }
            other => {
                let op = other.op_name();
                obs.script_results[idx] = Some(json!({"error": {
                    "code": 501,
                    "reason": "NotImplemented",
                    "message": format!("{op} needs a component this version of watchsim does not model yet"),
                }}));
                let note = format!("step {idx} ({op}) was not executed: not modelled yet");
                if !obs.notes.contains(&note) {
                    obs.notes.push(note);
                }
            }
        }
        self.next += 1;
        self.arm_next(scenario, ctx);
        step.op_name()
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
