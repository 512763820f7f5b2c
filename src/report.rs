//! Reports of one run: rebuilding `results.json` and `summary.md` from the raw data.
//!
//! `report` owns two things (a run is read back by [`crate::results::load`]: runs.csv is the
//! source of truth for the samples, results.json for the metadata; rows missing from runs.csv
//! are shown as "n of N" everywhere: a cell warning, and the `n` columns of summary.md,
//! report.html and the terminal table):
//!
//! - [`rebuild`]: [`load_checked`], then every cell's summaries, warnings and failure count recomputed
//!   (with [`summarize_samples`] and the recorded [`StatsOptions`]), then
//!   `results.json` (atomically) and `summary.md` written. Nothing in the output depends on the
//!   clock or on thread timing, so re-running it gives the same bytes (`finished_at` is kept).
//! - [`summary_markdown`]: the GitHub-flavoured summary of a run, short enough for a PR comment.
//!
//! Methods and decisions:
//! - Ratios to the reference cell are ratios of medians with Efron's bootstrap percentile
//!   interval ([`stats::ratio_of_medians`]); "1.23x faster" means the reference's median is
//!   1.23 times this cell's, for a lower-is-better metric.
//! - Geometric mean of ratios along an axis (Fleming & Wallace 1986: the mean that is
//!   consistent for ratios): for axis A and value v, the cells with A = v are paired with the
//!   cells that have A = the reference's value and identical other axes; the geometric mean of
//!   the pairs' ratios of medians is shown with the range of the individual ratios.
//! - Reference: one cell per run, chosen by [`crate::reference`] (the same rule as every other
//!   output); the geometric means along an axis take the reference cell's value of that axis as
//!   the axis' baseline.
//! - Bootstrap cost: a resample costs O(n), so 10,000 resamples of a 5,000-invocation cell for
//!   each of its ~7 metrics takes seconds. Cells with many invocations get fewer resamples,
//!   `max(MIN_RESAMPLES, BOOTSTRAP_BUDGET / n)` (never more than recorded): at such n the
//!   interval is narrow and the Monte Carlo error of its endpoints stays small next to it. The
//!   cell gets a warning saying so. Cells are summarized in parallel (deterministically).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::markdown::code;
use crate::metrics::{self, Metric, is_headline};
use crate::plan::Phase;
use crate::reference::{self, Reference, ReferenceError};
use crate::results::{self, CellResult, ResultsError, RunResults, Sample, load_checked, run_dir};
use crate::spec::{Better, axis_value_text};
use crate::stats::{self, StatsOptions};
use crate::status::{self, RunStatus, Status};

/// Bootstrap work per cell and metric, in resampled values: cells with more invocations than
/// `BOOTSTRAP_BUDGET / resamples` get proportionally fewer resamples.
pub const BOOTSTRAP_BUDGET: usize = 1_000_000;
/// The fewest resamples [`BOOTSTRAP_BUDGET`] may scale a cell down to.
pub const MIN_RESAMPLES: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0}")]
    Results(#[from] ResultsError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
}

/// Summaries per metric (the standard ones and every custom metric the samples carry) over a
/// cell's invocations that count toward the statistics, and a warning when failed or suspect
/// ones were left out.
pub fn summarize_samples(
    samples: &[Sample],
    opts: &StatsOptions,
) -> (BTreeMap<String, stats::Summary>, Vec<String>) {
    let mut names: BTreeSet<String> = metrics::builtin_names()
        .map(|(n, _)| n.to_string())
        .collect();
    for s in samples {
        names.extend(s.metrics.keys().cloned());
    }
    let summaries = names
        .into_iter()
        .filter_map(|name| {
            let summary = stats::summarize(&metrics::series(samples, &name), opts)?;
            Some((name, summary))
        })
        .collect();
    let mut warnings = Vec::new();
    let measured = samples.iter().filter(|s| s.phase == Phase::Measure);
    let failed = measured.clone().filter(|s| s.status.is_failure()).count();
    if failed > 0 {
        warnings.push(format!("{failed} failed invocation(s) excluded from the statistics\n  hint: see the logs/ directory of the run"));
    }
    let suspect: Vec<&Sample> = measured
        .clone()
        .filter(|s| s.status == Status::Suspect)
        .collect();
    if let Some(first) = suspect.first() {
        let mut kinds: Vec<&str> = Vec::new();
        for s in &suspect {
            let kind = status::suspect_kind(&s.reason);
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        warnings.push(format!(
            "{} of {} invocations suspect: {}; excluded from the statistics\n  hint: measured invocation {}: {}; the `reason` column of runs.csv has every one",
            suspect.len(),
            measured.count(),
            kinds.join("; "),
            first.index,
            if first.reason.is_empty() {
                "no reason recorded"
            } else {
                &first.reason
            }
        ));
    }
    (summaries, warnings)
}

/// "jdk=17 gc=G1": a cell's axis values as `(axis, text)` pairs.
pub fn axis_texts(cell: &CellResult) -> Vec<(String, String)> {
    cell.axes
        .iter()
        .map(|(k, v)| (k.clone(), axis_value_text(v)))
        .collect()
}

// ---------------------------------------------------------------------------
// Loading and rebuilding.

/// Resamples for a cell with `n` invocations that count toward the statistics (see [`BOOTSTRAP_BUDGET`]).
pub fn resamples_for(n: usize, recorded: usize) -> usize {
    if n == 0 {
        return recorded;
    }
    recorded.min((BOOTSTRAP_BUDGET / n).max(MIN_RESAMPLES))
}

/// Recompute one cell's summaries, warnings and failure count from its samples.
pub fn summarize_one(cell: &mut CellResult, opts: &StatsOptions) {
    let n = cell
        .samples
        .iter()
        .filter(|s| s.counts_toward_statistics())
        .count();
    let resamples = resamples_for(n, opts.resamples);
    let (summary, warnings) = if resamples < opts.resamples {
        // A large cell: every metric's point statistics and t interval, but bootstrap intervals
        // only for the metrics reports show (wall, CPU, peak memory, custom), with fewer
        // resamples.
        let no_bootstrap = StatsOptions {
            resamples: 0,
            ..*opts
        };
        let (mut summary, mut warnings) = summarize_samples(&cell.samples, &no_bootstrap);
        let scaled = StatsOptions { resamples, ..*opts };
        let shown: Vec<String> = summary.keys().filter(|m| is_headline(m)).cloned().collect();
        for metric in shown {
            let values = metrics::series(&cell.samples, &metric);
            if let Some(s) = stats::summarize(&values, &scaled) {
                summary.insert(metric, s);
            }
        }
        warnings.push(format!(
            "the cell has {n} invocations, so its bootstrap intervals use {resamples} resamples (not {}) and cover only wall, CPU, peak memory and custom metrics\n  hint: at this n the intervals are narrow and the Monte Carlo error of their endpoints is small next to their width",
            opts.resamples
        ));
        (summary, warnings)
    } else {
        summarize_samples(&cell.samples, opts)
    };
    cell.summary = summary;
    cell.warnings = warnings;
    if let Some(missing) = missing_warning(cell) {
        cell.warnings.insert(0, missing);
    }
    cell.failures = cell.count_failures();
    cell.suspect = cell.count_suspect();
}

/// "4 of 6 measured invocations in runs.csv (2 missing) ..." when the cell has fewer rows than
/// its plan (an interrupted run, rows deleted). Not for a cell whose setup failed: its setup
/// error says why nothing ran.
fn missing_warning(cell: &CellResult) -> Option<String> {
    let planned = cell.planned?;
    if cell.setup_error.is_some() {
        return None;
    }
    let measured = cell.count_measured();
    let warmups = cell.samples.len() - measured;
    if measured >= planned.runs as usize && warmups >= planned.warmup as usize {
        return None;
    }
    let mut parts = vec![format!(
        "{measured} of {} measured invocations in runs.csv ({} missing)",
        planned.runs,
        (planned.runs as usize).saturating_sub(measured)
    )];
    if warmups < planned.warmup as usize {
        parts.push(format!("{warmups} of {} warm-ups", planned.warmup));
    }
    Some(format!(
        "{}; the statistics cover only the invocations present\n  hint: finish the run with `benchbox run MATRIX --resume RUN`",
        parts.join(", ")
    ))
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

/// Recompute every cell's summaries with the run's recorded options, using all cores. Each
/// cell's result depends only on its samples and the seed, so the thread split cannot change
/// a byte.
pub fn summarize(run: &mut RunResults) {
    let opts = run.stats;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Interleave cells across threads so big and small cells spread evenly.
    let mut buckets: Vec<Vec<&mut CellResult>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, cell) in run.cells.iter_mut().enumerate() {
        buckets[i % threads].push(cell);
    }
    std::thread::scope(|scope| {
        for bucket in buckets {
            scope.spawn(move || {
                for cell in bucket {
                    summarize_one(cell, &opts);
                }
            });
        }
    });
}

/// Where [`rebuild`] wrote, and what the reader should know (a torn row left out, a run that
/// was never finished).
#[derive(Debug, Clone)]
pub struct Written {
    pub results_json: PathBuf,
    pub summary_md: PathBuf,
    pub warnings: Vec<String>,
}

/// [`load_checked`], then every cell's summaries recomputed: the run as the reports show it.
/// Nothing is written.
pub fn rebuilt(dir: &Path) -> Result<(RunResults, Vec<String>), ReportError> {
    let (mut run, warnings) = load_checked(dir)?;
    summarize(&mut run);
    Ok((run, warnings))
}

/// `benchbox report`: rebuild a run's summaries from `runs.csv`, write `summary.md`, then
/// `results.json`. The caller holds the run's lock ([`crate::lock`]), so no benchbox is running
/// it: a status still `running` was left by one that died (killed, crashed) before the end, and
/// becomes `complete` when every planned invocation is in runs.csv, `interrupted` otherwise.
pub fn rebuild(dir: &Path, reference: Option<&str>) -> Result<(RunResults, Written), ReportError> {
    let dir = run_dir(dir)?;
    let (mut run, mut warnings) = rebuilt(&dir)?;
    // A reference that names no single cell fails before anything is written.
    reference::choose(&run.cells, reference)?;
    if run.status == RunStatus::Running {
        let whole = warnings.is_empty() && run.cells.iter().all(|c| missing_warning(c).is_none());
        run.status = if whole {
            RunStatus::Complete
        } else {
            RunStatus::Interrupted
        };
        warnings.push(format!(
            "the run was never finished: the benchbox that ran it stopped before the end (killed or crashed); {}",
            if whole {
                "every planned invocation is in runs.csv, so it is now marked `complete`".to_string()
            } else {
                format!(
                    "it is now marked `interrupted`\n  hint: finish it with `benchbox run MATRIX --resume {}`",
                    dir.display()
                )
            }
        ));
    }
    let summary_md = write_summary(&dir, &run, reference)?;
    run.write(&dir)?;
    let results_json = dir.join("results.json");
    Ok((
        run,
        Written {
            results_json,
            summary_md,
            warnings,
        },
    ))
}

/// Write `summary.md` of a rebuilt run, with the reference `spec` names (the default when
/// `None`); a spec that names no single cell is an error and writes nothing.
pub fn write_summary(
    dir: &Path,
    run: &RunResults,
    spec: Option<&str>,
) -> Result<PathBuf, ReportError> {
    let reference = reference::choose(&run.cells, spec)?;
    let markdown = summary_markdown(run, reference.as_ref());
    let path = dir.join("summary.md");
    results::write_atomic(&path, markdown.as_bytes())?;
    Ok(path)
}

// ---------------------------------------------------------------------------
// Markdown.

/// "1.23x faster (95% CI 1.19 to 1.27)": `ratio` is this cell's median over the reference's
/// (with its interval); the factor is always >= 1 and the word says which way is better.
/// "no clear difference (ratio 1.03, 95% CI 0.97 to 1.09)" when the interval holds 1.
pub fn describe_ratio(
    ratio: f64,
    ci: Option<stats::Interval>,
    info: &Metric,
    confidence: f64,
) -> String {
    // An interval that holds 1 says no more than "no clear difference", in every output
    // (report.html's verdict is the same rule: `render::verdict`).
    if let Some(ci) = ci
        && ci.lower <= 1.0
        && ci.upper >= 1.0
    {
        return format!(
            "no clear difference (ratio {ratio:.2}, {:.0}% CI {:.2} to {:.2})",
            confidence * 100.0,
            ci.lower,
            ci.upper
        );
    }
    let (better_word, worse_word) = info.words();
    let cell_is_better = match info.better {
        Better::Lower => ratio < 1.0,
        Better::Higher => ratio > 1.0,
    };
    let word = if cell_is_better {
        better_word
    } else {
        worse_word
    };
    // Express "how many times" as a factor >= 1: invert when the ratio is below 1.
    let invert = ratio < 1.0;
    let factor = if invert { 1.0 / ratio } else { ratio };
    let mut out = format!("{factor:.2}x {word}");
    if ratio == 1.0 {
        out = "1.00x (same)".into();
    }
    if let Some(ci) = ci {
        let (lo, hi) = if invert {
            (1.0 / ci.upper, 1.0 / ci.lower)
        } else {
            (ci.lower, ci.upper)
        };
        let _ = write!(out, " ({:.0}% CI {lo:.2} to {hi:.2})", confidence * 100.0);
    }
    out
}

fn host_line(run: &RunResults) -> String {
    let h = &run.host;
    let mut parts = vec![
        if h.cpu_model.is_empty() {
            "unknown CPU".to_string()
        } else {
            h.cpu_model.clone()
        },
        format!("{} cpus", h.logical_cpus),
        format!("kernel {}", h.kernel),
    ];
    if let Some(v) = &h.cgroup_version {
        parts.push(format!("cgroup {v}"));
    }
    if let Some(g) = &h.governor {
        parts.push(format!("governor {g}"));
    }
    if let Some(smt) = h.smt_active {
        parts.push(format!("SMT {}", if smt { "on" } else { "off" }));
    }
    if let Some(t) = h.turbo {
        parts.push(format!("turbo {}", if t { "on" } else { "off" }));
    }
    parts.join(", ")
}

/// Every cell's `[security]` policy: "default (every cell)", or per cell when they differ.
/// `None` for a run recorded before benchbox recorded policies.
fn security_line(run: &RunResults) -> Option<String> {
    if run.cells.iter().all(|c| c.security.is_none()) {
        return None;
    }
    let described: Vec<(&str, String)> = run
        .cells
        .iter()
        .map(|c| {
            let d = c.security.as_ref().map(|s| s.policy().describe());
            (c.label.as_str(), d.unwrap_or_else(|| "not recorded".into()))
        })
        .collect();
    let (_, first) = described.first()?;
    if described.iter().all(|(_, d)| d == first) {
        return Some(format!("{} (every cell)", md(first)));
    }
    let per_cell: Vec<String> = described
        .iter()
        .map(|(label, d)| format!("{} {}", code(label), md(d)))
        .collect();
    Some(per_cell.join("; "))
}

/// Any value as literal Markdown text (see [`crate::markdown`]).
fn md(text: &str) -> String {
    crate::markdown::text(text)
}

/// One of benchbox's messages (values quoted in backticks) as Markdown.
fn msg(text: &str) -> String {
    crate::markdown::message(text)
}

/// The run's summary for a PR comment, with ratios against `reference` (see
/// [`crate::reference::choose`]).
pub fn summary_markdown(run: &RunResults, reference: Option<&Reference>) -> String {
    render_markdown(run, reference)
}

fn render_markdown(run: &RunResults, reference: Option<&Reference>) -> String {
    let mut out = String::new();
    let conf = run.stats.confidence;
    let _ = writeln!(
        out,
        "## benchbox: {} run {}\n",
        code(&run.matrix_name),
        code(&run.run_id)
    );
    if let Some(d) = &run.plan.description {
        let _ = writeln!(out, "{}\n", crate::markdown::line(d));
    }
    let axes: Vec<String> = run
        .plan
        .axes
        .iter()
        .map(|a| {
            let values: Vec<String> = a.values.iter().map(axis_value_text).collect();
            format!("{} ({})", code(&a.name), md(&values.join(", ")))
        })
        .collect();
    let measured: usize = run
        .cells
        .iter()
        .map(|c| {
            c.samples
                .iter()
                .filter(|s| s.phase == Phase::Measure)
                .count()
        })
        .sum();
    let _ = writeln!(
        out,
        "- **matrix**: {} (sha256 {}), {} cell(s){}, {} measured invocation(s), {} order, status {}",
        code(&run.matrix_path),
        code(run.matrix_sha256.get(..12).unwrap_or(&run.matrix_sha256)),
        run.cells.len(),
        if axes.is_empty() {
            String::new()
        } else {
            format!(" over {}", axes.join(" x "))
        },
        measured,
        md(&run.order.to_string()),
        md(run.status.as_str())
    );
    let _ = writeln!(out, "- **host**: {}", md(&host_line(run)));
    let _ = writeln!(
        out,
        "- **statistics**: seed {}; medians with {:.0}% bootstrap CIs ({} resamples); only invocations with status ok (failed and suspect ones excluded)",
        run.seed,
        conf * 100.0,
        run.stats.resamples
    );
    if let Some(r) = reference {
        let _ = writeln!(
            out,
            "- **reference**: {} ({})",
            code(&run.cells[r.index].label),
            msg(&r.why.to_string())
        );
    }
    if let Some(line) = security_line(run) {
        let _ = writeln!(out, "- **security**: {line}");
    }
    if let Some(isolation) = &run.isolation {
        let _ = writeln!(
            out,
            "- **isolation**: {}; measured: {}",
            md(&isolation.describe()),
            md(&isolation.measures)
        );
        let limits = match crate::render::limits_in_force(run) {
            crate::render::LimitsInForce::EveryCell(text) => format!("{} (every cell)", md(&text)),
            crate::render::LimitsInForce::PerCell(cells) => cells
                .iter()
                .map(|(label, text)| format!("{} {}", code(label), md(text)))
                .collect::<Vec<_>>()
                .join("; "),
        };
        let _ = writeln!(out, "- **limits in force**: {limits}");
    }
    out.push('\n');
    // Loosened cells lead, unfolded: the numbers of a workload that could do more are not the
    // numbers of the hardened default.
    let loosened: Vec<String> = run
        .cells
        .iter()
        .filter_map(|c| c.security_warning())
        .map(|w| msg(&w))
        .collect();
    if !loosened.is_empty() {
        let _ = writeln!(out, "> [!WARNING]\n> {}\n", loosened.join("\n>\n> "));
    }

    // The same metrics, in the same order, as report.html.
    for info in metrics::report_metrics(run) {
        render_metric_table(&mut out, run, reference, &info);
    }

    render_warnings(&mut out, run);
    out
}

fn render_metric_table(
    out: &mut String,
    run: &RunResults,
    reference: Option<&Reference>,
    info: &Metric,
) {
    let conf = run.stats.confidence;
    let _ = writeln!(
        out,
        "### {} ({})\n",
        md(&info.prose_title()),
        info.better_text()
    );
    let _ = writeln!(
        out,
        "| cell | n | median | {:.0}% CI of median | vs reference |",
        conf * 100.0
    );
    out.push_str("|---|---:|---:|---|---|\n");
    let ref_values = reference.map(|r| metrics::series(&run.cells[r.index].samples, &info.key));
    // The ratios' bootstraps dominate the cost of the summary: compute them on all cores.
    let ratios: Vec<Option<String>> = parallel_map(&run.cells, |i, cell| {
        let (Some(r), Some(base)) = (reference, &ref_values) else {
            return None;
        };
        if r.index == i || !cell.summary.contains_key(&info.key) {
            return None;
        }
        let values = metrics::series(&cell.samples, &info.key);
        // The same resample scaling as the summaries (see BOOTSTRAP_BUDGET).
        let opts = StatsOptions {
            resamples: resamples_for(base.len().max(values.len()), run.stats.resamples),
            ..run.stats
        };
        stats::ratio_of_medians(base, &values, &opts)
            .map(|ratio| describe_ratio(ratio.ratio, ratio.ci, info, conf))
    });
    for (i, cell) in run.cells.iter().enumerate() {
        let Some(s) = cell.summary.get(&info.key) else {
            let status = match &cell.setup_error {
                Some(_) => "setup failed",
                None if cell.samples.is_empty() => "not run",
                None => "no invocation with status ok",
            };
            let _ = writeln!(
                out,
                "| {} | {} | - | - | {status} |",
                md(&cell.label),
                cell.n_of_planned(0)
            );
            continue;
        };
        let ci = s.median_ci.map_or("-".to_string(), |c| {
            md(&format!(
                "{} to {}",
                info.format(c.lower),
                info.format(c.upper)
            ))
        });
        let vs = match reference {
            Some(r) if r.index == i => "**reference**".to_string(),
            _ => ratios[i].clone().unwrap_or_else(|| "-".into()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {ci} | {vs} |",
            md(&cell.label),
            cell.n_of_planned(s.n),
            md(&info.format(s.median))
        );
    }
    out.push('\n');
    if let Some(r) = reference {
        for line in axis_geomeans(run, r, info) {
            let _ = writeln!(out, "- {line}");
        }
        out.push('\n');
    }
}

/// The geometric mean of ratios along each axis (matrices with >= 2 axes), against the
/// reference cell's value of that axis. One line per (axis, other value).
fn axis_geomeans(run: &RunResults, reference: &Reference, info: &Metric) -> Vec<String> {
    let axes: Vec<String> = run.cells[reference.index]
        .axes
        .iter()
        .map(|(k, _)| k.clone())
        .collect();
    if axes.len() < 2 {
        return Vec::new();
    }
    let ref_axes = axis_texts(&run.cells[reference.index]);
    let medians: Vec<Option<f64>> = run
        .cells
        .iter()
        .map(|c| c.summary.get(&info.key).map(|s| s.median))
        .collect();
    let mut lines = Vec::new();
    for (a, axis) in axes.iter().enumerate() {
        let base_value = &ref_axes[a].1;
        // Other values of this axis, in cell order.
        let mut values: Vec<String> = Vec::new();
        for c in &run.cells {
            let v = axis_texts(c)
                .get(a)
                .map(|p| p.1.clone())
                .unwrap_or_default();
            if &v != base_value && !values.contains(&v) {
                values.push(v);
            }
        }
        for value in values {
            let mut ratios = Vec::new();
            for (i, c) in run.cells.iter().enumerate() {
                let texts = axis_texts(c);
                if texts.get(a).map(|p| &p.1) != Some(&value) {
                    continue;
                }
                // Its partner: same values on every other axis, the base value on this one.
                let partner = run.cells.iter().position(|p| {
                    let pt = axis_texts(p);
                    pt.len() == texts.len()
                        && pt.iter().enumerate().all(|(k, pair)| {
                            if k == a {
                                &pair.1 == base_value
                            } else {
                                pair == &texts[k]
                            }
                        })
                });
                if let (Some(j), Some(m)) = (partner, medians[i])
                    && let Some(b) = medians[j]
                    && b > 0.0
                    && m > 0.0
                {
                    ratios.push(m / b);
                }
            }
            let Some(g) = stats::geometric_mean(&ratios) else {
                continue;
            };
            let (lo, hi) = ratios
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
                    (lo.min(*r), hi.max(*r))
                });
            lines.push(format!(
                "{} vs {}: {} (geometric mean over {} pair(s) of cells differing only in {}; single ratios {lo:.2} to {hi:.2})",
                code(&format!("{axis}={value}")),
                code(&format!("{axis}={base_value}")),
                md(&describe_ratio(g, None, info, run.stats.confidence)),
                ratios.len(),
                code(axis)
            ));
        }
    }
    lines
}

fn render_warnings(out: &mut String, run: &RunResults) {
    let interesting: Vec<String> = metrics::report_metrics(run)
        .into_iter()
        .map(|m| m.key)
        .collect();
    let mut lines: Vec<String> = run.warnings.iter().map(|w| msg(w)).collect();
    for cell in &run.cells {
        let label = code(&cell.label);
        if let Some(e) = &cell.setup_error {
            lines.push(format!("{label}: {}", msg(e)));
        }
        for w in &cell.warnings {
            lines.push(format!("{label}: {}", msg(w)));
        }
        // One line per distinct message, naming every metric it applies to: "only 6
        // invocations" is the same news for wall, CPU and memory.
        let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
        let mut add =
            |message: String, metric: &str| match grouped.iter_mut().find(|(m, _)| *m == message) {
                Some((_, metrics)) => metrics.push(metric.to_string()),
                None => grouped.push((message, vec![metric.to_string()])),
            };
        for metric in &interesting {
            let Some(s) = cell.summary.get(metric) else {
                continue;
            };
            if !s.outliers.is_empty() {
                let severe = s
                    .outliers
                    .iter()
                    .filter(|o| o.kind == stats::OutlierKind::Severe)
                    .count();
                add(
                    format!(
                        "{} outlier(s) by Tukey's fences ({severe} severe), kept in the statistics",
                        s.outliers.len()
                    ),
                    metric,
                );
            }
            for w in &s.warnings {
                if !matches!(w, stats::Warning::SevereOutliers { .. }) {
                    add(msg(&w.message()), metric);
                }
            }
        }
        for (message, metrics) in grouped {
            lines.push(format!("{label} {}: {message}", md(&metrics.join(", "))));
        }
    }
    if lines.is_empty() {
        return;
    }
    // Folded, so a PR comment leads with the numbers.
    let _ = writeln!(
        out,
        "<details><summary>Warnings ({})</summary>\n",
        lines.len()
    );
    for l in lines {
        let _ = writeln!(out, "- {l}");
    }
    out.push_str("\n</details>\n");
}

/// A run directory for the tests of this module and its property test.
#[cfg(test)]
mod tests_support {
    use super::*;
    use crate::results::CsvWriter;
    use crate::sandbox::security::Policy;
    use crate::spec::Axis;

    pub fn sample(cell: &str, phase: Phase, i: u32, wall: f64, ops: f64) -> Sample {
        Sample {
            cell_id: cell.into(),
            phase,
            index: i,
            started_at: "2026-01-01T00:00:00.000Z".into(),
            wall_s: wall,
            user_s: wall * 0.75,
            system_s: wall * 0.125,
            peak_memory_bytes: Some(8 << 20),
            io_read_bytes: Some(0),
            io_write_bytes: Some(4096),
            exit_code: Some(0),
            signal: None,
            oom_killed: false,
            timed_out: false,
            rusage: crate::sandbox::Rusage {
                max_rss_bytes: 8 << 20,
                ..Default::default()
            },
            throttled_s: 0.0,
            pressure: Default::default(),
            status: crate::status::Status::Ok,
            flags: Vec::new(),
            reason: String::new(),
            metrics: [("ops".to_string(), ops)].into(),
        }
    }

    /// A 2x2 matrix (jdk x gc) run directory: jdk=21 is 20% faster than jdk=17, and each cell
    /// has one warm-up and ten measured invocations; the last cell has one failure.
    pub fn write_run(dir: &Path) -> RunResults {
        let axes = ["jdk", "gc"];
        let combos = [("17", "G1"), ("17", "Par"), ("21", "G1"), ("21", "Par")];
        let mut cells = Vec::new();
        let mut plan_cells = Vec::new();
        let mut csv = CsvWriter::open(
            &dir.join("runs.csv"),
            &axes.map(String::from),
            &["ops".to_string()],
        )
        .unwrap();
        for (k, (jdk, gc)) in combos.iter().enumerate() {
            let id = format!("cell{k}");
            let label = format!("jdk={jdk} gc={gc}");
            let base = if *jdk == "17" { 1.0 } else { 0.8 } * if *gc == "G1" { 1.0 } else { 1.1 };
            let mut samples = vec![sample(&id, Phase::Warmup, 0, base * 2.0, 1.0)];
            for i in 0..10u32 {
                let jitter = 1.0 + 0.01 * ((i * 7 % 5) as f64 - 2.0);
                samples.push(sample(
                    &id,
                    Phase::Measure,
                    i,
                    base * jitter,
                    100.0 / (base * jitter),
                ));
            }
            if k == 3 {
                samples[10].exit_code = Some(1);
                (samples[10].status, samples[10].reason) = crate::status::judge(&samples[10]);
            }
            for s in &samples {
                csv.append(s, &label, &[jdk.to_string(), gc.to_string()])
                    .unwrap();
            }
            plan_cells.push(crate::plan::test_cell(&id, 1, 10));
            cells.push(CellResult {
                id: id.clone(),
                label,
                slug: id.clone(),
                axes: vec![
                    ("jdk".into(), serde_json::json!(jdk)),
                    ("gc".into(), serde_json::json!(gc)),
                ],
                // Stale samples in results.json must be ignored: runs.csv is the truth.
                samples: vec![sample(&id, Phase::Measure, 0, 99.0, 1.0)],
                // The last cell traces its processes without a seccomp filter.
                security: Some(
                    if k == 3 {
                        Policy {
                            capabilities: vec!["SYS_PTRACE".into()],
                            seccomp_unconfined: true,
                            privileged: false,
                        }
                    } else {
                        Policy::default()
                    }
                    .effective(),
                ),
                ..Default::default()
            });
        }
        let run = RunResults {
            schema_version: 1,
            tool: "benchbox".into(),
            tool_version: "0.1.0".into(),
            run_id: "20260101T000000Z".into(),
            status: RunStatus::Complete,
            started_at: "2026-01-01T00:00:00.000Z".into(),
            finished_at: Some("2026-01-01T00:01:00.000Z".into()),
            reason: None,
            command_line: vec!["benchbox".into(), "run".into(), "m.toml".into()],
            host: crate::host::HostInfo {
                hostname: "box".into(),
                kernel: "6.1.0".into(),
                cpu_model: "Test CPU @ 3.0GHz".into(),
                logical_cpus: 8,
                cgroup_version: Some("v2".into()),
                governor: Some("performance".into()),
                ..Default::default()
            },
            isolation: None,
            matrix_name: "jvm".into(),
            matrix_path: "envs/jvm.toml".into(),
            matrix_sha256: "ab".repeat(32),
            seed: 42,
            order: crate::spec::Order::Interleaved,
            stats: StatsOptions {
                resamples: 1000,
                ..Default::default()
            },
            plan: crate::plan::Plan {
                description: Some("two JDKs, two collectors".into()),
                axes: vec![
                    Axis {
                        name: "jdk".into(),
                        values: vec!["17".into(), "21".into()],
                    },
                    Axis {
                        name: "gc".into(),
                        values: vec!["G1".into(), "Par".into()],
                    },
                ],
                cells: plan_cells,
                ..Default::default()
            },
            cells,
            warnings: vec![],
        };
        run.write(dir).unwrap();
        run
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::write_run;
    use super::*;
    use crate::results::{Planned, load};
    use crate::sandbox::security::Policy;
    use std::fs;

    /// summary.md with the reference `spec` names.
    fn summary_markdown_for(run: &RunResults, spec: Option<&str>) -> String {
        let reference = reference::choose(&run.cells, spec).unwrap();
        summary_markdown(run, reference.as_ref())
    }

    #[test]
    fn rebuild_is_deterministic_and_uses_the_csv_alone() {
        let tmp = tempfile::tempdir().unwrap();
        write_run(tmp.path());
        let (run, written) = rebuild(tmp.path(), None).unwrap();
        let first_json = fs::read(&written.results_json).unwrap();
        let first_md = fs::read(&written.summary_md).unwrap();
        assert_eq!(run.cells[0].samples.len(), 11, "warm-up + 10 from the CSV");
        assert!(
            run.cells
                .iter()
                .all(|c| c.samples.iter().all(|s| s.wall_s < 10.0))
        );
        assert_eq!(run.cells[0].summary["wall_s"].n, 10);
        assert_eq!(run.cells[3].summary["wall_s"].n, 9);
        assert_eq!(run.cells[3].failures, 1);
        assert!(run.cells[3].warnings[0].starts_with("1 failed invocation(s) excluded"));
        // The policies recorded by the run survive the rebuild (they are not in runs.csv).
        assert_eq!(run.cells[0].security, Some(Policy::default().effective()));
        assert_eq!(
            run.cells[3]
                .security
                .as_ref()
                .map(|s| s.policy().describe()),
            Some("+SYS_PTRACE, seccomp unconfined".to_string())
        );
        assert_eq!(
            run.finished_at.as_deref(),
            Some("2026-01-01T00:01:00.000Z"),
            "kept"
        );
        // Same bytes again.
        rebuild(tmp.path(), None).unwrap();
        assert!(fs::read(&written.results_json).unwrap() == first_json);
        assert!(fs::read(&written.summary_md).unwrap() == first_md);
        // The streamed JSON is byte for byte what `RunResults::write` writes.
        assert!(serde_json::to_vec_pretty(&run).unwrap() == first_json);

        // Strip every summary and sample from results.json: the rebuild restores them.
        let mut stripped = RunResults::read(tmp.path()).unwrap();
        for c in &mut stripped.cells {
            c.summary.clear();
            c.samples.clear();
            c.warnings.clear();
            c.failures = 0;
        }
        stripped.write(tmp.path()).unwrap();
        fs::remove_file(&written.summary_md).unwrap();
        rebuild(tmp.path(), None).unwrap();
        assert!(fs::read(&written.results_json).unwrap() == first_json);
        assert!(fs::read(&written.summary_md).unwrap() == first_md);
    }

    #[test]
    fn suspect_rows_are_excluded_and_warned_whatever_their_numbers() {
        let tmp = tempfile::tempdir().unwrap();
        write_run(tmp.path());
        // Two measured rows of the first cell say `suspect`; their numbers look like the rest.
        let path = tmp.path().join("runs.csv");
        let reason = "cgroup CPU 0.008 s is below 90% of the reaped tree's 0.742 s (were the counters reset?)";
        let text: String = fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| {
                let mut l = l.to_string();
                if l.starts_with("cell0,")
                    && (l.contains(",measure,3,") || l.contains(",measure,7,"))
                {
                    l = l.replace(",ok,,,", &format!(",suspect,,{reason},"));
                }
                l + "\n"
            })
            .collect();
        fs::write(&path, text).unwrap();
        let (run, written) = rebuild(tmp.path(), None).unwrap();
        let cell = &run.cells[0];
        assert_eq!(cell.summary["wall_s"].n, 8);
        assert_eq!((cell.suspect, cell.failures), (2, 0));
        assert_eq!(
            cell.warnings,
            [format!(
                "2 of 10 invocations suspect: cgroup CPU below rusage CPU; excluded from the statistics\n  hint: measured invocation 3: {reason}; the `reason` column of runs.csv has every one"
            )]
        );
        assert_eq!((run.cells[3].suspect, run.cells[3].failures), (0, 1));
        let md = fs::read_to_string(&written.summary_md).unwrap();
        assert!(md.contains("| jdk=17 gc=G1 | 8 of 10 |"), "{md}");
        assert!(
            md.contains("`jdk=17 gc=G1`: 2 of 10 invocations suspect: cgroup CPU below rusage CPU; excluded from the statistics   hint: measured invocation 3: cgroup CPU 0.008 s"),
            "{md}"
        );
        let json = RunResults::read(tmp.path()).unwrap();
        assert_eq!(json.cells[0].suspect, 2);
        assert_eq!(json.cells[0].samples[4].status, Status::Suspect);
        assert_eq!(json.cells[0].samples[4].reason, reason);
        // Same bytes again.
        let first = fs::read(&written.results_json).unwrap();
        rebuild(tmp.path(), None).unwrap();
        assert!(fs::read(&written.results_json).unwrap() == first);
    }

    #[test]
    fn summary_markdown_shows_the_run_ratios_and_geometric_means() {
        let tmp = tempfile::tempdir().unwrap();
        write_run(tmp.path());
        let (run, _) = rebuild(tmp.path(), None).unwrap();
        let md = summary_markdown_for(&run, None);
        assert!(
            md.starts_with(
                "## benchbox: `jvm` run `20260101T000000Z`\n\ntwo JDKs, two collectors\n"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "4 cell(s) over `jdk` (17, 21) x `gc` (G1, Par), 40 measured invocation(s)"
            ),
            "{md}"
        );
        assert!(md.contains("- **host**: Test CPU @ 3.0GHz, 8 cpus, kernel 6.1.0, cgroup v2, governor performance\n"), "{md}");
        assert!(md.contains("seed 42"), "{md}");
        // Every cell's policy, and the loosened one called out before the numbers.
        assert!(md.contains("- **security**: `jdk=17 gc=G1` default; `jdk=17 gc=Par` default; `jdk=21 gc=G1` default; `jdk=21 gc=Par` +SYS_PTRACE, seccomp unconfined\n"), "{md}");
        let warning = "\n> [!WARNING]\n> cell `jdk=21 gc=Par` runs with +SYS_PTRACE, seccomp unconfined: its workload holds SYS_PTRACE beyond the default capabilities";
        assert!(md.contains(warning), "{md}");
        assert!(md.find(warning) < md.find("### wall time"), "{md}");
        // Default reference: the fastest cell.
        assert!(
            md.contains("- **reference**: `jdk=21 gc=G1` (fastest median wall time)"),
            "{md}"
        );
        assert!(md.contains("### wall time (lower is better)\n\n| cell | n | median | 95% CI of median | vs reference |\n|---|---:|---:|---|---|\n"), "{md}");
        assert!(md.contains("| jdk=21 gc=G1 | 10 | 800.0 ms |"), "{md}");
        assert!(md.contains("| **reference** |"), "{md}");
        assert!(
            md.contains("| jdk=17 gc=G1 | 10 | 1.000 s | ") && md.contains("1.25x slower (95% CI "),
            "{md}"
        );
        // Higher-is-better custom metric: direction and unit from the plan.
        assert!(md.contains("### ops (ops/s) (higher is better)"), "{md}");
        assert!(md.contains("1.25x worse"), "{md}");
        // Geometric means along each axis, against the reference's value of that axis.
        assert!(md.contains("- `jdk=17` vs `jdk=21`: 1.25x slower (geometric mean over 2 pair(s) of cells differing only in `jdk`; single ratios 1.25 to 1.25)"), "{md}");
        assert!(md.contains("- `gc=Par` vs `gc=G1`: 1.10x slower"), "{md}");
        assert!(md.contains("<details><summary>Warnings ("), "{md}");
        assert!(
            md.contains("`jdk=21 gc=Par`: 1 failed invocation(s) excluded"),
            "{md}"
        );

        // An explicit reference names one cell; the axis baselines are its values.
        let md = summary_markdown_for(&run, Some("jdk=17,gc=G1"));
        assert!(
            md.contains("- **reference**: `jdk=17 gc=G1` (`--reference jdk=17,gc=G1`)"),
            "{md}"
        );
        assert!(md.contains("- `jdk=21` vs `jdk=17`: 1.25x faster"), "{md}");
        // A reference that names no single cell is an error for `report`, and nothing is
        // rewritten.
        // (Sentinels a rewrite would replace, whatever it wrote: summary.md's text, and
        // results.json as compact JSON, which benchbox writes pretty.)
        fs::write(tmp.path().join("summary.md"), "sentinel").unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(tmp.path().join("results.json")).unwrap()).unwrap();
        let compact = serde_json::to_string(&json).unwrap();
        fs::write(tmp.path().join("results.json"), &compact).unwrap();
        let e = rebuild(tmp.path(), Some("jdk=8")).unwrap_err().to_string();
        assert!(
            e.starts_with("the reference `jdk=8` matches no cell\n  hint: "),
            "{e}"
        );
        let e = rebuild(tmp.path(), Some("jdk=17")).unwrap_err().to_string();
        assert_eq!(
            e,
            "the reference `jdk=17` matches 2 cells: `jdk=17 gc=G1`, `jdk=17 gc=Par`\n  hint: add axis=value pairs until one cell is left"
        );
        assert_eq!(
            fs::read_to_string(tmp.path().join("summary.md")).unwrap(),
            "sentinel",
            "a failed report rewrote summary.md"
        );
        assert_eq!(
            fs::read_to_string(tmp.path().join("results.json")).unwrap(),
            compact,
            "a failed report rewrote results.json"
        );
    }

    #[test]
    fn security_in_the_summary_when_all_cells_agree_and_when_not_recorded() {
        let tmp = tempfile::tempdir().unwrap();
        let mut run = write_run(tmp.path());
        for c in &mut run.cells {
            c.security = Some(Policy::default().effective());
        }
        let md = summary_markdown_for(&run, None);
        assert!(
            md.contains("- **security**: default (every cell)\n"),
            "{md}"
        );
        assert!(!md.contains("[!WARNING]"), "{md}");
        // A results.json from before policies were recorded says nothing rather than guess.
        for c in &mut run.cells {
            c.security = None;
        }
        let md = summary_markdown_for(&run, None);
        assert!(!md.contains("**security**"), "{md}");
        let privileged = Policy {
            privileged: true,
            ..Policy::default()
        };
        run.cells[1].security = Some(privileged.effective());
        let md = summary_markdown_for(&run, None);
        assert!(md.contains("- **security**: `jdk=17 gc=G1` not recorded; `jdk=17 gc=Par` privileged (all capabilities, no seccomp filter, kernel files unmasked); `jdk=21 gc=G1` not recorded"), "{md}");
        assert!(
            md.contains("> [!WARNING]\n> cell `jdk=17 gc=Par` runs privileged: "),
            "{md}"
        );
    }

    #[test]
    fn ratios_read_the_right_way_round() {
        let time = Metric::builtin("wall_s").unwrap();
        let ci = Some(stats::Interval {
            lower: 0.8,
            upper: 0.9,
        });
        assert_eq!(
            describe_ratio(0.8, ci, &time, 0.95),
            "1.25x faster (95% CI 1.11 to 1.25)"
        );
        let ci = Some(stats::Interval {
            lower: 1.19,
            upper: 1.27,
        });
        assert_eq!(
            describe_ratio(1.23, ci, &time, 0.95),
            "1.23x slower (95% CI 1.19 to 1.27)"
        );
        let ops = Metric::custom("ops", "", Better::Higher);
        assert_eq!(describe_ratio(1.5, None, &ops, 0.95), "1.50x better");
        assert_eq!(describe_ratio(0.5, None, &ops, 0.95), "2.00x worse");
        // An interval that holds 1 is no clear difference, as report.html says (not "1.37x
        // better").
        let wide = Some(stats::Interval {
            lower: 0.87,
            upper: 1.55,
        });
        assert_eq!(
            describe_ratio(1.37, wide, &ops, 0.95),
            "no clear difference (ratio 1.37, 95% CI 0.87 to 1.55)"
        );
        let ratio = crate::stats::Ratio {
            ratio: 1.37,
            ci: wide,
        };
        assert_eq!(
            crate::render::verdict(&ops, &ratio),
            Some("no clear difference")
        );
    }

    #[test]
    fn large_cells_get_fewer_resamples_and_say_so() {
        assert_eq!(resamples_for(10, 10_000), 10_000);
        assert_eq!(resamples_for(100, 10_000), 10_000);
        assert_eq!(resamples_for(5_000, 10_000), 200);
        assert_eq!(resamples_for(1_000, 10_000), 1_000);
        assert_eq!(resamples_for(1_000_000, 10_000), MIN_RESAMPLES);
        assert_eq!(resamples_for(5_000, 100), 100, "never more than recorded");
    }

    #[test]
    fn not_a_run_directory_has_a_hint() {
        let tmp = tempfile::tempdir().unwrap();
        let e = load(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("is not a benchbox run directory: it has no results.json\n  hint: pass a run directory such as reports/NAME/latest"), "{e}");
    }

    /// `runs.csv` without the rows whose line (1 = header) `drop` accepts.
    fn drop_lines(dir: &Path, drop: impl Fn(usize, &str) -> bool) {
        let path = dir.join("runs.csv");
        let text: String = fs::read_to_string(&path)
            .unwrap()
            .lines()
            .enumerate()
            .filter(|(i, l)| !drop(i + 1, l))
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        fs::write(path, text).unwrap();
    }

    /// Issue 10: a runs.csv missing rows gave n = 1 and nothing said "1 of 6"; no runs.csv at
    /// all was exit 0.
    #[test]
    fn missing_rows_show_as_n_of_n_everywhere_and_a_missing_runs_csv_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        write_run(tmp.path());
        // cell0 keeps its warm-up and 1 of its 10 measured invocations.
        drop_lines(tmp.path(), |_, l| {
            l.starts_with("cell0,") && l.contains(",measure,") && !l.contains(",measure,0,")
        });
        let (run, written) = rebuild(tmp.path(), None).unwrap();
        assert!(written.warnings.is_empty(), "{:?}", written.warnings);
        let cell = &run.cells[0];
        assert_eq!(
            cell.planned,
            Some(Planned {
                warmup: 1,
                runs: 10
            }),
            "from the plan"
        );
        assert_eq!(cell.summary["wall_s"].n, 1);
        let missing = "1 of 10 measured invocations in runs.csv (9 missing); the statistics cover only the invocations present\n  hint: finish the run with `benchbox run MATRIX --resume RUN`";
        assert_eq!(cell.warnings[0], missing);
        // results.json carries the warning; summary.md, the terminal table and report.html n of N.
        let json = RunResults::read(tmp.path()).unwrap();
        assert_eq!(json.cells[0].warnings[0], missing);
        assert_eq!(
            json.cells[0].planned,
            Some(Planned {
                warmup: 1,
                runs: 10
            })
        );
        let md = fs::read_to_string(&written.summary_md).unwrap();
        assert!(md.contains("| jdk=17 gc=G1 | 1 of 10 | 980.0 ms |"), "{md}");
        assert!(
            md.contains("| jdk=17 gc=Par | 10 |"),
            "complete cells stay plain: {md}"
        );
        assert!(
            md.contains("`jdk=17 gc=G1`: 1 of 10 measured invocations in runs.csv (9 missing)"),
            "{md}"
        );
        let table = crate::ui::summary_table(&run);
        assert!(table.contains("jdk=17 gc=G1   1 of 10 "), "{table}");
        assert!(
            table.contains("jdk=17 gc=G1: warning: 1 of 10 measured invocations"),
            "{table}"
        );
        let html = crate::render::html(&run, &Default::default()).unwrap();
        assert!(
            html.contains("<td>jdk=17 gc=G1</td><td class=\"num\">1 of 10</td>"),
            "{html}"
        );
        assert!(
            html.contains("<td class=\"num\">1 of 10 (0 failed)</td>"),
            "{html}"
        );

        // A cell with no row at all: "0 of 10", not silence.
        drop_lines(tmp.path(), |_, l| l.starts_with("cell0,"));
        let (run, _) = rebuild(tmp.path(), None).unwrap();
        let md = summary_markdown_for(&run, None);
        assert!(
            md.contains("| jdk=17 gc=G1 | 0 of 10 | - | - | not run |"),
            "{md}"
        );
        assert!(crate::ui::summary_table(&run).contains("jdk=17 gc=G1   0 of 10 "));

        // No runs.csv: an error, for `report` and for `compare` (both read through `load`).
        fs::remove_file(tmp.path().join("runs.csv")).unwrap();
        let e = rebuild(tmp.path(), None).unwrap_err().to_string();
        assert!(
            e.ends_with("runs.csv` is missing: the run's raw data is gone, so nothing can be reported or compared\n  hint: restore runs.csv from a copy of the run directory"),
            "{e}"
        );
        assert!(load(tmp.path()).is_err());
    }

    #[test]
    fn the_plan_of_an_older_results_json_comes_from_its_command_line() {
        let tmp = tempfile::tempdir().unwrap();
        write_run(tmp.path());
        let mut meta = RunResults::read(tmp.path()).unwrap();
        meta.command_line = [
            "benchbox",
            "run",
            "m.toml",
            "--runs",
            "12",
            "--warmup=1",
            "--only",
            "jdk=17",
        ]
        .map(String::from)
        .to_vec();
        meta.write(tmp.path()).unwrap();
        drop_lines(tmp.path(), |_, l| {
            l.starts_with("cell2,") || l.starts_with("cell3,")
        });
        let run = load(tmp.path()).unwrap();
        let planned: Vec<Option<Planned>> = run.cells.iter().map(|c| c.planned).collect();
        let twelve = Some(Planned {
            warmup: 1,
            runs: 12,
        });
        // Cells with no rows in a run restricted by --only were not part of it.
        assert_eq!(planned, [twelve, twelve, None, None]);
        // A recorded plan wins: the warm-up row beyond `--warmup=0` is then an error.
        let mut meta = RunResults::read(tmp.path()).unwrap();
        meta.cells[0].planned = Some(Planned {
            warmup: 0,
            runs: 10,
        });
        meta.write(tmp.path()).unwrap();
        let e = load(tmp.path()).unwrap_err().to_string();
        assert!(
            e.contains("line 2: warm-up 0 of cell `jdk=17 gc=G1` is beyond the plan (0 warm-ups"),
            "{e}"
        );
    }

    /// Issue 10: SIGKILL right after the last invocation left `complete` without reports. The
    /// runner now writes its final status last; a `running` run nobody holds is finished by
    /// `report`.
    #[test]
    fn report_finishes_a_run_left_running_by_a_dead_benchbox() {
        let tmp = tempfile::tempdir().unwrap();
        write_run(tmp.path());
        let set_status = |status: RunStatus| {
            let mut meta = RunResults::read(tmp.path()).unwrap();
            meta.status = status;
            meta.write(tmp.path()).unwrap();
        };
        set_status(RunStatus::Running);
        let (run, written) = rebuild(tmp.path(), None).unwrap();
        assert_eq!(
            run.status,
            RunStatus::Complete,
            "every planned invocation is there"
        );
        assert!(
            written.warnings[0].contains("it is now marked `complete`"),
            "{:?}",
            written.warnings
        );
        assert_eq!(
            RunResults::read(tmp.path()).unwrap().status,
            RunStatus::Complete
        );
        // With a torn last row (a crash mid-write), rows are missing: `interrupted`.
        set_status(RunStatus::Running);
        let path = tmp.path().join("runs.csv");
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, &text[..text.len() - 5]).unwrap();
        let (run, written) = rebuild(tmp.path(), None).unwrap();
        assert_eq!(run.status, RunStatus::Interrupted);
        assert!(
            written.warnings[0].contains("runs.csv` line 45: the last row is incomplete"),
            "{:?}",
            written.warnings
        );
        assert!(written.warnings[1].contains("it is now marked `interrupted`\n  hint: finish it with `benchbox run MATRIX --resume "), "{:?}", written.warnings);
        // The torn row was cell3's failed invocation: 9 ok, 0 failed, 1 missing.
        assert_eq!(
            (run.cells[3].summary["wall_s"].n, run.cells[3].failures),
            (9, 0)
        );
        assert!(
            run.cells[3].warnings[0]
                .starts_with("9 of 10 measured invocations in runs.csv (1 missing)")
        );
        // results.json is readable by everyone, like every other output.
        let mode = fs::metadata(tmp.path().join("results.json"))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o644
        );
    }

    /// Issue 10: axis values went into summary.md (and $GITHUB_STEP_SUMMARY) as Markdown.
    #[test]
    fn summary_markdown_escapes_every_value() {
        let tmp = tempfile::tempdir().unwrap();
        let mut run = write_run(tmp.path());
        run.matrix_name = "a`b".into();
        run.plan.description = Some("# <img src=x onerror=alert(1)>".into());
        run.plan.axes[0].values = vec![
            "<script>alert(1)</script>".into(),
            "![x](http://evil.example/p.png)".into(),
        ];
        run.cells[0].label = "jdk=<script>alert(1)</script> gc=G1".into();
        run.cells[2].label = "jdk=![x](http://evil.example/p.png) gc=G1".into();
        run.cells[0].axes[0].1 = "<script>alert(1)</script>".into();
        run.cells[2].axes[0].1 = "![x](http://evil.example/p.png)".into();
        run.cells[3].setup_error = Some("setup failed: **boom** | see `logs/x`".into());
        run.write(tmp.path()).unwrap();
        let (run, written) =
            rebuild(tmp.path(), Some("jdk=![x](http://evil.example/p.png)")).unwrap();
        let md = fs::read_to_string(&written.summary_md).unwrap();
        assert_eq!(
            md,
            summary_markdown_for(&run, Some("jdk=![x](http://evil.example/p.png)"))
        );
        // Outside code spans no raw tag, image or emphasis survives.
        let (title, rest) = md.split_once('\n').unwrap();
        assert_eq!(title, "## benchbox: ``a`b`` run `20260101T000000Z`");
        let outside_code: String = rest
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, p)| p)
            .collect();
        // (A needle preceded by a backslash is escaped: it shows as text.)
        for raw in ["<script>", "<img", "![", "**boom**"] {
            let unescaped = outside_code
                .match_indices(raw)
                .any(|(i, _)| !outside_code[..i].ends_with('\\'));
            assert!(!unescaped, "{raw}: {md}");
        }
        assert!(md.starts_with("## benchbox: ``a`b`` run `20260101T000000Z`\n\n\\# \\<img src=x onerror=alert(1)\\>\n"), "{md}");
        assert!(
            md.contains("| jdk=\\<script\\>alert(1)\\</script\\> gc=G1 | 10 |"),
            "{md}"
        );
        assert!(md.contains("- **reference**: `jdk=![x](http://evil.example/p.png) gc=G1` (`--reference jdk=![x](http://evil.example/p.png)`)"), "{md}");
        assert!(
            md.contains("`jdk=<script>alert(1)</script>` vs `jdk=![x](http://evil.example/p.png)`"),
            "{md}"
        );
        assert!(
            md.contains("setup failed: \\*\\*boom\\*\\* \\| see `logs/x`"),
            "{md}"
        );
    }
}

/// The property the issue asks for: mutated runs.csv files never make the loader panic, and it
/// never returns counts that are silently wrong. Whatever it accepts holds no duplicate, no
/// invocation beyond the plan and no value out of range; rows it drops are always visible (a
/// warning, and "n of N" against the plan); and mutations that keep every row keep every count.
#[cfg(test)]
mod loader_properties {
    use super::tests_support::write_run;
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;
    use std::fs;

    #[derive(Debug, Clone)]
    enum Mutation {
        /// Cut the file at this fraction (per 10,000) of its length.
        Truncate(usize),
        /// Delete a data line.
        Delete(usize),
        /// Copy a data line to another place.
        Duplicate(usize, usize),
        /// Swap two data lines.
        Swap(usize, usize),
        /// Set one field of a data line.
        SetField(usize, usize, String),
        /// Overwrite one byte anywhere (the header included).
        FlipByte(usize, u8),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        let value = prop_oneof![
            prop::sample::select(vec![
                "-1",
                "NaN",
                "inf",
                "-inf",
                "",
                "1e400",
                "2e9",
                "x",
                "-0.5",
                "1.5",
                "18446744073709551616",
                "true",
                "warmup",
                "measure",
                "cell1",
                "cell9",
                "99",
                "0",
                "9",
                "\"",
                ",",
                "ok",
                "failed",
                "suspect",
                "rerun",
                "256",
            ])
            .prop_map(String::from),
            "[ -~]{0,8}",
        ];
        prop_oneof![
            (0usize..10_000).prop_map(Mutation::Truncate),
            (0usize..1000).prop_map(Mutation::Delete),
            (0usize..1000, 0usize..1000).prop_map(|(a, b)| Mutation::Duplicate(a, b)),
            (0usize..1000, 0usize..1000).prop_map(|(a, b)| Mutation::Swap(a, b)),
            (0usize..1000, 0usize..64, value).prop_map(|(l, c, v)| Mutation::SetField(l, c, v)),
            (0usize..100_000, any::<u8>()).prop_map(|(p, b)| Mutation::FlipByte(p, b)),
        ]
    }

    type Counts = BTreeMap<(String, Phase), usize>;

    fn counts_of_lines(lines: &[&str]) -> Counts {
        let mut c = Counts::new();
        for l in lines {
            let f: Vec<&str> = l.split(',').collect();
            let phase = if f[4] == "warmup" {
                Phase::Warmup
            } else {
                Phase::Measure
            };
            *c.entry((f[0].to_string(), phase)).or_default() += 1;
        }
        c
    }

    fn counts_of_run(run: &RunResults) -> Counts {
        let mut c = Counts::new();
        for cell in &run.cells {
            for s in &cell.samples {
                *c.entry((s.cell_id.clone(), s.phase)).or_default() += 1;
            }
        }
        c
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn mutated_runs_csv_never_panics_nor_miscounts(m in mutation()) {
            let tmp = tempfile::tempdir().unwrap();
            write_run(tmp.path());
            let path = tmp.path().join("runs.csv");
            let original = fs::read_to_string(&path).unwrap();
            let lines: Vec<&str> = original.lines().collect();
            let (header, data) = (lines[0], &lines[1..]);
            let n = data.len();
            let join = |rows: &[&str]| {
                let mut t = format!("{header}\n");
                for r in rows {
                    t.push_str(r);
                    t.push('\n');
                }
                t
            };
            let all = counts_of_lines(data);
            let mutated: Vec<u8> = match &m {
                Mutation::Truncate(k) => original.as_bytes()[..original.len() * k / 10_000].to_vec(),
                Mutation::Delete(l) => {
                    let mut rows = data.to_vec();
                    rows.remove(l % n);
                    join(&rows).into_bytes()
                }
                Mutation::Duplicate(a, b) => {
                    let mut rows = data.to_vec();
                    rows.insert(b % (n + 1), data[a % n]);
                    join(&rows).into_bytes()
                }
                Mutation::Swap(a, b) => {
                    let mut rows = data.to_vec();
                    rows.swap(a % n, b % n);
                    join(&rows).into_bytes()
                }
                Mutation::SetField(l, c, v) => {
                    let mut rows: Vec<String> = data.iter().map(|r| r.to_string()).collect();
                    let mut f: Vec<&str> = data[l % n].split(',').collect();
                    let k = c % f.len();
                    f[k] = v;
                    rows[l % n] = f.join(",");
                    let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
                    join(&refs).into_bytes()
                }
                Mutation::FlipByte(p, b) => {
                    let mut bytes = original.clone().into_bytes();
                    let at = p % bytes.len();
                    bytes[at] = *b;
                    bytes
                }
            };
            fs::write(&path, &mutated).unwrap();

            match load_checked(tmp.path()) {
                Err(e) => {
                    // Cutting, deleting and reordering rows leave a valid file.
                    prop_assert!(
                        !matches!(m, Mutation::Truncate(_) | Mutation::Delete(_) | Mutation::Swap(..)),
                        "{m:?} was refused: {e}"
                    );
                }
                Ok((mut run, warnings)) => {
                    prop_assert!(!matches!(m, Mutation::Duplicate(..)), "a duplicate was accepted");
                    // No duplicate, nothing beyond the plan, every value in range.
                    let mut seen = HashSet::new();
                    for cell in &run.cells {
                        let planned = cell.planned.unwrap();
                        for s in &cell.samples {
                            prop_assert!(seen.insert((s.cell_id.clone(), s.phase, s.index)));
                            let limit = match s.phase {
                                Phase::Warmup => planned.warmup,
                                Phase::Measure => planned.runs,
                            };
                            prop_assert!(s.index < limit);
                            for v in [s.wall_s, s.user_s, s.system_s, s.throttled_s, s.rusage.user_s, s.rusage.system_s] {
                                prop_assert!(v.is_finite() && (0.0..=results::MAX_SECONDS).contains(&v));
                            }
                            prop_assert!(s.metrics.values().all(|v| v.is_finite()));
                        }
                    }
                    let got = counts_of_run(&run);
                    let expected = match &m {
                        Mutation::Truncate(k) => {
                            // Exactly the rows whose line end made it.
                            let cut = original.len() * k / 10_000;
                            let kept = original[..cut].matches('\n').count().saturating_sub(1);
                            let at_boundary = cut == 0 || original.as_bytes()[cut - 1] == b'\n';
                            prop_assert_eq!(warnings.is_empty(), at_boundary, "{:?}", warnings);
                            Some(counts_of_lines(&data[..kept]))
                        }
                        Mutation::Delete(l) => {
                            prop_assert!(warnings.is_empty());
                            let mut rows = data.to_vec();
                            rows.remove(l % n);
                            Some(counts_of_lines(&rows))
                        }
                        Mutation::Swap(..) => Some(all.clone()),
                        _ => None,
                    };
                    let got_vs = |c: &Counts| -> Counts {
                        c.iter().filter(|(_, v)| **v > 0).map(|(k, v)| (k.clone(), *v)).collect()
                    };
                    if let Some(expected) = expected {
                        prop_assert_eq!(got_vs(&got), got_vs(&expected));
                    } else if got_vs(&got) != got_vs(&all) {
                        // A row lost to a field or byte change: only ever as a torn last row,
                        // which is said.
                        prop_assert!(!warnings.is_empty(), "{m:?}: counts changed silently");
                        for (k, v) in &got {
                            prop_assert!(v <= all.get(k).unwrap_or(&0), "{m:?}: more rows than written");
                        }
                    }
                    // Every cell with fewer rows than planned says "n of N".
                    summarize(&mut run);
                    for cell in &run.cells {
                        let planned = cell.planned.unwrap();
                        let measured = cell.count_measured();
                        let short = measured < planned.runs as usize
                            || cell.samples.len() - measured < planned.warmup as usize;
                        prop_assert_eq!(short, missing_warning(cell).is_some());
                        prop_assert_eq!(
                            short,
                            cell.warnings.first().is_some_and(|w| w.contains(" measured invocations in runs.csv ("))
                        );
                    }
                }
            }
        }
    }
}
