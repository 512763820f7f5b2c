//! `benchbox history`'s text outputs: the terminal table, Markdown and JSON of a [`History`].
//! Pure: the history in, text out; every number comes from [`crate::history`].

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::history::{Change, Failing, History, Series};

/// "+20.1%".
fn percent(fraction: f64) -> String {
    format!("{:+.1}%", fraction * 100.0)
}

/// The run's name: its revision's short name, or its run id.
fn name(h: &History, run: usize) -> &str {
    h.runs[run].name()
}

/// The change's row: cell, metric, revision, previous revision, direction, change, CI, p,
/// runs before / after, acknowledgement.
fn row(h: &History, s: &Series, c: &Change, failing: bool) -> Vec<String> {
    let (change, ci, sides) = match &c.step {
        Some(step) => (
            percent(step.relative),
            step.ci.map_or("-".into(), |i| {
                format!("{} to {}", percent(i.lower), percent(i.upper))
            }),
            format!("{} / {}", step.runs_before, step.runs_after),
        ),
        None => (percent(c.detected.relative), "-".into(), "-".into()),
    };
    let direction = if c.regression {
        "REGRESSION"
    } else {
        "improvement"
    };
    let status = match (&c.accepted, failing) {
        (Some(reason), _) => format!("accepted: {reason}"),
        (None, true) => "not accepted".into(),
        (None, false) => String::new(),
    };
    vec![
        s.label.clone(),
        s.metric.short_title().to_string(),
        name(h, c.run).to_string(),
        name(h, c.previous_run).to_string(),
        direction.into(),
        change,
        ci,
        format!("{:.1e}", c.detected.p_value),
        sides,
        status,
    ]
}

const HEADER: [&str; 10] = [
    "cell",
    "metric",
    "revision",
    "previous",
    "direction",
    "change",
    "CI of change",
    "p",
    "runs (before / after)",
    "",
];

fn rows(h: &History, failing: &[Failing]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (si, s) in h.series.iter().enumerate() {
        for (ci, c) in s.changes.iter().enumerate() {
            let fails = failing.contains(&Failing {
                series: si,
                change: ci,
            });
            out.push(row(h, s, c, fails));
        }
    }
    out
}

/// "30 complete run(s) of m, r01 to r30 (2 skipped)".
fn scope(h: &History) -> String {
    let mut names: Vec<&str> = h.runs.iter().map(|r| r.matrix_name.as_str()).collect();
    names.sort();
    names.dedup();
    let range = match (h.runs.first(), h.runs.last()) {
        (Some(a), Some(b)) => format!(", {} to {}", a.name(), b.name()),
        _ => String::new(),
    };
    let skipped = if h.skipped.is_empty() {
        String::new()
    } else {
        format!(" ({} skipped)", h.skipped.len())
    };
    format!(
        "{} complete run(s) of {}{range}{skipped}, {} series",
        h.runs.len(),
        names.join(", "),
        h.series.len()
    )
}

/// How change points were judged, in one line.
pub fn method(h: &History) -> String {
    format!(
        "change points: E-Divisive with means and a t-test (p <= {}), steps of at least {:.1}%, window {} runs; the CI of a step is a {:.0}% bootstrap interval over the invocations of the runs on each side",
        h.detect.p_value,
        h.detect.min_change * 100.0,
        h.detect.window,
        h.confidence * 100.0
    )
}

/// The verdict of `--check`.
pub fn check_line(h: &History, failing: &[Failing]) -> String {
    if failing.is_empty() {
        "check: passed (no regression at the newest run that is not accepted)".into()
    } else {
        let newest = h.runs.last().map_or("-", |r| r.name());
        format!(
            "check: FAILED: {} regression(s) not accepted hold at the newest run ({newest})",
            failing.len()
        )
    }
}

/// The terminal table; `check` adds its verdict.
pub fn table(h: &History, failing: &[Failing], check: bool) -> String {
    let rows = rows(h, failing);
    let mut out = String::new();
    for w in &h.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    for s in &h.skipped {
        let _ = writeln!(out, "skipped: {}: {}", s.dir.display(), s.reason);
    }
    let _ = writeln!(out, "history: {}", scope(h));
    let _ = writeln!(out, "{}", method(h));
    if rows.is_empty() {
        let _ = writeln!(out, "no change point");
    } else {
        let mut widths: Vec<usize> = HEADER.iter().map(|h| h.chars().count()).collect();
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
                let pad = " ".repeat(w - c.chars().count());
                match i {
                    5..=8 => s.push_str(&format!("{pad}{c}  ")),
                    _ => s.push_str(&format!("{c}{pad}  ")),
                }
            }
            s.trim_end().to_string()
        };
        let header: Vec<String> = HEADER.iter().map(|s| s.to_string()).collect();
        let _ = writeln!(out, "{}", line(&header));
        for r in &rows {
            let _ = writeln!(out, "{}", line(r));
        }
    }
    if check {
        let _ = writeln!(out, "{}", check_line(h, failing));
    }
    out
}

/// Markdown, for a PR comment or `$GITHUB_STEP_SUMMARY`.
pub fn markdown(h: &History, failing: &[Failing], check: bool) -> String {
    use crate::markdown::{message, text};
    let mut out = String::from("## benchbox history\n\n");
    let _ = writeln!(out, "{}\n", text(&scope(h)));
    let _ = writeln!(out, "{}\n", text(&method(h)));
    for w in &h.warnings {
        let _ = writeln!(out, "> **warning**: {}\n", message(w));
    }
    let rows = rows(h, failing);
    if rows.is_empty() {
        out.push_str("No change point.\n");
    } else {
        let header: Vec<&str> = HEADER
            .iter()
            .map(|c| if c.is_empty() { "status" } else { c })
            .collect();
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let _ = writeln!(
            out,
            "|{}",
            HEADER
                .iter()
                .enumerate()
                .map(|(i, _)| if (5..=8).contains(&i) {
                    "---:|"
                } else {
                    "---|"
                })
                .collect::<String>()
        );
        for r in &rows {
            let cells: Vec<String> = r.iter().map(|c| text(c)).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
    }
    if !h.skipped.is_empty() {
        out.push_str("\nSkipped:\n\n");
        for s in &h.skipped {
            let _ = writeln!(
                out,
                "- {}: {}",
                text(&s.dir.display().to_string()),
                text(&s.reason)
            );
        }
    }
    if check {
        let _ = writeln!(out, "\n**{}**", text(&check_line(h, failing)));
    }
    out
}

fn interval(i: Option<crate::stats::Interval>) -> Value {
    i.map_or(Value::Null, |i| json!([i.lower, i.upper]))
}

// The points are most of the document (one per run, cell and metric): serialized from these
// structs straight to text, never built as a `Value` tree (which took four times the memory).
#[derive(serde::Serialize)]
struct PointOut {
    run: usize,
    median: f64,
    ci: Option<[f64; 2]>,
    n: usize,
}

#[derive(serde::Serialize)]
struct SeriesOut<'a> {
    cell_id: &'a str,
    label: &'a str,
    metric: &'a str,
    better: crate::spec::Better,
    unit: &'a str,
    points: Vec<PointOut>,
    changes: Vec<Value>,
}

#[derive(serde::Serialize)]
struct Doc<'a> {
    runs: Vec<Value>,
    skipped: Vec<Value>,
    options: Value,
    series: Vec<SeriesOut<'a>>,
    failing: usize,
    warnings: &'a [String],
}

/// JSON: the runs, the skipped directories, the options, every series with its points and
/// change points, and what `--check` fails on.
pub fn json(h: &History, failing: &[Failing]) -> String {
    let runs: Vec<Value> = h
        .runs
        .iter()
        .map(|r| {
            json!({
                "run_id": r.run_id,
                "dir": r.dir.display().to_string(),
                "matrix_name": r.matrix_name,
                "finished_at": r.finished_at,
                "revision": r.revision,
            })
        })
        .collect();
    let series: Vec<SeriesOut> = h
        .series
        .iter()
        .enumerate()
        .map(|(si, s)| {
            let points: Vec<PointOut> = s
                .points
                .iter()
                .map(|p| PointOut {
                    run: p.run,
                    median: p.median,
                    ci: p.ci.map(|i| [i.lower, i.upper]),
                    n: p.n,
                })
                .collect();
            let changes: Vec<Value> = s
                .changes
                .iter()
                .enumerate()
                .map(|(ci, c)| {
                    json!({
                        "run": c.run,
                        "revision": name(h, c.run),
                        "previous_run": c.previous_run,
                        "previous_revision": name(h, c.previous_run),
                        "direction": if c.regression { "regression" } else { "improvement" },
                        "p_value": c.detected.p_value,
                        "mean_before": c.detected.mean_before,
                        "mean_after": c.detected.mean_after,
                        "relative_of_medians": c.detected.relative,
                        "step": c.step.as_ref().map(|s| json!({
                            "relative": s.relative,
                            "ci": interval(s.ci),
                            "runs_before": s.runs_before,
                            "runs_after": s.runs_after,
                            "n_before": s.n_before,
                            "n_after": s.n_after,
                        })),
                        "accepted": c.accepted,
                        "fails_check": failing.contains(&Failing { series: si, change: ci }),
                    })
                })
                .collect();
            SeriesOut {
                cell_id: &s.cell_id,
                label: &s.label,
                metric: &s.metric.key,
                better: s.metric.better,
                unit: &s.metric.unit,
                points,
                changes,
            }
        })
        .collect();
    let doc = Doc {
        runs,
        skipped: h
            .skipped
            .iter()
            .map(|s| json!({"dir": s.dir.display().to_string(), "reason": s.reason}))
            .collect(),
        options: json!({
            "p_value": h.detect.p_value,
            "min_change": h.detect.min_change,
            "window": h.detect.window,
            "confidence": h.confidence,
        }),
        series,
        failing: failing.len(),
        warnings: &h.warnings,
    };
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
