//! `CowBox<T>`: a value behind a reference-counted pointer that is cloned only when written while
//! shared. `imbl` collections store their elements inline in fixed 64-slot chunks, so a vector of
//! large structs (an apiserver is ~1 KiB) copies ~64 KiB whenever one element changes in a state
//! the explorer has cloned; boxing the element makes that copy 64 pointers plus the one element.
//! The simulator, which never shares a state, never clones through it.

use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many hashes a box can memoise (see [`CowBox::memo`]).
pub const MEMO_SLOTS: usize = 3;

/// A copy-on-write box (see the module doc). It also memoises up to [`MEMO_SLOTS`] hashes of its
/// value ([`CowBox::memo`]): states the explorer clones share their unchanged components, so a
/// component's fingerprint is computed once, not once per state. Any mutable access drops them.
#[derive(Clone)]
pub struct CowBox<T: Clone>(Arc<Memoised<T>>);

struct Memoised<T> {
    value: T,
    /// 0 = not computed.
    hashes: [AtomicU64; MEMO_SLOTS],
}

impl<T: Clone> Clone for Memoised<T> {
    fn clone(&self) -> Self {
        // Cloned only to be written (`Arc::make_mut`): the memos would be dropped anyway.
        Memoised {
            value: self.value.clone(),
            hashes: Default::default(),
        }
    }
}

impl<T: Clone> CowBox<T> {
    /// Boxes `value`.
    pub fn new(value: T) -> Self {
        CowBox(Arc::new(Memoised {
            value,
            hashes: Default::default(),
        }))
    }

    /// The hash in memo `slot`, computed by `compute` the first time it is asked for since the
    /// value was last written. `compute` must be a function of the value alone (each slot one
    /// function, fixed by the caller).
    pub fn memo(&self, slot: usize, compute: impl FnOnce(&T) -> u64) -> u64 {
        let cell = &self.0.hashes[slot];
        match cell.load(Ordering::Relaxed) {
            0 => {
                let h = compute(&self.0.value).max(1);
                cell.store(h, Ordering::Relaxed);
                h
            }
            h => h,
        }
    }
}

impl<T: Clone> From<T> for CowBox<T> {
    fn from(value: T) -> Self {
        CowBox::new(value)
    }
}

impl<T: Clone> Deref for CowBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0.value
    }
}

impl<T: Clone> DerefMut for CowBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        let m = Arc::make_mut(&mut self.0);
        for h in &m.hashes {
            h.store(0, Ordering::Relaxed);
        }
        &mut m.value
    }
}

impl<T: Clone + PartialEq> PartialEq for CowBox<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0.value == other.0.value
    }
}

impl<T: Clone + Eq> Eq for CowBox<T> {}

impl<T: Clone + Hash> Hash for CowBox<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.value.hash(state);
    }
}

impl<T: Clone + std::fmt::Debug> std::fmt::Debug for CowBox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.value.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memo_is_shared_by_clones_and_dropped_by_a_write() {
        let calls = std::cell::Cell::new(0);
        let hash = |v: &Vec<u32>| {
            calls.set(calls.get() + 1);
            v.iter().map(|&x| u64::from(x)).sum::<u64>()
        };
        let a = CowBox::new(vec![1u32, 2]);
        assert_eq!(a.memo(0, hash), 3);
        let mut b = a.clone();
        assert_eq!(b.memo(0, hash), 3);
        assert_eq!(calls.get(), 1, "the clone shares the memo");
        b.push(4);
        assert_eq!(b.memo(0, hash), 7, "a write drops the memo");
        assert_eq!(a.memo(0, hash), 3, "the original keeps its own");
        assert_eq!(calls.get(), 2);
        // Unshared, a write goes in place and still drops the memo.
        b.push(1);
        assert_eq!(b.memo(0, hash), 8);
        assert_eq!(calls.get(), 3);
        // A hash of 0 is stored as 1 (0 means "not computed").
        let z = CowBox::new(Vec::<u32>::new());
        assert_eq!(z.memo(1, hash), 1);
        assert_eq!(z.memo(1, hash), 1);
        assert_eq!(calls.get(), 4);
    }
}
