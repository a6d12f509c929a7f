//! The run report (SPEC §4): every contract field, plus a few of watchsim's own. Figures of
//! components not modelled yet are present and zero; `invariants[].checked` says which invariants
//! this version actually checks.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::kernel::Nanos;

/// The SPEC §6 invariant names, in order.
pub const INVARIANT_NAMES: [&str; 8] = [
    "watch-order",
    "watch-unique",
    "watch-no-gap",
    "no-time-travel",
    "list-consistent",
    "cache-window",
    "convergence",
    "relist-bound",
];

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Seed in force.
    pub seed: u64,
    /// watchsim version.
    pub watchsim_version: String,
    /// Virtual time simulated.
    pub virtual_seconds: f64,
    /// Wall-clock time the run took (the only non-deterministic figure).
    pub wall_seconds: f64,
    /// Steps (actions) applied.
    pub steps: u64,
    /// Steps per wall-clock second.
    pub steps_per_second: f64,
    /// Watch events delivered by etcd per wall-clock second.
    pub events_per_second: f64,
    /// Peak resident memory of the watchsim process so far (Linux `VmHWM`; 0 where unknown).
    /// Like `wall_seconds`, a measurement of the machine, not of the model.
    pub peak_memory_bytes: u64,
    /// Stable hash of the trace.
    pub trace_hash: String,
    /// etcd figures.
    pub etcd: EtcdReport,
    /// One entry per apiserver.
    pub apiservers: Vec<ApiserverReport>,
    /// Client figures.
    pub clients: ClientsReport,
    /// Invariant verdicts.
    pub invariants: Vec<InvariantReport>,
    /// Bound verdicts.
    pub bounds: Vec<BoundReport>,
    /// Results of scripted steps, in execution order.
    pub script: Vec<ScriptEntry>,
    /// Events of scripted watches by id.
    pub watches: BTreeMap<String, Vec<Value>>,
    /// Per client population (`[[clients]]` entry, in file order): its LISTs, their latency, its
    /// relists and staleness, so that one population's expensive LISTs can be told apart from
    /// what the others experienced.
    pub client_populations: Vec<PopulationReport>,
    /// Requests of the first 16 clients (kind, RV, limit), for reading a run's reflector logic.
    pub client_requests: Vec<ClientRequest>,
    /// Per-minute series (relists, etcd bytes, revisions, LISTs from etcd).
    pub series: Vec<MinuteSample>,
    /// Things the user should know about this run.
    pub notes: Vec<String>,
}

/// etcd figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EtcdReport {
    /// Final revision.
    pub revision: i64,
    /// Final compact revision (0 if never compacted).
    pub compact_revision: i64,
    /// Range requests served.
    pub range_requests: u64,
    /// Key and value bytes returned by ranges.
    pub range_bytes: u64,
    /// Watch events sent.
    pub watch_events_sent: u64,
    /// Write requests that changed the store.
    pub writes: u64,
    /// Key and value bytes written.
    pub write_bytes: u64,
    /// Live keys at the end.
    pub keys: u64,
}

/// One apiserver's figures (zero until the apiserver model exists).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApiserverReport {
    /// `apiserver-N`.
    pub name: String,
    /// Restarts.
    pub restarts: u64,
    /// LISTs served from the watch cache.
    pub lists_from_cache: u64,
    /// LISTs delegated to etcd.
    pub lists_from_etcd: u64,
    /// Bytes returned by LISTs.
    pub list_bytes: u64,
    /// 410 too old resource version.
    pub too_old_errors: u64,
    /// 504 too large resource version.
    pub too_large_errors: u64,
    /// Bookmarks sent.
    pub bookmarks_sent: u64,
    /// Watchers closed for being slow.
    pub watchers_closed_slow: u64,
    /// Largest watch-cache capacity reached.
    pub cache_capacity_max: u64,
    /// Largest watch-cache size in bytes (summed over resources).
    pub cache_bytes_max: u64,
    /// Bytes read from etcd (client LISTs served by etcd, cacher LISTs, probes).
    pub etcd_read_bytes: u64,
    /// 429 responses while a cache (re)initialised.
    pub too_many_requests: u64,
    /// Peak concurrent LISTs (the height of a storm).
    pub lists_in_flight_max: u64,
    /// Peak temporary memory of LISTs being served (5x the response for etcd-served ones).
    pub list_memory_bytes_max: u64,
    /// Cacher (re)initialisations (LISTs of a whole resource from etcd).
    pub cache_initializations: u64,
    /// Consistent reads from cache that fell back to etcd after 3 s.
    pub consistent_read_fallbacks: u64,
    /// RequestProgress calls to etcd.
    pub progress_requests: u64,
    /// Compactions requested by this apiserver's compactor.
    pub compactions: u64,
    /// etcd LIST pages read by the cache consistency checker (1.34+ profiles: every cached
    /// resource, every 5-7.5 minutes, in pages of 10 000; `cacher/consistency/checker.go`).
    pub consistency_check_pages: u64,
    /// Watch events sent to clients from the caches.
    pub watch_events_sent: u64,
    /// Watches ended because the ring wrapped under a slow reader.
    pub intervals_invalidated: u64,
}

/// Relists by cause.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RelistCauses {
    /// 410 Gone.
    pub too_old: u64,
    /// 504 Too large resource version.
    pub too_large: u64,
    /// Client restarts.
    pub restart: u64,
    /// Other errors.
    pub error: u64,
}

/// Client figures (zero until the client model exists).
#[derive(Debug, Clone, Serialize)]
pub struct ClientsReport {
    /// Client instances.
    pub count: u64,
    /// Relists.
    pub relists: u64,
    /// Relists per client per hour.
    pub relists_per_client_hour: f64,
    /// Relists by cause.
    pub relist_causes: RelistCauses,
    /// Watches resumed without a relist.
    pub watch_resumes: u64,
    /// Largest lag of an informer behind etcd.
    pub max_staleness_seconds: f64,
    /// Every informer converged: at the end its store equals etcd's current state of its scope.
    pub converged: bool,
    /// Informers whose store differs from etcd's current state at the end.
    pub not_converged: u64,
    /// Watches reopened from a last-synced RV after a broken connection (disconnect, apiserver
    /// restart, refused or throttled watch); clean re-watches after a timeout are `watch_resumes`.
    pub reconnects: u64,
    /// Of those, refused with 410.
    pub reconnects_too_old: u64,
    /// `reconnects_too_old / reconnects` (0 when there were none).
    pub p_410_on_reconnect: f64,
    /// LIST requests sent by clients (pages and retries included).
    pub list_requests: u64,
    /// LIST pages the apiservers served from etcd (client and scripted LISTs; not the cachers'
    /// own), per client per hour: the figure of the bound `etcd_lists_per_client_hour`.
    pub etcd_lists_per_client_hour: f64,
    /// LISTs that returned an RV older than one the same client had already observed (#59848).
    pub time_travels: u64,
    /// Watch events applied by informers.
    pub events: u64,
    /// Mean LIST latency over every population (`client_populations` for each).
    pub list_latency_seconds_mean: f64,
    /// Largest LIST latency of any client.
    pub list_latency_seconds_max: f64,
}

/// One client population's figures (a `[[clients]]` entry).
#[derive(Debug, Clone, Serialize)]
pub struct PopulationReport {
    /// The population's `name`.
    pub name: String,
    /// Instances.
    pub count: u64,
    /// LISTs completed (initial lists and relists; a streaming list counts as one).
    pub lists: u64,
    /// Mean time from a LIST's first request to the informer holding the complete list (pages,
    /// retries after 429 and fallbacks included).
    pub list_latency_seconds_mean: f64,
    /// The largest such time.
    pub list_latency_seconds_max: f64,
    /// Relists (LISTs after the first successful one).
    pub relists: u64,
    /// Largest delay from an etcd commit to one of its informers applying the event.
    pub max_staleness_seconds: f64,
}

/// One invariant's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct InvariantReport {
    /// SPEC §6 name.
    pub name: String,
    /// True when no violation was seen.
    pub held: bool,
    /// Violations seen.
    pub violations: u64,
    /// Whether it was judged in this run (false: see `message` for why not).
    pub checked: bool,
    /// The first violation, in words (or why the invariant was not judged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Step (from 1) at which the first violation was detected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_step: Option<u64>,
}

/// One bound's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct BoundReport {
    /// Bound name (the `[bounds]` key).
    pub name: String,
    /// Limit from the scenario.
    pub limit: f64,
    /// Value measured.
    pub value: f64,
    /// `value <= limit`.
    pub held: bool,
}

/// One scripted step's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ScriptEntry {
    /// When it was issued.
    pub at: String,
    /// Its op.
    pub op: String,
    /// Its result (SPEC §3 shapes).
    pub result: Value,
}

impl Report {
    /// Names of violated invariants and bounds.
    pub fn violations(&self) -> Vec<String> {
        let inv = self
            .invariants
            .iter()
            .filter(|i| !i.held)
            .map(|i| i.name.clone());
        let bounds = self
            .bounds
            .iter()
            .filter(|b| !b.held)
            .map(|b| format!("bound:{}", b.name));
        inv.chain(bounds).collect()
    }
}

/// One minute of the run (for plotting storms).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MinuteSample {
    /// Minute index (0 = the first minute).
    pub minute: u64,
    /// Relists during the minute.
    pub relists: u64,
    /// Bytes read from etcd by ranges during the minute.
    pub etcd_bytes: u64,
    /// etcd revisions created during the minute.
    pub revisions: u64,
    /// LISTs served by etcd during the minute (all apiservers).
    pub lists_from_etcd: u64,
    /// Key and value bytes written to etcd during the minute.
    pub etcd_write_bytes: u64,
}

/// One request a client sent (kept for the first clients only, for tests and timelines).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientRequest {
    /// When.
    pub t_ns: Nanos,
    /// Client id.
    pub client: u32,
    /// `list`, `list-continue`, `watch`, `watch-list`.
    pub kind: &'static str,
    /// resourceVersion sent ("" = unset).
    pub rv: String,
    /// `limit` sent.
    pub limit: u64,
}
