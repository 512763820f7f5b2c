//! The container's filesystem, built inside its new mount namespace before `pivot_root`.
//!
//! Runs in the container's init process (pid 1 of the new pid namespace), so the `/proc` it
//! mounts shows only the container's processes. It happens in two steps: [`setup`] while the
//! parent creates the invocation's cgroup, [`finish_and_pivot`] once init has joined it.
//! Order matters: first a tmpfs private to the container, for its writable layer (unless that
//! is on disk) and its `/run`; the root (an overlay of the rootfs layers with a fresh upper, or
//! the host's `/` bound recursively and made read-only), then `/proc`, `/sys`, a minimal `/dev`,
//! a private `/run` with the metrics file and (host mode) `/tmp`, the volumes (last, so a volume
//! may sit under `/tmp`); then `/sys/fs/cgroup` and `pivot_root`.
//! Nothing here needs undoing: the mounts die with the namespace when its last process exits.

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::unistd::{chdir, pivot_root};

use super::{RootSpec, Volume};

/// Everything the mount step needs, prepared by the parent before the fork.
#[derive(Debug, Clone)]
pub struct MountPlan {
    pub root: RootSpec,
    /// Where the new root is assembled (an empty directory on the host).
    pub new_root: PathBuf,
    /// Where the container's private tmpfs is mounted (an empty directory on the host): it holds
    /// `/run` (with the metrics file) and, unless `disk_scratch` is set, the overlay's upper and
    /// work directories.
    pub tmpfs_dir: PathBuf,
    /// This invocation's own directory on disk for the upper and work directories.
    pub disk_scratch: Option<PathBuf>,
    /// An empty directory (the lower layer of host mode's /tmp when there is no setup layer).
    pub empty_dir: PathBuf,
    pub volumes: Vec<Volume>,
}

type Step<T> = Result<T, String>;

fn ctx(what: impl FnOnce() -> String) -> impl FnOnce(nix::Error) -> String {
    move |e| format!("{}: {e}", what())
}

fn do_mount(
    src: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Step<()> {
    mount(src, target, fstype, flags, data).map_err(ctx(|| {
        format!(
            "cannot mount {} on `{}`",
            fstype.or(src).unwrap_or("?"),
            target.display()
        )
    }))
}

/// Make everything under `path` read-only, submounts included (mount_setattr, Linux 5.12+).
fn make_readonly_recursive(path: &Path) -> Step<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let c_path = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: valid NUL-terminated path and a correctly sized, initialised mount_attr struct.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c_path.as_ptr(),
            AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(format!("cannot make `{}` read-only: {err}", path.display()));
    }
    // Kernels before 5.12: remount the top mount read-only (submounts stay as they are).
    do_mount(
        None,
        path,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
        None,
    )
}

fn mkdir_p(path: &Path) -> Step<()> {
    fs::create_dir_all(path).map_err(|e| format!("cannot create `{}`: {e}", path.display()))
}

/// Overlay options need `:` and `,` escaped in paths.
fn escape_overlay_path(p: &Path) -> String {
    p.display()
        .to_string()
        .replace('\\', "\\\\")
        .replace(':', "\\:")
        .replace(',', "\\,")
}

fn mount_overlay(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Step<()> {
    mkdir_p(upper)?;
    mkdir_p(work)?;
    let lower = lowers
        .iter()
        .map(|p| escape_overlay_path(p))
        .collect::<Vec<_>>()
        .join(":");
    let data = format!(
        "lowerdir={lower},upperdir={},workdir={}",
        escape_overlay_path(upper),
        escape_overlay_path(work)
    );
    do_mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(&data),
    )
}

/// Build the container's filesystem, all but its cgroups (see [`finish_and_pivot`]). Runs in
/// the container's init.
pub fn setup(plan: &MountPlan) -> Step<()> {
    // Nothing we mount may propagate back to the host (and pivot_root requires it).
    do_mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )?;
    // The container's tmpfs: one mount for its writable layer and its /run (a tmpfs is charged
    // to the container's memory cgroup as the workload writes to it).
    do_mount(
        Some("tmpfs"),
        &plan.tmpfs_dir,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=755"),
    )?;
    let run_dir = plan.tmpfs_dir.join("run");
    let metrics_dir = run_dir.join("benchbox");
    mkdir_p(&metrics_dir)?;
    let metrics_file = Path::new(super::METRICS_PATH)
        .file_name()
        .map(|name| metrics_dir.join(name))
        .unwrap_or_default();
    fs::write(&metrics_file, b"")
        .map_err(|e| format!("cannot create `{}`: {e}", metrics_file.display()))?;
    // Any user the workload runs as may write its metrics.
    for (path, mode) in [(&metrics_dir, 0o777), (&metrics_file, 0o666)] {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot chmod `{}`: {e}", path.display()))?;
    }
    let scratch = plan.disk_scratch.as_ref().unwrap_or(&plan.tmpfs_dir);
    let (upper, work) = (scratch.join("upper"), scratch.join("work"));
    let root = &plan.new_root;
    match &plan.root {
        RootSpec::Overlay { lowers } => {
            mount_overlay(lowers, &upper, &work, root)?;
        }
        RootSpec::Host { tmp_lower } => {
            do_mount(
                Some("/"),
                root,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )?;
            make_readonly_recursive(root)?;
            // A private, writable /tmp: an overlay so a setup step's /tmp can sit below it.
            let lower = tmp_lower.clone().unwrap_or_else(|| plan.empty_dir.clone());
            mount_overlay(&[lower], &upper, &work, &root.join("tmp"))?;
            fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))
                .map_err(|e| format!("cannot chmod /tmp: {e}"))?;
        }
    }
    // A private /run, empty but for the metrics directory: a directory of the tmpfs.
    mkdir_p(&root.join("run"))?;
    do_mount(
        Some(&run_dir.display().to_string()),
        &root.join("run"),
        None,
        MsFlags::MS_BIND,
        None,
    )?;
    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mkdir_p(&root.join("proc"))?;
    do_mount(
        Some("proc"),
        &root.join("proc"),
        Some("proc"),
        nosuid_nodev_noexec,
        None,
    )?;
    mkdir_p(&root.join("sys"))?;
    // A fresh sysfs reflects the container's own network namespace; read-only.
    do_mount(
        Some("sysfs"),
        &root.join("sys"),
        Some("sysfs"),
        nosuid_nodev_noexec | MsFlags::MS_RDONLY,
        None,
    )?;
    setup_dev(&root.join("dev"))?;

    for volume in &plan.volumes {
        mount_volume(root, volume, matches!(plan.root, RootSpec::Host { .. }))?;
    }
    Ok(())
}

/// Show the invocation's cgroup directories at `/sys/fs/cgroup` (see
/// `Group::container_view`; they exist only once the parent made the group) and switch into
/// the new root.
pub fn finish_and_pivot(plan: &MountPlan, cgroup_view: &[(String, PathBuf)]) -> Step<()> {
    let root = &plan.new_root;
    setup_cgroup_fs(&root.join("sys/fs/cgroup"), cgroup_view)?;
    chdir(root).map_err(ctx(|| format!("cannot chdir to `{}`", root.display())))?;
    // pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves
    // only the new root visible.
    pivot_root(".", ".").map_err(ctx(|| "pivot_root failed".to_string()))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(ctx(|| "cannot detach the old root".to_string()))?;
    chdir("/").map_err(ctx(|| "cannot chdir to /".to_string()))?;
    Ok(())
}

/// The container's own cgroups, read-only, at /sys/fs/cgroup: bind mounts of the invocation's
/// group directories (a tmpfs holds one per v1 controller). Binds, not fresh cgroup mounts: a
/// v1 cgroup mount waits for dying groups (the previous invocation's) to go offline.
/// Inside the cgroup namespace the binds' roots show as `/` in /proc/self/mountinfo and
/// /proc/self/cgroup, exactly as container-aware runtimes expect.
fn setup_cgroup_fs(target: &Path, view: &[(String, PathBuf)]) -> Step<()> {
    let bind = |source: &Path, path: &Path| -> Step<()> {
        do_mount(
            Some(&source.display().to_string()),
            path,
            None,
            MsFlags::MS_BIND,
            None,
        )
    };
    if let [(dir, source)] = view
        && dir.is_empty()
    {
        bind(source, target)?;
    } else {
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        do_mount(
            Some("tmpfs"),
            target,
            Some("tmpfs"),
            flags,
            Some("mode=755"),
        )?;
        for (dir, source) in view {
            let path = target.join(dir);
            mkdir_p(&path)?;
            bind(source, &path)?;
        }
    }
    // One call makes the whole tree read-only, instead of a remount per bind.
    make_readonly_recursive(target)
}

/// A minimal /dev: a tmpfs with device nodes, a private devpts, and a shm directory.
fn setup_dev(dev: &Path) -> Step<()> {
    mkdir_p(dev)?;
    do_mount(
        Some("tmpfs"),
        dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    // Device nodes made with mknod (we are root in the initial user namespace): one cheap
    // syscall each where a bind mount of the host's node would cost a mount.
    for (node, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        let target = dev.join(node);
        let mode = nix::sys::stat::Mode::from_bits_truncate(0o666);
        nix::sys::stat::mknod(
            &target,
            nix::sys::stat::SFlag::S_IFCHR,
            mode,
            nix::sys::stat::makedev(major, minor),
        )
        .map_err(ctx(|| format!("cannot create `{}`", target.display())))?;
        // mknod honours the umask; the nodes must be usable by any user.
        fs::set_permissions(&target, fs::Permissions::from_mode(0o666))
            .map_err(|e| format!("cannot chmod `{}`: {e}", target.display()))?;
    }
    let pts = dev.join("pts");
    mkdir_p(&pts)?;
    do_mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    // /dev/shm is a sticky, world-writable directory of the /dev tmpfs (one tmpfs less).
    let shm = dev.join("shm");
    mkdir_p(&shm)?;
    fs::set_permissions(&shm, fs::Permissions::from_mode(0o1777))
        .map_err(|e| format!("cannot chmod /dev/shm: {e}"))?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(target, dev.join(link)).map_err(|e| format!("cannot link /dev/{link}: {e}"))?;
    }
    Ok(())
}

fn mount_volume(root: &Path, volume: &Volume, host_mode: bool) -> Step<()> {
    let target = root.join(volume.target.strip_prefix("/").unwrap_or(&volume.target));
    if !target.exists() {
        let made = if volume.host.is_dir() {
            fs::create_dir_all(&target)
        } else {
            target
                .parent()
                .map_or(Ok(()), fs::create_dir_all)
                .and_then(|_| fs::write(&target, b""))
        };
        made.map_err(|e| {
            let hint = if host_mode {
                " (hint: on the host filesystem only /tmp is writable: mount the volume at an existing path or under /tmp)"
            } else {
                ""
            };
            format!("cannot create volume target `{}`: {e}{hint}", volume.target.display())
        })?;
    }
    do_mount(
        Some(&volume.host.display().to_string()),
        &target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    if volume.read_only {
        make_readonly_recursive(&target)?;
    }
    Ok(())
}

/// Bring the loopback interface up (a new network namespace starts with it down).
pub fn loopback_up() -> Step<()> {
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq whose name we fill in; the socket is closed.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(format!(
                "cannot open a socket: {}",
                std::io::Error::last_os_error()
            ));
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let mut rc = libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut ifr);
        if rc == 0 {
            ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            rc = libc::ioctl(sock, libc::SIOCSIFFLAGS, &ifr);
        }
        let err = std::io::Error::last_os_error();
        libc::close(sock);
        if rc != 0 {
            return Err(format!("cannot bring up the loopback interface: {err}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_paths_are_escaped() {
        assert_eq!(escape_overlay_path(Path::new("/a:b,c")), "/a\\:b\\,c");
    }
}
