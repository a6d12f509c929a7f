//! client-go's reflector backoff (`wait.NewExponentialBackoffManager(800ms, 30s, 2min, 2.0, 1.0)`,
//! k8s-cacher-protocol.md §8.1): waits of d·[1, 2) with d = 0.8, 1.6, ... 25.6 s, then 30 s (so
//! [30, 60) s), reset to 0.8 s when more than 2 min passed since the previous backoff.

use crate::kernel::{Nanos, RngStream};

/// Initial backoff.
pub const INITIAL_NS: Nanos = 800_000_000;
/// Cap.
pub const CAP_NS: Nanos = 30_000_000_000;
/// Reset after this long without a backoff.
pub const RESET_NS: Nanos = 120_000_000_000;

/// One reflector's backoff manager.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Backoff {
    duration_ns: Nanos,
    capped: bool,
    last_ns: Option<Nanos>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            duration_ns: INITIAL_NS,
            capped: false,
            last_ns: None,
        }
    }
}

impl Backoff {
    /// The wait before the next attempt (`Backoff()` then `wait.Backoff.Step` with jitter 1.0).
    pub fn next_wait(&mut self, now: Nanos, rng: &mut RngStream) -> Nanos {
        if self
            .last_ns
            .is_some_and(|t| now.saturating_sub(t) > RESET_NS)
        {
            *self = Backoff::default();
        }
        self.last_ns = Some(now);
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
        // Jitter(d, 1.0) = d + rand·d.
        d + (rng.unit() * d as f64) as Nanos
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

    #[test]
    fn doubles_from_0_8s_to_the_30s_cap_with_jitter() {
        let mut b = Backoff::default();
        let mut rng = RngStream::new(1, "t");
        let bases = [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0, 30.0];
        for (i, base) in bases.iter().enumerate() {
            let w = b.next_wait(i as u64, &mut rng) as f64 / S;
            assert!(
                w >= *base && w < 2.0 * base,
                "step {i}: {w} not in [{base}, {})",
                2.0 * base
            );
        }
    }

    #[test]
    fn resets_after_two_quiet_minutes() {
        let mut b = Backoff::default();
        let mut rng = RngStream::new(1, "t");
        for i in 0..5 {
            b.next_wait(i, &mut rng);
        }
        let w = b.next_wait(5 + RESET_NS + 1, &mut rng) as f64 / S;
        assert!((0.8..1.6).contains(&w), "{w}");
    }
}
