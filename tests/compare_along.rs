//! End to end through the `benchbox` binary: `compare RUN --along rev` on real runs of a
//! matrix whose `rev` axis mounts two "builds" (directories holding a busy-loop script), as a
//! pull request's gate does with the base and head builds.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Mutex;

use common::project::{Project, text};

/// base and head on one machine, interleaved; `size` is a second axis, so each head cell has
/// its own base cell to pair with.
const MATRIX: &str = r#"
name = "gate"
[matrix]
rev = ["base", "head"]
size = ["small", "large"]
[environment]
rootfs = "./rootfs"
volumes = ["./builds/{rev}:/build:ro"]
env = { SIZE = "{size}" }
[limits]
memory = "64MiB"
pids = 32
[run]
command = "sh /build/load.sh"
warmup = 1
runs = 20
"#;

static RUNS: Mutex<()> = Mutex::new(());

/// A busy loop of `n` iterations (twice that for `large` cells): at 15,000, about 25 ms of CPU
/// time (50 for `large`) on a quiet machine.
fn busy(n: u32) -> String {
    format!(
        "n={n}; [ \"$SIZE\" = large ] && n=$((n * 2)); i=0; while [ $i -lt $n ]; do i=$((i+1)); done\n"
    )
}

/// A sleep of `ms` milliseconds (twice that for `large` cells), under 1 s. On this shared
/// machine (a VM whose neighbours compile) a busy loop's wall and even CPU time swing by tens of
/// percent from minute to minute, which no 20 invocations can tell from a 20% slowdown; a
/// sleep's wall time only by its start and wake-up latency (up to ~10 ms when loaded), small
/// beside 80 ms.
fn sleep(ms: u32) -> String {
    format!("ms={ms}; [ \"$SIZE\" = large ] && ms=$((ms * 2)); sleep \"0.$(printf %03d $ms)\"\n")
}

/// The project with a base build running `base` and a head build running `head`, run once.
fn gate_run(base: &str, head: &str) -> (Project, PathBuf) {
    let p = Project::new(MATRIX);
    // One run at a time: this file's runs would otherwise compete for the same cores.
    let _one = RUNS.lock().unwrap_or_else(|e| e.into_inner());
    for (rev, n) in [("base", base), ("head", head)] {
        fs::create_dir_all(p.path(&format!("builds/{rev}"))).unwrap();
        fs::write(p.path(&format!("builds/{rev}/load.sh")), n).unwrap();
    }
    let o = p
        .cmd(&["run", "m.toml", "--out", "out", "--resamples", "2000"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let run = p.latest("gate");
    (p, run)
}

fn compare(p: &Project, run: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["compare", run.to_str().unwrap(), "--resamples", "2000"];
    args.extend_from_slice(extra);
    p.cmd(&args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_head_20_percent_slower_fails_the_gate() {
    if !common::privileged() {
        return;
    }
    let (p, run) = gate_run(&sleep(80), &sleep(96));

    // The gate's defaults: wall time, threshold 5%.
    let step_summary = p.path("step-summary.md");
    let o = p
        .cmd(&[
            "compare",
            run.to_str().unwrap(),
            "--along",
            "rev",
            "--resamples",
            "2000",
        ])
        .env("GITHUB_STEP_SUMMARY", &step_summary)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(10), "{}", text(&o));
    let out = stdout(&o);
    assert!(
        out.contains("along rev: each cell vs the cell with rev=base and the same other values"),
        "{out}"
    );
    for label in ["rev=head size=small", "rev=head size=large"] {
        let line = out.lines().find(|l| l.starts_with(label)).unwrap_or("");
        assert!(line.contains("REGRESSION"), "{label}: {out}");
    }
    assert!(out.contains("2 regression(s)"), "{out}");
    assert!(out.trim_end().ends_with("FAIL (exit 10)"), "{out}");
    let md = fs::read_to_string(&step_summary).unwrap();
    assert!(
        md.starts_with("## benchbox compare along `rev`: 2 regression(s)"),
        "{md}"
    );

    // head as the base: base is faster, an improvement, which passes.
    let o = compare(
        &p,
        &run,
        &["--along", "rev", "--base", "head", "--format", "json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(json["along"]["axis"], "rev");
    assert_eq!(json["along"]["base"], "head");
    assert_eq!(json["along"]["values"], serde_json::json!(["base"]));
    assert_eq!(json["improvements"], 2, "{json}");
    assert_eq!(json["pairs"][0]["label"], "rev=base size=small");
}

#[test]
fn equal_builds_pass_and_bad_arguments_say_what_is_valid() {
    if !common::privileged() {
        return;
    }
    let (p, run) = gate_run(&busy(15_000), &busy(15_000));
    let o = compare(&p, &run, &["--along", "rev", "--format", "md"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = stdout(&o);
    assert!(out.contains("0 regression(s)"), "{out}");
    assert!(
        out.contains("| rev=head size=small | wall_s | 20 / 20 |"),
        "{out}"
    );

    // Along the other axis: large (twice the loop) against small, the first declared value.
    let o = compare(&p, &run, &["--along", "size"]);
    assert_eq!(o.status.code(), Some(10), "{}", text(&o));
    assert!(stdout(&o).contains("2 regression(s)"), "{}", text(&o));

    let usage = |extra: &[&str], expected: &str| {
        let o = compare(&p, &run, extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(expected), "{extra:?}: {err}");
    };
    usage(
        &["--along", "revision"],
        "error: the run has no axis `revision` to compare along\n  hint: did you mean `rev`? the run's axes: rev, size",
    );
    usage(
        &["--along", "rev", "--base", "main"],
        "error: `--base main` is not a value of the axis `rev` in this run\n  hint: its values: `base`, `head`",
    );
    // --along is for one run, --base only with it (clap's usage errors, exit 2).
    usage(
        &[run.to_str().unwrap(), "--along", "rev"],
        "cannot be used with",
    );
    usage(&["--base", "base"], "--along");
    let o = p.cmd(&["compare", run.to_str().unwrap()]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// `exclude` left a hole: the base cell it orphaned is named, exit 2; `--only` that ran one
/// value leaves nothing to compare along it, exit 6.
#[test]
fn cells_without_a_partner_and_a_single_value_are_errors() {
    if !common::privileged() {
        return;
    }
    let matrix = MATRIX.replace(
        "size = [\"small\", \"large\"]",
        "size = [\"small\", \"large\"]\nexclude = [{ rev = \"head\", size = \"large\" }]",
    );
    let p = Project::new(&matrix);
    for rev in ["base", "head"] {
        fs::create_dir_all(p.path(&format!("builds/{rev}"))).unwrap();
        fs::write(p.path(&format!("builds/{rev}/load.sh")), "true\n").unwrap();
    }
    let o = p
        .cmd(&[
            "run", "m.toml", "--runs", "1", "--warmup", "0", "--out", "out",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let run = p.latest("gate");
    let o = compare(&p, &run, &["--along", "rev"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("error: along `rev`, 1 cell(s) have no partner (a cell that differs only in `rev`):\n    `rev=base size=large`: no cell with another value of `rev` and the same other values\n  hint:"),
        "{err}"
    );
    assert!(
        o.stdout.is_empty(),
        "no table for a gate that cannot pair: {}",
        text(&o)
    );

    // A run that `--only` kept to one value: its other cells are in the run, never run, and a
    // gate on them is not a pass but "nothing comparable".
    let p = Project::new(MATRIX);
    for rev in ["base", "head"] {
        fs::create_dir_all(p.path(&format!("builds/{rev}"))).unwrap();
        fs::write(p.path(&format!("builds/{rev}/load.sh")), "true\n").unwrap();
    }
    let o = p
        .cmd(&[
            "run", "m.toml", "--runs", "1", "--warmup", "0", "--only", "rev=base", "--out", "out",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = compare(&p, &p.latest("gate"), &["--along", "rev"]);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    let out = stdout(&o);
    assert!(
        out.contains("not comparable: cell `rev=head size=small` has no measured invocation with status ok in the run"),
        "{out}"
    );
    assert!(
        out.trim_end()
            .ends_with("FAIL (exit 6: nothing comparable)"),
        "{out}"
    );
}
