//! The module structure of `src/` (issue 15): which top-level module may use which.
//!
//! The target: `kernel` depends on nothing; the components (`etcd`, `apiserver`, `client`) only on
//! `kernel`, `scenario` (their configuration) and each other's shared types, never on `world`,
//! `check`, `sim`, `sweep`, `trace`, `report` or `cli`; drivers and tools sit above. The model
//! is not there yet: the components still take `world`'s `Ctx`, `Msg` and `Timer` (ids, notices
//! and the explorer's renaming are in `proto` since 2026-12-04). Those edges are listed in [`TO_REMOVE`], a ratchet: the test fails on
//! any other edge that breaks the target (a new import in the wrong direction), and on a listed
//! edge that no longer exists (so the list only shrinks).
//!
//! Edges are read from the code (not comments) of every `src/**/*.rs`: a `crate::<module>` path
//! in a file under another top-level module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level modules, lowest layer first.
const KERNEL: &str = "kernel";
const COMPONENTS: [&str; 3] = ["etcd", "apiserver", "client"];
/// What no component may use.
const ABOVE_COMPONENTS: [&str; 7] = ["world", "check", "sim", "sweep", "trace", "report", "cli"];

/// Edges that break the target today, to be removed by issue 15's protocol layer.
const TO_REMOVE: [(&str, &str); 4] = [
    ("apiserver", "world"),
    ("client", "world"),
    // The report and the trace read `world`'s outcome and observation types.
    ("report", "world"),
    ("trace", "world"),
];

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

/// Whether `from -> to` breaks the target layering.
fn breaks_target(from: &str, to: &str) -> bool {
    (from == KERNEL) || (COMPONENTS.contains(&from) && ABOVE_COMPONENTS.contains(&to))
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
