//! cgroup v2: one unified tree; a group is one directory.
//!
//! Controllers must be enabled top-down through `cgroup.subtree_control`, and a group with
//! controllers enabled for its children may hold no processes itself ("no internal
//! processes"). Where the groups go is [`super::place`]'s decision (by default
//! `<root>/benchbox/`, or benchbox's own delegated group); before the first group, every level
//! down to that parent is made and given the controllers, after benchbox's own group, when it
//! is one of them, has been emptied into its leaf. Swap is capped with `memory.swap.max = 0`.
//! Peak memory: since Linux 6.12 writing to `memory.peak` resets the peak *for that open
//! file*, so the file is kept open from the reset until the final read; older kernels give the
//! peak since the group was created (fresh per invocation, so only the container's own setup
//! adds to it). `cgroup.kill` kills the group at once where the kernel has it (5.14+). The
//! group's pressure files (`*.pressure`) give its stall times.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::place::{LEAF, Place};

use super::{
    Applied, CgroupError, Counters, Group, Limits, Result, Version, keyed, kill_listed, make_dir,
    read_file, read_pids, read_u64, remove_dir_retrying, write_file,
};

const WANTED: &[&str] = &["cpuset", "cpu", "io", "memory", "pids"];
const REQUIRED: &[&str] = &["cpu", "memory", "pids"];
const CPU_PERIOD_US: u64 = 100_000;

#[derive(Debug, Clone)]
pub struct V2 {
    place: Place,
    /// The controllers enabled for the invocation groups, once the way down to the parent is
    /// made: on the first [`V2::create`] (detecting the hierarchy writes nothing).
    ready: Arc<Mutex<Option<Vec<String>>>>,
}

impl V2 {
    /// Fails when the highest group benchbox may write does not offer cpu, memory and pids.
    pub fn new(root: &Path, place: Place) -> Result<V2> {
        let top = place.levels.first().map_or(root, PathBuf::as_path);
        let available = read_file(&top.join("cgroup.controllers"))?;
        for &c in REQUIRED {
            if !available.split_whitespace().any(|a| a == c) {
                return Err(CgroupError::MissingController {
                    controller: c.into(),
                    root: top.to_path_buf(),
                });
            }
        }
        Ok(V2 {
            place,
            ready: Arc::default(),
        })
    }

    pub(crate) fn parent_dir(&self) -> PathBuf {
        self.place.parent.clone()
    }

    /// A handle on the existing group `name`, to read its counters and pids (its owner applies
    /// its limits and removes it).
    pub fn view(&self, name: &str) -> V2Group {
        V2Group {
            dir: self.place.parent.join(name),
            applied: Applied::default(),
            peak: Mutex::new(None),
            has_cpuset: false,
        }
    }

    pub fn create(&self, name: &str, limits: &Limits) -> Result<V2Group> {
        let controllers = self.prepare()?;
        let dir = self.place.parent.join(name);
        make_dir(&dir)?;
        let mut group = V2Group {
            dir,
            applied: Applied::default(),
            peak: Mutex::new(None),
            has_cpuset: controllers.iter().any(|c| c == "cpuset"),
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

    /// The controllers the invocation groups get, making the way down to the parent first
    /// (once).
    pub(crate) fn prepare(&self) -> Result<Vec<String>> {
        let mut ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(controllers) = &*ready {
            return Ok(controllers.clone());
        }
        let controllers = self.enable_down_to_parent()?;
        *ready = Some(controllers.clone());
        Ok(controllers)
    }

    /// Every level from the highest benchbox may write down to the parent: made if missing,
    /// with the controllers benchbox uses enabled for the level below (those the level offers:
    /// cpu, memory and pids must be there, cpuset and io are used when they are). benchbox's
    /// own group, when it is one of them, is emptied into its leaf first.
    fn enable_down_to_parent(&self) -> Result<Vec<String>> {
        // What the level above enables: a fake tree's groups have no `cgroup.controllers`.
        let mut offered: Option<Vec<String>> = None;
        for level in &self.place.levels {
            match std::fs::create_dir(level) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    return Err(CgroupError::Io {
                        action: "create",
                        path: level.clone(),
                        source: e,
                    });
                }
                _ => {}
            }
            let available = controller_words(&level.join("cgroup.controllers"))
                .or(offered)
                .unwrap_or_default();
            let enabled =
                controller_words(&level.join("cgroup.subtree_control")).unwrap_or_default();
            let missing: Vec<&str> = WANTED
                .iter()
                .copied()
                .filter(|c| available.iter().any(|a| a == c) && !enabled.iter().any(|e| e == c))
                .collect();
            if !missing.is_empty() {
                self.enable(level, &missing)?;
            }
            offered = controller_words(&level.join("cgroup.subtree_control"));
        }
        let controllers: Vec<String> = offered
            .unwrap_or_default()
            .into_iter()
            .filter(|c| WANTED.contains(&c.as_str()))
            .collect();
        for &c in REQUIRED {
            if !controllers.iter().any(|e| e == c) {
                return Err(CgroupError::MissingController {
                    controller: c.into(),
                    root: self.place.parent.clone(),
                });
            }
        }
        Ok(controllers)
    }

    /// Enable `controllers` for the children of `level`: all in one write, else one by one
    /// (an optional one the level cannot enable is left out). In benchbox's own group, its
    /// processes move out first; a process that comes in meanwhile makes the write fail with
    /// EBUSY, and the move is done again.
    fn enable(&self, level: &Path, controllers: &[&str]) -> Result<()> {
        let file = level.join("cgroup.subtree_control");
        let line = |cs: &[&str]| {
            cs.iter()
                .map(|c| format!("+{c}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let busy = |e: &CgroupError| matches!(e, CgroupError::Io { source, .. } if source.raw_os_error() == Some(libc::EBUSY));
        let evacuate = self.place.evacuate.as_deref() == Some(level);
        for _ in 0..10 {
            if evacuate {
                move_processes_to_leaf(level)?;
            }
            let all = write_file(&file, &line(controllers));
            let result = match all {
                Err(e) if !busy(&e) => {
                    controllers
                        .iter()
                        .try_for_each(|c| match write_file(&file, &line(&[c])) {
                            Err(e) if !busy(&e) && !REQUIRED.contains(c) => Ok(()),
                            other => other,
                        })
                }
                other => other,
            };
            match result {
                Err(e) if busy(&e) && evacuate => continue,
                Err(e) if busy(&e) => break,
                other => return other,
            }
        }
        Err(CgroupError::InternalProcesses {
            path: level.to_path_buf(),
            controllers: controllers.join(", "),
        })
    }
}

/// The controllers named in a `cgroup.controllers` or `cgroup.subtree_control` file (a fake
/// tree's may keep the `+` of what was written); `None` when it cannot be read.
fn controller_words(path: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.split_whitespace()
            .map(|w| w.trim_start_matches('+').to_string())
            .collect(),
    )
}

/// Move every process of the group `own` into its leaf ([`LEAF`], made if missing): benchbox
/// itself, and whatever else runs in the group it was given (the shell of a delegated scope),
/// all of it the user's. Processes that exit meanwhile are skipped.
fn move_processes_to_leaf(own: &Path) -> Result<()> {
    let leaf = own.join(LEAF);
    match std::fs::create_dir(&leaf) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(CgroupError::Io {
                action: "create",
                path: leaf,
                source: e,
            });
        }
        _ => {}
    }
    let pids = read_pids(&own.join("cgroup.procs"))?;
    if pids.is_empty() {
        return Ok(());
    }
    let target = leaf.join("cgroup.procs");
    let io = |source| CgroupError::Io {
        action: "move benchbox's processes into",
        path: target.clone(),
        source,
    };
    // create(true) lets a temp dir of fake files stand in for cgroupfs. One pid per write.
    let mut procs = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&target)
        .map_err(io)?;
    for pid in pids {
        match procs.write_all(format!("{pid}\n").as_bytes()) {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            other => other.map_err(io)?,
        }
    }
    Ok(())
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

    fn birth_dir(&self) -> Option<PathBuf> {
        Some(self.dir.clone())
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
            pressure: super::read_pressure(d),
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

    /// The hierarchy root gets outside any delegated group: groups under `<root>/benchbox`.
    fn hierarchy(root: &Path) -> Result<V2> {
        let placement = super::super::Placement {
            proc_self_cgroup: "0::/system.slice/lane.service\n",
            euid: 0,
            parent: None,
        };
        V2::new(root, super::super::place::v2(root, &placement)?)
    }

    fn fake_root(controllers: &str) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("cgroup.controllers"), controllers).unwrap();
        fs::write(tmp.path().join("cgroup.subtree_control"), "").unwrap();
        tmp
    }

    #[test]
    fn controllers_are_enabled_top_down_and_limits_written() {
        let root = fake_root("cpuset cpu io memory hugetlb pids rdma misc\n");
        let h = hierarchy(root.path()).unwrap();
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

    /// A delegated scope as the parent: benchbox's processes (and the scope's others) move
    /// into its leaf, then the controllers the scope offers are enabled in it, and the groups
    /// are siblings of the leaf. Nothing is written before the first group.
    #[test]
    fn in_its_own_group_benchbox_moves_into_a_leaf_before_enabling_controllers() {
        let root = fake_root("cpuset cpu io memory pids\n");
        let scope = root.path().join("user.slice/run-r1.scope");
        fs::create_dir_all(&scope).unwrap();
        // What the delegation offers (no io, no cpuset), and who runs there.
        fs::write(scope.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        fs::write(scope.join("cgroup.subtree_control"), "").unwrap();
        fs::write(scope.join("cgroup.procs"), "4242\n4343\n").unwrap();
        let place = Place {
            parent: scope.clone(),
            levels: vec![scope.clone()],
            evacuate: Some(scope.clone()),
        };
        let h = V2::new(root.path(), place).unwrap();
        assert!(!scope.join(LEAF).exists(), "detection writes nothing");
        assert_eq!(h.prepare().unwrap(), ["cpu", "memory", "pids"]);
        let read = |p: &Path| fs::read_to_string(p).unwrap();
        assert_eq!(read(&scope.join(LEAF).join("cgroup.procs")), "4242\n4343\n");
        assert_eq!(
            read(&scope.join("cgroup.subtree_control")),
            "+cpu +memory +pids"
        );
        let g = h.create("inv-1-1", &Limits::default()).unwrap();
        assert_eq!(g.dirs(), [scope.join("inv-1-1")]);
        // Above the delegated scope nothing is benchbox's to change.
        assert_eq!(read(&root.path().join("cgroup.subtree_control")), "");
        // Done once: the next group moves nothing again.
        fs::write(scope.join(LEAF).join("cgroup.procs"), "").unwrap();
        let h2 = h.create("inv-1-2", &Limits::default()).unwrap();
        assert_eq!(read(&scope.join(LEAF).join("cgroup.procs")), "");
        // The scope offers no cpuset: a cpuset limit names it.
        let e = h
            .create(
                "inv-1-3",
                &Limits {
                    cpus: Some("0".into()),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(e.to_string().contains("`cpuset`"), "{e}");
        g.remove().unwrap();
        h2.remove().unwrap();
    }

    /// A delegation without memory (say `Delegate=cpu pids`): refused at the first group,
    /// naming what is missing and where.
    #[test]
    fn a_parent_without_a_required_controller_is_an_error() {
        let root = fake_root("cpu memory pids\n");
        let scope = root.path().join("app.slice/x.scope");
        fs::create_dir_all(&scope).unwrap();
        fs::write(scope.join("cgroup.controllers"), "cpu pids\n").unwrap();
        let place = Place {
            parent: scope.clone(),
            levels: vec![scope.clone()],
            evacuate: None,
        };
        let e = V2::new(root.path(), place).unwrap_err().to_string();
        assert!(
            e.contains("`memory`") && e.contains(&scope.display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn unlimited_is_written_as_max() {
        let root = fake_root("cpu memory pids\n");
        let g = hierarchy(root.path())
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
        let h = hierarchy(root.path()).unwrap();
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
        let g = hierarchy(root.path())
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
        let g = hierarchy(root.path())
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
        let g = hierarchy(root.path())
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
            hierarchy(root.path())
                .unwrap_err()
                .to_string()
                .contains("`memory`")
        );
    }
}
