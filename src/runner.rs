//! The runner: turns a validated matrix into measured invocations and results on disk.
//!
//! It never prints: it reports progress as [`Event`]s to a callback (the terminal UI, tests).
//! Order of work: check the host can isolate, select cells (`--only`), open or resume the run
//! directory, run each cell's `setup` once (its writes become a layer under the cell's
//! invocations), then every scheduled invocation in a fresh container; each invocation is
//! appended to `runs.csv` as soon as it ends, and `results.json` is rewritten atomically.
//! A failed invocation (non-zero exit, OOM, timeout, a command that cannot start) is recorded
//! with its status and the run goes on, and so is one whose counters cannot be trusted
//! (`suspect`, see [`status::judge`]); Ctrl-C (the `cancel` flag) tears down the invocation in
//! flight, keeps everything finished, and marks the run `interrupted` so `--resume` can finish
//! it. An error of benchbox's own (a full output disk, a log that cannot be written) is never a
//! workload's status: it stops the run, marked `failed` with the reason ([`RunError::Stopped`]),
//! with the invocation in flight unrecorded, and `--resume` finishes it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::collect::Extractor;
use crate::host;
use crate::image::ResolvedImage;
use crate::lock::RunLock;
use crate::mode::{self, Isolation, Mode};
use crate::plan::{self, Phase, Slot};
use crate::results::{self, CellResult, CsvWriter, RunResults, Sample};
use crate::sandbox::userns::{self, IdMap};
use crate::sandbox::{self, Hierarchy, Invocation, RootSpec, Sandbox};
use crate::spec::{Cell, Matrix, Network, Root, Scratch, axis_value_text};
use crate::stats::StatsOptions;
use crate::status::{self, RunStatus, Status};

/// The PATH a workload gets unless the matrix sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Results go to `<out_dir>/<matrix name>/<run-id>/`.
    pub out_dir: PathBuf,
    pub runs: Option<u32>,
    pub warmup: Option<u32>,
    /// `--only axis=value` filters.
    pub only: Vec<String>,
    /// An existing run directory to complete.
    pub resume: Option<PathBuf>,
    /// Where overlay upper layers live during the run (not on overlayfs).
    pub scratch_base: PathBuf,
    pub stats: StatsOptions,
    pub command_line: Vec<String>,
    /// The matrix's images, resolved and unpacked (see `resolve::resolve`), by reference.
    pub images: BTreeMap<String, ResolvedImage>,
    /// Where the invocations' cgroups go (`--cgroup-parent`; see `sandbox::cgroup::place`);
    /// `None`: the default.
    pub cgroup_parent: Option<PathBuf>,
}

/// Progress of a run, for whoever is watching.
#[derive(Debug)]
pub enum Event<'a> {
    Started {
        run_id: &'a str,
        dir: &'a Path,
        cells: usize,
        invocations: usize,
        already_done: usize,
        seed: u64,
        /// One warning per selected cell whose `[security]` loosens the defaults.
        loosened: &'a [String],
        /// Root or rootless, and with which limits.
        isolation: &'a Isolation,
    },
    SetupStarted {
        cell: &'a Cell,
    },
    SetupFinished {
        cell: &'a Cell,
        error: Option<&'a str>,
    },
    InvocationStarted {
        cell: &'a Cell,
        phase: Phase,
        index: u32,
        position: usize,
        total: usize,
    },
    InvocationFinished {
        cell: &'a Cell,
        sample: &'a Sample,
        position: usize,
        total: usize,
        problem: Option<&'a str>,
    },
    /// Something the user should know that does not stop the run (a torn row of a resumed
    /// runs.csv, cut off to be run again).
    Warning {
        message: &'a str,
    },
    Finished {
        results: &'a RunResults,
        dir: &'a Path,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("this host cannot isolate benchmarks: {0}")]
    Isolation(String),
    #[error("{0}")]
    Image(String),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Results(#[from] results::ResultsError),
    #[error("{0}")]
    Sandbox(#[from] sandbox::SandboxError),
    /// An error of benchbox's own (`cause`) stopped a run under way: see [`Stopped`].
    #[error("{0}")]
    Stopped(Box<Stopped>),
    #[error("{0}")]
    Lock(#[from] crate::lock::LockError),
    #[error("{0}")]
    Report(#[from] crate::report::ReportError),
}

/// A run stopped by an error of benchbox's own (most often an output disk that is full):
/// results.json is marked `failed` with the reason, runs.csv holds every invocation that
/// finished (whole rows only), the invocation in flight is not recorded, and `--resume`
/// finishes the run once the cause is gone. No invocation is blamed for it.
#[derive(Debug)]
pub struct Stopped {
    pub cause: RunError,
    pub dir: PathBuf,
    /// How to finish the run: `benchbox run FILE --resume DIR`.
    pub resume: String,
    /// Why results.json could not be marked `failed` (it should not happen: see
    /// [`results::Reserve`]).
    pub unrecorded: Option<String>,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cause = self.cause.to_string();
        let (first, hints) = cause.split_once('\n').unwrap_or((&cause, ""));
        writeln!(f, "the run stopped on an error of benchbox's own: {first}")?;
        if !hints.is_empty() {
            writeln!(f, "{hints}")?;
        }
        writeln!(
            f,
            "  the workload is not blamed: runs.csv holds every invocation that finished, whole; the one in flight is not recorded and runs again on --resume"
        )?;
        match &self.unrecorded {
            None => writeln!(
                f,
                "  {} is marked `failed`, with this reason",
                self.dir.join("results.json").display()
            )?,
            Some(e) => writeln!(f, "  results.json could not be marked `failed` either: {e}")?,
        }
        if is_disk_full(&self.cause) {
            write!(
                f,
                "  hint: free space on the output disk (`df {}`), then finish the run: {}",
                self.dir.display(),
                self.resume
            )
        } else {
            write!(
                f,
                "  hint: once the cause is fixed, finish the run: {}",
                self.resume
            )
        }
    }
}

/// Whether an error comes down to a full disk (or quota): ENOSPC or EDQUOT.
pub fn is_disk_full(e: &RunError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && matches!(io.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
        {
            return true;
        }
        source = err.source();
    }
    false
}

impl RunError {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Isolation(_) => crate::exit::ISOLATION,
            RunError::Image(_) => crate::exit::IMAGE,
            RunError::Usage(_) => crate::exit::USAGE,
            RunError::Sandbox(sandbox::SandboxError::Cgroup(_)) => crate::exit::ISOLATION,
            RunError::Stopped(stopped) => stopped.cause.exit_code(),
            RunError::Lock(crate::lock::LockError::InUse { .. }) => crate::exit::IN_USE,
            _ => crate::exit::INTERNAL,
        }
    }
}

/// What a finished (or interrupted) run left behind.
#[derive(Debug)]
pub struct RunOutcome {
    pub run_id: String,
    pub dir: PathBuf,
    pub results: RunResults,
    /// Failed measured invocations plus cells whose setup failed.
    pub failures: usize,
    /// Measured invocations whose status is `suspect` (their numbers cannot be trusted).
    pub suspect: usize,
    pub interrupted: bool,
    /// Set when summary.md could not be written (the raw results are complete).
    pub report_problem: Option<String>,
}

/// How a run isolates its invocations on this host (see [`crate::mode`]).
#[derive(Debug)]
pub struct Sandboxing {
    pub mode: Mode,
    /// Where invocations get their cgroups; `None`: rootless without limits.
    pub cgroups: Option<Hierarchy>,
    /// Rootless: the containers' id map.
    pub userns: Option<IdMap>,
    /// For results.json and the reports.
    pub isolation: Isolation,
    /// The host's cgroup version, whether benchbox uses it or not (for results.json).
    pub cgroup_version: Option<sandbox::cgroup::Version>,
    /// What the run warns about before its first invocation (ids squashed to one).
    pub warnings: Vec<String>,
}

/// Check that this host can run isolated invocations of the `selected` cells, and how: as
/// root, or rootless with or without a delegated cgroup. `command_line` is benchbox's own (for
/// the hint that gives it a delegated subtree). A rootless run without a cgroup refuses cells
/// that set limits, before anything runs (exit 3). The groups go under `cgroup_parent` when
/// given (else the default, see `sandbox::cgroup::place`), the way to them made (benchbox may
/// move into a leaf of its own group for it, see `Hierarchy::prepare`).
pub fn preflight(
    matrix: &Matrix,
    selected: &[usize],
    command_line: &[String],
    cgroup_parent: Option<&Path>,
) -> Result<Sandboxing, RunError> {
    let cells: Vec<&Cell> = selected.iter().map(|&i| &matrix.cells[i]).collect();
    let root = nix::unistd::geteuid().is_root();
    if !host::has_overlay(&host::Roots::default()) {
        return Err(RunError::Isolation(
            "the kernel has no overlay filesystem\n  hint: modprobe overlay".into(),
        ));
    }
    let support = sandbox::security::kernel_support();
    if !support.mount_api {
        return Err(RunError::Isolation(
            "the kernel lacks open_tree, move_mount or mount_setattr, which benchbox needs to build a container's mounts inside its own root\n  hint: Linux 5.12 or later".into(),
        ));
    }
    // Some cell runs under the seccomp filter: a kernel without seccomp filters is refused,
    // never silently downgraded; only an explicit `seccomp = "unconfined"` runs there.
    let needs_seccomp = cells
        .iter()
        .any(|c| !c.security.privileged && !c.security.seccomp_unconfined);
    if needs_seccomp && !support.seccomp_filter {
        return Err(RunError::Isolation(
            "the kernel cannot install seccomp filters (CONFIG_SECCOMP_FILTER)\n  hint: use a kernel with seccomp, or accept running without the filter: `[security] seccomp = \"unconfined\"` (recorded in the results)".into(),
        ));
    }
    let (facts, detected) = cgroup_facts(cgroup_parent)?;
    let mode = mode::select(root, &facts).map_err(RunError::Isolation)?;
    let mut warnings = Vec::new();
    let userns = if mode.rootless() {
        let (map, squashed) = usable_id_map()?;
        warnings.extend(squashed);
        Some(map)
    } else {
        None
    };
    let cgroups = detected.filter(|_| mode.has_cgroup());
    if let Some(cgroups) = &cgroups {
        cgroups
            .prepare()
            .map_err(|e| RunError::Isolation(e.to_string()))?;
    }
    let no_cgroup_reason = match &facts {
        _ if mode.has_cgroup() => None,
        mode::Cgroups::NotDelegated { version, reason } => {
            Some(format!("cgroup {version}: {reason}"))
        }
        mode::Cgroups::Unusable(message) => Some(message.clone()),
        mode::Cgroups::Usable(_) => None,
    };
    if !mode.has_cgroup() {
        let limited: Vec<(String, Vec<&'static str>)> = cells
            .iter()
            .map(|c| (c.label.clone(), mode::limit_names(&c.limits)))
            .filter(|(_, limits)| !limits.is_empty())
            .collect();
        let systemd = host::systemd_runs(&host::Roots::default());
        if let Some(refusal) = mode::refuse_limits(&limited, &facts, systemd, command_line) {
            return Err(RunError::Isolation(refusal));
        }
    }
    let cgroup_version = match &facts {
        mode::Cgroups::Usable(v) | mode::Cgroups::NotDelegated { version: v, .. } => Some(*v),
        mode::Cgroups::Unusable(_) => None,
    };
    Ok(Sandboxing {
        mode,
        isolation: Isolation::new(mode, userns.as_ref(), no_cgroup_reason),
        cgroup_version,
        cgroups,
        userns,
        warnings,
    })
}

/// What the cgroup layer says of this host, and the hierarchy when benchbox can create groups
/// (under `cgroup_parent` when given). A parent that cannot be one is a usage error.
pub fn cgroup_facts(
    cgroup_parent: Option<&Path>,
) -> Result<(mode::Cgroups, Option<Hierarchy>), RunError> {
    Ok(match sandbox::cgroup::detect_host_in(cgroup_parent) {
        Ok(h) => (mode::Cgroups::Usable(h.version()), Some(h)),
        Err(sandbox::cgroup::CgroupError::NotDelegated { version, reason }) => {
            (mode::Cgroups::NotDelegated { version, reason }, None)
        }
        Err(e @ sandbox::cgroup::CgroupError::BadParent { .. }) => {
            return Err(RunError::Usage(e.to_string()));
        }
        Err(e) => (mode::Cgroups::Unusable(e.to_string()), None),
    })
}

/// The containers' id map for this user, checked on this kernel: the full map (subordinate
/// ids) when it works, else only the user's own ids (with the warning); an error when this
/// user may not create user namespaces at all.
pub fn usable_id_map() -> Result<(IdMap, Option<String>), RunError> {
    let (map, warning) = userns::for_current_user();
    let full_error = match userns::probe(&map) {
        Ok(()) => return Ok((map, warning)),
        Err(e) if !map.squashed() => e,
        Err(e) => return Err(userns_refused(&e)),
    };
    let own = IdMap::compute(map.uids[0].outside, map.gids[0].outside, &[], &[], None);
    userns::probe(&own).map_err(|e| userns_refused(&e))?;
    Ok((
        own,
        Some(format!(
            "rootless: the subordinate ids could not be mapped ({full_error}); only your own user is mapped in the containers (it is root there): files of other owners show as `nobody`, and a cell cannot switch to another user\n  hint: check that newuidmap and newgidmap are set-uid root (Debian: `apt-get install --reinstall uidmap`) and that /etc/subuid and /etc/subgid give your user a range"
        )),
    ))
}

fn userns_refused(why: &str) -> RunError {
    RunError::Isolation(format!(
        "benchbox runs without root, and this kernel does not let this user create the user namespace a rootless container needs: {why}\n  hint: allow unprivileged user namespaces (`sysctl -w user.max_user_namespaces=15000`; on Ubuntu 23.10+ also `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`), or run benchbox as root"
    ))
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

fn axis_texts(cell: &Cell) -> Vec<String> {
    cell.axes.iter().map(|(_, v)| axis_value_text(v)).collect()
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Every metric name a cell can report: the standard ones and the matrix's own.
pub fn metric_columns(matrix: &Matrix) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for cell in &matrix.cells {
        for m in &cell.metrics {
            if !names.contains(&m.name) {
                names.push(m.name.clone());
            }
        }
    }
    names
}

struct Run {
    /// Held for the whole run: see [`crate::lock`].
    _lock: RunLock,
    cells: Vec<Cell>,
    dir: PathBuf,
    results: RunResults,
    csv: CsvWriter,
    /// Runs the invocations (in no cgroup: rootless without limits).
    sandbox: Sandbox,
    /// Rootless: the containers' user namespace map.
    userns: Option<IdMap>,
    scratch: tempfile::TempDir,
    setup_layers: HashMap<String, Result<Option<PathBuf>, String>>,
    extractors: HashMap<String, Extractor>,
    images: BTreeMap<String, ResolvedImage>,
    last_write: Instant,
    /// Room kept to record how the run ended, even on a full disk.
    reserve: results::Reserve,
    /// The size of results.json when last written, and the samples recorded since.
    json_len: u64,
    unwritten: u64,
}

pub fn run(
    matrix: &Matrix,
    opts: &RunOptions,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(&Event),
) -> Result<RunOutcome, RunError> {
    for reference in crate::resolve::image_refs(matrix) {
        if !opts.images.contains_key(&reference) {
            return Err(RunError::Image(format!(
                "image `{reference}` was not resolved before the run (a bug: resolve::resolve must run first)"
            )));
        }
    }
    let selected =
        plan::filter_only(matrix, &opts.only).map_err(|e| RunError::Usage(e.to_string()))?;
    let sandboxing = preflight(
        matrix,
        &selected,
        &opts.command_line,
        opts.cgroup_parent.as_deref(),
    )?;
    if let Some(cgroups) = &sandboxing.cgroups {
        cgroups.sweep_stale();
    }
    let isolation = sandboxing.isolation.clone();
    // Said before the first invocation: ids squashed to one, and what unpacking an image
    // without root could not keep.
    let preflight_warnings: Vec<String> = sandboxing
        .warnings
        .iter()
        .cloned()
        .chain(
            opts.images
                .iter()
                .flat_map(|(r, i)| i.notes.iter().map(move |note| format!("image {r}: {note}"))),
        )
        .collect();

    let mut cells: Vec<Cell> = matrix.cells.clone();
    for cell in &mut cells {
        if let Some(r) = opts.runs {
            cell.runs = r;
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
            (previous.run_id.clone(), dir.clone(), Some(previous), lock)
        }
        None => {
            let (id, dir) = results::create_run_dir(&opts.out_dir, &matrix.name)?;
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
    let mut samples_by_cell: HashMap<String, Vec<Sample>> = HashMap::new();
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
        // A runs.csv that is no record of this run is not appended to (exit 2).
        let data = results::read_csv(&csv_path)
            .and_then(|data| results::check_plan(&csv_path, &data.rows, &plan).map(|_| data))
            .map_err(|e| RunError::Usage(format!("cannot resume `{}`: {e}", dir.display())))?;
        if let Some(torn) = data.torn {
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
        for row in data.rows {
            let sample = row.sample;
            done.insert((sample.cell_id.clone(), sample.phase, sample.index));
            samples_by_cell
                .entry(sample.cell_id.clone())
                .or_default()
                .push(sample);
        }
    }
    let axes: Vec<String> = matrix.axes.iter().map(|a| a.name.clone()).collect();
    let csv = CsvWriter::open(&csv_path, &axes, &metric_columns(matrix)).map_err(|e| match e {
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
    let host = host::collect(
        &host::Roots::default(),
        sandboxing.cgroup_version.map(|v| v.to_string()),
    );
    let mut is_selected = vec![false; cells.len()];
    for &i in &selected {
        is_selected[i] = true;
    }
    let previous_cells: HashMap<&str, &CellResult> = previous
        .iter()
        .flat_map(|p| p.cells.iter().map(|c| (c.id.as_str(), c)))
        .collect();
    let result_cells = cells
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
                samples: samples_by_cell.remove(&c.id).unwrap_or_default(),
                ..Default::default()
            }
        })
        .collect();
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
            isolation: Some(isolation.clone()),
            matrix_name: matrix.name.clone(),
            matrix_path: matrix.path.display().to_string(),
            matrix_sha256: matrix.source_sha256.clone(),
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
        };
    let mut extractors = HashMap::new();
    for cell in &cells {
        let ex = Extractor::new(
            cell.metrics
                .iter()
                .map(|m| (m.name.as_str(), m.pattern.as_deref())),
        )
        .map_err(|e| {
            RunError::Usage(format!("cell {}: invalid metric pattern: {e}", cell.label))
        })?;
        extractors.insert(cell.id.clone(), ex);
    }
    let mut run = Run {
        _lock: lock,
        cells,
        dir: dir.clone(),
        results,
        csv,
        sandbox: Sandbox::new(sandboxing.cgroups),
        userns: sandboxing.userns,
        scratch,
        setup_layers: HashMap::new(),
        extractors,
        images: opts.images.clone(),
        last_write: Instant::now(),
        reserve: results::Reserve::new(&dir),
        json_len: 0,
        unwritten: 0,
    };
    let resume_command = format!(
        "benchbox run {} --resume {}",
        matrix.path.display(),
        dir.display()
    );
    let opened = run.write_results().and_then(|()| {
        if previous.is_none() {
            results::update_latest(&dir)?;
        }
        Ok(())
    });
    if let Err(e) = opened {
        return Err(run.fail(e, &resume_command));
    }

    let slots = plan::schedule_selected(&run.cells, &selected, matrix.order, seed, &done);
    let loosened: Vec<String> = selected
        .iter()
        .filter_map(|&i| run.cells[i].security.warning(&run.cells[i].label))
        .collect();
    on_event(&Event::Started {
        run_id: &run_id,
        dir: &dir,
        cells: selected.len(),
        invocations: slots.len(),
        already_done: done.len(),
        seed,
        loosened: &loosened,
        isolation: &isolation,
    });
    for message in &preflight_warnings {
        on_event(&Event::Warning { message });
    }
    if let Some(message) = &torn_warning {
        on_event(&Event::Warning { message });
    }

    let total = slots.len();
    let mut run_slots = || -> Result<bool, RunError> {
        for (position, slot) in slots.iter().enumerate() {
            if cancel.load(Ordering::SeqCst) {
                return Ok(true);
            }
            if !run.ensure_setup(slot.cell, cancel, on_event)? {
                if cancel.load(Ordering::SeqCst) {
                    return Ok(true);
                }
                continue;
            }
            if !run.invocation(slot, position, total, cancel, on_event)? {
                return Ok(true);
            }
        }
        Ok(false)
    };
    // An error of benchbox's own (a full output disk, a cgroup that cannot be made) stops the
    // run: recorded as `failed`, never as a failure of the workload.
    let interrupted = match run_slots() {
        Ok(interrupted) => interrupted,
        Err(e) => return Err(run.fail(e, &resume_command)),
    };
    let report_problem = match run.finish(interrupted) {
        Ok(problem) => problem,
        Err(e) => return Err(run.fail(e, &resume_command)),
    };
    let failures = run
        .results
        .cells
        .iter()
        .map(|c| c.failures + usize::from(c.setup_error.is_some()))
        .sum();
    let suspect = run.results.cells.iter().map(|c| c.suspect).sum();
    on_event(&Event::Finished {
        results: &run.results,
        dir: &dir,
    });
    let Run {
        results, scratch, ..
    } = run;
    drop(scratch);
    Ok(RunOutcome {
        run_id,
        dir,
        results,
        failures,
        suspect,
        interrupted,
        report_problem,
    })
}

impl Run {
    /// Rewrite results.json (atomically) and keep the reserve as large as the next one.
    fn write_results(&mut self) -> Result<(), RunError> {
        self.json_len = self.results.write(&self.dir)?;
        self.unwritten = 0;
        self.last_write = Instant::now();
        self.reserve
            .ensure(self.json_len + results::Reserve::SLACK)?;
        Ok(())
    }

    /// Stop the run on `cause`, an error of benchbox's own: wait for the last teardown, drop
    /// the in-flight invocation's output and the reserve (room for what follows), and mark
    /// results.json `failed` with the reason (in place as a last resort).
    fn fail(&mut self, cause: RunError, resume: &str) -> RunError {
        let _ = self.sandbox.wait_for_cleanup();
        results::remove_spools(&self.dir);
        self.reserve.release();
        let reason = cause.to_string();
        self.results.status = RunStatus::Failed;
        self.results.reason = Some(reason.lines().next().unwrap_or_default().to_string());
        self.results.finished_at = Some(now_rfc3339());
        let unrecorded = match self.results.write(&self.dir) {
            Ok(_) => None,
            Err(e) => results::mark_failed_in_place(&self.dir)
                .err()
                .map(|_| e.to_string()),
        };
        let _ = self.csv.sync();
        RunError::Stopped(Box::new(Stopped {
            cause,
            dir: self.dir.clone(),
            resume: resume.to_string(),
            unrecorded,
        }))
    }

    fn cell_result(&mut self, id: &str) -> &mut CellResult {
        self.results
            .cells
            .iter_mut()
            .find(|c| c.id == id)
            .expect("every cell has a result entry")
    }

    fn image(&self, cell: &Cell) -> Option<&ResolvedImage> {
        match &cell.root {
            Root::Image(r) => self.images.get(r),
            _ => None,
        }
    }

    /// The workload's environment: the image's `Env` (if any), a default `PATH` unless one is
    /// set, the matrix's `env` over both, then the `BENCHBOX_*` variables.
    fn env(&self, cell: &Cell, phase: &str, index: u32) -> Vec<(String, String)> {
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        if let Some(image) = self.image(cell) {
            env.extend(image.config.env.iter().cloned());
        }
        env.entry("PATH".into())
            .or_insert_with(|| DEFAULT_PATH.into());
        env.extend(cell.env.clone());
        env.insert("BENCHBOX_CELL".into(), cell.id.clone());
        env.insert("BENCHBOX_CELL_LABEL".into(), cell.label.clone());
        env.insert("BENCHBOX_PHASE".into(), phase.into());
        env.insert("BENCHBOX_INVOCATION".into(), index.to_string());
        env.insert("BENCHBOX_METRICS".into(), sandbox::METRICS_PATH.into());
        env.into_iter().collect()
    }

    fn invocation_for(
        &self,
        cell: &Cell,
        argv: &[String],
        phase: &str,
        index: u32,
        layer: Option<&PathBuf>,
    ) -> Result<Invocation, RunError> {
        let (stdout, stderr) = results::spool_paths(&self.dir)?;
        let image = self.image(cell);
        let root = match &cell.root {
            Root::Host => RootSpec::Host {
                tmp_lower: layer.cloned(),
            },
            Root::Dir(dir) => RootSpec::Overlay {
                lowers: layer.into_iter().cloned().chain([dir.clone()]).collect(),
            },
            Root::Image(r) => {
                let image =
                    image.ok_or_else(|| RunError::Image(format!("image `{r}` is not resolved")))?;
                RootSpec::Overlay {
                    lowers: layer
                        .into_iter()
                        .cloned()
                        .chain(image.layers.iter().cloned())
                        .collect(),
                }
            }
        };
        // The image config supplies what the matrix leaves out: command, workdir, user.
        let argv: Vec<String> = match (argv.is_empty(), image) {
            (true, Some(image)) => image
                .config
                .entrypoint
                .iter()
                .chain(&image.config.cmd)
                .cloned()
                .collect(),
            _ => argv.to_vec(),
        };
        if argv.is_empty() {
            return Err(RunError::Usage(format!(
                "cell {}: no command, and the image has neither Entrypoint nor Cmd\n  hint: set `command` in [run]",
                cell.label
            )));
        }
        let workdir = cell.workdir.clone().or_else(|| {
            image
                .and_then(|i| i.config.working_dir.clone())
                .filter(|w| !w.is_empty())
                .map(PathBuf::from)
        });
        let user = cell.user.clone().or_else(|| {
            image
                .and_then(|i| i.config.user.clone())
                .filter(|u| !u.is_empty())
        });
        Ok(Invocation {
            root,
            volumes: cell
                .volumes
                .iter()
                .map(|v| sandbox::Volume {
                    host: v.host.clone(),
                    target: v.target.clone(),
                    read_only: v.read_only,
                })
                .collect(),
            workdir,
            user,
            env: self.env(cell, phase, index),
            argv,
            hostname: cell.slug.clone(),
            host_network: cell.network == Network::Host,
            limits: sandbox::Limits {
                cpus: cell.limits.cpus.as_ref().map(|c| c.to_string()),
                cpu_quota: cell.limits.cpu_quota,
                memory: cell.limits.memory,
                pids: cell.limits.pids,
            },
            stdout,
            stderr,
            max_log: cell.max_log,
            timeout: cell.timeout,
            memory_interval: cell.memory_interval,
            scratch_base: self.scratch.path().to_path_buf(),
            upper_on_disk: cell.scratch == Scratch::Disk,
            keep_upper: None,
            security: cell.security.clone(),
            userns: self.userns.clone(),
        })
    }

    /// After an invocation: its output, when there is any, moves from the spool files to its
    /// logs. Returns the logs' paths.
    fn keep_logs(
        &self,
        inv: &Invocation,
        cell: &Cell,
        phase: &str,
        index: u32,
    ) -> Result<(PathBuf, PathBuf), RunError> {
        let (out, err) = results::log_paths(&self.dir, &cell.slug, phase, index);
        results::keep_log(&inv.stdout, &out)?;
        results::keep_log(&inv.stderr, &err)?;
        Ok((out, err))
    }

    /// Run the cell's setup once; false when it failed (the cell's invocations are skipped).
    fn ensure_setup(
        &mut self,
        cell_index: usize,
        cancel: &AtomicBool,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<bool, RunError> {
        let cell = self.cells[cell_index].clone();
        if let Some(state) = self.setup_layers.get(&cell.id) {
            return Ok(state.is_ok());
        }
        let Some(setup) = &cell.setup else {
            self.setup_layers.insert(cell.id.clone(), Ok(None));
            return Ok(true);
        };
        on_event(&Event::SetupStarted { cell: &cell });
        let layer = self.scratch.path().join(format!("setup-{}", cell.id));
        let mut inv = self.invocation_for(&cell, setup, "setup", 0, None)?;
        inv.keep_upper = Some(layer.clone());
        let outcome = self.sandbox.run(&inv, cancel);
        if let Err(e @ (sandbox::SandboxError::Setup(_) | sandbox::SandboxError::Exec { .. })) =
            &outcome
        {
            write_spool(&inv.stderr, &format!("benchbox: {e}\n"))?;
        }
        let (_, log_err) = self.keep_logs(&inv, &cell, "setup", 0)?;
        let error = match outcome {
            Ok(o) if o.succeeded() => None,
            Ok(o) if o.interrupted => Some("interrupted".to_string()),
            Ok(o) => Some(format!(
                "setup failed ({}); {}",
                describe_failure(
                    o.measured.exit_code,
                    o.measured.signal,
                    o.measured.oom_killed,
                    o.measured.timed_out
                ),
                if log_err.exists() {
                    format!("see {}", log_err.display())
                } else {
                    "it wrote nothing to stderr".to_string()
                }
            )),
            Err(e @ (sandbox::SandboxError::Setup(_) | sandbox::SandboxError::Exec { .. })) => {
                Some(format!("setup failed: {e}"))
            }
            Err(e) => return Err(e.into()),
        };
        on_event(&Event::SetupFinished {
            cell: &cell,
            error: error.as_deref(),
        });
        let ok = error.is_none();
        if let Some(e) = &error {
            if !cancel.load(Ordering::SeqCst) {
                self.cell_result(&cell.id).setup_error = Some(e.clone());
            }
            self.setup_layers.insert(cell.id.clone(), Err(e.clone()));
            if cancel.load(Ordering::SeqCst) {
                self.setup_layers.remove(&cell.id);
            }
        } else {
            self.setup_layers.insert(cell.id.clone(), Ok(Some(layer)));
        }
        Ok(ok)
    }

    /// One scheduled invocation. Returns false when it was interrupted.
    fn invocation(
        &mut self,
        slot: &Slot,
        position: usize,
        total: usize,
        cancel: &AtomicBool,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<bool, RunError> {
        let cell = self.cells[slot.cell].clone();
        on_event(&Event::InvocationStarted {
            cell: &cell,
            phase: slot.phase,
            index: slot.index,
            position,
            total,
        });
        let layer = self
            .setup_layers
            .get(&cell.id)
            .and_then(|r| r.as_ref().ok().cloned())
            .flatten();
        let phase = slot.phase.to_string();
        let inv = self.invocation_for(&cell, &cell.command, &phase, slot.index, layer.as_ref())?;
        let started_at = now_rfc3339();
        let (outcome, start_error) = match self.sandbox.run(&inv, cancel) {
            Ok(o) => (o, None),
            // The container could not start the command: this invocation is `start-failed`,
            // with no exit code (it never ran, so it never exited) and the why in `reason`.
            Err(e @ (sandbox::SandboxError::Setup(_) | sandbox::SandboxError::Exec { .. })) => {
                let message = e.to_string();
                write_spool(&inv.stderr, &format!("benchbox: {message}\n"))?;
                (sandbox::Outcome::default(), Some(message))
            }
            Err(e) => return Err(e.into()),
        };
        if outcome.interrupted {
            return Ok(false);
        }
        // Metric patterns see what the log kept (at most `max-log`), not the marker line.
        let stdout = fs::read(&inv.stdout).unwrap_or_default();
        let stdout = String::from_utf8_lossy(&stdout);
        let stdout = sandbox::kept_output(&stdout, outcome.output_truncated[0]);
        let (log_out, _) = self.keep_logs(&inv, &cell, &phase, slot.index)?;
        if !outcome.memory_timeline.is_empty() {
            let path = log_out.with_extension("memory.csv");
            let mut text = String::from("t_s,memory_bytes\n");
            for (t, bytes) in &outcome.memory_timeline {
                text.push_str(&format!("{t:.3},{bytes}\n"));
            }
            let written = path
                .parent()
                .map_or(Ok(()), fs::create_dir_all)
                .and_then(|_| fs::write(&path, text));
            written.map_err(|source| results::ResultsError::Io {
                action: "write",
                path,
                source,
            })?;
        }
        let extracted = self.extractors[&cell.id].extract(stdout, &outcome.metrics_file);
        let mut sample = Sample {
            cell_id: cell.id.clone(),
            phase: slot.phase,
            index: slot.index,
            started_at,
            measured: outcome.measured.clone(),
            status: Status::Ok,
            flags: Vec::new(),
            reason: String::new(),
            metrics: extracted.values,
        };
        (sample.status, sample.reason) = match start_error {
            Some(message) => (Status::StartFailed, message),
            None => status::judge(&sample),
        };
        let mut problems = extracted.problems;
        let truncated: Vec<&str> = ["stdout", "stderr"]
            .into_iter()
            .zip(outcome.output_truncated)
            .filter_map(|(name, t)| t.then_some(name))
            .collect();
        if !truncated.is_empty() {
            sample.flags.push(status::Flag::LogTruncated);
            problems.push(format!(
                "{} truncated at max-log ({}): the log keeps the beginning, and metric patterns saw only that",
                truncated.join(" and "),
                inv.max_log
                    .map_or_else(|| "none".into(), crate::spec::units::format_size)
            ));
        }
        self.csv.append(&sample, &cell.label, &axis_texts(&cell))?;
        let problem = (!problems.is_empty()).then(|| problems.join("; "));
        {
            let result = self.cell_result(&cell.id);
            if outcome.applied.cgroup_version.is_some() {
                result.applied_limits = Some(outcome.applied.clone());
            }
            if sample.phase == Phase::Measure {
                if sample.status == Status::Suspect {
                    result.suspect += 1;
                } else if sample.status.is_failure() {
                    result.failures += 1;
                }
            }
            if sample.counts_toward_statistics() && !outcome.memory_timeline.is_empty() {
                result.memory_timeline = outcome.memory_timeline.clone();
            }
            result.samples.push(sample.clone());
        }
        on_event(&Event::InvocationFinished {
            cell: &cell,
            sample: &sample,
            position,
            total,
            problem: problem.as_deref(),
        });
        if self.last_write.elapsed() >= Duration::from_secs(1) {
            self.write_results()?;
        } else {
            self.unwritten += 1;
            self.reserve.ensure(
                self.json_len
                    + self.unwritten * results::Reserve::PER_SAMPLE
                    + results::Reserve::SLACK,
            )?;
        }
        Ok(true)
    }

    /// Sync runs.csv, write the reports, and only then the final status: `complete` (or
    /// `interrupted`) in results.json means the reports exist, so a run killed in between is
    /// still `running` on disk, and `report` or `--resume` finishes it. Returns a problem that
    /// left the run's data intact (a report that could not be written).
    fn finish(&mut self, interrupted: bool) -> Result<Option<String>, RunError> {
        self.sandbox.wait_for_cleanup()?;
        results::remove_spools(&self.dir);
        self.csv.sync()?;
        self.results.finished_at = Some(now_rfc3339());
        // The reserve made sure these last writes find room.
        self.reserve.release();
        // The metadata `load_summarized` reads (setup errors, limits, finished_at); still `running`.
        self.results.write(&self.dir)?;
        let status = if interrupted {
            RunStatus::Interrupted
        } else {
            RunStatus::Complete
        };
        // Summaries, summary.md and the reports come from runs.csv, exactly as `benchbox
        // report` makes them, so a run and a later report of it agree to the byte. They are
        // views of the raw data: failing to write one is a warning, never a lost run.
        let mut problems = Vec::new();
        match crate::rebuild::load_summarized(&self.dir) {
            Ok((mut rebuilt, _)) => {
                rebuilt.status = status;
                self.results = rebuilt;
                let all = crate::render::Format::ALL;
                let written = crate::rebuild::write(&self.dir, &self.results, None, &all)?;
                if let Err(e) = written.summary_md {
                    problems.push(format!("cannot write summary.md: {e}"));
                }
                if let Err(e) = written.reports {
                    problems.push(format!("cannot write the reports: {e}"));
                }
            }
            Err(e) => {
                // Not a rebuild: the run's own summaries, and results.json alone.
                crate::report::summarize(&mut self.results);
                problems.push(format!("cannot rebuild the summaries from runs.csv: {e}"));
                self.results.status = status;
                self.results.write(&self.dir)?;
            }
        }
        Ok((!problems.is_empty()).then(|| {
            format!(
                "{}\n  hint: `benchbox report {}` writes them again from runs.csv",
                problems.join("; "),
                self.dir.display()
            )
        }))
    }
}

pub use crate::status::describe_failure;

/// benchbox's own message into a spool file (a command that could not start); failing to write
/// it is benchbox's failure.
fn write_spool(path: &Path, text: &str) -> Result<(), RunError> {
    fs::write(path, text).map_err(|source| {
        RunError::Results(results::ResultsError::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        })
    })
}
