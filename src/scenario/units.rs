//! Durations (`"250ms"`, `"5s"`, `"5m"`, `"1h"`) and sizes (`1024`, `"10KiB"`, `"1.5MiB"`) as
//! scenario files write them (SPEC §2). Virtual time is u64 nanoseconds throughout.

use std::fmt;

use serde::{Deserialize, Deserializer, de};

/// A span of virtual time in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DurationNs(pub u64);

impl DurationNs {
    /// Whole seconds.
    pub const fn from_secs(s: u64) -> Self {
        DurationNs(s * 1_000_000_000)
    }
    /// Whole milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        DurationNs(ms * 1_000_000)
    }
    /// Nanoseconds.
    pub const fn as_ns(self) -> u64 {
        self.0
    }
    /// Seconds as a float, for reports.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

/// Parses `"<number><unit>"` with unit ns, us, ms, s, m or h (`"1.5s"` allowed; `"0s"` is zero).
pub fn parse_duration(text: &str) -> Result<DurationNs, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| {
            format!("duration \"{text}\" has no unit (use ns, us, ms, s, m or h, e.g. \"5s\")")
        })?;
    let (num, unit) = t.split_at(split);
    let mult: f64 = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => {
            return Err(format!(
                "duration \"{text}\" has unknown unit \"{unit}\" (use ns, us, ms, s, m or h)"
            ));
        }
    };
    let value: f64 = num
        .parse()
        .map_err(|_| format!("duration \"{text}\" does not start with a number"))?;
    let ns = value * mult;
    if !ns.is_finite() || ns < 0.0 || ns > u64::MAX as f64 {
        return Err(format!("duration \"{text}\" is out of range"));
    }
    Ok(DurationNs(ns.round() as u64))
}

impl fmt::Display for DurationNs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_ns(self.0))
    }
}

/// Formats nanoseconds the way scenario files write them, using the largest exact unit.
pub fn format_ns(ns: u64) -> String {
    const UNITS: [(u64, &str); 6] = [
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    if ns == 0 {
        return "0s".to_string();
    }
    for (size, unit) in UNITS {
        if ns.is_multiple_of(size) {
            return format!("{}{}", ns / size, unit);
        }
    }
    unreachable!("every integer is a multiple of 1ns")
}

impl<'de> Deserialize<'de> for DurationNs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = DurationNs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string with a unit, e.g. \"250ms\", \"5s\", \"5m\", \"1h\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationNs, E> {
                parse_duration(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// A size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bytes(pub u64);

/// Parses `"10KiB"`, `"1.5MiB"`, `"2GiB"`, `"100B"`, `"1kB"`, `"1MB"` or a bare number.
pub fn parse_bytes(text: &str) -> Result<Bytes, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        u => {
            return Err(format!(
                "size \"{text}\" has unknown unit \"{u}\" (use B, KiB, MiB, GiB, kB, MB, GB)"
            ));
        }
    };
    let value: f64 = num
        .parse()
        .map_err(|_| format!("size \"{text}\" does not start with a number"))?;
    let b = value * mult;
    if !b.is_finite() || b < 0.0 || b > u64::MAX as f64 {
        return Err(format!("size \"{text}\" is out of range"));
    }
    Ok(Bytes(b.round() as u64))
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a size: an integer number of bytes or a string like \"10KiB\" or \"1.5MiB\"",
                )
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bytes, E> {
                u64::try_from(v)
                    .map(Bytes)
                    .map_err(|_| E::custom(format!("size {v} is negative")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
                parse_bytes(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}
