//! Scripted steps (SPEC §3): reading the `op`-tagged tables of `[[steps]]` with exact key paths,
//! and the accessors the drivers use.

use serde::{Deserialize, Deserializer, de};

use super::errors::Problem;
use super::types::{Scenario, Step};
use super::units::DurationNs;

impl Step {
    /// Every valid `op`, in the order of SPEC §3.
    pub const OPS: &'static [&'static str] = &[
        "etcd.put",
        "etcd.delete",
        "etcd.range",
        "etcd.compact",
        "etcd.watch",
        "etcd.cancel",
        "etcd.progress",
        "api.create",
        "api.update",
        "api.delete",
        "api.get",
        "api.list",
        "api.watch",
        "api.unwatch",
        "fault.restart_apiserver",
        "fault.restart_client",
        "fault.partition_apiserver",
        "fault.stall_apiserver",
        "fault.heal",
        "fault.compact_now",
    ];

    /// When the step is issued (virtual time since the start).
    pub fn at(&self) -> DurationNs {
        match self {
            Step::EtcdPut { at, .. }
            | Step::EtcdDelete { at, .. }
            | Step::EtcdRange { at, .. }
            | Step::EtcdCompact { at, .. }
            | Step::EtcdWatch { at, .. }
            | Step::EtcdCancel { at, .. }
            | Step::EtcdProgress { at, .. }
            | Step::ApiCreate { at, .. }
            | Step::ApiUpdate { at, .. }
            | Step::ApiDelete { at, .. }
            | Step::ApiGet { at, .. }
            | Step::ApiList { at, .. }
            | Step::ApiWatch { at, .. }
            | Step::ApiUnwatch { at, .. }
            | Step::FaultRestartApiserver { at, .. }
            | Step::FaultRestartClient { at, .. }
            | Step::FaultPartitionApiserver { at, .. }
            | Step::FaultStallApiserver { at, .. }
            | Step::FaultHeal { at }
            | Step::FaultCompactNow { at } => *at,
        }
    }

    /// The step's `op` as written in scenario files and reports, e.g. `"etcd.put"`.
    pub fn op_name(&self) -> &'static str {
        match self {
            Step::EtcdPut { .. } => "etcd.put",
            Step::EtcdDelete { .. } => "etcd.delete",
            Step::EtcdRange { .. } => "etcd.range",
            Step::EtcdCompact { .. } => "etcd.compact",
            Step::EtcdWatch { .. } => "etcd.watch",
            Step::EtcdCancel { .. } => "etcd.cancel",
            Step::EtcdProgress { .. } => "etcd.progress",
            Step::ApiCreate { .. } => "api.create",
            Step::ApiUpdate { .. } => "api.update",
            Step::ApiDelete { .. } => "api.delete",
            Step::ApiGet { .. } => "api.get",
            Step::ApiList { .. } => "api.list",
            Step::ApiWatch { .. } => "api.watch",
            Step::ApiUnwatch { .. } => "api.unwatch",
            Step::FaultRestartApiserver { .. } => "fault.restart_apiserver",
            Step::FaultRestartClient { .. } => "fault.restart_client",
            Step::FaultPartitionApiserver { .. } => "fault.partition_apiserver",
            Step::FaultStallApiserver { .. } => "fault.stall_apiserver",
            Step::FaultHeal { .. } => "fault.heal",
            Step::FaultCompactNow { .. } => "fault.compact_now",
        }
    }
}

impl Scenario {
    /// The steps in the order they run: by `at`, ties in file order. Each comes with its index
    /// in `steps` (its key path is `steps.<index>`).
    pub fn steps_in_order(&self) -> Vec<(usize, &Step)> {
        let mut order: Vec<(usize, &Step)> = self.steps.iter().enumerate().collect();
        order.sort_by_key(|(_, step)| step.at());
        order
    }
}

fn ops_list() -> String {
    Step::OPS
        .iter()
        .map(|op| format!("`{op}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the value of the top-level `steps` key: an array of `op`-tagged tables.
pub(crate) fn steps_from_value(value: toml::Value) -> Result<Vec<Step>, Problem> {
    let toml::Value::Array(items) = value else {
        return Err(Problem::at(
            "steps",
            "expected an array of tables ([[steps]])",
        ));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| step_from_value(i, item))
        .collect()
}

/// Reads `steps.<index>`: checks `op`, then deserializes the other keys as that op's fields.
pub(crate) fn step_from_value(index: usize, value: toml::Value) -> Result<Step, Problem> {
    let path = format!("steps.{index}");
    let toml::Value::Table(mut fields) = value else {
        return Err(Problem::at(
            path,
            "a step must be a table with `at` and `op`",
        ));
    };
    let op = match fields.remove("op") {
        None => {
            return Err(Problem::at(
                format!("{path}.op"),
                format!("missing required key; valid ops: {}", ops_list()),
            ));
        }
        Some(toml::Value::String(op)) if Step::OPS.contains(&op.as_str()) => op,
        Some(toml::Value::String(op)) => {
            return Err(Problem::at(
                format!("{path}.op"),
                format!("unknown op `{op}`; valid ops: {}", ops_list()),
            ));
        }
        Some(other) => {
            return Err(Problem::at(
                format!("{path}.op"),
                format!(
                    "expected a string, found a value of type {}; valid ops: {}",
                    other.type_str(),
                    ops_list()
                ),
            ));
        }
    };
    let mut tagged = toml::Table::new();
    tagged.insert(op, toml::Value::Table(fields));
    serde_path_to_error::deserialize(toml::Value::Table(tagged))
        .map_err(|e| Problem::from_serde(&path, e))
}

/// `deserialize_with` for [`Scenario::steps`]: reads `op`-tagged tables from any deserializer.
/// The loader bypasses it (it reads `steps` itself) to report exact key paths and lines; here
/// the path of a problem is part of the message.
pub(crate) fn deserialize_op_tagged<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<Step>, D::Error> {
    let value = toml::Value::Array(Vec::<toml::Value>::deserialize(d)?);
    steps_from_value(value).map_err(|p| match p.key {
        Some(key) => de::Error::custom(format!("key `{key}`: {}", p.message)),
        None => de::Error::custom(p.message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_deserializes_to_a_step_of_that_op() {
        for op in Step::OPS {
            // Give every field any step may require; each op keeps only its own.
            let mut table: toml::Table = toml::from_str(
                "at = \"1s\"\nkey = \"/k\"\nid = \"w\"\nrevision = 1\nresource = \"pods\"\n\
                 name = \"a\"\nclient = \"c-0\"",
            )
            .expect("test TOML parses");
            table.insert("op".into(), toml::Value::String(op.to_string()));
            // Retry, dropping whichever key serde calls unknown, until the step parses.
            let step = loop {
                match step_from_value(0, toml::Value::Table(table.clone())) {
                    Ok(step) => break step,
                    Err(p) => {
                        let key = p.key.clone().expect("problems in a step have a key");
                        let field = key.rsplit('.').next().expect("non-empty path");
                        assert!(p.message.starts_with("unknown key"), "{op}: {p:?}");
                        table.remove(field);
                    }
                }
            };
            assert_eq!(step.op_name(), *op);
            assert_eq!(step.at(), DurationNs::from_secs(1));
        }
    }
}
