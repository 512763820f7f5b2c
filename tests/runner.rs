//! The runner without root: `runner::run_with` driven by a fake executor that writes the
//! output spools and returns scripted outcomes, so resume, interruption, setup failures, the
//! runner's failure count and results.json's cadence are tested on any machine.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use benchbox::host;
use benchbox::measurement::Measurement;
use benchbox::mode::{Isolation, Mode};
use benchbox::results;
use benchbox::runner::{self, Event, Executor, RunError, RunOptions, RunOutcome, Sandboxing};
use benchbox::sandbox::{Invocation, Outcome, RootSpec, SandboxError};
use benchbox::spec::{self, Matrix, ValidationContext};

/// What a fake invocation does is its command's first word: `ok`, `fail` (exit 1), `oom`,
/// `timeout`, `nostart` (the container cannot start it), `broken` (an error of benchbox's own),
/// `blocklog` (a file planted where the cell's logs go, so the recorder cannot keep them);
/// a setup `setup-ok` or `setup-fail`.
#[derive(Default)]
struct Fake {
    /// Set `cancel` during the measured (non-setup) invocation with this number (from 0).
    cancel_at: Option<usize>,
    /// Sleep this long in the measured invocation with this number.
    slow_at: Option<(usize, Duration)>,
    /// While set, `broken` invocations fail with benchbox's own error (a full disk) and
    /// `blocklog` ones block their logs; cleared, the run can be resumed.
    broken: bool,
    /// The measured (non-setup) invocations with these numbers come back `disturbed` (other
    /// tasks took 0.2 s of the 0.25 s on its one CPU); every one with `always_disturbed`.
    disturbed_at: Vec<usize>,
    always_disturbed: bool,
    /// Every invocation executed: (cell id, phase, index).
    executed: Vec<(String, String, u32)>,
    /// Measured (non-setup) invocations executed.
    measured: usize,
    /// The invocations' roots (to check a setup's layer is under its cell's invocations).
    roots: Vec<RootSpec>,
    settled: usize,
}

fn env<'a>(inv: &'a Invocation, key: &str) -> &'a str {
    inv.env
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

impl Executor for Fake {
    fn execute(&mut self, inv: &Invocation, cancel: &AtomicBool) -> Result<Outcome, SandboxError> {
        let phase = env(inv, "BENCHBOX_PHASE").to_string();
        let index: u32 = env(inv, "BENCHBOX_INVOCATION").parse().unwrap();
        self.executed
            .push((env(inv, "BENCHBOX_CELL").to_string(), phase.clone(), index));
        self.roots.push(inv.root.clone());
        let what = inv.argv[0].as_str();
        let mut outcome = Outcome {
            measured: Measurement {
                wall_s: 0.25,
                user_s: 0.125,
                exit_code: Some(0),
                ..Default::default()
            },
            ..Default::default()
        };
        if phase == "setup" {
            fs::write(&inv.stdout, "setting up\n").unwrap();
            if what == "setup-fail" {
                fs::write(&inv.stderr, "setup went wrong\n").unwrap();
                outcome.measured.exit_code = Some(2);
            } else {
                fs::create_dir_all(inv.keep_upper.as_ref().expect("a setup keeps its layer"))
                    .unwrap();
            }
            return Ok(outcome);
        }
        let number = self.measured;
        self.measured += 1;
        if let Some((at, pause)) = self.slow_at
            && at == number
        {
            std::thread::sleep(pause);
        }
        if self.cancel_at == Some(number) {
            cancel.store(true, Ordering::SeqCst);
            outcome.interrupted = true;
            return Ok(outcome);
        }
        fs::write(&inv.stdout, format!("value: {}\n", index + 10)).unwrap();
        if self.always_disturbed || self.disturbed_at.contains(&number) {
            outcome.disturbance = Some(benchbox::disturbance::Basis {
                cpus: 1,
                ticks_per_s: 100,
            });
            outcome.measured.disturbance = benchbox::disturbance::Disturbance {
                other_cpu_s: Some(0.2),
                steal_s: Some(0.0),
                disturbance_scope: Some(benchbox::disturbance::Scope::Pinned),
            };
        }
        match what {
            "ok" => {}
            "fail" => {
                fs::write(&inv.stderr, "it failed\n").unwrap();
                outcome.measured.exit_code = Some(1);
            }
            "oom" => {
                outcome.measured.exit_code = None;
                outcome.measured.signal = Some(9);
                outcome.measured.oom_killed = true;
            }
            "timeout" => {
                outcome.measured.exit_code = None;
                outcome.measured.signal = Some(9);
                outcome.measured.timed_out = true;
            }
            "nostart" => {
                return Err(SandboxError::Exec {
                    argv0: what.into(),
                    message: "No such file or directory".into(),
                });
            }
            "broken" if self.broken => {
                return Err(SandboxError::Io {
                    action: "write",
                    path: inv.stdout.clone(),
                    source: std::io::Error::from_raw_os_error(libc::ENOSPC),
                });
            }
            "broken" => {}
            // The recorder's own write fails: a file where the cell's log directory goes.
            "blocklog" if self.broken => {
                let logs = inv.stdout.parent().unwrap().join(&inv.hostname);
                if !logs.exists() {
                    fs::write(&logs, "in the way\n").unwrap();
                }
            }
            "blocklog" => {}
            other => panic!("the fake cannot run `{other}`"),
        }
        Ok(outcome)
    }

    fn settle(&mut self) -> Result<(), SandboxError> {
        self.settled += 1;
        Ok(())
    }
}

/// A matrix file in a temporary project, and where its runs go.
struct Project {
    dir: tempfile::TempDir,
    matrix: Matrix,
}

impl Project {
    fn new(toml: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        fs::write(&path, toml).unwrap();
        let ctx = ValidationContext {
            online_cpus: host::online_cpus(&host::Roots::default()),
            check_paths: true,
            image_accounts: BTreeMap::new(),
        };
        let matrix = spec::load_for_run(&path, &ctx, 1000).unwrap();
        Project { dir, matrix }
    }

    fn options(&self, resume: Option<PathBuf>) -> RunOptions {
        RunOptions {
            out_dir: self.dir.path().join("out"),
            runs: None,
            warmup: None,
            only: Vec::new(),
            resume,
            scratch_base: self.dir.path().join("scratch"),
            stats: Default::default(),
            command_line: vec!["benchbox".into(), "run".into(), "m.toml".into()],
            images: BTreeMap::new(),
            cgroup_parent: None,
            revision: None,
            shard: None,
        }
    }

    /// Run (or resume) with `fake`; every event is handed to `watch` too.
    fn run_with(
        &self,
        fake: &mut Fake,
        resume: Option<PathBuf>,
        watch: &mut dyn FnMut(&Event),
    ) -> Result<RunOutcome, RunError> {
        let sandboxing = Sandboxing {
            mode: Mode::Root,
            cgroups: None,
            userns: None,
            isolation: Isolation::new(Mode::Root, None, None),
            cgroup_version: None,
            warnings: Vec::new(),
            noise: None,
            counters: Vec::new(),
        };
        let cancel = AtomicBool::new(false);
        runner::run_with(
            &self.matrix,
            &self.options(resume),
            &sandboxing,
            fake,
            &cancel,
            watch,
        )
    }

    fn run(&self, fake: &mut Fake, resume: Option<PathBuf>) -> Result<RunOutcome, RunError> {
        self.run_with(fake, resume, &mut |_| {})
    }
}

/// results.json's `status`.
fn status(dir: &Path) -> String {
    json(dir)["status"].as_str().unwrap().to_string()
}

fn json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

/// runs.csv's rows: (cell id, phase, index, status).
fn rows(dir: &Path) -> Vec<(String, String, u32, String)> {
    let data = results::read_csv(&dir.join("runs.csv")).unwrap();
    assert!(data.torn.is_none(), "runs.csv has a torn row");
    data.rows
        .iter()
        .map(|r| {
            let s = &r.sample;
            (
                s.cell_id.to_string(),
                s.phase.to_string(),
                s.index,
                s.status.as_str().to_string(),
            )
        })
        .collect()
}

const TWO_CELLS: &str = r#"
name = "fake"
[matrix]
word = ["alpha", "beta"]
[run]
command = ["ok", "{word}"]
warmup = 1
runs = 3
[[metric]]
name = "value"
pattern = 'value: (\d+)'
"#;

#[test]
fn a_run_records_every_invocation_and_completes() {
    let p = Project::new(TWO_CELLS);
    let mut fake = Fake::default();
    let outcome = p.run(&mut fake, None).unwrap();
    assert!(!outcome.interrupted);
    assert_eq!((outcome.failures, outcome.suspect), (0, 0));
    assert_eq!(fake.executed.len(), 8);
    let rows = rows(&outcome.dir);
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r.3 == "ok"), "{rows:?}");
    assert_eq!(status(&outcome.dir), "complete");
    assert!(
        fake.settled >= 1,
        "the executor settles before the last writes"
    );
    // The metric came from the spooled stdout, and the spool became the log.
    let json = json(&outcome.dir);
    // Summarised from runs.csv, which alone holds the samples.
    assert_eq!(json["cells"][0]["summary"]["wall_s"]["n"], 3);
    assert!(json["cells"][0].get("samples").is_none());
    assert_eq!(json["schema_version"], 2);
    let slug = json["cells"][0]["slug"].as_str().unwrap();
    let log = outcome.dir.join("logs").join(slug).join("measure-0.out");
    assert_eq!(fs::read_to_string(log).unwrap(), "value: 10\n");
    assert!(!outcome.dir.join("logs/.stdout.spool").exists());
    assert!(outcome.dir.join("summary.md").exists());
    assert!(!outcome.dir.join(results::Reserve::FILE).exists());
    assert_eq!(
        fs::read_link(outcome.dir.parent().unwrap().join("latest")).unwrap(),
        Path::new(&outcome.run_id)
    );
}

#[test]
fn an_interrupted_run_keeps_what_finished_and_resume_runs_each_invocation_once() {
    let p = Project::new(TWO_CELLS);
    let mut fake = Fake {
        cancel_at: Some(3),
        ..Default::default()
    };
    let first = p.run(&mut fake, None).unwrap();
    assert!(first.interrupted);
    assert_eq!(status(&first.dir), "interrupted");
    let before = rows(&first.dir);
    assert_eq!(
        before.len(),
        3,
        "the finished invocations, not the one interrupted"
    );
    assert_eq!(json(&first.dir)["cells"][0]["planned"]["runs"], 3);

    let mut again = Fake::default();
    let second = p.run(&mut again, Some(first.dir.clone())).unwrap();
    assert!(!second.interrupted);
    assert_eq!(second.dir, first.dir);
    assert_eq!(second.run_id, first.run_id);
    assert_eq!(again.executed.len(), 5, "only what was not done runs again");
    let after = rows(&second.dir);
    assert_eq!(
        &after[..3],
        &before[..],
        "earlier rows are kept, whole, in place"
    );
    let mut keys: Vec<_> = after.iter().map(|r| (&r.0, &r.1, r.2)).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 8, "every invocation exactly once: {after:?}");
    assert_eq!(status(&second.dir), "complete");
    let measured: u64 = json(&second.dir)["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["summary"]["wall_s"]["n"].as_u64().unwrap())
        .sum();
    assert_eq!(
        measured, 6,
        "every measured invocation, once, in the summaries"
    );
}

#[test]
fn a_failed_setup_skips_its_cell_and_the_other_cells_run() {
    let p = Project::new(
        r#"
name = "setup"
[matrix]
kind = ["ok", "fail"]
[run]
command = ["ok"]
setup = ["setup-{kind}"]
warmup = 0
runs = 2
"#,
    );
    let mut fake = Fake::default();
    let outcome = p.run(&mut fake, None).unwrap();
    assert_eq!(outcome.failures, 1, "a failed setup counts as a failure");
    let json = json(&outcome.dir);
    let cells = json["cells"].as_array().unwrap();
    let by_kind = |kind: &str| {
        cells
            .iter()
            .find(|c| c["label"].as_str().unwrap().contains(kind))
            .unwrap()
    };
    let failed = by_kind("fail");
    let error = failed["setup_error"].as_str().unwrap();
    assert!(error.starts_with("setup failed (exit 2); see "), "{error}");
    assert!(error.ends_with("setup-0.err"), "{error}");
    assert!(by_kind("kind=ok")["setup_error"].is_null());
    let rows = rows(&outcome.dir);
    let ok_id = by_kind("kind=ok")["id"].as_str().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r.0 == ok_id));
    // The setup ran once per cell, and its layer is under the cell's invocations.
    let setups = fake.executed.iter().filter(|e| e.1 == "setup").count();
    assert_eq!(setups, 2);
    let layered = fake
        .roots
        .iter()
        .filter(|r| matches!(r, RootSpec::Host { tmp_lower: Some(_) }))
        .count();
    assert_eq!(layered, 2);
    assert_eq!(status(&outcome.dir), "complete");
}

#[test]
fn failures_are_recorded_with_their_status_and_counted_when_measured() {
    let p = Project::new(
        r#"
name = "failures"
[matrix]
kind = ["ok", "fail", "oom", "timeout", "nostart"]
[run]
command = ["{kind}"]
warmup = 1
runs = 2
allow-failures = true
"#,
    );
    let mut fake = Fake::default();
    let outcome = p.run(&mut fake, None).unwrap();
    // 4 failing cells, 2 measured invocations each; warmups are recorded but not counted.
    assert_eq!(outcome.failures, 8);
    assert_eq!(outcome.suspect, 0);
    let mut statuses: Vec<String> = rows(&outcome.dir).into_iter().map(|r| r.3).collect();
    statuses.sort();
    statuses.dedup();
    assert_eq!(statuses, ["failed", "ok", "oom", "start-failed", "timeout"]);
    // A command that could not start says why in its stderr log.
    let json = json(&outcome.dir);
    let cell = json["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["label"].as_str().unwrap().contains("nostart"))
        .unwrap();
    let err = outcome
        .dir
        .join("logs")
        .join(cell["slug"].as_str().unwrap())
        .join("measure-0.err");
    let text = fs::read_to_string(err).unwrap();
    assert!(text.starts_with("benchbox: cannot run `nostart`"), "{text}");
    assert_eq!(status(&outcome.dir), "complete");
}

#[test]
fn results_json_is_written_at_the_start_about_once_a_second_and_at_the_end() {
    let p = Project::new(
        r#"
name = "cadence"
[run]
command = ["ok"]
warmup = 0
runs = 6
"#,
    );
    let mut fake = Fake {
        slow_at: Some((2, Duration::from_millis(1100))),
        ..Default::default()
    };
    // What results.json is when each invocation starts: (status, inode). Every write is a new
    // file renamed over the last, so a new inode is a new write.
    let mut seen: Vec<(String, u64)> = Vec::new();
    let mut dir = None;
    let outcome = p
        .run_with(&mut fake, None, &mut |e| match e {
            Event::Started { dir: d, .. } => {
                dir = Some(d.to_path_buf());
                let j = json(d);
                assert_eq!(j["status"], "running");
            }
            Event::InvocationStarted { .. } => {
                let d = dir.as_ref().unwrap();
                let inode = fs::metadata(d.join("results.json")).unwrap().ino();
                seen.push((json(d)["status"].as_str().unwrap().into(), inode));
            }
            _ => {}
        })
        .unwrap();
    let (start, later) = (seen[0].1, seen[3].1);
    let expected: Vec<(String, u64)> = [start, start, start, later, later, later]
        .into_iter()
        .map(|n| ("running".to_string(), n))
        .collect();
    assert_ne!(start, later);
    assert_eq!(
        seen, expected,
        "written at the start, then once the slow one passed a second"
    );
    assert_eq!(status(&outcome.dir), "complete");
    assert_eq!(json(&outcome.dir)["cells"][0]["summary"]["wall_s"]["n"], 6);
}

/// A project of two cells run in order, `ok` then `second`, two invocations each.
fn ok_then(name: &str, second: &str) -> Project {
    Project::new(&format!(
        r#"
name = "{name}"
[matrix]
kind = ["ok", "{second}"]
[run]
command = ["{{kind}}"]
warmup = 0
runs = 2
order = "grouped"
"#
    ))
}

/// Runs `p` with its second cell broken: the run must stop as benchbox's own failure (exit 1),
/// marked `failed` in results.json, with no spool left. Returns the run directory and the
/// stop's cause.
fn stopped(p: &Project) -> (PathBuf, RunError) {
    let mut broken = Fake {
        broken: true,
        ..Default::default()
    };
    let err = p.run(&mut broken, None).unwrap_err();
    assert_eq!(err.exit_code(), benchbox::exit::INTERNAL);
    let RunError::Stopped(stopped) = err else {
        panic!("not stopped: {err}");
    };
    assert!(stopped.unrecorded.is_none());
    let dir = stopped.dir.clone();
    assert_eq!(status(&dir), "failed");
    assert!(!dir.join("logs/.stdout.spool").exists());
    (dir, stopped.cause)
}

/// `--resume` of the stopped run in `dir` runs the two missing invocations, and only those.
fn resume_finishes(p: &Project, dir: &Path) {
    let mut fixed = Fake::default();
    let outcome = p.run(&mut fixed, Some(dir.to_path_buf())).unwrap();
    assert_eq!(fixed.executed.len(), 2);
    assert_eq!(rows(dir).len(), 4);
    assert_eq!(status(&outcome.dir), "complete");
}

#[test]
fn an_error_of_benchboxs_own_stops_the_run_as_failed_and_resume_finishes_it() {
    let p = ok_then("stopped", "broken");
    let (dir, cause) = stopped(&p);
    assert!(runner::is_disk_full(&cause));
    assert!(
        json(&dir)["reason"]
            .as_str()
            .unwrap()
            .contains("No space left")
    );
    assert_eq!(rows(&dir).len(), 2, "the finished invocations, whole");
    resume_finishes(&p, &dir);
}

#[test]
fn a_record_that_cannot_be_written_stops_the_run_as_failed_and_resume_finishes_it() {
    let p = ok_then("unrecordable", "blocklog");
    let (dir, _) = stopped(&p);
    assert!(json(&dir)["reason"].as_str().unwrap().contains("logs"));
    // The first cell's rows, whole; the invocation whose logs could not be kept is not a row.
    let kept = rows(&dir);
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.iter().all(|r| r.3 == "ok"));
    // The obstacle gone, --resume runs what is missing, and only that.
    let planted: Vec<PathBuf> = fs::read_dir(dir.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    assert_eq!(planted.len(), 1, "{planted:?}");
    fs::remove_file(&planted[0]).unwrap();
    resume_finishes(&p, &dir);
}

const RERUN: &str = r#"
name = "fake"
[run]
command = ["ok"]
warmup = 1
runs = 3
rerun-disturbed = true
"#;

/// runs.csv's rows as (phase, index, flags).
fn flagged(dir: &Path) -> Vec<(String, u32, String)> {
    results::read_csv(&dir.join("runs.csv"))
        .unwrap()
        .rows
        .iter()
        .map(|r| {
            let s = &r.sample;
            (
                s.phase.to_string(),
                s.index,
                benchbox::status::format_flags(&s.flags),
            )
        })
        .collect()
}

/// `[run] rerun-disturbed`: a disturbed measured invocation runs again at once (a disturbed
/// warm-up does not); a run interrupted before the replacement was written runs it on
/// `--resume`, flagged `rerun`; the statistics count each invocation once.
#[test]
fn a_disturbed_invocation_is_run_again_and_resume_runs_a_replacement_it_owes() {
    let p = Project::new(RERUN);
    // Numbers: 0 the warm-up, 1 measure-0, 2 measure-1 (disturbed), 3 its rerun (Ctrl-C).
    let mut fake = Fake {
        disturbed_at: vec![0, 2],
        cancel_at: Some(3),
        ..Default::default()
    };
    let first = p.run(&mut fake, None).unwrap();
    assert!(first.interrupted);
    let s = |phase: &str, i: u32, flags: &str| (phase.to_string(), i, flags.to_string());
    assert_eq!(
        flagged(&first.dir),
        [
            s("warmup", 0, "disturbed"),
            s("measure", 0, ""),
            s("measure", 1, "disturbed"),
        ]
    );
    // Resumed: measure-1's replacement, then measure-2, disturbed and replaced in turn.
    let mut again = Fake {
        disturbed_at: vec![1],
        ..Default::default()
    };
    let second = p.run(&mut again, Some(first.dir.clone())).unwrap();
    assert!(!second.interrupted);
    let id = &p.matrix.cells[0].id;
    let ran = |phase: &str, i: u32| (id.clone(), phase.to_string(), i);
    assert_eq!(
        again.executed,
        [ran("measure", 1), ran("measure", 2), ran("measure", 2)]
    );
    assert_eq!(
        flagged(&second.dir)[3..],
        [
            s("measure", 1, "rerun"),
            s("measure", 2, "disturbed"),
            s("measure", 2, "rerun"),
        ]
    );
    let json = json(&second.dir);
    let cell = &json["cells"][0];
    assert_eq!(cell["summary"]["wall_s"]["n"], 3, "{cell}");
    assert_eq!(cell["reruns"], 2, "{cell}");
    assert!(
        cell.get("disturbed").is_none(),
        "no disturbed row counts: {cell}"
    );
    let summary = fs::read_to_string(second.dir.join("summary.md")).unwrap();
    assert!(
        summary.contains("2 disturbed row(s) replaced by a rerun (`[run] rerun-disturbed`) in 2 of 3 measured invocations"),
        "{summary}"
    );
    // A resume of the complete run has nothing left to run.
    let mut nothing = Fake::default();
    p.run(&mut nothing, Some(second.dir.clone())).unwrap();
    assert!(nothing.executed.is_empty(), "{:?}", nothing.executed);
}

/// On a host that disturbs everything, a cell gets at most `runs` reruns: then its disturbed
/// rows stand (and count), and the run warns once, with the figures and a hint.
#[test]
fn reruns_stop_at_runs_per_cell_with_one_warning() {
    let p = Project::new(&RERUN.replace("warmup = 1", "warmup = 0"));
    let mut fake = Fake {
        always_disturbed: true,
        ..Default::default()
    };
    let mut warnings = Vec::new();
    let outcome = p
        .run_with(&mut fake, None, &mut |e| {
            if let Event::Warning { message } = e {
                warnings.push(message.to_string());
            }
        })
        .unwrap();
    let rows = flagged(&outcome.dir);
    // measure-0 three times (two reruns, then the cap), measure-1 and -2 once each.
    assert_eq!(rows.len(), 3 + 3, "{rows:?}");
    assert_eq!(rows.iter().filter(|r| r.2.contains("rerun")).count(), 3);
    let capped: Vec<&String> = warnings.iter().filter(|w| w.contains("reruns")).collect();
    assert_eq!(capped.len(), 1, "once per cell: {warnings:?}");
    assert!(
        capped[0].contains("other tasks 0.200 s, steal 0.000 s in 0.250 s wall; threshold 5%")
            && capped[0].contains("all 3 of its reruns")
            && capped[0].contains("hint: quiet the host"),
        "{}",
        capped[0]
    );
    let json = json(&outcome.dir);
    let cell = &json["cells"][0];
    assert_eq!(cell["summary"]["wall_s"]["n"], 3, "{cell}");
    assert_eq!(cell["reruns"], 3, "{cell}");
    assert_eq!(cell["disturbed"], 3, "the rows past the cap count: {cell}");
}
