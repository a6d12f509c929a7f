//! The load balancer in front of the apiservers (SPEC §2 `[load_balancer]`): which apiserver a
//! new client connection goes to, by policy. Down (restarting) apiservers are skipped.

use imbl::{OrdMap, Vector};

use crate::kernel::RngStream;
use crate::scenario::LoadBalancerPolicy;

/// Connection placement across apiservers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LoadBalancer {
    policy: LoadBalancerPolicy,
    next: u32,
    open: Vector<u64>,
    sticky: OrdMap<u64, u32>,
    rng: RngStream,
}

impl LoadBalancer {
    /// A balancer over `servers` apiservers; random choices draw from `load_balancer` of `seed`.
    pub fn new(policy: LoadBalancerPolicy, servers: u32, seed: u64) -> Self {
        LoadBalancer {
            policy,
            next: 0,
            open: (0..servers).map(|_| 0).collect(),
            sticky: OrdMap::new(),
            rng: RngStream::new(seed, "load_balancer"),
        }
    }

    /// Picks the apiserver for a new connection of `client`; `up[i]` says whether apiserver i
    /// accepts connections. None when every apiserver is down.
    pub fn pick(&mut self, client: u64, up: &[bool]) -> Option<u32> {
        let n = self.open.len() as u32;
        if n == 0 || !up.iter().any(|&u| u) {
            return None;
        }
        let is_up = |i: u32| up.get(i as usize).copied().unwrap_or(false);
        let chosen = match self.policy {
            LoadBalancerPolicy::RoundRobin => self.round_robin(n, &is_up),
            LoadBalancerPolicy::Random => {
                let candidates: Vec<u32> = (0..n).filter(|&i| is_up(i)).collect();
                candidates[self.rng.below(candidates.len() as u64) as usize]
            }
            LoadBalancerPolicy::LeastConnections => (0..n)
                .filter(|&i| is_up(i))
                .min_by_key(|&i| (self.open[i as usize], i))?,
            LoadBalancerPolicy::Sticky => match self.sticky.get(&client) {
                Some(&s) if is_up(s) => s,
                _ => {
                    let s = self.round_robin(n, &is_up);
                    self.sticky.insert(client, s);
                    s
                }
            },
        };
        self.open[chosen as usize] += 1;
        Some(chosen)
    }

    fn round_robin(&mut self, n: u32, is_up: &dyn Fn(u32) -> bool) -> u32 {
        for _ in 0..n {
            let i = self.next % n;
            self.next = (self.next + 1) % n;
            if is_up(i) {
                return i;
            }
        }
        0
    }

    /// A connection to `server` closed.
    pub fn closed(&mut self, server: u32) {
        if let Some(c) = self.open.get_mut(server as usize) {
            *c = c.saturating_sub(1);
        }
    }

    /// Open connections per apiserver.
    pub fn open_connections(&self) -> Vec<u64> {
        self.open.iter().copied().collect()
    }
}

impl LoadBalancer {
    /// Applies the explorer's symmetry renaming to the sticky assignments (keyed by client).
    pub fn relabel(&mut self, r: &crate::proto::Relabel) {
        self.sticky = std::mem::take(&mut self.sticky)
            .into_iter()
            .map(|(c, s)| (u64::from(r.client(c as u32)), s))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_cycles_and_skips_down_servers() {
        let mut lb = LoadBalancer::new(LoadBalancerPolicy::RoundRobin, 3, 1);
        let all = [true, true, true];
        let picks: Vec<u32> = (0..4).map(|c| lb.pick(c, &all).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0]);
        assert_eq!(lb.pick(9, &[true, false, true]), Some(2));
        assert_eq!(lb.pick(9, &[false, false, false]), None);
    }

    #[test]
    fn least_connections_fills_the_emptiest() {
        let mut lb = LoadBalancer::new(LoadBalancerPolicy::LeastConnections, 2, 1);
        let up = [true, true];
        assert_eq!(lb.pick(0, &up), Some(0));
        assert_eq!(lb.pick(1, &up), Some(1));
        lb.closed(1);
        assert_eq!(lb.pick(2, &up), Some(1));
    }

    #[test]
    fn sticky_keeps_a_client_on_its_server_until_it_is_down() {
        let mut lb = LoadBalancer::new(LoadBalancerPolicy::Sticky, 2, 1);
        assert_eq!(lb.pick(7, &[true, true]), Some(0));
        assert_eq!(lb.pick(7, &[true, true]), Some(0));
        assert_eq!(lb.pick(7, &[false, true]), Some(1));
        assert_eq!(lb.pick(7, &[true, true]), Some(1));
    }

    #[test]
    fn random_is_seeded_and_spreads() {
        let picks = |seed| {
            let mut lb = LoadBalancer::new(LoadBalancerPolicy::Random, 3, seed);
            (0..30)
                .map(|c| lb.pick(c, &[true, true, true]).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(picks(5), picks(5));
        let p = picks(5);
        assert!((0..3).all(|s| p.contains(&s)));
    }
}
