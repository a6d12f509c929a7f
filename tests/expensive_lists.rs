//! `sim-scenarios/expensive-lists.toml` shows what its README row says (issue 18): consistent
//! (RV "") LISTs read etcd under the 1.27 profile (and 1.31 with ConsistentListFromCache off)
//! and come from the watch cache from 1.31 / 1.34; RV "0" LISTs never touch etcd; LISTs from etcd
//! hold several times their response in apiserver memory; a full LIST's latency is its encoding
//! time; the kubelets beside them are not slowed.

use serde_json::Value;
use watchsim::scenario::{load_file, parse_duration};
use watchsim::sim::{RunOptions, run};

/// Shorter than the scenario's 2 minutes: every LIST is done within 5 s.
const DURATION: &str = "20s";

fn report(overrides: &[&str]) -> Value {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sim-scenarios/expensive-lists.toml");
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let loaded = load_file(&path, &overrides).expect("the scenario loads");
    let r = run(
        &loaded,
        &RunOptions {
            duration: Some(parse_duration(DURATION).unwrap()),
            ..Default::default()
        },
    )
    .expect("runs");
    serde_json::to_value(r).unwrap()
}

fn apiserver(r: &Value, field: &str) -> u64 {
    r["apiservers"][0][field].as_u64().unwrap()
}

fn population<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["client_populations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no population {name}"))
}

/// Every LIST encoded at once (the scenario limits the apiserver to 8 encoders).
const NO_LIMIT: &str = "apiserver.list_encoders=0";

fn max_latency(r: &Value, name: &str) -> f64 {
    population(r, name)["list_latency_seconds_max"]
        .as_f64()
        .unwrap()
}

fn rules(profile: &str) -> String {
    format!("apiserver.rules=\"{profile}\"")
}

#[test]
fn consistent_lists_read_etcd_before_consistent_reads_from_cache() {
    // Without the encoder limit: each profile's reads and memory, and latencies that are
    // encoding time alone.
    let old = report(&[&rules("1.27"), NO_LIMIT]);
    let off = report(&[
        &rules("1.31"),
        "apiserver.consistent_list_from_cache=false",
        NO_LIMIT,
    ]);
    let v131 = report(&[&rules("1.31"), NO_LIMIT]);
    let new = report(&[&rules("1.37"), NO_LIMIT]);
    let etcd_bytes = |r: &Value| apiserver(r, "etcd_read_bytes");
    // 1.27: 10 full LISTs and 10 paginated ones (100 pages each) from etcd, ~490 MiB each.
    assert!(apiserver(&old, "lists_from_etcd") >= 10 + 10 * 100, "{old}");
    assert!(
        etcd_bytes(&old) > 15 * etcd_bytes(&new),
        "1.27 {} vs 1.37 {}",
        etcd_bytes(&old),
        etcd_bytes(&new)
    );
    // ConsistentListFromCache off puts 1.31 back where 1.27 was.
    assert_eq!(etcd_bytes(&off), etcd_bytes(&old));
    // 1.31: the unpaginated RV "" LISTs come from the cache, the paginated ones still from etcd.
    assert!(etcd_bytes(&old) > etcd_bytes(&v131) && etcd_bytes(&v131) > etcd_bytes(&new));
    // 1.37: no client LIST reads etcd (the cacher's own initial LIST is all).
    assert_eq!(apiserver(&new, "lists_from_etcd"), 0, "{new}");
    // Memory: an etcd-served LIST holds ~5x its response while it is encoded.
    let mem = |r: &Value| apiserver(r, "list_memory_bytes_max");
    assert!(mem(&old) > 2 * mem(&new), "{} vs {}", mem(&old), mem(&new));
    assert!(mem(&new) > 10 * 400 * 1024 * 1024, "{}", mem(&new));
    for r in [&old, &v131, &new] {
        // A full LIST of 490 MiB takes seconds to encode; a kubelet's few pods take milliseconds.
        for name in ["list-consistent", "list-rv0", "list-paged"] {
            let p = population(r, name);
            assert_eq!(p["lists"], 10, "{p}");
            assert!(
                p["list_latency_seconds_mean"].as_f64().unwrap() > 1.0,
                "{p}"
            );
        }
        let kubelet = population(r, "kubelet");
        assert_eq!(kubelet["lists"], 5000);
        assert!(kubelet["list_latency_seconds_max"].as_f64().unwrap() < 0.1);
        assert!(kubelet["max_staleness_seconds"].as_f64().unwrap() < 0.1);
        assert_eq!(r["clients"]["relists"], 0);
    }
}

#[test]
fn rv0_lists_never_touch_etcd() {
    for profile in ["1.27", "1.31", "1.37"] {
        let only_rv0 = report(&[&rules(profile), "clients.0.count=0", "clients.2.count=0"]);
        let none = report(&[
            &rules(profile),
            "clients.0.count=0",
            "clients.1.count=0",
            "clients.2.count=0",
        ]);
        assert_eq!(
            only_rv0["etcd"]["range_bytes"], none["etcd"]["range_bytes"],
            "{profile}: RV \"0\" LISTs read etcd"
        );
        assert_eq!(population(&only_rv0, "list-rv0")["lists"], 10);
        assert!(
            apiserver(&only_rv0, "list_memory_bytes_max")
                > apiserver(&none, "list_memory_bytes_max") + 9 * 400 * 1024 * 1024
        );
    }
}

#[test]
fn with_eight_encoders_the_lists_wait_their_turn_and_list_based_kubelets_with_them() {
    for profile in ["1.31", "1.37"] {
        let free = report(&[&rules(profile), NO_LIMIT]);
        let eight = report(&[&rules(profile)]);
        // 30 full LISTs of ~490 MiB at 200 MiB/s, eight at a time: the last waits for three
        // rounds before its own 2.4 s (paginated ones queue again for every page).
        for name in ["list-consistent", "list-rv0"] {
            assert!(max_latency(&free, name) < 3.0, "{profile} {name}: {free}");
            assert!(max_latency(&eight, name) > 6.0, "{profile} {name}: {eight}");
        }
        assert!(max_latency(&eight, "list-paged") > 2.0 * max_latency(&free, "list-paged"));
        // Memory is held while waiting, never less than without the limit.
        assert!(
            apiserver(&eight, "list_memory_bytes_max") >= apiserver(&free, "list_memory_bytes_max")
        );
    }
    // The kubelets' own initial LISTs (1.31) queue behind the big ones: seconds instead of
    // milliseconds, and as stale meanwhile; with WatchList (1.37) they do not LIST at all.
    let v131 = report(&[&rules("1.31")]);
    assert!(max_latency(&v131, "kubelet") > 1.0, "{v131}");
    let stale = population(&v131, "kubelet")["max_staleness_seconds"]
        .as_f64()
        .unwrap();
    assert!(stale > 1.0, "{stale}");
    let new = report(&[&rules("1.37")]);
    assert!(max_latency(&new, "kubelet") < 0.1, "{new}");
}
