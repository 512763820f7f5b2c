//! cgroup v1: one hierarchy per controller (`<root>/cpu`, `<root>/memory`, ...).
//!
//! An invocation's group is a directory of the same name in every hierarchy benchbox uses,
//! nested under the caller's own cgroup (from `/proc/self/cgroup`) plus `benchbox/`, so a
//! limit placed on benchbox itself still holds for its workloads. v1 quirks handled here:
//! a new cpuset group starts with no cpus and no mems (both must be copied down before a task
//! may join); swap is only capped through `memory.memsw.limit_in_bytes` (when the kernel has
//! swap accounting); peak memory is reset by writing 0 to `memory.max_usage_in_bytes`; there is
//! no `cgroup.kill`, so killing means signalling every listed pid until none is left.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{
    Applied, CgroupError, Counters, Group, Limits, Result, Version, keyed, kill_listed, make_dir,
    read_file, read_pids, read_u64, remove_dir_retrying, write_file,
};

/// Controllers benchbox needs (must exist) and may use (used when present).
const REQUIRED: &[&str] = &["cpu", "cpuacct", "cpuset", "memory", "pids"];
const OPTIONAL: &[&str] = &["blkio"];

const CFS_PERIOD_US: u64 = 100_000;

#[derive(Debug, Clone)]
pub struct V1 {
    /// controller name -> benchbox's parent directory in that hierarchy.
    parents: BTreeMap<String, PathBuf>,
}

impl V1 {
    /// `proc_self_cgroup` is the text of `/proc/self/cgroup` (lines `id:controllers:/path`);
    /// `parent`, a cgroup path (relative) that replaces `<own group>/benchbox` in every
    /// hierarchy (`run --cgroup-parent`).
    pub fn new(root: &Path, proc_self_cgroup: &str, parent: Option<&Path>) -> Result<V1> {
        let mut parents = BTreeMap::new();
        for &controller in REQUIRED.iter().chain(OPTIONAL) {
            let mount = root.join(controller);
            if !mount.is_dir() {
                if REQUIRED.contains(&controller) {
                    return Err(CgroupError::MissingController {
                        controller: controller.into(),
                        root: root.to_path_buf(),
                    });
                }
                continue;
            }
            let dir = match parent {
                Some(parent) => mount.join(parent),
                None => mount
                    .join(own_path(proc_self_cgroup, controller))
                    .join("benchbox"),
            };
            parents.insert(controller.to_string(), dir);
        }
        Ok(V1 { parents })
    }

    pub(crate) fn parent_dirs(&self) -> Vec<PathBuf> {
        self.parents.values().cloned().collect()
    }

    pub(crate) fn parent_dir(&self, controller: &str) -> Option<PathBuf> {
        self.parents.get(controller).cloned()
    }

    /// A handle on the existing group `name`, to read its counters and pids (its owner applies
    /// its limits and removes it).
    pub fn view(&self, name: &str) -> V1Group {
        V1Group {
            dirs: self
                .parents
                .iter()
                .map(|(c, parent)| (c.clone(), parent.join(name)))
                .collect(),
            applied: Applied::default(),
        }
    }

    pub fn create(&self, name: &str, limits: &Limits) -> Result<V1Group> {
        for (controller, parent) in &self.parents {
            if parent.is_dir() {
                continue;
            }
            // Each missing level, top down (an asked parent may be several deep).
            let mut missing: Vec<&Path> =
                parent.ancestors().take_while(|dir| !dir.is_dir()).collect();
            missing.reverse();
            for dir in missing {
                match std::fs::create_dir(dir) {
                    // Another benchbox made it a moment ago.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    made => made.map_err(|source| CgroupError::Io {
                        action: "create",
                        path: dir.to_path_buf(),
                        source,
                    })?,
                }
                if controller == "cpuset" {
                    // A fresh v1 cpuset has empty cpus/mems: inherit them from the level above.
                    let above = dir.parent().unwrap_or(dir);
                    for file in ["cpuset.cpus", "cpuset.mems"] {
                        let value = read_file(&above.join(file))?;
                        write_file(&dir.join(file), value.trim())?;
                    }
                }
            }
        }
        let mut dirs = BTreeMap::new();
        for (controller, parent) in &self.parents {
            if !needed(controller, limits) {
                continue;
            }
            let dir = parent.join(name);
            if let Err(e) = make_dir(&dir) {
                let group = V1Group {
                    dirs,
                    applied: Applied::default(),
                };
                let _ = group.remove();
                return Err(e);
            }
            dirs.insert(controller.clone(), dir);
        }
        let mut group = V1Group {
            dirs,
            applied: Applied::default(),
        };
        match group.apply(limits, &self.parents) {
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

/// Whether an invocation with these limits needs a group in `controller`'s hierarchy. Each
/// hierarchy costs a directory to create, a join and a removal per invocation (~0.2 ms
/// together): CPU time, memory and I/O are always measured; cpuset, cpu (quota) and pids only
/// matter with their limit (without one, the workload shares benchbox's own group there, which
/// is what an unlimited group would be).
fn needed(controller: &str, limits: &Limits) -> bool {
    match controller {
        "cpuset" => limits.cpus.is_some(),
        "cpu" => limits.cpu_quota.is_some(),
        "pids" => limits.pids.is_some(),
        _ => true,
    }
}

/// The cgroup path of this process in `controller`'s hierarchy ("" for the root).
fn own_path(proc_self_cgroup: &str, controller: &str) -> String {
    proc_self_cgroup
        .lines()
        .find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            controllers
                .split(',')
                .any(|c| c == controller)
                .then(|| path.trim_start_matches('/').to_string())
        })
        .unwrap_or_default()
}

#[derive(Debug)]
pub struct V1Group {
    dirs: BTreeMap<String, PathBuf>,
    applied: Applied,
}

impl V1Group {
    fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs.get(controller).map(PathBuf::as_path)
    }

    /// `parents`: benchbox's own directories per controller (where a workload without a group
    /// of its own in a hierarchy runs).
    fn apply(&self, limits: &Limits, parents: &BTreeMap<String, PathBuf>) -> Result<Applied> {
        if let (Some(cpuset), Some(cpus)) = (self.dir("cpuset"), &limits.cpus) {
            write_file(&cpuset.join("cpuset.cpus"), cpus)?;
            let mems = read_file(&parents["cpuset"].join("cpuset.mems"))?;
            write_file(&cpuset.join("cpuset.mems"), mems.trim())?;
        }

        if let (Some(cpu), Some(cores)) = (self.dir("cpu"), limits.cpu_quota) {
            write_file(&cpu.join("cpu.cfs_period_us"), &CFS_PERIOD_US.to_string())?;
            let quota = ((cores * CFS_PERIOD_US as f64).round() as i64).max(1000);
            write_file(&cpu.join("cpu.cfs_quota_us"), &quota.to_string())?;
        }

        let memory = self.dir("memory").expect("memory is required");
        if let Some(bytes) = limits.memory {
            write_file(&memory.join("memory.limit_in_bytes"), &bytes.to_string())?;
            // memsw caps memory+swap: equal to the memory limit means no swap at all.
            let memsw = memory.join("memory.memsw.limit_in_bytes");
            if memsw.exists() {
                write_file(&memsw, &bytes.to_string())?;
            }
        }
        // Never swap, limit or not: swapping would turn a memory benchmark into a disk one.
        let _ = write_file(&memory.join("memory.swappiness"), "0");

        if let (Some(pids), Some(max)) = (self.dir("pids"), limits.pids) {
            write_file(&pids.join("pids.max"), &max.to_string())?;
        }

        Ok(self.read_applied(parents))
    }

    /// The limits as the kernel holds them; what has no group of its own is benchbox's.
    fn read_applied(&self, parents: &BTreeMap<String, PathBuf>) -> Applied {
        let own_or_parent = |c: &str| self.dir(c).or_else(|| parents.get(c).map(PathBuf::as_path));
        let cpuset = own_or_parent("cpuset").unwrap();
        let memory = self.dir("memory").unwrap();
        let read = |p: PathBuf| read_file(&p).ok().map(|s| s.trim().to_string());
        let limit_or_none = |v: Option<u64>| v.filter(|&b| b < (1 << 62));
        let cpu = own_or_parent("cpu");
        Applied {
            cgroup_version: Some(Version::V1),
            cpus: read(cpuset.join("cpuset.cpus")),
            mems: read(cpuset.join("cpuset.mems")),
            cpu_quota_us: cpu
                .and_then(|cpu| read(cpu.join("cpu.cfs_quota_us")))
                .and_then(|s| s.parse().ok()),
            cpu_period_us: cpu.and_then(|cpu| read_u64(&cpu.join("cpu.cfs_period_us"))),
            memory_bytes: limit_or_none(read_u64(&memory.join("memory.limit_in_bytes"))),
            memory_swap_bytes: limit_or_none(read_u64(&memory.join("memory.memsw.limit_in_bytes"))),
            pids: self
                .dir("pids")
                .and_then(|pids| read(pids.join("pids.max")))
                .and_then(|s| s.parse().ok()),
        }
    }
}

/// User and system CPU time. `cpuacct.usage` is exact (the scheduler's nanoseconds), but the
/// user/system split files are sampled at timer ticks (4 ms steps at HZ=250): the total comes
/// from the exact counter, split in the sampled proportion -- as the kernel itself does for
/// getrusage. With no tick sampled yet, the time is counted as user time.
fn split_cpu(total: Option<u64>, user: u64, system: u64) -> (Duration, Duration) {
    let Some(total) = total else {
        return (Duration::from_nanos(user), Duration::from_nanos(system));
    };
    if user + system == 0 {
        return (Duration::from_nanos(total), Duration::ZERO);
    }
    let user_part = (total as u128 * user as u128 / (user + system) as u128) as u64;
    (
        Duration::from_nanos(user_part),
        Duration::from_nanos(total - user_part),
    )
}

/// Sum the `Read` and `Write` rows of a blkio `io_service_bytes` file.
fn blkio_bytes(text: &str) -> (u64, u64) {
    let mut read = 0;
    let mut write = 0;
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [_, op, value] = parts[..] {
            let value: u64 = value.parse().unwrap_or(0);
            match op {
                "Read" => read += value,
                "Write" => write += value,
                _ => {}
            }
        }
    }
    (read, write)
}

impl Group for V1Group {
    fn dirs(&self) -> Vec<PathBuf> {
        self.dirs.values().cloned().collect()
    }

    fn container_view(&self) -> Vec<(String, PathBuf)> {
        self.dirs
            .iter()
            .map(|(c, d)| (c.clone(), d.clone()))
            .collect()
    }

    fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.values().map(|d| d.join("cgroup.procs")).collect()
    }

    /// `tasks`, not `cgroup.procs`: moving only the calling thread ("0") lets the kernel skip
    /// the global threadgroup lock, whose write side waits for an RCU grace period (~7 ms
    /// measured here). The launcher is single-threaded, so moving its thread moves it whole,
    /// and everything it forks is born in the group.
    fn join_files(&self) -> Vec<PathBuf> {
        self.dirs.values().map(|d| d.join("tasks")).collect()
    }

    /// `CLONE_INTO_CGROUP` takes one cgroup2 directory: a v1 group is joined.
    fn birth_dir(&self) -> Option<PathBuf> {
        None
    }

    fn applied(&self) -> Applied {
        self.applied.clone()
    }

    fn reset_peak(&self) -> Result<()> {
        write_file(
            &self
                .dir("memory")
                .unwrap()
                .join("memory.max_usage_in_bytes"),
            "0",
        )
    }

    fn counters(&self) -> Result<Counters> {
        let cpuacct = self.dir("cpuacct").unwrap();
        let memory = self.dir("memory").unwrap();
        let cpu_stat = self
            .dir("cpu")
            .and_then(|cpu| read_file(&cpu.join("cpu.stat")).ok())
            .unwrap_or_default();
        let oom = read_file(&memory.join("memory.oom_control")).unwrap_or_default();
        let (io_read, io_write) = match self.dir("blkio") {
            Some(blkio) => {
                let text = read_file(&blkio.join("blkio.throttle.io_service_bytes_recursive"))
                    .or_else(|_| read_file(&blkio.join("blkio.throttle.io_service_bytes")))
                    .unwrap_or_default();
                let (r, w) = blkio_bytes(&text);
                (Some(r), Some(w))
            }
            None => (None, None),
        };
        let (cpu_user, cpu_system) = split_cpu(
            read_u64(&cpuacct.join("cpuacct.usage")),
            read_u64(&cpuacct.join("cpuacct.usage_user")).unwrap_or(0),
            read_u64(&cpuacct.join("cpuacct.usage_sys")).unwrap_or(0),
        );
        Ok(Counters {
            cpu_user,
            cpu_system,
            memory_peak: read_u64(&memory.join("memory.max_usage_in_bytes")),
            io_read_bytes: io_read,
            io_write_bytes: io_write,
            oom_kills: keyed(&oom, "oom_kill").unwrap_or(0),
            nr_throttled: keyed(&cpu_stat, "nr_throttled").unwrap_or(0),
            throttled: Duration::from_nanos(keyed(&cpu_stat, "throttled_time").unwrap_or(0)),
            // Pressure is a cgroup v2 interface: empty here, never 0 (nothing was measured).
            pressure: Default::default(),
        })
    }

    fn memory_current(&self) -> Option<u64> {
        read_u64(&self.dir("memory")?.join("memory.usage_in_bytes"))
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let mut all: Vec<i32> = Vec::new();
        for file in self.procs_files() {
            all.extend(read_pids(&file).unwrap_or_default());
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    fn kill_all(&self) -> Result<()> {
        // Each hierarchy lists the same tasks; memory and cpuacct are always present.
        kill_listed(&self.procs_files())
    }

    fn remove(&self) -> Result<()> {
        let killed = self.kill_all();
        let mut first_err = killed.err();
        for dir in self.dirs.values() {
            if let Err(e) = remove_dir_retrying(dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const SELF_CGROUP: &str =
        "9:name=systemd:/\n8:pids:/\n4:memory:/outer/job\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";

    fn fake_root() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        for c in ["cpu", "cpuacct", "cpuset", "memory", "pids", "blkio"] {
            fs::create_dir(tmp.path().join(c)).unwrap();
        }
        // What a fresh cpu group holds (real cgroupfs fills it in; a temp dir does not).
        fs::create_dir_all(tmp.path().join("cpu/benchbox")).unwrap();
        fs::write(tmp.path().join("cpu/benchbox/cpu.cfs_quota_us"), "-1\n").unwrap();
        fs::write(tmp.path().join("cpuset/cpuset.cpus"), "0-3\n").unwrap();
        fs::write(tmp.path().join("cpuset/cpuset.mems"), "0\n").unwrap();
        fs::create_dir_all(tmp.path().join("memory/outer/job")).unwrap();
        tmp
    }

    #[test]
    fn cpu_total_is_exact_and_split_in_the_sampled_proportion() {
        let (u, s) = split_cpu(Some(1_000_000_001), 3, 1);
        assert_eq!(u + s, Duration::from_nanos(1_000_000_001));
        assert_eq!(u, Duration::from_nanos(750_000_000));
        assert_eq!(
            split_cpu(Some(5), 0, 0),
            (Duration::from_nanos(5), Duration::ZERO)
        );
        assert_eq!(
            split_cpu(None, 7, 8),
            (Duration::from_nanos(7), Duration::from_nanos(8))
        );
    }

    #[test]
    fn own_path_reads_the_controller_line() {
        assert_eq!(own_path(SELF_CGROUP, "memory"), "outer/job");
        assert_eq!(own_path(SELF_CGROUP, "cpu"), "");
        assert_eq!(own_path("2:cpu,cpuacct:/a\n", "cpuacct"), "a");
    }

    #[test]
    fn limits_are_written_nested_under_our_own_cgroup() {
        let root = fake_root();
        let h = V1::new(root.path(), SELF_CGROUP, None).unwrap();
        fs::create_dir_all(root.path().join("memory/outer/job/benchbox")).unwrap();
        let limits = Limits {
            cpus: Some("1".into()),
            cpu_quota: Some(0.5),
            memory: Some(64 << 20),
            pids: Some(32),
        };
        let group = h.create("g1", &limits).unwrap();
        let mem = root.path().join("memory/outer/job/benchbox/g1");
        assert_eq!(
            fs::read_to_string(mem.join("memory.limit_in_bytes")).unwrap(),
            "67108864"
        );
        assert_eq!(
            fs::read_to_string(root.path().join("cpu/benchbox/g1/cpu.cfs_quota_us")).unwrap(),
            "50000"
        );
        assert_eq!(
            fs::read_to_string(root.path().join("cpuset/benchbox/cpuset.cpus")).unwrap(),
            "0-3"
        );
        assert_eq!(
            fs::read_to_string(root.path().join("cpuset/benchbox/g1/cpuset.cpus")).unwrap(),
            "1"
        );
        assert_eq!(
            fs::read_to_string(root.path().join("pids/benchbox/g1/pids.max")).unwrap(),
            "32"
        );
        let applied = group.applied();
        assert_eq!(applied.cpus.as_deref(), Some("1"));
        assert_eq!(applied.cpu_quota_us, Some(50_000));
        assert_eq!(applied.memory_bytes, Some(64 << 20));
        assert_eq!(applied.pids, Some(32));
        // Counters from fake accounting files.
        let acct = root.path().join("cpuacct/benchbox/g1");
        fs::write(acct.join("cpuacct.usage_user"), "1500000000\n").unwrap();
        fs::write(acct.join("cpuacct.usage_sys"), "250000000\n").unwrap();
        fs::write(mem.join("memory.max_usage_in_bytes"), "4096\n").unwrap();
        fs::write(
            mem.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )
        .unwrap();
        fs::write(
            root.path()
                .join("blkio/benchbox/g1/blkio.throttle.io_service_bytes"),
            "8:0 Read 100\n8:0 Write 50\n8:16 Read 1\n8:0 Total 150\nTotal 151\n",
        )
        .unwrap();
        fs::write(
            root.path().join("cpu/benchbox/g1/cpu.stat"),
            "nr_periods 10\nnr_throttled 3\nthrottled_time 7000\n",
        )
        .unwrap();
        let c = group.counters().unwrap();
        assert_eq!(c.cpu_user, Duration::from_millis(1500));
        assert_eq!(c.cpu_system, Duration::from_millis(250));
        assert_eq!(c.memory_peak, Some(4096));
        assert_eq!(c.oom_kills, 1);
        assert_eq!((c.io_read_bytes, c.io_write_bytes), (Some(101), Some(50)));
        assert_eq!(
            (c.nr_throttled, c.throttled),
            (3, Duration::from_nanos(7000))
        );
        group.remove().unwrap();
        assert!(!mem.exists());
        assert!(!root.path().join("cpu/benchbox/g1").exists());
    }

    #[test]
    fn only_the_hierarchies_a_limit_needs_get_a_group() {
        let root = fake_root();
        let h = V1::new(root.path(), SELF_CGROUP, None).unwrap();
        fs::create_dir_all(root.path().join("memory/outer/job/benchbox")).unwrap();
        let group = h.create("g2", &Limits::default()).unwrap();
        let made: Vec<&str> = [
            "cpu",
            "cpuacct",
            "cpuset",
            "memory/outer/job",
            "pids",
            "blkio",
        ]
        .into_iter()
        .filter(|c| root.path().join(c).join("benchbox/g2").exists())
        .collect();
        assert_eq!(made, ["cpuacct", "memory/outer/job", "blkio"]);
        // Unlimited: the cpus benchbox itself may use, no quota, no pids cap.
        let applied = group.applied();
        assert_eq!(applied.cpus.as_deref(), Some("0-3"));
        assert_eq!(applied.cpu_quota_us, Some(-1));
        assert_eq!(applied.pids, None);
        let c = group.counters().unwrap();
        assert_eq!((c.nr_throttled, c.throttled), (0, Duration::ZERO));
        group.remove().unwrap();
        assert!(!root.path().join("cpuacct/benchbox/g2").exists());
    }

    /// `run --cgroup-parent /bench.slice/x`: the same path in every hierarchy, made level by
    /// level, each new cpuset level inheriting the cpus and mems of the one above.
    #[test]
    fn an_asked_parent_is_made_in_every_hierarchy_with_its_cpuset_inherited() {
        let root = fake_root();
        let h = V1::new(root.path(), SELF_CGROUP, Some(Path::new("bench.slice/x"))).unwrap();
        let group = h
            .create(
                "g3",
                &Limits {
                    cpus: Some("2".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        let read = |p: &str| fs::read_to_string(root.path().join(p)).unwrap();
        for level in ["cpuset/bench.slice", "cpuset/bench.slice/x"] {
            assert_eq!(read(&format!("{level}/cpuset.cpus")), "0-3", "{level}");
            assert_eq!(read(&format!("{level}/cpuset.mems")), "0", "{level}");
        }
        assert_eq!(read("cpuset/bench.slice/x/g3/cpuset.cpus"), "2");
        assert!(root.path().join("memory/bench.slice/x/g3").is_dir());
        assert!(!root.path().join("memory/outer/job/benchbox").exists());
        group.remove().unwrap();
        assert!(!root.path().join("memory/bench.slice/x/g3").exists());
    }

    #[test]
    fn an_existing_group_is_never_reused() {
        let root = fake_root();
        let h = V1::new(root.path(), SELF_CGROUP, None).unwrap();
        let _g = h.create("same", &Limits::default()).unwrap();
        assert!(h.create("same", &Limits::default()).is_err());
    }

    #[test]
    fn missing_required_controller_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("memory")).unwrap();
        let err = V1::new(tmp.path(), "", None).unwrap_err().to_string();
        assert!(err.contains("`cpu`"), "{err}");
    }
}
