//! `watchsim check --soak PATH...` (issue 17): swarm campaigns across many scenarios for a
//! wall-clock budget. Scenarios take turns (round-robin, in the order given, directories
//! expanded to their `*.toml` files in name order); each turn runs the next batch of seeds of one
//! scenario as a swarm campaign ([`run_campaign`]) and adds its summary. Batches are whole: the
//! budget is checked between them, so the soak ends at most one batch after it. The seeds of a
//! batch are the next `batch` seeds of that scenario, split by `--shard K/N` like any campaign,
//! so the pods of an Indexed Job run disjoint seeds of the same windows.
//!
//! The budget is wall-clock time outside the model; every seed's run stays deterministic (the
//! figures printed are reproducible seed by seed, only how many seeds fit the budget varies).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::campaign::{CampaignError, CampaignOptions, Summary, run_campaign};
use super::panics::PANIC;
use super::runner::Spec;
use crate::scenario::budget::MemoryLimit;
use crate::scenario::{DurationNs, ScenarioError, check_memory, format_ns};

/// Options of a soak.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// Wall-clock budget.
    pub budget: Duration,
    /// Seeds per batch (per scenario turn).
    pub batch: u64,
    /// First seed of every scenario.
    pub from: u64,
    /// Worker threads.
    pub jobs: usize,
    /// `--shard K/N`.
    pub shard: Option<(u64, u64)>,
    /// Caps every scenario's virtual duration (the expensive ones run shortened).
    pub max_duration: Option<DurationNs>,
    /// `--set` overrides for every scenario.
    pub set: Vec<String>,
}

/// One scenario's share of a soak.
#[derive(Debug, Clone, Serialize)]
pub struct SoakScenario {
    /// Scenario file.
    pub file: String,
    /// The merged summary of its batches (`None` before its first batch).
    pub summary: Option<Summary>,
    /// Seed of its next batch.
    pub next_from: u64,
}

/// What a soak did.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    /// Seeds run over every scenario.
    pub seeds_run: u64,
    /// Seeds with a violation or a panic.
    pub failing_seeds: u64,
    /// Failing seeds by finding (invariant, `bound:<name>` or `panic`).
    pub failures_by_kind: BTreeMap<String, u64>,
    /// Seeds whose run panicked.
    pub panics: u64,
    /// Batches run.
    pub batches: u64,
    /// Wall-clock seconds.
    pub wall_seconds: f64,
    /// Per scenario.
    pub scenarios: Vec<SoakScenario>,
}

/// Expands directories to their `*.toml` files (name order); files stay as given.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: cannot read the directory: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    if out.is_empty() {
        return Err("--soak: no scenario files".into());
    }
    Ok(out)
}

/// Loads one soak scenario with the overrides and the duration cap; refuses it beyond `limit`.
fn load(path: &Path, opts: &SoakOptions, limit: &MemoryLimit) -> Result<Spec, ScenarioError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: origin.clone(),
        key: None,
        line: None,
        message: format!("cannot read the file: {e}"),
    })?;
    let mut set = opts.set.clone();
    let spec = Spec::load(&origin, &text, &set, None)?;
    // A scenario whose scripted steps or faults come after the cap keeps its own duration.
    let spec = match opts.max_duration {
        Some(cap) if spec.scenario.duration > cap => {
            set.push(format!("duration=\"{}\"", format_ns(cap.0)));
            Spec::load(&origin, &text, &set, None).unwrap_or(spec)
        }
        _ => spec,
    };
    let parallel = (opts.jobs as u64).clamp(1, opts.batch.max(1));
    check_memory(
        &origin,
        &text,
        &spec.overrides,
        &spec.scenario,
        parallel,
        limit,
    )?;
    Ok(spec)
}

/// Runs the soak over `paths` (files or directories); `on_batch` sees each batch's summary.
pub fn soak(
    paths: &[PathBuf],
    opts: &SoakOptions,
    limit: &MemoryLimit,
    mut on_batch: impl FnMut(&Summary),
) -> Result<SoakReport, CampaignError> {
    if opts.batch == 0 {
        return Err(CampaignError::Usage(
            "--seeds (seeds per soak batch) must be at least 1".into(),
        ));
    }
    let files = expand(paths).map_err(CampaignError::Usage)?;
    let specs = files
        .iter()
        .map(|f| load(f, opts, limit))
        .collect::<Result<Vec<_>, _>>()?;
    let started = Instant::now();
    let mut scenarios: Vec<SoakScenario> = files
        .iter()
        .map(|f| SoakScenario {
            file: f.display().to_string(),
            summary: None,
            next_from: opts.from,
        })
        .collect();
    let mut batches = 0u64;
    'turns: loop {
        for (spec, sc) in specs.iter().zip(scenarios.iter_mut()) {
            if started.elapsed() >= opts.budget {
                break 'turns;
            }
            if sc.next_from.checked_add(opts.batch).is_none() {
                continue;
            }
            let summary = run_campaign(
                spec,
                &CampaignOptions {
                    seeds: opts.batch,
                    from: Some(sc.next_from),
                    jobs: opts.jobs,
                    shard: opts.shard,
                    swarm: true,
                    progress: false,
                },
            )?;
            on_batch(&summary);
            batches += 1;
            sc.next_from += opts.batch;
            sc.summary = Some(match sc.summary.take() {
                None => summary,
                Some(before) => add(before, &summary),
            });
        }
    }
    let mut report = SoakReport {
        seeds_run: 0,
        failing_seeds: 0,
        failures_by_kind: BTreeMap::new(),
        panics: 0,
        batches,
        wall_seconds: started.elapsed().as_secs_f64(),
        scenarios,
    };
    for s in report.scenarios.iter().filter_map(|s| s.summary.as_ref()) {
        report.seeds_run += s.seeds_run;
        report.failing_seeds += s.failing_seeds.len() as u64;
        for (kind, v) in &s.violations {
            *report.failures_by_kind.entry(kind.clone()).or_insert(0) += v.seeds;
        }
    }
    report.panics = report.failures_by_kind.get(PANIC).copied().unwrap_or(0);
    Ok(report)
}

/// Adds a later batch of the same scenario to the summary of the earlier ones.
fn add(mut a: Summary, b: &Summary) -> Summary {
    a.seeds += b.seeds;
    a.seeds_run += b.seeds_run;
    a.failing_seeds.extend(&b.failing_seeds);
    for (name, v) in &b.violations {
        match a.violations.get_mut(name) {
            None => {
                a.violations.insert(name.clone(), v.clone());
            }
            Some(e) => {
                e.seeds += v.seeds;
                e.count += v.count;
                if v.first_seed < e.first_seed {
                    e.first_seed = v.first_seed;
                    e.message = v.message.clone();
                }
            }
        }
    }
    let fa = u64::from_str_radix(&a.fingerprint, 16).unwrap_or(0);
    let fb = u64::from_str_radix(&b.fingerprint, 16).unwrap_or(0);
    a.fingerprint = format!("{:016x}", fa.wrapping_add(fb));
    a.wall_seconds += b.wall_seconds;
    a
}

impl SoakReport {
    /// The human summary: totals, failures by kind, panics, then one line per scenario.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "watchsim soak: {} seeds in {} batches over {} scenarios, {:.0} s",
            self.seeds_run,
            self.batches,
            self.scenarios.len(),
            self.wall_seconds
        );
        let _ = writeln!(o, "failing seeds: {}", self.failing_seeds);
        if self.failures_by_kind.is_empty() {
            let _ = writeln!(o, "failures by kind: none");
        } else {
            let _ = writeln!(o, "failures by kind:");
            for (kind, n) in &self.failures_by_kind {
                let _ = writeln!(o, "  {kind:<32} {n:>8} seeds");
            }
        }
        let _ = writeln!(o, "panics: {}", self.panics);
        for s in &self.scenarios {
            match &s.summary {
                None => {
                    let _ = writeln!(o, "  {:<52} not reached", s.file);
                }
                Some(sum) => {
                    let first = sum
                        .violations
                        .iter()
                        .map(|(k, v)| format!("{k} (first seed {})", v.first_seed))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let _ = writeln!(
                        o,
                        "  {:<52} {:>7} seeds {:>6} failing  {}",
                        s.file,
                        sum.seeds_run,
                        sum.failing_seeds.len(),
                        if first.is_empty() { "-" } else { &first }
                    );
                }
            }
        }
        o
    }
}
