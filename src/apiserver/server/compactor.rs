//! The apiserver's compactor (`etcd3/compact.go`): every `--etcd-compaction-interval` each
//! apiserver runs a txn on `compact_rev_key` comparing its logical time; the one whose txn
//! succeeds compacts etcd at the revision it read one interval before, the others adopt its
//! logical time.

use super::*;
use smallvec::smallvec;

impl Apiserver {
    /// The compaction interval passed: re-arm, and (when the process is up) send the txn.
    pub(super) fn compactor_tick(&mut self, out: &mut Out<'_>) -> &'static str {
        out.timer(
            out.now + self.compaction_interval_ns,
            Timer::Apiserver(self.index, ApiTimer::Compact),
        );
        if self.down {
            // Fix (found by the convergence property test): a killed process's compactor
            // does not run; it used to open an etcd connection that the restart then
            // inherited closed, so the restarted caches never listed.
            return "down";
        }
        let key = Key::new(COMPACT_REV_KEY);
        let rev_text_bytes = self.compactor_rev.to_string().len() as u64;
        let txn = Txn {
            compares: smallvec![Compare {
                key: key.clone(),
                target: CompareTarget::Version,
                op: CompareOp::Equal,
                value: self.compactor_t,
            }],
            success: smallvec![TxnOp::Put {
                key: key.clone(),
                value_bytes: rev_text_bytes,
                value_tag: 0,
            }],
            failure: smallvec![TxnOp::Range(KeyRange::Single(key))],
        };
        self.send_etcd(KvRequest::Txn(Box::new(txn)), EtcdPurpose::CompactTxn, out);
        "compactor.tick"
    }

    /// The compactor's txn on `compact_rev_key` answered (`etcd3/compact.go`): the winner
    /// compacts etcd at the revision it saw one interval ago; a loser adopts the winner's
    /// logical time.
    pub(super) fn compaction_txn_answered(
        &mut self,
        resp: Result<KvResponse, EtcdError>,
        out: &mut Out<'_>,
    ) {
        let Ok(KvResponse::Txn(t)) = resp else {
            return;
        };
        let cur_rev = t.revision;
        if !t.succeeded {
            // Another apiserver compacted: adopt its logical time (etcd3/compact.go).
            if let Some(TxnOpResult::Range(rr)) = t.responses.first() {
                self.compactor_t = rr.kvs.first().map(|kv| kv.version).unwrap_or(0);
            }
        } else {
            self.compactor_t += 1;
            if self.compactor_rev != 0 {
                let revision = self.compactor_rev;
                self.counters.compactions += 1;
                self.known_compact_rev = self.known_compact_rev.max(revision);
                self.send_etcd(KvRequest::Compact { revision }, EtcdPurpose::Compact, out);
            }
        }
        self.compactor_rev = cur_rev;
    }
}
