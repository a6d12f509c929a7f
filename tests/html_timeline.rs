//! `watchsim replay CAPSULE --html FILE` and `watchsim run SCENARIO --html FILE` (issue 18): one
//! self-contained HTML page per run, with a lane per actor, the faults and the violation marked.
//!
//! The capsule is the one `watchsim check` writes for the bundled `time-travel-ha.toml` (seed 1
//! travels back in time: a restarted controller lists RV="0" from the lagging apiserver). The
//! page's structure is checked from its JSON blob and its text; then a real headless Chromium
//! (Debian's `chromium`, installed by `.ci/run`) loads it, runs its script (the lanes and the
//! violation marker exist only once the script ran; the page's `#selftest` presses the navigation
//! keys and buttons) and keeps a screenshot in `$CARGO_TARGET_TMPDIR/html_timeline/`. Without
//! Chromium the browser test is skipped loudly, and fails under `CI=true`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn watchsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_watchsim"))
        .args(args)
        .output()
        .expect("watchsim runs")
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("watchsim-html-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn scenario(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sim-scenarios")
        .join(name)
        .display()
        .to_string()
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `watchsim check` on the bundled time-travel scenario, seed 1: the shrunk capsule it writes.
fn time_travel_capsule(dir: &Path) -> PathBuf {
    let caps = dir.join("capsules");
    let out = watchsim(&[
        "check",
        &scenario("time-travel-ha.toml"),
        "--seeds",
        "1",
        "--jobs",
        "1",
        "--capsule-dir",
        &caps.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let p = caps.join("time-travel-ha-seed1.shrunk.capsule.jsonl");
    assert!(p.is_file(), "no shrunk capsule: {}", text(&out));
    p
}

/// The capsule footer's violation: (name, step).
fn footer_violation(capsule: &Path) -> (String, u64) {
    let body = std::fs::read_to_string(capsule).unwrap();
    let footer: Value = serde_json::from_str(body.lines().last().unwrap()).unwrap();
    let v = &footer["violation"];
    (
        v["name"].as_str().unwrap().to_string(),
        v["step"].as_u64().unwrap(),
    )
}

/// The page's JSON blob.
fn page_data(html: &str) -> Value {
    let open = r#"<script type="application/json" id="timeline-data">"#;
    let start = html.find(open).expect("the page has its data blob") + open.len();
    let len = html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..start + len]).expect("the blob is JSON")
}

fn lane_names(data: &Value) -> Vec<String> {
    data["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect()
}

/// Nothing in the page is fetched: no URL, no `src`/`href`, no CSS `url(`/`@import`, no script
/// networking.
fn assert_self_contained(html: &str) {
    for needle in [
        "http://",
        "https://",
        "src=",
        "href=",
        "url(",
        "@import",
        "fetch(",
        "XMLHttpRequest",
        "WebSocket",
        "<link",
        "<iframe",
    ] {
        assert!(!html.contains(needle), "the page contains {needle:?}");
    }
    assert_eq!(
        html.matches("</script>").count(),
        2,
        "exactly the data blob and the script"
    );
}

#[test]
fn replay_html_writes_a_self_contained_page_with_lanes_faults_and_the_violation() {
    let dir = temp_dir("replay");
    let capsule = time_travel_capsule(&dir);
    let (name, step) = footer_violation(&capsule);
    assert_eq!(name, "no-time-travel");
    let page = dir.join("tt.html");
    let c = capsule.display().to_string();
    let plain = watchsim(&["replay", &c]);
    let out = watchsim(&["replay", &c, "--html", &page.display().to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        out.stdout, plain.stdout,
        "--html prints the usual replay summary"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrote the HTML timeline"),
        "{}",
        text(&out)
    );

    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_self_contained(&html);
    // The lanes and the marker are drawn by the script (the browser test sees them).
    assert!(!html.contains(r#"class="lane""#) && !html.contains(r#"id="violation""#));
    assert!(
        html.contains("Violation: no-time-travel at step"),
        "the heading names it"
    );

    let data = page_data(&html);
    assert_eq!(data["scenario"], "time-travel-ha");
    assert_eq!(data["seed"], 1);
    let lanes = lane_names(&data);
    for lane in ["etcd", "apiserver-0", "apiserver-1", "client-0"] {
        assert!(
            lanes.contains(&lane.to_string()),
            "no {lane} lane: {lanes:?}"
        );
    }
    assert_eq!(
        lanes[..4],
        ["etcd", "apiserver-0", "apiserver-1", "client-0"]
    );
    let steps = data["steps"].as_array().unwrap();
    assert_eq!(
        steps.len() as u64,
        step,
        "the capsule ends at its violation"
    );
    let violations = data["violations"].as_array().unwrap();
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0]["name"], "no-time-travel");
    assert_eq!(violations[0]["step"], step);
    // The scenario's two scheduled faults (stall apiserver-1 at 30 s, restart the controller at
    // 1 m) are fault rows with an arrow to their target.
    let faults: Vec<&Value> = steps.iter().filter(|s| s["kind"] == "fault").collect();
    assert_eq!(faults.len(), 2, "{faults:?}");
    let lane_of = |name: &str| lanes.iter().position(|l| l == name).unwrap();
    assert_eq!(faults[0]["to"][0], lane_of("apiserver-1"));
    assert_eq!(faults[1]["to"][0], lane_of("client-0"));
    // The violating step: apiserver-1's LIST reply arriving at the client, an arrow.
    let last = steps.last().unwrap();
    assert_eq!(last["kind"], "message");
    assert_eq!(last["from"], lane_of("apiserver-1"));
    assert_eq!(last["to"][0], lane_of("client-0"));
    // Lane states: apiserver windows and the client's RV are recorded as they change.
    let states: Vec<String> = steps
        .iter()
        .flat_map(|s| s["state"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p[1].as_str().map(String::from))
        .collect();
    assert!(
        states.iter().any(|s| s.starts_with("window ")),
        "{states:?}"
    );
    assert!(states.iter().any(|s| s.starts_with("rv ")), "{states:?}");
}

#[test]
fn the_same_capsule_gives_the_same_page_byte_for_byte_and_the_text_timeline_is_unchanged() {
    let dir = temp_dir("determinism");
    let capsule = time_travel_capsule(&dir).display().to_string();
    let (a, b) = (dir.join("a.html"), dir.join("b.html"));
    let timeline = watchsim(&["replay", &capsule, "--timeline"]);
    let both = watchsim(&[
        "replay",
        &capsule,
        "--timeline",
        "--html",
        &a.display().to_string(),
    ]);
    watchsim(&["replay", &capsule, "--html", &b.display().to_string()]);
    assert_eq!(
        both.stdout, timeline.stdout,
        "--timeline is the same with --html"
    );
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[test]
fn run_html_draws_a_short_scripted_run_and_keeps_stdout_the_report() {
    let dir = temp_dir("run");
    let page = dir.join("cacher.html");
    let out = watchsim(&[
        "run",
        &scenario("cacher-basics.toml"),
        "--json",
        "--html",
        &page.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON report");
    let html = std::fs::read_to_string(&page).unwrap();
    assert_self_contained(&html);
    let data = page_data(&html);
    assert_eq!(
        data["steps"].as_array().unwrap().len() as u64,
        report["steps"].as_u64().unwrap(),
        "the page draws every step of the run"
    );
    assert_eq!(lane_names(&data), ["etcd", "apiserver-0", "script"]);
    assert!(data["violations"].as_array().unwrap().is_empty());
    assert!(html.contains("No violation in these steps."));
    let kinds: Vec<&str> = data["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    for k in ["message", "timer", "fault", "reset"] {
        assert!(kinds.contains(&k), "no {k} step in the scripted story");
    }
}

#[test]
fn run_html_refuses_a_run_longer_than_a_page_before_running_it() {
    let dir = temp_dir("long-run");
    let page = dir.join("long.html");
    // steady-small passes 20,000 steps after a few virtual minutes.
    let out = watchsim(&[
        "run",
        &scenario("steady-small.toml"),
        "--html",
        &page.display().to_string(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(err.contains("--html draws at most 20000 steps"), "{err}");
    assert!(
        err.contains("--duration"),
        "the message says how to shorten it: {err}"
    );
    assert!(out.stdout.is_empty(), "no run, no summary");
    assert!(!page.exists(), "no page, not a cut one");
}

#[test]
fn replay_html_refuses_a_trace_longer_than_a_page() {
    let dir = temp_dir("long-trace");
    let trace = dir.join("long.jsonl");
    let page = dir.join("long.html");
    let out = watchsim(&[
        "run",
        &scenario("steady-small.toml"),
        "--duration",
        "10m",
        "--trace",
        &trace.display().to_string(),
    ]);
    assert!(trace.is_file(), "{}", text(&out));
    let out = watchsim(&[
        "replay",
        &trace.display().to_string(),
        "--html",
        &page.display().to_string(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(err.contains("--html draws at most 20000 steps"), "{err}");
    assert!(!page.exists());
}

// ------------------------------------------------------------------------------------------------
// The page in a real browser.

fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// Writes straight to stderr, past libtest's capture, so a skip is seen in a plain `cargo test`.
fn uncaptured(msg: &str) {
    let _ = std::io::stderr().lock().write_all(msg.as_bytes());
}

/// Debian's `chromium` (or `chromium-browser`) on `PATH`; `None` after a loud SKIPPING line, and
/// a failure under `CI=true` (where `.ci/run` installs it).
fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .flat_map(|d| [d.join("chromium"), d.join("chromium-browser")])
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            !in_ci(),
            "{test}: chromium not installed but CI=true (.ci/run installs it: apt-get install chromium)"
        );
        uncaptured(&format!(
            "\n{bar}\nSKIPPING {test}: chromium not installed (apt-get install chromium)\n{bar}\n",
            bar = "#".repeat(80)
        ));
    }
    found
}

/// Runs headless Chromium on `url` with `args`, killed after a minute; its stdout.
fn headless(chromium: &Path, profile: &Path, args: &[&str], url: &str) -> String {
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--window-size=1400,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium {args:?} failed: {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

#[test]
fn a_headless_chromium_draws_the_lanes_and_the_violation_and_keeps_a_screenshot() {
    let test = "a_headless_chromium_draws_the_lanes_and_the_violation_and_keeps_a_screenshot";
    let Some(chromium) = chromium_or_skip(test) else {
        return;
    };
    let dir = temp_dir("browser");
    let capsule = time_travel_capsule(&dir);
    let (_, step) = footer_violation(&capsule);
    let page = dir.join("timeline.html");
    let out = watchsim(&[
        "replay",
        &capsule.display().to_string(),
        "--html",
        &page.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let lanes = lane_names(&page_data(&std::fs::read_to_string(&page).unwrap()));
    let url = format!("file://{}", page.display());

    // The DOM after the script ran: one lane element per actor, the violation marker, the
    // cursor on the violating step (the page opens there).
    let dom = headless(&chromium, &dir.join("profile-dom"), &["--dump-dom"], &url);
    assert_eq!(
        dom.matches(r#"class="lane""#).count() + dom.matches(r#"class="lane acting""#).count(),
        lanes.len(),
        "{dom}"
    );
    for lane in &lanes {
        assert!(
            dom.contains(&format!(r#"data-lane="{lane}""#)),
            "no {lane} lane"
        );
    }
    assert!(dom.contains(r#"id="violation""#), "no violation marker");
    assert!(
        dom.contains(&format!(r#"data-cursor="{step}""#)),
        "cursor not at the violation"
    );
    assert!(
        dom.contains("violated: no-time-travel"),
        "details show the violation"
    );
    assert!(dom.contains(r#"class="arrow "#), "no arrows drawn");
    assert!(
        dom.contains(r#"class="fault-tick""#),
        "no fault marks on the overview"
    );

    // Navigation and zoom, pressed by the page's self-test.
    let dom = headless(
        &chromium,
        &dir.join("profile-selftest"),
        &["--dump-dom"],
        &format!("{url}#selftest"),
    );
    let open = r#"<pre id="selftest-result">"#;
    let start = dom.find(open).expect("the self-test ran") + open.len();
    let result: Value =
        serde_json::from_str(&dom[start..start + dom[start..].find("</pre>").unwrap()])
            .expect("the self-test wrote JSON");
    assert_eq!(result["lanes"], lanes.len());
    assert_eq!(result["start"], step, "{result}");
    assert_eq!(result["home"], 1, "{result}");
    assert_eq!(result["next"], 2, "{result}");
    assert_eq!(result["prev"], 1, "{result}");
    assert_eq!(result["nextButton"], 3, "{result}");
    assert_eq!(result["end"], result["steps"], "{result}");
    assert_eq!(result["violation"], step, "{result}");
    assert_eq!(result["zoomedIn"], true, "{result}");
    assert_eq!(result["zoomedOut"], true, "{result}");
    assert_eq!(result["cursorRows"], 1, "{result}");
    assert!(result["arrows"].as_u64().unwrap() > 0, "{result}");

    // A screenshot, kept.
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html_timeline");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join("timeline.png");
    let _ = std::fs::remove_file(&png);
    headless(
        &chromium,
        &dir.join("profile-shot"),
        &[&format!("--screenshot={}", png.display())],
        &url,
    );
    let bytes = std::fs::read(&png).expect("the screenshot is written");
    assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
    assert!(bytes.len() > 20_000, "a screenshot with something drawn");
    std::fs::copy(&page, shots.join("timeline.html")).unwrap();
    uncaptured(&format!(
        "{test}: screenshot {} (page {})\n",
        png.display(),
        shots.join("timeline.html").display()
    ));
}
