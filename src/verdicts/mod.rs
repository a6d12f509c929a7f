//! The report's `invariants` array (SPEC §6): the online checker's tallies
//! (`crate::monitor`) and the end-of-run invariants judged on the final world ([`convergence`],
//! [`relist`]). Above the world (they read it), below the drivers (`sim` builds the report with
//! them; `check` replays and shrinks with them).

pub mod convergence;
pub mod relist;

use crate::kernel::Nanos;
use crate::monitor::invariants::{self, Inv};
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
                Inv::Convergence => Some(convergence::judge(world, end_ns)),
                Inv::RelistBound => Some(relist::judge(world, end_ns)),
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
