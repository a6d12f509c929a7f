//! Label and field selectors on scripted LISTs and WATCHes (issue 19 item 4), as scripted
//! scenarios. Each test names the rule and cites the Kubernetes source it follows (paths under
//! staging/src/k8s.io/). Expected values are worked out by hand from the scenario's revisions,
//! never copied from a run.
//!
//! Revision bookkeeping: etcd starts at revision 1; `[[resources]] count = 3` preloads
//! `pods-000000..2` (no labels) at revisions 2, 3, 4.

use serde_json::{Value, json};

fn run(text: &str) -> Value {
    let report = watchsim::sim::run_str("test.toml", text, &[], None).expect("scenario runs");
    serde_json::to_value(report).unwrap()
}

fn result(r: &Value, i: usize) -> Value {
    r["script"][i]["result"].clone()
}

/// A watch's events as `(type, name, resource_version)`.
fn events(r: &Value, id: &str) -> Vec<(String, String, String)> {
    r["watches"][id]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
            (s("type"), s("name"), s("resource_version"))
        })
        .collect()
}

fn ev(t: &str, name: &str, rv: u32) -> (String, String, String) {
    (t.into(), name.into(), rv.to_string())
}

fn scenario(extra: &str, steps: &[String]) -> String {
    let mut s = format!(
        "name = \"t\"\nduration = \"30s\"\n[apiserver]\ncompaction_interval = \"0s\"\n{extra}\n\
         [[resources]]\nname = \"pods\"\ncount = 3\n"
    );
    for st in steps {
        s.push_str(st);
    }
    s
}

fn step(at: &str, body: &str) -> String {
    format!("[[steps]]\nat = \"{at}\"\nresource = \"pods\"\n{body}\n")
}

fn write(at: &str, op: &str, name: &str, labels: Option<&str>) -> String {
    let labels = labels.map_or(String::new(), |l| format!("labels = {{ {l} }}\n"));
    step(
        at,
        &format!("op = \"api.{op}\"\nname = \"{name}\"\n{labels}"),
    )
}

fn names(v: &Value) -> Vec<String> {
    v["names"]
        .as_array()
        .map(|a| a.iter().map(|n| n.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// `storage/cacher/cache_watcher.go convertToWatchEvent` (cache on) and
/// `storage/etcd3/watcher.go transform` (cache off, with the `prev_kv` the watcher always asks
/// for): a watcher whose selector matches only the new object gets ADDED, only the old one
/// DELETED at the event's RV, both MODIFIED, neither nothing.
#[test]
fn label_changes_turn_into_added_and_deleted_on_a_selector_watch() {
    let steps = [
        step(
            "1s",
            "op = \"api.watch\"\nid = \"w\"\nresource_version = \"4\"\nlabel_selector = \"app=a\"",
        ),
        write("2s", "create", "x", Some("app = \"b\"")), // 5: app=b, not selected
        write("3s", "update", "x", Some("app = \"a\"")), // 6: now selected: ADDED
        write("4s", "update", "x", None),                // 7: labels kept: MODIFIED
        write("5s", "update", "x", Some("app = \"b\"")), // 8: no longer selected: DELETED
        write("6s", "update", "x", Some("")),            // 9: no labels, still not selected
        write("7s", "update", "x", Some("app = \"a\"")), // 10: ADDED
        write("8s", "delete", "x", None),                // 11: DELETED
    ];
    let want = vec![
        ev("ADDED", "x", 6),
        ev("MODIFIED", "x", 7),
        ev("DELETED", "x", 8),
        ev("ADDED", "x", 10),
        ev("DELETED", "x", 11),
    ];
    for mode in ["dynamic", "off"] {
        let extra = format!("[apiserver.watch_cache]\nmode = \"{mode}\"");
        let r = run(&scenario(&extra, &steps));
        assert_eq!(events(&r, "w"), want, "watch cache {mode}");
    }
}

/// `cacher.go Watch` / `watch_cache.go getAllEventsSinceLocked`: the state a RV "0" watch or a
/// streaming list (`sendInitialEvents=true`) starts with is the selected objects only
/// (`cacheInterval` filters with the watcher's predicate); the end bookmark is at the cache's RV.
#[test]
fn initial_events_hold_only_the_selected_objects() {
    let steps = [
        write("1s", "create", "a1", Some("app = \"a\"")), // 5
        write("2s", "create", "b1", Some("app = \"b\"")), // 6
        step(
            "3s",
            "op = \"api.watch\"\nid = \"rv0\"\nresource_version = \"0\"\nlabel_selector = \"app\"",
        ),
        step(
            "3s",
            "op = \"api.watch\"\nid = \"list\"\nsend_initial_events = true\nbookmarks = true\n\
             resource_version = \"\"\nlabel_selector = \"!app\"\ntimeout = \"10s\"",
        ),
    ];
    let r = run(&scenario("", &steps));
    assert_eq!(
        events(&r, "rv0"),
        vec![ev("ADDED", "a1", 5), ev("ADDED", "b1", 6)]
    );
    let list = events(&r, "list");
    assert_eq!(
        list[..4],
        [
            ev("ADDED", "pods-000000", 2),
            ev("ADDED", "pods-000001", 3),
            ev("ADDED", "pods-000002", 4),
            ev("BOOKMARK", "", 6),
        ]
    );
}

/// `cacher.go GetList` (1.34+ snapshots for the continuation, `watch_cache.go
/// waitAndListExactRV`): `limit` counts selected objects; the continue key is the last selected
/// one and a page has more when any object (selected or not) follows it
/// (`hasMoreListItems = i < len(resp.Items)-1`), so the last page can be empty.
#[test]
fn a_selector_list_from_the_cache_pages_by_matches() {
    let steps = [
        write("1s", "create", "a1", Some("app = \"a\"")), // 5
        write("1s", "create", "a2", Some("app = \"a\"")), // 6
        write("1s", "create", "z", Some("app = \"b\"")),  // 7
        step(
            "2s",
            "op = \"api.list\"\nresource_version = \"0\"\nlabel_selector = \"app=a\"",
        ),
        step(
            "3s",
            "op = \"api.list\"\nresource_version = \"\"\nlimit = 1\nlabel_selector = \"app=a\"",
        ),
        step(
            "4s",
            "op = \"api.list\"\ncontinue = true\nlimit = 1\nlabel_selector = \"app=a\"",
        ),
        step(
            "5s",
            "op = \"api.list\"\ncontinue = true\nlimit = 1\nlabel_selector = \"app=a\"",
        ),
    ];
    let r = run(&scenario("", &steps));
    assert_eq!(names(&result(&r, 3)), ["a1", "a2"]);
    let first = result(&r, 4);
    assert_eq!(
        (names(&first), &first["continue"], &first["served_from"]),
        (
            vec!["a1".to_string()],
            &json!("7:/registry/pods/default/a1"),
            &json!("cache")
        )
    );
    let second = result(&r, 5);
    assert_eq!(
        (names(&second), &second["continue"], &second["served_from"]),
        (
            vec!["a2".to_string()],
            &json!("7:/registry/pods/default/a2"),
            &json!("cache")
        )
    );
    let last = result(&r, 6);
    assert_eq!((names(&last), &last["continue"]), (vec![], &json!("")));
}

/// `storage/etcd3/store.go GetList`: with a selector and a limit, etcd pages are read until
/// `limit` objects matched, each page twice as large as the last (1, 2, 4 keys here), at the
/// first page's revision. Watch cache off, so the LIST goes to etcd.
#[test]
fn a_selector_list_from_etcd_reads_doubling_pages_until_the_limit_matched() {
    let steps = [
        write("1s", "create", "a1", None),               // 5
        write("1s", "create", "z", Some("app = \"b\"")), // 6
        step(
            "2s",
            "op = \"api.list\"\nlimit = 1\nlabel_selector = \"app=b\"",
        ),
    ];
    let r = run(&scenario("[apiserver.watch_cache]\nmode = \"off\"", &steps));
    let got = result(&r, 2);
    // Pages: [a1], [pods-000000, pods-000001], [pods-000002, z]: z matches, the directory ends.
    assert_eq!(
        (names(&got), &got["continue"], &got["served_from"]),
        (vec!["z".to_string()], &json!(""), &json!("etcd"))
    );
    let etcd_reads = r["apiservers"][0]["etcd_read_bytes"].as_u64().unwrap();
    let cache_off_plain = run(&scenario(
        "[apiserver.watch_cache]\nmode = \"off\"",
        &[
            write("1s", "create", "a1", None),
            write("1s", "create", "z", Some("app = \"b\"")),
        ],
    ))["apiservers"][0]["etcd_read_bytes"]
        .as_u64()
        .unwrap();
    // Five objects read in three pages, each object's default size.
    let object_bytes = 1024;
    assert_eq!(etcd_reads - cache_off_plain, 5 * object_bytes);
}

/// `storage/cacher/delegator.go shouldDelegateListOnNotReadyCache`: while the cache is not ready
/// only a LIST with a limit and no label or field selector goes to etcd; with a selector the
/// cacher answers 429.
#[test]
fn a_selector_list_is_not_delegated_while_the_cache_is_not_ready() {
    let steps = [
        "[[steps]]\nat = \"2s\"\nop = \"fault.restart_apiserver\"\n".to_string(),
        step(
            "2s",
            "op = \"api.list\"\nlimit = 2\nlabel_selector = \"!app\"",
        ),
        step("2s", "op = \"api.list\"\nlimit = 2"),
    ];
    let r = run(&scenario("", &steps));
    assert_eq!(result(&r, 1)["error"]["code"], 429);
    assert_eq!(result(&r, 2)["served_from"], "etcd");
}

/// `registry/generic/registry/store.go ListPredicate`: an exact `metadata.name` field term in a
/// namespaced request (`MatchesSingle`; the namespace may come from an exact
/// `metadata.namespace` term, `MatchesSingleNamespace`) makes a single-key, non-recursive LIST,
/// which `cacher.go ShouldDelegateExactRV` always sends to etcd; without a namespace the key
/// cannot be built and the LIST stays a filtered whole-resource one, served from the cache's
/// snapshot (1.34+).
///
/// `etcd3/store.go resolveGetListRev`: a single-key LIST is never the legacy exact form.
#[test]
fn an_exact_name_in_a_namespace_is_a_single_key_list_that_exact_reads_send_to_etcd() {
    let exact = "resource_version = \"4\"\nmatch = \"Exact\"";
    let steps = [
        step(
            "2s",
            &format!(
                "op = \"api.list\"\n{exact}\nnamespace = \"default\"\nfield_selector = \"metadata.name=pods-000001\""
            ),
        ),
        step(
            "2s",
            &format!(
                "op = \"api.list\"\n{exact}\nfield_selector = \"metadata.namespace=default,metadata.name=pods-000001\""
            ),
        ),
        step(
            "2s",
            &format!("op = \"api.list\"\n{exact}\nfield_selector = \"metadata.name=pods-000001\""),
        ),
        step(
            "2s",
            &format!("op = \"api.list\"\n{exact}\nfield_selector = \"metadata.name!=pods-000001\""),
        ),
        // The legacy exact form (RV with a limit) is exact only for a recursive LIST
        // (`etcd3/store.go resolveGetListRev`): this single-key one reads the latest revision.
        step(
            "2s",
            "op = \"api.list\"\nresource_version = \"3\"\nlimit = 1\nnamespace = \"default\"\n\
             field_selector = \"metadata.name=pods-000001\"",
        ),
    ];
    let r = run(&scenario("", &steps));
    for (i, from) in [(0, "etcd"), (1, "etcd"), (2, "cache")] {
        let got = result(&r, i);
        assert_eq!(
            (names(&got), &got["served_from"]),
            (vec!["pods-000001".to_string()], &json!(from)),
            "step {i}"
        );
    }
    assert_eq!(names(&result(&r, 3)), ["pods-000000", "pods-000002"]);
    let legacy = result(&r, 4);
    assert_eq!(
        (
            names(&legacy),
            &legacy["resource_version"],
            &legacy["served_from"]
        ),
        (vec!["pods-000001".to_string()], &json!("4"), &json!("etcd"))
    );
}

/// Bad selectors and labels are refused when the scenario loads, naming the step's key.
#[test]
fn bad_selectors_and_labels_are_scenario_errors() {
    for (body, key, words) in [
        (
            "op = \"api.list\"\nfield_selector = \"spec.nodeName=n1\"",
            "steps.0.field_selector",
            "field label not supported: spec.nodeName",
        ),
        (
            "op = \"api.watch\"\nid = \"w\"\nlabel_selector = \"app in a\"",
            "steps.0.label_selector",
            "set must be written",
        ),
        (
            "op = \"api.create\"\nname = \"x\"\nlabels = { \"-bad\" = \"v\" }",
            "steps.0.labels.-bad",
            "invalid label key",
        ),
    ] {
        let text = scenario("", &[step("1s", body)]);
        let e = watchsim::scenario::load_str("t.toml", &text, &[]).unwrap_err();
        assert_eq!(e.key.as_deref(), Some(key), "{e}");
        assert!(e.message.contains(words), "{e}");
    }
}
