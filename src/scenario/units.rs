//! Durations (`"250ms"`, `"5s"`, `"5m"`, `"1h"`) and sizes (`1024`, `"10KiB"`, `"1.5MiB"`) as
//! scenario files write them (SPEC §2). Virtual time is u64 nanoseconds throughout.
//!
//! Both parsers use exact decimal arithmetic (no floats), so `parse_duration(&format_ns(n))`
//! gives back `n` for every `u64`. Fractions finer than the base unit round half up.

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

/// Splits `"1.5MiB"` into `("1.5", "MiB")`: the leading run of digits and dots, then the rest.
fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    text.split_at(end)
}

/// `num * mult` for a plain decimal `num` ("12", "1.5", ".5", "3."), rounded half up to an
/// integer. `None` if `num` is not a decimal number or the result does not fit in a u64.
fn scale_decimal(num: &str, mult: u64) -> Option<u64> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mult = u128::from(mult);
    let mut whole: u128 = 0;
    for b in int.bytes() {
        whole = whole.checked_mul(10)?.checked_add(u128::from(b - b'0'))?;
    }
    // Digits beyond 18 cannot change the result for multipliers below 10^13 except through
    // rounding of the 19th digit, which is below one unit: ignore them.
    let frac = &frac[..frac.len().min(18)];
    let mut frac_value: u128 = 0;
    for b in frac.bytes() {
        frac_value = frac_value * 10 + u128::from(b - b'0');
    }
    let denom = 10u128.pow(frac.len() as u32);
    let frac_scaled = (frac_value * mult + denom / 2) / denom;
    let total = whole.checked_mul(mult)?.checked_add(frac_scaled)?;
    u64::try_from(total).ok()
}

/// Parses `"<number><unit>"` with unit ns, us (or µs), ms, s, m or h (`"1.5s"` allowed;
/// `"0s"` is zero). No sign, no exponent, no space between number and unit.
pub fn parse_duration(text: &str) -> Result<DurationNs, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!("duration \"{text}\" is negative"));
    }
    let (num, unit) = split_number(t);
    if num.is_empty() {
        return Err(format!(
            "duration \"{text}\" does not start with a number (write e.g. \"250ms\", \"5s\", \"5m\", \"1h\")"
        ));
    }
    let mult: u64 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "" => {
            return Err(format!(
                "duration \"{text}\" has no unit (use ns, us, ms, s, m or h, e.g. \"5s\")"
            ));
        }
        _ => {
            return Err(format!(
                "duration \"{text}\" has unknown unit \"{}\" (use ns, us, ms, s, m or h)",
                unit.trim()
            ));
        }
    };
    scale_decimal(num, mult)
        .map(DurationNs)
        .ok_or_else(|| format!("duration \"{text}\" is not a number with a unit, or is too large"))
}

impl fmt::Display for DurationNs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_ns(self.0))
    }
}

/// Formats nanoseconds the way scenario files write them, using the largest exact unit
/// (`0` is `"0s"`, `90_000_000_000` is `"90s"`, `1_500_000` is `"1500us"`).
pub fn format_ns(ns: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
    ];
    if ns == 0 {
        return "0s".to_string();
    }
    UNITS
        .iter()
        .find(|(size, _)| ns.is_multiple_of(*size))
        .map(|(size, unit)| format!("{}{unit}", ns / size))
        .unwrap_or_else(|| format!("{ns}ns"))
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

/// Parses `"10KiB"`, `"1.5MiB"`, `"2GiB"`, `"100B"`, `"1kB"`, `"1MB"`, `"1GB"` or a bare number
/// of bytes (fractions round half up to whole bytes).
pub fn parse_bytes(text: &str) -> Result<Bytes, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!("size \"{text}\" is negative"));
    }
    let (num, unit) = split_number(t);
    if num.is_empty() {
        return Err(format!("size \"{text}\" does not start with a number"));
    }
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        u => {
            return Err(format!(
                "size \"{text}\" has unknown unit \"{u}\" (use B, KiB, MiB, GiB, kB, MB, GB)"
            ));
        }
    };
    scale_decimal(num, mult)
        .map(Bytes)
        .ok_or_else(|| format!("size \"{text}\" is not a number with a unit, or is too large"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_decimal_rounds_half_up_and_refuses_junk() {
        assert_eq!(scale_decimal("1.5", 1024 * 1024), Some(1_572_864));
        assert_eq!(scale_decimal(".5", 10), Some(5));
        assert_eq!(scale_decimal("3.", 10), Some(30));
        assert_eq!(scale_decimal("1.5", 1), Some(2));
        assert_eq!(scale_decimal(".", 1), None);
        assert_eq!(scale_decimal("1.2.3", 1), None);
        assert_eq!(scale_decimal("18446744073709551616", 1), None);
        assert_eq!(scale_decimal("18446744073709551615", 1), Some(u64::MAX));
    }
}
