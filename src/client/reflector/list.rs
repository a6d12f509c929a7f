//! The reflector's LIST: the RV and page size of a (re)list (`reflector.go relistResourceVersion`,
//! the pager's page size), pages and their continuation (`pager.go`, `FullListIfExpired`), REST
//! retries (`rest/request.go`), and the end of a list-and-watch round.

use super::*;
use crate::proto::api::ListResult;

impl Reflector {
    /// relistResourceVersion: "" after an unavailable RV, the configured first RV before any
    /// sync, else the last synced RV.
    pub(super) fn relist_rv(&self, cfg: &ClientConfig) -> Rv {
        if self.unavailable {
            Rv::Unset
        } else if self.last_sync_rv == 0 {
            Rv::parse(Some(&cfg.list_rv)).unwrap_or(Rv::Zero)
        } else {
            Rv::At(self.last_sync_rv)
        }
    }

    /// The pager's page size (`reflector.go list`): 500 for RV "" / "0" or when results came
    /// paginated before; 0 (no limit, served from the watch cache) for a relist at a specific RV.
    /// `relist_from_etcd`: mutant `reflector_relist_from_etcd` (Kubernetes #86483, PR #83520's
    /// first form): the relist at the last RV keeps the page size, so the apiserver sends it to
    /// etcd.
    pub(super) fn list_limit(&self, rv: Rv, cfg: &ClientConfig, relist_from_etcd: bool) -> u64 {
        if self.paginated || matches!(rv, Rv::Unset | Rv::Zero) || relist_from_etcd {
            cfg.page_size
        } else {
            0
        }
    }

    pub(super) fn note_relist(&mut self) {
        if self.synced_once || self.pending_cause == Some(RelistCause::Restart) {
            match self.pending_cause.take().unwrap_or(RelistCause::Error) {
                RelistCause::TooOld => self.counters.relists_too_old += 1,
                RelistCause::TooLarge => self.counters.relists_too_large += 1,
                RelistCause::Restart => self.counters.relists_restart += 1,
                RelistCause::Error => self.counters.relists_error += 1,
            }
        }
    }

    pub(super) fn send_list(
        &mut self,
        rv: Rv,
        limit: u64,
        token: Option<ContinueToken>,
        rest_retries: u32,
        acc: OrdMap<Key, Obj>,
        out: &mut Out<'_>,
    ) {
        self.send_list_keep(rv, rv, limit, token, rest_retries, acc, out);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn send_list_keep(
        &mut self,
        rv: Rv,
        first_rv: Rv,
        limit: u64,
        token: Option<ContinueToken>,
        rest_retries: u32,
        acc: OrdMap<Key, Obj>,
        out: &mut Out<'_>,
    ) {
        let req = ApiRequest::List {
            resource: self.resource,
            scope: self.scope.clone(),
            selector: Selector::everything(),
            rv,
            rv_match: None,
            limit,
            continue_token: token.clone(),
        };
        self.counters.list_requests += 1;
        self.sent = Some(Sent {
            kind: if token.is_some() {
                "list-continue"
            } else {
                "list"
            },
            rv,
            limit,
        });
        match self.request(req, out) {
            Some((req_id, conn)) => {
                self.phase = Phase::Listing {
                    req_id,
                    conn,
                    first_rv,
                    limit,
                    token,
                    acc,
                    rest_retries,
                }
            }
            None => self.finish_list_and_watch(Some(RelistCause::Error), out),
        }
    }

    /// ListAndWatch returned: back off (sliding), then run again.
    pub(super) fn finish_list_and_watch(&mut self, cause: Option<RelistCause>, out: &mut Out<'_>) {
        if let Some(c) = cause {
            self.pending_cause = Some(c);
        }
        self.close_watch(out);
        self.phase = Phase::Idle;
        self.rest_retries_next = 0;
        let wait = self.backoff.next_wait(out.now, &mut self.rng);
        out.timer(out.now + wait, self.timer(ClientTimer::ListAndWatch));
    }

    pub(super) fn rest_retry(&self, status: &Status, retries: u32) -> Option<Nanos> {
        match status.retry_after_seconds {
            Some(s) if (status.code == 429 || status.code >= 500) && retries < MAX_REST_RETRIES => {
                Some(s as Nanos * 1_000_000_000)
            }
            _ => None,
        }
    }

    /// The answer to the reflector's LIST (a page of the pager, or an error).
    pub(super) fn on_list_reply(
        &mut self,
        resp: ApiResponse,
        cfg: &ClientConfig,
        out: &mut Out<'_>,
    ) -> (&'static str, Effects) {
        if !matches!(self.phase, Phase::Listing { .. }) {
            return ("stale", Effects::default());
        }
        match resp {
            ApiResponse::List(l) => self.list_page_arrived(l, cfg, out),
            ApiResponse::Error(status) => self.list_refused(status, out),
            _ => ("unexpected", Effects::default()),
        }
    }

    /// A page: the pager asks for the next one while there is a continue token; the last page
    /// replaces the store (`Replace`, synced) and the watch opens at the LIST's RV.
    fn list_page_arrived(
        &mut self,
        l: ListResult,
        cfg: &ClientConfig,
        out: &mut Out<'_>,
    ) -> (&'static str, Effects) {
        let mut fx = Effects::default();
        let Phase::Listing {
            first_rv,
            limit,
            token,
            mut acc,
            ..
        } = self.phase.clone()
        else {
            return ("stale", fx);
        };
        for (k, o) in l.items.iter() {
            acc.insert(k.clone(), *o);
        }
        if let Some(next) = l.continue_token {
            if token.is_none() && first_rv == Rv::Zero {
                self.paginated = true;
            }
            self.send_list_keep(Rv::Unset, first_rv, limit, Some(next), 0, acc, out);
            return ("list_page", fx);
        }
        // A single-page LIST can reuse the server's digest of exactly these items.
        let digest = if token.is_none() { l.digest } else { None };
        self.store.replace_with(&acc, digest);
        self.last_sync_rv = l.rv;
        self.unavailable = false;
        self.synced_once = true;
        fx.listed_rv = Some(l.rv);
        self.open_watch(cfg, false, 0, out);
        ("listed", fx)
    }

    /// An error: retried after Retry-After (429 / 5xx, a few times), a full LIST after an
    /// expired continue token, RV "" after a 410 / 504 on the last synced RV
    /// (`isLastSyncResourceVersionUnavailable`), otherwise ListAndWatch ends and backs off.
    fn list_refused(&mut self, status: Status, out: &mut Out<'_>) -> (&'static str, Effects) {
        let mut fx = Effects::default();
        let Phase::Listing {
            conn,
            first_rv,
            limit,
            token,
            acc,
            rest_retries,
            ..
        } = self.phase.clone()
        else {
            return ("stale", fx);
        };
        if let Some(wait) = self.rest_retry(&status, rest_retries) {
            self.phase = Phase::Listing {
                req_id: 0,
                conn,
                first_rv,
                limit,
                token,
                acc,
                rest_retries: rest_retries + 1,
            };
            out.timer(out.now + wait, self.timer(ClientTimer::RetryList));
            return ("list_retry_after", fx);
        }
        let expired = status.code == 410;
        let too_large = status.code == 504 && status.cause == Some("ResourceVersionTooLarge");
        if too_large && self.mutants.reflector_too_large_rv_no_fallback {
            // Mutant (Kubernetes #91073, before PR #92537): only 410 marks the RV
            // unavailable; the 504 ends ListAndWatch and the relist, after the backoff,
            // asks for the same RV again.
            fx.wants_server = self.server.is_none();
            self.finish_list_and_watch(Some(RelistCause::TooLarge), out);
            return ("list_error", fx);
        }
        if expired && token.is_some() {
            // FullListIfExpired: one unpaginated LIST at the original RV.
            self.send_list_keep(first_rv, first_rv, 0, None, 0, OrdMap::new(), out);
            return ("list_full_after_expired", fx);
        }
        if (expired || too_large) && first_rv != Rv::Unset {
            // isLastSyncResourceVersionUnavailable: retry at once with RV "" on the same pager.
            self.unavailable = true;
            self.pending_cause = Some(if expired {
                RelistCause::TooOld
            } else {
                RelistCause::TooLarge
            });
            self.note_relist();
            self.send_list_keep(Rv::Unset, Rv::Unset, limit, None, 0, OrdMap::new(), out);
            return ("list_fallback_unset", fx);
        }
        fx.wants_server = self.server.is_none();
        self.finish_list_and_watch(Some(RelistCause::Error), out);
        ("list_error", fx)
    }
}
