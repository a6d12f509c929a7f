//! The checker's own record of every change etcd committed: `(revision, key)` in revision and op
//! order, plus, for every key range some watch or informer covers, the positions of the changes
//! inside it. Watch streams walk their range's list with a cursor (amortised O(1) per event), and
//! convergence asks for the last change of an informer's scope.
//!
//! Memory: 24 bytes per change plus 4 bytes per (change, matching range). The log is never
//! trimmed (etcd compaction does not touch it: a lagging watcher is judged against everything
//! that happened); a 1-hour run at 1,000 writes/s holds about 90 MB. Simplification: see notes.md.

use rustc_hash::FxHashMap;

use smallvec::SmallVec;

use crate::etcd::{Key, KeyRange, Store};
use crate::proto::key_memo::KeyMemo;

/// Interned ranges from which a key's matches are remembered ([`KeyMemo`]): below it, the
/// look-ups cost no more than the memo, whose answers an explorer state's copy loses anyway.
const MEMO_FROM_RANGES: usize = 64;

/// Identifies an interned key range.
pub type RangeId = u32;

#[derive(Debug, Clone)]
struct RangeLog {
    range: KeyRange,
    positions: Vec<u32>,
}

/// Every committed change, and per-range indexes into it.
#[derive(Debug, Clone, Default)]
pub struct ChangeLog {
    entries: Vec<(i64, Key)>,
    logged_rev: i64,
    ranges: Vec<RangeLog>,
    // Look-up tables, never iterated: hashed with a fixed hasher (issue 16: one look-up per
    // change and watched prefix length, among 15,000 per-node prefixes in `cluster-15k`).
    by_name: FxHashMap<String, RangeId>,
    prefixes: FxHashMap<String, Vec<RangeId>>,
    prefix_lengths: std::collections::BTreeSet<usize>,
    singles: FxHashMap<String, Vec<RangeId>>,
    others: Vec<RangeId>,
    /// The ranges each key written so far falls in, by the key's address (most writes
    /// rewrite a key written before: a lease, a pod); cleared when a range is interned.
    matches: KeyMemo<SmallVec<[RangeId; 4]>>,
}

fn range_name(range: &KeyRange) -> String {
    match range {
        KeyRange::Single(k) => format!("S:{k}"),
        KeyRange::Prefix(p) => format!("P:{p}"),
        KeyRange::PrefixAfter { prefix, after } => format!("A:{prefix}\u{0}{after}"),
    }
}

impl ChangeLog {
    /// True when `store` has revisions this log has not taken in yet.
    pub fn behind(&self, store: &Store) -> bool {
        store.revision() > self.logged_rev
    }

    /// Asks for the lines of `key`'s remembered ranges at `stage`, which logging a change of it
    /// reads (a hint: no effect on the log).
    #[inline]
    pub fn prefetch(&self, key: &Key, stage: crate::kernel::prefetch::Stage) {
        if self.ranges.len() >= MEMO_FROM_RANGES {
            self.matches.prefetch(key, stage);
        }
    }

    /// Appends every change the store committed since the last call (O(new changes)).
    pub fn sync(&mut self, store: &Store) {
        if store.revision() <= self.logged_rev {
            return;
        }
        for e in store.changes_after(self.logged_rev) {
            // A key's first version is remembered only from its second on: most created keys
            // (the preload's tens of thousands) are rarely written again.
            self.append(e.kv.mod_revision, e.kv.key.clone(), e.kv.version > 1);
        }
        self.logged_rev = store.revision();
    }

    fn append(&mut self, rev: i64, key: Key, memoize: bool) {
        let pos = self.entries.len() as u32;
        let memoize = memoize && self.ranges.len() >= MEMO_FROM_RANGES;
        let remembered = if memoize {
            self.matches.get(&key)
        } else {
            None
        };
        let ids = match remembered {
            Some(ids) => ids.clone(),
            None => {
                let ids = self.ranges_containing(&key);
                if memoize {
                    self.matches.insert(&key, ids.clone());
                }
                ids
            }
        };
        for id in ids {
            self.ranges[id as usize].positions.push(pos);
        }
        self.entries.push((rev, key));
    }

    /// The interned ranges `key` falls in: its watched prefixes, itself as a single key, and
    /// any other range that contains it.
    fn ranges_containing(&self, key: &Key) -> SmallVec<[RangeId; 4]> {
        let mut ids = SmallVec::new();
        let k = key.as_str();
        for &i in &self.prefix_lengths {
            if i > k.len() || !k.is_char_boundary(i) {
                continue;
            }
            if let Some(found) = self.prefixes.get(&k[..i]) {
                ids.extend_from_slice(found);
            }
        }
        if let Some(found) = self.singles.get(k) {
            ids.extend_from_slice(found);
        }
        for &id in &self.others {
            if self.ranges[id as usize].range.contains(key) {
                ids.push(id);
            }
        }
        ids
    }

    /// The id of `range`, indexing every change so far into it the first time it is seen.
    pub fn intern(&mut self, range: &KeyRange) -> RangeId {
        // A known single key or prefix is found by its text, without formatting its name (a
        // watch opens on every reconnect: issue 16).
        let known = match range {
            KeyRange::Single(k) => self.singles.get(k.as_str()),
            KeyRange::Prefix(p) => self.prefixes.get(p.as_str()),
            KeyRange::PrefixAfter { .. } => None,
        };
        if let Some(&id) = known.and_then(|ids| ids.first()) {
            return id;
        }
        let name = range_name(range);
        if let Some(&id) = self.by_name.get(&name) {
            return id;
        }
        let id = self.ranges.len() as RangeId;
        self.matches.clear();
        let positions = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, (_, k))| range.contains(k))
            .map(|(i, _)| i as u32)
            .collect();
        self.ranges.push(RangeLog {
            range: range.clone(),
            positions,
        });
        self.by_name.insert(name, id);
        match range {
            KeyRange::Prefix(p) => {
                self.prefix_lengths.insert(p.len());
                self.prefixes.entry(p.to_string()).or_default().push(id)
            }
            KeyRange::Single(k) => self.singles.entry(k.to_string()).or_default().push(id),
            KeyRange::PrefixAfter { .. } => self.others.push(id),
        }
        id
    }

    /// Changes in range `id`.
    pub fn len(&self, id: RangeId) -> usize {
        self.ranges[id as usize].positions.len()
    }

    /// True when no change was logged at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `i`-th change in range `id`: `(revision, key)`.
    pub fn at(&self, id: RangeId, i: usize) -> (i64, &Key) {
        let (rev, key) = &self.entries[self.ranges[id as usize].positions[i] as usize];
        (*rev, key)
    }

    /// Position of the first change in range `id` with revision `>= rev`.
    pub fn lower_bound(&self, id: RangeId, rev: i64) -> usize {
        let positions = &self.ranges[id as usize].positions;
        positions.partition_point(|&p| self.entries[p as usize].0 < rev)
    }

    /// True if `key` changed at `rev` inside range `id`.
    pub fn has(&self, id: RangeId, rev: i64, key: &Key) -> bool {
        let mut i = self.lower_bound(id, rev);
        while i < self.len(id) {
            let (r, k) = self.at(id, i);
            if r != rev {
                return false;
            }
            if k == key {
                return true;
            }
            i += 1;
        }
        false
    }

    /// Revision of the last change in range `id`, if any.
    pub fn last_change(&self, id: RangeId) -> Option<i64> {
        let n = self.len(id);
        (n > 0).then(|| self.at(id, n - 1).0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_interned_late_see_earlier_changes() {
        let mut s = Store::new();
        s.put(&Key::new("/a/1"), 1);
        s.put(&Key::new("/b/1"), 1);
        let mut log = ChangeLog::default();
        let a = log.intern(&KeyRange::Prefix(Key::new("/a/")));
        log.sync(&s);
        s.put(&Key::new("/a/2"), 1);
        log.sync(&s);
        let all = log.intern(&KeyRange::Prefix(Key::new("/")));
        assert_eq!(log.len(a), 2);
        assert_eq!(log.len(all), 3);
        assert_eq!(log.at(a, 1), (4, &Key::new("/a/2")));
        assert_eq!(log.lower_bound(a, 3), 1);
        assert!(log.has(all, 3, &Key::new("/b/1")));
        assert_eq!(log.last_change(a), Some(4));
    }
}
