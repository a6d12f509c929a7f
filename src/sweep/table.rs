//! The fixed-column table printed on stdout: one line per grid point with the varied keys, the
//! mean over seeds of the figures with an `in_table` heading (the CSV column stems are in
//! [`FIGURES`]: `relists/cl-h` = `relists_per_client_hour`, `p410/reconn` =
//! `p_410_on_reconnect`, `etcd_lists` = `lists_from_etcd`, `cache_cap` = `cache_capacity` (the
//! largest ring capacity reached), `peak_lists` = `peak_concurrent_lists`, `staleness_s` =
//! `max_staleness_seconds`), and `ok` or `VIOLATED` (with how many seeds and which invariants or
//! bounds).

use std::fmt::Write;

use super::aggregate::{FIGURES, SweepResult};

/// A number for the table: integers in full up to 10^12, otherwise 4 significant digits.
pub fn short_number(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    if v.fract() == 0.0 && v.abs() < 1e12 {
        return format!("{v:.0}");
    }
    let magnitude = v.abs().log10().floor() as i32;
    if (-3..12).contains(&magnitude) {
        let decimals = (3 - magnitude).max(0) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.3e}")
    }
}

/// Renders the table (header line, then one line per point).
pub fn render(result: &SweepResult) -> String {
    let figures: Vec<(usize, &str)> = FIGURES
        .iter()
        .enumerate()
        .filter_map(|(i, f)| f.in_table.map(|h| (i, h)))
        .collect();
    let key_widths: Vec<usize> = result
        .axes
        .iter()
        .map(|a| {
            a.values
                .iter()
                .map(|v| v.label.chars().count())
                .chain([a.key.chars().count()])
                .max()
                .unwrap_or(1)
        })
        .collect();
    let fig_widths: Vec<usize> = figures.iter().map(|(_, n)| n.len().max(12)).collect();
    let mut o = String::new();
    for (a, w) in result.axes.iter().zip(&key_widths) {
        let _ = write!(o, "{:<w$}  ", a.key);
    }
    for ((_, name), w) in figures.iter().zip(&fig_widths) {
        let _ = write!(o, "{name:>w$}  ");
    }
    let _ = writeln!(o, "verdict");
    for p in &result.points {
        for (label, w) in result.labels(p).iter().zip(&key_widths) {
            let _ = write!(o, "{label:<w$}  ");
        }
        for ((i, _), w) in figures.iter().zip(&fig_widths) {
            let _ = write!(o, "{:>w$}  ", short_number(p.figures[*i].mean));
        }
        if p.held() {
            let _ = writeln!(o, "ok");
        } else {
            let _ = writeln!(
                o,
                "VIOLATED ({}/{} seeds: {})",
                p.violated_seeds.len(),
                result.seeds.len(),
                p.violations.join(", ")
            );
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_numbers() {
        assert_eq!(short_number(0.0), "0");
        assert_eq!(short_number(20572160.0), "20572160");
        assert_eq!(short_number(1.23456), "1.235");
        assert_eq!(short_number(1234.5678), "1235");
        assert_eq!(short_number(0.012346), "0.01235");
        assert_eq!(short_number(1.5e13), "1.500e13");
    }
}
