//! Control groups: one fresh cgroup per invocation, with the limits applied and read back.
//!
//! A cgroup is a directory in a kernel pseudo-filesystem: creating it is `mkdir`, limiting it is
//! writing a control file (`memory.max`, `cpuset.cpus`...), joining it is writing a pid into
//! `cgroup.procs`, and its accounting (CPU time, peak memory, OOM kills, I/O bytes) is read back
//! from more files. cgroup v1 mounts one hierarchy per controller (`/sys/fs/cgroup/memory`, ...);
//! v2 mounts one unified tree. [`v1`] and [`v2`] implement one interface, [`Group`], and
//! [`detect`] picks the one the host uses at run time.
//!
//! Every function takes the cgroup root (and the `/proc/self/cgroup` text) as parameters, so a
//! temp directory of fake files is a complete stand-in for the kernel in tests.
//!
//! We talk to the files directly rather than through `cgroups-rs`: that crate hard-codes the
//! mount points (no fake root), silently reuses an existing cgroup of the same name, cannot kill
//! a v1 group, and fails to delete one that still has processes -- all four matter here.

pub mod place;
pub mod v1;
pub mod v2;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

// The plain data a group reports, shared with the results and the reports.
pub use crate::measurement::{Applied, Pressure, Version};

/// The limits to apply to one invocation's cgroup. `None` means unlimited.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// cpuset in kernel list form ("0-1,3").
    pub cpus: Option<String>,
    /// Cores' worth of CPU time per period.
    pub cpu_quota: Option<f64>,
    /// Hard memory limit in bytes; swap is always disabled when set.
    pub memory: Option<u64>,
    pub pids: Option<u64>,
}

/// Cumulative accounting of a cgroup at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    pub cpu_user: Duration,
    pub cpu_system: Duration,
    pub memory_peak: Option<u64>,
    pub io_read_bytes: Option<u64>,
    pub io_write_bytes: Option<u64>,
    pub oom_kills: u64,
    pub nr_throttled: u64,
    pub throttled: Duration,
    /// The group's pressure stall totals (v2 with PSI; empty on v1).
    pub pressure: Pressure,
}

/// Read the group's three pressure files in `dir` (each missing or unreadable one leaves its
/// values empty). The CPU's `full` line (Linux 5.13+) is left out: with one runnable task, the
/// usual benchmark, it is the same time as `some`.
pub fn read_pressure(dir: &Path) -> Pressure {
    let totals = |file: &str| {
        fs::read_to_string(dir.join(file))
            .map(|text| pressure_totals(&text))
            .unwrap_or_default()
    };
    let (cpu_some, _) = totals("cpu.pressure");
    let (memory_some, memory_full) = totals("memory.pressure");
    let (io_some, io_full) = totals("io.pressure");
    Pressure {
        psi_cpu_some_us: cpu_some,
        psi_memory_some_us: memory_some,
        psi_memory_full_us: memory_full,
        psi_io_some_us: io_some,
        psi_io_full_us: io_full,
    }
}

/// The `total=` microseconds of the `some` and `full` lines of a pressure file
/// ("some avg10=0.00 avg60=0.00 avg300=0.00 total=1234").
fn pressure_totals(text: &str) -> (Option<u64>, Option<u64>) {
    let total = |kind: &str| {
        text.lines().find_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next()? == kind).then(|| {
                fields
                    .find_map(|f| f.strip_prefix("total="))?
                    .parse::<u64>()
                    .ok()
            })?
        })
    };
    (total("some"), total("full"))
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error(
        "no usable cgroup hierarchy under `{0}` (hint: mount cgroup2 or the v1 controllers cpu, cpuacct, cpuset, memory, pids)"
    )]
    NotFound(PathBuf),
    #[error(
        "cgroup controller `{controller}` is not available under `{root}` (hint: enable it, or run `benchbox doctor`)"
    )]
    MissingController { controller: String, root: PathBuf },
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cgroup `{path}` still has processes after being killed")]
    Busy { path: PathBuf },
    /// This user may not make cgroups here: not root, and no delegated cgroup v2 subtree
    /// (cgroup v1 is never delegated). `reason` says what was checked.
    #[error("{}", not_delegated_message(*version, reason))]
    NotDelegated { version: Version, reason: String },
    #[error(
        "cannot use `{path}` as the cgroup parent: {reason}\n  hint: give a cgroup path such as /benchbox.slice/bench (with --cgroup-parent or BENCHBOX_CGROUP_PARENT), or neither for the default"
    )]
    BadParent { path: PathBuf, reason: String },
    #[error(
        "cannot enable the cgroup controllers {controllers} in `{path}`: it still holds processes, and a cgroup v2 group other than the root holds either processes or child groups with controllers, never both\n  hint: choose a parent whose groups hold no processes with --cgroup-parent or BENCHBOX_CGROUP_PARENT (for root, the default /sys/fs/cgroup/benchbox)"
    )]
    InternalProcesses { path: PathBuf, controllers: String },
}

fn not_delegated_message(version: Version, reason: &str) -> String {
    match version {
        Version::V1 => format!(
            "cgroup v1 cannot be delegated to this user: {reason}\n  hint: limits need root or a delegated cgroup v2 subtree"
        ),
        Version::V2 => format!(
            "no cgroup v2 subtree is delegated to this user: {reason}\n  hint: run benchbox as root, or in a delegated subtree (systemd-run --user --scope -p Delegate=yes benchbox ...)"
        ),
    }
}

pub type Result<T> = std::result::Result<T, CgroupError>;

/// One live cgroup (v1: a directory in each controller hierarchy; v2: one directory).
pub trait Group: Send + Sync {
    /// The directories that make up this group (for messages and tests).
    fn dirs(&self) -> Vec<PathBuf>;
    /// What a container shows at `/sys/fs/cgroup`: (directory under it, "" for the mount
    /// point itself; the group's directory to bind there). v1: one per controller; v2: one.
    fn container_view(&self) -> Vec<(String, PathBuf)>;
    /// The `cgroup.procs` files that list the group's processes.
    fn procs_files(&self) -> Vec<PathBuf>;
    /// The files a *single-threaded* process writes "0" into to move itself into the group.
    fn join_files(&self) -> Vec<PathBuf>;
    /// The directory a new process can be born in with `clone3(CLONE_INTO_CGROUP)` (v2, Linux
    /// 5.7+), instead of being moved there through [`Group::join_files`]. `None` on v1, whose
    /// group is a directory in each of several hierarchies.
    fn birth_dir(&self) -> Option<PathBuf>;
    /// The limits as read back from the kernel after applying them.
    fn applied(&self) -> Applied;
    /// Forget the peak memory so far (called just before the workload's exec).
    fn reset_peak(&self) -> Result<()>;
    fn counters(&self) -> Result<Counters>;
    /// Memory in use right now (v1 `memory.usage_in_bytes`, v2 `memory.current`).
    fn memory_current(&self) -> Option<u64>;
    /// Every pid currently in the group.
    fn pids(&self) -> Result<Vec<i32>>;
    /// SIGKILL every process in the group until it is empty (or `Busy` after a few seconds).
    fn kill_all(&self) -> Result<()>;
    /// Remove the group's directories (kills stragglers first).
    fn remove(&self) -> Result<()>;
}

/// Where and how to create cgroups on this host.
#[derive(Debug, Clone)]
pub enum Hierarchy {
    V1(v1::V1),
    V2(v2::V2),
}

impl Hierarchy {
    pub fn version(&self) -> Version {
        match self {
            Hierarchy::V1(_) => Version::V1,
            Hierarchy::V2(_) => Version::V2,
        }
    }

    /// Create a fresh, never-used group called `name` under benchbox's parent group and apply
    /// `limits`. Fails if a group of that name exists (counters would pile up).
    pub fn create(&self, name: &str, limits: &Limits) -> Result<Box<dyn Group>> {
        match self {
            Hierarchy::V1(h) => Ok(Box::new(h.create(name, limits)?)),
            Hierarchy::V2(h) => Ok(Box::new(h.create(name, limits)?)),
        }
    }

    /// A handle on the existing group `name` (made by [`Hierarchy::create`] elsewhere: a
    /// service's, by the sandbox running it), to read its counters and pids while it runs.
    /// Removing it stays its owner's business.
    pub fn view(&self, name: &str) -> Box<dyn Group> {
        match self {
            Hierarchy::V1(h) => Box::new(h.view(name)),
            Hierarchy::V2(h) => Box::new(h.view(name)),
        }
    }

    /// Make the way to the groups now rather than on the first [`Hierarchy::create`]: on v2,
    /// benchbox leaves its own group for a leaf when it must, and the controllers are enabled
    /// down to the parent (see [`v2::V2`]). `run` does it before anything else, so a parent
    /// that cannot be used is refused before the run starts. Nothing to do on v1.
    pub fn prepare(&self) -> Result<()> {
        match self {
            Hierarchy::V1(_) => Ok(()),
            Hierarchy::V2(h) => h.prepare().map(drop),
        }
    }

    /// The directory benchbox makes its groups in: in `controller`'s hierarchy on v1 (`None`
    /// for one it does not use), the one parent on v2.
    pub fn parent_dir(&self, controller: &str) -> Option<PathBuf> {
        match self {
            Hierarchy::V1(h) => h.parent_dir(controller),
            Hierarchy::V2(h) => Some(h.parent_dir()),
        }
    }

    /// Remove groups left by benchbox processes that no longer exist (a crash or SIGKILL).
    pub fn sweep_stale(&self) {
        let parents = match self {
            Hierarchy::V1(h) => h.parent_dirs(),
            Hierarchy::V2(h) => vec![h.parent_dir()],
        };
        for parent in parents {
            let Ok(entries) = fs::read_dir(&parent) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(pid) = owner_pid(&name)
                    && !Path::new(&format!("/proc/{pid}")).exists()
                {
                    let dir = entry.path();
                    for pid in read_pids(&dir.join("cgroup.procs")).unwrap_or_default() {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                    let _ = remove_dir_retrying(&dir);
                }
            }
        }
    }
}

/// Group names are `inv-<pid>-<seq>`: the pid lets a later run tell a stale group from a live one.
pub fn group_name(seq: u64) -> String {
    format!("inv-{}-{seq}", std::process::id())
}

fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix("inv-")?.split('-').next()?.parse().ok()
}

pub use place::Placement;

/// Find the cgroup interface of the host and where benchbox's groups go in it: v2 when `root`
/// itself is a cgroup2 tree with controllers (see [`place`] for the parent), else v1 when the
/// controller hierarchies exist (the hybrid layout counts as v1: its cgroup2 mount has no
/// controllers). A user other than root needs a delegated v2 subtree
/// ([`CgroupError::NotDelegated`]). Nothing is written: the groups benchbox needs are made,
/// and it leaves its own group if it must, on the first [`Hierarchy::create`].
pub fn detect(root: &Path, placement: &Placement) -> Result<Hierarchy> {
    let controllers = root.join("cgroup.controllers");
    if let Ok(text) = fs::read_to_string(&controllers)
        && !text.trim().is_empty()
    {
        let place = place::v2(root, placement)?;
        return Ok(Hierarchy::V2(v2::V2::new(root, place)?));
    }
    if root.join("memory").is_dir() || root.join("cpu").is_dir() {
        if placement.euid != 0 {
            return Err(CgroupError::NotDelegated {
                version: Version::V1,
                reason: format!(
                    "uid {} is not root, and this host's cgroups are v1, whose groups cannot be handed to a user safely",
                    placement.euid
                ),
            });
        }
        // The same cgroup path in every controller's hierarchy.
        let parent = placement
            .parent
            .map(|asked| {
                let dir = place::resolve_parent(root, asked)?;
                Ok(dir.strip_prefix(root).unwrap_or(&dir).to_path_buf())
            })
            .transpose()?;
        return Ok(Hierarchy::V1(v1::V1::new(
            root,
            placement.proc_self_cgroup,
            parent.as_deref(),
        )?));
    }
    Err(CgroupError::NotFound(root.to_path_buf()))
}

/// Detect on the real host, with the parent `BENCHBOX_CGROUP_PARENT` names (if set).
pub fn detect_host() -> Result<Hierarchy> {
    let asked = std::env::var_os(place::PARENT_ENV).map(PathBuf::from);
    detect_host_in(asked.as_deref())
}

/// Detect on the real host, with the groups under `parent` when given (`run --cgroup-parent`;
/// an empty one is none).
pub fn detect_host_in(parent: Option<&Path>) -> Result<Hierarchy> {
    let parent = parent.filter(|p| !p.as_os_str().is_empty());
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    detect(
        Path::new("/sys/fs/cgroup"),
        &Placement {
            proc_self_cgroup: &own,
            euid: nix::unistd::geteuid().as_raw(),
            parent,
        },
    )
}

// ---- small file helpers shared by v1 and v2 ----

pub(crate) fn write_file(path: &Path, value: &str) -> Result<()> {
    // create(true) lets a temp dir of fake files stand in for cgroupfs (where the file exists).
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| CgroupError::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        })
}

pub(crate) fn read_file(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|source| CgroupError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

pub(crate) fn read_pids(procs: &Path) -> Result<Vec<i32>> {
    Ok(read_file(procs)?
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

/// Value of `key` in a flat keyed file ("key value" per line: cpu.stat, memory.events...).
pub(crate) fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        (parts.next()? == key).then(|| parts.next()?.parse().ok())?
    })
}

pub(crate) fn make_dir(path: &Path) -> Result<()> {
    fs::create_dir(path).map_err(|source| CgroupError::Io {
        action: "create",
        path: path.to_path_buf(),
        source,
    })
}

/// SIGKILL everything listed in `procs_files` until they are all empty.
pub(crate) fn kill_listed(procs_files: &[PathBuf]) -> Result<()> {
    for attempt in 0..500 {
        let mut any = false;
        for file in procs_files {
            for pid in read_pids(file).unwrap_or_default() {
                any = true;
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if !any {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(if attempt < 50 { 1 } else { 10 }));
    }
    Err(CgroupError::Busy {
        path: procs_files.first().cloned().unwrap_or_default(),
    })
}

/// rmdir, retrying while the kernel finishes releasing exited tasks (EBUSY for a short while).
pub(crate) fn remove_dir_retrying(dir: &Path) -> Result<()> {
    let mut last = None;
    for attempt in 0..200 {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            // A fake cgroup dir (tests) holds plain files that rmdir cannot remove.
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) && !is_cgroupfs(dir) => {
                return fs::remove_dir_all(dir).map_err(|source| CgroupError::Io {
                    action: "remove",
                    path: dir.to_path_buf(),
                    source,
                });
            }
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(if attempt < 20 { 1 } else { 10 }));
    }
    Err(CgroupError::Io {
        action: "remove",
        path: dir.to_path_buf(),
        source: last.unwrap(),
    })
}

fn is_cgroupfs(dir: &Path) -> bool {
    const CGROUP_SUPER_MAGIC: i64 = 0x27e0eb;
    const CGROUP2_SUPER_MAGIC: i64 = 0x63677270;
    match nix::sys::statfs::statfs(dir) {
        Ok(s) => {
            let t = s.filesystem_type().0;
            t == CGROUP_SUPER_MAGIC || t == CGROUP2_SUPER_MAGIC
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files_parse() {
        let text = "usage_usec 120\nuser_usec 100\nsystem_usec 20\n";
        assert_eq!(keyed(text, "user_usec"), Some(100));
        assert_eq!(keyed(text, "system_usec"), Some(20));
        assert_eq!(keyed(text, "nope"), None);
    }

    #[test]
    fn pressure_files_give_their_totals() {
        let text = "some avg10=1.50 avg60=0.20 avg300=0.05 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=789\n";
        assert_eq!(pressure_totals(text), (Some(123456), Some(789)));
        // Before Linux 5.13, cpu.pressure had no `full` line.
        let text = "some avg10=0.00 avg60=0.00 avg300=0.00 total=42\n";
        assert_eq!(pressure_totals(text), (Some(42), None));
        assert_eq!(pressure_totals(""), (None, None));
        assert_eq!(pressure_totals("some avg10=0.00 total=x\n"), (None, None));
    }

    #[test]
    fn pressure_is_read_from_the_three_files_and_missing_ones_stay_empty() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // No pressure files at all: v1, or a kernel booted with psi=0.
        assert_eq!(read_pressure(d), Pressure::default());
        fs::write(
            d.join("cpu.pressure"),
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=900\n",
        )
        .unwrap();
        fs::write(
            d.join("memory.pressure"),
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=20\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=10\n",
        )
        .unwrap();
        let p = read_pressure(d);
        assert_eq!(p.psi_cpu_some_us, Some(1000));
        assert_eq!(
            (p.psi_memory_some_us, p.psi_memory_full_us),
            (Some(20), Some(10))
        );
        assert_eq!(
            (p.psi_io_some_us, p.psi_io_full_us),
            (None, None),
            "no io.pressure"
        );
        // A pressure file that cannot be read (a group with `cgroup.pressure` 0 answers
        // EOPNOTSUPP): a directory stands in for it here.
        fs::create_dir(d.join("io.pressure")).unwrap();
        assert_eq!(read_pressure(d).psi_io_some_us, None);
    }

    #[test]
    fn stale_owner_pid_is_read_from_the_name() {
        assert_eq!(owner_pid("inv-1234-7"), Some(1234));
        assert_eq!(owner_pid("other"), None);
        assert!(group_name(3).starts_with(&format!("inv-{}-", std::process::id())));
    }

    const ROOT: Placement = Placement {
        proc_self_cgroup: "",
        euid: 0,
        parent: None,
    };

    #[test]
    fn detect_prefers_v2_with_controllers_and_falls_back_to_v1() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(detect(tmp.path(), &ROOT).is_err());
        for c in ["cpu", "cpuacct", "cpuset", "memory", "pids"] {
            fs::create_dir(tmp.path().join(c)).unwrap();
        }
        assert_eq!(detect(tmp.path(), &ROOT).unwrap().version(), Version::V1);
        fs::write(
            tmp.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        let h = detect(tmp.path(), &ROOT).unwrap();
        assert_eq!(h.version(), Version::V2);
        assert_eq!(h.parent_dir("memory"), Some(tmp.path().join("benchbox")));
    }

    /// The variant (name and fields) the rootless mode builds on: a user other than root on
    /// v1 is refused whatever the tree holds.
    #[test]
    fn a_user_on_v1_is_not_delegated() {
        let tmp = tempfile::tempdir().unwrap();
        for c in ["cpu", "cpuacct", "cpuset", "memory", "pids"] {
            fs::create_dir(tmp.path().join(c)).unwrap();
        }
        let user = Placement { euid: 1000, ..ROOT };
        match detect(tmp.path(), &user) {
            Err(CgroupError::NotDelegated { version, reason }) => {
                assert_eq!(version, Version::V1);
                assert_eq!(
                    reason,
                    "uid 1000 is not root, and this host's cgroups are v1, whose groups cannot be handed to a user safely"
                );
            }
            other => panic!("{other:?}"),
        }
        let e = detect(tmp.path(), &user).unwrap_err().to_string();
        assert!(
            e.starts_with("cgroup v1 cannot be delegated to this user: uid 1000 is not root")
                && e.ends_with("hint: limits need root or a delegated cgroup v2 subtree"),
            "{e}"
        );
    }

    #[test]
    fn v1_takes_an_asked_parent_in_every_hierarchy() {
        let tmp = tempfile::tempdir().unwrap();
        for c in ["cpu", "cpuacct", "cpuset", "memory", "pids"] {
            fs::create_dir(tmp.path().join(c)).unwrap();
        }
        for asked in ["/bench.slice/x", "bench.slice/x"] {
            let placement = Placement {
                parent: Some(Path::new(asked)),
                proc_self_cgroup: "4:memory:/user.slice\n",
                ..ROOT
            };
            let h = detect(tmp.path(), &placement).unwrap();
            assert_eq!(
                h.parent_dir("memory"),
                Some(tmp.path().join("memory/bench.slice/x"))
            );
            assert_eq!(
                h.parent_dir("pids"),
                Some(tmp.path().join("pids/bench.slice/x"))
            );
            assert_eq!(h.parent_dir("blkio"), None, "no blkio hierarchy here");
        }
        // Without: benchbox/ under its own group, as before.
        let placement = Placement {
            proc_self_cgroup: "4:memory:/user.slice\n",
            ..ROOT
        };
        assert_eq!(
            detect(tmp.path(), &placement).unwrap().parent_dir("memory"),
            Some(tmp.path().join("memory/user.slice/benchbox"))
        );
    }
}
