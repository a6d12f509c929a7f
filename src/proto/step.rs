//! The vocabulary of one simulation step, shared by the world that applies steps, the online
//! checker that watches them and the trace that records them: what can sit on the agenda
//! ([`Pending`]), what a step did ([`Outcome`]) and the faults a step can ask for
//! ([`FaultRequest`]).

use serde::Serialize;

use super::msg::{Msg, Timer};
use super::{Actor, ConnId, Dir};
use crate::kernel::Nanos;

/// Something pending on the agenda.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pending {
    /// A message in flight.
    Deliver {
        /// Connection.
        conn: ConnId,
        /// Direction.
        dir: Dir,
        /// Payload.
        msg: Msg,
    },
    /// A timer.
    Timer(Timer),
    /// One message to many connections (a watch cache's fan-out), delivered in one step.
    Multicast {
        /// Receivers: connection, the actor at its receiving end, and a per-receiver tag (the
        /// etcd watch id for etcd watch responses; 0 otherwise).
        targets: Vec<crate::proto::MulticastTarget>,
        /// Direction.
        dir: Dir,
        /// Payload.
        msg: Msg,
    },
    /// A connection was reset by the other end (process killed): `to` learns it.
    Reset {
        /// The connection (already closed in the network).
        conn: ConnId,
        /// Who is told.
        to: Actor,
    },
}

/// An agenda entry moves inline up to 128 bytes; past that, each move is a `memcpy` call (issue
/// 16: 5 % of a `sweep-1k` run's instructions when it was 160). Box a large new message instead.
const _: () = assert!(std::mem::size_of::<Pending>() <= 128);

/// What one step did, for the trace (SPEC §5: `actor`, `action`, then the outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The component that acted.
    pub actor: Actor,
    /// What happened: `deliver` or `timer`.
    pub action: &'static str,
    /// The message or timer kind.
    pub what: &'static str,
    /// The connection a message travelled on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn: Option<ConnId>,
    /// Result kind, e.g. `ok`, `compacted`, `dropped`, a workload op.
    pub result: &'static str,
    /// etcd's revision after the step.
    pub rev: i64,
    /// etcd's compact revision after the step.
    pub compact_rev: i64,
    /// Messages and timers the step emitted.
    pub emitted: u32,
    /// On the per-minute `metrics.minute` step: relists during that minute (for plotting storms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minute_relists: Option<u64>,
    /// On the per-minute step: bytes read from etcd by ranges during that minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minute_etcd_bytes: Option<u64>,
}

/// A fault a component (the script, the scheduled-fault injector) asks the world to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultRequest {
    /// Compact etcd at its current revision.
    CompactNow,
    /// Kill apiserver N and start it again after the given downtime.
    RestartApiserver(u32, Nanos),
    /// Restart client process N.
    RestartClient(u32),
    /// Break client N's watch and keep it cut off for the given time.
    DisconnectClient(u32, Nanos),
    /// Cut apiserver N off from etcd, optionally for a while.
    PartitionApiserver(u32, Option<Nanos>),
    /// Stall apiserver N's processing of etcd events, optionally for a while.
    StallApiserver(u32, Option<Nanos>),
    /// End every partition and stall.
    Heal,
}
