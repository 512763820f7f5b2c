//! Rootless benchmarks, end to end: the `benchbox` binary run by an ordinary user, uid 65534
//! (`nobody`), which this test process (root) spawns after dropping to it. The project
//! directories are that user's; HOME and XDG_CACHE_HOME point into them.
//!
//! - On any host: a cell with limits is refused before anything runs (exit 3, the hint for this
//!   host's cgroup version), cells without limits run isolated and measured by rusage, a
//!   hostile workload stays inside, and subordinate ids (from a private /etc/subuid) map a
//!   range so a cell can switch user.
//! - On cgroup v2 (the VM lane): the same limit, OOM and peak-memory matrix as root and as uid
//!   65534 placed in a delegated subtree gives the same statuses and limits.

mod common;

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::project::text;
use common::{NOBODY, give_to_nobody};

/// A project owned by `nobody` (see `common::project::Project`): a busybox rootfs (its /tmp writable by
/// anyone), a scratch directory, HOME, and `m.toml`.
struct Project(common::project::Project);

impl std::ops::Deref for Project {
    type Target = common::project::Project;
    fn deref(&self) -> &common::project::Project {
        &self.0
    }
}

impl Project {
    fn new(toml: &str) -> Option<Project> {
        if !common::privileged() {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("benchbox-rootless-")
            .tempdir()
            .unwrap();
        let p = common::project::Project::at(dir, toml, true);
        fs::set_permissions(p.path("rootfs/tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        fs::create_dir(p.path("home")).unwrap();
        give_to_nobody(p.dir());
        Some(Project(p))
    }

    /// `benchbox ARGS` as `nobody`, in the project; `before` runs in the child, as root, just
    /// before it drops to `nobody` (between fork and exec: system calls only).
    fn cmd_with(
        &self,
        args: &[&str],
        before: impl Fn() -> std::io::Result<()> + Send + Sync + 'static,
    ) -> Command {
        let mut c = Command::new(self.binary());
        c.current_dir(self.dir())
            .args(args)
            .env("HOME", self.path("home"))
            .env("XDG_CACHE_HOME", self.path("home/.cache"))
            .env("BENCHBOX_SCRATCH", self.path("scratch"));
        // SAFETY: the closure makes async-signal-safe system calls only.
        unsafe {
            c.pre_exec(move || {
                before()?;
                drop_to_nobody()
            });
        }
        c
    }

    /// A copy of the benchbox binary in the project, which `nobody` can reach whatever the
    /// permissions of the checkout's directories (a CI clone under a private temp dir).
    fn binary(&self) -> PathBuf {
        let copy = self.path("benchbox");
        if !copy.exists() {
            common::copy_executable(Path::new(env!("CARGO_BIN_EXE_benchbox")), &copy);
            fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
        }
        copy
    }

    fn run(&self, file: &str) -> Output {
        self.cmd_with(&["run", file, "--out", "out", "--resamples", "100"], || {
            Ok(())
        })
        .output()
        .unwrap()
    }
}

/// In the child, between fork and exec: no supplementary groups, then gid and uid `nobody`.
fn drop_to_nobody() -> std::io::Result<()> {
    // SAFETY: plain system calls on constants.
    let failed = unsafe {
        libc::setgroups(0, std::ptr::null()) != 0
            || libc::setgid(NOBODY) != 0
            || libc::setuid(NOBODY) != 0
    };
    if failed {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn is_v1() -> bool {
    !Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
        || fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.trim().is_empty())
}

const LIMITED: &str = r#"
name = "limited"
[environment]
rootfs = "./rootfs"
[limits]
memory = "64MiB"
pids = 32
[run]
command = "true"
"#;

/// Without root and without a delegated cgroup, a cell that sets limits is refused before
/// anything runs, with exit 3 and the fix for this host: on cgroup v1 (this development host)
/// the plain statement that limits need root or a delegated v2 subtree.
#[test]
fn a_limited_cell_is_refused_before_anything_runs_with_exit_3_and_the_hint_for_this_host() {
    let Some(p) = Project::new(LIMITED) else {
        return;
    };
    let o = p.run("m.toml");
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let first = "error: this host cannot isolate benchmarks: cell `default` sets limits (memory, pids), and limits need root or a delegated cgroup v2 subtree: ";
    assert!(err.starts_with(first), "{}", text(&o));
    if is_v1() {
        assert_eq!(
            err,
            format!(
                "{first}this host runs cgroup v1, which cannot hand a subtree to a user\n  hint: run benchbox as root (sudo), or on a cgroup v2 host in a subtree delegated to your user; cells without [limits] run rootless here\n"
            ),
            "{}",
            text(&o)
        );
    } else if Path::new("/run/systemd/system").is_dir() {
        let binary = p.binary();
        let binary = binary.display();
        assert!(
            err.contains(&format!(
                "hint: give benchbox a delegated cgroup v2 subtree and run it again: systemd-run --user --scope -p Delegate=yes {binary} run m.toml --out out --resamples 100\n"
            )),
            "{}",
            text(&o)
        );
    } else {
        assert!(
            err.contains("has no delegated cgroup v2 subtree"),
            "{}",
            text(&o)
        );
        assert!(
            err.contains("hint: run benchbox as root (sudo)"),
            "{}",
            text(&o)
        );
    }
    assert!(
        !p.path("out").exists(),
        "a refused run created its directory"
    );
    p.assert_scratch_empty();
}

/// Services need root (one network namespace for containers of different user namespaces):
/// refused before anything runs, exit 3, with the way out.
#[test]
fn a_cell_with_services_is_refused_rootless_with_exit_3() {
    let Some(p) = Project::new(
        r#"
name = "served"
[environment]
rootfs = "./rootfs"
[services.web]
rootfs = "./rootfs"
command = ["httpd", "-f", "-p", "8080"]
ready = { tcp = 8080 }
[run]
command = "wget -q -O - http://web:8080/"
"#,
    ) else {
        return;
    };
    let o = p.run("m.toml");
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cell `default` has services, and services need root")
            && err.contains("hint: run benchbox as root (sudo)"),
        "{}",
        text(&o)
    );
    assert!(
        !p.path("out").exists(),
        "a refused run created its directory"
    );
    p.assert_scratch_empty();
}

const UNLIMITED: &str = r#"
name = "free"
[matrix]
n = [1, 2]
[environment]
rootfs = "./rootfs"
[run]
command = "id -u; cat /proc/self/uid_map; i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; echo n={n}"
warmup = 1
runs = 3
"#;

/// Cells without limits run rootless, isolated, with no cgroup: CPU time and peak memory from
/// the tree's rusage (so the suspect rule, which compares the two, never fires), no limits
/// read back, and every report says so.
#[test]
fn cells_without_limits_run_rootless_and_are_measured_by_rusage() {
    let Some(p) = Project::new(UNLIMITED) else {
        return;
    };
    let o = p.run("m.toml");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("  isolation: rootless, without limits (no delegated cgroup); uid 65534 is root in the containers"),
        "{}",
        text(&o)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("\nisolation: rootless, without limits"),
        "{}",
        text(&o)
    );
    assert!(
        out.contains("\nlimits in force: none: rootless, no cgroup (every cell)\n"),
        "{}",
        text(&o)
    );

    let results = p.results("free");
    let iso = &results["isolation"];
    assert_eq!(iso["mode"], "rootless-no-limits", "{iso}");
    assert_eq!(iso["rootless"], true);
    assert_eq!(iso["uid_map"][0]["inside"], 0);
    assert_eq!(iso["uid_map"][0]["outside"], NOBODY);
    assert!(
        iso["measures"].as_str().unwrap().contains("rusage"),
        "{iso}"
    );
    for cell in results["cells"].as_array().unwrap() {
        assert!(cell["applied_limits"].is_null(), "{cell}");
    }

    let (header, rows) = p.csv("free");
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    assert_eq!(rows.len(), 8);
    for row in &rows {
        assert_eq!(&row[col("status")], "ok", "{row:?}");
        assert_eq!(&row[col("user_s")], &row[col("rusage_user_s")], "{row:?}");
        assert_eq!(
            &row[col("system_s")],
            &row[col("rusage_system_s")],
            "{row:?}"
        );
        assert_eq!(
            &row[col("peak_memory_bytes")],
            &row[col("max_rss_bytes")],
            "{row:?}"
        );
        assert_eq!(&row[col("io_read_bytes")], "", "{row:?}");
        let cpu: f64 = row[col("user_s")].parse::<f64>().unwrap()
            + row[col("system_s")].parse::<f64>().unwrap();
        assert!(cpu > 0.005, "the loop's CPU time is counted: {row:?}");
    }
    for (slug, n) in [("n-1", 1), ("n-2", 2)] {
        let log = p.log("free", slug);
        let lines: Vec<&str> = log.lines().map(str::trim).collect();
        assert_eq!(lines[0], "0", "root inside: {log}");
        let map: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(map, ["0", "65534", "1"], "{log}");
        assert_eq!(
            lines.last().copied(),
            Some(format!("n={n}").as_str()),
            "{log}"
        );
    }
    let summary = fs::read_to_string(p.latest("free").join("summary.md")).unwrap();
    assert!(
        summary.contains("- **isolation**: rootless, without limits (no delegated cgroup); uid 65534 is root in the containers"),
        "{summary}"
    );
    assert!(
        summary.contains("- **limits in force**: none: rootless, no cgroup (every cell)\n"),
        "{summary}"
    );
    let html = fs::read_to_string(p.latest("free").join("report.html")).unwrap();
    assert!(
        html.contains("<dt>Isolation</dt><dd>rootless, without limits"),
        "report.html"
    );
    assert!(
        html.contains("<td>none: rootless, no cgroup</td>"),
        "report.html"
    );
    p.assert_scratch_empty();
}

/// A hostile workload run rootless, on the host's files and on a rootfs: it cannot write the
/// host's files outside its volumes (not even those its user owns), mount, create namespaces,
/// see or signal host processes (not even its own user's), change sysctls or read masked
/// kernel files, and it holds only the default capabilities (relative to its user namespace)
/// under the seccomp filter.
#[test]
fn a_hostile_workload_stays_in_its_rootless_container() {
    let Some(p) = Project::new("") else {
        return;
    };
    // A host file this user owns, outside /tmp (which a container on the host's files replaces
    // with its own), so only the container keeps the workload off it; in a directory of
    // /var/tmp that `nobody` can reach (the checkout may sit under a private directory).
    let host_dir = tempfile::Builder::new()
        .prefix("benchbox-rootless-")
        .tempdir_in("/var/tmp")
        .unwrap();
    fs::set_permissions(host_dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let victim = host_dir.path().join("victim");
    fs::write(&victim, "intact\n").unwrap();
    std::os::unix::fs::chown(&victim, Some(NOBODY), Some(NOBODY)).unwrap();
    // Volumes at the same path inside (it exists in the host's tree, and is made in a rootfs's
    // writable layer).
    for dir in ["ro", "rw"] {
        fs::create_dir(p.path(dir)).unwrap();
        fs::write(p.path(&format!("{dir}/file")), "intact\n").unwrap();
    }
    give_to_nobody(p.dir());
    let etc_marker = format!("/etc/benchbox-rootless-{}", std::process::id());
    // A process of the same user on the host, which the container must neither see nor signal
    // (the container itself runs no `sleep`).
    let mut marker = Command::new("sleep");
    marker.arg("600");
    // SAFETY: async-signal-safe system calls only.
    unsafe { marker.pre_exec(drop_to_nobody) };
    let mut marker = marker.spawn().unwrap();
    // A unix socket of the host, open to every user (so only the container keeps the workload
    // from it), outside /tmp; connected to with the host's python, when it has one.
    let socket = host_dir.path().join("sock");
    let _ = fs::remove_file(&socket);
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    listener.set_nonblocking(true).unwrap();
    fs::set_permissions(&socket, fs::Permissions::from_mode(0o777)).unwrap();
    let python = Path::new("/usr/bin/python3");
    let connect = format!(
        "{} -c 'import socket; s = socket.socket(socket.AF_UNIX); s.connect(\"{}\"); print(\"connected\")'",
        python.display(),
        socket.display()
    );
    if python.exists() {
        // The control: on the host, this user reaches the listener.
        let mut control = Command::new("/bin/sh");
        control.args(["-c", &connect]);
        // SAFETY: async-signal-safe system calls only.
        unsafe { control.pre_exec(drop_to_nobody) };
        let out = control.output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "connected\n",
            "{out:?}"
        );
        drop(listener.accept().unwrap());
    } else {
        eprintln!("the host has no /usr/bin/python3: the unix socket is not tried");
    }
    let script = format!(
        "echo pwned >> {victim}; echo victim=$?; \
         echo pwned >> {ro}/file; echo ro=$?; \
         echo ok >> {rw}/file; echo rw=$?; \
         echo pwned > {etc_marker}; echo etc=$?; \
         mkdir -p /tmp/m; mount -t tmpfs none /tmp/m; echo mount=$?; \
         unshare -U true; echo unshare_user=$?; \
         unshare -m true; echo unshare_mount=$?; \
         echo marker=$(cat /proc/[0-9]*/comm | grep -c '^sleep$'); \
         kill -0 {pid}; echo kill=$?; \
         echo pids=$(ls -d /proc/[0-9]* | wc -l); \
         echo kcore=$(cat /proc/kcore | wc -c); \
         echo 1 > /proc/sys/kernel/sysrq; echo sysctl=$?; \
         ls /root; echo root_home=$?; \
         echo socket=$({connect} 2>&1 | tail -n 1); \
         grep -E '^(CapEff|CapBnd|Seccomp)' /proc/self/status | tr -d '\\t' | tr ':' '='",
        victim = victim.display(),
        ro = p.path("ro").display(),
        rw = p.path("rw").display(),
        pid = marker.id(),
    );
    let volumes = format!(
        "volumes = [\"{ro}:{ro}:ro\", \"{rw}:{rw}\"]",
        ro = p.path("ro").display(),
        rw = p.path("rw").display()
    );
    let mountinfo_before = host_mounts();
    for (name, root) in [("on-host", ""), ("on-rootfs", "rootfs = \"./rootfs\"")] {
        fs::write(
            p.path(&format!("{name}.toml")),
            format!(
                "name = \"{name}\"\n[environment]\n{root}\n{volumes}\n[run]\ncommand = '''{script}'''\nwarmup = 0\nruns = 1\n"
            ),
        )
        .unwrap();
        give_to_nobody(&p.path(&format!("{name}.toml")));
        let o = p.run(&format!("{name}.toml"));
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o));
        let log = p.log(name, "default");
        let r: std::collections::BTreeMap<&str, &str> =
            log.lines().filter_map(|l| l.split_once('=')).collect();
        let shown = format!("{name}: {log}\n{}", text(&o));
        // Writes to the host's files fail (a tree a user namespace may not overlay is shown
        // read-only) or land in the container's own layer (an overlay): either way the host's
        // files stay as they were (checked below), so only the attempts that must fail are.
        for refused in [
            "ro",
            "mount",
            "unshare_user",
            "unshare_mount",
            "kill",
            "sysctl",
        ] {
            assert_ne!(r.get(refused).copied(), Some("0"), "{refused}: {shown}");
            assert!(r.contains_key(refused), "{refused} missing: {shown}");
        }
        assert!(r.contains_key("victim") && r.contains_key("etc"), "{shown}");
        assert_eq!(r["rw"], "0", "the read-write volume works: {shown}");
        assert_eq!(r["marker"], "0", "a host process is visible: {shown}");
        assert_ne!(r["socket"], "connected", "a host socket: {shown}");
        assert!(r["pids"].parse::<u32>().unwrap() < 10, "{shown}");
        assert_eq!(r["kcore"], "0", "{shown}");
        // Root's home, closed to other users on the host, stays closed (where it is closed: the
        // VM lane's /root is an open tmpfs).
        let root_home_closed =
            fs::metadata("/root").is_ok_and(|m| m.permissions().mode() & 0o005 == 0);
        if name == "on-host" && root_home_closed {
            assert_ne!(r["root_home"], "0", "root's home is readable: {shown}");
        }
        // Docker's default set minus MKNOD (see tests/security.rs), in the user namespace.
        assert_eq!(r["CapEff"], "00000000a00425fb", "{shown}");
        assert_eq!(r["CapBnd"], "00000000a00425fb", "{shown}");
        assert_eq!(r["Seccomp"], "2", "{shown}");
    }
    let _ = marker.kill();
    let _ = marker.wait();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "intact\n");
    let _ = fs::remove_file(&victim);
    assert!(
        listener.accept().is_err(),
        "a container connected to the host's socket"
    );
    let _ = fs::remove_file(&socket);
    assert_eq!(fs::read_to_string(p.path("ro/file")).unwrap(), "intact\n");
    assert_eq!(
        fs::read_to_string(p.path("rw/file")).unwrap(),
        "intact\nok\nok\n"
    );
    assert!(!Path::new(&etc_marker).exists());
    assert_eq!(
        host_mounts(),
        mountinfo_before,
        "the host's mount table changed"
    );
    p.assert_scratch_empty();
}

/// The mounts of this (the host's) mount namespace outside the temp directory, where other
/// test processes come and go.
fn host_mounts() -> Vec<String> {
    let tmp = std::env::temp_dir();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| !Path::new(l.split(' ').nth(4).unwrap_or("")).starts_with(&tmp))
        .map(String::from)
        .collect()
}

/// With subordinate ids for the user (`nobody:200000:65536` in an /etc/subuid and /etc/subgid
/// of this test's own: an overlay over /etc in a private mount namespace, so the host's files
/// stay untouched) and the `uidmap` helpers, the containers map the range after root, and a
/// cell can switch to another user, whose files keep their owner.
#[test]
fn subordinate_ids_map_a_range_and_a_cell_can_switch_user() {
    let Some(p) = Project::new(
        r#"
name = "users"
[matrix]
who = ["root", "1000:1000"]
[environment]
rootfs = "./rootfs"
user = "{who}"
[run]
command = "id -u; cat /proc/self/uid_map; touch /tmp/f && stat -c owner=%u:%g /tmp/f"
warmup = 0
runs = 1
"#,
    ) else {
        return;
    };
    let helpers = ["/usr/bin/newuidmap", "/usr/bin/newgidmap"];
    if !helpers.iter().all(|h| Path::new(h).exists()) {
        assert!(
            std::env::var_os("BENCHBOX_REQUIRE_PRIVILEGED").is_none(),
            "newuidmap and newgidmap are missing and BENCHBOX_REQUIRE_PRIVILEGED is set (hint: apt-get install uidmap)"
        );
        eprintln!("skipping: newuidmap and newgidmap are missing (apt-get install uidmap)");
        return;
    }
    // /etc with this test's subuid and subgid on top, in the child's own mount namespace.
    let upper = p.path("etc-upper");
    let work = p.path("etc-work");
    fs::create_dir(&upper).unwrap();
    fs::create_dir(&work).unwrap();
    for file in ["subuid", "subgid"] {
        fs::write(upper.join(file), "nobody:200000:65536\n").unwrap();
    }
    let options = CString::new(format!(
        "lowerdir=/etc,upperdir={},workdir={}",
        upper.display(),
        work.display()
    ))
    .unwrap();
    let o = p
        .cmd_with(
            &["run", "m.toml", "--out", "out", "--resamples", "100"],
            move || {
                // SAFETY: system calls with valid C strings; the new mount namespace is this
                // child's alone.
                let failed = unsafe {
                    libc::unshare(libc::CLONE_NEWNS) != 0
                        || libc::mount(
                            std::ptr::null(),
                            c"/".as_ptr(),
                            std::ptr::null(),
                            libc::MS_REC | libc::MS_PRIVATE,
                            std::ptr::null(),
                        ) != 0
                        || libc::mount(
                            c"overlay".as_ptr(),
                            c"/etc".as_ptr(),
                            c"overlay".as_ptr(),
                            0,
                            options.as_ptr().cast(),
                        ) != 0
                };
                if failed {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            },
        )
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("only your own user is mapped"),
        "{}",
        text(&o)
    );
    let results = p.results("users");
    let map = &results["isolation"]["uid_map"];
    assert_eq!(
        map,
        &serde_json::json!([
            {"inside": 0, "outside": NOBODY, "count": 1},
            {"inside": 1, "outside": 200000, "count": 65536}
        ]),
        "{}",
        text(&o)
    );
    for (slug, uid) in [("who-root", "0"), ("who-1000-1000", "1000")] {
        let log = p.log("users", slug);
        let lines: Vec<&str> = log.lines().map(str::trim).collect();
        assert_eq!(lines[0], uid, "{slug}: {log}");
        let map: Vec<Vec<&str>> = lines[1..3]
            .iter()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            map,
            [["0", "65534", "1"], ["1", "200000", "65536"]],
            "{log}"
        );
        assert_eq!(lines[3], format!("owner={uid}:{uid}"), "{slug}: {log}");
    }
    // Nothing of the test's /etc reached the host's.
    for file in ["/etc/subuid", "/etc/subgid"] {
        let host = fs::read_to_string(file).unwrap_or_default();
        assert!(!host.contains("nobody:200000"), "{file}: {host}");
    }
    p.assert_scratch_empty();
}

/// The same limit, OOM and peak-memory matrix as root and rootless.
const LIMITS_MATRIX: &str = r#"
name = "limits"
[matrix]
kind = ["fits", "oom"]
[environment]
rootfs = "./rootfs"
[limits]
cpu-quota = 0.5
memory = "64MiB"
pids = 32
[run]
command = "case {kind} in fits) dd if=/dev/zero of=/dev/null bs=32M count=1;; oom) dd if=/dev/zero of=/dev/null bs=128M count=1;; esac"
warmup = 0
runs = 2
allow-failures = true
"#;

/// What one run of [`LIMITS_MATRIX`] (under the output directory `out`) gave: per cell its
/// applied limits, and per row its (kind, status, peak memory).
fn limits_outcome(p: &Project, out: &str) -> (Vec<serde_json::Value>, Vec<(String, String, u64)>) {
    let results = p.results_in(out, "limits");
    let limits = results["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["applied_limits"].clone())
        .collect();
    let (header, rows) = p.csv_in(out, "limits");
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let rows = rows
        .iter()
        .map(|r| {
            (
                r[col("kind")].to_string(),
                r[col("status")].to_string(),
                r[col("peak_memory_bytes")].parse().unwrap_or(0),
            )
        })
        .collect();
    (limits, rows)
}

/// A delegated cgroup v2 subtree for `nobody`, as `systemd-run --user --scope -p Delegate=yes`
/// or a Slurm job hands one out: the directory and its cgroup.procs, cgroup.subtree_control and
/// cgroup.threads owned by the user, the controllers enabled above it. Removed on drop.
struct Delegated {
    base: PathBuf,
    dir: PathBuf,
}

impl Delegated {
    fn new() -> Delegated {
        let root = Path::new("/sys/fs/cgroup");
        let base = root.join(format!("benchbox-rootless-test-{}", std::process::id()));
        let controllers = fs::read_to_string(root.join("cgroup.controllers")).unwrap();
        let enable: String = controllers
            .split_whitespace()
            .filter(|c| ["cpu", "cpuset", "io", "memory", "pids"].contains(c))
            .map(|c| format!("+{c} "))
            .collect();
        fs::write(root.join("cgroup.subtree_control"), enable.trim()).unwrap();
        fs::create_dir(&base).unwrap();
        fs::write(base.join("cgroup.subtree_control"), enable.trim()).unwrap();
        let dir = base.join("deleg");
        fs::create_dir(&dir).unwrap();
        for path in [
            dir.clone(),
            dir.join("cgroup.procs"),
            dir.join("cgroup.subtree_control"),
            dir.join("cgroup.threads"),
        ] {
            std::os::unix::fs::chown(&path, Some(NOBODY), Some(NOBODY)).unwrap();
        }
        Delegated { base, dir }
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        // Groups benchbox left (it removes its own), deepest first, then ours.
        let mut dirs = Vec::new();
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for e in fs::read_dir(dir).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&e.path(), out);
                }
            }
            out.push(dir.to_path_buf());
        }
        walk(&self.base, &mut dirs);
        for d in dirs {
            let _ = fs::remove_dir(d);
        }
    }
}

/// On cgroup v2: the same matrix of limits (cpu quota, memory, pids), an OOM kill and peak
/// memory, run as root and as uid 65534 placed (by root, who alone may move a process there)
/// in a delegated subtree, gives the same statuses and the same limits read back from the
/// kernel; the rootless run records its mode as `rootless-delegated`.
///
/// Needs delegation detection in `cgroup::detect_host` (a non-root user in a subtree it owns
/// gets a hierarchy there, moving itself into a leaf first: the "no internal processes" rule):
/// branch i11-cgroup. Without it benchbox runs this user without limits and refuses the
/// matrix (exit 3), and this test fails saying so.
#[test]
fn limits_oom_and_peak_memory_are_the_same_rootless_in_a_delegated_subtree_as_under_root() {
    if is_v1() {
        assert!(
            std::env::var_os("BENCHBOX_REQUIRE_CGROUP_V2").is_none(),
            "this host's cgroups are v1, and BENCHBOX_REQUIRE_CGROUP_V2 is set"
        );
        eprintln!("skipping: this host's cgroups are v1 (tests/vm/lane runs this test on v2)");
        return;
    }
    let Some(p) = Project::new(LIMITS_MATRIX) else {
        return;
    };
    // As root.
    let o = common::benchbox()
        .current_dir(p.dir())
        .args(["run", "m.toml", "--out", "root-out", "--resamples", "100"])
        .env("BENCHBOX_SCRATCH", p.path("scratch"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "as root: {}", text(&o));
    let as_root = limits_outcome(&p, "root-out");
    assert_eq!(
        p.results_in("root-out", "limits")["isolation"]["mode"],
        "root"
    );

    // As nobody, moved into the delegated subtree by root before it drops its privileges.
    let delegated = Delegated::new();
    let procs = CString::new(
        delegated
            .dir
            .join("cgroup.procs")
            .as_os_str()
            .as_encoded_bytes(),
    )
    .unwrap();
    let o = p
        .cmd_with(
            &["run", "m.toml", "--out", "out", "--resamples", "100"],
            move || {
                // SAFETY: open/write/close of a path we own; "0" moves the writing process.
                let moved = unsafe {
                    let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                    let ok = fd >= 0 && libc::write(fd, c"0".as_ptr().cast(), 1) == 1;
                    if fd >= 0 {
                        libc::close(fd);
                    }
                    ok
                };
                if !moved {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            },
        )
        .output()
        .unwrap();
    assert_ne!(
        o.status.code(),
        Some(3),
        "benchbox did not use the delegated subtree `{}` (delegation detection is i11-cgroup's): {}",
        delegated.dir.display(),
        text(&o)
    );
    assert_eq!(o.status.code(), Some(0), "rootless: {}", text(&o));
    let rootless = limits_outcome(&p, "out");
    let results = p.results("limits");
    assert_eq!(
        results["isolation"]["mode"],
        "rootless-delegated",
        "{}",
        text(&o)
    );
    assert_eq!(results["isolation"]["rootless"], true);

    for (who, (limits, rows)) in [("root", &as_root), ("rootless", &rootless)] {
        for applied in limits {
            assert_eq!(applied["memory_bytes"], 64 << 20, "{who}: {applied}");
            assert_eq!(applied["memory_swap_bytes"], 0, "{who}: {applied}");
            assert_eq!(applied["pids"], 32, "{who}: {applied}");
            assert_eq!(applied["cpu_quota_us"], 50000, "{who}: {applied}");
        }
        assert_eq!(rows.len(), 4, "{who}: {rows:?}");
        for (kind, status, peak) in rows {
            match kind.as_str() {
                "fits" => {
                    assert_eq!(status, "ok", "{who}: {rows:?}");
                    assert!(*peak >= 32 << 20 && *peak < 64 << 20, "{who}: {rows:?}");
                }
                _ => assert_eq!(status, "oom", "{who}: {rows:?}"),
            }
        }
    }
    assert_eq!(as_root.0, rootless.0, "the same limits read back");
    let statuses = |rows: &[(String, String, u64)]| -> Vec<(String, String)> {
        let mut s: Vec<_> = rows
            .iter()
            .map(|(k, s, _)| (k.clone(), s.clone()))
            .collect();
        s.sort();
        s
    };
    assert_eq!(statuses(&as_root.1), statuses(&rootless.1));
    // Nothing of benchbox's left in the subtree but the leaf it moved itself into.
    let left: Vec<_> = fs::read_dir(&delegated.dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| e.file_name().to_string_lossy().starts_with("inv-"))
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "groups left: {left:?}");
}

/// An image made and run rootless: `benchbox import` stores it in the user's cache
/// (`$XDG_CACHE_HOME/benchbox`), the run unpacks it there as the user (its files the user's,
/// root in the container) and runs it.
#[test]
fn an_image_is_stored_unpacked_and_run_from_the_users_cache() {
    let Some(p) = Project::new(
        r#"
name = "img"
[environment]
image = "localhost/benchbox-rootless:1"
[run]
command = ["/bin/sh", "-c", "id -u; stat -c %u:%g /home/bench/file; cat /home/bench/file"]
warmup = 0
runs = 1
"#,
    ) else {
        return;
    };
    let src = p.path("rootfs");
    fs::create_dir_all(src.join("home/bench")).unwrap();
    fs::write(src.join("home/bench/file"), "from the image\n").unwrap();
    give_to_nobody(p.dir());
    let o = p
        .cmd_with(
            &["import", "rootfs", "--tag", "localhost/benchbox-rootless:1"],
            || Ok(()),
        )
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "import: {}", text(&o));
    let o = p.run("m.toml");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let log = p.log("img", "default");
    assert_eq!(log, "0\n0:0\nfrom the image\n", "{}", text(&o));
    let layers = p.path("home/.cache/benchbox/store-v1/layers/sha256");
    let layer = fs::read_dir(&layers)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let file = fs::metadata(layer.join("home/bench/file")).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&file),
        NOBODY,
        "unpacked by the user"
    );
    p.assert_scratch_empty();
}
