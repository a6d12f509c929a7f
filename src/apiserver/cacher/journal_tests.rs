//! The run journals change nothing a cacher does (issue 16): two cachers driven through the
//! same watchers, events, bookmarks, interval refills, removals and explorer operations, one
//! keeping a journal for every prefix set and one for none, ask for the same effects in the
//! same order and compare, hash and print as the same state after every operation.

use super::dispatch::tests::Recorder;
use super::*;
use crate::apiserver::selector::Selector;
use crate::proto::selector::LabelTable;
use proptest::prelude::*;

/// One thing done to both cachers.
#[derive(Debug, Clone)]
enum Op {
    /// A watcher on `conn`: scope (0: all pods, 1: namespace `ns`, 2: one pod), a label
    /// selector or none, reading at once or at 2 events a second, bookmarks, and where it
    /// starts (0: now, 1: a snapshot, 2: since an RV a few events back).
    Watch {
        conn: ConnId,
        scope: u8,
        selector: bool,
        slow: bool,
        bookmarks: bool,
        start: u8,
    },
    /// An event on pod `name` (deleted if `delete`), with label set `labels`.
    Event { name: u8, delete: bool, labels: u8 },
    /// The same RV again (a replayed etcd event): nobody gets it twice.
    Replay,
    /// Twenty seconds pass; the bookmark tick runs (every few ticks, watchers are due).
    Tick,
    /// The interval refill of `conn`'s watcher.
    Refill(ConnId),
    /// `conn`'s client went away.
    Forget(ConnId),
    /// The explorer's time abstraction (every watcher's body changes).
    EraseTimes,
    /// The explorer's symmetry renaming (here, connections and clients 1 and 2 swapped).
    Relabel,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..12, 0u8..3, any::<bool>(), prop::bool::weighted(0.2), any::<bool>(), 0u8..3)
            .prop_map(|(conn, scope, selector, slow, bookmarks, start)| Op::Watch {
                conn: conn + 1, scope, selector, slow, bookmarks, start,
            }),
        8 => (0u8..4, prop::bool::weighted(0.15), 0u8..2)
            .prop_map(|(name, delete, labels)| Op::Event { name, delete, labels }),
        1 => Just(Op::Replay),
        2 => Just(Op::Tick),
        1 => (1u64..13).prop_map(Op::Refill),
        2 => (1u64..13).prop_map(Op::Forget),
        1 => Just(Op::EraseTimes),
        1 => Just(Op::Relabel),
    ]
}

fn pod(name: u8) -> Key {
    let ns = if name < 2 { "ns" } else { "other" };
    Key::new(&format!("/registry/pods/{ns}/p{name}"))
}

fn new_cacher(journal_min: usize) -> Cacher {
    let mut c = Cacher::new(
        0,
        0,
        Key::new("/registry/pods/"),
        WatchCache::with_bounds(8, 8, 8, 0, false),
        0,
        BOOKMARK_FREQUENCY_NS,
    );
    c.set_journal_min_watchers(journal_min);
    c.replace(OrdMap::new(), 1, 0);
    c
}

/// Both cachers and what each asked for.
struct Pair {
    cachers: [Cacher; 2],
    hosts: [Recorder; 2],
    rngs: [RngStream; 2],
    now: Nanos,
    rv: i64,
    last: Option<(u8, bool, u8)>,
}

impl Pair {
    fn apply(&mut self, op: &Op) {
        self.now += 1_000_000;
        if let Op::Event { .. } = op {
            self.rv += 1;
        }
        if let Op::Tick = op {
            self.now += 20_000_000_000;
        }
        let (rv, now) = (self.rv, self.now);
        for i in 0..2 {
            let c = &mut self.cachers[i];
            let mut out = Out::new(now, &mut self.hosts[i]);
            match *op {
                Op::Watch {
                    conn,
                    scope,
                    selector,
                    slow,
                    bookmarks,
                    start,
                } => {
                    if c.has_watcher(conn) {
                        continue;
                    }
                    let scope = match scope {
                        0 => KeyRange::Prefix(Key::new("/registry/pods/")),
                        1 => KeyRange::Prefix(Key::new("/registry/pods/ns/")),
                        _ => KeyRange::Single(pod(0)),
                    };
                    let selector = if selector {
                        Selector::compile(Some("app=a"), None, &LabelTable::default())
                            .expect("a selector")
                    } else {
                        Selector::everything()
                    };
                    let rate = if slow {
                        ReadRate::PerSecond(2)
                    } else {
                        ReadRate::Instant
                    };
                    let initial = match start {
                        0 => Initial::Now,
                        1 => Initial::Snapshot { end_bookmark: true },
                        _ => Initial::Since((rv - 3).max(1)),
                    };
                    c.add_watcher(
                        now,
                        conn,
                        scope,
                        selector,
                        bookmarks,
                        now + 600_000_000_000,
                        rate,
                        initial,
                        &mut out,
                        &mut self.rngs[i],
                    );
                }
                Op::Event {
                    name,
                    delete,
                    labels,
                } => {
                    event(c, &mut out, now, pod(name), rv, delete, labels);
                    self.last = Some((name, delete, labels));
                }
                Op::Replay => {
                    if let Some((name, delete, labels)) = self.last {
                        event(c, &mut out, now, pod(name), rv, delete, labels);
                    }
                }
                Op::Tick => c.bookmark_tick(now, &mut out, &mut self.rngs[i]),
                Op::Refill(conn) => {
                    c.interval_refill(now, conn, &mut out);
                }
                Op::Forget(conn) => {
                    c.forget(conn);
                }
                Op::EraseTimes => c.erase_times(),
                Op::Relabel => {
                    // Clients and connections 1 and 2 swapped.
                    let mut clients: Vec<u32> = (0..16).collect();
                    clients.swap(1, 2);
                    let r = crate::proto::Relabel {
                        clients,
                        conns: [(1, 2), (2, 1)].into_iter().collect(),
                    };
                    c.relabel(&r);
                }
            }
        }
    }
}

/// An etcd event on `key` at `rv` through `process_event`.
fn event(
    c: &mut Cacher,
    out: &mut Out<'_>,
    now: Nanos,
    key: Key,
    rv: i64,
    delete: bool,
    labels: u8,
) {
    let new = (!delete).then_some(crate::apiserver::watch_cache::Obj {
        rv,
        bytes: 10,
        labels: u32::from(labels),
    });
    let build = |prev: Option<crate::apiserver::watch_cache::Obj>| CacheEvent {
        kind: match (&prev, delete) {
            (_, true) => EventType::Deleted,
            (Some(_), false) => EventType::Modified,
            (None, false) => EventType::Added,
        },
        key: key.clone(),
        rv,
        bytes: 10,
        prev_rv: prev.as_ref().map_or(0, |p| p.rv),
        labels: u32::from(labels),
        prev_labels: prev.map_or(0, |p| p.labels),
        time_ns: now,
    };
    let mut closed = Vec::new();
    c.process_event(now, &key.clone(), new, build, out, &mut closed);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1024,
        ..crate::kernel::proptest_kept("tests/cacher_journals.proptest-regressions")
    })]

    /// Whatever watchers come and go, whatever they read and however fast, a cacher that keeps
    /// a journal for every prefix set asks for exactly the effects one without journals does,
    /// and the two are the same state (compared, hashed, printed) after every operation.
    #[test]
    fn journals_change_no_effect_and_no_state(ops in prop::collection::vec(op(), 1..120)) {
        let mut pair = Pair {
            cachers: [new_cacher(1), new_cacher(usize::MAX)],
            hosts: Default::default(),
            rngs: [RngStream::new(7, "journal"), RngStream::new(7, "journal")],
            now: 0,
            rv: 1,
            last: None,
        };
        for (n, op) in ops.iter().enumerate() {
            pair.apply(op);
            let [with, without] = &pair.cachers;
            prop_assert_eq!(&pair.hosts[0].applied, &pair.hosts[1].applied, "op {} {:?}", n, op);
            prop_assert!(with == without, "op {} {:?}: states differ", n, op);
            prop_assert_eq!(hash_of(with), hash_of(without));
            prop_assert_eq!(printed(with), printed(without));
        }
    }
}

/// How a cacher prints, but for its journal setting (printed with its configuration).
fn printed(c: &Cacher) -> String {
    let text = format!("{c:?}");
    let setting = text.find("journal_min_watchers").unwrap_or(text.len());
    text[..setting].to_string()
}

fn hash_of<T: std::hash::Hash>(t: &T) -> u64 {
    crate::kernel::std_hash_of(t)
}

/// The journal is used: once a prefix set's watchers all took an event, the next event reaches
/// them through it, and a watcher that a bookmark touched leaves and comes back.
#[test]
fn members_take_events_together_and_rejoin_after_a_bookmark() {
    let mut c = new_cacher(2);
    let mut host = Recorder::default();
    let mut rng = RngStream::new(1, "t");
    for conn in 1..=3 {
        let mut out = Out::new(0, &mut host);
        c.add_watcher(
            0,
            conn,
            KeyRange::Prefix(Key::new("/registry/pods/")),
            Selector::everything(),
            true,
            600_000_000_000,
            ReadRate::Instant,
            Initial::Now,
            &mut out,
            &mut rng,
        );
    }
    let members = |c: &Cacher| {
        let set = c.index.by_prefix.get("/registry/pods/").expect("the set");
        let r = set.journal.get().expect("a journal");
        let mut journals = c.watchers.clone();
        let pass = journals.take_journal(r);
        (pass.rv, pass.members.len())
    };
    for rv in 2..4 {
        let mut out = Out::new(rv as Nanos, &mut host);
        event(&mut c, &mut out, rv as Nanos, pod(0), rv, false, 0);
    }
    assert_eq!(
        members(&c),
        (3, 3),
        "all three joined at RV 2 and took RV 3 together"
    );
    {
        let mut w = c.watchers.get_mut(2).expect("watcher 2");
        *w.rv_sent() = 3;
    }
    assert_eq!(c.watchers.checkout(2).map(|w| w.rv_sent), Some(3));
    let mut out = Out::new(10, &mut host);
    event(&mut c, &mut out, 10, pod(1), 4, false, 0);
    assert_eq!(members(&c), (4, 3), "watcher 2 left and joined again");
    assert_eq!(c.watchers.checkout(1).map(|w| w.rv_sent), Some(4));
}
