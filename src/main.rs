//! The `watchsim` command line: parses arguments, calls the library, prints, and maps outcomes to
//! the exit codes of SPEC §1 (0 held, 1 violated, 2 bad input, 3 replay diverged).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use watchsim::scenario::{self, parse_duration};
use watchsim::sim::{self, RunError, RunOptions};

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
    /// Run many seeds in parallel and summarise violations (not available yet).
    Check {
        /// Scenario file.
        scenario: PathBuf,
    },
    /// Re-execute a capsule (not available yet).
    Replay {
        /// Capsule file.
        capsule: PathBuf,
    },
    /// Exhaustively explore a small scenario (not available yet).
    Explore {
        /// Scenario file.
        scenario: PathBuf,
    },
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
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("watchsim: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
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
                ExitCode::from(1)
            }
        }
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
        Command::Check { .. } | Command::Replay { .. } | Command::Explore { .. } => usage_error(
            "this command is not available in this version of watchsim yet (only `run` and `sweep` are)",
        ),
    }
}
