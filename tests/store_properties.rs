//! Property tests (proptest) of the hot-path tables issue 16 put under the model, each against
//! the plain ordered map it replaces: the watch cache's store (hashed objects, ordered copy
//! brought up to date on demand), etcd's watch history log (a ring searched by key) and the
//! agenda's index (a B-tree while small, a timing wheel when large), and etcd's paged range
//! reads against a store that walks the whole range for every page's count. Any
//! sequence of writes and reads must give the same answers, and the same hash, as the ordered
//! map. Failing cases are kept in `tests/store_properties.proptest-regressions`.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use imbl::OrdMap;
use proptest::prelude::*;
use watchsim::apiserver::cache_store::CacheStore;
use watchsim::apiserver::watch_cache::Obj;
use watchsim::kernel::agenda::WHEEL_FROM;
use watchsim::kernel::ordered_log::OrderedLog;
use watchsim::kernel::{Agenda, EventKey};
use watchsim::proto::etcd::Key;

fn std_hash<T: Hash>(t: &T) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}

fn key(i: u8) -> Key {
    Key::new(&format!("/registry/pods/ns/p{i:03}"))
}

/// One step on the store: put key `i` at `rv`, remove key `i`, or read the ordered copy.
#[derive(Debug, Clone)]
enum StoreOp {
    Put(u8, i64),
    Remove(u8),
    ReadOrdered,
}

fn store_op() -> impl Strategy<Value = StoreOp> {
    prop_oneof![
        6 => (0u8..40, 1i64..1000).prop_map(|(i, rv)| StoreOp::Put(i, rv)),
        3 => (0u8..40).prop_map(StoreOp::Remove),
        1 => Just(StoreOp::ReadOrdered),
    ]
}

/// One step on the agenda: schedule an event `delay` after the last fired one's time (or at an
/// absolute time, as the explorer's out-of-order firings can leave), fire the first event, take
/// the event at a position (the explorer fires any enabled one), look one up, or walk them all.
#[derive(Debug, Clone)]
enum AgendaOp {
    After(u64),
    At(u64),
    FireFirst,
    TakeNth(usize),
    GetNth(usize),
    Walk,
}

fn agenda_op() -> impl Strategy<Value = AgendaOp> {
    prop_oneof![
        4 => (0u64..1 << 24).prop_map(AgendaOp::After),
        2 => (0u64..1 << 38).prop_map(AgendaOp::After),
        1 => prop_oneof![Just(u64::MAX), Just(u64::MAX - 1), 0u64..1 << 40].prop_map(AgendaOp::At),
        5 => Just(AgendaOp::FireFirst),
        1 => any::<usize>().prop_map(AgendaOp::TakeNth),
        1 => any::<usize>().prop_map(AgendaOp::GetNth),
        1 => Just(AgendaOp::Walk),
    ]
}

/// The agenda's hash as documented: each `(key, event)` in order, then the next sequence number.
fn agenda_model_hash(model: &BTreeMap<EventKey, u64>, next_seq: u64) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for (k, e) in model {
        (*k, e).hash(&mut h);
    }
    next_seq.hash(&mut h);
    h.finish()
}

proptest! {
    /// Starts below or above the wheel's threshold (up to three times it) and crosses it both
    /// ways as events are scheduled and fired.
    #[test]
    fn agenda_answers_as_an_ordered_map(
        initial in 0usize..3 * WHEEL_FROM,
        spread in 0u64..1 << 37,
        ops in prop::collection::vec(agenda_op(), 0..1500),
    ) {
        let mut agenda: Agenda<u64> = Agenda::new();
        let mut model: BTreeMap<EventKey, u64> = BTreeMap::new();
        let mut now = 0u64;
        let mut seq = 0u64;
        for i in 0..initial as u64 {
            let due = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % (spread + 1);
            model.insert(agenda.schedule(due, seq), seq);
            seq += 1;
        }
        for op in ops {
            let nth = |n: usize, model: &BTreeMap<EventKey, u64>| {
                model.keys().nth(n % model.len().max(1)).copied()
            };
            match op {
                AgendaOp::After(d) | AgendaOp::At(d) => {
                    let due = if matches!(op, AgendaOp::After(_)) { now.saturating_add(d) } else { d };
                    let key = agenda.schedule(due, seq);
                    prop_assert_eq!(key, EventKey { due_ns: due, seq });
                    model.insert(key, seq);
                    seq += 1;
                }
                AgendaOp::FireFirst => {
                    // The second event, when the agenda names it, is the model's second.
                    if let Some((k, e)) = agenda.second() {
                        prop_assert_eq!(Some((k, *e)), model.iter().nth(1).map(|(k, e)| (*k, *e)));
                    }
                    let want = model.pop_first();
                    let got = agenda.first().map(|(k, e)| (k, *e));
                    prop_assert_eq!(got, want);
                    if let Some((k, e)) = want {
                        prop_assert_eq!(agenda.take(k), Some(e));
                        now = now.max(k.due_ns);
                    }
                }
                AgendaOp::TakeNth(n) => {
                    if let Some(k) = nth(n, &model) {
                        prop_assert_eq!(agenda.take(k), model.remove(&k));
                        prop_assert_eq!(agenda.take(k), None);
                    }
                }
                AgendaOp::GetNth(n) => {
                    if let Some(k) = nth(n, &model) {
                        prop_assert_eq!(agenda.get(k), model.get(&k));
                        let missing = EventKey { due_ns: k.due_ns, seq: seq + 1 };
                        prop_assert_eq!(agenda.get(missing), None);
                    }
                }
                AgendaOp::Walk => {
                    let got: Vec<(EventKey, u64)> = agenda.iter().map(|(k, e)| (k, *e)).collect();
                    let want: Vec<(EventKey, u64)> = model.iter().map(|(k, e)| (*k, *e)).collect();
                    prop_assert_eq!(got, want);
                }
            }
            prop_assert_eq!(agenda.len(), model.len());
            prop_assert_eq!(agenda.first().map(|(k, _)| k), model.keys().next().copied());
        }
        prop_assert_eq!(std_hash(&agenda), agenda_model_hash(&model, seq));
        let copy = agenda.clone();
        prop_assert_eq!(&copy, &agenda);
    }

    #[test]
    fn cache_store_answers_as_an_ordered_map(
        initial in prop::collection::vec((0u8..40, 1i64..1000), 0..20),
        ops in prop::collection::vec(store_op(), 0..400),
    ) {
        let mut model: OrdMap<Key, Obj> = OrdMap::new();
        for (i, rv) in initial {
            model.insert(key(i), Obj { rv, bytes: 1, labels: 0 });
        }
        let mut store = CacheStore::default();
        store.replace(model.clone());
        let mut generation = store.generation();
        for op in ops {
            match op {
                StoreOp::Put(i, rv) => {
                    let obj = Obj { rv, bytes: rv as u64, labels: 0 };
                    prop_assert_eq!(store.put(&key(i), obj), model.insert(key(i), obj));
                }
                StoreOp::Remove(i) => {
                    let had = model.contains_key(&key(i));
                    prop_assert_eq!(store.remove(&key(i)), model.remove(&key(i)));
                    if !had {
                        prop_assert_eq!(store.generation(), generation, "no change, same generation");
                    }
                }
                StoreOp::ReadOrdered => prop_assert_eq!(store.ordered(), model.clone()),
            }
            prop_assert!(store.generation() >= generation);
            generation = store.generation();
            prop_assert_eq!(store.len(), model.len());
        }
        prop_assert_eq!(store.ordered(), model.clone());
        prop_assert_eq!(std_hash(&store), std_hash(&model));
        prop_assert_eq!(store.clone(), store);
    }

    #[test]
    fn ordered_log_ranges_as_an_ordered_map(
        gaps in prop::collection::vec(1u32..4, 0..200),
        trims in prop::collection::vec(0u32..700, 0..4),
        probes in prop::collection::vec(0u32..700, 1..20),
    ) {
        let mut log = OrderedLog::new();
        let mut model = BTreeMap::new();
        let mut k = 0u32;
        for (n, gap) in gaps.into_iter().enumerate() {
            k += gap;
            log.push(k, n);
            model.insert(k, n);
        }
        for t in std::iter::once(0).chain(trims) {
            log.drop_below(t);
            model = model.split_off(&t);
            for &p in &probes {
                let got: Vec<(u32, usize)> = log.range_from(p).map(|(k, v)| (*k, *v)).collect();
                let want: Vec<(u32, usize)> = model.range(p..).map(|(k, v)| (*k, *v)).collect();
                prop_assert_eq!(got, want, "from {}", p);
            }
        }
        prop_assert_eq!(log.len(), model.len());
        prop_assert_eq!(log.first_key(), model.keys().next().copied());
    }
}

/// One write to the store of the paging property: put or delete key `i` of one of two
/// neighbouring prefixes (`/registry/pods/` and `/registry/podsx/`, whose keys sort right after).
#[derive(Debug, Clone)]
enum EtcdWrite {
    Put(bool, u8),
    Delete(bool, u8),
}

fn etcd_key(other: bool, i: u8) -> Key {
    let prefix = if other {
        "/registry/podsx/"
    } else {
        "/registry/pods/"
    };
    Key::new(&format!("{prefix}p{i:02}"))
}

fn etcd_write() -> impl Strategy<Value = EtcdWrite> {
    prop_oneof![
        4 => (any::<bool>(), 0u8..30).prop_map(|(o, i)| EtcdWrite::Put(o, i)),
        1 => (any::<bool>(), 0u8..30).prop_map(|(o, i)| EtcdWrite::Delete(o, i)),
    ]
}

fn apply_write(store: &mut watchsim::etcd::Store, w: &EtcdWrite) {
    use watchsim::proto::etcd::KeyRange;
    match *w {
        EtcdWrite::Put(o, i) => {
            store.put(&etcd_key(o, i), 10 + i as u64);
        }
        EtcdWrite::Delete(o, i) => {
            store.delete(&KeyRange::Single(etcd_key(o, i)));
        }
    }
}

proptest! {
    /// A paged range read (etcd's `limit` and continuation after the last key, at one
    /// revision) gives, page by page, exactly what a store without the carried-over count
    /// gives (a clone starts with none): the same keys, counts and `more`, whatever is
    /// written, or compacted below the read's revision, between the pages.
    #[test]
    fn paged_ranges_count_as_a_full_walk(
        history in prop::collection::vec(etcd_write(), 1..120),
        between in prop::collection::vec(prop::collection::vec(etcd_write(), 0..4), 0..40),
        back in 0i64..60,
        limit in 1i64..7,
        compact_between in any::<bool>(),
    ) {
        use watchsim::proto::etcd::KeyRange;
        let mut store = watchsim::etcd::Store::new();
        for w in &history {
            apply_write(&mut store, w);
        }
        let at = (store.revision() - back).max(1);
        let prefix = Key::new("/registry/pods/");
        let all = store.range(&KeyRange::Prefix(prefix.clone()), at, 0).unwrap();
        let mut seen = Vec::new();
        let mut range = KeyRange::Prefix(prefix.clone());
        for page in 0.. {
            let fresh = store.clone().range(&range, at, limit).unwrap();
            let got = store.range(&range, at, limit).unwrap();
            prop_assert_eq!(&got, &fresh, "page {}", page);
            seen.extend(got.kvs.iter().cloned());
            let Some(last) = got.kvs.last().filter(|_| got.more) else {
                break;
            };
            range = KeyRange::PrefixAfter {
                prefix: prefix.clone(),
                after: last.key.clone(),
            };
            for w in between.get(page).into_iter().flatten() {
                apply_write(&mut store, w);
            }
            if compact_between && page == 0 {
                prop_assert!(store.compact(at).is_ok());
            }
        }
        prop_assert_eq!(seen, all.kvs);
    }
}
