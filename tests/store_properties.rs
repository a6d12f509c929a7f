//! Property tests (proptest) of the hot-path tables issue 16 put under the model, each against
//! the plain ordered map it replaces: the watch cache's store (hashed objects, ordered copy
//! brought up to date on demand) and etcd's watch history log (a ring searched by key). Any
//! sequence of writes and reads must give the same answers, and the same hash, as the ordered
//! map. Failing cases are kept in `tests/store_properties.proptest-regressions`.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use imbl::OrdMap;
use proptest::prelude::*;
use watchsim::apiserver::cache_store::CacheStore;
use watchsim::apiserver::watch_cache::Obj;
use watchsim::kernel::ordered_log::OrderedLog;
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

proptest! {
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
