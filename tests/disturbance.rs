//! Disturbance end to end: a cell pinned to CPU 1 runs a CPU-bound workload while this test
//! keeps CPU 1 busy with a loop of its own; its invocations are flagged `disturbed`, their
//! `other_cpu_s` shows the loop's time, and summary.md counts them. Without the loop only the
//! columns are checked: the host is shared, so "not disturbed" cannot be promised.

mod common;

use std::process::{Child, Command};

use common::project::{Project, text};

/// About 0.3 s of CPU in busybox's shell: long enough to be judged (0.2 s of wall time).
const MATRIX: &str = r#"
name = "pinned"
[environment]
rootfs = "./rootfs"
[limits]
cpus = "1"
[run]
command = "i=0; while [ $i -lt 150000 ]; do i=$((i+1)); done"
warmup = 0
runs = 3
"#;

/// A busy loop pinned to `cpu`, killed when dropped.
struct Hog(Child);

impl Hog {
    fn on(cpu: usize) -> Hog {
        let child = Command::new("/bin/busybox")
            .args(["sh", "-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let mut set = nix::sched::CpuSet::new();
        set.set(cpu).unwrap();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sched::sched_setaffinity(pid, &set).unwrap();
        Hog(child)
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn two_cpus() -> bool {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    if n < 2 {
        eprintln!("skipping: this test pins to CPU 1, and the host has {n} CPU");
    }
    n >= 2
}

fn run(p: &Project) -> std::process::Output {
    p.cmd(&["run", "m.toml", "--out", "out", "--resamples", "200"])
        .output()
        .unwrap()
}

/// The runs.csv rows of the measured invocations, as column -> value.
fn measured(p: &Project) -> Vec<std::collections::HashMap<String, String>> {
    let (header, rows) = p.csv("pinned");
    for column in ["other_cpu_s", "steal_s", "disturbance_scope"] {
        assert!(
            header.iter().any(|h| h == column),
            "no `{column}` in {header:?}"
        );
    }
    rows.iter()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.iter().map(String::from))
                .collect()
        })
        .filter(|r: &std::collections::HashMap<String, String>| r["phase"] == "measure")
        .collect()
}

#[test]
fn invocations_sharing_their_pinned_cpu_with_a_busy_loop_are_disturbed() {
    if !common::privileged() || !two_cpus() {
        return;
    }
    let p = Project::new(MATRIX);
    let hog = Hog::on(1);
    let o = run(&p);
    drop(hog);
    assert!(o.status.success(), "{}", text(&o));
    let rows = measured(&p);
    assert_eq!(rows.len(), 3);
    for r in &rows {
        assert_eq!(r["disturbance_scope"], "pinned", "{r:?}");
        assert_eq!(r["status"], "ok", "a disturbed row still counts: {r:?}");
        assert!(r["flags"].split(';').any(|f| f == "disturbed"), "{r:?}");
        // The loop had CPU 1 for a good share of the workload's wall time.
        let other: f64 = r["other_cpu_s"].parse().unwrap();
        let wall: f64 = r["wall_s"].parse().unwrap();
        assert!(other > 0.05 * wall, "{r:?}");
    }
    let summary = std::fs::read_to_string(p.latest("pinned").join("summary.md")).unwrap();
    assert!(
        summary.contains("3 of 3 measured invocations disturbed"),
        "{summary}"
    );
    assert!(
        text(&o).contains("disturbed: other tasks used"),
        "{}",
        text(&o)
    );
}

#[test]
fn without_a_busy_loop_the_figures_are_recorded() {
    if !common::privileged() || !two_cpus() {
        return;
    }
    let p = Project::new(MATRIX);
    let o = run(&p);
    assert!(o.status.success(), "{}", text(&o));
    for r in measured(&p) {
        assert_eq!(r["disturbance_scope"], "pinned", "{r:?}");
        assert!(r["other_cpu_s"].parse::<f64>().unwrap() >= 0.0, "{r:?}");
        assert!(r["steal_s"].parse::<f64>().unwrap() >= 0.0, "{r:?}");
    }
    // Not pinned: host-wide figures, labelled so.
    let host = Project::new(&MATRIX.replace("[limits]\ncpus = \"1\"\n", ""));
    let o = run(&host);
    assert!(o.status.success(), "{}", text(&o));
    for r in measured(&host) {
        assert_eq!(r["disturbance_scope"], "host", "{r:?}");
    }
}

/// `compare` warns, with the figures, when the two runs saw different host noise (here: the
/// base's results.json says the load was high, and its runs.csv flags its invocations
/// disturbed), and its verdicts and exit code stay what they were.
#[test]
fn compare_warns_when_the_runs_saw_different_noise() {
    if !common::privileged() {
        return;
    }
    let p = Project::new(
        "name = \"quick\"\n[environment]\nrootfs = \"./rootfs\"\n[run]\ncommand = \"true\"\nwarmup = 0\nruns = 4\n",
    );
    let mut dirs = Vec::new();
    for out in ["a", "b"] {
        let o = p
            .cmd(&["run", "m.toml", "--out", out, "--resamples", "200"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        dirs.push(p.latest_in(out, "quick"));
    }
    let compare = || {
        p.cmd(&["compare"])
            .args(&dirs)
            .args(["--resamples", "200"])
            .output()
            .unwrap()
    };
    let before = compare();
    // Both runs record the load at their start and end.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dirs[0].join("results.json")).unwrap())
            .unwrap();
    assert!(json["load_average"]["start"].is_number(), "{json}");
    assert!(json["load_average"]["end"].is_number(), "{json}");
    // The base as a busy host would have left it.
    let mut json = json;
    json["load_average"] = serde_json::json!({ "start": 500.0, "end": 400.0 });
    std::fs::write(dirs[0].join("results.json"), json.to_string()).unwrap();
    let csv = std::fs::read_to_string(dirs[0].join("runs.csv")).unwrap();
    std::fs::write(
        dirs[0].join("runs.csv"),
        csv.replace(",ok,,", ",ok,disturbed,"),
    )
    .unwrap();
    let after = compare();
    let said = text(&after);
    assert!(said.contains("the runs saw different host noise"), "{said}");
    assert!(said.contains("load average 500.00 vs"), "{said}");
    assert!(
        said.contains("disturbed invocations 100% (4 of 4) vs 0% (0 of 4)"),
        "{said}"
    );
    // (The load itself may have moved between the two real runs: only the flags are known.)
    assert!(
        !text(&before).contains("disturbed invocations"),
        "{}",
        text(&before)
    );
    assert_eq!(
        after.status.code(),
        before.status.code(),
        "a warning, not a verdict"
    );
}

/// `[run] rerun-disturbed`: the loop holds CPU 1 only until the first measured row is in
/// runs.csv, so at least that invocation is disturbed and run again. The disturbed rows stay in
/// runs.csv, a row flagged `rerun` follows each, and the statistics count exactly `runs`
/// invocations. (The host is shared: a rerun may be disturbed too, and be rerun in turn up to
/// the cap; what is asserted holds either way.)
#[test]
fn disturbed_invocations_are_run_again_and_replaced() {
    if !common::privileged() || !two_cpus() {
        return;
    }
    let p = Project::new(&MATRIX.replace("runs = 3\n", "runs = 3\nrerun-disturbed = true\n"));
    let hog = Hog::on(1);
    let mut child = p
        .cmd(&["run", "m.toml", "--out", "out", "--resamples", "200"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Until the first measured row is written (or the run is over).
    let csv = p.path("out/pinned/latest/runs.csv");
    while child.try_wait().unwrap().is_none() {
        let text = std::fs::read_to_string(&csv).unwrap_or_default();
        if text.lines().any(|l| l.contains(",measure,")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    drop(hog);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let rows = measured(&p);
    let flags = |r: &std::collections::HashMap<String, String>, f: &str| {
        r["flags"].split(';').any(|x| x == f)
    };
    // The first row was disturbed, and the next row is its rerun (same invocation).
    assert!(flags(&rows[0], "disturbed"), "{rows:?}");
    assert!(flags(&rows[1], "rerun"), "{rows:?}");
    assert_eq!(rows[1]["invocation"], rows[0]["invocation"], "{rows:?}");
    let reruns = rows.iter().filter(|r| flags(r, "rerun")).count();
    assert!((1..=3).contains(&reruns), "at most `runs` reruns: {rows:?}");
    assert_eq!(rows.len(), 3 + reruns, "{rows:?}");
    // Every rerun follows a disturbed row of its invocation.
    for pair in rows.windows(2) {
        if flags(&pair[1], "rerun") {
            assert!(flags(&pair[0], "disturbed"), "{pair:?}");
            assert_eq!(pair[0]["invocation"], pair[1]["invocation"], "{pair:?}");
        }
    }
    // The statistics: one value per invocation, the replaced rows out.
    let json = p.results("pinned");
    let cell = &json["cells"][0];
    assert_eq!(cell["summary"]["wall_s"]["n"], 3, "{cell}");
    assert_eq!(cell["reruns"], reruns, "{cell}");
    let summary = std::fs::read_to_string(p.latest("pinned").join("summary.md")).unwrap();
    assert!(
        summary.contains(&format!(
            "{reruns} disturbed row(s) replaced by a rerun (`[run] rerun-disturbed`)"
        )),
        "{summary}"
    );
    assert!(
        text(&o).contains("run again in its place (`rerun-disturbed`)"),
        "{}",
        text(&o)
    );
    // `report` rebuilds the same from runs.csv.
    let o = p
        .cmd(&["report", "out/pinned/latest", "--resamples", "200"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.results("pinned")["cells"][0]["summary"]["wall_s"]["n"], 3);
}
