//! The client population: client-go reflectors with informer stores ([`reflector`], [`store`],
//! [`backoff`]), built from `[[clients]]`. Scopes: `cluster` (the whole resource), `namespace`
//! (namespace "default"), `per-node` (objects bound to the instance's node; node-bound objects
//! are named `n<node>-<id>` so a node's objects share a key prefix, which the cacher filters on,
//! like kubelet's `spec.nodeName` field selector).

pub mod backoff;
pub mod fleet;
pub mod reflector;
pub mod store;

pub use crate::proto::ClientTimer;
pub use fleet::Fleet;
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

/// The key of object `id` of `resource`: node-bound resources carry the node in the name
/// (`/registry/<resource>/default/n<node, 5 digits>-<id, 7 digits>`), others are
/// `/registry/<resource>/default/<resource>-<id, 6 digits>` (digits zero-padded to at least that
/// width). Built without `format!`, whose padding machinery was 1,600 instructions a key, 7 % of a
/// short `sweep-1k` run's (issue 16: the start preloads 31,000 objects).
pub fn object_key(resource: &str, id: u64, nodes: Option<u64>) -> Key {
    let mut k = String::with_capacity(2 * resource.len() + 40);
    k.push_str("/registry/");
    k.push_str(resource);
    k.push_str("/default/");
    match nodes {
        Some(n) if n > 0 => {
            k.push('n');
            push_padded(&mut k, id % n, 5);
            k.push('-');
            push_padded(&mut k, id, 7);
        }
        _ => {
            k.push_str(resource);
            k.push('-');
            push_padded(&mut k, id, 6);
        }
    }
    Key::new(&k)
}

/// Appends `n` in decimal, zero-padded to at least `width` digits (`format!("{n:0width$}")`).
fn push_padded(out: &mut String, n: u64, width: usize) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(n);
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(digits);
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

#[cfg(test)]
mod key_tests {
    use super::object_key;

    /// The keys are exactly the `format!` ones they replace, at every width.
    #[test]
    fn object_keys_match_their_format_strings() {
        for id in [
            0u64,
            7,
            42,
            99_999,
            123_456,
            1_000_000,
            9_999_999,
            12_345_678,
            u64::MAX,
        ] {
            for n in [1u64, 3, 1000, 15_000, 100_000, 1_234_567] {
                let want = format!("/registry/pods/default/n{:05}-{id:07}", id % n);
                assert_eq!(object_key("pods", id, Some(n)).as_str(), want);
            }
            let want = format!("/registry/leases/default/leases-{id:06}");
            assert_eq!(object_key("leases", id, None).as_str(), want);
            assert_eq!(object_key("leases", id, Some(0)).as_str(), want);
        }
    }
}
