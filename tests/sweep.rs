//! `watchsim sweep` as a user runs it (SPEC §1): the grid, `results.csv`, `sweep.svg`, the
//! table, exit codes and determinism across `--jobs`; plus the library pieces (range shorthand,
//! grid order, recommendation) on synthetic data. Runs use `etcd-churn.toml` cut to 20 s of
//! virtual time, so each takes milliseconds.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use watchsim::sweep::aggregate::{FIGURES, PointResult, Stats, SweepResult};
use watchsim::sweep::grid::{Grid, expand_range, parse_vary};
use watchsim::sweep::{Recommendation, recommend};

fn watchsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_watchsim"))
        .args(args)
        .output()
        .expect("watchsim runs")
}

fn churn() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sim-scenarios")
        .join("etcd-churn.toml")
        .display()
        .to_string()
}

fn out_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("watchsim-sweep-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Runs `watchsim sweep etcd-churn.toml --duration 20s --out DIR ARGS...`, expects exit 0 and
/// returns (stdout, results.csv).
fn sweep_ok(tag: &str, args: &[&str]) -> (String, String) {
    let dir = out_dir(tag);
    let dir_s = dir.display().to_string();
    let scenario = churn();
    let mut all = vec![
        "sweep",
        scenario.as_str(),
        "--duration",
        "20s",
        "--out",
        dir_s.as_str(),
    ];
    all.extend_from_slice(args);
    let out = watchsim(&all);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let csv = std::fs::read_to_string(dir.join("results.csv")).expect("results.csv written");
    (String::from_utf8_lossy(&out.stdout).to_string(), csv)
}

/// The CSV's rows as cells (no field in these tests needs quoting).
fn rows(csv: &str) -> Vec<Vec<String>> {
    csv.lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

fn column(csv: &str, name: &str) -> Vec<f64> {
    let rows = rows(csv);
    let i = rows[0]
        .iter()
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("no column {name} in {:?}", rows[0]));
    rows[1..]
        .iter()
        .map(|r| r[i].parse().expect("a number"))
        .collect()
}

#[test]
fn range_shorthand() {
    let v = expand_range("100..102400*2")
        .expect("a range")
        .expect("valid");
    assert_eq!(v.len(), 11);
    assert_eq!((v[0].as_str(), v[10].as_str()), ("100", "102400"));
    assert_eq!(
        expand_range("0..60+15").expect("a range").expect("valid"),
        ["0", "15", "30", "45", "60"]
    );
    assert_eq!(
        expand_range("0.5..2*2").expect("a range").expect("valid"),
        ["0.5", "1.0", "2.0"]
    );
    assert!(expand_range("5s").is_none());
    assert!(matches!(expand_range("10..1*2"), Some(Err(_))));
    let axis = parse_vary("apiserver.watch_cache.upper=100..400*2,1000").expect("parses");
    let texts: Vec<&str> = axis.values.iter().map(|v| v.text.as_str()).collect();
    assert_eq!(texts, ["100", "200", "400", "1000"]);
}

#[test]
fn grid_order_is_first_key_slowest() {
    let grid = Grid::new(vec![
        parse_vary("a=1,2").expect("parses"),
        parse_vary("b=x,y").expect("parses"),
    ])
    .expect("grid");
    let overrides: Vec<Vec<String>> = grid.points().iter().map(|p| grid.overrides(p)).collect();
    assert_eq!(
        overrides,
        [
            ["a=1", "b=x"],
            ["a=1", "b=y"],
            ["a=2", "b=x"],
            ["a=2", "b=y"]
        ]
    );
    // The same order in the CSV.
    let (_, csv) = sweep_ok(
        "order",
        &[
            "--seeds",
            "1",
            "--vary",
            "workload.0.rate=5.0,50.0",
            "--vary",
            "apiserver.watch_cache.upper=100..400*2",
        ],
    );
    let keys: Vec<(String, String)> = rows(&csv)[1..]
        .iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    let expect: Vec<(String, String)> = [
        ("5.0", "100"),
        ("5.0", "200"),
        ("5.0", "400"),
        ("50.0", "100"),
        ("50.0", "200"),
        ("50.0", "400"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(keys, expect);
}

#[test]
fn csv_header_and_one_row_per_point() {
    let (stdout, csv) = sweep_ok(
        "header",
        &[
            "--seeds",
            "2",
            "--vary",
            "apiserver.watch_cache.upper=100,1000,10000",
        ],
    );
    let rows = rows(&csv);
    let mut header = vec!["apiserver.watch_cache.upper".to_string()];
    for f in FIGURES {
        header.push(format!("{}_mean", f.name));
        header.push(format!("{}_p95", f.name));
    }
    header.push("violated_seeds".to_string());
    for f in FIGURES {
        header.push(format!("{}_min", f.name));
        header.push(format!("{}_p5", f.name));
        header.push(format!("{}_max", f.name));
    }
    assert_eq!(rows[0], header);
    for name in [
        "relists_per_client_hour_mean",
        "p_410_on_reconnect_p95",
        "lists_from_etcd_mean",
        "etcd_bytes_mean",
        "cache_bytes_mean",
        "peak_concurrent_lists_mean",
        "max_staleness_seconds_mean",
    ] {
        assert!(rows[0].iter().any(|c| c == name), "{name} missing");
    }
    assert_eq!(rows.len(), 4, "{csv}");
    assert!(rows[1..].iter().all(|r| r.len() == header.len()));
    // The table: a header line and one line per point, each "ok".
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("apiserver.watch_cache.upper"))
        .take(4)
        .collect();
    assert_eq!(table.len(), 4, "{stdout}");
    assert!(table[1..].iter().all(|l| l.ends_with("ok")), "{stdout}");
    assert!(stdout.contains("no [bounds]"), "{stdout}");
}

#[test]
fn jobs_do_not_change_the_output() {
    let args = |jobs: &'static str| {
        [
            "--seeds",
            "3",
            "--jobs",
            jobs,
            "--vary",
            "workload.0.rate=5.0,50.0",
            "--vary",
            "apiserver.watch_cache.upper=100,1600",
        ]
    };
    let (out1, csv1) = sweep_ok("jobs1", &args("1"));
    let (out2, csv2) = sweep_ok("jobs2", &args("2"));
    assert_eq!(csv1, csv2);
    let table = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with("wrote "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(table(&out1), table(&out2));
}

#[test]
fn a_varied_key_moves_its_figures() {
    let (_, csv) = sweep_ok(
        "rate",
        &["--seeds", "2", "--vary", "workload.0.rate=5.0,50.0"],
    );
    let writes = column(&csv, "etcd_writes_mean");
    let events = column(&csv, "watch_events_mean");
    assert!(writes[1] > 5.0 * writes[0], "{writes:?}");
    assert!(events[1] > events[0], "{events:?}");
    // The dynamic watch cache grows with the rate.
    let cache = column(&csv, "cache_bytes_mean");
    assert!(cache[1] > cache[0], "{cache:?}");
}

#[test]
fn global_set_applies_to_every_point_and_bounds_give_a_recommendation() {
    let (stdout, _) = sweep_ok(
        "bounds",
        &[
            "--seeds",
            "1",
            "--set",
            "bounds.relists_per_client_hour=1.0",
            "--vary",
            "apiserver.watch_cache.upper=400,100",
        ],
    );
    assert!(
        stdout.contains("recommendation: apiserver.watch_cache.upper = 100"),
        "{stdout}"
    );
}

#[test]
fn bad_input_exits_2_before_running() {
    let dir = out_dir("bad");
    let dir_s = dir.display().to_string();
    let scenario = churn();
    for (args, needle) in [
        (vec!["--vary", "apiserver.no_such_key=1,2"], "no_such_key"),
        (vec!["--vary", "apiserver.count=1,lots"], "apiserver.count"),
        (vec!["--vary", "workload.0.rate=1..10"], "range"),
        (vec!["--vary", "noequals"], "KEY=V1"),
        (vec!["--vary", "seed=1", "--vary", "seed=2"], "twice"),
        (vec!["--vary", "seed=1", "--seeds", "0"], "--seeds"),
        (vec!["--vary", "seed=1", "--jobs", "0"], "--jobs"),
        (vec!["--vary", "seed=1", "--duration", "soon"], "--duration"),
        (vec!["--vary", "seed=1", "--set", "nope=1"], "nope"),
    ] {
        let mut all = vec![
            "sweep",
            scenario.as_str(),
            "--duration",
            "20s",
            "--out",
            dir_s.as_str(),
        ];
        all.extend(args.iter().copied());
        let out = watchsim(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(!dir.exists(), "nothing is written on bad input");
    let out = watchsim(&["sweep", scenario.as_str()]);
    assert_eq!(out.status.code(), Some(2), "--vary is required");
    let out = watchsim(&["sweep", "/no/such/file.toml", "--vary", "seed=1"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn svg_is_written() {
    let dir = out_dir("svg");
    let dir_s = dir.display().to_string();
    let scenario = churn();
    for vary in [
        "apiserver.watch_cache.upper=100..102400*4",
        "apiserver.watch_cache.mode=fixed,dynamic,off",
    ] {
        let out = watchsim(&[
            "sweep",
            scenario.as_str(),
            "--duration",
            "20s",
            "--seeds",
            "1",
            "--out",
            dir_s.as_str(),
            "--vary",
            vary,
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let svg = std::fs::read_to_string(dir.join("sweep.svg")).expect("sweep.svg written");
        assert!(
            svg.starts_with("<svg") || svg.starts_with("<?xml"),
            "{svg:.80}"
        );
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("relists per client-hour"));
        assert!(svg.contains("peak concurrent LISTs"));
    }
    let svg = std::fs::read_to_string(dir.join("sweep.svg")).expect("sweep.svg written");
    assert!(
        svg.contains(">\ndynamic\n<") || svg.contains(">dynamic<"),
        "categorical ticks"
    );
}

fn synthetic(axes: &[&str], held: &[bool]) -> SweepResult {
    let axes: Vec<_> = axes.iter().map(|a| parse_vary(a).expect("axis")).collect();
    let grid = Grid::new(axes.clone()).expect("grid");
    let points = grid
        .points()
        .into_iter()
        .zip(held)
        .map(|(point, &ok)| PointResult {
            point,
            figures: vec![Stats::of(1.0, 2.0); FIGURES.len()],
            violated_seeds: if ok { vec![] } else { vec![3] },
            violations: if ok {
                vec![]
            } else {
                vec!["bound:relists_per_client_hour".into()]
            },
            has_bounds: true,
        })
        .collect();
    SweepResult {
        scenario: "synthetic".into(),
        axes,
        seeds: vec![1, 2, 3],
        points,
    }
}

#[test]
fn recommendation_on_synthetic_results() {
    // upper: 100 fails for one policy, 1000 holds for both, 10000 holds.
    let r = synthetic(
        &["apiserver.watch_cache.upper=10000,100,1000", "p=a,b"],
        &[true, true, true, false, true, true],
    );
    assert!(!r.held());
    assert_eq!(
        recommend(&r),
        Recommendation::Smallest {
            key: "apiserver.watch_cache.upper".into(),
            value: "1000".into(),
            failing_above: vec![],
        }
    );
    let table = watchsim::sweep::table::render(&r);
    assert!(
        table.contains("VIOLATED (1/3 seeds: bound:relists_per_client_hour)"),
        "{table}"
    );
    let csv = watchsim::sweep::csv::render(&r);
    assert_eq!(csv.lines().count(), 7);
    assert_eq!(
        column(&csv, "violated_seeds"),
        [0.0, 0.0, 0.0, 1.0, 0.0, 0.0],
        "{csv}"
    );
    // Non-numeric first key: grid order.
    let r = synthetic(&["mode=off,fixed,dynamic"], &[false, true, true]);
    assert!(recommend(&r).to_string().contains("mode = fixed"));
    // Nothing holds.
    let r = synthetic(&["k=1,2"], &[false, false]);
    assert_eq!(recommend(&r), Recommendation::NoneHeld { key: "k".into() });
}

#[test]
fn a_violated_bound_exits_1_and_still_writes_the_outputs() {
    // steady-small has [bounds]; a staleness bound of 1ns cannot hold, 1h does.
    let dir = out_dir("violated");
    let dir_s = dir.display().to_string();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sim-scenarios")
        .join("steady-small.toml")
        .display()
        .to_string();
    let out = watchsim(&[
        "sweep",
        scenario.as_str(),
        "--duration",
        "1m",
        "--seeds",
        "2",
        "--out",
        dir_s.as_str(),
        "--vary",
        "bounds.max_staleness=1h,1ns",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("bound:max_staleness"), "{stderr}");
    assert!(
        stdout.contains("VIOLATED (2/2 seeds: bound:max_staleness)"),
        "{stdout}"
    );
    // Durations are ordered by value: 1ns < 1h, and 1h is the smallest that held.
    assert!(
        stdout.contains("recommendation: bounds.max_staleness = 1h"),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(dir.join("results.csv")).expect("results.csv written");
    assert_eq!(column(&csv, "violated_seeds"), [0.0, 2.0]);
    assert!(dir.join("sweep.svg").exists());
}

/// A 200-node cluster with two apiservers, leases, pod churn, 30 s watch disconnects and one
/// apiserver restart, for three virtual minutes: enough for the watch cache's size to change
/// some decisions and not others.
const SHARED: &str = "name = \"shared\"\nseed = 1\nduration = \"3m\"\n\
    [apiserver]\ncount = 2\n\
    [[resources]]\nname = \"pods\"\ncount = 2000\nobject_bytes = 2000\n\
    [[resources]]\nname = \"leases\"\ncount = 200\nobject_bytes = 300\n\
    [[clients]]\nname = \"kubelet\"\ncount = 200\nresource = \"pods\"\nscope = \"per-node\"\nstore = \"digest\"\n\
    [[clients]]\nname = \"controller\"\ncount = 2\nresource = \"pods\"\nscope = \"cluster\"\nstore = \"digest\"\n\
    [[workload]]\nresource = \"pods\"\nkind = \"churn\"\nrate = 20.0\n\
    [[workload]]\nresource = \"leases\"\nkind = \"update\"\nrate = 20.0\n\
    [faults]\nwatch_disconnect_rate = 20.0\ndisconnect_duration = \"30s\"\n\
    [[faults.at]]\nat = \"90s\"\nkind = \"restart_apiserver\"\nserver = 1\n";

fn shared_plan(set: &[&str], vary: &str) -> watchsim::sweep::Plan {
    let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
    let grid = Grid::new(vec![parse_vary(vary).expect("axis")]).expect("grid");
    watchsim::sweep::plan("shared.toml", SHARED, &set, grid, 3, None).expect("plan")
}

#[test]
fn points_that_differ_only_in_cache_size_share_runs_with_the_same_results() {
    use watchsim::sweep::{execute_with, share};
    for (set, vary) in [
        (
            vec![],
            "apiserver.watch_cache.fresh=5s,10s,20s,75s,100s,150s",
        ),
        (
            vec!["apiserver.watch_cache.mode=\"fixed\""],
            "apiserver.watch_cache.capacity=20,100,400,3000,6000",
        ),
    ] {
        let plan = shared_plan(&set, vary);
        assert!(share::shareable(&plan), "{vary}");
        let alone = execute_with(&plan, Some(2), false, false).expect("runs");
        let shared = execute_with(&plan, Some(2), false, true).expect("runs");
        assert_eq!(shared, alone, "{vary}");
        // Sharing did share: fewer runs than points for some seed, and some points differ.
        let runs: usize = plan
            .seeds
            .iter()
            .map(|&seed| share::run_seed(&plan, seed, &|| ()).expect("runs").1)
            .sum();
        let points = plan.points.len() * plan.seeds.len();
        assert!(
            runs < points,
            "{vary}: {runs} runs for {points} point-seeds"
        );
        let relists: Vec<f64> = alone.points.iter().map(|p| p.figures[0].mean).collect();
        assert!(
            relists.iter().any(|r| *r != relists[0]),
            "{vary}: the cache size changes something: {relists:?}"
        );
    }
    // A grid that varies anything else is not shared.
    let plan = shared_plan(&[], "faults.disconnect_duration=\"10s\",\"20s\"");
    assert!(!share::shareable(&plan));
}
