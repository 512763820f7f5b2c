//! Reports people read, rendered from a run's [`RunResults`]: `summary.md` (a PR comment,
//! [`markdown`]), a self-contained `report.html`, a booktabs `table.tex` with its
//! `macros.tex` and pgfplots figures (`plots/medians-*.tex`, [`pgfplots`]), the statistics as
//! `results.csv`, Bencher Metric Format JSON (`bencher.json`) and publication plots
//! (`plots/*.svg` and `*.png`); and `compare`'s outputs from a [`crate::compare::Comparison`]
//! ([`compare`]).
//!
//! Every renderer is a pure function: results in, text or bytes out; the same results give the
//! same bytes (no clock, no randomness, stable ordering), so reports can be rebuilt from a saved
//! run on any machine and diffed. Only [`write`] touches the disk (and [`crate::rebuild`],
//! which decides which files a run gets).
//!
//! Shared vocabulary:
//! - [`Metric`] (from [`crate::metrics`]): what a report shows per metric: wall time, CPU time,
//!   peak memory, then each custom metric of the plan with its unit and better-direction
//!   ([`report_metrics`]).
//! - The *reference cell* that ratios are taken against ([`RenderOptions::reference`]), chosen
//!   by [`crate::reference`]: the cell the user names, else the fastest median wall time, the
//!   same cell for every metric and every output.
//! - [`Analysis`]: what every renderer shows, computed once per rebuild: the reference and, per
//!   metric, a [`MetricTable`] with each cell's summary and its ratio to the reference (the
//!   only ratios computed here). The renderers take it and only read it; the entry points that
//!   take [`RunResults`] ([`html`], [`latex`], [`markdown`], [`plots`], [`write`]) build one
//!   first. [`crate::rebuild`] builds one for summary.md and every format together.
//! - [`Scale`]: the display unit of a metric (µs/ms/s, B/KiB/MiB/GiB), chosen once per metric
//!   so a table column and a plot axis use one unit.
//!
//! Statistics are never recomputed here: medians and intervals come from each cell's
//! `summary` (computed by the run with its recorded [`crate::stats::StatsOptions`]); only the
//! ratios to the reference are computed, in [`Analysis::new`], with the same options and the
//! same large-sample rule ([`stats::ratio_of_medians`]), so they are reproducible too.

pub mod bmf;
pub mod compare;
pub mod figure_style;
pub mod geomeans;
pub mod history;
pub mod history_html;
pub mod html;
pub mod latex;
pub mod macros;
pub mod markdown;
pub mod noise;
pub mod palette;
pub mod pdf;
pub mod pgfplots;
pub mod plots;
pub mod stats_csv;

use std::fs;
use std::path::{Path, PathBuf};

use crate::results::{CellResult, ResultsError, RunResults};
use crate::spec::{Axis, Better, axis_value_text};
use crate::stats::{self, Ratio, Summary};

pub use bmf::bmf_json;
pub use html::html;
pub use latex::latex;
pub use markdown::markdown;
pub use plots::{Plot, plots};
pub use stats_csv::stats_csv;

/// A cell's limits as the kernel applied them (read back), in words: "cpus 0; memory 64.0 MiB,
/// no swap; pids 32".
pub fn limits_text(applied: &crate::measurement::Applied) -> String {
    let mut parts = Vec::new();
    if let Some(cpus) = &applied.cpus {
        parts.push(format!("cpus {cpus}"));
    }
    match (applied.cpu_quota_us, applied.cpu_period_us) {
        (Some(q), Some(p)) if q > 0 && p > 0 => parts.push(format!(
            "CPU quota {} cores ({q} µs / {p} µs)",
            format_ratio(q as f64 / p as f64)
        )),
        (Some(_), Some(_)) | (None, Some(_)) => parts.push("no CPU quota".into()),
        _ => {}
    }
    if let Some(m) = applied.memory_bytes {
        let swap = match applied.memory_swap_bytes {
            Some(s) if s == m || s == 0 => ", no swap".to_string(),
            Some(s) => format!(", swap limit {}", crate::metrics::human_bytes(s as f64)),
            None => String::new(),
        };
        parts.push(format!(
            "memory {}{swap}",
            crate::metrics::human_bytes(m as f64)
        ));
    }
    if let Some(p) = applied.pids {
        parts.push(format!("pids {p}"));
    }
    if parts.is_empty() {
        "none read back".into()
    } else {
        parts.join("; ")
    }
}

/// The limits the cells ran under, for every report: as read back from the kernel; none at all
/// for a rootless run without a cgroup.
#[derive(Debug, Clone, PartialEq)]
pub enum LimitsInForce {
    /// Every cell ran under the same ones.
    EveryCell(String),
    /// (cell label, limits) per cell.
    PerCell(Vec<(String, String)>),
}

impl LimitsInForce {
    /// One line of plain text: "memory 64.0 MiB, no swap (every cell)", or "a: ...; b: ...".
    pub fn plain(&self) -> String {
        match self {
            LimitsInForce::EveryCell(text) => format!("{text} (every cell)"),
            LimitsInForce::PerCell(cells) => cells
                .iter()
                .map(|(label, text)| format!("{label}: {text}"))
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

/// A cell's limits in force: as applied, none without a cgroup, or "not read back" for a cell
/// none of whose invocations ran.
pub fn cell_limits(run: &RunResults, cell: &CellResult) -> String {
    if let Some(none) = run.isolation.as_ref().and_then(|i| i.no_limits_text()) {
        return none.to_string();
    }
    match &cell.applied_limits {
        Some(a) => limits_text(a),
        None => "not read back (no invocation ran)".into(),
    }
}

/// [`cell_limits`] of every cell, said once when they agree.
pub fn limits_in_force(run: &RunResults) -> LimitsInForce {
    let per_cell: Vec<(String, String)> = run
        .cells
        .iter()
        .map(|c| (c.label.clone(), cell_limits(run, c)))
        .collect();
    match per_cell.first() {
        Some((_, first)) if per_cell.iter().all(|(_, t)| t == first) => {
            LimitsInForce::EveryCell(first.clone())
        }
        _ => LimitsInForce::PerCell(per_cell),
    }
}

/// Choices a user makes about a report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// The cell ratios are taken against: `"axis=value"` pairs separated by spaces or commas
    /// (`"jdk=17 gc=G1"`), a cell label or a cell id; it must select exactly one cell.
    /// `None`: the cell with the lowest median wall time (see [`crate::reference`]).
    pub reference: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Reference(#[from] crate::reference::ReferenceError),
    #[error("cannot draw plot `{plot}`: {message}")]
    Plot { plot: String, message: String },
    #[error("cannot create `{path}`: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] ResultsError),
}

pub type Result<T> = std::result::Result<T, RenderError>;

pub use crate::metrics::{Kind, Metric, all_metrics, report_metrics, significant};

/// The matrix axes: from the plan, or (for results without one) from the cells, in order of
/// first appearance.
pub fn axes(results: &RunResults) -> Vec<Axis> {
    if !results.plan.axes.is_empty() {
        return results.plan.axes.clone();
    }
    let mut out: Vec<Axis> = Vec::new();
    for cell in &results.cells {
        for (name, value) in &cell.axes {
            match out.iter_mut().find(|a| &a.name == name) {
                Some(axis) if !axis.values.contains(value) => axis.values.push(value.clone()),
                Some(_) => {}
                None => out.push(Axis {
                    name: name.clone(),
                    values: vec![value.clone()],
                }),
            }
        }
    }
    out
}

/// The text of a cell's value on `axis` ("" when the cell has none).
pub fn axis_text(cell: &CellResult, axis: &str) -> String {
    cell.axes
        .iter()
        .find(|(name, _)| name == axis)
        .map(|(_, v)| axis_value_text(v))
        .unwrap_or_default()
}

/// The reference cell's index (see [`crate::reference`]): the one `opts` names, else the
/// fastest median wall time; `Ok(None)` when there is none.
pub fn reference(results: &RunResults, opts: &RenderOptions) -> Result<Option<usize>> {
    Ok(crate::reference::choose(&results.cells, opts.reference.as_deref())?.map(|r| r.index))
}

/// One cell's line in a metric's table.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    pub index: usize,
    pub cell: &'a CellResult,
    pub summary: Option<&'a Summary>,
    /// median(this cell) / median(reference), with its interval.
    pub ratio: Option<Ratio>,
    pub is_reference: bool,
}

/// A metric with its reference and one row per cell (in the results' cell order).
#[derive(Debug, Clone)]
pub struct MetricTable<'a> {
    pub metric: Metric,
    pub reference: Option<usize>,
    pub rows: Vec<Row<'a>>,
    pub scale: Scale,
    /// Along each axis, against the run's reference cell (matrices with two or more axes).
    pub geomeans: Vec<geomeans::AxisGeomean>,
}

impl MetricTable<'_> {
    /// The reference cell's label, when this metric has one.
    pub fn reference_label(&self) -> Option<&str> {
        self.reference.map(|i| self.rows[i].cell.label.as_str())
    }
}

/// What every renderer of a run shows, computed once: the run, its reference cell and, per
/// report metric, each cell's summary and its ratio to the reference. Renderers read it; none
/// computes a summary, a ratio or an interval of its own.
#[derive(Debug, Clone)]
pub struct Analysis<'a> {
    pub results: &'a RunResults,
    /// The reference cell ([`crate::reference::choose`]), None when the run has none.
    pub reference: Option<crate::reference::Reference>,
    /// One per report metric, in [`report_metrics`] order.
    pub tables: Vec<MetricTable<'a>>,
    /// Per cell (in the results' order), the memory timelines of its measured invocations
    /// ([`crate::results::memory_timelines`]), for the memory-over-time band over
    /// invocations; empty when not read, and the plot then shows each cell's last timeline.
    pub memory_timelines: Vec<Vec<Vec<(f64, u64)>>>,
    /// How table.tex is laid out (`report --wide`, `--ci-style`, `--marks`).
    pub table: latex::TableOptions,
    /// How the figures are drawn: the plan's `[report]`, overridden by `report`'s flags
    /// ([`Analysis::with_figures`]).
    pub figures: crate::spec::ReportOptions,
}

impl<'a> Analysis<'a> {
    /// The analysis of `results` against the reference `opts` names (an error when it names
    /// no single cell), else the fastest median wall time.
    pub fn new(results: &'a RunResults, opts: &RenderOptions) -> Result<Self> {
        let reference = crate::reference::choose(&results.cells, opts.reference.as_deref())?;
        let index = reference.as_ref().map(|r| r.index);
        let tables = report_metrics(results)
            .into_iter()
            .map(|metric| metric_table(results, metric, index))
            .collect();
        Ok(Analysis {
            results,
            reference,
            tables,
            memory_timelines: Vec::new(),
            // The matrix's `[report] table`; `report --wide` can only widen it.
            table: latex::TableOptions {
                wide: results.plan.report.wide_table == Some(true),
                ..Default::default()
            },
            figures: results.plan.report.clone(),
        })
    }

    /// This analysis with table.tex laid out as `table` says.
    pub fn with_table(mut self, table: latex::TableOptions) -> Self {
        let wide = self.table.wide || table.wide;
        self.table = latex::TableOptions { wide, ..table };
        self
    }

    /// This analysis with the figure options `flags` sets taken over the plan's `[report]`.
    pub fn with_figures(mut self, flags: &crate::spec::ReportOptions) -> Self {
        self.figures = self.figures.overridden_by(flags);
        self
    }

    /// This analysis with what the figures draw beyond the results, read from the run
    /// directory `dir`: the cells' memory timelines, when `formats` draw figures (plots, or
    /// the HTML that embeds them).
    pub fn with_figure_data(mut self, dir: &Path, formats: &[Format]) -> Self {
        if formats.contains(&Format::Plots) || formats.contains(&Format::Html) {
            self.memory_timelines = crate::results::memory_timelines(dir, self.results);
        }
        self
    }
}

/// Per report metric: the reference cell, each cell's summary and its ratio to the reference
/// ([`Analysis::new`]'s tables).
pub fn metric_tables<'a>(
    results: &'a RunResults,
    opts: &RenderOptions,
) -> Result<Vec<MetricTable<'a>>> {
    Ok(Analysis::new(results, opts)?.tables)
}

fn metric_table(results: &RunResults, metric: Metric, reference: Option<usize>) -> MetricTable<'_> {
    let summaries: Vec<Option<&Summary>> = results
        .cells
        .iter()
        .map(|c| c.summary.get(&metric.key))
        .collect();
    let geomeans = reference
        .map(|r| geomeans::axis_geomeans(results, r, &metric.key))
        .unwrap_or_default();
    // The run's reference, for this metric when it has a summary of it.
    let reference = reference.filter(|&i| summaries[i].is_some());
    // By host: a run merged from shards on several hosts bootstraps within each host.
    let reference_values =
        reference.map(|i| crate::metrics::values_by_host(&results.cells[i], &metric.key));
    // The ratios' bootstraps dominate the cost of a table: compute them on all cores.
    let ratios: Vec<Option<Ratio>> = parallel_map(&results.cells, |index, cell| {
        let (Some(base), Some(_)) = (&reference_values, summaries[index]) else {
            return None;
        };
        stats::stratified_ratio_of_medians(
            base,
            &crate::metrics::values_by_host(cell, &metric.key),
            &results.stats,
        )
    });
    let rows = results
        .cells
        .iter()
        .zip(ratios)
        .enumerate()
        .map(|(index, (cell, ratio))| Row {
            index,
            cell,
            summary: summaries[index],
            ratio,
            is_reference: reference == Some(index),
        })
        .collect();
    let medians: Vec<f64> = summaries.iter().flatten().map(|s| s.median).collect();
    let scale = Scale::for_values(&metric, &medians);
    MetricTable {
        metric,
        reference,
        rows,
        scale,
        geomeans,
    }
}

/// The most invocations any cell's summaries count: which interval rule the run's largest cell
/// met.
fn largest_cell(results: &RunResults) -> usize {
    results
        .cells
        .iter()
        .flat_map(|c| c.summary.values().map(|s| s.n))
        .max()
        .unwrap_or(0)
}

/// How a run's intervals were made, when it is not simply "N bootstrap resamples" (a cell
/// large enough for fewer resamples or for order statistics); `None` for runs whose every cell
/// had the full count, whose reports keep their wording.
pub fn interval_note(results: &RunResults) -> Option<String> {
    let opts = &results.stats;
    let largest = largest_cell(results);
    (stats::uses_order_statistics(largest, opts)
        || stats::resamples_for(largest, opts) < opts.resamples)
        .then(|| interval_methods(results))
}

/// How a run's medians' intervals were computed, in words, after "medians with 95% ": the
/// bootstrap with the recorded resamples, and what the large-sample rule changed for the
/// largest cells ([`stats::resamples_for`], [`stats::uses_order_statistics`]).
pub fn interval_methods(results: &RunResults) -> String {
    let opts = &results.stats;
    let largest = largest_cell(results);
    if stats::uses_order_statistics(largest, opts) {
        format!(
            "CIs (bootstrap, {} resamples, fewer for large cells; order statistics for cells over {} invocations)",
            opts.resamples,
            stats::ORDER_STATISTICS_ABOVE
        )
    } else if stats::resamples_for(largest, opts) < opts.resamples {
        format!(
            "bootstrap CIs ({} resamples, fewer for cells over {} invocations)",
            opts.resamples,
            stats::BOOTSTRAP_BUDGET / opts.resamples.max(1)
        )
    } else {
        format!("bootstrap CIs ({} resamples)", opts.resamples)
    }
}

/// `f(index, item)` for every item, on all cores, results in input order. Deterministic as
/// long as `f` is: items are independent.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                scope.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(k, item)| f(c * chunk + k, item))
                        .collect::<Vec<R>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a report thread panicked"))
            .collect()
    })
}

/// A display unit: `value * factor` is in `unit`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scale {
    pub factor: f64,
    pub unit: String,
}

impl Scale {
    /// The largest unit in which the smallest positive value is still >= 1, so every value in
    /// a column reads without leading zeros (123.1 ms rather than 0.1231 s).
    pub fn for_values(metric: &Metric, values: &[f64]) -> Scale {
        let smallest = values
            .iter()
            .copied()
            .filter(|v| v.is_finite() && *v > 0.0)
            .fold(f64::INFINITY, f64::min);
        let pick = |units: &[(f64, &str)]| {
            let (factor, unit) = units
                .iter()
                .find(|(f, _)| smallest * f >= 1.0)
                .or(units.last())
                .copied()
                .unwrap_or((1.0, ""));
            Scale {
                factor,
                unit: unit.to_string(),
            }
        };
        match metric.kind {
            Kind::Time => pick(&[(1.0, "s"), (1e3, "ms"), (1e6, "µs"), (1e9, "ns")]),
            Kind::Bytes => pick(&[
                (1.0 / 1024f64.powi(3), "GiB"),
                (1.0 / 1024f64.powi(2), "MiB"),
                (1.0 / 1024.0, "KiB"),
                (1.0, "B"),
            ]),
            Kind::Other => Scale {
                factor: 1.0,
                unit: metric.unit.clone(),
            },
        }
    }

    /// `value` in this unit, with `digits` significant digits (no unit).
    pub fn format(&self, value: f64, digits: usize) -> String {
        significant(value * self.factor, digits)
    }

    /// "Wall time (ms)" / "compressed" when there is no unit.
    pub fn axis_title(&self, title: &str) -> String {
        if self.unit.is_empty() {
            title.to_string()
        } else {
            format!("{title} ({})", self.unit)
        }
    }
}

/// "1.23" for a ratio: two decimals below 10, three significant digits above.
pub fn format_ratio(r: f64) -> String {
    if r.is_finite() && r.abs() < 10.0 {
        format!("{r:.2}")
    } else {
        significant(r, 3)
    }
}

/// What the ratio's interval says, in words, relative to the reference; None when there is
/// no interval (too few samples) to judge by.
pub fn verdict(metric: &Metric, ratio: &Ratio) -> Option<&'static str> {
    let ci = ratio.ci?;
    let larger = ci.lower > 1.0;
    let smaller = ci.upper < 1.0;
    Some(match (larger, smaller, metric.better) {
        (false, false, _) => "no clear difference",
        (true, _, Better::Lower) | (_, true, Better::Higher) => "worse",
        _ => "better",
    })
}

/// A short tag for a statistical warning, for table cells (the full message goes below).
pub fn warning_tag(w: &stats::Warning) -> String {
    match w {
        stats::Warning::HighVariation { cv } => format!("CV {:.0}%", cv * 100.0),
        stats::Warning::TooFewSamples { n, .. } => format!("only {n} runs"),
        stats::Warning::SlowFirst { ratio, .. } => format!("slow first run ({ratio:.1}x)"),
        stats::Warning::NearTimerResolution { .. } => "near timer resolution".into(),
        stats::Warning::SevereOutliers { count } => format!("{count} severe outlier(s)"),
        stats::Warning::IgnoredNonFinite { count } => format!("{count} non-finite ignored"),
    }
}

/// The file names [`write_all`] writes, relative to the run directory (plots under `plots/`).
pub const HTML_FILE: &str = "report.html";
pub const LATEX_FILE: &str = "table.tex";
pub const STATS_CSV_FILE: &str = "results.csv";
pub const BMF_FILE: &str = "bencher.json";
pub const PLOTS_DIR: &str = "plots";
/// summary.md, which every rebuild writes ([`crate::rebuild`]), whatever the formats asked for.
pub const SUMMARY_FILE: &str = "summary.md";

/// One of the files `write` can produce (`benchbox report --format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Latex,
    StatsCsv,
    Bmf,
    Plots,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Html,
        Format::Latex,
        Format::StatsCsv,
        Format::Bmf,
        Format::Plots,
    ];
}

/// Writes every format into `run_dir` (atomically, file by file); returns the paths written.
pub fn write_all(
    results: &RunResults,
    run_dir: &Path,
    opts: &RenderOptions,
) -> Result<Vec<PathBuf>> {
    write(results, run_dir, opts, &Format::ALL)
}

/// Writes the chosen formats into `run_dir` (atomically, file by file); returns the paths.
/// The reference is checked first ([`Analysis::new`]), so a bad `--reference` writes nothing.
pub fn write(
    results: &RunResults,
    run_dir: &Path,
    opts: &RenderOptions,
    formats: &[Format],
) -> Result<Vec<PathBuf>> {
    let analysis = Analysis::new(results, opts)?.with_figure_data(run_dir, formats);
    write_analysis(&analysis, run_dir, formats)
}

/// [`write`] from an analysis made once for every format (and summary.md, [`crate::rebuild`]).
pub fn write_analysis(
    analysis: &Analysis,
    run_dir: &Path,
    formats: &[Format],
) -> Result<Vec<PathBuf>> {
    let results = analysis.results;
    let wants = |f: Format| formats.contains(&f);
    // The HTML embeds the plots: draw them once for both.
    let plots = if wants(Format::Plots) || wants(Format::Html) {
        plots::plots_of(analysis)?
    } else {
        Vec::new()
    };
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    if wants(Format::Html) {
        files.push((
            run_dir.join(HTML_FILE),
            html::html_with_plots(analysis, &plots)?.into_bytes(),
        ));
    }
    let plots_dir = run_dir.join(PLOTS_DIR);
    if wants(Format::Latex) {
        files.push((
            run_dir.join(LATEX_FILE),
            latex::latex_of(analysis).into_bytes(),
        ));
        files.push((
            run_dir.join(macros::MACROS_FILE),
            macros::macros_of(analysis).into_bytes(),
        ));
        // The pgfplots figures go with the table: a paper typesets both in its own fonts.
        for figure in pgfplots::pgfplots_of(analysis) {
            files.push((
                plots_dir.join(format!("{}.tex", figure.stem)),
                figure.tex.into_bytes(),
            ));
            files.push((
                plots_dir.join(format!("{}.csv", figure.stem)),
                figure.csv.into_bytes(),
            ));
        }
    }
    if wants(Format::StatsCsv) {
        files.push((
            run_dir.join(STATS_CSV_FILE),
            stats_csv(results).into_bytes(),
        ));
    }
    if wants(Format::Bmf) {
        files.push((run_dir.join(BMF_FILE), bmf_json(results).into_bytes()));
    }
    if wants(Format::Plots) {
        if !plots.is_empty() {
            files.push((
                plots_dir.join("captions.tex"),
                pdf::captions_tex(&plots).into_bytes(),
            ));
        }
        for plot in plots {
            // The file's SVG has its text as outlines: self-contained, like the PDF.
            files.push((
                plots_dir.join(format!("{}.svg", plot.stem)),
                plot.outlined_svg.into_bytes(),
            ));
            files.push((plots_dir.join(format!("{}.png", plot.stem)), plot.png));
            files.push((plots_dir.join(format!("{}.pdf", plot.stem)), plot.pdf));
        }
    }
    if wants(Format::Plots) || wants(Format::Latex) {
        fs::create_dir_all(&plots_dir).map_err(|source| RenderError::CreateDir {
            path: plots_dir.clone(),
            source,
        })?;
    }
    let mut written = Vec::with_capacity(files.len());
    for (path, bytes) in files {
        crate::results::write_atomic(&path, &bytes)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renderers_show_the_analysis_numbers_at_large_n() {
        // Cells past the order-statistic boundary: every renderer shows the ratios the one
        // analysis computed (before, summary.md and report.html resampled each on their own,
        // with different counts, and disagreed).
        let dir = tempfile::tempdir().unwrap();
        crate::report::tests_support::write_run_with(dir.path(), 1_200);
        let (run, _) = crate::rebuild::load_summarized(dir.path()).unwrap();
        let opts = RenderOptions::default();
        let analysis = Analysis::new(&run, &opts).unwrap();
        let md = markdown::markdown_of(&analysis);
        assert_eq!(md, markdown(&run, &opts).unwrap());
        let page = html::html_with_plots(&analysis, &[]).unwrap();
        let mut checked = 0;
        for table in &analysis.tables {
            for row in table.rows.iter().filter(|r| !r.is_reference) {
                let Some(ratio) = &row.ratio else { continue };
                let ci = ratio.ci.expect("large cells have a ratio interval");
                // The analysis' ratio is the stats' one with the run's options...
                let base = table.metric.values(&run.cells[table.reference.unwrap()]);
                let again =
                    stats::ratio_of_medians(&base, &table.metric.values(row.cell), &run.stats);
                assert_eq!(again.as_ref(), Some(ratio));
                // ...and every renderer shows exactly it.
                let words = markdown::describe_ratio(
                    ratio.ratio,
                    ratio.ci,
                    &table.metric,
                    run.stats.confidence,
                );
                assert!(md.contains(&words), "{words} not in summary.md");
                let shown = format!("{} – {}", format_ratio(ci.lower), format_ratio(ci.upper));
                assert!(page.contains(&shown), "{shown} not in report.html");
                checked += 1;
            }
        }
        assert!(checked >= 6, "{checked} ratios checked");
        // The page and the ratio plots say how the intervals were made, not "N bootstrap
        // resamples" alone.
        let note = interval_note(&run).expect("cells past the boundary get a note");
        assert!(note.contains("order statistics"), "{note}");
        assert!(page.contains(&note), "{note} not in report.html");
        let ratio_captions: Vec<String> = plots::plots_of(&analysis)
            .unwrap()
            .into_iter()
            .filter(|p| p.stem.starts_with("ratios-"))
            .map(|p| p.caption)
            .collect();
        assert!(!ratio_captions.is_empty());
        assert!(
            ratio_captions
                .iter()
                .all(|c| c.contains(&note) && !c.contains("bootstrap interval"))
        );
        let tex = latex::latex_of(&analysis);
        assert_eq!(tex, latex(&run, &opts).unwrap());
    }

    #[test]
    fn significant_digits_never_use_exponents() {
        assert_eq!(significant(123.12, 4), "123.1");
        assert_eq!(significant(0.012345, 3), "0.0123");
        assert_eq!(significant(2640517.0, 4), "2640517");
        assert_eq!(significant(0.0, 4), "0");
        assert_eq!(significant(f64::NAN, 4), "-");
        assert_eq!(format_ratio(3.119), "3.12");
        assert_eq!(format_ratio(12.345), "12.3");
    }

    #[test]
    fn scale_picks_the_largest_unit_that_keeps_values_above_one() {
        let time = Metric::builtin("wall_s").unwrap();
        assert_eq!(Scale::for_values(&time, &[0.12, 0.5]).unit, "ms");
        assert_eq!(Scale::for_values(&time, &[2.0, 5.0]).unit, "s");
        assert_eq!(Scale::for_values(&time, &[2e-5]).unit, "µs");
        assert_eq!(Scale::for_values(&time, &[]).unit, "s");
        let mem = Metric::builtin("peak_memory_bytes").unwrap();
        let s = Scale::for_values(&mem, &[2.0 * 1024.0 * 1024.0]);
        assert_eq!(
            (s.unit.as_str(), s.format(2.0 * 1024.0 * 1024.0, 3)),
            ("MiB", "2.00".into())
        );
    }
}
