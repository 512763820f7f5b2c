//! End to end through the `benchbox` binary: two real runs of one matrix, the candidate's
//! workload made slower, then `compare` and `report`.
//!
//! The slowdown comes from a script in a volume: a cell's id hashes the volume's host path as
//! written, not the files in it, so both runs have the same cell ids and pair by id.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::project::{Project, text};

const MATRIX: &str = r#"
name = "loop"
[matrix]
size = ["small", "large"]
[environment]
rootfs = "./rootfs"
volumes = ["./work:/work:ro"]
env = { SIZE = "{size}" }
[limits]
cpus = "0"
memory = "64MiB"
pids = 32
[run]
command = "sh /work/load.sh"
warmup = 1
runs = 6
"#;

/// A busy loop; `large` cells do twice the work of `small` ones, `factor` scales both.
fn script(factor: u32) -> String {
    format!(
        "n={}; [ \"$SIZE\" = large ] && n=$((n * 2)); i=0; while [ $i -lt $n ]; do i=$((i+1)); done\n",
        20_000 * factor
    )
}

/// One run with the loop scaled by `factor`; returns its directory.
fn run(p: &Project, factor: u32, out: &str) -> PathBuf {
    fs::write(p.path("work/load.sh"), script(factor)).unwrap();
    let o = p
        .cmd(&["run", "m.toml", "--out", out, "--resamples", "2000"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    p.latest_in(out, "loop")
}

/// The project: a busybox rootfs and the `work` volume the load script goes in.
fn project() -> Project {
    let p = Project::new(MATRIX);
    fs::create_dir(p.path("work")).unwrap();
    p
}

fn ids(run: &Path) -> Vec<String> {
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    json["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_slower_candidate_fails_the_gate_and_a_run_passes_against_itself() {
    if !common::privileged() {
        return;
    }
    let p = project();
    let base = run(&p, 1, "base");
    let cand = run(&p, 4, "cand");
    assert_eq!(
        ids(&base),
        ids(&cand),
        "same matrix and volume path: same ids"
    );
    // Every run leaves a summary.md behind.
    let summary = fs::read_to_string(base.join("summary.md")).unwrap();
    assert!(
        summary.contains("### wall time (lower is better)"),
        "{summary}"
    );
    assert!(summary.contains("size=large"), "{summary}");

    // Candidate vs base: both cells are about 4x slower: exit 10, the cells named.
    let step_summary = p.path("step-summary.md");
    let o = p
        .cmd(&[
            "compare",
            base.to_str().unwrap(),
            "cand/loop/latest",
            "--resamples",
            "2000",
        ])
        .env("GITHUB_STEP_SUMMARY", &step_summary)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(10), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("size=small") && out.contains("size=large"),
        "{out}"
    );
    assert!(out.contains("REGRESSION"), "{out}");
    assert!(out.contains("2 regression(s)"), "{out}");
    let md = fs::read_to_string(&step_summary).unwrap();
    assert!(
        md.starts_with("## benchbox compare: 2 regression(s)"),
        "{md}"
    );

    // The other way round it is an improvement, which passes.
    let o = p
        .cmd(&[
            "compare",
            "cand/loop/latest",
            "base/loop/latest",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["improvements"], 2, "{json}");

    // A run against itself: never a regression.
    let o = p
        .cmd(&[
            "compare",
            "base/loop/latest",
            "base/loop/latest",
            "--metric",
            "cpu",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 regression(s)"));

    // An unknown metric is a usage error that lists the valid ones.
    let o = p
        .cmd(&[
            "compare",
            "base/loop/latest",
            "base/loop/latest",
            "--metric",
            "speed",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("valid metrics are wall, cpu, memory"));

    // `report` rebuilds the same bytes the run wrote, and says where they went.
    let before_json = fs::read(base.join("results.json")).unwrap();
    let before_md = fs::read(base.join("summary.md")).unwrap();
    let o = p.cmd(&["report", "base/loop/latest"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("summary.md"));
    assert!(fs::read(base.join("results.json")).unwrap() == before_json);
    assert!(fs::read(base.join("summary.md")).unwrap() == before_md);
    // (A sentinel summary.md: a rewrite would replace it.)
    fs::write(base.join("summary.md"), "sentinel").unwrap();
    let o = p
        .cmd(&["report", "base/loop/latest", "--reference", "size=nope"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("the reference `size=nope` matches no cell"),
        "{}",
        text(&o)
    );
    // ...checked before anything is written.
    assert!(fs::read(base.join("results.json")).unwrap() == before_json);
    assert_eq!(
        fs::read_to_string(base.join("summary.md")).unwrap(),
        "sentinel"
    );
}

#[test]
fn compare_of_a_missing_run_is_a_usage_error_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let o = common::benchbox()
        .current_dir(dir.path())
        .args(["compare", "nope", "nope"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("`nope` is not a benchbox run directory"),
        "{err}"
    );
    assert!(err.contains("\n  hint: pass a run directory such as reports/NAME/latest"));
}

/// `compare` once exited 0 when it compared nothing: two runs with no cell in common, an
/// interrupted candidate, a base in which every invocation failed. Each is exit 6 now, and a
/// run without runs.csv is an error.
#[test]
fn a_gate_with_nothing_comparable_fails_with_exit_6() {
    if !common::privileged() {
        return;
    }
    let p = project();
    let base = run(&p, 1, "base");
    let compare = |args: &[&str]| {
        let mut all = vec!["compare", "--resamples", "500"];
        all.extend_from_slice(args);
        p.cmd(&all).output().unwrap()
    };

    // Every invocation of the base failed (the run itself exits 5).
    fs::write(p.path("work/load.sh"), "exit 1\n").unwrap();
    let o = p
        .cmd(&["run", "m.toml", "--out", "failed", "--resamples", "200"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    let o = compare(&["failed/loop/latest", base.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("not comparable: cell `size=small` has no measured invocation with status ok in the base run (6 measured, 6 failed, 0 suspect)"),
        "{out}"
    );
    assert!(
        out.trim_end()
            .ends_with("FAIL (exit 6: nothing comparable)"),
        "{out}"
    );

    // No cell in common.
    fs::write(
        p.path("other.toml"),
        MATRIX
            .replace("name = \"loop\"", "name = \"other\"")
            .replace("size = [\"small\", \"large\"]", "size = [\"tiny\"]"),
    )
    .unwrap();
    fs::write(p.path("work/load.sh"), script(1)).unwrap();
    let o = p
        .cmd(&[
            "run",
            "other.toml",
            "--out",
            "other",
            "--runs",
            "5",
            "--resamples",
            "200",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = compare(&[base.to_str().unwrap(), "other/other/latest"]);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("not comparable: no cell of the base run pairs with a cell of the candidate"),
        "{}",
        text(&o)
    );

    // An interrupted candidate: 6, unless --allow-partial.
    let partial = p.path("partial");
    fs::create_dir(&partial).unwrap();
    fs::copy(base.join("runs.csv"), partial.join("runs.csv")).unwrap();
    let json = fs::read_to_string(base.join("results.json"))
        .unwrap()
        .replacen("\"status\": \"complete\"", "\"status\": \"interrupted\"", 1);
    fs::write(partial.join("results.json"), json).unwrap();
    let o = compare(&[base.to_str().unwrap(), "partial"]);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("is interrupted, not complete\n  hint: finish it"),
        "{}",
        text(&o)
    );
    let o = compare(&[base.to_str().unwrap(), "partial", "--allow-partial"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // No runs.csv: an error naming it, not a verdict.
    fs::remove_file(partial.join("runs.csv")).unwrap();
    let o = compare(&[base.to_str().unwrap(), "partial", "--allow-partial"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("runs.csv` is missing"),
        "{}",
        text(&o)
    );
}
