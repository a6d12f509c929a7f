//! Scenario files (SPEC §2, §3): TOML parsing with unknown keys refused, units, `--set`
//! overrides by dotted path, and validation errors that name the file, key path and line.
//!
//! Loading runs in four stages, each error naming file (or `--set`), key path and line:
//! 1. the text is parsed as TOML (syntax errors: file and line);
//! 2. `--set KEY=VALUE` overrides are applied to the parsed table (see `overrides.rs` for how
//!    VALUE is read: as TOML, else as a plain string);
//! 3. the table is deserialized into [`Scenario`] (unknown keys, wrong types, bad units);
//! 4. the result is validated (impossible values, references between keys).

pub mod budget;
mod errors;
pub mod limits;
mod locate;
mod overrides;
mod population;
/// The selector syntax is the Kubernetes API's (`labels.Parse`, `fields.ParseSelector`): the
/// protocol layer has it; a scenario is validated with it.
pub use crate::proto::selector_syntax as selectors;
mod steps;
mod types;
mod units;
mod validate;

pub use errors::ScenarioError;
pub use population::*;
pub use steps::{ResourceVersionMatch, Step};
pub use types::*;
pub use units::{Bytes, DurationNs, format_ns, parse_bytes, parse_duration};

use std::path::Path;

use errors::Problem;
use locate::{Locator, line_at};

/// A scenario as loaded: its source text (kept for traces and capsules) and the parsed form.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    /// Where it came from (for messages).
    pub origin: String,
    /// The TOML text exactly as read.
    pub text: String,
    /// `--set KEY=VALUE` overrides applied on top, in order.
    pub overrides: Vec<String>,
    /// The validated scenario.
    pub scenario: Scenario,
}

/// Reads, parses, overrides and validates a scenario file.
pub fn load_file(path: &Path, overrides: &[String]) -> Result<LoadedScenario, ScenarioError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: origin.clone(),
        key: None,
        line: None,
        message: format!("cannot read the file: {e}"),
    })?;
    let scenario = load_str(&origin, &text, overrides)?;
    Ok(LoadedScenario {
        origin,
        text,
        overrides: overrides.to_vec(),
        scenario,
    })
}

/// The scenario's TOML table with the `--set` overrides applied (not validated): what a shrinker
/// or a swarm campaign edits before writing the scenario text out again.
pub fn effective_table(
    origin: &str,
    text: &str,
    overrides: &[String],
) -> Result<toml::Table, ScenarioError> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| ScenarioError {
        file: origin.to_string(),
        key: None,
        line: e.span().map(|span| line_at(text, span.start)),
        message: e.message().trim().to_string(),
    })?;
    for raw in overrides {
        overrides::apply(&mut table, &overrides::parse(raw)?)?;
    }
    Ok(table)
}

/// Parses, overrides and validates scenario text; `origin` names it in errors. Overrides are
/// `KEY=VALUE` strings as given to `--set`, applied in order.
pub fn load_str(origin: &str, text: &str, overrides: &[String]) -> Result<Scenario, ScenarioError> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| ScenarioError {
        file: origin.to_string(),
        key: None,
        line: e.span().map(|span| line_at(text, span.start)),
        message: e.message().trim().to_string(),
    })?;
    let overrides = overrides
        .iter()
        .map(|raw| overrides::parse(raw))
        .collect::<Result<Vec<_>, _>>()?;
    for o in &overrides {
        overrides::apply(&mut table, o)?;
    }
    let locator = Locator::new(origin, text, &overrides);
    // `steps` is read on its own so that errors inside a step keep their exact key path.
    let steps = table.remove("steps");
    let mut scenario: Scenario = serde_path_to_error::deserialize(toml::Value::Table(table))
        .map_err(|e| locator.error(Problem::from_serde("", e)))?;
    if let Some(steps) = steps {
        scenario.steps = steps::steps_from_value(steps).map_err(|p| locator.error(p))?;
    }
    scenario.resolve_profile_defaults();
    validate::validate(&scenario).map_err(|p| locator.error(p))?;
    Ok(scenario)
}

/// Refuses a scenario whose estimated memory ([`budget::estimate`]), times `parallel` runs at
/// once, exceeds `limit`: exit 2 with the key that drives the estimate (and its line), the
/// estimate and the limit. `origin`, `text` and `overrides` are what the scenario was loaded
/// from (to find the line).
pub fn check_memory(
    origin: &str,
    text: &str,
    overrides: &[String],
    scenario: &Scenario,
    parallel: u64,
    limit: &budget::MemoryLimit,
) -> Result<(), ScenarioError> {
    let Err(problem) = budget::check_memory(scenario, parallel, limit) else {
        return Ok(());
    };
    let parsed = overrides
        .iter()
        .map(|raw| overrides::parse(raw))
        .collect::<Result<Vec<_>, _>>()?;
    Err(Locator::new(origin, text, &parsed).error(problem))
}

/// Refuses a `--duration` beyond what a simulation can mean ([`limits::MAX_TIME`]).
pub fn check_duration_flag(d: DurationNs) -> Result<(), String> {
    if d > limits::MAX_TIME {
        return Err(format!(
            "--duration {d} is beyond what a simulation can mean (at most {}, 100 years of virtual time)",
            limits::MAX_TIME
        ));
    }
    Ok(())
}
