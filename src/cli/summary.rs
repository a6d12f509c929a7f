//! Human-readable output of `watchsim run`: the knobs in force first (so a pasted output is a
//! complete bug report), then the results.

use std::fmt::Write;

use crate::report::Report;
use crate::scenario::{LoadedScenario, format_ns};

/// Watch events printed per watch in the human summary.
const SHOWN_EVENTS: usize = 20;

/// Renders the human summary of a run.
pub fn summary(loaded: &LoadedScenario, report: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "watchsim {} run {} (seed {})",
        report.watchsim_version, loaded.origin, report.seed
    );
    write_knobs(&mut o, loaded, report);
    write_results(&mut o, report);
    write_verdicts(&mut o, report);
    o
}

/// The knobs in force: scenario, overrides, etcd, apiservers, resources, clients, faults,
/// workloads, script.
fn write_knobs(o: &mut String, loaded: &LoadedScenario, report: &Report) {
    let s = &loaded.scenario;
    let _ = writeln!(o, "knobs:");
    let _ = writeln!(
        o,
        "  scenario            {} — {}",
        s.name,
        s.description.lines().next().unwrap_or("")
    );
    for ov in &loaded.overrides {
        let _ = writeln!(o, "  --set               {ov}");
    }
    let _ = writeln!(
        o,
        "  duration            {}",
        format_ns((report.virtual_seconds * 1e9) as u64)
    );
    let _ = writeln!(
        o,
        "  etcd                progress_notify_interval={} max_request_bytes={}",
        s.etcd.progress_notify_interval, s.etcd.max_request_bytes.0
    );
    let _ = writeln!(
        o,
        "  apiserver           count={} rules={:?} watch_list={} compaction_interval={} watch_cache={:?}",
        s.apiserver.count,
        s.apiserver.rules,
        s.apiserver.watch_list.unwrap_or(false),
        s.apiserver.compaction_interval,
        s.apiserver.watch_cache.mode
    );
    let _ = writeln!(
        o,
        "  network             latency={} jitter={}",
        s.network.latency, s.network.jitter
    );
    for r in &s.resources {
        let _ = writeln!(
            o,
            "  resource            {} count={} object_bytes={}",
            r.name, r.count, r.object_bytes.0
        );
    }
    for c in &s.clients {
        let _ = writeln!(
            o,
            "  clients             {} x{} {} scope={:?} list_rv=\"{}\" page_size={} bookmarks={} watch_list={}",
            c.name,
            c.count,
            c.resource,
            c.scope,
            c.list_rv,
            c.page_size,
            c.bookmarks,
            c.watch_list.unwrap_or(false)
        );
    }
    if s.faults.watch_disconnect_rate > 0.0 || !s.faults.at.is_empty() {
        let _ = writeln!(
            o,
            "  faults              disconnects={}/client/h for {} ({:?}), scheduled={}",
            s.faults.watch_disconnect_rate,
            s.faults.disconnect_duration,
            s.faults.disconnect_distribution,
            s.faults.at.len()
        );
    }
    for w in &s.workload {
        let _ = writeln!(
            o,
            "  workload            {} {:?} {}/s",
            w.resource, w.kind, w.rate
        );
    }
    let _ = writeln!(o, "  script steps        {}", s.steps.len());
}

/// What the run did: steps, etcd, apiservers, clients, storms, the script and its watches.
fn write_results(o: &mut String, report: &Report) {
    let _ = writeln!(o, "results:");
    let _ = writeln!(
        o,
        "  steps               {} in {:.3}s wall ({:.0} steps/s), peak memory {:.0} MiB",
        report.steps,
        report.wall_seconds,
        report.steps_per_second,
        report.peak_memory_bytes as f64 / 1048576.0
    );
    let e = &report.etcd;
    let _ = writeln!(
        o,
        "  etcd                revision={} compact_revision={} keys={} writes={} ranges={} range_bytes={} watch_events={}",
        e.revision,
        e.compact_revision,
        e.keys,
        e.writes,
        e.range_requests,
        e.range_bytes,
        e.watch_events_sent
    );
    for a in &report.apiservers {
        let _ = writeln!(
            o,
            "  {:<19} lists cache/etcd={}/{} list_bytes={} 410={} 504={} 429={} bookmarks={} slow_closed={} cache_capacity_max={} peak_lists={} restarts={}",
            a.name,
            a.lists_from_cache,
            a.lists_from_etcd,
            a.list_bytes,
            a.too_old_errors,
            a.too_large_errors,
            a.too_many_requests,
            a.bookmarks_sent,
            a.watchers_closed_slow,
            a.cache_capacity_max,
            a.lists_in_flight_max,
            a.restarts
        );
        let _ = writeln!(
            o,
            "  {:<19} etcd_read_bytes={} list_memory_max={} cache_bytes_max={}",
            "", a.etcd_read_bytes, a.list_memory_bytes_max, a.cache_bytes_max
        );
    }
    let c = &report.clients;
    if c.count > 0 {
        let k = &c.relist_causes;
        let _ = writeln!(
            o,
            "  clients             count={} relists={} (410={} 504={} restart={} error={}) per_client_hour={:.3} resumes={} p_410_on_reconnect={:.3} max_staleness={:.3}s time_travels={} converged={}",
            c.count,
            c.relists,
            k.too_old,
            k.too_large,
            k.restart,
            k.error,
            c.relists_per_client_hour,
            c.watch_resumes,
            c.p_410_on_reconnect,
            c.max_staleness_seconds,
            c.time_travels,
            c.converged
        );
        for p in &report.client_populations {
            let _ = writeln!(
                o,
                "  {:<19} x{} lists={} list_latency mean={:.3}s max={:.3}s relists={} max_staleness={:.3}s",
                p.name,
                p.count,
                p.lists,
                p.list_latency_seconds_mean,
                p.list_latency_seconds_max,
                p.relists,
                p.max_staleness_seconds
            );
        }
    }
    let storms: Vec<String> = report
        .series
        .iter()
        .filter(|m| m.relists > 0)
        .map(|m| format!("min {}: {}", m.minute, m.relists))
        .collect();
    if !storms.is_empty() {
        let _ = writeln!(o, "  relists by minute   {}", storms.join(", "));
    }
    for entry in &report.script {
        let _ = writeln!(
            o,
            "  step {:>8} {:<14} {}",
            entry.at, entry.op, entry.result
        );
    }
    for (id, events) in &report.watches {
        let _ = writeln!(o, "  watch {id}: {} events", events.len());
        for ev in events.iter().take(SHOWN_EVENTS) {
            let _ = writeln!(o, "      {ev}");
        }
        if events.len() > SHOWN_EVENTS {
            let _ = writeln!(
                o,
                "      ... {} more (all of them are in --json)",
                events.len() - SHOWN_EVENTS
            );
        }
    }
}

/// The invariants checked and their verdicts, bounds, notes, the trace hash and violations.
fn write_verdicts(o: &mut String, report: &Report) {
    let checked: Vec<&str> = report
        .invariants
        .iter()
        .filter(|i| i.checked)
        .map(|i| i.name.as_str())
        .collect();
    let _ = writeln!(
        o,
        "  invariants checked  {}",
        if checked.is_empty() {
            "none yet".to_string()
        } else {
            checked.join(", ")
        }
    );
    for i in &report.invariants {
        match (i.checked, i.held) {
            (true, false) => {
                let _ = writeln!(
                    o,
                    "  invariant {:<18} VIOLATED {}x (first at step {}): {}",
                    i.name,
                    i.violations,
                    i.first_step.unwrap_or(0),
                    i.message.as_deref().unwrap_or("")
                );
            }
            (false, _) => {
                let _ = writeln!(
                    o,
                    "  invariant {:<18} {}",
                    i.name,
                    i.message.as_deref().unwrap_or("")
                );
            }
            _ => {}
        }
    }
    for b in &report.bounds {
        let _ = writeln!(
            o,
            "  bound {:<22} value={} limit={} {}",
            b.name,
            b.value,
            b.limit,
            if b.held { "ok" } else { "VIOLATED" }
        );
    }
    for n in &report.notes {
        let _ = writeln!(o, "  note: {n}");
    }
    let _ = writeln!(o, "  trace_hash          {}", report.trace_hash);
    let v = report.violations();
    let _ = writeln!(
        o,
        "verdict: {}",
        if v.is_empty() {
            "all checked invariants and bounds held".to_string()
        } else {
            format!("VIOLATED: {}", v.join(", "))
        }
    );
}
