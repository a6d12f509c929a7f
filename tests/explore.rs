//! `watchsim explore`: bounded breadth-first search over the model's states.

use watchsim::check::explore::{ExploreOptions, enabled_actions, explore, fingerprint};
use watchsim::check::runner::Spec;

fn spec(overrides: &[&str]) -> Spec {
    spec_of("explore-small.toml", overrides)
}

fn spec_of(file: &str, overrides: &[&str]) -> Spec {
    let path = format!("{}/sim-scenarios/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let path = path.as_str();
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    Spec::load(path, &text, &overrides, None).unwrap()
}

#[test]
fn the_faithful_model_holds_on_every_explored_interleaving() {
    let out = explore(
        &spec(&[]),
        ExploreOptions {
            max_depth: 40,
            max_states: 5_000,
            ..Default::default()
        },
    );
    assert!(out.violation.is_none(), "{:?}", out.violation);
    assert!(out.unique >= 5_000, "the bound was reached: {}", out.unique);
    assert!(out.explored >= out.unique - 1);
}

#[test]
fn the_window_off_by_one_mutant_is_found_on_a_shortest_path_that_replays() {
    // Kubernetes #68065: a watch at exactly oldest-1 (the list RV) refused with 410.
    let s = spec(&["mutants.cacher_window_off_by_one=true"]);
    let out = explore(
        &s,
        ExploreOptions {
            max_depth: 40,
            max_states: 50_000,
            ..Default::default()
        },
    );
    let (inv, keys) = out.violation.expect("found");
    assert_eq!(inv, "cache-window");
    assert!(keys.len() <= 10, "a short counterexample: {}", keys.len());
    let capsule = watchsim::check::capsule::record(&s, &keys, false, Some(&inv))
        .unwrap()
        .expect("reproduces");
    assert_eq!(capsule.len(), keys.len());
}

#[test]
fn only_connection_heads_and_timers_are_enabled_and_fingerprints_are_stable() {
    let s = spec(&[]);
    let w = s.world();
    let enabled = enabled_actions(&w, s.end_ns);
    assert!(!enabled.is_empty());
    assert!(enabled.len() <= w.agenda().len());
    assert_eq!(
        fingerprint(&w),
        fingerprint(&s.world()),
        "same initial state, same fingerprint"
    );
    let mut a = s.world();
    a.apply(enabled[0]).unwrap();
    assert_ne!(fingerprint(&a), fingerprint(&w));
}

#[test]
fn the_2x3x3_scope_is_explored_completely_without_a_violation() {
    // 2 watchers x 3 keys x a window of 3 x 1 compaction x 1 disconnect (issue 7).
    let out = explore(
        &spec_of("explore-2x3x3.toml", &[]),
        ExploreOptions {
            max_depth: 1_000,
            max_states: 2_000_000,
            ..Default::default()
        },
    );
    assert!(out.violation.is_none(), "{:?}", out.violation);
    assert!(out.complete, "bounded at {} states", out.unique);
    assert!(out.unique > 10_000, "a real search: {} states", out.unique);
    // Pinned (issue 15: refactors keep every count; issue 16: speed work too). A deliberate
    // behaviour change moves them: update this pin, README.md, sim-scenarios/README.md and
    // docs/explorer.md together. The symmetry reduction's merges depend on what is hashed
    // (docs/explorer.md, 2026-12-04), so a change to hashed fields can move them as well.
    assert_eq!(
        (out.unique, out.explored),
        (215_185, 612_931),
        "explore-2x3x3's unique states and transitions changed"
    );
    // The time abstraction merges states that differ only in absolute times: without it the
    // same scope has several times more states (docs/explorer.md: 75,225 vs 486,886).
    let exact = explore(
        &spec_of("explore-2x3x3.toml", &[]),
        ExploreOptions {
            max_depth: 1_000,
            max_states: 2_000_000,
            reductions: watchsim::check::explore::Reductions {
                time: false,
                symmetry: true,
            },
            ..Default::default()
        },
    );
    assert!(exact.violation.is_none() && exact.complete);
    // Renaming the two interchangeable informers merges mirror-image states (75,225 states).
    let asymmetric = explore(
        &spec_of("explore-2x3x3.toml", &[]),
        ExploreOptions {
            max_depth: 1_000,
            max_states: 2_000_000,
            reductions: watchsim::check::explore::Reductions {
                time: true,
                symmetry: false,
            },
            ..Default::default()
        },
    );
    assert!(asymmetric.violation.is_none() && asymmetric.complete);
    assert!(
        out.unique * 5 < asymmetric.unique * 4,
        "{} vs {} states",
        out.unique,
        asymmetric.unique
    );
    assert!(
        out.unique * 4 < exact.unique,
        "{} vs {} states",
        out.unique,
        exact.unique
    );
}

#[test]
fn the_result_does_not_depend_on_the_number_of_threads() {
    let run = |jobs: usize, overrides: &[&str]| {
        explore(
            &spec_of("explore-reads.toml", overrides),
            ExploreOptions {
                max_depth: 1_000,
                max_states: 1_000_000,
                jobs,
                ..Default::default()
            },
        )
    };
    for overrides in [&[][..], &["mutants.reflector_drop_deletes=true"][..]] {
        let (one, two) = (run(1, overrides), run(2, overrides));
        assert_eq!(
            (one.explored, one.unique, one.max_depth, one.complete),
            (two.explored, two.unique, two.max_depth, two.complete)
        );
        assert_eq!(one.violation, two.violation);
    }
}

#[test]
fn two_apiservers_one_lagging_and_a_restarting_client_show_the_open_time_travel_bug() {
    // Kubernetes #59848 (open): the faithful model, no mutant. A consistent LIST fixes it.
    let opts = ExploreOptions {
        max_depth: 1_000,
        max_states: 500_000,
        ..Default::default()
    };
    let s = spec_of("explore-ha-lagging.toml", &[]);
    let (inv, keys) = explore(&s, opts).violation.expect("#59848 is found");
    assert_eq!(inv, "no-time-travel");
    let capsule = watchsim::check::capsule::record(&s, &keys, false, Some(&inv))
        .unwrap()
        .expect("reproduces");
    assert_eq!(capsule.len(), keys.len());
    let fixed = explore(
        &spec_of("explore-ha-lagging.toml", &["clients.0.list_rv=\"\""]),
        opts,
    );
    assert!(fixed.violation.is_none(), "{:?}", fixed.violation);
    assert!(fixed.complete);
}

/// A world after every step of a scripted scenario (no clients, no compactor).
fn scripted_world(steps: &str) -> watchsim::world::World {
    let text = format!(
        "name = \"measure\"\nseed = 1\nduration = \"3s\"\n[apiserver]\ncompaction_interval = \"0s\"\n{steps}"
    );
    let spec = Spec::load("measure.toml", &text, &[], None).unwrap();
    let mut w = spec.world();
    while let Some((key, _)) = w.agenda().first() {
        if key.due_ns > 3_000_000_000 {
            break;
        }
        w.apply(w.next_timed_action().unwrap()).unwrap();
    }
    w
}

fn step(at: &str, op: &str, extra: &str) -> String {
    format!("[[steps]]\nat = \"{at}\"\nop = \"{op}\"\n{extra}\n")
}

#[test]
fn depth_first_search_matches_bfs_on_2x3x3_and_the_reduction_meter_bounds_merges_at_zero() {
    use watchsim::check::explore_measure::ReductionMeter;
    // The reference scope: no two kept states differ only by a revision shift, and every key
    // keeps one create revision of its own, so neither reduction could merge anything
    // (docs/explorer.md "Reductions, measured").
    let out = explore(
        &spec_of("explore-2x3x3.toml", &[]),
        ExploreOptions {
            max_depth: 1_000,
            max_states: 2_000_000,
            measure_reductions: true,
            ..Default::default()
        },
    );
    let b = out.reduction_bounds.clone().expect("measured");
    assert!(out.complete && out.violation.is_none());
    assert_eq!(b.states, out.unique);
    assert_eq!(b.revision_shift_merges, 0);
    assert_eq!(b.key_symmetry_merges(), Some(0));
    assert_eq!(b.keys, 3);
    // Depth-first search visits exactly the same states and transitions when no bound cuts it.
    let dfs = watchsim::check::explore::explore_depth_first(
        &spec_of("explore-2x3x3.toml", &[]),
        ExploreOptions {
            max_depth: 1_000,
            max_states: 2_000_000,
            measure_reductions: true,
            ..Default::default()
        },
    );
    assert!(dfs.complete && dfs.violation.is_none());
    assert_eq!((dfs.unique, dfs.explored), (out.unique, out.explored));
    assert_eq!(dfs.reduction_bounds, Some(b));

    // Two states that are a revision shift of each other: the same script position (four steps
    // issued), the same key `j` at version 1, but `k` came and went (and was compacted away) in
    // one of them. The meter must count the possible merge, and `j`'s two create revisions.
    let j = "key = \"/registry/pods/default/j\"";
    let k = "key = \"/registry/pods/default/k\"";
    let shifted = scripted_world(
        &[
            step("1s", "etcd.put", k),
            step("1.1s", "etcd.delete", k),
            step("1.2s", "etcd.put", j),
            step("1.3s", "etcd.compact", "revision = 4"),
        ]
        .concat(),
    );
    let plain = scripted_world(
        &[
            step("1s", "etcd.range", j),
            step("1.1s", "etcd.range", j),
            step("1.2s", "etcd.put", j),
            step("1.3s", "etcd.compact", "revision = 2"),
        ]
        .concat(),
    );
    assert_eq!(shifted.etcd().store.revision(), 4);
    assert_eq!(plain.etcd().store.revision(), 2);
    let mut meter = ReductionMeter::default();
    meter.observe(&shifted);
    meter.observe(&plain);
    let b = meter.finish();
    assert_eq!(b.revision_shift_merges, 1);
    assert_eq!(b.keys_with_varying_creation, 1);
    assert_eq!(b.key_symmetry_merges(), None);
}

#[test]
fn depth_first_search_refinds_a_mutant_and_its_path_replays_to_the_violation() {
    let spec = spec_of("explore-2x3x3.toml", &["mutants.cacher_reorder=true"]);
    let out = watchsim::check::explore::explore_depth_first(
        &spec,
        ExploreOptions {
            max_depth: 1_000,
            max_states: 2_000_000,
            ..Default::default()
        },
    );
    let (inv, keys) = out
        .violation
        .expect("the reordering cacher is caught depth-first");
    assert_eq!(inv, "watch-order");
    assert!(!out.complete);
    // The path is a real run: applying it from the initial state reaches the violation.
    let mut w = spec.world();
    for key in keys {
        w.apply(watchsim::world::Action::Fire(key)).unwrap();
    }
    assert_eq!(
        watchsim::check::explore::state_violation(&w, spec.end_ns).as_deref(),
        Some("watch-order")
    );
}
