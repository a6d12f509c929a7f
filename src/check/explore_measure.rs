//! Measuring what two further reductions could merge in a scope (issue 7, docs/explorer.md
//! "Reductions, measured"): normalising revisions relative to the compaction horizon, and
//! symmetry over keys. Rather than rename every revision and key of every state, the explorer
//! (with `--measure-reductions`) records, for each unique state it keeps, the facts either
//! reduction would need, and reports an upper bound on the states it could merge:
//!
//! - **Revision shift.** Two states merge under normalisation only if they differ by a nonzero
//!   revision shift and in nothing else, so they must agree on every field that holds no
//!   revision while etcd's revision differs. Among those fields: every writer's position
//!   (`World::writer_positions`: the script's steps issued and requests outstanding, the
//!   workload's writes issued, the compactor key's version) and every key's latest `version`
//!   (a put adds one, a delete zeroes it). Within a group of states that agree on these, a
//!   normalised class holds at most one state per etcd revision, so the group merges at most
//!   `size - (most states at one revision)`. (etcd's report counter of writes, which the
//!   fingerprint also holds, is left out of the digest: the bound does not lean on it.)
//! - **Key symmetry.** A key renaming maps a key's versions, create revision included, onto
//!   another key. When every key in etcd's index has one create revision across all kept states
//!   and no two keys share one, a renaming that turns one kept state into another must map every
//!   such key to itself: nothing merges. The measurement counts the keys created at different
//!   revisions in different states and the create revisions shared by two keys; both zero bounds
//!   the merges at zero (keys present only outside etcd's index, after compaction, are not
//!   covered).

use std::collections::{BTreeMap, BTreeSet};

use crate::etcd::{Key, Revision};
use crate::world::World;

/// The upper bounds, over the unique states of one search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReductionBounds {
    /// Unique states measured.
    pub states: u64,
    /// At most this many of them could merge by normalising revisions.
    pub revision_shift_merges: u64,
    /// Keys seen in etcd's index.
    pub keys: u64,
    /// Keys created at different revisions in different states (created in varying order).
    pub keys_with_varying_creation: u64,
    /// Create revisions shared by more than one key (several keys created in one txn).
    pub shared_create_revisions: u64,
}

impl ReductionBounds {
    /// An upper bound on the states symmetry over keys could merge: zero when every key keeps
    /// one create revision of its own, else unknown (`None`).
    pub fn key_symmetry_merges(&self) -> Option<u64> {
        (self.keys_with_varying_creation == 0 && self.shared_create_revisions == 0).then_some(0)
    }
}

/// Accumulates the facts of each unique state.
#[derive(Debug, Default)]
pub struct ReductionMeter {
    states: u64,
    /// Writer positions and key versions (hashed) → number of states at each etcd revision.
    by_position: BTreeMap<u64, BTreeMap<Revision, u64>>,
    creations: BTreeMap<Key, BTreeSet<Revision>>,
}

impl ReductionMeter {
    /// Records one unique state.
    pub fn observe(&mut self, world: &World) {
        self.states += 1;
        let revision = world.etcd().store.revision();
        *self
            .by_position
            .entry(position_digest(world))
            .or_default()
            .entry(revision)
            .or_default() += 1;
        for (key, created) in world.etcd().store.create_revisions() {
            if !self
                .creations
                .get(key)
                .is_some_and(|s| s.contains(&created))
            {
                self.creations
                    .entry(key.clone())
                    .or_default()
                    .insert(created);
            }
        }
    }

    /// The bounds over every state observed.
    pub fn finish(&self) -> ReductionBounds {
        let revision_shift_merges = self
            .by_position
            .values()
            .map(|revs| revs.values().sum::<u64>() - revs.values().max().copied().unwrap_or(0))
            .sum();
        let mut owners: BTreeMap<Revision, u64> = BTreeMap::new();
        for revs in self.creations.values() {
            for r in revs {
                *owners.entry(*r).or_default() += 1;
            }
        }
        ReductionBounds {
            states: self.states,
            revision_shift_merges,

            keys: self.creations.len() as u64,
            keys_with_varying_creation: self.creations.values().filter(|s| s.len() > 1).count()
                as u64,
            shared_create_revisions: owners.values().filter(|&&n| n > 1).count() as u64,
        }
    }
}

/// A digest of fields that hold no revision and that every committed write changes: each
/// writer's position and each key's latest version (0 once deleted).
fn position_digest(world: &World) -> u64 {
    use std::hash::Hash;
    let mut h = crate::kernel::Fnv64::new();
    world.writer_positions().hash(&mut h);
    for (key, version) in world.etcd().store.key_versions() {
        (key, version).hash(&mut h);
    }
    h.finish()
}
