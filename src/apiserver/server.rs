//! One kube-apiserver: its cachers (one per resource, each fed by an etcd watch on the
//! apiserver's own cache stream), LIST / WATCH routing between cache and etcd, freshness waits
//! with progress requests, writes with optimistic concurrency, the etcd compactor, restarts,
//! partitions and stalls. Sources: k8s-cacher-protocol.md §1-§7, §9 (cacher.go, watch_cache.go,
//! etcd3/store.go, etcd3/compact.go, watch_progress.go).

use imbl::{OrdMap, Vector};

use super::api::{
    ApiRequest, ApiResponse, ApiWatchEvent, ContinueToken, ListResult, ReadRate, ResourceId, Rv,
    RvMatch, ServedFrom,
};
use super::cache_shadow::Shadows;
use super::cacher::{Cacher, CacherTimer, Initial};
use super::list_options::{default_watch, validate_list, watch_list_forbidden};
use super::rules::{Rules, should_delegate_list};

mod cache_upkeep;
mod direct_watch;
mod exact_list;
mod get;
use super::status::Status;
use super::watch_cache::{CacheEvent, EventType, Obj, WatchCache, scan_scope};
use crate::etcd::{
    Compare, CompareOp, CompareTarget, EtcdError, EventKind, Key, KeyRange, KeyValue, KvRequest,
    KvResponse, RangeResult, Txn, TxnOp, TxnOpResult, WatchRequest, WatchResponse,
    WatchResponseKind,
};
use crate::kernel::{Nanos, RngStream};
use crate::scenario::{Scenario, WatchCacheMode};
use crate::world::network::{Actor, ConnId, Dir};
use crate::world::{Ctx, Msg, Timer};
use exact_list::{ExactList, exact_list};

/// `blockTimeout`: how long a read waits for the cache to become fresh.
pub const BLOCK_TIMEOUT_NS: Nanos = 3_000_000_000;
/// `progressRequestPeriod`.
pub const PROGRESS_REQUEST_PERIOD_NS: Nanos = 100_000_000;
/// `wait.Until(..., time.Second)`: delay before a failed cacher lists again.
pub const CACHER_RESTART_DELAY_NS: Nanos = 1_000_000_000;
/// The etcd key of the compactor's compare-and-swap (`etcd3/compact.go compactRevKey`).
pub const COMPACT_REV_KEY: &str = "compact_rev_key";
/// A LIST served from etcd costs about 5x the response in temporary memory (KEP-3157,
/// scale-facts.md §3.10).
pub const ETCD_LIST_MEMORY_FACTOR: u64 = 5;
/// Server default watch timeout when the client sets none: `--min-request-timeout` 1800 s times
/// (1 + rand) (`endpoints/handlers/get.go`).
pub const MIN_REQUEST_TIMEOUT_NS: Nanos = 1_800_000_000_000;

/// Cacher watch ids are `generation * WATCH_ID_STRIDE + resource`.
const WATCH_ID_STRIDE: i64 = 1 << 20;

/// Timers an apiserver arms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiTimer {
    /// A failed (or new) cacher lists again.
    CacherRestart(ResourceId),
    /// A read's 3 s freshness wait ends.
    ReadDeadline(u64),
    /// The progress requester's 100 ms tick.
    ProgressRequest,
    /// The compactor's tick.
    Compact,
    /// A LIST response finished encoding and leaves.
    ListSent(u64),
    /// A partition or stall ends.
    Heal,
    /// The restarted process is up again and starts its caches.
    Start,
    /// A direct watch (watch cache off) reached its `timeoutSeconds`: the handler ends it.
    DirectWatchDeadline(ConnId),
    /// A cache consistency check of a resource is due (1.34+).
    ConsistencyCheck(ResourceId),
    /// The cacher's snapshot compactor polls the known compaction revision (1.34+).
    SnapshotCompactor,
}

/// Why the apiserver sent an etcd request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum EtcdPurpose {
    CacherList(ResourceId),
    Probe(u64),
    ClientList(ClientList),
    Write {
        conn: ConnId,
        req_id: u64,
        resource: ResourceId,
        key: Key,
        op: WriteOp,
    },
    CompactTxn,
    Compact,
    DirectWatchInit(ConnId),
    ConsistencyPage(Box<cache_upkeep::ConsistencyCheck>),
    Get {
        conn: ConnId,
        req_id: u64,
        resource: ResourceId,
        key: Key,
        min_rv: i64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum WriteOp {
    Create,
    Update { precondition: bool },
    Delete { precondition: bool },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientList {
    conn: ConnId,
    req_id: u64,
    scope: KeyRange,
    limit: u64,
    /// NotOlderThan check on the result.
    min_rv: Option<i64>,
    /// The revision read at (Exact, legacy exact, continuation, and every page after the first).
    at_rv: Option<i64>,
    paging: bool,
    /// A selector LIST with a limit reads pages until `limit` objects match: the objects that
    /// matched on the pages read so far, and the size of the page in flight.
    matched: OrdMap<Key, Obj>,
    page_limit: u64,
}

/// The largest page `GetList` grows to while a selector drops objects (`etcd3/store.go`
/// `maxLimit`).
const GET_LIST_MAX_PAGE: u64 = 10_000;

/// A read waiting for the cache to reach `target_rv`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Wait {
    resource: ResourceId,
    /// 0 while the current etcd revision is being probed.
    target_rv: i64,
    kind: WaitKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum WaitKind {
    /// A GET at RV=N waiting for the cache to reach N (`WaitUntilFreshAndGet`).
    Get { conn: ConnId, req_id: u64, key: Key },
    List {
        conn: ConnId,
        req_id: u64,
        scope: KeyRange,
        limit: u64,
        requested: Rv,
        fallback: bool,
        /// A LIST at an exact RV from the cache's snapshots (1.34+), waiting for the cache to
        /// reach that RV.
        exact: Option<Box<ExactList>>,
    },
    Watch {
        conn: ConnId,
        scope: KeyRange,
        bookmarks: bool,
        deadline_ns: Nanos,
        read_rate: ReadRate,
        /// A watch with RV unset and `sendInitialEvents=false`: it starts at the probed etcd
        /// revision at once (`initial` is replaced by `Since(that revision)`), without waiting
        /// for the cache.
        at_probed_rv: bool,
        initial: Initial,
    },
}

/// A request parked until the cache is ready (1.27 rules).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Parked {
    conn: ConnId,
    req_id: u64,
    req: ApiRequest,
}

/// A LIST response being encoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Sending {
    conn: ConnId,
    req_id: u64,
    result: ListResult,
    memory_bytes: u64,
}

/// Report counters of one apiserver.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ApiserverCounters {
    /// Restarts.
    pub restarts: u64,
    /// LISTs served from a watch cache.
    pub lists_from_cache: u64,
    /// LISTs served from etcd.
    pub lists_from_etcd: u64,
    /// Bytes of LIST responses.
    pub list_bytes: u64,
    /// Bytes read from etcd (client LISTs, cacher LISTs, probes).
    pub etcd_read_bytes: u64,
    /// 410 errors (LIST and WATCH).
    pub too_old_errors: u64,
    /// 504 too large resource version errors.
    pub too_large_errors: u64,
    /// 429 errors while (re)initialising.
    pub too_many_requests: u64,
    /// LISTs in flight now / at most.
    pub lists_in_flight: u64,
    /// Peak concurrent LISTs.
    pub lists_in_flight_max: u64,
    /// Temporary LIST memory now / at most.
    pub list_memory_bytes: u64,
    /// Peak temporary LIST memory.
    pub list_memory_bytes_max: u64,
    /// Cacher (re)initialisations.
    pub cache_initializations: u64,
    /// Consistent reads that fell back to etcd.
    pub consistent_read_fallbacks: u64,
    /// Progress requests sent to etcd.
    pub progress_requests: u64,
    /// Compactions requested.
    pub compactions: u64,
    /// etcd pages read by the cache consistency checker (1.34+).
    pub consistency_check_pages: u64,
}

/// One kube-apiserver.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Apiserver {
    /// Index (apiserver-N).
    pub index: u32,
    rules: Rules,
    consistent_list_from_cache: bool,
    watch_list: bool,
    compaction_interval_ns: Nanos,
    bookmark_interval_ns: Nanos,
    list_bytes_per_second: u64,
    etcd_kv: Option<ConnId>,
    etcd_watch: Option<ConnId>,
    next_etcd_req: u64,
    pending_etcd: OrdMap<u64, EtcdPurpose>,
    cachers: Vector<Option<crate::kernel::cow::CowBox<Cacher>>>,
    resource_names: Vector<String>,
    waits: OrdMap<u64, Wait>,
    next_wait: u64,
    progress_armed: bool,
    /// When the progress requester's timer fires next (`watch_progress.go Run`): a request is
    /// sent at this time or, if the timer already fired while nobody waited, at once.
    progress_timer_ns: Nanos,
    /// When each resource's next consistency check is due (0: none; 1.34+).
    consistency_due: Vector<Nanos>,
    /// When the snapshot compactor polls next (1.34+).
    snapshot_compactor_due: Nanos,
    /// The compaction revision this apiserver's etcd3 compactor knows (`compactor.CompactRevision`):
    /// the revisions it compacted itself.
    known_compact_rev: i64,
    compactor_t: i64,
    compactor_rev: i64,
    /// Client watch connections: conn -> resource (cache-served).
    client_watches: OrdMap<ConnId, ResourceId>,
    /// Watches served straight from etcd (watch cache off): client conn -> its etcd3 watchChan.
    direct_watches: OrdMap<ConnId, direct_watch::DirectWatch>,
    direct_stream: Option<ConnId>,
    parked: Vector<Parked>,
    sending: OrdMap<u64, Sending>,
    next_send: u64,
    /// The etcd watch id of each cacher's current watch (ids are never reused on a stream).
    cacher_watch_ids: Vector<i64>,
    next_watch_generation: i64,
    partitioned: bool,
    stalled: bool,
    down: bool,
    /// When the process may start again: a restart while already down (killed again before its
    /// start) moves it, and the earlier restart's start timer is then stale.
    down_until_ns: Nanos,
    /// GOAWAY chance in parts per billion (integer so the state stays `Hash + Eq`).
    goaway_ppb: u64,
    held: Vector<WatchResponse>,
    rng: RngStream,
    /// Report counters.
    pub counters: ApiserverCounters,
    retired: super::cacher::CacherCounters,
    /// Cache configurations a sweep follows along this run (`cache_shadow.rs`); empty
    /// otherwise. Not part of the state's identity (never set in explored states).
    shadow_configs: crate::world::Unhashed<Vec<crate::scenario::WatchCacheConfig>>,
    /// Per followed configuration: the capacity and memory maxima of earlier incarnations'
    /// caches, or `None` once it was dropped.
    retired_shadows: Vec<Option<(u64, u64)>>,
}

fn name_of(key: &Key) -> &str {
    key.as_str().rsplit('/').next().unwrap_or("")
}

/// The etcd prefix of a resource.
pub fn resource_prefix(name: &str) -> Key {
    Key::new(&format!("/registry/{name}/"))
}

/// The objects of an etcd range as the model keeps them.
fn objects_of(range: &RangeResult) -> OrdMap<Key, Obj> {
    range
        .kvs
        .iter()
        .map(|kv| {
            (
                kv.key.clone(),
                Obj {
                    rv: kv.mod_revision,
                    bytes: kv.value_bytes,
                },
            )
        })
        .collect()
}

/// ADDED for a put that created the key (`create_revision == mod_revision`, etcd3 watcher), else
/// MODIFIED; DELETED for a delete.
fn event_type(e: &crate::etcd::Event) -> EventType {
    match e.kind {
        EventKind::Delete => EventType::Deleted,
        EventKind::Put if e.kv.create_revision == e.kv.mod_revision => EventType::Added,
        EventKind::Put => EventType::Modified,
    }
}

/// `delegator.go shouldDelegateListOnNotReadyCache`: a LIST with a limit and no label or field
/// selector goes to etcd while the cache is not ready. A namespace is not a selector (the registry
/// puts it in the key).
fn delegates_on_not_ready_cache(scope: &KeyRange, limit: u64) -> bool {
    selector_directory(scope).is_none() && limit > 0
}

/// The directory an etcd LIST of `scope` reads when `scope` is narrower than one: etcd3
/// `store.go` `GetList` reads a resource's (or a namespace's) directory, its key ending in `/`, and
/// a field selector such as a kubelet's `spec.nodeName` is matched in the apiserver after the
/// read. A prefix that does not end in `/` can only be such a selector (per-node scopes).
fn selector_directory(scope: &KeyRange) -> Option<Key> {
    let prefix = match scope {
        KeyRange::Prefix(p) | KeyRange::PrefixAfter { prefix: p, .. } => p.as_str(),
        KeyRange::Single(_) => return None,
    };
    if prefix.is_empty() || prefix.ends_with('/') {
        return None;
    }
    prefix.rfind('/').map(|i| Key::new(&prefix[..=i]))
}

/// The key range etcd reads or watches for `scope`: its directory for a selector scope, else the
/// scope itself.
fn storage_range(scope: &KeyRange) -> KeyRange {
    selector_directory(scope)
        .map(KeyRange::Prefix)
        .unwrap_or_else(|| scope.clone())
}

fn list_bytes(items: &OrdMap<Key, Obj>) -> u64 {
    items.values().map(|o| o.bytes).sum()
}

impl Apiserver {
    /// Apiserver `index` of `scenario`; its cachers start listing at once.
    pub fn new(index: u32, scenario: &Scenario, seed: u64, ctx: &mut Ctx<'_>) -> Self {
        let a = &scenario.apiserver;
        let mut s = Apiserver {
            index,
            rules: a.rules,
            consistent_list_from_cache: a.consistent_list_from_cache && !a.rules.is_1_27(),
            watch_list: a.watch_list.unwrap_or(false),
            compaction_interval_ns: a.compaction_interval.as_ns(),
            bookmark_interval_ns: a.bookmark_interval.as_ns(),
            list_bytes_per_second: a.list_serve_bytes_per_second.0.max(1),
            etcd_kv: None,
            etcd_watch: None,
            next_etcd_req: 0,
            pending_etcd: OrdMap::new(),
            cachers: Vector::new(),
            resource_names: scenario.resources.iter().map(|r| r.name.clone()).collect(),
            waits: OrdMap::new(),
            next_wait: 0,
            progress_armed: false,
            progress_timer_ns: 0,
            consistency_due: Vector::new(),
            snapshot_compactor_due: 0,
            known_compact_rev: 0,
            compactor_t: 0,
            compactor_rev: 0,
            client_watches: OrdMap::new(),
            direct_watches: OrdMap::new(),
            direct_stream: None,
            parked: Vector::new(),
            sending: OrdMap::new(),
            next_send: 0,
            cacher_watch_ids: scenario.resources.iter().map(|_| -1).collect(),
            next_watch_generation: 0,
            partitioned: false,
            stalled: false,
            down: false,
            down_until_ns: 0,
            goaway_ppb: (scenario.load_balancer.goaway_chance.clamp(0.0, 1.0) * 1e9) as u64,
            held: Vector::new(),
            rng: RngStream::new(seed, &format!("apiserver.{index}")),
            counters: ApiserverCounters::default(),
            retired: Default::default(),
            shadow_configs: Default::default(),
            retired_shadows: Vec::new(),
        };
        s.start(scenario, ctx);
        if s.compaction_interval_ns > 0 {
            ctx.timer(
                ctx.now + s.compaction_interval_ns,
                Timer::Apiserver(index, ApiTimer::Compact),
            );
        }
        s
    }

    fn start(&mut self, scenario: &Scenario, ctx: &mut Ctx<'_>) {
        let cache_on = scenario.apiserver.watch_cache.mode != WatchCacheMode::Off;
        // The progress requester starts with the cacher, its timer 100 ms ahead.
        self.progress_timer_ns = ctx.now + PROGRESS_REQUEST_PERIOD_NS;
        self.cachers = scenario
            .resources
            .iter()
            .enumerate()
            .map(|(i, r)| {
                cache_on.then(|| {
                    let mut cache = WatchCache::new(&scenario.apiserver.watch_cache);
                    if self.rules.list_from_cache_snapshots() {
                        cache.enable_snapshots();
                    }
                    let mut c = Cacher::new(
                        self.index,
                        i as ResourceId,
                        resource_prefix(&r.name),
                        cache,
                        ctx.now,
                        self.bookmark_interval_ns,
                    );
                    c.floor_at_snapshot_rv = !matches!(self.rules, Rules::V1_27 | Rules::V1_31);
                    c.shadows = Shadows::new(&self.shadow_configs, |m| {
                        self.retired_shadows.get(m).is_some_and(Option::is_none)
                    });
                    crate::kernel::cow::CowBox::new(c)
                })
            })
            .collect();
        for r in 0..self.cachers.len() {
            if self.cachers[r].is_some() {
                self.cacher_list(r as ResourceId, ctx);
            }
        }
        self.start_cache_upkeep(ctx);
    }

    /// The resource whose current cacher watch has this etcd watch id.
    fn current_cacher(&self, watch_id: i64) -> Option<ResourceId> {
        let r = watch_id.rem_euclid(WATCH_ID_STRIDE) as usize;
        (self.cacher_watch_ids.get(r) == Some(&watch_id)).then_some(r as ResourceId)
    }

    /// The cacher of `resource`, if the watch cache is on.
    pub fn cacher(&self, resource: ResourceId) -> Option<&Cacher> {
        self.cachers
            .get(resource as usize)
            .and_then(|c| c.as_ref())
            .map(|c| &**c)
    }

    /// Every cacher.
    pub fn cachers(&self) -> impl Iterator<Item = &Cacher> {
        self.cachers.iter().flatten().map(|c| &**c)
    }

    /// Cacher counters over the whole run: the current cachers and those of earlier
    /// incarnations (before restarts).
    pub fn cacher_totals(&self) -> super::cacher::CacherCounters {
        let mut t = self.retired.clone();
        for c in self.cachers.iter().flatten() {
            t.absorb(&c.totals());
        }
        t
    }

    /// Follows `configs` along this run (a sweep's other grid points, `cache_shadow.rs`): every
    /// cacher gets a shadow window per configuration. Called before the first step.
    pub fn follow_cache_configs(&mut self, configs: &[crate::scenario::WatchCacheConfig]) {
        self.shadow_configs = crate::world::Unhashed(configs.to_vec());
        self.retired_shadows = vec![Some((0, 0)); configs.len()];
        for c in self.cachers.iter_mut().flatten() {
            c.shadows = Shadows::new(configs, |_| false);
        }
    }

    /// The cache figures the followed configuration `m` would report
    /// (`cache_capacity_max`, `cache_bytes_max`, computed as for this apiserver's own cache),
    /// or `None` if its decisions differed somewhere in the run.
    pub fn followed_cache_figures(&self, m: usize) -> Option<(u64, u64)> {
        let (mut capacity_max, mut bytes_max) = (*self.retired_shadows.get(m)?)?;
        let mut bytes_now = 0;
        for c in self.cachers.iter().flatten() {
            let w = c.shadows.get(m)?;
            capacity_max = capacity_max.max(w.capacity_max());
            bytes_max = bytes_max.max(w.bytes_max());
            bytes_now += w.bytes_max();
        }
        Some((capacity_max, bytes_now.max(bytes_max)))
    }

    // ---------------------------------------------------------------- etcd plumbing

    fn send_etcd(&mut self, req: KvRequest, purpose: EtcdPurpose, ctx: &mut Ctx<'_>) -> bool {
        if self.partitioned {
            return false;
        }
        let conn = *self
            .etcd_kv
            .get_or_insert_with(|| ctx.connect(Actor::Apiserver(self.index), Actor::Etcd));
        let req_id = self.next_etcd_req;
        self.next_etcd_req += 1;
        self.pending_etcd.insert(req_id, purpose);
        ctx.send(conn, Dir::ToServer, Msg::Kv { req_id, req });
        true
    }

    fn send_etcd_watch(&mut self, req: WatchRequest, ctx: &mut Ctx<'_>) {
        if self.partitioned {
            return;
        }
        let conn = *self
            .etcd_watch
            .get_or_insert_with(|| ctx.open_watch_stream(Actor::Apiserver(self.index)));
        ctx.send(conn, Dir::ToServer, Msg::Watch(req));
    }

    fn cacher_list(&mut self, r: ResourceId, ctx: &mut Ctx<'_>) {
        let prefix = resource_prefix(&self.resource_names[r as usize]);
        let req = KvRequest::Range {
            range: KeyRange::Prefix(prefix),
            revision: 0,
            limit: 0,
        };
        if !self.send_etcd(req, EtcdPurpose::CacherList(r), ctx) {
            // etcd unreachable: the reflector's ListAndWatch fails; wait.Until retries in 1 s.
            self.arm_cacher_restart(r, ctx);
        }
    }

    fn arm_cacher_restart(&mut self, r: ResourceId, ctx: &mut Ctx<'_>) {
        if let Some(Some(c)) = self.cachers.get_mut(r as usize)
            && !c.restart_armed
        {
            c.restart_armed = true;
            ctx.timer(
                ctx.now + CACHER_RESTART_DELAY_NS,
                Timer::Apiserver(self.index, ApiTimer::CacherRestart(r)),
            );
        }
    }

    /// The cacher's etcd watch failed (compacted, stream lost): not ready; re-list in 1 s.
    fn cacher_failed(&mut self, r: ResourceId, ctx: &mut Ctx<'_>) {
        if let Some(Some(c)) = self.cachers.get_mut(r as usize) {
            c.set_not_ready(ctx.now);
        }
        self.arm_cacher_restart(r, ctx);
    }

    /// Handles an etcd KV answer.
    pub fn on_etcd_reply(
        &mut self,
        conn: ConnId,
        req_id: u64,
        resp: Result<KvResponse, EtcdError>,
        ctx: &mut Ctx<'_>,
    ) {
        if Some(conn) != self.etcd_kv {
            return; // an answer to a previous incarnation
        }
        let Some(purpose) = self.pending_etcd.remove(&req_id) else {
            return;
        };
        match purpose {
            EtcdPurpose::CacherList(r) => match resp {
                Ok(KvResponse::Range(range)) => self.cacher_listed(r, range, ctx),
                _ => self.arm_cacher_restart(r, ctx),
            },
            EtcdPurpose::Probe(wait_id) => match resp {
                Ok(KvResponse::Range(range)) => {
                    self.counters.etcd_read_bytes +=
                        range.kvs.iter().map(|kv| kv.value_bytes).sum::<u64>();
                    if let Some(w) = self.waits.get_mut(&wait_id) {
                        w.target_rv = range.revision;
                    }
                    let starts_now = self.waits.get(&wait_id).is_some_and(|w| {
                        matches!(
                            w.kind,
                            WaitKind::Watch {
                                at_probed_rv: true,
                                ..
                            }
                        )
                    });
                    if starts_now && let Some(w) = self.waits.remove(&wait_id) {
                        return self.serve_wait(w, ctx);
                    }
                    ctx.timer(
                        ctx.now + BLOCK_TIMEOUT_NS,
                        Timer::Apiserver(self.index, ApiTimer::ReadDeadline(wait_id)),
                    );
                    self.arm_progress(ctx);
                    let r = self.waits.get(&wait_id).map(|w| w.resource);
                    if let Some(r) = r {
                        self.check_waits(r, ctx);
                    }
                }
                Ok(_) | Err(_) => {
                    if let Some(w) = self.waits.remove(&wait_id) {
                        self.fail_wait(w, Status::internal("etcd probe failed".into()), ctx);
                    }
                }
            },
            EtcdPurpose::ClientList(cl) => self.client_list_answered(cl, resp, ctx),
            EtcdPurpose::Write {
                conn,
                req_id,
                resource,
                key,
                op,
            } => {
                let resource_name = self.resource_names[resource as usize].clone();
                let name = name_of(&key).to_string();
                let reply = match resp {
                    Ok(KvResponse::Txn(t)) if t.succeeded => {
                        ApiResponse::Written { rv: t.revision }
                    }
                    Ok(KvResponse::Txn(t)) => {
                        let exists = t
                            .responses
                            .iter()
                            .any(|r| matches!(r, TxnOpResult::Range(rr) if rr.count > 0));
                        ApiResponse::Error(match op {
                            WriteOp::Create => Status::already_exists(&resource_name, &name),
                            WriteOp::Update { precondition } | WriteOp::Delete { precondition } => {
                                if exists && precondition {
                                    Status::conflict(&resource_name, &name)
                                } else {
                                    Status::not_found(&resource_name, &name)
                                }
                            }
                        })
                    }
                    Err(EtcdError::RequestTooLarge) => ApiResponse::Error(
                        Status::too_large_request(EtcdError::RequestTooLarge.to_string()),
                    ),
                    Err(e) => ApiResponse::Error(Status::internal(e.to_string())),
                    Ok(_) => ApiResponse::Error(Status::internal("unexpected etcd answer".into())),
                };
                ctx.send(
                    conn,
                    Dir::ToClient,
                    Msg::ApiReply {
                        req_id,
                        resp: reply,
                    },
                );
            }
            EtcdPurpose::CompactTxn => {
                if let Ok(KvResponse::Txn(t)) = resp {
                    let cur_rev = t.revision;
                    if !t.succeeded {
                        // Another apiserver compacted: adopt its logical time (etcd3/compact.go).
                        if let Some(TxnOpResult::Range(rr)) = t.responses.first() {
                            self.compactor_t = rr.kvs.first().map(|kv| kv.version).unwrap_or(0);
                        }
                    } else {
                        self.compactor_t += 1;
                        if self.compactor_rev != 0 {
                            let revision = self.compactor_rev;
                            self.counters.compactions += 1;
                            self.known_compact_rev = self.known_compact_rev.max(revision);
                            self.send_etcd(
                                KvRequest::Compact { revision },
                                EtcdPurpose::Compact,
                                ctx,
                            );
                        }
                    }
                    self.compactor_rev = cur_rev;
                }
            }
            EtcdPurpose::Compact => {}
            EtcdPurpose::ConsistencyPage(check) => self.consistency_page_read(*check, resp, ctx),
            EtcdPurpose::Get {
                conn,
                req_id,
                resource,
                key,
                min_rv,
            } => self.got_from_etcd(conn, req_id, resource, key, min_rv, resp, ctx),
            EtcdPurpose::DirectWatchInit(conn) => match resp {
                Ok(KvResponse::Range(range)) => self.direct_watch_listed(conn, range, ctx),
                _ => {
                    if self.direct_watches.remove(&conn).is_some() {
                        Cacher::refuse(ctx, conn, Status::internal("etcd read failed".into()));
                    }
                }
            },
        }
    }

    fn cacher_listed(&mut self, r: ResourceId, range: RangeResult, ctx: &mut Ctx<'_>) {
        let rv = range.revision;
        let objects = objects_of(&range);
        self.counters.etcd_read_bytes += range.kvs.iter().map(|kv| kv.value_bytes).sum::<u64>();
        self.counters.cache_initializations += 1;
        let prefix = match self.cachers.get_mut(r as usize) {
            Some(Some(c)) => {
                c.replace(objects, rv, ctx.now);
                c.prefix.clone()
            }
            _ => return,
        };
        // The cacher's watch: its own stream (SeparateCacheWatchRPC), always with progress notify;
        // a fresh watch id each time (clientv3 never reuses one on a stream).
        self.next_watch_generation += 1;
        let watch_id = self.next_watch_generation * WATCH_ID_STRIDE + r as i64;
        if let Some(slot) = self.cacher_watch_ids.get_mut(r as usize) {
            *slot = watch_id;
        }
        // Mutant `no_progress_notify_after_restart` (KEP-1904): a restarted apiserver's cacher
        // watches go without progress notify.
        let progress_notify =
            !(ctx.mutants.no_progress_notify_after_restart && self.counters.restarts > 0);
        self.send_etcd_watch(
            WatchRequest::Create {
                watch_id,
                range: KeyRange::Prefix(prefix),
                start_revision: rv + 1,
                progress_notify,
            },
            ctx,
        );
        self.unpark(r, ctx);
        self.check_waits(r, ctx);
    }

    /// Handles a response on the apiserver's etcd watch streams.
    pub fn on_etcd_watch(
        &mut self,
        conn: ConnId,
        resp: WatchResponse,
        scenario: &Scenario,
        ctx: &mut Ctx<'_>,
    ) {
        if Some(conn) == self.direct_stream {
            self.on_direct_watch(resp, ctx);
            return;
        }
        if Some(conn) != self.etcd_watch {
            return;
        }
        if self.stalled {
            self.held.push_back(resp);
            return;
        }
        self.apply_etcd_watch(resp, scenario, ctx);
    }

    fn apply_etcd_watch(&mut self, resp: WatchResponse, _scenario: &Scenario, ctx: &mut Ctx<'_>) {
        match resp.kind {
            WatchResponseKind::Created => {}
            WatchResponseKind::Events(evs) => {
                let Some(r) = self.current_cacher(resp.watch_id) else {
                    return;
                };
                let Some(Some(c)) = self.cachers.get_mut(r as usize) else {
                    return;
                };
                if !c.ready {
                    return;
                }
                let mut closed = Vec::new();
                for e in evs {
                    let kind = event_type(&e);
                    let prev = c.cache.store().get(&e.kv.key).copied();
                    let bytes = match kind {
                        EventType::Deleted => prev.map(|o| o.bytes).unwrap_or(0),
                        _ => e.kv.value_bytes,
                    };
                    let ev = CacheEvent {
                        kind,
                        key: e.kv.key.clone(),
                        rv: e.kv.mod_revision,
                        bytes,
                        prev_rv: prev.map(|o| o.rv).unwrap_or(0),
                        time_ns: ctx.now,
                    };
                    closed.extend(c.process_event(ctx.now, ev, ctx));
                }
                for conn in closed {
                    self.client_watches.remove(&conn);
                }
                self.check_waits(r, ctx);
            }
            WatchResponseKind::Progress => {
                let targets: Vec<usize> = if resp.watch_id < 0 {
                    (0..self.cachers.len()).collect()
                } else {
                    self.current_cacher(resp.watch_id)
                        .map(|r| r as usize)
                        .into_iter()
                        .collect()
                };
                for r in targets {
                    if let Some(Some(c)) = self.cachers.get_mut(r)
                        && c.ready
                    {
                        c.storage_bookmark(resp.header_revision);
                    }
                    self.check_waits(r as ResourceId, ctx);
                }
            }
            WatchResponseKind::Canceled { .. } => {
                // etcd3 interpretWatchError: 410 "The resourceVersion for the provided watch is too
                // old."; the cacher's reflector returns and the cacher re-initialises.
                // The watch id stays registered at etcd until cancelled: release it.
                self.send_etcd_watch(
                    WatchRequest::Cancel {
                        watch_id: resp.watch_id,
                    },
                    ctx,
                );
                if let Some(r) = self.current_cacher(resp.watch_id) {
                    self.cacher_failed(r, ctx);
                }
            }
        }
    }

    // ---------------------------------------------------------------- client requests

    /// Handles a client request arriving on `conn`.
    pub fn on_request(&mut self, conn: ConnId, req_id: u64, req: ApiRequest, ctx: &mut Ctx<'_>) {
        // HTTP/2 GOAWAY with the scenario's chance: the request is served, the connection takes
        // no new ones (the client reconnects through the load balancer).
        if !matches!(req, ApiRequest::Watch { .. })
            && self.goaway_ppb > 0
            && self.rng.below(1_000_000_000) < self.goaway_ppb
        {
            ctx.send(conn, Dir::ToClient, Msg::Goaway);
        }
        match req {
            ApiRequest::List { .. } => self.on_list(conn, req_id, req, ctx),
            ApiRequest::Get { resource, key, rv } => {
                self.on_get(conn, req_id, resource, key, rv, ctx)
            }
            ApiRequest::Watch { .. } => self.on_watch(conn, req_id, req, ctx),
            ApiRequest::Create {
                resource,
                key,
                bytes,
            } => {
                let txn = Txn {
                    compares: vec![Compare {
                        key: key.clone(),
                        target: CompareTarget::Mod,
                        op: CompareOp::Equal,
                        value: 0,
                    }],
                    success: vec![TxnOp::Put {
                        key: key.clone(),
                        value_bytes: bytes,
                    }],
                    failure: vec![TxnOp::Range(KeyRange::Single(key.clone()))],
                };
                self.write(conn, req_id, resource, key, WriteOp::Create, txn, ctx);
            }
            ApiRequest::Update {
                resource,
                key,
                bytes,
                precondition_rv,
            } => {
                let txn = Txn {
                    compares: vec![guard(&key, precondition_rv)],
                    success: vec![TxnOp::Put {
                        key: key.clone(),
                        value_bytes: bytes,
                    }],
                    failure: vec![TxnOp::Range(KeyRange::Single(key.clone()))],
                };
                let op = WriteOp::Update {
                    precondition: precondition_rv.is_some(),
                };
                self.write(conn, req_id, resource, key, op, txn, ctx);
            }
            ApiRequest::Delete {
                resource,
                key,
                precondition_rv,
            } => {
                let txn = Txn {
                    compares: vec![guard(&key, precondition_rv)],
                    success: vec![TxnOp::Delete(KeyRange::Single(key.clone()))],
                    failure: vec![TxnOp::Range(KeyRange::Single(key.clone()))],
                };
                let op = WriteOp::Delete {
                    precondition: precondition_rv.is_some(),
                };
                self.write(conn, req_id, resource, key, op, txn, ctx);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        conn: ConnId,
        req_id: u64,
        resource: ResourceId,
        key: Key,
        op: WriteOp,
        txn: Txn,
        ctx: &mut Ctx<'_>,
    ) {
        let purpose = EtcdPurpose::Write {
            conn,
            req_id,
            resource,
            key,
            op,
        };
        if !self.send_etcd(KvRequest::Txn(txn), purpose, ctx) {
            let resp = ApiResponse::Error(Status::internal("etcdserver: request timed out".into()));
            ctx.send(conn, Dir::ToClient, Msg::ApiReply { req_id, resp });
        }
    }

    fn reply(&mut self, conn: ConnId, req_id: u64, resp: ApiResponse, ctx: &mut Ctx<'_>) {
        if let ApiResponse::Error(s) = &resp {
            match s.code {
                410 => self.counters.too_old_errors += 1,
                504 => self.counters.too_large_errors += 1,
                429 => self.counters.too_many_requests += 1,
                _ => {}
            }
        }
        ctx.send(conn, Dir::ToClient, Msg::ApiReply { req_id, resp });
    }

    fn list_started(&mut self) {
        self.counters.lists_in_flight += 1;
        self.counters.lists_in_flight_max = self
            .counters
            .lists_in_flight_max
            .max(self.counters.lists_in_flight);
    }

    fn list_failed(&mut self, conn: ConnId, req_id: u64, status: Status, ctx: &mut Ctx<'_>) {
        self.counters.lists_in_flight = self.counters.lists_in_flight.saturating_sub(1);
        self.reply(conn, req_id, ApiResponse::Error(status), ctx);
    }

    /// A LIST result leaves after encoding (`bytes / list_serve_bytes_per_second`), holding its
    /// temporary memory until then.
    fn list_done(&mut self, conn: ConnId, req_id: u64, result: ListResult, ctx: &mut Ctx<'_>) {
        self.counters.list_bytes += result.bytes;
        let memory_bytes = match result.served_from {
            ServedFrom::Cache => {
                self.counters.lists_from_cache += 1;
                result.bytes
            }
            ServedFrom::Etcd => {
                self.counters.lists_from_etcd += 1;
                result.bytes * ETCD_LIST_MEMORY_FACTOR
            }
        };
        self.counters.list_memory_bytes += memory_bytes;
        self.counters.list_memory_bytes_max = self
            .counters
            .list_memory_bytes_max
            .max(self.counters.list_memory_bytes);
        let delay =
            (result.bytes as u128 * 1_000_000_000 / self.list_bytes_per_second as u128) as Nanos;
        let id = self.next_send;
        self.next_send += 1;
        self.sending.insert(
            id,
            Sending {
                conn,
                req_id,
                result,
                memory_bytes,
            },
        );
        ctx.timer(
            ctx.now + delay,
            Timer::Apiserver(self.index, ApiTimer::ListSent(id)),
        );
    }

    fn list_sent(&mut self, id: u64, ctx: &mut Ctx<'_>) {
        if let Some(s) = self.sending.remove(&id) {
            self.counters.list_memory_bytes -= s.memory_bytes;
            self.counters.lists_in_flight = self.counters.lists_in_flight.saturating_sub(1);
            ctx.send(
                s.conn,
                Dir::ToClient,
                Msg::ApiReply {
                    req_id: s.req_id,
                    resp: ApiResponse::List(s.result),
                },
            );
        }
    }

    fn on_list(&mut self, conn: ConnId, req_id: u64, req: ApiRequest, ctx: &mut Ctx<'_>) {
        let ApiRequest::List {
            resource,
            scope,
            rv,
            rv_match,
            limit,
            continue_token,
        } = req.clone()
        else {
            return;
        };
        self.list_started();
        if let Err(status) = validate_list(rv, rv_match, continue_token.is_some()) {
            return self.list_failed(conn, req_id, status, ctx);
        }
        if continue_token.is_some() && matches!(rv, Rv::At(_)) {
            return self.list_failed(conn, req_id, Status::continue_with_rv(), ctx);
        }
        if self.rules.list_from_cache_snapshots()
            && let Some(exact) = exact_list(rv, rv_match, limit, continue_token.as_ref())
        {
            return self.on_exact_list(conn, req_id, resource, scope, limit, exact, ctx);
        }
        let delegate = should_delegate_list(
            self.rules,
            self.consistent_list_from_cache,
            rv,
            rv_match,
            limit,
            continue_token.as_ref(),
        );
        // Route: etcd (no cache, delegated, or a not-ready cache's fallbacks), a refusal or
        // parking while the cache is not ready, or the cache.
        let ready = self.cacher(resource).map(|c| c.ready);
        let to_etcd = match ready {
            None => true,
            Some(_) if delegate => true,
            Some(true) => false,
            Some(false) => match self.rules {
                Rules::V1_31 | Rules::V1_34 | Rules::V1_37 => {
                    if !delegates_on_not_ready_cache(&scope, limit) {
                        return self.list_failed(
                            conn,
                            req_id,
                            self.not_ready_status(resource, ctx.now),
                            ctx,
                        );
                    }
                    true
                }
                Rules::V1_27 => {
                    if rv != Rv::Zero {
                        self.counters.lists_in_flight -= 1;
                        self.parked.push_back(Parked { conn, req_id, req });
                        return;
                    }
                    true
                }
            },
        };
        if to_etcd {
            return self.list_from_etcd(
                conn,
                req_id,
                scope,
                rv,
                rv_match,
                limit,
                continue_token,
                ctx,
            );
        }
        let cache_rv = self
            .cacher(resource)
            .map(|c| c.cache.resource_version())
            .unwrap_or(0);
        match rv {
            Rv::Zero => self.serve_list_from_cache(conn, req_id, resource, &scope, 0, ctx),
            Rv::At(n) if cache_rv >= n => {
                self.serve_list_from_cache(conn, req_id, resource, &scope, limit, ctx)
            }
            Rv::At(n) => {
                let kind = WaitKind::List {
                    conn,
                    req_id,
                    scope,
                    limit,
                    requested: rv,
                    fallback: false,
                    exact: None,
                };
                self.add_wait(resource, n, kind, ctx);
            }
            Rv::Unset if ctx.mutants.consistent_list_without_wait => {
                // Mutant: served from the cache as it is, without the freshness wait.
                self.serve_list_from_cache(conn, req_id, resource, &scope, limit, ctx)
            }
            Rv::Unset => {
                // Consistent read from cache: probe etcd's current revision, then wait for it.
                let kind = WaitKind::List {
                    conn,
                    req_id,
                    scope,
                    limit,
                    requested: rv,
                    fallback: true,
                    exact: None,
                };
                self.add_probed_wait(resource, kind, ctx);
            }
        }
    }

    fn add_wait(
        &mut self,
        resource: ResourceId,
        target_rv: i64,
        kind: WaitKind,
        ctx: &mut Ctx<'_>,
    ) {
        let id = self.next_wait;
        self.next_wait += 1;
        self.waits.insert(
            id,
            Wait {
                resource,
                target_rv,
                kind,
            },
        );
        ctx.timer(
            ctx.now + BLOCK_TIMEOUT_NS,
            Timer::Apiserver(self.index, ApiTimer::ReadDeadline(id)),
        );
        self.arm_progress(ctx);
    }

    fn add_probed_wait(&mut self, resource: ResourceId, kind: WaitKind, ctx: &mut Ctx<'_>) {
        let id = self.next_wait;
        self.next_wait += 1;
        self.waits.insert(
            id,
            Wait {
                resource,
                target_rv: 0,
                kind,
            },
        );
        // GetCurrentResourceVersion: a quorum LIST of the prefix with limit 1 (1.31-1.36), a Get
        // of the prefix key itself that reads no object (1.37).
        let prefix = resource_prefix(&self.resource_names[resource as usize]);
        let range = if self.rules.probe_reads_no_object() {
            KeyRange::Single(prefix)
        } else {
            KeyRange::Prefix(prefix)
        };
        let req = KvRequest::Range {
            range,
            revision: 0,
            limit: 1,
        };
        if !self.send_etcd(req, EtcdPurpose::Probe(id), ctx) {
            let w = self.waits.remove(&id).expect("just added");
            self.fail_wait(
                w,
                Status::internal("etcdserver: request timed out".into()),
                ctx,
            );
        }
    }

    /// The conditional progress requester (`cacher/progress/watch_progress.go Run`), which runs
    /// only with consistent reads from cache (etcd must support RequestWatchProgress). Its timer
    /// runs while nobody waits: the first waiter after an idle spell gets a request at once, then
    /// one every 100 ms while anyone waits.
    fn arm_progress(&mut self, ctx: &mut Ctx<'_>) {
        if self.consistent_list_from_cache && !self.progress_armed && !self.waits.is_empty() {
            self.progress_armed = true;
            ctx.timer(
                self.progress_timer_ns.max(ctx.now),
                Timer::Apiserver(self.index, ApiTimer::ProgressRequest),
            );
        }
    }

    fn progress_tick(&mut self, ctx: &mut Ctx<'_>) {
        self.progress_armed = false;
        if self.waits.is_empty() {
            // `timer.Reset(0)`: the next waiter's request goes out at once.
            self.progress_timer_ns = ctx.now;
            return;
        }
        self.counters.progress_requests += 1;
        self.progress_timer_ns = ctx.now + PROGRESS_REQUEST_PERIOD_NS;
        self.send_etcd_watch(WatchRequest::Progress, ctx);
        self.arm_progress(ctx);
    }

    /// Serves every wait on `resource` that the cache now satisfies.
    fn check_waits(&mut self, resource: ResourceId, ctx: &mut Ctx<'_>) {
        let Some(c) = self.cacher(resource) else {
            return;
        };
        if !c.ready {
            return;
        }
        let rv = c.cache.resource_version();
        let due: Vec<u64> = self
            .waits
            .iter()
            .filter(|(_, w)| w.resource == resource && w.target_rv > 0 && w.target_rv <= rv)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(w) = self.waits.remove(&id) {
                self.serve_wait(w, ctx);
            }
        }
    }

    fn serve_wait(&mut self, w: Wait, ctx: &mut Ctx<'_>) {
        match w.kind {
            WaitKind::Get { conn, req_id, key } => {
                self.get_from_cache(conn, req_id, w.resource, &key, ctx)
            }
            WaitKind::List {
                conn,
                req_id,
                scope,
                limit,
                requested,
                exact,
                ..
            } => match exact {
                Some(exact) => {
                    self.serve_exact_list(conn, req_id, w.resource, scope, limit, *exact, ctx)
                }
                None => {
                    let limit = if requested == Rv::Zero { 0 } else { limit };
                    self.serve_list_from_cache(conn, req_id, w.resource, &scope, limit, ctx);
                }
            },
            WaitKind::Watch {
                conn,
                scope,
                bookmarks,
                deadline_ns,
                read_rate,
                at_probed_rv,
                initial,
            } => {
                let initial = if at_probed_rv {
                    Initial::Since(w.target_rv)
                } else {
                    initial
                };
                self.register_watch(
                    conn,
                    w.resource,
                    scope,
                    bookmarks,
                    deadline_ns,
                    read_rate,
                    initial,
                    ctx,
                );
            }
        }
    }

    fn fail_wait(&mut self, w: Wait, status: Status, ctx: &mut Ctx<'_>) {
        match w.kind {
            WaitKind::List { conn, req_id, .. } => self.list_failed(conn, req_id, status, ctx),
            WaitKind::Get { conn, req_id, .. } => {
                if status.code == 504 {
                    self.counters.too_large_errors += 1;
                }
                self.reply(conn, req_id, ApiResponse::Error(status), ctx);
            }
            WaitKind::Watch { conn, .. } => {
                if status.code == 504 {
                    self.counters.too_large_errors += 1;
                }
                Cacher::refuse(ctx, conn, status);
                self.client_watches.remove(&conn);
            }
        }
    }

    fn read_deadline(&mut self, id: u64, ctx: &mut Ctx<'_>) {
        let Some(w) = self.waits.remove(&id) else {
            return;
        };
        let current = self
            .cacher(w.resource)
            .map(|c| c.cache.resource_version())
            .unwrap_or(0);
        match &w.kind {
            WaitKind::List {
                conn,
                req_id,
                scope,
                limit,
                fallback: true,
                ..
            } => {
                // Consistent read fallback (1.31): the cache did not catch up; ask etcd.
                self.counters.consistent_read_fallbacks += 1;
                let (conn, req_id, scope, limit) = (*conn, *req_id, scope.clone(), *limit);
                self.list_from_etcd(conn, req_id, scope, Rv::Unset, None, limit, None, ctx);
            }
            _ => {
                let target = w.target_rv;
                self.fail_wait(w, Status::too_large(target, current), ctx);
            }
        }
    }

    /// The 429 of a cache that is not ready: Retry-After 1 up to 1.32; from 1.33 it grows with
    /// the time since the cache became not ready (`cacher.go GetList`/`Watch`,
    /// `util.go calculateRetryAfterForUnreadyCache`).
    fn not_ready_status(&self, resource: ResourceId, now: Nanos) -> Status {
        match self.cacher(resource) {
            Some(c) if self.rules.growing_retry_after() => {
                Status::reinitializing_for(now.saturating_sub(c.state_changed_ns))
            }
            _ => Status::reinitializing(),
        }
    }

    fn serve_list_from_cache(
        &mut self,
        conn: ConnId,
        req_id: u64,
        resource: ResourceId,
        scope: &KeyRange,
        limit: u64,
        ctx: &mut Ctx<'_>,
    ) {
        let Some(c) = self.cacher(resource) else {
            return;
        };
        let rv = c.cache.resource_version();
        let limit = if self.rules.is_1_27() { 0 } else { limit };
        let store = c.cache.store();
        let whole = matches!(scope, KeyRange::Prefix(p) if *p == c.prefix);
        let mut items: OrdMap<Key, Obj> = if whole {
            store.clone()
        } else {
            scan_scope(store, scope)
                .map(|(k, o)| (k.clone(), *o))
                .collect()
        };
        let mut continue_token = None;
        if limit > 0 && items.len() as u64 > limit {
            let page: OrdMap<Key, Obj> = items
                .iter()
                .take(limit as usize)
                .map(|(k, o)| (k.clone(), *o))
                .collect();
            let last = page.keys().next_back().cloned().expect("limit > 0");
            continue_token = Some(ContinueToken {
                rv,
                start_after: last,
            });
            items = page;
        }
        // A whole-resource page-less LIST reuses the cache's running size and digest.
        let (bytes, digest) = if whole && continue_token.is_none() {
            (c.cache.store_bytes(), Some(c.cache.store_digest()))
        } else {
            (list_bytes(&items), None)
        };
        self.list_done(
            conn,
            req_id,
            ListResult {
                rv,
                items,
                continue_token,
                served_from: ServedFrom::Cache,
                bytes,
                digest,
            },
            ctx,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn list_from_etcd(
        &mut self,
        conn: ConnId,
        req_id: u64,
        scope: KeyRange,
        rv: Rv,
        rv_match: Option<RvMatch>,
        limit: u64,
        continue_token: Option<ContinueToken>,
        ctx: &mut Ctx<'_>,
    ) {
        // etcd3/store.go GetList: continuation pins the token's revision; Exact (and legacy
        // RV=N with a limit) read at N; otherwise the latest revision, checked NotOlderThan.
        let read = storage_range(&scope);
        let (range, at_rv, min_rv, paging) = match &continue_token {
            Some(tok) => {
                let prefix = match &read {
                    KeyRange::Prefix(p) | KeyRange::PrefixAfter { prefix: p, .. } => p.clone(),
                    KeyRange::Single(k) => k.clone(),
                };
                (
                    KeyRange::PrefixAfter {
                        prefix,
                        after: tok.start_after.clone(),
                    },
                    Some(tok.rv),
                    None,
                    true,
                )
            }
            None => {
                let exact = match (rv, rv_match) {
                    (Rv::At(n), Some(RvMatch::Exact)) => Some(n),
                    (Rv::At(n), None) if limit > 0 => Some(n),
                    _ => None,
                };
                let min = match (rv, exact) {
                    (Rv::At(n), None) => Some(n),
                    _ => None,
                };
                (read, exact, min, false)
            }
        };
        // With a selector and a limit, GetList reads a page of `limit` keys, matches them, and
        // while fewer than `limit` matched and the directory goes on reads the next page at the
        // first page's revision, twice as large (up to 10,000 keys): `client_list_answered`.
        let purpose = EtcdPurpose::ClientList(ClientList {
            conn,
            req_id,
            scope,
            limit,
            min_rv,
            at_rv,
            paging,
            matched: OrdMap::new(),
            page_limit: limit,
        });
        let req = KvRequest::Range {
            range,
            revision: at_rv.unwrap_or(0),
            limit: limit as i64,
        };
        self.send_list_read(req, purpose, conn, req_id, ctx);
    }

    /// Sends one range read of a client's LIST to etcd; the LIST fails (500) when etcd cannot be
    /// reached.
    fn send_list_read(
        &mut self,
        req: KvRequest,
        purpose: EtcdPurpose,
        conn: ConnId,
        req_id: u64,
        ctx: &mut Ctx<'_>,
    ) {
        if !self.send_etcd(req, purpose, ctx) {
            self.list_failed(
                conn,
                req_id,
                Status::internal("etcdserver: request timed out".into()),
                ctx,
            );
        }
    }

    /// The next page of a selector LIST from etcd (`GetList`'s loop): the keys after `after` in
    /// `dir`, at the first page's revision, twice as many as last time (up to 10,000).
    fn next_list_page(
        &mut self,
        cl: ClientList,
        dir: Key,
        after: Key,
        rv: i64,
        matched: OrdMap<Key, Obj>,
        ctx: &mut Ctx<'_>,
    ) {
        let page_limit = (cl.page_limit * 2)
            .min(GET_LIST_MAX_PAGE)
            .max(cl.page_limit);
        let (conn, req_id) = (cl.conn, cl.req_id);
        let req = KvRequest::Range {
            range: KeyRange::PrefixAfter { prefix: dir, after },
            revision: rv,
            limit: page_limit as i64,
        };
        let purpose = EtcdPurpose::ClientList(ClientList {
            min_rv: None,
            at_rv: Some(rv),
            matched,
            page_limit,
            ..cl
        });
        self.send_list_read(req, purpose, conn, req_id, ctx);
    }

    fn client_list_answered(
        &mut self,
        cl: ClientList,
        resp: Result<KvResponse, EtcdError>,
        ctx: &mut Ctx<'_>,
    ) {
        match resp {
            Ok(KvResponse::Range(r)) => {
                let list_rv = cl.at_rv.unwrap_or(r.revision);
                if let Some(min) = cl.min_rv
                    && r.revision < min
                {
                    return self.list_failed(
                        cl.conn,
                        cl.req_id,
                        Status::too_large_from_etcd(min, r.revision),
                        ctx,
                    );
                }
                let read = objects_of(&r);
                self.counters.etcd_read_bytes += list_bytes(&read);
                let (items, more, last_key) = if let Some(dir) = selector_directory(&cl.scope) {
                    // The selector is matched here, after the read; `limit` counts matches. As
                    // GetList: stop examining keys once `limit` matched (more remain), and
                    // continue from the last key examined.
                    let mut matched = cl.matched.clone();
                    let (mut last, mut full) = (None, false);
                    for (k, o) in read {
                        if cl.limit > 0 && matched.len() as u64 >= cl.limit {
                            full = true;
                            break;
                        }
                        last = Some(k.clone());
                        if cl.scope.contains(&k) {
                            matched.insert(k, o);
                        }
                    }
                    // A page that ends with the bucket exactly full ends the LIST too.
                    if r.more
                        && !full
                        && cl.limit > 0
                        && (matched.len() as u64) < cl.limit
                        && let Some(after) = last.clone()
                    {
                        return self.next_list_page(cl, dir, after, list_rv, matched, ctx);
                    }
                    (matched, full || r.more, last)
                } else {
                    let last = read.keys().next_back().cloned();
                    (read, r.more, last)
                };
                let bytes = list_bytes(&items);
                let continue_token = match last_key {
                    Some(last) if more => Some(ContinueToken {
                        rv: list_rv,
                        start_after: last,
                    }),
                    _ => None,
                };
                self.list_done(
                    cl.conn,
                    cl.req_id,
                    ListResult {
                        rv: list_rv,
                        items,
                        continue_token,
                        served_from: ServedFrom::Etcd,
                        digest: None,
                        bytes,
                    },
                    ctx,
                );
            }
            Err(EtcdError::Compacted { .. }) => {
                let status = if cl.paging {
                    Status::continue_too_old()
                } else {
                    Status::list_too_old_etcd()
                };
                self.list_failed(cl.conn, cl.req_id, status, ctx);
            }
            Err(EtcdError::FutureRevision) => {
                // Simplification (notes.md): an Exact LIST above etcd's revision is answered as the
                // NotOlderThan check would: 504 too large.
                let rv = cl.at_rv.unwrap_or(0);
                self.list_failed(cl.conn, cl.req_id, Status::too_large_from_etcd(rv, 0), ctx);
            }
            Err(e) => self.list_failed(cl.conn, cl.req_id, Status::internal(e.to_string()), ctx),
            Ok(_) => self.list_failed(
                cl.conn,
                cl.req_id,
                Status::internal("unexpected etcd answer".into()),
                ctx,
            ),
        }
    }

    fn on_watch(&mut self, conn: ConnId, req_id: u64, req: ApiRequest, ctx: &mut Ctx<'_>) {
        let ApiRequest::Watch {
            resource,
            scope,
            rv,
            bookmarks,
            send_initial_events,
            timeout_ns,
            read_rate,
        } = req.clone()
        else {
            return;
        };
        let send_initial_events = default_watch(self.watch_list, rv, send_initial_events);
        if send_initial_events.is_some() && !self.watch_list {
            return self.reply(
                conn,
                req_id,
                ApiResponse::Error(watch_list_forbidden()),
                ctx,
            );
        }
        let ready = match self.cacher(resource) {
            None => {
                return self.direct_watch(
                    conn,
                    req_id,
                    resource,
                    scope,
                    rv,
                    send_initial_events,
                    bookmarks,
                    timeout_ns,
                    ctx,
                );
            }
            // Mutant `cacher_watch_during_reinit` (Kubernetes #116122): a cacher that was ready
            // before (generation > 0) and is re-initialising takes the watch on its old state;
            // the fix (PR #116172) checks the ready generation at registration.
            Some(c) => c.ready || (ctx.mutants.cacher_watch_during_reinit && c.generation > 0),
        };
        if !ready {
            match self.rules {
                Rules::V1_31 | Rules::V1_34 | Rules::V1_37 => {
                    return self.reply(
                        conn,
                        req_id,
                        ApiResponse::Error(self.not_ready_status(resource, ctx.now)),
                        ctx,
                    );
                }
                Rules::V1_27 => {
                    self.parked.push_back(Parked { conn, req_id, req });
                    return;
                }
            }
        }
        let deadline_ns = ctx.now + self.watch_timeout(timeout_ns);
        self.reply(conn, req_id, ApiResponse::WatchStarted, ctx);
        self.client_watches.insert(conn, resource);
        let end_bookmark = bookmarks;
        match (rv, send_initial_events) {
            (Rv::Unset | Rv::Zero, None) => self.register_watch(
                conn,
                resource,
                scope,
                bookmarks,
                deadline_ns,
                read_rate,
                Initial::Snapshot {
                    end_bookmark: false,
                },
                ctx,
            ),
            (Rv::Zero, Some(false)) => self.register_watch(
                conn,
                resource,
                scope,
                bookmarks,
                deadline_ns,
                read_rate,
                Initial::Now,
                ctx,
            ),
            (Rv::Zero, Some(true)) => self.register_watch(
                conn,
                resource,
                scope,
                bookmarks,
                deadline_ns,
                read_rate,
                Initial::Snapshot { end_bookmark },
                ctx,
            ),
            (Rv::Unset, Some(true)) => {
                let kind = WaitKind::Watch {
                    conn,
                    scope,
                    bookmarks,
                    deadline_ns,
                    read_rate,
                    at_probed_rv: false,
                    initial: Initial::Snapshot { end_bookmark },
                };
                self.add_probed_wait(resource, kind, ctx);
            }
            (Rv::Unset, Some(false)) => {
                // `cacher.go getWatchCacheResourceVersion`: etcd's current revision; no freshness
                // wait without initial events (`waitUntilWatchCacheFreshAndForceAllEvents`).
                let kind = WaitKind::Watch {
                    conn,
                    scope,
                    bookmarks,
                    deadline_ns,
                    read_rate,
                    at_probed_rv: true,
                    initial: Initial::Now,
                };
                self.add_probed_wait(resource, kind, ctx);
            }
            (Rv::At(n), Some(true)) => {
                let cache_rv = self
                    .cacher(resource)
                    .map(|c| c.cache.resource_version())
                    .unwrap_or(0);
                let initial = Initial::Snapshot { end_bookmark };
                if cache_rv >= n {
                    self.register_watch(
                        conn,
                        resource,
                        scope,
                        bookmarks,
                        deadline_ns,
                        read_rate,
                        initial,
                        ctx,
                    );
                } else {
                    let kind = WaitKind::Watch {
                        conn,
                        scope,
                        bookmarks,
                        deadline_ns,
                        read_rate,
                        at_probed_rv: false,
                        initial,
                    };
                    self.add_wait(resource, n, kind, ctx);
                }
            }
            (Rv::At(n), _) => self.register_watch(
                conn,
                resource,
                scope,
                bookmarks,
                deadline_ns,
                read_rate,
                Initial::Since(n),
                ctx,
            ),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn register_watch(
        &mut self,
        conn: ConnId,
        resource: ResourceId,
        scope: KeyRange,
        bookmarks: bool,
        deadline_ns: Nanos,
        read_rate: ReadRate,
        initial: Initial,
        ctx: &mut Ctx<'_>,
    ) {
        let Some(Some(c)) = self.cachers.get_mut(resource as usize) else {
            return;
        };
        let ok = c.add_watcher(
            ctx.now,
            conn,
            scope,
            bookmarks,
            deadline_ns,
            read_rate,
            initial,
            ctx,
            &mut self.rng,
        );
        if !ok {
            self.counters.too_old_errors += 1;
            self.client_watches.remove(&conn);
        }
    }

    /// A client hung up a watch or request connection.
    pub fn on_hangup(&mut self, conn: ConnId, ctx: &mut Ctx<'_>) {
        if let Some(r) = self.client_watches.remove(&conn)
            && let Some(Some(c)) = self.cachers.get_mut(r as usize)
        {
            c.forget(conn);
        }
        if self.direct_watches.remove(&conn).is_some() {
            self.send_direct(
                WatchRequest::Cancel {
                    watch_id: conn as i64,
                },
                ctx,
            );
        }
        let gone: Vec<u64> = self
            .waits
            .iter()
            .filter(|(_, w)| matches!(&w.kind, WaitKind::Watch { conn: c, .. } if *c == conn))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.waits.remove(&id);
        }
    }

    fn unpark(&mut self, r: ResourceId, ctx: &mut Ctx<'_>) {
        let (now_ready, rest): (Vec<Parked>, Vec<Parked>) =
            self.parked.iter().cloned().partition(|p| match &p.req {
                ApiRequest::List { resource, .. } | ApiRequest::Watch { resource, .. } => {
                    *resource == r
                }
                _ => false,
            });
        self.parked = rest.into_iter().collect();
        for p in now_ready {
            self.on_request(p.conn, p.req_id, p.req, ctx);
        }
    }

    // ---------------------------------------------------------------- watch cache off

    fn send_direct(&mut self, req: WatchRequest, ctx: &mut Ctx<'_>) {
        if self.partitioned {
            return;
        }
        let conn = *self
            .direct_stream
            .get_or_insert_with(|| ctx.open_watch_stream(Actor::Apiserver(self.index)));
        ctx.send(conn, Dir::ToServer, Msg::Watch(req));
    }

    /// How long a watch runs (`handlers/watch.go serveWatch`): the request's `timeoutSeconds`, or
    /// a random 1-2x `--min-request-timeout` when it sets none.
    fn watch_timeout(&mut self, timeout_ns: Nanos) -> Nanos {
        if timeout_ns > 0 {
            timeout_ns
        } else {
            MIN_REQUEST_TIMEOUT_NS + self.rng.below(MIN_REQUEST_TIMEOUT_NS)
        }
    }

    // ---------------------------------------------------------------- timers and faults

    /// A timer of this apiserver fired.
    pub fn on_timer(
        &mut self,
        t: ApiTimer,
        scenario: &Scenario,
        ctx: &mut Ctx<'_>,
    ) -> &'static str {
        match t {
            ApiTimer::CacherRestart(r) => {
                if !matches!(self.cachers.get(r as usize), Some(Some(c)) if c.restart_armed) {
                    return "stale";
                }
                if let Some(Some(c)) = self.cachers.get_mut(r as usize) {
                    c.restart_armed = false;
                    // startCaching: terminateAllWatchers, then ListAndWatch.
                    for conn in c.terminate_all(ctx) {
                        self.client_watches.remove(&conn);
                    }
                }
                self.cacher_list(r, ctx);
                "cacher.restart"
            }
            ApiTimer::ReadDeadline(id) => {
                self.read_deadline(id, ctx);
                "read.deadline"
            }
            ApiTimer::ProgressRequest => {
                if !self.progress_armed {
                    return "stale";
                }
                self.progress_tick(ctx);
                "progress.request"
            }
            ApiTimer::Compact => {
                ctx.timer(
                    ctx.now + self.compaction_interval_ns,
                    Timer::Apiserver(self.index, ApiTimer::Compact),
                );
                if self.down {
                    // Fix (found by the convergence property test): a killed process's compactor
                    // does not run; it used to open an etcd connection that the restart then
                    // inherited closed, so the restarted caches never listed.
                    return "down";
                }
                let key = Key::new(COMPACT_REV_KEY);
                let rev_text_bytes = self.compactor_rev.to_string().len() as u64;
                let txn = Txn {
                    compares: vec![Compare {
                        key: key.clone(),
                        target: CompareTarget::Version,
                        op: CompareOp::Equal,
                        value: self.compactor_t,
                    }],
                    success: vec![TxnOp::Put {
                        key: key.clone(),
                        value_bytes: rev_text_bytes,
                    }],
                    failure: vec![TxnOp::Range(KeyRange::Single(key))],
                };
                self.send_etcd(KvRequest::Txn(txn), EtcdPurpose::CompactTxn, ctx);
                "compactor.tick"
            }
            ApiTimer::ListSent(id) => {
                self.list_sent(id, ctx);
                "list.sent"
            }
            ApiTimer::Heal => {
                self.heal(scenario, ctx);
                "heal"
            }
            ApiTimer::Start => {
                // A second restart while down (or a restart with no downtime since) supersedes
                // this start: the process the timer belonged to was killed again.
                if !self.down || ctx.now < self.down_until_ns {
                    return "start.superseded";
                }
                self.down = false;
                self.start(scenario, ctx);
                "start"
            }
            ApiTimer::DirectWatchDeadline(conn) => {
                if self.direct_watches.remove(&conn).is_none() {
                    return "direct_watch.gone";
                }
                self.send_direct(
                    WatchRequest::Cancel {
                        watch_id: conn as i64,
                    },
                    ctx,
                );
                ctx.send(conn, Dir::ToClient, Msg::ApiWatch(ApiWatchEvent::Closed));
                "direct_watch.deadline"
            }
            ApiTimer::ConsistencyCheck(r) => self.consistency_check(r, ctx),
            ApiTimer::SnapshotCompactor => self.snapshot_compactor_poll(ctx),
        }
    }

    /// A cacher timer fired.
    pub fn on_cacher_timer(
        &mut self,
        r: ResourceId,
        t: CacherTimer,
        ctx: &mut Ctx<'_>,
    ) -> &'static str {
        let Some(Some(c)) = self.cachers.get_mut(r as usize) else {
            return "none";
        };
        match t {
            CacherTimer::BookmarkTick => {
                c.bookmark_tick(ctx.now, ctx, &mut self.rng);
                "bookmark.tick"
            }
            CacherTimer::IntervalRefill(conn) => {
                if !c.interval_refill(ctx.now, conn, ctx) {
                    self.client_watches.remove(&conn);
                }
                "interval.refill"
            }
            CacherTimer::WatchDeadline(conn) => {
                if c.watch_deadline(conn, ctx) {
                    self.client_watches.remove(&conn);
                }
                "watch.deadline"
            }
        }
    }

    /// True while the process is down (between a kill and its start).
    pub fn is_down(&self) -> bool {
        self.down
    }

    /// Kill and restart (after the world reset its connections): caches start cold, after
    /// `down_ns` of downtime (0 = at once).
    pub fn restart(&mut self, scenario: &Scenario, down_ns: Nanos, ctx: &mut Ctx<'_>) {
        // The world has reset every connection of this process; start from nothing.
        self.counters.restarts += 1;
        self.etcd_kv = None;
        self.etcd_watch = None;
        self.direct_stream = None;
        self.pending_etcd = OrdMap::new();
        self.waits = OrdMap::new();
        self.parked = Vector::new();
        self.sending = OrdMap::new();
        self.client_watches = OrdMap::new();
        self.direct_watches = OrdMap::new();
        self.held = Vector::new();
        self.counters.lists_in_flight = 0;
        self.counters.list_memory_bytes = 0;
        self.progress_armed = false;
        self.progress_timer_ns = 0;
        self.consistency_due = Vector::new();
        self.snapshot_compactor_due = 0;
        self.compactor_t = 0;
        self.compactor_rev = 0;
        for c in self.cachers.iter().flatten() {
            self.retired.absorb(&c.totals());
            for (m, slot) in self.retired_shadows.iter_mut().enumerate() {
                *slot = match (*slot, c.shadows.get(m)) {
                    (Some((cap, bytes)), Some(w)) => {
                        Some((cap.max(w.capacity_max()), bytes.max(w.bytes_max())))
                    }
                    _ => None,
                };
            }
        }
        self.cachers = Vector::new();
        self.down_until_ns = ctx.now + down_ns;
        if down_ns > 0 {
            self.down = true;
            ctx.timer(
                ctx.now + down_ns,
                Timer::Apiserver(self.index, ApiTimer::Start),
            );
        } else {
            self.down = false;
            self.start(scenario, ctx);
        }
    }

    fn hangup_etcd(&mut self, ctx: &mut Ctx<'_>) {
        for conn in [
            self.etcd_kv.take(),
            self.etcd_watch.take(),
            self.direct_stream.take(),
        ]
        .into_iter()
        .flatten()
        {
            ctx.send(conn, Dir::ToServer, Msg::Hangup);
        }
    }

    /// Cut off from etcd for `for_ns`: the cacher watches break, re-lists fail until healed.
    pub fn partition(&mut self, for_ns: Option<Nanos>, ctx: &mut Ctx<'_>) {
        self.hangup_etcd(ctx);
        self.pending_etcd = OrdMap::new();
        self.partitioned = true;
        for r in 0..self.cachers.len() {
            self.cacher_failed(r as ResourceId, ctx);
        }
        if let Some(d) = for_ns {
            ctx.timer(ctx.now + d, Timer::Apiserver(self.index, ApiTimer::Heal));
        }
    }

    /// Stop processing etcd watch events for `for_ns` (the cache lags; it stays ready).
    pub fn stall(&mut self, for_ns: Option<Nanos>, ctx: &mut Ctx<'_>) {
        self.stalled = true;
        if let Some(d) = for_ns {
            ctx.timer(ctx.now + d, Timer::Apiserver(self.index, ApiTimer::Heal));
        }
    }

    /// End of a partition or stall: held etcd events are processed in order.
    pub fn heal(&mut self, scenario: &Scenario, ctx: &mut Ctx<'_>) {
        self.partitioned = false;
        if self.stalled {
            self.stalled = false;
            let held: Vec<WatchResponse> = self.held.iter().cloned().collect();
            self.held = Vector::new();
            for resp in held {
                self.apply_etcd_watch(resp, scenario, ctx);
            }
        }
    }
}

fn guard(key: &Key, precondition_rv: Option<i64>) -> Compare {
    match precondition_rv {
        Some(rv) => Compare {
            key: key.clone(),
            target: CompareTarget::Mod,
            op: CompareOp::Equal,
            value: rv,
        },
        None => Compare {
            key: key.clone(),
            target: CompareTarget::Version,
            op: CompareOp::Greater,
            value: 0,
        },
    }
}

impl Apiserver {
    /// The explorer's time abstraction (see `Cacher::erase_times`), plus the deadlines of watches
    /// waiting for freshness.
    pub fn erase_times(&mut self) {
        // Simplification (explorer only): without times, a superseded start timer is honoured.
        self.down_until_ns = 0;
        self.progress_timer_ns = 0;
        self.snapshot_compactor_due = 0;
        self.consistency_due = self.consistency_due.iter().map(|_| 0).collect();
        for c in self.cachers.iter_mut().flatten() {
            c.erase_times();
        }
        self.waits = std::mem::take(&mut self.waits)
            .into_iter()
            .map(|(id, mut w)| {
                if let WaitKind::Watch { deadline_ns, .. } = &mut w.kind {
                    *deadline_ns = 0;
                }
                (id, w)
            })
            .collect();
    }
}

impl Apiserver {
    /// Applies the explorer's symmetry renaming to everything keyed by or naming a client
    /// connection: cache watchers, client watches, direct watches, parked requests, LISTs being
    /// sent and freshness waits.
    pub fn relabel(&mut self, r: &crate::world::relabel::Relabel) {
        for c in self.cachers.iter_mut().flatten() {
            c.relabel(r);
        }
        self.client_watches = std::mem::take(&mut self.client_watches)
            .into_iter()
            .map(|(c, v)| (r.conn(c), v))
            .collect();
        self.direct_watches = std::mem::take(&mut self.direct_watches)
            .into_iter()
            .map(|(c, v)| (r.conn(c), v))
            .collect();
        self.direct_stream = self.direct_stream.map(|c| r.conn(c));
        for p in self.parked.iter_mut() {
            p.conn = r.conn(p.conn);
        }
        self.sending = std::mem::take(&mut self.sending)
            .into_iter()
            .map(|(id, mut s)| {
                s.conn = r.conn(s.conn);
                (id, s)
            })
            .collect();
        self.waits = std::mem::take(&mut self.waits)
            .into_iter()
            .map(|(id, mut w)| {
                match &mut w.kind {
                    WaitKind::List { conn, .. }
                    | WaitKind::Watch { conn, .. }
                    | WaitKind::Get { conn, .. } => *conn = r.conn(*conn),
                }
                (id, w)
            })
            .collect();
    }
}
