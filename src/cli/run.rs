//! `watchsim run`: one seeded simulation (with a progress line on a terminal's stderr), its
//! report (text or `--json`) and the exit code of its invariants and bounds.

use std::path::PathBuf;
use std::process::ExitCode;

use super::usage_error;
use crate::scenario::budget::MemoryLimit;
use crate::scenario::{self, parse_duration};
use crate::sim::{self, RunError, RunOptions};

/// Runs `path` with its `--seed`, `--set`, `--duration`, `--trace`, `--json` and
/// `--max-memory` options.
pub(super) fn run(
    path: PathBuf,
    seed: Option<u64>,
    set: Vec<String>,
    duration: Option<String>,
    trace: Option<PathBuf>,
    json: bool,
    max_memory: Option<&str>,
) -> ExitCode {
    let duration = match duration.as_deref().map(parse_duration) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => return usage_error(&format!("--duration: {e}")),
    };
    if let Some(Err(e)) = duration.map(scenario::check_duration_flag) {
        return usage_error(&e);
    }
    let limit = match MemoryLimit::resolve(max_memory) {
        Ok(l) => l,
        Err(e) => return usage_error(&e),
    };
    let loaded = match scenario::load_file(&path, &set) {
        Ok(l) => l,
        Err(e) => return usage_error(&e.to_string()),
    };
    let mut sized = loaded.scenario.clone();
    if let Some(d) = duration {
        sized.duration = d;
    }
    if let Err(e) = scenario::check_memory(&loaded.origin, &loaded.text, &set, &sized, 1, &limit) {
        return usage_error(&e.to_string());
    }
    let progress = super::progress::RunProgress::on_stderr();
    let result = sim::run_observed(
        &loaded,
        &RunOptions {
            seed,
            duration,
            trace,
            skip_trace_hash: false,
        },
        &mut |p| progress.update(p),
    );
    progress.finish();
    let report = match result {
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
        print!("{}", super::summary(&loaded, &report));
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
