//! `watchsim replay` and capsules (SPEC §5): a capsule replays identically after a round trip
//! through its file; a changed step is reported as a divergence (exit 3) naming the step; other
//! format versions and corrupt files are refused (exit 2) naming file and line; shrunk capsules
//! of every broken model still demonstrate their invariant.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use watchsim::check::capsule::{Capsule, capture};
use watchsim::check::replay::replay;
use watchsim::check::runner::Spec;
use watchsim::check::shrink;

fn watchsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_watchsim"))
        .args(args)
        .output()
        .expect("watchsim runs")
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("watchsim-replay-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn scenario_text(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("sim-scenarios")
            .join(name),
    )
    .unwrap()
}

fn time_travel_capsule(dir: &Path) -> PathBuf {
    let spec = Spec::load(
        "time-travel-ha.toml",
        &scenario_text("time-travel-ha.toml"),
        &[],
        None,
    )
    .unwrap();
    let c = capture(&spec, None).expect("seed 1 travels");
    let p = dir.join("tt.capsule.jsonl");
    c.write(&p).unwrap();
    p
}

#[test]
fn a_capsule_replays_identically_after_a_round_trip_through_its_file() {
    let dir = temp_dir("round");
    let spec = Spec::load(
        "time-travel-ha.toml",
        &scenario_text("time-travel-ha.toml"),
        &[],
        None,
    )
    .unwrap();
    let c = capture(&spec, None).unwrap();
    let v = c.footer.violation.clone().unwrap();
    assert_eq!(v.name, "no-time-travel");
    assert_eq!(
        v.step as usize,
        c.len(),
        "the capsule ends at the violation"
    );
    let p = dir.join("c.jsonl");
    c.write(&p).unwrap();
    let read = Capsule::read(&p).unwrap();
    assert_eq!(read.steps.len(), c.len());
    assert_eq!(read.footer, c.footer);
    for (a, b) in read.steps.iter().zip(&c.lines) {
        assert_eq!(&a.text, b);
    }
    let r = replay(&read, None).unwrap();
    assert_eq!(r.trace_hash, c.footer.trace_hash);
    assert_eq!(r.violations, c.footer.violations);
    assert_eq!(r.violations, ["no-time-travel"]);
    // And again: a second replay of the same file is byte-identical.
    let mut t1 = Vec::new();
    let mut t2 = Vec::new();
    replay(&read, Some(&mut t1)).unwrap();
    replay(&Capsule::read(&p).unwrap(), Some(&mut t2)).unwrap();
    assert_eq!(t1, t2);
    assert_eq!(
        String::from_utf8(t1).unwrap().lines().count(),
        c.len() + 3,
        "two header lines, one line per step, one !! line"
    );
}

#[test]
fn replay_exits_1_and_prints_the_violation() {
    let dir = temp_dir("exit1");
    let p = time_travel_capsule(&dir);
    let out = watchsim(&["replay", &p.display().to_string()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("violated: no-time-travel"), "{text}");
}

#[test]
fn a_changed_step_is_a_divergence_naming_the_first_differing_step() {
    let dir = temp_dir("diverge");
    let p = time_travel_capsule(&dir);
    let text = std::fs::read_to_string(&p).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    // Step 40 is line 41: claim a different etcd revision.
    let l = &lines[40];
    assert!(l.contains("\"step\":40"), "{l}");
    let at = l.find("\"rev\":").unwrap() + 6;
    let mut changed = l.clone();
    changed.insert(at, '9');
    lines[40] = changed;
    let q = dir.join("tampered.jsonl");
    std::fs::write(&q, lines.join("\n") + "\n").unwrap();
    let out = watchsim(&["replay", &q.display().to_string()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("diverged at step 40"), "{err}");
    assert!(err.contains("tampered.jsonl:41"), "{err}");
}

#[test]
fn an_action_that_is_not_pending_is_a_divergence() {
    let dir = temp_dir("notpending");
    let p = time_travel_capsule(&dir);
    let text = std::fs::read_to_string(&p).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines.remove(5); // drop step 5: later keys stay, step numbers shift
    let q = dir.join("dropped.jsonl");
    std::fs::write(&q, lines.join("\n") + "\n").unwrap();
    let out = watchsim(&["replay", &q.display().to_string()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("diverged at step 5"), "{err}");
}

#[test]
fn another_format_version_is_refused_naming_both_versions() {
    let dir = temp_dir("version");
    let p = time_travel_capsule(&dir);
    let text = std::fs::read_to_string(&p).unwrap();
    let text = text.replacen("\"version\":1", "\"version\":2", 1);
    let q = dir.join("v2.jsonl");
    std::fs::write(&q, text).unwrap();
    let out = watchsim(&["replay", &q.display().to_string()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("version 2") && err.contains("version 1"),
        "{err}"
    );
}

#[test]
fn corrupt_capsules_are_refused_with_file_and_line() {
    let dir = temp_dir("corrupt");
    let p = time_travel_capsule(&dir);
    let text = std::fs::read_to_string(&p).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[2] = "{not json".into();
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let headless = dir.join("headless.jsonl");
    std::fs::write(
        &headless,
        text.lines().skip(1).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let empty = dir.join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    for (file, line) in [(&bad, 3), (&headless, 1), (&empty, 1)] {
        let out = watchsim(&["replay", &file.display().to_string()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(&format!("{}:{line}", file.display())), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = watchsim(&["replay", "/nonexistent/capsule.jsonl"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_trace_written_by_run_replays_with_exit_0() {
    let dir = temp_dir("runtrace");
    let t = dir.join("t.jsonl");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("sim-scenarios/cacher-basics.toml");
    let out = watchsim(&[
        "run",
        &scenario.display().to_string(),
        "--trace",
        &t.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let out = watchsim(&["replay", &t.display().to_string(), "--timeline"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("no violation"), "{text}");
    assert!(text.contains("a0/pods window"), "{text}");
}

/// Scripted broken models (as in tests/invariants.rs) whose capsules shrink and still show the
/// same invariant on replay.
#[test]
fn shrunk_capsules_of_broken_models_still_demonstrate_their_invariant() {
    let pods = "name = \"t\"\nduration = \"20s\"\n[[resources]]\nname = \"pods\"\ncount = 3\n";
    let step = |at: &str, body: &str| format!("[[steps]]\nat = \"{at}\"\n{body}\n");
    let watch = |at: &str, rv: &str| {
        step(
            at,
            &format!(
                "op = \"api.watch\"\nid = \"w\"\nresource = \"pods\"\nresource_version = \"{rv}\""
            ),
        )
    };
    let create = |at: &str, n: &str| {
        step(
            at,
            &format!("op = \"api.create\"\nresource = \"pods\"\nname = \"{n}\""),
        )
    };
    let cases = [
        (
            "watch-order",
            "cacher_reorder",
            [
                pods,
                &watch("1s", "4"),
                &create("2s", "a"),
                &create("3s", "b"),
                &create("4s", "c"),
            ]
            .concat(),
        ),
        (
            "watch-unique",
            "cacher_duplicate_after_snapshot",
            [
                pods,
                &create("1s", "a"),
                &create("1.5s", "b"),
                &watch("2s", "0"),
            ]
            .concat(),
        ),
        (
            "cache-window",
            "cacher_window_off_by_one",
            [
                pods,
                &create("0.5s", "z"),
                &watch("1s", "4"),
                &create("2s", "a"),
            ]
            .concat(),
        ),
    ];
    let dir = temp_dir("shrink");
    for (inv, mutant, text) in cases {
        let text = format!("{text}\n[mutants]\n{mutant} = true\n");
        let spec = Spec::load("t.toml", &text, &[], None).unwrap();
        let full = capture(&spec, None).unwrap_or_else(|| panic!("{inv}: no violation"));
        assert_eq!(full.footer.violation.as_ref().unwrap().name, inv);
        let small = shrink::shrink(&full, inv, 500);
        assert!(small.len() <= full.len(), "{inv}");
        let p = dir.join(format!("{inv}.jsonl"));
        small.write(&p).unwrap();
        let r = replay(&Capsule::read(&p).unwrap(), None).unwrap();
        assert!(
            r.violations.contains(&inv.to_string()),
            "{inv}: {:?}",
            r.violations
        );
    }
}
