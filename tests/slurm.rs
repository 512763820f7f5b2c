//! A real Slurm on this one node runs `benchbox export slurm`'s script: munged, `slurmctld -D`
//! and `slurmd -D` started by the test as plain daemons (a minimal slurm.conf: this machine's
//! CPUs, proctrack/linuxproc, task/none, SlurmUser=root, state in a temp dir), the exported
//! script submitted with 2 shards of a small host-filesystem matrix, then the array and the
//! merge job waited for. The merged run must hold every planned invocation once, two shard
//! records and a `host` column. The daemons are stopped at the end, on failure too.
//!
//! Needs root and Debian's slurm-wlm and munge (tests/run installs them); without them the
//! test skips, unless `BENCHBOX_REQUIRE_SLURM=1` makes that a failure.

mod common;

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MATRIX: &str = r#"
name = "sl"
[matrix]
n = [1, 2, 3]
[run]
command = "echo {n}"
warmup = 1
runs = 5
"#;

fn available() -> bool {
    let have = |p: &str| Path::new(p).exists();
    let ok = nix::unistd::geteuid().is_root()
        && have("/usr/sbin/slurmctld")
        && have("/usr/sbin/slurmd")
        && have("/usr/sbin/munged")
        && have("/usr/bin/sbatch");
    if !ok {
        assert!(
            std::env::var("BENCHBOX_REQUIRE_SLURM").as_deref() != Ok("1"),
            "Slurm test cannot run: needs root, slurm-wlm and munge (tests/run installs them), and BENCHBOX_REQUIRE_SLURM=1"
        );
        eprintln!(
            "SKIPPED: needs root, slurm-wlm and munge; set BENCHBOX_REQUIRE_SLURM=1 to fail instead"
        );
    }
    ok
}

/// The daemons this test started, stopped when it ends (whatever way).
struct Cluster {
    dir: PathBuf,
    daemons: Vec<Child>,
    munged_pid: Option<i32>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for d in &mut self.daemons {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(d.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        for d in &mut self.daemons {
            let _ = d.wait();
        }
        if let Some(pid) = self.munged_pid {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
}

impl Cluster {
    fn conf(&self) -> PathBuf {
        self.dir.join("slurm.conf")
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", self.conf());
        c
    }

    fn log(&self) -> String {
        ["ctld.log", "d.log", "munge/log"]
            .iter()
            .map(|f| {
                format!(
                    "--- {f}\n{}",
                    fs::read_to_string(self.dir.join(f)).unwrap_or_default()
                )
            })
            .collect()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(dir: &Path) -> Cluster {
    let host = nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for d in ["state", "spool", "munge"] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    let key: Vec<u8> = (0..128).map(|_| rand::random::<u8>()).collect();
    let key_path = dir.join("munge/key");
    fs::write(&key_path, key).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir.join("munge"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o400)).unwrap();
    let d = dir.display();
    let (ctld_port, slurmd_port) = (free_port(), free_port());
    let conf = format!(
        "ClusterName=benchboxtest
SlurmctldHost={host}(127.0.0.1)
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/ctld.pid
SlurmdPidFile={d}/d.pid
AuthType=auth/munge
AuthInfo=socket={d}/munge/sock
CredType=cred/munge
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
"
    );
    fs::write(dir.join("slurm.conf"), conf).unwrap();
    let mut cluster = Cluster {
        dir: dir.to_path_buf(),
        daemons: Vec::new(),
        munged_pid: None,
    };
    // munged daemonizes itself: its pid file says which process to stop.
    let munged = Command::new("/usr/sbin/munged")
        .arg(format!("--key-file={}", key_path.display()))
        .arg(format!("--socket={d}/munge/sock"))
        .arg(format!("--pid-file={d}/munge/pid"))
        .arg(format!("--log-file={d}/munge/log"))
        .arg(format!("--seed-file={d}/munge/seed"))
        .arg("--force")
        .status()
        .unwrap();
    cluster.munged_pid = fs::read_to_string(dir.join("munge/pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok());
    assert!(munged.success(), "munged failed\n{}", cluster.log());
    for (daemon, log) in [
        ("/usr/sbin/slurmctld", "ctld.log"),
        ("/usr/sbin/slurmd", "d.log"),
    ] {
        let child = cluster
            .cmd(daemon)
            .arg("-D")
            .arg("-f")
            .arg(cluster.conf())
            .stdout(fs::File::create(dir.join(log)).unwrap())
            .stderr(Stdio::from(
                fs::OpenOptions::new()
                    .append(true)
                    .open(dir.join(log))
                    .unwrap(),
            ))
            .spawn()
            .unwrap();
        cluster.daemons.push(child);
    }
    // Ready when the node is idle.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let o = cluster
            .cmd("sinfo")
            .args(["-h", "-o", "%t"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&o.stdout).trim() == "idle" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the node never became idle\n{}",
            cluster.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    cluster
}

#[test]
fn the_exported_script_runs_shards_on_slurm_and_merges_them() {
    if !available() {
        return;
    }
    let p = common::project::Project::on_host(MATRIX);
    let cluster = start(&p.path("slurm"));
    let res = p.path("res");
    let exported = p
        .cmd(&[
            "export",
            "slurm",
            "m.toml",
            "--shards",
            "2",
            "--out",
            res.to_str().unwrap(),
            "--benchbox",
            env!("CARGO_BIN_EXE_benchbox"),
        ])
        .output()
        .unwrap();
    assert!(exported.status.success(), "{exported:?}");
    fs::write(p.path("submit.sh"), &exported.stdout).unwrap();
    let submitted = cluster
        .cmd("bash")
        .arg("submit.sh")
        .current_dir(p.dir())
        .env("BENCHBOX_SCRATCH", p.path("scratch"))
        .output()
        .unwrap();
    assert!(
        submitted.status.success(),
        "{submitted:?}\n{}",
        cluster.log()
    );
    // Until the queue is empty: the array, then the merge.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let o = cluster.cmd("squeue").args(["-h"]).output().unwrap();
        if o.status.success() && o.stdout.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the jobs never ended\n{}",
            cluster.log()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let job_logs: String = fs::read_dir(&res)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".out"))
        .map(|e| fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    let merged: Vec<PathBuf> = fs::read_dir(res.join("sl"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert_eq!(merged.len(), 1, "one merged run expected\n{job_logs}");
    let merged = &merged[0];
    let results: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(merged.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["status"], "complete", "{job_logs}");
    let shards = results["shard"]["merged"].as_array().unwrap();
    assert_eq!(shards.len(), 2);
    let indices: Vec<u64> = shards
        .iter()
        .map(|s| s["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, [0, 1]);
    let mut csv = csv::Reader::from_path(merged.join("runs.csv")).unwrap();
    let header: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (cell, phase, invocation, host) =
        (col("cell"), col("phase"), col("invocation"), col("host"));
    let mut measured = HashSet::new();
    let mut warmups = 0;
    for row in csv.records() {
        let row = row.unwrap();
        assert!(!row[host].is_empty());
        if &row[phase] == "measure" {
            assert!(
                measured.insert((row[cell].to_string(), row[invocation].to_string())),
                "an invocation twice: {row:?}"
            );
        } else {
            warmups += 1;
        }
    }
    // Every planned invocation once: 3 cells x 5 measured, and the first shard's warm-ups.
    assert_eq!(measured.len(), 15);
    for c in results["cells"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        for i in 0..5 {
            assert!(
                measured.contains(&(id.to_string(), i.to_string())),
                "{id} #{i}"
            );
        }
    }
    assert_eq!(warmups, 3);
    drop(cluster);
}
