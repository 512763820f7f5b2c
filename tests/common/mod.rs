//! Shared helpers for the integration tests: privilege gating, a busybox root filesystem,
//! the built `benchbox` binary, and a project directory to run it in (`project.rs`).
#![allow(dead_code)]

pub mod project;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

/// True when this test may use real namespaces and cgroups. Skipping is allowed only when not
/// root; with `BENCHBOX_REQUIRE_PRIVILEGED=1` (set by `.ci/run`) a skip is a failure.
pub fn privileged() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        assert!(
            std::env::var_os("BENCHBOX_REQUIRE_PRIVILEGED").is_none(),
            "privileged test cannot run: not root, and BENCHBOX_REQUIRE_PRIVILEGED is set"
        );
        eprintln!("skipping: not root");
    }
    root
}

/// uid and gid 65534 (`nobody`): the ordinary user the rootless tests run benchbox as.
pub const NOBODY: u32 = 65534;

/// `path` and everything under it owned by `nobody`.
pub fn give_to_nobody(path: &Path) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    std::os::unix::fs::lchown(path, Some(NOBODY), Some(NOBODY)).unwrap();
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            give_to_nobody(&entry.unwrap().path());
        }
    }
}

/// Copies an executable with `cp`, in a process of its own. A copy made here would hold a
/// descriptor open for writing, and every child another test thread forks meanwhile inherits it
/// until its exec; an exec of the copy in that window fails with ETXTBSY ("Text file busy").
pub fn copy_executable(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("--")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cp {} {}: {status}",
        from.display(),
        to.display()
    );
}

/// A root filesystem made of Debian's busybox-static: /bin/busybox and one symlink per applet.
pub fn busybox_rootfs(dir: &Path) -> PathBuf {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "busybox-static is not installed (apt-get install busybox-static)"
    );
    for sub in ["bin", "tmp", "proc", "sys", "dev", "etc", "run"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    copy_executable(busybox, &dir.join("bin/busybox"));
    let applets = Command::new(busybox).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&applets.stdout).lines() {
        if applet != "busybox" {
            let _ = symlink("busybox", dir.join("bin").join(applet));
        }
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    dir.to_path_buf()
}

pub fn benchbox() -> Command {
    Command::new(env!("CARGO_BIN_EXE_benchbox"))
}
