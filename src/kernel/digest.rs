//! An order-independent digest of a set of object versions: the count and a wrapping sum of a
//! 64-bit FNV-1a hash of `(key, resourceVersion)`. O(1) to add or remove one version, so an
//! informer, a watch cache and etcd can compare states without copying maps.

use super::hash::Fnv64;

/// The 64-bit hash of one object version (its key as text: an etcd `Key`).
pub fn object_hash<K: AsRef<str> + ?Sized>(key: &K, rv: i64) -> u64 {
    KeyHash::of(key).at(rv)
}

/// The hash of a key's text, from which the hash of any of its versions follows in a few steps:
/// for an event that replaces one version by another, the key is read once, not twice.
#[derive(Debug, Clone, Copy)]
pub struct KeyHash(Fnv64);

impl KeyHash {
    /// Hashes `key`'s text.
    pub fn of<K: AsRef<str> + ?Sized>(key: &K) -> Self {
        let mut h = Fnv64::new();
        h.update(key.as_ref().as_bytes());
        KeyHash(h)
    }

    /// The hash of a text whose FNV-1a hash is already known (`fnv64(text)`): equal to
    /// [`KeyHash::of`] the text, without reading it (interned keys store it).
    #[inline]
    pub fn from_text_hash(text_hash: u64) -> Self {
        KeyHash(Fnv64::from_state(text_hash))
    }

    /// [`object_hash`] of the key's version at `rv`.
    pub fn at(self, rv: i64) -> u64 {
        let mut h = self.0;
        h.update(&rv.to_le_bytes());
        h.finish()
    }
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
    /// Adds the version at `rv` of the key hashed as `key`.
    pub fn add_hashed(&mut self, key: KeyHash, rv: i64) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(key.at(rv));
    }
    /// Removes the version at `rv` of the key hashed as `key`.
    pub fn remove_hashed(&mut self, key: KeyHash, rv: i64) {
        self.count = self.count.wrapping_sub(1);
        self.sum = self.sum.wrapping_sub(key.at(rv));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key hashed once gives every version's hash: FNV-1a of the key's bytes then the RV's.
    #[test]
    fn a_key_hash_continues_into_each_version() {
        let key = "/registry/leases/kube-node-lease/node-7";
        let kh = KeyHash::of(key);
        for rv in [1i64, 42, 1 << 40] {
            let mut bytes = key.as_bytes().to_vec();
            bytes.extend_from_slice(&rv.to_le_bytes());
            assert_eq!(kh.at(rv), crate::kernel::fnv64(&bytes));
            assert_eq!(object_hash(key, rv), kh.at(rv));
            let stored = KeyHash::from_text_hash(crate::kernel::fnv64(key.as_bytes()));
            assert_eq!(stored.at(rv), kh.at(rv));
        }
        let mut a = Digest::default();
        a.add(key, 5);
        a.add(key, 6);
        a.remove_hashed(kh, 5);
        let mut b = Digest::default();
        b.add_hashed(kh, 6);
        assert_eq!(a, b);
    }
}
