//! The scenario file's schema (SPEC §2 and §3): every key a user may write, with the defaults of
//! the real systems (see `../shared/reference/`). Unknown keys are refused everywhere. This file
//! has the top level, the mutants and the etcd, apiserver, watch cache and network settings;
//! resources, clients, workloads and faults are `population.rs`, scripted steps `steps.rs`.

use serde::Deserialize;

use super::population::{BoundsConfig, ClientConfig, FaultsConfig, ResourceConfig, WorkloadConfig};
use super::steps::Step;
use super::units::{Bytes, DurationNs};

fn default_seed() -> u64 {
    1
}
fn default_duration() -> DurationNs {
    DurationNs::from_secs(30 * 60)
}
fn default_settle() -> DurationNs {
    DurationNs::from_secs(120)
}

/// A whole scenario: what runs, for how long, under which faults and bounds.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Required: the scenario's name, echoed in reports and traces.
    pub name: String,
    /// What this scenario demonstrates.
    #[serde(default)]
    pub description: String,
    /// Seed of every random stream (overridden by `--seed`).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Virtual time simulated.
    #[serde(default = "default_duration")]
    pub duration: DurationNs,
    /// Quiet time after the last fault before convergence is judged (SPEC §6, default 2m).
    #[serde(default = "default_settle")]
    pub settle: DurationNs,
    /// The etcd server's flags.
    #[serde(default)]
    pub etcd: EtcdConfig,
    /// kube-apiserver flags and watch-cache sizing.
    #[serde(default)]
    pub apiserver: ApiserverConfig,
    /// How client connections are spread over apiservers.
    #[serde(default)]
    pub load_balancer: LoadBalancerConfig,
    /// Latency of every simulated network link.
    #[serde(default)]
    pub network: NetworkConfig,
    /// Resource types and their initial object counts.
    #[serde(default)]
    pub resources: Vec<ResourceConfig>,
    /// Client populations (reflectors / informers).
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// Write load per resource.
    #[serde(default)]
    pub workload: Vec<WorkloadConfig>,
    /// Fault rates and scheduled faults.
    #[serde(default)]
    pub faults: FaultsConfig,
    /// Limits checked at the end of a run.
    #[serde(default)]
    pub bounds: BoundsConfig,
    /// `[explore]`: settings `watchsim explore` reads (ignored by the simulator).
    #[serde(default)]
    pub explore: ExploreConfig,
    /// Scripted operations (SPEC §3), in file order; see [`Scenario::steps_in_order`].
    #[serde(default, deserialize_with = "super::steps::deserialize_op_tagged")]
    pub steps: Vec<Step>,
    /// watchsim's own: switches that deliberately break one rule of the model each (the
    /// broken-model tests of the invariant checker). All off by default.
    #[serde(default)]
    pub mutants: Mutants,
}

impl Scenario {
    /// The label table of this scenario: the label maps its `api.create` / `api.update` steps
    /// write, interned in step order (`proto::selector::LabelTable`).
    pub fn label_table(&self) -> crate::proto::selector::LabelTable {
        crate::proto::selector::LabelTable::new(self.steps.iter().filter_map(|step| match step {
            Step::ApiCreate { labels, .. } | Step::ApiUpdate { labels, .. } => labels.as_ref(),
            _ => None,
        }))
    }

    /// Fills the knobs whose default follows `apiserver.rules` and that the scenario leaves
    /// unset: the server's and each client population's `watch_list`.
    pub fn resolve_profile_defaults(&mut self) {
        let rules = self.apiserver.rules;
        self.apiserver
            .watch_list
            .get_or_insert(rules.watch_list_served_by_default());
        for c in &mut self.clients {
            c.watch_list
                .get_or_insert(rules.watch_list_client_by_default());
        }
    }
}

/// `[mutants]`: each flag breaks exactly one rule inside the model, re-creating a real historical
/// bug where one exists, so that a test can show the matching invariant fires (`tests/invariants.rs`).
/// Unknown keys are refused like everywhere else.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields, default)]
pub struct Mutants {
    /// Kubernetes PR #73845: a snapshot (RV=0 / sendInitialEvents) does not raise the watcher's
    /// start RV, so the event still queued for dispatch when the watch registered is delivered
    /// again after the initial events (breaks `watch-unique`).
    pub cacher_duplicate_after_snapshot: bool,
    /// etcd #17529 (fixed in 3.4.31): an unsynced watcher whose next revision was compacted is
    /// silently moved to the current revision + 1 instead of being cancelled (breaks
    /// `watch-no-gap`).
    pub etcd_skip_compacted_watcher: bool,
    /// Kubernetes PR #68065: a watch from exactly the oldest watchable RV - 1 (e.g. the list RV)
    /// is refused with 410 (breaks `cache-window`).
    pub cacher_window_off_by_one: bool,
    /// A LIST with RV unset is served from the watch cache at once, without the freshness wait of
    /// KEP-2340 (breaks `list-consistent`).
    pub consistent_list_without_wait: bool,
    /// The cacher holds each event for a live watcher and delivers it after the next, newer one
    /// (breaks `watch-order`).
    pub cacher_reorder: bool,
    /// The informer ignores DELETED events (breaks `convergence`).
    pub reflector_drop_deletes: bool,
    // etcd historical bugs (issue 7; `tests/mutants_etcd.rs`).
    /// etcd #18089 (fixed by PR #18274 in 3.4.34 / 3.5.16): compaction at revision R drops a
    /// tombstone whose revision is exactly R (`key_index.go compact` kept only tombstones newer
    /// than R), so a watch reading history from R loses that DELETE (breaks `watch-no-gap`).
    pub etcd_tombstone_at_compact_lost: bool,
    /// etcd #15220 (fixed by PR #15237 in 3.4.25 / 3.5.8): a RequestProgress is answered with the
    /// store revision although a watcher of the stream is still catching up, so the notification
    /// vouches for events not yet sent (breaks `watch-no-gap`).
    pub etcd_progress_before_catchup: bool,
    /// kine PR #747 (the etcd rule: only a start revision *below* the compact revision is
    /// compacted): a watch that starts exactly at the compact revision is cancelled as compacted
    /// (seen through the relist it forces: `relist-bound`).
    pub etcd_watch_at_compact_refused: bool,
    /// Kubernetes #116122 (fixed by PR #116172, 1.27): a WATCH that arrives while a cacher is
    /// re-initialising (not ready after it had been ready: its etcd watch broke and it is
    /// listing again) is registered against the cache's old state, as if it had passed the ready
    /// check of the previous generation, instead of being refused (429, 1.31) or parked (1.27).
    /// If it registers after `terminateAllWatchers`, it survives the `Replace` and never gets the
    /// changes between the old state and the new list (breaks `watch-no-gap`).
    pub cacher_watch_during_reinit: bool,
    /// Kubernetes #91073 (fixed by PR #92537, 1.19 / 1.18.6): the reflector does not recognise a
    /// LIST's 504 "Too large resource version" (the watch cache's freshness wait for an RV it
    /// has not reached, e.g. a lagging apiserver or a never-written type without progress
    /// notify), so it does not fall back to RV "" but returns from ListAndWatch and relists, after
    /// the backoff, at the same RV: a loop of 504s (breaks `relist-bound`).
    pub reflector_too_large_rv_no_fallback: bool,
    /// Kubernetes #86483, caused by PR #83520 (1.17.0; reverted by PR #86824, reworked by PR
    /// #86430): a relist at the last synced RV keeps the pager's page size (`limit` 500)
    /// instead of 0, so kube-apiserver delegates it to etcd as a paginated (legacy exact) LIST
    /// instead of serving it from the watch cache: reconnect storms become etcd LIST storms
    /// (breaks the bound `etcd_lists_per_client_hour`).
    pub reflector_relist_from_etcd: bool,
    /// KEP-1904 (efficient watch resumption, before `EfficientWatchResumption`): a restarted
    /// kube-apiserver opens its cachers' etcd watches without progress notify, so the RV of a
    /// cache whose type is not written stays at its list RV and its clients' bookmarks never
    /// move; when their watches later break they resume from stale RVs on caches initialised
    /// since, get 410 and relist: a relist storm (breaks `relist-bound`).
    pub no_progress_notify_after_restart: bool,
    /// A test aid, not a bug: the model panics once the step with this number (from 1) has been
    /// applied (0 = never), so tests can show that a panicking run becomes a `panic` finding
    /// with a capsule that replays (issue 17). Deterministic: the same step every run.
    pub panic_at_step: u64,
}

impl Mutants {
    /// The names of the flags that are on (for the report's notes).
    pub fn enabled(&self) -> Vec<&'static str> {
        let all = [
            (
                "cacher_duplicate_after_snapshot",
                self.cacher_duplicate_after_snapshot,
            ),
            (
                "etcd_skip_compacted_watcher",
                self.etcd_skip_compacted_watcher,
            ),
            ("cacher_window_off_by_one", self.cacher_window_off_by_one),
            (
                "consistent_list_without_wait",
                self.consistent_list_without_wait,
            ),
            ("cacher_reorder", self.cacher_reorder),
            ("reflector_drop_deletes", self.reflector_drop_deletes),
            // etcd historical bugs
            (
                "etcd_tombstone_at_compact_lost",
                self.etcd_tombstone_at_compact_lost,
            ),
            (
                "etcd_progress_before_catchup",
                self.etcd_progress_before_catchup,
            ),
            (
                "etcd_watch_at_compact_refused",
                self.etcd_watch_at_compact_refused,
            ),
            (
                "cacher_watch_during_reinit",
                self.cacher_watch_during_reinit,
            ),
            (
                "reflector_too_large_rv_no_fallback",
                self.reflector_too_large_rv_no_fallback,
            ),
            (
                "reflector_relist_from_etcd",
                self.reflector_relist_from_etcd,
            ),
            (
                "no_progress_notify_after_restart",
                self.no_progress_notify_after_restart,
            ),
        ];
        let mut on: Vec<&'static str> = all.iter().filter(|(_, on)| *on).map(|(n, _)| *n).collect();
        if self.panic_at_step > 0 {
            on.push("panic_at_step");
        }
        on
    }
}

/// `[explore]`: how the explorer treats time in this scenario.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ExploreConfig {
    /// Reordering window: an action is enabled only while it is due no later than the earliest
    /// pending action plus this (a delay bound). Absent = unbounded: any pending action may fire
    /// next, whatever its due time (full time abstraction).
    pub window: Option<DurationNs>,
}

/// etcd server flags (etcd-semantics.md A9, A11).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EtcdConfig {
    /// `--experimental-watch-progress-notify-interval` (etcd default 10 min; kubeadm sets 5 s).
    pub progress_notify_interval: DurationNs,
    /// `--max-request-bytes` (default 1.5 MiB).
    pub max_request_bytes: Bytes,
    /// Which etcd release's watch and compaction behaviour applies (default the newest).
    pub version: EtcdVersion,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        Self {
            progress_notify_interval: DurationNs::from_secs(600),
            max_request_bytes: Bytes(1_572_864),
            version: EtcdVersion::V3_7,
        }
    }
}

/// An etcd release whose behaviour the etcd model follows (etcd-semantics.md "known bugs"). The
/// releases differ in three bugs that Debian's 3.4.23 still has: #18089 (a DELETE exactly at the
/// compact revision is lost; fixed in 3.4.34 / 3.5.16), #15220 (RequestProgress answered while a
/// watcher is still catching up; 3.4.25 / 3.5.8) and #17529 (a lagging watcher whose next
/// revision is compacted is skipped instead of cancelled; 3.4.31 / 3.5.13). 3.6 and 3.7 have
/// every fix. The same switches are the `etcd_*` mutants, except #17529: before its fix the
/// watcher is skipped only when its stream's 128-response channel is full at that moment
/// (`watcher_group.go chooseAll`, `select ... default: retry next time`), and the model's channel
/// is unbounded, so no version triggers it; the `etcd_skip_compacted_watcher` mutant forces it.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash)]
pub enum EtcdVersion {
    /// Debian bookworm's `etcd-server` (the oracle of `tests/etcd_conformance.rs`).
    #[serde(rename = "3.4.23")]
    V3_4_23,
    /// etcd 3.5.7 (what k8s.io/apiserver v0.27 pins): the bugs of 3.4.23.
    #[serde(rename = "3.5.7")]
    V3_5_7,
    /// etcd 3.5.13 (what k8s.io/apiserver v0.31 pins): #15220 and #17529 fixed, #18089 not.
    #[serde(rename = "3.5.13")]
    V3_5_13,
    /// etcd 3.6.
    #[serde(rename = "3.6")]
    V3_6,
    /// etcd 3.7 (what k8s.io/apiserver v0.37 pins).
    #[serde(rename = "3.7")]
    V3_7,
}

impl EtcdVersion {
    /// #18089: a DELETE at exactly the compact revision is lost to watchers catching up (fixed
    /// in 3.4.34 and 3.5.16).
    pub fn loses_tombstone_at_compact(self) -> bool {
        matches!(self, Self::V3_4_23 | Self::V3_5_7 | Self::V3_5_13)
    }

    /// #15220: RequestProgress answered while a watcher is unsynced (fixed in 3.4.25 and 3.5.8).
    pub fn progress_before_catchup(self) -> bool {
        matches!(self, Self::V3_4_23 | Self::V3_5_7)
    }
}

/// kube-apiserver flags (k8s-cacher-protocol.md §2, §3, §7).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiserverConfig {
    /// Number of HA apiservers, each with its own watch caches.
    pub count: u32,
    /// `--etcd-compaction-interval` (default 5m; "0s" = never).
    pub compaction_interval: DurationNs,
    /// KEP-2340 consistent LIST from cache (1.31+ default).
    pub consistent_list_from_cache: bool,
    /// KEP-3157 streaming lists served (the server's `WatchList` gate). Absent: the profile's
    /// default, on from `"1.34"` (resolved when the scenario loads).
    pub watch_list: Option<bool>,
    /// Per-watcher bookmark period (`defaultBookmarkFrequency`, 1 min).
    pub bookmark_interval: DurationNs,
    /// Watch-cache ring sizing.
    pub watch_cache: WatchCacheConfig,
    /// Which Kubernetes version's cacher rules apply: "1.27", "1.31", "1.34", "1.37" (default).
    pub rules: Rules,
    /// How fast an apiserver encodes a LIST response (watchsim's assumption, not a Kubernetes
    /// flag): a LIST holds its memory for `bytes / rate` before the response leaves.
    pub list_serve_bytes_per_second: Bytes,
    /// How many LIST responses one apiserver encodes at once, each at
    /// `list_serve_bytes_per_second` (watchsim's model of the apiserver's CPU, not a Kubernetes
    /// flag; roughly its cores, since one response is encoded on one goroutine): the others wait
    /// their turn, first come first served, holding their memory. 0: no limit (every LIST is
    /// encoded at once at the full rate).
    pub list_encoders: u32,
}

/// The behaviour set selected by `apiserver.rules` (k8s-cacher-protocol.md §2.7, §6.2, §11).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash)]
pub enum Rules {
    /// Kubernetes 1.27: unset-RV LISTs go to etcd, `limit` is ignored by the cache, a cache that
    /// is not ready sends RV=0 LISTs to etcd and makes other requests wait.
    #[serde(rename = "1.27")]
    V1_27,
    /// Kubernetes 1.31+: consistent LISTs from cache (`ConsistentListFromCache`), `limit`
    /// honoured by the cache, 429 while (re)initialising (`ResilientWatchCacheInitialization`);
    /// the WatchList end bookmark is sent right after the initial events (1.32).
    #[serde(rename = "1.31")]
    V1_31,
    /// Kubernetes 1.34-1.36: as 1.31, plus LIST continuations and Exact / legacy-exact LISTs
    /// served from the watch cache's snapshots (`ListFromCacheSnapshot`, beta on since 1.34).
    #[serde(rename = "1.34")]
    V1_34,
    /// Kubernetes 1.37: as 1.34 (the rules the Go oracle of `tests/oracle/kube-1.37` checks).
    #[serde(rename = "1.37")]
    V1_37,
}

impl Rules {
    /// Kubernetes 1.27's rules (unset-RV LISTs to etcd, requests parked while not ready).
    pub fn is_1_27(self) -> bool {
        self == Rules::V1_27
    }

    /// LIST continuations and exact-RV LISTs from the cache's snapshots (1.34+).
    pub fn list_from_cache_snapshots(self) -> bool {
        matches!(self, Rules::V1_34 | Rules::V1_37)
    }

    /// The cache consistency checker re-reads every cached resource from etcd every 5-7.5 min
    /// (`DetectCacheInconsistency`, beta and on since 1.34).
    pub fn detects_cache_inconsistency(self) -> bool {
        matches!(self, Rules::V1_34 | Rules::V1_37)
    }

    /// The 429 of a not-ready cache carries a Retry-After that grows with its downtime (1.33+).
    pub fn growing_retry_after(self) -> bool {
        matches!(self, Rules::V1_34 | Rules::V1_37)
    }

    /// The server's `WatchList` gate default: beta on in 1.32, off again in 1.33, on from 1.34
    /// (`apiserver/pkg/features/kube_features.go`); "1.31" stands for 1.31-1.33: off.
    pub fn watch_list_served_by_default(self) -> bool {
        matches!(self, Rules::V1_34 | Rules::V1_37)
    }

    /// The consistent-read probe is a Get of the resource's key prefix itself, reading no object
    /// (1.37, `etcd3/store.go GetCurrentResourceVersion`); before, a limit-1 LIST of the prefix.
    pub fn probe_reads_no_object(self) -> bool {
        self == Rules::V1_37
    }

    /// client-go's `WatchListClient` default: on from 1.35 (`client-go/features/known_features.go`).
    pub fn watch_list_client_by_default(self) -> bool {
        self == Rules::V1_37
    }

    /// client-go 1.36+ reflector backoff: `DelayWithReset(clock, 2m)` resets every 2 min even
    /// under continuous failure (k8s-rules-1.31-1.37.md row 9); before, after 2 quiet minutes.
    pub fn reflector_backoff_resets_periodically(self) -> bool {
        self == Rules::V1_37
    }
}

impl Default for ApiserverConfig {
    fn default() -> Self {
        Self {
            rules: Rules::V1_37,
            list_serve_bytes_per_second: Bytes(200 * 1024 * 1024),
            list_encoders: 0,
            count: 1,
            compaction_interval: DurationNs::from_secs(300),
            consistent_list_from_cache: true,
            watch_list: None,
            bookmark_interval: DurationNs::from_secs(60),
            watch_cache: WatchCacheConfig::default(),
        }
    }
}

/// Watch-cache sizing mode (k8s-cacher-protocol.md §2.2).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum WatchCacheMode {
    /// 1.19+: capacity between `lower` and `upper`, grown while the ring is younger than `fresh`.
    Dynamic,
    /// A fixed ring of `capacity` events (pre-1.19 behaviour).
    Fixed,
    /// No watch cache: every request goes to etcd.
    Off,
}

/// `[apiserver.watch_cache]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WatchCacheConfig {
    /// Sizing mode.
    pub mode: WatchCacheMode,
    /// Ring size when `mode = "fixed"`.
    pub capacity: u64,
    /// Initial and smallest capacity (dynamic).
    pub lower: u64,
    /// Largest capacity (dynamic). Unset: Kubernetes' `capacityUpperBound(eventFreshDuration)`
    /// ([`WatchCacheConfig::upper_bound`]); set, a what-if override (Kubernetes has no flag).
    pub upper: Option<u64>,
    /// `eventFreshDuration`: grow while the whole ring is younger than this.
    pub fresh: DurationNs,
}

impl Default for WatchCacheConfig {
    fn default() -> Self {
        Self {
            mode: WatchCacheMode::Dynamic,
            capacity: 100,
            lower: 100,
            upper: None,
            fresh: DurationNs::from_secs(75),
        }
    }
}

/// `defaultUpperBoundCapacity` (`cacher/watch_cache_history.go`): the largest ring for the
/// default 75 s history window.
pub const DEFAULT_UPPER_BOUND_CAPACITY: u64 = 102_400;

impl WatchCacheConfig {
    /// The largest capacity of a dynamic ring: the `upper` override, else
    /// `watch_cache_history.go capacityUpperBound` (1.33+, when the history window became
    /// configurable): 102 400 for a window up to 75 s, else 102 400 × 2^ceil(log2(window / 75 s)),
    /// the exponent capped so the bound fits in an int32 (14).
    pub fn upper_bound(&self) -> u64 {
        if let Some(upper) = self.upper {
            return upper;
        }
        let default_ns = 75 * 1_000_000_000u64;
        let mut exponent = 0;
        while exponent < 14 && (default_ns << exponent) < self.fresh.as_ns() {
            exponent += 1;
        }
        DEFAULT_UPPER_BOUND_CAPACITY << exponent
    }
}

/// Load-balancer policy in front of the apiservers.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum LoadBalancerPolicy {
    /// Connections go to apiservers in turn.
    RoundRobin,
    /// Each connection picks an apiserver at random (seeded).
    Random,
    /// The apiserver with the fewest open connections.
    LeastConnections,
    /// A client keeps its apiserver across reconnects while it is up.
    Sticky,
}

/// `[load_balancer]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LoadBalancerConfig {
    /// Policy.
    pub policy: LoadBalancerPolicy,
    /// Chance per request that the apiserver answers GOAWAY (HTTP/2), closing the connection.
    pub goaway_chance: f64,
}

impl Default for LoadBalancerConfig {
    fn default() -> Self {
        Self {
            policy: LoadBalancerPolicy::RoundRobin,
            goaway_chance: 0.0,
        }
    }
}

/// `[network]` (watchsim's own key): one-way latency of every link, uniform in
/// `[latency, latency + jitter]`, FIFO per connection.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Base one-way latency.
    pub latency: DurationNs,
    /// Extra latency drawn uniformly from `[0, jitter]`.
    pub jitter: DurationNs,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            latency: DurationNs::from_millis(1),
            jitter: DurationNs(0),
        }
    }
}

#[cfg(test)]
mod watch_cache_bound_tests {
    use super::*;

    /// Row 12 of the 1.31-1.37 reference: `watch_cache_history.go capacityUpperBound`, the cases
    /// of `watch_cache_test.go TestCapacityUpperBound` (75 s and 45 s: 102 400; 300 s: ×4;
    /// 225 s: rounded up to ×4; 2^20 × 75 s: capped at ×2^14), and an explicit `upper` wins.
    #[test]
    fn capacity_upper_bound_follows_the_history_window() {
        let bound = |secs: u64| {
            WatchCacheConfig {
                fresh: DurationNs::from_secs(secs),
                ..Default::default()
            }
            .upper_bound()
        };
        assert_eq!(bound(75), 102_400);
        assert_eq!(bound(45), 102_400);
        assert_eq!(bound(300), 4 * 102_400);
        assert_eq!(bound(225), 4 * 102_400);
        assert_eq!(bound(76), 2 * 102_400);
        assert_eq!(bound(75 << 20), 102_400 << 14);
        let explicit = WatchCacheConfig {
            upper: Some(5000),
            fresh: DurationNs::from_secs(300),
            ..Default::default()
        };
        assert_eq!(explicit.upper_bound(), 5000);
    }
}
