//! Scripted steps (SPEC §3): reading the `op`-tagged tables of `[[steps]]` with exact key paths,
//! and the accessors the drivers use.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, de};

use super::errors::Problem;
use super::types::Scenario;
use super::units::{Bytes, DurationNs};

/// `resourceVersionMatch` of a LIST.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash)]
pub enum ResourceVersionMatch {
    /// At least the given RV.
    NotOlderThan,
    /// Exactly the given RV.
    Exact,
}

fn default_value_bytes() -> Bytes {
    Bytes(100)
}

fn default_namespace() -> String {
    "default".to_string()
}

/// One scripted operation (SPEC §3). `at` is when it is issued.
///
/// Scenario files write a step as a table with an `op` key (`op = "etcd.put"`); the loader (and
/// [`Scenario`]'s `Deserialize`) converts that form. `Step`'s own `Deserialize` reads the
/// externally tagged form `{"etcd.put" = {at = "1s", key = "/a"}}`, which is what lets the
/// loader report exact key paths such as `steps.2.keyy`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub enum Step {
    /// `etcd.put`: write `key`.
    #[serde(rename = "etcd.put")]
    EtcdPut {
        /// When the step is issued.
        at: DurationNs,
        /// The etcd key.
        key: String,
        /// Size of the value written (default 100).
        #[serde(default = "default_value_bytes")]
        value_bytes: Bytes,
    },
    /// `etcd.delete`: delete `key` (or every key under it with `prefix`).
    #[serde(rename = "etcd.delete")]
    EtcdDelete {
        /// When the step is issued.
        at: DurationNs,
        /// The etcd key.
        key: String,
        /// Treat `key` as a prefix.
        #[serde(default)]
        prefix: bool,
    },
    /// `etcd.range`: read `key` (or a prefix) at a revision.
    #[serde(rename = "etcd.range")]
    EtcdRange {
        /// When the step is issued.
        at: DurationNs,
        /// The etcd key.
        key: String,
        /// Treat `key` as a prefix.
        #[serde(default)]
        prefix: bool,
        /// Revision to read at (0 = latest).
        #[serde(default)]
        revision: i64,
        /// Most keys returned (0 = no limit).
        #[serde(default)]
        limit: i64,
    },
    /// `etcd.compact`: compact etcd up to `revision`.
    #[serde(rename = "etcd.compact")]
    EtcdCompact {
        /// When the step is issued.
        at: DurationNs,
        /// Compact revision.
        revision: i64,
    },
    /// `etcd.watch`: open an etcd watch named `id`.
    #[serde(rename = "etcd.watch")]
    EtcdWatch {
        /// When the step is issued.
        at: DurationNs,
        /// Name of the watch in the report's `watches` object (unique across all watch steps).
        id: String,
        /// The etcd key.
        key: String,
        /// Treat `key` as a prefix.
        #[serde(default)]
        prefix: bool,
        /// First revision delivered (0 = the next one).
        #[serde(default)]
        start_revision: i64,
        /// Ask for progress notifications.
        #[serde(default)]
        progress_notify: bool,
    },
    /// `etcd.cancel`: cancel the etcd watch `id`.
    #[serde(rename = "etcd.cancel")]
    EtcdCancel {
        /// When the step is issued.
        at: DurationNs,
        /// An `etcd.watch` id opened by an earlier step.
        id: String,
    },
    /// `etcd.progress`: RequestProgress on the watch's stream.
    #[serde(rename = "etcd.progress")]
    EtcdProgress {
        /// When the step is issued.
        at: DurationNs,
        /// An `etcd.watch` id opened by an earlier step.
        id: String,
    },
    /// `api.create`: create an object through the apiserver.
    #[serde(rename = "api.create")]
    ApiCreate {
        /// When the step is issued.
        at: DurationNs,
        /// A declared `[[resources]]` name.
        resource: String,
        /// Object name.
        name: String,
        /// Object namespace (default "default").
        #[serde(default = "default_namespace")]
        namespace: String,
        /// Object size (default: the resource's `object_bytes`).
        #[serde(default)]
        object_bytes: Option<Bytes>,
        /// `metadata.labels` (absent = none).
        #[serde(default)]
        labels: Option<BTreeMap<String, String>>,
    },
    /// `api.update`: update an object through the apiserver.
    #[serde(rename = "api.update")]
    ApiUpdate {
        /// When the step is issued.
        at: DurationNs,
        /// A declared `[[resources]]` name.
        resource: String,
        /// Object name.
        name: String,
        /// Object namespace (default "default").
        #[serde(default = "default_namespace")]
        namespace: String,
        /// Object size (default: the resource's `object_bytes`).
        #[serde(default)]
        object_bytes: Option<Bytes>,
        /// New `metadata.labels`, replacing the whole map (absent = the labels the object had
        /// when the script last wrote it successfully).
        #[serde(default)]
        labels: Option<BTreeMap<String, String>>,
    },
    /// `api.delete`: delete an object through the apiserver.
    #[serde(rename = "api.delete")]
    ApiDelete {
        /// When the step is issued.
        at: DurationNs,
        /// A declared `[[resources]]` name.
        resource: String,
        /// Object name.
        name: String,
        /// Object namespace (default "default").
        #[serde(default = "default_namespace")]
        namespace: String,
        /// Object size (default: the resource's `object_bytes`).
        #[serde(default)]
        object_bytes: Option<Bytes>,
    },
    /// `api.get`: GET one object from one apiserver (watchsim's own op, issue 19).
    #[serde(rename = "api.get")]
    ApiGet {
        /// When the step is issued.
        at: DurationNs,
        /// Apiserver index (default 0).
        #[serde(default)]
        server: u32,
        /// A declared `[[resources]]` name.
        resource: String,
        /// Object name.
        name: String,
        /// Object namespace (default "default").
        #[serde(default = "default_namespace")]
        namespace: String,
        /// `resourceVersion` (absent = unset).
        #[serde(default)]
        resource_version: Option<String>,
    },
    /// `api.list`: LIST a resource from one apiserver.
    #[serde(rename = "api.list")]
    ApiList {
        /// When the step is issued.
        at: DurationNs,
        /// Apiserver index (default 0).
        #[serde(default)]
        server: u32,
        /// A declared `[[resources]]` name.
        resource: String,
        /// `resourceVersion` (absent = unset).
        #[serde(default)]
        resource_version: Option<String>,
        /// `resourceVersionMatch`.
        #[serde(default, rename = "match")]
        match_: Option<ResourceVersionMatch>,
        /// Page size (`limit`).
        #[serde(default)]
        limit: Option<u64>,
        /// Continue the previous list of this server/resource.
        #[serde(default, rename = "continue")]
        continue_: bool,
        /// watchsim's own: list one namespace only (absent = the whole resource).
        #[serde(default)]
        namespace: Option<String>,
        /// `labelSelector` (Kubernetes syntax: `k=v`, `k!=v`, `k in (a,b)`, `k notin (a)`,
        /// `k`, `!k`, comma-separated).
        #[serde(default)]
        label_selector: Option<String>,
        /// `fieldSelector` on `metadata.name` / `metadata.namespace` (`=`, `==`, `!=`).
        #[serde(default)]
        field_selector: Option<String>,
    },
    /// `api.watch`: open a watch named `id` on one apiserver.
    #[serde(rename = "api.watch")]
    ApiWatch {
        /// When the step is issued.
        at: DurationNs,
        /// Name of the watch in the report's `watches` object (unique across all watch steps).
        id: String,
        /// Apiserver index (default 0).
        #[serde(default)]
        server: u32,
        /// A declared `[[resources]]` name.
        resource: String,
        /// `resourceVersion` (absent = unset).
        #[serde(default)]
        resource_version: Option<String>,
        /// `allowWatchBookmarks`.
        #[serde(default)]
        bookmarks: bool,
        /// `sendInitialEvents` (absent = unset).
        #[serde(default)]
        send_initial_events: Option<bool>,
        /// watchsim's own: watch one namespace only (absent = the whole resource).
        #[serde(default)]
        namespace: Option<String>,
        /// `labelSelector` (as `api.list`).
        #[serde(default)]
        label_selector: Option<String>,
        /// `fieldSelector` (as `api.list`).
        #[serde(default)]
        field_selector: Option<String>,
        /// `timeoutSeconds` (absent = the server's default, 30-60 min).
        #[serde(default)]
        timeout: Option<DurationNs>,
        /// watchsim's own: events per second the client reads (absent = as fast as they
        /// arrive; 0 = never reads). Slow readers fill their buffers and get closed.
        #[serde(default)]
        read_rate: Option<u32>,
    },
    /// `api.unwatch`: close the apiserver watch `id`.
    #[serde(rename = "api.unwatch")]
    ApiUnwatch {
        /// When the step is issued.
        at: DurationNs,
        /// An `api.watch` id opened by an earlier step.
        id: String,
    },
    /// `fault.restart_apiserver`.
    #[serde(rename = "fault.restart_apiserver")]
    FaultRestartApiserver {
        /// When the step is issued.
        at: DurationNs,
        /// Apiserver index.
        #[serde(default)]
        server: Option<u32>,
        /// How long the fault lasts.
        #[serde(default, rename = "for")]
        for_: Option<DurationNs>,
    },
    /// `fault.restart_client`.
    #[serde(rename = "fault.restart_client")]
    FaultRestartClient {
        /// When the step is issued.
        at: DurationNs,
        /// Client instance, `<population>-<i>`, e.g. "kubelet-3".
        client: String,
    },
    /// `fault.partition_apiserver`.
    #[serde(rename = "fault.partition_apiserver")]
    FaultPartitionApiserver {
        /// When the step is issued.
        at: DurationNs,
        /// Apiserver index.
        #[serde(default)]
        server: Option<u32>,
        /// How long the partition lasts.
        #[serde(default, rename = "for")]
        for_: Option<DurationNs>,
    },
    /// `fault.stall_apiserver`.
    #[serde(rename = "fault.stall_apiserver")]
    FaultStallApiserver {
        /// When the step is issued.
        at: DurationNs,
        /// Apiserver index.
        #[serde(default)]
        server: Option<u32>,
        /// How long the stall lasts.
        #[serde(default, rename = "for")]
        for_: Option<DurationNs>,
    },
    /// `fault.heal`.
    #[serde(rename = "fault.heal")]
    FaultHeal {
        /// When the step is issued.
        at: DurationNs,
    },
    /// `fault.compact_now`.
    #[serde(rename = "fault.compact_now")]
    FaultCompactNow {
        /// When the step is issued.
        at: DurationNs,
    },
}

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
