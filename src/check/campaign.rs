//! `watchsim check`: a seed campaign. Seeds `from .. from + seeds - 1` run in parallel on a
//! `rayon` pool of `jobs` threads (each seed is an independent deterministic run, so the result
//! does not depend on the pool size), with an `indicatif` progress bar on stderr. The
//! [`Summary`] (seeds run, violations by invariant, worst relist rate and staleness, an
//! order-independent fingerprint of every seed's trace hash) merges across shards
//! ([`Summary::merge`]) into exactly the summary of the unsharded campaign: `--shard K/N` runs the
//! seed indices `i` with `i mod N = K`.
//!
//! Swarm mode (`--swarm`, after TigerBeetle's VOPR and swarm testing): the scenario's faults are
//! the maxima; each seed draws its own subset of fault kinds (each kind of `[[faults.at]]` entry,
//! and the random watch disconnects, kept with probability 1/2) and its own disconnect rate
//! (uniform up to the scenario's), from the seed's `swarm` random stream. The variant's text is
//! what that seed's capsule records.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::capsule::{CapsuleData, capture};
use super::panics;
use super::runner::Spec;
use super::shrink;
use crate::kernel::{Fnv64, RngStream};
use crate::scenario::{LoadedScenario, ScenarioError, effective_table};
use crate::sim::{self, RunOptions};

/// Most seeds one process runs (each keeps a small result until the summary): larger campaigns
/// are split with `--shard K/N`.
pub const MAX_SEEDS_PER_PROCESS: u64 = 10_000_000;

/// Options of one campaign.
#[derive(Debug, Clone)]
pub struct CampaignOptions {
    /// Campaign size N (seed indices 0..N).
    pub seeds: u64,
    /// First seed (default: the scenario's seed).
    pub from: Option<u64>,
    /// Worker threads.
    pub jobs: usize,
    /// Run only seed indices `i` with `i mod n = k`: `(k, n)`.
    pub shard: Option<(u64, u64)>,
    /// Swarm mode.
    pub swarm: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// How many seeds violated an invariant, and the first of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViolationCount {
    /// Seeds with at least one violation.
    pub seeds: u64,
    /// Violations over all seeds.
    pub count: u64,
    /// The lowest such seed.
    pub first_seed: u64,
    /// Its first violation's message.
    pub message: String,
}

/// A worst figure and the seed it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Worst {
    /// Value.
    pub value: f64,
    /// Seed (the lowest on ties).
    pub seed: u64,
}

/// The result of a campaign (or of a shard of one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// First seed of the campaign.
    pub from: u64,
    /// Campaign size.
    pub seeds: u64,
    /// `"all"`, or the shards included: `"K/N"`, `"0,2/4"`.
    pub shard: String,
    /// Swarm mode.
    pub swarm: bool,
    /// Seeds run.
    pub seeds_run: u64,
    /// Seeds with any violation (invariants or bounds), ascending.
    pub failing_seeds: Vec<u64>,
    /// Per invariant (or `bound:<name>`).
    pub violations: BTreeMap<String, ViolationCount>,
    /// Largest relists per client-hour.
    pub worst_relists_per_client_hour: Option<Worst>,
    /// Largest informer staleness.
    pub worst_max_staleness_seconds: Option<Worst>,
    /// Order-independent digest of every seed's trace hash (wrapping sum).
    pub fingerprint: String,
    /// Wall-clock seconds (summed over merged shards; the only non-deterministic figure).
    pub wall_seconds: f64,
}

/// One seed's outcome.
#[derive(Debug, Clone)]
struct SeedResult {
    seed: u64,
    /// (name, violations, first message).
    violations: Vec<(String, u64, String)>,
    relists: f64,
    staleness: f64,
    trace_hash: String,
}

/// Why a campaign could not run.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    /// Bad scenario or override (exit 2).
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    /// Bad usage (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A run failed inside watchsim.
    #[error("seed {seed}: {message}")]
    Run {
        /// Seed.
        seed: u64,
        /// What failed.
        message: String,
    },
}

/// Parses `K/N`.
pub fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let (k, n) = text
        .split_once('/')
        .ok_or_else(|| format!("--shard {text}: expected K/N, e.g. 0/4"))?;
    let k: u64 = k
        .trim()
        .parse()
        .map_err(|_| format!("--shard {text}: K is not a number"))?;
    let n: u64 = n
        .trim()
        .parse()
        .map_err(|_| format!("--shard {text}: N is not a number"))?;
    if n == 0 || k >= n {
        return Err(format!("--shard {text}: needs 0 <= K < N"));
    }
    Ok((k, n))
}

/// The swarm variant of `spec` for `seed`: its own subset of fault kinds and disconnect rate.
pub fn swarm_variant(spec: &Spec, seed: u64) -> Result<Spec, ScenarioError> {
    let mut t = effective_table(&spec.origin, &spec.text, &spec.overrides)?;
    let mut rng = RngStream::new(seed, "swarm");
    if let Some(toml::Value::Table(f)) = t.get_mut("faults") {
        let rate = f
            .get("watch_disconnect_rate")
            .and_then(|v| v.as_float().or_else(|| v.as_integer().map(|n| n as f64)))
            .unwrap_or(0.0);
        if rate > 0.0 {
            let r = if rng.chance(0.5) {
                rate * rng.unit()
            } else {
                0.0
            };
            f.insert("watch_disconnect_rate".into(), toml::Value::Float(r));
        }
        if let Some(toml::Value::Array(at)) = f.get_mut("at") {
            let kinds: BTreeSet<String> = at
                .iter()
                .filter_map(|e| e.get("kind").and_then(|k| k.as_str()).map(String::from))
                .collect();
            let kept: BTreeSet<String> = kinds.into_iter().filter(|_| rng.chance(0.5)).collect();
            at.retain(|e| {
                e.get("kind")
                    .and_then(|k| k.as_str())
                    .is_some_and(|k| kept.contains(k))
            });
        }
    }
    let text = toml::to_string(&t).map_err(|e| ScenarioError {
        file: spec.origin.clone(),
        key: None,
        line: None,
        message: format!("cannot write the swarm variant: {e}"),
    })?;
    let mut v = Spec::load(&spec.origin, &text, &[], Some(seed))?;
    v.origin = format!("{} (swarm variant of seed {seed})", spec.origin);
    Ok(v)
}

/// The spec a campaign runs for `seed`.
pub fn seed_spec(base: &Spec, seed: u64, swarm: bool) -> Result<Spec, ScenarioError> {
    if swarm {
        swarm_variant(base, seed)
    } else {
        Ok(base.with_seed(seed))
    }
}

fn run_seed(base: &Spec, seed: u64, swarm: bool) -> Result<SeedResult, CampaignError> {
    let spec = seed_spec(base, seed, swarm)?;
    let loaded = LoadedScenario {
        origin: spec.origin.clone(),
        text: spec.text.clone(),
        overrides: spec.overrides.clone(),
        scenario: (*spec.scenario).clone(),
    };
    let run = panics::catch(|| {
        sim::run(
            &loaded,
            &RunOptions {
                seed: Some(seed),
                ..Default::default()
            },
        )
    });
    let report = match run {
        Ok(r) => r.map_err(|e| CampaignError::Run {
            seed,
            message: e.to_string(),
        })?,
        Err(message) => return Ok(panicked(&spec, seed, message)),
    };
    let mut violations: Vec<(String, u64, String)> = report
        .invariants
        .iter()
        .filter(|i| !i.held)
        .map(|i| {
            (
                i.name.clone(),
                i.violations,
                i.message.clone().unwrap_or_default(),
            )
        })
        .collect();
    for b in report.bounds.iter().filter(|b| !b.held) {
        violations.push((
            format!("bound:{}", b.name),
            1,
            format!("{} = {} exceeds the limit {}", b.name, b.value, b.limit),
        ));
    }
    Ok(SeedResult {
        seed,
        violations,
        relists: report.clients.relists_per_client_hour,
        staleness: report.clients.max_staleness_seconds,
        trace_hash: report.trace_hash,
    })
}

/// The result of a seed whose run panicked: a `panic` finding with the message and the step
/// (found by re-running the seed step by step, [`panics::capture_panic`]).
fn panicked(spec: &Spec, seed: u64, message: String) -> SeedResult {
    let (step, message) = match panics::capture_panic(spec).and_then(|c| c.footer.violation) {
        Some(v) => (Some(v.step), v.message),
        None => (None, message),
    };
    let text = match step {
        Some(step) => format!("panicked at step {step}: {message}"),
        None => format!("panicked: {message}"),
    };
    let mut h = Fnv64::new();
    h.update(text.as_bytes());
    SeedResult {
        seed,
        violations: vec![(panics::PANIC.to_string(), 1, text)],
        relists: 0.0,
        staleness: 0.0,
        trace_hash: format!("{:016x}", h.finish()),
    }
}

fn worse(a: Option<Worst>, value: f64, seed: u64) -> Option<Worst> {
    match a {
        Some(w) if w.value > value || (w.value == value && w.seed <= seed) => Some(w),
        _ => Some(Worst { value, seed }),
    }
}

fn fingerprint_of(seed: u64, trace_hash: &str) -> u64 {
    let mut h = Fnv64::new();
    h.update_u64(seed);
    h.update(trace_hash.as_bytes());
    h.finish()
}

fn shard_label(shards: &BTreeSet<u64>, n: u64) -> String {
    if shards.len() as u64 == n {
        return "all".into();
    }
    let ks: Vec<String> = shards.iter().map(|k| k.to_string()).collect();
    format!("{}/{n}", ks.join(","))
}

fn parse_label(label: &str) -> Option<(BTreeSet<u64>, u64)> {
    if label == "all" {
        return None;
    }
    let (ks, n) = label.split_once('/')?;
    let n = n.parse().ok()?;
    let ks = ks.split(',').filter_map(|k| k.parse().ok()).collect();
    Some((ks, n))
}

impl Summary {
    fn empty(scenario: &str, from: u64, seeds: u64, shard: String, swarm: bool) -> Summary {
        Summary {
            scenario: scenario.to_string(),
            from,
            seeds,
            shard,
            swarm,
            seeds_run: 0,
            failing_seeds: Vec::new(),
            violations: BTreeMap::new(),
            worst_relists_per_client_hour: None,
            worst_max_staleness_seconds: None,
            fingerprint: format!("{:016x}", 0),
            wall_seconds: 0.0,
        }
    }

    fn add(&mut self, r: &SeedResult) {
        self.seeds_run += 1;
        if !r.violations.is_empty() {
            self.failing_seeds.push(r.seed);
        }
        for (name, count, message) in &r.violations {
            let e = self
                .violations
                .entry(name.clone())
                .or_insert_with(|| ViolationCount {
                    seeds: 0,
                    count: 0,
                    first_seed: r.seed,
                    message: message.clone(),
                });
            e.seeds += 1;
            e.count += count;
            if r.seed < e.first_seed {
                e.first_seed = r.seed;
                e.message = message.clone();
            }
        }
        self.worst_relists_per_client_hour =
            worse(self.worst_relists_per_client_hour.take(), r.relists, r.seed);
        self.worst_max_staleness_seconds =
            worse(self.worst_max_staleness_seconds.take(), r.staleness, r.seed);
        let fp = u64::from_str_radix(&self.fingerprint, 16).unwrap_or(0);
        self.fingerprint = format!(
            "{:016x}",
            fp.wrapping_add(fingerprint_of(r.seed, &r.trace_hash))
        );
    }

    /// Merges the summaries of shards of one campaign; the result equals the unsharded
    /// campaign's summary (wall time aside). Fails on summaries of different campaigns or
    /// overlapping shards.
    pub fn merge(parts: &[Summary]) -> Result<Summary, String> {
        let first = parts.first().ok_or("nothing to merge")?;
        let mut shards: BTreeSet<u64> = BTreeSet::new();
        let mut of = None;
        let mut out = Summary::empty(
            &first.scenario,
            first.from,
            first.seeds,
            String::new(),
            first.swarm,
        );
        for p in parts {
            if (p.scenario.as_str(), p.from, p.seeds, p.swarm)
                != (
                    first.scenario.as_str(),
                    first.from,
                    first.seeds,
                    first.swarm,
                )
            {
                return Err(format!(
                    "summaries of different campaigns: {} seeds {}+{} (swarm {}) and {} seeds {}+{} (swarm {})",
                    first.scenario,
                    first.from,
                    first.seeds,
                    first.swarm,
                    p.scenario,
                    p.from,
                    p.seeds,
                    p.swarm
                ));
            }
            let (ks, n) = parse_label(&p.shard).ok_or_else(|| {
                format!(
                    "shard {} is a whole campaign; nothing to merge it with",
                    p.shard
                )
            })?;
            if *of.get_or_insert(n) != n {
                return Err(format!(
                    "shards of different splits: /{} and /{n}",
                    of.unwrap_or(n)
                ));
            }
            for k in ks {
                if !shards.insert(k) {
                    return Err(format!("shard {k}/{n} appears twice"));
                }
            }
            out.seeds_run += p.seeds_run;
            out.failing_seeds.extend(&p.failing_seeds);
            for (name, v) in &p.violations {
                match out.violations.get_mut(name) {
                    None => {
                        out.violations.insert(name.clone(), v.clone());
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
            for (mine, theirs) in [
                (
                    &mut out.worst_relists_per_client_hour,
                    &p.worst_relists_per_client_hour,
                ),
                (
                    &mut out.worst_max_staleness_seconds,
                    &p.worst_max_staleness_seconds,
                ),
            ] {
                if let Some(w) = theirs {
                    *mine = worse(mine.take(), w.value, w.seed);
                }
            }
            let a = u64::from_str_radix(&out.fingerprint, 16).unwrap_or(0);
            let b = u64::from_str_radix(&p.fingerprint, 16).map_err(|e| e.to_string())?;
            out.fingerprint = format!("{:016x}", a.wrapping_add(b));
            out.wall_seconds += p.wall_seconds;
        }
        out.failing_seeds.sort_unstable();
        out.shard = shard_label(&shards, of.unwrap_or(1));
        Ok(out)
    }

    /// True when two summaries describe the same results (wall time ignored).
    pub fn same_result(&self, other: &Summary) -> bool {
        let mut a = self.clone();
        let mut b = other.clone();
        a.wall_seconds = 0.0;
        b.wall_seconds = 0.0;
        a == b
    }

    /// The seeds of this campaign (or shard), in order.
    pub fn seed_list(from: u64, seeds: u64, shard: Option<(u64, u64)>) -> Vec<u64> {
        let (k, n) = shard.unwrap_or((0, 1));
        (k..seeds)
            .step_by(usize::try_from(n).unwrap_or(usize::MAX))
            .map(|i| from.wrapping_add(i))
            .collect()
    }

    /// How many seeds of a campaign of `seeds` a shard runs.
    pub fn shard_size(seeds: u64, shard: Option<(u64, u64)>) -> u64 {
        let (k, n) = shard.unwrap_or((0, 1));
        seeds.saturating_sub(k).div_ceil(n)
    }

    /// The human summary.
    pub fn render(&self, jobs: usize) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let last = self.from.saturating_add(self.seeds.saturating_sub(1));
        let _ = writeln!(
            o,
            "watchsim check {}: seeds {}..={} (shard {}, {} run{}{})",
            self.scenario,
            self.from,
            last,
            self.shard,
            self.seeds_run,
            if jobs > 0 {
                format!(", {jobs} jobs")
            } else {
                String::new()
            },
            if self.swarm { ", swarm" } else { "" }
        );
        if self.violations.is_empty() {
            let _ = writeln!(o, "violations: none");
        } else {
            let _ = writeln!(o, "violations by invariant:");
            for (name, v) in &self.violations {
                let _ = writeln!(
                    o,
                    "  {name:<28} {:>6} seeds {:>8} violations   first: seed {}: {}",
                    v.seeds, v.count, v.first_seed, v.message
                );
            }
        }
        if let Some(w) = &self.worst_relists_per_client_hour {
            let _ = writeln!(
                o,
                "worst relists_per_client_hour   {:.3} (seed {})",
                w.value, w.seed
            );
        }
        if let Some(w) = &self.worst_max_staleness_seconds {
            let _ = writeln!(
                o,
                "worst max_staleness_seconds     {:.3} (seed {})",
                w.value, w.seed
            );
        }
        let _ = writeln!(
            o,
            "failing seeds: {}{}",
            self.failing_seeds.len(),
            self.failing_seeds
                .first()
                .map(|s| format!(" (lowest {s})"))
                .unwrap_or_default()
        );
        let _ = writeln!(o, "fingerprint: {}", self.fingerprint);
        let _ = writeln!(o, "seconds: {:.2}", self.wall_seconds);
        o
    }
}

/// Runs a campaign over `base`.
pub fn run_campaign(base: &Spec, opts: &CampaignOptions) -> Result<Summary, CampaignError> {
    if opts.seeds == 0 {
        return Err(CampaignError::Usage("--seeds must be at least 1".into()));
    }
    let from = opts.from.unwrap_or(base.scenario.seed);
    if from.checked_add(opts.seeds - 1).is_none() {
        return Err(CampaignError::Usage(format!(
            "--from {from} --seeds {}: the last seed, from + seeds - 1, is beyond the largest seed {}",
            opts.seeds,
            u64::MAX
        )));
    }
    let size = Summary::shard_size(opts.seeds, opts.shard);
    if size > MAX_SEEDS_PER_PROCESS {
        return Err(CampaignError::Usage(format!(
            "--seeds {}: {size} seeds in one process is more than {MAX_SEEDS_PER_PROCESS}; split the campaign with --shard K/N (a Kubernetes Indexed Job, deploy/campaign-job.yaml)",
            opts.seeds
        )));
    }
    let seeds = Summary::seed_list(from, opts.seeds, opts.shard);
    let started = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()
        .map_err(|e| CampaignError::Usage(format!("cannot start {} threads: {e}", opts.jobs)))?;
    let bar = if opts.progress {
        let b = indicatif::ProgressBar::new(seeds.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} seeds ({per_sec}, eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let base = Arc::new(base.clone());
    let failing = std::sync::atomic::AtomicU64::new(0);
    let results: Vec<Result<SeedResult, CampaignError>> = pool.install(|| {
        seeds
            .par_iter()
            .map(|&seed| {
                let r = run_seed(&base, seed, opts.swarm);
                if let Ok(r) = &r
                    && !r.violations.is_empty()
                {
                    let n = failing.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    bar.set_message(format!("{n} failing"));
                }
                bar.inc(1);
                r
            })
            .collect()
    });
    bar.finish_and_clear();
    let shard = match opts.shard {
        None => "all".to_string(),
        Some((_, 1)) => "all".to_string(),
        Some((k, n)) => format!("{k}/{n}"),
    };
    let mut summary = Summary::empty(&base.scenario.name, from, opts.seeds, shard, opts.swarm);
    for r in results {
        summary.add(&r?);
    }
    summary.wall_seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// The capsule of the lowest failing seed and, with `shrink_budget > 0`, its shrunk form, both
/// written to `dir`: `(path, capsule, shrunk)`.
pub type Capsules = (PathBuf, CapsuleData, Option<(PathBuf, CapsuleData)>);

/// Writes the capsule (and the shrunk capsule) of `seed` into `dir`.
pub fn write_capsules(
    base: &Spec,
    seed: u64,
    swarm: bool,
    dir: &Path,
    shrink_budget: usize,
) -> Result<Option<Capsules>, CampaignError> {
    let spec = seed_spec(base, seed, swarm)?;
    let full = match panics::catch(|| capture(&spec, None)) {
        Ok(Some(full)) => full,
        Ok(None) => return Ok(None),
        Err(_) => match panics::capture_panic(&spec) {
            Some(full) => full,
            None => return Ok(None),
        },
    };
    let stem = format!("{}-seed{seed}", base.scenario.name);
    let io = |e: std::io::Error| CampaignError::Run {
        seed,
        message: format!("cannot write a capsule in {}: {e}", dir.display()),
    };
    let path = dir.join(format!("{stem}.capsule.jsonl"));
    full.write(&path).map_err(io)?;
    let shrunk = if shrink_budget > 0 {
        let target = full
            .footer
            .violation
            .as_ref()
            .map(|v| v.name.clone())
            .unwrap_or_default();
        let s = shrink::shrink(&full, &target, shrink_budget);
        let p = dir.join(format!("{stem}.shrunk.capsule.jsonl"));
        s.write(&p).map_err(io)?;
        Some((p, s))
    } else {
        None
    };
    Ok(Some((path, full, shrunk)))
}
