//! A cell's `[limits]` (cpus, cpu quota, memory, pids) and `[security]` (what the workload may do
//! beyond the hardened defaults), each value checked against what the host can give.

use super::*;

/// `[limits]`: each limit checked; `cpus` and `cpu-quota` against the host's online cpus.
pub(super) fn parse_limits(
    r: &Reporter,
    ctx: &ValidationContext,
    t: &Node,
    label: &str,
    warnings: &mut Warnings,
) -> Result<Limits> {
    let mut limits = Limits::default();
    let online = &ctx.online_cpus;
    if let Some(e) = t.get("cpus") {
        let cpus: CpuSet = match &e.value.kind {
            Kind::Str(s) => s.parse().map_err(|why| {
                r.node(
                    &e.value,
                    format!("invalid cpuset `{s}`: {why}"),
                    Some("write a kernel cpu list such as \"0\", \"0-3\" or \"0,2-3\"".into()),
                )
            })?,
            Kind::Int(_) => {
                CpuSet::new([r.int_in(e, 0, crate::spec::MAX_CPU.into(), None)? as u32])
            }
            _ => return Err(r.wrong_type(&e.key, &e.value, "a cpu list string such as \"0-1\"")),
        };
        if let Some(cpu) = cpus.cpus().find(|c| !online.contains(*c)) {
            return Err(r.node(
                &e.value,
                format!("cpu {cpu} is not online on this host (online: {online})"),
                Some(format!("pick cpus from {online}")),
            ));
        }
        limits.cpus = Some(cpus);
    }
    if let Some(e) = t.get("cpu-quota") {
        let quota = match e.value.kind {
            Kind::Float(f) => f,
            Kind::Int(i) => i as f64,
            _ => return Err(r.wrong_type(&e.key, &e.value, "a number of cores")),
        };
        let max = online.len() as f64;
        if !(quota > 0.0 && quota <= max) {
            return Err(r.node(
                &e.value,
                format!("cpu-quota `{quota}` is out of range: it must be above 0 and at most {max} (the online cpus)"),
                Some("cpu-quota is in cores: 0.5 is half a core".into()),
            ));
        }
        // What the cgroup gets: microseconds per 100 ms period, at least 1 ms (the kernel's
        // minimum; the sandbox would raise a smaller quota to it without a word).
        if (quota * CPU_PERIOD_US).round() < MIN_CPU_QUOTA_US {
            return Err(r.node(
                &e.value,
                format!(
                    "cpu-quota `{quota}` is below the kernel's minimum of 0.01 cores (1 ms of CPU time per 100 ms period)"
                ),
                Some("cpu-quota is in cores: 0.01 is the least, 0.5 is half a core".into()),
            ));
        }
        if let Some(cpus) = &limits.cpus
            && quota > cpus.len() as f64
        {
            warnings.push(format!(
                "cell {label}: cpu-quota {quota} is more than its {} pinned cpu(s) can use",
                cpus.len()
            ));
        }
        limits.cpu_quota = Some(quota);
    }
    if let Some(e) = t.get("memory") {
        let bytes = match &e.value.kind {
            Kind::Str(s) => units::parse_size(s).map_err(|why| {
                r.node(
                    &e.value,
                    format!("invalid size `{s}` for `memory`: {why}"),
                    Some("write bytes or a size like \"512MiB\", \"1GiB\", \"1.5G\" (K/M/G/T are 1024-based, KB/MB/GB/TB 1000-based)".into()),
                )
            })?,
            Kind::Int(_) => r.int_in(e, 0, i64::MAX, None)? as u64,
            _ => return Err(r.wrong_type(&e.key, &e.value, "a size such as \"1GiB\" or a number of bytes")),
        };
        if bytes < MIN_MEMORY {
            return Err(r.node(
                &e.value,
                format!(
                    "`memory` of {} is below the floor of 6 MiB",
                    units::format_size(bytes)
                ),
                Some("with less, invocations are killed for lack of memory before the workload does anything (Docker refuses less than 6 MiB too); give \"6MiB\" or more, or remove `memory` for no limit".into()),
            ));
        }
        limits.memory = Some(bytes);
    }
    if let Some(e) = t.get("pids") {
        limits.pids = Some(r.int_in(e, 1, i64::MAX, Some("remove `pids` for no limit"))? as u64);
    }
    Ok(limits)
}

/// `[security]`: what the workload may do beyond the hardened defaults (see
/// `sandbox::security`). Capability names are stored in their canonical spelling, sorted and
/// deduplicated, so `sys_ptrace` and `CAP_SYS_PTRACE` are the same cell.
pub(super) fn parse_security(
    r: &Reporter,
    t: &Node,
    label: &str,
    warnings: &mut Warnings,
) -> Result<Policy> {
    let mut policy = Policy::default();
    let capabilities = t.get("capabilities");
    if let Some(e) = capabilities {
        let Kind::Array(items) = &e.value.kind else {
            return Err(r.wrong_type(&e.key, &e.value, "an array of capability names"));
        };
        for item in items {
            let name = item.as_str().ok_or_else(|| {
                r.wrong_type(&e.key, item, "a capability name such as \"SYS_PTRACE\"")
            })?;
            let Some(cap) = security::parse_capability(name) else {
                // Suggest from the bare name: `CAP_SYS_PTRAC` is close to `SYS_PTRACE`.
                let upper = name.trim().to_ascii_uppercase();
                let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
                let names = security::capability_names();
                return Err(r.node(
                    item,
                    format!("unknown capability `{name}`"),
                    Some(suggest(
                        bare,
                        names.iter().map(String::as_str),
                        "valid capabilities",
                    )),
                ));
            };
            if security::DEFAULT_CAPABILITIES.contains(&cap) {
                warnings.push(format!(
                    "{}capability `{}` in [security] is in the default set already: listing it changes nothing but the cell's id",
                    cell_prefix(label, [item]),
                    security::capability_name(cap)
                ));
            }
            policy.capabilities.push(security::capability_name(cap));
        }
        policy.capabilities.sort();
        policy.capabilities.dedup();
    }
    let seccomp = t.get("seccomp");
    policy.seccomp_unconfined = r.choice(
        seccomp,
        false,
        "seccomp",
        &[("default", false), ("unconfined", true)],
        "valid seccomp values: default (a filter after Docker's default profile), unconfined (no filter)",
    )?;
    if let Some(e) = t.get("privileged") {
        policy.privileged = match e.value.kind {
            Kind::Bool(b) => b,
            _ => return Err(r.wrong_type(&e.key, &e.value, "a boolean")),
        };
        // Redundant, not wrong: the file still says what was meant.
        if policy.privileged && (capabilities.is_some() || seccomp.is_some()) {
            let nodes = [Some(e), capabilities, seccomp].into_iter().flatten();
            warnings.push(format!(
                "{}`privileged = true` in [security] already grants every capability and turns the seccomp filter off: `capabilities` and `seccomp` have no effect",
                cell_prefix(label, nodes.map(|e| &e.value))
            ));
        }
    }
    Ok(policy)
}
