//! The summariser: every cell's summaries, warnings and failure counts recomputed from its
//! samples with the run's recorded [`StatsOptions`] ([`summarize`], [`summarize_one`],
//! [`summarize_samples`]); [`crate::rebuild`] runs it on a run read back from runs.csv, and
//! the renderers ([`crate::render`]) show what it computed. (Also here for now: the run
//! loader, [`load`] and [`load_checked`]: `runs.csv` is the source of truth for the samples and
//! `results.json` only for the metadata; rows missing from runs.csv are shown as "n of N"
//! everywhere, by the warning [`missing_warning`] and the `n` columns of every table.)
//!
//! Methods and decisions:
//! - Only invocations with status `ok` enter the statistics; failed and suspect ones are left
//!   out with a warning naming how many and why.
//! - Bootstrap cost: a resample costs O(n), so 10,000 resamples of a 5,000-invocation cell for
//!   each of its ~7 metrics takes seconds. Cells with many invocations get fewer resamples,
//!   `max(MIN_RESAMPLES, BOOTSTRAP_BUDGET / n)` (never more than recorded, [`resamples_for`]):
//!   at such n the interval is narrow and the Monte Carlo error of its endpoints stays small
//!   next to it. The cell gets a warning saying so. Cells are summarized in parallel
//!   (deterministically: each cell's result depends only on its samples and the seed).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::metrics::{self, is_headline};
use crate::plan::Phase;
use crate::reference::ReferenceError;
use crate::results::{self, CellResult, Planned, ResultsError, RunResults, Sample};
use crate::stats::{self, StatsOptions};
use crate::status::{self, Status};

/// Bootstrap work per cell and metric, in resampled values: cells with more invocations than
/// `BOOTSTRAP_BUDGET / resamples` get proportionally fewer resamples.
pub const BOOTSTRAP_BUDGET: usize = 1_000_000;
/// The fewest resamples [`BOOTSTRAP_BUDGET`] may scale a cell down to.
pub const MIN_RESAMPLES: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
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
    #[error("{0}")]
    Results(#[from] ResultsError),
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
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

// ---------------------------------------------------------------------------
// Loading and rebuilding.

/// `results.json` without the samples and summaries: they are rebuilt from `runs.csv`. Serde
/// skips the unknown `samples` arrays without building them, which keeps memory flat.
#[derive(Deserialize)]
struct Meta {
    schema_version: u32,
    tool: String,
    tool_version: String,
    run_id: String,
    status: String,
    #[serde(default)]
    reason: Option<String>,
    started_at: String,
    finished_at: Option<String>,
    command_line: Vec<String>,
    host: crate::host::HostInfo,
    #[serde(default)]
    isolation: Option<crate::mode::Isolation>,
    matrix_name: String,
    matrix_path: String,
    matrix_sha256: String,
    seed: u64,
    order: String,
    stats: StatsOptions,
    plan: serde_json::Value,
    cells: Vec<CellMeta>,
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct CellMeta {
    id: String,
    label: String,
    slug: String,
    axes: Vec<(String, serde_json::Value)>,
    applied_limits: Option<crate::measurement::Applied>,
    #[serde(default)]
    security: Option<crate::sandbox::security::Effective>,
    setup_error: Option<String>,
    #[serde(default)]
    planned: Option<Planned>,
    #[serde(default)]
    memory_timeline: Vec<(f64, u64)>,
}

/// The directory of a run given as a directory (or `reports/NAME/latest`) or its results.json.
pub fn run_dir(given: &Path) -> Result<PathBuf, ReportError> {
    let dir = if given.file_name().is_some_and(|f| f == "results.json") {
        given.parent().unwrap_or(Path::new(".")).to_path_buf()
    } else {
        given.to_path_buf()
    };
    if !dir.join("results.json").is_file() {
        return Err(ReportError::NotARun {
            path: given.to_path_buf(),
            reason: "it has no results.json".into(),
        });
    }
    Ok(dir)
}

/// A run with its samples read from `runs.csv` (in file order, i.e. invocation order) and its
/// metadata from `results.json`. Summaries are left empty: see [`summarize`].
pub fn load(dir: &Path) -> Result<RunResults, ReportError> {
    load_checked(dir).map(|(run, _)| run)
}

/// [`load`], and the warnings of the read: a torn last row of runs.csv, left out (see
/// [`results::Torn`]). runs.csv is validated ([`results::read_csv`]) and checked against the
/// run's plan: a row of a cell the run does not have, or an invocation beyond the cell's
/// planned count, is an error naming the line. A missing runs.csv is an error: the run's raw
/// data is gone.
pub fn load_checked(dir: &Path) -> Result<(RunResults, Vec<String>), ReportError> {
    let dir = run_dir(dir)?;
    let json_path = dir.join("results.json");
    // One read into memory and a parse from the slice: much faster than a streaming reader, and
    // the buffer is freed before the CSV is read.
    let meta: Meta = {
        let bytes = fs::read(&json_path).map_err(|source| ResultsError::Io {
            action: "read",
            path: json_path.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|e| ReportError::NotARun {
            path: dir.clone(),
            reason: format!("results.json does not parse: {e}"),
        })?
    };
    let csv_path = dir.join("runs.csv");
    if !csv_path.exists() {
        return Err(ReportError::NoRunsCsv { path: csv_path });
    }
    let data = results::read_csv(&csv_path)?;
    let warnings: Vec<String> = data.torn.iter().map(|t| t.warning(&csv_path)).collect();
    let mut cells: Vec<CellResult> = meta
        .cells
        .into_iter()
        .map(|c| CellResult {
            id: c.id,
            label: c.label,
            slug: c.slug,
            axes: c.axes,
            applied_limits: c.applied_limits,
            security: c.security,
            setup_error: c.setup_error,
            planned: c.planned,
            memory_timeline: c.memory_timeline,
            ..Default::default()
        })
        .collect();
    if cells.iter().all(|c| c.planned.is_none()) {
        // Written before benchbox recorded each cell's plan: from the plan and the command line.
        let with_rows: HashSet<&str> = data
            .rows
            .iter()
            .map(|r| r.sample.cell_id.as_str())
            .collect();
        for cell in &mut cells {
            cell.planned = planned_from_plan(
                &meta.plan,
                &meta.command_line,
                &cell.id,
                with_rows.contains(cell.id.as_str()),
            );
        }
    }
    let plan: HashMap<&str, Option<Planned>> =
        cells.iter().map(|c| (c.id.as_str(), c.planned)).collect();
    results::check_plan(&csv_path, &data.rows, &plan)?;
    let index: HashMap<String, usize> = cells
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.clone(), i))
        .collect();
    // Rows are moved out from the back and the row buffer shrunk as it empties, so the rows and
    // the cells' sample vectors never both hold the whole run (that alone would be ~25 MB for
    // 100,000 rows). Each cell's samples are put back into file order afterwards.
    let mut rows = data.rows;
    let mut moved = 0usize;
    while let Some(row) = rows.pop() {
        moved += 1;
        if moved.is_multiple_of(8192) {
            rows.shrink_to_fit();
        }
        // Every row's cell is known: check_plan said so.
        let i = index[&row.sample.cell_id];
        cells[i].samples.push(row.sample);
    }
    for cell in &mut cells {
        cell.samples.reverse();
    }
    let run = RunResults {
        schema_version: meta.schema_version,
        tool: meta.tool,
        tool_version: meta.tool_version,
        run_id: meta.run_id,
        status: meta.status,
        started_at: meta.started_at,
        finished_at: meta.finished_at,
        reason: meta.reason,
        command_line: meta.command_line,
        host: meta.host,
        isolation: meta.isolation,
        matrix_name: meta.matrix_name,
        matrix_path: meta.matrix_path,
        matrix_sha256: meta.matrix_sha256,
        seed: meta.seed,
        order: meta.order,
        stats: meta.stats,
        plan: meta.plan,
        cells,
        warnings: meta.warnings,
    };
    Ok((run, warnings))
}

/// A cell's planned invocations for a results.json written before benchbox recorded them:
/// `runs` and `warmup` of its plan entry, or `--runs`/`--warmup` when the command line gave
/// them. `None` when the plan does not say, and for a cell without rows in a run restricted
/// with `--only` (it was not part of the run).
fn planned_from_plan(
    plan: &serde_json::Value,
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
    let cell = plan["cells"]
        .as_array()?
        .iter()
        .find(|c| c["id"].as_str() == Some(id))?;
    let field = |name: &str| -> Option<u32> {
        option(name).or_else(|| cell[name].as_u64().and_then(|n| u32::try_from(n).ok()))
    };
    Some(Planned {
        warmup: field("warmup")?,
        runs: field("runs")?,
    })
}

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
pub fn missing_warning(cell: &CellResult) -> Option<String> {
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

/// Write `results.json` (atomically, mode 0644). Runs and reports write it last, so a
/// `complete` run always has its other files.
pub fn write_results(dir: &Path, run: &RunResults) -> Result<PathBuf, ReportError> {
    let path = dir.join("results.json");
    write_json_atomic(&path, run)?;
    Ok(path)
}

/// Like [`RunResults::write`] (same bytes), but streamed to the temp file: the pretty JSON of
/// 100,000 samples is tens of MB, and holding it in memory would double the peak.
fn write_json_atomic(path: &Path, run: &RunResults) -> Result<(), ReportError> {
    let write_err = |source: io::Error| ReportError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(write_err)?;
    let mut out = BufWriter::with_capacity(1 << 20, tmp);
    serde_json::to_writer_pretty(&mut out, run).map_err(|e| write_err(e.into()))?;
    let tmp = out.into_inner().map_err(|e| write_err(e.into_error()))?;
    tmp.as_file().sync_data().map_err(write_err)?;
    // tempfile creates 0600; results.json is read by others like every other output (a CI
    // step without sudo, a web server).
    fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .map_err(write_err)?;
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    Ok(())
}

/// A run directory for the tests of this module, its property test, the rebuild and summary.md.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    use crate::results::CsvWriter;
    use crate::sandbox::security::Policy;

    pub fn sample(cell: &str, phase: Phase, i: u32, wall: f64, ops: f64) -> Sample {
        Sample {
            cell_id: cell.into(),
            phase,
            index: i,
            started_at: "2026-01-01T00:00:00.000Z".into(),
            measured: crate::measurement::Measurement {
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
                rusage: crate::measurement::Rusage {
                    max_rss_bytes: 8 << 20,
                    ..Default::default()
                },
                throttled_s: 0.0,
                pressure: Default::default(),
            },
            status: crate::status::Status::Ok,
            flags: Vec::new(),
            reason: String::new(),
            metrics: [("ops".to_string(), ops)].into(),
        }
    }

    /// `runs.csv` without the rows whose line (1 = header) `drop` accepts.
    pub fn drop_lines(dir: &Path, drop: impl Fn(usize, &str) -> bool) {
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
                samples[10].measured.exit_code = Some(1);
                (samples[10].status, samples[10].reason) = crate::status::judge(&samples[10]);
            }
            for s in &samples {
                csv.append(s, &label, &[jdk.to_string(), gc.to_string()])
                    .unwrap();
            }
            plan_cells.push(serde_json::json!({"id": id, "runs": 10, "warmup": 1,
                "metrics": [{"name": "ops", "unit": "ops/s", "better": "higher", "pattern": null}]}));
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
            status: "complete".into(),
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
            order: "interleaved".into(),
            stats: StatsOptions {
                resamples: 1000,
                ..Default::default()
            },
            plan: serde_json::json!({"description": "two JDKs, two collectors",
                "axes": [{"name": "jdk", "values": ["17", "21"]}, {"name": "gc", "values": ["G1", "Par"]}],
                "cells": plan_cells}),
            cells,
            warnings: vec![],
        };
        run.write(dir).unwrap();
        run
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::{drop_lines, write_run};
    use super::*;

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
                            for v in [s.measured.wall_s, s.measured.user_s, s.measured.system_s, s.measured.throttled_s, s.measured.rusage.user_s, s.measured.rusage.system_s] {
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
