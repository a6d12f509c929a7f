//! One key's stored versions, oldest first (etcd `key_index.go`: the revisions a key index holds
//! for a key until compaction trims them). Most keys of a large cluster are written rarely and
//! hold one version, which sits inline in the index's slot (issue 16: a persistent vector per
//! key cost an allocation and a copy-on-write check per write; one inline version keeps a slot
//! of the hashed index at 64 bytes, one cache line). Busier keys spill to the heap. Hashed element by element without a length, as the
//! `imbl::Vector` it replaces was, so explorer states hash as before.

use std::hash::{Hash, Hasher};
use std::ops::Deref;

use smallvec::SmallVec;

use crate::proto::etcd::Revision;

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

/// A key's versions, oldest first.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct KeyHistory(SmallVec<[Version; 1]>);

impl KeyHistory {
    /// A history of one version.
    pub(super) fn unit(v: Version) -> Self {
        let mut versions = SmallVec::new();
        versions.push(v);
        KeyHistory(versions)
    }

    /// Appends the newest version.
    pub(super) fn push(&mut self, v: Version) {
        self.0.push(v);
    }

    /// The versions from position `from` on (what compaction keeps).
    pub(super) fn tail_from(&self, from: usize) -> Self {
        KeyHistory(self.0[from..].iter().copied().collect())
    }
}

/// Versions are plain data: a copy is one block copy (the explorer copies etcd's index with
/// every state that writes to it), not an element-by-element extension.
impl Clone for KeyHistory {
    fn clone(&self) -> Self {
        KeyHistory(SmallVec::from_slice(&self.0))
    }
}

impl Deref for KeyHistory {
    type Target = [Version];
    fn deref(&self) -> &[Version] {
        &self.0
    }
}

impl Hash for KeyHistory {
    fn hash<H: Hasher>(&self, h: &mut H) {
        for v in self.iter() {
            v.hash(h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::std_hash_of;

    fn version(rev: Revision) -> Version {
        Version {
            mod_revision: rev,
            create_revision: 1,
            version: rev,
            value_bytes: 10,
            value_tag: 0,
            tombstone: false,
        }
    }

    #[test]
    fn keeps_order_and_hashes_like_a_persistent_vector() {
        let mut h = KeyHistory::unit(version(1));
        let mut v = imbl::Vector::unit(version(1));
        for rev in 2..6 {
            h.push(version(rev));
            v.push_back(version(rev));
        }
        assert_eq!(std_hash_of(&h), std_hash_of(&v));
        let revs: Vec<Revision> = h.tail_from(3).iter().map(|v| v.mod_revision).collect();
        assert_eq!(revs, [4, 5]);
        assert_eq!(h.last().map(|v| v.mod_revision), Some(5));
    }
}
