//! `watchsim replay`: re-executes a capsule step by step, optionally printing the timeline, and
//! exits 1 when its violations are reproduced, 2 for a bad capsule, 3 when it diverges. The work
//! is `check::replay`.

use std::path::Path;
use std::process::ExitCode;

use super::check::fail;
use crate::check::capsule::{Capsule, CapsuleError};
use crate::check::html::{self, MAX_PAGE_STEPS, Marked, PageMeta, PageRecorder};
use crate::check::replay::{self, ReplayError, Replayed};
use crate::check::timeline::TextTimeline;
use crate::check::view::StepView;
use crate::scenario::budget::MemoryLimit;

/// `watchsim replay CAPSULE [--timeline] [--html FILE]`.
pub(super) fn replay(path: &Path, timeline: bool, html: Option<&Path>) -> ExitCode {
    let capsule = match read(path, html.is_some()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut page = html.map(|_| PageRecorder::new());
    let r = match replay_shown(&capsule, timeline, page.as_mut()) {
        Ok(r) => r,
        Err(code) => return code,
    };
    if let (Some(file), Some(page)) = (html, &page)
        && let Err(code) = write_page(file, page, &capsule, &r)
    {
        return code;
    }
    print_outcome(path, &capsule, &r)
}

/// The capsule at `path` (exit 2 when it cannot be read, or is too long for a page).
fn read(path: &Path, html: bool) -> Result<Capsule, ExitCode> {
    let capsule = match Capsule::read(path) {
        Ok(c) => c,
        Err(
            e @ (CapsuleError::Io { .. }
            | CapsuleError::Corrupt { .. }
            | CapsuleError::Version { .. }),
        ) => {
            return Err(fail(&e.to_string(), 2));
        }
    };
    if html && capsule.steps.len() > MAX_PAGE_STEPS {
        return Err(fail(
            &format!(
                "{}: --html draws at most {MAX_PAGE_STEPS} steps and this capsule has {}; \
                 shrink it (watchsim check shrinks the capsules it writes) or use --timeline",
                path.display(),
                capsule.steps.len()
            ),
            2,
        ));
    }
    Ok(capsule)
}

/// Replays `capsule`, printing the text timeline if asked and recording into `page` if given;
/// a replay error is its exit code (2 bad scenario, 3 diverged, 70 stdout failed).
fn replay_shown(
    capsule: &Capsule,
    timeline: bool,
    page: Option<&mut PageRecorder>,
) -> Result<Replayed, ExitCode> {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let mut text = timeline.then(|| TextTimeline::new(&mut lock));
    let mut views: Vec<&mut dyn StepView> = Vec::new();
    if let Some(t) = text.as_mut() {
        views.push(t);
    }
    if let Some(p) = page {
        views.push(p);
    }
    replay::replay_viewed(capsule, &mut views, &MemoryLimit::default_for_machine()).map_err(|e| {
        match e {
            ReplayError::Scenario(_) => fail(&e.to_string(), 2),
            ReplayError::Diverged { .. } => fail(&e.to_string(), 3),
            ReplayError::Io(_) => fail(&e.to_string(), 70),
        }
    })
}

/// Prints what the replay reproduced; exit 1 for a violation (or panic), 0 for none.
fn print_outcome(path: &Path, capsule: &Capsule, r: &Replayed) -> ExitCode {
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

/// `--html FILE`: the replayed steps drawn as a page, with the replay's violations (and its
/// panic) marked at their steps.
fn write_page(
    file: &Path,
    page: &PageRecorder,
    capsule: &Capsule,
    r: &Replayed,
) -> Result<(), ExitCode> {
    let last = page.steps.len() as u64;
    let mut violations = html::violations_of(&r.report, last);
    if let Some((step, message)) = &r.panic {
        violations.retain(|v| v.name != crate::check::panics::PANIC);
        violations.push(Marked {
            step: (*step as u64).min(last),
            name: crate::check::panics::PANIC.to_string(),
            message: format!("step {step} panicked: {message}"),
        });
    }
    let name = capsule.path.file_name().map_or_else(
        || capsule.path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let meta = PageMeta {
        title: name.clone(),
        source: format!("replay of capsule {name}"),
        scenario: page.scenario.clone(),
        seed: capsule.header.seed,
    };
    std::fs::write(file, html::render(page, &meta, &violations)).map_err(|e| {
        fail(
            &format!("{}: cannot write the HTML timeline: {e}", file.display()),
            2,
        )
    })?;
    eprintln!(
        "watchsim: wrote the HTML timeline {} ({} steps, {} lanes)",
        file.display(),
        page.steps.len(),
        page.lanes().len()
    );
    Ok(())
}
