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

pub mod v1;
pub mod v2;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which cgroup interface the host offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    V1,
    V2,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        })
    }
}

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

/// The limits as the kernel reports them after we wrote them (read back, not echoed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub cgroup_version: Option<Version>,
    pub cpus: Option<String>,
    pub mems: Option<String>,
    pub cpu_quota_us: Option<i64>,
    pub cpu_period_us: Option<u64>,
    pub memory_bytes: Option<u64>,
    /// Memory + swap limit (v1 memsw) or swap limit (v2 swap.max); equal to memory / 0 = no swap.
    pub memory_swap_bytes: Option<u64>,
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
    /// A non-root user without a cgroup v2 subtree of its own to create groups in (on v1,
    /// `version` is V1: v1 has no safe delegation). The rootless mode then runs without limits.
    #[error("no delegated cgroup {version} subtree for this user: {reason}")]
    NotDelegated { version: Version, reason: String },
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

/// Find the cgroup interface of the host: v2 when `root` itself is a cgroup2 tree with
/// controllers, else v1 when the controller hierarchies exist (the hybrid layout counts as v1:
/// its cgroup2 mount has no controllers).
pub fn detect(root: &Path, proc_self_cgroup: &str) -> Result<Hierarchy> {
    let controllers = root.join("cgroup.controllers");
    if let Ok(text) = fs::read_to_string(&controllers)
        && !text.trim().is_empty()
    {
        return Ok(Hierarchy::V2(v2::V2::new(root)?));
    }
    if root.join("memory").is_dir() || root.join("cpu").is_dir() {
        return Ok(Hierarchy::V1(v1::V1::new(root, proc_self_cgroup)?));
    }
    Err(CgroupError::NotFound(root.to_path_buf()))
}

/// Detect on the real host.
pub fn detect_host() -> Result<Hierarchy> {
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let root = Path::new("/sys/fs/cgroup");
    // MINIMAL STAND-IN (i11-rootless), to be replaced by i11-cgroup's delegation detection: a
    // non-root user creates no groups outside a delegated v2 subtree.
    if !nix::unistd::geteuid().is_root() {
        return not_delegated(root);
    }
    detect(root, &own)
}

/// MINIMAL STAND-IN (i11-rootless): what a non-root user is told until delegated subtrees are
/// detected.
fn not_delegated(root: &Path) -> Result<Hierarchy> {
    let version = match detect(root, "") {
        Ok(h) => h.version(),
        Err(_) if root.join("cgroup.controllers").exists() => Version::V2,
        Err(_) => Version::V1,
    };
    Err(CgroupError::NotDelegated {
        version,
        reason: "benchbox is not running in a cgroup subtree it owns".into(),
    })
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
    fn stale_owner_pid_is_read_from_the_name() {
        assert_eq!(owner_pid("inv-1234-7"), Some(1234));
        assert_eq!(owner_pid("other"), None);
        assert!(group_name(3).starts_with(&format!("inv-{}-", std::process::id())));
    }

    #[test]
    fn detect_prefers_v2_with_controllers_and_falls_back_to_v1() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(detect(tmp.path(), "").is_err());
        for c in ["cpu", "cpuacct", "cpuset", "memory", "pids"] {
            fs::create_dir(tmp.path().join(c)).unwrap();
        }
        assert_eq!(detect(tmp.path(), "").unwrap().version(), Version::V1);
        fs::write(
            tmp.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        assert_eq!(detect(tmp.path(), "").unwrap().version(), Version::V2);
    }
}
