//! Disturbance of one invocation: how much CPU time other tasks took on its CPUs while it
//! ran, and how much the hypervisor stole from them (pure: `/proc/stat` text in, figures and
//! the `disturbed` rule out; the sandbox reads the file around the measured window).
//!
//! `/proc/stat` has one line per online CPU with cumulative times in ticks (`USER_HZ`, 100 a
//! second on Linux: a 10 ms resolution). Two readings, just before the workload is told to go
//! and just after its final counters, give each CPU's busy ticks (user + nice + system + irq +
//! softirq + steal) and steal ticks over the window. Minus the cell's own CPU time (its
//! cgroup's, to the nanosecond) the busy time is what other tasks ran there. A cell pinned to
//! CPUs (`cpus`) is judged on those CPUs only (scope `pinned`); one that is not is judged on
//! the whole host (scope `host`), where anything else running counts.
//!
//! The rule ([`judge`]): an invocation is `disturbed` when, after taking off the resolution
//! ([`ALLOWANCE_TICKS_PER_CPU`] ticks per CPU), other tasks' time exceeds the threshold
//! fraction (5% unless `[run] disturbance-threshold` says otherwise) of wall time x CPUs, or
//! steal exceeds [`STEAL_FRACTION`] of it. Invocations shorter than [`MIN_JUDGED_TICKS`] ticks
//! are not judged (never flagged): at 10 ms a tick their figures are mostly rounding.

use serde::{Deserialize, Serialize};

use crate::spec::CpuSet;

/// The default of `[run] disturbance-threshold`: other tasks may take 5% of the cell's CPUs.
pub const DEFAULT_THRESHOLD: f64 = 0.05;
/// Steal above this fraction of wall time x CPUs makes an invocation `disturbed`.
pub const STEAL_FRACTION: f64 = 0.02;
/// Invocations whose wall time is under this many ticks (0.2 s at 100 Hz) are not judged.
pub const MIN_JUDGED_TICKS: f64 = 20.0;
/// The resolution taken off before judging: a window's ends can each be off by a tick per
/// CPU, so two ticks per CPU of "other" time may be nothing but rounding.
pub const ALLOWANCE_TICKS_PER_CPU: f64 = 2.0;

/// Busy and steal ticks of one CPU (or of all, the `cpu` line), cumulative since boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ticks {
    pub busy: u64,
    pub steal: u64,
}

impl Ticks {
    fn since(self, earlier: Ticks) -> Ticks {
        Ticks {
            busy: self.busy.saturating_sub(earlier.busy),
            steal: self.steal.saturating_sub(earlier.steal),
        }
    }

    fn add(self, other: Ticks) -> Ticks {
        Ticks {
            busy: self.busy + other.busy,
            steal: self.steal + other.steal,
        }
    }
}

/// One reading of `/proc/stat`'s CPU lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcStat {
    /// The `cpu` line: every CPU together.
    pub total: Ticks,
    /// The `cpuN` lines, by N (offline CPUs have no line, so `None`).
    pub cpus: Vec<Option<Ticks>>,
}

/// Parse the CPU lines of `/proc/stat` (the rest is ignored). Fields after the first four are
/// optional, as older kernels lack them (iowait, irq, softirq, steal, guest...); guest time is
/// already inside user time, so it is not added again. Idle and iowait are not busy.
pub fn parse_proc_stat(text: &str) -> Result<ProcStat, String> {
    let mut stat = ProcStat::default();
    let mut total = None;
    for (n, line) in text.lines().enumerate() {
        let Some(rest) = line.strip_prefix("cpu") else {
            // The CPU lines come first; nothing after them is needed.
            if total.is_some() {
                break;
            }
            continue;
        };
        let mut fields = rest.split_ascii_whitespace();
        let name = if rest.starts_with(' ') {
            ""
        } else {
            fields.next().unwrap_or("")
        };
        let values: Vec<u64> = fields
            .map(|f| f.parse::<u64>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("/proc/stat line {}: a field is not a tick count", n + 1))?;
        if values.len() < 4 {
            return Err(format!(
                "/proc/stat line {}: {} fields where at least 4 (user nice system idle) are expected",
                n + 1,
                values.len()
            ));
        }
        let at = |i: usize| values.get(i).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal guest guest_nice
        let ticks = Ticks {
            busy: at(0) + at(1) + at(2) + at(5) + at(6) + at(7),
            steal: at(7),
        };
        if name.is_empty() {
            total = Some(ticks);
            continue;
        }
        let cpu: usize = name
            .parse()
            .map_err(|_| format!("/proc/stat line {}: `cpu{name}` is not a CPU", n + 1))?;
        if cpu > crate::spec::MAX_CPU as usize {
            return Err(format!(
                "/proc/stat line {}: cpu{cpu} is out of range",
                n + 1
            ));
        }
        if stat.cpus.len() <= cpu {
            stat.cpus.resize(cpu + 1, None);
        }
        stat.cpus[cpu] = Some(ticks);
    }
    stat.total = total.ok_or("/proc/stat has no `cpu` line")?;
    Ok(stat)
}

/// Whose CPUs the figures are about: the cell's pinned CPUs, or the whole host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Pinned,
    Host,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Pinned => "pinned",
            Scope::Host => "host",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "pinned" => Some(Scope::Pinned),
            "host" => Some(Scope::Host),
            _ => None,
        }
    }
}

/// What the two readings say about one invocation's window: the runs.csv columns
/// `other_cpu_s`, `steal_s` and `disturbance_scope` (empty: not measured, e.g. a runs.csv
/// written before these columns, or `/proc/stat` unreadable).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Disturbance {
    /// CPU time other tasks used on the invocation's CPUs (seconds, 10 ms resolution).
    pub other_cpu_s: Option<f64>,
    /// Time stolen from those CPUs by the hypervisor (seconds, 10 ms resolution).
    pub steal_s: Option<f64>,
    pub disturbance_scope: Option<Scope>,
}

impl Disturbance {
    /// The column names, in runs.csv's order.
    pub const COLUMNS: [&'static str; 3] = ["other_cpu_s", "steal_s", "disturbance_scope"];
}

/// The host's 1-minute load average at the start and at the end of a run (results.json's
/// `load_average`), each `None` where `/proc/loadavg` could not be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoadAverage {
    pub start: Option<f64>,
    pub end: Option<f64>,
}

impl LoadAverage {
    /// The higher of the two readings: the run saw at least that much load.
    pub fn peak(&self) -> Option<f64> {
        match (self.start, self.end) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The 1-minute load average, the first field of `/proc/loadavg`.
pub fn parse_loadavg(text: &str) -> Option<f64> {
    text.split_ascii_whitespace()
        .next()?
        .parse::<f64>()
        .ok()
        .filter(|l| l.is_finite() && *l >= 0.0)
}

/// What the rule needs beside the row: how many CPUs the figures cover and the tick rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Basis {
    pub cpus: u32,
    pub ticks_per_s: u64,
}

/// The disturbance over a window between two readings, for a cell that used `own_cpu_s` of
/// CPU (its cgroup's user + system) on `pinned` (or anywhere: `None`). A pinned CPU missing
/// from either reading (taken offline) makes the figures host-wide. `None` when the readings
/// make no sense (a tick rate of 0).
pub fn measure(
    before: &ProcStat,
    after: &ProcStat,
    pinned: Option<&CpuSet>,
    own_cpu_s: f64,
    ticks_per_s: u64,
) -> Option<(Disturbance, Basis)> {
    if ticks_per_s == 0 {
        return None;
    }
    let per_cpu = |cpu: u32| -> Option<Ticks> {
        let at = |s: &ProcStat| s.cpus.get(cpu as usize).copied().flatten();
        Some(at(after)?.since(at(before)?))
    };
    let on_pinned = pinned.filter(|set| !set.is_empty()).and_then(|set| {
        set.cpus()
            .map(per_cpu)
            .try_fold(Ticks::default(), |sum, t| Some(sum.add(t?)))
            .map(|t| (t, set.len() as u32))
    });
    let (ticks, cpus, scope) = match on_pinned {
        Some((t, n)) => (t, n, Scope::Pinned),
        None => {
            let online = after.cpus.iter().filter(|c| c.is_some()).count().max(1);
            (after.total.since(before.total), online as u32, Scope::Host)
        }
    };
    let hz = ticks_per_s as f64;
    let own = if own_cpu_s.is_finite() {
        own_cpu_s.max(0.0)
    } else {
        0.0
    };
    let d = Disturbance {
        // Rounded to the microsecond, as runs.csv writes it, so a row read back is the value
        // that was judged.
        other_cpu_s: Some(round_us((ticks.busy as f64 / hz - own).max(0.0))),
        steal_s: Some(round_us(ticks.steal as f64 / hz)),
        disturbance_scope: Some(scope),
    };
    Some((d, Basis { cpus, ticks_per_s }))
}

fn round_us(s: f64) -> f64 {
    (s * 1e6).round() / 1e6
}

/// The `disturbed` rule: `Some(reason)` when other tasks' CPU time on the invocation's CPUs,
/// less the resolution, exceeds `threshold` of wall time x CPUs, or steal (less the
/// resolution) exceeds [`STEAL_FRACTION`] of it. Never for an invocation shorter than
/// [`MIN_JUDGED_TICKS`] ticks, nor one without figures.
pub fn judge(d: &Disturbance, wall_s: f64, basis: Basis, threshold: f64) -> Option<String> {
    let (other, steal, scope) = (d.other_cpu_s?, d.steal_s?, d.disturbance_scope?);
    let tick = 1.0 / basis.ticks_per_s.max(1) as f64;
    if !wall_s.is_finite() || wall_s < MIN_JUDGED_TICKS * tick {
        return None;
    }
    let cpus = basis.cpus.max(1) as f64;
    let capacity = wall_s * cpus;
    // In whole microseconds, as runs.csv writes the figures, so that a row read back is judged
    // as it was (and no rounding of a float decides at the edge).
    let us = |s: f64| (s * 1e6).round() as i64;
    let allowance = us(ALLOWANCE_TICKS_PER_CPU * tick * cpus);
    let whose = match scope {
        Scope::Pinned => format!("its {} pinned CPU{}", basis.cpus, plural(basis.cpus)),
        Scope::Host => format!("the host's {} CPU{}", basis.cpus, plural(basis.cpus)),
    };
    let mut why = Vec::new();
    if us(other) - allowance > us(threshold * capacity) {
        why.push(format!(
            "other tasks used {:.3} s of CPU on {whose} ({:.1}% of {:.3} s wall x {}; threshold {})",
            other,
            100.0 * other / capacity,
            wall_s,
            basis.cpus,
            percent(threshold)
        ));
    }
    if us(steal) - allowance > us(STEAL_FRACTION * capacity) {
        why.push(format!(
            "the hypervisor stole {:.3} s from {whose} ({:.1}%; threshold {})",
            steal,
            100.0 * steal / capacity,
            percent(STEAL_FRACTION)
        ));
    }
    (!why.is_empty()).then(|| why.join("; "))
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// "5%", "2.5%".
pub fn percent(fraction: f64) -> String {
    let p = (fraction * 1000.0).round() / 10.0;
    if p.fract() == 0.0 {
        format!("{p:.0}%")
    } else {
        format!("{p}%")
    }
}

/// `[run] disturbance-threshold`: a percentage ("5%", "12.5%") from 0 (exclusive) to 100.
pub fn parse_threshold(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let number = t
        .strip_suffix('%')
        .ok_or_else(|| format!("`{t}` is not a percentage"))?;
    let p: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{t}` is not a percentage"))?;
    if !p.is_finite() || p <= 0.0 || p > 100.0 {
        return Err(format!("`{t}` is outside 0% (exclusive) to 100%"));
    }
    Ok(p / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "cpu  1000 10 200 5000 30 0 5 7 0 0
cpu0 500 5 100 2500 15 0 3 4 0 0
cpu1 500 5 100 2500 15 0 2 3 0 0
intr 44674459 0 0 0
ctxt 88607399
";

    fn after(cpu0: [u64; 10], cpu1: [u64; 10]) -> String {
        let line = |name: &str, v: [u64; 10]| {
            let v: Vec<String> = v.iter().map(u64::to_string).collect();
            format!("{name} {}\n", v.join(" "))
        };
        let total: [u64; 10] = std::array::from_fn(|i| cpu0[i] + cpu1[i]);
        format!(
            "{}{}{}intr 1 2 3\n",
            line("cpu ", total),
            line("cpu0", cpu0),
            line("cpu1", cpu1)
        )
    }

    #[test]
    fn parses_busy_and_steal_ticks_per_cpu() {
        let s = parse_proc_stat(BEFORE).unwrap();
        // user + nice + system + irq + softirq + steal; idle and iowait are not busy.
        assert_eq!(
            s.total,
            Ticks {
                busy: 1222,
                steal: 7
            }
        );
        assert_eq!(
            s.cpus[0],
            Some(Ticks {
                busy: 612,
                steal: 4
            })
        );
        assert_eq!(
            s.cpus[1],
            Some(Ticks {
                busy: 610,
                steal: 3
            })
        );
        // An old kernel's four fields; an offline CPU has no line.
        let s = parse_proc_stat("cpu 1 2 3 4\ncpu0 1 2 3 4\ncpu2 0 0 0 0\n").unwrap();
        assert_eq!(s.total, Ticks { busy: 6, steal: 0 });
        assert_eq!(
            s.cpus,
            vec![
                Some(Ticks { busy: 6, steal: 0 }),
                None,
                Some(Ticks::default())
            ]
        );
    }

    #[test]
    fn bad_proc_stat_is_an_error_naming_the_line() {
        assert_eq!(
            parse_proc_stat("intr 1\n").unwrap_err(),
            "/proc/stat has no `cpu` line"
        );
        assert_eq!(
            parse_proc_stat("cpu 1 2 x 4\n").unwrap_err(),
            "/proc/stat line 1: a field is not a tick count"
        );
        assert!(
            parse_proc_stat("cpu 1 2 3 4\ncpu0 1 2\n")
                .unwrap_err()
                .contains("line 2: 2 fields")
        );
        assert!(
            parse_proc_stat("cpu 1 2 3 4\ncpux 1 2 3 4\n")
                .unwrap_err()
                .contains("`cpux`")
        );
    }

    #[test]
    fn other_time_on_pinned_cpus_is_their_busy_time_less_the_cells_own() {
        let before = parse_proc_stat(BEFORE).unwrap();
        // cpu1: 50 ticks of user, 10 of system, 2 of steal in the window; cpu0 very busy.
        let later = parse_proc_stat(&after(
            [900, 5, 100, 2500, 15, 0, 3, 4, 0, 0],
            [550, 5, 110, 2540, 15, 0, 2, 5, 0, 0],
        ))
        .unwrap();
        let pinned: CpuSet = "1".parse().unwrap();
        let (d, basis) = measure(&before, &later, Some(&pinned), 0.3, 100).unwrap();
        // 62 busy ticks = 0.62 s, of which 0.3 s the cell's own.
        assert_eq!(d.other_cpu_s, Some(0.32));
        assert_eq!(d.steal_s, Some(0.02));
        assert_eq!(d.disturbance_scope, Some(Scope::Pinned));
        assert_eq!(
            basis,
            Basis {
                cpus: 1,
                ticks_per_s: 100
            }
        );
        // Not pinned: the whole host, cpu0's 400 ticks included.
        let (d, basis) = measure(&before, &later, None, 0.3, 100).unwrap();
        assert_eq!(d.other_cpu_s, Some(4.32));
        assert_eq!(d.disturbance_scope, Some(Scope::Host));
        assert_eq!(basis.cpus, 2);
        // The cell's own time above the ticks (rounding) is never negative other time.
        let (d, _) = measure(&before, &later, Some(&pinned), 5.0, 100).unwrap();
        assert_eq!(d.other_cpu_s, Some(0.0));
        // A pinned CPU gone offline: host-wide figures, labelled so.
        let offline = parse_proc_stat("cpu 2000 0 0 0\ncpu0 2000 0 0 0\n").unwrap();
        let (d, _) = measure(&before, &offline, Some(&pinned), 0.0, 100).unwrap();
        assert_eq!(d.disturbance_scope, Some(Scope::Host));
        assert_eq!(measure(&before, &later, None, 0.0, 0), None);
    }

    fn figures(other: f64, steal: f64, scope: Scope) -> Disturbance {
        Disturbance {
            other_cpu_s: Some(other),
            steal_s: Some(steal),
            disturbance_scope: Some(scope),
        }
    }

    const ONE: Basis = Basis {
        cpus: 1,
        ticks_per_s: 100,
    };

    #[test]
    fn disturbed_above_the_threshold_plus_the_resolution() {
        // 1 s on one CPU: 5% is 50 ms, plus 2 ticks (20 ms) of resolution.
        assert_eq!(
            judge(&figures(0.070, 0.0, Scope::Pinned), 1.0, ONE, 0.05),
            None
        );
        let why = judge(&figures(0.071, 0.0, Scope::Pinned), 1.0, ONE, 0.05).unwrap();
        assert_eq!(
            why,
            "other tasks used 0.071 s of CPU on its 1 pinned CPU (7.1% of 1.000 s wall x 1; threshold 5%)"
        );
        // The threshold is the user's.
        assert_eq!(
            judge(&figures(0.2, 0.0, Scope::Pinned), 1.0, ONE, 0.25),
            None
        );
        // Steal: 2% plus the resolution.
        assert_eq!(
            judge(&figures(0.0, 0.040, Scope::Host), 1.0, ONE, 0.05),
            None
        );
        let why = judge(&figures(0.0, 0.041, Scope::Host), 1.0, ONE, 0.05).unwrap();
        assert!(
            why.starts_with("the hypervisor stole 0.041 s from the host's 1 CPU"),
            "{why}"
        );
        // Both, and several CPUs: capacity and allowance scale with them.
        let four = Basis { cpus: 4, ..ONE };
        assert_eq!(
            judge(&figures(0.28, 0.0, Scope::Pinned), 1.0, four, 0.05),
            None
        );
        let why = judge(&figures(0.5, 0.5, Scope::Pinned), 1.0, four, 0.05).unwrap();
        assert!(
            why.contains("its 4 pinned CPUs") && why.contains("; the hypervisor"),
            "{why}"
        );
    }

    #[test]
    fn short_or_unmeasured_invocations_are_never_judged() {
        // Under 20 ticks (0.2 s) of wall time, even all of it taken by others.
        assert_eq!(
            judge(&figures(0.19, 0.19, Scope::Pinned), 0.199, ONE, 0.05),
            None
        );
        assert!(judge(&figures(0.19, 0.0, Scope::Pinned), 0.2, ONE, 0.05).is_some());
        assert_eq!(judge(&Disturbance::default(), 10.0, ONE, 0.05), None);
        assert_eq!(
            judge(&figures(1.0, 0.0, Scope::Pinned), f64::NAN, ONE, 0.05),
            None
        );
    }

    #[test]
    fn thresholds_are_percentages() {
        assert_eq!(parse_threshold("5%"), Ok(0.05));
        assert_eq!(parse_threshold(" 12.5 % "), Ok(0.125));
        assert_eq!(parse_threshold("100%"), Ok(1.0));
        assert_eq!(parse_threshold("5").unwrap_err(), "`5` is not a percentage");
        assert!(parse_threshold("0%").unwrap_err().contains("outside"));
        assert!(parse_threshold("101%").is_err());
        assert_eq!(percent(0.05), "5%");
        assert_eq!(percent(0.125), "12.5%");
    }
}
