//! The reflector's streaming list (`WatchListClient`, client-go 1.35+ default): the initial events
//! up to the annotated bookmark, its errors, and the fall back to LIST (`reflector.go watchList`).

use super::*;

impl Reflector {
    /// The RV of a streaming list (`rewatchResourceVersion`): "" after an unavailable RV or
    /// before any sync, else the last synced RV.
    pub(super) fn watch_list_rv(&self) -> Rv {
        if self.unavailable || self.last_sync_rv == 0 {
            Rv::Unset
        } else {
            Rv::At(self.last_sync_rv)
        }
    }

    pub(super) fn start_watch_list(
        &mut self,
        cfg: &ClientConfig,
        rest_retries: u32,
        out: &mut Out<'_>,
    ) {
        let Some(server) = self.server else {
            return self.backoff_watch_list(out);
        };
        let conn = out.connect(self.actor(), Actor::Apiserver(server));
        let rv = self.watch_list_rv();
        let timeout_ns = MIN_WATCH_TIMEOUT_NS + self.rng.below(MIN_WATCH_TIMEOUT_NS);
        let req = ApiRequest::Watch {
            resource: self.resource,
            scope: self.scope.clone(),
            selector: Selector::everything(),
            rv,
            bookmarks: true,
            send_initial_events: Some(true),
            timeout_ns,
            read_rate: ReadRate::Instant,
        };
        let _ = cfg;
        self.sent = Some(Sent {
            kind: "watch-list",
            rv,
            limit: 0,
        });
        out.send(conn, Dir::ToServer, Msg::api(0, req));
        self.phase = Phase::WatchListing {
            conn,
            started_ns: out.now,
            events: 0,
            acc: InformerStore::new(self.store.mode()),
            rest_retries,
        };
    }

    /// `watchList`'s retriable errors (429, connection refused): wait the backoff, then stream
    /// again (`isErrorRetriableWithSideEffectsFn`: `<-r.clock.After(r.delayHandler())`).
    pub(super) fn backoff_watch_list(&mut self, out: &mut Out<'_>) {
        self.rest_retries_next = 0;
        self.close_watch(out);
        self.phase = Phase::Idle;
        let wait = self.backoff.next_wait(out.now, &mut self.rng);
        out.timer(out.now + wait, self.timer(ClientTimer::WatchList));
    }

    /// `watchList` goes round its loop at once: after a 410 / 504 (with RV "" from now on) or a
    /// stream that ended before its end bookmark.
    pub(super) fn retry_watch_list_now(&mut self, out: &mut Out<'_>) {
        self.rest_retries_next = 0;
        self.close_watch(out);
        self.phase = Phase::Idle;
        out.timer(out.now, self.timer(ClientTimer::WatchList));
    }

    /// `ListAndWatch`'s fallback when `watchList` returns an error: `list()` at once, in the
    /// same ListAndWatch (so not another relist), then a plain watch.
    pub(super) fn fall_back_to_list(&mut self, cfg: &ClientConfig, out: &mut Out<'_>) {
        self.close_watch(out);
        self.phase = Phase::Idle;
        let rv = self.relist_rv(cfg);
        let limit = self.list_limit(rv, cfg, self.mutants.reflector_relist_from_etcd);
        self.send_list(rv, limit, None, 0, OrdMap::new(), out);
    }

    /// An error of the streaming list, as an answer or on the stream (`reflector.go watchList`,
    /// `isErrorRetriableWithSideEffectsFn`): 410 / 504 "too large" mark the RV unavailable and
    /// stream again at once with RV ""; 429 backs off and streams again; anything else makes
    /// ListAndWatch fall back to a LIST at once.
    pub(super) fn watch_list_failed(
        &mut self,
        status: &Status,
        cfg: &ClientConfig,
        out: &mut Out<'_>,
    ) -> (&'static str, Effects) {
        let fx = Effects::default();
        let too_large = status.code == 504 && status.cause == Some("ResourceVersionTooLarge");
        if status.code == 410 || too_large {
            self.unavailable = true;
            self.retry_watch_list_now(out);
            ("watch_list_retry", fx)
        } else if status.code == 429 {
            self.backoff_watch_list(out);
            ("watch_list_backoff", fx)
        } else {
            self.fall_back_to_list(cfg, out);
            ("watch_list_fallback", fx)
        }
    }

    /// The streaming list's stream ended before its end bookmark (closed, or its connection
    /// broke): `handleAnyWatch` returns no error and `watchList` streams again at once, unless
    /// the stream was very short (< 1 s, no events: `VeryShortWatchError`), which makes
    /// ListAndWatch fall back to a LIST.
    pub(super) fn watch_list_ended(
        &mut self,
        cfg: &ClientConfig,
        out: &mut Out<'_>,
    ) -> &'static str {
        let Phase::WatchListing {
            started_ns, events, ..
        } = self.phase
        else {
            return "stale";
        };
        if out.now.saturating_sub(started_ns) < VERY_SHORT_WATCH_NS && events == 0 {
            self.fall_back_to_list(cfg, out);
            "watch_list_fallback"
        } else {
            self.retry_watch_list_now(out);
            "watch_list_retry"
        }
    }

    /// An event on the WatchList stream (`sendInitialEvents=true`): initial events build the
    /// new store until the bookmark that ends them.
    pub(super) fn on_watch_list_event(
        &mut self,
        ev: ApiWatchEvent,
        cfg: &ClientConfig,
        out: &mut Out<'_>,
    ) -> (&'static str, Effects) {
        let Phase::WatchListing { events, acc, .. } = &mut self.phase else {
            return ("stale", Effects::default());
        };
        match ev {
            ApiWatchEvent::Object { .. } => {
                *events += 1;
                take_object(acc, &ev);
                ("initial_event", Effects::default())
            }
            ApiWatchEvent::Bookmark {
                rv,
                initial_events_end: true,
            } => self.watch_list_synced(rv, out),
            ApiWatchEvent::Bookmark { .. } => {
                *events += 1;
                ("bookmark", Effects::default())
            }
            ApiWatchEvent::Error(status) => self.watch_list_failed(&status, cfg, out),
            ApiWatchEvent::Closed => (self.watch_list_ended(cfg, out), Effects::default()),
        }
    }

    /// A batch of initial events on the WatchList stream `conn` while it collects the initial
    /// state: all of them go to the temporary store in one call (a digest store adds the
    /// batch's digest), as [`Self::on_watch_list_event`] would take them one by one. `None`
    /// when the reflector is not collecting on `conn` (the caller then hands the events over
    /// one at a time).
    pub fn on_initial_batch(
        &mut self,
        conn: ConnId,
        batch: &EventBatch,
    ) -> Option<(&'static str, Effects)> {
        let Phase::WatchListing {
            conn: c,
            events,
            acc,
            ..
        } = &mut self.phase
        else {
            return None;
        };
        if *c != conn || batch.events().is_empty() {
            return None;
        }
        *events += batch.events().len() as u64;
        match acc {
            InformerStore::Digest(d) => d.absorb(batch.digest()),
            InformerStore::Map(_) => {
                for ev in batch.events() {
                    take_object(acc, ev);
                }
            }
        }
        Some(("initial_event", Effects::default()))
    }

    /// The initial events' end bookmark: the store is replaced (synced) and the same stream
    /// goes on as a normal watch (`watchWithResync(out, w)`), its `start` taken and its event
    /// count restarted there (`reflector.go watch`).
    fn watch_list_synced(&mut self, rv: i64, out: &mut Out<'_>) -> (&'static str, Effects) {
        let Phase::WatchListing { conn, acc, .. } = &self.phase else {
            return ("stale", Effects::default());
        };
        let conn = *conn;
        self.store = acc.clone();
        self.last_sync_rv = rv;
        self.unavailable = false;
        self.synced_once = true;
        self.phase = Phase::Watching {
            conn,
            started_ns: out.now,
            events: 0,
            reconnect: false,
            rest_retries: 0,
        };
        let fx = Effects {
            listed_rv: Some(rv),
            ..Effects::default()
        };
        ("watch_list_synced", fx)
    }
}

/// An object event of the WatchList stream into the temporary store (labels are not kept).
fn take_object(acc: &mut InformerStore, ev: &ApiWatchEvent) {
    if let ApiWatchEvent::Object {
        kind,
        key,
        rv,
        bytes,
        prev_rv,
    } = ev
    {
        let obj = Obj {
            rv: *rv,
            bytes: *bytes,
            labels: 0,
        };
        acc.apply(*kind, key, obj, *prev_rv);
    }
}
