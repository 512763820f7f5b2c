//! The sandbox: one fresh, isolated, measured container per invocation.
//!
//! This is the only module that forks into namespaces, mounts, pivots or writes cgroup files,
//! and the only home of `unsafe`. A [`Sandbox`], made once per run, runs one invocation per
//! call of [`Sandbox::run`]. One invocation, in order:
//!
//! 1. The parent forks a *launcher*, which leaves the terminal's session (so Ctrl-C reaches
//!    benchbox, which then tears the container down), unshares the mount, pid, uts, ipc (and,
//!    for `network = "none"`, net) namespaces and forks the container's *init*: pid 1 of the
//!    new pid namespace.
//! 2. Meanwhile the parent creates a fresh cgroup ([`cgroup`]) with the limits applied and read
//!    back, and tells init where it is. Init builds the root filesystem ([`mounts`]: the
//!    writable layer and /run in a tmpfs of the container's own, unless the layer is asked on
//!    disk), pivots into it and only then mounts /proc (sensitive files masked), /sys, /dev,
//!    /run and the volumes, so every path resolves inside the container; then it shows the
//!    group read-only at /sys/fs/cgroup, sets the hostname, brings `lo` up, and forks the
//!    *workload* process, born in the group: on cgroup v2 (Linux 5.7+) by
//!    `clone3(CLONE_INTO_CGROUP)`, init itself staying outside the group; elsewhere init joins
//!    the group first. The workload unshares its cgroup namespace (rooted at the group). The
//!    workload must not be pid 1: pid 1 ignores signals it has no handler for and must reap
//!    orphans, so init stays behind as a minimal init that forwards
//!    SIGTERM/SIGINT/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 and reaps.
//! 3. The workload drops to its capabilities and installs its seccomp filter ([`security`]),
//!    switches user, reports "ready" and blocks; the parent waits until earlier invocations are
//!    torn down, resets the peak-memory counter and notes the CPU and pressure counters (so
//!    setup is not charged to the workload), then says "go". The workload reads its own CPU
//!    time so far and CLOCK_MONOTONIC immediately before its `execve` and sends them: the wall
//!    clock starts there (its end of a close-on-exec pipe closes at the exec itself, which
//!    tells the parent the exec happened), and stops at the instant init reaps the workload.
//!    Both readings are taken inside the container, so a busy host delaying the parent does
//!    not stretch or shrink the measurement. Its stdout and stderr are pipes that a thread of
//!    the parent drains into the logs. The parent tells a caller's [`Watcher`] of the exec once
//!    it has seen it, and of the workload's end when it reads the final counters (step 4): the
//!    caller measures whatever it runs beside the workload (a cell's services) over that window.
//! 4. When the workload exits, init SIGKILLs and reaps whatever it left in the pid namespace,
//!    then sends its final status (with the `wait` rusage of the tree) and the metrics file.
//!    The parent reads the cgroup's counters at that moment: final, and without the teardown.
//!    On timeout or Ctrl-C the parent SIGKILLs every process in the cgroup instead.
//! 5. The rest of the teardown (the namespaces and their mounts dying with init, the
//!    launcher's exit, the cgroup's removal) finishes on a thread, overlapping the next
//!    invocation's setup, and is waited for before the next workload starts.
//!
//! Rootless (an ordinary user, [`Invocation::userns`] set) the launcher unshares a user
//! namespace with the others and waits until the parent has written its id map ([`userns`]);
//! the mounts differ a little (see [`mounts`]). Without a cgroup (a [`Sandbox`] given none: a
//! rootless run without a delegated subtree) nothing is limited, and CPU time and peak memory
//! come from the `wait` rusage of the workload's tree ([`nogroup`]).
//!
//! The code is split by the process it runs in and by role: this file is the API;
//! `supervise` is the parent's side of an invocation, `child` everything after the fork (with
//! its own rules), `protocol` the messages between them, `output` the draining of the
//! workload's output into its logs, and `teardown` what follows the measurement.

pub mod cgroup;
mod child;
pub mod counters;
pub mod mounts;
pub mod network;
pub mod nogroup;
mod output;
mod protocol;
pub mod security;
mod supervise;
mod teardown;
pub mod user;
pub mod userns;

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use cgroup::{Hierarchy, Limits};
pub use output::{TRUNCATION_MARKER, kept_output};

use crate::measurement::{Applied, Measurement};
use teardown::{Teardown, Teardowns};

/// The container's root filesystem.
#[derive(Debug, Clone, PartialEq)]
pub enum RootSpec {
    /// The host's `/`, read-only, with a private writable `/tmp` (overlay; `tmp_lower` is a
    /// setup step's `/tmp` to show below it).
    Host { tmp_lower: Option<PathBuf> },
    /// An overlay of these directories (top first) with a fresh upper layer per invocation.
    Overlay { lowers: Vec<PathBuf> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    pub host: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

/// Everything that defines one invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub root: RootSpec,
    pub volumes: Vec<Volume>,
    pub workdir: Option<PathBuf>,
    /// Run the workload as this user (see [`user`]); `None`: root.
    pub user: Option<String>,
    /// The workload's whole environment (nothing is inherited from benchbox).
    pub env: Vec<(String, String)>,
    pub argv: Vec<String>,
    pub hostname: String,
    /// `false`: a private network namespace with only loopback, up.
    pub host_network: bool,
    /// Join this network namespace rather than making one (a cell with services: they and
    /// the workload share it). Ignored with `host_network`.
    pub network: Option<std::sync::Arc<network::Network>>,
    pub limits: Limits,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// Bytes of each stream the log files keep (`None`: all). Output past it is still read
    /// (the workload never blocks on its output) and discarded, and a marker line ending in
    /// [`TRUNCATION_MARKER`] is appended to the log.
    pub max_log: Option<u64>,
    pub timeout: Option<Duration>,
    /// Sample the group's memory use this often (`None`: not sampled).
    pub memory_interval: Option<Duration>,
    /// Parent directory for this invocation's scratch space (must not be on overlayfs).
    pub scratch_base: PathBuf,
    /// Where the writable layer lives: in a tmpfs private to the container (`false`), or on
    /// disk in a directory under `scratch_base` (`true`; always so with `keep_upper`).
    pub upper_on_disk: bool,
    /// Keep the writable layer here after a successful run (a cell's setup step): the overlay
    /// upper for a rootfs, the `/tmp` upper on the host filesystem.
    pub keep_upper: Option<PathBuf>,
    /// What the workload may do beyond the hardened defaults (see [`security`]).
    pub security: security::Policy,
    /// Rootless: the container gets a user namespace with this id map (`None`: benchbox runs
    /// as root, and so does the container, held in by the hardening).
    pub userns: Option<userns::IdMap>,
    /// The perf_event counters to attach to the workload's tree, by runs.csv column (a
    /// subset of [`counters::available`]'s; empty: none).
    pub counters: Vec<&'static str>,
}

/// What one invocation gave: its [`Measurement`] and what only the sandbox knows about it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub measured: Measurement,
    /// Ctrl-C (`cancel`) stopped it: its measurement is incomplete.
    pub interrupted: bool,
    /// Periods in which the group's CPU quota ran out (the time is `measured.throttled_s`).
    pub nr_throttled: u64,
    pub applied: Applied,
    /// Contents of the `BENCHBOX_METRICS` file the workload may have written.
    pub metrics_file: String,
    /// The group's memory use (bytes) sampled every `memory_interval`: (seconds since the
    /// exec, bytes).
    pub memory_timeline: Vec<(f64, u64)>,
    /// Whether stdout and stderr wrote more than `max_log`: their logs hold the first
    /// `max_log` bytes and a marker line.
    pub output_truncated: [bool; 2],
    /// What the `disturbed` rule needs beside `measured.disturbance` (how many CPUs the figures
    /// cover, the tick rate); `None` when `/proc/stat` could not be read.
    pub disturbance: Option<crate::disturbance::Basis>,
}

impl Outcome {
    /// The workload ran to its end and did not fail (see [`Measurement::failed`]).
    pub fn succeeded(&self) -> bool {
        !self.measured.failed() && !self.interrupted
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{0}")]
    Cgroup(#[from] cgroup::CgroupError),
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the container: {0}")]
    Sys(#[from] nix::Error),
    #[error("container setup failed: {0}")]
    Setup(String),
    #[error("cannot run `{argv0}`: {message}")]
    Exec { argv0: String, message: String },
    /// The workload's output could not be written to its log (a full disk): benchbox's
    /// failure, not the workload's, which ran undisturbed (its output was still drained). The
    /// invocation is torn down as usual, but its outcome is not returned: its log is incomplete.
    #[error("cannot write the workload's output to `{path}`: {source}")]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, SandboxError>;

/// Where the workload finds its metrics file.
pub const METRICS_PATH: &str = match METRICS_PATH_C.to_str() {
    Ok(path) => path,
    Err(_) => panic!("the metrics path is UTF-8"),
};
/// The same, as init opens it.
const METRICS_PATH_C: &std::ffi::CStr = c"/run/benchbox/metrics";

/// Told the two moments that bound a workload's measured time, as they happen, on the thread
/// that runs the invocation: what a caller measures beside the workload (the runner, a cell's
/// services) is measured over exactly that window. Neither is told when the container never
/// got as far as the exec; `exited` only after `exec`.
pub trait Watcher {
    /// The workload has exec'd (or died just before: then the invocation fails to start): its
    /// wall time runs.
    fn exec(&self) {}
    /// The workload and everything it left behind are gone; its counters are read now.
    fn exited(&self) {}
}

/// A [`Watcher`] for a caller with nothing to measure beside the workload.
struct Unwatched;

impl Watcher for Unwatched {}

/// Runs invocations, one at a time per call, each in a fresh container, and owns the
/// teardowns of those that ended: each finishes on a thread of its own, overlapping the next
/// invocation's setup, and all are waited for before the next workload starts (and when the
/// sandbox is dropped), so a teardown never overlaps a measurement.
pub struct Sandbox {
    /// Where invocations get their cgroups; `None`: no cgroup (no limits; CPU time and peak
    /// memory from rusage, see [`nogroup`]).
    cgroups: Option<Hierarchy>,
    teardowns: Teardowns,
}

/// Numbers the groups of this process's invocations, whichever sandbox runs them.
static GROUP_SEQ: AtomicU64 = AtomicU64::new(0);

/// A fresh group name for [`Sandbox::run_in_group`], from the same sequence as
/// [`Sandbox::run`]'s: for a caller that must know the group of an invocation it runs (a
/// service, whose counters are read while it runs).
pub fn next_group_name() -> String {
    cgroup::group_name(GROUP_SEQ.fetch_add(1, Ordering::SeqCst))
}

impl Sandbox {
    pub fn new(cgroups: Option<Hierarchy>) -> Sandbox {
        Sandbox {
            cgroups,
            teardowns: Teardowns::default(),
        }
    }

    /// Run one invocation to completion (or timeout, or `cancel`), in a fresh cgroup.
    pub fn run(&self, inv: &Invocation, cancel: &AtomicBool) -> Result<Outcome> {
        self.run_watched(inv, cancel, &Unwatched)
    }

    /// [`Sandbox::run`], telling `watcher` when the workload's measured time starts and ends.
    pub fn run_watched(
        &self,
        inv: &Invocation,
        cancel: &AtomicBool,
        watcher: &dyn Watcher,
    ) -> Result<Outcome> {
        let group_name = cgroup::group_name(GROUP_SEQ.fetch_add(1, Ordering::SeqCst));
        self.run_in(inv, &group_name, cancel, watcher)
    }

    /// [`Sandbox::run`] in a cgroup called `group_name` (tests look at the group while it
    /// runs). The name must be unused, and start `inv-<pid>-` for a stale group to be swept.
    pub fn run_in_group(
        &self,
        inv: &Invocation,
        group_name: &str,
        cancel: &AtomicBool,
    ) -> Result<Outcome> {
        self.run_in(inv, group_name, cancel, &Unwatched)
    }

    fn run_in(
        &self,
        inv: &Invocation,
        group_name: &str,
        cancel: &AtomicBool,
        watcher: &dyn Watcher,
    ) -> Result<Outcome> {
        // By default nothing of an invocation touches the disk: its writable layer and /run
        // live in a tmpfs mounted inside its own mount namespace, which vanishes with it.
        // (Creating and deleting a handful of inodes per invocation on ext4 cost ~1 ms, and
        // more the more inodes were deleted in the last minutes: ext4 without a journal skips
        // recently freed inodes.)
        let disk_scratch = if inv.upper_on_disk || inv.keep_upper.is_some() {
            Some(
                tempfile::Builder::new()
                    .prefix(&format!("inv-{}-", std::process::id()))
                    .tempdir_in(&inv.scratch_base)
                    .map_err(|source| SandboxError::Io {
                        action: "create scratch dir in",
                        path: inv.scratch_base.clone(),
                        source,
                    })?,
            )
        } else {
            None
        };
        let mut group = None;
        let settled = supervise::run_in(
            inv,
            self.cgroups.as_ref(),
            group_name,
            &mut group,
            disk_scratch.as_ref().map(|d| d.path()),
            &self.teardowns,
            cancel,
            watcher,
        );
        let (outcome, launcher, group, output_error) = match (settled, group) {
            (Ok((outcome, launcher, output_error)), Some(group)) => {
                (outcome, launcher, group, output_error)
            }
            (Err(e), group) => {
                if let Some(group) = group {
                    let _ = group.remove();
                }
                return Err(e);
            }
            (Ok(_), None) => unreachable!("run_in makes the group before it settles"),
        };
        let mut teardown = Teardown {
            launcher,
            group,
            disk_scratch: disk_scratch.map(tempfile::TempDir::keep),
        };
        if let Some(keep) = &inv.keep_upper {
            // A setup step: its writable layer is kept once the container is gone for good.
            let kept =
                teardown
                    .reap_and_remove_group()
                    .and_then(|()| match &teardown.disk_scratch {
                        Some(scratch) if outcome.succeeded() => {
                            fs::rename(scratch.join("upper"), keep).map_err(|source| {
                                SandboxError::Io {
                                    action: "keep the setup layer at",
                                    path: keep.clone(),
                                    source,
                                }
                            })
                        }
                        _ => Ok(()),
                    });
            if let Err(e) = kept {
                let _ = teardown.finish();
                return Err(e);
            }
        }
        // The rest of the teardown (the namespaces dying, the launcher's exit, the cgroup's
        // and a disk scratch directory's removal: ~0.7 ms) happens on a thread, overlapping the
        // next invocation's container setup; `supervise` waits for it before the next workload
        // may start, so it never overlaps a measurement.
        self.teardowns.start(teardown);
        match output_error {
            // Torn down as usual; the outcome is not returned (its log is incomplete).
            Some(e) => Err(e),
            None => Ok(outcome),
        }
    }

    /// Wait until every finished invocation is torn down: no process, mount, cgroup or scratch
    /// directory of it left (before a run ends; each invocation waits before its workload
    /// starts). The first error of a teardown (a cgroup that would not go away) is returned.
    pub fn wait_for_cleanup(&self) -> Result<()> {
        self.teardowns.wait()
    }
}

impl Drop for Sandbox {
    /// Nothing of an invocation outlives its sandbox (errors are the caller's to ask for, with
    /// [`Sandbox::wait_for_cleanup`]).
    fn drop(&mut self) {
        let _ = self.teardowns.wait();
    }
}
