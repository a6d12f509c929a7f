//! The recommendation line: the smallest value of the first varied key at which the scenario's
//! bounds hold.
//!
//! Rule: candidates are the first key's values in numeric order when they are all numbers (see
//! [`Axis::numbers`]), else in the order given. The recommendation is the first candidate whose
//! grid points (every combination of the other keys) ALL held on EVERY seed: every bound held and
//! no invariant was violated. If no value qualifies, the line says so. If no run had a bound
//! (`[bounds]` absent) there is nothing to size against and the line says that instead. If a
//! value above the recommended one fails again, the line names it (the figure is not monotone
//! there, or the margin is thin).

use std::fmt;

use super::aggregate::SweepResult;
use super::grid::Axis;

/// The outcome of [`recommend`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recommendation {
    /// No run had a bound.
    NoBounds {
        /// The first varied key.
        key: String,
    },
    /// The smallest qualifying value of the first key.
    Smallest {
        /// The first varied key.
        key: String,
        /// Its label.
        value: String,
        /// Larger values (in candidate order) whose points did not all hold.
        failing_above: Vec<String>,
    },
    /// No value of the first key qualifies.
    NoneHeld {
        /// The first varied key.
        key: String,
    },
}

impl fmt::Display for Recommendation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recommendation::NoBounds { key } => write!(
                f,
                "recommendation: none: the scenario has no [bounds], so there is nothing to size \
                 {key} against (add e.g. [bounds] relists_per_client_hour = 1.0)"
            ),
            Recommendation::Smallest {
                key,
                value,
                failing_above,
            } => {
                write!(
                    f,
                    "recommendation: {key} = {value} (the smallest value at which every bound \
                     held on every seed for every combination of the other keys)"
                )?;
                if !failing_above.is_empty() {
                    write!(
                        f,
                        "; note: larger value(s) {} did not hold",
                        failing_above.join(", ")
                    )?;
                }
                Ok(())
            }
            Recommendation::NoneHeld { key } => write!(
                f,
                "recommendation: none: no value of {key} in this grid kept every bound on every \
                 seed; widen the range of {key}"
            ),
        }
    }
}

/// Indices of an axis's values in candidate order: numeric if all are numbers, else as given.
pub fn candidate_order(axis: &Axis) -> Vec<usize> {
    let mut order: Vec<usize> = (0..axis.values.len()).collect();
    if let Some((_, numbers)) = axis.numbers() {
        // Stable: equal numbers keep their given order.
        order.sort_by(|&a, &b| numbers[a].total_cmp(&numbers[b]));
    }
    order
}

/// Applies the rule in the module documentation to a sweep's results.
pub fn recommend(result: &SweepResult) -> Recommendation {
    let Some(first) = result.axes.first() else {
        return Recommendation::NoneHeld { key: String::new() };
    };
    let key = first.key.clone();
    if !result.has_bounds() {
        return Recommendation::NoBounds { key };
    }
    let value_held = |i: usize| {
        result
            .points
            .iter()
            .filter(|p| p.point.first() == Some(&i))
            .all(|p| p.held())
    };
    let order = candidate_order(first);
    match order.iter().position(|&i| value_held(i)) {
        Some(pos) => Recommendation::Smallest {
            key,
            value: first.values[order[pos]].label.clone(),
            failing_above: order[pos + 1..]
                .iter()
                .filter(|&&i| !value_held(i))
                .map(|&i| first.values[i].label.clone())
                .collect(),
        },
        None => Recommendation::NoneHeld { key },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::aggregate::{FIGURES, PointResult, Stats, SweepResult};
    use crate::sweep::grid::parse_vary;

    fn result(axes: &[&str], held: &[bool]) -> SweepResult {
        let axes: Vec<_> = axes.iter().map(|a| parse_vary(a).expect("axis")).collect();
        let grid = crate::sweep::Grid::new(axes.clone()).expect("grid");
        let points = grid
            .points()
            .into_iter()
            .zip(held)
            .map(|(point, &ok)| PointResult {
                point,
                figures: vec![Stats::of(0.0, 0.0); FIGURES.len()],
                violated_seeds: if ok { vec![] } else { vec![1] },
                violations: if ok { vec![] } else { vec!["bound:x".into()] },
                has_bounds: true,
            })
            .collect();
        SweepResult {
            scenario: "t".into(),
            axes,
            seeds: vec![1],
            points,
        }
    }

    #[test]
    fn numeric_order_not_grid_order() {
        let r = result(&["k=400,100,200"], &[true, false, true]);
        assert_eq!(
            recommend(&r),
            Recommendation::Smallest {
                key: "k".into(),
                value: "200".into(),
                failing_above: vec![]
            }
        );
    }

    #[test]
    fn every_combination_of_other_keys_must_hold() {
        // k=1: (a,b) = (ok, fail); k=2: (ok, ok); k=3: (fail, ok).
        let r = result(
            &["k=1,2,3", "o=a,b"],
            &[true, false, true, true, false, true],
        );
        let rec = recommend(&r);
        assert_eq!(
            rec,
            Recommendation::Smallest {
                key: "k".into(),
                value: "2".into(),
                failing_above: vec!["3".into()]
            }
        );
        assert!(rec.to_string().contains("k = 2"), "{rec}");
        assert!(rec.to_string().contains("3 did not hold"), "{rec}");
    }

    #[test]
    fn none_held_and_no_bounds() {
        let r = result(&["k=a,b"], &[false, false]);
        let rec = recommend(&r);
        assert_eq!(rec, Recommendation::NoneHeld { key: "k".into() });
        assert!(rec.to_string().contains("none"), "{rec}");
        let mut r = result(&["k=a,b"], &[true, true]);
        for p in &mut r.points {
            p.has_bounds = false;
        }
        let rec = recommend(&r);
        assert_eq!(rec, Recommendation::NoBounds { key: "k".into() });
        assert!(rec.to_string().contains("no [bounds]"), "{rec}");
    }
}
