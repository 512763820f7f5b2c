//! perf_event counters, end to end on the busybox rootfs: the software counters are recorded
//! for every invocation and agree with the cgroup's CPU time; the hardware ones are there
//! exactly when the host has a PMU (absent, not empty, on one without: this VM); `[run]
//! counters = false` records none and keeps the cells' ids; a rootless run still succeeds.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

use common::project::{Project, text};
use common::{NOBODY, give_to_nobody};

const SOFTWARE: [&str; 4] = [
    "task_clock_s",
    "context_switches",
    "cpu_migrations",
    "page_faults",
];
const HARDWARE: [&str; 5] = [
    "instructions",
    "cycles",
    "branches",
    "branch_misses",
    "cache_misses",
];

fn has_pmu() -> bool {
    Path::new("/sys/bus/event_source/devices/cpu").exists()
}

/// Two cells of different CPU work; each invocation also starts a child (`sleep`) and waits
/// for it, so the counts must include the workload's descendants.
fn matrix(extra: &str) -> String {
    format!(
        r#"
name = "counted"
[matrix]
n = [20000, 100000]
[environment]
rootfs = "./rootfs"
[run]
command = "i=0; while [ $i -lt {{n}} ]; do i=$((i+1)); done; sleep 0.01 & wait"
warmup = 1
runs = 3
{extra}
"#
    )
}

fn column(header: &[String], name: &str) -> Option<usize> {
    header.iter().position(|h| h == name)
}

fn number(row: &csv::StringRecord, at: usize) -> f64 {
    row[at]
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {:?}", &row[at]))
}

const NO_PMU_NOTE: &str = "no hardware counters (instructions, cycles, branches, cache misses)";

#[test]
fn software_counters_are_recorded_and_agree_with_the_cgroups_cpu_time() {
    if !common::privileged() {
        return;
    }
    let p = Project::new(&matrix(""));
    let o = p
        .cmd(&["run", "m.toml", "--out", "out", "--resamples", "100"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    // One note why the hardware counters are absent, said once for the run.
    assert_eq!(
        err.matches(NO_PMU_NOTE).count(),
        usize::from(!has_pmu()),
        "{err}"
    );

    let (header, rows) = p.csv("counted");
    // After every older column: the disturbance ones end just before the counters.
    let last = column(&header, "disturbance_scope").unwrap();
    assert_eq!(header[last + 1], "task_clock_s", "{header:?}");
    for name in SOFTWARE.iter().chain(["counters_scaled"].iter()) {
        assert!(
            column(&header, name).is_some(),
            "{name} missing: {header:?}"
        );
    }
    for name in HARDWARE {
        assert_eq!(
            column(&header, name).is_some(),
            has_pmu(),
            "{name}: present exactly when the host has a PMU: {header:?}"
        );
    }
    let at = |name| column(&header, name).unwrap();
    assert_eq!(rows.len(), 8);
    for row in &rows {
        let cpu = number(row, at("user_s")) + number(row, at("system_s"));
        let task_clock = number(row, at("task_clock_s"));
        assert!(
            task_clock >= 0.5 * cpu && task_clock <= 2.0 * cpu + 0.020,
            "task-clock {task_clock} s against the cgroup's CPU time {cpu} s: {row:?}"
        );
        assert!(number(row, at("context_switches")) >= 1.0, "{row:?}");
        assert!(number(row, at("page_faults")) > 0.0, "{row:?}");
        assert!(!row[at("cpu_migrations")].is_empty(), "{row:?}");
        assert!(
            ["true", "false"].contains(&&row[at("counters_scaled")]),
            "{row:?}"
        );
        if has_pmu() {
            assert!(number(row, at("instructions")) > 0.0, "{row:?}");
        }
    }

    // Summaries like any other metric, in results.json; no hardware ones without a PMU.
    let results = p.results("counted");
    for cell in results["cells"].as_array().unwrap() {
        let summary = cell["summary"].as_object().unwrap();
        for name in SOFTWARE {
            assert!(summary.contains_key(name), "{name}: {summary:?}");
        }
        for name in HARDWARE {
            assert_eq!(summary.contains_key(name), has_pmu(), "{name}: {summary:?}");
        }
    }

    // And `compare` takes them by name (here a run against itself: no change).
    let dir = p.latest("counted");
    let dir = dir.to_str().unwrap();
    let o = p
        .cmd(&[
            "compare",
            dir,
            dir,
            "--metric",
            "context_switches",
            "--metric",
            "task_clock",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for cell in ["n=20000", "n=100000"] {
        for metric in ["context_switches", "task_clock_s"] {
            assert!(
                out.lines()
                    .any(|l| l.starts_with(cell) && l.contains(metric) && l.contains("+0.0%")),
                "{cell} {metric}: {}",
                text(&o)
            );
        }
    }
    let o = p
        .cmd(&["compare", dir, dir, "--metric", "instructions"])
        .output()
        .unwrap();
    if !has_pmu() {
        // Not counted on this host: said, not compared as zeros.
        assert_eq!(o.status.code(), Some(6), "{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout)
                .contains("metric `instructions` has no value in the base run"),
            "{}",
            text(&o)
        );
    }
}

#[test]
fn counters_off_records_none_and_keeps_the_ids() {
    if !common::privileged() {
        return;
    }
    let on = Project::new(&matrix(""));
    let off = Project::new(&matrix("counters = false"));
    let ids = |p: &Project| -> Vec<String> {
        let o = p
            .cmd(&["run", "m.toml", "--out", "out", "--resamples", "100"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let (header, rows) = p.csv("counted");
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        if p.path("m.toml") == off.path("m.toml") {
            for name in SOFTWARE.iter().chain(&HARDWARE).chain(&["counters_scaled"]) {
                assert!(column(&header, name).is_none(), "{name}: {header:?}");
            }
            // Nothing counted, so nothing to explain.
            assert!(!err.contains("counters"), "{err}");
            let results = p.results("counted");
            let summary = results["cells"][0]["summary"].as_object().unwrap();
            assert!(!summary.contains_key("context_switches"), "{summary:?}");
        }
        let mut ids: Vec<String> = rows.iter().map(|r| r[0].to_string()).collect();
        ids.sort();
        ids.dedup();
        ids
    };
    assert_eq!(ids(&off), ids(&on));
}

/// `BENCHBOX_COUNTERS=off` turns them off for every cell, whatever the matrix says, and says so
/// once (the VM lane sets it: under emulation the counters' cross-CPU calls locked the guest up).
#[test]
fn the_environment_can_turn_the_counters_off() {
    if !common::privileged() {
        return;
    }
    let p = Project::new(&matrix(""));
    let o = p
        .cmd(&["run", "m.toml", "--out", "out", "--resamples", "100"])
        .env("BENCHBOX_COUNTERS", "off")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.matches("BENCHBOX_COUNTERS=off: no perf_event counters")
            .count(),
        1,
        "{err}"
    );
    assert!(
        !err.contains(NO_PMU_NOTE),
        "nothing probed, nothing to explain: {err}"
    );
    let (header, rows) = p.csv("counted");
    assert!(!rows.is_empty());
    for name in SOFTWARE.iter().chain(&HARDWARE).chain(&["counters_scaled"]) {
        assert!(column(&header, name).is_none(), "{name}: {header:?}");
    }
}

/// Rootless, the kernel may refuse counters (`kernel.perf_event_paranoid`): the run still
/// succeeds; each software counter is either recorded for every invocation or absent with a
/// note saying why.
#[test]
fn a_rootless_run_succeeds_whatever_the_kernel_allows() {
    if !common::privileged() {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("benchbox-counters-")
        .tempdir()
        .unwrap();
    let p = Project::at(dir, &matrix(""), true);
    fs::set_permissions(p.path("rootfs/tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::create_dir(p.path("home")).unwrap();
    let binary = p.path("benchbox");
    common::copy_executable(Path::new(env!("CARGO_BIN_EXE_benchbox")), &binary);
    fs::set_permissions(&binary, fs::Permissions::from_mode(0o755)).unwrap();
    give_to_nobody(p.dir());
    let mut c = std::process::Command::new(&binary);
    c.current_dir(p.dir())
        .args(["run", "m.toml", "--out", "out", "--resamples", "100"])
        .env("HOME", p.path("home"))
        .env("XDG_CACHE_HOME", p.path("home/.cache"))
        .env("BENCHBOX_SCRATCH", p.path("scratch"));
    // SAFETY: plain system calls on constants, between fork and exec.
    unsafe {
        c.pre_exec(|| {
            let failed = libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(NOBODY) != 0
                || libc::setuid(NOBODY) != 0;
            if failed {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let (header, rows) = p.csv("counted");
    for name in SOFTWARE {
        match column(&header, name) {
            Some(at) => {
                // Counted on benchbox itself, so on the workload too (it is in a user
                // namespace benchbox's user owns): a value in every row.
                assert!(rows.iter().all(|r| !r[at].is_empty()), "{name}: {rows:?}");
            }
            None => assert!(
                err.contains("the kernel refused the perf_event counters") && err.contains(name),
                "{name} absent without a note: {err}"
            ),
        }
    }
    if let Some(at) = column(&header, "context_switches") {
        assert!(rows.iter().all(|r| number(r, at) >= 1.0), "{rows:?}");
    }
}
