//! One client-go reflector and its informer store (`tools/cache/reflector.go`, `tools/pager`,
//! k8s-cacher-protocol.md §8; unit-test expectations cases 26-30): ListAndWatch under a sliding
//! backoff, the first LIST at `list_rv` ("0"), relists at the last synced RV unpaginated, the
//! fallback to RV="" after 410 / 504, the pager with full-list-if-expired, watches with a
//! timeout in [5, 10) min and bookmarks, re-watch at once after a clean close or a broken
//! connection, relist after 410 or a "very short watch", backoff without relist on 429 and
//! connection errors, client-go's REST retries of 429 with Retry-After (10 times), and the
//! WatchList mode with `watchList`'s own loop (immediate retry with RV "" after 410 / 504, backoff
//! on 429, LIST fallback on other errors). Checked against client-go v0.37.2 by
//! `tests/reflector_conformance.rs` (docs/conformance.md, "Reflector oracle").
//!
//! This file holds the state, the timers and message dispatch, and faults; `list` (LISTs and
//! pages), `watch` (watches and their events) and `watch_list` (streaming lists) the rest.

use imbl::OrdMap;

use super::backoff::{Backoff, ResetRule};
use super::store::InformerStore;
use crate::kernel::{Nanos, RngStream};
use crate::proto::Out;
use crate::proto::api::{
    ApiRequest, ApiResponse, ApiWatchEvent, ContinueToken, EventBatch, EventType, Obj, ReadRate,
    ResourceId, Rv,
};
use crate::proto::etcd::{Key, KeyRange};
use crate::proto::selector::Selector;
use crate::proto::status::Status;
use crate::proto::{Actor, ConnId, Dir};
use crate::proto::{ClientTimer, Msg, Timer};
use crate::scenario::{ClientConfig, Mutants};

mod list;
mod watch;
mod watch_list;

/// client-go's `minWatchTimeout`: watch timeouts are uniform in [5, 10) min.
pub const MIN_WATCH_TIMEOUT_NS: Nanos = 300_000_000_000;
/// A watch that ends within this long with no event is a "very short watch".
pub const VERY_SHORT_WATCH_NS: Nanos = 1_000_000_000;
/// client-go REST client retries of a 429 / 5xx with Retry-After (`maxRetries`).
pub const MAX_REST_RETRIES: u32 = 10;

/// Why a reflector relisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelistCause {
    /// 410 Gone (watch or list).
    TooOld,
    /// 504 Too large resource version.
    TooLarge,
    /// The client process restarted.
    Restart,
    /// Any other error (very short watch, other status, connection failure during a list).
    Error,
}

/// A cache event prepared once for many informers (a multicast): its digest change is computed
/// once and applied in O(1) to each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastEvent {
    kind: EventType,
    key: Key,
    rv: i64,
    bytes: u64,
    prev_rv: i64,
    digest_remove: u64,
    digest_add: u64,
}

impl FastEvent {
    /// Prepares an object event (None for bookmarks, errors, closes).
    pub fn of(ev: &ApiWatchEvent) -> Option<FastEvent> {
        match ev {
            ApiWatchEvent::Object {
                kind,
                key,
                rv,
                bytes,
                prev_rv,
            } => {
                let key_hash = key.digest_hash();
                Some(FastEvent {
                    kind: *kind,
                    key: key.clone(),
                    rv: *rv,
                    bytes: *bytes,
                    prev_rv: *prev_rv,
                    digest_remove: if *prev_rv > 0 {
                        key_hash.at(*prev_rv)
                    } else {
                        0
                    },
                    digest_add: if *kind != EventType::Deleted {
                        key_hash.at(*rv)
                    } else {
                        0
                    },
                })
            }
            _ => None,
        }
    }

    /// The event's RV.
    pub fn rv(&self) -> i64 {
        self.rv
    }

    /// What the event changes in a digest store: its object count and its sum (wrapping).
    pub fn digest_change(&self) -> (i16, u64) {
        let (mut count, mut sum) = (0i16, 0u64);
        if self.prev_rv > 0 {
            count -= 1;
            sum = sum.wrapping_sub(self.digest_remove);
        }
        if self.kind != EventType::Deleted {
            count += 1;
            sum = sum.wrapping_add(self.digest_add);
        }
        (count, sum)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Phase {
    /// Waiting for a timer.
    Idle,
    /// A LIST (possibly paged) is in flight.
    Listing {
        req_id: u64,
        /// The connection the request went out on: its reply comes back there even after a
        /// GOAWAY has moved new requests to another connection.
        conn: ConnId,
        first_rv: Rv,
        limit: u64,
        token: Option<ContinueToken>,
        acc: OrdMap<Key, Obj>,
        rest_retries: u32,
    },
    /// A watch is open (or being opened).
    Watching {
        conn: ConnId,
        started_ns: Nanos,
        events: u64,
        reconnect: bool,
        rest_retries: u32,
    },
    /// A WatchList stream is collecting the initial events.
    WatchListing {
        conn: ConnId,
        started_ns: Nanos,
        events: u64,
        /// client-go's temporary store, of the informer's own kind (a digest store's initial
        /// events are summed, not kept: it takes them as ADDED once each, as it takes events).
        acc: InformerStore,
        rest_retries: u32,
    },
}

/// Counters of one reflector (summed into the report). Laid out in declaration order, `events`
/// (written by every event) last, next to the [`Reflector`]'s other hot fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct ReflectorCounters {
    /// LISTs issued after the first successful one (by cause).
    pub relists_too_old: u64,
    /// Relists after a 504.
    pub relists_too_large: u64,
    /// Relists after a process restart.
    pub relists_restart: u64,
    /// Relists after other errors.
    pub relists_error: u64,
    /// Re-watches without relisting.
    pub watch_resumes: u64,
    /// Watches reopened from a last-synced RV after a previous one ended.
    pub reconnects: u64,
    /// Of those, refused with 410.
    pub reconnects_too_old: u64,
    /// LIST requests sent (pages and retries included).
    pub list_requests: u64,
    /// Events applied.
    pub events: u64,
}

impl ReflectorCounters {
    /// All relists.
    pub fn relists(&self) -> u64 {
        self.relists_too_old + self.relists_too_large + self.relists_restart + self.relists_error
    }
}

/// One reflector + informer.
///
/// Laid out in declaration order (issue 16): the fields a fan-out's event changes
/// ([`Reflector::apply_fast`]: the event counter, the store, the last synced RV and the watch's
/// phase) come first, next to each other, so that one event costs each of 15,000 receivers two
/// or three cache lines (with the [`crate::kernel::cow::CowBox`]'s counts), not six.
#[derive(Debug, Clone, PartialEq, Eq)]
#[repr(C)]
pub struct Reflector {
    /// Counters (`events`, the hot one, is their last field).
    pub counters: ReflectorCounters,
    /// The informer store.
    pub store: InformerStore,
    /// Last synced resourceVersion (0 = none yet, i.e. "").
    pub last_sync_rv: i64,
    phase: Phase,
    /// Global client index.
    pub id: u32,
    /// The scenario's `[mutants]` (deliberate model bugs for the broken-model tests; all off).
    /// Configuration, the same in every state: left out of the state's hash.
    pub mutants: crate::kernel::Unhashed<Mutants>,
    /// Population index (`[[clients]]` entry).
    pub population: u32,
    /// Resource watched.
    pub resource: ResourceId,
    /// Objects watched.
    pub scope: KeyRange,
    epoch: u32,
    server: Option<u32>,
    req_conn: Option<ConnId>,
    next_req: u64,
    unavailable: bool,
    paginated: bool,
    synced_once: bool,
    pending_cause: Option<RelistCause>,
    /// The next watch resumes after a clean close (a timeout), not after a broken connection.
    clean_resume: bool,
    /// REST retries already made of the WATCH that the next `Watch` / `WatchList` timer resends
    /// (client-go's REST client retries a 429 / 5xx with Retry-After at most 10 times).
    rest_retries_next: u32,
    backoff: Backoff,
    disconnected_until: Nanos,
    sent: Option<Sent>,
    rng: RngStream,
}

/// Hashed field by field in the order the fields had before they were laid out for the fan-out
/// (what the derive gave then), so that explorer states hash, and the explorer's bounded
/// searches visit, exactly as before.
impl std::hash::Hash for Reflector {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let Reflector {
            counters,
            store,
            last_sync_rv,
            phase,
            id,
            mutants,
            population,
            resource,
            scope,
            epoch,
            server,
            req_conn,
            next_req,
            unavailable,
            paginated,
            synced_once,
            pending_cause,
            clean_resume,
            rest_retries_next,
            backoff,
            disconnected_until,
            sent,
            rng,
        } = self;
        id.hash(h);
        mutants.hash(h);
        population.hash(h);
        resource.hash(h);
        scope.hash(h);
        epoch.hash(h);
        server.hash(h);
        req_conn.hash(h);
        next_req.hash(h);
        phase.hash(h);
        last_sync_rv.hash(h);
        unavailable.hash(h);
        paginated.hash(h);
        synced_once.hash(h);
        pending_cause.hash(h);
        clean_resume.hash(h);
        rest_retries_next.hash(h);
        backoff.hash(h);
        store.hash(h);
        disconnected_until.hash(h);
        sent.hash(h);
        rng.hash(h);
        counters.hash(h);
    }
}

/// A request a reflector sent (for the request log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sent {
    /// `list`, `list-continue`, `watch`, `watch-list`.
    pub kind: &'static str,
    /// resourceVersion.
    pub rv: Rv,
    /// limit.
    pub limit: u64,
}

/// What a reflector reports back to the world after handling something.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Effects {
    /// It needs a connection to an apiserver (the world's load balancer picks one).
    pub wants_server: bool,
    /// The RV of a LIST it just applied (for time-travel detection).
    pub listed_rv: Option<i64>,
    /// An event RV it just applied, with the event's key (for staleness).
    pub event_rv: Option<i64>,
}

impl Reflector {
    /// A reflector that will start at `start_ns`.
    pub fn new(
        id: u32,
        population: u32,
        resource: ResourceId,
        scope: KeyRange,
        cfg: &ClientConfig,
        seed: u64,
        backoff_rule: ResetRule,
    ) -> Self {
        Reflector {
            id,
            mutants: crate::kernel::Unhashed(Mutants::default()),
            population,
            resource,
            scope,
            epoch: 0,
            server: None,
            req_conn: None,
            next_req: 1,
            phase: Phase::Idle,
            last_sync_rv: 0,
            unavailable: false,
            paginated: false,
            synced_once: false,
            pending_cause: None,
            clean_resume: false,
            rest_retries_next: 0,
            backoff: Backoff::new(backoff_rule),
            store: InformerStore::new(cfg.store),
            disconnected_until: 0,
            sent: None,
            rng: RngStream::new(seed, &format!("client.{id}")),
            counters: ReflectorCounters::default(),
        }
    }

    fn actor(&self) -> Actor {
        Actor::Client(self.id)
    }

    fn timer(&self, t: ClientTimer) -> Timer {
        Timer::Client(self.id, self.epoch, t)
    }

    /// The request sent during the last handler call, if any (taken by the world's log).
    pub fn take_sent(&mut self) -> Option<Sent> {
        self.sent.take()
    }

    /// Until when the client's network is down (read-only, for the invariant checker).
    pub fn disconnected_until(&self) -> Nanos {
        self.disconnected_until
    }

    /// Process restarts so far (read-only, for the invariant checker and timelines).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The apiserver this reflector talks to, if chosen.
    pub fn server(&self) -> Option<u32> {
        self.server
    }

    /// The request this reflector would send when timer `t` fires, if any (what an attempt the
    /// model refuses before sending stands for: client-go's request whose dial fails; used by
    /// the reflector oracle's comparison, `tests/common/model_client.rs`).
    pub fn request_for(&self, t: ClientTimer, cfg: &ClientConfig) -> Option<Sent> {
        match t {
            ClientTimer::ListAndWatch if cfg.watch_list.unwrap_or(false) => Some(Sent {
                kind: "watch-list",
                rv: self.watch_list_rv(),
                limit: 0,
            }),
            ClientTimer::ListAndWatch => {
                let rv = self.relist_rv(cfg);
                Some(Sent {
                    kind: "list",
                    rv,
                    limit: self.list_limit(rv, cfg, false),
                })
            }
            ClientTimer::WatchList => Some(Sent {
                kind: "watch-list",
                rv: self.watch_list_rv(),
                limit: 0,
            }),
            ClientTimer::Watch => Some(Sent {
                kind: "watch",
                rv: self.watch_rv(),
                limit: 0,
            }),
            ClientTimer::RetryList => None,
        }
    }

    /// Arms the first ListAndWatch; the reflector (and its backoff manager, whose reset clock
    /// starts at creation) is created then.
    pub fn start(&mut self, at: Nanos, out: &mut Out<'_>) {
        self.backoff.created_at(at);
        out.timer(at, self.timer(ClientTimer::ListAndWatch));
    }

    /// The world's load balancer picked `server` (None: every apiserver is down).
    pub fn set_server(&mut self, server: Option<u32>) {
        self.server = server;
    }

    fn connected(&self, now: Nanos) -> bool {
        now >= self.disconnected_until && self.server.is_some()
    }

    fn request(&mut self, req: ApiRequest, out: &mut Out<'_>) -> Option<(u64, ConnId)> {
        let server = self.server?;
        let conn = match self.req_conn {
            Some(c) if out.is_open(c) => c,
            _ => {
                let c = out.connect(self.actor(), Actor::Apiserver(server));
                self.req_conn = Some(c);
                c
            }
        };
        let req_id = self.next_req;
        self.next_req += 1;
        out.send(conn, Dir::ToServer, Msg::api(req_id, req));
        Some((req_id, conn))
    }

    /// A timer of this reflector fired.
    pub fn on_timer(
        &mut self,
        epoch: u32,
        t: ClientTimer,
        cfg: &ClientConfig,
        out: &mut Out<'_>,
    ) -> (&'static str, Effects) {
        if epoch != self.epoch {
            return ("stale", Effects::default());
        }
        let mut fx = Effects {
            wants_server: self.server.is_none(),
            ..Default::default()
        };
        match t {
            ClientTimer::ListAndWatch => {
                if !self.connected(out.now) {
                    self.finish_list_and_watch(Some(RelistCause::Error), out);
                    return ("refused", fx);
                }
                self.note_relist();
                if cfg.watch_list.unwrap_or(false) {
                    self.start_watch_list(cfg, 0, out);
                    return ("watch_list", fx);
                }
                let rv = self.relist_rv(cfg);
                let limit = self.list_limit(rv, cfg, self.mutants.reflector_relist_from_etcd);
                self.send_list(rv, limit, None, 0, OrdMap::new(), out);
                ("list", fx)
            }
            ClientTimer::Watch => {
                if !self.connected(out.now) {
                    self.backoff_watch(out);
                    return ("refused", fx);
                }
                // A re-watch after a broken connection is a reconnect (P(410 on reconnect)); one
                // after a clean close (a watch timeout) is a resume.
                let reconnect = !std::mem::take(&mut self.clean_resume);
                let retries = std::mem::take(&mut self.rest_retries_next);
                self.open_watch(cfg, reconnect, retries, out);
                ("watch", fx)
            }
            ClientTimer::WatchList => {
                if !self.connected(out.now) {
                    self.backoff_watch_list(out);
                    return ("refused", fx);
                }
                let retries = std::mem::take(&mut self.rest_retries_next);
                self.start_watch_list(cfg, retries, out);
                ("watch_list", fx)
            }
            ClientTimer::RetryList => {
                if let Phase::Listing {
                    first_rv,
                    limit,
                    token,
                    acc,
                    rest_retries,
                    ..
                } = self.phase.clone()
                {
                    let rv = if token.is_some() { Rv::Unset } else { first_rv };
                    self.send_list_keep(rv, first_rv, limit, token, rest_retries, acc, out);
                }
                fx.wants_server = false;
                ("retry_list", fx)
            }
        }
    }

    /// Any message for this reflector.
    pub fn on_message(
        &mut self,
        conn: ConnId,
        msg: Msg,
        cfg: &ClientConfig,
        out: &mut Out<'_>,
    ) -> (&'static str, Effects) {
        let mut fx = Effects::default();
        match msg {
            Msg::ApiReply { req_id, resp } => {
                if let Phase::Listing {
                    req_id: want,
                    conn: listed_on,
                    ..
                } = self.phase
                    && conn == listed_on
                    && req_id == want
                {
                    return self.on_list_reply(*resp, cfg, out);
                }
                match &self.phase {
                    Phase::Watching { conn: c, .. } | Phase::WatchListing { conn: c, .. }
                        if *c == conn =>
                    {
                        return self.on_watch_reply(*resp, cfg, out);
                    }
                    _ => {}
                }
                ("stale", fx)
            }
            // (Matched by reference: a clone of the phase would share a WatchList's
            // accumulator and make its next insert copy the map's path.)
            Msg::ApiWatch(ev) => match &self.phase {
                Phase::Watching { conn: c, .. } if *c == conn => self.on_watch_event(ev, cfg, out),
                Phase::WatchListing { conn: c, .. } if *c == conn => {
                    self.on_watch_list_event(ev, cfg, out)
                }
                _ => ("stale", fx),
            },
            Msg::Hangup => self.on_hangup(conn, cfg, out),
            Msg::Goaway => {
                // HTTP/2 GOAWAY (RFC 9113 §6.8): no new requests on this connection, the next
                // goes through the LB; a request already sent (the LIST in flight) is still
                // answered on it.
                if Some(conn) == self.req_conn {
                    self.req_conn = None;
                    self.server = None;
                    fx.wants_server = true;
                }
                ("goaway", fx)
            }
            _ => ("unexpected", fx),
        }
    }

    /// A connection of this reflector was reset: the request connection (the LIST fails and
    /// a new server is needed), the connection a LIST was sent on, or the watch's.
    fn on_hangup(
        &mut self,
        conn: ConnId,
        cfg: &ClientConfig,
        out: &mut Out<'_>,
    ) -> (&'static str, Effects) {
        let mut fx = Effects::default();
        if Some(conn) == self.req_conn {
            self.req_conn = None;
            self.server = None;
            fx.wants_server = true;
            if let Phase::Listing { .. } = self.phase {
                // The LIST's connection broke: ListAndWatch fails.
                self.finish_list_and_watch(Some(RelistCause::Error), out);
            }
            return ("conn_reset", fx);
        }
        if let Phase::Listing {
            conn: listed_on, ..
        } = self.phase
            && listed_on == conn
        {
            // The connection a GOAWAY retired broke before the LIST's reply arrived.
            self.finish_list_and_watch(Some(RelistCause::Error), out);
            return ("conn_reset", fx);
        }
        match self.phase.clone() {
            Phase::Watching { conn: c, .. } if c == conn => {
                self.server = None;
                fx.wants_server = true;
                self.watch_ended(true, out);
                ("watch_reset", fx)
            }
            Phase::WatchListing { conn: c, .. } if c == conn => {
                self.server = None;
                fx.wants_server = true;
                (self.watch_list_ended(cfg, out), fx)
            }
            _ => ("stale", fx),
        }
    }

    /// The client's network drops for `duration_ns`: its connections are reset.
    pub fn disconnect(&mut self, duration_ns: Nanos, out: &mut Out<'_>) {
        self.disconnected_until = out.now + duration_ns;
        let req_conn = self.req_conn.take();
        if let Some(c) = req_conn {
            out.send(c, Dir::ToServer, Msg::Hangup);
        }
        self.server = None;
        match self.phase.clone() {
            Phase::Watching { conn, .. } => {
                out.send(conn, Dir::ToServer, Msg::Hangup);
                // The client sees its stream break (an unexpected EOF ends the watch).
                self.watch_ended(true, out);
            }
            Phase::WatchListing {
                conn,
                started_ns,
                events,
                ..
            } => {
                out.send(conn, Dir::ToServer, Msg::Hangup);
                // As `watch_list_ended`; the LIST a very short stream falls back to would be
                // refused (the client is cut off), ending ListAndWatch with an error.
                if out.now.saturating_sub(started_ns) < VERY_SHORT_WATCH_NS && events == 0 {
                    self.finish_list_and_watch(Some(RelistCause::Error), out);
                } else {
                    self.retry_watch_list_now(out);
                }
            }
            Phase::Listing { conn, .. } => {
                if req_conn != Some(conn) {
                    // A LIST left on a connection a GOAWAY retired breaks with the rest.
                    out.send(conn, Dir::ToServer, Msg::Hangup);
                }
                self.finish_list_and_watch(Some(RelistCause::Error), out)
            }
            Phase::Idle => {}
        }
    }

    /// The client process restarts: store and last RV are lost; it lists again at once.
    pub fn restart(&mut self, out: &mut Out<'_>) {
        self.close_watch(out);
        if let Some(c) = self.req_conn.take() {
            out.send(c, Dir::ToServer, Msg::Hangup);
        }
        self.epoch += 1;
        self.server = None;
        self.phase = Phase::Idle;
        self.last_sync_rv = 0;
        self.unavailable = false;
        self.paginated = false;
        self.backoff = Backoff::new(self.backoff.rule());
        self.backoff.created_at(out.now);
        self.store = InformerStore::new(self.store.mode());
        self.pending_cause = Some(RelistCause::Restart);
        out.timer(out.now, self.timer(ClientTimer::ListAndWatch));
    }
}

impl Reflector {
    /// The explorer's time abstraction: forgets when the watch started, the disconnection
    /// deadline (kept as "still cut off or not"), the backoff's clock and the stream that draws timeouts and jitter.
    pub fn erase_times(&mut self, now: Nanos) {
        if let Phase::Watching { started_ns, .. } | Phase::WatchListing { started_ns, .. } =
            &mut self.phase
        {
            *started_ns = 0;
        }
        // Only whether the client is still cut off counts.
        self.disconnected_until = u64::from(self.disconnected_until > now);
        self.backoff.erase_times();
        self.rng = crate::kernel::rng::erased_stream();
    }
}

impl Reflector {
    /// Whether the client is still cut off at `now` (the one clock-dependent bit the explorer's
    /// time abstraction keeps: `erase_times`).
    pub fn disconnected_at(&self, now: Nanos) -> bool {
        self.disconnected_until > now
    }

    /// Applies the explorer's symmetry renaming: the client's own index and its connections.
    pub fn relabel(&mut self, r: &crate::proto::Relabel) {
        self.id = r.client(self.id);
        self.req_conn = self.req_conn.map(|c| r.conn(c));
        match &mut self.phase {
            Phase::Watching { conn, .. }
            | Phase::WatchListing { conn, .. }
            | Phase::Listing { conn, .. } => *conn = r.conn(*conn),
            Phase::Idle => {}
        }
    }

    /// This client's state with its index left out (the symmetry reduction's sort key); with
    /// `timeless_at`, as the time abstraction sees it at that instant.
    pub fn anonymous_hash(&self, timeless_at: Option<Nanos>) -> u64 {
        use std::hash::Hash;
        let mut c = self.clone();
        if let Some(now) = timeless_at {
            c.erase_times(now);
        }
        c.id = 0;
        c.req_conn = None;
        if let Phase::Watching { conn, .. }
        | Phase::WatchListing { conn, .. }
        | Phase::Listing { conn, .. } = &mut c.phase
        {
            *conn = 0;
        }
        let mut h = crate::kernel::Fnv64::new();
        c.hash(&mut h);
        h.finish()
    }
}
