//! client-go reflector rules as scripted scenarios (k8s-cacher-protocol.md §8;
//! k8s-unit-test-expectations.md cases 26-30). The report's `client_requests` logs the kind, RV
//! and limit of every request of the first clients; expected sequences come from the reference.

mod common;

use serde_json::Value;

use common::model_client::run_model_client;

/// Runs `text` under the 1.31 rules (LIST-then-WATCH informers, client-go before 1.35's
/// WatchListClient default; these are the rules of the reference's cases 26-30) unless an
/// override names other rules.
fn run_with(text: &str, overrides: &[&str]) -> Value {
    let overrides: Vec<String> = std::iter::once("apiserver.rules=\"1.31\"")
        .chain(overrides.iter().copied())
        .map(str::to_string)
        .collect();
    let report =
        watchsim::sim::run_str("test.toml", text, &overrides, None).expect("scenario runs");
    serde_json::to_value(report).unwrap()
}

/// (kind, rv, limit) of client 0's requests.
fn requests(r: &Value) -> Vec<(String, String, u64)> {
    r["client_requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["client"] == 0)
        .map(|q| {
            (
                q["kind"].as_str().unwrap().to_string(),
                q["rv"].as_str().unwrap().to_string(),
                q["limit"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn kinds(reqs: &[(String, String, u64)]) -> Vec<&str> {
    reqs.iter().map(|(k, _, _)| k.as_str()).collect()
}

const ONE_CLIENT: &str = "name = \"t\"\n[[resources]]\nname = \"pods\"\ncount = 3\n[[clients]]\nname = \"c\"\nresource = \"pods\"\n";

#[test]
fn first_list_is_rv0_and_a_clean_watch_close_resumes_without_relisting() {
    // Case 26 / KC §8.2: list RV "0" (page 500), then watch at the list RV; the server closes the
    // watch at its timeout (5-10 min) and the reflector re-watches from its last RV: one LIST.
    let r = run_with(&format!("duration = \"25m\"\n{ONE_CLIENT}"), &[]);
    let reqs = requests(&r);
    assert_eq!(reqs[0], ("list".to_string(), "0".to_string(), 500));
    assert_eq!(reqs[1], ("watch".to_string(), "4".to_string(), 0));
    assert!(kinds(&reqs[1..]).iter().all(|k| *k == "watch"), "{reqs:?}");
    assert!(
        reqs.len() >= 4,
        "at least two re-watches in 25 min: {reqs:?}"
    );
    let c = &r["clients"];
    assert_eq!(
        (c["relists"].as_u64(), c["list_requests"].as_u64()),
        (Some(0), Some(1))
    );
    assert!(c["watch_resumes"].as_u64().unwrap() >= 2);
    assert_eq!(c["converged"], true);
}

#[test]
fn a_list_at_a_too_large_rv_falls_back_to_a_consistent_list() {
    // Case 27: a LIST at an RV the cache cannot reach gets 504 after 3 s. client-go's REST client
    // first retries it itself (the 504 carries Retry-After: 1; up to 10 retries, KC §6.2); then
    // the reflector marks the RV unavailable and retries at once with RV "" on the same pager.
    let text = format!("duration = \"60s\"\n{ONE_CLIENT}list_rv = \"1000\"\n");
    let r = run_with(&text, &[]);
    let reqs = requests(&r);
    let at_1000 = ("list".to_string(), "1000".to_string(), 0);
    assert_eq!(reqs[..11], vec![at_1000; 11][..]);
    assert_eq!(reqs[11], ("list".to_string(), String::new(), 0));
    assert_eq!(reqs[12].0, "watch");
    // The fallback belongs to the first list, so it is not counted as a relist.
    assert_eq!(r["clients"]["relists"], 0);
    assert_eq!(r["apiservers"][0]["too_large_errors"], 11);
}

#[test]
fn a_watch_410_relists_at_the_last_rv_and_a_list_410_falls_back_to_rv_unset() {
    // Cases 27-28 with the watch cache off (LISTs and watches go to etcd): the first RV=0 LIST
    // comes back in pages of 500, so the reflector keeps paginating. After a compaction and an
    // apiserver restart, the resumed watch from the old RV is cancelled by etcd (410); the relist
    // at that RV with limit 500 is a legacy exact read of a compacted revision (410), so it falls
    // back to RV "".
    let text = "name = \"t\"\nduration = \"40s\"\n[apiserver.watch_cache]\nmode = \"off\"\n\
        [[resources]]\nname = \"pods\"\ncount = 1200\n[[clients]]\nname = \"c\"\nresource = \"pods\"\n\
        [[steps]]\nat = \"5s\"\nop = \"api.create\"\nresource = \"pods\"\nname = \"x\"\n\
        [[steps]]\nat = \"7s\"\nop = \"fault.restart_apiserver\"\nfor = \"5s\"\n\
        [[steps]]\nat = \"8s\"\nop = \"etcd.put\"\nkey = \"/registry/pods/default/y\"\n\
        [[steps]]\nat = \"8.5s\"\nop = \"etcd.put\"\nkey = \"/registry/pods/default/z\"\n\
        [[steps]]\nat = \"9s\"\nop = \"fault.compact_now\"\n";
    let r = run_with(text, &[]);
    let reqs = requests(&r);
    let lists: Vec<(&str, &str, u64)> = reqs
        .iter()
        .filter(|q| q.0.starts_with("list"))
        .map(|(k, v, l)| (k.as_str(), v.as_str(), *l))
        .collect();
    // The first list: RV "0", 3 pages of 500.
    assert_eq!(
        lists[..3],
        [
            ("list", "0", 500),
            ("list-continue", "", 500),
            ("list-continue", "", 500)
        ]
    );
    // The client saw x (RV 1202); y and z (1203, 1204) were written and etcd compacted at 1204
    // while the apiserver was down. The resumed watch is cancelled by etcd (410); relist at 1202 with limit 500: 410
    // again (legacy exact read below the compaction), then RV "".
    assert_eq!(lists[3], ("list", "1202", 500));
    assert_eq!(lists[4], ("list", "", 500));
    let c = &r["clients"];
    assert_eq!(c["relist_causes"]["too_old"], 2);
    assert_eq!(c["converged"], true);
}

#[test]
fn connection_refused_backs_off_and_rewatches_without_relisting() {
    // Case 29 / KC §8.2: while the only apiserver is down the watch cannot be opened; the
    // reflector backs off (0.8 s doubling) and re-watches, with no LIST; nothing was written, so
    // the restarted cache (at the same revision) serves the resumed watch.
    let text = format!(
        "duration = \"60s\"\n{ONE_CLIENT}[[steps]]\nat = \"5s\"\nop = \"fault.restart_apiserver\"\nfor = \"10s\"\n"
    );
    let r = run_with(&text, &[]);
    let reqs = requests(&r);
    assert_eq!(kinds(&reqs)[0], "list");
    assert!(kinds(&reqs[1..]).iter().all(|k| *k == "watch"), "{reqs:?}");
    let c = &r["clients"];
    assert_eq!(c["relists"], 0);
    assert_eq!(c["converged"], true);
    // Attempts while down are refused: the log holds the watches actually sent.
    let times: Vec<f64> = r["client_requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["t_ns"].as_f64().unwrap() / 1e9)
        .collect();
    assert!(
        times.iter().any(|&t| t > 15.0),
        "re-watched after the apiserver came back: {times:?}"
    );
}

#[test]
fn watch_list_client_streams_initial_events_and_then_rewatches_normally() {
    // Case 30: with WatchList on both sides the reflector sends one streaming request with RV ""
    // and no LIST; after its end bookmark the stream goes on as a watch; when it ends (timeout),
    // the reflector resumes with a plain watch from the last RV.
    let text = format!(
        "duration = \"20m\"\n{ONE_CLIENT}watch_list = true\n[apiserver]\nwatch_list = true\n"
    );
    let r = run_with(&text, &[]);
    let reqs = requests(&r);
    assert_eq!(reqs[0], ("watch-list".to_string(), String::new(), 0));
    assert!(kinds(&reqs[1..]).iter().all(|k| *k == "watch"), "{reqs:?}");
    assert!(reqs.len() >= 2);
    let c = &r["clients"];
    assert_eq!(
        (c["list_requests"].as_u64(), c["relists"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(c["converged"], true);
}

#[test]
fn a_restarted_client_lists_again_with_its_list_rv_and_counts_a_restart_relist() {
    let text = format!(
        "duration = \"20s\"\n{ONE_CLIENT}[[steps]]\nat = \"10s\"\nop = \"fault.restart_client\"\nclient = \"c-0\"\n"
    );
    let r = run_with(&text, &[]);
    let lists: Vec<String> = requests(&r)
        .into_iter()
        .filter(|q| q.0 == "list")
        .map(|q| q.1)
        .collect();
    assert_eq!(lists, ["0", "0"]);
    assert_eq!(r["clients"]["relist_causes"]["restart"], 1);
}

#[test]
fn a_goaway_lets_the_list_in_flight_finish_and_moves_only_new_requests() {
    // HTTP/2 GOAWAY (RFC 9113 §6.8): streams up to the last stream id are still answered; only new
    // requests need a new connection. With every LIST answered by a GOAWAY, each reflector still
    // syncs from its first LIST and then watches: no relist, one LIST each.
    let text = format!(
        "duration = \"2m\"\n{ONE_CLIENT}count = 3\n[load_balancer]\ngoaway_chance = 1.0\n[[workload]]\nresource = \"pods\"\nkind = \"update\"\nrate = 1.0\n"
    );
    let r = run_with(&text, &[]);
    let reqs = requests(&r);
    assert_eq!(kinds(&reqs[..2]), ["list", "watch"], "{reqs:?}");
    let c = &r["clients"];
    assert_eq!(c["list_requests"].as_u64(), Some(3), "one LIST per client");
    assert_eq!(c["relists"].as_u64(), Some(0));
    assert_eq!(c["converged"], true);
    assert!(c["events"].as_u64().unwrap() > 0, "the watches deliver");
}

/// client-go's reflector backoff as the Go source defines it, the reference for
/// `reflector_backoff_resets_every_two_minutes_under_continuous_failure_from_client_go_1_36`.
/// Both managers start from 0.8 s, double up to the 30 s cap and jitter by 1.0 (a wait is in
/// [d, 2d)); they differ in the reset:
/// - 1.36+ (`periodic`): `wait.Backoff{...}.DelayWithReset(clock, 2m)`
///   (client-go v0.37.2 `tools/cache/reflector.go NewReflectorWithOptions`);
///   `backoffManager.Step` (apimachinery v0.37.2 `pkg/util/wait/backoff.go`): `if
///   clock.Now().Sub(lastStart) > resetInterval { backoff = initialBackoff; lastStart =
///   clock.Now() }`, `lastStart` set to `c.Now()` in `DelayWithReset` and nowhere else;
/// - 1.27-1.35: `wait.NewExponentialBackoffManager(800ms, 30s, 2m, 2.0, 1.0, clock)` (client-go
///   v0.31.14 `reflector.go`); `exponentialBackoffManagerImpl.getNextBackoff` (apimachinery
///   v0.31.14 `backoff.go`): `if clock.Now().Sub(lastBackoffStart) > backoffResetDuration {
///   reset }; lastBackoffStart = clock.Now()`, `lastBackoffStart` set to `c.Now()` at creation.
struct SourceBackoff {
    periodic: bool,
    duration_ms: f64,
    last_ms: f64,
}

impl SourceBackoff {
    fn created_at(periodic: bool, ms: f64) -> Self {
        SourceBackoff {
            periodic,
            duration_ms: 800.0,
            last_ms: ms,
        }
    }

    /// The base d of the wait taken at `now_ms`.
    fn step(&mut self, now_ms: f64) -> f64 {
        if now_ms - self.last_ms > 120_000.0 {
            self.duration_ms = 800.0;
            self.last_ms = now_ms;
        }
        if !self.periodic {
            self.last_ms = now_ms;
        }
        let base = self.duration_ms;
        self.duration_ms = (base * 2.0).min(30_000.0);
        base
    }
}

#[test]
fn reflector_backoff_resets_every_two_minutes_under_continuous_failure_from_client_go_1_36() {
    // k8s-rules-1.31-1.37.md row 9. The only apiserver is down from 10 s to 290 s: every
    // re-watch is refused and backed off. client-go 1.36+ ("1.37") goes back to 0.8 s more than
    // 2 min after the reflector was created, and again 2 min after that reset; 1.27-1.35
    // ("1.34": client-go 1.34) never does (a backoff is taken at least every 60 s). Checked
    // against client-go v0.37.2 itself by tests/reflector_conformance.rs (`long-outage`).
    let scenario = |rules: &str| {
        format!(
            "duration = \"300s\"\n{ONE_CLIENT}watch_list = false\n[apiserver]\nrules = \"{rules}\"\n\
             [[steps]]\nat = \"10s\"\nop = \"fault.restart_apiserver\"\nfor = \"280s\"\n"
        )
    };
    let mut refused = Vec::new();
    for (rules, periodic) in [("1.37", true), ("1.34", false)] {
        let log = run_model_client(&scenario(rules), 1, 0).expect("runs");
        let created = log.requests[0].at_ms;
        let mut reference = SourceBackoff::created_at(periodic, created);
        let mut bases = Vec::new();
        for w in log.waits.iter().filter(|w| w.by != "rest") {
            let d = reference.step(w.at_ms);
            assert!(
                w.wait_ms >= d && w.wait_ms < 2.0 * d,
                "{rules}: wait {} ms at {} ms not in [{d}, {}) ms",
                w.wait_ms,
                w.at_ms,
                2.0 * d
            );
            bases.push((w.at_ms, d));
        }
        let capped_at = bases
            .iter()
            .find(|(_, d)| *d == 30_000.0)
            .map(|(t, _)| *t)
            .expect("the backoff reaches its cap during the outage");
        let resets: Vec<f64> = bases
            .iter()
            .filter(|(t, d)| *t > capped_at && *d == 800.0)
            .map(|(t, _)| *t)
            .collect();
        if periodic {
            assert!(
                !resets.is_empty() && resets[0] > created + 120_000.0,
                "{rules}: back to 0.8 s after 2 min of failure: {bases:?}"
            );
        } else {
            assert!(resets.is_empty(), "{rules}: no reset: {bases:?}");
        }
        refused.push(
            log.requests
                .iter()
                .filter(|q| q.outcome["error"]["reason"] == "ConnectionRefused")
                .count(),
        );
    }
    assert!(
        refused[0] > refused[1],
        "more attempts under 1.37 than 1.34: {refused:?}"
    );
}
