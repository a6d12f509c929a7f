//! The protocol layer below the components (issue 15): what the etcd, apiserver and client
//! models share with the world that connects them and with the invariant checker, without
//! depending on either: connection and actor ids and message directions ([`ids`]), resource
//! ids, the notices a component gives the checker ([`notice`]) and the explorer's renaming of
//! interchangeable clients ([`relabel`]). It depends on nothing but
//! `serde`. (The messages themselves, timers and the effects buffer still live in `world`.)

pub mod ids;
pub mod notice;
pub mod relabel;

pub use ids::{Actor, ConnId, Dir};
pub use notice::Notice;
pub use relabel::Relabel;

/// Index of a resource in the scenario's `[[resources]]`.
pub type ResourceId = u32;
