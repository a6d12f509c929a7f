//! Informer stores (client-go `cache.Store` behind a reflector): an exact map of objects, or, for
//! large populations, an order-independent digest: the object count and a wrapping sum of a
//! 64-bit hash of `(key, resourceVersion)`, updated in O(1) per event (design.md "Scale").

use imbl::OrdMap;

use crate::proto::api::{EventType, Obj};
use crate::proto::etcd::Key;
use crate::scenario::StoreMode;

pub use crate::kernel::digest::{Digest, object_hash};

impl Digest {
    /// The digest of a map of objects.
    pub fn of(items: &OrdMap<Key, Obj>) -> Self {
        let mut d = Digest::default();
        for (k, o) in items.iter() {
            d.add(k, o.rv);
        }
        d
    }
}

/// One informer's store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InformerStore {
    /// Every object.
    Map(OrdMap<Key, Obj>),
    /// Count and hash sum only.
    Digest(Digest),
}

impl InformerStore {
    /// An empty store of the given kind.
    pub fn new(mode: StoreMode) -> Self {
        match mode {
            StoreMode::Map => InformerStore::Map(OrdMap::new()),
            StoreMode::Digest => InformerStore::Digest(Digest::default()),
        }
    }

    /// Which kind of store this is.
    pub fn mode(&self) -> StoreMode {
        match self {
            InformerStore::Map(_) => StoreMode::Map,
            InformerStore::Digest(_) => StoreMode::Digest,
        }
    }

    /// `Replace` after a LIST.
    pub fn replace(&mut self, items: &OrdMap<Key, Obj>) {
        self.replace_with(items, None);
    }

    /// `Replace`, reusing a digest the server already computed for exactly these items.
    pub fn replace_with(&mut self, items: &OrdMap<Key, Obj>, digest: Option<Digest>) {
        match self {
            InformerStore::Map(m) => *m = items.clone(),
            InformerStore::Digest(d) => *d = digest.unwrap_or_else(|| Digest::of(items)),
        }
    }

    /// Applies one watch event; `prev_rv` is the RV of the object version it replaces (0: none).
    pub fn apply(&mut self, kind: EventType, key: &Key, obj: Obj, prev_rv: i64) {
        match self {
            InformerStore::Map(m) => match kind {
                EventType::Deleted => {
                    m.remove(key);
                }
                _ => {
                    m.insert(key.clone(), obj);
                }
            },
            InformerStore::Digest(d) => {
                if prev_rv > 0 {
                    d.remove(key, prev_rv);
                }
                if kind != EventType::Deleted {
                    d.add(key, obj.rv);
                }
            }
        }
    }

    /// The store's digest.
    pub fn digest(&self) -> Digest {
        match self {
            InformerStore::Map(m) => Digest::of(m),
            InformerStore::Digest(d) => *d,
        }
    }

    /// Number of objects.
    pub fn len(&self) -> u64 {
        match self {
            InformerStore::Map(m) => m.len() as u64,
            InformerStore::Digest(d) => d.count,
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_and_map_agree_on_any_event_order() {
        let k = |s: &str| Key::new(s);
        let mut m = InformerStore::new(StoreMode::Map);
        let mut d = InformerStore::new(StoreMode::Digest);
        let items: OrdMap<Key, Obj> = [
            (
                k("a"),
                Obj {
                    rv: 2,
                    bytes: 1,
                    labels: 0,
                },
            ),
            (
                k("b"),
                Obj {
                    rv: 3,
                    bytes: 1,
                    labels: 0,
                },
            ),
        ]
        .into_iter()
        .collect();
        m.replace(&items);
        d.replace(&items);
        for s in [&mut m, &mut d] {
            s.apply(
                EventType::Modified,
                &k("a"),
                Obj {
                    rv: 4,
                    bytes: 1,
                    labels: 0,
                },
                2,
            );
            s.apply(
                EventType::Deleted,
                &k("b"),
                Obj {
                    rv: 5,
                    bytes: 1,
                    labels: 0,
                },
                3,
            );
            s.apply(
                EventType::Added,
                &k("c"),
                Obj {
                    rv: 6,
                    bytes: 1,
                    labels: 0,
                },
                0,
            );
        }
        assert_eq!(m.digest(), d.digest());
        assert_eq!(m.len(), 2);
        let mut wrong = d.clone();
        wrong.apply(
            EventType::Modified,
            &k("a"),
            Obj {
                rv: 7,
                bytes: 1,
                labels: 0,
            },
            3,
        );
        assert_ne!(
            wrong.digest(),
            m.digest(),
            "a wrong previous RV breaks the digest"
        );
    }
}
