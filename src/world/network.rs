//! The network: connections between actors, each carrying messages in FIFO order per direction
//! (HTTP/2 streams and TCP deliver in order), with a seeded latency per message.
//!
//! Simplification (notes.md): one-way latency is uniform in `[latency, latency + jitter]` and a
//! message is never delivered before an earlier one on the same connection and direction.

use crate::kernel::id_table::IdTable;
use crate::kernel::{Nanos, RngStream};

pub use crate::proto::{Actor, ConnId, Dir};

/// One connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Conn {
    /// The end that opened it.
    pub client: Actor,
    /// The end that serves it.
    pub server: Actor,
    /// Due time of the last message queued in each direction (FIFO).
    last_due: [Nanos; 2],
}

impl Conn {
    /// The actor a message travelling `dir` arrives at.
    pub fn receiver(&self, dir: Dir) -> Actor {
        match dir {
            Dir::ToServer => self.server,
            Dir::ToClient => self.client,
        }
    }
}

/// All open connections.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Network {
    /// Open connections by id (ids are never reused).
    conns: IdTable<Conn>,
    next_id: ConnId,
    latency_ns: Nanos,
    jitter_ns: Nanos,
    rng: RngStream,
}

impl Network {
    /// A network with the given latency; draws from the `network.latency` stream of `seed`.
    pub fn new(seed: u64, latency_ns: Nanos, jitter_ns: Nanos) -> Self {
        Network {
            conns: IdTable::new(),
            next_id: 1,
            latency_ns,
            jitter_ns,
            rng: RngStream::new(seed, "network.latency"),
        }
    }

    /// Opens a connection from `client` to `server`.
    pub fn connect(&mut self, client: Actor, server: Actor) -> ConnId {
        let id = self.next_id;
        self.next_id += 1;
        self.conns.insert(
            id,
            Conn {
                client,
                server,
                last_due: [0, 0],
            },
        );
        id
    }

    /// Closes a connection; messages still in flight on it are dropped by the world.
    pub fn close(&mut self, id: ConnId) -> Option<Conn> {
        self.conns.remove(id)
    }

    /// Open connections opened by clients: (id, client index).
    pub fn client_conns(&self) -> impl Iterator<Item = (ConnId, u32)> + '_ {
        self.conns.iter().filter_map(|(id, c)| match c.client {
            Actor::Client(i) => Some((id, i)),
            _ => None,
        })
    }

    /// The connection `id`, if open.
    pub fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns.get(id)
    }

    /// The id the next connection will get: every id below it has been handed out (ids are
    /// never reused), so a reader can find the connections opened since it last looked.
    pub fn next_conn_id(&self) -> ConnId {
        self.next_id
    }

    /// Open connections with `actor` at either end.
    pub fn conns_of(&self, actor: Actor) -> Vec<(ConnId, Conn)> {
        self.conns
            .iter()
            .filter(|(_, c)| c.client == actor || c.server == actor)
            .map(|(id, c)| (id, c.clone()))
            .collect()
    }

    /// True when latency has a random part.
    pub fn has_jitter(&self) -> bool {
        self.jitter_ns > 0
    }

    /// Due time of one delivery to all of `conns`: the latency, and no earlier than anything
    /// queued on any of them; every connection's FIFO horizon moves to it.
    pub fn multicast_time(&mut self, now: Nanos, conns: &[ConnId], dir: Dir) -> Nanos {
        let slot = match dir {
            Dir::ToServer => 0,
            Dir::ToClient => 1,
        };
        let mut due = now + self.latency_ns;
        for c in conns {
            if let Some(conn) = self.conns.get(*c) {
                due = due.max(conn.last_due[slot]);
            }
        }
        for c in conns {
            if let Some(conn) = self.conns.get_mut(*c) {
                conn.last_due[slot] = due;
            }
        }
        due
    }

    /// When a message sent now arrives on a network with no jitter: one latency later. Never
    /// before an earlier message on the same connection and direction (sent no later), so no
    /// FIFO horizon is read or moved. Panics with jitter (a bug: use [`Network::delivery_time`]).
    pub fn fixed_delivery_time(&self, now: Nanos) -> Nanos {
        assert_eq!(
            self.jitter_ns, 0,
            "a fixed delivery time needs a network without jitter"
        );
        now + self.latency_ns
    }

    /// The base one-way latency.
    pub fn latency_ns(&self) -> Nanos {
        self.latency_ns
    }

    /// Number of open connections.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// True when no connection is open.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// When a message sent now on `id` in direction `dir` arrives: after its latency and never
    /// before the previous message in the same direction.
    pub fn delivery_time(&mut self, now: Nanos, id: ConnId, dir: Dir) -> Nanos {
        let jitter = if self.jitter_ns > 0 {
            self.rng.between(0, self.jitter_ns)
        } else {
            0
        };
        let earliest = now + self.latency_ns + jitter;
        let slot = match dir {
            Dir::ToServer => 0,
            Dir::ToClient => 1,
        };
        match self.conns.get_mut(id) {
            Some(c) => {
                let due = earliest.max(c.last_due[slot]);
                c.last_due[slot] = due;
                due
            }
            None => earliest,
        }
    }
}

impl Network {
    /// The explorer's time abstraction: forgets the FIFO high-water marks (absolute due times)
    /// and the latency stream's position (it only draws jitter).
    pub fn erase_times(&mut self) {
        self.rng = crate::kernel::rng::erased_stream();
        if self.conns.values().all(|c| c.last_due == [0, 0]) {
            return;
        }
        for c in self.conns.values_mut() {
            c.last_due = [0, 0];
        }
    }
}

impl Network {
    /// Applies the explorer's symmetry renaming (`relabel.rs`) to the open connections.
    pub fn relabel(&mut self, r: &crate::proto::Relabel) {
        self.conns = std::mem::take(&mut self.conns)
            .into_iter()
            .map(|(id, mut c)| {
                c.client = r.actor(c.client);
                c.server = r.actor(c.server);
                (r.conn(id), c)
            })
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without jitter, the fixed delivery time is what the FIFO horizons give, whatever was sent
    /// before on the targets (what lets the simulator's multicasts skip them).
    #[test]
    fn without_jitter_every_message_is_due_one_latency_later() {
        let mut net = Network::new(1, 1_000, 0);
        let a = net.connect(Actor::Client(0), Actor::Apiserver(0));
        let b = net.connect(Actor::Client(1), Actor::Apiserver(0));
        let mut rng = RngStream::new(7, "test.sends");
        let mut now = 0;
        for _ in 0..200 {
            now += rng.below(3_000);
            let fixed = net.fixed_delivery_time(now);
            assert_eq!(fixed, now + 1_000);
            match rng.below(3) {
                0 => assert_eq!(net.delivery_time(now, a, Dir::ToClient), fixed),
                1 => assert_eq!(net.delivery_time(now, b, Dir::ToServer), fixed),
                _ => assert_eq!(net.multicast_time(now, &[a, b], Dir::ToClient), fixed),
            }
        }
        let jittery = Network::new(1, 1_000, 50);
        let refused = std::panic::catch_unwind(|| jittery.fixed_delivery_time(0));
        assert!(
            refused.is_err(),
            "a jittery network has no fixed delivery time"
        );
    }
}
