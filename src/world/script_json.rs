//! The scripted steps' results and watch events as the report shows them (SPEC §3-4): etcd and
//! API responses, Status errors and watch events rendered to JSON.

use serde_json::{Value, json};

use crate::proto::api::{ApiResponse, ApiWatchEvent, EventType};
use crate::proto::etcd::{EtcdError, Event, EventKind, Key, KvResponse, TxnOpResult};
use crate::proto::status::Status;

pub(super) fn status_json(s: &Status) -> Value {
    let mut v = json!({"code": s.code, "reason": s.reason, "message": s.message});
    if let Some(r) = s.retry_after_seconds {
        v["retry_after_seconds"] = json!(r);
    }
    if let Some(c) = s.cause {
        v["cause"] = json!(c);
    }
    v
}

pub(super) fn name_and_namespace(key: &Key) -> (String, String) {
    let mut parts = key.as_str().rsplit('/');
    let name = parts.next().unwrap_or("").to_string();
    let ns = parts.next().unwrap_or("").to_string();
    (name, ns)
}

pub(super) fn api_event_json(ev: &ApiWatchEvent) -> Value {
    match ev {
        ApiWatchEvent::Object { kind, key, rv, .. } => {
            let (name, namespace) = name_and_namespace(key);
            let t = match kind {
                EventType::Added => "ADDED",
                EventType::Modified => "MODIFIED",
                EventType::Deleted => "DELETED",
            };
            json!({"type": t, "name": name, "namespace": namespace, "resource_version": rv.to_string()})
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
        ApiWatchEvent::Closed => json!({"type": "CLOSED"}),
    }
}

pub(super) fn api_result_json(resp: &ApiResponse) -> Value {
    match resp {
        ApiResponse::Written { rv } => json!({"resource_version": rv.to_string()}),
        ApiResponse::Object {
            key,
            rv,
            served_from,
        } => {
            let (name, namespace) = name_and_namespace(key);
            json!({"name": name, "namespace": namespace, "resource_version": rv.to_string(),
                   "served_from": served_from})
        }
        ApiResponse::WatchStarted => json!({"created": true}),
        ApiResponse::Error(s) => json!({"error": status_json(s)}),
        ApiResponse::List(l) => {
            let names: Vec<String> = l
                .items
                .keys()
                .take(1000)
                .map(|k| name_and_namespace(k).0)
                .collect();
            json!({
                "resource_version": l.rv.to_string(),
                "items": l.items.len(),
                "names": names,
                "continue": l.continue_token.as_ref().map(|t| t.encode()).unwrap_or_default(),
                "served_from": l.served_from,
            })
        }
    }
}

pub(super) fn kv_json(ev: &Event) -> Value {
    json!({
        "type": match ev.kind { EventKind::Put => "PUT", EventKind::Delete => "DELETE" },
        "key": ev.kv.key.as_str(),
        "mod_revision": ev.kv.mod_revision,
        "create_revision": ev.kv.create_revision,
        "version": ev.kv.version,
    })
}

pub(super) fn error_json(e: &EtcdError) -> Value {
    match e {
        EtcdError::Compacted { compact_revision } => {
            json!({"error": e.kind(), "compact_revision": compact_revision})
        }
        _ => json!({"error": e.kind(), "message": e.to_string()}),
    }
}

pub(super) fn kv_result_json(resp: &Result<KvResponse, EtcdError>) -> Value {
    match resp {
        Err(e) => error_json(e),
        Ok(KvResponse::Put { revision }) | Ok(KvResponse::Compact { revision }) => {
            json!({"revision": revision})
        }
        Ok(KvResponse::Delete { revision, deleted }) => {
            json!({"revision": revision, "deleted": deleted})
        }
        Ok(KvResponse::Range(r)) => json!({
            "revision": r.revision,
            "count": r.count,
            "more": r.more,
            "kvs": r.kvs.iter().map(|kv| json!({
                "key": kv.key.as_str(),
                "create_revision": kv.create_revision,
                "mod_revision": kv.mod_revision,
                "version": kv.version,
            })).collect::<Vec<_>>(),
        }),
        Ok(KvResponse::Txn(t)) => json!({
            "revision": t.revision,
            "succeeded": t.succeeded,
            "responses": t.responses.iter().map(|r| match r {
                TxnOpResult::Put => json!({"put": {}}),
                TxnOpResult::Delete { deleted } => json!({"delete": {"deleted": deleted}}),
                TxnOpResult::Range(rr) => json!({"range": {"count": rr.count}}),
            }).collect::<Vec<_>>(),
        }),
    }
}
