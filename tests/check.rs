//! `watchsim check`: seed campaigns. Determinism across thread counts, shard summaries that merge
//! into the unsharded summary, swarm variants, exit codes, and the time-travel-ha story: the
//! campaign finds Kubernetes #59848 and writes a shrunk capsule that replays.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use watchsim::check::campaign::{self, CampaignOptions, Summary};
use watchsim::check::runner::Spec;

fn watchsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_watchsim"))
        .args(args)
        .output()
        .expect("watchsim runs")
}

fn scenario(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sim-scenarios")
        .join(name)
        .display()
        .to_string()
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("watchsim-check-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn spec(name: &str, overrides: &[&str]) -> Spec {
    let path = scenario(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    Spec::load(&path, &text, &overrides, None).unwrap()
}

fn opts(seeds: u64, jobs: usize, shard: Option<(u64, u64)>, swarm: bool) -> CampaignOptions {
    CampaignOptions {
        seeds,
        from: None,
        jobs,
        shard,
        swarm,
        progress: false,
    }
}

/// A small, varied campaign: steady-small cut to 3 minutes with random watch disconnects.
fn varied() -> Spec {
    spec(
        "steady-small.toml",
        &[
            "duration=\"3m\"",
            "faults.watch_disconnect_rate=20.0",
            "clients.0.count=10",
        ],
    )
}

#[test]
fn jobs_1_and_jobs_2_give_identical_summaries() {
    let base = varied();
    let one = campaign::run_campaign(&base, &opts(6, 1, None, false)).unwrap();
    let two = campaign::run_campaign(&base, &opts(6, 2, None, false)).unwrap();
    assert!(one.same_result(&two), "{one:#?}\n{two:#?}");
    assert_eq!(one.seeds_run, 6);
}

#[test]
fn shard_summaries_merge_into_the_unsharded_summary() {
    let base = spec("time-travel-ha.toml", &["duration=\"90s\""]);
    let whole = campaign::run_campaign(&base, &opts(7, 2, None, false)).unwrap();
    let parts: Vec<Summary> = (0..3)
        .map(|k| campaign::run_campaign(&base, &opts(7, 1, Some((k, 3)), false)).unwrap())
        .collect();
    assert_eq!(
        parts.iter().map(|p| p.seeds_run).collect::<Vec<_>>(),
        [3, 2, 2],
        "seed indices i with i mod 3 = k"
    );
    let merged = Summary::merge(&parts).unwrap();
    assert!(merged.same_result(&whole), "{merged:#?}\n{whole:#?}");
    assert_eq!(merged.shard, "all");
    assert!(Summary::merge(&[parts[0].clone(), parts[0].clone()]).is_err());
    let partial = Summary::merge(&parts[..2]).unwrap();
    assert_eq!(partial.shard, "0,1/3");
}

#[test]
fn check_merge_on_the_command_line_equals_the_unsharded_json() {
    let dir = temp_dir("merge");
    let tt = scenario("time-travel-ha.toml");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "check",
            &tt,
            "--seeds",
            "4",
            "--json",
            "--shrink-budget",
            "0",
            "--set",
            "duration=\"90s\"",
        ];
        args.extend_from_slice(extra);
        let d = dir.display().to_string();
        args.extend_from_slice(&["--capsule-dir", &d]);
        let out = watchsim(&args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let whole: Summary = serde_json::from_str(&run(&["--jobs", "2"])).unwrap();
    let mut files = Vec::new();
    for k in 0..2 {
        let shard = format!("{k}/2");
        let text = run(&["--shard", &shard, "--jobs", "1"]);
        let f = dir.join(format!("shard{k}.json"));
        std::fs::write(&f, text).unwrap();
        files.push(f.display().to_string());
    }
    let out = watchsim(&["check", "--merge", &files[0], &files[1], "--json"]);
    assert_eq!(out.status.code(), Some(1), "violations found: exit 1");
    let merged: Summary = serde_json::from_slice(&out.stdout).unwrap();
    assert!(merged.same_result(&whole), "{merged:#?}\n{whole:#?}");
}

#[test]
fn check_finds_the_time_travel_and_writes_a_shrunk_capsule_that_replays() {
    let dir = temp_dir("tt");
    let d = dir.display().to_string();
    let out = watchsim(&[
        "check",
        &scenario("time-travel-ha.toml"),
        "--seeds",
        "10",
        "--capsule-dir",
        &d,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("no-time-travel"), "{stdout}");
    assert!(stdout.contains("10 seeds"), "every seed travels: {stdout}");
    assert!(
        stderr.contains("violated: no-time-travel (seed 1"),
        "{stderr}"
    );
    let shrunk = dir.join("time-travel-ha-seed1.shrunk.capsule.jsonl");
    assert!(
        stderr.contains(&shrunk.display().to_string()),
        "prints the capsule path: {stderr}"
    );
    let capsule = watchsim::check::capsule::Capsule::read(&shrunk).unwrap();
    assert!(
        capsule.steps.len() <= 40,
        "a few dozen steps, got {}",
        capsule.steps.len()
    );
    let full =
        watchsim::check::capsule::Capsule::read(&dir.join("time-travel-ha-seed1.capsule.jsonl"))
            .unwrap();
    assert_eq!(capsule.footer.shrunk_from, Some(full.steps.len() as u64));
    let replay = watchsim(&["replay", &shrunk.display().to_string(), "--timeline"]);
    let text = String::from_utf8_lossy(&replay.stdout);
    assert_eq!(replay.status.code(), Some(1), "{text}");
    assert!(text.contains("!! no-time-travel"), "{text}");
    assert!(text.contains("fault StallApiserver server=1"), "{text}");
    assert!(text.contains("LIST rv=\"0\""), "{text}");
}

#[test]
fn check_exits_0_when_the_controller_lists_with_rv_unset() {
    let dir = temp_dir("ok");
    let d = dir.display().to_string();
    let out = watchsim(&[
        "check",
        &scenario("time-travel-ha.toml"),
        "--seeds",
        "6",
        "--set",
        "clients.0.list_rv=\"\"",
        "--capsule-dir",
        &d,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("violations: none"), "{stdout}");
}

#[test]
fn check_refuses_bad_input_with_exit_2() {
    let tt = scenario("time-travel-ha.toml");
    for args in [
        vec!["check", tt.as_str(), "--shard", "3/3"],
        vec!["check", tt.as_str(), "--shard", "x"],
        vec!["check", tt.as_str(), "--set", "no.such.key=1"],
        vec!["check", "/nonexistent/scenario.toml"],
        vec!["check", "--merge", "/nonexistent/summary.json"],
    ] {
        let out = watchsim(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn swarm_variants_differ_between_seeds_and_repeat_for_a_seed() {
    let base = spec(
        "time-travel-ha.toml",
        &["faults.watch_disconnect_rate=10.0", "duration=\"90s\""],
    );
    let texts: Vec<String> = (1..=8)
        .map(|s| campaign::swarm_variant(&base, s).unwrap().text)
        .collect();
    assert_eq!(texts[0], campaign::swarm_variant(&base, 1).unwrap().text);
    let distinct: std::collections::BTreeSet<&String> = texts.iter().collect();
    assert!(distinct.len() > 2, "seeds draw different fault mixes");
    assert!(
        texts.iter().any(|t| !t.contains("restart_client")),
        "some seed drops a fault kind"
    );
    let one = campaign::run_campaign(&base, &opts(6, 1, None, true)).unwrap();
    let two = campaign::run_campaign(&base, &opts(6, 2, None, true)).unwrap();
    assert!(one.same_result(&two));
    assert!(one.swarm);
}

#[test]
fn the_same_seed_twice_gives_the_same_trace_hash() {
    let text = std::fs::read_to_string(scenario("time-travel-ha.toml")).unwrap();
    let a = watchsim::sim::run_str("tt", &text, &[], Some(7)).unwrap();
    let b = watchsim::sim::run_str("tt", &text, &[], Some(7)).unwrap();
    let c = watchsim::sim::run_str("tt", &text, &[], Some(8)).unwrap();
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_ne!(a.trace_hash, c.trace_hash);
}
