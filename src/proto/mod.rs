//! The protocol layer below the components (issue 15): what the etcd, apiserver and client
//! models share with the world that connects them and with the invariant checker, without
//! depending on either: connection and actor ids and message directions ([`ids`]), resource
//! ids, the notices a component gives the checker ([`notice`]) and the explorer's renaming of
//! interchangeable clients ([`relabel`]), the messages and timers ([`msg`]), etcd's and
//! Kubernetes' API types ([`etcd`], [`api`], [`status`], [`selector`], [`selector_syntax`]) and
//! the effects buffer a component writes into ([`out`]). It depends on `kernel` (and `serde`).

pub mod api;
pub mod etcd;
pub mod ids;
pub mod key_interner;
pub mod key_memo;
pub mod msg;
pub mod notice;
pub mod out;
pub mod relabel;
pub mod selector;
pub mod selector_syntax;
pub mod status;
pub mod step;

pub use ids::{Actor, ConnId, Dir};
pub use msg::{ApiTimer, CacherTimer, ClientTimer, Msg, Timer};
pub use notice::Notice;
pub use out::{Effect, Host, MulticastTarget, Out};
pub use relabel::Relabel;

/// Index of a resource in the scenario's `[[resources]]`.
pub type ResourceId = u32;
