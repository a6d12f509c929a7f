//! Historical Kubernetes bugs as `[mutants]` (issue 7; docs/explorer.md "Kubernetes mutants").
//! Each mutant must be re-found twice: by a `watchsim check` campaign on a bundled scenario
//! (while the faithful model holds on the same scenario and seeds), and by `watchsim explore` on
//! a tiny `explore-*` scenario, whose counterexample records as a capsule (while the faithful model
//! explores the same bounds without a violation).
//!
//! The explorer judges `relist-bound` and the bound `etcd_lists_per_client_hour` at every state
//! (relists and LISTs only grow). The `*_scenario_shows_the_bug` tests also check each explore
//! scenario's premise on the simulator's own path (cut where the violation becomes certain, it
//! records as a capsule with the mutant, and the faithful model's whole run holds), and a
//! depth-first search of the explorer's own transition system finds the 14-action #116122
//! counterexample independently of the BFS.

use std::time::Instant;

use watchsim::check::Inv;
use watchsim::check::campaign::{self, CampaignOptions, Summary};
use watchsim::check::capsule;
use watchsim::check::explore::{ExploreOptions, enabled_actions, explore, fingerprint};
use watchsim::check::invariants::relist;
use watchsim::check::runner::{Flow, Spec, run_timed};
use watchsim::kernel::EventKey;
use watchsim::world::{Action, World};

fn spec(file: &str, overrides: &[&str]) -> Spec {
    let path = format!("{}/sim-scenarios/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    Spec::load(&path, &text, &overrides, None).unwrap()
}

fn with_mutant(overrides: &[&str], mutant: &str) -> Vec<String> {
    let mut o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    o.push(format!("mutants.{mutant}=true"));
    o
}

fn campaign(spec: &Spec, seeds: u64) -> Summary {
    let opts = CampaignOptions {
        seeds,
        from: None,
        jobs: 2,
        shard: None,
        swarm: false,
        progress: false,
    };
    campaign::run_campaign(spec, &opts).unwrap()
}

/// `watchsim check` on `file` with `overrides` and `seeds` seeds: the faithful model holds every
/// invariant and bound; with `mutant` on, `key` (an invariant, or `bound:NAME`) is violated within
/// 60 s of wall time. Returns the seeds run up to the first failing one.
fn check_refinds(file: &str, overrides: &[&str], mutant: &str, key: &str, seeds: u64) -> u64 {
    let faithful = campaign(&spec(file, overrides), seeds);
    assert!(
        faithful.violations.is_empty(),
        "{file}: the faithful model should hold: {:#?}",
        faithful.violations
    );
    let o = with_mutant(overrides, mutant);
    let o: Vec<&str> = o.iter().map(String::as_str).collect();
    let started = Instant::now();
    let broken = campaign(&spec(file, &o), seeds);
    let seconds = started.elapsed().as_secs_f64();
    let v = broken.violations.get(key).unwrap_or_else(|| {
        panic!(
            "{file} with {mutant}: expected {key}, got {:#?}",
            broken.violations
        )
    });
    assert!(seconds < 60.0, "{mutant}: the campaign took {seconds:.1} s");
    let first = v.first_seed - broken.from + 1;
    println!(
        "check {file} {mutant}: {key} at seed index {first}, {} of {seeds} seeds, {seconds:.2} s: {}",
        v.seeds, v.message
    );
    first
}

/// `watchsim explore` on `file` with `mutant` finds `inv` (an invariant, or `bound:NAME`), its
/// path records as a capsule showing it, and the faithful model explores the same bounds without
/// a violation. Returns the counterexample's length.
fn explore_refinds(file: &str, mutant: &str, inv: &str, opts: ExploreOptions) -> usize {
    let s = spec(file, &[&format!("mutants.{mutant}=true")]);
    let out = explore(&s, opts);
    let Some((found, keys)) = out.violation.clone() else {
        panic!("{file}: {mutant} not found: {out:?}");
    };
    assert_eq!(found, inv);
    // An online violation stops the capsule at its step; end-of-run checks and bounds judge the
    // path's last state against the whole run (they only grow).
    let online = Inv::from_name(inv).is_some_and(|i| !i.end_of_run());
    let c = capsule::record(&s, &keys, !online, Some(inv))
        .unwrap()
        .expect("the counterexample reproduces");
    assert_eq!(c.len(), keys.len());
    assert_eq!(
        c.footer.violation.as_ref().map(|v| v.name.as_str()),
        Some(inv)
    );
    let faithful = explore(&spec(file, &[]), opts);
    assert!(
        faithful.violation.is_none(),
        "{file}: the faithful model: {:?}",
        faithful.violation
    );
    println!(
        "explore {file} {mutant}: {inv} in {} actions, {} states ({} unique), {:.2} s; faithful: {} unique states, complete: {}",
        keys.len(),
        out.explored,
        out.unique,
        out.seconds,
        faithful.unique,
        faithful.complete
    );
    keys.len()
}

/// The simulator's own path on `s` (the earliest event first), cut at the first state where
/// `violated` holds; None if it never does before the end.
fn timed_path(s: &Spec, violated: impl Fn(&World) -> bool) -> Option<Vec<EventKey>> {
    let mut keys = Vec::new();
    let mut hit = false;
    run_timed(s, |_, key, _, world| {
        keys.push(key);
        if violated(world) {
            hit = true;
            Flow::Stop
        } else {
            Flow::Continue
        }
    });
    hit.then_some(keys)
}

/// The explore scenario `file` shows `inv` on the simulator's path with `mutant` on (the path,
/// cut there, records as a capsule showing it) and the faithful model's whole run holds every
/// invariant and bound. `violated` is the monotone form of the check.
fn scenario_shows_the_bug(
    file: &str,
    mutant: &str,
    inv: &str,
    violated: impl Fn(&World, &Spec) -> bool,
) -> usize {
    let s = spec(file, &[&format!("mutants.{mutant}=true")]);
    let keys = timed_path(&s, |w| violated(w, &s))
        .unwrap_or_else(|| panic!("{file}: {mutant} shows no {inv}"));
    let online = Inv::from_name(inv).is_some_and(|i| !i.end_of_run());
    let c = capsule::record(&s, &keys, !online, Some(inv))
        .unwrap()
        .expect("the path reproduces");
    assert_eq!(
        c.footer.violation.as_ref().map(|v| v.name.as_str()),
        Some(inv)
    );
    let faithful = spec(file, &[]);
    assert!(timed_path(&faithful, |w| violated(w, &faithful)).is_none());
    let r = watchsim::sim::run_str(file, &faithful.text, &[], None).unwrap();
    assert!(r.violations().is_empty(), "{file}: {:?}", r.violations());
    println!(
        "{file} {mutant}: {inv} on the simulator's path after {} steps",
        keys.len()
    );
    keys.len()
}

fn online_violation(w: &World, _: &Spec) -> bool {
    w.observations().checker.first_online().is_some()
}

fn relists_over_the_bound(w: &World, s: &Spec) -> bool {
    relist::judge(w, s.end_ns).violations > 0
}

fn etcd_lists_over_the_bound(w: &World, s: &Spec) -> bool {
    relist::judge_etcd_lists(w, s.end_ns).violations > 0
}

// ---------------------------------------------------------------- #116122

#[test]
fn check_finds_a_watch_registered_during_cacher_reinit() {
    // Kubernetes #116122: re-watches that reach the apiserver before the cacher's re-list answer
    // are registered on the old state and miss the changes made during the etcd outage.
    let first = check_refinds(
        "watch-during-reinit.toml",
        &[],
        "cacher_watch_during_reinit",
        "watch-no-gap",
        4,
    );
    assert_eq!(first, 1);
}

#[test]
fn explore_finds_a_watch_registered_during_cacher_reinit() {
    let n = explore_refinds(
        "explore-watch-during-reinit.toml",
        "cacher_watch_during_reinit",
        "watch-no-gap",
        ExploreOptions {
            max_depth: 16,
            max_states: 100_000,
            ..Default::default()
        },
    );
    assert_eq!(n, 14, "a shortest counterexample");
}

/// A depth-first search of the explorer's own transition system (its `enabled_actions` and
/// `fingerprint`) to `depth` actions, for an online violation. A table keeps, per fingerprint,
/// the most remaining depth it was expanded with, so memory is a few bytes a state where the
/// BFS keeps whole worlds: a stand-in until the explorer reaches such depths itself.
fn dfs_online_violation(s: &Spec, depth: usize) -> Option<(String, Vec<EventKey>)> {
    fn go(
        w: &World,
        end_ns: u64,
        left: usize,
        seen: &mut std::collections::HashMap<u64, usize>,
        path: &mut Vec<EventKey>,
    ) -> Option<String> {
        if left == 0 {
            return None;
        }
        for a in enabled_actions(w, end_ns) {
            let Action::Fire(key) = a;
            let mut next = w.clone();
            if next.apply(a).is_err() {
                continue;
            }
            path.push(key);
            if let Some((inv, _)) = next.observations().checker.first_online() {
                return Some(inv.name().to_string());
            }
            let f = fingerprint(&next);
            if seen.get(&f).is_none_or(|&l| l < left - 1) {
                seen.insert(f, left - 1);
                if let Some(inv) = go(&next, end_ns, left - 1, seen, path) {
                    return Some(inv);
                }
            }
            path.pop();
        }
        None
    }
    let mut seen = std::collections::HashMap::new();
    let mut path = Vec::new();
    go(&s.world(), s.end_ns, depth, &mut seen, &mut path).map(|inv| (inv, path))
}

#[test]
fn the_explorer_actions_reach_the_reinit_race_in_14_steps() {
    // What explore_finds_a_watch_registered_during_cacher_reinit will show once the BFS reaches
    // depth 14: within the explorer's transition system the mutant's violation is 14 actions
    // away (none within 13: measured, docs/explorer.md), it records as a capsule, and the faithful
    // model has no violation within 14 actions.
    let file = "explore-watch-during-reinit.toml";
    let s = spec(file, &["mutants.cacher_watch_during_reinit=true"]);
    let (inv, keys) = dfs_online_violation(&s, 14).expect("found within 14 actions");
    assert_eq!(inv, "watch-no-gap");
    let c = capsule::record(&s, &keys, false, Some(&inv))
        .unwrap()
        .expect("the counterexample reproduces");
    assert_eq!(c.len(), keys.len());
    assert_eq!(
        c.footer.violation.as_ref().map(|v| v.name.as_str()),
        Some("watch-no-gap")
    );
    assert!(dfs_online_violation(&spec(file, &[]), 14).is_none());
}

#[test]
fn the_reinit_explore_scenario_shows_the_bug() {
    let n = scenario_shows_the_bug(
        "explore-watch-during-reinit.toml",
        "cacher_watch_during_reinit",
        "watch-no-gap",
        online_violation,
    );
    assert!(n <= 25, "{n} steps");
}

// ---------------------------------------------------------------- #91073

#[test]
fn check_finds_the_too_large_resource_version_loop() {
    // Kubernetes #91073: relists at an RV the never-written configmaps caches cannot reach get 504;
    // without the fallback to RV "" the reflector asks for the same RV forever.
    let first = check_refinds(
        "too-large-rv.toml",
        &[],
        "reflector_too_large_rv_no_fallback",
        "relist-bound",
        6,
    );
    assert_eq!(first, 1);
}

#[test]
fn explore_finds_the_too_large_resource_version_loop() {
    explore_refinds(
        "explore-too-large-rv.toml",
        "reflector_too_large_rv_no_fallback",
        "relist-bound",
        ExploreOptions {
            max_depth: 200,
            max_states: 50_000,
            ..Default::default()
        },
    );
}

#[test]
fn the_too_large_rv_explore_scenario_shows_the_bug() {
    scenario_shows_the_bug(
        "explore-too-large-rv.toml",
        "reflector_too_large_rv_no_fallback",
        "relist-bound",
        relists_over_the_bound,
    );
}

// ---------------------------------------------------------------- #86483 / PR #83520

/// relist-storm-restart.toml at a tenth of its size under Kubernetes 1.27 rules (the storm of
/// 1.17, before consistent reads from cache), its relist bound raised above the storm it shows
/// (a relist is not the fault here) and a bound on LISTs served from etcd.
const STORM_1_27: &[&str] = &[
    "apiserver.rules=\"1.27\"",
    "clients.0.count=500",
    "clients.1.count=500",
    "resources.0.count=5000",
    "resources.2.count=500",
    "workload.1.rate=50.0",
    "bounds.relists_per_client_hour=1.0",
    "bounds.etcd_lists_per_client_hour=0.1",
];

#[test]
fn check_finds_relists_served_from_etcd() {
    // Kubernetes #86483 (PR #83520): the 410 relists after the restart at 10 min keep the pager's
    // limit, so kube-apiserver sends them to etcd.
    let first = check_refinds(
        "relist-storm-restart.toml",
        STORM_1_27,
        "reflector_relist_from_etcd",
        "bound:etcd_lists_per_client_hour",
        2,
    );
    assert_eq!(first, 1);
}

#[test]
fn explore_finds_relists_served_from_etcd() {
    explore_refinds(
        "explore-relist-from-etcd.toml",
        "reflector_relist_from_etcd",
        "bound:etcd_lists_per_client_hour",
        ExploreOptions {
            max_depth: 60,
            max_states: 50_000,
            ..Default::default()
        },
    );
}

#[test]
fn the_relist_from_etcd_explore_scenario_shows_the_bug() {
    scenario_shows_the_bug(
        "explore-relist-from-etcd.toml",
        "reflector_relist_from_etcd",
        "bound:etcd_lists_per_client_hour",
        etcd_lists_over_the_bound,
    );
}

// ---------------------------------------------------------------- KEP-1904

/// relist-storm-rolling.toml at a tenth of its size.
const ROLLING_SMALL: &[&str] = &[
    "clients.0.count=500",
    "clients.1.count=500",
    "resources.0.count=5000",
    "resources.2.count=500",
    "workload.1.rate=50.0",
];

#[test]
fn check_finds_the_relist_storm_without_progress_notify_after_a_restart() {
    // KEP-1904: kube-proxies parked on a restarted apiserver without progress notify keep stale
    // RVs; the next restart moves them to a cache listed later: 410, relist.
    let first = check_refinds(
        "relist-storm-rolling.toml",
        ROLLING_SMALL,
        "no_progress_notify_after_restart",
        "relist-bound",
        2,
    );
    assert_eq!(first, 1);
}

#[test]
fn explore_finds_stale_rvs_without_progress_notify_after_a_restart() {
    explore_refinds(
        "explore-no-progress-after-restart.toml",
        "no_progress_notify_after_restart",
        "relist-bound",
        ExploreOptions {
            max_depth: 200,
            max_states: 50_000,
            ..Default::default()
        },
    );
}

#[test]
fn the_no_progress_explore_scenario_shows_the_bug() {
    scenario_shows_the_bug(
        "explore-no-progress-after-restart.toml",
        "no_progress_notify_after_restart",
        "relist-bound",
        relists_over_the_bound,
    );
}

#[test]
fn the_new_mutants_are_named_in_the_report_notes() {
    let text = std::fs::read_to_string(format!(
        "{}/sim-scenarios/explore-watch-during-reinit.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    for m in [
        "cacher_watch_during_reinit",
        "reflector_too_large_rv_no_fallback",
        "reflector_relist_from_etcd",
        "no_progress_notify_after_restart",
    ] {
        let set = format!("mutants.{m}=true");
        let s = spec("explore-watch-during-reinit.toml", &[&set]);
        assert_eq!(s.scenario.mutants.enabled(), vec![m]);
        let r = watchsim::sim::run_str("t.toml", &text, &[set], None).unwrap();
        assert!(
            r.notes
                .iter()
                .any(|n| n.contains(&format!("mutant {m} is on"))),
            "{:?}",
            r.notes
        );
    }
}

/// The first six mutants (issue 6) in the explorer's small scopes: each found on a shortest path
/// that records as a capsule, while the faithful model explores the same scope completely.
#[test]
fn explore_refinds_the_earlier_mutants_in_small_scopes() {
    let opts = ExploreOptions {
        max_depth: 200,
        max_states: 200_000,
        ..Default::default()
    };
    for (file, mutant, inv) in [
        ("explore-reads.toml", "cacher_reorder", "watch-order"),
        (
            "explore-reads.toml",
            "reflector_drop_deletes",
            "convergence",
        ),
        (
            "explore-reads.toml",
            "consistent_list_without_wait",
            "list-consistent",
        ),
        (
            "explore-reads.toml",
            "cacher_window_off_by_one",
            "cache-window",
        ),
        (
            "explore-snapshot.toml",
            "cacher_duplicate_after_snapshot",
            "watch-unique",
        ),
        (
            "explore-skip-compacted.toml",
            "etcd_skip_compacted_watcher",
            "watch-no-gap",
        ),
    ] {
        let len = explore_refinds(file, mutant, inv, opts);
        assert!(
            len <= 30,
            "{mutant}: a short counterexample, not {len} actions"
        );
        let faithful = explore(&spec(file, &[]), opts);
        assert!(
            faithful.complete,
            "{file}: the faithful scope is searched completely"
        );
    }
}
