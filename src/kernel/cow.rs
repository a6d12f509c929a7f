//! `CowBox<T>`: a value behind a reference-counted pointer that is cloned only when written while
//! shared. `imbl` collections store their elements inline in fixed 64-slot chunks, so a vector of
//! large structs (an apiserver is ~1 KiB) copies ~64 KiB whenever one element changes in a state
//! the explorer has cloned; boxing the element makes that copy 64 pointers plus the one element.
//! The simulator, which never shares a state, never clones through it.

use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// A copy-on-write box (see the module doc).
#[derive(Clone, PartialEq, Eq)]
pub struct CowBox<T: Clone>(Arc<T>);

impl<T: Clone> CowBox<T> {
    /// Boxes `value`.
    pub fn new(value: T) -> Self {
        CowBox(Arc::new(value))
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
        &self.0
    }
}

impl<T: Clone> DerefMut for CowBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        Arc::make_mut(&mut self.0)
    }
}

impl<T: Clone + Hash> Hash for CowBox<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (*self.0).hash(state);
    }
}

impl<T: Clone + std::fmt::Debug> std::fmt::Debug for CowBox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (*self.0).fmt(f)
    }
}
