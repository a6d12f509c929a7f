//! Wrappers that let a state (the `World`, a component) derive `Clone + Hash + Eq` while
//! carrying things that are not part of the protocol state: a shared value that never changes
//! (the scenario) and one that must not split otherwise-equal states in the explorer
//! (observations, followed configurations).

use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// Read-only data shared by every clone of a world; equal when it is the same allocation.
#[derive(Debug)]
pub struct Shared<T>(pub Arc<T>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(Arc::clone(&self.0))
    }
}

impl<T> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl<T> Eq for Shared<T> {}

impl<T> Hash for Shared<T> {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

impl<T> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Data carried along with the state but ignored by `Hash` and `Eq` (metrics, recorded history).
#[derive(Debug, Clone, Default)]
pub struct Unhashed<T>(pub T);

impl<T> PartialEq for Unhashed<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<T> Eq for Unhashed<T> {}

impl<T> Hash for Unhashed<T> {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

impl<T> Deref for Unhashed<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
impl<T> DerefMut for Unhashed<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// A reusable buffer lent to a step, so that a step's temporary list (the effects a handler
/// pushes, etcd's watch output) reuses one allocation instead of making one per step (issue 16).
/// Between steps it is empty, so a copy has no allocation of its own. It is never part of a
/// state's value: the simulator's loop holds it (`world::StepBuffers`), or a component keeps it
/// outside what it compares and hashes (etcd's key index, for its compaction's position map).
#[derive(Debug, Clone)]
pub struct Scratch<T>(Vec<T>);

impl<T> Default for Scratch<T> {
    fn default() -> Self {
        Scratch(Vec::new())
    }
}

impl<T> Scratch<T> {
    /// The buffer (empty), leaving none behind until [`put_back`](Self::put_back).
    #[inline]
    pub fn take(&mut self) -> Vec<T> {
        std::mem::take(&mut self.0)
    }

    /// Keeps `buf`, emptied, for the next [`take`](Self::take) (the larger of the two buffers).
    #[inline]
    pub fn put_back(&mut self, mut buf: Vec<T>) {
        if buf.capacity() > self.0.capacity() {
            buf.clear();
            self.0 = buf;
        }
    }
}

/// Reusable buffers lent out one at a time and handed back later, possibly steps later: a
/// multicast's target list is made by one step (the cacher's fan-out, etcd's response to the
/// apiservers) and dropped by the step that delivers it (issue 16: the allocator's slow path,
/// sorting its free chunks, cost ~4 % of `cluster-65k` for these lists). Like [`Scratch`] it is
/// never part of a state, and a copy holds no buffer.
#[derive(Debug)]
pub struct ScratchPool<T>(Vec<Vec<T>>);

/// Most buffers a [`ScratchPool`] keeps (about the multicasts in flight at once).
const POOL_KEEPS: usize = 32;

impl<T> Default for ScratchPool<T> {
    fn default() -> Self {
        ScratchPool(Vec::new())
    }
}

impl<T> Clone for ScratchPool<T> {
    fn clone(&self) -> Self {
        ScratchPool::default()
    }
}

impl<T> ScratchPool<T> {
    /// An empty buffer for at least `capacity` elements: the last one handed back, else a new
    /// one.
    #[inline]
    pub fn take(&mut self, capacity: usize) -> Vec<T> {
        match self.0.pop() {
            Some(mut buf) => {
                buf.reserve(capacity);
                buf
            }
            None => Vec::with_capacity(capacity),
        }
    }

    /// Keeps `buf`, emptied, for a later [`take`](Self::take) (dropped when the pool is full or
    /// the buffer has no allocation).
    #[inline]
    pub fn put_back(&mut self, mut buf: Vec<T>) {
        if buf.capacity() > 0 && self.0.len() < POOL_KEEPS {
            buf.clear();
            self.0.push(buf);
        }
    }
}

/// Boxes lent out one at a time and handed back later, possibly steps later: a workload write's
/// txn is boxed by the step that sends it and dropped by the step that delivers it to etcd, one
/// allocation and one free per write on the lease path (issue 16, the allocator's slow path in
/// `cluster-65k`). A box handed back holds the default value (what it held is dropped then), so
/// a kept box keeps nothing else alive. Like [`ScratchPool`] it is never part of a state, and a
/// copy holds no box.
#[derive(Debug)]
pub struct BoxPool<T>(Vec<Box<T>>);

impl<T> Default for BoxPool<T> {
    fn default() -> Self {
        BoxPool(Vec::new())
    }
}

impl<T> Clone for BoxPool<T> {
    fn clone(&self) -> Self {
        BoxPool::default()
    }
}

impl<T: Default> BoxPool<T> {
    /// `value` in a box: the last one handed back, else a new one.
    #[inline]
    pub fn boxed(&mut self, value: T) -> Box<T> {
        match self.0.pop() {
            Some(mut b) => {
                *b = value;
                b
            }
            None => Box::new(value),
        }
    }

    /// Keeps `b` for a later [`boxed`](Self::boxed), its value dropped (the box is dropped
    /// when the pool is full).
    #[inline]
    pub fn put_back(&mut self, mut b: Box<T>) {
        if self.0.len() < POOL_KEEPS {
            *b = T::default();
            self.0.push(b);
        }
    }
}

#[cfg(test)]
mod scratch_tests {
    use super::{BoxPool, POOL_KEEPS, Scratch, ScratchPool};

    /// A box handed back is lent again holding the new value; what it held is dropped when it
    /// comes back; the pool keeps at most `POOL_KEEPS`, and a copy holds none.
    #[test]
    fn a_box_pool_lends_its_boxes_again() {
        let held = std::sync::Arc::new(7u32);
        let mut pool: BoxPool<Option<std::sync::Arc<u32>>> = BoxPool::default();
        let a = pool.boxed(Some(held.clone()));
        let addr: *const Option<std::sync::Arc<u32>> = &*a;
        pool.put_back(a);
        assert_eq!(
            std::sync::Arc::strong_count(&held),
            1,
            "the kept box let go of its value"
        );
        let again = pool.boxed(Some(held.clone()));
        assert_eq!(&*again as *const _, addr);
        assert_eq!(*again, Some(held.clone()));
        for _ in 0..POOL_KEEPS + 3 {
            pool.put_back(Box::new(None));
        }
        assert_eq!(pool.0.len(), POOL_KEEPS);
        assert!(pool.clone().0.is_empty());
    }

    /// A buffer handed back comes out again, empty, with its capacity (grown when asked for
    /// more); the pool keeps at most `POOL_KEEPS`, and a copy holds none.
    #[test]
    fn a_pool_lends_its_buffers_again() {
        let mut pool: ScratchPool<u32> = ScratchPool::default();
        let mut a = pool.take(4);
        assert!(a.capacity() >= 4);
        a.extend([1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let cap = a.capacity();
        let ptr = a.as_ptr();
        pool.put_back(a);
        let again = pool.take(2);
        assert!(again.is_empty());
        assert_eq!((again.as_ptr(), again.capacity()), (ptr, cap));
        pool.put_back(again);
        assert!(pool.take(cap * 4).capacity() >= cap * 4);
        pool.put_back(Vec::new());
        assert!(pool.0.is_empty(), "a buffer with no allocation is not kept");
        for _ in 0..POOL_KEEPS + 3 {
            pool.put_back(Vec::with_capacity(1));
        }
        assert_eq!(pool.0.len(), POOL_KEEPS);
        assert!(pool.clone().0.is_empty());
    }

    /// The buffer comes back empty with its capacity; a copy has none.
    #[test]
    fn reuses_its_buffer_and_copies_empty() {
        let mut s: Scratch<u32> = Scratch::default();
        let mut v = s.take();
        v.extend([1, 2, 3]);
        let cap = v.capacity();
        s.put_back(v);
        let again = s.take();
        assert!(again.is_empty());
        assert_eq!(again.capacity(), cap);
        s.put_back(again);
        let copy = s.clone();
        assert_eq!(copy.0.capacity(), 0);
        // A smaller buffer handed back does not replace the larger one kept.
        let mut s2 = s.clone();
        s2.put_back(Vec::with_capacity(cap + 8));
        s2.put_back(Vec::with_capacity(1));
        assert_eq!(s2.take().capacity(), cap + 8);
    }
}
