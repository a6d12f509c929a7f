//! Scenario loading through the public API: errors name file, key path and line exactly;
//! `--set` overrides; SPEC §2 defaults; units.

use proptest::prelude::*;
use watchsim::scenario::{
    Bytes, ClientScope, DurationNs, LoadBalancerPolicy, Scenario, ScenarioError, Step,
    WatchCacheMode, format_ns, load_file, load_str, parse_bytes, parse_duration,
};

const FILE: &str = "s.toml";

fn load(text: &str) -> Result<Scenario, ScenarioError> {
    load_str(FILE, text, &[])
}

fn load_with(text: &str, sets: &[&str]) -> Result<Scenario, ScenarioError> {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    load_str(FILE, text, &sets)
}

fn ok(text: &str) -> Scenario {
    load(text).unwrap_or_else(|e| panic!("expected the scenario to load, got: {e}"))
}

fn err(text: &str) -> ScenarioError {
    match load(text) {
        Ok(s) => panic!("expected an error, got {s:?}"),
        Err(e) => e,
    }
}

fn set_err(text: &str, sets: &[&str]) -> ScenarioError {
    match load_with(text, sets) {
        Ok(s) => panic!("expected an error, got {s:?}"),
        Err(e) => e,
    }
}

/// Asserts the error's file, key and line exactly, and that its message contains `words`.
#[track_caller]
fn assert_at(e: &ScenarioError, file: &str, key: Option<&str>, line: Option<usize>, words: &str) {
    assert_eq!(
        (e.file.as_str(), e.key.as_deref(), e.line),
        (file, key, line),
        "error was: {e}"
    );
    assert!(
        e.message.contains(words),
        "message {:?} lacks {words:?}",
        e.message
    );
}

/// Asserts an error in the scenario file `FILE` at `key` and `line`.
#[track_caller]
fn in_file(e: &ScenarioError, key: &str, line: usize, words: &str) {
    assert_at(e, FILE, Some(key), Some(line), words);
}

/// Asserts an error caused by a `--set` override at `key` (no line).
#[track_caller]
fn in_set(e: &ScenarioError, key: &str, words: &str) {
    assert_at(e, "--set", Some(key), None, words);
}

/// A valid scenario: one resource, one client population of 3, one apiserver.
const BASE: &str = r#"name = "t"
[[resources]]
name = "pods"
[[clients]]
name = "kubelet"
resource = "pods"
count = 3
"#;

fn base_plus(extra: &str) -> String {
    format!("{BASE}{extra}")
}

// ---- parse errors -------------------------------------------------------------------------

#[test]
fn unknown_top_level_key_names_key_and_line() {
    let e = err("name = \"t\"\n\nnmae = \"x\"\n");
    in_file(&e, "nmae", 3, "unknown key `nmae`");
    assert!(
        e.message.contains("`name`"),
        "lists the expected keys: {}",
        e.message
    );
}

#[test]
fn unknown_nested_key_names_dotted_path_and_line() {
    let e = err("name = \"t\"\n[apiserver.watch_cache]\nmode = \"fixed\"\ncapasity = 10\n");
    in_file(
        &e,
        "apiserver.watch_cache.capasity",
        4,
        "unknown key `capasity`",
    );
    assert!(e.message.contains("`capacity`"), "{}", e.message);
}

#[test]
fn unknown_key_in_step_names_path_and_line() {
    let text = r#"name = "t"
[[steps]]
at = "1s"
op = "etcd.put"
key = "/a"
[[steps]]
at = "2s"
op = "etcd.put"
key = "/b"
[[steps]]
at = "3s"
op = "etcd.put"
keyy = "/c"
"#;
    let e = err(text);
    in_file(&e, "steps.2.keyy", 13, "unknown key `keyy`");
    assert!(e.message.contains("`key`"), "{}", e.message);
}

#[test]
fn unknown_key_in_inline_step_table_names_path_and_line() {
    let text = "name = \"t\"\nsteps = [\n  { at = \"1s\", op = \"fault.heal\" },\n  { at = \"2s\", op = \"fault.heal\", server = 0 },\n]\n";
    let e = err(text);
    in_file(&e, "steps.1.server", 4, "unknown key `server`");
}

#[test]
fn malformed_duration_names_key_line_and_unit() {
    let e = err("name = \"t\"\nduration = \"5 parsecs\"\n");
    in_file(&e, "duration", 2, "unknown unit \"parsecs\"");
}

#[test]
fn malformed_duration_in_step_names_step_key() {
    let e = err("name = \"t\"\n[[steps]]\nop = \"fault.heal\"\nat = 5\n");
    in_file(&e, "steps.0.at", 4, "invalid type: integer `5`");
}

#[test]
fn missing_name_is_a_missing_required_key() {
    let e = err("seed = 3\n");
    assert_at(&e, FILE, Some("name"), None, "missing required key");
}

#[test]
fn missing_step_field_points_at_the_step_header() {
    let e = err("name = \"t\"\n\n[[steps]]\nop = \"etcd.put\"\nat = \"1s\"\n");
    in_file(&e, "steps.0.key", 3, "missing required key");
}

#[test]
fn missing_step_op_lists_valid_ops() {
    let e = err("name = \"t\"\n[[steps]]\nat = \"1s\"\n");
    in_file(&e, "steps.0.op", 2, "missing required key");
    assert!(e.message.contains("`etcd.put`"), "{}", e.message);
}

#[test]
fn unknown_op_names_steps_n_op_and_lists_valid_ops() {
    let e = err("name = \"t\"\n[[steps]]\nat = \"1s\"\nop = \"etcd.putt\"\n");
    in_file(&e, "steps.0.op", 4, "unknown op `etcd.putt`");
    for op in Step::OPS {
        assert!(
            e.message.contains(&format!("`{op}`")),
            "{op} missing from {}",
            e.message
        );
    }
}

#[test]
fn unknown_enum_value_names_key_and_choices() {
    let e = err("name = \"t\"\n[load_balancer]\npolicy = \"round_robin\"\n");
    in_file(&e, "load_balancer.policy", 3, "unknown value `round_robin`");
    assert!(e.message.contains("`round-robin`"), "{}", e.message);
}

#[test]
fn toml_syntax_error_gives_file_and_line() {
    let e = err("name = \"t\"\n[etcd]\nmax_request_bytes = = 3\n");
    assert_at(&e, FILE, None, Some(3), "");
}

#[test]
fn duplicate_key_is_a_syntax_error_with_line() {
    let e = err("name = \"t\"\nseed = 1\nseed = 2\n");
    assert_at(&e, FILE, None, Some(3), "");
}

#[test]
fn wrong_type_names_key_and_line() {
    let e = err("name = \"t\"\n[apiserver]\ncount = \"two\"\n");
    in_file(&e, "apiserver.count", 3, "invalid type");
}

#[test]
fn negative_page_size_is_refused_with_key_and_line() {
    let e = err(&base_plus("page_size = -1\n"));
    in_file(&e, "clients.0.page_size", 8, "-1");
}

#[test]
fn negative_size_is_refused() {
    let e = err("name = \"t\"\n[etcd]\nmax_request_bytes = -5\n");
    in_file(&e, "etcd.max_request_bytes", 3, "negative");
}

#[test]
fn error_display_is_file_line_key_message() {
    let e = err("name = \"t\"\nduration = \"5\"\n");
    assert_eq!(
        e.to_string(),
        format!("{FILE}:2: key `duration`: {}", e.message)
    );
}

#[test]
fn load_file_names_an_unreadable_file() {
    let path = std::path::Path::new("/nonexistent/watchsim/x.toml");
    let e = load_file(path, &[]).expect_err("no such file");
    assert_at(
        &e,
        "/nonexistent/watchsim/x.toml",
        None,
        None,
        "cannot read",
    );
}

#[test]
fn load_file_keeps_text_and_overrides() {
    let dir = std::env::temp_dir().join(format!("watchsim-scenario-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("a.toml");
    std::fs::write(&path, BASE).expect("write");
    let sets = vec!["seed=7".to_string()];
    let loaded = load_file(&path, &sets).expect("loads");
    assert_eq!(loaded.text, BASE);
    assert_eq!(loaded.overrides, sets);
    assert_eq!(loaded.scenario.seed, 7);
    assert_eq!(loaded.origin, path.display().to_string());
    std::fs::write(&path, "name = \"t\"\nbogus = 1\n").expect("write");
    let e = load_file(&path, &[]).expect_err("unknown key");
    assert_at(
        &e,
        &path.display().to_string(),
        Some("bogus"),
        Some(2),
        "unknown key",
    );
    std::fs::remove_dir_all(&dir).ok();
}

// ---- impossible values --------------------------------------------------------------------

#[test]
fn apiserver_count_zero_is_refused() {
    let e = err("name = \"t\"\n[apiserver]\ncount = 0\n");
    in_file(&e, "apiserver.count", 3, "at least 1");
}

#[test]
fn watch_cache_lower_above_upper_is_refused() {
    let e = err("name = \"t\"\n[apiserver.watch_cache]\nlower = 500\nupper = 400\n");
    in_file(
        &e,
        "apiserver.watch_cache.lower",
        3,
        "must not exceed upper (400)",
    );
}

#[test]
fn watch_cache_lower_zero_is_refused() {
    let e = err("name = \"t\"\napiserver.watch_cache.lower = 0\n");
    in_file(&e, "apiserver.watch_cache.lower", 2, "at least 1");
}

#[test]
fn fixed_watch_cache_capacity_zero_is_refused_but_ignored_when_dynamic() {
    let e = err("name = \"t\"\n[apiserver.watch_cache]\nmode = \"fixed\"\ncapacity = 0\n");
    in_file(&e, "apiserver.watch_cache.capacity", 4, "at least 1");
    ok("name = \"t\"\n[apiserver.watch_cache]\nmode = \"dynamic\"\ncapacity = 0\n");
}

#[test]
fn goaway_chance_outside_zero_one_is_refused() {
    let e = err("name = \"t\"\n[load_balancer]\ngoaway_chance = 1.5\n");
    in_file(&e, "load_balancer.goaway_chance", 3, "[0, 1]");
    let e = err("name = \"t\"\n[load_balancer]\ngoaway_chance = nan\n");
    in_file(&e, "load_balancer.goaway_chance", 3, "[0, 1]");
    ok("name = \"t\"\n[load_balancer]\ngoaway_chance = 1\n");
}

#[test]
fn negative_or_infinite_rates_are_refused() {
    let e = err(&base_plus(
        "[[workload]]\nresource = \"pods\"\nkind = \"update\"\nrate = -1.0\n",
    ));
    in_file(&e, "workload.0.rate", 11, ">= 0");
    let e = err("name = \"t\"\n[faults]\nwatch_disconnect_rate = inf\n");
    in_file(&e, "faults.watch_disconnect_rate", 3, "finite");
    let e = err("name = \"t\"\n[bounds]\nrelists_per_client_hour = -0.5\n");
    in_file(&e, "bounds.relists_per_client_hour", 3, ">= 0");
}

#[test]
fn zero_duration_is_refused() {
    let e = err("name = \"t\"\nduration = \"0s\"\n");
    in_file(&e, "duration", 2, "greater than 0s");
}

#[test]
fn client_resource_must_be_declared() {
    let e = err(
        "name = \"t\"\n[[resources]]\nname = \"pods\"\n[[clients]]\nname = \"c\"\nresource = \"nodes\"\n",
    );
    in_file(&e, "clients.0.resource", 6, "unknown resource `nodes`");
    assert!(e.message.contains("`pods`"), "{}", e.message);
}

#[test]
fn workload_resource_must_be_declared() {
    let e = err(&base_plus(
        "[[workload]]\nresource = \"leases\"\nkind = \"churn\"\nrate = 1.0\n",
    ));
    in_file(&e, "workload.0.resource", 9, "unknown resource `leases`");
}

#[test]
fn resource_names_must_be_unique() {
    let e = err(&base_plus("[[resources]]\nname = \"pods\"\n"));
    in_file(&e, "resources.1.name", 9, "duplicate resource `pods`");
}

#[test]
fn client_names_must_be_unique() {
    let e = err(&base_plus(
        "[[clients]]\nname = \"kubelet\"\nresource = \"pods\"\n",
    ));
    in_file(&e, "clients.1.name", 9, "duplicate client `kubelet`");
}

#[test]
fn list_rv_must_be_zero_empty_or_an_integer() {
    for bad in ["abc", "-1", "1.5", " 1"] {
        let e = err(&base_plus(&format!("list_rv = \"{bad}\"\n")));
        in_file(&e, "clients.0.list_rv", 8, "\"0\"");
    }
    for good in ["0", "", "123"] {
        let s = ok(&base_plus(&format!("list_rv = \"{good}\"\n")));
        assert_eq!(s.clients[0].list_rv, good);
    }
}

#[test]
fn fault_server_must_be_below_apiserver_count() {
    let text = "name = \"t\"\n[apiserver]\ncount = 2\n[[faults.at]]\nat = \"1m\"\nkind = \"restart_apiserver\"\nserver = 2\n";
    let e = err(text);
    in_file(
        &e,
        "faults.at.0.server",
        7,
        "apiserver index 2 does not exist",
    );
    ok(&text.replace("server = 2", "server = 1"));
}

#[test]
fn restart_client_fault_requires_client() {
    let e = err(&base_plus(
        "[[faults.at]]\nat = \"1m\"\nkind = \"restart_client\"\n",
    ));
    in_file(&e, "faults.at.0.client", 8, "requires `client`");
}

#[test]
fn restart_client_fault_names_an_existing_instance() {
    let text = base_plus(
        "[[faults.at]]\nat = \"1m\"\nkind = \"restart_client\"\nclient = \"kubelet-3\"\n",
    );
    let e = err(&text);
    in_file(&e, "faults.at.0.client", 11, "not a client instance");
    let s = ok(&text.replace("kubelet-3", "kubelet-2"));
    assert_eq!(s.faults.at[0].client.as_deref(), Some("kubelet-2"));
}

#[test]
fn client_key_on_other_faults_is_refused() {
    let e = err(&base_plus(
        "[[faults.at]]\nat = \"1m\"\nkind = \"heal\"\nclient = \"kubelet-0\"\n",
    ));
    in_file(&e, "faults.at.0.client", 11, "only restart_client");
}

#[test]
fn step_after_duration_is_refused_at_its_at() {
    let e = err("name = \"t\"\nduration = \"1m\"\n[[steps]]\nop = \"fault.heal\"\nat = \"61s\"\n");
    in_file(&e, "steps.0.at", 5, "after the end of the run");
    ok("name = \"t\"\nduration = \"1m\"\n[[steps]]\nop = \"fault.heal\"\nat = \"60s\"\n");
}

#[test]
fn api_step_server_must_be_below_apiserver_count() {
    let e = err(&base_plus(
        "[[steps]]\nat = \"1s\"\nop = \"api.list\"\nresource = \"pods\"\nserver = 1\n",
    ));
    in_file(&e, "steps.0.server", 12, "apiserver index 1 does not exist");
}

#[test]
fn api_step_resource_must_be_declared() {
    let e = err(&base_plus(
        "[[steps]]\nat = \"1s\"\nop = \"api.create\"\nresource = \"pod\"\nname = \"a\"\n",
    ));
    in_file(&e, "steps.0.resource", 11, "unknown resource `pod`");
}

#[test]
fn etcd_cancel_of_unknown_watch_is_refused() {
    let e = err("name = \"t\"\n[[steps]]\nat = \"1s\"\nop = \"etcd.cancel\"\nid = \"w\"\n");
    in_file(&e, "steps.0.id", 5, "no etcd.watch with id `w`");
}

#[test]
fn cancel_before_its_watch_runs_is_refused_even_if_later_in_file_order() {
    // The cancel comes after the watch in the file but runs before it (at 1s < 2s).
    let text = r#"name = "t"
[[steps]]
at = "2s"
op = "etcd.watch"
id = "w"
key = "/a"
[[steps]]
at = "1s"
op = "etcd.cancel"
id = "w"
"#;
    let e = err(text);
    in_file(&e, "steps.1.id", 10, "opened later, by steps.0 at 2s");
    ok(&text.replace("at = \"1s\"", "at = \"2s\""));
}

#[test]
fn etcd_progress_needs_an_etcd_watch_not_an_api_watch() {
    let text = base_plus(
        "[[steps]]\nat = \"1s\"\nop = \"api.watch\"\nid = \"w\"\nresource = \"pods\"\n\
         [[steps]]\nat = \"2s\"\nop = \"etcd.progress\"\nid = \"w\"\n",
    );
    let e = err(&text);
    in_file(&e, "steps.1.id", 16, "needs an etcd.watch id");
}

#[test]
fn api_unwatch_needs_an_api_watch() {
    let text = "name = \"t\"\n[[steps]]\nat = \"1s\"\nop = \"etcd.watch\"\nid = \"w\"\nkey = \"/a\"\n\
                [[steps]]\nat = \"2s\"\nop = \"api.unwatch\"\nid = \"w\"\n";
    let e = err(text);
    in_file(&e, "steps.1.id", 10, "needs an api.watch id");
}

#[test]
fn watch_ids_must_be_unique() {
    let text = base_plus(
        "[[steps]]\nat = \"1s\"\nop = \"etcd.watch\"\nid = \"w\"\nkey = \"/a\"\n\
         [[steps]]\nat = \"2s\"\nop = \"api.watch\"\nid = \"w\"\nresource = \"pods\"\n",
    );
    let e = err(&text);
    in_file(&e, "steps.1.id", 16, "duplicate watch id `w`");
}

#[test]
fn etcd_keys_must_not_be_empty() {
    let e = err("name = \"t\"\n[[steps]]\nat = \"1s\"\nop = \"etcd.put\"\nkey = \"\"\n");
    in_file(&e, "steps.0.key", 5, "must not be empty");
}

#[test]
fn max_request_bytes_zero_is_refused() {
    let e = err("name = \"t\"\n[etcd]\nmax_request_bytes = 0\n");
    in_file(&e, "etcd.max_request_bytes", 3, "at least 1");
}

#[test]
fn progress_notify_interval_below_etcd_minimum_is_refused() {
    let e = err("name = \"t\"\n[etcd]\nprogress_notify_interval = \"50ms\"\n");
    in_file(&e, "etcd.progress_notify_interval", 3, "minimum of 100ms");
    for good in ["0s", "100ms", "5s"] {
        let s = ok(&format!(
            "name = \"t\"\n[etcd]\nprogress_notify_interval = \"{good}\"\n"
        ));
        assert_eq!(
            s.etcd.progress_notify_interval,
            parse_duration(good).expect("valid")
        );
    }
}

#[test]
fn bookmark_interval_zero_is_refused() {
    let e = err("name = \"t\"\n[apiserver]\nbookmark_interval = \"0s\"\n");
    in_file(&e, "apiserver.bookmark_interval", 3, "greater than 0s");
}

// ---- steps ----------------------------------------------------------------------------------

#[test]
fn steps_keep_file_order_and_run_by_at_with_ties_in_file_order() {
    let text = r#"name = "t"
[[steps]]
at = "3s"
op = "etcd.put"
key = "/c"
[[steps]]
at = "1s"
op = "etcd.put"
key = "/a"
[[steps]]
at = "3s"
op = "etcd.delete"
key = "/c"
[[steps]]
at = "1s"
op = "fault.compact_now"
"#;
    let s = ok(text);
    let ops: Vec<&str> = s.steps.iter().map(Step::op_name).collect();
    assert_eq!(
        ops,
        ["etcd.put", "etcd.put", "etcd.delete", "fault.compact_now"]
    );
    let order: Vec<usize> = s.steps_in_order().into_iter().map(|(i, _)| i).collect();
    assert_eq!(order, [1, 3, 0, 2]);
    assert_eq!(s.steps[0].at(), DurationNs::from_secs(3));
    assert_eq!(
        s.steps[1],
        Step::EtcdPut {
            at: DurationNs::from_secs(1),
            key: "/a".into(),
            value_bytes: Bytes(100)
        }
    );
}

#[test]
fn step_defaults_follow_spec_section_3() {
    let text = base_plus(
        "[[steps]]\nat = \"1s\"\nop = \"api.create\"\nresource = \"pods\"\nname = \"a\"\n\
         [[steps]]\nat = \"1s\"\nop = \"api.list\"\nresource = \"pods\"\nmatch = \"Exact\"\nresource_version = \"0\"\ncontinue = true\n\
         [[steps]]\nat = \"1s\"\nop = \"etcd.range\"\nkey = \"/registry/pods/\"\nprefix = true\n",
    );
    let s = ok(&text);
    assert_eq!(
        s.steps[0],
        Step::ApiCreate {
            at: DurationNs::from_secs(1),
            resource: "pods".into(),
            name: "a".into(),
            namespace: "default".into(),
            object_bytes: None,
            labels: None,
        }
    );
    assert!(matches!(
        &s.steps[1],
        Step::ApiList { server: 0, resource_version: Some(rv), match_: Some(_), limit: None, continue_: true, .. } if rv == "0"
    ));
    assert!(matches!(
        &s.steps[2],
        Step::EtcdRange {
            prefix: true,
            revision: 0,
            limit: 0,
            ..
        }
    ));
}

#[test]
fn spec_section_2_example_loads() {
    let text = r#"
name = "relist-storm"          # required
description = "..."            # what this scenario demonstrates
seed = 1
duration = "30m"               # virtual time

[etcd]
progress_notify_interval = "10m"
max_request_bytes = 1572864

[apiserver]
count = 1
compaction_interval = "5m"
consistent_list_from_cache = true
watch_list = false
bookmark_interval = "1m"

[apiserver.watch_cache]
mode = "dynamic"
capacity = 100
lower = 100
upper = 102400
fresh = "75s"

[load_balancer]
policy = "round-robin"
goaway_chance = 0.0

[[resources]]
name = "pods"
count = 1000
object_bytes = 10240

[[clients]]
name = "kubelet"
count = 100
resource = "pods"
scope = "per-node"
list_rv = "0"
page_size = 500
bookmarks = true
watch_list = false

[[workload]]
resource = "pods"
kind = "update"
rate = 20.0

[faults]
watch_disconnect_rate = 0.0
disconnect_duration = "5s"
[[faults.at]]
at = "10m"
kind = "restart_apiserver"
server = 0
for = "30s"

[bounds]
relists_per_client_hour = 1.0
max_staleness = "10s"

[[steps]]
at = "1s"
op = "etcd.put"
key = "/registry/pods/default/a"
"#;
    let s = ok(text);
    assert_eq!(s.name, "relist-storm");
    assert_eq!(s.clients[0].scope, ClientScope::PerNode);
    assert_eq!(s.resources[0].object_bytes, Bytes(10240));
    assert_eq!(s.faults.at[0].for_, Some(DurationNs::from_secs(30)));
    assert_eq!(s.bounds.max_staleness, Some(DurationNs::from_secs(10)));
    assert_eq!(s.steps.len(), 1);
}

/// A scenario that uses every section, for mutation.
fn full_scenario() -> String {
    base_plus(
        r#"[[workload]]
resource = "pods"
kind = "churn"
rate = 5.0
[apiserver]
count = 2
watch_cache = { mode = "fixed", capacity = 50 }
[[faults.at]]
at = "10s"
kind = "restart_client"
client = "kubelet-1"
[[steps]]
at = "1s"
op = "etcd.watch"
id = "w"
key = "/registry/pods/"
prefix = true
[[steps]]
at = "2s"
op = "api.watch"
id = "a"
server = 1
resource = "pods"
[[steps]]
at = "3s"
op = "etcd.cancel"
id = "w"
"#,
    )
}

#[test]
fn full_scenario_loads() {
    let s = ok(&full_scenario());
    assert_eq!(s.apiserver.watch_cache.mode, WatchCacheMode::Fixed);
    assert_eq!(s.steps.len(), 3);
}

#[test]
fn scenario_deserializes_directly_from_toml_too() {
    // Without the loader: `op`-tagged steps still read; a problem inside a step names its path
    // in the message.
    let s: Scenario = toml::from_str(&full_scenario()).expect("deserializes");
    assert_eq!(s.steps[2].op_name(), "etcd.cancel");
    let e = toml::from_str::<Scenario>(
        "name = \"t\"\n[[steps]]\nat = \"1s\"\nop = \"fault.heal\"\nx = 1\n",
    )
    .expect_err("unknown key");
    assert!(
        e.message().contains("key `steps.0.x`: unknown key `x`"),
        "{}",
        e.message()
    );
}

// ---- --set overrides ------------------------------------------------------------------------

#[test]
fn set_of_a_known_key_changes_the_value() {
    let s = load_with(
        BASE,
        &[
            "apiserver.watch_cache.capacity=1000",
            "apiserver.count=3",
            "seed=9",
        ],
    )
    .expect("loads");
    assert_eq!(s.apiserver.watch_cache.capacity, 1000);
    assert_eq!(s.apiserver.count, 3);
    assert_eq!(s.seed, 9);
}

#[test]
fn set_overrides_a_value_written_in_the_file_and_later_sets_win() {
    let text = "name = \"t\"\n[apiserver]\ncount = 2\n";
    let s = load_with(text, &["apiserver.count=4", "apiserver.count=5"]).expect("loads");
    assert_eq!(s.apiserver.count, 5);
}

#[test]
fn set_of_an_unknown_key_is_an_error_naming_set() {
    let e = set_err(BASE, &["apiserver.watch_cache.capasity=1000"]);
    in_set(
        &e,
        "apiserver.watch_cache.capasity",
        "unknown key `capasity`",
    );
    assert!(
        e.message
            .contains("--set apiserver.watch_cache.capasity=1000"),
        "{}",
        e.message
    );
}

#[test]
fn set_of_an_unknown_table_is_an_error_naming_set() {
    let e = set_err(BASE, &["bogus.inner=1"]);
    in_set(&e, "bogus", "unknown key `bogus`");
}

#[test]
fn set_of_an_unknown_key_in_a_step_is_an_error_naming_set() {
    let text = "name = \"t\"\n[[steps]]\nat = \"1s\"\nop = \"fault.heal\"\n";
    let e = set_err(text, &["steps.0.keyy=1"]);
    in_set(&e, "steps.0.keyy", "unknown key `keyy`");
}

#[test]
fn set_with_an_array_index_changes_that_entry() {
    let s = load_with(BASE, &["clients.0.list_rv=\"\"", "resources.0.count=7"]).expect("loads");
    assert_eq!(s.clients[0].list_rv, "");
    assert_eq!(s.resources[0].count, 7);
}

#[test]
fn set_with_a_missing_array_index_is_an_error() {
    let e = set_err(BASE, &["clients.1.list_rv=\"\""]);
    in_set(&e, "clients.1", "index `1` does not exist");
    let e = set_err("name = \"t\"\n", &["clients.0.list_rv=\"\""]);
    in_set(&e, "clients", "`clients` is not in the scenario");
}

#[test]
fn set_of_a_duration_string_needs_no_quotes() {
    let s = load_with(
        BASE,
        &[
            "etcd.progress_notify_interval=5s",
            "duration='90s'",
            "load_balancer.policy=random",
        ],
    )
    .expect("loads");
    assert_eq!(s.etcd.progress_notify_interval, DurationNs::from_secs(5));
    assert_eq!(s.duration, DurationNs::from_secs(90));
    assert_eq!(s.load_balancer.policy, LoadBalancerPolicy::Random);
}

#[test]
fn set_of_a_bad_value_names_set_not_the_file() {
    let text = "name = \"t\"\n[apiserver]\ncount = 2\n";
    let e = set_err(text, &["apiserver.count=0"]);
    in_set(&e, "apiserver.count", "at least 1");
    let e = set_err(text, &["duration=5parsecs"]);
    in_set(&e, "duration", "unknown unit");
}

#[test]
fn set_of_a_number_where_a_string_is_expected_hints_at_quoting() {
    let e = set_err(BASE, &["clients.0.list_rv=0"]);
    in_set(&e, "clients.0.list_rv", "invalid type");
    assert!(e.message.contains("quote"), "{}", e.message);
}

#[test]
fn set_can_fix_a_file_value_and_file_errors_keep_file_and_line() {
    let text = "name = \"t\"\nduration = \"5 parsecs\"\n";
    let s = load_with(text, &["duration=5m"]).expect("the override replaces the bad value");
    assert_eq!(s.duration, DurationNs::from_secs(300));
    let e = set_err(text, &["seed=2"]);
    in_file(&e, "duration", 2, "unknown unit");
}

#[test]
fn set_without_equals_is_an_error() {
    let e = set_err(BASE, &["apiserver.count"]);
    assert_at(&e, "--set", None, None, "expected KEY=VALUE");
    let e = set_err(BASE, &["=3"]);
    in_set(&e, "", "dotted path");
}

#[test]
fn set_below_a_scalar_is_an_error() {
    let e = set_err("name = \"t\"\nseed = 1\n", &["seed.x=1"]);
    in_set(
        &e,
        "seed.x",
        "`seed` holds a value of type integer, not a table",
    );
    // Absent from the file, `seed` is created as a table, which then has the wrong type.
    let e = set_err(BASE, &["seed.x=1"]);
    in_set(&e, "seed", "invalid type: map");
}

#[test]
fn set_of_a_whole_table_with_a_bad_key_names_set() {
    let e = set_err(BASE, &["apiserver={ count = 1, cuont = 2 }"]);
    in_set(&e, "apiserver.cuont", "unknown key `cuont`");
}

// ---- defaults and units -------------------------------------------------------------------

#[test]
fn defaults_equal_spec_section_2() {
    let s = ok(BASE);
    assert_eq!(s.seed, 1);
    assert_eq!(s.duration, DurationNs::from_secs(30 * 60));
    assert_eq!(s.settle, DurationNs::from_secs(120));
    assert_eq!(s.etcd.progress_notify_interval, DurationNs::from_secs(600));
    assert_eq!(s.etcd.max_request_bytes, Bytes(1_572_864));
    let a = &s.apiserver;
    assert_eq!(a.count, 1);
    assert_eq!(a.compaction_interval, DurationNs::from_secs(300));
    assert!(a.consistent_list_from_cache);
    // SPEC §2 was written when the default profile was 1.31 (`watch_list = false`); issue 19
    // made "1.37" the default, where the server's WatchList is on (since 1.34).
    assert_eq!(a.rules, watchsim::scenario::Rules::V1_37);
    assert_eq!(a.watch_list, Some(true), "on in the default 1.37 profile");
    assert_eq!(a.bookmark_interval, DurationNs::from_secs(60));
    let wc = &a.watch_cache;
    assert_eq!(wc.mode, WatchCacheMode::Dynamic);
    assert_eq!(
        (wc.capacity, wc.lower, wc.upper_bound()),
        (100, 100, 102_400)
    );
    assert_eq!(wc.fresh, DurationNs::from_secs(75));
    assert_eq!(s.load_balancer.policy, LoadBalancerPolicy::RoundRobin);
    assert_eq!(s.load_balancer.goaway_chance, 0.0);
    let c = &s.clients[0];
    assert_eq!(c.list_rv, "0");
    assert_eq!(c.page_size, 500);
    assert!(c.bookmarks);
    assert_eq!(
        c.watch_list,
        Some(true),
        "client-go's WatchListClient, on since 1.35, in the default 1.37 profile"
    );
    assert_eq!(s.faults.watch_disconnect_rate, 0.0);
    assert_eq!(s.faults.disconnect_duration, DurationNs::from_secs(5));
    assert!(s.faults.at.is_empty() && s.steps.is_empty() && s.workload.is_empty());
}

#[test]
fn durations_parse_with_units() {
    assert_eq!(parse_duration("250ms"), Ok(DurationNs::from_millis(250)));
    assert_eq!(parse_duration("5s"), Ok(DurationNs::from_secs(5)));
    assert_eq!(parse_duration("5m"), Ok(DurationNs::from_secs(300)));
    assert_eq!(parse_duration("1h"), Ok(DurationNs::from_secs(3600)));
    assert_eq!(parse_duration("1.5s"), Ok(DurationNs::from_millis(1500)));
    assert_eq!(parse_duration("0s"), Ok(DurationNs(0)));
    assert_eq!(parse_duration("7us"), Ok(DurationNs(7_000)));
    for bad in [
        "",
        "5",
        "s",
        "-5s",
        "5 parsecs",
        "1e3s",
        "1.2.3s",
        "99999999999999999999h",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn sizes_parse_with_units() {
    assert_eq!(parse_bytes("1.5MiB"), Ok(Bytes(1_572_864)));
    assert_eq!(parse_bytes("10KiB"), Ok(Bytes(10_240)));
    assert_eq!(parse_bytes("1GiB"), Ok(Bytes(1 << 30)));
    assert_eq!(parse_bytes("1kB"), Ok(Bytes(1_000)));
    assert_eq!(parse_bytes("100B"), Ok(Bytes(100)));
    assert_eq!(parse_bytes("42"), Ok(Bytes(42)));
    for bad in ["", "KiB", "-1KiB", "1 parsec", "1.5.5MiB"] {
        assert!(parse_bytes(bad).is_err(), "{bad:?} should be refused");
    }
    let s = ok("name = \"t\"\n[etcd]\nmax_request_bytes = \"1.5MiB\"\n");
    assert_eq!(s.etcd.max_request_bytes, Bytes(1_572_864));
}

#[test]
fn format_ns_uses_the_largest_exact_unit() {
    assert_eq!(format_ns(0), "0s");
    assert_eq!(format_ns(250_000_000), "250ms");
    assert_eq!(format_ns(90_000_000_000), "90s");
    assert_eq!(format_ns(3_600_000_000_000), "1h");
    assert_eq!(format_ns(1_500), "1500ns");
}

proptest! {
    #[test]
    fn format_ns_then_parse_duration_round_trips(ns in any::<u64>()) {
        prop_assert_eq!(parse_duration(&format_ns(ns)), Ok(DurationNs(ns)));
    }

    #[test]
    fn parse_duration_then_format_ns_round_trips(
        n in 0u64..1_000_000,
        unit in prop::sample::select(vec!["ns", "us", "ms", "s", "m", "h"]),
    ) {
        let d = parse_duration(&format!("{n}{unit}")).expect("valid duration");
        prop_assert_eq!(parse_duration(&format_ns(d.0)), Ok(d));
    }

    #[test]
    fn loading_never_panics_on_arbitrary_text(text in ".{0,200}") {
        let _ = load(&text);
    }

    #[test]
    fn loading_never_panics_on_mutated_scenarios(
        cut in 0usize..400,
        len in 0usize..20,
        insert in "[ -~\n]{0,12}",
    ) {
        let text = full_scenario();
        let start = cut.min(text.len());
        let end = (start + len).min(text.len());
        let mutated = format!("{}{insert}{}", &text[..start], &text[end..]);
        if let Err(e) = load(&mutated) {
            prop_assert_eq!(e.file.as_str(), FILE);
            if let Some(line) = e.line {
                prop_assert!(line >= 1 && line <= mutated.lines().count() + 1, "line {} out of range", line);
            }
        }
    }

    #[test]
    fn loading_never_panics_on_arbitrary_overrides(key in "[a-z_.0-9]{0,30}", value in ".{0,20}") {
        let _ = load_with(BASE, &[&format!("{key}={value}")]);
    }
}

#[test]
fn empty_etcd_key_means_the_whole_keyspace_only_with_prefix() {
    let ok =
        "name = \"t\"\n[[steps]]\nat = \"1s\"\nop = \"etcd.range\"\nkey = \"\"\nprefix = true\n";
    assert!(watchsim::scenario::load_str("t.toml", ok, &[]).is_ok());
    let e = err("name = \"t\"\n[[steps]]\nat = \"1s\"\nop = \"etcd.delete\"\nkey = \"\"\n");
    in_file(&e, "steps.0.key", 5, "needs `prefix = true`");
}

#[test]
fn disconnect_watch_fault_requires_a_known_client() {
    let e = err(&base_plus(
        "[[faults.at]]\nat = \"1m\"\nkind = \"disconnect_watch\"\n",
    ));
    in_file(&e, "faults.at.0.client", 8, "requires `client`");
    let e = err(&base_plus(
        "[[faults.at]]\nat = \"1m\"\nkind = \"disconnect_watch\"\nclient = \"nobody-0\"\n",
    ));
    assert!(e.to_string().contains("faults.at.0.client"), "{e}");
}

#[test]
fn explore_window_is_a_duration_and_unknown_explore_keys_are_refused() {
    let s = ok(&base_plus("[explore]\nwindow = \"20ms\"\n"));
    assert_eq!(s.explore.window.map(|w| w.as_ns()), Some(20_000_000));
    let e = err(&base_plus("[explore]\nwindw = \"20ms\"\n"));
    assert!(e.to_string().contains("explore.windw"), "{e}");
    let e = err(&base_plus("[explore]\nwindow = 20\n"));
    assert!(e.to_string().contains("explore.window"), "{e}");
}

// ---- values beyond any real cluster (issue 17) ----------------------------------------------

#[test]
fn counts_rates_and_times_beyond_any_cluster_are_refused_naming_key_line_and_limit() {
    // BASE lines: 1 name, 2 [[resources]], 3 name, 4 [[clients]], 5 name, 6 resource, 7 count.
    let cases: &[(&str, &str, &str, usize, &str)] = &[
        (
            "[[resources]]\nname = \"big\"\ncount = 1000000000000\n",
            "",
            "resources.1.count",
            10,
            "100000000",
        ),
        (
            "[[resources]]\nname = \"big\"\nobject_bytes = \"2GiB\"\n",
            "",
            "resources.1.object_bytes",
            10,
            "1073741824",
        ),
        (
            "[[clients]]\nname = \"many\"\nresource = \"pods\"\ncount = 20000000\n",
            "",
            "clients.1.count",
            11,
            "10000000",
        ),
        (
            "[[workload]]\nresource = \"pods\"\nkind = \"update\"\nrate = 1e9\n",
            "",
            "workload.0.rate",
            11,
            "10000000",
        ),
        (
            "[faults]\nwatch_disconnect_rate = 1e7\n",
            "",
            "faults.watch_disconnect_rate",
            9,
            "one per millisecond",
        ),
        ("", "duration = \"1000000h\"\n", "duration", 1, "100 years"),
        (
            "[[faults.at]]\nat = \"900000h\"\nkind = \"compact_now\"\n",
            "",
            "faults.at.0.at",
            9,
            "100 years",
        ),
        (
            "[apiserver]\nlist_encoders = 100000\n",
            "",
            "apiserver.list_encoders",
            9,
            "4096",
        ),
        (
            "[apiserver]\ncount = 5000\n",
            "",
            "apiserver.count",
            9,
            "1000",
        ),
    ];
    for &(tail, head, key, line, words) in cases {
        let text = format!("{head}{BASE}{tail}");
        let e = err(&text);
        in_file(&e, key, line, words);
        assert!(
            e.message.contains("beyond") || e.message.contains("more than"),
            "{e}"
        );
    }
}

#[test]
fn the_largest_real_values_still_load() {
    let s = ok(&base_plus(
        "[[resources]]\nname = \"big\"\ncount = 100000000\n[[workload]]\nresource = \"big\"\nkind = \"update\"\nrate = 10000000.0\n",
    ));
    assert_eq!(s.resources[1].count, 100_000_000);
}

#[test]
fn a_set_beyond_any_cluster_is_refused_naming_the_override() {
    let e = set_err(BASE, &["resources.0.count=1000000000000"]);
    in_set(&e, "resources.0.count", "beyond any real cluster");
}
