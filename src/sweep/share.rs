//! Sharing runs between grid points that differ only in the watch cache's size ("verify or
//! rerun", docs/performance.md). Per seed: the pending point with the largest window runs for
//! real and follows every other pending point's cache configuration with a shadow window
//! (`apiserver/cache_shadow.rs`); each follower whose cache made every decision as the real one
//! did had the same run, so its figures are the representative's with its own cache capacity and
//! memory maxima. Followers that diverged are pending for the next round. The figures are exactly
//! those of separate runs (`tests/sweep.rs` compares them); only the work differs: one run per
//! distinct trajectory instead of one per grid point.

use serde_json::Value;

use super::aggregate::{self, RunFigures};
use super::{Plan, SweepError};
use crate::scenario::{Scenario, WatchCacheConfig, WatchCacheMode};
use crate::sim::{self, FollowedFigures, RunOptions};

/// True when every grid point's scenario is the same but for the watch cache's `capacity`,
/// `fresh`, `lower` and `upper`, the cache is on, and no mutant is switched on: then runs can be
/// shared.
pub fn shareable(plan: &Plan) -> bool {
    let Some((_, first)) = plan.points.first() else {
        return false;
    };
    let base = without_cache_size(&first.scenario);
    plan.points.iter().all(|(_, p)| {
        let s = &p.scenario;
        s.apiserver.watch_cache.mode != WatchCacheMode::Off
            && s.mutants == Default::default()
            && without_cache_size(s) == base
    })
}

/// The scenario with the cache's size settings replaced by fixed ones (what sharing may vary).
fn without_cache_size(s: &Scenario) -> Scenario {
    let mut s = s.clone();
    let c = &mut s.apiserver.watch_cache;
    let d = WatchCacheConfig::default();
    (c.capacity, c.fresh, c.lower, c.upper) = (d.capacity, d.fresh, d.lower, d.upper);
    s
}

/// A rough size of a configuration's window, largest first: the representative of a round is
/// the pending point whose window is likely to hold the others' (any choice is exact; a good one
/// verifies more followers).
fn window_size(c: &WatchCacheConfig) -> (u64, u64, u64, u64) {
    match c.mode {
        WatchCacheMode::Fixed => (c.capacity, 0, 0, 0),
        _ => (c.upper_bound(), c.fresh.as_ns(), c.lower, 0),
    }
}

/// The figures of every grid point of `plan` for `seed`, in point order, with runs shared, and
/// how many runs that took; `done` is called once per point resolved.
pub fn run_seed(
    plan: &Plan,
    seed: u64,
    done: &(dyn Fn() + Sync),
) -> Result<(Vec<RunFigures>, usize), SweepError> {
    let mut runs = 0;
    let mut out: Vec<Option<RunFigures>> = vec![None; plan.points.len()];
    let mut pending: Vec<usize> = (0..plan.points.len()).collect();
    let config = |p: usize| &plan.points[p].1.scenario.apiserver.watch_cache;
    while !pending.is_empty() {
        // The largest window first; ties keep grid order.
        pending.sort_by(|&a, &b| {
            window_size(config(b))
                .cmp(&window_size(config(a)))
                .then(a.cmp(&b))
        });
        let rep = pending[0];
        let followers: Vec<usize> = pending[1..].to_vec();
        let configs: Vec<WatchCacheConfig> = followers.iter().map(|&p| config(p).clone()).collect();
        let (point, loaded) = &plan.points[rep];
        runs += 1;
        let run = crate::check::panics::catch(|| {
            sim::run_following(
                loaded,
                &RunOptions {
                    seed: Some(seed),
                    duration: plan.duration,
                    trace: None,
                    skip_trace_hash: true,
                    trace_thread: false,
                },
                &configs,
            )
        });
        let Ok(run) = run else {
            // The representative panicked: a finding of its own; its followers run alone.
            out[rep] = Some(super::panicked(loaded));
            done();
            pending = followers;
            continue;
        };
        let (report, followed) = run.map_err(|source| SweepError::Run {
            point: plan.grid.describe(point),
            seed,
            source,
        })?;
        let violations = report.violations();
        let has_bounds = !report.bounds.is_empty();
        let json = super::figures_json(report);
        out[rep] = Some(RunFigures {
            values: aggregate::read_figures(&json),
            violations: violations.clone(),
            has_bounds,
        });
        done();
        let mut next = Vec::new();
        for (&p, figures) in followers.iter().zip(followed) {
            match with_cache_figures(&json, figures) {
                Some(json) => {
                    out[p] = Some(RunFigures {
                        values: aggregate::read_figures(&json),
                        violations: violations.clone(),
                        has_bounds,
                    });
                    done();
                }
                None => next.push(p),
            }
        }
        pending = next;
    }
    let figures = out
        .into_iter()
        .map(|f| f.expect("every point resolved"))
        .collect();
    Ok((figures, runs))
}

/// The representative's report (JSON) with a follower's cache figures, or `None` when the
/// follower diverged.
fn with_cache_figures(report: &Value, figures: FollowedFigures) -> Option<Value> {
    let figures = figures?;
    let mut json = report.clone();
    let apiservers = json.get_mut("apiservers")?.as_array_mut()?;
    for (a, (capacity_max, bytes_max)) in apiservers.iter_mut().zip(figures) {
        a["cache_capacity_max"] = capacity_max.into();
        a["cache_bytes_max"] = bytes_max.into();
    }
    Some(json)
}
