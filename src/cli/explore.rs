//! `watchsim explore`: bounded breadth-first (or depth-first) search of a small scenario; a
//! violation becomes a capsule that `watchsim replay` runs. The search is `check::explore`.

use std::path::Path;
use std::process::ExitCode;

use super::args::ExploreCmd;
use super::usage_error;
use crate::check::explore::{
    ExploreOptions, ExploreOutcome, Reductions, explore as bfs, explore_depth_first,
};
use crate::check::runner::Spec;
use crate::kernel::EventKey;

/// `watchsim explore`: bounded BFS; a violation becomes a capsule that `watchsim replay` runs.
pub(super) fn explore(cmd: &ExploreCmd) -> ExitCode {
    let reductions = match reductions(&cmd.no_reduction) {
        Ok(r) => r,
        Err(message) => return usage_error(&message),
    };
    let jobs = cmd
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 {
        return usage_error("--jobs 0: at least one worker is needed");
    }
    let spec = match load(&cmd.scenario, &cmd.set, cmd.max_memory.as_deref()) {
        Ok(s) => s,
        Err(message) => return usage_error(&message),
    };
    let search = if cmd.dfs { explore_depth_first } else { bfs };
    let out = search(
        &spec,
        ExploreOptions {
            max_depth: cmd.max_depth,
            max_states: cmd.max_states,
            jobs,
            reductions,
            measure_reductions: cmd.measure_reductions,
            progress: cmd.dfs,
        },
    );
    print_summary(&out);
    match out.violation {
        None => {
            println!("no violation within the bounds");
            ExitCode::SUCCESS
        }
        Some((inv, keys)) => counterexample(&spec, &inv, &keys, cmd.dfs, &cmd.capsule_dir),
    }
}

/// The reductions left on after `--no-reduction NAME...`.
fn reductions(off: &[String]) -> Result<Reductions, String> {
    let mut reductions = Reductions::default();
    for name in off {
        match name.as_str() {
            "time" => reductions.time = false,
            "symmetry" => reductions.symmetry = false,
            other => {
                return Err(format!(
                    "--no-reduction {other}: unknown reduction (expected `time` or `symmetry`)"
                ));
            }
        }
    }
    Ok(reductions)
}

/// The scenario file with its overrides, refused when its estimated memory exceeds the limit.
fn load(path: &Path, set: &[String], max_memory: Option<&str>) -> Result<Spec, String> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{origin}: cannot read the file: {e}"))?;
    let spec = Spec::load(&origin, &text, set, None).map_err(|e| e.to_string())?;
    let limit = crate::scenario::budget::MemoryLimit::resolve(max_memory)?;
    crate::scenario::check_memory(&origin, &text, set, &spec.scenario, 1, &limit)
        .map_err(|e| e.to_string())?;
    Ok(spec)
}

/// The counts line, and the reduction bounds when they were measured.
fn print_summary(out: &ExploreOutcome) {
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
}

/// A violation found: printed, and its path written as a capsule (exit 1).
fn counterexample(
    spec: &Spec,
    inv: &str,
    keys: &[EventKey],
    dfs: bool,
    capsule_dir: &Path,
) -> ExitCode {
    println!(
        "violation of {inv} after {} actions ({})",
        keys.len(),
        if dfs {
            "depth-first: a path, not necessarily a shortest one"
        } else {
            "a shortest path"
        }
    );
    // An end-of-run invariant (relist-bound passed on the way) is judged on the capsule
    // as if the run ended after its last action.
    let end_of_run = inv.starts_with("bound:")
        || crate::check::Inv::from_name(inv).is_some_and(|i| i.end_of_run());
    let recorded = match keys.split_last() {
        Some((&fire, path)) if inv == crate::check::panics::PANIC => {
            Ok(crate::check::panics::record_panic(spec, path, fire))
        }
        _ => crate::check::capsule::record(spec, keys, end_of_run, Some(inv)),
    };
    match recorded {
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
