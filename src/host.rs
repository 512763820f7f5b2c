//! The host a run happened on: what results.json records so numbers can be judged and a run
//! repeated a year later, and what `benchbox doctor` checks for noise and isolation.
//!
//! The only place outside `sandbox` that reads host facts from `/proc`, `/sys` and `/run`. Every
//! reader takes those roots as parameters, so tests use fake trees.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::spec::CpuSet;

pub mod noise;
pub mod tune;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    pub hostname: String,
    pub kernel: String,
    pub architecture: String,
    pub cpu_model: String,
    /// Online logical CPUs in kernel list form ("0-7").
    pub online_cpus: String,
    pub logical_cpus: usize,
    pub memory_bytes: u64,
    pub cgroup_version: Option<String>,
    /// CPU frequency governor of cpu0 ("performance", "powersave"...), where the kernel says.
    pub governor: Option<String>,
    /// Simultaneous multithreading active (hyperthreads share a core's resources).
    pub smt_active: Option<bool>,
    pub swap_bytes: u64,
    /// Turbo/boost enabled (frequency varies with load and temperature), where the kernel says.
    pub turbo: Option<bool>,
    /// What `run` found adding noise on its cpus before its first invocation. Absent from files
    /// written before benchbox recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<noise::Noise>,
}

/// Paths of the kernel interfaces (and the runtime directory) the host readers use.
#[derive(Debug, Clone)]
pub struct Roots {
    pub proc: PathBuf,
    pub sys: PathBuf,
    pub run: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            proc: "/proc".into(),
            sys: "/sys".into(),
            run: "/run".into(),
        }
    }
}

fn read_trim(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// Number of cpus in a kernel cpu list ("0-3,6" -> 5).
pub fn count_cpu_list(list: &str) -> usize {
    list.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|part| match part.trim().split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().unwrap_or(0), b.parse().unwrap_or(0));
                b.saturating_sub(a) + 1
            }
            None => 1,
        })
        .sum()
}

fn meminfo_kib(meminfo: &str, key: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim_start_matches(':')
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// The CPUs this process may run on (its affinity, which a Slurm allocation, a pod's cpuset
/// or taskset narrows; within the cgroup's `cpuset.cpus.effective`).
pub fn allowed_cpus() -> Result<crate::spec::CpuSet, String> {
    let set =
        nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).map_err(|e| e.to_string())?;
    Ok(crate::spec::CpuSet::new(
        (0..crate::spec::MAX_CPU.min(nix::sched::CpuSet::count() as u32))
            .filter(|&c| set.is_set(c as usize).unwrap_or(false)),
    ))
}

pub fn collect(roots: &Roots, cgroup_version: Option<String>) -> HostInfo {
    let uname = nix::sys::utsname::uname().ok();
    let cpuinfo = fs::read_to_string(roots.proc.join("cpuinfo")).unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            matches!(k.trim(), "model name" | "Processor" | "cpu model")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let online = read_trim(&roots.sys.join("devices/system/cpu/online")).unwrap_or_default();
    let meminfo = fs::read_to_string(roots.proc.join("meminfo")).unwrap_or_default();
    let intel_no_turbo =
        read_trim(&roots.sys.join("devices/system/cpu/intel_pstate/no_turbo")).map(|v| v == "0");
    let boost = read_trim(&roots.sys.join("devices/system/cpu/cpufreq/boost")).map(|v| v == "1");
    HostInfo {
        hostname: uname
            .as_ref()
            .map(|u| u.nodename().to_string_lossy().into_owned())
            .unwrap_or_default(),
        kernel: uname
            .as_ref()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        architecture: std::env::consts::ARCH.to_string(),
        cpu_model,
        logical_cpus: count_cpu_list(&online),
        online_cpus: online,
        memory_bytes: meminfo_kib(&meminfo, "MemTotal") * 1024,
        cgroup_version,
        governor: read_trim(
            &roots
                .sys
                .join("devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        ),
        smt_active: read_trim(&roots.sys.join("devices/system/cpu/smt/active")).map(|v| v == "1"),
        swap_bytes: meminfo_kib(&meminfo, "SwapTotal") * 1024,
        turbo: intel_no_turbo.or(boost),
        noise: None,
    }
}

/// One finding of `benchbox doctor`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub ok: bool,
    /// Blocks isolation (exit 3) rather than only adding noise.
    pub blocking: bool,
    pub what: String,
    pub hint: Option<String>,
}

/// How benchbox would run here: as root, or rootless (see [`crate::mode`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Privilege {
    pub root: bool,
    pub cgroups: crate::mode::Cgroups,
    /// Rootless only: the containers' id map in words, or why this user may not create user
    /// namespaces.
    pub userns: Option<Result<String, String>>,
    /// systemd runs this host (`systemd-run --user --scope -p Delegate=yes` can delegate).
    pub systemd: bool,
}

/// What on this host adds noise to measurements or blocks isolation.
pub fn doctor(
    host: &HostInfo,
    privilege: &Privilege,
    overlay: bool,
    kernel: crate::sandbox::security::KernelSupport,
) -> Vec<Finding> {
    use crate::mode::{Cgroups, Mode};
    let mut out = Vec::new();
    let mut push = |ok: bool, blocking: bool, what: String, hint: Option<&str>| {
        out.push(Finding {
            ok,
            blocking,
            what,
            hint: hint.map(String::from),
        })
    };
    let root = privilege.root;
    push(
        true,
        false,
        format!(
            "running as root: {}",
            if root {
                "yes"
            } else {
                "no: rootless (an ordinary user, root only inside its containers' user namespaces)"
            }
        ),
        None,
    );
    match &privilege.userns {
        Some(Ok(map)) => push(true, true, format!("user namespaces: {map}"), None),
        Some(Err(why)) => push(
            false,
            true,
            format!("user namespaces: refused to this user: {why}"),
            Some(
                "allow unprivileged user namespaces (`sysctl -w user.max_user_namespaces=15000`; Ubuntu 23.10+: `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`), or run benchbox as root",
            ),
        ),
        None => {}
    }
    match (&privilege.cgroups, root) {
        (Cgroups::Usable(v), true) => push(
            true,
            true,
            format!("cgroup {v} with the cpu, cpuset, memory and pids controllers"),
            None,
        ),
        (Cgroups::Usable(v), false) => push(
            true,
            false,
            format!(
                "cgroup {v}: a subtree delegated to this user, where benchbox creates its groups"
            ),
            None,
        ),
        (Cgroups::NotDelegated { version, reason }, _) => {
            let hint = if *version == crate::sandbox::cgroup::Version::V2 && privilege.systemd {
                "for limits, run benchbox in a delegated scope: systemd-run --user --scope -p Delegate=yes benchbox run FILE (or as root)".to_string()
            } else {
                "limits need root or a delegated cgroup v2 subtree: run benchbox as root for cells with [limits]".to_string()
            };
            push(
                false,
                false,
                format!(
                    "cgroup {version}: no subtree delegated to this user ({reason}): cells with [limits] are refused"
                ),
                Some(&hint),
            )
        }
        (Cgroups::Unusable(err), _) => push(
            false,
            root,
            format!("no usable cgroup hierarchy: {err}"),
            Some("mount cgroup2 at /sys/fs/cgroup or the v1 controllers"),
        ),
    }
    // The mode, and what it can measure (the others are in the README's "Running without root").
    if let Ok(mode) = crate::mode::select(root, &privilege.cgroups)
        && privilege.userns.as_ref().is_none_or(|u| u.is_ok())
    {
        push(
            mode != Mode::RootlessNoLimits,
            false,
            format!("mode: {}: {}", mode.describe(), mode.measures()),
            None,
        );
    }
    push(
        overlay,
        true,
        format!(
            "overlay filesystem: {}",
            if overlay { "available" } else { "missing" }
        ),
        Some("modprobe overlay"),
    );
    push(
        kernel.mount_api,
        true,
        format!(
            "mount API (open_tree, move_mount, mount_setattr): {}",
            if kernel.mount_api {
                "available"
            } else {
                "missing"
            }
        ),
        Some("Linux 5.12 or later: containers build their mounts inside their own root with it"),
    );
    push(
        kernel.seccomp_filter,
        true,
        format!(
            "seccomp filters: {}",
            if kernel.seccomp_filter {
                "available"
            } else {
                "missing"
            }
        ),
        Some(
            "a kernel with CONFIG_SECCOMP_FILTER; without it only cells with `[security] seccomp = \"unconfined\"` can run",
        ),
    );
    // The governor and turbo are noise checks (`noise`), per checked cpu.
    match host.smt_active {
        Some(true) => push(
            false,
            false,
            "simultaneous multithreading: on".into(),
            Some("pin cells to whole cores (cpus = one sibling per core) or disable SMT"),
        ),
        Some(false) => push(true, false, "simultaneous multithreading: off".into(), None),
        None => {}
    }
    push(
        host.swap_bytes == 0,
        false,
        format!("swap: {} bytes", host.swap_bytes),
        Some(
            "benchbox disables swap per cgroup; host swap still affects other processes (swapoff -a)",
        ),
    );
    push(
        host.logical_cpus > 1,
        false,
        format!("online cpus: {} ({})", host.logical_cpus, host.online_cpus),
        Some("with one cpu, benchbox and the workload share it"),
    );
    out
}

/// The online cpus, what a matrix's `cpus` are checked against. Unreadable (or unparsable), the
/// host is taken to have cpu 0 only, so a check never accepts a cpu that may not exist.
/// The host's 1-minute load average now (`/proc/loadavg`), `None` when unreadable.
pub fn load_average(roots: &Roots) -> Option<f64> {
    crate::disturbance::parse_loadavg(&fs::read_to_string(roots.proc.join("loadavg")).ok()?)
}

pub fn online_cpus(roots: &Roots) -> CpuSet {
    let text = fs::read_to_string(roots.sys.join("devices/system/cpu/online"))
        .unwrap_or_else(|_| "0".into());
    text.trim()
        .parse()
        .unwrap_or_else(|_| "0".parse().expect("0 is a cpuset"))
}

/// Does systemd run this host (`/run/systemd/system`, as `sd_booted` checks)?
pub fn systemd_runs(roots: &Roots) -> bool {
    roots.run.join("systemd/system").is_dir()
}

/// Is overlayfs known to the kernel (`/proc/filesystems`)?
pub fn has_overlay(roots: &Roots) -> bool {
    fs::read_to_string(roots.proc.join("filesystems"))
        .is_ok_and(|t| t.lines().any(|l| l.trim_end().ends_with("overlay")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_count() {
        assert_eq!(count_cpu_list("0-3,6"), 5);
        assert_eq!(count_cpu_list("0"), 1);
        assert_eq!(count_cpu_list(""), 0);
    }

    #[test]
    fn an_unreadable_host_has_cpu_0_and_no_systemd() {
        let tmp = tempfile::tempdir().unwrap();
        let roots = Roots {
            proc: tmp.path().join("proc"),
            sys: tmp.path().join("sys"),
            run: tmp.path().join("run"),
        };
        assert_eq!(online_cpus(&roots), CpuSet::new([0]));
        assert!(!systemd_runs(&roots));
    }

    #[test]
    fn reads_a_fake_host() {
        let tmp = tempfile::tempdir().unwrap();
        let proc_ = tmp.path().join("proc");
        let sys = tmp.path().join("sys");
        fs::create_dir_all(&proc_).unwrap();
        fs::create_dir_all(sys.join("devices/system/cpu/cpu0/cpufreq")).unwrap();
        fs::create_dir_all(sys.join("devices/system/cpu/smt")).unwrap();
        fs::write(
            proc_.join("cpuinfo"),
            "processor\t: 0\nmodel name\t: Fake CPU @ 3GHz\n",
        )
        .unwrap();
        fs::write(
            proc_.join("meminfo"),
            "MemTotal:       1024 kB\nSwapTotal:      2048 kB\n",
        )
        .unwrap();
        fs::write(proc_.join("filesystems"), "nodev\tproc\nnodev\toverlay\n").unwrap();
        fs::write(sys.join("devices/system/cpu/online"), "0-7\n").unwrap();
        fs::write(
            sys.join("devices/system/cpu/cpu0/cpufreq/scaling_governor"),
            "powersave\n",
        )
        .unwrap();
        fs::write(sys.join("devices/system/cpu/smt/active"), "1\n").unwrap();
        let run = tmp.path().join("run");
        fs::create_dir_all(run.join("systemd/system")).unwrap();
        let roots = Roots {
            proc: proc_,
            sys,
            run,
        };
        let h = collect(&roots, Some("v2".into()));
        assert_eq!(h.cpu_model, "Fake CPU @ 3GHz");
        assert_eq!(h.logical_cpus, 8);
        assert_eq!(h.memory_bytes, 1 << 20);
        assert_eq!(h.swap_bytes, 2 << 20);
        assert_eq!(h.governor.as_deref(), Some("powersave"));
        assert_eq!(h.smt_active, Some(true));
        assert!(has_overlay(&roots));
        assert_eq!(online_cpus(&roots), CpuSet::new(0..8));
        assert!(systemd_runs(&roots));
        let full = crate::sandbox::security::KernelSupport {
            seccomp_filter: true,
            mount_api: true,
        };
        let as_root = Privilege {
            root: true,
            cgroups: crate::mode::Cgroups::Usable(crate::sandbox::cgroup::Version::V2),
            userns: None,
            systemd: false,
        };
        let findings = doctor(&h, &as_root, true, full);
        let noisy: Vec<_> = findings
            .iter()
            .filter(|f| !f.ok)
            .map(|f| f.what.as_str())
            .collect();
        assert!(
            noisy.iter().any(|w| w.contains("multithreading")),
            "{noisy:?}"
        );
        assert!(noisy.iter().any(|w| w.contains("swap")), "{noisy:?}");
        assert!(findings.iter().all(|f| f.ok || !f.blocking));
        // A kernel without seccomp filters blocks (exit 3), with a hint naming the opt-out.
        let old = crate::sandbox::security::KernelSupport {
            seccomp_filter: false,
            mount_api: true,
        };
        let findings = doctor(&h, &as_root, true, old);
        let blocked: Vec<_> = findings.iter().filter(|f| !f.ok && f.blocking).collect();
        assert_eq!(blocked.len(), 1, "{blocked:?}");
        assert!(blocked[0].what.contains("seccomp"));
        assert!(blocked[0].hint.as_deref().unwrap().contains("unconfined"));
    }

    fn rootless_findings(
        cgroups: crate::mode::Cgroups,
        userns: Result<String, String>,
        systemd: bool,
    ) -> Vec<Finding> {
        let privilege = Privilege {
            root: false,
            cgroups,
            userns: Some(userns),
            systemd,
        };
        let full = crate::sandbox::security::KernelSupport {
            seccomp_filter: true,
            mount_api: true,
        };
        doctor(&HostInfo::default(), &privilege, true, full)
    }

    fn finding<'a>(findings: &'a [Finding], start: &str) -> &'a Finding {
        findings
            .iter()
            .find(|f| f.what.starts_with(start))
            .unwrap_or_else(|| panic!("no finding `{start}...` in {findings:#?}"))
    }

    #[test]
    fn doctor_reports_the_rootless_modes_and_what_they_measure() {
        use crate::mode::Cgroups;
        use crate::sandbox::cgroup::Version;
        let map = "uid 1000 is root in the containers, no other id is mapped".to_string();
        // cgroup v1: rootless without limits, not blocking; limits need root.
        let not_v1 = Cgroups::NotDelegated {
            version: Version::V1,
            reason: "cgroup v1".into(),
        };
        let f = rootless_findings(not_v1, Ok(map.clone()), true);
        assert!(finding(&f, "running as root: no: rootless").ok);
        assert!(finding(&f, "user namespaces: uid 1000 is root").ok);
        let mode = finding(&f, "mode: rootless, without limits");
        assert!(!mode.ok && !mode.blocking, "{mode:?}");
        assert!(
            mode.what
                .contains("CPU time from the workload tree's rusage"),
            "{mode:?}"
        );
        let cg = finding(&f, "cgroup v1: no subtree delegated");
        assert!(
            cg.hint.as_deref().unwrap().starts_with("limits need root"),
            "{cg:?}"
        );
        assert!(f.iter().all(|f| f.ok || !f.blocking), "{f:#?}");
        // cgroup v2 with systemd: the hint is the delegating command.
        let not_v2 = Cgroups::NotDelegated {
            version: Version::V2,
            reason: "x".into(),
        };
        let f = rootless_findings(not_v2, Ok(map.clone()), true);
        let cg = finding(&f, "cgroup v2: no subtree delegated");
        assert!(
            cg.hint
                .as_deref()
                .unwrap()
                .contains("systemd-run --user --scope -p Delegate=yes"),
            "{cg:?}"
        );
        // A delegated subtree: every limit.
        let f = rootless_findings(Cgroups::Usable(Version::V2), Ok(map), false);
        let mode = finding(
            &f,
            "mode: rootless, limits through a delegated cgroup v2 subtree",
        );
        assert!(mode.ok && mode.what.contains("every limit"), "{mode:?}");
        // User namespaces refused: blocking, no mode.
        let f = rootless_findings(Cgroups::Usable(Version::V2), Err("EPERM".into()), false);
        let userns = finding(&f, "user namespaces: refused");
        assert!(!userns.ok && userns.blocking);
        assert!(f.iter().all(|f| !f.what.starts_with("mode:")), "{f:#?}");
    }
}
