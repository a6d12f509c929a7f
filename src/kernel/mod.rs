//! The deterministic kernel: virtual time, the agenda of pending events, named seeded random
//! streams and the stable 64-bit hash. Nothing here knows about etcd or Kubernetes.

pub mod agenda;
pub mod armed_set;
pub mod cow;
pub mod dense_map;
pub mod digest;
pub mod hash;
pub mod hashed_ord_map;
pub mod id_table;
pub mod journal;
pub mod lookup_key;
pub mod lookup_table;
pub mod ordered_log;
pub mod prefault;
pub mod prefetch;
pub mod rng;
pub mod shared;
pub mod sorted_map;
pub mod time;
pub(crate) mod timing_wheel;

pub use agenda::{Agenda, EventKey};
pub use hash::{Fnv64, FnvJump, fnv_byte, fnv64};
pub use rng::{RngStream, StreamId};
pub use shared::{BoxPool, Scratch, ScratchPool, Shared, Unhashed};
pub use time::Nanos;

/// The configuration of the crate's unit-test proptests: the default, with failing cases kept in
/// `file` beside the integration tests' (the crate's top level holds no
/// `proptest-regressions/`).
#[cfg(test)]
pub(crate) fn proptest_kept(file: &'static str) -> proptest::prelude::ProptestConfig {
    proptest::prelude::ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(file),
        )),
        ..proptest::prelude::ProptestConfig::default()
    }
}

/// A value's `std` hash, for the tests of the kernel's tables (equal tables must hash equal).
#[cfg(test)]
pub(crate) fn std_hash_of<T: std::hash::Hash>(t: &T) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}
