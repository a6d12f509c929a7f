//! The command line's definitions (clap): every command, its arguments and their help.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "watchsim",
    version,
    about = "Deterministic simulator and model checker of etcd watches, the kube-apiserver watch cache and client-go informers"
)]
pub(crate) struct Cli {
    /// The command.
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run one seeded simulation of a scenario and report on it.
    Run(RunCmd),
    /// Run many seeds in parallel, summarise violations, and write a shrunk capsule of the
    /// lowest failing seed.
    ///
    /// Exit 0 when every invariant and bound held on every seed, 1 otherwise (the message names
    /// the invariant and the capsule), 2 on bad input.
    Check(CheckCmd),
    /// Re-execute a capsule, compare every step with the recorded one, and print its violation.
    ///
    /// Exit 1 when the capsule's violations are reproduced (0 for a trace without any), 2 for a
    /// corrupt capsule or one of another format version, 3 when the replay diverges.
    Replay {
        /// Capsule file.
        capsule: PathBuf,
        /// Print one fixed-column line per step (time, actor, action, etcd rev, compact rev, each
        /// cache's window, the client's RV).
        #[arg(long)]
        timeline: bool,
        /// Also write the steps as one self-contained HTML timeline to this file: a lane per
        /// actor, messages as arrows, faults and the violation marked, zoom and step-by-step
        /// navigation (capsules of at most 20,000 steps; a longer one is refused, exit 2).
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Exhaustively explore a small scenario: every interleaving within the bounds.
    Explore(ExploreCmd),
    /// Run a scenario over a grid of parameter values x N seeds: table, CSV and plot.
    ///
    /// Every combination of the --vary values (first key varies slowest) runs the same seeds
    /// S..S+N-1 (S = the scenario's seed). Prints a table of the mean figures per grid point
    /// and a recommendation (the smallest value of the first key whose grid points kept every
    /// bound on every seed); writes DIR/results.csv (mean and p95 of each figure per point) and
    /// DIR/sweep.svg. Exit 0 if every point held, 1 if some point violated an invariant or a
    /// bound (outputs are still written), 2 on bad input.
    Sweep(SweepCmd),
    /// Check recorded watch streams for events out of order, twice, missing or back in time.
    ///
    /// FILEs are `etcdctl watch -w json` outputs (each its own stream) or Kubernetes watch
    /// outputs (`kubectl get -w --output-watch-events -o json`, or JSON lines of {type, object}:
    /// one client's successive streams, in the order given). Prints FILE:LINE: invariant:
    /// message per finding. Exit 0 clean, 1 on a violation, 2 on malformed input.
    Validate {
        /// Stream files.
        #[arg(required = true, num_args = 1.., value_name = "FILE")]
        files: Vec<PathBuf>,
        /// `etcdctl get --prefix -w json [--rev N]` output of the watched key or prefix: every
        /// version it lists within the revisions a stream covered must have been delivered.
        #[arg(long, value_name = "FILE")]
        history: Vec<PathBuf>,
    },
}

#[derive(clap::Args)]
pub(crate) struct RunCmd {
    /// Scenario file (TOML; see sim-scenarios/README.md).
    pub(crate) scenario: PathBuf,
    /// Seed (default: the scenario's `seed`).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Override a scenario key by dotted path, VALUE as TOML (e.g. apiserver.count=2).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) set: Vec<String>,
    /// Virtual duration, e.g. "90s" (default: the scenario's `duration`).
    #[arg(long)]
    pub(crate) duration: Option<String>,
    /// Write the trace (JSON Lines, SPEC §5) to this file.
    #[arg(long)]
    pub(crate) trace: Option<PathBuf>,
    /// Print exactly one JSON object, the report (SPEC §4).
    #[arg(long)]
    pub(crate) json: bool,
    /// Memory limit for the run (a size: "16GiB"): a scenario whose estimated memory exceeds
    /// it is refused before it starts (default: three quarters of the machine's memory).
    #[arg(long, value_name = "SIZE")]
    pub(crate) max_memory: Option<String>,
    /// Write the run as one self-contained HTML timeline to this file (runs of at most 20,000
    /// steps; a longer run is refused, exit 2).
    #[arg(long, value_name = "FILE")]
    pub(crate) html: Option<PathBuf>,
}

#[derive(clap::Args)]
pub(crate) struct ExploreCmd {
    /// Scenario file (keep it small: a few clients, keys and faults).
    pub(crate) scenario: PathBuf,
    /// Longest action sequence explored.
    #[arg(long, default_value_t = 200)]
    pub(crate) max_depth: usize,
    /// Most distinct states kept.
    #[arg(long, default_value_t = 200_000)]
    pub(crate) max_states: usize,
    /// Worker threads expanding each BFS level (default: all cores); the result is the same
    /// for any value.
    #[arg(long)]
    pub(crate) jobs: Option<usize>,
    /// Turn a state-space reduction off (repeatable): `time` (the fingerprint then includes
    /// every absolute time) or `symmetry` (interchangeable clients are not renamed).
    #[arg(long = "no-reduction", value_name = "NAME")]
    pub(crate) no_reduction: Vec<String>,
    /// Override a scenario key by dotted path, VALUE as TOML.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) set: Vec<String>,
    /// Search depth-first on one thread: memory holds only the current path and 8 bytes per
    /// state seen, so scopes too wide for breadth-first search can be searched completely; a
    /// violation's path is then not necessarily a shortest one (--jobs is ignored). Prints a
    /// progress line to stderr every million states.
    #[arg(long)]
    pub(crate) dfs: bool,
    /// Also measure what two further reductions could merge (revisions normalised to the
    /// compaction horizon, symmetry over keys) and print upper bounds on the merges.
    #[arg(long)]
    pub(crate) measure_reductions: bool,
    /// Directory for the counterexample capsule.
    #[arg(long, default_value = "capsules")]
    pub(crate) capsule_dir: PathBuf,
    /// Memory limit (a size: "16GiB"): a scenario whose estimated memory exceeds it is
    /// refused before it starts (default: three quarters of the machine's memory).
    #[arg(long, value_name = "SIZE")]
    pub(crate) max_memory: Option<String>,
}

#[derive(clap::Args)]
pub(crate) struct SweepCmd {
    /// Scenario file (TOML; see sim-scenarios/README.md).
    pub(crate) scenario: PathBuf,
    /// A key to vary and its values: KEY=V1,V2,... (values as in --set), or a range:
    /// A..B*F (A, A*F, A*F^2, ... <= B) or A..B+S (A, A+S, ... <= B). Repeat for more keys.
    #[arg(long, value_name = "KEY=V1,V2,...", required = true)]
    pub(crate) vary: Vec<String>,
    /// Seeds per grid point.
    #[arg(long, default_value_t = crate::sweep::DEFAULT_SEEDS)]
    pub(crate) seeds: u64,
    /// Output directory for results.csv and sweep.svg.
    #[arg(long, value_name = "DIR", default_value = crate::sweep::DEFAULT_OUT)]
    pub(crate) out: PathBuf,
    /// Override a scenario key at every grid point, VALUE as TOML (applied before --vary).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) set: Vec<String>,
    /// Worker threads (default: the available cores).
    #[arg(long)]
    pub(crate) jobs: Option<usize>,
    /// Virtual duration of every run, e.g. "90s" (default: the scenario's `duration`).
    #[arg(long)]
    pub(crate) duration: Option<String>,
    /// Run every grid point on its own, even when the points differ only in the watch cache's
    /// size (by default such points share runs: same results, less work; docs/performance.md).
    #[arg(long)]
    pub(crate) no_share: bool,
    /// Memory limit (a size: "16GiB"): a scenario whose estimated memory exceeds it is
    /// refused before it starts (default: three quarters of the machine's memory).
    #[arg(long, value_name = "SIZE")]
    pub(crate) max_memory: Option<String>,
}

/// The options of `watchsim check`.
#[derive(clap::Args)]
pub(crate) struct CheckCmd {
    /// Scenario file (not needed with --merge or --soak).
    #[arg(required_unless_present_any = ["merge", "soak"])]
    pub(crate) scenario: Option<PathBuf>,
    /// Number of seeds in the campaign.
    #[arg(long, default_value_t = 100)]
    pub(crate) seeds: u64,
    /// First seed (default: the scenario's `seed`).
    #[arg(long)]
    pub(crate) from: Option<u64>,
    /// Worker threads (default: the machine's cores).
    #[arg(long)]
    pub(crate) jobs: Option<usize>,
    /// Run only the seed indices i with i mod N = K (a Kubernetes Indexed Job sets K).
    #[arg(long, value_name = "K/N")]
    pub(crate) shard: Option<String>,
    /// Override a scenario key by dotted path (as for `run`), for every seed.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) set: Vec<String>,
    /// Swarm mode: each seed draws its own subset of the scenario's fault kinds and rates.
    #[arg(long)]
    pub(crate) swarm: bool,
    /// Print the summary as one JSON object (shard summaries merge with --merge).
    #[arg(long)]
    pub(crate) json: bool,
    /// Directory for capsules.
    #[arg(long, default_value = "capsules")]
    pub(crate) capsule_dir: PathBuf,
    /// Candidate runs the shrinker may spend (0 = do not shrink).
    #[arg(long, default_value_t = crate::check::shrink::DEFAULT_BUDGET)]
    pub(crate) shrink_budget: usize,
    /// Merge shard summaries (files of `check --json` lines, one summary per line) into one.
    #[arg(long, num_args = 1.., value_name = "FILE", conflicts_with = "scenario")]
    pub(crate) merge: Vec<PathBuf>,
    /// Memory limit for the campaign (a size: "16GiB"): a scenario whose estimated memory
    /// times the parallel seeds exceeds it is refused before it starts (default: three quarters of
    /// the machine's memory).
    #[arg(long, value_name = "SIZE")]
    pub(crate) max_memory: Option<String>,
    /// Soak: swarm seeds across these scenario files or directories (their *.toml), in
    /// turns of --batch seeds per scenario, until --budget of wall-clock time is spent; prints
    /// seeds run, failures by kind and panics (exit 1 if any seed failed).
    #[arg(long, num_args = 1.., value_name = "PATH", conflicts_with_all = ["scenario", "merge"])]
    pub(crate) soak: Vec<PathBuf>,
    /// Soak: wall-clock budget, e.g. "10m", "1h".
    #[arg(long, default_value = "1h", requires = "soak")]
    pub(crate) budget: String,
    /// Soak: seeds per scenario turn.
    #[arg(long, default_value_t = 10, requires = "soak")]
    pub(crate) batch: u64,
    /// Soak: cap every scenario's virtual duration (the expensive ones then run shortened;
    /// a scenario with scripted steps or faults after the cap keeps its own).
    #[arg(long, value_name = "D", requires = "soak")]
    pub(crate) max_duration: Option<String>,
}
