//! The reflector's WATCH: where it resumes (`LastSyncResourceVersion`), its timeout of 5-10 min,
//! the events it applies to its store, and what a closed, broken, very short or refused watch leads
//! to (`reflector.go watchHandler`, `handleWatch`).

use super::*;

impl Reflector {
    /// Applies a prepared event if this reflector is watching on `conn` (the common case of a
    /// fan-out); false if the slow path must handle it.
    pub fn apply_fast(&mut self, conn: ConnId, ev: &FastEvent) -> bool {
        let Phase::Watching {
            conn: c, events, ..
        } = &mut self.phase
        else {
            return false;
        };
        if *c != conn {
            return false;
        }
        *events += 1;
        match &mut self.store {
            InformerStore::Digest(d) => {
                if ev.prev_rv > 0 {
                    d.count = d.count.wrapping_sub(1);
                    d.sum = d.sum.wrapping_sub(ev.digest_remove);
                }
                if ev.kind != EventType::Deleted {
                    d.count += 1;
                    d.sum = d.sum.wrapping_add(ev.digest_add);
                }
            }
            store => store.apply(
                ev.kind,
                &ev.key,
                Obj {
                    rv: ev.rv,
                    bytes: ev.bytes,
                    labels: 0,
                },
                ev.prev_rv,
            ),
        }
        self.last_sync_rv = ev.rv;
        self.counters.events += 1;
        true
    }

    /// Whether a [`crate::client::Fleet`] lane can take this reflector's events on `conn`: it
    /// is watching on `conn` with a digest store, so an event changes only the watch's event
    /// count, the digest, the last synced RV and the events counter ([`Self::apply_fast`]).
    pub(crate) fn takes_lane_events_on(&self, conn: ConnId) -> bool {
        matches!(self.phase, Phase::Watching { conn: c, .. } if c == conn)
            && matches!(self.store, InformerStore::Digest(_))
    }

    /// Takes the events a lane took for this reflector since its last fold, as
    /// [`Self::apply_fast`] would have one by one: `events` events on its watch that changed its
    /// digest by `count` objects (wrapping) and `sum`, the last of them at `last_rv`.
    pub(crate) fn take_lane_events(&mut self, events: u64, count: u64, sum: u64, last_rv: i64) {
        if let Phase::Watching { events: e, .. } = &mut self.phase {
            *e += events;
        }
        if let InformerStore::Digest(d) = &mut self.store {
            d.count = d.count.wrapping_add(count);
            d.sum = d.sum.wrapping_add(sum);
        }
        self.last_sync_rv = last_rv;
        self.counters.events += events;
    }

    /// Puts this reflector in the middle of a watch on `conn` (tests of the fan-out's paths).
    #[cfg(test)]
    pub(crate) fn watching_for_test(&mut self, conn: ConnId) {
        self.phase = Phase::Watching {
            conn,
            started_ns: 0,
            events: 0,
            reconnect: false,
            rest_retries: 0,
        };
    }

    /// The RV of a plain watch: the last synced RV ("0" before any sync).
    pub(super) fn watch_rv(&self) -> Rv {
        if self.last_sync_rv > 0 {
            Rv::At(self.last_sync_rv)
        } else {
            Rv::Zero
        }
    }

    pub(super) fn backoff_watch(&mut self, out: &mut Out<'_>) {
        self.clean_resume = false;
        self.rest_retries_next = 0;
        self.close_watch(out);
        self.phase = Phase::Idle;
        let wait = self.backoff.next_wait(out.now, &mut self.rng);
        out.timer(out.now + wait, self.timer(ClientTimer::Watch));
    }

    pub(super) fn close_watch(&mut self, out: &mut Out<'_>) {
        if let Phase::Watching { conn, .. } | Phase::WatchListing { conn, .. } = self.phase
            && out.is_open(conn)
        {
            out.send(conn, Dir::ToServer, Msg::Hangup);
        }
    }

    pub(super) fn open_watch(
        &mut self,
        cfg: &ClientConfig,
        reconnect: bool,
        rest_retries: u32,
        out: &mut Out<'_>,
    ) {
        let Some(server) = self.server else {
            return self.backoff_watch(out);
        };
        let conn = out.connect(self.actor(), Actor::Apiserver(server));
        let timeout_ns = MIN_WATCH_TIMEOUT_NS + self.rng.below(MIN_WATCH_TIMEOUT_NS);
        let req = ApiRequest::Watch {
            resource: self.resource,
            scope: self.scope.clone(),
            selector: Selector::everything(),
            rv: self.watch_rv(),
            bookmarks: cfg.bookmarks,
            send_initial_events: None,
            timeout_ns,
            read_rate: ReadRate::Instant,
        };
        if reconnect {
            self.counters.reconnects += 1;
        }
        self.sent = Some(Sent {
            kind: "watch",
            rv: self.watch_rv(),
            limit: 0,
        });
        out.send(conn, Dir::ToServer, Msg::api(0, req));
        self.phase = Phase::Watching {
            conn,
            started_ns: out.now,
            events: 0,
            reconnect,
            rest_retries,
        };
    }

    pub(super) fn on_watch_reply(
        &mut self,
        resp: ApiResponse,
        cfg: &ClientConfig,
        out: &mut Out<'_>,
    ) -> (&'static str, Effects) {
        let fx = Effects::default();
        match resp {
            ApiResponse::WatchStarted => ("watch_started", fx),
            ApiResponse::Error(status) => {
                let retries = match self.phase {
                    Phase::Watching { rest_retries, .. }
                    | Phase::WatchListing { rest_retries, .. } => rest_retries,
                    _ => 0,
                };
                let watch_list = matches!(self.phase, Phase::WatchListing { .. });
                if let Some(wait) = self.rest_retry(&status, retries) {
                    // client-go's REST client retries the WATCH call itself.
                    self.phase = Phase::Idle;
                    self.rest_retries_next = retries + 1;
                    let t = if watch_list {
                        ClientTimer::WatchList
                    } else {
                        ClientTimer::Watch
                    };
                    out.timer(out.now + wait, self.timer(t));
                    return ("watch_retry_after", fx);
                }
                if watch_list {
                    return self.watch_list_failed(&status, cfg, out);
                }
                if status.code == 429 {
                    self.backoff_watch(out);
                    return ("watch_backoff", fx);
                }
                self.finish_list_and_watch(Some(RelistCause::Error), out);
                ("watch_error", fx)
            }
            _ => ("unexpected", fx),
        }
    }

    pub(super) fn apply_event(
        &mut self,
        kind: EventType,
        key: &Key,
        rv: i64,
        bytes: u64,
        prev_rv: i64,
    ) {
        self.store.apply(
            kind,
            key,
            Obj {
                rv,
                bytes,
                labels: 0,
            },
            prev_rv,
        );
        self.last_sync_rv = rv;
        self.counters.events += 1;
    }

    pub(super) fn on_watch_event(
        &mut self,
        ev: ApiWatchEvent,
        _cfg: &ClientConfig,
        out: &mut Out<'_>,
    ) -> (&'static str, Effects) {
        let mut fx = Effects::default();
        match ev {
            ApiWatchEvent::Object {
                kind,
                key,
                rv,
                bytes,
                prev_rv,
            } => {
                if let Phase::Watching { events, .. } = &mut self.phase {
                    *events += 1;
                }
                // Mutant `reflector_drop_deletes` (tests/invariants.rs): the informer ignores DELETED.
                if self.mutants.reflector_drop_deletes && kind == EventType::Deleted {
                    self.last_sync_rv = rv;
                    fx.event_rv = Some(rv);
                    return ("event", fx);
                }
                self.apply_event(kind, &key, rv, bytes, prev_rv);
                fx.event_rv = Some(rv);
                ("event", fx)
            }
            ApiWatchEvent::Bookmark { rv, .. } => {
                if let Phase::Watching { events, .. } = &mut self.phase {
                    *events += 1;
                }
                self.last_sync_rv = rv;
                ("bookmark", fx)
            }
            ApiWatchEvent::Error(status) => {
                if status.code == 410 {
                    if let Phase::Watching {
                        reconnect: true, ..
                    } = self.phase
                    {
                        self.counters.reconnects_too_old += 1;
                    }
                    self.finish_list_and_watch(Some(RelistCause::TooOld), out);
                    return ("watch_410", fx);
                }
                if status.code == 429 {
                    self.backoff_watch(out);
                    return ("watch_429", fx);
                }
                self.finish_list_and_watch(Some(RelistCause::Error), out);
                ("watch_error_event", fx)
            }
            ApiWatchEvent::Closed => {
                self.watch_ended(false, out);
                ("watch_closed", fx)
            }
        }
    }

    /// The watch stream ended without an error, closed by the server or `broken` with its
    /// connection (client-go's stream decoder takes a reset connection for an EOF,
    /// `utilnet.IsProbableEOF`): re-watch at once (`reflector.go watch`'s loop; a client cut off
    /// or an apiserver down makes that attempt fail with connection refused, and only then does
    /// it back off), unless it was a very short watch (< 1 s, no events), which makes
    /// ListAndWatch return and relist after the backoff.
    pub(super) fn watch_ended(&mut self, broken: bool, out: &mut Out<'_>) {
        let Phase::Watching {
            started_ns, events, ..
        } = self.phase
        else {
            return;
        };
        self.phase = Phase::Idle;
        if out.now.saturating_sub(started_ns) < VERY_SHORT_WATCH_NS && events == 0 {
            self.finish_list_and_watch(Some(RelistCause::Error), out);
            return;
        }
        if broken {
            // The re-watch is a reconnect (P(410 on reconnect)).
            self.clean_resume = false;
        } else {
            self.counters.watch_resumes += 1;
            self.clean_resume = true;
        }
        out.timer(out.now, self.timer(ClientTimer::Watch));
    }
}
