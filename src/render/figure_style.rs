//! What the plots take from the figure options ([`crate::spec::ReportOptions`], the matrix's
//! `[report]` under `report`'s flags): sizes in SVG pixels from inches and points, the palette,
//! axis titles from names, when a value axis is logarithmic, and the value axis itself
//! ([`ValueAxis`]: linear from zero, or log, ticked at round numbers or at given values).

use std::ops::Range;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};

use super::palette;
use crate::spec::ReportOptions;
use crate::spec::report_options::{AUTO_LOG_SPAN, AxisScale, LogScale, Palette};

/// SVG pixels per inch of the printed figure: a 3.5 in column is 504 px wide.
pub const PX_PER_IN: f64 = 144.0;
/// The default width: one column of a two-column paper.
pub const DEFAULT_WIDTH_IN: f64 = 3.5;
/// The default tick-label size; axis titles are 1 pt larger (8-9 pt at the printed width).
pub const DEFAULT_FONT_PT: f64 = 8.0;

/// The figure options resolved, for drawing.
#[derive(Debug, Clone)]
pub struct Style {
    pub width_in: f64,
    pub font_pt: f64,
    pub log: LogScale,
    pub palette: Palette,
    opts: ReportOptions,
}

impl Style {
    pub fn new(opts: &ReportOptions) -> Style {
        Style {
            width_in: opts.figure_width_in.unwrap_or(DEFAULT_WIDTH_IN),
            font_pt: opts.font_size_pt.unwrap_or(DEFAULT_FONT_PT),
            log: opts.log_scale.unwrap_or(LogScale::Auto),
            palette: opts.palette.unwrap_or(Palette::OkabeIto),
            opts: opts.clone(),
        }
    }

    /// The figure's width in SVG pixels.
    pub fn width_px(&self) -> u32 {
        (self.width_in * PX_PER_IN).round() as u32
    }

    /// A text size in SVG pixels: the tick size plus `delta` points.
    pub fn text_px(&self, delta: f64) -> f64 {
        (self.font_pt + delta) * PX_PER_IN / 72.0
    }

    /// Series `i`'s colour.
    pub fn series(&self, i: usize) -> (u8, u8, u8) {
        series(self.palette, i)
    }

    /// The colour of points beyond the whiskers, and its name for captions.
    pub fn outlier(&self) -> ((u8, u8, u8), &'static str) {
        outlier(self.palette)
    }
}

/// Series `i`'s colour in palette `p`.
pub fn series(p: Palette, i: usize) -> (u8, u8, u8) {
    match p {
        Palette::OkabeIto => palette::series(i),
        Palette::Grey => GREYS[i % GREYS.len()],
    }
}

/// The colour of points beyond the whiskers, and its name for captions.
pub fn outlier(p: Palette) -> ((u8, u8, u8), &'static str) {
    match p {
        Palette::OkabeIto => (palette::OKABE_ITO[5], "vermillion"),
        Palette::Grey => ((0, 0, 0), "black"),
    }
}

/// The colour of the distribution's points.
pub fn point(p: Palette) -> (u8, u8, u8) {
    match p {
        Palette::OkabeIto => palette::series(0),
        Palette::Grey => (150, 150, 150),
    }
}

impl Style {
    /// The title of an axis or a metric: the user's label, else `fallback` (a metric's title),
    /// else the name in words ([`words`]).
    pub fn label(&self, name: &str, fallback: Option<&str>) -> String {
        match (self.opts.labels.get(name), fallback) {
            (Some(l), _) => l.clone(),
            (None, Some(f)) => f.to_string(),
            (None, None) => words(name),
        }
    }

    /// Whether the user labelled `name` (the unit is then theirs to write).
    pub fn labelled(&self, name: &str) -> bool {
        self.opts.labels.contains_key(name)
    }

    /// How axis `name` sits on an x axis: categorical unless the user says linear or log.
    pub fn axis_scale(&self, name: &str) -> AxisScale {
        self.opts
            .axes
            .get(name)
            .copied()
            .unwrap_or(AxisScale::Categorical)
    }

    /// Whether a value axis over `values` is logarithmic: always, never, or (auto) when they
    /// are all positive and span more than [`AUTO_LOG_SPAN`] times.
    pub fn log_for(&self, values: impl Iterator<Item = f64>) -> bool {
        let (lo, hi, positive) = values
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY, true), |(a, b, p), v| {
                (a.min(v), b.max(v), p && v > 0.0)
            });
        let positive = positive && lo.is_finite();
        match self.log {
            LogScale::Never => false,
            LogScale::Always => positive,
            LogScale::Auto => positive && hi / lo > AUTO_LOG_SPAN,
        }
    }
}

/// Black to light grey, distinct in print.
const GREYS: [(u8, u8, u8); 4] = [(0, 0, 0), (110, 110, 110), (170, 170, 170), (60, 60, 60)];

/// A name in words for an axis title: `cpu_quota` -> "CPU quota", `heap-size` -> "Heap size"
/// (underscores and dashes to spaces, sentence case, a few acronyms upper case).
pub fn words(name: &str) -> String {
    const ACRONYMS: &[&str] = &["cpu", "gc", "io", "jdk", "jvm", "gpu", "os", "rss", "ms"];
    let parts: Vec<String> = name
        .split(['_', '-', ' '])
        .filter(|p| !p.is_empty())
        .enumerate()
        .map(|(i, p)| {
            if ACRONYMS.contains(&p.to_ascii_lowercase().as_str()) {
                p.to_ascii_uppercase()
            } else if i == 0 {
                let mut c = p.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect())
                    .unwrap_or_default()
            } else {
                p.to_string()
            }
        })
        .collect();
    if parts.is_empty() {
        name.to_string()
    } else {
        parts.join(" ")
    }
}

/// A numeric axis of display values: linear or log10, with its ticks.
#[derive(Debug, Clone)]
pub struct ValueAxis {
    pub log: bool,
    /// The range in axis space (log10 of the values when `log`).
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl ValueAxis {
    /// An axis over `[lo, hi]` (display values): log when `log`; else padded by 5%, from zero
    /// when `zero` and the values are not negative; ticked at about `n` round numbers.
    pub fn new(lo: f64, hi: f64, log: bool, zero: bool, n: usize) -> ValueAxis {
        let (lo, hi) = if lo.is_finite() && hi.is_finite() {
            (lo, hi)
        } else {
            (0.0, 1.0)
        };
        if log && lo > 0.0 {
            let (a, b) = (lo.log10(), hi.log10());
            let pad = ((b - a) * 0.05).max(0.02);
            let (a, b) = (a - pad, b + pad);
            return ValueAxis {
                log: true,
                lo: a,
                hi: b,
                ticks: log_ticks(a, b),
            };
        }
        let non_negative = lo >= 0.0;
        let (mut lo, mut hi) = super::plots::padded(lo, hi);
        if zero && non_negative {
            lo = 0.0;
        }
        if hi <= lo {
            hi = lo + 1.0;
        }
        ValueAxis {
            log: false,
            lo,
            hi,
            ticks: linear_ticks(lo, hi, n),
        }
    }

    /// This axis ticked exactly at `values` (an axis's measured levels).
    pub fn ticked_at(mut self, values: &[f64]) -> ValueAxis {
        self.ticks = values
            .iter()
            .map(|v| if self.log { v.log10() } else { *v })
            .collect();
        self
    }

    fn to_axis(&self, v: f64) -> f64 {
        if self.log {
            if v > 0.0 { v.log10() } else { self.lo }
        } else {
            v
        }
    }
}

/// Round-number ticks (1, 2 or 5 times a power of ten apart), about `n` of them.
fn linear_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// Ticks on a log10 axis over `[a, b]`: the powers of ten, and 2 and 5 times them when the
/// span is under three decades (so a short axis has at least two ticks).
fn log_ticks(a: f64, b: f64) -> Vec<f64> {
    let mults: &[f64] = if b - a < 3.0 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    let mut out = Vec::new();
    for e in (a.floor() as i32)..=(b.ceil() as i32) {
        for m in mults {
            let t = (m * 10f64.powi(e)).log10();
            if t >= a && t <= b {
                out.push(t);
            }
        }
    }
    out
}

impl Ranged for ValueAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = (self.to_axis(*value) - self.lo) / (self.hi - self.lo);
        limit.0 + (t * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        // Key points are values: plotters maps them back through `map`.
        self.ticks
            .iter()
            .map(|t| if self.log { 10f64.powf(*t) } else { *t })
            .collect()
    }

    fn range(&self) -> Range<f64> {
        if self.log {
            10f64.powf(self.lo)..10f64.powf(self.hi)
        } else {
            self.lo..self.hi
        }
    }
}

impl ValueFormatter<f64> for ValueAxis {
    fn format_ext(&self, value: &f64) -> String {
        super::plots::tick(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_words() {
        assert_eq!(words("cpu_quota"), "CPU quota");
        assert_eq!(words("heap-size"), "Heap size");
        assert_eq!(words("threads"), "Threads");
        assert_eq!(words("gc"), "GC");
    }

    #[test]
    fn log_is_chosen_past_twenty_times() {
        let auto = Style::new(&ReportOptions::default());
        assert!(auto.log_for([1.0, 91.0].into_iter()));
        assert!(!auto.log_for([1.0, 19.0].into_iter()));
        assert!(!auto.log_for([0.0, 91.0].into_iter()), "zero has no log");
    }

    #[test]
    fn absolute_axes_start_at_zero_and_ticks_are_round() {
        let a = ValueAxis::new(10.0, 10.13, false, true, 6);
        assert_eq!(a.range().start, 0.0);
        assert!(
            a.key_points(6usize)
                .iter()
                .all(|t| (t / 2.0).fract() == 0.0)
        );
        let l = ValueAxis::new(1.0, 91.0, true, true, 6);
        let ticks = l.key_points(6usize);
        assert!(ticks.iter().any(|t| (*t - 10.0).abs() < 1e-9), "{ticks:?}");
        assert!(ticks.iter().any(|t| (*t - 50.0).abs() < 1e-9), "{ticks:?}");
    }
}
