//! Watches served straight from etcd when the watch cache is off: the etcd3 store's `watcher`
//! (`k8s.io/apiserver/pkg/storage/etcd3/watcher.go`). Where the watch starts
//! (`getStartWatchResourceVersion`), whether it first sends the current state
//! (`areInitialEventsRequired`) and whether an annotated bookmark ends that state
//! (`isInitialEventsEndBookmarkRequired`) follow the request's `resourceVersion`,
//! `sendInitialEvents` and `allowWatchBookmarks` and the WatchList feature gate.

use super::*;

/// What a direct watch still waits for from etcd before it watches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum DirectInit {
    /// Watching etcd already.
    Watching,
    /// `sendInitialEvents=false` with RV "" or "0" (WatchList on): the current revision
    /// (`getCurrentStorageRV`), then events after it, no initial state.
    CurrentRv,
    /// `watchChan.sync`: the current state as ADDED events, then (if asked) the annotated
    /// bookmark at the read's revision, then events after it. `min_rv` is a requested RV=N that
    /// must not be above etcd's revision (`startWatching`: else 504 "Too large resource
    /// version" on the stream).
    Sync {
        min_rv: Option<i64>,
        end_bookmark: bool,
    },
}

/// One client watch served from etcd: its resource, the objects it selects, and how far its
/// start has got.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct DirectWatch {
    resource: ResourceId,
    scope: KeyRange,
    selector: Selector,
    init: DirectInit,
}

/// How `etcd3/watcher.go Watch` starts a watch for these options (`watch_list` = the WatchList
/// gate): `None` to watch etcd from `rv + 1` at once, else what to read first.
pub(super) fn direct_init(
    watch_list: bool,
    rv: Rv,
    send_initial_events: Option<bool>,
    bookmarks: bool,
) -> DirectInit {
    let rev = match rv {
        Rv::At(n) => n,
        Rv::Unset | Rv::Zero => 0,
    };
    // areInitialEventsRequired: the legacy RV 0/"" watch, or sendInitialEvents=true.
    let initial_events = (send_initial_events.is_none() && rev == 0)
        || (watch_list && send_initial_events == Some(true));
    // isInitialEventsEndBookmarkRequired.
    let end_bookmark = watch_list && send_initial_events == Some(true) && bookmarks;
    if initial_events {
        DirectInit::Sync {
            min_rv: (rev > 0).then_some(rev),
            end_bookmark,
        }
    } else if rev > 0 {
        DirectInit::Watching
    } else {
        // getStartWatchResourceVersion: sendInitialEvents=false starts at the current revision.
        DirectInit::CurrentRv
    }
}

impl Apiserver {
    /// A direct watch's deadline passed: its etcd watch is cancelled and the client's stream
    /// closed.
    pub(super) fn direct_watch_deadline(
        &mut self,
        conn: ConnId,
        out: &mut Out<'_>,
    ) -> &'static str {
        if self.direct_watches.remove(&conn).is_none() {
            return "direct_watch.gone";
        }
        self.send_direct(
            WatchRequest::Cancel {
                watch_id: conn as i64,
            },
            out,
        );
        out.send(conn, Dir::ToClient, Msg::ApiWatch(ApiWatchEvent::Closed));
        "direct_watch.deadline"
    }

    /// Watch cache off: the watch goes to etcd (`etcd3/watcher.go`), started as [`direct_init`]
    /// says. A selector scope (per-node) reads and watches its whole directory and is matched
    /// here (`watchChan` filters with the predicate). The watch handler ends it at the request's
    /// `timeoutSeconds` (or a random 1-2x `--min-request-timeout`), as it ends a cached watch
    /// (`handlers/watch.go serveWatch`). etcd3 sends no periodic bookmarks.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn direct_watch(
        &mut self,
        conn: ConnId,
        req_id: u64,
        resource: ResourceId,
        scope: KeyRange,
        selector: Selector,
        rv: Rv,
        send_initial_events: Option<bool>,
        bookmarks: bool,
        timeout_ns: Nanos,
        out: &mut Out<'_>,
    ) {
        self.reply(conn, req_id, ApiResponse::WatchStarted, out);
        let init = direct_init(self.watch_list, rv, send_initial_events, bookmarks);
        let timeout = self.watch_timeout(timeout_ns);
        out.timer(
            out.now + timeout,
            Timer::Apiserver(self.index, ApiTimer::DirectWatchDeadline(conn)),
        );
        let read = match (&init, rv) {
            (DirectInit::Watching, Rv::At(n)) => {
                // check: a direct watch from N delivers every change after N.
                out.notice(crate::proto::Notice::WatchStarted {
                    conn,
                    start_rv: n,
                    initial_events: 0,
                });
                self.send_direct(
                    WatchRequest::Create {
                        watch_id: conn as i64,
                        range: storage_range(&scope),
                        start_revision: n + 1,
                        progress_notify: false,
                    },
                    out,
                );
                None
            }
            (DirectInit::CurrentRv, _) => {
                // GetCurrentResourceVersion, as the consistent-read probe reads it.
                let prefix = resource_prefix(&self.resource_names[resource as usize]);
                Some(if self.rules.probe_reads_no_object() {
                    KeyRange::Single(prefix)
                } else {
                    KeyRange::Prefix(prefix)
                })
            }
            _ => Some(storage_range(&scope)),
        };
        let limit = if init == DirectInit::CurrentRv { 1 } else { 0 };
        self.direct_watches.insert(
            conn,
            DirectWatch {
                resource,
                scope,
                selector,
                init,
            },
        );
        if let Some(range) = read {
            let req = KvRequest::Range {
                range,
                revision: 0,
                limit,
            };
            if !self.send_etcd(req, EtcdPurpose::DirectWatchInit(conn), out) {
                self.direct_watches.remove(&conn);
                Cacher::refuse(
                    out,
                    conn,
                    Status::internal("etcdserver: request timed out".into()),
                );
            }
        }
    }

    /// etcd answered a direct watch's first read: send what [`DirectInit`] asks for, then
    /// watch etcd from the read's revision + 1.
    pub(super) fn direct_watch_listed(
        &mut self,
        conn: ConnId,
        range: RangeResult,
        out: &mut Out<'_>,
    ) {
        let Some(w) = self.direct_watches.get(&conn).cloned() else {
            return;
        };
        let rev = range.revision;
        if let DirectInit::Sync {
            min_rv,
            end_bookmark,
        } = w.init
        {
            if let Some(n) = min_rv.filter(|&n| n > rev) {
                // startWatching: 504 on the stream, then the stream ends.
                self.direct_watches.remove(&conn);
                self.counters.too_large_errors += 1;
                let status = Status::too_large(n, rev);
                out.send(
                    conn,
                    Dir::ToClient,
                    Msg::ApiWatch(ApiWatchEvent::Error(status)),
                );
                out.send(conn, Dir::ToClient, Msg::ApiWatch(ApiWatchEvent::Closed));
                return;
            }
            self.counters.etcd_read_bytes += range.kvs.iter().map(|kv| kv.value_bytes).sum::<u64>();
            let matched: Vec<&KeyValue> = range
                .kvs
                .iter()
                .filter(|kv| w.scope.contains(&kv.key) && w.selector.matches(&kv.key, kv.value_tag))
                .collect();
            // check: the initial ADDED events are the state at the read's revision.
            out.notice(crate::proto::Notice::WatchStarted {
                conn,
                start_rv: rev,
                initial_events: matched.len() as u64,
            });
            for kv in matched {
                let ev = ApiWatchEvent::Object {
                    kind: EventType::Added,
                    key: kv.key.clone(),
                    rv: kv.mod_revision,
                    bytes: kv.value_bytes,
                    prev_rv: 0,
                };
                out.send(conn, Dir::ToClient, Msg::ApiWatch(ev));
            }
            if end_bookmark {
                let ev = ApiWatchEvent::Bookmark {
                    rv: rev,
                    initial_events_end: true,
                };
                out.send(conn, Dir::ToClient, Msg::ApiWatch(ev));
            }
        }
        if w.init == DirectInit::CurrentRv {
            out.notice(crate::proto::Notice::WatchStarted {
                conn,
                start_rv: rev,
                initial_events: 0,
            });
        }
        if let Some(w) = self.direct_watches.get_mut(&conn) {
            w.init = DirectInit::Watching;
        }
        self.send_direct(
            WatchRequest::Create {
                watch_id: conn as i64,
                range: storage_range(&w.scope),
                start_revision: rev + 1,
                progress_notify: false,
            },
            out,
        );
    }

    /// An etcd watch response for a direct watch: its events (matched against the watch's
    /// scope), or the cancellation of a compacted start (410 on the stream, then the end).
    pub(super) fn on_direct_watch(&mut self, resp: WatchResponse, out: &mut Out<'_>) {
        let conn = resp.watch_id as ConnId;
        let Some(w) = self.direct_watches.get(&conn).cloned() else {
            return;
        };
        match resp.kind {
            WatchResponseKind::Events(evs) => {
                for e in evs.iter().filter(|e| w.scope.contains(&e.kv.key)) {
                    if e.lacks_prev_kv() {
                        // `etcd3/event.go parseEvent`, `watcher.go sendError`: a 500 on the
                        // stream, which then ends.
                        let kind = match e.kind {
                            EventKind::Put => "PUT",
                            EventKind::Delete => "DELETE",
                        };
                        let status = Status::internal_error(&format!(
                            "etcd event received with PrevKv=nil (key={:?}, modRevision={}, \
                             type={kind})",
                            e.kv.key.as_str(),
                            e.kv.mod_revision
                        ));
                        self.direct_watches.remove(&conn);
                        let watch_id = conn as i64;
                        self.send_direct(WatchRequest::Cancel { watch_id }, out);
                        let error = ApiWatchEvent::Error(status);
                        out.send(conn, Dir::ToClient, Msg::ApiWatch(error));
                        out.send(conn, Dir::ToClient, Msg::ApiWatch(ApiWatchEvent::Closed));
                        return;
                    }
                    // `transform`: the event as the selector sees it, from the new object and
                    // the `prev_kv` the watcher asks etcd for (`WithPrevKV`).
                    let prev = e.prev;
                    let (labels, bytes) = match e.kind {
                        EventKind::Delete => prev.map_or((0, 0), |p| (p.value_tag, p.value_bytes)),
                        EventKind::Put => (e.kv.value_tag, e.kv.value_bytes),
                    };
                    let prev_labels = prev.map(|p| p.value_tag);
                    let Some(kind) =
                        w.selector
                            .convert(&e.kv.key, event_type(e), labels, prev_labels)
                    else {
                        continue;
                    };
                    let bytes = match (kind, prev) {
                        (EventType::Deleted, Some(p)) => p.value_bytes,
                        _ => bytes,
                    };
                    let ev = ApiWatchEvent::Object {
                        kind,
                        key: e.kv.key.clone(),
                        rv: e.kv.mod_revision,
                        bytes,
                        prev_rv: prev.map_or(0, |p| p.mod_revision),
                    };
                    out.send(conn, Dir::ToClient, Msg::ApiWatch(ev));
                }
            }
            WatchResponseKind::Canceled { .. } => {
                self.direct_watches.remove(&conn);
                self.counters.too_old_errors += 1;
                out.send(
                    conn,
                    Dir::ToClient,
                    Msg::ApiWatch(ApiWatchEvent::Error(Status::watch_too_old_etcd())),
                );
                out.send(conn, Dir::ToClient, Msg::ApiWatch(ApiWatchEvent::Closed));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `etcd3/watcher.go` getStartWatchResourceVersion, areInitialEventsRequired and
    /// isInitialEventsEndBookmarkRequired, for each combination of RV and sendInitialEvents.
    #[test]
    fn direct_watch_start_follows_the_etcd3_watcher_rules() {
        use DirectInit::*;
        let sync = |min_rv, end_bookmark| Sync {
            min_rv,
            end_bookmark,
        };
        // Legacy RV ""/"0" (gate off or no sendInitialEvents): the state, no end bookmark.
        assert_eq!(direct_init(false, Rv::Unset, None, true), sync(None, false));
        assert_eq!(direct_init(true, Rv::Zero, None, true), sync(None, false));
        // RV=N without sendInitialEvents: events after N.
        assert_eq!(direct_init(true, Rv::At(7), None, true), Watching);
        assert_eq!(direct_init(true, Rv::At(7), Some(false), true), Watching);
        // sendInitialEvents=true: the current state even for RV=N, which must not be above it;
        // the end bookmark only when bookmarks were asked for.
        assert_eq!(
            direct_init(true, Rv::At(7), Some(true), true),
            sync(Some(7), true)
        );
        assert_eq!(
            direct_init(true, Rv::Unset, Some(true), false),
            sync(None, false)
        );
        // sendInitialEvents=false with RV "": the current revision, no state.
        assert_eq!(direct_init(true, Rv::Unset, Some(false), true), CurrentRv);
        assert_eq!(direct_init(true, Rv::Zero, Some(false), false), CurrentRv);
    }
}
