//! Before a run: whether this host can isolate its invocations, and how (root, or rootless
//! with or without a delegated cgroup), with what the user must be told first.

use std::path::Path;

use super::RunError;
use crate::host;
use crate::mode::{self, Isolation, Mode};
use crate::sandbox::userns::{self, IdMap};
use crate::sandbox::{self, Hierarchy};
use crate::spec::{Cell, Matrix};

/// How a run isolates its invocations on this host (see [`crate::mode`]).
#[derive(Debug)]
pub struct Sandboxing {
    pub mode: Mode,
    /// Where invocations get their cgroups; `None`: rootless without limits.
    pub cgroups: Option<Hierarchy>,
    /// Rootless: the containers' id map.
    pub userns: Option<IdMap>,
    /// For results.json and the reports.
    pub isolation: Isolation,
    /// The host's cgroup version, whether benchbox uses it or not (for results.json).
    pub cgroup_version: Option<sandbox::cgroup::Version>,
    /// What the run warns about before its first invocation (ids squashed to one, counters
    /// this host cannot count).
    pub warnings: Vec<String>,
    /// What adds noise on the cpus the selected cells run on (for results.json's `host.noise`).
    pub noise: Option<host::noise::Noise>,
    /// The perf_event counters this host can attach to an invocation, by runs.csv column
    /// (empty when no selected cell wants them): runs.csv has these columns and no others.
    pub counters: Vec<&'static str>,
}

/// How long a run samples its cpus' load before its first invocation (`doctor` takes longer).
const NOISE_SAMPLE: std::time::Duration = std::time::Duration::from_millis(500);

/// Check that this host can run isolated invocations of the `selected` cells, and how: as
/// root, or rootless with or without a delegated cgroup. `command_line` is benchbox's own (for
/// the hint that gives it a delegated subtree). A rootless run without a cgroup refuses cells
/// that set limits, before anything runs (exit 3). The groups go under `cgroup_parent` when
/// given (else the default, see `sandbox::cgroup::place`), the way to them made (benchbox may
/// move into a leaf of its own group for it, see `Hierarchy::prepare`).
pub fn preflight(
    matrix: &Matrix,
    selected: &[usize],
    command_line: &[String],
    cgroup_parent: Option<&Path>,
) -> Result<Sandboxing, RunError> {
    let cells: Vec<&Cell> = selected.iter().map(|&i| &matrix.cells[i]).collect();
    let root = nix::unistd::geteuid().is_root();
    if !host::has_overlay(&host::Roots::default()) {
        return Err(RunError::Isolation(
            "the kernel has no overlay filesystem\n  hint: modprobe overlay".into(),
        ));
    }
    let support = sandbox::security::kernel_support();
    if !support.mount_api {
        return Err(RunError::Isolation(
            "the kernel lacks open_tree, move_mount or mount_setattr, which benchbox needs to build a container's mounts inside its own root\n  hint: Linux 5.12 or later".into(),
        ));
    }
    // Some cell runs under the seccomp filter: a kernel without seccomp filters is refused,
    // never silently downgraded; only an explicit `seccomp = "unconfined"` runs there.
    let needs_seccomp = cells
        .iter()
        .any(|c| !c.security.privileged && !c.security.seccomp_unconfined);
    if needs_seccomp && !support.seccomp_filter {
        return Err(RunError::Isolation(
            "the kernel cannot install seccomp filters (CONFIG_SECCOMP_FILTER)\n  hint: use a kernel with seccomp, or accept running without the filter: `[security] seccomp = \"unconfined\"` (recorded in the results)".into(),
        ));
    }
    let (facts, detected) = cgroup_facts(cgroup_parent)?;
    let mode = mode::select(root, &facts).map_err(RunError::Isolation)?;
    if mode.rootless()
        && let Some(cell) = cells.iter().find(|c| !c.services.is_empty())
    {
        return Err(RunError::Isolation(format!(
            "cell `{}` has services, and services need root: they share a network namespace with the workload, which an ordinary user cannot make for containers in different user namespaces\n  hint: run benchbox as root (sudo), or leave out the cells with [services] (`--only`)",
            cell.label
        )));
    }
    let mut warnings = Vec::new();
    let userns = if mode.rootless() {
        let (map, squashed) = usable_id_map()?;
        warnings.extend(squashed);
        Some(map)
    } else {
        None
    };
    let cgroups = detected.filter(|_| mode.has_cgroup());
    if let Some(cgroups) = &cgroups {
        cgroups
            .prepare()
            .map_err(|e| RunError::Isolation(e.to_string()))?;
    }
    let no_cgroup_reason = match &facts {
        _ if mode.has_cgroup() => None,
        mode::Cgroups::NotDelegated { version, reason } => {
            Some(format!("cgroup {version}: {reason}"))
        }
        mode::Cgroups::Unusable(message) => Some(message.clone()),
        mode::Cgroups::Usable(_) => None,
    };
    if !mode.has_cgroup() {
        let limited: Vec<(String, Vec<&'static str>)> = cells
            .iter()
            .map(|c| (c.label.clone(), mode::limit_names(&c.limits)))
            .filter(|(_, limits)| !limits.is_empty())
            .collect();
        let systemd = host::systemd_runs(&host::Roots::default());
        if let Some(refusal) = mode::refuse_limits(&limited, &facts, systemd, command_line) {
            return Err(RunError::Isolation(refusal));
        }
    }
    let cgroup_version = match &facts {
        mode::Cgroups::Usable(v) | mode::Cgroups::NotDelegated { version: v, .. } => Some(*v),
        mode::Cgroups::Unusable(_) => None,
    };
    // Last, so the sample sees the host as the first invocation will (cgroups prepared).
    let roots = host::Roots::default();
    let cpus = host::noise::run_cpus(
        cells.iter().map(|c| c.limits.cpus.as_ref()),
        &host::online_cpus(&roots),
    );
    let noise = host::noise::examine(&roots, &cpus, root, Some(NOISE_SAMPLE));
    // Which perf_event counters the run records: probed once, said once.
    let counters = if counters_turned_off() {
        warnings.push(format!(
            "{COUNTERS_ENV}=off: no perf_event counters are recorded for any cell (their columns are absent)"
        ));
        Vec::new()
    } else if cells.iter().any(|c| c.counters) {
        let (columns, notes) = sandbox::counters::available(Path::new("/sys"));
        warnings.extend(notes);
        columns
    } else {
        Vec::new()
    };
    Ok(Sandboxing {
        noise: Some(noise),
        mode,
        counters,
        isolation: Isolation::new(mode, userns.as_ref(), no_cgroup_reason),
        cgroup_version,
        cgroups,
        userns,
        warnings,
    })
}

/// What the cgroup layer says of this host, and the hierarchy when benchbox can create groups
/// (under `cgroup_parent` when given). A parent that cannot be one is a usage error.
pub fn cgroup_facts(
    cgroup_parent: Option<&Path>,
) -> Result<(mode::Cgroups, Option<Hierarchy>), RunError> {
    Ok(match sandbox::cgroup::detect_host_in(cgroup_parent) {
        Ok(h) => (mode::Cgroups::Usable(h.version()), Some(h)),
        Err(sandbox::cgroup::CgroupError::NotDelegated { version, reason }) => {
            (mode::Cgroups::NotDelegated { version, reason }, None)
        }
        Err(e @ sandbox::cgroup::CgroupError::BadParent { .. }) => {
            return Err(RunError::Usage(e.to_string()));
        }
        Err(e) => (mode::Cgroups::Unusable(e.to_string()), None),
    })
}

/// The containers' id map for this user, checked on this kernel: the full map (subordinate
/// ids) when it works, else only the user's own ids (with the warning); an error when this
/// user may not create user namespaces at all.
pub fn usable_id_map() -> Result<(IdMap, Option<String>), RunError> {
    let (map, warning) = userns::for_current_user();
    let full_error = match userns::probe(&map) {
        Ok(()) => return Ok((map, warning)),
        Err(e) if !map.squashed() => e,
        Err(e) => return Err(userns_refused(&e)),
    };
    let own = IdMap::compute(map.uids[0].outside, map.gids[0].outside, &[], &[], None);
    userns::probe(&own).map_err(|e| userns_refused(&e))?;
    Ok((
        own,
        Some(format!(
            "rootless: the subordinate ids could not be mapped ({full_error}); only your own user is mapped in the containers (it is root there): files of other owners show as `nobody`, and a cell cannot switch to another user\n  hint: check that newuidmap and newgidmap are set-uid root (Debian: `apt-get install --reinstall uidmap`) and that /etc/subuid and /etc/subgid give your user a range"
        )),
    ))
}

fn userns_refused(why: &str) -> RunError {
    RunError::Isolation(format!(
        "benchbox runs without root, and this kernel does not let this user create the user namespace a rootless container needs: {why}\n  hint: allow unprivileged user namespaces (`sysctl -w user.max_user_namespaces=15000`; on Ubuntu 23.10+ also `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`), or run benchbox as root"
    ))
}

/// The environment variable that turns the perf_event counters off for every cell, whatever
/// the matrix says: for a machine where perf's own calls across CPUs are a hazard (an emulated
/// machine: under QEMU's TCG the counters' cross-CPU calls have locked the guest up), or for a
/// user who wants none without editing the matrix.
pub const COUNTERS_ENV: &str = "BENCHBOX_COUNTERS";

/// `BENCHBOX_COUNTERS=off` (or `0`, `false`, `no`) is set.
fn counters_turned_off() -> bool {
    std::env::var(COUNTERS_ENV).is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "off" | "0" | "false" | "no"
        )
    })
}
