//! Workload writers: Poisson create / update / delete / churn per `[[workload]]` entry, written
//! to etcd with the guarded txns kube-apiserver issues (etcd3 store: create = "if mod_revision
//! == 0 then put", update and delete = guarded on the object existing).
//!
//! Simplification (notes.md): until the apiserver model exists, workload writes go straight to
//! etcd at `/registry/<resource>/default/<resource>-<n>`; objects are only sizes.

use super::Ctx;
use super::msg::{Msg, Timer};
use super::network::{Actor, ConnId, Dir};
use crate::etcd::{Compare, CompareOp, CompareTarget, Key, KeyRange, KvRequest, Txn, TxnOp};
use smallvec::smallvec;
use std::sync::Arc;

use crate::kernel::cow::CowSeq;
use crate::kernel::prefetch::{Stage, prefetch};
use crate::kernel::{RngStream, Unhashed};
use crate::proto::Host;
use crate::scenario::{Scenario, WorkloadKind};

/// Objects of one resource that the workload knows to exist.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ResourceObjects {
    name: String,
    nodes: Option<u64>,
    object_bytes: u64,
    live: CowSeq<u64>,
    next_id: u64,
    /// Each object's key by id, made once: a write does not build and intern its key's text
    /// again (issue 16). Derived from the fields above: left out of the state's hash.
    keys: Unhashed<Arc<Vec<Key>>>,
}

/// A guard that the key exists (`version > 0`): the etcd3 store's update and delete.
fn exists(key: &Key) -> Compare {
    Compare {
        key: key.clone(),
        target: CompareTarget::Version,
        op: CompareOp::Greater,
        value: 0,
    }
}

impl ResourceObjects {
    fn key(&mut self, id: u64) -> Key {
        if let Some(k) = self.keys.get(id as usize) {
            return k.clone();
        }
        let key = crate::client::object_key(&self.name, id, self.nodes);
        if id as usize == self.keys.len() {
            Arc::make_mut(&mut self.keys.0).push(key.clone());
        }
        key
    }

    /// A create of the next object: "if `mod_revision == 0` then put".
    fn create(&mut self) -> Txn {
        let id = self.next_id;
        self.next_id += 1;
        self.live.make_mut().push(id);
        let key = self.key(id);
        let absent = Compare {
            key: key.clone(),
            target: CompareTarget::Mod,
            op: CompareOp::Equal,
            value: 0,
        };
        Txn {
            compares: smallvec![absent],
            success: smallvec![TxnOp::Put {
                key,
                value_bytes: self.object_bytes,
                value_tag: 0,
            }],
            failure: smallvec![],
        }
    }

    /// An update of a live object drawn at random, guarded on its existence.
    fn update(&mut self, rng: &mut RngStream) -> Txn {
        let id = self.live[rng.below(self.live.len() as u64) as usize];
        let key = self.key(id);
        Txn {
            compares: smallvec![exists(&key)],
            success: smallvec![TxnOp::Put {
                key,
                value_bytes: self.object_bytes,
                value_tag: 0,
            }],
            failure: smallvec![],
        }
    }

    /// A delete of a live object drawn at random (the last live id takes its place).
    fn delete(&mut self, rng: &mut RngStream) -> Txn {
        let pos = rng.below(self.live.len() as u64) as usize;
        let live = self.live.make_mut();
        let id = live[pos];
        let last = live.pop().expect("non-empty");
        if pos < live.len() {
            live[pos] = last;
        }
        let key = self.key(id);
        Txn {
            compares: smallvec![exists(&key)],
            success: smallvec![TxnOp::Delete(KeyRange::Single(key))],
            failure: smallvec![],
        }
    }
}

/// The kind of one write of an entry of kind `kind`: churn draws half updates, a quarter
/// creates and a quarter deletes; the other kinds are what they say.
fn write_kind(kind: WorkloadKind, rng: &mut RngStream) -> WorkloadKind {
    match kind {
        WorkloadKind::Churn => match rng.unit() {
            u if u < 0.5 => WorkloadKind::Update,
            u if u < 0.75 => WorkloadKind::Create,
            _ => WorkloadKind::Delete,
        },
        k => k,
    }
}

/// All workload writers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Workload {
    resources: CowSeq<ResourceObjects>,
    rngs: CowSeq<RngStream>,
    kv_conn: Option<ConnId>,
    next_req_id: u64,
    /// Writes issued.
    pub writes_issued: u64,
    /// Each `[[workload]]` entry's resource, by position in `resources` (found once, by name).
    /// Derived from the scenario: left out of the state's hash.
    entry_resource: Unhashed<Arc<Vec<Option<usize>>>>,
}

impl Workload {
    /// Writers for `scenario`; the objects of each resource with ids 0..count already exist
    /// in etcd under `preloaded[resource]`.
    pub fn new(
        scenario: &Scenario,
        seed: u64,
        preloaded: Vec<Arc<Vec<Key>>>,
        ctx: &mut Ctx<'_>,
    ) -> Self {
        let resources = scenario
            .resources
            .iter()
            .zip(preloaded)
            .map(|(r, keys)| ResourceObjects {
                name: r.name.clone(),
                nodes: crate::client::nodes_for(scenario, &r.name),
                object_bytes: r.object_bytes.0,
                live: (0..r.count).collect(),
                next_id: r.count,
                keys: Unhashed(keys),
            })
            .collect();
        let entry_resource = scenario
            .workload
            .iter()
            .map(|e| scenario.resources.iter().position(|r| r.name == e.resource))
            .collect();
        let mut w = Workload {
            resources,
            entry_resource: Unhashed(Arc::new(entry_resource)),
            ..Default::default()
        };
        for (i, entry) in scenario.workload.iter().enumerate() {
            let mut rng = RngStream::new(seed, &format!("workload.{i}"));
            if entry.rate > 0.0 {
                let first = rng.exponential_ns(1e9 / entry.rate);
                ctx.timer(ctx.now.saturating_add(first), Timer::Workload(i as u32));
            }
            w.rngs.make_mut().push(rng);
        }
        w
    }

    /// Asks (issue 16, `world/read_ahead.rs`) for the lines workload `i`'s next write reads
    /// first: at [`Stage::Table`] the live list's slot its draw lands on, at [`Stage::Entry`]
    /// (a step later, the slot come in) that object's key. In `cluster-15k` these two misses,
    /// one after the other, were 4 % of the time (the 1,500 lease renewals a second). The draws
    /// are made on a copy of the entry's stream, so nothing the run computes changes; should
    /// the live list change before the write, the hint is only wasted.
    pub fn prefetch_next_write(&self, i: usize, scenario: &Scenario, stage: Stage) {
        let Some(res) = self
            .entry_resource
            .get(i)
            .copied()
            .flatten()
            .and_then(|r| self.resources.get(r))
        else {
            return;
        };
        let (Some(entry), Some(rng)) = (scenario.workload.get(i), self.rngs.get(i)) else {
            return;
        };
        if res.live.is_empty() {
            return;
        }
        let mut rng = rng.clone();
        let id = match write_kind(entry.kind, &mut rng) {
            WorkloadKind::Create => res.next_id,
            _ => {
                let slot = &res.live[rng.below(res.live.len() as u64) as usize];
                if stage == Stage::Table {
                    return prefetch(slot);
                }
                *slot
            }
        };
        if stage == Stage::Entry
            && let Some(key) = res.keys.get(id as usize)
        {
            prefetch(key);
        }
    }

    /// Workload `i`'s timer fired: issue one write and arm the next.
    pub fn fire(&mut self, i: usize, scenario: &Scenario, ctx: &mut Ctx<'_>) -> &'static str {
        let entry = &scenario.workload[i];
        let Some(res_idx) = self.entry_resource.get(i).copied().flatten() else {
            return "none";
        };
        let rng = &mut self.rngs.make_mut()[i];
        let kind = write_kind(entry.kind, rng);
        let res = &mut self.resources.make_mut()[res_idx];
        let write = match kind {
            WorkloadKind::Create => Some((res.create(), "create")),
            WorkloadKind::Update | WorkloadKind::Delete if res.live.is_empty() => None,
            WorkloadKind::Update => Some((res.update(rng), "update")),
            _ => Some((res.delete(rng), "delete")),
        };
        let next = rng.exponential_ns(1e9 / entry.rate);
        ctx.timer(ctx.now.saturating_add(next), Timer::Workload(i as u32));
        let Some((txn, label)) = write else {
            return "skip-empty";
        };
        let conn = *self
            .kv_conn
            .get_or_insert_with(|| ctx.connect(Actor::Workload, Actor::Etcd));
        self.writes_issued += 1;
        let req = KvRequest::Txn(ctx.boxed_txn(txn));
        let req_id = super::msg::NO_REPLY;
        ctx.send(conn, Dir::ToServer, Msg::Kv { req_id, req });
        label
    }
}
