//! Opening a run: the cells as this run runs them (`--runs`, `--warmup`, canonical host
//! paths), the checks that nothing a workload may write holds what benchbox trusts, and the run
//! directory, new or resumed (locked, its runs.csv read back and appended to), with the
//! results.json the run starts from and the scratch directory of its invocations.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::{RunError, RunOptions, Sandboxing, metric_columns, now_rfc3339};
use crate::collect::Extractor;
use crate::host;
use crate::image::ResolvedImage;
use crate::lock::RunLock;
use crate::plan::{self, Phase};
use crate::results::{self, CellResult, CsvWriter, RunResults};
use crate::sandbox;
use crate::spec::{Cell, Matrix, Root};
use crate::status::RunStatus;

/// A run directory ready for its first invocation.
pub(super) struct Opened {
    /// Held for the whole run: see [`crate::lock`].
    pub lock: RunLock,
    pub run_id: String,
    pub dir: PathBuf,
    /// Every cell of the matrix, with this run's overrides and canonical host paths.
    pub cells: Vec<Cell>,
    /// A resumed run: its directory and `latest` exist already.
    pub resumed: bool,
    pub seed: u64,
    /// Invocations runs.csv already holds (a resumed run), but for disturbed ones still owed
    /// their replacement (`[run] rerun-disturbed`), which run again.
    pub done: HashSet<(String, Phase, u32)>,
    /// The reruns a resumed runs.csv used, and the replacements it is owed.
    pub reruns: super::rerun::Reruns,
    /// A torn last row of a resumed runs.csv, cut off.
    pub torn_warning: Option<String>,
    /// results.json as the run starts (status `running`; the samples are in runs.csv only).
    pub results: RunResults,
    pub csv: CsvWriter,
    /// Where this run's invocations keep their scratch (setup layers, upper layers on disk).
    pub scratch: tempfile::TempDir,
    pub extractors: HashMap<String, Extractor>,
}

/// Open (or resume) the run of `matrix`'s `selected` cells.
pub(super) fn open(
    matrix: &Matrix,
    opts: &RunOptions,
    sandboxing: &Sandboxing,
    selected: &[usize],
) -> Result<Opened, RunError> {
    let mut cells: Vec<Cell> = matrix.cells.clone();
    for cell in &mut cells {
        if let Some(r) = opts.runs {
            cell.runs = r;
            // `--runs N` asks for N: a cell's `runs = "auto"` gives way to it.
            cell.adaptive = None;
        }
        if let Some(w) = opts.warmup {
            cell.warmup = w;
        }
        // Host paths that containers mount, canonical from here on: the sandbox then opens them
        // without following any symlink, so a workload that swaps one for a symlink (through
        // a read-write volume) cannot point a later container at the host.
        if let Root::Dir(dir) = &mut cell.root {
            *dir = canonical(dir)?;
        }
        for volume in &mut cell.volumes {
            volume.host = canonical(&volume.host)?;
        }
    }

    // Before anything is created: nothing a workload may write may hold what benchbox trusts.
    refuse_writable_volumes_over(
        &cells,
        &opts.images,
        &[
            canonical_prefix(&opts.out_dir),
            canonical_prefix(&opts.scratch_base),
        ],
    )?;

    // The run directory: new, or the one being resumed (with what it already holds).
    // Locked before anything in it is read: a second writer (a `--resume` of a run still
    // going) is refused instead of running its invocations twice.
    let (run_id, dir, previous, lock) = match &opts.resume {
        Some(dir) => {
            if !dir.join("results.json").is_file() {
                return Err(RunError::Usage(format!(
                    "cannot resume `{}`: it is not a run directory (no results.json)\n  hint: pass a run directory such as reports/NAME/latest",
                    dir.display()
                )));
            }
            let lock = RunLock::acquire(dir, "run")?;
            let previous = RunResults::read(dir).map_err(|e| {
                RunError::Usage(format!("cannot resume `{}`: {e}\n  hint: pass a run directory such as reports/NAME/latest", dir.display()))
            })?;
            if previous.matrix_sha256 != matrix.source_sha256 {
                return Err(RunError::Usage(format!(
                    "cannot resume `{}`: it was run from a different version of `{}` (sha256 {} vs {})\n  hint: start a new run, or restore the matrix file",
                    dir.display(),
                    matrix.path.display(),
                    &previous.matrix_sha256[..12.min(previous.matrix_sha256.len())],
                    &matrix.source_sha256[..12]
                )));
            }
            // A shard resumes as the shard it was: `--shard` may repeat it, never change it.
            let was = previous
                .shard
                .as_ref()
                .and_then(|s| Some((s.index?, s.count, s.by)));
            let asked = opts.shard.map(|(s, by)| (s.index, s.count, by));
            if asked.is_some() && asked != was {
                return Err(RunError::Usage(format!(
                    "cannot resume `{}` as shard {}: it was {}\n  hint: resume it without --shard, or with the shard it was",
                    dir.display(),
                    opts.shard
                        .map(|(s, by)| format!("{s} by {by}"))
                        .unwrap_or_default(),
                    was.map_or("not a shard".to_string(), |(k, n, by)| format!(
                        "shard {k}/{n} by {by}"
                    ))
                )));
            }
            (previous.run_id.clone(), dir.clone(), Some(previous), lock)
        }
        None => {
            // A shard's own directory: shards sharing an output directory never collide.
            let suffix = opts
                .shard
                .map_or(String::new(), |(s, _)| format!("-shard-{}", s.index));
            let (id, dir) = results::create_run_dir_suffixed(&opts.out_dir, &matrix.name, &suffix)?;
            let lock = RunLock::acquire(&dir, "run")?;
            (id, dir, None, lock)
        }
    };
    let seed = previous
        .as_ref()
        .map(|p| p.seed)
        .or(matrix.seed)
        .unwrap_or_else(rand::random);
    let mut done: HashSet<(String, Phase, u32)> = HashSet::new();
    let mut reruns = super::rerun::Reruns::default();
    let csv_path = dir.join("runs.csv");
    let mut torn_warning = None;
    if let Some(previous) = &previous
        && csv_path.exists()
    {
        let plan: HashMap<&str, Option<results::Planned>> = previous
            .cells
            .iter()
            .map(|c| (c.id.as_str(), c.planned))
            .collect();
        // A runs.csv that is no record of this run is not appended to (exit 2). Only which
        // invocations are done is kept: the samples stay in runs.csv.
        let head = results::read_csv_each(&csv_path, |row| {
            results::check_row(&csv_path, &row, &plan)?;
            let s = row.sample;
            reruns.resumed_row(&s);
            done.insert((s.cell_id.to_string(), s.phase, s.index));
            Ok(())
        })
        .map_err(|e| RunError::Usage(format!("cannot resume `{}`: {e}", dir.display())))?;
        if let Some(torn) = head.torn {
            // An interrupted write: cut it off; its invocation is not done, so it runs again.
            let cut = fs::OpenOptions::new()
                .write(true)
                .open(&csv_path)
                .and_then(|f| f.set_len(torn.offset));
            cut.map_err(|source| results::ResultsError::Io {
                action: "cut the torn last row of",
                path: csv_path.clone(),
                source,
            })?;
            torn_warning = Some(format!(
                "{}; it was cut off, and that invocation runs again",
                torn.describe(&csv_path)
            ));
        }
        // Interrupted between a disturbed row and its replacement: the replacement runs now.
        for (id, index) in reruns.owed(&cells) {
            done.remove(&(id, Phase::Measure, index));
        }
    }
    let axes: Vec<String> = matrix.axes.iter().map(|a| a.name.clone()).collect();
    let csv = CsvWriter::open(
        &csv_path,
        &axes,
        &sandboxing.counters,
        &metric_columns(matrix),
    )
    .map_err(|e| match e {
        // An older benchbox's runs.csv: refused rather than appended to with other columns.
        results::ResultsError::OldLayout { .. } => {
            RunError::Usage(format!("cannot resume `{}`: {e}", dir.display()))
        }
        e => e.into(),
    })?;

    fs::create_dir_all(&opts.scratch_base).map_err(|source| {
        RunError::Sandbox(sandbox::SandboxError::Io {
            action: "create",
            path: opts.scratch_base.clone(),
            source,
        })
    })?;
    let scratch_base = canonical(&opts.scratch_base)?;
    sweep_stale_scratch(&scratch_base);
    let scratch = tempfile::Builder::new()
        .prefix(&format!("benchbox-run-{}-", std::process::id()))
        .tempdir_in(&scratch_base)
        .map_err(|source| {
            RunError::Sandbox(sandbox::SandboxError::Io {
                action: "create scratch in",
                path: opts.scratch_base.clone(),
                source,
            })
        })?;
    let host = host::HostInfo {
        noise: sandboxing.noise.clone(),
        ..host::collect(
            &host::Roots::default(),
            sandboxing.cgroup_version.map(|v| v.to_string()),
        )
    };
    let mut is_selected = vec![false; cells.len()];
    for &i in selected {
        is_selected[i] = true;
    }
    let previous_cells: HashMap<&str, &CellResult> = previous
        .iter()
        .flat_map(|p| p.cells.iter().map(|c| (c.id.as_str(), c)))
        .collect();
    let result_cells: Vec<CellResult> = cells
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let previous_cell = previous_cells.get(c.id.as_str()).copied();
            CellResult {
                id: c.id.clone(),
                label: c.label.clone(),
                slug: c.slug.clone(),
                axes: c.axes.clone(),
                applied_limits: previous_cell.and_then(|pc| pc.applied_limits.clone()),
                // The selected cells' invocations, never fewer than an earlier run of this
                // directory planned (its rows stay); the others keep what they had.
                planned: if is_selected[i] {
                    let before = previous_cell.and_then(|pc| pc.planned).unwrap_or_default();
                    Some(results::Planned {
                        warmup: c.warmup.max(before.warmup),
                        runs: c.runs.max(before.runs),
                    })
                } else {
                    previous_cell.and_then(|pc| pc.planned)
                },
                security: Some(c.security.effective()),
                // An adaptive cell that stopped stays stopped on --resume.
                adaptive: previous_cell.and_then(|pc| pc.adaptive),
                ..Default::default()
            }
        })
        .collect();
    // A shard records the plan it slices (every selected cell with its planned invocations,
    // before slicing: the same in every shard) and, by cell, plans only its own cells.
    let shard =
        match &previous {
            Some(p) => p.shard.clone(),
            None => opts.shard.map(|(s, by)| crate::shard::ShardInfo {
                count: s.count,
                by,
                plan_hash: plan::plan_hash(result_cells.iter().filter_map(|c: &CellResult| {
                    c.planned.map(|p| (c.id.as_str(), p.warmup, p.runs))
                })),
                index: Some(s.index),
                merged: Vec::new(),
            }),
        };
    let mut result_cells = result_cells;
    if previous.is_none()
        && let Some((s, plan::ShardBy::Cell)) = opts.shard
    {
        for (position, &i) in selected.iter().enumerate() {
            if !s.keeps(plan::ShardBy::Cell, position, Phase::Measure, 0) {
                result_cells[i].planned = None;
            }
        }
    }
    let results =
        RunResults {
            schema_version: results::SCHEMA_VERSION,
            tool: "benchbox".into(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            run_id: run_id.clone(),
            status: RunStatus::Running,
            started_at: previous
                .as_ref()
                .map_or_else(now_rfc3339, |p| p.started_at.clone()),
            finished_at: None,
            reason: None,
            command_line: opts.command_line.clone(),
            host,
            isolation: Some(sandboxing.isolation.clone()),
            matrix_name: matrix.name.clone(),
            matrix_path: matrix.path.display().to_string(),
            matrix_sha256: matrix.source_sha256.clone(),
            // The revision the run started at: a resume at another commit does not relabel it.
            revision: match &previous {
                Some(p) => p.revision.clone(),
                None => opts.revision.clone(),
            },
            seed,
            order: matrix.order,
            stats: opts.stats,
            plan: plan::Plan::of(matrix),
            cells: result_cells,
            warnings: matrix
                .warnings
                .iter()
                .cloned()
                // What unpacking an image without root could not keep (owners, device nodes).
                .chain(opts.images.iter().flat_map(|(r, i)| {
                    i.notes.iter().map(move |note| format!("image {r}: {note}"))
                }))
                .collect(),
            // The load when the run first started (a resume keeps it); the end's at `finish`.
            load_average: Some(crate::disturbance::LoadAverage {
                start: match &previous {
                    Some(p) => p.load_average.and_then(|l| l.start),
                    None => crate::host::load_average(&crate::host::Roots::default()),
                },
                end: None,
            }),
            shard,
        };
    let mut extractors = HashMap::new();
    for cell in &cells {
        let ex = Extractor::for_metrics(&cell.metrics).map_err(|e| {
            RunError::Usage(format!("cell {}: invalid metric pattern: {e}", cell.label))
        })?;
        extractors.insert(cell.id.clone(), ex);
    }
    Ok(Opened {
        lock,
        run_id,
        dir,
        cells,
        resumed: previous.is_some(),
        seed,
        done,
        reruns,
        torn_warning,
        results,
        csv,
        scratch,
        extractors,
    })
}

/// A read-write volume must not contain what benchbox trusts: the run directory (the workload
/// could rewrite earlier invocations' results, or swap the log spools for symlinks to host
/// files that benchbox, as root, then writes), the scratch directory, a rootfs or an image's
/// layers (the lower layers of later invocations, and the cache other runs share). All paths
/// are canonical.
fn refuse_writable_volumes_over(
    cells: &[Cell],
    images: &BTreeMap<String, ResolvedImage>,
    run_paths: &[PathBuf],
) -> Result<(), RunError> {
    for cell in cells {
        let mut protected: Vec<(&Path, &str)> = run_paths
            .iter()
            .map(|p| (p.as_path(), "benchbox's run or scratch directory"))
            .collect();
        match &cell.root {
            Root::Dir(dir) => protected.push((dir, "the cell's rootfs")),
            Root::Image(r) => {
                if let Some(image) = images.get(r) {
                    protected.extend(
                        image
                            .layers
                            .iter()
                            .map(|l| (l.as_path(), "the image cache")),
                    );
                }
            }
            Root::Host => {}
        }
        for volume in cell.volumes.iter().filter(|v| !v.read_only) {
            if let Some((path, what)) = protected.iter().find(|(p, _)| p.starts_with(&volume.host))
            {
                return Err(RunError::Usage(format!(
                    "cell {}: the read-write volume `{}` contains {what} (`{}`): its workload could change what benchbox reads and writes\n  hint: mount it read-only (`:ro`), or keep results and scratch elsewhere (--out, --scratch)",
                    cell.label,
                    volume.host.display(),
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

/// `path` canonical as far as it exists, the rest appended as written (for a directory that
/// is yet to be made).
fn canonical_prefix(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(found) = fs::canonicalize(existing) {
            return rest.iter().rev().fold(found, |p, c| p.join(c));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

/// `path` with every symlink and `..` resolved (see the loop over cells in [`run`]).
fn canonical(path: &Path) -> Result<PathBuf, RunError> {
    fs::canonicalize(path).map_err(|source| {
        RunError::Sandbox(sandbox::SandboxError::Io {
            action: "resolve",
            path: path.to_path_buf(),
            source,
        })
    })
}

/// Remove scratch directories of benchbox processes that died without cleaning up.
fn sweep_stale_scratch(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("benchbox-run-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}
