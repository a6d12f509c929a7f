//! The apiserver's freshness waits by id (reads waiting for the watch cache to reach an RV,
//! `watch_cache.go waitUntilFreshAndBlock`), with an index by `(resource, target RV)` so that a
//! cache moving forward finds the waits it now satisfies without walking all of them (issue 16:
//! `cluster-15k`'s start, 30,000 informers' consistent LISTs waiting at once, spent 14 % of its
//! instructions in that walk). The index is derived: equality and hashing see the waits only.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};

use imbl::OrdMap;

use super::Wait;
use crate::proto::api::ResourceId;

/// The waits, by id (see the module doc).
#[derive(Debug, Clone, Default)]
pub(super) struct WaitTable {
    waits: OrdMap<u64, Wait>,
    /// `(resource, target RV, id)` of every wait whose target is known (above 0).
    by_target: BTreeSet<(ResourceId, i64, u64)>,
}

impl PartialEq for WaitTable {
    fn eq(&self, other: &Self) -> bool {
        self.waits == other.waits
    }
}

impl Eq for WaitTable {}

/// Hashed as the map of waits alone, as before the index.
impl Hash for WaitTable {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.waits.hash(h);
    }
}

impl WaitTable {
    fn index(&mut self, id: u64, resource: ResourceId, target_rv: i64) {
        if target_rv > 0 {
            self.by_target.insert((resource, target_rv, id));
        }
    }

    fn unindex(&mut self, id: u64) {
        if let Some(w) = self.waits.get(&id)
            && w.target_rv > 0
        {
            self.by_target.remove(&(w.resource, w.target_rv, id));
        }
    }

    /// Adds (or replaces) wait `id`.
    pub fn insert(&mut self, id: u64, w: Wait) {
        self.unindex(id);
        self.index(id, w.resource, w.target_rv);
        self.waits.insert(id, w);
    }

    /// Removes wait `id`.
    pub fn remove(&mut self, id: &u64) -> Option<Wait> {
        self.unindex(*id);
        self.waits.remove(id)
    }

    /// Wait `id`.
    pub fn get(&self, id: &u64) -> Option<&Wait> {
        self.waits.get(id)
    }

    /// Sets wait `id`'s target RV (the probe of etcd's current revision answered).
    pub fn set_target(&mut self, id: u64, target_rv: i64) {
        self.unindex(id);
        if let Some(w) = self.waits.get_mut(&id) {
            w.target_rv = target_rv;
            let resource = w.resource;
            self.index(id, resource, target_rv);
        }
    }

    /// True when nobody waits.
    pub fn is_empty(&self) -> bool {
        self.waits.is_empty()
    }

    /// Every wait, by id.
    pub fn iter(&self) -> impl Iterator<Item = (&u64, &Wait)> {
        self.waits.iter()
    }

    /// Every wait, by id, taken out (to rebuild the table renamed).
    pub fn into_entries(self) -> impl Iterator<Item = (u64, Wait)> {
        self.waits.into_iter()
    }

    /// The ids, in order, of the waits on `resource` whose target is known and at most `rv`.
    pub fn due(&self, resource: ResourceId, rv: i64) -> Vec<u64> {
        // Nearly always nobody waits (it is asked after every cache event): an emptied
        // `BTreeSet` keeps its root node, and walking it was a cache line a call (issue 16).
        if rv < 1 || self.by_target.is_empty() {
            return Vec::new();
        }
        let mut ids: Vec<u64> = self
            .by_target
            .range((resource, 1, 0)..=(resource, rv, u64::MAX))
            .map(|&(_, _, id)| id)
            .collect();
        ids.sort_unstable();
        ids
    }
}

impl FromIterator<(u64, Wait)> for WaitTable {
    fn from_iter<I: IntoIterator<Item = (u64, Wait)>>(iter: I) -> Self {
        let mut t = WaitTable::default();
        for (id, w) in iter {
            t.insert(id, w);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::super::WaitKind;
    use super::*;
    use crate::proto::etcd::Key;
    use proptest::prelude::*;

    fn wait(resource: ResourceId, target_rv: i64) -> Wait {
        Wait {
            resource,
            target_rv,
            kind: WaitKind::Get {
                conn: 1,
                req_id: 0,
                key: Key::new("/registry/pods/a"),
            },
        }
    }

    proptest! {
        #![proptest_config(crate::kernel::proptest_kept("tests/wait_table.proptest-regressions"))]

        /// `due` answers as the walk over every wait it replaces, after any sequence of adds,
        /// removals and targets set.
        #[test]
        fn due_answers_as_a_walk(
            ops in prop::collection::vec((0u8..3, 0u64..30, 0u32..3, 0i64..20), 0..200),
            probes in prop::collection::vec((0u32..3, -1i64..22), 1..10),
        ) {
            let mut t = WaitTable::default();
            for (op, id, resource, rv) in ops {
                match op {
                    0 => t.insert(id, wait(resource, rv)),
                    1 => { t.remove(&id); }
                    _ => t.set_target(id, rv),
                }
            }
            for (resource, rv) in probes {
                let walk: Vec<u64> = t
                    .iter()
                    .filter(|(_, w)| w.resource == resource && w.target_rv > 0 && w.target_rv <= rv)
                    .map(|(id, _)| *id)
                    .collect();
                prop_assert_eq!(t.due(resource, rv), walk);
            }
            let rebuilt: WaitTable = t.clone().into_entries().collect();
            prop_assert_eq!(&rebuilt, &t);
            prop_assert_eq!(rebuilt.by_target, t.by_target);
        }
    }
}
