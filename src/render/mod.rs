//! Reports people read, rendered from a run's [`RunResults`]: a self-contained `report.html`,
//! a booktabs `table.tex`, the statistics as `results.csv`, Bencher Metric Format JSON
//! (`bencher.json`) and publication plots (`plots/*.svg` and `*.png`).
//!
//! Every renderer is a pure function: results in, text or bytes out; the same results give the
//! same bytes (no clock, no randomness, stable ordering), so reports can be rebuilt from a saved
//! run on any machine and diffed. Only [`write_all`] touches the disk.
//!
//! Shared vocabulary (this module):
//! - [`Metric`]: what a report shows per metric: wall time, CPU time, peak memory, then each
//!   custom metric of the plan with its unit and better-direction ([`report_metrics`]).
//! - The *reference cell* that ratios are taken against ([`RenderOptions::reference`]): a cell
//!   chosen by the user (`"axis=value ..."`, a label or a cell id), or by default, per metric,
//!   the cell with the best median (lowest, or highest when higher is better), so every ratio
//!   reads "how far from the best".
//! - [`Scale`]: the display unit of a metric (µs/ms/s, B/KiB/MiB/GiB), chosen once per metric
//!   so a table column and a plot axis use one unit.
//!
//! Statistics are never recomputed here: medians and intervals come from each cell's
//! `summary` (computed by the run with its recorded [`crate::stats::StatsOptions`]); only the
//! ratios to the reference are computed, with the same options, so they are reproducible too.

pub mod bmf;
pub mod html;
pub mod latex;
pub mod palette;
pub mod plots;
pub mod stats_csv;

use std::fs;
use std::path::{Path, PathBuf};

use crate::results::{CellResult, ResultsError, RunResults, Sample};
use crate::spec::{Axis, Better, axis_value_text};
use crate::stats::{self, Ratio, Summary};

pub use bmf::bmf_json;
pub use html::html;
pub use latex::latex;
pub use plots::{Plot, plots};
pub use stats_csv::stats_csv;

/// A cell's limits as the kernel applied them (read back), in words: "cpus 0; memory 64.0 MiB,
/// no swap; pids 32".
pub fn limits_text(applied: &crate::sandbox::Applied) -> String {
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
            Some(s) => format!(", swap limit {}", crate::ui::human_bytes(s as f64)),
            None => String::new(),
        };
        parts.push(format!("memory {}{swap}", crate::ui::human_bytes(m as f64)));
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
    /// `None`: per metric, the cell with the best median.
    pub reference: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(
        "reference `{spec}` matches no cell (hint: name one with `axis=value` pairs; cells: {cells})"
    )]
    NoSuchReference { spec: String, cells: String },
    #[error(
        "reference `{spec}` matches {count} cells: {matched} (hint: add `axis=value` pairs until one cell is left)"
    )]
    AmbiguousReference {
        spec: String,
        count: usize,
        matched: String,
    },
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

/// How a metric's values are displayed and scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Seconds: shown as µs, ms or s.
    Time,
    /// Bytes: shown as B, KiB, MiB or GiB.
    Bytes,
    /// Anything else: shown in its own unit, unscaled.
    Other,
}

/// One metric as the reports show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The key in each cell's `summary` (`wall_s`, `cpu_s`, `peak_memory_bytes`, custom names).
    pub key: String,
    /// Human title: "Wall time", "CPU time (user + system)", "Peak memory", or the custom name.
    pub title: String,
    /// The unit of the raw values: "s", "B", a custom unit, or "" when the plan gives none.
    pub unit: String,
    pub kind: Kind,
    pub better: Better,
}

impl Metric {
    fn builtin(key: &str, title: &str, kind: Kind) -> Metric {
        Metric {
            key: key.into(),
            title: title.into(),
            unit: if kind == Kind::Bytes { "B" } else { "s" }.into(),
            kind,
            better: Better::Lower,
        }
    }

    /// The title without explanations, for narrow table headers: "CPU time".
    pub fn short_title(&self) -> &str {
        match self.key.as_str() {
            "cpu_s" => "CPU time",
            _ => &self.title,
        }
    }

    /// "lower is better" / "higher is better".
    pub fn better_text(&self) -> &'static str {
        match self.better {
            Better::Lower => "lower is better",
            Better::Higher => "higher is better",
        }
    }

    /// The value of this metric in one invocation, as the runner summarizes it.
    pub fn value(&self, sample: &Sample) -> Option<f64> {
        match self.key.as_str() {
            "wall_s" => Some(sample.wall_s),
            "user_s" => Some(sample.user_s),
            "system_s" => Some(sample.system_s),
            "cpu_s" => Some(sample.cpu_s()),
            "peak_memory_bytes" => sample.peak_memory_bytes.map(|b| b as f64),
            "io_read_bytes" => sample.io_read_bytes.map(|b| b as f64),
            "io_write_bytes" => sample.io_write_bytes.map(|b| b as f64),
            other => sample.metrics.get(other).copied(),
        }
    }

    /// The values the cell's summary was computed from: the invocations that count toward the
    /// statistics (measured, status `ok`), in invocation order (the same selection as
    /// `report::metric_values`).
    pub fn values(&self, cell: &CellResult) -> Vec<f64> {
        cell.samples
            .iter()
            .filter(|s| s.counts_toward_statistics())
            .filter_map(|s| self.value(s))
            .filter(|v| v.is_finite())
            .collect()
    }

    /// Whether `a` is a better median than `b` for this metric.
    fn is_better(&self, a: f64, b: f64) -> bool {
        match self.better {
            Better::Lower => a < b,
            Better::Higher => a > b,
        }
    }
}

/// The kind a custom metric's unit implies: "s" scales like time, "B" like bytes.
fn kind_of_unit(unit: &str) -> Kind {
    match unit {
        "s" | "seconds" => Kind::Time,
        "B" | "bytes" => Kind::Bytes,
        _ => Kind::Other,
    }
}

/// The custom metrics the plan declares, in declaration order (first cell that names one wins).
fn custom_metrics(results: &RunResults) -> Vec<Metric> {
    let mut out: Vec<Metric> = Vec::new();
    let cells = results.plan.get("cells").and_then(|c| c.as_array());
    for cell in cells.into_iter().flatten() {
        let specs = cell.get("metrics").and_then(|m| m.as_array());
        for spec in specs.into_iter().flatten() {
            let Some(name) = spec.get("name").and_then(|n| n.as_str()) else {
                continue;
            };
            if out.iter().any(|m| m.key == name) {
                continue;
            }
            let unit = spec
                .get("unit")
                .and_then(|u| u.as_str())
                .unwrap_or("")
                .to_string();
            let better = match spec.get("better").and_then(|b| b.as_str()) {
                Some("higher") => Better::Higher,
                _ => Better::Lower,
            };
            out.push(Metric {
                key: name.to_string(),
                title: name.to_string(),
                kind: kind_of_unit(&unit),
                unit,
                better,
            });
        }
    }
    out
}

fn has_summary(results: &RunResults, key: &str) -> bool {
    results.cells.iter().any(|c| c.summary.contains_key(key))
}

/// The metrics a report shows, in order: wall time, CPU time, peak memory, then each custom
/// metric of the plan (then any other metric found in a summary but not in the plan, such as
/// one a workload wrote to `BENCHBOX_METRICS` undeclared). Metrics no cell has a summary of
/// are left out.
pub fn report_metrics(results: &RunResults) -> Vec<Metric> {
    let mut out = vec![
        Metric::builtin("wall_s", "Wall time", Kind::Time),
        Metric::builtin("cpu_s", "CPU time (user + system)", Kind::Time),
        Metric::builtin("peak_memory_bytes", "Peak memory", Kind::Bytes),
    ];
    out.extend(custom_metrics(results));
    for key in undeclared_keys(results) {
        out.push(Metric {
            title: key.clone(),
            key,
            unit: String::new(),
            kind: Kind::Other,
            better: Better::Lower,
        });
    }
    out.retain(|m| has_summary(results, &m.key));
    out
}

/// Every metric with statistics, for the data exports: the report metrics, with user and
/// system time and I/O bytes after CPU time and peak memory.
pub fn all_metrics(results: &RunResults) -> Vec<Metric> {
    let mut out = vec![
        Metric::builtin("wall_s", "Wall time", Kind::Time),
        Metric::builtin("cpu_s", "CPU time (user + system)", Kind::Time),
        Metric::builtin("user_s", "User CPU time", Kind::Time),
        Metric::builtin("system_s", "System CPU time", Kind::Time),
        Metric::builtin("peak_memory_bytes", "Peak memory", Kind::Bytes),
        Metric::builtin("io_read_bytes", "I/O read", Kind::Bytes),
        Metric::builtin("io_write_bytes", "I/O written", Kind::Bytes),
    ];
    out.extend(
        report_metrics(results)
            .into_iter()
            .filter(|m| !BUILTIN_KEYS.contains(&m.key.as_str())),
    );
    out.retain(|m| has_summary(results, &m.key));
    out
}

const BUILTIN_KEYS: &[&str] = &[
    "wall_s",
    "cpu_s",
    "user_s",
    "system_s",
    "peak_memory_bytes",
    "io_read_bytes",
    "io_write_bytes",
];

/// Summary keys that are neither built in nor declared by the plan, sorted.
fn undeclared_keys(results: &RunResults) -> Vec<String> {
    let declared = custom_metrics(results);
    let mut keys: Vec<String> = results
        .cells
        .iter()
        .flat_map(|c| c.summary.keys())
        .filter(|k| !BUILTIN_KEYS.contains(&k.as_str()) && !declared.iter().any(|m| &m.key == *k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The matrix axes: from the plan, or (for results without one) from the cells, in order of
/// first appearance.
pub fn axes(results: &RunResults) -> Vec<Axis> {
    if let Some(axes) = results
        .plan
        .get("axes")
        .and_then(|a| serde_json::from_value::<Vec<Axis>>(a.clone()).ok())
    {
        return axes;
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

/// Resolves [`RenderOptions::reference`] to a cell index; `Ok(None)` when none was asked for.
pub fn fixed_reference(results: &RunResults, opts: &RenderOptions) -> Result<Option<usize>> {
    let Some(spec) = opts.reference.as_deref() else {
        return Ok(None);
    };
    let spec_trimmed = spec.trim();
    // A label or an id names one cell outright.
    if let Some(i) = results
        .cells
        .iter()
        .position(|c| c.label == spec_trimmed || c.id == spec_trimmed)
    {
        return Ok(Some(i));
    }
    let pairs: Vec<(&str, &str)> = spec_trimmed
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    let matched: Vec<usize> = results
        .cells
        .iter()
        .enumerate()
        .filter(|(_, cell)| {
            !pairs.is_empty()
                && pairs.iter().all(|(axis, value)| {
                    cell.axes
                        .iter()
                        .any(|(name, v)| name == axis && axis_value_text(v) == *value)
                })
        })
        .map(|(i, _)| i)
        .collect();
    let labels = |idx: &mut dyn Iterator<Item = usize>| {
        idx.map(|i| format!("`{}`", results.cells[i].label))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match matched.len() {
        1 => Ok(Some(matched[0])),
        0 => Err(RenderError::NoSuchReference {
            spec: spec.to_string(),
            cells: labels(&mut (0..results.cells.len())),
        }),
        count => Err(RenderError::AmbiguousReference {
            spec: spec.to_string(),
            count,
            matched: labels(&mut matched.iter().copied()),
        }),
    }
}

/// One cell's line in a metric's table.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    pub index: usize,
    pub cell: &'a CellResult,
    pub summary: Option<&'a Summary>,
    /// median(this cell) / median(reference), with its bootstrap interval.
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
}

impl MetricTable<'_> {
    /// Whether the reference was chosen as the best median (rather than by the user).
    pub fn reference_label(&self) -> Option<&str> {
        self.reference.map(|i| self.rows[i].cell.label.as_str())
    }
}

/// Per report metric: the reference cell, each cell's summary and its ratio to the reference.
pub fn metric_tables<'a>(
    results: &'a RunResults,
    opts: &RenderOptions,
) -> Result<Vec<MetricTable<'a>>> {
    let fixed = fixed_reference(results, opts)?;
    Ok(report_metrics(results)
        .into_iter()
        .map(|metric| metric_table(results, metric, fixed))
        .collect())
}

fn metric_table(results: &RunResults, metric: Metric, fixed: Option<usize>) -> MetricTable<'_> {
    let summaries: Vec<Option<&Summary>> = results
        .cells
        .iter()
        .map(|c| c.summary.get(&metric.key))
        .collect();
    let reference = match fixed {
        Some(i) => summaries[i].map(|_| i),
        None => {
            // The best median; ties keep the first cell, so the choice is stable.
            let mut best: Option<(usize, f64)> = None;
            for (i, s) in summaries.iter().enumerate() {
                if let Some(s) = s
                    && best.is_none_or(|(_, b)| metric.is_better(s.median, b))
                {
                    best = Some((i, s.median));
                }
            }
            best.map(|(i, _)| i)
        }
    };
    let reference_values = reference.map(|i| metric.values(&results.cells[i]));
    let rows = results
        .cells
        .iter()
        .enumerate()
        .map(|(index, cell)| {
            let ratio = match (&reference_values, summaries[index]) {
                (Some(base), Some(_)) => {
                    stats::ratio_of_medians(base, &metric.values(cell), &results.stats)
                }
                _ => None,
            };
            Row {
                index,
                cell,
                summary: summaries[index],
                ratio,
                is_reference: reference == Some(index),
            }
        })
        .collect();
    let medians: Vec<f64> = summaries.iter().flatten().map(|s| s.median).collect();
    let scale = Scale::for_values(&metric, &medians);
    MetricTable {
        metric,
        reference,
        rows,
        scale,
    }
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

/// `x` with at least `digits` significant digits and no exponent: 123.1, 0.01234, 2640517.
pub fn significant(x: f64, digits: usize) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    if x == 0.0 {
        return "0".into();
    }
    let magnitude = x.abs().log10().floor() as i64;
    let decimals = (digits as i64 - 1 - magnitude).clamp(0, 12) as usize;
    format!("{x:.decimals$}")
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
        stats::Warning::SlowFirst { ratio } => format!("slow first run ({ratio:.1}x)"),
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
/// The reference is checked first, so a bad `--reference` writes nothing.
pub fn write(
    results: &RunResults,
    run_dir: &Path,
    opts: &RenderOptions,
    formats: &[Format],
) -> Result<Vec<PathBuf>> {
    fixed_reference(results, opts)?;
    let wants = |f: Format| formats.contains(&f);
    // The HTML embeds the plots: draw them once for both.
    let plots = if wants(Format::Plots) || wants(Format::Html) {
        plots(results, opts)?
    } else {
        Vec::new()
    };
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    if wants(Format::Html) {
        files.push((
            run_dir.join(HTML_FILE),
            html::html_with_plots(results, opts, &plots)?.into_bytes(),
        ));
    }
    if wants(Format::Latex) {
        files.push((run_dir.join(LATEX_FILE), latex(results, opts)?.into_bytes()));
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
    let plots_dir = run_dir.join(PLOTS_DIR);
    if wants(Format::Plots) {
        for plot in plots {
            files.push((
                plots_dir.join(format!("{}.svg", plot.stem)),
                plot.svg.into_bytes(),
            ));
            files.push((plots_dir.join(format!("{}.png", plot.stem)), plot.png));
        }
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
        let time = Metric::builtin("wall_s", "Wall time", Kind::Time);
        assert_eq!(Scale::for_values(&time, &[0.12, 0.5]).unit, "ms");
        assert_eq!(Scale::for_values(&time, &[2.0, 5.0]).unit, "s");
        assert_eq!(Scale::for_values(&time, &[2e-5]).unit, "µs");
        assert_eq!(Scale::for_values(&time, &[]).unit, "s");
        let mem = Metric::builtin("peak_memory_bytes", "Peak memory", Kind::Bytes);
        let s = Scale::for_values(&mem, &[2.0 * 1024.0 * 1024.0]);
        assert_eq!(
            (s.unit.as_str(), s.format(2.0 * 1024.0 * 1024.0, 3)),
            ("MiB", "2.00".into())
        );
    }
}
