//! The container's filesystem, built inside its new mount namespace by the container's init.
//!
//! Three steps. [`setup`], while the parent creates the invocation's cgroup: a tmpfs private
//! to the container (its writable layer, unless that is on disk, and its `/run`); the root,
//! either an overlay of the rootfs layers with a fresh upper, or (host mode) the host's tree
//! through one throw-away overlay per mount point and a private `/tmp`; and detached copies
//! (`open_tree`) of what will be mounted inside (`/run`, the volumes, read-only ones already
//! read-only). [`pivot`], once the cgroup exists: the cgroup directories are held the same way,
//! then `pivot_root` and the old root detached, and only then `/proc` (sensitive files masked
//! or read-only), `/sys`, a minimal `/dev`, `/run` and the volumes are mounted: every path from
//! here on (a volume target, a symlink in the image, `..`) resolves inside the container, so no
//! content the image or the workload controls can point a mount or a `mkdir` at the host.
//! [`mount_cgroups`], in the container's cgroup namespace: the group, read-only, at
//! `/sys/fs/cgroup`. Nothing here needs undoing: the mounts die with the namespace.
//!
//! Rootless (in a user namespace, see [`super::userns`]) three things differ, all made in
//! [`setup`] while the host's own mounts are still in the container's mount namespace: the
//! kernel lets a user namespace mount proc and sysfs only where an unobstructed one is already
//! visible, so both are made there (`fsmount`) and attached after the pivot; device nodes
//! cannot be made (`mknod` needs `MKNOD` over the host), so the host's harmless ones are
//! bind-mounted, as rootless Podman does; and overlays use `userxattr` (the kernel's own
//! `trusted.overlay.*` attributes are out of a user namespace's reach).

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
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
    /// benchbox's scratch base: host mode never shows it to the container.
    pub scratch_base: PathBuf,
    pub volumes: Vec<Volume>,
    /// Cover or make read-only the kernel's sensitive files (all but privileged containers).
    pub mask_kernel_files: bool,
    /// In a user namespace (rootless): see the module doc.
    pub rootless: bool,
    /// The container has its own network namespace (sysfs shows the network namespace of its
    /// mounter, so a rootless container on the host's network gets the host's /sys, read-only).
    pub private_network: bool,
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

/// Make the mount at `path` (relative to nothing: absolute, or empty with `AT_EMPTY_PATH` on
/// a detached tree's descriptor) read-only, with its submounts when `flags` has
/// `AT_RECURSIVE` (mount_setattr, Linux 5.12+).
fn set_readonly(
    dirfd: RawFd,
    path: &std::ffi::CStr,
    flags: libc::c_uint,
) -> Result<(), std::io::Error> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
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
            dirfd,
            path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
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

fn mount_overlay(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    flags: MsFlags,
    rootless: bool,
) -> Step<()> {
    mkdir_p(upper)?;
    mkdir_p(work)?;
    // Each lower layer by descriptor, so what is mounted is what was checked (see
    // `open_host_path`); the descriptors live until the mount is made.
    let held = lowers
        .iter()
        .map(|p| open_host_path(p))
        .collect::<Step<Vec<_>>>()?;
    let lower = held
        .iter()
        .map(|fd| escape_overlay_path(&fd_path(fd)))
        .collect::<Vec<_>>()
        .join(":");
    let mut data = format!(
        "lowerdir={lower},upperdir={},workdir={}",
        escape_overlay_path(upper),
        escape_overlay_path(work)
    );
    if rootless {
        // Opaque directories are `user.overlay.opaque` (see `image::unpack`): a user namespace
        // may not read or write `trusted.*` attributes.
        data.push_str(",userxattr");
    }
    do_mount(Some("overlay"), target, Some("overlay"), flags, Some(&data))
}

/// Mounts made before the pivot, attached inside the new root after it (see [`pivot`]).
pub struct Detached {
    /// The container's private /run (a directory of its tmpfs).
    run: OwnedFd,
    /// Each volume's host tree (already read-only when asked), with its target.
    volumes: Vec<(PathBuf, OwnedFd, bool)>,
    /// Rootless: /proc, /sys and the device nodes, made before the pivot (see the module doc).
    kernel: Option<KernelMounts>,
}

/// A rootless container's /proc, /sys and /dev nodes, detached until the pivot.
struct KernelMounts {
    proc: OwnedFd,
    sys: OwnedFd,
    devices: Vec<(&'static str, OwnedFd)>,
}

/// The device nodes of a container's /dev: (name, major, minor).
const DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// A new mount of `fstype` (proc, sysfs), detached: made with the new mount API, so that the
/// kernel's check that it reveals nothing hidden runs now, against the host's mounts still in
/// this namespace, not after the pivot (where a user namespace would be refused).
fn fresh_mount(fstype: &std::ffi::CStr, attributes: u64) -> Step<OwnedFd> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    let name = fstype.to_string_lossy();
    let err = |what: &str| format!("cannot {what} {name}: {}", std::io::Error::last_os_error());
    // SAFETY: a NUL-terminated name; the result is a new descriptor we own.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) };
    if fs < 0 {
        return Err(err("open a file system context for"));
    }
    // SAFETY: fsopen returned a fresh descriptor.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as RawFd) };
    // SAFETY: a command without key or value.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if rc < 0 {
        return Err(err("create"));
    }
    // SAFETY: our context descriptor; the result is a new descriptor we own.
    let mnt = unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            attributes as libc::c_uint,
        )
    };
    if mnt < 0 {
        return Err(err("mount"));
    }
    // SAFETY: fsmount returned a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(mnt as RawFd) })
}

/// See [`KernelMounts`]: from init, in the container's pid and network namespaces.
fn kernel_mounts(plan: &MountPlan) -> Step<KernelMounts> {
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    const MOUNT_ATTR_NOSUID: u64 = 0x2;
    const MOUNT_ATTR_NODEV: u64 = 0x4;
    const MOUNT_ATTR_NOEXEC: u64 = 0x8;
    let safe = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    let proc = fresh_mount(c"proc", safe)?;
    let sys = if plan.private_network {
        fresh_mount(c"sysfs", safe | MOUNT_ATTR_RDONLY)?
    } else {
        // The host's network: a sysfs of this user namespace would be refused; the host's own,
        // read-only.
        detach(Path::new("/sys"), true, true)?
    };
    let devices = DEVICES
        .iter()
        .map(|&(name, _, _)| Ok((name, detach(&Path::new("/dev").join(name), false, false)?)))
        .collect::<Step<_>>()?;
    Ok(KernelMounts { proc, sys, devices })
}

/// Build the container's root filesystem and take hold of what will be mounted in it (the
/// cgroups come later, see [`pivot`]). Runs in the container's init, before it joins the
/// invocation's cgroup.
pub fn setup(plan: &MountPlan) -> Step<Detached> {
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
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
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
            // nodev: a device node shipped in an image (the host's disk, /dev/kmsg) stays inert;
            // the container's own devices live in its /dev.
            mount_overlay(
                lowers,
                &upper,
                &work,
                root,
                MsFlags::MS_NODEV,
                plan.rootless,
            )?;
        }
        RootSpec::Host { tmp_lower } => {
            host_overlays(plan, scratch)?;
            // A private, writable /tmp: an overlay so a setup step's /tmp can sit below it.
            let lower = tmp_lower.clone().unwrap_or_else(|| plan.empty_dir.clone());
            let tmp = root.join("tmp");
            mount_overlay(
                &[lower],
                &upper,
                &work,
                &tmp,
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                plan.rootless,
            )?;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777))
                .map_err(|e| format!("cannot chmod /tmp: {e}"))?;
        }
    }
    let run = detach(&run_dir, false, false)?;
    let volumes = plan
        .volumes
        .iter()
        .map(|v| {
            let tree = detach(&v.host, true, v.read_only)
                .map_err(|e| format!("volume `{}`: {e}", v.host.display()))?;
            Ok((v.target.clone(), tree, v.host.is_dir()))
        })
        .collect::<Step<_>>()?;
    let kernel = if plan.rootless {
        Some(kernel_mounts(plan)?)
    } else {
        None
    };
    Ok(Detached {
        run,
        volumes,
        kernel,
    })
}

/// Host mode: the host's tree through throw-away overlays, one per mount point the container
/// sees (an overlay does not reach into its lower layer's submounts), each with an upper layer
/// of its own in the container's scratch. Writes anywhere succeed and vanish with the
/// container; the host's files are only ever lower layers. A mount that cannot be an overlay
/// lower (some network or FUSE file systems) is shown read-only instead.
///
/// Rootless, the kernel refuses an overlay over a mount with other mounts below it (in a user
/// namespace they are locked to it): such a mount is rebuilt instead ([`rebuild_level`]).
fn host_overlays(plan: &MountPlan, scratch: &Path) -> Step<()> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    let hidden = [plan.new_root.as_path(), plan.tmpfs_dir.as_path()];
    let every_mount = all_mount_points(&mountinfo);
    for (i, point) in host_mount_points(&mountinfo, &plan.scratch_base, &hidden)
        .iter()
        .enumerate()
    {
        let target = plan.new_root.join(point.strip_prefix("/").unwrap_or(point));
        let layer = scratch.join("host").join(i.to_string());
        let flags = MsFlags::MS_NODEV;
        if plan.rootless
            && every_mount
                .iter()
                .any(|m| m != point && m.starts_with(point))
        {
            do_mount(
                Some("tmpfs"),
                &target,
                Some("tmpfs"),
                MsFlags::MS_NODEV | MsFlags::MS_NOSUID,
                Some("mode=755"),
            )?;
            let mut n = 0;
            rebuild_level(point, &target, &layer, &every_mount, &mut n)?;
            continue;
        }
        let overlaid = mount_overlay(
            std::slice::from_ref(point),
            &layer.join("upper"),
            &layer.join("work"),
            &target,
            flags,
            plan.rootless,
        );
        if overlaid.is_err() && plan.rootless {
            // In a user namespace the host's mounts are locked together, so a plain bind of
            // one is refused: its whole tree, read-only. A mount point this user cannot reach
            // (under a directory closed to it) stays hidden, as it is from the user.
            if let Ok(tree) = detach(point, true, true) {
                attach(&tree, &target)?;
            }
        } else if overlaid.is_err() {
            do_mount(
                Some(&point.display().to_string()),
                &target,
                None,
                MsFlags::MS_BIND,
                None,
            )?;
            do_mount(
                None,
                &target,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NODEV,
                None,
            )?;
        }
    }
    Ok(())
}

/// Rootless host mode: the directory `dir` of the host, which has mounts below it, rebuilt at
/// `target` (a directory of a tmpfs) one entry at a time, so that no view of it is a plain
/// bind (through a bind a workload could connect to the host's unix sockets, which an overlay
/// keeps it from, as under root). A directory with no mount below it gets a throw-away overlay
/// of its own (upper layers under `layer`, numbered by `n`); a directory that is a mount point
/// stays an empty mount point (its own overlay comes later, or it is one the container
/// replaces); one with mount points deeper is rebuilt the same way; a symlink is copied; a
/// file is bound read-only; sockets, fifos and device nodes are left out. What this user may
/// not read stays empty, as it is closed to the user.
fn rebuild_level(
    dir: &Path,
    target: &Path,
    layer: &Path,
    every_mount: &[PathBuf],
    n: &mut usize,
) -> Step<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let (path, made) = (entry.path(), target.join(entry.file_name()));
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let kind = meta.file_type();
        if kind.is_dir() {
            mkdir_p(&made)?;
            let _ = fs::set_permissions(&made, fs::Permissions::from_mode(meta.mode() & 0o7777));
            if every_mount.iter().any(|m| m == &path) {
                continue;
            }
            if every_mount.iter().any(|m| m.starts_with(&path)) {
                rebuild_level(&path, &made, layer, every_mount, n)?;
                continue;
            }
            *n += 1;
            let own = layer.join(n.to_string());
            let overlaid = mount_overlay(
                std::slice::from_ref(&path),
                &own.join("upper"),
                &own.join("work"),
                &made,
                MsFlags::MS_NODEV,
                true,
            );
            if overlaid.is_err()
                && let Ok(tree) = detach(&path, true, true)
            {
                attach(&tree, &made)?;
            }
        } else if kind.is_symlink() {
            if let Ok(to) = fs::read_link(&path) {
                symlink(&to, &made)
                    .map_err(|e| format!("cannot copy the symlink `{}`: {e}", path.display()))?;
            }
        } else if kind.is_file() {
            fs::write(&made, b"")
                .map_err(|e| format!("cannot create `{}`: {e}", made.display()))?;
            if let Ok(tree) = detach(&path, false, true) {
                attach(&tree, &made)?;
            }
        }
        // Sockets and fifos (ways to the host's processes) and device nodes are left out.
    }
    Ok(())
}

/// Every mount point in `mountinfo` (the container's own included). Pure.
fn all_mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .collect()
}

/// The host's mount points a host-mode container sees through overlays, parents first: every
/// visible mount but the kernel's and the container's own (`/proc`, `/sys`, `/dev`, `/run`,
/// `/tmp` and what is under them are replaced), benchbox's scratch, and `hidden`. Pure.
pub fn host_mount_points(mountinfo: &str, scratch_base: &Path, hidden: &[&Path]) -> Vec<PathBuf> {
    const REPLACED: [&str; 5] = ["/proc", "/sys", "/dev", "/run", "/tmp"];
    let mut points: Vec<PathBuf> = Vec::new();
    for line in mountinfo.lines() {
        let Some(field) = line.split(' ').nth(4) else {
            continue;
        };
        let point = PathBuf::from(unescape_mountinfo(field));
        let skip = REPLACED.iter().any(|r| point.starts_with(r))
            || point.starts_with(scratch_base)
            || hidden.iter().any(|h| point.starts_with(h));
        if skip {
            continue;
        }
        // A later mount on the same point hides the earlier one, and whatever was under it.
        points.retain(|p| !p.starts_with(&point));
        points.push(point);
    }
    points.sort_by_key(|p| p.components().count());
    points
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Ok(code) = u8::from_str_radix(&field[i + 1..i + 4], 8)
        {
            out.push(code);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Open a host path benchbox mounts into a container (a lower layer, a volume's source)
/// without following any symlink on the way (openat2 `RESOLVE_NO_SYMLINKS`). The paths are
/// canonical when the run starts; a symlink in one now means a workload replaced a directory
/// it could write (inside a read-write volume, say) to point the next container at the host.
fn open_host_path(path: &Path) -> Step<OwnedFd> {
    const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
    const RESOLVE_NO_SYMLINKS: u64 = 0x04;
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: a valid path and a correctly sized open_how; the result is a new descriptor.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            c_path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        let hint = if err.raw_os_error() == Some(libc::ELOOP) {
            " (a symlink appeared in a path benchbox mounts: was it replaced by a workload through a read-write volume? refusing to follow it)"
        } else {
            ""
        };
        return Err(format!("cannot open `{}`: {err}{hint}", path.display()));
    }
    // SAFETY: openat2 returned a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `/proc/self/fd/N` of a descriptor: a path the kernel resolves to exactly that directory.
fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// A detached copy of the mount tree at `path` (a host path, resolved now, before the pivot),
/// made read-only when asked, to attach in the container later with [`attach`].
fn detach(path: &Path, recursive: bool, read_only: bool) -> Step<OwnedFd> {
    let source = open_host_path(path)?;
    let mut flags =
        OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: a descriptor we own and an empty path; the result is a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, source.as_raw_fd(), c"".as_ptr(), flags) };
    if fd < 0 {
        return Err(format!(
            "cannot take hold of `{}`: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: open_tree returned a fresh descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    if read_only {
        set_readonly(
            fd.as_raw_fd(),
            c"",
            libc::AT_EMPTY_PATH as libc::c_uint | AT_RECURSIVE,
        )
        .map_err(|e| format!("cannot make `{}` read-only: {e}", path.display()))?;
    }
    Ok(fd)
}

/// Attach a tree from [`detach`] at `target`, a path inside the container (after the pivot,
/// so it resolves only within the container's own root).
fn attach(tree: &OwnedFd, target: &Path) -> Step<()> {
    let c_target = CString::new(target.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: a descriptor we own, an empty source path and a valid target path.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c_target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc != 0 {
        return Err(format!(
            "cannot mount on `{}`: {}",
            target.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// The cgroup directories to show at /sys/fs/cgroup, held before the pivot.
pub struct CgroupTrees(Vec<(String, OwnedFd)>);

/// Take hold of the invocation's cgroup directories (see `Group::container_view`; they exist
/// only once the parent made the group), switch into the new root for good, and build the
/// rest of the container's filesystem there: `/proc` (with the kernel's sensitive files
/// masked or read-only), `/sys`, `/dev`, `/run`, the volumes. From here on every path resolves
/// inside the container: a symlink or `..` in the image or a volume target cannot reach the
/// host. Creating a mount point writes only to the container's own writable layer.
pub fn pivot(
    plan: &MountPlan,
    detached: Detached,
    cgroup_view: &[(String, PathBuf)],
) -> Step<CgroupTrees> {
    let trees = cgroup_view
        .iter()
        .map(|(dir, source)| Ok((dir.clone(), detach(source, false, true)?)))
        .collect::<Step<Vec<_>>>()?;
    let root = &plan.new_root;
    chdir(root).map_err(ctx(|| format!("cannot chdir to `{}`", root.display())))?;
    // pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves
    // only the new root visible.
    pivot_root(".", ".").map_err(ctx(|| "pivot_root failed".to_string()))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(ctx(|| "cannot detach the old root".to_string()))?;
    chdir("/").map_err(ctx(|| "cannot chdir to /".to_string()))?;

    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_point("/proc")?;
    match &detached.kernel {
        Some(kernel) => attach(&kernel.proc, Path::new("/proc"))?,
        None => do_mount(
            Some("proc"),
            Path::new("/proc"),
            Some("proc"),
            nosuid_nodev_noexec,
            None,
        )?,
    }
    mount_point("/sys")?;
    // A fresh sysfs reflects the container's own network namespace; read-only.
    match &detached.kernel {
        Some(kernel) => attach(&kernel.sys, Path::new("/sys"))?,
        None => do_mount(
            Some("sysfs"),
            Path::new("/sys"),
            Some("sysfs"),
            nosuid_nodev_noexec | MsFlags::MS_RDONLY,
            None,
        )?,
    }
    setup_dev(
        Path::new("/dev"),
        detached.kernel.as_ref().map(|k| &k.devices[..]),
    )?;
    if plan.mask_kernel_files {
        mask_kernel_files()?;
    }
    // A private /run, empty but for the metrics directory: a directory of the tmpfs.
    mount_point("/run")?;
    attach(&detached.run, Path::new("/run"))?;
    for (target, tree, is_dir) in &detached.volumes {
        make_volume_target(target, *is_dir, plan.rootless)?;
        attach(tree, target)?;
    }
    Ok(CgroupTrees(trees))
}

/// Make `path` (a top-level directory of the container: /proc, /sys, /dev, /run) a real
/// directory to mount on. An image may ship it as a symlink (`/proc -> /dev/x`, with `/dev/x
/// -> /elsewhere`): mounting through it would put proc where the masks, applied by path
/// afterwards, cannot find it (runc's CVE-2019-16884). Whatever is there is replaced in the
/// container's writable layer (a whiteout over the image's entry; the image is untouched).
fn mount_point(path: &str) -> Step<()> {
    let path = Path::new(path);
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(meta) => {
            let removed = if meta.file_type().is_symlink() || meta.is_file() {
                fs::remove_file(path)
            } else {
                fs::remove_file(path).or_else(|_| fs::remove_dir_all(path))
            };
            removed.map_err(|e| {
                format!(
                    "cannot replace `{}` (not a directory) in the container: {e}",
                    path.display()
                )
            })?;
        }
        Err(_) => {}
    }
    fs::create_dir(path).map_err(|e| format!("cannot create `{}`: {e}", path.display()))
}

/// Show the invocation's cgroups, read-only, at /sys/fs/cgroup (once init is in its cgroup
/// namespace). Bind mounts of the group's directories (a tmpfs holds one per v1 controller),
/// not fresh cgroup mounts: a v1 cgroup mount waits for dying groups (the previous
/// invocation's) to go offline. Inside the cgroup namespace the binds' roots show as `/` in
/// /proc/self/mountinfo and /proc/self/cgroup, exactly as container-aware runtimes expect.
pub fn mount_cgroups(trees: CgroupTrees) -> Step<()> {
    let target = Path::new("/sys/fs/cgroup");
    if let [(dir, tree)] = &trees.0[..]
        && dir.is_empty()
    {
        return attach(tree, target);
    }
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    do_mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    )?;
    for (dir, tree) in &trees.0 {
        let path = target.join(dir);
        mkdir_p(&path)?;
        attach(tree, &path)?;
    }
    do_mount(
        None,
        target,
        None,
        flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None,
    )
}

/// Kernel files a workload must not read (addresses, keys, other tenants' timers) are
/// covered, and the ones that would change the host for every later cell (sysctls, sysrq,
/// IRQ affinity, bus devices) made read-only, as Docker and runc do. Paths this kernel lacks
/// are skipped.
fn mask_kernel_files() -> Step<()> {
    // The masks go by path: make sure the paths are the kernel's, not something an image
    // arranged (see `mount_point`).
    for (path, magic, name) in [
        ("/proc", libc::PROC_SUPER_MAGIC, "proc"),
        ("/sys", libc::SYSFS_MAGIC, "sysfs"),
    ] {
        let fs =
            nix::sys::statfs::statfs(path).map_err(ctx(|| format!("cannot check `{path}`")))?;
        if fs.filesystem_type().0 != magic {
            return Err(format!(
                "`{path}` in the container is not {name}: refusing to run with its kernel files unmasked"
            ));
        }
    }
    const MASKED: [&str; 11] = [
        "/proc/kcore",
        "/proc/keys",
        "/proc/key-users",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/kallsyms",
        "/proc/latency_stats",
        "/proc/acpi",
        "/proc/scsi",
        "/sys/firmware",
    ];
    const READ_ONLY: [&str; 5] = [
        "/proc/sys",
        "/proc/sysrq-trigger",
        "/proc/irq",
        "/proc/bus",
        "/proc/fs",
    ];
    for path in MASKED.iter().map(Path::new) {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => do_mount(
                Some("tmpfs"),
                path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("size=0,mode=000"),
            )?,
            Ok(_) => do_mount(Some("/dev/null"), path, None, MsFlags::MS_BIND, None)?,
            Err(_) => {}
        }
    }
    for path in READ_ONLY.iter().map(Path::new) {
        if fs::symlink_metadata(path).is_err() {
            continue;
        }
        do_mount(
            Some(&path.display().to_string()),
            path,
            None,
            MsFlags::MS_BIND,
            None,
        )?;
        do_mount(
            None,
            path,
            None,
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            None,
        )?;
    }
    Ok(())
}

/// A minimal /dev: a tmpfs with device nodes, a private devpts, and a shm directory. The nodes
/// are made with mknod, or (rootless) are the host's, bind-mounted from `host_nodes`.
fn setup_dev(dev: &Path, host_nodes: Option<&[(&'static str, OwnedFd)]>) -> Step<()> {
    mount_point(&dev.display().to_string())?;
    do_mount(
        Some("tmpfs"),
        dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    if let Some(nodes) = host_nodes {
        for (node, tree) in nodes {
            let target = dev.join(node);
            fs::write(&target, b"")
                .map_err(|e| format!("cannot create `{}`: {e}", target.display()))?;
            attach(tree, &target)?;
        }
    }
    // Device nodes made with mknod (we are root in the initial user namespace): one cheap
    // syscall each where a bind mount of the host's node would cost a mount.
    for (node, major, minor) in DEVICES.into_iter().filter(|_| host_nodes.is_none()) {
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

/// The mount point of a volume, inside the container (after the pivot): a directory for a
/// directory, an empty file for a file, created in the container's writable layer when
/// missing.
fn make_volume_target(target: &Path, is_dir: bool, rootless: bool) -> Step<()> {
    if target.exists() {
        return Ok(());
    }
    let made = if is_dir {
        fs::create_dir_all(target)
    } else {
        target
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|_| fs::write(target, b""))
    };
    made.map_err(|e| {
        let hint = if rootless && matches!(e.raw_os_error(), Some(libc::EROFS | libc::EACCES)) {
            " (hint: rootless, a container on the host's files cannot change directories of other users, not even in its throw-away layer: the target must exist on the host, or directly under /; or run the cell on a rootfs or an image)"
        } else {
            ""
        };
        format!(
            "cannot create volume target `{}`: {e}{hint}",
            target.display()
        )
    })
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
    fn host_mode_overlays_every_visible_mount_but_the_replaced_ones() {
        let mountinfo = "\
22 1 254:0 / / rw - ext4 /dev/vda rw
23 22 0:5 / /proc rw - proc proc rw
24 23 0:6 / /proc/sys/fs/binfmt_misc rw - binfmt_misc x rw
25 22 0:7 / /sys rw - sysfs sysfs rw
26 22 0:8 / /dev rw - devtmpfs udev rw
27 22 0:9 / /run rw - tmpfs tmpfs rw
28 22 254:1 / /home rw - ext4 /dev/vdb rw
29 28 0:10 / /home/a\\040b rw - tmpfs tmpfs rw
30 22 0:11 / /tmp rw - tmpfs tmpfs rw
31 22 0:12 / /var/lib/benchbox/scratch/x rw - tmpfs tmpfs rw
32 22 0:13 / /mnt/data rw - ext4 /dev/vdc rw
33 22 0:14 / /mnt rw - tmpfs tmpfs rw
34 22 0:15 / /srv/new-root rw - overlay overlay rw
";
        let points = host_mount_points(
            mountinfo,
            Path::new("/var/lib/benchbox/scratch"),
            &[Path::new("/srv/new-root")],
        );
        // /mnt/data is hidden by the later mount on /mnt; parents come before children.
        assert_eq!(
            points,
            ["/", "/home", "/mnt", "/home/a b"]
                .map(PathBuf::from)
                .to_vec()
        );
    }

    #[test]
    fn every_mount_point_is_listed_for_the_rootless_rebuild() {
        let mountinfo = "22 1 254:0 / / rw - ext4 /dev/vda rw\n23 22 0:5 / /proc rw - proc proc rw\n29 28 0:10 / /home/a\\040b rw - tmpfs tmpfs rw\n";
        assert_eq!(
            all_mount_points(mountinfo),
            ["/", "/proc", "/home/a b"].map(PathBuf::from).to_vec()
        );
    }

    #[test]
    fn overlay_paths_are_escaped() {
        assert_eq!(escape_overlay_path(Path::new("/a:b,c")), "/a\\:b\\,c");
    }
}
