//! The process's key table: every [`crate::proto::etcd::Key`] of one text points at one
//! allocation, made the first time the text is seen and kept for the life of the process.
//!
//! Why (issue 16): keys used to be reference-counted, and a reference count lives on the key's
//! own allocation, so cloning or dropping a key written minutes ago (evicting a watch cache's
//! oldest event, trimming its snapshot log, a lease renewal's key passing through the txn, etcd's
//! event and five watch caches) was a cache miss and an atomic operation. An interned key is a
//! plain pointer: a copy touches nothing and two keys are equal exactly when their pointers are.
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
    let kept: &'static str = Box::leak(text.to_owned().into_boxed_str());
    table.insert(kept);
    kept
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
