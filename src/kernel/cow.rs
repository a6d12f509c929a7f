//! `CowBox<T>`: a value behind a reference-counted pointer that is cloned only when written while
//! shared. `imbl` collections store their elements inline in fixed 64-slot chunks, so a vector of
//! large structs (an apiserver is ~1 KiB) copies ~64 KiB whenever one element changes in a state
//! the explorer has cloned; boxing the element makes that copy 64 pointers plus the one element.
//! The simulator, which never shares a state, never clones through it.

use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use triomphe::Arc;

/// How many hashes a box can memoise (see [`CowBox::memo`]).
pub const MEMO_SLOTS: usize = 3;

/// A copy-on-write box (see the module doc). It also memoises up to [`MEMO_SLOTS`] hashes of its
/// value ([`CowBox::memo`]): states the explorer clones share their unchanged components, so a
/// component's fingerprint is computed once, not once per state. Any mutable access drops them.
#[derive(Clone)]
pub struct CowBox<T: Clone>(Arc<Memoised<T>>);

/// Laid out in declaration order (issue 16): the memo slots, which every write reads, sit right
/// after the `Arc`'s reference counts, in the same cache line, and the value's first fields
/// (each boxed type's hottest, see [`crate::client::Reflector`]) follow them.
#[repr(C)]
struct Memoised<T> {
    /// 0 = not computed.
    hashes: [AtomicU64; MEMO_SLOTS],
    value: T,
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

impl<T: Clone> CowBox<T> {
    /// Hints (issue 16) that the box will soon be read or written: asks for the first `lines`
    /// cache lines of its shared block, from the reference count a write checks on. A hint only.
    #[inline(always)]
    pub fn prefetch_block(&self, lines: usize) {
        // The count sits just before the value in the block (triomphe's `ArcInner`).
        let start = (&*self.0 as *const Memoised<T>)
            .cast::<u8>()
            .wrapping_sub(std::mem::size_of::<usize>());
        for line in 0..lines {
            super::prefetch::prefetch_addr(start.wrapping_add(line * 64));
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
            // Read before writing: outside the explorer no hash is ever memoised, and a store
            // per access would dirty the line on every one of a fan-out's thousands.
            if h.load(Ordering::Relaxed) != 0 {
                h.store(0, Ordering::Relaxed);
            }
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

/// A vector of [`CowBox`]es that is itself copy-on-write: cloning it (the explorer's successor
/// states) copies one pointer; the first write to a shared one copies the vector of pointers,
/// never the elements. Issue 16: the simulator indexes a plain `Vec` on its hot path (a
/// client's fan-out), where a persistent vector's index walk cost 7 % of `cluster-15k`.
/// Equality and hashing are the elements', in order.
pub struct CowVec<T: Clone>(Arc<Vec<CowBox<T>>>);

impl<T: Clone> CowVec<T> {
    /// An empty vector.
    pub fn new() -> Self {
        CowVec(Arc::new(Vec::new()))
    }

    fn elements_mut(&mut self) -> &mut Vec<CowBox<T>> {
        Arc::make_mut(&mut self.0)
    }

    /// Appends `value`.
    pub fn push(&mut self, value: T) {
        self.elements_mut().push(CowBox::new(value));
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Element `i`.
    pub fn get(&self, i: usize) -> Option<&CowBox<T>> {
        self.0.get(i)
    }

    /// Element `i`, to change.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut CowBox<T>> {
        self.elements_mut().get_mut(i)
    }

    /// The elements in order.
    pub fn iter(&self) -> std::slice::Iter<'_, CowBox<T>> {
        self.0.iter()
    }

    /// The elements in order, to change.
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, CowBox<T>> {
        self.elements_mut().iter_mut()
    }
}

impl<T: Clone> Default for CowVec<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone> Clone for CowVec<T> {
    fn clone(&self) -> Self {
        CowVec(self.0.clone())
    }
}

impl<T: Clone> std::ops::Index<usize> for CowVec<T> {
    type Output = CowBox<T>;
    fn index(&self, i: usize) -> &CowBox<T> {
        &self.0[i]
    }
}

impl<T: Clone> std::ops::IndexMut<usize> for CowVec<T> {
    fn index_mut(&mut self, i: usize) -> &mut CowBox<T> {
        &mut self.elements_mut()[i]
    }
}

impl<T: Clone> FromIterator<CowBox<T>> for CowVec<T> {
    fn from_iter<I: IntoIterator<Item = CowBox<T>>>(iter: I) -> Self {
        CowVec(Arc::new(iter.into_iter().collect()))
    }
}

impl<'a, T: Clone> IntoIterator for &'a CowVec<T> {
    type Item = &'a CowBox<T>;
    type IntoIter = std::slice::Iter<'a, CowBox<T>>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T: Clone + PartialEq> PartialEq for CowVec<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl<T: Clone + Eq> Eq for CowVec<T> {}

impl<T: Clone + Hash> Hash for CowVec<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl<T: Clone + std::fmt::Debug> std::fmt::Debug for CowVec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

/// A plain vector of small values, shared copy-on-write between explorer states: cloning copies
/// a pointer; the first write to a shared one copies the elements (explorer scenarios hold a few).
/// Issue 16: the simulator indexes it on its hot path (a workload write picks a live object at
/// random), where `imbl::Vector`'s tree walk cost ~8 % of `sweep-1k`'s steady state. Hashed as
/// `imbl::Vector` hashes (the elements in order, no length), so states hash as they did.
#[derive(Clone, PartialEq, Eq)]
pub struct CowSeq<T: Clone>(Arc<Vec<T>>);

impl<T: Clone> CowSeq<T> {
    /// The elements, to change (copied first if an explorer state shares them).
    pub fn make_mut(&mut self) -> &mut Vec<T> {
        Arc::make_mut(&mut self.0)
    }

    /// Element `i`, to change.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.make_mut().get_mut(i)
    }

    /// The elements in order, to change.
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, T> {
        self.make_mut().iter_mut()
    }
}

impl<T: Clone> Default for CowSeq<T> {
    fn default() -> Self {
        CowSeq(Arc::new(Vec::new()))
    }
}

impl<T: Clone> Deref for CowSeq<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T: Clone> FromIterator<T> for CowSeq<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        CowSeq(Arc::new(iter.into_iter().collect()))
    }
}

impl<T: Clone + Hash> Hash for CowSeq<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for x in self.0.iter() {
            x.hash(state);
        }
    }
}

impl<T: Clone + std::fmt::Debug> std::fmt::Debug for CowSeq<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

/// A double-ended queue shared copy-on-write between explorer states, as [`CowSeq`] is a vector
/// (a watch cache's ring of events: pushed at the back, evicted at the front). Hashed as
/// `imbl::Vector` hashes (the elements in order, no length), so states hash as they did.
#[derive(Clone, PartialEq, Eq)]
pub struct CowDeque<T: Clone>(Arc<std::collections::VecDeque<T>>);

impl<T: Clone> CowDeque<T> {
    /// The elements, to change (copied first if an explorer state shares them).
    pub fn make_mut(&mut self) -> &mut std::collections::VecDeque<T> {
        Arc::make_mut(&mut self.0)
    }
}

impl<T: Clone> Default for CowDeque<T> {
    fn default() -> Self {
        CowDeque(Arc::new(std::collections::VecDeque::new()))
    }
}

impl<T: Clone> Deref for CowDeque<T> {
    type Target = std::collections::VecDeque<T>;
    fn deref(&self) -> &std::collections::VecDeque<T> {
        &self.0
    }
}

impl<T: Clone + Hash> Hash for CowDeque<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for x in self.0.iter() {
            x.hash(state);
        }
    }
}

impl<T: Clone + std::fmt::Debug> std::fmt::Debug for CowDeque<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cow_vec_copies_on_the_first_write_to_a_shared_one_only() {
        let mut a: CowVec<u32> = [1, 2, 3].into_iter().map(CowBox::new).collect();
        let b = a.clone();
        assert!(Arc::ptr_eq(&a.0, &b.0));
        *a[1] = 20;
        assert!(!Arc::ptr_eq(&a.0, &b.0), "written while shared: copied");
        assert_eq!(*b[1], 2, "the clone keeps its value");
        assert!(
            Arc::ptr_eq(&a.0[0].0, &b.0[0].0),
            "unchanged elements stay shared"
        );
        let before = Arc::as_ptr(&a.0);
        *a[2] = 30;
        assert_eq!(before, Arc::as_ptr(&a.0), "unshared: written in place");
        assert_ne!(a, b);
        a.push(4);
        assert_eq!(a.len(), 4);
        assert_eq!(
            a.iter().map(|x| **x).collect::<Vec<_>>(),
            vec![1, 20, 30, 4]
        );
    }

    /// Same hash as the `imbl::Vector` it replaced (explorer states hash as before), copy on the
    /// first write to a shared one only.
    #[test]
    fn a_cow_seq_hashes_as_imbl_vector_and_copies_on_shared_write() {
        let ids: Vec<u64> = vec![3, 1, 4, 1, 5];
        let seq: CowSeq<u64> = ids.iter().copied().collect();
        let imbl_vec: imbl::Vector<u64> = ids.iter().copied().collect();
        assert_eq!(
            crate::kernel::std_hash_of(&seq),
            crate::kernel::std_hash_of(&imbl_vec)
        );
        assert_eq!(format!("{seq:?}"), format!("{imbl_vec:?}"));
        let mut a = seq.clone();
        assert!(Arc::ptr_eq(&a.0, &seq.0));
        a.make_mut()[0] = 9;
        assert!(!Arc::ptr_eq(&a.0, &seq.0));
        assert_eq!((a[0], seq[0]), (9, 3));
        let before = Arc::as_ptr(&a.0);
        a.make_mut().push(2);
        assert_eq!(before, Arc::as_ptr(&a.0), "unshared: written in place");
        assert_ne!(a, seq);
        let mut deque: CowDeque<u64> = CowDeque::default();
        for x in &ids {
            deque.make_mut().push_back(*x);
        }
        assert_eq!(
            crate::kernel::std_hash_of(&deque),
            crate::kernel::std_hash_of(&imbl_vec)
        );
        assert_eq!(format!("{deque:?}"), format!("{imbl_vec:?}"));
        let shared = deque.clone();
        deque.make_mut().pop_front();
        assert_eq!((deque.len(), shared.len(), shared[0]), (4, 5, 3));
    }

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
