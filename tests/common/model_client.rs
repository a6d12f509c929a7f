//! One reflector's requests, their outcomes and its waits in a watchsim run, read off the world
//! step by step (`World::apply` and the agenda): what `tests/reflector_conformance.rs` compares
//! with client-go's real `Reflector` and what `tests/reflector_rules.rs` checks the backoff on.
//!
//! - A request is logged when the reflector puts it on the wire (a `Msg::Api` LIST or WATCH it
//!   sends), with every parameter; its outcome is the reply that comes back on that connection
//!   (the LIST's items / RV / continue, the WATCH's `created` or error) and, for a watch, every
//!   event of its stream. An attempt the model refuses before sending (the client is cut off or
//!   every apiserver is down: the trace's `refused`) is logged as the request it stands for with
//!   the outcome `ConnectionRefused`, as client-go's dial would fail.
//! - A wait is a client timer armed later than now: `run` (the backoff before ListAndWatch runs
//!   again), `reflector` (the watch's backoff after 429 / connection refused) or `rest` (a REST
//!   retry after Retry-After).

use std::sync::Arc;

use serde_json::{Value, json};
use watchsim::apiserver::watch_cache::EventType;
use watchsim::apiserver::{ApiRequest, ApiResponse, ApiWatchEvent, Rv, Status};
use watchsim::client::ClientTimer;
use watchsim::world::{Action, Actor, ConnId, Dir, Msg, Pending, Timer, World};

/// One request of the reflector.
#[derive(Debug, Clone)]
pub struct Req {
    /// When it was sent (virtual ms).
    pub at_ms: f64,
    /// `list` or `watch`.
    pub kind: String,
    /// resourceVersion ("" = unset).
    pub rv: String,
    /// resourceVersionMatch, if any.
    pub match_: Option<String>,
    /// limit (0 = none).
    pub limit: u64,
    /// Whether a continue token was sent.
    pub cont: bool,
    /// allowWatchBookmarks.
    pub bookmarks: bool,
    /// sendInitialEvents.
    pub sie: Option<bool>,
    /// timeoutSeconds of a watch.
    pub timeout_s: Option<f64>,
    /// `{"items", "resource_version", "continue"}`, `{"created": true}` or `{"error": {...}}`
    /// (Null while unanswered).
    pub outcome: Value,
    /// The events of a watch stream, as watchsim reports them.
    pub events: Vec<Value>,
    /// How the stream ended, if it did: `closed` (by the server), `broken` (the connection),
    /// `client_stop`.
    pub end: Option<String>,
}

/// One wait of the reflector.
#[derive(Debug, Clone)]
pub struct Wait {
    /// When the wait began (virtual ms).
    pub at_ms: f64,
    /// Its length (ms).
    pub wait_ms: f64,
    /// `run`, `reflector` or `rest`.
    pub by: &'static str,
}

/// What one client did in a run.
#[derive(Debug, Clone, Default)]
pub struct ClientLog {
    /// Requests in the order sent.
    pub requests: Vec<Req>,
    /// Waits in the order armed.
    pub waits: Vec<Wait>,
    /// The informer store at the end: `name@rv`, sorted.
    pub store: Vec<String>,
    /// The last synced RV at the end.
    pub last_sync_rv: String,
}

fn rv_text(rv: Rv) -> String {
    match rv {
        Rv::Unset => String::new(),
        Rv::Zero => "0".into(),
        Rv::At(n) => n.to_string(),
    }
}

fn status_json(s: &Status) -> Value {
    let mut v = json!({"code": s.code, "reason": s.reason});
    if let Some(c) = s.cause {
        v["cause"] = json!(c);
    }
    if let Some(r) = s.retry_after_seconds {
        v["retry_after_seconds"] = json!(r);
    }
    v
}

fn name_of(key: &str) -> String {
    key.rsplit('/').next().unwrap_or(key).to_string()
}

fn event_json(ev: &ApiWatchEvent) -> Option<Value> {
    Some(match ev {
        ApiWatchEvent::Object { kind, key, rv, .. } => {
            let t = match kind {
                EventType::Added => "ADDED",
                EventType::Modified => "MODIFIED",
                EventType::Deleted => "DELETED",
            };
            json!({"type": t, "name": name_of(key.as_str()), "resource_version": rv.to_string()})
        }
        ApiWatchEvent::Bookmark {
            rv,
            initial_events_end,
        } => {
            let mut v = json!({"type": "BOOKMARK", "resource_version": rv.to_string()});
            if *initial_events_end {
                v["initial_events_end"] = json!(true);
            }
            v
        }
        ApiWatchEvent::Error(s) => {
            let mut v = status_json(s);
            v["type"] = json!("ERROR");
            v
        }
        ApiWatchEvent::Closed => return None,
    })
}

/// Runs `text` (a scenario) with `seed` and returns client `client`'s log.
pub fn run_model_client(text: &str, seed: u64, client: u32) -> Result<ClientLog, String> {
    let scenario = watchsim::scenario::load_str("reflector-case.toml", text, &[])
        .map_err(|e| e.to_string())?;
    let end_ns = scenario.duration.as_ns();
    let mut world = World::new(Arc::new(scenario), seed);
    let me = Actor::Client(client);
    let mut log = ClientLog::default();
    let mut max_seq = world.agenda().iter().map(|(k, _)| k.seq).max().unwrap_or(0);
    // (conn, req_id) of LISTs and conn of watches awaiting answers / streaming.
    let mut lists: Vec<(ConnId, u64, usize)> = Vec::new();
    let mut watches: Vec<(ConnId, usize)> = Vec::new();
    let ms = |ns: u64| ns as f64 / 1e6;
    while let Some(action) = world.next_timed_action() {
        let Action::Fire(key) = action;
        if key.due_ns > end_ns {
            break;
        }
        let pending = world.agenda().get(key).cloned();
        // What the client would send if this timer lets it (for a refused attempt).
        let would_send = match &pending {
            Some(Pending::Timer(Timer::Client(i, _, t))) if *i == client => {
                let c = &world.clients()[client as usize];
                let cfg = &world.scenario().clients[c.population as usize];
                c.request_for(*t, cfg)
            }
            _ => None,
        };
        let outcome = world.apply(action).map_err(|e| e.to_string())?;
        let now = world.now();
        let mut deliver = |conn: ConnId, msg: &Msg, log: &mut ClientLog| match msg {
            Msg::ApiReply { req_id, resp } => {
                if let Some(p) = lists.iter().position(|(c, r, _)| *c == conn && r == req_id) {
                    let (_, _, i) = lists.remove(p);
                    log.requests[i].outcome = match &**resp {
                        ApiResponse::List(l) => json!({
                            "items": l.items.len(),
                            "resource_version": l.rv.to_string(),
                            "continue": l.continue_token.is_some(),
                        }),
                        ApiResponse::Error(s) => json!({"error": status_json(s)}),
                        _ => json!({"unexpected": format!("{resp:?}")}),
                    };
                } else if let Some(&(_, i)) = watches.iter().find(|(c, _)| *c == conn) {
                    log.requests[i].outcome = match &**resp {
                        ApiResponse::WatchStarted => json!({"created": true}),
                        ApiResponse::Error(s) => json!({"error": status_json(s)}),
                        _ => json!({"unexpected": format!("{resp:?}")}),
                    };
                }
            }
            Msg::ApiWatch(ev) => {
                if let Some(&(_, i)) = watches.iter().find(|(c, _)| *c == conn) {
                    match event_json(ev) {
                        Some(v) => log.requests[i].events.push(v),
                        None => {
                            log.requests[i].end.get_or_insert("closed".into());
                        }
                    }
                }
            }
            Msg::ApiWatchBatch(batch) => {
                // A cacher's initial state in one message (issue 16): its events in order.
                if let Some(&(_, i)) = watches.iter().find(|(c, _)| *c == conn) {
                    log.requests[i]
                        .events
                        .extend(batch.events().iter().filter_map(event_json));
                }
            }
            Msg::Hangup => {
                if let Some(&(_, i)) = watches.iter().find(|(c, _)| *c == conn) {
                    log.requests[i].end.get_or_insert("broken".into());
                }
            }
            _ => {}
        };
        match &pending {
            Some(Pending::Deliver {
                conn,
                dir: Dir::ToClient,
                msg,
            }) if outcome.actor == me => deliver(*conn, msg, &mut log),
            Some(Pending::Multicast {
                targets,
                dir: Dir::ToClient,
                msg,
            }) => {
                for (conn, actor, _) in targets {
                    if *actor == me {
                        deliver(*conn, msg, &mut log);
                    }
                }
            }
            Some(Pending::Reset { conn, to }) if *to == me => {
                if let Some(&(_, i)) = watches.iter().find(|(c, _)| c == conn) {
                    log.requests[i].end.get_or_insert("broken".into());
                }
            }
            _ => {}
        }
        if outcome.actor == me
            && outcome.result == "refused"
            && let Some(sent) = would_send
        {
            let (kind, sie) = match sent.kind {
                "watch-list" => ("watch", Some(true)),
                "watch" => ("watch", None),
                _ => ("list", None),
            };
            log.requests.push(Req {
                at_ms: ms(now),
                kind: kind.into(),
                rv: rv_text(sent.rv),
                match_: None,
                limit: sent.limit,
                cont: false,
                bookmarks: kind == "watch",
                sie,
                timeout_s: None,
                outcome: json!({"error": {"code": 0, "reason": "ConnectionRefused"}}),
                events: Vec::new(),
                end: None,
            });
        }
        // What this step put on the agenda: requests the client sent, timers it armed.
        let mut fresh: Vec<(u64, u64, Pending)> = world
            .agenda()
            .iter()
            .filter(|(k, _)| k.seq > max_seq)
            .map(|(k, p)| (k.seq, k.due_ns, p.clone()))
            .collect();
        fresh.sort_by_key(|(seq, _, _)| *seq);
        for (seq, due, p) in fresh {
            max_seq = max_seq.max(seq);
            match p {
                Pending::Deliver {
                    conn,
                    dir: Dir::ToServer,
                    msg: Msg::Api { req_id, req },
                } if outcome.actor == me => {
                    let i = log.requests.len();
                    match *req {
                        ApiRequest::List {
                            rv,
                            rv_match,
                            limit,
                            continue_token,
                            ..
                        } => {
                            log.requests.push(Req {
                                at_ms: ms(now),
                                kind: "list".into(),
                                rv: rv_text(rv),
                                match_: rv_match.map(|m| format!("{m:?}")),
                                limit,
                                cont: continue_token.is_some(),
                                bookmarks: false,
                                sie: None,
                                timeout_s: None,
                                outcome: Value::Null,
                                events: Vec::new(),
                                end: None,
                            });
                            lists.push((conn, req_id, i));
                        }
                        ApiRequest::Watch {
                            rv,
                            bookmarks,
                            send_initial_events,
                            timeout_ns,
                            ..
                        } => {
                            log.requests.push(Req {
                                at_ms: ms(now),
                                kind: "watch".into(),
                                rv: rv_text(rv),
                                match_: None,
                                limit: 0,
                                cont: false,
                                bookmarks,
                                sie: send_initial_events,
                                timeout_s: Some(timeout_ns as f64 / 1e9),
                                outcome: Value::Null,
                                events: Vec::new(),
                                end: None,
                            });
                            watches.retain(|(c, _)| *c != conn);
                            watches.push((conn, i));
                        }
                        _ => {}
                    }
                }
                Pending::Deliver {
                    conn,
                    dir: Dir::ToServer,
                    msg: Msg::Hangup,
                } if outcome.actor == me => {
                    if let Some(&(_, i)) = watches.iter().find(|(c, _)| *c == conn) {
                        log.requests[i].end.get_or_insert("client_stop".into());
                    }
                }
                Pending::Timer(Timer::Client(i, _, t)) if i == client && due > now => {
                    let by = match (t, outcome.result) {
                        (ClientTimer::RetryList, _) | (_, "watch_retry_after") => "rest",
                        (ClientTimer::ListAndWatch, _) => "run",
                        (ClientTimer::Watch | ClientTimer::WatchList, _) => "reflector",
                    };
                    log.waits.push(Wait {
                        at_ms: ms(now),
                        wait_ms: ms(due - now),
                        by,
                    });
                }
                _ => {}
            }
        }
    }
    let c = &world.clients()[client as usize];
    log.last_sync_rv = c.last_sync_rv.to_string();
    if let watchsim::client::store::InformerStore::Map(m) = &c.store {
        let mut items: Vec<String> = m
            .iter()
            .map(|(k, o)| format!("{}@{}", name_of(k.as_str()), o.rv))
            .collect();
        items.sort();
        log.store = items;
    }
    Ok(log)
}
