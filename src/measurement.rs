//! What one invocation measured, as plain data: the numbers the sandbox produces and runs.csv
//! records ([`Measurement`]), the tree's rusage ([`Rusage`]), the pressure stall
//! ([`Pressure`]), the perf_event counters ([`Counters`]) and the limits the kernel applied
//! ([`Applied`]).
//!
//! These types are shared by the sandbox (which fills them), the results (which store them)
//! and the reports (which read them), so they live outside `sandbox/`: reading a results file
//! needs no syscall module. Nothing here does I/O.

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

/// The `wait` resource usage of the workload's tree (everything its init reaped), a cross-check of
/// the cgroup's accounting. Its CPU times count from just after the cgroup's baseline: what the
/// workload process used before it was told to go (its own setup, mostly attaching the seccomp
/// filter, which the kernel does by running the filter for every system call number) is taken
/// out, as it is of the cgroup's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rusage {
    pub user_s: f64,
    pub system_s: f64,
    pub max_rss_bytes: u64,
    pub minor_faults: u64,
    pub major_faults: u64,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
}

/// Pressure stall information (PSI) of a group, in microseconds: how long some (or all)
/// of its runnable tasks waited for a CPU, for memory (reclaim, refaults) or for I/O.
/// In the cgroup's counters these are the cumulative `total=` values of the group's
/// `cpu.pressure`, `memory.pressure` and `io.pressure`; in a [`Measurement`], the stall during
/// the invocation (see [`Pressure::since`]). `None`: not measured -- cgroup v1, or a kernel
/// without PSI (`CONFIG_PSI` off, `psi=0`), where the files are missing or unreadable. They are
/// noise signals, not performance: a benchmark that stalled on memory or I/O was disturbed (or
/// is about memory or I/O), which a reader wants to see beside its numbers.
///
/// The field names are the runs.csv columns and results.json's keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pressure {
    pub psi_cpu_some_us: Option<u64>,
    pub psi_memory_some_us: Option<u64>,
    pub psi_memory_full_us: Option<u64>,
    pub psi_io_some_us: Option<u64>,
    pub psi_io_full_us: Option<u64>,
}

impl Pressure {
    /// The column names, in the order runs.csv has them (see [`Pressure::values`]).
    pub const COLUMNS: [&'static str; 5] = [
        "psi_cpu_some_us",
        "psi_memory_some_us",
        "psi_memory_full_us",
        "psi_io_some_us",
        "psi_io_full_us",
    ];

    /// The values in the order of [`Pressure::COLUMNS`].
    pub fn values(&self) -> [Option<u64>; 5] {
        [
            self.psi_cpu_some_us,
            self.psi_memory_some_us,
            self.psi_memory_full_us,
            self.psi_io_some_us,
            self.psi_io_full_us,
        ]
    }

    /// From values in the order of [`Pressure::COLUMNS`].
    pub fn from_values(v: [Option<u64>; 5]) -> Pressure {
        Pressure {
            psi_cpu_some_us: v[0],
            psi_memory_some_us: v[1],
            psi_memory_full_us: v[2],
            psi_io_some_us: v[3],
            psi_io_full_us: v[4],
        }
    }

    /// The stall between `baseline` and `self` (two readings of one group's totals): empty
    /// where either reading is.
    pub fn since(&self, baseline: &Pressure) -> Pressure {
        let delta = |now: Option<u64>, then: Option<u64>| Some(now?.saturating_sub(then?));
        let (now, then) = (self.values(), baseline.values());
        Pressure::from_values(std::array::from_fn(|i| delta(now[i], then[i])))
    }
}

/// The perf_event counters of the workload's process tree, from its exec to the exit of its
/// last process (counted per task and inherited by every process it starts). `None`: not
/// counted -- `[run] counters = false`, a hardware counter on a host without a PMU (most
/// VMs), or a counter the kernel refused (`kernel.perf_event_paranoid` for a rootless run).
/// A counter the kernel multiplexed with others (more hardware events than the PMU has
/// registers) is scaled by enabled/running time, and `counters_scaled` says so.
///
/// The field names are the runs.csv columns, in [`Counters::COLUMNS`]'s order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    /// The tree's time on a CPU as the scheduler counted it (`task-clock`), seconds.
    pub task_clock_s: Option<f64>,
    pub context_switches: Option<u64>,
    pub cpu_migrations: Option<u64>,
    pub page_faults: Option<u64>,
    pub instructions: Option<u64>,
    pub cycles: Option<u64>,
    pub branches: Option<u64>,
    pub branch_misses: Option<u64>,
    pub cache_misses: Option<u64>,
    /// Whether any counter ran only part of the time and was scaled up (an estimate).
    pub counters_scaled: Option<bool>,
}

impl Counters {
    /// The software counters' columns: counted wherever perf_event is allowed.
    pub const SOFTWARE: [&'static str; 4] = [
        "task_clock_s",
        "context_switches",
        "cpu_migrations",
        "page_faults",
    ];
    /// The hardware counters' columns: only on a host with a PMU.
    pub const HARDWARE: [&'static str; 5] = [
        "instructions",
        "cycles",
        "branches",
        "branch_misses",
        "cache_misses",
    ];
    /// Every column, in runs.csv's order: the software ones, the hardware ones, then
    /// `counters_scaled`.
    pub const COLUMNS: [&'static str; 10] = [
        "task_clock_s",
        "context_switches",
        "cpu_migrations",
        "page_faults",
        "instructions",
        "cycles",
        "branches",
        "branch_misses",
        "cache_misses",
        "counters_scaled",
    ];

    /// The value of a counter column as a number (`counters_scaled` is not one).
    pub fn value(&self, column: &str) -> Option<f64> {
        let count = |c: Option<u64>| c.map(|c| c as f64);
        match column {
            "task_clock_s" => self.task_clock_s,
            "context_switches" => count(self.context_switches),
            "cpu_migrations" => count(self.cpu_migrations),
            "page_faults" => count(self.page_faults),
            "instructions" => count(self.instructions),
            "cycles" => count(self.cycles),
            "branches" => count(self.branches),
            "branch_misses" => count(self.branch_misses),
            "cache_misses" => count(self.cache_misses),
            _ => None,
        }
    }

    /// The count of a whole-number column (every one but `task_clock_s`, `counters_scaled`).
    pub fn count_mut(&mut self, column: &str) -> Option<&mut Option<u64>> {
        Some(match column {
            "context_switches" => &mut self.context_switches,
            "cpu_migrations" => &mut self.cpu_migrations,
            "page_faults" => &mut self.page_faults,
            "instructions" => &mut self.instructions,
            "cycles" => &mut self.cycles,
            "branches" => &mut self.branches,
            "branch_misses" => &mut self.branch_misses,
            "cache_misses" => &mut self.cache_misses,
            _ => return None,
        })
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        Counters::COLUMNS.iter().all(|c| self.value(c).is_none())
    }
}

/// What one invocation measured: the sandbox's result ([`crate::sandbox::Outcome`] holds one)
/// and the measured part of a runs.csv row ([`crate::results::Sample`] holds one). Times are
/// seconds, as runs.csv records them, so a row read back is the value that was written.
///
/// The field names are the runs.csv columns and results.json's keys, in their order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// From the workload's exec to its exit.
    pub wall_s: f64,
    pub user_s: f64,
    pub system_s: f64,
    pub peak_memory_bytes: Option<u64>,
    pub io_read_bytes: Option<u64>,
    pub io_write_bytes: Option<u64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub oom_killed: bool,
    pub timed_out: bool,
    /// CPU time whose quota ran out in a period (the workload waited for the next one).
    pub throttled_s: f64,
    /// `wait` rusage of the workload's tree (the processes its init reaped): a cross-check of
    /// the cgroup's accounting.
    pub rusage: Rusage,
    /// Pressure stall time during the invocation (`psi_*_us`, empty where not measured): a
    /// noise signal recorded beside the numbers, never a metric to compare.
    #[serde(flatten)]
    pub pressure: Pressure,
    /// Other tasks' CPU time and steal on the invocation's CPUs over its window
    /// (`other_cpu_s`, `steal_s`, `disturbance_scope`; empty where not measured): a noise
    /// signal, like the pressure; see [`crate::disturbance`].
    #[serde(flatten)]
    pub disturbance: crate::disturbance::Disturbance,
    /// The perf_event counters of the workload's tree (empty where not counted).
    #[serde(flatten)]
    pub counters: Counters,
}

impl Measurement {
    /// Whether the workload ended badly: a nonzero exit (or none: killed by a signal), an OOM
    /// kill or a timeout. The one rule for "the workload failed"; `status::from_end` names
    /// which failure, and gives a failure status exactly when this holds.
    pub fn failed(&self) -> bool {
        self.exit_code != Some(0) || self.oom_killed || self.timed_out
    }

    pub fn cpu_s(&self) -> f64 {
        self.user_s + self.system_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressure_during_an_invocation_is_the_difference_of_two_readings() {
        let at = |v: [Option<u64>; 5]| Pressure::from_values(v);
        let baseline = at([Some(100), Some(5), Some(1), Some(0), None]);
        let last = at([Some(350), Some(5), Some(4), None, None]);
        assert_eq!(
            last.since(&baseline).values(),
            [Some(250), Some(0), Some(3), None, None]
        );
        assert_eq!(
            Pressure::default().since(&Pressure::default()),
            Pressure::default()
        );
        // Totals never go down in one group; a reading that did is clamped, never negative.
        assert_eq!(at([Some(1); 5]).since(&at([Some(2); 5])), at([Some(0); 5]));
        assert_eq!(Pressure::COLUMNS.len(), at([None; 5]).values().len());
    }

    #[test]
    fn failed_agrees_with_the_status_rule() {
        for exit_code in [None, Some(0), Some(1)] {
            for signal in [None, Some(9)] {
                for oom_killed in [false, true] {
                    for timed_out in [false, true] {
                        let m = Measurement {
                            exit_code,
                            signal,
                            oom_killed,
                            timed_out,
                            ..Default::default()
                        };
                        let (status, _) =
                            crate::status::from_end(exit_code, signal, oom_killed, timed_out);
                        assert_eq!(m.failed(), status != crate::status::Status::Ok, "{m:?}");
                    }
                }
            }
        }
    }
}
