//! Throughput of the etcd model: puts/s into the MVCC store, watch events delivered/s to synced
//! watchers, and the whole simulator on the etcd-churn scenario (steps/s).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use watchsim::etcd::{
    EtcdConfig, EtcdServer, Key, KeyRange, KvRequest, Store, WatchOutput, WatchRequest,
};
use watchsim::world::World;

fn keys(n: usize) -> Vec<Key> {
    (0..n)
        .map(|i| Key::new(&format!("/registry/pods/default/pod-{i:06}")))
        .collect()
}

fn puts(c: &mut Criterion) {
    let ks = keys(10_000);
    let mut g = c.benchmark_group("etcd");
    g.throughput(Throughput::Elements(ks.len() as u64));
    g.bench_function("store_puts", |b| {
        b.iter_batched(
            Store::new,
            |mut s| {
                for k in &ks {
                    black_box(s.put(k, 1024));
                }
                s
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn watch_fanout(c: &mut Criterion) {
    const WATCHERS: usize = 10;
    const WRITES: usize = 10_000;
    let ks = keys(1_000);
    let mut g = c.benchmark_group("etcd");
    g.throughput(Throughput::Elements((WATCHERS * WRITES) as u64));
    g.bench_function("watch_events_delivered", |b| {
        b.iter_batched(
            || {
                let mut e = EtcdServer::new(EtcdConfig {
                    max_request_bytes: 1 << 21,
                    progress_notify_interval_ns: 0,
                });
                let mut out = Vec::new();
                for w in 0..WATCHERS {
                    let req = WatchRequest::Create {
                        watch_id: w as i64,
                        range: KeyRange::Prefix(Key::new("/registry/pods/")),
                        start_revision: 0,
                        progress_notify: false,
                    };
                    e.handle_watch(0, w as u64, &req, &mut out);
                }
                e
            },
            |mut e| {
                let mut out: Vec<WatchOutput> = Vec::with_capacity(WATCHERS);
                for i in 0..WRITES {
                    out.clear();
                    let req = KvRequest::Put {
                        key: ks[i % ks.len()].clone(),
                        value_bytes: 1024,
                    };
                    black_box(e.handle_kv(&req, &mut out).unwrap());
                }
                e
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn simulator(c: &mut Criterion) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sim-scenarios/etcd-churn.toml"
    ))
    .unwrap();
    let scenario = Arc::new(watchsim::scenario::load_str("etcd-churn.toml", &text, &[]).unwrap());
    let mut g = c.benchmark_group("simulator");
    g.sample_size(10);
    g.bench_function("etcd_churn_60s", |b| {
        b.iter(|| {
            let mut w = World::new(Arc::clone(&scenario), 1);
            let mut steps = 0u64;
            while let Some(a) = w.next_timed_action() {
                let watchsim::world::Action::Fire(k) = a;
                if k.due_ns > 60_000_000_000 {
                    break;
                }
                w.apply(a).unwrap();
                steps += 1;
            }
            black_box(steps)
        })
    });
    g.finish();
}

criterion_group!(benches, puts, watch_fanout, simulator);
criterion_main!(benches);
