//! The terminal: a progress bar while a run goes (plain lines when stderr is not a terminal),
//! and the summary table at the end. It only consumes [`runner::Event`]s and results; nothing
//! here affects what is measured.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::metrics::{Metric, human_bytes, human_seconds};
use crate::render::{Scale, format_ratio};
use crate::results::RunResults;
use crate::runner::{Event, describe_failure};
use crate::stats::Summary;
use crate::status::Status;

/// Progress display for `benchbox run`, fed with runner events.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn new() -> Progress {
        Progress { bar: None }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }

    pub fn handle(&mut self, event: &Event) {
        match event {
            Event::Started {
                run_id,
                dir,
                cells,
                invocations,
                already_done,
                seed,
                loosened,
                isolation,
                revision,
            } => {
                let resumed = if *already_done > 0 {
                    format!(", {already_done} already done")
                } else {
                    String::new()
                };
                let revision = revision
                    .map(|r| format!("\n  revision: {}", r.describe_line()))
                    .unwrap_or_default();
                self.line(&format!(
                    "benchbox: run {run_id}: {cells} cell(s), {invocations} invocation(s){resumed}, seed {seed}\n  results: {}\n  isolation: {}{revision}",
                    dir.display(),
                    isolation.describe()
                ));
                // Before any invocation, so nobody misses that a workload runs loosened.
                for w in loosened.iter() {
                    self.line(&format!("warning: {w}"));
                }
                if std::io::stderr().is_terminal() && *invocations > 0 {
                    let bar = ProgressBar::new(*invocations as u64);
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} ETA {eta}  {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    bar.enable_steady_tick(Duration::from_millis(200));
                    self.bar = Some(bar);
                }
            }
            Event::SetupStarted { cell } => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("{}: setup", cell.label));
                } else {
                    self.line(&format!("setup {}", cell.label));
                }
            }
            Event::SetupFinished { cell, error, .. } => {
                if let Some(e) = error {
                    self.line(&format!("setup of {} failed: {e}", cell.label));
                }
            }
            Event::InvocationStarted {
                cell, phase, index, ..
            } => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("{} {phase} #{}", cell.label, index + 1));
                }
            }
            Event::InvocationFinished {
                cell,
                sample,
                position,
                total,
                problem,
                ..
            } => {
                let reason = if sample.reason.is_empty() {
                    describe_failure(
                        sample.measured.exit_code,
                        sample.measured.signal,
                        sample.measured.oom_killed,
                        sample.measured.timed_out,
                    )
                } else {
                    sample.reason.clone()
                };
                let status = match sample.status {
                    Status::Ok => "ok".to_string(),
                    Status::Suspect => format!("SUSPECT: {reason}"),
                    _ => format!("FAILED: {reason}"),
                };
                // A command that never started has no times to show.
                let times = if sample.status == Status::StartFailed {
                    "did not start".to_string()
                } else {
                    format!(
                        "{} wall, {} cpu",
                        human_seconds(sample.measured.wall_s),
                        human_seconds(sample.cpu_s())
                    )
                };
                let text = format!(
                    "[{:>width$}/{total}] {} {} #{}: {times}, {status}",
                    position + 1,
                    cell.label,
                    sample.phase,
                    sample.index + 1,
                    width = total.to_string().len()
                );
                match &self.bar {
                    Some(bar) => {
                        bar.inc(1);
                        if sample.status != Status::Ok {
                            bar.println(text);
                        }
                    }
                    None => self.line(&text),
                }
                if let Some(p) = problem {
                    self.line(&format!("  warning: {}: {p}", cell.label));
                }
            }
            Event::Warning { message } => self.line(&format!("warning: {message}")),
            Event::Finished { .. } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
            }
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

/// The widest a table of [`summary_table`] grows when it can choose: custom metrics go to
/// tables of their own, as many as keep each within this many columns.
const WIDTH: usize = 100;

/// The end-of-run table with the run's default reference (see [`summary_table_with`]).
pub fn summary_table(results: &RunResults) -> String {
    summary_table_with(results, None)
}

/// The end-of-run table: per cell, the median wall time with its 95% interval, its ratio to
/// the reference cell (`reference` names it as `--reference` does, else the rule of
/// [`crate::reference`]), the median CPU time and peak memory, and failures (and, when any
/// cell has some, suspect invocations); then each custom metric's median with its interval
/// and unit, in tables of their own no wider than [`WIDTH`] columns; then the cells' warnings.
pub fn summary_table_with(results: &RunResults, reference: Option<&str>) -> String {
    let any_suspect = results.cells.iter().any(|c| c.suspect > 0);
    // `report` checked the spec before it wrote anything; a spec that names no single cell
    // here loses the ratios, never the table.
    let reference = crate::reference::choose(&results.cells, reference)
        .ok()
        .flatten();
    let reference_wall = reference
        .as_ref()
        .and_then(|r| results.cells[r.index].summary.get("wall_s"))
        .map(|s| s.median);
    // A cell with nothing to show, unless the run planned some (then "0 of N" says so).
    let shown: Vec<usize> = (0..results.cells.len())
        .filter(|&i| {
            let cell = &results.cells[i];
            !(cell.samples.is_empty()
                && cell.setup_error.is_none()
                && cell.planned.is_none_or(|p| p.runs == 0))
        })
        .collect();
    let wall = Metric::builtin("wall_s").expect("a built-in metric");
    let wall_scale = column_scale(results, &wall);
    let mut header = vec![
        "cell".to_string(),
        "n".to_string(),
        "wall median [95% CI]".to_string(),
        "vs ref".to_string(),
        "cpu median".to_string(),
        "peak memory".to_string(),
        "failed".to_string(),
    ];
    if any_suspect {
        header.push("suspect".to_string());
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    for &i in &shown {
        let cell = &results.cells[i];
        let wall_summary = cell.summary.get("wall_s");
        let cpu = cell.summary.get("cpu_s");
        let mem = cell.summary.get("peak_memory_bytes");
        // A row a rerun replaced is not an invocation of its own.
        let measured = cell.count_measured();
        // The ratio of medians, as every report computes it (its interval is in report.html).
        let ratio = match (reference.as_ref(), wall_summary, reference_wall) {
            (Some(r), Some(_), _) if r.index == i => "ref".to_string(),
            (_, Some(s), Some(base)) if base > 0.0 && s.median > 0.0 => {
                format!("{}x", format_ratio(s.median / base))
            }
            _ => "-".to_string(),
        };
        let mut row = vec![
            cell.label.clone(),
            // "5 of 10" when invocations are missing, failed or suspect.
            cell.n_of_planned(wall_summary.map_or(0, |s| s.n)),
            wall_summary.map_or("-".into(), |s| median_with_ci(&wall_scale, s)),
            ratio,
            cpu.map_or("-".into(), |s| human_seconds(s.median)),
            mem.map_or("-".into(), |s| human_bytes(s.median)),
            if cell.setup_error.is_some() {
                "setup".into()
            } else {
                format!("{}/{}", cell.failures, measured)
            },
        ];
        if any_suspect {
            row.push(format!("{}/{}", cell.suspect, measured));
        }
        rows.push(row);
    }
    let mut out = render_table(&header, &rows);
    if let Some(r) = &reference
        && reference_wall.is_some()
        && rows.len() > 1
    {
        out.push_str(&format!(
            "vs ref: median wall time / that of the reference, {} ({})\n",
            results.cells[r.index].label, r.why
        ));
    }
    // Custom metrics: one column each, packed into tables that fit the width.
    let custom: Vec<Metric> = crate::metrics::report_metrics(results)
        .into_iter()
        .filter(|m| !crate::metrics::is_builtin(&m.key))
        .collect();
    if !custom.is_empty() && !rows.is_empty() {
        let labels: Vec<String> = shown
            .iter()
            .map(|&i| results.cells[i].label.clone())
            .collect();
        let columns: Vec<(String, Vec<String>)> = custom
            .iter()
            .map(|m| {
                let scale = column_scale(results, m);
                let values = shown
                    .iter()
                    .map(|&i| {
                        results.cells[i]
                            .summary
                            .get(&m.key)
                            .map_or("-".into(), |s| median_with_ci(&scale, s))
                    })
                    .collect();
                (format!("{} median [95% CI]", m.key), values)
            })
            .collect();
        let label_width = labels
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0)
            .max(4);
        let mut start = 0;
        while start < columns.len() {
            // At least one column per table, however wide.
            let mut end = start + 1;
            let mut width = label_width + 2 + column_width(&columns[start]);
            while end < columns.len() && width + 2 + column_width(&columns[end]) <= WIDTH {
                width += 2 + column_width(&columns[end]);
                end += 1;
            }
            let mut header = vec!["cell".to_string()];
            header.extend(columns[start..end].iter().map(|(h, _)| h.clone()));
            let rows: Vec<Vec<String>> = labels
                .iter()
                .enumerate()
                .map(|(r, label)| {
                    let mut row = vec![label.clone()];
                    row.extend(columns[start..end].iter().map(|(_, v)| v[r].clone()));
                    row
                })
                .collect();
            out.push('\n');
            out.push_str(&render_table(&header, &rows));
            start = end;
        }
    }
    // How it was isolated and limited (runs recorded before benchbox said so ran as root, and
    // their limits are in report.html).
    if let Some(isolation) = &results.isolation {
        out.push_str(&format!("isolation: {}\n", isolation.describe()));
        if !isolation.mode.has_cgroup() {
            out.push_str(&format!("  measured: {}\n", isolation.measures));
        }
        let limits = crate::render::limits_in_force(results);
        out.push_str(&format!("limits in force: {}\n", limits.plain()));
    }
    for cell in &results.cells {
        if let Some(e) = &cell.setup_error {
            out.push_str(&format!("{}: {e}\n", cell.label));
        }
        for w in &cell.warnings {
            out.push_str(&format!("{}: warning: {w}\n", cell.label));
        }
        for (metric, s) in &cell.summary {
            for w in &s.warnings {
                if metric == "wall_s" {
                    out.push_str(&format!("{}: wall: {}\n", cell.label, w.message()));
                }
            }
        }
    }
    out
}

/// The unit a column of `metric` reads best in: the one for the smallest of the cells' medians
/// (as the reports choose it).
fn column_scale(results: &RunResults, metric: &Metric) -> Scale {
    let medians: Vec<f64> = results
        .cells
        .iter()
        .filter_map(|c| c.summary.get(&metric.key))
        .map(|s| s.median)
        .collect();
    Scale::for_values(metric, &medians)
}

/// "123.1 ms [118.0, 130.2]": the median in the column's unit with its 95% interval; the
/// median alone when the cell is too small for one (its warning says so).
fn median_with_ci(scale: &Scale, s: &Summary) -> String {
    let unit = if scale.unit.is_empty() {
        String::new()
    } else {
        format!(" {}", scale.unit)
    };
    match &s.median_ci {
        Some(ci) => format!(
            "{}{unit} [{}, {}]",
            scale.format(s.median, 4),
            scale.format(ci.lower, 4),
            scale.format(ci.upper, 4)
        ),
        None => format!("{}{unit}", scale.format(s.median, 4)),
    }
}

fn column_width((header, values): &(String, Vec<String>)) -> usize {
    values
        .iter()
        .chain(std::iter::once(header))
        .map(|v| v.chars().count())
        .max()
        .unwrap_or(0)
}

/// Columns padded to their widest entry, two spaces apart: the first left-aligned (labels),
/// the rest right-aligned (numbers).
fn render_table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let text = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                let pad = w - c.chars().count();
                if i == 0 {
                    format!("{c}{}", " ".repeat(pad))
                } else {
                    format!("{}{c}", " ".repeat(pad))
                }
            })
            .collect::<Vec<_>>()
            .join("  ");
        format!("{}\n", text.trim_end())
    };
    let mut out = line(header);
    for row in rows {
        out.push_str(&line(row));
    }
    out
}
