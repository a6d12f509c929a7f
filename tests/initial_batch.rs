//! A cacher's initial state travels as one message (`api.watch_events`, issue 16): a WatchList
//! informer syncs in one delivery step whatever the object count, informers with map and digest
//! stores end with the same state, and watchers that start on the same cache state share the
//! batch. The per-event judgement of initial events by the checker is covered by
//! `tests/invariants.rs` (the `cacher_duplicate_after_snapshot` mutant) and the unit tests of
//! `monitor/invariants/watch.rs`.

use std::path::PathBuf;

use serde_json::Value;
use watchsim::scenario::{LoadedScenario, load_str};
use watchsim::sim::{RunOptions, run};

fn scenario(store: &str, pods: u32, clients: u32) -> String {
    format!(
        "name = \"t\"\nduration = \"20s\"\n[apiserver]\nrules = \"1.37\"\n\
         [[resources]]\nname = \"pods\"\ncount = {pods}\n\
         [[clients]]\nname = \"informer\"\ncount = {clients}\nresource = \"pods\"\n\
         scope = \"cluster\"\nstore = \"{store}\"\n\
         [[workload]]\nresource = \"pods\"\nkind = \"churn\"\nrate = 5.0\n"
    )
}

/// Runs `text` with a trace; returns the report and the trace's step lines.
fn run_traced(text: &str, name: &str) -> (Value, Vec<Value>) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("initial_batch");
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join(format!("{name}.jsonl"));
    let loaded = LoadedScenario {
        origin: "t.toml".into(),
        text: text.into(),
        overrides: vec![],
        scenario: load_str("t.toml", text, &[]).expect("scenario loads"),
    };
    let opts = RunOptions {
        trace: Some(trace.clone()),
        ..RunOptions::default()
    };
    let report = serde_json::to_value(run(&loaded, &opts).expect("runs")).unwrap();
    let steps = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("step").is_some())
        .collect();
    (report, steps)
}

fn deliveries<'a>(steps: &'a [Value], what: &str) -> Vec<&'a Value> {
    steps
        .iter()
        .filter(|s| s["action"] == "deliver" && s["what"] == what)
        .collect()
}

#[test]
fn a_watch_list_sync_is_one_step_per_informer_and_map_and_digest_stores_agree() {
    let mut digests = vec![];
    for store in ["map", "digest"] {
        let (report, steps) = run_traced(&scenario(store, 200, 4), store);
        let batches = deliveries(&steps, "api.watch_events");
        assert_eq!(
            batches.len(),
            4,
            "one initial-state step per informer ({store})"
        );
        for b in &batches {
            assert_eq!(b["result"], "initial_event", "{b}");
            assert!(b["actor"].as_str().unwrap().starts_with("client-"), "{b}");
        }
        assert_eq!(
            report["clients"]["converged"], true,
            "{store}: {}",
            report["clients"]
        );
        assert_eq!(report["clients"]["relists"], 0);
        for inv in report["invariants"].as_array().unwrap() {
            assert_eq!(inv["held"], true, "{store}: {inv}");
        }
        digests.push((report["steps"].clone(), report["trace_hash"].clone()));
    }
    assert_eq!(
        digests[0], digests[1],
        "the store kind changes no step of the run"
    );
}

#[test]
fn the_sync_costs_the_same_steps_for_ten_objects_or_a_thousand() {
    let (_, few) = run_traced(&scenario("digest", 10, 3), "few");
    let (_, many) = run_traced(&scenario("digest", 1000, 3), "many");
    let to_clients = |steps: &[Value]| {
        steps
            .iter()
            .filter(|s| s["action"] == "deliver")
            .filter(|s| {
                s["actor"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("client-"))
            })
            .filter(|s| s["t_ns"].as_u64().unwrap() < 1_000_000_000)
            .count()
    };
    // The informers' first second: request replies and the initial state, no per-object steps.
    assert_eq!(to_clients(&few), to_clients(&many));
}
