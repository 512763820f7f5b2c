//! Services beside a cell's workload, through the runner on this host (privileged): a busybox
//! httpd service and a wget client in one private network, each pinned to its own CPU; a
//! service that never becomes ready; one that crashes while the workload runs; a service that
//! lives for the whole cell; a service measured over the workload's exec to exit only; the
//! stop, SIGTERM then SIGKILL. Nothing is left behind (processes, groups, network).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use benchbox::results::RunResults;
use benchbox::runner::{self, RunOptions};
use benchbox::spec::{self, Lifetime, Limits, MetricSpec, Ready, Root, Service, Volume};
use benchbox::status::Status;

/// The matrix `toml` (on the host's filesystem) with `services` given to every cell, and the
/// service columns the matrix would declare.
fn matrix(dir: &Path, toml: &str, services: Vec<Service>) -> spec::Matrix {
    let path = dir.join("m.toml");
    fs::write(&path, toml).unwrap();
    let ctx = spec::ValidationContext {
        online_cpus: spec::CpuSet::new([0, 1]),
        check_paths: true,
        image_accounts: BTreeMap::new(),
    };
    let mut m = spec::load(&path, &ctx).unwrap();
    for cell in &mut m.cells {
        if cell.services.is_empty() {
            cell.services = services.clone();
            for s in &services {
                for (column, unit) in spec::SERVICE_METRICS {
                    cell.metrics.push(MetricSpec {
                        name: format!("{}.{column}", s.name),
                        pattern: None,
                        unit: Some(unit.into()),
                        better: spec::Better::Lower,
                        service: Some(s.name.clone()),
                    });
                }
            }
        }
    }
    m
}

fn httpd(www: &Path, ready: Ready) -> Service {
    Service {
        name: "web".into(),
        root: Root::Host,
        image_digest: None,
        workdir: None,
        user: None,
        volumes: vec![Volume {
            host: www.to_path_buf(),
            target: "/www".into(),
            read_only: true,
        }],
        env: BTreeMap::new(),
        command: vec![
            "/bin/sh".into(),
            "-c".into(),
            "grep Cpus_allowed_list /proc/self/status; exec busybox httpd -f -p 8080 -h /www"
                .into(),
        ],
        ready,
        ready_timeout: Duration::from_secs(10),
        lifetime: Lifetime::Invocation,
        depends_on: Vec::new(),
        ports: vec![8080],
        limits: Limits {
            cpus: Some(spec::CpuSet::new([1])),
            memory: Some(64 << 20),
            ..Default::default()
        },
        stop_timeout: Duration::from_secs(2),
    }
}

const CLIENT: &str = r#"
name = "svc"
[limits]
cpus = "0"
[run]
command = "grep Cpus_allowed_list /proc/self/status; grep web /etc/hosts; for i in 1 2 3 4 5 6 7 8 9 10; do busybox wget -q -O - http://web:8080/index.html || exit 3; done"
warmup = 0
runs = 2
"#;

/// One test at a time: `assert_nothing_left` looks at every process of the host.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn run(dir: &Path, m: &spec::Matrix) -> runner::RunOutcome {
    run_until(dir, m, &AtomicBool::new(false))
}

/// [`run`], with Ctrl-C as `cancel`.
fn run_until(dir: &Path, m: &spec::Matrix, cancel: &AtomicBool) -> runner::RunOutcome {
    run_resuming(dir, m, cancel, None)
}

/// [`run_until`], finishing the run in `resume` when given.
fn run_resuming(
    dir: &Path,
    m: &spec::Matrix,
    cancel: &AtomicBool,
    resume: Option<&Path>,
) -> runner::RunOutcome {
    let selected: Vec<usize> = (0..m.cells.len()).collect();
    let sandboxing = runner::preflight(m, &selected, &[], None).unwrap();
    let opts = RunOptions {
        out_dir: dir.join("out"),
        runs: None,
        warmup: None,
        only: Vec::new(),
        resume: resume.map(Path::to_path_buf),
        scratch_base: dir.to_path_buf(),
        stats: Default::default(),
        command_line: Vec::new(),
        images: BTreeMap::new(),
        cgroup_parent: None,
        revision: None,
        shard: None,
    };
    runner::run(m, &opts, sandboxing, cancel, &mut |_| {}).unwrap()
}

fn www(dir: &Path) -> std::path::PathBuf {
    let www = dir.join("www");
    fs::create_dir_all(&www).unwrap();
    fs::write(www.join("index.html"), "hello from the service\n").unwrap();
    www
}

/// No process, cgroup or scratch directory of benchbox's is left.
fn assert_nothing_left(dir: &Path) {
    let own = format!("inv-{}-", std::process::id());
    for parent in [
        "/sys/fs/cgroup/cpu/benchbox",
        "/sys/fs/cgroup/memory/benchbox",
        "/sys/fs/cgroup/pids/benchbox",
        "/sys/fs/cgroup/benchbox",
    ] {
        for entry in fs::read_dir(parent).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with(&own), "group {parent}/{name} left behind");
        }
    }
    let httpds = std::process::Command::new("pgrep")
        .args(["-f", "busybox httpd"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&httpds.stdout).trim().is_empty(),
        "an httpd is still running"
    );
    let scratch: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".benchbox-scratch")
        })
        .collect();
    assert!(scratch.is_empty(), "scratch left: {scratch:?}");
}

fn results(outcome: &runner::RunOutcome) -> RunResults {
    benchbox::results::load(&outcome.dir).unwrap()
}

#[test]
fn a_client_reaches_its_service_by_name_each_pinned_apart_and_both_are_measured() {
    if !common::privileged() {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let m = matrix(
        tmp.path(),
        CLIENT,
        vec![httpd(&www(tmp.path()), Ready::Tcp(8080))],
    );
    let outcome = run(tmp.path(), &m);
    let run = results(&outcome);
    let cell = &run.cells[0];
    assert_eq!(cell.samples.len(), 2);
    for s in &cell.samples {
        assert_eq!(s.status, Status::Ok, "{}", s.reason);
        for column in ["web.cpu_s", "web.peak_memory_bytes", "web.ready_s"] {
            let v = s.metrics.get(column).copied();
            assert!(v.is_some_and(|v| v > 0.0), "{column}: {v:?}");
        }
    }
    let log = |p: &str| fs::read_to_string(outcome.dir.join("logs").join(&cell.slug).join(p));
    let client = log("measure-0.out").unwrap();
    assert_eq!(
        client.matches("hello from the service").count(),
        10,
        "{client}"
    );
    assert!(client.contains("Cpus_allowed_list:\t0\n"), "{client}");
    assert!(client.contains("127.0.0.1\tweb"), "{client}");
    let service = log("web/measure-0.out").unwrap();
    assert!(service.contains("Cpus_allowed_list:\t1\n"), "{service}");
    // Whole-life totals in results.json.
    let totals = &cell.services["web"];
    assert_eq!(totals.instances, 2);
    assert!(totals.user_s + totals.system_s > 0.0);
    // Metrics like any other: in the reports (CPU, memory, time to ready), in compare by the
    // same short names as the workload's.
    let (summarized, _) = benchbox::rebuild::load_summarized(&outcome.dir).unwrap();
    let shown: Vec<String> = benchbox::metrics::report_metrics(&summarized)
        .into_iter()
        .map(|m| m.key)
        .collect();
    for key in ["web.cpu_s", "web.peak_memory_bytes", "web.ready_s"] {
        assert!(shown.contains(&key.to_string()), "{shown:?}");
    }
    assert!(!shown.contains(&"web.user_s".to_string()), "{shown:?}");
    assert_eq!(
        benchbox::compare::resolve_metric("web.cpu", &[&summarized]).unwrap(),
        "web.cpu_s"
    );
    let summary = fs::read_to_string(outcome.dir.join("summary.md")).unwrap();
    assert!(summary.contains("web: CPU time"), "{summary}");
    let csv = fs::read_to_string(outcome.dir.join("runs.csv")).unwrap();
    assert!(csv.lines().next().unwrap().contains(",web.cpu_s,"), "{csv}");
    assert_nothing_left(tmp.path());
}

#[test]
fn a_service_that_never_becomes_ready_fails_the_invocation_and_keeps_its_logs() {
    if !common::privileged() {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let mut svc = httpd(&www(tmp.path()), Ready::Tcp(9999));
    svc.ready_timeout = Duration::from_millis(500);
    let m = matrix(tmp.path(), CLIENT, vec![svc]);
    let outcome = run(tmp.path(), &m);
    assert_eq!(outcome.failures, 2);
    let run = results(&outcome);
    let s = &run.cells[0].samples[0];
    assert_eq!(s.status, Status::ServiceFailed);
    assert!(
        s.reason
            .contains("service `web` did not become ready within")
            && s.reason.contains("port 9999"),
        "{}",
        s.reason
    );
    let slug = &run.cells[0].slug;
    let service = fs::read_to_string(
        outcome
            .dir
            .join("logs")
            .join(slug)
            .join("web/measure-0.out"),
    );
    assert!(service.unwrap().contains("Cpus_allowed_list"));
    // The client never ran.
    assert!(
        !outcome
            .dir
            .join("logs")
            .join(slug)
            .join("measure-0.out")
            .exists()
    );
    assert_nothing_left(tmp.path());
}

#[test]
fn a_service_that_crashes_mid_run_fails_the_invocation_and_stops_the_client() {
    if !common::privileged() {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let mut svc = httpd(&www(tmp.path()), Ready::Tcp(8080));
    svc.command = vec![
        "/bin/sh".into(),
        "-c".into(),
        "busybox httpd -p 8080 -h /www; sleep 0.5; exit 7".into(),
    ];
    let client = CLIENT.replace("command = \"", "command = \"sleep 30; ");
    let m = matrix(tmp.path(), &client, vec![svc]);
    let started = std::time::Instant::now();
    let outcome = run(tmp.path(), &m);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the client was not stopped"
    );
    let run = results(&outcome);
    let s = &run.cells[0].samples[0];
    assert_eq!(s.status, Status::ServiceFailed, "{}", s.reason);
    assert!(
        s.reason.contains("exited while the workload was running"),
        "{}",
        s.reason
    );
    // httpd daemonized itself, out of the service's shell: still killed with its group.
    assert_nothing_left(tmp.path());
}

#[test]
fn a_service_of_the_cell_lifetime_serves_every_invocation_once_started() {
    if !common::privileged() {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let mut svc = httpd(&www(tmp.path()), Ready::Log("Cpus_allowed".into()));
    svc.lifetime = Lifetime::Cell;
    // Two cells: each runs its invocations together, the report says so.
    let toml = CLIENT
        .replace("runs = 2", "runs = 3")
        .replace("[limits]", "[matrix]\nround = [\"a\", \"b\"]\n[limits]");
    let m = matrix(tmp.path(), &toml, vec![svc]);
    let outcome = run(tmp.path(), &m);
    let run = results(&outcome);
    for cell in &run.cells {
        assert!(cell.samples.iter().all(|s| s.status == Status::Ok));
        assert_eq!(cell.services["web"].instances, 1);
        assert!(
            outcome
                .dir
                .join("logs")
                .join(&cell.slug)
                .join("web/cell.out")
                .exists()
        );
    }
    // runs.csv: one cell's rows, then the other's.
    let csv = fs::read_to_string(outcome.dir.join("runs.csv")).unwrap();
    let cells: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(cells.len(), 6);
    assert!(cells[..3].iter().all(|c| *c == cells[0]), "{cells:?}");
    assert!(cells[3..].iter().all(|c| *c == cells[3]), "{cells:?}");
    let summary = fs::read_to_string(outcome.dir.join("summary.md")).unwrap();
    assert_eq!(summary.matches("not interleaved").count(), 2, "{summary}");
    assert_nothing_left(tmp.path());
}

#[test]
fn ctrl_c_with_services_up_stops_everything_and_the_run_is_interrupted() {
    if !common::privileged() {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let mut cell_svc = httpd(&www(tmp.path()), Ready::Tcp(8080));
    cell_svc.lifetime = Lifetime::Cell;
    let mut second = httpd(&www(tmp.path()), Ready::Tcp(8081));
    second.name = "api".into();
    second.command = vec![
        "busybox".into(),
        "httpd".into(),
        "-f".into(),
        "-p".into(),
        "8081".into(),
        "-h".into(),
        "/www".into(),
    ];
    second.depends_on = vec!["web".into()];
    let client = CLIENT.replace("command = \"", "command = \"sleep 30; ");
    let m = matrix(tmp.path(), &client, vec![cell_svc, second]);
    let cancel = std::sync::Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let started = std::time::Instant::now();
    let ctrl_c = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let outcome = run_until(tmp.path(), &m, &cancel);
    ctrl_c.join().unwrap();
    assert!(outcome.interrupted);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        benchbox::results::load(&outcome.dir).unwrap().cells[0]
            .samples
            .is_empty()
    );
    assert_nothing_left(tmp.path());
}

#[test]
fn a_ready_command_runs_in_the_services_network_and_says_why_it_failed() {
    if !common::privileged() {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let www = www(tmp.path());
    let probe = |script: &str| Ready::Command(vec!["/bin/sh".into(), "-c".into(), script.into()]);
    // Ready once the page is served, asked from a fresh container in the same network.
    let ok = httpd(
        &www,
        probe("busybox wget -q -O - http://web:8080/index.html"),
    );
    let outcome = run(tmp.path(), &matrix(tmp.path(), CLIENT, vec![ok]));
    let samples = &results(&outcome).cells[0].samples;
    assert!(
        samples.iter().all(|s| s.status == Status::Ok),
        "{samples:?}"
    );
    // Never ready: the reason carries what the probe said.
    let mut never = httpd(&www, probe("echo still warming up >&2; exit 1"));
    // Long enough for a probe container to run at all on an emulated CPU (the VM lane).
    never.ready_timeout = Duration::from_secs(2);
    let tmp2 = tempfile::tempdir().unwrap();
    let outcome = run(tmp2.path(), &matrix(tmp2.path(), CLIENT, vec![never]));
    let s = &results(&outcome).cells[0].samples[0];
    assert_eq!(s.status, Status::ServiceFailed);
    assert!(
        s.reason
            .contains("the ready command last said: still warming up"),
        "{}",
        s.reason
    );
    assert_nothing_left(tmp2.path());
}

#[test]
fn a_sigkilled_benchbox_leaves_no_service_running() {
    if !common::privileged() {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    www(tmp.path());
    let toml = r#"
name = "killed"
[limits]
cpus = "0"
[services.web]
command = ["busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
volumes = ["./www:/www:ro"]
ready = { tcp = 8080 }
lifetime = "cell"
[services.db]
command = ["busybox", "httpd", "-f", "-p", "8081", "-h", "/www"]
volumes = ["./www:/www:ro"]
ready = { tcp = 8081 }
[run]
command = "sleep 30"
warmup = 0
runs = 1
"#;
    fs::write(tmp.path().join("m.toml"), toml).unwrap();
    let mut child = common::benchbox()
        .args(["run", "m.toml", "--out", "out"])
        .current_dir(tmp.path())
        .env("BENCHBOX_SCRATCH", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Both services up and the workload running.
    let up = |port: &str| {
        let found = std::process::Command::new("pgrep")
            .args(["-f", &format!("busybox httpd -f -p {port}")])
            .output()
            .unwrap();
        !String::from_utf8_lossy(&found.stdout).trim().is_empty()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !(up("8080") && up("8081")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the services never came up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while up("8080") || up("8081") {
        assert!(
            std::time::Instant::now() < deadline,
            "a service outlived the SIGKILLed benchbox"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_run_with_services_interrupted_is_finished_by_resume() {
    if !common::privileged() {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let mut svc = httpd(&www(tmp.path()), Ready::Tcp(8080));
    svc.lifetime = Lifetime::Cell;
    let client = CLIENT
        .replace("command = \"", "command = \"sleep 1; ")
        .replace("runs = 2", "runs = 3");
    let m = matrix(tmp.path(), &client, vec![svc]);
    let cancel = std::sync::Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let ctrl_c = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let first = run_until(tmp.path(), &m, &cancel);
    ctrl_c.join().unwrap();
    assert!(first.interrupted);
    assert_nothing_left(tmp.path());
    let done = results(&first).cells[0].samples.len();
    assert!(done < 3, "{done} invocations before the Ctrl-C");
    let finished = run_resuming(tmp.path(), &m, &AtomicBool::new(false), Some(&first.dir));
    assert!(!finished.interrupted);
    let run = results(&finished);
    let cell = &run.cells[0];
    assert_eq!(cell.samples.len(), 3);
    assert!(cell.samples.iter().all(|s| s.status == Status::Ok));
    assert!(
        cell.samples
            .iter()
            .all(|s| s.metrics.get("web.cpu_s").is_some())
    );
    assert_nothing_left(tmp.path());
}

/// With `network = "host"` the service listens on the host's loopback: its tcp probe is made
/// there (in the pod's own namespace nothing would ever answer), and the client reaches it.
#[test]
fn a_tcp_probe_with_the_hosts_network_connects_on_the_host() {
    if !common::privileged() {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    // A port of its own: on the host's network, another test's service would answer on 8080.
    let mut svc = httpd(&www(tmp.path()), Ready::Tcp(18087));
    svc.command[2] = svc.command[2].replace("-p 8080", "-p 18087");
    svc.ports = vec![18087];
    let toml = CLIENT
        .replace("web:8080", "web:18087")
        .replace("[limits]", "[environment]\nnetwork = \"host\"\n[limits]");
    let m = matrix(tmp.path(), &toml, vec![svc]);
    let outcome = run(tmp.path(), &m);
    let run = results(&outcome);
    let cell = &run.cells[0];
    assert_eq!(cell.samples.len(), 2);
    for s in &cell.samples {
        assert_eq!(s.status, Status::Ok, "{}", s.reason);
    }
    assert_nothing_left(tmp.path());
}

/// A workload that runs past its `timeout` beside a service: the invocation is `timeout` (not
/// blamed on the service), and the service is stopped with it: nothing left behind.
#[test]
fn a_workload_timeout_with_a_service_up_stops_both() {
    if !common::privileged() {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let toml = r#"
name = "svc"
[limits]
cpus = "0"
[run]
command = "busybox wget -q -O - http://web:8080/index.html; sleep 30"
timeout = "1s"
warmup = 0
runs = 1
allow-failures = true
"#;
    let m = matrix(
        tmp.path(),
        toml,
        vec![httpd(&www(tmp.path()), Ready::Tcp(8080))],
    );
    let outcome = run(tmp.path(), &m);
    let run = results(&outcome);
    let sample = &run.cells[0].samples[0];
    assert_eq!(sample.status, Status::Timeout, "{}", sample.reason);
    assert!(sample.measured.wall_s < 10.0, "{}", sample.measured.wall_s);
    assert_eq!(run.cells[0].services["web"].instances, 1);
    assert_nothing_left(tmp.path());
}

/// A service that burns a CPU of its own from start to stop (`sh`'s busy loop), pinned to cpu 1.
fn burner() -> Service {
    let mut svc = httpd(Path::new("/"), Ready::Started);
    svc.name = "burn".into();
    svc.volumes = Vec::new();
    svc.command = vec!["/bin/sh".into(), "-c".into(), "while :; do :; done".into()];
    svc.ports = Vec::new();
    svc.stop_timeout = Duration::from_millis(200);
    svc
}

/// How long each workload's container is held in its set-up, before its exec.
const SETUP: Duration = Duration::from_secs(2);

/// A service's columns cover the workload's measured time (exec to exit), not its container's
/// set-up: a service that is always busy on a CPU of its own uses at most the workload's wall
/// time in the window, however long the workload's container takes to build. Here it takes
/// [`SETUP`] at least: the workload runs as `root`, looked up in the container's /etc/passwd,
/// which is a FIFO (a volume) that this test holds open that long before it gives root's line.
/// The margin, half of that, is for the readings at each end on a busy or emulated machine
/// (the VM lane's); the old window, which began before the set-up, overshot by all of it.
#[test]
fn a_services_window_is_the_workloads_exec_to_exit_not_its_set_up() {
    if !common::privileged() {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let toml = r#"
name = "window"
[limits]
cpus = "0"
[run]
command = "sleep 0.2"
timeout = "30s"
warmup = 0
runs = 2
"#;
    let mut m = matrix(tmp.path(), toml, vec![burner()]);
    let fifo = tmp.path().join("passwd");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    m.cells[0].user = Some("root".into());
    m.cells[0].volumes = vec![Volume {
        host: fifo.clone(),
        target: "/etc/passwd".into(),
        read_only: true,
    }];
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let feeder = {
        let done = done.clone();
        let dir = tmp.path().to_path_buf();
        std::thread::spawn(move || {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            use std::sync::atomic::Ordering;
            let mut round = 0;
            while !done.load(Ordering::SeqCst) {
                // Non-blocking: refused while no container has it open to read.
                let opened = fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&fifo);
                match opened {
                    Ok(mut passwd) => {
                        std::thread::sleep(SETUP);
                        // A fresh FIFO for the next container, in place before this one can
                        // go on: this round can never pair with a container that is done.
                        round += 1;
                        let next = dir.join(format!("passwd-{round}"));
                        nix::unistd::mkfifo(&next, nix::sys::stat::Mode::from_bits_truncate(0o644))
                            .unwrap();
                        fs::rename(&next, &fifo).unwrap();
                        let _ = passwd.write_all(b"root:x:0:0:root:/root:/bin/sh\n");
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        })
    };
    let outcome = run(tmp.path(), &m);
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    feeder.join().unwrap();
    let run = results(&outcome);
    let cell = &run.cells[0];
    assert_eq!(cell.samples.len(), 2);
    let mut in_windows = 0.0;
    for s in &cell.samples {
        assert_eq!(s.status, Status::Ok, "{}", s.reason);
        let cpu = s.metrics["burn.cpu_s"];
        let wall = s.measured.wall_s;
        in_windows += cpu;
        assert!(
            cpu > 0.0 && cpu <= wall + SETUP.as_secs_f64() / 2.0,
            "burn.cpu_s {cpu} over a wall time of {wall}"
        );
    }
    // Not vacuous: the service did burn outside the windows, through the set-ups.
    let burn = &cell.services["burn"];
    let whole = burn.user_s + burn.system_s;
    assert!(
        whole > in_windows + SETUP.as_secs_f64() / 2.0,
        "{whole} s in all, {in_windows} s in the windows"
    );
    assert_nothing_left(tmp.path());
}

/// A service is stopped with SIGTERM, then SIGKILL after its `stop-timeout`: one that traps
/// TERM has it first (its handler leaves a marker in a volume and exits, long before its
/// grace is up), and one that ignores TERM is killed once its grace is up, leaving no process
/// and no group.
#[test]
fn services_get_sigterm_then_sigkill_after_their_grace() {
    if !common::privileged() {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    fs::create_dir(&out).unwrap();
    let service = |name: &str, script: &str, grace: Duration| {
        let mut svc = httpd(Path::new("/"), Ready::Started);
        svc.name = name.into();
        svc.volumes = vec![Volume {
            host: out.clone(),
            target: "/out".into(),
            read_only: false,
        }];
        svc.command = vec!["/bin/sh".into(), "-c".into(), script.into()];
        svc.ports = Vec::new();
        svc.stop_timeout = grace;
        svc
    };
    // `wait` returns as soon as a trapped signal comes.
    let polite = service(
        "polite",
        "trap 'echo TERM > /out/polite; exit 0' TERM; sleep 1000 & wait",
        Duration::from_secs(120),
    );
    // Catches TERM without exiting: notes when it came, and beats every 50 ms till killed
    // (the `sleep` or `date` the TERM may kill only ends its round). Host root: coreutils
    // `date`, which has %N (busybox's has not). The comment names it for pgrep. Half the grace
    // is the bar: a beat round (fork, exec, rename) can take a good part of a second under an
    // emulated CPU (the VM lane), while a KILL right after TERM leaves about a millisecond.
    let grace = Duration::from_secs(2);
    let stubborn = service(
        "stubborn",
        "trap 'date +%s%N > /out/term' TERM; \
         while :; do date +%s%N > /out/beat.tmp && mv /out/beat.tmp /out/beat; sleep 0.05; done \
         # benchbox-test-ignores-term",
        grace,
    );
    let toml = r#"
name = "stop"
[limits]
cpus = "0"
[run]
command = "true"
warmup = 0
runs = 1
"#;
    let m = matrix(tmp.path(), toml, vec![polite, stubborn]);
    let started = std::time::Instant::now();
    let outcome = run(tmp.path(), &m);
    let took = started.elapsed();
    let run = results(&outcome);
    let s = &run.cells[0].samples[0];
    assert_eq!(s.status, Status::Ok, "{}", s.reason);
    // TERM first: only a caught TERM writes the marker (SIGKILL cannot be caught)...
    let marker = fs::read_to_string(out.join("polite"));
    assert_eq!(marker.ok().as_deref(), Some("TERM\n"), "no TERM came first");
    // ... and it was not kept for its 120 s of grace (the whole run takes about 3 s here,
    // 18 s under the VM lane's emulation).
    assert!(took < Duration::from_secs(60), "{took:?}");
    // The stubborn one was given its grace after TERM, still beating, then killed...
    let ns = |file: &str| -> i128 {
        let text = fs::read_to_string(out.join(file)).unwrap_or_default();
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("/out/{file} of the stubborn service: {text:?}"))
    };
    let (term, beat) = (ns("term"), ns("beat"));
    let alive = Duration::from_nanos(u64::try_from(beat - term).unwrap_or(0));
    assert!(
        alive >= grace / 2,
        "last beat {:.3} s after TERM, against a grace of {grace:?}",
        (beat - term) as f64 / 1e9
    );
    assert!(took >= grace, "{took:?}");
    // ... and nothing of it is left.
    let left = std::process::Command::new("pgrep")
        .args(["-f", "benchbox-test-ignores-term"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "the service that ignores TERM is still running"
    );
    assert_eq!(run.cells[0].services["stubborn"].instances, 1);
    assert_nothing_left(tmp.path());
}
