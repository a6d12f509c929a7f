//! [`ScenarioError`], the one error type of scenario loading, and [`Problem`], an error that
//! knows its key path but not yet its file and line (see `locate.rs`).

use std::fmt;

use serde_path_to_error::Segment;

/// A bad scenario: where (file, dotted key path, line) and what is wrong. Maps to exit code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// File name, or `--set` for an override.
    pub file: String,
    /// Dotted key path, e.g. `apiserver.watch_cache.capacity` or `steps.2.op` (array indices
    /// are path segments).
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

/// An error with a dotted key path but no file or line yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// Dotted key path, or `None` for the whole scenario.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// A problem at `key`.
    pub fn at(key: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            key: Some(key.into()),
            message: message.into(),
        }
    }

    /// A problem from deserializing the value at `prefix` (dotted, may be empty). Enum variant
    /// segments (step ops) are dropped so a step's fields sit directly under `steps.N`.
    /// serde's wording is turned into the scenario's: "missing field `x`" becomes key `...x`
    /// with "missing required key"; "field" becomes "key"; "variant" becomes "value".
    pub fn from_serde(prefix: &str, err: serde_path_to_error::Error<toml::de::Error>) -> Self {
        let mut segments: Vec<String> = Vec::new();
        if !prefix.is_empty() {
            segments.push(prefix.to_string());
        }
        for segment in err.path().iter() {
            match segment {
                Segment::Seq { index } => segments.push(index.to_string()),
                Segment::Map { key } => segments.push(key.clone()),
                Segment::Enum { .. } | Segment::Unknown => {}
            }
        }
        let message = err.inner().message().trim().to_string();
        if let Some(field) = backticked_after(&message, "missing field ") {
            segments.push(field.to_string());
            return Problem::at(segments.join("."), "missing required key");
        }
        let message = if let Some(rest) = message.strip_prefix("unknown field ") {
            format!(
                "unknown key {}",
                rest.replace(", there are no fields", " (this table takes no keys)")
            )
        } else if let Some(rest) = message.strip_prefix("unknown variant ") {
            format!("unknown value {rest}")
        } else {
            message
        };
        let key = (!segments.is_empty()).then(|| segments.join("."));
        Problem { key, message }
    }
}

/// `name` from a message that is exactly `prefix` followed by `` `name` ``.
fn backticked_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    message
        .strip_prefix(prefix)?
        .strip_prefix('`')?
        .strip_suffix('`')
}
