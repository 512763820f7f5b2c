//! Plots for papers and for the HTML report, drawn with `plotters`, each as SVG and as PNG.
//!
//! Per report metric (wall time, CPU time, peak memory, custom metrics):
//! - `distribution-<metric>`: every measured invocation per cell, as a horizontal box plot
//!   (box = quartiles, bar = median, whiskers = the furthest points within 1.5 IQR, Tukey)
//!   with the points on top, jittered vertically by a fixed sequence (not random), points
//!   beyond the whiskers in vermillion. A cell of more than [`MAX_POINTS_PER_CELL`]
//!   invocations keeps its box over all of them but shows a thinned set of points (every
//!   k-th in sorted order, and the largest; see [`thin`]), and the figure says so under the
//!   chart and in its caption.
//! - `medians-<metric>`: medians with their 95% CI whiskers, grouped along the x axis by the
//!   matrix's first axis and faceted (one panel each) by its second; further axes become
//!   coloured series side by side. One axis gives one panel, no axes one point.
//! - `line-<metric>-<axis>`: the median over a numeric axis with at least three values, as a
//!   line with its CI as a band, one line per combination of the other axes.
//! - `ratios-<metric>`: each cell's median over the reference cell's, with the bootstrap CI of
//!   the ratio, and a dashed line at 1.
//!
//! - `memory-over-time`: memory in use since the exec, per cell: the median and 10-90% band
//!   over its measured invocations' timelines (up to [`MAX_MEMORY_TIMELINES`] of them, read
//!   from the logs), pooled into [`MEMORY_BINS`] time bins (see [`memory_band`]), so the
//!   plot's size is bounded whatever the length or the number of the timelines. Without them
//!   (one invocation, logs gone), the cell's last timeline from results.json: a line through
//!   at most [`MAX_MEMORY_POINTS`] samples, a band over time bins above.
//!
//! Publication quality: drawn at the printed size of [`Style`] (the matrix's `[report]` and
//! `report`'s flags; by default one column of a two-column paper, 3.5 in = 504 SVG pixels at
//! 144 px/in, with 8 pt ticks and 9 pt titles; a faceted plot widens), axis titles in words
//! with units, the Okabe-Ito palette ([`super::palette`]) or greys, and text in DejaVu Sans
//! embedded in the binary, so PNGs are legible on a host with no fonts at all. PNGs are drawn
//! at 3x (432 dpi). The PDF and the outlined SVG are made from the SVG ([`super::pdf`]).
//! Output is deterministic: no timestamps, no randomness, cells in result order.

use std::sync::Once;

use crate::results::MAX_MEMORY_TIMELINES;

use std::ops::Range;

use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{
    AsRangedCoord, KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter,
};
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::figure_style::{Style, ValueAxis};
use super::{Analysis, MetricTable, RenderError, RenderOptions, Result, axes, axis_text};
use crate::results::RunResults;
use crate::spec::Axis;
use crate::spec::report_options::AxisScale;
use crate::stats::quantile;

/// One plot, ready to write as `plots/<stem>.svg` and `plots/<stem>.png`.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    pub stem: String,
    /// The metric's key (`wall_s`, ...), so a report can place the plot under its metric.
    pub metric: String,
    /// One sentence saying what the plot shows, for captions and alt text.
    pub caption: String,
    pub svg: String,
    pub png: Vec<u8>,
    /// The same drawing as a PDF page of the printed size, the font embedded.
    pub pdf: Vec<u8>,
    /// The same drawing as an SVG with its text as outlines, for `plots/<stem>.svg`.
    pub outlined_svg: String,
}

/// The family name registered with plotters; it is written verbatim into the SVG's
/// `font-family`, so it doubles as a CSS fallback list for SVG viewers.
const FONT: &str = "DejaVu Sans, sans-serif";
pub(super) static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// PNG pixels per SVG pixel.
const PNG_SCALE: f64 = 3.0;

/// Above this many invocations in a cell, its distribution shows at most this many points
/// (plus its largest) over a box plot of all of them; at or below it, every invocation is
/// drawn, as always. Why 200: a cell's row is about 400 px wide, where 200 points (jittered over
/// the row's height) still read as single points and show the shape; many more merge into a
/// smear that says no more than the box, while each one costs an SVG element of about 90
/// bytes, in the plot and again in report.html (2 cells of 5,000 invocations made a 2.7 MB
/// report, nearly all of it points).
pub const MAX_POINTS_PER_CELL: usize = 200;

/// A cell's memory timeline with more samples than this is drawn as a band over time bins
/// rather than a line through every sample (the same bound as the distribution's points).
pub const MAX_MEMORY_POINTS: usize = 200;

/// The number of time bins of a memory band: one every 2 px or so across the chart, finer
/// than the eye resolves.
pub const MEMORY_BINS: usize = 200;

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in; if it failed to parse, every text draw would fail and say so.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
}

/// Sizes in SVG pixels, multiplied by the backend's scale.
#[derive(Debug, Clone, Copy)]
struct Geom {
    scale: f64,
    /// Tick-label text size in SVG pixels ([`Style::text_px`]); the sizes below are given
    /// relative to the 11 px they were designed at.
    text: f64,
    palette: crate::spec::report_options::Palette,
}

impl Geom {
    fn px(&self, v: f64) -> i32 {
        (v * self.scale).round() as i32
    }
    fn upx(&self, v: f64) -> u32 {
        (v * self.scale).round().max(1.0) as u32
    }
    /// A text style of `size` pixels (plotters divides by 1.24 to get the CSS font size).
    fn font(&self, size: f64) -> TextStyle<'static> {
        (FONT, size / 11.0 * self.text * 1.24 * self.scale)
            .into_font()
            .color(&BLACK)
    }
    fn series(&self, i: usize) -> RGBColor {
        rgb(super::figure_style::series(self.palette, i))
    }
    /// A length that grows with the text: `v` at the 11 px design size.
    fn t(&self, v: f64) -> f64 {
        v / 11.0 * self.text
    }
}

fn rgb((r, g, b): (u8, u8, u8)) -> RGBColor {
    RGBColor(r, g, b)
}

/// A tick label: at most three decimals, trailing zeros dropped ("100", "0.25", "1.5").
pub(super) fn tick(v: &f64) -> String {
    let text = format!("{v:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

/// A tick label of `v` on an axis whose ticks are about `spacing` apart: the decimals that
/// spacing needs (at least [`tick`]'s three when it needs fewer), trailing zeros dropped. A
/// series within 0.0118 to 0.0123 gets 0.0118, 0.0119, ... rather than five "0.012".
pub(super) fn tick_at_spacing(v: f64, spacing: f64) -> String {
    if !(spacing.is_finite() && spacing > 0.0) {
        return tick(&v);
    }
    let decimals = (-spacing.log10().floor() + 1.0).clamp(3.0, 12.0) as usize;
    let text = format!("{v:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

type DrawResult = std::result::Result<(), String>;
/// A confidence interval in display units, when there is one.
type Band = Option<(f64, f64)>;
/// A row of the ratio plot: (cell label, ratio, CI).
type RatioRow = (String, f64, Band);

/// A categorical axis: category `i` sits at `i` on a continuous scale (so points can be
/// jittered or dodged around it), ticks are at the integers, and each tick is labelled with
/// its category's name. plotters' own key-point binding has no label formatting.
#[derive(Debug, Clone)]
struct Categories {
    /// By position: `labels[i]` is drawn at `i`.
    labels: Vec<String>,
    lo: f64,
    hi: f64,
}

impl Categories {
    fn new(labels: Vec<String>, pad: f64) -> Categories {
        let n = labels.len() as f64;
        Categories {
            labels,
            lo: -0.5 - pad,
            hi: n - 0.5 + pad,
        }
    }
}

impl Ranged for Categories {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = (value - self.lo) / (self.hi - self.lo);
        limit.0 + (t * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        (0..self.labels.len()).map(|i| i as f64).collect()
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for Categories {
    fn format_ext(&self, value: &f64) -> String {
        usize::try_from(value.round() as i64)
            .ok()
            .and_then(|i| self.labels.get(i).cloned())
            .unwrap_or_default()
    }
}

/// A figure's data, already scaled to display units; drawn once per backend.
enum Figure {
    Distribution {
        /// (cell label, values), top to bottom.
        cells: Vec<(String, Vec<f64>)>,
        x_title: String,
        /// Said under the chart when points are thinned ([`thinning_note`]); `None` otherwise.
        note: Option<String>,
        values: Values,
    },
    Medians {
        x_labels: Vec<String>,
        x_title: String,
        y_title: String,
        /// (panel title, points (x index, series index, median, CI)).
        facets: Vec<(Option<String>, Vec<Point>)>,
        series: Vec<String>,
        values: Values,
    },
    Line {
        x_title: String,
        y_title: String,
        /// (series label, points (x, median, CI)), x ascending.
        series: Vec<Line>,
        /// A dot at every point: off for binned memory bands, whose points are bins.
        markers: bool,
        values: Values,
        /// How x sits: `None` a plain numeric axis (time); else the axis's scale and its
        /// measured levels, ticked exactly there.
        levels: Option<(AxisScale, Vec<f64>)>,
    },
    Ratios {
        /// (cell label, ratio, CI), top to bottom.
        rows: Vec<RatioRow>,
        x_title: String,
        /// The reference's row: its ratio is 1 by definition, with no interval.
        reference: Option<usize>,
        log: bool,
    },
    /// `benchbox history`'s trend: see [`trend`].
    Trend(Trend),
}

/// How a figure's value axis is drawn: log, and (linear) from zero.
#[derive(Debug, Clone, Copy)]
struct Values {
    log: bool,
    zero: bool,
}

#[derive(Debug, Clone, Copy)]
struct Point {
    x: usize,
    series: usize,
    median: f64,
    ci: Option<(f64, f64)>,
}

impl Figure {
    /// Size in SVG pixels.
    fn size(&self, st: &Style) -> (u32, u32) {
        let width = st.width_px();
        // Lengths designed at 11 px text grow with the text.
        let t = |v: f64| (v / 11.0 * st.text_px(0.0)).round() as u32;
        let chart = (width as f64 * 0.62).round() as u32;
        match self {
            Figure::Distribution { cells, note, .. } => {
                let note = if note.is_some() {
                    t(NOTE_HEIGHT as f64)
                } else {
                    0
                };
                (width, t(70.0) + t(30.0) * cells.len().max(2) as u32 + note)
            }
            Figure::Ratios { rows, .. } => (width, t(70.0) + t(24.0) * rows.len().max(2) as u32),
            Figure::Medians { facets, series, .. } => {
                let legend = if series.len() > 1 { t(22.0) } else { 0 };
                (
                    width.max(t(80.0) + t(160.0) * facets.len() as u32),
                    chart.max(t(220.0)) + legend * series.len().div_ceil(2) as u32,
                )
            }
            Figure::Line { series, .. } => {
                let legend = if series.len() > 1 { t(22.0) } else { 0 };
                (
                    width,
                    chart.max(t(220.0)) + legend * series.len().div_ceil(2) as u32,
                )
            }
            Figure::Trend(_) => (width, chart.max(t(220.0))),
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, g: Geom) -> DrawResult {
        root.fill(&WHITE).map_err(err)?;
        match self {
            Figure::Distribution {
                cells,
                x_title,
                note,
                values,
            } => draw_distribution(root, g, cells, x_title, note.as_deref(), *values),
            Figure::Ratios {
                rows,
                x_title,
                reference,
                log,
            } => draw_ratios(root, g, rows, x_title, *reference, *log),
            Figure::Medians {
                x_labels,
                x_title,
                y_title,
                facets,
                series,
                values,
            } => draw_medians(
                root,
                g,
                x_labels,
                (x_title, y_title),
                facets,
                series,
                *values,
            ),
            Figure::Line {
                x_title,
                y_title,
                series,
                markers,
                values,
                levels,
            } => draw_line(
                root,
                g,
                (x_title, y_title),
                series,
                *markers,
                *values,
                levels.as_ref(),
            ),
            Figure::Trend(t) => draw_trend(root, g, t),
        }
    }
}

/// `[lo, hi]` padded by 5% of its width on each side (or by 1 unit around a single value).
pub(super) fn padded(lo: f64, hi: f64) -> (f64, f64) {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let pad = if hi > lo {
        (hi - lo) * 0.05
    } else {
        lo.abs().max(1.0) * 0.05
    };
    (lo - pad, hi + pad)
}

/// The width of the label area for category names of up to `longest` characters.
fn label_area(g: Geom, labels: &[String]) -> u32 {
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(4);
    g.upx(g.t(longest as f64 * 6.6 + 14.0).clamp(40.0, 260.0))
}

/// A deterministic jitter in [-0.5, 0.5): the fractional parts of multiples of the golden
/// ratio are evenly spread, so points do not pile up and the same data lands the same way.
fn jitter(i: usize) -> f64 {
    let golden = 0.618_033_988_749_895_f64;
    (i as f64 * golden).fract() - 0.5
}

/// A chart with a plain x and y axis.
type Chart<'a, DB, X, Y> = ChartContext<'a, DB, Cartesian2d<X, Y>>;

/// The chart every plot kind draws in: a margin of `margin` pixels, the x label area, a y
/// label area of `y_area` pixels and, over a facet, its title.
fn chart<'a, DB: DrawingBackend, X: AsRangedCoord, Y: AsRangedCoord>(
    area: &'a DrawingArea<DB, Shift>,
    g: Geom,
    (margin, y_area): (f64, u32),
    title: Option<&str>,
    x: X,
    y: Y,
) -> std::result::Result<Chart<'a, DB, X::CoordDescType, Y::CoordDescType>, String> {
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(g.px(margin))
        .x_label_area_size(g.px(g.t(40.0)))
        .y_label_area_size(y_area);
    if let Some(title) = title {
        builder.caption(title, g.font(12.0));
    }
    builder.build_cartesian_2d(x, y).map_err(err)
}

/// The mesh every plot kind starts from: faint major grid lines only, the x axis title and
/// the fonts; each kind adds its grid direction, tick formats and tick counts.
fn mesh<'a, 'b, DB, X, Y>(
    chart: &'b mut Chart<'a, DB, X, Y>,
    g: Geom,
    x_title: &str,
) -> MeshStyle<'a, 'b, X, Y, DB>
where
    DB: DrawingBackend,
    X: Ranged + ValueFormatter<X::ValueType>,
    Y: Ranged + ValueFormatter<Y::ValueType>,
{
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(220, 220, 220))
        .x_desc(x_title)
        .label_style(g.font(11.0))
        .axis_desc_style(g.font(12.0))
        .axis_style(BLACK.mix(0.6).stroke_width(g.upx(1.0)));
    mesh
}

/// The height of the line under a distribution that says its points are thinned.
const NOTE_HEIGHT: u32 = 18;

/// Every how many-th value, in sorted order, the distribution plot draws of a cell of `n`
/// invocations: 1 (all of them) up to [`MAX_POINTS_PER_CELL`], then just enough to stay
/// within it.
fn thinning_step(n: usize) -> usize {
    if n <= MAX_POINTS_PER_CELL {
        1
    } else {
        n.div_ceil(MAX_POINTS_PER_CELL)
    }
}

/// The points drawn of a cell whose values are `sorted` (ascending): every
/// [`thinning_step`]-th from the smallest, and the largest (so the extremes, and the axis, are
/// those of all the values). Sorted order rather than the order invocations ran: the points
/// kept are evenly spaced quantiles, so they have the distribution of all the values to within
/// one step, with no sampling noise; and they depend only on the values, not on the order
/// rows were recorded, resumed or merged in, nor on any thread's timing.
fn thin(sorted: &[f64]) -> Vec<f64> {
    let step = thinning_step(sorted.len());
    let mut kept: Vec<f64> = sorted.iter().copied().step_by(step).collect();
    if !(sorted.len() - 1).is_multiple_of(step)
        && let Some(&last) = sorted.last()
    {
        kept.push(last);
    }
    kept
}

/// `n` with thousands separators: "5,000".
fn thousands(n: usize) -> String {
    crate::spec::thousands(n as u128)
}

/// "every 25th of 5,000": one cell's thinning in words.
fn every(step: usize, n: usize) -> String {
    let suffix = match (step % 10, step % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("every {step}{suffix} of {}", thousands(n))
}

/// What the distribution plot of `cells` thins, if anything: (the line under the chart, the
/// clause of the caption). Cells of the same size are grouped, so the words stay short.
fn thinning_note(cells: &[(String, Vec<f64>)]) -> Option<(String, String)> {
    let mut groups: Vec<((usize, usize), usize)> = Vec::new();
    for (_, values) in cells {
        let n = values.len();
        let step = thinning_step(n);
        if step == 1 {
            continue;
        }
        match groups.iter_mut().find(|(key, _)| *key == (step, n)) {
            Some((_, count)) => *count += 1,
            None => groups.push(((step, n), 1)),
        }
    }
    let order = "in sorted order, and the largest";
    match groups.as_slice() {
        [] => None,
        [((step, n), count)] if *count == cells.len() => {
            // The line under the chart is kept short enough for its width.
            let words = format!("{} invocations shown per cell", every(*step, *n));
            Some((
                format!("Points: {words}, sorted"),
                format!("points thinned: {words}, {order}"),
            ))
        }
        _ => {
            let listed: Vec<String> = groups
                .iter()
                .map(|((step, n), count)| {
                    let cells = if *count == 1 { "cell" } else { "cells" };
                    format!("{} ({count} {cells})", every(*step, *n))
                })
                .collect();
            let steps = groups.iter().map(|((step, _), _)| *step);
            let (lo, hi) = (steps.clone().min().unwrap_or(1), steps.max().unwrap_or(1));
            let line = if groups.len() <= 2 {
                listed.join(", ")
            } else {
                format!("every {lo}th to every {hi}th")
            };
            Some((
                format!("Points over {MAX_POINTS_PER_CELL} per cell: {line}, sorted"),
                format!(
                    "points thinned in cells of over {MAX_POINTS_PER_CELL} invocations: {}, {order}; other cells show every invocation",
                    listed.join(", ")
                ),
            ))
        }
    }
}

fn draw_distribution<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    g: Geom,
    cells: &[(String, Vec<f64>)],
    x_title: &str,
    note: Option<&str>,
    values: Values,
) -> DrawResult {
    // The note gets a strip under the chart; without one the chart has the whole area, as it
    // always had.
    let (area, note_area) = match note {
        Some(_) => {
            let (_, height) = root.dim_in_pixel();
            let (area, strip) = root.split_vertically(height - g.upx(g.t(NOTE_HEIGHT as f64)));
            (area, Some(strip))
        }
        None => (root.clone(), None),
    };
    let root = &area;
    let n = cells.len();
    let all = cells.iter().flat_map(|(_, v)| v.iter().copied());
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let x = ValueAxis::new(lo, hi, values.log, values.zero, 5);
    // Cell i is drawn at y = n - 1 - i, so the first cell is on top.
    let labels: Vec<String> = cells.iter().rev().map(|(l, _)| l.clone()).collect();
    let y_area = label_area(g, &labels);
    let y = Categories::new(labels, 0.1);
    let mut chart = chart(root, g, (10.0, y_area), None, x, y)?;
    mesh(&mut chart, g, x_title)
        .disable_y_mesh()
        .x_label_formatter(&tick)
        .draw()
        .map_err(err)?;

    let stroke = g.upx(1.2);
    let box_colour = RGBColor(60, 60, 60);
    let point_colour = rgb(super::figure_style::point(g.palette));
    let outlier_colour = rgb(super::figure_style::outlier(g.palette).0);
    for (i, (_, values)) in cells.iter().enumerate() {
        if values.is_empty() {
            continue;
        }
        let y = (n - 1 - i) as f64;
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let (q1, q2, q3) = (
            quantile(&sorted, 0.25),
            quantile(&sorted, 0.5),
            quantile(&sorted, 0.75),
        );
        let iqr = q3 - q1;
        let (lo_fence, hi_fence) = (q1 - 1.5 * iqr, q3 + 1.5 * iqr);
        let whisker_lo = sorted
            .iter()
            .copied()
            .find(|v| *v >= lo_fence)
            .unwrap_or(q1);
        let whisker_hi = sorted
            .iter()
            .rev()
            .copied()
            .find(|v| *v <= hi_fence)
            .unwrap_or(q3);
        let h = 0.28;
        let line = box_colour.stroke_width(stroke);
        chart
            .draw_series([
                Rectangle::new([(q1, y - h), (q3, y + h)], RGBColor(232, 232, 232).filled()),
                Rectangle::new([(q1, y - h), (q3, y + h)], line),
            ])
            .map_err(err)?;
        chart
            .draw_series([
                PathElement::new(
                    vec![(q2, y - h), (q2, y + h)],
                    box_colour.stroke_width(g.upx(2.4)),
                ),
                PathElement::new(vec![(whisker_lo, y), (q1, y)], line),
                PathElement::new(vec![(q3, y), (whisker_hi, y)], line),
                PathElement::new(
                    vec![(whisker_lo, y - h / 2.0), (whisker_lo, y + h / 2.0)],
                    line,
                ),
                PathElement::new(
                    vec![(whisker_hi, y - h / 2.0), (whisker_hi, y + h / 2.0)],
                    line,
                ),
            ])
            .map_err(err)?;
        // Every invocation up to the threshold, in the order they ran (so a small run's plot is
        // what it always was); above it, the thinned sorted values.
        let thinned;
        let points: &[f64] = if values.len() > MAX_POINTS_PER_CELL {
            thinned = thin(&sorted);
            &thinned
        } else {
            values
        };
        chart
            .draw_series(points.iter().enumerate().map(|(k, &v)| {
                let colour = if v < lo_fence || v > hi_fence {
                    outlier_colour
                } else {
                    point_colour
                };
                Circle::new(
                    (v, y + jitter(k) * 0.4),
                    g.upx(2.6),
                    colour.mix(0.8).filled(),
                )
            }))
            .map_err(err)?;
    }
    if let (Some(text), Some(strip)) = (note, note_area) {
        strip
            .draw(&Text::new(
                text.to_string(),
                (g.px(10.0), g.px(1.0)),
                g.font(10.0).color(&RGBColor(90, 90, 90)),
            ))
            .map_err(err)?;
    }
    root.present().map_err(err)
}

fn draw_ratios<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    g: Geom,
    rows: &[RatioRow],
    x_title: &str,
    reference: Option<usize>,
    log: bool,
) -> DrawResult {
    let n = rows.len();
    let (mut lo, mut hi) = (1.0f64, 1.0f64);
    for (_, r, ci) in rows {
        let (a, b) = ci.unwrap_or((*r, *r));
        lo = lo.min(a).min(*r);
        hi = hi.max(b).max(*r);
    }
    let x = ValueAxis::new(lo, hi, log, false, 5);
    let labels: Vec<String> = rows.iter().rev().map(|(l, _, _)| l.clone()).collect();
    let y_area = label_area(g, &labels);
    let y = Categories::new(labels, 0.1);
    let mut chart = chart(root, g, (10.0, y_area), None, x, y)?;
    mesh(&mut chart, g, x_title)
        .disable_y_mesh()
        .x_label_formatter(&|x: &f64| format!("{}×", tick(x)))
        .draw()
        .map_err(err)?;
    // The line of no difference.
    chart
        .draw_series(DashedLineSeries::new(
            [(1.0, -0.6), (1.0, n as f64 - 0.4)],
            g.px(5.0),
            g.px(4.0),
            BLACK.stroke_width(g.upx(1.0)),
        ))
        .map_err(err)?;
    let colour = g.series(0);
    let line = colour.stroke_width(g.upx(1.6));
    for (i, (_, ratio, ci)) in rows.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        if reference == Some(i) {
            // 1 by definition: a black diamond, no interval (the table shows "-").
            chart
                .draw_series([TriangleMarker::new((*ratio, y), g.upx(4.5), BLACK.filled())])
                .map_err(err)?;
            continue;
        }
        if let Some((a, b)) = ci {
            let cap = 0.15;
            chart
                .draw_series([
                    PathElement::new(vec![(*a, y), (*b, y)], line),
                    PathElement::new(vec![(*a, y - cap), (*a, y + cap)], line),
                    PathElement::new(vec![(*b, y - cap), (*b, y + cap)], line),
                ])
                .map_err(err)?;
        }
        let style = if ci.is_some() {
            colour.filled()
        } else {
            WHITE.filled()
        };
        chart
            .draw_series([
                Circle::new((*ratio, y), g.upx(3.5), style),
                Circle::new((*ratio, y), g.upx(3.5), colour.stroke_width(g.upx(1.4))),
            ])
            .map_err(err)?;
    }
    root.present().map_err(err)
}

fn y_range<'a>(points: impl Iterator<Item = &'a (f64, Option<(f64, f64)>)>) -> (f64, f64) {
    let (lo, hi) = points.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (m, ci)| {
        let (l, h) = ci.unwrap_or((*m, *m));
        (a.min(l).min(*m), b.max(h).max(*m))
    });
    (lo, hi)
}

/// How a legend shows its series: as the marks the chart draws them with.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Swatch {
    /// A dot, for series of points (medians).
    Dot,
    /// A short line, for series drawn as lines: no circle, so the chart's circles are its
    /// data alone.
    Line,
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    g: Geom,
    series: &[String],
    swatch: Swatch,
) -> DrawResult {
    // A row of swatches under the panels: a legend inside a small panel would hide points.
    let per_row = 2;
    let (w, _) = area.dim_in_pixel();
    let col = w as i32 / per_row as i32;
    for (k, label) in series.iter().enumerate() {
        let x = (k % per_row) as i32 * col + g.px(16.0);
        let y = (k / per_row) as i32 * g.px(g.t(22.0)) + g.px(g.t(11.0));
        let colour = g.series(k);
        match swatch {
            Swatch::Dot => area
                .draw(&Circle::new((x, y), g.upx(4.0), colour.filled()))
                .map_err(err)?,
            Swatch::Line => area
                .draw(&PathElement::new(
                    vec![(x - g.px(6.0), y), (x + g.px(6.0), y)],
                    colour.stroke_width(g.upx(3.0)),
                ))
                .map_err(err)?,
        }
        area.draw(&Text::new(
            label.clone(),
            (x + g.px(10.0), y - g.px(g.t(7.0))),
            g.font(11.0),
        ))
        .map_err(err)?;
    }
    Ok(())
}

fn draw_medians<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    g: Geom,
    x_labels: &[String],
    (x_title, y_title): (&str, &str),
    facets: &[(Option<String>, Vec<Point>)],
    series: &[String],
    values: Values,
) -> DrawResult {
    let (_, height) = root.dim_in_pixel();
    let legend_height = if series.len() > 1 {
        g.px(g.t(22.0)) as u32 * series.len().div_ceil(2) as u32
    } else {
        0
    };
    let (plot_area, legend_area) = root.split_vertically(height - legend_height);
    let all: Vec<(f64, Option<(f64, f64)>)> = facets
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|p| (p.median, p.ci)))
        .collect();
    let (lo, hi) = y_range(all.iter());
    // The first panel also carries the y axis labels, so it is wider by their area.
    let y_area = g.px(g.t(62.0)) as u32;
    let (w, _) = plot_area.dim_in_pixel();
    let panel_w = (w.saturating_sub(y_area)) / facets.len().max(1) as u32;
    let mut widths: Vec<u32> = vec![panel_w; facets.len()];
    widths[0] += y_area;
    let mut panels = Vec::new();
    let mut rest = plot_area;
    for (k, width) in widths.iter().enumerate() {
        if k + 1 == widths.len() {
            panels.push(rest.clone());
        } else {
            let (left, right) = rest.split_horizontally(*width);
            panels.push(left);
            rest = right;
        }
    }
    let dodge = 0.5 / series.len().max(1) as f64;
    for (k, ((title, points), panel)) in facets.iter().zip(&panels).enumerate() {
        let mut chart = chart(
            panel,
            g,
            (8.0, if k == 0 { y_area } else { 0 }),
            title.as_deref(),
            Categories::new(x_labels.to_vec(), 0.0),
            ValueAxis::new(lo, hi, values.log, values.zero, 5),
        )?;
        let mut mesh = mesh(&mut chart, g, x_title);
        mesh.disable_x_mesh();
        if k == 0 {
            mesh.y_desc(y_title).y_label_formatter(&tick);
        } else {
            mesh.y_label_formatter(&|_| String::new());
        }
        mesh.draw().map_err(err)?;
        for p in points {
            let x = p.x as f64 + (p.series as f64 - (series.len().max(1) - 1) as f64 / 2.0) * dodge;
            let colour = g.series(p.series);
            let line = colour.stroke_width(g.upx(1.6));
            if let Some((a, b)) = p.ci {
                let cap = 0.06;
                chart
                    .draw_series([
                        PathElement::new(vec![(x, a), (x, b)], line),
                        PathElement::new(vec![(x - cap, a), (x + cap, a)], line),
                        PathElement::new(vec![(x - cap, b), (x + cap, b)], line),
                    ])
                    .map_err(err)?;
            }
            // Hollow: no interval to show (too few invocations).
            let fill = if p.ci.is_some() { colour } else { WHITE };
            chart
                .draw_series([
                    Circle::new((x, p.median), g.upx(3.5), fill.filled()),
                    Circle::new((x, p.median), g.upx(3.5), colour.stroke_width(g.upx(1.4))),
                ])
                .map_err(err)?;
        }
    }
    if series.len() > 1 {
        draw_legend(&legend_area, g, series, Swatch::Dot)?;
    }
    root.present().map_err(err)
}

/// A line of the line plot: (series label, points (x, median, CI)).
type Line = (String, Vec<(f64, f64, Band)>);

fn draw_line<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    g: Geom,
    (x_title, y_title): (&str, &str),
    series: &[Line],
    markers: bool,
    values: Values,
    levels: Option<&(AxisScale, Vec<f64>)>,
) -> DrawResult {
    // The legend goes under the chart: inside it, it would hide data.
    let (_, height) = root.dim_in_pixel();
    let legend_height = if series.len() > 1 {
        g.px(g.t(22.0)) as u32 * series.len().div_ceil(2) as u32
    } else {
        0
    };
    let (plot_area, legend_area) = root.split_vertically(height - legend_height);
    let root = &plot_area;
    let all: Vec<(f64, Option<(f64, f64)>)> = series
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|(_, m, ci)| (*m, *ci)))
        .collect();
    let (lo, hi) = y_range(all.iter());
    let y = ValueAxis::new(lo, hi, values.log, values.zero, 5);
    let y_area = g.px(g.t(62.0)) as u32;
    match levels {
        Some((AxisScale::Categorical, levels)) => {
            // Evenly spaced levels: points and intervals at the measured values only, dodged
            // by series; nothing drawn between levels.
            let labels: Vec<String> = levels.iter().map(tick).collect();
            let mut chart = chart(
                root,
                g,
                (10.0, y_area),
                None,
                Categories::new(labels, 0.0),
                y,
            )?;
            mesh(&mut chart, g, x_title)
                .disable_x_mesh()
                .y_desc(y_title)
                .y_label_formatter(&tick)
                .draw()
                .map_err(err)?;
            let dodge = 0.4 / series.len().max(1) as f64;
            for (k, (_, points)) in series.iter().enumerate() {
                let colour = g.series(k);
                let line = colour.stroke_width(g.upx(1.6));
                let offset = (k as f64 - (series.len().max(1) - 1) as f64 / 2.0) * dodge;
                for (x, m, ci) in points {
                    let Some(i) = levels.iter().position(|l| l == x) else {
                        continue;
                    };
                    let x = i as f64 + offset;
                    if let Some((a, b)) = ci {
                        let cap = 0.05;
                        chart
                            .draw_series([
                                PathElement::new(vec![(x, *a), (x, *b)], line),
                                PathElement::new(vec![(x - cap, *a), (x + cap, *a)], line),
                                PathElement::new(vec![(x - cap, *b), (x + cap, *b)], line),
                            ])
                            .map_err(err)?;
                    }
                    let fill = if ci.is_some() { colour } else { WHITE };
                    chart
                        .draw_series([
                            Circle::new((x, *m), g.upx(3.5), fill.filled()),
                            Circle::new((x, *m), g.upx(3.5), colour.stroke_width(g.upx(1.4))),
                        ])
                        .map_err(err)?;
                }
            }
        }
        _ => {
            let (x_lo, x_hi) = series
                .iter()
                .flat_map(|(_, pts)| pts.iter().map(|p| p.0))
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
                    (a.min(x), b.max(x))
                });
            let x_log = matches!(levels, Some((AxisScale::Log, _))) && x_lo > 0.0;
            let mut x = ValueAxis::new(x_lo, x_hi, x_log, false, 6);
            if let Some((_, levels)) = levels {
                // Ticked exactly at the measured levels.
                x = x.ticked_at(levels);
            }
            let mut chart = chart(root, g, (10.0, y_area), None, x, y)?;
            mesh(&mut chart, g, x_title)
                .y_desc(y_title)
                .x_label_formatter(&tick)
                .y_label_formatter(&tick)
                .draw()
                .map_err(err)?;
            for (k, (_, points)) in series.iter().enumerate() {
                let colour = g.series(k);
                let band = ci_band(points);
                if band.len() >= 4 {
                    chart
                        .draw_series([Polygon::new(band, colour.mix(0.2).filled())])
                        .map_err(err)?;
                }
                chart
                    .draw_series(LineSeries::new(
                        points.iter().map(|(x, m, _)| (*x, *m)),
                        colour.stroke_width(g.upx(1.8)),
                    ))
                    .map_err(err)?;
                if markers {
                    chart
                        .draw_series(points.iter().map(|(x, m, ci)| {
                            let fill = if ci.is_some() { colour } else { WHITE };
                            Circle::new((*x, *m), g.upx(3.0), fill.filled())
                        }))
                        .map_err(err)?;
                    chart
                        .draw_series(points.iter().map(|(x, m, _)| {
                            Circle::new((*x, *m), g.upx(3.0), colour.stroke_width(g.upx(1.2)))
                        }))
                        .map_err(err)?;
                }
            }
        }
    }
    if series.len() > 1 {
        let labels: Vec<String> = series.iter().map(|(l, _)| l.clone()).collect();
        // Categorical levels are points; otherwise lines.
        let swatch = match levels {
            Some((AxisScale::Categorical, _)) => Swatch::Dot,
            _ => Swatch::Line,
        };
        draw_legend(&legend_area, g, &labels, swatch)?;
    }
    plot_area.present().map_err(err)
}

/// One cell's metric across runs, for `benchbox history`: the run medians as a line over the
/// runs in history order (x = the run's position, labelled with `x_labels`), their intervals as
/// a band, and a vertical dashed line at each change point (vermillion for a regression, bluish
/// green for an improvement).
#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    pub x_title: String,
    pub y_title: String,
    /// The name of each x position (a revision), for the ticks.
    pub x_labels: Vec<String>,
    /// (x, median, CI), x ascending.
    pub points: Vec<(f64, f64, Band)>,
    /// (x of the first point after the change, is a regression).
    pub changes: Vec<(f64, bool)>,
}

/// The trend plot as SVG, and as PNG when `png` (the HTML page needs only the SVG).
pub fn trend(stem: &str, trend: Trend, png: bool) -> Result<(String, Option<Vec<u8>>)> {
    let figure = Figure::Trend(trend);
    // History has no `[report]` of its own: the default figure style.
    let st = Style::new(&Default::default());
    if png {
        let (svg, png) = render(stem, &figure, &st)?;
        return Ok((svg, Some(png)));
    }
    Ok((svg_of(stem, &figure, &st)?, None))
}

fn draw_trend<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, g: Geom, t: &Trend) -> DrawResult {
    let all: Vec<(f64, Option<(f64, f64)>)> = t.points.iter().map(|(_, m, ci)| (*m, *ci)).collect();
    let (lo, hi) = y_range(all.iter());
    let n = t.x_labels.len().max(1) as f64;
    let y_area = g.px(g.t(62.0)) as u32;
    let mut chart = chart(root, g, (10.0, y_area), None, -0.5..n - 0.5, lo..hi)?;
    let label = |x: &f64| {
        let i = x.round();
        if (x - i).abs() > 1e-6 || i < 0.0 {
            return String::new();
        }
        t.x_labels.get(i as usize).cloned().unwrap_or_default()
    };
    // As many revision labels as fit side by side (about 0.6 em a character, an em apart),
    // at most 6; and y ticks with the decimals their spacing needs, so no two read the same.
    let longest = t
        .x_labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(1) as f64;
    let em = g.text * g.scale;
    let width = f64::from(root.dim_in_pixel().0) * 0.8;
    let fit = (width / ((longest * 0.6 + 1.0) * em))
        .floor()
        .clamp(2.0, 6.0) as usize;
    let y_tick = |v: &f64| tick_at_spacing(*v, (hi - lo) / 6.0);
    mesh(&mut chart, g, &t.x_title)
        .y_desc(t.y_title.as_str())
        .x_label_formatter(&label)
        .y_label_formatter(&y_tick)
        .x_labels(fit)
        .y_labels(6)
        .draw()
        .map_err(err)?;
    let colour = g.series(0);
    let band = ci_band(&t.points);
    if band.len() >= 4 {
        chart
            .draw_series([Polygon::new(band, colour.mix(0.2).filled())])
            .map_err(err)?;
    }
    chart
        .draw_series(LineSeries::new(
            t.points.iter().map(|(x, m, _)| (*x, *m)),
            colour.stroke_width(g.upx(1.6)),
        ))
        .map_err(err)?;
    chart
        .draw_series(
            t.points
                .iter()
                .map(|(x, m, _)| Circle::new((*x, *m), g.upx(2.0), colour.filled())),
        )
        .map_err(err)?;
    for &(x, regression) in &t.changes {
        // Between the last point before the change and the first after it.
        let x = x - 0.5;
        let c = rgb(super::palette::OKABE_ITO[if regression { 5 } else { 2 }]);
        chart
            .draw_series(DashedLineSeries::new(
                [(x, lo), (x, hi)],
                g.px(5.0),
                g.px(4.0),
                c.stroke_width(g.upx(1.5)),
            ))
            .map_err(err)?;
    }
    root.present().map_err(err)
}

/// Draws `figure` as SVG text and as PNG bytes.
fn render(stem: &str, figure: &Figure, st: &Style) -> Result<(String, Vec<u8>)> {
    let svg = svg_of(stem, figure, st)?;
    let fail = |message: String| RenderError::Plot {
        plot: stem.to_string(),
        message,
    };
    let (w, h) = figure.size(st);
    let (pw, ph) = (
        (w as f64 * PNG_SCALE).round() as u32,
        (h as f64 * PNG_SCALE).round() as u32,
    );
    let mut rgb_buf = vec![0u8; pw as usize * ph as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb_buf, (pw, ph)).into_drawing_area();
        figure.draw(&root, geom(st, PNG_SCALE)).map_err(fail)?;
    }
    let png = encode_png(&rgb_buf, pw, ph).map_err(|e| fail(e.to_string()))?;
    Ok((svg, png))
}

/// The sizes and colours of `st` for a backend drawing `scale` pixels per SVG pixel.
fn geom(st: &Style, scale: f64) -> Geom {
    Geom {
        scale,
        text: st.text_px(0.0),
        palette: st.palette,
    }
}

/// Draws `figure` as SVG text of its printed size.
fn svg_of(stem: &str, figure: &Figure, st: &Style) -> Result<String> {
    register_font();
    let (w, h) = figure.size(st);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        figure
            .draw(&root, geom(st, 1.0))
            .map_err(|message| RenderError::Plot {
                plot: stem.to_string(),
                message,
            })?;
    }
    Ok(printed_size(&svg, w, h))
}

/// plotters' SVG with its printed size: `width`/`height` in inches and a viewBox in its pixels,
/// so a viewer, a browser and the PDF agree on the figure's size.
fn printed_size(svg: &str, w: u32, h: u32) -> String {
    let px = super::figure_style::PX_PER_IN;
    let from = format!("width=\"{w}\" height=\"{h}\"");
    let to = format!(
        "width=\"{:.3}in\" height=\"{:.3}in\"",
        w as f64 / px,
        h as f64 / px
    );
    svg.replacen(&from, &to, 1)
}

/// An 8-bit RGB PNG with no metadata chunks (no time, no software name): same pixels, same
/// bytes.
fn encode_png(rgb_buf: &[u8], w: u32, h: u32) -> std::result::Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        // The PNG's true resolution, so a paper that places it by its own size gets the
        // figure's width.
        let ppm = (super::figure_style::PX_PER_IN * PNG_SCALE / 0.0254).round() as u32;
        encoder.set_pixel_dims(Some(png::PixelDimensions {
            xppu: ppm,
            yppu: ppm,
            unit: png::Unit::Meter,
        }));
        let mut writer = encoder.write_header()?;
        writer.write_image_data(rgb_buf)?;
    }
    Ok(out)
}

/// A metric key as a file-name part: `[A-Za-z0-9_-]`, anything else as `-`.
fn file_part(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Axis values that are all numbers, with at least three distinct ones: worth a line.
fn numeric_values(axis: &Axis) -> Option<Vec<f64>> {
    let mut values: Vec<f64> = axis
        .values
        .iter()
        .map(|v| v.as_f64())
        .collect::<Option<Vec<f64>>>()?;
    values.sort_by(f64::total_cmp);
    values.dedup();
    (values.len() >= 3).then_some(values)
}

/// The label of a cell restricted to some axes ("gc=G1 heap=2g"); "" for no axes.
fn sub_label(cell: &crate::results::CellResult, names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{n}={}", axis_text(cell, n)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `interval_note`: how the run's intervals were made when not simply bootstrapped at the full
/// count (see [`super::interval_note`]), said in the ratio plots' captions.
fn figures_for(
    table: &MetricTable,
    axes: &[Axis],
    interval_note: &Option<String>,
    st: &Style,
    how: &str,
) -> Vec<(String, String, Figure)> {
    let m = &table.metric;
    let key = file_part(&m.key);
    // A custom metric keeps the unit its author wrote ("B" stays B); built-in times and
    // bytes are scaled to a readable unit, which the axis title says.
    let own_unit;
    let scale = if crate::metrics::is_builtin(&m.key) {
        &table.scale
    } else {
        own_unit = super::Scale {
            factor: 1.0,
            unit: m.unit.clone(),
        };
        &own_unit
    };
    let y_title = if st.labelled(&m.key) {
        st.label(&m.key, None)
    } else {
        scale.axis_title(&m.title)
    };
    // Absolute quantities (times, bytes, any metric with a unit) start at zero.
    let zero = !scale.unit.is_empty();
    let axis_title = |name: &str| st.label(name, None);
    let values_of = |pts: &mut dyn Iterator<Item = f64>| Values {
        log: st.log_for(pts),
        zero,
    };
    // Hollow markers: cells whose median has no interval.
    let without_ci = table
        .rows
        .iter()
        .filter(|r| r.summary.is_some_and(|s| s.median_ci.is_none()))
        .count();
    let hollow = if without_ci > 0 {
        format!(
            " Hollow markers: no confidence interval ({without_ci} cell(s), fewer than {} invocations).",
            crate::stats::MIN_BOOTSTRAP_SAMPLES
        )
    } else {
        String::new()
    };
    let mut out = Vec::new();
    let scaled_ci = |s: &crate::stats::Summary| {
        s.median_ci
            .map(|ci| (ci.lower * scale.factor, ci.upper * scale.factor))
    };

    // Distribution of invocations.
    let cells: Vec<(String, Vec<f64>)> = table
        .rows
        .iter()
        .filter(|r| r.summary.is_some())
        .map(|r| {
            let values = m.values(r.cell).iter().map(|v| v * scale.factor).collect();
            (r.cell.label.clone(), values)
        })
        .collect();
    if cells.is_empty() {
        return out;
    }
    let (outlier, outlier_name) = st.outlier();
    let _ = outlier;
    let (note, mut caption) = match thinning_note(&cells) {
        None => (
            None,
            format!(
                "{}: every measured invocation per cell, with box plots (quartiles, median, 1.5 IQR whiskers).",
                m.title
            ),
        ),
        Some((note, clause)) => (
            Some(note),
            format!(
                "{}: box plots of every measured invocation per cell (quartiles, median, 1.5 IQR whiskers); {clause}.",
                m.title
            ),
        ),
    };
    caption.push_str(&format!(
        " Points beyond the whiskers (Tukey, 1.5 IQR) in {outlier_name}. {how}"
    ));
    let mut values = values_of(&mut cells.iter().flat_map(|(_, v)| v.iter().copied()));
    // A distribution shows spread: from zero, its boxes shrank to a few pixels wide.
    values.zero = false;
    out.push((
        format!("distribution-{key}"),
        caption,
        Figure::Distribution {
            cells,
            x_title: y_title.clone(),
            note,
            values,
        },
    ));

    // Medians grouped by the first axis, faceted by the second, series by the rest.
    let names: Vec<&str> = axes.iter().map(|a| a.name.as_str()).collect();
    let present = |axis: &Axis| -> Vec<String> {
        axis.values
            .iter()
            .map(crate::spec::axis_value_text)
            .filter(|v| {
                table
                    .rows
                    .iter()
                    .any(|r| r.summary.is_some() && axis_text(r.cell, &axis.name) == *v)
            })
            .collect()
    };
    let (x_labels, x_title) = match axes.first() {
        Some(a) => (present(a), axis_title(&a.name)),
        None => (
            table.rows.iter().map(|r| r.cell.label.clone()).collect(),
            "cell".to_string(),
        ),
    };
    let facet_values: Vec<Option<String>> = match axes.get(1) {
        Some(a) => present(a).into_iter().map(Some).collect(),
        None => vec![None],
    };
    let rest: Vec<&str> = names.iter().skip(2).copied().collect();
    let mut series: Vec<String> = Vec::new();
    for r in table.rows.iter().filter(|r| r.summary.is_some()) {
        let s = sub_label(r.cell, &rest);
        if !series.contains(&s) {
            series.push(s);
        }
    }
    let facets: Vec<(Option<String>, Vec<Point>)> = facet_values
        .iter()
        .map(|fv| {
            let points = table
                .rows
                .iter()
                .filter_map(|r| {
                    let s = r.summary?;
                    if let (Some(fv), Some(a)) = (fv, axes.get(1))
                        && axis_text(r.cell, &a.name) != *fv
                    {
                        return None;
                    }
                    let x = match axes.first() {
                        Some(a) => x_labels
                            .iter()
                            .position(|l| *l == axis_text(r.cell, &a.name))?,
                        None => r.index,
                    };
                    let series = series.iter().position(|l| *l == sub_label(r.cell, &rest))?;
                    Some(Point {
                        x,
                        series,
                        median: s.median * scale.factor,
                        ci: scaled_ci(s),
                    })
                })
                .collect();
            let title = fv.as_ref().map(|v| {
                format!(
                    "{} = {v}",
                    axes.get(1).map(|a| axis_title(&a.name)).unwrap_or_default()
                )
            });
            (title, points)
        })
        .collect();
    let grouping = match (axes.first(), axes.get(1)) {
        (Some(a), Some(b)) => format!(", by {} (x) and {} (panels)", a.name, b.name),
        (Some(a), None) => format!(", by {}", a.name),
        _ => String::new(),
    };
    let values = values_of(
        &mut facets
            .iter()
            .flat_map(|(_, pts)| pts.iter())
            .flat_map(|p| [Some(p.median), p.ci.map(|c| c.0), p.ci.map(|c| c.1)])
            .flatten(),
    );
    out.push((
        format!("medians-{key}"),
        format!(
            "{}: median per cell (points) with its 95% confidence interval (whiskers){grouping}. {how}{hollow}",
            m.title
        ),
        Figure::Medians {
            x_labels,
            x_title,
            y_title: y_title.clone(),
            facets,
            series: if series.len() > 1 { series } else { Vec::new() },
            values,
        },
    ));

    // A line over each numeric axis with enough values.
    for axis in axes {
        let Some(levels) = numeric_values(axis) else {
            continue;
        };
        let axis_scale = st.axis_scale(&axis.name);
        let others: Vec<&str> = names.iter().copied().filter(|n| *n != axis.name).collect();
        let mut lines: Vec<Line> = Vec::new();
        for r in &table.rows {
            let Some(s) = r.summary else { continue };
            let Some(x) = r
                .cell
                .axes
                .iter()
                .find(|(n, _)| *n == axis.name)
                .and_then(|(_, v)| v.as_f64())
            else {
                continue;
            };
            let label = sub_label(r.cell, &others);
            let point = (x, s.median * scale.factor, scaled_ci(s));
            match lines.iter_mut().find(|(l, _)| *l == label) {
                Some((_, pts)) => pts.push(point),
                None => lines.push((label, vec![point])),
            }
        }
        for (_, pts) in &mut lines {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        lines.retain(|(_, pts)| pts.len() >= 2);
        if lines.is_empty() {
            continue;
        }
        let values = values_of(
            &mut lines
                .iter()
                .flat_map(|(_, pts)| pts.iter())
                .flat_map(|(_, m, ci)| [Some(*m), ci.map(|c| c.0), ci.map(|c| c.1)])
                .flatten(),
        );
        let shown = match axis_scale {
            AxisScale::Categorical => format!(
                "median (points) per level of {} with its 95% confidence interval (whiskers); levels evenly spaced, not to scale",
                axis.name
            ),
            _ => format!(
                "median over {} with its 95% confidence interval as a band",
                axis.name
            ),
        };
        out.push((
            format!("line-{key}-{}", file_part(&axis.name)),
            format!("{}: {shown}. {how}{hollow}", m.title),
            Figure::Line {
                x_title: axis_title(&axis.name),
                y_title: y_title.clone(),
                series: lines,
                markers: true,
                values,
                levels: Some((axis_scale, levels)),
            },
        ));
    }

    // Ratios to the reference.
    if let Some(reference) = table.reference_label() {
        let reference_row = table
            .rows
            .iter()
            .filter(|r| r.ratio.is_some())
            .position(|r| r.is_reference);
        let rows: Vec<RatioRow> = table
            .rows
            .iter()
            .filter_map(|r| {
                let ratio = r.ratio.as_ref()?;
                let label = if r.is_reference {
                    format!("{} (ref.)", r.cell.label)
                } else {
                    r.cell.label.clone()
                };
                Some((label, ratio.ratio, ratio.ci.map(|c| (c.lower, c.upper))))
            })
            .collect();
        if rows.len() >= 2 {
            let log = st.log_for(
                rows.iter()
                    .flat_map(|(_, r, ci)| [Some(*r), ci.map(|c| c.0), ci.map(|c| c.1)])
                    .flatten(),
            );
            let hollow_ratios = rows
                .iter()
                .enumerate()
                .filter(|(i, (_, _, ci))| ci.is_none() && Some(*i) != reference_row)
                .count();
            let mut caption = match &interval_note {
                None => format!(
                    "{}: median of each cell over the median of {reference}, with the 95% bootstrap interval of the ratio.",
                    m.title
                ),
                Some(note) => format!(
                    "{}: median of each cell over the median of {reference}, with the 95% interval of the ratio; {note}.",
                    m.title
                ),
            };
            caption.push_str(&format!(
                " The reference (triangle) is 1 by definition, without an interval. {how}"
            ));
            if hollow_ratios > 0 {
                caption.push_str(&format!(
                    " Hollow markers: no interval ({hollow_ratios} cell(s), fewer than {} invocations on a side).",
                    crate::stats::MIN_BOOTSTRAP_SAMPLES
                ));
            }
            if log {
                caption.push_str(" Logarithmic axis.");
            }
            out.push((
                format!("ratios-{key}"),
                caption,
                Figure::Ratios {
                    rows,
                    x_title: format!("{} relative to {reference}", m.short_title()),
                    reference: reference_row,
                    log,
                },
            ));
        }
    }
    out
}

/// Every plot of the run, in a stable order: per report metric, its distribution, medians,
/// lines and ratios.
pub fn plots(results: &RunResults, opts: &RenderOptions) -> Result<Vec<Plot>> {
    plots_of(&Analysis::new(results, opts)?)
}

/// [`plots`] from the run's analysis: they only read the summaries and ratios there.
pub fn plots_of(analysis: &Analysis) -> Result<Vec<Plot>> {
    let results = analysis.results;
    let axes = axes(results);
    let interval_note = super::interval_note(results);
    let st = Style::new(&analysis.figures);
    let how = how_measured(results);
    let mut figures = Vec::new();
    for table in &analysis.tables {
        for (stem, caption, figure) in figures_for(table, &axes, &interval_note, &st, &how) {
            figures.push((stem, table.metric.key.clone(), caption, figure));
        }
    }
    if let Some((stem, caption, figure)) = memory_over_time(analysis) {
        figures.push((stem, "peak_memory_bytes".into(), caption, figure));
    }
    let mut out = Vec::new();
    for (stem, metric, mut caption, figure) in figures {
        if figure_is_log(&figure) && !caption.contains("Logarithmic") {
            caption.push_str(" Logarithmic value axis.");
        }
        let (svg, png) = render(&stem, &figure, &st)?;
        let fail = |message: String| RenderError::Plot {
            plot: stem.clone(),
            message,
        };
        let pdf = super::pdf::pdf(&svg).map_err(fail)?;
        let outlined_svg = super::pdf::outlined_svg(&svg).map_err(fail)?;
        out.push(Plot {
            stem,
            metric,
            caption,
            svg,
            png,
            pdf,
            outlined_svg,
        });
    }
    Ok(out)
}

/// Whether a figure's value axis is logarithmic.
fn figure_is_log(figure: &Figure) -> bool {
    match figure {
        Figure::Distribution { values, .. }
        | Figure::Medians { values, .. }
        | Figure::Line { values, .. } => values.log,
        Figure::Ratios { log, .. } => *log,
        Figure::Trend(_) => false,
    }
}

/// The caption's sentence on what was measured and how: n per cell, the interval method, the
/// confidence level and the bootstrap's seed.
fn how_measured(results: &RunResults) -> String {
    let ns: Vec<usize> = results
        .cells
        .iter()
        .filter_map(|c| c.summary.get("wall_s").map(|s| s.n))
        .collect();
    let n = match (ns.iter().min(), ns.iter().max()) {
        (Some(a), Some(b)) if a == b => format!("n = {a} invocations per cell"),
        (Some(a), Some(b)) => format!("n = {a} to {b} invocations per cell"),
        _ => "no invocations".to_string(),
    };
    format!(
        "{n}; {:.0}% {}, seed {}.",
        results.stats.confidence * 100.0,
        super::interval_methods(results),
        results.stats.seed
    )
}

/// The outline of a CI band through `points` (x, value, interval): the upper bounds left to
/// right, then the lower bounds back; points without an interval are left out.
fn ci_band(points: &[(f64, f64, Band)]) -> Vec<(f64, f64)> {
    let upper = points
        .iter()
        .filter_map(|(x, _, ci)| ci.map(|(_, b)| (*x, b)));
    let lower = points
        .iter()
        .rev()
        .filter_map(|(x, _, ci)| ci.map(|(a, _)| (*x, a)));
    upper.chain(lower).collect()
}

/// Memory in use over time, one series per cell; `None` when nothing was sampled. A cell whose
/// measured invocations' timelines were read ([`Analysis::memory_timelines`], two or more) is a
/// band over those invocations ([`memory_band`]). Otherwise the cell's last measured timeline
/// (results.json's): a line through its samples when short, a band over time bins when long.
fn memory_over_time(analysis: &Analysis) -> Option<(String, String, Figure)> {
    let (mut over_invocations, mut over_bins) = (0usize, false);
    let series: Vec<Line> = analysis
        .results
        .cells
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let timelines: Vec<&[(f64, u64)]> = analysis
                .memory_timelines
                .get(i)
                .map(|t| t.iter().map(Vec::as_slice).collect())
                .unwrap_or_default();
            let points = if timelines.len() >= 2 {
                over_invocations = over_invocations.max(timelines.len());
                memory_band(&timelines)
            } else if c.memory_timeline.is_empty() {
                return None;
            } else if c.memory_timeline.len() <= MAX_MEMORY_POINTS {
                c.memory_timeline
                    .iter()
                    .map(|&(t, bytes)| (t, mib(bytes), None))
                    .collect()
            } else {
                over_bins = true;
                memory_band(&[c.memory_timeline.as_slice()])
            };
            Some((c.label.clone(), points))
        })
        .collect();
    if series.is_empty() {
        return None;
    }
    let mut caption =
        String::from("Memory in use over time since the exec, per cell, sampled from the cgroup");
    if over_invocations > 0 {
        caption.push_str(&format!(
            "; over the cell's measured invocations with status ok (at most {MAX_MEMORY_TIMELINES}, evenly spread, per cell): their median and 10-90% band in {MEMORY_BINS} time bins"
        ));
    }
    if over_bins || over_invocations == 0 {
        caption.push_str(if over_invocations > 0 {
            "; a cell with one such invocation: that invocation"
        } else {
            "; per cell its last measured invocation with status ok"
        });
        if over_bins {
            caption.push_str(&format!(
                ", of over {MAX_MEMORY_POINTS} samples as their median and 10-90% band in {MEMORY_BINS} time bins"
            ));
        }
    }
    caption.push('.');
    let banded = over_bins || over_invocations > 0;
    Some((
        "memory-over-time".to_string(),
        caption,
        Figure::Line {
            x_title: "Time since exec (s)".into(),
            y_title: "Memory (MiB)".into(),
            series,
            // Dots mark samples; a band's points are bins.
            markers: !banded,
            values: Values {
                log: false,
                zero: true,
            },
            levels: None,
        },
    ))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Memory timelines (seconds since the exec, bytes) pooled into [`MEMORY_BINS`] equal time
/// bins from the earliest to the latest sample: per bin that has samples, (its middle, the
/// median, the 10% and 90% quantiles), in MiB. Over several invocations' timelines this is
/// the band over invocations (each contributes its samples in the bin, the same number for the
/// same sampling interval); over one long timeline, the spread within each bin. Its size is
/// bounded by the bins, whatever the number or length of the timelines; and it is a pure
/// function of the samples.
fn memory_band(timelines: &[&[(f64, u64)]]) -> Vec<(f64, f64, Band)> {
    let samples = timelines.iter().flat_map(|t| t.iter());
    let (lo, hi) = samples
        .clone()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (t, _)| {
            (a.min(*t), b.max(*t))
        });
    if !lo.is_finite() || !hi.is_finite() {
        return Vec::new();
    }
    let width = (hi - lo) / MEMORY_BINS as f64;
    let mut bins: Vec<Vec<f64>> = vec![Vec::new(); MEMORY_BINS];
    for &(t, bytes) in samples {
        let k = if width > 0.0 {
            (((t - lo) / width) as usize).min(MEMORY_BINS - 1)
        } else {
            0
        };
        bins[k].push(mib(bytes));
    }
    bins.into_iter()
        .enumerate()
        .filter(|(_, values)| !values.is_empty())
        .map(|(k, mut values)| {
            values.sort_by(f64::total_cmp);
            let middle = lo + (k as f64 + 0.5) * width;
            let band = (quantile(&values, 0.1), quantile(&values, 0.9));
            (middle, quantile(&values, 0.5), Some(band))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_carry_the_decimals_their_spacing_needs() {
        // A trend from 0.0118 to 0.0123 with ticks 0.0001 apart: no two labels alike.
        let labels: Vec<String> = (0..6)
            .map(|i| tick_at_spacing(0.0118 + f64::from(i) * 0.0001, 0.0001))
            .collect();
        assert_eq!(
            labels,
            ["0.0118", "0.0119", "0.012", "0.0121", "0.0122", "0.0123"]
        );
        // Coarse spacing keeps tick's three decimals at most, trailing zeros dropped.
        assert_eq!(tick_at_spacing(1.25, 0.5), "1.25");
        assert_eq!(tick_at_spacing(2000.0, 500.0), "2000");
        assert_eq!(tick_at_spacing(-0.0, 1.0), "0");
        assert_eq!(tick_at_spacing(0.5, f64::NAN), tick(&0.5));
    }

    #[test]
    fn jitter_is_fixed_and_spread() {
        let j: Vec<f64> = (0..10).map(jitter).collect();
        assert!(j.iter().all(|v| (-0.5..0.5).contains(v)));
        assert_eq!(j, (0..10).map(jitter).collect::<Vec<_>>());
        let mut sorted = j.clone();
        sorted.sort_by(f64::total_cmp);
        // No two of the first ten closer than 1/20 of the range.
        assert!(sorted.windows(2).all(|w| w[1] - w[0] > 0.05));
    }

    #[test]
    fn small_cells_are_not_thinned_and_large_ones_keep_at_most_the_bound() {
        assert_eq!(thinning_step(1), 1);
        assert_eq!(thinning_step(MAX_POINTS_PER_CELL), 1);
        assert_eq!(thinning_step(MAX_POINTS_PER_CELL + 1), 2);
        assert_eq!(thinning_step(5_000), 25);
        for n in [201, 399, 400, 401, 2_000, 4_999, 5_000, 100_000] {
            let sorted: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let kept = thin(&sorted);
            // At most the bound and the largest; the extremes are always there.
            assert!(kept.len() <= MAX_POINTS_PER_CELL + 1, "{n}: {}", kept.len());
            assert!(kept.len() >= MAX_POINTS_PER_CELL / 2, "{n}: {}", kept.len());
            assert_eq!(kept.first(), sorted.first());
            assert_eq!(kept.last(), sorted.last());
            assert!(kept.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn thinning_depends_on_the_values_only() {
        // The same values in another order (another schedule, a resumed or merged run) give
        // the same points.
        let values: Vec<f64> = (0..1_000).map(|i| ((i * 7_919) % 1_000) as f64).collect();
        let mut a = values.clone();
        a.sort_by(f64::total_cmp);
        let mut b: Vec<f64> = values.into_iter().rev().collect();
        b.sort_by(f64::total_cmp);
        assert_eq!(thin(&a), thin(&b));
        // Evenly spaced quantiles: every 5th of 0..1000.
        assert_eq!(thin(&a)[..3], [0.0, 5.0, 10.0]);
        assert_eq!(thin(&a).last(), Some(&999.0));
    }

    #[test]
    fn thinning_is_said_in_words() {
        assert_eq!(thousands(5), "5");
        assert_eq!(thousands(5_000), "5,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(every(25, 5_000), "every 25th of 5,000");
        assert_eq!(every(2, 300), "every 2nd of 300");
        assert_eq!(every(21, 4_200), "every 21st of 4,200");
        assert_eq!(every(13, 2_600), "every 13th of 2,600");
        let cell = |n: usize| ("c".to_string(), vec![0.0; n]);
        assert_eq!(thinning_note(&[cell(11), cell(200)]), None);
        let (line, clause) = thinning_note(&[cell(5_000), cell(5_000)]).unwrap();
        assert_eq!(
            line,
            "Points: every 25th of 5,000 invocations shown per cell, sorted"
        );
        assert!(clause.starts_with("points thinned: every 25th of 5,000"));
        let (line, clause) = thinning_note(&[cell(5_000), cell(300), cell(11)]).unwrap();
        assert_eq!(
            line,
            "Points over 200 per cell: every 25th of 5,000 (1 cell), every 2nd of 300 (1 cell), sorted"
        );
        assert!(
            clause.ends_with("other cells show every invocation"),
            "{clause}"
        );
    }

    #[test]
    fn a_memory_band_has_at_most_one_point_per_bin() {
        // Three invocations of 10,000 samples each, 1 ms apart, at 10, 20 and 30 MiB.
        let timelines: Vec<Vec<(f64, u64)>> = (1..=3u64)
            .map(|k| {
                (0..10_000)
                    .map(|i| (i as f64 * 0.001, (k * 10) << 20))
                    .collect()
            })
            .collect();
        let slices: Vec<&[(f64, u64)]> = timelines.iter().map(|t| t.as_slice()).collect();
        let band = memory_band(&slices);
        assert_eq!(band.len(), MEMORY_BINS);
        for (t, median, ci) in &band {
            assert!((0.0..=10.0).contains(t));
            assert_eq!(*median, 20.0);
            let (lo, hi) = ci.unwrap();
            assert!(
                (10.0..20.0).contains(&lo) && hi > 20.0 && hi <= 30.0,
                "{lo} {hi}"
            );
        }
        assert!(band.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(memory_band(&slices), band);
        assert!(memory_band(&[]).is_empty());
        // A single sample (or samples all at one time) is one bin.
        assert_eq!(memory_band(&[&[(0.5, 1 << 20)]]).len(), 1);
    }

    #[test]
    fn only_numeric_axes_with_three_values_get_a_line() {
        let axis = |values: serde_json::Value| Axis {
            name: "a".into(),
            values: serde_json::from_value(values).unwrap(),
        };
        assert!(numeric_values(&axis(serde_json::json!([1, 6, 9]))).is_some());
        assert!(numeric_values(&axis(serde_json::json!([0.5, 1.0]))).is_none());
        assert!(numeric_values(&axis(serde_json::json!(["1", "2", "3"]))).is_none());
    }
}
