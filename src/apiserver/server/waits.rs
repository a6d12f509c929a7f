//! Reads waiting for the cache to be fresh enough (`watch_cache.go waitUntilFreshAndBlock`, 3 s
//! then 504 or, for consistent reads, the fallback to etcd) and the progress requester that moves a
//! quiet cache forward (`watch_progress.go`).

use super::*;

impl Apiserver {
    pub(super) fn add_wait(
        &mut self,
        resource: ResourceId,
        target_rv: i64,
        kind: WaitKind,
        out: &mut Out<'_>,
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
        out.timer(
            out.now + BLOCK_TIMEOUT_NS,
            Timer::Apiserver(self.index, ApiTimer::ReadDeadline(id)),
        );
        self.arm_progress(out);
    }

    /// `etcd3/store.go GetCurrentResourceVersion` for the resource under `prefix`: a quorum
    /// LIST of the prefix with limit 1 (1.31-1.36), a Get of the prefix key itself that reads no
    /// object (1.37).
    pub(super) fn current_revision_read(&self, prefix: &Key) -> KvRequest {
        let range = if self.rules.probe_reads_no_object() {
            KeyRange::Single(prefix.clone())
        } else {
            KeyRange::Prefix(prefix.clone())
        };
        KvRequest::Range {
            range,
            revision: 0,
            limit: 1,
        }
    }

    pub(super) fn add_probed_wait(
        &mut self,
        resource: ResourceId,
        kind: WaitKind,
        out: &mut Out<'_>,
    ) {
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
        let req =
            self.current_revision_read(&resource_prefix(&self.resource_names[resource as usize]));
        if !self.send_etcd(req, EtcdPurpose::Probe(id), out) {
            let w = self.waits.remove(&id).expect("just added");
            self.fail_wait(
                w,
                Status::internal("etcdserver: request timed out".into()),
                out,
            );
        }
    }

    /// The conditional progress requester (`cacher/progress/watch_progress.go Run`), which runs
    /// only with consistent reads from cache (etcd must support RequestWatchProgress). Its timer
    /// runs while nobody waits: the first waiter after an idle spell gets a request at once, then
    /// one every 100 ms while anyone waits.
    pub(super) fn arm_progress(&mut self, out: &mut Out<'_>) {
        if self.consistent_list_from_cache && !self.progress_armed && !self.waits.is_empty() {
            self.progress_armed = true;
            out.timer(
                self.progress_timer_ns.max(out.now),
                Timer::Apiserver(self.index, ApiTimer::ProgressRequest),
            );
        }
    }

    pub(super) fn progress_tick(&mut self, out: &mut Out<'_>) {
        self.progress_armed = false;
        if self.waits.is_empty() {
            // `timer.Reset(0)`: the next waiter's request goes out at once.
            self.progress_timer_ns = out.now;
            return;
        }
        self.counters.progress_requests += 1;
        self.progress_timer_ns = out.now + PROGRESS_REQUEST_PERIOD_NS;
        self.send_etcd_watch(WatchRequest::Progress, out);
        self.arm_progress(out);
    }

    /// Serves every wait on `resource` that the cache now satisfies.
    pub(super) fn check_waits(&mut self, resource: ResourceId, out: &mut Out<'_>) {
        let Some(c) = self.cacher(resource) else {
            return;
        };
        if !c.ready {
            return;
        }
        let rv = c.cache.resource_version();
        let due = self.waits.due(resource, rv);
        for id in due {
            if let Some(w) = self.waits.remove(&id) {
                self.serve_wait(w, out);
            }
        }
    }

    pub(super) fn serve_wait(&mut self, w: Wait, out: &mut Out<'_>) {
        match w.kind {
            WaitKind::Get { conn, req_id, key } => {
                self.get_from_cache(conn, req_id, w.resource, &key, out)
            }
            WaitKind::List {
                conn,
                req_id,
                scope,
                selector,
                limit,
                requested,
                exact,
                ..
            } => match exact {
                Some(exact) => self.serve_exact_list(
                    conn, req_id, w.resource, scope, selector, limit, *exact, out,
                ),
                None => {
                    let limit = if requested == Rv::Zero { 0 } else { limit };
                    self.serve_list_from_cache(
                        conn, req_id, w.resource, &scope, &selector, limit, out,
                    );
                }
            },
            WaitKind::Watch {
                conn,
                scope,
                selector,
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
                let spec = WatchSpec {
                    conn,
                    resource: w.resource,
                    scope,
                    selector,
                    bookmarks,
                    deadline_ns,
                    read_rate,
                };
                self.register_watch(spec, initial, out);
            }
        }
    }

    pub(super) fn fail_wait(&mut self, w: Wait, status: Status, out: &mut Out<'_>) {
        match w.kind {
            WaitKind::List { conn, req_id, .. } => self.list_failed(conn, req_id, status, out),
            WaitKind::Get { conn, req_id, .. } => {
                if status.code == 504 {
                    self.counters.too_large_errors += 1;
                }
                self.reply(conn, req_id, ApiResponse::Error(status), out);
            }
            WaitKind::Watch { conn, .. } => {
                if status.code == 504 {
                    self.counters.too_large_errors += 1;
                }
                Cacher::refuse(out, conn, status);
                self.client_watches.remove(&conn);
            }
        }
    }

    pub(super) fn read_deadline(&mut self, id: u64, out: &mut Out<'_>) {
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
                selector,
                limit,
                fallback: true,
                ..
            } => {
                // Consistent read fallback (1.31): the cache did not catch up; ask etcd.
                self.counters.consistent_read_fallbacks += 1;
                let (conn, req_id, limit) = (*conn, *req_id, *limit);
                let (scope, selector) = (scope.clone(), selector.clone());
                self.list_from_etcd(
                    conn,
                    req_id,
                    scope,
                    selector,
                    Rv::Unset,
                    None,
                    limit,
                    None,
                    out,
                );
            }
            _ => {
                let target = w.target_rv;
                self.fail_wait(w, Status::too_large(target, current), out);
            }
        }
    }
}
