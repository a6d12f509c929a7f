//! What the explorer's state-space reductions need from a world (docs/explorer.md): the
//! symmetry reduction's canonical renaming of interchangeable clients and the time-abstract
//! hash. Used only by `check::explore`; the simulator never calls them.

use super::*;

impl World {
    /// The explorer's symmetry reduction: this world with interchangeable clients (same
    /// population and scope) renamed into a canonical order, sorted by their own state with their
    /// index left out, together with the connection ids they own (docs/explorer.md). The
    /// result behaves exactly like `self` up to names; `None` when the renaming is the identity.
    pub fn canonical_symmetric(&self, timeless: bool) -> Option<World> {
        use std::collections::BTreeMap;
        // Interchangeable: same population and the same scope (per-node clients differ).
        let mut groups: Vec<Vec<u32>> = Vec::new();
        for (i, c) in self.clients.iter().enumerate() {
            let same = |g: &Vec<u32>| {
                let first = &self.clients[g[0] as usize];
                first.population == c.population && first.scope == c.scope
            };
            match groups.iter_mut().find(|g| same(g)) {
                Some(g) => g.push(i as u32),
                None => groups.push(vec![i as u32]),
            }
        }
        let mut r = relabel::Relabel {
            clients: (0..self.clients.len() as u32).collect(),
            conns: BTreeMap::new(),
        };
        for members in groups.iter().filter(|m| m.len() > 1) {
            let mut order: Vec<(u64, u32)> = members
                .iter()
                .map(|&i| {
                    let c = &self.clients.boxes()[i as usize];
                    let anonymous = if timeless {
                        // The same value as `anonymous_hash(Some(now))`: `now` only decides
                        // whether the client still counts as cut off, so memoise both cases
                        // (0 and the largest instant erase the flag to 1 and 0).
                        let cut_off = c.disconnected_at(self.now);
                        let (slot, at) = if cut_off {
                            (MEMO_ANONYMOUS_CUT_OFF, 0)
                        } else {
                            (MEMO_ANONYMOUS, Nanos::MAX)
                        };
                        c.memo(slot, |c| c.anonymous_hash(Some(at)))
                    } else {
                        c.anonymous_hash(None)
                    };
                    (anonymous, i)
                })
                .collect();
            order.sort_unstable();
            for (slot, (_, old)) in members.iter().zip(order) {
                r.clients[old as usize] = *slot;
            }
        }
        if r.clients.iter().enumerate().all(|(i, &n)| i as u32 == n) {
            return None;
        }
        // The renamed clients' connections keep their set of ids, reassigned in the order of
        // (new owner, old id), so each client's own connections keep their relative order.
        let mut owned: Vec<((u32, ConnId), ConnId)> = self
            .net
            .client_conns()
            .filter(|(_, i)| r.clients[*i as usize] != *i)
            .map(|(c, i)| ((r.clients[i as usize], c), c))
            .collect();
        let mut ids: Vec<ConnId> = owned.iter().map(|(_, c)| *c).collect();
        ids.sort_unstable();
        owned.sort_unstable();
        r.conns = owned
            .into_iter()
            .zip(ids)
            .map(|((_, old), new)| (old, new))
            .collect();
        let mut w = self.clone();
        let boxes = w.clients.boxes();
        let mut clients: Vec<CowBox<Reflector>> = vec![boxes[0].clone(); boxes.len()];
        for (old, c) in boxes.iter().enumerate() {
            let mut c = c.clone();
            c.relabel(&r);
            clients[r.clients[old] as usize] = c;
        }
        w.clients = clients.into_iter().collect();
        for a in w.apiservers.iter_mut() {
            a.relabel(&r);
        }
        w.net.relabel(&r);
        w.lb.relabel(&r);
        w.agenda.rewrite(|p| match p {
            Pending::Deliver { conn, .. } => *conn = r.conn(*conn),
            Pending::Multicast { targets, .. } => {
                for (conn, actor, _) in targets.iter_mut() {
                    *conn = r.conn(*conn);
                    *actor = r.actor(*actor);
                }
            }
            Pending::Reset { conn, to } => {
                *conn = r.conn(*conn);
                *to = r.actor(*to);
            }
            Pending::Timer(Timer::Client(i, _, _)) => *i = r.client(*i),
            Pending::Timer(Timer::Cacher(
                _,
                _,
                crate::proto::CacherTimer::IntervalRefill(conn)
                | crate::proto::CacherTimer::WatchDeadline(conn),
            )) => *conn = r.conn(*conn),
            Pending::Timer(Timer::EtcdProgressTick(conn))
            | Pending::Timer(Timer::Apiserver(
                _,
                crate::apiserver::ApiTimer::DirectWatchDeadline(conn),
            )) => *conn = r.conn(*conn),
            Pending::Timer(_) => {}
        });
        Some(w)
    }

    /// Hashes the state as the explorer's time abstraction sees it (design.md "The explorer";
    /// docs/explorer.md): the clock, the agenda's due times and sequence numbers, and every
    /// absolute time stored in a component are left out, as are the random streams that only
    /// draw durations. The agenda counts as the multiset of pending timers plus, per connection
    /// and direction, the FIFO sequence of messages in flight: exactly what decides which
    /// actions are enabled when any timer may fire next. With `relative_dues` (a reordering
    /// window is in force) each pending entry also counts its due time relative to the earliest
    /// one, so states that are shifts of each other in time still merge.
    pub fn hash_time_abstract<H: std::hash::Hasher>(&self, h: &mut H, relative_dues: bool) {
        use crate::kernel::Fnv64;
        use std::collections::BTreeMap;
        use std::hash::Hash;
        // Only etcd and the network are erased on copies; apiservers and clients are hashed
        // through their boxes' memos, so a component the transition left alone is not erased
        // and hashed again.
        let mut etcd = self.etcd.clone();
        etcd.hub.erase_times();
        etcd.hash(h);
        crate::kernel::rng::erased_stream().hash(h);
        self.apiservers.len().hash(h);
        for a in self.apiservers.iter() {
            a.memo(MEMO_TIMELESS, |a| {
                let mut a = a.clone();
                a.erase_times();
                fnv_of(&a)
            })
            .hash(h);
        }
        self.clients.len().hash(h);
        for c in self.clients.boxes().iter() {
            (timeless_client_hash(c), c.disconnected_at(self.now)).hash(h);
        }
        self.lb.hash(h);
        self.faults_rng.hash(h);
        self.script.hash(h);
        self.workload.hash(h);
        let mut net = self.net.clone();
        net.erase_times();
        net.hash(h);
        let mut timers: Vec<u64> = Vec::new();
        let mut fifos: BTreeMap<(ConnId, Dir), Fnv64> = BTreeMap::new();
        let base = self.agenda.first().map_or(0, |(k, _)| k.due_ns);
        for (key, p) in self.agenda.iter() {
            let rel = if relative_dues { key.due_ns - base } else { 0 };
            match p {
                Pending::Deliver { conn, dir, msg } => {
                    let f = fifos.entry((*conn, *dir)).or_default();
                    rel.hash(f);
                    hash_msg_timeless(msg, f);
                }
                Pending::Multicast { targets, dir, msg } => {
                    for (conn, actor, tag) in targets {
                        let f = fifos.entry((*conn, *dir)).or_default();
                        (rel, actor, tag).hash(f);
                        hash_msg_timeless(msg, f);
                    }
                }
                other => {
                    let mut f = Fnv64::new();
                    (rel, other).hash(&mut f);
                    timers.push(f.finish());
                }
            }
        }
        timers.sort_unstable();
        timers.hash(h);
        for (k, f) in fifos {
            (k, f.finish()).hash(h);
        }
    }
}

/// Hashes a message without the durations it carries (a WATCH's `timeoutSeconds`).
fn hash_msg_timeless<H: std::hash::Hasher>(msg: &Msg, h: &mut H) {
    use std::hash::Hash;
    if let Msg::Api { req, .. } = msg
        && let crate::apiserver::ApiRequest::Watch { .. } = **req
    {
        let mut m = msg.clone();
        if let Msg::Api { req, .. } = &mut m
            && let crate::apiserver::ApiRequest::Watch { timeout_ns, .. } = &mut **req
        {
            *timeout_ns = 0;
        }
        m.hash(h);
    } else {
        msg.hash(h);
    }
}

/// Memo slot of a boxed component's time-abstract hash (`World::hash_time_abstract`).
const MEMO_TIMELESS: usize = 0;

/// Memo slots of a client's anonymous time-abstract hash (`World::canonical_symmetric`), while
/// it is not cut off and while it is.
const MEMO_ANONYMOUS: usize = 1;

const MEMO_ANONYMOUS_CUT_OFF: usize = 2;

fn fnv_of<T: std::hash::Hash>(value: &T) -> u64 {
    let mut h = crate::kernel::Fnv64::new();
    value.hash(&mut h);
    h.finish()
}

/// A client's state as the time abstraction sees it, except whether it is still cut off at
/// the current instant (the only part that depends on the clock; hashed beside it).
fn timeless_client_hash(c: &CowBox<Reflector>) -> u64 {
    c.memo(MEMO_TIMELESS, |c| {
        let mut c = c.clone();
        c.erase_times(Nanos::MAX);
        fnv_of(&c)
    })
}
