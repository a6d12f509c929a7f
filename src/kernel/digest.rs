//! An order-independent digest of a set of object versions: the count and a wrapping sum of a
//! 64-bit FNV-1a hash of `(key, resourceVersion)`. O(1) to add or remove one version, so an
//! informer, a watch cache and etcd can compare states without copying maps.

use super::hash::Fnv64;

/// The 64-bit hash of one object version (its key as text: an etcd `Key`).
pub fn object_hash<K: AsRef<str> + ?Sized>(key: &K, rv: i64) -> u64 {
    let mut h = Fnv64::new();
    h.update(key.as_ref().as_bytes());
    h.update(&rv.to_le_bytes());
    h.finish()
}

/// An order-independent digest of a set of object versions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Digest {
    /// Objects.
    pub count: u64,
    /// Wrapping sum of `object_hash`.
    pub sum: u64,
}

impl Digest {
    /// Adds one object version.
    pub fn add<K: AsRef<str> + ?Sized>(&mut self, key: &K, rv: i64) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(object_hash(key, rv));
    }
    /// Adds every object version of `other` (the digest of a union of disjoint sets).
    pub fn absorb(&mut self, other: Digest) {
        self.count = self.count.wrapping_add(other.count);
        self.sum = self.sum.wrapping_add(other.sum);
    }
    /// Removes one object version.
    pub fn remove<K: AsRef<str> + ?Sized>(&mut self, key: &K, rv: i64) {
        self.count = self.count.wrapping_sub(1);
        self.sum = self.sum.wrapping_sub(object_hash(key, rv));
    }
}
