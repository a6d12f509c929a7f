//! The requests a scripted step sends (SPEC §3): an `etcd.*` step's KV request, an `api.*`
//! step's API request with its selectors compiled, its labels resolved and its keys narrowed as
//! the registry narrows them. Pure functions of the scenario and the step; the scripted client
//! (`script.rs`) owns the connections and the answers.

use imbl::OrdMap;

use crate::apiserver::selector::{Field, LabelSetId, Selector};
use crate::apiserver::{ApiRequest, ContinueToken, ReadRate, ResourceId, Rv, RvMatch};
use crate::etcd::{Key, KeyRange, KvRequest};
use crate::proto::api::resource_prefix;
use crate::scenario::{ResourceVersionMatch, Scenario, Step};

/// The index of the resource named `name` (validated at load).
pub(super) fn resource_id(scenario: &Scenario, name: &str) -> ResourceId {
    scenario
        .resources
        .iter()
        .position(|r| r.name == name)
        .unwrap_or(0) as ResourceId
}

fn scope_of(resource: &str, namespace: Option<&str>) -> KeyRange {
    match namespace {
        None => KeyRange::Prefix(resource_prefix(resource)),
        Some(ns) => KeyRange::Prefix(Key::new(&format!("/registry/{resource}/{ns}/"))),
    }
}

/// The keys a LIST or WATCH reads, as the registry narrows them (`registry/store.go`
/// `ListPredicate`/`WatchPredicate`): a request without a namespace takes the namespace of an
/// exact `metadata.namespace` field term (`MatchesSingleNamespace`, when it is a valid
/// namespace name), and an exact `metadata.name` term with a namespace makes it a single-key,
/// non-recursive request (`MatchesSingle`); neither applies to a continuation.
fn request_scope(
    resource: &str,
    namespace: Option<&str>,
    selector: &Selector,
    continuing: bool,
) -> KeyRange {
    let exact = |f| selector.requires_exact(f).filter(|_| !continuing);
    let namespace = namespace.or_else(|| exact(Field::Namespace).filter(|ns| is_dns_label(ns)));
    match (namespace, exact(Field::Name)) {
        (Some(ns), Some(name)) => KeyRange::Single(object_key(resource, ns, name)),
        (ns, _) => scope_of(resource, ns),
    }
}

/// `validation.ValidateNamespaceName`: a DNS-1123 label.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The compiled selectors of a step (already validated at load).
fn step_selector(scenario: &Scenario, label: &Option<String>, field: &Option<String>) -> Selector {
    Selector::compile(label.as_deref(), field.as_deref(), &scenario.label_table())
        .unwrap_or_default()
}

/// `/registry/<resource>/<namespace>/<name>`: where the apiserver stores an object.
pub(super) fn object_key(resource: &str, namespace: &str, name: &str) -> Key {
    Key::new(&format!("/registry/{resource}/{namespace}/{name}"))
}

/// One key, or every key under a prefix (`etcdctl --prefix`).
pub(super) fn key_range(key: &str, prefix: bool) -> KeyRange {
    if prefix {
        KeyRange::Prefix(Key::new(key))
    } else {
        KeyRange::Single(Key::new(key))
    }
}

/// The KV request of an `etcd.put/delete/range/compact` step (None for other steps).
pub(super) fn etcd_kv_request(step: &Step) -> Option<KvRequest> {
    Some(match step {
        Step::EtcdPut {
            key, value_bytes, ..
        } => KvRequest::Put {
            key: Key::new(key),
            value_bytes: value_bytes.0,
        },
        Step::EtcdDelete { key, prefix, .. } => KvRequest::Delete(key_range(key, *prefix)),
        Step::EtcdRange {
            key,
            prefix,
            revision,
            limit,
            ..
        } => KvRequest::Range {
            range: key_range(key, *prefix),
            revision: *revision,
            limit: *limit,
        },
        Step::EtcdCompact { revision, .. } => KvRequest::Compact {
            revision: *revision,
        },
        _ => return None,
    })
}

/// The request of an `api.create/update/delete` step (None for other steps). An update
/// without `labels` keeps the labels the script last wrote (`labels_written`).
pub(super) fn api_write_request(
    scenario: &Scenario,
    step: &Step,
    labels_written: &OrdMap<Key, LabelSetId>,
) -> Option<ApiRequest> {
    let bytes_of = |r: ResourceId, b: &Option<crate::scenario::Bytes>| {
        b.map(|b| b.0)
            .unwrap_or(scenario.resources[r as usize].object_bytes.0)
    };
    Some(match step {
        Step::ApiCreate {
            resource,
            name,
            namespace,
            object_bytes,
            labels,
            ..
        } => {
            let r = resource_id(scenario, resource);
            ApiRequest::Create {
                resource: r,
                key: object_key(resource, namespace, name),
                bytes: bytes_of(r, object_bytes),
                labels: labels.as_ref().map_or(0, |l| scenario.label_table().id(l)),
            }
        }
        Step::ApiUpdate {
            resource,
            name,
            namespace,
            object_bytes,
            labels,
            ..
        } => {
            let r = resource_id(scenario, resource);
            let key = object_key(resource, namespace, name);
            let labels = match labels {
                Some(l) => scenario.label_table().id(l),
                None => labels_written.get(&key).copied().unwrap_or(0),
            };
            ApiRequest::Update {
                resource: r,
                key,
                bytes: bytes_of(r, object_bytes),
                labels,
                precondition_rv: None,
            }
        }
        Step::ApiDelete {
            resource,
            name,
            namespace,
            ..
        } => ApiRequest::Delete {
            resource: resource_id(scenario, resource),
            key: object_key(resource, namespace, name),
            precondition_rv: None,
        },
        _ => return None,
    })
}

/// The apiserver and request of an `api.get/list` step (None for other steps), or the
/// message of the 400 its resourceVersion gets. A `continue = true` LIST carries the last
/// continue token this apiserver gave for the resource.
pub(super) fn api_read_request(
    scenario: &Scenario,
    step: &Step,
    continue_tokens: &OrdMap<(u32, ResourceId), ContinueToken>,
) -> Option<Result<(u32, ApiRequest), String>> {
    match step {
        Step::ApiGet {
            server,
            resource,
            name,
            namespace,
            resource_version,
            ..
        } => Some(Rv::parse(resource_version.as_deref()).map(|rv| {
            let req = ApiRequest::Get {
                resource: resource_id(scenario, resource),
                key: object_key(resource, namespace, name),
                rv,
            };
            (*server, req)
        })),
        Step::ApiList {
            server,
            resource,
            resource_version,
            match_,
            limit,
            continue_,
            namespace,
            label_selector,
            field_selector,
            ..
        } => {
            let r = resource_id(scenario, resource);
            let continue_token = continue_
                .then(|| continue_tokens.get(&(*server, r)).cloned())
                .flatten();
            let selector = step_selector(scenario, label_selector, field_selector);
            let scope = request_scope(
                resource,
                namespace.as_deref(),
                &selector,
                continue_token.is_some(),
            );
            Some(Rv::parse(resource_version.as_deref()).map(|rv| {
                let req = ApiRequest::List {
                    resource: r,
                    scope,
                    selector,
                    rv,
                    rv_match: match_.map(|m| match m {
                        ResourceVersionMatch::NotOlderThan => RvMatch::NotOlderThan,
                        ResourceVersionMatch::Exact => RvMatch::Exact,
                    }),
                    limit: limit.unwrap_or(0),
                    continue_token,
                };
                (*server, req)
            }))
        }
        _ => None,
    }
}

/// The WATCH request of an `api.watch` step (None for other steps), or the message of the 400
/// its resourceVersion gets.
pub(super) fn api_watch_request(
    scenario: &Scenario,
    step: &Step,
) -> Option<Result<ApiRequest, String>> {
    let Step::ApiWatch {
        resource,
        resource_version,
        bookmarks,
        send_initial_events,
        timeout,
        read_rate,
        namespace,
        label_selector,
        field_selector,
        ..
    } = step
    else {
        return None;
    };
    let selector = step_selector(scenario, label_selector, field_selector);
    let scope = request_scope(resource, namespace.as_deref(), &selector, false);
    Some(
        Rv::parse(resource_version.as_deref()).map(|rv| ApiRequest::Watch {
            resource: resource_id(scenario, resource),
            scope,
            selector,
            rv,
            bookmarks: *bookmarks,
            send_initial_events: *send_initial_events,
            timeout_ns: timeout.map(|t| t.as_ns()).unwrap_or(0),
            read_rate: match read_rate {
                None => ReadRate::Instant,
                Some(n) => ReadRate::PerSecond(*n),
            },
        }),
    )
}
