//! The process's lifecycle under faults: restarts (caches rebuilt, connections dropped), partitions
//! from etcd, stalls, and healing.

use super::*;

impl Apiserver {
    /// True while the process is down (between a kill and its start).
    pub fn is_down(&self) -> bool {
        self.down
    }

    /// Kill and restart (after the world reset its connections): caches start cold, after
    /// `down_ns` of downtime (0 = at once).
    pub fn restart(&mut self, scenario: &Scenario, down_ns: Nanos, out: &mut Out<'_>) {
        // The world has reset every connection of this process; start from nothing.
        self.counters.restarts += 1;
        self.etcd_kv = None;
        self.etcd_watch = None;
        self.direct_stream = None;
        self.pending_etcd = OrdMap::new();
        self.waits = Default::default();
        self.parked = Vector::new();
        self.sending = OrdMap::new();
        self.encoders_free_at.0.iter_mut().for_each(|t| *t = 0);
        self.client_watches = OrdMap::new();
        self.direct_watches = OrdMap::new();
        self.held = Vector::new();
        self.counters.lists_in_flight = 0;
        self.counters.list_memory_bytes = 0;
        self.progress_armed = false;
        self.progress_timer_ns = 0;
        self.consistency_due = Vector::new();
        self.snapshot_compactor_due = 0;
        self.compactor_t = 0;
        self.compactor_rev = 0;
        for c in self.cachers.iter().flatten() {
            self.retired.absorb(&c.totals());
            for (m, slot) in self.retired_shadows.iter_mut().enumerate() {
                *slot = match (*slot, c.shadows.get(m)) {
                    (Some((cap, bytes)), Some(w)) => {
                        Some((cap.max(w.capacity_max()), bytes.max(w.bytes_max())))
                    }
                    _ => None,
                };
            }
        }
        self.cachers = Default::default();
        self.down_until_ns = out.now + down_ns;
        if down_ns > 0 {
            self.down = true;
            out.timer(
                out.now + down_ns,
                Timer::Apiserver(self.index, ApiTimer::Start),
            );
        } else {
            self.down = false;
            self.start(scenario, out);
        }
    }

    pub(super) fn hangup_etcd(&mut self, out: &mut Out<'_>) {
        for conn in [
            self.etcd_kv.take(),
            self.etcd_watch.take(),
            self.direct_stream.take(),
        ]
        .into_iter()
        .flatten()
        {
            out.send(conn, Dir::ToServer, Msg::Hangup);
        }
    }

    /// Cut off from etcd for `for_ns`: the cacher watches break, re-lists fail until healed.
    pub fn partition(&mut self, for_ns: Option<Nanos>, out: &mut Out<'_>) {
        self.hangup_etcd(out);
        self.pending_etcd = OrdMap::new();
        self.partitioned = true;
        for r in 0..self.cachers.len() {
            self.cacher_failed(r as ResourceId, out);
        }
        if let Some(d) = for_ns {
            out.timer(out.now + d, Timer::Apiserver(self.index, ApiTimer::Heal));
        }
    }

    /// Stop processing etcd watch events for `for_ns` (the cache lags; it stays ready).
    pub fn stall(&mut self, for_ns: Option<Nanos>, out: &mut Out<'_>) {
        self.stalled = true;
        if let Some(d) = for_ns {
            out.timer(out.now + d, Timer::Apiserver(self.index, ApiTimer::Heal));
        }
    }

    /// End of a partition or stall: held etcd events are processed in order.
    pub fn heal(&mut self, scenario: &Scenario, out: &mut Out<'_>) {
        self.partitioned = false;
        if self.stalled {
            self.stalled = false;
            let held: Vec<WatchResponse> = self.held.iter().cloned().collect();
            self.held = Vector::new();
            for resp in held {
                self.apply_etcd_watch(resp.watch_id, &resp, scenario, out);
            }
        }
    }
}
