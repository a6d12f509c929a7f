//! client-go's reflector backoff, one per reflector, shared by the ListAndWatch loop and the
//! watch's 429 / connection-refused retries (k8s-cacher-protocol.md §8.1). Waits are d·[1, 2)
//! (jitter 1.0) with d = 0.8, 1.6, ... 25.6 s, then 30 s (so [30, 60) s). What resets d to 0.8 s
//! depends on the client-go version (k8s-rules-1.31-1.37.md row 9):
//!
//! - [`ResetRule::AfterQuietPeriod`], client-go 1.27-1.35: `wait.NewExponentialBackoffManager(800ms,
//!   30s, 2m, 2.0, 1.0, clock)`; `exponentialBackoffManagerImpl.getNextBackoff`
//!   (apimachinery `pkg/util/wait/backoff.go`, v0.31.14) resets when more than 2 min passed since
//!   the previous backoff (`lastBackoffStart`, set on every call).
//! - [`ResetRule::Periodic`], client-go 1.36+: `wait.Backoff{800ms, x2, jitter 1.0, cap 30s,
//!   Steps 38}.DelayWithReset(clock, 2m)` (`reflector.go NewReflectorWithOptions`, v0.37.2);
//!   `backoffManager.Step` (`backoff.go`, v0.37.2) resets when more than 2 min passed since
//!   `lastStart`, which is set when the reflector is created and *only* on a reset: under
//!   continuous failure the wait falls back to 0.8-1.6 s about every 2 minutes.

use crate::kernel::{Nanos, RngStream};

/// Initial backoff.
pub const INITIAL_NS: Nanos = 800_000_000;
/// Cap.
pub const CAP_NS: Nanos = 30_000_000_000;
/// Reset interval.
pub const RESET_NS: Nanos = 120_000_000_000;

/// When the backoff returns to its initial step (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ResetRule {
    /// client-go 1.27-1.35: after 2 min without a backoff.
    #[default]
    AfterQuietPeriod,
    /// client-go 1.36+: 2 min after the reflector's creation or the last reset, whatever
    /// happened meanwhile.
    Periodic,
}

/// One reflector's backoff manager.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Backoff {
    rule: ResetRule,
    duration_ns: Nanos,
    capped: bool,
    /// `AfterQuietPeriod`: when the last backoff was taken (`lastBackoffStart`); `Periodic`:
    /// when the manager was created or last reset (`lastStart`). None until the reflector starts.
    last_ns: Option<Nanos>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(ResetRule::AfterQuietPeriod)
    }
}

impl Backoff {
    /// A fresh backoff following `rule`.
    pub fn new(rule: ResetRule) -> Self {
        Backoff {
            rule,
            duration_ns: INITIAL_NS,
            capped: false,
            last_ns: None,
        }
    }

    /// The reset rule this backoff follows.
    pub fn rule(&self) -> ResetRule {
        self.rule
    }

    /// The reflector is created (started) at `now`: both managers take `clock.Now()` then.
    pub fn created_at(&mut self, now: Nanos) {
        self.last_ns = Some(now);
    }

    /// The wait before the next attempt: the reset check, then `wait.Backoff.Step` with jitter
    /// 1.0 (`Jitter(d, 1.0)` = d + rand·d).
    pub fn next_wait(&mut self, now: Nanos, rng: &mut RngStream) -> Nanos {
        let expired = self
            .last_ns
            .is_some_and(|t| now.saturating_sub(t) > RESET_NS);
        match self.rule {
            ResetRule::AfterQuietPeriod => {
                if expired {
                    self.reset();
                }
                self.last_ns = Some(now);
            }
            ResetRule::Periodic => {
                if expired {
                    self.reset();
                    self.last_ns = Some(now);
                }
                self.last_ns.get_or_insert(now);
            }
        }
        let d = self.duration_ns;
        if !self.capped {
            let next = d.saturating_mul(2);
            if next > CAP_NS {
                self.duration_ns = CAP_NS;
                self.capped = true;
            } else {
                self.duration_ns = next;
            }
        }
        d + (rng.unit() * d as f64) as Nanos
    }

    fn reset(&mut self) {
        self.duration_ns = INITIAL_NS;
        self.capped = false;
    }

    /// The base d of the next wait if it were taken at `now` (the wait is in [d, 2d)).
    pub fn next_base(&self, now: Nanos) -> Nanos {
        if self
            .last_ns
            .is_some_and(|t| now.saturating_sub(t) > RESET_NS)
        {
            INITIAL_NS
        } else {
            self.duration_ns
        }
    }
}

impl Backoff {
    /// The explorer's time abstraction: forgets when the last backoff happened.
    pub fn erase_times(&mut self) {
        self.last_ns = self.last_ns.map(|_| 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: f64 = 1e9;
    const SEC: Nanos = 1_000_000_000;

    #[test]
    fn doubles_from_0_8s_to_the_30s_cap_with_jitter() {
        for rule in [ResetRule::AfterQuietPeriod, ResetRule::Periodic] {
            let mut b = Backoff::new(rule);
            b.created_at(0);
            let mut rng = RngStream::new(1, "t");
            let bases = [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0, 30.0];
            for (i, base) in bases.iter().enumerate() {
                let w = b.next_wait(i as u64, &mut rng) as f64 / S;
                assert!(
                    w >= *base && w < 2.0 * base,
                    "{rule:?} step {i}: {w} not in [{base}, {})",
                    2.0 * base
                );
            }
        }
    }

    #[test]
    fn resets_after_two_quiet_minutes() {
        for rule in [ResetRule::AfterQuietPeriod, ResetRule::Periodic] {
            let mut b = Backoff::new(rule);
            b.created_at(0);
            let mut rng = RngStream::new(1, "t");
            for i in 0..5 {
                b.next_wait(i, &mut rng);
            }
            let w = b.next_wait(5 + RESET_NS + 1, &mut rng) as f64 / S;
            assert!((0.8..1.6).contains(&w), "{rule:?}: {w}");
        }
    }

    #[test]
    fn under_continuous_failure_only_the_1_36_rule_resets() {
        // A backoff every 30 s for 5 min (continuous failure): 1.27-1.35 never resets (never 2
        // quiet minutes); 1.36+ resets at the first call more than 2 min after creation (150 s)
        // and again more than 2 min after that reset (300 s).
        let mut old = Backoff::new(ResetRule::AfterQuietPeriod);
        let mut new = Backoff::new(ResetRule::Periodic);
        old.created_at(0);
        new.created_at(0);
        let mut rng = RngStream::new(1, "t");
        let mut resets_new = Vec::new();
        for k in 0..=10u64 {
            let t = k * 30 * SEC;
            let bo = old.next_base(t);
            let bn = new.next_base(t);
            if k > 0 && bn == INITIAL_NS {
                resets_new.push(k * 30);
            }
            if k >= 6 {
                assert_eq!(bo, CAP_NS, "old rule at {} s", k * 30);
            }
            old.next_wait(t, &mut rng);
            new.next_wait(t, &mut rng);
        }
        assert_eq!(resets_new, [150, 300]);
    }
}
