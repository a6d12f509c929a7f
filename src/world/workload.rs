//! Workload writers: Poisson create / update / delete / churn per `[[workload]]` entry, written
//! to etcd with the guarded txns kube-apiserver issues (etcd3 store: create = "if mod_revision
//! == 0 then put", update and delete = guarded on the object existing).
//!
//! Simplification (notes.md): until the apiserver model exists, workload writes go straight to
//! etcd at `/registry/<resource>/default/<resource>-<n>`; objects are only sizes.

use imbl::Vector;

use super::Ctx;
use super::msg::{Msg, Timer};
use super::network::{Actor, ConnId, Dir};
use crate::etcd::{Compare, CompareOp, CompareTarget, Key, KeyRange, KvRequest, Txn, TxnOp};
use crate::kernel::RngStream;
use crate::proto::Host;
use crate::scenario::{Scenario, WorkloadKind};

/// Objects of one resource that the workload knows to exist.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ResourceObjects {
    name: String,
    nodes: Option<u64>,
    object_bytes: u64,
    live: Vector<u64>,
    next_id: u64,
}

fn object_key(res: &ResourceObjects, id: u64) -> Key {
    crate::client::object_key(&res.name, id, res.nodes)
}

/// All workload writers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Workload {
    resources: Vector<ResourceObjects>,
    rngs: Vector<RngStream>,
    kv_conn: Option<ConnId>,
    next_req_id: u64,
    /// Writes issued.
    pub writes_issued: u64,
}

impl Workload {
    /// Writers for `scenario`; `preloaded` objects per resource already exist with ids 0..count.
    pub fn new(scenario: &Scenario, seed: u64, ctx: &mut Ctx<'_>) -> Self {
        let resources = scenario
            .resources
            .iter()
            .map(|r| ResourceObjects {
                name: r.name.clone(),
                nodes: crate::client::nodes_for(scenario, &r.name),
                object_bytes: r.object_bytes.0,
                live: (0..r.count).collect(),
                next_id: r.count,
            })
            .collect();
        let mut w = Workload {
            resources,
            ..Default::default()
        };
        for (i, entry) in scenario.workload.iter().enumerate() {
            let mut rng = RngStream::new(seed, &format!("workload.{i}"));
            if entry.rate > 0.0 {
                let first = rng.exponential_ns(1e9 / entry.rate);
                ctx.timer(ctx.now.saturating_add(first), Timer::Workload(i as u32));
            }
            w.rngs.push_back(rng);
        }
        w
    }

    /// Workload `i`'s timer fired: issue one write and arm the next.
    pub fn fire(&mut self, i: usize, scenario: &Scenario, ctx: &mut Ctx<'_>) -> &'static str {
        let entry = &scenario.workload[i];
        let Some(res_idx) = self.resources.iter().position(|r| r.name == entry.resource) else {
            return "none";
        };
        let rng = &mut self.rngs[i];
        let kind = match entry.kind {
            WorkloadKind::Churn => {
                let u = rng.unit();
                if u < 0.5 {
                    WorkloadKind::Update
                } else if u < 0.75 {
                    WorkloadKind::Create
                } else {
                    WorkloadKind::Delete
                }
            }
            k => k,
        };
        let res = &mut self.resources[res_idx];
        let exists = |key: &Key| Compare {
            key: key.clone(),
            target: CompareTarget::Version,
            op: CompareOp::Greater,
            value: 0,
        };
        let (txn, label) = match kind {
            WorkloadKind::Create => {
                let id = res.next_id;
                res.next_id += 1;
                res.live.push_back(id);
                let key = object_key(res, id);
                let absent = Compare {
                    key: key.clone(),
                    target: CompareTarget::Mod,
                    op: CompareOp::Equal,
                    value: 0,
                };
                (
                    Txn {
                        compares: vec![absent],
                        success: vec![TxnOp::Put {
                            key,
                            value_bytes: res.object_bytes,
                            value_tag: 0,
                        }],
                        failure: vec![],
                    },
                    "create",
                )
            }
            WorkloadKind::Update | WorkloadKind::Delete if res.live.is_empty() => {
                let next = rng.exponential_ns(1e9 / entry.rate);
                ctx.timer(ctx.now.saturating_add(next), Timer::Workload(i as u32));
                return "skip-empty";
            }
            WorkloadKind::Update => {
                let id = res.live[rng.below(res.live.len() as u64) as usize];
                let key = object_key(res, id);
                (
                    Txn {
                        compares: vec![exists(&key)],
                        success: vec![TxnOp::Put {
                            key,
                            value_bytes: res.object_bytes,
                            value_tag: 0,
                        }],
                        failure: vec![],
                    },
                    "update",
                )
            }
            _ => {
                let pos = rng.below(res.live.len() as u64) as usize;
                let id = res.live[pos];
                let last = res.live.pop_back().expect("non-empty");
                if pos < res.live.len() {
                    res.live.set(pos, last);
                }
                let key = object_key(res, id);
                (
                    Txn {
                        compares: vec![exists(&key)],
                        success: vec![TxnOp::Delete(KeyRange::Single(key))],
                        failure: vec![],
                    },
                    "delete",
                )
            }
        };
        let next = rng.exponential_ns(1e9 / entry.rate);
        ctx.timer(ctx.now.saturating_add(next), Timer::Workload(i as u32));
        let conn = *self
            .kv_conn
            .get_or_insert_with(|| ctx.connect(Actor::Workload, Actor::Etcd));
        let req_id = super::msg::NO_REPLY;
        self.writes_issued += 1;
        ctx.send(
            conn,
            Dir::ToServer,
            Msg::Kv {
                req_id,
                req: KvRequest::Txn(txn),
            },
        );
        label
    }
}
