//! Capsules (SPEC §5): a trace that ends in a violation. Line 1 is the trace header (scenario
//! text, seed, overrides), then one step line per applied action (each carries `fire`, the
//! agenda entry applied: the action list `replay` applies), then a footer with `trace_hash`,
//! `violations` and watchsim's own fields: the `violation` the capsule demonstrates (invariant,
//! step, time, message), `complete` (false when the capsule stops at an online violation, so
//! end-of-run checks are not judged on replay), `end_ns` and, for shrunk capsules, `shrunk_from`.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::runner::{Flow, Spec, report_of, run_timed, step_line};
use crate::kernel::{EventKey, Fnv64, Nanos};
use crate::report::Report;
use crate::trace::{TRACE_FORMAT, TRACE_VERSION, TraceHeader};
use crate::world::{Action, ApplyError, World};

use super::Inv;

/// The violation a capsule demonstrates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapsuleViolation {
    /// Invariant name, or `bound:<name>`.
    pub name: String,
    /// Step (from 1) at which it was detected (the last step for end-of-run checks).
    pub step: u64,
    /// Virtual time of that step.
    pub t_ns: Nanos,
    /// What happened.
    pub message: String,
}

/// The last line of a capsule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapsuleFooter {
    /// FNV-1a 64 over the step lines.
    pub trace_hash: String,
    /// Every violation (invariants and bounds) the capsule's run shows.
    pub violations: Vec<String>,
    /// End of the run (end-of-run checks are judged at this time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_ns: Option<Nanos>,
    /// False when the capsule stops at an online violation (absent: a complete trace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete: Option<bool>,
    /// The violation this capsule demonstrates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub violation: Option<CapsuleViolation>,
    /// Steps of the capsule this one was shrunk from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shrunk_from: Option<u64>,
    /// For a `panic` capsule: the action whose application panicked (after the step lines;
    /// `replay` applies it last and expects the panic, `check::panics`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panic_fire: Option<EventKey>,
}

/// One step line of a capsule file.
#[derive(Debug, Clone)]
pub struct CapsuleStep {
    /// Line number in the file (from 1).
    pub line: usize,
    /// The line's exact text.
    pub text: String,
    /// The action applied.
    pub fire: EventKey,
}

/// A capsule read from a file.
#[derive(Debug, Clone)]
pub struct Capsule {
    /// The file.
    pub path: PathBuf,
    /// Header.
    pub header: TraceHeader,
    /// Step lines.
    pub steps: Vec<CapsuleStep>,
    /// Footer.
    pub footer: CapsuleFooter,
}

/// Why a capsule could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CapsuleError {
    /// The file could not be read.
    #[error("{path}: cannot read the capsule: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not a capsule.
    #[error("{path}:{line}: corrupt capsule: {message}")]
    Corrupt {
        /// File.
        path: String,
        /// Line (from 1).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A capsule of another format version.
    #[error(
        "{path}: capsule format version {found} is not supported by watchsim {} (it reads version {supported})",
        crate::VERSION
    )]
    Version {
        /// File.
        path: String,
        /// Version in the file.
        found: u64,
        /// Version this watchsim reads.
        supported: u32,
    },
}

impl Capsule {
    /// Reads and checks the structure of a capsule (or any trace) file.
    pub fn read(path: &Path) -> Result<Capsule, CapsuleError> {
        let p = path.display().to_string();
        let file = File::open(path).map_err(|source| CapsuleError::Io {
            path: p.clone(),
            source,
        })?;
        let mut lines = Vec::new();
        for (i, l) in BufReader::new(file).lines().enumerate() {
            let l = l.map_err(|source| CapsuleError::Io {
                path: p.clone(),
                source,
            })?;
            if !l.trim().is_empty() {
                lines.push((i + 1, l));
            }
        }
        Self::from_lines(path, lines)
    }

    /// Checks the structure of capsule text (`path` names it in errors), as [`Capsule::read`].
    pub fn parse(path: &Path, text: &str) -> Result<Capsule, CapsuleError> {
        let lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| (i + 1, l.to_string()))
            .collect();
        Self::from_lines(path, lines)
    }

    /// The capsule of its non-blank lines `(line number, text)`.
    fn from_lines(path: &Path, lines: Vec<(usize, String)>) -> Result<Capsule, CapsuleError> {
        let p = path.display().to_string();
        let corrupt = |line: usize, message: String| CapsuleError::Corrupt {
            path: p.clone(),
            line,
            message,
        };
        let Some((hline, htext)) = lines.first().cloned() else {
            return Err(corrupt(1, "the file is empty (no header line)".into()));
        };
        let hv: Value = serde_json::from_str(&htext)
            .map_err(|e| corrupt(hline, format!("the header is not JSON: {e}")))?;
        if hv.get("format").and_then(Value::as_str) != Some(TRACE_FORMAT) {
            return Err(corrupt(
                hline,
                format!(
                    "missing header: the first line must be {{\"format\": \"{TRACE_FORMAT}\", ...}}"
                ),
            ));
        }
        let version = hv.get("version").and_then(Value::as_u64).unwrap_or(0);
        if version != TRACE_VERSION as u64 {
            return Err(CapsuleError::Version {
                path: p,
                found: version,
                supported: TRACE_VERSION,
            });
        }
        let header: TraceHeader =
            serde_json::from_value(hv).map_err(|e| corrupt(hline, format!("bad header: {e}")))?;
        let Some((fline, ftext)) = lines.last().cloned().filter(|_| lines.len() >= 2) else {
            return Err(corrupt(hline + 1, "missing footer line".into()));
        };
        let footer: CapsuleFooter =
            serde_json::from_str(&ftext).map_err(|e| corrupt(fline, format!("bad footer: {e}")))?;
        let mut steps = Vec::new();
        for (n, text) in &lines[1..lines.len() - 1] {
            let v: Value = serde_json::from_str(text)
                .map_err(|e| corrupt(*n, format!("a step line is not JSON: {e}")))?;
            let fire: EventKey = v
                .get("fire")
                .cloned()
                .ok_or_else(|| corrupt(*n, "a step line has no \"fire\" action".into()))
                .and_then(|f| {
                    serde_json::from_value(f)
                        .map_err(|e| corrupt(*n, format!("bad \"fire\" action: {e}")))
                })?;
            steps.push(CapsuleStep {
                line: *n,
                text: text.clone(),
                fire,
            });
        }
        Ok(Capsule {
            path: path.to_path_buf(),
            header,
            steps,
            footer,
        })
    }
}

/// A capsule in memory, ready to write.
#[derive(Debug, Clone)]
pub struct CapsuleData {
    /// The run it comes from.
    pub spec: Spec,
    /// Actions applied, in order.
    pub keys: Vec<EventKey>,
    /// Step lines.
    pub lines: Vec<String>,
    /// Footer.
    pub footer: CapsuleFooter,
}

impl CapsuleData {
    /// Steps in the capsule.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// True for a capsule without steps.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Writes the capsule file.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let mut w = BufWriter::new(File::create(path)?);
        serde_json::to_writer(&mut w, &self.spec.header())?;
        w.write_all(b"\n")?;
        for l in &self.lines {
            w.write_all(l.as_bytes())?;
            w.write_all(b"\n")?;
        }
        serde_json::to_writer(&mut w, &self.footer)?;
        w.write_all(b"\n")?;
        w.flush()
    }
}

/// FNV-1a 64 over step lines, as 16 hex digits (the trace hash).
pub fn lines_hash(lines: &[String]) -> String {
    let mut h = Fnv64::new();
    for l in lines {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    format!("{:016x}", h.finish())
}

/// The violation of `report` named `target`, or the first one: the earliest online invariant
/// violation, else the first end-of-run one, else the first bound.
pub fn pick_violation(
    report: &Report,
    target: Option<&str>,
    steps: u64,
    t_ns: Nanos,
) -> Option<CapsuleViolation> {
    let mut cands: Vec<(u64, usize, CapsuleViolation)> = Vec::new();
    for (i, inv) in report.invariants.iter().enumerate() {
        if inv.held {
            continue;
        }
        let online = Inv::from_name(&inv.name).is_some_and(|x| !x.end_of_run());
        let step = inv.first_step.unwrap_or(steps);
        cands.push((
            if online { step } else { u64::MAX - 1 },
            i,
            CapsuleViolation {
                name: inv.name.clone(),
                step,
                t_ns,
                message: inv.message.clone().unwrap_or_default(),
            },
        ));
    }
    for (i, b) in report.bounds.iter().enumerate() {
        if !b.held {
            cands.push((
                u64::MAX,
                100 + i,
                CapsuleViolation {
                    name: format!("bound:{}", b.name),
                    step: steps,
                    t_ns,
                    message: format!("{} = {} exceeds the limit {}", b.name, b.value, b.limit),
                },
            ));
        }
    }
    cands.sort_by_key(|(k, i, _)| (*k, *i));
    cands
        .into_iter()
        .map(|(_, _, v)| v)
        .find(|v| target.is_none_or(|t| t == v.name))
}

fn online_fired(world: &World, target: Option<&str>) -> Option<u64> {
    let ck = &world.observations().checker;
    match target.and_then(Inv::from_name) {
        Some(inv) if !inv.end_of_run() => ck.tally(inv).first.as_ref().map(|v| v.step),
        Some(_) => None,
        None if target.is_some() => None,
        None => ck.first_online().map(|(_, s)| s),
    }
}

/// Runs `spec` with the simulator's loop, recording every step, until the violation `target`
/// (or the first violation) is detected; None if the run shows no such violation.
pub fn capture(spec: &Spec, target: Option<&str>) -> Option<CapsuleData> {
    let mut keys = Vec::new();
    let mut lines = Vec::new();
    let mut stopped_at = None;
    let mut last_t = 0;
    let world = run_timed(spec, |step, key, outcome, world| {
        keys.push(key);
        lines.push(step_line(step, world.now(), key, outcome));
        last_t = world.now();
        if let Some(s) = online_fired(world, target) {
            stopped_at = Some(s);
            return Flow::Stop;
        }
        Flow::Continue
    });
    let complete = stopped_at.is_none();
    finish(spec.clone(), keys, lines, &world, complete, target, last_t)
}

/// Applies `keys` in order to a fresh world of `spec` and records the capsule; fails if an
/// action is not pending. `complete`: judge end-of-run checks after the last action.
pub fn record(
    spec: &Spec,
    keys: &[EventKey],
    complete: bool,
    target: Option<&str>,
) -> Result<Option<CapsuleData>, ApplyError> {
    let mut world = spec.world();
    let mut lines = Vec::with_capacity(keys.len());
    for (i, &key) in keys.iter().enumerate() {
        let outcome = world.apply(Action::Fire(key))?;
        lines.push(step_line(i as u64 + 1, world.now(), key, &outcome));
    }
    let t = world.now();
    Ok(finish(
        spec.clone(),
        keys.to_vec(),
        lines,
        &world,
        complete,
        target,
        t,
    ))
}

fn finish(
    spec: Spec,
    keys: Vec<EventKey>,
    lines: Vec<String>,
    world: &World,
    complete: bool,
    target: Option<&str>,
    t_ns: Nanos,
) -> Option<CapsuleData> {
    let report = report_of(world, &spec, lines.len() as u64, complete);
    let violation = pick_violation(&report, target, lines.len() as u64, t_ns)?;
    // The step's own time for online violations.
    let violation = match world
        .observations()
        .checker
        .tally(Inv::from_name(&violation.name).unwrap_or(Inv::RelistBound))
        .first
        .as_ref()
    {
        Some(v) if Inv::from_name(&violation.name).is_some_and(|i| !i.end_of_run()) => {
            CapsuleViolation {
                t_ns: v.t_ns,
                ..violation
            }
        }
        _ => violation,
    };
    let footer = CapsuleFooter {
        trace_hash: lines_hash(&lines),
        violations: report.violations(),
        end_ns: Some(spec.end_ns),
        complete: Some(complete),
        violation: Some(violation),
        shrunk_from: None,
        panic_fire: None,
    };
    Some(CapsuleData {
        spec,
        keys,
        lines,
        footer,
    })
}
