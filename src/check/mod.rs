//! Invariants, seed campaigns, failure capsules, replay and shrinking (SPEC §1 `check` and
//! `replay`, §5, §6).
//!
//! - The online checker ([`Checker`]) and the per-invariant logic are `crate::monitor` (below the
//!   world, which feeds it every step); the report's `invariants` array and the end-of-run
//!   invariants are `crate::verdicts`. Both are re-exported here under their old paths.
//! - `campaign.rs`: `watchsim check` (seeds in parallel, shards, swarm mode, summaries that merge).
//! - `capsule.rs`: capsule files (a trace ending in a violation); `replay.rs` re-executes one;
//!   `timeline.rs` prints it in fixed columns; `html/` draws it as one self-contained HTML page
//!   (`replay --html`, `run --html`); both are `view.rs` step views; `shrink.rs` minimises a
//!   failing run.

pub mod campaign;
pub mod capsule;
pub mod explore;
pub mod explore_measure;
pub mod html;
pub mod panics;
pub mod replay;
pub mod runner;
pub mod shrink;
pub mod soak;
pub mod timeline;
pub mod view;

pub use crate::monitor::invariants::Inv;
pub use crate::monitor::{Checker, changelog};
pub use crate::proto::Notice;
pub use crate::verdicts::verdicts;

/// The invariants: the online ones (`crate::monitor::invariants`) and the end-of-run ones
/// (`crate::verdicts`), under one path.
pub mod invariants {
    pub use crate::monitor::invariants::*;
    pub use crate::verdicts::{convergence, relist};
}
