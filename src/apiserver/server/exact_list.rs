//! LISTs at an exact resource version from the watch cache's snapshots (Kubernetes 1.34+,
//! `ListFromCacheSnapshot`): which LISTs read at an exact RV (`delegator/interface.go
//! ShouldDelegateList`), when they go to etcd, wait or are served (`cacher.go
//! shouldDelegateExactRV`, `watch_cache.go waitAndListExactRV`). The snapshots themselves are in
//! `cache_snapshots.rs`.

use super::*;

/// A LIST served from a snapshot at an exact RV (`watch_cache.go waitAndListExactRV`): the RV,
/// where a continuation resumes, and the request as sent (for the etcd fallback when no snapshot
/// is old enough any more).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct ExactList {
    rv: i64,
    start_after: Option<Key>,
    request_rv: Rv,
    rv_match: Option<RvMatch>,
    continue_token: Option<ContinueToken>,
}

/// The exact RV a LIST reads under `ListFromCacheSnapshot` (`delegator/interface.go
/// ShouldDelegateList`): `resourceVersionMatch=Exact`, a continuation (the token's RV), or the
/// legacy exact form (RV=N with a limit and no match). `None` for every other LIST.
pub(super) fn exact_list(
    rv: Rv,
    rv_match: Option<RvMatch>,
    limit: u64,
    continue_token: Option<&ContinueToken>,
) -> Option<ExactList> {
    let exact = |n: i64, start_after: Option<Key>| ExactList {
        rv: n,
        start_after,
        request_rv: rv,
        rv_match,
        continue_token: continue_token.cloned(),
    };
    match (rv_match, rv, continue_token) {
        (Some(RvMatch::Exact), Rv::At(n), _) => Some(exact(n, None)),
        (None, _, Some(t)) => Some(exact(t.rv, Some(t.start_after.clone()))),
        (None, Rv::At(n), None) if limit > 0 => Some(exact(n, None)),
        _ => None,
    }
}

impl Apiserver {
    /// A LIST at an exact RV under `ListFromCacheSnapshot` (1.34+): `cacher.go
    /// shouldDelegateExactRV` sends it to etcd only when the RV is within the cache but no snapshot
    /// is old enough; above the cache it waits (3 s, then 504 at the cache's RV); otherwise it is
    /// served from the snapshot. A cache that is not ready answers as for any cached LIST.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_exact_list(
        &mut self,
        conn: ConnId,
        req_id: u64,
        resource: ResourceId,
        scope: KeyRange,
        selector: Selector,
        limit: u64,
        exact: ExactList,
        out: &mut Out<'_>,
    ) {
        // `cacher.go ShouldDelegateExactRV` / `ShouldDelegateContinue`: a non-recursive LIST (one
        // object, the registry's `MatchesSingle`) always goes to etcd.
        let single = matches!(scope, KeyRange::Single(_));
        let Some(c) = self.cacher(resource).filter(|_| !single) else {
            return self.exact_list_from_etcd(conn, req_id, scope, selector, limit, exact, out);
        };
        let cache_rv = c.cache.resource_version();
        let fresh = exact.rv <= cache_rv;
        if fresh && !c.cache.can_serve_exact(exact.rv) {
            return self.exact_list_from_etcd(conn, req_id, scope, selector, limit, exact, out);
        }
        if !c.ready {
            // `delegator.go GetList`: shouldDelegateListOnNotReadyCache, else the cacher's 429.
            if delegates_on_not_ready_cache(&scope, &selector, limit) {
                return self.exact_list_from_etcd(conn, req_id, scope, selector, limit, exact, out);
            }
            return self.list_failed(conn, req_id, self.not_ready_status(resource, out.now), out);
        }
        if fresh {
            return self
                .serve_exact_list(conn, req_id, resource, scope, selector, limit, exact, out);
        }
        let target = exact.rv;
        let kind = WaitKind::List {
            conn,
            req_id,
            scope,
            selector,
            limit,
            requested: exact.request_rv,
            fallback: false,
            exact: Some(Box::new(exact)),
        };
        self.add_wait(resource, target, kind, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn exact_list_from_etcd(
        &mut self,
        conn: ConnId,
        req_id: u64,
        scope: KeyRange,
        selector: Selector,
        limit: u64,
        exact: ExactList,
        out: &mut Out<'_>,
    ) {
        self.list_from_etcd(
            conn,
            req_id,
            scope,
            selector,
            exact.request_rv,
            exact.rv_match,
            limit,
            exact.continue_token,
            out,
        );
    }

    /// `waitAndListExactRV`: the page of the snapshot at the RV after `start_after`; the list's
    /// RV is the requested one. No snapshot any more (a re-list in between): `delegator.go` falls
    /// back to etcd on the cacher's 410.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn serve_exact_list(
        &mut self,
        conn: ConnId,
        req_id: u64,
        resource: ResourceId,
        scope: KeyRange,
        selector: Selector,
        limit: u64,
        exact: ExactList,
        out: &mut Out<'_>,
    ) {
        let state = self
            .cacher(resource)
            .and_then(|c| c.cache.state_at(exact.rv));
        let Some(state) = state else {
            return self.exact_list_from_etcd(conn, req_id, scope, selector, limit, exact, out);
        };
        // `cacher.go computeListLimit`: the cache ignores the limit of an RV "0" request (a
        // continuation sent with RV "0" gets the whole rest).
        let limit = if exact.request_rv == Rv::Zero {
            0
        } else {
            limit
        };
        let after = exact.start_after.as_ref();
        let objects = scan_scope(&state, &scope).filter(|(k, _)| after.is_none_or(|a| *k > a));
        let (items, last) = select_page(objects, &selector, limit);
        let continue_token = last.map(|start_after| ContinueToken {
            rv: exact.rv,
            start_after,
            base: token_base(&scope),
        });
        let bytes = list_bytes(&items);
        self.list_done(
            conn,
            req_id,
            ListResult {
                rv: exact.rv,
                items,
                continue_token,
                served_from: ServedFrom::Cache,
                bytes,
                digest: None,
            },
            out,
        );
    }
}
