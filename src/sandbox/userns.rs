//! Rootless containers: the user namespace in which the invoking user is root.
//!
//! An ordinary user may create a user namespace and, owning it, the mount, pid, network, ipc,
//! uts and cgroup namespaces of a container: inside, its processes hold capabilities over what
//! those namespaces contain, and none over the host. Which ids exist inside is the namespace's
//! id map, written once, from outside, by benchbox (the parent):
//!
//! - with subordinate ids (ranges for the user in `/etc/subuid` and `/etc/subgid`, and the
//!   set-uid helpers `newuidmap` and `newgidmap` of the `uidmap` package, as rootless Podman
//!   uses them), the user's own id is root inside and the ranges are ids 1, 2, ...: a cell may
//!   switch to another user (`user = "bench"`), and files it creates keep their owners;
//! - without them, only the user's own id is mapped, to root ("squashed"): files of any other
//!   owner show as `nobody` inside, and a cell cannot switch to another user. benchbox warns.
//!
//! Parsing and the map are pure ([`subordinate_ranges`], [`IdMap::compute`]); [`apply`] writes a
//! map for a process that has just unshared its user namespace, and [`probe`] checks once per
//! run that this works on this host.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One line of an id map: ids `inside..inside+count` in the namespace are
/// `outside..outside+count` outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// The kernel takes at most 340 lines per map (Linux 4.15+).
const MAX_LINES: usize = 340;

/// The uid and gid maps of every container of a rootless run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMap {
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
    /// `newuidmap` and `newgidmap`, when the maps have subordinate ranges (they write those);
    /// `None`: only the user's own ids, which benchbox writes itself.
    pub helpers: Option<(PathBuf, PathBuf)>,
}

/// Subordinate ranges (start, count) of the user `name` (or numeric `id`) in the text of
/// `/etc/subuid` or `/etc/subgid` (lines `name:start:count` or `uid:start:count`). Malformed
/// lines, empty ranges and ranges past 2^32 are skipped, as `newuidmap` skips them.
pub fn subordinate_ranges(text: &str, name: Option<&str>, id: u32) -> Vec<(u32, u32)> {
    let id_text = id.to_string();
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let mut fields = line.split(':');
            let owner = fields.next()?;
            let start: u32 = fields.next()?.trim().parse().ok()?;
            let count: u32 = fields.next()?.trim().parse().ok()?;
            if fields.next().is_some() || count == 0 {
                return None;
            }
            start.checked_add(count - 1)?;
            (Some(owner) == name || owner == id_text).then_some((start, count))
        })
        .collect()
}

/// One map: `own` is root (0) inside; the subordinate ranges follow as 1, 2, ... A range that
/// holds `own` is left out (the kernel refuses overlapping lines), and so are ranges past the
/// kernel's line limit or that would push inside ids past 2^32.
fn one_map(own: u32, subordinate: &[(u32, u32)]) -> Vec<IdRange> {
    let mut map = vec![IdRange {
        inside: 0,
        outside: own,
        count: 1,
    }];
    let mut next: u32 = 1;
    for &(start, count) in subordinate {
        if map.len() == MAX_LINES {
            break;
        }
        let holds_own = own >= start && own - start < count;
        let end = start as u64 + count as u64;
        let overlaps = map[1..].iter().any(|r| {
            (start as u64) < r.outside as u64 + r.count as u64 && (r.outside as u64) < end
        });
        if holds_own || overlaps {
            continue;
        }
        let Some(after) = next.checked_add(count) else {
            break;
        };
        map.push(IdRange {
            inside: next,
            outside: start,
            count,
        });
        next = after;
    }
    map
}

impl IdMap {
    /// The maps for user `uid` (group `gid`): with subordinate ranges of both kinds and both
    /// helpers, the full maps; else only the user's own ids (squashed).
    pub fn compute(
        uid: u32,
        gid: u32,
        sub_uids: &[(u32, u32)],
        sub_gids: &[(u32, u32)],
        helpers: Option<(PathBuf, PathBuf)>,
    ) -> IdMap {
        let uids = one_map(uid, sub_uids);
        let gids = one_map(gid, sub_gids);
        match helpers {
            Some(h) if uids.len() > 1 && gids.len() > 1 => IdMap {
                uids,
                gids,
                helpers: Some(h),
            },
            _ => IdMap {
                uids: vec![uids[0]],
                gids: vec![gids[0]],
                helpers: None,
            },
        }
    }

    /// Only the user's own ids are mapped (to root).
    pub fn squashed(&self) -> bool {
        self.helpers.is_none()
    }

    /// How many ids exist inside (1 when squashed).
    pub fn inside_uids(&self) -> u64 {
        self.uids.iter().map(|r| r.count as u64).sum()
    }

    /// "0 1000 1, 1 100000 65536": the map as `/proc/PID/uid_map` shows it, one line per
    /// comma.
    pub fn text(ranges: &[IdRange]) -> String {
        ranges
            .iter()
            .map(|r| format!("{} {} {}", r.inside, r.outside, r.count))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Why the map is squashed, for the warning at the start of a rootless run (`None`: it is not).
/// `user` is the user's name (or uid).
pub fn squashed_warning(
    map: &IdMap,
    user: &str,
    has_ranges: bool,
    helpers: bool,
) -> Option<String> {
    if !map.squashed() {
        return None;
    }
    let why = match (has_ranges, helpers) {
        (false, _) => format!("`{user}` has no subordinate ids in /etc/subuid and /etc/subgid"),
        (true, false) => "newuidmap and newgidmap are not installed".to_string(),
        (true, true) => "its subordinate ids could not be used".to_string(),
    };
    Some(format!(
        "rootless: only your own user is mapped in the containers (it is root there), because {why}: files of other owners show as `nobody`, and a cell cannot switch to another user\n  hint: give the user subordinate ids (`sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}`) and install newuidmap/newgidmap (Debian: `apt-get install uidmap`)"
    ))
}

/// `name` found in `PATH` or the usual system directories (the helpers are set-uid programs in
/// /usr/bin).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/bin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The maps for the user running benchbox, from `/etc/subuid`, `/etc/subgid` and the installed
/// helpers; with the warning to show when they are squashed.
pub fn for_current_user() -> (IdMap, Option<String>) {
    let uid = nix::unistd::getuid();
    let gid = nix::unistd::getgid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name);
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let sub_uids = subordinate_ranges(&read("/etc/subuid"), name.as_deref(), uid.as_raw());
    let sub_gids = subordinate_ranges(&read("/etc/subgid"), name.as_deref(), uid.as_raw());
    let helpers = find_program("newuidmap").zip(find_program("newgidmap"));
    let has_helpers = helpers.is_some();
    let map = IdMap::compute(uid.as_raw(), gid.as_raw(), &sub_uids, &sub_gids, helpers);
    let user = name.unwrap_or_else(|| uid.to_string());
    let has_ranges = !sub_uids.is_empty() && !sub_gids.is_empty();
    let warning = squashed_warning(&map, &user, has_ranges, has_helpers);
    (map, warning)
}

/// Write `map` for process `pid`, which has just unshared its user namespace and waits. From
/// benchbox itself (the namespace's owner, in the parent namespace): the kernel lets it map
/// its own ids, once `setgroups` is denied; subordinate ranges need the set-uid helpers.
pub fn apply(pid: i32, map: &IdMap) -> Result<(), String> {
    match &map.helpers {
        Some((newuidmap, newgidmap)) => {
            run_helper(newuidmap, pid, &map.uids)?;
            run_helper(newgidmap, pid, &map.gids)
        }
        None => {
            let write = |file: &str, text: String| {
                let path = format!("/proc/{pid}/{file}");
                std::fs::write(&path, text).map_err(|e| format!("cannot write `{path}`: {e}"))
            };
            // Without CAP_SETGID outside, a gid map needs setgroups denied first (else the
            // container could drop a group that denies it access to a file).
            write("setgroups", "deny".into())?;
            write("uid_map", format!("0 {} 1\n", map.uids[0].outside))?;
            write("gid_map", format!("0 {} 1\n", map.gids[0].outside))
        }
    }
}

fn run_helper(program: &Path, pid: i32, ranges: &[IdRange]) -> Result<(), String> {
    let mut cmd = std::process::Command::new(program);
    cmd.arg(pid.to_string());
    for r in ranges {
        cmd.args([r.inside, r.outside, r.count].map(|n| n.to_string()));
    }
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", program.display()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "`{}` failed ({}): {}",
        program.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

/// Check once that this host lets this user create a user namespace and map it with `map`:
/// a child unshares one and waits, benchbox writes the map, the child checks it is root inside.
pub fn probe(map: &IdMap) -> Result<(), String> {
    use nix::sched::{CloneFlags, unshare};
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork, pipe2, read, write};
    use std::os::fd::AsRawFd;
    let (unshared_r, unshared_w) =
        pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
    let (mapped_r, mapped_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
    // SAFETY: the child makes only async-signal-safe system calls and ends in `_exit`.
    let child = match unsafe { fork() }.map_err(|e| format!("cannot fork: {e}"))? {
        ForkResult::Child => {
            let code = match unshare(CloneFlags::CLONE_NEWUSER) {
                Err(e) => e as i32,
                Ok(()) => {
                    let _ = write(&unshared_w, b"u");
                    let mut byte = [0u8; 1];
                    let mapped = matches!(read(mapped_r.as_raw_fd(), &mut byte), Ok(1));
                    // SAFETY: getuid/getgid cannot fail.
                    let root = unsafe { libc::getuid() == 0 && libc::getgid() == 0 };
                    if mapped && root { 0 } else { 255 }
                }
            };
            // SAFETY: _exit skips the parent's destructors and atexit handlers on purpose.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    };
    drop(unshared_w);
    drop(mapped_r);
    let mut byte = [0u8; 1];
    let applied = match read(unshared_r.as_raw_fd(), &mut byte) {
        Ok(1) => apply(child.as_raw(), map).map(|()| {
            let _ = write(&mapped_w, b"m");
        }),
        _ => Ok(()),
    };
    drop(mapped_w);
    let status = loop {
        match waitpid(child, None) {
            Err(nix::Error::EINTR) => continue,
            other => break other,
        }
    };
    applied?;
    match status {
        Ok(WaitStatus::Exited(_, 0)) => Ok(()),
        Ok(WaitStatus::Exited(_, 255)) => {
            Err("the user namespace's id map did not take effect".into())
        }
        Ok(WaitStatus::Exited(_, errno)) => Err(format!(
            "cannot create a user namespace: {}",
            nix::Error::from_raw(errno)
        )),
        other => Err(format!(
            "the user namespace probe ended unexpectedly: {other:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBUID: &str = "\
# a comment
alice:100000:65536
bob:165536:65536
1000:231072:1000
alice:300000:0
carol:x:5
alice:4294967295:2
";

    #[test]
    fn subordinate_ranges_by_name_or_uid() {
        assert_eq!(
            subordinate_ranges(SUBUID, Some("alice"), 1000),
            [(100000, 65536), (231072, 1000)]
        );
        assert_eq!(
            subordinate_ranges(SUBUID, Some("bob"), 1001),
            [(165536, 65536)]
        );
        assert_eq!(subordinate_ranges(SUBUID, None, 1000), [(231072, 1000)]);
        assert!(subordinate_ranges(SUBUID, Some("carol"), 1002).is_empty());
        assert!(subordinate_ranges("", Some("alice"), 1000).is_empty());
    }

    fn helpers() -> Option<(PathBuf, PathBuf)> {
        Some(("/usr/bin/newuidmap".into(), "/usr/bin/newgidmap".into()))
    }

    #[test]
    fn own_id_is_root_and_ranges_follow() {
        let ranges = subordinate_ranges(SUBUID, Some("alice"), 1000);
        let map = IdMap::compute(1000, 1000, &ranges, &[(100000, 65536)], helpers());
        assert!(!map.squashed());
        assert_eq!(
            IdMap::text(&map.uids),
            "0 1000 1, 1 100000 65536, 65537 231072 1000"
        );
        assert_eq!(IdMap::text(&map.gids), "0 1000 1, 1 100000 65536");
        assert_eq!(map.inside_uids(), 1 + 65536 + 1000);
    }

    #[test]
    fn without_ranges_or_helpers_only_the_user_is_mapped() {
        let squashed = |sub_uids: &[(u32, u32)], sub_gids: &[(u32, u32)], h| {
            let map = IdMap::compute(1000, 100, sub_uids, sub_gids, h);
            assert!(map.squashed());
            assert_eq!(IdMap::text(&map.uids), "0 1000 1");
            assert_eq!(IdMap::text(&map.gids), "0 100 1");
        };
        squashed(&[], &[], helpers());
        squashed(&[(100000, 65536)], &[], helpers());
        squashed(&[(100000, 65536)], &[(100000, 65536)], None);
    }

    #[test]
    fn a_range_holding_the_users_own_id_or_overlapping_another_is_left_out() {
        let map = IdMap::compute(
            100005,
            7,
            &[(100000, 10), (200000, 10), (200005, 10)],
            &[(1, 5)],
            helpers(),
        );
        assert_eq!(IdMap::text(&map.uids), "0 100005 1, 1 200000 10");
    }

    #[test]
    fn the_kernels_line_limit_is_kept() {
        let many: Vec<(u32, u32)> = (0..1000).map(|i| (100000 + 10 * i, 10)).collect();
        let map = IdMap::compute(1000, 1000, &many, &many, helpers());
        assert_eq!(map.uids.len(), MAX_LINES);
        assert_eq!(
            map.uids.last().unwrap().inside,
            1 + 10 * (MAX_LINES as u32 - 2)
        );
    }

    #[test]
    fn the_squashed_warning_says_why_and_how_to_fix_it() {
        let map = IdMap::compute(1000, 1000, &[], &[], None);
        let w = squashed_warning(&map, "alice", false, false).unwrap();
        assert!(
            w.contains("`alice` has no subordinate ids in /etc/subuid and /etc/subgid"),
            "{w}"
        );
        assert!(
            w.contains("usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice"),
            "{w}"
        );
        assert!(w.contains("apt-get install uidmap"), "{w}");
        let w = squashed_warning(&map, "alice", true, false).unwrap();
        assert!(
            w.contains("newuidmap and newgidmap are not installed"),
            "{w}"
        );
        let full = IdMap::compute(1000, 1000, &[(1, 2)], &[(1, 2)], helpers());
        assert_eq!(squashed_warning(&full, "alice", true, true), None);
    }
}
