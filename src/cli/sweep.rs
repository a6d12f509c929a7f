//! `watchsim sweep`: a grid of parameter values × seeds, printed as a table with a
//! recommendation and written as CSV and SVG. The work is `sweep::run_cli`.

use std::process::ExitCode;

use super::args::SweepCmd;

/// Runs the sweep `cmd` describes.
pub(super) fn sweep(cmd: SweepCmd) -> ExitCode {
    let args = crate::sweep::SweepArgs {
        scenario: cmd.scenario,
        vary: cmd.vary,
        set: cmd.set,
        seeds: cmd.seeds,
        jobs: cmd.jobs,
        duration: cmd.duration,
        out: cmd.out,
        progress: true,
        share: !cmd.no_share,
        max_memory: cmd.max_memory,
    };
    match crate::sweep::run_cli(&args) {
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
