//! The explorer (`watchsim explore`): breadth-first search over `World` states from a scenario's
//! initial state, where every enabled action is a branch and time is abstracted (design.md "The
//! explorer"). Enabled actions: every pending timer, the head message of each connection and
//! direction (FIFO, as TCP and HTTP/2 deliver), every connection reset; a multicast is enabled
//! when it heads every connection it goes to. Entries due after the scenario's duration are not
//! enabled. States are deduplicated by a 64-bit FNV fingerprint of the `World` (its `Hash`,
//! which leaves out observations and the scenario); the online invariants are checked after
//! every transition, and BFS order makes the first violation's path a shortest one.
//!
//! Reductions (docs/explorer.md measures them): the time abstraction of the fingerprint
//! (`World::hash_time_abstract`), symmetry over interchangeable clients
//! (`World::canonical_symmetric`) and, per scenario, a reordering window (`[explore] window`, a
//! delay bound). End-of-run checks: `relist-bound` and the bound `etcd_lists_per_client_hour` are
//! reported as soon as the counts made so far exceed the bound over the whole run (they never
//! decrease); `convergence` is judged in states where nothing is enabled any more. Each BFS level is expanded on `jobs` threads and
//! merged in a fixed order, so results do not depend on the thread count.

use std::collections::{BTreeMap, HashSet};
use std::hash::Hash;
use std::time::Instant;

use super::explore_measure::{ReductionBounds, ReductionMeter};
use super::invariants::Inv;
use super::runner::Spec;
use crate::kernel::{EventKey, Fnv64};
use crate::world::{Action, Dir, Pending, World};

/// Bounds and settings of a search.
#[derive(Debug, Clone, Copy)]
pub struct ExploreOptions {
    /// Longest action sequence explored.
    pub max_depth: usize,
    /// Most distinct states kept.
    pub max_states: usize,
    /// Worker threads expanding a BFS level (1 = single-threaded). The result does not depend
    /// on it.
    pub jobs: usize,
    /// Which state-space reductions the fingerprint applies.
    pub reductions: Reductions,
    /// Measure what normalising revisions and symmetry over keys could merge
    /// (`explore_measure.rs`); costs a little per unique state.
    pub measure_reductions: bool,
    /// Print a progress line to stderr every million unique states (depth-first search only;
    /// never part of the result).
    pub progress: bool,
}

impl Default for ExploreOptions {
    fn default() -> Self {
        ExploreOptions {
            max_depth: 40,
            max_states: 1_000_000,
            jobs: 1,
            reductions: Reductions::default(),
            measure_reductions: false,
            progress: false,
        }
    }
}

/// State-space reductions: each merges states that the fingerprint would otherwise tell apart
/// (docs/explorer.md, "Reductions, measured", measures each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reductions {
    /// Leave absolute virtual time out of the fingerprint: the clock, the agenda's due times and
    /// sequence numbers (only the order of pending events counts) and the connections' FIFO
    /// high-water marks.
    pub time: bool,
    /// Rename interchangeable clients (same population and scope) and the connections they own
    /// into a canonical order before fingerprinting (`World::canonical_symmetric`).
    pub symmetry: bool,
}

impl Default for Reductions {
    fn default() -> Self {
        Reductions {
            time: true,
            symmetry: true,
        }
    }
}

/// What a search found.
#[derive(Debug, Clone)]
pub struct ExploreOutcome {
    /// Transitions applied (states explored, duplicates included).
    pub explored: u64,
    /// Distinct states seen.
    pub unique: u64,
    /// Deepest level reached.
    pub max_depth: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// True when the whole bounded space was searched (no bound cut it short).
    pub complete: bool,
    /// The first violation: invariant name and the action path to it (a shortest one).
    pub violation: Option<(String, Vec<EventKey>)>,
    /// With `measure_reductions`: upper bounds on what two further reductions could merge.
    pub reduction_bounds: Option<ReductionBounds>,
}

/// A stable fingerprint of a world state, exact (every field the `World` hashes).
pub fn fingerprint(world: &World) -> u64 {
    let mut h = Fnv64::new();
    world.hash(&mut h);
    h.finish()
}

/// The fingerprint the explorer deduplicates by, under `reductions`.
pub fn fingerprint_with(world: &World, reductions: Reductions) -> u64 {
    let mut h = Fnv64::new();
    let canonical = if reductions.symmetry {
        world.canonical_symmetric(reductions.time)
    } else {
        None
    };
    let world = canonical.as_ref().unwrap_or(world);
    if reductions.time {
        world.hash_time_abstract(&mut h, window_of(world).is_some());
    } else {
        world.hash(&mut h);
    }
    h.finish()
}

/// The scenario's reordering window (`[explore] window`), if any.
pub fn window_of(world: &World) -> Option<u64> {
    world.scenario().explore.window.map(|w| w.as_ns())
}

/// The actions enabled in `world` (in agenda order): every pending timer and the head message of
/// each connection and direction, due no later than the run's end and, when the scenario sets
/// `[explore] window`, no later than the earliest pending entry plus the window.
pub fn enabled_actions(world: &World, end_ns: u64) -> Vec<Action> {
    let horizon = match (window_of(world), world.agenda().first()) {
        (Some(w), Some((first, _))) => end_ns.min(first.due_ns.saturating_add(w)),
        _ => end_ns,
    };
    enabled_actions_until(world, horizon)
}

fn enabled_actions_until(world: &World, end_ns: u64) -> Vec<Action> {
    // The head (lowest key) of every (connection, direction).
    let mut heads: BTreeMap<(u64, u8), EventKey> = BTreeMap::new();
    for (key, p) in world.agenda().iter() {
        let mut note = |conn: u64, dir: Dir| {
            let d = if dir == Dir::ToServer { 0 } else { 1 };
            heads.entry((conn, d)).or_insert(key);
        };
        match p {
            Pending::Deliver { conn, dir, .. } => note(*conn, *dir),
            Pending::Multicast { targets, dir, .. } => {
                for (conn, _, _) in targets {
                    note(*conn, *dir);
                }
            }
            _ => {}
        }
    }
    let is_head = |key: EventKey, conn: u64, dir: Dir| {
        let d = if dir == Dir::ToServer { 0 } else { 1 };
        heads.get(&(conn, d)) == Some(&key)
    };
    world
        .agenda()
        .iter()
        .filter(|(key, _)| key.due_ns <= end_ns)
        .filter(|(key, p)| match p {
            Pending::Deliver { conn, dir, .. } => is_head(*key, *conn, *dir),
            Pending::Multicast { targets, dir, .. } => {
                targets.iter().all(|(c, _, _)| is_head(*key, *c, *dir))
            }
            _ => true,
        })
        .map(|(key, _)| Action::Fire(key))
        .collect()
}

/// The first violation a state shows: an online invariant, or `relist-bound` or the bound
/// `etcd_lists_per_client_hour` once already exceeded over the whole run (both only grow).
/// Bounds are named `bound:NAME`. (`convergence` is judged when a state with nothing enabled is
/// expanded: [`terminal_violation`].)
pub fn state_violation(world: &World, end_ns: u64) -> Option<String> {
    if let Some((inv, _)) = world.observations().checker.first_online() {
        return Some(inv.name().to_string());
    }
    if relist_bound_passed(world, end_ns) {
        return Some(Inv::RelistBound.name().to_string());
    }
    let bounded = world.scenario().bounds.etcd_lists_per_client_hour.is_some();
    if bounded && super::invariants::relist::judge_etcd_lists(world, end_ns).violations > 0 {
        return Some("bound:etcd_lists_per_client_hour".to_string());
    }
    None
}

/// True when the relists made so far already exceed `bounds.relists_per_client_hour` over the
/// whole run: relists never decrease, so every run through this state violates `relist-bound`.
fn relist_bound_passed(world: &World, end_ns: u64) -> bool {
    world
        .scenario()
        .bounds
        .relists_per_client_hour
        .is_some_and(|limit| {
            super::invariants::relist::relists_per_client_hour(world, end_ns) > limit
        })
}

/// What expanding one state produced: its successors (action, state, fingerprint, the violation
/// it reached, if any), in action order, and whether it is terminal.
struct Expansion {
    /// Successors: action, state (kept only when `keep` was asked), fingerprint, violation.
    successors: Vec<(EventKey, Option<World>, u64, Option<String>)>,
    /// The state itself is final (nothing enabled) and fails `convergence`.
    terminal: Option<String>,
    /// Transitions applied (duplicates of earlier levels included).
    transitions: u64,
    cut_by_depth: bool,
}

/// Expands one state of the frontier (runs on a worker thread).
fn expand(
    spec: &Spec,
    opts: &ExploreOptions,
    world: &World,
    depth: usize,
    seen: &HashSet<u64>,
    keep: bool,
) -> Expansion {
    let actions = enabled_actions(world, spec.end_ns);
    if actions.is_empty() || depth >= opts.max_depth {
        return Expansion {
            successors: Vec::new(),
            terminal: if actions.is_empty() {
                terminal_violation(world, spec.end_ns).map(|inv| inv.name().to_string())
            } else {
                None
            },
            transitions: 0,
            cut_by_depth: !actions.is_empty(),
        };
    }
    let mut successors = Vec::with_capacity(actions.len());
    let mut transitions = 0u64;
    for action in actions {
        let Action::Fire(key) = action;
        let mut next = world.clone();
        match super::panics::catch(|| next.apply(action)) {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => continue,
            Err(_) => {
                // A panicking transition is a counterexample: its path and this action.
                transitions += 1;
                let fp = fingerprint_with(world, opts.reductions);
                successors.push((key, None, fp, Some(super::panics::PANIC.to_string())));
                break;
            }
        }
        let violation = state_violation(&next, spec.end_ns);
        let fp = fingerprint_with(&next, opts.reductions);
        // States seen on earlier levels are dropped here already (the set is read-only while a
        // level expands); duplicates within the level are dropped when the level is merged.
        transitions += 1;
        if violation.is_none() && seen.contains(&fp) {
            continue;
        }
        successors.push((key, keep.then_some(next), fp, violation));
    }
    Expansion {
        successors,
        terminal: None,
        transitions,
        cut_by_depth: false,
    }
}

/// The end-of-run judgement of `convergence` in a state where nothing is enabled any more (the
/// run is over on this path).
fn terminal_violation(world: &World, end_ns: u64) -> Option<Inv> {
    let j = super::invariants::convergence::judge(world, end_ns);
    (j.checked && j.violations > 0).then_some(Inv::Convergence)
}

/// A search's bookkeeping: the fingerprints seen, a parent link per kept state
/// (to rebuild a violation's path), the counts and the reduction meter.
struct Search {
    started: Instant,
    /// Parent links: (parent index, action) for every kept state.
    links: Vec<(usize, EventKey)>,
    seen: HashSet<u64>,
    meter: Option<ReductionMeter>,
    explored: u64,
    max_depth: usize,
    complete: bool,
}

/// A successor kept for the next level: built already, or to rebuild from the state at this
/// position of the frontier by this action (parallel expansion), with its link index. (Not
/// boxed: sequential search keeps only `Built` states, and a box would cost an allocation each.)
#[allow(clippy::large_enum_variant)]
enum Kept {
    Built(usize, World),
    ToBuild(usize, EventKey, usize),
}

impl Search {
    fn new(root: &World, opts: &ExploreOptions) -> Self {
        let mut seen = HashSet::new();
        seen.insert(fingerprint_with(root, opts.reductions));
        let mut meter = opts.measure_reductions.then(ReductionMeter::default);
        if let Some(m) = meter.as_mut() {
            m.observe(root);
        }
        Search {
            started: Instant::now(),
            links: vec![(usize::MAX, EventKey { due_ns: 0, seq: 0 })],
            seen,
            meter,
            explored: 0,
            max_depth: 0,
            complete: true,
        }
    }

    /// The actions from the root to the kept state `i`.
    fn path_to(&self, mut i: usize) -> Vec<EventKey> {
        let mut keys = Vec::new();
        while i != 0 {
            keys.push(self.links[i].1);
            i = self.links[i].0;
        }
        keys.reverse();
        keys
    }

    /// The search's result so far; a violation ends it incomplete at `depth`.
    fn outcome(&self, violation: Option<(String, Vec<EventKey>)>, depth: usize) -> ExploreOutcome {
        let ended = violation.is_some();
        ExploreOutcome {
            explored: self.explored,
            unique: self.seen.len() as u64,
            max_depth: if ended { depth } else { self.max_depth },
            seconds: self.started.elapsed().as_secs_f64(),
            complete: self.complete && !ended,
            violation,
            reduction_bounds: self.meter.as_ref().map(ReductionMeter::finish),
        }
    }

    /// Merges the expansion of the frontier's state at `position` (kept state `parent`): its
    /// new successors are kept (up to `max_states`); a violation ends the search (its outcome
    /// is returned).
    fn merge(
        &mut self,
        opts: &ExploreOptions,
        (position, parent, depth): (usize, usize, usize),
        exp: Expansion,
        kept: &mut Vec<Kept>,
    ) -> Option<ExploreOutcome> {
        if exp.cut_by_depth {
            self.complete = false;
        }
        if let Some(inv) = exp.terminal {
            return Some(self.outcome(Some((inv, self.path_to(parent))), depth));
        }
        self.explored += exp.transitions;
        for (key, next, fp, violation) in exp.successors {
            if let Some(inv) = violation {
                let mut keys = self.path_to(parent);
                keys.push(key);
                return Some(self.outcome(Some((inv, keys)), depth + 1));
            }
            if self.seen.contains(&fp) {
                continue;
            }
            if self.seen.len() >= opts.max_states {
                self.complete = false;
                continue;
            }
            self.seen.insert(fp);
            self.links.push((parent, key));
            let link = self.links.len() - 1;
            kept.push(match next {
                Some(world) => Kept::Built(link, world),
                None => Kept::ToBuild(position, key, link),
            });
        }
        None
    }
}

/// Breadth-first search of `spec`'s state space within `opts`, one level at a time: the states
/// of a level are expanded on `opts.jobs` threads, then merged in frontier order, so the result
/// (counts, the violation and its path) does not depend on the number of threads.
pub fn explore(spec: &Spec, opts: ExploreOptions) -> ExploreOutcome {
    use rayon::prelude::*;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()
        .expect("a thread pool");
    let root = spec.world();
    let mut search = Search::new(&root, &opts);
    let mut frontier: Vec<(usize, World)> = vec![(0, root)];
    let mut depth = 0usize;
    while !frontier.is_empty() {
        search.max_depth = search.max_depth.max(depth);
        // One thread: expand lazily, so each state's successors are merged (and duplicates
        // dropped) before the next state is expanded. Several: the workers compute the level's
        // successors' fingerprints against the set as it was (keeping no states, so a level
        // never holds its duplicates), the merge decides in frontier order which are new, and
        // the workers then rebuild only those states.
        let parallel = opts.jobs > 1;
        let empty = HashSet::new();
        let parents: Vec<usize> = frontier.iter().map(|(i, _)| *i).collect();
        let expansions: Box<dyn Iterator<Item = Expansion>> = if !parallel {
            let level = std::mem::take(&mut frontier);
            Box::new(
                level
                    .into_iter()
                    .map(|(_, w)| expand(spec, &opts, &w, depth, &empty, true)),
            )
        } else {
            let seen = &search.seen;
            let done: Vec<Expansion> = pool.install(|| {
                frontier
                    .par_iter()
                    .map(|(_, w)| expand(spec, &opts, w, depth, seen, false))
                    .collect()
            });
            Box::new(done.into_iter())
        };
        let mut kept = Vec::new();
        for (position, (parent, exp)) in parents.into_iter().zip(expansions).enumerate() {
            if let Some(outcome) = search.merge(&opts, (position, parent, depth), exp, &mut kept) {
                return outcome;
            }
        }
        let build = |k: Kept| match k {
            Kept::Built(link, world) => (link, world),
            Kept::ToBuild(position, key, link) => {
                let mut world = frontier[position].1.clone();
                world
                    .apply(Action::Fire(key))
                    .expect("the action applied when the level was expanded");
                (link, world)
            }
        };
        let next_frontier: Vec<(usize, World)> = if parallel {
            pool.install(|| kept.into_par_iter().map(build).collect())
        } else {
            kept.into_iter().map(build).collect()
        };
        if let Some(m) = search.meter.as_mut() {
            for (_, world) in &next_frontier {
                m.observe(world);
            }
        }
        frontier = next_frontier;
        depth += 1;
    }
    search.outcome(None, 0)
}

/// What one depth-first transition led to.
enum DfsStep {
    /// A violation (or a panic) in the new state: the search ends.
    Violation(String),
    /// Nothing more to do from it (seen, bounded, final, or not applicable).
    Skip,
    /// A new state to descend into, with its enabled actions.
    Descend(Vec<Action>),
}

impl Search {
    /// Applies `action` to `next` (a copy of the state at `depth`) and judges the result.
    fn dfs_step(
        &mut self,
        spec: &Spec,
        opts: &ExploreOptions,
        next: &mut World,
        action: Action,
        depth: usize,
    ) -> DfsStep {
        match super::panics::catch(|| next.apply(action)) {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return DfsStep::Skip,
            Err(_) => {
                // A panicking transition is a counterexample: its path and this action.
                self.explored += 1;
                return DfsStep::Violation(super::panics::PANIC.to_string());
            }
        }
        self.explored += 1;
        self.max_depth = self.max_depth.max(depth);
        if let Some(inv) = state_violation(next, spec.end_ns) {
            return DfsStep::Violation(inv);
        }
        let fp = fingerprint_with(next, opts.reductions);
        if self.seen.contains(&fp) {
            return DfsStep::Skip;
        }
        if self.seen.len() >= opts.max_states {
            self.complete = false;
            return DfsStep::Skip;
        }
        self.seen.insert(fp);
        if opts.progress && self.seen.len().is_multiple_of(1_000_000) {
            eprintln!(
                "watchsim: explore --dfs: {} unique states, {} transitions, depth {depth}, {:.0}s",
                self.seen.len(),
                self.explored,
                self.started.elapsed().as_secs_f64()
            );
        }
        if let Some(m) = self.meter.as_mut() {
            m.observe(next);
        }
        let actions = enabled_actions(next, spec.end_ns);
        if actions.is_empty() {
            return match terminal_violation(next, spec.end_ns) {
                Some(inv) => DfsStep::Violation(inv.name().to_string()),
                None => DfsStep::Skip,
            };
        }
        if depth >= opts.max_depth {
            self.complete = false;
            return DfsStep::Skip;
        }
        DfsStep::Descend(actions)
    }
}

/// Depth-first search of `spec`'s state space within `opts` (`watchsim explore --dfs`), on one
/// thread. It visits the same states as [`explore`] when no bound cuts the search, but keeps only
/// the path being explored and the fingerprints of the states seen (8 bytes each), where
/// breadth-first search keeps a whole BFS level of states (~9 KB each): scopes too wide for
/// memory breadth-first can be searched completely. The price: a violation's path is a path, not
/// necessarily a shortest one, and `opts.jobs` is ignored. Completeness is claimed only when no
/// bound was hit (a state first reached at the depth bound is not expanded again from a
/// shallower path).
pub fn explore_depth_first(spec: &Spec, opts: ExploreOptions) -> ExploreOutcome {
    struct Frame {
        world: World,
        actions: Vec<Action>,
        next: usize,
    }
    let root = spec.world();
    let mut search = Search::new(&root, &opts);
    let root_actions = enabled_actions(&root, spec.end_ns);
    if root_actions.is_empty() {
        let violation =
            terminal_violation(&root, spec.end_ns).map(|i| (i.name().to_string(), vec![]));
        return search.outcome(violation, 0);
    }
    let mut stack = vec![Frame {
        world: root,
        actions: root_actions,
        next: 0,
    }];
    // `path[i]` is the action that led from `stack[i]` to `stack[i + 1]`.
    let mut path: Vec<EventKey> = Vec::new();
    while let Some(top) = stack.last_mut() {
        let Some(&action) = top.actions.get(top.next) else {
            stack.pop();
            path.pop();
            continue;
        };
        top.next += 1;
        let mut next = top.world.clone();
        let Action::Fire(key) = action;
        let depth = stack.len();
        match search.dfs_step(spec, &opts, &mut next, action, depth) {
            DfsStep::Violation(inv) => {
                let mut keys = path.clone();
                keys.push(key);
                return search.outcome(Some((inv, keys)), depth);
            }
            DfsStep::Skip => {}
            DfsStep::Descend(actions) => {
                path.push(key);
                stack.push(Frame {
                    world: next,
                    actions,
                    next: 0,
                });
            }
        }
    }
    search.outcome(None, 0)
}
