//! WATCH serving: where a watch starts (`cacher.go Watch`, the RV / sendInitialEvents matrix), its
//! registration with the cacher, hang-ups, the watch timeout, and the requests parked by a not-
//! ready cache under 1.27.

use super::*;

/// A WATCH as it is registered with a cacher, or kept in a wait until the cache is fresh enough.
pub(super) struct WatchSpec {
    pub(super) conn: ConnId,
    pub(super) resource: ResourceId,
    pub(super) scope: KeyRange,
    pub(super) selector: Selector,
    pub(super) bookmarks: bool,
    pub(super) deadline_ns: Nanos,
    pub(super) read_rate: ReadRate,
}

impl WatchSpec {
    /// The wait of this watch until the cache reaches its RV (or etcd's probed revision).
    fn wait(self, at_probed_rv: bool, initial: Initial) -> WaitKind {
        WaitKind::Watch {
            conn: self.conn,
            scope: self.scope,
            selector: self.selector,
            bookmarks: self.bookmarks,
            deadline_ns: self.deadline_ns,
            read_rate: self.read_rate,
            at_probed_rv,
            initial,
        }
    }
}

impl Apiserver {
    /// A WATCH request: refused when sendInitialEvents is not enabled, served from etcd when the
    /// resource has no cacher, refused (1.31+) or parked (1.27) while the cache is not ready,
    /// otherwise started where `cacher.go Watch` starts it.
    pub(super) fn on_watch(
        &mut self,
        conn: ConnId,
        req_id: u64,
        req: ApiRequest,
        out: &mut Out<'_>,
    ) {
        let ApiRequest::Watch {
            resource,
            scope,
            selector,
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
            let refused = ApiResponse::Error(watch_list_forbidden());
            return self.reply(conn, req_id, refused, out);
        }
        let ready = match self.cacher(resource) {
            None => {
                return self.direct_watch(
                    conn,
                    req_id,
                    resource,
                    scope,
                    selector,
                    rv,
                    send_initial_events,
                    bookmarks,
                    timeout_ns,
                    out,
                );
            }
            // Mutant `cacher_watch_during_reinit` (Kubernetes #116122): a cacher that was ready
            // before (generation > 0) and is re-initialising takes the watch on its old state;
            // the fix (PR #116172) checks the ready generation at registration.
            Some(c) => c.ready || (self.mutants.cacher_watch_during_reinit && c.generation > 0),
        };
        if !ready {
            return self.watch_not_ready(conn, req_id, req, out);
        }
        let deadline_ns = out.now + self.watch_timeout(timeout_ns);
        self.reply(conn, req_id, ApiResponse::WatchStarted, out);
        self.client_watches.insert(conn, resource);
        let spec = WatchSpec {
            conn,
            resource,
            scope,
            selector,
            bookmarks,
            deadline_ns,
            read_rate,
        };
        self.start_watch(spec, rv, send_initial_events, out);
    }

    /// A WATCH that finds its cache not ready: 429 with Retry-After under 1.31+ (the ready
    /// wait), parked until the cache is ready under 1.27.
    fn watch_not_ready(&mut self, conn: ConnId, req_id: u64, req: ApiRequest, out: &mut Out<'_>) {
        match self.rules {
            Rules::V1_31 | Rules::V1_34 | Rules::V1_37 => {
                let resource = match &req {
                    ApiRequest::Watch { resource, .. } => *resource,
                    _ => return,
                };
                let status = self.not_ready_status(resource, out.now);
                self.reply(conn, req_id, ApiResponse::Error(status), out);
            }
            Rules::V1_27 => self.parked.push_back(Parked { conn, req_id, req }),
        }
    }

    /// Where a watch starts (`cacher.go Watch`, the RV / sendInitialEvents matrix): a snapshot
    /// of the cache, its current RV, a given RV, or etcd's current revision (probed), waiting
    /// for the cache to catch up where the rules say so.
    fn start_watch(
        &mut self,
        spec: WatchSpec,
        rv: Rv,
        send_initial_events: Option<bool>,
        out: &mut Out<'_>,
    ) {
        let end_bookmark = spec.bookmarks;
        let resource = spec.resource;
        match (rv, send_initial_events) {
            (Rv::Unset | Rv::Zero, None) => {
                let initial = Initial::Snapshot {
                    end_bookmark: false,
                };
                self.register_watch(spec, initial, out)
            }
            (Rv::Zero, Some(false)) => self.register_watch(spec, Initial::Now, out),
            (Rv::Zero, Some(true)) => {
                self.register_watch(spec, Initial::Snapshot { end_bookmark }, out)
            }
            (Rv::Unset, Some(true)) => {
                let kind = spec.wait(false, Initial::Snapshot { end_bookmark });
                self.add_probed_wait(resource, kind, out);
            }
            (Rv::Unset, Some(false)) => {
                // `cacher.go getWatchCacheResourceVersion`: etcd's current revision; no freshness
                // wait without initial events (`waitUntilWatchCacheFreshAndForceAllEvents`).
                self.add_probed_wait(resource, spec.wait(true, Initial::Now), out);
            }
            (Rv::At(n), Some(true)) => {
                let cache_rv = self
                    .cacher(resource)
                    .map(|c| c.cache.resource_version())
                    .unwrap_or(0);
                let initial = Initial::Snapshot { end_bookmark };
                if cache_rv >= n {
                    self.register_watch(spec, initial, out);
                } else {
                    self.add_wait(resource, n, spec.wait(false, initial), out);
                }
            }
            (Rv::At(n), _) => self.register_watch(spec, Initial::Since(n), out),
        }
    }

    /// Registers the watch with its cacher; a too-old start RV is a 410 (counted).
    pub(super) fn register_watch(&mut self, spec: WatchSpec, initial: Initial, out: &mut Out<'_>) {
        let Some(Some(c)) = self.cachers.get_mut(spec.resource as usize) else {
            return;
        };
        let ok = c.add_watcher(
            out.now,
            spec.conn,
            spec.scope,
            spec.selector,
            spec.bookmarks,
            spec.deadline_ns,
            spec.read_rate,
            initial,
            out,
            &mut self.rng,
        );
        if !ok {
            self.counters.too_old_errors += 1;
            self.client_watches.remove(&spec.conn);
        }
    }

    /// A client hung up a watch or request connection.
    pub fn on_hangup(&mut self, conn: ConnId, out: &mut Out<'_>) {
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
                out,
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

    pub(super) fn unpark(&mut self, r: ResourceId, out: &mut Out<'_>) {
        let (now_ready, rest): (Vec<Parked>, Vec<Parked>) =
            self.parked.iter().cloned().partition(|p| match &p.req {
                ApiRequest::List { resource, .. } | ApiRequest::Watch { resource, .. } => {
                    *resource == r
                }
                _ => false,
            });
        self.parked = rest.into_iter().collect();
        for p in now_ready {
            self.on_request(p.conn, p.req_id, p.req, out);
        }
    }

    pub(super) fn send_direct(&mut self, req: WatchRequest, out: &mut Out<'_>) {
        if self.partitioned {
            return;
        }
        let conn = *self
            .direct_stream
            .get_or_insert_with(|| out.open_watch_stream(Actor::Apiserver(self.index)));
        out.send(conn, Dir::ToServer, Msg::Watch(req));
    }

    /// How long a watch runs (`handlers/watch.go serveWatch`): the request's `timeoutSeconds`, or
    /// a random 1-2x `--min-request-timeout` when it sets none.
    pub(super) fn watch_timeout(&mut self, timeout_ns: Nanos) -> Nanos {
        if timeout_ns > 0 {
            timeout_ns
        } else {
            MIN_REQUEST_TIMEOUT_NS + self.rng.below(MIN_REQUEST_TIMEOUT_NS)
        }
    }
}
