//! `results.csv`: one row per grid point. Header: the varied keys, then `<figure>_mean` and
//! `<figure>_p95` for each figure of [`FIGURES`] in order, then `violated_seeds` (how many of the
//! point's seeds violated an invariant or a bound; 0 = the point held), then the seed spread
//! that `sweep.svg` draws: `<figure>_min`, `<figure>_p5` and `<figure>_max` for each figure in
//! the same order (after the older columns, so that readers by position keep working). Fields are quoted as
//! RFC 4180 says (only when they hold a comma, a quote or a line break); lines end with `\n`.
//! Numbers are written in Rust's shortest round-trip form (`0`, `1.5`, `20572160`).

use std::fmt::Write;

use super::aggregate::{FIGURES, SweepResult};

/// One CSV field, quoted if needed.
pub fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// A number as written in the CSV.
pub fn number(v: f64) -> String {
    if v == 0.0 {
        // Never "-0".
        "0".to_string()
    } else {
        format!("{v}")
    }
}

/// The column names, in order.
pub fn header(result: &SweepResult) -> Vec<String> {
    let mut cols: Vec<String> = result.axes.iter().map(|a| a.key.clone()).collect();
    for f in FIGURES {
        cols.push(format!("{}_mean", f.name));
        cols.push(format!("{}_p95", f.name));
    }
    cols.push("violated_seeds".to_string());
    for f in FIGURES {
        cols.push(format!("{}_min", f.name));
        cols.push(format!("{}_p5", f.name));
        cols.push(format!("{}_max", f.name));
    }
    cols
}

/// The whole file.
pub fn render(result: &SweepResult) -> String {
    let mut out = String::new();
    let line = |cells: Vec<String>| cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(",");
    let _ = writeln!(out, "{}", line(header(result)));
    for p in &result.points {
        let mut cells: Vec<String> = result.labels(p).into_iter().map(str::to_string).collect();
        for s in &p.figures {
            cells.push(number(s.mean));
            cells.push(number(s.p95));
        }
        cells.push(p.violated_seeds.len().to_string());
        for s in &p.figures {
            cells.push(number(s.min));
            cells.push(number(s.p5));
            cells.push(number(s.max));
        }
        let _ = writeln!(out, "{}", line(cells));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(number(-0.0), "0");
        assert_eq!(number(1.5), "1.5");
        assert_eq!(number(20572160.0), "20572160");
    }
}
