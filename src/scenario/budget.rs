//! The memory budget of a run (issue 17): before a run starts, an estimate of the bytes the
//! scenario will hold, from its counts alone (objects, watch caches, informers, watchers, the
//! history writes leave until compaction), compared with a limit. The estimate is arithmetic on
//! the parsed scenario (microseconds, whatever the counts), so a typo such as
//! `count = 1000000000000` is refused at once instead of growing until the OOM killer ends it.
//!
//! Object bodies are never materialised (sizes are numbers), so `object_bytes` does not count;
//! every coefficient below is bytes per modelled thing, calibrated against the peak resident
//! memory of the bundled scenarios (`docs/2026-12-04-reliability.md`) and rounded up, so the
//! estimate errs high.

use super::errors::Problem;
use super::population::{ClientScope, StoreMode, WorkloadKind};
use super::steps::Step;
use super::types::{Scenario, WatchCacheMode};

/// Resident memory of the process before any scenario (binary, runtime, allocator).
const BASE: u64 = 16 << 20;
/// Per object in etcd (interned key, key index, the current revision).
const ETCD_OBJECT: u64 = 320;
/// Per object in each apiserver's watch cache store.
const CACHE_OBJECT: u64 = 160;
/// Per write kept until compaction: etcd's revision, the invariant checker's change log and the
/// run's per-write records (`lease-vs-nodestatus`: 300,000 writes in 10 minutes, 143 MB).
const REVISION: u64 = 512;
/// Per write over the whole run: the invariant checker's change log is never trimmed, with what
/// else grows with the run's writes (measured 2026-12-05 after issue 16's fifth step:
/// `cluster-15k`'s peak grows from 378 MB at 3 minutes to 0.83 GB at 1 hour, 87 bytes per write
/// of its 1,522 writes/s; `cluster-65k`'s from 2.64 GB at 15 minutes to 3.61 GB at 1 hour, 55
/// bytes per write; rounded up).
const CHANGE_LOG: u64 = 96;
/// Per event in a watch cache ring.
const CACHE_EVENT: u64 = 128;
/// Per event a scripted watch (`etcd.watch`, `api.watch` step) records for the report's
/// `watches` (`etcd-churn`: one watch of 30,000 writes, 81 MB).
const SCRIPTED_EVENT: u64 = 2 << 10;
/// Per client instance: reflector, its connection, its watcher in the cacher, its timers and
/// the invariant checker's per-stream state.
const CLIENT: u64 = 12 << 10;
/// Per object an informer store holds in `store = "map"` mode.
const STORE_OBJECT: u64 = 96;
/// Per item of a LIST page in flight (each client can have one page in flight at a time).
const LIST_ITEM: u64 = 32;
/// Per object of a watch's initial state sent as one batch (`watch_list` clients, issue 16): a
/// batch is built once and shared by the watchers that start on the same cache state with the
/// same scope, so a cluster-wide population holds about one per apiserver, a per-node one one
/// per client (each its own few objects).
const WATCH_LIST_EVENT: u64 = 48;

/// One contribution to the estimate, at the scenario key that drives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Dotted key path whose value this part grows with (e.g. `resources.0.count`).
    pub key: String,
    /// Estimated bytes.
    pub bytes: u64,
    /// What is counted, for the message.
    pub what: String,
}

/// The estimated peak memory of a run of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estimate {
    /// Total bytes (saturating).
    pub total: u64,
    /// The parts, largest first.
    pub parts: Vec<Part>,
}

/// `a * b` in bytes, saturating: counts may be anything a TOML integer holds.
fn mul(a: u64, b: u64) -> u64 {
    a.saturating_mul(b)
}

/// Writes of `resource` per second, over every workload, and the objects the `create`
/// workloads add over `secs` seconds.
fn writes(s: &Scenario, resource: &str, secs: f64) -> (f64, u64) {
    let mut rate = 0.0;
    let mut created = 0.0;
    for w in s.workload.iter().filter(|w| w.resource == resource) {
        rate += w.rate;
        if w.kind == WorkloadKind::Create {
            created += w.rate * secs;
        }
    }
    (rate, to_u64(created))
}

/// A float count as u64, saturating (NaN counts as 0).
fn to_u64(x: f64) -> u64 {
    if x.is_nan() || x <= 0.0 {
        0
    } else if x >= u64::MAX as f64 {
        u64::MAX
    } else {
        x.ceil() as u64
    }
}

/// Estimates what a run of `s` holds at its peak.
pub fn estimate(s: &Scenario) -> Estimate {
    let mut parts = vec![Part {
        key: "(process)".into(),
        bytes: BASE,
        what: "watchsim itself".into(),
    }];
    let secs = s.duration.as_secs_f64();
    let servers = u64::from(s.apiserver.count);
    let cache_on = s.apiserver.watch_cache.mode != WatchCacheMode::Off;
    let ring_max = match s.apiserver.watch_cache.mode {
        WatchCacheMode::Fixed => s.apiserver.watch_cache.capacity,
        WatchCacheMode::Dynamic => s.apiserver.watch_cache.upper_bound(),
        WatchCacheMode::Off => 0,
    };
    // History etcd keeps: everything written since the last compaction (two intervals at most,
    // the compactor compacts to the revision of the previous interval), or the whole run.
    let retained_secs = match s.apiserver.compaction_interval.as_secs_f64() {
        c if c > 0.0 => secs.min(2.0 * c),
        _ => secs,
    };
    let mut objects_of = Vec::with_capacity(s.resources.len());
    for (i, r) in s.resources.iter().enumerate() {
        let (rate, created) = writes(s, &r.name, secs);
        let objects = r.count.saturating_add(created);
        objects_of.push(objects);
        let caches = if cache_on { servers } else { 0 };
        parts.push(Part {
            key: format!("resources.{i}.count"),
            bytes: mul(
                objects,
                ETCD_OBJECT.saturating_add(mul(caches, CACHE_OBJECT)),
            ),
            what: format!(
                "{objects} {} objects in etcd and {caches} watch cache(s)",
                r.name
            ),
        });
        let history = to_u64(rate * retained_secs);
        let ring = mul(caches, ring_max.min(to_u64(rate * secs)));
        if history > 0 || ring > 0 {
            let bytes = mul(history, REVISION)
                .saturating_add(mul(ring, CACHE_EVENT))
                .saturating_add(mul(to_u64(rate * secs), CHANGE_LOG));
            let key = s
                .workload
                .iter()
                .position(|w| w.resource == r.name)
                .map(|w| format!("workload.{w}.rate"))
                .unwrap_or_else(|| format!("resources.{i}.count"));
            parts.push(Part {
                key,
                bytes,
                what: format!(
                    "{} {} writes ({history} kept until compaction) and {ring} watch cache events",
                    to_u64(rate * secs),
                    r.name
                ),
            });
        }
    }
    let watches = s
        .steps
        .iter()
        .filter(|st| matches!(st, Step::EtcdWatch { .. } | Step::ApiWatch { .. }))
        .count() as u64;
    if watches > 0 {
        let writes: f64 = s.workload.iter().map(|w| w.rate * secs).sum();
        let events = to_u64(writes).saturating_add(s.steps.len() as u64);
        parts.push(Part {
            key: "steps".into(),
            bytes: mul(mul(watches, events), SCRIPTED_EVENT),
            what: format!("{watches} scripted watch(es) recording up to {events} events each"),
        });
    }
    let nodes_max = s
        .clients
        .iter()
        .filter(|c| c.scope == ClientScope::PerNode)
        .map(|c| c.count)
        .max()
        .unwrap_or(1)
        .max(1);
    for (i, c) in s.clients.iter().enumerate() {
        let objects = s
            .resources
            .iter()
            .position(|r| r.name == c.resource)
            .map_or(0, |r| objects_of[r]);
        let in_scope = match c.scope {
            ClientScope::PerNode => objects.div_ceil(nodes_max),
            ClientScope::Cluster | ClientScope::Namespace => objects,
        };
        let store = match c.store {
            StoreMode::Map => mul(in_scope, STORE_OBJECT),
            StoreMode::Digest => 0,
        };
        let page = mul(in_scope.min(c.page_size.max(1)), LIST_ITEM);
        let batches = match c.scope {
            ClientScope::PerNode => c.count,
            ClientScope::Cluster | ClientScope::Namespace => c.count.min(servers.max(1)),
        };
        let initial = if c.watch_list == Some(true) {
            mul(batches, mul(in_scope, WATCH_LIST_EVENT))
        } else {
            0
        };
        let each = CLIENT.saturating_add(store).saturating_add(page);
        parts.push(Part {
            key: format!("clients.{i}.count"),
            bytes: mul(c.count, each).saturating_add(initial),
            what: format!(
                "{} {} informers ({in_scope} objects in scope each)",
                c.count, c.name
            ),
        });
    }
    parts.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.key.cmp(&b.key)));
    let total = parts.iter().fold(0u64, |t, p| t.saturating_add(p.bytes));
    Estimate { total, parts }
}

/// A memory limit and where it came from (for the message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryLimit {
    /// Bytes.
    pub bytes: u64,
    /// How it was chosen, e.g. "three quarters of this machine's 23.4 GiB".
    pub source: String,
}

/// The limit when the machine's memory is unknown.
pub const FALLBACK_LIMIT: u64 = 6 << 30;

impl MemoryLimit {
    /// The default: three quarters of `MemTotal` in `/proc/meminfo` when readable (6 GiB of an
    /// 8 GiB CI machine: enough for every bundled scenario but `cluster-65k`, sized for 16 GiB), else
    /// [`FALLBACK_LIMIT`].
    pub fn default_for_machine() -> MemoryLimit {
        let total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| mem_total(&t));
        // In a container (a campaign pod), the cgroup's limit, when lower, is the machine.
        let cgroup = [
            "/sys/fs/cgroup/memory.max",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        ]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok()?.trim().parse::<u64>().ok());
        let (total, what) = match (total, cgroup) {
            (Some(t), Some(c)) if c < t => (Some(c), "this container's"),
            (None, Some(c)) => (Some(c), "this container's"),
            (t, _) => (t, "this machine's"),
        };
        match total {
            Some(total) => MemoryLimit {
                bytes: total / 4 * 3,
                source: format!("three quarters of {what} {}", human(total)),
            },
            None => MemoryLimit {
                bytes: FALLBACK_LIMIT,
                source: "the default for a machine of unknown memory".into(),
            },
        }
    }

    /// `--max-memory SIZE` (a size as in scenarios: "8GiB", or bytes).
    pub fn from_flag(text: &str) -> Result<MemoryLimit, String> {
        let b = super::units::parse_bytes(text).map_err(|e| format!("--max-memory {text}: {e}"))?;
        if b.0 == 0 {
            return Err(format!("--max-memory {text}: must be more than 0 bytes"));
        }
        Ok(MemoryLimit {
            bytes: b.0,
            source: "--max-memory".into(),
        })
    }

    /// The flag's limit if given, else the machine's default.
    pub fn resolve(flag: Option<&str>) -> Result<MemoryLimit, String> {
        flag.map_or_else(|| Ok(MemoryLimit::default_for_machine()), Self::from_flag)
    }
}

/// `MemTotal` in bytes from the text of `/proc/meminfo`.
pub fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line.split_whitespace().skip(1);
    let n: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => n.checked_mul(1024),
        Some(_) => None,
    }
}

/// Bytes for people: "1.5 GiB".
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Refuses `s` when `parallel` runs of it at once (a campaign's worker threads) are estimated
/// to exceed `limit`; the problem names the largest part's key.
pub(crate) fn check_memory(
    s: &Scenario,
    parallel: u64,
    limit: &MemoryLimit,
) -> Result<(), Problem> {
    let e = estimate(s);
    let parallel = parallel.max(1);
    let total = e.total.saturating_mul(parallel);
    if total <= limit.bytes {
        return Ok(());
    }
    let top = &e.parts[0];
    let runs = if parallel > 1 {
        format!(
            "{parallel} parallel runs would need about {} of memory ({} each)",
            human(total),
            human(e.total)
        )
    } else {
        format!("the run would need about {} of memory", human(total))
    };
    let advice = if parallel > 1 {
        "Lower the counts or --jobs, or raise the limit with --max-memory SIZE"
    } else {
        "Lower the counts, or raise the limit with --max-memory SIZE"
    };
    Err(Problem::at(
        top.key.clone(),
        format!(
            "{runs}, more than the limit of {} ({}); the largest part is {} for {}. {advice}",
            human(limit.bytes),
            limit.source,
            human(top.bytes),
            top.what
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_total_reads_kb_and_refuses_junk() {
        assert_eq!(
            mem_total("MemFree: 1 kB\nMemTotal:  8000 kB\n"),
            Some(8000 * 1024)
        );
        assert_eq!(mem_total("MemTotal: lots\n"), None);
        assert_eq!(mem_total(""), None);
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(3 << 29), "1.5 GiB");
    }
}
