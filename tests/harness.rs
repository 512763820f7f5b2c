//! The harness's failures are not the workload's, end to end through the `benchbox` binary
//! (privileged): a full output disk stops the run as `failed` and `--resume` finishes it, logs
//! are capped by `max-log` without slowing the workload, runs.csv rows are whole or absent,
//! and a command that cannot start has no exit code.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use benchbox::plan::Phase;
use benchbox::results::{self, CsvWriter, Sample};
use benchbox::status::Status;

use common::project::{Project, text};

/// A tmpfs of a given size mounted at a path, unmounted when dropped (whatever the test did).
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(path).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(format!("size={size},mode=0755").as_str()),
        )
        .expect("mount a tmpfs");
        Tmpfs {
            path: path.to_path_buf(),
        }
    }

    /// `mount -o remount,size=...`: more room, same contents.
    fn resize(&self, size: &str) {
        nix::mount::mount(
            None::<&str>,
            &self.path,
            None::<&str>,
            nix::mount::MsFlags::MS_REMOUNT,
            Some(format!("size={size}").as_str()),
        )
        .expect("remount the tmpfs");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if nix::mount::umount(&self.path).is_err() {
            let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// `benchbox run` of the project's matrix into `out`.
fn run(p: &Project, extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        "m.toml",
        "--out",
        "out",
        "--scratch",
        "scratch",
        "--resamples",
        "200",
    ];
    args.extend_from_slice(extra);
    p.cmd(&args).output().expect("benchbox runs")
}

/// runs.csv, checked to hold whole rows only: it ends in a newline and every record has the
/// header's number of fields. Returns (header, rows).
fn whole_rows(p: &Project, name: &str) -> (Vec<String>, Vec<csv::StringRecord>) {
    let path = p.latest(name).join("runs.csv");
    let raw = fs::read_to_string(&path).unwrap();
    assert!(raw.ends_with('\n'), "a torn last row:\n{raw}");
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows: Vec<csv::StringRecord> = reader
        .records()
        .map(|r| r.unwrap_or_else(|e| panic!("a row that is not whole: {e}\n{raw}")))
        .collect();
    assert_eq!(raw.lines().count(), rows.len() + 1, "{raw}");
    (header, rows)
}

fn column(header: &[String], name: &str) -> usize {
    header.iter().position(|h| h == name).unwrap()
}

/// Every invocation prints 100,006 bytes: two of them fill what is left of a 256 KiB disk.
const FILL: &str = r#"
name = "fill"
[matrix]
n = [1, 2]
[run]
command = "head -c 100000 /dev/zero | tr '\\0' x; echo; echo done"
warmup = 0
runs = 3
"#;

#[test]
fn a_full_output_disk_stops_the_run_as_failed_and_resume_finishes_it() {
    if !common::privileged() {
        return;
    }
    let p = Project::on_host(FILL);
    let disk = Tmpfs::mount(&p.path("out"), "256k");
    let o = run(&p, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("error: the run stopped on an error of benchbox's own: cannot write the workload's output to")
            && stderr.contains("No space left on device")
            && stderr.contains("the workload is not blamed")
            && stderr.contains("hint: free space on the output disk")
            && stderr.contains("--resume"),
        "{stderr}"
    );
    let json = p.results("fill");
    assert_eq!(json["status"], "failed", "{json}");
    let reason = json["reason"].as_str().unwrap();
    assert!(reason.contains("No space left on device"), "{reason}");
    let (header, rows) = whole_rows(&p, "fill");
    assert!(rows.len() < 6, "the disk was to fill up before the end");
    // No row blames the workload; results.json agrees with runs.csv.
    for row in &rows {
        assert_eq!(&row[column(&header, "status")], "ok", "{row:?}");
    }
    let failures: u64 = json["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["failures"].as_u64().unwrap())
        .sum();
    assert_eq!(failures, 0);
    let dir = p.latest("fill");
    assert!(!dir.join(results::Reserve::FILE).exists());
    assert!(!dir.join("logs/.stdout.spool").exists());

    // Space freed: --resume runs exactly what is missing, and every log is whole.
    disk.resize("8m");
    let o = run(&p, &["--resume", "latest"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let json = p.results("fill");
    assert_eq!(json["status"], "complete");
    assert!(json.get("reason").is_none(), "{json}");
    let (header, rows) = whole_rows(&p, "fill");
    assert_eq!(rows.len(), 6);
    let mut seen: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            assert_eq!(&r[column(&header, "status")], "ok");
            (
                r[column(&header, "cell")].to_string(),
                r[column(&header, "invocation")].to_string(),
            )
        })
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 6, "each invocation once");
    for slug in ["n-1", "n-2"] {
        for i in 0..3 {
            let log = dir.join(format!("logs/{slug}/measure-{i}.out"));
            assert_eq!(
                fs::metadata(&log).unwrap().len(),
                100_006,
                "{}",
                log.display()
            );
        }
    }
    assert!(!dir.join(results::Reserve::FILE).exists());
    drop(disk);
}

fn sample(index: u32) -> Sample {
    Sample {
        cell_id: "c".into(),
        phase: Phase::Measure,
        index,
        started_at: "2026-01-01T00:00:00Z".into(),
        measured: benchbox::measurement::Measurement {
            wall_s: 1.0,
            user_s: 1.0,
            system_s: 0.0,
            peak_memory_bytes: Some(1),
            io_read_bytes: None,
            io_write_bytes: None,
            exit_code: Some(0),
            signal: None,
            oom_killed: false,
            timed_out: false,
            throttled_s: 0.0,
            rusage: Default::default(),
            pressure: Default::default(),
            disturbance: Default::default(),
            counters: Default::default(),
        },
        status: Status::Ok,
        flags: vec![],
        reason: "r".repeat(300),
        metrics: Default::default(),
    }
}

#[test]
fn a_runs_csv_row_is_written_whole_or_not_at_all() {
    if !common::privileged() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&tmp.path().join("disk"), "8k");
    let path = tmp.path().join("disk/runs.csv");
    let mut csv = CsvWriter::open(&path, &[], &[], &[]).unwrap();
    // Rows of ~420 bytes: the 8 KiB fill up part-way through one.
    let mut written = 0;
    let error = loop {
        match csv.append(&sample(written), "", &[]) {
            Ok(()) => written += 1,
            Err(e) => break e.to_string(),
        }
        assert!(written < 100, "the disk never filled");
    };
    assert!(error.contains("No space left on device"), "{error}");
    let rows = results::read_csv(&path).unwrap().rows;
    assert_eq!(rows.len() as u32, written);
    assert!(fs::read_to_string(&path).unwrap().ends_with('\n'));
    // With room again, appending goes on after the last whole row.
    disk.resize("64k");
    csv.append(&sample(written), "", &[]).unwrap();
    let rows = results::read_csv(&path).unwrap().rows;
    assert_eq!(rows.len() as u32, written + 1);
    assert_eq!(rows.last().unwrap().sample, sample(written));
    drop(csv);
    drop(disk);
}

#[test]
fn max_log_caps_each_log_without_slowing_the_workload() {
    if !common::privileged() {
        return;
    }
    // 50 MiB on stdout, 3 MB on stderr, a metric before the cap and another after it.
    let p = Project::on_host(
        r#"
name = "cap"
[run]
command = "echo 'score: 42'; head -c 52428800 /dev/zero | tr '\\0' x; echo; echo 'score: 99'; head -c 3000000 /dev/zero >&2"
max-log = "1MiB"
timeout = "60s"
warmup = 0
runs = 1
[[metric]]
name = "score"
pattern = 'score: (\d+)'
"#,
    );
    let o = run(&p, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("stdout and stderr truncated at max-log (1 MiB)"),
        "{stderr}"
    );
    let (header, rows) = whole_rows(&p, "cap");
    let row = &rows[0];
    assert_eq!(&row[column(&header, "status")], "ok", "{row:?}");
    // `disturbed` depends on what else this shared machine runs meanwhile: not judged here.
    assert_eq!(
        row[column(&header, "flags")].replace("disturbed;", ""),
        "log-truncated"
    );
    // Matched on what the log kept: the score printed past the cap is not seen.
    assert_eq!(&row[column(&header, "score")], "42");
    let wall: f64 = row[column(&header, "wall_s")].parse().unwrap();
    assert!(wall < 30.0, "the workload was slowed down: {wall} s");
    let dir = p.latest("cap");
    let out = fs::read(dir.join("logs/default/measure-0.out")).unwrap();
    let marker = "\n[benchbox: log truncated at max-log (1 MiB); ";
    let kept = (1 << 20) + 1; // the newline that starts the marker's own line
    assert_eq!(
        String::from_utf8_lossy(&out[kept - 1..]),
        format!(
            "{marker}{} more bytes were read and discarded]\n",
            "score: 42\n".len() + 52_428_800 + "\nscore: 99\n".len() - (1 << 20)
        )
    );
    assert!(out.starts_with(b"score: 42\nxxx"));
    let err = fs::read_to_string(dir.join("logs/default/measure-0.err")).unwrap();
    assert!(err.ends_with(&format!(
        "[benchbox: log truncated at max-log (1 MiB); {} more bytes were read and discarded]\n",
        3_000_000 - (1 << 20)
    )));
}

#[test]
fn a_command_that_cannot_start_has_no_exit_code_unlike_one_that_exits_127() {
    if !common::privileged() {
        return;
    }
    let p = Project::on_host(
        r#"
name = "nostart"
[matrix]
case = [
  { name = "binary", cmd = ["/no/such/program"], dir = "/" },
  { name = "workdir", cmd = ["/bin/true"], dir = "/no/such/dir" },
  { name = "exit127", cmd = ["/bin/sh", "-c", "exit 127"], dir = "/" },
]
[environment]
workdir = "{case.dir}"
[run]
command = "{case.cmd}"
warmup = 0
runs = 1
allow-failures = true
"#,
    );
    let o = run(&p, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("case=binary measure #1: did not start, FAILED: cannot run"),
        "{stderr}"
    );
    let (header, rows) = whole_rows(&p, "nostart");
    let get = |label: &str, col: &str| {
        let row = rows
            .iter()
            .find(|r| &r[column(&header, "label")] == label)
            .unwrap();
        row[column(&header, col)].to_string()
    };
    for (label, why) in [
        ("case=binary", "No such file or directory"),
        (
            "case=workdir",
            "cannot enter the working directory `/no/such/dir`",
        ),
    ] {
        assert_eq!(get(label, "status"), "start-failed");
        assert_eq!(
            get(label, "exit_code"),
            "",
            "{label}: never ran, so never exited"
        );
        assert_eq!(get(label, "signal"), "");
        assert!(
            get(label, "reason").contains(why),
            "{}",
            get(label, "reason")
        );
    }
    assert_eq!(get("case=exit127", "status"), "failed");
    assert_eq!(get("case=exit127", "exit_code"), "127");
    assert_eq!(get("case=exit127", "reason"), "exit 127");
    // Rebuilt from runs.csv alone, none of them counts: no statistics, one failure each.
    let o = p.cmd(&["report", "out/nostart/latest"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let json = p.results("nostart");
    for cell in json["cells"].as_array().unwrap() {
        assert_eq!(cell["failures"], 1, "{cell}");
        assert_eq!(cell["summary"], serde_json::json!({}), "{cell}");
    }
}
