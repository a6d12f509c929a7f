//! The effects buffer a component writes into while it handles one message or timer (the shape of
//! Stateright's `Out`): sends, one-step multicasts, timers and notices to the checker. The
//! component never touches the agenda or the network's delivery times: when the handler returns
//! and the `Out` is dropped, its [`Host`] (the world) applies the effects in the order they were
//! pushed. Opening a connection and asking whether one is open are the only questions a
//! component puts to the world while it runs, because a client learns a new socket's identity at
//! once and knows when its socket was reset. A component test drives a component with a host of
//! its own that records the effects.

use super::msg::{Msg, Timer};
use super::{Actor, ConnId, Dir, Notice};
use crate::kernel::Nanos;

/// One receiver of a multicast: its connection, the actor at its receiving end and a
/// per-receiver tag (the etcd watch id of a watch response).
pub type MulticastTarget = (ConnId, Actor, i64);

/// One thing a component asked for during a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send `msg` on `conn` in direction `dir` (it arrives after the link's latency, in order).
    Send {
        /// Connection.
        conn: ConnId,
        /// Direction.
        dir: Dir,
        /// Payload.
        msg: Msg,
    },
    /// The same message to many connections as one delivery step (a watch cache's fan-out);
    /// each target names the actor at its receiving end and a per-receiver tag (the etcd watch
    /// id of a watch response).
    Multicast {
        /// Receivers.
        targets: Vec<MulticastTarget>,
        /// Direction.
        dir: Dir,
        /// Payload.
        msg: Msg,
    },
    /// Arm `timer` at absolute time `at`.
    Timer {
        /// When it fires.
        at: Nanos,
        /// Which timer.
        timer: Timer,
    },
}

/// What an [`Out`] is written against: the connections as a component may see them while it
/// handles a step, and where the buffered effects go when the handler is done.
pub trait Host {
    /// Opens a connection from `client` to `server` and returns its id.
    fn connect(&mut self, client: Actor, server: Actor) -> ConnId;
    /// True while `conn` is open.
    fn is_open(&self, conn: ConnId) -> bool;
    /// The actor at the client end of `conn`, if open.
    fn client_of(&self, conn: ConnId) -> Option<Actor>;
    /// Applies the effects (in order) and notices of a finished handler; leaves both empty.
    fn apply(&mut self, effects: &mut Vec<Effect>, notices: &mut Vec<Notice>);
    /// An empty buffer for a new `Out`'s effects: a host may hand back the one the last `Out`
    /// returned, so that a handler's effects cost no allocation (issue 16).
    fn effects_buffer(&mut self) -> Vec<Effect> {
        Vec::new()
    }
    /// Takes back a finished `Out`'s emptied effects buffer.
    fn recycle_effects(&mut self, _buf: Vec<Effect>) {}
    /// An empty list for a multicast's targets, with room for at least `capacity`: a host may
    /// lend one a delivered multicast handed back (issue 16).
    fn targets_buffer(&mut self, capacity: usize) -> Vec<MulticastTarget> {
        Vec::with_capacity(capacity)
    }
    /// Takes back a target list no multicast holds any more.
    fn recycle_targets(&mut self, _buf: Vec<MulticastTarget>) {}
}

/// What a component may do while it handles one message or timer: read the time, open or look
/// at connections, and push effects and notices for the world to apply afterwards.
/// The effects are applied when the `Out` is dropped (at the end of the statement that made it
/// for a handler call).
pub struct Out<'a> {
    /// Virtual time now.
    pub now: Nanos,
    host: &'a mut dyn Host,
    effects: Vec<Effect>,
    notices: Vec<Notice>,
}

impl<'a> Out<'a> {
    /// An empty buffer at time `now` over `host`.
    pub fn new(now: Nanos, host: &'a mut dyn Host) -> Self {
        let effects = host.effects_buffer();
        Out {
            now,
            host,
            effects,
            notices: Vec::new(),
        }
    }

    /// Sends `msg` on `conn` in direction `dir`.
    pub fn send(&mut self, conn: ConnId, dir: Dir, msg: Msg) {
        self.effects.push(Effect::Send { conn, dir, msg });
    }

    /// Sends the same message to many connections as one delivery step (nothing when `targets`
    /// is empty).
    pub fn multicast(&mut self, targets: Vec<MulticastTarget>, dir: Dir, msg: Msg) {
        if targets.is_empty() {
            self.host.recycle_targets(targets);
        } else {
            self.effects.push(Effect::Multicast { targets, dir, msg });
        }
    }

    /// An empty list for a [`multicast`](Self::multicast)'s targets, with room for at least
    /// `capacity` (none allocated for 0): one the host lends, when it has one.
    pub fn targets_buffer(&mut self, capacity: usize) -> Vec<MulticastTarget> {
        if capacity == 0 {
            Vec::new()
        } else {
            self.host.targets_buffer(capacity)
        }
    }

    /// Hands back a target list that was not sent.
    pub fn recycle_targets(&mut self, targets: Vec<MulticastTarget>) {
        self.host.recycle_targets(targets);
    }

    /// Arms a timer at absolute time `at`.
    pub fn timer(&mut self, at: Nanos, timer: Timer) {
        self.effects.push(Effect::Timer { at, timer });
    }

    /// Tells the invariant checker a fact it cannot see on the wire (never changes behaviour).
    pub fn notice(&mut self, notice: Notice) {
        self.notices.push(notice);
    }

    /// Opens a connection from `client` to `server`.
    pub fn connect(&mut self, client: Actor, server: Actor) -> ConnId {
        self.host.connect(client, server)
    }

    /// Opens a gRPC watch stream from `client` to etcd.
    pub fn open_watch_stream(&mut self, client: Actor) -> ConnId {
        self.host.connect(client, Actor::Etcd)
    }

    /// True while `conn` is open (a client knows when its socket was reset).
    pub fn is_open(&self, conn: ConnId) -> bool {
        self.host.is_open(conn)
    }

    /// The actor at the client end of `conn`, if open.
    pub fn client_of(&self, conn: ConnId) -> Option<Actor> {
        self.host.client_of(conn)
    }
}

impl Drop for Out<'_> {
    fn drop(&mut self) {
        if !self.effects.is_empty() || !self.notices.is_empty() {
            self.host.apply(&mut self.effects, &mut self.notices);
        }
        self.host.recycle_effects(std::mem::take(&mut self.effects));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Connections as a plain map, effects recorded: what a component test uses instead of the
    /// world.
    #[derive(Default)]
    struct Recorder {
        conns: BTreeMap<ConnId, Actor>,
        applied: Vec<Effect>,
        notices: usize,
    }

    impl Host for Recorder {
        fn connect(&mut self, client: Actor, _server: Actor) -> ConnId {
            let id = self.conns.len() as ConnId + 1;
            self.conns.insert(id, client);
            id
        }
        fn is_open(&self, conn: ConnId) -> bool {
            self.conns.contains_key(&conn)
        }
        fn client_of(&self, conn: ConnId) -> Option<Actor> {
            self.conns.get(&conn).copied()
        }
        fn apply(&mut self, effects: &mut Vec<Effect>, notices: &mut Vec<Notice>) {
            self.applied.append(effects);
            self.notices += notices.len();
            notices.clear();
        }
    }

    #[test]
    fn effects_reach_the_host_in_order_when_the_out_is_dropped() {
        let mut host = Recorder::default();
        let conn;
        {
            let mut out = Out::new(7, &mut host);
            conn = out.open_watch_stream(Actor::Apiserver(0));
            assert!(out.is_open(conn));
            assert_eq!(out.client_of(conn), Some(Actor::Apiserver(0)));
            out.timer(9, Timer::Metrics);
            out.multicast(Vec::new(), Dir::ToClient, Msg::Hangup);
            out.send(conn, Dir::ToServer, Msg::Goaway);
        }
        assert_eq!(
            host.applied,
            vec![
                Effect::Timer {
                    at: 9,
                    timer: Timer::Metrics
                },
                Effect::Send {
                    conn,
                    dir: Dir::ToServer,
                    msg: Msg::Goaway
                },
            ]
        );
        assert_eq!(host.notices, 0);
    }
}
