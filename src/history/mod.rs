//! History across runs (`benchbox history`): per cell and metric, the series of run medians
//! ordered by source revision ([`runs`]), the change points in it ([`changepoint`]), each with
//! the step's size and its interval over the invocations on both sides, and the gate of
//! `--check` against the acknowledged changes ([`accepted`]).
//!
//! Memory stays flat in the number of runs: each run's results.json is read once for its
//! summaries, and runs.csv only of the runs around a change point, for its interval.

pub mod accepted;
pub mod changepoint;
pub mod runs;

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDate, TimeZone, Utc};

use crate::metrics::{self, Metric};
use crate::spec::Better;
use crate::stats::{self, Interval, StatsOptions};

pub use accepted::Accepted;
pub use runs::{Run, Skipped};

/// What `benchbox history` was asked.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Metrics as the user names them (`wall`, `cpu`, `memory`, a custom name); empty: wall
    /// time, CPU time, peak memory and every custom metric the runs have.
    pub metrics: Vec<String>,
    pub detect: changepoint::Options,
    /// The first and last run to look at: a revision (id prefix, `git describe`), a run id,
    /// or a date (YYYY-MM-DD, of the commit, else of the run).
    pub since: Option<String>,
    pub until: Option<String>,
    /// Confidence, resamples and seed of the steps' intervals.
    pub stats: StatsOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Runs(#[from] runs::RunsError),
    #[error("no complete run to make a history of{}\n  hint: history reads runs whose status is complete; finish one with `benchbox run MATRIX --resume RUN` or `benchbox report RUN`", skipped_note(*.skipped))]
    NoRuns { skipped: usize },
    #[error(
        "--{flag} `{given}` names no run\n  hint: give a revision id prefix, a `git describe` name, a run id or a date YYYY-MM-DD"
    )]
    NoSuchRevision { flag: &'static str, given: String },
    #[error(
        "--since `{since}` comes after --until `{until}`: no run lies between them\n  hint: swap them"
    )]
    EmptyRange { since: String, until: String },
    #[error("unknown metric `{given}`\n  hint: these runs have {valid}")]
    UnknownMetric { given: String, valid: String },
}

fn skipped_note(n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} run(s) skipped)")
    }
}

/// One point of a series: one run's median of one cell and metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Index into [`History::runs`].
    pub run: usize,
    pub median: f64,
    pub ci: Option<Interval>,
    /// Invocations the median is of.
    pub n: usize,
}

/// The step at a change point, measured on the invocations of the runs on each side.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// median(after) / median(before) - 1, over the pooled invocations.
    pub relative: f64,
    /// Bootstrap interval of `relative` (seeded; the confidence of [`History::confidence`]).
    pub ci: Option<Interval>,
    /// Runs and invocations on each side.
    pub runs_before: usize,
    pub runs_after: usize,
    pub n_before: usize,
    pub n_after: usize,
}

/// One change point of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Index into the series' points of the first point after the change.
    pub point: usize,
    /// The run where it appears and the run before it (indices into [`History::runs`]).
    pub run: usize,
    pub previous_run: usize,
    /// Worse by the metric's direction.
    pub regression: bool,
    /// What the detector found (on the run medians).
    pub detected: changepoint::ChangePoint,
    /// `None` when the runs' invocations could not be read.
    pub step: Option<Step>,
    /// The reason of the entry of the accepted file that acknowledges it.
    pub accepted: Option<String>,
}

/// One cell and metric across the runs.
#[derive(Debug, Clone)]
pub struct Series {
    pub cell_id: String,
    /// As the newest run that has the cell labels it.
    pub label: String,
    pub metric: Metric,
    pub points: Vec<Point>,
    pub changes: Vec<Change>,
}

impl Series {
    /// Whether a regression at `change` still holds at the series' end: the level of the last
    /// segment is still worse than the level before it by at least `min_change` (a later
    /// change back to where it was clears it).
    fn still_regressed(&self, change: &Change, min_change: f64) -> bool {
        let last = self.changes.last().unwrap_or(change);
        let level = last.detected.mean_after / change.detected.mean_before - 1.0;
        match self.metric.better {
            Better::Lower => level >= min_change,
            Better::Higher => level <= -min_change,
        }
    }
}

/// The history of a set of runs.
#[derive(Debug, Clone)]
pub struct History {
    /// The complete runs within --since/--until, in history order.
    pub runs: Vec<Run>,
    /// Run directories left out, and why.
    pub skipped: Vec<Skipped>,
    /// Per cell (by label) and metric.
    pub series: Vec<Series>,
    pub detect: changepoint::Options,
    pub confidence: f64,
    pub warnings: Vec<String>,
}

/// A regression `--check` fails on: series and change indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failing {
    pub series: usize,
    pub change: usize,
}

impl History {
    /// Marks each change an entry of `accepted` covers.
    pub fn acknowledge(&mut self, accepted: &[Accepted]) {
        for s in &mut self.series {
            for c in &mut s.changes {
                let run = &self.runs[c.run];
                let (id, describe) = match &run.revision {
                    Some(r) => (r.id.as_str(), r.describe.as_deref()),
                    None => (run.run_id.as_str(), None),
                };
                c.accepted = accepted
                    .iter()
                    .find(|a| a.covers(id, describe, &s.metric.key, &s.cell_id, &s.label))
                    .map(|a| a.reason.clone());
            }
        }
    }

    /// What `--check` fails on: in every series the newest run is part of, the regressions
    /// not acknowledged that still hold at its end.
    pub fn failing(&self) -> Vec<Failing> {
        let Some(newest) = self.runs.len().checked_sub(1) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (si, s) in self.series.iter().enumerate() {
            if s.points.last().is_none_or(|p| p.run != newest) {
                continue;
            }
            for (ci, c) in s.changes.iter().enumerate() {
                if c.regression
                    && c.accepted.is_none()
                    && s.still_regressed(c, self.detect.min_change)
                {
                    out.push(Failing {
                        series: si,
                        change: ci,
                    });
                }
            }
        }
        out
    }

    /// Change points in all.
    pub fn change_count(&self) -> usize {
        self.series.iter().map(|s| s.changes.len()).sum()
    }
}

/// The history of the runs under `roots`.
pub fn build(roots: &[std::path::PathBuf], opts: &Options) -> Result<History, HistoryError> {
    let (all, skipped) = runs::read(roots)?;
    if all.is_empty() {
        return Err(HistoryError::NoRuns {
            skipped: skipped.len(),
        });
    }
    let range = select(&all, opts.since.as_deref(), opts.until.as_deref())?;
    let runs: Vec<Run> = all[range].to_vec();
    let keys = resolve_metrics(&runs, &opts.metrics)?;
    let mut series = series_of(&runs, &keys);
    let mut warnings = Vec::new();
    for s in &mut series {
        detect(s, &runs, &opts.detect);
    }
    steps(&mut series, &runs, &opts.detect, &opts.stats, &mut warnings);
    warnings.extend(noise_warnings(&series, &runs));
    Ok(History {
        runs,
        skipped,
        series,
        detect: opts.detect.clone(),
        confidence: opts.stats.confidence,
        warnings,
    })
}

/// The range of `runs` (in history order) from `since` to `until`, both included.
pub fn select(
    runs: &[Run],
    since: Option<&str>,
    until: Option<&str>,
) -> Result<std::ops::Range<usize>, HistoryError> {
    let start = match since {
        Some(s) => bound(runs, s, "since")?,
        None => 0,
    };
    let end = match until {
        Some(u) => bound(runs, u, "until")? + 1,
        None => runs.len(),
    };
    if start >= end {
        return Err(HistoryError::EmptyRange {
            since: since.unwrap_or_default().into(),
            until: until.unwrap_or_default().into(),
        });
    }
    Ok(start..end)
}

/// The first run `since` names, or the last one `until` names.
fn bound(runs: &[Run], given: &str, flag: &'static str) -> Result<usize, HistoryError> {
    let none = || HistoryError::NoSuchRevision {
        flag,
        given: given.to_string(),
    };
    if let Ok(day) = NaiveDate::parse_from_str(given, "%Y-%m-%d") {
        let start = Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default());
        let after_day = start + chrono::Duration::days(1);
        let at = |r: &Run| r.date().map(|d| d.with_timezone(&Utc));
        return if flag == "since" {
            runs.iter()
                .position(|r| at(r).is_some_and(|d| d >= start))
                .ok_or_else(none)
        } else {
            runs.iter()
                .rposition(|r| at(r).is_some_and(|d| d < after_day))
                .ok_or_else(none)
        };
    }
    let names = |r: &Run| {
        r.run_id == given
            || r.revision.as_ref().is_some_and(|rev| {
                rev.id.starts_with(given) || rev.describe.as_deref() == Some(given)
            })
    };
    if flag == "since" {
        runs.iter().position(names).ok_or_else(none)
    } else {
        runs.iter().rposition(names).ok_or_else(none)
    }
}

/// The canonical metric keys asked for; every headline metric the runs have when none is.
fn resolve_metrics(runs: &[Run], given: &[String]) -> Result<Vec<String>, HistoryError> {
    let mut have: Vec<String> = Vec::new();
    for key in runs
        .iter()
        .flat_map(|r| r.cells.iter().flat_map(|c| c.medians.keys()))
    {
        if !have.contains(key) {
            have.push(key.clone());
        }
    }
    // Built-in ones in the catalogue's order, then custom ones by name.
    have.sort_by_key(|k| {
        let builtin = metrics::builtin_names().position(|(b, _)| b == k);
        (builtin.unwrap_or(usize::MAX), k.clone())
    });
    if given.is_empty() {
        return Ok(have
            .into_iter()
            .filter(|k| metrics::is_headline(k))
            .collect());
    }
    let mut out = Vec::new();
    for g in given {
        let key = metrics::canonical(g);
        let key = if have.contains(&key) {
            key
        } else if have.contains(g) {
            g.clone()
        } else {
            return Err(HistoryError::UnknownMetric {
                given: g.clone(),
                valid: have.join(", "),
            });
        };
        if !out.contains(&key) {
            out.push(key);
        }
    }
    Ok(out)
}

/// The metric `key` as the newest run declaring it describes it.
fn metric_of(runs: &[Run], key: &str) -> Metric {
    Metric::builtin(key).unwrap_or_else(|| {
        let (unit, better) = runs
            .iter()
            .rev()
            .find_map(|r| r.declared.get(key).cloned())
            .unwrap_or((String::new(), Better::Lower));
        Metric::custom(key, &unit, better)
    })
}

/// Per cell and metric, the points of every run that has a median of it, in run order; series
/// sorted by the cell's label, then by metric in the order of `keys`.
pub fn series_of(runs: &[Run], keys: &[String]) -> Vec<Series> {
    let mut by: HashMap<(&str, usize), Vec<Point>> = HashMap::new();
    let mut labels: HashMap<&str, &str> = HashMap::new();
    for (ri, run) in runs.iter().enumerate() {
        for cell in &run.cells {
            labels.insert(&cell.id, &cell.label);
            for (ki, key) in keys.iter().enumerate() {
                if let Some(&(median, ci, n)) = cell.medians.get(key) {
                    by.entry((&cell.id, ki)).or_default().push(Point {
                        run: ri,
                        median,
                        ci,
                        n,
                    });
                }
            }
        }
    }
    let metrics: Vec<Metric> = keys.iter().map(|k| metric_of(runs, k)).collect();
    let mut out: Vec<Series> = by
        .into_iter()
        .map(|((id, ki), points)| Series {
            cell_id: id.to_string(),
            label: labels[id].to_string(),
            metric: metrics[ki].clone(),
            points,
            changes: Vec::new(),
        })
        .collect();
    let rank: HashMap<&str, usize> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    out.sort_by(|a, b| {
        (&a.label, &a.cell_id, rank[a.metric.key.as_str()]).cmp(&(
            &b.label,
            &b.cell_id,
            rank[b.metric.key.as_str()],
        ))
    });
    out
}

/// The change points of one series, with their runs and directions (steps come later).
fn detect(s: &mut Series, _runs: &[Run], opts: &changepoint::Options) {
    let values: Vec<f64> = s.points.iter().map(|p| p.median).collect();
    s.changes = changepoint::detect(&values, opts)
        .into_iter()
        .filter(|cp| cp.index > 0 && cp.index < s.points.len())
        .map(|cp| {
            let worse = match s.metric.better {
                Better::Lower => cp.relative > 0.0,
                Better::Higher => cp.relative < 0.0,
            };
            Change {
                point: cp.index,
                run: s.points[cp.index].run,
                previous_run: s.points[cp.index - 1].run,
                regression: worse,
                detected: cp,
                step: None,
                accepted: None,
            }
        })
        .collect();
}

/// The points on each side of change `ci` of `s` whose invocations measure its step: back to
/// the previous change (or the start) and on to the next (or the end), at most `window` each.
fn sides(s: &Series, ci: usize, window: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let at = s.changes[ci].point;
    let previous = if ci > 0 { s.changes[ci - 1].point } else { 0 };
    let next = s.changes.get(ci + 1).map_or(s.points.len(), |c| c.point);
    let window = window.max(1);
    (
        previous.max(at.saturating_sub(window))..at,
        at..next.min(at + window),
    )
}

/// One warning per change whose runs on either side (the last before it, the first after)
/// saw different host noise: a confound beside the change, not a reason to drop it.
fn noise_warnings(series: &[Series], runs: &[Run]) -> Vec<String> {
    let mut said = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for s in series {
        for c in &s.changes {
            let (before, after) = (&runs[c.previous_run], &runs[c.run]);
            let d = crate::noise::differences(&before.noise, &after.noise);
            if d.is_empty() || !said.insert((c.previous_run, c.run)) {
                continue;
            }
            out.push(format!(
                "the change at {} (after {}) comes with different host noise ({} vs {}: {}): it may come from the noise, not the code\n  hint: run {} again on a quiet host",
                after.name(),
                before.name(),
                before.name(),
                after.name(),
                d.join("; "),
                after.name()
            ));
        }
    }
    out
}

/// A (cell id, metric key) pair.
type CellMetric = (String, String);

/// Each change's step over the invocations (runs.csv rows) of the runs on its two sides: each
/// run's runs.csv is read once, keeping only the values some step needs.
fn steps(
    series: &mut [Series],
    runs: &[Run],
    opts: &changepoint::Options,
    stats: &StatsOptions,
    warnings: &mut Vec<String>,
) {
    // run -> (cell, metric) -> values.
    let mut needs: BTreeMap<usize, HashMap<(String, String), Vec<f64>>> = BTreeMap::new();
    for s in series.iter() {
        for ci in 0..s.changes.len() {
            let (before, after) = sides(s, ci, opts.window);
            for p in before.chain(after) {
                needs
                    .entry(s.points[p].run)
                    .or_default()
                    .insert((s.cell_id.clone(), s.metric.key.clone()), Vec::new());
            }
        }
    }
    let mut unreadable = Vec::new();
    for (&ri, wanted) in needs.iter_mut() {
        let read = counted_values(&runs[ri].dir.join("runs.csv"), wanted);
        if let Err(e) = read {
            warnings.push(format!(
                "the steps' intervals leave out run `{}`: {e}",
                runs[ri].dir.display()
            ));
            unreadable.push(ri);
        }
    }
    for s in series.iter_mut() {
        let key = (s.cell_id.clone(), s.metric.key.clone());
        for ci in 0..s.changes.len() {
            let (before, after) = sides(s, ci, opts.window);
            let pool = |range: std::ops::Range<usize>| {
                let mut values = Vec::new();
                let mut count = 0;
                for p in range {
                    let ri = s.points[p].run;
                    if unreadable.contains(&ri) {
                        continue;
                    }
                    count += 1;
                    values.extend_from_slice(&needs[&ri][&key]);
                }
                (values, count)
            };
            let ((b, runs_before), (a, runs_after)) = (pool(before), pool(after));
            s.changes[ci].step = stats::ratio_of_medians(&b, &a, stats).map(|r| Step {
                relative: r.ratio - 1.0,
                ci: r.ci.map(|i| Interval {
                    lower: i.lower - 1.0,
                    upper: i.upper - 1.0,
                }),
                runs_before,
                runs_after,
                n_before: b.len(),
                n_after: a.len(),
            });
        }
    }
}

/// The values of each wanted (cell, metric) in the runs.csv at `path`, in file order, from the
/// rows that count toward the statistics: a disturbed row that a later `rerun` row replaces
/// (`[run] rerun-disturbed`) is taken out again once the replacement is read.
fn counted_values(
    path: &std::path::Path,
    wanted: &mut HashMap<CellMetric, Vec<f64>>,
) -> Result<(), crate::results::ResultsError> {
    // Where a disturbed row's values went (its line -> (cell, metric), position).
    let mut disturbed_at: HashMap<u64, Vec<(CellMetric, usize)>> = HashMap::new();
    let read = crate::results::read_csv_each(path, |row| {
        if let Some(earlier) = row.replaces {
            for (k, at) in disturbed_at.remove(&earlier).unwrap_or_default() {
                // NaN marks the place: values are finite, and NaNs are dropped below.
                wanted.get_mut(&k).expect("a wanted key")[at] = f64::NAN;
            }
        }
        let sample = row.sample;
        if !sample.counts_toward_statistics() {
            return Ok(());
        }
        let disturbed = sample.flags.contains(&crate::status::Flag::Disturbed);
        for ((cell, key), values) in wanted.iter_mut() {
            if *cell == *sample.cell_id
                && let Some(v) = metrics::value(&sample, key).filter(|v| v.is_finite())
            {
                if disturbed {
                    disturbed_at
                        .entry(row.line)
                        .or_default()
                        .push(((cell.clone(), key.clone()), values.len()));
                }
                values.push(v);
            }
        }
        Ok(())
    });
    for values in wanted.values_mut() {
        values.retain(|v| !v.is_nan());
    }
    read.map(|_| ())
}

#[cfg(test)]
mod rerun_tests {
    use super::*;
    use crate::status::Flag;

    /// A step's values leave out the rows a rerun replaced, and keep a disturbed row nothing
    /// replaced.
    #[test]
    fn replaced_rows_are_left_out_of_the_values() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("runs.csv");
        let mut w =
            crate::results::CsvWriter::open(&path, &["jdk".into()], &[], &["ops".into()]).unwrap();
        let rows: [(u32, f64, &[Flag]); 6] = [
            (1, 1.0, &[]),
            (2, 9.0, &[Flag::Disturbed]),
            (2, 8.0, &[Flag::Disturbed, Flag::Rerun]),
            (2, 2.0, &[Flag::Rerun]),
            (3, 7.0, &[Flag::Disturbed]),
            (4, 4.0, &[]),
        ];
        for (i, wall, flags) in rows {
            let mut s = crate::results::tests::sample(i);
            s.measured.wall_s = wall;
            s.flags = flags.to_vec();
            w.append(&s, "jdk=17", &["17".into()]).unwrap();
        }
        let key = ("abc123".to_string(), "wall_s".to_string());
        let mut wanted = HashMap::from([(key.clone(), Vec::new())]);
        counted_values(&path, &mut wanted).unwrap();
        assert_eq!(wanted[&key], [1.0, 2.0, 7.0, 4.0]);
    }
}
