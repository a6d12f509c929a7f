//! Read-ahead (issue 16): while the simulator's loop handles one step, it asks for the cache
//! lines the next pending events' handlers will read first, so that their misses overlap this
//! step's work instead of stalling theirs. Each table look-up is asked for in two stages
//! ([`Stage`]): its control bytes, then its entry once they have come in. Once a step is
//! handled, the loop asks for the first stage of the second pending event and the second stage
//! of the first (whose first stage was asked for a step earlier, nine times in ten in
//! `cluster-15k`: otherwise it was scheduled since); as a step starts, the first stage of the
//! next event if the last step did not ask for it (it was scheduled since, or the agenda could
//! not name it; asking again for the other nine cost 4 % of `cluster-15k`'s steady-state
//! instructions, issue 16 step 21). Hints only: no value the
//! program computes depends on them, so traces are the same with or without them. The
//! explorer's steps ask for nothing (they go through [`super::World::apply`]). Small runs ask
//! too: in `sweep-1k` (33,000 keys) the hints add 4.6 % of instructions and no measurable CPU
//! time, and `cluster-5k` (62,000 keys) runs 10 % faster with them (docs/performance.md step 14).
//!
//! What is asked for is what `perf` showed stalling in `cluster-15k`: etcd's index slot and
//! remembered watchers for a request's key and the checker's remembered ranges for it (the
//! lease renewals), and each apiserver's store entry and ring slots, and the key's stored text
//! hash, for the events etcd streams to the caches. Measured in `docs/performance.md`
//! (step 14). Step 17 added a workload write's drawn object and key (in big runs only: the draw
//! is made again on a copied stream), and for a message to an informer its reflector's first
//! lines and lane and the checker's stream and record of it.

use crate::apiserver::Apiserver;
use crate::client::Fleet;
use crate::etcd::EtcdServer;
use crate::kernel::cow::CowVec;
use crate::kernel::prefetch::Stage;
use crate::kernel::{Agenda, EventKey};
use crate::monitor::Checker;
use crate::proto::msg::{Msg, Timer};
use crate::proto::{Actor, Dir};
use crate::scenario::Scenario;
use crate::world::Pending;
use crate::world::network::Network;
use crate::world::workload::Workload;

/// What the read-ahead looks into: the parts whose lines the next events' handlers read.
pub(super) struct Ahead<'a> {
    pub agenda: &'a Agenda<Pending>,
    pub net: &'a Network,
    pub etcd: &'a EtcdServer,
    pub apiservers: &'a CowVec<Apiserver>,
    pub clients: &'a Fleet,
    pub checker: &'a Checker,
    pub workload: &'a Workload,
    pub scenario: &'a Scenario,
}

impl Ahead<'_> {
    /// As a step starts: the first stage for the earliest pending event, unless the last step
    /// asked for it (`asked`: the event [`Ahead::step_handled`] returned). Otherwise the last
    /// step did not see it coming: it was scheduled since, or the agenda could not say.
    pub(super) fn step_started(&self, asked: Option<EventKey>) {
        if let Some((key, next)) = self.agenda.first()
            && Some(key) != asked
        {
            self.event(next, Stage::Table);
        }
    }

    /// Once a step is handled: the second stage for the earliest pending event, and the first
    /// for the one after it (a whole step ahead); returns the latter's key.
    pub(super) fn step_handled(&self) -> Option<EventKey> {
        if let Some((_, next)) = self.agenda.first() {
            self.event(next, Stage::Entry);
        }
        let (key, after) = self.agenda.second()?;
        self.event(after, Stage::Table);
        Some(key)
    }

    /// Asks for the lines, at `stage`, that the handler of `pending` will read first (see the
    /// module doc).
    fn event(&self, pending: &Pending, stage: Stage) {
        match *pending {
            // etcd's events to the apiservers' caches: each cache's store entry and ring slots.
            Pending::Multicast {
                ref targets,
                msg: Msg::WatchReply(ref resp),
                ..
            } => {
                for &(conn, receiver, tag) in targets {
                    if let Actor::Apiserver(i) = receiver
                        && let Some(a) = self.apiservers.get(i as usize)
                    {
                        a.prefetch_for_etcd_watch(conn, tag, resp, stage);
                    }
                }
            }
            // A request to etcd: its key's index slot and remembered watchers, and the checker's
            // remembered ranges of the key (read when it logs the change).
            Pending::Deliver {
                msg: Msg::Kv { ref req, .. },
                ..
            } => {
                self.etcd.prefetch_for_kv(req, stage);
                if let Some(key) = req.first_key() {
                    self.checker.log.prefetch(key, stage);
                }
            }
            // A message to an informer (a single watcher's event, a list page): its reflector's
            // first lines and lane, and the checker's stream and record of what it observed.
            Pending::Deliver {
                conn,
                dir: Dir::ToClient,
                ..
            } => {
                if let Some(Actor::Client(i)) = self.net.conn(conn).map(|c| c.client) {
                    self.clients.prefetch_reflector(i, stage);
                    self.checker.prefetch_client_message(conn, i, stage);
                }
            }
            // A workload write: the object it draws and its key. A copied random draw a hint:
            // worth it only where the lists do not stay cached.
            Pending::Timer(Timer::Workload(i)) if self.etcd.store.is_big() => {
                self.workload
                    .prefetch_next_write(i as usize, self.scenario, stage);
            }
            _ => {}
        }
    }
}
