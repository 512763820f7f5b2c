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
//!
//! The loop here only schedules, executes and emits: each invocation goes to an [`Executor`]
//! (the [`Sandbox`] of this host, or a fake in tests: see [`run_with`]), and each [`Event`]
//! goes first to the recorder (`record.rs`, which alone writes the run directory) and then to
//! the caller. `preflight.rs` checks the host, `open.rs` opens the run directory,
//! `invocation.rs` builds what the executor runs, `rerun.rs` says which disturbed invocations
//! run again in place (`[run] rerun-disturbed`).

mod adaptive;
mod executor;
mod invocation;
mod open;
mod preflight;
mod record;
mod rerun;
mod services;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::collect::Extractor;
use crate::image::ResolvedImage;
use crate::lock::RunLock;
use crate::mode::Isolation;
use crate::plan::{self, Phase, Slot};
use crate::results::{self, RunResults, Sample};
use crate::sandbox::{self, Invocation, Outcome, Sandbox};
use crate::spec::{Cell, Lifetime, Matrix};
use crate::stats::StatsOptions;
use crate::status::{self, Status};

pub use executor::Executor;
pub use preflight::{Sandboxing, cgroup_facts, preflight, usable_id_map};

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
    /// The source revision measured (see [`crate::revision`]); a resumed run keeps its own.
    pub revision: Option<crate::revision::Revision>,
    /// Run only this shard's slice of the plan (`--shard K/N`, `--shard-by`); a resumed run
    /// keeps its own.
    pub shard: Option<(plan::Shard, plan::ShardBy)>,
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
        /// The source revision measured, when known.
        revision: Option<&'a crate::revision::Revision>,
    },
    SetupStarted {
        cell: &'a Cell,
    },
    SetupFinished {
        cell: &'a Cell,
        error: Option<&'a str>,
        /// What ran (its output is in the spool files it names).
        inv: &'a Invocation,
        /// Why the setup's command could not start (the container's own error).
        start_error: Option<&'a str>,
        /// Ctrl-C came during the setup: its error is not the cell's (it runs again on
        /// `--resume`).
        cancelled: bool,
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
        /// What ran (its output is in the spool files it names).
        inv: &'a Invocation,
        /// What the executor said of it (an empty outcome for a command that did not start).
        outcome: &'a Outcome,
        /// Why the command could not start (also the sample's `reason`).
        start_error: Option<&'a str>,
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
    /// Set when the summaries could not be rebuilt from runs.csv, or summary.md or a report
    /// could not be written (the raw results are complete; `benchbox report` writes them again).
    pub report_problem: Option<String>,
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

/// Run `matrix` on this host, which [`preflight`] found able to isolate it as `sandboxing`
/// says: every invocation in a [`Sandbox`] (see [`run_with`]).
pub fn run(
    matrix: &Matrix,
    opts: &RunOptions,
    sandboxing: Sandboxing,
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
    if let Some(cgroups) = &sandboxing.cgroups {
        cgroups.sweep_stale();
    }
    // The workload's sandbox; services get sandboxes of their own on the same hierarchy.
    let mut sandbox = Sandbox::new(sandboxing.cgroups.clone());
    run_with(matrix, opts, &sandboxing, &mut sandbox, cancel, on_event)
}

/// The run once the host is known to isolate as `sandboxing` says (its `cgroups` are the
/// executor's business, and the services' here): open the run directory, run each scheduled invocation
/// through `executor`, record it and emit its events, and finish the run. Tests call this with
/// a fake executor, without root.
pub fn run_with(
    matrix: &Matrix,
    opts: &RunOptions,
    sandboxing: &Sandboxing,
    executor: &mut dyn Executor,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(&Event),
) -> Result<RunOutcome, RunError> {
    let selected =
        plan::filter_only(matrix, &opts.only).map_err(|e| RunError::Usage(e.to_string()))?;
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
    let open::Opened {
        lock,
        run_id,
        dir,
        cells,
        resumed,
        seed,
        done,
        reruns,
        torn_warning,
        results,
        csv,
        scratch,
        extractors,
    } = open::open(matrix, opts, sandboxing, &selected)?;
    let resume_command = format!(
        "benchbox run {} --resume {}",
        matrix.path.display(),
        dir.display()
    );
    let mut runner = Runner {
        _lock: lock,
        builder: invocation::Builder {
            dir: dir.clone(),
            scratch: scratch.path().to_path_buf(),
            images: opts.images.clone(),
            userns: sandboxing.userns.clone(),
            counters: sandboxing.counters.clone(),
        },
        cells,
        scratch,
        pods: HashMap::new(),
        service_cgroups: sandboxing.cgroups.clone(),
        setup_layers: HashMap::new(),
        extractors,
        executor,
        stopping: None,
        reruns,
        recorder: record::Recorder::new(dir.clone(), results, csv, resumed, resume_command),
    };
    let stopping = adaptive::Stopping::new(&runner.cells, |id| {
        let previous = runner.recorder.results().cells.iter().find(|c| c.id == id);
        previous.and_then(|c| c.adaptive)
    });
    runner.stopping = Some(stopping);

    let slots = plan::schedule_selected(&runner.cells, &selected, matrix.order, seed, &done);
    let slots = match &runner.recorder.results().shard {
        Some(info) => match info.index {
            Some(index) => plan::Shard {
                index,
                count: info.count,
            }
            .slice(info.by, &selected, slots),
            None => slots,
        },
        None => slots,
    };
    let (slots, together) = services_together(slots, &runner.cells);
    let loosened: Vec<String> = selected
        .iter()
        .filter_map(|&i| runner.cells[i].security.warning(&runner.cells[i].label))
        .collect();
    let revision = runner.recorder.results().revision.clone();
    let started = Event::Started {
        run_id: &run_id,
        dir: &dir,
        cells: selected.len(),
        invocations: slots.len(),
        already_done: done.len(),
        seed,
        loosened: &loosened,
        isolation: &sandboxing.isolation,
        revision: revision.as_ref(),
    };
    // The first results.json (and `latest`) are written before anything is shown.
    if let Err(e) = runner.emit(&started, on_event) {
        return Err(runner.fail(e));
    }
    for message in &preflight_warnings {
        on_event(&Event::Warning { message });
    }
    for &i in &together {
        let message = format!(
            "cell {}: its services live for the whole cell (`lifetime = \"cell\"`), so its invocations run one after another, not interleaved with other cells'",
            runner.cells[i].label
        );
        on_event(&Event::Warning { message: &message });
    }
    if let Some(message) = &torn_warning {
        on_event(&Event::Warning { message });
    }

    // An error of benchbox's own (a full output disk, a cgroup that cannot be made) stops the
    // run: recorded as `failed`, never as a failure of the workload.
    let interrupted = match runner.run_slots(&slots, cancel, on_event) {
        Ok(interrupted) => interrupted,
        Err(e) => return Err(runner.fail(e)),
    };
    let report_problem = match runner.finish(interrupted) {
        Ok(problem) => problem,
        Err(e) => return Err(runner.fail(e)),
    };
    let results = runner.recorder.results();
    let failures = results
        .cells
        .iter()
        .map(|c| c.failures + usize::from(c.setup_error.is_some()))
        .sum();
    let suspect = results.cells.iter().map(|c| c.suspect).sum();
    on_event(&Event::Finished { results, dir: &dir });
    let Runner {
        recorder, scratch, ..
    } = runner;
    drop(scratch);
    Ok(RunOutcome {
        run_id,
        dir,
        results: recorder.into_results(),
        failures,
        suspect,
        interrupted,
        report_problem,
    })
}

/// A run under way: the loop that schedules, executes and emits.
struct Runner<'e> {
    /// Held for the whole run: see [`crate::lock`].
    _lock: RunLock,
    cells: Vec<Cell>,
    builder: invocation::Builder,
    /// The invocations' scratch directory, removed when the run ends.
    scratch: tempfile::TempDir,
    /// The services' network and the services of cells that keep theirs across invocations
    /// (`lifetime = "cell"`), by cell id; dropped (the services stopped) after the cell's last
    /// invocation, or when the run ends.
    pods: HashMap<String, services::Pod>,
    /// Where services get their cgroups.
    service_cgroups: Option<sandbox::Hierarchy>,
    /// Each cell's setup, once run: its layer (none without a setup), or why it failed.
    setup_layers: HashMap<String, Result<Option<PathBuf>, String>>,
    extractors: HashMap<String, Extractor>,
    executor: &'e mut dyn Executor,
    /// `runs = "auto"`: which measured invocations are still wanted.
    stopping: Option<adaptive::Stopping>,
    /// `[run] rerun-disturbed`: the reruns used, and those a resumed run owes.
    reruns: rerun::Reruns,
    recorder: record::Recorder,
}

impl Runner<'_> {
    /// `event` to the recorder, then (once recorded) to the caller.
    fn emit(&mut self, event: &Event, on_event: &mut dyn FnMut(&Event)) -> Result<(), RunError> {
        self.recorder.record(event)?;
        on_event(event);
        Ok(())
    }

    /// Every slot in order; true when Ctrl-C stopped the run.
    fn run_slots(
        &mut self,
        slots: &[Slot],
        cancel: &AtomicBool,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<bool, RunError> {
        let total = slots.len();
        for (position, slot) in slots.iter().enumerate() {
            if cancel.load(Ordering::SeqCst) {
                return Ok(true);
            }
            if let Some(stopping) = &mut self.stopping {
                let (skip, stopped) = stopping.skip(slot);
                if let Some(outcome) = stopped {
                    let id = self.cells[slot.cell].id.clone();
                    self.recorder.adaptive_outcome(&id, outcome);
                }
                if skip {
                    continue;
                }
            }
            if !self.ensure_setup(slot.cell, cancel, on_event)? {
                if cancel.load(Ordering::SeqCst) {
                    return Ok(true);
                }
                continue;
            }
            // A disturbed invocation run again in place (`[run] rerun-disturbed`), until one
            // is not or the cell's reruns are used up; a resumed run starts with the one owed.
            let mut rerun =
                self.reruns
                    .take_owed(&self.cells[slot.cell].id, slot.phase, slot.index);
            loop {
                match self.invocation(slot, position, total, rerun, cancel, on_event)? {
                    Attempt::Interrupted => return Ok(true),
                    Attempt::Done => break,
                    Attempt::Again if cancel.load(Ordering::SeqCst) => return Ok(true),
                    Attempt::Again => rerun = true,
                }
            }
            if !slots[position + 1..].iter().any(|s| s.cell == slot.cell) {
                self.stop_pod(slot.cell);
            }
        }
        Ok(false)
    }

    /// Wait for the last teardowns, then write the run's end (see [`record::Recorder::finish`]).
    fn finish(&mut self, interrupted: bool) -> Result<Option<String>, RunError> {
        for cell in 0..self.cells.len() {
            self.stop_pod(cell);
        }
        self.executor.settle()?;
        self.recorder.finish(interrupted)
    }

    /// Stop the run on `cause`, an error of benchbox's own: once the last teardown is done,
    /// results.json says `failed` (see [`record::Recorder::fail`]).
    fn fail(&mut self, cause: RunError) -> RunError {
        self.pods.clear();
        let _ = self.executor.settle();
        self.recorder.fail(cause)
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
        self.emit(&Event::SetupStarted { cell: &cell }, on_event)?;
        let layer = self.builder.scratch.join(format!("setup-{}", cell.id));
        let mut inv = self
            .builder
            .invocation_for(&cell, setup, "setup", 0, None)?;
        inv.keep_upper = Some(layer.clone());
        let outcome = self.executor.execute(&inv, cancel);
        let start_error = match &outcome {
            Err(e @ (sandbox::SandboxError::Setup(_) | sandbox::SandboxError::Exec { .. })) => {
                Some(e.to_string())
            }
            _ => None,
        };
        // Whether the setup's stderr log exists once its output is kept (see
        // `results::keep_log`: a spool that holds output becomes the log).
        let (_, log_err) = results::log_paths(&self.builder.dir, &cell.slug, "setup", 0);
        let has_log_err = log_err.exists() || fs::metadata(&inv.stderr).is_ok_and(|m| m.len() > 0);
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
                if has_log_err {
                    format!("see {}", log_err.display())
                } else {
                    "it wrote nothing to stderr".to_string()
                }
            )),
            Err(e @ (sandbox::SandboxError::Setup(_) | sandbox::SandboxError::Exec { .. })) => {
                Some(format!("setup failed: {e}"))
            }
            Err(e) => {
                self.recorder.keep_setup_logs(&inv, &cell)?;
                return Err(e.into());
            }
        };
        let cancelled = cancel.load(Ordering::SeqCst);
        self.emit(
            &Event::SetupFinished {
                cell: &cell,
                error: error.as_deref(),
                inv: &inv,
                start_error: start_error.as_deref(),
                cancelled,
            },
            on_event,
        )?;
        match error {
            None => {
                self.setup_layers.insert(cell.id.clone(), Ok(Some(layer)));
                Ok(true)
            }
            // Interrupted: the setup runs again on --resume.
            Some(_) if cancelled => Ok(false),
            Some(e) => {
                self.setup_layers.insert(cell.id.clone(), Err(e));
                Ok(false)
            }
        }
    }

    /// One scheduled invocation (`rerun`: replacing a disturbed row of the same slot).
    fn invocation(
        &mut self,
        slot: &Slot,
        position: usize,
        total: usize,
        rerun: bool,
        cancel: &AtomicBool,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<Attempt, RunError> {
        let cell = self.cells[slot.cell].clone();
        self.emit(
            &Event::InvocationStarted {
                cell: &cell,
                phase: slot.phase,
                index: slot.index,
                position,
                total,
            },
            on_event,
        )?;
        let layer = self
            .setup_layers
            .get(&cell.id)
            .and_then(|r| r.as_ref().ok().cloned())
            .flatten();
        let phase = slot.phase.to_string();
        let mut inv = self.builder.invocation_for(
            &cell,
            &cell.command,
            &phase,
            slot.index,
            layer.as_ref(),
        )?;
        let started_at = now_rfc3339();
        let WithServices {
            executed,
            failure: service_failure,
            columns: service_columns,
        } = if cell.services.is_empty() {
            WithServices {
                executed: self.executor.execute(&inv, cancel),
                failure: None,
                columns: Vec::new(),
            }
        } else {
            let tag = format!("{phase}-{}", slot.index);
            self.execute_with_services(&cell, &tag, &mut inv, cancel)?
        };
        let (outcome, start_error) = match executed {
            Ok(o) => (o, None),
            // The container could not start the command: this invocation is `start-failed`,
            // with no exit code (it never ran, so it never exited) and the why in `reason`.
            Err(e @ (sandbox::SandboxError::Setup(_) | sandbox::SandboxError::Exec { .. })) => {
                (Outcome::default(), Some(e.to_string()))
            }
            Err(e) => return Err(e.into()),
        };
        if outcome.interrupted && service_failure.is_none() {
            return Ok(Attempt::Interrupted);
        }
        // Metric patterns see what the log kept (at most `max-log`), not the marker line.
        let stdout = fs::read(&inv.stdout).unwrap_or_default();
        let stdout = String::from_utf8_lossy(&stdout);
        let stdout = sandbox::kept_output(&stdout, outcome.output_truncated[0]);
        let extracted = self.extractors[&cell.id].extract(stdout, &outcome.metrics_file);
        let mut sample = Sample {
            cell_id: cell.id.as_str().into(),
            phase: slot.phase,
            index: slot.index,
            started_at,
            measured: outcome.measured.clone(),
            status: Status::Ok,
            flags: Vec::new(),
            reason: String::new(),
            metrics: extracted.values.into(),
        };
        for (name, value) in service_columns {
            sample.metrics.insert(name, value);
        }
        (sample.status, sample.reason) = match (&service_failure, &start_error) {
            (Some(failure), _) => (Status::ServiceFailed, failure.to_string()),
            (None, Some(message)) => (Status::StartFailed, message.clone()),
            (None, None) => status::judge(&sample),
        };
        let mut problems = extracted.problems;
        // What else ran on the invocation's CPUs: a flag, not a status (it still counts).
        if start_error.is_none()
            && let Some(basis) = outcome.disturbance
            && let Some(why) = crate::disturbance::judge(
                &sample.measured.disturbance,
                sample.measured.wall_s,
                basis,
                cell.disturbance_threshold(),
            )
        {
            sample.flags.push(status::Flag::Disturbed);
            problems.push(format!("disturbed: {why}"));
        }
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
        if rerun {
            sample.flags.push(status::Flag::Rerun);
        }
        let decision = if slot.phase == Phase::Measure {
            self.reruns.decide(&cell, &sample)
        } else {
            rerun::Decision::Stands
        };
        if decision == rerun::Decision::Again {
            problems.push("run again in its place (`rerun-disturbed`)".into());
        }
        let problem = (!problems.is_empty()).then(|| problems.join("; "));
        self.emit(
            &Event::InvocationFinished {
                cell: &cell,
                sample: &sample,
                position,
                total,
                problem: problem.as_deref(),
                inv: &inv,
                outcome: &outcome,
                start_error: start_error.as_deref(),
            },
            on_event,
        )?;
        if let rerun::Decision::Capped(Some(message)) = &decision {
            on_event(&Event::Warning { message });
        }
        // A row about to be replaced is not the cell's sample: the stopping rule sees its
        // replacement.
        if decision != rerun::Decision::Again
            && let Some(outcome) = self
                .stopping
                .as_mut()
                .and_then(|s| s.observe(slot.cell, &sample))
        {
            self.recorder.adaptive_outcome(&cell.id, outcome);
        }
        self.recorder.checkpoint()?;
        Ok(if decision == rerun::Decision::Again {
            Attempt::Again
        } else {
            Attempt::Done
        })
    }
}

/// How one run of a slot ended.
enum Attempt {
    /// Ctrl-C: the run stops here.
    Interrupted,
    Done,
    /// Disturbed: run the slot again (`[run] rerun-disturbed`).
    Again,
}

impl Runner<'_> {
    /// The workload of `cell` with its services: the cell's pod (its network, /etc/hosts and
    /// `lifetime = "cell"` services) made or reused, this invocation's services started
    /// (logs tagged `tag`), each ready in turn, then the workload joined to the pod and run
    /// while the services are measured, then this invocation's services stopped. A service
    /// that is not ready, or exits before the workload does, is returned as the failure (the
    /// workload then never starts, or is killed); the `Err` of the executor is the workload's.
    fn execute_with_services(
        &mut self,
        cell: &Cell,
        tag: &str,
        inv: &mut Invocation,
        cancel: &AtomicBool,
    ) -> Result<WithServices, RunError> {
        if !self.pods.contains_key(&cell.id) {
            let pod =
                services::Pod::new(&self.builder.scratch, cell, self.service_cgroups.clone())?;
            self.pods.insert(cell.id.clone(), pod);
        }
        let Runner {
            pods,
            builder,
            executor,
            ..
        } = self;
        let pod = pods.get_mut(&cell.id).expect("made above");
        let mut failure = None;
        for (lifetime, tag) in [(Lifetime::Cell, "cell"), (Lifetime::Invocation, tag)] {
            if let Err(f) = pod.start(builder, cell, lifetime, tag, cancel)? {
                failure = Some(f);
                break;
            }
        }
        let mut executed = Ok(Outcome::default());
        let mut columns = Vec::new();
        if failure.is_none() {
            pod.join(inv);
            let stop_workload = AtomicBool::new(false);
            let window = pod.window(cell.memory_interval);
            executed = window.during(cancel, &stop_workload, || {
                executor.execute_watched(inv, &stop_workload, &window)
            });
            failure = pod.failure();
            columns = window.end();
        }
        pod.stop(Some(Lifetime::Invocation));
        if failure.is_some() {
            // A failed service of the cell's is started afresh for the next invocation.
            pod.stop(None);
        }
        let stopped = pod.take_stopped();
        self.recorder.service_outcomes(&cell.id, &stopped);
        let cell_lived = cell.services.iter().any(|s| s.lifetime == Lifetime::Cell);
        if !cell_lived {
            self.pods.remove(&cell.id);
        }
        Ok(WithServices {
            executed,
            failure,
            columns,
        })
    }

    /// Stop the services of the cell at `index` (after its last invocation).
    fn stop_pod(&mut self, index: usize) {
        let id = self.cells[index].id.clone();
        if let Some(mut pod) = self.pods.remove(&id) {
            pod.stop(None);
            let stopped = pod.take_stopped();
            self.recorder.service_outcomes(&id, &stopped);
        }
    }
}

/// What an invocation with services gave: the workload's execution, the service that failed
/// it (if one did), and the services' columns over its window.
struct WithServices {
    executed: Result<Outcome, sandbox::SandboxError>,
    failure: Option<services::ServiceFailure>,
    columns: Vec<(String, f64)>,
}

/// The schedule with the invocations of each cell that keeps its services across invocations
/// (`lifetime = "cell"`) moved together, where the cell's first invocation was; and those
/// cells (their indices).
fn services_together(slots: Vec<Slot>, cells: &[Cell]) -> (Vec<Slot>, Vec<usize>) {
    let keeps = |i: usize| cells[i].keeps_services_up();
    let mut together: Vec<usize> = Vec::new();
    for slot in &slots {
        if keeps(slot.cell) && !together.contains(&slot.cell) {
            together.push(slot.cell);
        }
    }
    if together.is_empty() {
        return (slots, together);
    }
    let mut grouped: BTreeMap<usize, Vec<Slot>> = BTreeMap::new();
    let mut out = Vec::with_capacity(slots.len());
    let mut order = Vec::new();
    for slot in slots {
        if keeps(slot.cell) {
            if !grouped.contains_key(&slot.cell) {
                order.push((out.len(), slot.cell));
            }
            grouped.entry(slot.cell).or_default().push(slot);
        } else {
            out.push(slot);
        }
    }
    for (at, cell) in order.into_iter().rev() {
        let run = grouped.remove(&cell).unwrap_or_default();
        out.splice(at..at, run);
    }
    (out, together)
}

pub use crate::status::describe_failure;
