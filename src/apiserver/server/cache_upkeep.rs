//! Background work of the 1.34+ watch caches beside serving requests:
//! - the cache consistency checker (`cacher/consistency/checker.go`, `DetectCacheInconsistency`,
//!   beta and on since 1.34): per cached resource, a first check after `Jitter(5m, 0.5)`, then
//!   `JitterUntil(5m, 0.5, sliding)`. A check lists the cache at RV "0" (in memory) and etcd at
//!   `Exact` = the cache's RV in pages of 10 000 (`checkerListPageSize`), compares the digests of
//!   (key, RV) and marks the cache consistent or not (`MarkConsistent`: an inconsistent cache
//!   stops serving from snapshots until a later check passes);
//! - the cacher's snapshot compactor (`cacher/compactor.go`, 1.34+): every 15 s it reads the
//!   compaction revision the etcd3 store's compactor knows and drops the snapshots below it
//!   (`WatchCacheStorage.Compact` → `RemoveLess`).

use super::*;
use crate::kernel::digest::Digest;

/// `consistency.CheckPeriod`.
pub const CONSISTENCY_CHECK_PERIOD_NS: Nanos = 300_000_000_000;
/// `checkerListPageSize`.
pub const CONSISTENCY_CHECK_PAGE: i64 = 10_000;
/// `compactorPollPeriod` of the cacher's snapshot compactor.
pub const SNAPSHOT_COMPACTOR_POLL_NS: Nanos = 15_000_000_000;

/// One consistency check in progress: the cache's RV and digest, and etcd's digest so far.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct ConsistencyCheck {
    resource: ResourceId,
    rv: i64,
    cache_digest: Digest,
    etcd_digest: Digest,
}

impl Apiserver {
    /// Arms the first consistency check of every cache and the snapshot compactor at start.
    pub(super) fn start_cache_upkeep(&mut self, out: &mut Out<'_>) {
        self.consistency_due = Vector::new();
        if self.rules.detects_cache_inconsistency() {
            for r in 0..self.cachers.len() {
                let due = if self.cachers[r].is_some() {
                    out.now + self.consistency_jitter()
                } else {
                    0
                };
                self.consistency_due.push_back(due);
                if due > 0 {
                    out.timer(
                        due,
                        Timer::Apiserver(self.index, ApiTimer::ConsistencyCheck(r as ResourceId)),
                    );
                }
            }
        }
        if self.rules.list_from_cache_snapshots() && self.cachers.iter().any(Option::is_some) {
            self.snapshot_compactor_due = out.now + SNAPSHOT_COMPACTOR_POLL_NS;
            out.timer(
                self.snapshot_compactor_due,
                Timer::Apiserver(self.index, ApiTimer::SnapshotCompactor),
            );
        }
    }

    /// `wait.Jitter(CheckPeriod, 0.5)`: 5 to 7.5 minutes.
    fn consistency_jitter(&mut self) -> Nanos {
        CONSISTENCY_CHECK_PERIOD_NS + self.rng.below(CONSISTENCY_CHECK_PERIOD_NS / 2)
    }

    /// The next check of `r`, `Jitter(5m, 0.5)` after the last one ended (sliding).
    fn rearm_consistency_check(&mut self, r: ResourceId, out: &mut Out<'_>) {
        let due = out.now + self.consistency_jitter();
        if let Some(slot) = self.consistency_due.get_mut(r as usize) {
            *slot = due;
            out.timer(
                due,
                Timer::Apiserver(self.index, ApiTimer::ConsistencyCheck(r)),
            );
        }
    }

    /// A consistency check of `r` is due: `CalculateDigests` starts with the cache's side (a
    /// not-ready cache is an error: the next check comes a period later).
    pub(super) fn consistency_check(&mut self, r: ResourceId, out: &mut Out<'_>) -> &'static str {
        if self.consistency_due.get(r as usize) != Some(&out.now) {
            return "consistency.stale";
        }
        let Some(c) = self.cacher(r).filter(|c| c.ready) else {
            self.rearm_consistency_check(r, out);
            return "consistency.not_ready";
        };
        let check = ConsistencyCheck {
            resource: r,
            rv: c.cache.resource_version(),
            cache_digest: c.cache.store_digest(),
            etcd_digest: Digest::default(),
        };
        self.consistency_page(check, None, out);
        "consistency.check"
    }

    /// One etcd page of a check: `GetList` at `Exact` = the cache's RV, 10 000 objects, after
    /// the last key of the previous page.
    fn consistency_page(&mut self, check: ConsistencyCheck, after: Option<Key>, out: &mut Out<'_>) {
        let prefix = resource_prefix(&self.resource_names[check.resource as usize]);
        let range = match after {
            None => KeyRange::Prefix(prefix),
            Some(after) => KeyRange::PrefixAfter { prefix, after },
        };
        let req = KvRequest::Range {
            range,
            revision: check.rv,
            limit: CONSISTENCY_CHECK_PAGE,
        };
        let r = check.resource;
        if !self.send_etcd(req, EtcdPurpose::ConsistencyPage(Box::new(check)), out) {
            self.rearm_consistency_check(r, out);
        }
    }

    /// etcd answered a page of a check: the next page, or the verdict (`checker.go check`).
    pub(super) fn consistency_page_read(
        &mut self,
        mut check: ConsistencyCheck,
        resp: Result<KvResponse, EtcdError>,
        out: &mut Out<'_>,
    ) {
        let r = check.resource;
        let Ok(KvResponse::Range(range)) = resp else {
            // A compacted RV or a failed read: "Cache consistency check error".
            return self.rearm_consistency_check(r, out);
        };
        self.counters.consistency_check_pages += 1;
        self.counters.etcd_read_bytes += range.kvs.iter().map(|kv| kv.value_bytes).sum::<u64>();
        for kv in &range.kvs {
            check.etcd_digest.add(&kv.key, kv.mod_revision);
        }
        if range.more
            && let Some(last) = range.kvs.last()
        {
            let after = last.key.clone();
            return self.consistency_page(check, Some(after), out);
        }
        let consistent = check.etcd_digest == check.cache_digest;
        if let Some(Some(c)) = self.cachers.get_mut(r as usize) {
            c.cache.mark_consistent(consistent);
        }
        self.rearm_consistency_check(r, out);
    }

    /// The snapshot compactor's 15 s poll: drop every cache's snapshots below the compaction
    /// revision this apiserver's etcd3 compactor knows.
    pub(super) fn snapshot_compactor_poll(&mut self, out: &mut Out<'_>) -> &'static str {
        if self.snapshot_compactor_due != out.now {
            return "snapshot_compactor.stale";
        }
        self.snapshot_compactor_due = out.now + SNAPSHOT_COMPACTOR_POLL_NS;
        out.timer(
            self.snapshot_compactor_due,
            Timer::Apiserver(self.index, ApiTimer::SnapshotCompactor),
        );
        let rev = self.known_compact_rev;
        if rev == 0 {
            return "snapshot_compactor";
        }
        for c in self.cachers.iter_mut().flatten() {
            if c.cache.snapshots_below(rev) {
                c.cache.compact_snapshots(rev);
            }
        }
        "snapshot_compactor"
    }
}
