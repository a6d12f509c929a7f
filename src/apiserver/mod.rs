//! The kube-apiserver model: the watch cache ([`watch_cache`]), the cacher and its watchers
//! ([`cacher`]), the LIST delegation rules ([`rules`]), the dispatcher's time budget
//! ([`budget`]), and the apiserver actor ([`server`]) that ties them to etcd and clients.
//! Follows `reference/k8s-cacher-protocol.md`. The API types, label and field selectors and
//! Status errors it shares with clients are the protocol layer's (`proto::api`,
//! `proto::selector`, `proto::status`), re-exported here under their old paths.

pub use crate::proto::api;
pub mod budget;
pub mod cache_shadow;
pub mod cache_snapshots;
pub mod cache_store;
pub mod cache_window;
pub mod cacher;
pub mod list_options;
pub mod rules;
pub use crate::proto::selector;
pub mod server;
pub use crate::proto::status;
pub mod watch_cache;

pub use crate::proto::ApiTimer;
pub use api::{
    ApiRequest, ApiResponse, ApiWatchEvent, ContinueToken, ListResult, ReadRate, ResourceId, Rv,
    RvMatch, ServedFrom,
};
pub use server::{Apiserver, ApiserverCounters};
pub use status::Status;
