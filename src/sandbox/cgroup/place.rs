//! Where benchbox makes its groups on a cgroup v2 host, and whether it may.
//!
//! The parent of the per-invocation groups is, in order:
//! 1. the one asked for (`run --cgroup-parent PATH` or `BENCHBOX_CGROUP_PARENT`): a cgroup
//!    path as `/proc/self/cgroup` writes them (`/benchbox.slice/bench`), or the same under the
//!    cgroup mount (`/sys/fs/cgroup/benchbox.slice/bench`);
//! 2. benchbox's own group, when it is delegated to benchbox's user: the directory and its
//!    `cgroup.procs`, `cgroup.subtree_control` and `cgroup.threads` are owned by the effective
//!    uid (what `systemd-run --user --scope -p Delegate=yes` and Slurm hand out), or, for root
//!    (which owns every group), the directory carries systemd's delegation mark, the
//!    `trusted.delegate` extended attribute;
//! 3. for root, `<mount>/benchbox`.
//!
//! A user other than root gets no parent outside a delegated subtree:
//! [`CgroupError::NotDelegated`].
//!
//! cgroup v2 lets a group (other than the root) hold processes or child groups with
//! controllers enabled, not both ("no internal processes"). When benchbox's own group is on the
//! way down to the parent (the parent itself, in a delegated scope), its processes first move
//! into a leaf of it, [`LEAF`], which a later benchbox started from there recognises as its
//! own. This module only decides (reading the tree under a root parameter, so a temp dir of
//! fake files stands in for the kernel); [`super::v2`] makes the moves and writes.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use super::{CgroupError, Result, Version};

/// The leaf of its own group that benchbox moves into before it enables controllers there.
pub const LEAF: &str = "benchbox-leaf";

/// The environment variable that names the parent (as `run --cgroup-parent` does).
pub const PARENT_ENV: &str = "BENCHBOX_CGROUP_PARENT";

/// Facts about this process that decide where its groups go: read from the host by
/// [`super::detect_host`], written by hand in tests.
#[derive(Debug, Clone, Copy)]
pub struct Placement<'a> {
    /// The text of `/proc/self/cgroup`.
    pub proc_self_cgroup: &'a str,
    /// The effective uid.
    pub euid: u32,
    /// The parent asked for (`--cgroup-parent`, `BENCHBOX_CGROUP_PARENT`), if any.
    pub parent: Option<&'a Path>,
}

/// Where a v2 hierarchy makes its groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The parent of the invocation groups.
    pub parent: PathBuf,
    /// The groups whose `cgroup.subtree_control` benchbox may need to write, from the
    /// highest down to `parent`: from the mount's root for root outside a delegated subtree,
    /// else from the delegated group (above it is not benchbox's to change).
    pub levels: Vec<PathBuf>,
    /// benchbox's own group, when it is one of `levels` other than the root: its processes
    /// move into its [`LEAF`] before controllers are enabled in it.
    pub evacuate: Option<PathBuf>,
}

/// The group this process runs in, from the `0::` line of `/proc/self/cgroup`, relative to
/// the mount ("" for the root); a [`LEAF`] counts as the group it is a leaf of.
pub fn own_group(proc_self_cgroup: &str) -> PathBuf {
    let path = proc_self_cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .unwrap_or("/")
        .trim();
    let own = Path::new(path.trim_start_matches('/'));
    match own.file_name() {
        Some(name) if name == LEAF => own.parent().unwrap_or(Path::new("")).to_path_buf(),
        _ => own.to_path_buf(),
    }
}

/// `asked` (a cgroup path, or a path under `root`) as a directory under `root`. Only plain
/// names: no `..`, no `.`.
pub fn resolve_parent(root: &Path, asked: &Path) -> Result<PathBuf> {
    let relative = asked
        .strip_prefix(root)
        .unwrap_or(asked)
        .components()
        .filter(|c| *c != Component::RootDir)
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(CgroupError::BadParent {
                path: asked.to_path_buf(),
                reason: "it may only name groups: no `.` or `..`".into(),
            }),
        })
        .collect::<Result<PathBuf>>()?;
    Ok(root.join(relative))
}

/// Whether the group `dir` is delegated to `euid` (see the module docs); `Err` says why not.
pub fn delegation(dir: &Path, euid: u32) -> std::result::Result<(), String> {
    if euid == 0 {
        return match xattr::get(dir, "trusted.delegate") {
            Ok(Some(value)) if value == b"1" => Ok(()),
            Ok(Some(value)) => Err(format!(
                "`{}` has trusted.delegate = {:?}, not \"1\"",
                dir.display(),
                String::from_utf8_lossy(&value)
            )),
            _ => Err(format!(
                "`{}` has no trusted.delegate mark (systemd's Delegate=yes)",
                dir.display()
            )),
        };
    }
    let owned = |path: &Path| match std::fs::metadata(path) {
        Ok(meta) if meta.uid() == euid => Ok(()),
        Ok(meta) => Err(format!(
            "`{}` is owned by uid {}, not {euid}",
            path.display(),
            meta.uid()
        )),
        Err(e) => Err(format!("cannot read `{}`: {e}", path.display())),
    };
    owned(dir)?;
    for file in ["cgroup.procs", "cgroup.subtree_control", "cgroup.threads"] {
        owned(&dir.join(file))?;
    }
    Ok(())
}

/// Where benchbox's groups go on the cgroup v2 tree mounted at `root` (see the module docs).
pub fn v2(root: &Path, placement: &Placement) -> Result<Place> {
    let own = own_group(placement.proc_self_cgroup);
    let own_dir = root.join(&own);
    let not_delegated = |reason: String| CgroupError::NotDelegated {
        version: Version::V2,
        reason,
    };
    let (parent, top) = match placement.parent {
        Some(asked) => {
            let parent = resolve_parent(root, asked)?;
            let top = if placement.euid == 0 {
                root.to_path_buf()
            } else {
                // The nearest group that exists on the way up must be the user's.
                let existing = parent
                    .ancestors()
                    .find(|dir| dir.is_dir())
                    .unwrap_or(root)
                    .to_path_buf();
                delegation(&existing, placement.euid).map_err(|why| {
                    not_delegated(format!(
                        "the cgroup parent `{}` is not in a subtree delegated to uid {}: {why}",
                        parent.display(),
                        placement.euid
                    ))
                })?;
                existing
            };
            (parent, top)
        }
        None => match delegation(&own_dir, placement.euid) {
            Ok(()) if !own.as_os_str().is_empty() => (own_dir.clone(), own_dir.clone()),
            _ if placement.euid == 0 => (root.join("benchbox"), root.to_path_buf()),
            Ok(()) => {
                return Err(not_delegated(format!(
                    "benchbox runs in the root cgroup, which is not delegated to uid {}",
                    placement.euid
                )));
            }
            Err(why) => {
                return Err(not_delegated(format!(
                    "benchbox's own cgroup `/{}` is not delegated to uid {}: {why}",
                    own.display(),
                    placement.euid
                )));
            }
        },
    };
    if !parent.starts_with(&top) {
        return Err(CgroupError::BadParent {
            path: parent,
            reason: format!("it is not under `{}`", top.display()),
        });
    }
    // `top`, then each group below it down to `parent`.
    let mut levels: Vec<PathBuf> = parent
        .ancestors()
        .take_while(|dir| dir.starts_with(&top))
        .map(Path::to_path_buf)
        .collect();
    levels.reverse();
    let evacuate = (!own.as_os_str().is_empty() && levels.contains(&own_dir)).then_some(own_dir);
    Ok(Place {
        parent,
        levels,
        evacuate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A fake group at `root/rel` with its interface files.
    fn group(root: &Path, rel: &str) -> PathBuf {
        let dir = root.join(rel);
        fs::create_dir_all(&dir).unwrap();
        for file in ["cgroup.procs", "cgroup.subtree_control", "cgroup.threads"] {
            fs::write(dir.join(file), "").unwrap();
        }
        dir
    }

    fn chown(path: &Path, uid: u32) {
        std::os::unix::fs::chown(path, Some(uid), None).unwrap();
    }

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// Where root's groups go from its own group `proc_self_cgroup`, no parent asked for.
    fn place_of_root(root: &Path, proc_self_cgroup: &str) -> Place {
        let placement = Placement {
            proc_self_cgroup,
            euid: 0,
            parent: None,
        };
        v2(root, &placement).unwrap()
    }

    /// The reason of the `NotDelegated` error `placement` must give (on v2).
    fn not_delegated(root: &Path, placement: &Placement) -> String {
        match v2(root, placement).unwrap_err() {
            CgroupError::NotDelegated { version, reason } => {
                assert_eq!(version, Version::V2);
                reason
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn own_group_is_the_unified_line_and_a_leaf_counts_as_its_group() {
        let text = "12:pids:/user.slice\n0::/user.slice/user-1000.slice/session-3.scope\n";
        assert_eq!(
            own_group(text),
            Path::new("user.slice/user-1000.slice/session-3.scope")
        );
        assert_eq!(own_group("0::/\n"), Path::new(""));
        assert_eq!(own_group(""), Path::new(""));
        assert_eq!(
            own_group("0::/app.slice/run-r1.scope/benchbox-leaf\n"),
            Path::new("app.slice/run-r1.scope")
        );
    }

    #[test]
    fn a_parent_is_a_cgroup_path_or_a_path_under_the_mount() {
        let root = Path::new("/sys/fs/cgroup");
        let want = Path::new("/sys/fs/cgroup/bench.slice/x");
        assert_eq!(
            resolve_parent(root, Path::new("/bench.slice/x")).unwrap(),
            want
        );
        assert_eq!(
            resolve_parent(root, Path::new("bench.slice/x")).unwrap(),
            want
        );
        assert_eq!(
            resolve_parent(root, Path::new("/sys/fs/cgroup/bench.slice/x/")).unwrap(),
            want
        );
        let e = resolve_parent(root, Path::new("/a/../../etc")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot use `/a/../../etc` as the cgroup parent: it may only name groups: no `.` or `..`\n  hint: give a cgroup path such as /benchbox.slice/bench (with --cgroup-parent or BENCHBOX_CGROUP_PARENT), or neither for the default"
        );
    }

    /// What `systemd-run --user --scope -p Delegate=yes` hands out: the scope and its three
    /// files owned by the user. A file left to root breaks the delegation.
    #[test]
    fn delegation_to_a_user_is_ownership_of_the_group_and_its_three_files() {
        let tmp = tempfile::tempdir().unwrap();
        let me = nix::unistd::geteuid().as_raw();
        let scope = group(tmp.path(), "user.slice/run-r1.scope");
        if me == 0 {
            // As root the test plays a user, uid 1000.
            for path in [
                scope.clone(),
                scope.join("cgroup.procs"),
                scope.join("cgroup.subtree_control"),
                scope.join("cgroup.threads"),
            ] {
                chown(&path, 1000);
            }
        }
        let user = if me == 0 { 1000 } else { me };
        assert_eq!(delegation(&scope, user), Ok(()));
        if me == 0 {
            chown(&scope.join("cgroup.threads"), 0);
            assert_eq!(
                delegation(&scope, user).unwrap_err(),
                format!(
                    "`{}` is owned by uid 0, not 1000",
                    scope.join("cgroup.threads").display()
                )
            );
        }
        fs::remove_file(scope.join("cgroup.threads")).unwrap();
        assert!(
            delegation(&scope, user)
                .unwrap_err()
                .starts_with("cannot read")
        );
    }

    /// Root owns every group: only systemd's mark counts.
    #[test]
    fn delegation_to_root_is_the_trusted_delegate_mark() {
        if !is_root() {
            eprintln!("skipping: setting a trusted.* xattr needs root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let scope = group(tmp.path(), "system.slice/x.scope");
        assert!(
            delegation(&scope, 0)
                .unwrap_err()
                .contains("has no trusted.delegate mark")
        );
        if xattr::set(&scope, "trusted.delegate", b"1").is_err() {
            eprintln!("skipping: this file system takes no trusted.* xattrs");
            return;
        }
        assert_eq!(delegation(&scope, 0), Ok(()));
        xattr::set(&scope, "trusted.delegate", b"0").unwrap();
        assert!(delegation(&scope, 0).unwrap_err().contains("not \"1\""));
    }

    #[test]
    fn root_outside_a_delegated_group_uses_the_benchbox_group_under_the_mount() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        group(root, "system.slice/lane.service");
        let place = place_of_root(root, "0::/system.slice/lane.service\n");
        assert_eq!(
            place,
            Place {
                parent: root.join("benchbox"),
                levels: vec![root.to_path_buf(), root.join("benchbox")],
                // lane.service is not on the way down: it keeps its processes.
                evacuate: None,
            }
        );
        // In the root cgroup (exempt from the rule) too.
        let place = place_of_root(root, "0::/\n");
        assert_eq!(place.evacuate, None);
        assert_eq!(place.parent, root.join("benchbox"));
    }

    #[test]
    fn a_delegated_group_is_the_parent_and_is_evacuated_into_its_leaf() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let me = nix::unistd::geteuid().as_raw();
        let scope = group(root, "user.slice/user@1000.service/app.slice/run-r1.scope");
        let user = if me == 0 {
            for path in [
                scope.clone(),
                scope.join("cgroup.procs"),
                scope.join("cgroup.subtree_control"),
                scope.join("cgroup.threads"),
            ] {
                chown(&path, 1000);
            }
            1000
        } else {
            me
        };
        let want = Place {
            parent: scope.clone(),
            levels: vec![scope.clone()],
            evacuate: Some(scope.clone()),
        };
        for own in [
            "0::/user.slice/user@1000.service/app.slice/run-r1.scope\n",
            // Started from the leaf an earlier benchbox moved its shell into.
            "0::/user.slice/user@1000.service/app.slice/run-r1.scope/benchbox-leaf\n",
        ] {
            let placement = Placement {
                proc_self_cgroup: own,
                euid: user,
                parent: None,
            };
            assert_eq!(v2(root, &placement).unwrap(), want, "{own}");
        }
        if me == 0 {
            // Root in a group systemd delegated (Delegate=yes on a system unit).
            let unit = group(root, "system.slice/bench.service");
            xattr::set(&unit, "trusted.delegate", b"1").unwrap();
            let place = place_of_root(root, "0::/system.slice/bench.service\n");
            assert_eq!(
                place,
                Place {
                    parent: unit.clone(),
                    levels: vec![unit.clone()],
                    evacuate: Some(unit),
                }
            );
        }
    }

    #[test]
    fn a_user_without_a_delegated_group_is_refused_on_v2() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let session = group(root, "user.slice/user-1000.slice/session-3.scope");
        if nix::unistd::geteuid().is_root() {
            chown(&session, 0);
        }
        // As root, the test plays uid 1000 in a session scope owned by root; as a user, a
        // uid that owns nothing here.
        let user = if is_root() { 1000 } else { 4_000_000 };
        let placement = Placement {
            proc_self_cgroup: "0::/user.slice/user-1000.slice/session-3.scope\n",
            euid: user,
            parent: None,
        };
        let reason = not_delegated(root, &placement);
        assert!(
            reason.starts_with(&format!(
                "benchbox's own cgroup `/user.slice/user-1000.slice/session-3.scope` is not delegated to uid {user}: `{}` is owned by uid",
                session.display()
            )),
            "{reason}"
        );
        // An explicit parent must be in a delegated subtree too.
        let asked = Path::new("/user.slice/elsewhere");
        let placement = Placement {
            parent: Some(asked),
            ..placement
        };
        let reason = not_delegated(root, &placement);
        assert!(
            reason.starts_with(&format!(
                "the cgroup parent `{}` is not in a subtree delegated to uid {user}",
                root.join("user.slice/elsewhere").display()
            )),
            "{reason}"
        );
    }

    #[test]
    fn an_asked_parent_is_used_and_benchbox_leaves_it_only_when_on_the_way() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        group(root, "system.slice/lane.service");
        let run_in = |own: &str, parent: &str| {
            v2(
                root,
                &Placement {
                    proc_self_cgroup: own,
                    euid: 0,
                    parent: Some(Path::new(parent)),
                },
            )
            .unwrap()
        };
        // A sibling of benchbox's own group: nothing to move.
        let place = run_in("0::/system.slice/lane.service\n", "/system.slice/bench");
        assert_eq!(place.parent, root.join("system.slice/bench"));
        assert_eq!(
            place.levels,
            [
                root.to_path_buf(),
                root.join("system.slice"),
                root.join("system.slice/bench")
            ]
        );
        assert_eq!(place.evacuate, None);
        // Below benchbox's own group: it must leave it first.
        let place = run_in(
            "0::/system.slice/lane.service\n",
            "/system.slice/lane.service/bench",
        );
        assert_eq!(place.evacuate, Some(root.join("system.slice/lane.service")));
        // The group itself, written as a path under the mount.
        let asked = root.join("system.slice/lane.service");
        let place = run_in("0::/system.slice/lane.service\n", asked.to_str().unwrap());
        assert_eq!(place.parent, asked);
        assert_eq!(place.evacuate, Some(asked));
    }
}
