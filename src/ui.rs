//! The terminal: a progress bar while a run goes (plain lines when stderr is not a terminal),
//! and the summary table at the end. It only consumes [`runner::Event`]s and results; nothing
//! here affects what is measured.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::metrics::{human_bytes, human_seconds};
use crate::results::RunResults;
use crate::runner::{Event, describe_failure};
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
            } => {
                let resumed = if *already_done > 0 {
                    format!(", {already_done} already done")
                } else {
                    String::new()
                };
                self.line(&format!(
                    "benchbox: run {run_id}: {cells} cell(s), {invocations} invocation(s){resumed}, seed {seed}\n  results: {}\n  isolation: {}",
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

/// The end-of-run table: per cell, median and spread (MAD) of wall, CPU and peak memory, and
/// failures (and, when any cell has some, suspect invocations); then the cells' warnings.
pub fn summary_table(results: &RunResults) -> String {
    let any_suspect = results.cells.iter().any(|c| c.suspect > 0);
    let mut header = vec![
        "cell",
        "n",
        "wall median",
        "± MAD",
        "cpu median",
        "peak memory",
        "failed",
    ];
    if any_suspect {
        header.push("suspect");
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    for cell in &results.cells {
        // A cell with nothing to show, unless the run planned some (then "0 of N" says so).
        if cell.samples.is_empty()
            && cell.setup_error.is_none()
            && cell.planned.is_none_or(|p| p.runs == 0)
        {
            continue;
        }
        let wall = cell.summary.get("wall_s");
        let cpu = cell.summary.get("cpu_s");
        let mem = cell.summary.get("peak_memory_bytes");
        let measured = cell
            .samples
            .iter()
            .filter(|s| s.phase == crate::plan::Phase::Measure)
            .count();
        let mut row = vec![
            cell.label.clone(),
            // "5 of 10" when invocations are missing, failed or suspect.
            cell.n_of_planned(wall.map_or(0, |s| s.n)),
            wall.map_or("-".into(), |s| human_seconds(s.median)),
            wall.map_or("-".into(), |s| human_seconds(s.mad)),
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
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let fmt_row = |cells: Vec<String>| {
        cells
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
            .join("  ")
    };
    let mut out = String::new();
    out.push_str(&fmt_row(header.iter().map(|s| s.to_string()).collect()));
    out.push('\n');
    for row in rows {
        out.push_str(&fmt_row(row));
        out.push('\n');
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
