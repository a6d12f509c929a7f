//! The SPEC §6 invariants against broken models: every invariant FIRES on a scripted scenario
//! with a `[mutants]` switch that breaks exactly its rule (or, for `no-time-travel` and
//! `relist-bound`, the real behaviour that violates it) and HOLDS on the same scenario without it.
//! An invariant that cannot fail is a defect.

use serde_json::Value;

fn report(text: &str) -> Value {
    let r = watchsim::sim::run_str("test.toml", text, &[], None).expect("scenario runs");
    serde_json::to_value(r).unwrap()
}

fn inv<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["invariants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no invariant {name}"))
}

fn fires(text: &str, name: &str) -> String {
    let r = report(text);
    let i = inv(&r, name);
    assert_eq!(i["checked"], true, "{name} not checked: {i}");
    assert_eq!(i["held"], false, "{name} should fire: {i}");
    assert!(i["violations"].as_u64().unwrap() >= 1);
    i["message"].as_str().unwrap().to_string()
}

fn holds(text: &str, name: &str) {
    let r = report(text);
    for i in r["invariants"].as_array().unwrap() {
        assert_eq!(i["held"], true, "{} should hold: {i}", i["name"]);
    }
    assert_eq!(inv(&r, name)["checked"], true, "{name} not checked");
}

fn with_mutant(text: &str, mutant: &str) -> String {
    format!("{text}\n[mutants]\n{mutant} = true\n")
}

const PODS3: &str = "name = \"t\"\nduration = \"20s\"\n[[resources]]\nname = \"pods\"\ncount = 3\n";

fn step(at: &str, body: &str) -> String {
    format!("[[steps]]\nat = \"{at}\"\n{body}\n")
}

fn create(at: &str, name: &str) -> String {
    step(
        at,
        &format!("op = \"api.create\"\nresource = \"pods\"\nname = \"{name}\""),
    )
}

fn watch(at: &str, id: &str, extra: &str) -> String {
    step(
        at,
        &format!("op = \"api.watch\"\nid = \"{id}\"\nresource = \"pods\"\n{extra}"),
    )
}

#[test]
fn watch_order_fires_when_the_cacher_delivers_a_held_event_after_a_newer_one() {
    // Pods preload revisions 2..4; the watch from 4 then sees creates at 5 and 6.
    let text = [
        PODS3,
        &watch("1s", "w", "resource_version = \"4\""),
        &create("2s", "a"),
        &create("3s", "b"),
    ]
    .concat();
    holds(&text, "watch-order");
    let msg = fires(&with_mutant(&text, "cacher_reorder"), "watch-order");
    assert!(
        msg.contains("at RV 5 arrived after an event at RV 6"),
        "{msg}"
    );
}

#[test]
fn watch_unique_fires_when_a_snapshot_does_not_raise_the_start_rv() {
    // Kubernetes PR #73845: a create at 5 is in the cache; a watch from RV 0 gets the 4 objects as
    // ADDED (snapshot at 5), and the broken cacher delivers the create at 5 again.
    let text = [
        PODS3,
        &create("1s", "a"),
        &watch("2s", "w", "resource_version = \"0\""),
    ]
    .concat();
    holds(&text, "watch-unique");
    let msg = fires(
        &with_mutant(&text, "cacher_duplicate_after_snapshot"),
        "watch-unique",
    );
    assert!(msg.contains("delivered twice"), "{msg}");
}

#[test]
fn watch_no_gap_fires_when_etcd_skips_a_compacted_lagging_watcher() {
    // etcd #17529: puts at 2..6; a watch from 2 is unsynced when etcd compacts at 5; a correct etcd
    // cancels it with compact_revision 5, the broken one moves it to 7 and delivers the put at 7.
    let mut text = String::from("name = \"t\"\nduration = \"5s\"\n");
    for (i, at) in ["100ms", "200ms", "300ms", "400ms", "500ms"]
        .iter()
        .enumerate()
    {
        text += &step(at, &format!("op = \"etcd.put\"\nkey = \"k{i}\""));
    }
    text += &step(
        "1s",
        "op = \"etcd.watch\"\nid = \"w\"\nkey = \"k\"\nprefix = true\nstart_revision = 2",
    );
    text += &step("1s", "op = \"etcd.compact\"\nrevision = 5");
    text += &step("2s", "op = \"etcd.put\"\nkey = \"k9\"");
    holds(&text, "watch-no-gap");
    let r = report(&text);
    assert_eq!(
        r["watches"]["w"][0]["type"], "CANCELED",
        "the faithful etcd cancels"
    );
    let msg = fires(
        &with_mutant(&text, "etcd_skip_compacted_watcher"),
        "watch-no-gap",
    );
    assert!(msg.contains("revision 2 was never delivered"), "{msg}");
}

#[test]
fn cache_window_fires_when_a_watch_at_oldest_minus_one_is_refused() {
    // Kubernetes PR #68065: after Replace at RV 4 a watch from 4 (= oldest - 1) must be served.
    let text = [
        PODS3,
        &watch("1s", "w", "resource_version = \"4\""),
        &create("2s", "a"),
    ]
    .concat();
    holds(&text, "cache-window");
    let msg = fires(
        &with_mutant(&text, "cacher_window_off_by_one"),
        "cache-window",
    );
    assert!(msg.contains("a watch from RV 4 was refused"), "{msg}");
}

#[test]
fn list_consistent_fires_when_an_unset_rv_list_skips_the_freshness_wait() {
    // The cache of a stalled apiserver stays at RV 4 while etcd moves to 5; a consistent LIST must
    // wait (and fall back to etcd after 3 s), not answer RV 4.
    let text = [
        PODS3,
        &step(
            "1s",
            "op = \"fault.stall_apiserver\"\nserver = 0\nfor = \"10s\"",
        ),
        &step(
            "2s",
            "op = \"etcd.put\"\nkey = \"/registry/pods/default/x\"",
        ),
        &step("3s", "op = \"api.list\"\nresource = \"pods\""),
    ]
    .concat();
    holds(&text, "list-consistent");
    let r = report(&text);
    assert_eq!(r["script"][2]["result"]["resource_version"], "5");
    let msg = fires(
        &with_mutant(&text, "consistent_list_without_wait"),
        "list-consistent",
    );
    assert!(
        msg.contains("etcd was at revision 5 returned RV 4"),
        "{msg}"
    );
}

#[test]
fn convergence_fires_when_the_informer_drops_deletes() {
    let text = [
        "name = \"t\"\nduration = \"30s\"\nsettle = \"10s\"\n",
        "[[resources]]\nname = \"pods\"\ncount = 3\n",
        "[[clients]]\nname = \"c\"\nresource = \"pods\"\n",
        &step(
            "5s",
            "op = \"api.delete\"\nresource = \"pods\"\nname = \"pods-000001\"",
        ),
    ]
    .concat();
    holds(&text, "convergence");
    let msg = fires(&with_mutant(&text, "reflector_drop_deletes"), "convergence");
    assert!(msg.contains("client-0 (c-0)"), "{msg}");
}

#[test]
fn convergence_is_not_checked_before_settle_after_the_last_fault() {
    let text = [
        "name = \"t\"\nduration = \"30s\"\n",
        "[[resources]]\nname = \"pods\"\ncount = 3\n",
        "[[clients]]\nname = \"c\"\nresource = \"pods\"\n",
        &step("20s", "op = \"fault.restart_client\"\nclient = \"c-0\""),
    ]
    .concat();
    let r = report(&text);
    let i = inv(&r, "convergence");
    assert_eq!(i["checked"], false);
    assert!(
        i["message"].as_str().unwrap().contains("before settle"),
        "{i}"
    );
}

/// Two apiservers; apiserver-1 stalls at 1 s, so its cache stays at RV 4. The client lists RV=0
/// from apiserver-0 (round robin), sees the creates at 5 and 6, restarts, and its first LIST after
/// the restart goes to apiserver-1. The client does not use WatchList (client-go before 1.35, or
/// with `WatchListClient` off), so it LISTs.
fn time_travel_text(list_rv: &str) -> String {
    [
        "name = \"t\"\nduration = \"20s\"\n[apiserver]\ncount = 2\n",
        "[[resources]]\nname = \"pods\"\ncount = 3\n",
        &format!(
            "[[clients]]\nname = \"c\"\nresource = \"pods\"\nlist_rv = \"{list_rv}\"\n\
             watch_list = false\n"
        ),
        &step(
            "500ms",
            "op = \"fault.stall_apiserver\"\nserver = 1\nfor = \"30s\"",
        ),
        &create("3s", "a"),
        &create("4s", "b"),
        &step("6s", "op = \"fault.restart_client\"\nclient = \"c-0\""),
    ]
    .concat()
}

#[test]
fn no_time_travel_fires_when_a_restarted_client_lists_rv0_from_a_lagging_apiserver() {
    // Kubernetes #59848 (open): the real behaviour, no mutant.
    let msg = fires(&time_travel_text("0"), "no-time-travel");
    assert!(
        msg.contains("a LIST with RV=\"0\" from apiserver-1 returned RV 4"),
        "{msg}"
    );
    assert!(msg.contains("older than RV 6"), "{msg}");
    assert!(msg.contains("after 1 restart(s)"), "{msg}");
}

#[test]
fn no_time_travel_holds_when_the_client_lists_with_rv_unset() {
    // A consistent LIST waits for the stalled cache, then falls back to etcd: RV 6, no travel.
    let text = time_travel_text("");
    let r = report(&text);
    let i = inv(&r, "no-time-travel");
    assert_eq!(
        (i["checked"].clone(), i["held"].clone()),
        (true.into(), true.into()),
        "{i}"
    );
}

#[test]
fn relist_bound_fires_when_an_apiserver_restart_makes_clients_relist() {
    // A restarted apiserver re-lists at the current revision (6, a write made while it was down);
    // the client's resume from 5 gets 410 and relists: 1 relist in 1 minute is 60 per client-hour.
    let text = |bound: f64| {
        [
            "name = \"t\"\nduration = \"1m\"\n",
            "[[resources]]\nname = \"pods\"\ncount = 3\n",
            "[[clients]]\nname = \"c\"\nresource = \"pods\"\n",
            &create("5s", "a"),
            &step(
                "10s",
                "op = \"fault.restart_apiserver\"\nserver = 0\nfor = \"2s\"",
            ),
            &step(
                "11s",
                "op = \"etcd.put\"\nkey = \"/registry/pods/default/b\"",
            ),
            &format!("[bounds]\nrelists_per_client_hour = {bound}\n"),
        ]
        .concat()
    };
    holds(&text(1000.0), "relist-bound");
    let msg = fires(&text(0.5), "relist-bound");
    assert!(msg.contains("above the bound 0.5"), "{msg}");
}

#[test]
fn every_invariant_is_checked_and_holds_on_the_bundled_steady_scenario() {
    let text = std::fs::read_to_string("sim-scenarios/steady-small.toml").unwrap();
    let r = watchsim::sim::run_str(
        "steady-small.toml",
        &text,
        &["duration=\"5m\"".into()],
        None,
    )
    .unwrap();
    for i in &r.invariants {
        assert!(i.checked, "{} not checked: {:?}", i.name, i.message);
        assert!(i.held, "{} violated: {:?}", i.name, i.message);
    }
}

#[test]
fn unknown_mutants_are_refused() {
    let err =
        watchsim::scenario::load_str("t.toml", "name = \"t\"\n[mutants]\nno_such = true\n", &[])
            .unwrap_err();
    assert!(err.to_string().contains("mutants.no_such"), "{err}");
}
