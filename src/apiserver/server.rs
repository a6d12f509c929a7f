//! One kube-apiserver: its cachers (one per resource, each fed by an etcd watch on the
//! apiserver's own cache stream), LIST / WATCH routing between cache and etcd, freshness waits
//! with progress requests, writes with optimistic concurrency, the etcd compactor, restarts,
//! partitions and stalls. Sources: k8s-cacher-protocol.md §1-§7, §9 (cacher.go, watch_cache.go,
//! etcd3/store.go, etcd3/compact.go, watch_progress.go).
//!
//! This file holds the actor's state, request routing, writes and timers; the rest is by
//! responsibility: `list` (LIST serving), `exact_list` (1.34+ snapshot LISTs), `watch` (WATCH
//! serving), `direct_watch` (watches with the cache off), `get` (GET), `waits` (freshness waits
//! and the progress requester), `etcd_side` (etcd requests, the cachers' LIST and watch),
//! `cache_upkeep` (consistency checker, snapshot compactor) and `lifecycle` (restarts,
//! partitions, stalls).

use imbl::{OrdMap, Vector};
use smallvec::smallvec;

use super::api::{
    ApiRequest, ApiResponse, ApiWatchEvent, ContinueToken, ListResult, ReadRate, ResourceId, Rv,
    RvMatch, ServedFrom,
};
use super::cache_shadow::Shadows;
use super::cacher::{Cacher, Initial};
use super::list_options::{default_watch, validate_list, watch_list_forbidden};
use super::rules::{Rules, should_delegate_list};
use crate::proto::CacherTimer;

mod cache_upkeep;
mod compactor;
mod direct_watch;
mod etcd_side;
mod exact_list;
mod get;
mod lifecycle;
mod list;
mod wait_table;
mod waits;
mod watch;
use super::selector::Selector;
use super::status::Status;
use super::watch_cache::{CacheEvent, EventType, Obj, WatchCache, scan_scope};
use crate::kernel::{Nanos, RngStream};
use crate::proto::Out;
use crate::proto::api::resource_prefix;
use crate::proto::etcd::{
    Compare, CompareOp, CompareTarget, EtcdError, EventKind, Key, KeyRange, KeyValue, KvRequest,
    KvResponse, RangeResult, Txn, TxnOp, TxnOpResult, WatchRequest, WatchResponse,
    WatchResponseKind,
};
use crate::proto::{Actor, ConnId, Dir};
use crate::proto::{ApiTimer, Msg, Timer};
use crate::scenario::{Mutants, Scenario, WatchCacheMode};
use etcd_side::{event_type, objects_of};
use exact_list::{ExactList, exact_list};
use list::{delegates_on_not_ready_cache, list_bytes, select_page, storage_range, token_base};
use watch::WatchSpec;

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
    /// 1.34+: etcd's revision, read after a LIST pinned above it failed, for the 504's
    /// "current" (`etcd3/store.go listReadError`).
    FutureRevisionProbe {
        conn: ConnId,
        req_id: u64,
        rv: i64,
    },
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
    selector: Selector,
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
        selector: Selector,
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
        selector: Selector,
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
    /// The scenario's `[mutants]` (deliberate model bugs for the broken-model tests; all off).
    /// Configuration, the same in every state: left out of the state's hash.
    pub mutants: crate::kernel::Unhashed<Mutants>,
    rules: Rules,
    consistent_list_from_cache: bool,
    watch_list: bool,
    compaction_interval_ns: Nanos,
    bookmark_interval_ns: Nanos,
    list_bytes_per_second: u64,
    /// When each LIST encoder is free again (`apiserver.list_encoders` of them; none: no limit).
    /// Not hashed: configuration and absolute times, which the explorer's time abstraction
    /// leaves out anyway (explorer scenarios keep the default, no limit).
    encoders_free_at: crate::kernel::Unhashed<Vec<Nanos>>,
    etcd_kv: Option<ConnId>,
    etcd_watch: Option<ConnId>,
    next_etcd_req: u64,
    pending_etcd: OrdMap<u64, EtcdPurpose>,
    cachers: crate::kernel::cow::CowSeq<Option<crate::kernel::cow::CowBox<Cacher>>>,
    resource_names: Vector<String>,
    waits: wait_table::WaitTable,
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
    cacher_watch_ids: crate::kernel::cow::CowSeq<i64>,
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
    shadow_configs: crate::kernel::Unhashed<Vec<crate::scenario::WatchCacheConfig>>,
    /// Per followed configuration: the capacity and memory maxima of earlier incarnations'
    /// caches, or `None` once it was dropped.
    retired_shadows: Vec<Option<(u64, u64)>>,
}

fn name_of(key: &Key) -> &str {
    key.as_str().rsplit('/').next().unwrap_or("")
}

impl Apiserver {
    /// Apiserver `index` of `scenario`; its cachers start listing at once.
    pub fn new(index: u32, scenario: &Scenario, seed: u64, out: &mut Out<'_>) -> Self {
        let a = &scenario.apiserver;
        let mut s = Apiserver {
            index,
            mutants: crate::kernel::Unhashed(scenario.mutants),
            rules: a.rules,
            consistent_list_from_cache: a.consistent_list_from_cache && !a.rules.is_1_27(),
            watch_list: a.watch_list.unwrap_or(false),
            compaction_interval_ns: a.compaction_interval.as_ns(),
            bookmark_interval_ns: a.bookmark_interval.as_ns(),
            list_bytes_per_second: a.list_serve_bytes_per_second.0.max(1),
            encoders_free_at: crate::kernel::Unhashed(vec![0; a.list_encoders as usize]),
            etcd_kv: None,
            etcd_watch: None,
            next_etcd_req: 0,
            pending_etcd: OrdMap::new(),
            cachers: Default::default(),
            resource_names: scenario.resources.iter().map(|r| r.name.clone()).collect(),
            waits: wait_table::WaitTable::default(),
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
        s.start(scenario, out);
        if s.compaction_interval_ns > 0 {
            out.timer(
                out.now + s.compaction_interval_ns,
                Timer::Apiserver(index, ApiTimer::Compact),
            );
        }
        s
    }

    fn start(&mut self, scenario: &Scenario, out: &mut Out<'_>) {
        let cache_on = scenario.apiserver.watch_cache.mode != WatchCacheMode::Off;
        // The progress requester starts with the cacher, its timer 100 ms ahead.
        self.progress_timer_ns = out.now + PROGRESS_REQUEST_PERIOD_NS;
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
                        out.now,
                        self.bookmark_interval_ns,
                    );
                    c.mutants = self.mutants.clone();
                    c.floor_at_snapshot_rv = !matches!(self.rules, Rules::V1_27 | Rules::V1_31);
                    c.bookmarks_lost_before_first_event = self.rules == Rules::V1_27;
                    c.exact_name_watch_gets_no_state = self.rules == Rules::V1_31;
                    c.shadows = Shadows::new(&self.shadow_configs, |m| {
                        self.retired_shadows.get(m).is_some_and(Option::is_none)
                    });
                    crate::kernel::cow::CowBox::new(c)
                })
            })
            .collect();
        for r in 0..self.cachers.len() {
            if self.cachers[r].is_some() {
                self.cacher_list(r as ResourceId, out);
            }
        }
        self.start_cache_upkeep(out);
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
        self.shadow_configs = crate::kernel::Unhashed(configs.to_vec());
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

    // ---------------------------------------------------------------- client requests

    /// Handles a client request arriving on `conn`.
    pub fn on_request(&mut self, conn: ConnId, req_id: u64, req: ApiRequest, out: &mut Out<'_>) {
        // HTTP/2 GOAWAY with the scenario's chance: the request is served, the connection takes
        // no new ones (the client reconnects through the load balancer).
        if !matches!(req, ApiRequest::Watch { .. })
            && self.goaway_ppb > 0
            && self.rng.below(1_000_000_000) < self.goaway_ppb
        {
            out.send(conn, Dir::ToClient, Msg::Goaway);
        }
        match req {
            ApiRequest::List { .. } => self.on_list(conn, req_id, req, out),
            ApiRequest::Get { resource, key, rv } => {
                self.on_get(conn, req_id, resource, key, rv, out)
            }
            ApiRequest::Watch { .. } => self.on_watch(conn, req_id, req, out),
            ApiRequest::Create {
                resource,
                key,
                bytes,
                labels,
            } => {
                let txn = Txn {
                    compares: smallvec![Compare {
                        key: key.clone(),
                        target: CompareTarget::Mod,
                        op: CompareOp::Equal,
                        value: 0,
                    }],
                    success: smallvec![TxnOp::Put {
                        key: key.clone(),
                        value_bytes: bytes,
                        value_tag: labels,
                    }],
                    failure: smallvec![TxnOp::Range(KeyRange::Single(key.clone()))],
                };
                self.write(conn, req_id, resource, key, WriteOp::Create, txn, out);
            }
            ApiRequest::Update {
                resource,
                key,
                bytes,
                labels,
                precondition_rv,
            } => {
                let txn = Txn {
                    compares: smallvec![guard(&key, precondition_rv)],
                    success: smallvec![TxnOp::Put {
                        key: key.clone(),
                        value_bytes: bytes,
                        value_tag: labels,
                    }],
                    failure: smallvec![TxnOp::Range(KeyRange::Single(key.clone()))],
                };
                let op = WriteOp::Update {
                    precondition: precondition_rv.is_some(),
                };
                self.write(conn, req_id, resource, key, op, txn, out);
            }
            ApiRequest::Delete {
                resource,
                key,
                precondition_rv,
            } => {
                let txn = Txn {
                    compares: smallvec![guard(&key, precondition_rv)],
                    success: smallvec![TxnOp::Delete(KeyRange::Single(key.clone()))],
                    failure: smallvec![TxnOp::Range(KeyRange::Single(key.clone()))],
                };
                let op = WriteOp::Delete {
                    precondition: precondition_rv.is_some(),
                };
                self.write(conn, req_id, resource, key, op, txn, out);
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
        out: &mut Out<'_>,
    ) {
        let purpose = EtcdPurpose::Write {
            conn,
            req_id,
            resource,
            key,
            op,
        };
        if !self.send_etcd(KvRequest::Txn(Box::new(txn)), purpose, out) {
            let resp = ApiResponse::Error(Status::internal("etcdserver: request timed out".into()));
            out.send(conn, Dir::ToClient, Msg::api_reply(req_id, resp));
        }
    }

    fn reply(&mut self, conn: ConnId, req_id: u64, resp: ApiResponse, out: &mut Out<'_>) {
        if let ApiResponse::Error(s) = &resp {
            match s.code {
                410 => self.counters.too_old_errors += 1,
                504 => self.counters.too_large_errors += 1,
                429 => self.counters.too_many_requests += 1,
                _ => {}
            }
        }
        out.send(conn, Dir::ToClient, Msg::api_reply(req_id, resp));
    }

    // ---------------------------------------------------------------- watch cache off

    // ---------------------------------------------------------------- timers and faults

    /// A timer of this apiserver fired.
    pub fn on_timer(
        &mut self,
        t: ApiTimer,
        scenario: &Scenario,
        out: &mut Out<'_>,
    ) -> &'static str {
        match t {
            ApiTimer::CacherRestart(r) => self.cacher_restart(r, out),
            ApiTimer::ReadDeadline(id) => {
                self.read_deadline(id, out);
                "read.deadline"
            }
            ApiTimer::ProgressRequest => {
                if !self.progress_armed {
                    return "stale";
                }
                self.progress_tick(out);
                "progress.request"
            }
            ApiTimer::Compact => self.compactor_tick(out),
            ApiTimer::ListSent(id) => {
                self.list_sent(id, out);
                "list.sent"
            }
            ApiTimer::Heal => {
                self.heal(scenario, out);
                "heal"
            }
            ApiTimer::Start => {
                // A second restart while down (or a restart with no downtime since) supersedes
                // this start: the process the timer belonged to was killed again.
                if !self.down || out.now < self.down_until_ns {
                    return "start.superseded";
                }
                self.down = false;
                self.start(scenario, out);
                "start"
            }
            ApiTimer::DirectWatchDeadline(conn) => self.direct_watch_deadline(conn, out),
            ApiTimer::ConsistencyCheck(r) => self.consistency_check(r, out),
            ApiTimer::SnapshotCompactor => self.snapshot_compactor_poll(out),
        }
    }

    /// `startCaching` again after a failure: terminate every watcher, then list and watch.
    fn cacher_restart(&mut self, r: ResourceId, out: &mut Out<'_>) -> &'static str {
        let Some(Some(c)) = self.cachers.get_mut(r as usize) else {
            return "stale";
        };
        if !c.restart_armed {
            return "stale";
        }
        c.restart_armed = false;
        for conn in c.terminate_all(out) {
            self.client_watches.remove(&conn);
        }
        self.cacher_list(r, out);
        "cacher.restart"
    }

    /// A cacher timer fired.
    pub fn on_cacher_timer(
        &mut self,
        r: ResourceId,
        t: CacherTimer,
        out: &mut Out<'_>,
    ) -> &'static str {
        let Some(Some(c)) = self.cachers.get_mut(r as usize) else {
            return "none";
        };
        match t {
            CacherTimer::BookmarkTick => {
                c.bookmark_tick(out.now, out, &mut self.rng);
                "bookmark.tick"
            }
            CacherTimer::IntervalRefill(conn) => {
                if !c.interval_refill(out.now, conn, out) {
                    self.client_watches.remove(&conn);
                }
                "interval.refill"
            }
            CacherTimer::WatchDeadline(conn) => {
                if c.watch_deadline(conn, out) {
                    self.client_watches.remove(&conn);
                }
                "watch.deadline"
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
            .into_entries()
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
    pub fn relabel(&mut self, r: &crate::proto::Relabel) {
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
            .into_entries()
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
