//! The kube-apiserver model.
pub mod status;
pub mod watch_cache;
