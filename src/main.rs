//! The `watchsim` command line: parses arguments, calls the library, prints, and maps outcomes to
//! the exit codes of SPEC §1 (0 held, 1 violated, 2 bad input, 3 replay diverged).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use watchsim::scenario::{self, parse_duration};
use watchsim::sim::{self, RunError, RunOptions};

mod cli_check;

#[derive(Parser)]
#[command(
    name = "watchsim",
    version,
    about = "Deterministic simulator and model checker of etcd watches, the kube-apiserver watch cache and client-go informers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one seeded simulation of a scenario and report on it.
    Run {
        /// Scenario file (TOML; see sim-scenarios/README.md).
        scenario: PathBuf,
        /// Seed (default: the scenario's `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Override a scenario key by dotted path, VALUE as TOML (e.g. apiserver.count=2).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Virtual duration, e.g. "90s" (default: the scenario's `duration`).
        #[arg(long)]
        duration: Option<String>,
        /// Write the trace (JSON Lines, SPEC §5) to this file.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Print exactly one JSON object, the report (SPEC §4).
        #[arg(long)]
        json: bool,
    },
    /// Run many seeds in parallel, summarise violations, and write a shrunk capsule of the
    /// lowest failing seed.
    ///
    /// Exit 0 when every invariant and bound held on every seed, 1 otherwise (the message names
    /// the invariant and the capsule), 2 on bad input.
    Check {
        /// Scenario file (not needed with --merge).
        #[arg(required_unless_present = "merge")]
        scenario: Option<PathBuf>,
        /// Number of seeds in the campaign.
        #[arg(long, default_value_t = 100)]
        seeds: u64,
        /// First seed (default: the scenario's `seed`).
        #[arg(long)]
        from: Option<u64>,
        /// Worker threads (default: the machine's cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Run only the seed indices i with i mod N = K (a Kubernetes Indexed Job sets K).
        #[arg(long, value_name = "K/N")]
        shard: Option<String>,
        /// Override a scenario key by dotted path (as for `run`), for every seed.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Swarm mode: each seed draws its own subset of the scenario's fault kinds and rates.
        #[arg(long)]
        swarm: bool,
        /// Print the summary as one JSON object (shard summaries merge with --merge).
        #[arg(long)]
        json: bool,
        /// Directory for capsules.
        #[arg(long, default_value = "capsules")]
        capsule_dir: PathBuf,
        /// Candidate runs the shrinker may spend (0 = do not shrink).
        #[arg(long, default_value_t = watchsim::check::shrink::DEFAULT_BUDGET)]
        shrink_budget: usize,
        /// Merge shard summaries (files of `check --json` lines, one summary per line) into one.
        #[arg(long, num_args = 1.., value_name = "FILE", conflicts_with = "scenario")]
        merge: Vec<PathBuf>,
    },
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
}

#[derive(clap::Args)]
struct ExploreCmd {
    /// Scenario file (keep it small: a few clients, keys and faults).
    scenario: PathBuf,
    /// Longest action sequence explored.
    #[arg(long, default_value_t = 200)]
    max_depth: usize,
    /// Most distinct states kept.
    #[arg(long, default_value_t = 200_000)]
    max_states: usize,
    /// Worker threads expanding each BFS level (default: all cores); the result is the same
    /// for any value.
    #[arg(long)]
    jobs: Option<usize>,
    /// Turn a state-space reduction off (repeatable): `time` (the fingerprint then includes
    /// every absolute time) or `symmetry` (interchangeable clients are not renamed).
    #[arg(long = "no-reduction", value_name = "NAME")]
    no_reduction: Vec<String>,
    /// Override a scenario key by dotted path, VALUE as TOML.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Search depth-first on one thread: memory holds only the current path and 8 bytes per
    /// state seen, so scopes too wide for breadth-first search can be searched completely; a
    /// violation's path is then not necessarily a shortest one (--jobs is ignored). Prints a
    /// progress line to stderr every million states.
    #[arg(long)]
    dfs: bool,
    /// Also measure what two further reductions could merge (revisions normalised to the
    /// compaction horizon, symmetry over keys) and print upper bounds on the merges.
    #[arg(long)]
    measure_reductions: bool,
    /// Directory for the counterexample capsule.
    #[arg(long, default_value = "capsules")]
    capsule_dir: PathBuf,
}

#[derive(clap::Args)]
struct SweepCmd {
    /// Scenario file (TOML; see sim-scenarios/README.md).
    scenario: PathBuf,
    /// A key to vary and its values: KEY=V1,V2,... (values as in --set), or a range:
    /// A..B*F (A, A*F, A*F^2, ... <= B) or A..B+S (A, A+S, ... <= B). Repeat for more keys.
    #[arg(long, value_name = "KEY=V1,V2,...", required = true)]
    vary: Vec<String>,
    /// Seeds per grid point.
    #[arg(long, default_value_t = watchsim::sweep::DEFAULT_SEEDS)]
    seeds: u64,
    /// Output directory for results.csv and sweep.svg.
    #[arg(long, value_name = "DIR", default_value = watchsim::sweep::DEFAULT_OUT)]
    out: PathBuf,
    /// Override a scenario key at every grid point, VALUE as TOML (applied before --vary).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Worker threads (default: the available cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Virtual duration of every run, e.g. "90s" (default: the scenario's `duration`).
    #[arg(long)]
    duration: Option<String>,
    /// Run every grid point on its own, even when the points differ only in the watch cache's
    /// size (by default such points share runs: same results, less work; notes.md "Sweep speed").
    #[arg(long)]
    no_share: bool,
}

/// `watchsim explore`: bounded BFS; a violation becomes a capsule that `watchsim replay` runs.
fn explore_cmd(cmd: &ExploreCmd) -> ExitCode {
    use watchsim::check::explore::{ExploreOptions, Reductions, explore, explore_depth_first};
    let ExploreCmd {
        scenario: path,
        max_depth,
        max_states,
        jobs,
        no_reduction,
        set,
        dfs,
        measure_reductions,
        capsule_dir,
    } = cmd;
    let (max_depth, max_states) = (*max_depth, *max_states);
    let mut reductions = Reductions::default();
    for name in no_reduction {
        match name.as_str() {
            "time" => reductions.time = false,
            "symmetry" => reductions.symmetry = false,
            other => {
                return usage_error(&format!(
                    "--no-reduction {other}: unknown reduction (expected `time` or `symmetry`)"
                ));
            }
        }
    }
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 {
        return usage_error("--jobs 0: at least one worker is needed");
    }
    use watchsim::check::runner::Spec;
    let origin = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return usage_error(&format!("{origin}: cannot read the file: {e}")),
    };
    let spec = match Spec::load(&origin, &text, set, None) {
        Ok(s) => s,
        Err(e) => return usage_error(&e.to_string()),
    };
    let search = if *dfs { explore_depth_first } else { explore };
    let out = search(
        &spec,
        ExploreOptions {
            max_depth,
            max_states,
            jobs,
            reductions,
            measure_reductions: *measure_reductions,
            progress: *dfs,
        },
    );
    let rate = if out.seconds > 0.0 {
        out.explored as f64 / out.seconds
    } else {
        0.0
    };
    println!(
        "explored {} states ({} unique), max depth {}, {:.2}s, {:.0} states/s{}",
        out.explored,
        out.unique,
        out.max_depth,
        out.seconds,
        rate,
        if out.complete {
            ", complete"
        } else {
            ", bounded"
        }
    );
    if let Some(b) = &out.reduction_bounds {
        println!(
            "reduction bounds over {} unique states: normalising revisions could merge at most {}; symmetry over keys {} ({} keys, {} created at varying revisions, {} create revisions shared)",
            b.states,
            b.revision_shift_merges,
            b.key_symmetry_merges()
                .map_or("is not bounded".to_string(), |n| format!("at most {n}")),
            b.keys,
            b.keys_with_varying_creation,
            b.shared_create_revisions
        );
    }
    match out.violation {
        None => {
            println!("no violation within the bounds");
            ExitCode::SUCCESS
        }
        Some((inv, keys)) => {
            println!(
                "violation of {inv} after {} actions ({})",
                keys.len(),
                if *dfs {
                    "depth-first: a path, not necessarily a shortest one"
                } else {
                    "a shortest path"
                }
            );
            // An end-of-run invariant (relist-bound passed on the way) is judged on the capsule
            // as if the run ended after its last action.
            let end_of_run = inv.starts_with("bound:")
                || watchsim::check::Inv::from_name(&inv).is_some_and(|i| i.end_of_run());
            match watchsim::check::capsule::record(&spec, &keys, end_of_run, Some(&inv)) {
                Ok(Some(capsule)) => {
                    let name = spec.scenario.name.clone();
                    let file = capsule_dir.join(format!("{name}-explore.capsule.jsonl"));
                    if let Err(e) = capsule.write(&file) {
                        return usage_error(&format!(
                            "{}: cannot write the capsule: {e}",
                            file.display()
                        ));
                    }
                    println!(
                        "watchsim: capsule: {} ({} steps)",
                        file.display(),
                        capsule.len()
                    );
                }
                Ok(None) | Err(_) => eprintln!("watchsim: the path did not reproduce as a capsule"),
            }
            eprintln!("watchsim: violated: {inv}");
            ExitCode::from(1)
        }
    }
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("watchsim: {msg}");
    ExitCode::from(2)
}

/// A reader that closes the pipe early (`watchsim ... | head`) ends the process quietly, with
/// the shell's status for SIGPIPE, instead of a panic message: Rust ignores SIGPIPE, so `println!`
/// panics on the broken pipe.
fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    exit_quietly_on_broken_pipe();
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            scenario: path,
            seed,
            set,
            duration,
            trace,
            json,
        } => {
            let duration = match duration.as_deref().map(parse_duration) {
                None => None,
                Some(Ok(d)) => Some(d),
                Some(Err(e)) => return usage_error(&format!("--duration: {e}")),
            };
            let loaded = match scenario::load_file(&path, &set) {
                Ok(l) => l,
                Err(e) => return usage_error(&e.to_string()),
            };
            let report = match sim::run(
                &loaded,
                &RunOptions {
                    seed,
                    duration,
                    trace,
                    skip_trace_hash: false,
                },
            ) {
                Ok(r) => r,
                Err(RunError::Scenario(e)) => return usage_error(&e.to_string()),
                Err(e @ RunError::TraceIo { .. }) => return usage_error(&e.to_string()),
                Err(e) => {
                    eprintln!("watchsim: {e}");
                    return ExitCode::from(70);
                }
            };
            if json {
                match serde_json::to_string(&report) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("watchsim: cannot encode the report: {e}");
                        return ExitCode::from(70);
                    }
                }
            } else {
                print!("{}", watchsim::cli::summary(&loaded, &report));
            }
            let violations = report.violations();
            if violations.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!("watchsim: violated: {}", violations.join(", "));
                for i in report.invariants.iter().filter(|i| !i.held) {
                    eprintln!(
                        "watchsim: {}: {}",
                        i.name,
                        i.message.as_deref().unwrap_or("")
                    );
                }
                for b in report.bounds.iter().filter(|b| !b.held) {
                    eprintln!(
                        "watchsim: bound {}: value {} exceeds the limit {}",
                        b.name, b.value, b.limit
                    );
                }
                ExitCode::from(1)
            }
        }
        Command::Check {
            scenario,
            seeds,
            from,
            jobs,
            shard,
            set,
            swarm,
            json,
            capsule_dir,
            shrink_budget,
            merge,
        } => {
            if !merge.is_empty() {
                return cli_check::merge(&merge, json);
            }
            let Some(path) = scenario else {
                return usage_error("check needs a SCENARIO (or --merge FILE...)");
            };
            cli_check::check(
                &path,
                cli_check::Args {
                    seeds,
                    from,
                    jobs,
                    shard,
                    set,
                    swarm,
                    json,
                    capsule_dir,
                    shrink_budget,
                },
            )
        }
        Command::Replay { capsule, timeline } => cli_check::replay(&capsule, timeline),
        Command::Sweep(cmd) => {
            let args = watchsim::sweep::SweepArgs {
                scenario: cmd.scenario,
                vary: cmd.vary,
                set: cmd.set,
                seeds: cmd.seeds,
                jobs: cmd.jobs,
                duration: cmd.duration,
                out: cmd.out,
                progress: true,
                share: !cmd.no_share,
            };
            match watchsim::sweep::run_cli(&args) {
                Ok(outcome) => {
                    print!("{}", outcome.stdout);
                    if outcome.held {
                        ExitCode::SUCCESS
                    } else {
                        eprintln!(
                            "watchsim: violated: {}",
                            outcome.result.violations().join(", ")
                        );
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("watchsim: {e}");
                    ExitCode::from(e.exit_code())
                }
            }
        }
        Command::Explore(cmd) => explore_cmd(&cmd),
    }
}
