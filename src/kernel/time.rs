//! Virtual time: `u64` nanoseconds since the start of a run. The model never reads a wall clock.

/// A point in, or a span of, virtual time in nanoseconds.
pub type Nanos = u64;

/// One millisecond of virtual time.
pub const MILLISECOND: Nanos = 1_000_000;
/// One second of virtual time.
pub const SECOND: Nanos = 1_000_000_000;

/// Formats a virtual time as seconds with millisecond precision, e.g. `12.345s`.
pub fn fmt_secs(t: Nanos) -> String {
    format!("{}.{:03}s", t / SECOND, (t % SECOND) / MILLISECOND)
}
