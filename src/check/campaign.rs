//! campaign (work in progress).
