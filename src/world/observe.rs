//! What the run observed for the report: each scripted step's result and the events of each
//! scripted watch, in delivery order (SPEC §3, §4). History, not state: kept out of the World's
//! hash so that the explorer still merges equal states.

use std::collections::BTreeMap;

use serde_json::Value;

/// Results and watch events of scripted steps.
#[derive(Debug, Clone, Default)]
pub struct Observations {
    /// Result of each step, indexed by the step's position in the file; `None` until answered.
    pub script_results: Vec<Option<Value>>,
    /// Events of each scripted watch, keyed by the step's `id`, in delivery order.
    pub watches: BTreeMap<String, Vec<Value>>,
    /// Things the user should know (e.g. steps whose component is not modelled yet).
    pub notes: Vec<String>,
}
