//! Rebuilding a run's files from its raw data: load (`runs.csv` read back and checked against
//! the plan, [`results::load_checked`]) -> summarise (every cell again, [`report::summarize`]) ->
//! write (summary.md, the report formats asked for, then results.json). `run` rebuilds at its
//! end and `report` on demand, both through [`write`], so a run and a later report of it agree
//! to the byte; this is the one place that knows which files a rebuild writes.
//!
//! Nothing written depends on the clock or on thread timing, so rebuilding again gives the same
//! bytes (`finished_at` is kept). results.json is written last: a `complete` run has its other
//! files. summary.md and the reports are views of the raw data: one that cannot be written is
//! said ([`Written`]), and the others and results.json are written all the same.

use std::path::{Path, PathBuf};

use crate::reference;
use crate::render::latex::TableOptions;
use crate::render::{self, Format, RenderError, RenderOptions};
use crate::report::{self, ReportError};
use crate::results::{self, RunResults};
use crate::status::RunStatus;

/// Where a rebuild wrote, and what it could not write.
#[derive(Debug)]
pub struct Written {
    pub results_json: PathBuf,
    pub summary_md: Result<PathBuf, RenderError>,
    /// The report formats' files, in the order written (see [`render::write`]).
    pub reports: Result<Vec<PathBuf>, RenderError>,
}

/// A run rebuilt by `report`, where it was written, and what the reader should know (a torn row
/// left out, a run that was never finished).
#[derive(Debug)]
pub struct Rebuilt {
    pub run: RunResults,
    pub written: Written,
    pub warnings: Vec<String>,
}

/// Load -> summarise: the run as the reports show it, and the warnings of the read. Nothing is
/// written.
pub fn load_summarized(dir: &Path) -> Result<(RunResults, Vec<String>), ReportError> {
    let (mut run, warnings) = results::load_checked(dir)?;
    report::summarize(&mut run);
    Ok((run, warnings))
}

/// Write every file of a rebuilt run into `dir`: summary.md, the `formats`, then results.json,
/// with ratios against the cell `reference` names (the default when `None`). Only a
/// results.json that cannot be written is an error.
pub fn write(
    dir: &Path,
    run: &RunResults,
    reference: Option<&str>,
    formats: &[Format],
) -> Result<Written, ReportError> {
    write_with(
        dir,
        run,
        reference,
        formats,
        TableOptions::default(),
        &Default::default(),
    )
}

/// [`write`], with table.tex laid out as `table` says (`report --wide`, `--ci-style`, `--marks`)
/// and `report`'s figure flags over the plan's `[report]`.
pub fn write_with(
    dir: &Path,
    run: &RunResults,
    reference: Option<&str>,
    formats: &[Format],
    table: TableOptions,
    figures: &crate::spec::ReportOptions,
) -> Result<Written, ReportError> {
    let opts = RenderOptions {
        reference: reference.map(str::to_string),
    };
    // Summaries, ratios and intervals once, for summary.md and every format alike.
    let (summary_md, reports) = match render::Analysis::new(run, &opts) {
        Ok(analysis) => {
            let analysis = analysis
                .with_figure_data(dir, formats)
                .with_table(table)
                .with_figures(figures);
            let text = render::markdown::markdown_of(&analysis);
            let path = dir.join(render::SUMMARY_FILE);
            let summary_md = results::write_atomic(&path, text.as_bytes())
                .map(|()| path)
                .map_err(RenderError::from);
            (summary_md, render::write_analysis(&analysis, dir, formats))
        }
        Err(e) => (Err(e), render::write(run, dir, &opts, formats)),
    };
    run.write(dir)?;
    let results_json = dir.join("results.json");
    Ok(Written {
        results_json,
        summary_md,
        reports,
    })
}

/// `benchbox report`: load -> summarise -> write, with the report `formats` asked for. The
/// caller holds the run's lock ([`crate::lock`]), so no benchbox is running it: a status still
/// `running` was left by one that died (killed, crashed) before the end, and becomes `complete`
/// when every planned invocation is in runs.csv, `interrupted` otherwise. A reference that
/// names no single cell fails before anything is written.
pub fn rebuild(
    dir: &Path,
    reference: Option<&str>,
    formats: &[Format],
) -> Result<Rebuilt, ReportError> {
    rebuild_with(
        dir,
        reference,
        formats,
        None,
        TableOptions::default(),
        &Default::default(),
    )
}

/// [`rebuild`], with `resamples` given (`report --resamples`): every interval is then
/// bootstrapped with exactly that many, whatever the cells' size, and results.json records it
/// so a later rebuild gives the same bytes; table.tex laid out as `table` says; `report`'s
/// figure flags (`--figure-width`, ...) over the plan's `[report]` (they are not recorded).
pub fn rebuild_with(
    dir: &Path,
    reference: Option<&str>,
    formats: &[Format],
    resamples: Option<usize>,
    table: TableOptions,
    figures: &crate::spec::ReportOptions,
) -> Result<Rebuilt, ReportError> {
    let dir = results::run_dir(dir)?;
    let loaded = results::load_checked(&dir)?;
    rebuild_loaded(&dir, loaded, reference, formats, resamples, table, figures)
}

/// [`rebuild_with`] from the run `loaded` already holds, with its samples, and the warnings
/// of reading them: what `merge` rebuilds from the rows it has just written, without reading
/// them back.
pub fn rebuild_loaded(
    dir: &Path,
    loaded: (RunResults, Vec<String>),
    reference: Option<&str>,
    formats: &[Format],
    resamples: Option<usize>,
    table: TableOptions,
    figures: &crate::spec::ReportOptions,
) -> Result<Rebuilt, ReportError> {
    let (mut run, mut warnings) = loaded;
    if let Some(resamples) = resamples {
        run.stats.resamples = resamples;
        run.stats.resamples_explicit = true;
    }
    report::summarize(&mut run);
    reference::choose(&run.cells, reference)?;
    if run.status == RunStatus::Running {
        let whole = warnings.is_empty()
            && run
                .cells
                .iter()
                .all(|c| report::missing_warning(c).is_none());
        run.status = if whole {
            RunStatus::Complete
        } else {
            RunStatus::Interrupted
        };
        warnings.push(format!(
            "the run was never finished: the benchbox that ran it stopped before the end (killed or crashed); {}",
            if whole {
                "every planned invocation is in runs.csv, so it is now marked `complete`".to_string()
            } else {
                format!(
                    "it is now marked `interrupted`\n  hint: finish it with `benchbox run MATRIX --resume {}`",
                    dir.display()
                )
            }
        ));
    }
    let written = write_with(dir, &run, reference, formats, table, figures)?;
    Ok(Rebuilt {
        run,
        written,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests_support::{drop_lines, write_run};
    use crate::results::Planned;
    use crate::sandbox::security::Policy;
    use crate::status::Status;
    use std::fs;

    /// What [`report`] wrote and said.
    #[derive(Debug)]
    struct Reported {
        results_json: PathBuf,
        summary_md: PathBuf,
        warnings: Vec<String>,
    }

    /// `report` without report formats.
    fn report(dir: &Path, reference: Option<&str>) -> Result<(RunResults, Reported), ReportError> {
        let rebuilt = rebuild(dir, reference, &[])?;
        let reported = Reported {
            results_json: rebuilt.written.results_json,
            summary_md: rebuilt.written.summary_md.expect("summary.md is written"),
            warnings: rebuilt.warnings,
        };
        Ok((rebuilt.run, reported))
    }

    /// summary.md with the reference `spec` names.
    fn summary_markdown_for(run: &RunResults, spec: Option<&str>) -> String {
        let opts = RenderOptions {
            reference: spec.map(str::to_string),
        };
        render::markdown(run, &opts).unwrap()
    }

    #[test]
    fn rebuild_is_deterministic_and_uses_the_csv_alone() {
        let tmp = tempfile::tempdir().unwrap();
        write_run(tmp.path());
        let (run, written) = report(tmp.path(), None).unwrap();
        let first_json = fs::read(&written.results_json).unwrap();
        let first_md = fs::read(&written.summary_md).unwrap();
        assert_eq!(run.cells[0].samples.len(), 11, "warm-up + 10 from the CSV");
        assert!(
            run.cells
                .iter()
                .all(|c| c.samples.iter().all(|s| s.measured.wall_s < 10.0))
        );
        assert_eq!(run.cells[0].summary["wall_s"].n, 10);
        assert_eq!(run.cells[3].summary["wall_s"].n, 9);
        assert_eq!(run.cells[3].failures, 1);
        assert!(run.cells[3].warnings[0].starts_with("1 failed invocation(s) excluded"));
        // The policies recorded by the run survive the rebuild (they are not in runs.csv).
        assert_eq!(run.cells[0].security, Some(Policy::default().effective()));
        assert_eq!(
            run.cells[3]
                .security
                .as_ref()
                .map(|s| s.policy().describe()),
            Some("+SYS_PTRACE, seccomp unconfined".to_string())
        );
        assert_eq!(
            run.finished_at.as_deref(),
            Some("2026-01-01T00:01:00.000Z"),
            "kept"
        );
        // Same bytes again.
        report(tmp.path(), None).unwrap();
        assert!(fs::read(&written.results_json).unwrap() == first_json);
        assert!(fs::read(&written.summary_md).unwrap() == first_md);
        // The streamed JSON is byte for byte what `RunResults::write` writes.
        assert!(serde_json::to_vec_pretty(&run).unwrap() == first_json);

        // Strip every summary and sample from results.json: the rebuild restores them.
        let mut stripped = RunResults::read(tmp.path()).unwrap();
        for c in &mut stripped.cells {
            c.summary.clear();
            c.samples.clear();
            c.warnings.clear();
            c.failures = 0;
        }
        stripped.write(tmp.path()).unwrap();
        fs::remove_file(&written.summary_md).unwrap();
        report(tmp.path(), None).unwrap();
        assert!(fs::read(&written.results_json).unwrap() == first_json);
        assert!(fs::read(&written.summary_md).unwrap() == first_md);
    }

    #[test]
    fn suspect_rows_are_excluded_and_warned_whatever_their_numbers() {
        let tmp = tempfile::tempdir().unwrap();
        write_run(tmp.path());
        // Two measured rows of the first cell say `suspect`; their numbers look like the rest.
        let path = tmp.path().join("runs.csv");
        let reason = "cgroup CPU 0.008 s is below 90% of the reaped tree's 0.742 s (were the counters reset?)";
        let text: String = fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| {
                let mut l = l.to_string();
                if l.starts_with("cell0,")
                    && (l.contains(",measure,3,") || l.contains(",measure,7,"))
                {
                    l = l.replace(",ok,,,", &format!(",suspect,,{reason},"));
                }
                l + "\n"
            })
            .collect();
        fs::write(&path, text).unwrap();
        let (run, written) = report(tmp.path(), None).unwrap();
        let cell = &run.cells[0];
        assert_eq!(cell.summary["wall_s"].n, 8);
        assert_eq!((cell.suspect, cell.failures), (2, 0));
        assert_eq!(
            cell.warnings,
            [format!(
                "2 of 10 invocations suspect: cgroup CPU below rusage CPU; excluded from the statistics\n  hint: measured invocation 3: {reason}; the `reason` column of runs.csv has every one"
            )]
        );
        assert_eq!((run.cells[3].suspect, run.cells[3].failures), (0, 1));
        let md = fs::read_to_string(&written.summary_md).unwrap();
        assert!(md.contains("| jdk=17 gc=G1 | 8 of 10 |"), "{md}");
        assert!(
            md.contains("`jdk=17 gc=G1`: 2 of 10 invocations suspect: cgroup CPU below rusage CPU; excluded from the statistics   hint: measured invocation 3: cgroup CPU 0.008 s"),
            "{md}"
        );
        let json = RunResults::read(tmp.path()).unwrap();
        assert_eq!(json.cells[0].suspect, 2);
        assert_eq!(cell.samples[4].status, Status::Suspect);
        assert_eq!(cell.samples[4].reason, reason);
        // Same bytes again.
        let first = fs::read(&written.results_json).unwrap();
        report(tmp.path(), None).unwrap();
        assert!(fs::read(&written.results_json).unwrap() == first);
    }

    /// Regression: a runs.csv missing rows gave n = 1 and nothing said "1 of 6"; no runs.csv at
    /// all was exit 0.
    #[test]
    fn missing_rows_show_as_n_of_n_everywhere_and_a_missing_runs_csv_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        write_run(tmp.path());
        // cell0 keeps its warm-up and 1 of its 10 measured invocations.
        drop_lines(tmp.path(), |_, l| {
            l.starts_with("cell0,") && l.contains(",measure,") && !l.contains(",measure,0,")
        });
        let (run, written) = report(tmp.path(), None).unwrap();
        assert!(written.warnings.is_empty(), "{:?}", written.warnings);
        let cell = &run.cells[0];
        assert_eq!(
            cell.planned,
            Some(Planned {
                warmup: 1,
                runs: 10
            }),
            "from the plan"
        );
        assert_eq!(cell.summary["wall_s"].n, 1);
        let missing = "1 of 10 measured invocations in runs.csv (9 missing); the statistics cover only the invocations present\n  hint: finish the run with `benchbox run MATRIX --resume RUN`";
        assert_eq!(cell.warnings[0], missing);
        // results.json carries the warning; summary.md, the terminal table and report.html n of N.
        let json = RunResults::read(tmp.path()).unwrap();
        assert_eq!(json.cells[0].warnings[0], missing);
        assert_eq!(
            json.cells[0].planned,
            Some(Planned {
                warmup: 1,
                runs: 10
            })
        );
        let md = fs::read_to_string(&written.summary_md).unwrap();
        assert!(md.contains("| jdk=17 gc=G1 | 1 of 10 | 980.0 ms |"), "{md}");
        assert!(
            md.contains("| jdk=17 gc=Par | 10 |"),
            "complete cells stay plain: {md}"
        );
        assert!(
            md.contains("`jdk=17 gc=G1`: 1 of 10 measured invocations in runs.csv (9 missing)"),
            "{md}"
        );
        let table = crate::ui::summary_table(&run);
        assert!(table.contains("jdk=17 gc=G1   1 of 10 "), "{table}");
        assert!(
            table.contains("jdk=17 gc=G1: warning: 1 of 10 measured invocations"),
            "{table}"
        );
        let html = crate::render::html(&run, &Default::default()).unwrap();
        assert!(
            html.contains("<td>jdk=17 gc=G1</td><td class=\"num\">1 of 10</td>"),
            "{html}"
        );
        assert!(
            html.contains("<td class=\"num\">1 of 10 (0 failed)</td>"),
            "{html}"
        );

        // A cell with no row at all: "0 of 10", not silence.
        drop_lines(tmp.path(), |_, l| l.starts_with("cell0,"));
        let (run, _) = report(tmp.path(), None).unwrap();
        let md = summary_markdown_for(&run, None);
        assert!(
            md.contains("| jdk=17 gc=G1 | 0 of 10 | - | - | not run |"),
            "{md}"
        );
        assert!(crate::ui::summary_table(&run).contains("jdk=17 gc=G1   0 of 10 "));

        // No runs.csv: an error, for `report` and for `compare` (both read through `load`).
        fs::remove_file(tmp.path().join("runs.csv")).unwrap();
        let e = report(tmp.path(), None).unwrap_err().to_string();
        assert!(
            e.ends_with("runs.csv` is missing: the run's raw data is gone, so nothing can be reported or compared\n  hint: restore runs.csv from a copy of the run directory"),
            "{e}"
        );
        assert!(results::load(tmp.path()).is_err());
    }

    /// Regression: SIGKILL right after the last invocation left `complete` without reports. The
    /// runner now writes its final status last; a `running` run nobody holds is finished by
    /// `report`.
    #[test]
    fn report_finishes_a_run_left_running_by_a_dead_benchbox() {
        let tmp = tempfile::tempdir().unwrap();
        write_run(tmp.path());
        let set_status = |status: RunStatus| {
            let mut meta = RunResults::read(tmp.path()).unwrap();
            meta.status = status;
            meta.write(tmp.path()).unwrap();
        };
        set_status(RunStatus::Running);
        let (run, written) = report(tmp.path(), None).unwrap();
        assert_eq!(
            run.status,
            RunStatus::Complete,
            "every planned invocation is there"
        );
        assert!(
            written.warnings[0].contains("it is now marked `complete`"),
            "{:?}",
            written.warnings
        );
        assert_eq!(
            RunResults::read(tmp.path()).unwrap().status,
            RunStatus::Complete
        );
        // With a torn last row (a crash mid-write), rows are missing: `interrupted`.
        set_status(RunStatus::Running);
        let path = tmp.path().join("runs.csv");
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, &text[..text.len() - 5]).unwrap();
        let (run, written) = report(tmp.path(), None).unwrap();
        assert_eq!(run.status, RunStatus::Interrupted);
        assert!(
            written.warnings[0].contains("runs.csv` line 45: the last row is incomplete"),
            "{:?}",
            written.warnings
        );
        assert!(written.warnings[1].contains("it is now marked `interrupted`\n  hint: finish it with `benchbox run MATRIX --resume "), "{:?}", written.warnings);
        // The torn row was cell3's failed invocation: 9 ok, 0 failed, 1 missing.
        assert_eq!(
            (run.cells[3].summary["wall_s"].n, run.cells[3].failures),
            (9, 0)
        );
        assert!(
            run.cells[3].warnings[0]
                .starts_with("9 of 10 measured invocations in runs.csv (1 missing)")
        );
        // results.json is readable by everyone, like every other output.
        let mode = fs::metadata(tmp.path().join("results.json"))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o644
        );
    }

    #[test]
    fn a_reference_that_names_no_single_cell_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        write_run(tmp.path());
        report(tmp.path(), None).unwrap();
        // A reference that names no single cell is an error for `report`, and nothing is
        // rewritten.
        // (Sentinels a rewrite would replace, whatever it wrote: summary.md's text, and
        // results.json as compact JSON, which benchbox writes pretty.)
        fs::write(tmp.path().join("summary.md"), "sentinel").unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(tmp.path().join("results.json")).unwrap()).unwrap();
        let compact = serde_json::to_string(&json).unwrap();
        fs::write(tmp.path().join("results.json"), &compact).unwrap();
        let e = report(tmp.path(), Some("jdk=8")).unwrap_err().to_string();
        assert!(
            e.starts_with("the reference `jdk=8` matches no cell\n  hint: "),
            "{e}"
        );
        let e = report(tmp.path(), Some("jdk=17")).unwrap_err().to_string();
        assert_eq!(
            e,
            "the reference `jdk=17` matches 2 cells: `jdk=17 gc=G1`, `jdk=17 gc=Par`\n  hint: add axis=value pairs until one cell is left"
        );
        assert_eq!(
            fs::read_to_string(tmp.path().join("summary.md")).unwrap(),
            "sentinel",
            "a failed report rewrote summary.md"
        );
        assert_eq!(
            fs::read_to_string(tmp.path().join("results.json")).unwrap(),
            compact,
            "a failed report rewrote results.json"
        );
    }
}
