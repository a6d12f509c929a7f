//! The handlers behind `World::apply`, one per kind of pending action: a message delivered on
//! one connection, a fan-out of one message to many, a connection reset, a timer. Each hands the
//! message or timer to the component it is for with the step's [`Ctx`], and says what the step
//! was ([`Done`]); `World::apply` does the bookkeeping around them (the checker before and after,
//! etcd's watch output, fault injection, the outcome).

use super::balancer::LoadBalancer;
use super::script::ScriptClient;
use super::workload::Workload;
use super::{
    Actor, ConnId, Ctx, Dir, Msg, Observations, Pending, Timer, disconnect_duration,
    inject_scheduled, msg, next_disconnect_in, observe_client, record_minute,
};
use crate::apiserver::Apiserver;
use crate::client;
use crate::etcd::{EtcdServer, WatchOutput};
use crate::kernel::RngStream;
use crate::kernel::cow::CowVec;
use crate::kernel::journal::{JournalId, Membership};
use crate::proto::Host;
use crate::scenario::Scenario;

/// The world's parts a step may change, borrowed apart from the agenda and the network (which
/// the step's [`Ctx`] holds), plus etcd's watch output collected during the step.
pub(super) struct Parts<'a> {
    pub etcd: &'a mut EtcdServer,
    pub etcd_rng: &'a mut RngStream,
    pub apiservers: &'a mut CowVec<Apiserver>,
    pub clients: &'a mut crate::client::Fleet,
    pub lb: &'a mut LoadBalancer,
    pub faults_rng: &'a mut RngStream,
    pub script: &'a mut ScriptClient,
    pub workload: &'a mut Workload,
    pub obs: &'a mut Observations,
    pub scenario: &'a Scenario,
    pub out: Vec<WatchOutput>,
    /// The lists of a fan-out through journals (lent by the caller).
    pub fan_out: &'a mut FanOutLists,
    /// Fan-outs go through the receivers' lanes ([`crate::client::Fleet`]); else each
    /// receiver's own state is reached (the explorer's steps).
    pub lanes: bool,
}

/// What a step was, for its [`super::Outcome`].
pub(super) struct Done {
    pub actor: Actor,
    pub action: &'static str,
    pub what: &'static str,
    pub conn: Option<ConnId>,
    pub result: &'static str,
}

/// The temporary lists of a fan-out through journals, kept by the simulator's loop between
/// steps (empty then) so that they are allocated once.
#[derive(Debug, Default)]
pub(super) struct FanOutLists {
    /// The targets that take the event one by one, by index, in order.
    others: Vec<u32>,
    /// The receivers that took it one by one and may join the journals.
    joiners: Vec<(u32, ConnId)>,
    /// No journals: the caller settles every lane after each step (`check/runner.rs`
    /// `run_timed`), which would release every member it made.
    pub(super) off: bool,
}

/// A fan-out to at least this many receivers goes through journals ([`crate::kernel::journal`]);
/// a smaller one (a kubelet's own pods, the explorer's few informers) is taken one by one.
const JOURNAL_MIN_TARGETS: usize = 64;

impl Parts<'_> {
    /// Hands the pending event to its handler; `Err` when a message arrives on a connection that
    /// is gone (it is dropped and the step does nothing else).
    pub fn dispatch(&mut self, pending: Pending, ctx: &mut Ctx<'_>) -> Result<Done, Done> {
        match pending {
            Pending::Deliver { conn, dir, msg } => {
                self.deliver(conn, dir, msg, ctx).map_err(|what| Done {
                    actor: Actor::Faults,
                    action: "deliver",
                    what,
                    conn: Some(conn),
                    result: "dropped",
                })
            }
            Pending::Multicast { targets, msg, .. } => Ok(self.multicast(targets, msg, ctx)),
            Pending::Reset { conn, to } => Ok(self.reset(conn, to, ctx)),
            Pending::Timer(timer) => Ok(self.timer(timer, ctx)),
        }
    }

    /// A message arrives on `conn`; `Err(what)` when the connection is gone (dropped).
    pub fn deliver(
        &mut self,
        conn: ConnId,
        dir: Dir,
        msg: Msg,
        ctx: &mut Ctx<'_>,
    ) -> Result<Done, &'static str> {
        let what = msg.name();
        let Some(receiver) = ctx.net.conn(conn).map(|c| c.receiver(dir)) else {
            return Err(what);
        };
        let result = match (receiver, msg) {
            (Actor::Etcd, msg) => self.deliver_to_etcd(conn, msg, ctx),
            (Actor::Apiserver(i), _) if self.apiservers[i as usize].is_down() => {
                // Connection refused: the process is not running.
                ctx.reset_conn(conn);
                "refused"
            }
            (Actor::Apiserver(i), msg) => {
                let a = &mut self.apiservers[i as usize];
                match msg {
                    Msg::KvReply { req_id, resp } => {
                        a.on_etcd_reply(conn, req_id, resp, &mut ctx.out())
                    }
                    Msg::WatchReply(resp) => {
                        a.on_etcd_watch(conn, resp.watch_id, &resp, self.scenario, &mut ctx.out())
                    }
                    Msg::Api { req_id, req } => a.on_request(conn, req_id, *req, &mut ctx.out()),
                    Msg::Hangup => a.on_hangup(conn, &mut ctx.out()),
                    _ => {}
                }
                "ok"
            }
            (Actor::Client(i), Msg::ApiWatchBatch(batch)) => {
                let c = &mut self.clients[i as usize];
                if let Some((label, fx)) = c.on_initial_batch(conn, &batch) {
                    let rev = self.etcd.store.revision();
                    observe_client(i, label, fx, c, self.obs, ctx.now, rev);
                    label
                } else {
                    // Not a WatchList stream collecting its initial state: each event handled
                    // (and observed) as if it came alone; the step is labelled by the last.
                    let mut label = "stale";
                    for ev in batch.events() {
                        label = self.client_message(i, conn, Msg::ApiWatch(ev.clone()), ctx);
                    }
                    label
                }
            }
            (Actor::Client(i), msg) => self.client_message(i, conn, msg, ctx),
            (Actor::Script, msg) => {
                self.script.on_message(conn, msg, self.scenario, self.obs);
                "ok"
            }
            (Actor::Workload, Msg::KvReply { resp, .. }) => match resp {
                Ok(crate::etcd::KvResponse::Txn(t)) if !t.succeeded => "conflict",
                Ok(_) => "ok",
                Err(e) => e.kind(),
            },
            _ => "unexpected",
        };
        Ok(Done {
            actor: receiver,
            action: "deliver",
            what,
            conn: Some(conn),
            result,
        })
    }

    /// A message for client `i`'s reflector, and what the checker learns from its handling.
    fn client_message(
        &mut self,
        i: u32,
        conn: ConnId,
        msg: Msg,
        ctx: &mut Ctx<'_>,
    ) -> &'static str {
        let c = &mut self.clients[i as usize];
        let cfg = &self.scenario.clients[c.population as usize];
        let (label, fx) = c.on_message(conn, msg, cfg, &mut ctx.out());
        let rev = self.etcd.store.revision();
        observe_client(i, label, fx, c, self.obs, ctx.now, rev);
        label
    }

    /// A message for etcd: a KV request (answered unless sent without reply), a watch request
    /// (the stream opened on first use, its progress ticker jittered as `v3rpc/watch.go`
    /// does), or a hang-up.
    fn deliver_to_etcd(&mut self, conn: ConnId, msg: Msg, ctx: &mut Ctx<'_>) -> &'static str {
        match msg {
            Msg::Kv { req_id, req } => {
                let resp = self.etcd.handle_kv(&req, &mut self.out);
                self.obs.commit(self.etcd.store.revision(), ctx.now);
                let kind = match &resp {
                    Ok(_) => "ok",
                    Err(e) => e.kind(),
                };
                if req_id != msg::NO_REPLY {
                    ctx.send(conn, Dir::ToClient, Msg::KvReply { req_id, resp });
                }
                if let crate::proto::etcd::KvRequest::Txn(txn) = req {
                    ctx.recycle_txn(txn);
                }
                kind
            }
            Msg::Watch(req) => {
                if !self.etcd.hub.has_stream(conn) {
                    let interval = self.etcd.config.progress_notify_interval_ns;
                    // etcd adds up to 10% jitter to each stream's ticker (v3rpc/watch.go).
                    let jitter = if interval > 0 {
                        self.etcd_rng.below(interval / 10 + 1)
                    } else {
                        0
                    };
                    self.etcd.hub.open_stream(
                        conn,
                        ctx.now,
                        if interval > 0 { interval + jitter } else { 0 },
                    );
                }
                self.etcd.handle_watch(ctx.now, conn, &req, &mut self.out);
                "ok"
            }
            Msg::Hangup => {
                self.etcd.hub.close_stream(conn);
                ctx.net.close(conn);
                "closed"
            }
            _ => "unexpected",
        }
    }

    /// One step delivers the same message to many connections (a fan-out).
    pub fn multicast(
        &mut self,
        targets: Vec<crate::proto::MulticastTarget>,
        msg: Msg,
        ctx: &mut Ctx<'_>,
    ) -> Done {
        let what = msg.name();
        match msg {
            Msg::ApiWatch(ref ev) => self.fan_out_api_event(&targets, ev, &msg, ctx),
            Msg::WatchReply(resp) => {
                // Every receiver reads the one response under its own watch id; a script keeps
                // a copy.
                for &(conn, receiver, tag) in &targets {
                    if ctx.net.conn(conn).is_none() {
                        continue;
                    }
                    match receiver {
                        Actor::Apiserver(i) => self.apiservers[i as usize].on_etcd_watch(
                            conn,
                            tag,
                            &resp,
                            self.scenario,
                            &mut ctx.out(),
                        ),
                        Actor::Script => self.script.on_message(
                            conn,
                            Msg::WatchReply(crate::proto::etcd::WatchResponse {
                                watch_id: tag,
                                ..resp.clone()
                            }),
                            self.scenario,
                            self.obs,
                        ),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        crate::proto::Host::recycle_targets(ctx, targets);
        Done {
            actor: Actor::Faults,
            action: "multicast",
            what,
            conn: None,
            result: "ok",
        }
    }

    /// A cache event to many informers: its digest change and its staleness are computed once.
    /// In a large fan-out, receivers in the same state take it through journals
    /// ([`crate::kernel::journal`]): the fleet's (their lanes) and the checker's (their streams
    /// and time-travel records). A receiver that is a member of both is done without being
    /// read; the others take the event one by one, in order, and may join after it.
    fn fan_out_api_event(
        &mut self,
        targets: &[crate::proto::MulticastTarget],
        ev: &crate::apiserver::ApiWatchEvent,
        msg: &Msg,
        ctx: &mut Ctx<'_>,
    ) {
        let fast = client::reflector::FastEvent::of(ev);
        if let Some(rv) = fast.as_ref().map(|f| f.rv()) {
            let lag = ctx.now.saturating_sub(self.obs.commit_time(rv));
            self.obs.staleness_max_ns = self.obs.staleness_max_ns.max(lag);
        }
        // Mutant `reflector_drop_deletes` lives on the slow path.
        let slow_only = self.scenario.mutants.reflector_drop_deletes
            && matches!(
                ev,
                crate::apiserver::ApiWatchEvent::Object {
                    kind: crate::apiserver::watch_cache::EventType::Deleted,
                    ..
                }
            );
        let object = crate::monitor::Checker::lane_object(ev, self.lanes);
        let mut others = std::mem::take(&mut self.fan_out.others);
        let journals = match (&fast, object) {
            (Some(_), Some((rv, key)))
                if !slow_only && !self.fan_out.off && targets.len() >= JOURNAL_MIN_TARGETS =>
            {
                Some(self.open_journals(targets, rv, key, &mut others))
            }
            _ => None,
        };
        // Members of both journals are done; the others take the event one by one.
        let order = match journals {
            Some((_, _, true)) => Some(&others[..]),
            _ => None,
        };
        let len = order.map_or(targets.len(), <[u32]>::len);
        let nth = |k: usize| order.map_or(k, |o| o[k] as usize);
        let mut joiners = std::mem::take(&mut self.fan_out.joiners);
        for k in 0..len {
            // Receivers' lanes are scattered in their array: ask for the next ones' early.
            if k + crate::kernel::prefetch::AHEAD < len
                && let (_, Actor::Client(ahead), _) =
                    targets[nth(k + crate::kernel::prefetch::AHEAD)]
            {
                self.clients.prefetch_lane(ahead);
                self.obs.checker.prefetch_client(ahead);
            }
            let (conn, receiver, _) = targets[nth(k)];
            // check: the receiver's watch stream sees the event, just before the receiver takes
            // it (one pass over the receivers: its lines are read once).
            self.obs.checker.fan_out_event(conn, receiver, ev, object);
            match receiver {
                Actor::Client(i) => {
                    let taken = match fast.as_ref().filter(|_| !slow_only) {
                        Some(f) if self.lanes => self.clients.apply_fast(i, conn, f).then_some(f),
                        Some(f) => self.clients[i as usize].apply_fast(conn, f).then_some(f),
                        None => None,
                    };
                    if let Some(f) = taken {
                        let rv = f.rv();
                        // check: the informer observed this RV (both records in one line).
                        let clients = &*self.clients;
                        let checker = &mut self.obs.checker;
                        checker.raise_data_rv(i, rv);
                        checker.client_rv(i, rv, "event", || clients.server_of(i));
                        if journals.is_some() {
                            joiners.push((i, conn));
                        }
                    } else {
                        let c = &mut self.clients[i as usize];
                        let cfg = &self.scenario.clients[c.population as usize];
                        let (label, fx) = c.on_message(conn, msg.clone(), cfg, &mut ctx.out());
                        let rev = self.etcd.store.revision();
                        observe_client(i, label, fx, c, self.obs, ctx.now, rev);
                    }
                }
                Actor::Script => self
                    .script
                    .on_message(conn, msg.clone(), self.scenario, self.obs),
                _ => {}
            }
        }
        if let (Some((jf, jc, _)), Some(f)) = (journals, fast.as_ref()) {
            // The members take the event; then the receivers that took it alike join.
            let rv = f.rv();
            self.clients.journal_take(jf, f);
            self.obs.checker.journal_take(jc, rv);
            for &(i, conn) in &joiners {
                if self.clients.can_join(i, conn, rv) && self.obs.checker.can_join(i, conn, jc, rv)
                {
                    self.clients.join(i, conn, jf);
                    self.obs.checker.join(i, conn, jc);
                }
            }
        }
        joiners.clear();
        self.fan_out.joiners = joiners;
        others.clear();
        self.fan_out.others = others;
    }

    /// The fleet's and the checker's journals for a fan-out of the object event `rev`/`key` to
    /// `targets`, and whether both kept their members; then `others` lists, in order, the
    /// targets that are not members of both (the ones to take the event one by one). One pass
    /// over the targets reads each one's two membership marks by connection: the targets are
    /// in connection order, so both are read front to back.
    fn open_journals(
        &mut self,
        targets: &[crate::proto::MulticastTarget],
        rev: i64,
        key: &crate::proto::etcd::Key,
        others: &mut Vec<u32>,
    ) -> (JournalId, JournalId, bool) {
        // Each side's membership and the journal of its first member receiver.
        fn first<'m>(
            m: Option<&'m Membership>,
            targets: &[crate::proto::MulticastTarget],
        ) -> Option<(&'m Membership, JournalId)> {
            let m = m?;
            let j = targets.iter().find_map(|&(conn, a, _)| match a {
                Actor::Client(_) => m.journal_on_conn(conn),
                _ => None,
            })?;
            Some((m, j))
        }
        let found_f = first(self.clients.membership(), targets);
        let found_c = first(self.obs.checker.membership(), targets);
        let (mut hits_f, mut hits_c) = (0u32, 0u32);
        others.clear();
        for (n, &(conn, a, _)) in targets.iter().enumerate() {
            let client = matches!(a, Actor::Client(_));
            let f = client && found_f.is_some_and(|(m, j)| m.is_member_on(conn, j));
            let c = client && found_c.is_some_and(|(m, j)| m.is_member_on(conn, j));
            hits_f += u32::from(f);
            hits_c += u32::from(c);
            if !(f && c) {
                others.push(n as u32);
            }
        }
        let found_f = found_f.map(|(_, j)| j);
        let found_c = found_c.map(|(_, j)| j);
        let (jf, kept_f) = self.clients.journal_for(found_f.map(|j| (j, hits_f)));
        let (jc, kept_c) = (self.obs.checker).journal_for(found_c.map(|j| (j, hits_c)), rev, key);
        (jf, jc, kept_f && kept_c)
    }

    /// The connection `conn` was reset; its end `to` learns it.
    pub fn reset(&mut self, conn: ConnId, to: Actor, ctx: &mut Ctx<'_>) -> Done {
        match to {
            Actor::Etcd => self.etcd.hub.close_stream(conn),
            Actor::Apiserver(i) => self.apiservers[i as usize].on_hangup(conn, &mut ctx.out()),
            Actor::Script => self
                .script
                .on_message(conn, Msg::Hangup, self.scenario, self.obs),
            Actor::Client(i) => {
                let c = &mut self.clients[i as usize];
                let cfg = &self.scenario.clients[c.population as usize];
                let _ = c.on_message(conn, Msg::Hangup, cfg, &mut ctx.out());
            }
            _ => {}
        }
        Done {
            actor: to,
            action: "reset",
            what: "connection.reset",
            conn: Some(conn),
            result: "ok",
        }
    }

    /// A timer fires.
    pub fn timer(&mut self, timer: Timer, ctx: &mut Ctx<'_>) -> Done {
        let what = timer.name();
        let scenario = self.scenario;
        let (actor, result) = match timer {
            Timer::ScriptStep(i) => (
                Actor::Script,
                self.script.issue(i as usize, scenario, ctx, self.obs),
            ),
            Timer::EtcdSync => {
                self.etcd.sync_watchers(ctx.now, &mut self.out);
                (Actor::Etcd, "ok")
            }
            Timer::EtcdProgressTick(stream) => {
                self.etcd.progress_tick(ctx.now, stream, &mut self.out);
                (Actor::Etcd, "ok")
            }
            Timer::Workload(i) => (
                Actor::Workload,
                self.workload.fire(i as usize, scenario, ctx),
            ),
            Timer::Fault(i) => (
                Actor::Faults,
                inject_scheduled(scenario, i as usize, ctx, self.obs),
            ),
            Timer::Apiserver(i, t) => {
                let a = &mut self.apiservers[i as usize];
                (Actor::Apiserver(i), a.on_timer(t, scenario, &mut ctx.out()))
            }
            Timer::Cacher(i, r, t) => {
                let a = &mut self.apiservers[i as usize];
                (Actor::Apiserver(i), a.on_cacher_timer(r, t, &mut ctx.out()))
            }
            Timer::Client(i, epoch, t) => {
                let up: Vec<bool> = self.apiservers.iter().map(|a| !a.is_down()).collect();
                let c = &mut self.clients[i as usize];
                if c.server().is_none() {
                    c.set_server(self.lb.pick(i as u64, &up));
                }
                let cfg = &scenario.clients[c.population as usize];
                let (label, fx) = c.on_timer(epoch, t, cfg, &mut ctx.out());
                let rev = self.etcd.store.revision();
                observe_client(i, label, fx, c, self.obs, ctx.now, rev);
                (Actor::Client(i), label)
            }
            Timer::Disconnect => {
                let n = self.clients.len() as u64;
                let victim = self.faults_rng.below(n.max(1)) as usize;
                let d = disconnect_duration(scenario, self.faults_rng);
                if let Some(c) = self.clients.get_mut(victim) {
                    c.disconnect(d, &mut ctx.out());
                }
                if let Some(next) =
                    next_disconnect_in(scenario, self.clients.len(), self.faults_rng)
                {
                    ctx.timer(ctx.now + next, Timer::Disconnect);
                }
                (Actor::Faults, "disconnect")
            }
            Timer::Metrics => {
                record_minute(ctx.now, self.etcd, self.apiservers, self.clients, self.obs);
                ctx.timer(ctx.now + 60_000_000_000, Timer::Metrics);
                (Actor::Faults, "metrics")
            }
        };
        Done {
            actor,
            action: "timer",
            what,
            conn: None,
            result,
        }
    }

    /// etcd's watch output of the step becomes messages and timers.
    pub fn emit_etcd_output(&mut self, ctx: &mut Ctx<'_>) {
        for o in self.out.drain(..) {
            match o {
                WatchOutput::Send(stream, resp) => {
                    ctx.send(stream, Dir::ToClient, Msg::WatchReply(resp))
                }
                WatchOutput::Multicast(streams, resp) => {
                    // Sized up front: a collect through `filter_map` starts at four and
                    // grows by `realloc`, which bypasses the allocator's per-thread cache (five
                    // apiservers make every etcd event in `cluster-65k` pay that).
                    let mut targets = ctx.targets_buffer(streams.len());
                    targets.extend(
                        streams.into_iter().filter_map(|(stream, id)| {
                            ctx.client_of(stream).map(|a| (stream, a, id))
                        }),
                    );
                    ctx.multicast(targets, Dir::ToClient, Msg::WatchReply(resp));
                }
                WatchOutput::ArmSync(at) => ctx.timer(at, Timer::EtcdSync),
                WatchOutput::ArmProgressTick(stream, at) => {
                    ctx.timer(at, Timer::EtcdProgressTick(stream))
                }
            }
        }
    }
}
