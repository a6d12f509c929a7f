//! The deterministic kernel: virtual time, the agenda of pending events, named seeded random
//! streams and the stable 64-bit hash. Nothing here knows about etcd or Kubernetes.

pub mod agenda;
pub mod cow;
pub mod dense_map;
pub mod digest;
pub mod hash;
pub mod hashed_ord_map;
pub mod id_table;
pub mod rng;
pub mod shared;
pub mod time;

pub use agenda::{Agenda, EventKey};
pub use hash::{Fnv64, fnv64};
pub use rng::{RngStream, StreamId};
pub use shared::{Shared, Unhashed};
pub use time::Nanos;
