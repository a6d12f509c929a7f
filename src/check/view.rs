//! Watching a run step by step from outside the model: a [`StepView`] sees the world before the
//! first step, each pending event just before it is applied, and the world and the step's
//! outcome just after. The text timeline (`timeline.rs`) and the HTML page (`html/`) are views;
//! `replay.rs` and `html::record_run` drive them. A view only reads: the model never knows it is
//! watched, so a run with views is the run without them.

use std::io;

use crate::world::{Outcome, Pending, World};

/// Something that follows a run step by step (read-only).
pub trait StepView {
    /// The world before the first step.
    fn start(&mut self, world: &World) -> io::Result<()>;
    /// The event about to be applied (`None` when the agenda does not hold it: the step will
    /// fail), seen in the world before the step.
    fn before(&mut self, pending: Option<&Pending>, world: &World);
    /// Step `step` (from 1) has been applied with `outcome`; `world` is the state after it.
    fn after(&mut self, step: u64, world: &World, outcome: &Outcome) -> io::Result<()>;
}
