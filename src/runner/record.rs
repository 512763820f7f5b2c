//! Recording a run: everything the run directory holds is written here, from the runner's
//! events, beside the terminal UI (which gets the same events after the recorder): runs.csv
//! (a row per finished invocation, appended as it ends), the logs (moved from the output
//! spools), memory timelines, and results.json (at the start, at most about once a second
//! during the run, and at the end), with the reserve that keeps room to say how the run ended.
//!
//! An error here (most often a full disk) is benchbox's own: the runner stops and the recorder
//! marks the run `failed` ([`Recorder::fail`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Event, RunError, Stopped, now_rfc3339};
use crate::plan::Phase;
use crate::results::{self, CellResult, CsvWriter, RunResults};
use crate::sandbox::Invocation;
use crate::spec::{Cell, axis_value_text};
use crate::status::{RunStatus, Status};

/// The writer of one run directory.
pub(super) struct Recorder {
    dir: PathBuf,
    results: RunResults,
    csv: CsvWriter,
    /// A resumed run: its directory has a `latest` link already.
    resumed: bool,
    /// How to finish the run (`benchbox run FILE --resume DIR`), for [`Stopped`].
    resume_command: String,
    last_write: Instant,
    /// Room kept to record how the run ended, even on a full disk.
    reserve: results::Reserve,
    /// The size of results.json when last written, and how much it may have grown since (see
    /// [`results::Reserve`]).
    json_len: u64,
    growth: u64,
}

impl Recorder {
    pub fn new(
        dir: PathBuf,
        results: RunResults,
        csv: CsvWriter,
        resumed: bool,
        resume_command: String,
    ) -> Recorder {
        Recorder {
            reserve: results::Reserve::new(&dir),
            dir,
            results,
            csv,
            resumed,
            resume_command,
            last_write: Instant::now(),
            json_len: 0,
            growth: 0,
        }
    }

    pub fn results(&self) -> &RunResults {
        &self.results
    }

    /// An adaptive cell stopped (`runs = "auto"`): results.json says where and why.
    pub fn adaptive_outcome(&mut self, id: &str, outcome: results::AdaptiveOutcome) {
        self.cell_result(id).adaptive = Some(outcome);
    }

    pub fn into_results(self) -> RunResults {
        self.results
    }

    /// Record what `event` says, before the terminal shows it: an error stops the run.
    pub fn record(&mut self, event: &Event) -> Result<(), RunError> {
        match event {
            Event::Started { .. } => {
                self.write_results()?;
                // A shard never moves `latest`: shards sharing an output directory would race
                // on it, and no one shard is the run.
                if !self.resumed && self.results.shard.is_none() {
                    results::update_latest(&self.dir)?;
                }
            }
            Event::SetupFinished {
                cell,
                error,
                inv,
                start_error,
                cancelled,
            } => {
                self.keep_logs(inv, cell, "setup", 0, *start_error)?;
                // An interrupted setup is not the cell's failure: it runs again on --resume.
                if let Some(e) = error
                    && !cancelled
                {
                    self.cell_result(&cell.id).setup_error = Some(e.to_string());
                }
            }
            Event::InvocationFinished {
                cell,
                sample,
                inv,
                outcome,
                start_error,
                ..
            } => {
                let phase = sample.phase.to_string();
                self.keep_logs(inv, cell, &phase, sample.index, *start_error)?;
                if !outcome.memory_timeline.is_empty() {
                    let path =
                        results::memory_timeline_path(&self.dir, &cell.slug, &phase, sample.index);
                    write_memory_timeline(&path, &outcome.memory_timeline)?;
                }
                self.csv.append(sample, &cell.label, &axis_texts(cell))?;
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
                    // The timeline replaces the last one: results.json may grow by its size.
                    self.growth +=
                        outcome.memory_timeline.len() as u64 * results::Reserve::PER_TIMELINE_POINT;
                }
                // The sample itself is in runs.csv only: it is not kept here.
            }
            Event::SetupStarted { .. }
            | Event::InvocationStarted { .. }
            | Event::Warning { .. }
            | Event::Finished { .. } => {}
        }
        Ok(())
    }

    /// After an invocation was recorded and shown: results.json is rewritten when the last
    /// write is a second old, else the reserve grows to cover what it does not hold yet.
    pub fn checkpoint(&mut self) -> Result<(), RunError> {
        if self.last_write.elapsed() >= Duration::from_secs(1) {
            self.write_results()
        } else {
            self.growth += results::Reserve::PER_INVOCATION;
            self.reserve
                .ensure(self.json_len + self.growth + results::Reserve::SLACK)?;
            Ok(())
        }
    }

    /// A setup step the run stops on (an error of benchbox's own): what it wrote is kept in
    /// its logs all the same.
    pub fn keep_setup_logs(&mut self, inv: &Invocation, cell: &Cell) -> Result<(), RunError> {
        self.keep_logs(inv, cell, "setup", 0, None)
    }

    /// Rewrite results.json (atomically) and keep the reserve as large as the next one.
    fn write_results(&mut self) -> Result<(), RunError> {
        self.json_len = self.results.write(&self.dir)?;
        self.growth = 0;
        self.last_write = Instant::now();
        self.reserve
            .ensure(self.json_len + results::Reserve::SLACK)?;
        Ok(())
    }

    /// After an invocation: benchbox's own message when its command could not start goes to
    /// its stderr, then its output, when there is any, moves from the spool files to its
    /// logs. Returns the logs' paths.
    fn keep_logs(
        &self,
        inv: &Invocation,
        cell: &Cell,
        phase: &str,
        index: u32,
        start_error: Option<&str>,
    ) -> Result<(), RunError> {
        if let Some(message) = start_error {
            write_spool(&inv.stderr, &format!("benchbox: {message}\n"))?;
        }
        let (out, err) = results::log_paths(&self.dir, &cell.slug, phase, index);
        results::keep_log(&inv.stdout, &out)?;
        results::keep_log(&inv.stderr, &err)?;
        Ok(())
    }

    /// The whole-life outcomes of services of the cell `id` that were stopped, added to its
    /// totals in results.json (written with the next checkpoint).
    pub fn service_outcomes(&mut self, id: &str, stopped: &[(String, crate::sandbox::Outcome)]) {
        if stopped.is_empty() {
            return;
        }
        let result = self.cell_result(id);
        for (name, outcome) in stopped {
            result
                .services
                .entry(name.clone())
                .or_default()
                .add(&outcome.measured);
        }
    }

    /// Stop the run on `cause`, an error of benchbox's own (the executor settled first): drop
    /// the in-flight invocation's output and the reserve (room for what follows), and mark
    /// results.json `failed` with the reason (in place as a last resort).
    pub fn fail(&mut self, cause: RunError) -> RunError {
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
            resume: self.resume_command.clone(),
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

    /// Sync runs.csv, write the reports, and only then the final status: `complete` (or
    /// `interrupted`) in results.json means the reports exist, so a run killed in between is
    /// still `running` on disk, and `report` or `--resume` finishes it. Returns a problem that
    /// left the run's data intact (a report that could not be written). The executor has
    /// settled: nothing of an invocation is left.
    pub fn finish(&mut self, interrupted: bool) -> Result<Option<String>, RunError> {
        results::remove_spools(&self.dir);
        self.csv.sync()?;
        self.results.finished_at = Some(now_rfc3339());
        self.results.load_average.get_or_insert_default().end =
            crate::host::load_average(&crate::host::Roots::default());
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

/// An invocation's memory use over time, at `path` ([`results::memory_timeline_path`]).
fn write_memory_timeline(path: &Path, timeline: &[(f64, u64)]) -> Result<(), RunError> {
    let mut text = String::from("t_s,memory_bytes\n");
    for (t, bytes) in timeline {
        text.push_str(&format!("{t:.3},{bytes}\n"));
    }
    let written = path
        .parent()
        .map_or(Ok(()), fs::create_dir_all)
        .and_then(|_| fs::write(path, text));
    written.map_err(|source| results::ResultsError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(())
}

fn axis_texts(cell: &Cell) -> Vec<String> {
    cell.axes.iter().map(|(_, v)| axis_value_text(v)).collect()
}

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
