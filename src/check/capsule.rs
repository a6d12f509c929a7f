//! capsule (work in progress).
