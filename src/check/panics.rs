//! Panics as findings (issue 17): a run whose model panics is caught
//! ([`std::panic::catch_unwind`]) and becomes a finding of its own kind, [`PANIC`], with the
//! panic's message and the step at which it happened, instead of ending a whole campaign, sweep
//! or search. [`capture_panic`] records the capsule of such a run: every step applied before the
//! panic, and the action whose application panicked in the footer (`panic_fire`), so that
//! `watchsim replay` applies the same actions and reproduces the panic.
//!
//! While a panic is being caught, the process's panic hook stays quiet (no "thread panicked"
//! lines between progress bars); the message and location are kept for the finding. Panics
//! outside [`catch`] still reach the previous hook.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use super::capsule::{CapsuleData, CapsuleFooter, CapsuleViolation, lines_hash};
use super::runner::{Spec, step_line};
use crate::kernel::EventKey;
use crate::world::Action;

/// The name of the finding a panicking run gives (beside the invariants of SPEC §6).
pub const PANIC: &str = "panic";

thread_local! {
    /// Inside [`catch`]: the hook stays quiet.
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    /// Where the last caught panic happened (`file:line`), set by the hook.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Installs (once per process) a panic hook that is quiet inside [`catch`] and otherwise calls
/// the hook that was installed before it.
fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()));
                LOCATION.with(|l| *l.borrow_mut() = at);
            } else {
                previous(info);
            }
        }));
    });
}

/// The text of a panic payload.
fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// Runs `f`; a panic inside it is returned as `Err(message)` ("MESSAGE (at FILE:LINE)") instead
/// of unwinding further.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    let outer = CATCHING.with(|c| c.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(outer));
    result.map_err(|payload| {
        let text = payload_text(payload.as_ref());
        match LOCATION.with(|l| l.borrow_mut().take()) {
            Some(at) => format!("{text} (at {at})"),
            None => text,
        }
    })
}

/// Runs `spec` with the simulator's loop and, if a step panics, returns the capsule of the run
/// up to that step (the panicking action in the footer); `None` if the run does not panic.
pub fn capture_panic(spec: &Spec) -> Option<CapsuleData> {
    let mut keys: Vec<EventKey> = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    let mut current: Option<EventKey> = None;
    let mut world = spec.world();
    let caught = catch(|| {
        while let Some(action) = world.next_timed_action() {
            let Action::Fire(key) = action;
            if key.due_ns > spec.end_ns {
                break;
            }
            current = Some(key);
            let Ok(outcome) = world.apply(action) else {
                break;
            };
            current = None;
            keys.push(key);
            lines.push(step_line(keys.len() as u64, world.now(), key, &outcome));
        }
    });
    let message = caught.err()?;
    let fire = current?;
    Some(panic_capsule(spec, keys, lines, fire, message))
}

/// Applies `keys` to a fresh world of `spec`, then `fire`; the capsule if applying `fire`
/// panics (the explorer's counterexample: `keys` is the path, `fire` the panicking action).
/// `None` if nothing panics or a key is not pending.
pub fn record_panic(spec: &Spec, keys: &[EventKey], fire: EventKey) -> Option<CapsuleData> {
    let mut world = spec.world();
    let mut lines = Vec::with_capacity(keys.len());
    let applied = catch(|| {
        for (i, &key) in keys.iter().enumerate() {
            let outcome = world.apply(Action::Fire(key)).ok()?;
            lines.push(step_line(i as u64 + 1, world.now(), key, &outcome));
        }
        Some(())
    });
    if !matches!(applied, Ok(Some(()))) {
        return None;
    }
    let message = catch(|| world.apply(Action::Fire(fire))).err()?;
    Some(panic_capsule(spec, keys.to_vec(), lines, fire, message))
}

fn panic_capsule(
    spec: &Spec,
    keys: Vec<EventKey>,
    lines: Vec<String>,
    fire: EventKey,
    message: String,
) -> CapsuleData {
    let step = keys.len() as u64 + 1;
    CapsuleData {
        spec: spec.clone(),
        footer: CapsuleFooter {
            trace_hash: lines_hash(&lines),
            violations: vec![PANIC.to_string()],
            end_ns: Some(spec.end_ns),
            complete: Some(false),
            violation: Some(CapsuleViolation {
                name: PANIC.to_string(),
                step,
                t_ns: fire.due_ns,
                message,
            }),
            shrunk_from: None,
            panic_fire: Some(fire),
        },
        keys,
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_returns_the_message_and_goes_on() {
        let r: Result<(), String> = catch(|| panic!("boom {}", 7));
        let msg = r.unwrap_err();
        assert!(msg.starts_with("boom 7 (at "), "{msg}");
        assert_eq!(catch(|| 3), Ok(3));
    }
}
