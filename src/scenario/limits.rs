//! Values no real cluster has (issue 17): counts, rates and times far beyond the largest real
//! systems are refused when the scenario loads, naming the key, the value and the limit, instead
//! of being run (for hours, or until memory runs out) or silently clamped. The limits are orders
//! of magnitude above the largest published clusters (Kubernetes' scalability envelope is 5,000
//! nodes and 150,000 pods; the largest reported clusters have 65,000 to 130,000 nodes; etcd's
//! storage quota tops out at 8 GiB and it commits tens of thousands of writes per second), so a
//! refusal means a typo, not an ambitious what-if.

use super::errors::Problem;
use super::types::Scenario;
use super::units::DurationNs;

/// Objects of one resource.
pub const MAX_OBJECTS: u64 = 100_000_000;
/// Instances of one client population.
pub const MAX_CLIENTS: u64 = 10_000_000;
/// HA apiservers.
pub const MAX_APISERVERS: u32 = 1_000;
/// LIST encoders of one apiserver (its cores).
pub const MAX_LIST_ENCODERS: u32 = 4_096;
/// Writes per second of one workload.
pub const MAX_WRITE_RATE: f64 = 10_000_000.0;
/// Random watch disconnects per client per hour (one per millisecond).
pub const MAX_DISCONNECT_RATE: f64 = 3_600_000.0;
/// Size of one object.
pub const MAX_OBJECT_BYTES: u64 = 1 << 30;
/// Any time or interval in a scenario: 100 years, so that a time plus an interval never
/// overflows the simulator's u64 nanoseconds (584 years).
pub const MAX_TIME: DurationNs = DurationNs(100 * 365 * 24 * 3_600 * 1_000_000_000);

/// Returns `Err(Problem::at(key, message))` unless `cond` holds.
macro_rules! within {
    ($cond:expr, $key:expr, $($message:tt)+) => {
        if !$cond {
            return Err(Problem::at($key, format!($($message)+)));
        }
    };
}

/// Refuses counts, rates and times beyond any real cluster.
pub(crate) fn check(s: &Scenario) -> Result<(), Problem> {
    times(s)?;
    within!(
        s.apiserver.count <= MAX_APISERVERS,
        "apiserver.count",
        "{} apiservers is beyond any real cluster (at most {MAX_APISERVERS})",
        s.apiserver.count
    );
    within!(
        s.apiserver.list_encoders <= MAX_LIST_ENCODERS,
        "apiserver.list_encoders",
        "{} LIST encoders is beyond any real apiserver's cores (at most {MAX_LIST_ENCODERS}; 0 = no limit)",
        s.apiserver.list_encoders
    );
    for (i, r) in s.resources.iter().enumerate() {
        within!(
            r.count <= MAX_OBJECTS,
            format!("resources.{i}.count"),
            "{} objects is beyond any real cluster (at most {MAX_OBJECTS}; etcd's 8 GiB quota holds far fewer)",
            r.count
        );
        within!(
            r.object_bytes.0 <= MAX_OBJECT_BYTES,
            format!("resources.{i}.object_bytes"),
            "{} bytes per object is beyond any real object (at most {MAX_OBJECT_BYTES}; etcd refuses requests above --max-request-bytes, 1.5 MiB by default)",
            r.object_bytes.0
        );
    }
    for (i, c) in s.clients.iter().enumerate() {
        within!(
            c.count <= MAX_CLIENTS,
            format!("clients.{i}.count"),
            "{} clients is beyond any real cluster (at most {MAX_CLIENTS})",
            c.count
        );
    }
    for (i, w) in s.workload.iter().enumerate() {
        if w.rate > MAX_WRITE_RATE {
            return Err(Problem::at(
                format!("workload.{i}.rate"),
                format!(
                    "{} writes per second is beyond any real etcd (at most {MAX_WRITE_RATE})",
                    w.rate
                ),
            ));
        }
    }
    if s.faults.watch_disconnect_rate > MAX_DISCONNECT_RATE {
        return Err(Problem::at(
            "faults.watch_disconnect_rate",
            format!(
                "{} disconnects per client-hour is more than one per millisecond (at most {MAX_DISCONNECT_RATE})",
                s.faults.watch_disconnect_rate
            ),
        ));
    }
    Ok(())
}

/// Every time and interval of the scenario is at most [`MAX_TIME`].
fn times(s: &Scenario) -> Result<(), Problem> {
    let mut all: Vec<(String, DurationNs)> = vec![
        ("duration".into(), s.duration),
        ("settle".into(), s.settle),
        (
            "etcd.progress_notify_interval".into(),
            s.etcd.progress_notify_interval,
        ),
        (
            "apiserver.compaction_interval".into(),
            s.apiserver.compaction_interval,
        ),
        (
            "apiserver.bookmark_interval".into(),
            s.apiserver.bookmark_interval,
        ),
        (
            "apiserver.watch_cache.fresh".into(),
            s.apiserver.watch_cache.fresh,
        ),
        ("network.latency".into(), s.network.latency),
        ("network.jitter".into(), s.network.jitter),
        (
            "faults.disconnect_duration".into(),
            s.faults.disconnect_duration,
        ),
    ];
    if let Some(w) = s.explore.window {
        all.push(("explore.window".into(), w));
    }
    if let Some(m) = s.bounds.max_staleness {
        all.push(("bounds.max_staleness".into(), m));
    }
    for (i, f) in s.faults.at.iter().enumerate() {
        all.push((format!("faults.at.{i}.at"), f.at));
        if let Some(d) = f.for_ {
            all.push((format!("faults.at.{i}.for"), d));
        }
    }
    for (i, step) in s.steps.iter().enumerate() {
        all.push((format!("steps.{i}.at"), step.at()));
    }
    for (key, t) in all {
        within!(
            t <= MAX_TIME,
            key,
            "{t} is beyond what a simulation can mean (at most {MAX_TIME}, 100 years of virtual time)"
        );
    }
    Ok(())
}
