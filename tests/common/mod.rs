//! Shared helpers for integration tests that talk to a real etcd.
//!
//! - [`real_etcd`]: finds the `etcd` binary and runs a private etcd (free ports, temporary data
//!   dir, killed by PID on drop).
//! - [`gateway`]: a minimal HTTP/1.1 client for etcd 3.4's JSON gateway that turns answers into
//!   the SPEC §3 result and watch-event shapes.
//! - [`ops`]: the scripted `etcd.*` steps, their scenario-TOML rendering and a small reference
//!   tracker used to generate interesting inputs and to know when a real watch has caught up.
//! - [`kube_oracle`]: the Go oracles over the real Kubernetes code (apiserver, reflector).
//! - [`model_client`]: one reflector's requests, outcomes and waits in a watchsim run.
#![allow(dead_code)]

pub mod gateway;
pub mod kube_oracle;
pub mod model_client;
pub mod ops;
pub mod real_etcd;
