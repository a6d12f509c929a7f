//! `convergence` (end of run): once the last fault is over and `settle` (default 2m) of quiet
//! time has passed, every informer's store equals etcd's state of its scope at the informer's RV
//! (compared by digest, exact), and that RV is current: no change to its scope committed more
//! than [`LAG_ALLOWANCE_NS`] before the end is newer than it. Writes may go on during the quiet
//! time; only faults count. A run that ends before `settle` after its last fault is reported as
//! not checked, with the reason.
//!
//! Simplification (notes.md): informers in digest mode behind apiservers with the watch cache off
//! are not judged (direct watches carry no previous RV, so their digests cannot be maintained).

use std::collections::BTreeMap;

use crate::client::store::Digest;
use crate::kernel::Nanos;
use crate::scenario::{StoreMode, WatchCacheMode, format_ns};
use crate::world::World;

use crate::monitor::invariants::Inv;

/// How far an informer may trail its scope's last change at the end of a settled run.
pub const LAG_ALLOWANCE_NS: Nanos = 5_000_000_000;

/// The verdict of an end-of-run invariant.
#[derive(Debug, Clone, Default)]
pub struct Judgement {
    /// Whether it was judged at all.
    pub checked: bool,
    /// Violations.
    pub violations: u64,
    /// First violation, or why it was not judged.
    pub message: Option<String>,
}

/// Judges convergence at the end of a run that lasted `end_ns`.
pub fn judge(world: &World, end_ns: Nanos) -> Judgement {
    if let Some(why) = not_settled(world, end_ns) {
        return Judgement {
            checked: false,
            message: Some(why),
            ..Default::default()
        };
    }
    let s = world.scenario();
    let cache_off = s.apiserver.watch_cache.mode == WatchCacheMode::Off;
    let mut digests: BTreeMap<(u32, i64), Digest> = BTreeMap::new();
    let mut j = Judgement {
        checked: true,
        ..Default::default()
    };
    for (i, c) in world.clients().iter().enumerate() {
        let cfg = &s.clients[c.population as usize];
        if cache_off && cfg.store == StoreMode::Digest {
            continue;
        }
        if let Some(p) = client_problem(world, i, c, &mut digests, end_ns) {
            j.violations += 1;
            j.message.get_or_insert(p);
        }
    }
    j
}

/// Why the run cannot be judged: a fault never healed, or less than `settle` of quiet time
/// after the last fault (or since the start, without faults).
fn not_settled(world: &World, end_ns: Nanos) -> Option<String> {
    let ck = &world.observations().checker;
    let settle = world.scenario().settle.as_ns();
    if ck.faults.open > 0 {
        return Some(format!(
            "{}: not checked: a partition or stall without `for` was never healed",
            Inv::Convergence.name()
        ));
    }
    let quiet_since = ck.faults.last_end_ns;
    if ck.faults.count == 0 && end_ns < settle {
        return Some(format!(
            "not checked for this run: it lasted {}, less than settle = {} of quiet time",
            format_ns(end_ns),
            format_ns(settle)
        ));
    }
    if end_ns < quiet_since.saturating_add(settle) {
        return Some(format!(
            "not checked for this run: it ended {} after the last fault (at {}), before settle = {} of quiet time",
            format_ns(end_ns.saturating_sub(quiet_since)),
            format_ns(quiet_since),
            format_ns(settle)
        ));
    }
    None
}

/// What is wrong with client `i` at the end, if anything: it never synced, its store differs
/// from etcd's state of its scope at its RV (when that state is still readable), or a change
/// committed more than the allowance before the end never reached it. `digests` caches the
/// digest of each scope's state at each RV asked for (0: its latest state): the thousands of
/// informers of one scope (kube-proxies) are at one or a few RVs, and each digest is a walk
/// over the scope in etcd.
fn client_problem(
    world: &World,
    i: usize,
    c: &crate::client::Reflector,
    digests: &mut BTreeMap<(u32, i64), Digest>,
    end_ns: Nanos,
) -> Option<String> {
    let obs = world.observations();
    let ck = &obs.checker;
    let etcd = &world.etcd().store;
    let scope = ck.scopes[i];
    let name = || crate::client::instance_name(world.scenario(), i as u32);
    let rv = c.last_sync_rv;
    if rv == 0 {
        return Some(format!("client-{i} ({}) never synced", name()));
    }
    let last = ck.log.last_change(scope).unwrap_or(0);
    let want = if rv >= last {
        Some(
            *digests
                .entry((scope, 0))
                .or_insert_with(|| digest(etcd, &c.scope, 0)),
        )
    } else if rv >= etcd.compact_revision() {
        Some(
            *digests
                .entry((scope, rv))
                .or_insert_with(|| digest(etcd, &c.scope, rv)),
        )
    } else {
        None // state at rv compacted away: only the lag is judged
    };
    let got = c.store.digest();
    let next = (rv < last).then(|| ck.log.at(scope, ck.log.lower_bound(scope, rv + 1)).0);
    if let Some(w) = want
        && w != got
    {
        return Some(format!(
            "client-{i} ({}): the informer holds {} objects that differ from etcd's {} in its scope at its RV {rv}",
            name(),
            got.count,
            w.count
        ));
    }
    let r = next?;
    (obs.commit_time(r) + LAG_ALLOWANCE_NS < end_ns).then(|| {
        format!(
            "client-{i} ({}): its RV {rv} is behind: the change at revision {r} (committed at {}) never reached it",
            name(),
            format_ns(obs.commit_time(r))
        )
    })
}

fn digest(store: &crate::etcd::Store, scope: &crate::etcd::KeyRange, rev: i64) -> Digest {
    let mut d = Digest::default();
    if let Ok(r) = store.range(scope, rev, 0) {
        for kv in &r.kvs {
            d.add(&kv.key, kv.mod_revision);
        }
    }
    d
}
