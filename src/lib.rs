//! watchsim: a deterministic simulator and model checker of the protocol that keeps Kubernetes
//! clients in sync with etcd.
//!
//! Crate map (one model, two drivers; see `notes.md` for the fidelity ledger):
//! - [`kernel`]: virtual time, the event agenda, named seeded RNG streams, the stable trace hash.
//!   Nothing Kubernetes-specific lives here.
//! - [`proto`]: the layer below the components: connection and actor ids, notices to the checker.
//! - [`etcd`]: etcd's MVCC store (revisions, compaction, ranges, txns) and its watch server
//!   (synced / unsynced watchers, progress notify, RequestProgress).
//! - [`scenario`]: the TOML scenario schema, units, `--set` overrides, validation errors.
//! - [`world`]: `World`, `Action`, `World::apply`: the single transition system both drivers walk.
//! - [`sim`]: the discrete-event driver behind `watchsim run`.
//! - [`trace`]: the JSON Lines trace format.
//! - [`report`]: the run report (SPEC §4).
//! - [`check`]: the invariants of SPEC §6, `watchsim check` campaigns, capsules, replay, shrinking.
//! - [`sweep`]: `watchsim sweep`, a parameter grid × seeds with a table, CSV and plot.
//! - [`cli`]: the command line (clap definitions, one module per command); `src/main.rs` calls it.

#![warn(missing_docs)]

pub mod apiserver;
pub mod check;
pub mod cli;
pub mod client;
pub mod etcd;
pub mod kernel;
pub mod proto;
pub mod report;
pub mod scenario;
pub mod sim;
pub mod sweep;
pub mod trace;
pub mod validate;
pub mod world;

/// The crate version, reported as `watchsim_version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
