//! runner (work in progress).
