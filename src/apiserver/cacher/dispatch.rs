//! Event dispatch of a Cacher (`cacher.go dispatchEvents`, `dispatchEvent`, `cache_watcher.go
//! add`/`process`, `watch_cache_interval.go`): offering each event to the watchers whose scope
//! and selector match, per-watcher buffers and the shared time budget, slow readers refilled
//! from the ring, periodic bookmarks, storage bookmarks and watch deadlines.

use super::run_journal::JournalRef;
use super::*;
use crate::proto::Actor;
use crate::proto::api::Obj;

/// A multicast's target: the connection, the reading client, and a tag (0: unused here).
type Target = crate::proto::MulticastTarget;

/// One event's dispatch pass over its candidate watchers (see [`Cacher::process_event`]): what
/// goes out in multicasts, what goes through the watchers' buffers, and how many events were
/// sent.
struct Pass<'e> {
    event: &'e CacheEvent,
    /// Mutant `cacher_reorder`: every watcher goes through its buffer.
    no_fast_path: bool,
    /// The watchers that take the event as it is, at once.
    fast: Vec<Target>,
    /// The same, for each event type a selector turns the event into.
    fast_converted: Vec<(EventType, Vec<Target>)>,
    /// The watchers that take it through their buffer, and as which type.
    buffered: Vec<(ConnId, EventType)>,
    sent: u64,
}

impl Pass<'_> {
    /// Offers the event to candidates `0..len` (`candidate(n)`: the connection, with the
    /// [`GONE`] mark if it was removed, and whether its scope is known to contain the key).
    #[inline(always)]
    fn run(
        &mut self,
        watchers: &mut WatcherTable,
        len: usize,
        candidate: impl Fn(usize) -> Option<(ConnId, bool)>,
    ) {
        use crate::kernel::prefetch::AHEAD;
        for n in 0..len {
            // Watchers are scattered in the table: ask for the next ones early, in two stages
            // (the slot number, then the watcher's lane).
            if let Some((ahead, _)) = candidate(n + 2 * AHEAD) {
                watchers.prefetch_slot(ahead & !GONE);
            }
            if let Some((ahead, _)) = candidate(n + AHEAD) {
                watchers.prefetch_lane(ahead & !GONE);
            }
            let Some((conn, in_scope)) = candidate(n).filter(|&(c, _)| c & GONE == 0) else {
                continue;
            };
            self.offer_one(watchers, conn, in_scope, None);
        }
    }

    /// Offers the event to the watcher on `conn` through its lane. A fast lane in scope that
    /// takes it joins `join`'s journal, if given (its last RV sent is now the journal's).
    /// Returns its client's number if it joined.
    #[inline(always)]
    fn offer_one(
        &mut self,
        watchers: &mut WatcherTable,
        conn: ConnId,
        in_scope: bool,
        join: Option<JournalRef>,
    ) -> Option<u32> {
        let (lane, w) = watchers.dispatch_view(conn)?;
        let event = self.event;
        if lane.fast && in_scope && !self.no_fast_path {
            // A client with no selector, reading at once, in scope: the lane is all it takes
            // (the body is not read).
            if event.rv > lane.rv_sent {
                lane.rv_sent = event.rv;
                self.sent += 1;
                self.fast.push((conn, lane.client(), 0));
                if let Some(r) = join {
                    WatcherTable::join(lane, r);
                    return Some(lane.client);
                }
            }
            return None;
        }
        if !((in_scope || w.scope.contains(&event.key)) && event.rv > lane.rv_sent) {
            return None;
        }
        let kind = selected_kind(&w.selector, event)?;
        if w.read_rate != ReadRate::Instant || w.replay.is_some() || self.no_fast_path {
            self.buffered.push((conn, kind));
            return None;
        }
        lane.rv_sent = event.rv;
        self.sent += 1;
        if kind == event.kind {
            self.fast.push((conn, w.client, 0));
        } else {
            match self.fast_converted.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, group)) => group.push((conn, w.client, 0)),
                None => self.fast_converted.push((kind, vec![(conn, w.client, 0)])),
            }
        }
        None
    }

    /// Offers the event to a prefix's set of watchers (`entries`, every scope containing the
    /// key) that keeps the run journal `r` (`run_journal.rs`): its members take the event
    /// together, by their entry in the journal's list (no lane is read), if it is newer than
    /// the journal's RV; every other watcher is offered it through its lane, as
    /// [`Pass::run`] does, and joins if it takes it through the fast path. The targets come out
    /// in connection order, as [`Pass::run`] gives them.
    fn run_journaled(&mut self, watchers: &mut WatcherTable, entries: &[ConnId], r: JournalRef) {
        let mut journal = watchers.take_journal(r);
        let advance = self.event.rv > journal.rv;
        let join = advance.then_some(r);
        // The members' targets go through locals (the compiler keeps a `Vec` reached through
        // `self` in memory, a load and a store of its length per member); a watcher offered
        // the event through its lane gets them back for the call.
        let mut fast = std::mem::take(&mut self.fast);
        let mut next = std::mem::take(&mut journal.next);
        next.reserve(entries.len());
        let mut sent = 0;
        let (mut m, mut l) = (0, 0);
        for &entry in entries {
            let conn = entry & !GONE;
            // Members are a subset of the entries, in the same order: skip those removed.
            while journal.members.get(m).is_some_and(|&(c, _)| c < conn) {
                m += 1;
            }
            let member = match journal.members.get(m) {
                Some(&(c, client)) if c == conn => {
                    m += 1;
                    Some(client)
                }
                _ => None,
            };
            if entry & GONE != 0 {
                continue;
            }
            if let Some(client) = member {
                while journal.left.get(l).is_some_and(|&c| c < conn) {
                    l += 1;
                }
                if journal.left.get(l) != Some(&conn) {
                    if advance {
                        sent += 1;
                        fast.push((conn, Actor::Client(client), 0));
                    }
                    next.push((conn, client));
                    continue;
                }
            }
            self.fast = fast;
            let joined = self.offer_one(watchers, conn, true, join);
            fast = std::mem::take(&mut self.fast);
            if let Some(client) = joined {
                next.push((conn, client));
            }
        }
        self.fast = fast;
        self.sent += sent;
        journal.next = next;
        let rv = if advance { self.event.rv } else { journal.rv };
        watchers.put_back_journal(r, journal, rv);
    }
}

impl Cacher {
    pub(super) fn arm_bookmark_tick(&mut self, now: Nanos, out: &mut Out<'_>, rng: &mut RngStream) {
        if self.bookmark_tick_armed || !self.watchers.iter_unordered().any(|(_, w)| w.bookmarks) {
            return;
        }
        self.bookmark_tick_armed = true;
        // wait.Jitter(time.Second, 0.25): uniform in [1 s, 1.25 s].
        let period = 1_000_000_000 + rng.below(250_000_001);
        out.timer(now + period, self.timer(CacherTimer::BookmarkTick));
    }

    /// A new event from etcd on `key` (`new` is its new version, `None` for a deletion): record
    /// it in the cache, the event made by `build` from the key's previous version in the store
    /// (one store walk), and dispatch it to every watcher it matches. The watchers closed for
    /// being too slow are pushed to `closed` (an out-parameter, not a returned `Vec`: building
    /// one piece by piece and copying it whole made the copy wait for the store buffer, which
    /// holds the cache's cold writes, to drain; issue 16).
    pub fn process_event(
        &mut self,
        now: Nanos,
        key: &Key,
        new: Option<Obj>,
        build: impl FnOnce(Option<Obj>) -> CacheEvent,
        out: &mut Out<'_>,
        closed: &mut Vec<ConnId>,
    ) {
        let event = self.cache.process_change(key, new, build);
        self.last_processed_rv = self.last_processed_rv.max(event.rv);
        self.shadows.record(
            event.rv,
            event.time_ns,
            event.bytes,
            self.cache.store_bytes(),
        );
        let mut merged = std::mem::take(&mut *self.candidates);
        let candidates = match self.index.single_source(&event.key) {
            Some(run) => run,
            None => {
                self.index.candidates(&event.key, &mut merged);
                CandidateRun::Merged(&merged)
            }
        };
        // Watchers that read as fast as events arrive get the event in one multicast step (one
        // per event type their selectors turn it into); the others go through their buffers one
        // by one, after (their messages are sent at once, the multicasts at the end, so the
        // order of what goes out is the same either way).
        let mut pass = Pass {
            event: &event,
            // Mutant `cacher_reorder` lives in `offer`.
            no_fast_path: self.mutants.cacher_reorder,
            fast: out.targets_buffer(candidates.len()),
            fast_converted: Vec::new(),
            buffered: Vec::new(),
            sent: 0,
        };
        // One loop per kind of run, so that the common one (every watcher of a prefix, all in
        // scope) decides nothing per candidate but what its lane says.
        let watchers = &mut self.watchers;
        match candidates {
            CandidateRun::Prefix(set) => {
                let entries = &set.entries[..];
                let journal = (entries.len() >= *self.journal_min_watchers && !pass.no_fast_path)
                    .then(|| watchers.open_journal(set.journal.get()))
                    .flatten();
                set.journal.set(journal);
                match journal {
                    Some(r) => pass.run_journaled(watchers, entries, r),
                    None => pass.run(watchers, entries.len(), |n| {
                        entries.get(n).map(|&c| (c, true))
                    }),
                }
            }
            CandidateRun::Others(entries) => pass.run(watchers, entries.len(), |n| {
                entries.get(n).map(|&c| (c, false))
            }),
            CandidateRun::Merged(list) => pass.run(watchers, list.len(), |n| list.get(n).copied()),
        }
        let Pass {
            fast,
            fast_converted,
            buffered,
            sent,
            ..
        } = pass;
        self.counters.events_sent += sent;
        *self.candidates = merged;
        for (conn, kind) in buffered {
            let converted = CacheEvent {
                kind,
                ..event.clone()
            };
            if !self.offer(now, conn, &converted, out) {
                closed.push(conn);
            }
        }
        if fast.is_empty() {
            out.recycle_targets(fast);
        } else {
            out.multicast(fast, Dir::ToClient, Msg::ApiWatch(object_event(&event)));
        }
        for (kind, group) in fast_converted {
            let ev = object_event_as(&event, kind);
            out.multicast(group, Dir::ToClient, Msg::ApiWatch(ev));
        }
    }

    /// A storage bookmark (etcd progress notify): moves the cache RV; never forwarded as is.
    pub fn storage_bookmark(&mut self, rv: i64) {
        self.cache.update_resource_version(rv);
        self.last_processed_rv = self.last_processed_rv.max(rv);
    }

    /// Offers one event to a watcher; false if the watcher was closed for being too slow.
    fn offer(&mut self, now: Nanos, conn: ConnId, event: &CacheEvent, out: &mut Out<'_>) -> bool {
        let Some(mut w) = self.watchers.checkout(conn) else {
            return true;
        };
        w.drain(now);
        // The channel sizes differ between configurations: followed ones must take the same
        // branch, and block for the same number of slots.
        let held = w.held.len() as u64;
        if w.replay.is_some() {
            self.shadows
                .check(&(held < w.chan), |m, _| held < w.shadow_chans[m]);
        } else {
            let over = |capacity: u64| (w.buffered >= capacity).then(|| w.buffered + 1 - capacity);
            self.shadows
                .check(&over(w.capacity), |m, _| over(2 * w.shadow_chans[m] + 1));
        }
        if w.replay.is_some() {
            if held < w.chan {
                w.held.push_back(event.clone());
                self.watchers.insert(conn, w);
                return true;
            }
            // The input channel is full while the watcher is still replaying history.
            let remaining = w
                .replay
                .as_ref()
                .map(|r| r.end_index - r.next_index)
                .unwrap_or(0);
            let slots = remaining + w.buffered;
            return self.block(now, conn, w, slots, event, out);
        }
        if w.buffered < w.capacity {
            if self.mutants.cacher_reorder {
                // Mutant: hold each event and deliver it after the next, newer one.
                if w.held.is_empty() {
                    w.held.push_back(event.clone());
                    self.watchers.insert(conn, w);
                    return true;
                }
                self.deliver(conn, &mut w, event, out);
                for e in std::mem::take(&mut w.held) {
                    send(out, conn, object_event(&e));
                }
                self.watchers.insert(conn, w);
                return true;
            }
            self.deliver(conn, &mut w, event, out);
            self.watchers.insert(conn, w);
            return true;
        }
        let over = w.buffered + 1 - w.capacity;
        self.block(now, conn, w, over, event, out)
    }

    /// The dispatcher blocked on a full watcher: it waits for at most the budget it can take; if
    /// the client frees a slot in time the event is delivered, else the watcher is closed
    /// (`cacheWatcher.add` with the budget timer; simplification: other watchers are not delayed).
    fn block(
        &mut self,
        now: Nanos,
        conn: ConnId,
        mut w: CacheWatcher,
        slots: u64,
        event: &CacheEvent,
        out: &mut Out<'_>,
    ) -> bool {
        let available = self.budget.take_available(now);
        match w.time_to_free(slots) {
            Some(wait) if wait <= available => {
                self.budget.return_unused(available - wait);
                w.drain(now + wait);
                if w.replay.is_some() {
                    w.held.push_back(event.clone());
                } else {
                    self.deliver(conn, &mut w, event, out);
                }
                self.watchers.insert(conn, w);
                true
            }
            _ => {
                self.counters.watchers_closed_slow += 1;
                self.remove_watcher(conn);
                send(out, conn, ApiWatchEvent::Closed);
                false
            }
        }
    }

    fn deliver(
        &mut self,
        conn: ConnId,
        w: &mut CacheWatcher,
        event: &CacheEvent,
        out: &mut Out<'_>,
    ) {
        send(out, conn, object_event(event));
        w.rv_sent = event.rv;
        w.buffered += 1;
        self.counters.events_sent += 1;
    }

    /// A slow watcher's interval refills from the ring: if the ring has wrapped past the
    /// interval's next index the watch ends silently (`cache interval invalidated`).
    pub fn interval_refill(&mut self, now: Nanos, conn: ConnId, out: &mut Out<'_>) -> bool {
        let Some(mut w) = self.watchers.checkout(conn) else {
            return true;
        };
        let Some(replay) = w.replay.clone() else {
            return true;
        };
        w.drain(now);
        let invalidated = replay.next_index < self.cache.start_index();
        self.shadows
            .check(&invalidated, |_, s| replay.next_index < s.start_index());
        if invalidated {
            self.counters.intervals_invalidated += 1;
            self.remove_watcher(conn);
            send(out, conn, ApiWatchEvent::Closed);
            return false;
        }
        let chunk_end = replay.end_index.min(replay.next_index + INTERVAL_BUFFER);
        self.send_range(conn, &mut w, replay.next_index, chunk_end, out);
        if chunk_end < replay.end_index {
            w.replay = Some(Replay {
                next_index: chunk_end,
                end_index: replay.end_index,
            });
            let wait = w.time_to_free(w.buffered).unwrap_or(Nanos::MAX / 4);
            out.timer(
                now.saturating_add(wait),
                self.timer(CacherTimer::IntervalRefill(conn)),
            );
        } else {
            w.replay = None;
            let held: Vec<CacheEvent> = w.held.iter().cloned().collect();
            w.held = Vector::new();
            for e in held {
                if e.rv > w.rv_sent {
                    self.deliver(conn, &mut w, &e, out);
                }
            }
        }
        self.watchers.insert(conn, w);
        true
    }

    /// The dispatcher's bookmark tick: every watcher that allows bookmarks and is due gets a
    /// BOOKMARK at the last processed RV, if that is newer than the watcher's start
    /// (`bookmark_floor`), again at the same RV while nothing newer arrives
    /// (`cache_watcher.go process`).
    pub fn bookmark_tick(&mut self, now: Nanos, out: &mut Out<'_>, rng: &mut RngStream) {
        if !self.bookmark_tick_armed {
            return; // a tick of a previous incarnation
        }
        self.bookmark_tick_armed = false;
        let rv = self.last_processed_rv;
        let lost = self.bookmarks_lost_before_first_event && rv == 0;
        // The watchers filed as due (`popExpiredWatchers`), each checked against its own fields:
        // exactly those a walk over every watcher would pick.
        let watchers = &self.watchers;
        let popped = self.bookmark_queue.pop_due(now, || {
            watchers
                .iter_unordered()
                .map(|(c, w)| (c, w.next_bookmark_ns))
                .collect()
        });
        let mut due: Vec<ConnId> = Vec::with_capacity(popped.len());
        due.extend(
            popped
                .iter()
                .filter(|&&(_, c)| {
                    self.watchers.get(c).is_some_and(|w| {
                        w.bookmarks
                            && w.replay.is_none()
                            && w.next_bookmark_ns.is_some_and(|t| t <= now)
                    })
                })
                .map(|&(_, c)| c),
        );
        due.sort_unstable();
        due.dedup();
        for &conn in &due {
            if let Some(mut w) = self.watchers.get_mut(conn) {
                if lost {
                    // `popExpiredWatchers` without re-filing them.
                    w.next_bookmark_ns = None;
                    continue;
                }
                if rv > w.bookmark_floor {
                    let rv_sent = w.rv_sent();
                    *rv_sent = (*rv_sent).max(rv);
                    send(
                        out,
                        conn,
                        ApiWatchEvent::Bookmark {
                            rv,
                            initial_events_end: false,
                        },
                    );
                    self.counters.bookmarks_sent += 1;
                }
                w.next_bookmark_ns =
                    next_bookmark_time(now, w.deadline_ns, self.bookmark_interval_ns)
                        .map(|t| bookmark_bucket_start(self.created_ns, t));
                self.bookmark_queue.file(conn, w.next_bookmark_ns);
            }
        }
        // Watchers popped but passed over (one still replaying its interval) stay filed.
        for (t, conn) in popped {
            if due.binary_search(&conn).is_err()
                && self
                    .watchers
                    .get(conn)
                    .is_some_and(|w| w.next_bookmark_ns == Some(t))
            {
                self.bookmark_queue.file(conn, Some(t));
            }
        }
        self.arm_bookmark_tick(now, out, rng);
    }

    /// A watch reached its deadline: the server ends it cleanly.
    pub fn watch_deadline(&mut self, conn: ConnId, out: &mut Out<'_>) -> bool {
        if self.remove_watcher(conn) {
            send(out, conn, ApiWatchEvent::Closed);
            true
        } else {
            false
        }
    }
}

/// `nextBookmarkTime`: the earlier of now + the bookmark frequency (1 min) and the deadline - 2 s;
/// none once that has passed (a time equal to now still counts).
pub fn next_bookmark_time(now: Nanos, deadline_ns: Nanos, frequency_ns: Nanos) -> Option<Nanos> {
    let heartbeat = now + frequency_ns;
    let before_deadline = deadline_ns.saturating_sub(BOOKMARK_BEFORE_DEADLINE_NS);
    let next = heartbeat.min(before_deadline);
    (next >= now).then_some(next)
}

/// `watcherBookmarkTimeBuckets`: a watcher due at `t` is filed in the bucket of the whole second
/// (counted from the cacher's creation) that `t` falls in, and is popped by the first bookmark
/// tick at or after that bucket's start. So a bookmark can go out up to a second before `t`, and
/// the minutes do not drift with the ticks' lateness; the bookmark due 2 s before a deadline can
/// go out twice (popped early, re-filed in the same bucket).
pub fn bookmark_bucket_start(created_ns: Nanos, t: Nanos) -> Nanos {
    const SECOND: Nanos = 1_000_000_000;
    created_ns + (t.saturating_sub(created_ns) / SECOND) * SECOND
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::proto::out::{Effect, Host};
    use crate::proto::{Actor, Notice};

    /// A host whose connection `n` reads for client `n` and that records every effect (also
    /// the journal tests' host).
    #[derive(Default)]
    pub(in crate::apiserver::cacher) struct Recorder {
        pub applied: Vec<Effect>,
    }

    impl Host for Recorder {
        fn connect(&mut self, _client: Actor, _server: Actor) -> ConnId {
            0
        }
        fn is_open(&self, _conn: ConnId) -> bool {
            true
        }
        fn client_of(&self, conn: ConnId) -> Option<Actor> {
            Some(Actor::Client(conn as u32))
        }
        fn apply(&mut self, effects: &mut Vec<Effect>, notices: &mut Vec<Notice>) {
            self.applied.append(effects);
            notices.clear();
        }
    }

    fn pod(name: &str) -> Key {
        Key::new(&format!("/registry/pods/ns/{name}"))
    }

    /// The receivers of each effect, in order: `m` a multicast, `s` a send.
    fn receivers(effects: &[Effect]) -> Vec<(char, Vec<ConnId>)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Multicast { targets, .. } => {
                    Some(('m', targets.iter().map(|t| t.0).collect()))
                }
                Effect::Send {
                    conn,
                    msg: Msg::ApiWatch(ApiWatchEvent::Object { .. }),
                    ..
                } => Some(('s', vec![*conn])),
                _ => None,
            })
            .collect()
    }

    /// Dispatch through the watchers' lanes: a watcher of one object gets only that object's
    /// events although nothing else about it keeps it off the one-step multicast (no selector,
    /// reads at once); a watcher reading at a rate goes through its buffer; an event at or below
    /// what a watcher was sent is not sent again.
    #[test]
    fn each_watcher_gets_the_events_of_its_scope_once() {
        let mut host = Recorder::default();
        let mut rng = RngStream::new(1, "test");
        let mut c = Cacher::new(
            0,
            0,
            Key::new("/registry/pods/"),
            WatchCache::with_bounds(100, 100, 100, 0, false),
            0,
            BOOKMARK_FREQUENCY_NS,
        );
        c.replace(OrdMap::new(), 1, 0);
        let scopes = [
            (1, KeyRange::Single(pod("a")), ReadRate::Instant),
            (
                2,
                KeyRange::Prefix(Key::new("/registry/pods/")),
                ReadRate::Instant,
            ),
            (
                3,
                KeyRange::Prefix(Key::new("/registry/pods/")),
                ReadRate::PerSecond(1_000),
            ),
            (
                4,
                KeyRange::Prefix(Key::new("/registry/pods/ns/")),
                ReadRate::Instant,
            ),
        ];
        for (conn, scope, rate) in scopes {
            let mut out = Out::new(0, &mut host);
            let started = c.add_watcher(
                0,
                conn,
                scope,
                Selector::everything(),
                false,
                Nanos::MAX,
                rate,
                Initial::Now,
                &mut out,
                &mut rng,
            );
            assert!(started);
        }
        host.applied.clear();
        let event = |c: &mut Cacher, host: &mut Recorder, name: &str, rv: i64| {
            let key = pod(name);
            let new = crate::apiserver::watch_cache::Obj {
                rv,
                bytes: 10,
                labels: 0,
            };
            let now = rv as Nanos;
            let mut out = Out::new(now, host);
            let build = |prev: Option<crate::apiserver::watch_cache::Obj>| CacheEvent {
                kind: if prev.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                },
                key: key.clone(),
                rv,
                bytes: 10,
                prev_rv: prev.map_or(0, |p| p.rv),
                labels: 0,
                prev_labels: 0,
                time_ns: now,
            };
            let mut closed = Vec::new();
            c.process_event(now, &key, Some(new), build, &mut out, &mut closed);
            assert!(closed.is_empty());
        };
        event(&mut c, &mut host, "b", 2);
        event(&mut c, &mut host, "a", 3);
        assert_eq!(
            receivers(&host.applied),
            vec![
                ('s', vec![3]),
                ('m', vec![2, 4]),
                ('s', vec![3]),
                ('m', vec![1, 2, 4]),
            ]
        );
        host.applied.clear();
        // The storage re-delivers RV 3 (a replayed etcd event): nobody gets it twice.
        event(&mut c, &mut host, "a", 3);
        assert_eq!(receivers(&host.applied), vec![]);
    }
}
