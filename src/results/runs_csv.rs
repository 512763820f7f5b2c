//! `runs.csv`: the header, the appending writer ([`CsvWriter`]), the validating reader
//! ([`read_csv`], [`Torn`]) and the check of rows against a run's plan ([`check_plan`]).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{MetricValues, Result, ResultsError, Sample, io_err};
use crate::disturbance::{Disturbance, Scope};
use crate::measurement::{Counters, Measurement, Pressure};
use crate::plan::Phase;
use crate::status::{self, Flag, Status};
use rustc_hash::FxHashMap as RowMap;

/// The fixed columns of `runs.csv`, after the axis columns and before the metric columns. New
/// columns come last, so every other column keeps its place: a runs.csv written before
/// `status` existed ends them at `involuntary_switches` ([`LEGACY_FIXED`] columns), one written
/// before the pressure columns at `reason` ([`BEFORE_PRESSURE_FIXED`]), one written before the
/// disturbance columns at `psi_io_full_us` ([`BEFORE_DISTURBANCE_FIXED`]).
///
/// After them come the perf_event counters' columns a run has (a subset of
/// [`Counters::COLUMNS`], in its order: none when counters were off or not allowed, no hardware
/// ones on a host without a PMU), found by name; then the metrics.
const FIXED: &[&str] = &[
    "phase",
    "invocation",
    "started_at",
    "wall_s",
    "user_s",
    "system_s",
    "peak_memory_bytes",
    "io_read_bytes",
    "io_write_bytes",
    "exit_code",
    "signal",
    "oom_killed",
    "timed_out",
    "throttled_s",
    "rusage_user_s",
    "rusage_system_s",
    "max_rss_bytes",
    "minor_faults",
    "major_faults",
    "voluntary_switches",
    "involuntary_switches",
    "status",
    "flags",
    "reason",
    "psi_cpu_some_us",
    "psi_memory_some_us",
    "psi_memory_full_us",
    "psi_io_some_us",
    "psi_io_full_us",
    "other_cpu_s",
    "steal_s",
    "disturbance_scope",
];

/// How many fixed columns this version writes.
pub const FIXED_COLUMNS: usize = FIXED.len();

/// How many of [`FIXED`] a runs.csv without `status`, `flags` and `reason` has.
const LEGACY_FIXED: usize = BEFORE_PRESSURE_FIXED - 3;
/// How many of [`FIXED`] a runs.csv without the disturbance columns (`other_cpu_s`,
/// `steal_s`, `disturbance_scope`) has.
const BEFORE_DISTURBANCE_FIXED: usize = FIXED.len() - Disturbance::COLUMNS.len();
/// How many of [`FIXED`] a runs.csv without the pressure columns (`psi_*_us`) has.
const BEFORE_PRESSURE_FIXED: usize = BEFORE_DISTURBANCE_FIXED - Pressure::COLUMNS.len();

/// The header of a runs.csv: `cell`, `label`, one column per axis, the fixed columns, the
/// counters' columns of the run (a subset of [`Counters::COLUMNS`]), one per metric.
pub fn csv_header(axes: &[String], counters: &[&str], metrics: &[String]) -> Vec<String> {
    header_with(axes, FIXED, counters, metrics)
}

fn header_with(
    axes: &[String],
    fixed: &[&str],
    counters: &[&str],
    metrics: &[String],
) -> Vec<String> {
    let mut h = vec!["cell".to_string(), "label".to_string()];
    h.extend(axes.iter().cloned());
    h.extend(fixed.iter().map(|s| s.to_string()));
    h.extend(counters.iter().map(|s| s.to_string()));
    h.extend(metrics.iter().cloned());
    h
}

/// The counters' columns of a header whose counters start at `at`: the longest run of
/// [`Counters::COLUMNS`] there, in that order.
fn counter_columns(header: &[String], at: usize) -> Vec<&'static str> {
    let mut found = Vec::new();
    let mut next = Counters::COLUMNS.iter();
    for name in header.iter().skip(at) {
        match next.by_ref().find(|c| **c == name.as_str()) {
            Some(c) => found.push(*c),
            None => break,
        }
    }
    found
}

/// A counter's field as runs.csv writes it: counts whole, task-clock in seconds (ns digits),
/// `counters_scaled` as true/false; empty where not counted.
fn counter_field(c: &Counters, column: &str) -> String {
    match column {
        "task_clock_s" => c
            .task_clock_s
            .map(|s| format!("{s:.9}"))
            .unwrap_or_default(),
        "counters_scaled" => opt(c.counters_scaled),
        other => c
            .value(other)
            .map(|v| format!("{v:.0}"))
            .unwrap_or_default(),
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// Appends rows to `runs.csv`, each with one write as it is written. A row is written whole
/// or not at all: a write that fails part-way (a full disk) is cut off again, so the file only
/// ever ends in a whole row.
pub struct CsvWriter {
    path: PathBuf,
    file: File,
    /// The file's length: where the row being written starts.
    len: u64,
    /// How many of [`FIXED`] the file has: all of them, or [`BEFORE_PRESSURE_FIXED`]
    /// ([`BEFORE_DISTURBANCE_FIXED`]) in a run resumed from a runs.csv written before the
    /// pressure (disturbance) columns: its rows keep its layout.
    fixed: usize,
    /// The counters' columns the file has (its own, when resumed).
    counters: Vec<&'static str>,
    metrics: Vec<String>,
}

impl CsvWriter {
    /// Open for appending; writes the header when the file is new. An existing file must have
    /// this header (a resumed run of the same matrix), or one benchbox wrote before the
    /// pressure or the disturbance columns, which later rows then keep. `counters`: the
    /// counters' columns of a new file; a resumed one keeps its own (recorded on another host,
    /// it may have others).
    pub fn open(
        path: &Path,
        axes: &[String],
        counters: &[&'static str],
        metrics: &[String],
    ) -> Result<CsvWriter> {
        let mut header = csv_header(axes, counters, metrics);
        let exists = path.exists() && fs::metadata(path).map(|m| m.len() > 0).unwrap_or(false);
        let mut fixed = FIXED.len();
        let mut counters = counters.to_vec();
        if exists {
            let mut reader = csv::Reader::from_path(path).map_err(|e| ResultsError::Csv {
                path: path.into(),
                message: e.to_string(),
            })?;
            let found: Vec<String> = reader
                .headers()
                .map_err(|e| ResultsError::Csv {
                    path: path.into(),
                    message: e.to_string(),
                })?
                .iter()
                .map(String::from)
                .collect();
            if found == header_with(axes, &FIXED[..LEGACY_FIXED], &[], metrics) {
                return Err(ResultsError::OldLayout { path: path.into() });
            }
            let theirs = counter_columns(&found, 2 + axes.len() + FIXED.len());
            if found == header_with(axes, &FIXED[..BEFORE_PRESSURE_FIXED], &[], metrics) {
                fixed = BEFORE_PRESSURE_FIXED;
                counters.clear();
            } else if found == header_with(axes, &FIXED[..BEFORE_DISTURBANCE_FIXED], &[], metrics) {
                fixed = BEFORE_DISTURBANCE_FIXED;
                counters.clear();
            } else if found == header_with(axes, FIXED, &theirs, metrics) {
                counters = theirs;
                header = found.clone();
            } else if found != header {
                return Err(ResultsError::Csv {
                    path: path.into(),
                    message: format!(
                        "its columns ({}) differ from this matrix's ({}); was the matrix changed?",
                        found.join(","),
                        header.join(",")
                    ),
                });
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io_err("open", path))?;
        let len = file.metadata().map_err(io_err("open", path))?.len();
        let mut writer = CsvWriter {
            path: path.to_path_buf(),
            file,
            len,
            fixed,
            counters,
            metrics: metrics.to_vec(),
        };
        if !exists {
            writer.write_whole(&header)?;
        }
        Ok(writer)
    }

    /// One record, written whole or not at all (see [`CsvWriter`]).
    fn write_whole(&mut self, record: &[String]) -> Result<()> {
        let mut line = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        let bytes = line
            .write_record(record)
            .map_err(|e| e.to_string())
            .and_then(|()| line.into_inner().map_err(|e| e.to_string()))
            .map_err(|message| ResultsError::Csv {
                path: self.path.clone(),
                message,
            })?;
        // Written to the kernel at once, so a crash of benchbox loses nothing; fsync'd only by
        // `sync` (end of run): an fsync per row would cost more than a short invocation.
        match self.file.write_all(&bytes) {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(source) => {
                // Part of the row may have made it (a full disk): cut it off again. Shrinking
                // a file needs no free space.
                let _ = self.file.set_len(self.len);
                Err(ResultsError::Io {
                    action: "append a row to",
                    path: self.path.clone(),
                    source,
                })
            }
        }
    }

    pub fn append(&mut self, sample: &Sample, label: &str, axis_values: &[String]) -> Result<()> {
        let m = &sample.measured;
        let mut row = vec![sample.cell_id.to_string(), label.to_string()];
        row.extend(axis_values.iter().cloned());
        row.extend([
            sample.phase.to_string(),
            sample.index.to_string(),
            sample.started_at.clone(),
            format!("{:.9}", m.wall_s),
            format!("{:.6}", m.user_s),
            format!("{:.6}", m.system_s),
            opt(m.peak_memory_bytes),
            opt(m.io_read_bytes),
            opt(m.io_write_bytes),
            opt(m.exit_code),
            opt(m.signal),
            m.oom_killed.to_string(),
            m.timed_out.to_string(),
            format!("{:.6}", m.throttled_s),
            format!("{:.6}", m.rusage.user_s),
            format!("{:.6}", m.rusage.system_s),
            m.rusage.max_rss_bytes.to_string(),
            m.rusage.minor_faults.to_string(),
            m.rusage.major_faults.to_string(),
            m.rusage.voluntary_switches.to_string(),
            m.rusage.involuntary_switches.to_string(),
            sample.status.to_string(),
            status::format_flags(&sample.flags),
            sample.reason.clone(),
        ]);
        if self.fixed >= BEFORE_DISTURBANCE_FIXED {
            row.extend(m.pressure.values().map(opt));
        }
        if self.fixed == FIXED.len() {
            let d = &m.disturbance;
            row.extend([
                d.other_cpu_s.map(|s| format!("{s:.6}")).unwrap_or_default(),
                d.steal_s.map(|s| format!("{s:.6}")).unwrap_or_default(),
                d.disturbance_scope
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            ]);
        }
        row.extend(self.counters.iter().map(|c| counter_field(&m.counters, c)));
        row.extend(self.metrics.iter().map(|m| opt(sample.metrics.get(m))));
        self.write_whole(&row)
    }

    /// Make every row durable (power loss included).
    pub fn sync(&mut self) -> Result<()> {
        self.file.sync_data().map_err(io_err("sync", &self.path))
    }
}

/// A row read back from runs.csv: the sample, the cell label, the axis values as text, and the
/// line of the file it starts on (1 is the header).
#[derive(Debug, Clone, PartialEq)]
pub struct CsvRow {
    pub sample: Sample,
    pub label: String,
    pub axis_values: Vec<String>,
    pub line: u64,
    /// The machine that ran it: the [`HOST_COLUMN`] of a merged run (`benchbox merge`); `None`
    /// in one machine's runs.csv.
    pub host: Option<Arc<str>>,
    /// The line of the earlier row of the same (cell, phase, invocation) this `rerun` row
    /// replaces (`[run] rerun-disturbed`): a reader that keeps rows marks that one
    /// [`Flag::Replaced`](crate::status::Flag::Replaced). `None` for every other row.
    pub replaces: Option<u64>,
}

/// The column a merged run's runs.csv adds after the fixed columns (before the metrics): the
/// host name of the shard each row came from.
pub const HOST_COLUMN: &str = "host";

/// Where a runs.csv of this version's layout (`header`) ends its fixed columns: where a merged
/// run puts [`HOST_COLUMN`]. `None` for another layout (an older benchbox's, or one that
/// already has the host column).
pub fn fixed_columns_end(header: &[String]) -> Option<usize> {
    let phase_at = (2..header.len()).find(|&p| {
        header.len() >= p + FIXED.len() && (0..FIXED.len()).all(|k| header[p + k] == FIXED[k])
    })?;
    let end = phase_at + FIXED.len();
    (header.get(end).map(String::as_str) != Some(HOST_COLUMN)).then_some(end)
}

/// The last record of a runs.csv cut short by an interrupted write (a crash, a full disk): it
/// has no line end, or not as many fields as the header. `report` and `compare` leave it out
/// with a warning; `--resume` cuts the file at `offset` and runs that invocation again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Torn {
    /// The line the torn record starts on (1: the header itself is torn).
    pub line: u64,
    /// Its first byte: the length the file had before the interrupted write.
    pub offset: u64,
}

impl Torn {
    /// "`runs.csv` line 12: the last row is incomplete (...)".
    pub fn describe(&self, path: &Path) -> String {
        format!(
            "`{}` line {}: the last row is incomplete (an interrupted write: a crash or a full disk)",
            path.display(),
            self.line
        )
    }

    /// What `report` and `compare` say when they leave it out.
    pub fn warning(&self, path: &Path) -> String {
        format!(
            "{}; it is left out, and `--resume` runs that invocation again",
            self.describe(path)
        )
    }
}

/// Everything [`read_csv`] found in a runs.csv.
#[derive(Debug, Clone, Default)]
pub struct CsvData {
    pub axes: Vec<String>,
    pub rows: Vec<CsvRow>,
    pub torn: Option<Torn>,
}

/// What [`read_csv_each`] found in a runs.csv besides its rows: the axes and the torn last row.
#[derive(Debug, Clone, Default)]
pub struct CsvHead {
    pub axes: Vec<String>,
    pub torn: Option<Torn>,
}

/// The largest time a runs.csv may hold: 10^9 s (31 years). Anything above is a corrupt value.
pub const MAX_SECONDS: f64 = 1e9;

/// Read every sample of a runs.csv back into memory, validating it (see [`read_csv_each`],
/// which this collects). Axis columns are the columns between `label` and the fixed columns; metric columns
/// follow the fixed ones. A runs.csv written before `status`, `flags` and `reason` existed
/// (its fixed columns end at `involuntary_switches`) is read too: each row's status and reason
/// come from its exit code, signal, OOM kill and timeout. When the `status` column is there,
/// it is the truth. One written before the pressure columns (`psi_*_us`; its fixed columns
/// end at `reason`) reads with no pressure.
///
/// Errors name the line (and column): a row with the wrong number of fields (other than the
/// last), a duplicate (cell, phase, invocation) other than a `rerun` row after a measured row
/// flagged `disturbed` (which it replaces: that row is marked [`Flag::Replaced`]), a time that is negative, not finite or above
/// [`MAX_SECONDS`], a byte count or counter that is not a whole number from 0 to 2^64-1, an exit
/// code outside 0-255, a signal outside 1-64, a boolean other than `true`/`false`, an unknown
/// phase, status or flag, and a custom metric that is not a finite number (metrics may be
/// negative). The last record may be torn (see [`Torn`]); it is then left out and reported.
pub fn read_csv(path: &Path) -> Result<CsvData> {
    let mut rows: Vec<CsvRow> = Vec::new();
    let head = read_csv_each(path, |row| {
        if let Some(earlier) = row.replaces {
            // Searched from the newest: the superseded row is almost always the last.
            if let Some(r) = rows.iter_mut().rev().find(|r| r.line == earlier) {
                r.sample.flags.push(Flag::Replaced);
            }
        }
        rows.push(row);
        Ok(())
    })?;
    Ok(CsvData {
        axes: head.axes,
        rows,
        torn: head.torn,
    })
}

/// [`read_csv`] as a stream, for `--resume`, `report` and `compare`: each valid row goes to
/// `each` as it is read (in file order), so the file's samples are never held twice, and an
/// error of `each` stops the read. Every row given to `each` is valid; an error in a later row
/// is returned after it.
pub fn read_csv_each(path: &Path, mut each: impl FnMut(CsvRow) -> Result<()>) -> Result<CsvHead> {
    read_csv_checked(path, |row, record, axes| {
        // Checked: the label and axis values are valid UTF-8.
        let text = |i: usize| String::from_utf8_lossy(record.get(i).unwrap_or(b"")).into_owned();
        each(CsvRow {
            sample: row.sample,
            label: text(1),
            axis_values: (2..2 + axes).map(text).collect(),
            line: row.line,
            host: row.host,
            replaces: row.replaces,
        })
    })
}

/// [`read_csv_each`] without the label and axis values: each row goes to `each` with its
/// record (to take them from when needed) and how many axes the file has.
pub fn read_csv_checked(
    path: &Path,
    mut each: impl FnMut(CheckedRow, &csv::ByteRecord, usize) -> Result<()>,
) -> Result<CsvHead> {
    let bad = |message: String| ResultsError::Csv {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(io_err("read", path))?;
    let len = file.metadata().map_err(io_err("read", path))?.len();
    if len == 0 {
        return Ok(CsvHead::default());
    }
    let ends_with_newline = {
        let mut last = [0u8; 1];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut last, len - 1)
            .map_err(io_err("read", path))?;
        last[0] == b'\n'
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(io::BufReader::with_capacity(1 << 16, file));
    let mut header_record = csv::ByteRecord::new();
    let has_header = reader
        .read_byte_record(&mut header_record)
        .map_err(|e| bad(e.to_string()))?;
    let mut record = csv::ByteRecord::new();
    let mut next = csv::ByteRecord::new();
    let mut has_record = reader
        .read_byte_record(&mut record)
        .map_err(|e| bad(e.to_string()))?;
    if !has_header || (!has_record && !ends_with_newline) {
        // Only (part of) a header: the run died while creating the file.
        return Ok(CsvHead {
            axes: Vec::new(),
            torn: Some(Torn { line: 1, offset: 0 }),
        });
    }
    let header: Vec<String> = header_record
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    let mut checker = RowChecker::new(path, header)?;
    let mut data = CsvHead {
        axes: checker.axes().to_vec(),
        torn: None,
    };
    while has_record {
        let has_next = reader
            .read_byte_record(&mut next)
            .map_err(|e| bad(e.to_string()))?;
        let position = record
            .position()
            .cloned()
            .unwrap_or_else(csv::Position::new);
        let line = position.line();
        if !has_next && (!ends_with_newline || record.len() != checker.header.len()) {
            data.torn = Some(Torn {
                line,
                offset: position.byte(),
            });
            break;
        }
        let row = checker.check(&record, line)?;
        each(row, &record, checker.axes.len())?;
        std::mem::swap(&mut record, &mut next);
        has_record = has_next;
    }
    Ok(data)
}

/// A row [`RowChecker::check`] read: its sample, and what [`CsvRow`] says of it besides the
/// label and axis values (which the summaries do not need: building them for every row of a
/// large run cost an allocation each).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedRow {
    pub sample: Sample,
    pub line: u64,
    /// See [`CsvRow::host`].
    pub host: Option<Arc<str>>,
    /// See [`CsvRow::replaces`].
    pub replaces: Option<u64>,
}

/// The layout of one runs.csv (found from its header) and what checking its rows in file order
/// remembers (the cells, hosts and invocations seen). The one validation of rows: for a file
/// read back ([`read_csv_each`]), and for the rows `merge` writes, checked as a read of the file
/// it writes would check them, without reading it again.
#[derive(Clone)]
pub struct RowChecker {
    path: PathBuf,
    header: Vec<String>,
    axes: Vec<String>,
    phase_at: usize,
    /// How many of [`FIXED`] the file has.
    fixed: usize,
    host_at: Option<usize>,
    counters: Vec<&'static str>,
    counters_at: usize,
    metrics_at: usize,
    /// Shared by every row's metrics (see `MetricValues`).
    metric_names: Vec<Arc<String>>,
    hosts: HashMap<Vec<u8>, Arc<str>>,
    /// Cell ids, interned.
    cell_ids: RowMap<String, usize>,
    /// (cell, phase, invocation) -> the line of its latest row, and whether a `rerun` row may
    /// replace that one (a measured row flagged `disturbed`).
    seen: super::Seen<(u64, bool)>,
    /// The cell ids of [`RowChecker::check`]'s samples.
    ids: CellIds,
}

impl RowChecker {
    /// The checker of the rows of the runs.csv at `path` (named in errors) whose header is
    /// `header`; an error when the header is not one of a runs.csv.
    pub fn new(path: &Path, header: Vec<String>) -> Result<RowChecker> {
        let bad = |message: String| ResultsError::Csv {
            path: path.to_path_buf(),
            message,
        };
        if header.first().map(String::as_str) != Some("cell") {
            return Err(bad("its first column is not `cell`".into()));
        }
        // The fixed columns are found as a block, so an axis named like one of them (which
        // older versions accepted) cannot be taken for it.
        let phase_at = (2..header.len())
            .find(|&p| {
                header.len() >= p + LEGACY_FIXED
                    && (0..LEGACY_FIXED).all(|k| header[p + k] == FIXED[k])
            })
            .ok_or_else(|| {
                bad(format!(
                    "its columns are not cell, label, the axes, then {}",
                    FIXED[..LEGACY_FIXED].join(", ")
                ))
            })?;
        // The longest layout whose columns are all there (see `FIXED`).
        let has = |columns: std::ops::Range<usize>| {
            columns
                .into_iter()
                .all(|k| header.get(phase_at + k).map(String::as_str) == Some(FIXED[k]))
        };
        let fixed = if !has(LEGACY_FIXED..BEFORE_PRESSURE_FIXED) {
            LEGACY_FIXED
        } else if !has(BEFORE_PRESSURE_FIXED..BEFORE_DISTURBANCE_FIXED) {
            BEFORE_PRESSURE_FIXED
        } else if !has(BEFORE_DISTURBANCE_FIXED..FIXED.len()) {
            BEFORE_DISTURBANCE_FIXED
        } else {
            FIXED.len()
        };
        let axes = header[2..phase_at].to_vec();
        // A merged run's host column follows the fixed columns of this version's layout,
        // before the counters' columns.
        let host_at = (fixed == FIXED.len()
            && header.get(phase_at + fixed).map(String::as_str) == Some(HOST_COLUMN))
        .then_some(phase_at + fixed);
        let counters_at = phase_at + fixed + usize::from(host_at.is_some());
        let counters = if fixed == FIXED.len() {
            counter_columns(&header, counters_at)
        } else {
            Vec::new()
        };
        let metrics_at = counters_at + counters.len();
        let metric_names: Vec<Arc<String>> = header[metrics_at..]
            .iter()
            .map(|name| Arc::new(name.clone()))
            .collect();
        Ok(RowChecker {
            path: path.to_path_buf(),
            header,
            axes,
            phase_at,
            fixed,
            host_at,
            counters,
            counters_at,
            metrics_at,
            metric_names,
            hosts: HashMap::new(),
            cell_ids: RowMap::with_capacity_and_hasher(0, Default::default()),
            seen: Default::default(),
            ids: Default::default(),
        })
    }

    /// Room for `rows` invocations in the duplicate check whatever order they come in
    /// (`merge`: shard by shard), see [`super::Seen::reserve`].
    pub fn reserve(&mut self, rows: usize) {
        self.seen.reserve(rows);
    }

    /// The axis columns (between `label` and the fixed columns).
    pub fn axes(&self) -> &[String] {
        &self.axes
    }

    /// The next row, `record`, which starts on `line` of the file: its sample, or what is
    /// wrong with it, naming the line and the column (see [`read_csv`]).
    pub fn check(&mut self, record: &csv::ByteRecord, line: u64) -> Result<CheckedRow> {
        let mut ids = std::mem::take(&mut self.ids);
        let sample = self.parse(record, line, &mut ids);
        self.ids = ids;
        let sample = sample?;
        let host = self.host_at.map(|at| record.get(at).unwrap_or(b""));
        self.accept(sample, host, line)
    }

    /// The first half of [`RowChecker::check`], which needs no memory of earlier rows (so
    /// `merge` parses shards on several threads): `record` as a sample, or what is wrong with
    /// its fields. `ids`: the cell ids this thread has read, shared by its samples.
    pub fn parse(&self, record: &csv::ByteRecord, line: u64, ids: &mut CellIds) -> Result<Sample> {
        let invalid = |message: String| ResultsError::Invalid {
            path: self.path.clone(),
            line,
            message,
        };
        if record.len() != self.header.len() {
            return Err(invalid(format!(
                "{} fields where the header has {}",
                record.len(),
                self.header.len()
            )));
        }
        let mut sample = parse_row(
            record,
            &self.header,
            self.phase_at,
            self.fixed,
            self.metrics_at,
            &self.metric_names,
            ids,
        )
        .map_err(invalid)?;
        sample.measured.counters =
            parse_counters(record, &self.counters, self.counters_at).map_err(invalid)?;
        Ok(sample)
    }

    /// The second half of [`RowChecker::check`], in file order: `sample` (parsed from the row
    /// on `line`, whose host column holds `host`, `None` when the file has none) against the
    /// rows before it.
    pub fn accept(&mut self, sample: Sample, host: Option<&[u8]>, line: u64) -> Result<CheckedRow> {
        let invalid = |message: String| ResultsError::Invalid {
            path: self.path.clone(),
            line,
            message,
        };
        let cell = match self.cell_ids.get(&*sample.cell_id) {
            Some(&cell) => cell,
            None => {
                let next_id = self.cell_ids.len();
                self.cell_ids.insert(sample.cell_id.to_string(), next_id);
                next_id
            }
        };
        let group = 2 * cell + usize::from(sample.phase == Phase::Measure);
        let flags = &sample.flags;
        let replaceable = sample.phase == Phase::Measure && flags.contains(&Flag::Disturbed);
        // The one duplicate allowed: a `rerun` row after a disturbed measured row (`[run]
        // rerun-disturbed`), which it replaces; a chain of them ends at the last.
        let replaces = match self
            .seen
            .insert(group, u64::from(sample.index), (line, replaceable))
        {
            None => None,
            Some((earlier, true)) if flags.contains(&Flag::Rerun) => Some(earlier),
            Some((earlier, was_disturbed)) => {
                let why = if was_disturbed {
                    ", flagged `disturbed`: only a row flagged `rerun` may replace it"
                } else {
                    ": did two processes write this run at once?"
                };
                return Err(invalid(format!(
                    "a second row for cell `{}` {} invocation {} (the first is on line {earlier}{why})",
                    sample.cell_id, sample.phase, sample.index
                )));
            }
        };
        let host = match host {
            Some(raw) => {
                if raw.is_empty() {
                    return Err(invalid(format!("column `{HOST_COLUMN}` is empty")));
                }
                let host = match self.hosts.get(raw) {
                    Some(h) => h.clone(),
                    None => {
                        let h: Arc<str> = String::from_utf8_lossy(raw).into();
                        self.hosts.insert(raw.to_vec(), h.clone());
                        h
                    }
                };
                Some(host)
            }
            None => None,
        };
        Ok(CheckedRow {
            sample,
            line,
            host,
            replaces,
        })
    }
}

/// The cell ids read so far, each held once and shared by its cell's samples: a run of a
/// million rows has a handful of cells, and an allocation per row (then a free) was a good part
/// of reading one.
#[derive(Debug, Clone, Default)]
pub struct CellIds {
    ids: RowMap<Box<str>, Arc<str>>,
    last: Option<Arc<str>>,
}

impl CellIds {
    /// The shared `id`.
    pub fn get(&mut self, id: &str) -> Arc<str> {
        // Rows of one cell often come together (a cell-lifetime service, `--order cell`).
        if let Some(last) = &self.last
            && **last == *id
        {
            return Arc::clone(last);
        }
        let shared = match self.ids.get(id) {
            Some(shared) => Arc::clone(shared),
            None => {
                let shared: Arc<str> = id.into();
                self.ids.insert(id.into(), Arc::clone(&shared));
                shared
            }
        };
        self.last = Some(Arc::clone(&shared));
        shared
    }
}

/// One record of a runs.csv as a sample, or what is wrong with it (naming the column); the
/// label and the axis values are checked too (valid UTF-8), in their order. `fixed`: how
/// many of [`FIXED`] the file has.
fn parse_row(
    r: &csv::ByteRecord,
    header: &[String],
    phase_at: usize,
    fixed: usize,
    metrics_at: usize,
    metric_names: &[Arc<String>],
    ids: &mut CellIds,
) -> std::result::Result<Sample, String> {
    let text = |i: usize| -> std::result::Result<&str, String> {
        std::str::from_utf8(r.get(i).unwrap_or(b""))
            .map_err(|_| format!("column `{}`: not valid UTF-8", header[i]))
    };
    let field = |k: usize| text(phase_at + k);
    let column = |k: usize| FIXED[k];
    let seconds = |k: usize| -> std::result::Result<f64, String> {
        let v = field(k)?;
        let at = |what: String| format!("column `{}`: `{v}` {what}", column(k));
        match v.parse::<f64>() {
            Err(_) if v.is_empty() => Err(format!("column `{}`: no value", column(k))),
            Err(_) => Err(at("is not a number".into())),
            Ok(x) if !x.is_finite() => Err(at("is not a finite number".into())),
            Ok(x) if x < 0.0 => Err(at("is negative; a time is never below 0".into())),
            Ok(x) if x > MAX_SECONDS => Err(at(format!(
                "is out of range (above {MAX_SECONDS:e} s, 31 years)"
            ))),
            Ok(x) => Ok(x),
        }
    };
    let opt_count = |k: usize| -> std::result::Result<Option<u64>, String> {
        let v = field(k)?;
        if v.is_empty() {
            return Ok(None);
        }
        v.parse::<u64>().map(Some).map_err(|_| {
            let what = if v.starts_with('-') && v[1..].parse::<f64>().is_ok() {
                "is negative; byte counts and counters are never below 0"
            } else if v.parse::<f64>().is_ok_and(f64::is_finite)
                && !v.bytes().all(|b| b.is_ascii_digit())
            {
                "is not a whole number"
            } else if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                "is out of range (above 2^64 - 1)"
            } else {
                "is not a whole number"
            };
            format!("column `{}`: `{v}` {what}", column(k))
        })
    };
    let count = |k: usize| -> std::result::Result<u64, String> {
        opt_count(k)?.ok_or_else(|| format!("column `{}`: no value", column(k)))
    };
    let opt_int = |k: usize,
                   range: std::ops::RangeInclusive<i32>|
     -> std::result::Result<Option<i32>, String> {
        let v = field(k)?;
        if v.is_empty() {
            return Ok(None);
        }
        match v.parse::<i32>() {
            Ok(x) if range.contains(&x) => Ok(Some(x)),
            _ => Err(format!(
                "column `{}`: `{v}` is not a whole number from {} to {}",
                column(k),
                range.start(),
                range.end()
            )),
        }
    };
    let boolean = |k: usize| -> std::result::Result<bool, String> {
        match field(k)? {
            "true" => Ok(true),
            "false" => Ok(false),
            v => Err(format!(
                "column `{}`: `{v}` is neither `true` nor `false`",
                column(k)
            )),
        }
    };
    let cell_id = text(0)?;
    if cell_id.is_empty() {
        return Err("column `cell`: no cell id".into());
    }
    let phase = match field(0)? {
        "warmup" => Phase::Warmup,
        "measure" => Phase::Measure,
        other => {
            return Err(format!(
                "column `phase`: unknown phase `{other}` (known: warmup, measure)"
            ));
        }
    };
    let index = field(1)?.parse::<u32>().map_err(|_| {
        format!(
            "column `invocation`: `{}` is not an invocation number (0 to 4294967295)",
            field(1).unwrap_or("")
        )
    })?;
    let exit_code = opt_int(9, 0..=255)?;
    let signal = opt_int(10, 1..=64)?;
    let oom_killed = boolean(11)?;
    let timed_out = boolean(12)?;
    let (status, flags, reason) = if fixed > LEGACY_FIXED {
        let status = field(21)?
            .parse::<Status>()
            .map_err(|e| format!("column `status`: {e}"))?;
        let flags = status::parse_flags(field(22)?).map_err(|e| format!("column `flags`: {e}"))?;
        (status, flags, field(23)?.to_string())
    } else {
        let (status, reason) = status::from_end(exit_code, signal, oom_killed, timed_out);
        (status, Vec::new(), reason)
    };
    let pressure = if fixed >= BEFORE_DISTURBANCE_FIXED {
        let mut values = [None; 5];
        for (i, value) in values.iter_mut().enumerate() {
            *value = opt_count(BEFORE_PRESSURE_FIXED + i)?;
        }
        Pressure::from_values(values)
    } else {
        Pressure::default()
    };
    let disturbance = if fixed == FIXED.len() {
        let opt_seconds = |k: usize| -> std::result::Result<Option<f64>, String> {
            if field(k)?.is_empty() {
                Ok(None)
            } else {
                seconds(k).map(Some)
            }
        };
        let k = BEFORE_DISTURBANCE_FIXED;
        let scope = match field(k + 2)? {
            "" => None,
            v => Some(Scope::parse(v).ok_or_else(|| {
                format!(
                    "column `disturbance_scope`: unknown scope `{v}` (known: pinned, host, or empty)"
                )
            })?),
        };
        Disturbance {
            other_cpu_s: opt_seconds(k)?,
            steal_s: opt_seconds(k + 1)?,
            disturbance_scope: scope,
        }
    } else {
        Disturbance::default()
    };
    let mut metrics = MetricValues::default();
    for (j, name) in metric_names.iter().enumerate() {
        let v = text(metrics_at + j)?;
        if v.is_empty() {
            continue;
        }
        match v.parse::<f64>() {
            Ok(x) if x.is_finite() => {
                metrics.insert_shared(Arc::clone(name), x);
            }
            _ => {
                return Err(format!(
                    "column `{name}`: `{v}` is not a finite number (a metric may be negative, but not missing a value, NaN or infinite)"
                ));
            }
        }
    }
    let sample = Sample {
        cell_id: ids.get(cell_id),
        phase,
        index,
        started_at: field(2)?.to_string(),
        measured: Measurement {
            wall_s: seconds(3)?,
            user_s: seconds(4)?,
            system_s: seconds(5)?,
            peak_memory_bytes: opt_count(6)?,
            io_read_bytes: opt_count(7)?,
            io_write_bytes: opt_count(8)?,
            exit_code,
            signal,
            oom_killed,
            timed_out,
            throttled_s: seconds(13)?,
            rusage: crate::measurement::Rusage {
                user_s: seconds(14)?,
                system_s: seconds(15)?,
                max_rss_bytes: count(16)?,
                minor_faults: count(17)?,
                major_faults: count(18)?,
                voluntary_switches: count(19)?,
                involuntary_switches: count(20)?,
            },
            pressure,
            disturbance,
            // Filled in by the caller, which knows the file's counter columns.
            counters: Default::default(),
        },
        status,
        flags,
        reason,
        metrics,
    };
    for i in 1..phase_at {
        text(i)?;
    }
    Ok(sample)
}

/// The counters' fields of a record (`columns`, from `at`), checked like the fixed ones: a
/// count is a whole number, task-clock a time, `counters_scaled` a boolean; empty: not counted.
fn parse_counters(
    r: &csv::ByteRecord,
    columns: &[&'static str],
    at: usize,
) -> std::result::Result<Counters, String> {
    let mut counters = Counters::default();
    for (i, &column) in columns.iter().enumerate() {
        let v = std::str::from_utf8(r.get(at + i).unwrap_or(b""))
            .map_err(|_| format!("column `{column}`: not valid UTF-8"))?;
        if v.is_empty() {
            continue;
        }
        match column {
            "task_clock_s" => match v.parse::<f64>() {
                Ok(x) if x.is_finite() && (0.0..=MAX_SECONDS).contains(&x) => {
                    counters.task_clock_s = Some(x)
                }
                _ => {
                    return Err(format!(
                        "column `{column}`: `{v}` is not a time from 0 to {MAX_SECONDS:e} s"
                    ));
                }
            },
            "counters_scaled" => {
                counters.counters_scaled = Some(match v {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(format!(
                            "column `{column}`: `{v}` is neither `true` nor `false`"
                        ));
                    }
                })
            }
            other => {
                let count = v.parse::<u64>().map_err(|_| {
                    format!("column `{column}`: `{v}` is not a whole number from 0 to 2^64 - 1")
                })?;
                if let Some(slot) = counters.count_mut(other) {
                    *slot = Some(count);
                }
            }
        }
    }
    Ok(counters)
}

/// The invocations a run planned for one cell (after `--runs` and `--warmup`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planned {
    pub warmup: u32,
    pub runs: u32,
}

impl Planned {
    fn of(&self, phase: Phase) -> u32 {
        match phase {
            Phase::Warmup => self.warmup,
            Phase::Measure => self.runs,
        }
    }
}

/// Check rows against the run's plan: every row's cell is one of the run's, and its invocation
/// is one the plan has (`plan`: cell id -> its planned invocations, `None` when unknown).
pub fn check_plan(
    path: &Path,
    rows: &[CsvRow],
    plan: &HashMap<&str, Option<Planned>>,
) -> Result<()> {
    rows.iter().try_for_each(|row| check_row(path, row, plan))
}

/// [`check_plan`] for one row, as [`read_csv_each`] gives them.
pub fn check_row(path: &Path, row: &CsvRow, plan: &HashMap<&str, Option<Planned>>) -> Result<()> {
    let planned = plan.get(&*row.sample.cell_id).copied();
    check_in_plan(path, row.line, &row.sample, planned, || row.label.clone())
}

/// [`check_row`] for the sample `s` of the row on `line`, whose cell the run plans as
/// `planned` (`None`: the run has no such cell); `label` is the row's, asked for only by the
/// error that names it.
pub fn check_in_plan(
    path: &Path,
    line: u64,
    s: &Sample,
    planned: Option<Option<Planned>>,
    label: impl FnOnce() -> String,
) -> Result<()> {
    let invalid = |message: String| ResultsError::Invalid {
        path: path.to_path_buf(),
        line,
        message,
    };
    match planned {
        None => Err(invalid(format!(
            "cell `{}` is not one of this run's cells (see results.json)",
            s.cell_id
        ))),
        Some(Some(p)) if s.index >= p.of(s.phase) => {
            let (what, n) = match s.phase {
                Phase::Warmup => ("warm-up", p.warmup),
                Phase::Measure => ("measured invocation", p.runs),
            };
            Err(invalid(format!(
                "{what} {} of cell `{}` is beyond the plan ({n} {what}s, numbered from 0)",
                s.index,
                label()
            )))
        }
        Some(_) => Ok(()),
    }
}

/// The label of a runs.csv record (its second column), as [`CsvRow::label`] has it.
pub fn label_of(record: &csv::ByteRecord) -> String {
    String::from_utf8_lossy(record.get(1).unwrap_or(b"")).into_owned()
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn csv_round_trips_and_appends_after_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("runs.csv");
        let axes = vec!["jdk".to_string()];
        let metrics = vec!["ops".to_string()];
        let mut w = CsvWriter::open(&path, &axes, &[], &metrics).unwrap();
        w.append(&sample(0), "jdk=17", &["17".into()]).unwrap();
        drop(w);
        let mut w = CsvWriter::open(&path, &axes, &[], &metrics).unwrap();
        w.append(&sample(1), "jdk=17", &["17".into()]).unwrap();
        let data = read_csv(&path).unwrap();
        assert_eq!(data.axes, axes);
        assert_eq!(data.torn, None);
        let rows = data.rows;
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].sample, sample(0));
        assert_eq!(rows[1].sample, sample(1));
        assert_eq!(rows[1].axis_values, vec!["17".to_string()]);
        assert_eq!((rows[0].line, rows[1].line), (2, 3));
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("cell,label,jdk,phase,invocation,started_at,wall_s,"),
            "{text}"
        );
        // A different matrix (other metric columns) must not append to this file.
        assert!(CsvWriter::open(&path, &axes, &[], &[]).is_err());
    }

    #[test]
    fn status_flags_and_reason_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("runs.csv");
        let mut w = CsvWriter::open(&path, &[], &[], &["ops".to_string()]).unwrap();
        let mut s = sample(1);
        s.status = Status::Suspect;
        s.flags = vec![Flag::Disturbed, Flag::Rerun];
        s.reason = "cgroup CPU 0.008 s is below 90%, \"quoted\"".into();
        w.append(&s, "", &[]).unwrap();
        w.append(&sample(2), "", &[]).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let header = text.lines().next().unwrap();
        assert!(
            header.ends_with(",involuntary_switches,status,flags,reason,psi_cpu_some_us,psi_memory_some_us,psi_memory_full_us,psi_io_some_us,psi_io_full_us,other_cpu_s,steal_s,disturbance_scope,ops"),
            "{header}"
        );
        assert!(
            text.contains(",suspect,disturbed;rerun,\"cgroup CPU"),
            "{text}"
        );
        // Pressure and disturbance not measured: eight empty fields, not zeros.
        assert!(
            text.lines().nth(2).unwrap().ends_with(",ok,,,,,,,,,,,12.5"),
            "{text}"
        );
        let rows = read_csv(&path).unwrap().rows;
        assert_eq!(rows[0].sample, s);
        assert_eq!(rows[1].sample, sample(2));
    }

    #[test]
    fn the_status_column_is_the_truth_and_must_be_known() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("runs.csv");
        let mut w = CsvWriter::open(&path, &[], &[], &[]).unwrap();
        let mut s = sample(1);
        s.status = Status::Suspect;
        w.append(&s, "", &[]).unwrap();
        drop(w);
        let rows = read_csv(&path).unwrap().rows;
        assert_eq!(
            rows[0].sample.status,
            Status::Suspect,
            "exit 0, yet suspect"
        );
        assert!(!rows[0].sample.counts_toward_statistics());
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace(",suspect,", ",fine,");
        fs::write(&path, text).unwrap();
        let e = read_csv(&path).unwrap_err().to_string();
        assert!(
            e.contains("line 2: column `status`: unknown status `fine` (known: ok, failed"),
            "{e}"
        );
    }

    #[test]
    fn counter_columns_are_the_runs_own_round_trip_and_keep_their_layout_on_resume() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("runs.csv");
        let software = [
            "task_clock_s",
            "context_switches",
            "cpu_migrations",
            "page_faults",
            "counters_scaled",
        ];
        let mut w = CsvWriter::open(&path, &[], &software, &["ops".to_string()]).unwrap();
        let mut counted = sample(1);
        counted.measured.counters = Counters {
            task_clock_s: Some(0.25),
            context_switches: Some(12),
            cpu_migrations: Some(0),
            page_faults: Some(110),
            counters_scaled: Some(false),
            ..Counters::default()
        };
        w.append(&counted, "", &[]).unwrap();
        // A cell with `counters = false`: empty fields, not zeros.
        w.append(&sample(2), "", &[]).unwrap();
        drop(w);
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].ends_with(",psi_io_full_us,other_cpu_s,steal_s,disturbance_scope,task_clock_s,context_switches,cpu_migrations,page_faults,counters_scaled,ops"),
            "{text}"
        );
        // No hardware columns: this run had none (not empty ones).
        assert!(!lines[0].contains("instructions"), "{text}");
        assert!(
            lines[1].ends_with(",0.250000000,12,0,110,false,12.5"),
            "{text}"
        );
        assert!(lines[2].ends_with(",,,,,,12.5"), "{text}");
        let rows = read_csv(&path).unwrap().rows;
        assert_eq!(rows[0].sample, counted);
        assert_eq!(rows[1].sample.measured.counters, Counters::default());
        assert_eq!(rows[1].sample.metrics.get("ops"), Some(&12.5));

        // Resumed on a host that counts more (or nothing): the file keeps its own columns.
        let mut w = CsvWriter::open(&path, &[], &Counters::COLUMNS, &["ops".to_string()]).unwrap();
        let mut more = sample(3);
        more.measured.counters = counted.measured.counters;
        more.measured.counters.instructions = Some(1000);
        w.append(&more, "", &[]).unwrap();
        let rows = read_csv(&path).unwrap().rows;
        assert_eq!(rows[2].sample.measured.counters, counted.measured.counters);
        assert_eq!(
            fs::read_to_string(&path).unwrap().lines().next(),
            Some(lines[0])
        );

        // A bad count names its line and column.
        let bad = text.replacen(",0.250000000,12,", ",0.250000000,-3,", 1);
        fs::write(&path, bad).unwrap();
        let e = read_csv(&path).unwrap_err().to_string();
        assert!(
            e.contains("line 2") && e.contains("column `context_switches`: `-3`"),
            "{e}"
        );
    }

    #[test]
    fn pressure_columns_round_trip_and_empty_is_not_zero() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("runs.csv");
        let mut w = CsvWriter::open(&path, &[], &[], &["ops".to_string()]).unwrap();
        let mut measured = sample(1);
        measured.measured.pressure =
            Pressure::from_values([Some(1500), Some(0), Some(0), Some(42), None]);
        w.append(&measured, "", &[]).unwrap();
        w.append(&sample(2), "", &[]).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].ends_with(",ok,,,1500,0,0,42,,,,,12.5"), "{text}");
        assert!(lines[2].ends_with(",ok,,,,,,,,,,,12.5"), "{text}");
        let rows = read_csv(&path).unwrap().rows;
        assert_eq!(rows[0].sample, measured);
        assert_eq!(rows[1].sample.measured.pressure, Pressure::default());
        // results.json: per invocation, under the column names; null when not measured.
        let json = serde_json::to_value(&measured).unwrap();
        assert_eq!(json["psi_cpu_some_us"], 1500);
        assert_eq!(json["psi_io_full_us"], serde_json::Value::Null);
        let back: Sample = serde_json::from_value(json).unwrap();
        assert_eq!(back, measured);
    }

    /// A runs.csv as benchbox wrote it before the pressure columns: it reads (no pressure),
    /// and a resumed run appends rows in its layout.
    #[test]
    fn a_runs_csv_without_pressure_columns_reads_and_keeps_its_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("runs.csv");
        let header = header_with(
            &["jdk".into()],
            &FIXED[..BEFORE_PRESSURE_FIXED],
            &[],
            &["ops".into()],
        );
        let row = "c1,jdk=17,17,measure,0,2026-01-01T00:00:00Z,1.250000000,1.000000,0.125000,4096,,0,0,,false,false,0.000000,1.000000,0.125000,8192,10,0,3,1,ok,,,12.5";
        let before = format!("{}\n{row}\n", header.join(","));
        fs::write(&path, &before).unwrap();
        let mut w = CsvWriter::open(&path, &["jdk".into()], &[], &["ops".into()]).unwrap();
        let mut s = sample(1);
        s.cell_id = "c1".into();
        s.index = 1;
        s.measured.pressure = Pressure::from_values([Some(7); 5]);
        w.append(&s, "jdk=17", &["17".into()]).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(&before), "{text}");
        assert!(text.ends_with(",ok,,,12.5\n"), "the old layout: {text}");
        let data = read_csv(&path).unwrap();
        assert_eq!(data.rows.len(), 2);
        assert!(
            data.rows
                .iter()
                .all(|r| r.sample.measured.pressure == Pressure::default())
        );
        assert_eq!(data.rows[1].sample.metrics["ops"], 12.5);
        // A results.json sample from before the pressure keys reads with none.
        let mut json = serde_json::to_value(sample(1)).unwrap();
        for column in Pressure::COLUMNS {
            json.as_object_mut().unwrap().remove(column);
        }
        let old: Sample = serde_json::from_value(json).unwrap();
        assert_eq!(old, sample(1));
    }

    #[test]
    fn disturbance_columns_round_trip_and_empty_is_not_zero() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("runs.csv");
        let mut w = CsvWriter::open(&path, &[], &[], &["ops".to_string()]).unwrap();
        let mut measured = sample(1);
        measured.flags = vec![Flag::Disturbed];
        measured.measured.disturbance = Disturbance {
            other_cpu_s: Some(0.25),
            steal_s: Some(0.0),
            disturbance_scope: Some(Scope::Pinned),
        };
        w.append(&measured, "", &[]).unwrap();
        let mut host = sample(2);
        host.measured.disturbance = Disturbance {
            other_cpu_s: Some(1.5),
            steal_s: Some(0.01),
            disturbance_scope: Some(Scope::Host),
        };
        w.append(&host, "", &[]).unwrap();
        w.append(&sample(3), "", &[]).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].ends_with(",ok,disturbed,,,,,,,0.250000,0.000000,pinned,12.5"),
            "{text}"
        );
        assert!(lines[2].ends_with(",1.500000,0.010000,host,12.5"), "{text}");
        assert!(lines[3].ends_with(",ok,,,,,,,,,,,12.5"), "{text}");
        let rows = read_csv(&path).unwrap().rows;
        assert_eq!(rows[0].sample, measured);
        assert_eq!(rows[1].sample, host);
        assert_eq!(rows[2].sample.measured.disturbance, Disturbance::default());
        // results.json: under the column names, null when not measured; older ones lack them.
        let json = serde_json::to_value(&measured).unwrap();
        assert_eq!(json["other_cpu_s"], 0.25);
        assert_eq!(json["disturbance_scope"], "pinned");
        let back: Sample = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, measured);
        let mut old = json;
        for column in Disturbance::COLUMNS {
            old.as_object_mut().unwrap().remove(column);
        }
        let old: Sample = serde_json::from_value(old).unwrap();
        assert_eq!(old.measured.disturbance, Disturbance::default());
        // A scope benchbox never writes, or a negative time, names its column.
        let bad = text.replace(",pinned,", ",pined,");
        fs::write(&path, bad).unwrap();
        let e = read_csv(&path).unwrap_err().to_string();
        assert!(
            e.contains("line 2: column `disturbance_scope`: unknown scope `pined`"),
            "{e}"
        );
        fs::write(&path, text.replace(",0.250000,", ",-1,")).unwrap();
        let e = read_csv(&path).unwrap_err().to_string();
        assert!(
            e.contains("line 2: column `other_cpu_s`: `-1` is negative"),
            "{e}"
        );
    }

    /// A runs.csv as benchbox wrote it before the disturbance columns: it reads (no figures),
    /// and a resumed run appends rows in its layout (pressure kept, no disturbance).
    #[test]
    fn a_runs_csv_without_disturbance_columns_reads_and_keeps_its_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("runs.csv");
        let header = header_with(
            &[],
            &FIXED[..BEFORE_DISTURBANCE_FIXED],
            &[],
            &["ops".into()],
        );
        let row = "abc123,,measure,0,2026-01-01T00:00:00Z,1.250000000,1.000000,0.125000,4096,,0,0,,false,false,0.000000,1.000000,0.125000,8192,10,0,3,1,ok,,,5,,,,,12.5";
        let before = format!("{}\n{row}\n", header.join(","));
        fs::write(&path, &before).unwrap();
        let mut w = CsvWriter::open(&path, &[], &[], &["ops".into()]).unwrap();
        let mut s = sample(1);
        s.measured.pressure = Pressure::from_values([Some(7); 5]);
        s.measured.disturbance.other_cpu_s = Some(1.0);
        w.append(&s, "", &[]).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(&before), "{text}");
        assert!(
            text.ends_with(",ok,,,7,7,7,7,7,12.5\n"),
            "the old layout: {text}"
        );
        let data = read_csv(&path).unwrap();
        assert_eq!(data.rows.len(), 2);
        assert_eq!(
            data.rows[0].sample.measured.pressure.psi_cpu_some_us,
            Some(5)
        );
        assert!(
            data.rows
                .iter()
                .all(|r| r.sample.measured.disturbance == Disturbance::default())
        );
    }

    #[test]
    fn the_pressure_columns_end_the_fixed_columns() {
        assert_eq!(&FIXED[BEFORE_DISTURBANCE_FIXED..], Disturbance::COLUMNS);
        assert_eq!(
            &FIXED[BEFORE_PRESSURE_FIXED..BEFORE_DISTURBANCE_FIXED],
            Pressure::COLUMNS
        );
        assert_eq!(FIXED[BEFORE_PRESSURE_FIXED - 1], "reason");
        assert_eq!(FIXED[LEGACY_FIXED - 1], "involuntary_switches");
    }

    /// A runs.csv as benchbox wrote it before `status`, `flags` and `reason`.
    const OLD_CSV: &str = "\
cell,label,jdk,phase,invocation,started_at,wall_s,user_s,system_s,peak_memory_bytes,io_read_bytes,io_write_bytes,exit_code,signal,oom_killed,timed_out,throttled_s,rusage_user_s,rusage_system_s,max_rss_bytes,minor_faults,major_faults,voluntary_switches,involuntary_switches,ops
c1,jdk=17,17,warmup,0,2026-01-01T00:00:00Z,1.250000000,1.000000,0.125000,4096,,0,0,,false,false,0.000000,1.000000,0.125000,8192,10,0,3,1,12.5
c1,jdk=17,17,measure,0,2026-01-01T00:00:01Z,1.0,0.0,0.0,4096,,0,0,,false,false,0,1.0,0.0,8192,10,0,3,1,13
c1,jdk=17,17,measure,1,2026-01-01T00:00:02Z,1.0,1.0,0.0,4096,,0,3,,false,false,0,1.0,0.0,8192,10,0,3,1,
c1,jdk=17,17,measure,2,2026-01-01T00:00:03Z,1.0,1.0,0.0,4096,,0,,9,true,false,0,1.0,0.0,8192,10,0,3,1,
c1,jdk=17,17,measure,3,2026-01-01T00:00:04Z,1.0,1.0,0.0,4096,,0,,9,false,true,0,1.0,0.0,8192,10,0,3,1,
";

    #[test]
    fn an_older_runs_csv_reads_with_derived_statuses_and_is_not_appended_to() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("runs.csv");
        fs::write(&path, OLD_CSV).unwrap();
        let CsvData { axes, rows, torn } = read_csv(&path).unwrap();
        assert_eq!(torn, None);
        assert_eq!(axes, ["jdk"]);
        assert_eq!(rows[0].sample, {
            let mut s = sample(0);
            s.cell_id = "c1".into();
            s
        });
        let got: Vec<(Status, &str, Option<f64>)> = rows
            .iter()
            .map(|r| {
                let s = &r.sample;
                (s.status, s.reason.as_str(), s.metrics.get("ops").copied())
            })
            .collect();
        assert_eq!(
            got,
            [
                (Status::Ok, "", Some(12.5)),
                // No cgroup CPU beside 1 s of rusage CPU: an old row is never made suspect.
                (Status::Ok, "", Some(13.0)),
                (Status::Failed, "exit 3", None),
                (Status::Oom, "killed: out of memory", None),
                (Status::Timeout, "timed out", None),
            ]
        );
        assert!(rows.iter().all(|r| r.sample.flags.is_empty()));
        // Appending would mix two layouts: refused, and the file is untouched.
        let e = CsvWriter::open(&path, &axes, &[], &["ops".to_string()])
            .err()
            .unwrap();
        assert!(matches!(e, ResultsError::OldLayout { .. }), "{e}");
        assert!(
            e.to_string().contains(
                "written by an older benchbox, without the `status`, `flags` and `reason` columns"
            ),
            "{e}"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), OLD_CSV);
    }

    #[test]
    fn the_example_run_is_an_older_runs_csv_that_still_reads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/example/runs.csv");
        let data = read_csv(&path).unwrap();
        assert_eq!(data.axes, ["level"]);
        assert_eq!(data.rows.len(), 33);
        assert!(
            data.rows
                .iter()
                .all(|r| r.sample.status == Status::Ok
                    && r.sample.metrics.contains_key("compressed"))
        );
    }

    /// A runs.csv of `n` measured invocations of cell `c1` (axis jdk, metric ops), as written.
    fn written(dir: &Path, n: u32) -> (PathBuf, String) {
        let path = dir.join("runs.csv");
        let mut w = CsvWriter::open(&path, &["jdk".into()], &[], &["ops".into()]).unwrap();
        for i in 0..n {
            let mut s = sample(i);
            s.phase = Phase::Measure;
            w.append(&s, "jdk=17", &["17".into()]).unwrap();
        }
        (path.clone(), fs::read_to_string(&path).unwrap())
    }

    /// `text` with the field `column` of data line `line` (2 = the first row) set to `value`.
    fn with_field(text: &str, line: usize, column: &str, value: &str) -> String {
        let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
        let k = header.iter().position(|h| *h == column).unwrap();
        text.lines()
            .enumerate()
            .map(|(i, l)| {
                if i + 1 == line {
                    let mut f: Vec<&str> = l.split(',').collect();
                    f[k] = value;
                    f.join(",") + "\n"
                } else {
                    format!("{l}\n")
                }
            })
            .collect()
    }

    /// Regression: negative times, non-finite values and out-of-range counts were read as data.
    #[test]
    fn every_built_in_column_is_range_checked_and_errors_name_line_and_column() {
        let tmp = tempfile::tempdir().unwrap();
        let (path, good) = written(tmp.path(), 3);
        let cases: &[(&str, &str, &str)] = &[
            (
                "wall_s",
                "-5.0",
                "column `wall_s`: `-5.0` is negative; a time is never below 0",
            ),
            (
                "wall_s",
                "NaN",
                "column `wall_s`: `NaN` is not a finite number",
            ),
            (
                "user_s",
                "inf",
                "column `user_s`: `inf` is not a finite number",
            ),
            (
                "system_s",
                "1e400",
                "column `system_s`: `1e400` is not a finite number",
            ),
            (
                "throttled_s",
                "2e9",
                "column `throttled_s`: `2e9` is out of range (above 1e9 s, 31 years)",
            ),
            ("rusage_user_s", "", "column `rusage_user_s`: no value"),
            ("wall_s", "fast", "column `wall_s`: `fast` is not a number"),
            (
                "peak_memory_bytes",
                "-1",
                "column `peak_memory_bytes`: `-1` is negative; byte counts and counters are never below 0",
            ),
            (
                "io_read_bytes",
                "1.5",
                "column `io_read_bytes`: `1.5` is not a whole number",
            ),
            (
                "psi_memory_some_us",
                "-3",
                "column `psi_memory_some_us`: `-3` is negative; byte counts and counters are never below 0",
            ),
            (
                "psi_io_full_us",
                "0.5",
                "column `psi_io_full_us`: `0.5` is not a whole number",
            ),
            (
                "io_write_bytes",
                "18446744073709551616",
                "column `io_write_bytes`: `18446744073709551616` is out of range (above 2^64 - 1)",
            ),
            (
                "minor_faults",
                "x",
                "column `minor_faults`: `x` is not a whole number",
            ),
            ("max_rss_bytes", "", "column `max_rss_bytes`: no value"),
            (
                "exit_code",
                "-1",
                "column `exit_code`: `-1` is not a whole number from 0 to 255",
            ),
            (
                "exit_code",
                "256",
                "column `exit_code`: `256` is not a whole number from 0 to 255",
            ),
            (
                "signal",
                "0",
                "column `signal`: `0` is not a whole number from 1 to 64",
            ),
            (
                "oom_killed",
                "yes",
                "column `oom_killed`: `yes` is neither `true` nor `false`",
            ),
            (
                "invocation",
                "-1",
                "column `invocation`: `-1` is not an invocation number",
            ),
            (
                "phase",
                "warm",
                "column `phase`: unknown phase `warm` (known: warmup, measure)",
            ),
            ("flags", "odd", "column `flags`: "),
            ("cell", "", "column `cell`: no cell id"),
            (
                "ops",
                "NaN",
                "column `ops`: `NaN` is not a finite number (a metric may be negative",
            ),
            ("ops", "-inf", "column `ops`: `-inf` is not a finite number"),
        ];
        for (column, value, message) in cases {
            fs::write(&path, with_field(&good, 3, column, value)).unwrap();
            let e = read_csv(&path).unwrap_err();
            assert!(
                matches!(e, ResultsError::Invalid { line: 3, .. }),
                "{column}={value}: {e}"
            );
            let text = e.to_string();
            assert!(
                text.starts_with(&format!("`{}` line 3: {message}", path.display())),
                "{column}={value}: {text}"
            );
            assert!(
                text.contains("\n  hint: runs.csv is the record of the run"),
                "{text}"
            );
        }
        // Custom metrics may be negative; optional columns may be empty.
        let fine = with_field(
            &with_field(&good, 2, "ops", "-3.5"),
            3,
            "peak_memory_bytes",
            "",
        );
        fs::write(&path, fine).unwrap();
        let rows = read_csv(&path).unwrap().rows;
        assert_eq!(rows[0].sample.metrics["ops"], -3.5);
        assert_eq!(rows[1].sample.measured.peak_memory_bytes, None);
    }

    /// Regression: duplicated rows entered the statistics (n = 9 for a 6-run plan).
    #[test]
    fn a_duplicate_invocation_is_an_error_naming_both_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let (path, good) = written(tmp.path(), 3);
        let second = good.lines().nth(2).unwrap();
        fs::write(&path, format!("{good}{second}\n")).unwrap();
        let e = read_csv(&path).unwrap_err().to_string();
        assert!(
            e.contains("line 5: a second row for cell `abc123` measure invocation 1 (the first is on line 3: did two processes write this run at once?)"),
            "{e}"
        );
        // The same invocation number in the other phase is another invocation.
        let warmup = second.replace(",measure,", ",warmup,");
        fs::write(&path, format!("{good}{warmup}\n")).unwrap();
        assert_eq!(read_csv(&path).unwrap().rows.len(), 4);
    }

    /// Regression: a torn last row made `report` exit 2 and `--resume` exit 1.
    /// `[run] rerun-disturbed` writes `rerun` rows after disturbed ones; measured invocations
    /// 1 to 4: 1 undisturbed, 2 replaced once, 3 a chain (its rerun disturbed too), 4 disturbed
    /// past the cap (it stands).
    fn with_reruns(dir: &Path) -> PathBuf {
        let path = dir.join("runs.csv");
        let mut w = CsvWriter::open(&path, &["jdk".into()], &[], &["ops".into()]).unwrap();
        let rows: [(u32, f64, &[Flag]); 7] = [
            (1, 1.0, &[]),
            (2, 9.0, &[Flag::Disturbed]),
            (2, 2.0, &[Flag::Rerun]),
            (3, 8.0, &[Flag::Disturbed]),
            (3, 7.0, &[Flag::Disturbed, Flag::Rerun]),
            (3, 3.0, &[Flag::Rerun]),
            (4, 9.5, &[Flag::Disturbed]),
        ];
        for (i, wall, flags) in rows {
            let mut s = sample(i);
            s.measured.wall_s = wall;
            s.flags = flags.to_vec();
            w.append(&s, "jdk=17", &["17".into()]).unwrap();
        }
        path
    }

    #[test]
    fn a_rerun_row_replaces_the_disturbed_row_before_it_and_the_last_of_a_chain_wins() {
        let tmp = tempfile::tempdir().unwrap();
        let path = with_reruns(tmp.path());
        let rows = read_csv(&path).unwrap().rows;
        assert_eq!(rows.len(), 7, "every row is read: runs.csv is append-only");
        let replaces: Vec<Option<u64>> = rows.iter().map(|r| r.replaces).collect();
        assert_eq!(
            replaces,
            [None, None, Some(3), None, Some(5), Some(6), None]
        );
        let replaced: Vec<f64> = rows
            .iter()
            .filter(|r| r.sample.is_replaced())
            .map(|r| r.sample.measured.wall_s)
            .collect();
        assert_eq!(replaced, [9.0, 8.0, 7.0]);
        // The statistics see one row per invocation: the last; a disturbed row nothing
        // replaced still counts.
        let counted: Vec<(u32, f64)> = rows
            .iter()
            .filter(|r| r.sample.counts_toward_statistics())
            .map(|r| (r.sample.index, r.sample.measured.wall_s))
            .collect();
        assert_eq!(counted, [(1, 1.0), (2, 2.0), (3, 3.0), (4, 9.5)]);
        // `replaced` is the reader's: never written back.
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains("replaced"), "{text}");
    }

    #[test]
    fn every_other_duplicate_is_still_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = with_reruns(tmp.path());
        let good = fs::read_to_string(&path).unwrap();
        let last = |flags: &str, phase: &str| {
            let line = good.lines().nth(1).unwrap();
            with_field(
                &format!("{}\n{line}\n", good.lines().next().unwrap()),
                2,
                "flags",
                flags,
            )
            .lines()
            .nth(1)
            .unwrap()
            .replace(",measure,", &format!(",{phase},"))
        };
        // A `rerun` row after a row that was not disturbed (invocation 1).
        fs::write(&path, format!("{good}{}\n", last("rerun", "measure"))).unwrap();
        let e = read_csv(&path).unwrap_err().to_string();
        assert!(
            e.contains("line 9: a second row for cell `abc123` measure invocation 1 (the first is on line 2: did two processes write this run at once?)"),
            "{e}"
        );
        // A row not flagged `rerun` after a disturbed one (invocation 4, line 8).
        let four = good.lines().nth(7).unwrap();
        fs::write(&path, format!("{good}{}\n", four.replace("disturbed", ""))).unwrap();
        let e = read_csv(&path).unwrap_err().to_string();
        assert!(
            e.contains("line 9: a second row for cell `abc123` measure invocation 4 (the first is on line 8, flagged `disturbed`: only a row flagged `rerun` may replace it)"),
            "{e}"
        );
        // The same row twice (a `disturbed` row is not a `rerun` one).
        fs::write(&path, format!("{good}{four}\n")).unwrap();
        assert!(read_csv(&path).is_err());
        // Warm-ups are never rerun: a disturbed warm-up is not replaced.
        let warm = |flags: &str| last(flags, "warmup");
        fs::write(
            &path,
            format!("{good}{}\n{}\n", warm("disturbed"), warm("rerun")),
        )
        .unwrap();
        let e = read_csv(&path).unwrap_err().to_string();
        assert!(
            e.contains("line 10: a second row for cell `abc123` warmup invocation 1"),
            "{e}"
        );
        // Nor may a file claim a row is replaced: that is the reader's to say.
        fs::write(&path, format!("{good}{}\n", last("replaced", "warmup"))).unwrap();
        let e = read_csv(&path).unwrap_err().to_string();
        assert!(e.contains("unknown flag `replaced`"), "{e}");
    }

    #[test]
    fn a_torn_last_row_is_recognised_and_left_out() {
        let tmp = tempfile::tempdir().unwrap();
        let (path, good) = written(tmp.path(), 3);
        let last_line_start = good[..good.len() - 1].rfind('\n').unwrap() as u64 + 1;
        // Cut anywhere inside the last row, newline included: two complete rows and the torn one.
        for cut in [1, 5, 40, good.len() as u64 - last_line_start - 1] {
            fs::write(&path, &good[..(last_line_start + cut) as usize]).unwrap();
            let data = read_csv(&path).unwrap();
            assert_eq!(data.rows.len(), 2, "cut {cut}");
            assert_eq!(
                data.torn,
                Some(Torn {
                    line: 4,
                    offset: last_line_start
                })
            );
        }
        // A last row with its line end but too few fields (the write stopped at a field).
        let short = good[..good.len() - 1]
            .rsplitn(4, ',')
            .last()
            .unwrap()
            .to_string()
            + "\n";
        fs::write(&path, &short).unwrap();
        assert_eq!(read_csv(&path).unwrap().torn.map(|t| t.line), Some(4));
        // The same row in the middle of the file is no interrupted write: an error.
        let middle = format!(
            "{short}{}\n",
            good.lines()
                .nth(3)
                .unwrap()
                .replace(",measure,2,", ",measure,9,")
        );
        fs::write(&path, &middle).unwrap();
        let e = read_csv(&path).unwrap_err().to_string();
        assert!(
            e.contains("line 4: 33 fields where the header has 36"),
            "{e}"
        );
        // A write torn inside a multi-byte character of the reason is still just torn.
        let row = good
            .lines()
            .nth(3)
            .unwrap()
            .replace(",measure,2,", ",measure,3,")
            .replace(",ok,,,", ",suspect,,égal,");
        let partial = &row.as_bytes()[..row.find('é').unwrap() + 1];
        fs::write(&path, [good.as_bytes(), partial].concat()).unwrap();
        let data = read_csv(&path).unwrap();
        assert_eq!((data.rows.len(), data.torn.map(|t| t.line)), (3, Some(5)));
        // Only part of a header: the run died creating the file; an empty file has no rows.
        fs::write(&path, "cell,label,jd").unwrap();
        assert_eq!(
            read_csv(&path).unwrap().torn,
            Some(Torn { line: 1, offset: 0 })
        );
        fs::write(&path, "").unwrap();
        let data = read_csv(&path).unwrap();
        assert!(data.rows.is_empty() && data.torn.is_none());
    }

    #[test]
    fn rows_are_checked_against_the_plan() {
        let tmp = tempfile::tempdir().unwrap();
        let (path, _) = written(tmp.path(), 3);
        let rows = read_csv(&path).unwrap().rows;
        let plan = |p: Option<Planned>| HashMap::from([("abc123", p)]);
        let three = Planned { warmup: 1, runs: 3 };
        check_plan(&path, &rows, &plan(Some(three))).unwrap();
        check_plan(&path, &rows, &plan(None)).unwrap();
        let e = check_plan(&path, &rows, &plan(Some(Planned { warmup: 1, runs: 2 })))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 4: measured invocation 2 of cell `jdk=17` is beyond the plan (2 measured invocations, numbered from 0)"),
            "{e}"
        );
        let e = check_plan(&path, &rows, &HashMap::from([("other", Some(three))]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2: cell `abc123` is not one of this run's cells"),
            "{e}"
        );
    }
}
