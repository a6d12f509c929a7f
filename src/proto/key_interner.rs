//! The process's key table: every [`crate::proto::etcd::Key`] of one text points at one
//! allocation, made the first time the text is seen and kept for the life of the process.
//!
//! Why (issue 16): keys used to be reference-counted, and a reference count lives on the key's
//! own allocation, so cloning or dropping a key written minutes ago (evicting a watch cache's
//! oldest event, trimming its snapshot log, a lease renewal's key passing through the txn, etcd's
//! event and five watch caches) was a cache miss and an atomic operation. An interned key is a
//! plain pointer: a copy touches nothing and two keys are equal exactly when their pointers are.
//!
//! Each text is stored after an 8-byte prefix holding the FNV-1a hash of the text
//! ([`crate::kernel::hash::Fnv64`]), so what every watch cache and informer digests per event
//! (the hash of `(key, resourceVersion)`, [`crate::kernel::digest`]) starts from a stored word
//! instead of a byte loop over the key (issue 16: five watch caches hashed every lease key).
//!
//! The cost: a key's text is never freed. The table holds each distinct text once, so it is
//! bounded by the keys the scenarios a process runs can name (the workload names its objects
//! from fixed populations); `cluster-15k`'s peak memory did not move (497 MB for 10 minutes). Ids and addresses are never used for order or output: keys order and
//! hash by their text, so the table's order of arrival (which threads of a sweep may race on)
//! changes nothing a run computes.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use rustc_hash::FxBuildHasher;

type Table = HashSet<&'static str, FxBuildHasher>;

/// Bytes before each text: its FNV-1a hash, little-endian.
const PREFIX: usize = 8;

fn table() -> &'static Mutex<Table> {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    TABLE.get_or_init(|| Mutex::new(Table::default()))
}

/// The one allocation of `text` (made, and kept for the process's life, on first sight).
pub fn intern(text: &str) -> &'static str {
    // A panic elsewhere while the lock was held cannot leave the set half-changed (an insert
    // of a leaked string either happened or not), so a poisoned lock is taken as is.
    let mut table = table()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(&known) = table.get(text) {
        return known;
    }
    let mut bytes = Vec::with_capacity(PREFIX + text.len());
    bytes.extend_from_slice(&crate::kernel::fnv64(text.as_bytes()).to_le_bytes());
    bytes.extend_from_slice(text.as_bytes());
    let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    let kept = std::str::from_utf8(&leaked[PREFIX..]).expect("a str's bytes are UTF-8");
    table.insert(kept);
    kept
}

/// The FNV-1a hash of an interned text, read from its prefix.
///
/// # Safety
/// `kept` must be a text [`intern`] returned: only those have the prefix before them.
pub(crate) unsafe fn text_hash(kept: &'static str) -> u64 {
    // SAFETY: `intern` leaked `PREFIX` bytes of hash right before the text, in one allocation
    // that lives for the process; the read is unaligned because the allocation is bytes.
    unsafe { std::ptr::read_unaligned(kept.as_ptr().sub(PREFIX).cast::<u64>()) }
}

/// Asks for the cache line of the hash stored before the interned text `kept` (a hint: reads
/// nothing, cannot fault).
#[inline(always)]
pub(crate) fn prefetch_text_hash(kept: &'static str) {
    crate::kernel::prefetch::prefetch_addr(kept.as_ptr().wrapping_sub(PREFIX));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_text_one_allocation() {
        let a = intern("/registry/pods/default/a");
        let owned = String::from("/registry/pods/default/a");
        let b = intern(&owned);
        assert!(std::ptr::eq(a.as_ptr(), b.as_ptr()));
        let c = intern("/registry/pods/default/b");
        assert!(!std::ptr::eq(a.as_ptr(), c.as_ptr()));
        assert_eq!(c, "/registry/pods/default/b");
    }

    #[test]
    fn the_prefix_holds_the_texts_fnv_hash() {
        for text in ["", "/registry/leases/kube-node-lease/n1", "é/ü"] {
            let kept = intern(text);
            // SAFETY: `kept` comes from `intern`.
            assert_eq!(
                unsafe { text_hash(kept) },
                crate::kernel::fnv64(text.as_bytes())
            );
        }
    }

    /// A key's digest hash and look-up hash come from what was stored when its text was
    /// interned: the same as hashing the text, and the same for every key of one text.
    #[test]
    fn keys_hash_from_what_was_stored() {
        use crate::kernel::lookup_key::LookupKey;
        use crate::proto::etcd::Key;
        use std::hash::Hasher;
        let lookup = |k: &Key| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            k.lookup_hash(&mut h);
            h.finish()
        };
        let text = String::from("/registry/pods/default/web-7");
        let a = Key::new(&text);
        let b = Key::new("/registry/pods/default/web-7");
        let digest = crate::kernel::digest::KeyHash::of(&text);
        assert_eq!(a.digest_hash().at(42), digest.at(42));
        assert_eq!(lookup(&a), lookup(&b));
        assert_ne!(
            lookup(&a),
            lookup(&Key::new("/registry/pods/default/web-8"))
        );
    }

    #[test]
    fn threads_agree_on_the_allocation() {
        let addrs: Vec<usize> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| intern("/registry/leases/threaded").as_ptr() as usize))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(addrs.windows(2).all(|w| w[0] == w[1]));
    }
}
