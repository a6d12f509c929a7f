//! The etcd model's revision, compaction and range rules, each pinned to the exact values a real
//! etcd 3.4.23 returned (reference/etcd-semantics.md Part B, OBS-1..OBS-7).

use smallvec::smallvec;
use watchsim::etcd::{
    Compare, CompareOp, CompareTarget, EtcdConfig, EtcdError, EtcdServer, Key, KeyRange, KvRequest,
    KvResponse, Store, Txn, TxnOp, TxnOpResult, WatchOutput,
};

fn k(s: &str) -> Key {
    Key::new(s)
}
fn single(s: &str) -> KeyRange {
    KeyRange::Single(k(s))
}
fn all() -> KeyRange {
    KeyRange::Prefix(k(""))
}
fn put(s: &str) -> TxnOp {
    TxnOp::Put {
        key: k(s),
        value_bytes: 2,
        value_tag: 0,
    }
}
fn del(s: &str) -> TxnOp {
    TxnOp::Delete(single(s))
}
fn txn(success: Vec<TxnOp>) -> Txn {
    Txn {
        compares: smallvec![],
        success: success.into(),
        failure: smallvec![],
    }
}

/// OBS-1 .. OBS-3: the history `2 put foo · 3 put foo · 4 put bar · 5 del foo · 6 txn{put foo, put baz}
/// · 7 txn{put q, del bar, del nothere} · 8 put baz`, with the no-op requests in between.
fn observed_history() -> Store {
    let mut s = Store::new();
    s.put(&k("foo"), 2);
    s.put(&k("foo"), 2);
    s.put(&k("bar"), 2);
    s.delete(&single("foo"));
    s.delete(&single("foo"));
    s.delete(&single("nonexistent"));
    s.txn(&Txn {
        compares: smallvec![Compare {
            key: k("bar"),
            target: CompareTarget::Mod,
            op: CompareOp::Greater,
            value: 0,
        }],
        success: smallvec![put("foo"), put("baz")],
        failure: smallvec![],
    })
    .unwrap();
    s.txn(&txn(vec![put("q"), del("bar"), del("nothere")]))
        .unwrap();
    s.put(&k("baz"), 2);
    s
}

#[test]
fn fresh_store_is_at_revision_one() {
    let s = Store::new();
    let r = s.range(&single("foo"), 0, 0).unwrap();
    assert_eq!(r.revision, 1);
    assert_eq!(r.count, 0);
    assert_eq!(s.compact_revision(), -1);
}

#[test]
fn puts_bump_the_revision_by_one_each() {
    let mut s = Store::new();
    assert_eq!(s.put(&k("foo"), 2).0, 2);
    assert_eq!(s.put(&k("foo"), 2).0, 3);
    assert_eq!(s.put(&k("bar"), 2).0, 4);
}

#[test]
fn delete_bumps_once_and_delete_of_a_missing_key_does_not() {
    let mut s = Store::new();
    s.put(&k("foo"), 2);
    s.put(&k("foo"), 2);
    s.put(&k("bar"), 2);
    let (rev, deleted, evs) = s.delete(&single("foo"));
    assert_eq!((rev, deleted, evs.len()), (5, 1, 1));
    assert_eq!(
        (
            evs[0].kv.mod_revision,
            evs[0].kv.create_revision,
            evs[0].kv.version
        ),
        (5, 0, 0)
    );
    let (rev, deleted, evs) = s.delete(&single("foo"));
    assert_eq!((rev, deleted, evs.len()), (5, 0, 0));
    let (rev, deleted, _) = s.delete(&single("nonexistent"));
    assert_eq!((rev, deleted), (5, 0));
}

#[test]
fn txn_with_two_puts_takes_one_revision() {
    let s = observed_history();
    let foo = s.range(&single("foo"), 6, 0).unwrap().kvs[0].clone();
    let baz = s.range(&single("baz"), 6, 0).unwrap().kvs[0].clone();
    assert_eq!(
        (foo.create_revision, foo.mod_revision, foo.version),
        (6, 6, 1)
    );
    assert_eq!(
        (baz.create_revision, baz.mod_revision, baz.version),
        (6, 6, 1)
    );
}

#[test]
fn read_only_txn_failed_compare_and_absent_delete_do_not_move_the_revision() {
    let mut s = Store::new();
    for key in ["foo", "foo", "bar"] {
        s.put(&k(key), 2);
    }
    s.delete(&single("foo"));
    s.txn(&txn(vec![put("foo"), put("baz")])).unwrap();
    assert_eq!(s.revision(), 6);
    let (r, _) = s.txn(&txn(vec![TxnOp::Range(single("foo"))])).unwrap();
    assert_eq!((r.revision, r.succeeded), (6, true));
    let (r, evs) = s
        .txn(&Txn {
            compares: smallvec![Compare {
                key: k("foo"),
                target: CompareTarget::Version,
                op: CompareOp::Equal,
                value: 99,
            }],
            success: smallvec![put("foo")],
            failure: smallvec![],
        })
        .unwrap();
    assert_eq!((r.revision, r.succeeded, evs.len()), (6, false, 0));
    let (r, _) = s.txn(&txn(vec![del("nothere")])).unwrap();
    assert_eq!(r.revision, 6);
    assert_eq!(r.responses, vec![TxnOpResult::Delete { deleted: 0 }]);
}

#[test]
fn txn_put_and_deletes_share_one_revision_in_op_order() {
    let mut s = observed_history();
    assert_eq!(s.revision(), 8);
    // Revision 7 was `txn{put q 1, del bar, del nothere}`: deleted 1, then 0.
    let r = s.range(&all(), 7, 0).unwrap();
    let keys: Vec<&str> = r.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["baz", "foo", "q"]);
    let (res, evs) = s.txn(&txn(vec![put("m1"), put("m2")])).unwrap();
    assert_eq!(res.revision, 9);
    assert!(evs.iter().all(|e| e.kv.mod_revision == 9));
    assert_eq!(
        evs.iter().map(|e| e.kv.key.as_str()).collect::<Vec<_>>(),
        ["m1", "m2"]
    );
}

#[test]
fn txn_writing_a_key_twice_is_refused_without_a_revision() {
    let mut s = observed_history();
    assert_eq!(
        s.txn(&txn(vec![put("dup"), put("dup")])),
        Err(EtcdError::DuplicateKey)
    );
    assert_eq!(
        s.txn(&txn(vec![put("foo"), del("foo")])),
        Err(EtcdError::DuplicateKey)
    );
    // A delete range before the put counts too, and a put two ops later.
    assert_eq!(
        s.txn(&txn(vec![del("foo"), put("foo")])),
        Err(EtcdError::DuplicateKey)
    );
    assert_eq!(
        s.txn(&txn(vec![put("a"), put("b"), put("a")])),
        Err(EtcdError::DuplicateKey)
    );
    // The failure branch is checked even when the compares would pick the success branch.
    assert_eq!(
        s.txn(&Txn {
            compares: smallvec![],
            success: smallvec![put("ok")],
            failure: smallvec![put("dup"), put("dup")],
        }),
        Err(EtcdError::DuplicateKey)
    );
    assert_eq!(s.revision(), 8);
    // Two deletes of one key are allowed; the second deletes nothing (OBS-7, revision 49).
    s.put(&k("foo"), 2);
    let (r, _) = s.txn(&txn(vec![del("foo"), del("foo")])).unwrap();
    assert_eq!(
        r.responses,
        vec![
            TxnOpResult::Delete { deleted: 1 },
            TxnOpResult::Delete { deleted: 0 }
        ]
    );
}

#[test]
fn same_value_put_bumps_version_and_keeps_create_revision() {
    let s = observed_history();
    let baz = s.get(&k("baz")).unwrap();
    assert_eq!(
        (baz.create_revision, baz.mod_revision, baz.version),
        (6, 8, 2)
    );
    // foo's new generation after the delete at 5.
    let foo = s.get(&k("foo")).unwrap();
    assert_eq!(
        (foo.create_revision, foo.mod_revision, foo.version),
        (6, 6, 1)
    );
}

#[test]
fn history_reads_return_each_key_as_it_was() {
    let s = observed_history();
    let r = s.range(&single("foo"), 3, 0).unwrap();
    assert_eq!(
        r.revision, 8,
        "header revision is the current one, not the one read at"
    );
    let foo = &r.kvs[0];
    assert_eq!(
        (foo.create_revision, foo.mod_revision, foo.version),
        (2, 3, 2)
    );
    assert_eq!(
        s.range(&single("foo"), 5, 0).unwrap().count,
        0,
        "deleted at 5"
    );
    let r = s.range(&all(), 4, 0).unwrap();
    let got: Vec<(&str, i64, i64, i64)> = r
        .kvs
        .iter()
        .map(|kv| {
            (
                kv.key.as_str(),
                kv.create_revision,
                kv.mod_revision,
                kv.version,
            )
        })
        .collect();
    assert_eq!(got, [("bar", 4, 4, 1), ("foo", 2, 3, 2)]);
}

#[test]
fn range_above_the_current_revision_is_a_future_revision() {
    let s = observed_history();
    assert_eq!(
        s.range(&single("foo"), 9, 0),
        Err(EtcdError::FutureRevision)
    );
    assert_eq!(s.range(&single("foo"), 0, 0).unwrap().revision, 8);
    assert_eq!(s.range(&single("foo"), -1, 0).unwrap().revision, 8);
}

#[test]
fn range_with_limit_reports_count_and_more() {
    let mut s = observed_history();
    for key in ["m1", "m2", "m3"] {
        s.put(&k(key), 2);
    }
    // OBS-7: `get --limit=1` over six keys -> one kv, more = true, count = 6.
    let r = s.range(&all(), 0, 1).unwrap();
    assert_eq!((r.kvs.len(), r.more, r.count), (1, true, 6));
    assert_eq!(r.kvs[0].key.as_str(), "baz");
    let r = s.range(&all(), 0, 6).unwrap();
    assert_eq!((r.kvs.len(), r.more, r.count), (6, false, 6));
}

#[test]
fn compaction_errors_and_reads_at_exactly_the_compact_revision() {
    // OBS-4: at revision 15, compact 8; read at 7 fails, at 8 works; compact 8 or 5 again fails
    // "compacted", compact 100 fails "future"; compact at the current revision works.
    let mut s = observed_history();
    for _ in 0..7 {
        s.put(&k("foo"), 2);
    }
    assert_eq!(s.revision(), 15);
    assert_eq!(s.compact(8), Ok(15));
    assert_eq!(s.revision(), 15, "compaction does not bump the revision");
    assert_eq!(
        s.range(&single("foo"), 7, 0),
        Err(EtcdError::Compacted {
            compact_revision: 8
        })
    );
    let r = s.range(&all(), 8, 0).unwrap();
    let got: Vec<(&str, i64)> = r
        .kvs
        .iter()
        .map(|kv| (kv.key.as_str(), kv.mod_revision))
        .collect();
    assert_eq!(got, [("baz", 8), ("foo", 6), ("q", 7)]);
    assert_eq!(
        s.compact(8),
        Err(EtcdError::Compacted {
            compact_revision: 8
        })
    );
    assert_eq!(
        s.compact(5),
        Err(EtcdError::Compacted {
            compact_revision: 8
        })
    );
    assert_eq!(s.compact(100), Err(EtcdError::FutureRevision));
    assert_eq!(s.compact(15), Ok(15));
    assert_eq!(s.compact(16), Err(EtcdError::FutureRevision));
}

#[test]
fn fresh_store_accepts_compaction_at_zero_once() {
    let mut s = Store::new();
    assert_eq!(s.compact(0), Ok(1));
    assert_eq!(
        s.compact(0),
        Err(EtcdError::Compacted {
            compact_revision: 0
        })
    );
    assert_eq!(s.compact(1), Ok(1));
}

#[test]
fn tombstone_exactly_at_the_compact_revision_is_kept_for_watchers() {
    // etcd #18089 (fixed in 3.4.34): a DELETE at the compact revision stays watchable.
    let mut s = Store::new();
    s.put(&k("v2"), 2);
    let (rev, _, _) = s.delete(&single("v2"));
    s.compact(rev).unwrap();
    let (evs, _) = s.events_between(&single("v2"), rev, s.revision(), 1000);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].kv.mod_revision, rev);
    // A tombstone below the compact revision is gone with its generation.
    s.put(&k("x"), 2);
    s.compact(s.revision()).unwrap();
    let (evs, _) = s.events_between(&single("v2"), 1, s.revision(), 1000);
    assert!(evs.is_empty());
}

fn server(max: u64) -> EtcdServer {
    EtcdServer::new(EtcdConfig {
        max_request_bytes: max,
        progress_notify_interval_ns: 0,
    })
}

#[test]
fn request_size_limit_matches_real_etcd() {
    // OBS-7: with the default 1,572,864 B limit, key "big" + 1,572,837 B was accepted and
    // key + value = 1,572,864 B refused with "etcdserver: request is too large".
    let mut e = server(1_572_864);
    let mut out: Vec<WatchOutput> = Vec::new();
    let ok = e.handle_kv(
        &KvRequest::Put {
            key: k("big"),
            value_bytes: 1_572_837,
        },
        &mut out,
    );
    assert_eq!(ok, Ok(KvResponse::Put { revision: 2 }));
    let too_big = e.handle_kv(
        &KvRequest::Put {
            key: k("big"),
            value_bytes: 1_572_838,
        },
        &mut out,
    );
    assert_eq!(too_big, Err(EtcdError::RequestTooLarge));
    assert_eq!(
        too_big.unwrap_err().to_string(),
        "etcdserver: request is too large"
    );
    let ten = e.handle_kv(
        &KvRequest::Put {
            key: k("0123456789"),
            value_bytes: 1_572_830,
        },
        &mut out,
    );
    assert_eq!(ten, Ok(KvResponse::Put { revision: 3 }));
    assert_eq!(e.store.revision(), 3);
}

#[test]
fn error_texts_are_etcds() {
    assert_eq!(
        EtcdError::Compacted {
            compact_revision: 8
        }
        .to_string(),
        "etcdserver: mvcc: required revision has been compacted"
    );
    assert_eq!(
        EtcdError::FutureRevision.to_string(),
        "etcdserver: mvcc: required revision is a future revision"
    );
    assert_eq!(
        EtcdError::DuplicateKey.to_string(),
        "etcdserver: duplicate key given in txn request"
    );
}
