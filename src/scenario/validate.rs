//! Semantic checks after parsing: values the type system allows but the modelled systems do
//! not (SPEC §2, §3). Each failure is a [`Problem`] at the offending key.

use std::collections::HashMap;

use super::errors::Problem;
use super::population::FaultKind;
use super::selectors;
use super::steps::Step;
use super::types::{Scenario, WatchCacheMode};
use super::units::DurationNs;

/// etcd raises a progress-notify interval below this to it (`minWatchProgressInterval`).
const MIN_PROGRESS_NOTIFY: DurationNs = DurationNs::from_millis(100);

/// Returns `Err(Problem::at(key, message))` unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $key:expr, $($message:tt)+) => {
        if !$cond {
            return Err(Problem::at($key, format!($($message)+)));
        }
    };
}

/// Checks a parsed scenario; the first problem found is returned.
pub(crate) fn validate(s: &Scenario) -> Result<(), Problem> {
    ensure!(s.duration.0 > 0, "duration", "must be greater than 0s");
    etcd(s)?;
    apiserver(s)?;
    let lb = &s.load_balancer;
    ensure!(
        (0.0..=1.0).contains(&lb.goaway_chance),
        "load_balancer.goaway_chance",
        "must be a probability in [0, 1], got {}",
        lb.goaway_chance
    );
    populations(s)?;
    faults(s)?;
    if let Some(rate) = s.bounds.relists_per_client_hour {
        rate_ok(rate, "bounds.relists_per_client_hour")?;
    }
    if let Some(rate) = s.bounds.etcd_lists_per_client_hour {
        rate_ok(rate, "bounds.etcd_lists_per_client_hour")?;
    }
    steps(s)?;
    super::limits::check(s)?;
    Ok(())
}

fn rate_ok(rate: f64, key: &str) -> Result<(), Problem> {
    ensure!(
        rate.is_finite() && rate >= 0.0,
        key,
        "must be a finite number >= 0, got {rate}"
    );
    Ok(())
}

fn etcd(s: &Scenario) -> Result<(), Problem> {
    let e = &s.etcd;
    ensure!(
        e.max_request_bytes.0 >= 1,
        "etcd.max_request_bytes",
        "must be at least 1 byte"
    );
    let pni = e.progress_notify_interval;
    ensure!(
        pni.0 == 0 || pni >= MIN_PROGRESS_NOTIFY,
        "etcd.progress_notify_interval",
        "{pni} is below etcd's minimum of 100ms (etcd raises lower values to 100ms); write \"0s\" or at least \"100ms\""
    );
    Ok(())
}

fn apiserver(s: &Scenario) -> Result<(), Problem> {
    let a = &s.apiserver;
    ensure!(a.count >= 1, "apiserver.count", "must be at least 1");
    ensure!(
        a.bookmark_interval.0 > 0,
        "apiserver.bookmark_interval",
        "must be greater than 0s"
    );
    let wc = &a.watch_cache;
    ensure!(
        wc.fresh.0 > 0,
        "apiserver.watch_cache.fresh",
        "must be greater than 0s"
    );
    match wc.mode {
        WatchCacheMode::Fixed => {
            ensure!(
                wc.capacity >= 1,
                "apiserver.watch_cache.capacity",
                "must be at least 1 when mode = \"fixed\""
            );
        }
        WatchCacheMode::Dynamic => {
            ensure!(
                wc.lower >= 1,
                "apiserver.watch_cache.lower",
                "must be at least 1"
            );
            ensure!(
                wc.lower <= wc.upper_bound(),
                "apiserver.watch_cache.lower",
                "lower ({}) must not exceed upper ({})",
                wc.lower,
                wc.upper_bound()
            );
        }
        WatchCacheMode::Off => {}
    }
    Ok(())
}

/// `resources`, `clients` and `workload`: unique names, declared resources, valid list RVs.
fn populations(s: &Scenario) -> Result<(), Problem> {
    let mut resources: HashMap<&str, usize> = HashMap::new();
    for (i, r) in s.resources.iter().enumerate() {
        let key = format!("resources.{i}.name");
        ensure!(!r.name.is_empty(), key, "must not be empty");
        if let Some(first) = resources.insert(&r.name, i) {
            return Err(Problem::at(
                key,
                format!(
                    "duplicate resource `{}` (also resources.{first}.name)",
                    r.name
                ),
            ));
        }
    }
    let mut clients: HashMap<&str, usize> = HashMap::new();
    for (i, c) in s.clients.iter().enumerate() {
        let key = format!("clients.{i}.name");
        ensure!(!c.name.is_empty(), key, "must not be empty");
        if let Some(first) = clients.insert(&c.name, i) {
            return Err(Problem::at(
                key,
                format!("duplicate client `{}` (also clients.{first}.name)", c.name),
            ));
        }
        declared(s, &c.resource, format!("clients.{i}.resource"))?;
        let rv = &c.list_rv;
        ensure!(
            rv.is_empty() || (rv.bytes().all(|b| b.is_ascii_digit()) && rv.parse::<u64>().is_ok()),
            format!("clients.{i}.list_rv"),
            "must be \"0\" (any, from the cache), \"\" (consistent) or a resource version like \"123\", got \"{rv}\""
        );
    }
    for (i, w) in s.workload.iter().enumerate() {
        declared(s, &w.resource, format!("workload.{i}.resource"))?;
        rate_ok(w.rate, &format!("workload.{i}.rate"))?;
    }
    Ok(())
}

/// `resource` must name a `[[resources]]` entry.
fn declared(s: &Scenario, resource: &str, key: String) -> Result<(), Problem> {
    if s.resources.iter().any(|r| r.name == resource) {
        return Ok(());
    }
    let names: Vec<String> = s
        .resources
        .iter()
        .map(|r| format!("`{}`", r.name))
        .collect();
    let known = if names.is_empty() {
        "none are declared".to_string()
    } else {
        format!("declared: {}", names.join(", "))
    };
    Err(Problem::at(
        key,
        format!("unknown resource `{resource}`: add a [[resources]] entry ({known})"),
    ))
}

/// An apiserver index must be below `apiserver.count`.
fn server_ok(s: &Scenario, server: u32, key: String) -> Result<(), Problem> {
    let count = s.apiserver.count;
    ensure!(
        server < count,
        key,
        "apiserver index {server} does not exist (apiserver.count = {count}, so 0..={})",
        count.saturating_sub(1)
    );
    Ok(())
}

/// A client instance is `<clients.N.name>-<i>` with `i < clients.N.count`.
fn client_instance_ok(s: &Scenario, client: &str, key: String) -> Result<(), Problem> {
    let exists = client.rsplit_once('-').is_some_and(|(name, i)| {
        i.bytes().all(|b| b.is_ascii_digit())
            && i.parse::<u64>()
                .is_ok_and(|i| s.clients.iter().any(|c| c.name == name && i < c.count))
    });
    ensure!(
        exists,
        key,
        "`{client}` is not a client instance: write `<clients.N.name>-<i>` with i < that population's count, e.g. `kubelet-0`"
    );
    Ok(())
}

fn faults(s: &Scenario) -> Result<(), Problem> {
    rate_ok(
        s.faults.watch_disconnect_rate,
        "faults.watch_disconnect_rate",
    )?;
    for (i, f) in s.faults.at.iter().enumerate() {
        let path = format!("faults.at.{i}");
        let takes_server = matches!(
            f.kind,
            FaultKind::RestartApiserver | FaultKind::PartitionApiserver | FaultKind::StallApiserver
        );
        if let Some(server) = f.server {
            ensure!(
                takes_server,
                format!("{path}.server"),
                "only apiserver faults take `server`"
            );
            server_ok(s, server, format!("{path}.server"))?;
        }
        match (&f.client, f.kind) {
            (Some(client), FaultKind::RestartClient | FaultKind::DisconnectWatch) => {
                client_instance_ok(s, client, format!("{path}.client"))?
            }
            (None, FaultKind::RestartClient | FaultKind::DisconnectWatch) => {
                return Err(Problem::at(
                    format!("{path}.client"),
                    "restart_client and disconnect_watch each requires `client`, e.g. client = \"kubelet-3\"",
                ));
            }
            (Some(_), _) => {
                return Err(Problem::at(
                    format!("{path}.client"),
                    "only restart_client and disconnect_watch take `client`",
                ));
            }
            (None, _) => {}
        }
    }
    Ok(())
}

/// Which protocol a scripted watch belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WatchKind {
    Etcd,
    Api,
}

impl WatchKind {
    fn opener(self) -> &'static str {
        match self {
            WatchKind::Etcd => "etcd.watch",
            WatchKind::Api => "api.watch",
        }
    }
}

fn steps(s: &Scenario) -> Result<(), Problem> {
    for (i, step) in s.steps.iter().enumerate() {
        let at = step.at();
        ensure!(
            at <= s.duration,
            format!("steps.{i}.at"),
            "{at} is after the end of the run (duration = {})",
            s.duration
        );
        step_fields(s, i, step)?;
    }
    // Watch ids, in the order the steps run.
    let mut opened: HashMap<&str, (WatchKind, usize)> = HashMap::new();
    for (i, step) in s.steps_in_order() {
        let key = format!("steps.{i}.id");
        match step {
            Step::EtcdWatch { id, .. } | Step::ApiWatch { id, .. } => {
                let kind = if matches!(step, Step::EtcdWatch { .. }) {
                    WatchKind::Etcd
                } else {
                    WatchKind::Api
                };
                if let Some((_, first)) = opened.insert(id, (kind, i)) {
                    return Err(Problem::at(
                        key,
                        format!("duplicate watch id `{id}` (also steps.{first}.id)"),
                    ));
                }
            }
            Step::EtcdCancel { id, .. } | Step::EtcdProgress { id, .. } => {
                refers_to_watch(s, &opened, i, step, id, WatchKind::Etcd)?
            }
            Step::ApiUnwatch { id, .. } => {
                refers_to_watch(s, &opened, i, step, id, WatchKind::Api)?
            }
            _ => {}
        }
    }
    Ok(())
}

/// Per-op field checks of `steps.<i>`.
fn step_fields(s: &Scenario, i: usize, step: &Step) -> Result<(), Problem> {
    let key = |field: &str| format!("steps.{i}.{field}");
    match step {
        Step::EtcdPut { key: k, .. } => {
            ensure!(
                !k.is_empty(),
                key("key"),
                "etcd keys must not be empty (etcd: \"key is not provided\")"
            );
        }
        Step::EtcdDelete { key: k, prefix, .. }
        | Step::EtcdRange { key: k, prefix, .. }
        | Step::EtcdWatch { key: k, prefix, .. } => {
            // `key = ""` with `prefix = true` covers the whole keyspace (`etcdctl get "" --prefix`).
            ensure!(
                *prefix || !k.is_empty(),
                key("key"),
                "an empty etcd key needs `prefix = true` (the whole keyspace)"
            );
        }
        Step::ApiCreate {
            resource, labels, ..
        }
        | Step::ApiUpdate {
            resource, labels, ..
        } => {
            declared(s, resource, key("resource"))?;
            for (k, v) in labels.iter().flatten() {
                selectors::validate_label_key(k)
                    .and_then(|()| selectors::validate_label_value(v))
                    .map_err(|m| Problem::at(key(&format!("labels.{k}")), m))?;
            }
        }
        Step::ApiDelete { resource, .. } => {
            declared(s, resource, key("resource"))?;
        }
        Step::ApiList {
            server,
            resource,
            label_selector,
            field_selector,
            ..
        }
        | Step::ApiWatch {
            server,
            resource,
            label_selector,
            field_selector,
            ..
        } => {
            server_ok(s, *server, key("server"))?;
            declared(s, resource, key("resource"))?;
            if let Some(text) = label_selector {
                selectors::parse_label_selector(text.trim())
                    .map_err(|m| Problem::at(key("label_selector"), m))?;
            }
            if let Some(text) = field_selector {
                selectors::parse_field_selector(text.trim())
                    .map_err(|m| Problem::at(key("field_selector"), m))?;
            }
        }
        Step::FaultRestartApiserver {
            server: Some(server),
            ..
        }
        | Step::FaultPartitionApiserver {
            server: Some(server),
            ..
        }
        | Step::FaultStallApiserver {
            server: Some(server),
            ..
        } => server_ok(s, *server, key("server"))?,
        Step::FaultRestartClient { client, .. } => client_instance_ok(s, client, key("client"))?,
        _ => {}
    }
    Ok(())
}

/// `etcd.cancel`, `etcd.progress` and `api.unwatch` name a watch of their kind opened earlier.
fn refers_to_watch(
    s: &Scenario,
    opened: &HashMap<&str, (WatchKind, usize)>,
    i: usize,
    step: &Step,
    id: &str,
    want: WatchKind,
) -> Result<(), Problem> {
    let key = format!("steps.{i}.id");
    let op = step.op_name();
    match opened.get(id) {
        Some((kind, _)) if *kind == want => Ok(()),
        Some((kind, first)) => Err(Problem::at(
            key,
            format!(
                "`{id}` is an {} (steps.{first}); {op} needs an {} id",
                kind.opener(),
                want.opener()
            ),
        )),
        None => {
            let later = s.steps.iter().position(|other| match other {
                Step::EtcdWatch { id: other_id, .. } | Step::ApiWatch { id: other_id, .. } => {
                    other_id == id
                }
                _ => false,
            });
            let hint = match later {
                Some(j) => format!(": it is opened later, by steps.{j} at {}", s.steps[j].at()),
                None => String::new(),
            };
            Err(Problem::at(
                key,
                format!(
                    "no {} with id `{id}` runs before this step{hint}",
                    want.opener()
                ),
            ))
        }
    }
}
