//! watchsim: a deterministic simulator and model checker of the protocol that keeps Kubernetes
//! clients in sync with etcd.
//!
//! Crate map (one model, two drivers; see `notes.md` for the fidelity ledger):
//! - [`kernel`]: virtual time, the event agenda, named seeded RNG streams, the stable trace hash.
//!   Nothing Kubernetes-specific lives here.
//! - [`proto`]: the layer below the components: messages, timers, etcd's and Kubernetes' API
//!   types, connection and actor ids, notices to the checker, and the effects buffer `Out` a
//!   component handler writes into (the world applies it).
//! - [`etcd`], [`apiserver`], [`client`]: the components. Each depends only on `kernel`, `proto`
//!   and its configuration in `scenario`, so each can be driven alone (`tests/architecture.rs`).
//! - [`scenario`]: the TOML scenario schema, units, `--set` overrides, validation errors.
//! - [`monitor`]: the online invariant checker the world feeds every step (SPEC §6).
//! - [`world`]: `World`, `Action`, `World::apply`: the single transition system both drivers walk.
//! - [`verdicts`]: the report's invariant verdicts, with the end-of-run invariants.
//! - [`sim`]: the discrete-event driver behind `watchsim run`.
//! - [`trace`]: the JSON Lines trace format.
//! - [`report`]: the run report (SPEC §4).
//! - [`check`]: `watchsim check` campaigns, the explorer, capsules, replay, shrinking.
//! - [`validate`]: `watchsim validate`, the stream invariants checked on real recorded watch
//!   streams (`etcdctl watch -w json`, `kubectl get -w --output-watch-events`).
//! - [`sweep`]: `watchsim sweep`, a parameter grid × seeds with a table, CSV and plot.
//! - [`cli`]: the command line (clap definitions, one module per command); `src/main.rs` calls it.

#![warn(missing_docs)]

pub mod apiserver;
pub mod check;
pub mod cli;
pub mod client;
pub mod etcd;
pub mod kernel;
pub mod monitor;
pub mod proto;
pub mod report;
pub mod scenario;
pub mod sim;
pub mod sweep;
pub mod trace;
pub mod validate;
pub mod verdicts;
pub mod world;

/// The crate version, reported as `watchsim_version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
