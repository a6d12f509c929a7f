//! The `watchsim` command line (SPEC §1): the clap definitions ([`args`]) and one module per
//! command (`run`, `check`, `replay`, `explore`, `sweep`, `validate`), each parsing its options, calling the
//! library, printing, and mapping the outcome to the exit codes (0 held, 1 violated, 2 bad
//! input, 3 replay diverged). `src/main.rs` only calls [`main`].

use std::process::ExitCode;

use clap::Parser;

mod args;
mod check;
mod explore;
mod progress;
mod replay;
mod run;
mod summary;
mod sweep;
mod validate;

use args::{Cli, Command};
pub use summary::summary;

pub(crate) fn usage_error(msg: &str) -> ExitCode {
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

/// Whether `args` (without the program name, e.g. `["run", "x.toml", "--json"]`) is a valid
/// `watchsim` command line, without running it: `Err` carries clap's message. Used by the test
/// that keeps the README's commands valid.
pub fn parse_check(args: &[String]) -> Result<(), String> {
    let argv = std::iter::once("watchsim".to_string()).chain(args.iter().cloned());
    Cli::try_parse_from(argv)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The `watchsim` binary: parses the arguments and runs the command.
pub fn main() -> ExitCode {
    exit_quietly_on_broken_pipe();
    let cli = Cli::parse();
    match cli.command {
        Command::Run(cmd) => run::run(cmd),
        Command::Check(cmd) => check::dispatch(cmd),
        Command::Replay {
            capsule,
            timeline,
            html,
        } => replay::replay(&capsule, timeline, html.as_deref()),
        Command::Sweep(cmd) => sweep::sweep(cmd),
        Command::Explore(cmd) => explore::explore(&cmd),
        Command::Validate { files, history } => validate::validate(&files, &history),
    }
}
