//! `LookupKey`: a hash for look-up tables only, cheaper than a key's `Hash` (which stays what
//! explorer states are fingerprinted by). Issue 16: etcd's index and the watch caches' stores
//! hashed every key's text per event (a cold line and a dozen multiplies per look-up); an
//! interned key's address identifies its text for the life of the process, so hashing the
//! address finds the same entry without reading the text.
//!
//! A lookup hash may differ from run to run (an address does), so a table hashed by it must
//! never be iterated where the order could reach a result: its users walk it only to compare,
//! count or sort.

use std::hash::{Hash, Hasher};

/// A key with a hash for look-up tables, consistent with its `Eq`: equal keys give equal
/// lookup hashes (see the module doc for what it may not be used for).
pub trait LookupKey: Eq + Clone {
    /// Feeds the key's lookup hash.
    fn lookup_hash<H: Hasher>(&self, state: &mut H);

    /// Asks for the first line of what comparing the key reads, when it lives behind a
    /// pointer (a hint: reads nothing; by default, nothing to ask for).
    #[inline(always)]
    fn prefetch_text(&self) {}
}

impl LookupKey for u32 {
    fn lookup_hash<H: Hasher>(&self, state: &mut H) {
        self.hash(state);
    }
}

impl LookupKey for String {
    fn lookup_hash<H: Hasher>(&self, state: &mut H) {
        self.hash(state);
    }
}
