//! End to end through the `benchbox` binary: real containers, real cgroups, real files.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::project::text;

/// Whether this host's cgroups are v2.
fn host_is_v2() -> bool {
    benchbox::sandbox::cgroup::detect_host().unwrap().version()
        == benchbox::sandbox::cgroup::Version::V2
}

/// Polls `done` until it holds (at most two minutes).
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_cmd(cmd: &mut Command) -> Output {
    cmd.output().expect("benchbox runs")
}

/// Runs sweep the cgroups of dead benchbox processes: the test that kills benchbox on purpose
/// must not have its evidence swept by another test's run, so it runs alone.
static EXCLUSIVE: std::sync::RwLock<()> = std::sync::RwLock::new(());

#[allow(dead_code)]
enum Turn {
    Shared(std::sync::RwLockReadGuard<'static, ()>),
    Alone(std::sync::RwLockWriteGuard<'static, ()>),
}

/// A project with a busybox rootfs (see `common::project::Project`) that takes its turn among the tests
/// and remembers the benchbox processes it ran.
struct Project {
    _turn: Turn,
    project: common::project::Project,
    /// Pids of the benchbox processes run, to look for their cgroups afterwards.
    pids: std::cell::RefCell<Vec<u32>>,
}

impl std::ops::Deref for Project {
    type Target = common::project::Project;
    fn deref(&self) -> &common::project::Project {
        &self.project
    }
}

impl Project {
    fn new(toml: &str) -> Project {
        let turn = Turn::Shared(EXCLUSIVE.read().unwrap_or_else(|e| e.into_inner()));
        Project::with_turn(toml, turn)
    }

    fn alone(toml: &str) -> Project {
        let turn = Turn::Alone(EXCLUSIVE.write().unwrap_or_else(|e| e.into_inner()));
        Project::with_turn(toml, turn)
    }

    fn with_turn(toml: &str, turn: Turn) -> Project {
        Project {
            _turn: turn,
            project: common::project::Project::new(toml),
            pids: Default::default(),
        }
    }

    fn run(&self, extra: &[&str]) -> Output {
        let mut args = vec!["run", "m.toml", "--out", "out", "--resamples", "200"];
        args.extend_from_slice(extra);
        let child = self
            .cmd(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("benchbox runs");
        self.pids.borrow_mut().push(child.id());
        child.wait_with_output().unwrap()
    }

    fn csv_rows(&self, name: &str) -> Vec<csv::StringRecord> {
        self.csv(name).1
    }

    fn csv_header(&self, name: &str) -> Vec<String> {
        self.csv(name).0
    }

    /// The scratch dir is empty and no mount is left under it.
    fn assert_no_leftovers(&self) {
        self.assert_scratch_empty();
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let scratch = self.path("scratch").display().to_string();
        assert!(
            !mounts.contains(&scratch),
            "a mount is left under {scratch}"
        );
    }
}

const TWO_CELLS: &str = r#"
name = "two"
[matrix]
word = ["alpha", "beta"]
[environment]
rootfs = "./rootfs"
env = { WORD = "{word}" }
[limits]
cpus = "0"
memory = "128MiB"
pids = 64
[run]
command = "echo value: ${#WORD}; echo \"extra 7 widgets\" > $BENCHBOX_METRICS; test ! -e /marker && touch /marker"
warmup = 1
runs = 2
[[metric]]
name = "length"
pattern = 'value: (\d+)'
[[metric]]
name = "extra"
"#;

#[test]
fn every_example_matrix_passes_check() {
    let envs = Path::new(env!("CARGO_MANIFEST_DIR")).join("envs");
    let mut n = 0;
    for entry in fs::read_dir(&envs).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "toml") {
            let o = run_cmd(common::benchbox().arg("check").arg(entry.path()));
            assert!(
                o.status.success(),
                "{}: {}",
                entry.path().display(),
                text(&o)
            );
            n += 1;
        }
    }
    assert!(n >= 1);
}

#[test]
fn a_bad_matrix_is_exit_2_with_a_position_and_leaves_nothing() {
    let p =
        Project::new("name = \"bad\"\n[limits]\nmemroy = \"1GiB\"\n[run]\ncommand = \"true\"\n");
    let o = p.run(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("m.toml:3:1"), "{err}");
    assert!(err.contains("memory"), "{err}");
    assert!(!p.path("out").exists(), "nothing may be created on disk");
    let o = run_cmd(&mut p.cmd(&["check", "m.toml"]));
    assert_eq!(o.status.code(), Some(2));
}

/// `--runs 0` on the command line is refused like `runs = 0` in the file, and so is a matrix
/// too large for `run` (which `check` still takes): exit 2, nothing created.
#[test]
fn run_refuses_runs_0_and_a_matrix_past_its_limit_before_creating_anything() {
    let p = Project::new(TWO_CELLS);
    let o = p.run(&["--runs", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("invalid value '0' for '--runs <RUNS>'"),
        "{err}"
    );
    assert!(!p.path("out").exists(), "nothing may be created on disk");

    let values = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    let big = format!(
        "[matrix]\na = [{}]\nb = [{}]\n[environment]\nrootfs = \"./rootfs\"\n[run]\ncommand = \"echo {{a}} {{b}}\"\n",
        values(250),
        values(201)
    );
    fs::write(p.path("m.toml"), big).unwrap();
    let o = p.run(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("m.toml:1:1: the matrix expands to 50,250 cells; `run` takes at most 50,000"),
        "{}",
        text(&o)
    );
    assert!(!p.path("out").exists(), "nothing may be created on disk");
    let o = run_cmd(&mut p.cmd(&["check", "m.toml"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "m.toml: ok, 50250 cell(s)\n"
    );
}

#[test]
fn a_run_writes_tidy_csv_versioned_json_logs_and_latest() {
    if !common::privileged() {
        return;
    }
    let p = Project::new(TWO_CELLS);
    let o = p.run(&[]);
    assert!(o.status.success(), "{}", text(&o));
    let header = p.csv_header("two");
    assert_eq!(&header[..4], ["cell", "label", "word", "phase"]);
    assert_eq!(&header[header.len() - 2..], ["length", "extra"]);
    let rows = p.csv_rows("two");
    assert_eq!(rows.len(), 6, "2 cells x (1 warm-up + 2 runs)");
    let length_col = header.iter().position(|h| h == "length").unwrap();
    let extra_col = header.iter().position(|h| h == "extra").unwrap();
    let exit_col = header.iter().position(|h| h == "exit_code").unwrap();
    for row in &rows {
        // Every invocation saw a fresh filesystem: `/marker` never survived.
        assert_eq!(&row[exit_col], "0", "{row:?}");
        let expected = if &row[2] == "alpha" { "5" } else { "4" };
        assert_eq!(&row[length_col], expected);
        assert_eq!(&row[extra_col], "7");
    }
    // Pressure stall time: whole microseconds on cgroup v2, empty on v1 (not measured is
    // never 0), per invocation in runs.csv (results.json has no samples).
    let v2 = host_is_v2();
    let json = p.results("two");
    for column in benchbox::measurement::Pressure::COLUMNS {
        let k = header.iter().position(|h| h == column).unwrap();
        assert!(
            k < length_col,
            "{column} is a fixed column, before the metrics"
        );
        for row in &rows {
            assert_eq!(row[k].parse::<u64>().is_ok(), v2, "{column}: {row:?}");
            assert_eq!(row[k].is_empty(), !v2, "{column}: {row:?}");
        }
    }
    assert!(
        json["cells"][0].get("samples").is_none(),
        "runs.csv alone has the samples"
    );
    assert_eq!(json["schema_version"], 2);
    assert_eq!(json["status"], "complete");
    assert!(json["host"]["kernel"].as_str().unwrap().len() > 1);
    assert_eq!(json["matrix_sha256"].as_str().unwrap().len(), 64);
    let cells = json["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2);
    assert_eq!(cells[0]["applied_limits"]["cpus"], "0");
    assert_eq!(cells[0]["applied_limits"]["memory_bytes"], 128u64 << 20);
    assert_eq!(cells[0]["summary"]["wall_s"]["n"], 2);
    // What the workload could do, recorded even at the default.
    assert_eq!(cells[0]["security"]["seccomp"], "default");
    assert_eq!(cells[0]["security"]["privileged"], false);
    assert_eq!(
        cells[0]["security"]["added_capabilities"],
        serde_json::json!([])
    );
    assert_eq!(
        cells[0]["security"]["capabilities"]
            .as_array()
            .unwrap()
            .len(),
        13
    );
    assert!(json["plan"]["cells"][0].get("security").is_none());
    let slug = cells[0]["slug"].as_str().unwrap();
    let logs = p.latest("two").join("logs");
    assert!(logs.join(slug).join("measure-0.out").exists());
    // Empty output leaves no log, and the spool files are gone after the run.
    assert!(!logs.join(slug).join("measure-0.err").exists());
    let hidden: Vec<_> = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("word=alpha") && stdout.contains("wall median"),
        "{stdout}"
    );
    p.assert_no_leftovers();
}

/// runs.csv is the one store of the samples: results.json holds none, so it does not grow with
/// the invocations and a run of a hundred is already smaller in results.json than in runs.csv.
#[test]
fn results_json_holds_no_samples_and_stays_smaller_than_runs_csv() {
    if !common::privileged() {
        return;
    }
    let p = Project::new(
        r#"
name = "many"
[environment]
rootfs = "./rootfs"
[run]
command = "true"
warmup = 0
# Enough rows that results.json's fixed part (plan, host, eight metrics' summaries with up
# to 20 outliers each: about 17 kB) is not what is compared: at 100 rows the two were equal.
runs = 300
"#,
    );
    let o = p.run(&[]);
    assert!(o.status.success(), "{}", text(&o));
    let dir = p.latest("many");
    let size = |f: &str| fs::metadata(dir.join(f)).unwrap().len();
    let (json, csv) = (size("results.json"), size("runs.csv"));
    assert!(json < csv, "results.json {json} B, runs.csv {csv} B");
    let results = p.results("many");
    assert!(results["cells"][0].get("samples").is_none());
    assert_eq!(results["cells"][0]["summary"]["wall_s"]["n"], 300);
    assert_eq!(p.csv_rows("many").len(), 300);
    p.assert_no_leftovers();
}

#[test]
fn failures_are_recorded_the_run_goes_on_and_exit_is_5() {
    if !common::privileged() {
        return;
    }
    let p = Project::new(
        r#"
name = "fails"
[matrix]
kind = ["ok", "exit", "oom", "slow"]
[environment]
rootfs = "./rootfs"
[limits]
memory = "32MiB"
[run]
command = "case {kind} in ok) true;; exit) exit 3;; oom) dd if=/dev/zero of=/dev/null bs=64M count=1;; slow) sleep 30 & sleep 30;; esac"
warmup = 0
runs = 2
timeout = "5s"
"#,
    );
    let o = p.run(&[]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    let rows = p.csv_rows("fails");
    assert_eq!(rows.len(), 8);
    let header = p.csv_header("fails");
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    for row in &rows {
        match &row[2] {
            "ok" => assert_eq!(&row[col("exit_code")], "0"),
            "exit" => assert_eq!(&row[col("exit_code")], "3"),
            "oom" => assert_eq!(&row[col("oom_killed")], "true", "{row:?}"),
            "slow" => assert_eq!(&row[col("timed_out")], "true"),
            other => panic!("{other}"),
        }
        let (status, reason) = match &row[2] {
            "ok" => ("ok", ""),
            "exit" => ("failed", "exit 3"),
            "oom" => ("oom", "killed: out of memory"),
            _ => ("timeout", "timed out"),
        };
        // `disturbed` depends on what else this shared machine runs meanwhile: not judged here.
        let flags: Vec<&str> = row[col("flags")]
            .split(';')
            .filter(|f| !f.is_empty() && *f != "disturbed")
            .collect();
        assert_eq!(
            (
                &row[col("status")],
                flags.join(";").as_str(),
                &row[col("reason")]
            ),
            (status, "", reason),
            "{row:?}"
        );
    }
    p.assert_no_leftovers();
    // The same matrix with failures allowed exits 0.
    let allowed = fs::read_to_string(p.path("m.toml"))
        .unwrap()
        .replace("runs = 2", "runs = 1\nallow-failures = true");
    fs::write(p.path("m.toml"), allowed).unwrap();
    let o = p.run(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn a_command_that_cannot_start_is_start_failed_with_a_reason() {
    if !common::privileged() {
        return;
    }
    let p = Project::new(
        r#"
name = "nostart"
[environment]
rootfs = "./rootfs"
[run]
command = ["/no/such/program"]
warmup = 0
runs = 1
"#,
    );
    let o = p.run(&[]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    let header = p.csv_header("nostart");
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let rows = p.csv_rows("nostart");
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][col("status")], "start-failed", "{:?}", rows[0]);
    assert_eq!(
        &rows[0][col("exit_code")],
        "",
        "it never ran, so it has no exit code"
    );
    assert!(
        rows[0][col("reason")].contains("/no/such/program"),
        "{:?}",
        rows[0]
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("FAILED: ") && stderr.contains("/no/such/program"),
        "{stderr}"
    );
    p.assert_no_leftovers();
}

#[test]
fn resume_runs_exactly_the_missing_invocations() {
    if !common::privileged() {
        return;
    }
    let p = Project::new(TWO_CELLS);
    let o = p.run(&["--runs", "1", "--warmup", "0"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.csv_rows("two").len(), 2);
    let dir = p.latest("two");
    let o = p.run(&[
        "--resume",
        dir.to_str().unwrap(),
        "--runs",
        "3",
        "--warmup",
        "0",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let rows = p.csv_rows("two");
    assert_eq!(rows.len(), 6, "1 done + 2 missing per cell");
    let mut keys: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r[0].to_string(), r[4].to_string()))
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 6, "no (cell, invocation) pair twice");
    assert_eq!(p.latest("two"), dir, "resume continues the same run");
}

#[test]
fn ctrl_c_tears_down_keeps_results_and_prints_how_to_resume() {
    if !common::privileged() {
        return;
    }
    let p = Project::new(
        &TWO_CELLS
            .replace("test ! -e /marker && touch /marker", "sleep 0.4")
            .replace("runs = 2", "runs = 20"),
    );
    let child = p
        .cmd(&["run", "m.toml", "--out", "out", "--resamples", "100"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupted once some invocations are done (however slow the machine: the VM lane
    // emulates its CPUs).
    wait_until("an invocation in runs.csv", || {
        fs::read_to_string(p.path("out/two/latest/runs.csv")).is_ok_and(|t| t.lines().count() > 1)
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--resume"), "{err}");
    let done = p.csv_rows("two").len();
    assert!((1..42).contains(&done), "{done}");
    assert_eq!(p.results("two")["status"], "interrupted");
    p.assert_no_leftovers();
    let o = p.run(&["--resume", "latest"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.csv_rows("two").len(), 42);
}

#[test]
fn plan_json_lists_stable_cell_ids() {
    let p = Project::new(TWO_CELLS);
    let plan = |args: &[&str]| {
        let o = run_cmd(&mut p.cmd(args));
        assert!(o.status.success(), "{}", text(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let a = plan(&["plan", "m.toml", "--json"]);
    fs::write(p.path("m.toml"), TWO_CELLS.replace("runs = 2", "runs = 9")).unwrap();
    let b = plan(&["plan", "m.toml", "--json"]);
    let ids = |v: &serde_json::Value| {
        v["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&a), ids(&b), "more runs keep the cell ids");
    assert_eq!(ids(&a).len(), 2);
    let text_plan = run_cmd(&mut p.cmd(&["plan", "m.toml"]));
    assert!(String::from_utf8_lossy(&text_plan.stdout).contains("word=alpha"));
}

#[test]
fn plan_shows_each_cells_security_and_check_rejects_a_bad_one() {
    let loosened = TWO_CELLS.replace(
        "[run]",
        "[security]\ncapabilities = [\"{word}\", \"cap_sys_ptrace\"]\n[run]",
    );
    let p = Project::new(&loosened.replace(
        "word = [\"alpha\", \"beta\"]",
        "word = [\"PERFMON\", \"SYS_PTRACE\"]",
    ));
    let o = run_cmd(&mut p.cmd(&["plan", "m.toml"]));
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("  security +PERFMON +SYS_PTRACE\n"),
        "{stdout}"
    );
    assert!(stdout.contains("  security +SYS_PTRACE\n"), "{stdout}");
    let o = run_cmd(&mut p.cmd(&["plan", "m.toml", "--json"]));
    assert!(o.status.success(), "{}", text(&o));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        plan["cells"][0]["security"],
        serde_json::json!({ "capabilities": ["PERFMON", "SYS_PTRACE"] })
    );
    assert_eq!(
        plan["cells"][1]["security"],
        serde_json::json!({ "capabilities": ["SYS_PTRACE"] })
    );

    // The default is shown too, in the text; the JSON leaves it out as plans always did.
    let p = Project::new(TWO_CELLS);
    let o = run_cmd(&mut p.cmd(&["plan", "m.toml"]));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout)
            .matches("  security default\n")
            .count(),
        2,
        "{}",
        text(&o)
    );

    let p = Project::new(&TWO_CELLS.replace("[run]", "[security]\nseccomp = \"off\"\n[run]"));
    let o = run_cmd(&mut p.cmd(&["check", "m.toml"]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("m.toml:13:11: invalid seccomp `off`\n  hint: valid seccomp values: default"),
        "{err}"
    );
    // Redundant, not wrong: a warning, and the file passes.
    let p = Project::new(&TWO_CELLS.replace(
        "[run]",
        "[security]\nprivileged = true\ncapabilities = [\"SYS_ADMIN\"]\n[run]",
    ));
    let o = run_cmd(&mut p.cmd(&["check", "m.toml"]));
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("warning: `privileged = true` in [security] already grants every capability"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_loosened_cell_gets_its_capability_and_is_called_out() {
    if !common::privileged() {
        return;
    }
    // An exact placeholder keeps the axis field's type: an array of capability names.
    let p = Project::new(
        r#"
name = "caps"
[matrix]
cap = [{ name = "default", add = [] }, { name = "ptrace", add = ["SYS_PTRACE"] }]
[environment]
rootfs = "./rootfs"
[security]
capabilities = "{cap.add}"
[run]
command = "grep CapEff /proc/self/status"
warmup = 0
runs = 1
"#,
    );
    let o = p.run(&[]);
    assert!(o.status.success(), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("warning: cell `cap=ptrace` runs with +SYS_PTRACE: its workload holds SYS_PTRACE beyond the default capabilities"),
        "{stderr}"
    );
    assert!(!stderr.contains("cell `cap=default` runs"), "{stderr}");
    let json = p.results("caps");
    let cells = json["cells"].as_array().unwrap();
    let ptrace = serde_json::json!("SYS_PTRACE");
    assert_eq!(
        cells[0]["security"]["added_capabilities"],
        serde_json::json!([])
    );
    assert!(
        !cells[0]["security"]["capabilities"]
            .as_array()
            .unwrap()
            .contains(&ptrace)
    );
    assert_eq!(
        cells[1]["security"]["added_capabilities"],
        serde_json::json!([ptrace])
    );
    assert!(
        cells[1]["security"]["capabilities"]
            .as_array()
            .unwrap()
            .contains(&ptrace)
    );
    // The workloads really hold what was recorded: CAP_SYS_PTRACE is bit 19 of CapEff.
    let cap_eff = |cell: &serde_json::Value| {
        let log = p
            .latest("caps")
            .join("logs")
            .join(cell["slug"].as_str().unwrap())
            .join("measure-0.out");
        let out = fs::read_to_string(log).unwrap();
        u64::from_str_radix(out.trim().trim_start_matches("CapEff:").trim(), 16).unwrap()
    };
    assert_eq!(cap_eff(&cells[0]) & (1 << 19), 0);
    assert_ne!(cap_eff(&cells[1]) & (1 << 19), 0);
    let summary = fs::read_to_string(p.latest("caps").join("summary.md")).unwrap();
    assert!(
        summary.contains("- **security**: `cap=default` default; `cap=ptrace` +SYS_PTRACE\n"),
        "{summary}"
    );
    assert!(
        summary.contains("> [!WARNING]\n> cell `cap=ptrace` runs with +SYS_PTRACE"),
        "{summary}"
    );
    // `report` rebuilds the same bytes, policies included.
    let before = fs::read(p.latest("caps").join("results.json")).unwrap();
    let o = run_cmd(&mut p.cmd(&["report", "out/caps/latest"]));
    assert!(o.status.success(), "{}", text(&o));
    assert!(fs::read(p.latest("caps").join("results.json")).unwrap() == before);
    p.assert_no_leftovers();
}

#[test]
fn the_quickstart_runs_on_the_host_filesystem() {
    if !common::privileged() {
        return;
    }
    let p = Project::new("");
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("envs/quickstart.toml");
    let o = run_cmd(&mut p.cmd(&[
        "run",
        quickstart.to_str().unwrap(),
        "--out",
        "out",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--resamples",
        "100",
    ]));
    assert!(o.status.success(), "{}", text(&o));
    let header = p.csv_header("quickstart");
    let col = header.iter().position(|h| h == "compressed").unwrap();
    let rows = p.csv_rows("quickstart");
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert!(row[col].parse::<u64>().unwrap() > 1_000_000, "{row:?}");
    }
    p.assert_no_leftovers();
}

/// A copy of `reports/example` (a run written before runs.csv had `status`, `flags` and
/// `reason`): its results.json and runs.csv, in a temp dir.
fn copy_of_the_example_run() -> tempfile::TempDir {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/example");
    let dir = tempfile::tempdir().unwrap();
    for f in ["results.json", "runs.csv"] {
        fs::copy(example.join(f), dir.path().join(f)).unwrap();
    }
    dir
}

#[test]
fn report_reads_an_older_run_and_excludes_and_warns_about_suspect_rows() {
    let old = copy_of_the_example_run();
    let o = run_cmd(common::benchbox().arg("report").arg(old.path()));
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("level=1  10 ") && !stdout.contains("suspect"),
        "{stdout}"
    );
    // Its results.json was schema version 1, every sample in it: rewritten in version 2,
    // without them (runs.csv has them).
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(old.path().join("results.json")).unwrap())
            .unwrap();
    assert_eq!(json["schema_version"], 2);
    assert!(json["cells"][0].get("samples").is_none());
    assert_eq!(json["cells"][0]["summary"]["wall_s"]["n"], 10);

    // The same run in the new layout, where two measured rows of level=1 say `suspect`: their
    // numbers are as good as the others', but the status column is the truth.
    let new = copy_of_the_example_run();
    let path = new.path().join("runs.csv");
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let at = header
        .iter()
        .position(|h| h == "involuntary_switches")
        .unwrap()
        + 1;
    let mut writer = csv::Writer::from_path(new.path().join("runs.new.csv")).unwrap();
    let mut h = header.clone();
    h.splice(at..at, ["status", "flags", "reason"].map(String::from));
    writer.write_record(&h).unwrap();
    let reason =
        "cgroup CPU 0.008 s is below 90% of the reaped tree's 0.742 s (were the counters reset?)";
    let mut suspect = 0;
    for record in reader.records() {
        let mut row: Vec<String> = record.unwrap().iter().map(String::from).collect();
        let mark = row[2] == "1" && row[3] == "measure" && suspect < 2;
        suspect += usize::from(mark);
        let inserted = if mark {
            ["suspect", "", reason]
        } else {
            ["ok", "", ""]
        };
        row.splice(at..at, inserted.map(String::from));
        writer.write_record(&row).unwrap();
    }
    writer.flush().unwrap();
    fs::rename(new.path().join("runs.new.csv"), &path).unwrap();

    let o = run_cmd(common::benchbox().arg("report").arg(new.path()));
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("failed  suspect"), "{stdout}");
    assert!(
        // "n of N": the excluded invocations show beside the planned count.
        stdout.contains("level=1  8 of 10 ") && stdout.contains("0/10     2/10"),
        "{stdout}"
    );
    assert!(
        stdout.contains("level=1: warning: 2 of 10 invocations suspect: cgroup CPU below rusage CPU; excluded from the statistics"),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(new.path().join("results.json")).unwrap())
            .unwrap();
    let cell = json["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["label"] == "level=1")
        .unwrap();
    assert_eq!(cell["suspect"], 2);
    assert_eq!(cell["failures"], 0);
    assert_eq!(cell["summary"]["wall_s"]["n"], 8);
    assert!(
        cell["warnings"][0]
            .as_str()
            .unwrap()
            .contains("hint: measured invocation "),
        "{cell}"
    );
    // Rewritten in the current schema: without the samples the version-1 file had.
    assert!(cell.get("samples").is_none(), "{cell}");
    let md = fs::read_to_string(new.path().join("summary.md")).unwrap();
    assert!(md.contains("| level=1 | 8 of 10 |"), "{md}");
    assert!(
        md.contains("`level=1`: 2 of 10 invocations suspect"),
        "{md}"
    );
    let html = fs::read_to_string(new.path().join("report.html")).unwrap();
    assert!(html.contains("2 suspect"), "{html}");
    // Rebuilt to the same bytes.
    let first = fs::read(new.path().join("results.json")).unwrap();
    let o = run_cmd(common::benchbox().arg("report").arg(new.path()));
    assert!(o.status.success(), "{}", text(&o));
    assert!(fs::read(new.path().join("results.json")).unwrap() == first);
    // compare sees 8 invocations of level=1 in the new run against 10 in the old.
    let o = run_cmd(
        common::benchbox()
            .args(["compare", "--format", "json"])
            .arg(old.path())
            .arg(new.path()),
    );
    assert!(
        o.status.code().is_some_and(|c| c == 0 || c == 10),
        "{}",
        text(&o)
    );
    let cmp: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let pair = cmp["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["label"] == "level=1" && p["metric"] == "wall_s")
        .unwrap();
    assert_eq!(
        (&pair["base_n"], &pair["candidate_n"]),
        (&10.into(), &8.into())
    );
}

#[test]
fn resume_refuses_an_older_runs_csv_and_leaves_it_alone() {
    if !common::privileged() {
        return;
    }
    let old = copy_of_the_example_run();
    let before = fs::read(old.path().join("runs.csv")).unwrap();
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("envs/quickstart.toml");
    let o = run_cmd(
        common::benchbox()
            .arg("run")
            .arg(&quickstart)
            .arg("--out")
            .arg(old.path().join("out"))
            .arg("--resume")
            .arg(old.path())
            .arg("--runs")
            .arg("11"),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot resume") && err.contains("written by an older benchbox"),
        "{err}"
    );
    assert!(fs::read(old.path().join("runs.csv")).unwrap() == before);
}

#[test]
fn help_documents_the_exit_codes() {
    let o = run_cmd(common::benchbox().arg("--help"));
    let out = String::from_utf8_lossy(&o.stdout);
    for code in ["0 ", "2 ", "3 ", "5 ", "10 ", "130 "] {
        assert!(out.contains(&format!("  {code}")), "{out}");
    }
    assert!(
        out.contains("\n  6    compare had nothing comparable"),
        "{out}"
    );
    assert!(
        out.contains("\n  7    the run directory is in use"),
        "{out}"
    );
    let o = run_cmd(common::benchbox().args(["compare", "--help"]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("--allow-partial") && out.contains("Exit 6"),
        "{out}"
    );
}

/// (cell, phase, invocation) of every row of a runs.csv, and whether one is there twice.
fn invocation_keys(rows: &[csv::StringRecord], header: &[String]) -> (Vec<String>, bool) {
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let mut keys: Vec<String> = rows
        .iter()
        .map(|r| format!("{} {} {}", &r[0], &r[col("phase")], &r[col("invocation")]))
        .collect();
    keys.sort();
    let len = keys.len();
    keys.dedup();
    let twice = keys.len() != len;
    (keys, twice)
}

/// `run --resume latest` while the run was still going was once accepted; runs.csv got
/// 22 rows for a 14-invocation plan and both processes exited 0.
#[test]
fn a_second_writer_of_a_live_run_is_refused_with_exit_7_and_readers_see_it_running() {
    if !common::privileged() {
        return;
    }
    let p = Project::new(
        &TWO_CELLS
            .replace("test ! -e /marker && touch /marker", "sleep 0.3")
            .replace("runs = 2", "runs = 6"),
    );
    let live = p
        .cmd(&["run", "m.toml", "--out", "out", "--resamples", "200"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.pids.borrow_mut().push(live.id());
    // Until the live run has written a row.
    let csv = p.path("out/two/latest/runs.csv");
    let started = std::time::Instant::now();
    while fs::read_to_string(&csv).map_or(0, |t| t.lines().count()) < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the live run wrote nothing"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = p.run(&["--resume", "latest"]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("is in use: benchbox run (pid ") && err.contains("holds its lock"),
        "{err}"
    );
    // `report` leaves a live run's files alone; `compare` says it is still running (exit 6),
    // and compares what it has with --allow-partial.
    let o = run_cmd(&mut p.cmd(&["report", "out/two/latest"]));
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is still running (benchbox run (pid "),
        "{}",
        text(&o)
    );
    assert!(
        !p.path("out/two/latest/summary.md").exists(),
        "report wrote into a live run"
    );
    let o = run_cmd(&mut p.cmd(&["compare", "out/two/latest", "out/two/latest"]));
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("is still running (benchbox run (pid "),
        "{out}"
    );
    assert!(
        out.contains("not comparable: the candidate run ")
            && out.contains("is running, not complete"),
        "{out}"
    );
    let o = run_cmd(&mut p.cmd(&[
        "compare",
        "out/two/latest",
        "out/two/latest",
        "--allow-partial",
    ]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("(compared anyway: --allow-partial)")
            && !out.contains("not comparable: the candidate run"),
        "{}",
        text(&o)
    );

    let o = live.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let rows = p.csv_rows("two");
    assert_eq!(
        rows.len(),
        14,
        "2 cells x (1 warm-up + 6 runs), nothing twice"
    );
    let (_, twice) = invocation_keys(&rows, &p.csv_header("two"));
    assert!(!twice);
    assert_eq!(p.results("two")["status"], "complete");
    // Free again: report and resume work.
    let o = run_cmd(&mut p.cmd(&["report", "out/two/latest"]));
    assert!(o.status.success(), "{}", text(&o));
    p.assert_no_leftovers();
}

/// After a crash or a full disk, a torn last row once made `report` exit 2 and `--resume`
/// exit 1.
#[test]
fn a_torn_last_row_is_left_out_by_report_and_run_again_by_resume() {
    if !common::privileged() {
        return;
    }
    let p = Project::new(TWO_CELLS);
    let o = p.run(&[]);
    assert!(o.status.success(), "{}", text(&o));
    let csv = p.latest("two").join("runs.csv");
    let whole = fs::read_to_string(&csv).unwrap();
    fs::write(&csv, &whole[..whole.len() - 12]).unwrap();
    let o = run_cmd(&mut p.cmd(&["report", "out/two/latest"]));
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("runs.csv` line 7: the last row is incomplete (an interrupted write: a crash or a full disk); it is left out, and `--resume` runs that invocation again"),
        "{err}"
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("1 of 2 "),
        "{}",
        text(&o)
    );
    let o = p.run(&["--resume", "latest"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("line 7: the last row is incomplete (an interrupted write: a crash or a full disk); it was cut off, and that invocation runs again"),
        "{}",
        text(&o)
    );
    let rows = p.csv_rows("two");
    assert_eq!(rows.len(), 6);
    assert!(!invocation_keys(&rows, &p.csv_header("two")).1);
    assert_eq!(p.results("two")["status"], "complete");
    p.assert_no_leftovers();
}

/// SIGKILL right after the last invocation once left `complete` with no summary.md,
/// report.html or plots. Now `complete` is written after them; a run left `running` is
/// finished by `report`, and `--resume` of a complete run re-renders it. Also: results.json
/// was 0600.
#[test]
fn complete_means_the_reports_exist_and_report_or_resume_finish_a_killed_run() {
    if !common::privileged() {
        return;
    }
    let p = Project::new(&TWO_CELLS.replace("runs = 2", "runs = 3"));
    let o = p.run(&[]);
    assert!(o.status.success(), "{}", text(&o));
    for f in ["results.json", "runs.csv", "summary.md", "report.html"] {
        let mode = fs::metadata(p.latest("two").join(f)).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o644,
            "{f}"
        );
    }

    // Killed the moment its last row is written.
    let mut child = p
        .cmd(&["run", "m.toml", "--out", "killed", "--resamples", "200"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    p.pids.borrow_mut().push(child.id());
    let started = std::time::Instant::now();
    let dir = loop {
        let found = fs::read_dir(p.path("killed/two"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|d| fs::read_to_string(d.join("runs.csv")).is_ok_and(|t| t.lines().count() == 9));
        if let Some(d) = found {
            break d;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no complete runs.csv"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    let status = |d: &Path| -> String {
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(d.join("results.json")).unwrap()).unwrap();
        json["status"].as_str().unwrap().to_string()
    };
    // Whenever it died, `complete` comes with its reports.
    match status(&dir).as_str() {
        "running" => {}
        "complete" => {
            assert!(dir.join("summary.md").exists() && dir.join("report.html").exists());
        }
        other => panic!("status {other}"),
    }
    let copy = p.path("killed-copy");
    fs::create_dir(&copy).unwrap();
    for f in ["results.json", "runs.csv"] {
        fs::copy(dir.join(f), copy.join(f)).unwrap();
    }
    let o = run_cmd(&mut p.cmd(&["report", dir.to_str().unwrap()]));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(status(&dir), "complete");
    assert!(dir.join("summary.md").exists() && dir.join("report.html").exists());
    assert!(dir.join("plots").is_dir());
    // The copy is finished by --resume instead: nothing to run, the reports are written.
    let o = p.run(&["--resume", copy.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("0 invocation(s), 8 already done"),
        "{}",
        text(&o)
    );
    assert_eq!(status(&copy), "complete");
    assert!(copy.join("summary.md").exists() && copy.join("report.html").exists());
    // And --resume of a complete run just re-renders: a deleted report comes back.
    fs::remove_file(copy.join("report.html")).unwrap();
    let rows = fs::read(copy.join("runs.csv")).unwrap();
    let o = p.run(&["--resume", copy.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(copy.join("report.html").exists());
    assert!(
        fs::read(copy.join("runs.csv")).unwrap() == rows,
        "nothing was run again"
    );
    p.assert_no_leftovers();
}

/// `run ... 2>&1 | head -3` once exited 101 (a panic writing to the closed pipe).
#[test]
fn a_closed_output_pipe_does_not_stop_the_run() {
    if !common::privileged() {
        return;
    }
    let p = Project::new(TWO_CELLS);
    let script = format!(
        "set -o pipefail; '{}' run m.toml --out out --resamples 200 2>&1 | head -3; echo \"exit ${{PIPESTATUS[0]}}\"",
        env!("CARGO_BIN_EXE_benchbox")
    );
    let o = run_cmd(
        Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(p.dir())
            .env("BENCHBOX_SCRATCH", p.path("scratch")),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(out.ends_with("exit 0\n"), "{out}");
    assert_eq!(p.results("two")["status"], "complete");
    assert!(p.latest("two").join("summary.md").exists());
    // report and compare, cut short the same way.
    for cmd in [
        "report out/two/latest",
        "compare out/two/latest out/two/latest",
    ] {
        let script = format!(
            "'{}' {cmd} | head -1; echo \"exit ${{PIPESTATUS[0]}}\"",
            env!("CARGO_BIN_EXE_benchbox")
        );
        let o = run_cmd(
            Command::new("bash")
                .arg("-c")
                .arg(&script)
                .current_dir(p.dir()),
        );
        assert!(
            String::from_utf8_lossy(&o.stdout).ends_with("exit 0\n"),
            "{cmd}: {}",
            text(&o)
        );
    }
    p.assert_no_leftovers();
}

/// summary.md once did not escape axis values, and it goes to $GITHUB_STEP_SUMMARY.
#[test]
fn axis_values_cannot_inject_markdown() {
    if !common::privileged() {
        return;
    }
    let p = Project::new(&TWO_CELLS.replace(
        "word = [\"alpha\", \"beta\"]",
        "word = [\"<script>alert(1)</script>\", \"![x](http://evil.example/p.png)\"]",
    ));
    let o = p.run(&["--runs", "1", "--warmup", "0"]);
    assert!(o.status.success(), "{}", text(&o));
    let summary = fs::read_to_string(p.latest("two").join("summary.md")).unwrap();
    assert!(
        summary.contains("| word=\\<script\\>alert(1)\\</script\\> | 1 |"),
        "{summary}"
    );
    assert!(
        summary.contains("| word=\\!\\[x\\](http://evil.example/p.png) | 1 |"),
        "{summary}"
    );
    let step = p.path("step.md");
    let o = run_cmd(
        p.cmd(&[
            "compare",
            "out/two/latest",
            "out/two/latest",
            "--format",
            "md",
        ])
        .env("GITHUB_STEP_SUMMARY", &step),
    );
    assert!(o.status.code().is_some(), "{}", text(&o));
    let md = fs::read_to_string(&step).unwrap();
    assert!(
        md.contains("| word=\\<script\\>alert(1)\\</script\\> | wall_s |"),
        "{md}"
    );
    assert!(!md.contains("<script>") && !md.contains("!["), "{md}");
}

#[test]
fn a_killed_benchbox_leaves_no_process_and_the_next_run_sweeps_its_cgroup_and_scratch() {
    if !common::privileged() {
        return;
    }
    let p = Project::alone(
        &TWO_CELLS
            .replace("test ! -e /marker && touch /marker", "sleep 876543")
            .replace("runs = 2", "runs = 1"),
    );
    let mut child = p
        .cmd(&["run", "m.toml", "--out", "out"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Its group: v1 makes one per controller (pids, since the cell has a pids limit); v2 one.
    let parent = benchbox::sandbox::cgroup::detect_host()
        .unwrap()
        .parent_dir("pids")
        .unwrap();
    let stale = parent.join(format!("inv-{pid}-0"));
    // Killed once its first workload runs (however slow the machine).
    wait_until("the first workload", || {
        stale.exists()
            && fs::read_dir("/proc").unwrap().flatten().any(|e| {
                fs::read_to_string(e.path().join("cmdline"))
                    .is_ok_and(|c| c == "sleep\u{0}876543\u{0}")
            })
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // The container died with benchbox (parent-death signal).
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let cmd = fs::read_to_string(entry.path().join("cmdline")).unwrap_or_default();
        assert!(
            cmd != "sleep\u{0}876543\u{0}",
            "a workload outlived benchbox: {cmd}"
        );
    }
    assert!(
        stale.exists(),
        "the killed run's cgroup should still be there: {}",
        stale.display()
    );
    // The next run removes what the killed one left: its cgroups and its scratch directory.
    fs::write(
        p.path("m.toml"),
        TWO_CELLS
            .replace("runs = 2", "runs = 1")
            .replace("warmup = 1", "warmup = 0"),
    )
    .unwrap();
    let o = p.run(&[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!stale.exists(), "stale cgroup {}", stale.display());
    p.assert_no_leftovers();
    // What the killed run had finished is on disk: its results.json says it never finished.
    let runs: Vec<_> = fs::read_dir(p.path("out/two"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != "latest" && e.path().join("results.json").exists())
        .collect();
    assert_eq!(runs.len(), 2);
}

/// Two cells under a memory limit: one fits, one is OOM-killed (the limit holds).
const LIMITED: &str = r#"
name = "limited"
[matrix]
mib = [8, 96]
[environment]
rootfs = "./rootfs"
[limits]
memory = "48MiB"
pids = 64
[run]
command = "dd if=/dev/zero of=/dev/null bs={mib}M count=1 2>/dev/null"
warmup = 0
runs = 1
allow-failures = true
"#;

/// The status of each cell of a LIMITED run, in axis order.
fn limited_statuses(p: &Project) -> Vec<(String, String)> {
    let header = p.csv_header("limited");
    let status = header.iter().position(|h| h == "status").unwrap();
    let mut got: Vec<(String, String)> = p
        .csv_rows("limited")
        .iter()
        .map(|r| (r[2].to_string(), r[status].to_string()))
        .collect();
    got.sort_by_key(|(mib, _)| mib.parse::<u32>().unwrap());
    got
}

/// `--cgroup-parent` and `BENCHBOX_CGROUP_PARENT`: the groups are made under the group asked
/// for (made level by level if missing; on v1 in every hierarchy), the limits hold there, and
/// nothing of a run is left in it.
#[test]
fn the_cgroup_parent_is_the_one_asked_for() {
    if !common::privileged() {
        return;
    }
    let p = Project::new(LIMITED);
    let top = format!("bbtest-parent-{}", std::process::id());
    let flag = format!("/{top}/flag");
    let env = format!("/{top}/env");
    let run_with = |how: &str| match how {
        "flag" => p.run(&["--cgroup-parent", &flag]),
        _ => {
            let mut cmd = p.cmd(&["run", "m.toml", "--out", "out", "--resamples", "200"]);
            run_cmd(cmd.env("BENCHBOX_CGROUP_PARENT", &env))
        }
    };
    let hierarchy =
        |asked: &str| benchbox::sandbox::cgroup::detect_host_in(Some(Path::new(asked))).unwrap();
    for (how, asked) in [("flag", &flag), ("env", &env)] {
        let parent = hierarchy(asked).parent_dir("memory").unwrap();
        assert!(!parent.exists(), "{}", parent.display());
        let o = run_with(how);
        assert!(o.status.success(), "{how}: {}", text(&o));
        assert_eq!(
            limited_statuses(&p),
            [("8".into(), "ok".into()), ("96".into(), "oom".into())],
            "{how}"
        );
        assert!(parent.is_dir(), "{how}: {}", parent.display());
        let left: Vec<_> = fs::read_dir(&parent)
            .unwrap()
            .flatten()
            .filter(|e| e.file_type().unwrap().is_dir())
            .map(|e| e.file_name())
            .collect();
        assert!(
            left.is_empty(),
            "{how}: groups left in the parent: {left:?}"
        );
        if host_is_v2() {
            let enabled = fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap();
            assert!(
                enabled.contains("memory") && enabled.contains("pids"),
                "{how}: {enabled}"
            );
        }
    }
    // Clean up what the runs made: the parents, then the level above, in every hierarchy.
    for asked in [&flag, &env] {
        for controller in ["cpuset", "cpu", "cpuacct", "memory", "pids", "blkio", "io"] {
            if let Some(dir) = hierarchy(asked).parent_dir(controller) {
                let _ = fs::remove_dir(dir);
            }
        }
    }
    for controller in ["cpuset", "cpu", "cpuacct", "memory", "pids", "blkio", "io"] {
        if let Some(dir) = hierarchy(&flag).parent_dir(controller) {
            let _ = fs::remove_dir(dir.parent().unwrap());
        }
    }
    let e = p.run(&["--cgroup-parent", "/a/../b"]);
    assert_eq!(e.status.code(), Some(2), "{}", text(&e));
    assert!(
        String::from_utf8_lossy(&e.stderr).contains(
            "cannot use `/a/../b` as the cgroup parent: it may only name groups: no `.` or `..`"
        ),
        "{}",
        text(&e)
    );
}

/// systemd's layout (the VM lane's): benchbox started, as root, in a group systemd delegated
/// (`Delegate=yes`, marked with the `trusted.delegate` xattr) makes its groups there. It first
/// moves itself into a leaf of that group, then enables the controllers in it ("no internal
/// processes"), and the invocations' groups are siblings of the leaf. The limits hold.
#[test]
fn v2_in_a_delegated_group_benchbox_moves_into_a_leaf_and_makes_its_groups_beside_it() {
    if !common::privileged() {
        return;
    }
    if !host_is_v2() {
        assert!(
            std::env::var_os("BENCHBOX_REQUIRE_CGROUP_V2").is_none(),
            "this host's cgroups are v1, and BENCHBOX_REQUIRE_CGROUP_V2 is set"
        );
        eprintln!("skipping: this host's cgroups are v1 (tests/vm/lane runs this test on v2)");
        return;
    }
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let own = own.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
    // A sibling of this test's own group (the lane's system.slice/lane.service), like a unit.
    let unit = Path::new("/sys/fs/cgroup")
        .join(own.trim_start_matches('/'))
        .parent()
        .unwrap()
        .join(format!("bbtest-{}.scope", std::process::id()));
    fs::create_dir(&unit).unwrap();
    xattr::set(&unit, "trusted.delegate", b"1").unwrap();
    let p = Project::new(LIMITED);
    let mut cmd = p.cmd(&["run", "m.toml", "--out", "out", "--resamples", "200"]);
    let procs = std::ffi::CString::new(
        unit.join("cgroup.procs")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    // SAFETY: only open, write and close (async-signal-safe) between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(fd);
            Ok(())
        });
    }
    let o = run_cmd(&mut cmd);
    let enabled = fs::read_to_string(unit.join("cgroup.subtree_control")).unwrap();
    let leaf = unit.join("benchbox-leaf");
    let children: Vec<_> = fs::read_dir(&unit)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name())
        .collect();
    // Clean up before asserting: benchbox is gone, so is everything it ran.
    let _ = fs::remove_dir(&leaf);
    let _ = fs::remove_dir(&unit);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        limited_statuses(&p),
        [("8".into(), "ok".into()), ("96".into(), "oom".into())]
    );
    assert!(
        enabled.contains("memory") && enabled.contains("pids") && enabled.contains("cpu"),
        "benchbox enabled its controllers in the delegated group: {enabled:?}"
    );
    assert_eq!(
        children,
        ["benchbox-leaf"],
        "the leaf benchbox moved into, and none of its invocations' groups left"
    );
    let results = p.results("limited");
    assert_eq!(
        results["cells"][1]["applied_limits"]["memory_bytes"],
        48u64 << 20
    );
}

/// `report --resamples N` wins over the recorded count and the large-sample rule, and is
/// recorded in results.json: every interval of the rebuilt reports is the bootstrap with N.
#[test]
fn report_resamples_is_recorded_and_changes_the_intervals() {
    if !common::privileged() {
        return;
    }
    let p = Project::new(&TWO_CELLS.replace("runs = 2", "runs = 6"));
    let o = p.run(&[]);
    assert!(o.status.success(), "{}", text(&o));
    let before = p.results("two");
    assert_eq!(before["stats"]["resamples"], 200);
    assert!(before["stats"].get("resamples_explicit").is_some());
    let dir = p.latest("two");
    let o = run_cmd(&mut p.cmd(&["report", dir.to_str().unwrap(), "--resamples", "333"]));
    assert!(o.status.success(), "{}", text(&o));
    let after = p.results("two");
    assert_eq!(after["stats"]["resamples"], 333);
    assert_eq!(after["stats"]["resamples_explicit"], true);
    assert_eq!(after["stats"]["seed"], before["stats"]["seed"]);
    let ci = |v: &serde_json::Value| v["cells"][0]["summary"]["wall_s"]["median_ci"].clone();
    assert!(!ci(&after).is_null());
    assert_ne!(
        ci(&before),
        ci(&after),
        "another count of resamples, other draws"
    );
}
