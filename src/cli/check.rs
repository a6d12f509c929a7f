//! `watchsim check`: a campaign of seeds (sharded, swarm), its summary, and the merge of shard
//! summaries. Exit codes of SPEC §1 (0 held, 1 violated, 2 bad input). The work is in
//! `check::campaign`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::args::CheckCmd;
use crate::check::campaign::{self, CampaignOptions, Summary};
use crate::check::runner::Spec;
use crate::scenario::budget::MemoryLimit;

/// Options of `watchsim check` (besides the scenario).
pub(crate) struct Args {
    /// Campaign size.
    pub(crate) seeds: u64,
    /// First seed.
    pub(crate) from: Option<u64>,
    /// Worker threads (default: the machine's cores).
    pub(crate) jobs: Option<usize>,
    /// `K/N`.
    pub(crate) shard: Option<String>,
    /// `--set` overrides.
    pub(crate) set: Vec<String>,
    /// Swarm mode.
    pub(crate) swarm: bool,
    /// Summary as one JSON line.
    pub(crate) json: bool,
    /// Where capsules go.
    pub(crate) capsule_dir: PathBuf,
    /// Shrinker budget (0 = no shrinking).
    pub(crate) shrink_budget: usize,
    /// `--max-memory`.
    pub(crate) max_memory: Option<String>,
}

pub(super) fn fail(msg: &str, code: u8) -> ExitCode {
    eprintln!("watchsim: {msg}");
    ExitCode::from(code)
}

fn print_summary(s: &Summary, json: bool, jobs: usize) -> Result<(), ExitCode> {
    if json {
        match serde_json::to_string(s) {
            Ok(t) => println!("{t}"),
            Err(e) => return Err(fail(&format!("cannot encode the summary: {e}"), 70)),
        }
    } else {
        print!("{}", s.render(jobs));
    }
    Ok(())
}

/// `watchsim check`: a merge of shard summaries, a soak, or a campaign over one scenario.
pub(super) fn dispatch(cmd: CheckCmd) -> ExitCode {
    if !cmd.merge.is_empty() {
        return merge(&cmd.merge, cmd.json);
    }
    if !cmd.soak.is_empty() {
        let args = SoakArgs {
            budget: cmd.budget,
            batch: cmd.batch,
            max_duration: cmd.max_duration,
            from: cmd.from,
            jobs: cmd.jobs,
            shard: cmd.shard,
            set: cmd.set,
            json: cmd.json,
            max_memory: cmd.max_memory,
        };
        return soak(&cmd.soak, args);
    }
    let Some(path) = cmd.scenario else {
        return super::usage_error("check needs a SCENARIO (or --merge FILE...)");
    };
    let args = Args {
        seeds: cmd.seeds,
        from: cmd.from,
        jobs: cmd.jobs,
        shard: cmd.shard,
        set: cmd.set,
        swarm: cmd.swarm,
        json: cmd.json,
        capsule_dir: cmd.capsule_dir,
        shrink_budget: cmd.shrink_budget,
        max_memory: cmd.max_memory,
    };
    check(&path, args)
}

/// `watchsim check SCENARIO ...`.
pub(super) fn check(path: &Path, a: Args) -> ExitCode {
    let shard = match a.shard.as_deref().map(campaign::parse_shard) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => return fail(&e, 2),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return fail(&format!("{}: cannot read the file: {e}", path.display()), 2),
    };
    let base = match Spec::load(&path.display().to_string(), &text, &a.set, None) {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string(), 2),
    };
    let jobs = a.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    if let Err(e) = fits_memory(&base, jobs, a.seeds, a.max_memory.as_deref()) {
        return fail(&e, 2);
    }
    let opts = CampaignOptions {
        seeds: a.seeds,
        from: a.from,
        jobs,
        shard,
        swarm: a.swarm,
        progress: true,
    };
    let summary = match campaign::run_campaign(&base, &opts) {
        Ok(s) => s,
        Err(e @ (campaign::CampaignError::Scenario(_) | campaign::CampaignError::Usage(_))) => {
            return fail(&e.to_string(), 2);
        }
        Err(e) => return fail(&e.to_string(), 70),
    };
    if let Err(code) = print_summary(&summary, a.json, jobs) {
        return code;
    }
    let Some(&seed) = summary.failing_seeds.first() else {
        return ExitCode::SUCCESS;
    };
    report_failure(&base, seed, &a);
    ExitCode::from(1)
}

/// Refuses a campaign whose seeds running side by side (`jobs`, at most `seeds`) are estimated to
/// need more memory than the limit.
fn fits_memory(
    base: &Spec,
    jobs: usize,
    seeds: u64,
    max_memory: Option<&str>,
) -> Result<(), String> {
    let limit = MemoryLimit::resolve(max_memory)?;
    let parallel = (jobs as u64).clamp(1, seeds.max(1));
    crate::scenario::check_memory(
        &base.origin,
        &base.text,
        &base.overrides,
        &base.scenario,
        parallel,
        &limit,
    )
    .map_err(|e| e.to_string())
}

/// The lowest failing seed: its violation, its capsule (and the shrunk one) and how to replay it,
/// on stderr.
fn report_failure(base: &Spec, seed: u64, a: &Args) {
    match campaign::write_capsules(base, seed, a.swarm, &a.capsule_dir, a.shrink_budget) {
        Ok(Some((p, full, shrunk))) => {
            if let Some(v) = &full.footer.violation {
                eprintln!(
                    "watchsim: violated: {} (seed {seed}, step {}): {}",
                    v.name, v.step, v.message
                );
            }
            eprintln!("watchsim: capsule: {} ({} steps)", p.display(), full.len());
            let replay = match shrunk {
                Some((sp, s)) => {
                    eprintln!(
                        "watchsim: shrunk capsule: {} ({} steps, {} before shrinking)",
                        sp.display(),
                        s.len(),
                        full.len()
                    );
                    sp
                }
                None => p,
            };
            eprintln!(
                "watchsim: replay it with: watchsim replay {} --timeline",
                replay.display()
            );
        }
        Ok(None) => {
            eprintln!("watchsim: seed {seed} failed, but its capsule run shows no violation")
        }
        Err(e) => eprintln!("watchsim: {e}"),
    }
}

/// `watchsim check --merge FILE...`.
pub(super) fn merge(files: &[PathBuf], json: bool) -> ExitCode {
    let mut parts = Vec::new();
    for f in files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => return fail(&format!("{}: cannot read: {e}", f.display()), 2),
        };
        // One summary per line (a file may hold several, e.g. collected from pod logs).
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Summary>(line.trim()) {
                Ok(s) => parts.push(s),
                Err(e) => {
                    return fail(
                        &format!(
                            "{}:{}: not a `check --json` summary: {e}",
                            f.display(),
                            i + 1
                        ),
                        2,
                    );
                }
            }
        }
    }
    let merged = match Summary::merge(&parts) {
        Ok(m) => m,
        Err(e) => return fail(&e, 2),
    };
    if let Err(code) = print_summary(&merged, json, 0) {
        return code;
    }
    if merged.failing_seeds.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Options of `watchsim check --soak`.
pub(crate) struct SoakArgs {
    /// `--budget`.
    pub(crate) budget: String,
    /// `--batch`.
    pub(crate) batch: u64,
    /// `--max-duration`.
    pub(crate) max_duration: Option<String>,
    /// `--from` (default 1).
    pub(crate) from: Option<u64>,
    /// `--jobs`.
    pub(crate) jobs: Option<usize>,
    /// `--shard`.
    pub(crate) shard: Option<String>,
    /// `--set`.
    pub(crate) set: Vec<String>,
    /// `--json`: the soak report as one JSON object.
    pub(crate) json: bool,
    /// `--max-memory`.
    pub(crate) max_memory: Option<String>,
}

/// `watchsim check --soak PATH... [--budget D] [--batch N] [--max-duration D]`.
pub(super) fn soak(paths: &[PathBuf], a: SoakArgs) -> ExitCode {
    use crate::check::soak::{SoakOptions, soak};
    use crate::scenario::parse_duration;
    let budget = match parse_duration(&a.budget) {
        Ok(d) => std::time::Duration::from_nanos(d.0),
        Err(e) => return fail(&format!("--budget {}: {e}", a.budget), 2),
    };
    let max_duration = match a.max_duration.as_deref().map(parse_duration) {
        None => None,
        Some(Ok(d)) if d.0 > 0 => Some(d),
        Some(Ok(_)) => return fail("--max-duration must be more than 0s", 2),
        Some(Err(e)) => return fail(&format!("--max-duration: {e}"), 2),
    };
    let shard = match a.shard.as_deref().map(campaign::parse_shard) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => return fail(&e, 2),
    };
    let limit = match MemoryLimit::resolve(a.max_memory.as_deref()) {
        Ok(l) => l,
        Err(e) => return fail(&e, 2),
    };
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let opts = SoakOptions {
        budget,
        batch: a.batch,
        from: a.from.unwrap_or(1),
        jobs,
        shard,
        max_duration,
        set: a.set,
    };
    let quiet = a.json;
    let report = match soak(paths, &opts, &limit, |s| {
        if !quiet {
            eprintln!(
                "watchsim: soak: {} seeds {}..={}: {} failing",
                s.scenario,
                s.from,
                s.from + s.seeds - 1,
                s.failing_seeds.len()
            );
        }
    }) {
        Ok(r) => r,
        Err(e @ (campaign::CampaignError::Scenario(_) | campaign::CampaignError::Usage(_))) => {
            return fail(&e.to_string(), 2);
        }
        Err(e) => return fail(&e.to_string(), 70),
    };
    if a.json {
        match serde_json::to_string(&report) {
            Ok(t) => println!("{t}"),
            Err(e) => return fail(&format!("cannot encode the soak report: {e}"), 70),
        }
    } else {
        print!("{}", report.render());
    }
    if report.failing_seeds == 0 {
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "watchsim: soak: {} failing seeds; for a capsule: watchsim check FILE --swarm --from SEED --seeds 1",
        report.failing_seeds
    );
    ExitCode::from(1)
}
