//! cgroup v2: one unified tree; a group is one directory.
//!
//! Controllers must be enabled top-down through `cgroup.subtree_control`, and a group with
//! controllers enabled for its children may hold no processes itself ("no internal
//! processes"), so benchbox's groups live under `<root>/benchbox/`, never under its own
//! cgroup. Swap is capped with `memory.swap.max = 0`. Peak memory: since Linux 6.12 writing to
//! `memory.peak` resets the peak *for that open file*, so the file is kept open from the reset
//! until the final read; older kernels give the peak since the group was created (fresh per
//! invocation, so only the container's own setup adds to it). `cgroup.kill` kills the group at
//! once where the kernel has it (5.14+).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use super::{
    Applied, CgroupError, Counters, Group, Limits, Result, Version, keyed, kill_listed, make_dir,
    read_file, read_pids, read_u64, remove_dir_retrying, write_file,
};

const WANTED: &[&str] = &["cpuset", "cpu", "io", "memory", "pids"];
const REQUIRED: &[&str] = &["cpu", "memory", "pids"];
const CPU_PERIOD_US: u64 = 100_000;

#[derive(Debug, Clone)]
pub struct V2 {
    root: PathBuf,
    /// The controllers this tree offers, among the ones benchbox uses.
    controllers: Vec<String>,
}

impl V2 {
    pub fn new(root: &Path) -> Result<V2> {
        let available = read_file(&root.join("cgroup.controllers"))?;
        let available: Vec<&str> = available.split_whitespace().collect();
        for &c in REQUIRED {
            if !available.contains(&c) {
                return Err(CgroupError::MissingController {
                    controller: c.into(),
                    root: root.to_path_buf(),
                });
            }
        }
        let controllers = WANTED
            .iter()
            .filter(|c| available.contains(c))
            .map(|c| c.to_string())
            .collect();
        Ok(V2 {
            root: root.to_path_buf(),
            controllers,
        })
    }

    pub(crate) fn parent_dir(&self) -> PathBuf {
        self.root.join("benchbox")
    }

    fn enable_line(&self) -> String {
        self.controllers
            .iter()
            .map(|c| format!("+{c}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn create(&self, name: &str, limits: &Limits) -> Result<V2Group> {
        let parent = self.parent_dir();
        let enable = self.enable_line();
        write_file(&self.root.join("cgroup.subtree_control"), &enable)?;
        if !parent.is_dir() {
            std::fs::create_dir_all(&parent).map_err(|source| CgroupError::Io {
                action: "create",
                path: parent.clone(),
                source,
            })?;
        }
        write_file(&parent.join("cgroup.subtree_control"), &enable)?;
        let dir = parent.join(name);
        make_dir(&dir)?;
        let mut group = V2Group {
            dir,
            applied: Applied::default(),
            peak: Mutex::new(None),
            has_cpuset: self.controllers.iter().any(|c| c == "cpuset"),
        };
        match group.apply(limits) {
            Ok(applied) => {
                group.applied = applied;
                Ok(group)
            }
            Err(e) => {
                let _ = group.remove();
                Err(e)
            }
        }
    }
}

#[derive(Debug)]
pub struct V2Group {
    dir: PathBuf,
    applied: Applied,
    /// `memory.peak` opened at reset time (per-fd peak, Linux 6.12+).
    peak: Mutex<Option<File>>,
    has_cpuset: bool,
}

impl V2Group {
    fn apply(&self, limits: &Limits) -> Result<Applied> {
        let d = &self.dir;
        if let Some(cpus) = &limits.cpus {
            if !self.has_cpuset {
                return Err(CgroupError::MissingController {
                    controller: "cpuset".into(),
                    root: d.clone(),
                });
            }
            write_file(&d.join("cpuset.cpus"), cpus)?;
        }
        let quota = match limits.cpu_quota {
            Some(cores) => ((cores * CPU_PERIOD_US as f64).round() as u64)
                .max(1000)
                .to_string(),
            None => "max".to_string(),
        };
        write_file(&d.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))?;
        if let Some(bytes) = limits.memory {
            write_file(&d.join("memory.max"), &bytes.to_string())?;
        }
        // Never swap, limit or not: swapping would turn a memory benchmark into a disk one.
        if d.join("memory.swap.max").exists() || !is_real(d) {
            write_file(&d.join("memory.swap.max"), "0")?;
        }
        let pids = limits.pids.map_or("max".to_string(), |p| p.to_string());
        write_file(&d.join("pids.max"), &pids)?;
        Ok(self.read_applied())
    }

    fn read_applied(&self) -> Applied {
        let d = &self.dir;
        let read = |f: &str| read_file(&d.join(f)).ok().map(|s| s.trim().to_string());
        let number = |f: &str| read(f).and_then(|s| s.parse::<u64>().ok());
        let cpu_max = read("cpu.max").unwrap_or_default();
        let mut parts = cpu_max.split_whitespace();
        let quota = parts
            .next()
            .and_then(|q| q.parse::<i64>().ok())
            .or(Some(-1));
        let period = parts.next().and_then(|p| p.parse().ok());
        Applied {
            cgroup_version: Some(Version::V2),
            // cpuset.cpus.effective is what the kernel actually grants (empty cpus = inherited).
            cpus: read("cpuset.cpus.effective")
                .filter(|s| !s.is_empty())
                .or_else(|| read("cpuset.cpus")),
            mems: read("cpuset.mems.effective").filter(|s| !s.is_empty()),
            cpu_quota_us: quota,
            cpu_period_us: period,
            memory_bytes: number("memory.max"),
            memory_swap_bytes: number("memory.swap.max"),
            pids: number("pids.max"),
        }
    }
}

/// A fake tree (tests) is a plain directory; real cgroupfs creates control files on mkdir.
fn is_real(dir: &Path) -> bool {
    dir.join("cgroup.procs").exists()
}

/// `dir` and every directory below it, deepest first. A group's child groups are directories;
/// the workload makes them when it may write its cgroup view (a privileged one can remount it),
/// as systemd or a container runtime inside it would.
fn subtree(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&entry.path(), out);
                }
            }
        }
        out.push(dir.to_path_buf());
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out
}

/// Sum `rbytes=` and `wbytes=` over the devices of an `io.stat` file.
fn io_stat_bytes(text: &str) -> (u64, u64) {
    let mut read = 0;
    let mut write = 0;
    for field in text.split_whitespace() {
        if let Some(v) = field.strip_prefix("rbytes=") {
            read += v.parse::<u64>().unwrap_or(0);
        } else if let Some(v) = field.strip_prefix("wbytes=") {
            write += v.parse::<u64>().unwrap_or(0);
        }
    }
    (read, write)
}

impl Group for V2Group {
    fn dirs(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }

    fn container_view(&self) -> Vec<(String, PathBuf)> {
        vec![(String::new(), self.dir.clone())]
    }

    fn procs_files(&self) -> Vec<PathBuf> {
        vec![self.dir.join("cgroup.procs")]
    }

    /// v2 moves whole processes only (`cgroup.threads` is for threaded subtrees); "0" means
    /// the writer itself.
    fn join_files(&self) -> Vec<PathBuf> {
        vec![self.dir.join("cgroup.procs")]
    }

    fn applied(&self) -> Applied {
        self.applied.clone()
    }

    fn reset_peak(&self) -> Result<()> {
        let path = self.dir.join("memory.peak");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path);
        if let Ok(mut file) = file
            && file.write_all(b"reset\n").is_ok()
        {
            *self.peak.lock().unwrap() = Some(file);
        }
        Ok(())
    }

    fn counters(&self) -> Result<Counters> {
        let d = &self.dir;
        let cpu_stat = read_file(&d.join("cpu.stat")).unwrap_or_default();
        let events = read_file(&d.join("memory.events")).unwrap_or_default();
        let io = read_file(&d.join("io.stat")).ok();
        let peak = match self.peak.lock().unwrap().as_mut() {
            Some(file) => {
                let mut text = String::new();
                file.seek(SeekFrom::Start(0))
                    .ok()
                    .and_then(|_| file.read_to_string(&mut text).ok());
                text.trim().parse().ok()
            }
            None => read_u64(&d.join("memory.peak")),
        };
        let usec = |key: &str| Duration::from_micros(keyed(&cpu_stat, key).unwrap_or(0));
        let (io_read, io_write) = io.as_deref().map(io_stat_bytes).unzip();
        Ok(Counters {
            cpu_user: usec("user_usec"),
            cpu_system: usec("system_usec"),
            memory_peak: peak,
            io_read_bytes: io_read,
            io_write_bytes: io_write,
            oom_kills: keyed(&events, "oom_kill").unwrap_or(0),
            nr_throttled: keyed(&cpu_stat, "nr_throttled").unwrap_or(0),
            throttled: usec("throttled_usec"),
        })
    }

    fn memory_current(&self) -> Option<u64> {
        read_u64(&self.dir.join("memory.current"))
    }

    fn pids(&self) -> Result<Vec<i32>> {
        read_pids(&self.dir.join("cgroup.procs"))
    }

    /// Kills the processes of the child groups too: `cgroup.kill` kills the whole subtree, and
    /// without it (before 5.14) every group's `cgroup.procs` is emptied.
    fn kill_all(&self) -> Result<()> {
        let kill = self.dir.join("cgroup.kill");
        if kill.exists() && is_real(&self.dir) {
            let _ = write_file(&kill, "1");
        }
        let procs: Vec<PathBuf> = subtree(&self.dir)
            .iter()
            .map(|dir| dir.join("cgroup.procs"))
            .collect();
        kill_listed(&procs)
    }

    /// Removes the child groups first: a group with children cannot be removed (EBUSY).
    fn remove(&self) -> Result<()> {
        *self.peak.lock().unwrap() = None;
        let killed = self.kill_all();
        for dir in subtree(&self.dir) {
            remove_dir_retrying(&dir)?;
        }
        killed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn fake_root(controllers: &str) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("cgroup.controllers"), controllers).unwrap();
        fs::write(tmp.path().join("cgroup.subtree_control"), "").unwrap();
        tmp
    }

    #[test]
    fn controllers_are_enabled_top_down_and_limits_written() {
        let root = fake_root("cpuset cpu io memory hugetlb pids rdma misc\n");
        let h = V2::new(root.path()).unwrap();
        let limits = Limits {
            cpus: Some("0-1".into()),
            cpu_quota: Some(0.5),
            memory: Some(1 << 30),
            pids: Some(64),
        };
        let g = h.create("inv-1-1", &limits).unwrap();
        let read = |p: &str| fs::read_to_string(root.path().join(p)).unwrap();
        assert_eq!(
            read("cgroup.subtree_control"),
            "+cpuset +cpu +io +memory +pids"
        );
        assert_eq!(
            read("benchbox/cgroup.subtree_control"),
            "+cpuset +cpu +io +memory +pids"
        );
        assert_eq!(read("benchbox/inv-1-1/cpuset.cpus"), "0-1");
        assert_eq!(read("benchbox/inv-1-1/cpu.max"), "50000 100000");
        assert_eq!(read("benchbox/inv-1-1/memory.max"), "1073741824");
        assert_eq!(read("benchbox/inv-1-1/memory.swap.max"), "0");
        assert_eq!(read("benchbox/inv-1-1/pids.max"), "64");
        let a = g.applied();
        assert_eq!(a.cgroup_version, Some(Version::V2));
        assert_eq!(a.cpus.as_deref(), Some("0-1"));
        assert_eq!(
            (a.cpu_quota_us, a.cpu_period_us),
            (Some(50_000), Some(100_000))
        );
        assert_eq!(a.memory_bytes, Some(1 << 30));
        assert_eq!(a.memory_swap_bytes, Some(0));
        assert_eq!(a.pids, Some(64));
        assert_eq!(
            g.procs_files(),
            vec![root.path().join("benchbox/inv-1-1/cgroup.procs")]
        );
    }

    #[test]
    fn unlimited_is_written_as_max() {
        let root = fake_root("cpu memory pids\n");
        let g = V2::new(root.path())
            .unwrap()
            .create("g", &Limits::default())
            .unwrap();
        assert_eq!(
            fs::read_to_string(root.path().join("benchbox/g/cpu.max")).unwrap(),
            "max 100000"
        );
        assert_eq!(
            fs::read_to_string(root.path().join("benchbox/g/pids.max")).unwrap(),
            "max"
        );
        assert_eq!(g.applied().cpu_quota_us, Some(-1));
        // No cpuset controller: asking for a cpuset is an error naming it, and nothing is left.
        let h = V2::new(root.path()).unwrap();
        let err = h
            .create(
                "h",
                &Limits {
                    cpus: Some("0".into()),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(err.to_string().contains("`cpuset`"), "{err}");
        assert!(!root.path().join("benchbox/h").exists());
    }

    #[test]
    fn counters_come_from_cpu_stat_memory_events_and_io_stat() {
        let root = fake_root("cpuset cpu io memory pids\n");
        let g = V2::new(root.path())
            .unwrap()
            .create("g", &Limits::default())
            .unwrap();
        let d = root.path().join("benchbox/g");
        fs::write(d.join("cpu.stat"), "usage_usec 3000\nuser_usec 2000\nsystem_usec 1000\nnr_periods 5\nnr_throttled 2\nthrottled_usec 40\n").unwrap();
        fs::write(
            d.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        fs::write(d.join("memory.peak"), "123456\n").unwrap();
        fs::write(d.join("io.stat"), "8:0 rbytes=100 wbytes=20 rios=1 wios=1 dbytes=0 dios=0\n8:16 rbytes=5 wbytes=1 rios=1 wios=1\n").unwrap();
        let c = g.counters().unwrap();
        assert_eq!(c.cpu_user, Duration::from_millis(2));
        assert_eq!(c.cpu_system, Duration::from_millis(1));
        assert_eq!(c.oom_kills, 1);
        assert_eq!(c.memory_peak, Some(123456));
        assert_eq!((c.io_read_bytes, c.io_write_bytes), (Some(105), Some(21)));
        assert_eq!(
            (c.nr_throttled, c.throttled),
            (2, Duration::from_micros(40))
        );
        g.remove().unwrap();
        assert!(!d.exists());
    }

    /// Linux 6.12+: writing to `memory.peak` resets the peak for that open file, so the file
    /// written at the reset is the one read at the end. This fake-file test is the only check of
    /// that path: the VM lane's kernel (Debian 12's 6.1) has a read-only memory.peak (see
    /// `v2_memory_peak_and_its_reset_on_this_kernel` in tests/sandbox.rs).
    #[test]
    fn the_peak_is_reset_and_read_through_one_open_file() {
        let root = fake_root("cpu memory pids\n");
        let g = V2::new(root.path())
            .unwrap()
            .create("g", &Limits::default())
            .unwrap();
        let peak = root.path().join("benchbox/g/memory.peak");
        fs::write(&peak, "999999\n").unwrap();
        g.reset_peak().unwrap();
        assert!(fs::read_to_string(&peak).unwrap().starts_with("reset\n"));
        // The kernel's answer through that file after the reset (the same inode, rewritten).
        fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&peak)
            .unwrap()
            .write_all(b"4096\n")
            .unwrap();
        assert_eq!(g.counters().unwrap().memory_peak, Some(4096));
        g.remove().unwrap();
    }

    #[test]
    fn child_groups_are_removed_with_the_group() {
        let root = fake_root("cpu memory pids\n");
        let g = V2::new(root.path())
            .unwrap()
            .create("g", &Limits::default())
            .unwrap();
        let d = root.path().join("benchbox/g");
        fs::create_dir_all(d.join("a/b")).unwrap();
        fs::create_dir(d.join("c")).unwrap();
        let order = subtree(&d);
        assert_eq!(order.len(), 4);
        assert_eq!(order.last(), Some(&d), "the group itself last");
        let pos = |p: &Path| order.iter().position(|o| o == p).unwrap();
        assert!(pos(&d.join("a/b")) < pos(&d.join("a")), "{order:?}");
        g.remove().unwrap();
        assert!(!d.exists());
    }

    #[test]
    fn missing_memory_controller_is_an_error() {
        let root = fake_root("cpu pids\n");
        assert!(
            V2::new(root.path())
                .unwrap_err()
                .to_string()
                .contains("`memory`")
        );
    }
}
