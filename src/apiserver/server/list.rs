//! LIST serving: routing a LIST to the watch cache or etcd (`cacher/delegator.go GetList`,
//! `rules.rs`), the cache's pages (`cacher.go GetList`), etcd's pages with a selector
//! (`etcd3/store.go GetList`), and the response's encoding time and memory.

use super::*;

/// `delegator.go shouldDelegateListOnNotReadyCache`: a LIST with a limit and no label or field
/// selector (`Predicate.Label.Empty() && Predicate.Field.Empty()`) goes to etcd while the cache is
/// not ready. A namespace is not a selector (the registry
/// puts it in the key).
pub(super) fn delegates_on_not_ready_cache(
    scope: &KeyRange,
    selector: &Selector,
    limit: u64,
) -> bool {
    selector_directory(scope).is_none() && selector.is_everything() && limit > 0
}

/// The directory an etcd LIST of `scope` reads when `scope` is narrower than one: etcd3
/// `store.go` `GetList` reads a resource's (or a namespace's) directory, its key ending in `/`, and
/// a field selector such as a kubelet's `spec.nodeName` is matched in the apiserver after the
/// read. A prefix that does not end in `/` can only be such a selector (per-node scopes).
pub(super) fn selector_directory(scope: &KeyRange) -> Option<Key> {
    let prefix = match scope {
        KeyRange::Prefix(p) | KeyRange::PrefixAfter { prefix: p, .. } => p.as_str(),
        KeyRange::Single(_) => return None,
    };
    if prefix.is_empty() || prefix.ends_with('/') {
        return None;
    }
    prefix.rfind('/').map(|i| Key::new(&prefix[..=i]))
}

/// The resource's key prefix (`/registry/<resource>/`) of a scope's keys.
fn resource_root(scope: &KeyRange) -> Key {
    let key = scope.start().as_str();
    let end = key
        .match_indices('/')
        .nth(2)
        .map_or(key.len(), |(i, _)| i + 1);
    Key::new(&key[..end])
}

/// The key a LIST of `scope` passes to storage (`KeyRootFunc` or the object's key), to which
/// its continue token is relative.
pub(super) fn token_base(scope: &KeyRange) -> Key {
    read_directory(scope).unwrap_or_else(|| scope.start().clone())
}

/// The directory a filtered etcd LIST pages through (`GetList`'s loop): a selector scope's
/// directory, or the scope's own prefix; none for a single key (a non-recursive read).
pub(super) fn read_directory(scope: &KeyRange) -> Option<Key> {
    selector_directory(scope).or_else(|| match scope {
        KeyRange::Prefix(p) | KeyRange::PrefixAfter { prefix: p, .. } => Some(p.clone()),
        KeyRange::Single(_) => None,
    })
}

/// The key range etcd reads or watches for `scope`: its directory for a selector scope, else the
/// scope itself.
pub(super) fn storage_range(scope: &KeyRange) -> KeyRange {
    selector_directory(scope)
        .map(KeyRange::Prefix)
        .unwrap_or_else(|| scope.clone())
}

/// `cacher.go GetList`'s selection from the cache: the objects of `objects` (key order) that
/// `selector` matches, at most `limit` of them (0 = all), and the key a continuation resumes
/// after: the last selected one, when objects (matching or not) remain after it
/// (`hasMoreListItems = i < len(resp.Items)-1`).
pub(super) fn select_page<'a>(
    objects: impl Iterator<Item = (&'a Key, &'a Obj)>,
    selector: &Selector,
    limit: u64,
) -> (OrdMap<Key, Obj>, Option<Key>) {
    let mut items = OrdMap::new();
    for (k, o) in objects {
        if limit > 0 && items.len() as u64 == limit {
            let last = items.keys().next_back().cloned();
            return (items, last);
        }
        if selector.matches(k, o.labels) {
            items.insert(k.clone(), *o);
        }
    }
    (items, None)
}

pub(super) fn list_bytes(items: &OrdMap<Key, Obj>) -> u64 {
    items.values().map(|o| o.bytes).sum()
}

impl Apiserver {
    pub(super) fn list_started(&mut self) {
        self.counters.lists_in_flight += 1;
        self.counters.lists_in_flight_max = self
            .counters
            .lists_in_flight_max
            .max(self.counters.lists_in_flight);
    }

    pub(super) fn list_failed(
        &mut self,
        conn: ConnId,
        req_id: u64,
        status: Status,
        out: &mut Out<'_>,
    ) {
        self.counters.lists_in_flight = self.counters.lists_in_flight.saturating_sub(1);
        self.reply(conn, req_id, ApiResponse::Error(status), out);
    }

    /// A LIST result leaves after encoding (`bytes / list_serve_bytes_per_second`, after its
    /// turn for an encoder when `apiserver.list_encoders` limits them), holding its temporary
    /// memory until then.
    pub(super) fn list_done(
        &mut self,
        conn: ConnId,
        req_id: u64,
        result: ListResult,
        out: &mut Out<'_>,
    ) {
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
        let encoding =
            (result.bytes as u128 * 1_000_000_000 / self.list_bytes_per_second as u128) as Nanos;
        let delay = self.encoder_turn(out.now, encoding) - out.now;
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
        out.timer(
            out.now + delay,
            Timer::Apiserver(self.index, ApiTimer::ListSent(id)),
        );
    }

    /// When a response that takes `encoding` to encode, ready at `now`, has been encoded: at
    /// once without an encoder limit; otherwise on the encoder free first (the lowest-numbered
    /// among equals), after the responses already queued on it.
    fn encoder_turn(&mut self, now: Nanos, encoding: Nanos) -> Nanos {
        let free_at = &mut self.encoders_free_at.0;
        let Some((slot, _)) = free_at.iter().enumerate().min_by_key(|(i, t)| (**t, *i)) else {
            return now + encoding;
        };
        let done = free_at[slot].max(now) + encoding;
        free_at[slot] = done;
        done
    }

    pub(super) fn list_sent(&mut self, id: u64, out: &mut Out<'_>) {
        if let Some(s) = self.sending.remove(&id) {
            self.counters.list_memory_bytes -= s.memory_bytes;
            self.counters.lists_in_flight = self.counters.lists_in_flight.saturating_sub(1);
            out.send(
                s.conn,
                Dir::ToClient,
                Msg::api_reply(s.req_id, ApiResponse::List(s.result)),
            );
        }
    }

    /// A LIST arrived (`cacher.go GetList`, `delegator.go`): validated, served from the cache's
    /// snapshots at an exact RV (1.34+), sent to etcd when delegated or when there is no ready
    /// cache to serve it, otherwise served from the cache.
    pub(super) fn on_list(
        &mut self,
        conn: ConnId,
        req_id: u64,
        req: ApiRequest,
        out: &mut Out<'_>,
    ) {
        let ApiRequest::List {
            resource,
            scope,
            selector,
            rv,
            rv_match,
            limit,
            continue_token,
        } = req.clone()
        else {
            return;
        };
        // `storage.DecodeContinue`: the token's key is relative to the prefix of the LIST that
        // issued it and is resumed under this LIST's own prefix.
        let continue_token = continue_token.map(|t| t.resolved_against(&token_base(&scope)));
        self.list_started();
        if let Err(status) = validate_list(rv, rv_match, continue_token.is_some()) {
            return self.list_failed(conn, req_id, status, out);
        }
        if continue_token.is_some() && matches!(rv, Rv::At(_)) {
            return self.list_failed(conn, req_id, Status::continue_with_rv(), out);
        }
        if self.rules.list_from_cache_snapshots()
            && let Some(exact) = exact_list(rv, rv_match, limit, continue_token.as_ref())
        {
            return self.on_exact_list(conn, req_id, resource, scope, selector, limit, exact, out);
        }
        let delegate = should_delegate_list(
            self.rules,
            self.consistent_list_from_cache,
            rv,
            rv_match,
            limit,
            continue_token.as_ref(),
        );
        match self.list_goes_to_etcd(conn, req_id, req, delegate, out) {
            Some(true) => self.list_from_etcd(
                conn,
                req_id,
                scope,
                selector,
                rv,
                rv_match,
                limit,
                continue_token,
                out,
            ),
            Some(false) => {
                self.list_on_cache(conn, req_id, resource, scope, selector, rv, limit, out)
            }
            None => {}
        }
    }

    /// Where a LIST goes: etcd (no cache, delegated, or a not-ready cache's fallbacks) or the
    /// cache; None when it was refused (1.31+: 429 while not ready, unless it can be delegated)
    /// or parked until the cache is ready (1.27).
    fn list_goes_to_etcd(
        &mut self,
        conn: ConnId,
        req_id: u64,
        req: ApiRequest,
        delegate: bool,
        out: &mut Out<'_>,
    ) -> Option<bool> {
        let ApiRequest::List {
            resource,
            scope,
            selector,
            rv,
            limit,
            ..
        } = &req
        else {
            return None;
        };
        match self.cacher(*resource).map(|c| c.ready) {
            None => Some(true),
            Some(_) if delegate => Some(true),
            Some(true) => Some(false),
            Some(false) => match self.rules {
                Rules::V1_31 | Rules::V1_34 | Rules::V1_37 => {
                    if delegates_on_not_ready_cache(scope, selector, *limit) {
                        return Some(true);
                    }
                    let status = self.not_ready_status(*resource, out.now);
                    self.list_failed(conn, req_id, status, out);
                    None
                }
                Rules::V1_27 if *rv == Rv::Zero => Some(true),
                Rules::V1_27 => {
                    self.counters.lists_in_flight -= 1;
                    self.parked.push_back(Parked { conn, req_id, req });
                    None
                }
            },
        }
    }

    /// A LIST the ready cache serves: RV "0" at once (no limit), RV N once the cache has
    /// reached N, RV unset as a consistent read (etcd's revision probed, then waited for).
    #[allow(clippy::too_many_arguments)]
    fn list_on_cache(
        &mut self,
        conn: ConnId,
        req_id: u64,
        resource: ResourceId,
        scope: KeyRange,
        selector: Selector,
        rv: Rv,
        limit: u64,
        out: &mut Out<'_>,
    ) {
        let cache_rv = self
            .cacher(resource)
            .map(|c| c.cache.resource_version())
            .unwrap_or(0);
        let wait = |fallback| WaitKind::List {
            conn,
            req_id,
            scope: scope.clone(),
            selector: selector.clone(),
            limit,
            requested: rv,
            fallback,
            exact: None,
        };
        match rv {
            Rv::Zero => {
                self.serve_list_from_cache(conn, req_id, resource, &scope, &selector, 0, out)
            }
            Rv::At(n) if cache_rv >= n => {
                self.serve_list_from_cache(conn, req_id, resource, &scope, &selector, limit, out)
            }
            Rv::At(n) => self.add_wait(resource, n, wait(false), out),
            Rv::Unset if self.mutants.consistent_list_without_wait => {
                // Mutant: served from the cache as it is, without the freshness wait.
                self.serve_list_from_cache(conn, req_id, resource, &scope, &selector, limit, out)
            }
            // Consistent read from cache: probe etcd's current revision, then wait for it.
            Rv::Unset => self.add_probed_wait(resource, wait(true), out),
        }
    }

    /// The 429 of a cache that is not ready: Retry-After 1 up to 1.32; from 1.33 it grows with
    /// the time since the cache became not ready (`cacher.go GetList`/`Watch`,
    /// `util.go calculateRetryAfterForUnreadyCache`).
    pub(super) fn not_ready_status(&self, resource: ResourceId, now: Nanos) -> Status {
        match self.cacher(resource) {
            Some(c) if self.rules.growing_retry_after() => {
                Status::reinitializing_for(now.saturating_sub(c.state_changed_ns))
            }
            _ => Status::reinitializing(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn serve_list_from_cache(
        &mut self,
        conn: ConnId,
        req_id: u64,
        resource: ResourceId,
        scope: &KeyRange,
        selector: &Selector,
        limit: u64,
        out: &mut Out<'_>,
    ) {
        let Some(c) = self.cacher(resource) else {
            return;
        };
        let rv = c.cache.resource_version();
        let limit = if self.rules.is_1_27() { 0 } else { limit };
        let store = c.cache.store().ordered();
        if !selector.is_everything() {
            let (items, last) = select_page(scan_scope(&store, scope), selector, limit);
            let continue_token = last.map(|start_after| ContinueToken {
                rv,
                start_after,
                base: token_base(scope),
            });
            let bytes = list_bytes(&items);
            let result = ListResult {
                rv,
                items,
                continue_token,
                served_from: ServedFrom::Cache,
                bytes,
                digest: None,
            };
            return self.list_done(conn, req_id, result, out);
        }
        let whole = matches!(scope, KeyRange::Prefix(p) if *p == c.prefix);
        let mut items: OrdMap<Key, Obj> = if whole {
            store.clone()
        } else {
            scan_scope(&store, scope)
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
                base: token_base(scope),
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
            out,
        );
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn list_from_etcd(
        &mut self,
        conn: ConnId,
        req_id: u64,
        scope: KeyRange,
        selector: Selector,
        rv: Rv,
        rv_match: Option<RvMatch>,
        limit: u64,
        continue_token: Option<ContinueToken>,
        out: &mut Out<'_>,
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
                // `resolveGetListRev`: the legacy exact form (RV=N with a limit) only for a
                // recursive LIST; a single-key one (`MatchesSingle`) reads the latest revision.
                let recursive = !matches!(scope, KeyRange::Single(_));
                let exact = match (rv, rv_match) {
                    (Rv::At(n), Some(RvMatch::Exact)) => Some(n),
                    (Rv::At(n), None) if limit > 0 && recursive => Some(n),
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
            selector,
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
        self.send_list_read(req, purpose, conn, req_id, out);
    }

    /// Sends one range read of a client's LIST to etcd; the LIST fails (500) when etcd cannot be
    /// reached.
    pub(super) fn send_list_read(
        &mut self,
        req: KvRequest,
        purpose: EtcdPurpose,
        conn: ConnId,
        req_id: u64,
        out: &mut Out<'_>,
    ) {
        if !self.send_etcd(req, purpose, out) {
            self.list_failed(
                conn,
                req_id,
                Status::internal("etcdserver: request timed out".into()),
                out,
            );
        }
    }

    /// The next page of a selector LIST from etcd (`GetList`'s loop): the keys after `after` in
    /// `dir`, at the first page's revision, twice as many as last time (up to 10,000).
    pub(super) fn next_list_page(
        &mut self,
        cl: ClientList,
        dir: Key,
        after: Key,
        rv: i64,
        matched: OrdMap<Key, Obj>,
        out: &mut Out<'_>,
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
        self.send_list_read(req, purpose, conn, req_id, out);
    }

    /// etcd answered a client's LIST read: a page is made (or the next page read, when a
    /// selector's matches do not fill it yet); errors become the LIST's status.
    pub(super) fn client_list_answered(
        &mut self,
        cl: ClientList,
        resp: Result<KvResponse, EtcdError>,
        out: &mut Out<'_>,
    ) {
        match resp {
            Ok(KvResponse::Range(r)) => self.client_list_read(cl, r, out),
            Err(EtcdError::Compacted { .. }) => {
                let status = if cl.paging {
                    Status::continue_too_old()
                } else {
                    Status::list_too_old_etcd()
                };
                self.list_failed(cl.conn, cl.req_id, status, out);
            }
            Err(e @ EtcdError::FutureRevision) => {
                // A read pinned above etcd's revision (Exact, legacy exact, a continuation).
                // 1.34+ (`etcd3/store.go listReadError`): GetCurrentResourceVersion, then 504
                // "Too large resource version: N, current: C" without Retry-After; before, the
                // error is not interpreted and the handler answers a 500 with etcd's text
                // (`responsewriters.ErrorToAPIStatus`: reason unknown).
                let rv = cl.at_rv.unwrap_or(0);
                if self.rules.list_from_cache_snapshots() {
                    let req = self.current_revision_read(&resource_root(&cl.scope));
                    let purpose = EtcdPurpose::FutureRevisionProbe {
                        conn: cl.conn,
                        req_id: cl.req_id,
                        rv,
                    };
                    self.send_list_read(req, purpose, cl.conn, cl.req_id, out);
                } else {
                    self.list_failed(cl.conn, cl.req_id, Status::unknown(e.to_string()), out);
                }
            }
            Err(e) => self.list_failed(cl.conn, cl.req_id, Status::internal(e.to_string()), out),
            Ok(_) => self.list_failed(
                cl.conn,
                cl.req_id,
                Status::internal("unexpected etcd answer".into()),
                out,
            ),
        }
    }

    /// The keys etcd read for a client's LIST: a minimum RV the read did not reach is a 504; a
    /// selector is matched here, after the read; the page and its continue token are answered.
    fn client_list_read(&mut self, cl: ClientList, r: RangeResult, out: &mut Out<'_>) {
        let list_rv = cl.at_rv.unwrap_or(r.revision);
        if let Some(min) = cl.min_rv
            && r.revision < min
        {
            let status = Status::too_large_from_etcd(min, r.revision);
            return self.list_failed(cl.conn, cl.req_id, status, out);
        }
        let read = objects_of(&r);
        self.counters.etcd_read_bytes += list_bytes(&read);
        let filtered = !cl.selector.is_everything() || selector_directory(&cl.scope).is_some();
        let (items, more, last_key) = if filtered {
            let (matched, full, last) = match_page(&cl, read);
            // A page that ends with the bucket exactly full ends the LIST too.
            if r.more
                && !full
                && cl.limit > 0
                && (matched.len() as u64) < cl.limit
                && let Some(after) = last.clone()
                && let Some(dir) = read_directory(&cl.scope)
            {
                return self.next_list_page(cl, dir, after, list_rv, matched, out);
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
                base: token_base(&cl.scope),
            }),
            _ => None,
        };
        let result = ListResult {
            rv: list_rv,
            items,
            continue_token,
            served_from: ServedFrom::Etcd,
            digest: None,
            bytes,
        };
        self.list_done(cl.conn, cl.req_id, result, out);
    }
}

/// A selector's matches among the keys read, added to the pages' matches so far. As `GetList`:
/// `limit` counts matches; keys stop being examined once `limit` matched (`full`: more remain),
/// and the LIST continues from the last key examined.
fn match_page(cl: &ClientList, read: OrdMap<Key, Obj>) -> (OrdMap<Key, Obj>, bool, Option<Key>) {
    let mut matched = cl.matched.clone();
    let (mut last, mut full) = (None, false);
    for (k, o) in read {
        if cl.limit > 0 && matched.len() as u64 >= cl.limit {
            full = true;
            break;
        }
        last = Some(k.clone());
        if cl.scope.contains(&k) && cl.selector.matches(&k, o.labels) {
            matched.insert(k, o);
        }
    }
    (matched, full, last)
}
