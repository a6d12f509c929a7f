//! The discrete-event driver behind `watchsim run`: builds the initial `World`, repeatedly fires
//! the earliest pending event until the scenario's virtual duration has passed, hashes (and
//! optionally writes) the trace, and assembles the report.

#[cfg(test)]
mod journal_tests;

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::report::{
    ApiserverReport, BoundReport, ClientsReport, EtcdReport, PopulationReport, RelistCauses,
    Report, ScriptEntry,
};
use crate::scenario::{self, DurationNs, LoadedScenario, ScenarioError, format_ns};
use crate::trace::{StepRecord, StepSink, TRACE_FORMAT, TRACE_VERSION, TraceHeader, TraceWriter};
use crate::world::{ApplyError, World};

/// Options of one run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Seed; the scenario's when absent.
    pub seed: Option<u64>,
    /// Virtual duration; the scenario's when absent.
    pub duration: Option<DurationNs>,
    /// Write the trace here.
    pub trace: Option<PathBuf>,
    /// Skip the per-step trace hash (the report's `trace_hash` is then empty). For callers that
    /// read only the report's figures, as `sweep` does: serialising every step for the hash is
    /// about a tenth of a run. Ignored when `trace` is set.
    pub skip_trace_hash: bool,
    /// Write and hash the step lines on a helper thread ([`StepSink`]): for a lone run on a
    /// machine with a core to spare. The trace and its hash are the same either way.
    pub trace_thread: bool,
}

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scenario is invalid.
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    /// The trace file could not be written.
    #[error("{path}: cannot write the trace: {source}")]
    TraceIo {
        /// Trace path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The model refused an action (a bug in watchsim).
    #[error("internal error: {0}")]
    Apply(#[from] ApplyError),
}

fn trace_err(path: &str) -> impl Fn(std::io::Error) -> RunError + '_ {
    move |source| RunError::TraceIo {
        path: path.to_string(),
        source,
    }
}

/// Runs `loaded` once.
pub fn run(loaded: &LoadedScenario, opts: &RunOptions) -> Result<Report, RunError> {
    run_following(loaded, opts, &[]).map(|(report, _)| report)
}

/// How far a run has got, for a progress display: passed to the observer of [`run_observed`]
/// every [`PROGRESS_EVERY_STEPS`] steps and once at the end. Virtual time only: the observer
/// may look at a wall clock, the model never does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Virtual time reached.
    pub now_ns: u64,
    /// Virtual time the run ends at.
    pub end_ns: u64,
    /// Steps applied so far.
    pub steps: u64,
}

/// Steps between two calls of a run's progress observer (a power of two: one mask test per
/// step in the hot loop).
pub const PROGRESS_EVERY_STEPS: u64 = 1 << 14;

/// [`run`], calling `observer` with the run's [`Progress`] every [`PROGRESS_EVERY_STEPS`] steps
/// and once when the simulation loop ends. The report and trace are those of [`run`].
pub fn run_observed(
    loaded: &LoadedScenario,
    opts: &RunOptions,
    observer: &mut dyn FnMut(Progress),
) -> Result<Report, RunError> {
    run_following_observed(loaded, opts, &[], observer).map(|(report, _)| report)
}

/// The cache figures (`cache_capacity_max`, `cache_bytes_max`, per apiserver) a followed watch
/// cache configuration would have reported, or `None` when its run would have differed.
pub type FollowedFigures = Option<Vec<(u64, u64)>>;

/// [`run`], following other watch-cache configurations along the run (`cache_shadow.rs`, for
/// `watchsim sweep`): for each of `configs`, the cache figures that configuration's run would
/// report if it made every decision as this one, else `None`.
pub fn run_following(
    loaded: &LoadedScenario,
    opts: &RunOptions,
    configs: &[crate::scenario::WatchCacheConfig],
) -> Result<(Report, Vec<FollowedFigures>), RunError> {
    run_following_observed(loaded, opts, configs, &mut |_| {})
}

/// The trace writer of a run: a file with its header (SPEC §5) when `--trace` is given, else
/// a writer that only hashes the step lines.
fn open_trace(
    loaded: &LoadedScenario,
    opts: &RunOptions,
    seed: u64,
    trace_path: &str,
) -> Result<TraceWriter, RunError> {
    let Some(path) = &opts.trace else {
        return Ok(TraceWriter::hash_only());
    };
    let file = File::create(path).map_err(trace_err(trace_path))?;
    let header = TraceHeader {
        format: TRACE_FORMAT.to_string(),
        version: TRACE_VERSION,
        watchsim_version: crate::VERSION.to_string(),
        scenario: loaded.text.clone(),
        seed,
        overrides: loaded.overrides.clone(),
    };
    TraceWriter::to_sink(Box::new(BufWriter::new(file)), &header).map_err(trace_err(trace_path))
}

fn run_following_observed(
    loaded: &LoadedScenario,
    opts: &RunOptions,
    configs: &[crate::scenario::WatchCacheConfig],
    observer: &mut dyn FnMut(Progress),
) -> Result<(Report, Vec<FollowedFigures>), RunError> {
    let scenario = Arc::new(loaded.scenario.clone());
    let seed = opts.seed.unwrap_or(scenario.seed);
    let end_ns = opts.duration.unwrap_or(scenario.duration).as_ns();
    let trace_path = opts
        .trace
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let hash_steps = opts.trace.is_some() || !opts.skip_trace_hash;
    let mut writer = StepSink::new(
        open_trace(loaded, opts, seed, &trace_path)?,
        hash_steps && opts.trace_thread,
    );
    let started = Instant::now();
    let mut world = World::new(Arc::clone(&scenario), seed);
    if !configs.is_empty() {
        world.follow_cache_configs(configs);
    }
    let mut steps = 0u64;
    let mut buffers = crate::world::StepBuffers::default();
    while let Some(action) = world.next_timed_action() {
        let crate::world::Action::Fire(key) = action;
        if key.due_ns > end_ns {
            break;
        }
        let outcome = world.apply_reusing(action, &mut buffers)?;
        steps += 1;
        if steps & (PROGRESS_EVERY_STEPS - 1) == 0 {
            observer(Progress {
                now_ns: world.now(),
                end_ns,
                steps,
            });
        }
        if !hash_steps {
            continue;
        }
        writer
            .step(&StepRecord {
                step: steps,
                t_ns: world.now(),
                fire: key,
                outcome: &outcome,
            })
            .map_err(trace_err(&trace_path))?;
    }
    let writer = writer.into_writer().map_err(trace_err(&trace_path))?;
    world.settle_lanes();
    let wall_seconds = started.elapsed().as_secs_f64();
    observer(Progress {
        now_ns: end_ns,
        end_ns,
        steps,
    });

    let mut report = build_report(&world, seed, end_ns, steps, wall_seconds);
    if hash_steps {
        report.trace_hash = writer.hash_hex();
    }
    let footer = crate::trace::TraceFooter {
        trace_hash: report.trace_hash.clone(),
        violations: report.violations(),
        end_ns: Some(end_ns),
    };
    writer
        .finish_with(&footer)
        .map_err(trace_err(&trace_path))?;
    let followed = (0..configs.len())
        .map(|m| world.followed_cache_figures(m))
        .collect();
    Ok((report, followed))
}

/// Loads scenario text and runs it: the entry point for tests and tools.
pub fn run_str(
    origin: &str,
    text: &str,
    overrides: &[String],
    seed: Option<u64>,
) -> Result<Report, Box<dyn std::error::Error>> {
    let scenario = scenario::load_str(origin, text, overrides)?;
    let loaded = LoadedScenario {
        origin: origin.to_string(),
        text: text.to_string(),
        overrides: overrides.to_vec(),
        scenario,
    };
    Ok(run(
        &loaded,
        &RunOptions {
            seed,
            ..Default::default()
        },
    )?)
}

fn apiserver_report(a: &crate::apiserver::Apiserver) -> ApiserverReport {
    let c = &a.counters;
    // Cacher counters summed over the apiserver's incarnations (its caches restart cold).
    let k = a.cacher_totals();
    let cache_bytes_now: u64 = a.cachers().map(|x| x.cache.bytes_max()).sum();
    ApiserverReport {
        name: format!("apiserver-{}", a.index),
        restarts: c.restarts,
        lists_from_cache: c.lists_from_cache,
        lists_from_etcd: c.lists_from_etcd,
        list_bytes: c.list_bytes,
        too_old_errors: c.too_old_errors,
        too_large_errors: c.too_large_errors,
        bookmarks_sent: k.bookmarks_sent,
        watchers_closed_slow: k.watchers_closed_slow,
        cache_capacity_max: k.capacity_max,
        cache_bytes_max: cache_bytes_now.max(k.bytes_max),
        etcd_read_bytes: c.etcd_read_bytes,
        too_many_requests: c.too_many_requests,
        lists_in_flight_max: c.lists_in_flight_max,
        list_memory_bytes_max: c.list_memory_bytes_max,
        cache_initializations: c.cache_initializations,
        consistent_read_fallbacks: c.consistent_read_fallbacks,
        progress_requests: c.progress_requests,
        compactions: c.compactions,
        consistency_check_pages: c.consistency_check_pages,
        watch_events_sent: k.events_sent,
        intervals_invalidated: k.intervals_invalidated,
    }
}

/// How many informers' stores differ, at the end, from etcd's latest state of their scope
/// (compared by digest of keys and mod revisions).
fn not_converged(world: &World) -> u64 {
    use crate::client::store::Digest;
    let etcd = world.etcd();
    // Clients share scopes (15,000 kube-proxies one): each scope's digest is computed once,
    // by the checker's interned id of the scope.
    let scopes = &world.observations().checker.scopes;
    let mut scope_digests: std::collections::BTreeMap<u32, Digest> =
        std::collections::BTreeMap::new();
    let mut not_converged = 0;
    for (i, c) in world.clients().iter().enumerate() {
        let want = *scope_digests.entry(scopes[i]).or_insert_with(|| {
            let r = etcd
                .store
                .range(&c.scope, 0, 0)
                .expect("latest is readable");
            let mut d = Digest::default();
            for kv in &r.kvs {
                d.add(&kv.key, kv.mod_revision);
            }
            d
        });
        if c.store.digest() != want {
            not_converged += 1;
        }
    }
    not_converged
}

/// The clients' part of the report (SPEC §4 `clients`): relists by cause, resumes, reconnects
/// and 410s, staleness, convergence, LIST figures.
fn clients_report(world: &World, end_ns: u64) -> ClientsReport {
    let obs = world.observations();
    let clients = world.clients();
    let count = clients.len() as u64;
    let mut causes = RelistCauses::default();
    let (mut resumes, mut reconnects, mut too_old, mut lists, mut events) = (0, 0, 0, 0, 0);
    for c in clients.iter() {
        let k = &c.counters;
        causes.too_old += k.relists_too_old;
        causes.too_large += k.relists_too_large;
        causes.restart += k.relists_restart;
        causes.error += k.relists_error;
        resumes += k.watch_resumes;
        reconnects += k.reconnects;
        too_old += k.reconnects_too_old;
        lists += k.list_requests;
        events += k.events;
    }
    let not_converged = not_converged(world);
    let relists = causes.too_old + causes.too_large + causes.restart + causes.error;
    let hours = end_ns as f64 / 3600e9;
    ClientsReport {
        count,
        relists,
        relists_per_client_hour: if count > 0 && hours > 0.0 {
            relists as f64 / count as f64 / hours
        } else {
            0.0
        },
        relist_causes: causes,
        watch_resumes: resumes,
        max_staleness_seconds: obs.staleness_max_ns as f64 / 1e9,
        converged: not_converged == 0,
        not_converged,
        reconnects,
        reconnects_too_old: too_old,
        p_410_on_reconnect: if reconnects > 0 {
            too_old as f64 / reconnects as f64
        } else {
            0.0
        },
        list_requests: lists,
        etcd_lists_per_client_hour: crate::verdicts::relist::etcd_lists_per_client_hour(
            world, end_ns,
        ),
        time_travels: obs.time_travels,
        events,
        list_latency_seconds_mean: {
            let (n, sum) = obs.populations.iter().fold((0, 0), |(n, sum), p| {
                (n + p.lists, sum + p.list_latency_sum_ns)
            });
            if n > 0 {
                sum as f64 / n as f64 / 1e9
            } else {
                0.0
            }
        },
        list_latency_seconds_max: obs
            .populations
            .iter()
            .map(|p| p.list_latency_max_ns)
            .max()
            .unwrap_or(0) as f64
            / 1e9,
    }
}

/// Each client population's LISTs, latency, relists and staleness.
fn population_reports(world: &World) -> Vec<PopulationReport> {
    let s = world.scenario();
    let obs = world.observations();
    let mut relists = vec![0u64; s.clients.len()];
    for c in world.clients().iter() {
        relists[c.population as usize] += c.counters.relists();
    }
    s.clients
        .iter()
        .zip(&obs.populations)
        .zip(relists)
        .map(|((cfg, p), relists)| PopulationReport {
            name: cfg.name.clone(),
            count: cfg.count,
            lists: p.lists,
            list_latency_seconds_mean: if p.lists > 0 {
                p.list_latency_sum_ns as f64 / p.lists as f64 / 1e9
            } else {
                0.0
            },
            list_latency_seconds_max: p.list_latency_max_ns as f64 / 1e9,
            relists,
            max_staleness_seconds: p.staleness_max_ns as f64 / 1e9,
        })
        .collect()
}

/// The process's peak resident set size from `/proc/self/status` (`VmHWM`), 0 if unavailable.
fn peak_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kib| kib * 1024)
        .unwrap_or(0)
}

fn per_second(n: f64, secs: f64) -> f64 {
    if secs > 0.0 { n / secs } else { 0.0 }
}

/// The scripted steps' results in execution order (SPEC §4 `script`); a step that got no
/// answer before the end says so.
fn script_entries(world: &World) -> Vec<ScriptEntry> {
    let s = world.scenario();
    let obs = world.observations();
    let mut order: Vec<usize> = (0..s.steps.len()).collect();
    order.sort_by_key(|&i| s.steps[i].at());
    order
        .iter()
        .map(|&i| ScriptEntry {
            at: format_ns(s.steps[i].at().as_ns()),
            op: s.steps[i].op_name().to_string(),
            result: obs.script_results[i].clone().unwrap_or_else(|| {
                serde_json::json!({"error": "no_response", "message": "no answer before the end of the run"})
            }),
        })
        .collect()
}

/// The scenario's `[bounds]` judged against the clients' figures.
fn bounds_report(s: &crate::scenario::Scenario, clients: &ClientsReport) -> Vec<BoundReport> {
    let bound = |name: &str, limit: f64, value: f64| BoundReport {
        name: name.into(),
        limit,
        value,
        held: value <= limit,
    };
    let b = &s.bounds;
    [
        b.relists_per_client_hour.map(|l| {
            bound(
                "relists_per_client_hour",
                l,
                clients.relists_per_client_hour,
            )
        }),
        b.max_staleness.map(|l| {
            bound(
                "max_staleness",
                l.as_secs_f64(),
                clients.max_staleness_seconds,
            )
        }),
        b.etcd_lists_per_client_hour.map(|l| {
            bound(
                "etcd_lists_per_client_hour",
                l,
                clients.etcd_lists_per_client_hour,
            )
        }),
    ]
    .into_iter()
    .flatten()
    .collect()
}

pub(crate) fn build_report(
    world: &World,
    seed: u64,
    end_ns: u64,
    steps: u64,
    wall_seconds: f64,
) -> Report {
    let s = world.scenario();
    let etcd = world.etcd();
    let obs = world.observations();
    let script = script_entries(world);
    let clients = clients_report(world, end_ns);
    let bounds = bounds_report(s, &clients);
    let mut notes = obs.notes.clone();
    for m in s.mutants.enabled() {
        notes.push(format!(
            "mutant {m} is on: the model is deliberately broken (scenario [mutants])"
        ));
    }
    let events = etcd.hub.events_sent();
    Report {
        scenario: s.name.clone(),
        seed,
        watchsim_version: crate::VERSION.to_string(),
        virtual_seconds: end_ns as f64 / 1e9,
        wall_seconds,
        steps,
        steps_per_second: per_second(steps as f64, wall_seconds),
        events_per_second: per_second(events as f64, wall_seconds),
        peak_memory_bytes: peak_memory_bytes(),
        trace_hash: String::new(),
        etcd: EtcdReport {
            revision: etcd.store.revision(),
            compact_revision: etcd.store.compact_revision().max(0),
            range_requests: etcd.counters.range_requests,
            range_bytes: etcd.counters.range_bytes,
            watch_events_sent: events,
            writes: etcd.counters.writes,
            write_bytes: etcd.counters.write_bytes,
            keys: etcd.store.live_keys(),
        },
        apiservers: world
            .apiservers()
            .iter()
            .map(|a| apiserver_report(a))
            .collect(),
        clients,
        // check: the SPEC §6 verdicts (src/check/).
        invariants: crate::verdicts::verdicts(world, end_ns, true),
        bounds,
        script,
        watches: obs.watches.clone(),
        series: obs.series.clone(),
        client_populations: population_reports(world),
        client_requests: obs.client_requests.clone(),
        notes,
    }
}
