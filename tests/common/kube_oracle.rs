//! The Kubernetes oracle (`tests/oracle/kube-<minor>/`, Go): the real k8s.io/apiserver etcd3
//! store and Cacher over an embedded etcd, executing watchsim's scripted `api.*` steps.
//!
//! - [`oracle_or_skip`] finds the oracle binary (built by `.ci/run` into
//!   `target/oracle/kube-<minor>/oracle`), or builds it with the machine's Go. With `CI=true` a
//!   missing Go or a failed build is a test failure; elsewhere the test is skipped loudly.
//!   [`etcd_3_7_or_skip`] does the same for the etcd server the oracle embeds (3.7), built as a
//!   stand-alone binary for `tests/etcd_conformance.rs`, and [`reflector_oracle_or_skip`] for the
//!   reflector oracle (`tests/oracle/kube-<minor>/reflector`: client-go's `Reflector` against the
//!   same cacher, for `tests/reflector_conformance.rs`).
//! - [`oracle_case`] turns a scenario's text (its `[[resources]]`, `duration` and `[[steps]]`)
//!   into the oracle's input case, so both sides are fed from the same scenario.
//! - [`run_oracle`] runs the oracle on many cases at once (one embedded etcd per case) and returns
//!   each case's `{script, watches}` in the shapes of `watchsim run --json`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Map, Value, json};

use super::real_etcd::uncaptured;

/// Environment variable naming a directory that holds `kube-<minor>/oracle` binaries.
pub const ORACLE_DIR_ENV: &str = "WATCHSIM_ORACLE_DIR";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// Where the oracle for `minor` (e.g. "1.37") is, built or not: `$WATCHSIM_ORACLE_DIR/kube-<minor>/`
/// when that is set (prebuilt oracles), else `target/oracle/kube-<minor>/`.
pub fn oracle_path(minor: &str) -> PathBuf {
    oracle_dir().join(format!("kube-{minor}")).join("oracle")
}

/// `$WATCHSIM_ORACLE_DIR`, or `target/oracle`.
fn oracle_dir() -> PathBuf {
    std::env::var_os(ORACLE_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target").join("oracle"))
}

/// Builds Go package `package` (relative to the module of `tests/oracle/kube-<minor>`) into
/// `out` with `go build` (module downloads from the Go module proxy, compiled packages from Go's
/// build cache). Returns the error text on failure.
fn go_build(minor: &str, package: &str, out: &Path) -> Result<PathBuf, String> {
    let src = repo_root()
        .join("tests")
        .join("oracle")
        .join(format!("kube-{minor}"));
    let status = Command::new("go")
        .arg("build")
        .arg("-o")
        .arg(out)
        .arg(package)
        .current_dir(&src)
        .status()
        .map_err(|e| format!("cannot run `go build` in {}: {e}", src.display()))?;
    if !status.success() {
        return Err(format!(
            "`go build {package}` in {} failed: {status}",
            src.display()
        ));
    }
    Ok(out.to_path_buf())
}

/// The oracle binary of `minor`, or `None` after a loud SKIPPED line. Under `CI=true` a missing
/// oracle that cannot be built panics (the differential tests must run in CI).
pub fn oracle_or_skip(minor: &str, test: &str) -> Option<PathBuf> {
    let what = format!("Kubernetes {minor} oracle");
    go_binary_or_skip(minor, ".", &oracle_path(minor), &what, test)
}

/// The etcd 3.7 server that k8s.io/apiserver v0.37 pins, as a stand-alone binary with etcd's
/// flags (`tests/oracle/kube-1.37/etcd`), built like the oracle; `None` after a loud SKIPPED.
pub fn etcd_3_7_or_skip(test: &str) -> Option<PathBuf> {
    let path = oracle_dir().join("etcd-3.7").join("etcd");
    go_binary_or_skip("1.37", "./etcd", &path, "etcd 3.7", test)
}

/// The reflector oracle of `minor` (`tests/oracle/kube-<minor>/reflector`, built into
/// `target/oracle/kube-<minor>/reflector`), built like the oracle; `None` after a loud SKIPPED.
pub fn reflector_oracle_or_skip(minor: &str, test: &str) -> Option<PathBuf> {
    let path = oracle_dir().join(format!("kube-{minor}")).join("reflector");
    let what = format!("Kubernetes {minor} reflector oracle");
    go_binary_or_skip(minor, "./reflector", &path, &what, test)
}

fn go_binary_or_skip(
    minor: &str,
    package: &str,
    path: &Path,
    what: &str,
    test: &str,
) -> Option<PathBuf> {
    if std::env::var_os(ORACLE_DIR_ENV).is_some() && path.is_file() {
        return Some(path.to_path_buf()); // prebuilt, used as it is
    }
    // `go build` is cheap when nothing changed (Go's build cache), and keeps the binary in step
    // with its source.
    match go_build(minor, package, path) {
        Ok(p) => Some(p),
        Err(e) if path.is_file() => {
            uncaptured(&format!(
                "WARNING: {test}: rebuilding the {what} failed ({e}); using the binary already \
                 in {}",
                path.display()
            ));
            Some(path.to_path_buf())
        }
        Err(e) if in_ci() => panic!(
            "{test}: the {what} is missing and could not be built, but CI=true: {e} (see \
             .ci/run; Go 1.26+ and the Go module proxy are needed)"
        ),
        Err(e) => {
            uncaptured(&format!(
                "\n{bar}\nSKIPPED: the {what} could not be built ({e}) -- {test}\n{bar}\n",
                bar = "#".repeat(80)
            ));
            None
        }
    }
}

fn duration_ms(text: &str, what: &str) -> Result<u64, String> {
    let d = watchsim::scenario::parse_duration(text).map_err(|e| format!("{what}: {e}"))?;
    Ok(d.as_ns() / 1_000_000)
}

/// The oracle's input case for a scenario text: resources (name, count), duration, steps and
/// the watch cache's mode (`watch_cache`: `apiserver.watch_cache.mode`, "off" for no cache).
/// Each step keeps its fields; `at` is echoed as written, `at_ms` and `timeout_ms` are added.
pub fn oracle_case(name: &str, scenario_text: &str) -> Result<Value, String> {
    let doc: toml::Table = scenario_text
        .parse()
        .map_err(|e| format!("{name}: scenario TOML: {e}"))?;
    let mut resources = Vec::new();
    for r in doc
        .get("resources")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default()
    {
        let rname = r.get("name").and_then(|v| v.as_str()).unwrap_or("pods");
        // watchsim's default `count` is 0 for a resource that does not say.
        let count = r.get("count").and_then(|v| v.as_integer()).unwrap_or(0);
        resources.push(json!({"name": rname, "count": count}));
    }
    let duration = doc.get("duration").and_then(|v| v.as_str()).unwrap_or("1h");
    let mut steps = Vec::new();
    for s in doc
        .get("steps")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default()
    {
        let table = s.as_table().ok_or("a step is not a table")?;
        let mut out = Map::new();
        for (k, v) in table {
            let jv = serde_json::to_value(v).map_err(|e| e.to_string())?;
            out.insert(k.clone(), jv);
        }
        let at = table
            .get("at")
            .and_then(|v| v.as_str())
            .ok_or("step without at")?;
        out.insert("at_ms".into(), json!(duration_ms(at, "at")?));
        if let Some(t) = table.get("timeout").and_then(|v| v.as_str()) {
            out.insert("timeout_ms".into(), json!(duration_ms(t, "timeout")?));
        }
        steps.push(Value::Object(out));
    }
    // `[apiserver.watch_cache] mode = "off"`: the oracle builds no Cacher (the registry uses the
    // etcd3 store directly).
    let watch_cache = doc
        .get("apiserver")
        .and_then(|a| a.get("watch_cache"))
        .and_then(|w| w.get("mode"))
        .and_then(|m| m.as_str())
        .unwrap_or("dynamic");
    Ok(json!({
        "name": name,
        "resources": resources,
        "duration_ms": duration_ms(duration, "duration")?,
        "steps": steps,
        "watch_cache": watch_cache,
    }))
}

/// Runs the oracle on `cases`; returns one `{name, script, watches}` object per case, in order.
pub fn run_oracle(bin: &Path, cases: &[Value]) -> Result<Vec<Value>, String> {
    let input = json!({ "cases": cases }).to_string();
    let mut child = Command::new(bin)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    {
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| format!("writing to the oracle: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for the oracle: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "oracle exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut results = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("oracle output: {e}"))?;
        if let Some(err) = v.get("error").and_then(|e| e.as_str()) {
            return Err(format!("oracle case {}: {err}", v["name"]));
        }
        results.push(v);
    }
    if results.len() != cases.len() {
        return Err(format!(
            "oracle answered {} of {} cases",
            results.len(),
            cases.len()
        ));
    }
    Ok(results)
}

/// One scenario text on the oracle of `minor` (e.g. "1.31"): its `{name, script, watches}`, the
/// `script` and `watches` in the shapes of `watchsim run --json` (so a test reads both sides
/// alike), or `None` after a loud SKIPPED line when the oracle is missing and cannot be built (a
/// failure under `CI=true`, see [`oracle_or_skip`]). For hand-written cases
/// (`tests/apiserver_rules.rs`). The oracle runs the steps one after another on its fake clock
/// (a step that waits, such as a LIST at an RV the cache has not reached, holds back the steps
/// after it), reads the resources, the duration and the watch cache's mode, and ignores every
/// other setting (ring sizes, etcd's progress-notify interval, the rules profile: the oracle is
/// the profile).
pub fn oracle_run(minor: &str, test: &str, scenario_text: &str) -> Option<Value> {
    let bin = oracle_or_skip(minor, test)?;
    let case = oracle_case(test, scenario_text).unwrap_or_else(|e| panic!("{test}: {e}"));
    let mut out = run_oracle(&bin, &[case]).unwrap_or_else(|e| panic!("{test}: {e}"));
    Some(out.remove(0))
}
