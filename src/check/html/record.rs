//! The page's recorder: a [`StepView`] that keeps, for every step, who acted, who sent it what
//! (the two ends of the connection a message travelled on), whether it was a fault, the few
//! words of the text timeline's detail column, and the lanes' states that changed (etcd's
//! revisions, each apiserver's cache window, each client's RV). It only reads the world.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use serde::Serialize;

use crate::check::timeline::{describe, window_text};
use crate::check::view::StepView;
use crate::scenario::{Scenario, Step};
use crate::world::{Actor, ConnId, Dir, Outcome, Pending, Timer, World};

/// Up to this many clients every client has a lane; beyond it, only those the steps mention
/// (a 5,000-client page would be all lanes and no arrows).
pub const ALL_CLIENT_LANES_UP_TO: u32 = 50;

/// How a step is drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A message delivered on a connection: an arrow from the sender's lane to the receiver's.
    Message,
    /// One message to many receivers in one step (a fan-out): arrows to each.
    Multicast,
    /// A message that arrived on a closed connection and was dropped.
    Dropped,
    /// A connection reset learnt by one end (its peer was killed).
    Reset,
    /// A timer fired on the actor's lane.
    #[default]
    Timer,
    /// A fault injected (scheduled, random disconnect, or a scripted `fault.*` step).
    Fault,
}

/// What [`PageRecorder`] learnt about a pending event before it was applied.
#[derive(Debug, Clone, Default)]
struct Seen {
    lane: Option<Actor>,
    from: Option<Actor>,
    to: Vec<Actor>,
    kind: Kind,
    detail: String,
}

/// One step as the page draws it.
#[derive(Debug, Clone)]
pub struct StepRecord {
    /// Step number, from 1.
    pub n: u64,
    /// Virtual time after the step.
    pub t_ns: u64,
    /// The lane the step happens on (the receiver of a message, the sender of a fan-out).
    pub lane: Actor,
    /// The sender of a message (or the injector of a targeted fault).
    pub from: Option<Actor>,
    /// Receivers of a message, or the target of a fault.
    pub to: Vec<Actor>,
    /// How it is drawn.
    pub kind: Kind,
    /// The trace's `action`, `what` and `result`.
    pub action: &'static str,
    /// The message or timer kind.
    pub what: &'static str,
    /// The result kind.
    pub result: &'static str,
    /// What the event carried (the text timeline's detail column).
    pub detail: String,
    /// etcd's revision and compact revision after the step.
    pub rev: i64,
    /// etcd's compact revision after the step.
    pub compact_rev: i64,
    /// Lane states that changed in this step.
    pub state: Vec<(Actor, String)>,
}

/// Records a run for the page, step by step.
#[derive(Debug, Default)]
pub struct PageRecorder {
    conns: BTreeMap<ConnId, (Actor, Actor)>,
    next_conn: ConnId,
    seen: Seen,
    apiservers: u32,
    clients: u32,
    states: BTreeMap<Actor, String>,
    /// The scenario's `name`.
    pub scenario: String,
    /// Client instance names (`controller-0`) by lane.
    pub instances: BTreeMap<Actor, String>,
    /// Each lane's state when first seen (before step 1 for etcd, apiservers and small client
    /// sets).
    pub initial: Vec<(Actor, String)>,
    /// The steps.
    pub steps: Vec<StepRecord>,
}

impl PageRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The lanes, in page order: etcd, the apiservers, the clients (all of them, or those the
    /// steps mention when there are more than [`ALL_CLIENT_LANES_UP_TO`]), then the script,
    /// workload and fault injector when they act.
    pub fn lanes(&self) -> Vec<Actor> {
        let mut mentioned = BTreeSet::new();
        for s in &self.steps {
            mentioned.insert(s.lane);
            mentioned.extend(s.from);
            mentioned.extend(s.to.iter().copied());
        }
        let mut lanes = vec![Actor::Etcd];
        lanes.extend((0..self.apiservers).map(Actor::Apiserver));
        lanes.extend(
            (0..self.clients)
                .map(Actor::Client)
                .filter(|c| self.clients <= ALL_CLIENT_LANES_UP_TO || mentioned.contains(c)),
        );
        for a in [Actor::Script, Actor::Workload, Actor::Faults] {
            if mentioned.contains(&a) {
                lanes.push(a);
            }
        }
        lanes
    }

    /// The client and server end of connection `conn`, as last seen open.
    fn ends(&self, conn: ConnId) -> Option<(Actor, Actor)> {
        self.conns.get(&conn).copied()
    }

    /// Learns the connections opened since the last look (ids are handed out in order).
    fn learn_conns(&mut self, world: &World) {
        let net = world.network();
        for id in self.next_conn..net.next_conn_id() {
            if let Some(c) = net.conn(id) {
                self.conns.insert(id, (c.client, c.server));
            }
        }
        self.next_conn = net.next_conn_id();
    }

    /// Sender, receivers and kind of a pending event.
    fn see(&self, p: Option<&Pending>, world: &World) -> Seen {
        let from_to = |conn: ConnId, dir: Dir| {
            self.ends(conn).map(|(client, server)| match dir {
                Dir::ToServer => (client, server),
                Dir::ToClient => (server, client),
            })
        };
        match p {
            Some(Pending::Deliver { conn, dir, .. }) => match from_to(*conn, *dir) {
                Some((from, to)) => Seen {
                    lane: Some(to),
                    from: Some(from),
                    to: vec![to],
                    kind: Kind::Message,
                    ..Seen::default()
                },
                None => Seen {
                    kind: Kind::Message,
                    ..Seen::default()
                },
            },
            Some(Pending::Multicast { targets, dir, .. }) => {
                let from = targets
                    .first()
                    .and_then(|t| from_to(t.0, *dir))
                    .map(|(from, _)| from);
                let mut to: Vec<Actor> = Vec::new();
                for &(_, actor, _) in targets {
                    if !to.contains(&actor) {
                        to.push(actor);
                    }
                }
                Seen {
                    lane: from,
                    from,
                    to,
                    kind: Kind::Multicast,
                    ..Seen::default()
                }
            }
            Some(Pending::Reset { conn, to }) => Seen {
                lane: Some(*to),
                from: self.ends(*conn).map(|(c, s)| if c == *to { s } else { c }),
                to: vec![*to],
                kind: Kind::Reset,
                ..Seen::default()
            },
            Some(Pending::Timer(t)) => match fault_of(*t, world.scenario()) {
                Some(target) => Seen {
                    to: target.into_iter().collect(),
                    kind: Kind::Fault,
                    ..Seen::default()
                },
                None => Seen {
                    lane: match t {
                        Timer::Client(i, ..) => Some(Actor::Client(*i)),
                        _ => None,
                    },
                    ..Seen::default()
                },
            },
            None => Seen::default(),
        }
    }

    /// Notes `actor`'s title and state the first time it is seen.
    fn first_sight(&mut self, actor: Actor, world: &World) {
        if self.states.contains_key(&actor) {
            return;
        }
        let state = state_of(actor, world);
        if let Actor::Client(i) = actor {
            let name = crate::client::instance_name(world.scenario(), i);
            self.instances.insert(actor, name);
        }
        self.initial.push((actor, state.clone()));
        self.states.insert(actor, state);
    }
}

impl StepView for PageRecorder {
    fn start(&mut self, world: &World) -> io::Result<()> {
        self.scenario = world.scenario().name.clone();
        self.apiservers = world.apiservers().len() as u32;
        self.clients = world.clients().len() as u32;
        self.first_sight(Actor::Etcd, world);
        for i in 0..self.apiservers {
            self.first_sight(Actor::Apiserver(i), world);
        }
        if self.clients <= ALL_CLIENT_LANES_UP_TO {
            for i in 0..self.clients {
                self.first_sight(Actor::Client(i), world);
            }
        }
        self.learn_conns(world);
        Ok(())
    }

    fn before(&mut self, pending: Option<&Pending>, world: &World) {
        self.learn_conns(world);
        let mut seen = self.see(pending, world);
        seen.detail = describe(pending, world);
        for a in seen.lane.iter().chain(&seen.from).chain(&seen.to) {
            self.first_sight(*a, world);
        }
        self.seen = seen;
    }

    fn after(&mut self, step: u64, world: &World, o: &Outcome) -> io::Result<()> {
        let seen = std::mem::take(&mut self.seen);
        let lane = seen.lane.unwrap_or(o.actor);
        self.first_sight(lane, world);
        let kind = match (seen.kind, o.result) {
            (Kind::Message, "dropped") => Kind::Dropped,
            (k, _) => k,
        };
        let from = match kind {
            Kind::Fault if !seen.to.is_empty() => Some(lane),
            _ => seen.from,
        };
        let mut touched = vec![Actor::Etcd];
        touched.extend((0..self.apiservers).map(Actor::Apiserver));
        touched.extend(
            std::iter::once(lane)
                .chain(from)
                .chain(seen.to.iter().copied()),
        );
        let mut state = Vec::new();
        for a in touched {
            let now = state_of(a, world);
            if self.states.get(&a) != Some(&now) && !state.iter().any(|(b, _)| *b == a) {
                self.states.insert(a, now.clone());
                state.push((a, now));
            }
        }
        self.steps.push(StepRecord {
            n: step,
            t_ns: world.now(),
            lane,
            from,
            to: seen.to,
            kind,
            action: o.action,
            what: o.what,
            result: o.result,
            detail: seen.detail,
            rev: o.rev,
            compact_rev: o.compact_rev,
            state,
        });
        Ok(())
    }
}

/// `Some(target)` when timer `t` injects a fault (`None` inside: no single target lane).
fn fault_of(t: Timer, s: &Scenario) -> Option<Option<Actor>> {
    let client = |name: &str| crate::client::instance_id(s, name).map(Actor::Client);
    match t {
        Timer::Fault(i) => {
            let f = s.faults.at.get(i as usize)?;
            Some(
                f.server
                    .map(Actor::Apiserver)
                    .or_else(|| f.client.as_deref().and_then(client)),
            )
        }
        Timer::Disconnect => Some(None),
        Timer::ScriptStep(i) => match s.steps.get(i as usize)? {
            Step::FaultRestartApiserver { server, .. }
            | Step::FaultPartitionApiserver { server, .. }
            | Step::FaultStallApiserver { server, .. } => Some(server.map(Actor::Apiserver)),
            Step::FaultRestartClient { client: name, .. } => Some(client(name)),
            st if st.op_name().starts_with("fault.") => Some(None),
            _ => None,
        },
        _ => None,
    }
}

/// A lane's state in a few words: etcd's revisions, an apiserver's cache windows, a client's RV
/// and the apiserver it talks to; nothing for the script, workload and fault injector.
pub fn state_of(a: Actor, world: &World) -> String {
    match a {
        Actor::Etcd => {
            let store = &world.etcd().store;
            match store.compact_revision() {
                c if c < 0 => format!("rev {} crev -", store.revision()),
                c => format!("rev {} crev {c}", store.revision()),
            }
        }
        Actor::Apiserver(i) => {
            let Some(server) = world.apiservers().get(i as usize) else {
                return String::new();
            };
            if server.is_down() {
                return "down".to_string();
            }
            let resources = &world.scenario().resources;
            let windows: Vec<String> = (0..resources.len())
                .map(|r| match resources.len() {
                    1 => window_text(server, r),
                    _ => format!("{} {}", resources[r].name, window_text(server, r)),
                })
                .collect();
            format!("window {}", windows.join(" · "))
        }
        Actor::Client(i) => match world.clients().get(i as usize) {
            Some(c) => match c.server() {
                Some(s) => format!("rv {} via apiserver-{s}", c.last_sync_rv),
                None => format!("rv {}", c.last_sync_rv),
            },
            None => String::new(),
        },
        Actor::Script | Actor::Workload | Actor::Faults => String::new(),
    }
}
