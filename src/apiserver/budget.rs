//! The dispatcher's time budget for blocked watchers (kube-apiserver `cacher/time_budget.go`):
//! refills at 50 ms per second up to 100 ms; `take_available` hands out all of it; unused time
//! can be returned.

use crate::kernel::Nanos;

/// `refreshPerSecond`.
pub const REFRESH_PER_SECOND_NS: Nanos = 50_000_000;
/// `maxBudget`.
pub const MAX_BUDGET_NS: Nanos = 100_000_000;

/// A shared, slowly refilling budget.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TimeBudget {
    budget_ns: Nanos,
    max_ns: Nanos,
    refresh_per_second_ns: Nanos,
    last_ns: Nanos,
}

impl TimeBudget {
    /// Production values, starting empty at `now`.
    pub fn new(now: Nanos) -> Self {
        Self::with(now, MAX_BUDGET_NS, REFRESH_PER_SECOND_NS)
    }

    /// Custom values (the upstream test uses a 200 ms cap).
    pub fn with(now: Nanos, max_ns: Nanos, refresh_per_second_ns: Nanos) -> Self {
        TimeBudget {
            budget_ns: 0,
            max_ns,
            refresh_per_second_ns,
            last_ns: now,
        }
    }

    fn refill(&mut self, now: Nanos) {
        if now > self.last_ns {
            let elapsed = (now - self.last_ns) as u128;
            let add = elapsed * self.refresh_per_second_ns as u128 / 1_000_000_000;
            self.budget_ns = (self.budget_ns as u128 + add).min(self.max_ns as u128) as Nanos;
        }
        self.last_ns = now;
    }

    /// Takes everything available now.
    pub fn take_available(&mut self, now: Nanos) -> Nanos {
        self.refill(now);
        std::mem::take(&mut self.budget_ns)
    }

    /// Returns unused time (capped at the maximum).
    pub fn return_unused(&mut self, unused_ns: Nanos) {
        self.budget_ns = (self.budget_ns + unused_ns).min(self.max_ns);
    }
}

impl TimeBudget {
    /// The explorer's time abstraction: forgets when the budget was last refilled.
    pub fn erase_times(&mut self) {
        self.last_ns = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;
    const S: Nanos = 1_000 * MS;

    /// k8s-unit-test-expectations.md case 24, `TestTimeBudget` (max 200 ms, 50 ms/s); the clock
    /// never goes back in the model, so those rows are omitted.
    #[test]
    fn refills_slowly_and_caps() {
        let mut b = TimeBudget::with(0, 200 * MS, 50 * MS);
        assert_eq!(b.take_available(0), 0);
        assert_eq!(b.take_available(10 * S), 200 * MS);
        assert_eq!(b.take_available(12 * S), 100 * MS);
        b.return_unused(50 * MS);
        assert_eq!(b.take_available(12 * S), 50 * MS);
        assert_eq!(b.take_available(12 * S), 0);
        assert_eq!(b.take_available(12 * S + 600 * S), 200 * MS);
        b.return_unused(10 * S);
        assert_eq!(b.take_available(12 * S + 600 * S), 200 * MS);
    }
}
