//! Fan-out journals (issue 16, step 20) change no result: a run whose steps go through lanes
//! and journals ([`World::apply_reusing`], the simulator's loop) and the same run with every
//! receiver reached one by one ([`World::apply`], the explorer's steps) have the same steps, the
//! same state once settled and the same report (the checker's verdicts included), with and
//! without a mutant whose gaps the checker must find in the fanned-out events.

use std::sync::Arc;

use crate::proto::step::Outcome;
use crate::world::{Action, StepBuffers, World};

/// 2 apiservers, 160 kube-proxy-like informers (one fan-out of up to 160 per event per
/// apiserver: above the journals' threshold), churn, disconnects, an apiserver restart and a
/// compaction.
const SCENARIO: &str = r#"
name = "journals"
seed = 1
duration = "3m"

[etcd]
progress_notify_interval = "5s"

[apiserver]
count = 2

[[resources]]
name = "endpointslices"
count = 40
object_bytes = "2KiB"

[[clients]]
name = "proxy"
count = 160
resource = "endpointslices"
scope = "cluster"
store = "digest"

[[clients]]
name = "watcher"
count = 3
resource = "endpointslices"
scope = "cluster"
store = "map"

[[workload]]
resource = "endpointslices"
kind = "churn"
rate = 20.0

[faults]
watch_disconnect_rate = 20.0
disconnect_duration = "3s"

[[faults.at]]
at = "70s"
kind = "restart_apiserver"
server = 1
for = "10s"

[[faults.at]]
at = "100s"
kind = "compact_now"
"#;

/// How a run's steps are applied.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// [`World::apply`]: every receiver one by one, no lane.
    OneByOne,
    /// [`World::apply_reusing`]: lanes and journals.
    Lanes,
    /// Lanes settled after every step, as `check/runner.rs` runs (buffers for that loop).
    Settling,
}

/// The steps, the settled world, the largest number of journal members seen after a step
/// (before any settle), and the report's JSON without wall-clock figures.
fn run(
    overrides: &[String],
    seed: u64,
    mode: Mode,
) -> (Vec<Outcome>, World, u64, serde_json::Value) {
    let scenario =
        crate::scenario::load_str("journals.toml", SCENARIO, overrides).expect("a valid scenario");
    let end_ns = scenario.duration.as_ns();
    let mut world = World::new(Arc::new(scenario), seed);
    let mut buffers = match mode {
        Mode::Settling => StepBuffers::settling_each_step(),
        _ => StepBuffers::default(),
    };
    let mut outcomes = Vec::new();
    let mut most_members = 0;
    while let Some(action) = world.next_timed_action() {
        let Action::Fire(key) = action;
        if key.due_ns > end_ns {
            break;
        }
        let outcome = match mode {
            Mode::OneByOne => world.apply(action),
            Mode::Lanes | Mode::Settling => world.apply_reusing(action, &mut buffers),
        };
        outcomes.push(outcome.expect("a pending action"));
        most_members = most_members.max(world.clients().journal_members());
        if mode == Mode::Settling {
            world.settle_lanes();
        }
    }
    world.settle_lanes();
    let steps = outcomes.len() as u64;
    let report = super::build_report(&world, seed, end_ns, steps, 0.0);
    let mut json = serde_json::to_value(&report).expect("a report serialises");
    // The process's own peak memory is measured, not modelled.
    json.as_object_mut()
        .expect("a report is an object")
        .remove("peak_memory_bytes");
    (outcomes, world, most_members, json)
}

/// Runs the scenario both ways and compares; `min_members`: the journal members the run must
/// have had at once (so that the comparison is not vacuous).
fn same_run_with_and_without_journals(
    overrides: &[String],
    seed: u64,
    min_members: u64,
) -> serde_json::Value {
    let (steps_a, world_a, members_a, report_a) = run(overrides, seed, Mode::OneByOne);
    let (steps_b, world_b, members_b, report_b) = run(overrides, seed, Mode::Lanes);
    assert_eq!(members_a, 0, "the explorer's steps use no journal");
    assert!(
        members_b >= min_members,
        "the informers should have joined journals (most at once: {members_b})"
    );
    assert_eq!(steps_a.len(), steps_b.len(), "step counts");
    if let Some(n) = (0..steps_a.len()).find(|&n| steps_a[n] != steps_b[n]) {
        panic!(
            "step {} differs: {:?} vs {:?}",
            n + 1,
            steps_a[n],
            steps_b[n]
        );
    }
    // (The worlds' networks differ by design: the simulator's loop does not move a fan-out's
    // FIFO horizons, `World::multicast`.)
    assert!(
        world_a.clients() == world_b.clients(),
        "settled informers differ"
    );
    assert!(
        world_a.apiservers() == world_b.apiservers(),
        "apiservers differ"
    );
    assert!(world_a.etcd() == world_b.etcd(), "etcd differs");
    let records = |w: &World| w.observations().checker.records_for_tests();
    assert!(
        records(&world_a) == records(&world_b),
        "the checker's streams or time-travel records differ"
    );
    assert_eq!(report_a, report_b, "reports differ");
    report_b
}

/// Violations of every invariant the report lists.
fn violations(report: &serde_json::Value) -> u64 {
    let all = report["invariants"]
        .as_array()
        .expect("a list of invariants");
    all.iter()
        .map(|i| i["violations"].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn journals_leave_steps_state_and_report_as_one_by_one_delivery() {
    for seed in [1, 2, 3] {
        let report = same_run_with_and_without_journals(&[], seed, 100);
        assert_eq!(
            violations(&report),
            0,
            "seed {seed}: {}",
            report["invariants"]
        );
    }
}

proptest::proptest! {
    // Each case is two runs of 100 virtual seconds (~0.1 s).
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 48,
        ..crate::kernel::proptest_kept("tests/fan_out_journals.proptest-regressions")
    })]

    /// The same for any seed, number of informers (140 to 260 over two apiservers: fan-outs
    /// of about the journals' threshold and above), disconnect rate and churn.
    #[test]
    fn journals_change_nothing_for_any_seed_and_load(
        seed in 0u64..10_000,
        proxies in 140u32..260,
        disconnects in proptest::prop_oneof![proptest::strategy::Just(0.0), 1.0f64..200.0],
        churn in 1.0f64..60.0,
    ) {
        let overrides = [
            format!("clients.0.count={proxies}"),
            format!("faults.watch_disconnect_rate={disconnects:?}"),
            format!("workload.0.rate={churn:?}"),
            "duration=\"100s\"".to_string(),
        ];
        same_run_with_and_without_journals(&overrides, seed, 1);
    }
}

/// A new watch gets again, after its snapshot, the event that was queued when it registered
/// (Kubernetes PR #73845): the checker must find the same duplicates and reorderings in the
/// fanned-out events through journals as one by one.
#[test]
fn journals_find_the_same_violations_under_a_mutant() {
    let report = same_run_with_and_without_journals(
        &["mutants.cacher_duplicate_after_snapshot=true".to_string()],
        1,
        100,
    );
    assert!(
        violations(&report) > 0,
        "the mutant was not caught: {}",
        report["invariants"]
    );
}

/// The check runner settles every lane after each step (it reads the informers and the checker
/// between steps): its buffers take no journal, and its run is the simulator's.
#[test]
fn a_loop_that_settles_each_step_takes_no_journal() {
    let (steps_a, _, _, report_a) = run(&[], 1, Mode::Lanes);
    let (steps_b, _, members_b, report_b) = run(&[], 1, Mode::Settling);
    assert_eq!(
        members_b, 0,
        "a journal was made in a loop that settles each step"
    );
    assert!(steps_a == steps_b, "the steps differ");
    assert_eq!(report_a, report_b, "reports differ");
}
