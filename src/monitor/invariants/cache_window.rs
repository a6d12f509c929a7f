//! `cache-window`: a watch cache never holds more events than its capacity; its oldest watchable
//! RV never decreases between re-initialisations; and a watch from an RV inside the window
//! (`>= oldest - 1`) is never refused with 410 (the boundary of Kubernetes PR #68065, KC §2.3).
//! The caches of an apiserver are polled after each of its steps (O(resources)); a refusal is
//! judged from the window at the moment of refusal, which the cacher reports in a notice.

use crate::apiserver::{Apiserver, ResourceId};
use crate::monitor::Checker;
use crate::monitor::invariants::Inv;

/// What was last seen of one cache.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheTrack {
    list_rv: i64,
    oldest: Option<i64>,
}

impl Checker {
    pub(crate) fn poll_caches(&mut self, a: &Apiserver) {
        let idx = a.index as usize;
        let epoch = (a.counters.restarts, a.counters.cache_initializations);
        if let Some(e) = self.cache_epochs.get_mut(idx)
            && *e != epoch
        {
            // A restart or a re-initialisation: windows start over.
            *e = epoch;
            let keys: Vec<(u32, u32)> = self
                .caches
                .range((a.index, 0)..=(a.index, u32::MAX))
                .map(|(k, _)| *k)
                .collect();
            for k in keys {
                self.caches.remove(&k);
            }
        }
        let mut found = Vec::new();
        for c in a.cachers() {
            let cache = &c.cache;
            if cache.len() as u64 > cache.capacity() {
                found.push(format!(
                    "apiserver-{} resource {}: the watch cache holds {} events, its capacity is {}",
                    a.index,
                    c.resource,
                    cache.len(),
                    cache.capacity()
                ));
            }
            let now = CacheTrack {
                list_rv: cache.list_resource_version(),
                oldest: cache.oldest_rv(),
            };
            let key = (a.index, c.resource);
            let before = match self.caches.get_mut(&key) {
                Some(before) => std::mem::replace(before, now),
                None => {
                    self.caches.insert(key, now);
                    continue;
                }
            };
            if before.list_rv == now.list_rv
                && let (Some(old), Some(new)) = (before.oldest, now.oldest)
                && new < old
            {
                found.push(format!(
                    "apiserver-{} resource {}: the oldest watchable RV went back from {old} to {new} without a re-initialisation",
                    a.index, c.resource
                ));
            }
        }
        for msg in found {
            self.violate(Inv::CacheWindow, || msg);
        }
    }

    pub(crate) fn watch_refused(
        &mut self,
        server: u32,
        resource: ResourceId,
        rv: i64,
        oldest: Option<i64>,
    ) {
        if let Some(o) = oldest
            && rv >= o - 1
        {
            self.violate(Inv::CacheWindow, || {
                format!(
                    "apiserver-{server} resource {resource}: a watch from RV {rv} was refused with 410 although the cache's oldest RV is {o}, so any watch from RV {} or later must be served",
                    o - 1
                )
            });
        }
    }
}
