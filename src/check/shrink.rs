//! shrink (work in progress).
