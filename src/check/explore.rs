//! The explorer (`watchsim explore`): breadth-first search over `World` states from a scenario's
//! initial state, where every enabled action is a branch and time is abstracted (design.md "The
//! explorer"). Enabled actions: every pending timer, the head message of each connection and
//! direction (FIFO, as TCP and HTTP/2 deliver), every connection reset; a multicast is enabled
//! when it heads every connection it goes to. Entries due after the scenario's duration are not
//! enabled. States are deduplicated by a 64-bit FNV fingerprint of the `World` (its `Hash`,
//! which leaves out observations and the scenario); the online invariants are checked after
//! every transition, and BFS order makes the first violation's path a shortest one.
//!
//! Simplifications (notes.md): single-threaded; the fingerprint includes virtual time and the
//! agenda's keys, so states that differ only in timing are not merged (no symmetry or revision
//! normalisation yet); convergence is not checked, and relist-bound only once the relists made so
//! far exceed the bound over the whole run.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::hash::Hash;
use std::time::Instant;

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
}

impl Default for ExploreOptions {
    fn default() -> Self {
        ExploreOptions {
            max_depth: 40,
            max_states: 1_000_000,
            jobs: 1,
            reductions: Reductions::default(),
        }
    }
}

/// State-space reductions: each merges states that the fingerprint would otherwise tell apart
/// (notes.md, "Explorer", measures each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reductions {
    /// Leave absolute virtual time out of the fingerprint: the clock, the agenda's due times and
    /// sequence numbers (only the order of pending events counts) and the connections' FIFO
    /// high-water marks.
    pub time: bool,
    /// Treat interchangeable clients (same `[[clients]]` group) as one: the fingerprint is the
    /// smallest over permutations within each group.
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

fn online_violation(world: &World, end_ns: u64) -> Option<Inv> {
    world
        .observations()
        .checker
        .first_online()
        .map(|(inv, _)| inv)
        .or_else(|| relist_bound_passed(world, end_ns).then_some(Inv::RelistBound))
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

/// Breadth-first search of `spec`'s state space within `opts`.
pub fn explore(spec: &Spec, opts: ExploreOptions) -> ExploreOutcome {
    let started = Instant::now();
    let root = spec.world();
    // Parent links: (parent index, action) for every kept state, to rebuild a path.
    let mut links: Vec<(usize, EventKey)> = vec![(usize::MAX, EventKey { due_ns: 0, seq: 0 })];
    let mut seen: HashSet<u64> = HashSet::new();
    seen.insert(fingerprint_with(&root, opts.reductions));
    let mut queue: VecDeque<(usize, usize, World)> = VecDeque::new();
    queue.push_back((0, 0, root));
    let (mut explored, mut max_depth, mut complete) = (0u64, 0usize, true);
    let path_to = |links: &Vec<(usize, EventKey)>, mut i: usize| {
        let mut keys = Vec::new();
        while i != 0 {
            keys.push(links[i].1);
            i = links[i].0;
        }
        keys.reverse();
        keys
    };
    while let Some((idx, depth, world)) = queue.pop_front() {
        max_depth = max_depth.max(depth);
        if depth >= opts.max_depth {
            if !enabled_actions(&world, spec.end_ns).is_empty() {
                complete = false;
            }
            continue;
        }
        for action in enabled_actions(&world, spec.end_ns) {
            let Action::Fire(key) = action;
            let mut next = world.clone();
            if next.apply(action).is_err() {
                continue;
            }
            explored += 1;
            if let Some(inv) = online_violation(&next, spec.end_ns) {
                let mut keys = path_to(&links, idx);
                keys.push(key);
                return ExploreOutcome {
                    explored,
                    unique: seen.len() as u64,
                    max_depth: depth + 1,
                    seconds: started.elapsed().as_secs_f64(),
                    complete: false,
                    violation: Some((inv.name().to_string(), keys)),
                };
            }
            if seen.insert(fingerprint_with(&next, opts.reductions)) {
                if seen.len() > opts.max_states {
                    complete = false;
                    continue;
                }
                links.push((idx, key));
                queue.push_back((links.len() - 1, depth + 1, next));
            }
        }
    }
    ExploreOutcome {
        explored,
        unique: seen.len() as u64,
        max_depth,
        seconds: started.elapsed().as_secs_f64(),
        complete,
        violation: None,
    }
}
