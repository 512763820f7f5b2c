//! `runs = "auto"` and `benchbox calibrate` end to end, on the busybox rootfs, as root: each
//! adaptive cell stops by one of the rules and results.json and summary.md say which; the
//! budget stops cells once past `min-runs`; calibrate prints its table and `--write` edits
//! the file keeping its comments.

mod common;

use std::fs;

use common::project::{Project, text};

/// The measured rows of runs.csv per cell id.
fn measured_rows(p: &Project, id: &str) -> usize {
    let (header, rows) = p.csv("m");
    let cell = header.iter().position(|h| h == "cell").unwrap();
    let phase = header.iter().position(|h| h == "phase").unwrap();
    rows.iter()
        .filter(|r| &r[cell] == id && &r[phase] == "measure")
        .count()
}

#[test]
fn auto_cells_stop_by_ci_width_or_max_runs_and_record_why() {
    if !common::privileged() {
        return;
    }
    let p = Project::new(
        r#"[matrix]
width = ["60%", "0.001%"]
[environment]
rootfs = "rootfs"
[run]
command = "sleep 0.05"
warmup = 0
runs = "auto"
min-runs = 6
max-runs = 9
ci-width = "{width}"
"#,
    );
    let o = p.cmd(&["run", "m.toml", "--out", "out"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let results = p.results("m");
    let cells = results["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2);
    for cell in cells {
        let id = cell["id"].as_str().unwrap();
        let adaptive = &cell["adaptive"];
        let (stopped, runs) = (
            adaptive["stopped"].as_str().unwrap(),
            adaptive["runs"].as_u64().unwrap() as usize,
        );
        assert_eq!(measured_rows(&p, id), runs, "{cell}");
        match cell["label"].as_str().unwrap() {
            // A loose width stops at min-runs, a width no run reaches at max-runs.
            "width=60%" => assert_eq!((stopped, runs), ("ci-width", 6), "{cell}"),
            "width=0.001%" => assert_eq!((stopped, runs), ("max-runs", 9), "{cell}"),
            other => panic!("unexpected cell {other}"),
        }
        assert_eq!(cell["planned"]["runs"], 9, "the plan holds the cap");
    }
    let summary = fs::read_to_string(p.latest("m").join("summary.md")).unwrap();
    assert!(
        summary.contains("stopped after 6 measured invocations by ci-width"),
        "{summary}"
    );
    assert!(
        summary.contains("stopped after 9 measured invocations by max-runs"),
        "{summary}"
    );
    // A cell that stopped early is complete, not "missing" invocations.
    assert!(!summary.contains("missing"), "{summary}");
    assert_eq!(results["status"], "complete");
}

#[test]
fn a_spent_budget_stops_cells_past_min_runs() {
    if !common::privileged() {
        return;
    }
    let p = Project::new(
        r#"[matrix]
n = [1, 2]
[environment]
rootfs = "rootfs"
[run]
command = "sleep 0.3; echo {n}"
warmup = 0
runs = "auto"
min-runs = 2
max-runs = 40
ci-width = "0.001%"
budget = "1s"
"#,
    );
    let o = p.cmd(&["run", "m.toml", "--out", "out"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let results = p.results("m");
    for cell in results["cells"].as_array().unwrap() {
        let runs = cell["adaptive"]["runs"].as_u64().unwrap();
        assert_eq!(cell["adaptive"]["stopped"], "budget", "{cell}");
        assert!((2..40).contains(&runs), "{cell}");
        assert_eq!(
            measured_rows(&p, cell["id"].as_str().unwrap()),
            runs as usize
        );
    }
}

#[test]
fn calibrate_prints_the_table_and_write_keeps_comments() {
    if !common::privileged() {
        return;
    }
    let p = Project::new(
        r#"# the quick cell
[environment]
rootfs = "rootfs"
[run]
command = "sleep 0.02"
warmup = 0
# how many: calibrate decides
runs = 3   # measured runs
"#,
    );
    let o = p
        .cmd(&["calibrate", "m.toml", "--budget", "3s", "--write"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("cv wall"), "{out}");
    assert!(out.contains("default"), "{out}");
    let written = fs::read_to_string(p.path("m.toml")).unwrap();
    assert!(written.starts_with("# the quick cell\n"), "{written}");
    assert!(
        written.contains("# how many: calibrate decides\nruns = "),
        "{written}"
    );
    assert!(written.contains("   # measured runs"), "{written}");
    let runs: u32 = written
        .lines()
        .find_map(|l| l.strip_prefix("runs = "))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(runs >= 5, "{written}");
    assert!(out.contains(&format!("wrote runs = {runs}")), "{out}");
    // An effect the threshold hides is refused with a hint.
    let o = p
        .cmd(&["calibrate", "m.toml", "--effect", "5%"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("hint: give an --effect above the threshold"),
        "{}",
        text(&o)
    );
}
