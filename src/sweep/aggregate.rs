//! The figures a sweep reads from each run's report, and their aggregation over seeds.
//!
//! Figures are read from the report's JSON form by path, so a field added to the report later is
//! picked up without touching this module; a path that is missing (or not a number) reads as 0.

use serde_json::Value;

use super::grid::Axis;

/// Where a figure comes from in the report's JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A number at a path of object keys, e.g. `["clients", "relists"]`.
    Path(&'static [&'static str]),
    /// The sum over `apiservers[]` of a field.
    ApiserverSum(&'static str),
    /// The largest value over `apiservers[]` of a field.
    ApiserverMax(&'static str),
}

/// One figure of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figure {
    /// Column stem in `results.csv` (`<name>_mean`, `<name>_p95`, `<name>_min`, `<name>_p5`,
    /// `<name>_max`).
    pub name: &'static str,
    /// Where it is read from.
    pub source: Source,
    /// Column heading in the stdout table, or `None` to leave the figure out of the table.
    pub in_table: Option<&'static str>,
    /// Plotted in `sweep.svg`, with this panel title.
    pub plot_title: Option<&'static str>,
}

const fn fig(
    name: &'static str,
    source: Source,
    in_table: Option<&'static str>,
    plot_title: Option<&'static str>,
) -> Figure {
    Figure {
        name,
        source,
        in_table,
        plot_title,
    }
}

/// Every figure, in `results.csv` column order.
pub const FIGURES: &[Figure] = &[
    fig(
        "relists_per_client_hour",
        Source::Path(&["clients", "relists_per_client_hour"]),
        Some("relists/cl-h"),
        Some("relists per client-hour"),
    ),
    fig(
        "p_410_on_reconnect",
        Source::Path(&["clients", "p_410_on_reconnect"]),
        Some("p410/reconn"),
        None,
    ),
    fig(
        "lists_from_etcd",
        Source::ApiserverSum("lists_from_etcd"),
        Some("etcd_lists"),
        Some("LISTs served from etcd"),
    ),
    fig(
        "etcd_bytes",
        Source::Path(&["etcd", "range_bytes"]),
        Some("etcd_bytes"),
        None,
    ),
    fig(
        "cache_bytes",
        Source::ApiserverSum("cache_bytes_max"),
        Some("cache_bytes"),
        Some("watch-cache bytes (peak, all apiservers)"),
    ),
    fig(
        "cache_capacity",
        Source::ApiserverMax("cache_capacity_max"),
        Some("cache_cap"),
        None,
    ),
    fig(
        "peak_concurrent_lists",
        Source::ApiserverMax("lists_in_flight_max"),
        Some("peak_lists"),
        Some("peak concurrent LISTs"),
    ),
    fig(
        "max_staleness_seconds",
        Source::Path(&["clients", "max_staleness_seconds"]),
        Some("staleness_s"),
        None,
    ),
    fig("relists", Source::Path(&["clients", "relists"]), None, None),
    fig(
        "too_old_errors",
        Source::ApiserverSum("too_old_errors"),
        None,
        None,
    ),
    fig(
        "list_memory_bytes_max",
        Source::ApiserverMax("list_memory_bytes_max"),
        None,
        None,
    ),
    fig("etcd_writes", Source::Path(&["etcd", "writes"]), None, None),
    fig(
        "watch_events",
        Source::Path(&["etcd", "watch_events_sent"]),
        None,
        None,
    ),
    fig(
        "etcd_lists_per_client_hour",
        Source::Path(&["clients", "etcd_lists_per_client_hour"]),
        None,
        None,
    ),
];

fn number(v: Option<&Value>) -> f64 {
    v.and_then(Value::as_f64)
        .filter(|f| f.is_finite())
        .unwrap_or(0.0)
}

fn apiserver_values<'a>(report: &'a Value, field: &'a str) -> impl Iterator<Item = f64> + 'a {
    report
        .get("apiservers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(move |a| number(a.get(field)))
}

impl Figure {
    /// This figure's value in a report (JSON form); 0 when absent.
    pub fn read(&self, report: &Value) -> f64 {
        match self.source {
            Source::Path(path) => number(path.iter().try_fold(report, |v, k| v.get(*k))),
            Source::ApiserverSum(field) => apiserver_values(report, field).sum(),
            Source::ApiserverMax(field) => apiserver_values(report, field).fold(0.0, f64::max),
        }
    }
}

/// Every figure of [`FIGURES`] read from a report (JSON form), in order.
pub fn read_figures(report: &Value) -> Vec<f64> {
    FIGURES.iter().map(|f| f.read(report)).collect()
}

/// Mean, p95 and the seed spread of one figure over a point's seeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Arithmetic mean.
    pub mean: f64,
    /// 95th percentile, nearest-rank: the ⌈0.95·n⌉-th smallest value (with 10 seeds, the max).
    pub p95: f64,
    /// 5th percentile, nearest-rank: the ⌈0.05·n⌉-th smallest value (with 10 seeds, the min).
    pub p5: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Stats {
    /// Stats of `mean` and `p95` with no spread recorded (min and p5 = mean, max = p95): for
    /// building results by hand in tests.
    pub fn of(mean: f64, p95: f64) -> Stats {
        Stats {
            mean,
            p95,
            p5: mean,
            min: mean,
            max: p95,
        }
    }
}

/// The nearest-rank `q` quantile (0 < q ≤ 1) of sorted, non-empty `sorted`.
fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Mean, nearest-rank p5 and p95, min and max of `values` (all 0 for none). Summed in the order
/// given, so the result is the same whatever the thread count.
pub fn stats(values: &[f64]) -> Stats {
    if values.is_empty() {
        return Stats::of(0.0, 0.0);
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Stats {
        mean,
        p95: nearest_rank(&sorted, 0.95),
        p5: nearest_rank(&sorted, 0.05),
        min: sorted[0],
        max: sorted[sorted.len() - 1],
    }
}

/// What one (point, seed) run contributes.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFigures {
    /// [`FIGURES`] values, in order.
    pub values: Vec<f64>,
    /// `report.violations()`: violated invariants and `bound:NAME` for violated bounds.
    pub violations: Vec<String>,
    /// The run had at least one bound (`report.bounds` not empty).
    pub has_bounds: bool,
}

/// One grid point's aggregate over its seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct PointResult {
    /// One value index per axis (see [`super::grid::Grid::points`]).
    pub point: Vec<usize>,
    /// [`FIGURES`] statistics, in order.
    pub figures: Vec<Stats>,
    /// Seeds on which some invariant or bound was violated, ascending.
    pub violated_seeds: Vec<u64>,
    /// Distinct violation names over all seeds, sorted.
    pub violations: Vec<String>,
    /// At least one run of this point had a bound.
    pub has_bounds: bool,
}

impl PointResult {
    /// Every bound held and no invariant was violated, on every seed.
    pub fn held(&self) -> bool {
        self.violated_seeds.is_empty()
    }

    /// Aggregates the runs of one point; `runs[i]` is the run of `seeds[i]`.
    pub fn from_runs(point: Vec<usize>, seeds: &[u64], runs: &[RunFigures]) -> PointResult {
        let figures = (0..FIGURES.len())
            .map(|f| {
                let values: Vec<f64> = runs
                    .iter()
                    .map(|r| r.values.get(f).copied().unwrap_or(0.0))
                    .collect();
                stats(&values)
            })
            .collect();
        let violated_seeds = seeds
            .iter()
            .zip(runs)
            .filter(|(_, r)| !r.violations.is_empty())
            .map(|(&s, _)| s)
            .collect();
        let mut violations: Vec<String> = runs
            .iter()
            .flat_map(|r| r.violations.iter().cloned())
            .collect();
        violations.sort();
        violations.dedup();
        PointResult {
            point,
            figures,
            violated_seeds,
            violations,
            has_bounds: runs.iter().any(|r| r.has_bounds),
        }
    }
}

/// A whole sweep's results, in grid order.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepResult {
    /// Scenario name.
    pub scenario: String,
    /// The varied keys and their values.
    pub axes: Vec<Axis>,
    /// The seeds every point ran.
    pub seeds: Vec<u64>,
    /// One entry per grid point, first axis slowest.
    pub points: Vec<PointResult>,
}

impl SweepResult {
    /// Every point held.
    pub fn held(&self) -> bool {
        self.points.iter().all(PointResult::held)
    }

    /// Distinct violation names over every point and seed, sorted.
    pub fn violations(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .points
            .iter()
            .flat_map(|p| p.violations.iter().cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Some run had a bound.
    pub fn has_bounds(&self) -> bool {
        self.points.iter().any(|p| p.has_bounds)
    }

    /// The index of a figure in [`FIGURES`] by name.
    pub fn figure_index(name: &str) -> Option<usize> {
        FIGURES.iter().position(|f| f.name == name)
    }

    /// Labels of a point's values, one per axis.
    pub fn labels(&self, point: &PointResult) -> Vec<&str> {
        self.axes
            .iter()
            .zip(&point.point)
            .map(|(a, &i)| a.values[i].label.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_paths_sums_and_maxima_missing_is_zero() {
        let r = json!({
            "clients": {"relists_per_client_hour": 2.5, "relists": 7},
            "etcd": {"range_bytes": 100, "writes": 3},
            "apiservers": [
                {"lists_from_etcd": 2, "cache_bytes_max": 10, "lists_in_flight_max": 4},
                {"lists_from_etcd": 3, "cache_bytes_max": 20, "lists_in_flight_max": 9}
            ]
        });
        let get = |n: &str| FIGURES[SweepResult::figure_index(n).expect("known figure")].read(&r);
        assert_eq!(get("relists_per_client_hour"), 2.5);
        assert_eq!(get("p_410_on_reconnect"), 0.0);
        assert_eq!(get("lists_from_etcd"), 5.0);
        assert_eq!(get("cache_bytes"), 30.0);
        assert_eq!(get("peak_concurrent_lists"), 9.0);
        assert_eq!(get("etcd_bytes"), 100.0);
        assert_eq!(get("relists"), 7.0);
        assert_eq!(get("watch_events"), 0.0);
        assert_eq!(read_figures(&json!({})), vec![0.0; FIGURES.len()]);
    }

    #[test]
    fn mean_and_nearest_rank_p95() {
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(
            stats(&ten),
            Stats {
                mean: 5.5,
                p95: 10.0,
                p5: 1.0,
                min: 1.0,
                max: 10.0
            }
        );
        let twenty: Vec<f64> = (1..=20).rev().map(f64::from).collect();
        assert_eq!(stats(&twenty).p95, 19.0);
        assert_eq!(stats(&twenty).p5, 1.0);
        let forty: Vec<f64> = (1..=40).map(f64::from).collect();
        assert_eq!((stats(&forty).p5, stats(&forty).p95), (2.0, 38.0));
        assert_eq!((stats(&forty).min, stats(&forty).max), (1.0, 40.0));
        assert_eq!(stats(&[3.0]), Stats::of(3.0, 3.0));
        assert_eq!(stats(&[]), Stats::of(0.0, 0.0));
    }

    #[test]
    fn point_aggregation_collects_violations() {
        let run = |v: f64, bad: &[&str]| RunFigures {
            values: vec![v; FIGURES.len()],
            violations: bad.iter().map(|s| s.to_string()).collect(),
            has_bounds: true,
        };
        let p = PointResult::from_runs(
            vec![0],
            &[5, 6, 7],
            &[
                run(1.0, &[]),
                run(2.0, &["bound:x", "watch-order"]),
                run(3.0, &["bound:x"]),
            ],
        );
        assert_eq!(
            p.figures[0],
            Stats {
                mean: 2.0,
                p95: 3.0,
                p5: 1.0,
                min: 1.0,
                max: 3.0
            }
        );
        assert_eq!(p.violated_seeds, [6, 7]);
        assert_eq!(p.violations, ["bound:x", "watch-order"]);
        assert!(!p.held());
        assert!(p.has_bounds);
    }
}
