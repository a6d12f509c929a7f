//! Every bundled scenario runs and shows what `sim-scenarios/README.md` says it shows (the large
//! ones for a shortened virtual duration).

use serde_json::Value;
use watchsim::scenario::load_file;
use watchsim::sim::{RunOptions, run};

fn report(name: &str, overrides: &[&str], duration: Option<&str>) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sim-scenarios")
        .join(name);
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let loaded = load_file(&path, &overrides).expect("bundled scenario loads");
    let duration = duration.map(|d| watchsim::scenario::parse_duration(d).expect("duration"));
    let r = run(
        &loaded,
        &RunOptions {
            duration,
            ..Default::default()
        },
    )
    .expect("runs");
    serde_json::to_value(r).unwrap()
}

#[test]
fn every_bundled_scenario_loads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sim-scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            load_file(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 9, "{n} scenarios");
}

#[test]
fn steady_small_converges_without_relists() {
    let r = report("steady-small.toml", &[], None);
    let c = &r["clients"];
    assert_eq!(c["count"], 102);
    assert_eq!(c["relists"], 0);
    assert_eq!(c["converged"], true);
    assert!(
        r["bounds"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["held"] == true)
    );
    assert!(
        c["watch_resumes"].as_u64().unwrap() > 100,
        "watch timeouts re-watch cleanly"
    );
}

#[test]
fn relist_storm_after_restart_without_progress_notify_and_none_with_it() {
    let storm = report("relist-storm-restart.toml", &[], None);
    let too_old = storm["clients"]["relist_causes"]["too_old"]
        .as_u64()
        .unwrap();
    assert!(too_old >= 500, "a storm of 410 relists: {too_old}");
    let minute10 = storm["series"][10]["relists"].as_u64().unwrap();
    assert!(
        minute10 >= 500,
        "the storm is at the 10th minute: {minute10}"
    );
    let calm = report(
        "relist-storm-restart.toml",
        &["etcd.progress_notify_interval=\"5s\""],
        None,
    );
    assert_eq!(calm["clients"]["relist_causes"]["too_old"], 0);
    assert_eq!(calm["clients"]["converged"], true);
}

#[test]
fn small_fixed_window_loops_and_the_dynamic_window_does_not() {
    let fixed = report("small-window-loop.toml", &[], None);
    let c = &fixed["clients"];
    assert!(c["relists"].as_u64().unwrap() >= 8, "{c}");
    assert_eq!(c["relists"], c["relist_causes"]["too_old"]);
    let dynamic = report(
        "small-window-loop.toml",
        &["apiserver.watch_cache.mode=\"dynamic\""],
        None,
    );
    assert_eq!(dynamic["clients"]["relists"], 0);
    assert!(
        dynamic["apiservers"][0]["cache_capacity_max"]
            .as_u64()
            .unwrap()
            > 100
    );
}

#[test]
fn node_status_heartbeats_write_far_more_bytes_than_leases() {
    let lease = report("lease-vs-nodestatus.toml", &[], Some("3m"));
    let status = report(
        "lease-vs-nodestatus.toml",
        &["resources.0.object_bytes=15360"],
        Some("3m"),
    );
    let w = |r: &Value| r["series"][1]["etcd_write_bytes"].as_u64().unwrap();
    let revs = |r: &Value| r["series"][1]["revisions"].as_u64().unwrap();
    assert_eq!(
        revs(&lease),
        revs(&status),
        "same seed, same number of writes"
    );
    assert!(
        w(&status) > 40 * w(&lease),
        "{} vs {}",
        w(&status),
        w(&lease)
    );
}

#[test]
fn cluster_5k_reaches_steady_state() {
    let r = report("cluster-5k.toml", &[], Some("90s"));
    let c = &r["clients"];
    assert_eq!(c["count"], 10001);
    assert_eq!(c["relists"], 0);
    assert_eq!(c["converged"], true);
    assert_eq!(r["apiservers"].as_array().unwrap().len(), 3);
}
