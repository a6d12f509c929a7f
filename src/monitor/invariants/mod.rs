//! The eight invariants of SPEC §6. Online ones are checked by [`Checker`](super::Checker) hooks
//! as steps are applied (`watch`, `time_travel`, `list`, `cache_window`); end-of-run ones when
//! the report is assembled (`crate::verdicts`: `convergence`, `relist`). Each keeps a [`Tally`]: a count and the
//! first violation, with the step it happened at (the step a capsule ends at).

pub mod cache_window;
pub mod list;
pub mod time_travel;
pub mod watch;

use crate::kernel::Nanos;
use crate::report::INVARIANT_NAMES;

/// One of the SPEC §6 invariants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Inv {
    /// Event RVs strictly increase on a stream; bookmarks never go back.
    WatchOrder,
    /// No event twice on a stream, nor again after a resume from a later RV.
    WatchUnique,
    /// Every change between a stream's start and its last RV is delivered.
    WatchNoGap,
    /// A client never observes an RV older than one it observed before.
    NoTimeTravel,
    /// A consistent LIST reflects every write committed before it; pages share one RV.
    ListConsistent,
    /// Watch caches respect their capacity and window.
    CacheWindow,
    /// Informers converge after the last fault and `settle`.
    Convergence,
    /// Relists per client-hour stay within the bound.
    RelistBound,
}

impl Inv {
    /// All eight, in SPEC order.
    pub const ALL: [Inv; 8] = [
        Inv::WatchOrder,
        Inv::WatchUnique,
        Inv::WatchNoGap,
        Inv::NoTimeTravel,
        Inv::ListConsistent,
        Inv::CacheWindow,
        Inv::Convergence,
        Inv::RelistBound,
    ];

    /// The SPEC name.
    pub fn name(self) -> &'static str {
        INVARIANT_NAMES[self as usize]
    }

    /// The invariant called `name`.
    pub fn from_name(name: &str) -> Option<Inv> {
        Inv::ALL.into_iter().find(|i| i.name() == name)
    }

    /// True for invariants judged only at the end of a run.
    pub fn end_of_run(self) -> bool {
        matches!(self, Inv::Convergence | Inv::RelistBound)
    }
}

/// One violation as first seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The step (from 1) during which it was detected.
    pub step: u64,
    /// Virtual time of that step.
    pub t_ns: Nanos,
    /// What happened, for a person.
    pub message: String,
}

/// Count and first violation of one invariant.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Violations seen.
    pub count: u64,
    /// The first one.
    pub first: Option<Violation>,
}
