//! `watchsim replay CAPSULE --html FILE` and `watchsim run SCENARIO --html FILE`: a run drawn as
//! one self-contained HTML page (inline CSS, inline JavaScript, the steps as an inline JSON blob;
//! nothing fetched from the network). A lane per actor (etcd with its revisions, each apiserver
//! with its cache window, each client with its RV), each step a row: a message is an arrow from
//! the sender's lane to the receiver's, a fault a red row with a diamond, the violation a marked
//! row and a marker on the overview strip; zoom and step-by-step navigation in the page.
//!
//! [`PageRecorder`] records the steps (a [`StepView`](super::view::StepView), so it sees exactly
//! the steps `replay` and `run` apply); `page.rs` renders them. The same steps give the same
//! bytes: no clock, no random ids, ordered maps only.

mod page;
mod record;

use serde::Serialize;

use super::runner::{Spec, report_of};
use super::view::StepView;
use crate::report::Report;
use crate::world::Action;

pub use page::render;
pub use record::{ALL_CLIENT_LANES_UP_TO, Kind, PageRecorder, StepRecord, state_of};

/// The most steps a page draws (`replay --html` and `run --html` refuse longer runs, exit 2):
/// twenty thousand rows are about 5 MB of page and already more than anyone reads.
pub const MAX_PAGE_STEPS: usize = 20_000;

/// Where the page's run came from, for its title and heading.
#[derive(Debug, Clone, Default)]
pub struct PageMeta {
    /// The page title, e.g. the capsule's file name.
    pub title: String,
    /// What was drawn, e.g. `capsule tt.capsule.jsonl` or `run of steady-small.toml`.
    pub source: String,
    /// The scenario's `name`.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
}

/// A violation as the page marks it: at the step its first violation was detected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Marked {
    /// The step (from 1).
    pub step: u64,
    /// The invariant (or `bound <name>`, or `panic`).
    pub name: String,
    /// The first violation, in words.
    pub message: String,
}

/// The violations of `report`, each at the step of its first violation; an end-of-run
/// invariant without a step, and a bound, at `last_step`.
pub fn violations_of(report: &Report, last_step: u64) -> Vec<Marked> {
    let mut out: Vec<Marked> = report
        .invariants
        .iter()
        .filter(|i| !i.held)
        .map(|i| Marked {
            step: i.first_step.unwrap_or(last_step).min(last_step),
            name: i.name.clone(),
            message: i.message.clone().unwrap_or_default(),
        })
        .collect();
    out.extend(report.bounds.iter().filter(|b| !b.held).map(|b| Marked {
        step: last_step,
        name: format!("bound {}", b.name),
        message: format!("value {} exceeds the limit {}", b.value, b.limit),
    }));
    out
}

/// Why `run --html` draws no page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The run is longer than a page may be (exit 2).
    #[error(
        "--html draws at most {limit} steps, and this run reaches step {} at t={at_seconds:.6}s; \
         shorten it (--duration {duration} or less) or use --trace",
        limit + 1
    )]
    TooLong {
        /// The limit, [`MAX_PAGE_STEPS`].
        limit: usize,
        /// Virtual time of the first step past the limit, in seconds.
        at_seconds: f64,
        /// The longest `--duration` (whole milliseconds) that stays within the limit.
        duration: String,
    },
}

/// Runs `spec` with the simulator's loop (the earliest pending event first, until its end) and
/// records it for a page, refusing once it passes `max_steps` steps (never a silent
/// truncation). Returns the recorder and the run's report (for its violations).
pub fn record_run(spec: &Spec, max_steps: usize) -> Result<(PageRecorder, Report), PageError> {
    let mut rec = PageRecorder::new();
    let mut world = spec.world();
    rec.start(&world).expect("the recorder writes nothing");
    let mut step = 0u64;
    while let Some(action) = world.next_timed_action() {
        let Action::Fire(key) = action;
        if key.due_ns > spec.end_ns {
            break;
        }
        if step as usize >= max_steps {
            // Whole milliseconds strictly before the step: a `--duration` that leaves it out.
            let under_ms = key.due_ns.saturating_sub(1) / 1_000_000;
            return Err(PageError::TooLong {
                limit: max_steps,
                at_seconds: key.due_ns as f64 / 1e9,
                duration: crate::scenario::format_ns(under_ms * 1_000_000),
            });
        }
        rec.before(world.agenda().get(key), &world);
        let outcome = world
            .apply(action)
            .expect("the earliest pending event is always pending");
        step += 1;
        rec.after(step, &world, &outcome)
            .expect("the recorder writes nothing");
    }
    let report = report_of(&world, spec, step, true);
    Ok((rec, report))
}
