//! The online checker: one per run, kept in the world's observations (history, not state, so it
//! never splits states in the explorer). It sits between the components and the world: it reads
//! the components' state and the steps' messages, never the world itself. `World::apply` calls
//! [`Checker::before`] once the step's pending event is taken and [`Checker::after`] when the
//! step's handler (and any fault it requested) is done; reflectors report what they observed
//! through [`Checker::client_observed`]. The per-invariant logic lives in `invariants/*.rs`.

use std::collections::BTreeMap;

pub mod changelog;
pub mod invariants;
pub mod stream_table;

use crate::apiserver::{ApiRequest, ApiResponse, ApiWatchEvent, Apiserver};
use crate::client::Reflector;
use crate::etcd::EtcdServer;
use crate::kernel::Nanos;
use crate::kernel::journal::JournalId;
use crate::proto::Notice;
use crate::proto::etcd::Key;
use crate::proto::step::{FaultRequest, Outcome, Pending};
use crate::proto::{Actor, ConnId, Msg, Timer};
use crate::scenario::Scenario;
use changelog::ChangeLog;
use invariants::cache_window::CacheTrack;
use invariants::list::{ClientList, ScriptLists};
use invariants::time_travel::TimeTravel;
use invariants::{Inv, Tally, Violation};

/// Cap on the time-travel records kept for tests and shrinking.
const TIME_TRAVEL_RECORDS: usize = 1000;

/// What the pre-step hook saw that the post-step hooks need.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Peek {
    /// RV of a LIST reply delivered to a client.
    pub list_rv: Option<i64>,
    /// RV of a bookmark delivered to a client.
    pub bookmark_rv: Option<i64>,
    /// Scripted step issued by this step.
    pub script_step: Option<usize>,
    /// Something was delivered to the script.
    pub to_script: bool,
}

/// When faults happened, for `convergence`'s settle rule.
#[derive(Debug, Clone, Default)]
pub struct FaultTrack {
    /// Latest end of any fault so far (injection time plus its duration).
    pub last_end_ns: Nanos,
    /// Partitions or stalls without `for` that no heal has ended yet.
    pub open: u32,
    /// Faults injected.
    pub count: u64,
}

/// The invariant checker of one run.
#[derive(Debug, Clone, Default)]
pub struct Checker {
    pub(crate) step: u64,
    pub(crate) now: Nanos,
    pub(crate) tallies: [Tally; 8],
    /// Shared between explorer states until a write or a new stream changes it.
    pub(crate) log: triomphe::Arc<ChangeLog>,
    pub(crate) streams: stream_table::StreamTable,
    pub(crate) client_stream: Vec<Option<ConnId>>,
    pub(crate) client_lists: Vec<ClientList>,
    pub(crate) scopes: Vec<u32>,
    pub(crate) caches: BTreeMap<(u32, u32), CacheTrack>,
    pub(crate) cache_epochs: Vec<(u64, u64)>,
    pub(crate) script: ScriptLists,
    pub(crate) faults: FaultTrack,
    pub(crate) cur: Peek,
    /// Every time travel seen (the first 1,000), with who travelled and how.
    pub time_travels: Vec<TimeTravel>,
}

impl Checker {
    /// A checker for `scenario`'s initial world: logs the preloaded objects and interns every
    /// informer's scope.
    pub fn new(
        scenario: &Scenario,
        etcd: &EtcdServer,
        clients: &crate::kernel::cow::CowVec<Reflector>,
    ) -> Self {
        let mut c = Checker::default();
        // Scopes first: interning a range scans the log, which is empty before the preload.
        let log = triomphe::Arc::make_mut(&mut c.log);
        c.scopes = clients.iter().map(|r| log.intern(&r.scope)).collect();
        for r in &scenario.resources {
            log.intern(&crate::etcd::KeyRange::Prefix(
                crate::proto::api::resource_prefix(&r.name),
            ));
        }
        log.sync(&etcd.store);
        c.streams.set_clients(clients.len());
        c.client_lists = vec![ClientList::default(); clients.len()];
        c.client_stream = vec![None; clients.len()];
        c.cache_epochs = vec![(0, 0); scenario.apiserver.count as usize];
        c
    }

    /// Steps applied so far (the current step's number while it runs).
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Count and first violation of `inv` (end-of-run invariants: see [`crate::verdicts::verdicts`]).
    pub fn tally(&self, inv: Inv) -> &Tally {
        &self.tallies[inv as usize]
    }

    /// The earliest online violation: `(invariant, step)`.
    pub fn first_online(&self) -> Option<(Inv, u64)> {
        Inv::ALL
            .into_iter()
            .filter_map(|i| self.tally(i).first.as_ref().map(|v| (i, v.step)))
            .min_by_key(|&(i, step)| (step, i))
    }

    /// Records a violation of `inv` at the current step.
    pub(crate) fn violate(&mut self, inv: Inv, message: impl FnOnce() -> String) {
        let t = &mut self.tallies[inv as usize];
        t.count += 1;
        if t.first.is_none() {
            t.first = Some(Violation {
                step: self.step,
                t_ns: self.now,
                message: message(),
            });
        }
    }

    pub(crate) fn record_time_travel(&mut self, tt: TimeTravel) {
        if self.time_travels.len() < TIME_TRAVEL_RECORDS {
            self.time_travels.push(tt);
        }
    }

    /// Pre-step hook: the pending event about to be handled (`ends` = the connection's
    /// (opener, server) for a delivery on an open connection).
    pub fn before(
        &mut self,
        now: Nanos,
        pending: &Pending,
        ends: Option<(Actor, Actor)>,
        etcd: &EtcdServer,
        open: &dyn Fn(ConnId) -> bool,
        lanes: bool,
    ) {
        self.step += 1;
        self.now = now;
        self.cur = Peek::default();
        match pending {
            Pending::Deliver { conn, dir, msg } => {
                let Some((opener, server)) = ends else {
                    return;
                };
                let receiver = match dir {
                    crate::proto::Dir::ToServer => server,
                    crate::proto::Dir::ToClient => opener,
                };
                self.delivery(*conn, opener, receiver, msg, etcd);
            }
            // A cache event's receivers are checked in the world's fan-out, each just before it
            // takes the event ([`Checker::fan_out_event`]): one pass over the receivers.
            Pending::Multicast {
                msg: Msg::ApiWatch(_),
                ..
            } => {}
            Pending::Multicast { targets, msg, .. } => self.multicast(targets, msg, open, lanes),
            Pending::Reset { conn, to } => {
                if matches!(to, Actor::Client(_) | Actor::Script | Actor::Apiserver(_)) {
                    self.conn_lost(*conn);
                }
            }
            Pending::Timer(Timer::ScriptStep(i)) => self.cur.script_step = Some(*i as usize),
            Pending::Timer(_) => {}
        }
    }

    /// A message about to be delivered on `conn` (opened by `opener`) to `receiver`: the watch
    /// requests, answers and events the stream checks follow, a LIST's RV for time travel.
    fn delivery(
        &mut self,
        conn: ConnId,
        opener: Actor,
        receiver: Actor,
        msg: &Msg,
        etcd: &EtcdServer,
    ) {
        match (receiver, msg) {
            (Actor::Etcd, Msg::Watch(req)) => {
                self.etcd_watch_request(conn, opener, req, etcd.store.revision())
            }
            (Actor::Apiserver(_) | Actor::Script, Msg::WatchReply(resp)) => {
                self.etcd_watch_response(conn, resp.watch_id, resp)
            }
            (Actor::Apiserver(_), Msg::Api { req, .. }) => {
                if let ApiRequest::Watch {
                    scope, selector, ..
                } = &**req
                {
                    self.api_watch_request(conn, opener, scope, !selector.is_everything());
                }
            }
            (Actor::Client(_) | Actor::Script, Msg::ApiWatch(ev)) => self.api_watch_event(conn, ev),
            (Actor::Client(_) | Actor::Script, Msg::ApiWatchBatch(events)) => {
                self.api_watch_batch(conn, events)
            }
            (Actor::Client(_) | Actor::Script, Msg::Hangup) => self.conn_lost(conn),
            (Actor::Client(_), Msg::ApiReply { resp, .. }) => {
                if let ApiResponse::List(l) = &**resp {
                    self.cur.list_rv = Some(l.rv);
                }
            }
            _ => {}
        }
        if receiver == Actor::Script {
            self.cur.to_script = true;
        }
    }

    /// A fan-out about to be delivered: each receiving watch stream that is still open sees the
    /// event (etcd's responses carry each target's own watch id). The world checks a cache
    /// event's receivers one by one instead ([`Checker::fan_out_event`]).
    fn multicast(
        &mut self,
        targets: &[crate::proto::MulticastTarget],
        msg: &Msg,
        open: &dyn Fn(ConnId) -> bool,
        lanes: bool,
    ) {
        match msg {
            Msg::ApiWatch(ev) => {
                let object = Self::lane_object(ev, lanes);
                for &(conn, receiver, _) in targets {
                    self.fan_out_event(conn, receiver, ev, object);
                }
            }
            Msg::WatchReply(resp) => {
                for &(conn, receiver, tag) in targets {
                    if open(conn) && matches!(receiver, Actor::Apiserver(_) | Actor::Script) {
                        self.etcd_watch_response(conn, tag, resp);
                    }
                }
            }
            _ => {}
        }
    }

    /// What a lane compares a cache event by (its RV and key), when lanes are on and the event
    /// is an object's.
    pub fn lane_object(ev: &ApiWatchEvent, lanes: bool) -> Option<(i64, &Key)> {
        match ev {
            ApiWatchEvent::Object { key, rv, .. } if lanes => Some((*rv, key)),
            _ => None,
        }
    }

    /// One receiver of a cache event's fan-out, about to take it on `conn` (`object`: see
    /// [`Checker::lane_object`]): its watch stream sees the event.
    #[inline]
    pub fn fan_out_event(
        &mut self,
        conn: ConnId,
        receiver: Actor,
        ev: &ApiWatchEvent,
        object: Option<(i64, &Key)>,
    ) {
        match (receiver, object) {
            // The next change of the stream's range, in order: the lane takes it.
            (Actor::Client(i), Some((rv, key)))
                if self.streams.lane_event(i, conn, &self.log, rv, key) => {}
            (Actor::Client(_) | Actor::Script, _) => self.api_watch_event(conn, ev),
            _ => {}
        }
    }

    /// Who is a member of which of the checker's journals (`monitor/stream_table/journal.rs`;
    /// see [`crate::kernel::journal`]); None before the first.
    #[inline(always)]
    pub fn membership(&self) -> Option<&crate::kernel::journal::Membership> {
        self.streams.membership()
    }

    /// The checker's journal for a fan-out of the object event `rev`/`k`, and whether its
    /// members were kept (see [`crate::monitor::stream_table::StreamTable::journal_for`]).
    pub fn journal_for(
        &mut self,
        found: Option<(JournalId, u32)>,
        rev: i64,
        k: &Key,
    ) -> (JournalId, bool) {
        self.streams.journal_for(found, &self.log, rev, k)
    }

    /// Journal `j` takes the fan-out's event at `rev` for its members.
    pub fn journal_take(&mut self, j: JournalId, rev: i64) {
        self.streams.journal_take(j, rev);
    }

    /// True when client `client`, which took the event at `rev` on `conn` itself, can join
    /// journal `j`.
    pub fn can_join(&self, client: u32, conn: ConnId, j: JournalId, rev: i64) -> bool {
        self.streams.can_join(client, conn, j, rev)
    }

    /// Client `client` joins journal `j` on `conn` (see [`Checker::can_join`]).
    pub fn join(&mut self, client: u32, conn: ConnId, j: JournalId) {
        self.streams.join(client, conn, j);
    }

    /// Gives what the fan-out lanes moved back to their streams (before the streams are read
    /// as a whole: the end of a run, an explorer state).
    pub fn settle(&mut self) {
        self.streams.settle();
    }

    /// Every followed stream and every client's time-travel record, as text (tests comparing
    /// two runs; settle first).
    #[cfg(test)]
    pub(crate) fn records_for_tests(&self) -> String {
        self.streams.records_for_tests()
    }

    /// True when no lane holds a stream's position.
    pub fn settled(&self) -> bool {
        self.streams.settled()
    }

    /// Post-step hook: what the step did, the fault it injected, the notices components sent.
    #[allow(clippy::too_many_arguments)]
    pub fn after(
        &mut self,
        outcome: &Outcome,
        fault: Option<FaultRequest>,
        notices: &[Notice],
        etcd: &EtcdServer,
        apiservers: &crate::kernel::cow::CowVec<Apiserver>,
        clients: &crate::client::Fleet,
        scenario: &Scenario,
        script_results: &[Option<serde_json::Value>],
    ) {
        let panic_at = scenario.mutants.panic_at_step;
        if panic_at > 0 && self.step == panic_at {
            panic!("mutants.panic_at_step: deliberate panic at step {panic_at} (a test aid)");
        }
        if self.log.behind(&etcd.store) {
            triomphe::Arc::make_mut(&mut self.log).sync(&etcd.store);
        }
        for n in notices {
            match *n {
                Notice::WatchStarted {
                    conn,
                    start_rv,
                    initial_events,
                } => self.api_watch_started(conn, start_rv, initial_events),
                Notice::WatchRefused {
                    server,
                    resource,
                    rv,
                    oldest,
                } => self.watch_refused(server, resource, rv, oldest),
            }
        }
        if let Actor::Apiserver(i) = outcome.actor
            && let Some(a) = apiservers.get(i as usize)
        {
            self.poll_caches(a);
        }
        if let Some(f) = fault {
            self.fault_injected(f);
            for a in apiservers.iter() {
                self.poll_caches(a);
            }
        }
        if outcome.what == "fault.disconnect" {
            let until = clients.max_disconnected_until();
            self.faults.last_end_ns = self.faults.last_end_ns.max(until);
            self.faults.count += 1;
        }
        if outcome.what == "apiserver.timer" && outcome.result == "heal" {
            self.faults.open = 0;
            self.faults.last_end_ns = self.faults.last_end_ns.max(self.now);
        }
        if let Some(i) = self.cur.script_step {
            self.script_step_issued(i, scenario, etcd.store.revision(), script_results);
        }
        if self.cur.to_script {
            self.script_results_arrived(scenario, script_results);
        }
    }

    fn fault_injected(&mut self, f: FaultRequest) {
        self.faults.count += 1;
        let now = self.now;
        let end = match f {
            FaultRequest::CompactNow | FaultRequest::RestartClient(_) => now,
            FaultRequest::RestartApiserver(_, down) | FaultRequest::DisconnectClient(_, down) => {
                now + down
            }
            FaultRequest::PartitionApiserver(_, d) | FaultRequest::StallApiserver(_, d) => {
                match d {
                    Some(d) => now + d,
                    None => {
                        self.faults.open += 1;
                        now
                    }
                }
            }
            FaultRequest::Heal => {
                self.faults.open = 0;
                now
            }
        };
        if let FaultRequest::RestartClient(i) = f
            && (i as usize) < self.client_lists.len()
            && let Some(c) = self.streams.client_rv_mut(i)
        {
            c.restarts += 1;
        }
        self.faults.last_end_ns = self.faults.last_end_ns.max(end);
    }
}
