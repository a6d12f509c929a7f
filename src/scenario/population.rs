//! Who acts in a scenario (SPEC §2): resources and their objects, client populations, workloads,
//! faults, and the explorer's bounds.

use serde::Deserialize;

use super::units::{Bytes, DurationNs};

fn default_object_bytes() -> Bytes {
    Bytes(1024)
}

/// `[[resources]]`: a resource type stored under `/registry/<name>/`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    /// Resource name (`pods`, `leases`, ...).
    pub name: String,
    /// Objects that exist at start.
    #[serde(default)]
    pub count: u64,
    /// Size of one object.
    #[serde(default = "default_object_bytes")]
    pub object_bytes: Bytes,
}

/// Which objects a client watches (k8s-cacher-protocol.md §5 triggers).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum ClientScope {
    /// Every object of the resource.
    Cluster,
    /// Objects bound to the client's own node (kubelet pods by `spec.nodeName`).
    PerNode,
    /// One namespace.
    Namespace,
}

fn default_client_count() -> u64 {
    1
}

fn default_list_rv() -> String {
    "0".to_string()
}

fn default_page_size() -> u64 {
    500
}

fn default_true() -> bool {
    true
}

/// `[[clients]]`: a population of identical reflectors.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Population name; instances are `<name>-<i>`.
    pub name: String,
    /// Number of instances.
    #[serde(default = "default_client_count")]
    pub count: u64,
    /// Resource watched (must be declared in `[[resources]]`).
    pub resource: String,
    /// Watch scope.
    #[serde(default = "default_scope")]
    pub scope: ClientScope,
    /// RV of the first LIST: "0" (any, from cache) or "" (consistent).
    #[serde(default = "default_list_rv")]
    pub list_rv: String,
    /// Pager page size (client-go default 500).
    #[serde(default = "default_page_size")]
    pub page_size: u64,
    /// `allowWatchBookmarks`.
    #[serde(default = "default_true")]
    pub bookmarks: bool,
    /// Streaming list (client-go's `WatchListClient`). Absent: the profile's default, on from
    /// `apiserver.rules = "1.37"` (client-go 1.35+), off before (resolved when the scenario
    /// loads, [`Scenario::resolve_profile_defaults`]).
    #[serde(default)]
    pub watch_list: Option<bool>,
    /// watchsim's own: how the informer store is kept: "map" (every object) or "digest" (an
    /// order-independent 64-bit digest, O(1) per event, for large populations).
    #[serde(default)]
    pub store: StoreMode,
}

/// How an informer store is kept.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum StoreMode {
    /// An exact map of every object.
    #[default]
    Map,
    /// Count and a wrapping sum of hash(key, resourceVersion).
    Digest,
}

/// How long a disconnected client stays away.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum DurationDistribution {
    /// Exactly `disconnect_duration`.
    #[default]
    Fixed,
    /// Exponential with mean `disconnect_duration`.
    Exponential,
}

fn default_scope() -> ClientScope {
    ClientScope::Cluster
}

/// Kind of write a workload performs.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    /// New objects.
    Create,
    /// Updates of existing objects.
    Update,
    /// Deletes of existing objects.
    Delete,
    /// A mix of create, update and delete that keeps the count steady.
    Churn,
}

/// `[[workload]]`: Poisson writes at `rate` per second.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkloadConfig {
    /// Resource written.
    pub resource: String,
    /// Kind of writes.
    pub kind: WorkloadKind,
    /// Writes per second of virtual time.
    pub rate: f64,
}

/// A fault kind, scheduled or scripted (SPEC §2 `[[faults.at]]`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Kill and restart an apiserver (cold caches).
    RestartApiserver,
    /// Restart a client process (store and last RV lost).
    RestartClient,
    /// Cut an apiserver off from etcd.
    PartitionApiserver,
    /// Stall an apiserver's event processing (its cache lags).
    StallApiserver,
    /// End every partition and stall.
    Heal,
    /// Compact etcd at its current revision now.
    CompactNow,
    /// Break one client's watch connection (the client stays cut off for `for`, default 0, then
    /// resumes or relists): a single disconnect that the explorer may place anywhere.
    DisconnectWatch,
}

/// `[faults]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FaultsConfig {
    /// Watch disconnects per client per hour of virtual time.
    pub watch_disconnect_rate: f64,
    /// How long a disconnected client stays away.
    pub disconnect_duration: DurationNs,
    /// watchsim's own: "fixed" (default) or "exponential" with mean `disconnect_duration`.
    pub disconnect_distribution: DurationDistribution,
    /// Scheduled faults.
    pub at: Vec<FaultAt>,
}

impl Default for FaultsConfig {
    fn default() -> Self {
        Self {
            watch_disconnect_rate: 0.0,
            disconnect_duration: DurationNs::from_secs(5),
            disconnect_distribution: DurationDistribution::Fixed,
            at: Vec::new(),
        }
    }
}

/// One scheduled fault.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultAt {
    /// When.
    pub at: DurationNs,
    /// What.
    pub kind: FaultKind,
    /// Apiserver index (for apiserver faults).
    #[serde(default)]
    pub server: Option<u32>,
    /// Client instance name, e.g. "kubelet-3" (for `restart_client`).
    #[serde(default)]
    pub client: Option<String>,
    /// How long a partition or stall lasts.
    #[serde(default, rename = "for")]
    pub for_: Option<DurationNs>,
}

/// `[bounds]`: limits checked at the end of a run.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BoundsConfig {
    /// Relists per client per hour.
    pub relists_per_client_hour: Option<f64>,
    /// Largest time an informer may lag etcd.
    pub max_staleness: Option<DurationNs>,
    /// LISTs served from etcd per client per hour (watchsim's own): every LIST page an
    /// apiserver answered from etcd (client and scripted LISTs; not the cachers' own
    /// initialisation LISTs), over the run, divided by clients and hours.
    pub etcd_lists_per_client_hour: Option<f64>,
}
