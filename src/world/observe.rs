//! What the run observed for the report: each scripted step's result and the events of each
//! scripted watch, in delivery order (SPEC §3, §4), etcd commit times, per-client observations
//! (highest RV ever seen, time travel, staleness) and a per-minute series. History, not state:
//! kept out of the World's hash so that the explorer still merges equal states.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::kernel::Nanos;
pub use crate::report::{ClientRequest, MinuteSample};

/// What one client population (a `[[clients]]` entry) experienced: its completed LISTs, their
/// latency (from a reflector's first LIST request to its informer holding the complete list,
/// pages, retries and fallbacks included) and its informers' largest staleness.
#[derive(Debug, Clone, Copy, Default)]
pub struct PopulationObs {
    /// LISTs completed (the informer replaced its store).
    pub lists: u64,
    /// Sum of their latencies.
    pub list_latency_sum_ns: Nanos,
    /// The largest.
    pub list_latency_max_ns: Nanos,
    /// Largest delay from an etcd commit to one of this population's informers applying it.
    pub staleness_max_ns: Nanos,
}

/// Clients whose requests are logged in `client_requests`.
pub const LOGGED_CLIENTS: u32 = 16;

/// Results and watch events of scripted steps, and what clients observed.
#[derive(Debug, Clone, Default)]
pub struct Observations {
    /// Result of each step, indexed by the step's position in the file; `None` until answered.
    pub script_results: Vec<Option<Value>>,
    /// Events of each scripted watch, keyed by the step's `id`, in delivery order.
    pub watches: BTreeMap<String, Vec<Value>>,
    /// Things the user should know (e.g. steps whose component is not modelled yet).
    pub notes: Vec<String>,
    /// Commit time of every etcd revision (index = revision).
    pub rev_times: Vec<Nanos>,
    /// LISTs whose RV was older than an RV of a LIST or an event the same client had already
    /// observed, across its restarts (#59848; the highest is the checker's
    /// [`crate::monitor::invariants::time_travel::ClientRv::data_max_rv`]).
    pub time_travels: u64,
    /// Largest delay from an etcd commit to a client applying its event.
    pub staleness_max_ns: Nanos,
    /// Per-minute series.
    pub series: Vec<MinuteSample>,
    /// Totals at the previous minute boundary (relists, etcd bytes, revision, lists from etcd).
    pub series_base: (u64, u64, i64, u64, u64),
    /// Requests of the first `LOGGED_CLIENTS` clients.
    pub client_requests: Vec<ClientRequest>,
    /// When each client's LIST in progress started (its first request), `None` when idle.
    pub list_started: Vec<Option<Nanos>>,
    /// Per client population (index = `[[clients]]` entry).
    pub populations: Vec<PopulationObs>,
    /// The invariant checker's online state (SPEC §6; `src/check/`).
    pub checker: crate::monitor::Checker,
}

impl Observations {
    /// Records the commit time of every revision up to `revision`.
    pub fn commit(&mut self, revision: i64, now: Nanos) {
        while (self.rev_times.len() as i64) <= revision {
            self.rev_times.push(now);
        }
    }

    /// When `revision` was committed (0 if unknown).
    pub fn commit_time(&self, revision: i64) -> Nanos {
        self.rev_times
            .get(revision.max(0) as usize)
            .copied()
            .unwrap_or(0)
    }
}
