//! `watchsim replay`: re-executes a capsule's actions one by one on a fresh world built from its
//! header (scenario text, seed, overrides), compares every step line byte for byte with the
//! recorded one, and judges the invariants as the original run did. A divergence names the first
//! differing step (exit 3); otherwise the capsule's violations are reproduced (exit 1, or 0 for
//! a trace without violations).

use std::io::Write;

use super::capsule::{Capsule, lines_hash};
use super::panics;
use super::runner::{Spec, report_of, step_line};
use super::timeline::TextTimeline;
use super::view::StepView;
use crate::report::Report;
use crate::scenario::ScenarioError;
use crate::scenario::budget::MemoryLimit;
use crate::world::Action;

/// What a replay reproduced.
#[derive(Debug, Clone)]
pub struct Replayed {
    /// Steps applied.
    pub steps: usize,
    /// The report of the replayed run (end-of-run checks only for complete capsules).
    pub report: Report,
    /// Violations, by name.
    pub violations: Vec<String>,
    /// Trace hash of the replayed steps.
    pub trace_hash: String,
    /// The step (from 1) whose application panicked and the panic's message: a `panic`
    /// capsule's last action (`panic_fire`), or a recorded step that panics now.
    pub panic: Option<(usize, String)>,
}

/// Why a replay could not reproduce its capsule.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The header's scenario does not load (exit 2).
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    /// A step came out differently (exit 3).
    #[error("{path}:{line}: replay diverged at step {step}: {message}")]
    Diverged {
        /// Capsule file.
        path: String,
        /// Line of the step in the file.
        line: usize,
        /// Step number.
        step: usize,
        /// What differed.
        message: String,
    },
    /// Writing the timeline failed.
    #[error("cannot write the timeline: {0}")]
    Io(#[from] std::io::Error),
}

/// Replays `capsule`, printing a fixed-column timeline to `timeline` if given; refuses a
/// capsule whose scenario is estimated to need more than three quarters of this machine's memory.
pub fn replay(
    capsule: &Capsule,
    timeline: Option<&mut dyn Write>,
) -> Result<Replayed, ReplayError> {
    replay_within(capsule, timeline, &MemoryLimit::default_for_machine())
}

/// [`replay`] with a memory limit for the capsule's scenario (exit 2 beyond it).
pub fn replay_within(
    capsule: &Capsule,
    timeline: Option<&mut dyn Write>,
    limit: &MemoryLimit,
) -> Result<Replayed, ReplayError> {
    match timeline {
        Some(out) => replay_viewed(capsule, &mut [&mut TextTimeline::new(out)], limit),
        None => replay_viewed(capsule, &mut [], limit),
    }
}

/// [`replay_within`], showing every step to each of `views` (the text timeline, the HTML page):
/// each sees the world before the first step, each pending event before it is applied and the
/// outcome after; a view that fails to write ends the replay with [`ReplayError::Io`].
pub fn replay_viewed(
    capsule: &Capsule,
    views: &mut [&mut dyn StepView],
    limit: &MemoryLimit,
) -> Result<Replayed, ReplayError> {
    let h = &capsule.header;
    let origin = format!("{} (scenario in the header)", capsule.path.display());
    let mut spec = Spec::load(&origin, &h.scenario, &h.overrides, Some(h.seed))?;
    crate::scenario::check_memory(&origin, &h.scenario, &h.overrides, &spec.scenario, 1, limit)?;
    if let Some(end) = capsule.footer.end_ns {
        spec.end_ns = end;
    }
    let complete = capsule.footer.complete.unwrap_or(true);
    let path = capsule.path.display().to_string();
    let mut world = spec.world();
    for v in views.iter_mut() {
        v.start(&world)?;
    }
    let mut lines = Vec::with_capacity(capsule.steps.len());
    for (i, s) in capsule.steps.iter().enumerate() {
        let n = i + 1;
        for v in views.iter_mut() {
            v.before(world.agenda().get(s.fire), &world);
        }
        let applied = match panics::catch(|| world.apply(Action::Fire(s.fire))) {
            Ok(applied) => applied,
            Err(message) => return Ok(panicked(&world, &spec, lines, n, message)),
        };
        let outcome = applied.map_err(|e| ReplayError::Diverged {
            path: path.clone(),
            line: s.line,
            step: n,
            message: format!("its action cannot be applied: {e}"),
        })?;
        let line = step_line(n as u64, world.now(), s.fire, &outcome);
        if line != s.text {
            return Err(ReplayError::Diverged {
                path,
                line: s.line,
                step: n,
                message: format!("recorded {}\n  replayed {}", s.text, line),
            });
        }
        for v in views.iter_mut() {
            v.after(n as u64, &world, &outcome)?;
        }
        lines.push(line);
    }
    finish(capsule, world, &spec, lines, complete)
}

/// After the last recorded step: the footer's hash, a `panic` capsule's last action, the report.
fn finish(
    capsule: &Capsule,
    mut world: crate::world::World,
    spec: &Spec,
    lines: Vec<String>,
    complete: bool,
) -> Result<Replayed, ReplayError> {
    let path = capsule.path.display().to_string();
    let trace_hash = lines_hash(&lines);
    if trace_hash != capsule.footer.trace_hash {
        return Err(ReplayError::Diverged {
            path,
            line: capsule.steps.last().map(|s| s.line + 1).unwrap_or(2),
            step: capsule.steps.len(),
            message: format!(
                "every step matched, but the footer's trace_hash {} differs from the steps' hash {trace_hash}",
                capsule.footer.trace_hash
            ),
        });
    }
    if let Some(fire) = capsule.footer.panic_fire {
        let n = lines.len() + 1;
        return match panics::catch(|| world.apply(Action::Fire(fire))) {
            Err(message) => Ok(panicked(&world, spec, lines, n, message)),
            Ok(_) => Err(ReplayError::Diverged {
                path,
                line: capsule.steps.last().map(|s| s.line + 1).unwrap_or(2),
                step: n,
                message: "the capsule ends in a panic at this step; the replay did not panic"
                    .into(),
            }),
        };
    }
    let report = report_of(&world, spec, lines.len() as u64, complete);
    let violations = report.violations();
    Ok(Replayed {
        steps: lines.len(),
        report,
        violations,
        trace_hash,
        panic: None,
    })
}

/// What a replay reproduced when step `step` panicked: the steps before it, and the panic.
fn panicked(
    world: &crate::world::World,
    spec: &Spec,
    lines: Vec<String>,
    step: usize,
    message: String,
) -> Replayed {
    // The world may be half-way through the panicking step; its report is only for the record.
    let report = panics::catch(|| report_of(world, spec, lines.len() as u64, false))
        .unwrap_or_else(|_| report_of(&spec.world(), spec, 0, false));
    Replayed {
        steps: lines.len(),
        report,
        violations: vec![panics::PANIC.to_string()],
        trace_hash: lines_hash(&lines),
        panic: Some((step, message)),
    }
}
