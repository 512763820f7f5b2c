//! Attacks on the sandbox, each one a real hostile workload in a real container: every test
//! asserts that the attack fails inside AND that the host is untouched (its files, sysctls,
//! mounts, the group's cgroup limits).
//!
//! Most attacks are shell one-liners in a busybox root filesystem; the rest use a small static
//! C probe (`tests/security/probe.c`, built here with `gcc -static`) that makes the raw system
//! calls and prints one `name=OK:<result>` or `name=ERR:<ERRNO>` line per attempt.
//!
//! Tests named `hole_*` demonstrate holes found while writing this suite: they FAIL until the
//! sandbox is fixed (see each one's doc comment for the reproduction and a fix):
//!
//! - `hole_image_symlinks_through_dev_unmask_proc_and_make_sysctls_writable`: two symlinks in
//!   an image skip every /proc mask; /proc/sys is writable (host sysctls, core_pattern).
//! - `hole_a_rw_volume_over_the_output_directory_lets_the_workload_write_host_files`: the
//!   stdout spool is opened following a symlink the workload planted.
//! - `hole_sys_ptrace_opt_out_lets_the_workload_use_init_to_bypass_seccomp`: init, which the
//!   workload can ptrace with SYS_PTRACE, has no seccomp filter (the host's keyrings).
//!
//! Holes found earlier and fixed since (c440ad9), kept as regression tests: device nodes of an
//! image or of the host's filesystem (`device_nodes_*`), init's privileges under SYS_PTRACE
//! (`*sys_ptrace*_cannot_use_init_to_reach_the_host`), host paths redirected through a
//! read-write volume (`a_rw_volume_cannot_redirect_*`), raw control characters in benchbox's
//! warnings (`workload_output_reaches_the_terminal_without_escape_sequences`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use benchbox::sandbox::{self, Invocation, Limits, Outcome, RootSpec, Volume, security::Policy};

use common::project::{Project, text as output_text};

// ---------------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------------

struct Fixture {
    /// First, so that it is dropped first: it waits for its teardowns before `dir` goes.
    sandbox: sandbox::Sandbox,
    dir: tempfile::TempDir,
    rootfs: PathBuf,
    cgroups: sandbox::Hierarchy,
}

/// What one invocation gave: its outcome, its stdout and its stderr.
struct Run {
    o: Outcome,
    out: String,
    err: String,
}

impl Run {
    /// The probe's `name=value` lines.
    fn probe(&self) -> BTreeMap<String, String> {
        self.out
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--- outcome: exit {:?} signal {:?} oom {}\n--- stdout\n{}--- stderr\n{}",
            self.o.measured.exit_code,
            self.o.measured.signal,
            self.o.measured.oom_killed,
            self.out,
            self.err
        )
    }
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// CPU-bound tests take turns (2 cores shared with the other tests).
static CPU_HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn cpu_turn() -> std::sync::MutexGuard<'static, ()> {
    CPU_HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

impl Fixture {
    fn new() -> Option<Fixture> {
        if !common::privileged() {
            return None;
        }
        let dir = tempdir();
        let rootfs = common::busybox_rootfs(&dir.path().join("rootfs"));
        fs::create_dir(dir.path().join("scratch")).unwrap();
        let cgroups = sandbox::cgroup::detect_host().expect("cgroups");
        Some(Fixture {
            dir,
            rootfs,
            sandbox: sandbox::Sandbox::new(Some(cgroups.clone())),
            cgroups,
        })
    }

    /// A fixture whose rootfs has the probe at /bin/probe (`None`: no C toolchain, skipped).
    fn with_probe() -> Option<Fixture> {
        let f = Fixture::new()?;
        let probe = probe_binary()?;
        common::copy_executable(&probe, &f.rootfs.join("bin/probe"));
        Some(f)
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
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
            stdout: self.path("out"),
            stderr: self.path("err"),
            max_log: None,
            timeout: Some(Duration::from_secs(60)),
            memory_interval: None,
            scratch_base: self.path("scratch"),
            upper_on_disk: false,
            keep_upper: None,
            security: Policy::default(),
            userns: None,
            counters: Vec::new(),
        }
    }

    /// On the host's filesystem (its own shell and tools), with the probe, when there is one,
    /// at /probe-bin/probe through a read-only volume.
    fn host_invocation(&self, script: &str) -> Invocation {
        let mut inv = self.invocation(script);
        inv.root = RootSpec::Host { tmp_lower: None };
        inv.env = vec![(
            "PATH".into(),
            "/probe-bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        )];
        if self.rootfs.join("bin/probe").exists() {
            let dir = self.path("probe-bin");
            fs::create_dir_all(&dir).unwrap();
            common::copy_executable(&self.rootfs.join("bin/probe"), &dir.join("probe"));
            inv.volumes.push(Volume {
                host: dir,
                target: "/probe-bin".into(),
                read_only: true,
            });
        }
        inv
    }

    fn group_name() -> String {
        let seq = SEQ.fetch_add(1, Ordering::SeqCst);
        format!("inv-{}-sec{seq}", std::process::id())
    }

    fn try_run(&self, inv: &Invocation) -> sandbox::Result<Run> {
        self.try_run_named(inv, &Fixture::group_name())
    }

    fn try_run_named(&self, inv: &Invocation, group: &str) -> sandbox::Result<Run> {
        let o = self
            .sandbox
            .run_in_group(inv, group, &AtomicBool::new(false))?;
        self.sandbox.wait_for_cleanup()?;
        Ok(Run {
            o,
            out: fs::read_to_string(&inv.stdout).unwrap_or_default(),
            err: fs::read_to_string(&inv.stderr).unwrap_or_default(),
        })
    }

    fn run(&self, inv: &Invocation) -> Run {
        self.try_run(inv).expect("invocation")
    }

    /// Run `inv`; once its stdout has a line `ready`, call `during` (from this test's thread,
    /// on the host) while the workload goes on.
    fn run_observed<T: Send>(
        &self,
        inv: &Invocation,
        ready: &str,
        during: impl FnOnce(&str) -> T + Send,
    ) -> (Run, Option<T>) {
        let group = Fixture::group_name();
        std::thread::scope(|s| {
            let watcher = s.spawn(|| {
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(30) {
                    let out = fs::read_to_string(&inv.stdout).unwrap_or_default();
                    if out.lines().any(|l| l == ready) {
                        return Some(during(&group));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                None
            });
            let run = self.try_run_named(inv, &group).expect("invocation");
            (run, watcher.join().unwrap())
        })
    }
}

/// The probe, built once per test process (`None`: no gcc, and skipping is allowed).
fn probe_binary() -> Option<PathBuf> {
    static PROBE: OnceLock<Option<PathBuf>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/security/probe.c");
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
            let tmp = dir.join(format!("security-probe.{}", std::process::id()));
            let built = Command::new("gcc")
                .args(["-static", "-O1", "-Wall", "-Werror", "-o"])
                .arg(&tmp)
                .arg(&src)
                .output();
            let missing = |why: String| {
                assert!(
                    std::env::var_os("BENCHBOX_REQUIRE_PRIVILEGED").is_none(),
                    "the security probe cannot be built ({why}) and BENCHBOX_REQUIRE_PRIVILEGED \
                     is set (hint: apt-get install gcc libc6-dev)"
                );
                eprintln!("skipping: the security probe cannot be built: {why}");
                None
            };
            match built {
                Err(e) => missing(format!("gcc: {e}")),
                Ok(o) if !o.status.success() => {
                    let err = String::from_utf8_lossy(&o.stderr).into_owned();
                    if err.contains("No such file or directory") || err.contains("cannot find -l") {
                        missing(err)
                    } else {
                        panic!("tests/security/probe.c does not compile:\n{err}")
                    }
                }
                Ok(_) => {
                    let probe = dir.join("security-probe");
                    fs::rename(&tmp, &probe).unwrap();
                    Some(probe)
                }
            }
        })
        .clone()
}

// ---------------------------------------------------------------------------------------------
// The host: what must be untouched
// ---------------------------------------------------------------------------------------------

/// This suite's temporary directories, named so that the mount checks can tell them apart.
const TMP_PREFIX: &str = "benchbox-sec-";

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .tempdir()
        .unwrap()
}

/// The mounts of this (the host's) mount namespace. Other programs on the machine (other test
/// suites) mount and unmount in their own temporary directories meanwhile: those are left out,
/// but not this suite's own.
fn host_mounts() -> BTreeSet<String> {
    let tmp = std::env::temp_dir();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| {
            let point = Path::new(l.split(' ').nth(4).unwrap_or(""));
            point == tmp || !point.starts_with(&tmp) || l.contains(TMP_PREFIX)
        })
        .map(String::from)
        .collect()
}

fn assert_host_mounts_unchanged(before: &BTreeSet<String>) {
    let after = host_mounts();
    let added: Vec<_> = after.difference(before).collect();
    let removed: Vec<_> = before.difference(&after).collect();
    assert!(
        added.is_empty() && removed.is_empty(),
        "the host's mount table changed: added {added:#?} removed {removed:#?}"
    );
}

/// A host file that must keep its content (or stay absent).
struct Watched(Vec<(PathBuf, Option<Vec<u8>>)>);

impl Watched {
    fn new(paths: &[&Path]) -> Watched {
        Watched(
            paths
                .iter()
                .map(|p| (p.to_path_buf(), fs::read(p).ok()))
                .collect(),
        )
    }

    fn assert_unchanged(&self) {
        for (path, before) in &self.0 {
            let now = fs::read(path).ok();
            if now.is_some() && before.is_none() {
                let _ = fs::remove_file(path);
            }
            assert!(
                &now == before,
                "host file `{}` changed: {:?} -> {:?}",
                path.display(),
                before
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned()),
                now.as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
            );
        }
    }
}

/// Tests that read a host sysctl before and after take turns with the one that changes it
/// (a hole test): otherwise they would see its change.
static SYSCTLS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn sysctl_turn() -> std::sync::MutexGuard<'static, ()> {
    SYSCTLS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A host sysctl, put back on drop should a test find it changed.
struct Sysctl {
    path: PathBuf,
    before: String,
}

impl Sysctl {
    fn read(name: &str) -> Sysctl {
        let path = Path::new("/proc/sys").join(name);
        let before = fs::read_to_string(&path).unwrap();
        Sysctl { path, before }
    }

    fn now(&self) -> String {
        fs::read_to_string(&self.path).unwrap()
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        if self.now() != self.before {
            let _ = fs::write(&self.path, self.before.trim_end());
        }
    }
}

/// The directory of group `group` for `controller` on the host (v1: one hierarchy per
/// controller; v2: the unified one), where benchbox makes it.
fn host_group_dir(cgroups: &sandbox::Hierarchy, controller: &str, group: &str) -> PathBuf {
    cgroups
        .parent_dir(controller)
        .unwrap_or_else(|| panic!("benchbox makes no {controller} groups here"))
        .join(group)
}

// ---------------------------------------------------------------------------------------------
// Capabilities
// ---------------------------------------------------------------------------------------------

/// Docker's default capabilities (moby's `oci/caps/defaults.go`), by number.
const DOCKER_DEFAULT_CAPS: [(&str, u32); 14] = [
    ("CHOWN", 0),
    ("DAC_OVERRIDE", 1),
    ("FOWNER", 3),
    ("FSETID", 4),
    ("KILL", 5),
    ("SETGID", 6),
    ("SETUID", 7),
    ("SETPCAP", 8),
    ("NET_BIND_SERVICE", 10),
    ("NET_RAW", 13),
    ("SYS_CHROOT", 18),
    ("MKNOD", 27),
    ("AUDIT_WRITE", 29),
    ("SETFCAP", 31),
];
const CAP_SYS_PTRACE: u32 = 19;

/// Docker's defaults minus MKNOD.
fn default_cap_mask() -> u64 {
    DOCKER_DEFAULT_CAPS
        .iter()
        .filter(|(name, _)| *name != "MKNOD")
        .fold(0, |mask, (_, bit)| mask | 1 << bit)
}

/// Every capability benchbox itself may hand out: this kernel's, within this process's own
/// bounding set (a CI sandbox may lack some, e.g. SYS_RESOURCE).
fn full_cap_mask() -> u64 {
    let last: u32 = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let own = fs::read_to_string("/proc/self/status").unwrap();
    ((1u64 << (last + 1)) - 1) & cap_field(&own, "CapBnd")
}

/// `Field:\tvalue` of a /proc/PID/status dump.
fn status_field<'a>(status: &'a str, field: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {status}"))
        .trim()
}

fn cap_field(status: &str, field: &str) -> u64 {
    u64::from_str_radix(status_field(status, field), 16).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Remounting /, writing the host's directories
// ---------------------------------------------------------------------------------------------

fn marker(name: &str) -> String {
    format!("benchbox-sec-{}-{name}", std::process::id())
}

const HOST_DIRS: [&str; 3] = ["/etc", "/root", "/var/tmp"];

/// Remount / read-write, then write the host's /etc, /root and /var/tmp: in a rootfs the
/// writes land in the container's own layer, never in the host's directories nor in the
/// rootfs directory (an overlay lower).
#[test]
fn remount_root_rw_then_write_host_dirs_in_a_rootfs() {
    let Some(f) = Fixture::new() else { return };
    let m = marker("remount");
    let mounts = host_mounts();
    let passwd = f.rootfs.join("etc/passwd");
    let mut watched: Vec<PathBuf> = HOST_DIRS.iter().map(|d| Path::new(d).join(&m)).collect();
    watched.push(passwd.clone());
    watched.extend(HOST_DIRS.iter().map(|d| f.rootfs.join(&d[1..]).join(&m)));
    let watched = Watched::new(&watched.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    let run = f.run(&f.invocation(&format!(
        "mount -o remount,rw /; echo remount=$?; mount -o remount,rw,suid,dev /; echo remount_dev=$?; \
         for d in /etc /root /var/tmp; do mkdir -p $d; echo pwned > $d/{m} && echo wrote=$d; done; \
         echo 'evil:x:0:0::/:/bin/sh' >> /etc/passwd && echo wrote=passwd"
    )));
    let r = run.probe();
    assert_ne!(r["remount"], "0", "{run:?}");
    assert_ne!(r["remount_dev"], "0", "{run:?}");
    assert!(run.err.contains("permission denied"), "{run:?}");
    // The writes themselves succeed: they go to the container's throw-away layer.
    assert_eq!(run.out.matches("wrote=").count(), 4, "{run:?}");
    watched.assert_unchanged();
    assert_host_mounts_unchanged(&mounts);
    let again = f.run(&f.invocation(&format!("cat /etc/{m} 2>&1; grep -c evil /etc/passwd")));
    assert!(again.out.contains("No such file"), "{again:?}");
    assert!(again.out.ends_with("0\n"), "{again:?}");
}

/// The same on the host's own filesystem: the writes succeed inside (each host mount is a
/// throw-away overlay) and vanish with the container.
#[test]
fn remount_root_rw_then_write_host_dirs_in_host_mode() {
    let Some(f) = Fixture::new() else { return };
    let m = marker("host-remount");
    let mounts = host_mounts();
    let targets: Vec<PathBuf> = HOST_DIRS.iter().map(|d| Path::new(d).join(&m)).collect();
    let watched = Watched::new(
        &targets
            .iter()
            .map(PathBuf::as_path)
            .chain([Path::new("/etc/hostname"), Path::new("/etc/passwd")])
            .collect::<Vec<_>>(),
    );
    let run = f.run(&f.host_invocation(&format!(
        "mount -o remount,rw /; echo remount=$?; mount -o remount,rw /etc 2>/dev/null; \
         for d in /etc /root /var/tmp; do echo pwned > $d/{m} && cat $d/{m} >/dev/null && echo wrote=$d; done; \
         echo pwned > /etc/hostname && echo wrote=hostname; \
         echo 'evil:x:0:0::/:/bin/sh' >> /etc/passwd && echo wrote=passwd"
    )));
    assert_ne!(run.probe()["remount"], "0", "{run:?}");
    assert_eq!(run.out.matches("wrote=").count(), 5, "{run:?}");
    watched.assert_unchanged();
    assert_host_mounts_unchanged(&mounts);
    // Gone with the container: the next one on the host sees none of it.
    let again = f.run(&f.host_invocation(&format!(
        "ls /etc/{m} /root/{m} /var/tmp/{m} 2>&1; grep -c evil: /etc/passwd"
    )));
    assert_eq!(again.out.matches("No such file").count(), 3, "{again:?}");
    assert!(again.out.ends_with("0\n"), "{again:?}");
}

// ---------------------------------------------------------------------------------------------
// Mounts and namespaces
// ---------------------------------------------------------------------------------------------

#[test]
fn mount_tmpfs_proc_and_cgroup_are_refused() {
    let Some(f) = Fixture::new() else { return };
    let mounts = host_mounts();
    let run = f.run(&f.invocation(
        "mkdir -p /tmp/a /tmp/b /tmp/c; \
         mount -t tmpfs none /tmp/a; echo tmpfs=$?; \
         mount -t proc proc /tmp/b; echo proc=$?; \
         mount -t cgroup -o memory cgroup /tmp/c; echo cgroup=$?; \
         mount -o bind / /tmp/a; echo bind=$?; \
         umount /proc/kallsyms; echo umount_kallsyms=$?; \
         echo tmp_mounts=$(grep -c ' /tmp/' /proc/self/mountinfo); \
         echo kallsyms=$(wc -c < /proc/kallsyms)",
    ));
    let r = run.probe();
    for attempt in ["tmpfs", "proc", "cgroup", "bind", "umount_kallsyms"] {
        assert_ne!(r[attempt], "0", "{attempt}: {run:?}");
    }
    assert_eq!(r["tmp_mounts"], "0", "a mount appeared: {run:?}");
    assert_eq!(r["kallsyms"], "0", "the mask was removed: {run:?}");
    assert_host_mounts_unchanged(&mounts);
}

#[test]
fn unshare_user_and_mount_namespaces_are_refused() {
    let Some(f) = Fixture::new() else { return };
    let mounts = host_mounts();
    let run = f.run(&f.invocation(
        "unshare -U true; echo user=$?; unshare -m true; echo mnt=$?; \
         unshare -r -m sh -c 'mount -t tmpfs none /tmp && echo MOUNTED'; echo root_map=$?; \
         unshare -n true; echo net=$?; unshare -p -f true; echo pid=$?; unshare -u -i true; echo uts_ipc=$?; \
         readlink /proc/self/ns/user /proc/1/ns/user 2>&1",
    ));
    let r = run.probe();
    for ns in ["user", "mnt", "root_map", "net", "pid", "uts_ipc"] {
        assert_ne!(r[ns], "0", "unshare {ns}: {run:?}");
    }
    assert!(!run.out.contains("MOUNTED"), "{run:?}");
    assert_host_mounts_unchanged(&mounts);
}

#[test]
fn pivot_root_and_chroot_escape_stay_in_the_container() {
    let Some(f) = Fixture::with_probe() else {
        return;
    };
    // A file the host has and the container does not.
    let host_marker = f.path("host-marker");
    fs::write(&host_marker, "host").unwrap();
    let run = f.run(&f.invocation(&format!(
        "mkdir -p /tmp/old; pivot_root / /tmp/old; echo pivot=$?; \
         probe chroot-escape {}",
        host_marker.display()
    )));
    let r = run.probe();
    assert_ne!(r["pivot"], "0", "{run:?}");
    assert!(run.err.contains("Operation not permitted"), "{run:?}");
    // CAP_SYS_CHROOT is Docker's default: the chroot works, the escape leads to the
    // container's root, never the host's.
    assert_eq!(r["chroot_jail"], "OK:0", "{run:?}");
    assert_eq!(r["marker_visible"], "no", "{run:?}");
    assert_eq!(r["container_root"], "yes", "{run:?}");
    // The marker is really there for a process on the host.
    assert!(host_marker.exists());
}

// ---------------------------------------------------------------------------------------------
// Kernel settings
// ---------------------------------------------------------------------------------------------

#[test]
fn sysctl_writes_are_read_only_and_the_host_keeps_its_values() {
    let Some(f) = Fixture::new() else { return };
    let _turn = sysctl_turn();
    let swappiness = Sysctl::read("vm/swappiness");
    let core_pattern = Sysctl::read("kernel/core_pattern");
    let hostname = Sysctl::read("kernel/hostname");
    // Not on every kernel (this CI kernel has no magic SysRq): guarded where it exists.
    let _sysrq = Path::new("/proc/sys/kernel/sysrq")
        .exists()
        .then(|| Sysctl::read("kernel/sysrq"));
    let other = (swappiness.before.trim().parse::<u32>().unwrap() + 7) % 100;
    let run = f.run(&f.invocation(&format!(
        "echo {other} > /proc/sys/vm/swappiness; echo swappiness=$?; \
         echo '|/tmp/evil %p' > /proc/sys/kernel/core_pattern; echo core_pattern=$?; \
         echo pwned > /proc/sys/kernel/hostname; echo hostname=$?; \
         echo 1 > /proc/sys/kernel/sysrq; echo sysrq=$?; \
         echo h > /proc/sysrq-trigger; echo sysrq_trigger=$?; \
         echo never > /sys/kernel/mm/transparent_hugepage/enabled; echo sysfs=$?; \
         cat /proc/sys/vm/swappiness"
    )));
    let r = run.probe();
    for attempt in [
        "swappiness",
        "core_pattern",
        "hostname",
        "sysrq",
        "sysrq_trigger",
        "sysfs",
    ] {
        assert_ne!(r[attempt], "0", "{attempt}: {run:?}");
    }
    assert!(run.err.contains("Read-only file system"), "{run:?}");
    // The container reads the host's value: the write really was refused.
    assert_eq!(run.out.lines().last(), Some(swappiness.before.trim()));
    assert_eq!(swappiness.now(), swappiness.before);
    assert_eq!(core_pattern.now(), core_pattern.before);
    assert_eq!(hostname.now(), hostname.before);
}

// ---------------------------------------------------------------------------------------------
// Cgroup limits and counters
// ---------------------------------------------------------------------------------------------

fn is_v1(f: &Fixture) -> bool {
    f.cgroups.version() == sandbox::cgroup::Version::V1
}

/// For the tests that go through the CLI (no fixture).
fn host_is_v1() -> bool {
    sandbox::cgroup::detect_host().expect("cgroups").version() == sandbox::cgroup::Version::V1
}

/// Raise the memory limit from inside (and turn the OOM killer off), then allocate past it:
/// the writes fail, the workload is OOM-killed, the group's limit on the host is unchanged.
#[test]
fn raising_the_cgroup_memory_limit_from_inside_fails_and_oom_still_kills() {
    let Some(f) = Fixture::new() else { return };
    let limit = 64u64 << 20;
    let (limit_file, raise) = if is_v1(&f) {
        (
            "memory/memory.limit_in_bytes",
            "echo 1073741824 > /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes; echo memsw=$?; \
             echo 1073741824 > /sys/fs/cgroup/memory/memory.limit_in_bytes; echo limit=$?; \
             echo 1 > /sys/fs/cgroup/memory/memory.oom_control; echo oom_control=$?; \
             echo 0 > /sys/fs/cgroup/memory/memory.swappiness; echo swappiness=$?",
        )
    } else {
        (
            "memory.max",
            "echo 1073741824 > /sys/fs/cgroup/memory.swap.max; echo memsw=$?; \
             echo 1073741824 > /sys/fs/cgroup/memory.max; echo limit=$?; \
             echo 0 > /sys/fs/cgroup/memory.oom.group; echo oom_control=$?; \
             echo max > /sys/fs/cgroup/memory.high; echo swappiness=$?",
        )
    };
    let mut inv = f.invocation(&format!(
        "{raise}; cat /sys/fs/cgroup/{limit_file}; echo attempted; sleep 1; \
         dd if=/dev/zero of=/dev/null bs=128M count=1 2>/dev/null && echo survived"
    ));
    inv.limits.memory = Some(limit);
    let host_file = Path::new(limit_file).file_name().unwrap().to_owned();
    let (run, host_limit) = f.run_observed(&inv, "attempted", |group| {
        fs::read_to_string(host_group_dir(&f.cgroups, "memory", group).join(&host_file)).unwrap()
    });
    let r = run.probe();
    for attempt in ["memsw", "limit", "oom_control", "swappiness"] {
        assert_ne!(r[attempt], "0", "{attempt}: {run:?}");
    }
    assert!(run.err.contains("Read-only file system"), "{run:?}");
    assert!(run.o.measured.oom_killed, "{run:?}");
    assert!(!run.out.contains("survived"), "{run:?}");
    assert!(run.out.contains(&format!("\n{limit}\n")), "{run:?}");
    assert_eq!(
        host_limit
            .expect("the workload never got to its allocation")
            .trim(),
        limit.to_string()
    );
    assert_eq!(run.o.applied.memory_bytes, Some(limit));
}

#[test]
fn raising_the_cgroup_pids_limit_from_inside_fails() {
    let Some(f) = Fixture::new() else { return };
    let pids_file = if is_v1(&f) {
        "pids/pids.max"
    } else {
        "pids.max"
    };
    let mut inv = f.invocation(&format!(
        "echo max > /sys/fs/cgroup/{pids_file}; echo pids=$?; echo 100000 > /sys/fs/cgroup/{pids_file}; echo pids_num=$?; \
         echo attempted; sleep 1; \
         (i=0; while [ $i -lt 60 ]; do sleep 987611 & echo x >> /tmp/started; i=$((i+1)); done) 2>/dev/null; \
         n=0; while read l; do n=$((n+1)); done < /tmp/started; echo started=$n"
    ));
    inv.limits.pids = Some(20);
    inv.timeout = Some(Duration::from_secs(30));
    let (run, host_max) = f.run_observed(&inv, "attempted", |group| {
        fs::read_to_string(host_group_dir(&f.cgroups, "pids", group).join("pids.max")).unwrap()
    });
    let r = run.probe();
    assert_ne!(r["pids"], "0", "{run:?}");
    assert_ne!(r["pids_num"], "0", "{run:?}");
    let started: usize = r["started"].parse().unwrap();
    assert!((5..20).contains(&started), "{started} processes: {run:?}");
    assert_eq!(host_max.expect("never attempted").trim(), "20");
}

#[test]
fn lifting_the_cgroup_cpu_quota_from_inside_fails() {
    let Some(f) = Fixture::new() else { return };
    let _turn = cpu_turn();
    let (quota_file, lift) = if is_v1(&f) {
        (
            "cpu.cfs_quota_us",
            "echo -1 > /sys/fs/cgroup/cpu/cpu.cfs_quota_us; echo quota=$?; \
             echo 1000000 > /sys/fs/cgroup/cpu/cpu.cfs_period_us; echo period=$?; \
             echo 0-1 > /sys/fs/cgroup/cpuset/cpuset.cpus; echo cpus=$?",
        )
    } else {
        (
            "cpu.max",
            "echo max > /sys/fs/cgroup/cpu.max; echo quota=$?; \
             echo 10000 > /sys/fs/cgroup/cpu.weight; echo period=$?; \
             echo 0-1 > /sys/fs/cgroup/cpuset.cpus; echo cpus=$?",
        )
    };
    let mut inv = f.invocation(&format!(
        "{lift}; echo attempted; timeout 1 sh -c 'while :; do :; done'; true"
    ));
    inv.limits.cpu_quota = Some(0.5);
    let (run, host_quota) = f.run_observed(&inv, "attempted", |group| {
        fs::read_to_string(host_group_dir(&f.cgroups, "cpu", group).join(quota_file)).unwrap()
    });
    let r = run.probe();
    for attempt in ["quota", "period", "cpus"] {
        assert_ne!(r[attempt], "0", "{attempt}: {run:?}");
    }
    let cpu = run.o.measured.cpu_s();
    let ratio = cpu / run.o.measured.wall_s;
    assert!(
        ratio <= 0.6,
        "the quota did not hold: cpu {cpu} ratio {ratio}"
    );
    assert!(run.o.nr_throttled > 0, "{run:?}");
    let host_quota = host_quota.expect("never attempted");
    assert!(
        host_quota.starts_with("50000"),
        "host quota file: {host_quota}"
    );
    assert_eq!(run.o.applied.cpu_quota_us, Some(50_000));
}

/// Burn CPU, then zero the accounting: impossible, and the CPU reported is the real work
/// (the `wait` rusage of the workload's tree agrees).
#[test]
fn zeroing_cpu_and_memory_counters_from_inside_fails() {
    let Some(f) = Fixture::new() else { return };
    let _turn = cpu_turn();
    let zero = if is_v1(&f) {
        "echo 0 > /sys/fs/cgroup/cpuacct/cpuacct.usage; echo cpuacct=$?; \
         echo 0 > /sys/fs/cgroup/memory/memory.max_usage_in_bytes; echo max_usage=$?; \
         echo 0 > /sys/fs/cgroup/memory/memory.force_empty; echo force_empty=$?"
    } else {
        "echo 0 > /sys/fs/cgroup/cpu.stat; echo cpuacct=$?; \
         echo 0 > /sys/fs/cgroup/memory.peak; echo max_usage=$?; \
         echo 0 > /sys/fs/cgroup/memory.reclaim; echo force_empty=$?"
    };
    let run = f.run(&f.invocation(&format!(
        "x=$(head -c 16777216 /dev/zero | tr '\\0' a); \
         timeout 1 sh -c 'while :; do :; done'; {zero}"
    )));
    let r = run.probe();
    for attempt in ["cpuacct", "max_usage", "force_empty"] {
        assert_ne!(r[attempt], "0", "{attempt}: {run:?}");
    }
    let cgroup = run.o.measured.cpu_s();
    let rusage = run.o.measured.rusage.user_s + run.o.measured.rusage.system_s;
    assert!(
        cgroup > 0.2,
        "busy loop too short or counter reset: {cgroup}"
    );
    let diff = (cgroup - rusage).abs() / rusage;
    assert!(diff < 0.05, "cgroup {cgroup} vs rusage {rusage}");
    assert!(
        run.o.measured.peak_memory_bytes.unwrap() > 16 << 20,
        "the peak was reset: {:?}",
        run.o.measured.peak_memory_bytes
    );
}

/// cgroup v1's release_agent escape (CVE-2022-0492): the container's view holds its own
/// group only (no release_agent), read-only. v2 has no release_agent; its view is as read-only:
/// no child group, no moving processes, no controllers for a subtree.
#[test]
fn cgroup_release_agent_escape_is_impossible() {
    let Some(f) = Fixture::new() else { return };
    let (child, escape) = if is_v1(&f) {
        (
            "/sys/fs/cgroup/memory/child",
            "echo $$ > /sys/fs/cgroup/memory/../tasks",
        )
    } else {
        (
            "/sys/fs/cgroup/child",
            "echo +memory > /sys/fs/cgroup/cgroup.subtree_control; echo subtree=$?; \
             echo $$ > /sys/fs/cgroup/cgroup.procs",
        )
    };
    let run = f.run(&f.invocation(&format!(
        "ls /sys/fs/cgroup/*/release_agent /sys/fs/cgroup/release_agent 2>/dev/null | wc -l; \
         for c in /sys/fs/cgroup/*/; do echo 1 > ${{c}}notify_on_release 2>/dev/null && echo WROTE=$c; done; \
         mkdir {child}; echo mkdir=$?; \
         {escape}; echo escape=$?"
    )));
    let r = run.probe();
    assert_eq!(run.out.lines().next(), Some("0"), "{run:?}");
    assert!(!run.out.contains("WROTE"), "{run:?}");
    assert_ne!(r["mkdir"], "0", "{run:?}");
    assert_ne!(r["escape"], "0", "{run:?}");
    if !is_v1(&f) {
        assert_ne!(r["subtree"], "0", "{run:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// File handles: "shocker"
// ---------------------------------------------------------------------------------------------

/// The directory at the root of the mount holding `path` (walk up while the device stays).
fn mount_root_of(path: &Path) -> PathBuf {
    let dev = fs::metadata(path).unwrap().dev();
    let mut root = path.to_path_buf();
    while let Some(parent) = root.parent() {
        if fs::metadata(parent).unwrap().dev() != dev {
            break;
        }
        root = parent.to_path_buf();
    }
    root
}

/// `bytes:type:hex` of `path`'s file handle, taken on the host by the probe.
fn host_handle(probe: &Path, path: &Path) -> String {
    let o = Command::new(probe)
        .arg("handle")
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    text.trim()
        .strip_prefix("handle=")
        .unwrap_or_else(|| panic!("no handle for {}: {text}", path.display()))
        .to_string()
}

/// The classic "shocker" (open_by_handle_at of the host filesystem's root through a volume's
/// file, or the stdout descriptor) fails with EPERM, by the seccomp filter and, with the filter
/// off, by the missing CAP_DAC_READ_SEARCH. The same probe run on the host, and in a container
/// granted DAC_READ_SEARCH, does reach the host's root: the attack is real.
#[test]
fn open_by_handle_at_shocker_cannot_reach_the_host_root() {
    let Some(f) = Fixture::with_probe() else {
        return;
    };
    let vol = f.path("vol");
    fs::create_dir(&vol).unwrap();
    fs::write(vol.join("file"), "in a volume").unwrap();
    let root = mount_root_of(&vol);
    let probe = f.rootfs.join("bin/probe");
    let handle = host_handle(&probe, &root);
    // The positive control: on the host the probe opens the root (and lists it).
    let on_host = Command::new(&probe)
        .args([
            "shocker".as_ref(),
            vol.join("file").as_os_str(),
            handle.as_ref(),
        ])
        .output()
        .unwrap();
    let on_host = String::from_utf8_lossy(&on_host.stdout).into_owned();
    assert!(
        on_host.contains("open_by_handle_exact=OK"),
        "the probe does not work: {on_host}"
    );
    let mounts = host_mounts();
    let created = f.path("created-by-shocker");
    let rel = created.strip_prefix(&root).unwrap().display().to_string();
    let mut inv = f.invocation(&format!("probe shocker /vol/file {handle} {rel}"));
    inv.volumes = vec![Volume {
        host: vol.clone(),
        target: "/vol".into(),
        read_only: false,
    }];
    for (label, security) in [
        ("default", Policy::default()),
        (
            "seccomp unconfined",
            Policy {
                seccomp_unconfined: true,
                ..Policy::default()
            },
        ),
    ] {
        inv.security = security;
        let run = f.run(&inv);
        let r = run.probe();
        assert!(r["open_volume_file"].starts_with("OK"), "{label}: {run:?}");
        for call in [
            "open_by_handle_classic",
            "open_by_handle_classic_stdout",
            "open_by_handle_exact",
        ] {
            assert_eq!(r[call], "ERR:EPERM", "{label}: {call}: {run:?}");
        }
        assert!(!run.out.contains("_entry="), "{label}: {run:?}");
        assert!(!created.exists(), "{label}: created on the host: {run:?}");
        if label == "default" {
            assert_eq!(r["name_to_handle_volume"], "ERR:EPERM", "{run:?}");
        }
    }
    // Granted DAC_READ_SEARCH (an opt-out), the same workload does reach the host's root:
    // that capability must stay an explicit, documented decision.
    inv.security = Policy {
        capabilities: vec!["DAC_READ_SEARCH".into()],
        ..Policy::default()
    };
    let run = f.run(&inv);
    let r = run.probe();
    assert!(r["open_by_handle_exact"].starts_with("OK"), "{run:?}");
    assert!(
        r["create_on_host"].starts_with("OK") && created.exists(),
        "{run:?}"
    );
    assert_host_mounts_unchanged(&mounts);
}

// ---------------------------------------------------------------------------------------------
// Volume targets
// ---------------------------------------------------------------------------------------------

/// A volume whose target goes through an absolute symlink of the image (`/evil_link -> /etc`)
/// or a relative one climbing past the root: the mount lands inside the container, nothing is
/// created on the host nor in the rootfs directory.
#[test]
fn volume_targets_through_image_symlinks_stay_inside() {
    let Some(f) = Fixture::new() else { return };
    let m = marker("link");
    symlink("/etc", f.rootfs.join("evil_link")).unwrap();
    symlink("../../../../../../../../etc", f.rootfs.join("evil_rel")).unwrap();
    let data = f.path("data");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("input"), "volume-data").unwrap();
    fs::write(f.path("single"), "single-file").unwrap();
    let watched = [
        Path::new("/etc").join(&m),
        Path::new("/etc").join(format!("{m}-rel")),
        Path::new("/etc").join(format!("{m}-file")),
        f.rootfs.join("etc").join(&m),
    ];
    let mut dirs_before = BTreeSet::new();
    for dir in ["/etc", "/"] {
        dirs_before.extend(fs::read_dir(dir).unwrap().flatten().map(|e| e.path()));
    }
    let mounts = host_mounts();
    let mut inv = f.invocation(&format!(
        "cat /etc/{m}/input; echo; cat /etc/{m}-rel/input; echo; cat /etc/{m}-file; echo; \
         grep -c {m} /proc/self/mountinfo"
    ));
    inv.volumes = vec![
        Volume {
            host: data.clone(),
            target: Path::new("/evil_link").join(&m),
            read_only: true,
        },
        Volume {
            host: data.clone(),
            target: Path::new("/evil_rel").join(format!("{m}-rel")),
            read_only: true,
        },
        Volume {
            host: f.path("single"),
            target: Path::new("/evil_link").join(format!("{m}-file")),
            read_only: true,
        },
    ];
    let run = f.run(&inv);
    assert_eq!(run.o.measured.exit_code, Some(0), "{run:?}");
    assert_eq!(
        run.out, "volume-data\nvolume-data\nsingle-file\n3\n",
        "{run:?}"
    );
    for path in &watched {
        assert!(!path.exists(), "`{}` was created", path.display());
    }
    let mut dirs_after = BTreeSet::new();
    for dir in ["/etc", "/"] {
        dirs_after.extend(fs::read_dir(dir).unwrap().flatten().map(|e| e.path()));
    }
    let new: Vec<_> = dirs_after.difference(&dirs_before).collect();
    assert!(
        new.iter().all(|p| !p.to_string_lossy().contains(&m)),
        "{new:?}"
    );
    assert_host_mounts_unchanged(&mounts);
}

/// A target with `..` (the library takes it as given; the matrix parser normalizes it): it
/// resolves inside the container's root, as `/etc/...` there.
#[test]
fn volume_target_with_dotdot_stays_inside() {
    let Some(f) = Fixture::new() else { return };
    let m = marker("dotdot");
    let data = f.path("data");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("input"), "volume-data").unwrap();
    let mounts = host_mounts();
    for root in ["rootfs", "host"] {
        let script = format!("cat /etc/{m}/input");
        let mut inv = if root == "host" {
            f.host_invocation(&script)
        } else {
            f.invocation(&script)
        };
        inv.volumes.push(Volume {
            host: data.clone(),
            target: PathBuf::from(format!("/../../../etc/{m}")),
            read_only: false,
        });
        match f.try_run(&inv) {
            Ok(run) => assert_eq!(run.out, "volume-data", "{root}: {run:?}"),
            // Refusing the target outright is fine too, with a message that names it.
            Err(e) => assert!(e.to_string().contains(&m), "{root}: {e}"),
        }
        assert!(
            !Path::new("/etc").join(&m).exists(),
            "{root}: host /etc written"
        );
        assert!(
            !f.rootfs.join("etc").join(&m).exists(),
            "{root}: rootfs written"
        );
    }
    assert_host_mounts_unchanged(&mounts);
}

/// Host mode with a volume at a path the host lacks: the mount point is made in the
/// container's throw-away layer; the host never gets the directory.
#[test]
fn host_mode_volume_at_a_missing_path_leaves_no_trace() {
    let Some(f) = Fixture::new() else { return };
    let target = PathBuf::from(format!("/bench-{}", std::process::id()));
    let nested = PathBuf::from(format!("/var/bench-{}/deep/er", std::process::id()));
    assert!(!target.exists() && !nested.parent().unwrap().exists());
    let data = f.path("data");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("input"), "from-the-host").unwrap();
    let mounts = host_mounts();
    let mut inv = f.host_invocation(&format!(
        "cat {t}/input; echo; cat {n}/input; echo; echo new > {t}/output",
        t = target.display(),
        n = nested.display()
    ));
    inv.volumes = vec![
        Volume {
            host: data.clone(),
            target: target.clone(),
            read_only: false,
        },
        Volume {
            host: data.clone(),
            target: nested.clone(),
            read_only: true,
        },
    ];
    let run = f.run(&inv);
    assert_eq!(run.o.measured.exit_code, Some(0), "{run:?}");
    assert_eq!(run.out, "from-the-host\nfrom-the-host\n", "{run:?}");
    assert_eq!(fs::read_to_string(data.join("output")).unwrap(), "new\n");
    assert!(
        !target.exists(),
        "the volume target was created on the host"
    );
    assert!(
        !Path::new(&format!("/var/bench-{}", std::process::id())).exists(),
        "the nested target was created on the host"
    );
    assert_host_mounts_unchanged(&mounts);
}

// ---------------------------------------------------------------------------------------------
// Descriptors and output
// ---------------------------------------------------------------------------------------------

/// The workload's stdout and stderr are pipes (benchbox drains them), stdin is /dev/null, and
/// it inherits no other descriptor (`ls` itself holds one more: the directory it reads). Seen
/// here: the workload also gets the container's /dev/null a second time, as fd 3 (the
/// descriptor `workload()` opens for stdin is never closed): untidy, harmless, allowed.
#[test]
fn stdout_and_stderr_are_pipes_and_nothing_else_is_inherited() {
    let Some(f) = Fixture::new() else { return };
    let mut inv = f.invocation("");
    inv.argv = vec!["/bin/ls".into(), "-l".into(), "/proc/self/fd/".into()];
    let run = f.run(&inv);
    let fds: BTreeMap<&str, &str> = run
        .out
        .lines()
        .filter_map(|l| l.split_once(" -> "))
        .map(|(left, target)| (left.rsplit(' ').next().unwrap(), target))
        .collect();
    assert_eq!(fds.get("0"), Some(&"/dev/null"), "{run:?}");
    assert!(fds["1"].starts_with("pipe:["), "{run:?}");
    assert!(fds["2"].starts_with("pipe:["), "{run:?}");
    let others: Vec<_> = fds
        .iter()
        .filter(|(fd, target)| {
            !["0", "1", "2"].contains(fd) && !target.ends_with("/fd") && **target != "/dev/null"
        })
        .collect();
    assert!(
        others.is_empty(),
        "descriptors leaked into the workload: {others:?} {run:?}"
    );
}

/// The same end to end through the CLI: the log is written by benchbox from a pipe.
#[test]
fn cli_stdout_is_a_pipe_and_a_hostile_cell_leaves_the_host_untouched() {
    if !common::privileged() {
        return;
    }
    let m = marker("cli");
    let _turn = sysctl_turn();
    let swappiness = Sysctl::read("vm/swappiness");
    let mounts = host_mounts();
    let memory_limit = if host_is_v1() {
        "memory/memory.limit_in_bytes"
    } else {
        "memory.max"
    };
    let (_dir, o, run_dir) = cli_run(&format!(
        "readlink /proc/self/fd/1; mount -o remount,rw / || echo remount-refused; \
         echo 1 > /proc/sys/vm/swappiness || echo sysctl-refused; \
         echo 1073741824 > /sys/fs/cgroup/{memory_limit} || echo cgroup-refused; \
         unshare -U true || echo userns-refused; echo x > /etc/{m}"
    ));
    assert!(o.status.success(), "{}", output_text(&o));
    let log = cli_log(&run_dir);
    assert!(log.starts_with("pipe:["), "{log}");
    for refused in ["remount", "sysctl", "cgroup", "userns"] {
        assert!(
            log.contains(&format!("{refused}-refused")),
            "{refused}: {log}"
        );
    }
    assert!(!Path::new("/etc").join(&m).exists());
    assert_eq!(swappiness.now(), swappiness.before);
    assert_host_mounts_unchanged(&mounts);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A CLI project: a busybox rootfs and `m.toml` with one cell, run `runs` times. `prepare`
/// gets the project directory (to add files) and returns the cell's command (put in a TOML
/// literal string); `environment` and `security` are extra lines of those tables. Returns the
/// project directory, benchbox's output and the run's directory.
fn cli_run_with(
    environment: &str,
    security: &str,
    runs: u32,
    prepare: impl FnOnce(&Path) -> String,
) -> (Project, std::process::Output, PathBuf) {
    let p = Project::at(tempdir(), "", true);
    let command = prepare(p.dir());
    fs::write(
        p.path("m.toml"),
        format!(
            "name = \"hostile\"\n[environment]\nrootfs = \"./rootfs\"\n{environment}\n[limits]\n\
             memory = \"64MiB\"\npids = 32\n[security]\n{security}\n[run]\n\
             command = '''{command}'''\nwarmup = 0\nruns = {runs}\n"
        ),
    )
    .unwrap();
    let o = p
        .cmd(&["run", "m.toml", "--out", "out", "--resamples", "100"])
        .output()
        .unwrap();
    let latest = p.path("out/hostile/latest");
    let run_dir = fs::canonicalize(&latest).unwrap_or(latest);
    (p, o, run_dir)
}

fn cli_run(command: &str) -> (Project, std::process::Output, PathBuf) {
    cli_run_with("", "", 1, |_| command.to_string())
}

/// The log of the run's one measured invocation.
fn cli_log(run_dir: &Path) -> String {
    walk(&run_dir.join("logs"))
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == "measure-0.out"))
        .map(|p| fs::read_to_string(p).unwrap())
        .unwrap_or_default()
}

/// What a hostile workload writes to its metrics file and stdout: HTML, and terminal control
/// sequences (set the window title, clear the screen, write the clipboard with OSC 52).
const HOSTILE_OUTPUT: &str = r"printf 'ok 1\n\033]0;PWNED-TITLE\007\n<script>alert(1)</script> 2 <b>unit</b>\n' > $BENCHBOX_METRICS; printf '\033[2J\033]52;c;cHduZWQ=\007<img src=x onerror=alert(2)>\n'";

/// Names, units and text of a hostile workload are escaped in the reports people open.
#[test]
fn cli_hostile_metric_names_are_escaped_in_the_reports() {
    if !common::privileged() {
        return;
    }
    let (_dir, o, run_dir) = cli_run(HOSTILE_OUTPUT);
    assert!(o.status.success(), "{}", output_text(&o));
    let results = fs::read_to_string(run_dir.join("results.json")).unwrap();
    assert!(
        results.contains("<script>alert(1)</script>"),
        "the hostile metric is not in the results at all: {results}"
    );
    let mut checked = 0;
    for report in walk(&run_dir) {
        let name = report.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.ends_with(".html") || name.ends_with(".md") || name.ends_with(".svg")) {
            continue;
        }
        checked += 1;
        let text = fs::read_to_string(&report).unwrap();
        for raw in ["<script>alert(1)", "<b>unit</b>", "<img src=x", "\u{1b}"] {
            assert!(
                !text.contains(raw),
                "{name} holds the workload's raw `{}`",
                raw.escape_debug()
            );
        }
    }
    assert!(
        checked >= 2,
        "no report.html / summary.md in {}",
        run_dir.display()
    );
}

/// Was a hole (low; fixed in c440ad9): the workload's text reached the operator's terminal raw.
///
/// A metrics-file line that does not parse is quoted in benchbox's warning on stderr
/// (`warning: default: metrics file line 2: expected ..., got `<the line>``) without
/// neutralising control characters, so the workload sends terminal escape sequences to the
/// terminal of whoever runs benchbox (set the title, rewrite the screen to hide failures,
/// OSC 52 clipboard writes on terminals that allow them). Reproduction: a command writing
/// `printf '\033]0;PWNED-TITLE\007\n' > $BENCHBOX_METRICS` (see HOSTILE_OUTPUT). Fix: escape
/// control characters (e.g. `escape_debug`) in every message that quotes workload output.
#[test]
fn workload_output_reaches_the_terminal_without_escape_sequences() {
    if !common::privileged() {
        return;
    }
    let (_dir, o, _) = cli_run(HOSTILE_OUTPUT);
    assert!(o.status.success(), "{}", output_text(&o));
    let printed = [&o.stdout[..], &o.stderr[..]].concat();
    let text = String::from_utf8_lossy(&printed);
    assert!(
        text.contains("PWNED-TITLE"),
        "the metrics line is not quoted at all: {text}"
    );
    for raw in ["\u{1b}]0;PWNED", "\u{1b}]52;", "\u{1b}[2J"] {
        assert!(
            !text.contains(raw),
            "HOLE: benchbox printed the workload's escape sequence `{}` to the terminal: {}",
            raw.escape_debug(),
            text.escape_debug()
        );
    }
}

/// The metrics file replaced by a symlink to a host file (in host mode the workload can name
/// any host path) or a hard link: init does not follow it, and a hard link across mounts is
/// refused.
#[test]
fn a_symlinked_metrics_file_is_not_followed() {
    let Some(f) = Fixture::new() else { return };
    let secret = Path::new("/etc/hostname");
    let host_text = fs::read_to_string(secret).unwrap();
    assert!(!host_text.trim().is_empty());
    let mut inv = f.host_invocation(&format!(
        "ln -sf {} $BENCHBOX_METRICS; ls -l $BENCHBOX_METRICS; \
         ln -f /etc/passwd /run/benchbox/hard; echo hardlink=$?",
        secret.display()
    ));
    inv.env
        .push(("BENCHBOX_METRICS".into(), sandbox::METRICS_PATH.into()));
    let run = f.run(&inv);
    assert!(run.out.contains("->"), "the symlink was not made: {run:?}");
    assert_eq!(run.o.metrics_file, "", "{run:?}");
    assert_ne!(run.probe()["hardlink"], "0", "{run:?}");
}

// ---------------------------------------------------------------------------------------------
// Capabilities, seccomp, kernel files
// ---------------------------------------------------------------------------------------------

#[test]
fn capabilities_are_dockers_default_minus_mknod_under_seccomp() {
    let Some(f) = Fixture::new() else { return };
    assert_eq!(default_cap_mask(), 0x0000_0000_a004_25fb);
    let run = f.run(&f.invocation("cat /proc/self/status"));
    let expected = default_cap_mask();
    for field in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(
            cap_field(&run.out, field),
            expected,
            "{field}: {:#x} vs {expected:#x}",
            cap_field(&run.out, field)
        );
    }
    assert_eq!(cap_field(&run.out, "CapInh"), 0);
    assert_eq!(cap_field(&run.out, "CapAmb"), 0);
    assert_eq!(status_field(&run.out, "Seccomp"), "2");
    assert_eq!(status_field(&run.out, "NoNewPrivs"), "0");
}

#[test]
fn a_non_root_user_has_no_capabilities() {
    let Some(f) = Fixture::new() else { return };
    fs::write(
        f.rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nbench:x:1000:1000::/tmp:/bin/sh\n",
    )
    .unwrap();
    fs::write(f.rootfs.join("etc/group"), "root:x:0:\nbench:x:1000:\n").unwrap();
    let pids_max = if is_v1(&f) {
        "pids/pids.max"
    } else {
        "pids.max"
    };
    let mut inv = f.invocation(&format!(
        "cat /proc/self/status; echo 1 > /sys/fs/cgroup/{pids_max}; echo pids=$?; \
         cat /proc/1/environ > /dev/null; echo environ=$?"
    ));
    inv.user = Some("bench".into());
    let run = f.run(&inv);
    assert_eq!(
        status_field(&run.out, "Uid").split_whitespace().next(),
        Some("1000")
    );
    assert_eq!(cap_field(&run.out, "CapEff"), 0);
    assert_eq!(cap_field(&run.out, "CapPrm"), 0);
    assert_eq!(cap_field(&run.out, "CapBnd"), default_cap_mask());
    assert_eq!(status_field(&run.out, "Seccomp"), "2");
    let r = run.probe();
    assert_ne!(r["pids"], "0", "{run:?}");
    assert_ne!(r["environ"], "0", "{run:?}");
}

#[test]
fn opt_out_sys_ptrace_adds_exactly_that_capability() {
    let Some(f) = Fixture::new() else { return };
    let mut inv = f.invocation("cat /proc/self/status");
    inv.security = Policy {
        capabilities: vec!["SYS_PTRACE".into()],
        ..Policy::default()
    };
    let run = f.run(&inv);
    let expected = default_cap_mask() | 1 << CAP_SYS_PTRACE;
    assert_eq!(cap_field(&run.out, "CapEff"), expected, "{run:?}");
    assert_eq!(cap_field(&run.out, "CapBnd"), expected, "{run:?}");
    assert_eq!(status_field(&run.out, "Seccomp"), "2");
}

/// `seccomp_unconfined` removes the filter (Seccomp: 0), and only the filter: what it alone
/// refused (a user namespace, keyrings, io_uring) now works, which also shows that the
/// default refusals come from it.
#[test]
fn opt_out_seccomp_unconfined_removes_the_filter_only() {
    let Some(f) = Fixture::with_probe() else {
        return;
    };
    let mut inv = f.invocation("grep -E '^(Seccomp|CapEff):' /proc/self/status; probe syscalls");
    inv.security = Policy {
        seccomp_unconfined: true,
        ..Policy::default()
    };
    let run = f.run(&inv);
    assert_eq!(status_field(&run.out, "Seccomp"), "0", "{run:?}");
    assert_eq!(cap_field(&run.out, "CapEff"), default_cap_mask());
    let r = run.probe();
    assert!(r["unshare_user"].starts_with("OK"), "{run:?}");
    assert!(r["add_key"].starts_with("OK"), "{run:?}");
    assert!(r["io_uring_setup"].starts_with("OK"), "{run:?}");
    // Capabilities still refuse what needs them.
    assert_eq!(r["ptrace_attach_init"], "ERR:EPERM", "{run:?}");
    assert_eq!(r["open_init_root"], "ERR:EACCES", "{run:?}");
}

#[test]
fn opt_out_privileged_has_every_capability_and_unmasked_kernel_files() {
    let Some(f) = Fixture::new() else { return };
    let mut inv = f.invocation(
        "cat /proc/self/status; echo kallsyms=$(head -n 1 /proc/kallsyms | wc -c); \
         echo 1 > /proc/sys/kernel/ns_last_pid && echo proc-sys-writable",
    );
    inv.security = Policy {
        privileged: true,
        ..Policy::default()
    };
    let run = f.run(&inv);
    assert_eq!(cap_field(&run.out, "CapEff"), full_cap_mask(), "{run:?}");
    assert_ne!(full_cap_mask() & !default_cap_mask(), 0);
    assert_eq!(status_field(&run.out, "Seccomp"), "0", "{run:?}");
    assert_ne!(
        run.probe()["kallsyms"],
        "0",
        "kallsyms still masked: {run:?}"
    );
    assert!(run.out.contains("proc-sys-writable"), "{run:?}");
}

/// dmesg, kernel symbols, keys, kcore and the kernel's timers: masked or refused.
#[test]
fn kernel_logs_symbols_and_keys_are_hidden() {
    let Some(f) = Fixture::with_probe() else {
        return;
    };
    let run = f.run(&f.invocation(
        "dmesg > /dev/null; echo dmesg=$?; \
         head -c 1 /proc/kmsg > /dev/null; echo kmsg=$?; \
         for p in kallsyms keys key-users kcore timer_list sched_debug timer_stats latency_stats; do \
           echo $p=$(cat /proc/$p 2>/dev/null | wc -c); done; \
         echo firmware=$(ls -A /sys/firmware | wc -l) acpi=$(ls -A /proc/acpi | wc -l); \
         probe syscalls",
    ));
    let r = run.probe();
    assert_ne!(r["dmesg"], "0", "{run:?}");
    assert_ne!(r["kmsg"], "0", "{run:?}");
    // Masked: empty inside, whatever the host shows.
    for masked in [
        "kallsyms",
        "keys",
        "key-users",
        "kcore",
        "timer_list",
        "sched_debug",
        "timer_stats",
        "latency_stats",
    ] {
        assert_eq!(r[masked], "0", "/proc/{masked} is readable: {run:?}");
    }
    assert!(run.out.contains("firmware=0 acpi=0\n"), "{run:?}");
    for call in ["bpf", "add_key", "keyctl", "request_key", "syslog"] {
        assert_eq!(r[call], "ERR:EPERM", "{call}: {run:?}");
    }
    // The host does have them: the masks hide something.
    for file in ["/proc/kallsyms", "/proc/timer_list"] {
        assert!(
            !fs::read(file).unwrap().is_empty(),
            "{file} is empty on the host"
        );
    }
}

/// Every dangerous system call the probe knows, one by one, under the default policy.
#[test]
fn dangerous_syscalls_are_refused() {
    let Some(f) = Fixture::with_probe() else {
        return;
    };
    let mounts = host_mounts();
    let hostname = Sysctl::read("kernel/hostname");
    let run = f.run(&f.invocation("probe syscalls; hostname"));
    let r = run.probe();
    let eperm = [
        "bpf",
        "add_key",
        "keyctl",
        "request_key",
        "io_uring_setup",
        "perf_event_open",
        "userfaultfd",
        "clone_newuser",
        "clone_newns",
        "setns",
        "mount_tmpfs",
        "remount_root_rw",
        "umount_kcore",
        "umount_proc_sys",
        "fsopen",
        "open_tree",
        "pivot_root",
        "syslog",
        "name_to_handle_at",
        "init_module",
        "finit_module",
        "delete_module",
        "kexec_load",
        "reboot",
        "swapon",
        "settimeofday",
        "sethostname",
        "iopl",
        "ioperm",
        "acct",
        "fanotify_init",
        "vhangup",
        "mknod_block",
        "mknod_char_mem",
        "sched_fifo",
        "unshare_user",
        "unshare_mnt",
    ];
    for call in eperm {
        assert_eq!(
            r.get(call).map(String::as_str),
            Some("ERR:EPERM"),
            "{call}: {run:?}"
        );
    }
    // clone3 hides its flags from the filter: refused as if unknown (libc falls back to
    // clone). x32 system calls: refused whatever the number (this kernel has no x32 at all).
    for call in ["clone3_newuser", "x32_getpid", "x32_mount", "x32_unshare"] {
        assert_eq!(r[call], "ERR:ENOSYS", "{call}: {run:?}");
    }
    // Raising one's priority needs CAP_SYS_NICE.
    assert_eq!(r["setpriority_nice"], "ERR:EACCES", "{run:?}");
    assert_eq!(run.out.lines().last(), Some("cell"), "{run:?}");
    assert_eq!(hostname.now(), hostname.before);
    assert_host_mounts_unchanged(&mounts);
}

/// A 32-bit system call (int 0x80) kills the workload (SIGSYS): the filter's arch check. With
/// the filter off the same call runs: the probe works.
#[test]
fn int80_32bit_syscalls_kill_the_workload() {
    let Some(f) = Fixture::with_probe() else {
        return;
    };
    // i386: 20 = getpid, 21 = mount, 310 = unshare.
    let mut inv = f.invocation(
        "probe int80 20; echo getpid=$?; probe int80 21; echo mount=$?; probe int80 310; echo unshare=$?",
    );
    let run = f.run(&inv);
    let r = run.probe();
    for call in ["getpid", "mount", "unshare"] {
        assert_eq!(r[call], (128 + libc::SIGSYS).to_string(), "{call}: {run:?}");
    }
    assert!(!run.out.contains("int80="), "{run:?}");
    inv.security = Policy {
        seccomp_unconfined: true,
        ..Policy::default()
    };
    let run = f.run(&inv);
    assert_eq!(run.probe()["getpid"], "0", "{run:?}");
    assert!(run.out.contains("int80="), "{run:?}");
}

/// pid 1 of the container is benchbox's init, with every capability and no seccomp filter: the
/// workload must not reach it (its root, descriptors, memory, environment, ptrace).
#[test]
fn init_is_out_of_the_workloads_reach() {
    let Some(f) = Fixture::with_probe() else {
        return;
    };
    // This test process, as seen from the host: not from the container's pid namespace.
    let host_pid = std::process::id();
    let run = f.run(&f.invocation(&format!(
        "readlink /proc/1/fd/1; echo readlink_fd=$?; ls /proc/1/root/ > /dev/null; echo ls_root=$?; \
         readlink /proc/1/exe; echo readlink_exe=$?; kill -0 {host_pid}; echo kill_host=$?; \
         kill -9 1; echo kill=$?; probe syscalls"
    )));
    let r = run.probe();
    for attempt in ["readlink_fd", "ls_root", "readlink_exe", "kill_host"] {
        assert_ne!(r[attempt], "0", "{attempt}: {run:?}");
    }
    for call in [
        "ptrace_attach_init",
        "pidfd_getfd_init",
        "process_vm_readv_init",
        "kcmp_init",
    ] {
        assert_eq!(r[call], "ERR:EPERM", "{call}: {run:?}");
    }
    for file in [
        "open_init_root",
        "open_init_fd",
        "open_init_environ",
        "open_init_mem",
        "open_init_exe",
    ] {
        assert_eq!(r[file], "ERR:EACCES", "{file}: {run:?}");
    }
    // SIGKILL to the namespace's init from inside is ignored; init reported this run.
    assert_eq!(run.o.measured.exit_code, Some(0), "{run:?}");
}

/// The workload cannot shield itself from the OOM killer nor take the CPU away from the host
/// (negative nice, real-time scheduling).
#[test]
fn oom_score_and_scheduling_priority_cannot_be_raised() {
    let Some(f) = Fixture::with_probe() else {
        return;
    };
    let run = f.run(&f.invocation(
        "echo -1000 > /proc/self/oom_score_adj; echo oom=$?; echo adj=$(cat /proc/self/oom_score_adj); \
         probe syscalls",
    ));
    let r = run.probe();
    assert_ne!(r["oom"], "0", "{run:?}");
    assert_eq!(r["adj"], "0", "{run:?}");
    assert_eq!(r["setpriority_nice"], "ERR:EACCES", "{run:?}");
    assert_eq!(r["sched_fifo"], "ERR:EPERM", "{run:?}");
}

/// /dev has only the harmless nodes; creating another (the host's disk) is refused, and the
/// terminal is not the host's.
#[test]
fn dev_has_only_harmless_nodes_and_mknod_is_refused() {
    let Some(f) = Fixture::new() else { return };
    let dev = fs::metadata(f.dir.path()).unwrap().dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let run = f.run(&f.invocation(&format!(
        "ls /dev | tr '\\n' ' '; echo; mknod /tmp/disk b {major} {minor}; echo mknod=$?; \
         mknod /dev/disk b {major} {minor}; echo mknod_dev=$?; \
         mknod /tmp/kmsg c 1 11; echo mknod_kmsg=$?; \
         echo x > /dev/tty; echo tty=$?"
    )));
    let nodes: BTreeSet<&str> = run.out.lines().next().unwrap().split_whitespace().collect();
    let allowed: BTreeSet<&str> = [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx", "fd", "stdin",
        "stdout", "stderr",
    ]
    .into();
    assert!(
        nodes.is_subset(&allowed),
        "unexpected /dev entries: {:?}",
        nodes.difference(&allowed)
    );
    let r = run.probe();
    for attempt in ["mknod", "mknod_dev", "mknod_kmsg", "tty"] {
        assert_ne!(r[attempt], "0", "{attempt}: {run:?}");
    }
}

/// With `network = "none"` the host's loopback services are out of reach (a private network
/// namespace); with the host's network the same connection goes through.
#[test]
fn network_none_cannot_reach_the_hosts_loopback_services() {
    let Some(f) = Fixture::new() else { return };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut inv = f.invocation(&format!(
        "timeout 5 nc -w 1 127.0.0.1 {port} < /dev/null; echo nc=$?"
    ));
    let run = f.run(&inv);
    assert_ne!(run.probe()["nc"], "0", "{run:?}");
    assert!(
        listener.accept().is_err(),
        "a container without network reached the host's loopback"
    );
    inv.host_network = true;
    let run = f.run(&inv);
    assert!(
        listener.accept().is_ok(),
        "the control with the host's network did not connect: {run:?}"
    );
}

/// Host mode shows the host's files, but not its unix sockets (a throw-away overlay does not
/// pass connections through), and a private network namespace hides abstract sockets.
#[test]
fn host_mode_cannot_connect_to_host_unix_sockets() {
    let Some(f) = Fixture::with_probe() else {
        return;
    };
    let path = PathBuf::from(format!("/var/tmp/{}.sock", marker("sock")));
    let _ = fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    listener.set_nonblocking(true).unwrap();
    let abstract_name = marker("abstract");
    let abstract_listener = {
        use std::os::linux::net::SocketAddrExt;
        let addr =
            std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap();
        std::os::unix::net::UnixListener::bind_addr(&addr).unwrap()
    };
    abstract_listener.set_nonblocking(true).unwrap();
    // The probe can connect: on the host, it reaches the listener.
    let control = Command::new(f.rootfs.join("bin/probe"))
        .arg("connect")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&control.stdout).contains("connect=OK"),
        "the probe cannot connect on the host"
    );
    drop(listener.accept().unwrap());
    let run = f.run(&f.host_invocation(&format!(
        "ls -l {p}; probe connect {p}; probe connect @{abstract_name}",
        p = path.display()
    )));
    let _ = fs::remove_file(&path);
    assert!(run.out.contains(&path.display().to_string()), "{run:?}");
    assert!(!run.out.contains("connect=OK"), "{run:?}");
    assert!(
        listener.accept().is_err(),
        "a container connected to the host's socket"
    );
    assert!(abstract_listener.accept().is_err());
}

// ---------------------------------------------------------------------------------------------
// Holes: these tests fail until the sandbox is fixed
// ---------------------------------------------------------------------------------------------

/// The host kernel's log, as far as it goes now (records of /dev/kmsg).
fn host_kernel_log() -> String {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut kmsg = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .unwrap();
    let mut log = String::new();
    let mut record = vec![0u8; 16384];
    loop {
        match kmsg.read(&mut record) {
            Ok(0) => break,
            Ok(n) => log.push_str(&String::from_utf8_lossy(&record[..n])),
            // A record overwritten while we read (EPIPE): go on with the next one.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(_) => break,
        }
    }
    log
}

/// Was a hole (fixed in c440ad9 by `nodev`): a device node shipped in the image reached the
/// host's devices.
///
/// Image layers are unpacked with their device nodes (src/image/unpack.rs recreates `Char` and
/// `Block` entries with mknod; `benchbox import` of a directory keeps them too), the root
/// overlay is mounted without `nodev`, and benchbox sets up no device cgroup -- Docker's
/// defence, which lets a container open only null/zero/full/random/urandom/tty/console/pts
/// whatever nodes its image holds. Dropping MKNOD stops the workload from *creating* a node,
/// not from opening one its image ships. Reproduction: an image (here: the rootfs directory,
/// an overlay lower exactly like an unpacked layer) with `c 1 11` (/dev/kmsg) and a block node
/// of the host's disk; the workload writes a line into the HOST's kernel log (it shows in
/// `dmesg` on the host), and on a host that does not itself forbid block devices to root
/// processes (this CI VM does) reads -- or writes -- the raw disk. Fix: mount the root overlay
/// (and host mode's overlays) `nodev`, and/or a device cgroup (v1 `devices.deny a` plus the
/// few allowed; v2 a BPF device program), and/or refuse device entries other than whiteouts
/// when unpacking.
#[test]
fn device_nodes_in_the_image_are_inert() {
    let Some(f) = Fixture::new() else { return };
    let dev = fs::metadata(f.dir.path()).unwrap().dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    for (name, kind, major, minor) in [
        ("hostdisk", libc::S_IFBLK, major, minor),
        ("kmsg", libc::S_IFCHR, 1, 11),
    ] {
        let path = std::ffi::CString::new(f.rootfs.join(name).to_str().unwrap()).unwrap();
        // SAFETY: a valid path; what an image unpack does for a device entry.
        let rc = unsafe { libc::mknod(path.as_ptr(), kind | 0o600, libc::makedev(major, minor)) };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    }
    let m = marker("kmsg");
    let run = f.run(&f.invocation(&format!(
        "echo '{m}: written into the host kernel log by a container' > /kmsg; echo kmsg_write=$?; \
         echo disk_bytes=$(head -c 4096 /hostdisk | wc -c); \
         dmesg > /dev/null; echo dmesg=$?"
    )));
    let r = run.probe();
    assert_ne!(r["dmesg"], "0", "{run:?}");
    let host_log = host_kernel_log();
    assert!(
        !host_log.contains(&m),
        "HOLE: the workload wrote into the host's kernel log through a device node of its image \
         (kmsg_write={}): {run:?}",
        r["kmsg_write"]
    );
    assert_ne!(
        r["kmsg_write"], "0",
        "HOLE: the workload opened the host's /dev/kmsg through a device node of its image: {run:?}"
    );
    assert_eq!(
        r["disk_bytes"], "0",
        "HOLE: the workload read the host's raw disk ({major}:{minor}) through a device node of \
         its image: {run:?}"
    );
}

/// A file removed on drop.
struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Was a hole (fixed in c440ad9): in host mode, every device node on the host's filesystems
/// (outside the replaced /dev) was usable: host mode's overlays are mounted without `nodev`, and there is no device cgroup.
/// Hosts keep such nodes in chroots, build roots and container storage. Reproduction: `mknod
/// /var/tmp/kmsg c 1 11` on the host, then a host-mode cell writes the host's kernel log
/// through `/var/tmp/kmsg`. Fix: `nodev` on host mode's overlays (and read-only fallbacks).
#[test]
fn device_nodes_of_the_hosts_filesystem_are_inert_in_host_mode() {
    let Some(f) = Fixture::new() else { return };
    let node = Removed(PathBuf::from(format!("/var/tmp/{}", marker("kmsg-node"))));
    let path = std::ffi::CString::new(node.0.to_str().unwrap()).unwrap();
    // SAFETY: a valid path.
    let rc = unsafe { libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 11)) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    let m = marker("host-mode-kmsg");
    let run = f.run(&f.host_invocation(&format!(
        "echo '{m}: written into the host kernel log from a host-mode container' > {}; \
         echo kmsg_write=$?",
        node.0.display()
    )));
    assert!(
        !host_kernel_log().contains(&m),
        "HOLE: a host-mode workload wrote into the host's kernel log through a device node of \
         the host's filesystem: {run:?}"
    );
    assert_ne!(run.probe()["kmsg_write"], "0", "{run:?}");
}

/// Was a hole (fixed in c440ad9: init keeps only KILL and DAC_OVERRIDE once the workload is
/// forked, and holds /dev/null as stdio): the `SYS_PTRACE` opt-out handed the workload pid 1,
/// which held every capability and no seccomp filter, and with it the host.
///
/// Docker users add SYS_PTRACE routinely (perf, strace, gdb): under Docker pid 1 is the
/// workload itself, so the capability reaches nothing more privileged. Under benchbox pid 1 is
/// benchbox's init, which never drops a capability nor installs the filter (and still holds
/// benchbox's own stdin/stdout/stderr). Reproduction: `Policy { capabilities:
/// ["SYS_PTRACE"] }` and a volume on the host's filesystem; the probe PTRACE_SEIZEs pid 1,
/// injects `openat(volume)` and `open_by_handle_at(<handle of the host filesystem's root>)`
/// into it (init holds CAP_DAC_READ_SEARCH), takes the resulting descriptor with
/// `pidfd_getfd`, and creates a file in the host's directory of this test. (Even without the
/// injection, `/proc/1/fd/1` and `/proc/1/fd/2` are benchbox's own stdout and stderr: host
/// files, such as the operator's log, that the workload can then reopen.) Fix: init drops to
/// the workload's capabilities (and filter) once its privileged setup is done, or the workload
/// is made unable to ptrace it.
#[test]
fn sys_ptrace_opt_out_cannot_use_init_to_reach_the_host() {
    let Some(f) = Fixture::with_probe() else {
        return;
    };
    let vol = f.path("vol");
    fs::create_dir(&vol).unwrap();
    let root = mount_root_of(&vol);
    let handle = host_handle(&f.rootfs.join("bin/probe"), &root);
    let escaped = f.path("escaped-via-init");
    let rel = escaped.strip_prefix(&root).unwrap().to_path_buf();
    let mut inv = f.invocation(&format!(
        "ls -l /proc/1/fd/; probe ptrace-escape /vol {handle} {}",
        rel.display()
    ));
    // Read-write, as a benchmark's data directory often is (read-only, the host's whole tree
    // is still readable through it).
    inv.volumes = vec![Volume {
        host: vol,
        target: "/vol".into(),
        read_only: false,
    }];
    inv.security = Policy {
        capabilities: vec!["SYS_PTRACE".into()],
        ..Policy::default()
    };
    let run = f.run(&inv);
    let r = run.probe();
    assert!(
        !escaped.exists(),
        "HOLE: with SYS_PTRACE the workload hijacked init and created `{}` on the host: {run:?}",
        escaped.display()
    );
    assert!(
        r.get("init_open_by_handle_at")
            .is_none_or(|v| v.starts_with('-')),
        "HOLE: init opened the host's root for the workload: {run:?}"
    );
}

/// A "user" key in this process's session keyring (the user-session keyring when the process
/// has none: shared by every root process of the host without one), invalidated on drop.
struct HostKey(i64);

impl HostKey {
    fn add(description: &str, payload: &str) -> HostKey {
        let desc = std::ffi::CString::new(description).unwrap();
        // SAFETY: constant arguments; no keyring is created (KEY_SPEC_SESSION_KEYRING, 0).
        let keyring = unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                libc::KEYCTL_GET_KEYRING_ID,
                libc::KEY_SPEC_SESSION_KEYRING,
                0,
            )
        };
        assert!(keyring > 0, "{}", std::io::Error::last_os_error());
        // SAFETY: valid C strings and a payload of the given length.
        let key = unsafe {
            libc::syscall(
                libc::SYS_add_key,
                c"user".as_ptr(),
                desc.as_ptr(),
                payload.as_ptr(),
                payload.len(),
                keyring as libc::c_long,
            )
        };
        assert!(key > 0, "{}", std::io::Error::last_os_error());
        HostKey(key)
    }
}

impl Drop for HostKey {
    fn drop(&mut self) {
        // SAFETY: constant arguments.
        unsafe { libc::syscall(libc::SYS_keyctl, libc::KEYCTL_INVALIDATE, self.0) };
    }
}

/// With the `SYS_PTRACE` opt-out the workload can ptrace init, which stays in its pid
/// namespace: init must give it nothing the filter refuses. Found by this test: init ran
/// without the seccomp filter and shared benchbox's session keyring, so a workload that
/// injected `keyctl` into init read a key the host holds. Now init installs the workload's
/// filter and keeps two capabilities once the workload is forked, and every container joins a
/// session keyring of its own (as runc does). Reproduction: the host holds a key in its session
/// keyring; a cell with `capabilities = ["SYS_PTRACE"]` runs `probe ptrace-keyring DESC`, which
/// PTRACE_SEIZEs pid 1 and injects `keyctl(KEYCTL_SEARCH)`/`keyctl(KEYCTL_READ)` into it.
#[test]
fn sys_ptrace_opt_out_cannot_use_init_to_bypass_seccomp() {
    let Some(f) = Fixture::with_probe() else {
        return;
    };
    let description = marker("key");
    let secret = marker("secret-of-the-host");
    let _key = HostKey::add(&description, &secret);
    let mut inv = f.invocation(&format!(
        "grep Seccomp: /proc/1/status; probe ptrace-keyring {description}"
    ));
    inv.security = Policy {
        capabilities: vec!["SYS_PTRACE".into()],
        ..Policy::default()
    };
    let run = f.run(&inv);
    let r = run.probe();
    assert_eq!(r["keyctl_search_self"], "ERR:EPERM", "{run:?}");
    assert!(
        !run.out.contains(&secret),
        "HOLE: through init, which has no seccomp filter, the workload read a key of the host's \
         session keyring: {run:?}"
    );
    assert!(
        r.get("init_keyctl_search")
            .is_none_or(|v| v.starts_with('-')),
        "HOLE: init made a system call the workload's filter refuses: {run:?}"
    );
}

/// Was a hole (fixed in c440ad9: paths canonical at run start, opened with
/// RESOLVE_NO_SYMLINKS): a read-write volume let the workload redirect, for the next
/// invocation, any host path benchbox resolves under it: another volume's host path, or the rootfs directory.
///
/// The sandbox resolves the host paths of volumes (`open_tree` in `mounts::detach`) and of the
/// overlay lowers (`lowerdir=`) anew at every invocation, by name, following symlinks, on the
/// host (before the pivot). A workload with a read-write volume whose host tree holds such a
/// path replaces the directory with a symlink to `/`: the next invocation (the next run of the
/// same cell, and every later `benchbox run`, whose spec canonicalizes the path to `/`) mounts
/// the HOST's root filesystem -- read-write, for a volume. Reproduction (matrix form):
/// `volumes = ["./data:/data", "./data/sub:/sub"]`, command `rm -rf /data/sub && ln -s /
/// /data/sub`; the next invocation reads and writes the host's `/` at `/sub`. Likewise
/// `rootfs = "./proj/rootfs"` with `volumes = ["./proj:/proj"]` and `ln -s / /proj/rootfs`:
/// the next invocation's root is the host's `/`. Fix: open every host path once, without
/// following symlinks the workload could have planted (openat2 RESOLVE_NO_SYMLINKS, or O_PATH
/// descriptors taken when the run starts and handed to open_tree/overlay by descriptor), or
/// refuse a path that no longer canonicalizes to itself.
#[test]
fn a_rw_volume_cannot_redirect_later_volumes_or_the_rootfs_to_the_host() {
    let Some(f) = Fixture::new() else { return };
    // What only the host's root shows: a file of this test (when the temporary directory is
    // on the root filesystem) and the host's os-release (the busybox rootfs has none).
    let marker_file = f.path("host-only");
    let secret = marker("host-only");
    fs::write(&marker_file, &secret).unwrap();
    assert!(Path::new("/etc/os-release").exists());
    let host_root = |run: &Run| run.out.contains(&secret) || run.out.contains("HOST-ROOT");
    let mut holes = Vec::new();

    // Another volume's host path, under a read-write volume.
    let data = f.path("data");
    fs::create_dir_all(data.join("sub")).unwrap();
    fs::write(data.join("sub/input"), "dataset").unwrap();
    let mut inv = f.invocation("cat /sub/input; echo; rm -rf /data/sub && ln -s / /data/sub");
    inv.volumes = vec![
        Volume {
            host: data.clone(),
            target: "/data".into(),
            read_only: false,
        },
        Volume {
            host: data.join("sub"),
            target: "/sub".into(),
            read_only: false,
        },
    ];
    let run = f.run(&inv);
    assert!(run.out.starts_with("dataset"), "{run:?}");
    let written = f.path("written-through-the-swapped-volume");
    inv.argv[2] = format!(
        "cat /sub{}; test -e /sub/etc/os-release && echo HOST-ROOT; echo pwned > /sub{}; \
         ls /sub/input",
        marker_file.display(),
        written.display()
    );
    match f.try_run(&inv) {
        Ok(run) if host_root(&run) => holes.push(format!(
            "HOLE: the next invocation got the host's root filesystem as the volume at /sub \
             (and wrote `{}` on the host: {}): {run:?}",
            written.display(),
            written.exists()
        )),
        Ok(run) => assert!(run.out.contains("/sub/input"), "{run:?}"),
        Err(e) => eprintln!("refused, as it may be: {e}"),
    }

    // The rootfs directory, under a read-write volume.
    let proj = f.path("proj");
    fs::create_dir(&proj).unwrap();
    fs::rename(&f.rootfs, proj.join("rootfs")).unwrap();
    let mut inv = f.invocation("mv /proj/rootfs /proj/rootfs.orig && ln -s / /proj/rootfs");
    inv.root = RootSpec::Overlay {
        lowers: vec![proj.join("rootfs")],
    };
    inv.volumes = vec![Volume {
        host: proj.clone(),
        target: "/proj".into(),
        read_only: false,
    }];
    let run = f.run(&inv);
    assert_eq!(run.o.measured.exit_code, Some(0), "{run:?}");
    inv.volumes.clear();
    inv.env = vec![("PATH".into(), "/usr/bin:/bin".into())];
    inv.argv[2] = format!(
        "cat {}; test -e /etc/os-release && echo HOST-ROOT",
        marker_file.display()
    );
    match f.try_run(&inv) {
        Ok(run) if host_root(&run) => holes.push(format!(
            "HOLE: the next invocation's root filesystem was the host's `/`: {run:?}"
        )),
        Ok(run) => assert_ne!(run.o.measured.exit_code, Some(0), "{run:?}"),
        Err(e) => eprintln!("refused, as it may be: {e}"),
    }
    assert!(holes.is_empty(), "{}", holes.join("\n"));
}

/// Was a hole, end to end (fixed in c440ad9): the `[security] capabilities = ["SYS_PTRACE"]`
/// that the README suggests for profilers gave a cell's workload the host (see the library test above). The matrix:
/// `volumes = ["./vol:/vol"]` and `[security] capabilities = ["SYS_PTRACE"]`; the workload's
/// `probe ptrace-escape` creates a file in the project directory on the host, and `ls -l
/// /proc/1/fd` shows init holding benchbox's own stdout and stderr.
#[test]
fn cli_sys_ptrace_for_a_profiler_cannot_use_init_to_reach_the_host() {
    if !common::privileged() {
        return;
    }
    let Some(probe) = probe_binary() else { return };
    let mut escaped = PathBuf::new();
    let (_dir, o, run_dir) = cli_run_with(
        "volumes = [\"./vol:/vol\"]",
        "capabilities = [\"SYS_PTRACE\"]",
        1,
        |dir| {
            common::copy_executable(&probe, &dir.join("rootfs/bin/probe"));
            fs::create_dir(dir.join("vol")).unwrap();
            let root = mount_root_of(&dir.join("vol"));
            escaped = dir.join("escaped-via-init");
            format!(
                "ls -l /proc/1/fd/; probe ptrace-escape /vol {} {}",
                host_handle(&probe, &root),
                escaped.strip_prefix(&root).unwrap().display()
            )
        },
    );
    assert!(o.status.success(), "{}", output_text(&o));
    let log = cli_log(&run_dir);
    assert!(log.contains("seize_init="), "the probe did not run: {log}");
    assert!(
        !escaped.exists(),
        "HOLE: a cell with SYS_PTRACE hijacked init and created `{}` on the host:\n{log}",
        escaped.display()
    );
}

/// An image must not defeat the /proc masks. Found by this test: an image with `/proc ->
/// /dev/link` and `/dev/link -> /realproc` got proc mounted on /realproc (the mount followed the
/// symlinks), the fresh /dev then hid `link`, every `/proc/...` mask path was missing and
/// skipped, and /realproc/sys was writable (vm.swappiness changed on the host; the test puts it
/// back). runc refuses such a /proc (CVE-2019-16884). Now /proc, /sys, /dev and /run are made
/// real directories in the container's writable layer before anything is mounted on them, and
/// the masks check that /proc and /sys are the kernel's before applying themselves.
#[test]
fn image_symlinks_at_proc_and_dev_cannot_unmask_proc_or_make_sysctls_writable() {
    let Some(f) = Fixture::new() else { return };
    fs::remove_dir(f.rootfs.join("proc")).unwrap();
    symlink("/dev/link", f.rootfs.join("proc")).unwrap();
    symlink("/realproc", f.rootfs.join("dev/link")).unwrap();
    fs::create_dir(f.rootfs.join("realproc")).unwrap();
    let _turn = sysctl_turn();
    let swappiness = Sysctl::read("vm/swappiness");
    let other = (swappiness.before.trim().parse::<u32>().unwrap() + 7) % 100;
    let run = f.run(&f.invocation(&format!(
        "echo kallsyms=$(cat /realproc/kallsyms /proc/kallsyms 2>/dev/null | wc -c); \
         echo {other} > /realproc/sys/vm/swappiness; echo swappiness=$?; \
         echo {other} > /proc/sys/vm/swappiness; echo swappiness_proc=$?"
    )));
    let now = swappiness.now();
    drop(swappiness); // puts the host's value back
    let r = run.probe();
    let mut holes = Vec::new();
    if r["swappiness"] == "0" || r["swappiness_proc"] == "0" {
        holes.push(format!(
            "HOLE: the workload wrote the host's vm.swappiness (now {}; put back)",
            now.trim()
        ));
    }
    if r["kallsyms"] != "0" {
        holes.push(format!(
            "HOLE: the workload read {} bytes of /proc/kallsyms",
            r["kallsyms"]
        ));
    }
    assert!(holes.is_empty(), "{}: {run:?}", holes.join("; "));
}

/// With the project directory (holding benchbox's output directory) mounted read-write, a
/// workload could rewrite earlier results, or swap `<run>/logs/.stdout.spool` for a symlink to
/// a host file that benchbox, as root, then fills with the workload's output (think
/// `/etc/cron.d/x`). Such a volume is refused before anything is created (exit 2); read-only,
/// the same attack fails inside and the host file is never written.
#[test]
fn a_rw_volume_over_the_output_directory_is_refused() {
    if !common::privileged() {
        return;
    }
    let victim_dir = tempdir();
    let victim = victim_dir.path().join("written-by-benchbox-as-root");
    let script = format!(
        "if [ -e /project/planted ]; then echo 'PAYLOAD chosen by the workload'; else \
         run=$(ls -d /project/out/hostile/2* | tail -n 1); rm -f $run/logs/.stdout.spool; \
         ln -s {} $run/logs/.stdout.spool; touch /project/planted; fi",
        victim.display()
    );
    let (dir, o, _) = cli_run_with("volumes = [\"./:/project\"]", "", 2, |_| script.clone());
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    let text = output_text(&o);
    assert!(
        text.contains("read-write volume") && text.contains("hint: mount it read-only"),
        "{text}"
    );
    assert!(!dir.path("out").exists(), "a refused run left {text}");
    assert!(!victim.exists());

    // Read-only, the workload's writes fail (and it exits 0 regardless, so the run succeeds).
    let (_dir, o, run_dir) = cli_run_with("volumes = [\"./:/project:ro\"]", "", 2, |_| {
        format!("{script} 2>/dev/null; true")
    });
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(run_dir.join("runs.csv").exists(), "{}", output_text(&o));
    assert!(
        !victim.exists(),
        "HOLE: benchbox wrote the workload's output into the host file `{}`: {:?}",
        victim.display(),
        fs::read_to_string(&victim)
    );
}

/// The second line behind the read-only cgroup view: a workload that does reset its counters
/// (only a privileged one can remount the view) is caught by the rusage cross-check. Its row is
/// `suspect`, it is left out of the statistics, and the run fails (exit 5) unless failures
/// are allowed.
///
/// cgroup v2 has no counter to zero (`cpu.stat` cannot be written) and counts every group's CPU
/// in its parent's: a privileged workload that makes the view writable, burns in a child group
/// of its own and tries to zero `cpu.stat` is still fully counted (its row is `ok`, the cgroup's
/// CPU agrees with the rusage), and its child group goes with the invocation's.
#[test]
fn a_privileged_workload_that_zeroes_its_cpu_counter_is_suspect() {
    if !common::privileged() {
        return;
    }
    // One second of CPU, however fast the machine (the VM lane emulates its CPUs).
    let burn = "timeout 1 sh -c 'while :; do :; done'";
    if !host_is_v1() {
        let hide = "mount -o remount,bind,rw /sys/fs/cgroup && mkdir /sys/fs/cgroup/hide \
             && echo $$ > /sys/fs/cgroup/hide/cgroup.procs && echo moved";
        let (_dir, o, run_dir) = cli_run_with("", "privileged = true", 1, |_| {
            format!("{hide}; {burn}; echo 0 > /sys/fs/cgroup/cpu.stat && echo zeroed; true")
        });
        assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
        let log = cli_log(&run_dir);
        assert!(log.contains("moved") && !log.contains("zeroed"), "{log}");
        let csv = fs::read_to_string(run_dir.join("runs.csv")).unwrap();
        let mut rows = csv::Reader::from_reader(csv.as_bytes());
        let header = rows.headers().unwrap().clone();
        let row = rows.records().next().unwrap().unwrap();
        let get = |name: &str| row[header.iter().position(|h| h == name).unwrap()].to_string();
        assert_eq!(get("status"), "ok", "{csv}");
        let cgroup_cpu: f64 =
            get("user_s").parse::<f64>().unwrap() + get("system_s").parse::<f64>().unwrap();
        let rusage_cpu: f64 = get("rusage_user_s").parse::<f64>().unwrap()
            + get("rusage_system_s").parse::<f64>().unwrap();
        assert!(
            cgroup_cpu > 0.5 && (cgroup_cpu - rusage_cpu).abs() < 0.05 * rusage_cpu,
            "{csv}"
        );
        // No group of benchbox's is left with the workload's child group in it.
        let left: Vec<_> = fs::read_dir("/sys/fs/cgroup/benchbox")
            .unwrap()
            .flatten()
            .map(|group| group.path().join("hide"))
            .filter(|hide| hide.exists())
            .collect();
        assert!(left.is_empty(), "{left:?}");
        return;
    }
    let burn_then_zero = format!(
        "{burn}; mount -o remount,bind,rw /sys/fs/cgroup/cpuacct && echo 0 > /sys/fs/cgroup/cpuacct/cpuacct.usage \
         && echo zeroed"
    );
    let (_dir, o, run_dir) = cli_run_with("", "privileged = true", 1, |_| burn_then_zero.clone());
    assert_eq!(o.status.code(), Some(5), "{}", output_text(&o));
    let csv = fs::read_to_string(run_dir.join("runs.csv")).unwrap();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let header = rows.headers().unwrap().clone();
    let row = rows.records().next().unwrap().unwrap();
    let get = |name: &str| row[header.iter().position(|h| h == name).unwrap()].to_string();
    assert_eq!(get("status"), "suspect", "{csv}");
    assert!(get("reason").contains("below 90%"), "{csv}");
    let cgroup_cpu: f64 =
        get("user_s").parse::<f64>().unwrap() + get("system_s").parse::<f64>().unwrap();
    let rusage_cpu: f64 = get("rusage_user_s").parse::<f64>().unwrap()
        + get("rusage_system_s").parse::<f64>().unwrap();
    assert!(rusage_cpu > 0.05 && cgroup_cpu < 0.9 * rusage_cpu, "{csv}");
    assert!(cli_log(&run_dir).contains("zeroed"));
    let text = output_text(&o);
    assert!(text.contains("suspect"), "{text}");
}
