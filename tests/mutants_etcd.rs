//! Historical etcd bugs as `[mutants]` (issue 7): each switch re-creates one real bug at the
//! place it was, and both hunters find it: a `watchsim check` campaign (the lowest failing seed is
//! pinned) and `watchsim explore` (a shortest counterexample, recorded as a capsule that replays).
//! The faithful model holds on the same scenario, seeds and bounds (the explorer exhausts the
//! bounded space), so each invariant that fires is the bug's doing. Component-level tests at the
//! end show that each new switch changes exactly its rule and nothing next to it.
//!
//! | mutant | real bug | invariant |
//! | --- | --- | --- |
//! | `etcd_tombstone_at_compact_lost` | etcd #18089 (PR #18274) | `watch-no-gap` |
//! | `etcd_progress_before_catchup` | etcd #15220 (PR #15237) | `watch-no-gap` |
//! | `etcd_watch_at_compact_refused` | kine PR #747 | `relist-bound` |
//! | `etcd_skip_compacted_watcher` | etcd #17529 (PR #17555) | `watch-no-gap` |

use std::path::PathBuf;
use std::time::Instant;

use watchsim::check::campaign::{self, CampaignOptions};
use watchsim::check::capsule::{self, Capsule};
use watchsim::check::explore::{ExploreOptions, explore};
use watchsim::check::replay::replay;
use watchsim::check::runner::Spec;
use watchsim::etcd::{
    EtcdConfig, EtcdServer, EventKind, Key, KeyRange, KvRequest, Store, WatchOutput, WatchRequest,
    WatchResponseKind,
};

/// One historical bug and where the tests look for it.
struct Bug {
    /// `[mutants]` key.
    mutant: &'static str,
    /// Bundled scenario of the `check` campaign.
    check_scenario: &'static str,
    /// Seeds `1..=seeds` of the campaign.
    seeds: u64,
    /// The lowest seed that fails with the mutant on.
    first_failing_seed: u64,
    /// Bundled scenario of the explorer.
    explore_scenario: &'static str,
    /// Longest acceptable counterexample (the shortest one found, measured).
    max_cex: usize,
    /// The invariant the bug breaks.
    invariant: &'static str,
    /// A piece of the violation message of the campaign's first failing seed.
    message: &'static str,
}

const TOMBSTONE: Bug = Bug {
    mutant: "etcd_tombstone_at_compact_lost",
    check_scenario: "explore-tombstone-at-compact.toml",
    seeds: 10,
    first_failing_seed: 1,
    explore_scenario: "explore-tombstone-at-compact.toml",
    max_cex: 13,
    invariant: "watch-no-gap",
    message: "the change to k at revision 3 was never delivered, yet a bookmark / progress notification at RV 3",
};

const PROGRESS: Bug = Bug {
    mutant: "etcd_progress_before_catchup",
    check_scenario: "explore-progress-before-catchup.toml",
    seeds: 10,
    first_failing_seed: 1,
    explore_scenario: "explore-progress-before-catchup.toml",
    max_cex: 9,
    invariant: "watch-no-gap",
    message: "the change to k/a at revision 2 was never delivered, yet a bookmark / progress notification at RV 3",
};

const AT_COMPACT: Bug = Bug {
    mutant: "etcd_watch_at_compact_refused",
    check_scenario: "watch-at-compact-revision.toml",
    seeds: 10,
    first_failing_seed: 1,
    explore_scenario: "explore-watch-at-compact.toml",
    max_cex: 18,
    invariant: "relist-bound",
    message: "3 relists by 3 clients",
};

const SKIP_COMPACTED: Bug = Bug {
    mutant: "etcd_skip_compacted_watcher",
    check_scenario: "explore-skip-compacted.toml",
    seeds: 10,
    first_failing_seed: 1,
    explore_scenario: "explore-skip-compacted.toml",
    max_cex: 13,
    invariant: "watch-no-gap",
    message: "the change to k/a at revision 2 was never delivered, yet a bookmark / progress notification at RV 3",
};

fn scenario_path(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("sim-scenarios")
        .join(name)
        .display()
        .to_string()
}

fn spec(name: &str, mutant: Option<&str>) -> Spec {
    let path = scenario_path(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let overrides: Vec<String> = mutant
        .map(|m| format!("mutants.{m}=true"))
        .into_iter()
        .collect();
    Spec::load(&path, &text, &overrides, None).unwrap()
}

/// The campaign over seeds 1..=N finds the bug first at the pinned seed, within 60 s; without the
/// mutant the same seeds all hold. Returns the failing seeds.
fn check_finds(bug: &Bug) -> Vec<u64> {
    let opts = CampaignOptions {
        seeds: bug.seeds,
        from: Some(1),
        jobs: 1,
        shard: None,
        swarm: false,
        progress: false,
    };
    let started = Instant::now();
    let broken =
        campaign::run_campaign(&spec(bug.check_scenario, Some(bug.mutant)), &opts).unwrap();
    let wall = started.elapsed().as_secs_f64();
    assert!(wall < 60.0, "{}: the campaign took {wall:.1} s", bug.mutant);
    let v = broken.violations.get(bug.invariant).unwrap_or_else(|| {
        panic!(
            "{}: {} not violated: {broken:#?}",
            bug.mutant, bug.invariant
        )
    });
    assert_eq!(v.first_seed, bug.first_failing_seed, "{broken:#?}");
    assert_eq!(broken.failing_seeds.first(), Some(&bug.first_failing_seed));
    assert!(v.message.contains(bug.message), "{}", v.message);

    // The first failing seed's capsule ends in that invariant.
    let seed_spec = spec(bug.check_scenario, Some(bug.mutant)).with_seed(bug.first_failing_seed);
    let capsule = capsule::capture(&seed_spec, None).expect("the failing seed records a capsule");
    let name = capsule.footer.violation.as_ref().map(|v| v.name.as_str());
    assert_eq!(name, Some(bug.invariant));

    let faithful = campaign::run_campaign(&spec(bug.check_scenario, None), &opts).unwrap();
    assert_eq!(faithful.seeds_run, bug.seeds);
    assert!(
        faithful.failing_seeds.is_empty(),
        "{}: the faithful model fails: {faithful:#?}",
        bug.check_scenario
    );
    broken.failing_seeds
}

fn bounds() -> ExploreOptions {
    ExploreOptions {
        max_depth: 40,
        max_states: 100_000,
        ..Default::default()
    }
}

/// The explorer finds a shortest counterexample of the bug's invariant, which records as a capsule
/// and replays with the same violation; without the mutant it exhausts the same bounded space
/// without a violation. Returns the counterexample's length.
fn explore_finds(bug: &Bug) -> usize {
    let faithful = explore(&spec(bug.explore_scenario, None), bounds());
    assert!(faithful.violation.is_none(), "{:?}", faithful.violation);
    assert!(
        faithful.complete,
        "{}: the bounded space was not exhausted ({} states)",
        bug.explore_scenario, faithful.unique
    );

    let s = spec(bug.explore_scenario, Some(bug.mutant));
    let out = explore(&s, bounds());
    let (inv, keys) = out
        .violation
        .unwrap_or_else(|| panic!("{}: not found in {} states", bug.mutant, out.unique));
    assert_eq!(inv, bug.invariant);
    assert!(
        keys.len() <= bug.max_cex,
        "{}: a counterexample of {} actions",
        bug.mutant,
        keys.len()
    );
    // relist-bound is judged as if the run ended after the last action.
    let end_of_run = inv == "relist-bound";
    let data = capsule::record(&s, &keys, end_of_run, Some(&inv))
        .unwrap()
        .expect("the path reproduces the violation");
    assert_eq!(data.len(), keys.len());
    let dir = std::env::temp_dir().join(format!("watchsim-mutants-etcd-{}", std::process::id()));
    let file = dir.join(format!("{}.capsule.jsonl", bug.mutant));
    data.write(&file).unwrap();
    let replayed = replay(&Capsule::read(&file).unwrap(), None).expect("the capsule replays");
    let _ = std::fs::remove_file(&file);
    assert_eq!(replayed.steps, keys.len());
    assert!(
        replayed.violations.iter().any(|v| v == bug.invariant),
        "{:?}",
        replayed.violations
    );
    keys.len()
}

#[test]
fn check_finds_the_tombstone_lost_at_the_compact_revision() {
    // etcd #18089: whenever the compaction comes before the watch's catch-up, the DELETE at the
    // compact revision is gone; the jitter decides, so only some seeds fail.
    let failing = check_finds(&TOMBSTONE);
    assert!(failing.len() < TOMBSTONE.seeds as usize, "{failing:?}");
}

#[test]
fn explore_finds_the_tombstone_lost_at_the_compact_revision() {
    explore_finds(&TOMBSTONE);
}

#[test]
fn check_finds_a_progress_notification_sent_before_catch_up() {
    // etcd #15220: the OBS-9 shape, the progress notification at 3 before the events 2 and 3; the
    // late events also break watch-order.
    let failing = check_finds(&PROGRESS);
    assert!(failing.len() < PROGRESS.seeds as usize, "{failing:?}");
    let s = campaign::run_campaign(
        &spec(PROGRESS.check_scenario, Some(PROGRESS.mutant)),
        &CampaignOptions {
            seeds: 1,
            from: Some(PROGRESS.first_failing_seed),
            jobs: 1,
            shard: None,
            swarm: false,
            progress: false,
        },
    )
    .unwrap();
    let order = &s.violations["watch-order"];
    assert!(
        order
            .message
            .contains("event for k/a at RV 2 after a bookmark / progress notification at RV 3"),
        "{}",
        order.message
    );
}

#[test]
fn explore_finds_a_progress_notification_sent_before_catch_up() {
    explore_finds(&PROGRESS);
}

#[test]
fn check_finds_a_watch_at_the_compact_revision_refused() {
    // kine #747: every seed (the restart makes every client resume at the compact revision).
    let failing = check_finds(&AT_COMPACT);
    assert_eq!(failing.len(), AT_COMPACT.seeds as usize, "{failing:?}");
}

#[test]
fn explore_finds_a_watch_at_the_compact_revision_refused() {
    explore_finds(&AT_COMPACT);
}

#[test]
fn check_finds_a_compacted_watcher_skipped_ahead() {
    // etcd #17529: whenever the compaction comes before the catch-up.
    let failing = check_finds(&SKIP_COMPACTED);
    assert!(failing.len() < SKIP_COMPACTED.seeds as usize, "{failing:?}");
}

#[test]
fn explore_finds_a_compacted_watcher_skipped_ahead() {
    explore_finds(&SKIP_COMPACTED);
}

#[test]
fn the_etcd_mutants_are_listed_when_on() {
    let s = spec(
        TOMBSTONE.explore_scenario,
        Some("etcd_tombstone_at_compact_lost"),
    );
    assert_eq!(
        s.scenario.mutants.enabled(),
        ["etcd_tombstone_at_compact_lost"]
    );
    let all = watchsim::scenario::load_str(
        "t.toml",
        "name = \"t\"\n[mutants]\netcd_tombstone_at_compact_lost = true\netcd_progress_before_catchup = true\netcd_watch_at_compact_refused = true\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        all.mutants.enabled(),
        [
            "etcd_tombstone_at_compact_lost",
            "etcd_progress_before_catchup",
            "etcd_watch_at_compact_refused"
        ]
    );
}

// ---------------------------------------------------------------- exactly one rule each

fn key(s: &str) -> KeyRange {
    KeyRange::Single(Key::new(s))
}

/// The etcd e2e reproduction of #18089 (PR #18457): put k x3, delete k, put k, compact at the
/// delete, watch from the delete. Returns the store and the delete's revision.
fn tombstone_story(mutant: bool) -> (Store, i64) {
    let mut s = Store::new();
    s.mutant_tombstone_at_compact_lost = mutant;
    let k = Key::new("k");
    for _ in 0..3 {
        s.put(&k, 10);
    }
    let (del, _, _) = s.delete(&key("k"));
    s.put(&k, 10);
    s.compact(del).unwrap();
    (s, del)
}

#[test]
fn the_tombstone_mutant_drops_only_a_delete_exactly_at_the_compact_revision() {
    let (faithful, del) = tombstone_story(false);
    let (broken, _) = tombstone_story(true);
    let kinds = |s: &Store| -> Vec<(EventKind, i64)> {
        let (evs, _) = s.events_between(&key("k"), del, s.revision(), 1000);
        evs.iter().map(|e| (e.kind, e.kv.mod_revision)).collect()
    };
    assert_eq!(
        kinds(&faithful),
        [(EventKind::Delete, del), (EventKind::Put, del + 1)]
    );
    assert_eq!(kinds(&broken), [(EventKind::Put, del + 1)], "#18089");
    // Reads are the same either way: at the compact revision the key is deleted, then recreated.
    for rev in [del, del + 1] {
        assert_eq!(
            faithful.range(&key("k"), rev, 0).unwrap(),
            broken.range(&key("k"), rev, 0).unwrap()
        );
    }
    // A put exactly at the compact revision, and a tombstone below it, are treated as etcd does.
    let story = |mutant: bool| {
        let mut s = Store::new();
        s.mutant_tombstone_at_compact_lost = mutant;
        s.put(&Key::new("a"), 1);
        s.delete(&key("a"));
        let (rev, _) = s.put(&Key::new("b"), 1);
        s.compact(rev).unwrap();
        s.events_between(&KeyRange::Prefix(Key::new("")), 1, s.revision(), 1000)
    };
    assert_eq!(story(true), story(false));
    assert_eq!(
        story(true).0.len(),
        1,
        "only the put at the compact revision"
    );
}

fn etcd(progress: bool, refuse: bool) -> EtcdServer {
    let mut e = EtcdServer::new(EtcdConfig {
        max_request_bytes: 1 << 20,
        progress_notify_interval_ns: 0,
    });
    e.hub.mutant_progress_before_catchup = progress;
    e.hub.mutant_refuse_at_compact = refuse;
    e
}

fn put(e: &mut EtcdServer, k: &str) {
    let mut out = Vec::new();
    e.handle_kv(
        &KvRequest::Put {
            key: Key::new(k),
            value_bytes: 1,
        },
        &mut out,
    )
    .unwrap();
}

fn create(e: &mut EtcdServer, stream: u64, start_revision: i64) {
    let mut out = Vec::new();
    let req = WatchRequest::Create {
        watch_id: 1,
        range: KeyRange::Prefix(Key::new("")),
        start_revision,
        progress_notify: false,
    };
    e.handle_watch(0, stream, &req, &mut out);
}

/// The responses of one request / sync round (timers left out).
fn kinds(out: &[WatchOutput]) -> Vec<(u64, i64, WatchResponseKind)> {
    out.iter()
        .filter_map(|o| match o {
            WatchOutput::Send(s, r) => Some((*s, r.header_revision, r.kind.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn the_progress_mutant_answers_only_the_unsynced_case_early() {
    for mutant in [false, true] {
        let mut e = etcd(mutant, false);
        put(&mut e, "a");
        put(&mut e, "b");
        create(&mut e, 1, 2); // unsynced: history 2..3 not sent yet
        create(&mut e, 2, 10); // synced, but its start revision is in the future (#20221)
        create(&mut e, 3, 0); // synced at the current revision
        let mut answers = Vec::new();
        for stream in 1..=3 {
            let mut out = Vec::new();
            e.handle_watch(0, stream, &WatchRequest::Progress, &mut out);
            answers.push(kinds(&out));
        }
        let progress = |s| vec![(s, 3, WatchResponseKind::Progress)];
        let unsynced = if mutant { progress(1) } else { vec![] };
        assert_eq!(answers, [unsynced, vec![], progress(3)], "mutant {mutant}");
    }
}

#[test]
fn the_refusal_mutant_refuses_only_a_fresh_watch_exactly_at_the_compact_revision() {
    for mutant in [false, true] {
        let mut e = etcd(false, mutant);
        for k in ["a", "b", "c"] {
            put(&mut e, k); // revisions 2, 3, 4
        }
        let mut out = Vec::new();
        e.handle_kv(&KvRequest::Compact { revision: 3 }, &mut out)
            .unwrap();
        create(&mut e, 1, 2); // below the compact revision: compacted either way
        create(&mut e, 2, 3); // exactly at it: served by etcd
        create(&mut e, 3, 4); // above it
        let mut out = Vec::new();
        e.sync_watchers(0, &mut out);
        let got: Vec<(u64, bool)> = kinds(&out)
            .into_iter()
            .map(|(s, _, k)| (s, matches!(k, WatchResponseKind::Canceled { .. })))
            .collect();
        assert_eq!(
            got,
            [(1, true), (2, mutant), (3, false)],
            "mutant {mutant}: (stream, cancelled)"
        );
    }
    // A watcher whose catch-up reached exactly the compact revision is not refused: the kine
    // check is on the start revision only.
    let mut e = etcd(false, true);
    for i in 0..1005 {
        put(&mut e, &format!("k{i}")); // revisions 2..1006
    }
    create(&mut e, 1, 2);
    let mut out = Vec::new();
    e.sync_watchers(0, &mut out); // one batch of 1000 revisions: 2..1001
    let mut out2 = Vec::new();
    e.handle_kv(&KvRequest::Compact { revision: 1002 }, &mut out2)
        .unwrap();
    let mut out = Vec::new();
    e.sync_watchers(0, &mut out);
    match kinds(&out).as_slice() {
        [(1, _, WatchResponseKind::Events(evs))] => {
            assert_eq!(evs.first().map(|e| e.kv.mod_revision), Some(1002))
        }
        other => panic!("{other:?}"),
    }
}

/// `etcd.version = "3.4.23"` is Debian's etcd with its three watch bugs (#18089, #15220,
/// #17529; etcd-semantics.md "known bugs"): on each bug's scenario, seed 1 violates
/// `watch-no-gap` with the same message as the mutant; under the default (3.7) the same seed
/// holds.
#[test]
fn etcd_version_3_4_23_has_two_of_its_watch_bugs_and_3_7_has_none() {
    let violation_of = |bug: &Bug, overrides: &[&str]| {
        let path = scenario_path(bug.check_scenario);
        let text = std::fs::read_to_string(&path).unwrap();
        let overrides: Vec<String> = overrides.iter().map(|o| o.to_string()).collect();
        let r = watchsim::sim::run_str(&path, &text, &overrides, Some(1)).unwrap();
        let r = serde_json::to_value(r).unwrap();
        r["invariants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == bug.invariant && i["held"] == false)
            .map(|i| i["message"].as_str().unwrap_or_default().to_string())
    };
    for bug in [&TOMBSTONE, &PROGRESS] {
        let msg = violation_of(bug, &["etcd.version=\"3.4.23\""])
            .unwrap_or_else(|| panic!("{}: no violation", bug.mutant));
        assert!(msg.contains(bug.message), "{}: {msg}", bug.mutant);
        assert_eq!(violation_of(bug, &[]), None, "{}", bug.mutant);
        assert_eq!(violation_of(bug, &["etcd.version=\"3.6\""]), None);
    }
    // #17529 needs the stream's 128-response channel to be full when the compacted watcher comes
    // up for sync (`chooseAll`: `select { case w.ch <- ...: default: retry }`); the model's
    // channel never fills, so 3.4.23 and 3.5.7 cancel such a watcher like 3.7 does (the 1.27
    // oracle over etcd 3.5.7 answers a cache-off watch below the compaction with 410). Only the
    // mutant forces the skip.
    for version in ["3.4.23", "3.5.7"] {
        let set = format!("etcd.version=\"{version}\"");
        assert_eq!(violation_of(&SKIP_COMPACTED, &[&set]), None, "{version}");
        let msg = violation_of(
            &SKIP_COMPACTED,
            &[&set, "mutants.etcd_skip_compacted_watcher=true"],
        )
        .unwrap_or_else(|| panic!("{version}: the mutant shows no violation"));
        assert!(msg.contains(SKIP_COMPACTED.message), "{version}: {msg}");
    }
}
