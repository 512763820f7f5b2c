//! What became of one invocation: its `status`, its `flags` and a `reason` (pure); and the
//! status of a whole run ([`RunStatus`]).
//!
//! Every row of `runs.csv` has exactly one status. Only `ok` rows count toward the statistics
//! (summaries, ratios, `compare`, plots, every report); every other status is excluded and
//! warned about.
//!
//! - `ok`: the workload exited 0 and its counters are consistent.
//! - `failed`: a non-zero exit or a signal. `oom`: killed by the cgroup's OOM killer.
//!   `timeout`: killed at the cell's `timeout`. `start-failed`: the command never started (the
//!   container could not be set up, or the `execve` failed): it has no exit code (never 127,
//!   which is a workload's own exit), and `reason` says why. `service-failed`: reserved for a
//!   service the workload depends on.
//! - `suspect`: the workload exited 0, but its numbers cannot be trusted (see [`suspect_cpu`]).
//!
//! Flags qualify a row without changing its status: `disturbed` (other tasks or steal took
//! more than the threshold of its CPUs, see [`crate::disturbance`]), `rerun` (the row replaces
//! an earlier row of the same cell, phase and invocation that was `disturbed`: `[run]
//! rerun-disturbed`), `log-truncated` (the workload wrote more than `[run] max-log` to stdout
//! or stderr: its log keeps the beginning and a marker line, and metric patterns saw only what
//! was kept). In `runs.csv` they are `;`-separated.
//!
//! One more flag lives in memory only, never in runs.csv: [`Flag::Replaced`], which the reader
//! puts on a row a later `rerun` row supersedes. A replaced row stays in runs.csv (it is
//! append-only) but never counts toward the statistics (see
//! `Sample::counts_toward_statistics`).
//!
//! An error of benchbox's own (a full output disk) is never a status: it stops the run
//! (`failed` in results.json) and the invocation in flight is not recorded at all.
//!
//! Rows written before the `status` column existed get theirs from how the invocation ended
//! ([`from_end`]); no older row can be `suspect` or `start-failed`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::results::Sample;

/// The status of one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ok,
    Failed,
    Oom,
    Timeout,
    StartFailed,
    ServiceFailed,
    Suspect,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Ok,
        Status::Failed,
        Status::Oom,
        Status::Timeout,
        Status::StartFailed,
        Status::ServiceFailed,
        Status::Suspect,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Oom => "oom",
            Status::Timeout => "timeout",
            Status::StartFailed => "start-failed",
            Status::ServiceFailed => "service-failed",
            Status::Suspect => "suspect",
        }
    }

    /// Whether an invocation with this status counts toward the statistics: only `ok` does.
    pub fn counts(self) -> bool {
        self == Status::Ok
    }

    /// Whether the invocation failed (as opposed to ran but cannot be trusted, or ok).
    pub fn is_failure(self) -> bool {
        !matches!(self, Status::Ok | Status::Suspect)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Status, String> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown status `{s}` (known: {})",
                    Status::ALL.map(Status::as_str).join(", ")
                )
            })
    }
}

/// The status of a whole run, as results.json records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// A benchbox is running it, or one that died left it so (`report` finishes it).
    Running,
    Complete,
    /// Stopped before every planned invocation ran (Ctrl-C, or rows missing from runs.csv).
    Interrupted,
    /// benchbox itself could not go on (a full output disk): see the run's `reason`.
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Complete => "complete",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A qualifier of one invocation that does not change its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flag {
    Disturbed,
    LogTruncated,
    Rerun,
    /// In memory only: a later `rerun` row of the same (cell, phase, invocation) supersedes
    /// this row, which is then left out of the statistics. Never written to runs.csv, and
    /// refused there: only the reader sets it.
    Replaced,
}

impl Flag {
    /// The flags runs.csv holds (not [`Flag::Replaced`], which is the reader's own).
    pub const ALL: [Flag; 3] = [Flag::Disturbed, Flag::LogTruncated, Flag::Rerun];

    pub fn as_str(self) -> &'static str {
        match self {
            Flag::Disturbed => "disturbed",
            Flag::LogTruncated => "log-truncated",
            Flag::Rerun => "rerun",
            Flag::Replaced => "replaced",
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `flags` cell of runs.csv: `;`-separated, empty for none. [`Flag::Replaced`] is never
/// written: it is what a reader learns from a later row, not a fact of this one.
pub fn format_flags(flags: &[Flag]) -> String {
    flags
        .iter()
        .filter(|f| **f != Flag::Replaced)
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(";")
}

/// The flags of a `flags` cell of runs.csv (empty: none).
pub fn parse_flags(text: &str) -> Result<Vec<Flag>, String> {
    text.split(';')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            Flag::ALL
                .into_iter()
                .find(|f| f.as_str() == t)
                .ok_or_else(|| {
                    format!(
                        "unknown flag `{t}` (known: {})",
                        Flag::ALL.map(Flag::as_str).join(", ")
                    )
                })
        })
        .collect()
}

/// "exit 3", "killed by signal 9", "killed: out of memory", "timed out".
pub fn describe_failure(
    exit_code: Option<i32>,
    signal: Option<i32>,
    oom: bool,
    timed_out: bool,
) -> String {
    if timed_out {
        return "timed out".into();
    }
    if oom {
        return "killed: out of memory".into();
    }
    match (exit_code, signal) {
        (_, Some(sig)) => format!("killed by signal {sig}"),
        (Some(code), None) => format!("exit {code}"),
        (None, None) => "did not finish".into(),
    }
}

/// The status and reason of an invocation from how it ended alone: `timeout`, `oom`, `failed`
/// (an exit code other than 0, or none: killed by a signal) or `ok` (with an empty reason).
pub fn from_end(
    exit_code: Option<i32>,
    signal: Option<i32>,
    oom: bool,
    timed_out: bool,
) -> (Status, String) {
    let status = if timed_out {
        Status::Timeout
    } else if oom {
        Status::Oom
    } else if exit_code != Some(0) {
        Status::Failed
    } else {
        return (Status::Ok, String::new());
    };
    (status, describe_failure(exit_code, signal, oom, timed_out))
}

/// The suspect rule's threshold: the cgroup's CPU must be at least this fraction (9/10) of
/// the reaped tree's rusage CPU.
pub const SUSPECT_CPU_RATIO: (i64, i64) = (9, 10);
/// The rule applies only when the rusage CPU is at least this many microseconds (10 ms):
/// below, tick-sampled and pre-exec time dominate and the two legitimately disagree.
pub const SUSPECT_MIN_RUSAGE_CPU_US: i64 = 10_000;

/// What [`suspect_cpu`]'s reasons start with, and their short form in warnings.
const SUSPECT_CPU_PREFIX: &str = "cgroup CPU ";
const SUSPECT_CPU_SHORT: &str = "cgroup CPU below rusage CPU";

/// Microseconds, as runs.csv stores CPU times (6 decimals): the rule decides on the values
/// written, so a row's status can be checked against its own numbers.
fn micros(s: f64) -> i64 {
    if s.is_finite() {
        (s * 1e6).round() as i64
    } else {
        0
    }
}

/// The suspect rule: `Some(reason)` when the cgroup's CPU (user + system) is below 90% of the
/// CPU in the `wait` rusage of the reaped tree and the latter is at least 10 ms. Every process
/// the workload's init reaped was born in the cgroup, and both count from the moment the
/// workload was ready, so the two agree but for scheduling noise; much smaller means its
/// counters were reset or lost under the invocation. Peak memory is deliberately not compared
/// with max RSS: the cgroup charge rightly leaves out shared file pages.
pub fn suspect_cpu(
    cgroup_user_s: f64,
    cgroup_system_s: f64,
    rusage_user_s: f64,
    rusage_system_s: f64,
) -> Option<String> {
    let cgroup = micros(cgroup_user_s) + micros(cgroup_system_s);
    let rusage = micros(rusage_user_s) + micros(rusage_system_s);
    let (num, den) = SUSPECT_CPU_RATIO;
    if rusage < SUSPECT_MIN_RUSAGE_CPU_US || cgroup * den >= rusage * num {
        return None;
    }
    Some(format!(
        "{SUSPECT_CPU_PREFIX}{:.3} s is below {}% of the reaped tree's {:.3} s (were the counters reset?)",
        cgroup as f64 / 1e6,
        num * 100 / den,
        rusage as f64 / 1e6
    ))
}

/// The status and reason of an invocation that started: how it ended ([`from_end`]) and, for
/// one that would be `ok`, the suspect rule on its counters ([`suspect_cpu`]). A failed,
/// OOM-killed or timed-out invocation keeps that status whatever its counters say.
pub fn judge(sample: &Sample) -> (Status, String) {
    let (status, reason) = from_end(
        sample.measured.exit_code,
        sample.measured.signal,
        sample.measured.oom_killed,
        sample.measured.timed_out,
    );
    if status != Status::Ok {
        return (status, reason);
    }
    match suspect_cpu(
        sample.measured.user_s,
        sample.measured.system_s,
        sample.measured.rusage.user_s,
        sample.measured.rusage.system_s,
    ) {
        Some(reason) => (Status::Suspect, reason),
        None => (Status::Ok, String::new()),
    }
}

/// The short form of a suspect reason, for warnings that count them: "cgroup CPU below
/// rusage CPU" for the CPU rule, the reason itself otherwise.
pub fn suspect_kind(reason: &str) -> &str {
    if reason.starts_with(SUSPECT_CPU_PREFIX) {
        SUSPECT_CPU_SHORT
    } else if reason.is_empty() {
        "no reason recorded"
    } else {
        reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_flags_round_trip_as_text() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>(), Ok(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert!(
            "OK".parse::<Status>()
                .unwrap_err()
                .contains("known: ok, failed")
        );
        assert_eq!(parse_flags(""), Ok(vec![]));
        let all = format_flags(&Flag::ALL);
        assert_eq!(all, "disturbed;log-truncated;rerun");
        assert_eq!(parse_flags(&all), Ok(Flag::ALL.to_vec()));
        assert!(parse_flags("rerun;nope").unwrap_err().contains("`nope`"));
        // `replaced` is the reader's, in memory only: never written, refused when read.
        assert_eq!(
            format_flags(&[Flag::Disturbed, Flag::Replaced]),
            "disturbed"
        );
        assert!(
            parse_flags("disturbed;replaced")
                .unwrap_err()
                .contains("`replaced`")
        );
    }

    #[test]
    fn only_ok_counts() {
        for s in Status::ALL {
            assert_eq!(s.counts(), s == Status::Ok, "{s}");
        }
        assert!(!Status::Suspect.is_failure());
        assert!(Status::StartFailed.is_failure());
    }

    #[test]
    fn status_from_how_it_ended() {
        assert_eq!(
            from_end(Some(0), None, false, false),
            (Status::Ok, "".into())
        );
        assert_eq!(
            from_end(Some(3), None, false, false),
            (Status::Failed, "exit 3".into())
        );
        assert_eq!(
            from_end(None, Some(9), false, false),
            (Status::Failed, "killed by signal 9".into())
        );
        assert_eq!(
            from_end(None, Some(9), true, false),
            (Status::Oom, "killed: out of memory".into())
        );
        // A timeout kills with SIGKILL; it is the timeout that matters.
        assert_eq!(
            from_end(None, Some(9), false, true),
            (Status::Timeout, "timed out".into())
        );
        assert_eq!(
            from_end(None, None, false, false),
            (Status::Failed, "did not finish".into())
        );
    }

    #[test]
    fn suspect_when_cgroup_cpu_is_below_90_percent_of_rusage() {
        assert_eq!(
            suspect_cpu(0.006, 0.002, 0.700, 0.042).as_deref(),
            Some(
                "cgroup CPU 0.008 s is below 90% of the reaped tree's 0.742 s (were the counters reset?)"
            )
        );
        // Agreeing counters, or a cgroup that saw more (children never waited for).
        assert_eq!(suspect_cpu(0.7, 0.04, 0.7, 0.042), None);
        assert_eq!(suspect_cpu(2.0, 0.0, 1.0, 0.0), None);
    }

    #[test]
    fn exactly_90_percent_is_not_suspect() {
        assert_eq!(suspect_cpu(0.9, 0.0, 1.0, 0.0), None);
        assert_eq!(suspect_cpu(0.6, 0.3, 0.5, 0.5), None, "sums, not parts");
        assert!(suspect_cpu(0.899999, 0.0, 1.0, 0.0).is_some());
        // At 10 ms exactly: 9 ms is 90%, 8.999 ms is below.
        assert_eq!(suspect_cpu(0.009, 0.0, 0.007, 0.003), None);
        assert!(suspect_cpu(0.008999, 0.0, 0.007, 0.003).is_some());
    }

    #[test]
    fn below_10_ms_of_rusage_cpu_is_never_suspect() {
        assert!(suspect_cpu(0.0, 0.0, 0.010, 0.0).is_some(), "10 ms counts");
        assert!(suspect_cpu(0.0, 0.0, 0.005, 0.005).is_some());
        assert_eq!(suspect_cpu(0.0, 0.0, 0.009999, 0.0), None);
        assert_eq!(suspect_cpu(0.0, 0.0, 0.0, 0.0), None);
        assert_eq!(suspect_cpu(0.0, 0.0, f64::NAN, 0.0), None);
    }

    fn sample(exit_code: Option<i32>, cgroup_cpu_s: f64, rusage_cpu_s: f64) -> Sample {
        Sample {
            cell_id: "c".into(),
            phase: crate::plan::Phase::Measure,
            index: 0,
            started_at: String::new(),
            measured: crate::measurement::Measurement {
                wall_s: 1.0,
                user_s: cgroup_cpu_s,
                system_s: 0.0,
                peak_memory_bytes: Some(1 << 20),
                io_read_bytes: None,
                io_write_bytes: None,
                exit_code,
                signal: None,
                oom_killed: false,
                timed_out: false,
                throttled_s: 0.0,
                rusage: crate::measurement::Rusage {
                    user_s: rusage_cpu_s,
                    // Max RSS far above the cgroup's peak is normal (shared file pages), not suspect.
                    max_rss_bytes: 1 << 30,
                    ..Default::default()
                },
                pressure: Default::default(),
                disturbance: Default::default(),
                counters: Default::default(),
            },
            status: Status::Ok,
            flags: Vec::new(),
            reason: String::new(),
            metrics: Default::default(),
        }
    }

    #[test]
    fn judge_applies_the_rule_only_to_what_would_be_ok() {
        assert_eq!(
            judge(&sample(Some(0), 0.74, 0.742)),
            (Status::Ok, "".into())
        );
        let (status, reason) = judge(&sample(Some(0), 0.008, 0.742));
        assert_eq!(status, Status::Suspect);
        assert!(
            reason.starts_with("cgroup CPU 0.008 s is below 90%"),
            "{reason}"
        );
        assert_eq!(
            judge(&sample(Some(2), 0.008, 0.742)),
            (Status::Failed, "exit 2".into())
        );
        let mut oom = sample(None, 0.0, 0.742);
        oom.measured.signal = Some(9);
        oom.measured.oom_killed = true;
        assert_eq!(judge(&oom).0, Status::Oom);
        let mut timeout = oom.clone();
        timeout.measured.timed_out = true;
        assert_eq!(judge(&timeout).0, Status::Timeout);
    }

    #[test]
    fn suspect_reasons_have_a_short_kind() {
        let reason = suspect_cpu(0.0, 0.0, 1.0, 0.0).unwrap();
        assert_eq!(suspect_kind(&reason), "cgroup CPU below rusage CPU");
        assert_eq!(suspect_kind("something else"), "something else");
        assert_eq!(suspect_kind(""), "no reason recorded");
    }
}
