//! What one invocation measured, as plain data: the numbers the sandbox produces and runs.csv
//! records ([`Measurement`]), the tree's rusage ([`Rusage`]), the pressure stall
//! ([`Pressure`]) and the limits the kernel applied ([`Applied`]).
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
