//! How benchbox isolates and measures on this host: the mode a run takes, the refusal of cells
//! it cannot honour, and what results.json and the reports record of it. Pure: facts in,
//! decisions and words out (the facts come from `runner::preflight` and `benchbox doctor`).
//!
//! - **root**: namespaces, overlays and a fresh cgroup per invocation with every limit, as
//!   benchbox always did.
//! - **rootless, delegated**: an ordinary user, in a user namespace where it is root (see
//!   [`crate::sandbox::userns`]), in a cgroup v2 subtree it owns (`systemd-run --user --scope -p
//!   Delegate=yes`, a Slurm job with cgroup delegation): every limit and counter as under root.
//! - **rootless, without limits**: an ordinary user without such a subtree (or on cgroup v1,
//!   which has no safe delegation): the same isolation, no cgroup at all. CPU time and peak
//!   memory come from the `wait` rusage of the workload's tree; a cell that sets limits is
//!   refused before anything runs (exit 3), with the fix for this host.

use serde::{Deserialize, Serialize};

use crate::sandbox::cgroup::Version;
use crate::sandbox::userns::{IdMap, IdRange};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Root,
    RootlessDelegated,
    RootlessNoLimits,
}

impl Mode {
    pub fn rootless(self) -> bool {
        self != Mode::Root
    }

    /// Whether invocations get a cgroup (limits, cgroup counters).
    pub fn has_cgroup(self) -> bool {
        self != Mode::RootlessNoLimits
    }

    /// "rootless, without limits", for the terminal, the reports and `doctor`.
    pub fn describe(self) -> &'static str {
        match self {
            Mode::Root => "root",
            Mode::RootlessDelegated => "rootless, limits through a delegated cgroup v2 subtree",
            Mode::RootlessNoLimits => "rootless, without limits (no delegated cgroup)",
        }
    }

    /// What invocations in this mode can be limited by and measured with.
    pub fn measures(self) -> &'static str {
        match self {
            Mode::Root | Mode::RootlessDelegated => {
                "every limit (cpus, cpu-quota, memory, pids); CPU time, peak memory, OOM kills, I/O bytes and throttling from the invocation's own cgroup, with the rusage cross-check"
            }
            Mode::RootlessNoLimits => {
                "no limits; wall time, CPU time from the workload tree's rusage, peak memory as the largest process's maximum RSS; no I/O bytes, OOM kills, throttling or memory over time"
            }
        }
    }
}

/// What the cgroup layer said about this host, reduced to what the mode depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cgroups {
    /// benchbox can create groups (as root, or in a delegated v2 subtree).
    Usable(Version),
    /// A non-root user without a delegated v2 subtree (v1: no delegation at all).
    NotDelegated { version: Version, reason: String },
    /// No usable hierarchy (not mounted, a controller missing...).
    Unusable(String),
}

/// The mode of a run: root needs usable cgroups (as before: else exit 3 with the cgroup
/// layer's message); a non-root user runs rootless, with limits when its subtree is usable.
pub fn select(root: bool, cgroups: &Cgroups) -> Result<Mode, String> {
    match (root, cgroups) {
        (true, Cgroups::Usable(_)) => Ok(Mode::Root),
        (true, Cgroups::NotDelegated { reason, .. }) => Err(reason.clone()),
        (true, Cgroups::Unusable(message)) => Err(message.clone()),
        (false, Cgroups::Usable(_)) => Ok(Mode::RootlessDelegated),
        (false, _) => Ok(Mode::RootlessNoLimits),
    }
}

/// A cell's limits by name, as `[limits]` writes them.
pub fn limit_names(limits: &crate::spec::Limits) -> Vec<&'static str> {
    [
        ("cpus", limits.cpus.is_some()),
        ("cpu-quota", limits.cpu_quota.is_some()),
        ("memory", limits.memory.is_some()),
        ("pids", limits.pids.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect()
}

/// The refusal of a rootless run without limits whose cells ask for limits (`limited`: label
/// and limit names of each), with the fix for this host: on cgroup v2 with systemd, the exact
/// command that gives benchbox a delegated subtree (`command_line` is benchbox's own argv);
/// on v1 or without systemd, that limits need root or a delegated v2 subtree.
pub fn refuse_limits(
    limited: &[(String, Vec<&'static str>)],
    cgroups: &Cgroups,
    systemd: bool,
    command_line: &[String],
) -> Option<String> {
    let (first, first_limits) = limited.first()?;
    let mut cells = format!("cell `{first}` sets limits ({})", first_limits.join(", "));
    match limited.len() {
        1 => {}
        2 => cells.push_str(&format!(", and so does `{}`", limited[1].0)),
        n => cells.push_str(&format!(
            ", and so do `{}` and {} more",
            limited[1].0,
            n - 2
        )),
    }
    let (version, why) = match cgroups {
        Cgroups::Usable(v) => (Some(*v), String::new()),
        Cgroups::NotDelegated { version, reason } => (Some(*version), reason.clone()),
        Cgroups::Unusable(message) => (None, message.clone()),
    };
    let situation = match version {
        Some(Version::V1) => {
            "this host runs cgroup v1, which cannot hand a subtree to a user".to_string()
        }
        Some(Version::V2) => {
            format!("benchbox runs without root and has no delegated cgroup v2 subtree ({why})")
        }
        None => format!("benchbox runs without root and has no usable cgroups: {why}"),
    };
    let hint = if version == Some(Version::V2) && systemd {
        format!(
            "give benchbox a delegated cgroup v2 subtree and run it again: {}",
            delegated_command(command_line)
        )
    } else {
        "run benchbox as root (sudo), or on a cgroup v2 host in a subtree delegated to your user; cells without [limits] run rootless here".to_string()
    };
    Some(format!(
        "{cells}, and limits need root or a delegated cgroup v2 subtree: {situation}\n  hint: {hint}"
    ))
}

/// `systemd-run --user --scope -p Delegate=yes <benchbox's own command line>`, each argument
/// quoted for a POSIX shell where it needs it.
pub fn delegated_command(command_line: &[String]) -> String {
    let mut words = vec!["systemd-run", "--user", "--scope", "-p", "Delegate=yes"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    words.extend(command_line.iter().map(|a| shell_quote(a)));
    words.join(" ")
}

/// `arg` as one word of a POSIX shell command.
pub fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// How a run was isolated, as results.json records it (`isolation`). Absent from files written
/// before benchbox recorded it: those runs ran as root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Isolation {
    pub mode: Mode,
    /// Without root, in a user namespace.
    pub rootless: bool,
    /// The containers' uid and gid maps (inside, outside, count), rootless only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uid_map: Vec<IdRange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gid_map: Vec<IdRange>,
    /// Why there is no cgroup (rootless without limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_cgroup_reason: Option<String>,
    /// What this mode limits and measures ([`Mode::measures`]).
    pub measures: String,
}

impl Isolation {
    pub fn new(mode: Mode, map: Option<&IdMap>, no_cgroup_reason: Option<String>) -> Isolation {
        Isolation {
            mode,
            rootless: mode.rootless(),
            uid_map: map.map(|m| m.uids.clone()).unwrap_or_default(),
            gid_map: map.map(|m| m.gids.clone()).unwrap_or_default(),
            no_cgroup_reason,
            measures: mode.measures().to_string(),
        }
    }

    /// One line for the terminal and the reports: "rootless, without limits (no delegated
    /// cgroup); uid 1000 is root in the containers, no other id is mapped".
    pub fn describe(&self) -> String {
        match ids_text(&self.uid_map) {
            Some(ids) => format!("{}; {ids}", self.mode.describe()),
            None => self.mode.describe().to_string(),
        }
    }

    /// The limits of a cell as the report's "limits" column shows them when it has none read
    /// back: none at all without a cgroup.
    pub fn no_limits_text(&self) -> Option<&'static str> {
        (!self.mode.has_cgroup()).then_some("none: rootless, no cgroup")
    }
}

/// "uid 1000 is root in the containers, with 65536 subordinate ids" (`None` for no map).
pub fn ids_text(uid_map: &[IdRange]) -> Option<String> {
    let own = uid_map.first()?;
    let others = uid_map.iter().skip(1).map(|r| r.count as u64).sum::<u64>();
    Some(if others == 0 {
        format!(
            "uid {} is root in the containers, no other id is mapped",
            own.outside
        )
    } else {
        format!(
            "uid {} is root in the containers, with {others} subordinate ids",
            own.outside
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_follows_root_and_the_cgroups() {
        let v2 = Cgroups::Usable(Version::V2);
        let not = Cgroups::NotDelegated {
            version: Version::V1,
            reason: "no subtree".into(),
        };
        let broken = Cgroups::Unusable("no cgroup2 mount".into());
        assert_eq!(select(true, &v2), Ok(Mode::Root));
        assert_eq!(select(true, &broken), Err("no cgroup2 mount".into()));
        assert_eq!(select(false, &v2), Ok(Mode::RootlessDelegated));
        assert_eq!(select(false, &not), Ok(Mode::RootlessNoLimits));
        assert_eq!(select(false, &broken), Ok(Mode::RootlessNoLimits));
        assert!(!Mode::Root.rootless() && Mode::RootlessNoLimits.rootless());
        assert!(Mode::RootlessDelegated.has_cgroup() && !Mode::RootlessNoLimits.has_cgroup());
    }

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn on_v1_limits_are_refused_with_a_plain_statement() {
        let limited = vec![("size=big".to_string(), vec!["memory", "pids"])];
        let v1 = Cgroups::NotDelegated {
            version: Version::V1,
            reason: "x".into(),
        };
        let text = refuse_limits(&limited, &v1, true, &argv(&["benchbox", "run", "m.toml"]));
        assert_eq!(
            text.as_deref(),
            Some(
                "cell `size=big` sets limits (memory, pids), and limits need root or a delegated cgroup v2 subtree: this host runs cgroup v1, which cannot hand a subtree to a user\n  hint: run benchbox as root (sudo), or on a cgroup v2 host in a subtree delegated to your user; cells without [limits] run rootless here"
            )
        );
        assert_eq!(refuse_limits(&[], &v1, true, &[]), None);
    }

    #[test]
    fn on_v2_with_systemd_the_hint_is_the_exact_command() {
        let limited = vec![
            ("a".to_string(), vec!["cpu-quota"]),
            ("b".to_string(), vec!["memory"]),
            ("c".to_string(), vec!["memory"]),
        ];
        let v2 = Cgroups::NotDelegated {
            version: Version::V2,
            reason: "its cgroup `/user.slice/user-1000.slice/session-3.scope` is not its own"
                .into(),
        };
        let cmd = argv(&[
            "./target/release/benchbox",
            "run",
            "my matrix.toml",
            "--only",
            "gc=G1",
            "it's",
        ]);
        let text = refuse_limits(&limited, &v2, true, &cmd).unwrap();
        assert_eq!(
            text,
            "cell `a` sets limits (cpu-quota), and so do `b` and 1 more, and limits need root or a delegated cgroup v2 subtree: benchbox runs without root and has no delegated cgroup v2 subtree (its cgroup `/user.slice/user-1000.slice/session-3.scope` is not its own)\n  hint: give benchbox a delegated cgroup v2 subtree and run it again: systemd-run --user --scope -p Delegate=yes ./target/release/benchbox run 'my matrix.toml' --only gc=G1 'it'\\''s'"
        );
        // Without systemd: no command to offer.
        let text = refuse_limits(&limited[..2], &v2, false, &cmd).unwrap();
        assert!(
            text.starts_with("cell `a` sets limits (cpu-quota), and so does `b`, and"),
            "{text}"
        );
        assert!(text.contains("hint: run benchbox as root (sudo)"), "{text}");
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("envs/a-b_c.toml"), "envs/a-b_c.toml");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("$(x)"), "'$(x)'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn the_record_says_what_was_mapped_and_measured() {
        let map = IdMap::compute(1000, 1000, &[], &[], None);
        let iso = Isolation::new(Mode::RootlessNoLimits, Some(&map), Some("v1".into()));
        assert_eq!(
            iso.describe(),
            "rootless, without limits (no delegated cgroup); uid 1000 is root in the containers, no other id is mapped"
        );
        assert_eq!(iso.no_limits_text(), Some("none: rootless, no cgroup"));
        let json = serde_json::to_value(&iso).unwrap();
        assert_eq!(json["mode"], "rootless-no-limits");
        assert_eq!(json["rootless"], true);
        assert_eq!(json["uid_map"][0]["outside"], 1000);
        let root = Isolation::new(Mode::Root, None, None);
        assert_eq!(root.describe(), "root");
        let json = serde_json::to_value(&root).unwrap();
        assert!(json.get("uid_map").is_none() && json.get("no_cgroup_reason").is_none());
        let back: Isolation = serde_json::from_value(json).unwrap();
        assert_eq!(back, root);
    }
}
