//! Rules of the Kubernetes 1.31–1.37 source that watchsim follows since issues 14 and 19, as
//! scripted scenarios. Each test names the rule; its comment cites the Kubernetes file and
//! function (paths under staging/src/k8s.io/) and the row of
//! `shared/reference/k8s-rules-1.31-1.37.md`. Expected values are worked out by hand from the
//! scenario's revisions, never copied from a run. Every rule here is also checked against the
//! real code by `tests/kube_conformance.rs`.
//!
//! Revision bookkeeping: etcd starts at revision 1; `[[resources]] count = 3` preloads revisions
//! 2, 3, 4, so a fresh cacher lists at RV 4.

use serde_json::{Value, json};

fn run(text: &str) -> Value {
    let report = watchsim::sim::run_str("test.toml", text, &[], None).expect("scenario runs");
    serde_json::to_value(report).unwrap()
}

fn result(r: &Value, i: usize) -> Value {
    r["script"][i]["result"].clone()
}

fn events(r: &Value, id: &str) -> Vec<Value> {
    r["watches"][id].as_array().cloned().unwrap_or_default()
}

fn scenario(rules: &str, duration: &str, steps: &[String]) -> String {
    let mut s = format!(
        "name = \"t\"\nduration = \"{duration}\"\n[apiserver]\nrules = \"{rules}\"\nwatch_list = true\n\
         compaction_interval = \"0s\"\n[[resources]]\nname = \"pods\"\ncount = 3\n\
         [[resources]]\nname = \"configmaps\"\n"
    );
    for st in steps {
        s.push_str(st);
    }
    s
}

fn step(at: &str, body: &str) -> String {
    format!("[[steps]]\nat = \"{at}\"\n{body}\n")
}

fn list(at: &str, extra: &str) -> String {
    step(
        at,
        &format!("op = \"api.list\"\nresource = \"pods\"\n{extra}"),
    )
}

fn watch(at: &str, id: &str, extra: &str) -> String {
    step(
        at,
        &format!("op = \"api.watch\"\nid = \"{id}\"\nresource = \"pods\"\n{extra}"),
    )
}

fn create(at: &str, resource: &str, name: &str) -> String {
    step(
        at,
        &format!("op = \"api.create\"\nresource = \"{resource}\"\nname = \"{name}\""),
    )
}

fn bookmark(rv: &str) -> Value {
    json!({"type": "BOOKMARK", "resource_version": rv})
}

fn added(name: &str, rv: &str) -> Value {
    json!({"type": "ADDED", "name": name, "namespace": "default", "resource_version": rv})
}

/// Row 14. `apiserver/pkg/storage/cacher/cache_watcher.go process()`: a bookmark goes out when its
/// RV is above the watcher's start RV (the local `resourceVersion` of `processInterval`, never
/// raised in `process`), so a quiet watch gets a BOOKMARK at the same RV every minute
/// (`defaultBookmarkFrequency`). A watch from RV 4 at 1 s with a pod created at 5 (2 s) gets the
/// ADDED and then BOOKMARK 5 at 61 s, 121 s and 181 s.
#[test]
fn periodic_bookmarks_repeat_the_same_rv_while_nothing_new_arrives() {
    let r = run(&scenario(
        "1.31",
        "200s",
        &[
            watch("1s", "w", "resource_version = \"4\"\nbookmarks = true"),
            create("2s", "pods", "web"),
        ],
    ));
    assert_eq!(
        events(&r, "w"),
        vec![
            added("web", "5"),
            bookmark("5"),
            bookmark("5"),
            bookmark("5")
        ]
    );
}

/// Row 14, the other half: a watch whose start RV is the newest RV gets no bookmark until the
/// RV moves (`event.ResourceVersion > resourceVersion` in `process`).
#[test]
fn no_bookmark_at_the_start_rv_of_a_quiet_watch() {
    let r = run(&scenario(
        "1.31",
        "150s",
        &[watch(
            "1s",
            "w",
            "resource_version = \"4\"\nbookmarks = true",
        )],
    ));
    assert_eq!(events(&r, "w"), Vec::<Value>::new());
}

/// Row 10. `apimachinery/pkg/apis/meta/internalversion/validation/validation.go
/// ValidateListOptions` (called by `apiserver/pkg/endpoints/handlers/get.go ListResource`):
/// resourceVersionMatch without a resourceVersion, Exact with "0", and a match with a continue
/// token are 422 Invalid before any storage rule applies.
#[test]
fn list_options_validation_answers_422_before_storage() {
    let r = run(&scenario(
        "1.31",
        "10s",
        &[
            list("1s", "match = \"NotOlderThan\""),
            list("2s", "resource_version = \"0\"\nmatch = \"Exact\""),
            list("3s", "limit = 1"),
            list(
                "4s",
                "resource_version = \"4\"\nmatch = \"Exact\"\ncontinue = true",
            ),
        ],
    ));
    let invalid = |detail: &str| {
        json!({"error": {"code": 422, "reason": "Invalid", "cause": "FieldValueForbidden",
            "message": format!("ListOptions.meta.k8s.io \"\" is invalid: {detail}")}})
    };
    assert_eq!(
        result(&r, 0),
        invalid(
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless \
             resourceVersion is provided"
        )
    );
    assert_eq!(
        result(&r, 1),
        invalid(
            "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for \
             resourceVersion \"0\""
        )
    );
    assert_eq!(
        result(&r, 3),
        invalid(
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is \
             provided"
        )
    );
}

/// Row 6. `apimachinery/pkg/apis/meta/internalversion/defaults.go SetListOptionsDefaults`: with
/// the WatchList gate on, a watch with RV "0" and no sendInitialEvents becomes a streaming list,
/// so a watcher that allows bookmarks gets the `initial-events-end` BOOKMARK at the cache RV (4)
/// right after the initial ADDED events (`cacher.go setInitialEventsEndBookmarkIfRequested`).
#[test]
fn a_legacy_watch_becomes_a_streaming_list_when_watch_list_is_on() {
    let r = run(&scenario(
        "1.31",
        "10s",
        &[watch(
            "1s",
            "w",
            "resource_version = \"0\"\nbookmarks = true",
        )],
    ));
    let evs = events(&r, "w");
    assert_eq!(evs.len(), 4);
    assert_eq!(
        evs[3],
        json!({"type": "BOOKMARK", "resource_version": "4", "initial_events_end": true})
    );
}

/// Row 5. `cacher.go getWatchCacheResourceVersion`: a watch with RV unset and
/// sendInitialEvents=false starts at etcd's current revision, and
/// `waitUntilWatchCacheFreshAndForceAllEvents` waits only when sendInitialEvents is true. Two
/// configmap writes (5, 6) leave the pods cache at 4; the watch opened at 3 s starts at 6 at once
/// (no 504 after 3 s), and the pod created at 5 s (7) is its first event.
#[test]
fn an_unset_rv_watch_without_initial_events_starts_at_the_etcd_revision_without_waiting() {
    let r = run(&scenario(
        "1.31",
        "10s",
        &[
            create("1s", "configmaps", "a"),
            create("2s", "configmaps", "b"),
            watch("3s", "w", "send_initial_events = false"),
            create("5s", "pods", "web"),
        ],
    ));
    assert_eq!(result(&r, 2), json!({"created": true}));
    assert_eq!(events(&r, "w"), vec![added("web", "7")]);
}

/// Rows 1 and 2. `cacher/delegator/interface.go ShouldDelegateList` → `cacher.go
/// ShouldDelegateContinue` / `shouldDelegateExactRV` / `CanServeExactRV` and `watch_cache.go
/// waitAndListExactRV`: from 1.34 (`ListFromCacheSnapshot`) a continuation and a legacy-exact
/// LIST (RV=N with a limit) are served from the cache's snapshot at that RV; under 1.31 both go
/// to etcd. The continuation after a pod created at 5 still lists the state at 4.
#[test]
fn continuations_and_exact_lists_come_from_cache_snapshots_from_1_34() {
    let steps = [
        list("1s", "limit = 2"),
        create("2s", "pods", "web"),
        list("3s", "continue = true"),
        list("4s", "resource_version = \"4\"\nlimit = 10"),
        list("5s", "resource_version = \"3\"\nmatch = \"Exact\""),
    ];
    let new = run(&scenario("1.37", "10s", &steps));
    assert_eq!(
        result(&new, 2),
        json!({"resource_version": "4", "items": 1, "names": ["pods-000002"], "continue": "",
               "served_from": "cache"})
    );
    assert_eq!(
        result(&new, 3),
        json!({"resource_version": "4", "items": 3,
               "names": ["pods-000000", "pods-000001", "pods-000002"], "continue": "",
               "served_from": "cache"})
    );
    // No snapshot is older than the list RV (4): an Exact LIST at 3 goes to etcd.
    assert_eq!(result(&new, 4)["served_from"], "etcd");
    assert_eq!(result(&new, 4)["items"], 2);
    let old = run(&scenario("1.31", "10s", &steps));
    assert_eq!(result(&old, 2)["served_from"], "etcd");
    assert_eq!(result(&old, 3)["served_from"], "etcd");
}

/// Row 3. `cacher.go shouldDelegateExactRV`: an Exact LIST above the cache RV is not delegated
/// (consistent reads are supported); `waitAndGetExactSnapshot` waits 3 s in
/// `waitUntilFreshLocked` and answers 504 with the cache's RV and Retry-After 1
/// (`storage.NewTooLargeResourceVersionError`). Under 1.31 it goes to etcd, whose NotOlderThan
/// check answers `current: 0` without a retry hint.
#[test]
fn an_exact_list_above_the_cache_waits_3s_then_504_from_1_34() {
    let steps = [list("1s", "resource_version = \"50\"\nmatch = \"Exact\"")];
    let new = run(&scenario("1.37", "10s", &steps));
    assert_eq!(
        result(&new, 0),
        json!({"error": {"code": 504, "reason": "Timeout", "cause": "ResourceVersionTooLarge",
               "retry_after_seconds": 1,
               "message": "Timeout: Too large resource version: 50, current: 4"}})
    );
}

/// Row 13. `cacher/delegator.go GetList` → `shouldDelegateListOnNotReadyCache`: only a label or
/// field selector keeps a paginated LIST off etcd while the cache is not ready; a namespace is
/// part of the key (`registry/generic/registry/store.go ListPredicate`), not a selector. During
/// the re-list after a restart, a namespaced LIST with a limit is served by etcd, not 429.
#[test]
fn a_namespaced_paginated_list_goes_to_etcd_while_the_cache_is_not_ready() {
    let r = run(&scenario(
        "1.31",
        "10s",
        &[
            step("1s", "op = \"fault.restart_apiserver\"\nserver = 0"),
            list("1s", "namespace = \"default\"\nlimit = 500"),
            list("1s", "namespace = \"default\""),
        ],
    ));
    assert_eq!(result(&r, 1)["served_from"], "etcd");
    assert_eq!(result(&r, 1)["items"], 3);
    assert_eq!(result(&r, 2)["error"]["code"], 429);
}

/// Profile defaults (reference (c)): the server's WatchList gate is on from 1.34
/// (`apiserver/pkg/features/kube_features.go`), client-go's WatchListClient from 1.35
/// (`client-go/features/known_features.go`); a scenario that sets either keeps its value.
#[test]
fn watch_list_defaults_follow_the_profile_unless_set() {
    let text = |rules: &str, extra: &str| {
        format!(
            "name = \"t\"\n[apiserver]\nrules = \"{rules}\"\n{extra}\n[[resources]]\nname = \"pods\"\n\
             [[clients]]\nname = \"c\"\nresource = \"pods\"\n"
        )
    };
    let load = |t: String| watchsim::scenario::load_str("t.toml", &t, &[]).expect("loads");
    let s = load(text("1.31", ""));
    assert_eq!(
        (s.apiserver.watch_list, s.clients[0].watch_list),
        (Some(false), Some(false))
    );
    let s = load(text("1.34", ""));
    assert_eq!(
        (s.apiserver.watch_list, s.clients[0].watch_list),
        (Some(true), Some(false))
    );
    let s = load(text("1.37", ""));
    assert_eq!(
        (s.apiserver.watch_list, s.clients[0].watch_list),
        (Some(true), Some(true))
    );
    let s = load(text("1.37", "watch_list = false"));
    assert_eq!(s.apiserver.watch_list, Some(false));
}

/// Row 11. `apiserver/pkg/storage/etcd3/store.go GetCurrentResourceVersion`: from 1.37 the
/// consistent-read probe is a Get of the resource's key prefix, which reads no object; 1.31-1.36
/// read one object with a limit-1 LIST. One consistent LIST of 3 pods of 1,000 bytes: etcd's
/// `range_bytes` differs by that one object (its 1,000 value bytes plus its 34-byte key
/// `/registry/pods/default/pods-000000`).
#[test]
fn the_1_37_consistent_read_probe_reads_no_object() {
    let text = |rules: &str| {
        format!(
            "name = \"t\"\nduration = \"5s\"\n[apiserver]\nrules = \"{rules}\"\n\
             [[resources]]\nname = \"pods\"\ncount = 3\nobject_bytes = 1000\n{}",
            list("1s", "")
        )
    };
    let bytes = |rules: &str| run(&text(rules))["etcd"]["range_bytes"].as_u64().unwrap();
    assert_eq!(bytes("1.31") - bytes("1.37"), 1034);
}

/// Row 4. `apiserver/pkg/storage/cacher/cacher.go GetList` answers a not-ready cache with
/// `NewTooManyRequests(err, calculateRetryAfterForUnreadyCache(downtime))`, `util.go`:
/// `min(30, max(1, e^(0.06 s)))` whole seconds, `s` the time since the cache left Ready
/// (`ready.go lastStateChangeTime`); since 1.33. A partition at 1 s makes the caches not ready at
/// once; LISTs without a limit at 15 s, 31 s and 41 s are 14, 30 and 40 s (plus the link latency)
/// into the outage: Retry-After 2, 6 and 11 (`util_test.go`). Under 1.31 it is always 1.
#[test]
fn the_retry_after_of_an_unready_cache_grows_with_its_downtime_from_1_33() {
    let steps = [
        step(
            "1s",
            "op = \"fault.partition_apiserver\"\nserver = 0\nfor = \"60s\"",
        ),
        list("15s", "resource_version = \"0\""),
        list("31s", "resource_version = \"0\""),
        list("41s", "resource_version = \"0\""),
    ];
    let retry =
        |r: &Value, i: usize| r["script"][i]["result"]["error"]["retry_after_seconds"].clone();
    let new = run(&scenario("1.37", "50s", &steps));
    assert_eq!(result(&new, 1)["error"]["code"], 429);
    assert_eq!(
        [retry(&new, 1), retry(&new, 2), retry(&new, 3)],
        [json!(2), json!(6), json!(11)]
    );
    let old = run(&scenario("1.31", "50s", &steps));
    assert_eq!(
        [retry(&old, 1), retry(&old, 2), retry(&old, 3)],
        [json!(1), json!(1), json!(1)]
    );
}

/// The scenario of [`scenario`] with the watch cache off: every request goes to the etcd3 store.
fn cache_off(rules: &str, duration: &str, steps: &[String]) -> String {
    scenario(rules, duration, steps).replace(
        "compaction_interval = \"0s\"\n",
        "compaction_interval = \"0s\"\nwatch_cache.mode = \"off\"\n",
    )
}

/// Row 7. Watch cache off: `storage/etcd3/watcher.go` `areInitialEventsRequired`,
/// `isInitialEventsEndBookmarkRequired` and `watchChan.startWatching`. A streaming list
/// (sendInitialEvents=true, bookmarks) reads the current state with `sync()`, sends it as ADDED
/// and then the annotated BOOKMARK at the read's revision (`progressNotifyEvent(initialRev)`,
/// `isInitialEventsEndBookmark`), then watches from there. Even for RV=N (here 2, older than the
/// pods at 3 and 4) the initial events are the current state, not the events after N; a pod
/// created afterwards (5) follows the bookmark.
#[test]
fn a_streaming_list_with_the_cache_off_ends_its_initial_state_with_the_annotated_bookmark() {
    let end =
        |rv: &str| json!({"type": "BOOKMARK", "resource_version": rv, "initial_events_end": true});
    let r = run(&cache_off(
        "1.37",
        "10s",
        &[
            watch("1s", "w", "send_initial_events = true\nbookmarks = true"),
            watch(
                "1s",
                "n",
                "resource_version = \"2\"\nsend_initial_events = true\nbookmarks = true",
            ),
            create("3s", "pods", "web"),
        ],
    ));
    let state = vec![
        added("pods-000000", "2"),
        added("pods-000001", "3"),
        added("pods-000002", "4"),
        end("4"),
        added("web", "5"),
    ];
    assert_eq!(events(&r, "w"), state);
    assert_eq!(events(&r, "n"), state);
}

/// Row 7. `etcd3/watcher.go startWatching`: with sendInitialEvents=true an RV above etcd's
/// revision (4) is refused on the stream with 504 "Too large resource version", and the stream
/// ends. Without bookmarks the state comes with no end bookmark (`isInitialEventsEndBookmarkRequired`
/// needs `allowWatchBookmarks`).
#[test]
fn a_streaming_list_with_the_cache_off_refuses_an_rv_above_etcd_and_needs_bookmarks_for_its_end() {
    let r = run(&cache_off(
        "1.37",
        "10s",
        &[
            watch(
                "1s",
                "big",
                "resource_version = \"9\"\nsend_initial_events = true\nbookmarks = true",
            ),
            watch("1s", "nb", "send_initial_events = true"),
        ],
    ));
    let big = events(&r, "big");
    assert_eq!(big.len(), 2, "{big:?}");
    assert_eq!(big[0]["type"], "ERROR");
    assert_eq!(big[0]["code"], 504);
    assert_eq!(
        big[0]["message"],
        "Timeout: Too large resource version: 9, current: 4"
    );
    assert_eq!(big[1], json!({"type": "CLOSED"}));
    assert_eq!(
        events(&r, "nb"),
        vec![
            added("pods-000000", "2"),
            added("pods-000001", "3"),
            added("pods-000002", "4"),
        ]
    );
}

/// Row 7. `etcd3/watcher.go getStartWatchResourceVersion`: with WatchList on, RV "" and
/// sendInitialEvents=false start at etcd's current revision (`getCurrentStorageRV`) with no
/// initial events; the pod created at 3 s (5) is the first event.
#[test]
fn an_unset_rv_watch_without_initial_events_and_the_cache_off_gets_no_state() {
    let r = run(&cache_off(
        "1.37",
        "10s",
        &[
            watch("1s", "w", "send_initial_events = false"),
            create("3s", "pods", "web"),
        ],
    ));
    assert_eq!(events(&r, "w"), vec![added("web", "5")]);
}

/// Row 7, the consequence: a WatchList informer (client-go 1.35+ default) against an apiserver
/// with the cache off gets its end bookmark, syncs at once and converges; before the fix it never
/// synced.
#[test]
fn a_watch_list_client_syncs_with_the_cache_off() {
    let text = cache_off("1.37", "2m", &[])
        + "[[clients]]\nname = \"c\"\ncount = 2\nresource = \"pods\"\nwatch_list = true\n";
    let r = run(&text);
    assert_eq!(r["clients"]["converged"], true, "{}", r["clients"]);
    assert_eq!(r["clients"]["relists"], 0);
}

/// The step lines of a run of `text` as JSON (the trace's `{"t_ns", "actor", "result", ...}`).
fn trace_steps(text: &str) -> Vec<Value> {
    use watchsim::check::runner::Spec;
    use watchsim::trace::StepRecord;
    use watchsim::world::Action;
    let spec = Spec::load("test.toml", text, &[], None).expect("scenario loads");
    let mut world = spec.world();
    let mut lines = Vec::new();
    while let Some(action) = world.next_timed_action() {
        let Action::Fire(key) = action;
        if key.due_ns > spec.end_ns {
            break;
        }
        let outcome = world.apply(action).unwrap();
        let record = StepRecord {
            step: lines.len() as u64 + 1,
            t_ns: world.now(),
            fire: key,
            outcome: &outcome,
        };
        lines.push(serde_json::to_value(&record).unwrap());
    }
    lines
}

/// Row 15. `cacher/progress/watch_progress.go ConditionalProgressRequester.Run`: the requester's
/// 100 ms timer keeps running while nobody waits, so the first consistent LIST after an idle spell
/// gets its progress request as soon as it starts waiting, not 100 ms later. A configmap write
/// (5) leaves the pods cache at 4; the LIST at 3 s reaches the apiserver at 3.001 s, its
/// current-revision probe answers at 3.003 s (three 1 ms hops) and the request goes out then.
#[test]
fn the_first_progress_request_after_idle_goes_out_at_once() {
    let text = scenario(
        "1.31",
        "6s",
        &[create("1s", "configmaps", "a"), list("3s", "")],
    );
    let first = trace_steps(&text)
        .into_iter()
        .find(|s| s["result"] == "progress.request")
        .expect("a progress request");
    assert_eq!(first["t_ns"], 3_003_000_000u64, "{first}");
    assert_eq!(result(&run(&text), 1)["served_from"], "cache");
}

fn apiserver(r: &Value, field: &str) -> u64 {
    r["apiservers"][0][field].as_u64().unwrap()
}

/// Row 8. `cacher/delegator.go NewCacheDelegator` starts `consistency.Checker` when
/// `DetectCacheInconsistency` is on (beta, on since 1.34); `consistency/checker.go Run` waits
/// `Jitter(5m, 0.5)` before the first check and `CalculateDigests` lists etcd at the cache's RV
/// in pages of 10 000 (`checkerListPageSize`). Over 8 minutes each of the two cached resources
/// is checked exactly once (the second check is at least 10 minutes in): 2 etcd pages, which
/// read the 3 pods (1 KiB each, the `[[resources]]` default) again. The 1.31 profile has no
/// checker.
#[test]
fn the_cache_consistency_checker_rereads_every_cached_resource_from_etcd_from_1_34() {
    let new = run(&scenario("1.37", "8m", &[]));
    let old = run(&scenario("1.31", "8m", &[]));
    assert_eq!(apiserver(&new, "consistency_check_pages"), 2);
    assert_eq!(apiserver(&old, "consistency_check_pages"), 0);
    assert_eq!(
        new["etcd"]["range_requests"].as_u64().unwrap(),
        old["etcd"]["range_requests"].as_u64().unwrap() + 2
    );
    assert_eq!(
        apiserver(&new, "etcd_read_bytes"),
        apiserver(&old, "etcd_read_bytes") + 3 * 1024
    );
    // Before 5 minutes nothing is checked.
    let early = run(&scenario("1.37", "299s", &[]));
    assert_eq!(apiserver(&early, "consistency_check_pages"), 0);
}

/// Issue 19 item 3. `cacher/compactor.go`: every 15 s (`compactorPollPeriod`) the cacher drops
/// the snapshots below the compaction revision its etcd3 compactor knows
/// (`WatchCacheStorage.Compact` → `RemoveLess`). The apiserver's compactor (interval 1 min)
/// writes `compact_rev_key` at 60 s (revision 7, after the pod writes at 5 and 6) and compacts
/// at 7 on its next round at 120 s. A continuation of the LIST at RV 4 is served from the
/// snapshot at 125 s (the poll at 120 s ran before the compaction was known) and, after the poll
/// at 135 s dropped it, goes to etcd, which answers 410 for the compacted RV 4. Under 1.31 the
/// continuation always goes to etcd.
#[test]
fn snapshots_below_a_compaction_are_dropped_at_the_next_15s_poll() {
    // One continuation per run: a continuation continues the run's first LIST (RV 4).
    let run_at = |rules: &str, at: &str| {
        let steps = [
            list("10s", "limit = 1"),
            create("20s", "pods", "a"),
            create("30s", "pods", "b"),
            list(at, "continue = true"),
        ];
        let r = run(&scenario(rules, "150s", &steps).replace("\"0s\"", "\"1m\""));
        result(&r, 3)
    };
    let served = run_at("1.37", "125s");
    assert_eq!(served["served_from"], "cache", "{served}");
    assert_eq!(served["names"], json!(["pods-000001", "pods-000002"]));
    assert_eq!(run_at("1.37", "140s")["error"]["code"], 410);
    assert_eq!(run_at("1.31", "125s")["error"]["code"], 410);
}

fn get(at: &str, name: &str, extra: &str) -> String {
    step(
        at,
        &format!("op = \"api.get\"\nresource = \"pods\"\nname = \"{name}\"\n{extra}"),
    )
}

/// Issue 19 item 4, `api.get`. `cacher/delegator.go CacheDelegator.Get`: RV unset reads etcd;
/// with an RV a ready cache answers (`Cacher.Get` → `watch_cache.go WaitUntilFreshAndGet`), RV
/// "0" at once, RV=N once the cache reaches N (here 5, the pod created at 1 s) and otherwise 504
/// after 3 s with the cache's RV; a missing object is 404 (`storage.NewKeyNotFoundError` →
/// `pods "nope" not found`). With the cache off every GET reads etcd.
#[test]
fn get_reads_etcd_without_an_rv_and_the_fresh_enough_cache_with_one() {
    let steps = [
        create("1s", "pods", "web"),
        get("2s", "web", ""),
        get("2s", "web", "resource_version = \"0\""),
        get("2s", "web", "resource_version = \"5\""),
        get("2s", "web", "resource_version = \"50\""),
        get("2s", "nope", "resource_version = \"0\""),
        get("2s", "pods-000001", ""),
    ];
    let r = run(&scenario("1.37", "10s", &steps));
    let obj = |name: &str, rv: &str, from: &str| json!({"name": name, "namespace": "default", "resource_version": rv, "served_from": from});
    assert_eq!(result(&r, 1), obj("web", "5", "etcd"));
    assert_eq!(result(&r, 2), obj("web", "5", "cache"));
    assert_eq!(result(&r, 3), obj("web", "5", "cache"));
    assert_eq!(
        result(&r, 4)["error"],
        json!({"code": 504, "reason": "Timeout", "cause": "ResourceVersionTooLarge",
               "retry_after_seconds": 1,
               "message": "Timeout: Too large resource version: 50, current: 5"})
    );
    assert_eq!(
        result(&r, 5)["error"],
        json!({"code": 404, "reason": "NotFound", "message": "pods \"nope\" not found"})
    );
    assert_eq!(result(&r, 6), obj("pods-000001", "3", "etcd"));
    let off = run(&cache_off("1.37", "10s", &steps));
    assert_eq!(result(&off, 2), obj("web", "5", "etcd"));
    assert_eq!(result(&off, 4)["error"]["code"], 504);
}

/// `internalversion/validation validateWatchOptions`, wrapped by the handler in
/// `errors.NewInvalid` (found by the 1.31 oracle): with the WatchList gate off (the 1.31 profile)
/// a watch with sendInitialEvents gets the same 422 shape as every other ListOptions error.
#[test]
fn send_initial_events_without_watch_list_is_the_handlers_422() {
    let text = scenario(
        "1.31",
        "5s",
        &[watch("1s", "w", "send_initial_events = true")],
    )
    .replace("watch_list = true\n", "");
    assert_eq!(
        result(&run(&text), 0),
        json!({"error": {"code": 422, "reason": "Invalid", "cause": "FieldValueForbidden",
               "message": "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: \
                           sendInitialEvents is forbidden for watch unless the WatchList feature \
                           gate is enabled"}})
    );
}

/// `cache_watcher.go processInterval`: since 1.32 (commit "processInterval sets RV from the
/// snapshot") a watcher sent the current state starts its bookmark floor at the state's RV
/// (`cacheInterval.resourceVersion`); in 1.31 at the RV its initial events carry (the state's RV,
/// `watch_cache_interval.go newCacheIntervalFromStore`), or the requested RV (0) when the state is
/// empty (found by the 1.31 oracle). An RV "0" watch of the empty configmaps (cache RV 4)
/// therefore gets a BOOKMARK 4 a minute in under 1.31 and nothing under 1.37.
#[test]
fn the_bookmark_floor_of_an_empty_initial_state_is_zero_in_1_31_and_the_state_rv_from_1_32() {
    let w = step(
        "1s",
        "op = \"api.watch\"\nid = \"w\"\nresource = \"configmaps\"\nresource_version = \"0\"\n\
         bookmarks = true\ntimeout = \"70s\"",
    );
    let old = scenario("1.31", "80s", std::slice::from_ref(&w)).replace("watch_list = true\n", "");
    assert_eq!(
        events(&run(&old), "w"),
        vec![bookmark("4"), bookmark("4"), json!({"type": "CLOSED"})]
    );
    let new = run(&scenario("1.37", "80s", &[w]));
    assert_eq!(
        events(&new, "w"),
        vec![
            json!({"type": "BOOKMARK", "resource_version": "4", "initial_events_end": true}),
            json!({"type": "CLOSED"})
        ]
    );
}

/// `storage/etcd3/store.go GetList` → `listReadError` (1.34+): a LIST pinned above etcd's
/// revision (Exact here) fails in etcd with its future-revision error; the store then reads the
/// current revision (`GetCurrentResourceVersion`) and answers 504 "Too large resource version:
/// N, current: C" without Retry-After. Before 1.34 (`interpretListError` knows only
/// ErrCompacted) the error reaches the handler as it is: a 500 with etcd's text and no reason
/// (`responsewriters.ErrorToAPIStatus`). Cache off, so the LIST goes to etcd: etcd is at 4.
#[test]
fn an_exact_list_above_etcd_is_504_with_etcd_revision_from_1_34_and_500_before() {
    let steps = [list("2s", "resource_version = \"50\"\nmatch = \"Exact\"")];
    let new = run(&cache_off("1.37", "10s", &steps));
    assert_eq!(
        result(&new, 0),
        json!({"error": {"code": 504, "reason": "Timeout", "cause": "ResourceVersionTooLarge",
            "message": "Timeout: Too large resource version: 50, current: 4"}})
    );
    let old = run(&cache_off("1.31", "10s", &steps));
    assert_eq!(
        result(&old, 0),
        json!({"error": {"code": 500, "reason": "",
            "message": "etcdserver: mvcc: required revision is a future revision"}})
    );
}

/// `storage/etcd3/event.go parseEvent` with etcd's `v3rpc/watch.go sendLoop`: etcd reads an
/// event's `prev_kv` at its revision - 1 as it sends it; a watch from exactly the compact
/// revision replays the update at that revision, whose previous version is compacted, so the
/// event has no `prev_kv`; the etcd3 watcher refuses it and ends the stream with a 500
/// (`watcher.go sendError`, `errors.NewInternalError`). Cache off: pods-000000 (rev 2) updated
/// at 5, compaction at 5, watch from RV 4 (its first revision is 5).
#[test]
fn a_cache_off_watch_from_the_compact_revision_ends_with_the_prev_kv_500() {
    let steps = [
        step(
            "1s",
            "op = \"api.update\"\nresource = \"pods\"\nname = \"pods-000000\"",
        ),
        step("2s", "op = \"fault.compact_now\""),
        watch("3s", "w", "resource_version = \"4\""),
        watch("3s", "after", "resource_version = \"5\""),
    ];
    let r = run(&cache_off("1.37", "10s", &steps));
    assert_eq!(
        events(&r, "w"),
        [
            json!({"type": "ERROR", "code": 500, "reason": "InternalError", "cause": "",
                "message": "Internal error occurred: etcd event received with PrevKv=nil \
                    (key=\"/registry/pods/default/pods-000000\", modRevision=5, type=PUT)"}),
            json!({"type": "CLOSED"}),
        ]
    );
    // From the compact revision on, nothing needs a compacted prev_kv.
    assert_eq!(events(&r, "after"), Vec::<Value>::new());
}

/// `storage/cacher/cacher.go dispatchEvents` before v0.31 (found by the 1.27 oracle): the
/// dispatcher's `lastProcessedResourceVersion` starts at 0 and the cacher's LIST does not set
/// it; a bookmark tick while it is 0 pops the due watchers (`popExpiredWatchers`) and files them
/// nowhere again, so a watch whose first bookmark falls due before the cacher's first event never
/// gets one. From v0.31 the LIST sets it. A watch from RV 4 at 10 s, a pod created at 75 s (5):
/// at 70 s nothing newer than 4 (1.31: re-filed, BOOKMARK 5 at 130 s; 1.27: dropped).
#[test]
fn a_1_27_watch_whose_bookmark_falls_due_before_the_first_event_never_gets_one() {
    let steps = [
        watch("10s", "w", "resource_version = \"4\"\nbookmarks = true"),
        create("75s", "pods", "x"),
    ];
    let old = run(&scenario("1.27", "150s", &steps));
    assert_eq!(events(&old, "w"), [added("x", "5")]);
    let new = run(&scenario("1.31", "150s", &steps));
    assert_eq!(events(&new, "w"), [added("x", "5"), bookmark("5")]);
}

/// `cache_watcher.go processInterval` before v0.32 (found by the 1.27 and 1.31 oracles): the
/// bookmark floor of a watch sent the current state is the RV of the interval's events, and the
/// interval is the whole store, before the watcher's filter; so a namespace (or selector) that
/// matches nothing still raises it to the state's RV (4), and a quiet watch gets no bookmark.
#[test]
fn before_1_32_a_state_the_scope_filters_out_still_raises_the_bookmark_floor() {
    let steps = [watch(
        "1s",
        "w",
        "resource_version = \"0\"\nbookmarks = true\nnamespace = \"a\"",
    )];
    let r = run(&scenario("1.31", "100s", &steps));
    // (`scenario` turns WatchList on: the RV "0" watch is a streaming list, whose end bookmark
    // comes first; no periodic BOOKMARK 4 follows at 61 s.)
    let end = json!({"type": "BOOKMARK", "resource_version": "4", "initial_events_end": true});
    assert_eq!(events(&r, "w"), [end]);
}

/// `storage/cacher/watch_cache.go` v0.31 (found by the 1.31 oracle with selectors): `matchesSingle`
/// ignores `Recursive`, so a whole-resource watch with an exact `metadata.name` field selector
/// (the registry cannot narrow it without a namespace) looks its prefix up as an object key and
/// gets no initial state; v0.32 (commit 8a764cf9c) checks `Recursive`.
#[test]
fn a_1_31_whole_resource_watch_with_an_exact_name_gets_no_initial_state() {
    let steps = [watch(
        "1s",
        "w",
        "resource_version = \"0\"\nfield_selector = \"metadata.name=pods-000001\"",
    )];
    let old = run(&scenario("1.31", "10s", &steps));
    assert_eq!(events(&old, "w"), Vec::<Value>::new());
    let new = run(&scenario("1.37", "10s", &steps));
    assert_eq!(events(&new, "w")[..1], [added("pods-000001", "3")]);
}
