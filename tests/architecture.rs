//! The module structure of `src/` (issue 15): which top-level module may use which.
//!
//! The target: `kernel` depends on nothing; `proto` (messages, timers, API types, the effects
//! buffer `Out`) only on `kernel`; the components (`etcd`, `apiserver`, `client`) only on
//! `kernel`, `proto` and `scenario` (their configuration), never on each other nor on `world`,
//! `check`, `sim`, `sweep`, `trace`, `report` or `cli`; drivers and tools sit above. No import
//! cycle between top-level modules. Edges that still break the target are listed in
//! [`TO_REMOVE`], a ratchet: the test fails on any other edge that breaks the target (a new
//! import in the wrong direction), and on a listed edge that no longer exists (so the list only
//! shrinks).
//!
//! Edges are read from the code (not comments) of every `src/**/*.rs`: a `crate::<module>` path
//! in a file under another top-level module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level modules, lowest layer first.
const KERNEL: &str = "kernel";
const COMPONENTS: [&str; 3] = ["etcd", "apiserver", "client"];

/// Edges that break the target today: none since issue 15's protocol layer (2026-12-04), when
/// the online checker moved below the world (`monitor`), the end-of-run verdicts above it
/// (`verdicts`), and the step, report and trace types out of `world`. A new exception must be
/// listed here with its reason.
const TO_REMOVE: [(&str, &str); 0] = [];
fn top_module(path: &Path, src: &Path) -> String {
    let rel = path.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let from = top_module(&path, &src);
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines() {
                let code = line.split("//").next().unwrap_or("");
                let mut rest = code;
                while let Some(i) = rest.find("crate::") {
                    rest = &rest[i + "crate::".len()..];
                    let to: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !to.is_empty() && to != from {
                        out.entry(from.clone()).or_default().insert(to);
                    }
                }
            }
        }
    }
    out
}

/// Whether `from -> to` breaks the target layering (cycles are judged separately).
fn breaks_target(from: &str, to: &str) -> bool {
    (from == KERNEL)
        || (from == "proto" && to != KERNEL)
        || (COMPONENTS.contains(&from) && !matches!(to, "kernel" | "proto" | "scenario"))
}

/// Edges that lie on an import cycle: `from -> to` where `to` reaches `from` again.
fn cycle_edges(edges: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<(String, String)> {
    let reaches = |start: &str, goal: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start.to_string()];
        while let Some(m) = stack.pop() {
            if m == goal {
                return true;
            }
            if seen.insert(m.clone()) {
                stack.extend(edges.get(&m).into_iter().flatten().cloned());
            }
        }
        false
    };
    let mut out = BTreeSet::new();
    for (from, tos) in edges {
        for to in tos {
            if reaches(to, from) {
                out.insert((from.clone(), to.clone()));
            }
        }
    }
    out
}

#[test]
fn no_new_import_breaks_the_layering_and_the_ratchet_only_shrinks() {
    let edges = edges();
    let listed: BTreeSet<(&str, &str)> = TO_REMOVE.iter().copied().collect();
    let mut new = Vec::new();
    let mut present = BTreeSet::new();
    for (from, tos) in &edges {
        for to in tos {
            let pair = (from.as_str(), to.as_str());
            if listed.contains(&pair) {
                present.insert(pair);
            } else if breaks_target(from, to) {
                new.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(
        new.is_empty(),
        "imports against the layering (see tests/architecture.rs): {new:?}"
    );
    let gone: Vec<_> = listed.difference(&present).collect();
    assert!(
        gone.is_empty(),
        "edges listed in TO_REMOVE no longer exist; remove them from the list: {gone:?}"
    );
}

#[test]
fn the_components_do_not_reach_drivers_sweeps_or_the_cli() {
    // Whatever the ratchet allows, no component may use a driver, the sweep tool or the CLI.
    let edges = edges();
    for from in COMPONENTS {
        for to in ["sim", "sweep", "cli", "trace", "report"] {
            assert!(
                !edges.get(from).is_some_and(|t| t.contains(to)),
                "{from} uses {to}"
            );
        }
    }
}

#[test]
fn every_import_cycle_goes_through_a_listed_edge() {
    // A cycle that none of TO_REMOVE's edges breaks is new.
    let edges = edges();
    let listed: BTreeSet<(String, String)> = TO_REMOVE
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let mut pruned = edges.clone();
    for (from, to) in &listed {
        if let Some(t) = pruned.get_mut(from) {
            t.remove(to);
        }
    }
    let left = cycle_edges(&pruned);
    assert!(
        left.is_empty(),
        "import cycles not broken by a TO_REMOVE edge: {left:?}"
    );
}

#[test]
fn the_protocol_layer_and_the_components_stand_alone() {
    // Today's state, pinned: proto on kernel only; each component on kernel, proto and the
    // scenario's configuration only (not on each other).
    let edges = edges();
    let allowed = |from: &str| -> &[&str] {
        match from {
            "proto" => &["kernel"],
            _ => &["kernel", "proto", "scenario"],
        }
    };
    for from in ["proto", "etcd", "apiserver", "client"] {
        for to in edges.get(from).into_iter().flatten() {
            assert!(allowed(from).contains(&to.as_str()), "{from} uses {to}");
        }
    }
}
