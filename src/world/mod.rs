//! The whole simulated system as one deterministic transition system (design.md "One model, two
//! drivers"): `World` holds every component, the network and the agenda of pending events;
//! `World::apply(Action)` is the only place state changes. Components never call one another:
//! they consume one message or timer and emit messages and timers through [`Ctx`]; faults they
//! request are applied by the world (the environment) after the handler returns.

mod apply;
pub mod balancer;
pub mod msg;
pub mod network;
pub mod observe;
mod read_ahead;
mod reductions;
pub mod script;
mod script_json;
mod script_requests;
pub mod workload;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::apiserver::Apiserver;
use crate::client::{self, Fleet, Reflector};
use crate::etcd::{EtcdConfig, EtcdServer};
use crate::kernel::cow::{CowBox, CowVec};
use crate::kernel::{Agenda, BoxPool, EventKey, Nanos, RngStream, Scratch, ScratchPool};
pub use crate::kernel::{Shared, Unhashed};
use crate::monitor::Checker;
use crate::proto::Notice;
pub use crate::proto::relabel;
pub use crate::proto::step::{FaultRequest, Outcome};
use crate::proto::{Effect, Host, Out};
use crate::scenario::{DurationDistribution, FaultKind, Mutants, Scenario};
use balancer::LoadBalancer;
pub use msg::{Msg, Pending, Timer};
pub use network::{Actor, ConnId, Dir, Network};
pub use observe::Observations;
use script::ScriptClient;
use workload::Workload;

/// One atomic thing that can happen next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Fire the pending agenda entry with this key: deliver a message or run a timer.
    Fire(EventKey),
}

/// Why an action could not be applied (a corrupt or diverged capsule).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// No pending event has this key.
    #[error("no pending event at t={}ns seq={}", .0.due_ns, .0.seq)]
    NotPending(EventKey),
}

/// The plumbing a component may use while it handles one message or timer: the clock, sending
/// messages, opening connections and arming timers. It never reaches another component.
pub struct Ctx<'a> {
    /// Virtual time now.
    pub now: Nanos,
    /// The scenario's `[mutants]`: deliberate model bugs for the broken-model tests (all off).
    pub mutants: Mutants,
    agenda: &'a mut Agenda<Pending>,
    net: &'a mut Network,
    emitted: u32,
    fault: Option<FaultRequest>,
    notices: Vec<Notice>,
    /// The effects buffer handlers' `Out`s reuse (see [`Host::effects_buffer`]).
    spare_effects: Scratch<Effect>,
    /// Target lists of delivered multicasts, lent to new ones (see [`Host::targets_buffer`]).
    spare_targets: ScratchPool<crate::proto::MulticastTarget>,
    /// Boxes of txns delivered to etcd, lent to new ones (see [`Ctx::boxed_txn`]).
    spare_txns: BoxPool<crate::proto::etcd::Txn>,
    /// The step goes through the fan-out lanes (the simulator's loop, [`World::apply_reusing`]):
    /// see [`Ctx::multicast`].
    lanes: bool,
}

impl Ctx<'_> {
    /// Sends `msg` on `conn` in direction `dir`; it arrives after the link's latency, in order.
    pub fn send(&mut self, conn: ConnId, dir: Dir, msg: Msg) {
        let due = self.net.delivery_time(self.now, conn, dir);
        self.agenda
            .schedule(due, Pending::Deliver { conn, dir, msg });
        self.emitted += 1;
    }

    /// Sends the same message to many connections as one delivery step, when latency has no
    /// jitter (else one message per connection). FIFO per connection is kept: the delivery is due
    /// no earlier than anything already queued on any of them. Each target names the actor at
    /// its receiving end and a tag (the per-receiver etcd watch id for watch responses).
    pub fn multicast(&mut self, targets: Vec<crate::proto::MulticastTarget>, dir: Dir, msg: Msg) {
        if targets.is_empty() {
            return;
        }
        if targets.len() == 1 || self.net.has_jitter() {
            for &(conn, _, tag) in &targets {
                self.send(conn, dir, retag(&msg, tag));
            }
            self.spare_targets.put_back(targets);
            return;
        }
        // With no jitter every message is due exactly one latency after it is sent, so none
        // can overtake an earlier one and the targets' FIFO horizons (state the explorer
        // compares, and keeps) need not be read or moved: the simulator's loop skips them, a
        // cache miss per receiver.
        let due = if self.lanes {
            self.net.fixed_delivery_time(self.now)
        } else {
            let conns: Vec<ConnId> = targets.iter().map(|t| t.0).collect();
            self.net.multicast_time(self.now, &conns, dir)
        };
        self.agenda
            .schedule(due, Pending::Multicast { targets, dir, msg });
        self.emitted += 1;
    }

    /// Arms a timer at absolute time `at`.
    pub fn timer(&mut self, at: Nanos, timer: Timer) {
        self.agenda.schedule(at, Pending::Timer(timer));
        self.emitted += 1;
    }

    /// `txn` boxed for a request, in a box a delivered txn handed back when there is one (a
    /// workload write's txn: one allocation a write otherwise).
    pub fn boxed_txn(&mut self, txn: crate::proto::etcd::Txn) -> Box<crate::proto::etcd::Txn> {
        self.spare_txns.boxed(txn)
    }

    /// Takes back the box of a txn etcd has handled.
    pub fn recycle_txn(&mut self, b: Box<crate::proto::etcd::Txn>) {
        self.spare_txns.put_back(b);
    }

    /// Resets every connection of `actor` (its process died): they close at once, messages in
    /// flight on them are lost, and the other ends learn it after the link latency.
    pub fn reset_all(&mut self, actor: Actor) {
        for (conn, c) in self.net.conns_of(actor) {
            let other = if c.client == actor {
                c.server
            } else {
                c.client
            };
            self.net.close(conn);
            let due = self.now + self.net.latency_ns();
            self.agenda
                .schedule(due, Pending::Reset { conn, to: other });
            self.emitted += 1;
        }
    }

    /// Resets one connection (e.g. refused by a process that is down); the opener learns it.
    pub fn reset_conn(&mut self, conn: ConnId) {
        if let Some(c) = self.net.close(conn) {
            let due = self.now + self.net.latency_ns();
            self.agenda
                .schedule(due, Pending::Reset { conn, to: c.client });
            self.emitted += 1;
        }
    }

    /// Asks the world to inject a fault once the current step's handler returns.
    pub fn inject(&mut self, fault: FaultRequest) {
        self.fault = Some(fault);
    }

    /// Tells the invariant checker a fact it cannot see on the wire (never changes behaviour).
    pub fn notice(&mut self, notice: Notice) {
        self.notices.push(notice);
    }

    /// Asks the fault injector to compact etcd at its current revision.
    pub fn compact_now(&mut self) {
        self.inject(FaultRequest::CompactNow);
    }

    /// The effects buffer a component handler writes into; its effects are applied here, in
    /// order, when it is dropped (at the end of the statement that called the handler).
    pub fn out(&mut self) -> Out<'_> {
        Out::new(self.now, self)
    }
}

impl Host for Ctx<'_> {
    fn connect(&mut self, client: Actor, server: Actor) -> ConnId {
        self.net.connect(client, server)
    }

    fn is_open(&self, conn: ConnId) -> bool {
        self.net.conn(conn).is_some()
    }

    fn client_of(&self, conn: ConnId) -> Option<Actor> {
        self.net.conn(conn).map(|c| c.client)
    }

    fn apply(&mut self, effects: &mut Vec<Effect>, notices: &mut Vec<Notice>) {
        for effect in effects.drain(..) {
            match effect {
                Effect::Send { conn, dir, msg } => self.send(conn, dir, msg),
                Effect::Multicast { targets, dir, msg } => self.multicast(targets, dir, msg),
                Effect::Timer { at, timer } => self.timer(at, timer),
            }
        }
        self.notices.append(notices);
    }

    fn effects_buffer(&mut self) -> Vec<Effect> {
        self.spare_effects.take()
    }

    fn recycle_effects(&mut self, buf: Vec<Effect>) {
        self.spare_effects.put_back(buf);
    }

    fn targets_buffer(&mut self, capacity: usize) -> Vec<crate::proto::MulticastTarget> {
        self.spare_targets.take(capacity)
    }

    fn recycle_targets(&mut self, buf: Vec<crate::proto::MulticastTarget>) {
        self.spare_targets.put_back(buf);
    }
}

/// The whole system.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct World {
    now: Nanos,
    agenda: Agenda<Pending>,
    net: Network,
    etcd: EtcdServer,
    etcd_rng: RngStream,
    apiservers: CowVec<Apiserver>,
    clients: Fleet,
    lb: LoadBalancer,
    faults_rng: RngStream,
    script: ScriptClient,
    workload: Workload,
    scenario: Shared<Scenario>,
    obs: Unhashed<CowBox<Observations>>,
}

/// The temporary lists of a step, lent by a caller that applies many steps in a row (the
/// simulator's loop) so that they are allocated once, not once per step (issue 16). They only
/// lend their capacity: what a step computes never depends on them. They are kept outside the
/// world so that the explorer's copies of a world neither carry nor copy them.
#[derive(Debug, Default)]
pub struct StepBuffers {
    effects: Scratch<Effect>,
    /// Multicasts' target lists (see [`ScratchPool`]).
    targets: ScratchPool<crate::proto::MulticastTarget>,
    /// Txn boxes (see [`BoxPool`]).
    txns: BoxPool<crate::proto::etcd::Txn>,
    etcd_out: Scratch<crate::etcd::WatchOutput>,
    /// The lists of a fan-out through journals.
    fan_out: apply::FanOutLists,
    /// The event whose first read-ahead stage the last step asked for (`read_ahead.rs`).
    asked_ahead: Option<EventKey>,
}

impl StepBuffers {
    /// Buffers for a loop that settles the lanes after every step ([`World::settle_lanes`]):
    /// fan-outs then take no journals, whose members every settle would release.
    pub fn settling_each_step() -> Self {
        let mut b = StepBuffers::default();
        b.fan_out.off = true;
        b
    }
}

impl World {
    /// The initial state of `scenario` under `seed`: objects of `[[resources]]` preloaded into
    /// etcd, apiservers starting their caches, the first scripted step and every workload's first
    /// write armed.
    pub fn new(scenario: Arc<Scenario>, seed: u64) -> Self {
        let s = &*scenario;
        let mut etcd = EtcdServer::new(EtcdConfig {
            max_request_bytes: s.etcd.max_request_bytes.0,
            progress_notify_interval_ns: s.etcd.progress_notify_interval.as_ns(),
        });
        let mut preloaded = Vec::with_capacity(s.resources.len());
        for r in &s.resources {
            let nodes = client::nodes_for(s, &r.name);
            let keys: Vec<crate::proto::etcd::Key> = (0..r.count)
                .map(|id| client::object_key(&r.name, id, nodes))
                .collect();
            for key in &keys {
                etcd.preload(key, r.object_bytes.0);
            }
            preloaded.push(Arc::new(keys));
        }
        let mut agenda = Agenda::new();
        let mut net = Network::new(seed, s.network.latency.as_ns(), s.network.jitter.as_ns());
        // `etcd.version = "3.4.23"` has the bugs the `etcd_*` mutants switch on, but #17529 needs
        // a full stream channel, which the model does not have (see `EtcdVersion`).
        let v = s.etcd.version;
        etcd.hub.mutant_skip_compacted = s.mutants.etcd_skip_compacted_watcher;
        etcd.hub.mutant_progress_before_catchup =
            s.mutants.etcd_progress_before_catchup || v.progress_before_catchup();
        etcd.hub.mutant_refuse_at_compact = s.mutants.etcd_watch_at_compact_refused;
        etcd.store.mutant_tombstone_at_compact_lost =
            s.mutants.etcd_tombstone_at_compact_lost || v.loses_tombstone_at_compact();
        let mut ctx = Ctx {
            now: 0,
            mutants: s.mutants,
            agenda: &mut agenda,
            net: &mut net,
            emitted: 0,
            fault: None,
            notices: Vec::new(),
            spare_effects: Scratch::default(),
            spare_targets: ScratchPool::default(),
            spare_txns: BoxPool::default(),
            lanes: false,
        };
        for (i, f) in s.faults.at.iter().enumerate() {
            ctx.timer(f.at.as_ns(), Timer::Fault(i as u32));
        }
        let apiservers = (0..s.apiserver.count)
            .map(|i| CowBox::new(Apiserver::new(i, s, seed, &mut ctx.out())))
            .collect();
        let script = ScriptClient::new(s, &mut ctx);
        let workload = Workload::new(s, seed, preloaded, &mut ctx);
        let mut clients = Fleet::new(client::build(s, seed));
        let mut start_rng = RngStream::new(seed, "clients.start");
        for c in clients.iter_mut() {
            // Clients start spread over [1 s, 2 s), after the apiservers' caches are ready.
            let at = 1_000_000_000 + start_rng.below(1_000_000_000);
            c.start(at, &mut ctx.out());
        }
        let mut faults_rng = RngStream::new(seed, "faults.disconnect");
        if let Some(first) = next_disconnect_in(s, clients.len(), &mut faults_rng) {
            ctx.timer(first, Timer::Disconnect);
        }
        if !clients.is_empty() || !s.workload.is_empty() {
            ctx.timer(60_000_000_000, Timer::Metrics);
        }
        let mut obs = Observations {
            script_results: vec![None; s.steps.len()],
            ..Default::default()
        };
        obs.commit(etcd.store.revision(), 0);
        obs.list_started = vec![None; clients.len()];
        obs.populations = vec![observe::PopulationObs::default(); s.clients.len()];
        obs.checker = Checker::new(s, &etcd, clients.boxes());
        let lb = LoadBalancer::new(s.load_balancer.policy, s.apiserver.count, seed);
        World {
            now: 0,
            agenda,
            net,
            etcd,
            etcd_rng: RngStream::new(seed, "etcd.progress_jitter"),
            apiservers,
            clients,
            lb,
            faults_rng,
            script,
            workload,
            scenario: Shared(scenario),
            obs: Unhashed(CowBox::new(obs)),
        }
    }

    /// Virtual time now.
    pub fn now(&self) -> Nanos {
        self.now
    }

    /// The scenario being run.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The etcd member.
    pub fn etcd(&self) -> &EtcdServer {
        &self.etcd
    }

    /// The apiservers.
    pub fn apiservers(&self) -> &CowVec<Apiserver> {
        &self.apiservers
    }

    /// The client reflectors. After [`apply_reusing`](Self::apply_reusing), call
    /// [`settle_lanes`](Self::settle_lanes) before reading them.
    pub fn clients(&self) -> &Fleet {
        &self.clients
    }

    /// Folds what the fan-out lanes took into what they stand for: the clients' events into the
    /// reflectors ([`Fleet`]) and the checker's in-order events into its streams
    /// ([`crate::monitor::stream_table::StreamTable`]). [`apply_reusing`](Self::apply_reusing)
    /// leaves it to its caller, before it reads the clients or the checker's streams;
    /// [`apply`](Self::apply) settles before its step and arms no lane.
    pub fn settle_lanes(&mut self) {
        self.clients.settle();
        if !self.obs.checker.settled() {
            self.obs.checker.settle();
        }
    }

    /// The open connections (read-only: who is at each end).
    pub fn network(&self) -> &Network {
        &self.net
    }

    /// Pending events.
    pub fn agenda(&self) -> &Agenda<Pending> {
        &self.agenda
    }

    /// What the run observed so far.
    pub fn observations(&self) -> &Observations {
        &self.obs
    }

    /// Where every writer stands, with no revision in it: the script's steps issued and
    /// requests outstanding, the workload's writes issued, and the version of kube-apiserver's
    /// compactor key (its compare-and-swap writes committed). Two states that differ only by a
    /// revision shift must agree on it (the explorer's reduction measurement).
    pub fn writer_positions(&self) -> [u64; 5] {
        let (issued, kv, api) = self.script.position();
        let compactor = self
            .etcd
            .store
            .get(&crate::etcd::Key::new(
                crate::apiserver::server::COMPACT_REV_KEY,
            ))
            .map_or(0, |kv| kv.version as u64);
        [
            issued as u64,
            kv as u64,
            api as u64,
            self.workload.writes_issued,
            compactor,
        ]
    }

    /// Follows other watch-cache configurations along this run (`apiserver/cache_shadow.rs`, for
    /// `watchsim sweep`). Call before the first step.
    pub fn follow_cache_configs(&mut self, configs: &[crate::scenario::WatchCacheConfig]) {
        for a in self.apiservers.iter_mut() {
            a.follow_cache_configs(configs);
        }
    }

    /// Followed configuration `m`'s cache figures per apiserver, or `None` if its decisions
    /// differed from this run's somewhere.
    pub fn followed_cache_figures(&self, m: usize) -> Option<Vec<(u64, u64)>> {
        self.apiservers
            .iter()
            .map(|a| a.followed_cache_figures(m))
            .collect()
    }

    /// Workload writes issued so far.
    pub fn workload_writes(&self) -> u64 {
        self.workload.writes_issued
    }

    /// The action the simulator takes next: the earliest pending event.
    pub fn next_timed_action(&self) -> Option<Action> {
        self.agenda.first().map(|(k, _)| Action::Fire(k))
    }

    /// Applies one action: the only way the world changes.
    ///
    /// A fan-out reaches each receiver's own state (no lanes): the explorer, which copies a
    /// world per successor, would copy the lanes too, for a few receivers.
    pub fn apply(&mut self, action: Action) -> Result<Outcome, ApplyError> {
        self.settle_lanes();
        self.apply_with(action, &mut StepBuffers::default(), false)
    }

    /// [`apply`](Self::apply), with the step's temporary lists taken from and returned to
    /// `buffers` (the same outcome and state; no allocation for them once warm), and fan-outs
    /// taken through lanes ([`Fleet`], [`crate::monitor::stream_table::StreamTable`]) that are
    /// left unsettled: call [`settle_lanes`](Self::settle_lanes) before reading the clients or
    /// the checker's streams (the simulator's loop settles them once, at its end).
    pub fn apply_reusing(
        &mut self,
        action: Action,
        buffers: &mut StepBuffers,
    ) -> Result<Outcome, ApplyError> {
        self.apply_with(action, buffers, true)
    }

    fn apply_with(
        &mut self,
        action: Action,
        buffers: &mut StepBuffers,
        lanes: bool,
    ) -> Result<Outcome, ApplyError> {
        let Action::Fire(key) = action;
        let pending = self.agenda.take(key).ok_or(ApplyError::NotPending(key))?;
        if lanes {
            read_ahead::Ahead {
                agenda: &self.agenda,
                net: &self.net,
                etcd: &self.etcd,
                apiservers: &self.apiservers,
                clients: &self.clients,
                checker: &self.obs.checker,
                workload: &self.workload,
                scenario: &self.scenario.0,
            }
            .step_started(buffers.asked_ahead.take());
        }
        self.now = self.now.max(key.due_ns);
        let World {
            now,
            agenda,
            net,
            etcd,
            etcd_rng,
            apiservers,
            clients,
            lb,
            faults_rng,
            script,
            workload,
            scenario,
            obs,
        } = self;
        // Borrowed, not cloned: a clone and a drop of the `Arc` were two locked instructions a
        // step, each waiting for the step's stores to drain (issue 16).
        let scenario: &Scenario = &scenario.0;
        // Made unique once (a copy-on-write check), not at each use.
        let obs: &mut Observations = obs;
        let mut ctx = Ctx {
            now: *now,
            mutants: scenario.mutants,
            agenda,
            net,
            emitted: 0,
            fault: None,
            notices: Vec::new(),
            spare_effects: std::mem::take(&mut buffers.effects),
            spare_targets: std::mem::take(&mut buffers.targets),
            spare_txns: std::mem::take(&mut buffers.txns),
            lanes,
        };
        // check: the invariant checker sees the event before it is handled.
        Self::check_before(obs, etcd, &pending, &ctx, lanes);
        let mut parts = apply::Parts {
            etcd,
            etcd_rng,
            apiservers,
            clients,
            lb,
            faults_rng,
            script,
            workload,
            obs,
            scenario,
            out: buffers.etcd_out.take(),
            fan_out: &mut buffers.fan_out,
            lanes,
        };
        let outcome = match parts.dispatch(pending, &mut ctx) {
            Ok(done) => {
                parts.emit_etcd_output(&mut ctx);
                if lanes {
                    buffers.asked_ahead = read_ahead::Ahead {
                        agenda: ctx.agenda,
                        net: ctx.net,
                        etcd: parts.etcd,
                        apiservers: parts.apiservers,
                        clients: parts.clients,
                        checker: &parts.obs.checker,
                        workload: parts.workload,
                        scenario: parts.scenario,
                    }
                    .step_handled();
                }
                buffers.etcd_out.put_back(std::mem::take(&mut parts.out));
                Self::finish(parts, done, &mut ctx)
            }
            // A message on a closed connection is dropped: nothing else happens in the step.
            Err(d) => {
                let emitted = ctx.emitted;
                Self::outcome(
                    parts.etcd, emitted, d.actor, d.action, d.what, d.conn, d.result,
                )
            }
        };
        buffers.effects = ctx.spare_effects;
        buffers.targets = ctx.spare_targets;
        buffers.txns = ctx.spare_txns;
        Ok(outcome)
    }

    /// The checker's look at a pending event before its handler runs.
    fn check_before(
        obs: &mut Observations,
        etcd: &EtcdServer,
        pending: &Pending,
        ctx: &Ctx<'_>,
        lanes: bool,
    ) {
        let ends = match pending {
            Pending::Deliver { conn, .. } => ctx.net.conn(*conn).map(|c| (c.client, c.server)),
            _ => None,
        };
        let net = &*ctx.net;
        obs.checker.before(
            ctx.now,
            pending,
            ends,
            etcd,
            &|c| net.conn(c).is_some(),
            lanes,
        );
    }

    /// After the handler: the fault it asked for, the step's outcome (with the minute's figures
    /// on a metrics step), and the checker's look at what the step did.
    fn finish(parts: apply::Parts<'_>, done: apply::Done, ctx: &mut Ctx<'_>) -> Outcome {
        let apply::Parts {
            etcd,
            apiservers,
            clients,
            obs,
            scenario,
            ..
        } = parts;
        let fault = ctx.fault.take();
        if let Some(fault) = fault {
            Self::inject(fault, etcd, apiservers, clients, scenario, ctx);
        }
        let apply::Done {
            actor,
            action,
            what,
            conn,
            result,
        } = done;
        let mut outcome = Self::outcome(etcd, ctx.emitted, actor, action, what, conn, result);
        if what == "metrics.minute"
            && let Some(m) = obs.series.last()
        {
            outcome.minute_relists = Some(m.relists);
            outcome.minute_etcd_bytes = Some(m.etcd_bytes);
        }
        // check: the invariant checker sees what the step did.
        let results = std::mem::take(&mut obs.script_results);
        obs.checker.after(
            &outcome,
            fault,
            &ctx.notices,
            etcd,
            apiservers,
            clients,
            scenario,
            &results,
        );
        obs.script_results = results;
        outcome
    }

    fn inject(
        fault: FaultRequest,
        etcd: &mut EtcdServer,
        apiservers: &mut CowVec<Apiserver>,
        clients: &mut Fleet,
        scenario: &Scenario,
        ctx: &mut Ctx<'_>,
    ) {
        match fault {
            FaultRequest::CompactNow => {
                let current = etcd.store.revision();
                // A no-op when etcd is already compacted at its current revision.
                let _ = etcd.store.compact(current);
            }
            FaultRequest::RestartApiserver(i, down_ns) => {
                if let Some(a) = apiservers.get_mut(i as usize) {
                    ctx.reset_all(Actor::Apiserver(i));
                    a.restart(scenario, down_ns, &mut ctx.out());
                }
            }
            FaultRequest::RestartClient(i) => {
                if let Some(c) = clients.get_mut(i as usize) {
                    c.restart(&mut ctx.out());
                }
            }
            FaultRequest::DisconnectClient(i, d) => {
                if let Some(c) = clients.get_mut(i as usize) {
                    c.disconnect(d, &mut ctx.out());
                }
            }
            FaultRequest::PartitionApiserver(i, d) => {
                if let Some(a) = apiservers.get_mut(i as usize) {
                    a.partition(d, &mut ctx.out());
                }
            }
            FaultRequest::StallApiserver(i, d) => {
                if let Some(a) = apiservers.get_mut(i as usize) {
                    a.stall(d, &mut ctx.out());
                }
            }
            FaultRequest::Heal => {
                for a in apiservers.iter_mut() {
                    a.heal(scenario, &mut ctx.out());
                }
            }
        }
    }

    fn outcome(
        etcd: &EtcdServer,
        emitted: u32,
        actor: Actor,
        action: &'static str,
        what: &'static str,
        conn: Option<ConnId>,
        result: &'static str,
    ) -> Outcome {
        Outcome {
            actor,
            action,
            what,
            conn,
            result,
            rev: etcd.store.revision(),
            compact_rev: etcd.store.compact_revision(),
            emitted,
            minute_relists: None,
            minute_etcd_bytes: None,
        }
    }
}

/// The fault a `[[faults.at]]` entry or a `fault.*` step asks for, if this version models it.
pub fn fault_request(
    kind: FaultKind,
    server: Option<u32>,
    for_: Option<Nanos>,
    client: Option<u32>,
) -> Option<FaultRequest> {
    let server = server.unwrap_or(0);
    match kind {
        FaultKind::CompactNow => Some(FaultRequest::CompactNow),
        FaultKind::RestartApiserver => {
            Some(FaultRequest::RestartApiserver(server, for_.unwrap_or(0)))
        }
        FaultKind::PartitionApiserver => Some(FaultRequest::PartitionApiserver(server, for_)),
        FaultKind::StallApiserver => Some(FaultRequest::StallApiserver(server, for_)),
        FaultKind::Heal => Some(FaultRequest::Heal),
        FaultKind::RestartClient => client.map(FaultRequest::RestartClient),
        FaultKind::DisconnectWatch => {
            client.map(|c| FaultRequest::DisconnectClient(c, for_.unwrap_or(0)))
        }
    }
}

/// A `[[faults.at]]` entry came due.
fn inject_scheduled(
    scenario: &Scenario,
    i: usize,
    ctx: &mut Ctx<'_>,
    obs: &mut Observations,
) -> &'static str {
    let f = &scenario.faults.at[i];
    let target = f
        .client
        .as_deref()
        .and_then(|name| client::instance_id(scenario, name));
    match fault_request(f.kind, f.server, f.for_.map(|d| d.as_ns()), target) {
        Some(req) => {
            ctx.inject(req);
            "injected"
        }
        None => {
            let note = format!(
                "scheduled fault {:?} was not injected: not modelled yet",
                f.kind
            );
            if !obs.notes.contains(&note) {
                obs.notes.push(note);
            }
            "not-modelled"
        }
    }
}

/// Time to the next watch disconnect of the whole client population (Poisson with rate
/// `watch_disconnect_rate` per client per hour), or None when disconnects are off.
fn next_disconnect_in(scenario: &Scenario, clients: usize, rng: &mut RngStream) -> Option<Nanos> {
    let per_hour = scenario.faults.watch_disconnect_rate * clients as f64;
    if per_hour <= 0.0 || clients == 0 {
        return None;
    }
    Some(rng.exponential_ns(3600e9 / per_hour).max(1))
}

fn disconnect_duration(scenario: &Scenario, rng: &mut RngStream) -> Nanos {
    let mean = scenario.faults.disconnect_duration.as_ns();
    match scenario.faults.disconnect_distribution {
        DurationDistribution::Fixed => mean,
        DurationDistribution::Exponential => rng.exponential_ns(mean as f64),
    }
}

/// Client-side observations: time travel (a LIST older than what the client saw before) and
/// staleness (commit-to-apply delay of events).
fn observe_client(
    id: u32,
    label: &str,
    fx: client::reflector::Effects,
    c: &mut Reflector,
    obs: &mut Observations,
    now: Nanos,
    etcd_rev: i64,
) {
    let sent = c.take_sent();
    // check: what the reflector observed and sent.
    obs.checker
        .client_observed(id, label, &fx, sent, c, etcd_rev);
    if let Some(sent) = sent
        && id < observe::LOGGED_CLIENTS
    {
        let rv = match sent.rv {
            crate::apiserver::Rv::Unset => String::new(),
            crate::apiserver::Rv::Zero => "0".to_string(),
            crate::apiserver::Rv::At(n) => n.to_string(),
        };
        obs.client_requests.push(observe::ClientRequest {
            t_ns: now,
            client: id,
            kind: sent.kind,
            rv,
            limit: sent.limit,
        });
    }
    let i = id as usize;
    let population = &mut obs.populations[c.population as usize];
    if sent.is_some_and(|s| s.kind == "list" || s.kind == "watch-list") {
        obs.list_started[i].get_or_insert(now);
    }
    if let Some(rv) = fx.listed_rv {
        if let Some(start) = obs.list_started[i].take() {
            let latency = now.saturating_sub(start);
            population.lists += 1;
            population.list_latency_sum_ns += latency;
            population.list_latency_max_ns = population.list_latency_max_ns.max(latency);
        }
        if rv < obs.checker.raise_data_rv(id, rv) {
            obs.time_travels += 1;
        }
    }
    if let Some(rv) = fx.event_rv {
        let lag = now.saturating_sub(obs.commit_time(rv));
        obs.staleness_max_ns = obs.staleness_max_ns.max(lag);
        let population = &mut obs.populations[c.population as usize];
        population.staleness_max_ns = population.staleness_max_ns.max(lag);
        obs.checker.raise_data_rv(id, rv);
    }
}

fn record_minute(
    now: Nanos,
    etcd: &EtcdServer,
    apiservers: &CowVec<Apiserver>,
    clients: &Fleet,
    obs: &mut Observations,
) {
    let relists: u64 = clients.relists();
    let bytes = etcd.counters.range_bytes;
    let written = etcd.counters.write_bytes;
    let rev = etcd.store.revision();
    let from_etcd: u64 = apiservers.iter().map(|a| a.counters.lists_from_etcd).sum();
    let (r0, b0, v0, l0, w0) = obs.series_base;
    obs.series.push(observe::MinuteSample {
        minute: now / 60_000_000_000 - 1,
        relists: relists - r0,
        etcd_bytes: bytes - b0,
        revisions: (rev - v0.max(0)).max(0) as u64,
        lists_from_etcd: from_etcd - l0,
        etcd_write_bytes: written - w0,
    });
    obs.series_base = (relists, bytes, rev, from_etcd, written);
}

/// The message for one receiver of a tagged multicast (etcd watch responses carry the
/// receiver's watch id).
fn retag(msg: &Msg, tag: i64) -> Msg {
    match msg {
        Msg::WatchReply(resp) => {
            let mut r = resp.clone();
            r.watch_id = tag;
            Msg::WatchReply(r)
        }
        other => other.clone(),
    }
}
