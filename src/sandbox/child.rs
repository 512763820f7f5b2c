//! The container's processes: everything that runs after benchbox forks, in the launcher,
//! in init (pid 1 of the container) and in the workload before its `execve`.
//!
//! Every function in this file runs in a child of `fork` (or `clone3`), a copy of a benchbox
//! that may have had other threads, and these rules hold for the whole file:
//! - Never return into benchbox's code: each process ends in `execve` or `_exit`, so no
//!   destructor, unwinding or `atexit` handler of the parent's state runs in the copy.
//! - Take no lock another thread may have held at the fork (they were copied locked): no
//!   `Mutex`, no stdout/stderr printing. glibc resets its allocator's locks in the child, so
//!   allocating is sound; it is kept little, and everything the processes need is prepared by
//!   the parent in a [`ChildPlan`] before the fork.
//! - Init's last reports, once the workload is reaped, allocate nothing (its cgroup may be full
//!   of what the workload left), and its signal handler calls only async-signal-safe functions.
//! - Report failures over the report pipe ([`die`]), never by panicking.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, pipe2, sethostname, setsid};

use super::METRICS_PATH_C;
use super::mounts::{self, MountPlan};
use super::protocol::{
    self, METRICS_LIMIT, MSG_END, MSG_ERROR, MSG_EXEC_ERROR, MSG_EXEC_TIME, MSG_METRICS, MSG_READY,
    MSG_STATUS, ToInit, encode_cpu, encode_status, monotonic_ns, send, write_all,
};
use super::{security, user};

/// Everything the child processes need, prepared by the parent before the fork so they
/// allocate little.
pub(super) struct ChildPlan {
    pub(super) unshare: CloneFlags,
    pub(super) mounts: MountPlan,
    pub(super) hostname: String,
    pub(super) loopback: bool,
    pub(super) workdir: CString,
    pub(super) user: Option<String>,
    /// The capabilities to keep and the seccomp filter (compiled before the fork).
    pub(super) security: security::Prepared,
    pub(super) argv: Vec<CString>,
    pub(super) env: Vec<CString>,
    pub(super) path_var: String,
    /// Write ends of the pipes benchbox drains into the logs: never a file on the host's disk,
    /// which the workload could use as a handle to reach the host's filesystem.
    pub(super) stdout: OwnedFd,
    pub(super) stderr: OwnedFd,
    pub(super) report_w: RawFd,
    pub(super) go_r: RawFd,
    pub(super) exec_w: RawFd,
    /// Where init reads the cgroup to join (see `supervise::send_group`).
    pub(super) group_r: RawFd,
    /// Rootless: how the launcher and the parent take turns on the user namespace's id map.
    pub(super) userns: Option<UsernsTurns>,
    /// A network namespace to join instead of making one (a cell's services share it with
    /// the workload; see [`super::network`]).
    pub(super) join_network: Option<RawFd>,
    /// Descriptors the children must close (the parent's ends).
    pub(super) parent_fds: Vec<RawFd>,
}

/// The launcher's ends of the two pipes around the id map: it says it has unshared, then
/// waits until the parent says the map is written.
pub(super) struct UsernsTurns {
    pub(super) unshared_w: RawFd,
    pub(super) mapped_r: RawFd,
    /// Subordinate ids are mapped (not only the user's own): the launcher may (and does) drop
    /// the host's supplementary groups (with only the user's own ids, `setgroups` is denied),
    /// and the workload may switch user.
    pub(super) subordinate_ids: bool,
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

/// What the parent sent about the group (see `cgroup::Group`).
struct GroupToJoin {
    /// The directory to be born in with `clone3(CLONE_INTO_CGROUP)` (v2).
    birth: Option<PathBuf>,
    /// The files to write "0" into, to join the group otherwise.
    join: Vec<PathBuf>,
    /// The container's view of its cgroups.
    view: Vec<(String, PathBuf)>,
}

/// What the parent sent ([`ToInit`]). `None` when the parent could not make the group (it
/// closed the pipe without an end).
fn receive_group(group_r: RawFd) -> Option<GroupToJoin> {
    use std::os::fd::FromRawFd;
    // SAFETY: the descriptor is ours alone in this process and is not used after this.
    let mut pipe = unsafe { File::from_raw_fd(group_r) };
    let mut group = GroupToJoin {
        birth: None,
        join: Vec::new(),
        view: Vec::new(),
    };
    while let Some((tag, payload)) = protocol::read_message(&mut pipe) {
        match ToInit::decode(tag, payload)? {
            ToInit::Birth(dir) => group.birth = Some(dir),
            ToInit::Join(file) => group.join.push(file),
            ToInit::View { dir, path } => group.view.push((dir, path)),
            // No file to join: no cgroup (see `nogroup`).
            ToInit::End => return Some(group),
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
pub(super) fn launcher(plan: &ChildPlan) -> ! {
    // Joined first: the descriptor is closed with the other inherited ones just below.
    if let Some(fd) = plan.join_network {
        // SAFETY: the descriptor stays open for this call.
        let ns = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        if let Err(e) = nix::sched::setns(ns, CloneFlags::CLONE_NEWNET) {
            die(
                plan.report_w,
                MSG_ERROR,
                &format!("cannot join the cell's network namespace: {e}"),
            )
        }
    }
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
