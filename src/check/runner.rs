//! Drivers shared by capsules, replay and shrinking: a scenario ready to run ([`Spec`]), the
//! simulator's loop with a per-step callback ([`run_timed`]), and the exact bytes of a trace's
//! step line ([`step_line`]).

use std::sync::Arc;

use crate::kernel::{EventKey, Nanos};
use crate::report::Report;
use crate::scenario::{self, Scenario, ScenarioError};
use crate::trace::{StepRecord, TRACE_FORMAT, TRACE_VERSION, TraceHeader};
use crate::world::{Action, Outcome, World};

/// A scenario as a run needs it: the text and overrides (for headers) and the parsed form.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Where it came from (for messages).
    pub origin: String,
    /// Scenario TOML text.
    pub text: String,
    /// `--set` overrides in force.
    pub overrides: Vec<String>,
    /// The validated scenario.
    pub scenario: Arc<Scenario>,
    /// Seed.
    pub seed: u64,
    /// Virtual time the run ends at.
    pub end_ns: Nanos,
}

impl Spec {
    /// Loads `text` with `overrides`; the seed defaults to the scenario's.
    pub fn load(
        origin: &str,
        text: &str,
        overrides: &[String],
        seed: Option<u64>,
    ) -> Result<Spec, ScenarioError> {
        let s = scenario::load_str(origin, text, overrides)?;
        Ok(Spec {
            origin: origin.to_string(),
            text: text.to_string(),
            overrides: overrides.to_vec(),
            seed: seed.unwrap_or(s.seed),
            end_ns: s.duration.as_ns(),
            scenario: Arc::new(s),
        })
    }

    /// The same run with another seed.
    pub fn with_seed(&self, seed: u64) -> Spec {
        Spec {
            seed,
            ..self.clone()
        }
    }

    /// The trace header of a run of this spec.
    pub fn header(&self) -> TraceHeader {
        TraceHeader {
            format: TRACE_FORMAT.to_string(),
            version: TRACE_VERSION,
            watchsim_version: crate::VERSION.to_string(),
            scenario: self.text.clone(),
            seed: self.seed,
            overrides: self.overrides.clone(),
        }
    }

    /// A fresh world.
    pub fn world(&self) -> World {
        World::new(Arc::clone(&self.scenario), self.seed)
    }
}

/// The exact bytes of a step line (as `TraceWriter` writes it, without the newline).
pub fn step_line(step: u64, t_ns: Nanos, key: EventKey, outcome: &Outcome) -> String {
    serde_json::to_string(&StepRecord {
        step,
        t_ns,
        fire: key,
        outcome,
    })
    .expect("a step record always serialises")
}

/// What the per-step callback of [`run_timed`] wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on.
    Continue,
    /// Stop after this step.
    Stop,
}

/// Runs the simulator's loop (the earliest pending event first) until `spec.end_ns` or until
/// `on_step` says stop; `on_step(step, key, outcome, world)` sees every applied step.
pub fn run_timed(
    spec: &Spec,
    mut on_step: impl FnMut(u64, EventKey, &Outcome, &World) -> Flow,
) -> World {
    let mut world = spec.world();
    let mut step = 0u64;
    let mut buffers = crate::world::StepBuffers::settling_each_step();
    while let Some(action) = world.next_timed_action() {
        let Action::Fire(key) = action;
        if key.due_ns > spec.end_ns {
            break;
        }
        let outcome = world
            .apply_reusing(action, &mut buffers)
            .expect("the earliest pending event is always pending");
        // The callback may read the clients: fold what their lanes took (the step's fan-out).
        world.settle_lanes();
        step += 1;
        if on_step(step, key, &outcome, &world) == Flow::Stop {
            break;
        }
    }
    world
}

/// The report of a world after `steps` steps; `complete` = it ran to its end (else end-of-run
/// invariants and bounds are not judged).
pub fn report_of(world: &World, spec: &Spec, steps: u64, complete: bool) -> Report {
    let mut r = crate::sim::build_report(world, spec.seed, spec.end_ns, steps, 0.0);
    if !complete {
        r.invariants = super::verdicts(world, spec.end_ns, false);
        r.bounds.clear();
    }
    r
}
