//! `watchsim run`'s progress line (issue 18): drawn on stderr only when stderr is a terminal
//! (checked under a pseudo-terminal from util-linux `script`), nothing otherwise, and the report
//! and trace are the same either way.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_watchsim");

fn scenario() -> String {
    format!(
        "{}/sim-scenarios/steady-small.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn trace_hash(json: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(json).expect("one JSON report");
    v["trace_hash"].as_str().unwrap().to_string()
}

#[test]
fn without_a_terminal_stderr_stays_empty_and_the_report_is_unchanged() {
    let out = Command::new(BIN)
        .args(["run", &scenario(), "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let loaded = watchsim::scenario::load_file(std::path::Path::new(&scenario()), &[]).unwrap();
    let library = watchsim::sim::run(&loaded, &Default::default()).unwrap();
    assert_eq!(trace_hash(&out.stdout), library.trace_hash);
}

#[test]
fn on_a_terminal_stderr_shows_virtual_time_rate_and_eta() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED: util-linux `script` (a pseudo-terminal) is not installed");
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "`script` missing under CI"
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("watchsim-progress-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    // stdout goes to a file, so the terminal shows stderr alone.
    let cmd = format!("'{BIN}' run '{}' --json > '{}'", scenario(), json.display());
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let terminal = String::from_utf8_lossy(&out.stdout);
    for part in ["virtual ", "/ 1800s", "steps/s", "eta "] {
        assert!(terminal.contains(part), "no {part:?} in {terminal:?}");
    }
    let report = std::fs::read(&json).unwrap();
    let plain = Command::new(BIN)
        .args(["run", &scenario(), "--json"])
        .output()
        .unwrap();
    assert_eq!(trace_hash(&report), trace_hash(&plain.stdout));
    let _ = std::fs::remove_dir_all(&dir);
}
