//! `benchbox history`: series building, order, --since/--until and the accepted file on
//! results directories written here; then end to end through the binary, 30 real runs of a
//! tiny matrix with a step at run 16 (one change point, `--check` exits 10 until it is
//! accepted) and 30 A/A runs (none, exit 0).
//!
//! The end-to-end test judges a custom metric the workload prints (a throughput, higher is
//! better, level from a file in a volume, so the matrix and its cell ids stay the same), not its
//! timing: on the shared machine that runs the tests the same 20 ms busy loop measured run
//! medians of 15 to 31 ms of CPU time and 33 to 138 ms of wall time, level shifts the detector
//! rightly reports. The metric has 1% of noise of its own; everything else is real (the runs,
//! runs.csv, the extraction, the metric's direction from the plan, the steps' intervals).

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use benchbox::history::{self, HistoryError, Options};
use common::project::{Project, text};
use serde_json::json;

/// A run directory `root/dir` whose results.json has what history reads: its status, end
/// time, revision (id, describe, commit time) and per cell (id, label) the median of wall time.
struct Fake<'a> {
    dir: &'a str,
    status: &'a str,
    finished: &'a str,
    revision: Option<(&'a str, Option<&'a str>, Option<&'a str>)>,
    cells: Vec<(&'a str, &'a str, f64)>,
}

impl Fake<'_> {
    fn write(&self, root: &Path) -> PathBuf {
        let dir = root.join(self.dir);
        fs::create_dir_all(&dir).unwrap();
        let cells: Vec<_> = self
            .cells
            .iter()
            .map(|(id, label, wall)| {
                json!({"id": id, "label": label, "slug": label, "axes": [],
                       "summary": {"wall_s": {"n": 5, "median": wall, "median_ci": {"lower": wall * 0.99, "upper": wall * 1.01}},
                                   "user_s": {"n": 5, "median": wall}}})
            })
            .collect();
        let mut doc = json!({
            "schema_version": 2, "run_id": self.dir, "status": self.status,
            "started_at": self.finished, "finished_at": self.finished,
            "matrix_name": "m", "matrix_path": "envs/m.toml", "matrix_sha256": "0",
            "plan": {"cells": []}, "cells": cells,
        });
        if let Some((id, describe, time)) = self.revision {
            doc["revision"] =
                json!({"id": id, "describe": describe, "commit_time": time, "source": "git"});
        }
        fs::write(dir.join("results.json"), doc.to_string()).unwrap();
        dir
    }
}

fn fake<'a>(dir: &'a str, finished: &'a str, rev: Option<&'a str>, wall: f64) -> Fake<'a> {
    Fake {
        dir,
        status: "complete",
        finished,
        revision: rev.map(|r| (r, None, None)),
        cells: vec![("c1", "n=1", wall), ("c2", "n=2", wall * 2.0)],
    }
}

fn names(h: &history::History) -> Vec<&str> {
    h.runs.iter().map(|r| r.name()).collect()
}

#[test]
fn runs_are_ordered_by_commit_time_then_end_and_incomplete_ones_are_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("m");
    // Written out of order: b's commit is older than a's though it ran later.
    Fake {
        revision: Some((
            "aaaa1111",
            Some("v1-2-gaaaa111"),
            Some("2024-03-02T10:00:00+01:00"),
        )),
        ..fake("run-a", "2024-03-05T00:00:00Z", None, 1.0)
    }
    .write(&root);
    Fake {
        revision: Some(("bbbb2222", None, Some("2024-03-01T12:00:00Z"))),
        ..fake("run-b", "2024-03-06T00:00:00Z", None, 1.0)
    }
    .write(&root);
    // No commit time: stands at its end.
    fake("run-c", "2024-03-03T00:00:00Z", Some("cccc3333"), 1.0).write(&root);
    Fake {
        status: "interrupted",
        ..fake("run-d", "2024-03-07T00:00:00Z", Some("dddd"), 1.0)
    }
    .write(&root);
    // `latest` points at a run already listed; a stray file is not a run.
    std::os::unix::fs::symlink("run-b", root.join("latest")).unwrap();
    fs::write(root.join("notes.txt"), "x").unwrap();
    let h = history::build(&[root.clone(), root.join("run-a")], &Options::default()).unwrap();
    assert_eq!(names(&h), ["bbbb2222", "v1-2-gaaaa111", "cccc3333"]);
    assert_eq!(h.skipped.len(), 1);
    assert!(h.skipped[0].dir.ends_with("run-d"));
    assert_eq!(
        h.skipped[0].reason,
        "its status is interrupted, not complete"
    );
    // Series: per cell, the headline metrics only (wall, not user).
    let series: Vec<(&str, &str, usize)> = h
        .series
        .iter()
        .map(|s| (s.label.as_str(), s.metric.key.as_str(), s.points.len()))
        .collect();
    assert_eq!(series, [("n=1", "wall_s", 3), ("n=2", "wall_s", 3)]);
    assert_eq!(h.series[1].points[0].median, 2.0);
    assert_eq!(h.change_count(), 0);
}

#[test]
fn a_cell_missing_from_a_run_is_a_gap_and_metrics_resolve_like_compare() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("m");
    fake("r1", "2024-01-01T00:00:00Z", Some("r1"), 1.0).write(&root);
    Fake {
        cells: vec![("c1", "n=1", 1.1)],
        ..fake("r2", "2024-01-02T00:00:00Z", Some("r2"), 1.0)
    }
    .write(&root);
    fake("r3", "2024-01-03T00:00:00Z", Some("r3"), 1.2).write(&root);
    let opts = Options {
        metrics: vec!["user".into(), "wall".into(), "wall_s".into()],
        ..Options::default()
    };
    let h = history::build(std::slice::from_ref(&root), &opts).unwrap();
    let c2: Vec<usize> = h
        .series
        .iter()
        .filter(|s| s.cell_id == "c2")
        .map(|s| s.points.len())
        .collect();
    assert_eq!(c2, [2, 2], "user and wall of c2, without r2");
    let c2_wall = h
        .series
        .iter()
        .find(|s| s.cell_id == "c2" && s.metric.key == "wall_s")
        .unwrap();
    assert_eq!(
        c2_wall.points.iter().map(|p| p.run).collect::<Vec<_>>(),
        [0, 2]
    );
    assert_eq!(h.series[0].metric.key, "user_s", "in the order asked");
    let bad = Options {
        metrics: vec!["walll".into()],
        ..Options::default()
    };
    let e = history::build(&[root], &bad).unwrap_err();
    assert!(matches!(e, HistoryError::UnknownMetric { .. }));
    assert_eq!(
        e.to_string(),
        "unknown metric `walll`\n  hint: these runs have wall_s, user_s"
    );
}

#[test]
fn since_and_until_take_revisions_run_ids_and_dates() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("m");
    for (i, day) in ["01", "02", "03", "04", "05"].iter().enumerate() {
        let dir = format!("run{i}");
        let finished = format!("2024-02-{day}T12:00:00Z");
        let rev = format!("{i}{i}{i}{i}abcdef");
        Fake {
            revision: Some((&rev, (i == 3).then_some("v2.0"), None)),
            ..fake(&dir, &finished, None, 1.0)
        }
        .write(&root);
    }
    let range = |since: Option<&str>, until: Option<&str>| {
        let opts = Options {
            since: since.map(String::from),
            until: until.map(String::from),
            ..Options::default()
        };
        history::build(std::slice::from_ref(&root), &opts).map(|h| {
            h.runs
                .iter()
                .map(|r| r.run_id.clone())
                .collect::<Vec<_>>()
                .join(" ")
        })
    };
    assert_eq!(range(Some("1111"), None).unwrap(), "run1 run2 run3 run4");
    assert_eq!(range(None, Some("v2.0")).unwrap(), "run0 run1 run2 run3");
    assert_eq!(range(Some("run2"), Some("run2")).unwrap(), "run2");
    assert_eq!(
        range(Some("2024-02-02"), Some("2024-02-04")).unwrap(),
        "run1 run2 run3"
    );
    assert_eq!(
        range(Some("2024-01-01"), None).unwrap(),
        "run0 run1 run2 run3 run4"
    );
    let e = range(Some("zzzz"), None).unwrap_err().to_string();
    assert!(e.starts_with("--since `zzzz` names no run\n  hint:"), "{e}");
    let e = range(Some("run3"), Some("run1")).unwrap_err().to_string();
    assert!(e.contains("comes after --until"), "{e}");
    assert!(range(None, Some("2023-12-31")).is_err());
}

#[test]
fn the_command_says_what_was_skipped_and_points_at_a_bad_accepted_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("m");
    fake("r1", "2024-01-01T00:00:00Z", Some("r1"), 1.0).write(&root);
    Fake {
        status: "running",
        ..fake("r2", "2024-01-02T00:00:00Z", Some("r2"), 1.0)
    }
    .write(&root);
    let o = common::benchbox()
        .args(["history", root.to_str().unwrap(), "--check"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("r2: its status is running, not complete"),
        "{out}"
    );
    assert!(
        out.contains("history: 1 complete run(s) of m, r1 to r1 (1 skipped), 2 series"),
        "{out}"
    );
    assert!(out.contains("check: passed"), "{out}");
    let accepted = tmp.path().join("a.toml");
    fs::write(
        &accepted,
        "[[accepted]]\nrevision = \"r1\"\nmetric = \"wall\"\nresaon = \"x\"\n",
    )
    .unwrap();
    let o = common::benchbox()
        .args([
            "history",
            root.to_str().unwrap(),
            "--accepted",
            accepted.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!(
            "error: {}:4:1: unknown key `resaon`\n  hint: did you mean `reason`?\n",
            accepted.display()
        )
    );
    // Nothing complete: a clear error, exit 2.
    let only_running = tmp.path().join("n");
    Fake {
        status: "running",
        ..fake("r2", "2024-01-02T00:00:00Z", Some("r2"), 1.0)
    }
    .write(&only_running);
    let o = common::benchbox()
        .args(["history", only_running.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .starts_with("error: no complete run to make a history of (1 run(s) skipped)\n  hint:")
    );
}

/// `--format md` prints the Markdown summary, and with `GITHUB_STEP_SUMMARY` set the same
/// Markdown is appended to that file (after what a step wrote there before).
#[test]
fn markdown_is_printed_and_appended_to_the_step_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("m");
    fake("r1", "2024-01-01T00:00:00Z", Some("r1"), 1.0).write(&root);
    fake("r2", "2024-01-02T00:00:00Z", Some("r2"), 1.0).write(&root);
    let summary = tmp.path().join("step-summary.md");
    fs::write(&summary, "earlier step\n").unwrap();
    let o = common::benchbox()
        .args(["history", root.to_str().unwrap(), "--format", "md"])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let md = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(md.starts_with("## "), "{md}");
    assert!(md.contains("r1") && md.contains("r2"), "{md}");
    let appended = fs::read_to_string(&summary).unwrap();
    // Followed by a blank line, so a later step's Markdown starts a paragraph of its own.
    assert_eq!(appended, format!("earlier step\n{md}\n"));
}

// ---- end to end: real runs ----

const MATRIX: &str = r#"
name = "hist"
[environment]
rootfs = "./rootfs"
volumes = ["./work:/work:ro"]
[limits]
cpus = "0"
memory = "64MiB"
pids = 16
[run]
command = "sh /work/load.sh"
warmup = 0
runs = 5

[[metric]]
name = "throughput"
pattern = 'Score: ([0-9]+)'
unit = "ops/s"
better = "higher"
"#;

/// A short busy loop, then a throughput of `level` with up to 1% of noise.
fn load(p: &Project, level: u32) {
    fs::write(
        p.path("work/load.sh"),
        format!(
            "i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done\necho \"Score: $(({level} + RANDOM % {}))\"\n",
            level / 100
        ),
    )
    .unwrap();
}

fn run(p: &Project, out: &str, rev: &str) {
    let o = p
        .cmd(&[
            "run",
            "m.toml",
            "--out",
            out,
            "--rev",
            rev,
            "--resamples",
            "500",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

fn history(p: &Project, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let mut all = vec!["history", "--format", "json", "--resamples", "2000"];
    all.extend_from_slice(args);
    let o = p.cmd(&all).output().unwrap();
    let json = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(&o)));
    (o.status.code(), json, text(&o))
}

/// (metric, revision, direction) of every change point.
fn changes(json: &serde_json::Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for s in json["series"].as_array().unwrap() {
        for c in s["changes"].as_array().unwrap() {
            out.push((
                s["metric"].as_str().unwrap().to_string(),
                c["revision"].as_str().unwrap().to_string(),
                c["direction"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

#[test]
fn a_step_at_run_16_is_found_gated_and_accepted_and_aa_runs_show_none() {
    if !common::privileged() {
        return;
    }
    let p = Project::new(MATRIX);
    fs::create_dir(p.path("work")).unwrap();
    load(&p, 10_000);
    for i in 1..=15 {
        run(&p, "out", &format!("r{i:02}"));
    }
    // The A/A history shares the first 15 runs' level: 15 more at it, elsewhere.
    for i in 1..=15 {
        run(&p, "aa-extra", &format!("a{i:02}"));
    }
    load(&p, 8_000); // 20% slower
    for i in 16..=30 {
        run(&p, "out", &format!("r{i:02}"));
    }
    let runs_of = |out: &str| -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = fs::read_dir(p.path(&format!("{out}/hist")))
            .unwrap()
            .flatten()
            .filter(|e| e.file_type().unwrap().is_dir())
            .map(|e| e.path())
            .collect();
        dirs.sort();
        dirs
    };
    // The revision is recorded, as given.
    let first: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(runs_of("out")[0].join("results.json")).unwrap())
            .unwrap();
    assert_eq!(first["revision"], json!({"id": "r01", "source": "flag"}));
    // ... and shown in the reports.
    let summary = fs::read_to_string(runs_of("out")[0].join("summary.md")).unwrap();
    assert!(summary.contains("- **revision**: r01"), "{summary}");
    let tex = fs::read_to_string(runs_of("out")[0].join("table.tex")).unwrap();
    assert!(tex.contains("% Revision measured: r01"), "{tex}");

    let (code, json, all) = history(&p, &["out/hist", "--check", "--metric", "throughput"]);
    assert_eq!(code, Some(10), "{all}");
    assert_eq!(json["runs"].as_array().unwrap().len(), 30);
    let found = changes(&json);
    let cpu: Vec<&(String, String, String)> =
        found.iter().filter(|(m, _, _)| m == "throughput").collect();
    assert_eq!(
        cpu.len(),
        1,
        "one change point in throughput: {found:?}\n{all}"
    );
    let at: u32 = cpu[0].1[1..].parse().unwrap();
    assert!((15..=17).contains(&at), "at r16 (+-1): {found:?}");
    assert_eq!(cpu[0].2, "regression");
    let series = json["series"].as_array().unwrap();
    let step = &series.iter().find(|s| s["metric"] == "throughput").unwrap()["changes"][0]["step"];
    let (lo, hi) = (
        step["ci"][0].as_f64().unwrap(),
        step["ci"][1].as_f64().unwrap(),
    );
    assert!(
        hi < 0.0 && lo <= hi,
        "the step's CI lies below 0 (a throughput fell): {step}"
    );
    assert!(
        (lo..=hi).contains(&-0.2) || (hi + 0.2).abs() < 0.01,
        "about -20%: {step}"
    );

    // Acknowledged (in the default file beside the matrix: NAME.accepted.toml): exit 0.
    let mut accepted = String::new();
    for (metric, revision, _) in &found {
        accepted.push_str(&format!(
            "[[accepted]]\nrevision = \"{revision}\"\nmetric = \"{metric}\"\nreason = \"20% slower, on purpose\"\n\n"
        ));
    }
    fs::write(p.path("hist.accepted.toml"), accepted).unwrap();
    let (code, json, all) = history(&p, &["out/hist", "--check", "--metric", "throughput"]);
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(json["failing"], 0);
    // The outputs that draw: a self-contained page and a plot per series.
    let o = p
        .cmd(&[
            "history",
            "out/hist",
            "--html",
            "h.html",
            "--plots",
            "plots",
            "--metric",
            "throughput",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let page = fs::read_to_string(p.path("h.html")).unwrap();
    assert!(
        page.contains("<svg") && !page.contains("src=\"http"),
        "self-contained"
    );
    assert!(page.contains("accepted: 20% slower, on purpose"));
    let plots: Vec<String> = fs::read_dir(p.path("plots"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        plots.len(),
        2,
        "one cell, one metric: svg and png: {plots:?}"
    );

    // A/A: the first 15 runs and 15 more at the same level.
    let aa = tempfile::tempdir().unwrap();
    for dir in runs_of("out")
        .into_iter()
        .take(15)
        .chain(runs_of("aa-extra"))
    {
        let to = aa.path().join(dir.file_name().unwrap());
        fs::create_dir(&to).unwrap();
        for f in ["results.json", "runs.csv"] {
            fs::copy(dir.join(f), to.join(f)).unwrap();
        }
    }
    let (code, json, all) = history(
        &p,
        &[
            aa.path().to_str().unwrap(),
            "--check",
            "--metric",
            "throughput",
        ],
    );
    assert_eq!(json["runs"].as_array().unwrap().len(), 30);
    assert_eq!(changes(&json), [], "{all}");
    assert_eq!(code, Some(0), "{all}");

    // Fixed: 15 more runs back at the first level. Without the accepted file, --check passes:
    // the regression at r16 no longer holds at the newest run (a step back cleared it).
    fs::remove_file(p.path("hist.accepted.toml")).unwrap();
    load(&p, 10_000);
    for i in 31..=45 {
        run(&p, "out", &format!("r{i:02}"));
    }
    let (code, json, all) = history(&p, &["out/hist", "--check", "--metric", "throughput"]);
    let found = changes(&json);
    assert!(
        found.iter().any(|(_, _, d)| d == "regression")
            && found.iter().any(|(_, _, d)| d == "improvement"),
        "the step down and the step back: {found:?}\n{all}"
    );
    assert_eq!(json["failing"], 0, "{all}");
    assert_eq!(code, Some(0), "{all}");
}

/// A hostile cell label, revision or metric name is text in history.html, never markup.
#[test]
fn hostile_names_are_escaped_in_history_html() {
    let evil = r#"<script>alert(1)</script>"onload=alert(2)"#;
    let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;onload=alert(2)";
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("m");
    for (dir, finished, rev) in [
        ("r1", "2024-01-01T00:00:00Z", evil),
        ("r2", "2024-01-02T00:00:00Z", "r2"),
    ] {
        Fake {
            cells: vec![("c1", evil, 1.0)],
            ..fake(dir, finished, Some(rev), 1.0)
        }
        .write(&root);
    }
    let mut h = history::build(std::slice::from_ref(&root), &Options::default()).unwrap();
    h.warnings.push(evil.into());
    h.series[0].metric.title = evil.into();
    let page = benchbox::render::history_html::html(&h, &[], true).unwrap();
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("\"onload"), "{page}");
    // The first run's name, the warning, and the trend's caption (label and metric).
    assert!(page.matches(escaped).count() >= 3, "{page}");
    assert!(
        page.contains("<p class=\"warn\">warning: &lt;script&gt;"),
        "{page}"
    );
}
