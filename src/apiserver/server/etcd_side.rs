//! The apiserver's etcd side: its requests and their answers, the cachers' LIST and watch of etcd
//! (`cacher.go startCaching`, `watch_cache.go Replace`), failures and re-initialisation.

use super::*;
use crate::kernel::prefetch::Stage;
use crate::proto::etcd::Event as EtcdEvent;

/// How many of a response's events [`Apiserver::prefetch_for_etcd_watch`] asks lines for.
const PREFETCH_EVENTS: usize = 2;

/// The objects of an etcd range as the model keeps them.
pub(super) fn objects_of(range: &RangeResult) -> OrdMap<Key, Obj> {
    range
        .kvs
        .iter()
        .map(|kv| {
            (
                kv.key.clone(),
                Obj {
                    rv: kv.mod_revision,
                    bytes: kv.value_bytes,
                    labels: kv.value_tag,
                },
            )
        })
        .collect()
}

/// ADDED for a put that created the key (`create_revision == mod_revision`, etcd3 watcher), else
/// MODIFIED; DELETED for a delete.
pub(super) fn event_type(e: &EtcdEvent) -> EventType {
    match e.kind {
        EventKind::Delete => EventType::Deleted,
        EventKind::Put if e.kv.create_revision == e.kv.mod_revision => EventType::Added,
        EventKind::Put => EventType::Modified,
    }
}

impl Apiserver {
    pub(super) fn send_etcd(
        &mut self,
        req: KvRequest,
        purpose: EtcdPurpose,
        out: &mut Out<'_>,
    ) -> bool {
        if self.partitioned {
            return false;
        }
        let conn = *self
            .etcd_kv
            .get_or_insert_with(|| out.connect(Actor::Apiserver(self.index), Actor::Etcd));
        let req_id = self.next_etcd_req;
        self.next_etcd_req += 1;
        self.pending_etcd.insert(req_id, purpose);
        out.send(conn, Dir::ToServer, Msg::Kv { req_id, req });
        true
    }

    pub(super) fn send_etcd_watch(&mut self, req: WatchRequest, out: &mut Out<'_>) {
        if self.partitioned {
            return;
        }
        let conn = *self
            .etcd_watch
            .get_or_insert_with(|| out.open_watch_stream(Actor::Apiserver(self.index)));
        out.send(conn, Dir::ToServer, Msg::Watch(req));
    }

    pub(super) fn cacher_list(&mut self, r: ResourceId, out: &mut Out<'_>) {
        let prefix = resource_prefix(&self.resource_names[r as usize]);
        let req = KvRequest::Range {
            range: KeyRange::Prefix(prefix),
            revision: 0,
            limit: 0,
        };
        if !self.send_etcd(req, EtcdPurpose::CacherList(r), out) {
            // etcd unreachable: the reflector's ListAndWatch fails; wait.Until retries in 1 s.
            self.arm_cacher_restart(r, out);
        }
    }

    pub(super) fn arm_cacher_restart(&mut self, r: ResourceId, out: &mut Out<'_>) {
        if let Some(Some(c)) = self.cachers.get_mut(r as usize)
            && !c.restart_armed
        {
            c.restart_armed = true;
            out.timer(
                out.now + CACHER_RESTART_DELAY_NS,
                Timer::Apiserver(self.index, ApiTimer::CacherRestart(r)),
            );
        }
    }

    /// The cacher's etcd watch failed (compacted, stream lost): not ready; re-list in 1 s.
    pub(super) fn cacher_failed(&mut self, r: ResourceId, out: &mut Out<'_>) {
        if let Some(Some(c)) = self.cachers.get_mut(r as usize) {
            c.set_not_ready(out.now);
        }
        self.arm_cacher_restart(r, out);
    }

    /// Handles an etcd KV answer: hands it to what the request was for.
    pub fn on_etcd_reply(
        &mut self,
        conn: ConnId,
        req_id: u64,
        resp: Result<KvResponse, EtcdError>,
        out: &mut Out<'_>,
    ) {
        if Some(conn) != self.etcd_kv {
            return; // an answer to a previous incarnation
        }
        let Some(purpose) = self.pending_etcd.remove(&req_id) else {
            return;
        };
        match purpose {
            EtcdPurpose::CacherList(r) => match resp {
                Ok(KvResponse::Range(range)) => self.cacher_listed(r, range, out),
                _ => self.arm_cacher_restart(r, out),
            },
            EtcdPurpose::Probe(wait_id) => self.probe_answered(wait_id, resp, out),
            EtcdPurpose::ClientList(cl) => self.client_list_answered(cl, resp, out),
            EtcdPurpose::Write {
                conn,
                req_id,
                resource,
                key,
                op,
            } => {
                let reply = self.write_answer(resource, &key, op, resp);
                out.send(conn, Dir::ToClient, Msg::api_reply(req_id, reply));
            }
            EtcdPurpose::CompactTxn => self.compaction_txn_answered(resp, out),
            EtcdPurpose::Compact => {}
            EtcdPurpose::ConsistencyPage(check) => self.consistency_page_read(*check, resp, out),
            EtcdPurpose::FutureRevisionProbe { conn, req_id, rv } => {
                // A failed read leaves "current" at 0, as `listReadError` does.
                let current = match resp {
                    Ok(KvResponse::Range(r)) => r.revision,
                    _ => 0,
                };
                self.list_failed(conn, req_id, Status::too_large_from_etcd(rv, current), out);
            }
            EtcdPurpose::Get {
                conn,
                req_id,
                resource,
                key,
                min_rv,
            } => self.got_from_etcd(conn, req_id, resource, key, min_rv, resp, out),
            EtcdPurpose::DirectWatchInit(conn) => match resp {
                Ok(KvResponse::Range(range)) => self.direct_watch_listed(conn, range, out),
                _ => {
                    if self.direct_watches.remove(&conn).is_some() {
                        Cacher::refuse(out, conn, Status::internal("etcd read failed".into()));
                    }
                }
            },
        }
    }

    /// etcd's current revision, read for a consistent read or a watch from "now"
    /// (`storage.GetCurrentResourceVersionFromStorage`): it becomes the wait's target RV; a
    /// watch at the probed RV starts at once, other waits wait for the cache (up to the
    /// block timeout). A failed read fails the wait.
    fn probe_answered(
        &mut self,
        wait_id: u64,
        resp: Result<KvResponse, EtcdError>,
        out: &mut Out<'_>,
    ) {
        let Ok(KvResponse::Range(range)) = resp else {
            if let Some(w) = self.waits.remove(&wait_id) {
                self.fail_wait(w, Status::internal("etcd probe failed".into()), out);
            }
            return;
        };
        self.counters.etcd_read_bytes += range.kvs.iter().map(|kv| kv.value_bytes).sum::<u64>();
        self.waits.set_target(wait_id, range.revision);
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
            return self.serve_wait(w, out);
        }
        out.timer(
            out.now + BLOCK_TIMEOUT_NS,
            Timer::Apiserver(self.index, ApiTimer::ReadDeadline(wait_id)),
        );
        self.arm_progress(out);
        let r = self.waits.get(&wait_id).map(|w| w.resource);
        if let Some(r) = r {
            self.check_waits(r, out);
        }
    }

    /// The API answer to a create, update or delete from etcd's txn answer (`etcd3/store.go`):
    /// the new RV, or AlreadyExists / Conflict / NotFound from a failed txn's compare, 413 for
    /// a request over etcd's limit, 500 otherwise.
    fn write_answer(
        &self,
        resource: ResourceId,
        key: &Key,
        op: WriteOp,
        resp: Result<KvResponse, EtcdError>,
    ) -> ApiResponse {
        let resource_name = &self.resource_names[resource as usize];
        let name = name_of(key);
        match resp {
            Ok(KvResponse::Txn(t)) if t.succeeded => ApiResponse::Written { rv: t.revision },
            Ok(KvResponse::Txn(t)) => {
                let exists = t
                    .responses
                    .iter()
                    .any(|r| matches!(r, TxnOpResult::Range(rr) if rr.count > 0));
                ApiResponse::Error(match op {
                    WriteOp::Create => Status::already_exists(resource_name, name),
                    WriteOp::Update { precondition } | WriteOp::Delete { precondition } => {
                        if exists && precondition {
                            Status::conflict(resource_name, name)
                        } else {
                            Status::not_found(resource_name, name)
                        }
                    }
                })
            }
            Err(EtcdError::RequestTooLarge) => ApiResponse::Error(Status::too_large_request(
                EtcdError::RequestTooLarge.to_string(),
            )),
            Err(e) => ApiResponse::Error(Status::internal(e.to_string())),
            Ok(_) => ApiResponse::Error(Status::internal("unexpected etcd answer".into())),
        }
    }
    pub(super) fn cacher_listed(&mut self, r: ResourceId, range: RangeResult, out: &mut Out<'_>) {
        let rv = range.revision;
        let objects = objects_of(&range);
        self.counters.etcd_read_bytes += range.kvs.iter().map(|kv| kv.value_bytes).sum::<u64>();
        self.counters.cache_initializations += 1;
        let prefix = match self.cachers.get_mut(r as usize) {
            Some(Some(c)) => {
                c.replace(objects, rv, out.now);
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
            !(self.mutants.no_progress_notify_after_restart && self.counters.restarts > 0);
        self.send_etcd_watch(
            WatchRequest::Create {
                watch_id,
                range: KeyRange::Prefix(prefix),
                start_revision: rv + 1,
                progress_notify,
            },
            out,
        );
        self.unpark(r, out);
        self.check_waits(r, out);
    }

    /// Handles a response on the apiserver's etcd watch streams, as watch `watch_id` (a response
    /// multicast to several apiservers is shared: each reads it under its own watch id, and it
    /// is copied only to be kept, by a stalled apiserver or a direct watch).
    pub fn on_etcd_watch(
        &mut self,
        conn: ConnId,
        watch_id: crate::proto::etcd::WatchId,
        resp: &WatchResponse,
        scenario: &Scenario,
        out: &mut Out<'_>,
    ) {
        let own = || WatchResponse {
            watch_id,
            ..resp.clone()
        };
        if Some(conn) == self.direct_stream {
            self.on_direct_watch(own(), out);
            return;
        }
        if Some(conn) != self.etcd_watch {
            return;
        }
        if self.stalled {
            self.held.push_back(own());
            return;
        }
        self.apply_etcd_watch(watch_id, resp, scenario, out);
    }

    /// An answer on the cachers' etcd watch stream (to watch `watch_id`): events into their
    /// cache, progress notifications as storage bookmarks, a cancellation (compacted) as a
    /// failure.
    pub(super) fn apply_etcd_watch(
        &mut self,
        watch_id: crate::proto::etcd::WatchId,
        resp: &WatchResponse,
        _scenario: &Scenario,
        out: &mut Out<'_>,
    ) {
        match &resp.kind {
            WatchResponseKind::Created => {}
            WatchResponseKind::Events(evs) => self.cacher_events(watch_id, evs, out),
            WatchResponseKind::Progress => {
                let targets: Vec<usize> = if watch_id < 0 {
                    (0..self.cachers.len()).collect()
                } else {
                    self.current_cacher(watch_id)
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
                    self.check_waits(r as ResourceId, out);
                }
            }
            WatchResponseKind::Canceled { .. } => {
                // etcd3 interpretWatchError: 410 "The resourceVersion for the provided watch is too
                // old."; the cacher's reflector returns and the cacher re-initialises.
                // The watch id stays registered at etcd until cancelled: release it.
                self.send_etcd_watch(WatchRequest::Cancel { watch_id }, out);
                if let Some(r) = self.current_cacher(watch_id) {
                    self.cacher_failed(r, out);
                }
            }
        }
    }

    /// Asks for the lines handling `resp` (of etcd watch `watch_id`) on `conn` will first read,
    /// at `stage`: its events' keys' text hashes, the cacher's store entries of those keys and
    /// its ring's oldest events. Hints, no effect on the state.
    pub fn prefetch_for_etcd_watch(
        &self,
        conn: ConnId,
        watch_id: i64,
        resp: &WatchResponse,
        stage: Stage,
    ) {
        if Some(conn) != self.etcd_watch {
            return;
        }
        let WatchResponseKind::Events(evs) = &resp.kind else {
            return;
        };
        let Some(c) = self.current_cacher(watch_id).and_then(|r| self.cacher(r)) else {
            return;
        };
        for e in evs.iter().take(PREFETCH_EVENTS) {
            if stage == Stage::Table {
                e.kv.key.prefetch_text_hash();
            }
            c.cache.prefetch_for_event(&e.kv.key, stage);
        }
    }

    /// etcd events for a ready cacher, in order, dispatched to its watchers; an event without
    /// its previous value is refused (`etcd3/event.go parseEvent`): the watch ends with an
    /// error and the cacher re-initialises, as after a compaction.
    fn cacher_events(&mut self, watch_id: i64, evs: &[EtcdEvent], out: &mut Out<'_>) {
        let Some(r) = self.current_cacher(watch_id) else {
            return;
        };
        let Some(Some(c)) = self.cachers.get_mut(r as usize) else {
            return;
        };
        if !c.ready {
            return;
        }
        let mut closed = Vec::new();
        let mut refused = false;
        for e in evs {
            if e.lacks_prev_kv() {
                refused = true;
                break;
            }
            let new = (event_type(e) != EventType::Deleted).then_some(Obj {
                rv: e.kv.mod_revision,
                bytes: e.kv.value_bytes,
                labels: e.kv.value_tag,
            });
            let now = out.now;
            c.process_event(
                now,
                &e.kv.key,
                new,
                |prev| cache_event(e, prev, now),
                out,
                &mut closed,
            );
        }
        for conn in closed {
            self.client_watches.remove(&conn);
        }
        if refused {
            self.send_etcd_watch(WatchRequest::Cancel { watch_id }, out);
            return self.cacher_failed(r, out);
        }
        self.check_waits(r, out);
    }
}

/// The watch cache's event for an etcd event (`etcd3/watcher.go transform`, `cacher.go
/// processEvent`): a DELETED keeps the deleted object's size and labels (`prev`, the cached
/// object), an ADDED / MODIFIED carries the new ones.
fn cache_event(e: &EtcdEvent, prev: Option<Obj>, now: Nanos) -> CacheEvent {
    let kind = event_type(e);
    let prev_labels = prev.map(|o| o.labels).unwrap_or(0);
    let (bytes, labels) = match kind {
        EventType::Deleted => (prev.map(|o| o.bytes).unwrap_or(0), prev_labels),
        _ => (e.kv.value_bytes, e.kv.value_tag),
    };
    CacheEvent {
        kind,
        key: e.kv.key.clone(),
        rv: e.kv.mod_revision,
        bytes,
        prev_rv: prev.map(|o| o.rv).unwrap_or(0),
        labels,
        prev_labels,
        time_ns: now,
    }
}
