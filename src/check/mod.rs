//! Invariants, seed campaigns, failure capsules, replay and shrinking (SPEC §1 `check` and
//! `replay`, §5, §6).
//!
//! - [`Checker`] (`monitor.rs`) follows a run online: `World::apply` calls it before and after
//!   every step; the per-invariant logic is in [`invariants`]. [`verdicts`] turns it into the
//!   report's `invariants` array, judging the end-of-run invariants.
//! - `campaign.rs`: `watchsim check` (seeds in parallel, shards, swarm mode, summaries that merge).
//! - `capsule.rs`: capsule files (a trace ending in a violation); `replay.rs` re-executes one;
//!   `timeline.rs` prints it in fixed columns; `shrink.rs` minimises a failing run.

pub mod campaign;
pub mod capsule;
pub mod changelog;
pub mod explore;
pub mod explore_measure;
pub mod invariants;
pub mod monitor;
pub mod panics;
pub mod replay;
pub mod runner;
pub mod shrink;
pub mod soak;
pub mod timeline;

pub use crate::proto::Notice;
pub use invariants::Inv;
pub use monitor::Checker;

use crate::kernel::Nanos;
use crate::report::InvariantReport;
use crate::world::World;

/// The report's `invariants` array for a run that has applied its steps. `complete` is false for
/// a run cut short (a capsule that ends at an online violation): the end-of-run invariants are
/// then reported as not checked.
pub fn verdicts(world: &World, end_ns: Nanos, complete: bool) -> Vec<InvariantReport> {
    let ck = &world.observations().checker;
    Inv::ALL
        .into_iter()
        .map(|inv| {
            let t = ck.tally(inv);
            let mut r = InvariantReport {
                name: inv.name().to_string(),
                held: t.count == 0,
                violations: t.count,
                checked: true,
                message: t.first.as_ref().map(|v| v.message.clone()),
                first_step: t.first.as_ref().map(|v| v.step),
            };
            let end_judgement = match inv {
                Inv::Convergence => Some(invariants::convergence::judge(world, end_ns)),
                Inv::RelistBound => Some(invariants::relist::judge(world, end_ns)),
                _ => None,
            };
            if !complete && inv.end_of_run() {
                r.checked = false;
                r.message = Some("not checked: the run was cut short before its end".into());
                return r;
            }
            if let Some(j) = end_judgement {
                r.checked = j.checked;
                r.violations = j.violations;
                r.held = j.violations == 0;
                r.message = j.message;
                r.first_step = (j.violations > 0).then_some(ck.step());
            }
            if inv == Inv::WatchNoGap && complete {
                // Changes still missing on streams that are open at the end are gaps too.
                for s in ck.open_streams() {
                    for (rev, key) in s.missing() {
                        r.violations += 1;
                        r.held = false;
                        if r.message.is_none() {
                            r.message = Some(invariants::watch::gap_message(
                                &s.describe(),
                                *rev,
                                key,
                                s.last_rev(),
                            ));
                            r.first_step = Some(ck.step());
                        }
                    }
                }
            }
            r
        })
        .collect()
}
