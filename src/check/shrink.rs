//! Shrinking a failing capsule while it still violates the same invariant (or bound).
//!
//! 1. **Scenario** (any violation): the scenario table (overrides applied) is edited and the
//!    simulator re-run with the same seed: the duration is cut to just after the violation, and
//!    scheduled faults, disconnect faults, workloads, client populations (or instances), scripted
//!    steps, preloaded objects and apiservers are dropped or reduced, one at a time, greedily.
//! 2. **Actions** (online invariants only): delta debugging over the action list up to the
//!    violation. Only timer firings are dropped (a process that never got to do something: a
//!    workload write, a scripted step, a bookmark tick, a fault); messages are never lost, they
//!    vanish only when the step that would have sent them is gone, so the shrunk run is the
//!    original minus whole causal cones and never shows a message loss the model cannot
//!    produce. Actions are agenda keys, and dropping shifts the sequence numbers of everything
//!    scheduled later, so later actions are mapped to the shrunk run by their cause (the step
//!    that scheduled them and their index among its emissions: [`Agenda::next_seq`]) and
//!    skipped when their cause is gone. End-of-run invariants (convergence, relist-bound) and
//!    bounds are only shrunk at the scenario level: dropping actions would starve the run by
//!    construction.
//!
//! Everything is deterministic: the same capsule always shrinks to the same capsule. The work is
//! bounded by a number of candidate runs, not by wall time.
//!
//! [`Agenda::next_seq`]: crate::kernel::Agenda::next_seq

use std::collections::BTreeMap;

use toml::Value;

use super::Inv;
use super::capsule::{CapsuleData, capture, record};
use super::panics;
use super::runner::Spec;
use crate::kernel::{EventKey, Nanos};
use crate::scenario::{effective_table, format_ns};
use crate::world::{Action, Pending};

/// Candidate runs allowed to one shrink (scenario edits and action subsets together).
pub const DEFAULT_BUDGET: usize = 3000;

/// Shrinks `capsule` (which must demonstrate `target`) within `budget` candidate runs.
pub fn shrink(capsule: &CapsuleData, target: &str, budget: usize) -> CapsuleData {
    let mut left = budget;
    let mut best = shrink_scenario(capsule.clone(), target, &mut left);
    let online = Inv::from_name(target).is_some_and(|i| !i.end_of_run());
    if online && let Ok(Some(smaller)) = panics::catch(|| shrink_actions(&best, target, &mut left))
    {
        best = smaller;
    }
    best.footer.shrunk_from = Some(capsule.len() as u64);
    best
}

fn demonstrates(d: &CapsuleData, target: &str) -> bool {
    d.footer
        .violation
        .as_ref()
        .is_some_and(|v| v.name == target)
}

// ------------------------------------------------------------------ scenario level

fn try_spec(base: &Spec, table: &toml::Table, target: &str) -> Option<CapsuleData> {
    let text = toml::to_string(table).ok()?;
    let spec = Spec::load(&base.origin, &text, &[], Some(base.seed)).ok()?;
    if target == panics::PANIC {
        return panics::capture_panic(&spec);
    }
    // A candidate that panics does not demonstrate another violation.
    panics::catch(|| capture(&spec, Some(target)))
        .ok()
        .flatten()
        .filter(|d| demonstrates(d, target))
}

fn array_len(t: &toml::Table, key: &str) -> usize {
    t.get(key)
        .and_then(Value::as_array)
        .map(|a| a.len())
        .unwrap_or(0)
}

fn remove_at(t: &toml::Table, key: &str, i: usize) -> toml::Table {
    let mut t = t.clone();
    if let Some(Value::Array(a)) = t.get_mut(key) {
        a.remove(i);
        if a.is_empty() {
            t.remove(key);
        }
    }
    t
}

fn set_in(t: &toml::Table, path: &[&str], key: &str, v: Value) -> toml::Table {
    let mut t = t.clone();
    let mut cur: &mut toml::Table = &mut t;
    for p in path {
        let next = cur
            .entry(p.to_string())
            .or_insert_with(|| Value::Table(toml::Table::new()));
        let Some(next) = next.as_table_mut() else {
            return t;
        };
        cur = next;
    }
    cur.insert(key.to_string(), v);
    t
}

fn set_entry(t: &toml::Table, array: &str, i: usize, key: &str, v: Value) -> toml::Table {
    let mut t = t.clone();
    if let Some(Value::Array(a)) = t.get_mut(array)
        && let Some(Value::Table(e)) = a.get_mut(i)
    {
        e.insert(key.to_string(), v);
    }
    t
}

fn entry_int(t: &toml::Table, array: &str, i: usize, key: &str) -> Option<i64> {
    t.get(array)?.as_array()?.get(i)?.get(key)?.as_integer()
}

fn entry_float(t: &toml::Table, array: &str, i: usize, key: &str) -> Option<f64> {
    let v = t.get(array)?.as_array()?.get(i)?.get(key)?;
    v.as_float().or_else(|| v.as_integer().map(|n| n as f64))
}

/// Candidate edits of `t`, simplest-first.
fn candidates(t: &toml::Table, violation_t: Option<Nanos>, duration: Nanos) -> Vec<toml::Table> {
    let mut out = Vec::new();
    if let Some(v) = violation_t {
        let cut = v.div_ceil(1_000_000) * 1_000_000;
        if cut < duration && cut > 0 {
            out.push(set_in(t, &[], "duration", Value::String(format_ns(cut))));
        }
    } else if duration > 2_000_000_000 {
        out.push(set_in(
            t,
            &[],
            "duration",
            Value::String(format_ns(duration / 2 / 1_000_000 * 1_000_000)),
        ));
    }
    if let Some(f) = t.get("faults").and_then(Value::as_table) {
        let n = f.get("at").and_then(Value::as_array).map_or(0, |a| a.len());
        for i in (0..n).rev() {
            let mut t2 = t.clone();
            if let Some(Value::Table(f2)) = t2.get_mut("faults")
                && let Some(Value::Array(a)) = f2.get_mut("at")
            {
                a.remove(i);
            }
            out.push(t2);
        }
        if f.get("watch_disconnect_rate")
            .and_then(|v| v.as_float().or_else(|| v.as_integer().map(|n| n as f64)))
            .is_some_and(|r| r > 0.0)
        {
            out.push(set_in(
                t,
                &["faults"],
                "watch_disconnect_rate",
                Value::Float(0.0),
            ));
        }
    }
    for i in (0..array_len(t, "workload")).rev() {
        out.push(remove_at(t, "workload", i));
        if let Some(r) = entry_float(t, "workload", i, "rate")
            && r > 0.2
        {
            out.push(set_entry(t, "workload", i, "rate", Value::Float(r / 2.0)));
        }
    }
    for i in (0..array_len(t, "clients")).rev() {
        out.push(remove_at(t, "clients", i));
        let n = entry_int(t, "clients", i, "count").unwrap_or(1);
        if n > 1 {
            out.push(set_entry(t, "clients", i, "count", Value::Integer(n / 2)));
        }
    }
    for i in (0..array_len(t, "steps")).rev() {
        out.push(remove_at(t, "steps", i));
    }
    for i in (0..array_len(t, "resources")).rev() {
        let n = entry_int(t, "resources", i, "count").unwrap_or(0);
        if n > 0 {
            out.push(set_entry(t, "resources", i, "count", Value::Integer(0)));
        }
        if n > 1 {
            out.push(set_entry(t, "resources", i, "count", Value::Integer(n / 2)));
        }
    }
    let servers = t
        .get("apiserver")
        .and_then(|a| a.get("count"))
        .and_then(Value::as_integer)
        .unwrap_or(1);
    if servers > 1 {
        out.push(set_in(
            t,
            &["apiserver"],
            "count",
            Value::Integer(servers - 1),
        ));
    }
    out
}

fn shrink_scenario(start: CapsuleData, target: &str, left: &mut usize) -> CapsuleData {
    let Ok(mut table) =
        effective_table(&start.spec.origin, &start.spec.text, &start.spec.overrides)
    else {
        return start;
    };
    let mut best = start;
    loop {
        let online =
            target == panics::PANIC || Inv::from_name(target).is_some_and(|i| !i.end_of_run());
        let vt = best
            .footer
            .violation
            .as_ref()
            .filter(|_| online)
            .map(|v| v.t_ns);
        let mut improved = false;
        for cand in candidates(&table, vt, best.spec.end_ns) {
            if *left == 0 {
                return best;
            }
            *left -= 1;
            if let Some(d) = try_spec(&best.spec, &cand, target)
                && d.len() <= best.len()
            {
                best = d;
                table = cand;
                improved = true;
                break;
            }
        }
        if !improved {
            return best;
        }
    }
}

// ------------------------------------------------------------------ action level

struct Recorded {
    keys: Vec<EventKey>,
    seq_before: Vec<u64>,
    emitted: Vec<u32>,
    timer: Vec<bool>,
    initial_seq: u64,
}

fn record_causes(d: &CapsuleData) -> Option<Recorded> {
    let mut world = d.spec.world();
    let initial_seq = world.agenda().next_seq();
    let mut r = Recorded {
        keys: d.keys.clone(),
        seq_before: Vec::with_capacity(d.keys.len()),
        emitted: Vec::with_capacity(d.keys.len()),
        timer: Vec::with_capacity(d.keys.len()),
        initial_seq,
    };
    for &k in &d.keys {
        r.seq_before.push(world.agenda().next_seq());
        r.timer
            .push(matches!(world.agenda().get(k), Some(Pending::Timer(_))));
        let o = world.apply(Action::Fire(k)).ok()?;
        r.emitted.push(o.emitted);
    }
    Some(r)
}

/// Replays the kept actions (mapped by cause); returns the keys applied up to the step at which
/// `target` fired, and the position in `rec` of that step.
fn replay_subset(
    spec: &Spec,
    rec: &Recorded,
    keep: &[bool],
    inv: Inv,
) -> Option<(Vec<EventKey>, usize)> {
    let mut world = spec.world();
    let mut map: BTreeMap<u64, EventKey> = BTreeMap::new();
    let mut applied = Vec::new();
    for (j, &orig) in rec.keys.iter().enumerate() {
        let key = if orig.seq < rec.initial_seq {
            Some(orig)
        } else {
            map.get(&orig.seq).copied()
        };
        let Some(key) = key else { continue };
        if !keep[j] || world.agenda().get(key).is_none() {
            continue;
        }
        let before = world.agenda().next_seq();
        world.apply(Action::Fire(key)).ok()?;
        let after = world.agenda().next_seq();
        if after > before {
            let mut fresh: Vec<EventKey> = world
                .agenda()
                .iter()
                .map(|(k, _)| k)
                .filter(|k| k.seq >= before)
                .collect();
            fresh.sort_by_key(|k| k.seq);
            for (i, k) in fresh.into_iter().enumerate() {
                if (i as u32) < rec.emitted[j] {
                    map.insert(rec.seq_before[j] + i as u64, k);
                }
            }
        }
        applied.push(key);
        if world.observations().checker.tally(inv).first.is_some() {
            return Some((applied, j));
        }
    }
    None
}

fn shrink_actions(best: &CapsuleData, target: &str, left: &mut usize) -> Option<CapsuleData> {
    let inv = Inv::from_name(target)?;
    let rec = record_causes(best)?;
    let n = rec.keys.len();
    let mut keep = vec![true; n];
    let (mut applied, last) = replay_subset(&best.spec, &rec, &keep, inv)?;
    for k in keep.iter_mut().skip(last + 1) {
        *k = false;
    }
    let mut chunk = (n / 2).max(1);
    loop {
        let mut progress = false;
        let mut start = n.div_ceil(chunk) * chunk;
        while start > 0 {
            start = start.saturating_sub(chunk);
            let end = (start + chunk).min(n);
            if *left == 0 {
                break;
            }
            *left -= 1;
            let mut trial = keep.clone();
            for (k, &timer) in trial[start..end].iter_mut().zip(&rec.timer[start..end]) {
                *k = *k && !timer;
            }
            if trial == keep {
                continue;
            }
            if let Some((keys, last)) = replay_subset(&best.spec, &rec, &trial, inv) {
                for k in trial.iter_mut().skip(last + 1) {
                    *k = false;
                }
                keep = trial;
                applied = keys;
                progress = true;
            }
        }
        if *left == 0 || (chunk == 1 && !progress) {
            break;
        }
        if !progress || chunk > 1 {
            chunk = (chunk / 2).max(1);
        }
    }
    let d = record(&best.spec, &applied, false, Some(target)).ok()??;
    (demonstrates(&d, target) && d.len() < best.len()).then_some(d)
}
