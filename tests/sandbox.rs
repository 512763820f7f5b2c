//! Real containers and real cgroups, one invocation at a time, through the library.

mod common;

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use std::path::Path;

use benchbox::sandbox::{self, Invocation, Limits, Outcome, RootSpec};

struct Fixture {
    /// First, so that it is dropped first: it waits for its teardowns before `dir` goes.
    sandbox: sandbox::Sandbox,
    dir: tempfile::TempDir,
    rootfs: std::path::PathBuf,
    cgroups: sandbox::Hierarchy,
}

static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Tests whose assertions are about CPU time take turns: on a 2-core machine two busy loops
/// plus the other tests would starve each other and make CPU/wall ratios meaningless.
static CPU_HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn cpu_turn() -> std::sync::MutexGuard<'static, ()> {
    CPU_HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

impl Fixture {
    fn new() -> Option<Fixture> {
        if !common::privileged() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let rootfs = common::busybox_rootfs(&dir.path().join("rootfs"));
        std::fs::create_dir(dir.path().join("scratch")).unwrap();
        let cgroups = sandbox::cgroup::detect_host().expect("cgroups");
        Some(Fixture {
            dir,
            rootfs,
            sandbox: sandbox::Sandbox::new(Some(cgroups.clone())),
            cgroups,
        })
    }

    fn is_v1(&self) -> bool {
        self.cgroups.version() == sandbox::cgroup::Version::V1
    }

    fn invocation(&self, script: &str) -> Invocation {
        Invocation {
            root: RootSpec::Overlay {
                lowers: vec![self.rootfs.clone()],
            },
            volumes: vec![],
            workdir: None,
            user: None,
            env: vec![("PATH".into(), "/bin".into())],
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            hostname: "cell".into(),
            host_network: false,
            network: None,
            limits: Limits::default(),
            stdout: self.dir.path().join("out"),
            stderr: self.dir.path().join("err"),
            max_log: None,
            timeout: Some(Duration::from_secs(60)),
            memory_interval: Some(Duration::from_millis(50)),
            scratch_base: self.dir.path().join("scratch"),
            upper_on_disk: false,
            keep_upper: None,
            security: Default::default(),
            userns: None,
            counters: Vec::new(),
        }
    }

    fn run(&self, inv: &Invocation) -> (Outcome, String) {
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("inv-{}-t{seq}", std::process::id());
        let outcome = self
            .sandbox
            .run_in_group(inv, &name, &AtomicBool::new(false))
            .expect("invocation");
        let out = std::fs::read_to_string(&inv.stdout).unwrap();
        (outcome, out)
    }

    /// Nothing is left in the scratch base but the two shared, empty directories (the root
    /// mount point and host mode's empty /tmp layer).
    fn scratch_is_empty(&self) -> bool {
        self.sandbox.wait_for_cleanup().expect("teardown");
        std::fs::read_dir(self.dir.path().join("scratch"))
            .unwrap()
            .flatten()
            .all(|e| {
                let name = e.file_name();
                (name == "mnt" || name == "tmpfs" || name == "empty")
                    && std::fs::read_dir(e.path()).unwrap().next().is_none()
            })
    }
}

#[test]
fn runs_a_workload_in_a_fresh_rootfs_and_cleans_up() {
    let Some(f) = Fixture::new() else { return };
    let (o, out) = f.run(&f.invocation(
        "echo hello; hostname; echo $$; ls /proc | grep -c '^[0-9]'; echo x > /written; ls /run; touch /dev/shm/s && echo shm-ok",
    ));
    assert_eq!(o.measured.exit_code, Some(0), "{o:?}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "hello");
    assert_eq!(lines[1], "cell");
    assert_ne!(lines[2], "1", "the workload must not be pid 1");
    assert_eq!(&lines[4..], ["benchbox", "shm-ok"], "{out}");
    assert!(o.measured.wall_s > 0.0);
    assert!(f.scratch_is_empty());
    let (o, out) = f.run(&f.invocation("cat /written 2>&1; true"));
    assert_eq!(o.measured.exit_code, Some(0));
    assert!(out.contains("No such file"), "{out}");
}

/// Nothing of the invocations is left: see [`leftovers`].
fn assert_no_leftovers(f: &Fixture, marker: &str) {
    let left = leftovers(f, marker);
    assert!(left.is_empty(), "{left:?}");
}

/// Processes and mounts of ours still alive on the host: none may outlive an invocation.
fn leftovers(f: &Fixture, marker: &str) -> Vec<String> {
    f.sandbox.wait_for_cleanup().expect("teardown");
    let mut found = Vec::new();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let scratch = f.dir.path().join("scratch").display().to_string();
    found.extend(
        mounts
            .lines()
            .filter(|l| l.contains(&scratch))
            .map(String::from),
    );
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read_to_string(entry.path().join("cmdline"))
            && cmd.contains(marker)
        {
            found.push(format!(
                "process {}: {cmd}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    if !f.scratch_is_empty() {
        found.push("scratch dir not empty".into());
    }
    found
}

#[test]
fn cpuset_pins_the_workload() {
    let Some(f) = Fixture::new() else { return };
    let mut inv = f.invocation("grep Cpus_allowed_list /proc/self/status; nproc");
    inv.limits.cpus = Some("1".into());
    let (o, out) = f.run(&inv);
    assert_eq!(o.measured.exit_code, Some(0));
    assert!(out.contains("Cpus_allowed_list:\t1\n"), "{out}");
    assert_eq!(out.lines().last(), Some("1"));
    assert_eq!(o.applied.cpus.as_deref(), Some("1"));
}

#[test]
fn memory_limit_oom_kills_and_caps_the_peak() {
    let Some(f) = Fixture::new() else { return };
    // Fill a 128 MiB buffer under a 64 MiB limit (dd reads its whole block at once: fast even
    // on the VM lane's emulated CPUs, where a shell reading a pipe takes seconds).
    let mut inv =
        f.invocation("dd if=/dev/zero of=/dev/null bs=128M count=1 2>/dev/null && echo survived");
    let limit = 64u64 << 20;
    inv.limits.memory = Some(limit);
    let (o, out) = f.run(&inv);
    assert!(o.measured.oom_killed, "{o:?} {out}");
    assert!(!out.contains("survived"), "{out}");
    let peak = o.measured.peak_memory_bytes.unwrap();
    assert!(
        peak <= limit + (1 << 20) && peak > limit / 2,
        "peak {peak} vs limit {limit}"
    );
    assert_eq!(o.applied.memory_bytes, Some(limit));
    if f.is_v1() {
        assert_eq!(
            o.applied.memory_swap_bytes,
            Some(limit),
            "swap must be off (memsw = memory)"
        );
    } else {
        assert_eq!(
            o.applied.memory_swap_bytes,
            Some(0),
            "swap must be off (memory.swap.max = 0)"
        );
    }
}

#[test]
fn cpu_quota_half_a_core() {
    let Some(f) = Fixture::new() else { return };
    let _turn = cpu_turn();
    let mut inv = f.invocation("timeout 1 sh -c 'while :; do :; done'; true");
    inv.limits.cpu_quota = Some(0.5);
    let (o, _) = f.run(&inv);
    let cpu = o.measured.cpu_s();
    let ratio = cpu / o.measured.wall_s;
    // The quota caps the loop near 0.5 of a core; the lower bound only says the loop ran (a
    // loaded 2-core host may give it less than its quota).
    assert!(
        (0.25..=0.6).contains(&ratio),
        "cpu {cpu} wall {:?} ratio {ratio}",
        o.measured.wall_s
    );
    assert!(o.nr_throttled > 0);
    assert_eq!(o.applied.cpu_quota_us, Some(50_000));
}

#[test]
fn pids_limit_contains_a_fork_loop() {
    let Some(f) = Fixture::new() else { return };
    // Count the children that could be started, with shell builtins only (no fork left).
    let mut inv = f.invocation(
        "(i=0; while [ $i -lt 200 ]; do sleep 987653 & echo x >> /tmp/started; i=$((i+1)); done) 2>/dev/null; \
         n=0; while read l; do n=$((n+1)); done < /tmp/started; echo $n",
    );
    inv.limits.pids = Some(20);
    inv.timeout = Some(Duration::from_secs(20));
    let (o, out) = f.run(&inv);
    let count: usize = out
        .trim()
        .lines()
        .last()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    assert!(count < 20 && count > 5, "{count} processes: {out} {o:?}");
    assert_eq!(o.applied.pids, Some(20));
    assert_no_leftovers(&f, "987653");
}

#[test]
fn pid_namespace_shows_only_the_container() {
    let Some(f) = Fixture::new() else { return };
    let (_, out) = f.run(&f.invocation("ps -o pid,comm | tail -n +2"));
    let pids: Vec<&str> = out
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert!(pids.len() <= 4, "{out}");
    assert!(pids.contains(&"1"), "{out}");
}

#[test]
fn network_none_has_only_loopback_up() {
    let Some(f) = Fixture::new() else { return };
    let (o, out) = f.run(
        &f.invocation("ls /sys/class/net; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags"),
    );
    assert_eq!(o.measured.exit_code, Some(0), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "lo", "{out}");
    let flags = u32::from_str_radix(lines[2].trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo must be up: {out}");
}

#[test]
fn volumes_persist_rw_and_refuse_writes_ro() {
    let Some(f) = Fixture::new() else { return };
    let data = f.dir.path().join("data");
    let ro = f.dir.path().join("ro");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::write(ro.join("input"), "in").unwrap();
    let mut inv =
        f.invocation("echo kept > /data/file; cat /ro/input; echo; echo no > /ro/x && echo WROTE");
    inv.volumes = vec![
        sandbox::Volume {
            host: data.clone(),
            target: "/data".into(),
            read_only: false,
        },
        sandbox::Volume {
            host: ro.clone(),
            target: "/ro".into(),
            read_only: true,
        },
    ];
    let (_, out) = f.run(&inv);
    assert_eq!(
        std::fs::read_to_string(data.join("file")).unwrap(),
        "kept\n"
    );
    assert!(out.starts_with("in\n"), "{out}");
    assert!(!out.contains("WROTE") && !ro.join("x").exists());
}

#[test]
fn timeout_kills_the_whole_tree() {
    let Some(f) = Fixture::new() else { return };
    let mut inv = f.invocation("sh -c 'sleep 987651' & sleep 300");
    inv.timeout = Some(Duration::from_millis(500));
    let (o, _) = f.run(&inv);
    assert!(o.measured.timed_out);
    assert!(
        o.measured.exit_code.is_none() && o.measured.signal.is_some(),
        "{o:?}"
    );
    assert_no_leftovers(&f, "987651");
}

#[test]
fn background_children_die_with_the_workload() {
    let Some(f) = Fixture::new() else { return };
    let (o, _) = f.run(&f.invocation("sleep 987652 & exit 3"));
    assert_eq!(o.measured.exit_code, Some(3));
    assert!(!o.succeeded());
    assert_no_leftovers(&f, "987652");
}

#[test]
fn signals_and_exit_codes_are_reported() {
    let Some(f) = Fixture::new() else { return };
    let (o, _) = f.run(&f.invocation("kill -TERM $$"));
    assert_eq!((o.measured.exit_code, o.measured.signal), (None, Some(15)));
    let (o, _) = f.run(&f.invocation("exit 42"));
    assert_eq!((o.measured.exit_code, o.measured.signal), (Some(42), None));
}

#[test]
fn cgroup_cpu_accounting_agrees_with_rusage() {
    let Some(f) = Fixture::new() else { return };
    let _turn = cpu_turn();
    // One second of CPU, however fast the machine (the VM lane emulates its CPUs).
    let (o, _) = f.run(&f.invocation("timeout 1 sh -c 'while :; do :; done'"));
    let cgroup = o.measured.cpu_s();
    let rusage = o.measured.rusage.user_s + o.measured.rusage.system_s;
    assert!(cgroup > 0.2, "busy loop too short: {cgroup}");
    let diff = (cgroup - rusage).abs() / rusage;
    assert!(diff < 0.05, "cgroup {cgroup} vs rusage {rusage}");
}

#[test]
fn host_mode_writes_anywhere_and_nothing_reaches_the_host() {
    let Some(f) = Fixture::new() else { return };
    let vol = f.dir.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::write(vol.join("input"), "from-the-host").unwrap();
    let marker = format!("benchbox-probe-{}", std::process::id());
    let mut inv = f.invocation(&format!(
        "echo x > /etc/{marker} && cat /etc/{marker} && echo etc-ok; \
         echo x > /var/tmp/{marker} && echo var-ok; echo t > /tmp/{marker} && echo tmp-ok; \
         cat /bench/input; echo; ls /sys/class/net"
    ));
    inv.root = RootSpec::Host { tmp_lower: None };
    inv.env = vec![("PATH".into(), "/usr/bin:/bin".into())];
    // A volume at a path the host does not have: its mount point is made in the container's
    // throw-away layer.
    inv.volumes = vec![sandbox::Volume {
        host: vol.clone(),
        target: "/bench".into(),
        read_only: true,
    }];
    let (o, out) = f.run(&inv);
    assert_eq!(o.measured.exit_code, Some(0), "{out}");
    for expected in ["etc-ok", "var-ok", "tmp-ok", "from-the-host", "lo"] {
        assert!(out.contains(expected), "{expected} missing in {out}");
    }
    for dir in ["/etc", "/var/tmp", "/tmp"] {
        assert!(!Path::new(dir).join(&marker).exists(), "{dir} was written");
    }
    assert!(
        !Path::new("/bench").exists(),
        "the volume target was created on the host"
    );
    assert!(f.scratch_is_empty());
}

#[test]
fn setup_layer_is_kept_below_later_invocations() {
    let Some(f) = Fixture::new() else { return };
    let layer = f.dir.path().join("setup-layer");
    let mut setup = f.invocation("echo prepared > /prepared; rm /etc/passwd");
    setup.keep_upper = Some(layer.clone());
    let (o, _) = f.run(&setup);
    assert_eq!(o.measured.exit_code, Some(0));
    let mut inv = f.invocation("cat /prepared; test -e /etc/passwd && echo PASSWD");
    inv.root = RootSpec::Overlay {
        lowers: vec![layer.clone(), f.rootfs.clone()],
    };
    let (_, out) = f.run(&inv);
    assert_eq!(out, "prepared\n");
}

#[test]
fn exec_failure_and_bad_workdir_are_errors() {
    let Some(f) = Fixture::new() else { return };
    let mut inv = f.invocation("");
    inv.argv = vec!["no-such-program".into()];
    let err = f
        .sandbox
        .run_in_group(
            &inv,
            &format!("inv-{}-x", std::process::id()),
            &AtomicBool::new(false),
        )
        .unwrap_err();
    assert!(err.to_string().contains("no-such-program"), "{err}");
    let mut inv = f.invocation("true");
    inv.workdir = Some("/does/not/exist".into());
    let err = f
        .sandbox
        .run_in_group(
            &inv,
            &format!("inv-{}-y", std::process::id()),
            &AtomicBool::new(false),
        )
        .unwrap_err();
    assert!(err.to_string().contains("/does/not/exist"), "{err}");
    assert_no_leftovers(&f, "no-marker");
}

/// By default the writable layer is a tmpfs of the container's own (what the workload writes
/// there counts toward its memory); `upper_on_disk` puts it in a directory under the scratch
/// base instead. Either way nothing of it is left afterwards.
#[test]
fn the_writable_layer_lives_in_memory_or_on_disk() {
    let Some(f) = Fixture::new() else { return };
    let scratch = f.dir.path().join("scratch").display().to_string();
    let script =
        "dd if=/dev/zero of=/big bs=1M count=16 2>/dev/null; grep ' / / ' /proc/self/mountinfo";
    let (o, out) = f.run(&f.invocation(script));
    assert_eq!(o.measured.exit_code, Some(0), "{o:?}");
    assert!(
        out.contains(&format!("upperdir={scratch}/tmpfs/upper")),
        "{out}"
    );
    assert!(o.measured.peak_memory_bytes.unwrap() >= 16 << 20, "{o:?}");
    assert_no_leftovers(&f, "no-marker");

    let mut inv = f.invocation(script);
    inv.upper_on_disk = true;
    let (o, out) = f.run(&inv);
    assert_eq!(o.measured.exit_code, Some(0), "{o:?}");
    assert!(out.contains(&format!("upperdir={scratch}/inv-")), "{out}");
    assert_no_leftovers(&f, "no-marker");
}

/// A workload that fills its memory limit with files in its (tmpfs) root and then exits: the
/// group stays full of its pages, and init's last steps must still get its status out.
#[test]
fn a_root_filesystem_full_to_the_memory_limit_still_reports() {
    let Some(f) = Fixture::new() else { return };
    let mut inv = f.invocation(
        "i=0; while dd if=/dev/zero of=/fill$i bs=1M count=4 2>/dev/null; do i=$((i+1)); done; echo ok 1 > $BENCHBOX_METRICS; exit 3",
    );
    inv.limits.memory = Some(32 << 20);
    inv.env
        .push(("BENCHBOX_METRICS".into(), sandbox::METRICS_PATH.into()));
    let (o, _) = f.run(&inv);
    assert!(
        o.measured.exit_code.is_some() || o.measured.signal.is_some(),
        "{o:?}"
    );
    assert!(!o.measured.timed_out, "{o:?}");
    assert!(o.measured.peak_memory_bytes.unwrap() <= 32 << 20, "{o:?}");
    assert_no_leftovers(&f, "no-marker");
}

#[test]
fn the_metrics_file_is_returned() {
    let Some(f) = Fixture::new() else { return };
    let mut inv = f.invocation("echo \"ops 12.5 ops/s\" > $BENCHBOX_METRICS");
    inv.env
        .push(("BENCHBOX_METRICS".into(), sandbox::METRICS_PATH.into()));
    let (o, _) = f.run(&inv);
    assert_eq!(o.metrics_file, "ops 12.5 ops/s\n");
    // More than a pipe holds: passed on (up to 1 MiB), no deadlock.
    let mut inv = f.invocation("yes 'ops 1' | head -c 3000000 > $BENCHBOX_METRICS");
    inv.env
        .push(("BENCHBOX_METRICS".into(), sandbox::METRICS_PATH.into()));
    let (o, _) = f.run(&inv);
    assert_eq!(o.measured.exit_code, Some(0), "{o:?}");
    // Cut at 1 MiB, then at its last whole line.
    assert!(o.metrics_file.len() <= 1 << 20, "{}", o.metrics_file.len());
    assert!(
        o.metrics_file.len() > (1 << 20) - 10,
        "{}",
        o.metrics_file.len()
    );
    assert!(o.metrics_file.ends_with("ops 1\n"));
}

#[test]
fn the_container_sees_its_own_cgroup_limits() {
    let Some(f) = Fixture::new() else { return };
    // v1: one directory per controller; v2: the group's own files at the mount point.
    let script = if f.is_v1() {
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/pids/pids.max; cat /proc/self/cgroup | grep memory; echo 1 > /sys/fs/cgroup/pids/pids.max && echo WRITABLE; true"
    } else {
        "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max /sys/fs/cgroup/pids.max /proc/self/cgroup; echo 1 > /sys/fs/cgroup/pids.max && echo WRITABLE; true"
    };
    let mut inv = f.invocation(script);
    inv.limits.memory = Some(96 << 20);
    inv.limits.cpu_quota = Some(1.5);
    inv.limits.pids = Some(77);
    let (o, out) = f.run(&inv);
    assert_eq!(o.measured.exit_code, Some(0), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let (quota, own_group) = if f.is_v1() {
        ("150000", ":memory:/")
    } else {
        ("150000 100000", "0::/")
    };
    assert_eq!(
        &lines[..3],
        [(96u64 << 20).to_string().as_str(), quota, "77"],
        "{out}"
    );
    assert!(
        lines[3].ends_with(own_group),
        "cgroup namespace root: {out}"
    );
    assert!(!out.contains("WRITABLE"));
}

#[test]
fn the_workload_runs_as_the_configured_user() {
    let Some(f) = Fixture::new() else { return };
    std::fs::write(
        f.rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nbench:x:1000:1000::/tmp:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        f.rootfs.join("etc/group"),
        "root:x:0:\nbench:x:1000:\nperf:x:1500:bench\n",
    )
    .unwrap();
    let mut inv =
        f.invocation("id -u; id -g; id -G; head -c 4 /dev/zero > /dev/null && echo dev-ok");
    inv.user = Some("bench".into());
    let (o, out) = f.run(&inv);
    assert_eq!(o.measured.exit_code, Some(0), "{out}");
    assert_eq!(out, "1000\n1000\n1000 1500\ndev-ok\n");
    let mut inv = f.invocation("true");
    inv.user = Some("nobody".into());
    let err = f
        .sandbox
        .run_in_group(
            &inv,
            &format!("inv-{}-u", std::process::id()),
            &AtomicBool::new(false),
        )
        .unwrap_err();
    assert!(err.to_string().contains("`nobody`"), "{err}");
}

#[test]
fn the_leftover_probe_sees_a_live_marker_process() {
    // Guards the leftover checks above against passing vacuously.
    let Some(f) = Fixture::new() else { return };
    let mut inv = f.invocation("sleep 987659");
    inv.timeout = Some(Duration::from_millis(1500));
    let seen = std::thread::scope(|s| {
        let probe = s.spawn(|| {
            std::thread::sleep(Duration::from_millis(700));
            std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
                std::fs::read_to_string(e.path().join("cmdline"))
                    .is_ok_and(|c| c.contains("987659"))
            })
        });
        let (o, _) = f.run(&inv);
        assert!(o.measured.timed_out);
        probe.join().unwrap()
    });
    assert!(seen, "the marker process was not visible while running");
}

#[test]
fn memory_is_sampled_over_time_from_the_exec() {
    let Some(f) = Fixture::new() else { return };
    // Hold ~32 MiB for a while, then exit: the samples must see it.
    let (o, _) =
        f.run(&f.invocation("x=$(head -c 33554432 /dev/zero | tr '\\0' a); sleep 0.4; echo ${#x}"));
    assert_eq!(o.measured.exit_code, Some(0));
    let t = &o.memory_timeline;
    assert!(t.len() >= 5, "{t:?}");
    assert!(
        t.windows(2).all(|w| w[0].0 < w[1].0),
        "times increase: {t:?}"
    );
    assert!(
        t[0].0 >= 0.0 && t.last().unwrap().0 <= o.measured.wall_s + 0.1,
        "{t:?}"
    );
    let max = t.iter().map(|s| s.1).max().unwrap();
    assert!(
        max > 30 << 20 && max <= o.measured.peak_memory_bytes.unwrap(),
        "max {max} peak {:?}",
        o.measured.peak_memory_bytes
    );
}

// ---------------------------------------------------------------------------------------------
// cgroup v2 on a real kernel: what src/sandbox/cgroup/v2.rs reads, checked against the kernel
// itself (its unit tests have only fake files). They run in the VM lane (tests/vm/lane: Debian
// 12's kernel on a pure cgroup v2 hierarchy, where BENCHBOX_REQUIRE_CGROUP_V2=1 turns a skip
// into a failure); on a cgroup v1 host they skip.
// ---------------------------------------------------------------------------------------------

fn v2_fixture() -> Option<Fixture> {
    let f = Fixture::new()?;
    if f.is_v1() {
        assert!(
            std::env::var_os("BENCHBOX_REQUIRE_CGROUP_V2").is_none(),
            "this host's cgroups are v1, and BENCHBOX_REQUIRE_CGROUP_V2 is set"
        );
        eprintln!("skipping: this host's cgroups are v1 (tests/vm/lane runs this test on v2)");
        return None;
    }
    Some(f)
}

/// A fresh group of benchbox's (its name tells a later sweep whose it is).
fn v2_group(f: &Fixture, limits: Limits) -> Box<dyn sandbox::cgroup::Group> {
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    f.cgroups
        .create(&format!("inv-{}-v2-{seq}", std::process::id()), &limits)
        .expect("a v2 group")
}

/// `script` run by /bin/sh directly in `group` (no container: the host's tools), from its
/// first instruction. Returns its wait status, the CPU seconds of its whole tree (the `wait4`
/// rusage) and its wall time in seconds.
fn run_in_group(group: &dyn sandbox::cgroup::Group, script: &str) -> (i32, f64, f64) {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    let join = std::ffi::CString::new(group.join_files()[0].as_os_str().as_bytes()).unwrap();
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.args(["-c", script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    // SAFETY: only open, write and close (async-signal-safe) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(join.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(fd);
            Ok(())
        });
    }
    let start = std::time::Instant::now();
    // Reaped below with wait4, for its rusage.
    let pid = cmd.spawn().expect("the command starts in the group").id() as i32;
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter for wait4.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to locals; the child is ours and not waited for elsewhere.
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut ru) }, pid);
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let wall = start.elapsed().as_secs_f64();
    (status, tv(ru.ru_utime) + tv(ru.ru_stime), wall)
}

/// `key`'s value in a flat keyed cgroup file ("key value" lines) of `group`.
fn keyed_file(group: &dyn sandbox::cgroup::Group, file: &str, key: &str) -> u64 {
    let text = std::fs::read_to_string(group.dirs()[0].join(file)).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{key}` in {file}: {text}"))
}

/// This kernel's (major, minor) version.
fn kernel_version() -> (u32, u32) {
    let release = nix::sys::utsname::uname().unwrap();
    let release = release.release().to_string_lossy().into_owned();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let mut next = || parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (next(), next())
}

/// True when `dir` is on a block device (io.stat counts block I/O only). The VM lane puts
/// TMPDIR on an ext4 disk; elsewhere a tmpfs /tmp skips the I/O checks (not in the lane).
fn on_a_block_device(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(dir).unwrap().dev();
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let block = Path::new(&format!("/sys/dev/block/{major}:{minor}")).exists();
    if !block {
        assert!(
            std::env::var_os("BENCHBOX_REQUIRE_CGROUP_V2").is_none(),
            "{} is not on a block device: io.stat cannot be checked (the VM lane puts TMPDIR on one)",
            dir.display()
        );
        eprintln!(
            "skipping the io.stat checks: {} is not on a block device",
            dir.display()
        );
    }
    block
}

/// `cpu.stat`: the group's user and system CPU agree with the tree's own rusage, usage_usec is
/// their sum, and a quota shows up as throttling.
#[test]
fn v2_cpu_stat_is_the_groups_cpu_and_its_throttling() {
    let Some(f) = v2_fixture() else { return };
    let _turn = cpu_turn();
    let g = v2_group(
        &f,
        Limits {
            cpu_quota: Some(0.5),
            ..Default::default()
        },
    );
    let (status, rusage_cpu, wall) = run_in_group(&*g, "timeout 1 sh -c 'while :; do :; done'");
    assert!(libc::WIFEXITED(status), "{status}");
    let c = g.counters().unwrap();
    let cpu = (c.cpu_user + c.cpu_system).as_secs_f64();
    assert!(
        cpu > 0.2 && cpu / wall <= 0.6,
        "half a core: {cpu} s of CPU in {wall} s ({c:?})"
    );
    assert!(
        (cpu - rusage_cpu).abs() <= 0.05 * rusage_cpu + 0.005,
        "cgroup {cpu} vs rusage {rusage_cpu}"
    );
    assert!(
        c.cpu_user > c.cpu_system,
        "a shell loop is user time: {c:?}"
    );
    let usage = keyed_file(&*g, "cpu.stat", "usage_usec");
    let parts =
        keyed_file(&*g, "cpu.stat", "user_usec") + keyed_file(&*g, "cpu.stat", "system_usec");
    assert!(
        usage.abs_diff(parts) <= 1000,
        "usage {usage} vs user+system {parts}"
    );
    assert!(c.nr_throttled > 0 && c.throttled > Duration::ZERO, "{c:?}");
    assert_eq!(g.applied().cpu_quota_us, Some(50_000));
    g.remove().unwrap();
}

/// `memory.events`: the OOM kill under `memory.max` is counted (as `oom_kill`), the peak stays
/// under the limit, and swap is off (`memory.swap.max` 0).
#[test]
fn v2_memory_events_count_the_oom_kill() {
    let Some(f) = v2_fixture() else { return };
    let limit = 32u64 << 20;
    let g = v2_group(
        &f,
        Limits {
            memory: Some(limit),
            ..Default::default()
        },
    );
    let (status, _, _) = run_in_group(
        &*g,
        "exec dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null",
    );
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL,
        "dd filling 64 MiB should be OOM-killed: status {status}"
    );
    let c = g.counters().unwrap();
    assert!(c.oom_kills >= 1, "{c:?}");
    assert_eq!(c.oom_kills, keyed_file(&*g, "memory.events", "oom_kill"));
    let peak = c.memory_peak.unwrap();
    assert!(
        peak <= limit && peak > limit / 2,
        "peak {peak}, limit {limit}"
    );
    let applied = g.applied();
    assert_eq!(applied.memory_bytes, Some(limit));
    assert_eq!(applied.memory_swap_bytes, Some(0));
    g.remove().unwrap();
}

/// `memory.peak` and its reset. Linux 6.12 resets the peak for one open file when it is
/// written, and v2.rs keeps that file open from the reset (just before the workload's exec) to
/// the final read. Older kernels (Debian 12's 6.1, the VM lane's) have a read-only memory.peak:
/// the reset does nothing and the peak is the group's since it was made, which is why every
/// invocation gets a fresh group. This checks the kernel it runs on; the 6.12 write-to-reset
/// path is covered only by the fake-file test `the_peak_is_reset_and_read_through_one_open_file`
/// in src/sandbox/cgroup/v2.rs until the lane has a 6.12 kernel.
#[test]
fn v2_memory_peak_and_its_reset_on_this_kernel() {
    let Some(f) = v2_fixture() else { return };
    let g = v2_group(&f, Limits::default());
    let (status, _, _) = run_in_group(
        &*g,
        "dd if=/dev/zero of=/dev/null bs=32M count=1 2>/dev/null",
    );
    assert!(libc::WIFEXITED(status), "{status}");
    let first = g.counters().unwrap().memory_peak.unwrap();
    assert!(first >= 32 << 20, "peak {first}");
    g.reset_peak().unwrap();
    let (status, _, _) = run_in_group(&*g, "true");
    assert!(libc::WIFEXITED(status), "{status}");
    let c = g.counters().unwrap();
    let after = c.memory_peak.unwrap();
    // (cgroupfs opens any file for writing; a file without a write handler refuses the write.)
    let writable = std::fs::OpenOptions::new()
        .write(true)
        .open(g.dirs()[0].join("memory.peak"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"reset\n"))
        .is_ok();
    if kernel_version() >= (6, 12) {
        assert!(writable, "memory.peak takes a write from Linux 6.12");
        assert!(after < 16 << 20, "reset, then `true`: peak {after}");
    } else {
        assert!(!writable, "memory.peak refuses writes before Linux 6.12");
        assert!(
            after >= first,
            "the group's peak since it was made: {after} < {first}"
        );
    }
    assert_eq!(c.oom_kills, 0);
    g.remove().unwrap();
}

/// `io.stat`: direct reads and writes on a block device are counted for the group.
#[test]
fn v2_io_stat_counts_the_groups_block_io() {
    let Some(f) = v2_fixture() else { return };
    if !on_a_block_device(f.dir.path()) {
        return;
    }
    let g = v2_group(&f, Limits::default());
    let file = f.dir.path().join("io-probe");
    let (status, _, _) = run_in_group(
        &*g,
        &format!(
            "dd if=/dev/zero of={0} bs=1M count=8 oflag=direct 2>/dev/null && \
             dd if={0} of=/dev/null bs=1M iflag=direct 2>/dev/null",
            file.display()
        ),
    );
    assert_eq!(status, 0);
    let c = g.counters().unwrap();
    let (read, write) = (c.io_read_bytes.unwrap(), c.io_write_bytes.unwrap());
    assert!((8 << 20..64 << 20).contains(&write), "written {write}");
    assert!((8 << 20..64 << 20).contains(&read), "read {read}");
    g.remove().unwrap();
}

/// The same counters end to end, per invocation: each invocation's peak is its own (a fresh
/// group), and its block I/O is counted from its exec.
#[test]
fn v2_each_invocation_has_its_own_peak_and_io() {
    let Some(f) = v2_fixture() else { return };
    let (big, _) = f.run(&f.invocation("dd if=/dev/zero of=/dev/null bs=48M count=1 2>/dev/null"));
    assert_eq!(big.measured.exit_code, Some(0), "{big:?}");
    assert!(
        big.measured.peak_memory_bytes.unwrap() >= 48 << 20,
        "{big:?}"
    );
    let (small, _) = f.run(&f.invocation("true"));
    assert_eq!(small.measured.exit_code, Some(0), "{small:?}");
    assert!(
        small.measured.peak_memory_bytes.unwrap() < 8 << 20,
        "{small:?}"
    );
    assert!(!big.measured.oom_killed && !small.measured.oom_killed);
    if !on_a_block_device(f.dir.path()) {
        return;
    }
    let data = f.dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut inv = f.invocation(
        "dd if=/dev/zero of=/data/f bs=1M count=8 oflag=direct 2>/dev/null && \
         dd if=/data/f of=/dev/null bs=1M iflag=direct 2>/dev/null",
    );
    inv.volumes = vec![sandbox::Volume {
        host: data,
        target: "/data".into(),
        read_only: false,
    }];
    let (o, _) = f.run(&inv);
    assert_eq!(o.measured.exit_code, Some(0), "{o:?}");
    let (read, write) = (
        o.measured.io_read_bytes.unwrap(),
        o.measured.io_write_bytes.unwrap(),
    );
    assert!((8 << 20..64 << 20).contains(&write), "written {write}");
    assert!((8 << 20..64 << 20).contains(&read), "read {read}");
}

/// The workload is born in its group: on v2 (Linux 5.7+) by clone3(CLONE_INTO_CGROUP) from
/// init, which stays outside it, so the group lists the workload's processes and not init
/// (pid 1). Where the kernel cannot (v1, older kernels), init joins the group and forks the
/// workload there: the group lists pid 1 too.
#[test]
fn the_workload_is_born_in_its_group() {
    let Some(f) = Fixture::new() else { return };
    let procs = if f.is_v1() {
        "/sys/fs/cgroup/memory/cgroup.procs"
    } else {
        "/sys/fs/cgroup/cgroup.procs"
    };
    let (o, out) = f.run(&f.invocation(&format!(
        "echo $$; echo --; cat {procs}; echo --; cat /proc/self/cgroup"
    )));
    assert_eq!(o.measured.exit_code, Some(0), "{out}");
    let sections: Vec<Vec<&str>> = out.split("--\n").map(|s| s.lines().collect()).collect();
    let [shell, pids, cgroups] = &sections[..] else {
        panic!("{out}")
    };
    assert!(
        pids.contains(&shell[0]),
        "the workload is in its group: {out}"
    );
    let born = !f.is_v1() && kernel_version() >= (5, 7);
    assert_eq!(
        pids.contains(&"1"),
        !born,
        "init (pid 1) in the group: {out}"
    );
    // Either way the container's cgroup namespace is rooted at the group.
    let own = if f.is_v1() { ":memory:/" } else { "0::/" };
    assert!(cgroups.iter().any(|l| l.ends_with(own)), "{out}");
}

/// Pressure stall information is a cgroup v2 interface: on v1 the columns are empty, never 0.
#[test]
fn v1_has_no_pressure_columns() {
    let Some(f) = Fixture::new() else { return };
    if !f.is_v1() {
        eprintln!("skipping: this host's cgroups are v2 (see the v2_ pressure test)");
        return;
    }
    let (o, _) = f.run(&f.invocation("dd if=/dev/zero of=/dev/null bs=8M count=1 2>/dev/null"));
    assert_eq!(o.measured.exit_code, Some(0), "{o:?}");
    assert_eq!(
        o.measured.pressure,
        benchbox::measurement::Pressure::default(),
        "{o:?}"
    );
}

/// Pressure stall time on a real v2 kernel: every column is measured for every invocation,
/// and a workload that writes four times its memory limit through the page cache stalls on
/// memory reclaim (`psi_memory_some_us` > 0). The file is on the lane's ext4 disk, so the
/// dirty pages must be written back before they can be reclaimed.
#[test]
fn v2_pressure_stall_time_is_measured_per_invocation() {
    let Some(f) = v2_fixture() else { return };
    let (idle, _) = f.run(&f.invocation("true"));
    assert_eq!(idle.measured.exit_code, Some(0), "{idle:?}");
    let p = idle.measured.pressure;
    for (column, value) in benchbox::measurement::Pressure::COLUMNS
        .iter()
        .zip(p.values())
    {
        assert!(value.is_some(), "{column} is not measured: {p:?}");
    }
    if !on_a_block_device(f.dir.path()) {
        return;
    }
    let data = f.dir.path().join("psi-data");
    std::fs::create_dir(&data).unwrap();
    let mut inv = f.invocation("dd if=/dev/zero of=/data/f bs=1M count=64 conv=fsync 2>/dev/null");
    inv.limits.memory = Some(16 << 20);
    inv.volumes = vec![sandbox::Volume {
        host: data,
        target: "/data".into(),
        read_only: false,
    }];
    let (o, _) = f.run(&inv);
    assert_eq!(o.measured.exit_code, Some(0), "{o:?}");
    assert!(!o.measured.oom_killed, "page cache is reclaimable: {o:?}");
    let p = o.measured.pressure;
    assert!(
        p.psi_memory_some_us.unwrap() > 0,
        "64 MiB through a 16 MiB group stalls on reclaim: {p:?}"
    );
    assert!(
        p.psi_memory_full_us.unwrap() <= p.psi_memory_some_us.unwrap(),
        "full is a part of some: {p:?}"
    );
    assert!(
        p.psi_io_some_us.is_some() && p.psi_cpu_some_us.is_some(),
        "{p:?}"
    );
}
