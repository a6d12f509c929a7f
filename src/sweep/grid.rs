//! The grid of a sweep: `--vary KEY=V1,V2,...` arguments, the range shorthand, and the order in
//! which grid points are enumerated (the first `--vary` key varies slowest).
//!
//! A value is read exactly as `--set` reads one (a TOML value, else a plain string), with one
//! addition: a value of the form `A..B*F` or `A..B+S` (A, B, F, S numbers) expands to a range:
//! - `A..B*F`: A, A·F, A·F², … while ≤ B (F > 1, A > 0), e.g. `100..102400*2` (11 values);
//! - `A..B+S`: A, A+S, A+2S, … while ≤ B (S > 0), e.g. `0..60+15` (5 values).
//!
//! When A, B and the step are all integers the values are integers; otherwise they are floats
//! (written with a decimal point so that TOML reads them as floats). Values are separated by
//! commas outside brackets, braces and quotes, so `--vary k=[1,2],[3]` gives two arrays.

use crate::scenario::{parse_bytes, parse_duration};

/// Most values one range may expand to (a guard against typos like `1..1e12+1`).
pub const MAX_RANGE_VALUES: usize = 10_000;

/// One value of a varied key.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisValue {
    /// VALUE as passed to the scenario loader in `KEY=VALUE` (TOML text, or a bare string).
    pub text: String,
    /// How the value is shown in the table, the CSV and the plot: a string's contents, or the
    /// TOML text of any other value.
    pub label: String,
}

/// One `--vary` key with its values, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Dotted scenario key, as for `--set`.
    pub key: String,
    /// Its values, in the order given (ranges expanded in place).
    pub values: Vec<AxisValue>,
}

/// How the values of an axis can be read as numbers, for ordering and for the plot's x-axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberKind {
    /// TOML integers or floats.
    Plain,
    /// Duration strings (`"5s"`, `"1m"`), read as seconds.
    Seconds,
    /// Size strings (`"10KiB"`), read as bytes.
    Bytes,
}

impl Axis {
    /// The numeric value of every value, if all of them are numbers of one kind: all TOML
    /// numbers, else all durations (seconds), else all sizes (bytes); `None` otherwise.
    pub fn numbers(&self) -> Option<(NumberKind, Vec<f64>)> {
        let all = |f: &dyn Fn(&AxisValue) -> Option<f64>| -> Option<Vec<f64>> {
            self.values.iter().map(f).collect()
        };
        if let Some(v) = all(&|v| match parse_value(&v.text) {
            toml::Value::Integer(i) => Some(i as f64),
            toml::Value::Float(f) if f.is_finite() => Some(f),
            _ => None,
        }) {
            return Some((NumberKind::Plain, v));
        }
        let string = |v: &AxisValue| match parse_value(&v.text) {
            toml::Value::String(s) => Some(s),
            _ => None,
        };
        if let Some(v) = all(&|v| {
            string(v)
                .and_then(|s| parse_duration(&s).ok())
                .map(|d| d.as_secs_f64())
        }) {
            return Some((NumberKind::Seconds, v));
        }
        all(&|v| {
            string(v)
                .and_then(|s| parse_bytes(&s).ok())
                .map(|b| b.0 as f64)
        })
        .map(|v| (NumberKind::Bytes, v))
    }
}

/// VALUE as one TOML value, or else as a plain string: the same reading as `--set`.
pub fn parse_value(text: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {text}\n")) {
        Ok(mut table) if table.len() == 1 => table
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(text.to_string())),
        _ => toml::Value::String(text.to_string()),
    }
}

/// Parses one `--vary KEY=V1,V2,...` argument.
pub fn parse_vary(raw: &str) -> Result<Axis, String> {
    let Some((key, list)) = raw.split_once('=') else {
        return Err(format!("--vary: expected KEY=V1,V2,..., got `{raw}`"));
    };
    let key = key.trim();
    if key.is_empty() || key.split('.').any(|s| s.trim().is_empty()) {
        return Err(format!(
            "--vary: KEY in `{raw}` must be a dotted path like `apiserver.watch_cache.upper`"
        ));
    }
    let mut values = Vec::new();
    for token in split_values(list) {
        let token = token.trim();
        if token.is_empty() {
            return Err(format!("--vary {key}: empty value in `{list}`"));
        }
        match expand_range(token) {
            Some(Ok(expanded)) => values.extend(expanded.into_iter().map(|text| AxisValue {
                label: text.clone(),
                text,
            })),
            Some(Err(e)) => return Err(format!("--vary {key}: {e}")),
            None => values.push(AxisValue {
                label: match parse_value(token) {
                    toml::Value::String(s) => s,
                    _ => token.to_string(),
                },
                text: token.to_string(),
            }),
        }
    }
    if values.is_empty() {
        return Err(format!("--vary {key}: no values"));
    }
    Ok(Axis {
        key: key.to_string(),
        values,
    })
}

/// Splits a value list at commas that are outside `[]`, `{}` and quotes.
pub fn split_values(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in list.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '[' | '{' => depth += 1,
                ']' | '}' => depth -= 1,
                ',' if depth <= 0 => {
                    out.push(std::mem::take(&mut current));
                    continue;
                }
                _ => {}
            },
        }
        current.push(c);
    }
    out.push(current);
    out
}

/// A number of a range: an integer when written as one.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn parse(text: &str) -> Option<Num> {
        let text = text.trim();
        if let Ok(i) = text.parse::<i64>() {
            return Some(Num::Int(i));
        }
        // Only plain decimal numbers: not "inf", "NaN" or anything else Rust's parser accepts.
        let plain = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
            && text.chars().any(|c| c.is_ascii_digit());
        if !plain {
            return None;
        }
        text.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Num::Float)
    }

    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// Writes a float so that TOML reads it back as a float, rounded to 12 significant digits (so
/// `0.1..0.3+0.1` gives `0.3`, not `0.30000000000000004`).
fn float_text(v: f64) -> String {
    let rounded: f64 = format!("{v:.11e}").parse().unwrap_or(v);
    let s = format!("{rounded}");
    if s.contains(['.', 'e', 'E']) {
        s
    } else {
        format!("{s}.0")
    }
}

/// Expands the range shorthand `A..B*F` / `A..B+S`. `None` if `token` is not a range (it does
/// not start with a number followed by `..`); `Some(Err)` if it is one but malformed or empty.
pub fn expand_range(token: &str) -> Option<Result<Vec<String>, String>> {
    let (start, rest) = token.trim().split_once("..")?;
    let a = Num::parse(start)?;
    Some(expand(token, a, rest))
}

fn expand(token: &str, a: Num, rest: &str) -> Result<Vec<String>, String> {
    let shape =
        || format!("`{token}` is not a range: write A..B*F (geometric) or A..B+S (arithmetic)");
    // The operator is the last `*`, else the last `+` that is not an exponent sign.
    let (b_text, op, step_text) = if let Some(i) = rest.rfind('*') {
        (&rest[..i], '*', &rest[i + 1..])
    } else {
        let i = rest
            .char_indices()
            .filter(|&(i, c)| c == '+' && i > 0 && !rest[..i].ends_with(['e', 'E']))
            .map(|(i, _)| i)
            .next_back()
            .ok_or_else(shape)?;
        (&rest[..i], '+', &rest[i + 1..])
    };
    let b = Num::parse(b_text).ok_or_else(shape)?;
    let step = Num::parse(step_text).ok_or_else(shape)?;
    let (af, bf, sf) = (a.as_f64(), b.as_f64(), step.as_f64());
    if af > bf {
        return Err(format!(
            "range `{token}` is empty: its start is above its end"
        ));
    }
    let too_many =
        || format!("range `{token}` has more than {MAX_RANGE_VALUES} values; use a larger step");
    let mut out = Vec::new();
    match (a, b, step, op) {
        (Num::Int(a), Num::Int(b), Num::Int(f), '*') => {
            if f < 2 || a < 1 {
                return Err(format!(
                    "range `{token}`: a geometric range needs a start above 0 and a factor above 1"
                ));
            }
            let mut v = a;
            loop {
                out.push(v.to_string());
                match v.checked_mul(f) {
                    Some(next) if next <= b => v = next,
                    _ => break,
                }
            }
        }
        (Num::Int(a), Num::Int(b), Num::Int(s), '+') => {
            if s < 1 {
                return Err(format!(
                    "range `{token}`: an arithmetic range needs a step above 0"
                ));
            }
            let mut v = a;
            loop {
                out.push(v.to_string());
                if out.len() > MAX_RANGE_VALUES {
                    return Err(too_many());
                }
                match v.checked_add(s) {
                    Some(next) if next <= b => v = next,
                    _ => break,
                }
            }
        }
        (_, _, _, '*') => {
            if sf <= 1.0 || af <= 0.0 {
                return Err(format!(
                    "range `{token}`: a geometric range needs a start above 0 and a factor above 1"
                ));
            }
            // Compare with a relative tolerance so that 0.1..0.8*2 includes 0.8.
            let limit = bf * (1.0 + 1e-9);
            let mut k = 0i32;
            loop {
                let v = af * sf.powi(k);
                if v > limit {
                    break;
                }
                out.push(float_text(v));
                if out.len() > MAX_RANGE_VALUES {
                    return Err(too_many());
                }
                k += 1;
            }
        }
        _ => {
            if sf <= 0.0 {
                return Err(format!(
                    "range `{token}`: an arithmetic range needs a step above 0"
                ));
            }
            let limit = bf + sf * 1e-9;
            let mut k = 0u32;
            loop {
                let v = af + sf * f64::from(k);
                if v > limit {
                    break;
                }
                out.push(float_text(v));
                if out.len() > MAX_RANGE_VALUES {
                    return Err(too_many());
                }
                k += 1;
            }
        }
    }
    Ok(out)
}

/// Every combination of the axes' values, first axis slowest.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// The varied keys in `--vary` order.
    pub axes: Vec<Axis>,
}

impl Grid {
    /// Builds a grid; refuses no axes and a key varied twice.
    pub fn new(axes: Vec<Axis>) -> Result<Grid, String> {
        if axes.is_empty() {
            return Err("sweep needs at least one --vary KEY=V1,V2,...".to_string());
        }
        for (i, a) in axes.iter().enumerate() {
            if axes[..i].iter().any(|b| b.key == a.key) {
                return Err(format!("--vary {}: the key is varied twice", a.key));
            }
        }
        Ok(Grid { axes })
    }

    /// Number of grid points.
    pub fn len(&self) -> usize {
        self.axes.iter().map(|a| a.values.len()).product()
    }

    /// Whether the grid has no points (never, for a grid made by [`Grid::new`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every point as one value index per axis, in grid order (first axis slowest).
    pub fn points(&self) -> Vec<Vec<usize>> {
        let mut points = vec![Vec::new()];
        for axis in &self.axes {
            points = points
                .into_iter()
                .flat_map(|p| {
                    (0..axis.values.len()).map(move |i| {
                        let mut q = p.clone();
                        q.push(i);
                        q
                    })
                })
                .collect();
        }
        points
    }

    /// The `KEY=VALUE` overrides of one point (value indices per axis), in axis order.
    pub fn overrides(&self, point: &[usize]) -> Vec<String> {
        self.axes
            .iter()
            .zip(point)
            .map(|(a, &i)| format!("{}={}", a.key, a.values[i].text))
            .collect()
    }

    /// A point as `key=label key=label`, for messages.
    pub fn describe(&self, point: &[usize]) -> String {
        self.axes
            .iter()
            .zip(point)
            .map(|(a, &i)| format!("{}={}", a.key, a.values[i].label))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(t: &str) -> Vec<String> {
        expand_range(t).expect("is a range").expect("valid range")
    }

    #[test]
    fn geometric_integer_range() {
        let v = range("100..102400*2");
        assert_eq!(v.len(), 11);
        assert_eq!(v[0], "100");
        assert_eq!(v[10], "102400");
        assert_eq!(range("1..10*3"), ["1", "3", "9"]);
        assert_eq!(range("5..5*2"), ["5"]);
    }

    #[test]
    fn arithmetic_ranges() {
        assert_eq!(range("0..60+15"), ["0", "15", "30", "45", "60"]);
        assert_eq!(range("1..10+4"), ["1", "5", "9"]);
        assert_eq!(range("0.1..0.3+0.1"), ["0.1", "0.2", "0.3"]);
        assert_eq!(range("1..2+0.5"), ["1.0", "1.5", "2.0"]);
        assert_eq!(range("1e2..3e2+1e+2"), ["100.0", "200.0", "300.0"]);
    }

    #[test]
    fn geometric_float_range() {
        assert_eq!(range("0.5..4*2"), ["0.5", "1.0", "2.0", "4.0"]);
        assert_eq!(range("0.1..0.8*2"), ["0.1", "0.2", "0.4", "0.8"]);
    }

    #[test]
    fn non_ranges_and_bad_ranges() {
        assert!(expand_range("5s").is_none());
        assert!(expand_range("round-robin").is_none());
        assert!(expand_range("a..b*2").is_none());
        assert!(expand_range("\"1..2+1\"").is_none());
        for bad in [
            "1..10", "1..10*1", "0..10*2", "10..1+1", "1..10+0", "1..10+-1", "1..x*2", "1..10*y",
            "1..1e9+1",
        ] {
            assert!(
                matches!(expand_range(bad), Some(Err(_))),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn vary_values_parse_like_set_and_split_outside_brackets() {
        let a = parse_vary("x.y=1, 2.5 ,5s,\"0\",[1,2],{a=1,b=2},'p,q'").expect("parses");
        assert_eq!(a.key, "x.y");
        let texts: Vec<&str> = a.values.iter().map(|v| v.text.as_str()).collect();
        assert_eq!(
            texts,
            ["1", "2.5", "5s", "\"0\"", "[1,2]", "{a=1,b=2}", "'p,q'"]
        );
        let labels: Vec<&str> = a.values.iter().map(|v| v.label.as_str()).collect();
        assert_eq!(labels, ["1", "2.5", "5s", "0", "[1,2]", "{a=1,b=2}", "p,q"]);
        let r = parse_vary("k=1..4*2,10").expect("parses");
        let texts: Vec<&str> = r.values.iter().map(|v| v.text.as_str()).collect();
        assert_eq!(texts, ["1", "2", "4", "10"]);
        assert!(parse_vary("novalues").is_err());
        assert!(parse_vary("=1,2").is_err());
        assert!(parse_vary("a..b=1").is_err());
        assert!(parse_vary("k=1,,2").is_err());
        assert!(parse_vary("k=1..10").is_err());
    }

    #[test]
    fn numbers_of_an_axis() {
        let n = |raw: &str| parse_vary(raw).expect("parses").numbers();
        assert_eq!(n("k=1,2.5"), Some((NumberKind::Plain, vec![1.0, 2.5])));
        assert_eq!(n("k=1s,2m"), Some((NumberKind::Seconds, vec![1.0, 120.0])));
        assert_eq!(
            n("k=1KiB,\"2KiB\""),
            Some((NumberKind::Bytes, vec![1024.0, 2048.0]))
        );
        assert_eq!(n("k=1,5s"), None);
        assert_eq!(n("k=round-robin,random"), None);
    }

    #[test]
    fn grid_order_first_key_slowest() {
        let g = Grid::new(vec![
            parse_vary("a=1,2").expect("parses"),
            parse_vary("b=x,y,z").expect("parses"),
        ])
        .expect("grid");
        assert_eq!(g.len(), 6);
        assert_eq!(g.points(), [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]);
        assert_eq!(g.overrides(&[1, 2]), ["a=2", "b=z"]);
        assert_eq!(g.describe(&[0, 1]), "a=1 b=y");
        assert!(Grid::new(vec![]).is_err());
        assert!(
            Grid::new(vec![
                parse_vary("a=1").expect("parses"),
                parse_vary("a=2").expect("parses")
            ])
            .is_err()
        );
    }
}
