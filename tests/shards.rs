//! Shards end to end: `run --shard` in both modes, `merge` (every invocation once, the
//! `host` column, the shard records) and what it refuses, the CPU check of a shard, and the
//! exports: the Kubernetes Job checked against the official schemas with `kubernetes-validate`
//! (in target/k8s-venv, made by tests/run; without it that test skips, unless
//! `BENCHBOX_REQUIRE_KUBERNETES_VALIDATE=1` makes that a failure).

mod common;

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::project::{Project, text};

const MATRIX: &str = r#"
name = "sh"
[matrix]
n = [1, 2, 3]
[run]
command = "echo {n}"
warmup = 1
runs = 4
"#;

/// `run --shard K/N` for every K; the shards' run directories, by K.
fn run_shards(p: &Project, n: u32, by: &str) -> Vec<PathBuf> {
    (0..n)
        .map(|k| {
            let o = p
                .cmd(&[
                    "run",
                    "m.toml",
                    "--out",
                    "out",
                    "--shard",
                    &format!("{k}/{n}"),
                    "--shard-by",
                    by,
                ])
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", text(&o));
            let dirs: Vec<PathBuf> = fs::read_dir(p.path("out/sh"))
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|d| d.to_string_lossy().ends_with(&format!("-shard-{k}")))
                .collect();
            assert_eq!(dirs.len(), 1, "{dirs:?}");
            dirs.into_iter().next().unwrap()
        })
        .collect()
}

/// `benchbox ARGS` (one `run --shard` into a fresh `--out`), and the shard's run directory.
fn one_shard(p: &Project, args: &[&str]) -> PathBuf {
    let o = p.cmd(args).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = args[args.iter().position(|a| *a == "--out").unwrap() + 1];
    fs::read_dir(p.path(&format!("{out}/sh")))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

fn merge(p: &Project, dirs: &[PathBuf], out: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["merge".to_string()];
    args.extend(dirs.iter().map(|d| d.display().to_string()));
    args.extend(["--out".to_string(), out.to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    p.cmd(&args).output().unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// (cell, phase, invocation, host) of every row of a runs.csv.
fn rows(path: &Path) -> Vec<(String, String, String, String)> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let h: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let col = |n: &str| h.iter().position(|x| x == n).unwrap();
    let (c, ph, i, host) = (col("cell"), col("phase"), col("invocation"), col("host"));
    r.records()
        .map(|row| {
            let row = row.unwrap();
            (
                row[c].to_string(),
                row[ph].to_string(),
                row[i].to_string(),
                row[host].to_string(),
            )
        })
        .collect()
}

fn check_merged(p: &Project, out: &str, shards: usize) {
    let merged = p.path(out);
    let results = json(&merged.join("results.json"));
    assert_eq!(results["status"], "complete");
    assert_eq!(results["shard"]["merged"].as_array().unwrap().len(), shards);
    assert!(results["shard"].get("index").is_none());
    let rows = rows(&merged.join("runs.csv"));
    let measured: HashSet<(String, String)> = rows
        .iter()
        .filter(|r| r.1 == "measure")
        .map(|r| (r.0.clone(), r.2.clone()))
        .collect();
    // Every planned invocation once (a duplicate would shrink the set), one warm-up per cell.
    assert_eq!(measured.len(), 12);
    assert_eq!(rows.iter().filter(|r| r.1 == "measure").count(), 12);
    assert_eq!(rows.iter().filter(|r| r.1 == "warmup").count(), 3);
    assert!(rows.iter().all(|r| !r.3.is_empty()));
    // The merged run is a run: `report` rebuilds it, and `compare` reads it.
    for args in [vec!["report", out], vec!["compare", out, out]] {
        let o = p.cmd(&args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", text(&o));
    }
}

#[test]
fn shards_by_invocation_and_by_cell_merge_into_one_run() {
    if !common::privileged() {
        return;
    }
    let p = Project::on_host(MATRIX);
    let shards = run_shards(&p, 3, "invocation");
    // No shard moves `latest`.
    assert!(!p.path("out/sh/latest").exists());
    for (k, dir) in shards.iter().enumerate() {
        let r = json(&dir.join("results.json"));
        assert_eq!(r["shard"]["index"], k);
        assert_eq!(r["shard"]["count"], 3);
        assert_eq!(r["shard"]["by"], "invocation");
        assert_eq!(
            r["shard"]["plan_hash"],
            json(&shards[0].join("results.json"))["shard"]["plan_hash"]
        );
        // Every shard ran every cell's warm-up; its measured invocations are i mod 3 = k.
        let mut rd = csv::Reader::from_path(dir.join("runs.csv")).unwrap();
        for row in rd.records() {
            let row = row.unwrap();
            if &row[3] == "measure" {
                assert_eq!(row[4].parse::<usize>().unwrap() % 3, k, "{row:?}");
            }
        }
    }
    let o = merge(&p, &shards, "merged", &[]);
    assert!(o.status.success(), "{}", text(&o));
    check_merged(&p, "merged", 3);

    let q = Project::on_host(MATRIX);
    let shards = run_shards(&q, 2, "cell");
    let o = merge(&q, &shards, "merged", &[]);
    assert!(o.status.success(), "{}", text(&o));
    check_merged(&q, "merged", 2);
}

#[test]
fn merge_refuses_what_is_not_one_run() {
    if !common::privileged() {
        return;
    }
    let p = Project::on_host(MATRIX);
    let two = run_shards(&p, 2, "invocation");
    let refused = |o: std::process::Output, words: &str| {
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(words) && err.contains("hint:"),
            "{words}: {err}"
        );
    };
    // A missing shard; --allow-missing merges the rest and says the run is not whole.
    refused(merge(&p, &two[..1], "m1", &[]), "shard(s) 1 of 2 missing");
    let o = merge(&p, &two[..1], "m1", &["--allow-missing"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(json(&p.path("m1/results.json"))["status"], "interrupted");
    // A shard twice.
    refused(
        merge(&p, &[two[0].clone(), two[0].clone()], "m2", &[]),
        "given twice",
    );
    // A merged run, or a whole run, is no shard.
    refused(merge(&p, &[p.path("m1")], "m3", &[]), "is a merged run");
    let o = p
        .cmd(&["run", "m.toml", "--out", "whole"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    refused(
        merge(&p, &[p.latest_in("whole", "sh")], "m4", &[]),
        "not a shard",
    );
    // Shards of other counts, other modes, other plans and other matrix files.
    let other_count = one_shard(&p, &["run", "m.toml", "--out", "o3", "--shard", "1/3"]);
    refused(
        merge(&p, &[two[0].clone(), other_count], "m5", &[]),
        "different shard counts",
    );
    let by_cell = one_shard(
        &p,
        &[
            "run",
            "m.toml",
            "--out",
            "oc",
            "--shard",
            "1/2",
            "--shard-by",
            "cell",
        ],
    );
    refused(
        merge(&p, &[two[0].clone(), by_cell], "m6", &[]),
        "different --shard-by",
    );
    let other_plan = one_shard(
        &p,
        &[
            "run", "m.toml", "--out", "or", "--shard", "1/2", "--runs", "5",
        ],
    );
    refused(
        merge(&p, &[two[0].clone(), other_plan], "m7", &[]),
        "different plans",
    );
    fs::write(p.path("m.toml"), format!("{MATRIX}# edited\n")).unwrap();
    let other_file = one_shard(&p, &["run", "m.toml", "--out", "om", "--shard", "1/2"]);
    refused(
        merge(&p, &[two[0].clone(), other_file], "m8", &[]),
        "different matrix files",
    );
    // An output directory that holds something.
    refused(merge(&p, &two, "m1", &[]), "is not empty");
    for m in ["m2", "m3", "m4", "m5", "m6", "m7", "m8"] {
        assert!(!p.path(m).join("runs.csv").exists(), "{m} was written");
    }
    // Rows found in two shards are refused while runs.csv is being written: nothing of the
    // half-made run is left, neither the directories merge made nor what it wrote in an
    // empty one it was given.
    let overlapping = p.path("overlapping");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(&two[1])
        .arg(&overlapping)
        .status()
        .unwrap();
    assert!(copied.success());
    let theirs = fs::read_to_string(two[0].join("runs.csv")).unwrap();
    let row = theirs.lines().last().unwrap();
    let mut ours = fs::read_to_string(overlapping.join("runs.csv")).unwrap();
    ours.push_str(row);
    ours.push('\n');
    fs::write(overlapping.join("runs.csv"), ours).unwrap();
    let pair = [two[0].clone(), overlapping];
    refused(merge(&p, &pair, "m9/deep", &[]), "overlap");
    assert!(!p.path("m9").exists(), "m9 was left behind");
    fs::create_dir(p.path("m10")).unwrap();
    refused(merge(&p, &pair, "m10", &[]), "overlap");
    assert_eq!(
        fs::read_dir(p.path("m10")).unwrap().count(),
        0,
        "m10 holds what was written"
    );
}

#[test]
fn a_shard_without_the_pinned_cpus_stops_with_exit_3() {
    if !common::privileged() {
        return;
    }
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        eprintln!("SKIPPED: needs two CPUs");
        return;
    }
    let p = Project::on_host(&format!("{MATRIX}[limits]\ncpus = \"1\"\n"));
    let mut c = Command::new("taskset");
    c.args(["-c", "0", env!("CARGO_BIN_EXE_benchbox")])
        .args(["run", "m.toml", "--out", "out", "--shard", "0/2"])
        .current_dir(p.dir())
        .env("BENCHBOX_SCRATCH", p.path("scratch"));
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("pins CPUs 1") && err.contains("given CPUs 0"),
        "{err}"
    );
    assert!(
        !p.path("out").exists(),
        "nothing may be written before the check"
    );
}

fn export(p: &Project, args: &[&str]) -> String {
    let mut all = vec!["export"];
    all.extend_from_slice(args);
    let o = p.cmd(&all).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

fn validator() -> Option<PathBuf> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/k8s-venv/bin/python3");
    let ok = python.exists()
        && Command::new(&python)
            .args(["-c", "import kubernetes_validate"])
            .status()
            .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    assert!(
        std::env::var("BENCHBOX_REQUIRE_KUBERNETES_VALIDATE").as_deref() != Ok("1"),
        "{} has no kubernetes-validate and BENCHBOX_REQUIRE_KUBERNETES_VALIDATE=1 (hint: run tests/run, which makes the venv)",
        python.display()
    );
    eprintln!("SKIPPED: target/k8s-venv has no kubernetes-validate (tests/run makes it)");
    None
}

/// The Job against the official schemas (bundled with kubernetes-validate: offline), strict
/// (no unknown fields), then what makes it a benchbox shard Job.
const CHECK_JOB: &str = r#"
import sys, yaml, kubernetes_validate
doc = yaml.safe_load(open(sys.argv[1]))
kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
spec = doc["spec"]
assert doc["kind"] == "Job" and spec["completionMode"] == "Indexed", spec
n = int(sys.argv[2])
assert spec["completions"] == n and spec["parallelism"] == n, spec
pod = spec["template"]["spec"]
for c in pod["containers"]:
    r = c["resources"]
    # Guaranteed QoS: requests equal limits for CPU and memory; whole CPUs.
    assert r["requests"] == r["limits"], r
    assert set(r["limits"]) >= {"cpu", "memory"}, r
    assert str(r["limits"]["cpu"]).isdigit(), r
    assert c["securityContext"]["privileged"] is True
    script = " ".join(c.get("command", []) + c.get("args", []))
    assert '--shard "$JOB_COMPLETION_INDEX/%d"' % n in script, script
    assert any(m["mountPath"] == "/results" for m in c["volumeMounts"])
assert any(v["name"] == "results" for v in pod["volumes"])
print("ok")
"#;

#[test]
fn exports_for_kubernetes_and_github_are_what_the_engines_take() {
    let p = Project::on_host(&format!(
        "{MATRIX}[limits]\ncpu-quota = 1.5\nmemory = \"100MiB\"\n"
    ));
    let job = export(
        &p,
        &["k8s", "m.toml", "--shards", "4", "--image", "reg/bench:1"],
    );
    assert!(job.contains("# Collect and merge"), "{job}");
    let with_pvc = export(&p, &["k8s", "m.toml", "--shards", "2", "--pvc", "results"]);
    assert!(with_pvc.contains("claimName: \"results\""), "{with_pvc}");
    let gh = export(&p, &["github", "m.toml", "--shards", "3"]);
    assert!(gh.contains("shard: [0, 1, 2]"), "{gh}");
    assert!(gh.contains("--shard \"${{ matrix.shard }}/3\""), "{gh}");
    assert!(
        gh.contains("benchbox merge reports/sh/*-shard-* --out reports/sh/merged"),
        "{gh}"
    );
    let slurm = export(
        &p,
        &[
            "slurm",
            "m.toml",
            "--shards",
            "2",
            "--partition",
            "bench",
            "--time",
            "01:00:00",
        ],
    );
    for line in [
        "#SBATCH --array=0-1",
        "#SBATCH --partition=bench",
        "#SBATCH --time=01:00:00",
        "#SBATCH --cpus-per-task=2",
        "--dependency=afterany:",
    ] {
        assert!(slurm.contains(line), "{line}: {slurm}");
    }
    let pinned = Project::on_host(&format!("{MATRIX}[limits]\ncpus = \"0\"\n"));
    assert!(export(&pinned, &["slurm", "m.toml", "--shards", "2"]).contains("#SBATCH --exclusive"));
    let Some(python) = validator() else { return };
    for (yaml, n) in [(job, 4), (with_pvc, 2)] {
        let file = p.path("job.yaml");
        fs::write(&file, yaml).unwrap();
        let o = Command::new(&python)
            .args(["-c", CHECK_JOB, file.to_str().unwrap(), &n.to_string()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
}

/// A shard whose runs.csv replaced a disturbed row (`[run] rerun-disturbed`) holds that
/// invocation twice: `merge` keeps both rows (the rebuild leaves the replaced one out), where two
/// shards holding one invocation is still an overlap.
#[test]
fn merge_keeps_a_shards_replaced_row_and_its_rerun() {
    if !common::privileged() {
        return;
    }
    let p = Project::on_host(MATRIX);
    let shards = run_shards(&p, 2, "invocation");
    // Shard 0's first measured row, as if disturbed, then replaced by a rerun of it.
    let path = shards[0].join("runs.csv");
    let text_of = fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text_of.lines().map(String::from).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let flags = header.iter().position(|h| *h == "flags").unwrap();
    let at = lines.iter().position(|l| l.contains(",measure,")).unwrap();
    let with_flag = |line: &str, flag: &str| {
        let mut f: Vec<&str> = line.split(',').collect();
        assert_eq!(f[flags], "", "{line}");
        f[flags] = flag;
        f.join(",")
    };
    let original = lines[at].clone();
    lines[at] = with_flag(&original, "disturbed");
    lines.insert(at + 1, with_flag(&original, "rerun"));
    fs::write(&path, lines.join("\n") + "\n").unwrap();
    let o = merge(&p, &shards, "merged", &[]);
    assert!(o.status.success(), "{}", text(&o));
    let merged = json(&p.path("merged/results.json"));
    let cell = original.split(',').next().unwrap();
    let c = merged["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == cell)
        .unwrap();
    assert_eq!(c["reruns"], 1, "{c}");
    assert_eq!(c["summary"]["wall_s"]["n"], 4, "{c}");
    assert_eq!(rows(&p.path("merged/runs.csv")).len(), 12 + 3 + 1);
}
