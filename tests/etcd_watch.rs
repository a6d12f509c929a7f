//! etcd watch behaviour through the whole model (scripted steps -> network -> etcd -> network):
//! compacted and future start revisions, catch-up, RequestProgress only when synced, periodic
//! progress notify skipping watchers that got events (etcd-semantics.md A6, A8, A9; OBS-4..6).

use serde_json::{Value, json};
use watchsim::etcd::{
    EtcdConfig, EtcdServer, Key, KeyRange, KvRequest, WatchOutput, WatchRequest, WatchResponseKind,
};

fn run(text: &str) -> Value {
    let report = watchsim::sim::run_str("test.toml", text, &[], None).expect("scenario runs");
    serde_json::to_value(report).unwrap()
}

fn events(report: &Value, id: &str) -> Vec<Value> {
    report["watches"][id]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn types(evs: &[Value]) -> Vec<String> {
    evs.iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn watch_below_compaction_is_cancelled_with_compact_revision() {
    let r = run(r#"
name = "t"
duration = "5s"
[[steps]]
at = "1s"
op = "etcd.put"
key = "foo"
[[steps]]
at = "1.1s"
op = "etcd.put"
key = "foo"
[[steps]]
at = "1.2s"
op = "etcd.put"
key = "foo"
[[steps]]
at = "2s"
op = "etcd.compact"
revision = 3
[[steps]]
at = "3s"
op = "etcd.watch"
id = "w"
key = "foo"
start_revision = 2
[[steps]]
at = "3.1s"
op = "etcd.watch"
id = "at-compact"
key = "foo"
start_revision = 3
"#);
    assert_eq!(r["script"][4]["result"], json!({"created": true}));
    assert_eq!(
        events(&r, "w"),
        vec![json!({"type": "CANCELED", "compact_revision": 3})]
    );
    // start_revision == compact revision is allowed (the check is minRev < compactRev).
    let at = events(&r, "at-compact");
    assert_eq!(types(&at), ["PUT", "PUT"]);
    assert_eq!(at[0]["mod_revision"], 3);
}

#[test]
fn future_start_revision_waits_and_skips_earlier_revisions() {
    // OBS-5: store at 11, watch from 14, four puts at 12..15 -> only 14 and 15 arrive.
    let mut text = String::from("name = \"t\"\nduration = \"5s\"\n");
    for i in 0..10 {
        text += &format!(
            "[[steps]]\nat = \"{}ms\"\nop = \"etcd.put\"\nkey = \"k{i}\"\n",
            100 + i * 10
        );
    }
    text += "[[steps]]\nat = \"1s\"\nop = \"etcd.watch\"\nid = \"w\"\nkey = \"foo\"\nstart_revision = 14\n";
    for (i, at) in ["2s", "2.1s", "2.2s", "2.3s"].iter().enumerate() {
        text += &format!("[[steps]]\nat = \"{at}\"\nop = \"etcd.put\"\nkey = \"foo\"\n# put {i}\n");
    }
    let r = run(&text);
    let evs = events(&r, "w");
    let revs: Vec<i64> = evs
        .iter()
        .map(|e| e["mod_revision"].as_i64().unwrap())
        .collect();
    assert_eq!(revs, [14, 15]);
    assert_eq!(evs[0]["version"], 3);
}

#[test]
fn progress_request_is_answered_only_once_the_watch_has_caught_up() {
    // 1,500 keys preloaded (revisions 2..1501). A watch from 1 needs two catch-up rounds of the
    // 100 ms sync loop; a progress request 20 ms after creation gets no answer (etcd #15220 fix),
    // one after catch-up is answered at the current revision.
    let r = run(r#"
name = "t"
duration = "3s"
[[resources]]
name = "pods"
count = 1500
[[steps]]
at = "1s"
op = "etcd.watch"
id = "w"
key = "/registry/pods/"
prefix = true
start_revision = 1
[[steps]]
at = "1.02s"
op = "etcd.progress"
id = "w"
[[steps]]
at = "2s"
op = "etcd.progress"
id = "w"
"#);
    let evs = events(&r, "w");
    assert_eq!(evs.len(), 1501);
    assert!(evs[..1500].iter().all(|e| e["type"] == "PUT"));
    assert_eq!(evs[1500], json!({"type": "PROGRESS", "revision": 1501}));
}

#[test]
fn periodic_progress_skips_a_tick_after_events() {
    // OBS-6 with a 2 s interval: a notification, then an event, then the next tick is skipped.
    let r = run(r#"
name = "t"
duration = "10s"
[etcd]
progress_notify_interval = "2s"
[[steps]]
at = "1s"
op = "etcd.watch"
id = "w"
key = "foo"
progress_notify = true
[[steps]]
at = "4s"
op = "etcd.put"
key = "foo"
"#);
    let evs = events(&r, "w");
    assert_eq!(types(&evs), ["PROGRESS", "PUT", "PROGRESS", "PROGRESS"]);
    assert_eq!(evs[0]["revision"], 1);
    assert_eq!(evs[2]["revision"], 2);
}

#[test]
fn watches_without_progress_notify_get_no_notifications() {
    let r = run(r#"
name = "t"
duration = "10s"
[etcd]
progress_notify_interval = "1s"
[[steps]]
at = "1s"
op = "etcd.watch"
id = "w"
key = "foo"
"#);
    assert!(events(&r, "w").is_empty());
}

#[test]
fn catch_up_responses_hold_at_most_1000_revisions_and_never_split_one() {
    let mut etcd = EtcdServer::new(EtcdConfig {
        max_request_bytes: 1 << 20,
        progress_notify_interval_ns: 0,
    });
    let mut out: Vec<WatchOutput> = Vec::new();
    for i in 0..1200 {
        etcd.handle_kv(
            &KvRequest::Put {
                key: Key::new(&format!("a/{i}")),
                value_bytes: 1,
            },
            &mut out,
        )
        .unwrap();
    }
    // One delete of three keys at one revision sits across the 1000-revision boundary.
    etcd.handle_kv(
        &KvRequest::Delete(KeyRange::Prefix(Key::new("a/11"))),
        &mut out,
    )
    .unwrap();
    out.clear();
    let req = WatchRequest::Create {
        watch_id: 7,
        range: KeyRange::Prefix(Key::new("a/")),
        start_revision: 200,
        progress_notify: false,
    };
    etcd.handle_watch(0, 1, &req, &mut out);
    let mut batches = Vec::new();
    for round in 1..=3 {
        out.clear();
        etcd.sync_watchers(round * 100_000_000, &mut out);
        for o in &out {
            if let WatchOutput::Send(_, resp) = o
                && let WatchResponseKind::Events(evs) = &resp.kind
            {
                let mut revs: Vec<i64> = evs.iter().map(|e| e.kv.mod_revision).collect();
                revs.dedup();
                batches.push((revs.len(), evs.len(), resp.header_revision));
            }
        }
    }
    // Revisions 200..=1202: 1000 distinct revisions, then the remaining 3 (the last holds 11 deletes).
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0], (1000, 1000, 1202));
    assert_eq!(batches[1].0, 3);
    assert_eq!(batches[1].2, 1202);
}
