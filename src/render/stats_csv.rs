//! `results.csv`: the statistics, one row per cell and metric, for spreadsheets, pandas and R
//! (`pd.read_csv("results.csv")` with no arguments). Where `runs.csv` holds one row per
//! invocation, this holds what the run concluded from them.
//!
//! Columns: `cell` (id), `label`, one column per axis (the value's text), `metric`, `unit`,
//! `better`, then the [`Summary`](crate::stats::Summary) fields in the metric's raw unit
//! (seconds, bytes, or the custom unit): `n, mean, median, stddev, mad, mad_scaled, min, max,
//! p5, p95, cv`, the 95% (the run's confidence level) bootstrap intervals of the median and the
//! mean and the Student t interval of the mean (empty when too few samples), the number of
//! Tukey outliers, and the warning kinds joined by `;`.
//!
//! Numbers are written with Rust's shortest round-trip formatting: exact and deterministic.

use super::{all_metrics, axes, axis_text};
use crate::results::RunResults;
use crate::stats::Interval;

const STAT_COLUMNS: &[&str] = &[
    "metric",
    "unit",
    "better",
    "n",
    "mean",
    "median",
    "stddev",
    "mad",
    "mad_scaled",
    "min",
    "max",
    "p5",
    "p95",
    "cv",
    "median_ci_lower",
    "median_ci_upper",
    "mean_ci_lower",
    "mean_ci_upper",
    "t_ci_lower",
    "t_ci_upper",
    "outliers",
    "warnings",
];

fn bounds(i: Option<Interval>) -> [String; 2] {
    match i {
        Some(i) => [i.lower.to_string(), i.upper.to_string()],
        None => [String::new(), String::new()],
    }
}

/// The statistics CSV (see the module doc for the columns).
pub fn stats_csv(results: &RunResults) -> String {
    let axes = axes(results);
    let metrics = all_metrics(results);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["cell".to_string(), "label".to_string()];
    header.extend(axes.iter().map(|a| a.name.clone()));
    header.extend(STAT_COLUMNS.iter().map(|s| s.to_string()));
    // Writing to a Vec cannot fail; a failure here would be a bug in csv.
    w.write_record(&header).expect("csv to memory");
    for metric in &metrics {
        for cell in &results.cells {
            let Some(s) = cell.summary.get(&metric.key) else {
                continue;
            };
            let mut row = vec![cell.id.clone(), cell.label.clone()];
            row.extend(axes.iter().map(|a| axis_text(cell, &a.name)));
            row.extend([
                metric.key.clone(),
                metric.unit.clone(),
                metric.better.to_string(),
                s.n.to_string(),
                s.mean.to_string(),
                s.median.to_string(),
                s.stddev.to_string(),
                s.mad.to_string(),
                s.mad_scaled.to_string(),
                s.min.to_string(),
                s.max.to_string(),
                s.p5.to_string(),
                s.p95.to_string(),
                s.cv.to_string(),
            ]);
            row.extend(bounds(s.median_ci));
            row.extend(bounds(s.mean_ci));
            row.extend(bounds(s.t_interval));
            row.push(s.outlier_counts().all.to_string());
            let kinds: Vec<String> = s
                .warnings
                .iter()
                .filter_map(|w| {
                    serde_json::to_value(w)
                        .ok()?
                        .get("kind")?
                        .as_str()
                        .map(String::from)
                })
                .collect();
            row.push(kinds.join(";"));
            w.write_record(&row).expect("csv to memory");
        }
    }
    String::from_utf8(w.into_inner().expect("csv to memory")).expect("csv of strings is utf-8")
}
