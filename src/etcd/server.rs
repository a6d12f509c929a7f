//! One etcd server as a message-driven state machine: KV requests (put, delete, range, txn,
//! compact) against the MVCC store, the request size limit (etcd `v3_server.go`), and watch
//! streams via the watch hub. It never calls another component: it returns responses and the
//! watch responses / timers the world must deliver.

use super::mvcc::Store;
use super::watch::{WatchHub, WatchOutput};
use crate::kernel::Nanos;
use crate::kernel::cow::CowBox;
use crate::kernel::shared::{Scratch, Unhashed};
use crate::proto::etcd::{
    EtcdError, Event, Key, KvRequest, KvResponse, StreamId, TxnOp, WatchRequest,
};

/// Bytes of raft framing around a plain put: the largest put a real etcd 3.4.23 accepted with
/// `--max-request-bytes=1572864` had key + value = 1,572,840 bytes (etcd-semantics.md OBS-7).
pub const PUT_FRAMING_BYTES: u64 = 24;

/// Server flags.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EtcdConfig {
    /// `--max-request-bytes`.
    pub max_request_bytes: u64,
    /// `--experimental-watch-progress-notify-interval` (0 = off).
    pub progress_notify_interval_ns: Nanos,
}

/// Counters for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct EtcdCounters {
    /// Range requests served (including ranges inside txns).
    pub range_requests: u64,
    /// Value bytes returned by ranges.
    pub range_bytes: u64,
    /// Write requests that changed the store.
    pub writes: u64,
    /// Key and value bytes written (each put is a new full copy in MVCC).
    pub write_bytes: u64,
}

/// One etcd member: store + watch hub.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EtcdServer {
    /// The MVCC store, shared by explorer states until one of them writes to it (a state's copy
    /// is then one pointer, not the store's index and history).
    pub store: CowBox<Store>,
    /// The watch server.
    pub hub: WatchHub,
    /// Flags.
    pub config: EtcdConfig,
    /// Report counters.
    pub counters: EtcdCounters,
    /// A txn's events, between the store and the watch hub: one buffer reused by every write
    /// (issue 16). Empty between requests, so never part of a state.
    txn_events: Unhashed<Scratch<Event>>,
}

impl EtcdServer {
    /// A fresh member.
    pub fn new(config: EtcdConfig) -> Self {
        EtcdServer {
            store: CowBox::new(Store::new()),
            hub: WatchHub::new(),
            config,
            counters: EtcdCounters::default(),
            txn_events: Unhashed::default(),
        }
    }

    fn request_bytes(req: &KvRequest) -> u64 {
        // Simplification (notes.md): framing is modelled as a flat 24 bytes on top of the keys and
        // values, which matches real etcd for a plain put near the limit.
        let keys_values: u64 = match req {
            KvRequest::Put { key, value_bytes } => key.len() as u64 + value_bytes,
            KvRequest::Txn(t) => {
                let ops = t.success.iter().chain(t.failure.iter());
                let op_bytes: u64 = ops
                    .map(|op| match op {
                        TxnOp::Put {
                            key, value_bytes, ..
                        } => key.len() as u64 + value_bytes,
                        TxnOp::Delete(r) | TxnOp::Range(r) => r.start().len() as u64,
                    })
                    .sum();
                op_bytes + t.compares.iter().map(|c| c.key.len() as u64).sum::<u64>()
            }
            KvRequest::Delete(r) | KvRequest::Range { range: r, .. } => r.start().len() as u64,
            KvRequest::Compact { .. } => 0,
        };
        keys_values + PUT_FRAMING_BYTES
    }

    /// Asks for the lines that handling `req` reads first, at `stage`: its key's index slot and
    /// remembered watchers (hints: no effect on the server).
    #[inline]
    pub fn prefetch_for_kv(&self, req: &KvRequest, stage: crate::kernel::prefetch::Stage) {
        if let Some(key) = req.first_key() {
            self.store.prefetch(key, stage);
            self.hub.prefetch_for_write(key, stage);
        }
    }

    /// Serves a KV request. Write events go to synced watchers through `out`.
    pub fn handle_kv(
        &mut self,
        req: &KvRequest,
        out: &mut Vec<WatchOutput>,
    ) -> Result<KvResponse, EtcdError> {
        if Self::request_bytes(req) > self.config.max_request_bytes {
            return Err(EtcdError::RequestTooLarge);
        }
        match req {
            KvRequest::Put { key, value_bytes } => {
                let (rev, ev) = self.store.put(key, *value_bytes);
                self.counters.writes += 1;
                self.counters.write_bytes += key.len() as u64 + value_bytes;
                self.hub.notify(rev, std::slice::from_ref(&ev), out);
                Ok(KvResponse::Put { revision: rev })
            }
            KvRequest::Delete(range) => {
                let (rev, deleted, evs) = self.store.delete(range);
                if deleted > 0 {
                    self.counters.writes += 1;
                }
                self.hub.notify(rev, &evs, out);
                Ok(KvResponse::Delete {
                    revision: rev,
                    deleted,
                })
            }
            KvRequest::Range {
                range,
                revision,
                limit,
            } => {
                self.counters.range_requests += 1;
                let r = self.store.range(range, *revision, *limit)?;
                self.counters.range_bytes += r
                    .kvs
                    .iter()
                    .map(|kv| kv.value_bytes + kv.key.len() as u64)
                    .sum::<u64>();
                Ok(KvResponse::Range(r))
            }
            KvRequest::Txn(txn) => {
                let mut evs = self.txn_events.take();
                let result = self.store.txn_into(txn, &mut evs);
                if let Ok(result) = &result {
                    for r in &result.responses {
                        if let crate::proto::etcd::TxnOpResult::Range(rr) = r {
                            self.counters.range_requests += 1;
                            self.counters.range_bytes += rr
                                .kvs
                                .iter()
                                .map(|kv| kv.value_bytes + kv.key.len() as u64)
                                .sum::<u64>();
                        }
                    }
                    if !evs.is_empty() {
                        self.counters.writes += 1;
                        self.counters.write_bytes += evs
                            .iter()
                            .map(|e| e.kv.key.len() as u64 + e.kv.value_bytes)
                            .sum::<u64>();
                        self.hub.notify(result.revision, &evs, out);
                    }
                }
                self.txn_events.put_back(evs);
                result.map(KvResponse::Txn)
            }
            KvRequest::Compact { revision } => {
                let rev = self.store.compact(*revision)?;
                Ok(KvResponse::Compact { revision: rev })
            }
        }
    }

    /// Writes directly to the store at start-up (objects that exist before the run), notifying
    /// nobody: there are no watchers yet.
    pub fn preload(&mut self, key: &Key, value_bytes: u64) -> Event {
        self.store.put(key, value_bytes).1
    }

    /// Serves a watch-stream request.
    pub fn handle_watch(
        &mut self,
        now: Nanos,
        stream: StreamId,
        req: &WatchRequest,
        out: &mut Vec<WatchOutput>,
    ) {
        self.hub.handle(now, stream, req, &self.store, out);
    }

    /// The sync loop's timer fired.
    pub fn sync_watchers(&mut self, now: Nanos, out: &mut Vec<WatchOutput>) {
        self.hub.sync(now, &self.store, out);
    }

    /// A stream's progress ticker fired.
    pub fn progress_tick(&mut self, now: Nanos, stream: StreamId, out: &mut Vec<WatchOutput>) {
        self.hub.progress_tick(now, stream, &self.store, out);
    }
}
