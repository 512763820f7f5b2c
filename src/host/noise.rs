//! Noise on the CPUs a run measures on: static checks of the host's settings (load, steal,
//! ASLR, transparent huge pages, isolated CPUs, IRQ affinity, the PMU, turbo, the governor) and
//! a short live sample (busy share, steal and runnable tasks per CPU, from two snapshots of
//! `/proc`), each graded `ok`, `warn` or `fail` with the fix in a hint.
//!
//! Every reader takes a [`Roots`], so tests use fake trees; grading is pure over what was read.
//! `benchbox doctor` prints the checks; `run` records them in results.json (`host.noise`).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Roots, read_trim};
use crate::spec::CpuSet;

/// How much a finding adds to the noise of a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grade {
    Ok,
    Warn,
    Fail,
}

impl Grade {
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::Ok => "ok",
            Grade::Warn => "warn",
            Grade::Fail => "fail",
        }
    }

    /// `ok` below `warn`, `warn` below `fail`, else `fail`.
    fn of(value: f64, warn: f64, fail: f64) -> Grade {
        if value >= fail {
            Grade::Fail
        } else if value >= warn {
            Grade::Warn
        } else {
            Grade::Ok
        }
    }
}

/// One noise check: a stable key ("load", "steal", "sample.cpu0"...), its grade, what was found
/// (with the figures) and, unless `ok`, how to fix it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub key: String,
    pub grade: Grade,
    pub what: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

fn check(key: &str, grade: Grade, what: String, hint: &str) -> Check {
    Check {
        key: key.into(),
        grade,
        what,
        hint: (grade != Grade::Ok).then(|| hint.to_string()),
    }
}

/// What results.json records of the host's noise when a run starts (`host.noise`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Noise {
    /// The CPUs checked: the run's pinned CPUs, else every online CPU.
    pub cpus: String,
    /// Seconds of live sample behind the `sample.*` checks; absent when not sampled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_s: Option<f64>,
    pub checks: Vec<Check>,
    /// The settings `doctor --tune` changed that were in effect (`path: before -> after`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tuned: Vec<String>,
}

impl Noise {
    /// The worst grade of its checks (`ok` when there are none).
    pub fn worst(&self) -> Grade {
        self.checks
            .iter()
            .map(|c| c.grade)
            .max()
            .unwrap_or(Grade::Ok)
    }

    /// One line for a report: "2 fail, 5 warn of 14 checks on cpus 0-1 (sampled 0.5 s): ...",
    /// naming the checks that are not `ok`.
    pub fn summary(&self) -> String {
        let count = |g| self.checks.iter().filter(|c| c.grade == g).count();
        let bad: Vec<&str> = self
            .checks
            .iter()
            .filter(|c| c.grade != Grade::Ok)
            .map(|c| c.what.as_str())
            .collect();
        let sampled = self
            .sample_s
            .map(|s| format!(", sampled {s:.1} s"))
            .unwrap_or_default();
        let mut out = format!(
            "{} fail, {} warn of {} checks on cpus {}{sampled}",
            count(Grade::Fail),
            count(Grade::Warn),
            self.checks.len(),
            self.cpus
        );
        if !bad.is_empty() {
            out.push_str(": ");
            out.push_str(&bad.join("; "));
        }
        out
    }
}

/// The static checks, the live sample (unless `sample` is `None`), on `cpus`.
pub fn examine(roots: &Roots, cpus: &CpuSet, root: bool, sample: Option<Duration>) -> Noise {
    let mut checks = static_checks(roots, cpus, root);
    let mut sample_s = None;
    if let Some(d) = sample {
        let s = Sample::take(roots, d);
        sample_s = Some(s.seconds);
        checks.extend(s.checks(cpus));
    }
    // An unreadable state file is not the run's business: `doctor --reset` says what is wrong.
    let tuned = super::tune::in_effect(roots)
        .unwrap_or_default()
        .iter()
        .map(super::tune::Change::describe)
        .collect();
    Noise {
        cpus: cpus.to_string(),
        sample_s,
        checks,
        tuned,
    }
}

/// The cpus a run's cells measure on: the union of their pins, or every online cpu when a cell
/// pins none (it runs wherever the scheduler puts it).
pub fn run_cpus<'a>(pins: impl IntoIterator<Item = Option<&'a CpuSet>>, online: &CpuSet) -> CpuSet {
    let mut all = Vec::new();
    for pin in pins {
        match pin {
            Some(p) => all.extend(p.cpus()),
            None => return online.clone(),
        }
    }
    if all.is_empty() {
        online.clone()
    } else {
        CpuSet::new(all)
    }
}

/// The checks that need no sample, on `cpus`. `root`: perf counters are open to root whatever
/// `perf_event_paranoid` says.
pub fn static_checks(roots: &Roots, cpus: &CpuSet, root: bool) -> Vec<Check> {
    let online = super::online_cpus(roots);
    let mut out = vec![load(roots, online.len())];
    if let Some(stat) = read_stat(roots) {
        out.push(steal_since_boot(&stat));
    }
    out.push(aslr(roots));
    out.extend(thp(roots));
    out.push(isolation(roots, cpus));
    out.push(irq_affinity(roots, cpus, &online));
    out.push(pmu(roots, root));
    out.push(turbo(roots));
    out.push(governor(roots, cpus));
    out
}

fn load(roots: &Roots, online: usize) -> Check {
    let text = read_trim(&roots.proc.join("loadavg")).unwrap_or_default();
    let mut f = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    let (Some(Some(l1)), Some(Some(l5))) = (f.next(), f.next()) else {
        return check(
            "load",
            Grade::Warn,
            "load average: unreadable (/proc/loadavg)".into(),
            "mount /proc; without the load, other work on this host cannot be seen",
        );
    };
    let per_cpu = l1 / online.max(1) as f64;
    check(
        "load",
        Grade::of(per_cpu, 0.25, 0.75),
        format!(
            "load average: {l1:.2} (5 min {l5:.2}) on {online} online cpus: {per_cpu:.2} per cpu"
        ),
        "other work competes for the cpus: stop it, or measure on an idle host (`top` shows what runs)",
    )
}

/// Jiffies of one `cpu` line of /proc/stat.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    /// user + nice + system + irq + softirq (guest time is inside user).
    pub busy: u64,
    /// idle + iowait.
    pub idle: u64,
    pub steal: u64,
}

impl CpuTimes {
    fn total(&self) -> u64 {
        self.busy + self.idle + self.steal
    }

    fn minus(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            busy: self.busy.saturating_sub(earlier.busy),
            idle: self.idle.saturating_sub(earlier.idle),
            steal: self.steal.saturating_sub(earlier.steal),
        }
    }
}

/// What /proc/stat says: the whole machine, each CPU, and the runnable tasks now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stat {
    pub all: CpuTimes,
    pub cpus: BTreeMap<u32, CpuTimes>,
    pub procs_running: u64,
}

/// Parse /proc/stat's text.
pub fn parse_stat(text: &str) -> Stat {
    let mut stat = Stat::default();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some(name) = f.next() else { continue };
        if name == "procs_running" {
            stat.procs_running = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            continue;
        }
        let Some(which) = name.strip_prefix("cpu") else {
            continue;
        };
        let v: Vec<u64> = f.map(|x| x.parse().unwrap_or(0)).collect();
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        let times = CpuTimes {
            busy: at(0) + at(1) + at(2) + at(5) + at(6),
            idle: at(3) + at(4),
            steal: at(7),
        };
        if which.is_empty() {
            stat.all = times;
        } else if let Ok(n) = which.parse() {
            stat.cpus.insert(n, times);
        }
    }
    stat
}

fn read_stat(roots: &Roots) -> Option<Stat> {
    fs::read_to_string(roots.proc.join("stat"))
        .ok()
        .map(|t| parse_stat(&t))
}

fn steal_since_boot(stat: &Stat) -> Check {
    let share = stat.all.steal as f64 / stat.all.total().max(1) as f64;
    check(
        "steal",
        Grade::of(share, 0.005, 0.05),
        format!(
            "steal time since boot: {:.2}% (the hypervisor ran other guests on this machine's cpus)",
            share * 100.0
        ),
        "a virtual machine shares its physical cpus: ask for dedicated (pinned) vcpus, or measure on bare metal",
    )
}

fn aslr(roots: &Roots) -> Check {
    let value = read_trim(&roots.proc.join("sys/kernel/randomize_va_space"));
    let (grade, what) = match value.as_deref() {
        Some("2") => (
            Grade::Ok,
            "ASLR: 2 (full randomization, the default): each invocation gets another memory layout, so layout effects (alignment, cache sets) show up as variance across invocations, which the repeated invocations average over",
        ),
        Some("1") => (
            Grade::Warn,
            "ASLR: 1 (heap not randomized): part of the layout is the same in every invocation, so the intervals miss the variance its layout would add on another host",
        ),
        Some("0") => (
            Grade::Warn,
            "ASLR: 0 (off): every invocation sees one memory layout, so the spread is smaller than a user's runs see and a lucky or unlucky layout biases every number",
        ),
        _ => (
            Grade::Warn,
            "ASLR: unknown (/proc/sys/kernel/randomize_va_space unreadable)",
        ),
    };
    check(
        "aslr",
        grade,
        what.into(),
        "sysctl -w kernel.randomize_va_space=2 (turn it off only to study one layout, and say so)",
    )
}

/// The bracketed choice of a sysfs setting ("always [madvise] never" -> "madvise").
pub(super) fn bracketed(text: &str) -> Option<&str> {
    let start = text.find('[')? + 1;
    let end = start + text[start..].find(']')?;
    Some(&text[start..end])
}

fn thp(roots: &Roots) -> Vec<Check> {
    let dir = roots.sys.join("kernel/mm/transparent_hugepage");
    let mut out = Vec::new();
    match read_trim(&dir.join("enabled")) {
        Some(t) => {
            let v = bracketed(&t).unwrap_or("unknown").to_string();
            out.push(check(
                "thp.enabled",
                if v == "always" { Grade::Warn } else { Grade::Ok },
                format!("transparent huge pages: {v}"),
                "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled (with `always`, khugepaged collapses pages in the background and whether a workload gets huge pages varies from run to run)",
            ));
        }
        None => out.push(check(
            "thp.enabled",
            Grade::Ok,
            "transparent huge pages: not built into this kernel".into(),
            "",
        )),
    }
    if let Some(t) = read_trim(&dir.join("defrag")) {
        let v = bracketed(&t).unwrap_or("unknown").to_string();
        out.push(check(
            "thp.defrag",
            if v == "always" { Grade::Warn } else { Grade::Ok },
            format!("transparent huge pages defrag: {v}"),
            "echo madvise > /sys/kernel/mm/transparent_hugepage/defrag (with `always`, page faults stall on direct compaction)",
        ));
    }
    out
}

/// A cpu list given on the kernel command line as `key=` ("isolcpus=domain,2-3" -> 2-3).
fn cmdline_cpus(cmdline: &str, key: &str) -> Option<CpuSet> {
    let value = cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))?;
    // isolcpus may start with flags ("domain,managed_irq,2-3"): keep the numeric items.
    let list: Vec<&str> = value
        .split(',')
        .filter(|i| i.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    list.join(",").parse().ok()
}

/// A cpu list file of sysfs or procfs; an empty one is the empty set (the kernel's "none").
fn sys_cpus(path: &Path) -> Option<CpuSet> {
    let text = read_trim(path)?;
    if text.is_empty() {
        return Some(CpuSet::default());
    }
    text.parse().ok()
}

fn isolation(roots: &Roots, cpus: &CpuSet) -> Check {
    let cmdline = read_trim(&roots.proc.join("cmdline")).unwrap_or_default();
    let cpu_dir = roots.sys.join("devices/system/cpu");
    let isolated = sys_cpus(&cpu_dir.join("isolated"))
        .or_else(|| cmdline_cpus(&cmdline, "isolcpus"))
        .unwrap_or_default();
    let nohz = sys_cpus(&cpu_dir.join("nohz_full"))
        .or_else(|| cmdline_cpus(&cmdline, "nohz_full"))
        .unwrap_or_default();
    let shown = |s: &CpuSet| {
        if s.is_empty() {
            "none".to_string()
        } else {
            s.to_string()
        }
    };
    let all_isolated = !cpus.is_empty() && cpus.is_subset(&isolated);
    let all_nohz = !cpus.is_empty() && cpus.is_subset(&nohz);
    check(
        "isolation",
        if all_isolated && all_nohz {
            Grade::Ok
        } else {
            Grade::Warn
        },
        format!(
            "isolated cpus: {} (isolcpus), {} (nohz_full); checked cpus {}",
            shown(&isolated),
            shown(&nohz),
            cpus
        ),
        &format!(
            "boot with isolcpus={c} nohz_full={c} rcu_nocbs={c} and pin the cells there (`cpus = \"{c}\"`): the scheduler then keeps other tasks and the timer tick off them",
            c = cpus
        ),
    )
}

/// IRQs (numbers) whose affinity includes one of `cpus`.
fn irqs_on(roots: &Roots, cpus: &CpuSet) -> (Vec<u32>, usize) {
    let mut on = Vec::new();
    let mut total = 0;
    let Ok(dir) = fs::read_dir(roots.proc.join("irq")) else {
        return (on, 0);
    };
    for entry in dir.flatten() {
        let Ok(n) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Some(aff) = sys_cpus(&entry.path().join("smp_affinity_list")) else {
            continue;
        };
        total += 1;
        if aff.cpus().any(|c| cpus.contains(c)) {
            on.push(n);
        }
    }
    on.sort_unstable();
    (on, total)
}

fn irq_affinity(roots: &Roots, cpus: &CpuSet, online: &CpuSet) -> Check {
    let (on, total) = irqs_on(roots, cpus);
    let mut shown: Vec<String> = on.iter().take(8).map(u32::to_string).collect();
    if on.len() > 8 {
        shown.push(format!("... ({} more)", on.len() - 8));
    }
    let others = CpuSet::new(online.cpus().filter(|c| !cpus.contains(*c)));
    let hint = if others.is_empty() {
        "every online cpu is checked, so device interrupts have nowhere else to go: pin the cells to some cpus (`cpus`) and move the interrupts to the others".to_string()
    } else {
        format!(
            "move them off: for each, echo {others} > /proc/irq/N/smp_affinity_list (and IRQBALANCE_BANNED_CPULIST={cpus} for irqbalance)"
        )
    };
    check(
        "irq",
        if on.is_empty() {
            Grade::Ok
        } else {
            Grade::Warn
        },
        if total == 0 {
            "irq affinity: none readable (/proc/irq)".into()
        } else if on.is_empty() {
            format!("irq affinity: none of {total} irqs may run on cpus {cpus}")
        } else {
            format!(
                "irq affinity: {} of {total} irqs may run on cpus {cpus} ({})",
                on.len(),
                shown.join(", ")
            )
        },
        &hint,
    )
}

fn pmu(roots: &Roots, root: bool) -> Check {
    let devices = roots.sys.join("bus/event_source/devices");
    // x86 names its core PMU `cpu` (hybrid parts `cpu_core`/`cpu_atom`); arm64 `armv8_*`.
    let has_pmu = fs::read_dir(&devices).is_ok_and(|d| {
        d.flatten().any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n == "cpu" || n.starts_with("cpu_") || n.starts_with("armv")
        })
    });
    let paranoid = read_trim(&roots.proc.join("sys/kernel/perf_event_paranoid"));
    if !has_pmu {
        return check(
            "pmu",
            Grade::Warn,
            format!(
                "hardware counters: no PMU (no cpu in /sys/bus/event_source/devices, as in a virtual machine without a virtual PMU): `perf stat` in a cell gets no cycles or instructions; perf_event_paranoid {}",
                paranoid.as_deref().unwrap_or("unknown")
            ),
            "on a VM, enable the virtual PMU (e.g. QEMU -cpu host, a cloud instance type that exposes it), or measure on bare metal",
        );
    }
    let level: i32 = paranoid
        .as_deref()
        .and_then(|p| p.parse().ok())
        .unwrap_or(2);
    check(
        "pmu",
        if root || level <= 1 {
            Grade::Ok
        } else {
            Grade::Warn
        },
        format!(
            "hardware counters: PMU present, perf_event_paranoid {}{}",
            paranoid.as_deref().unwrap_or("unknown"),
            if root {
                " (root is not restricted)"
            } else {
                ""
            }
        ),
        "sysctl -w kernel.perf_event_paranoid=1 so an ordinary user's `perf stat` counts the cpu (cells also need `[security] capabilities = [\"PERFMON\"]`)",
    )
}

fn turbo(roots: &Roots) -> Check {
    let cpu = roots.sys.join("devices/system/cpu");
    let hint = "turn it off for stable clocks: echo 1 > /sys/devices/system/cpu/intel_pstate/no_turbo, or echo 0 > /sys/devices/system/cpu/cpufreq/boost";
    if let Some(v) = read_trim(&cpu.join("intel_pstate/no_turbo")) {
        let on = v == "0";
        return check(
            "turbo",
            if on { Grade::Warn } else { Grade::Ok },
            format!(
                "turbo: {} (intel_pstate/no_turbo {v}){}",
                if on { "on" } else { "off" },
                if on {
                    ": the clock follows load and temperature"
                } else {
                    ""
                }
            ),
            hint,
        );
    }
    if let Some(v) = read_trim(&cpu.join("cpufreq/boost")) {
        let on = v == "1";
        return check(
            "turbo",
            if on { Grade::Warn } else { Grade::Ok },
            format!(
                "turbo: {} (cpufreq/boost {v}){}",
                if on { "on" } else { "off" },
                if on {
                    ": the clock follows load and temperature"
                } else {
                    ""
                }
            ),
            hint,
        );
    }
    check(
        "turbo",
        Grade::Warn,
        "turbo: unknown (neither intel_pstate/no_turbo nor cpufreq/boost is exposed: a virtual machine, whose host decides, or a driver without the switch): the clock may vary and this host cannot tell".into(),
        "on bare metal, turn turbo off in the firmware or the cpufreq driver; on a VM, ask the provider for fixed-frequency instances",
    )
}

fn governor(roots: &Roots, cpus: &CpuSet) -> Check {
    let mut by_governor: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for c in cpus.cpus() {
        let g = read_trim(&roots.sys.join(format!(
            "devices/system/cpu/cpu{c}/cpufreq/scaling_governor"
        )))
        .unwrap_or_else(|| "unknown".into());
        by_governor.entry(g).or_default().push(c);
    }
    let described: Vec<String> = by_governor
        .iter()
        .map(|(g, c)| format!("{g} (cpus {})", CpuSet::new(c.iter().copied())))
        .collect();
    let all_performance = by_governor.len() == 1 && by_governor.contains_key("performance");
    let unknown = by_governor.contains_key("unknown");
    check(
        "governor",
        if all_performance {
            Grade::Ok
        } else {
            Grade::Warn
        },
        format!(
            "cpu frequency governor: {}{}",
            described.join(", "),
            if unknown {
                ": no cpufreq exposed (a virtual machine, whose host scales the clock, or a kernel without cpufreq): the frequency cannot be checked"
            } else {
                ""
            }
        ),
        if unknown {
            "on bare metal, load the cpufreq driver and set the performance governor; on a VM, ask the provider for fixed-frequency instances"
        } else {
            "cpupower frequency-set -g performance (other governors change the clock with load)"
        },
    )
}

/// Runnable tasks per CPU (state `R` in /proc/<pid>/task/<tid>/stat, on the CPU its
/// `processor` field names), other than those of benchbox itself.
pub fn runnable_per_cpu(roots: &Roots, own_pid: u32) -> BTreeMap<u32, u32> {
    let mut out = BTreeMap::new();
    let Ok(procs) = fs::read_dir(&roots.proc) else {
        return out;
    };
    for p in procs.flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == own_pid {
            continue;
        }
        let Ok(tasks) = fs::read_dir(p.path().join("task")) else {
            continue;
        };
        for t in tasks.flatten() {
            if let Ok(text) = fs::read_to_string(t.path().join("stat"))
                && let Some((state, cpu)) = parse_task_stat(&text)
                && state == 'R'
            {
                *out.entry(cpu).or_default() += 1;
            }
        }
    }
    out
}

/// The state and the `processor` (field 39) of a /proc/<pid>/stat line. The command name (field
/// 2) is in parentheses and may hold spaces and parentheses: fields are counted after its last
/// `)`.
pub fn parse_task_stat(text: &str) -> Option<(char, u32)> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    // After the state (field 3), `processor` is field 39: 36 fields on.
    let cpu = f.nth(35)?.parse().ok()?;
    Some((state, cpu))
}

/// A live sample: /proc/stat at its start and end, and the runnable tasks polled in between.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub before: Stat,
    pub after: Stat,
    pub seconds: f64,
    /// How many times the tasks were polled.
    pub polls: u32,
    /// Runnable tasks other than benchbox's, summed over the polls, per CPU.
    pub runnable: BTreeMap<u32, u32>,
    /// `procs_running` less benchbox itself, summed over the polls.
    pub procs_running: u64,
}

/// Polls of the runnable tasks during a sample: often enough to see a competing task, rarely
/// enough that benchbox's own reading of /proc is not what the sample measures.
const POLL: Duration = Duration::from_millis(100);

impl Sample {
    /// Sample this host for about `duration`.
    pub fn take(roots: &Roots, duration: Duration) -> Sample {
        let own = std::process::id();
        let start = Instant::now();
        let before = read_stat(roots).unwrap_or_default();
        let mut s = Sample {
            before,
            ..Default::default()
        };
        loop {
            let next = (start + POLL * (s.polls + 1)).min(start + duration);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            for (cpu, n) in runnable_per_cpu(roots, own) {
                *s.runnable.entry(cpu).or_default() += n;
            }
            let running = read_stat(roots).map_or(0, |st| st.procs_running);
            s.procs_running += running.saturating_sub(1);
            s.polls += 1;
            if next >= start + duration {
                break;
            }
        }
        s.after = read_stat(roots).unwrap_or_default();
        s.seconds = start.elapsed().as_secs_f64();
        s
    }

    /// The sample's checks: the host's runnable tasks, then per CPU of `cpus` its busy share,
    /// steal and runnable tasks.
    pub fn checks(&self, cpus: &CpuSet) -> Vec<Check> {
        let polls = self.polls.max(1) as f64;
        let mut out = Vec::new();
        let running = self.procs_running as f64 / polls;
        let n_cpus = self.after.cpus.len().max(1) as f64;
        out.push(check(
            "sample.procs_running",
            Grade::of(running / n_cpus, 0.25, 0.75),
            format!(
                "runnable tasks besides benchbox: {running:.1} on average over {:.1} s ({} polls, all cpus)",
                self.seconds, self.polls
            ),
            "other work is running: stop it (`top` shows what), or pin the cells away from it",
        ));
        for cpu in cpus.cpus() {
            let key = format!("sample.cpu{cpu}");
            let (Some(a), Some(b)) = (self.before.cpus.get(&cpu), self.after.cpus.get(&cpu)) else {
                out.push(check(
                    &key,
                    Grade::Warn,
                    format!("cpu {cpu}: not in /proc/stat (offline?)"),
                    "check the cpus: `cat /sys/devices/system/cpu/online`",
                ));
                continue;
            };
            let d = b.minus(a);
            let total = d.total().max(1) as f64;
            let busy = d.busy as f64 / total;
            let steal = d.steal as f64 / total;
            let tasks = self.runnable.get(&cpu).copied().unwrap_or(0) as f64 / polls;
            let grade = Grade::of(busy, 0.05, 0.25)
                .max(Grade::of(steal, 0.01, 0.05))
                .max(Grade::of(tasks, 0.1, 0.75));
            out.push(check(
                &key,
                grade,
                format!(
                    "cpu {cpu}: busy {:.1}%, steal {:.1}%, runnable tasks {tasks:.1} (sampled {:.1} s)",
                    busy * 100.0,
                    steal * 100.0,
                    self.seconds
                ),
                if steal >= 0.01 && busy < 0.05 {
                    "the hypervisor gives this cpu to other guests: ask for dedicated vcpus, or measure elsewhere"
                } else {
                    "something else runs on this cpu: stop it, or pin the cells to an idle cpu (`doctor --cpus` to find one)"
                },
            ));
        }
        out
    }
}

#[cfg(test)]
#[path = "noise_tests.rs"]
mod tests;
