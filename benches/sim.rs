//! Simulator throughput on a cluster-5k-like load (steps/s): 5,000 kubelets, 5,000 kube-proxies,
//! 3 apiservers, leases and pod churn, for 2 minutes of virtual time after start-up.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use watchsim::world::{Action, StepBuffers, World};

fn cluster_5k(c: &mut Criterion) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sim-scenarios/cluster-5k.toml"
    ))
    .unwrap();
    let scenario = Arc::new(watchsim::scenario::load_str("cluster-5k.toml", &text, &[]).unwrap());
    // Start-up (preload, 10,000 initial LISTs) is excluded: measure from a warm world.
    let mut warm = World::new(Arc::clone(&scenario), 1);
    while let Some(a) = warm.next_timed_action() {
        let Action::Fire(k) = a;
        if k.due_ns > 30_000_000_000 {
            break;
        }
        warm.apply(a).unwrap();
    }
    let end = 150_000_000_000;
    let mut probe = warm.clone();
    let mut steps = 0u64;
    while let Some(a) = probe.next_timed_action() {
        let Action::Fire(k) = a;
        if k.due_ns > end {
            break;
        }
        probe.apply(a).unwrap();
        steps += 1;
    }
    let mut g = c.benchmark_group("simulator");
    g.sample_size(10);
    g.throughput(Throughput::Elements(steps));
    g.bench_function("cluster_5k_2min_steady", |b| {
        // The step buffers are lent as the simulator's loop lends them (`sim.rs`).
        let mut buffers = StepBuffers::default();
        b.iter(|| {
            let mut w = warm.clone();
            while let Some(a) = w.next_timed_action() {
                let Action::Fire(k) = a;
                if k.due_ns > end {
                    break;
                }
                w.apply_reusing(a, &mut buffers).unwrap();
            }
            black_box(w.now())
        })
    });
    g.finish();
}

criterion_group!(benches, cluster_5k);
criterion_main!(benches);
