//! `watchsim replay`: re-executes a capsule step by step, optionally printing the timeline, and
//! exits 1 when its violations are reproduced, 2 for a bad capsule, 3 when it diverges. The work
//! is `check::replay`.

use std::path::Path;
use std::process::ExitCode;

use super::check::fail;
use crate::check::capsule::{Capsule, CapsuleError};
use crate::check::replay::{self, ReplayError};

/// `watchsim replay CAPSULE [--timeline]`.
pub(super) fn replay(path: &Path, timeline: bool) -> ExitCode {
    let capsule = match Capsule::read(path) {
        Ok(c) => c,
        Err(
            e @ (CapsuleError::Io { .. }
            | CapsuleError::Corrupt { .. }
            | CapsuleError::Version { .. }),
        ) => {
            return fail(&e.to_string(), 2);
        }
    };
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let result = if timeline {
        replay::replay(&capsule, Some(&mut lock))
    } else {
        replay::replay(&capsule, None)
    };
    let r = match result {
        Ok(r) => r,
        Err(e @ ReplayError::Scenario(_)) => return fail(&e.to_string(), 2),
        Err(e @ ReplayError::Diverged { .. }) => return fail(&e.to_string(), 3),
        Err(e @ ReplayError::Io(_)) => return fail(&e.to_string(), 70),
    };
    if let Some((step, message)) = &r.panic {
        println!(
            "replayed {} steps of {} (seed {}), then step {step} panicked: {message}",
            r.steps,
            path.display(),
            capsule.header.seed
        );
        if capsule.footer.panic_fire.is_none() {
            println!("note: the capsule recorded step {step} without a panic");
        }
        eprintln!("watchsim: violated: panic at step {step}: {message}");
        return ExitCode::from(1);
    }
    println!(
        "replayed {} steps of {} (seed {}): every step matches the capsule (trace_hash {})",
        r.steps,
        path.display(),
        capsule.header.seed,
        r.trace_hash
    );
    if let Some(v) = &capsule.footer.violation {
        println!(
            "capsule violation: {} at step {} (t={}): {}",
            v.name,
            v.step,
            crate::scenario::format_ns(v.t_ns),
            v.message
        );
    }
    if r.violations.is_empty() {
        println!("no violation");
        return ExitCode::SUCCESS;
    }
    for i in r.report.invariants.iter().filter(|i| !i.held) {
        println!(
            "violated: {} ({} violation(s), first at step {}): {}",
            i.name,
            i.violations,
            i.first_step.unwrap_or(0),
            i.message.as_deref().unwrap_or("")
        );
    }
    for b in r.report.bounds.iter().filter(|b| !b.held) {
        println!(
            "violated: bound {}: value {} exceeds the limit {}",
            b.name, b.value, b.limit
        );
    }
    if r.violations != capsule.footer.violations {
        println!(
            "note: the capsule recorded {:?}; this replay finds {:?}",
            capsule.footer.violations, r.violations
        );
    }
    ExitCode::from(1)
}
