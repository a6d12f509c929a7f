//! Who talks to whom: connection ids, the actors at their ends, and the direction a message
//! travels. Shared by the components, the world that connects them and the checker.

use serde::Serialize;

/// A connection's id.
pub type ConnId = u64;

/// Who is at one end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Actor {
    /// The etcd member.
    Etcd,
    /// The scripted-steps client (SPEC §3).
    Script,
    /// The workload writer.
    Workload,
    /// The fault injector (no connections; named in traces).
    Faults,
    /// kube-apiserver N.
    Apiserver(u32),
    /// Client (reflector) N.
    Client(u32),
}

impl Actor {
    /// Name of the kind of actor (`apiserver` for every apiserver).
    pub fn kind(self) -> &'static str {
        match self {
            Actor::Etcd => "etcd",
            Actor::Script => "script",
            Actor::Workload => "workload",
            Actor::Faults => "faults",
            Actor::Apiserver(_) => "apiserver",
            Actor::Client(_) => "client",
        }
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Apiserver(i) => write!(f, "apiserver-{i}"),
            Actor::Client(i) => write!(f, "client-{i}"),
            other => f.write_str(other.kind()),
        }
    }
}

impl Serialize for Actor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Direction of a message on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dir {
    /// Client to server (requests).
    ToServer,
    /// Server to client (responses, watch events).
    ToClient,
}
