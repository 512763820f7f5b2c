//! `results.json`: the document ([`RunResults`], [`CellResult`]), its one writer
//! ([`RunResults::write`]) and its one reader ([`RunResults::read`]), and a run loaded back
//! for reports ([`load`]).
//!
//! runs.csv is the only store of the samples: results.json holds the metadata, the plan and the
//! summaries, never the samples (schema version 2; a version-1 file also has every sample in
//! `cells[].samples`). In memory a [`CellResult`] carries its cell's samples all the same, read
//! from runs.csv, for the summariser and the renderers.
//!
//! - [`RunResults::read`] and [`load`] read the document with [`CellMeta`] cells, which serde
//!   parses without building the samples of a version-1 file: they are skipped, never trusted.
//! - [`load`]: a run read back with `runs.csv` as the source of truth for the samples and
//!   `results.json` only for the metadata (host, plan, seed, statistics options, setup errors,
//!   applied limits, each cell's planned invocations). runs.csv is streamed, validated and
//!   checked against the plan row by row ([`load_checked`]), each row going straight to its
//!   cell, so the samples are held once; rows missing from it are shown as "n of N" everywhere.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{
    Planned, Result, ResultsError, Sample, check_in_plan, io_err, label_of, read_csv_checked,
};
use crate::measurement::{Applied, Measurement};
use crate::plan::{Phase, Plan};
use crate::spec::Order;
use crate::status::{RunStatus, Status};
use rustc_hash::FxHashMap as RowMap;

/// Per-cell part of results.json.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CellResult {
    pub id: String,
    pub label: String,
    pub slug: String,
    pub axes: Vec<(String, serde_json::Value)>,
    /// Limits as read back from the kernel (from the cell's latest invocation).
    pub applied_limits: Option<Applied>,
    /// What the workload was allowed: capabilities kept, seccomp, privileged. `None` only in
    /// results.json files written before benchbox recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<crate::sandbox::security::Effective>,
    pub setup_error: Option<String>,
    /// The invocations the run planned for this cell (after `--runs` and `--warmup`): what
    /// "n of N" counts against. `None` for a cell `--only` left out of every run of the
    /// directory (and in results.json files written before benchbox recorded it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned: Option<Planned>,
    /// Memory use over time (seconds since the exec, bytes) of the cell's last measured
    /// invocation whose status is `ok`; every invocation's is in `logs/<cell>/<phase>-<n>.memory.csv`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub memory_timeline: Vec<(f64, u64)>,
    /// Per service of the cell, its whole-life totals over every instance that ran (start to
    /// stop, not only the workload's windows: those are the `NAME.*` columns of runs.csv).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub services: BTreeMap<String, ServiceTotals>,
    /// The cell's invocations, in runs.csv's order: read from runs.csv ([`load`]), never written
    /// to results.json. Deserializing a version-1 document straight into a `CellResult` fills
    /// them from its `samples` (the renderers' test fixtures are such documents); benchbox's
    /// readers skip them ([`CellMeta`]).
    #[serde(default, skip_serializing)]
    pub samples: Vec<Sample>,
    /// The host of each of `samples` (runs.csv's `host` column), in a run merged from shards;
    /// empty in one machine's run. Never in results.json.
    #[serde(skip)]
    pub sample_hosts: Vec<std::sync::Arc<str>>,
    /// Per metric (`wall_s`, `cpu_s`, `peak_memory_bytes`, custom...), over the measured
    /// invocations whose status is `ok`.
    pub summary: BTreeMap<String, crate::stats::Summary>,
    /// Measured invocations that failed (excluded from the statistics).
    pub failures: usize,
    /// Measured invocations whose status is `suspect` (excluded from the statistics).
    #[serde(default)]
    pub suspect: usize,
    /// Measured invocations flagged `disturbed` that count toward the statistics (see
    /// [`crate::disturbance`]). Absent when none (and in files written before it existed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub disturbed: usize,
    /// Measured invocations replaced by a rerun (`[run] rerun-disturbed`): disturbed rows that
    /// stay in runs.csv, left out of the statistics. Absent when none (and in files written
    /// before it existed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reruns: usize,
    pub warnings: Vec<String>,
    /// `runs = "auto"`: how many measured invocations the cell reached and why it stopped.
    /// Absent for a fixed number of runs, and in results.json files written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaptive: Option<AdaptiveOutcome>,
}

/// Where an adaptive cell (`runs = "auto"`) stopped, and why (see [`crate::stats::stopping`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveOutcome {
    /// Measured invocations run (any status).
    pub runs: u32,
    /// `ci-width`, `max-runs` or `budget`.
    pub stopped: crate::stats::stopping::StopReason,
    /// The relative half-width of the median's 95% interval when it stopped; None when there
    /// were too few ok values for one.
    pub ci_width: Option<f64>,
    /// The `ci-width` asked for.
    pub target: f64,
}

impl AdaptiveOutcome {
    /// "stopped after 23 measured invocations: ci-width (median ± 1.9%, asked ± 2.0%)".
    pub fn describe(&self) -> String {
        let reached = self.ci_width.map_or("no interval yet".to_string(), |w| {
            format!("median ± {:.1}%", 100.0 * w)
        });
        format!(
            "runs = \"auto\": stopped after {} measured invocations by {} ({reached}, asked ± {:.1}%)",
            self.runs,
            self.stopped,
            100.0 * self.target
        )
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl CellResult {
    /// "cell `X` runs with ...: its workload can ..." when the cell's recorded policy loosens
    /// the defaults.
    pub fn security_warning(&self) -> Option<String> {
        self.security.as_ref()?.policy().warning(&self.label)
    }

    /// Measured invocations that failed (any status but `ok` and `suspect`).
    pub fn count_failures(&self) -> usize {
        self.samples
            .iter()
            .filter(|s| s.phase == Phase::Measure && !s.is_replaced() && s.status.is_failure())
            .count()
    }

    /// Measured invocations in runs.csv, whatever their status (a row replaced by a rerun is
    /// not one: its replacement is).
    pub fn count_measured(&self) -> usize {
        self.samples
            .iter()
            .filter(|s| s.phase == Phase::Measure && !s.is_replaced())
            .count()
    }

    /// Measured invocations replaced by a rerun (`[run] rerun-disturbed`).
    pub fn count_replaced(&self) -> usize {
        self.samples
            .iter()
            .filter(|s| s.phase == Phase::Measure && s.is_replaced())
            .count()
    }

    /// "7" when the plan had 7 measured invocations (or is unknown), "5 of 7" when it had more:
    /// `n` is a count of measured invocations (those in runs.csv, or those that count toward the
    /// statistics).
    pub fn n_of_planned(&self, n: usize) -> String {
        match self.planned {
            Some(p) if n < self.expected_runs(p) as usize => {
                format!("{n} of {}", self.expected_runs(p))
            }
            _ => n.to_string(),
        }
    }

    /// Measured invocations flagged `disturbed` that count toward the statistics.
    pub fn count_disturbed(&self) -> usize {
        self.samples
            .iter()
            .filter(|s| {
                s.counts_toward_statistics() && s.flags.contains(&crate::status::Flag::Disturbed)
            })
            .count()
    }

    /// The measured invocations the cell should have: the plan's, or where an adaptive cell
    /// stopped (its plan holds only the cap).
    pub fn expected_runs(&self, planned: Planned) -> u32 {
        self.adaptive
            .map_or(planned.runs, |a| a.runs.min(planned.runs))
    }

    /// Measured invocations whose status is `suspect`.
    pub fn count_suspect(&self) -> usize {
        self.samples
            .iter()
            .filter(|s| {
                s.phase == Phase::Measure && !s.is_replaced() && s.status == Status::Suspect
            })
            .count()
    }
}

/// The whole of results.json, with its cells as `C`: [`CellResult`] (the document as written),
/// or [`CellMeta`] (the metadata of each cell, for [`load`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResults<C = CellResult> {
    pub schema_version: u32,
    pub tool: String,
    pub tool_version: String,
    pub run_id: String,
    pub status: RunStatus,
    /// Why a `failed` run stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub command_line: Vec<String>,
    pub host: crate::host::HostInfo,
    /// How the run was isolated: root or rootless, and with which limits (see
    /// [`crate::mode`]). Absent from files written before benchbox recorded it (runs as root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<crate::mode::Isolation>,
    pub matrix_name: String,
    pub matrix_path: String,
    pub matrix_sha256: String,
    /// The source revision measured (`run --rev`, GitHub's environment or git); absent when
    /// unknown, and from files written before benchbox recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<crate::revision::Revision>,
    pub seed: u64,
    pub order: Order,
    pub stats: crate::stats::StatsOptions,
    /// The expanded plan, as `benchbox plan --json` prints it (but for the order of the keys).
    #[serde(serialize_with = "crate::plan::serialize_sorted")]
    pub plan: Plan,
    pub cells: Vec<C>,
    pub warnings: Vec<String>,
    /// The host's 1-minute load average when the run started and when it finished: a noise
    /// signal `compare` and `history` weigh. Absent in files written before benchbox
    /// recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_average: Option<crate::disturbance::LoadAverage>,
    /// A shard's run (`run --shard`) or a merged run (`merge`); absent from a whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::ShardInfo>,
}

/// A service's whole life, summed over its instances (one per invocation, or one per cell).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceTotals {
    /// How many times it was started and stopped.
    pub instances: u64,
    /// From start to stop, in all.
    pub user_s: f64,
    pub system_s: f64,
    /// The largest of its instances' peaks.
    pub peak_memory_bytes: Option<u64>,
    pub io_read_bytes: Option<u64>,
    pub io_write_bytes: Option<u64>,
    pub throttled_s: f64,
}

impl ServiceTotals {
    /// Add one instance's whole life.
    pub fn add(&mut self, m: &Measurement) {
        let sum = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
        self.instances += 1;
        self.user_s += m.user_s;
        self.system_s += m.system_s;
        self.peak_memory_bytes = self.peak_memory_bytes.max(m.peak_memory_bytes);
        self.io_read_bytes = sum(self.io_read_bytes, m.io_read_bytes);
        self.io_write_bytes = sum(self.io_write_bytes, m.io_write_bytes);
        self.throttled_s += m.throttled_s;
    }
}

/// A cell of results.json as benchbox reads it: everything but the samples, which serde skips
/// without building them (a version-1 file has them all), so reading keeps memory flat.
#[derive(Debug, Clone, Deserialize)]
pub struct CellMeta {
    id: String,
    label: String,
    slug: String,
    axes: Vec<(String, serde_json::Value)>,
    applied_limits: Option<Applied>,
    #[serde(default)]
    security: Option<crate::sandbox::security::Effective>,
    setup_error: Option<String>,
    #[serde(default)]
    planned: Option<Planned>,
    #[serde(default)]
    memory_timeline: Vec<(f64, u64)>,
    #[serde(default)]
    services: BTreeMap<String, ServiceTotals>,
    #[serde(default)]
    summary: BTreeMap<String, crate::stats::Summary>,
    #[serde(default)]
    failures: usize,
    #[serde(default)]
    suspect: usize,
    #[serde(default)]
    disturbed: usize,
    #[serde(default)]
    reruns: usize,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    adaptive: Option<AdaptiveOutcome>,
}

impl From<CellMeta> for CellResult {
    fn from(c: CellMeta) -> CellResult {
        CellResult {
            id: c.id,
            label: c.label,
            slug: c.slug,
            axes: c.axes,
            applied_limits: c.applied_limits,
            security: c.security,
            setup_error: c.setup_error,
            planned: c.planned,
            memory_timeline: c.memory_timeline,
            services: c.services,
            samples: Vec::new(),
            sample_hosts: Vec::new(),
            summary: c.summary,
            failures: c.failures,
            suspect: c.suspect,
            disturbed: c.disturbed,
            reruns: c.reruns,
            warnings: c.warnings,
            adaptive: c.adaptive,
        }
    }
}

impl RunResults {
    /// results.json of the run in `run_dir`, as written: metadata, plan and summaries, without
    /// samples (those of a version-1 file are skipped: runs.csv has them, see [`load`]).
    pub fn read(run_dir: &Path) -> Result<RunResults> {
        let path = run_dir.join("results.json");
        let run = RunResults::<CellMeta>::parse(&path)?.map_err(|e| ResultsError::Csv {
            path,
            message: e.to_string(),
        })?;
        Ok(run.map_cells(CellResult::from))
    }
}

/// The size above which results.json is parsed as a stream (see [`RunResults::parse`]). A
/// version-2 file has no samples and stays far below it.
const STREAM_ABOVE: u64 = 8 << 20;

impl<C: DeserializeOwned> RunResults<C> {
    /// The one reader of results.json: the file at `path`, read into memory at once and parsed
    /// from the slice (much faster than a streaming reader; the buffer is freed before anything
    /// else is read). A file above [`STREAM_ABOVE`] is, in practice, a version-1 file with
    /// every sample in it (about 1 KB each): it is parsed as a stream instead, so its samples,
    /// skipped, are never in memory. An error reading it, or the outcome of parsing it.
    fn parse(path: &Path) -> Result<serde_json::Result<RunResults<C>>> {
        Self::parse_streaming_above(path, STREAM_ABOVE)
    }

    fn parse_streaming_above(
        path: &Path,
        stream_above: u64,
    ) -> Result<serde_json::Result<RunResults<C>>> {
        let mut file = fs::File::open(path).map_err(io_err("read", path))?;
        let len = file.metadata().map_err(io_err("read", path))?.len();
        if len > stream_above {
            let reader = io::BufReader::with_capacity(1 << 20, file);
            return Ok(serde_json::from_reader(reader));
        }
        let mut bytes = Vec::with_capacity(len as usize);
        io::Read::read_to_end(&mut file, &mut bytes).map_err(io_err("read", path))?;
        Ok(serde_json::from_slice(&bytes))
    }
}

impl<C> RunResults<C> {
    /// The same run with its cells made into `D`s.
    fn map_cells<D>(self, f: impl FnMut(C) -> D) -> RunResults<D> {
        RunResults {
            schema_version: self.schema_version,
            tool: self.tool,
            tool_version: self.tool_version,
            run_id: self.run_id,
            status: self.status,
            reason: self.reason,
            started_at: self.started_at,
            finished_at: self.finished_at,
            command_line: self.command_line,
            host: self.host,
            isolation: self.isolation,
            matrix_name: self.matrix_name,
            matrix_path: self.matrix_path,
            matrix_sha256: self.matrix_sha256,
            revision: self.revision,
            seed: self.seed,
            order: self.order,
            stats: self.stats,
            plan: self.plan,
            cells: self.cells.into_iter().map(f).collect(),
            warnings: self.warnings,
            load_average: self.load_average,
            shard: self.shard,
        }
    }
}

impl RunResults {
    /// The one writer of results.json: atomically (a temp file in `run_dir`, synced, mode
    /// 0644, renamed), streamed to the temp file (nothing of it is held in memory at once).
    /// Its samples are not written (runs.csv has them). Returns its size. Runs and
    /// reports write it last, so a `complete` run always has its other files.
    pub fn write(&self, run_dir: &Path) -> Result<u64> {
        let path = run_dir.join("results.json");
        let write_err = |source: io::Error| ResultsError::Write {
            path: path.clone(),
            source,
        };
        let tmp = tempfile::NamedTempFile::new_in(run_dir).map_err(write_err)?;
        let mut out = Counting {
            inner: BufWriter::with_capacity(1 << 20, tmp),
            count: 0,
        };
        serde_json::to_writer_pretty(&mut out, self).map_err(|e| write_err(e.into()))?;
        let size = out.count;
        let tmp = out
            .inner
            .into_inner()
            .map_err(|e| write_err(e.into_error()))?;
        tmp.as_file().sync_data().map_err(write_err)?;
        // tempfile creates 0600; results.json is read by others like every other output (a CI
        // step without sudo, a web server).
        fs::set_permissions(
            tmp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .map_err(write_err)?;
        tmp.persist(&path).map_err(|e| write_err(e.error))?;
        Ok(size)
    }
}

/// A writer that counts the bytes through it.
struct Counting<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The directory of a run given as a directory (or `reports/NAME/latest`) or its results.json.
pub fn run_dir(given: &Path) -> Result<PathBuf> {
    let dir = if given.file_name().is_some_and(|f| f == "results.json") {
        given.parent().unwrap_or(Path::new(".")).to_path_buf()
    } else {
        given.to_path_buf()
    };
    if !dir.join("results.json").is_file() {
        return Err(ResultsError::NotARun {
            path: given.to_path_buf(),
            reason: "it has no results.json".into(),
        });
    }
    Ok(dir)
}

/// A run with its samples read from `runs.csv` (in file order, i.e. invocation order) and its
/// metadata from `results.json`. Summaries are left empty: see `report::summarize`.
pub fn load(dir: &Path) -> Result<RunResults> {
    load_checked(dir).map(|(run, _)| run)
}

/// [`load`], and the warnings of the read: a torn last row of runs.csv, left out (see
/// [`super::Torn`]). runs.csv is streamed, validated ([`read_csv_checked`]) and checked against
/// the run's plan row by row ([`CellSamples`]): a row of a cell the run does not have, or an
/// invocation beyond the cell's planned count, is an error naming the line. A missing runs.csv
/// is an error: the run's raw data is gone.
pub fn load_checked(dir: &Path) -> Result<(RunResults, Vec<String>)> {
    let dir = run_dir(dir)?;
    let meta = RunResults::<CellMeta>::parse(&dir.join("results.json"))?.map_err(|e| {
        ResultsError::NotARun {
            path: dir.clone(),
            reason: format!("results.json does not parse: {e}"),
        }
    })?;
    let csv_path = dir.join("runs.csv");
    if !csv_path.exists() {
        return Err(ResultsError::NoRunsCsv { path: csv_path });
    }
    let mut samples = CellSamples::new(meta, &csv_path);
    let head = read_csv_checked(&csv_path, |row, record, _| {
        samples.add(row, || label_of(record))
    })?;
    let run = samples.into_run();
    let warnings: Vec<String> = head.torn.iter().map(|t| t.warning(&csv_path)).collect();
    Ok((run, warnings))
}

/// A run's cells' samples, gathered row by row in runs.csv's order (read back by [`load`], or
/// as `merge` writes them), each row checked against the run's plan ([`check_in_plan`]) and
/// going straight to its cell: the samples are held once.
pub struct CellSamples {
    /// The run as [`load`] reads its results.json, without samples.
    run: RunResults,
    /// Whether results.json recorded each cell's plan (see [`CellSamples::new`]).
    recorded: bool,
    /// Which cells and invocations the run planned.
    plan: PlanCheck,
    samples: Vec<Vec<Sample>>,
    hosts: Vec<Vec<std::sync::Arc<str>>>,
}

impl CellSamples {
    /// Ready for the rows of `path`, the runs.csv of the run whose results.json reads as
    /// `meta`.
    pub fn new(meta: RunResults<CellMeta>, path: &Path) -> CellSamples {
        // The summaries and counts are rebuilt from runs.csv (`report::summarize`), and the run
        // is now in this version's schema, whatever the file's was (a version-1 file's samples
        // were skipped).
        let mut run = meta.map_cells(|c| CellResult {
            summary: BTreeMap::new(),
            failures: 0,
            suspect: 0,
            disturbed: 0,
            reruns: 0,
            warnings: Vec::new(),
            ..CellResult::from(c)
        });
        // Written before benchbox recorded each cell's plan: from the plan and the command
        // line. Rows are checked against it as if every cell had rows (a cell with rows was
        // part of the run); a cell left without any is then unplanned if `--only` kept it out.
        run.schema_version = super::SCHEMA_VERSION;
        let recorded = run.cells.iter().any(|c| c.planned.is_some());
        if !recorded {
            for cell in &mut run.cells {
                cell.planned = planned_from_plan(&run.plan, &run.command_line, &cell.id, true);
            }
        }
        let plan = PlanCheck {
            path: path.to_path_buf(),
            index: run
                .cells
                .iter()
                .enumerate()
                .map(|(i, c)| (c.id.clone(), i))
                .collect(),
            ids: run.cells.iter().map(|c| c.id.clone()).collect(),
            planned: run.cells.iter().map(|c| c.planned).collect(),
        };
        // Sized from the plan (bounded: results.json is input like any other), so a cell of a
        // million rows is not copied over and over as it grows.
        let samples: Vec<Vec<Sample>> = run
            .cells
            .iter()
            .map(|c| {
                let planned = c.planned.map_or(0, |p| p.warmup as usize + p.runs as usize);
                Vec::with_capacity(planned.min(1 << 20))
            })
            .collect();
        let hosts = vec![Vec::new(); run.cells.len()];
        CellSamples {
            run,
            recorded,
            plan,
            samples,
            hosts,
        }
    }

    /// [`CellSamples::new`] for a run made in memory (`merge`): `run` as [`load`] will read it
    /// back once written to `dir`.
    pub fn of_written(run: &RunResults, dir: &Path) -> Result<CellSamples> {
        let not_read = |e: serde_json::Error| ResultsError::NotARun {
            path: dir.to_path_buf(),
            reason: format!("results.json does not parse: {e}"),
        };
        // Through its JSON, as results.json holds it: what is not written is not read back.
        let json = serde_json::to_vec(run).map_err(not_read)?;
        let meta: RunResults<CellMeta> = serde_json::from_slice(&json).map_err(not_read)?;
        Ok(CellSamples::new(meta, &dir.join("runs.csv")))
    }

    /// The next row, checked against the plan: a row of a cell the run does not have, or an
    /// invocation beyond the cell's planned count, is an error naming the line. `label`: the
    /// row's, for that error.
    pub fn add(&mut self, row: super::CheckedRow, label: impl FnOnce() -> String) -> Result<()> {
        let cell = self.plan.check(row.line, &row.sample, label)?;
        self.push(cell, row);
        Ok(())
    }

    /// What [`CellSamples::add`] checks rows against, to check them elsewhere (`merge`'s
    /// threads), then [`CellSamples::push`] them.
    pub fn plan(&self) -> &PlanCheck {
        &self.plan
    }

    /// The next row, of the run's cell `cell`, as [`PlanCheck::check`] found it.
    pub fn push(&mut self, cell: usize, row: super::CheckedRow) {
        if row.replaces.is_some() {
            Sample::mark_replaced(&mut self.samples[cell], row.sample.phase, row.sample.index);
        }
        self.samples[cell].push(row.sample);
        if let Some(host) = row.host {
            self.hosts[cell].push(host);
        }
    }

    /// The run with every row added; summaries left empty (see `report::summarize`).
    pub fn into_run(self) -> RunResults {
        let mut run = self.run;
        for ((cell, samples), hosts) in run.cells.iter_mut().zip(self.samples).zip(self.hosts) {
            cell.samples = samples;
            cell.samples.shrink_to_fit();
            cell.sample_hosts = hosts;
        }
        if !self.recorded {
            for cell in &mut run.cells {
                if cell.samples.is_empty() {
                    cell.planned = planned_from_plan(&run.plan, &run.command_line, &cell.id, false);
                }
            }
        }
        run
    }
}

/// Which cells a run has and which invocations each planned: rows are checked against it.
#[derive(Debug, Clone)]
pub struct PlanCheck {
    /// The runs.csv named in errors.
    path: PathBuf,
    /// Cell id -> its place in the run's cells.
    index: RowMap<String, usize>,
    /// The cells' ids and plans, in the run's order.
    ids: Vec<String>,
    planned: Vec<Option<Planned>>,
}

impl PlanCheck {
    /// The place among the run's cells of the cell of `sample` (on `line`), or an error naming
    /// the line when the run has no such cell or did not plan that invocation. `label`: the
    /// row's, for that error.
    pub fn check(
        &self,
        line: u64,
        sample: &Sample,
        label: impl FnOnce() -> String,
    ) -> Result<usize> {
        let cell = self.index.get(&*sample.cell_id).copied();
        let planned = cell.map(|c| self.planned[c]);
        check_in_plan(&self.path, line, sample, planned, label)?;
        Ok(cell.expect("check_in_plan refuses a row of a cell the run does not have"))
    }

    /// How many rows the run plans (warm-ups and measured invocations of every cell), at most
    /// 2^22: room to make for them, bounded since results.json is input like any other.
    pub fn planned_rows(&self) -> usize {
        self.planned
            .iter()
            .flatten()
            .map(|p| p.warmup as usize + p.runs as usize)
            .sum::<usize>()
            .min(1 << 22)
    }

    /// How many cells the run has.
    pub fn cells(&self) -> usize {
        self.ids.len()
    }

    /// The id of the run's cell `cell`.
    pub fn id(&self, cell: usize) -> &str {
        &self.ids[cell]
    }

    /// The place among the run's cells of the cell `id`, if the run has it.
    pub fn cell(&self, id: &[u8]) -> Option<usize> {
        std::str::from_utf8(id)
            .ok()
            .and_then(|id| self.index.get(id).copied())
    }
}

/// A cell's planned invocations for a results.json written before benchbox recorded them:
/// `runs` and `warmup` of its plan entry, or `--runs`/`--warmup` when the command line gave
/// them. `None` when the plan does not say, and for a cell without rows in a run restricted
/// with `--only` (it was not part of the run).
fn planned_from_plan(
    plan: &Plan,
    command_line: &[String],
    id: &str,
    has_rows: bool,
) -> Option<Planned> {
    let option = |name: &str| -> Option<u32> {
        let flag = format!("--{name}");
        let prefixed = format!("--{name}=");
        let mut value = None;
        for (i, arg) in command_line.iter().enumerate() {
            if *arg == flag {
                value = command_line.get(i + 1).and_then(|v| v.parse().ok());
            } else if let Some(v) = arg.strip_prefix(&prefixed) {
                value = v.parse().ok();
            }
        }
        value
    };
    if !has_rows && command_line.iter().any(|a| a.starts_with("--only")) {
        return None;
    }
    let cell = plan.cell(id)?;
    Some(Planned {
        warmup: option("warmup").unwrap_or(cell.warmup),
        runs: option("runs").unwrap_or(cell.runs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/example")
    }

    /// A copy of `reports/example`'s results.json and runs.csv in a temp dir.
    fn copy_of_example() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        for f in ["results.json", "runs.csv"] {
            fs::copy(example().join(f), tmp.path().join(f)).unwrap();
        }
        tmp
    }

    #[test]
    fn a_version_1_results_json_with_samples_reads_them_from_runs_csv() {
        let text = fs::read_to_string(example().join("results.json")).unwrap();
        assert!(text.contains("\"schema_version\": 1") && text.contains("\"samples\": ["));
        let tmp = copy_of_example();
        // A sample in runs.csv that results.json does not have: runs.csv is the truth.
        let csv = fs::read_to_string(tmp.path().join("runs.csv")).unwrap();
        let first_wall = csv.lines().nth(1).unwrap().split(',').nth(6).unwrap();
        fs::write(
            tmp.path().join("runs.csv"),
            csv.replacen(first_wall, "7.000000000", 1),
        )
        .unwrap();
        let run = load(tmp.path()).unwrap();
        assert_eq!(run.schema_version, super::super::SCHEMA_VERSION);
        assert_eq!(run.cells.iter().map(|c| c.samples.len()).sum::<usize>(), 33);
        let cell = run.cells.iter().find(|c| c.id == "79ccd99a1e7e").unwrap();
        assert_eq!(cell.samples[0].measured.wall_s, 7.0);
        // The metadata reader skips them.
        let read = RunResults::read(tmp.path()).unwrap();
        assert!(read.cells.iter().all(|c| c.samples.is_empty()));
        assert_eq!(read.cells[0].summary["wall_s"].n, 10, "summaries are read");
    }

    #[test]
    fn a_large_results_json_parses_as_a_stream_to_the_same_run() {
        let path = example().join("results.json");
        let whole = RunResults::<CellMeta>::parse_streaming_above(&path, u64::MAX);
        let streamed = RunResults::<CellMeta>::parse_streaming_above(&path, 0);
        let (whole, streamed) = (whole.unwrap().unwrap(), streamed.unwrap().unwrap());
        assert_eq!(
            serde_json::to_string(&whole.map_cells(CellResult::from)).unwrap(),
            serde_json::to_string(&streamed.map_cells(CellResult::from)).unwrap()
        );
    }

    #[test]
    fn results_json_holds_no_samples_and_does_not_grow_with_them() {
        let tmp = copy_of_example();
        let mut run = load(tmp.path()).unwrap();
        let with = run.write(tmp.path()).unwrap();
        let text = fs::read_to_string(tmp.path().join("results.json")).unwrap();
        assert!(!text.contains("\"samples\""), "{text}");
        assert!(text.contains("\"schema_version\": 2"));
        for cell in &mut run.cells {
            cell.samples.clear();
        }
        assert_eq!(run.write(tmp.path()).unwrap(), with);
        assert_eq!(
            fs::read_to_string(tmp.path().join("results.json")).unwrap(),
            text
        );
        // What it still reads back: the run, its samples from runs.csv.
        let again = load(tmp.path()).unwrap();
        assert_eq!(again.cells[0].samples.len(), 11);
    }
}
