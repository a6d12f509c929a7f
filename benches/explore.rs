//! Explorer throughput (unique states/s): watchsim's own BFS (`watchsim::check::explore::explore`)
//! against Stateright's BFS checker (`spawn_bfs`), side by side on the same model and the same
//! bounded state space.
//!
//! **The model.** Both searches run `sim-scenarios/explore-2x3x3.toml` (2 informers x 3 keys x
//! a fixed watch cache of 3 x 1 compaction x 1 disconnect, 20 ms reordering window), to depth 24
//! (about 25,000 unique states). Stateright sees it through [`WorldModel`], an
//! implementation of its `Model` trait over `watchsim::world::World`: the initial state is
//! `spec.world()`, the actions of a state are `enabled_actions(state, spec.end_ns)` (the explorer's
//! own enabling rule: FIFO heads of connections, timers, nothing after the scenario's end), the
//! next state is a clone with the action applied (`None` when `apply` refuses it), and one
//! `always` property says that no online invariant has fired, which is what the explorer checks
//! after every transition. Stateright's checker therefore generates exactly the transitions the
//! explorer generates; what is compared is the search machinery (queue, visited set, per-state
//! bookkeeping) around the same `World::clone` + `World::apply` + fingerprint work.
//!
//! **Why the hashing is aligned.** Stateright deduplicates states by hashing them (its `Hash`
//! impl, fed to an AHasher with fixed keys); the explorer deduplicates by a 64-bit FNV fingerprint
//! of the `World` (its `Hash`, which leaves out observations and the scenario, plus the state
//! reductions when enabled). Hashing the `World` directly would make Stateright merge a
//! different set of states (and pay a different cost per state), so the adapter's state,
//! [`Fingerprinted`], hashes as the single `u64` the explorer would compute for it (see
//! [`explorer_fingerprint`], the one place that decides it), and compares equal exactly when the
//! fingerprints are equal. Both checkers then see the same equivalence classes and compute one
//! fingerprint per generated transition.
//!
//! **Same bounds.** Both searches are single-threaded, limited to the same depth
//! ([`MAX_DEPTH`] actions from the initial state), and capped at [`MAX_STATES`]. The two checkers
//! do not count against a state cap the same way: past `max_states` distinct states the explorer
//! stops enqueueing but keeps adding new successors' fingerprints to its visited set (so its
//! `unique` can far exceed the cap: 86,927 for a cap of 20,000 at depth 40), while Stateright's
//! `target_state_count` counts generated states, duplicates included, and is looked at only
//! between blocks of 1,500 expansions. A cap that binds would cut the two searches at different
//! places, so the bounds are chosen for the depth to bind and the cap not to: both search the
//! complete space within `MAX_DEPTH` (no unique-state bound is common to both). Both unique
//! counts include the initial state and must be equal, and Stateright's generated count (the
//! initial state plus every transition, duplicates included) must be the explorer's transition
//! count plus one; the bench checks this and prints a warning when it does not hold. Stateright
//! numbers depths from 1: its `target_max_depth` is `MAX_DEPTH + 1`, and the bench prints its
//! depth minus one.
//!
//! **Same conditions.** A search holds its whole BFS frontier, about 1.7 GB of states here
//! (some 48 KB a state). With glibc's default malloc settings every run gives that memory back
//! to the kernel when it frees its states (the main arena is trimmed with `brk`; a thread's arena
//! drops its heaps) and faults it in afresh on the next run: 420,000 minor page faults, most of
//! a run's time and most of its variance on a shared VM, and unequal between the two checkers
//! (`spawn_bfs` always searches on a new worker thread, the explorer on the caller's), which
//! made the explorer, repeated on the main thread, look three times faster for reasons that have
//! nothing to do with the search. So the bench runs the explorer on a fresh thread too and, on
//! glibc, keeps one arena that is never trimmed (`mallopt(M_ARENA_MAX, 1)` and
//! `mallopt(M_TRIM_THRESHOLD, -1)`, as `MALLOC_ARENA_MAX=1 MALLOC_TRIM_THRESHOLD_=-1` would):
//! after the first run both searches reuse warm memory, and what is measured is the search
//! itself. The one-off timings below come after an untimed run of each.
//!
//! Before criterion runs, the bench times one run of each and prints a line per checker (unique
//! states, seconds, states/s) and the ratio watchsim/stateright.
//!
//! ```sh
//! cargo bench --bench explore
//! ```

use std::hash::{Hash, Hasher};
use std::time::Instant;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group};
use stateright::{Checker, Model, Property};
use watchsim::check::explore::{
    ExploreOptions, ExploreOutcome, Reductions, enabled_actions, explore, fingerprint_with,
};
use watchsim::check::runner::Spec;
use watchsim::world::{Action, World};

/// Longest action sequence explored (the explorer's `max_depth`; Stateright's
/// `target_max_depth` is this plus one, as it numbers the initial state's depth 1).
const MAX_DEPTH: usize = 24;

/// State cap given to both checkers; chosen above the size of the depth-bounded space so that
/// it never binds (see the module comment).
const MAX_STATES: usize = 200_000;

/// The explorer's fingerprint of a world under `reductions`: the one place that decides how the
/// adapter's states hash, so that Stateright deduplicates exactly as the explorer does. The
/// explorer does not apply reductions yet; when it does (`fingerprint_with`), this becomes
/// `fingerprint_with(world, reductions)`.
fn explorer_fingerprint(world: &World, reductions: Reductions) -> u64 {
    fingerprint_with(world, reductions)
}

fn spec() -> Spec {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sim-scenarios/explore-2x3x3.toml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    Spec::load(path, &text, &[], None).unwrap()
}

/// A `World` that hashes and compares as its explorer fingerprint.
#[derive(Debug, Clone)]
struct Fingerprinted {
    world: World,
    reductions: Reductions,
}

impl Hash for Fingerprinted {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(explorer_fingerprint(&self.world, self.reductions));
    }
}

impl PartialEq for Fingerprinted {
    fn eq(&self, other: &Self) -> bool {
        explorer_fingerprint(&self.world, self.reductions)
            == explorer_fingerprint(&other.world, other.reductions)
    }
}
impl Eq for Fingerprinted {}

/// The scenario as a Stateright model.
struct WorldModel {
    spec: Spec,
    reductions: Reductions,
}

impl Model for WorldModel {
    type State = Fingerprinted;
    type Action = Action;

    fn init_states(&self) -> Vec<Fingerprinted> {
        vec![Fingerprinted {
            world: self.spec.world(),
            reductions: self.reductions,
        }]
    }

    fn actions(&self, state: &Fingerprinted, actions: &mut Vec<Action>) {
        actions.extend(enabled_actions(&state.world, self.spec.end_ns));
    }

    fn next_state(&self, last: &Fingerprinted, action: Action) -> Option<Fingerprinted> {
        let mut world = last.world.clone();
        world.apply(action).ok()?;
        Some(Fingerprinted {
            world,
            reductions: self.reductions,
        })
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![Property::always(
            "no online invariant fired",
            |_, s: &Fingerprinted| s.world.observations().checker.first_online().is_none(),
        )]
    }
}

/// The explorer's search, on a thread of its own like Stateright's worker (see the module
/// comment, "Same conditions").
fn run_watchsim(spec: &Spec, reductions: Reductions) -> ExploreOutcome {
    let opts = ExploreOptions {
        max_depth: MAX_DEPTH,
        max_states: MAX_STATES,
        jobs: 1,
        reductions,
        measure_reductions: false,
        progress: false,
    };
    let out = std::thread::scope(|s| s.spawn(|| explore(spec, opts)).join().unwrap());
    assert!(out.violation.is_none(), "{:?}", out.violation);
    out
}

/// Unique states, generated states (the initial one and duplicates included) and max depth.
struct SrOutcome {
    unique: usize,
    generated: usize,
    max_depth: usize,
}

fn run_stateright(spec: &Spec, reductions: Reductions) -> SrOutcome {
    let checker = WorldModel {
        spec: spec.clone(),
        reductions,
    }
    .checker()
    .threads(1)
    .target_max_depth(MAX_DEPTH + 1)
    .target_state_count(MAX_STATES)
    .spawn_bfs()
    .join();
    checker.assert_properties();
    SrOutcome {
        unique: checker.unique_state_count(),
        generated: checker.state_count(),
        max_depth: checker.max_depth(),
    }
}

/// One timed run of each, printed once; returns the unique-state counts for the throughput.
fn report_once(spec: &Spec, reductions: Reductions) -> (u64, u64) {
    // Warm up the allocator (and caches) first: the first search of a process faults in all its
    // memory.
    run_watchsim(spec, reductions);
    run_stateright(spec, reductions);
    let t = Instant::now();
    let ws = run_watchsim(spec, reductions);
    let ws_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let sr = run_stateright(spec, reductions);
    let sr_secs = t.elapsed().as_secs_f64();
    let ws_rate = ws.unique as f64 / ws_secs;
    let sr_rate = sr.unique as f64 / sr_secs;
    println!(
        "explore-2x3x3, max depth {MAX_DEPTH}, state cap {MAX_STATES}, 1 thread, {reductions:?}"
    );
    println!(
        "  watchsim   {:>7} unique states  {:>7} transitions  depth {}  {:.3} s  {:.0} states/s",
        ws.unique, ws.explored, ws.max_depth, ws_secs, ws_rate
    );
    println!(
        "  stateright {:>7} unique states  {:>7} generated    depth {}  {:.3} s  {:.0} states/s",
        sr.unique,
        sr.generated,
        sr.max_depth - 1,
        sr_secs,
        sr_rate
    );
    println!("  ratio watchsim/stateright: {:.2}", ws_rate / sr_rate);
    if ws.unique as usize >= MAX_STATES || sr.generated >= MAX_STATES {
        println!("  WARNING: the state cap bound a search; raise MAX_STATES or lower MAX_DEPTH");
    }
    if ws.unique as usize != sr.unique || ws.explored as usize + 1 != sr.generated {
        println!(
            "  WARNING: the two searches differ (unique {} vs {}, transitions {} vs {} - 1)",
            ws.unique, sr.unique, ws.explored, sr.generated
        );
    }
    (ws.unique, sr.unique as u64)
}

/// Makes every thread allocate from glibc's main arena and never hands freed memory back to
/// the kernel (see the module comment, "Same conditions").
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn warm_malloc() {
    use std::ffi::c_int;
    const M_TRIM_THRESHOLD: c_int = -1;
    const M_ARENA_MAX: c_int = -8;
    unsafe extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }
    // SAFETY: glibc's mallopt with documented parameters (a trim threshold of -1 disables
    // trimming), called first thing in `main`, before any thread starts.
    unsafe {
        mallopt(M_ARENA_MAX, 1);
        mallopt(M_TRIM_THRESHOLD, -1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn warm_malloc() {}

fn explorers(c: &mut Criterion) {
    let spec = spec();
    let reductions = Reductions::default();
    let (ws_unique, sr_unique) = report_once(&spec, reductions);
    let mut g = c.benchmark_group("explore_2x3x3");
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(std::time::Duration::from_secs(1));
    g.measurement_time(std::time::Duration::from_secs(10));
    g.throughput(Throughput::Elements(ws_unique));
    g.bench_function("watchsim_bfs", |b| {
        b.iter(|| run_watchsim(&spec, reductions).unique)
    });
    g.throughput(Throughput::Elements(sr_unique));
    g.bench_function("stateright_bfs", |b| {
        b.iter(|| run_stateright(&spec, reductions).unique)
    });
    g.finish();
}

criterion_group!(benches, explorers);

fn main() {
    warm_malloc();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
