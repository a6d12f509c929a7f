//! `relist-bound` (end of run): relists per client per hour stay within
//! `bounds.relists_per_client_hour`; the invariant mirrors the bound of the same name (the
//! report's `bounds` entry), and is not checked when the scenario sets no such bound.

use crate::kernel::Nanos;
use crate::world::World;

use super::convergence::Judgement;

/// Relists per client per hour over a run of `end_ns`.
pub fn relists_per_client_hour(world: &World, end_ns: Nanos) -> f64 {
    let clients = world.clients();
    let relists: u64 = clients.iter().map(|c| c.counters.relists()).sum();
    let hours = end_ns as f64 / 3600e9;
    if clients.is_empty() || hours <= 0.0 {
        0.0
    } else {
        relists as f64 / clients.len() as f64 / hours
    }
}

/// Judges the relist bound at the end of a run that lasted `end_ns`.
pub fn judge(world: &World, end_ns: Nanos) -> Judgement {
    let Some(limit) = world.scenario().bounds.relists_per_client_hour else {
        return Judgement {
            checked: false,
            violations: 0,
            message: Some(
                "not checked: the scenario sets no bounds.relists_per_client_hour".into(),
            ),
        };
    };
    let value = relists_per_client_hour(world, end_ns);
    let relists: u64 = world.clients().iter().map(|c| c.counters.relists()).sum();
    if value <= limit {
        return Judgement {
            checked: true,
            ..Default::default()
        };
    }
    Judgement {
        checked: true,
        violations: 1,
        message: Some(format!(
            "{relists} relists by {} clients in {:.3} h = {value:.3} per client-hour, above the bound {limit}",
            world.clients().len(),
            end_ns as f64 / 3600e9
        )),
    }
}
