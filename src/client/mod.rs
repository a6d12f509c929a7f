//! The client population: client-go reflectors with informer stores ([`reflector`], [`store`],
//! [`backoff`]), built from `[[clients]]`. Scopes: `cluster` (the whole resource), `namespace`
//! (namespace "default"), `per-node` (objects bound to the instance's node; node-bound objects
//! are named `n<node>-<id>` so a node's objects share a key prefix, which the cacher filters on,
//! like kubelet's `spec.nodeName` field selector).

pub mod backoff;
pub mod reflector;
pub mod store;

pub use crate::proto::ClientTimer;
pub use reflector::{Reflector, RelistCause};

use crate::proto::api::resource_prefix;
use crate::proto::etcd::{Key, KeyRange};
use crate::scenario::{ClientScope, Scenario};

/// Number of nodes objects of `resource` are spread over (the largest per-node population
/// watching it), or None if no per-node client watches it.
pub fn nodes_for(scenario: &Scenario, resource: &str) -> Option<u64> {
    scenario
        .clients
        .iter()
        .filter(|c| c.resource == resource && c.scope == ClientScope::PerNode)
        .map(|c| c.count)
        .max()
}

/// The key of object `id` of `resource`: node-bound resources carry the node in the name.
pub fn object_key(resource: &str, id: u64, nodes: Option<u64>) -> Key {
    match nodes {
        Some(n) if n > 0 => Key::new(&format!(
            "/registry/{resource}/default/n{:05}-{id:07}",
            id % n
        )),
        _ => Key::new(&format!("/registry/{resource}/default/{resource}-{id:06}")),
    }
}

/// The keys a client instance watches.
pub fn scope_of(resource: &str, scope: ClientScope, instance: u64) -> KeyRange {
    match scope {
        ClientScope::Cluster => KeyRange::Prefix(resource_prefix(resource)),
        ClientScope::Namespace => {
            KeyRange::Prefix(Key::new(&format!("/registry/{resource}/default/")))
        }
        ClientScope::PerNode => KeyRange::Prefix(Key::new(&format!(
            "/registry/{resource}/default/n{instance:05}-"
        ))),
    }
}

/// Every reflector of the scenario, in population order (`<name>-<i>`).
pub fn build(scenario: &Scenario, seed: u64) -> crate::kernel::cow::CowVec<Reflector> {
    let mut out = crate::kernel::cow::CowVec::new();
    // Clients are as old as the apiserver profile: client-go 1.36+ resets its backoff every
    // 2 min (k8s-rules-1.31-1.37.md row 9).
    let backoff_rule = if scenario
        .apiserver
        .rules
        .reflector_backoff_resets_periodically()
    {
        backoff::ResetRule::Periodic
    } else {
        backoff::ResetRule::AfterQuietPeriod
    };
    for (p, cfg) in scenario.clients.iter().enumerate() {
        let resource = scenario
            .resources
            .iter()
            .position(|r| r.name == cfg.resource)
            .unwrap_or(0) as u32;
        for i in 0..cfg.count {
            let id = out.len() as u32;
            let mut reflector = Reflector::new(
                id,
                p as u32,
                resource,
                scope_of(&cfg.resource, cfg.scope, i),
                cfg,
                seed,
                backoff_rule,
            );
            reflector.mutants = crate::kernel::Unhashed(scenario.mutants);
            out.push(reflector);
        }
    }
    out
}

/// The instance name of client `id` (`kubelet-3`).
pub fn instance_name(scenario: &Scenario, id: u32) -> String {
    let mut rest = id as u64;
    for c in &scenario.clients {
        if rest < c.count {
            return format!("{}-{rest}", c.name);
        }
        rest -= c.count;
    }
    format!("client-{id}")
}

/// The id of the instance called `name`, if any.
pub fn instance_id(scenario: &Scenario, name: &str) -> Option<u32> {
    let mut base = 0u64;
    for c in &scenario.clients {
        if let Some(i) = name
            .strip_prefix(&format!("{}-", c.name))
            .and_then(|s| s.parse::<u64>().ok())
            && i < c.count
        {
            return Some((base + i) as u32);
        }
        base += c.count;
    }
    None
}
