//! A watch's initial state as one message ([`Msg::ApiWatchBatch`]), built once and shared by the
//! watchers that start on the same cache state with the same scope and selector (thousands of
//! kube-proxies syncing by WatchList get one copy, not one each). What a watcher receives is
//! what the real cacher's `processInterval` sends it: the objects of its scope that its selector
//! matches, as ADDED events at their own RVs, in key order (`newCacheIntervalFromStore`).

use std::sync::Arc;

use crate::apiserver::api::{ApiWatchEvent, EventBatch};
use crate::apiserver::cache_store::CacheStore;
use crate::apiserver::selector::Selector;
use crate::apiserver::watch_cache::{EventType, scan_scope};
use crate::proto::Msg;
use crate::proto::etcd::KeyRange;

/// The last initial state built: valid while the cache's store is at the same generation (no
/// write since), for the same scope and selector.
#[derive(Debug, Clone)]
pub(super) struct InitialStateMemo {
    generation: u64,
    scope: KeyRange,
    selector: Selector,
    events: Arc<EventBatch>,
}

/// The initial events of a watch on `scope` with `selector` over `store`, reusing `memo`'s when
/// it was built on the same store for the same request, and remembering them there otherwise.
pub(super) fn initial_events(
    memo: &mut Option<InitialStateMemo>,
    store: &CacheStore,
    scope: &KeyRange,
    selector: &Selector,
) -> Arc<EventBatch> {
    if let Some(m) = memo.as_ref()
        && m.generation == store.generation()
        && &m.scope == scope
        && &m.selector == selector
    {
        return m.events.clone();
    }
    let ordered = store.ordered();
    let events: Vec<ApiWatchEvent> = scan_scope(&ordered, scope)
        .filter(|(key, obj)| selector.matches(key, obj.labels))
        .map(|(key, obj)| ApiWatchEvent::Object {
            kind: EventType::Added,
            key: key.clone(),
            rv: obj.rv,
            bytes: obj.bytes,
            prev_rv: 0,
        })
        .collect();
    let events = Arc::new(EventBatch::new(events));
    *memo = Some(InitialStateMemo {
        generation: store.generation(),
        scope: scope.clone(),
        selector: selector.clone(),
        events: events.clone(),
    });
    events
}

/// The message that carries `events`: none for an empty state, the event itself for one, a
/// batch for more.
pub(super) fn initial_message(events: &Arc<EventBatch>) -> Option<Msg> {
    match events.events().len() {
        0 => None,
        1 => Some(Msg::ApiWatch(events.events()[0].clone())),
        _ => Some(Msg::ApiWatchBatch(events.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::watch_cache::Obj;
    use crate::proto::etcd::Key;

    fn store(n: i64) -> CacheStore {
        CacheStore::from_ordered(
            (1..=n)
                .map(|i| {
                    let obj = Obj {
                        rv: i,
                        bytes: 10,
                        labels: 0,
                    };
                    (Key::new(&format!("/registry/pods/default/p{i}")), obj)
                })
                .collect(),
        )
    }

    #[test]
    fn watchers_on_the_same_state_share_one_batch_until_the_store_changes() {
        let mut memo = None;
        let mut s = store(3);
        let all = KeyRange::Prefix(Key::new("/registry/pods/"));
        let everything = Selector::default();
        let first = initial_events(&mut memo, &s, &all, &everything);
        assert_eq!(first.events().len(), 3);
        let again = initial_events(&mut memo, &s, &all, &everything);
        assert!(
            Arc::ptr_eq(&first, &again),
            "same store, scope and selector: shared"
        );
        let one = KeyRange::Single(Key::new("/registry/pods/default/p2"));
        let single = initial_events(&mut memo, &s, &one, &everything);
        assert_eq!(single.events().len(), 1, "another scope: built anew");
        let mut expected = crate::kernel::digest::Digest::default();
        expected.add("/registry/pods/default/p2", 2);
        assert_eq!(single.digest(), expected);
        s.remove(&Key::new("/registry/pods/default/p1"));
        let after = initial_events(&mut memo, &s, &all, &everything);
        assert_eq!(after.events().len(), 2, "the store changed: built anew");
        s.put(
            &Key::new("/registry/pods/default/p1"),
            Obj {
                rv: 9,
                bytes: 10,
                labels: 0,
            },
        );
        let back = initial_events(&mut memo, &s, &all, &everything);
        assert!(
            !Arc::ptr_eq(&first, &back),
            "the same keys again, but at a later generation: built anew"
        );
        assert_eq!(back.events().len(), 3);
        assert!(matches!(
            initial_message(&after),
            Some(Msg::ApiWatchBatch(_))
        ));
        assert!(matches!(initial_message(&single), Some(Msg::ApiWatch(_))));
    }
}
