//! The kube-apiserver model: the watch cache ([`watch_cache`]), the cacher and its watchers
//! ([`cacher`]), the LIST delegation rules ([`rules`]), the dispatcher's time budget
//! ([`budget`]), the API types ([`api`]), label and field selectors ([`selector`]) and Status
//! errors ([`status`]), and the apiserver actor
//! ([`server`]) that ties them to etcd and clients. Follows `reference/k8s-cacher-protocol.md`.

pub mod api;
pub mod budget;
pub mod cache_shadow;
pub mod cache_snapshots;
pub mod cache_window;
pub mod cacher;
pub mod list_options;
pub mod rules;
pub mod selector;
pub mod server;
pub mod status;
pub mod watch_cache;

pub use api::{
    ApiRequest, ApiResponse, ApiWatchEvent, ContinueToken, ListResult, ReadRate, ResourceId, Rv,
    RvMatch, ServedFrom,
};
pub use server::{ApiTimer, Apiserver, ApiserverCounters};
pub use status::Status;
