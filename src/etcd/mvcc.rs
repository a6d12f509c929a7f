//! etcd's MVCC key-value store (etcd `server/storage/mvcc/kvstore*.go`, `key_index.go`): the
//! revision counter, per-key generations and versions, tombstones, reads at a revision, the
//! transactions kube-apiserver issues, and logical compaction.
//!
//! Rules (etcd-semantics.md A1-A5): a fresh store is at revision 1 with compact revision -1; a
//! write request that changes at least one key bumps the revision by exactly one, however many
//! keys it changes; deletes of absent keys, failed compares, read-only txns and compactions do
//! not move it. Reads at `rev < compact` fail "compacted", at `rev > current` fail "future";
//! reading exactly at the compact revision works.

use super::count_memo::{CountMemo, NextPage};
use super::key_index::{History, KeyIndex, Version};
use crate::kernel::ordered_log::OrderedLog;
use imbl::OrdSet;

use crate::proto::etcd::{
    Compare, CompareOp, CompareTarget, EtcdError, Event, EventKind, Key, KeyRange, KeyValue,
    PrevVersion, RangeResult, Revision, Txn, TxnOp, TxnOpResult, TxnResult,
};

/// etcd's `--max-txn-ops` default.
pub const MAX_TXN_OPS: usize = 128;

/// A change recorded for watch replay, in `(main, sub)` revision order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Change {
    event: Event,
}

/// The MVCC store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Store {
    current: Revision,
    compacted: Revision,
    /// Each key's history: hashed for the one-key reads and writes of every request, ordered
    /// for range reads, the newest version in the key's slot (issue 16, `key_index.rs`).
    index: KeyIndex,
    /// Keys compaction may have to trim: more than one version, or a tombstone. A key written
    /// once is never touched by compaction, so it is not walked (large quiet keyspaces).
    trimmable: OrdSet<Key>,
    /// Watch history, in `(main, sub)` revision order (appended per write, trimmed from the
    /// oldest at compaction).
    changes: OrderedLog<(Revision, u32), Change>,
    live_keys: u64,
    live_bytes: u64,
    /// Mutant `etcd_tombstone_at_compact_lost` (etcd #18089 before 3.4.34), set by the world.
    pub mutant_tombstone_at_compact_lost: bool,
    /// The count of the rest of the last paged range read (derived data, not state).
    next_page: CountMemo,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// A fresh store: revision 1, compact revision -1 (etcd `kvstore.go`).
    pub fn new() -> Self {
        Store {
            current: 1,
            compacted: -1,
            index: KeyIndex::new(),
            trimmable: OrdSet::new(),
            changes: OrderedLog::new(),
            live_keys: 0,
            live_bytes: 0,
            mutant_tombstone_at_compact_lost: false,
            next_page: CountMemo::default(),
        }
    }

    /// The current store revision.
    pub fn revision(&self) -> Revision {
        self.current
    }

    /// The compact revision (-1 before the first compaction).
    pub fn compact_revision(&self) -> Revision {
        self.compacted
    }

    /// Number of live (non-deleted) keys.
    pub fn live_keys(&self) -> u64 {
        self.live_keys
    }

    /// Sum of the value sizes of live keys.
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    fn latest(&self, key: &Key) -> Option<&Version> {
        self.index.newest(key).filter(|v| !v.tombstone)
    }

    /// Checks that `rev` can be read: `rev <= 0` means latest; below the compact revision is
    /// "compacted"; above the current revision is "future".
    fn check_read_revision(&self, rev: Revision) -> Result<Revision, EtcdError> {
        if rev <= 0 {
            return Ok(self.current);
        }
        if rev > self.current {
            return Err(EtcdError::FutureRevision);
        }
        if rev < self.compacted {
            return Err(EtcdError::Compacted {
                compact_revision: self.compacted,
            });
        }
        Ok(rev)
    }

    /// Largest page a range read makes room for at once (a larger limit grows as it fills).
    const MAX_PAGE_RESERVE: i64 = 4096;

    /// Limits above this (or none) make a range read long enough to ask for its keys' slots
    /// ahead ([`crate::kernel::hashed_ord_map::HashedOrdMap::range_from_ahead`]).
    const LONG_RANGE: i64 = 2 * crate::kernel::hashed_ord_map::RANGE_FAR as i64;

    /// Keys from which the index is too big to stay cached, and a long range read asks ahead.
    const BIG_INDEX: usize = 65_536;

    /// True when the index holds [`Self::BIG_INDEX`] keys or more: a run this big does not keep
    /// its tables cached between steps, so read-ahead hints that cost more than a cached read
    /// ask only then (issue 16).
    pub fn is_big(&self) -> bool {
        self.index.len() >= Self::BIG_INDEX
    }

    /// Range read at `rev` (0 = latest) with `limit` (0 = none) (etcd `kvstore_txn.go rangeKeys`).
    pub fn range(
        &self,
        range: &KeyRange,
        rev: Revision,
        limit: i64,
    ) -> Result<RangeResult, EtcdError> {
        let at = self.check_read_revision(rev)?;
        // A later page of a paged read whose count the previous page left: walk only to the
        // limit (see `count_memo.rs`).
        let known = match range {
            KeyRange::PrefixAfter { prefix, after } if limit > 0 => {
                self.next_page.count_after(prefix, at, after)
            }
            _ => None,
        };
        let mut count = 0u64;
        // A page's room at once (a paged read fills its limit but on the last page): grown
        // push by push, a 500-key page was copied nine times into fresh memory (issue 16).
        let mut kvs = Vec::with_capacity(if limit > 0 {
            limit.min(Self::MAX_PAGE_RESERVE) as usize
        } else {
            0
        });
        let mut visit = |key: &Key, history: History<'_>| {
            if let Some(v) = history.at(at) {
                count += 1;
                if limit <= 0 || (kvs.len() as i64) < limit {
                    kvs.push(KeyValue {
                        key: key.clone(),
                        create_revision: v.create_revision,
                        mod_revision: v.mod_revision,
                        version: v.version,
                        value_bytes: v.value_bytes,
                        value_tag: v.value_tag,
                    });
                }
            }
            // Once the page is full, the rest is only counted: not needed when known.
            known.is_none() || (kvs.len() as i64) < limit
        };
        // A page or a whole prefix of a big index asks for its keys' slots ahead; a probe of a
        // key or two does not, nor a walk of an index small enough to stay cached (`sweep-1k`'s
        // 33,000 keys: the hints were 2 % more instructions and nothing to save).
        let long = (limit <= 0 || limit > Self::LONG_RANGE) && self.is_big();
        match range {
            KeyRange::Single(k) => {
                if let Some(h) = self.index.get(k) {
                    visit(k, h);
                }
            }
            KeyRange::Prefix(p) => {
                for (k, h) in self.index.range_from(p, true, long) {
                    if !k.as_str().starts_with(p.as_str()) || !visit(k, h) {
                        break;
                    }
                }
            }
            KeyRange::PrefixAfter { prefix, after } => {
                for (k, h) in self.index.range_from(after, false, long) {
                    if !k.as_str().starts_with(prefix.as_str()) || !visit(k, h) {
                        break;
                    }
                }
            }
        }
        let count = known.unwrap_or(count);
        let more = limit > 0 && count > limit as u64;
        if more
            && let (KeyRange::Prefix(prefix) | KeyRange::PrefixAfter { prefix, .. }, Some(last)) =
                (range, kvs.last())
        {
            self.next_page.record(NextPage {
                prefix: prefix.clone(),
                at,
                after: last.key.clone(),
                count: count - kvs.len() as u64,
            });
        }
        Ok(RangeResult {
            revision: self.current,
            count,
            more,
            kvs,
        })
    }

    /// Every key in the index with the create revision of each generation it still holds
    /// (tombstones left out), in key order: what the explorer's reduction measurement
    /// (`check/explore_measure.rs`) needs to bound symmetry over keys.
    pub fn create_revisions(&self) -> impl Iterator<Item = (&Key, Revision)> + '_ {
        self.index.iter().flat_map(|(key, history)| {
            let mut last = None;
            history
                .oldest_first()
                .into_iter()
                .filter(|v| !v.tombstone)
                .filter_map(move |v| {
                    let fresh = last != Some(v.create_revision);
                    last = Some(v.create_revision);
                    fresh.then_some((key, v.create_revision))
                })
        })
    }

    /// Every key in the index with its latest `version` (0 when its latest entry is a
    /// tombstone), in key order: fields that hold no revision, for the explorer's reduction
    /// measurement.
    pub fn key_versions(&self) -> impl Iterator<Item = (&Key, i64)> + '_ {
        self.index.iter().map(|(key, history)| {
            let version = Some(history.newest())
                .filter(|v| !v.tombstone)
                .map_or(0, |v| v.version);
            (key, version)
        })
    }

    /// Asks for the lines of `key`'s slot in the index at `stage`, which a request on it reads
    /// first, and at the first stage, in a big store, those a write appends to (the watch
    /// history's next entry, the index log's end) (hints: no effect on the store).
    #[inline]
    pub fn prefetch(&self, key: &Key, stage: crate::kernel::prefetch::Stage) {
        self.index.prefetch(key, stage);
        if stage == crate::kernel::prefetch::Stage::Table && self.is_big() {
            self.changes.prefetch_next_slot();
            self.index.prefetch_log_end();
        }
    }

    /// The current state of one key, if it exists.
    pub fn get(&self, key: &Key) -> Option<KeyValue> {
        self.latest(key).map(|v| KeyValue {
            key: key.clone(),
            create_revision: v.create_revision,
            mod_revision: v.mod_revision,
            version: v.version,
            value_bytes: v.value_bytes,
            value_tag: v.value_tag,
        })
    }

    /// A plain put: one write request, revision + 1. Returns the new revision and the event.
    pub fn put(&mut self, key: &Key, value_bytes: u64) -> (Revision, Event) {
        let rev = self.current + 1;
        let ev = self.write_put(key, value_bytes, 0, rev, 0);
        self.current = rev;
        (rev, ev)
    }

    /// A delete of a key or range: revision + 1 only if at least one key was deleted; every
    /// deleted key's event shares that revision. Returns (header revision, deleted, events).
    pub fn delete(&mut self, range: &KeyRange) -> (Revision, u64, Vec<Event>) {
        let rev = self.current + 1;
        let events = self.write_delete(range, rev, 0);
        let deleted = events.len() as u64;
        if deleted > 0 {
            self.current = rev;
        }
        (self.current, deleted, events)
    }

    fn write_put(
        &mut self,
        key: &Key,
        value_bytes: u64,
        value_tag: u32,
        rev: Revision,
        sub: u32,
    ) -> Event {
        // One index lookup: the key's newest version is read and replaced in place.
        let pushed = self.index.push_with(key, |newest| {
            let live = newest.filter(|last| !last.tombstone);
            Version {
                mod_revision: rev,
                create_revision: live.map_or(rev, |last| last.create_revision),
                version: live.map_or(1, |last| last.version + 1),
                value_bytes,
                value_tag,
                tombstone: false,
            }
        });
        let v = pushed.version;
        let prev = pushed
            .replaced
            .filter(|last| !last.tombstone)
            .map(|last| PrevVersion {
                mod_revision: last.mod_revision,
                value_bytes: last.value_bytes,
                value_tag: last.value_tag,
            });
        match prev.map(|p| p.value_bytes) {
            Some(b) => self.live_bytes = self.live_bytes - b + value_bytes,
            None => {
                self.live_keys += 1;
                self.live_bytes += value_bytes;
            }
        }
        // A key with two or more versions stays trimmable until a compaction leaves it one, so
        // it joins the set only when its second version arrives.
        if pushed.second {
            self.trimmable.insert(key.clone());
        }
        let event = Event {
            kind: EventKind::Put,
            kv: KeyValue {
                key: key.clone(),
                create_revision: v.create_revision,
                mod_revision: rev,
                version: v.version,
                value_bytes,
                value_tag,
            },
            prev,
        };
        self.changes.push(
            (rev, sub),
            Change {
                event: event.clone(),
            },
        );
        event
    }

    fn live_keys_in(&self, range: &KeyRange) -> Vec<Key> {
        match range {
            KeyRange::Single(k) => self.latest(k).map(|_| vec![k.clone()]).unwrap_or_default(),
            KeyRange::Prefix(p) => self
                .index
                .range_from(p, true, true)
                .take_while(|(k, _)| k.as_str().starts_with(p.as_str()))
                .filter(|(_, h)| !h.newest().tombstone)
                .map(|(k, _)| k.clone())
                .collect(),
            KeyRange::PrefixAfter { .. } => self
                .index
                .iter()
                .filter(|(k, h)| range.contains(k) && !h.newest().tombstone)
                .map(|(k, _)| k.clone())
                .collect(),
        }
    }

    fn write_delete(&mut self, range: &KeyRange, rev: Revision, first_sub: u32) -> Vec<Event> {
        let keys = self.live_keys_in(range);
        let mut events = Vec::with_capacity(keys.len());
        for (i, key) in keys.into_iter().enumerate() {
            let prev = self.latest(&key).map(|v| PrevVersion {
                mod_revision: v.mod_revision,
                value_bytes: v.value_bytes,
                value_tag: v.value_tag,
            });
            if let Some(p) = prev {
                self.live_keys -= 1;
                self.live_bytes -= p.value_bytes;
            }
            self.index.push_with(&key, |_| Version::tombstone(rev));
            self.trimmable.insert(key.clone());
            // etcd patches only the key and mod revision into a DELETE event (watchable_store.go).
            let event = Event {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key,
                    create_revision: 0,
                    mod_revision: rev,
                    version: 0,
                    value_bytes: 0,
                    value_tag: 0,
                },
                prev,
            };
            self.changes.push(
                (rev, first_sub + i as u32),
                Change {
                    event: event.clone(),
                },
            );
            events.push(event);
        }
        events
    }

    fn compare_holds(&self, c: &Compare) -> bool {
        let (version, create, modr) = match self.latest(&c.key) {
            Some(v) => (v.version, v.create_revision, v.mod_revision),
            None => (0, 0, 0),
        };
        let lhs = match c.target {
            CompareTarget::Version => version,
            CompareTarget::Create => create,
            CompareTarget::Mod => modr,
        };
        match c.op {
            CompareOp::Equal => lhs == c.value,
            CompareOp::NotEqual => lhs != c.value,
            CompareOp::Greater => lhs > c.value,
            CompareOp::Less => lhs < c.value,
        }
    }

    /// Refuses a txn that writes a key twice or puts inside one of its delete ranges, or has
    /// too many ops (etcd `v3rpc/key.go checkIntervals`, `--max-txn-ops`).
    fn validate_txn(txn: &Txn) -> Result<(), EtcdError> {
        if txn.compares.len() > MAX_TXN_OPS
            || txn.success.len() > MAX_TXN_OPS
            || txn.failure.len() > MAX_TXN_OPS
        {
            return Err(EtcdError::TooManyOps);
        }
        for branch in [&txn.success, &txn.failure] {
            for (i, op) in branch.iter().enumerate() {
                let TxnOp::Put { key, .. } = op else { continue };
                let clash = |other: &TxnOp| match other {
                    TxnOp::Put { key: k, .. } => k == key,
                    TxnOp::Delete(r) => r.contains(key),
                    TxnOp::Range(_) => false,
                };
                // A put twice (any order) or inside a delete range (before or after it).
                if branch[i + 1..].iter().any(clash)
                    || branch[..i]
                        .iter()
                        .any(|o| matches!(o, TxnOp::Delete(_)) && clash(o))
                {
                    return Err(EtcdError::DuplicateKey);
                }
            }
        }
        Ok(())
    }

    /// Runs a txn atomically: one revision for all its writes, events in op order
    /// (etcd `kvstore_txn.go`, `apply.go`). Returns the result and the events.
    pub fn txn(&mut self, txn: &Txn) -> Result<(TxnResult, Vec<Event>), EtcdError> {
        let mut events = Vec::new();
        let result = self.txn_into(txn, &mut events)?;
        Ok((result, events))
    }

    /// [`txn`](Self::txn), its events written to `events`, emptied first (the server's reused
    /// buffer: one allocation fewer a write, issue 16).
    pub fn txn_into(&mut self, txn: &Txn, events: &mut Vec<Event>) -> Result<TxnResult, EtcdError> {
        events.clear();
        Self::validate_txn(txn)?;
        let succeeded = txn.compares.iter().all(|c| self.compare_holds(c));
        let ops = if succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let rev = self.current + 1;
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            match op {
                TxnOp::Put {
                    key,
                    value_bytes,
                    value_tag,
                } => {
                    let sub = events.len() as u32;
                    events.push(self.write_put(key, *value_bytes, *value_tag, rev, sub));
                    responses.push(TxnOpResult::Put);
                }
                TxnOp::Delete(range) => {
                    let evs = self.write_delete(range, rev, events.len() as u32);
                    responses.push(TxnOpResult::Delete {
                        deleted: evs.len() as u64,
                    });
                    events.extend(evs);
                }
                TxnOp::Range(range) => {
                    // Reads inside a txn see the txn's earlier writes: serve them from the
                    // pending state at `rev` when writes happened, else at the current revision.
                    let at = if events.is_empty() { self.current } else { rev };
                    let saved = self.current;
                    self.current = at;
                    let mut r = self.range(range, 0, 0).expect("latest is always readable");
                    self.current = saved;
                    r.revision = at;
                    responses.push(TxnOpResult::Range(r));
                }
            }
        }
        if !events.is_empty() {
            self.current = rev;
        }
        for r in &mut responses {
            if let TxnOpResult::Range(rr) = r {
                rr.revision = self.current;
            }
        }
        Ok(TxnResult {
            revision: self.current,
            succeeded,
            responses,
        })
    }

    /// Compacts at `rev` (etcd `kvstore.go updateCompactRev` + `key_index.go compact`): refused
    /// "compacted" at or below the compact revision and "future" above the current revision.
    /// Logically immediate: for every key the newest version `<= rev` is kept (a tombstone exactly
    /// at `rev` too, the behaviour fixed by etcd #18089), older ones are dropped.
    pub fn compact(&mut self, rev: Revision) -> Result<Revision, EtcdError> {
        if rev <= self.compacted {
            return Err(EtcdError::Compacted {
                compact_revision: self.compacted,
            });
        }
        if rev > self.current {
            return Err(EtcdError::FutureRevision);
        }
        self.compacted = rev;
        // Compaction keeps each key's state at every revision from `rev` on, except under the
        // lost-tombstone mutant: the paged count is dropped rather than relied on.
        self.next_page.clear();
        let lost_tombstones = self.compact_index(rev);
        self.compact_history(rev, &lost_tombstones);
        Ok(self.current)
    }

    /// `key_index.go compact` on every key that may hold versions to drop
    /// ([`KeyIndex::compact`]); the keys left with a single live version (or none) are settled.
    /// Returns the tombstones the #18089 mutant drops: the keys whose last change at `rev` is a
    /// delete.
    fn compact_index(&mut self, rev: Revision) -> Vec<Key> {
        let lose = self.mutant_tombstone_at_compact_lost;
        let mut lost_tombstones: Vec<Key> = Vec::new();
        if lose {
            for (_, change) in self
                .changes
                .range_from((rev, 0))
                .take_while(|((at, _), _)| *at == rev)
            {
                let key = &change.event.kv.key;
                lost_tombstones.retain(|k| k != key);
                if change.event.kind == EventKind::Delete {
                    lost_tombstones.push(key.clone());
                }
            }
        }
        let settled = self.index.compact(rev, lose, self.trimmable.iter());
        for key in settled {
            self.trimmable.remove(&key);
        }
        lost_tombstones
    }

    /// Watch history below the compact revision is gone; the changes at `rev` stay (but for the
    /// DELETE events of the tombstones the #18089 mutant lost).
    fn compact_history(&mut self, rev: Revision, lost_tombstones: &[Key]) {
        self.changes.drop_below((rev, 0));
        if !lost_tombstones.is_empty() {
            // Mutant (etcd #18089): the dropped tombstones' DELETE events leave the history
            // watches replay from, so a watch from `rev` never sees them.
            self.changes.retain(|(at, _), c| {
                !(*at == rev
                    && c.event.kind == EventKind::Delete
                    && lost_tombstones.contains(&c.event.kv.key))
            });
        }
    }

    /// Every change recorded with a revision above `rev`, in revision then op order (read-only;
    /// the invariant checker's change log follows the store through it).
    pub fn changes_after(&self, rev: Revision) -> impl Iterator<Item = &Event> + '_ {
        self.changes
            .range_from((rev.saturating_add(1), 0))
            .map(|(_, change)| &change.event)
    }

    /// Watch replay: the events with revision in `[from, to]` whose key is in `range`, stopping
    /// after `max_revisions` distinct revisions (never splitting one). Returns the events and the
    /// next revision to read (`to + 1` when everything was returned).
    pub fn events_between(
        &self,
        range: &KeyRange,
        from: Revision,
        to: Revision,
        max_revisions: usize,
    ) -> (Vec<Event>, Revision) {
        let mut out = Vec::new();
        let mut revs_seen = 0usize;
        let mut last_rev = None;
        for ((rev, _), change) in self.changes.range_from((from, 0)) {
            if *rev > to {
                break;
            }
            if !range.contains(&change.event.kv.key) {
                continue;
            }
            if last_rev != Some(*rev) {
                if revs_seen == max_revisions {
                    return (out, *rev);
                }
                revs_seen += 1;
                last_rev = Some(*rev);
            }
            out.push(change.event.clone());
        }
        (out, to + 1)
    }
}
