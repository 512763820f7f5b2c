//! The parent's side of one invocation: it prepares the container's processes (a
//! [`ChildPlan`]), forks the launcher, makes the cgroup while the container builds itself,
//! drains the output, watches the clock and Ctrl-C, tells the workload to go, and reads the
//! counters and init's reports into an [`Outcome`].

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::WaitStatus;
use nix::unistd::{ForkResult, Pid, fork, pipe2};

use super::child::{self, ChildPlan, UsernsTurns};
use super::counters;
use super::mounts::MountPlan;
use super::output::{Drained, drain, open_log};
use super::protocol::{Report, ToInit, monotonic_ns, read_report, rusage_of};
use super::teardown::Teardowns;
use super::{
    Hierarchy, Invocation, Outcome, Result, SandboxError, cgroup, nogroup, security, userns,
};
use crate::measurement::Rusage;

/// From the pipes' creation until the parent has closed the child's ends, no other thread of
/// this process may fork (see `run_in`).
static FORK_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| SandboxError::Setup(format!("`{s}` contains a NUL byte")))
}

/// One invocation up to its measurements; the launcher is returned when it is still to be
/// reaped (the container's namespaces are still dying). The invocation's cgroup is made while
/// the container sets up its namespaces and filesystem, and left in `group_slot` (to remove,
/// whatever happened). `watcher` is told of the workload's exec and exit.
#[allow(clippy::too_many_arguments)]
pub(super) fn run_in(
    inv: &Invocation,
    cgroups: Option<&Hierarchy>,
    group_name: &str,
    group_slot: &mut Option<Box<dyn cgroup::Group>>,
    disk_scratch: Option<&Path>,
    teardowns: &Teardowns,
    cancel: &AtomicBool,
    watcher: &dyn super::Watcher,
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
    if !inv.host_network && inv.network.is_none() {
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
        // A joined namespace's loopback is up since it was made.
        loopback: !inv.host_network && inv.network.is_none(),
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
        join_network: inv.network.as_ref().map(|n| n.as_raw_fd()),
        parent_fds,
    };
    if plan.argv.is_empty() {
        return Err(SandboxError::Setup("empty command".into()));
    }

    // SAFETY: the child only runs `launcher`, which ends in `_exit`; glibc's fork resets the
    // allocator's locks in the child, so the little allocation the child does is sound.
    let launcher = match unsafe { fork() }? {
        ForkResult::Child => child::launcher(&plan),
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
        // The CPUs the disturbance is judged on: the cell's own, as the kernel took them.
        let pinned = inv.limits.cpus.as_ref().and(group.applied().cpus.clone());
        let pinned = pinned.and_then(|cpus| cpus.parse::<crate::spec::CpuSet>().ok());
        let result = supervise(
            group,
            cgroups.is_some(),
            pinned.as_ref(),
            &inv.counters,
            launcher,
            teardowns,
            watcher,
            Channel {
                report: &mut report,
                go: &mut go,
                exec: &mut exec,
            },
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
        result.map(|(supervised, output_error)| {
            let Supervised {
                mut outcome,
                start_ns,
                wall,
                pending,
            } = supervised;
            outcome.output_truncated = drained.truncated;
            // Seconds since the exec; samples from before the exec (the container's setup) and
            // after the workload's end (the teardown) are dropped.
            let end_ns = start_ns + wall.as_nanos() as i64;
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
    let ended_by_itself = pending.is_some() && outcome.measured.signal != Some(libc::SIGKILL);
    outcome.measured.timed_out = timed_out.load(Ordering::SeqCst) && !ended_by_itself;
    outcome.interrupted = interrupted.load(Ordering::SeqCst) && !ended_by_itself;
    outcome.applied = group.applied();
    Ok((outcome, pending, output_error))
}

/// What [`supervise`] found.
struct Supervised {
    outcome: Outcome,
    /// The exec's instant (CLOCK_MONOTONIC ns; 0: there was none).
    start_ns: i64,
    /// From the exec to the workload's end (zero without an exec).
    wall: Duration,
    /// The launcher, when it is still to be reaped.
    pending: Option<Pid>,
}

/// The parent's ends of the pipes to the container: its reports, "go", and the exec's EOF.
struct Channel<'a> {
    report: &'a mut File,
    go: &'a mut File,
    exec: &'a mut File,
}

/// The parent's side of one invocation, from the fork to init's final report (or, when init
/// never sends one, the launcher's exit). `accounted`: `group` is a real cgroup (else its
/// counters are empty, and CPU time and peak memory come from the tree's rusage).
#[allow(clippy::too_many_arguments)]
fn supervise(
    group: &dyn cgroup::Group,
    accounted: bool,
    pinned: Option<&crate::spec::CpuSet>,
    counter_columns: &[&'static str],
    launcher: Pid,
    teardowns: &Teardowns,
    watcher: &dyn super::Watcher,
    channel: Channel,
) -> Result<Supervised> {
    let Channel { report, go, exec } = channel;
    let mut setup_error = None;
    let mut exec_error = None;
    let mut baseline = cgroup::Counters::default();
    let mut setup_cpu = (0.0, 0.0);
    let mut start_ns = 0;
    let mut stat_before = None;
    let mut counters_open = None;
    match read_report(report) {
        Some(Report::Ready) => {
            // On an error here, nothing of the container may outlive this call.
            let abandon = |e: SandboxError| {
                let _ = kill(launcher, Signal::SIGKILL);
                let _ = group.kill_all();
                let _ = wait_with_rusage(launcher);
                e
            };
            // No teardown of an earlier invocation may overlap this workload.
            teardowns.wait().map_err(abandon)?;
            group.reset_peak().map_err(|e| abandon(e.into()))?;
            baseline = group.counters().map_err(|e| abandon(e.into()))?;
            stat_before = read_proc_stat();
            // The perf_event counters, on the workload as it waits for "go": they start
            // counting at its exec (see `counters`). Not found (it died meanwhile): none.
            if !counter_columns.is_empty() {
                counters_open = counters::workload_pid(launcher)
                    .map(|pid| counters::Open::on(pid, counter_columns));
            }
            let _ = go.write_all(b"g");
            // EOF on this pipe is the workload's execve (or its death before that).
            let mut byte = [0u8; 1];
            let _ = exec.read(&mut byte);
            start_ns = monotonic_ns();
            watcher.exec();
        }
        Some(Report::Error(message)) => setup_error = Some(message),
        Some(Report::ExecError { argv0, message }) => exec_error = Some((argv0, message)),
        _ => {}
    }
    // Reports up to init's last, sent once the workload and everything it left behind are
    // dead and reaped (its final status, the metrics file, the end); or up to the EOF of init's
    // death when it never gets there. (Reading before waiting: init may send more than a pipe
    // holds.)
    let mut reports = Vec::new();
    while let Some(report) = read_report(report) {
        let last = report == Report::End;
        reports.push(report);
        if last {
            break;
        }
    }
    let final_status = reports.iter().find_map(|r| match r {
        Report::Status {
            raw,
            end_ns,
            rusage,
        } => Some((*raw, *end_ns, *rusage)),
        _ => None,
    });
    // With init's final status in hand, the counters are final: nothing of the workload is left
    // to run, and the namespaces' teardown is not charged to it.
    let (status, mut pending) = match final_status {
        Some(_) => (None, Some(launcher)),
        None => (Some(wait_with_rusage(launcher)?), None),
    };
    let end_fallback = monotonic_ns();
    let perf = counters_open.map(counters::Open::read).unwrap_or_default();
    let counters = group.counters();
    // (Told only after `exec`: `start_ns` is set there.)
    if start_ns > 0 {
        watcher.exited();
    }
    let stat_after = stat_before.as_ref().and_then(|_| read_proc_stat());
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
        reports.iter().find_map(|r| match r {
            Report::Error(message) => Some(message.clone()),
            _ => None,
        })
    }) {
        reap_now(&mut pending)?;
        return Err(SandboxError::Setup(message));
    }
    if let Some((argv0, message)) = exec_error.or_else(|| {
        reports.iter().find_map(|r| match r {
            Report::ExecError { argv0, message } => Some((argv0.clone(), message.clone())),
            _ => None,
        })
    }) {
        reap_now(&mut pending)?;
        return Err(SandboxError::Exec { argv0, message });
    }
    let mut outcome = Outcome::default();
    let m = &mut outcome.measured;
    m.counters = perf;
    let mut end_ns = end_fallback;
    if let Some((raw, end, rusage)) = final_status {
        end_ns = end;
        m.rusage = rusage;
        if libc::WIFEXITED(raw) {
            m.exit_code = Some(libc::WEXITSTATUS(raw));
        } else if libc::WIFSIGNALED(raw) {
            m.signal = Some(libc::WTERMSIG(raw));
        }
    } else if let Some((status, rusage)) = status {
        // Init never reported (killed on timeout or Ctrl-C): the launcher's own status.
        m.rusage = rusage;
        match status {
            WaitStatus::Signaled(_, sig, _) => m.signal = Some(sig as i32),
            WaitStatus::Exited(_, code) => m.exit_code = Some(code),
            _ => {}
        }
        if m.signal.is_none() && m.exit_code == Some(0) {
            m.exit_code = None;
        }
    }
    if let Some(text) = reports.iter().find_map(|r| match r {
        Report::Metrics(text) => Some(text),
        _ => None,
    }) {
        outcome.metrics_file = text.clone();
    }
    if let Some((exec_ns, cpu)) = reports.iter().find_map(|r| match r {
        Report::ExecTime {
            start_ns,
            setup_cpu,
        } => Some((*start_ns, *setup_cpu)),
        _ => None,
    }) {
        start_ns = exec_ns;
        setup_cpu = cpu;
    }
    let mut wall = Duration::ZERO;
    if start_ns > 0 {
        wall = Duration::from_nanos(end_ns.saturating_sub(start_ns).max(0) as u64);
    }
    m.wall_s = wall.as_secs_f64();
    m.rusage.user_s = (m.rusage.user_s - setup_cpu.0).max(0.0);
    m.rusage.system_s = (m.rusage.system_s - setup_cpu.1).max(0.0);
    if !accounted {
        // No cgroup: the tree's rusage is the measurement (so the suspect rule, which compares
        // the two, has nothing to flag), and the peak memory is the largest process's maximum
        // RSS. No I/O bytes, OOM kills or throttling.
        // In whole nanoseconds, as the cgroup's counters are.
        m.user_s = Duration::from_secs_f64(m.rusage.user_s).as_secs_f64();
        m.system_s = Duration::from_secs_f64(m.rusage.system_s).as_secs_f64();
        m.peak_memory_bytes = Some(m.rusage.max_rss_bytes);
        outcome.disturbance = disturbance(&stat_before, &stat_after, pinned, m);
        return Ok(Supervised {
            outcome,
            start_ns,
            wall,
            pending,
        });
    }
    let mut cpu_user = counters.cpu_user.saturating_sub(baseline.cpu_user);
    let mut cpu_system = counters.cpu_system.saturating_sub(baseline.cpu_system);
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
            cpu_user.as_secs_f64(),
            cpu_system.as_secs_f64(),
            m.rusage.user_s,
            m.rusage.system_s,
        );
        if short.is_none() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        let Ok(later) = group.counters() else { break };
        cpu_user = later.cpu_user.saturating_sub(baseline.cpu_user);
        cpu_system = later.cpu_system.saturating_sub(baseline.cpu_system);
    }
    m.user_s = cpu_user.as_secs_f64();
    m.system_s = cpu_system.as_secs_f64();
    m.peak_memory_bytes = counters.memory_peak;
    m.io_read_bytes = counters
        .io_read_bytes
        .map(|b| b.saturating_sub(baseline.io_read_bytes.unwrap_or(0)));
    m.io_write_bytes = counters
        .io_write_bytes
        .map(|b| b.saturating_sub(baseline.io_write_bytes.unwrap_or(0)));
    m.oom_killed = counters.oom_kills > 0;
    m.throttled_s = counters
        .throttled
        .saturating_sub(baseline.throttled)
        .as_secs_f64();
    m.pressure = counters.pressure.since(&baseline.pressure);
    outcome.disturbance = disturbance(&stat_before, &stat_after, pinned, m);
    outcome.nr_throttled = counters.nr_throttled.saturating_sub(baseline.nr_throttled);
    Ok(Supervised {
        outcome,
        start_ns,
        wall,
        pending,
    })
}

/// One reading of `/proc/stat`'s CPU lines, or `None` when it cannot be read (then the
/// invocation simply has no disturbance figures). One read of a small file: tens of
/// microseconds, twice per invocation.
fn read_proc_stat() -> Option<crate::disturbance::ProcStat> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    crate::disturbance::parse_proc_stat(&text).ok()
}

/// The ticks per second of `/proc/stat` (`USER_HZ`), from the C library (100 on Linux).
fn ticks_per_s() -> u64 {
    // SAFETY: sysconf reads a constant of the C library; it has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz).unwrap_or(0)
}

/// The disturbance of the window between the two readings, for a workload that used `m`'s
/// CPU time; its figures go in `m`, what the rule needs beside them is returned.
fn disturbance(
    before: &Option<crate::disturbance::ProcStat>,
    after: &Option<crate::disturbance::ProcStat>,
    pinned: Option<&crate::spec::CpuSet>,
    m: &mut crate::measurement::Measurement,
) -> Option<crate::disturbance::Basis> {
    let (before, after) = (before.as_ref()?, after.as_ref()?);
    let (figures, basis) =
        crate::disturbance::measure(before, after, pinned, m.cpu_s(), ticks_per_s())?;
    m.disturbance = figures;
    Some(basis)
}

/// Wait for `pid`, with the rusage of everything it and its reaped descendants used.
pub(super) fn wait_with_rusage(pid: Pid) -> Result<(WaitStatus, Rusage)> {
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

/// Tell init where the workload is to be born and what to show at /sys/fs/cgroup: the group's
/// directory to be born in (v2), one message per file to join through (what init does
/// instead when the kernel cannot give birth in a group) and per view directory, then the end
/// of the pipe.
fn send_group(group_w: OwnedFd, group: &dyn cgroup::Group) {
    let fd = group_w.as_raw_fd();
    if let Some(dir) = group.birth_dir() {
        ToInit::Birth(dir).send(fd);
    }
    for file in group.join_files() {
        ToInit::Join(file).send(fd);
    }
    for (dir, path) in group.container_view() {
        ToInit::View { dir, path }.send(fd);
    }
    // An explicit end: init must not depend on every copy of this pipe being closed (another
    // thread's fork may hold one for a moment).
    ToInit::End.send(fd);
}
