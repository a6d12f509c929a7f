//! `no-time-travel`: a client never observes an RV (a LIST's RV, an event's RV, a bookmark's RV)
//! older than one it has already observed, across its own process restarts. That is exactly
//! Kubernetes #59848 (open): a restarted reflector's first LIST with RV="0" is served from any
//! watch cache with no freshness bound, so against a lagging apiserver it observes the past.
//! With `list_rv = ""` (a consistent LIST) it must hold. One violation is counted per episode:
//! after a travel, observations stay "in the past" until the client is back at its old RV.
//!
//! Simplification (notes.md): object states are not compared one by one; for a server whose
//! LIST content matches its RV (which `convergence` checks) the collection RV implies them.

use crate::apiserver::Rv;
use crate::client::Reflector;
use crate::client::reflector::{Effects, Sent};
use crate::kernel::Nanos;
use crate::kernel::prefetch::Stage;
use crate::monitor::Checker;
use crate::monitor::invariants::Inv;

/// What one client has observed (kept in the client's row of the stream table, beside its
/// lane: `monitor/stream_table.rs`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientRv {
    /// Highest RV observed, kept across restarts.
    pub max_rv: i64,
    /// In a time-travel episode (observed below `max_rv` and not back yet).
    pub travelling: bool,
    /// Process restarts so far.
    pub restarts: u32,
    /// Highest RV of a LIST or an event (bookmarks aside), kept across restarts: the report's
    /// count of LISTs older than what the client had seen (`clients.time_travels`, kept by the
    /// world) compares against it. It sits here so that a fan-out's receiver is one cache line.
    pub data_max_rv: i64,
}

impl ClientRv {
    /// A client that has observed nothing yet.
    pub const NEW: ClientRv = ClientRv {
        max_rv: 0,
        travelling: false,
        restarts: 0,
        data_max_rv: 0,
    };
}

/// One time travel, as the checker saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeTravel {
    /// Step of the observation.
    pub step: u64,
    /// Its time.
    pub t_ns: Nanos,
    /// Client id.
    pub client: u32,
    /// Restarts of that client before it.
    pub restarts: u32,
    /// `list`, `watch-list`, `event` or `bookmark`.
    pub kind: &'static str,
    /// resourceVersion of the LIST request that returned it ("" unset), for lists.
    pub request_rv: String,
    /// The apiserver the client talked to.
    pub server: Option<u32>,
    /// RV observed.
    pub observed_rv: i64,
    /// RV observed before.
    pub max_rv: i64,
}

/// An API resourceVersion as sent ("" for unset).
pub fn rv_text(rv: Rv) -> String {
    match rv {
        Rv::Unset => String::new(),
        Rv::Zero => "0".into(),
        Rv::At(n) => n.to_string(),
    }
}

impl Checker {
    /// A reflector handled a message or timer (`label` = what it did); `sent` is the request it
    /// sent meanwhile, if any; `etcd_rev` is etcd's revision now.
    pub fn client_observed(
        &mut self,
        id: u32,
        label: &str,
        fx: &Effects,
        sent: Option<Sent>,
        c: &Reflector,
        etcd_rev: i64,
    ) {
        let i = id as usize;
        if i >= self.client_lists.len() {
            return;
        }
        self.client_list_step(id, label, fx, sent, etcd_rev);
        let observed = match label {
            "listed" => fx.listed_rv.map(|r| (r, "list")),
            "watch_list_synced" => fx.listed_rv.map(|r| (r, "watch-list")),
            "event" => fx.event_rv.map(|r| (r, "event")),
            "bookmark" => self.cur.bookmark_rv.map(|r| (r, "bookmark")),
            _ => None,
        };
        if let Some((rv, kind)) = observed {
            self.client_rv(id, rv, kind, || c.server());
        }
    }

    /// Asks (issue 16, `world/read_ahead.rs`) for what checking informer `client`'s next
    /// message on `conn` reads first: its stream's slot, lane and first lines (by `stage`), and
    /// its time-travel record.
    pub fn prefetch_client_message(&self, conn: crate::proto::ConnId, client: u32, stage: Stage) {
        self.streams.prefetch_stream(conn, client, stage);
        if stage == Stage::Table {
            self.prefetch_client(client);
        }
    }

    /// Asks for client `id`'s row early (its time-travel record and its stream lane: a fan-out
    /// reaches clients scattered in the array).
    #[inline(always)]
    pub fn prefetch_client(&self, id: u32) {
        self.streams.prefetch_lane(id);
    }

    /// Client `id` saw `rv` in a LIST or an event: raises its [`ClientRv::data_max_rv`] and
    /// returns the value before (0 for a client the checker does not know).
    #[inline]
    pub fn raise_data_rv(&mut self, id: u32, rv: i64) -> i64 {
        match self.streams.client_rv_mut(id) {
            Some(t) => {
                let before = t.data_max_rv;
                t.data_max_rv = before.max(rv);
                before
            }
            None => 0,
        }
    }

    /// Client `id` observed `rv` (`kind`: `list`, `watch-list`, `event`, `bookmark`); `server`
    /// tells which apiserver it talks to (asked only when the RV went back).
    pub fn client_rv(
        &mut self,
        id: u32,
        rv: i64,
        kind: &'static str,
        server: impl FnOnce() -> Option<u32>,
    ) {
        let i = id as usize;
        if i >= self.client_lists.len() {
            return;
        }
        let Some(t) = self.streams.client_rv_mut(id) else {
            return;
        };
        if rv >= t.max_rv {
            t.max_rv = rv;
            t.travelling = false;
            return;
        }
        if t.travelling {
            return;
        }
        t.travelling = true;
        let (max_rv, restarts) = (t.max_rv, t.restarts);
        let server = server();
        let request_rv = match kind {
            "list" => self.client_lists[i]
                .request
                .map(rv_text)
                .unwrap_or_default(),
            _ => String::new(),
        };
        let tt = TimeTravel {
            step: self.step,
            t_ns: self.now,
            client: id,
            restarts,
            kind,
            request_rv: request_rv.clone(),
            server,
            observed_rv: rv,
            max_rv,
        };
        self.record_time_travel(tt);
        let server = server
            .map(|s| format!("apiserver-{s}"))
            .unwrap_or_else(|| "an apiserver".into());
        let what = match kind {
            "list" => format!("a LIST with RV=\"{request_rv}\" from {server} returned RV {rv}"),
            "watch-list" => format!("a streaming list from {server} ended at RV {rv}"),
            other => format!("a {other} at RV {rv} from {server}"),
        };
        let restarted = if restarts > 0 {
            format!(" after {restarts} restart(s) of the client process")
        } else {
            String::new()
        };
        self.violate(Inv::NoTimeTravel, || {
            format!(
                "client-{id}: {what}{restarted}, older than RV {max_rv} it had already observed (time travel, Kubernetes #59848)"
            )
        });
    }
}
