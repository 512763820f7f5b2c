//! The runs a history is made of: every run directory under the results roots given
//! (`reports/NAME`), each read from its results.json alone (metadata and summaries: never
//! runs.csv, never the plan beyond its metric declarations), one at a time, then ordered by
//! revision and skipped when not complete.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset};
use serde::Deserialize;

use crate::revision::Revision;
use crate::spec::Better;
use crate::stats::Interval;
use crate::status::RunStatus;

/// One run of the history, as much of it as the history needs.
#[derive(Debug, Clone)]
pub struct Run {
    pub dir: PathBuf,
    pub run_id: String,
    pub matrix_name: String,
    pub matrix_path: String,
    pub revision: Option<Revision>,
    pub finished_at: String,
    pub cells: Vec<Cell>,
    /// Custom metrics the plan declares: name -> (unit, better).
    pub declared: BTreeMap<String, (String, Better)>,
    /// When it was made, for the order: the commit's time, else the run's end.
    pub(crate) order_time: Option<DateTime<FixedOffset>>,
    pub(crate) finished: Option<DateTime<FixedOffset>>,
    /// The host noise the run saw, as results.json tells it (load, disturbed counts).
    pub noise: crate::noise::RunNoise,
}

impl Run {
    /// The revision's short name, or the run id when the run has no revision.
    pub fn name(&self) -> &str {
        self.revision.as_ref().map_or(&self.run_id, |r| r.short())
    }

    /// When the measured code was made: the commit time, else the run's end (YYYY-MM-DD...).
    pub fn date(&self) -> Option<DateTime<FixedOffset>> {
        self.order_time
    }
}

/// One cell of a run: its id, label and, per metric, the median and its interval.
#[derive(Debug, Clone)]
pub struct Cell {
    pub id: String,
    pub label: String,
    pub medians: BTreeMap<String, (f64, Option<Interval>, usize)>,
}

/// A run directory left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub dir: PathBuf,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RunsError {
    #[error(
        "`{}` is not a results directory: {reason}\n  hint: give reports/NAME (the directory holding a matrix's run directories) or a run directory",
        path.display()
    )]
    NotARoot { path: PathBuf, reason: String },
}

// What results.json holds that the history reads; serde skips the rest unparsed into values.
#[derive(Deserialize)]
struct Head {
    run_id: String,
    status: RunStatus,
    finished_at: Option<String>,
    matrix_name: String,
    #[serde(default)]
    matrix_path: String,
    #[serde(default)]
    revision: Option<Revision>,
    #[serde(default)]
    plan: HeadPlan,
    #[serde(default)]
    cells: Vec<HeadCell>,
    #[serde(default)]
    load_average: Option<crate::disturbance::LoadAverage>,
}

#[derive(Deserialize, Default)]
struct HeadPlan {
    #[serde(default)]
    cells: Vec<HeadPlanCell>,
}

#[derive(Deserialize)]
struct HeadPlanCell {
    #[serde(default)]
    metrics: Vec<HeadMetric>,
}

#[derive(Deserialize)]
struct HeadMetric {
    name: String,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    better: Better,
}

#[derive(Deserialize)]
struct HeadCell {
    id: String,
    label: String,
    #[serde(default)]
    summary: BTreeMap<String, HeadSummary>,
    #[serde(default)]
    disturbed: usize,
}

#[derive(Deserialize)]
struct HeadSummary {
    n: usize,
    median: Option<f64>,
    #[serde(default)]
    median_ci: Option<Interval>,
}

/// The run directories under `roots` (a root may also be a run directory itself), each read,
/// complete ones kept in history order ([`order`]), the others listed as skipped. The same run
/// reached twice (a root given twice, `latest`) counts once.
pub fn read(roots: &[PathBuf]) -> Result<(Vec<Run>, Vec<Skipped>), RunsError> {
    let mut dirs = Vec::new();
    for root in roots {
        if root.join("results.json").is_file() {
            dirs.push(root.clone());
            continue;
        }
        let entries = std::fs::read_dir(root).map_err(|e| RunsError::NotARoot {
            path: root.clone(),
            reason: e.to_string(),
        })?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            // `latest` is a symlink to a run listed anyway.
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .filter(|p| p.join("results.json").is_file())
            .collect();
        if found.is_empty() {
            return Err(RunsError::NotARoot {
                path: root.clone(),
                reason: "no run directory (one with a results.json) in it".into(),
            });
        }
        found.sort();
        dirs.extend(found);
    }
    let mut seen = HashSet::new();
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    for dir in dirs {
        let real = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
        if !seen.insert(real) {
            continue;
        }
        match read_one(&dir) {
            Ok(run) => runs.push(run),
            Err(reason) => skipped.push(Skipped { dir, reason }),
        }
    }
    order(&mut runs);
    Ok((runs, skipped))
}

/// One run directory, or why it does not count.
fn read_one(dir: &Path) -> Result<Run, String> {
    let path = dir.join("results.json");
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read results.json: {e}"))?;
    let head: Head =
        serde_json::from_slice(&bytes).map_err(|e| format!("results.json does not parse: {e}"))?;
    if head.status != RunStatus::Complete {
        return Err(format!(
            "its status is {}, not complete",
            head.status.as_str()
        ));
    }
    let parse = |t: &str| DateTime::parse_from_rfc3339(t).ok();
    let finished = head.finished_at.as_deref().and_then(parse);
    let commit = head
        .revision
        .as_ref()
        .and_then(|r| r.commit_time.as_deref())
        .and_then(parse);
    let mut declared = BTreeMap::new();
    for m in head.plan.cells.into_iter().flat_map(|c| c.metrics) {
        declared
            .entry(m.name)
            .or_insert((m.unit.unwrap_or_default(), m.better));
    }
    let noise = crate::noise::RunNoise {
        load: head.load_average.and_then(|l| l.peak()),
        counted: head
            .cells
            .iter()
            .map(|c| c.summary.get("wall_s").map_or(0, |s| s.n))
            .sum(),
        disturbed: head.cells.iter().map(|c| c.disturbed).sum(),
        ..Default::default()
    };
    let cells = head
        .cells
        .into_iter()
        .map(|c| Cell {
            id: c.id,
            label: c.label,
            medians: c
                .summary
                .into_iter()
                .filter_map(|(k, s)| {
                    let m = s.median.filter(|m| m.is_finite())?;
                    Some((k, (m, s.median_ci, s.n)))
                })
                .collect(),
        })
        .collect();
    Ok(Run {
        dir: dir.to_path_buf(),
        run_id: head.run_id,
        matrix_name: head.matrix_name,
        matrix_path: head.matrix_path,
        revision: head.revision,
        finished_at: head.finished_at.unwrap_or_default(),
        cells,
        declared,
        order_time: commit.or(finished),
        finished,
        noise,
    })
}

/// History order: by the commit time of the revision measured (a run without one stands at
/// its own end time: its code existed then), then by the run's end time, then by run id.
pub fn order(runs: &mut [Run]) {
    runs.sort_by(|a, b| {
        (a.order_time, a.finished, &a.run_id).cmp(&(b.order_time, b.finished, &b.run_id))
    });
}
