//! The results of a run on disk (`reports/<name>/<run-id>/`), written as the run goes:
//!
//! - `runs.csv`: tidy, one row per invocation, appended as each one ends (in one write, whole
//!   or not at all), so a crash or a full disk loses at most the invocation in flight. It is
//!   the source of truth and the only store of the samples: `--resume`, `report` and
//!   `compare` read it back, each row's `status` included (see [`crate::status`]), through one
//!   validating loader, a stream of rows ([`read_csv_each`], each row checked with
//!   [`check_row`]): a file that cannot be a record of the run is an error naming the line,
//!   and a torn last row (an interrupted write) is recognised and left out ([`Torn`]).
//! - `results.json`: schema-versioned document with the host, the matrix hash, the plan, the
//!   seed, and per cell the applied limits and summaries; not the samples, which only runs.csv
//!   holds (a version-1 file has them too; they are skipped). Rewritten atomically (temp file
//!   + rename), so a reader never sees half a file.
//! - `logs/<cell>/<phase>-<index>.out|.err`: each invocation's output, when it wrote any (at
//!   most `[run] max-log` of each stream, see [`crate::sandbox::TRUNCATION_MARKER`]).
//!   Output goes to two spool files reused from one invocation to the next, and a spool that
//!   holds something is renamed to its log: an empty log would cost an inode per invocation
//!   (~0.2 ms each on a busy ext4 without a journal, which skips recently freed inodes).
//! - `<name>/latest`: a symlink to the newest run.
//!
//! Here: the [`Sample`] (a row of runs.csv) and the errors; `runs_csv` has runs.csv, `json`
//! results.json (its one reader and one writer, and [`load`]), `files` the rest.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::measurement::{Measurement, Pressure};
use crate::plan::Phase;
use crate::status::{self, Flag, Status};

/// Bumped whenever a field of `results.json` changes meaning or disappears. 2: the cells'
/// `samples` are gone (runs.csv is their one store); a version-1 file still reads, its samples
/// skipped.
pub const SCHEMA_VERSION: u32 = 2;

/// One invocation, as one row of `runs.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "SampleRecord")]
pub struct Sample {
    pub cell_id: std::sync::Arc<str>,
    pub phase: Phase,
    pub index: u32,
    pub started_at: String,
    /// What the invocation measured (runs.csv's columns from `wall_s` to the pressure).
    #[serde(flatten)]
    pub measured: Measurement,
    /// What became of the invocation; only `ok` counts toward the statistics.
    pub status: Status,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Flag>,
    /// Why the status is not `ok` (empty when it is).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    pub metrics: MetricValues,
}

impl Sample {
    /// Whether this invocation enters the statistics (summaries, ratios, `compare`, plots,
    /// every report): a measured one whose status is `ok`, and not replaced by a later `rerun`
    /// row (see [`Flag::Replaced`]).
    pub fn counts_toward_statistics(&self) -> bool {
        self.phase == Phase::Measure && self.status.counts() && !self.is_replaced()
    }

    /// Whether a later `rerun` row of the same (cell, phase, invocation) supersedes this one
    /// (`[run] rerun-disturbed`): it stays in runs.csv, but is as if it had not run.
    pub fn is_replaced(&self) -> bool {
        self.flags.contains(&Flag::Replaced)
    }

    /// Mark the last sample of `samples` for (`phase`, `index`) not yet replaced as replaced
    /// (a `rerun` row was read for it); the rows of a cell are searched from the newest, where
    /// the superseded one almost always is.
    pub fn mark_replaced(samples: &mut [Sample], phase: Phase, index: u32) {
        if let Some(s) = samples
            .iter_mut()
            .rev()
            .find(|s| s.phase == phase && s.index == index && !s.is_replaced())
        {
            s.flags.push(Flag::Replaced);
        }
    }

    pub fn cpu_s(&self) -> f64 {
        self.measured.cpu_s()
    }
}

/// A sample as `results.json` holds it: written by a benchbox before the `status` column, it
/// has none, and gets the one its exit code, signal, OOM kill and timeout imply.
#[derive(Deserialize)]
struct SampleRecord {
    cell_id: String,
    phase: Phase,
    index: u32,
    started_at: String,
    wall_s: f64,
    user_s: f64,
    system_s: f64,
    peak_memory_bytes: Option<u64>,
    io_read_bytes: Option<u64>,
    io_write_bytes: Option<u64>,
    exit_code: Option<i32>,
    signal: Option<i32>,
    oom_killed: bool,
    timed_out: bool,
    throttled_s: f64,
    #[serde(default)]
    rusage: crate::measurement::Rusage,
    /// Absent (all empty) in results.json files written before benchbox recorded it.
    #[serde(flatten, default)]
    pressure: Pressure,
    /// Absent (all empty) in results.json files written before benchbox measured it.
    #[serde(flatten, default)]
    disturbance: crate::disturbance::Disturbance,
    /// Absent (all empty) in results.json files written before benchbox counted them.
    #[serde(flatten, default)]
    counters: crate::measurement::Counters,
    #[serde(default)]
    status: Option<Status>,
    #[serde(default)]
    flags: Vec<Flag>,
    #[serde(default)]
    reason: String,
    metrics: BTreeMap<String, f64>,
}

impl From<SampleRecord> for Sample {
    fn from(r: SampleRecord) -> Sample {
        let (status, reason) = match r.status {
            Some(status) => (status, r.reason),
            None => status::from_end(r.exit_code, r.signal, r.oom_killed, r.timed_out),
        };
        Sample {
            cell_id: r.cell_id.into(),
            phase: r.phase,
            index: r.index,
            started_at: r.started_at,
            measured: Measurement {
                wall_s: r.wall_s,
                user_s: r.user_s,
                system_s: r.system_s,
                peak_memory_bytes: r.peak_memory_bytes,
                io_read_bytes: r.io_read_bytes,
                io_write_bytes: r.io_write_bytes,
                exit_code: r.exit_code,
                signal: r.signal,
                oom_killed: r.oom_killed,
                timed_out: r.timed_out,
                throttled_s: r.throttled_s,
                rusage: r.rusage,
                pressure: r.pressure,
                disturbance: r.disturbance,
                counters: r.counters,
            },
            status,
            flags: r.flags,
            reason,
            metrics: r.metrics.into(),
        }
    }
}

/// The custom metrics of one invocation, by name, in the order of their names: a sorted list
/// rather than a map, its names shared by every sample read from one runs.csv
/// ([`MetricValues::insert_shared`]). A `BTreeMap<String, f64>` cost a node and a copy of each
/// name per invocation, about 400 bytes for one metric: most of a sample's memory in a large
/// run. Reads like that map (`get`, `keys`, `values`, `metrics["name"]`), and is one in JSON.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricValues(Vec<(Arc<String>, f64)>);

impl MetricValues {
    fn find(&self, name: &str) -> std::result::Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&f64> {
        self.find(name).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// Set `name` to `value`; returns the value it replaces.
    pub fn insert(&mut self, name: String, value: f64) -> Option<f64> {
        self.insert_shared(Arc::new(name), value)
    }

    /// [`MetricValues::insert`] with a name shared with other samples (no copy of it).
    pub fn insert_shared(&mut self, name: Arc<String>, value: f64) -> Option<f64> {
        match self.find(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (name, value));
                None
            }
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| &**k)
    }

    pub fn values(&self) -> impl Iterator<Item = &f64> {
        self.0.iter().map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &f64)> {
        self.0.iter().map(|(k, v)| (&**k, v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::ops::Index<&str> for MetricValues {
    type Output = f64;
    fn index(&self, name: &str) -> &f64 {
        self.get(name)
            .unwrap_or_else(|| panic!("no metric `{name}` in this sample"))
    }
}

impl FromIterator<(String, f64)> for MetricValues {
    fn from_iter<I: IntoIterator<Item = (String, f64)>>(values: I) -> MetricValues {
        let mut m = MetricValues::default();
        for (k, v) in values {
            m.insert(k, v);
        }
        m
    }
}

impl<const N: usize> From<[(String, f64); N]> for MetricValues {
    fn from(values: [(String, f64); N]) -> MetricValues {
        values.into_iter().collect()
    }
}

impl From<BTreeMap<String, f64>> for MetricValues {
    fn from(values: BTreeMap<String, f64>) -> MetricValues {
        values.into_iter().collect()
    }
}

impl Serialize for MetricValues {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for MetricValues {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        BTreeMap::<String, f64>::deserialize(d).map(MetricValues::from)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`{path}` is not a benchbox runs.csv: {message}")]
    Csv { path: PathBuf, message: String },
    #[error(
        "`{}` line {line}: {message}\n  hint: runs.csv is the record of the run: restore it from a copy; a row deleted by hand counts as missing, and `--resume` runs it again",
        path.display()
    )]
    Invalid {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error(
        "`{}` is not a benchbox run directory: {reason}\n  hint: pass a run directory such as reports/NAME/latest (it holds results.json and runs.csv)",
        path.display()
    )]
    NotARun { path: PathBuf, reason: String },
    #[error(
        "`{}` is missing: the run's raw data is gone, so nothing can be reported or compared\n  hint: restore runs.csv from a copy of the run directory",
        path.display()
    )]
    NoRunsCsv { path: PathBuf },
    /// results.json could not be written (see [`RunResults::write`]).
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "`{path}` was written by an older benchbox, without the `status`, `flags` and `reason` columns; appending to it would mix two layouts in one file\n  hint: start a new run (`benchbox report` still reads this one)"
    )]
    OldLayout { path: PathBuf },
}

type Result<T> = std::result::Result<T, ResultsError>;

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ResultsError + 'a {
    move |source| ResultsError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

mod files;
mod json;
mod runs_csv;
mod seen;

pub use files::*;
pub use json::*;
pub use runs_csv::*;
pub use seen::Seen;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::status::Flag;

    /// A measured (or, for 0, warm-up) invocation of cell `abc123` with metric `ops`.
    pub fn sample(i: u32) -> Sample {
        Sample {
            cell_id: "abc123".into(),
            phase: if i == 0 {
                Phase::Warmup
            } else {
                Phase::Measure
            },
            index: i,
            started_at: "2026-01-01T00:00:00Z".into(),
            measured: crate::measurement::Measurement {
                wall_s: 1.25 + i as f64,
                user_s: 1.0,
                system_s: 0.125,
                peak_memory_bytes: Some(4096),
                io_read_bytes: None,
                io_write_bytes: Some(0),
                exit_code: Some(0),
                signal: None,
                oom_killed: false,
                timed_out: false,
                throttled_s: 0.0,
                rusage: crate::measurement::Rusage {
                    user_s: 1.0,
                    system_s: 0.125,
                    max_rss_bytes: 8192,
                    minor_faults: 10,
                    major_faults: 0,
                    voluntary_switches: 3,
                    involuntary_switches: 1,
                },
                pressure: Default::default(),
                disturbance: Default::default(),
                counters: Default::default(),
            },
            status: crate::status::Status::Ok,
            flags: Vec::new(),
            reason: String::new(),
            metrics: [("ops".to_string(), 12.5)].into(),
        }
    }

    #[test]
    fn results_json_samples_without_a_status_get_one() {
        let mut json = serde_json::to_value(sample(1)).unwrap();
        assert_eq!(json["status"], "ok");
        assert!(json.get("flags").is_none() && json.get("reason").is_none());
        let object = json.as_object_mut().unwrap();
        object.remove("status");
        object.insert("exit_code".into(), serde_json::json!(null));
        object.insert("signal".into(), serde_json::json!(9));
        object.insert("timed_out".into(), serde_json::json!(true));
        let s: Sample = serde_json::from_value(json).unwrap();
        assert_eq!(
            (s.status, s.reason.as_str()),
            (Status::Timeout, "timed out")
        );
        let mut suspect = sample(1);
        suspect.status = Status::Suspect;
        suspect.reason = "why".into();
        suspect.flags = vec![Flag::LogTruncated];
        let json = serde_json::to_string(&suspect).unwrap();
        assert!(
            json.contains(r#""status":"suspect","flags":["log-truncated"],"reason":"why""#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Sample>(&json).unwrap(), suspect);
    }
}
