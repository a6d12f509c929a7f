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
    /// Run a parameter grid (not available yet).
    Sweep {
        /// Scenario file.
        scenario: PathBuf,
    },
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
        Command::Check { .. }
        | Command::Replay { .. }
        | Command::Explore { .. }
        | Command::Sweep { .. } => usage_error(
            "this command is not available in this version of watchsim yet (only `run` is)",
        ),
    }
}
