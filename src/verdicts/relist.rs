//! `relist-bound` (end of run): relists per client per hour stay within
//! `bounds.relists_per_client_hour`; the invariant mirrors the bound of the same name (the
//! report's `bounds` entry), and is not checked when the scenario sets no such bound.
//!
//! Also the figure of the bound `etcd_lists_per_client_hour` (no SPEC §6 invariant): LIST pages
//! the apiservers served from etcd, per client per hour. Like relists it only grows during a
//! run, so a state already above what the bound allows over the whole run violates it.

use crate::kernel::Nanos;
use crate::world::World;

use super::convergence::Judgement;

/// Relists made so far by every client.
fn relists(world: &World) -> u64 {
    world.clients().iter().map(|c| c.counters.relists()).sum()
}

/// `count` per client per hour over a run of `end_ns` (0 without clients).
fn per_client_hour(world: &World, count: u64, end_ns: Nanos) -> f64 {
    let clients = world.clients().len();
    let hours = end_ns as f64 / 3600e9;
    if clients == 0 || hours <= 0.0 {
        0.0
    } else {
        count as f64 / clients as f64 / hours
    }
}

/// Relists per client per hour over a run of `end_ns`.
pub fn relists_per_client_hour(world: &World, end_ns: Nanos) -> f64 {
    per_client_hour(world, relists(world), end_ns)
}

/// Judges a per-client-hour bound: the rate of `count` against `limit` (unset: not checked);
/// `what` names the count in the message.
fn judge_rate(
    world: &World,
    key: &str,
    limit: Option<f64>,
    count: u64,
    what: &str,
    end_ns: Nanos,
) -> Judgement {
    let Some(limit) = limit else {
        return not_bounded(key);
    };
    let value = per_client_hour(world, count, end_ns);
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
            "{count} {what} {} clients in {:.3} h = {value:.3} per client-hour, above the bound {limit}",
            world.clients().len(),
            end_ns as f64 / 3600e9
        )),
    }
}

/// The judgement of a bound the scenario does not set.
fn not_bounded(key: &str) -> Judgement {
    Judgement {
        checked: false,
        violations: 0,
        message: Some(format!("not checked: the scenario sets no bounds.{key}")),
    }
}

/// Judges the relist bound at the end of a run that lasted `end_ns`.
pub fn judge(world: &World, end_ns: Nanos) -> Judgement {
    let limit = world.scenario().bounds.relists_per_client_hour;
    let count = relists(world);
    judge_rate(
        world,
        "relists_per_client_hour",
        limit,
        count,
        "relists by",
        end_ns,
    )
}

/// LIST pages served from etcd (by every apiserver, for clients and scripted steps; not the
/// cachers' own initialisation LISTs) so far.
pub fn etcd_lists(world: &World) -> u64 {
    world
        .apiservers()
        .iter()
        .map(|a| a.counters.lists_from_etcd)
        .sum()
}

/// LISTs served from etcd per client per hour over a run of `end_ns` (0 without clients).
pub fn etcd_lists_per_client_hour(world: &World, end_ns: Nanos) -> f64 {
    per_client_hour(world, etcd_lists(world), end_ns)
}

/// Judges the bound `etcd_lists_per_client_hour` on a run that lasts `end_ns`: `checked` is
/// false when the scenario sets no such bound. The count only grows, so this may be asked of any
/// state of a run (the explorer) as well as of its end.
pub fn judge_etcd_lists(world: &World, end_ns: Nanos) -> Judgement {
    let limit = world.scenario().bounds.etcd_lists_per_client_hour;
    let count = etcd_lists(world);
    let what = "LISTs served from etcd for";
    judge_rate(
        world,
        "etcd_lists_per_client_hour",
        limit,
        count,
        what,
        end_ns,
    )
}
