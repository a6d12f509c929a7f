//! etcd's key index (`key_index.go`): every key's stored versions, oldest first, until
//! compaction trims them. Issue 16: a key's newest version sits in its slot of the hashed index
//! (one cache line with the key), and the versions before it in one append-only log shared by
//! all keys, each linking to the one before it. The requests of a large cluster (1,500 lease
//! renewals a second in `cluster-15k`, each a compare on the key's modification revision, then a
//! put) read and replace only the newest version: the compare reads the slot alone, and the put
//! appends the version it replaces at the log's end, where the last write was. (Versions kept
//! per key on the heap cost one more cache miss per renewal, the compare's read of the newest
//! one; `perf` put half of `Store::txn`'s time there.) Reads at older revisions, compaction and
//! the explorer's comparisons walk a key's links.
//!
//! Each compaction moves what every key keeps down the log in place, so it holds only live
//! versions. (A new log at each compaction, and the old one freed, made the log grow again
//! into pages the kernel had to fault in afresh: half the page faults of `cluster-65k`'s hour,
//! issue 16 step 24.) Its layout depends on the order of writes; equality and hashing see only
//! each key's versions, oldest first, hashed element by element after the key, as the per-key
//! vectors this replaces were (`imbl::Vector`, then `SmallVec`), so explorer states compare and
//! hash as before.

use std::hash::{Hash, Hasher};

use smallvec::SmallVec;

use crate::kernel::Scratch;
use crate::kernel::hashed_ord_map::HashedOrdMap;
use crate::proto::etcd::{Key, Revision};

/// One stored version of a key (a bbolt record: put or tombstone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Version {
    pub(super) mod_revision: Revision,
    pub(super) create_revision: Revision,
    pub(super) version: i64,
    pub(super) value_bytes: u64,
    /// The value's opaque tag (`KeyValue::value_tag`).
    pub(super) value_tag: u32,
    pub(super) tombstone: bool,
}

impl Version {
    /// A tombstone at `rev` (etcd's delete record: no value, version 0).
    pub(super) fn tombstone(rev: Revision) -> Self {
        Version {
            mod_revision: rev,
            create_revision: 0,
            version: 0,
            value_bytes: 0,
            value_tag: 0,
            tombstone: true,
        }
    }
}

/// No older version: the end of a key's links.
const NONE: u32 = u32::MAX;

/// A key's slot: its newest version and the log position of the one before it. With the key,
/// 64 bytes: one cache line.
#[derive(Debug, Clone, Copy)]
struct Slot {
    newest: Version,
    older: u32,
}

// A slot of the hashed index (the key, then its slot) fills one cache line.
const _: () = assert!(std::mem::size_of::<(Key, Slot)>() == 64);

/// A version in the log: the log position of the one before it for the same key, and the
/// revision of the version that replaced it (compaction's test).
#[derive(Debug, Clone, Copy)]
struct Older {
    version: Version,
    before: u32,
    replaced_at: Revision,
}

/// The index (see the module doc).
#[derive(Clone, Default)]
pub(super) struct KeyIndex {
    slots: HashedOrdMap<Key, Slot>,
    log: Vec<Older>,
    /// Compaction's map from old log positions to new ones, kept between compactions with its
    /// pages (not part of the index's state; empty between calls).
    moved_to: Scratch<u32>,
}

/// What [`KeyIndex::push_with`] did.
pub(super) struct Pushed {
    /// The newest version before (None: the key was new).
    pub(super) replaced: Option<Version>,
    /// The version appended.
    pub(super) version: Version,
    /// True when the key now holds exactly two versions.
    pub(super) second: bool,
}

/// One key's versions, read through the index.
#[derive(Clone, Copy)]
pub(super) struct History<'a> {
    slot: &'a Slot,
    log: &'a [Older],
}

impl<'a> History<'a> {
    /// The newest version.
    pub(super) fn newest(&self) -> &'a Version {
        &self.slot.newest
    }

    /// The versions, newest first.
    pub(super) fn newest_first(&self) -> impl Iterator<Item = &'a Version> + 'a {
        let log = self.log;
        let mut at = self.slot.older;
        std::iter::once(&self.slot.newest).chain(std::iter::from_fn(move || {
            let older = log.get(at as usize)?;
            at = older.before;
            Some(&older.version)
        }))
    }

    /// Calls `f` on each version, oldest first, copying none (the explorer hashes every key's
    /// versions with every state; most keys hold one).
    pub(super) fn visit_oldest_first(&self, mut f: impl FnMut(&'a Version)) {
        let mut at = self.slot.older;
        if at != NONE {
            let mut chain: SmallVec<[u32; 16]> = SmallVec::new();
            while let Some(older) = self.log.get(at as usize) {
                chain.push(at);
                at = older.before;
            }
            for &p in chain.iter().rev() {
                f(&self.log[p as usize].version);
            }
        }
        f(&self.slot.newest);
    }

    /// The versions, oldest first.
    pub(super) fn oldest_first(&self) -> SmallVec<[Version; 8]> {
        let mut versions = SmallVec::new();
        self.visit_oldest_first(|v| versions.push(*v));
        versions
    }

    /// The version visible at `rev`: the newest at or below it, unless it is a tombstone.
    pub(super) fn at(&self, rev: Revision) -> Option<&'a Version> {
        self.newest_first()
            .find(|v| v.mod_revision <= rev)
            .filter(|v| !v.tombstone)
    }
}

impl KeyIndex {
    /// An empty index.
    pub(super) fn new() -> Self {
        Self::default()
    }

    fn history<'a>(&'a self, slot: &'a Slot) -> History<'a> {
        History {
            slot,
            log: &self.log,
        }
    }

    /// The versions of `key`, if it is in the index.
    pub(super) fn get(&self, key: &Key) -> Option<History<'_>> {
        self.slots.get(key).map(|slot| self.history(slot))
    }

    /// The newest version of `key`.
    pub(super) fn newest(&self, key: &Key) -> Option<&Version> {
        self.slots.get(key).map(|slot| &slot.newest)
    }

    /// Appends `key`'s next version, made by `next` from its newest one (None: a new key), with
    /// one look-up.
    pub(super) fn push_with(
        &mut self,
        key: &Key,
        next: impl FnOnce(Option<&Version>) -> Version,
    ) -> Pushed {
        match self.slots.get_mut(key) {
            Some(slot) => {
                let version = next(Some(&slot.newest));
                let replaced = slot.newest;
                let second = slot.older == NONE;
                self.log.push(Older {
                    version: replaced,
                    before: slot.older,
                    replaced_at: version.mod_revision,
                });
                slot.older = log_position(self.log.len() - 1);
                slot.newest = version;
                Pushed {
                    replaced: Some(replaced),
                    version,
                    second,
                }
            }
            None => {
                let version = next(None);
                self.slots.insert(
                    key.clone(),
                    Slot {
                        newest: version,
                        older: NONE,
                    },
                );
                Pushed {
                    replaced: None,
                    version,
                    second: false,
                }
            }
        }
    }

    /// Every key with its versions, in key order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&Key, History<'_>)> + '_ {
        self.slots.iter().map(|(k, slot)| (k, self.history(slot)))
    }

    /// The keys from `start` on (inclusive or not) with their versions, in key order; `long`
    /// for a walk expected to read many keys (their slots are asked for ahead:
    /// [`HashedOrdMap::range_from_ahead`]).
    pub(super) fn range_from(
        &self,
        start: &Key,
        inclusive: bool,
        long: bool,
    ) -> Box<dyn Iterator<Item = (&Key, History<'_>)> + '_> {
        if long {
            Box::new(
                self.slots
                    .range_from_ahead(start, inclusive)
                    .map(|(k, slot)| (k, self.history(slot))),
            )
        } else {
            Box::new(
                self.slots
                    .range_from(start, inclusive)
                    .map(|(k, slot)| (k, self.history(slot))),
            )
        }
    }

    /// `key_index.go compact` at `rev`: every key keeps its newest version at or below `rev` and
    /// all after it; a tombstone below `rev` goes too (and the key with it when it is the
    /// newest), and so does one exactly at `rev` when `lose_tombstone_at_rev` (the etcd #18089
    /// mutant). `chained` holds every key that may hold more than one version or a tombstone.
    /// Returns the keys of `chained` left with a single live version or none (gone from the
    /// index).
    ///
    /// One pass over the log decides each older version by the revision that replaced it (a
    /// version replaced at or below `rev` is not the newest there), and moves the kept ones
    /// down in order, in place; a key's dropped versions are always its oldest, so its kept
    /// ones stay linked.
    ///
    /// # Panics
    /// If a key outside `chained` holds older versions (compaction would leave them linked to
    /// versions it moved).
    pub(super) fn compact<'k>(
        &mut self,
        rev: Revision,
        lose_tombstone_at_rev: bool,
        chained: impl Iterator<Item = &'k Key>,
    ) -> Vec<Key> {
        let dropped = |v: &Version| {
            v.tombstone
                && (v.mod_revision < rev || (v.mod_revision == rev && lose_tombstone_at_rev))
        };
        // The kept versions move down in place: a kept one's new position is at most its old
        // one, and the link it needs was decided earlier in the pass (links point back).
        let mut moved_to = self.moved_to.take();
        moved_to.reserve(self.log.len());
        let mut kept = 0usize;
        let mut linked = 0usize;
        for at in 0..self.log.len() {
            let older = self.log[at];
            if older.replaced_at <= rev || dropped(&older.version) {
                moved_to.push(NONE);
                continue;
            }
            let before = moved_to.get(older.before as usize).copied().unwrap_or(NONE);
            linked += usize::from(before != NONE);
            moved_to.push(log_position(kept));
            self.log[kept] = Older { before, ..older };
            kept += 1;
        }
        self.log.truncate(kept);
        // Each key's kept older versions are one chain with one newest: as many as there are
        // kept versions that no other links to.
        let chains = kept - linked;
        let mut heads = 0usize;
        let mut settled = Vec::new();
        for key in chained {
            let Some(slot) = self.slots.get_mut(key) else {
                settled.push(key.clone());
                continue;
            };
            if dropped(&slot.newest) {
                self.slots.remove(key);
                settled.push(key.clone());
                continue;
            }
            slot.older = moved_to.get(slot.older as usize).copied().unwrap_or(NONE);
            heads += usize::from(slot.older != NONE);
            if slot.older == NONE && !slot.newest.tombstone {
                settled.push(key.clone());
            }
        }
        assert_eq!(
            heads, chains,
            "etcd key index: a key outside the trimmable set held older versions"
        );
        self.moved_to.put_back(moved_to);
        settled
    }

    /// Asks for the lines a look-up of `key`'s slot reads at `stage` (a hint).
    #[inline]
    pub(super) fn prefetch(&self, key: &Key, stage: crate::kernel::prefetch::Stage) {
        self.slots.prefetch(key, stage);
    }

    /// Asks for the lines where a write appends the version it replaces (a hint).
    #[inline]
    pub(super) fn prefetch_log_end(&self) {
        crate::kernel::prefetch::prefetch_after(&self.log);
    }

    /// Number of keys.
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }
}

/// A log position as stored in a link.
fn log_position(i: usize) -> u32 {
    u32::try_from(i)
        .ok()
        .filter(|&p| p != NONE)
        .expect("etcd key index: more than 4 billion versions between compactions")
}

/// Equal when every key holds the same versions (the log's layout is not compared).
impl PartialEq for KeyIndex {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.iter().all(|(k, mine)| {
                other
                    .get(k)
                    .is_some_and(|theirs| mine.newest_first().eq(theirs.newest_first()))
            })
    }
}

impl Eq for KeyIndex {}

/// Each key, then its versions oldest first (see the module doc).
impl Hash for KeyIndex {
    fn hash<H: Hasher>(&self, h: &mut H) {
        for (key, history) in self.iter() {
            key.hash(h);
            history.visit_oldest_first(|v| v.hash(h));
        }
    }
}

/// Each key with its versions, oldest first.
impl std::fmt::Debug for KeyIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(k, h)| (k, h.oldest_first())))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;
    use crate::kernel::std_hash_of;

    /// One step: put key `i`, delete key `i` (when live), or compact at the given fraction of
    /// the way from the last compaction to the current revision.
    #[derive(Debug, Clone)]
    enum Op {
        Put(u8),
        Delete(u8),
        Compact(u8),
    }

    /// A walk that asks ahead (interned keys: their texts are asked for too) reads what the
    /// plain walk reads, from any start, over more keys than it walks before asking.
    #[test]
    fn a_long_walk_reads_what_a_short_one_reads() {
        let mut index = KeyIndex::new();
        for i in 0..100i64 {
            index.push_with(&Key::new(&format!("/k/{i:03}")), |newest| {
                put(i + 1, newest)
            });
        }
        for start in ["/k/", "/k/005", "/k/050", "/k/099", "/l"] {
            let start = Key::new(start);
            for inclusive in [true, false] {
                let walk = |long| -> Vec<(Key, Version)> {
                    index
                        .range_from(&start, inclusive, long)
                        .map(|(k, h)| (k.clone(), *h.newest()))
                        .collect()
                };
                assert_eq!(walk(false), walk(true), "from {start:?}");
            }
        }
        assert_eq!(index.range_from(&Key::new("/k/"), true, true).count(), 100);
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u8..12).prop_map(Op::Put),
            2 => (0u8..12).prop_map(Op::Delete),
            1 => (0u8..=100).prop_map(Op::Compact),
        ]
    }

    fn key(i: u8) -> Key {
        Key::new(&format!("/registry/leases/ns/k{i:02}"))
    }

    /// The per-key vectors the index replaces, with the compaction they had (`mvcc.rs` before
    /// issue 16's step 13): the model the index must answer as.
    #[derive(Default)]
    struct Reference {
        keys: BTreeMap<Key, Vec<Version>>,
        trimmable: BTreeSet<Key>,
    }

    impl Reference {
        fn push(&mut self, key: &Key, v: Version) {
            let versions = self.keys.entry(key.clone()).or_default();
            versions.push(v);
            if versions.len() == 2 || v.tombstone {
                self.trimmable.insert(key.clone());
            }
        }

        fn compact(&mut self, rev: Revision, lose: bool) {
            let mut settled = Vec::new();
            for key in &self.trimmable {
                let Some(versions) = self.keys.get_mut(key) else {
                    settled.push(key.clone());
                    continue;
                };
                let Some(pos) = versions.iter().rposition(|v| v.mod_revision <= rev) else {
                    continue;
                };
                let newest = versions[pos];
                let lost = newest.tombstone && newest.mod_revision == rev && lose;
                let from = if (newest.tombstone && newest.mod_revision < rev) || lost {
                    pos + 1
                } else {
                    pos
                };
                if from == 0 {
                    continue;
                }
                versions.drain(..from);
                if versions.is_empty() {
                    self.keys.remove(key);
                    settled.push(key.clone());
                } else if versions.len() == 1 && !versions[0].tombstone {
                    settled.push(key.clone());
                }
            }
            for key in settled {
                self.trimmable.remove(&key);
            }
        }

        fn hash(&self) -> u64 {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            for (key, versions) in &self.keys {
                key.hash(&mut h);
                for v in versions {
                    v.hash(&mut h);
                }
            }
            h.finish()
        }
    }

    fn put(rev: Revision, newest: Option<&Version>) -> Version {
        let live = newest.filter(|v| !v.tombstone);
        Version {
            mod_revision: rev,
            create_revision: live.map_or(rev, |v| v.create_revision),
            version: live.map_or(1, |v| v.version + 1),
            value_bytes: rev as u64 % 7,
            value_tag: rev as u32,
            tombstone: false,
        }
    }

    /// The same versions written key by key: another log layout.
    fn rebuilt(reference: &Reference) -> KeyIndex {
        let mut index = KeyIndex::new();
        for (key, versions) in &reference.keys {
            for v in versions {
                index.push_with(key, |_| *v);
            }
        }
        index
    }

    proptest! {
        #![proptest_config(crate::kernel::proptest_kept("tests/key_index.proptest-regressions"))]

        /// Any sequence of puts, deletes and compactions (the #18089 mutant on or off) leaves
        /// every key with the versions the per-key vectors held, read at every revision alike,
        /// the same keys settled, and the same equality and hash whatever the log's layout.
        #[test]
        fn the_linked_log_holds_what_per_key_vectors_held(
            ops in proptest::collection::vec(op(), 1..120),
            lose in any::<bool>(),
        ) {
            let mut index = KeyIndex::new();
            let mut trimmable: BTreeSet<Key> = BTreeSet::new();
            let mut reference = Reference::default();
            let (mut rev, mut compacted) = (1, 0);
            for op in &ops {
                match *op {
                    Op::Put(i) => {
                        rev += 1;
                        let pushed = index.push_with(&key(i), |newest| put(rev, newest));
                        if pushed.second {
                            trimmable.insert(key(i));
                        }
                        reference.push(&key(i), pushed.version);
                    }
                    Op::Delete(i) => {
                        if index.newest(&key(i)).is_none_or(|v| v.tombstone) {
                            continue;
                        }
                        rev += 1;
                        index.push_with(&key(i), |_| Version::tombstone(rev));
                        trimmable.insert(key(i));
                        reference.push(&key(i), Version::tombstone(rev));
                    }
                    Op::Compact(f) => {
                        let at = compacted + (rev - compacted) * i64::from(f) / 100;
                        if at <= compacted {
                            continue;
                        }
                        compacted = at;
                        for k in index.compact(at, lose, trimmable.iter()) {
                            trimmable.remove(&k);
                        }
                        reference.compact(at, lose);
                        prop_assert_eq!(&trimmable, &reference.trimmable);
                    }
                }
                prop_assert_eq!(index.len(), reference.keys.len());
                for (k, versions) in &reference.keys {
                    let history = index.get(k).expect("key in the index");
                    let held = history.oldest_first();
                    prop_assert_eq!(held.as_slice(), versions.as_slice());
                    prop_assert_eq!(history.newest(), versions.last().unwrap());
                    for at in compacted.max(1)..=rev {
                        let expected = versions
                            .iter()
                            .rev()
                            .find(|v| v.mod_revision <= at)
                            .filter(|v| !v.tombstone);
                        prop_assert_eq!(history.at(at), expected);
                    }
                }
                let other = rebuilt(&reference);
                prop_assert!(index == other);
                prop_assert_eq!(std_hash_of(&index), reference.hash());
                prop_assert_eq!(std_hash_of(&other), reference.hash());
            }
        }
    }
}
