//! Accessors common to every scripted step.

use super::types::Step;
use super::units::DurationNs;

impl Step {
    /// When the step is issued.
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

    /// The step's `op` as written in the file.
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
