//! perf_event counters on the workload's process tree: opened by the parent on the workload's
//! pid while it waits for "go" (before its exec), read after init has reaped the whole tree.
//!
//! Why this shape: the cgroup v1 hierarchy benchbox uses has no `perf_event` controller, so a
//! counter follows tasks rather than the group: each is opened with `inherit` (every process
//! the workload starts counts into it, and a process's count is folded in when it exits) and
//! `enable_on_exec` (counting starts at the workload's `execve`, so its own setup is not
//! counted). The parent opens them, not the workload: the workload's seccomp filter may refuse
//! `perf_event_open`, and a descriptor in the workload's hands would be the workload's to read
//! or close (the measurement stays out of its reach). No crate is used: the one system call
//! and a 64-byte `perf_event_attr` (its first published size) are all that is needed.
//!
//! The first invocation also opens one disabled, uninherited counter of each software event
//! with a per-event switch in the kernel (page faults, context switches, CPU migrations) on
//! benchbox itself, kept for the life of the process ([`keep_kernel_switches_on`]). The kernel
//! turns the code that counts such an event on when the first counter of it is opened and off
//! when the last is closed, by patching its own text (a static key: a cross-CPU interrupt to
//! every CPU, each way). Without the kept counters that happened for every event at every
//! invocation, twice, between invocations: it was most of what the counters cost (in C on
//! this VM, `benches/perf_event_cost.c`: 50-80 us to open four counters and 40-65 us to close
//! them, against 16-20 us and 7-8 us with them kept). The switches are on during every
//! workload's run either way (its own counters hold them), so what the workload runs on does
//! not change; the kept counters never count (disabled, and only benchbox's own thread).
//!
//! The counters are opened one by one, not as a group read with one `read`: measured the same
//! way, a group (`PERF_FORMAT_GROUP`, which Linux 6.18 accepts with `inherit`) saved at most a few
//! microseconds (opening it took 10-35 us against 15-20, reading it 1 us against 2), not
//! worth a second path and its fallback for the kernels that refuse a group read of inherited
//! counters.
//!
//! Each counter is read with its enabled and running times: one the kernel multiplexed (more
//! hardware events than the PMU has registers) is scaled by enabled/running, and the result
//! says it was. A counter the kernel refuses (no PMU: ENOENT; `kernel.perf_event_paranoid`
//! for a rootless run: EACCES) is left out, never an error of the invocation.

use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::OnceLock;

use nix::unistd::Pid;

use crate::measurement::Counters;

const PERF_TYPE_HARDWARE: u32 = 0;
const PERF_TYPE_SOFTWARE: u32 = 1;

const PERF_COUNT_HW_CPU_CYCLES: u64 = 0;
const PERF_COUNT_HW_INSTRUCTIONS: u64 = 1;
const PERF_COUNT_HW_CACHE_MISSES: u64 = 3;
const PERF_COUNT_HW_BRANCH_INSTRUCTIONS: u64 = 4;
const PERF_COUNT_HW_BRANCH_MISSES: u64 = 5;

const PERF_COUNT_SW_TASK_CLOCK: u64 = 1;
const PERF_COUNT_SW_PAGE_FAULTS: u64 = 2;
const PERF_COUNT_SW_CONTEXT_SWITCHES: u64 = 3;
const PERF_COUNT_SW_CPU_MIGRATIONS: u64 = 4;

const PERF_FORMAT_TOTAL_TIME_ENABLED: u64 = 1 << 0;
const PERF_FORMAT_TOTAL_TIME_RUNNING: u64 = 1 << 1;

// Bits of `perf_event_attr`'s flag word.
const ATTR_DISABLED: u64 = 1 << 0;
const ATTR_INHERIT: u64 = 1 << 1;
const ATTR_ENABLE_ON_EXEC: u64 = 1 << 12;

const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;

/// `struct perf_event_attr` up to `PERF_ATTR_SIZE_VER0` (64 bytes): every kernel with
/// perf_event accepts this size, and nothing after it is needed here.
#[repr(C)]
#[derive(Default)]
struct Attr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

/// One counter: its runs.csv column and what to ask the kernel for.
struct Event {
    column: &'static str,
    kind: u32,
    config: u64,
}

const SOFTWARE: [Event; 4] = [
    Event {
        column: "task_clock_s",
        kind: PERF_TYPE_SOFTWARE,
        config: PERF_COUNT_SW_TASK_CLOCK,
    },
    Event {
        column: "context_switches",
        kind: PERF_TYPE_SOFTWARE,
        config: PERF_COUNT_SW_CONTEXT_SWITCHES,
    },
    Event {
        column: "cpu_migrations",
        kind: PERF_TYPE_SOFTWARE,
        config: PERF_COUNT_SW_CPU_MIGRATIONS,
    },
    Event {
        column: "page_faults",
        kind: PERF_TYPE_SOFTWARE,
        config: PERF_COUNT_SW_PAGE_FAULTS,
    },
];

const HARDWARE: [Event; 5] = [
    Event {
        column: "instructions",
        kind: PERF_TYPE_HARDWARE,
        config: PERF_COUNT_HW_INSTRUCTIONS,
    },
    Event {
        column: "cycles",
        kind: PERF_TYPE_HARDWARE,
        config: PERF_COUNT_HW_CPU_CYCLES,
    },
    Event {
        column: "branches",
        kind: PERF_TYPE_HARDWARE,
        config: PERF_COUNT_HW_BRANCH_INSTRUCTIONS,
    },
    Event {
        column: "branch_misses",
        kind: PERF_TYPE_HARDWARE,
        config: PERF_COUNT_HW_BRANCH_MISSES,
    },
    Event {
        column: "cache_misses",
        kind: PERF_TYPE_HARDWARE,
        config: PERF_COUNT_HW_CACHE_MISSES,
    },
];

/// Whether the host has a CPU PMU perf_event can count hardware events with (most VMs have
/// none): the kernel lists it as the `cpu` event source.
pub fn has_pmu(sys: &Path) -> bool {
    sys.join("bus/event_source/devices/cpu").exists()
}

/// Which counters a run can have: the software ones wherever perf_event is allowed (checked by
/// opening them on benchbox itself), the hardware ones where there is a PMU too. The runs.csv
/// columns of a run; and why some are missing, for the notes the run prints (one per reason).
pub fn available(sys: &Path) -> (Vec<&'static str>, Vec<String>) {
    let mut columns = Vec::new();
    let mut refused = Vec::new();
    for event in &SOFTWARE {
        match open(event, 0) {
            Ok(_) => columns.push(event.column),
            Err(e) => refused.push((event.column, e.to_string())),
        }
    }
    let mut notes = Vec::new();
    if !refused.is_empty() {
        // Usually one reason for all of them (EACCES): said once.
        let names: Vec<&str> = refused.iter().map(|(c, _)| *c).collect();
        let mut why: Vec<&str> = refused.iter().map(|(_, e)| e.as_str()).collect();
        why.dedup();
        notes.push(format!(
            "the kernel refused the perf_event counters {} ({}; kernel.perf_event_paranoid is {}): they are not recorded\n  hint: run as root, or let users count their own processes: `sysctl -w kernel.perf_event_paranoid=1`",
            names.join(", "),
            why.join("; "),
            std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into())
        ));
    }
    if has_pmu(sys) {
        let before = columns.len();
        for event in &HARDWARE {
            if open(event, 0).is_ok() {
                columns.push(event.column);
            }
        }
        if columns.len() - before < HARDWARE.len() {
            notes.push(
                "some hardware counters could not be opened (the PMU lacks them, or perf_event_paranoid forbids them): they are not recorded".into(),
            );
        }
    } else {
        notes.push(format!(
            "no hardware counters (instructions, cycles, branches, cache misses): this host has no CPU performance monitoring unit ({} is missing; usual in a VM), so they are not recorded",
            sys.join("bus/event_source/devices/cpu").display()
        ));
    }
    if !columns.is_empty() {
        columns.push("counters_scaled");
    }
    (columns, notes)
}

/// `perf_event_open` of one counter on `pid` (0: the caller), disabled until its exec,
/// inherited by its children, close-on-exec in benchbox.
fn open(event: &Event, pid: libc::pid_t) -> std::io::Result<OwnedFd> {
    open_with(
        event,
        pid,
        ATTR_DISABLED | ATTR_INHERIT | ATTR_ENABLE_ON_EXEC,
    )
}

/// `perf_event_open` of one counter on `pid` with the attr's `flags`.
fn open_with(event: &Event, pid: libc::pid_t, flags: u64) -> std::io::Result<OwnedFd> {
    let attr = Attr {
        kind: event.kind,
        size: std::mem::size_of::<Attr>() as u32,
        config: event.config,
        read_format: PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING,
        flags,
        ..Attr::default()
    };
    // SAFETY: `attr` is a valid perf_event_attr of the size it states, alive for the call;
    // cpu -1 (any), no group leader.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const Attr,
            pid,
            -1 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor the kernel just returned, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The software events the kernel switches its counting code on and off for (each has a
/// static key; task-clock has none: it is read from the task's run time).
fn has_kernel_switch(event: &Event) -> bool {
    event.kind == PERF_TYPE_SOFTWARE && event.config != PERF_COUNT_SW_TASK_CLOCK
}

/// The counters [`keep_kernel_switches_on`] keeps.
static KEPT: OnceLock<Vec<OwnedFd>> = OnceLock::new();

/// Hold the kernel's switches of the `columns`' software events on for the rest of the
/// process (see the module docs): once per process, one disabled counter of each on the
/// calling thread, never inherited (a child benchbox forks gets none), never read. A counter
/// the kernel refuses is simply not kept: the invocations' own counters then pay the switch.
fn keep_kernel_switches_on(columns: &[&str]) {
    KEPT.get_or_init(|| {
        SOFTWARE
            .iter()
            .filter(|e| has_kernel_switch(e) && columns.contains(&e.column))
            .filter_map(|e| open_with(e, 0, ATTR_DISABLED).ok())
            .collect()
    });
}

/// The counters open on one workload.
pub(super) struct Open {
    events: Vec<(&'static str, File)>,
}

/// The workload's pid on the host: init's only child, init being the launcher's only child.
/// (The workload's own pid is its namespace's; the parent needs the one it can name.)
pub(super) fn workload_pid(launcher: Pid) -> Option<Pid> {
    let only_child = |pid: Pid| -> Option<Pid> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        let mut children = text.split_whitespace();
        let child = children.next()?.parse().ok()?;
        children.next().is_none().then_some(Pid::from_raw(child))
    };
    only_child(only_child(launcher)?)
}

impl Open {
    /// Open the run's `columns` (see [`available`]) on the workload `pid`, which has not yet
    /// exec'd. A counter the kernel refuses here is left out (its column stays empty).
    pub(super) fn on(pid: Pid, columns: &[&str]) -> Open {
        keep_kernel_switches_on(columns);
        let events = SOFTWARE
            .iter()
            .chain(&HARDWARE)
            .filter(|e| columns.contains(&e.column))
            .filter_map(|e| Some((e.column, File::from(open(e, pid.as_raw()).ok()?))))
            .collect();
        Open { events }
    }

    /// The counts, once nothing of the tree runs any more (init reported its final status, so
    /// every inherited count was folded in at its process's exit).
    pub(super) fn read(self) -> Counters {
        let mut counters = Counters::default();
        let mut scaled = false;
        for (column, mut file) in self.events {
            let mut buf = [0u8; 24];
            if file.read_exact(&mut buf).is_err() {
                continue;
            }
            let word = |i: usize| u64::from_ne_bytes(buf[i * 8..i * 8 + 8].try_into().unwrap());
            let (value, enabled, running) = (word(0), word(1), word(2));
            let value = if running == 0 {
                // Never counted (the workload never exec'd, or the counter never got a PMU
                // register): no value, rather than a zero.
                continue;
            } else if running < enabled {
                scaled = true;
                (value as f64 * enabled as f64 / running as f64).round() as u64
            } else {
                value
            };
            match column {
                "task_clock_s" => counters.task_clock_s = Some(value as f64 / 1e9),
                other => {
                    if let Some(slot) = counters.count_mut(other) {
                        *slot = Some(value);
                    }
                }
            }
        }
        if !counters.is_empty() {
            counters.counters_scaled = Some(scaled);
        }
        counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fork a child that waits for a byte on a pipe and then execs `/bin/true`; open the
    /// counters on it as the sandbox does, let it go, reap it, read them.
    fn count_true(columns: &[&str]) -> Counters {
        let (r, w) = nix::unistd::pipe().unwrap();
        let path = c"/bin/true";
        let argv = [path.as_ptr(), std::ptr::null()];
        // SAFETY: the child only reads, execs and exits (async-signal-safe calls).
        let child = unsafe { libc::fork() };
        assert!(child >= 0);
        if child == 0 {
            let mut byte = 0u8;
            // SAFETY: a valid descriptor and a one-byte buffer; then the exec or the exit.
            unsafe {
                libc::read(
                    std::os::fd::AsRawFd::as_raw_fd(&r),
                    (&mut byte as *mut u8).cast(),
                    1,
                );
                libc::execv(path.as_ptr(), argv.as_ptr());
                libc::_exit(127);
            }
        }
        drop(r);
        let open = Open::on(Pid::from_raw(child), columns);
        nix::unistd::write(&w, b"g").unwrap();
        drop(w);
        let status = nix::sys::wait::waitpid(Pid::from_raw(child), None).unwrap();
        assert_eq!(
            status,
            nix::sys::wait::WaitStatus::Exited(Pid::from_raw(child), 0)
        );
        open.read()
    }

    #[test]
    fn the_kernels_switches_are_kept_on_and_the_counts_stay_right() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let (columns, _) = available(Path::new("/sys"));
        for _ in 0..2 {
            let counters = count_true(&columns);
            // One counter kept per software event with a switch, opened by the first
            // invocation and still open for the second.
            assert_eq!(KEPT.get().map(Vec::len), Some(3));
            let task_clock = counters.task_clock_s.unwrap();
            assert!(task_clock > 0.0 && task_clock < 1.0, "{counters:?}");
            // The exec of /bin/true faults its pages in: counted, so the kept counters (on
            // benchbox, disabled) take nothing from the workload's.
            assert!(counters.page_faults.unwrap() > 0, "{counters:?}");
            assert!(counters.context_switches.is_some(), "{counters:?}");
            assert!(counters.cpu_migrations.is_some(), "{counters:?}");
            assert_eq!(counters.counters_scaled, Some(false), "{counters:?}");
        }
    }

    #[test]
    fn the_attr_is_the_first_published_size() {
        assert_eq!(std::mem::size_of::<Attr>(), 64);
    }

    #[test]
    fn every_counter_has_a_runs_csv_column() {
        let columns: Vec<&str> = SOFTWARE.iter().chain(&HARDWARE).map(|e| e.column).collect();
        let mut expected = Counters::SOFTWARE.to_vec();
        expected.extend(Counters::HARDWARE);
        assert_eq!(columns, expected);
        assert_eq!(&Counters::COLUMNS[..9], expected.as_slice());
    }
}
