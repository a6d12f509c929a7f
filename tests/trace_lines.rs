//! The trace's step lines are written by hand for speed (`trace::write_step_line`); they must be
//! byte for byte what `serde_json` makes of a `StepRecord`, or every trace hash would change.

use watchsim::check::runner::Spec;
use watchsim::trace::{StepRecord, write_step_line};
use watchsim::world::Action;

#[test]
fn hand_written_step_lines_equal_serde_json_on_every_step() {
    for file in [
        "steady-small.toml",
        "cacher-basics.toml",
        "etcd-basics.toml",
        "explore-2x3x3.toml",
    ] {
        let path = format!("{}/sim-scenarios/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let spec = Spec::load(&path, &text, &[], None).unwrap();
        let mut world = spec.world();
        let (mut steps, mut with_minutes) = (0u64, 0u64);
        while let Some(action) = world.next_timed_action() {
            let Action::Fire(key) = action;
            if key.due_ns > spec.end_ns {
                break;
            }
            let outcome = world.apply(action).unwrap();
            steps += 1;
            with_minutes += u64::from(outcome.minute_relists.is_some());
            let record = StepRecord {
                step: steps,
                t_ns: world.now(),
                fire: key,
                outcome: &outcome,
            };
            let mut fast = Vec::new();
            write_step_line(&mut fast, &record).unwrap();
            let reference = serde_json::to_vec(&record).unwrap();
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(reference).unwrap(),
                "{file} step {steps}"
            );
        }
        assert!(steps > 10, "{file}: {steps} steps");
        if file == "steady-small.toml" {
            assert!(with_minutes > 0, "the per-minute fields were exercised");
        }
    }
}
