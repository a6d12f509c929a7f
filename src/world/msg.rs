//! The messages, timers and agenda entries the world moves are the protocol layer's
//! (`proto::msg`, `proto::step`); re-exported here under their old paths.

pub use crate::proto::msg::{Msg, NO_REPLY, Timer};
pub use crate::proto::step::Pending;
