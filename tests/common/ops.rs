//! Scripted `etcd.*` steps (SPEC §3), their scenario-TOML rendering, and [`Tracker`], a small
//! reference of etcd's revision/compaction/watch rules.
//!
//! The tracker is NOT the oracle of the conformance test (real etcd is). It is used to
//! 1. turn abstract generated choices ("a compacted revision", "the compact revision") into
//!    concrete numbers and to steer around the known etcd 3.4.23 bugs;
//! 2. know how many events a real watch must have received before the harness may go on (so
//!    the real run is as "caught up" as the simulator's 1-second step spacing makes the model);
//! 3. tell a model bug from a timing accident: when real etcd answered exactly like the tracker,
//!    a difference with the model is reported at once, otherwise the real run is repeated first.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Value, json};

/// Value size used for every put (values are not part of any compared shape).
pub const VALUE_BYTES: usize = 10;

/// One scripted step.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Put {
        key: String,
    },
    Delete {
        key: String,
        prefix: bool,
    },
    Range {
        key: String,
        prefix: bool,
        revision: i64,
        limit: i64,
    },
    Compact {
        revision: i64,
    },
    Watch {
        id: String,
        key: String,
        prefix: bool,
        start_revision: i64,
        progress_notify: bool,
    },
    Progress {
        id: String,
    },
    Cancel {
        id: String,
    },
}

impl Step {
    /// The SPEC op name.
    pub fn op(&self) -> &'static str {
        match self {
            Step::Put { .. } => "etcd.put",
            Step::Delete { .. } => "etcd.delete",
            Step::Range { .. } => "etcd.range",
            Step::Compact { .. } => "etcd.compact",
            Step::Watch { .. } => "etcd.watch",
            Step::Progress { .. } => "etcd.progress",
            Step::Cancel { .. } => "etcd.cancel",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = |prefix: &bool| if *prefix { "*" } else { "" };
        match self {
            Step::Put { key } => write!(f, "put {key}"),
            Step::Delete { key, prefix } => write!(f, "delete {key}{}", p(prefix)),
            Step::Range {
                key,
                prefix,
                revision,
                limit,
            } => {
                write!(f, "range {key}{} rev={revision} limit={limit}", p(prefix))
            }
            Step::Compact { revision } => write!(f, "compact {revision}"),
            Step::Watch {
                id,
                key,
                prefix,
                start_revision,
                progress_notify,
            } => write!(
                f,
                "watch {id} {key}{} from={start_revision}{}",
                p(prefix),
                if *progress_notify {
                    " progress_notify"
                } else {
                    ""
                }
            ),
            Step::Progress { id } => write!(f, "progress {id}"),
            Step::Cancel { id } => write!(f, "cancel {id}"),
        }
    }
}

fn toml_str(s: &str) -> String {
    // JSON string syntax is valid TOML basic-string syntax for the ASCII keys used here.
    serde_json::to_string(s).expect("string")
}

/// Renders steps as a scenario (one step per second from `1s`).
pub fn scenario_toml(steps: &[Step]) -> String {
    let mut s = String::new();
    s.push_str("name = \"etcd-conformance\"\n");
    s.push_str("description = \"differential conformance sequence (tests/etcd_conformance.rs)\"\n");
    s.push_str(&format!("duration = \"{}s\"\n", steps.len() + 5));
    for (i, step) in steps.iter().enumerate() {
        s.push_str(&format!(
            "\n[[steps]]\nat = \"{}s\"\nop = \"{}\"\n",
            i + 1,
            step.op()
        ));
        match step {
            Step::Put { key } => {
                s.push_str(&format!(
                    "key = {}\nvalue_bytes = {VALUE_BYTES}\n",
                    toml_str(key)
                ));
            }
            Step::Delete { key, prefix } => {
                s.push_str(&format!("key = {}\nprefix = {prefix}\n", toml_str(key)));
            }
            Step::Range {
                key,
                prefix,
                revision,
                limit,
            } => s.push_str(&format!(
                "key = {}\nprefix = {prefix}\nrevision = {revision}\nlimit = {limit}\n",
                toml_str(key)
            )),
            Step::Compact { revision } => s.push_str(&format!("revision = {revision}\n")),
            Step::Watch {
                id,
                key,
                prefix,
                start_revision,
                progress_notify,
            } => s.push_str(&format!(
                "id = {}\nkey = {}\nprefix = {prefix}\nstart_revision = {start_revision}\n\
                 progress_notify = {progress_notify}\n",
                toml_str(id),
                toml_str(key)
            )),
            Step::Progress { id } | Step::Cancel { id } => {
                s.push_str(&format!("id = {}\n", toml_str(id)));
            }
        }
    }
    s
}

/// Both sides' answers in SPEC shapes: one result per step, events per watch id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Answers {
    pub results: Vec<Value>,
    pub watches: BTreeMap<String, Vec<Value>>,
}

// ------------------------------------------------------------------------------------------------
// Tracker

#[derive(Clone, Copy, Debug, PartialEq)]
struct Meta {
    create: i64,
    modified: i64,
    version: i64,
}

#[derive(Clone, Debug)]
struct Change {
    rev: i64,
    key: String,
    /// `None` = delete.
    put: Option<Meta>,
}

/// Where a tracked watch is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchState {
    /// Receiving events.
    Open,
    /// Canceled by etcd because its start revision was compacted.
    Compacted,
    /// Canceled by the client.
    Closed,
}

#[derive(Clone, Debug)]
struct TrackedWatch {
    key: String,
    prefix: bool,
    start_requested: i64,
    start: i64,
    state: WatchState,
    events: Vec<Value>,
    change_events: usize,
}

fn matches(key: &str, prefix: bool, k: &str) -> bool {
    if prefix { k.starts_with(key) } else { k == key }
}

fn change_event(c: &Change) -> Value {
    match c.put {
        Some(m) => json!({"type": "PUT", "key": c.key, "mod_revision": m.modified,
                          "create_revision": m.create, "version": m.version}),
        None => json!({"type": "DELETE", "key": c.key, "mod_revision": c.rev,
                       "create_revision": 0, "version": 0}),
    }
}

/// A reference of the rules in `shared/reference/etcd-semantics.md` Part A (A1, A2, A4, A5, A6),
/// with the fixed (current etcd) behaviour.
#[derive(Clone, Debug)]
pub struct Tracker {
    /// Store revision (fresh store: 1).
    pub rev: i64,
    /// Compact revision (-1 = never compacted, as in etcd).
    pub compact: i64,
    history: Vec<Change>,
    live: BTreeMap<String, Meta>,
    watches: BTreeMap<String, TrackedWatch>,
    /// Watch ids in creation order.
    pub watch_ids: Vec<String>,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            rev: 1,
            compact: -1,
            history: Vec::new(),
            live: BTreeMap::new(),
            watches: BTreeMap::new(),
            watch_ids: Vec::new(),
        }
    }
}

impl Tracker {
    fn state_at(&self, rev: i64) -> BTreeMap<String, Meta> {
        let mut state = BTreeMap::new();
        for c in self.history.iter().take_while(|c| c.rev <= rev) {
            match c.put {
                Some(m) => state.insert(c.key.clone(), m),
                None => state.remove(&c.key),
            };
        }
        state
    }

    fn revision_error(&self, revision: i64) -> Option<Value> {
        if revision > self.rev {
            Some(json!({"error": "future_revision"}))
        } else if revision < self.compact {
            Some(json!({"error": "compacted", "compact_revision": self.compact}))
        } else {
            None
        }
    }

    fn record(&mut self, changes: Vec<Change>) {
        for w in self.watches.values_mut() {
            if w.state != WatchState::Open {
                continue;
            }
            for c in &changes {
                if c.rev >= w.start && matches(&w.key, w.prefix, &c.key) {
                    w.events.push(change_event(c));
                    w.change_events += 1;
                }
            }
        }
        self.history.extend(changes);
    }

    /// Applies a step; returns its SPEC result.
    pub fn apply(&mut self, step: &Step) -> Value {
        match step {
            Step::Put { key } => {
                let rev = self.rev + 1;
                let meta = match self.live.get(key) {
                    Some(m) => Meta {
                        create: m.create,
                        modified: rev,
                        version: m.version + 1,
                    },
                    None => Meta {
                        create: rev,
                        modified: rev,
                        version: 1,
                    },
                };
                self.rev = rev;
                self.live.insert(key.clone(), meta);
                self.record(vec![Change {
                    rev,
                    key: key.clone(),
                    put: Some(meta),
                }]);
                json!({"revision": rev})
            }
            Step::Delete { key, prefix } => {
                let gone: Vec<String> = self
                    .live
                    .keys()
                    .filter(|k| matches(key, *prefix, k))
                    .cloned()
                    .collect();
                if gone.is_empty() {
                    return json!({"revision": self.rev, "deleted": 0});
                }
                self.rev += 1;
                let rev = self.rev;
                for k in &gone {
                    self.live.remove(k);
                }
                let n = gone.len();
                self.record(
                    gone.into_iter()
                        .map(|key| Change {
                            rev,
                            key,
                            put: None,
                        })
                        .collect(),
                );
                json!({"revision": rev, "deleted": n})
            }
            Step::Range {
                key,
                prefix,
                revision,
                limit,
            } => {
                if *revision > 0
                    && let Some(e) = self.revision_error(*revision)
                {
                    return e;
                }
                let state = if *revision > 0 {
                    self.state_at(*revision)
                } else {
                    self.live.clone()
                };
                let all: Vec<(&String, &Meta)> = state
                    .iter()
                    .filter(|(k, _)| matches(key, *prefix, k))
                    .collect();
                let count = all.len() as i64;
                let take = if *limit > 0 {
                    (*limit as usize).min(all.len())
                } else {
                    all.len()
                };
                let kvs: Vec<Value> = all[..take]
                    .iter()
                    .map(|(k, m)| json!({"key": k, "create_revision": m.create, "mod_revision": m.modified, "version": m.version}))
                    .collect();
                json!({"revision": self.rev, "count": count, "more": (take as i64) < count, "kvs": kvs})
            }
            Step::Compact { revision } => {
                if *revision <= self.compact {
                    return json!({"error": "compacted", "compact_revision": self.compact});
                }
                if *revision > self.rev {
                    return json!({"error": "future_revision"});
                }
                self.compact = *revision;
                json!({"revision": self.rev})
            }
            Step::Watch {
                id,
                key,
                prefix,
                start_revision,
                ..
            } => {
                let mut w = TrackedWatch {
                    key: key.clone(),
                    prefix: *prefix,
                    start_requested: *start_revision,
                    start: if *start_revision > 0 {
                        *start_revision
                    } else {
                        self.rev + 1
                    },
                    state: WatchState::Open,
                    events: Vec::new(),
                    change_events: 0,
                };
                if *start_revision > 0 && *start_revision < self.compact {
                    w.state = WatchState::Compacted;
                    w.events
                        .push(json!({"type": "CANCELED", "compact_revision": self.compact}));
                } else {
                    for c in self
                        .history
                        .iter()
                        .filter(|c| c.rev >= w.start && matches(key, *prefix, &c.key))
                    {
                        w.events.push(change_event(c));
                        w.change_events += 1;
                    }
                }
                self.watches.insert(id.clone(), w);
                self.watch_ids.push(id.clone());
                json!({"created": true})
            }
            Step::Progress { id } => {
                let rev = self.rev;
                if let Some(w) = self.watches.get_mut(id)
                    && w.state == WatchState::Open
                {
                    w.events.push(json!({"type": "PROGRESS", "revision": rev}));
                }
                json!({})
            }
            Step::Cancel { id } => {
                if let Some(w) = self.watches.get_mut(id) {
                    // etcd answers a cancel of a registered watch id with a `canceled` response
                    // (compact revision 0), also when compaction already canceled the watcher.
                    if w.state != WatchState::Closed {
                        w.state = WatchState::Closed;
                        w.events
                            .push(json!({"type": "CANCELED", "compact_revision": 0}));
                    }
                }
                json!({})
            }
        }
    }

    /// Runs all steps from a fresh store.
    pub fn answers(steps: &[Step]) -> Answers {
        let mut t = Tracker::default();
        let results = steps.iter().map(|s| t.apply(s)).collect();
        Answers {
            results,
            watches: t
                .watches
                .into_iter()
                .map(|(id, w)| (id, w.events))
                .collect(),
        }
    }

    /// What a caught-up watch has received so far: (PUT/DELETE event count, state).
    pub fn expected(&self, id: &str) -> Option<(usize, WatchState)> {
        self.watches.get(id).map(|w| (w.change_events, w.state))
    }

    /// The watch's state.
    pub fn watch_state(&self, id: &str) -> Option<WatchState> {
        self.watches.get(id).map(|w| w.state)
    }

    /// Whether an on-demand progress request on this watch has the same answer in etcd 3.4.23 and
    /// in fixed etcd: the watch is open and its start revision is not in the future (since the
    /// fix for #20221, PR #20229, a watcher with `rev < startRev` gets no progress
    /// notification; 3.4.23 answers anyway). Canceled watches are excluded as well: fixed etcd
    /// sends nothing on a stream without live watchers, 3.4.23 sends a progress response.
    pub fn progress_comparable(&self, id: &str) -> bool {
        self.watches
            .get(id)
            .is_some_and(|w| w.state == WatchState::Open && w.start_requested <= self.rev)
    }

    /// Whether revision `rev` holds a delete of a key in the given range (for #18089).
    pub fn delete_at(&self, rev: i64, key: &str, prefix: bool) -> bool {
        self.history
            .iter()
            .any(|c| c.rev == rev && c.put.is_none() && matches(key, prefix, &c.key))
    }
}
