//! `watchsim sweep`: runs a scenario over a grid of parameter values × N seeds and summarises
//! each grid point (SPEC §1).
//!
//! Pipeline, each stage usable on its own:
//! 1. [`grid`]: `--vary KEY=V1,V2,...` arguments (values read as `--set` reads them, plus the
//!    range shorthand `A..B*F` / `A..B+S`) and the grid order (first key slowest);
//! 2. [`plan`]: loads the scenario once per grid point (global `--set`s, then the point's
//!    values), so a bad key or value is refused (exit 2) before anything runs;
//! 3. [`execute`]: runs every (point, seed) on a rayon pool with a progress bar on stderr, reads
//!    the figures of [`aggregate::FIGURES`] from each report's JSON, and aggregates per point in
//!    grid order and seed order, so the results are identical for any `--jobs`;
//! 4. outputs: [`table::render`] (stdout), [`csv::render`] (`results.csv`), [`plot::render`]
//!    (`sweep.svg`) and [`recommend::recommend`] (the recommendation line).
//!
//! Every grid point runs the same seeds S..S+N-1, S being the scenario's `seed` (after the
//! global `--set`s), so differences between points are not seed noise (common random numbers).

pub mod aggregate;
pub mod csv;
pub mod grid;
pub mod plot;
pub mod recommend;
pub mod share;
pub mod table;

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use crate::scenario::{self, DurationNs, LoadedScenario, ScenarioError, parse_duration};
use crate::sim::{self, RunError, RunOptions};

pub use aggregate::{FIGURES, Figure, PointResult, RunFigures, Stats, SweepResult};
pub use grid::{Axis, AxisValue, Grid, parse_vary};
pub use recommend::{Recommendation, recommend};

/// Seeds per grid point when `--seeds` is not given.
pub const DEFAULT_SEEDS: u64 = 10;

/// Output directory when `--out` is not given.
pub const DEFAULT_OUT: &str = "sweep-out";

/// Why a sweep could not complete.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Bad arguments (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The scenario, a `--set` or a grid point's values are invalid (exit 2).
    #[error("{context}{source}")]
    Scenario {
        /// Which grid point, if the error is specific to one.
        context: String,
        /// The scenario loader's error.
        source: ScenarioError,
    },
    /// An output file could not be written (exit 2).
    #[error("{path}: cannot write: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The plot could not be drawn (a bug in watchsim).
    #[error("{0}")]
    Plot(String),
    /// A run failed (a bug in watchsim).
    #[error("grid point {point}, seed {seed}: {source}")]
    Run {
        /// The grid point, as `key=value ...`.
        point: String,
        /// The seed.
        seed: u64,
        /// Cause.
        source: RunError,
    },
}

impl SweepError {
    /// The process exit code: 2 for bad input, 70 for an internal error (as `watchsim run`).
    pub fn exit_code(&self) -> u8 {
        match self {
            SweepError::Usage(_) | SweepError::Scenario { .. } | SweepError::Io { .. } => 2,
            SweepError::Run {
                source: RunError::Scenario(_),
                ..
            } => 2,
            SweepError::Plot(_) | SweepError::Run { .. } => 70,
        }
    }
}

/// Everything `watchsim sweep` takes, as given on the command line.
#[derive(Debug, Clone)]
pub struct SweepArgs {
    /// Scenario file.
    pub scenario: PathBuf,
    /// `--vary KEY=V1,V2,...`, in order.
    pub vary: Vec<String>,
    /// `--set KEY=VALUE`, applied to every point before its `--vary` values.
    pub set: Vec<String>,
    /// Seeds per point.
    pub seeds: u64,
    /// Worker threads; `None` = available cores.
    pub jobs: Option<usize>,
    /// Virtual duration of every run (e.g. "20s"); `None` = the scenario's.
    pub duration: Option<String>,
    /// Output directory.
    pub out: PathBuf,
    /// Draw a progress bar on stderr (hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// Share runs between grid points that differ only in the watch cache's size ([`share`]);
    /// the results are the same either way.
    pub share: bool,
    /// `--max-memory SIZE`; `None` = three quarters of the machine's memory.
    pub max_memory: Option<String>,
}

/// A sweep ready to run: every grid point loaded and validated.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The grid.
    pub grid: Grid,
    /// Scenario name.
    pub scenario: String,
    /// The seeds every point runs.
    pub seeds: Vec<u64>,
    /// Virtual duration override.
    pub duration: Option<DurationNs>,
    /// One loaded scenario per grid point, in grid order, with the point's value indices.
    pub points: Vec<(Vec<usize>, LoadedScenario)>,
    /// The scenario's `[bounds]` (after the global `--set`s) as (figure name, limit), for the plot.
    pub bounds: Vec<(&'static str, f64)>,
}

/// `[bounds]` entries as (figure name, limit in the figure's unit).
fn bound_limits(scenario: &scenario::Scenario) -> Vec<(&'static str, f64)> {
    let b = &scenario.bounds;
    let mut out = Vec::new();
    if let Some(limit) = b.relists_per_client_hour {
        out.push(("relists_per_client_hour", limit));
    }
    if let Some(limit) = b.max_staleness {
        out.push(("max_staleness_seconds", limit.as_ns() as f64 / 1e9));
    }
    if let Some(limit) = b.etcd_lists_per_client_hour {
        out.push(("etcd_lists_per_client_hour", limit));
    }
    out
}

/// Loads the scenario text for every grid point. `set` applies to every point, then the point's
/// `--vary` values; seeds are S..S+n-1 with S the scenario's `seed` after `set`.
pub fn plan(
    origin: &str,
    text: &str,
    set: &[String],
    grid: Grid,
    seeds: u64,
    duration: Option<DurationNs>,
) -> Result<Plan, SweepError> {
    if seeds == 0 {
        return Err(SweepError::Usage("--seeds must be at least 1".into()));
    }
    let limit = crate::check::campaign::MAX_SEEDS_PER_PROCESS;
    if (grid.len() as u64).saturating_mul(seeds) > limit {
        return Err(SweepError::Usage(format!(
            "--seeds {seeds} x {} grid point(s) is more than {limit} runs in one process",
            grid.len()
        )));
    }
    let base = scenario::load_str(origin, text, set).map_err(|source| SweepError::Scenario {
        context: String::new(),
        source,
    })?;
    let start = base.seed;
    let seeds: Vec<u64> = (0..seeds)
        .map(|i| start.checked_add(i))
        .collect::<Option<_>>()
        .ok_or_else(|| SweepError::Usage(format!("seeds {start}+{seeds} overflow")))?;
    let mut points = Vec::with_capacity(grid.len());
    for point in grid.points() {
        let mut overrides = set.to_vec();
        overrides.extend(grid.overrides(&point));
        let scenario = scenario::load_str(origin, text, &overrides).map_err(|source| {
            SweepError::Scenario {
                context: format!("--vary (grid point {}): ", grid.describe(&point)),
                source,
            }
        })?;
        points.push((
            point,
            LoadedScenario {
                origin: origin.to_string(),
                text: text.to_string(),
                overrides,
                scenario,
            },
        ));
    }
    Ok(Plan {
        grid,
        bounds: bound_limits(&base),
        scenario: base.name,
        seeds,
        duration,
        points,
    })
}

/// Runs one (point, seed) and reads its figures.
pub fn run_one(
    loaded: &LoadedScenario,
    seed: u64,
    duration: Option<DurationNs>,
) -> Result<RunFigures, RunError> {
    let run = crate::check::panics::catch(|| {
        sim::run(
            loaded,
            &RunOptions {
                seed: Some(seed),
                duration,
                trace: None,
                skip_trace_hash: true,
                trace_thread: false,
            },
        )
    });
    let Ok(report) = run else {
        return Ok(panicked(loaded));
    };
    let report = report?;
    let violations = report.violations();
    let has_bounds = !report.bounds.is_empty();
    let json = figures_json(report);
    Ok(RunFigures {
        values: aggregate::read_figures(&json),
        violations,
        has_bounds,
    })
}

/// The figures of a run that panicked: the `panic` finding (the point is violated; `watchsim
/// check` on the point's scenario and seed gives its capsule), and zeros.
pub fn panicked(loaded: &LoadedScenario) -> RunFigures {
    RunFigures {
        values: vec![0.0; aggregate::FIGURES.len()],
        violations: vec![crate::check::panics::PANIC.to_string()],
        has_bounds: loaded.scenario.bounds != Default::default(),
    }
}

/// A report's JSON form for reading figures.
fn figures_json(mut report: crate::report::Report) -> serde_json::Value {
    // Scripted results can be large and hold no figure: drop them before the JSON conversion.
    report.script.clear();
    report.watches.clear();
    serde_json::to_value(&report).unwrap_or(serde_json::Value::Null)
}

/// Runs every (point, seed) of `plan` on `jobs` threads (`None` = available cores) and
/// aggregates per point. The result does not depend on `jobs`.
pub fn execute(
    plan: &Plan,
    jobs: Option<usize>,
    progress: bool,
) -> Result<SweepResult, SweepError> {
    execute_with(plan, jobs, progress, true)
}

/// [`execute`], with sharing runs between grid points that differ only in the watch cache's
/// size (`share`, see [`share`]) on or off; the result is the same either way.
pub fn execute_with(
    plan: &Plan,
    jobs: Option<usize>,
    progress: bool,
    share: bool,
) -> Result<SweepResult, SweepError> {
    execute_counted(plan, jobs, progress, share).map(|(result, _)| result)
}

/// [`execute_with`], also returning how many simulations ran (fewer than points × seeds when
/// runs were shared).
pub fn execute_counted(
    plan: &Plan,
    jobs: Option<usize>,
    progress: bool,
    share: bool,
) -> Result<(SweepResult, usize), SweepError> {
    let jobs = match jobs {
        Some(0) => return Err(SweepError::Usage("--jobs must be at least 1".into())),
        Some(j) => j,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| SweepError::Usage(format!("cannot start {jobs} worker threads: {e}")))?;
    let work: Vec<(usize, u64)> = (0..plan.points.len())
        .flat_map(|p| plan.seeds.iter().map(move |&s| (p, s)))
        .collect();
    let bar = if progress {
        let bar =
            ProgressBar::with_draw_target(Some(work.len() as u64), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "sweep {bar:40} {pos}/{len} runs, {elapsed_precise} elapsed, eta {eta}",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let n = plan.seeds.len();
    let (runs, simulations): (Vec<RunFigures>, usize) =
        if share && plan.points.len() > 1 && share::shareable(plan) {
            // One task per seed; each gives every point's figures for that seed.
            let per_seed: Vec<Result<(Vec<RunFigures>, usize), SweepError>> = pool.install(|| {
                plan.seeds
                    .par_iter()
                    .map(|&seed| share::run_seed(plan, seed, &|| bar.inc(1)))
                    .collect()
            });
            let per_seed: Vec<(Vec<RunFigures>, usize)> =
                per_seed.into_iter().collect::<Result<_, _>>()?;
            let simulations = per_seed.iter().map(|(_, n)| n).sum();
            let runs = (0..plan.points.len())
                .flat_map(|p| per_seed.iter().map(move |(figs, _)| figs[p].clone()))
                .collect();
            (runs, simulations)
        } else {
            (run_each(plan, &pool, &work, &bar)?, work.len())
        };
    bar.finish_and_clear();
    let points = plan
        .points
        .iter()
        .enumerate()
        .map(|(i, (point, _))| {
            PointResult::from_runs(point.clone(), &plan.seeds, &runs[i * n..(i + 1) * n])
        })
        .collect();
    let result = SweepResult {
        scenario: plan.scenario.clone(),
        axes: plan.grid.axes.clone(),
        seeds: plan.seeds.clone(),
        points,
    };
    Ok((result, simulations))
}

/// Every (point, seed) of `work` as a run of its own.
fn run_each(
    plan: &Plan,
    pool: &rayon::ThreadPool,
    work: &[(usize, u64)],
    bar: &ProgressBar,
) -> Result<Vec<RunFigures>, SweepError> {
    let runs: Vec<Result<RunFigures, SweepError>> = pool.install(|| {
        work.par_iter()
            .map(|&(p, seed)| {
                let (point, loaded) = &plan.points[p];
                let r = run_one(loaded, seed, plan.duration).map_err(|source| SweepError::Run {
                    point: plan.grid.describe(point),
                    seed,
                    source,
                });
                bar.inc(1);
                r
            })
            .collect()
    });
    runs.into_iter().collect()
}

/// Writes `results.csv` and `sweep.svg` (with `bounds` drawn, see [`Plan::bounds`]) into `dir`
/// (created if needed); returns their paths.
pub fn write_outputs(
    result: &SweepResult,
    bounds: &[(&str, f64)],
    dir: &Path,
) -> Result<(PathBuf, PathBuf), SweepError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| SweepError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let csv_path = dir.join("results.csv");
    std::fs::write(&csv_path, csv::render(result)).map_err(io(&csv_path))?;
    let svg = plot::render_with_bounds(result, bounds).map_err(SweepError::Plot)?;
    let svg_path = dir.join("sweep.svg");
    std::fs::write(&svg_path, svg).map_err(io(&svg_path))?;
    Ok((csv_path, svg_path))
}

/// What `watchsim sweep` prints and how it exits.
#[derive(Debug, Clone)]
pub struct SweepOutcome {
    /// The results.
    pub result: SweepResult,
    /// Text for stdout: the table, the files written, the recommendation, the verdict.
    pub stdout: String,
    /// Every point held (exit 0); otherwise exit 1.
    pub held: bool,
}

/// The whole command: parse, plan, run, write the outputs, render the text for stdout.
pub fn run_cli(args: &SweepArgs) -> Result<SweepOutcome, SweepError> {
    if args.jobs == Some(0) {
        return Err(SweepError::Usage("--jobs must be at least 1".into()));
    }
    let axes = args
        .vary
        .iter()
        .map(|raw| parse_vary(raw))
        .collect::<Result<Vec<_>, _>>()
        .map_err(SweepError::Usage)?;
    let grid = Grid::new(axes).map_err(SweepError::Usage)?;
    let duration = match args.duration.as_deref().map(parse_duration) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => return Err(SweepError::Usage(format!("--duration: {e}"))),
    };
    if let Some(Err(e)) = duration.map(scenario::check_duration_flag) {
        return Err(SweepError::Usage(e));
    }
    let limit = scenario::budget::MemoryLimit::resolve(args.max_memory.as_deref())
        .map_err(SweepError::Usage)?;
    let origin = args.scenario.display().to_string();
    let text = std::fs::read_to_string(&args.scenario).map_err(|e| SweepError::Scenario {
        context: String::new(),
        source: ScenarioError {
            file: origin.clone(),
            key: None,
            line: None,
            message: format!("cannot read the file: {e}"),
        },
    })?;
    let plan = plan(&origin, &text, &args.set, grid, args.seeds, duration)?;
    let parallel = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        as u64;
    for (point, loaded) in &plan.points {
        let mut sized = loaded.scenario.clone();
        if let Some(d) = duration {
            sized.duration = d;
        }
        scenario::check_memory(&origin, &text, &loaded.overrides, &sized, parallel, &limit)
            .map_err(|source| SweepError::Scenario {
                context: format!("--vary (grid point {}): ", plan.grid.describe(point)),
                source,
            })?;
    }
    // Fail on an unusable --out before the runs, not after.
    std::fs::create_dir_all(&args.out).map_err(|source| SweepError::Io {
        path: args.out.display().to_string(),
        source,
    })?;
    let (result, simulations) = execute_counted(&plan, args.jobs, args.progress, args.share)?;
    let (csv_path, svg_path) = write_outputs(&result, &plan.bounds, &args.out)?;
    let mut stdout = format!(
        "watchsim sweep {} ({}): {} grid point(s) x {} seed(s) ({}..={})\n",
        origin,
        result.scenario,
        result.points.len(),
        result.seeds.len(),
        result.seeds.first().copied().unwrap_or(0),
        result.seeds.last().copied().unwrap_or(0),
    );
    let point_seeds = result.points.len() * result.seeds.len();
    if simulations < point_seeds {
        stdout.push_str(&format!(
            "shared runs: {simulations} simulations for {point_seeds} point-seeds (points that differ only in the watch cache's size; --no-share to run each alone)\n"
        ));
    }
    stdout.push_str(&table::render(&result));
    stdout.push_str(&format!(
        "wrote {} and {}\n",
        csv_path.display(),
        svg_path.display()
    ));
    stdout.push_str(&format!("{}\n", recommend(&result)));
    let held = result.held();
    let bad = result.points.iter().filter(|p| !p.held()).count();
    stdout.push_str(&if held {
        "verdict: every grid point held on every seed\n".to_string()
    } else {
        format!(
            "verdict: VIOLATED at {bad} of {} grid point(s)\n",
            result.points.len()
        )
    });
    Ok(SweepOutcome {
        result,
        stdout,
        held,
    })
}
