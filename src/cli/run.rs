//! `watchsim run`: one seeded simulation (with a progress line on a terminal's stderr), its
//! report (text or `--json`) and the exit code of its invariants and bounds.

use std::path::Path;
use std::process::ExitCode;

use super::args::RunCmd;
use super::usage_error;
use crate::check::html::{self, PageMeta};
use crate::check::runner::Spec;
use crate::report::Report;
use crate::scenario::budget::MemoryLimit;
use crate::scenario::{self, DurationNs, LoadedScenario, parse_duration};
use crate::sim::{self, RunError, RunOptions};

/// Runs `path` with its `--seed`, `--set`, `--duration`, `--trace`, `--json`, `--max-memory`
/// and `--html` options.
pub(super) fn run(cmd: RunCmd) -> ExitCode {
    let RunCmd {
        scenario: path,
        seed,
        set,
        duration,
        trace,
        json,
        max_memory,
        html,
    } = cmd;
    let max_memory = max_memory.as_deref();
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
    if let Some(file) = &html
        && let Err(code) = write_page(&loaded, seed, duration, file)
    {
        return code;
    }
    // A lone run gives its spare core, if it has one, the trace and the faulting-in of fresh
    // memory (neither changes what the run computes).
    let spare_core = std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
    // Faulting in grown blocks ahead makes their unused tails resident too (peak RSS +15 % in
    // the bundled clusters): only where the memory estimate leaves a quarter more room.
    if spare_core && scenario::budget::estimate(&sized).total.saturating_mul(5) / 4 <= limit.bytes {
        crate::kernel::prefault::start();
    }
    let progress = super::progress::RunProgress::on_stderr();
    let result = sim::run_observed(
        &loaded,
        &RunOptions {
            seed,
            duration,
            trace,
            skip_trace_hash: false,
            trace_thread: spare_core,
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
    print_report(&loaded, &report, json)
}

/// Prints the report (text or `--json`) and the violations; exit 1 for a violation, else 0.
fn print_report(loaded: &LoadedScenario, report: &Report, json: bool) -> ExitCode {
    if json {
        match serde_json::to_string(report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("watchsim: cannot encode the report: {e}");
                return ExitCode::from(70);
            }
        }
    } else {
        print!("{}", super::summary(loaded, report));
    }
    let violations = report.violations();
    if violations.is_empty() {
        return ExitCode::SUCCESS;
    }
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

/// `--html FILE`: the run recorded for the page in a pass of its own before the run (the same
/// steps: the model is deterministic), refused (exit 2) once it passes
/// [`html::MAX_PAGE_STEPS`] steps, so a page is never a silently cut run.
fn write_page(
    loaded: &LoadedScenario,
    seed: Option<u64>,
    duration: Option<DurationNs>,
    file: &Path,
) -> Result<(), ExitCode> {
    let failed = |e: &dyn std::fmt::Display| usage_error(&e.to_string());
    let mut spec = Spec::load(&loaded.origin, &loaded.text, &loaded.overrides, seed)
        .map_err(|e| failed(&e))?;
    if let Some(d) = duration {
        spec.end_ns = d.as_ns();
    }
    let (rec, report) = html::record_run(&spec, html::MAX_PAGE_STEPS)
        .map_err(|e| failed(&format!("{file}: {e}", file = file.display())))?;
    let violations = html::violations_of(&report, rec.steps.len() as u64);
    let name = Path::new(&loaded.origin).file_name().map_or_else(
        || loaded.origin.clone(),
        |n| n.to_string_lossy().into_owned(),
    );
    let meta = PageMeta {
        title: format!("run of {name}"),
        source: format!("run of {name} to t={}", scenario::format_ns(spec.end_ns)),
        scenario: spec.scenario.name.clone(),
        seed: spec.seed,
    };
    std::fs::write(file, html::render(&rec, &meta, &violations)).map_err(|e| {
        usage_error(&format!(
            "{}: cannot write the HTML timeline: {e}",
            file.display()
        ))
    })?;
    eprintln!(
        "watchsim: wrote the HTML timeline {} ({} steps, {} lanes)",
        file.display(),
        rec.steps.len(),
        rec.lanes().len()
    );
    Ok(())
}
