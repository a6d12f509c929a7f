//! The `watchsim` binary as a user runs it: exit codes, bad-input messages, the JSON report's
//! fields, traces and determinism (SPEC §1, §4, §5).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

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
    let d = std::env::temp_dir().join(format!("watchsim-cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn report(args: &[&str]) -> Value {
    let out = watchsim(args);
    assert!(
        out.status.code() == Some(0),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("exactly one JSON object on stdout")
}

/// Runs a bad scenario and returns stderr after checking exit code 2 and no panic.
fn bad(name: &str, text: &str) -> String {
    let dir = temp_dir("bad");
    let path = write(&dir, name, text);
    let out = watchsim(&["run", &path]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(name), "message names the file: {err}");
    err
}

#[test]
fn unknown_key_exits_2_naming_file_key_and_line() {
    let err = bad(
        "unknown.toml",
        "name = \"x\"\nduration = \"1m\"\nno_such_key = 3\n",
    );
    assert!(err.contains("unknown.toml:3"), "{err}");
    assert!(err.contains("no_such_key"), "{err}");
}

#[test]
fn malformed_duration_exits_2_naming_the_key() {
    let err = bad(
        "duration.toml",
        "name = \"x\"\nduration = \"ten minutes\"\n",
    );
    assert!(err.contains("duration.toml:2"), "{err}");
    assert!(err.contains("`duration`"), "{err}");
}

#[test]
fn missing_name_exits_2() {
    let err = bad("noname.toml", "duration = \"1m\"\n");
    assert!(err.contains("`name`"), "{err}");
}

#[test]
fn unknown_op_exits_2_naming_the_step() {
    let err = bad(
        "op.toml",
        "name = \"x\"\n[[steps]]\nat = \"1s\"\nop = \"etcd.putt\"\nkey = \"a\"\n",
    );
    assert!(err.contains("steps.0.op"), "{err}");
    assert!(err.contains("op.toml:4"), "{err}");
}

#[test]
fn toml_syntax_error_exits_2_with_the_line() {
    let err = bad("syntax.toml", "name = \"x\nduration = 1m\n");
    assert!(err.contains("syntax.toml:1"), "{err}");
}

#[test]
fn missing_file_exits_2() {
    let out = watchsim(&["run", "/nonexistent/watchsim/missing.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

#[test]
fn unknown_set_key_exits_2() {
    let out = watchsim(&[
        "run",
        &scenario("etcd-basics.toml"),
        "--set",
        "etcd.no_such=1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--set") && err.contains("etcd.no_such"),
        "{err}"
    );
}

#[test]
fn report_has_every_contract_field() {
    let r = report(&["run", &scenario("etcd-basics.toml"), "--json"]);
    for f in [
        "scenario",
        "seed",
        "watchsim_version",
        "virtual_seconds",
        "wall_seconds",
        "steps",
        "steps_per_second",
        "trace_hash",
        "etcd",
        "apiservers",
        "clients",
        "invariants",
        "bounds",
        "script",
        "watches",
    ] {
        assert!(r.get(f).is_some(), "missing {f}");
    }
    for f in [
        "revision",
        "compact_revision",
        "range_requests",
        "range_bytes",
        "watch_events_sent",
    ] {
        assert!(r["etcd"].get(f).is_some(), "missing etcd.{f}");
    }
    let names: Vec<&str> = r["invariants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 8);
    assert_eq!(r["scenario"], "etcd-basics");
    assert_eq!(r["virtual_seconds"], 10.0);
    assert_eq!(r["trace_hash"].as_str().unwrap().len(), 16);
}

/// The etcd-basics story's results, written out from etcd-semantics.md Part B (OBS-1..OBS-5),
/// not copied from a run.
#[test]
fn etcd_basics_script_matches_real_etcd() {
    let r = report(&["run", &scenario("etcd-basics.toml"), "--json"]);
    let results: Vec<Value> = r["script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["result"].clone())
        .collect();
    let kv = |key: &str, c: i64, m: i64, v: i64| json!({"key": key, "create_revision": c, "mod_revision": m, "version": v});
    assert_eq!(
        results[0],
        json!({"revision": 1, "count": 0, "more": false, "kvs": []})
    );
    assert_eq!(results[1], json!({"created": true}));
    let revisions: Vec<&Value> = results[2..12].iter().map(|x| &x["revision"]).collect();
    assert_eq!(revisions, [2, 3, 4, 5, 5, 5, 6, 7, 8, 9]);
    assert_eq!(results[5]["deleted"], 1);
    assert_eq!(results[6]["deleted"], 0);
    assert_eq!(results[7]["deleted"], 0);
    assert_eq!(
        results[12],
        json!({"revision": 9, "count": 1, "more": false, "kvs": [kv("foo", 2, 3, 2)]})
    );
    assert_eq!(
        results[13],
        json!({"revision": 9, "count": 0, "more": false, "kvs": []})
    );
    assert_eq!(
        results[14]["kvs"],
        json!([kv("bar", 4, 4, 1), kv("foo", 2, 3, 2)])
    );
    assert_eq!(results[15]["error"], "future_revision");
    assert_eq!(
        (&results[16]["count"], &results[16]["more"]),
        (&json!(4), &json!(true))
    );
    assert_eq!(results[17], json!({"revision": 9}));
    assert_eq!(
        results[18],
        json!({"error": "compacted", "compact_revision": 7})
    );
    assert_eq!(
        results[19]["kvs"],
        json!([kv("bar", 4, 4, 1), kv("baz", 7, 7, 1), kv("foo", 6, 6, 1)])
    );
    assert_eq!(
        results[20],
        json!({"error": "compacted", "compact_revision": 7})
    );
    assert_eq!(results[21]["error"], "future_revision");
    assert_eq!(
        r["watches"]["foo-from-3"],
        json!([{"type": "CANCELED", "compact_revision": 7}])
    );
    let future: Vec<&Value> = r["watches"]["foo-from-11"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["mod_revision"])
        .collect();
    assert_eq!(future, [11, 12]);
    assert_eq!(
        r["watches"]["foo-now"],
        json!([{"type": "PROGRESS", "revision": 12}])
    );
    let all = r["watches"]["all-from-1"].as_array().unwrap();
    let last3: Vec<(&Value, &Value)> = all[all.len() - 3..]
        .iter()
        .map(|e| (&e["type"], &e["mod_revision"]))
        .collect();
    assert_eq!(last3, [(&json!("DELETE"), &json!(16)); 3]);
    assert_eq!(r["etcd"]["revision"], 16);
    assert_eq!(r["etcd"]["compact_revision"], 7);
}

#[test]
fn same_seed_gives_the_same_hash_and_byte_identical_trace() {
    let dir = temp_dir("det");
    let (t1, t2) = (dir.join("a.jsonl"), dir.join("b.jsonl"));
    let churn = scenario("etcd-churn.toml");
    let r1 = report(&[
        "run",
        &churn,
        "--duration",
        "60s",
        "--json",
        "--trace",
        t1.to_str().unwrap(),
    ]);
    let r2 = report(&[
        "run",
        &churn,
        "--duration",
        "60s",
        "--json",
        "--trace",
        t2.to_str().unwrap(),
    ]);
    assert_eq!(r1["trace_hash"], r2["trace_hash"]);
    let (a, b) = (std::fs::read(&t1).unwrap(), std::fs::read(&t2).unwrap());
    assert!(a == b, "traces differ");
    let text = String::from_utf8(a).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let header: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(header["format"], "watchsim-trace");
    assert_eq!(header["version"], 1);
    assert_eq!(header["seed"], 1);
    assert!(
        header["scenario"]
            .as_str()
            .unwrap()
            .contains("name = \"etcd-churn\"")
    );
    let footer: Value = serde_json::from_str(lines[lines.len() - 1]).unwrap();
    assert_eq!(footer["trace_hash"], r1["trace_hash"]);
    assert_eq!(lines.len() as u64, r1["steps"].as_u64().unwrap() + 2);
    let step: Value = serde_json::from_str(lines[1]).unwrap();
    for f in ["step", "t_ns", "actor", "action", "fire"] {
        assert!(step.get(f).is_some(), "step line lacks {f}: {step}");
    }
}

#[test]
fn different_seeds_give_different_hashes() {
    let churn = scenario("etcd-churn.toml");
    let a = report(&["run", &churn, "--duration", "60s", "--json", "--seed", "1"]);
    let b = report(&["run", &churn, "--duration", "60s", "--json", "--seed", "2"]);
    assert_ne!(a["trace_hash"], b["trace_hash"]);
    assert_eq!(b["seed"], 2);
}

#[test]
fn set_override_changes_the_run() {
    let churn = scenario("etcd-churn.toml");
    let a = report(&["run", &churn, "--duration", "30s", "--json"]);
    let b = report(&[
        "run",
        &churn,
        "--duration",
        "30s",
        "--json",
        "--set",
        "workload.0.rate=5.0",
    ]);
    assert!(b["etcd"]["writes"].as_u64().unwrap() < a["etcd"]["writes"].as_u64().unwrap() / 4);
}

#[test]
fn human_summary_prints_knobs_before_results() {
    let out = watchsim(&["run", &scenario("etcd-basics.toml")]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let knobs = text.find("knobs:").expect("knobs section");
    let results = text.find("results:").expect("results section");
    assert!(knobs < results);
    assert!(text.contains("progress_notify_interval=10m"));
}

#[test]
fn cacher_basics_story_runs_and_shows_the_rules() {
    let r = report(&["run", &scenario("cacher-basics.toml"), "--json"]);
    assert_eq!(
        r["watches"]["too-old"][0]["message"],
        "too old resource version: 3 (4)"
    );
    assert_eq!(
        r["watches"]["resume-after-restart"][0]["message"],
        "too old resource version: 5 (7)"
    );
    assert_eq!(r["watches"]["watch-list"][3]["initial_events_end"], true);
    assert_eq!(r["script"][11]["result"]["error"]["code"], 504);
    assert_eq!(r["script"][14]["result"]["error"]["code"], 429);
    assert_eq!(r["apiservers"][0]["restarts"], 1);
}

#[test]
fn explore_exits_1_with_a_capsule_that_replays_and_2_on_bad_options() {
    let dir = temp_dir("explore");
    let caps = dir.display().to_string();
    let out = watchsim(&[
        "explore",
        &scenario("explore-small.toml"),
        "--set",
        "mutants.cacher_window_off_by_one=true",
        "--capsule-dir",
        &caps,
        "--jobs",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("violation of cache-window"), "{stdout}");
    let capsule = dir.join("explore-small-explore.capsule.jsonl");
    let replay = watchsim(&["replay", &capsule.display().to_string()]);
    assert_eq!(replay.status.code(), Some(1), "{replay:?}");
    let clean = watchsim(&["explore", &scenario("explore-snapshot.toml")]);
    assert_eq!(clean.status.code(), Some(0), "{clean:?}");
    assert!(String::from_utf8_lossy(&clean.stdout).contains("complete"));
    for bad in [
        &["--no-reduction", "space"][..],
        &["--jobs", "0"][..],
        &["--set", "explore.windw=\"1ms\""][..],
    ] {
        let mut args = vec!["explore", "sim-scenarios/explore-snapshot.toml"];
        args.extend_from_slice(bad);
        let out = Command::new(env!("CARGO_BIN_EXE_watchsim"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {out:?}");
    }
}

#[test]
fn a_reader_that_closes_the_pipe_early_gets_no_panic() {
    // `watchsim run ... | head -0`: the pipe is closed before anything is printed.
    let mut child = Command::new(env!("CARGO_BIN_EXE_watchsim"))
        .args(["run", &scenario("steady-small.toml")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}
