//! The sandbox: one fresh, isolated, measured container per invocation.
//!
//! This is the only module that forks into namespaces, mounts, pivots or writes cgroup files,
//! and the only home of `unsafe`. One invocation, in order:
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
//!    the parent drains into the logs.
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
//! the mounts differ a little (see [`mounts`]). Without a cgroup ([`run_with`] given none: a
//! rootless run without a delegated subtree) nothing is limited, and CPU time and peak memory
//! come from the `wait` rusage of the workload's tree ([`nogroup`]).

pub mod cgroup;
pub mod mounts;
pub mod nogroup;
pub mod security;
pub mod user;
pub mod userns;

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
use nix::sys::time::TimeValLike;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::time::{ClockId, clock_gettime};
use nix::unistd::{ForkResult, Pid, fork, pipe2, sethostname, setsid};
use serde::{Deserialize, Serialize};

pub use cgroup::{Applied, Hierarchy, Limits, Pressure};
use mounts::MountPlan;

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

/// What one invocation measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// From the workload's exec to its exit.
    pub wall: Duration,
    pub cpu_user: Duration,
    pub cpu_system: Duration,
    pub memory_peak: Option<u64>,
    pub io_read_bytes: Option<u64>,
    pub io_write_bytes: Option<u64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub oom_killed: bool,
    pub timed_out: bool,
    pub interrupted: bool,
    pub nr_throttled: u64,
    pub throttled: Duration,
    /// The group's pressure stall time during the invocation (from the baseline, read just
    /// before "go", to the final reading); empty where not measured (v1, PSI off).
    pub pressure: Pressure,
    pub rusage: Rusage,
    pub applied: Applied,
    /// Contents of the `BENCHBOX_METRICS` file the workload may have written.
    pub metrics_file: String,
    /// The group's memory use (bytes) sampled every `memory_interval`: (seconds since the
    /// exec, bytes).
    pub memory_timeline: Vec<(f64, u64)>,
    /// Whether stdout and stderr wrote more than `max_log`: their logs hold the first
    /// `max_log` bytes and a marker line.
    pub output_truncated: [bool; 2],
}

impl Outcome {
    pub fn failed(&self) -> bool {
        self.exit_code != Some(0) || self.oom_killed || self.timed_out || self.interrupted
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

/// Run one invocation to completion (or timeout, or `cancel`), and tear everything down.
pub fn run(
    inv: &Invocation,
    cgroups: &Hierarchy,
    group_name: &str,
    cancel: &AtomicBool,
) -> Result<Outcome> {
    run_with(inv, Some(cgroups), group_name, cancel)
}

/// [`run`], in a fresh cgroup of `cgroups`, or in none (`None`: no limits; CPU time and peak
/// memory from rusage, see [`nogroup`]).
pub fn run_with(
    inv: &Invocation,
    cgroups: Option<&Hierarchy>,
    group_name: &str,
    cancel: &AtomicBool,
) -> Result<Outcome> {
    // By default nothing of an invocation touches the disk: its writable layer and /run live in
    // a tmpfs mounted inside its own mount namespace, which vanishes with it. (Creating and
    // deleting a handful of inodes per invocation on ext4 cost ~1 ms, and more the more inodes
    // were deleted in the last minutes: ext4 without a journal skips recently freed inodes.)
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
    let settled = run_in(
        inv,
        cgroups,
        group_name,
        &mut group,
        disk_scratch.as_ref().map(|d| d.path()),
        cancel,
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
        let kept = teardown
            .reap_and_remove_group()
            .and_then(|()| match &teardown.disk_scratch {
                Some(scratch) if !outcome.failed() => fs::rename(scratch.join("upper"), keep)
                    .map_err(|source| SandboxError::Io {
                        action: "keep the setup layer at",
                        path: keep.clone(),
                        source,
                    }),
                _ => Ok(()),
            });
        if let Err(e) = kept {
            let _ = teardown.finish();
            return Err(e);
        }
    }
    if let Some(e) = output_error {
        // Torn down as usual; the outcome is not returned (its log is incomplete).
        lock_teardowns().running += 1;
        std::thread::spawn(move || finish_teardown(teardown));
        return Err(e);
    }
    // The rest of the teardown (the namespaces dying, the launcher's exit, the cgroup's and a
    // disk scratch directory's removal: ~0.7 ms) happens on a thread, overlapping the next
    // invocation's container setup; `supervise` waits for it before the next workload may
    // start, so it never overlaps a measurement.
    lock_teardowns().running += 1;
    std::thread::spawn(move || finish_teardown(teardown));
    Ok(outcome)
}

/// The body of a teardown thread (counted in [`TEARDOWNS`] by the caller).
fn finish_teardown(teardown: Teardown) {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| teardown.finish()))
        .unwrap_or_else(|_| Err(SandboxError::Setup("a teardown thread panicked".into())));
    let mut pending = lock_teardowns();
    pending.running -= 1;
    if let Err(e) = result {
        pending.errors.push(e);
    }
    TEARDOWN_DONE.notify_all();
}

/// What is left of an invocation once its measurements are taken.
struct Teardown {
    /// The launcher, when it is still to be reaped (it exits once the namespaces are gone).
    launcher: Option<Pid>,
    group: Box<dyn cgroup::Group>,
    disk_scratch: Option<PathBuf>,
}

impl Teardown {
    fn reap_and_remove_group(&mut self) -> Result<()> {
        let reaped = match self.launcher.take() {
            Some(launcher) => wait_with_rusage(launcher).map(|_| ()),
            None => Ok(()),
        };
        let removed = self.group.remove();
        reaped?;
        Ok(removed?)
    }

    fn finish(mut self) -> Result<()> {
        let done = self.reap_and_remove_group();
        if let Some(dir) = &self.disk_scratch {
            let _ = fs::remove_dir_all(dir);
        }
        done
    }
}

/// Teardowns of finished invocations still running in the background, and the errors of
/// those that ended.
struct Teardowns {
    running: usize,
    errors: Vec<SandboxError>,
}

static TEARDOWNS: std::sync::Mutex<Teardowns> = std::sync::Mutex::new(Teardowns {
    running: 0,
    errors: Vec::new(),
});
static TEARDOWN_DONE: std::sync::Condvar = std::sync::Condvar::new();

fn lock_teardowns() -> std::sync::MutexGuard<'static, Teardowns> {
    TEARDOWNS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Wait until every finished invocation is torn down: no process, mount, cgroup or scratch
/// directory of it left (before a workload starts, and before a run ends), whichever thread
/// ran it. The first error of a teardown (a cgroup that would not go away) is returned.
pub fn wait_for_cleanup() -> Result<()> {
    let mut pending = lock_teardowns();
    while pending.running > 0 {
        pending = TEARDOWN_DONE
            .wait(pending)
            .unwrap_or_else(|e| e.into_inner());
    }
    match pending.errors.drain(..).next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

static FORK_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Messages from the container to the parent over the report pipe: a tag byte, a u32 length,
/// the payload. Only the metrics file may exceed PIPE_BUF, and init sends it when no other
/// process of the container writes to the pipe any more, so messages never interleave.
const MSG_READY: u8 = b'R';
const MSG_ERROR: u8 = b'E';
const MSG_EXEC_ERROR: u8 = b'X';
const MSG_STATUS: u8 = b'S';
const MSG_EXEC_TIME: u8 = b'T';
const MSG_METRICS: u8 = b'M';
/// Init's last message: nothing follows.
const MSG_END: u8 = b'Z';
/// From the parent to init, over their own pipe (see [`send_group`]).
const MSG_BIRTH: u8 = b'B';
const MSG_JOIN: u8 = b'J';
const MSG_VIEW: u8 = b'V';

/// The most of the metrics file init passes on (a runaway workload could fill its tmpfs).
const METRICS_LIMIT: u64 = 1 << 20;

/// One message in one `writev` (atomic on a pipe up to PIPE_BUF), with no allocation: init
/// sends its last messages from a cgroup that may be full.
fn send(fd: RawFd, tag: u8, payload: &[u8]) {
    let mut head = [tag, 0, 0, 0, 0];
    head[1..].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    write_all(fd, [&head, payload]);
}

/// Write both buffers whole, in as few `writev`s as the pipe allows.
fn write_all(fd: RawFd, mut parts: [&[u8]; 2]) {
    while parts.iter().any(|p| !p.is_empty()) {
        let iov = parts.map(|p| libc::iovec {
            iov_base: p.as_ptr() as *mut libc::c_void,
            iov_len: p.len(),
        });
        // SAFETY: the iovecs point into live buffers of the given lengths.
        let n = unsafe { libc::writev(fd, iov.as_ptr(), 2) };
        if n < 0 && nix::Error::last() == nix::Error::EINTR {
            continue;
        }
        if n <= 0 {
            return;
        }
        let mut written = n as usize;
        for part in &mut parts {
            let done = written.min(part.len());
            *part = &part[done..];
            written -= done;
        }
    }
}

fn read_one_message(file: &mut impl Read) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    file.read_exact(&mut head).ok()?;
    let len = u32::from_le_bytes(head[1..5].try_into().unwrap()) as usize;
    let mut payload = vec![0u8; len];
    file.read_exact(&mut payload).ok()?;
    Some((head[0], payload))
}

fn monotonic_ns() -> i64 {
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map(|t| t.num_nanoseconds())
        .unwrap_or(0)
}

/// Everything the child processes need, prepared before the fork so they allocate little.
struct ChildPlan {
    unshare: CloneFlags,
    mounts: MountPlan,
    hostname: String,
    loopback: bool,
    workdir: CString,
    user: Option<String>,
    /// The capabilities to keep and the seccomp filter (compiled before the fork).
    security: security::Prepared,
    argv: Vec<CString>,
    env: Vec<CString>,
    path_var: String,
    /// Write ends of the pipes benchbox drains into the logs: never a file on the host's disk,
    /// which the workload could use as a handle to reach the host's filesystem.
    stdout: OwnedFd,
    stderr: OwnedFd,
    report_w: RawFd,
    go_r: RawFd,
    exec_w: RawFd,
    /// Where init reads the cgroup to join (see [`send_group`]).
    group_r: RawFd,
    /// Rootless: how the launcher and the parent take turns on the user namespace's id map.
    userns: Option<UsernsTurns>,
    /// Descriptors the children must close (the parent's ends).
    parent_fds: Vec<RawFd>,
}

/// The launcher's ends of the two pipes around the id map: it says it has unshared, then
/// waits until the parent says the map is written.
struct UsernsTurns {
    unshared_w: RawFd,
    mapped_r: RawFd,
    /// Subordinate ids are mapped (not only the user's own): the launcher may (and does) drop
    /// the host's supplementary groups (with only the user's own ids, `setgroups` is denied),
    /// and the workload may switch user.
    subordinate_ids: bool,
}

impl ChildPlan {
    /// The children's ends of the pipes (the launcher closes them once init is forked).
    fn child_fds(&self) -> Vec<RawFd> {
        let mut fds = vec![
            self.report_w,
            self.go_r,
            self.exec_w,
            self.group_r,
            self.stdout.as_raw_fd(),
            self.stderr.as_raw_fd(),
        ];
        if let Some(turns) = &self.userns {
            fds.extend([turns.unshared_w, turns.mapped_r]);
        }
        fds
    }
}

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| SandboxError::Setup(format!("`{s}` contains a NUL byte")))
}

fn open_log(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // Never through a symlink: benchbox writes here as root.
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|source| SandboxError::Io {
            action: "create",
            path: path.to_path_buf(),
            source,
        })
}

/// The start of the line appended to a log cut at `max_log`: "[benchbox: log truncated at
/// max-log (16 MiB); 123 more bytes were read and discarded]".
pub const TRUNCATION_MARKER: &str = "[benchbox: log truncated at max-log";

/// What a log holds of the workload's output: `text` without the marker line a truncated log
/// ends with (metric patterns see only what the workload wrote).
pub fn kept_output(text: &str, truncated: bool) -> &str {
    if !truncated {
        return text;
    }
    match text.rfind(TRUNCATION_MARKER) {
        Some(at) => {
            let kept = &text[..at];
            // The newline the marker was given to start its own line.
            kept.strip_suffix('\n').unwrap_or(kept)
        }
        None => text,
    }
}

/// One stream on its way to its log.
struct Sink {
    file: File,
    path: PathBuf,
    /// Bytes written to the log.
    kept: u64,
    /// Bytes read past `max_log` and dropped.
    discarded: u64,
    last_byte: u8,
    /// A write failed: nothing more is written (the stream is still drained).
    failed: bool,
}

/// What became of the workload's output.
#[derive(Debug, Default)]
struct Drained {
    /// stdout, stderr: more than `max_log` bytes came, the rest was discarded.
    truncated: [bool; 2],
    /// The first write to a log that failed.
    error: Option<SandboxError>,
}

impl Sink {
    fn new(file: File, path: &Path) -> Sink {
        Sink {
            file,
            path: path.to_path_buf(),
            kept: 0,
            discarded: 0,
            last_byte: b'\n',
            failed: false,
        }
    }

    fn write(&mut self, bytes: &[u8], error: &mut Option<SandboxError>) {
        if let Err(source) = self.file.write_all(bytes) {
            self.failed = true;
            error.get_or_insert(SandboxError::Output {
                path: self.path.clone(),
                source,
            });
        }
    }

    /// Keep what fits under `max_log`, count the rest.
    fn take(&mut self, data: &[u8], max_log: Option<u64>, error: &mut Option<SandboxError>) {
        let room = max_log.map_or(data.len() as u64, |m| m.saturating_sub(self.kept));
        let keep = (data.len() as u64).min(room) as usize;
        self.discarded += (data.len() - keep) as u64;
        if keep == 0 || self.failed {
            return;
        }
        self.write(&data[..keep], error);
        self.kept += keep as u64;
        self.last_byte = data[keep - 1];
    }

    /// At the stream's end: the marker line, when something was discarded.
    fn close(&mut self, max_log: Option<u64>, error: &mut Option<SandboxError>) -> bool {
        if self.discarded == 0 {
            return false;
        }
        if !self.failed {
            let marker = format!(
                "{}{TRUNCATION_MARKER} ({}); {} more bytes were read and discarded]\n",
                if self.last_byte == b'\n' { "" } else { "\n" },
                crate::spec::units::format_size(max_log.unwrap_or(self.kept)),
                self.discarded
            );
            self.write(marker.as_bytes(), error);
        }
        true
    }
}

/// Copy both pipes into their log files until both reach EOF, keeping at most `max_log` bytes
/// of each. Neither the cap nor a write that fails (a full disk) stops the draining: the
/// workload must never block on, or be failed by, its output. The first failed write is
/// returned: the invocation's log is incomplete, which is benchbox's failure.
fn drain(logs: [(OwnedFd, File); 2], paths: [&Path; 2], max_log: Option<u64>) -> Drained {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let [(out_r, out_file), (err_r, err_file)] = logs;
    let mut sinks = [Sink::new(out_file, paths[0]), Sink::new(err_file, paths[1])];
    let mut drained = Drained::default();
    let mut open = [true, true];
    let mut buf = vec![0u8; 64 * 1024];
    while open.iter().any(|&o| o) {
        let mut fds = Vec::with_capacity(2);
        let mut which = Vec::with_capacity(2);
        for (i, fd) in [&out_r, &err_r].into_iter().enumerate() {
            if open[i] {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                which.push(i);
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::Error::EINTR) => continue,
            Err(_) => break,
            Ok(_) => {}
        }
        let ready: Vec<usize> = fds
            .iter()
            .zip(&which)
            .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, &i)| i)
            .collect();
        for i in ready {
            let fd = if i == 0 { &out_r } else { &err_r };
            match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                Ok(0) => open[i] = false,
                Ok(n) => sinks[i].take(&buf[..n], max_log, &mut drained.error),
                Err(nix::Error::EINTR) | Err(nix::Error::EAGAIN) => {}
                Err(_) => open[i] = false,
            }
        }
    }
    for (i, sink) in sinks.iter_mut().enumerate() {
        drained.truncated[i] = sink.close(max_log, &mut drained.error);
    }
    drained
}

/// One invocation up to its measurements; the launcher is returned when it is still to be
/// reaped (the container's namespaces are still dying). The invocation's cgroup is made while
/// the container sets up its namespaces and filesystem, and left in `group_slot` (to remove,
/// whatever happened).
fn run_in(
    inv: &Invocation,
    cgroups: Option<&Hierarchy>,
    group_name: &str,
    group_slot: &mut Option<Box<dyn cgroup::Group>>,
    disk_scratch: Option<&Path>,
    cancel: &AtomicBool,
) -> Result<(Outcome, Option<Pid>, Option<SandboxError>)> {
    // The mount points of the new root and of the container's tmpfs, and host mode's empty
    // /tmp layer, are shared by all invocations under the scratch base: mounts happen in each
    // container's private mount namespace.
    let new_root = inv.scratch_base.join("mnt");
    let tmpfs_dir = inv.scratch_base.join("tmpfs");
    let empty_dir = inv.scratch_base.join("empty");
    for dir in [&new_root, &tmpfs_dir, &empty_dir] {
        match fs::create_dir(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(SandboxError::Io {
                    action: "create",
                    path: dir.clone(),
                    source: e,
                });
            }
            _ => {}
        }
    }
    let path_var = inv
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    // From the pipes' creation until the parent has closed the child's ends, no other thread of
    // this process may fork: its child would inherit our exec pipe's write end and delay the
    // EOF that starts our clock (tests run invocations in parallel threads).
    let fork_guard = FORK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (report_r, report_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (go_r, go_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (exec_r, exec_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (group_r, group_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (stdout_r, stdout_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (stderr_r, stderr_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let userns_pipes = match &inv.userns {
        Some(_) => Some((
            pipe2(nix::fcntl::OFlag::O_CLOEXEC)?,
            pipe2(nix::fcntl::OFlag::O_CLOEXEC)?,
        )),
        None => None,
    };
    let logs = [
        (stdout_r, open_log(&inv.stdout)?),
        (stderr_r, open_log(&inv.stderr)?),
    ];
    // The cgroup namespace comes later, from init, once it is in the invocation's cgroup.
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    if !inv.host_network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    // Rootless: a user namespace first (the kernel makes it first in one call), which owns the
    // others.
    if inv.userns.is_some() {
        flags |= CloneFlags::CLONE_NEWUSER;
    }
    let mut parent_fds = vec![
        report_r.as_raw_fd(),
        go_w.as_raw_fd(),
        exec_r.as_raw_fd(),
        group_w.as_raw_fd(),
        logs[0].0.as_raw_fd(),
        logs[1].0.as_raw_fd(),
    ];
    if let Some(((unshared_r, _), (_, mapped_w))) = &userns_pipes {
        parent_fds.extend([unshared_r.as_raw_fd(), mapped_w.as_raw_fd()]);
    }
    let plan = ChildPlan {
        unshare: flags,
        mounts: MountPlan {
            root: inv.root.clone(),
            new_root,
            tmpfs_dir,
            disk_scratch: disk_scratch.map(Path::to_path_buf),
            empty_dir,
            scratch_base: inv.scratch_base.clone(),
            volumes: inv.volumes.clone(),
            mask_kernel_files: inv.security.masks_kernel_files(),
            rootless: inv.userns.is_some(),
            private_network: !inv.host_network,
        },
        hostname: inv.hostname.clone(),
        loopback: !inv.host_network,
        workdir: cstring(
            &inv.workdir
                .as_deref()
                .unwrap_or(Path::new("/"))
                .display()
                .to_string(),
        )?,
        user: inv.user.clone(),
        security: security::prepare(&inv.security).map_err(SandboxError::Setup)?,
        argv: inv.argv.iter().map(|a| cstring(a)).collect::<Result<_>>()?,
        env: inv
            .env
            .iter()
            .map(|(k, v)| cstring(&format!("{k}={v}")))
            .collect::<Result<_>>()?,
        path_var,
        stdout: stdout_w,
        stderr: stderr_w,
        report_w: report_w.as_raw_fd(),
        go_r: go_r.as_raw_fd(),
        exec_w: exec_w.as_raw_fd(),
        group_r: group_r.as_raw_fd(),
        userns: userns_pipes
            .as_ref()
            .map(|((_, unshared_w), (mapped_r, _))| UsernsTurns {
                unshared_w: unshared_w.as_raw_fd(),
                mapped_r: mapped_r.as_raw_fd(),
                subordinate_ids: inv.userns.as_ref().is_some_and(|m| !m.squashed()),
            }),
        parent_fds,
    };
    if plan.argv.is_empty() {
        return Err(SandboxError::Setup("empty command".into()));
    }

    // SAFETY: the child only runs `launcher`, which ends in `_exit`; glibc's fork resets the
    // allocator's locks in the child, so the little allocation the child does is sound.
    let launcher = match unsafe { fork() }? {
        ForkResult::Child => launcher(&plan),
        ForkResult::Parent { child } => child,
    };
    drop(report_w);
    drop(go_r);
    drop(exec_w);
    drop(group_r);
    drop(plan);
    let userns_pipes = userns_pipes.map(|((unshared_r, unshared_w), (mapped_r, mapped_w))| {
        drop(unshared_w);
        drop(mapped_r);
        (unshared_r, mapped_w)
    });
    drop(fork_guard);
    let mut report = File::from(report_r);
    let mut go = File::from(go_w);
    let mut exec = File::from(exec_r);

    // Rootless: the launcher has unshared its namespaces and waits for its id map. (When it
    // could not unshare, its error is on the report pipe and supervise returns it.)
    if let (Some((unshared_r, mapped_w)), Some(map)) = (userns_pipes, &inv.userns) {
        let mut byte = [0u8; 1];
        if matches!(nix::unistd::read(unshared_r.as_raw_fd(), &mut byte), Ok(1)) {
            if let Err(e) = userns::apply(launcher.as_raw(), map) {
                let _ = kill(launcher, Signal::SIGKILL);
                drop(group_w);
                let _ = wait_with_rusage(launcher);
                return Err(SandboxError::Setup(format!(
                    "cannot map the container's user namespace: {e}"
                )));
            }
            let _ = nix::unistd::write(&mapped_w, b"m");
        }
    }

    // The cgroup, made while the container builds itself (~0.4 ms on v1 that would otherwise
    // come first); init joins it when told where it is. Without a hierarchy, a stand-in that
    // limits and counts nothing.
    let created = match cgroups {
        Some(h) => h.create(group_name, &inv.limits),
        None => Ok(Box::new(nogroup::NoGroup) as Box<dyn cgroup::Group>),
    };
    let group: &dyn cgroup::Group = match created {
        Ok(group) => &**group_slot.insert(group),
        Err(e) => {
            let _ = kill(launcher, Signal::SIGKILL);
            drop(group_w);
            let _ = wait_with_rusage(launcher);
            return Err(e.into());
        }
    };
    send_group(group_w, group);

    // Watchdog: kills the whole group on timeout or Ctrl-C. It starts at the fork; setup
    // takes milliseconds, so the timeout is effectively from the exec.
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let timed_out = AtomicBool::new(false);
    let interrupted = AtomicBool::new(false);
    let outcome = std::thread::scope(|scope| {
        let (timed_out, interrupted) = (&timed_out, &interrupted);
        let sampler = scope.spawn(move || {
            // Also samples the group's memory every `memory_interval` (the memory-over-time
            // plot): one small file read, from this thread, which is not in the container.
            let started = std::time::Instant::now();
            let tick = inv.memory_interval.map_or(Duration::from_millis(20), |i| {
                i.min(Duration::from_millis(20))
            });
            let mut samples: Vec<(i64, u64)> = Vec::new();
            let mut last_sample: Option<std::time::Instant> = None;
            loop {
                match stop_rx.recv_timeout(tick) {
                    Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return samples,
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                }
                if let Some(interval) = inv.memory_interval
                    && last_sample.is_none_or(|t| t.elapsed() >= interval)
                    && let Some(bytes) = group.memory_current()
                {
                    samples.push((monotonic_ns(), bytes));
                    last_sample = Some(std::time::Instant::now());
                }
                let expired = inv.timeout.is_some_and(|t| started.elapsed() >= t);
                if expired || cancel.load(Ordering::SeqCst) {
                    let first =
                        !timed_out.load(Ordering::SeqCst) && !interrupted.load(Ordering::SeqCst);
                    if first {
                        if expired {
                            timed_out.store(true, Ordering::SeqCst);
                        } else {
                            interrupted.store(true, Ordering::SeqCst);
                        }
                        let _ = kill(launcher, Signal::SIGKILL);
                    }
                    // Again at every tick until stopped: a container still setting up joins its
                    // group only later (init dies with the launcher, but not in the instant
                    // between its fork and its PR_SET_PDEATHSIG).
                    let _ = group.kill_all();
                }
            }
        });
        // The workload's output, drained from its pipes by this process (outside the
        // container's cgroup, so the logs are not charged to it) until every process that
        // holds a write end is gone.
        let paths = [inv.stdout.as_path(), inv.stderr.as_path()];
        let drainer = scope.spawn(move || drain(logs, paths, inv.max_log));
        let result = supervise(
            group,
            cgroups.is_some(),
            launcher,
            &mut report,
            &mut go,
            &mut exec,
        );
        let _ = stop_tx.send(());
        let samples = sampler.join().unwrap_or_default();
        let drained = drainer.join().unwrap_or_else(|_| Drained {
            error: Some(SandboxError::Output {
                path: inv.stdout.clone(),
                source: std::io::Error::other("the thread draining it panicked"),
            }),
            ..Default::default()
        });
        // A log that could not be written is benchbox's failure, whatever the workload did
        // (a command that could not start included): it takes precedence.
        let result = match (result, drained.error) {
            (Err(SandboxError::Setup(_) | SandboxError::Exec { .. }), Some(e)) => Err(e),
            (result, error) => result.map(|r| (r, error)),
        };
        result.map(|((mut outcome, start_ns, pending), output_error)| {
            outcome.output_truncated = drained.truncated;
            // Seconds since the exec; samples from before the exec (the container's setup) and
            // after the workload's end (the teardown) are dropped.
            let end_ns = start_ns + outcome.wall.as_nanos() as i64;
            outcome.memory_timeline = samples
                .into_iter()
                .filter(|&(ns, _)| start_ns > 0 && ns >= start_ns && ns <= end_ns)
                .map(|(ns, bytes)| ((ns - start_ns) as f64 / 1e9, bytes))
                .collect();
            (outcome, pending, output_error)
        })
    });
    let (mut outcome, pending, output_error) = outcome?;
    // A workload that ended by itself (init reported, and not our SIGKILL) is complete even
    // when the timeout or Ctrl-C came a moment later.
    let ended_by_itself = pending.is_some() && outcome.signal != Some(libc::SIGKILL);
    outcome.timed_out = timed_out.load(Ordering::SeqCst) && !ended_by_itself;
    outcome.interrupted = interrupted.load(Ordering::SeqCst) && !ended_by_itself;
    outcome.applied = group.applied();
    Ok((outcome, pending, output_error))
}

/// The parent's side of one invocation, from the fork to init's final report (or, when init
/// never sends one, the launcher's exit). Returns the outcome, the exec's timestamp and the
/// launcher when it is still to be reaped. `accounted`: `group` is a real cgroup (else its
/// counters are empty, and CPU time and peak memory come from the tree's rusage).
fn supervise(
    group: &dyn cgroup::Group,
    accounted: bool,
    launcher: Pid,
    report: &mut File,
    go: &mut File,
    exec: &mut File,
) -> Result<(Outcome, i64, Option<Pid>)> {
    let ready = read_one_message(report);
    let mut setup_error = None;
    let mut exec_error = None;
    let mut baseline = cgroup::Counters::default();
    let mut setup_cpu = (0.0, 0.0);
    let mut start_ns = 0;
    match ready {
        Some((MSG_READY, _)) => {
            // On an error here, nothing of the container may outlive this call.
            let abandon = |e: SandboxError| {
                let _ = kill(launcher, Signal::SIGKILL);
                let _ = group.kill_all();
                let _ = wait_with_rusage(launcher);
                e
            };
            // No teardown of an earlier invocation may overlap this workload.
            wait_for_cleanup().map_err(abandon)?;
            group.reset_peak().map_err(|e| abandon(e.into()))?;
            baseline = group.counters().map_err(|e| abandon(e.into()))?;
            let _ = go.write_all(b"g");
            // EOF on this pipe is the workload's execve (or its death before that).
            let mut byte = [0u8; 1];
            let _ = exec.read(&mut byte);
            start_ns = monotonic_ns();
        }
        Some((MSG_ERROR, msg)) => setup_error = Some(String::from_utf8_lossy(&msg).into_owned()),
        Some((MSG_EXEC_ERROR, msg)) => exec_error = Some(msg),
        _ => {}
    }
    // Messages up to init's last, sent once the workload and everything it left behind are
    // dead and reaped (its final status, the metrics file, the end); or up to the EOF of init's
    // death when it never gets there. (Reading before waiting: init may send more than a pipe
    // holds.)
    let mut messages = Vec::new();
    while let Some(message) = read_one_message(report) {
        let last = message.0 == MSG_END;
        messages.push(message);
        if last {
            break;
        }
    }
    let final_status = messages
        .iter()
        .find(|(tag, payload)| *tag == MSG_STATUS && payload.len() == STATUS_LEN)
        .map(|(_, payload)| decode_status(payload));
    // With init's final status in hand, the counters are final: nothing of the workload is left
    // to run, and the namespaces' teardown is not charged to it.
    let (status, mut pending) = match final_status {
        Some(_) => (None, Some(launcher)),
        None => (Some(wait_with_rusage(launcher)?), None),
    };
    let end_fallback = monotonic_ns();
    let counters = group.counters();
    // On an error, nothing of the container may outlive this call.
    let reap_now = |pending: &mut Option<Pid>| -> Result<()> {
        if let Some(launcher) = pending.take() {
            wait_with_rusage(launcher)?;
        }
        Ok(())
    };
    let counters = match counters {
        Ok(c) => c,
        Err(e) => {
            reap_now(&mut pending)?;
            return Err(e.into());
        }
    };

    if let Some(message) = setup_error.or_else(|| {
        messages
            .iter()
            .find(|(t, _)| *t == MSG_ERROR)
            .map(|(_, m)| String::from_utf8_lossy(m).into_owned())
    }) {
        reap_now(&mut pending)?;
        return Err(SandboxError::Setup(message));
    }
    if let Some(msg) = exec_error.or_else(|| {
        messages
            .iter()
            .find(|(t, _)| *t == MSG_EXEC_ERROR)
            .map(|(_, m)| m.clone())
    }) {
        reap_now(&mut pending)?;
        let text = String::from_utf8_lossy(&msg);
        let (argv0, message) = text.split_once('\0').unwrap_or(("?", &text));
        return Err(SandboxError::Exec {
            argv0: argv0.into(),
            message: message.into(),
        });
    }
    let mut outcome = Outcome::default();
    let mut end_ns = end_fallback;
    if let Some((raw, end, rusage)) = final_status {
        end_ns = end;
        outcome.rusage = rusage;
        if libc::WIFEXITED(raw) {
            outcome.exit_code = Some(libc::WEXITSTATUS(raw));
        } else if libc::WIFSIGNALED(raw) {
            outcome.signal = Some(libc::WTERMSIG(raw));
        }
    } else if let Some((status, rusage)) = status {
        // Init never reported (killed on timeout or Ctrl-C): the launcher's own status.
        outcome.rusage = rusage;
        match status {
            WaitStatus::Signaled(_, sig, _) => outcome.signal = Some(sig as i32),
            WaitStatus::Exited(_, code) => outcome.exit_code = Some(code),
            _ => {}
        }
        if outcome.signal.is_none() && outcome.exit_code == Some(0) {
            outcome.exit_code = None;
        }
    }
    if let Some((_, payload)) = messages.iter().find(|(t, _)| *t == MSG_METRICS) {
        let mut text = &payload[..];
        if text.len() as u64 >= METRICS_LIMIT {
            // Cut at the limit: drop the partial last line rather than misread its number.
            let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            text = &text[..whole];
        }
        outcome.metrics_file = String::from_utf8_lossy(text).into_owned();
    }
    if let Some((_, payload)) = messages.iter().find(|(t, _)| *t == MSG_EXEC_TIME)
        && payload.len() == 8 + 16
    {
        start_ns = i64::from_le_bytes(payload[..8].try_into().unwrap());
        setup_cpu = decode_cpu(&payload[8..]);
    }
    if start_ns > 0 {
        outcome.wall = Duration::from_nanos(end_ns.saturating_sub(start_ns).max(0) as u64);
    }
    outcome.rusage.user_s = (outcome.rusage.user_s - setup_cpu.0).max(0.0);
    outcome.rusage.system_s = (outcome.rusage.system_s - setup_cpu.1).max(0.0);
    if !accounted {
        // No cgroup: the tree's rusage is the measurement (so the suspect rule, which compares
        // the two, has nothing to flag), and the peak memory is the largest process's maximum
        // RSS. No I/O bytes, OOM kills or throttling.
        outcome.cpu_user = Duration::from_secs_f64(outcome.rusage.user_s);
        outcome.cpu_system = Duration::from_secs_f64(outcome.rusage.system_s);
        outcome.memory_peak = Some(outcome.rusage.max_rss_bytes);
        return Ok((outcome, start_ns, pending));
    }
    outcome.cpu_user = counters.cpu_user.saturating_sub(baseline.cpu_user);
    outcome.cpu_system = counters.cpu_system.saturating_sub(baseline.cpu_system);
    // The workload's last moments on a CPU (its exit, after it woke init) reach the group's
    // counters only when it is switched out for good, which can come after init reported when
    // the machine is loaded or emulated (the VM lane); the rusage init read has them already.
    // So counters that the suspect rule would flag are read again, for up to 200 ms (a vCPU of
    // an emulated machine on a busy host can wait that long for its turn), before they are
    // believed. On real hardware the gap is microseconds: this runs only when the counters
    // really were reset (and cannot hide that), or under emulation, where the later reading may
    // include init's own exit.
    for _ in 0..20 {
        let short = crate::status::suspect_cpu(
            outcome.cpu_user.as_secs_f64(),
            outcome.cpu_system.as_secs_f64(),
            outcome.rusage.user_s,
            outcome.rusage.system_s,
        );
        if short.is_none() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        let Ok(later) = group.counters() else { break };
        outcome.cpu_user = later.cpu_user.saturating_sub(baseline.cpu_user);
        outcome.cpu_system = later.cpu_system.saturating_sub(baseline.cpu_system);
    }
    outcome.memory_peak = counters.memory_peak;
    outcome.io_read_bytes = counters
        .io_read_bytes
        .map(|b| b.saturating_sub(baseline.io_read_bytes.unwrap_or(0)));
    outcome.io_write_bytes = counters
        .io_write_bytes
        .map(|b| b.saturating_sub(baseline.io_write_bytes.unwrap_or(0)));
    outcome.oom_killed = counters.oom_kills > 0;
    outcome.nr_throttled = counters.nr_throttled.saturating_sub(baseline.nr_throttled);
    outcome.throttled = counters.throttled.saturating_sub(baseline.throttled);
    outcome.pressure = counters.pressure.since(&baseline.pressure);
    Ok((outcome, start_ns, pending))
}

fn wait_with_rusage(pid: Pid) -> Result<(WaitStatus, Rusage)> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: zeroed rusage is a valid out-parameter for wait4.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers to locals.
        let rc = unsafe { libc::wait4(pid.as_raw(), &mut status, 0, &mut ru) };
        if rc < 0 {
            let err = nix::Error::last();
            if err == nix::Error::EINTR {
                continue;
            }
            return Err(err.into());
        }
        return Ok((WaitStatus::from_raw(pid, status)?, rusage_of(&ru)));
    }
}

fn rusage_of(ru: &libc::rusage) -> Rusage {
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Rusage {
        user_s: tv(ru.ru_utime),
        system_s: tv(ru.ru_stime),
        max_rss_bytes: ru.ru_maxrss as u64 * 1024,
        minor_faults: ru.ru_minflt as u64,
        major_faults: ru.ru_majflt as u64,
        voluntary_switches: ru.ru_nvcsw as u64,
        involuntary_switches: ru.ru_nivcsw as u64,
    }
}

/// The user and system CPU time in `ru`, as the workload's exec-time message carries it.
fn encode_cpu(ru: &libc::rusage) -> [u8; 16] {
    let micros = |t: libc::timeval| (t.tv_sec as u64) * 1_000_000 + t.tv_usec as u64;
    let mut payload = [0u8; 16];
    payload[..8].copy_from_slice(&micros(ru.ru_utime).to_le_bytes());
    payload[8..].copy_from_slice(&micros(ru.ru_stime).to_le_bytes());
    payload
}

/// (user, system) seconds from [`encode_cpu`]'s payload; nothing from any other.
fn decode_cpu(payload: &[u8]) -> (f64, f64) {
    if payload.len() != 16 {
        return (0.0, 0.0);
    }
    let micros = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap()) as f64 / 1e6;
    (micros(&payload[..8]), micros(&payload[8..]))
}

/// Init's final status message: the workload's wait status, the instant init reaped it, and
/// the `wait` rusage of everything init reaped (the workload's whole tree).
const STATUS_LEN: usize = 4 + 8 + 7 * 8;

fn encode_status(raw: i32, end_ns: i64, ru: &libc::rusage) -> [u8; STATUS_LEN] {
    let micros = |t: libc::timeval| (t.tv_sec as u64) * 1_000_000 + t.tv_usec as u64;
    let mut payload = [0u8; STATUS_LEN];
    payload[0..4].copy_from_slice(&raw.to_le_bytes());
    payload[4..12].copy_from_slice(&end_ns.to_le_bytes());
    for (i, field) in [
        micros(ru.ru_utime),
        micros(ru.ru_stime),
        ru.ru_maxrss as u64,
        ru.ru_minflt as u64,
        ru.ru_majflt as u64,
        ru.ru_nvcsw as u64,
        ru.ru_nivcsw as u64,
    ]
    .into_iter()
    .enumerate()
    {
        payload[12 + 8 * i..20 + 8 * i].copy_from_slice(&field.to_le_bytes());
    }
    payload
}

fn decode_status(payload: &[u8]) -> (i32, i64, Rusage) {
    let raw = i32::from_le_bytes(payload[0..4].try_into().unwrap());
    let end_ns = i64::from_le_bytes(payload[4..12].try_into().unwrap());
    let field = |i: usize| u64::from_le_bytes(payload[12 + 8 * i..20 + 8 * i].try_into().unwrap());
    // SAFETY: zeroed rusage is a valid plain-data struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let timeval = |us: u64| libc::timeval {
        tv_sec: (us / 1_000_000) as libc::time_t,
        tv_usec: (us % 1_000_000) as libc::suseconds_t,
    };
    ru.ru_utime = timeval(field(0));
    ru.ru_stime = timeval(field(1));
    ru.ru_maxrss = field(2) as libc::c_long;
    ru.ru_minflt = field(3) as libc::c_long;
    ru.ru_majflt = field(4) as libc::c_long;
    ru.ru_nvcsw = field(5) as libc::c_long;
    ru.ru_nivcsw = field(6) as libc::c_long;
    (raw, end_ns, rusage_of(&ru))
}

// ------------------------------------------------------------------------------------------
// The child side. Everything below runs after fork and never returns: it ends in `_exit`.
// ------------------------------------------------------------------------------------------

fn die(report_w: RawFd, tag: u8, message: &str) -> ! {
    send(report_w, tag, message.as_bytes());
    // SAFETY: _exit is always safe; it skips destructors and atexit handlers on purpose.
    unsafe { libc::_exit(if tag == MSG_EXEC_ERROR { 127 } else { 1 }) }
}

fn close_fds(fds: &[RawFd]) {
    for &fd in fds {
        // SAFETY: closing descriptors this process will never use again.
        unsafe { libc::close(fd) };
    }
}

/// Close every descriptor but stdio and our own pipes and logs. Another thread of benchbox may
/// have forked while its pipes were open (tests run invocations in parallel): a stray copy of
/// its exec pipe held here would delay its clock until we exit.
fn close_inherited_fds(plan: &ChildPlan) {
    let mut keep = plan.child_fds();
    keep.sort_unstable();
    // close_range (Linux 5.9) over the gaps between the kept descriptors: a few syscalls where
    // listing /proc/self/fd costs a directory read.
    let mut from: libc::c_uint = 3;
    let mut ok = true;
    for fd in keep
        .iter()
        .map(|&fd| fd as libc::c_uint)
        .chain([libc::c_uint::MAX])
    {
        if fd > from {
            // SAFETY: closes descriptors this process never uses; no memory is involved.
            let rc = unsafe { libc::syscall(libc::SYS_close_range, from, fd - 1, 0) };
            ok &= rc == 0;
        }
        from = from.max(fd.saturating_add(1));
    }
    if ok {
        return;
    }
    let Ok(entries) = fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<RawFd> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds {
        if fd > 2 && !keep.contains(&fd) {
            // SAFETY: closing a descriptor inherited from the parent that this process never uses
            // (the read_dir handle's own descriptor may already be gone: EBADF is harmless).
            unsafe { libc::close(fd) };
        }
    }
}

/// Tell init where the workload is to be born and what to show at /sys/fs/cgroup: the group's
/// directory to be born in (v2), one message per file to join through (what init does
/// instead when the kernel cannot give birth in a group) and per view directory, then the end
/// of the pipe.
fn send_group(group_w: OwnedFd, group: &dyn cgroup::Group) {
    let fd = group_w.as_raw_fd();
    if let Some(dir) = group.birth_dir() {
        send(fd, MSG_BIRTH, dir.as_os_str().as_bytes());
    }
    for file in group.join_files() {
        send(fd, MSG_JOIN, file.as_os_str().as_bytes());
    }
    for (dir, path) in group.container_view() {
        let mut payload = dir.into_bytes();
        payload.push(0);
        payload.extend_from_slice(path.as_os_str().as_bytes());
        send(fd, MSG_VIEW, &payload);
    }
    // An explicit end: init must not depend on every copy of this pipe being closed (another
    // thread's fork may hold one for a moment).
    send(fd, MSG_END, b"");
}

/// What `send_group` sent (see `Group`).
struct GroupToJoin {
    /// The directory to be born in with `clone3(CLONE_INTO_CGROUP)` (v2).
    birth: Option<PathBuf>,
    /// The files to write "0" into, to join the group otherwise.
    join: Vec<PathBuf>,
    /// The container's view of its cgroups.
    view: Vec<(String, PathBuf)>,
}

/// What `send_group` sent. `None` when the parent could not make the group (it closed the
/// pipe without an end).
fn receive_group(group_r: RawFd) -> Option<GroupToJoin> {
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStringExt;
    // SAFETY: the descriptor is ours alone in this process and is not used after this.
    let mut pipe = unsafe { File::from_raw_fd(group_r) };
    let mut group = GroupToJoin {
        birth: None,
        join: Vec::new(),
        view: Vec::new(),
    };
    while let Some((tag, payload)) = read_one_message(&mut pipe) {
        match tag {
            MSG_BIRTH => group.birth = Some(PathBuf::from(std::ffi::OsString::from_vec(payload))),
            MSG_JOIN => group
                .join
                .push(PathBuf::from(std::ffi::OsString::from_vec(payload))),
            MSG_VIEW => {
                let split = payload.iter().position(|&b| b == 0)?;
                let dir = String::from_utf8_lossy(&payload[..split]).into_owned();
                let path = std::ffi::OsString::from_vec(payload[split + 1..].to_vec());
                group.view.push((dir, PathBuf::from(path)));
            }
            // No file to join: no cgroup (see `nogroup`).
            MSG_END => return Some(group),
            _ => return None,
        }
    }
    None
}

/// The invocation's group, held open by init from before the pivot until the workload is
/// born.
struct HeldGroup {
    /// The group's directory (`O_PATH`), for `clone3(CLONE_INTO_CGROUP)` (v2).
    birth: Option<OwnedFd>,
    /// The files to join through otherwise, with their paths (for messages).
    join: Vec<(File, PathBuf)>,
}

impl HeldGroup {
    fn open(group: &GroupToJoin) -> std::result::Result<HeldGroup, String> {
        let birth = match &group.birth {
            Some(dir) => Some(
                nix::fcntl::open(
                    dir,
                    nix::fcntl::OFlag::O_PATH
                        | nix::fcntl::OFlag::O_DIRECTORY
                        | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .map(|fd| {
                    use std::os::fd::FromRawFd;
                    // SAFETY: a descriptor just opened, owned by nothing else.
                    unsafe { OwnedFd::from_raw_fd(fd) }
                })
                .map_err(|e| format!("cannot open `{}`: {e}", dir.display()))?,
            ),
            None => None,
        };
        let join = group
            .join
            .iter()
            .map(|path| {
                fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map(|file| (file, path.clone()))
                    .map_err(|e| format!("cannot open `{}`: {e}", path.display()))
            })
            .collect::<std::result::Result<_, _>>()?;
        Ok(HeldGroup { birth, join })
    }

    /// Move this (single-threaded) process into the group: "0" moves the writer, see
    /// `Group::join_files`.
    fn join(&self) -> std::result::Result<(), String> {
        for (file, path) in &self.join {
            if let Err(e) = (&*file).write_all(b"0") {
                return Err(format!("cannot join cgroup `{}`: {e}", path.display()));
            }
        }
        Ok(())
    }
}

/// `struct clone_args` of `clone3(2)` up to `cgroup` (`CLONE_ARGS_SIZE_VER2`, Linux 5.7).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP` (the libc crate's constant is an overflowing `c_int`).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Fork this process into the cgroup whose directory `group_dir` is open: the child is born
/// there (charged there from its first page, with nothing to migrate), and this process stays
/// where it is. `Ok(None)` in the child, `Ok(Some(pid))` in the parent; an error when the kernel
/// cannot (no clone3 before Linux 5.3: ENOSYS; no `cgroup` field before 5.7: E2BIG; a group
/// that is not cgroup v2: EBADF), for the caller to fall back to joining and `fork`.
///
/// Like `fork` (no stack given, no shared memory), but without glibc's wrapper: the caller
/// must be single-threaded (no lock of another thread can be held in the copy), and the child
/// runs with glibc's cached thread id of its parent, which only pthread mutexes of the
/// error-checking or recursive kind and `pthread_atfork` handlers would notice (the Rust code
/// that follows uses neither).
fn clone_into_cgroup(group_dir: &OwnedFd) -> nix::Result<Option<Pid>> {
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: group_dir.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: see above; `args` lives across the call and its size is passed with it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match rc {
        -1 => Err(nix::Error::last()),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

/// The launcher: unshares the namespaces, forks init, waits for it.
fn launcher(plan: &ChildPlan) -> ! {
    close_fds(&plan.parent_fds);
    close_inherited_fds(plan);
    // Not benchbox's terminal or output: init (in the container's pid namespace) would hold
    // them for the whole run.
    // SAFETY: open and dup2 on descriptors this process owns.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            if null > 2 {
                libc::close(null);
            }
        }
    }
    let fail = |m: String| -> ! { die(plan.report_w, MSG_ERROR, &m) };
    // If benchbox dies, so does the container.
    // SAFETY: prctl with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let _ = setsid();
    // The OOM killer must pick the workload, not the launcher or init (which would lose the
    // workload's status); the workload puts its own score back before exec.
    let _ = fs::write("/proc/self/oom_score_adj", "-1000");
    if let Err(e) = unshare(plan.unshare) {
        let hint = match plan.userns {
            None => "benchbox must run as root, or as a user with user namespaces",
            Some(_) => {
                "this kernel refuses user namespaces to this user: see `benchbox doctor`, or run benchbox as root"
            }
        };
        fail(format!("cannot create namespaces: {e} (hint: {hint})"));
    }
    if let Some(turns) = &plan.userns {
        // The parent writes the id map (only a process outside the namespace may); until then
        // this process has no uid inside it. Once it has, it is root there: the namespace's
        // owner is this user, now mapped to 0.
        let mut byte = [0u8; 1];
        let _ = nix::unistd::write(
            // SAFETY: the descriptor stays open for this call.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(turns.unshared_w) },
            b"u",
        );
        if !matches!(nix::unistd::read(turns.mapped_r, &mut byte), Ok(1)) {
            fail("the container's user namespace was not mapped".into());
        }
        // The host's supplementary groups would follow the container's processes (unmapped,
        // shown as nobody): dropped when the map allows it.
        if turns.subordinate_ids
            && let Err(e) = nix::unistd::setgroups(&[])
        {
            fail(format!("cannot drop the host's supplementary groups: {e}"));
        }
    }
    // SAFETY: single-threaded child; the grandchild runs `init` and ends in `_exit`.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => init(plan),
        Ok(ForkResult::Parent { child }) => {
            close_fds(&plan.child_fds());
            let code = loop {
                match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, code)) => break code,
                    Ok(WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
                    Err(nix::Error::EINTR) => continue,
                    _ => break 1,
                }
            };
            // SAFETY: see `die`.
            unsafe { libc::_exit(code) }
        }
        Err(e) => fail(format!("cannot fork the container's init: {e}")),
    }
}

static WORKLOAD_PID: AtomicI32 = AtomicI32::new(0);

/// What init passes on to the workload (and the workload resets to the default).
const FORWARDED_SIGNALS: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

extern "C" fn forward_signal(sig: libc::c_int) {
    let pid = WORKLOAD_PID.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Pid 1 of the container: builds the filesystem, forks the workload, forwards signals to it,
/// reaps every process, and reports the workload's status.
fn init(plan: &ChildPlan) -> ! {
    let fail = |m: String| -> ! { die(plan.report_w, MSG_ERROR, &m) };
    // SAFETY: prctl with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let detached = mounts::setup(&plan.mounts).unwrap_or_else(|e| fail(e));
    let Some(group) = receive_group(plan.group_r) else {
        // SAFETY: see `die`; the parent gave up on this invocation and reports why.
        unsafe { libc::_exit(1) }
    };
    // The group's directory and files are host paths: held open across the pivot.
    let held = HeldGroup::open(&group).unwrap_or_else(|e| fail(e));
    let trees = mounts::pivot(&plan.mounts, detached, &group.view).unwrap_or_else(|e| fail(e));
    if let Err(e) = mounts::mount_cgroups(trees) {
        fail(e);
    }
    if let Err(e) = sethostname(&plan.hostname) {
        fail(format!("cannot set the hostname `{}`: {e}", plan.hostname));
    }
    if plan.loopback
        && let Err(e) = mounts::loopback_up()
    {
        fail(e);
    }
    // A session keyring of the container's own: not benchbox's (a workload without the seccomp
    // filter could otherwise read the host session's keys).
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: keyctl with a null name: join a new anonymous session keyring.
    if unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0) } < 0 {
        fail(format!(
            "cannot give the container a session keyring of its own: {}",
            std::io::Error::last_os_error()
        ));
    }
    // The workload reports ready only once init has given up its privileges (below), so
    // nothing of the workload runs while init still holds them.
    let (confined_r, confined_w) = match pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(pair) => pair,
        Err(e) => fail(format!("cannot create a pipe: {e}")),
    };
    // Only now into the cgroup: the setup above ran on any CPU and was not charged to it. The
    // workload is born in the group: on v2 (Linux 5.7+) by clone3 into it, with nothing to
    // migrate, init staying where it is; otherwise init joins the group and forks it there.
    let forked = match held.birth.as_ref().map(clone_into_cgroup) {
        Some(Ok(forked)) => forked,
        _ => {
            held.join().unwrap_or_else(|e| fail(e));
            // SAFETY: single-threaded; the child runs `workload`, which ends in exec or `_exit`.
            match unsafe { fork() } {
                Ok(ForkResult::Child) => None,
                Ok(ForkResult::Parent { child }) => Some(child),
                Err(e) => fail(format!("cannot fork the workload: {e}")),
            }
        }
    };
    let child = match forked {
        None => {
            drop(held);
            drop(confined_w);
            // The container's cgroup namespace is rooted at its own group, where this process
            // now is (init may be outside it).
            if let Err(e) = unshare(CloneFlags::CLONE_NEWCGROUP) {
                fail(format!("cannot create the cgroup namespace: {e}"));
            }
            workload(plan, confined_r)
        }
        Some(child) => child,
    };
    drop(held);
    drop(confined_r);
    // Init keeps no write end of the output pipes: they reach EOF when the workload's tree is
    // gone.
    close_fds(&[
        plan.go_r,
        plan.exec_w,
        plan.stdout.as_raw_fd(),
        plan.stderr.as_raw_fd(),
    ]);
    // Nothing of init's privileges may outlive the setup: the workload shares its pid
    // namespace. (Init cannot report an error any more, the workload owns the pipe's messages
    // now; a failure kills the container, which the parent sees as init's death.)
    if security::confine_init(&plan.security).is_err() {
        // SAFETY: see `die`.
        unsafe { libc::_exit(1) }
    }
    let _ = nix::unistd::write(&confined_w, b"c");
    drop(confined_w);
    WORKLOAD_PID.store(child.as_raw(), Ordering::SeqCst);
    let handler = SigAction::new(
        SigHandler::Handler(forward_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in FORWARDED_SIGNALS {
        // SAFETY: the handler only calls async-signal-safe kill().
        let _ = unsafe { sigaction(sig, &handler) };
    }
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: valid pointer to a local.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid == child.as_raw() {
            let now = monotonic_ns();
            // What the workload left behind dies with it (as it would when init exits), now,
            // so that the cgroup's counters are final when the parent gets the status.
            kill_and_reap_the_rest();
            // SAFETY: zeroed rusage is a valid out-parameter for getrusage.
            let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: valid pointer to a local.
            unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
            // The status first: should init not get further (its cgroup may be full of the
            // workload's files), the parent still has it. Nothing below allocates.
            send(plan.report_w, MSG_STATUS, &encode_status(status, now, &ru));
            // The metrics file lives in the container's tmpfs, which dies with init: pass it on.
            send_metrics_file(plan.report_w);
            send(plan.report_w, MSG_END, b"");
            // SAFETY: see `die`.
            unsafe { libc::_exit(0) }
        }
        if pid < 0 && nix::Error::last() != nix::Error::EINTR {
            // SAFETY: see `die`.
            unsafe { libc::_exit(1) }
        }
    }
}

/// SIGKILL every other process of the pid namespace and reap them all (init's job once the
/// workload is gone). Repeated until none is left: a process may fork while it is being killed.
fn kill_and_reap_the_rest() {
    loop {
        // SAFETY: from pid 1 of a pid namespace, -1 reaches every other process in it only.
        unsafe { libc::kill(-1, libc::SIGKILL) };
        let mut status: libc::c_int = 0;
        // SAFETY: valid pointer to a local.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        match pid {
            p if p > 0 => continue,
            0 => std::thread::sleep(Duration::from_micros(100)),
            _ if nix::Error::last() == nix::Error::EINTR => continue,
            _ => return, // ECHILD: none left
        }
    }
}

/// Pass the workload's metrics file on, as init sees it after the workload's exit: at most
/// `METRICS_LIMIT` bytes, not through a symlink the workload may have put in its place, copied
/// by the kernel from the file to the pipe (no buffer in init's memory, which is charged to a
/// cgroup that may be full).
fn send_metrics_file(report_w: RawFd) {
    // SAFETY: a NUL-terminated literal; the descriptor is closed below.
    let file = unsafe {
        libc::open(
            METRICS_PATH_C.as_ptr(),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if file < 0 {
        return;
    }
    // SAFETY: zeroed stat is a valid out-parameter; fstat on our own descriptor.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let regular =
        unsafe { libc::fstat(file, &mut st) } == 0 && st.st_mode & libc::S_IFMT == libc::S_IFREG;
    if regular {
        let len = (st.st_size.max(0) as u64).min(METRICS_LIMIT) as usize;
        let mut head = [MSG_METRICS, 0, 0, 0, 0];
        head[1..].copy_from_slice(&(len as u32).to_le_bytes());
        write_all(report_w, [&head, &[]]);
        let mut left = len;
        while left > 0 {
            // SAFETY: both descriptors are ours; a null offset reads from the file position.
            let n = unsafe { libc::sendfile(report_w, file, std::ptr::null_mut(), left) };
            if n < 0 && nix::Error::last() == nix::Error::EINTR {
                continue;
            }
            if n <= 0 {
                break;
            }
            left -= n as usize;
        }
        // The file came out shorter than its size said: newlines keep the framing whole.
        while left > 0 {
            let pad = [b'\n'; 256];
            let n = left.min(pad.len());
            write_all(report_w, [&pad[..n], &[]]);
            left -= n;
        }
    }
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(file) };
}

/// Find `argv0` on the container's PATH the way a shell would (after pivot_root).
fn resolve(argv0: &[u8], path_var: &str) -> Option<CString> {
    if argv0.contains(&b'/') {
        return CString::new(argv0).ok();
    }
    let name = std::ffi::OsStr::from_bytes(argv0);
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .find_map(|dir| {
            let candidate = Path::new(dir).join(name);
            let c = CString::new(candidate.as_os_str().as_bytes()).ok()?;
            // SAFETY: valid C string.
            (unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0 && candidate.is_file())
                .then_some(c)
        })
}

/// The workload process: stdio, working directory, environment, then wait for "go" and exec.
fn workload(plan: &ChildPlan, init_confined: OwnedFd) -> ! {
    let argv0 = plan.argv[0].to_string_lossy().into_owned();
    let fail = |m: String| -> ! { die(plan.report_w, MSG_EXEC_ERROR, &format!("{argv0}\0{m}")) };
    // Signal handlers and mask must not leak from init into the workload.
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in FORWARDED_SIGNALS.into_iter().chain([Signal::SIGPIPE]) {
        // SAFETY: restoring default dispositions.
        let _ = unsafe { sigaction(sig, &default) };
    }
    let _ = SigSet::all().thread_unblock();
    let _ = fs::write("/proc/self/oom_score_adj", "0");
    // SAFETY: dup2/open on descriptors we own; /dev/null exists in the container's /dev.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
        libc::dup2(null, 0);
        libc::dup2(plan.stdout.as_raw_fd(), 1);
        libc::dup2(plan.stderr.as_raw_fd(), 2);
    }
    // SAFETY: valid C string.
    if unsafe { libc::chdir(plan.workdir.as_ptr()) } != 0 {
        fail(format!(
            "cannot enter the working directory `{}`: {} (hint: create it in the rootfs or mount a volume there)",
            plan.workdir.to_string_lossy(),
            std::io::Error::last_os_error()
        ));
    }
    let ids = plan.user.as_ref().map(|spec| {
        let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
        let group = fs::read_to_string("/etc/group").unwrap_or_default();
        (
            spec,
            user::resolve(spec, &passwd, &group).unwrap_or_else(|e| fail(e)),
        )
    });
    // Capabilities and the seccomp filter: the bounding set and the filter first (the filter
    // is installed while this process still holds SYS_ADMIN), then the user, then the final
    // capability sets.
    if let Err(e) = security::restrict(&plan.security) {
        fail(e);
    }
    if let Some((spec, ids)) = ids {
        let gids: Vec<nix::unistd::Gid> = ids
            .groups
            .iter()
            .map(|&g| nix::unistd::Gid::from_raw(g))
            .collect();
        let switched = nix::unistd::setgroups(&gids)
            .and_then(|_| nix::unistd::setgid(nix::unistd::Gid::from_raw(ids.gid)))
            .and_then(|_| nix::unistd::setuid(nix::unistd::Uid::from_raw(ids.uid)));
        if let Err(e) = switched {
            let hint = if plan.userns.as_ref().is_some_and(|u| !u.subordinate_ids) {
                " (hint: a rootless container maps only your own user when you have no subordinate ids: see the warning at the start of the run)"
            } else {
                ""
            };
            fail(format!("cannot switch to user `{spec}`: {e}{hint}"));
        }
    }
    if let Err(e) = security::finish(&plan.security) {
        fail(e);
    }
    let Some(path) = resolve(plan.argv[0].as_bytes(), &plan.path_var) else {
        fail(format!(
            "not found on PATH `{}` in the container",
            plan.path_var
        ));
    };
    // Not before init has dropped its privileges (see `init`).
    let mut byte = [0u8; 1];
    if !matches!(
        nix::unistd::read(init_confined.as_raw_fd(), &mut byte),
        Ok(1)
    ) {
        fail("the container's init did not confine itself".into());
    }
    drop(init_confined);
    send(plan.report_w, MSG_READY, b"");
    let mut byte = [0u8; 1];
    // SAFETY: reading into a local buffer.
    if unsafe { libc::read(plan.go_r, byte.as_mut_ptr().cast(), 1) } != 1 {
        // SAFETY: see `die`.
        unsafe { libc::_exit(1) }
    }
    let argv: Vec<*const libc::c_char> = plan
        .argv
        .iter()
        .map(|a| a.as_ptr())
        .chain([std::ptr::null()])
        .collect();
    let envp: Vec<*const libc::c_char> = plan
        .env
        .iter()
        .map(|a| a.as_ptr())
        .chain([std::ptr::null()])
        .collect();
    // The CPU time of this process so far, which the parent takes out of the tree's rusage:
    // read after "go", so that the rusage counts from an instant after the cgroup's baseline
    // (read before "go"). Read before it, a host that preempts this process between the two
    // readings (a busy or emulated machine) would charge the rusage alone with the delay, and
    // make a short invocation look `suspect`.
    // SAFETY: zeroed rusage is a valid out-parameter for getrusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a local.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    // The clock starts here, read by this process immediately before the exec: the parent's
    // own reading (on the exec pipe's EOF) can lag by a scheduling delay on a busy host.
    let mut payload = [0u8; 8 + 16];
    payload[..8].copy_from_slice(&monotonic_ns().to_le_bytes());
    payload[8..].copy_from_slice(&encode_cpu(&ru));
    send(plan.report_w, MSG_EXEC_TIME, &payload);
    // SAFETY: NUL-terminated arrays of valid C strings. exec_w is close-on-exec: its closing at
    // this very call tells the parent that the exec happened.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    fail(std::io::Error::last_os_error().to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let mut buf = vec![MSG_READY, 0, 0, 0, 0];
        buf.extend([MSG_ERROR, 3, 0, 0, 0, b'a', b'b', b'c']);
        buf.extend([MSG_STATUS, 2, 0]); // truncated: ignored
        let mut input = &buf[..];
        assert_eq!(read_one_message(&mut input), Some((MSG_READY, vec![])));
        assert_eq!(
            read_one_message(&mut input),
            Some((MSG_ERROR, b"abc".to_vec()))
        );
        assert_eq!(read_one_message(&mut input), None);
    }

    /// Drain two pipes fed by threads writing `sizes` bytes ("x", a newline every 100) into
    /// files in `dir` (or `/dev/full`); returns what the drain reported and the files' bytes.
    fn drain_through(
        sizes: [usize; 2],
        max_log: Option<u64>,
        full: bool,
    ) -> (Drained, [Vec<u8>; 2]) {
        let dir = tempfile::tempdir().unwrap();
        let paths = if full {
            [PathBuf::from("/dev/full"), PathBuf::from("/dev/full")]
        } else {
            [dir.path().join("out"), dir.path().join("err")]
        };
        let mut logs = Vec::new();
        let mut writers = Vec::new();
        for (path, size) in paths.iter().zip(sizes) {
            let (r, w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
            let file = fs::OpenOptions::new()
                .write(true)
                .open(path)
                .or_else(|_| File::create(path))
                .unwrap();
            logs.push((r, file));
            writers.push(std::thread::spawn(move || {
                let mut w = File::from(w);
                let line = [b"x".repeat(99), b"\n".to_vec()].concat();
                let chunk = line.repeat(640);
                let mut left = size;
                while left > 0 {
                    let n = left.min(chunk.len());
                    w.write_all(&chunk[..n]).unwrap();
                    left -= n;
                }
            }));
        }
        let [out, err]: [(OwnedFd, File); 2] = logs.try_into().unwrap();
        let drained = drain([out, err], [&paths[0], &paths[1]], max_log);
        for w in writers {
            w.join()
                .expect("the writer never blocks for good, nor fails");
        }
        let read = |p: &Path| {
            if full {
                Vec::new()
            } else {
                fs::read(p).unwrap()
            }
        };
        (drained, [read(&paths[0]), read(&paths[1])])
    }

    #[test]
    fn the_drain_keeps_max_log_bytes_marks_the_cut_and_reads_everything() {
        let mib = 1usize << 20;
        let (drained, [out, err]) = drain_through([50 * mib + 7, 1000], Some(mib as u64), false);
        assert!(drained.error.is_none());
        assert_eq!(drained.truncated, [true, false]);
        assert_eq!(err.len(), 1000, "under the cap: kept whole, no marker");
        let text = String::from_utf8(out).unwrap();
        let (kept, marker) = text.split_at(text.rfind(TRUNCATION_MARKER).unwrap());
        // 1 MiB does not end on a line: the marker starts its own.
        assert_eq!(kept.len(), mib + 1);
        assert!(kept.ends_with("x\n"));
        assert_eq!(
            marker,
            format!(
                "{TRUNCATION_MARKER} (1 MiB); {} more bytes were read and discarded]\n",
                49 * mib + 7
            )
        );
        assert_eq!(kept_output(&text, true), &kept[..mib]);
        assert_eq!(kept_output(&text, false), text);
        // Exactly at the cap: nothing discarded, nothing marked.
        let (drained, [out, _]) = drain_through([mib, 0], Some(mib as u64), false);
        assert_eq!((drained.truncated, out.len()), ([false, false], mib));
        // No cap.
        let (drained, [out, _]) = drain_through([3 * mib, 0], None, false);
        assert_eq!((drained.truncated, out.len()), ([false, false], 3 * mib));
    }

    #[test]
    fn a_log_that_cannot_be_written_is_reported_and_the_pipes_still_drain() {
        // /dev/full: every write fails with ENOSPC, as on a full output disk.
        let (drained, _) = drain_through([4 << 20, 1 << 20], None, true);
        match drained.error {
            Some(SandboxError::Output { path, source }) => {
                assert_eq!(path, Path::new("/dev/full"));
                assert_eq!(source.raw_os_error(), Some(libc::ENOSPC));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn status_round_trips() {
        // SAFETY: zeroed rusage is a valid plain-data struct.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        ru.ru_utime = libc::timeval {
            tv_sec: 1,
            tv_usec: 250_000,
        };
        ru.ru_stime = libc::timeval {
            tv_sec: 0,
            tv_usec: 5,
        };
        ru.ru_maxrss = 2048;
        ru.ru_nivcsw = 7;
        let payload = encode_status(256, 42, &ru);
        assert_eq!(payload.len(), STATUS_LEN);
        let (raw, end, rusage) = decode_status(&payload);
        assert_eq!((raw, end), (256, 42));
        assert_eq!(rusage.user_s, 1.25);
        assert_eq!(rusage.system_s, 0.000005);
        assert_eq!(rusage.max_rss_bytes, 2048 * 1024);
        assert_eq!(rusage.involuntary_switches, 7);
        assert_eq!(decode_cpu(&encode_cpu(&ru)), (1.25, 0.000005));
        assert_eq!(decode_cpu(b""), (0.0, 0.0));
    }
}
