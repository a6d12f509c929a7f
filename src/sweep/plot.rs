//! `sweep.svg`: the main figures (those of [`FIGURES`] with a `plot_title`: relists per
//! client-hour, LISTs from etcd, watch-cache bytes, peak concurrent LISTs) against the first
//! varied key, one panel per figure, mean over seeds.
//!
//! - The seed spread around each mean: a translucent band from the p5 to the p95 over seeds
//!   (nearest-rank; with 10 seeds, min to max) and whiskers from the min to the max at each point
//!   (the `<figure>_p5`, `_p95`, `_min` and `_max` columns of `results.csv`).
//! - One line per combination of the other varied keys (a legend in each panel's upper left names
//!   them when there are at most [`MAX_LEGEND`]; the y range leaves room above the data for it).
//! - x-axis: the first key's numeric values (durations in seconds, sizes in bytes), on a log
//!   scale when they are all positive and span at least two decades (max/min ≥ 100); a key whose
//!   values are not all numbers is plotted by position, its values as tick labels.
//! - A `[bounds]` limit (`relists_per_client_hour`, `max_staleness`, `etcd_lists_per_client_hour`)
//!   is drawn on its figure's panel as a dashed horizontal line labelled with its value
//!   ([`render_with_bounds`]); a bounded figure that is not a main one gets a panel of its own,
//!   titled by its name.
//! - Text is SVG `<text>` (plotters' SVG backend without a font feature): no font files needed,
//!   the viewer picks a sans-serif font.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use super::aggregate::{FIGURES, Stats, SweepResult};
use super::grid::NumberKind;

/// Most series for which a legend is drawn.
pub const MAX_LEGEND: usize = 12;

/// Canvas size in pixels.
const SIZE: (u32, u32) = (1200, 900);

/// How the x-axis is laid out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum XScale {
    /// Logarithmic over `lo..hi`.
    Log(f64, f64),
    /// Linear over `lo..hi`.
    Linear(f64, f64),
    /// By position: value i at x = i, for `n` values.
    Index(usize),
}

/// The x-axis layout for the first axis: x positions of its values, and the scale.
pub fn x_layout(result: &SweepResult) -> (Vec<f64>, XScale, Option<NumberKind>) {
    let Some(axis) = result.axes.first() else {
        return (Vec::new(), XScale::Index(0), None);
    };
    match axis.numbers() {
        Some((kind, xs)) => {
            let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let scale = if lo > 0.0 && hi / lo >= 100.0 {
                XScale::Log(lo / 1.25, hi * 1.25)
            } else if hi > lo {
                let pad = (hi - lo) * 0.05;
                XScale::Linear(lo - pad, hi + pad)
            } else {
                let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
                XScale::Linear(lo - pad, hi + pad)
            };
            (xs, scale, Some(kind))
        }
        None => (
            (0..axis.values.len()).map(|i| i as f64).collect(),
            XScale::Index(axis.values.len()),
            None,
        ),
    }
}

/// Compact number for tick labels: 1.5k, 20M, 3G, 0.25.
pub fn compact(v: f64) -> String {
    let a = v.abs();
    let (scaled, suffix) = if a >= 1e12 {
        (v / 1e12, "T")
    } else if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let text = format!("{scaled:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    let text = if text == "-0" { "0" } else { text };
    format!("{text}{suffix}")
}

/// One line of a panel: the mean at each x, with the seed spread.
struct Series {
    label: String,
    points: Vec<(f64, Stats)>,
}

impl Series {
    fn means(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.points.iter().map(|(x, s)| (*x, s.mean))
    }
}

/// What one panel draws.
struct Panel<'a> {
    title: &'a str,
    x_desc: &'a str,
    x_label: &'a dyn Fn(&f64) -> String,
    x_ticks: usize,
    y_max: f64,
    series: Vec<Series>,
    legend: bool,
    /// A `[bounds]` limit on this figure.
    bound: Option<f64>,
}

fn err(e: impl std::fmt::Display) -> String {
    format!("cannot draw the plot: {e}")
}

fn draw_panel<DB, X>(area: &DrawingArea<DB, Shift>, x: X, panel: &Panel) -> Result<(), String>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x, 0.0..panel.y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(panel.x_desc)
        .x_labels(panel.x_ticks)
        .x_label_formatter(panel.x_label)
        .y_label_formatter(&|v: &f64| compact(*v))
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 14))
        .light_line_style(WHITE)
        .draw()
        .map_err(err)?;
    for (i, s) in panel.series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        // The seed spread: the p5-p95 band, then min-max whiskers with caps.
        let band: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|(x, st)| (*x, st.p95))
            .chain(s.points.iter().rev().map(|(x, st)| (*x, st.p5)))
            .collect();
        if s.points.len() > 1 {
            chart
                .draw_series(std::iter::once(Polygon::new(
                    band,
                    color.mix(0.15).filled(),
                )))
                .map_err(err)?;
        }
        let whisker = color.mix(0.7).stroke_width(1);
        chart
            .draw_series(
                s.points
                    .iter()
                    .filter(|(_, st)| st.max > st.min)
                    .map(|(x, st)| PathElement::new(vec![(*x, st.min), (*x, st.max)], whisker)),
            )
            .map_err(err)?;
        chart
            .draw_series(
                s.points
                    .iter()
                    .filter(|(_, st)| st.max > st.min)
                    .flat_map(|(x, st)| [(*x, st.min), (*x, st.max)])
                    .map(|c| {
                        EmptyElement::at(c) + PathElement::new(vec![(-4, 0), (4, 0)], whisker)
                    }),
            )
            .map_err(err)?;
        let drawn = chart
            .draw_series(LineSeries::new(s.means(), color.stroke_width(2)))
            .map_err(err)?;
        if panel.legend {
            drawn.label(s.label.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
        }
        chart
            .draw_series(PointSeries::of_element(
                s.means(),
                3,
                color.filled(),
                &|c, size, style| EmptyElement::at(c) + Circle::new((0, 0), size, style),
            ))
            .map_err(err)?;
    }
    if let Some(limit) = panel.bound {
        let style = BLACK.mix(0.6).stroke_width(1);
        let (x0, x1) = (chart.x_range().start, chart.x_range().end);
        chart
            .draw_series(DashedLineSeries::new(
                [(x0, limit), (x1, limit)],
                6,
                4,
                style,
            ))
            .map_err(err)?;
        let label = format!("bound {}", compact(limit));
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((x1, limit))
                    + Text::new(
                        label,
                        (-80, -16),
                        ("sans-serif", 12).into_font().color(&BLACK.mix(0.7)),
                    ),
            ))
            .map_err(err)?;
    }
    if panel.legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 11))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// The series of one figure: one per combination of the other keys, points sorted by x.
fn series_of(result: &SweepResult, figure: usize, xs: &[f64]) -> Vec<Series> {
    let mut series: Vec<(Vec<usize>, Series)> = Vec::new();
    for p in &result.points {
        let (Some(&first), rest) = (p.point.first(), p.point.get(1..).unwrap_or(&[])) else {
            continue;
        };
        let (Some(&x), Some(stats)) = (xs.get(first), p.figures.get(figure)) else {
            continue;
        };
        let at = match series.iter().position(|(k, _)| k.as_slice() == rest) {
            Some(at) => at,
            None => {
                let label = result
                    .axes
                    .iter()
                    .skip(1)
                    .zip(rest)
                    .map(|(a, &i)| format!("{}={}", a.key, a.values[i].label))
                    .collect::<Vec<_>>()
                    .join(", ");
                series.push((
                    rest.to_vec(),
                    Series {
                        label,
                        points: Vec::new(),
                    },
                ));
                series.len() - 1
            }
        };
        series[at].1.points.push((x, *stats));
    }
    series
        .into_iter()
        .map(|(_, mut s)| {
            s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
            s
        })
        .collect()
}

/// Renders `sweep.svg` as a string.
pub fn render(result: &SweepResult) -> Result<String, String> {
    render_with_bounds(result, &[])
}

/// Renders `sweep.svg` with `bounds` (figure name, limit) drawn on the panels of those figures.
pub fn render_with_bounds(result: &SweepResult, bounds: &[(&str, f64)]) -> Result<String, String> {
    let (xs, scale, kind) = x_layout(result);
    let key = result.axes.first().map(|a| a.key.as_str()).unwrap_or("");
    let x_desc = match kind {
        Some(NumberKind::Seconds) => format!("{key} (seconds)"),
        Some(NumberKind::Bytes) => format!("{key} (bytes)"),
        _ => key.to_string(),
    };
    let labels: Vec<String> = result
        .axes
        .first()
        .map(|a| a.values.iter().map(|v| v.label.clone()).collect())
        .unwrap_or_default();
    let index_label = |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 {
            labels.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let number_label = |v: &f64| compact(*v);
    let x_label: &dyn Fn(&f64) -> String = match scale {
        XScale::Index(_) => &index_label,
        _ => &number_label,
    };
    let x_ticks = match scale {
        XScale::Index(n) => n.max(1),
        _ => 10,
    };
    // The main figures, then every other figure the scenario bounds (titled by its name), so
    // each `[bounds]` entry is drawn against its limit.
    let bounded = |name: &str| bounds.iter().any(|(b, _)| *b == name);
    let plotted: Vec<(usize, String)> = FIGURES
        .iter()
        .enumerate()
        .filter_map(|(i, f)| match f.plot_title {
            Some(t) => Some((i, t.to_string())),
            None if bounded(f.name) => Some((i, f.name.replace('_', " "))),
            None => None,
        })
        .collect();
    let title = format!(
        "watchsim sweep {}: mean over {} seed(s) against {key} (band: p5-p95, whiskers: min-max)",
        result.scenario,
        result.seeds.len()
    );

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(&title, ("sans-serif", 22)).map_err(err)?;
        let cols = 2;
        let rows = plotted.len().div_ceil(cols).max(1);
        let areas = root.split_evenly((rows, cols));
        for (area, (figure, fig_title)) in areas.iter().zip(&plotted) {
            let figure = *figure;
            let series = series_of(result, figure, &xs);
            let y_top = series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1.max.max(p.1.p95).max(p.1.mean)))
                .fold(0.0, f64::max);
            let bound = bounds
                .iter()
                .find(|(name, _)| *name == FIGURES[figure].name)
                .map(|&(_, limit)| limit);
            let y_top = y_top.max(bound.unwrap_or(0.0));
            let legend = series.len() > 1 && series.len() <= MAX_LEGEND;
            // Keep the top of the panel free for the legend (about 14 px a line in a plot
            // area of about 320 px), so that it does not hide the lines.
            let headroom = if legend {
                ((series.len() as f64 * 14.0 + 20.0) / 320.0).min(0.6)
            } else {
                0.1
            };
            let panel = Panel {
                title: fig_title.as_str(),
                x_desc: &x_desc,
                x_label,
                x_ticks,
                y_max: if y_top > 0.0 {
                    y_top / (1.0 - headroom)
                } else {
                    1.0
                },
                legend,
                series,
                bound,
            };
            match scale {
                XScale::Log(lo, hi) => draw_panel(area, (lo..hi).log_scale(), &panel)?,
                XScale::Linear(lo, hi) => draw_panel(area, lo..hi, &panel)?,
                XScale::Index(n) => draw_panel(area, -0.5..(n as f64 - 0.5), &panel)?,
            }
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_is_drawn_on_its_figure_only() {
        use crate::sweep::aggregate::{PointResult, Stats};
        let axes = vec![crate::sweep::grid::parse_vary("k=1,2,4").expect("axis")];
        let grid = crate::sweep::Grid::new(axes.clone()).expect("grid");
        let points = grid
            .points()
            .into_iter()
            .map(|point| PointResult {
                point,
                figures: vec![Stats::of(0.05, 0.05); FIGURES.len()],
                violated_seeds: vec![],
                violations: vec![],
                has_bounds: true,
            })
            .collect();
        let r = SweepResult {
            scenario: "t".into(),
            axes,
            seeds: vec![1],
            points,
        };
        let plain = render(&r).expect("svg");
        assert!(!plain.contains("bound "));
        let svg = render_with_bounds(&r, &[("relists_per_client_hour", 0.25), ("nope", 7.0)])
            .expect("svg");
        assert_eq!(svg.matches("bound 0.25").count(), 1, "{svg}");
        assert!(!svg.contains("bound 7"));
        // A bounded figure that is not a main one gets its own panel, with the bound on it.
        assert!(!svg.contains("etcd lists per client hour"));
        let svg = render_with_bounds(&r, &[("etcd_lists_per_client_hour", 3.0)]).expect("svg");
        assert_eq!(svg.matches("etcd lists per client hour").count(), 1);
        assert_eq!(svg.matches("bound 3").count(), 1, "{svg}");
    }

    #[test]
    fn the_seed_spread_is_drawn_around_each_mean() {
        use crate::sweep::aggregate::{PointResult, stats};
        let axes = vec![crate::sweep::grid::parse_vary("k=1,2,4").expect("axis")];
        let grid = crate::sweep::Grid::new(axes.clone()).expect("grid");
        let result = |spread: bool| {
            let points = grid
                .points()
                .into_iter()
                .map(|point| PointResult {
                    figures: vec![
                        if spread {
                            stats(&[1.0, 2.0, 3.0, 10.0])
                        } else {
                            stats(&[4.0; 4])
                        };
                        FIGURES.len()
                    ],
                    point,
                    violated_seeds: vec![],
                    violations: vec![],
                    has_bounds: false,
                })
                .collect();
            SweepResult {
                scenario: "t".into(),
                axes: axes.clone(),
                seeds: vec![1, 2, 3, 4],
                points,
            }
        };
        let panels = FIGURES.iter().filter(|f| f.plot_title.is_some()).count();
        let spread = render(&result(true)).expect("svg");
        let flat = render(&result(false)).expect("svg");
        assert!(spread.contains("band: p5-p95, whiskers: min-max"));
        // One band per panel's series.
        assert_eq!(spread.matches("<polygon").count(), panels, "{spread}");
        // Whiskers: a vertical line and two caps at each of the 3 points of every panel.
        // (drawn at 70% opacity; nothing else is).
        let whiskers = |svg: &str| svg.matches("opacity=\"0.7\"").count();
        assert_eq!(whiskers(&flat), 0);
        assert_eq!(whiskers(&spread), panels * 3 * 3, "{spread}");
    }

    #[test]
    fn compact_labels() {
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(0.25), "0.25");
        assert_eq!(compact(1500.0), "1.5k");
        assert_eq!(compact(20_572_160.0), "20.57M");
        assert_eq!(compact(3e9), "3G");
        assert_eq!(compact(100.0), "100");
    }
}
