//! Renaming interchangeable clients for the explorer's symmetry reduction: a permutation of the
//! client indices of one population (same configuration and scope) and the matching bijection of
//! the connection ids those clients own. Applying it to every component yields an equivalent
//! world (same behaviour up to names), so the explorer may fingerprint a canonical renaming
//! instead of the world itself.

use std::collections::BTreeMap;

use super::ids::{Actor, ConnId};

/// A renaming: old client index → new, old connection id → new (absent = unchanged).
#[derive(Debug, Clone, Default)]
pub struct Relabel {
    /// `clients[old] = new`.
    pub clients: Vec<u32>,
    /// Connection ids of renamed clients.
    pub conns: BTreeMap<ConnId, ConnId>,
}

impl Relabel {
    /// The new id of connection `c`.
    pub fn conn(&self, c: ConnId) -> ConnId {
        self.conns.get(&c).copied().unwrap_or(c)
    }

    /// The new index of client `i`.
    pub fn client(&self, i: u32) -> u32 {
        self.clients.get(i as usize).copied().unwrap_or(i)
    }

    /// The actor renamed (only clients change).
    pub fn actor(&self, a: Actor) -> Actor {
        match a {
            Actor::Client(i) => Actor::Client(self.client(i)),
            other => other,
        }
    }

    /// True when nothing changes.
    pub fn is_identity(&self) -> bool {
        self.clients.iter().enumerate().all(|(i, &n)| i as u32 == n)
            && self.conns.iter().all(|(a, b)| a == b)
    }
}
