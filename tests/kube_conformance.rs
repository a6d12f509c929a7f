//! Differential conformance of watchsim's apiserver model against the real Kubernetes code
//! (issue 14): k8s.io/apiserver's etcd3 store and Cacher over the etcd its go.mod pins, for each
//! Kubernetes minor that has an oracle: 1.37 ([`KUBE_1_37`]: v0.37, etcd 3.7,
//! `tests/oracle/kube-1.37/`) and 1.31 ([`KUBE_1_31`]: v0.31, etcd 3.5, `tests/oracle/kube-1.31/`,
//! the same harness with 1.31's wiring). One `#[test]` per minor.
//!
//! Every generated sequence of scripted steps (SPEC §3: `api.create/update/delete`, `api.list`
//! with RV unset/"0"/N, `match`, `limit`, `continue`; `api.watch` with RV, `bookmarks`,
//! `send_initial_events`, `timeout`; `api.unwatch`; `fault.compact_now`; the passage of time) is
//! one scenario text, run
//! - on the model through `watchsim::sim::run_str` with the rules profile of that minor
//!   ([`Profile::model`]);
//! - on the oracle, which applies the same steps to the real code, its clock-driven parts
//!   (bookmarks, the 3 s freshness wait, progress requests, watch deadlines) on a fake clock.
//!
//! Both answers are in the shapes of `watchsim run --json` (`script` and `watches`) and are
//! compared entry by entry. A difference is a failure unless it is one of the deliberate,
//! documented differences of the profile's [`Profile::known`] (each names its row in
//! `shared/reference/k8s-rules-1.31-1.37.md` and its line in notes.md); the summary prints how
//! many of each were seen.
//!
//! Timing. The model gives every message a latency; the oracle runs each step when its fake
//! clock reaches the step's `at`, after the cachers caught up with etcd. To keep both sides'
//! orders comparable the generator places steps on a 10 s grid: watches open at +0 s, every other
//! step at +5 s, watch timeouts are whole multiples of 10 s. A periodic bookmark (due at a whole
//! minute of the watch) or a deadline bookmark (2 s before the deadline) is then always ≥ 3 s
//! from any write, while the real cacher's 1 s bookmark buckets and 1-1.25 s bookmark timer move
//! a bookmark by at most ~1.25 s. A watch step itself can move a cache's RV (its progress
//! request), so no watch opens when another watch's periodic bookmark is due. Sequences stay
//! under 5 minutes (no apiserver compaction, `apiserver.compaction_interval = "0s"`) and under
//! etcd's 10 minute progress-notify interval.
//!
//! Knobs: `WATCHSIM_KUBE_CONFORMANCE_CASES` (default 200 sequences of 20 steps per minor),
//! `WATCHSIM_KUBE_CONFORMANCE_SURVEY=1` (list every difference instead of stopping at the
//! first), `WATCHSIM_ORACLE_DIR` (where `kube-<minor>/oracle` is; default `target/oracle`, built
//! on first use with the machine's Go). Failing sequences are shrunk and kept in the profile's
//! regressions file ([`Profile::regressions`]).

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestError, TestRunner};
use serde_json::Value;

use common::kube_oracle::{oracle_case, oracle_or_skip, run_oracle};
use common::real_etcd::uncaptured;

/// Steps per generated sequence.
const OPS: usize = 20;
/// Default number of sequences.
const DEFAULT_CASES: u32 = 200;

/// One Kubernetes minor with an oracle: the model's settings that stand for it, and its
/// deliberate differences.
struct Profile {
    /// The minor, as in `tests/oracle/kube-<minor>/`.
    minor: &'static str,
    /// The model's `[apiserver]` table for that minor: its `rules` profile, whose defaults
    /// follow the minor's feature gates (the server's `watch_list`: off for "1.31", on for
    /// "1.37"), and no apiserver compaction.
    model: &'static str,
    /// Deliberate differences, each documented in notes.md ("Kubernetes oracle").
    known: &'static [Known],
    /// The extension of the proptest regressions file beside this source
    /// (`tests/kube_conformance.<extension>`).
    regressions: &'static str,
}

/// Kubernetes 1.37 (k8s.io/apiserver v0.37.2): WatchList on, lists from cache snapshots.
const KUBE_1_37: Profile = Profile {
    minor: "1.37",
    model: "[apiserver]\nrules = \"1.37\"\ncompaction_interval = \"0s\"\n",
    known: &[DEADLINE_BOOKMARK_REPEATED],
    regressions: "proptest-regressions",
};

/// Kubernetes 1.31 (k8s.io/apiserver v0.31.14): WatchList off (a watch with
/// `send_initial_events` is a 422), continuations and exact LISTs from etcd.
const KUBE_1_31: Profile = Profile {
    minor: "1.31",
    model: "[apiserver]\nrules = \"1.31\"\ncompaction_interval = \"0s\"\n",
    known: &[
        DEADLINE_BOOKMARK_REPEATED,
        EXACT_LIST_ABOVE_ETCD_1_31,
        LAST_PERIODIC_BOOKMARK_MISSING_1_31,
    ],
    regressions: "1.31.proptest-regressions",
};

/// The resources of every sequence: (name, objects at start).
const RESOURCES: [(&str, usize); 2] = [("pods", 3), ("configmaps", 1)];
/// Object names a step may use, per resource: the initial ones and two more.
fn names(res: usize) -> Vec<String> {
    let (r, n) = RESOURCES[res];
    let mut v: Vec<String> = (0..n).map(|i| format!("{r}-{i:06}")).collect();
    v.push("x-0".into());
    v.push("x-1".into());
    v
}

// ------------------------------------------------------------------------------------------------
// Generation.

/// A resource version chosen relative to etcd's revision when the step is issued.
#[derive(Clone, Copy, Debug)]
enum RvPick {
    Unset,
    Zero,
    /// etcd's current revision.
    Current,
    /// `k` below it (at least 1).
    Behind(u8),
    /// Far above it (a LIST waits 3 s and gets 504).
    Ahead,
}

/// One abstract step; [`concretize`] turns a sequence into a scenario.
#[derive(Clone, Debug)]
enum AOp {
    Create {
        res: usize,
        name: usize,
    },
    Update {
        res: usize,
        name: usize,
    },
    Delete {
        res: usize,
        name: usize,
    },
    List {
        res: usize,
        rv: RvPick,
        match_: u8,
        limit: u8,
        cont: bool,
    },
    Watch {
        res: usize,
        rv: RvPick,
        bookmarks: bool,
        sie: u8,
        timeout_slots: u8,
    },
    Unwatch {
        which: usize,
    },
    CompactNow,
    /// Let `slots` × 10 s pass.
    Wait {
        slots: u8,
    },
}

fn rv_pick() -> impl Strategy<Value = RvPick> {
    prop_oneof![
        3 => Just(RvPick::Unset),
        3 => Just(RvPick::Zero),
        3 => Just(RvPick::Current),
        2 => (1u8..4).prop_map(RvPick::Behind),
        1 => Just(RvPick::Ahead),
    ]
}

fn abstract_op() -> impl Strategy<Value = AOp> {
    let res = || prop_oneof![3 => Just(0usize), 1 => Just(1usize)];
    prop_oneof![
        4 => (res(), 0usize..5).prop_map(|(res, name)| AOp::Create { res, name }),
        4 => (res(), 0usize..5).prop_map(|(res, name)| AOp::Update { res, name }),
        2 => (res(), 0usize..5).prop_map(|(res, name)| AOp::Delete { res, name }),
        5 => (res(), rv_pick(), prop_oneof![4 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
              prop_oneof![2 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)], proptest::bool::weighted(0.25))
            .prop_map(|(res, rv, match_, limit, cont)| AOp::List { res, rv, match_, limit, cont }),
        4 => (res(), rv_pick(), any::<bool>(), prop_oneof![3 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
              prop_oneof![2 => Just(0u8), 1 => 1u8..8])
            .prop_map(|(res, rv, bookmarks, sie, timeout_slots)| AOp::Watch { res, rv, bookmarks, sie, timeout_slots }),
        1 => (0usize..6).prop_map(|which| AOp::Unwatch { which }),
        1 => Just(AOp::CompactNow),
        2 => (1u8..7).prop_map(|slots| AOp::Wait { slots }),
    ]
}

fn sequence() -> impl Strategy<Value = Vec<AOp>> {
    proptest::collection::vec(abstract_op(), OPS)
}

/// The last slot a sequence may use: 28 × 10 s + 5 s < 5 min.
const LAST_SLOT: u64 = 28;

/// What the generator needs to know of etcd: its revision and which objects exist.
struct Tracker {
    revision: u64,
    exists: Vec<Vec<bool>>,
}

impl Tracker {
    fn new() -> Self {
        let mut revision = 1;
        let mut exists = Vec::new();
        for (res, (_, n)) in RESOURCES.iter().enumerate() {
            revision += *n as u64;
            exists.push((0..names(res).len()).map(|i| i < *n).collect());
        }
        Tracker { revision, exists }
    }

    fn rv(&self, pick: RvPick) -> Option<String> {
        match pick {
            RvPick::Unset => None,
            RvPick::Zero => Some("0".into()),
            RvPick::Current => Some(self.revision.to_string()),
            RvPick::Behind(k) => Some(self.revision.saturating_sub(k as u64).max(1).to_string()),
            RvPick::Ahead => Some((self.revision + 50).to_string()),
        }
    }
}

fn at(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// The scenario text of a sequence (the model runs it as is; the oracle reads the same text),
/// with the model settings `model` (a [`Profile::model`]).
fn concretize(ops: &[AOp], model: &str) -> String {
    let mut t = Tracker::new();
    let mut s = String::new();
    s.push_str("name = \"kube-conformance\"\n");
    s.push_str("description = \"differential sequence (tests/kube_conformance.rs)\"\n");
    let mut steps = String::new();
    let mut slot: u64 = 0;
    let mut watches = 0usize;
    // When each watch with bookmarks opened (ms): its periodic bookmarks fall on whole minutes
    // after that.
    let mut bookmark_starts: Vec<u64> = Vec::new();
    for op in ops {
        slot += 1;
        if slot > LAST_SLOT {
            break;
        }
        let base = slot * 10_000;
        let mut step = |at_ms: u64, op: &str, fields: &str| {
            let _ = write!(
                steps,
                "\n[[steps]]\nat = \"{}\"\nop = \"{op}\"\n{fields}",
                at(at_ms)
            );
        };
        match op {
            AOp::Create { res, name } | AOp::Update { res, name } | AOp::Delete { res, name } => {
                let (r, _) = RESOURCES[*res];
                let all = names(*res);
                let name_ix = name % all.len();
                let exists = t.exists[*res][name_ix];
                let (opname, ok, after) = match op {
                    AOp::Create { .. } => ("api.create", !exists, true),
                    AOp::Update { .. } => ("api.update", exists, true),
                    _ => ("api.delete", exists, false),
                };
                if ok {
                    t.revision += 1;
                    t.exists[*res][name_ix] = after;
                }
                step(
                    base + 5000,
                    opname,
                    &format!("resource = \"{r}\"\nname = \"{}\"\n", all[name_ix]),
                );
            }
            AOp::List {
                res,
                rv,
                match_,
                limit,
                cont,
            } => {
                let (r, _) = RESOURCES[*res];
                let mut f = format!("resource = \"{r}\"\n");
                if let Some(v) = t.rv(*rv) {
                    let _ = writeln!(f, "resource_version = \"{v}\"");
                }
                match match_ {
                    1 => f.push_str("match = \"NotOlderThan\"\n"),
                    2 => f.push_str("match = \"Exact\"\n"),
                    _ => {}
                }
                if *limit > 0 {
                    let _ = writeln!(f, "limit = {limit}");
                }
                if *cont {
                    f.push_str("continue = true\n");
                }
                step(base + 5000, "api.list", &f);
            }
            AOp::Watch {
                res,
                rv,
                bookmarks,
                sie,
                timeout_slots,
            } => {
                // A watch step can move a cache's RV at once (its progress request makes etcd
                // report progress on the stream every cacher shares); if another watch's
                // periodic bookmark is due at that very time, whether the bookmark carries the
                // new RV is a race in the real cacher (its 1-1.25 s jittered timer): leave such
                // a watch out.
                if bookmark_starts
                    .iter()
                    .any(|s| (base - s).is_multiple_of(60_000))
                {
                    continue;
                }
                if *bookmarks {
                    bookmark_starts.push(base);
                }
                let (r, _) = RESOURCES[*res];
                let mut f =
                    format!("id = \"w{watches}\"\nresource = \"{r}\"\nbookmarks = {bookmarks}\n");
                watches += 1;
                if let Some(v) = t.rv(*rv) {
                    let _ = writeln!(f, "resource_version = \"{v}\"");
                }
                match sie {
                    1 => f.push_str("send_initial_events = true\n"),
                    2 => f.push_str("send_initial_events = false\n"),
                    _ => {}
                }
                if *timeout_slots > 0 {
                    let _ = writeln!(f, "timeout = \"{}s\"", *timeout_slots as u64 * 10);
                }
                step(base, "api.watch", &f);
            }
            AOp::Unwatch { which } => {
                if watches == 0 {
                    continue;
                }
                step(
                    base + 5000,
                    "api.unwatch",
                    &format!("id = \"w{}\"\n", which % watches),
                );
            }
            AOp::CompactNow => step(base + 5000, "fault.compact_now", ""),
            AOp::Wait { slots } => slot = (slot + *slots as u64).min(LAST_SLOT),
        }
    }
    let _ = writeln!(s, "duration = \"{}s\"", (slot + 2) * 10);
    s.push('\n');
    s.push_str(model);
    for (name, count) in RESOURCES {
        let _ = write!(
            s,
            "\n[[resources]]\nname = \"{name}\"\ncount = {count}\nobject_bytes = 1024\n"
        );
    }
    s.push_str(&steps);
    s
}

// ------------------------------------------------------------------------------------------------
// Both sides.

/// `script` and `watches` of one run.
#[derive(Debug, PartialEq)]
struct Answers {
    script: Vec<Value>,
    watches: BTreeMap<String, Vec<Value>>,
}

fn answers(v: &Value) -> Answers {
    let script = v["script"].as_array().cloned().unwrap_or_default();
    let watches = v["watches"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, e)| (k.clone(), e.as_array().cloned().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    Answers { script, watches }
}

fn run_model(text: &str) -> Result<Answers, String> {
    let report = watchsim::sim::run_str("kube-conformance.toml", text, &[], Some(1))
        .map_err(|e| format!("run_str: {e}"))?;
    let v = serde_json::to_value(&report).map_err(|e| e.to_string())?;
    Ok(answers(&v))
}

fn run_real(bin: &Path, text: &str) -> Result<Answers, String> {
    let case = oracle_case("kube-conformance", text)?;
    let out = run_oracle(bin, &[case])?;
    Ok(answers(&out[0]))
}

// ------------------------------------------------------------------------------------------------
// Comparison.

/// A difference between the model and the real code.
#[derive(Debug)]
struct Difference {
    /// Where: `script[i] (op at)` or `watches.ID[i]`.
    place: String,
    model: Value,
    real: Value,
}

/// A deliberate difference, documented in notes.md ("Kubernetes oracle" table); `matches` sees
/// the model's and the real value of one place.
struct Known {
    name: &'static str,
    matches: fn(model: &Value, real: &Value) -> bool,
}

/// In every profile: the real cacher's 1 s bookmark buckets (1.31 and 1.37 alike).
const DEADLINE_BOOKMARK_REPEATED: Known = Known {
    // The real cacher files bookmark times in 1 s buckets (`watcherBookmarkTimeBuckets`) and pops
    // them on a 1-1.25 s jittered timer, so the bookmark due 2 s before a deadline can go out up
    // to 1 s early and then be due again: a second BOOKMARK at the same RV right before the
    // close (or at the end of the run, when the deadline is the run's end), depending on the
    // timer's jitter. watchsim sends bookmarks at exact times.
    name: "deadline bookmark repeated by the 1 s bookmark buckets",
    matches: |model, real| {
        let (Some(m), Some(r)) = (model.as_array(), real.as_array()) else {
            return false;
        };
        let closed = r.last().is_some_and(|e| e["type"] == "CLOSED");
        let n = r.len() - usize::from(closed); // the extra bookmark is r[n - 1]
        n >= 2
            && m.len() + 1 == r.len()
            && r[n - 1]["type"] == "BOOKMARK"
            && r[n - 1] == r[n - 2]
            && m[..] == [&r[..n - 1], &r[n..]].concat()[..]
    },
};

/// 1.31 only (reference row 3; notes.md "An Exact LIST above etcd's revision is answered 504"):
/// an Exact or legacy-exact LIST (RV N with a limit) above etcd's revision goes to etcd, whose
/// future-revision error the 1.31-1.33 etcd3 store passes through (`etcd3/store.go GetList`:
/// `interpretListError` knows only ErrCompacted; 1.34 added `listReadError`'s 504), so the handler
/// answers a 500 with etcd's text (`responsewriters.ErrorToAPIStatus`). The model answers 504
/// "Too large resource version: N, current: 0". Consequence: only requests that name an RV
/// etcd has not reached (hand-written RVs; no client computes one): a client-go reflector would
/// relist at RV "" after the model's 504 where 1.31's 500 makes it back off and retry.
const EXACT_LIST_ABOVE_ETCD_1_31: Known = Known {
    name: "Exact LIST above etcd's revision: the model's 504, etcd's 500 in 1.31",
    matches: |model, real| {
        let (m, r) = (&model["error"], &real["error"]);
        m["code"] == 504
            && m["cause"] == "ResourceVersionTooLarge"
            && m["message"]
                .as_str()
                .is_some_and(|s| s.ends_with(", current: 0"))
            && r["code"] == 500
            && r["reason"] == ""
            && r["message"] == "etcdserver: mvcc: required revision is a future revision"
    },
};

/// 1.31 only, **not understood (open, notes.md "Noticed, not fixed")**: once in 170 sequences
/// (seed kept in `tests/kube_conformance.1.31.proptest-regressions`) the real 1.31 cacher did not
/// send a watch's last periodic bookmark (due 20 s before the run's end, after a MODIFIED),
/// which the model sends; every earlier bookmark of that watch agreed. Matched narrowly: the
/// model's events are the real ones plus one trailing BOOKMARK at the RV of the last event.
/// Consequence if it is a model error: `bookmarks_sent` one higher per such watch.
const LAST_PERIODIC_BOOKMARK_MISSING_1_31: Known = Known {
    name: "1.31: the real cacher did not send a watch's last periodic bookmark (open)",
    matches: |model, real| {
        let (Some(m), Some(r)) = (model.as_array(), real.as_array()) else {
            return false;
        };
        m.len() == r.len() + 1
            && m[..r.len()] == r[..]
            && m[r.len()]["type"] == "BOOKMARK"
            && r.last().is_some_and(|e| {
                e["type"] != "BOOKMARK" && e["resource_version"] == m[r.len()]["resource_version"]
            })
    },
};

fn differences(model: &Answers, real: &Answers) -> Vec<Difference> {
    let mut out = Vec::new();
    let n = model.script.len().max(real.script.len());
    for i in 0..n {
        let m = model.script.get(i).cloned().unwrap_or(Value::Null);
        let r = real.script.get(i).cloned().unwrap_or(Value::Null);
        if m["result"] != r["result"] {
            out.push(Difference {
                place: format!("script[{i}] ({} at {})", r["op"], r["at"]),
                model: m["result"].clone(),
                real: r["result"].clone(),
            });
        }
    }
    let ids: std::collections::BTreeSet<&String> =
        model.watches.keys().chain(real.watches.keys()).collect();
    for id in ids {
        let empty = Vec::new();
        let m = model.watches.get(id).unwrap_or(&empty);
        let r = real.watches.get(id).unwrap_or(&empty);
        if m != r {
            out.push(Difference {
                place: format!("watches.{id}"),
                model: Value::Array(m.clone()),
                real: Value::Array(r.clone()),
            });
        }
    }
    out
}

fn known(profile: &Profile, d: &Difference) -> Option<&'static str> {
    profile
        .known
        .iter()
        .find(|k| (k.matches)(&d.model, &d.real))
        .map(|k| k.name)
}

fn report(diffs: &[&Difference]) -> String {
    let mut s = String::new();
    for d in diffs {
        let _ = writeln!(s, "{}:\n  model: {}\n  real:  {}", d.place, d.model, d.real);
    }
    s
}

// ------------------------------------------------------------------------------------------------

fn cases() -> u32 {
    std::env::var("WATCHSIM_KUBE_CONFORMANCE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

#[derive(Default)]
struct Summary {
    runs: usize,
    steps: usize,
    events: usize,
    known: BTreeMap<&'static str, usize>,
    /// Survey mode: every unexplained difference, with its scenario.
    survey: Vec<String>,
}

/// `WATCHSIM_KUBE_CONFORMANCE_SURVEY=1`: run every sequence without stopping or shrinking at the
/// first difference, then print them all (to study a new Kubernetes version's differences).
fn survey() -> bool {
    std::env::var_os("WATCHSIM_KUBE_CONFORMANCE_SURVEY").is_some()
}

#[test]
fn differential_model_vs_kube_1_37() {
    differential(&KUBE_1_37, "differential_model_vs_kube_1_37");
}

#[test]
fn differential_model_vs_kube_1_31() {
    differential(&KUBE_1_31, "differential_model_vs_kube_1_31");
}

/// Runs the generated sequences on the model with `profile`'s settings and on its oracle.
fn differential(profile: &Profile, test: &str) {
    let minor = profile.minor;
    let Some(bin) = oracle_or_skip(minor, test) else {
        return;
    };
    let started = Instant::now();
    let mut config = Config::with_cases(cases());
    config.failure_persistence = Some(Box::new(FileFailurePersistence::WithSource(
        profile.regressions,
    )));
    config.source_file = Some(file!());
    config.max_shrink_time = 300_000;
    config.max_shrink_iters = 400;
    let mut runner = TestRunner::new(config);
    let summary = RefCell::new(Summary::default());
    let result = runner.run(&sequence(), |ops| {
        let text = concretize(&ops, profile.model);
        let real = run_real(&bin, &text)
            .map_err(|e| TestCaseError::fail(format!("oracle run failed: {e}\nscenario:\n{text}")))?;
        let model = run_model(&text)
            .map_err(|e| TestCaseError::fail(format!("model run failed: {e}\nscenario:\n{text}")))?;
        let diffs = differences(&model, &real);
        let unexplained: Vec<&Difference> =
            diffs.iter().filter(|d| known(profile, d).is_none()).collect();
        {
            let mut s = summary.borrow_mut();
            s.runs += 1;
            s.steps += real.script.len();
            s.events += real.watches.values().map(Vec::len).sum::<usize>();
            for d in &diffs {
                if let Some(k) = known(profile, d) {
                    *s.known.entry(k).or_default() += 1;
                }
            }
        }
        if unexplained.is_empty() {
            return Ok(());
        }
        if survey() {
            let mut s = summary.borrow_mut();
            for d in &unexplained {
                s.survey.push(format!("{}\n{}", report(&[d]), text));
            }
            return Ok(());
        }
        Err(TestCaseError::fail(format!(
            "{} unexplained difference(s) between the model and Kubernetes {minor}:\n{}\nscenario:\n{text}",
            unexplained.len(),
            report(&unexplained)
        )))
    });
    let s = summary.borrow();
    uncaptured(&format!(
        "kube {minor} conformance: {} sequences ({} steps, {} real watch events) compared with the \
         model in {:.1?}; known differences: {:?}",
        s.runs,
        s.steps,
        s.events,
        started.elapsed(),
        s.known
    ));
    if !s.survey.is_empty() {
        panic!(
            "{} unexplained differences:\n{}",
            s.survey.len(),
            s.survey.join("\n-----\n")
        );
    }
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, ops)) => {
            panic!(
                "{reason}\nminimal sequence: {ops:?}\nscenario:\n{}",
                concretize(&ops, profile.model)
            )
        }
        Err(e) => panic!("{e}"),
    }
}
